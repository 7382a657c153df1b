//! Apply beside a runner's backups in flight. The runner lets go of the
//! state lock while a backup waits for AWS, so an apply can run then; it
//! must not pull the ground from under that backup. A change that removes
//! or renames its policy, disables it, turns it into a template, moves it
//! to another account, changes its DR, removes one of its targets, or
//! removes (or changes the regions, id, role or profile of) the account it
//! runs in, is refused while the backup is in flight, naming it, and
//! then the whole plan is refused before any of it is done: the changes a
//! refused one depends on (its policy's backups, deleted before the
//! policy) must not go ahead without it. Applying again once the backup
//! finished performs the plan.
//! Retention deletes need no interlock: the runner's retention runs under
//! the state lock, as apply does, so they never run at once, and each
//! decides on the catalog as committed.

use serde_json::Value;

use crate::addr::Address;
use crate::plan::{Action, Change};
use crate::state::{InFlight, StateError};

use super::apply::{ApplyError, Executor};

/// What `c` does that a backup in flight in `flight` cannot live with.
pub fn conflict(c: &Change, flight: &InFlight) -> Option<&'static str> {
    // Only a policy's or an account's change is looked at: their priors
    // are small values.
    let before: Option<Value> = match &c.address {
        Address::Policy { .. } | Address::Account { .. } => {
            c.before.as_ref().map(|p| p.value().into_owned())
        }
        _ => None,
    };
    let differs = |key: &str| {
        let of = |v: &Option<Value>| v.as_ref().and_then(|v| v.get(key)).cloned();
        of(&before) != of(&c.after)
    };
    let turned_off = || {
        let on = |v: &Option<Value>, key: &str, default: bool| {
            v.as_ref()
                .and_then(|v| v.get(key))
                .and_then(Value::as_bool)
                .unwrap_or(default)
        };
        (on(&before, "enabled", true) && !on(&c.after, "enabled", true))
            || (!on(&before, "template", false) && on(&c.after, "template", false))
    };
    match (&c.address, c.action) {
        (Address::Policy { name }, _) if *name != flight.policy => None,
        (Address::Policy { .. }, Action::Delete) => Some("removing its policy"),
        (Address::Policy { .. }, Action::Move) => Some("renaming its policy"),
        (Address::Policy { .. }, Action::Update | Action::Replace) if differs("account") => {
            Some("moving its policy to another account")
        }
        (Address::Policy { .. }, Action::Update | Action::Replace) if turned_off() => {
            Some("disabling its policy")
        }
        // The backup's DR runs start from the policy's `dr` when it ends.
        (Address::Policy { .. }, Action::Update | Action::Replace) if differs("dr") => {
            Some("changing its policy's DR")
        }
        (Address::Target { policy, .. }, Action::Delete) if *policy == flight.policy => {
            Some("removing a target of its policy")
        }
        (Address::Account { name }, _) if *name != flight.account => None,
        (Address::Account { .. }, Action::Delete) => Some("removing its account"),
        (Address::Account { .. }, Action::Update | Action::Replace) if differs("regions") => {
            Some("changing its account's regions")
        }
        // Its commits and its close reach AWS as the account it started in.
        (Address::Account { .. }, Action::Update | Action::Replace)
            if ["account_id", "assume_role", "profile"]
                .iter()
                .any(|k| differs(k)) =>
        {
            Some("changing how its account is reached")
        }
        _ => None,
    }
}

/// Can `c` conflict with a backup in flight at all? Only a policy's, an
/// account's or a target's change can.
fn may_conflict(c: &Change) -> bool {
    matches!(
        c.address,
        Address::Policy { .. } | Address::Account { .. } | Address::Target { .. }
    )
}

impl Executor {
    /// The refusals of a plan some of whose changes conflict with a backup
    /// in flight, one per conflicting change: the whole plan is then
    /// refused before anything is done, since the changes it depends on
    /// (the policy's backups deleted before the policy) and those that
    /// depend on it would otherwise go ahead without it. Empty when the
    /// plan may go ahead (each change is still checked as it is made).
    pub(crate) fn refusals(&self, changes: &[Change]) -> Vec<(usize, ApplyError)> {
        if !changes.iter().any(may_conflict) {
            return Vec::new();
        }
        let flights = match self
            .store
            .lock()
            .expect("state store lock poisoned")
            .in_flight(None)
        {
            Ok(f) => f,
            // Unknown which backups are in flight: no change that could
            // conflict goes ahead (its dependencies, a removed policy's
            // other backups, would otherwise be deleted first).
            Err(e) => {
                return changes
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| may_conflict(c))
                    .map(|(i, c)| {
                        let why = format!(
                            "{}: cannot read which backups are in flight ({e}); nothing of this plan is applied",
                            c.address
                        );
                        (i, ApplyError::State(StateError::Conflict(why)))
                    })
                    .collect();
            }
        };
        let mut out = Vec::new();
        for (i, c) in changes.iter().enumerate() {
            if let Some((f, what)) = flights.iter().find_map(|f| conflict(c, f).map(|w| (f, w))) {
                let refusal = f.refuse(&format!(
                    "{} ({what}; nothing of this plan is applied)",
                    c.address
                ));
                out.push((i, ApplyError::State(refusal)));
            }
        }
        out
    }

    /// Refuses `c` while it conflicts with a backup in flight in a live
    /// runner, read from the state as it is now (under this apply's lock,
    /// no runner records a new backup meanwhile).
    pub(crate) fn interlock(&self, c: &Change) -> Result<(), ApplyError> {
        if !may_conflict(c) {
            return Ok(());
        }
        let flights = self
            .store
            .lock()
            .expect("state store lock poisoned")
            .in_flight(None)?;
        for f in &flights {
            if let Some(what) = conflict(c, f) {
                return Err(ApplyError::State(
                    f.refuse(&format!("{} ({what})", c.address)),
                ));
            }
        }
        Ok(())
    }
}
