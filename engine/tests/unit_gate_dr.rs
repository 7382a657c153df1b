//! A runner's DR runs driven at once under its share of the state lock,
//! over the in-memory fake: its copies stay pending for a few looks, so
//! that the runs wait for AWS at the same time, which the emulator (copies
//! complete at once) cannot give.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use lifeboat_engine::backup;
use lifeboat_engine::cloud::Cloud;
use lifeboat_engine::dr::{self, DrWork, Limits};
use lifeboat_engine::plan::apply::{self, Executor};
use lifeboat_engine::plan::{observe, planner};
use lifeboat_engine::runmode::attempt::{self, Context, Trigger};
use lifeboat_engine::state::{DrStatus, LockGate, Owner, SharedStore, Store};
use lifeboat_engine::testing::fake::FakeCloud;

const WAIT: backup::Wait = backup::Wait {
    timeout: std::time::Duration::from_secs(60),
    interval: std::time::Duration::from_millis(1),
};

const CONFIG: &str = r#"
account "main" {
  regions = ["us-east-1"]
}

policy "web" {
  account     = account.main
  generations = 2

  instance "i-0000000a" {
    region = "us-east-1"
  }

  dr {
    regions = ["us-west-2", "eu-west-1"]
  }
}
"#;

fn at() -> DateTime<Utc> {
    "2026-11-22T10:00:00Z".parse().unwrap()
}

#[tokio::test]
async fn two_destinations_driven_at_once_give_their_shares_back_and_the_lock_is_let_go_of() {
    let cloud = FakeCloud::new(3);
    cloud
        .world
        .lock()
        .unwrap()
        .add_instance("i-0000000a", "us-east-1", &[], 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store: SharedStore = Arc::new(Mutex::new(Store::open(&path).unwrap()));
    let config = lifeboat_schema::load_sources(&[("main.lb.hcl".into(), CONFIG.into())])
        .unwrap_or_else(|d| panic!("{d}"))
        .config;
    let dyn_cloud: Arc<dyn Cloud> = Arc::new(cloud.clone());
    let state = store.lock().unwrap().load().unwrap();
    let obs = observe::observe(dyn_cloud.clone(), &config, &state)
        .await
        .unwrap();
    let plan = planner::plan(&config, &state, &obs, at()).unwrap();
    let exec = Arc::new(Executor {
        cloud: dyn_cloud.clone(),
        accounts: planner::known_accounts(&config, &state).unwrap(),
        store: store.clone(),
        now: at(),
        lock_id: None,
        stop: Default::default(),
    });
    assert_eq!(apply::apply(&plan, exec, 4, |_, _| {}).await.failed(), 0);
    let run = attempt::run(
        dyn_cloud.clone(),
        store.clone(),
        "web",
        &Trigger::AdHoc,
        at(),
        WAIT,
        &Context::default(),
    )
    .await;
    assert!(run.succeeded);
    assert_eq!(run.dr.len(), 2);

    // The runner's gate; each copy pending for a few looks, so that both
    // runs wait at once.
    let lease = store
        .lock()
        .unwrap()
        .take_lease(Duration::seconds(30))
        .unwrap();
    let gate = LockGate::new(
        store.clone(),
        "run",
        Duration::seconds(30),
        Default::default(),
        Arc::new(AtomicBool::new(false)),
        Owner {
            lease: lease.id,
            holder: lease.holder,
        },
        Arc::new(|_| {}),
    );
    cloud.world.lock().unwrap().copies.copy_polls = 5;
    let mut work = DrWork::new(dyn_cloud, store.clone(), Limits::new(5), at());
    work.interval = std::time::Duration::from_millis(5);
    work.gate = Some(gate.clone());
    let ended = dr::copy(&work, run.dr).await;
    for r in &ended {
        assert_eq!(r.as_ref().unwrap().status, DrStatus::Completed, "{r:?}");
    }
    // Every share given back: the lock is let go of, and an apply gets it.
    assert_eq!(gate.current(), None);
    assert_eq!(store.lock().unwrap().current_lock().unwrap(), None);
    let mut other = Store::open(&path).unwrap();
    other.lock("apply").unwrap();
}
