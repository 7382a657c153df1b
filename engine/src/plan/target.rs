//! `--target ADDRESS`: a plan cut down to some addresses, for an operator
//! who must change one thing now and leave the rest for a review.
//!
//! A change is kept when it is at a targeted address or belongs to one (a
//! policy's targets, backups, their artifacts and DR copies), with every
//! change it waits for, so that nothing kept acts on a state nobody
//! planned. What is left out is counted in a warning. `apply` judges a
//! targeted plan as it judges a saved plan that names fewer changes than a
//! plan made now ([`super::check::check`]): in particular, a cut plan that
//! deletes backup data is refused, since retention decided on the whole.

use std::collections::{BTreeMap, BTreeSet};

use crate::addr::Address;

use super::{Action, Change, Plan};

/// Does `c` act at `target` or on something that belongs to it?
fn belongs(c: &Change, target: &Address) -> bool {
    if c.address == *target {
        return true;
    }
    // An artifact's change names its backup in its prior.
    let of_backup = |policy: &str, id: Option<&str>| {
        c.before.as_ref().is_some_and(|p| {
            p.str("policy") == Some(policy) && id.is_none_or(|id| p.str("backup") == Some(id))
        })
    };
    let artifact = matches!(
        c.address,
        Address::Snapshot { .. }
            | Address::Image { .. }
            | Address::DbSnapshot { .. }
            | Address::DbClusterSnapshot { .. }
    );
    match (target, &c.address) {
        (Address::Policy { name }, Address::Target { policy, .. })
        | (Address::Policy { name }, Address::Backup { policy, .. })
        | (Address::Policy { name }, Address::DrCopy { policy, .. }) => policy == name,
        (Address::Policy { name }, _) if artifact => of_backup(name, None),
        (Address::Backup { policy, id }, _) if artifact => of_backup(policy, Some(id)),
        _ => false,
    }
}

/// The changes of existing policies and accounts a cut carries only
/// because a targeted change waits for them. They change what retention
/// decides (a policy's generations, an account's `allow_delete`), and the
/// deletes that follow from them are left out of the cut: the runner would
/// make them, unseen. `apply --target` refuses a cut with any; targeting
/// them brings their deletes in, to be judged with them. A new policy or
/// account has no backups to decide on.
pub fn settings_pulled_in<'a>(cut: &'a Plan, targets: &[Address]) -> Vec<&'a Address> {
    cut.changes
        .iter()
        .filter(|c| matches!(c.address, Address::Policy { .. } | Address::Account { .. }))
        .filter(|c| c.action != Action::Create)
        .filter(|c| !targets.iter().any(|t| belongs(c, t)))
        .map(|c| &c.address)
        .collect()
}

