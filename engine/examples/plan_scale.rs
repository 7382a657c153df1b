//! Benchmark (not a test): plan over 10,000 instances and 50,000 catalog
//! snapshots (`PLAN_SCALE_SNAPSHOTS` sets another count: one backup per
//! 10,000), the policy's `generations` lowered to 3 so that most of the
//! catalog expires (`PLAN_SCALE_GENERATIONS` sets another: as many as the
//! backups for a catalog in its steady state, nothing to delete), against the in-memory fake paging 1,000 items a page, with the
//! state in a real SQLite file. Run with `scripts/bench.sh`.
//!
//! Prints wall times of each phase, the list calls the observation made,
//! the resident memory after each phase and the peak. The state file is
//! written by a child process (this program again), so that what writing
//! it allocated and freed does not hide in this process's heap; the fake's
//! world (its instances and snapshots), which a real `plan` does not carry,
//! is resident before the plan starts, and the plan's own peak is measured
//! from there (the peak is reset at that point, `/proc/self/clear_refs`).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use lifeboat_engine::plan::render;
use lifeboat_engine::plan::{observe, planner};
use lifeboat_engine::state::model::{Source, TargetKind, TargetState};
use lifeboat_engine::state::{BackupRecord, BackupStatus, SnapshotRecord, Store};
use lifeboat_engine::testing::fake::FakeCloud;
use lifeboat_engine::Address;
use lifeboat_schema::Config;

const INSTANCES: usize = 10_000;
const SNAPSHOTS: usize = 50_000;
const GENERATIONS_AFTER: u32 = 3;

/// The policy's `generations` in the configuration planned.
fn generations_after() -> u32 {
    std::env::var("PLAN_SCALE_GENERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(GENERATIONS_AFTER)
}
const REGIONS: [&str; 2] = ["us-east-1", "us-west-2"];
/// Set in the child that writes the state file: the file's path.
const WRITE_STATE: &str = "PLAN_SCALE_WRITE_STATE";

/// A writer that only counts what is written to it.
struct Counted(usize);

impl std::io::Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A figure of `/proc/self/status` in MiB: `VmHWM` (peak), `VmRSS` (now).
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// Resets the peak to the present resident memory (Linux: "5" to
/// `clear_refs`), so that the next peak is the plan's, not the setup's.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn config() -> Config {
    let generations = generations_after();
    let config_text = format!(
        "account \"main\" {{\n  regions = [\"us-east-1\", \"us-west-2\"]\n}}\n\npolicy \"web\" {{\n  account     = account.main\n  generations = {generations}\n\n  select {{\n    tag   = \"team\"\n    value = \"web\"\n  }}\n}}\n"
    );
    lifeboat_schema::load_sources(&[("main.lb.hcl".into(), config_text)])
        .expect("valid")
        .config
}

/// The catalog's snapshots: `backups` backups, each of every instance but
/// the last, which holds what is left of `snapshots`.
fn backup(b: usize, snapshots: usize, start: DateTime<Utc>) -> BackupRecord {
    let started = start + Duration::hours(b as i64);
    let covered = (snapshots - b * INSTANCES).min(INSTANCES);
    BackupRecord {
        seq: 0,
        id: started.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        policy: "web".into(),
        account: "main".into(),
        started,
        finished: Some(started),
        status: BackupStatus::Success,
        frozen: None,
        snapshots: (0..covered)
            .map(|n| SnapshotRecord {
                id: format!("snap-{b:02x}{n:015x}"),
                volume_id: format!("vol-{n:017x}"),
                target: format!("i-{n:017x}"),
                region: REGIONS[n % 2].into(),
                kind: Default::default(),
                image: None,
            })
            .collect(),
        problems: vec![],
    }
}

/// Prior state: the policy with every instance a target, and the backups,
/// in a real SQLite file at `path`.
fn write_state(path: &Path, snapshots: usize, start: DateTime<Utc>) {
    let config = config();
    let backups = snapshots.div_ceil(INSTANCES);
    let mut store = Store::open(path).unwrap();
    let policy_state = lifeboat_engine::state::model::PolicyState::from(&config.policies["web"]);
    let mut prior_policy = serde_json::to_value(&policy_state).unwrap();
    prior_policy["generations"] = serde_json::json!(backups as u32);
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
                    region: REGIONS[n % 2].into(),
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
    for b in 0..backups {
        let record = backup(b, snapshots, start);
        store.transaction(|tx| tx.insert_backup(&record)).unwrap();
    }
}

