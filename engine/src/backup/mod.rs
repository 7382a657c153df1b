//! Backups on demand (`lifeboat backup POLICY`): snapshot every target of an
//! applied policy now, record the backup in the catalog as it goes, then let
//! retention delete what falls outside the policy's generations.
//!
//! Calls per backup: one filtered describe per (region, kind) for all
//! targets together, then one create call per target with its tags inside.
//!
//! `take.rs` takes one backup, `wait.rs` holds the one poll loop that waits
//! for what a backup made, `reconcile.rs` closes the backups a dead process
//! left running, `names.rs` says what everything is called and tagged, and
//! `throttle.rs` makes a throttled create call again, `record.rs` commits
//! the create calls' snapshots to the catalog in batches, `shapes.rs` records
//! each target's restore point (what it was at backup time).
//! `retain.rs` applies retention after a backup, as `crate::retention`
//! decides it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::cloud::CloudError;
use crate::plan::apply::Report;
use crate::state::{BackupRecord, LockGate, StateError};

pub mod freeze;
pub mod import;
pub mod members;
pub mod names;
mod reconcile;
mod record;
mod running;
mod shapes;
mod take;
mod throttle;
pub(crate) mod wait;

pub use names::{backup_id, TAG_BACKUP_ID, TAG_POLICY, TAG_TARGET};
pub use reconcile::{close_abandoned, reconcile_interrupted, Reconciled};
pub use take::{finish, run, run_with_problems, take, take_open, take_open_decided};

mod retain;
pub use retain::{initial_ami_due, retain, retain_policy, retention_plan};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("policy.{0} is not in state; run `lifeboat apply` first")]
    NotApplied(String),
    #[error("policy.{0} is disabled")]
    Disabled(String),
    #[error("policy.{0} is a template: it never runs itself; a resource tagged lifeboat:backup=POLICY:{0} makes a policy from it")]
    Template(String),
    #[error("account {0} of the policy is not in state; run `lifeboat apply` first")]
    NoAccount(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Cloud(#[from] CloudError),
    /// The state lock was broken or taken over while retention deleted:
    /// the deletes stopped, and what was left waits for the next backup or
    /// apply.
    #[error("backup {backup_id} of policy {policy} was recorded, but the state lock {lock} is no longer held by this process (broken or taken over): retention stopped deleting, {left} change(s) left for the next backup or apply")]
    HoldLost {
        policy: String,
        backup_id: String,
        lock: String,
        left: usize,
    },
}

/// How many create calls run at once in one account and region, by default.
pub const PER_REGION_CONCURRENCY: usize = 16;

/// Bounds on the create calls in flight per (account, region), shared by
/// every backup that holds the same `Limits`: a runner's policies due
/// together stay within one bound per account and region, not one each.
///
/// A runner's backups also share its hold on the state lock
/// ([`LockGate`]): each takes it around its commits and lets go of it
/// while it waits for AWS, and records the runner as its owner.
#[derive(Clone)]
pub struct Limits {
    per_region: usize,
    /// One semaphore per (account, region), made on first use.
    regions: Arc<Mutex<RegionSemaphores>>,
    gate: Option<LockGate>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("per_region", &self.per_region)
            .field("gate", &self.gate.as_ref().map(|g| g.owner().lease.clone()))
            .finish()
    }
}

type RegionSemaphores = BTreeMap<(String, String), Arc<tokio::sync::Semaphore>>;

impl Limits {
    pub fn new(per_region: usize) -> Limits {
        Limits {
            per_region: per_region.max(1),
            regions: Default::default(),
            gate: None,
        }
    }

    /// The same bounds, for backups that share the runner's `gate`.
    pub fn with_gate(mut self, gate: LockGate) -> Limits {
        self.gate = Some(gate);
        self
    }

    /// The runner's hold on the state lock, when backups share one.
    pub fn gate(&self) -> Option<&LockGate> {
        self.gate.as_ref()
    }

    /// Runs `wait` (a wait for AWS) without the runner's state lock, and
    /// takes it again after; without a gate (the caller holds the lock
    /// throughout), just runs it.
    pub(crate) async fn unlocked<T>(
        &self,
        wait: impl std::future::Future<Output = T>,
    ) -> Result<T, BackupError> {
        match &self.gate {
            Some(g) => Ok(g.unlocked(wait).await?),
            None => Ok(wait.await),
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
    /// Who joined or left the policy as the backup started.
    pub membership: Vec<crate::membership::MemberChange>,
}

impl BackupResult {
    /// The result of backup `record`, with its membership changes as the
    /// state logged them.
    pub fn of(
        store: &crate::state::SharedStore,
        record: BackupRecord,
        retention: Report,
    ) -> Result<BackupResult, BackupError> {
        let membership = store
            .lock()
            .expect("store")
            .member_changes(Some(&record.policy), record.started)?
            .into_iter()
            .filter(|c| c.backup_id.as_deref() == Some(record.id.as_str()))
            .collect();
        Ok(BackupResult {
            record,
            retention,
            membership,
        })
    }
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