/// `plan` cut down to the changes at or under `targets`, and those they
/// wait for; a warning says how many were left out, and names a target
/// that matched nothing.
pub fn restrict(plan: &Plan, targets: &[Address]) -> Plan {
    let by_address: BTreeMap<&Address, &Change> =
        plan.changes.iter().map(|c| (&c.address, c)).collect();
    let mut keep: BTreeSet<&Address> = BTreeSet::new();
    let mut todo: Vec<&Address> = Vec::new();
    let mut warnings = plan.warnings.clone();
    for t in targets {
        let hits: Vec<&Address> = plan
            .changes
            .iter()
            .filter(|c| belongs(c, t))
            .map(|c| &c.address)
            .collect();
        if hits.is_empty() {
            warnings.push(format!("--target {t} matches no change of this plan"));
        }
        todo.extend(hits);
    }
    while let Some(a) = todo.pop() {
        if keep.insert(a) {
            if let Some(c) = by_address.get(a) {
                todo.extend(c.depends_on.iter().filter(|d| by_address.contains_key(d)));
            }
        }
    }
    let left = plan.changes.len() - keep.len();
    if left > 0 {
        let named: Vec<String> = targets.iter().map(Address::to_string).collect();
        warnings.push(format!(
            "--target {}: {left} change(s) outside it are left out of this plan; run plan without --target for the whole plan",
            named.join(", ")
        ));
    }
    let changes: Vec<Change> = plan
        .changes
        .iter()
        .filter(|c| keep.contains(&c.address))
        .cloned()
        .collect();
    let mut out = Plan::new(
        plan.lineage.clone(),
        plan.serial,
        plan.config_digest.clone(),
        plan.created_at,
        changes,
        warnings,
    );
    out.banners_from(plan);
    out.power.clone_from(&plan.power);
    let pulled: Vec<String> = settings_pulled_in(&out, targets)
        .into_iter()
        .map(Address::to_string)
        .collect();
    if !pulled.is_empty() {
        out.warnings.push(format!(
            "--target: {} change(s) too, because a targeted change waits for them; `apply --target` refuses that: target them as well, so that what they make retention delete is judged with them",
            pulled.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::prior::{ArtifactPrior, BackupOf};
    use crate::plan::Effect;
    use crate::state::{BackupRecord, BackupStatus, SnapshotRecord};

    fn plan(changes: Vec<Change>) -> Plan {
        Plan::new(
            "l".into(),
            1,
            "d".into(),
            chrono::Utc::now(),
            changes,
            vec![],
        )
    }

    fn artifact(policy: &str, backup: &str, id: &str) -> Change {
        let b = BackupRecord {
            seq: 1,
            id: backup.into(),
            policy: policy.into(),
            account: "main".into(),
            started: chrono::Utc::now(),
            finished: None,
            status: BackupStatus::Success,
            frozen: None,
            snapshots: vec![],
            problems: vec![],
        };
        let s = SnapshotRecord {
            id: id.into(),
            volume_id: "vol-1".into(),
            target: "i-1".into(),
            region: "us-east-1".into(),
            kind: Default::default(),
            image: None,
        };
        Change::new(
            Address::snapshot(id),
            Action::Delete,
            Effect::DeletesBackups,
        )
        .before_prior(ArtifactPrior::prior(&BackupOf::of(&b), &s))
    }

    #[test]
    fn a_target_keeps_what_belongs_to_it_and_what_it_waits_for() {
        let web = Address::policy("web");
        let b1 = Address::Backup {
            policy: "web".into(),
            id: "b1".into(),
        };
        let whole = plan(vec![
            Change::new(Address::account("main"), Action::Update, Effect::Control),
            Change::new(web.clone(), Action::Update, Effect::Control)
                .depends_on(vec![Address::account("main")]),
            Change::new(
                Address::target("web", "i-1"),
                Action::Create,
                Effect::Control,
            ),
            Change::new(
                Address::target("db", "i-2"),
                Action::Create,
                Effect::Control,
            ),
            artifact("web", "b1", "snap-1"),
            artifact("db", "b9", "snap-9"),
            Change::new(b1.clone(), Action::Delete, Effect::DeletesBackups)
                .depends_on(vec![Address::snapshot("snap-1")]),
        ]);
        let cut = restrict(&whole, std::slice::from_ref(&web));
        let kept: Vec<String> = cut.changes.iter().map(|c| c.address.to_string()).collect();
        assert_eq!(
            kept,
            [
                "account.main",
                "policy.web",
                "policy.web.target[\"i-1\"]",
                "backup.web[\"b1\"]",
                "snapshot[\"snap-1\"]",
            ]
            .map(String::from)
            .into_iter()
            .filter(|a| kept.contains(a))
            .collect::<Vec<_>>()
        );
        assert_eq!(kept.len(), 5, "{kept:?}");
        assert_eq!(
            settings_pulled_in(&cut, std::slice::from_ref(&web)),
            [&Address::account("main")]
        );
        // Targeting the account as well takes it in, deletes and all.
        let both = [web.clone(), Address::account("main")];
        assert!(settings_pulled_in(&restrict(&whole, &both), &both).is_empty());
        assert!(!kept
            .iter()
            .any(|a| a.contains("db") || a.contains("snap-9")));
        assert!(cut
            .warnings
            .iter()
            .any(|w| w.contains("2 change(s) outside it")));
        assert_eq!(cut.summary.destroy, 2);

        // A backup keeps its artifacts; an unknown target says so.
        let cut = restrict(&whole, &[b1, Address::policy("nope")]);
        assert_eq!(cut.changes.len(), 2);
        assert!(cut
            .warnings
            .iter()
            .any(|w| w.contains("policy.nope matches no change")));
    }

    #[test]
    fn a_cut_plan_that_deletes_backup_data_is_refused_by_the_saved_plan_check() {
        let whole = plan(vec![
            Change::new(
                Address::target("db", "i-2"),
                Action::Create,
                Effect::Control,
            ),
            artifact("web", "b1", "snap-1"),
        ]);
        let cut = restrict(&whole, &[Address::policy("web")]);
        assert_eq!(cut.changes.len(), 1);
        assert!(crate::plan::check::check(&cut, &whole).is_err());
        // Without backup data in it, the cut plan applies, the rest noted.
        let cut = restrict(&whole, &[Address::policy("db")]);
        let checked = crate::plan::check::check(&cut, &whole).unwrap();
        assert_eq!(checked.plan.changes.len(), 1);
    }
}
