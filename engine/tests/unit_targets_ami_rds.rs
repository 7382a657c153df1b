//! Unit tests of AMI modes and database targets over the in-memory fake:
//! one create call per target, tags at creation, retention of AMIs (and
//! their snapshots) and DB snapshots, and `initial_ami` rotation with an
//! injected clock.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use lifeboat_engine::backup;
use lifeboat_engine::cloud::Cloud;
use lifeboat_engine::plan::apply::{self, Executor};
use lifeboat_engine::plan::{observe, planner, render};
use lifeboat_engine::state::{ArtifactKind, BackupStatus, SharedStore, Store};
use lifeboat_engine::testing::fake::FakeCloud;
use lifeboat_schema::Config;

const WAIT: backup::Wait = backup::Wait {
    timeout: std::time::Duration::from_secs(60),
    interval: std::time::Duration::from_millis(1),
};

fn config(generations: u32, body: &str) -> Config {
    let text = format!(
        r#"
account "main" {{
  regions = ["us-east-1"]
}}

policy "db" {{
  account     = account.main
  generations = {generations}
{body}
}}
"#
    );
    lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text)])
        .unwrap_or_else(|d| panic!("{d}"))
        .config
}

const TARGETS: &str = r#"
  instance "i-0000000a" {
    region = "us-east-1"
    mode   = "ami"
  }
  instance "i-0000000b" {
    region = "us-east-1"
    mode   = "ami_reboot"
  }
  rds "orders-db" {
    region = "us-east-1"
  }
  aurora "orders-cluster" {
    region = "us-east-1"
  }
"#;

fn day(n: i64) -> DateTime<Utc> {
    "2026-11-01T10:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::days(n)
}

struct Bench {
    cloud: FakeCloud,
    store: SharedStore,
    _dir: tempfile::TempDir,
}

impl Bench {
    fn new() -> Bench {
        let cloud = FakeCloud::new(2);
        {
            let mut w = cloud.world.lock().unwrap();
            w.add_instance("i-0000000a", "us-east-1", &[], 2);
            w.add_instance("i-0000000b", "us-east-1", &[], 1);
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Mutex::new(
            Store::open(&dir.path().join("state.db")).unwrap(),
        ));
        Bench {
            cloud,
            store,
            _dir: dir,
        }
    }

    fn cloud(&self) -> Arc<dyn Cloud> {
        Arc::new(self.cloud.clone())
    }

    async fn plan(&self, config: &Config, now: DateTime<Utc>) -> lifeboat_engine::plan::Plan {
        let state = self.store.lock().unwrap().load().unwrap();
        let obs = observe::observe(self.cloud(), config, &state)
            .await
            .unwrap();
        planner::plan(config, &state, &obs, now).unwrap()
    }

    async fn apply(&self, config: &Config, now: DateTime<Utc>) {
        let plan = self.plan(config, now).await;
        let state = self.store.lock().unwrap().load().unwrap();
        let exec = Arc::new(Executor {
            cloud: self.cloud(),
            accounts: planner::known_accounts(config, &state).unwrap(),
            store: self.store.clone(),
            now,
            lock_id: None,
            stop: Default::default(),
        });
        let report = apply::apply(&plan, exec, 4, |_, _| {}).await;
        assert_eq!(report.failed(), 0, "{report:?}");
    }

