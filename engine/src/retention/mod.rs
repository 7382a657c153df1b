//! Retention: the one place that decides which backups expire and what
//! deleting them takes. `plan` previews it (then `apply` performs it), and a
//! backup (`lifeboat backup`, run mode) applies it to its policy afterwards;
//! both pass [`decide`] the same inputs (state, each policy's generations,
//! the accounts, what AWS was observed to have) and get the same answer.
//!
//! A successful, unfrozen backup is one generation. The newest `generations`
//! of them are kept; older successful backups expire. Partial and failed
//! backups never count, and expire once they are older than the oldest kept
//! generation (until then they may hold the only copy of some target).
//! Frozen backups and backups still running are never touched. A successful
//! backup that lost a snapshot outside Lifeboat is judged partial
//! ([`status_after_lost_snapshot`]), and an account with
//! `allow_delete = false` keeps everything.

use std::borrow::{Borrow, Cow};
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use lifeboat_schema::{Account, InstanceMode};
use serde_json::{json, Value};

mod copies;
pub use copies::{copy_drift, decide_copies, AssumeHeld, CopyDecision, CopyPolicies, Holds};

use crate::addr::Address;
use crate::plan::observe::Observation;
use crate::plan::prior::{ArtifactPrior, BackupOf};
use crate::plan::{Action, Change, Effect};
use crate::state::{self, ArtifactKind, BackupRecord, BackupStatus, SnapshotRecord, StateResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry<'a> {
    pub backup: &'a BackupRecord,
    pub reason: String,
}

/// Orders ids so that `T-10` comes after `T-9` (ids of one second share a
/// prefix and differ in a numeric suffix).
fn id_order(id: &str) -> (usize, &str) {
    (id.len(), id)
}

/// Where a backup stands in the order backups were taken: by the state's
/// sequence, never by a clock value. The start time and the id only break
/// ties among records without a sequence (fixtures, plans of old states).
fn taken(b: &BackupRecord) -> (i64, DateTime<Utc>, (usize, &str)) {
    (b.seq, b.started, id_order(&b.id))
}

/// The backups of one policy that retention deletes when the policy keeps
/// `generations`. `backups` may be in any order and contain other policies'
/// backups (they are ignored).
pub fn expired<'a, B: Borrow<BackupRecord>>(
    policy: &str,
    backups: &'a [B],
    generations: u32,
) -> Vec<Expiry<'a>> {
    let mut mine: Vec<&BackupRecord> = backups
        .iter()
        .map(Borrow::borrow)
        .filter(|b| b.policy == policy && b.frozen.is_none())
        .collect();
    // Newest first, in the order they were taken.
    mine.sort_by(|a, b| taken(b).cmp(&taken(a)));
    let mut out = Vec::new();
    let mut rank = 0u32;
    let mut oldest_kept = None;
    for b in &mine {
        if b.status == BackupStatus::Success {
            rank += 1;
            if rank > generations {
                out.push(Expiry {
                    backup: b,
                    reason: format!("retention: generation {rank} of {generations}"),
                });
            } else if rank == generations {
                oldest_kept = Some(taken(b));
            }
        }
    }
    // Partial and failed backups never count, and go once older than the
    // oldest kept generation. So that they cannot pile up while every backup
    // is partial (a target gone with auto_remove_targets = "no"), only the
    // newest `generations` of them are kept once a newer complete backup
    // exists. Without any success, they may hold the only copies: kept.
    let newest_success = mine
        .iter()
        .find(|b| b.status == BackupStatus::Success)
        .map(|b| taken(b));
    let mut incomplete_rank = 0u32;
    for b in &mine {
        if !matches!(b.status, BackupStatus::Partial | BackupStatus::Failed) {
            continue;
        }
        incomplete_rank += 1;
        let older_than_kept = oldest_kept.is_some_and(|limit| taken(b) < limit);
        let surplus = incomplete_rank > generations && newest_success.is_some_and(|t| taken(b) < t);
        if older_than_kept {
            out.push(Expiry {
                backup: b,
                reason: format!(
                    "retention: {} backup older than generation {generations}",
                    b.status.as_str()
                ),
            });
        } else if surplus {
            out.push(Expiry {
                backup: b,
                reason: format!(
                    "retention: {} backup {incomplete_rank} of {generations} incomplete ones kept, older than the newest success",
                    b.status.as_str()
                ),
            });
        }
    }
    out.sort_by(|a, b| taken(a.backup).cmp(&taken(b.backup)));
    out
}

