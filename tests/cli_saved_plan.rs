//! A saved plan is checked, not trusted: `apply FILE` plans again and
//! performs only what that fresh plan also does. A plan file edited between
//! `plan --out` and `apply` (lineage and serial left intact) is refused,
//! naming the change, and neither AWS nor the state moves.

mod support;

use serde_json::{json, Value};
use support::{at, backup, config, snapshot, Env, EXTERNAL_ID, REGION};

/// The current state's objects, as `sqlite` holds them: what a refused apply
/// must leave alone.
fn objects(env: &Env) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(env.ws.path().join(".lifeboat/state.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT address, value FROM objects ORDER BY address")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn object(env: &Env, address: &str) -> Value {
    let (_, v) = objects(env)
        .into_iter()
        .find(|(a, _)| a == address)
        .unwrap_or_else(|| panic!("{address} is in state"));
    serde_json::from_str(&v).unwrap()
}

/// Writes `name`: the saved (empty) plan with `changes` added.
fn forge(env: &Env, saved: &Value, name: &str, changes: Vec<Value>) {
    let mut plan = saved.clone();
    plan["changes"] = Value::Array(changes);
    env.ws
        .write(name, &serde_json::to_string_pretty(&plan).unwrap());
}

/// The test's own CloudFormation client in the emulator, blocking on a
/// private runtime.
fn cfn(env: &Env) -> (tokio::runtime::Runtime, aws_sdk_cloudformation::Client) {
    use aws_sdk_cloudformation::config::{BehaviorVersion, Credentials, Region};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = aws_sdk_cloudformation::Client::from_conf(
        aws_sdk_cloudformation::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(env.emulator.endpoint())
            .credentials_provider(Credentials::new(
                support::ACCESS_KEY_ID,
                support::SECRET_ACCESS_KEY,
                None,
                None,
                "lifeboat-tests",
            ))
            .build(),
    );
    (rt, client)
}

/// A stack made outside Lifeboat.
fn create_foreign_stack(env: &Env, name: &str) {
    let (rt, cfn) = cfn(env);
    let template = r#"{"Resources": {"Net": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.9.0.0/16"}}}}"#;
    rt.block_on(
        cfn.create_stack()
            .stack_name(name)
            .template_body(template)
            .send(),
    )
    .expect("create stack");
    assert!(stack_exists(env, name));
}

fn stack_exists(env: &Env, name: &str) -> bool {
    let (rt, cfn) = cfn(env);
    match rt.block_on(cfn.describe_stacks().stack_name(name).send()) {
        Ok(out) => out
            .stacks()
            .iter()
            .any(|s| s.stack_status().map(|x| x.as_str()) != Some("DELETE_COMPLETE")),
        Err(_) => false,
    }
}

#[test]
fn forged_changes_in_a_saved_plan_are_refused_and_change_nothing() {
    let env = Env::start();
    let id = env.aws.run_instance(1, &[]).id;
    // `main` allows deletes, so only the saved-plan check can stop (a);
    // `vault` forbids them, so (b) would widen what Lifeboat may delete.
    env.config(
        &(config(2, &[&id], false, "yes")
            + "\naccount \"vault\" {\n  regions      = [\"us-east-1\"]\n  allow_delete = false\n}\n"),
    );
    env.apply();
    env.backup("web", &at(1));
    env.backup("web", &at(2));
    env.assert_converged();
    env.run(&["plan", "--out", "saved.plan"]).ok();
    let saved: Value = serde_json::from_str(&env.ws.read("saved.plan")).unwrap();
    assert!(saved["changes"].as_array().unwrap().is_empty());
    create_foreign_stack(&env, "payments-network");

    let newest = env.aws.backup_snapshot_ids(&at(2));
    assert_eq!(newest.len(), 1, "{newest:?}");
    let snapshots_before = env.aws.count_snapshots();
    let backups_before = env.backups(&[]);
    let objects_before = objects(&env);

    // (a) The newest backup's snapshot and record, deleted.
    let before_snap = json!({"policy": "web", "backup": at(2), "account": "main",
        "region": REGION, "volume_id": "vol-x", "target": id});
    forge(
        &env,
        &saved,
        "a.plan",
        vec![
            json!({"address": snapshot(&newest[0]), "action": "delete", "effect": "deletes_backups",
                   "reason": "retention: generation 3 of 2", "before": before_snap, "after": null}),
            json!({"address": backup(&at(2)), "action": "delete", "effect": "deletes_backups",
                   "reason": "retention: generation 3 of 2",
                   "before": {"policy": "web", "id": at(2)}, "after": null}),
        ],
    );
    // (b) The account's allow_delete turned on.
    let account = object(&env, "account.vault");
    assert_eq!(account["allow_delete"], json!(false));
    let mut flipped = account.clone();
    flipped["allow_delete"] = json!(true);
    forge(
        &env,
        &saved,
        "b.plan",
        vec![
            json!({"address": "account.vault", "action": "update", "effect": "control",
                    "reason": "allow_delete false -> true", "before": account, "after": flipped}),
        ],
    );
    // (c) A stack Lifeboat never created, deleted as if it were a clone's.
    forge(
        &env,
        &saved,
        "c.plan",
        vec![
            json!({"address": "vpc_clone.payments", "action": "delete", "effect": "control",
                    "reason": "removed from configuration",
                    "before": {"stack_name": "payments-network", "account": "main", "region": REGION},
                    "after": null}),
        ],
    );
    // (d) A script the runner would execute, set on the policy.
    let policy = object(&env, "policy.web");
    let mut scripted = policy.clone();
    scripted["options"]["scripts"] = json!({"before": "/tmp/payload.sh", "timeout_secs": 60});
    forge(
        &env,
        &saved,
        "d.plan",
        vec![
            json!({"address": "policy.web", "action": "update", "effect": "control",
                    "reason": "options changed", "before": policy, "after": scripted}),
        ],
    );

    for (file, address) in [
        ("a.plan", snapshot(&newest[0])),
        ("b.plan", "account.vault".to_string()),
        ("c.plan", "vpc_clone.payments".to_string()),
        ("d.plan", "policy.web".to_string()),
    ] {
        let run = env.run(&["apply", file, "--auto-approve"]).code(1);
        run.stderr_has(&address);
        run.stderr_has("nothing was applied");
        assert_eq!(
            objects(&env),
            objects_before,
            "{file} changed the state\n{run}"
        );
        assert_eq!(
            env.backups(&[]),
            backups_before,
            "{file} changed the catalog"
        );
        assert_eq!(
            env.aws.count_snapshots(),
            snapshots_before,
            "{file} deleted snapshots"
        );
        assert!(
            stack_exists(&env, "payments-network"),
            "{file} deleted the stack"
        );
    }
    env.assert_converged();
}

#[test]
fn a_saved_plan_with_a_move_cut_out_is_refused() {
    let env = Env::start();
    let id = env.aws.run_instance(1, &[]).id;
    env.config(&config(2, &[&id], false, "yes"));
    env.apply();
    env.backup("web", &at(1));
    // Renamed, with a setting changed at the same time.
    env.config(
        &(config(3, &[&id], false, "yes").replace("policy \"web\"", "policy \"site\"")
            + "\nmoved {\n  from = policy.web\n  to   = policy.site\n}\n"),
    );
    env.run(&["plan", "--out", "saved.plan"]).ok();
    let mut plan: Value = serde_json::from_str(&env.ws.read("saved.plan")).unwrap();
    let changes = plan["changes"].as_array_mut().unwrap();
    let before = changes.len();
    changes.retain(|c| c["action"] != "move");
    assert_eq!(changes.len(), before - 1);
    env.ws
        .write("cut.plan", &serde_json::to_string_pretty(&plan).unwrap());
    let objects_before = objects(&env);
    let run = env.run(&["apply", "cut.plan", "--auto-approve"]).code(1);
    run.stderr_has("it needs policy.web first, which the saved plan leaves out");
    assert_eq!(objects(&env), objects_before);
    env.run(&["apply", "saved.plan", "--auto-approve"]).ok();
    env.assert_converged();
}

#[test]
fn a_saved_plan_made_for_another_configuration_is_refused() {
    let env = Env::start();
    let id = env.aws.run_instance(1, &[]).id;
    env.config(&config(2, &[&id], false, "yes"));
    env.run(&["plan", "--out", "saved.plan"]).ok();
    env.ws
        .edit("main.lb.hcl", "generations = 2", "generations = 4");
    let run = env.run(&["apply", "saved.plan", "--auto-approve"]).code(1);
    run.stderr_has("the configuration changed since the plan was made");
    assert!(objects(&env).is_empty(), "nothing applied");
}

#[test]
fn a_saved_plan_applies_only_its_own_changes_of_a_fresh_plan() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[("team", "web")]).id;
    env.config(&config(2, &[], true, "yes"));
    env.run(&["plan", "--out", "saved.plan"]).ok();
    // An instance tagged after the plan was saved: the fresh plan would add
    // it, the saved one did not ask for it, so it is left for the next plan.
    let b = env.aws.run_instance(1, &[("team", "web")]).id;
    let run = env.run(&["apply", "saved.plan", "--auto-approve"]).ok();
    run.stdout_has("not in the saved plan");
    let state: Vec<String> = objects(&env).into_iter().map(|(a, _)| a).collect();
    assert!(state.contains(&support::target(&a)), "{state:?}");
    assert!(!state.contains(&support::target(&b)), "{state:?}");
    let next = env.run(&["plan", "--detailed-exitcode"]).code(2);
    next.plan_line("+", &support::target(&b));
}

