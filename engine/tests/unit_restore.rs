//! Restores over the in-memory fake, for what the emulator cannot show:
//! a restore into another account through a share (the emulator has one
//! account), instances and databases that stay pending for a while (the
//! emulator's are ready at once), an answer lost after RunInstances
//! launched (the emulator always answers), and the original's private
//! address asked for again once it is gone (the emulator's addresses of
//! instances launched without a subnet lie outside the subnet). The real
//! SDK path is in tests/cli_restore.rs.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use lifeboat_engine::backup;
use lifeboat_engine::cloud::network::{RegionInventory, Subnet};
use lifeboat_engine::cloud::restore::{DbShape, Disk, InstanceShape};
use lifeboat_engine::cloud::{Cloud, DbSnapshotKind, InstanceState};
use lifeboat_engine::plan::apply::{self, Executor};
use lifeboat_engine::plan::{observe, planner};
use lifeboat_engine::restore::plan::{plan, PrivateIp};
use lifeboat_engine::restore::run::Runner;
use lifeboat_engine::restore::{Kind, Options, Request, RestorePlan, Which};
use lifeboat_engine::state::{ResourceKind, RestoreStatus, SharedStore, Store};
use lifeboat_engine::testing::fake::FakeCloud;
use lifeboat_schema::Config;

const REGION: &str = "us-east-1";
const I: &str = "i-0000000a";

const WAIT: backup::Wait = backup::Wait {
    timeout: std::time::Duration::from_secs(3600),
    interval: std::time::Duration::from_millis(1),
};

fn now() -> DateTime<Utc> {
    "2026-11-22T10:00:00Z".parse().unwrap()
}

fn disk(n: usize) -> Disk {
    Disk {
        volume_id: format!("vol-0000000{n}"),
        device: if n == 0 {
            "/dev/xvda".into()
        } else {
            format!("/dev/sd{}", (b'e' + n as u8) as char)
        },
        availability_zone: "us-east-1a".into(),
        size_gib: 8 * (n as i32 + 1),
        volume_type: "gp3".into(),
        delete_on_termination: n == 0,
        ..Disk::default()
    }
}

fn shape() -> InstanceShape {
    InstanceShape {
        instance_type: "t3.large".into(),
        architecture: "x86_64".into(),
        root_device: "/dev/xvda".into(),
        availability_zone: "us-east-1a".into(),
        subnet_id: Some("subnet-0a".into()),
        security_groups: vec!["sg-1".into()],
        private_ip: Some("10.0.1.5".into()),
        tags: [("Name".to_string(), "web-1".to_string())].into(),
        disks: (0..3).map(disk).collect(),
        ..InstanceShape::default()
    }
}

fn config() -> Config {
    let text = format!(
        r#"account "main" {{
  regions = ["{REGION}"]
}}

account "other" {{
  regions = ["{REGION}"]
}}

policy "web" {{
  account     = account.main
  generations = 3
  instance "{I}" {{
    region = "{REGION}"
  }}
  aurora "ledger" {{
    region = "{REGION}"
  }}
}}
"#
    );
    lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text)])
        .unwrap_or_else(|d| panic!("{d}"))
        .config
}

struct Bench {
    cloud: FakeCloud,
    store: SharedStore,
    config: Config,
    _dir: tempfile::TempDir,
}

impl Bench {
    async fn new() -> Bench {
        let cloud = FakeCloud::new(50);
        {
            let mut w = cloud.world.lock().unwrap();
            w.add_shaped_instance(I, REGION, shape());
            w.add_database(
                REGION,
                DbShape {
                    identifier: "ledger".into(),
                    kind: Some(DbSnapshotKind::Cluster),
                    class: "db.r6g.large".into(),
                    engine: "aurora-postgresql".into(),
                    members: vec![("ledger-1".into(), "db.r6g.large".into())],
                    ..DbShape::default()
                },
            );
            let subnet = Subnet {
                id: "subnet-0a".into(),
                vpc_id: "vpc-0a".into(),
                availability_zone: "us-east-1a".into(),
                cidr_block: Some("10.0.1.0/24".into()),
                ipv6_cidr_blocks: vec![],
                map_public_ip_on_launch: false,
                assign_ipv6_address_on_creation: false,
                tags: Default::default(),
            };
            w.networks.insert(
                REGION.into(),
                RegionInventory {
                    subnets: vec![subnet],
                    ..RegionInventory::default()
                },
            );
            w.account_ids.insert("main".into(), "111111111111".into());
            w.account_ids.insert("other".into(), "222222222222".into());
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Mutex::new(
            Store::open(&dir.path().join("state.db")).unwrap(),
        ));
        let b = Bench {
            cloud,
            store,
            config: config(),
            _dir: dir,
        };
        b.apply().await;
        let r = backup::run(b.cloud(), b.store.clone(), "web", now(), WAIT)
            .await
            .unwrap();
        assert!(r.record.problems.is_empty(), "{:?}", r.record);
        b
    }

