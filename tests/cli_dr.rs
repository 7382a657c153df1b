//! DR copies end to end: the real binary against the emulator copies every
//! kind of artifact to another region with its tags, both ways in a
//! mixed-region policy, every Nth backup, keeps its own generations per
//! destination (deleting, or tagging where deletes are not allowed), shows
//! missing copies in the plan for apply to make, and shares a snapshot with
//! the vault account for a cross-account copy (which the emulator itself
//! cannot complete: the copy is covered with the fake in
//! engine/tests/unit_dr.rs).

mod support;

use support::targets::Rds;
use support::{at, Aws, Env};

const WEST: &str = "us-west-2";

fn config(
    instance: &str,
    extra_targets: &str,
    dr: &str,
    generations: u32,
    allow_delete: bool,
) -> String {
    format!(
        r#"account "main" {{
  regions      = ["us-east-1"]
  allow_delete = {allow_delete}
}}

policy "web" {{
  account     = account.main
  generations = {generations}

  instance "{instance}" {{
    region = "us-east-1"
  }}
{extra_targets}
  dr {{
{dr}
  }}
}}
"#
    )
}

/// The copies in `region` of the emulator, by the tag every copy carries.
fn copies_in(env: &Env, region: &str) -> Vec<support::Snapshot> {
    let aws = Aws::in_region(&env.emulator, region);
    aws.describe_tagged_key("lifeboat:dr-source")
}

fn backup_json(env: &Env, id: &str) -> serde_json::Value {
    env.run(&["backups", "show", id, "--json"]).ok().json()
}

#[test]
fn every_kind_is_copied_to_another_region_with_its_tags() {
    let env = Env::start();
    let rds = Rds::new(&env.emulator);
    let plain = env.aws.run_instance(2, &[]);
    let imaged = env.aws.run_instance(1, &[]);
    rds.create_instance("orders-db");
    rds.create_cluster("orders-cluster");
    let targets = format!(
        "  instance \"{}\" {{\n    region = \"us-east-1\"\n    mode   = \"ami\"\n  }}\n  rds \"orders-db\" {{\n    region = \"us-east-1\"\n  }}\n  aurora \"orders-cluster\" {{\n    region = \"us-east-1\"\n  }}\n",
        imaged.id
    );
    env.config(&config(
        &plain.id,
        &targets,
        "    regions = [\"us-west-2\"]",
        2,
        true,
    ));
    env.apply();
    let run = env.backup("web", &at(10));
    run.stdout_has("DR copy of backup 2026-11-22T10:00:00Z to us-west-2:main: completed");

    // Two volume snapshots, the AMI's snapshot (tagged once the copied
    // image is available), all tagged with where they came from.
    let west = copies_in(&env, WEST);
    let sources: Vec<&str> = west
        .iter()
        .map(|s| s.tags["lifeboat:dr-source"].as_str())
        .collect();
    assert_eq!(west.len(), 3, "{west:?}");
    for s in &west {
        assert_eq!(s.tags["lifeboat:dr-policy"], "web");
        assert_eq!(s.tags["lifeboat:dr-backup-id"], "2026-11-22T10:00:00Z");
        assert_eq!(s.tags["lifeboat:dr-source-region"], "us-east-1");
        assert!(
            !s.tags.contains_key("lifeboat:policy"),
            "a copy is not a backup: {s:?}"
        );
    }
    let east = env.aws.lifeboat_snapshots();
    for v in &plain.volumes {
        let original = east.iter().find(|s| &s.volume_id == v).expect("backed up");
        assert!(
            sources.contains(&original.id.as_str()),
            "{original:?} not copied"
        );
    }
    let west_ec2 = Aws::in_region(&env.emulator, WEST);
    let images = west_ec2.images_with_tag_key("lifeboat:dr-source");
    assert_eq!(images.len(), 1, "{images:?}");
    assert_eq!(images[0].tags["lifeboat:dr-policy"], "web");
    let west_rds = Rds::in_region(&env.emulator, WEST);
    let dbs = west_rds.db_snapshots();
    assert_eq!(dbs.len(), 1, "{dbs:?}");
    assert_eq!(dbs[0].tags["lifeboat:dr-backup-id"], "2026-11-22T10:00:00Z");
    let clusters = west_rds.cluster_snapshots();
    assert_eq!(clusters.len(), 1, "{clusters:?}");

    // The catalog: one DR run, completed, and every copy listed.
    let b = backup_json(&env, "2026-11-22T10:00:00Z");
    assert_eq!(b["dr"][0]["status"], "completed", "{b}");
    assert_eq!(
        b["dr_copies"].as_array().unwrap().len(),
        1 + 2 + 1 + 1 + 1,
        "{b}"
    );
    env.run(&["backups"])
        .ok()
        .stdout_has("us-west-2:main completed");
    env.assert_converged();
}

#[test]
fn a_mixed_region_policy_copies_each_region_to_the_other() {
    let env = Env::start();
    let east = env.aws.run_instance(1, &[]);
    let west = Aws::in_region(&env.emulator, WEST).run_instance(1, &[]);
    let text = format!(
        r#"account "main" {{
  regions = ["us-east-1", "us-west-2"]
}}

