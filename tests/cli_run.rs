//! `lifeboat run --once` against the emulator, with the clock moved by
//! `--now`: due backups per schedule, one catch-up run for missed slots,
//! retention after each backup, JSON logs, and the one-runner lease.

mod support;

use support::Env;

fn config(instance: &str) -> String {
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
  generations = 2
  schedules   = [schedule.hourly]

  instance "{instance}" {{
    region = "us-east-1"
  }}
}}
"#
    )
}

fn run_once(env: &Env, now: &str) -> support::Run {
    env.run(&["--now", now, "run", "--once"])
}

#[test]
fn run_once_backs_up_what_is_due_catches_up_missed_slots_once_and_applies_retention() {
    let env = Env::start();
    let a = env.aws.run_instance(2, &[]);
    env.config(&config(&a.id));
    env.apply();

    run_once(&env, "2026-11-22T10:20:00Z")
        .ok()
        .stdout_has("backup_start")
        .stdout_has("slot=2026-11-22T10:17:00Z");
    assert_eq!(env.backups(&[]).len(), 1);

    // Same hour: nothing is due.
    run_once(&env, "2026-11-22T10:50:00Z")
        .ok()
        .stdout_lacks("backup_start");
    assert_eq!(env.backups(&[]).len(), 1);

    run_once(&env, "2026-11-22T11:20:00Z")
        .ok()
        .stdout_has("slot=2026-11-22T11:17:00Z");

    // Down for three slots (12:17, 13:17, 14:17): one backup, for the latest;
    // retention then keeps two generations.
    let caught_up = run_once(&env, "2026-11-22T14:30:00Z").ok();
    assert_eq!(
        caught_up.stdout.matches("backup_start").count(),
        1,
        "{}",
        caught_up.stdout
    );
    caught_up
        .stdout_has("slot=2026-11-22T14:17:00Z")
        .stdout_has("retention_deleted=");
    let ids: Vec<String> = env
        .backups(&[])
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(
        ids.iter()
            .all(|id| id.starts_with("2026-11-22T11:20") || id.starts_with("2026-11-22T14:30")),
        "{ids:?}"
    );
    env.assert_converged();
}

#[test]
fn json_logs_have_one_object_per_line() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    env.config(&config(&a.id));
    env.apply();
    let run = env
        .run(&[
            "--now",
            "2026-11-22T10:20:00Z",
            "run",
            "--once",
            "--log-format",
            "json",
        ])
        .ok();
    let events: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "runner_start",
            "backup_start",
            "backup_finish",
            "runner_stop"
        ]
    );
    assert_eq!(events[2]["status"], "success");
    assert_eq!(events[2]["snapshots"], 1);
}

#[test]
fn a_second_runner_waits_for_the_lease_and_says_so() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    env.config(&config(&a.id));
    env.apply();
    // Another runner's lease, ending in a few seconds.
    let db = env.ws.path().join(".lifeboat/state.db");
    let conn = rusqlite::Connection::open(db).unwrap();
    let until = (chrono::Utc::now() + chrono::Duration::seconds(4))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    conn.execute(
        "INSERT INTO lease (slot, id, holder, acquired, expires) VALUES (1, 'lease-1', 'ops@runner-2 (pid 7)', '2026-11-22T09:00:00.000Z', ?1)",
        [until],
    )
    .unwrap();
    drop(conn);
    run_once(&env, "2026-11-22T10:20:00Z")
        .ok()
        .stdout_has("waiting_for_lease")
        .stdout_has("holder=ops@runner-2 (pid 7)")
        .stdout_has("backup_finish");
}

#[test]
fn run_options_that_cannot_work_are_refused_before_the_state_is_touched() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    env.config(&config(&a.id));
    env.apply();
    let before = env.ws.state_bytes();
    env.run(&["run", "--fast-forward"])
        .code(1)
        .stderr_has("--fast-forward needs --now");
    // A timeout in days is a duration like the configuration's (it once
    // stopped at hours): it gets past the arguments to the next refusal.
    env.run(&["run", "--timeout", "1d", "--fast-forward"])
        .code(1)
        .stderr_has("--fast-forward needs --now");
    env.run(&["run", "--once", "--timeout", "1.5h"])
        .code(2)
        .stderr_has("\"1.5h\" is not a duration");
    env.run(&[
        "--now",
        "2026-11-22T10:00:00Z",
        "run",
        "--until",
        "2026-11-22T09:00:00Z",
    ])
    .code(1)
    .stderr_has("is not after --now");
    env.run(&["run", "--once", "--concurrency", "0"])
        .code(2)
        .stderr_has("--concurrency");
    env.run(&["run", "--until", "next tuesday"])
        .code(2)
        .stderr_has("--until");
    assert_eq!(env.ws.state_bytes(), before, "the state is untouched");
    assert!(env.backups(&[]).is_empty());
}
