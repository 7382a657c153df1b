//! A saved plan is checked, never trusted. Between `plan --out` and `apply
//! FILE` the file may sit in a CI artifact store or a pull request, where
//! anyone who can write it could add a delete of the newest backup, turn an
//! account's `allow_delete` on, point a script at their own program or name
//! a stack Lifeboat never created. So `apply FILE` plans again against the
//! current configuration, state and AWS, and performs only changes of that
//! fresh plan: each change of the saved plan must be in it with the same
//! action and values, or the whole apply is refused before anything runs.

use std::collections::BTreeMap;
use std::fmt;

use crate::addr::Address;
use crate::plan::{Action, Change, Effect, Plan};

/// Why a saved plan is not applied. Nothing has changed when it is returned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SavedPlanError {
    #[error("the saved plan was made for another state (lineage {saved}, this state is {current}); make a new plan")]
    OtherState { saved: String, current: String },
    #[error("the saved plan is stale: it was made at state serial {saved}, and the state is now at serial {current}; make a new plan")]
    Stale { saved: u64, current: u64 },
    #[error("the configuration changed since the plan was made (digest {saved}, now {current}); make a new plan")]
    ConfigChanged { saved: String, current: String },
    #[error("{}", refusals_text(.0))]
    Refused(Vec<Refusal>),
}

/// One change of a saved plan that a fresh plan does not make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub address: Address,
    pub action: Action,
    pub why: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.action.symbol(), self.address, self.why)
    }
}

fn refusals_text(refusals: &[Refusal]) -> String {
    let mut s = format!(
        "the saved plan has {} change(s) that a plan made now does not; nothing was applied:",
        refusals.len()
    );
    for r in refusals {
        s.push_str(&format!("\n  {r}"));
    }
    s.push_str("\nThe plan file was edited, or AWS changed since it was made; make a new plan.");
    s
}

/// What to perform: changes of the fresh plan only, and what the operator
/// should know about the difference.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The fresh plan's own changes that the saved plan asked for.
    pub plan: Plan,
    pub notes: Vec<String>,
}

/// Checks that `saved` was made against this state (lineage, serial) and
/// this configuration (digest), without reading anything else.
pub fn same_origin(
    saved: &Plan,
    lineage: &str,
    serial: u64,
    config_digest: &str,
) -> Result<(), SavedPlanError> {
    // A plan made before any state existed has no lineage: it belongs to
    // whichever state nothing was written to yet (the first apply makes
    // it), never to one with a history.
    // Made before the state existed, applied after it was written to: the
    // plan is stale (the usual case: another apply came first).
    let unborn = saved.lineage.is_empty() && saved.serial == 0;
    if unborn && serial > 0 {
        return Err(SavedPlanError::Stale {
            saved: 0,
            current: serial,
        });
    }
    if saved.lineage != lineage && !unborn {
        return Err(SavedPlanError::OtherState {
            saved: saved.lineage.clone(),
            current: lineage.to_string(),
        });
    }
    if saved.serial != serial {
        return Err(SavedPlanError::Stale {
            saved: saved.serial,
            current: serial,
        });
    }
    if saved.config_digest != config_digest {
        return Err(SavedPlanError::ConfigChanged {
            saved: saved.config_digest.clone(),
            current: config_digest.to_string(),
        });
    }
    Ok(())
}

/// Matches `saved` against `fresh`, a plan made now from the same state and
/// configuration. Every saved change must be in `fresh` with the same
/// action, `before` and `after`; one exception: a delete whose artifact AWS
/// no longer has is, in `fresh`, a catalog-only read (the work was done
/// elsewhere) and that read is performed instead. Changes only `fresh` has
/// are not performed (nobody reviewed them) and are named in a note.
/// Are the saved change's values the fresh one's? A saved plan is written
/// with secrets-shaped fields masked (`render::json_to`), so a value that
/// differs is compared again with the fresh one masked the same way.
fn same_values(saved: &Change, fresh: &Change) -> bool {
    let masked = |v: &serde_json::Value| {
        let mut v = v.clone();
        super::render::mask(&mut v);
        v
    };
    let before = saved.before == fresh.before
        || match (&saved.before, &fresh.before) {
            (Some(s), Some(f)) => *s.value() == masked(&f.value()),
            _ => false,
        };
    let after = saved.after == fresh.after
        || match (&saved.after, &fresh.after) {
            (Some(s), Some(f)) => *s == masked(f),
            _ => false,
        };
    before && after
}

