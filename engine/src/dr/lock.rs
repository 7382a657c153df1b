//! EBS Snapshot Lock on DR copies (`dr { lock { .. } }`): a copy that
//! completed is locked at once (an AMI copy: each of its snapshots), its
//! lock recorded with the copy; a lock call that failed is recorded with
//! why and an alert, tried again by the next run, and shown by `plan` as a
//! change that locks it; a governance lock removed outside Lifeboat is
//! shown as a change that locks it again until the expiry it had.
//!
//! RDS has no snapshot lock: DB copies are never locked, and the plan
//! warns a policy whose DB copies a lock block cannot protect.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use lifeboat_schema::{Account, Config, DrLock, LockMode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::addr::Address;
use crate::cloud::{collect_chunked, Cloud, CloudError, LockUntil, SnapshotLockRequest};
use crate::plan::apply::{ApplyError, Executor};
use crate::plan::{Action, Change, Effect};
use crate::state::{
    self, ArtifactKind, CopyLock, Destination, DrCopyRecord, DrStatus, SharedStore, StateError,
};

use super::observe::CopiesSeen;
use super::DrWork;

/// One copy's lock as `plan` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyLockView {
    pub address: Address,
    pub id: String,
    /// `locked`, `expired`, `unlocked` (recorded locked, AWS reports no
    /// lock) or `not_locked` (never locked: its lock call failed).
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<LockMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

/// Can EBS Snapshot Lock protect this copy? EBS snapshots and AMIs (by
/// their snapshots) only.
pub fn lockable(c: &DrCopyRecord) -> bool {
    c.image.is_none() && matches!(c.kind, ArtifactKind::Ebs | ArtifactKind::Image)
}

/// The snapshots a copy's lock goes on: an EBS copy itself, an AMI copy's
/// recorded snapshots.
fn lock_targets<'a>(main: &'a DrCopyRecord, all: &'a [DrCopyRecord]) -> Vec<&'a DrCopyRecord> {
    match main.kind {
        ArtifactKind::Image => all
            .iter()
            .filter(|c| c.image.as_deref() == Some(&main.id) && c.destination == main.destination)
            .collect(),
        _ => vec![main],
    }
}

/// Locks each of `mains` (settled copies at one destination in
/// `dest`) and its AMI's snapshots, and records every lock or failure in
/// one transaction, with an alert per failure. A copy whose recorded lock
/// has not expired is locked again until that expiry (a governance lock
/// removed outside Lifeboat); any other with `lock`. Returns the failures.
pub(crate) async fn lock_copies(
    cloud: &dyn Cloud,
    store: &SharedStore,
    dest: &Account,
    lock: Option<&DrLock>,
    mains: &[DrCopyRecord],
    now: DateTime<Utc>,
) -> Result<Vec<String>, StateError> {
    let Some(first) = mains.first() else {
        return Ok(Vec::new());
    };
    let all = store
        .lock()
        .expect("store")
        .dr_copies(Some(&first.policy))?;
    let aws_held = held_already(cloud, dest, mains, &all, now).await;
    let mut writes: Vec<DrCopyRecord> = Vec::new();
    let mut problems: Vec<(String, String)> = Vec::new();
    for main in mains.iter().filter(|c| lockable(c)) {
        let mut main = main.clone();
        let again = main.locked_at(now).map(|until| (main.lock, until));
        let targets: Vec<DrCopyRecord> = lock_targets(&main, &all).into_iter().cloned().collect();
        let mut failed = None;
        let mut until: Option<DateTime<Utc>> = None;
        let mut mode = None;
        if targets.is_empty() {
            failed = Some(format!(
                "{}: no snapshot of it is recorded to lock",
                main.id
            ));
        }
        for mut t in targets {
            // A fresh lock is asked only of a snapshot not locked already:
            // one recorded locked (part of an AMI an earlier try half
            // locked), or one AWS holds locked though its answer was lost,
            // keeps the lock it has (a second LockSnapshot would push a
            // compliance lock further, and AWS refuses a cool-off on one).
            if again.is_none() {
                let held = t.lock.filter(|_| t.locked_at(now).is_some());
                if let Some(l) = held.or_else(|| aws_held.get(&t.id).copied()) {
                    t.lock = Some(l);
                    t.lock_problem.clear();
                    until = until.max(Some(l.until));
                    mode = Some(l.mode);
                    if t.id != main.id {
                        writes.push(t);
                    } else {
                        main.lock = t.lock;
                        main.lock_problem = t.lock_problem;
                    }
                    continue;
                }
            }
            let req = match (again, lock) {
                (Some((Some(l), u)), _) => SnapshotLockRequest {
                    snapshot_id: t.id.clone(),
                    mode: l.mode,
                    until: LockUntil::At(t.lock.map_or(u, |x| x.until)),
                    cool_off_hours: None,
                },
                (_, Some(l)) => SnapshotLockRequest {
                    snapshot_id: t.id.clone(),
                    mode: l.mode,
                    until: LockUntil::Days(l.days),
                    cool_off_hours: l.cool_off_hours,
                },
                _ => continue,
            };
            match lock_one(cloud, dest, &main.destination.region, &req).await {
                Ok(at) => {
                    t.lock = Some(CopyLock {
                        mode: req.mode,
                        until: at.unwrap_or_else(|| match req.until {
                            LockUntil::At(x) => x,
                            LockUntil::Days(d) => now + chrono::Duration::days(i64::from(d)),
                        }),
                    });
                    t.lock_problem.clear();
                    until = until.max(t.lock.map(|l| l.until));
                    mode = Some(req.mode);
                }
                Err(e) => {
                    t.lock_problem = e.to_string();
                    failed.get_or_insert(e.to_string());
                }
            }
            if t.id != main.id {
                writes.push(t);
            } else {
                main.lock = t.lock;
                main.lock_problem = t.lock_problem;
            }
        }
        if main.kind == ArtifactKind::Image {
            match (&failed, mode, until) {
                (None, Some(mode), Some(until)) => {
                    main.lock = Some(CopyLock { mode, until });
                    main.lock_problem.clear();
                }
                (Some(why), _, _) => main.lock_problem = why.clone(),
                _ => {}
            }
        }
        if let Some(why) = failed {
            problems.push((
                main.policy.clone(),
                format!(
                    "DR copy {} at {} could not be locked (the next run tries again): {why}",
                    main.id, main.destination
                ),
            ));
        }
        writes.push(main);
    }
    record(store, &writes, &problems, now)?;
    Ok(problems.into_iter().map(|(_, m)| m).collect())
}

