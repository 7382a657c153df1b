//! Performing a [`ScenarioPlan`]: wave by wave, the restores of one wave at
//! once (at most [`PARALLEL`] in flight), each by the restore runner (so
//! each creation is recorded as its call returns). After a wave with a
//! failed restore no further wave starts: later steps wait for the failed
//! one by declaration. Reports per step the time until ready (RTO) and the
//! recovery point (RPO).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::scenario::{ScenarioPlan, StepPlan};
use crate::backup::Wait;
use crate::cloud::Cloud;
use crate::restore::plan::Accounts;
use crate::restore::run::Runner;
use crate::restore::RestorePlan;
use crate::state::{RestoreRecord, RestoreStatus, SharedStore};

/// Restores of one wave in flight at once: enough to recover a wave of
/// instances in the time of a few, few enough to stay clear of AWS's
/// request limits.
pub const PARALLEL: usize = 5;

/// How one restore of a step went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreOutcome {
    pub restore_id: String,
    /// `instance i-…`, `rds orders`, ...
    pub target: String,
    /// `completed`, `failed` (or `running` when its record was lost).
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub problem: String,
    /// The restore's record (what it created), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<RestoreRecord>,
}

/// How one step went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepReport {
    pub step: String,
    pub kind: String,
    pub restores: Vec<RestoreOutcome>,
    /// Whether every restore of the step completed.
    pub ok: bool,
    /// Seconds from the recovery's start until the step's last restore was
    /// ready (`None` when one failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_seconds: Option<i64>,
    /// The age of the oldest backup the step used, at the recovery's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_seconds: Option<i64>,
}

/// How a whole recovery (or a drill's) went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryReport {
    pub scenario: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<String>,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    /// The steps that ran, wave by wave.
    pub steps: Vec<StepReport>,
    /// Steps of the waves never started, after a failure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_started: Vec<String>,
    pub ok: bool,
}

impl RecoveryReport {
    /// The whole recovery's RTO: until its last step was ready.
    pub fn rto_seconds(&self) -> Option<i64> {
        if !self.ok {
            return None;
        }
        self.steps.iter().filter_map(|s| s.rto_seconds).max()
    }

    /// The whole recovery's RPO: its oldest backup's age.
    pub fn rpo_seconds(&self) -> Option<i64> {
        self.steps.iter().filter_map(|s| s.rpo_seconds).max()
    }

    /// The first failure, for a one-line problem.
    pub fn problem(&self) -> Option<String> {
        self.steps
            .iter()
            .flat_map(|s| s.restores.iter().map(move |r| (s, r)))
            .find(|(_, r)| r.status != RestoreStatus::Completed.as_str())
            .map(|(s, r)| format!("step {:?}, {}: {}", s.step, r.target, r.problem))
    }
}

/// What performs the restores.
#[derive(Clone)]
pub struct Recoverer {
    pub cloud: Arc<dyn Cloud>,
    pub store: SharedStore,
    pub accounts: Arc<Accounts>,
    /// `user@host`, for each restore's record.
    pub operator: String,
    pub wait: Wait,
}

impl Recoverer {
    /// One restore, by the restore runner; its outcome from its record.
    async fn one(&self, p: RestorePlan) -> RestoreOutcome {
        let runner = Runner {
            cloud: &self.cloud,
            store: &self.store,
            accounts: &self.accounts,
            operator: self.operator.clone(),
            wait: self.wait,
        };
        let result = runner.run(&p).await;
        if result.is_ok() && p.drill.is_some() {
            crate::failpoint::hit(crate::failpoint::DRILL_RESTORED);
        }
        let record = self
            .store
            .lock()
            .expect("state lock poisoned")
            .restores()
            .ok()
            .and_then(|rs| rs.into_iter().find(|r| r.id == p.id));
        let target = format!("{} {}", p.kind.noun(), p.target);
        match result {
            Ok(r) => RestoreOutcome {
                restore_id: p.id.clone(),
                target,
                status: r.status.as_str().to_string(),
                problem: String::new(),
                record: Some(r),
            },
            Err(e) => RestoreOutcome {
                restore_id: p.id.clone(),
                target,
                status: RestoreStatus::Failed.as_str().to_string(),
                problem: e.to_string(),
                record,
            },
        }
    }

    /// The restores of one step, at most [`PARALLEL`] at once across the
    /// wave (the semaphore is the wave's).
    async fn wave(&self, steps: &[StepPlan], started: DateTime<Utc>) -> Vec<StepReport> {
        let gate = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
        let mut tasks = tokio::task::JoinSet::new();
        for (si, s) in steps.iter().enumerate() {
            for (ri, p) in s.restores.iter().enumerate() {
                let (me, p, gate) = (self.clone(), p.clone(), gate.clone());
                tasks.spawn(async move {
                    let _permit = gate.acquire_owned().await.expect("the gate stays open");
                    (si, ri, me.one(p).await)
                });
            }
        }
        let mut outcomes: Vec<Vec<Option<RestoreOutcome>>> =
            steps.iter().map(|s| vec![None; s.restores.len()]).collect();
        while let Some(done) = tasks.join_next().await {
            if let Ok((si, ri, o)) = done {
                outcomes[si][ri] = Some(o);
            }
        }
        steps
            .iter()
            .zip(outcomes)
            .map(|(s, outs)| {
                let restores: Vec<RestoreOutcome> = s
                    .restores
                    .iter()
                    .zip(outs)
                    .map(|(p, o)| {
                        o.unwrap_or_else(|| RestoreOutcome {
                            restore_id: p.id.clone(),
                            target: format!("{} {}", p.kind.noun(), p.target),
                            status: RestoreStatus::Failed.as_str().to_string(),
                            problem: "the restore's task ended without an answer".into(),
                            record: None,
                        })
                    })
                    .collect();
                step_report(s, restores, started)
            })
            .collect()
    }

    /// Performs `p` wave by wave; stops before a wave once one failed.
    pub async fn run(&self, p: &ScenarioPlan) -> RecoveryReport {
        let started = Utc::now();
        let mut steps = Vec::new();
        let mut not_started = Vec::new();
        let mut ok = true;
        for wave in &p.waves {
            if !ok {
                not_started.extend(wave.iter().map(|s| s.step.clone()));
                continue;
            }
            let reports = self.wave(wave, started).await;
            ok = reports.iter().all(|r| r.ok);
            steps.extend(reports);
        }
        RecoveryReport {
            scenario: p.scenario.clone(),
            drill: p.drill.clone(),
            started,
            finished: Utc::now(),
            steps,
            not_started,
            ok,
        }
    }
}

fn step_report(s: &StepPlan, restores: Vec<RestoreOutcome>, started: DateTime<Utc>) -> StepReport {
    let ok = restores
        .iter()
        .all(|r| r.status == RestoreStatus::Completed.as_str());
    let ready: Option<Vec<DateTime<Utc>>> = restores
        .iter()
        .map(|r| r.record.as_ref().and_then(|r| r.ready))
        .collect();
    let rto_seconds = ready
        .filter(|_| ok)
        .and_then(|r| r.into_iter().max())
        .map(|r| (r - started).num_seconds().max(0));
    let rpo_seconds = s
        .restores
        .iter()
        .map(|p| (started - p.backup_started).num_seconds().max(0))
        .max();
    StepReport {
        step: s.step.clone(),
        kind: s.kind.clone(),
        restores,
        ok,
        rto_seconds,
        rpo_seconds,
    }
}
