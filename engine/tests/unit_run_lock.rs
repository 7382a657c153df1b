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
use lifeboat_engine::plan::{interlock, observe, planner, Action, Change, Effect};
use lifeboat_engine::runmode::attempt::{self, Context, Trigger};
use lifeboat_engine::state::{BackupStatus, LockGate, Owner, SharedStore, StateError, Store};
use lifeboat_engine::testing::apply_config;
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
        Bench::with("").await
    }

    /// With `extra` in the policy's block.
    async fn with(extra: &str) -> Bench {
        let cloud = FakeCloud::new(10);
        cloud
            .world
            .lock()
            .unwrap()
            .add_instance("i-0000000a", "us-east-1", &[], 1);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = Arc::new(Mutex::new(Store::open(&path).unwrap()));
        let text = CONFIG.replace("generations = 2", &format!("generations = 2\n  {extra}"));
        let config = lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text)])
            .unwrap()
            .config;
        let b = Bench {
            cloud,
            store,
            config,
            path,
            _dir: dir,
        };
        let report = apply_config(b.cloud(), &b.store, &b.config, at(9)).await;
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
        self.until_waiting().await;
        task
    }

    /// Returns once a backup of `web` waits for AWS, the lock free.
    async fn until_waiting(&self) {
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
    }

    fn status(&self, policy: &str) -> Vec<BackupStatus> {
        let s = self.store.lock().unwrap();
        s.backups(Some(policy))
            .unwrap()
            .iter()
            .map(|b| b.status)
            .collect()
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
        .value();
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

#[tokio::test]
async fn a_backup_timed_out_in_its_wait_is_closed_and_retained_under_the_lock() {
    let b = Bench::with("timeout = \"1s\"").await;
    let gate = b.gate();
    b.cloud.world.lock().unwrap().pending_describes = 1_000_000;
    let share = gate.enter().await.unwrap();
    let ctx = Context {
        limits: Limits::default().with_gate(gate.clone()),
        ..Context::default()
    };
    let (cloud, store) = (b.cloud(), b.store.clone());
    let task = tokio::spawn(async move {
        let _share = share;
        let run = attempt::run(cloud, store, "web", &Trigger::AdHoc, at(10), WAIT, &ctx).await;
        run.result
            .map(|r| r.record.status)
            .map_err(|e| e.to_string())
    });
    b.until_waiting().await;
    // An apply holds the lock when the policy's timeout drops the backup.
    let other = b.other();
    let apply = other.lock().unwrap().lock("apply").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    assert_eq!(
        b.status("web"),
        vec![BackupStatus::Running],
        "closed while another process held the lock"
    );
    other.lock().unwrap().unlock(&apply.id).unwrap();
    let ended = task.await.unwrap();
    assert_eq!(ended, Ok(BackupStatus::Failed));
    assert_eq!(b.status("web"), vec![BackupStatus::Failed]);
    // Every share given back: the lock is free.
    assert_eq!(gate.current(), None);
    assert_eq!(b.store.lock().unwrap().current_lock().unwrap(), None);
}

#[tokio::test]
async fn a_runner_holding_no_lock_refuses_to_delete() {
    let b = Bench::new().await;
    let gate = b.gate();
    let ctx = Context {
        limits: Limits::default().with_gate(gate.clone()),
        ..Context::default()
    };
    assert_eq!(gate.current(), None);
    assert!(ctx.retention_lock().is_err(), "None would check nothing");
    let _share = gate.enter().await.unwrap();
    assert_eq!(ctx.retention_lock().unwrap(), gate.current());
    // Without a gate the caller's lock (or none, in tests) is checked.
    assert_eq!(Context::default().retention_lock().unwrap(), None);
}

#[tokio::test]
async fn a_runners_backup_that_ended_in_an_error_is_disowned_and_reconciled() {
    let b = Bench::new().await;
    let gate = b.gate();
    let task = b.backup_waiting(&gate, 1_000_000).await;
    // The backup ends in an error, its runner alive: left `running`.
    task.abort();
    let _ = task.await;
    assert_eq!(b.store.lock().unwrap().in_flight(None).unwrap().len(), 1);
    let _share = gate.enter().await.unwrap();
    let disowned = b
        .store
        .lock()
        .unwrap()
        .disown_running("web", gate.owner())
        .unwrap();
    assert_eq!(disowned.len(), 1);
    assert!(b.store.lock().unwrap().in_flight(None).unwrap().is_empty());
    let done = backup::reconcile_interrupted(b.cloud(), b.store.clone(), at(11))
        .await
        .unwrap();
    assert_eq!(done.closed.len(), 1, "{:?}", done.failed);
    assert_eq!(b.status("web"), vec![BackupStatus::Failed]);
}

#[tokio::test]
async fn apply_removing_a_policy_with_a_backup_in_flight_deletes_nothing() {
    let b = Bench::new().await;
    // An earlier backup, whole.
    let earlier = backup::take(
        b.cloud(),
        b.store.clone(),
        "web",
        at(9),
        WAIT,
        vec![],
        &Limits::default(),
    )
    .await
    .unwrap();
    assert_eq!(earlier.status, BackupStatus::Success);
    let gate = b.gate();
    let task = b.backup_waiting(&gate, 300).await;
    let other = b.other();
    let apply = other.lock().unwrap().lock("apply").unwrap();
    // The policy removed from the configuration: its backups are deleted
    // before it, then it is removed.
    let config = lifeboat_schema::load_sources(&[(
        "main.lb.hcl".into(),
        "account \"main\" {\n  regions = [\"us-east-1\"]\n}\n".into(),
    )])
    .unwrap()
    .config;
    let state = other.lock().unwrap().load().unwrap();
    let obs = observe::observe(b.cloud(), &config, &state).await.unwrap();
    let plan = planner::plan(&config, &state, &obs, at(11)).unwrap();
    assert!(plan
        .changes
        .iter()
        .any(|c| matches!(c.address, Address::Backup { .. })));
    let report = lifeboat_engine::plan::apply::apply(&plan, b.executor(&other), 4, |_, _| {}).await;
    assert_eq!(report.done(), 0, "{report:?}");
    assert!(report.failed() >= 1);
    let backups = other.lock().unwrap().backups(Some("web")).unwrap();
    assert!(backups.iter().any(|r| r.id == earlier.id), "{backups:?}");
    let snap = &earlier.snapshots[0].id;
    assert!(b.cloud.world.lock().unwrap().snapshots.contains_key(snap));
    other.lock().unwrap().unlock(&apply.id).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn changing_the_dr_or_the_access_of_a_backup_in_flight_is_refused() {
    let b = Bench::new().await;
    let gate = b.gate();
    let task = b.backup_waiting(&gate, 300).await;
    let flights = b.store.lock().unwrap().in_flight(None).unwrap();
    let state = b.store.lock().unwrap().load().unwrap();
    let changed = |address: Address, key: &str, to: serde_json::Value| {
        let before = state.objects[&address].value();
        let mut after = before.clone();
        after[key] = to;
        let mut c = Change::new(address, Action::Update, Effect::Control);
        c.before = Some(before.into());
        c.after = Some(after);
        c
    };
    let account = Address::Account {
        name: "main".into(),
    };
    let policy = Address::Policy { name: "web".into() };
    for (c, what) in [
        (
            changed(
                account.clone(),
                "assume_role",
                serde_json::json!({"role_arn": "x"}),
            ),
            "changing how its account is reached",
        ),
        (
            changed(account.clone(), "profile", "other".into()),
            "changing how its account is reached",
        ),
        (
            changed(account.clone(), "account_id", "333333333333".into()),
            "changing how its account is reached",
        ),
        (
            changed(
                policy.clone(),
                "dr",
                serde_json::json!({"regions": ["us-west-2"]}),
            ),
            "changing its policy's DR",
        ),
    ] {
        assert_eq!(interlock::conflict(&c, &flights[0]), Some(what), "{c:?}");
    }
    // Tags of the account are not the backup's business.
    let c = changed(account, "tags", serde_json::json!({"team": "ops"}));
    assert_eq!(interlock::conflict(&c, &flights[0]), None);
    b.cloud.world.lock().unwrap().pending_describes = 0;
    task.await.unwrap().unwrap();
}
