//! The runner's part: the operations its agenda says are due, each group's
//! in a task of its own (an operation waits for its targets up to two
//! timeouts; in the daemon's loop it would hold back every backup due
//! meanwhile, and the signals). No state lock: an operation writes only
//! its own log rows, alert and marks, in one transaction, when it ends.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lifeboat_schema::Config;
use tokio::task::JoinSet;

use crate::runmode::agenda::ControlDue;
use crate::runmode::daemon::{Daemon, RunEvent};
use crate::state::StateError;

use super::{key, look_key, perform, perform_made, ControlError, Outcome, Request, POLL};

/// How one group's operation ended.
pub(crate) struct ControlDone {
    due: ControlDue,
    at: DateTime<Utc>,
    /// One outcome per group acted on: the group's own, or for a
    /// template those of the groups made from it.
    result: Result<Vec<Outcome>, ControlError>,
}

/// The operations in flight, one per group at most.
#[derive(Default)]
pub(crate) struct ControlTasks {
    /// The configuration, shared with the tasks (made at the first one).
    config: Option<Arc<Config>>,
    running: BTreeSet<String>,
    set: JoinSet<ControlDone>,
}

impl ControlTasks {
    pub(crate) fn busy(&self) -> bool {
        !self.set.is_empty()
    }

    /// Drops the configuration shared with the tasks, so that the next one
    /// takes the runner's current one (after a reload); those in flight
    /// keep theirs.
    pub(crate) fn forget_config(&mut self) {
        self.config = None;
    }

    /// The next operation to end; `None` when none is in flight. A task
    /// that panicked is reported as the failure of an unnamed group.
    pub(crate) async fn next(&mut self) -> Option<ControlDone> {
        let joined = self.set.join_next().await?;
        let done = joined.unwrap_or_else(|e| ControlDone {
            due: ControlDue {
                group: "?".into(),
                action: super::Action::Off,
                databases_only: false,
            },
            at: Utc::now(),
            result: Err(ControlError::State(StateError::Conflict(format!(
                "the operation's task failed: {e}"
            )))),
        });
        self.running.remove(&done.due.group);
        Some(done)
    }
}

impl Daemon<'_> {
    /// Starts the operations in `due` whose group has none in flight.
    pub(crate) fn start_controls(
        &self,
        tasks: &mut ControlTasks,
        due: &[ControlDue],
        now: DateTime<Utc>,
    ) {
        for c in due {
            if !tasks.running.insert(c.group.clone()) {
                continue;
            }
            let group = &self.config.resource_control_groups[&c.group];
            let timeout = group.timeout_secs.max(1);
            let template = group.template;
            let req = Request {
                action: c.action,
                databases_only: c.databases_only,
                poll: POLL.min(std::time::Duration::from_secs(timeout) / 10),
                cancel: Some(self.stop.clone()),
            };
            // Remembered even when a target failed: the alert says so, and
            // the operation is not repeated until the next edge.
            let mut marks = vec![(
                if c.databases_only {
                    look_key(&c.group)
                } else {
                    key(&c.group)
                },
                now,
            )];
            if !c.databases_only {
                marks.push((look_key(&c.group), now));
            }
            let config = tasks
                .config
                .get_or_insert_with(|| Arc::new(self.config.clone()))
                .clone();
            let (cloud, store, clock) =
                (self.cloud.clone(), self.store.clone(), self.clock.clone());
            let due = c.clone();
            tasks.set.spawn(async move {
                let now_fn = move || clock.now();
                let result = if template {
                    perform_made(&cloud, &store, &config, &due.group, &req, &marks, &now_fn).await
                } else {
                    perform(&cloud, &store, &config, &due.group, &req, &marks, &now_fn)
                        .await
                        .map(|o| vec![o])
                        .map_err(ControlError::from)
                };
                ControlDone {
                    due,
                    at: now,
                    result,
                }
            });
        }
    }

    /// Reports an operation that ended; returns whether it failed.
    pub(crate) fn control_done(&self, done: ControlDone) -> bool {
        let ControlDone { due, at, result } = done;
        match result {
            Ok(outcomes) => {
                let mut failed = false;
                for outcome in outcomes {
                    failed |= outcome.failed() > 0;
                    let quiet = due.databases_only
                        && outcome.rows.is_empty()
                        && outcome.problems.is_empty();
                    if !quiet {
                        self.report_at(at, RunEvent::Control(Box::new(outcome)));
                    }
                }
                failed
            }
            Err(e) => {
                self.report_at(
                    at,
                    RunEvent::ControlFailed {
                        group: due.group,
                        error: e.to_string(),
                    },
                );
                true
            }
        }
    }
}
