//! Drills in run mode: at every look, restores a dead process left
//! `running` are reaped (`restore::reap`), drills a dead process left are
//! torn down ([`reconcile`]), kept drills whose `keep_for` is over are torn down,
//! and the scenarios the agenda says are due are drilled (their resources
//! kept for `keep_for`). A failed drill opens an alert on
//! `recovery_scenario.NAME`, published when it opens; a passed one closes it.
//!
//! A drill takes no state lock: like `lifeboat drill`, it writes only its
//! own rows.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::recovery::drill::{reconcile, DrillOutcome, Driller};
use crate::recovery::recover::Recoverer;
use crate::restore::reap::{reap, Reaped, Scope};
use crate::restore::Which;
use crate::runmode::daemon::{Daemon, RunEvent};
use crate::runmode::notify;
use crate::state::{DrillRecord, DrillStatus, RestoreRecord};

/// What run mode reports of drills.
pub enum DrillEvent {
    /// A scenario's drill is due and starts.
    Started { scenario: String },
    /// A drill ended (passed or failed), or is kept for its `keep_for`.
    Finished(Box<DrillRecord>),
    /// A drill a dead process left was torn down.
    TornDown(Box<DrillRecord>),
    /// A restore a dead process left `running` was reaped (its shares and
    /// launch image let go of), or what an ended one left was let go of
    /// again; with what could not be.
    RestoreReaped(Box<RestoreRecord>, Option<String>),
    /// A drill could not be made or recorded, or its alert not published.
    Failed {
        scenario: Option<String>,
        error: String,
    },
}

/// What one drill task came to, reported by the daemon when it ends.
pub enum DrillResult {
    /// A drill a dead process left, torn down.
    TornDown(DrillOutcome),
    /// A restore a dead process left, reaped.
    Reaped(Reaped),
    /// A drill that ended, was kept, or whose `keep_for` ended.
    Ended(DrillOutcome),
    /// Something could not be done (the scenario, when one is concerned).
    Failed(Option<String>, String),
}

/// The drill work of one look, in its own task.
pub type DrillTask = tokio::task::JoinHandle<Vec<DrillResult>>;

/// The owner of a scenario's drill alert in the alerts table.
pub fn alert_owner(scenario: &str) -> String {
    format!("recovery_scenario.{scenario}")
}

