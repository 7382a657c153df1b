//! A drill: the scenario recovered into its destination under a drill id,
//! its check script run against what came back, then everything the
//! drill's restores created torn down again (see [`super::teardown`]), and
//! the result recorded. A drill never asks: it only creates what it then
//! removes, and never touches an original.
//!
//! The drill's row names the process running it. A drill whose process
//! died (killed midway, or during `keep_for`) is torn down by the next
//! [`reconcile`]: `lifeboat drill` and the runner call it first.

use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use lifeboat_schema::config::RecoveryScenario;
use serde::Serialize;

use super::recover::{Recoverer, RecoveryReport};
use super::scenario::{self, ScenarioPlan};
use super::teardown::Teardown;
use crate::cloud::DbSnapshotKind;
use crate::restore::Which;
use crate::runmode::scripts;
use crate::state::holder::HolderId;
use crate::state::{DrillRecord, DrillStatus, ResourceKind, StateError};

/// What runs drills.
#[derive(Clone)]
pub struct Driller {
    pub rec: Recoverer,
    /// Where relative check scripts start, and the check's working directory.
    pub config_dir: PathBuf,
}

/// One drill, as it ended (or was kept).
#[derive(Debug, Clone, Serialize)]
pub struct DrillOutcome {
    pub record: DrillRecord,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<RecoveryReport>,
    /// What the teardown removed: `(kind, id)`.
    pub removed: Vec<(ResourceKind, String)>,
}

impl DrillOutcome {
    pub fn passed(&self) -> bool {
        matches!(self.record.status, DrillStatus::Passed)
            || (self.record.status == DrillStatus::Kept && self.record.check_ok != Some(false))
    }
}

/// One restored resource, as the check script gets it in `LIFEBOAT_RESTORED`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Restored {
    pub step: String,
    /// `instance`, `volume`, `db_instance`, `db_cluster`.
    pub kind: String,
    /// The original it was restored from.
    pub target: String,
    pub id: String,
    pub region: String,
    pub account: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// Whether `h` is this very process.
fn is_me(h: &HolderId) -> bool {
    let me = HolderId::current();
    h.host == me.host && h.pid == me.pid && h.start == me.start && h.boot_id == me.boot_id
}

impl Driller {
    fn put(&self, d: &DrillRecord) -> Result<(), StateError> {
        let mut st = self.rec.store.lock().expect("state lock poisoned");
        st.transaction(|tx| tx.put_drill(d))
    }

    /// Rehearses `sc`, recorded as started at `now` (the runner's clock):
    /// recover, check, and tear down, or with `keep` keep what came back
    /// that long (run mode's `keep_for`; the runner's
    /// [`Driller::finish_kept`] tears it down).
    pub async fn drill(
        &self,
        sc: &RecoveryScenario,
        which: &Which,
        keep: Option<Duration>,
        now: DateTime<Utc>,
    ) -> Result<DrillOutcome, StateError> {
        let real_start = Utc::now();
        let id = super::new_drill_id(now);
        let mut rec = DrillRecord::new(&id, &sc.name, now);
        self.put(&rec)?;
        let r = &self.rec;
        let planned =
            scenario::plan(&r.cloud, &r.store, &r.accounts, sc, which, Some(&id), now).await;
        let plan = match planned {
            Ok(p) => p,
            Err(e) => {
                rec.problem = format!("the scenario cannot be planned: {e}");
                return self.close(rec, None, Teardown::default()).await;
            }
        };
        let report = r.run(&plan).await;
        rec.rto_seconds = report.rto_seconds();
        rec.rpo_seconds = report.rpo_seconds();
        if let Some(p) = report.problem() {
            rec.problem = format!("a restore failed: {p}");
            if !report.not_started.is_empty() {
                rec.problem
                    .push_str(&format!("; not started: {}", report.not_started.join(", ")));
            }
        } else {
            let restored = self.restored(&plan).await;
            if let Err(p) = super::health::wait_healthy(r, &restored).await {
                rec.problem = format!("a restored instance failed its status checks: {p}");
            } else if let Some(check) = &sc.check {
                self.put(&rec)?;
                self.check(sc, check, &restored, &mut rec).await;
            }
        }
        match keep {
            Some(k) if rec.problem.is_empty() => {
                rec.status = DrillStatus::Kept;
                rec.keep_until = Some(now + (Utc::now() - real_start) + k);
                self.put(&rec)?;
                Ok(DrillOutcome {
                    record: rec,
                    report: Some(report),
                    removed: vec![],
                })
            }
            _ => {
                let down = self.teardown(&id).await?;
                self.close(rec, Some(report), down).await
            }
        }
    }

    /// Records the drill's end after its teardown: passed when nothing
    /// failed and everything it made is gone.
    async fn close(
        &self,
        mut rec: DrillRecord,
        report: Option<RecoveryReport>,
        down: Teardown,
    ) -> Result<DrillOutcome, StateError> {
        let now = Utc::now();
        if !down.problems.is_empty() {
            let p = format!("the teardown left: {}", down.problems.join("; "));
            rec.problem = if rec.problem.is_empty() {
                p
            } else {
                format!("{}; {p}", rec.problem)
            };
        } else {
            rec.torn_down = Some(now);
        }
        rec.finished = Some(now);
        rec.status = if rec.problem.is_empty() {
            DrillStatus::Passed
        } else {
            DrillStatus::Failed
        };
        self.put(&rec)?;
        Ok(DrillOutcome {
            record: rec,
            report,
            removed: down.removed,
        })
    }

