//! `select` blocks beyond instances: volumes and RDS instances taken in by
//! their tags (`kinds`), and instances by any tag key starting with a
//! prefix (`tag_prefix`), planned and backed up without being listed. The
//! real binary against the emulator.

mod support;

use support::targets::Rds;
use support::{at, target, Env};

/// Policy `web` in us-east-1 with the given `select` block.
fn with_select(select: &str) -> String {
    format!(
        "account \"main\" {{\n  regions = [\"us-east-1\"]\n}}\n\npolicy \"web\" {{\n  account     = account.main\n  generations = 2\n  select {{\n{select}\n  }}\n  auto_remove_targets = \"yes\"\n}}\n"
    )
}

/// The targets of the newest backup's snapshots.
fn snapshotted(env: &Env) -> Vec<String> {
    let backups = env.backups(&[]);
    let newest = backups.last().expect("a backup");
    let mut out: Vec<String> = newest["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["target"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn a_volume_selected_by_tag_is_planned_and_backed_up_and_leaves_when_untagged() {
    let env = Env::start();
    let host = env.aws.run_instance(2, &[("team", "web")]);
    let data = host.volumes[1].clone();
    env.aws.tag(&data, "team", "web");
    env.config(&with_select(
        "    tag   = \"team\"\n    value = \"web\"\n    kinds = [\"volume\"]",
    ));

    // The volume is a target; the instance with the same tag is not, as
    // the selector takes volumes only.
    let plan = env.run(&["plan"]).ok();
    plan.plan_line("+", &target(&data));
    assert!(
        !plan.changes("+").iter().any(|c| c.contains(&host.id)),
        "{plan}"
    );
    env.apply();
    env.assert_converged();

    let run = env.backup("web", &at(10));
    assert_eq!(env.backups(&[])[0]["status"], "success", "{run}");
    assert_eq!(snapshotted(&env), [data.as_str()]);

    // A second volume tagged after the apply joins at the next backup, the
    // untagged one leaves, with why.
    let late = host.volumes[0].clone();
    env.aws.tag(&late, "team", "web");
    env.aws.untag(&data, "team");
    let run = env.backup("web", &at(11));
    run.stdout_has(&format!(
        "left: volume {data} (no longer matches tag team=web (volume))"
    ));
    run.stdout_has(&format!("joined: volume {late} (tag team=web (volume))"));
    assert_eq!(snapshotted(&env), [late.as_str()]);
    let state = env.state_list();
    assert!(!state.contains(&target(&data)), "{state:?}");
    assert!(state.contains(&target(&late)), "{state:?}");
}

#[test]
fn an_rds_instance_selected_by_tag_is_backed_up_with_a_db_snapshot() {
    let env = Env::start();
    let rds = Rds::new(&env.emulator);
    rds.create_tagged_instance("orders-db", &[("team", "web")]);
    rds.create_tagged_instance("other-db", &[("team", "data")]);
    // An instance with the tag stays out: the selector takes RDS only.
    let host = env.aws.run_instance(1, &[("team", "web")]).id;
    env.config(&with_select(
        "    tag   = \"team\"\n    value = \"web\"\n    kinds = [\"rds\"]",
    ));

    let plan = env.run(&["plan"]).ok();
    plan.plan_line("+", &target("orders-db"));
    let added = plan.changes("+");
    assert!(
        !added
            .iter()
            .any(|c| c.contains("other-db") || c.contains(&host)),
        "{plan}"
    );
    env.apply();
    env.assert_converged();

    let run = env.backup("web", &at(10));
    assert_eq!(env.backups(&[])[0]["status"], "success", "{run}");
    assert_eq!(snapshotted(&env), ["orders-db"]);
    let dbs = rds.db_snapshots();
    assert_eq!(dbs.len(), 1, "{dbs:?}");
    assert_eq!(dbs[0].source, "orders-db");
    assert_eq!(dbs[0].tags["lifeboat:target"], "orders-db");
}

#[test]
fn an_aurora_cluster_selected_by_tag_is_backed_up_with_a_cluster_snapshot() {
    let env = Env::start();
    let rds = Rds::new(&env.emulator);
    rds.create_tagged_cluster("orders-cluster", &[("team", "web")]);
    rds.create_tagged_cluster("other-cluster", &[]);
    // A tagged RDS instance stays out: the selector takes Aurora only.
    rds.create_tagged_instance("orders-db", &[("team", "web")]);
    env.config(&with_select(
        "    tag   = \"team\"\n    kinds = [\"aurora\"]",
    ));
    env.apply();
    let state = env.state_list();
    assert!(state.contains(&target("orders-cluster")), "{state:?}");
    assert!(!state.contains(&target("other-cluster")), "{state:?}");
    assert!(!state.contains(&target("orders-db")), "{state:?}");

    let run = env.backup("web", &at(10));
    assert_eq!(env.backups(&[])[0]["status"], "success", "{run}");
    let clusters = rds.cluster_snapshots();
    assert_eq!(clusters.len(), 1, "{clusters:?}");
    assert_eq!(clusters[0].source, "orders-cluster");
    assert!(rds.db_snapshots().is_empty());
}

#[test]
fn tag_prefix_selects_instances_by_any_key_starting_with_it() {
    let env = Env::start();
    let daily = env.aws.run_instance(1, &[("backup:web", "daily")]).id;
    let weekly = env.aws.run_instance(1, &[("backup:web", "weekly")]).id;
    // `backup` alone does not start with `backup:`.
    let bare = env.aws.run_instance(1, &[("backup", "daily")]).id;
    env.config(&with_select(
        "    tag_prefix = \"backup:\"\n    value      = \"daily\"",
    ));

    let plan = env.run(&["plan"]).ok();
    plan.plan_line("+", &target(&daily));
    for out in [&weekly, &bare] {
        assert!(
            !plan.changes("+").iter().any(|c| c.contains(out.as_str())),
            "{out}: {plan}"
        );
    }
    env.apply();
    env.assert_converged();

    // Another key with the prefix takes an instance in at the next backup.
    env.aws.tag(&weekly, "backup:db", "daily");
    let run = env.backup("web", &at(10));
    run.stdout_has(&format!("joined: instance {weekly} (tag backup:*=daily)"));
    let mut both = vec![daily, weekly];
    both.sort();
    assert_eq!(snapshotted(&env), both);
}
