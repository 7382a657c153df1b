//! `lifeboat schedule times` and the schedule checks of `lifeboat validate`.
//! Schedules need no AWS, so these tests run offline.

mod support;

use support::Workspace;

const CONFIG: &str = r#"account "main" {
  regions = ["eu-central-1"]
}

schedule "nightly" {
  time_zone = "Europe/Berlin"
  start     = "2026-10-23T02:30"
  every     = "1d"
}

schedule "hourly" {
  time_zone = "Europe/Berlin"
  start     = "2026-10-25T00:30"
  every     = "1h"
  disable {
    day  = "all"
    from = "04:00"
    to   = "02:00"
  }
}

policy "web" {
  account     = account.main
  generations = 3
  schedules   = [schedule.nightly, schedule.hourly]
  select { tag = "backup" }
}
"#;

fn workspace() -> Workspace {
    let ws = Workspace::offline();
    ws.write("main.lb.hcl", CONFIG);
    ws
}

#[test]
fn a_daily_run_stays_at_local_time_across_the_autumn_change() {
    let run = workspace()
        .run(&[
            "schedule",
            "times",
            "nightly",
            "--from",
            "2026-10-24T00:00:00Z",
            "--next",
            "3d",
        ])
        .ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "2026-10-24 02:30 CEST (+02:00)   2026-10-24T00:30:00Z   nightly",
            "2026-10-25 02:30 CEST (+02:00)   2026-10-25T00:30:00Z   nightly",
            "2026-10-26 02:30 CET (+01:00)    2026-10-26T01:30:00Z   nightly",
        ],
        "{run}"
    );
}

#[test]
fn a_policy_merges_its_schedules_and_names_them() {
    // On the night clocks go back, the hourly schedule runs at 02:30 CEST
    // and 02:30 CET (one hour apart), and the first of them coincides with
    // the nightly run: that instant is listed once, naming both.
    let run = workspace()
        .run(&[
            "schedule",
            "times",
            "policy.web",
            "--from",
            "2026-10-25T00:00:00Z",
            "--next",
            "3h",
            "--json",
        ])
        .ok();
    let rows = run.json();
    let rows = rows.as_array().expect("an array");
    let got: Vec<(String, String, Vec<String>)> = rows
        .iter()
        .map(|r| {
            (
                r["local"].as_str().unwrap().to_string(),
                r["utc"].as_str().unwrap().to_string(),
                r["schedules"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        got,
        [
            (
                "2026-10-25T02:30:00+02:00".to_string(),
                "2026-10-25T00:30:00Z".to_string(),
                s(&["nightly", "hourly"])
            ),
            (
                "2026-10-25T02:30:00+01:00".to_string(),
                "2026-10-25T01:30:00Z".to_string(),
                s(&["hourly"])
            ),
            (
                "2026-10-25T03:30:00+01:00".to_string(),
                "2026-10-25T02:30:00Z".to_string(),
                s(&["hourly"])
            ),
        ],
        "{run}"
    );
    assert_eq!(rows[0]["schedule"], "nightly");
}

#[test]
fn the_default_start_is_the_clock() {
    let run = workspace()
        .run(&[
            "--now",
            "2026-10-26T12:00:00Z",
            "schedule",
            "times",
            "schedule.nightly",
            "--next",
            "1d",
        ])
        .ok();
    assert_eq!(
        run.stdout.trim(),
        "2026-10-27 02:30 CET (+01:00)   2026-10-27T01:30:00Z   nightly",
        "{run}"
    );
}

#[test]
fn an_unknown_schedule_is_an_error() {
    let run = workspace().run(&["schedule", "times", "weekly"]).code(1);
    run.stderr_has("no schedule \"weekly\"");
    let run = workspace().run(&["schedule", "times", "policy.db"]).code(1);
    run.stderr_has("no policy \"db\"");
}

#[test]
fn a_broken_schedule_is_reported_with_its_position() {
    let ws = Workspace::offline();
    ws.write(
        "main.lb.hcl",
        "schedule \"weekly\" {\n  time_zone = \"Europe/Berlim\"\n  start     = \"2026-01-05T10:00\"\n  every     = \"1w\"\n  days      = [\"mon\"]\n}\n",
    );
    let run = ws.run(&["validate"]).code(1);
    run.stderr_has("main.lb.hcl:2:15: error: Unknown time zone")
        .stderr_has("did you mean \"Europe/Berlin\"?")
        .stderr_has("main.lb.hcl:5:15: error: Days not allowed");
    let run = ws.run(&["schedule", "times", "weekly"]).code(1);
    run.stderr_has("main.lb.hcl:2:15: error: Unknown time zone");
}

#[test]
fn validate_warns_about_an_expired_schedule() {
    let ws = workspace();
    ws.edit(
        "main.lb.hcl",
        "  every     = \"1d\"\n",
        "  every     = \"1d\"\n  expires   = \"2026-11-01T00:00\"\n",
    );
    let run = ws.run(&["--now", "2026-12-01T00:00:00Z", "validate"]).ok();
    run.stdout_has("Configuration is valid.")
        .stderr_has("main.lb.hcl:5:1: warning: Schedule expired");
    let run = ws.run(&["--now", "2026-10-30T00:00:00Z", "validate"]).ok();
    assert!(!run.stderr.contains("Schedule expired"), "{run}");
}