#[test]
fn removing_a_policy_with_backups_needs_allow_destroy_backups() {
    let env = Env::start();
    let id = env.aws.run_instance(1, &[]).id;
    env.config(&config(2, &[&id], false, "yes"));
    env.apply();
    env.backup("web", &at(1));
    env.config("account \"main\" {\n  regions = [\"us-east-1\"]\n}\n");
    let plan = env.run(&["plan"]).ok();
    plan.stdout_has("THIS PLAN DELETES EVERY BACKUP OF policy.web");
    let md = env.run(&["plan", "--markdown"]).ok();
    md.stdout_has("[!CAUTION]");
    env.run(&["plan", "--out", "saved.plan"]).ok();
    let snapshots = env.aws.count_snapshots();
    for args in [
        vec!["apply", "--auto-approve"],
        vec!["apply", "saved.plan", "--auto-approve"],
    ] {
        let run = env.run(&args).code(1);
        run.stderr_has("--allow-destroy-backups");
        assert_eq!(env.aws.count_snapshots(), snapshots, "{run}");
        assert_eq!(env.backups(&[]).len(), 1);
    }
    let run = env
        .run(&[
            "apply",
            "--auto-approve",
            "--deny-destroy",
            "--allow-destroy-backups",
        ])
        .code(1);
    run.stderr_has("--deny-destroy");
    assert_eq!(env.aws.count_snapshots(), snapshots);
    env.run(&[
        "apply",
        "saved.plan",
        "--auto-approve",
        "--allow-destroy-backups",
    ])
    .ok();
    assert_eq!(env.aws.count_snapshots(), 0);
    assert!(env.backups(&[]).is_empty());
}

