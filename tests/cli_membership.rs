//! Membership decided when the work is done: the runner backs up an
//! instance tagged after the last apply, and a target that is terminated
//! leaves its policy at the next backup as `auto_remove_targets` says,
//! with no plan or apply in between. The real binary against the emulator.

mod support;

use support::{at, config, target, Env};

/// The support configuration, run hourly from 00:17.
fn hourly(listed: &[&str], select: bool, auto_remove: &str) -> String {
    config(2, listed, select, auto_remove).replace(
        "  generations = 2\n",
        "  generations = 2\n  schedules   = [schedule.hourly]\n",
    ) + "\nschedule \"hourly\" {\n  start = \"2026-11-22T00:17\"\n  every = \"1h\"\n}\n"
}

/// The JSON run-log events of one `run --once` at `now`.
fn run_once(env: &Env, now: &str) -> Vec<serde_json::Value> {
    let run = env
        .run(&["--now", now, "run", "--once", "--log-format", "json"])
        .ok();
    run.stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn snapshotted(env: &Env) -> Vec<String> {
    let backups = env.backups(&[]);
    let newest = backups.last().expect("a backup");
    newest["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["target"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn an_instance_tagged_after_apply_is_backed_up_by_the_runner_without_an_apply() {
    let env = Env::start();
    let first = env.aws.run_instance(1, &[("team", "web")]).id;
    let late = env.aws.run_instance(1, &[]).id;
    env.config(&hourly(&[], true, "yes"));
    env.apply();
    env.aws.tag(&late, "team", "web");

    let events = run_once(&env, "2026-11-22T01:20:00Z");
    let joined: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "member_joined")
        .collect();
    assert_eq!(joined.len(), 1, "{events:?}");
    assert_eq!(joined[0]["target"], late.as_str());
    assert_eq!(joined[0]["reason"], "tag team=web");
    let mut backed_up = snapshotted(&env);
    backed_up.sort();
    let mut both = vec![first.clone(), late.clone()];
    both.sort();
    assert_eq!(backed_up, both);
    // The state already has it: the plan has nothing to add.
    assert!(env.state_list().contains(&target(&late)));
    env.assert_converged();

    // Untagged, it leaves at the next run, with why.
    env.aws.tag(&late, "team", "db");
    let events = run_once(&env, "2026-11-22T02:20:00Z");
    let left: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "member_left")
        .collect();
    assert_eq!(left.len(), 1, "{events:?}");
    assert_eq!(left[0]["reason"], "no longer matches tag team=web");
    assert_eq!(snapshotted(&env), [first]);
}

#[test]
fn a_terminated_target_leaves_at_the_next_backup_as_auto_remove_targets_says() {
    for mode in ["yes", "alert", "no"] {
        let env = Env::start();
        let gone = env.aws.run_instance(1, &[]).id;
        let stays = env.aws.run_instance(1, &[]).id;
        env.config(&config(2, &[&gone, &stays], false, mode));
        env.apply();
        env.aws.terminate(&gone);

        let run = env.run(&["--now", &at(10), "backup", "web"]);
        let backups = env.backups(&[]);
        let status = backups[0]["status"].as_str().unwrap().to_string();
        let status_rows = env.run(&["--now", &at(10), "status", "--json"]).ok().json();
        let row = &status_rows[0];
        let open = row["open_alerts"].as_array().map_or(0, Vec::len);
        let alerts = row.clone();
        match mode {
            "no" => {
                assert_eq!(status, "partial", "{run}");
                assert!(env.state_list().contains(&target(&gone)));
                // Kept, and every backup says it is missing (a failed run).
                assert!(row["membership_changes"].as_array().unwrap().is_empty());
                assert_eq!(open, 1, "{alerts}");
                assert!(row["open_alerts"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains(&gone));
            }
            _ => {
                assert_eq!(status, "success", "{mode}: {run}");
                run.stdout_has(&format!("left: instance {gone} (target terminated)"));
                assert!(!env.state_list().contains(&target(&gone)), "{mode}");
                assert_eq!(open, usize::from(mode == "alert"), "{mode}: {alerts}");
                assert_eq!(
                    row["membership_changes"][0]["target"],
                    gone.as_str(),
                    "{row}"
                );
            }
        }
    }
}

#[test]
fn no_backup_on_the_resource_and_exclude_keep_instances_out_of_plan_and_backups() {
    let env = Env::start();
    let web = env.aws.run_instance(1, &[("team", "web")]).id;
    let prod = env
        .aws
        .run_instance(1, &[("team", "web"), ("env", "prod")])
        .id;
    let opted = env
        .aws
        .run_instance(1, &[("team", "web"), ("lifeboat:backup", "no-backup")])
        .id;
    let listed = env.aws.run_instance(1, &[("cpm backup", "no-backup")]).id;
    let text = config(2, &[&listed], true, "yes").replace(
        "  auto_remove_targets",
        "  exclude {\n    tag   = \"env\"\n    value = \"prod\"\n  }\n  auto_remove_targets",
    );
    env.config(&text);
    let plan = env.run(&["plan"]).ok();
    plan.stdout_has(&format!(
        "instance {listed} listed in policy.web is not a target: tag cpm backup=no-backup"
    ));
    env.apply();
    let state = env.state_list();
    assert!(state.contains(&target(&web)), "{state:?}");
    for out in [&prod, &opted, &listed] {
        assert!(!state.contains(&target(out)), "{out}: {state:?}");
    }
    env.assert_converged();

    // Opting out later takes a member out at the next backup, with why.
    env.aws.tag(&web, "lifeboat:backup", "no-backup");
    let late = env.aws.run_instance(1, &[("team", "web")]).id;
    let run = env.run(&["--now", &at(10), "backup", "web"]);
    run.stdout_has(&format!(
        "left: instance {web} (tag lifeboat:backup=no-backup)"
    ));
    assert_eq!(snapshotted(&env), [late]);
}

#[test]
fn the_before_script_gets_the_targets_after_membership_is_decided() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::start();
    let first = env.aws.run_instance(1, &[("team", "web")]).id;
    let late = env.aws.run_instance(1, &[]).id;
    let seen = env.ws.path().join("targets.txt");
    let script = env.ws.path().join("before.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$LIFEBOAT_TARGETS\" > '{}'\n",
            seen.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.config(&hourly(&[], true, "yes").replace(
        "  generations = 2\n",
        "  generations = 2\n  scripts {\n    before = \"before.sh\"\n  }\n",
    ));
    env.apply();
    // Tagged after apply: it joins as the backup starts, and the script
    // that runs before the snapshots must be told about it.
    env.aws.tag(&late, "team", "web");

    let events = run_once(&env, "2026-11-22T01:20:00Z");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "member_joined" && e["target"] == late.as_str()),
        "{events:?}"
    );
    let mut got: Vec<String> = std::fs::read_to_string(&seen)
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    got.sort();
    let mut both = vec![first, late];
    both.sort();
    assert_eq!(got, both);
}
