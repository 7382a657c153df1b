//! Benchmark (not a test): a recovery scenario of 50 instances (two volumes
//! each, rebuilt from their snapshots) after 5 RDS databases, against the
//! in-memory fake, where (unlike the emulator) a launched instance stays
//! `pending` and a restored database `creating` for a few looks. Run with
//! `scripts/bench.sh`.
//!
//! Prints the AWS calls per restored instance and per database, the calls
//! by action, the wall time of planning and of the recovery with at most
//! five restores in flight, and the same restores one at a time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lifeboat_engine::backup;
use lifeboat_engine::cloud::restore::{DbShape, Disk, InstanceShape};
use lifeboat_engine::cloud::{Cloud, DbSnapshotKind};
use lifeboat_engine::plan::apply::{self, Executor};
use lifeboat_engine::plan::{observe, planner};
use lifeboat_engine::recovery::recover::Recoverer;
use lifeboat_engine::recovery::scenario;
use lifeboat_engine::restore::Which;
use lifeboat_engine::state::Store;
use lifeboat_engine::testing::fake::FakeCloud;

const INSTANCES: usize = 50;
const DATABASES: usize = 5;
/// Looks a new instance stays pending, and a new database creating.
const LOOKS: u32 = 3;
/// Time between two looks (real restores look every few seconds).
const INTERVAL: Duration = Duration::from_millis(20);

fn shape(n: usize) -> InstanceShape {
    let disk = |d: usize, device: &str| Disk {
        volume_id: format!("vol-{n:08x}{d:09x}"),
        device: device.into(),
        availability_zone: "us-east-1a".into(),
        size_gib: 8,
        volume_type: "gp3".into(),
        delete_on_termination: true,
        ..Disk::default()
    };
    InstanceShape {
        instance_type: "t3.large".into(),
        architecture: "x86_64".into(),
        root_device: "/dev/xvda".into(),
        availability_zone: "us-east-1a".into(),
        disks: vec![disk(0, "/dev/xvda"), disk(1, "/dev/xvdb")],
        ..InstanceShape::default()
    }
}

fn config() -> lifeboat_schema::Config {
    let ids: Vec<String> = (0..INSTANCES).map(|n| format!("i-{n:017x}")).collect();
    let mut text = String::from("account \"main\" {\n  regions = [\"us-east-1\"]\n}\n\npolicy \"prod\" {\n  account     = account.main\n  generations = 2\n");
    for id in &ids {
        text.push_str(&format!(
            "  instance \"{id}\" {{\n    region = \"us-east-1\"\n  }}\n"
        ));
    }
    for d in 0..DATABASES {
        text.push_str(&format!(
            "  rds \"orders-{d}\" {{\n    region = \"us-east-1\"\n  }}\n"
        ));
    }
    text.push_str("}\n\nrecovery_scenario \"all\" {\n");
    let dbs: Vec<String> = (0..DATABASES).map(|d| format!("\"db{d}\"")).collect();
    for d in 0..DATABASES {
        text.push_str(&format!(
            "  step \"db{d}\" {{\n    rds = \"orders-{d}\"\n  }}\n"
        ));
    }
    let list: Vec<String> = ids.iter().map(|i| format!("\"{i}\"")).collect();
    text.push_str(&format!(
        "  step \"app\" {{\n    instances = [{}]\n    after     = [{}]\n  }}\n}}\n",
        list.join(", "),
        dbs.join(", ")
    ));
    lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text)])
        .expect("valid")
        .config
}

