//! The executor: performs a plan's changes in dependency order with bounded
//! parallelism, records each finished change in state at once, and skips
//! everything that depends on a change that failed.
//!
//! Each change is idempotent against AWS (deleting a snapshot that is gone
//! succeeds), so re-running an apply that was interrupted is safe.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lifeboat_schema::Account;
use petgraph::Direction;
use serde::Serialize;
use serde_json::Value;

use crate::addr::Address;
use crate::cloud::{gone_is_done, Cloud, CloudError, DbSnapshotKind, ErrorKind};
use crate::plan::graph;
use crate::plan::Prior;
use crate::plan::{Action, Change, Plan};
use crate::state::{SharedStore, StateError};
use crate::vpc::clone::{self, CloneError, CloneState};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "detail")]
pub enum Outcome {
    Done,
    Failed(String),
    /// Not attempted because this change depends on one that failed.
    Skipped(Address),
    /// Not started because the apply was interrupted (SIGINT, SIGTERM).
    Interrupted,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub outcomes: BTreeMap<Address, Outcome>,
}

impl Report {
    pub fn failed(&self) -> usize {
        self.outcomes
            .values()
            .filter(|o| matches!(o, Outcome::Failed(_)))
            .count()
    }
    pub fn skipped(&self) -> usize {
        self.outcomes
            .values()
            .filter(|o| matches!(o, Outcome::Skipped(_)))
            .count()
    }
    pub fn interrupted(&self) -> usize {
        self.outcomes
            .values()
            .filter(|o| matches!(o, Outcome::Interrupted))
            .count()
    }
    pub fn done(&self) -> usize {
        self.outcomes
            .values()
            .filter(|o| matches!(o, Outcome::Done))
            .count()
    }
}

/// What a change needs to be carried out.
pub struct Executor {
    pub cloud: Arc<dyn Cloud>,
    /// Accounts by name, with the credentials settings to reach them.
    pub accounts: BTreeMap<String, Account>,
    pub store: SharedStore,
    pub now: DateTime<Utc>,
    /// The state lock held for this apply, renewed as changes finish.
    pub lock_id: Option<String>,
    /// Set on an interrupt: no new change starts; those in flight finish
    /// and are recorded, so the state stays true to AWS.
    pub stop: Arc<std::sync::atomic::AtomicBool>,
}

/// Why one change of a plan was not carried out. A failed AWS call keeps
/// its [`CloudError`] (kind included), a failed state write its
/// [`StateError`]; the text is what the apply prints for the change.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Clone(#[from] CloneError),
    /// The configuration or the catalog forbids destroying the record.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Somebody broke or took over this apply's state lock; the whole apply
    /// stops.
    #[error(
        "the state lock {id} is no longer held by this apply (broken or taken over); stopping"
    )]
    LockLost { id: String },
    #[error("account {0} is neither configured nor in state")]
    UnknownAccount(String),
    #[error("the plan's value has no {0:?}")]
    MissingField(String),
    #[error("the plan's change has no value to write")]
    NoValue,
    #[error("the plan's change has no prior value")]
    NoPriorValue,
    /// A value in the plan does not read as what its address holds.
    #[error("{source}")]
    Decode {
        address: Address,
        source: serde_json::Error,
    },
    #[error("{} cannot be applied to {address}", .action.symbol())]
    NotApplicable { action: Action, address: Address },
    /// DR copies that did not complete (failed, timed out).
    #[error("{0}")]
    Dr(String),
}

impl ApplyError {
    /// The kind of the AWS failure behind this error, if it is one.
    pub fn cloud_kind(&self) -> Option<ErrorKind> {
        match self {
            ApplyError::Cloud(e) | ApplyError::Clone(CloneError::Cloud(e)) => Some(e.kind),
            _ => None,
        }
    }
}

