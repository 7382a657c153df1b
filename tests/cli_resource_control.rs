//! Resource control against the emulator with the real binary: a
//! simulated week of `lifeboat run --fast-forward` that stops (and
//! hibernates, where configured) and starts instances and an RDS instance
//! at each window edge in Berlin time, the operations log, and `rc off`,
//! `rc on`, `rc status --json`, `rc log --csv` by hand, with `plan`
//! showing the targets out of step with their windows; instances opted
//! out by their tag or taken out by `exclude` left alone, and `rc off`
//! refused while another command holds the state lock.
//!
//! The emulator stops and starts at once and accepts `Hibernate` for any
//! instance: an instance stuck `stopping`, hibernation refused, a runner
//! down over an edge and a database AWS starts again are covered over the
//! fake (`engine/tests/unit_resource_control.rs`).

mod support;

use support::targets::Rds;
use support::Env;

fn config(listed: &str, hibernating: &str) -> String {
    format!(
        r#"account "dev" {{
  regions = ["us-east-1"]
}}

resource_control_group "nightly" {{
  account   = account.dev
  time_zone = "Europe/Berlin"
  hibernate = true
  timeout   = "2m"
  instances = ["{listed}", "{hibernating}"]
  rds       = ["reporting"]

  select {{
    tag   = "env"
    value = "dev"
  }}

  window {{
    off = "mon 20:00"
    on  = "tue 07:00"
  }}

  window {{
    off = "fri 20:00"
    on  = "mon 07:00"
  }}
}}
"#
    )
}

