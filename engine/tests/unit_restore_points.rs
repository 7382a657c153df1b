//! Restore points over the in-memory fake, which fills holes of the
//! emulator: it holds every field of a shape (IAM profile, ENA,
//! hibernation, a cluster's members), counts each describe call and its
//! pages, refuses a filter of more than 200 ids, and fails a describe on
//! demand (`World::failing`). The real SDK path is in
//! tests/cli_restore_points.rs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use lifeboat_engine::backup;
use lifeboat_engine::cloud::restore::{DbShape, Disk, InstanceShape, Shape};
use lifeboat_engine::cloud::{Cloud, DbSnapshotKind, ErrorKind, Volume};
use lifeboat_engine::plan::apply::{self, Executor};
use lifeboat_engine::plan::{observe, planner};
use lifeboat_engine::state::{BackupStatus, SharedStore, Store};
use lifeboat_engine::testing::fake::{FakeCloud, FakeDatabase};
use lifeboat_schema::Config;

const WAIT: backup::Wait = backup::Wait {
    timeout: std::time::Duration::from_secs(3600),
    interval: std::time::Duration::from_millis(1),
};

const REGION: &str = "us-east-1";
const VOL: &str = "vol-0000da7a";

fn now() -> DateTime<Utc> {
    "2026-11-22T10:00:00Z".parse().unwrap()
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The fake's disk `n` of instance `id`, as `add_instance` names it.
fn disk(id: &str, n: usize) -> Disk {
    Disk {
        volume_id: format!("vol-{}-{n}", id.trim_start_matches("i-")),
        device: format!("/dev/xvd{}", (b'a' + n as u8) as char),
        availability_zone: "us-east-1b".into(),
        size_gib: 8 + n as i32,
        volume_type: if n == 0 { "gp3" } else { "io2" }.into(),
        iops: Some(3000 + n as i32),
        throughput: (n == 0).then_some(125),
        encrypted: n > 0,
        kms_key_id: (n > 0).then(|| "arn:aws:kms:us-east-1:111111111111:key/k".into()),
        delete_on_termination: n == 0,
        tags: tags(&[("disk", &n.to_string())]),
    }
}

/// Every field the fake holds of an instance with `volumes` disks.
fn instance_shape(id: &str, volumes: usize) -> InstanceShape {
    InstanceShape {
        instance_type: "t3.large".into(),
        architecture: "arm64".into(),
        root_device: "/dev/xvda".into(),
        availability_zone: "us-east-1b".into(),
        subnet_id: Some("subnet-0a".into()),
        vpc_id: Some("vpc-0a".into()),
        security_groups: vec!["sg-1".into(), "sg-2".into()],
        key_name: Some("ops".into()),
        iam_profile: Some("arn:aws:iam::111111111111:instance-profile/web".into()),
        private_ip: Some("10.0.1.5".into()),
        image_id: Some("ami-0old".into()),
        ebs_optimized: true,
        ena: true,
        hibernation: true,
        tags: tags(&[("Name", id)]),
        disks: (0..volumes).map(|n| disk(id, n)).collect(),
    }
}

fn db_shape(id: &str, kind: DbSnapshotKind) -> DbShape {
    let cluster = kind == DbSnapshotKind::Cluster;
    DbShape {
        identifier: id.into(),
        kind: Some(kind),
        class: "db.r6g.large".into(),
        engine: if cluster {
            "aurora-postgresql"
        } else {
            "postgres"
        }
        .into(),
        engine_version: "14.7".into(),
        subnet_group: Some("db-subnets".into()),
        parameter_group: Some("pg14".into()),
        port: Some(5432),
        multi_az: !cluster,
        availability_zone: (!cluster).then(|| "us-east-1c".into()),
        security_groups: vec!["sg-db".into()],
        members: if cluster {
            vec![("ledger-1".into(), "db.r6g.large".into())]
        } else {
            vec![]
        },
        tags: tags(&[("app", id)]),
    }
}

struct Bench {
    cloud: FakeCloud,
    store: SharedStore,
    _dir: tempfile::TempDir,
}

impl Bench {
    /// `instances` three-disk instances (`i-00000001`, ...), the volume
    /// `VOL`, the DB instance `orders` and the Aurora cluster `ledger`,
    /// each with its shape in the fake, applied under policy `web`.
    async fn new(instances: usize, page_size: usize) -> Bench {
        let ids: Vec<String> = (1..=instances).map(|n| format!("i-{n:08x}")).collect();
        let cloud = FakeCloud::new(page_size);
        {
            let mut w = cloud.world.lock().unwrap();
            for id in &ids {
                w.add_instance(id, REGION, &[], 3);
                let shape = instance_shape(id, 3);
                for d in &shape.disks {
                    // DescribeVolumes answers without the mapping's flag:
                    // it comes from the instance.
                    let d = Disk {
                        delete_on_termination: false,
                        ..d.clone()
                    };
                    w.disks.insert(d.volume_id.clone(), d);
                }
                w.shapes.insert(id.clone(), shape);
            }
            w.volumes.insert(
                VOL.into(),
                Volume {
                    id: VOL.into(),
                    region: REGION.into(),
                    state: "available".into(),
                    tags: Default::default(),
                },
            );
            w.disks.insert(VOL.into(), volume_shape());
            for (kind, id) in [
                (DbSnapshotKind::Instance, "orders"),
                (DbSnapshotKind::Cluster, "ledger"),
            ] {
                let db = FakeDatabase {
                    region: REGION.into(),
                    shape: db_shape(id, kind),
                    status: "available".into(),
                    endpoint: None,
                    creating_left: 0,
                };
                w.databases.insert((kind, id.to_string()), db);
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Mutex::new(
            Store::open(&dir.path().join("state.db")).unwrap(),
        ));
        let b = Bench {
            cloud,
            store,
            _dir: dir,
        };
        b.apply(&config(&ids)).await;
        b
    }

    fn cloud(&self) -> Arc<dyn Cloud> {
        Arc::new(self.cloud.clone())
    }

    async fn apply(&self, config: &Config) {
        let state = self.store.lock().unwrap().load().unwrap();
        let obs = observe::observe(self.cloud(), config, &state)
            .await
            .unwrap();
        let plan = planner::plan(config, &state, &obs, now()).unwrap();
        let exec = Arc::new(Executor {
            cloud: self.cloud(),
            accounts: planner::known_accounts(config, &state).unwrap(),
            store: self.store.clone(),
            now: now(),
            lock_id: None,
            stop: Default::default(),
        });
        let report = apply::apply(&plan, exec, 4, |_, _| {}).await;
        assert_eq!(report.failed(), 0, "{report:?}");
    }

    async fn backup(&self) -> backup::BackupResult {
        self.cloud.world.lock().unwrap().calls.clear();
        backup::run(self.cloud(), self.store.clone(), "web", now(), WAIT)
            .await
            .unwrap()
    }

    fn point(&self, backup_id: &str, target: &str) -> Option<Shape> {
        let s = self.store.lock().unwrap();
        s.restore_point("web", backup_id, target).unwrap()
    }

    fn calls(&self, action: &str) -> usize {
        self.cloud.world.lock().unwrap().calls_of(action)
    }
}

fn volume_shape() -> Disk {
    Disk {
        volume_id: VOL.into(),
        device: String::new(),
        availability_zone: "us-east-1d".into(),
        size_gib: 500,
        volume_type: "st1".into(),
        iops: None,
        throughput: Some(250),
        encrypted: true,
        kms_key_id: Some("arn:aws:kms:us-east-1:111111111111:key/v".into()),
        delete_on_termination: false,
        tags: tags(&[("role", "archive")]),
    }
}

fn config(instances: &[String]) -> Config {
    let mut body = String::new();
    for id in instances {
        body += &format!("  instance \"{id}\" {{\n    region = \"{REGION}\"\n  }}\n");
    }
    for (kind, id) in [("volume", VOL), ("rds", "orders"), ("aurora", "ledger")] {
        body += &format!("  {kind} \"{id}\" {{\n    region = \"{REGION}\"\n  }}\n");
    }
    let text = format!(
        "account \"main\" {{\n  regions = [\"{REGION}\"]\n}}\n\npolicy \"web\" {{\n  account     = account.main\n  generations = 3\n{body}}}\n"
    );
    lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text)])
        .unwrap_or_else(|d| panic!("{d}"))
        .config
}