/// Why a catalog record may not be destroyed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("account {account} has allow_delete = false; refusing to delete {id}")]
    DeleteNotAllowed { account: String, id: String },
    #[error("{id} is not in the catalog; refusing to delete it")]
    NotInCatalog { id: String },
    #[error("{id} belongs to frozen backup {backup_id} of policy {policy}; refusing to delete it")]
    Frozen {
        id: String,
        backup_id: String,
        policy: String,
    },
    #[error("{id} belongs to backup {backup_id} of policy {policy}, still running; refusing to delete it")]
    StillRunning {
        id: String,
        backup_id: String,
        policy: String,
    },
    #[error("{id} in account {account} ({region}) belongs to backup {backup_id} of policy {policy}, which restore {restore} is reading; refusing to delete it until the restore ends")]
    Restoring {
        id: String,
        account: String,
        region: String,
        backup_id: String,
        policy: String,
        restore: String,
    },
}

fn field<'a>(v: &'a Option<Prior>, key: &str) -> Result<&'a str, ApplyError> {
    v.as_ref()
        .and_then(|v| v.str(key))
        .ok_or_else(|| ApplyError::MissingField(key.to_string()))
}

/// A clone's value from the plan.
fn clone_state(c: &Change, v: &Value) -> Result<CloneState, ApplyError> {
    serde_json::from_value(v.clone()).map_err(|source| ApplyError::Decode {
        address: c.address.clone(),
        source,
    })
}

impl Executor {
    pub(crate) fn write(
        &self,
        f: impl FnMut(&mut crate::state::Tx<'_>) -> crate::state::StateResult<()>,
    ) -> Result<(), ApplyError> {
        // The lock is kept alive by the caller's heartbeat; the write itself
        // is one transaction.
        let mut store = self.store.lock().expect("state store lock poisoned");
        Ok(store.transaction(f)?)
    }

    /// Refuses a destructive call unless this apply still holds the state
    /// lock, and stops the whole apply when it does not: somebody broke it,
    /// and the plan may no longer be true.
    pub(crate) fn still_locked(&self) -> Result<(), ApplyError> {
        let Some(id) = &self.lock_id else {
            return Ok(());
        };
        let held = self
            .store
            .lock()
            .expect("state store lock poisoned")
            .current_lock()?;
        if held.as_ref().map(|l| &l.id) == Some(id) {
            return Ok(());
        }
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        Err(ApplyError::LockLost { id: id.clone() })
    }

    pub(crate) fn account(&self, name: &str) -> Result<&Account, ApplyError> {
        self.accounts
            .get(name)
            .ok_or_else(|| ApplyError::UnknownAccount(name.to_string()))
    }

    /// The checks before a catalog record (an EBS snapshot, an AMI or a DB
    /// snapshot) is destroyed: the plan is checked against the catalog, so
    /// only a record of a finished, unfrozen backup in an account that
    /// allows deletion may go, and only while the lock is still held.
    /// Returns the account and region to act in.
    fn deletable<'a>(
        &'a self,
        c: &'a Change,
        id: &str,
    ) -> Result<(&'a Account, &'a str), ApplyError> {
        let account = field(&c.before, "account")?;
        let region = field(&c.before, "region")?;
        let acct = self.account(account)?;
        if !acct.allow_delete {
            return Err(Refusal::DeleteNotAllowed {
                account: account.to_string(),
                id: id.to_string(),
            }
            .into());
        }
        let owner = {
            let mut store = self.store.lock().expect("state store lock poisoned");
            // On shared state, what another host recorded (a freeze, a
            // restore that reads this backup) counts: read the latest.
            store.sync()?;
            store.snapshot_owner(id)?
        };
        let refusal = match owner {
            None => Refusal::NotInCatalog { id: id.to_string() },
            Some(o) if o.frozen => Refusal::Frozen {
                id: id.to_string(),
                backup_id: o.backup_id,
                policy: o.policy,
            },
            Some(o) if o.status == crate::state::BackupStatus::Running => Refusal::StillRunning {
                id: id.to_string(),
                backup_id: o.backup_id,
                policy: o.policy,
            },
            Some(o) => match self.restoring(|u| u.reads_backup(&o.policy, &o.backup_id))? {
                Some(restore) => Refusal::Restoring {
                    id: id.to_string(),
                    account: account.to_string(),
                    region: region.to_string(),
                    backup_id: o.backup_id,
                    policy: o.policy,
                    restore,
                },
                None => {
                    self.still_locked()?;
                    return Ok((acct, region));
                }
            },
        };
        Err(refusal.into())
    }

