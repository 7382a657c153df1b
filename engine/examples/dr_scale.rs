//! Benchmark (not a test): the DR copies of one backup of 1,000 instance
//! targets to one other region, 20 copies in flight, against the in-memory
//! fake, where (unlike the emulator) a copy stays pending for a few looks.
//! Run with `scripts/bench.sh`.
//!
//! Prints the copy calls per artifact, the calls by action, the most copies
//! ever pending at the destination (the fake counts them) and wall times.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use lifeboat_engine::dr::{self, DrWork, Limits};
use lifeboat_engine::plan::apply::{self, Executor};
use lifeboat_engine::plan::{observe, planner};
use lifeboat_engine::runmode::attempt::{self, Context, Trigger};
use lifeboat_engine::state::Store;
use lifeboat_engine::testing::fake::FakeCloud;
use lifeboat_engine::{backup, cloud::Cloud};

const TARGETS: usize = 1_000;
const CAP: usize = 20;
/// Looks a copy stays pending for (real copies take minutes).
const POLLS: u32 = 3;

#[tokio::main]
async fn main() {
    let cloud = FakeCloud::new(1000);
    {
        let mut w = cloud.world.lock().unwrap();
        for n in 0..TARGETS {
            w.add_instance(&format!("i-{n:017x}"), "us-east-1", &[("team", "web")], 1);
        }
    }
    let text = "account \"main\" {\n  regions = [\"us-east-1\"]\n}\n\npolicy \"web\" {\n  account     = account.main\n  generations = 2\n\n  select {\n    tag   = \"team\"\n    value = \"web\"\n  }\n  dr {\n    regions = [\"us-west-2\"]\n  }\n}\n";
    let config = lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text.to_string())])
        .expect("valid")
        .config;
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
        timeout: std::time::Duration::from_secs(600),
        interval: std::time::Duration::from_millis(1),
    };
    let run = attempt::run(
        dyn_cloud.clone(),
        store.clone(),
        "web",
        &Trigger::AdHoc,
        now,
        wait,
        &Context::default(),
    )
    .await;
    assert!(run.succeeded, "the backup succeeds");
    let before: BTreeMap<String, usize> = count(&cloud);
    cloud.world.lock().unwrap().copies.copy_polls = POLLS;

    let t = Instant::now();
    let mut work = DrWork::new(dyn_cloud, store.clone(), Limits::new(CAP), now);
    work.interval = std::time::Duration::from_millis(1);
    let ended = dr::copy(&work, run.dr).await;
    let took = t.elapsed();
    let after = count(&cloud);
    let w = cloud.world.lock().unwrap();
    let max = w
        .copies
        .max_in_flight
        .get(&("main".to_string(), "us-west-2".to_string()))
        .copied()
        .unwrap_or(0);
    let status = ended
        .iter()
        .map(|r| match r {
            Ok(r) => r.status.as_str().to_string(),
            Err(e) => e.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    println!("targets: {TARGETS} instances (1 volume each), us-east-1 -> us-west-2, cap {CAP}, copies pending for {POLLS} looks");
    println!("DR run: {status} in {:.2}s", took.as_secs_f64());
    println!("DR calls by action:");
    let mut copies = 0;
    for (action, n) in &after {
        let n = n - before.get(action).copied().unwrap_or(0);
        if n > 0 {
            println!("  {action:<24} {n}");
        }
        if action == "CopySnapshot" {
            copies = n;
        }
    }
    println!(
        "copy calls per artifact: {:.3}; most copies pending at the destination: {max} (cap {CAP})",
        copies as f64 / TARGETS as f64
    );
}

/// Calls made so far, by action.
fn count(cloud: &FakeCloud) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for c in &cloud.world.lock().unwrap().calls {
        *out.entry(c.split(' ').next().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    out
}
