//! A backup interrupted mid-way (the process killed after some snapshots
//! exist) is closed by the next `lifeboat backup`: the snapshots AWS has for
//! it are adopted from their tags, nothing is created twice, and the backup
//! is recorded as failed so that it never counts as a generation.

mod support;

use support::{at, config, Env};

/// The description Lifeboat writes on what it makes: its marker.
fn lifeboat_description(policy: &str, backup: &str, target: &str) -> String {
    format!("Lifeboat backup {backup} of policy {policy}, target {target}")
}

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
                &lifeboat_description("web", &id, &a.id),
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

#[test]
fn a_hand_made_ami_carrying_lifeboat_tags_is_never_adopted_nor_deleted() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    env.config(&config(1, &[&a.id], false, "yes"));
    env.apply();

    // Two backups a dead lifeboat left running. Someone tagged a golden AMI
    // by hand with the first one's (guessable) id, without Lifeboat's
    // description; the second started after its AMI, marker and all, was made.
    let guessed = at(9);
    let later = at(8);
    let t9 = [
        ("lifeboat:policy", "web"),
        ("lifeboat:backup-id", guessed.as_str()),
        ("lifeboat:target", a.id.as_str()),
    ];
    let t8 = [
        ("lifeboat:policy", "web"),
        ("lifeboat:backup-id", later.as_str()),
        ("lifeboat:target", a.id.as_str()),
    ];
    let golden = env
        .aws
        .create_image(&a.id, "golden", "the golden image of web", &t9);
    let older = env.aws.create_image(
        &a.id,
        "made-before-its-backup",
        &lifeboat_description("web", &later, &a.id),
        &t8,
    );
    let conn = rusqlite::Connection::open(env.ws.path().join(".lifeboat/state.db")).unwrap();
    conn.execute(
        "INSERT INTO backups (policy, id, account, started, status) VALUES ('web', ?1, 'main', '2026-11-22T09:00:00.000Z', 'running')",
        [&guessed],
    )
    .unwrap();
    // Started an hour from now by the emulator's clock: the AMI predates it.
    let started = (chrono::Utc::now() + chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    conn.execute(
        "INSERT INTO backups (policy, id, account, started, status) VALUES ('web', ?1, 'main', ?2, 'running')",
        [&later, &started],
    )
    .unwrap();
    drop(conn);

    env.backup("web", &at(10))
        .stdout_has("left running by an interrupted lifeboat");
    env.backup("web", &at(11));
    let backups = env.backups(&[]);
    let in_catalog: Vec<&str> = backups
        .iter()
        .flat_map(|b| b["snapshots"].as_array().unwrap())
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(!in_catalog.contains(&golden.as_str()), "{in_catalog:?}");
    assert!(!in_catalog.contains(&older.as_str()), "{in_catalog:?}");
    // Retention (one generation) has run twice and a plan converges: the
    // AMIs are still there.
    env.assert_converged();
    assert!(env.aws.image_exists(&golden), "the golden AMI survives");
    assert!(env.aws.image_exists(&older));
}
