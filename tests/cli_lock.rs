//! The state lock seen from the command line: a second writer is refused
//! with the holder and the lock ID, and `force-unlock` breaks a lock whose
//! holder is gone.

mod support;

use support::{config, Env};

/// Plants a lock as a lifeboat process that died mid-apply would leave it.
fn plant_lock(env: &Env, id: &str) {
    let db = env.ws.path().join(".lifeboat/state.db");
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute(
        "INSERT INTO lock (slot, id, holder, operation, acquired, expires)
         VALUES (1, ?1, 'ops@runner-7 (pid 4242)', 'apply', '2026-11-22T09:00:00.000Z', '2999-01-01T00:00:00.000Z')",
        [id],
    )
    .unwrap();
}

#[test]
fn a_held_lock_refuses_apply_and_backup_and_force_unlock_breaks_it() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    env.config(&config(2, &[&a.id], false, "yes"));
    // A plan only reads: `state init` makes the state file.
    env.run(&["state", "init"]).ok();
    plant_lock(&env, "lock-1234");

    let refused = env.run(&["apply", "--auto-approve"]).code(1);
    refused.stderr_has("locked by ops@runner-7 (pid 4242)");
    refused.stderr_has("lifeboat force-unlock lock-1234");
    assert!(
        env.state_list().is_empty(),
        "a refused apply changes nothing"
    );
    env.run(&["backup", "web"]).code(1).stderr_has("lock-1234");

    env.run(&["force-unlock", "wrong-id"])
        .code(1)
        .stderr_has("no lock with ID wrong-id");
    env.run(&["force-unlock", "lock-1234"])
        .ok()
        .stdout_has("Broke the lock lock-1234");
    env.apply();
    env.assert_converged();
}

#[test]
fn with_lock_timeout_a_held_lock_is_waited_for_and_the_refusal_names_the_holder_and_the_wait() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    env.config(&config(2, &[&a.id], false, "yes"));
    // A plan only reads: `state init` makes the state file.
    env.run(&["state", "init"]).ok();
    plant_lock(&env, "lock-1234");

    let started = std::time::Instant::now();
    let refused = env
        .run(&["apply", "--auto-approve", "--lock-timeout", "1s"])
        .code(1);
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_secs(1) && took < std::time::Duration::from_secs(10),
        "gave up after {took:?}"
    );
    refused.stderr_has(
        "Waiting for the state lock: held by ops@runner-7 (pid 4242) for apply since 2026-11-22T09:00:00.000Z (lock ID lock-1234); giving up at ",
    );
    refused.stderr_has("lifeboat force-unlock lock-1234` (waited 1s)");
    assert_eq!(
        refused.stderr.matches("Waiting for the state lock").count(),
        1,
        "said once at the start: {refused}"
    );
    assert!(
        env.state_list().is_empty(),
        "a refused apply changes nothing"
    );

    // Without the flag the refusal is immediate and says nothing of waiting.
    let at_once = env.run(&["apply", "--auto-approve"]).code(1);
    assert!(!at_once.stderr.contains("Waiting"), "{at_once}");
    assert!(!at_once.stderr.contains("waited"), "{at_once}");
    env.run(&["backup", "web", "--lock-timeout", "1s"])
        .code(1)
        .stderr_has("(waited 1s)");
    env.run(&["apply", "--lock-timeout", "soon"])
        .code(2)
        .stderr_has("is not a duration");
}

#[test]
fn apply_with_lock_timeout_goes_ahead_once_a_backup_holding_the_lock_ends() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    // The before script holds the backup, and with it the state lock, until
    // the apply below is waiting.
    let policy = format!(
        "account \"main\" {{\n  regions = [\"us-east-1\"]\n}}\n\npolicy \"web\" {{\n  account     = account.main\n  generations = 2\n  scripts {{\n    before  = \"scripts/before.sh\"\n    timeout = \"1m\"\n  }}\n  instance \"{}\" {{ region = \"us-east-1\" }}\n}}\n",
        a.id
    );
    env.config(&policy);
    env.ws
        .write("scripts/before.sh", "#!/bin/sh\ntouch started\nsleep 4\n");
    let script = env.ws.path().join("scripts/before.sh");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.apply();

    std::thread::scope(|s| {
        let backup = s.spawn(|| env.run(&["backup", "web"]));
        let started = env.ws.path().join("started");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !started.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the backup never ran its script"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        env.ws
            .edit("main.lb.hcl", "generations = 2", "generations = 3");
        let apply = env
            .run(&["apply", "--auto-approve", "--lock-timeout", "60s"])
            .ok();
        apply.stderr_has("Waiting for the state lock: held by ");
        apply.stderr_has(" for backup since ");
        apply.stdout_has("policy.web");
        // The apply went in only after the backup let go of the lock.
        let backup = backup.join().unwrap().ok();
        backup.stdout_has("web");
    });
    let status = env.backups(&[]);
    assert_eq!(status.len(), 1, "{status:?}");
    assert_eq!(status[0]["status"], "success");
    env.assert_converged();
}