fn events(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn a_simulated_week_stops_and_starts_at_each_edge_and_logs_every_target() {
    let env = Env::start();
    let listed = env.aws.run_instance(1, &[]).id;
    let hibernating = env.aws.run_hibernating_instance();
    let selected = env.aws.run_instance(1, &[("env", "dev")]).id;
    let untouched = env.aws.run_instance(1, &[("env", "prod")]).id;
    let rds = Rds::new(&env.emulator);
    rds.create_instance("reporting");
    env.config(&config(&listed, &hibernating));

    // Monday 2026-11-30 00:00 UTC is 01:00 in Berlin, inside the weekend
    // window: the runner first applies what the windows say now (off),
    // then acts at every edge up to the next Monday noon.
    let week = env
        .run(&[
            "--now",
            "2026-11-30T00:00:00Z",
            "run",
            "--fast-forward",
            "--until",
            "2026-12-07T12:00:00Z",
            "--log-format",
            "json",
        ])
        .ok();
    let events = events(&week.stdout);
    let ops: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["event"] == "control" && e["target"] == format!("instance {listed}"))
        .map(|e| {
            (
                e["time"].as_str().unwrap()[..16].to_string(),
                e["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let op = |at: &str, action: &str| (at.to_string(), action.to_string());
    // Berlin is UTC+1 in December: 07:00 and 20:00 local are 06:00 and
    // 19:00 UTC.
    assert_eq!(
        ops,
        [
            op("2026-11-30T00:00", "off"),
            op("2026-11-30T06:00", "on"),
            op("2026-11-30T19:00", "off"),
            op("2026-12-01T06:00", "on"),
            op("2026-12-04T19:00", "off"),
            op("2026-12-07T06:00", "on"),
        ],
        "{}",
        week.stdout
    );
    // Every operation acted on all four targets, each verified.
    let rows: Vec<&serde_json::Value> = events.iter().filter(|e| e["event"] == "control").collect();
    assert_eq!(rows.len(), 6 * 4, "{}", week.stdout);
    assert!(
        rows.iter().all(|r| r["result"] == "done"),
        "{}",
        week.stdout
    );
    let hibernated: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| r["action"] == "hibernate")
        .copied()
        .collect();
    assert_eq!(
        hibernated.len(),
        3,
        "one hibernation per off: {hibernated:?}"
    );
    assert!(hibernated
        .iter()
        .all(|r| r["target"] == format!("instance {hibernating}")));
    assert!(rows
        .iter()
        .any(|r| r["target"] == format!("instance {selected}")));
    assert!(rows.iter().any(|r| r["target"] == "rds reporting"));
    assert!(!week.stdout.contains(&untouched));

    // Monday noon: everything runs again, the other instance never stopped.
    for id in [&listed, &hibernating, &selected, &untouched] {
        assert_eq!(env.aws.instance_state(id), "running", "{id}");
    }
    assert_eq!(rds.instance_status("reporting"), "available");

    // The operations log holds the same rows, exported as CSV.
    let csv = env.ws.path().join("ops.csv");
    env.run(&["rc", "log", "--csv", csv.to_str().unwrap()]).ok();
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("group,target,action,requested,verified,result,detail")
    );
    assert_eq!(lines.count(), 24);
    assert!(text.contains(&format!("nightly,instance {hibernating},hibernate,")));
}

#[test]
fn rc_off_and_on_act_now_and_status_shows_desired_and_actual() {
    let env = Env::start();
    let listed = env.aws.run_instance(1, &[]).id;
    let hibernating = env.aws.run_hibernating_instance();
    let rds = Rds::new(&env.emulator);
    rds.create_instance("reporting");
    env.config(&config(&listed, &hibernating));
    // Wednesday 2026-12-02 at noon: between windows, so the targets should run.
    let now = "2026-12-02T12:00:00Z";

    let status = |env: &Env| {
        let run = env.run(&["--now", now, "rc", "status", "--json"]).ok();
        let rows = run.json();
        let rows = rows.as_array().unwrap().clone();
        assert_eq!(rows.len(), 3, "{run}");
        rows
    };
    for r in status(&env) {
        assert_eq!(r["desired"], "running", "{r}");
        assert_eq!(r["differs"], false, "{r}");
        assert_eq!(
            r["next"].as_str().unwrap(),
            "off at 2026-12-04T19:00:00+00:00",
            "the next edge is Friday 20:00 in Berlin: {r}"
        );
    }

    let off = env.run(&["--now", now, "rc", "off", "nightly"]).ok();
    off.stdout_has("hibernate").stdout_has("done");
    assert_eq!(env.aws.instance_state(&listed), "stopped");
    assert_eq!(env.aws.instance_state(&hibernating), "stopped");
    assert_eq!(rds.instance_status("reporting"), "stopped");
    let rows = status(&env);
    for r in &rows {
        assert_eq!(r["desired"], "running", "{r}");
        assert_eq!(r["differs"], true, "{r}");
    }
    let actual: Vec<&str> = rows.iter().map(|r| r["actual"].as_str().unwrap()).collect();
    assert_eq!(actual, ["stopped", "stopped", "stopped"]);
    // Plan shows the targets out of step with their windows, apart from
    // its changes: apply does not act on them.
    env.apply();
    let plan = env
        .run(&["--now", now, "plan", "--detailed-exitcode"])
        .code(0);
    plan.stdout_has(&format!(
        "~ resource_control_group.nightly.target[\"{listed}\"] (stopped -> running; next edge: off at 2026-12-04T19:00:00+00:00)"
    ))
    .stdout_has("~ resource_control_group.nightly.target[\"rds:reporting\"] (stopped -> running;")
    .stdout_has("No changes.");
    let json = env.run(&["--now", now, "plan", "--json"]).ok().json();
    assert_eq!(json["power"].as_array().unwrap().len(), 3, "{json}");

    env.run(&["--now", now, "rc", "on", "nightly"]).ok();
    assert_eq!(env.aws.instance_state(&listed), "running");
    assert_eq!(rds.instance_status("reporting"), "available");
    assert!(status(&env).iter().all(|r| r["differs"] == false));

    // A second `on` finds them running: logged as such, nothing called.
    let again = env.run(&["--now", now, "rc", "on", "nightly"]).ok();
    again.stdout_has("already");
    let log = env.run(&["rc", "log", "--json"]).ok().json();
    assert_eq!(log.as_array().unwrap().len(), 9);

    env.run(&["rc", "off", "nightly-typo"]).code(1).stderr_has(
        "no resource_control_group \"nightly-typo\" is configured or made from a template by a tag; groups: nightly",
    );
}

#[test]
fn rc_leaves_opted_out_and_excluded_instances_alone_and_takes_the_state_lock() {
    let env = Env::start();
    let member = env.aws.run_instance(1, &[("env", "dev")]).id;
    let opted_out = env
        .aws
        .run_instance(
            1,
            &[
                ("env", "dev"),
                ("lifeboat:resource-control", "no-resource-control"),
            ],
        )
        .id;
    let excluded = env
        .aws
        .run_instance(1, &[("env", "dev"), ("keep", "running")])
        .id;
    env.config(
        r#"account "dev" {
  regions = ["us-east-1"]
}

resource_control_group "nightly" {
  account = account.dev
  timeout = "2m"

  select {
    tag   = "env"
    value = "dev"
  }

  exclude {
    tag   = "keep"
    value = "running"
  }

  window {
    off = "mon 20:00"
    on  = "tue 07:00"
  }
}
"#,
    );
    let now = "2026-12-02T12:00:00Z";
    // Another command holds the state lock: `rc off` waits its turn.
    let db = env.ws.path().join(".lifeboat/state.db");
    // A plan only reads: `state init` makes the state file.
    env.run(&["state", "init"]).ok();
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "INSERT INTO lock (slot, id, holder, operation, acquired, expires)
             VALUES (1, 'lock-77', 'ops@host (pid 1)', 'apply', '2026-11-22T09:00:00.000Z', '2999-01-01T00:00:00.000Z')",
            [],
        )
        .unwrap();
    env.run(&["--now", now, "rc", "off", "nightly"])
        .code(1)
        .stderr_has("lock-77");
    assert_eq!(env.aws.instance_state(&member), "running");
    env.run(&["force-unlock", "lock-77"]).ok();

    let off = env.run(&["--now", now, "rc", "off", "nightly"]).ok();
    off.stdout_has("skipped").stdout_lacks(&excluded);
    assert_eq!(env.aws.instance_state(&member), "stopped");
    assert_eq!(env.aws.instance_state(&opted_out), "running");
    assert_eq!(env.aws.instance_state(&excluded), "running");
    let log = env.run(&["rc", "log", "--json"]).ok().json();
    let rows: Vec<(String, String)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["target"].as_str().unwrap().to_string(),
                r["result"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        rows.contains(&(format!("instance {opted_out}"), "skipped".into())),
        "{rows:?}"
    );
    assert!(
        rows.contains(&(format!("instance {member}"), "done".into())),
        "{rows:?}"
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
}

/// Monday 2026-11-30 18:00 UTC is 19:00 in Berlin: the windows below say
/// "on" (since last Tuesday 07:00) until 20:00 Berlin, 19:00 UTC.
const MONDAY_EVENING: &str = "2026-11-30T18:00:00Z";

fn tagged_config() -> String {
    r#"account "dev" {
  regions = ["us-east-1"]
}

resource_control_group "nightly" {
  account   = account.dev
  time_zone = "Europe/Berlin"
  timeout   = "2m"

  window {
    off = "mon 20:00"
    on  = "tue 07:00"
  }
}

resource_control_group "shared" {
  account   = account.dev
  time_zone = "Europe/Berlin"
  timeout   = "2m"

  select {
    tag   = "env"
    value = "shared"
  }

  window {
    off = "wed 20:00"
    on  = "thu 07:00"
  }
}
"#
    .to_string()
}

