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
    env.run(&["plan"]).ok();
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