/// The copies' locks and failures, and an alert per failure, in one
/// transaction.
fn record(
    store: &SharedStore,
    writes: &[DrCopyRecord],
    problems: &[(String, String)],
    now: DateTime<Utc>,
) -> Result<(), StateError> {
    store.lock().expect("store").transaction(|tx| {
        for w in writes {
            tx.put_dr_copy(w)?;
        }
        for (policy, m) in problems {
            tx.open_alert(policy, now, m)?;
        }
        Ok(())
    })
}

/// What AWS holds locked already among the snapshots of `mains` about to be
/// locked afresh (an answer lost, an AMI an earlier try half locked): one
/// look by ids for them all. Not answered, LockSnapshot answers for itself.
async fn held_already(
    cloud: &dyn Cloud,
    dest: &Account,
    mains: &[DrCopyRecord],
    all: &[DrCopyRecord],
    now: DateTime<Utc>,
) -> BTreeMap<String, CopyLock> {
    let Some(first) = mains.first() else {
        return BTreeMap::new();
    };
    let fresh: Vec<String> = mains
        .iter()
        .filter(|c| lockable(c) && c.locked_at(now).is_none())
        .flat_map(|m| lock_targets(m, all))
        .filter(|t| t.locked_at(now).is_none())
        .map(|t| t.id.clone())
        .collect();
    held_by_aws(cloud, dest, &first.destination.region, &fresh)
        .await
        .unwrap_or_default()
}

/// The locks AWS holds on snapshots `ids` (DescribeLockedSnapshots, by ids
/// in chunks), by snapshot.
async fn held_by_aws(
    cloud: &dyn Cloud,
    dest: &Account,
    region: &str,
    ids: &[String],
) -> Result<BTreeMap<String, CopyLock>, CloudError> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let ec2 = cloud.ec2(dest, region).await?;
    let found = collect_chunked(ids, |chunk, t| {
        let ec2 = ec2.clone();
        async move { ec2.locked_snapshots_page(chunk, t).await }
    })
    .await?;
    Ok(found
        .into_iter()
        .filter(|l| l.holds())
        .map(|l| {
            let mode = if l.state.starts_with("compliance") {
                LockMode::Compliance
            } else {
                LockMode::Governance
            };
            let until = l.expires_on.unwrap_or(DateTime::<Utc>::MAX_UTC);
            (l.snapshot_id, CopyLock { mode, until })
        })
        .collect())
}

/// One LockSnapshot; the lock's expiry as AWS answered it.
async fn lock_one(
    cloud: &dyn Cloud,
    dest: &Account,
    region: &str,
    req: &SnapshotLockRequest,
) -> Result<Option<DateTime<Utc>>, CloudError> {
    let ec2 = cloud.ec2(dest, region).await?;
    Ok(ec2.lock_snapshot(req).await?.expires_on)
}