#[tokio::test(start_paused = true)]
async fn unit_a_backup_records_every_targets_shape_with_every_field() {
    let b = Bench::new(3, 50).await;
    let r = b.backup().await;
    assert_eq!(r.record.status, BackupStatus::Success, "{:?}", r.record);
    assert!(r.record.problems.is_empty(), "{:?}", r.record.problems);
    let id = &r.record.id;
    for n in 1..=3 {
        let i = format!("i-{n:08x}");
        // Every disk, root first, with DescribeVolumes' details and the
        // instance mapping's delete-on-termination flag.
        assert_eq!(
            b.point(id, &i),
            Some(Shape::Instance(instance_shape(&i, 3))),
            "{i}"
        );
    }
    assert_eq!(b.point(id, VOL), Some(Shape::Volume(volume_shape())));
    assert_eq!(
        b.point(id, "orders"),
        Some(Shape::Db(db_shape("orders", DbSnapshotKind::Instance)))
    );
    assert_eq!(
        b.point(id, "ledger"),
        Some(Shape::Db(db_shape("ledger", DbSnapshotKind::Cluster)))
    );
    // One describe of each kind for the whole region, never one per target
    // (the other DescribeVolumes is the backup's own look for its volume
    // targets, made before their create calls; and two of each kind are the
    // membership's looks, `membership::refresh`: at the listed targets, and
    // for the resources carrying a backup tag).
    for (action, calls) in [
        ("DescribeInstances", 1 + 2),
        ("DescribeVolumes", 2 + 2),
        ("DescribeDBInstances", 1),
        ("DescribeDBClusters", 1),
    ] {
        assert_eq!(b.calls(action), calls, "{action}");
    }
}

