//! Commands that only read the state never write, create or migrate it:
//! `plan`, `status`, `backups`, `state list`... An older state is read as
//! it is and migrated by the next writing command, which first keeps a
//! copy aside; a newer one is refused by both kinds.

mod support;

use lifeboat_engine::state::{create_at_version, SCHEMA_VERSION};
use support::{config, Env};

fn state_db(env: &Env) -> std::path::PathBuf {
    env.ws.path().join(".lifeboat/state.db")
}

#[test]
fn a_plan_on_no_state_creates_none_and_its_saved_plan_applies() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    env.config(&config(1, &[&a.id], false, "yes"));
    env.run(&["plan", "--out", "first.plan"]).ok();
    env.run(&["status"]).ok();
    assert!(
        !env.ws.path().join(".lifeboat").exists(),
        "a reading command made the state's directory"
    );
    // The first apply makes the state, and the plan made before it is its.
    env.run(&["apply", "first.plan", "--auto-approve"]).ok();
    assert!(env.state_list().contains(&"policy.web".to_string()));
    env.assert_converged();

    // A plan made on no state never applies to a state with a history.
    let other = Env::start();
    other.config(&config(1, &[&a.id], false, "yes"));
    other.run(&["plan", "--out", "unborn.plan"]).ok();
    std::fs::copy(
        other.ws.path().join("unborn.plan"),
        env.ws.path().join("unborn.plan"),
    )
    .unwrap();
    env.run(&["apply", "unborn.plan", "--auto-approve"])
        .code(1)
        .stderr_has("stale");
}

#[test]
fn reading_commands_leave_an_older_state_as_it_is_and_a_writing_one_migrates_it() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    env.config(&config(1, &[&a.id], false, "yes"));
    let db = state_db(&env);
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let old = SCHEMA_VERSION - 1;
    create_at_version(&db, old).unwrap();
    let before = std::fs::read(&db).unwrap();

    let plan = env.run(&["plan"]).ok();
    plan.stderr_has("older than this Lifeboat")
        .stderr_has(&format!(".bak-{old}"));
    env.run(&["status"]).ok();
    env.run(&["backups"]).ok();
    env.run(&["state", "list"]).ok();
    env.run(&["drills"]).ok();
    env.run(&["dr", "expired"]).ok();
    env.run(&["rc", "log"]).ok();
    assert!(
        std::fs::read(&db).unwrap() == before,
        "the state file changed"
    );
    let aside = db.with_file_name(format!("state.db.bak-{old}"));
    assert!(!aside.exists(), "only a writing command keeps a copy aside");
    let version = |p: &std::path::Path| -> i64 {
        rusqlite::Connection::open(p)
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    };
    // No account id is recorded by a reading command.
    let ids: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM account_ids", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ids, 0);

    env.apply();
    assert_eq!(version(&db), SCHEMA_VERSION);
    assert_eq!(version(&aside), old, "the copy aside is the old state");
    let ids: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM account_ids", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ids, 1, "the writing command records the account id");
}

#[test]
fn a_state_of_a_newer_schema_is_refused_by_reading_and_writing_commands() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    env.config(&config(1, &[&a.id], false, "yes"));
    env.apply();
    let db = state_db(&env);
    rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    let before = std::fs::read(&db).unwrap();
    for args in [&["plan"][..], &["status"], &["apply", "--auto-approve"]] {
        env.run(args).code(1).stderr_has("newer Lifeboat");
    }
    assert!(
        std::fs::read(&db).unwrap() == before,
        "the state file changed"
    );
}

#[test]
fn state_pull_copies_a_sqlite_state_and_refuses_when_there_is_none() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    env.config(&config(1, &[&a.id], false, "yes"));
    env.run(&["state", "pull", "--out", "none.db"])
        .code(1)
        .stderr_has("no state");
    assert!(!env.ws.path().join("none.db").exists(), "no file left");
    env.apply();
    env.run(&["state", "pull", "--out", "copy.db"]).ok();
    let copy = env.ws.path().join("copy.db");
    let objects: i64 = rusqlite::Connection::open(&copy)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM objects", [], |r| r.get(0))
        .unwrap();
    assert!(objects >= 3, "the copy holds the state: {objects} objects");
}
