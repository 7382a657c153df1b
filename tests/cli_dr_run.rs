//! DR copies in run mode against the emulator: the runner copies a
//! scheduled backup in the background and logs it, finishes the copies
//! `lifeboat backup --no-wait-dr` left in progress, and a runner killed
//! right after a copy call (before the copy was recorded) is followed by
//! one that adopts that copy instead of copying again.

mod support;

use support::{Aws, Env};

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
  dr {{
    regions = ["us-west-2"]
  }}
}}
"#
    )
}

fn copies_in_west(env: &Env) -> Vec<support::Snapshot> {
    Aws::in_region(&env.emulator, "us-west-2").describe_tagged_key("lifeboat:dr-source")
}

#[test]
fn the_runner_copies_a_scheduled_backup_and_logs_it() {
    let env = Env::start();
    let i = env.aws.run_instance(1, &[]);
    env.config(&config(&i.id));
    env.apply();
    env.run(&[
        "--now",
        "2026-11-22T10:20:00Z",
        "run",
        "--once",
        "--log-format",
        "json",
    ])
    .ok()
    .stdout_has("\"event\":\"dr_copied\"")
    .stdout_has("\"destination\":\"us-west-2:main\"");
    assert_eq!(copies_in_west(&env).len(), 1);
}

#[test]
fn copies_left_in_progress_by_backup_no_wait_dr_are_finished_by_the_runner() {
    let env = Env::start();
    let i = env.aws.run_instance(1, &[]);
    env.config(&config(&i.id));
    env.apply();
    env.run(&[
        "--now",
        "2026-11-22T10:00:00Z",
        "backup",
        "web",
        "--no-wait-dr",
    ])
    .ok()
    .stdout_has("to us-west-2:main: in progress");
    env.run(&["backups"])
        .ok()
        .stdout_has("us-west-2:main in progress");
    // (The runner also takes the 09:17 slot it finds missed, with its own copy.)
    env.run(&["--now", "2026-11-22T10:05:00Z", "run", "--once"])
        .ok()
        .stdout_has("dr_copied");
    let shown = env
        .run(&["backups", "show", "2026-11-22T10:00:00Z", "--json"])
        .ok()
        .json();
    assert_eq!(shown["dr"][0]["status"], "completed", "{shown}");
    let copies: Vec<_> = copies_in_west(&env)
        .into_iter()
        .filter(|s| s.tags["lifeboat:dr-backup-id"] == "2026-11-22T10:00:00Z")
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
}

#[test]
fn a_runner_killed_after_a_copy_call_is_followed_by_one_that_adopts_the_copy() {
    let env = Env::start();
    let i = env.aws.run_instance(1, &[]);
    env.config(&config(&i.id));
    env.apply();
    let killed = env.ws.run_env(
        &[("LIFEBOAT_FAILPOINT", "dr-copied")],
        &["--now", "2026-11-22T10:20:00Z", "run", "--once"],
    );
    assert!(killed.all().contains("failpoint dr-copied"), "{killed}");
    let made = copies_in_west(&env);
    assert_eq!(made.len(), 1, "the copy call was made: {made:?}");
    let b = &env.backups(&[])[0];
    assert_eq!(b["dr"][0]["status"], "in_progress", "{b}");

    env.run(&["--now", "2026-11-22T10:25:00Z", "run", "--once"])
        .ok()
        .stdout_has("dr_copied");
    let after = copies_in_west(&env);
    assert_eq!(after.len(), 1, "not copied twice: {after:?}");
    assert_eq!(after[0].id, made[0].id);
    let shown = env
        .run(&["backups", "show", b["id"].as_str().unwrap(), "--json"])
        .ok()
        .json();
    assert_eq!(shown["dr"][0]["status"], "completed", "{shown}");
    assert_eq!(shown["dr_copies"][0]["id"], made[0].id.as_str());
}
