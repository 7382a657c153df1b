//! Backups on demand (`lifeboat backup POLICY`): snapshot every target of an
//! applied policy now, record the backup in the catalog as it goes, then let
//! retention delete what falls outside the policy's generations.
//!
//! Calls per backup: one filtered describe per (region, kind) for all
//! targets together, then one create call per target with its tags inside.
//!
//! `take.rs` takes one backup, `wait.rs` holds the one poll loop that waits
//! for what a backup made, `reconcile.rs` closes the backups a dead process
//! left running, and `names.rs` says what everything is called and tagged.
//! Retention after a backup lives here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::addr::Address;
use crate::cloud::{Cloud, CloudError};
use crate::plan::apply::{self, Executor, Report};
use crate::plan::planner;
use crate::plan::Plan;
use crate::retention;
use crate::state::model::PolicyState;
use crate::state::{ArtifactKind, BackupRecord, BackupStatus, SharedStore, StateError, Store};

pub mod names;
mod reconcile;
mod take;
mod wait;

pub use names::{backup_id, TAG_BACKUP_ID, TAG_POLICY, TAG_TARGET};
pub use reconcile::reconcile_interrupted;
pub use take::{run, run_with_problems, take};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("policy.{0} is not in state; run `lifeboat apply` first")]
    NotApplied(String),
    #[error("policy.{0} is disabled")]
    Disabled(String),
    #[error("account {0} of the policy is not in state; run `lifeboat apply` first")]
    NoAccount(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Cloud(#[from] CloudError),
}

/// How many create calls run at once in one account and region, by default.
pub const PER_REGION_CONCURRENCY: usize = 16;

/// Bounds on the create calls in flight per (account, region), shared by
/// every backup that holds the same `Limits`: a runner's policies due
/// together stay within one bound per account and region, not one each.
#[derive(Debug, Clone)]
pub struct Limits {
    per_region: usize,
    /// One semaphore per (account, region), made on first use.
    regions: Arc<Mutex<RegionSemaphores>>,
}

type RegionSemaphores = BTreeMap<(String, String), Arc<tokio::sync::Semaphore>>;

impl Limits {
    pub fn new(per_region: usize) -> Limits {
        Limits {
            per_region: per_region.max(1),
            regions: Default::default(),
        }
    }

    pub fn per_region(&self) -> usize {
        self.per_region
    }

    fn region(&self, account: &str, region: &str) -> Arc<tokio::sync::Semaphore> {
        let mut m = self.regions.lock().expect("limits");
        m.entry((account.to_string(), region.to_string()))
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.per_region)))
            .clone()
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new(PER_REGION_CONCURRENCY)
    }
}

pub struct BackupResult {
    pub record: BackupRecord,
    /// What retention did after a successful backup.
    pub retention: Report,
}

/// How long a backup waits for its snapshots to leave `pending`.
#[derive(Debug, Clone, Copy)]
pub struct Wait {
    pub timeout: std::time::Duration,
    /// Time between two looks; the first look is immediate.
    pub interval: std::time::Duration,
}

impl Default for Wait {
    fn default() -> Self {
        Wait {
            timeout: std::time::Duration::from_secs(3600),
            interval: std::time::Duration::from_secs(15),
        }
    }
}

/// Retention after a finished backup `record` (a partial one may make older
/// incomplete ones surplus), with the policy as it is in state now: an apply
/// may have changed `generations` while the snapshots completed. The backup
/// itself is never its own victim.
pub async fn retain(
    cloud: Arc<dyn Cloud>,
    store: SharedStore,
    record: &BackupRecord,
    now: DateTime<Utc>,
) -> Result<Report, BackupError> {
    let (policy, id) = (record.policy.as_str(), record.id.as_str());
    let mut report = Report::default();
    let current = store.lock().expect("store").load()?;
    // A policy destroyed while its backup ran has no retention any more.
    let Some(pol) = current.policy(policy)? else {
        return Ok(report);
    };
    {
        let mut plan = retention_plan(&mut store.lock().expect("store"), &pol, now)?;
        // The backup just taken is never its own victim, whatever the clocks say.
        let own = Address::backup(policy, id);
        let own_snaps: BTreeSet<Address> = record.snapshots.iter().map(|s| s.address()).collect();
        plan.changes
            .retain(|c| c.address != own && !own_snaps.contains(&c.address));
        if !plan.is_empty() {
            let accounts = current.accounts()?;
            let exec = Arc::new(Executor {
                cloud,
                accounts,
                store: store.clone(),
                now,
                lock_id: None,
                stop: Default::default(),
            });
            report = apply::apply(&plan, exec, PER_REGION_CONCURRENCY, |_, _| {}).await;
        }
    }
    Ok(report)
}

/// The retention changes for one policy, against the catalog as it is now.
pub fn retention_plan(
    store: &mut Store,
    pol: &PolicyState,
    now: DateTime<Utc>,
) -> Result<Plan, StateError> {
    let snap = store.load()?;
    let accounts = snap.accounts()?;
    let mut changes = Vec::new();
    let kept = planner::kept_initial_amis(&snap, |_| true)?;
    for e in retention::expired(&pol.name, &snap.backups, pol.generations) {
        // An account that forbids deletion keeps everything (the plan warns).
        if !accounts
            .get(&e.backup.account)
            .is_some_and(|a| a.allow_delete)
        {
            continue;
        }
        changes.extend(planner::expiry_changes(
            e.backup,
            &e.reason,
            |_| true,
            &kept,
        ));
    }
    Ok(Plan::new(
        snap.lineage,
        snap.serial,
        String::new(),
        now,
        changes,
        vec![],
    ))
}

/// Is an AMI due for an `initial_ami` instance: it has none in the policy's
/// successful or partial backups, or its newest is `days` old or older?
pub fn initial_ami_due(
    backups: &[BackupRecord],
    policy: &str,
    target: &str,
    days: u32,
    now: DateTime<Utc>,
) -> bool {
    let newest = backups
        .iter()
        .filter(|b| {
            b.policy == policy && matches!(b.status, BackupStatus::Success | BackupStatus::Partial)
        })
        .filter(|b| {
            b.snapshots
                .iter()
                .any(|s| s.kind == ArtifactKind::Image && s.target == target)
        })
        .map(|b| b.started)
        .max();
    match newest {
        None => true,
        Some(at) => now - at >= chrono::Duration::days(i64::from(days)),
    }
}