    /// The running restore, if any, that reads what `reads` matches: what
    /// it reads is not deleted under it, whatever the plan decided before.
    pub(crate) fn restoring(
        &self,
        reads: impl Fn(&crate::state::InUse) -> bool,
    ) -> Result<Option<String>, ApplyError> {
        let mut st = self.store.lock().expect("state store lock poisoned");
        // A restore started on another host since the plan counts.
        st.sync()?;
        Ok(st
            .in_use()?
            .into_iter()
            .find(|u| reads(u))
            .map(|u| u.restore))
    }

    /// Performs one change.
    pub async fn perform(&self, c: &Change) -> Result<(), ApplyError> {
        use Action::*;
        self.interlock(c)?;
        match (&c.address, c.action) {
            (
                Address::Account { .. } | Address::Policy { .. } | Address::Target { .. },
                Create | Update | Replace,
            ) => {
                let after = c.after.clone().ok_or(ApplyError::NoValue)?;
                self.write(|tx| {
                    tx.put_object(&c.address, &after)?;
                    if let Address::Target { policy, id } = &c.address {
                        tx.target_returned(policy, id)?;
                    }
                    Ok(())
                })
            }
            (Address::Account { .. } | Address::Policy { .. } | Address::Target { .. }, Delete) => {
                self.remove_object(c)
            }
            (
                Address::Snapshot { id }
                | Address::Image { id }
                | Address::DbSnapshot { id }
                | Address::DbClusterSnapshot { id },
                Delete,
            ) => self.destroy_record(c, id).await,
            (
                Address::Snapshot { id }
                | Address::Image { id }
                | Address::DbSnapshot { id }
                | Address::DbClusterSnapshot { id },
                Read,
            ) => self.write(|tx| tx.forget_snapshot(id, self.now)),
            (Address::Backup { policy, id }, Delete) => {
                self.write(|tx| tx.delete_backup(policy, id, self.now))
            }
            (Address::Policy { name }, Move) => {
                let to = c.moved_to().ok_or(ApplyError::NoValue)?;
                self.write(|tx| tx.move_policy(name, to))
            }
            (Address::VpcClone { .. }, Create | Update | Replace) => self.deploy_clone(c).await,
            (Address::VpcClone { .. }, Delete) => self.destroy_clone(c).await,
            (Address::IamRole { .. }, Create | Update | Replace | Delete) => {
                let value = crate::iam::role::perform(&self.cloud, &self.accounts, c).await?;
                self.write(|tx| match &value {
                    Some(v) => tx.put_object(&c.address, v),
                    None => tx.delete_object(&c.address),
                })
            }
            (Address::DrCopy { .. }, _) => self.dr_copy(c).await,
            // Power states are acted on by run mode and `rc`, never by apply.
            (Address::ControlTarget { .. }, _) => Err(ApplyError::NotApplicable {
                action: c.action,
                address: c.address.clone(),
            }),
            (
                Address::Account { .. }
                | Address::Policy { .. }
                | Address::Target { .. }
                | Address::VpcClone { .. }
                | Address::IamRole { .. },
                Read,
            )
            | (
                Address::Account { .. }
                | Address::Target { .. }
                | Address::VpcClone { .. }
                | Address::IamRole { .. }
                | Address::Backup { .. }
                | Address::Snapshot { .. }
                | Address::Image { .. }
                | Address::DbSnapshot { .. }
                | Address::DbClusterSnapshot { .. },
                Move,
            )
            | (
                Address::Snapshot { .. }
                | Address::Image { .. }
                | Address::DbSnapshot { .. }
                | Address::DbClusterSnapshot { .. },
                Create | Update | Replace,
            )
            | (Address::Backup { .. }, Create | Update | Replace | Read) => {
                Err(ApplyError::NotApplicable {
                    action: c.action,
                    address: c.address.clone(),
                })
            }
        }
    }

