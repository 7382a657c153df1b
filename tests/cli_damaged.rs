//! A backup missing any artifact, of any kind, is damaged and never counts
//! as a generation, in the runner's retention as in `plan`: with
//! `generations = 2` and backups S1, S2, S3 where S3 lost an artifact
//! outside Lifeboat, the runner's S4 leaves S2 in place (S3 is not a whole
//! copy, so S2 is the second generation).

mod support;

use support::targets::Rds;
use support::{Env, Run};

fn config(instance: &str, mode: &str, rds: bool) -> String {
    let db = if rds {
        "\n  rds \"orders-db\" {\n    region = \"us-east-1\"\n  }"
    } else {
        ""
    };
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
  generations = 2
  schedules   = [schedule.hourly]

  instance "{instance}" {{
    region = "us-east-1"
    mode   = "{mode}"
  }}{db}
}}
"#
    )
}

/// The runner, once, at `hour`:20: the hourly slot at `hour`:17 is due.
fn run_at(env: &Env, hour: u32) -> Run {
    env.run(&[
        "--now",
        &format!("2026-11-22T{hour:02}:20:00Z"),
        "run",
        "--once",
    ])
    .ok()
}

fn slot(hour: u32) -> String {
    format!("2026-11-22T{hour:02}:17:00Z")
}

/// Backup ids and statuses, oldest first.
fn backups(env: &Env) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = env
        .backups(&[])
        .iter()
        .map(|b| {
            (
                b["id"].as_str().unwrap().to_string(),
                b["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Runs S1..S3, lets `damage` remove part of S3 outside Lifeboat (it
/// returns the lost record's address), runs S4, and checks that S2 stayed
/// while S1 went; the next plan shows the loss, and once applied the
/// catalog calls S3 partial.
fn s2_survives(env: &Env, damage: impl FnOnce(&Env, &str) -> String) {
    for hour in 1..=3 {
        run_at(env, hour);
    }
    let ids: Vec<String> = backups(env).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), 2, "generations = 2 keeps two: {ids:?}");
    let lost = damage(env, &ids[1]);
    run_at(env, 4);
    let after = backups(env);
    let ids: Vec<&str> = after.iter().map(|(id, _)| id.as_str()).collect();
    assert!(
        ids.iter().any(|id| id.starts_with(&slot(2)[..13])),
        "S2 must stay while S3 is damaged: {after:?}"
    );
    assert!(
        !ids.iter().any(|id| id.starts_with(&slot(1)[..13])),
        "S1 is the third whole generation: {after:?}"
    );
    assert_eq!(after.len(), 3, "S2, S3 (damaged) and S4: {after:?}");
    let plan = env.run(&["plan", "--detailed-exitcode"]).code(2);
    plan.plan_line("<=", &lost);
    env.apply();
    let s3 = backups(env)
        .into_iter()
        .find(|(id, _)| id.starts_with(&slot(3)[..13]))
        .expect("S3 stays: it is newer than the oldest kept generation");
    assert_eq!(s3.1, "partial");
    env.assert_converged();
}

#[test]
fn snapshots_deleted_outside_lifeboat_make_a_backup_that_does_not_count() {
    let env = Env::start();
    let i = env.aws.run_instance(2, &[]);
    env.config(&config(&i.id, "snapshots", false));
    env.apply();
    s2_survives(&env, |env, s3| {
        let ids = env.aws.backup_snapshot_ids(s3);
        env.aws.delete_snapshot(&ids[0]);
        support::snapshot(&ids[0])
    });
}

#[test]
fn an_ami_deregistered_outside_lifeboat_makes_a_backup_that_does_not_count() {
    let env = Env::start();
    let i = env.aws.run_instance(1, &[]);
    env.config(&config(&i.id, "ami", false));
    env.apply();
    s2_survives(&env, |env, s3| {
        let ami = env
            .aws
            .lifeboat_images()
            .into_iter()
            .find(|a| a.tags.get("lifeboat:backup-id").map(String::as_str) == Some(s3))
            .expect("S3's AMI");
        env.aws.deregister_image(&ami.id);
        format!("image[\"{}\"]", ami.id)
    });
}

#[test]
fn a_db_snapshot_deleted_outside_lifeboat_makes_a_backup_that_does_not_count() {
    let env = Env::start();
    let rds = Rds::new(&env.emulator);
    rds.create_instance("orders-db");
    let i = env.aws.run_instance(1, &[]);
    env.config(&config(&i.id, "snapshots", true));
    env.apply();
    s2_survives(&env, |_, s3| {
        let snap = rds
            .db_snapshots()
            .into_iter()
            .find(|s| s.tags.get("lifeboat:backup-id").map(String::as_str) == Some(s3))
            .expect("S3's DB snapshot");
        rds.delete_db_snapshot(&snap.id);
        format!("db_snapshot[\"{}\"]", snap.id)
    });
}
