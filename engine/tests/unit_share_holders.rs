//! Shares held by several holders at once, and restores reaped after their
//! process died, over the in-memory fake. Each test says the emulator's
//! hole it fills; the kill of the real binary is in tests/cli_restore_reap.rs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lifeboat_engine::backup;
use lifeboat_engine::cloud::network::{RegionInventory, Subnet};
use lifeboat_engine::cloud::restore::{Disk, InstanceShape};
use lifeboat_engine::cloud::{Cloud, ErrorKind, InstanceState};
use lifeboat_engine::dr::{self, DrWork, Limits};
use lifeboat_engine::plan::apply::{self, Executor};
use lifeboat_engine::plan::{observe, planner};
use lifeboat_engine::restore::plan::plan;
use lifeboat_engine::restore::reap::{reap, reap_within, Scope};
use lifeboat_engine::restore::run::Runner;
use lifeboat_engine::restore::{Kind, Options, Request, RestorePlan, Which};
use lifeboat_engine::runmode::attempt::{self, Context, Trigger};
use lifeboat_engine::share::{self, Share};
use lifeboat_engine::state::holder::HolderId;
use lifeboat_engine::state::{
    dr_holder, ArtifactKind, DrRun, DrStatus, ResourceKind, RestoreRecord, RestoreStatus,
    SharedStore, Store,
};
use lifeboat_engine::testing::fake::{FakeCloud, World};
use lifeboat_schema::Config;

const REGION: &str = "us-east-1";
const I: &str = "i-0000000a";
const OTHER_ID: &str = "222222222222";
const VAULT_ID: &str = "333333333333";

const WAIT: backup::Wait = backup::Wait {
    timeout: Duration::from_secs(600),
    interval: Duration::from_millis(1),
};

fn now() -> DateTime<Utc> {
    "2026-11-22T10:00:00Z".parse().unwrap()
}

