//! Drills end to end: the real binary against the emulator rehearses a
//! recovery scenario (a database, then an instance after it), runs the
//! check script with what came back, tears it all down and leaves the
//! originals as they were; a failing check fails the drill (and still tears
//! down); a drill killed midway is torn down by the next runner; a
//! relative check script is the configuration directory's from any cwd.

mod support;

use support::targets::Rds;
use support::{at, Env};

const POLL: (&str, &str) = ("LIFEBOAT_RESTORE_POLL_MS", "50");

fn config(instance: &str) -> String {
    format!(
        r#"account "main" {{
  regions = ["us-east-1"]
}}

policy "prod" {{
  account     = account.main
  generations = 3
  instance "{instance}" {{
    region = "us-east-1"
  }}
  rds "orders" {{
    region = "us-east-1"
  }}
}}

recovery_scenario "prod" {{
  step "db" {{
    rds   = "orders"
    class = "db.t3.small"
  }}
  step "app" {{
    instances     = ["{instance}"]
    after         = ["db"]
    instance_type = "t3.small"
  }}
  check {{
    script  = "check.sh"
    timeout = "1m"
  }}
}}
"#
    )
}

/// Keeps what the drill handed it, and passes when it names a new
/// instance and a new database.
const CHECK: &str = r#"#!/bin/sh
echo "$LIFEBOAT_RESTORED" > restored.json
echo "$LIFEBOAT_DRILL_ID" > drill-id.txt
case "$LIFEBOAT_RESTORED" in *'"kind":"instance"'*) ;; *) echo "no instance" >&2; exit 3 ;; esac
case "$LIFEBOAT_RESTORED" in *'"kind":"db_instance"'*) ;; *) echo "no database" >&2; exit 4 ;; esac
# Lifeboat's credentials never reach the check.
[ -z "$AWS_ACCESS_KEY_ID$AWS_SECRET_ACCESS_KEY$AWS_ENDPOINT_URL" ] || { echo "credentials leaked" >&2; exit 5; }
echo "smoke test passed" >&2
"#;

/// Sets up the workspace: an instance with two volumes and an RDS
/// instance, backed up once; returns the instance id.
fn setup(env: &Env, check: &str) -> String {
    let i = env.aws.run_instance(2, &[("Name", "web-1")]);
    Rds::new(&env.emulator).create_instance("orders");
    env.config(&config(&i.id));
    env.ws.write("check.sh", check);
    std::process::Command::new("chmod")
        .args(["+x"])
        .arg(env.ws.path().join("check.sh"))
        .status()
        .unwrap();
    env.apply();
    env.backup("prod", &at(10));
    i.id
}

/// What the originals are: the instance, its volumes, the database.
fn originals(env: &Env, instance: &str) -> String {
    let i = env.aws.instance(instance);
    let volumes: Vec<_> = i
        .devices
        .iter()
        .map(|(_, v)| {
            let v = env.aws.volume(v);
            (v.id, v.state, v.attached, v.tags)
        })
        .collect();
    let db = Rds::new(&env.emulator).db_instance("orders");
    format!(
        "{} {} {} {:?} {:?} {volumes:?} {db:?}",
        i.id, i.state, i.instance_type, i.devices, i.tags
    )
}

/// What a drill made and is still there: instances not terminated and
/// volumes carrying a restore id, and the databases named `*-drill-*`.
fn leftovers(env: &Env, restored: &[serde_json::Value]) -> Vec<String> {
    let mut out: Vec<String> = env
        .aws
        .instances_where("tag-key", "lifeboat:restore-id")
        .into_iter()
        .filter(|i| i.state != "terminated")
        .map(|i| i.id)
        .collect();
    out.extend(
        env.aws
            .volumes_where("tag-key", "lifeboat:restore-id")
            .into_iter()
            .map(|v| v.id),
    );
    let rds = Rds::new(&env.emulator);
    for r in restored.iter().filter(|r| r["kind"] == "db_instance") {
        let id = r["id"].as_str().unwrap();
        if rds.db_instance(id).is_some() {
            out.push(id.to_string());
        }
    }
    out
}