#[test]
fn an_instance_tagged_for_a_group_is_its_target_and_a_tag_naming_no_group_is_a_problem() {
    let env = Env::start();
    let tag = "lifeboat:resource-control";
    let member = env.aws.run_instance(1, &[(tag, "nightly")]).id;
    let typo = env.aws.run_instance(1, &[(tag, "nightyl")]).id;
    let opted_out = env
        .aws
        .run_instance(1, &[(tag, "nightly no-resource-control")])
        .id;
    // Tagged for one group, selected by another: neither acts on it.
    let claimed_twice = env
        .aws
        .run_instance(1, &[(tag, "nightly"), ("env", "shared")])
        .id;
    let untagged = env.aws.run_instance(1, &[]).id;
    env.config(&tagged_config());

    let status = env
        .run(&["--now", MONDAY_EVENING, "rc", "status", "--json"])
        .ok();
    status.stderr_has(&format!(
        "Problem: instance {typo} (account dev, us-east-1): lifeboat:resource-control item \"nightyl\" is not used: no resource_control_group \"nightyl\" is configured"
    ));
    let rows = status.json();
    let targets: Vec<(String, String)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["group"].as_str().unwrap().to_string(),
                r["target"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(targets.contains(&("nightly".into(), format!("instance {member}"))));
    assert!(!targets
        .iter()
        .any(|(_, t)| t.contains(&typo) || t.contains(&untagged)));

    // Plan warns about the tag that names no group.
    env.run(&["--now", MONDAY_EVENING, "plan"])
        .ok()
        .stdout_has("nightyl");

    // The runner: "on" at the start (as the windows say), "off" at 20:00
    // Berlin, which stops the tagged member only.
    let run = env
        .run(&[
            "--now",
            MONDAY_EVENING,
            "run",
            "--fast-forward",
            "--until",
            "2026-11-30T20:00:00Z",
            "--log-format",
            "json",
        ])
        .ok();
    let events = events(&run.stdout);
    let row = |group: &str, id: &str, action: &str| {
        events.iter().find(|e| {
            e["event"] == "control"
                && e["group"] == group
                && e["target"] == format!("instance {id}")
                && e["action"] == action
        })
    };
    assert_eq!(row("nightly", &member, "off").unwrap()["result"], "done");
    assert_eq!(
        row("nightly", &opted_out, "off").unwrap()["result"],
        "skipped"
    );
    for group in ["nightly", "shared"] {
        let r = events
            .iter()
            .rfind(|e| {
                e["event"] == "control"
                    && e["group"] == group
                    && e["target"] == format!("instance {claimed_twice}")
            })
            .unwrap_or_else(|| panic!("{group}: {}", run.stdout));
        assert_eq!(r["result"], "skipped", "{r}");
    }
    assert!(
        events.iter().any(|e| e["event"] == "control_problem"
            && e["problem"].as_str().unwrap().contains("nightyl")),
        "{}",
        run.stdout
    );
    assert!(
        events.iter().any(|e| e["event"] == "control_alert"
            && e["message"]
                .as_str()
                .unwrap()
                .contains("selected by more than one group")),
        "{}",
        run.stdout
    );
    assert_eq!(env.aws.instance_state(&member), "stopped");
    for id in [&typo, &opted_out, &claimed_twice, &untagged] {
        assert_eq!(env.aws.instance_state(id), "running", "{id}");
    }
    // Wednesday noon the windows want it running: plan shows it out of step.
    env.run(&["--now", "2026-12-02T12:00:00Z", "plan"])
        .ok()
        .stdout_has(&format!(
            "~ resource_control_group.nightly.target[\"{member}\"] (stopped -> running;"
        ));
}

#[test]
fn a_group_made_from_a_template_by_a_tag_stops_and_starts_its_instance() {
    let env = Env::start();
    let tag = "lifeboat:resource-control";
    let member = env
        .aws
        .run_instance(1, &[(tag, "web_nights:nightly_tpl")])
        .id;
    let other = env.aws.run_instance(1, &[]).id;
    env.config(
        r#"account "dev" {
  regions = ["us-east-1"]
}

resource_control_group "nightly_tpl" {
  account   = account.dev
  template  = true
  time_zone = "Europe/Berlin"
  timeout   = "2m"

  window {
    off = "mon 20:00"
    on  = "tue 07:00"
  }
}
"#,
    );
    let status = env
        .run(&["--now", MONDAY_EVENING, "rc", "status", "--json"])
        .ok()
        .json();
    let rows = status.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{status}");
    assert_eq!(rows[0]["group"], "web_nights");
    assert_eq!(rows[0]["target"], format!("instance {member}"));
    assert_eq!(rows[0]["desired"], "running");

    // Off at 20:00 Berlin on Monday, on at 07:00 on Tuesday.
    let run = env
        .run(&[
            "--now",
            MONDAY_EVENING,
            "run",
            "--fast-forward",
            "--until",
            "2026-11-30T23:00:00Z",
            "--log-format",
            "json",
        ])
        .ok();
    assert_eq!(env.aws.instance_state(&member), "stopped", "{}", run.stdout);
    assert_eq!(env.aws.instance_state(&other), "running");
    env.run(&[
        "--now",
        "2026-11-30T23:00:00Z",
        "run",
        "--fast-forward",
        "--until",
        "2026-12-01T07:00:00Z",
    ])
    .ok();
    assert_eq!(env.aws.instance_state(&member), "running");
    let log = env.run(&["rc", "log", "--json"]).ok().json();
    let ops: Vec<(String, String, String)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["group"].as_str().unwrap().to_string(),
                r["action"].as_str().unwrap().to_string(),
                r["result"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let op = |a: &str, r: &str| ("web_nights".to_string(), a.to_string(), r.to_string());
    assert_eq!(
        ops,
        [op("on", "already"), op("off", "done"), op("on", "done")],
        "the template itself never acts"
    );

    // By hand: the made group acts, the template is refused.
    env.run(&["--now", "2026-12-02T12:00:00Z", "rc", "off", "web_nights"])
        .ok()
        .stdout_has("done");
    assert_eq!(env.aws.instance_state(&member), "stopped");
    env.run(&["rc", "off", "nightly_tpl"])
        .code(1)
        .stderr_has("is a template: it never acts itself");
}
