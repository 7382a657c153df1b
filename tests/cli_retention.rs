//! The retention preview: lowering `generations` shows, before anything
//! happens, exactly which snapshots will be deleted and why; `apply` then
//! deletes exactly those.

mod support;

use std::collections::BTreeSet;

use support::{at, backup, config, snapshot, Env};

#[test]
fn lowering_generations_previews_and_deletes_exactly_the_old_snapshots() {
    let env = Env::start();
    let a = env.aws.run_instance(2, &[]);
    env.aws.run_instance(1, &[("team", "web")]);
    env.config(&config(2, &[&a.id], true, "yes"));
    env.apply();
    env.backup("web", &at(10));
    env.backup("web", &at(11));
    let older: BTreeSet<String> = env.aws.backup_snapshot_ids(&at(10)).into_iter().collect();
    let newer: BTreeSet<String> = env.aws.backup_snapshot_ids(&at(11)).into_iter().collect();
    assert_eq!(
        (older.len(), newer.len()),
        (3, 3),
        "both backups took a snapshot per volume"
    );

    env.ws
        .edit("main.lb.hcl", "generations = 2", "generations = 1");
    let plan = env.run(&["plan", "--detailed-exitcode"]).code(2);

    plan.plan_line("~", "policy.web");
    let deleted: BTreeSet<String> = plan
        .changes("-")
        .iter()
        .filter(|l| l.starts_with("- snapshot["))
        .map(|l| l.split('"').nth(1).expect("snapshot[\"ID\"]").to_string())
        .collect();
    assert_eq!(
        deleted, older,
        "exactly the older backup's snapshots are deleted\n{plan}"
    );
    for id in &older {
        let line = plan.plan_line("-", &snapshot(id));
        assert!(
            line.contains("(retention: generation 2 of 1)"),
            "the reason says why: {line:?}\n{plan}"
        );
    }
    plan.plan_line("-", &backup(&at(10)));
    plan.stdout_lacks(&at(11));
    let destroys = plan.changes("-").len() as u64;
    assert_eq!(plan.plan_summary(), (0, 1, destroys));

    // The JSON view carries the same deletions.
    let json = env.run(&["plan", "--json"]).ok().json();
    let json_deleted: BTreeSet<String> = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "delete")
        .filter_map(|c| c["address"].as_str())
        .filter(|a| a.starts_with("snapshot["))
        .map(|a| a.split('"').nth(1).unwrap().to_string())
        .collect();
    assert_eq!(json_deleted, older);

    // Nothing was deleted by planning.
    assert_eq!(env.aws.backup_snapshot_ids(&at(10)).len(), 3);

    env.apply();
    assert!(
        env.aws.backup_snapshot_ids(&at(10)).is_empty(),
        "apply deleted the old snapshots"
    );
    let remaining: BTreeSet<String> = env.aws.backup_snapshot_ids(&at(11)).into_iter().collect();
    assert_eq!(remaining, newer, "the newest generation is untouched");
    let listed: Vec<String> = env
        .backups(&[])
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, vec![at(11)]);
    env.assert_converged();
}

#[test]
fn raising_generations_deletes_nothing() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    env.config(&config(1, &[&a.id], false, "yes"));
    env.apply();
    env.backup("web", &at(10));
    env.ws
        .edit("main.lb.hcl", "generations = 1", "generations = 3");
    let plan = env.run(&["plan"]).ok();
    assert!(plan.changes("-").is_empty(), "{plan}");
    assert_eq!(plan.plan_summary(), (0, 1, 0));
    env.apply();
    assert_eq!(env.aws.backup_snapshot_ids(&at(10)).len(), 1);
}

#[test]
fn frozen_backups_are_not_in_the_retention_preview() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    env.config(&config(3, &[&a.id], false, "yes"));
    env.apply();
    for hour in [10, 11, 12] {
        env.backup("web", &at(hour));
    }
    env.run(&["freeze", &at(10), "--name", "audit"]).ok();
    env.ws
        .edit("main.lb.hcl", "generations = 3", "generations = 1");
    let plan = env.run(&["plan"]).ok();
    plan.stdout_lacks(&at(10));
    for id in env.aws.backup_snapshot_ids(&at(10)) {
        plan.stdout_lacks(&id);
    }
    plan.plan_line("-", &backup(&at(11)));
    for id in env.aws.backup_snapshot_ids(&at(11)) {
        let line = plan.plan_line("-", &snapshot(&id));
        assert!(
            line.contains("(retention: generation 2 of 1)"),
            "{line:?}\n{plan}"
        );
    }
    env.apply();
    assert_eq!(
        env.aws.backup_snapshot_ids(&at(10)).len(),
        1,
        "frozen survives"
    );
    assert!(env.aws.backup_snapshot_ids(&at(11)).is_empty());
    assert_eq!(env.aws.backup_snapshot_ids(&at(12)).len(), 1);
    env.assert_converged();
}

/// Instances A and B in `web` (one generation); a backup at(1) of both on
/// 22 November; A leaves the policy on 1 December; a backup at(2) of B.
fn departed_on_the_first_of_december() -> (Env, String, String) {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]).id;
    let b = env.aws.run_instance(1, &[]).id;
    env.config(&config(1, &[&a, &b], false, "yes"));
    env.apply();
    env.backup("web", &at(1));
    env.config(&config(1, &[&b], false, "yes"));
    env.run(&["--now", "2026-12-01T00:00:00Z", "apply", "--auto-approve"])
        .ok();
    env.backup("web", &at(2));
    (env, a, b)
}

#[test]
fn a_departed_targets_last_backup_outlives_its_generations() {
    let (env, a, _) = departed_on_the_first_of_december();
    env.backup("web", &at(3));
    let ids: Vec<String> = env
        .backups(&[])
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids,
        vec![at(1), at(3)],
        "one generation, and A's last backup"
    );
    // The thirty days count from when A left, not from its last backup.
    let plan = env.run(&["--now", "2026-12-23T00:00:00Z", "plan"]).ok();
    plan.stdout_has(&format!(
        "kept: backup.web[\"{}\"] is the last backup of departed target {a}, kept until 2026-12-31",
        at(1)
    ));
    // Once they are over, it goes like any other.
    let later = "2027-01-01T00:00:00Z";
    let plan = env.run(&["--now", later, "plan"]).ok();
    plan.plan_line("-", &backup(&at(1)));
    env.run(&["--now", later, "apply", "--auto-approve"]).ok();
    assert_eq!(env.backups(&[]).len(), 1);
}

#[test]
fn a_departure_moves_with_its_policy() {
    let (env, a, b) = departed_on_the_first_of_december();
    // Renamed: A's departure (1 December) goes with the policy, so its last
    // backup is still kept on 23 December, in the plan that moves it...
    env.config(
        &(config(1, &[&b], false, "yes").replace("policy \"web\"", "policy \"site\"")
            + "\nmoved {\n  from = policy.web\n  to   = policy.site\n}\n"),
    );
    let now = "2026-12-23T00:00:00Z";
    let plan = env.run(&["--now", now, "plan"]).ok();
    plan.stdout_has(&format!(
        "kept: backup.site[\"{}\"] is the last backup of departed target {a}",
        at(1)
    ));
    plan.stdout_lacks("DELETED");
    // ...and after it.
    env.run(&["--now", now, "apply", "--auto-approve"]).ok();
    env.run(&["--now", now, "plan"])
        .ok()
        .stdout_has(&format!("kept: backup.site[\"{}\"]", at(1)));
    assert_eq!(env.backups(&[]).len(), 2);
}