/// Everything of a removed policy that goes with it: every backup but the
/// frozen ones and those still running.
pub fn orphaned<'a, B: Borrow<BackupRecord>>(policy: &str, backups: &'a [B]) -> Vec<Expiry<'a>> {
    backups
        .iter()
        .map(Borrow::borrow)
        .filter(|b| b.policy == policy && b.frozen.is_none() && b.status != BackupStatus::Running)
        .map(|b| Expiry {
            backup: b,
            reason: "policy removed from configuration".to_string(),
        })
        .collect()
}

/// The policies retention decides for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policies {
    /// Each policy that keeps backups, with its `generations`: from the
    /// configuration when planning, from state when a backup retains.
    pub generations: BTreeMap<String, u32>,
    /// Policies removed from the configuration: all their backups go but the
    /// frozen ones and those still running. A name that is also in
    /// `generations` keeps its generations.
    pub removed: BTreeSet<String>,
    /// For each policy in `generations`: its targets now, and how long the
    /// last whole backup of a target that left it is kept.
    pub departed: BTreeMap<String, Departed>,
    /// When retention decides (how old a departed target's backup is).
    pub now: DateTime<Utc>,
    /// Policies with `cross_account { keep_original = false }`, with the
    /// account they copy to: a backup whose DR runs all completed and whose
    /// every artifact has a copy seen in that account goes.
    pub copied_away: BTreeMap<String, String>,
}

/// What retention needs to know to keep a departed target's last backup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Departed {
    /// The ids of the policy's targets now: any other target found in its
    /// backups has left it (terminated, untagged, removed).
    pub members: BTreeSet<String>,
    /// How long after its target left the last backup of a departed target
    /// stays, whatever the generations (`departed_retention`).
    pub keep_for: chrono::Duration,
    /// When each departed target left (recorded when apply removed it, or
    /// now for one this plan removes). A target without a time is counted
    /// from its last backup.
    pub since: BTreeMap<String, DateTime<Utc>>,
}

/// What retention decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    /// The backups that expire, by address, with why. Those an account with
    /// `allow_delete = false` protects are not here.
    pub expiring: BTreeMap<Address, String>,
    /// The changes that delete them ([`expiry_changes`]), dependencies
    /// sorted and limited to these changes.
    pub changes: Vec<Change>,
    /// What retention would have deleted but an account forbids.
    pub warnings: Vec<String>,
}

/// Decides what expires among the backups of `policies`.
///
/// `accounts` gives `allow_delete` (an unknown account deletes nothing).
/// `observed` must hold every artifact of those policies' backups that AWS
/// has, of every kind: one it does not hold was deleted outside Lifeboat, so
/// its backup no longer counts as a generation and deleting it only updates
/// the catalog.
pub fn decide(
    state: &state::Snapshot,
    policies: &Policies,
    accounts: &BTreeMap<String, Account>,
    observed: &Observation,
) -> StateResult<Decision> {
    let judged = judged(&state.backups, observed);
    let mut expiring: BTreeMap<Address, String> = BTreeMap::new();
    for (name, generations) in &policies.generations {
        for e in expired(name, &judged, *generations) {
            expiring.insert(e.backup.address(), e.reason);
        }
    }
    for name in &policies.removed {
        if policies.generations.contains_key(name) {
            continue;
        }
        for e in orphaned(name, &judged) {
            expiring.insert(e.backup.address(), e.reason);
        }
    }
    copied_away(state, &judged, policies, observed, &mut expiring);
    let mut warnings = keep_departed(&judged, policies, observed, &mut expiring);
    warnings.extend(keep_dr_sources(state, &mut expiring));
    warnings.extend(keep_restoring(state, &mut expiring));
    warnings.extend(protect(&state.backups, accounts, &mut expiring));
    let kept = kept_initial_amis(state, |p| policies.generations.contains_key(p))?;
    let mut changes = Vec::new();
    for b in &state.backups {
        if let Some(reason) = expiring.get(&b.address()) {
            changes.extend(expiry_changes(b, reason, |s| observed.holds(s), &kept));
        }
    }
    let present: BTreeSet<Address> = changes.iter().map(|c| c.address.clone()).collect();
    for c in &mut changes {
        c.depends_on.retain(|d| present.contains(d));
        c.depends_on.sort();
        c.depends_on.dedup();
    }
    Ok(Decision {
        expiring,
        changes,
        warnings,
    })
}

