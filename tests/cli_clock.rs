//! Clocks do not rank backups: retention keeps the backups taken last, in
//! the order the state numbered them, whatever their start times say; and a
//! time the state holds in its future (a `--now` ahead, a clock set back
//! since) neither stops the runner nor goes unnoticed.

mod support;

use support::{at, config, Env};

fn config_hourly(instance: &str) -> String {
    config(2, &[instance], false, "yes").replace(
        "  generations = 2\n",
        "  generations = 2\n  schedules   = [schedule.hourly]\n",
    ) + "\nschedule \"hourly\" {\n  start = \"2026-11-22T00:17\"\n  every = \"1h\"\n}\n"
}

#[test]
fn a_backup_dated_in_the_future_is_still_the_oldest_and_the_runner_runs_on() {
    let env = Env::start();
    let i = env.aws.run_instance(1, &[]);
    env.config(&config_hourly(&i.id));
    env.apply();
    // A runner with its clock years ahead takes a backup and records its slot.
    env.run(&["--now", "2030-01-01T00:20:00Z", "run", "--once"])
        .ok()
        .stdout_has("backup_start");
    let future = env.backups(&[]);
    assert_eq!(future.len(), 1);
    let future_id = future[0]["id"].as_str().unwrap().to_string();

    // Back to the right time: the plan and status say what they see...
    let plan = env.run(&["--now", &at(1), "plan"]).ok();
    plan.stdout_has("started after now");
    let status = env.run(&["--now", &at(1), "status"]).ok();
    status.stderr_has("the last run of web");
    // ...and the runner still runs the slot due now.
    env.run(&["--now", "2026-11-22T01:20:00Z", "run", "--once"])
        .ok()
        .stdout_has("slot=2026-11-22T01:17:00Z");
    env.backup("web", &at(2));

    // Three whole backups, two generations: the one taken first goes,
    // although its start time is the newest.
    let ids: Vec<String> = env
        .backups(&[])
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(!ids.contains(&future_id), "{ids:?}");
}
