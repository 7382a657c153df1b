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
use crate::cloud::{Cloud, DbSnapshotKind};
use crate::plan::graph;
use crate::plan::{Action, Change, Plan};
use crate::state::SharedStore;
use crate::vpc::clone::{self, CloneState};

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

fn field<'a>(v: &'a Option<Value>, key: &str) -> Result<&'a str, String> {
    v.as_ref()
        .and_then(|v| v.get(key))
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the plan's value has no {key:?}"))
}

impl Executor {
    fn write(
        &self,
        f: impl FnOnce(&mut crate::state::Tx<'_>) -> crate::state::StateResult<()>,
    ) -> Result<(), String> {
        // The lock is kept alive by the caller's heartbeat; the write itself
        // is one transaction.
        let mut store = self.store.lock().expect("state store lock poisoned");
        store.transaction(f).map_err(|e| e.to_string())
    }

    /// Refuses a destructive call unless this apply still holds the state
    /// lock, and stops the whole apply when it does not: somebody broke it,
    /// and the plan may no longer be true.
    fn still_locked(&self) -> Result<(), String> {
        let Some(id) = &self.lock_id else {
            return Ok(());
        };
        let held = self
            .store
            .lock()
            .expect("state store lock poisoned")
            .current_lock()
            .map_err(|e| e.to_string())?;
        if held.as_ref().map(|l| &l.id) == Some(id) {
            return Ok(());
        }
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        Err(format!(
            "the state lock {id} is no longer held by this apply (broken or taken over); stopping"
        ))
    }

    fn account(&self, name: &str) -> Result<&Account, String> {
        self.accounts
            .get(name)
            .ok_or_else(|| format!("account {name} is neither configured nor in state"))
    }

    /// The checks before a catalog record (an AMI or a DB snapshot) is
    /// destroyed, as for snapshots: the account allows deletion, the record
    /// is in the catalog, its backup finished and is not frozen, and the
    /// lock is still held. Returns the account and region to act in.
    fn deletable<'a>(&'a self, c: &'a Change, id: &str) -> Result<(&'a Account, &'a str), String> {
        let account = field(&c.before, "account")?;
        let region = field(&c.before, "region")?;
        let acct = self.account(account)?;
        if !acct.allow_delete {
            return Err(format!(
                "account {account} has allow_delete = false; refusing to delete {id}"
            ));
        }
        let owner = self
            .store
            .lock()
            .expect("state store lock poisoned")
            .snapshot_owner(id)
            .map_err(|e| e.to_string())?;
        match owner {
            None => return Err(format!("{id} is not in the catalog; refusing to delete it")),
            Some(o) if o.frozen => {
                return Err(format!(
                    "{id} belongs to frozen backup {} of policy {}; refusing to delete it",
                    o.backup_id, o.policy
                ))
            }
            Some(o) if o.status == crate::state::BackupStatus::Running => {
                return Err(format!(
                    "{id} belongs to backup {} of policy {}, still running; refusing to delete it",
                    o.backup_id, o.policy
                ))
            }
            Some(_) => {}
        }
        self.still_locked()?;
        Ok((acct, region))
    }

