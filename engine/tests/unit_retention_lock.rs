//! Retention after a backup deletes only while the state lock it runs
//! under is still held. The emulator cannot act between two deletes of one
//! retention, so the in-memory fake breaks the lock right after the first
//! one (`World::after_delete`), as `lifeboat force-unlock` from another
//! terminal would.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use lifeboat_engine::backup::{self, BackupError};
use lifeboat_engine::cloud::Cloud;
use lifeboat_engine::plan::apply::{self, Executor};
use lifeboat_engine::plan::{observe, planner};
use lifeboat_engine::runmode::attempt::{self, Context, Trigger};
use lifeboat_engine::state::{SharedStore, Store};
use lifeboat_engine::testing::fake::{DeleteHook, FakeCloud};

const CONFIG: &str = r#"
account "main" {
  regions = ["us-east-1"]
}

policy "web" {
  account             = account.main
  generations         = 1
  auto_remove_targets = "no"

  instance "i-0000000a" {
    region = "us-east-1"
  }
}
"#;

const WAIT: backup::Wait = backup::Wait {
    timeout: std::time::Duration::from_secs(60),
    interval: std::time::Duration::from_millis(1),
};

fn at(hour: u32) -> DateTime<Utc> {
    format!("2026-11-22T{hour:02}:00:00Z").parse().unwrap()
}

/// The fake with one two-volume instance, and the policy applied.
async fn applied(path: &std::path::Path) -> (FakeCloud, SharedStore) {
    let config = lifeboat_schema::load_sources(&[("main.lb.hcl".into(), CONFIG.to_string())])
        .unwrap_or_else(|d| panic!("{d}"))
        .config;
    let fake = FakeCloud::new(10);
    fake.world
        .lock()
        .unwrap()
        .add_instance("i-0000000a", "us-east-1", &[], 2);
    let cloud: Arc<dyn Cloud> = Arc::new(fake.clone());
    let store = Arc::new(Mutex::new(Store::open(path).unwrap()));
    let state = store.lock().unwrap().load().unwrap();
    let obs = observe::observe(cloud.clone(), &config, &state)
        .await
        .unwrap();
    let plan = planner::plan(&config, &state, &obs, at(7)).unwrap();
    let exec = Arc::new(Executor {
        cloud,
        accounts: planner::known_accounts(&config, &state).unwrap(),
        store: store.clone(),
        now: at(7),
        lock_id: None,
        stop: Default::default(),
    });
    assert_eq!(apply::apply(&plan, exec, 4, |_, _| {}).await.failed(), 0);
    (fake, store)
}

#[tokio::test]
async fn retention_stops_deleting_once_the_state_lock_is_broken_and_the_backup_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (fake, store) = applied(&path).await;
    let cloud: Arc<dyn Cloud> = Arc::new(fake.clone());
    // Three backups without retention: all three expire at the next one.
    let limits = backup::Limits::default();
    for hour in [8, 9, 10] {
        backup::take(
            cloud.clone(),
            store.clone(),
            "web",
            at(hour),
            WAIT,
            vec![],
            &limits,
        )
        .await
        .unwrap();
    }
    let lock = store.lock().unwrap().lock("backup").unwrap();
    // Somebody breaks the lock right after the first snapshot delete.
    let breaker = path.clone();
    fake.world.lock().unwrap().after_delete = Some(DeleteHook(Arc::new(move |_| {
        let mut other = Store::open(&breaker).unwrap();
        if let Some(l) = other.current_lock().unwrap() {
            other.force_unlock(&l.id).unwrap();
        }
    })));
    let ctx = Context {
        config_dir: dir.path().to_path_buf(),
        notifications: None,
        limits: Default::default(),
        lock_id: Some(lock.id.clone()),
    };
    let run = attempt::run(
        cloud,
        store.clone(),
        "web",
        &Trigger::AdHoc,
        at(11),
        WAIT,
        &ctx,
    )
    .await;

    match &run.result {
        Err(e @ BackupError::HoldLost { lock: l, left, .. }) => {
            assert_eq!(l, &lock.id);
            assert!(*left > 0, "{e}");
            let said = e.to_string();
            assert!(said.contains(&lock.id), "{said}");
            assert!(said.contains("retention stopped deleting"), "{said}");
        }
        Err(e) => panic!("expected HoldLost, got {e}"),
        Ok(b) => panic!("expected HoldLost, retention did {:?}", b.retention),
    }
    let w = fake.world.lock().unwrap();
    assert_eq!(w.calls_of("DeleteSnapshot"), 1, "{:?}", w.calls);
    // Six expired snapshots (three backups of two volumes), one deleted.
    assert_eq!(w.snapshots.len(), 2 * 4 - 1);
    drop(w);
    let mut kept: Vec<String> = store
        .lock()
        .unwrap()
        .backups(Some("web"))
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect();
    kept.sort();
    assert_eq!(
        kept.len(),
        4,
        "every expired backup stays in the catalog: {kept:?}"
    );
}
