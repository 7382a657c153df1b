//! `lifeboat import` against the emulator: a lost state file is rebuilt
//! from the tags of what Lifeboat made, `plan` points to it, a second
//! import records nothing, and nothing is imported without confirmation.

mod support;

use std::collections::BTreeMap;

use support::{at, Env};

fn config(snapshots: &str, ami: &str) -> String {
    format!(
        r#"account "main" {{
  regions = ["us-east-1"]
}}

policy "web" {{
  account     = account.main
  generations = 3

  instance "{snapshots}" {{
    region = "us-east-1"
  }}
  instance "{ami}" {{
    region = "us-east-1"
    mode   = "ami"
  }}
}}
"#
    )
}

/// Each backup's id, status and sorted artifact ids.
fn catalog(env: &Env) -> BTreeMap<String, (String, Vec<String>)> {
    env.backups(&[])
        .iter()
        .map(|b| {
            let mut ids: Vec<String> = b["snapshots"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_string())
                .collect();
            ids.sort();
            (
                b["id"].as_str().unwrap().to_string(),
                (b["status"].as_str().unwrap().to_string(), ids),
            )
        })
        .collect()
}

fn lose_the_state(env: &Env) {
    for name in ["state.db", "state.db-wal", "state.db-shm"] {
        let _ = std::fs::remove_file(env.ws.path().join(".lifeboat").join(name));
    }
}

#[test]
fn a_lost_catalog_is_rebuilt_from_aws_tags_once() {
    let env = Env::start();
    let a = env.aws.run_instance(2, &[]);
    let b = env.aws.run_instance(1, &[]);
    env.config(&config(&a.id, &b.id));
    env.apply();
    env.backup("web", &at(10));
    env.backup("web", &at(11));
    let before = catalog(&env);
    assert_eq!(before.len(), 2);
    // Two snapshots, an AMI and its snapshot in each.
    assert!(before.values().all(|(_, ids)| ids.len() == 4), "{before:?}");

    lose_the_state(&env);
    env.run(&["plan"]).ok().mentions("lifeboat import");

    let imported = env.run(&["import", "--auto-approve"]).ok();
    imported.stdout_has(&at(10)).stdout_has(&at(11));
    assert_eq!(
        catalog(&env),
        before,
        "the same backups, artifacts and status"
    );

    env.run(&["import", "--auto-approve"])
        .ok()
        .stdout_has("Nothing to import");
    assert_eq!(catalog(&env), before);

    // The policy is applied again; the imported backups are neither
    // deleted nor re-imported, and the plan then has nothing to do.
    let plan = env.run(&["plan"]).ok();
    plan.stdout_lacks("lifeboat import");
    assert_eq!(plan.changes("-"), Vec::<String>::new(), "{plan}");
    env.apply();
    env.assert_converged();
    assert_eq!(catalog(&env), before);
}

#[test]
fn import_without_a_terminal_needs_auto_approve_and_records_nothing() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    let b = env.aws.run_instance(1, &[]);
    env.config(&config(&a.id, &b.id));
    env.apply();
    env.backup("web", &at(10));
    lose_the_state(&env);

    let refused = env.run(&["import"]);
    assert_eq!(refused.code, 1, "{refused}");
    refused.mentions("--auto-approve");
    let listed = env.run(&["backups", "--json"]).ok();
    assert_eq!(listed.json(), serde_json::json!([]), "{listed}");
}

#[test]
fn a_frozen_backup_stays_frozen_through_a_lost_state_and_an_import() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]).id;
    let b = env.aws.run_instance(1, &[]).id;
    env.config(&config(&a, &b).replace("generations = 3", "generations = 1"));
    env.apply();
    env.backup("web", &at(10));
    env.run(&["freeze", &at(10), "--name", "audit"])
        .ok()
        .stdout_has("lifeboat:frozen");
    env.backup("web", &at(11));
    lose_the_state(&env);
    env.apply();
    env.run(&["import", "--auto-approve"]).ok();
    let backups = env.backups(&[]);
    let frozen = backups
        .iter()
        .find(|x| x["id"] == at(10))
        .expect("the frozen backup is imported");
    assert_eq!(frozen["frozen"]["name"], "audit", "{frozen}");
    // One generation: a new backup would expire at(11), never the frozen one.
    env.backup("web", &at(12));
    let ids: Vec<&str> = env
        .backups(&[])
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .map(|s| if s == at(10) { "frozen" } else { "other" })
        .collect();
    assert!(ids.contains(&"frozen"), "{ids:?}");
}