#[test]
fn a_moved_block_renames_a_policy_with_its_whole_catalog() {
    let env = Env::start();
    let id = env.aws.run_instance(1, &[]).id;
    env.config(&config(2, &[&id], false, "yes"));
    env.apply();
    env.backup("web", &at(1));
    env.backup("web", &at(2));
    let snapshots = env.aws.count_snapshots();
    env.config(
        &(config(2, &[&id], false, "yes").replace("policy \"web\"", "policy \"site\"")
            + "\nmoved {\n  from = policy.web\n  to   = policy.site\n}\n"),
    );
    let plan = env.run(&["plan", "--detailed-exitcode"]).code(2);
    plan.stdout_has("> policy.web -> policy.site");
    plan.stdout_lacks("DELETED");
    plan.stdout_lacks("THIS PLAN DELETES");
    assert_eq!(plan.plan_summary(), (0, 1, 0), "{plan}");
    env.apply();
    let backups = env.backups(&[]);
    assert_eq!(backups.len(), 2);
    for b in &backups {
        assert_eq!(b["policy"], "site", "{b}");
    }
    assert_eq!(env.aws.count_snapshots(), snapshots);
    let state: Vec<String> = objects(&env).into_iter().map(|(a, _)| a).collect();
    assert!(
        state.contains(&format!("policy.site.target[\"{id}\"]")),
        "{state:?}"
    );
    assert!(
        !state.iter().any(|a| a.starts_with("policy.web")),
        "{state:?}"
    );
    env.assert_converged();
    // The moved history counts as the policy's generations.
    env.backup("site", &at(3));
    let ids: Vec<String> = env
        .backups(&[])
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec![at(2), at(3)]);
}