/// The copies a lock block wants locked that are not: completed, never
/// locked (their lock call failed, or a process stopped before it), not
/// tagged expired. By destination.
pub fn unlocked(
    state: &state::Snapshot,
    locks: &BTreeMap<String, DrLock>,
) -> BTreeMap<Destination, Vec<DrCopyRecord>> {
    let mut out: BTreeMap<Destination, Vec<DrCopyRecord>> = BTreeMap::new();
    for c in &state.dr_copies {
        if locks.contains_key(&c.policy)
            && lockable(c)
            && c.status == DrStatus::Completed
            && c.lock.is_none()
            && c.expired.is_none()
        {
            out.entry(c.destination.clone())
                .or_default()
                .push(c.clone());
        }
    }
    out
}

/// The runner's retry: every copy of a policy with a lock block that is
/// not locked yet is locked now. Failures are recorded (and alerted) by
/// [`lock_copies`].
pub(super) async fn lock_pending(work: &DrWork) -> Result<(), StateError> {
    let state = work.store.lock().expect("store").load()?;
    let accounts = state.accounts()?;
    let mut locks = BTreeMap::new();
    for (name, p) in state.policies()? {
        if let Some(l) = p.dr.as_ref().and_then(|d| d.lock.clone()) {
            locks.insert(name, l);
        }
    }
    for (dest, copies) in unlocked(&state, &locks) {
        let Some(acct) = accounts.get(&dest.account) else {
            continue;
        };
        let mut by_policy: BTreeMap<String, Vec<DrCopyRecord>> = BTreeMap::new();
        for c in copies {
            by_policy.entry(c.policy.clone()).or_default().push(c);
        }
        for (policy, mains) in by_policy {
            let lock = locks.get(&policy);
            lock_copies(
                work.cloud.as_ref(),
                &work.store,
                acct,
                lock,
                &mains,
                work.now_at(),
            )
            .await?;
        }
    }
    Ok(())
}

/// What `plan` shows of locks: a change that locks each copy a lock block
/// wants locked and that is not (or that AWS reports unlocked though its
/// recorded lock holds), skipping copies that expire in this plan; the
/// lock of every copy of a policy with a lock block (or with a recorded
/// lock); and a warning per policy whose DB copies cannot be locked.
pub struct LockPlan {
    pub changes: Vec<Change>,
    pub notes: Vec<String>,
    pub views: Vec<CopyLockView>,
}

