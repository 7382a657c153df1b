//! AMI and database targets end to end: an instance in `ami` mode, an RDS
//! instance and an Aurora cluster are backed up by the real binary against
//! the emulator with their `lifeboat:*` tags (the AMI's snapshots too), and
//! lowering `generations` previews then deletes the older generation.

mod support;

use support::targets::Rds;
use support::{at, Env};

const CONFIG: &str = r#"account "main" {
  regions = ["us-east-1"]
}

policy "web" {
  account     = account.main
  generations = 2

  instance "INSTANCE" {
    region = "us-east-1"
    mode   = "ami"
  }
  rds "orders-db" {
    region = "us-east-1"
  }
  aurora "orders-cluster" {
    region = "us-east-1"
  }
}
"#;

#[test]
fn ami_rds_and_aurora_backups_are_tagged_and_retention_deletes_them() {
    let env = Env::start();
    let rds = Rds::new(&env.emulator);
    let i = env.aws.run_instance(1, &[]);
    rds.create_instance("orders-db");
    rds.create_cluster("orders-cluster");
    env.config(&CONFIG.replace("INSTANCE", &i.id));
    env.apply();
    env.assert_converged();

    env.backup("web", &at(10));
    env.backup("web", &at(11));
    let backups = env.backups(&[]);
    assert_eq!(backups.len(), 2, "{backups:?}");
    for b in &backups {
        assert_eq!(b["status"], "success", "{b}");
    }

    // Two AMIs, each tagged at creation, their snapshots tagged afterwards.
    let amis = env.aws.lifeboat_images();
    assert_eq!(amis.len(), 2, "{amis:?}");
    let old_ami = amis
        .iter()
        .find(|a| a.tags.get("lifeboat:backup-id") == Some(&at(10)))
        .expect("the first backup's AMI")
        .clone();
    for a in &amis {
        assert_eq!(a.tags["lifeboat:policy"], "web");
        assert_eq!(a.tags["lifeboat:target"], i.id);
        assert!(!a.snapshot_ids.is_empty(), "{a:?}");
        for s in &a.snapshot_ids {
            let tags = env.aws.snapshot_tags(s);
            assert_eq!(
                tags.get("lifeboat:backup-id"),
                a.tags.get("lifeboat:backup-id"),
                "{s}"
            );
            assert_eq!(tags.get("lifeboat:target"), Some(&i.id));
        }
    }
    let dbs = rds.db_snapshots();
    let clusters = rds.cluster_snapshots();
    assert_eq!((dbs.len(), clusters.len()), (2, 2), "{dbs:?} {clusters:?}");
    for s in dbs.iter().chain(&clusters) {
        assert_eq!(s.tags["lifeboat:policy"], "web", "{s:?}");
        assert_eq!(s.tags["lifeboat:target"], s.source, "{s:?}");
    }

    // Lowering generations: the plan lists the older AMI, its snapshot and
    // the DB snapshots under their backup; apply deletes them in AWS.
    env.ws
        .edit("main.lb.hcl", "generations = 2", "generations = 1");
    let plan = env.run(&["plan", "--detailed-exitcode"]).code(2);
    plan.plan_line("-", &format!("image[\"{}\"]", old_ami.id));
    for s in &old_ami.snapshot_ids {
        plan.plan_line("-", &format!("snapshot[\"{s}\"]"));
    }
    let old_db = dbs
        .iter()
        .find(|s| s.tags["lifeboat:backup-id"] == at(10))
        .unwrap();
    let old_cluster = clusters
        .iter()
        .find(|s| s.tags["lifeboat:backup-id"] == at(10))
        .unwrap();
    plan.plan_line("-", &format!("db_snapshot[\"{}\"]", old_db.id));
    plan.plan_line("-", &format!("db_cluster_snapshot[\"{}\"]", old_cluster.id));
    plan.plan_line("-", &support::backup(&at(10)));

    env.apply();
    let amis = env.aws.lifeboat_images();
    assert_eq!(amis.len(), 1);
    assert_ne!(amis[0].id, old_ami.id);
    for s in &old_ami.snapshot_ids {
        assert!(env.aws.snapshot_tags(s).is_empty(), "{s} was deleted");
    }
    let dbs = rds.db_snapshots();
    let clusters = rds.cluster_snapshots();
    assert_eq!((dbs.len(), clusters.len()), (1, 1), "{dbs:?} {clusters:?}");
    assert_eq!(dbs[0].tags["lifeboat:backup-id"], at(11));
    assert_eq!(clusters[0].tags["lifeboat:backup-id"], at(11));
    assert_eq!(env.backups(&[]).len(), 1);
    env.assert_converged();
}

#[test]
fn initial_ami_makes_one_ami_then_snapshots_and_rotates_it_after_its_days() {
    let env = Env::start();
    let i = env.aws.run_instance(1, &[]);
    env.config(&format!(
        r#"account "main" {{
  regions = ["us-east-1"]
}}

policy "web" {{
  account     = account.main
  generations = 1

  instance "{}" {{
    region       = "us-east-1"
    mode         = "initial_ami"
    ami_rotation = 1
  }}
}}
"#,
        i.id
    ));
    env.apply();
    let first = "2026-11-20T10:00:00Z";
    env.backup("web", first);
    let amis = env.aws.lifeboat_images();
    assert_eq!(amis.len(), 1, "the first backup makes an AMI");
    let first_ami = amis[0].id.clone();

    // Within the rotation: snapshots, and the current AMI survives the
    // retention of its backup (one generation).
    env.backup("web", "2026-11-20T20:00:00Z");
    assert_eq!(env.aws.backup_snapshot_ids("2026-11-20T20:00:00Z").len(), 1);
    let amis = env.aws.lifeboat_images();
    assert_eq!(amis.len(), 1);
    assert_eq!(amis[0].id, first_ami);

    // A day later: a new AMI; the old one is deregistered.
    env.backup("web", "2026-11-21T11:00:00Z");
    let amis = env.aws.lifeboat_images();
    assert_eq!(amis.len(), 1, "{amis:?}");
    assert_ne!(amis[0].id, first_ami);
    assert_eq!(env.backups(&[]).len(), 1);
    env.assert_converged();
}
