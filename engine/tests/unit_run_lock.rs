//! The runner's backups without the state lock through their wait for AWS,
//! over the in-memory fake: it keeps snapshots pending for as many looks as
//! a test wants, so that another writer (apply, `lifeboat backup`) can be
//! made to act at a chosen instant of the wait, in one process, which the
//! emulator (snapshots complete at once) cannot give.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use lifeboat_engine::backup::{self, Limits};
use lifeboat_engine::cloud::Cloud;
use lifeboat_engine::plan::apply::{ApplyError, Executor};
use lifeboat_engine::plan::{observe, planner, Action, Change, Effect};
use lifeboat_engine::state::{BackupStatus, LockGate, Owner, SharedStore, StateError, Store};
use lifeboat_engine::testing::fake::FakeCloud;
use lifeboat_engine::Address;
use lifeboat_schema::Config;

const WAIT: backup::Wait = backup::Wait {
    timeout: std::time::Duration::from_secs(60),
    interval: std::time::Duration::from_millis(10),
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
}
"#;

fn at(hour: u32) -> DateTime<Utc> {
    format!("2026-11-22T{hour:02}:00:00Z").parse().unwrap()
}

struct Bench {
    cloud: FakeCloud,
    store: SharedStore,
    config: Config,
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Bench {
    async fn new() -> Bench {
        let cloud = FakeCloud::new(10);
        cloud
            .world
            .lock()
            .unwrap()
            .add_instance("i-0000000a", "us-east-1", &[], 1);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = Arc::new(Mutex::new(Store::open(&path).unwrap()));
        let config = lifeboat_schema::load_sources(&[("main.lb.hcl".into(), CONFIG.into())])
            .unwrap()
            .config;
        let b = Bench {
            cloud,
            store,
            config,
            path,
            _dir: dir,
        };
        let state = b.store.lock().unwrap().load().unwrap();
        let obs = observe::observe(b.cloud(), &b.config, &state)
            .await
            .unwrap();
        let plan = planner::plan(&b.config, &state, &obs, at(9)).unwrap();
        let report =
            lifeboat_engine::plan::apply::apply(&plan, b.executor(&b.store), 4, |_, _| {}).await;
        assert_eq!(report.failed(), 0);
        b
    }

    fn cloud(&self) -> Arc<dyn Cloud> {
        Arc::new(self.cloud.clone())
    }

    fn executor(&self, store: &SharedStore) -> Arc<Executor> {
        let state = store.lock().unwrap().load().unwrap();
        Arc::new(Executor {
            cloud: self.cloud(),
            accounts: planner::known_accounts(&self.config, &state).unwrap(),
            store: store.clone(),
            now: at(10),
            lock_id: None,
            stop: Default::default(),
        })
    }

    /// Another process's view of the same state file.
    fn other(&self) -> SharedStore {
        Arc::new(Mutex::new(Store::open(&self.path).unwrap()))
    }

    /// A runner's gate: its lease taken, its lock free.
    fn gate(&self) -> LockGate {
        let lease = self
            .store
            .lock()
            .unwrap()
            .take_lease(Duration::seconds(30))
            .unwrap();
        LockGate::new(
            self.store.clone(),
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

    /// Starts a runner's backup of `web` whose snapshots stay pending for
    /// `looks` looks, and returns once it waits for them (the lock free).
    async fn backup_waiting(
        &self,
        gate: &LockGate,
        looks: u32,
    ) -> tokio::task::JoinHandle<Result<lifeboat_engine::state::BackupRecord, backup::BackupError>>
    {
        self.cloud.world.lock().unwrap().pending_describes = looks;
        let share = gate.enter().await.unwrap();
        let limits = Limits::default().with_gate(gate.clone());
        let (cloud, store) = (self.cloud(), self.store.clone());
        let task = tokio::spawn(async move {
            let _share = share;
            backup::take(cloud, store, "web", at(10), WAIT, vec![], &limits).await
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            {
                let s = self.store.lock().unwrap();
                let running = s
                    .backups(Some("web"))
                    .unwrap()
                    .iter()
                    .any(|b| b.status == BackupStatus::Running && !b.snapshots.is_empty());
                if running && s.current_lock().unwrap().is_none() {
                    break;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the backup never waited"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        task
    }
}

#[tokio::test]
async fn a_backup_waiting_for_aws_leaves_the_lock_and_the_lock_holder_leaves_the_backup() {
    let b = Bench::new().await;
    let gate = b.gate();
    let task = b.backup_waiting(&gate, 300).await;

    // Another process takes the lock while the backup waits.
    let other = b.other();
    let apply = other.lock().unwrap().lock("apply").unwrap();
    // Its reconciliation leaves the live runner's backup alone.
    let done = backup::reconcile_interrupted(b.cloud(), other.clone(), at(10))
        .await
        .unwrap();
    assert!(done.closed.is_empty(), "{:?}", done.closed);
    assert!(done.failed.is_empty());
    // Removing (or disabling) the policy is refused, naming the backup.
    let flights = other.lock().unwrap().in_flight(None).unwrap();
    assert_eq!(flights.len(), 1);
    assert_eq!(flights[0].policy, "web");
    let remove = Change::new(
        Address::Policy { name: "web".into() },
        Action::Delete,
        Effect::Control,
    );
    match b.executor(&other).perform(&remove).await {
        Err(ApplyError::State(StateError::InFlight { backup, what, .. })) => {
            assert_eq!(backup, flights[0].backup);
            assert_eq!(what, "policy.web (removing its policy)");
        }
        other => panic!("expected an in-flight refusal, got {other:?}"),
    }
    assert!(other
        .lock()
        .unwrap()
        .load()
        .unwrap()
        .policy("web")
        .unwrap()
        .is_some());
    // An unrelated change goes through.
    let mut tag = Change::new(
        Address::Account {
            name: "main".into(),
        },
        Action::Update,
        Effect::Control,
    );
    let account = other.lock().unwrap().load().unwrap().objects[&Address::Account {
        name: "main".into(),
    }]
        .clone();
    tag.before = Some(account.clone().into());
    tag.after = Some(account);
    b.executor(&other).perform(&tag).await.unwrap();

    // The backup comes out of its wait and waits for the lock; once the
    // apply lets go of it, the backup finishes under it.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    other.lock().unwrap().unlock(&apply.id).unwrap();
    let rec = task.await.unwrap().unwrap();
    assert_eq!(rec.status, BackupStatus::Success);
    assert!(b.store.lock().unwrap().in_flight(None).unwrap().is_empty());
    assert_eq!(
        b.store
            .lock()
            .unwrap()
            .backup_owner("web", &rec.id)
            .unwrap(),
        None
    );
    assert_eq!(gate.current(), None, "nothing needs the lock any more");
}

#[tokio::test]
async fn a_backup_whose_runner_lost_its_lease_is_reconciled_by_the_next_lock_holder() {
    let b = Bench::new().await;
    let gate = b.gate();
    let task = b.backup_waiting(&gate, 1_000_000).await;
    // The runner dies in its wait (its lease runs out, or is taken over).
    task.abort();
    let _ = task.await;
    let lease = b.store.lock().unwrap().current_lease().unwrap().unwrap();
    b.store.lock().unwrap().release_lease(&lease.id).unwrap();

    let other = b.other();
    let _apply = other.lock().unwrap().lock("backup").unwrap();
    assert!(other.lock().unwrap().in_flight(None).unwrap().is_empty());
    let done = backup::reconcile_interrupted(b.cloud(), other.clone(), at(11))
        .await
        .unwrap();
    assert_eq!(done.closed.len(), 1, "{:?}", done.failed);
    assert_eq!(done.closed[0].status, BackupStatus::Failed);
}