    /// Removes an account, policy or target from state, opening the alert
    /// the plan attached (a target gone from AWS).
    fn remove_object(&self, c: &Change) -> Result<(), ApplyError> {
        let policy = match &c.address {
            Address::Target { policy, .. } => policy.clone(),
            _ => String::new(),
        };
        self.write(|tx| {
            tx.delete_object(&c.address)?;
            match &c.address {
                Address::Target { policy, id } => tx.target_departed(policy, id, self.now)?,
                Address::Policy { name } => tx.forget_departures(name)?,
                _ => {}
            }
            if let Some(msg) = &c.alert {
                tx.open_alert(&policy, self.now, msg)?;
            }
            Ok(())
        })
    }

    /// Destroys a catalog record in AWS once [`Self::deletable`] allows it,
    /// then drops it from the catalog. One already gone counts as
    /// destroyed, so an interrupted apply can be run again.
    async fn destroy_record(&self, c: &Change, id: &str) -> Result<(), ApplyError> {
        let (acct, region) = self.deletable(c, id)?;
        let db_kind = match &c.address {
            Address::Snapshot { .. } => {
                let ec2 = self.cloud.ec2(acct, region).await?;
                gone_is_done(ec2.delete_snapshot(id).await)?;
                crate::failpoint::hit(crate::failpoint::APPLY_DELETED);
                None
            }
            Address::Image { .. } => {
                let ec2 = self.cloud.ec2(acct, region).await?;
                gone_is_done(ec2.deregister_image(id).await)?;
                None
            }
            Address::DbSnapshot { .. } => Some(DbSnapshotKind::Instance),
            _ => Some(DbSnapshotKind::Cluster),
        };
        if let Some(kind) = db_kind {
            let rds = self.cloud.rds(acct, region).await?;
            gone_is_done(rds.delete_db_snapshot(kind, id).await)?;
        }
        self.write(|tx| tx.delete_snapshot(id, self.now))
    }

    /// Creates or updates a clone's stack; a replace then deletes the old
    /// stack (its resources stay). Recorded once the stack is complete.
    async fn deploy_clone(&self, c: &Change) -> Result<(), ApplyError> {
        let after = c.after.clone().ok_or(ApplyError::NoValue)?;
        let want = clone_state(c, &after)?;
        let acct = self.account(&want.account)?;
        clone::deploy(&*self.cloud, acct, &want, clone::Wait::for_state(&want)).await?;
        if c.action == Action::Replace {
            if let Some(before) = &c.before {
                let old = clone_state(c, &before.value())?;
                let old_acct = self.account(&old.account)?;
                clone::destroy(&*self.cloud, old_acct, &old, clone::Wait::for_state(&old)).await?;
            }
        }
        self.write(|tx| tx.put_object(&c.address, &after))
    }

    async fn destroy_clone(&self, c: &Change) -> Result<(), ApplyError> {
        let before = c.before.as_ref().ok_or(ApplyError::NoPriorValue)?;
        let old = clone_state(c, &before.value())?;
        let acct = self.account(&old.account)?;
        clone::destroy(&*self.cloud, acct, &old, clone::Wait::for_state(&old)).await?;
        self.write(|tx| tx.delete_object(&c.address))
    }
}