policy "web" {{
  account     = account.main
  generations = 2

  instance "{}" {{
    region = "us-east-1"
  }}
  instance "{}" {{
    region = "us-west-2"
  }}
  dr {{
    regions = ["us-east-1", "us-west-2"]
  }}
}}
"#,
        east.id, west.id
    );
    env.config(&text);
    env.apply();
    env.backup("web", &at(10))
        .stdout_has("to us-east-1:main: completed")
        .stdout_has("to us-west-2:main: completed");
    let in_west = copies_in(&env, WEST);
    let in_east = copies_in(&env, "us-east-1");
    assert_eq!(in_west.len(), 1, "{in_west:?}");
    assert_eq!(in_east.len(), 1, "{in_east:?}");
    assert_eq!(in_west[0].tags["lifeboat:dr-source-region"], "us-east-1");
    assert_eq!(in_east[0].tags["lifeboat:dr-source-region"], "us-west-2");
}

#[test]
fn dr_generations_outlast_the_local_ones_and_every_skips_backups() {
    let env = Env::start();
    let i = env.aws.run_instance(1, &[]);
    env.config(&config(
        &i.id,
        "",
        "    regions     = [\"us-west-2\"]\n    generations = 2\n    every       = 2",
        1,
        true,
    ));
    env.apply();
    for hour in [10, 11, 12, 13, 14] {
        env.backup("web", &at(hour));
    }
    // Backups 10, 12 and 14 were copied, 11 and 13 skipped; locally one
    // generation stays, in the vault region two: 12 and 14.
    let listed = env.backups(&[]);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let west = copies_in(&env, WEST);
    let mut ids: Vec<&str> = west
        .iter()
        .map(|s| s.tags["lifeboat:dr-backup-id"].as_str())
        .collect();
    ids.sort();
    assert_eq!(ids, ["2026-11-22T12:00:00Z", "2026-11-22T14:00:00Z"]);
    env.assert_converged();
}

#[test]
fn where_deletes_are_not_allowed_an_expired_copy_is_tagged_and_listed() {
    let env = Env::start();
    let i = env.aws.run_instance(1, &[]);
    env.config(&config(
        &i.id,
        "",
        "    regions     = [\"us-west-2\"]\n    generations = 1",
        1,
        false,
    ));
    env.apply();
    env.backup("web", &at(10));
    env.backup("web", &at(11));
    let west = copies_in(&env, WEST);
    assert_eq!(west.len(), 2, "nothing is deleted: {west:?}");
    let expired: Vec<_> = west
        .iter()
        .filter(|s| s.tags.contains_key("lifeboat:expired"))
        .collect();
    assert_eq!(expired.len(), 1, "{west:?}");
    assert_eq!(
        expired[0].tags["lifeboat:dr-backup-id"],
        "2026-11-22T10:00:00Z"
    );
    let listed = env.run(&["dr", "expired", "--json"]).ok().json();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], expired[0].id.as_str());
    env.run(&["dr", "expired"]).ok().stdout_has(&expired[0].id);
    // Tagged once: the next plan does not tag it again.
    env.assert_converged();
}

#[test]
fn the_plan_shows_missing_copies_and_apply_makes_them_again_after_drift() {
    let env = Env::start();
    let i = env.aws.run_instance(1, &[]);
    let without = config(&i.id, "", "", 2, true).replace("  dr {\n\n  }\n", "");
    env.config(&without);
    env.apply();
    env.backup("web", &at(10));
    let original = env.aws.lifeboat_snapshots()[0].id.clone();

    // DR enabled after the fact: the latest backup's copy is planned.
    env.config(&config(&i.id, "", "    regions = [\"us-west-2\"]", 2, true));
    let plan = env.run(&["plan"]).ok();
    let line = plan.plan_line("+", &format!("dr_copy.web[\"{original}\"][\"us-west-2\"]"));
    assert!(line.contains("has no copy at us-west-2:main"), "{line}");
    env.apply();
    assert_eq!(copies_in(&env, WEST).len(), 1);
    env.assert_converged();

    // Deleted outside Lifeboat: planned again, made again.
    let copy = copies_in(&env, WEST)[0].id.clone();
    Aws::in_region(&env.emulator, WEST).delete_snapshot(&copy);
    env.run(&["plan"])
        .ok()
        .plan_line("+", &format!("dr_copy.web[\"{original}\"][\"us-west-2\"]"));
    env.apply();
    let again = copies_in(&env, WEST);
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].id, copy);
    env.assert_converged();
}

#[test]
fn a_cross_account_copy_shares_the_snapshot_with_the_vault_and_unshares_it() {
    let env = Env::start();
    let i = env.aws.run_instance(1, &[]);
    let text = config(&i.id, "", "    cross_account {\n      to = account.vault\n    }", 2, true)
        .replace(
            "policy \"web\"",
            "account \"vault\" {\n  type         = \"dr\"\n  regions      = [\"us-east-1\"]\n  allow_delete = false\n  assume_role {\n    role_arn = \"arn:aws:iam::222222222222:role/lifeboat-dr\"\n  }\n}\n\npolicy \"web\"",
        );
    env.config(&text);
    env.apply();
    // The emulator cannot copy a snapshot shared from another account: the
    // copy call fails in the vault, naming it; the share is undone.
    let run = env.run(&["--now", &at(10), "backup", "web"]).code(1);
    run.stdout_has("to us-east-1:vault: failed")
        .stdout_has("ec2:CopySnapshot failed in account vault (us-east-1)");
    let snap = env.aws.lifeboat_snapshots()[0].id.clone();
    assert!(
        env.aws.shared_with(&snap).is_empty(),
        "the share is removed once the copy is settled"
    );
}