#[test]
fn a_drill_restores_checks_and_tears_down_leaving_the_originals_untouched() {
    let env = Env::start();
    let instance = setup(&env, CHECK);
    let before = originals(&env, &instance);

    let run = env.ws.run_env(&[POLL], &["drill", "prod", "--json"]).ok();
    let out = run.json();
    assert_eq!(out["record"]["status"], "passed", "{run}");
    assert_eq!(out["record"]["check_exit"], 0, "{run}");
    assert!(out["record"]["check_output"]
        .as_str()
        .unwrap()
        .contains("smoke test passed"));
    let id = out["record"]["id"].as_str().unwrap();
    assert_eq!(env.ws.read("drill-id.txt").trim(), id);

    // The check was given the new instance and database...
    let restored: Vec<serde_json::Value> =
        serde_json::from_str(&env.ws.read("restored.json")).unwrap();
    let of = |kind: &str| -> Vec<String> {
        restored
            .iter()
            .filter(|r| r["kind"] == kind)
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (instances, dbs) = (of("instance"), of("db_instance"));
    assert_eq!(instances.len(), 1, "{restored:?}");
    assert_eq!(dbs.len(), 1, "{restored:?}");
    assert_ne!(instances[0], instance);
    assert!(dbs[0].starts_with("orders-drill-"), "{dbs:?}");
    assert!(restored
        .iter()
        .all(|r| r["account"] == "main" && r["region"] == "us-east-1"));
    // ... which are gone again, and nothing else is.
    assert_eq!(env.aws.instance(&instances[0]).state, "terminated");
    assert!(leftovers(&env, &restored).is_empty());
    assert_eq!(originals(&env, &instance), before);

    let listed = env.run(&["drills", "--json"]).ok().json();
    let drills = listed.as_array().unwrap();
    assert_eq!(drills.len(), 1, "{listed}");
    assert_eq!(drills[0]["status"], "passed");
    assert!(drills[0]["rto_seconds"].is_i64(), "{listed}");
    assert!(
        drills[0]["rpo_seconds"].as_i64().unwrap() > 86_400,
        "the backup is days old: {listed}"
    );
    // The drill's restores are listed, torn down.
    let restores = env.run(&["restores", "--json"]).ok().json();
    let restores = restores.as_array().unwrap();
    assert_eq!(restores.len(), 2);
    assert!(restores
        .iter()
        .all(|r| r["drill"] == id && r["status"] == "torn_down"));
    env.run(&["drills", "--csv", "drills.csv"])
        .ok()
        .stdout_has("passed");
    assert!(env.ws.read("drills.csv").starts_with("id,scenario,"));
}

#[test]
fn a_failing_check_fails_the_drill_after_tearing_down() {
    let env = Env::start();
    let instance = setup(
        &env,
        "#!/bin/sh\necho \"$LIFEBOAT_RESTORED\" > restored.json\necho 'orders: connection refused' >&2\nexit 2\n",
    );
    let before = originals(&env, &instance);
    let run = env.ws.run_env(&[POLL], &["drill", "prod"]).code(1);
    run.stdout_has("connection refused").stdout_has("failed");
    let restored: Vec<serde_json::Value> =
        serde_json::from_str(&env.ws.read("restored.json")).unwrap();
    assert_eq!(restored.len(), 2, "{restored:?}");
    assert!(leftovers(&env, &restored).is_empty());
    assert_eq!(originals(&env, &instance), before);
    let listed = env.run(&["drills", "--json"]).ok().json();
    assert_eq!(listed[0]["status"], "failed", "{listed}");
    assert_eq!(listed[0]["check_exit"], 2, "{listed}");
    assert!(listed[0]["torn_down"].is_string(), "{listed}");
}

/// `--dir` given relative to another working directory: the check's
/// `./check.sh` is the configuration directory's, not the caller's (a
/// program path relative to a changed working directory is looked up from
/// the child's, so a relative one would be looked for twice down).
#[test]
fn a_relative_check_script_is_found_in_the_configuration_directory_from_any_cwd() {
    let env = Env::start();
    setup(&env, CHECK);
    env.ws.edit(
        "main.lb.hcl",
        "script  = \"check.sh\"",
        "script  = \"./check.sh\"",
    );
    let parent = env.ws.path().parent().unwrap();
    let dir = env.ws.path().file_name().unwrap().to_str().unwrap();
    let run = env
        .ws
        .run_with(parent, &["--dir", dir, "drill", "prod", "--json"], &[POLL])
        .ok();
    let out = run.json();
    assert_eq!(out["record"]["status"], "passed", "{run}");
    assert_eq!(out["record"]["check_exit"], 0, "{run}");
    // Its working directory is the configuration directory.
    assert!(env.ws.read("drill-id.txt").starts_with("d-"));
}

#[test]
fn a_drill_killed_midway_is_torn_down_by_the_next_runner() {
    let env = Env::start();
    let instance = setup(&env, CHECK);
    let before = originals(&env, &instance);
    // Killed once its first restore (the database) is recorded.
    let killed = env.ws.run_env(
        &[POLL, ("LIFEBOAT_FAILPOINT", "drill-restored")],
        &["drill", "prod"],
    );
    assert_ne!(killed.code, 0, "{killed}");
    let listed = env.run(&["drills", "--json"]).ok().json();
    assert_eq!(listed[0]["status"], "running", "{listed}");
    let restores = env.run(&["restores", "--json"]).ok().json();
    let db = restores[0]["resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(db.starts_with("orders-drill-"), "{restores}");
    let rds = Rds::new(&env.emulator);
    assert!(rds.db_instance(&db).is_some(), "the drill's database is up");

    // The runner tears it down: the process that ran it is gone.
    env.ws
        .run_env(&[POLL], &["run", "--once"])
        .stdout_has("drill_torn_down");
    assert!(rds.db_instance(&db).is_none(), "{db} is still there");
    assert_eq!(originals(&env, &instance), before);
    let listed = env.run(&["drills", "--json"]).ok().json();
    assert_eq!(listed[0]["status"], "failed", "{listed}");
    assert!(
        listed[0]["problem"]
            .as_str()
            .unwrap()
            .contains("stopped before it finished"),
        "{listed}"
    );
    // Nothing left: the next drill starts clean and passes.
    let run = env.ws.run_env(&[POLL], &["drill", "prod"]).ok();
    run.stdout_lacks("Tore down drill");
    assert!(rds.db_instance("orders").is_some());
}

#[test]
fn recover_prints_its_plan_then_restores_every_step_in_order() {
    let env = Env::start();
    let instance = setup(&env, CHECK);
    let plan = env.run(&["recover", "prod", "--plan-only"]).ok();
    plan.stdout_has("wave 1, step \"db\"")
        .stdout_has("wave 2, step \"app\"")
        .stdout_has("restored_instance[")
        .stdout_has("2 restore(s) in 2 wave(s)");
    assert_eq!(
        env.run(&["restores", "--json"]).ok().json(),
        serde_json::json!([])
    );
    // It asks; without a terminal and --auto-approve it refuses.
    env.run(&["recover", "prod"])
        .code(1)
        .mentions("--auto-approve");
    let run = env
        .ws
        .run_env(&[POLL], &["recover", "prod", "--auto-approve", "--json"])
        .ok();
    let mut values =
        serde_json::Deserializer::from_str(&run.stdout).into_iter::<serde_json::Value>();
    let _plan = values.next().expect("the plan").expect("JSON");
    let report = values.next().expect("the report").expect("JSON");
    assert_eq!(report["ok"], true, "{report}");
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, vec!["db", "app"]);
    assert!(report["steps"][1]["rto_seconds"].is_i64(), "{report}");
    assert!(report["steps"][0]["rpo_seconds"].as_i64().unwrap() > 86_400);
    // A recovery stays: the database under its restored name, a new
    // instance running; the original is untouched.
    let rds = Rds::new(&env.emulator);
    assert!(rds.db_instance("orders-restored").is_some());
    let restores = env.run(&["restores", "--json"]).ok().json();
    let restores = restores.as_array().unwrap();
    assert_eq!(restores.len(), 2);
    assert!(restores[0]["started"].as_str() <= restores[1]["started"].as_str());
    assert_eq!(restores[0]["kind"], "rds");
    let new = restores[1]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "instance")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let back = env.aws.instance(&new);
    assert_eq!(
        (back.state.as_str(), back.instance_type.as_str()),
        ("running", "t3.small")
    );
    assert_eq!(env.aws.instance(&instance).state, "running");
    env.run(&["drills"]).ok().stdout_has("No drills yet");
}