/// The fake's world: the instances, and the catalog's snapshots completed.
fn fill_world(cloud: &FakeCloud, snapshots: usize, start: DateTime<Utc>) {
    let mut w = cloud.world.lock().unwrap();
    for n in 0..INSTANCES {
        w.add_instance(
            &format!("i-{n:017x}"),
            REGIONS[n % 2],
            &[("team", "web")],
            1,
        );
    }
    for b in 0..snapshots.div_ceil(INSTANCES) {
        for s in backup(b, snapshots, start).snapshots {
            w.snapshots.insert(
                s.id.clone(),
                lifeboat_engine::cloud::Snapshot {
                    id: s.id,
                    volume_id: s.volume_id,
                    region: s.region,
                    state: lifeboat_engine::cloud::SnapshotState::Completed,
                    started: None,
                    tags: [("lifeboat:policy".to_string(), "web".to_string())].into(),
                },
            );
        }
    }
}

#[tokio::main]
async fn main() {
    let snapshots: usize = std::env::var("PLAN_SCALE_SNAPSHOTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SNAPSHOTS);
    let backups = snapshots.div_ceil(INSTANCES);
    // One start for both processes: the backup ids derive from it.
    let start = match std::env::var("PLAN_SCALE_START") {
        Ok(at) => at.parse().expect("start"),
        Err(_) => Utc::now() - Duration::days(10),
    };
    if let Ok(path) = std::env::var(WRITE_STATE) {
        write_state(Path::new(&path), snapshots, start);
        return;
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let t = Instant::now();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .env(WRITE_STATE, &path)
        .env("PLAN_SCALE_SNAPSHOTS", snapshots.to_string())
        .env("PLAN_SCALE_START", start.to_rfc3339())
        .status()
        .unwrap();
    assert!(status.success(), "writing the state failed");
    let cloud = FakeCloud::new(1000);
    fill_world(&cloud, snapshots, start);
    let config = config();
    let setup = t.elapsed();
    let before = status_mib("VmRSS:");
    let reset = reset_peak();

    let t = Instant::now();
    let mut store = Store::open(&path).unwrap();
    let state = store.load().unwrap();
    let load = t.elapsed();
    let after_load = status_mib("VmRSS:");

    cloud.world.lock().unwrap().calls.clear();
    let t = Instant::now();
    let obs = observe::observe(Arc::new(cloud.clone()), &config, &state)
        .await
        .unwrap();
    let observe = t.elapsed();
    let calls = cloud.world.lock().unwrap().calls.len();
    let after_observe = status_mib("VmRSS:");

    let t = Instant::now();
    let plan = planner::plan(&config, &state, &obs, Utc::now()).unwrap();
    let diff = t.elapsed();
    let after_diff = status_mib("VmRSS:");

    // Written as `lifeboat plan --json` writes it, change by change to
    // its output (here counted, not kept).
    let t = Instant::now();
    let human = render::human(&plan);
    let mut json = Counted(0);
    render::json_to(&plan, &mut json).unwrap();
    let rendering = t.elapsed();

    println!("instances {INSTANCES}, catalog snapshots {snapshots}, backups {backups}, generations {backups} -> {}", generations_after());
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
        json.0 / 1024
    );
    println!(
        "plan total:   {:>8.3}s",
        (load + observe + diff).as_secs_f64()
    );
    println!(
        "resident:     {before:.1} MiB before the plan (runtime and the fake's world), \
         {after_load:.1} after load, {after_observe:.1} after observe, {after_diff:.1} after diff, \
         {:.1} after render",
        status_mib("VmRSS:")
    );
    let peak = status_mib("VmHWM:");
    if reset {
        println!(
            "peak RSS:     {peak:>8.1} MiB from the plan's start; the plan's own: {:.1} MiB above the {before:.1} MiB before it",
            peak - before
        );
    } else {
        println!("peak RSS:     {peak:>8.1} MiB (whole process, the fake's world included: the peak could not be reset)");
    }
}
