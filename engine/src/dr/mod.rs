//! Disaster-recovery copies: each backup of a policy with a `dr` block is
//! copied to other regions of its account and to a DR account, with a
//! status per destination, while the runner goes on with the next backups.
//!
//! `route.rs` says which artifacts go where and which backups are copied
//! (`every`); `copy.rs` drives one backup's copies to one destination
//! (adoption after a crash, the cap on copies in flight, shares across
//! accounts, the wait, the timeout); `keys.rs` picks an encrypted copy's
//! key; `names.rs` the copies' tags. Which copies expire is retention's
//! rule (`crate::retention::copies`), like every expiry.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use lifeboat_schema::{DEFAULT_DR_CONCURRENCY, MAX_DR_CONCURRENCY};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::cloud::Cloud;
use crate::state::model::PolicyState;
use crate::state::{BackupRecord, Destination, DrRun, DrStatus, SharedStore, StateError};

mod apply;
mod copy;
pub mod keys;
pub mod lock;
pub mod names;
pub mod observe;
pub mod plan;
mod retain;
pub mod route;

pub use retain::retain_copies;

/// Bounds on the copies in flight (started, not yet completed) per
/// destination, shared by every DR run that holds the same `Limits`; and
/// per policy and destination when the policy sets `concurrency`.
#[derive(Debug, Clone)]
pub struct Limits {
    per_destination: usize,
    #[allow(clippy::type_complexity)]
    sems: Arc<Mutex<BTreeMap<(Option<String>, Destination), Arc<Semaphore>>>>,
}

impl Limits {
    /// `per_destination` is held to 1..=20 (AWS copies at most 20 at once
    /// into one region of one account).
    pub fn new(per_destination: usize) -> Limits {
        Limits {
            per_destination: per_destination.clamp(1, MAX_DR_CONCURRENCY as usize),
            sems: Default::default(),
        }
    }

    pub fn per_destination(&self) -> usize {
        self.per_destination
    }

    /// The policy's bound first, then the destination's: a run waiting
    /// for its policy's room never sits on the destination's meanwhile.
    fn sems(&self, policy: &str, d: &Destination, cap: Option<u32>) -> Vec<Arc<Semaphore>> {
        let mut m = self.sems.lock().expect("limits");
        let mut out = Vec::new();
        if let Some(cap) = cap {
            out.push(
                m.entry((Some(policy.to_string()), d.clone()))
                    .or_insert_with(|| Arc::new(Semaphore::new(cap.max(1) as usize)))
                    .clone(),
            );
        }
        out.push(
            m.entry((None, d.clone()))
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_destination)))
                .clone(),
        );
        out
    }

    /// Room for one copy now, if there is some.
    fn try_acquire(
        &self,
        policy: &str,
        d: &Destination,
        cap: Option<u32>,
    ) -> Option<Vec<OwnedSemaphorePermit>> {
        self.sems(policy, d, cap)
            .into_iter()
            .map(|s| s.try_acquire_owned().ok())
            .collect()
    }

    /// Room for one copy, waiting for it (semaphores serve in order).
    async fn acquire(
        &self,
        policy: &str,
        d: &Destination,
        cap: Option<u32>,
    ) -> Vec<OwnedSemaphorePermit> {
        let mut out = Vec::new();
        for s in self.sems(policy, d, cap) {
            out.push(s.acquire_owned().await.expect("never closed"));
        }
        out
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new(DEFAULT_DR_CONCURRENCY as usize)
    }
}

/// What DR runs share: the cloud, the state, the limits, the clock.
pub struct DrWork {
    pub cloud: Arc<dyn Cloud>,
    pub store: SharedStore,
    pub limits: Limits,
    /// The time the work starts at (the runner's clock, `--now`).
    pub now: DateTime<Utc>,
    started: std::time::Instant,
    /// Time between two looks at copies in flight.
    pub interval: std::time::Duration,
    /// False: start what fits and return (`lifeboat backup --no-wait-dr`);
    /// the runner finishes the rest.
    pub wait: bool,
    /// The state lock the caller holds: retention of copies deletes only
    /// while it is still held. `None` checks nothing (tests).
    pub lock_id: Option<String>,
    /// A runner's hold on the state lock, in place of `lock_id`: let go of
    /// while the copies are waited for.
    pub gate: Option<crate::state::LockGate>,
}