    /// Runs the scenario's check script against what came back (every
    /// instance past its status checks); a failed check is the drill's
    /// problem.
    async fn check(
        &self,
        sc: &RecoveryScenario,
        check: &lifeboat_schema::Check,
        restored: &[Restored],
        rec: &mut DrillRecord,
    ) {
        let env = vec![
            ("LIFEBOAT_SCENARIO".to_string(), sc.name.clone()),
            ("LIFEBOAT_DRILL_ID".to_string(), rec.id.clone()),
            (
                "LIFEBOAT_RESTORED".to_string(),
                serde_json::to_string(restored).expect("a list serializes"),
            ),
        ];
        let program = scripts::resolve(&self.config_dir, &check.script);
        // Lifeboat's own credentials reach every configured account, the
        // vault's included: the check gets none of them.
        let out = scripts::run_isolated(
            &program,
            &env,
            &self.config_dir,
            std::time::Duration::from_secs(check.timeout_secs),
        )
        .await;
        rec.check_exit = out.exit_code;
        rec.check_ok = Some(out.ok);
        // The end of what it printed, where a failing check says why.
        rec.check_output = out.stderr;
        if !out.ok {
            rec.problem = format!("the check {} failed: {}", check.script, out.detail);
        }
    }

    /// What the plan's restores created and still have, with the
    /// databases' endpoints.
    pub async fn restored(&self, plan: &ScenarioPlan) -> Vec<Restored> {
        let records = {
            let st = self.rec.store.lock().expect("state lock poisoned");
            st.restores().unwrap_or_default()
        };
        let mut out = Vec::new();
        for (step, p) in plan.restores() {
            let Some(r) = records.iter().find(|r| r.id == p.id) else {
                continue;
            };
            for x in r.resources.iter().filter(|x| x.removed.is_none()) {
                let db = match x.kind {
                    ResourceKind::Image => continue,
                    ResourceKind::DbInstance => Some(DbSnapshotKind::Instance),
                    ResourceKind::DbCluster => Some(DbSnapshotKind::Cluster),
                    ResourceKind::Instance | ResourceKind::Volume => None,
                };
                let endpoint = match (db, self.rec.accounts.get(&r.account)) {
                    (Some(kind), Some(a)) => match self.rec.cloud.databases(a, &r.region).await {
                        Ok(dbs) => dbs
                            .status(kind, &x.id)
                            .await
                            .ok()
                            .flatten()
                            .and_then(|s| s.endpoint),
                        Err(_) => None,
                    },
                    _ => None,
                };
                out.push(Restored {
                    step: step.step.clone(),
                    kind: x.kind.as_str().to_string(),
                    target: p.target.clone(),
                    id: x.id.clone(),
                    region: r.region.clone(),
                    account: r.account.clone(),
                    endpoint,
                });
            }
        }
        out
    }

    /// Tears down the kept drills of this process whose `keep_for` is over
    /// at `now`, and records how each ended.
    pub async fn finish_kept(&self, now: DateTime<Utc>) -> Result<Vec<DrillOutcome>, StateError> {
        let kept: Vec<DrillRecord> = {
            let st = self.rec.store.lock().expect("state lock poisoned");
            st.drills()?
        };
        let mut out = Vec::new();
        for d in kept.into_iter().filter(|d| {
            d.status == DrillStatus::Kept
                && d.keep_until.is_some_and(|k| k <= now)
                && is_me(&d.holder)
        }) {
            let down = self.teardown(&d.id).await?;
            out.push(self.close(d, None, down).await?);
        }
        Ok(out)
    }
}

/// Whether the process holding `rec` is gone (`HolderId::gone_since`,
/// counted from the end of its `keep_for` when it was kept).
fn holder_gone(rec: &DrillRecord) -> bool {
    let since = rec.keep_until.unwrap_or(rec.started).max(rec.started);
    rec.holder.gone_since(since)
}

/// Tears down every drill whose process is gone and that still has
/// resources not removed (or never ended), and records it as ended: a
/// drill killed midway is failed; one killed while kept after a passed
/// check passes once its teardown is done. Drills of live processes, and
/// of processes that cannot be looked at (another host), are left alone.
pub async fn reconcile(d: &Driller) -> Result<Vec<DrillOutcome>, StateError> {
    let (drills, restores) = {
        let st = d.rec.store.lock().expect("state lock poisoned");
        (st.drills()?, st.restores()?)
    };
    let mut out = Vec::new();
    for mut rec in drills {
        let leftover = restores
            .iter()
            .filter(|r| r.drill.as_deref() == Some(rec.id.as_str()))
            .any(|r| r.resources.iter().any(|x| x.removed.is_none()));
        if (rec.status.is_final() && !leftover) || !holder_gone(&rec) {
            continue;
        }
        let down = d.teardown(&rec.id).await?;
        if rec.status.is_final() {
            // Ended before, with a teardown that left something: only the
            // teardown is made again.
            if down.problems.is_empty() {
                rec.torn_down = Some(Utc::now());
                d.put(&rec)?;
            }
            out.push(DrillOutcome {
                record: rec,
                report: None,
                removed: down.removed,
            });
            continue;
        }
        if rec.status == DrillStatus::Running {
            let why = format!(
                "the process running the drill (pid {} on {}) stopped before it finished; torn down by pid {}",
                rec.holder.pid,
                rec.holder.host,
                std::process::id()
            );
            rec.problem = if rec.problem.is_empty() {
                why
            } else {
                format!("{}; {why}", rec.problem)
            };
        }
        out.push(d.close(rec, None, down).await?);
    }
    Ok(out)
}
