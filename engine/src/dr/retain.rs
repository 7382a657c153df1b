//! Retention of copies after DR runs ended: the policies whose copies
//! changed are looked at, as `plan` would ([`crate::retention::decide_copies`]
//! on the same observation), and expired copies are deleted or tagged.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::addr::Address;
use crate::plan::apply::{self, Executor, Outcome, Report};
use crate::plan::Plan;
use crate::retention::{self, CopyPolicies};
use crate::state::StateError;

use super::DrWork;

/// The copies' retention for `policies` (by name) as they are in state.
/// When the copies cannot be looked at, nothing is decided: the report
/// says why at the policy's address.
pub async fn retain_copies(
    work: &DrWork,
    policies: &BTreeSet<String>,
) -> Result<Report, StateError> {
    let mut report = Report::default();
    let state = work.store.lock().expect("store").load()?;
    let accounts = state.accounts()?;
    let mut p = CopyPolicies {
        now: work.now_at(),
        ..Default::default()
    };
    for name in policies {
        if let Some(pol) = state.policy(name)? {
            if let Some(dr) = &pol.dr {
                p.generations.insert(
                    name.clone(),
                    (dr.generations(pol.generations), pol.account.clone()),
                );
            }
        }
    }
    if p.generations.is_empty() {
        return Ok(report);
    }
    let mine: Vec<_> = state
        .dr_copies
        .iter()
        .filter(|c| p.generations.contains_key(&c.policy))
        .cloned()
        .collect();
    let seen = match super::observe::observe_copies(work.cloud.clone(), &mine, &accounts).await {
        Ok(s) => s,
        Err(e) => {
            for name in p.generations.keys() {
                report.outcomes.insert(
                    Address::policy(name),
                    Outcome::Failed(format!(
                        "DR retention skipped: the copies could not be listed ({e}); nothing was deleted"
                    )),
                );
            }
            return Ok(report);
        }
    };
    let decision = retention::decide_copies(&state, &p, &accounts, &seen);
    if decision.changes.is_empty() {
        return Ok(report);
    }
    let plan = Plan::new(
        state.lineage.clone(),
        state.serial,
        String::new(),
        work.now_at(),
        decision.changes,
        decision.notes,
    );
    let exec = Arc::new(Executor {
        cloud: work.cloud.clone(),
        accounts,
        store: work.store.clone(),
        now: work.now_at(),
        lock_id: work.retention_lock()?,
        stop: Default::default(),
    });
    Ok(apply::apply(&plan, exec, 4, |_, _| {}).await)
}