fn counts(cloud: &FakeCloud) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for c in &cloud.world.lock().unwrap().calls {
        *out.entry(c.split(' ').next().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    out
}

/// A fresh world with its backup taken; what the recovery needs.
async fn world() -> (
    FakeCloud,
    Recoverer,
    tempfile::TempDir,
    lifeboat_schema::Config,
) {
    let cloud = FakeCloud::new(1000);
    {
        let mut w = cloud.world.lock().unwrap();
        for n in 0..INSTANCES {
            w.add_shaped_instance(&format!("i-{n:017x}"), "us-east-1", shape(n));
        }
        for d in 0..DATABASES {
            w.add_database(
                "us-east-1",
                DbShape {
                    identifier: format!("orders-{d}"),
                    kind: Some(DbSnapshotKind::Instance),
                    class: "db.t3.large".into(),
                    engine: "postgres".into(),
                    ..DbShape::default()
                },
            );
        }
    }
    let config = config();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Mutex::new(
        Store::open(&dir.path().join("state.db")).unwrap(),
    ));
    let dyn_cloud: Arc<dyn Cloud> = Arc::new(cloud.clone());
    let now = chrono::Utc::now();
    let state = store.lock().unwrap().load().unwrap();
    let obs = observe::observe(dyn_cloud.clone(), &config, &state)
        .await
        .unwrap();
    let plan = planner::plan(&config, &state, &obs, now).unwrap();
    let exec = Arc::new(Executor {
        cloud: dyn_cloud.clone(),
        accounts: planner::known_accounts(&config, &state).unwrap(),
        store: store.clone(),
        now,
        lock_id: None,
        stop: Default::default(),
    });
    assert_eq!(apply::apply(&plan, exec, 8, |_, _| {}).await.failed(), 0);
    let wait = backup::Wait {
        timeout: Duration::from_secs(600),
        interval: Duration::from_millis(1),
    };
    let b = backup::run(dyn_cloud.clone(), store.clone(), "prod", now, wait)
        .await
        .unwrap();
    assert!(b.record.problems.is_empty(), "{:?}", b.record.problems);
    {
        let mut w = cloud.world.lock().unwrap();
        w.launch_pending = LOOKS;
        w.db_creating = LOOKS;
    }
    let rec = Recoverer {
        cloud: dyn_cloud,
        store,
        accounts: Arc::new(config.accounts.clone()),
        operator: "bench".into(),
        wait: backup::Wait {
            timeout: Duration::from_secs(600),
            interval: INTERVAL,
        },
    };
    (cloud, rec, dir, config)
}

#[tokio::main]
async fn main() {
    let (cloud, rec, _dir, config) = world().await;
    let sc = config.recovery_scenario("all").unwrap();
    let before = counts(&cloud);
    let t = Instant::now();
    let p = scenario::plan(
        &rec.cloud,
        &rec.store,
        &rec.accounts,
        sc,
        &Which::Latest,
        None,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let planned = t.elapsed();
    let t = Instant::now();
    let report = rec.run(&p).await;
    let recovered = t.elapsed();
    assert!(report.ok, "{:?}", report.problem());
    let after = counts(&cloud);
    let diff: BTreeMap<&String, usize> = after
        .iter()
        .map(|(k, v)| (k, v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect();
    let total: usize = diff.values().sum();
    let db_calls: usize = diff
        .iter()
        .filter(|(k, _)| k.contains("DB"))
        .map(|(_, v)| *v)
        .sum();
    println!(
        "{INSTANCES} instances (2 volumes each) after {DATABASES} databases, {} waves, \
         {LOOKS} looks until ready, {} ms between looks",
        p.waves.len(),
        INTERVAL.as_millis()
    );
    println!(
        "calls: {total} in all; per restored instance {:.1}, per database {:.1}",
        (total - db_calls) as f64 / INSTANCES as f64,
        db_calls as f64 / DATABASES as f64
    );
    for (k, v) in &diff {
        println!("  {k:<34} {v}");
    }
    println!(
        "plan {} ms; recovery {} ms with at most 5 in flight (RTO {} s)",
        planned.as_millis(),
        recovered.as_millis(),
        report.rto_seconds().unwrap_or(0)
    );

    // The same restores one at a time, for comparison.
    let (_cloud, rec, _dir2, config) = world().await;
    let sc = config.recovery_scenario("all").unwrap();
    let p = scenario::plan(
        &rec.cloud,
        &rec.store,
        &rec.accounts,
        sc,
        &Which::Latest,
        None,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let t = Instant::now();
    for (_, r) in p.restores() {
        let runner = lifeboat_engine::restore::run::Runner {
            cloud: &rec.cloud,
            store: &rec.store,
            accounts: &rec.accounts,
            operator: "bench".into(),
            wait: rec.wait,
        };
        runner.run(r).await.unwrap();
    }
    println!("one at a time: {} ms", t.elapsed().as_millis());
}