fn shape() -> InstanceShape {
    let disk = |n: usize| Disk {
        volume_id: format!("vol-0000000{n}"),
        device: if n == 0 {
            "/dev/xvda".into()
        } else {
            format!("/dev/sd{}", (b'e' + n as u8) as char)
        },
        availability_zone: "us-east-1a".into(),
        size_gib: 8,
        volume_type: "gp3".into(),
        delete_on_termination: n == 0,
        ..Disk::default()
    };
    InstanceShape {
        instance_type: "t3.large".into(),
        architecture: "x86_64".into(),
        root_device: "/dev/xvda".into(),
        availability_zone: "us-east-1a".into(),
        security_groups: vec!["sg-1".into()],
        tags: [("Name".to_string(), "web-1".to_string())].into(),
        disks: (0..2).map(disk).collect(),
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

account "vault" {{
  type         = "dr"
  regions      = ["{REGION}"]
  allow_delete = false
}}

policy "web" {{
  account     = account.main
  generations = 3
  instance "{I}" {{
    region = "{REGION}"
  }}
  dr {{
    cross_account {{
      to = account.vault
    }}
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
    /// The DR runs the backup recorded.
    runs: Vec<DrRun>,
    /// The backup's snapshots (account main's: other accounts see them
    /// only through a share).
    snapshots: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Bench {
    async fn new() -> Bench {
        let cloud = FakeCloud::new(50);
        {
            let mut w = cloud.world.lock().unwrap();
            w.add_shaped_instance(I, REGION, shape());
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
            w.account_ids.insert("other".into(), OTHER_ID.into());
            w.account_ids.insert("vault".into(), VAULT_ID.into());
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Mutex::new(
            Store::open(&dir.path().join("state.db")).unwrap(),
        ));
        let mut b = Bench {
            cloud,
            store,
            config: config(),
            runs: vec![],
            snapshots: vec![],
            _dir: dir,
        };
        b.apply().await;
        let run = attempt::run(
            b.cloud(),
            b.store.clone(),
            "web",
            &Trigger::AdHoc,
            now(),
            WAIT,
            &Context::default(),
        )
        .await;
        assert!(run.succeeded, "{:?}", run.result.err());
        b.runs = run.dr;
        b.snapshots = b.with(|w| {
            let snaps: Vec<String> = w.snapshots.keys().cloned().collect();
            for s in &snaps {
                w.copies.owners.insert(s.clone(), "main".into());
            }
            snaps
        });
        assert_eq!(b.snapshots.len(), 2);
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

    /// An instance restore of the latest backup into `to`.
    async fn plan_into(&self, to: &str) -> RestorePlan {
        let req = Request {
            kind: Kind::Instance,
            target: I.into(),
            which: Which::Latest,
            from: None,
            to_account: Some(to.into()),
            to_region: None,
            options: Options {
                subnet: Some("subnet-0a".into()),
                ..Options::default()
            },
            drill: None,
        };
        let p = plan(
            &self.cloud(),
            &self.store,
            &self.config.accounts,
            &req,
            now(),
        )
        .await
        .unwrap();
        assert_eq!(p.shares.len(), 2, "{p:?}");
        p
    }

    async fn run(&self, p: &RestorePlan) -> RestoreRecord {
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

    fn with<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        f(&mut self.cloud.world.lock().unwrap())
    }

    /// Whether every snapshot of the backup is shared with `account_id`.
    fn shared_with(&self, account_id: &str) -> bool {
        self.with(|w| {
            self.snapshots.iter().all(|s| {
                w.copies
                    .shares
                    .contains(&(s.clone(), account_id.to_string()))
            })
        })
    }

    /// Waits (in the test's time) until `f` holds of the world.
    async fn until(&self, f: impl Fn(&World) -> bool) {
        for _ in 0..60_000 {
            if f(&self.cloud.world.lock().unwrap()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("the fake's world never got there");
    }
}

/// Emulator hole: it has one account (no restore into another through a
/// share) and its instances run at once (no restore is ever in flight
/// while another ends).
#[tokio::test]
async fn unit_two_restores_into_one_account_keep_the_share_until_the_last_ends() {
    let b = Bench::new().await;
    let first = b.plan_into("other").await;
    let second = b.plan_into("other").await;
    assert_ne!(first.id, second.id);
    // The second's instance starts for as long as the test says.
    b.with(|w| w.launch_pending = u32::MAX);
    let ends_first = async {
        b.until(|w| w.launches.len() == 1).await;
        assert!(b.shared_with(OTHER_ID));
        b.with(|w| w.launch_pending = 0);
        let r = b.run(&first).await;
        assert_eq!(r.status, RestoreStatus::Completed, "{r:?}");
        // The second restore still holds the share: it stays.
        assert!(
            b.shared_with(OTHER_ID),
            "unshared under a restore in flight: {:?}",
            b.with(|w| w.copies.shares.clone())
        );
        b.with(|w| {
            for i in w.instances.values_mut() {
                if i.state == InstanceState::Pending {
                    i.state = InstanceState::Running;
                }
            }
        });
    };
    let (r, ()) = tokio::join!(b.run(&second), ends_first);
    assert_eq!(r.status, RestoreStatus::Completed, "{r:?}");
    // The last holder let go: nothing is shared, nothing is held.
    b.with(|w| assert!(w.copies.shares.is_empty(), "{:?}", w.copies.shares));
    assert!(b
        .store
        .lock()
        .unwrap()
        .share_holds(None)
        .unwrap()
        .is_empty());
}

/// Emulator hole: it cannot copy a snapshot shared from another account,
/// and its copies complete at once (no DR copy is ever in flight while a
/// restore ends).
#[tokio::test]
async fn unit_a_dr_copy_in_flight_keeps_its_share_while_a_restore_into_the_vault_ends() {
    let b = Bench::new().await;
    assert_eq!(b.runs.len(), 1);
    assert_eq!(b.runs[0].destination.to_string(), "us-east-1:vault");
    // The copies stay pending until the test lets them complete.
    b.with(|w| w.copies.copy_polls = u32::MAX);
    let mut work = DrWork::new(b.cloud(), b.store.clone(), Limits::new(5), now());
    work.interval = Duration::from_millis(2);
    let restore = async {
        b.until(|w| w.copies.copy_requests.len() == 2).await;
        assert!(b.shared_with(VAULT_ID));
        let p = b.plan_into("vault").await;
        let r = b.run(&p).await;
        assert_eq!(r.status, RestoreStatus::Completed, "{r:?}");
        // The copies in flight still hold the share.
        assert!(
            b.shared_with(VAULT_ID),
            "unshared under DR copies in flight: {:?}",
            b.with(|w| w.copies.shares.clone())
        );
        b.with(|w| {
            for left in w.copies.pending.values_mut() {
                *left = 1;
            }
        });
    };
    let (ended, ()) = tokio::join!(dr::copy(&work, b.runs.clone()), restore);
    let ended: Vec<DrRun> = ended.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(ended[0].status, DrStatus::Completed, "{:?}", ended[0]);
    // The copies, the last holder, unshared.
    b.with(|w| assert!(w.copies.shares.is_empty(), "{:?}", w.copies.shares));
    assert!(b
        .store
        .lock()
        .unwrap()
        .share_holds(None)
        .unwrap()
        .is_empty());
}

/// Emulator hole: its instances run at once, so a restore cannot be
/// stopped while it waits with its share and launch image in place (the
/// real binary killed after the launch is in tests/cli_restore_reap.rs,
/// without a share: the emulator has one account).
#[tokio::test]
async fn unit_a_restore_whose_process_died_is_reaped_its_share_and_image_let_go_of() {
    let b = Bench::new().await;
    let p = b.plan_into("other").await;
    b.with(|w| w.launch_pending = u32::MAX);
    // The process dies while its instance starts: the run stops at that
    // await, as a kill stops it, and no cleanup runs.
    tokio::select! {
        r = b.run(&p) => panic!("the restore ended: {r:?}"),
        () = b.until(|w| w.launches.len() == 1) => {}
    }
    let rec = b.store.lock().unwrap().restores().unwrap()[0].clone();
    assert_eq!(rec.status, RestoreStatus::Running);
    let image = rec
        .resources
        .iter()
        .find(|x| x.kind == ResourceKind::Image)
        .unwrap()
        .id
        .clone();
    let instance = rec
        .resources
        .iter()
        .find(|x| x.kind == ResourceKind::Instance)
        .unwrap()
        .id
        .clone();
    assert!(b.shared_with(OTHER_ID));
    assert!(b.with(|w| w.images.contains_key(&image)));

    let cloud = b.cloud();
    // While its process runs (this one), nothing is reaped.
    let done = reap(&cloud, &b.store, &b.config.accounts, Scope::All)
        .await
        .unwrap();
    assert!(done.is_empty(), "{done:?}");
    assert!(b.shared_with(OTHER_ID));

    // Its process is gone: its pid now names a process started at another
    // time.
    let me = HolderId::current();
    let dead = HolderId {
        start: me.start.map(|s| s + 1),
        ..me
    };
    let mut killed = rec.clone();
    killed.holder = Some(dead);
    b.store
        .lock()
        .unwrap()
        .transaction(|tx| tx.put_restore(&killed))
        .unwrap();
    let done = reap(&cloud, &b.store, &b.config.accounts, Scope::All)
        .await
        .unwrap();
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(done[0].interrupted);
    assert_eq!(done[0].left, None);
    let after = b.store.lock().unwrap().restores().unwrap()[0].clone();
    assert_eq!(after.status, RestoreStatus::Failed);
    assert!(after.finished.is_some());
    for said in [
        "interrupted",
        "stopped before it finished",
        "lifeboat apply",
    ] {
        assert!(after.problem.contains(said), "{}", after.problem);
    }
    let removed = after.resources.iter().find(|x| x.id == image).unwrap();
    assert!(removed.removed.is_some(), "the image is recorded as gone");
    b.with(|w| {
        assert!(w.copies.shares.is_empty(), "{:?}", w.copies.shares);
        assert!(!w.images.contains_key(&image), "deregistered");
        // What it created is the operator's now: it stays.
        assert!(w.instances.contains_key(&instance));
        assert_ne!(w.instances[&instance].state, InstanceState::Terminated);
    });
    assert!(b
        .store
        .lock()
        .unwrap()
        .share_holds(None)
        .unwrap()
        .is_empty());
    // Nothing left to reap.
    let again = reap(&cloud, &b.store, &b.config.accounts, Scope::All)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
}

/// Emulator hole: DeregisterImage cannot be made to fail there, and it has
/// one account (no share to let go of).
#[tokio::test]
async fn unit_a_cleanup_failing_after_a_restore_succeeded_leaves_it_completed_for_the_runner_to_retry(
) {
    let b = Bench::new().await;
    let p = b.plan_into("other").await;
    b.with(|w| {
        w.failing
            .insert("DeregisterImage".into(), ErrorKind::Throttled)
    });
    let r = b.run(&p).await;
    // The outcome was recorded before the cleanup: done all the same.
    assert_eq!(r.status, RestoreStatus::Completed, "{r:?}");
    assert!(r.ready.is_some());
    assert!(
        r.problem
            .contains("letting go of its shares and launch image failed"),
        "{}",
        r.problem
    );
    assert!(!b.shared_with(OTHER_ID), "the shares went");
    let image = r
        .resources
        .iter()
        .find(|x| x.kind == ResourceKind::Image)
        .unwrap()
        .id
        .clone();
    assert!(b.with(|w| w.images.contains_key(&image)));
    b.with(|w| w.failing.clear());
    let cloud = b.cloud();
    // A restore command reaps only what is interrupted: not this.
    let done = reap(&cloud, &b.store, &b.config.accounts, Scope::Running)
        .await
        .unwrap();
    assert!(done.is_empty(), "{done:?}");
    assert!(b.with(|w| w.images.contains_key(&image)));
    // The runner tries it again.
    let done = reap(&cloud, &b.store, &b.config.accounts, Scope::All)
        .await
        .unwrap();
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(!done[0].interrupted);
    assert_eq!(done[0].left, None);
    assert!(!b.with(|w| w.images.contains_key(&image)));
    let after = b.store.lock().unwrap().restores().unwrap()[0].clone();
    assert_eq!(after.status, RestoreStatus::Completed);
}

/// Emulator hole: it has one account, so no DR run shares anything.
#[tokio::test]
async fn unit_the_runner_lets_go_of_the_shares_of_a_dr_run_that_ended_holding_them() {
    let b = Bench::new().await;
    let run = b.runs[0].clone();
    let holder = dr_holder(&run.policy, &run.backup_id, &run.destination);
    let main = &b.config.accounts["main"];
    let cloud = b.cloud();
    for id in &b.snapshots {
        let s = Share {
            owner: main,
            kind: ArtifactKind::Ebs,
            id,
            region: REGION,
            with: VAULT_ID,
        };
        share::hold(cloud.as_ref(), &b.store, &s, &holder)
            .await
            .unwrap();
    }
    assert!(b.shared_with(VAULT_ID));
    // While the run is open, its shares are its own.
    reap(&cloud, &b.store, &b.config.accounts, Scope::All)
        .await
        .unwrap();
    assert!(b.shared_with(VAULT_ID));
    // It settled without letting go (its process died after settling).
    let mut settled = run.clone();
    settled.status = DrStatus::Failed;
    b.store
        .lock()
        .unwrap()
        .transaction(|tx| tx.put_dr_run(&settled))
        .unwrap();
    reap(&cloud, &b.store, &b.config.accounts, Scope::All)
        .await
        .unwrap();
    b.with(|w| assert!(w.copies.shares.is_empty(), "{:?}", w.copies.shares));
    assert!(b
        .store
        .lock()
        .unwrap()
        .share_holds(None)
        .unwrap()
        .is_empty());
}

/// Emulator hole: a share's owner account cannot be taken out of the
/// configuration under it there (one account).
#[tokio::test]
async fn unit_a_share_whose_owner_is_not_configured_says_where_and_what_could_not_be_done() {
    let b = Bench::new().await;
    let main = &b.config.accounts["main"];
    let cloud = b.cloud();
    let s = Share {
        owner: main,
        kind: ArtifactKind::Ebs,
        id: &b.snapshots[0],
        region: REGION,
        with: OTHER_ID,
    };
    share::hold(cloud.as_ref(), &b.store, &s, "restore:r-x")
        .await
        .unwrap();
    let err = share::release_all(cloud.as_ref(), &b.store, &Default::default(), "restore:r-x")
        .await
        .unwrap_err()
        .to_string();
    for said in [
        "unshare",
        REGION,
        OTHER_ID,
        "account main",
        b.snapshots[0].as_str(),
    ] {
        assert!(err.contains(said), "{err}");
    }
}

/// Emulator hole: GetCallerIdentity and DescribeSnapshots cannot be made
/// to fail there, and it has one account (no DR run shares anything).
#[tokio::test]
async fn unit_a_failed_dr_run_lets_go_of_its_shares_though_the_destination_account_id_is_unknown() {
    let b = Bench::new().await;
    let run = b.runs[0].clone();
    let holder = dr_holder(&run.policy, &run.backup_id, &run.destination);
    let main = &b.config.accounts["main"];
    let cloud = b.cloud();
    // What a process that died midway shared for the run.
    for id in &b.snapshots {
        let s = Share {
            owner: main,
            kind: ArtifactKind::Ebs,
            id,
            region: REGION,
            with: VAULT_ID,
        };
        share::hold(cloud.as_ref(), &b.store, &s, &holder)
            .await
            .unwrap();
    }
    // Resumed, its sources cannot be read (it fails) and neither can the
    // destination's account id.
    b.with(|w| {
        w.failing
            .insert("DescribeSnapshots".into(), ErrorKind::AccessDenied);
        w.failing
            .insert("GetCallerIdentity".into(), ErrorKind::AccessDenied);
    });
    let work = DrWork::new(b.cloud(), b.store.clone(), Limits::new(5), now());
    let ended = dr::copy(&work, vec![run]).await;
    let ended = ended.into_iter().next().unwrap().unwrap();
    assert_eq!(ended.status, DrStatus::Failed, "{ended:?}");
    // The state knew what was shared and with whom: all of it let go of.
    b.with(|w| assert!(w.copies.shares.is_empty(), "{:?}", w.copies.shares));
    assert!(b
        .store
        .lock()
        .unwrap()
        .share_holds(None)
        .unwrap()
        .is_empty());
}

/// Emulator hole: an unshare cannot be made to hang there (an outage in
/// the artifacts' region), and it has one account (no share).
#[tokio::test]
async fn unit_a_restore_commands_reaping_is_bounded_and_what_it_left_goes_with_the_runner() {
    let b = Bench::new().await;
    let p = b.plan_into("other").await;
    b.with(|w| w.launch_pending = u32::MAX);
    tokio::select! {
        r = b.run(&p) => panic!("the restore ended: {r:?}"),
        () = b.until(|w| w.launches.len() == 1) => {}
    }
    let mut killed = b.store.lock().unwrap().restores().unwrap()[0].clone();
    let me = HolderId::current();
    killed.holder = Some(HolderId {
        start: me.start.map(|s| s + 1),
        ..me
    });
    b.store
        .lock()
        .unwrap()
        .transaction(|tx| tx.put_restore(&killed))
        .unwrap();
    // The artifacts' region hangs.
    b.with(|w| w.share_delay = Some(Duration::from_secs(3600)));
    let cloud = b.cloud();
    let started = std::time::Instant::now();
    let within = Duration::from_millis(300);
    let done = reap_within(&cloud, &b.store, &b.config.accounts, Scope::Running, within)
        .await
        .unwrap();
    assert!(done.is_none(), "{done:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    // Claimed before the wait: it no longer holds retention.
    let rec = b.store.lock().unwrap().restores().unwrap()[0].clone();
    assert_eq!(rec.status, RestoreStatus::Failed);
    assert!(b.store.lock().unwrap().in_use().unwrap().is_empty());
    assert!(b.shared_with(OTHER_ID));
    // The region is back: the runner lets go of what it left.
    b.with(|w| w.share_delay = None);
    let done = reap(&cloud, &b.store, &b.config.accounts, Scope::All)
        .await
        .unwrap();
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(!done[0].interrupted);
    b.with(|w| assert!(w.copies.shares.is_empty(), "{:?}", w.copies.shares));
}
