//! Policy run options against the emulator with the real binary: a failing
//! before script under `success = "strict"` is retried (by a later runner:
//! the retry waits in the state), ends in a backup
//! that is not a valid generation and opens an alert (listed by `alerts`
//! and `status`, published to SNS and read back through an SQS queue
//! subscribed to the topic); `backups show` prints the script's stderr; the
//! next passing run closes the alert. A before script past its timeout is
//! killed with its whole process group by the system call, also when the
//! runner's `PATH` has no `kill` program.

mod support;

use support::topic::Topic;
use support::Env;

fn config(instance: &str, topic: &str) -> String {
    format!(
        r#"account "main" {{
  regions = ["us-east-1"]
}}

notifications {{
  sns_topic = "{topic}"
  account   = account.main
  region    = "us-east-1"
}}

schedule "hourly" {{
  start = "2026-11-22T00:17"
  every = "1h"
}}

policy "web" {{
  account     = account.main
  generations = 2
  schedules   = [schedule.hourly]
  success     = "strict"

  retries {{
    count = 1
    wait  = "1s"
  }}

  scripts {{
    before  = "scripts/before.sh"
    timeout = "10s"
  }}

  instance "{instance}" {{
    region = "us-east-1"
  }}
}}
"#
    )
}

#[test]
fn a_failing_before_script_is_retried_opens_an_alert_and_the_next_success_closes_it() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::start();
    let topic = Topic::create(&env.emulator.endpoint());
    let a = env.aws.run_instance(1, &[]);
    env.config(&config(&a.id, &topic.arn));
    env.ws.write(
        "scripts/before.sh",
        "#!/bin/sh\nif [ -f broken ]; then echo \"cannot freeze $LIFEBOAT_POLICY ($2)\" >&2; exit 2; fi\n",
    );
    let script = env.ws.path().join("scripts/before.sh");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.ws.write("broken", "");
    env.apply();
    env.run(&["--now", "2026-11-22T10:20:00Z", "plan"])
        .ok()
        .stdout_has("Next runs:\n  policy.web  2026-11-22T11:17:00Z");

    // The first attempt fails; its retry waits in the state for one second.
    env.run(&["--now", "2026-11-22T10:20:00Z", "run", "--once"])
        .code(1)
        .stdout_has("attempt_failed")
        .stdout_has("retry_at=2026-11-22T10:20:0")
        .stdout_lacks("alert_open");
    let status = env
        .run(&["--now", "2026-11-22T10:20:30Z", "status", "--json"])
        .ok()
        .json();
    assert_eq!(status[0]["retry"]["attempt"], 2);
    assert_eq!(status[0]["retry"]["slot"], "2026-11-22T10:17:00Z");
    env.run(&["--now", "2026-11-22T10:20:30Z", "status"])
        .ok()
        .stdout_has("(retry 2)");
    // A runner started later makes the retry, the last allowed attempt.
    env.run(&["--now", "2026-11-22T10:21:00Z", "run", "--once"])
        .code(1)
        .stdout_has("backup_start")
        .stdout_has("attempt=2")
        .stdout_has("alert_open")
        .stdout_lacks("attempt_failed");
    // Two attempts, each a backup that is not a valid generation.
    let backups = env.backups(&[]);
    assert_eq!(backups.len(), 2, "{backups:?}");
    assert!(
        backups.iter().all(|b| b["status"] == "partial"),
        "{backups:?}"
    );

    let alerts = env.run(&["alerts", "--json"]).ok().json();
    let alerts = alerts.as_array().unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["policy"], "web");

    let status = env
        .run(&["--now", "2026-11-22T10:30:00Z", "status", "--json"])
        .ok()
        .json();
    assert_eq!(status[0]["policy"], "web");
    assert_eq!(status[0]["last_status"], "partial");
    assert_eq!(status[0]["next_run"], "2026-11-22T11:17:00Z");
    assert_eq!(status[0]["consecutive_failures"], 1);
    assert_eq!(status[0]["open_alerts"].as_array().unwrap().len(), 1);
    env.run(&["--now", "2026-11-22T10:30:00Z", "status"])
        .ok()
        .stdout_has("1 open")
        .stdout_has("2026-11-22T11:17:00Z");

    let id = backups[0]["id"].as_str().unwrap();
    env.run(&["backups", "show", id])
        .ok()
        .stdout_has("before  failed  exit status 2")
        .stdout_has(&format!("cannot freeze web ({id})"));

    let sent = topic.drain();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, "Lifeboat alert opened: policy web");
    assert!(
        sent[0].1.starts_with("ALERT OPENED\npolicy: web\n"),
        "{}",
        sent[0].1
    );

    // Fixed: the next slot's run succeeds and closes the alert.
    std::fs::remove_file(env.ws.path().join("broken")).unwrap();
    env.run(&["--now", "2026-11-22T11:20:00Z", "run", "--once"])
        .ok()
        .stdout_has("alert_close");
    let alerts = env.run(&["alerts", "--json"]).ok().json();
    assert!(alerts.as_array().unwrap().is_empty());
    env.run(&["alerts"]).ok().stdout_has("No open alerts.");
    let sent = topic.drain();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, "Lifeboat alert closed: policy web");
    assert!(sent[0].1.contains("ALERT CLOSED\npolicy: web\n"));
}

#[test]
fn a_script_past_its_timeout_is_killed_with_its_children_without_a_kill_program() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::start();
    let topic = Topic::create(&env.emulator.endpoint());
    let a = env.aws.run_instance(1, &[]);
    env.config(&config(&a.id, &topic.arn).replace("timeout = \"10s\"", "timeout = \"1s\""));
    let marker = env.ws.path().join("survived");
    // Absolute paths: the runner below has an empty PATH, and so has the
    // script. The background child is what a group kill must reach.
    env.ws.write(
        "scripts/before.sh",
        &format!(
            "#!/bin/sh\n( /bin/sleep 2; : > {} ) &\nexec /bin/sleep 30\n",
            marker.display()
        ),
    );
    let script = env.ws.path().join("scripts/before.sh");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.apply();

    let started = std::time::Instant::now();
    env.ws
        .run_env(
            &[("PATH", "")],
            &["--now", "2026-11-22T10:20:00Z", "run", "--once"],
        )
        .code(1)
        .stdout_has("before script scripts/before.sh: timed out after 1s and was killed");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let backups = env.backups(&[]);
    let id = backups[0]["id"].as_str().unwrap();
    env.run(&["backups", "show", id])
        .ok()
        .stdout_has("timed out after 1s and was killed");
    // Past the child's own two seconds: it was killed with its group.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert!(!marker.exists(), "the script's child outlived the kill");
}
