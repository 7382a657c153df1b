//! What `plan` shows of DR: copies that expire (retention's rule), copies
//! gone from AWS (drift), and the copies the latest valid backup is
//! missing (DR just enabled, a destination added, a copy deleted outside
//! Lifeboat, a run that failed): `apply` makes them.

use std::collections::{BTreeMap, BTreeSet};

use lifeboat_schema::Config;
use serde_json::json;

use super::route;
use crate::addr::Address;
use crate::plan::observe::Observation;
use crate::plan::{Action, Change, Effect};
use crate::retention::{self, AssumeHeld, CopyPolicies, Holds};
use crate::state::model::PolicyState;
use crate::state::{self, BackupRecord, BackupStatus, DrStatus};
use lifeboat_schema::Account;

/// The DR changes of a plan, and the policies whose copies it deletes
/// because the policy or its `dr` block was removed.
#[derive(Debug, Default)]
pub struct DrChanges {
    pub changes: Vec<Change>,
    pub notes: Vec<String>,
    pub removing: Vec<String>,
    /// The lock of each copy a lock block covers ([`super::lock`]).
    pub locks: Vec<super::lock::CopyLockView>,
}

/// `held(name)`: a policy kept as it is (a postponed move). `now`: the
/// time copies' locks are judged at.
#[allow(clippy::too_many_arguments)]
pub fn plan_copies(
    config: &Config,
    state: &state::Snapshot,
    prior: &BTreeMap<String, PolicyState>,
    accounts: &BTreeMap<String, Account>,
    obs: &Observation,
    expiring: &BTreeMap<Address, String>,
    held: impl Fn(&str) -> bool,
    now: chrono::DateTime<chrono::Utc>,
) -> DrChanges {
    let seen: &dyn Holds = match &obs.dr_copies {
        Some(s) => s,
        None => &AssumeHeld,
    };
    let mut policies = CopyPolicies {
        now,
        ..Default::default()
    };
    for (name, p) in &config.policies {
        match &p.dr {
            Some(dr) => {
                policies.generations.insert(
                    name.clone(),
                    (dr.generations(p.generations), p.account.clone()),
                );
            }
            None => {
                policies.removed.insert(name.clone(), p.account.clone());
            }
        }
    }
    for (name, p) in prior {
        if !config.policies.contains_key(name) && !held(name) {
            policies.removed.insert(name.clone(), p.account.clone());
        }
    }
    let decision = retention::decide_copies(state, &policies, accounts, seen);
    let mut out = DrChanges {
        removing: policies
            .removed
            .keys()
            .filter(|p| {
                // Deleted, or tagged expired for someone to delete: both end
                // the copies, both are gated.
                decision.changes.iter().any(|c| {
                    matches!(c.action, Action::Delete | Action::Update)
                        && matches!(&c.address, Address::DrCopy { policy, .. } if policy == *p)
                })
            })
            .cloned()
            .collect(),
        ..Default::default()
    };
    let ending: BTreeSet<Address> = decision.changes.iter().map(|c| c.address.clone()).collect();
    let policy_accounts: BTreeMap<String, String> = config
        .policies
        .iter()
        .map(|(n, p)| (n.clone(), p.account.clone()))
        .chain(prior.iter().map(|(n, p)| (n.clone(), p.account.clone())))
        .collect();
    let mut made = Vec::new();
    for (name, p) in &config.policies {
        if p.dr.is_some() {
            made.extend(missing(state, name, p, accounts, obs, expiring, seen));
        }
    }
    // A lost copy made again is forgotten by the change that makes it.
    let remade: BTreeSet<Address> = made.iter().map(|c| c.address.clone()).collect();
    let mut drift = retention::copy_drift(state, &policy_accounts, &ending, seen);
    drift.retain(|c| !remade.contains(&c.address));
    let locks = super::lock::plan_locks(
        config,
        state,
        obs.dr_copies.as_ref(),
        &ending,
        &policy_accounts,
        now,
    );
    out.changes.extend(locks.changes);
    out.notes.extend(locks.notes);
    out.locks = locks.views;
    out.changes.extend(decision.changes);
    out.changes.extend(drift);
    out.changes.extend(made);
    out.notes.extend(decision.notes);
    if let Some(s) = &obs.dr_copies {
        for (d, why) in &s.unreachable {
            out.notes.push(format!(
                "the DR copies at {d} could not be looked at ({why}): none of them is planned this time"
            ));
        }
        for (d, why) in &s.lock_errors {
            out.notes.push(format!(
                "the locks of the DR copies at {d} could not be looked at ({why}): a removed lock there is not planned this time"
            ));
        }
    }
    out
}

/// The newest successful backup of `policy` that stays and whose artifacts
/// all exist.
fn latest_valid<'a>(
    state: &'a state::Snapshot,
    policy: &str,
    obs: &Observation,
    expiring: &BTreeMap<Address, String>,
) -> Option<&'a BackupRecord> {
    state
        .backups
        .iter()
        .filter(|b| {
            b.policy == policy
                && b.status == BackupStatus::Success
                && !expiring.contains_key(&b.address())
                && b.snapshots.iter().all(|s| obs.holds(s))
        })
        .max_by_key(|b| b.seq)
}

/// The copies the latest valid backup lacks at each destination.
#[allow(clippy::too_many_arguments)]
fn missing(
    state: &state::Snapshot,
    name: &str,
    p: &lifeboat_schema::Policy,
    accounts: &BTreeMap<String, Account>,
    obs: &Observation,
    expiring: &BTreeMap<Address, String>,
    seen: &dyn Holds,
) -> Vec<Change> {
    let Some(dr) = &p.dr else { return Vec::new() };
    let Some(b) = latest_valid(state, name, obs, expiring) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (dest, artifacts) in route::routes(dr, &p.account, &b.snapshots) {
        if !accounts.contains_key(&dest.account) || !seen.reachable(&dest) {
            continue;
        }
        let run = state
            .dr_runs
            .iter()
            .find(|r| r.policy == name && r.backup_id == b.id && r.destination == dest);
        // Skipped under `every`, or still being worked on by a runner.
        if run.is_some_and(|r| r.status == DrStatus::Skipped || r.status.is_open()) {
            continue;
        }
        for s in artifacts {
            let have = state.dr_copies.iter().any(|c| {
                c.policy == name
                    && c.source_id == s.id
                    && c.destination == dest
                    && c.image.is_none()
                    && (c.status == DrStatus::InProgress
                        || (c.status == DrStatus::Completed && seen.holds(c)))
            });
            if have {
                continue;
            }
            let address = Address::dr_copy(name, &s.id, &dest, &p.account);
            let mut c = Change::new(address, Action::Create, Effect::Control)
                .reason(format!("DR: backup {} has no copy at {dest}", b.id))
                .after(Some(json!({
                    "backup_id": b.id,
                    "account": dest.account,
                    "region": dest.region,
                    "source_region": s.region,
                    "kind": s.kind,
                })));
            // The policy's `dr` block and the DR account are applied first:
            // the copy reads both from the state.
            c.depends_on = vec![Address::policy(name), Address::account(&dest.account)];
            out.push(c);
        }
    }
    out
}
