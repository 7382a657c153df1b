//! Retention of DR copies: per policy and destination, the copies of the
//! newest `dr.generations` backups whose copies there all completed are
//! kept; older copies expire. Copies outlive the local backups they came
//! from, so they are counted on their own. A copy still in progress, or of
//! a frozen backup, never expires. In an account with `allow_delete =
//! false` an expired copy is tagged `lifeboat:expired` instead of deleted.

use std::collections::{BTreeMap, BTreeSet};

use lifeboat_schema::Account;
use serde_json::json;

use crate::addr::Address;
use crate::plan::{Action, Change, Effect};
use crate::state::{self, Destination, DrCopyRecord, DrStatus};

/// What the copies' retention knows of each policy with DR.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyPolicies {
    /// Copies kept per destination (`dr.generations`, or the policy's), and
    /// the policy's own account (a copy elsewhere is cross-account).
    pub generations: BTreeMap<String, (u32, String)>,
    /// Policies removed from the configuration, or whose `dr` block went:
    /// all their copies expire but those of frozen backups.
    pub removed: BTreeMap<String, String>,
    /// The time locks are judged at: a copy whose recorded lock lasts past
    /// it is kept (EBS Snapshot Lock would refuse its delete anyway).
    pub now: chrono::DateTime<chrono::Utc>,
}

/// Which recorded copies AWS still has.
pub trait Holds {
    fn holds(&self, c: &DrCopyRecord) -> bool;
    /// Could the destination be looked at? Nothing is decided about the
    /// copies of one that could not.
    fn reachable(&self, _d: &Destination) -> bool {
        true
    }
}

/// Everything exists (a caller that could not look deletes only on the
/// catalog's word — never used for drift).
pub struct AssumeHeld;

impl Holds for AssumeHeld {
    fn holds(&self, _: &DrCopyRecord) -> bool {
        true
    }
}

/// The copies' retention: changes that delete or tag expired copies, the
/// catalog reads that forget copies gone from AWS, and notes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CopyDecision {
    pub changes: Vec<Change>,
    pub notes: Vec<String>,
}

/// The main copies (not an AMI's snapshot copies) of one policy, grouped
/// by destination, then by backup, newest backup first.
fn grouped<'a>(
    copies: &'a [DrCopyRecord],
    policy: &str,
) -> BTreeMap<&'a Destination, Vec<(i64, Vec<&'a DrCopyRecord>)>> {
    let mut by: BTreeMap<&Destination, BTreeMap<i64, Vec<&DrCopyRecord>>> = BTreeMap::new();
    for c in copies
        .iter()
        .filter(|c| c.policy == policy && c.image.is_none())
    {
        by.entry(&c.destination)
            .or_default()
            .entry(c.backup_seq)
            .or_default()
            .push(c);
    }
    by.into_iter()
        .map(|(d, m)| (d, m.into_iter().rev().collect()))
        .collect()
}