/// `departed_retention` as a clock span (capped at a century, so adding it
/// to a time never overflows).
pub fn departed_for(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d)
        .unwrap_or(chrono::Duration::MAX)
        .min(chrono::Duration::days(365 * 100))
}

/// A target that left its policy keeps its newest whole backup for the
/// policy's `departed_retention` after it left (or after that backup was
/// taken, when later), even when later generations push it out: it may be the only copy of something that
/// no longer exists. Removes such backups from `expiring` and names them.
fn keep_departed(
    judged: &[Judged<'_>],
    policies: &Policies,
    observed: &Observation,
    expiring: &mut BTreeMap<Address, String>,
) -> Vec<String> {
    let mut notes = Vec::new();
    for (name, dep) in &policies.departed {
        let mut mine: Vec<&BackupRecord> = judged
            .iter()
            .map(|b| &**b)
            .filter(|b| {
                &b.policy == name
                    && matches!(b.status, BackupStatus::Success | BackupStatus::Partial)
            })
            .collect();
        mine.sort_by(|a, b| taken(b).cmp(&taken(a)));
        let mut settled: BTreeSet<&str> = BTreeSet::new();
        for b in &mine {
            for s in &b.snapshots {
                let target = s.target.as_str();
                if dep.members.contains(target) || settled.contains(target) {
                    continue;
                }
                // Its last backup is the newest that holds all of its
                // artifacts; an older one counts when a newer lost some.
                // A partial backup that names the target among its problems
                // holds only part of it (a volume failed): not its last copy.
                let whole = (b.status == BackupStatus::Success || !b.has_problem_with(target))
                    && b.snapshots
                        .iter()
                        .filter(|x| x.target == target)
                        .all(|x| observed.holds(x));
                if !whole {
                    continue;
                }
                settled.insert(target);
                let left = dep.since.get(target).copied().unwrap_or(b.started);
                let until = left
                    .max(b.started)
                    .checked_add_signed(dep.keep_for)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
                if until > policies.now && expiring.remove(&b.address()).is_some() {
                    notes.push(format!(
                        "kept: {} is the last backup of departed target {target}, kept until {}",
                        b.address(),
                        until.format("%Y-%m-%dT%H:%M:%SZ")
                    ));
                }
            }
        }
    }
    notes
}

/// `keep_original = false`: the originals of a whole backup expire once
/// every DR run of it completed and each artifact has a completed copy in
/// the account the policy copies to now (not one it used to) that AWS was
/// seen to hold. A backup still running,
/// frozen, incomplete, with a copy missing, or whose copies could not be
/// looked at stays.
fn copied_away(
    state: &state::Snapshot,
    judged: &[Judged<'_>],
    policies: &Policies,
    observed: &Observation,
    expiring: &mut BTreeMap<Address, String>,
) {
    // Without a look at the copies nothing proves they exist: keep.
    let Some(seen) = &observed.dr_copies else {
        return;
    };
    for b in judged {
        let Some(vault) = policies.copied_away.get(&b.policy) else {
            continue;
        };
        if b.status != BackupStatus::Success || b.frozen.is_some() {
            continue;
        }
        let runs: Vec<&state::DrRun> = state
            .dr_runs
            .iter()
            .filter(|r| r.policy == b.policy && r.backup_id == b.id)
            .collect();
        let all_completed =
            !runs.is_empty() && runs.iter().all(|r| r.status == state::DrStatus::Completed);
        // Every artifact a copy is made of has a completed copy in another
        // account that AWS was just seen to hold.
        let held_away = |s: &SnapshotRecord| {
            state.dr_copies.iter().any(|c| {
                c.policy == b.policy
                    && c.backup_id == b.id
                    && c.source_id == s.id
                    && c.image.is_none()
                    && &c.destination.account == vault
                    && c.status == state::DrStatus::Completed
                    && seen.reachable(&c.destination)
                    && seen.holds(c)
            })
        };
        let copied: Vec<&SnapshotRecord> = b
            .snapshots
            .iter()
            .filter(|s| crate::dr::route::copied(s))
            .collect();
        if !all_completed || copied.is_empty() || !copied.iter().all(|s| held_away(s)) {
            continue;
        }
        let away = runs
            .iter()
            .find(|r| &r.destination.account == vault)
            .map(|r| r.destination.to_string())
            .unwrap_or_else(|| vault.clone());
        expiring
            .entry(b.address())
            .or_insert_with(|| format!("keep_original = false: copied to {away}"));
    }
}

/// A backup whose DR copies are still being made is their source: it
/// stays until they settle (a delete would fail the copies in flight).
fn keep_dr_sources(
    state: &state::Snapshot,
    expiring: &mut BTreeMap<Address, String>,
) -> Vec<String> {
    let mut notes = Vec::new();
    for r in state.dr_runs.iter().filter(|r| r.status.is_open()) {
        let a = Address::backup(&r.policy, &r.backup_id);
        if expiring.remove(&a).is_some() {
            notes.push(format!(
                "kept: {a} is the source of DR copies to {} still in progress",
                r.destination
            ));
        }
    }
    notes
}

/// A backup a running restore reads stays until the restore ends (the
/// executor refuses its deletes too, for a restore that starts after this).
fn keep_restoring(
    state: &state::Snapshot,
    expiring: &mut BTreeMap<Address, String>,
) -> Vec<String> {
    let mut notes = Vec::new();
    for u in state.in_use.iter().filter(|u| u.from.is_none()) {
        let a = Address::backup(&u.policy, &u.backup_id);
        if expiring.remove(&a).is_some() {
            notes.push(format!(
                "kept: {a} is being restored (restore {}); it expires after the restore ends",
                u.restore
            ));
        }
    }
    notes
}

/// Does the problem line `p` name `id` as a whole word (so that a problem
/// of `i-12` is not one of `i-1`)?
/// An account that forbids deletion keeps everything: removes its backups
/// from `expiring` and says so, once per policy and account.
fn protect(
    backups: &[BackupRecord],
    accounts: &BTreeMap<String, Account>,
    expiring: &mut BTreeMap<Address, String>,
) -> Vec<String> {
    let mut protected: BTreeMap<(String, String), usize> = BTreeMap::new();
    for b in backups {
        if !expiring.contains_key(&b.address()) {
            continue;
        }
        let allowed = accounts.get(&b.account).is_some_and(|a| a.allow_delete);
        if !allowed {
            expiring.remove(&b.address());
            *protected
                .entry((b.policy.clone(), b.account.clone()))
                .or_default() += 1;
        }
    }
    protected
        .into_iter()
        .map(|((policy, account), n)| {
            format!(
                "retention would delete {n} backup(s) of policy.{policy}, but account {account} has allow_delete = false: they are kept"
            )
        })
        .collect()
}

/// The catalog drift of the backups that stay (neither in `expiring` nor
/// running): a catalog-only read for each artifact `observed` does
/// not hold. Applying one forgets the snapshot and records the backup's
/// damage ([`status_after_lost_snapshot`]), as [`decide`] already judged it.
pub fn drift(
    backups: &[BackupRecord],
    expiring: &BTreeMap<Address, String>,
    observed: &Observation,
) -> Vec<Change> {
    let mut out = Vec::new();
    for b in backups {
        if b.status == BackupStatus::Running || expiring.contains_key(&b.address()) {
            continue;
        }
        let of = BackupOf::of(b);
        for s in lost_snapshots(b, observed) {
            out.push(
                Change::new(s.address(), Action::Read, Effect::Catalog)
                    .reason("deleted outside Lifeboat")
                    .before_prior(ArtifactPrior::prior(&of, s)),
            );
        }
    }
    out
}

/// The catalog records of `b` that AWS no longer has, according to
/// `observed`: every kind is looked up (EBS snapshots, an AMI's snapshots,
/// AMIs, DB and cluster snapshots), so a backup missing any artifact is
/// judged the same way whatever the artifact is.
pub fn lost_snapshots<'a>(
    b: &'a BackupRecord,
    observed: &'a Observation,
) -> impl Iterator<Item = &'a SnapshotRecord> + 'a {
    b.snapshots.iter().filter(|s| !observed.holds(s))
}

/// The status of a backup once one of its snapshots is gone: a successful
/// backup is no longer whole and must not count as a generation, so it
/// becomes partial; any other status stays. [`decide`] judges by it before
/// the catalog knows, and `Tx::forget_snapshot` records it when the catalog
/// forgets the snapshot, so a plan and the apply after it agree.
pub fn status_after_lost_snapshot(status: BackupStatus) -> BackupStatus {
    match status {
        BackupStatus::Success => BackupStatus::Partial,
        other => other,
    }
}

/// A backup as retention judges it: borrowed from the catalog, or a copy
/// with its status changed for a lost snapshot.
type Judged<'a> = Cow<'a, BackupRecord>;

/// The backups as retention judges them: with a snapshot lost, as if the
/// catalog had recorded the loss already. Only those are copied: a catalog
/// is most of a plan's memory.
fn judged<'a>(backups: &'a [BackupRecord], observed: &Observation) -> Vec<Judged<'a>> {
    backups
        .iter()
        .map(|b| {
            if lost_snapshots(b, observed).next().is_none() {
                return Cow::Borrowed(b);
            }
            let mut b = b.clone();
            b.status = status_after_lost_snapshot(b.status);
            Cow::Owned(b)
        })
        .collect()
}