pub fn check(saved: &Plan, fresh: &Plan) -> Result<Checked, SavedPlanError> {
    same_origin(saved, &fresh.lineage, fresh.serial, &fresh.config_digest)?;
    let by_address: BTreeMap<&Address, &Change> =
        fresh.changes.iter().map(|c| (&c.address, c)).collect();
    let mut refusals = Vec::new();
    let mut notes = Vec::new();
    let mut keep: Vec<Change> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for s in &saved.changes {
        if !seen.insert(&s.address) {
            refusals.push(refusal(s, "the address appears twice in the saved plan"));
            continue;
        }
        let Some(f) = by_address.get(&s.address) else {
            refusals.push(refusal(s, "a plan made now has no change here"));
            continue;
        };
        if s.action == Action::Delete && f.action == Action::Read {
            notes.push(format!(
                "{} is already gone from AWS: only the catalog is updated",
                s.address
            ));
        } else if s.action != f.action {
            refusals.push(refusal(
                s,
                &format!("a plan made now would {} it instead", verb(f.action)),
            ));
            continue;
        } else if !same_values(s, f) {
            refusals.push(refusal(
                s,
                "its values differ from those a plan made now has",
            ));
            continue;
        }
        keep.push((*f).clone());
    }
    // A kept change is only what was planned when everything it waits for
    // runs first: a plan file with a move, an account or a backup's
    // artifacts cut out would otherwise act on a state nobody planned.
    let kept: std::collections::BTreeSet<&Address> = keep.iter().map(|c| &c.address).collect();
    for c in &keep {
        for d in c.depends_on.iter().filter(|d| !kept.contains(d)) {
            refusals.push(refusal(
                c,
                &format!("it needs {d} first, which the saved plan leaves out"),
            ));
        }
    }
    let left = fresh.changes.len() - keep.len();
    // Retention decides on the whole plan (who is a member, what moves): a
    // saved plan that deletes backup data must be the whole plan made now.
    if left > 0 {
        for c in keep
            .iter()
            .filter(|c| matches!(c.effect, Effect::DeletesBackups | Effect::Catalog))
        {
            refusals.push(refusal(
                c,
                &format!(
                    "the saved plan deletes or forgets backup data but leaves out {left} change(s) a plan made now has"
                ),
            ));
        }
    }
    if !refusals.is_empty() {
        return Err(SavedPlanError::Refused(refusals));
    }
    if left > 0 {
        notes.push(format!(
            "{left} change(s) that a plan made now has are not in the saved plan and are not performed; run plan again to see them"
        ));
    }
    let present: std::collections::BTreeSet<Address> =
        keep.iter().map(|c| c.address.clone()).collect();
    for c in &mut keep {
        c.depends_on.retain(|d| present.contains(d));
    }
    let mut plan = Plan::new(
        fresh.lineage.clone(),
        fresh.serial,
        fresh.config_digest.clone(),
        fresh.created_at,
        keep,
        fresh.warnings.clone(),
    );
    plan.banners_from(fresh);
    Ok(Checked { plan, notes })
}

fn refusal(c: &Change, why: &str) -> Refusal {
    Refusal {
        address: c.address.clone(),
        action: c.action,
        why: why.to_string(),
    }
}