#[tokio::test(start_paused = true)]
async fn unit_restore_point_describes_are_chunked_by_200_ids() {
    // Pages larger than a chunk: each call below is one chunk of ids.
    let b = Bench::new(250, 1000).await;
    let r = b.backup().await;
    assert_eq!(r.record.status, BackupStatus::Success, "{:?}", r.record);
    let id = &r.record.id;
    // 250 instances: 200 + 50, for the restore points and for membership,
    // and membership's one look for a backup tag.
    assert_eq!(b.calls("DescribeInstances"), 2 + 2 + 1);
    // 750 disks and the volume target: 200 + 200 + 200 + 151, the backup's
    // own look for the volume target, and membership's two.
    assert_eq!(b.calls("DescribeVolumes"), 4 + 1 + 1 + 1);
    let last = format!("i-{:08x}", 250);
    assert_eq!(
        b.point(id, &last),
        Some(Shape::Instance(instance_shape(&last, 3)))
    );
}

#[tokio::test(start_paused = true)]
async fn unit_a_failed_describe_leaves_the_backup_successful_and_says_so() {
    let b = Bench::new(3, 50).await;
    b.cloud
        .world
        .lock()
        .unwrap()
        .failing
        .insert("DescribeInstances".into(), ErrorKind::AccessDenied);
    let r = b.backup().await;
    assert_eq!(r.record.status, BackupStatus::Success, "{:?}", r.record);
    assert_eq!(r.record.snapshots.len(), 3 * 3 + 3);
    let problems = &r.record.problems;
    // Membership could not be decided either: the applied targets were
    // backed up, and a note says so.
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].starts_with("membership: not decided again"));
    let p = &problems[1];
    for needle in [
        "restore point of i-00000001, i-00000002, i-00000003 not recorded",
        "ec2:DescribeInstances",
        "us-east-1",
    ] {
        assert!(p.contains(needle), "{needle} in {p}");
    }
    let id = &r.record.id;
    assert_eq!(b.point(id, "i-00000001"), None);
    // The other describes did their part.
    assert_eq!(b.point(id, VOL), Some(Shape::Volume(volume_shape())));
    assert!(b.point(id, "orders").is_some());
    // Retention counts it: a good backup is a generation.
    let closed = b.store.lock().unwrap().backups(Some("web")).unwrap();
    assert_eq!(closed[0].status, BackupStatus::Success);
    assert_eq!(&closed[0].problems, problems);
}
