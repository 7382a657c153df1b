//! `lifeboat state list [--json]`, `lifeboat state show ADDRESS` and
//! `lifeboat graph`.

mod support;

use support::{at, backup, config, snapshot, target, Env};

#[test]
fn state_list_shows_every_managed_address() {
    let env = Env::start();
    let a = env.aws.run_instance(2, &[]);
    env.config(&config(2, &[&a.id], false, "yes"));
    assert!(env.state_list().is_empty(), "no state yet");
    env.apply();
    assert_eq!(
        env.state_list(),
        vec![
            "account.main".to_string(),
            "policy.web".to_string(),
            target(&a.id)
        ]
    );

    env.backup("web", &at(10));
    let state = env.state_list();
    let mut expected = vec![
        "account.main".to_string(),
        "policy.web".to_string(),
        target(&a.id),
        backup(&at(10)),
    ];
    expected.extend(
        env.aws
            .backup_snapshot_ids(&at(10))
            .iter()
            .map(|id| snapshot(id)),
    );
    let mut sorted_state = state.clone();
    sorted_state.sort();
    expected.sort();
    assert_eq!(sorted_state, expected);
    for line in &state {
        assert_eq!(line.trim(), line, "one bare address per line: {line:?}");
    }

    // The same addresses as data.
    let listed = env.run(&["state", "list", "--json"]).ok().json();
    let mut from_json: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["address"].as_str().unwrap().to_string())
        .collect();
    from_json.sort();
    assert_eq!(from_json, expected);

    // One address at a time: an object, a backup, an artifact.
    let policy = env.run(&["state", "show", "policy.web"]).ok().json();
    assert_eq!(policy["generations"], 2, "{policy}");
    let rec = env.run(&["state", "show", &backup(&at(10))]).ok().json();
    assert_eq!(rec["id"], at(10));
    assert_eq!(rec["status"], "success");
    let id = &env.aws.backup_snapshot_ids(&at(10))[0];
    let snap = env.run(&["state", "show", &snapshot(id)]).ok().json();
    assert_eq!(snap["id"], id.as_str());
    assert_eq!(snap["backup"], backup(&at(10)));
    env.run(&["state", "show", "policy.nope"])
        .code(1)
        .stderr_has("the state has nothing at policy.nope");
    env.run(&["state", "show", "policy web"])
        .code(1)
        .stderr_has("is not an address");
}

#[test]
fn graph_prints_the_plan_as_dot() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    env.config(&config(2, &[&a.id], false, "yes"));
    let run = env.run(&["graph"]).ok();
    let dot = run.stdout.trim_start();
    assert!(dot.starts_with("digraph"), "DOT output\n{run}");
    assert!(dot.trim_end().ends_with('}'), "a complete graph\n{run}");
    assert!(dot.contains("policy.web"), "{run}");
    assert!(dot.contains(&a.id), "{run}");
    assert!(dot.contains("->"), "edges between dependent changes\n{run}");
}

#[test]
fn state_is_kept_beside_the_configuration() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    env.config(&config(2, &[&a.id], false, "yes"));
    env.apply();
    assert!(env.ws.path().join(".lifeboat/state.db").is_file());
}

#[test]
fn state_rm_forgets_records_and_leaves_aws_as_it_is() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    env.config(&config(2, &[&a.id], false, "yes"));
    env.apply();
    env.backup("web", &at(10));
    let snaps = env.aws.count_snapshots();
    let before = env.ws.state_bytes();

    // Checked before anything is asked or done: an unknown address, an
    // artifact alone, and no confirmation without a terminal.
    env.run(&["state", "rm", "policy.nope", "--auto-approve"])
        .code(1)
        .stderr_has("the state has nothing at policy.nope");
    let id = &env.aws.backup_snapshot_ids(&at(10))[0];
    env.run(&["state", "rm", &snapshot(id), "--auto-approve"])
        .code(1)
        .stderr_has("forget the whole backup");
    env.run(&["state", "rm", &backup(&at(10))])
        .code(1)
        .stderr_has("pass --auto-approve");
    // A configured target would not come back by itself: refused.
    env.run(&["state", "rm", &target(&a.id), "--auto-approve"])
        .code(1)
        .stderr_has("still in the configuration");
    assert_eq!(env.ws.state_bytes(), before, "nothing written");

    let bk = backup(&at(10));
    env.run(&["state", "rm", &bk, &bk, "--auto-approve"])
        .ok()
        .stdout_has("Forgot 1 address(es); nothing was deleted in AWS");
    assert_eq!(
        env.state_list(),
        vec![
            "account.main".to_string(),
            "policy.web".into(),
            target(&a.id)
        ]
    );
    assert_eq!(env.aws.count_snapshots(), snaps, "AWS keeps every snapshot");

    // Once the configuration no longer has its policy, it can be forgotten.
    env.config("account \"main\" {\n  regions = [\"us-east-1\"]\n}\n");
    env.run(&["state", "rm", &target(&a.id), "--auto-approve"])
        .ok();
    assert_eq!(env.state_list(), vec!["account.main", "policy.web"]);
}