fn verb(a: Action) -> &'static str {
    match a {
        Action::Create => "create",
        Action::Update => "update",
        Action::Delete => "delete",
        Action::Replace => "replace",
        Action::Read => "only update the catalog for",
        Action::Move => "move",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Effect;
    use serde_json::json;

    fn plan(changes: Vec<Change>) -> Plan {
        Plan::new(
            "L".into(),
            3,
            "D".into(),
            "2026-11-22T00:00:00Z".parse().unwrap(),
            changes,
            vec![],
        )
    }

    fn snap(id: &str, action: Action) -> Change {
        Change::new(Address::snapshot(id), action, Effect::DeletesBackups)
            .before(Some(json!({"policy": "web"})))
    }

    #[test]
    fn the_fresh_changes_the_saved_plan_names_are_performed_and_the_rest_noted() {
        let pol = |n: &str| Change::new(Address::policy(n), Action::Create, Effect::Control);
        let fresh = plan(vec![pol("a"), pol("b")]);
        let saved = plan(vec![pol("a")]);
        let c = check(&saved, &fresh).unwrap();
        assert_eq!(c.plan.changes, vec![pol("a")]);
        assert_eq!(c.notes.len(), 1, "{:?}", c.notes);
    }

    #[test]
    fn a_change_the_fresh_plan_lacks_or_makes_differently_is_refused_by_name() {
        let fresh = plan(vec![snap("snap-1", Action::Delete)]);
        let mut edited = snap("snap-1", Action::Delete);
        edited.before = Some(json!({"policy": "other"}).into());
        let saved = plan(vec![edited, snap("snap-9", Action::Delete)]);
        let err = check(&saved, &fresh).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("- snapshot[\"snap-1\"]: its values differ"),
            "{text}"
        );
        assert!(
            text.contains("- snapshot[\"snap-9\"]: a plan made now has no change"),
            "{text}"
        );
    }

    #[test]
    fn a_delete_done_elsewhere_becomes_the_fresh_catalog_read() {
        let fresh = plan(vec![snap("snap-1", Action::Read)]);
        let saved = plan(vec![snap("snap-1", Action::Delete)]);
        let c = check(&saved, &fresh).unwrap();
        assert_eq!(c.plan.changes[0].action, Action::Read);
        assert!(c.notes[0].contains("already gone"), "{:?}", c.notes);
    }

    #[test]
    fn another_state_a_moved_serial_or_another_configuration_is_refused() {
        let fresh = plan(vec![]);
        let mut saved = plan(vec![]);
        saved.config_digest = "E".into();
        assert!(matches!(
            check(&saved, &fresh),
            Err(SavedPlanError::ConfigChanged { .. })
        ));
        saved.serial = 2;
        assert!(matches!(
            check(&saved, &fresh),
            Err(SavedPlanError::Stale { .. })
        ));
        saved.lineage = "M".into();
        assert!(matches!(
            check(&saved, &fresh),
            Err(SavedPlanError::OtherState { .. })
        ));
    }

    #[test]
    fn a_saved_plan_that_cuts_a_dependency_or_deletes_from_a_partial_plan_is_refused() {
        let mv = Change::new(Address::policy("a"), Action::Move, Effect::Control)
            .after(Some(json!({"to": "b"})));
        let upd = Change::new(Address::policy("b"), Action::Update, Effect::Control)
            .depends_on(vec![Address::policy("a")]);
        let fresh = plan(vec![mv, upd.clone()]);
        let err = check(&plan(vec![upd]), &fresh).unwrap_err().to_string();
        assert!(err.contains("it needs policy.a first"), "{err}");

        let target = Change::new(
            Address::target("web", "i-1"),
            Action::Create,
            Effect::Control,
        );
        let fresh = plan(vec![target, snap("snap-1", Action::Delete)]);
        let err = check(&plan(vec![snap("snap-1", Action::Delete)]), &fresh)
            .unwrap_err()
            .to_string();
        assert!(err.contains("leaves out 1 change"), "{err}");
    }

    #[test]
    fn a_read_in_the_saved_plan_cannot_become_a_delete() {
        let fresh = plan(vec![snap("snap-1", Action::Delete)]);
        let saved = plan(vec![snap("snap-1", Action::Read)]);
        let err = check(&saved, &fresh).unwrap_err();
        assert!(err.to_string().contains("would delete it instead"), "{err}");
    }
}