/// The newest AMI of each (policy, target) in the successful and partial
/// backups (newest in the order backups were taken), with when its backup
/// started: an `initial_ami` instance's current AMI.
pub fn newest_amis(
    backups: &[BackupRecord],
) -> BTreeMap<(String, String), (DateTime<Utc>, String)> {
    let mut in_order: Vec<&BackupRecord> = backups
        .iter()
        .filter(|b| matches!(b.status, BackupStatus::Success | BackupStatus::Partial))
        .collect();
    in_order.sort_by(|a, b| taken(a).cmp(&taken(b)));
    let mut newest = BTreeMap::new();
    for b in in_order {
        for s in b.snapshots.iter().filter(|s| s.kind == ArtifactKind::Image) {
            newest.insert(
                (b.policy.clone(), s.target.clone()),
                (b.started, s.id.clone()),
            );
        }
    }
    newest
}

/// The AMIs retention keeps whatever the generations: for each target in
/// state with `mode = "initial_ami"`, its newest AMI in the catalog (the
/// instance's current one). It goes once a newer AMI replaces it (after
/// `ami_rotation` days), or once the target leaves the policy or changes mode.
/// Only the policies `keep_policy` accepts count (a removed policy keeps nothing).
pub fn kept_initial_amis(
    state: &state::Snapshot,
    keep_policy: impl Fn(&str) -> bool,
) -> StateResult<BTreeSet<String>> {
    let initial: BTreeSet<(String, String)> = state
        .targets()?
        .into_iter()
        .filter(|((p, _), t)| t.mode == InstanceMode::InitialAmi && keep_policy(p))
        .map(|(k, _)| k)
        .collect();
    Ok(newest_amis(&state.backups)
        .into_iter()
        .filter(|(k, _)| initial.contains(k))
        .map(|(_, (_, id))| id)
        .collect())
}

