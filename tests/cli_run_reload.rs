//! A running `lifeboat run` follows applies without a restart: a policy
//! with a schedule applied while it runs is backed up at its next wake-up
//! (the schedule is configuration the runner reads from the state, where
//! apply records it), or at once after SIGHUP; slots already run are not
//! run again.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::Env;

fn config(web: &str) -> String {
    format!(
        r#"account "main" {{
  regions = ["us-east-1"]
}}

schedule "hourly" {{
  start = "2026-11-22T00:17"
  every = "1h"
}}

policy "web" {{
  account     = account.main
  generations = 5
  schedules   = [schedule.hourly]

  instance "{web}" {{
    region = "us-east-1"
  }}
}}
"#
    )
}

/// `config` plus policy `db` on a schedule of its own, first due at 10:17.
fn config_with_db(web: &str, db: &str) -> String {
    format!(
        r#"{}
schedule "daily" {{
  start = "2026-11-22T10:17"
  every = "1d"
}}

policy "db" {{
  account     = account.main
  generations = 5
  schedules   = [schedule.daily]

  instance "{db}" {{
    region = "us-east-1"
  }}
}}
"#,
        config(web)
    )
}

/// The runner's JSON log lines so far.
fn events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits until an event `event` of policy `policy` is in the log.
#[track_caller]
fn wait_for(log: &Path, event: &str, policy: &str, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(e) = events(log)
            .into_iter()
            .find(|e| e["event"] == event && e["policy"] == policy)
        {
            return e;
        }
        assert!(
            Instant::now() < deadline,
            "no {event} of policy {policy} within {limit:?}; the log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The slots the runner started `policy` for (from its log), checked
/// against the catalog: one backup per slot.
#[track_caller]
fn slots(env: &Env, log: &Path, policy: &str) -> Vec<String> {
    let mut out: Vec<String> = events(log)
        .iter()
        .filter(|e| e["event"] == "backup_start" && e["policy"] == policy)
        .map(|e| e["slot"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    assert_eq!(
        env.backups(&["--policy", policy]).len(),
        out.len(),
        "one backup per slot of {policy}"
    );
    out
}

#[test]
fn a_policy_and_schedule_applied_while_the_runner_runs_are_backed_up_at_its_next_wake_up() {
    let env = Env::start();
    let web = env.aws.run_instance(1, &[]);
    let db = env.aws.run_instance(1, &[]);
    env.config(&config(&web.id));
    env.apply();

    // On the real clock from 10:16:25: the 09:17 slot at once, then a
    // wake-up for the 10:17 slot.
    let mut runner = env.ws.spawn(
        &[
            "--now",
            "2026-11-22T10:16:25Z",
            "run",
            "--log-format",
            "json",
            "--until",
            "2026-11-22T10:17:30Z",
        ],
        "run.log",
        "run.err",
    );
    let log = env.ws.path().join("run.log");
    wait_for(&log, "backup_finish", "web", Duration::from_secs(30));

    env.config(&config_with_db(&web.id, &db.id));
    env.run(&["apply", "--auto-approve", "--lock-timeout", "30s"])
        .ok()
        .stdout_has("policy.db");

    let started = wait_for(&log, "backup_start", "db", Duration::from_secs(90));
    assert_eq!(started["slot"], "2026-11-22T10:17:00Z");
    let status = runner
        .wait(Duration::from_secs(60))
        .expect("the runner stops at --until");
    assert!(status.success(), "{status:?}\n{}", env.ws.read("run.err"));

    let all = events(&log);
    let reloads: Vec<&Value> = all
        .iter()
        .filter(|e| e["event"] == "config_reloaded")
        .collect();
    assert_eq!(reloads.len(), 1, "{all:#?}");
    assert_eq!(reloads[0]["reason"], "apply");
    assert_eq!(reloads[0]["policies"], "+1");
    assert_eq!(reloads[0]["schedules"], "+1");
    assert!(
        reloads[0]["new_serial"].as_u64() > reloads[0]["old_serial"].as_u64(),
        "{:?}",
        reloads[0]
    );
    // Taken up at the wake-up, before the slot's runs started.
    let at = |e: &Value| e["time"].as_str().unwrap().to_string();
    assert!(
        at(reloads[0]).as_str() >= "2026-11-22T10:17:00Z",
        "{:?}",
        reloads[0]
    );
    assert!(at(reloads[0]) <= at(&started));
    assert!(all
        .iter()
        .any(|e| e["event"] == "backup_finish" && e["policy"] == "db"));

    // Each slot once: the reload kept web's last slot.
    assert_eq!(
        slots(&env, &log, "web"),
        ["2026-11-22T09:17:00Z", "2026-11-22T10:17:00Z"]
    );
    assert_eq!(slots(&env, &log, "db"), ["2026-11-22T10:17:00Z"]);
}

#[test]
fn sighup_makes_the_runner_take_up_an_applied_schedule_at_once() {
    let env = Env::start();
    let web = env.aws.run_instance(1, &[]);
    let db = env.aws.run_instance(1, &[]);
    env.config(&config(&web.id));
    env.apply();

    // From 10:20: the 10:17 slot at once, then nothing due before 11:17,
    // so the runner sleeps until its one-minute look at 10:21.
    let runner = env.ws.spawn(
        &[
            "--now",
            "2026-11-22T10:20:00Z",
            "run",
            "--log-format",
            "json",
            "--until",
            "2026-11-22T10:30:00Z",
        ],
        "run.log",
        "run.err",
    );
    let log = env.ws.path().join("run.log");
    wait_for(&log, "backup_finish", "web", Duration::from_secs(30));

    env.config(&config_with_db(&web.id, &db.id));
    env.run(&["apply", "--auto-approve", "--lock-timeout", "30s"])
        .ok();
    runner.signal("HUP");

    let started = wait_for(&log, "backup_start", "db", Duration::from_secs(30));
    let time = started["time"].as_str().unwrap();
    assert!(
        time < "2026-11-22T10:21:00Z",
        "started at {time}: the runner waited for its wake-up instead of the signal"
    );
    let reload = events(&log)
        .into_iter()
        .find(|e| e["event"] == "config_reloaded")
        .expect("the reload is logged");
    assert_eq!(reload["reason"], "sighup");
    assert_eq!(reload["schedules"], "+1");
    wait_for(&log, "backup_finish", "db", Duration::from_secs(30));

    // The signal neither stopped the runner nor ran web's slot again.
    let mut runner = runner;
    assert!(
        runner.0.try_wait().unwrap().is_none(),
        "the runner still runs"
    );
    runner.signal("TERM");
    let status = runner
        .wait(Duration::from_secs(30))
        .expect("the runner stops on SIGTERM");
    assert!(status.success(), "{status:?}\n{}", env.ws.read("run.err"));
    assert_eq!(slots(&env, &log, "web"), ["2026-11-22T10:17:00Z"]);
    assert_eq!(slots(&env, &log, "db"), ["2026-11-22T10:17:00Z"]);
}

/// `text` with its state in the emulator's DynamoDB, shared by hosts.
fn shared(text: &str) -> String {
    format!(
        "lifeboat {{\n  state {{\n    backend = \"dynamodb\"\n    table   = \"lifeboat-state\"\n    region  = \"{}\"\n  }}\n}}\n\n{text}",
        support::REGION
    )
}

#[test]
fn a_runner_on_another_host_takes_up_what_an_apply_recorded_in_shared_state() {
    let env = Env::start();
    let web = env.aws.run_instance(1, &[]);
    let db = env.aws.run_instance(1, &[]);
    env.config(&shared(&config(&web.id)));
    env.run(&["state", "init"]).ok();
    env.apply();
    // The runner's host: its own files (never edited) and its own cache.
    let host = support::Workspace::new(&env.emulator);
    host.write("main.lb.hcl", &shared(&config(&web.id)));
    let runner = host.spawn(
        &[
            "--now",
            "2026-11-22T10:20:00Z",
            "run",
            "--log-format",
            "json",
            "--until",
            "2026-11-22T10:30:00Z",
        ],
        "run.log",
        "run.err",
    );
    let log = host.path().join("run.log");
    wait_for(&log, "backup_finish", "web", Duration::from_secs(60));

    // CI applies from its checkout; the runner host's files stay as they were.
    env.config(&shared(&config_with_db(&web.id, &db.id)));
    env.run(&["apply", "--auto-approve", "--lock-timeout", "30s"])
        .ok();
    runner.signal("HUP");

    let started = wait_for(&log, "backup_start", "db", Duration::from_secs(30));
    let time = started["time"].as_str().unwrap();
    assert!(time < "2026-11-22T10:21:00Z", "started at {time}");
    let reload = events(&log)
        .into_iter()
        .find(|e| e["event"] == "config_reloaded")
        .expect("the reload is logged");
    assert_eq!(reload["schedules"], "+1");
    assert_eq!(reload["policies"], "+1");
    wait_for(&log, "backup_finish", "db", Duration::from_secs(30));
    let mut runner = runner;
    runner.signal("TERM");
    let status = runner
        .wait(Duration::from_secs(30))
        .expect("the runner stops on SIGTERM");
    assert!(status.success(), "{status:?}\n{}", host.read("run.err"));
    assert_eq!(slots(&env, &log, "db"), ["2026-11-22T10:17:00Z"]);
}