impl DrWork {
    pub fn new(
        cloud: Arc<dyn Cloud>,
        store: SharedStore,
        limits: Limits,
        now: DateTime<Utc>,
    ) -> DrWork {
        DrWork {
            cloud,
            store,
            limits,
            now,
            started: std::time::Instant::now(),
            interval: std::time::Duration::from_secs(15),
            wait: true,
            lock_id: None,
            gate: None,
        }
    }

    /// The state lock held now: the runner's, or the caller's.
    pub fn lock_now(&self) -> Option<String> {
        match &self.gate {
            Some(g) => g.current(),
            None => self.lock_id.clone(),
        }
    }

    /// A share of the runner's lock for one piece of work, taken when the
    /// lock is free; nothing without a gate (the caller holds the lock).
    pub(crate) async fn share(&self) -> Result<Option<crate::state::GateGuard>, StateError> {
        match &self.gate {
            Some(g) => Ok(Some(g.enter().await?)),
            None => Ok(None),
        }
    }

    /// The lock retention of copies and originals checks before each
    /// delete; a runner that holds none now deletes nothing.
    pub fn retention_lock(&self) -> Result<Option<String>, StateError> {
        let lock = self.lock_now();
        if lock.is_none() && self.gate.is_some() {
            return Err(crate::runmode::attempt::no_lock_to_delete());
        }
        Ok(lock)
    }

    /// Runs `wait` (a wait for AWS) without the runner's state lock, taken
    /// again after; without a gate, just runs it.
    pub(crate) async fn unlocked<T>(
        &self,
        wait: impl std::future::Future<Output = T>,
    ) -> Result<T, StateError> {
        match &self.gate {
            Some(g) => g.unlocked(wait).await,
            None => Ok(wait.await),
        }
    }
}

/// Records the DR runs of a finished backup: pending for each destination
/// when it is due under `every`, skipped otherwise. Returns the pending
/// ones. Nothing for a policy without `dr` or a backup that did not succeed.
pub fn record_due(
    store: &SharedStore,
    policy: &PolicyState,
    backup: &BackupRecord,
    now: DateTime<Utc>,
) -> Result<Vec<DrRun>, StateError> {
    let Some(dr) = &policy.dr else {
        return Ok(Vec::new());
    };
    if backup.status != crate::state::BackupStatus::Success {
        return Ok(Vec::new());
    }
    let mut s = store.lock().expect("store");
    let runs = s.dr_runs(Some(&backup.policy))?;
    if runs.iter().any(|r| r.backup_id == backup.id) {
        // Recorded already (a retried record after a crash).
        return Ok(runs
            .into_iter()
            .filter(|r| r.backup_id == backup.id && r.status.is_open())
            .collect());
    }
    let due = route::due(dr, backup, &runs);
    let routes = route::routes(dr, &policy.account, &backup.snapshots);
    let made: Vec<DrRun> = routes
        .keys()
        .map(|d| DrRun {
            policy: backup.policy.clone(),
            backup_id: backup.id.clone(),
            backup_seq: backup.seq,
            destination: d.clone(),
            status: if due {
                DrStatus::Pending
            } else {
                DrStatus::Skipped
            },
            started: now,
            updated: now,
            detail: if due {
                String::new()
            } else {
                format!("dr.every = {}: this backup is not copied", dr.every)
            },
        })
        .collect();
    // Made from what was read before: never written over a newer state.
    s.transaction_no_retry(|tx| {
        for r in &made {
            tx.put_dr_run(r)?;
        }
        Ok(())
    })?;
    Ok(made
        .into_iter()
        .filter(|r| r.status == DrStatus::Pending)
        .collect())
}

