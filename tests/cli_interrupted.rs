//! A backup interrupted mid-way (the process killed after some snapshots
//! exist) is closed by the next `lifeboat backup`: the snapshots AWS has for
//! it are adopted from their tags, nothing is created twice, and the backup
//! is recorded as failed so that it never counts as a generation.

mod support;

use support::{at, config, Env};

#[test]
fn the_next_backup_adopts_the_snapshots_of_an_interrupted_one_and_closes_it() {
    let env = Env::start();
    let a = env.aws.run_instance(2, &[]);
    env.config(&config(2, &[&a.id], false, "yes"));
    env.apply();

    // What a lifeboat killed between CreateSnapshots and its catalog write
    // leaves: a `running` backup in state and tagged snapshots in AWS.
    let id = at(9);
    let orphans: Vec<String> = a
        .volumes
        .iter()
        .map(|v| {
            env.aws.snapshot_volume(
                v,
                &[
                    ("lifeboat:policy", "web"),
                    ("lifeboat:backup-id", &id),
                    ("lifeboat:target", &a.id),
                ],
            )
        })
        .collect();
    let db = env.ws.path().join(".lifeboat/state.db");
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute(
        "INSERT INTO backups (policy, id, account, started, status) VALUES ('web', ?1, 'main', '2026-11-22T09:00:00.000Z', 'running')",
        [&id],
    )
    .unwrap();
    drop(conn);

    env.backup("web", &at(10))
        .stdout_has("left running by an interrupted lifeboat");

    let backups = env.backups(&[]);
    let old = backups
        .iter()
        .find(|b| b["id"] == id.as_str())
        .expect("the interrupted backup is still listed");
    assert_eq!(old["status"], "failed");
    let mut adopted: Vec<String> = old["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    adopted.sort();
    let mut expected = orphans.clone();
    expected.sort();
    assert_eq!(
        adopted, expected,
        "every orphaned snapshot is adopted, none created"
    );
    let new = backups.iter().find(|b| b["id"] == at(10).as_str()).unwrap();
    assert_eq!(new["status"], "success");
    env.assert_converged();
}
