//! Retention after a backup: the policy's backups that fall outside its
//! generations are deleted, decided by [`retention::decide`] on the same
//! evidence a plan uses. The catalog snapshots are observed in AWS first
//! ([`observe_catalog`]); when that fails nothing is deleted on a guess, and
//! the next backup or apply retries. A snapshot found missing in a backup
//! that stays is left for the next plan to show and apply to forget: a run
//! without an operator only deletes what retention decided.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{BackupError, PER_REGION_CONCURRENCY};
use crate::addr::Address;
use crate::cloud::Cloud;
use crate::plan::apply::{self, Executor, Outcome, Report};
use crate::plan::observe::{observe_catalog, Observation, ObserveError};
use crate::plan::Plan;
use crate::retention;
use crate::state::model::PolicyState;
use crate::state::{self, BackupRecord, BackupStatus, SharedStore, StateResult};

/// Retention after a finished backup `record` (a partial one may make older
/// incomplete ones surplus), with the policy as it is in state now: an apply
/// may have changed `generations` while the snapshots completed. The backup
/// itself is never its own victim.
///
/// When AWS cannot be asked which catalog snapshots still exist, retention
/// is skipped: the report holds one failure at the policy's address saying
/// why, and nothing is deleted.
///
/// `lock` is the state lock the caller holds: each delete first checks it
/// is still held, and once it is not (broken or taken over) nothing more is
/// deleted and the result is [`BackupError::HoldLost`]. `None` checks
/// nothing (a caller that holds no lock, in tests).
pub async fn retain(
    cloud: Arc<dyn Cloud>,
    store: SharedStore,
    record: &BackupRecord,
    now: DateTime<Utc>,
    lock: Option<&str>,
) -> Result<Report, BackupError> {
    retain_policy(cloud, store, &record.policy, Some(record), now, lock).await
}

/// Retention of `policy`, as after a backup; `own`, when given, is never a
/// victim. Also what runs once a policy's DR copies completed under
/// `keep_original = false` (with no backup of its own to spare).
pub async fn retain_policy(
    cloud: Arc<dyn Cloud>,
    store: SharedStore,
    policy: &str,
    own: Option<&BackupRecord>,
    now: DateTime<Utc>,
    lock: Option<&str>,
) -> Result<Report, BackupError> {
    let id = own.map(|r| r.id.as_str()).unwrap_or_default();
    let mut report = Report::default();
    let current = store.lock().expect("store").load()?;
    // A policy destroyed while its backup ran has no retention any more.
    let Some(pol) = current.policy(policy)? else {
        return Ok(report);
    };
    let own_address = own.map(|r| r.address());
    // With no other backup that could expire, there is nothing to look at.
    let candidates = current.backups.iter().any(|b| {
        b.policy == policy
            && Some(b.address()) != own_address
            && b.frozen.is_none()
            && b.status != BackupStatus::Running
    });
    if !candidates {
        return Ok(report);
    }
    let accounts = current.accounts()?;
    let mine = BTreeSet::from([policy.to_string()]);
    let observed = match observe_catalog(cloud.clone(), &current, &accounts, &mine).await {
        Ok(o) => o,
        Err(ObserveError::State(e)) => return Err(e.into()),
        Err(ObserveError::Cloud(e)) => {
            report.outcomes.insert(
                Address::policy(policy),
                Outcome::Failed(format!(
                    "retention skipped: the policy's snapshots could not be listed ({e}); nothing was deleted, the next backup or apply retries"
                )),
            );
            return Ok(report);
        }
    };
    let mut observed = observed;
    let copied_away = pol
        .dr
        .as_ref()
        .and_then(|d| d.cross_account.as_ref())
        .is_some_and(|x| !x.keep_original);
    if copied_away {
        // `keep_original = false` deletes originals only on evidence that
        // their copies exist: the copies are looked at too.
        let mine: Vec<_> = current
            .dr_copies
            .iter()
            .filter(|c| c.policy == policy)
            .cloned()
            .collect();
        if let Ok(seen) = crate::dr::observe::observe_copies(cloud.clone(), &mine, &accounts).await
        {
            observed.dr_copies = Some(seen);
        }
    }
    let mut plan = retention_plan(&current, &pol, &observed, now)?;
    // The backup just taken is never its own victim, whatever the clocks say.
    let own_snaps: BTreeSet<Address> = own
        .iter()
        .flat_map(|r| r.snapshots.iter().map(|s| s.address()))
        .collect();
    plan.changes
        .retain(|c| Some(&c.address) != own_address.as_ref() && !own_snaps.contains(&c.address));
    if !plan.is_empty() {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let exec = Arc::new(Executor {
            cloud,
            accounts,
            store: store.clone(),
            now,
            lock_id: lock.map(str::to_string),
            stop: stop.clone(),
        });
        report = apply::apply(&plan, exec, PER_REGION_CONCURRENCY, |_, _| {}).await;
        // The executor raises `stop` when it finds the lock lost.
        if let Some(lock) = lock.filter(|_| stop.load(std::sync::atomic::Ordering::SeqCst)) {
            return Err(BackupError::HoldLost {
                policy: policy.to_string(),
                backup_id: id.to_string(),
                lock: lock.to_string(),
                left: report.outcomes.len() - report.done(),
            });
        }
    }
    Ok(report)
}

/// The retention changes for one policy with its `generations`, against
/// `state` and what `observed` says AWS still has
/// ([`observe_catalog`] of the policy). The accounts of `state` decide
/// `allow_delete`; their warnings are the plan's.
pub fn retention_plan(
    state: &state::Snapshot,
    pol: &PolicyState,
    observed: &Observation,
    now: DateTime<Utc>,
) -> StateResult<Plan> {
    // The applied targets are the policy's members: the others in its
    // backups have left it.
    let members = state
        .targets()?
        .into_keys()
        .filter(|(p, _)| *p == pol.name)
        .map(|(_, id)| id)
        .collect();
    let policies = retention::Policies {
        generations: BTreeMap::from([(pol.name.clone(), pol.generations)]),
        removed: BTreeSet::new(),
        departed: BTreeMap::from([(
            pol.name.clone(),
            retention::Departed {
                members,
                keep_for: retention::departed_for(pol.options.departed_retention()),
                since: state.departed.get(&pol.name).cloned().unwrap_or_default(),
            },
        )]),
        now,
        copied_away: pol
            .dr
            .as_ref()
            .and_then(|d| d.cross_account.as_ref())
            .filter(|x| !x.keep_original)
            .map(|x| BTreeMap::from([(pol.name.clone(), x.to.clone())]))
            .unwrap_or_default(),
    };
    let decision = retention::decide(state, &policies, &state.accounts()?, observed)?;
    Ok(Plan::new(
        state.lineage.clone(),
        state.serial,
        String::new(),
        now,
        decision.changes,
        decision.warnings,
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
    let newest = retention::newest_amis(backups);
    match newest.get(&(policy.to_string(), target.to_string())) {
        None => true,
        Some((at, _)) => now - *at >= chrono::Duration::days(i64::from(days)),
    }
}
