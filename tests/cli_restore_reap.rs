//! A restore killed midway, end to end: the real binary against the
//! emulator is killed (failpoint `restore-launched`) after its instance
//! launched from the image it registered, before it deregistered that
//! image; `lifeboat restores` shows it running with its holder gone and
//! changes nothing; the next writing restore command, or the runner's next
//! look, reaps it (the image deregistered, the record failed saying how to
//! go on), and the saved plan, applied again as the problem says, finishes
//! it. Shares across
//! accounts are the fake's (engine/tests/unit_share_holders.rs): the
//! emulator has one account.

mod support;

use support::{at, Env};

const POLL: (&str, &str) = ("LIFEBOAT_RESTORE_POLL_MS", "50");

fn config(id: &str) -> String {
    format!(
        r#"account "main" {{
  regions = ["us-east-1"]
}}

policy "web" {{
  account     = account.main
  generations = 3
  instance "{id}" {{
    region = "us-east-1"
    mode   = "snapshots"
  }}
}}
"#
    )
}

fn created(record: &serde_json::Value, kind: &str) -> Vec<String> {
    record["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == kind)
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// A restore of a terminated instance saved to `restore.json`, applied
/// and killed once its instance is launched and recorded; returns the
/// instance id and the launch image and instance it left.
fn killed_restore(env: &Env) -> (String, String, String) {
    let i = env.aws.run_instance(2, &[("Name", "web-1")]);
    env.config(&config(&i.id));
    env.apply();
    env.backup("web", &at(10));
    env.aws.terminate(&i.id);
    env.run(&[
        "restore",
        "instance",
        &i.id,
        "--private-ip",
        "auto",
        "--out",
        "restore.json",
    ])
    .ok();
    let killed = env.ws.run_env(
        &[POLL, ("LIFEBOAT_FAILPOINT", "restore-launched")],
        &["apply", "restore.json"],
    );
    assert_ne!(killed.code, 0, "{killed}");
    let listed = env.run(&["restores", "--json"]).ok().json();
    assert_eq!(listed[0]["status"], "running", "{listed}");
    let image = created(&listed[0], "image")[0].clone();
    let instance = created(&listed[0], "instance")[0].clone();
    assert!(env.aws.image_exists(&image), "the launch image is left");
    (i.id, image, instance)
}

#[test]
fn a_restore_killed_after_its_launch_is_reaped_by_the_next_restore_command() {
    let env = Env::start();
    let (original, image, instance) = killed_restore(&env);

    // Reading changes nothing; it says the holder is gone.
    env.run(&["restores"])
        .ok()
        .stdout_has("running (holder gone)");
    assert!(env.aws.image_exists(&image));
    let listed = env.run(&["restores", "--json"]).ok().json();
    assert_eq!(listed[0]["status"], "running", "{listed}");

    // The next restore reaps it first.
    let next = env.ws.run_env(
        &[POLL],
        &[
            "restore",
            "instance",
            &original,
            "--private-ip",
            "auto",
            "--auto-approve",
        ],
    );
    next.ok()
        .stdout_has("left running by a stopped process")
        .stdout_has("let go of");
    assert!(!env.aws.image_exists(&image), "{image} is still registered");
    let listed = env.run(&["restores", "--json"]).ok().json();
    let reaped = &listed[0];
    assert_eq!(reaped["status"], "failed", "{listed}");
    let problem = reaped["problem"].as_str().unwrap();
    for said in [
        "interrupted",
        "stopped before it finished",
        "lifeboat apply",
    ] {
        assert!(problem.contains(said), "{problem}");
    }
    // What it created stays: the operator's now.
    assert_eq!(env.aws.instance(&instance).state, "running");
    assert_eq!(listed[1]["status"], "completed", "{listed}");

    // As the problem says: the saved plan applied again finishes it,
    // adopting the instance it launched.
    env.ws
        .run_env(&[POLL], &["apply", "restore.json"])
        .ok()
        .stdout_has("completed");
    let listed = env.run(&["restores", "--json"]).ok().json();
    assert_eq!(listed[0]["status"], "completed", "{listed}");
    assert_eq!(created(&listed[0], "instance"), vec![instance]);
}

#[test]
fn the_runner_reaps_a_restore_killed_after_its_launch() {
    let env = Env::start();
    let (_, image, instance) = killed_restore(&env);
    env.ws
        .run_env(&[POLL], &["run", "--once"])
        .ok()
        .stdout_has("restore_reaped");
    assert!(!env.aws.image_exists(&image), "{image} is still registered");
    let listed = env.run(&["restores", "--json"]).ok().json();
    assert_eq!(listed[0]["status"], "failed", "{listed}");
    assert!(
        listed[0]["problem"]
            .as_str()
            .unwrap()
            .contains("stopped before it finished"),
        "{listed}"
    );
    assert_eq!(env.aws.instance(&instance).state, "running");
}