    fn cloud(&self) -> Arc<dyn Cloud> {
        Arc::new(self.cloud.clone())
    }

    async fn apply(&self) {
        let state = self.store.lock().unwrap().load().unwrap();
        let obs = observe::observe(self.cloud(), &self.config, &state)
            .await
            .unwrap();
        let plan = planner::plan(&self.config, &state, &obs, now()).unwrap();
        let exec = Arc::new(Executor {
            cloud: self.cloud(),
            accounts: planner::known_accounts(&self.config, &state).unwrap(),
            store: self.store.clone(),
            now: now(),
            lock_id: None,
            stop: Default::default(),
        });
        let report = apply::apply(&plan, exec, 4, |_, _| {}).await;
        assert_eq!(report.failed(), 0, "{report:?}");
    }

    async fn plan(&self, kind: Kind, target: &str, f: impl FnOnce(&mut Request)) -> RestorePlan {
        let mut req = Request {
            kind,
            target: target.into(),
            which: Which::Latest,
            from: None,
            to_account: None,
            to_region: None,
            options: Options::default(),
            drill: None,
        };
        f(&mut req);
        plan(
            &self.cloud(),
            &self.store,
            &self.config.accounts,
            &req,
            now(),
        )
        .await
        .unwrap()
    }

    async fn run(&self, p: &RestorePlan) -> lifeboat_engine::state::RestoreRecord {
        let cloud = self.cloud();
        let runner = Runner {
            cloud: &cloud,
            store: &self.store,
            accounts: &self.config.accounts,
            operator: "ops@test".into(),
            wait: WAIT,
        };
        runner.run(p).await.unwrap()
    }

    fn with<T>(&self, f: impl FnOnce(&mut lifeboat_engine::testing::fake::World) -> T) -> T {
        f(&mut self.cloud.world.lock().unwrap())
    }
}

