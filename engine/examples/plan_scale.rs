//! Benchmark (not a test): plan over 10,000 instances and 50,000 catalog
//! snapshots, against the in-memory fake paging 1,000 items a page, with the
//! state in a real SQLite file. Run with `scripts/bench.sh`.
//!
//! Prints wall times of each phase, the list calls the observation made and
//! the peak resident memory.

use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, Utc};
use lifeboat_engine::plan::render;
use lifeboat_engine::plan::{observe, planner};
use lifeboat_engine::state::model::{Source, TargetKind, TargetState};
use lifeboat_engine::state::{BackupRecord, BackupStatus, SnapshotRecord, Store};
use lifeboat_engine::testing::fake::FakeCloud;
use lifeboat_engine::Address;

const INSTANCES: usize = 10_000;
const BACKUPS: usize = 5;
const GENERATIONS_AFTER: u32 = 3;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

#[tokio::main]
async fn main() {
    let regions = ["us-east-1", "us-west-2"];
    let cloud = FakeCloud::new(1000);
    {
        let mut w = cloud.world.lock().unwrap();
        for n in 0..INSTANCES {
            w.add_instance(
                &format!("i-{n:017x}"),
                regions[n % 2],
                &[("team", "web")],
                1,
            );
        }
    }
    let config_text = format!(
        "account \"main\" {{\n  regions = [\"us-east-1\", \"us-west-2\"]\n}}\n\npolicy \"web\" {{\n  account     = account.main\n  generations = {GENERATIONS_AFTER}\n\n  select {{\n    tag   = \"team\"\n    value = \"web\"\n  }}\n}}\n"
    );
    let config = lifeboat_schema::load_sources(&[("main.lb.hcl".into(), config_text)])
        .expect("valid")
        .config;

    // Prior state: the policy with every instance a target, and BACKUPS
    // backups of all of them (50,000 snapshots), in a real SQLite file.
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("state.db")).unwrap();
    let t = Instant::now();
    let policy_state = lifeboat_engine::state::model::PolicyState::from(&config.policies["web"]);
    let mut prior_policy = serde_json::to_value(&policy_state).unwrap();
    prior_policy["generations"] = serde_json::json!(BACKUPS as u32);
    store
        .transaction(|tx| {
            tx.put_object(
                &Address::account("main"),
                &serde_json::to_value(&config.accounts["main"]).unwrap(),
            )?;
            tx.put_object(&Address::policy("web"), &prior_policy)?;
            for n in 0..INSTANCES {
                let id = format!("i-{n:017x}");
                let target = TargetState {
                    kind: TargetKind::Instance,
                    id: id.clone(),
                    account: "main".into(),
                    region: regions[n % 2].into(),
                    source: Source::Tag(config.policies["web"].selectors[0].clone()),
                    volumes: Default::default(),
                    exclude_volumes: vec![],
                    mode: Default::default(),
                    ami_rotation: None,
                };
                tx.put_object(
                    &Address::target("web", &id),
                    &serde_json::to_value(&target).unwrap(),
                )?;
            }
            Ok(())
        })
        .unwrap();
    let start = Utc::now() - Duration::days(10);
    for b in 0..BACKUPS {
        let id = format!("2026-11-1{b}T10:00:00Z");
        let record = BackupRecord {
            seq: 0,
            id: id.clone(),
            policy: "web".into(),
            account: "main".into(),
            started: start + Duration::hours(b as i64),
            finished: Some(start + Duration::hours(b as i64)),
            status: BackupStatus::Success,
            frozen: None,
            snapshots: (0..INSTANCES)
                .map(|n| SnapshotRecord {
                    id: format!("snap-{b}{n:016x}"),
                    volume_id: format!("vol-{n:017x}"),
                    target: format!("i-{n:017x}"),
                    region: regions[n % 2].into(),
                    kind: Default::default(),
                    image: None,
                })
                .collect(),
            problems: vec![],
        };
        {
            let mut w = cloud.world.lock().unwrap();
            for s in &record.snapshots {
                w.snapshots.insert(
                    s.id.clone(),
                    lifeboat_engine::cloud::Snapshot {
                        id: s.id.clone(),
                        volume_id: s.volume_id.clone(),
                        region: s.region.clone(),
                        state: lifeboat_engine::cloud::SnapshotState::Completed,
                        started: None,
                        tags: [("lifeboat:policy".to_string(), "web".to_string())].into(),
                    },
                );
            }
        }
        store.transaction(|tx| tx.insert_backup(&record)).unwrap();
    }
    let setup = t.elapsed();

    let t = Instant::now();
    let state = store.load().unwrap();
    let load = t.elapsed();

    cloud.world.lock().unwrap().calls.clear();
    let t = Instant::now();
    let obs = observe::observe(Arc::new(cloud.clone()), &config, &state)
        .await
        .unwrap();
    let observe = t.elapsed();
    let calls = cloud.world.lock().unwrap().calls.len();

    let t = Instant::now();
    let plan = planner::plan(&config, &state, &obs, Utc::now()).unwrap();
    let diff = t.elapsed();

    let t = Instant::now();
    let human = render::human(&plan);
    let json = render::json(&plan);
    let rendering = t.elapsed();

    println!("instances {INSTANCES}, catalog snapshots {}, backups {BACKUPS}, generations {BACKUPS} -> {GENERATIONS_AFTER}", INSTANCES * BACKUPS);
    println!(
        "state setup (not part of a plan): {:.2}s",
        setup.as_secs_f64()
    );
    println!("load state:   {:>8.3}s", load.as_secs_f64());
    println!(
        "observe:      {:>8.3}s  ({calls} list calls of 1,000 items a page)",
        observe.as_secs_f64()
    );
    println!(
        "diff:         {:>8.3}s  ({} changes: {} to destroy)",
        diff.as_secs_f64(),
        plan.changes.len(),
        plan.summary.destroy
    );
    println!(
        "render:       {:>8.3}s  (human {} KiB, JSON {} KiB)",
        rendering.as_secs_f64(),
        human.len() / 1024,
        json.len() / 1024
    );
    println!(
        "plan total:   {:>8.3}s",
        (load + observe + diff).as_secs_f64()
    );
    println!("peak RSS:     {:>8.1} MiB", peak_rss_mib());
}
