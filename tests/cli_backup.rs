//! `lifeboat backup`, `lifeboat backups` and `lifeboat freeze`: ad hoc
//! backups, the catalog, generations and retention, the freezer.

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::{at, config, Env};

fn ids(snapshots: &[support::Snapshot]) -> BTreeSet<String> {
    snapshots.iter().map(|s| s.id.clone()).collect()
}

fn find<'a>(backups: &'a [Value], id: &str) -> Option<&'a Value> {
    backups.iter().find(|b| b["id"] == id)
}

#[test]
fn backup_needs_the_policy_applied_first() {
    let env = Env::start();
    let id = env.aws.run_instance(1, &[]).id;
    env.config(&config(2, &[&id], false, "yes"));
    let run = env.run(&["--now", &at(10), "backup", "web"]).code(1);
    run.mentions("apply");
    assert_eq!(env.aws.count_snapshots(), 0, "no snapshot taken\n{run}");
}

#[test]
fn backup_snapshots_every_volume_and_tags_it() {
    let env = Env::start();
    let a = env.aws.run_instance(2, &[]);
    let b = env.aws.run_instance(1, &[("team", "web")]);
    env.config(&config(2, &[&a.id], true, "yes"));
    env.apply();

    let id = at(10);
    let run = env.backup("web", &id);
    run.stdout_has(&id);
    run.mentions("success");

    let snaps = env.aws.snapshots_tagged("lifeboat:backup-id", &id);
    assert_eq!(snaps.len(), 3, "one snapshot per volume: {snaps:?}");
    for s in &snaps {
        assert_eq!(
            s.tags.get("lifeboat:policy").map(String::as_str),
            Some("web"),
            "{s:?}"
        );
        let owner = if a.volumes.contains(&s.volume_id) {
            &a.id
        } else {
            &b.id
        };
        assert!(
            a.volumes.contains(&s.volume_id) || b.volumes.contains(&s.volume_id),
            "{s:?}"
        );
        assert_eq!(s.tags.get("lifeboat:target"), Some(owner), "{s:?}");
    }

    let backups = env.backups(&[]);
    assert_eq!(backups.len(), 1, "{backups:?}");
    let entry = &backups[0];
    assert_eq!(entry["id"], id.as_str());
    assert_eq!(entry["policy"], "web");
    assert_eq!(entry["status"], "success");
    assert!(
        entry["started"].is_string() && entry["finished"].is_string(),
        "{entry}"
    );
    assert!(entry["frozen"].is_null(), "{entry}");
    let listed = entry["snapshots"].as_array().expect("snapshots array");
    let listed_ids: BTreeSet<String> = listed
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed_ids, ids(&snaps));
    for s in listed {
        assert_eq!(s["region"], "us-east-1", "{s}");
        let volume = s["volume_id"].as_str().unwrap().to_string();
        let owner = if a.volumes.contains(&volume) {
            &a.id
        } else {
            &b.id
        };
        assert_eq!(s["target"], owner.as_str(), "{s}");
    }

    let table = env.run(&["backups"]).ok();
    table.stdout_has(&id);
    table.stdout_has("web");

    // The catalog and the snapshots are not drift.
    env.assert_converged();
    let state = env.state_list();
    assert!(state.contains(&support::backup(&id)), "{state:?}");
    for s in &snaps {
        assert!(state.contains(&support::snapshot(&s.id)), "{state:?}");
    }
}

#[test]
fn retention_after_a_backup_keeps_the_newest_generations() {
    let env = Env::start();
    let a = env.aws.run_instance(2, &[]);
    env.config(&config(2, &[&a.id], false, "yes"));
    env.apply();
    for hour in [10, 11, 12] {
        env.backup("web", &at(hour));
    }
    assert!(
        env.aws.backup_snapshot_ids(&at(10)).is_empty(),
        "the oldest backup's snapshots are deleted"
    );
    assert_eq!(env.aws.backup_snapshot_ids(&at(11)).len(), 2);
    assert_eq!(env.aws.backup_snapshot_ids(&at(12)).len(), 2);

    let backups = env.backups(&[]);
    let listed: Vec<&str> = backups.iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert!(
        !listed.contains(&at(10).as_str()),
        "the deleted backup left the catalog: {listed:?}"
    );
    assert!(
        listed.contains(&at(11).as_str()) && listed.contains(&at(12).as_str()),
        "{listed:?}"
    );
    env.assert_converged();
}

#[test]
fn frozen_backups_never_count_and_are_never_deleted() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    env.config(&config(1, &[&a.id], false, "yes"));
    env.apply();

    env.backup("web", &at(10));
    env.run(&[
        "--now",
        &at(10),
        "freeze",
        &at(10),
        "--name",
        "before-migration",
    ])
    .ok();
    env.backup("web", &at(11));
    env.backup("web", &at(12));

    assert_eq!(
        env.aws.backup_snapshot_ids(&at(10)).len(),
        1,
        "frozen: kept"
    );
    assert!(
        env.aws.backup_snapshot_ids(&at(11)).is_empty(),
        "beyond 1 generation: deleted"
    );
    assert_eq!(
        env.aws.backup_snapshot_ids(&at(12)).len(),
        1,
        "newest: kept"
    );

    let backups = env.backups(&[]);
    let frozen = find(&backups, &at(10)).expect("the frozen backup is listed");
    assert_eq!(frozen["frozen"]["name"], "before-migration", "{frozen}");
    assert!(frozen["frozen"]["at"].is_string(), "{frozen}");
    assert!(find(&backups, &at(12)).expect("newest listed")["frozen"].is_null());
    env.assert_converged();
}

#[test]
fn backups_filter_by_policy_and_freeze_asks_when_ambiguous() {
    let env = Env::start();
    let web = env.aws.run_instance(1, &[]);
    let db = env.aws.run_instance(1, &[]);
    let mut text = config(2, &[&web.id], false, "yes");
    text.push_str(&format!(
        "\npolicy \"db\" {{\n  account     = account.main\n  generations = 2\n  instance \"{}\" {{ region = \"us-east-1\" }}\n}}\n",
        db.id
    ));
    env.config(&text);
    env.apply();
    env.backup("web", &at(10));
    env.backup("db", &at(10));

    let only_db = env.backups(&["--policy", "db"]);
    assert_eq!(only_db.len(), 1, "{only_db:?}");
    assert_eq!(only_db[0]["policy"], "db");
    assert_eq!(only_db[0]["snapshots"][0]["target"], db.id.as_str());
    assert_eq!(env.backups(&[]).len(), 2);

    // Both policies have a backup with this id.
    let run = env.run(&["freeze", &at(10), "--name", "keep"]).code(1);
    run.mentions("--policy");
    env.run(&["freeze", &at(10), "--name", "keep", "--policy", "db"])
        .ok();
    let all = env.backups(&[]);
    let frozen: Vec<&str> = all
        .iter()
        .filter(|b| !b["frozen"].is_null())
        .map(|b| b["policy"].as_str().unwrap())
        .collect();
    assert_eq!(frozen, vec!["db"]);
}