fn made(r: &lifeboat_engine::state::RestoreRecord, kind: ResourceKind) -> Vec<String> {
    r.resources
        .iter()
        .filter(|x| x.kind == kind)
        .map(|x| x.id.clone())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn unit_a_restore_into_another_account_shares_the_snapshots_for_its_time_only() {
    let b = Bench::new().await;
    // The backup's snapshots belong to account main: account other sees
    // them only through a share.
    b.with(|w| {
        let snaps: Vec<String> = w.snapshots.keys().cloned().collect();
        for s in snaps {
            w.copies.owners.insert(s, "main".into());
        }
    });
    let p = b
        .plan(Kind::Instance, I, |r| {
            r.to_account = Some("other".into());
            r.options.subnet = Some("subnet-0a".into());
        })
        .await;
    assert_eq!(p.account, "other");
    assert_eq!(p.share_with.as_deref(), Some("222222222222"));
    assert_eq!(p.shares.len(), 3, "{p:?}");
    let r = b.run(&p).await;
    assert_eq!(r.status, RestoreStatus::Completed, "{r:?}");
    let image = made(&r, ResourceKind::Image)[0].clone();
    let instance = made(&r, ResourceKind::Instance)[0].clone();
    b.with(|w| {
        assert_eq!(
            w.copies.owners[&image], "other",
            "registered in account other"
        );
        assert!(
            w.copies.shares.is_empty(),
            "unshared after: {:?}",
            w.copies.shares
        );
        assert_eq!(w.instances[&instance].state, InstanceState::Running);
        assert_eq!(w.instances[&instance].volumes.len(), 3);
    });

    // Without the share the other account cannot see the snapshots: the
    // registration above stood on it.
    b.with(|w| w.copies.shares.clear());
    let err = {
        let cloud = b.cloud();
        let other = &b.config.accounts["other"];
        let launch = cloud.launch(other, REGION).await.unwrap();
        let mut reg = p.image.clone().unwrap();
        reg.name = "again".into();
        launch.register_image(&reg).await.unwrap_err()
    };
    assert_eq!(
        err.code.as_deref(),
        Some("InvalidSnapshot.NotFound"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn unit_a_restore_waits_until_the_instance_runs_and_the_cluster_is_available() {
    let b = Bench::new().await;
    b.with(|w| {
        w.launch_pending = 4;
        w.db_creating = 3;
        w.calls.clear();
    });
    let p = b
        .plan(Kind::Instance, I, |r| {
            r.options.private_ip = Some(PrivateIp::Auto)
        })
        .await;
    let r = b.run(&p).await;
    assert_eq!(r.status, RestoreStatus::Completed);
    assert!(r.ready.is_some());
    assert!(
        b.with(|w| w.calls_of("DescribeInstances")) >= 4,
        "looked until running"
    );

    let p = b.plan(Kind::Aurora, "ledger", |_| {}).await;
    assert_eq!(
        p.members,
        vec![("ledger-restored-1".to_string(), "db.r6g.large".to_string())]
    );
    let r = b.run(&p).await;
    assert_eq!(r.status, RestoreStatus::Completed);
    assert_eq!(
        made(&r, ResourceKind::DbCluster),
        vec!["ledger-restored".to_string()]
    );
    assert_eq!(
        made(&r, ResourceKind::DbInstance),
        vec!["ledger-restored-1".to_string()]
    );
    b.with(|w| {
        let cluster = &w.databases[&(DbSnapshotKind::Cluster, "ledger-restored".to_string())];
        assert_eq!(cluster.status, "available");
        assert_eq!(cluster.shape.tags["lifeboat:restore-id"], r.id);
    });
}

#[tokio::test(start_paused = true)]
async fn unit_a_lost_answer_after_a_launch_adopts_the_instance_instead_of_failing() {
    let b = Bench::new().await;
    b.with(|w| {
        w.lost_answers.insert("RunInstances".into());
    });
    let p = b
        .plan(Kind::Instance, I, |r| {
            r.options.private_ip = Some(PrivateIp::Auto)
        })
        .await;
    let r = b.run(&p).await;
    assert_eq!(r.status, RestoreStatus::Completed, "{r:?}");
    let launched = b.with(|w| {
        w.instances
            .values()
            .filter(|i| i.tags.get("lifeboat:restore-id") == Some(&p.id))
            .count()
    });
    assert_eq!(launched, 1);
    assert_eq!(made(&r, ResourceKind::Instance).len(), 1);

    // A restore already performed is not performed again.
    let cloud = b.cloud();
    let runner = Runner {
        cloud: &cloud,
        store: &b.store,
        accounts: &b.config.accounts,
        operator: "ops@test".into(),
        wait: WAIT,
    };
    let err = runner.run(&p).await.unwrap_err();
    assert!(err.to_string().contains("already ran"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn unit_the_original_address_is_asked_for_only_once_the_original_is_gone() {
    let b = Bench::new().await;
    let p = b.plan(Kind::Instance, I, |_| {}).await;
    assert_eq!(p.launch.as_ref().unwrap().private_ip, None);
    assert!(
        p.notes.iter().any(|n| n.contains("still runs")),
        "{:?}",
        p.notes
    );
    b.with(|w| w.instances.get_mut(I).unwrap().state = InstanceState::Terminated);
    let p = b.plan(Kind::Instance, I, |_| {}).await;
    let launch = p.launch.as_ref().unwrap();
    assert_eq!(launch.private_ip.as_deref(), Some("10.0.1.5"));
    assert_eq!(launch.subnet_id.as_deref(), Some("subnet-0a"));
    assert_eq!(launch.security_groups, vec!["sg-1".to_string()]);
    let devices: Vec<&str> = p
        .image
        .as_ref()
        .unwrap()
        .mappings
        .iter()
        .map(|m| m.device.as_str())
        .collect();
    assert_eq!(devices, vec!["/dev/xvda", "/dev/sdf", "/dev/sdg"]);
    let r = b.run(&p).await;
    assert_eq!(r.status, RestoreStatus::Completed);
    let launched = b.with(|w| w.launches.last().cloned().unwrap());
    assert_eq!(launched.private_ip.as_deref(), Some("10.0.1.5"));
    assert_eq!(launched.tags["Name"], "web-1");
}

#[tokio::test(start_paused = true)]
async fn unit_a_disk_the_backup_lost_is_named_in_the_plan_and_the_rest_comes_back() {
    let b = Bench::new().await;
    // A data volume's snapshot deleted outside Lifeboat and forgotten.
    let lost = {
        let mut st = b.store.lock().unwrap();
        let backups = st.backups(Some("web")).unwrap();
        let lost = backups[0]
            .snapshots
            .iter()
            .find(|s| s.target == I && s.volume_id == "vol-00000002")
            .unwrap()
            .id
            .clone();
        st.transaction(|tx| tx.forget_snapshot(&lost, chrono::Utc::now()))
            .unwrap();
        lost
    };
    let p = b.plan(Kind::Instance, I, |_| {}).await;
    let image = p.image.as_ref().unwrap();
    assert_eq!(image.mappings.len(), 2, "{image:?}");
    assert!(!image.mappings.iter().any(|m| m.snapshot_id == lost));
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("vol-00000002 (/dev/sdg) does not come back")),
        "{:?}",
        p.notes
    );
}