/// Walks the plan graph: at most `parallelism` changes at once, a change
/// starts when everything it depends on is done, and the dependents of a
/// failed change are skipped. `progress` sees every outcome as it happens.
pub async fn apply(
    plan: &Plan,
    exec: Arc<Executor>,
    parallelism: usize,
    mut progress: impl FnMut(&Change, &Outcome),
) -> Report {
    let g = graph::build(plan);
    let n = plan.changes.len();
    let mut waiting: Vec<usize> = (0..n)
        .map(|i| {
            g.graph
                .neighbors_directed(g.nodes[i], Direction::Incoming)
                .count()
        })
        .collect();
    let mut ready: VecDeque<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut report = Report::default();
    let mut running = tokio::task::JoinSet::new();
    let parallelism = parallelism.max(1);
    let refused = exec.refusals(&plan.changes);
    if let Some((first, _)) = refused.first() {
        let first = plan.changes[*first].address.clone();
        let mut refused: BTreeMap<usize, String> = refused
            .into_iter()
            .map(|(i, e)| (i, e.to_string()))
            .collect();
        for (i, c) in plan.changes.iter().enumerate() {
            let o = match refused.remove(&i) {
                Some(why) => Outcome::Failed(why),
                None => Outcome::Skipped(first.clone()),
            };
            progress(c, &o);
            report.outcomes.insert(c.address.clone(), o);
        }
        return report;
    }

    loop {
        while running.len() < parallelism && !exec.stop.load(std::sync::atomic::Ordering::SeqCst) {
            let Some(i) = ready.pop_front() else { break };
            let exec = exec.clone();
            let change = plan.changes[i].clone();
            running.spawn(async move { (i, exec.perform(&change).await) });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (i, result) = joined.expect("apply task panicked");
        let outcome = match result {
            Ok(()) => Outcome::Done,
            Err(e) => Outcome::Failed(e.to_string()),
        };
        progress(&plan.changes[i], &outcome);
        let failed = !matches!(outcome, Outcome::Done);
        report
            .outcomes
            .insert(plan.changes[i].address.clone(), outcome);
        if failed {
            // Skip everything downstream of the failure, transitively.
            let mut stack = vec![i];
            while let Some(j) = stack.pop() {
                for d in g.graph.neighbors_directed(g.nodes[j], Direction::Outgoing) {
                    let k = g.graph[d];
                    if let std::collections::btree_map::Entry::Vacant(v) =
                        report.outcomes.entry(plan.changes[k].address.clone())
                    {
                        let o = Outcome::Skipped(plan.changes[i].address.clone());
                        progress(&plan.changes[k], &o);
                        v.insert(o);
                        stack.push(k);
                    }
                }
            }
        } else {
            for d in g.graph.neighbors_directed(g.nodes[i], Direction::Outgoing) {
                let k = g.graph[d];
                waiting[k] -= 1;
                if waiting[k] == 0 && !report.outcomes.contains_key(&plan.changes[k].address) {
                    ready.push_back(k);
                }
            }
        }
    }
    for c in &plan.changes {
        if !report.outcomes.contains_key(&c.address) {
            progress(c, &Outcome::Interrupted);
            report
                .outcomes
                .insert(c.address.clone(), Outcome::Interrupted);
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::plan::Effect;
    use crate::state::{BackupRecord, BackupStatus, SnapshotRecord, Store};
    use crate::testing::fake::FakeCloud;

    fn t() -> DateTime<Utc> {
        "2026-11-22T10:00:00Z".parse().unwrap()
    }

    /// A store whose catalog holds `snap-1` of a backup in `status`, and an
    /// executor for account `main`.
    fn bench(status: BackupStatus, allow_delete: bool) -> (FakeCloud, Executor, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("state.db")).unwrap();
        store
            .transaction(|tx| {
                tx.insert_backup(&BackupRecord {
                    seq: 0,
                    id: "b1".into(),
                    policy: "web".into(),
                    account: "main".into(),
                    started: t(),
                    finished: Some(t()),
                    status,
                    frozen: None,
                    snapshots: vec![SnapshotRecord {
                        id: "snap-1".into(),
                        volume_id: "vol-1".into(),
                        target: "i-1".into(),
                        region: "us-east-1".into(),
                        kind: Default::default(),
                        image: None,
                    }],
                    problems: vec![],
                })
            })
            .unwrap();
        let config = lifeboat_schema::load_sources(&[(
            "main.lb.hcl".into(),
            format!("account \"main\" {{\n  regions = [\"us-east-1\"]\n  allow_delete = {allow_delete}\n}}\n"),
        )])
        .unwrap_or_else(|d| panic!("{d}"))
        .config;
        let cloud = FakeCloud::new(10);
        let exec = Executor {
            cloud: Arc::new(cloud.clone()),
            accounts: config.accounts.clone(),
            store: Arc::new(Mutex::new(store)),
            now: t(),
            lock_id: None,
            stop: Arc::default(),
        };
        (cloud, exec, dir)
    }

    #[tokio::test]
    async fn a_value_that_would_not_load_back_is_refused_and_nothing_is_written() {
        let (_cloud, exec, _dir) = bench(BackupStatus::Success, true);
        let serial = exec.store.lock().unwrap().serial().unwrap();
        let forged = Change::new(Address::policy("web"), Action::Create, Effect::Control).after(
            Some(serde_json::json!({"name": "web", "generations": "all"})),
        );
        let err = exec.perform(&forged).await.unwrap_err().to_string();
        assert!(err.contains("policy.web"), "{err}");
        let mut store = exec.store.lock().unwrap();
        assert_eq!(store.serial().unwrap(), serial);
        assert!(store.load().unwrap().objects.is_empty());
    }

    fn delete_snap() -> Change {
        Change::new(
            Address::snapshot("snap-1"),
            Action::Delete,
            Effect::DeletesBackups,
        )
        .before(Some(
            serde_json::json!({"account": "main", "region": "us-east-1"}),
        ))
    }

    fn in_catalog(exec: &Executor) -> bool {
        exec.store
            .lock()
            .unwrap()
            .snapshot_owner("snap-1")
            .unwrap()
            .is_some()
    }

    #[tokio::test]
    async fn a_snapshot_already_gone_is_deleted_and_a_throttled_delete_keeps_its_kind() {
        let (cloud, exec, _dir) = bench(BackupStatus::Success, true);
        cloud
            .world
            .lock()
            .unwrap()
            .failing
            .insert("DeleteSnapshot".into(), ErrorKind::Throttled);
        let err = exec.perform(&delete_snap()).await.unwrap_err();
        assert_eq!(err.cloud_kind(), Some(ErrorKind::Throttled), "{err}");
        assert!(in_catalog(&exec));

        cloud
            .world
            .lock()
            .unwrap()
            .failing
            .insert("DeleteSnapshot".into(), ErrorKind::NotFound);
        exec.perform(&delete_snap()).await.unwrap();
        assert!(!in_catalog(&exec));
    }

    #[tokio::test]
    async fn deletion_is_refused_by_the_account_and_by_a_running_backup() {
        let (cloud, exec, _dir) = bench(BackupStatus::Success, false);
        match exec.perform(&delete_snap()).await {
            Err(ApplyError::Refused(r @ Refusal::DeleteNotAllowed { .. })) => assert_eq!(
                r.to_string(),
                "account main has allow_delete = false; refusing to delete snap-1"
            ),
            other => panic!("{other:?}"),
        }
        let (running_cloud, running, _dir2) = bench(BackupStatus::Running, true);
        match running.perform(&delete_snap()).await {
            Err(ApplyError::Refused(r @ Refusal::StillRunning { .. })) => assert_eq!(
                r.to_string(),
                "snap-1 belongs to backup b1 of policy web, still running; refusing to delete it"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(cloud.world.lock().unwrap().calls_of("DeleteSnapshot"), 0);
        assert_eq!(
            running_cloud
                .world
                .lock()
                .unwrap()
                .calls_of("DeleteSnapshot"),
            0
        );
    }
}