    /// Performs one change.
    pub async fn perform(&self, c: &Change) -> Result<(), String> {
        match (&c.address, c.action) {
            (
                Address::Account { .. } | Address::Policy { .. } | Address::Target { .. },
                Action::Create | Action::Update | Action::Replace,
            ) => {
                let after = c
                    .after
                    .clone()
                    .ok_or("the plan's change has no value to write")?;
                self.write(|tx| tx.put_object(&c.address, &after))
            }
            (
                Address::Account { .. } | Address::Policy { .. } | Address::Target { .. },
                Action::Delete,
            ) => {
                let policy = match &c.address {
                    Address::Target { policy, .. } => policy.clone(),
                    _ => String::new(),
                };
                self.write(|tx| {
                    tx.delete_object(&c.address)?;
                    if let Some(msg) = &c.alert {
                        tx.open_alert(&policy, self.now, msg)?;
                    }
                    Ok(())
                })
            }
            (Address::Snapshot { id }, Action::Delete) => {
                let account = field(&c.before, "account")?;
                let region = field(&c.before, "region")?;
                let acct = self.accounts.get(account).ok_or_else(|| {
                    format!("account {account} is neither configured nor in state")
                })?;
                // The plan is checked against the catalog before anything is
                // destroyed: only a snapshot of a finished, unfrozen backup in
                // an account that allows deletion may go.
                if !acct.allow_delete {
                    return Err(format!(
                        "account {account} has allow_delete = false; refusing to delete {id}"
                    ));
                }
                let owner = self
                    .store
                    .lock()
                    .expect("state store lock poisoned")
                    .snapshot_owner(id)
                    .map_err(|e| e.to_string())?;
                match owner {
                    None => return Err(format!("{id} is not in the catalog; refusing to delete it")),
                    Some(o) if o.frozen => return Err(format!("{id} belongs to frozen backup {} of policy {}; refusing to delete it", o.backup_id, o.policy)),
                    Some(o) if o.status == crate::state::BackupStatus::Running => {
                        return Err(format!("{id} belongs to backup {} of policy {}, still running; refusing to delete it", o.backup_id, o.policy))
                    }
                    Some(_) => {}
                }
                self.still_locked()?;
                let ec2 = self
                    .cloud
                    .ec2(acct, region)
                    .await
                    .map_err(|e| e.to_string())?;
                ec2.delete_snapshot(id).await.map_err(|e| e.to_string())?;
                crate::failpoint::hit(crate::failpoint::APPLY_DELETED);
                self.write(|tx| tx.delete_snapshot(id))
            }
            (
                Address::Image { id }
                | Address::DbSnapshot { id }
                | Address::DbClusterSnapshot { id },
                Action::Delete,
            ) => {
                let (acct, region) = self.deletable(c, id)?;
                match &c.address {
                    Address::Image { .. } => {
                        let ec2 = self
                            .cloud
                            .ec2(acct, region)
                            .await
                            .map_err(|e| e.to_string())?;
                        ec2.deregister_image(id).await.map_err(|e| e.to_string())?;
                    }
                    _ => {
                        let kind = if matches!(c.address, Address::DbSnapshot { .. }) {
                            DbSnapshotKind::Instance
                        } else {
                            DbSnapshotKind::Cluster
                        };
                        let rds = self
                            .cloud
                            .rds(acct, region)
                            .await
                            .map_err(|e| e.to_string())?;
                        rds.delete_db_snapshot(kind, id)
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                }
                self.write(|tx| tx.delete_snapshot(id))
            }
            (Address::Snapshot { id }, Action::Read) => self.write(|tx| tx.forget_snapshot(id)),
            (Address::Backup { policy, id }, Action::Delete) => {
                self.write(|tx| tx.delete_backup(policy, id))
            }
            (Address::VpcClone { .. }, Action::Create | Action::Update | Action::Replace) => {
                let after = c
                    .after
                    .clone()
                    .ok_or("the plan's change has no value to write")?;
                let want: CloneState =
                    serde_json::from_value(after.clone()).map_err(|e| e.to_string())?;
                let acct = self.account(&want.account)?;
                clone::deploy(&*self.cloud, acct, &want, clone::Wait::for_state(&want)).await?;
                if c.action == Action::Replace {
                    // The new stack exists; the old one goes, its resources stay.
                    if let Some(before) = &c.before {
                        let old: CloneState =
                            serde_json::from_value(before.clone()).map_err(|e| e.to_string())?;
                        let old_acct = self.account(&old.account)?;
                        clone::destroy(&*self.cloud, old_acct, &old, clone::Wait::for_state(&old))
                            .await?;
                    }
                }
                self.write(|tx| tx.put_object(&c.address, &after))
            }
            (Address::VpcClone { .. }, Action::Delete) => {
                let before = c
                    .before
                    .clone()
                    .ok_or("the plan's change has no prior value")?;
                let old: CloneState = serde_json::from_value(before).map_err(|e| e.to_string())?;
                let acct = self.account(&old.account)?;
                clone::destroy(&*self.cloud, acct, &old, clone::Wait::for_state(&old)).await?;
                self.write(|tx| tx.delete_object(&c.address))
            }
            (
                Address::Account { .. }
                | Address::Policy { .. }
                | Address::Target { .. }
                | Address::VpcClone { .. },
                Action::Read,
            )
            | (
                Address::Snapshot { .. }
                | Address::Image { .. }
                | Address::DbSnapshot { .. }
                | Address::DbClusterSnapshot { .. },
                Action::Create | Action::Update | Action::Replace,
            )
            | (
                Address::Image { .. }
                | Address::DbSnapshot { .. }
                | Address::DbClusterSnapshot { .. },
                Action::Read,
            )
            | (
                Address::Backup { .. },
                Action::Create | Action::Update | Action::Replace | Action::Read,
            ) => Err(format!(
                "{} cannot be applied to {}",
                c.action.symbol(),
                c.address
            )),
        }
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
            Err(e) => Outcome::Failed(e),
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
