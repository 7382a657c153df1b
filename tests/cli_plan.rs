//! `lifeboat plan`: what it shows before anything happens, in its three
//! renderings (human, JSON, Markdown), and its exit codes.

mod support;

use support::{at, backup, config, target, Env};

/// An explicit instance, two tagged team=web, one tagged team=db.
struct Fleet {
    explicit: String,
    web: Vec<String>,
    db: String,
}

fn fleet(env: &Env) -> Fleet {
    let explicit = env.aws.run_instance(1, &[]).id;
    let web = vec![
        env.aws.run_instance(2, &[("team", "web")]).id,
        env.aws
            .run_instance(1, &[("team", "web"), ("env", "prod")])
            .id,
    ];
    let db = env.aws.run_instance(1, &[("team", "db")]).id;
    env.config(&config(2, &[&explicit], true, "yes"));
    Fleet { explicit, web, db }
}

#[test]
fn first_plan_shows_every_object_to_create_with_reasons() {
    let env = Env::start();
    let f = fleet(&env);
    let run = env.run(&["plan"]).ok();

    run.plan_line("+", "account.main");
    run.plan_line("+", "policy.web");
    let line = run.plan_line("+", &target(&f.explicit));
    assert!(
        line.ends_with("(listed in configuration)"),
        "reason for an explicit target: {line:?}\n{run}"
    );
    for id in &f.web {
        let line = run.plan_line("+", &target(id));
        assert!(
            line.ends_with("(tag team=web)"),
            "reason for a tagged target: {line:?}\n{run}"
        );
    }
    run.stdout_lacks(&f.db);
    assert_eq!(run.plan_summary(), (5, 0, 0));

    // A plan changes nothing: planning again shows the same.
    let again = env.run(&["plan"]).ok();
    assert_eq!(again.stdout, run.stdout, "plans are deterministic");
    assert!(env.state_list().is_empty(), "plan must not write state");
}

#[test]
fn detailed_exitcode_is_two_with_changes_zero_without_one_on_error() {
    let env = Env::start();
    fleet(&env);
    env.run(&["plan", "--detailed-exitcode"]).code(2);
    env.apply();
    env.run(&["plan", "--detailed-exitcode"])
        .code(0)
        .no_changes();
    let plain = env.run(&["plan"]).ok();
    plain.no_changes();

    env.ws.write("broken.lb.hcl", "policy \"web\" {}\n");
    env.run(&["plan", "--detailed-exitcode"]).code(1);
}

#[test]
fn changing_an_attribute_is_an_update() {
    let env = Env::start();
    fleet(&env);
    env.apply();
    env.ws
        .edit("main.lb.hcl", "generations = 2", "generations = 5");
    let run = env.run(&["plan", "--detailed-exitcode"]).code(2);
    run.plan_line("~", "policy.web");
    assert_eq!(run.plan_summary(), (0, 1, 0));
    env.apply();
    env.assert_converged();
}

#[test]
fn json_plan_is_documented_and_consistent() {
    let env = Env::start();
    let f = fleet(&env);
    let run = env.run(&["plan", "--json"]).ok();
    let plan = run.json();

    for key in [
        "format_version",
        "lineage",
        "serial",
        "config_digest",
        "changes",
        "summary",
    ] {
        assert!(plan.get(key).is_some(), "plan JSON has `{key}`\n{run}");
    }
    let changes = plan["changes"].as_array().expect("changes is an array");
    let (mut add, mut change, mut destroy) = (0, 0, 0);
    for c in changes {
        for key in ["address", "action", "reason", "before", "after"] {
            assert!(c.get(key).is_some(), "change has `{key}`: {c}");
        }
        match c["action"].as_str().unwrap_or_default() {
            "create" => add += 1,
            "update" => change += 1,
            "delete" => destroy += 1,
            "replace" => {
                add += 1;
                destroy += 1;
            }
            "read" => {}
            other => panic!("unknown action {other:?} in {c}"),
        }
    }
    let addresses: Vec<&str> = changes
        .iter()
        .filter_map(|c| c["address"].as_str())
        .collect();
    let expected = [
        "account.main".to_string(),
        "policy.web".to_string(),
        target(&f.explicit),
        target(&f.web[0]),
        target(&f.web[1]),
    ];
    for address in &expected {
        assert!(
            addresses.contains(&address.as_str()),
            "{address} in {addresses:?}"
        );
    }
    assert_eq!(plan["summary"]["add"], add, "summary.add\n{run}");
    assert_eq!(plan["summary"]["change"], change, "summary.change\n{run}");
    assert_eq!(
        plan["summary"]["destroy"], destroy,
        "summary.destroy\n{run}"
    );
    assert_eq!(add, 5);

    // The digest follows the configuration.
    env.ws
        .edit("main.lb.hcl", "generations = 2", "generations = 3");
    let other = env.run(&["plan", "--json"]).ok().json();
    assert_ne!(other["config_digest"], plan["config_digest"]);
}

