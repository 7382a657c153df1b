//! Backups under AWS's limits, over the in-memory fake, which fills two
//! holes of the emulator: it never throttles, and it takes filters of any
//! number of values. The fake throttles a fixed share of create calls
//! (`World::throttled_creates_in_ten`) and refuses a filter of more than
//! 200 values, as EC2 does.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use lifeboat_engine::backup;
use lifeboat_engine::cloud::{Cloud, Volume};
use lifeboat_engine::plan::apply::{self, Executor};
use lifeboat_engine::plan::{observe, planner};
use lifeboat_engine::state::{BackupStatus, SharedStore, Store};
use lifeboat_engine::testing::fake::FakeCloud;
use lifeboat_schema::Config;

const WAIT: backup::Wait = backup::Wait {
    timeout: std::time::Duration::from_secs(3600),
    interval: std::time::Duration::from_millis(1),
};

const REGION: &str = "us-east-1";

fn now() -> DateTime<Utc> {
    "2026-11-01T10:00:00Z".parse().unwrap()
}

/// What a policy backs up: `instance`s with `mode`, `volume`s, `rds` and
/// `aurora` targets, numbered from 1.
#[derive(Default)]
struct Targets {
    snapshots: usize,
    amis: usize,
    volumes: usize,
    rds: usize,
    aurora: usize,
}

impl Targets {
    fn instance_id(n: usize) -> String {
        format!("i-{n:08x}")
    }
    fn ami_id(n: usize) -> String {
        format!("i-{:08x}", 0x1000_0000 + n)
    }
    fn volume_id(n: usize) -> String {
        format!("vol-{n:08x}")
    }

    fn config(&self) -> Config {
        let mut body = String::new();
        let block = |kind: &str, id: &str, extra: &str| {
            format!("  {kind} \"{id}\" {{\n    region = \"{REGION}\"\n{extra}  }}\n")
        };
        for n in 1..=self.snapshots {
            body += &block("instance", &Self::instance_id(n), "");
        }
        for n in 1..=self.amis {
            body += &block("instance", &Self::ami_id(n), "    mode = \"ami\"\n");
        }
        for n in 1..=self.volumes {
            body += &block("volume", &Self::volume_id(n), "");
        }
        for n in 1..=self.rds {
            body += &block("rds", &format!("orders-{n}"), "");
        }
        for n in 1..=self.aurora {
            body += &block("aurora", &format!("ledger-{n}"), "");
        }
        let text = format!(
            "account \"main\" {{\n  regions = [\"{REGION}\"]\n}}\n\npolicy \"big\" {{\n  account     = account.main\n  generations = 3\n{body}}}\n"
        );
        lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text)])
            .unwrap_or_else(|d| panic!("{d}"))
            .config
    }

    fn world(&self, cloud: &FakeCloud) {
        let mut w = cloud.world.lock().unwrap();
        for n in 1..=self.snapshots {
            w.add_instance(&Self::instance_id(n), REGION, &[], 2);
        }
        for n in 1..=self.amis {
            w.add_instance(&Self::ami_id(n), REGION, &[], 1);
        }
        for n in 1..=self.volumes {
            let id = Self::volume_id(n);
            w.volumes.insert(
                id.clone(),
                Volume {
                    id,
                    region: REGION.into(),
                    state: "in-use".into(),
                    tags: Default::default(),
                },
            );
        }
    }
}

struct Bench {
    cloud: FakeCloud,
    store: SharedStore,
    config: Config,
    _dir: tempfile::TempDir,
}

impl Bench {
    async fn new(targets: &Targets) -> Bench {
        let cloud = FakeCloud::new(50);
        targets.world(&cloud);
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Mutex::new(
            Store::open(&dir.path().join("state.db")).unwrap(),
        ));
        let b = Bench {
            cloud,
            store,
            config: targets.config(),
            _dir: dir,
        };
        b.apply().await;
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

    async fn backup(&self) -> backup::BackupResult {
        backup::run(self.cloud(), self.store.clone(), "big", now(), WAIT)
            .await
            .unwrap()
    }
}