impl Daemon<'_> {
    fn driller(&self) -> Driller {
        Driller {
            rec: Recoverer {
                cloud: self.cloud.clone(),
                store: self.store.clone(),
                accounts: Arc::new(self.config.accounts.clone()),
                operator: format!("lifeboat run@{}", crate::state::holder::host_name()),
                wait: self.wait,
            },
            config_dir: self.config_dir.clone(),
        }
    }

    /// Starts, in a task of its own, what drills need at this look: the
    /// teardown of what dead processes and ended `keep_for`s left, then the
    /// drills of the scenarios in `due`. A drill restores databases and
    /// waits for them (many minutes in AWS): in the daemon's own loop it
    /// would hold back every backup due meanwhile.
    pub(crate) fn start_drills(&self, due: &[String], now: DateTime<Utc>) -> DrillTask {
        let d = self.driller();
        let mut scenarios = Vec::new();
        for name in due {
            let Some(sc) = self.config.recovery_scenario(name) else {
                continue;
            };
            // `--once` ends right after: nothing would be there to tear
            // down at the end of `keep_for`, so it tears down at once.
            let keep = sc
                .drill
                .as_ref()
                .filter(|_| !self.mode.once)
                .and_then(|k| i64::try_from(k.keep_for_secs).ok())
                .map(Duration::seconds);
            self.report_at(
                now,
                RunEvent::Drill(DrillEvent::Started {
                    scenario: name.clone(),
                }),
            );
            scenarios.push((sc.clone(), keep));
        }
        tokio::spawn(async move {
            let mut out = Vec::new();
            // Restores (by hand, of recoveries, of drills) a dead process
            // left `running`: their shares and launch images go first.
            match reap(&d.rec.cloud, &d.rec.store, &d.rec.accounts, Scope::All).await {
                Ok(done) => out.extend(done.into_iter().map(DrillResult::Reaped)),
                Err(e) => out.push(DrillResult::Failed(None, e.to_string())),
            }
            // Also drills `lifeboat drill` started by hand: a killed one is
            // cleaned up by the runner without waiting for the next drill.
            match reconcile(&d).await {
                Ok(done) => out.extend(done.into_iter().map(DrillResult::TornDown)),
                Err(e) => out.push(DrillResult::Failed(None, e.to_string())),
            }
            match d.finish_kept(now).await {
                Ok(done) => out.extend(done.into_iter().map(DrillResult::Ended)),
                Err(e) => out.push(DrillResult::Failed(None, e.to_string())),
            }
            for (sc, keep) in scenarios {
                match d.drill(&sc, &Which::Latest, keep, now).await {
                    Ok(o) => out.push(DrillResult::Ended(o)),
                    Err(e) => out.push(DrillResult::Failed(Some(sc.name.clone()), e.to_string())),
                }
            }
            out
        })
    }

    /// Reports what a drill task came to, opening or closing the
    /// scenarios' alerts. Returns whether something failed.
    pub(crate) async fn drills_done(
        &self,
        done: Result<Vec<DrillResult>, tokio::task::JoinError>,
        now: DateTime<Utc>,
    ) -> bool {
        let done = done.unwrap_or_else(|e| vec![DrillResult::Failed(None, e.to_string())]);
        let mut failed = false;
        for r in done {
            match r {
                DrillResult::TornDown(o) => {
                    // A drill a dead process left failed: it opens its
                    // scenario's alert like any failed drill.
                    let failed_drill = o.record.status == DrillStatus::Failed;
                    self.report_at(
                        now,
                        RunEvent::Drill(DrillEvent::TornDown(Box::new(o.record.clone()))),
                    );
                    if failed_drill {
                        failed = true;
                        let owner = alert_owner(&o.record.scenario);
                        if let Err(e) = self.open_alert(&owner, &o.record, now).await {
                            self.report_at(now, drill_error(Some(o.record.scenario.clone()), e));
                        }
                    }
                }
                DrillResult::Reaped(r) => {
                    failed |= r.left.is_some();
                    self.report_at(
                        now,
                        RunEvent::Drill(DrillEvent::RestoreReaped(Box::new(r.record), r.left)),
                    );
                }
                DrillResult::Ended(o) => failed |= self.drill_ended(&o, now).await,
                DrillResult::Failed(scenario, e) => {
                    failed = true;
                    self.report_at(now, drill_error(scenario, e));
                }
            }
        }
        failed
    }

    /// Reports a drill that ended or is kept, and opens or closes its
    /// scenario's alert. Returns whether it failed.
    async fn drill_ended(&self, o: &DrillOutcome, now: DateTime<Utc>) -> bool {
        let rec = &o.record;
        self.report_at(
            now,
            RunEvent::Drill(DrillEvent::Finished(Box::new(rec.clone()))),
        );
        let owner = alert_owner(&rec.scenario);
        match rec.status {
            DrillStatus::Failed => {
                if let Err(e) = self.open_alert(&owner, rec, now).await {
                    self.report_at(now, drill_error(Some(rec.scenario.clone()), e));
                }
                true
            }
            DrillStatus::Passed | DrillStatus::Kept => {
                if rec.check_ok != Some(false) {
                    let _ = self
                        .store
                        .lock()
                        .expect("store")
                        .close_policy_alerts(&owner, None, now);
                }
                false
            }
            DrillStatus::Running => false,
        }
    }

    async fn open_alert(
        &self,
        owner: &str,
        rec: &DrillRecord,
        now: DateTime<Utc>,
    ) -> Result<(), String> {
        let opened = self
            .store
            .lock()
            .expect("store")
            .open_policy_alert(
                owner,
                now,
                &format!("drill {} failed: {}", rec.id, rec.problem),
            )
            .map_err(|e| e.to_string())?;
        if let (Some(n), Some(a)) = (&self.config.notifications, opened) {
            let text = format!(
                "ALERT OPENED\n{owner}\nalert: {}\nopened: {}\nreason: {}\n",
                a.id,
                a.opened.to_rfc3339(),
                a.message
            );
            notify::publish(
                &self.cloud,
                &self.store,
                n,
                &format!("Lifeboat alert opened: {owner}"),
                &text,
            )
            .await
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

fn drill_error(scenario: Option<String>, error: String) -> RunEvent {
    RunEvent::Drill(DrillEvent::Failed { scenario, error })
}

/// The daily summary's drill lines: the drills started in the last day.
pub fn summary_lines(drills: &[DrillRecord], now: DateTime<Utc>) -> Vec<String> {
    let day_ago = now - Duration::days(1);
    drills
        .iter()
        .filter(|d| d.started >= day_ago)
        .map(|d| {
            let secs = |s: Option<i64>| s.map_or_else(|| "-".into(), |s| format!("{s}s"));
            let problem = if d.problem.is_empty() {
                String::new()
            } else {
                format!(": {}", d.problem)
            };
            format!(
                "{} drill {} {} (RTO {}, RPO {}){problem}",
                d.scenario,
                d.id,
                d.status.as_str(),
                secs(d.rto_seconds),
                secs(d.rpo_seconds)
            )
        })
        .collect()
}
