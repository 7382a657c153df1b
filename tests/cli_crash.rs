//! Restart safety: the process dies (abort, as `kill -9` would) at the
//! dangerous points of a backup and of an apply, and the next run recovers:
//! snapshots that exist are adopted, none is created twice, no catalog
//! record is lost, and the plan converges. A runner interrupted twice
//! stops at once, mid-backup, with the same guarantee.

mod support;

use support::{at, config, Env};

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn catalog_snapshots(backup: &serde_json::Value) -> Vec<String> {
    sorted(
        backup["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect(),
    )
}

#[test]
fn a_backup_killed_at_any_point_is_recovered_by_the_next_one() {
    for point in [
        "backup-started",
        "backup-created",
        "backup-batched",
        "backup-before-finish",
    ] {
        let env = Env::start();
        let a = env.aws.run_instance(2, &[]);
        let b = env.aws.run_instance(1, &[]);
        env.config(&config(3, &[&a.id, &b.id], false, "yes"));
        env.apply();

        let crashed = env.ws.run_env(
            &[("LIFEBOAT_FAILPOINT", point)],
            &["--now", &at(10), "backup", "web"],
        );
        assert_ne!(crashed.code, 0, "{point}: {crashed}");
        assert!(crashed.stderr.contains("failpoint"), "{point}: {crashed}");

        env.backup("web", &at(11))
            .stdout_has("left running by an interrupted lifeboat");
        let backups = env.backups(&[]);
        let first = backups
            .iter()
            .find(|x| x["id"] == at(10).as_str())
            .expect("the killed backup is not lost");
        assert_eq!(first["status"], "failed", "{point}");
        // Every snapshot AWS holds for the killed backup is in the catalog, once.
        assert_eq!(
            catalog_snapshots(first),
            sorted(env.aws.backup_snapshot_ids(&at(10))),
            "{point}"
        );
        let second = backups.iter().find(|x| x["id"] == at(11).as_str()).unwrap();
        assert_eq!(second["status"], "success", "{point}");
        assert_eq!(
            catalog_snapshots(second).len(),
            3,
            "{point}: one snapshot per volume, none twice"
        );
        let in_catalog: usize = backups.iter().map(|x| catalog_snapshots(x).len()).sum();
        assert_eq!(
            env.aws.lifeboat_snapshots().len(),
            in_catalog,
            "{point}: no untracked snapshot"
        );
        env.assert_converged();
    }
}

#[test]
fn an_apply_killed_between_a_delete_and_its_catalog_write_converges_on_the_next_one() {
    let env = Env::start();
    let a = env.aws.run_instance(3, &[]);
    env.config(&config(2, &[&a.id], false, "yes"));
    env.apply();
    env.backup("web", &at(10));
    env.backup("web", &at(11));
    env.ws
        .edit("main.lb.hcl", "generations = 2", "generations = 1");

    let crashed = env.ws.run_env(
        &[("LIFEBOAT_FAILPOINT", "apply-deleted")],
        &["apply", "--auto-approve"],
    );
    assert_ne!(crashed.code, 0, "{crashed}");
    // One snapshot is gone from AWS but still in the catalog; the new plan
    // forgets it instead of failing on it, and deletes the rest.
    let plan = env.run(&["plan"]).ok();
    plan.stdout_has("deleted outside Lifeboat");
    env.apply();
    assert!(env.aws.backup_snapshot_ids(&at(10)).is_empty());
    let ids: Vec<String> = env
        .backups(&[])
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec![at(11)]);
    env.assert_converged();
}

fn scheduled_config(instances: &[&str]) -> String {
    let targets: String = instances
        .iter()
        .map(|i| format!("\n  instance \"{i}\" {{\n    region = \"us-east-1\"\n  }}\n"))
        .collect();
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
  generations = 3
  schedules   = [schedule.hourly]

  retries {{
    count = 1
    wait  = "10m"
  }}
{targets}}}
"#
    )
}

#[test]
fn a_runner_killed_during_a_scheduled_backup_is_reconciled_and_made_again_by_the_next() {
    for point in [
        "backup-before-script",
        "backup-started",
        "backup-created",
        "backup-batched",
        "backup-before-finish",
    ] {
        let env = Env::start();
        let a = env.aws.run_instance(2, &[]);
        let b = env.aws.run_instance(1, &[]);
        env.config(&scheduled_config(&[&a.id, &b.id]));
        env.apply();

        let crashed = env.ws.run_env(
            &[("LIFEBOAT_FAILPOINT", point)],
            &["--now", "2026-11-22T10:20:00Z", "run", "--once"],
        );
        assert_ne!(crashed.code, 0, "{point}: {crashed}");
        assert!(crashed.stderr.contains("failpoint"), "{point}: {crashed}");

        // Restarted a minute later: the slot is spent, but its attempt is
        // still waiting in the state and is made again at once.
        let restarted = env
            .run(&["--now", "2026-11-22T10:21:00Z", "run", "--once"])
            .ok();
        restarted.stdout_has("attempt=1");
        if point != "backup-before-script" {
            restarted.stdout_has("backup_reconciled");
        }
        assert_eq!(
            restarted.stdout.matches("backup_start").count(),
            1,
            "{point}: {restarted}"
        );
        let backups = env.backups(&[]);
        let status: Vec<(&str, &str)> = backups
            .iter()
            .map(|x| (x["id"].as_str().unwrap(), x["status"].as_str().unwrap()))
            .collect();
        if point == "backup-before-script" {
            // Killed before the backup existed: nothing to close, and the
            // attempt is made in full by the next runner.
            assert_eq!(status, [("2026-11-22T10:21:00Z", "success")], "{point}");
            env.assert_converged();
            continue;
        }
        assert_eq!(
            status,
            [
                ("2026-11-22T10:20:00Z", "failed"),
                ("2026-11-22T10:21:00Z", "success")
            ],
            "{point}"
        );
        // Every snapshot AWS holds for the killed backup is in the catalog, once.
        assert_eq!(
            catalog_snapshots(&backups[0]),
            sorted(env.aws.backup_snapshot_ids("2026-11-22T10:20:00Z")),
            "{point}"
        );
        let in_catalog: usize = backups.iter().map(|x| catalog_snapshots(x).len()).sum();
        assert_eq!(env.aws.lifeboat_snapshots().len(), in_catalog, "{point}");

        // Nothing more is due in this hour.
        env.run(&["--now", "2026-11-22T10:40:00Z", "run", "--once"])
            .ok()
            .stdout_lacks("backup_start");
        env.assert_converged();
    }
}

