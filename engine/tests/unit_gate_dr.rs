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
use lifeboat_engine::runmode::attempt::{self, Context, Trigger};
use lifeboat_engine::state::{DrStatus, LockGate, Owner, SharedStore, Store};
use lifeboat_engine::testing::apply_config;
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

/// The fake with instance `i-0000000a`, and `config` applied to a state
/// file in `dir`.
async fn applied(
    config: &str,
    dir: &std::path::Path,
) -> (FakeCloud, Arc<dyn Cloud>, SharedStore, std::path::PathBuf) {
    let cloud = FakeCloud::new(3);
    cloud
        .world
        .lock()
        .unwrap()
        .add_instance("i-0000000a", "us-east-1", &[], 1);
    let path = dir.join("state.db");
    let store: SharedStore = Arc::new(Mutex::new(Store::open(&path).unwrap()));
    let config = lifeboat_schema::load_sources(&[("main.lb.hcl".into(), config.into())])
        .unwrap_or_else(|d| panic!("{d}"))
        .config;
    let dyn_cloud: Arc<dyn Cloud> = Arc::new(cloud.clone());
    let report = apply_config(dyn_cloud.clone(), &store, &config, at()).await;
    assert_eq!(report.failed(), 0);
    (cloud, dyn_cloud, store, path)
}

/// The runner's gate over `store`, under a lease of its own.
fn gate(store: &SharedStore) -> LockGate {
    let lease = store
        .lock()
        .unwrap()
        .take_lease(Duration::seconds(30))
        .unwrap();
    LockGate::new(
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
    )
}

#[tokio::test]
async fn two_destinations_driven_at_once_give_their_shares_back_and_the_lock_is_let_go_of() {
    let dir = tempfile::tempdir().unwrap();
    let (cloud, dyn_cloud, store, path) = applied(CONFIG, dir.path()).await;
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
    let gate = gate(&store);
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

#[tokio::test]
async fn a_run_waiting_for_room_at_its_destination_waits_without_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let one = CONFIG.replace("[\"us-west-2\", \"eu-west-1\"]", "[\"us-west-2\"]");
    let (cloud, dyn_cloud, store, _path) = applied(&one, dir.path()).await;
    // Two backups, so two DR runs to the one destination.
    let mut runs = Vec::new();
    for minutes in [0, 10] {
        let run = attempt::run(
            dyn_cloud.clone(),
            store.clone(),
            "web",
            &Trigger::AdHoc,
            at() + Duration::minutes(minutes),
            WAIT,
            &Context::default(),
        )
        .await;
        assert!(run.succeeded);
        runs.extend(run.dr);
    }
    assert_eq!(runs.len(), 2);
    let gate = gate(&store);
    cloud.world.lock().unwrap().copies.copy_polls = 20;
    // Room for one copy at a time: one run copies, the other waits for room.
    let mut work = DrWork::new(dyn_cloud, store.clone(), Limits::new(1), at());
    work.interval = std::time::Duration::from_millis(5);
    work.gate = Some(gate.clone());
    let copying = tokio::spawn(async move { dr::copy(&work, runs).await });
    // The first copy is pending for at least 100 ms (20 looks 5 ms
    // apart), the other run waiting for room meanwhile: held through that
    // wait, the lock would stay taken all along. It is taken only for
    // the runs' short commits.
    let mut held_since: Option<std::time::Instant> = None;
    let mut longest = std::time::Duration::ZERO;
    while !copying.is_finished() {
        let held = store.lock().unwrap().current_lock().unwrap().is_some();
        match (held, held_since) {
            (true, None) => held_since = Some(std::time::Instant::now()),
            (true, Some(t)) => longest = longest.max(t.elapsed()),
            (false, _) => held_since = None,
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    for r in copying.await.unwrap() {
        assert_eq!(r.unwrap().status, DrStatus::Completed);
    }
    assert!(
        longest < std::time::Duration::from_millis(50),
        "the lock was held for {longest:?} while a run waited for room"
    );
    assert_eq!(gate.current(), None);
}