#[test]
fn markdown_plan_is_ready_for_a_pull_request_comment() {
    let env = Env::start();
    let f = fleet(&env);
    let run = env.run(&["plan", "--markdown"]).ok();
    assert!(run.stdout.contains("policy.web"), "{run}");
    assert!(run.stdout.contains(&f.explicit), "{run}");
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with('#') || l.starts_with("```") || l.starts_with('|')),
        "Markdown structure (heading, fence or table)\n{run}"
    );
}

#[test]
fn out_saves_the_plan_to_a_file() {
    let env = Env::start();
    fleet(&env);
    let run = env.run(&["plan", "--out", "saved.plan"]).ok();
    assert_eq!(run.plan_summary(), (5, 0, 0));
    let saved = std::fs::metadata(env.ws.path().join("saved.plan")).expect("the plan file exists");
    assert!(saved.len() > 0, "the plan file is not empty");
}

#[test]
fn dir_selects_the_configuration_and_its_state() {
    let env = Env::start();
    let id = env.aws.run_instance(1, &[]).id;
    env.ws
        .write("conf/main.lb.hcl", &config(2, &[&id], false, "no"));
    let elsewhere = env.ws.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let conf = env.ws.path().join("conf");
    let conf = conf.to_str().unwrap();

    let run = env.ws.run_in(&elsewhere, &["--dir", conf, "plan"]).ok();
    run.plan_line("+", &target(&id));
    env.ws
        .run_in(&elsewhere, &["--dir", conf, "apply", "--auto-approve"])
        .ok();
    assert!(
        env.ws.path().join("conf/.lifeboat/state.db").exists(),
        "state lives beside the configuration"
    );
    assert!(
        !elsewhere.join(".lifeboat").exists(),
        "nothing written to the working directory"
    );
    env.ws
        .run_in(&elsewhere, &["--dir", conf, "plan", "--detailed-exitcode"])
        .code(0);
}

#[test]
fn a_targeted_plan_and_apply_take_in_only_what_belongs_to_the_target() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    let b = env.aws.run_instance(1, &[]);
    let two = config(2, &[&a.id], false, "yes")
        + &format!(
            "\npolicy \"db\" {{\n  account     = account.main\n  generations = 2\n  instance \"{}\" {{ region = \"us-east-1\" }}\n}}\n",
            b.id
        );
    env.config(&two);
    let db_target = format!("policy.db.target[\"{}\"]", b.id);

    let run = env.run(&["plan", "--target", "policy.web"]).ok();
    run.plan_line("+", "policy.web");
    run.plan_line("+", &target(&a.id));
    run.plan_line("+", "account.main");
    assert!(!run.stdout.contains("policy.db"), "{run}");
    run.stdout_has("left out of this plan");
    env.run(&["plan", "--target", "policy web"])
        .code(2)
        .stderr_has("--target");

    let before = env.ws.state_bytes();
    env.run(&["apply", "--target", "policy.web", "plan.json"])
        .code(2)
        .stderr_has("cannot be used with");
    assert_eq!(env.ws.state_bytes(), before);

    env.run(&["apply", "--target", "policy.web", "--auto-approve"])
        .ok();
    let state = env.state_list();
    assert!(state.contains(&target(&a.id)), "{state:?}");
    assert!(
        !state.iter().any(|s| s.starts_with("policy.db")),
        "{state:?}"
    );
    // The rest is still to do.
    let run = env.run(&["plan"]).ok();
    run.plan_line("+", "policy.db");
    run.plan_line("+", &db_target);
}

#[test]
fn a_plan_without_refresh_reads_no_aws_and_takes_it_as_the_state_recorded_it() {
    let mut env = Env::start();
    let f = fleet(&env);
    env.apply();
    env.backup("web", &at(1));
    env.backup("web", &at(2));
    // AWS moves on: a tagged instance is terminated. A refreshed plan
    // sees it leave; one made from the state alone does not.
    env.aws.terminate(&f.web[0]);
    env.run(&["plan"]).ok().plan_line("-", &target(&f.web[0]));
    let quiet = env
        .run(&["plan", "--refresh=false", "--detailed-exitcode"])
        .code(0);
    quiet.no_changes().stdout_has("AWS was not read");

    // Then AWS is gone altogether, and the configuration keeps one
    // generation: the plan still shows the policy's update and the older
    // backup retention deletes, without a single AWS call.
    env.emulator.stop();
    env.ws
        .edit("main.lb.hcl", "generations = 2", "generations = 1");
    let run = env
        .run(&["plan", "--refresh=false", "--detailed-exitcode"])
        .code(2);
    run.plan_line("~", "policy.web");
    run.stdout_has(&backup(&at(1)))
        .stdout_lacks(&backup(&at(2)))
        .stdout_lacks(&format!("- {}", target(&f.web[0])));
    let json = env.run(&["plan", "--refresh=false", "--json"]).ok().json();
    assert_eq!(json["from_state"], true, "{json}");
    // A refreshed plan needs AWS, and says so.
    env.run(&["plan"]).code(1);
}