#[test]
fn a_move_that_cannot_run_keeps_the_old_policy_as_it_is() {
    let env = Env::start();
    let id = env.aws.run_instance(1, &[]).id;
    let both = config(2, &[&id], false, "yes")
        + &config(2, &[&id], false, "yes")
            .split_once("policy \"web\"")
            .map(|(_, p)| format!("policy \"site\"{p}"))
            .unwrap();
    env.config(&both);
    env.apply();
    env.backup("web", &at(1));
    // `site` is already in state: moving `web` onto it would merge two
    // histories, so the move waits, and `web` must not be deleted meanwhile.
    env.config(
        &(config(2, &[&id], false, "yes").replace("policy \"web\"", "policy \"site\"")
            + "\nmoved {\n  from = policy.web\n  to   = policy.site\n}\n"),
    );
    let plan = env.run(&["plan"]).ok();
    plan.stdout_has("policy.web cannot move to policy.site");
    plan.stdout_lacks("THIS PLAN DELETES");
    plan.stdout_lacks("- policy.web");
    plan.stdout_lacks(&backup(&at(1)));
    env.apply();
    assert_eq!(env.backups(&[]).len(), 1);
}

#[test]
fn an_external_id_is_written_only_as_a_digest_and_taken_from_the_files_to_act() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    // The emulator's own account, reached through a role: its STS takes
    // any role and any external id, so what this shows is that the id is
    // written nowhere and that a run takes it from the files, not that AWS
    // checked it.
    let role = format!(
        "account \"main\" {{\n  regions = [\"us-east-1\"]\n  assume_role {{\n    role_arn    = \"arn:aws:iam::123456789012:role/lifeboat\"\n    external_id = \"{EXTERNAL_ID}\"\n  }}\n}}\n"
    );
    let text = config(2, &[&a.id], false, "yes").replace(
        "account \"main\" {\n  regions = [\"us-east-1\"]\n}\n",
        &role,
    );
    env.config(&text);
    env.run(&["plan", "--out", "saved.plan"]).ok();
    let saved = env.ws.read("saved.plan");
    assert!(
        !saved.contains(EXTERNAL_ID),
        "the external id is in the saved plan"
    );
    assert!(saved.contains("\"external_id\": \"hmac-sha256:"), "{saved}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.ws.path().join("saved.plan"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "a saved plan is for its owner only");
    }
    env.run(&["apply", "saved.plan", "--auto-approve"]).ok();
    let recorded = object(&env, "account.main")["assume_role"]["external_id"].clone();
    assert!(
        recorded.as_str().unwrap().starts_with("hmac-sha256:"),
        "{recorded}"
    );
    let state = env.ws.state_bytes();
    assert!(
        !state
            .windows(EXTERNAL_ID.len())
            .any(|w| w == EXTERNAL_ID.as_bytes()),
        "the external id is in the state files"
    );
    env.run(&["state", "show", "account.main"])
        .ok()
        .stdout_lacks(EXTERNAL_ID);
    // A backup acts through the account the state recorded, sealed: the
    // id comes back from the files.
    env.backup("web", &at(1));

    // Another id in the files: the plan shows the change without either id;
    // until it is applied, a run cannot take the id the state recorded
    // from these files, and says so rather than send a digest to STS.
    env.ws.edit("main.lb.hcl", EXTERNAL_ID, "another-id-2b7e");
    let plan = env.run(&["plan"]).ok();
    plan.stdout_has("(set, changed)")
        .stdout_lacks("another-id-2b7e")
        .stdout_lacks("hmac-sha256:");
    let refused = env.run(&["--now", &at(2), "backup", "web"]);
    assert!(
        refused.code != 0 && refused.all().contains("only as a digest"),
        "{refused}"
    );
    // Given by the environment (an account the files no longer declare,
    // a host without the files' id), the id is matched to the digest.
    env.ws
        .run_env(
            &[("LIFEBOAT_EXTERNAL_ID_MAIN", EXTERNAL_ID)],
            &["--now", &at(3), "backup", "web"],
        )
        .ok();
    env.apply();
    env.backup("web", &at(4));
}