#[test]
fn a_backup_killed_in_its_strict_after_script_never_counts_as_a_success() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    env.config(&format!(
        r#"account "main" {{
  regions = ["us-east-1"]
}}

policy "web" {{
  account     = account.main
  generations = 2
  success     = "strict"

  scripts {{
    after   = "scripts/after.sh"
    timeout = "30s"
  }}

  instance "{}" {{
    region = "us-east-1"
  }}
}}
"#,
        a.id
    ));
    // The first time, the script kills the lifeboat that runs it (its
    // parent) and keeps sleeping: the process dies during the after script,
    // as a runner killed while it waits for one.
    let marker = env.ws.path().join("killed-once");
    let script = env.ws.path().join("scripts/after.sh");
    std::fs::create_dir_all(script.parent().unwrap()).unwrap();
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ ! -e '{m}' ]; then touch '{m}'; kill -9 $PPID; sleep 5; fi\nexit 0\n",
            m = marker.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.apply();

    let killed = env.run(&["--now", &at(10), "backup", "web"]);
    assert_ne!(killed.code, 0, "{killed}");
    assert!(marker.exists(), "the after script ran: {killed}");

    // Not closed as a success before its script's outcome was known.
    let before = env.backups(&[]);
    assert_eq!(before.len(), 1);
    assert_eq!(before[0]["status"], "running", "{before:?}");

    env.backup("web", &at(11))
        .stdout_has("left running by an interrupted lifeboat");
    let backups = env.backups(&[]);
    let first = backups.iter().find(|x| x["id"] == at(10).as_str()).unwrap();
    assert_eq!(first["status"], "failed", "{backups:?}");
    let second = backups.iter().find(|x| x["id"] == at(11).as_str()).unwrap();
    assert_eq!(second["status"], "success");
    // The killed backup's snapshot is tracked (or gone with retention): no
    // snapshot in AWS is left out of the catalog.
    let in_catalog: usize = backups.iter().map(|x| catalog_snapshots(x).len()).sum();
    assert_eq!(env.aws.lifeboat_snapshots().len(), in_catalog);
    env.assert_converged();
}

#[test]
fn a_second_interrupt_during_a_drain_stops_the_runner_at_once_and_the_next_run_reconciles() {
    let env = Env::start();
    let a = env.aws.run_instance(2, &[]);
    env.config(&scheduled_config(&[&a.id]));
    env.apply();

    // Held in the middle of the backup, after its create call: a drain
    // would wait for it forever.
    let mut runner = env.ws.spawn_env(
        &[("LIFEBOAT_FAILPOINT", "backup-created:pause")],
        &["--now", "2026-11-22T10:20:00Z", "run"],
        "run.out",
        "run.err",
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !env.ws.read("run.err").contains("paused") {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            env.ws.read("run.err")
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    runner.signal("TERM");
    while !env
        .ws
        .read("run.err")
        .contains("interrupt again to stop at once")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            env.ws.read("run.err")
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        runner.wait(std::time::Duration::from_secs(2)).is_none(),
        "the first signal drains: the runner waits for its backup"
    );
    runner.signal("INT");
    let status = runner
        .wait(std::time::Duration::from_secs(10))
        .expect("a second signal stops the runner at once");
    assert_eq!(status.code(), Some(130), "{}", env.ws.read("run.err"));
    assert!(env
        .ws
        .read("run.err")
        .contains("Interrupted again: stopping now"));

    // The state is whole: the next runner closes the backup, adopts what
    // it made, and makes the attempt again.
    let restarted = env
        .run(&["--now", "2026-11-22T10:21:00Z", "run", "--once"])
        .ok();
    restarted.stdout_has("backup_reconciled");
    let backups = env.backups(&[]);
    let status: Vec<&str> = backups
        .iter()
        .map(|x| x["status"].as_str().unwrap())
        .collect();
    assert_eq!(status, ["failed", "success"]);
    assert_eq!(
        catalog_snapshots(&backups[0]),
        sorted(env.aws.backup_snapshot_ids("2026-11-22T10:20:00Z"))
    );
    env.assert_converged();
}