#[test]
fn run_mode_drills_a_scenario_when_due_and_a_failed_drill_opens_an_alert() {
    let env = Env::start();
    setup(
        &env,
        "#!/bin/sh\necho 'orders: connection refused' >&2\nexit 2\n",
    );
    let text = env.ws.read("main.lb.hcl").replace(
        "    timeout = \"1m\"\n  }\n",
        "    timeout = \"1m\"\n  }\n  drill {\n    every    = \"7d\"\n    keep_for = \"1h\"\n  }\n",
    );
    env.config(&text);
    // Never drilled: due at once.
    let run = env.ws.run_env(&[POLL], &["run", "--once"]).code(1);
    run.stdout_has("drill_start").stdout_has("status=failed");
    let listed = env.run(&["drills", "--json"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["status"], "failed");
    assert!(
        listed[0]["torn_down"].is_string(),
        "--once keeps nothing: {listed}"
    );
    env.run(&["alerts"])
        .ok()
        .stdout_has("recovery_scenario.prod");
    // Drilled a moment ago: not due again for a week.
    env.ws
        .run_env(&[POLL], &["run", "--once"])
        .stdout_lacks("drill_start");
    assert_eq!(
        env.run(&["drills", "--json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn an_instance_recovers_into_its_subnets_counterpart_in_a_cloned_network() {
    let env = Env::start();
    let placed = env.aws.placed_instance("10.40.0.0/16", "10.40.1.0/24");
    let text = format!(
        r#"account "main" {{
  regions = ["us-east-1"]
}}

policy "prod" {{
  account     = account.main
  generations = 3
  instance "{instance}" {{
    region = "us-east-1"
  }}
}}

vpc_capture "net" {{
  account = account.main
}}

vpc_clone "copy" {{
  capture   = vpc_capture.net
  vpc       = "{vpc}"
  to_region = "us-east-1"
  timeout   = "1m"
}}

recovery_scenario "cloned" {{
  region  = "us-east-1"
  network = vpc_clone.copy
  step "app" {{
    instances = ["{instance}"]
  }}
}}
"#,
        instance = placed.instance,
        vpc = placed.vpc
    );
    env.config(&text);
    // Not deployed yet: the plan says so and creates nothing.
    env.run(&["recover", "cloned", "--plan-only"])
        .code(1)
        .mentions("vpc_clone.copy");
    env.run(&["--now", &at(9), "vpc", "capture"]).ok();
    env.apply();
    env.backup("prod", &at(10));
    let run = env
        .run(&["recover", "cloned", "--plan-only", "--json"])
        .ok();
    let plan = run.json();
    let launch = &plan["waves"][0][0]["restores"][0]["launch"];
    let subnet = launch["subnet_id"].as_str().unwrap().to_string();
    assert_ne!(subnet, placed.subnet, "{plan}");
    let clone_subnet = env.aws.subnet_tags(&subnet);
    assert_eq!(clone_subnet["lifeboat:original-id"], placed.subnet);
    let groups = launch["security_groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{plan}");
    assert_ne!(groups[0], placed.group.as_str());
    // Performed: the instance runs in the clone's subnet.
    let run = env
        .ws
        .run_env(&[POLL], &["recover", "cloned", "--auto-approve", "--json"])
        .ok();
    run.stdout_has("\"ok\": true");
    let restores = env.run(&["restores", "--json"]).ok().json();
    let id = restores[0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "instance")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(env.aws.instance(&id).subnet, subnet);
}