pub fn plan_locks(
    config: &Config,
    state: &state::Snapshot,
    seen: Option<&CopiesSeen>,
    ending: &BTreeSet<Address>,
    policy_accounts: &BTreeMap<String, String>,
    now: DateTime<Utc>,
) -> LockPlan {
    let mut out = LockPlan {
        changes: Vec::new(),
        notes: Vec::new(),
        views: Vec::new(),
    };
    let locks: BTreeMap<&str, &DrLock> = config
        .policies
        .iter()
        .filter_map(|(n, p)| Some((n.as_str(), p.dr.as_ref()?.lock.as_ref()?)))
        .collect();
    let mut db_warned = BTreeSet::new();
    for c in state.dr_copies.iter().filter(|c| c.image.is_none()) {
        let wanted = locks.contains_key(c.policy.as_str());
        if wanted && !lockable(c) && db_warned.insert(c.policy.clone()) {
            out.notes.push(format!(
                "policy.{} has a DR lock block, but AWS has no lock for RDS DB snapshots: its DB copies are not locked (AWS Backup Vault Lock is the alternative)",
                c.policy
            ));
        }
        if !lockable(c) || c.status != DrStatus::Completed || (!wanted && c.lock.is_none()) {
            continue;
        }
        let Some(account) = policy_accounts.get(&c.policy) else {
            continue;
        };
        let address = c.address(account);
        let held = seen.is_none_or(|s| {
            use crate::retention::Holds;
            s.reachable(&c.destination) && s.holds(c)
        });
        let aws_lock = seen.and_then(|s| s.lock_holds(c, &state.dr_copies));
        let state_word = match (c.lock, c.locked_at(now), aws_lock) {
            (None, _, _) => "not_locked",
            (Some(_), None, _) => "expired",
            (Some(_), Some(_), Some(false)) => "unlocked",
            (Some(_), Some(_), _) => "locked",
        };
        out.views.push(CopyLockView {
            address: address.clone(),
            id: c.id.clone(),
            state: state_word.to_string(),
            mode: c.lock.map(|l| l.mode),
            until: c.lock.map(|l| l.until),
        });
        if !held || ending.contains(&address) || c.expired.is_some() {
            continue;
        }
        let reason = match state_word {
            "not_locked" if wanted => {
                let why = if c.lock_problem.is_empty() {
                    String::new()
                } else {
                    format!(" (the last try failed: {})", c.lock_problem)
                };
                format!("DR lock: the copy is not locked yet{why}")
            }
            // Put back only a governance lock the configuration still asks
            // for: a compliance lock AWS lets go of was cancelled in its
            // cool-off on purpose (how a typo is undone), and a lock block
            // removed means the operator no longer wants it.
            "unlocked" if wanted && c.lock.is_some_and(|l| l.mode == LockMode::Governance) => {
                format!(
                    "DR lock: AWS reports no lock on the copy though its governance lock lasts until {}: it was removed outside Lifeboat; lock it again until then",
                    stamp(c.lock.map(|l| l.until).unwrap_or(now)),
                )
            }
            "unlocked" => {
                out.notes.push(format!(
                    "{address}: AWS reports no lock on the copy though the state records a {} lock until {}; it is not locked again (a compliance lock can only have been cancelled in its cool-off, or the policy's lock block is gone); retention still keeps it until then",
                    c.lock.map_or("", |l| l.mode.as_str()),
                    stamp(c.lock.map(|l| l.until).unwrap_or(now)),
                ));
                continue;
            }
            _ => continue,
        };
        let lock = locks.get(c.policy.as_str());
        let after = json!({
            "lock": {
                "mode": c.lock.map(|l| l.mode).or(lock.map(|l| l.mode)),
                "days": lock.map(|l| l.days),
                "until": c.locked_at(now),
            },
            "id": c.id,
            "account": c.destination.account,
            "region": c.destination.region,
        });
        // After the policy and the destination account as this plan leaves
        // them: the lock's settings are read from the state when it runs.
        let mut change = Change::new(address, Action::Update, Effect::Control)
            .reason(reason)
            .after(Some(after));
        change.depends_on = vec![
            Address::policy(&c.policy),
            Address::account(&c.destination.account),
        ];
        out.changes.push(change);
    }
    out
}

/// An instant as the plan writes it.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Is `c` an `~ lock` change of a DR copy (and not a tag of an expired one)?
pub fn is_lock_change(c: &Change) -> bool {
    c.after.as_ref().is_some_and(|a| a.get("lock").is_some())
}

impl Executor {
    /// Locks the copy at the change's address (again, until its recorded
    /// expiry, when its recorded lock holds), as the runner would; the
    /// lock's settings come from the state, never from the plan.
    pub(crate) async fn lock_copy(&self, c: &Change) -> Result<(), ApplyError> {
        let copies = super::apply::recorded(self, &c.address)?;
        let Some(main) = copies.first().cloned() else {
            return Err(crate::plan::apply::Refusal::NotInCatalog {
                id: c.address.to_string(),
            }
            .into());
        };
        let lock = self
            .store
            .lock()
            .expect("store")
            .load()?
            .policy(&main.policy)?
            .and_then(|p| p.dr.and_then(|d| d.lock));
        let Some(lock) = lock else {
            return Err(ApplyError::Dr(format!(
                "policy {} has no DR lock block: copy {} is not locked",
                main.policy, main.id
            )));
        };
        // The plan showed a lock of these settings; one the state has
        // otherwise (a policy update not applied yet) is never made in its
        // place: a compliance lock cannot be taken back.
        let shown = c.after.as_ref().and_then(|a| a.get("lock"));
        let shown_mode = shown.and_then(|l| l.get("mode")).and_then(|m| m.as_str());
        let shown_days = shown.and_then(|l| l.get("days")).and_then(|d| d.as_u64());
        if shown_mode != Some(lock.mode.as_str()) || shown_days != Some(u64::from(lock.days)) {
            return Err(ApplyError::Dr(format!(
                "copy {} was planned to be locked as {} for {} day(s), but policy {} now locks {} for {} day(s): make a new plan",
                main.id,
                shown_mode.unwrap_or("?"),
                shown_days.map_or("?".to_string(), |d| d.to_string()),
                main.policy,
                lock.mode.as_str(),
                lock.days
            )));
        }
        let acct = self.account(&main.destination.account)?;
        let problems = lock_copies(
            self.cloud.as_ref(),
            &self.store,
            acct,
            Some(&lock),
            &[main],
            self.now,
        )
        .await?;
        match problems.is_empty() {
            true => Ok(()),
            false => Err(ApplyError::Dr(problems.join("; "))),
        }
    }
}