/// The changes that delete an expired backup: each snapshot (or, when AWS
/// no longer has it, a catalog-only read), then the backup record.
///
/// A record `exists` denies is only forgotten (a catalog read). The AMIs in `kept` (see [`kept_initial_amis`]) and
/// their snapshots stay, and so does the backup record holding them. An
/// AMI's snapshots are deleted after the AMI is deregistered.
pub fn expiry_changes(
    b: &BackupRecord,
    reason: &str,
    exists: impl Fn(&SnapshotRecord) -> bool,
    kept: &BTreeSet<String>,
) -> Vec<Change> {
    let mut out = Vec::new();
    let mut deps = Vec::new();
    let mut keeps_some = false;
    let of = BackupOf::of(b);
    for s in &b.snapshots {
        let image = if s.kind == ArtifactKind::Image {
            Some(&s.id)
        } else {
            s.image.as_ref()
        };
        if image.is_some_and(|i| kept.contains(i)) {
            keeps_some = true;
            continue;
        }
        let saddr = s.address();
        let (action, effect, why) = if exists(s) {
            (Action::Delete, Effect::DeletesBackups, reason.to_string())
        } else {
            (
                Action::Read,
                Effect::Catalog,
                "deleted outside Lifeboat".to_string(),
            )
        };
        out.push(Change {
            address: saddr.clone(),
            action,
            effect,
            reason: Some(why),
            before: Some(ArtifactPrior::prior(&of, s)),
            after: None,
            depends_on: match &s.image {
                Some(ami) => vec![Address::Image { id: ami.clone() }],
                None => vec![],
            },
            alert: None,
        });
        deps.push(saddr);
    }
    if keeps_some {
        return out;
    }
    out.push(Change {
        address: b.address(),
        action: Action::Delete,
        effect: Effect::DeletesBackups,
        reason: Some(reason.to_string()),
        before: Some(backup_before(b).into()),
        after: None,
        depends_on: deps,
        alert: None,
    });
    out
}

