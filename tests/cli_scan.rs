//! Tag scans: `lifeboat scan` previews what the tags on resources ask and
//! what each policy's next backup would change, writing nothing; run mode
//! records the same on the account's `tag_scan { every }`, between
//! backups. The real binary against the emulator.

mod support;

use support::{config, target, Env};

/// The support configuration with a tag scan every hour in the account.
fn scanned() -> String {
    config(2, &[], true, "yes").replace(
        "  regions = [\"us-east-1\"]\n",
        "  regions = [\"us-east-1\"]\n  tag_scan {\n    every = \"1h\"\n  }\n",
    )
}

#[test]
fn scan_previews_joins_and_unknown_policies_and_writes_nothing() {
    let env = Env::start();
    let first = env.aws.run_instance(1, &[("team", "web")]).id;
    env.config(&scanned());
    env.apply();
    let late = env.aws.run_instance(1, &[("team", "web")]).id;
    let stray = env
        .aws
        .run_instance(1, &[("lifeboat:backup", "nosuch bad!")])
        .id;
    let before = env.ws.state_bytes();

    let run = env.run(&["scan"]).ok();
    run.stdout_has(&format!(
        "+ policy.web: joined: instance {late} (tag team=web)"
    ))
    .stdout_has(&format!(
        "instance {stray} (us-east-1) lifeboat:backup=\"nosuch bad!\""
    ))
    .stdout_has("no policy nosuch is configured")
    .stdout_has("item \"bad!\" is not used");
    assert_eq!(env.ws.state_bytes(), before, "a scan writes nothing");

    let json = env.run(&["scan", "--json"]).ok().json();
    let account = &json[0];
    assert_eq!(account["account"], "main");
    assert_eq!(account["found"][0]["id"], stray.as_str());
    assert_eq!(
        account["policies"][0]["changes"][0]["target"],
        late.as_str()
    );
    assert!(!env.state_list().contains(&target(&late)));
    assert!(env.state_list().contains(&target(&first)));

    env.run(&["scan", "--account", "nope"])
        .code(1)
        .stderr_has("no account \"nope\"");
}

#[test]
fn run_mode_records_a_scan_on_its_interval_between_backups() {
    let env = Env::start();
    env.aws.run_instance(1, &[("team", "web")]);
    env.config(&scanned());
    env.apply();
    let late = env.aws.run_instance(1, &[("team", "web")]).id;
    env.aws.run_instance(1, &[("cpm_backup", "nosuch")]);

    // The policy has no schedule: only the scan is due.
    let run = env
        .run(&[
            "--now",
            "2026-11-22T01:00:00Z",
            "run",
            "--once",
            "--log-format",
            "json",
        ])
        .ok();
    let events: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let of = |name: &str| -> Vec<&serde_json::Value> {
        events.iter().filter(|e| e["event"] == name).collect()
    };
    assert_eq!(of("member_joined").len(), 1, "{events:?}");
    assert_eq!(of("member_joined")[0]["target"], late.as_str());
    assert!(of("member_joined")[0]["backup"]
        .as_str()
        .unwrap()
        .starts_with("scan-"));
    assert_eq!(of("tag_scan")[0]["changes"], 1, "{events:?}");
    assert!(of("tag_problem")[0]["problem"]
        .as_str()
        .unwrap()
        .contains("no policy nosuch is configured"));
    assert!(env.backups(&[]).is_empty(), "a scan takes no backup");
    assert!(env.state_list().contains(&target(&late)));
    env.assert_converged();

    // Within the interval the runner does not scan again.
    let run = env
        .run(&[
            "--now",
            "2026-11-22T01:30:00Z",
            "run",
            "--once",
            "--log-format",
            "json",
        ])
        .ok();
    assert!(!run.stdout.contains("\"tag_scan\""), "{}", run.stdout);
}

/// `tag_scan { kinds }` says where the backup tag is read: with RDS only,
/// a tagged database joins its policy at the next backup (databases are
/// listed whole, since RDS cannot filter on tags) and a tagged instance is
/// not looked for.
#[test]
fn tag_scan_kinds_limit_where_the_backup_tag_is_read_and_databases_join_by_it() {
    let env = Env::start();
    let rds = support::targets::Rds::new(&env.emulator);
    rds.create_tagged_instance("orders-db", &[("lifeboat:backup", "web")]);
    let host = env.aws.run_instance(1, &[("lifeboat:backup", "web")]).id;
    env.config(&config(2, &[], false, "yes").replace(
        "  regions = [\"us-east-1\"]\n",
        "  regions = [\"us-east-1\"]\n  tag_scan {\n    kinds = [\"rds\"]\n  }\n",
    ));
    let plan = env.run(&["plan"]).ok();
    plan.plan_line("+", &target("orders-db"));
    assert!(!plan.stdout.contains(&host), "{plan}");
    let found = env.run(&["scan", "--json"]).ok().json();
    assert_eq!(found[0]["found"][0]["id"], "orders-db", "{found}");
    assert_eq!(found[0]["found"].as_array().unwrap().len(), 1, "{found}");
    env.apply();
    env.assert_converged();

    let run = env.backup("web", &support::at(10));
    assert_eq!(env.backups(&[])[0]["status"], "success", "{run}");
    let dbs = rds.db_snapshots();
    assert_eq!(dbs.len(), 1, "{dbs:?}");
    assert_eq!(dbs[0].source, "orders-db");

    // Untagged, it leaves at the next backup, with why (and the policy,
    // empty now, fails and alerts: nobody is protected by it any more).
    rds.untag_instance("orders-db", "lifeboat:backup");
    let run = env
        .run(&["--now", &support::at(11), "backup", "web"])
        .code(1);
    run.stdout_has("left: rds orders-db (no longer tagged lifeboat:backup for web)");
}

/// A departure a run-mode scan finds under `auto_remove_targets = "alert"`
/// is published to SNS as a backup's would be: scans often see it first.
#[test]
fn a_departure_found_by_a_scan_publishes_its_alert() {
    let env = Env::start();
    let topic = support::topic::Topic::create(&env.emulator.endpoint());
    let a = env.aws.run_instance(1, &[("team", "web")]).id;
    let b = env.aws.run_instance(1, &[("team", "web")]).id;
    let text = config(2, &[], true, "alert").replace(
        "  regions = [\"us-east-1\"]\n",
        "  regions = [\"us-east-1\"]\n  tag_scan {\n    every = \"1h\"\n  }\n",
    ) + &format!(
        "\nnotifications {{\n  sns_topic = \"{}\"\n  account   = account.main\n  region    = \"us-east-1\"\n}}\n",
        topic.arn
    );
    env.config(&text);
    env.apply();
    env.aws.terminate(&a);

    env.run(&["--now", "2026-11-22T01:00:00Z", "run", "--once"])
        .ok();
    let sent = topic.drain();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, "Lifeboat alert opened: policy.web");
    assert!(
        sent[0].1.contains(&format!("instance {a} left the policy")),
        "{}",
        sent[0].1
    );
    assert!(env.state_list().contains(&target(&b)));
    assert!(!env.state_list().contains(&target(&a)));
}
