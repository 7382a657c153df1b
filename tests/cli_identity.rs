//! Account identity from the command line: the AWS account id an account's
//! credentials reach is recorded on first use, and `plan` and `backup`
//! refuse, naming the account and both ids, when the credentials reach
//! another account than the pinned or recorded one; nothing changes then,
//! in the state or in AWS.

mod support;

use support::{at, config, Env, ACCOUNT_ID};

fn db(env: &Env) -> rusqlite::Connection {
    rusqlite::Connection::open(env.ws.path().join(".lifeboat/state.db")).unwrap()
}

fn recorded_id(env: &Env) -> Option<String> {
    db(env)
        .query_row(
            "SELECT account_id FROM account_ids WHERE account = 'main'",
            [],
            |r| r.get(0),
        )
        .ok()
}

fn serial(env: &Env) -> String {
    db(env)
        .query_row("SELECT value FROM meta WHERE key = 'serial'", [], |r| {
            r.get(0)
        })
        .unwrap()
}

/// One applied policy over one instance, backed up once at 10:00.
fn backed_up() -> Env {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    env.config(&config(1, &[&a.id], false, "yes"));
    env.apply();
    env.backup("web", &at(10));
    env
}

/// `plan` and `backup` are refused naming `expected`, and neither the
/// state nor AWS changes.
#[track_caller]
fn refused(env: &Env, expected: &str, why: &str) {
    let (before_serial, before_snaps) = (serial(env), env.aws.count_snapshots());
    let plan = env.run(&["plan"]).code(1);
    for needle in ["\"main\"", ACCOUNT_ID, expected, why] {
        plan.stderr_has(needle);
    }
    let backup = env.run(&["--now", &at(11), "backup", "web"]).code(1);
    for needle in ["\"main\"", ACCOUNT_ID, expected, why] {
        backup.stderr_has(needle);
    }
    assert_eq!(serial(env), before_serial, "the state did not change");
    assert_eq!(env.backups(&[]).len(), 1, "no backup was recorded");
    assert_eq!(
        env.aws.count_snapshots(),
        before_snaps,
        "AWS did not change"
    );
}

#[test]
fn the_first_use_records_the_account_id_and_a_pin_to_another_account_refuses_plan_and_backup() {
    let env = backed_up();
    assert_eq!(recorded_id(&env).as_deref(), Some(ACCOUNT_ID));

    env.ws.edit(
        "main.lb.hcl",
        "  regions = [\"us-east-1\"]\n",
        "  regions    = [\"us-east-1\"]\n  account_id = \"999999999999\"\n",
    );
    refused(&env, "999999999999", "pinned");
    assert_eq!(recorded_id(&env).as_deref(), Some(ACCOUNT_ID));

    // The right pin: everything works again.
    env.ws.edit("main.lb.hcl", "999999999999", ACCOUNT_ID);
    env.apply();
    env.backup("web", &at(12));
    env.assert_converged();
}

#[test]
fn credentials_that_reach_another_account_than_the_recorded_one_are_refused() {
    let env = backed_up();
    // As if the profile now reached another account: the state says the
    // account was first used as 555555555555.
    db(&env)
        .execute(
            "UPDATE account_ids SET account_id = '555555555555' WHERE account = 'main'",
            [],
        )
        .unwrap();
    refused(&env, "555555555555", "recorded");
    assert_eq!(recorded_id(&env).as_deref(), Some("555555555555"));
}