    async fn backup(&self, now: DateTime<Utc>) -> backup::BackupResult {
        backup::run(self.cloud(), self.store.clone(), "db", now, WAIT)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn unit_ami_and_database_targets_take_one_create_call_each_with_their_tags() {
    let b = Bench::new();
    b.apply(&config(2, TARGETS), day(0)).await;
    b.cloud.world.lock().unwrap().calls.clear();
    let r = b.backup(day(0)).await;
    assert_eq!(r.record.status, BackupStatus::Success, "{:?}", r.record);

    let w = b.cloud.world.lock().unwrap();
    assert_eq!(w.calls_of("CreateImage"), 2, "{:?}", w.calls);
    assert_eq!(w.calls_of("CreateSnapshots"), 0);
    assert_eq!(w.calls_of("CreateDBSnapshot"), 1);
    assert_eq!(w.calls_of("CreateDBClusterSnapshot"), 1);
    // One look per kind for all of them; one CreateTags per AMI.
    assert_eq!(w.calls_of("DescribeImages"), 1);
    assert_eq!(w.calls_of("DescribeDBSnapshots"), 1);
    assert_eq!(w.calls_of("DescribeDBClusterSnapshots"), 1);
    assert_eq!(w.calls_of("CreateTags"), 2);
    // `ami` never reboots, `ami_reboot` does.
    let reboots: Vec<(String, bool)> = w
        .image_requests
        .iter()
        .map(|r| (r.instance_id.clone(), r.reboot))
        .collect();
    assert!(reboots.contains(&("i-0000000a".into(), false)));
    assert!(reboots.contains(&("i-0000000b".into(), true)));

    let backup_id = "2026-11-01T10:00:00Z";
    for i in w.images.values() {
        assert_eq!(i.tags["lifeboat:policy"], "db");
        assert_eq!(i.tags["lifeboat:backup-id"], backup_id);
        for s in &i.snapshot_ids {
            let tags = &w.snapshots[s].tags;
            assert_eq!(tags["lifeboat:target"], i.tags["lifeboat:target"]);
            assert_eq!(tags["lifeboat:backup-id"], backup_id);
        }
    }
    assert_eq!(w.db_snapshots.len(), 2);
    for d in w.db_snapshots.values() {
        assert_eq!(d.tags["lifeboat:policy"], "db");
        assert_eq!(d.tags["lifeboat:target"], d.snapshot.source_id);
        assert!(d.snapshot.id.starts_with("lifeboat-db-orders-"));
    }
    let kinds = |k: ArtifactKind| r.record.snapshots.iter().filter(|s| s.kind == k).count();
    assert_eq!(kinds(ArtifactKind::Image), 2);
    assert_eq!(kinds(ArtifactKind::DbSnapshot), 1);
    assert_eq!(kinds(ArtifactKind::DbClusterSnapshot), 1);
    // The AMIs' three EBS snapshots are recorded under their AMI.
    let ebs: Vec<_> = r
        .record
        .snapshots
        .iter()
        .filter(|s| s.kind == ArtifactKind::Ebs)
        .collect();
    assert_eq!(ebs.len(), 3);
    assert!(ebs.iter().all(|s| s.image.is_some()));
}

#[tokio::test]
async fn unit_retention_deregisters_amis_then_deletes_their_snapshots_and_db_snapshots() {
    let b = Bench::new();
    let two = config(2, TARGETS);
    b.apply(&two, day(0)).await;
    b.backup(day(0)).await;
    b.backup(day(1)).await;
    {
        let w = b.cloud.world.lock().unwrap();
        assert_eq!((w.images.len(), w.db_snapshots.len()), (4, 4));
    }

    // Lowering generations: the plan lists what goes, under its backup.
    let one = config(1, TARGETS);
    let plan = b.plan(&one, day(1)).await;
    let text = render::human(&plan);
    assert!(text.contains("image[\"ami-"), "{text}");
    assert!(
        text.contains("db_snapshot[\"lifeboat-db-orders-db-"),
        "{text}"
    );
    assert!(
        text.contains("db_cluster_snapshot[\"lifeboat-db-orders-cluster-"),
        "{text}"
    );
    assert!(text.contains("AMI of i-0000000a"), "{text}");
    assert!(text.contains("snapshot of AMI ami-"), "{text}");
    assert!(
        text.contains("5 snapshot(s) and 2 AMI(s) in 1 backup(s)"),
        "{text}"
    );
    // Every AMI snapshot waits for its AMI to be deregistered.
    for c in &plan.changes {
        if let Some(img) = c
            .before
            .as_ref()
            .map(|v| v.value().into_owned())
            .and_then(|v| v.get("image").cloned())
        {
            let dep = format!("image[{img}]");
            assert!(c.depends_on.iter().any(|d| d.to_string() == dep), "{c:?}");
        }
    }

    b.cloud.world.lock().unwrap().calls.clear();
    b.apply(&one, day(1)).await;
    let w = b.cloud.world.lock().unwrap();
    assert_eq!(w.calls_of("DeregisterImage"), 2);
    assert_eq!(w.calls_of("DeleteSnapshot"), 3);
    assert_eq!(w.calls_of("DeleteDBSnapshot"), 1);
    assert_eq!(w.calls_of("DeleteDBClusterSnapshot"), 1);
    assert_eq!((w.images.len(), w.db_snapshots.len()), (2, 2));
    // The fake refuses to delete an AMI's snapshot before deregistration,
    // so the order was right; nothing of the old backup is left.
    assert_eq!(w.snapshots.len(), 3);
    drop(w);
    let backups = b.store.lock().unwrap().backups(Some("db")).unwrap();
    assert_eq!(backups.len(), 1);
    assert_eq!(backups[0].id, "2026-11-02T10:00:00Z");
}

#[tokio::test]
async fn unit_initial_ami_makes_an_ami_first_then_snapshots_and_rotates_after_its_days() {
    let b = Bench::new();
    let cfg = config(
        1,
        r#"
  instance "i-0000000a" {
    region       = "us-east-1"
    mode         = "initial_ami"
    ami_rotation = 3
  }
"#,
    );
    b.apply(&cfg, day(0)).await;
    let kinds = |r: &backup::BackupResult| {
        r.record
            .snapshots
            .iter()
            .filter(|s| s.image.is_none())
            .map(|s| s.kind)
            .collect::<Vec<_>>()
    };
    let first = b.backup(day(0)).await;
    assert_eq!(kinds(&first), [ArtifactKind::Image]);
    let first_ami = first.record.snapshots[0].id.clone();
    for d in [1, 2] {
        let r = b.backup(day(d)).await;
        assert_eq!(kinds(&r), [ArtifactKind::Ebs, ArtifactKind::Ebs], "day {d}");
    }
    // One generation kept, but the current AMI is kept with it: its backup
    // stays in the catalog (holding only the AMI) while it is current.
    {
        let w = b.cloud.world.lock().unwrap();
        assert_eq!(w.images.keys().collect::<Vec<_>>(), [&first_ami]);
        assert_eq!(w.calls_of("CreateImage"), 1);
    }
    let catalog = b.store.lock().unwrap().backups(Some("db")).unwrap();
    assert_eq!(catalog.len(), 2, "{catalog:?}");
    assert!(catalog[0].snapshots.iter().any(|s| s.id == first_ami));

    // Day 3: the AMI is three days old; a new one replaces it, and the old
    // one (no longer current) goes with its backup.
    let r = b.backup(day(3)).await;
    assert_eq!(kinds(&r), [ArtifactKind::Image]);
    let w = b.cloud.world.lock().unwrap();
    assert_eq!(w.calls_of("CreateImage"), 2);
    assert_eq!(w.images.len(), 1);
    assert!(!w.images.contains_key(&first_ami));
    drop(w);
    let catalog = b.store.lock().unwrap().backups(Some("db")).unwrap();
    assert_eq!(catalog.len(), 1);
    assert!(backup::initial_ami_due(
        &catalog,
        "db",
        "i-0000000a",
        3,
        day(6)
    ));
    assert!(!backup::initial_ami_due(
        &catalog,
        "db",
        "i-0000000a",
        3,
        day(5)
    ));
}

#[tokio::test]
async fn unit_an_interrupted_backup_adopts_its_amis_with_their_snapshots_and_its_db_snapshots() {
    use lifeboat_engine::cloud::{DbSnapshotKind, DbSnapshotRequest, ImageRequest, Tags};
    use lifeboat_engine::state::BackupRecord;
    let b = Bench::new();
    b.apply(&config(2, TARGETS), day(0)).await;
    // A lifeboat killed after its create calls, before recording anything
    // (and before tagging the AMI's snapshots).
    let id = "2026-11-01T10:00:00Z";
    let tags = |t: &str| -> Tags {
        [
            ("lifeboat:policy".to_string(), "db".to_string()),
            ("lifeboat:backup-id".to_string(), id.to_string()),
            ("lifeboat:target".to_string(), t.to_string()),
        ]
        .into()
    };
    let acct =
        planner::known_accounts(&config(2, TARGETS), &Default::default()).unwrap()["main"].clone();
    let ec2 = b.cloud.ec2(&acct, "us-east-1").await.unwrap();
    let ami = ec2
        .create_image(&ImageRequest {
            instance_id: "i-0000000a".into(),
            name: "x".into(),
            // Lifeboat's marker, which reconciliation requires.
            description: format!("Lifeboat backup {id} of policy db, target i-0000000a"),
            reboot: false,
            tags: tags("i-0000000a"),
        })
        .await
        .unwrap();
    let rds = b.cloud.rds(&acct, "us-east-1").await.unwrap();
    rds.create_db_snapshot(&DbSnapshotRequest {
        kind: DbSnapshotKind::Cluster,
        source_id: "orders-cluster".into(),
        snapshot_id: "lifeboat-db-orders-cluster-2026-11-01t10-00-00z".into(),
        tags: tags("orders-cluster"),
    })
    .await
    .unwrap();
    let running = BackupRecord {
        seq: 0,
        id: id.into(),
        policy: "db".into(),
        account: "main".into(),
        started: day(0),
        finished: None,
        status: BackupStatus::Running,
        frozen: None,
        snapshots: vec![],
        problems: vec![],
    };
    b.store
        .lock()
        .unwrap()
        .transaction(|tx| tx.insert_backup(&running))
        .unwrap();

    backup::reconcile_interrupted(b.cloud(), b.store.clone(), day(0))
        .await
        .unwrap();
    let rec = &b.store.lock().unwrap().backups(Some("db")).unwrap()[0];
    assert_eq!(rec.status, BackupStatus::Failed);
    let mut got: Vec<(ArtifactKind, Option<String>)> = rec
        .snapshots
        .iter()
        .map(|s| (s.kind, s.image.clone()))
        .collect();
    got.sort_by_key(|(k, i)| (k.as_str(), i.clone()));
    assert_eq!(
        got,
        [
            (ArtifactKind::DbClusterSnapshot, None),
            (ArtifactKind::Ebs, Some(ami.clone())),
            (ArtifactKind::Ebs, Some(ami.clone())),
            (ArtifactKind::Image, None),
        ]
    );
}

#[tokio::test]
async fn unit_a_stopped_instance_is_backed_up_and_its_backups_count_as_generations() {
    use lifeboat_engine::cloud::InstanceState;
    let b = Bench::new();
    let cfg = config(
        1,
        r#"
  instance "i-0000000a" {
    region = "us-east-1"
    mode   = "ami"
  }
  instance "i-0000000b" {
    region = "us-east-1"
  }
"#,
    );
    b.apply(&cfg, day(0)).await;
    for i in ["i-0000000a", "i-0000000b"] {
        b.cloud
            .world
            .lock()
            .unwrap()
            .instances
            .get_mut(i)
            .unwrap()
            .state = InstanceState::Stopped;
    }
    for d in [0, 1] {
        let r = b.backup(day(d)).await;
        assert_eq!(r.record.status, BackupStatus::Success, "{:?}", r.record);
    }
    // Stopped, the instances are still backed up, and retention goes on.
    let catalog = b.store.lock().unwrap().backups(Some("db")).unwrap();
    assert_eq!(catalog.len(), 1);
    let w = b.cloud.world.lock().unwrap();
    assert_eq!(w.calls_of("CreateImage"), 2);
    assert_eq!(w.calls_of("CreateSnapshots"), 2);
    assert_eq!(w.images.len(), 1);
}