fn backup_before(b: &BackupRecord) -> Value {
    json!({
        "policy": b.policy, "id": b.id, "account": b.account, "started": b.started,
        "status": b.status, "snapshots": b.snapshots.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Frozen;

    fn b(id: &str, hour: u32, status: BackupStatus) -> BackupRecord {
        BackupRecord {
            seq: i64::from(hour),
            id: id.into(),
            policy: "web".into(),
            account: "main".into(),
            started: format!("2026-11-22T{hour:02}:00:00Z").parse().unwrap(),
            finished: None,
            status,
            frozen: None,
            snapshots: vec![],
            problems: vec![],
        }
    }

    fn ids(e: &[Expiry<'_>]) -> Vec<String> {
        e.iter()
            .map(|x| format!("{} {}", x.backup.id, x.reason))
            .collect()
    }

    #[test]
    fn the_order_backups_were_taken_in_ranks_them_not_their_clock_times() {
        use BackupStatus::*;
        // b3 was taken last, but under a clock set back a day: its start
        // time is the oldest. It is still the newest generation.
        let mut b3 = b("b3", 3, Success);
        b3.started = "2026-11-21T03:00:00Z".parse().unwrap();
        let all = vec![b("b1", 1, Success), b("b2", 2, Success), b3];
        assert_eq!(
            ids(&expired("web", &all, 2)),
            vec!["b1 retention: generation 3 of 2"]
        );
        // And a backup dated far in the future (a `--now` in 2030) taken
        // first stays the oldest.
        let mut b0 = b("b0", 0, Success);
        b0.started = "2030-01-01T00:00:00Z".parse().unwrap();
        let all = vec![b0, b("b1", 1, Success), b("b2", 2, Success)];
        assert_eq!(
            ids(&expired("web", &all, 2)),
            vec!["b0 retention: generation 3 of 2"]
        );
    }

    #[test]
    fn keeps_the_newest_generations_and_expires_the_rest_oldest_first() {
        use BackupStatus::*;
        let all = vec![
            b("b1", 1, Success),
            b("b2", 2, Success),
            b("b3", 3, Success),
            b("b4", 4, Success),
        ];
        assert_eq!(
            ids(&expired("web", &all, 2)),
            vec![
                "b1 retention: generation 4 of 2",
                "b2 retention: generation 3 of 2"
            ]
        );
        assert!(expired("web", &all, 4).is_empty());
    }

    #[test]
    fn failed_and_partial_backups_do_not_count_and_go_once_older_than_the_oldest_kept() {
        use BackupStatus::*;
        let all = vec![
            b("f0", 0, Failed),
            b("s1", 1, Success),
            b("p2", 2, Partial),
            b("s3", 3, Success),
            b("r4", 4, Running),
        ];
        // Two generations: s1 and s3 are kept; f0 is older than s1, p2 is not.
        assert_eq!(
            ids(&expired("web", &all, 2)),
            vec!["f0 retention: failed backup older than generation 2"]
        );
        // One generation: s1 expires, and so do f0 and p2 (older than s3); the running one stays.
        assert_eq!(
            ids(&expired("web", &all, 1)),
            vec![
                "f0 retention: failed backup older than generation 1",
                "s1 retention: generation 2 of 1",
                "p2 retention: partial backup older than generation 1"
            ]
        );
    }

    #[test]
    fn incomplete_backups_do_not_pile_up_once_a_newer_success_exists() {
        use BackupStatus::*;
        let all = vec![
            b("s0", 0, Success),
            b("p1", 1, Partial),
            b("p2", 2, Partial),
            b("p3", 3, Partial),
            b("s4", 4, Success),
            b("p5", 5, Partial),
        ];
        // Two generations: s0 and s4 kept. p1..p3 are newer than s0 so the
        // "older than kept" rule spares them, but only two incomplete ones
        // (p5, p3) are kept; p2 and p1 are surplus.
        let got = ids(&expired("web", &all, 2));
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got[0].starts_with("p1 ") && got[1].starts_with("p2 "),
            "{got:?}"
        );
        // With no success at all, every partial is kept.
        let only_partial: Vec<_> = (0..5).map(|h| b(&format!("p{h}"), h, Partial)).collect();
        assert!(expired("web", &only_partial, 1).is_empty());
    }

    #[test]
    fn ids_of_the_same_second_order_by_their_numeric_suffix() {
        use BackupStatus::*;
        // Both started in the same second.
        let all = vec![b("T-10", 1, Success), b("T-9", 1, Success)];
        assert_eq!(
            ids(&expired("web", &all, 1)),
            vec!["T-9 retention: generation 2 of 1"]
        );
    }

    #[test]
    fn frozen_backups_never_count_and_never_expire() {
        use BackupStatus::*;
        let mut all = vec![
            b("s1", 1, Success),
            b("s2", 2, Success),
            b("s3", 3, Success),
        ];
        all[2].frozen = Some(Frozen {
            name: "audit".into(),
            at: all[2].started,
        });
        assert_eq!(
            ids(&expired("web", &all, 1)),
            vec!["s1 retention: generation 2 of 1"]
        );
        assert_eq!(orphaned("web", &all).len(), 2);
    }

    /// A successful backup of `web` at `hour` with one plain EBS snapshot
    /// `snap-<id>`.
    fn with_snapshot(id: &str, hour: u32) -> BackupRecord {
        let mut r = b(id, hour, BackupStatus::Success);
        r.snapshots.push(SnapshotRecord {
            id: format!("snap-{id}"),
            volume_id: "vol-1".into(),
            target: "i-1".into(),
            region: "us-east-1".into(),
            kind: ArtifactKind::Ebs,
            image: None,
        });
        r
    }

    fn accounts(allow_delete: bool) -> BTreeMap<String, Account> {
        let a: Account = serde_json::from_value(json!({
            "name": "main", "kind": "backup", "regions": ["us-east-1"],
            "profile": null, "assume_role": null, "allow_delete": allow_delete,
        }))
        .unwrap();
        BTreeMap::from([("main".to_string(), a)])
    }

    /// AWS has the snapshots of every backup but `lost`.
    fn seen(state: &state::Snapshot, lost: &[&str]) -> Observation {
        let mut o = Observation::default();
        for b in &state.backups {
            for s in &b.snapshots {
                if !lost.contains(&s.id.as_str()) {
                    o.snapshots.insert(
                        s.id.clone(),
                        crate::cloud::Snapshot {
                            id: s.id.clone(),
                            volume_id: s.volume_id.clone(),
                            region: s.region.clone(),
                            state: crate::cloud::SnapshotState::Completed,
                            started: None,
                            tags: Default::default(),
                        },
                    );
                }
            }
        }
        o
    }

    fn keep(generations: u32) -> Policies {
        Policies {
            generations: BTreeMap::from([("web".to_string(), generations)]),
            ..Default::default()
        }
    }

    #[test]
    fn a_departed_targets_last_whole_backup_is_kept_for_departed_retention() {
        let mut backups: Vec<BackupRecord> = (1..=4)
            .map(|h| with_snapshot(&format!("b{h}"), h))
            .collect();
        for b in &mut backups[..2] {
            b.snapshots[0].target = "i-old".into();
        }
        let state = state::Snapshot {
            backups,
            ..Default::default()
        };
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let mut p = keep(2);
        p.departed.insert(
            "web".into(),
            Departed {
                members: BTreeSet::from(["i-1".to_string()]),
                keep_for: chrono::Duration::days(30),
                since: BTreeMap::new(),
            },
        );
        p.now = at("2026-12-01T00:00:00Z");
        let d = decide(&state, &p, &accounts(true), &seen(&state, &[])).unwrap();
        let gone: Vec<String> = d.expiring.keys().map(|a| a.to_string()).collect();
        assert_eq!(gone, vec!["backup.web[\"b1\"]"], "{d:?}");
        assert!(
            d.warnings[0].contains("last backup of departed target i-old"),
            "{:?}",
            d.warnings
        );
        // Its last backup lost its snapshot: the one before it is the last whole one.
        let d = decide(&state, &p, &accounts(true), &seen(&state, &["snap-b2"])).unwrap();
        let gone: Vec<String> = d.expiring.keys().map(|a| a.to_string()).collect();
        assert_eq!(gone, vec!["backup.web[\"b2\"]"], "{d:?}");
        // Thirty days after it was taken, it goes like any other...
        p.now = at("2026-12-23T00:00:00Z");
        let d = decide(&state, &p, &accounts(true), &seen(&state, &[])).unwrap();
        assert_eq!(d.expiring.len(), 2, "{d:?}");
        // ...unless the target left later: the thirty days count from then.
        p.departed.get_mut("web").unwrap().since =
            BTreeMap::from([("i-old".to_string(), at("2026-12-10T00:00:00Z"))]);
        let d = decide(&state, &p, &accounts(true), &seen(&state, &[])).unwrap();
        assert_eq!(d.expiring.len(), 1, "{d:?}");
    }

    fn three() -> state::Snapshot {
        state::Snapshot {
            backups: vec![
                with_snapshot("b1", 1),
                with_snapshot("b2", 2),
                with_snapshot("b3", 3),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn a_backup_that_lost_a_snapshot_is_not_a_generation() {
        let state = three();
        // Everything there: the oldest of three goes with two generations.
        let whole = decide(&state, &keep(2), &accounts(true), &seen(&state, &[])).unwrap();
        assert_eq!(
            whole
                .expiring
                .keys()
                .map(|a| a.to_string())
                .collect::<Vec<_>>(),
            ["backup.web[\"b1\"]"]
        );
        // The middle one lost its snapshot: it is partial, so the two whole
        // generations are b3 and b1, and nothing expires.
        let obs = seen(&state, &["snap-b2"]);
        let damaged = decide(&state, &keep(2), &accounts(true), &obs).unwrap();
        assert!(damaged.expiring.is_empty(), "{:?}", damaged.expiring);
        assert!(damaged.changes.is_empty());
        // The damage is drift, read into the catalog by apply.
        let reads = drift(&state.backups, &damaged.expiring, &obs);
        assert_eq!(reads.len(), 1);
        assert_eq!(reads[0].address, Address::snapshot("snap-b2"));
        assert_eq!(reads[0].action, Action::Read);
        // With one generation, the damaged backup goes with the oldest; its
        // lost snapshot is only forgotten, the other one deleted.
        let one = decide(&state, &keep(1), &accounts(true), &obs).unwrap();
        let changes: Vec<String> = one
            .changes
            .iter()
            .map(|c| format!("{} {}", c.action.symbol(), c.address))
            .collect();
        assert_eq!(
            changes,
            [
                "- snapshot[\"snap-b1\"]",
                "- backup.web[\"b1\"]",
                "<= snapshot[\"snap-b2\"]",
                "- backup.web[\"b2\"]"
            ]
        );
        assert_eq!(
            one.expiring[&Address::backup("web", "b2")],
            "retention: partial backup older than generation 1"
        );
        assert!(drift(&state.backups, &one.expiring, &obs).is_empty());
    }

    #[test]
    fn an_account_that_forbids_deletion_keeps_everything_and_says_so() {
        let mut state = three();
        state.backups.push(b("f0", 0, BackupStatus::Failed));
        let d = decide(&state, &keep(1), &accounts(false), &seen(&state, &[])).unwrap();
        assert!(d.expiring.is_empty() && d.changes.is_empty(), "{d:?}");
        assert_eq!(
            d.warnings,
            ["retention would delete 3 backup(s) of policy.web, but account main has allow_delete = false: they are kept"]
        );
        // An account retention does not know deletes nothing either.
        let d = decide(&state, &keep(1), &BTreeMap::new(), &seen(&state, &[])).unwrap();
        assert!(d.changes.is_empty());
        // A removed policy's backups are protected the same way.
        let gone = Policies {
            removed: BTreeSet::from(["web".to_string()]),
            ..Default::default()
        };
        let d = decide(&state, &gone, &accounts(false), &seen(&state, &[])).unwrap();
        assert!(d.changes.is_empty());
        let d = decide(&state, &gone, &accounts(true), &seen(&state, &[])).unwrap();
        assert_eq!(d.expiring.len(), 4);
    }

    #[test]
    fn a_policy_both_kept_and_removed_keeps_its_generations() {
        let state = three();
        let both = Policies {
            generations: BTreeMap::from([("web".to_string(), 2)]),
            removed: BTreeSet::from(["web".to_string()]),
            ..Default::default()
        };
        let d = decide(&state, &both, &accounts(true), &seen(&state, &[])).unwrap();
        assert_eq!(d.expiring.len(), 1);
    }

    #[test]
    fn losing_a_snapshot_makes_only_a_successful_backup_partial() {
        use BackupStatus::*;
        for (before, after) in [
            (Success, Partial),
            (Partial, Partial),
            (Failed, Failed),
            (Running, Running),
        ] {
            assert_eq!(status_after_lost_snapshot(before), after);
        }
    }
}