/// The DR runs a stopped process left pending or in progress: the runner
/// resumes them at its start.
pub fn open_runs(store: &SharedStore) -> Result<Vec<DrRun>, StateError> {
    Ok(store
        .lock()
        .expect("store")
        .dr_runs(None)?
        .into_iter()
        .filter(|r| r.status.is_open())
        .collect())
}

/// Drives every run in `runs` at once (each within the shared limits),
/// oldest backup first in the queue for room. Returns each run as it ended.
///
/// Once they ended, the copies' retention runs for the policies whose runs
/// completed: their older copies may now expire. Its failures are in the
/// returned report.
pub async fn copy(work: &DrWork, mut runs: Vec<DrRun>) -> Vec<Result<DrRun, StateError>> {
    runs.sort_by_key(|r| (r.started, r.backup_seq));
    let ended = futures_join(runs.into_iter().map(|r| drive_shared(work, r))).await;
    let completed: std::collections::BTreeSet<String> = ended
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|r| r.status == DrStatus::Completed)
        .map(|r| r.policy.clone())
        .collect();
    if !completed.is_empty() && work.wait {
        let _share = match work.share().await {
            Ok(share) => share,
            Err(e) => return ended.into_iter().chain([Err(e)]).collect(),
        };
        if let Err(e) = retain_copies(work, &completed).await {
            return ended.into_iter().chain([Err(e)]).collect();
        }
        if let Err(e) = retain_originals(work, &completed).await {
            return ended.into_iter().chain([Err(e)]).collect();
        }
    }
    if work.wait {
        // Copies whose lock call failed before (or whose process stopped
        // before it) are locked now; after retention, so that a copy that
        // just expired is not locked past its time.
        let _share = match work.share().await {
            Ok(share) => share,
            Err(e) => return ended.into_iter().chain([Err(e)]).collect(),
        };
        if let Err(e) = lock::lock_pending(work).await {
            return ended.into_iter().chain([Err(e)]).collect();
        }
    }
    ended
}

/// Drives one run under its own share of a runner's lock: each run lets go
/// of its share in its own waits, and the lock is let go of only once every
/// run (and every other piece of the runner's work) waits.
async fn drive_shared(work: &DrWork, run: DrRun) -> Result<DrRun, StateError> {
    let _share = work.share().await?;
    copy::drive(work, run).await
}

/// `keep_original = false`: once a backup's copies completed, its
/// originals go, by the backup retention's own rule.
async fn retain_originals(
    work: &DrWork,
    policies: &std::collections::BTreeSet<String>,
) -> Result<(), StateError> {
    for name in policies {
        let pol = work.store.lock().expect("store").load()?.policy(name)?;
        let away = pol
            .as_ref()
            .and_then(|p| p.dr.as_ref())
            .and_then(|d| d.cross_account.as_ref())
            .is_some_and(|x| !x.keep_original);
        if !away {
            continue;
        }
        let r = crate::backup::retain_policy(
            work.cloud.clone(),
            work.store.clone(),
            name,
            None,
            work.now_at(),
            work.retention_lock()?.as_deref(),
        )
        .await;
        match r {
            Err(crate::backup::BackupError::State(e)) => return Err(e),
            // A failed delete is retried by the next backup or apply.
            _ => continue,
        }
    }
    Ok(())
}

pub(crate) async fn futures_join<F: std::future::Future>(
    fs: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let fs: Vec<_> = fs.map(Box::pin).collect();
    let mut out = Vec::with_capacity(fs.len());
    // Polled together: each run waits on AWS, not on the others.
    let mut pending: Vec<_> = fs.into_iter().enumerate().collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|(i, f)| match f.as_mut().poll(cx) {
            std::task::Poll::Ready(v) => {
                results[*i] = Some(v);
                false
            }
            std::task::Poll::Pending => true,
        });
        if pending.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(results.into_iter().map(|r| r.expect("every run ended")));
    out
}
