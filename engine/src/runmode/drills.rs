//! Drills in run mode: at every look, drills a dead process left are torn
//! down ([`reconcile`]), kept drills whose `keep_for` is over are torn down,
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
use crate::restore::Which;
use crate::runmode::daemon::{Daemon, RunEvent};
use crate::runmode::notify;
use crate::state::{DrillRecord, DrillStatus};

/// What run mode reports of drills.
pub enum DrillEvent {
    /// A scenario's drill is due and starts.
    Started { scenario: String },
    /// A drill ended (passed or failed), or is kept for its `keep_for`.
    Finished(Box<DrillRecord>),
    /// A drill a dead process left was torn down.
    TornDown(Box<DrillRecord>),
    /// A drill could not be made or recorded, or its alert not published.
    Failed {
        scenario: Option<String>,
        error: String,
    },
}

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

    /// Tears down what dead processes and ended `keep_for`s left, then
    /// drills the scenarios in `due`. Returns whether something failed.
    pub(crate) async fn drills(&self, due: &[String], now: DateTime<Utc>) -> bool {
        let d = self.driller();
        let mut failed = false;
        // Also drills `lifeboat drill` started by hand: a killed one is
        // cleaned up by the runner without waiting for the next drill.
        match reconcile(&d).await {
            Ok(done) => done.into_iter().for_each(|o| {
                self.report_at(
                    now,
                    RunEvent::Drill(DrillEvent::TornDown(Box::new(o.record))),
                )
            }),
            Err(e) => {
                failed = true;
                self.report_at(now, drill_error(None, e.to_string()));
            }
        }
        match d.finish_kept(now).await {
            Ok(done) => {
                for o in done {
                    failed |= self.drill_ended(&o, now).await;
                }
            }
            Err(e) => {
                failed = true;
                self.report_at(now, drill_error(None, e.to_string()));
            }
        }
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
            match d.drill(sc, &Which::Latest, keep, now).await {
                Ok(o) => failed |= self.drill_ended(&o, now).await,
                Err(e) => {
                    failed = true;
                    self.report_at(now, drill_error(Some(name.clone()), e.to_string()));
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
                        .close_policy_alerts(&owner, now);
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