/// What a backup left, without the ids the fake hands out in call order:
/// per target, the kinds of its catalog records; per kind of AWS resource,
/// how many each target has (by its `lifeboat:target` tag).
fn outcome(b: &Bench, r: &backup::BackupResult) -> (BTreeMap<String, Vec<String>>, String) {
    let mut catalog: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in &r.record.snapshots {
        catalog
            .entry(s.target.clone())
            .or_default()
            .push(format!("{:?}", s.kind));
    }
    catalog.values_mut().for_each(|v| v.sort());
    let w = b.cloud.world.lock().unwrap();
    let count = |tags: Vec<&BTreeMap<String, String>>| {
        let mut by: BTreeMap<String, usize> = BTreeMap::new();
        for t in tags {
            *by.entry(t[backup::TAG_TARGET].clone()).or_default() += 1;
        }
        by
    };
    let aws = format!(
        "snapshots {:?}\nimages {:?}\ndb {:?}",
        count(w.snapshots.values().map(|s| &s.tags).collect()),
        count(w.images.values().map(|i| &i.tags).collect()),
        count(w.db_snapshots.values().map(|d| &d.tags).collect()),
    );
    (catalog, aws)
}

#[tokio::test(start_paused = true)]
async fn unit_a_backup_with_throttled_create_calls_ends_as_one_without() {
    let targets = Targets {
        snapshots: 20,
        amis: 10,
        volumes: 10,
        rds: 5,
        aurora: 5,
    };
    let calm = Bench::new(&targets).await;
    let r = calm.backup().await;
    assert_eq!(
        r.record.status,
        BackupStatus::Success,
        "{:?}",
        r.record.problems
    );
    let expected = outcome(&calm, &r);
    assert_eq!(expected.0.len(), 50);

    let busy = Bench::new(&targets).await;
    busy.cloud.world.lock().unwrap().throttled_creates_in_ten = 3;
    let r = busy.backup().await;
    assert_eq!(
        r.record.status,
        BackupStatus::Success,
        "{:?}",
        r.record.problems
    );
    assert!(r.record.problems.is_empty(), "{:?}", r.record.problems);
    assert_eq!(outcome(&busy, &r), expected);
    let w = busy.cloud.world.lock().unwrap();
    let creates: usize = [
        "CreateSnapshots",
        "CreateSnapshot",
        "CreateImage",
        "CreateDBSnapshot",
        "CreateDBClusterSnapshot",
    ]
    .iter()
    .map(|a| w.calls_of(a))
    .sum();
    // 50 that made something, and the throttled ones before them.
    assert!(creates > 60, "{creates} create calls");
}

#[tokio::test(start_paused = true)]
async fn unit_throttling_past_the_timeout_fails_the_target_naming_the_call() {
    let targets = Targets {
        volumes: 1,
        ..Targets::default()
    };
    let b = Bench::new(&targets).await;
    b.cloud.world.lock().unwrap().throttled_creates_in_ten = 10;
    let started = tokio::time::Instant::now();
    let r = backup::run(
        b.cloud(),
        b.store.clone(),
        "big",
        now(),
        backup::Wait {
            timeout: std::time::Duration::from_secs(300),
            ..WAIT
        },
    )
    .await
    .unwrap();
    // Retries stop at half the wait: the rest is left for the snapshots to
    // complete, and a policy timeout (the wait, at most) never fires first.
    let spent = started.elapsed();
    assert!(
        spent <= std::time::Duration::from_secs(160),
        "{spent:?} spent retrying"
    );
    assert_ne!(r.record.status, BackupStatus::Success);
    let problems = r.record.problems.join("\n");
    assert!(
        problems.contains("ec2:CreateSnapshot failed in account main (us-east-1)"),
        "{problems}"
    );
    assert!(problems.contains("RequestLimitExceeded"), "{problems}");
    // Tried again with growing pauses, not once and not without end.
    let calls = b.cloud.world.lock().unwrap().calls_of("CreateSnapshot");
    assert!((4..=20).contains(&calls), "{calls} calls");
}

#[tokio::test]
async fn unit_waits_over_450_amis_and_db_snapshots_chunk_their_filters() {
    let targets = Targets {
        amis: 450,
        rds: 450,
        aurora: 210,
        ..Targets::default()
    };
    let b = Bench::new(&targets).await;
    b.cloud.world.lock().unwrap().calls.clear();
    let r = b.backup().await;
    assert_eq!(
        r.record.status,
        BackupStatus::Success,
        "{:?}",
        r.record.problems.first()
    );
    let w = b.cloud.world.lock().unwrap();
    assert_eq!(w.images.len(), 450);
    assert_eq!(w.db_snapshots.len(), 660);
    // At most 200 ids per call: 3 for 450, 2 for 210, per look.
    assert!(
        w.calls_of("DescribeImages") >= 3,
        "{:?}",
        w.calls_of("DescribeImages")
    );
    assert!(w.calls_of("DescribeDBSnapshots") >= 3);
    assert!(w.calls_of("DescribeDBClusterSnapshots") >= 2);
}
