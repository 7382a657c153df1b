//! The runner's part: the operations its agenda says are due, performed
//! in turn (no state lock: an operation writes only its own log rows and
//! alert), each remembered so that it runs once per edge.

use crate::runmode::agenda::ControlDue;
use crate::runmode::daemon::{Daemon, RunEvent};

use super::{key, look_key, perform, Request, POLL};

impl Daemon<'_> {
    /// Performs the operations in `due`; returns whether one failed.
    pub(crate) async fn control(
        &self,
        due: &[ControlDue],
        now: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        let mut failed = false;
        for c in due {
            let req = Request {
                action: c.action,
                databases_only: c.databases_only,
                poll: POLL.min(
                    std::time::Duration::from_secs(
                        self.config.resource_control_groups[&c.group]
                            .timeout_secs
                            .max(1),
                    ) / 10,
                ),
            };
            let clock = self.clock.clone();
            let now_fn = move || clock.now();
            let done = perform(
                &self.cloud,
                &self.store,
                self.config,
                &c.group,
                req,
                &now_fn,
            )
            .await;
            let k = if c.databases_only {
                look_key(&c.group)
            } else {
                key(&c.group)
            };
            // Remembered even when a target failed: the alert says so, and
            // the operation is not repeated until the next edge.
            let mut marks = vec![(k, now)];
            if !c.databases_only {
                marks.push((look_key(&c.group), now));
            }
            let recorded = self.store.lock().expect("store").mark_control(&marks);
            match (done, recorded) {
                (Ok(outcome), Ok(())) => {
                    failed |= outcome.failed() > 0;
                    let quiet = c.databases_only && outcome.rows.is_empty();
                    if !quiet {
                        self.report_at(now, RunEvent::Control(Box::new(outcome)));
                    }
                }
                (Err(e), _) | (_, Err(e)) => {
                    failed = true;
                    self.report_at(
                        now,
                        RunEvent::ControlFailed {
                            group: c.group.clone(),
                            error: e.to_string(),
                        },
                    );
                }
            }
        }
        failed
    }
}