/// Decides which copies expire.
pub fn decide_copies(
    state: &state::Snapshot,
    policies: &CopyPolicies,
    accounts: &BTreeMap<String, Account>,
    observed: &dyn Holds,
) -> CopyDecision {
    let frozen: BTreeSet<(&str, &str)> = state
        .backups
        .iter()
        .filter(|b| b.frozen.is_some())
        .map(|b| (b.policy.as_str(), b.id.as_str()))
        .collect();
    let mut out = CopyDecision::default();
    let all = policies
        .generations
        .iter()
        .map(|(p, (g, a))| (p, Some(*g), a))
        .chain(policies.removed.iter().map(|(p, a)| (p, None, a)));
    for (policy, generations, account) in all {
        for (dest, backups) in grouped(&state.dr_copies, policy) {
            if !observed.reachable(dest) {
                continue;
            }
            let run = |backup_id: &str| {
                state.dr_runs.iter().find(|r| {
                    &r.policy == policy && r.backup_id == backup_id && &r.destination == dest
                })
            };
            let mut kept = 0u32;
            let mut oldest_kept: Option<i64> = None;
            // Targets with a whole copy kept at this destination.
            let mut covered: BTreeSet<&str> = BTreeSet::new();
            let mut ending: Vec<(String, Vec<&DrCopyRecord>)> = Vec::new();
            for (seq, copies) in backups {
                let backup_id = copies[0].backup_id.as_str();
                let run = run(backup_id);
                // Whole: its run completed (every artifact routed here was
                // copied) and each copy is still there.
                let whole = run.is_some_and(|r| r.status == DrStatus::Completed)
                    && copies
                        .iter()
                        .all(|c| c.status == DrStatus::Completed && observed.holds(c));
                let open = run.is_some_and(|r| r.status.is_open())
                    || copies.iter().any(|c| c.status == DrStatus::InProgress);
                let reason = match generations {
                    Some(g) if whole && kept < g => {
                        kept += 1;
                        oldest_kept = Some(seq);
                        covered.extend(copies.iter().map(|c| c.target.as_str()));
                        continue;
                    }
                    Some(g) if whole => format!(
                        "DR retention: copy generation {} of {g} at {dest}",
                        kept + 1
                    ),
                    // An incomplete group may hold the only copy of some
                    // target until a newer whole one is older than it.
                    Some(_) if oldest_kept.is_none() => continue,
                    Some(_) => format!(
                        "DR retention: incomplete copies older than the oldest kept at {dest}"
                    ),
                    None => format!("policy.{policy} no longer copies to {dest}"),
                };
                if open {
                    continue;
                }
                if let Some(u) = state
                    .in_use
                    .iter()
                    .find(|u| u.reads_copies(policy, backup_id, dest))
                {
                    out.notes.push(format!(
                        "kept: the copies of backup {backup_id} of policy.{policy} at {dest} are being restored (restore {})",
                        u.restore
                    ));
                    continue;
                }
                if frozen.contains(&(policy.as_str(), backup_id)) {
                    out.notes.push(format!(
                        "kept: the copies of frozen backup {backup_id} of policy.{policy} at {dest}"
                    ));
                    continue;
                }
                ending.push((reason, copies));
            }
            let allow = accounts.get(&dest.account).is_some_and(|a| a.allow_delete);
            for (reason, copies) in ending {
                for c in copies {
                    // A target's newest good copy here stays while no kept
                    // generation has one of it (its later copies failed).
                    let good = c.status == DrStatus::Completed && observed.holds(c);
                    if generations.is_some() && good && covered.insert(c.target.as_str()) {
                        out.notes.push(format!(
                            "kept: {} is the newest copy of {} at {dest}; no newer generation there has one",
                            c.address(account),
                            c.target
                        ));
                        continue;
                    }
                    if !allow && c.expired.is_some() {
                        continue;
                    }
                    if let Some(until) = locked_until(&state.dr_copies, c, policies.now) {
                        out.notes.push(format!(
                            "{} kept: locked until {} ({reason})",
                            c.address(account),
                            crate::dr::lock::stamp(until)
                        ));
                        continue;
                    }
                    out.changes.push(expire(c, account, allow, &reason));
                }
            }
        }
    }
    out
}

/// When the latest recorded lock on `c` (an AMI copy: on any of its
/// snapshots) ends, if after `now`.
fn locked_until(
    all: &[DrCopyRecord],
    c: &DrCopyRecord,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    all.iter()
        .filter(|x| {
            x.destination == c.destination
                && (x.id == c.id || x.image.as_deref() == Some(c.id.as_str()))
        })
        .filter_map(|x| x.locked_at(now))
        .max()
}

/// The change that ends an expired copy: a delete, or in an account that
/// forbids deletes, a tag.
fn expire(c: &DrCopyRecord, policy_account: &str, allow_delete: bool, reason: &str) -> Change {
    let before = json!({
        "policy": c.policy,
        "id": c.id,
        "account": c.destination.account,
        "region": c.destination.region,
        "kind": c.kind,
        "backup_id": c.backup_id,
    });
    let address = c.address(policy_account);
    if allow_delete {
        Change::new(address, Action::Delete, Effect::DeletesBackups)
            .reason(reason.to_string())
            .before(Some(before))
    } else {
        let mut after = before.clone();
        after["tag"] = json!(crate::dr::names::TAG_EXPIRED);
        Change::new(address, Action::Update, Effect::Control)
            .reason(format!(
                "{reason}; account {} has allow_delete = false: tag expired",
                c.destination.account
            ))
            .before(Some(before))
            .after(Some(after))
    }
}

/// Copies recorded as completed that AWS no longer has: forgotten from the
/// catalog (`<=`), unless they expire anyway.
pub fn copy_drift(
    state: &state::Snapshot,
    policy_accounts: &BTreeMap<String, String>,
    expiring: &BTreeSet<Address>,
    observed: &dyn Holds,
) -> Vec<Change> {
    state
        .dr_copies
        .iter()
        .filter(|c| {
            c.image.is_none()
                && c.status == DrStatus::Completed
                && observed.reachable(&c.destination)
                && !observed.holds(c)
        })
        .filter_map(|c| {
            let account = policy_accounts.get(&c.policy)?;
            let address = c.address(account);
            (!expiring.contains(&address)).then(|| {
                Change::new(address, Action::Read, Effect::Catalog)
                    .reason("the copy no longer exists in AWS (deleted outside Lifeboat)")
                    .before(Some(json!({
                        "id": c.id,
                        "account": c.destination.account,
                        "region": c.destination.region,
                    })))
            })
        })
        .collect()
}
