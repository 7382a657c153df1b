//! The retention after a backup over the in-memory fake: it observes the
//! policy's catalog snapshots as a plan does, so a backup damaged outside
//! Lifeboat does not count as a generation, an account that forbids
//! deletion keeps everything, and a failed observation deletes nothing.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use lifeboat_engine::cloud::{Cloud, ErrorKind};
use lifeboat_engine::plan::apply::{self, Executor, Outcome};
use lifeboat_engine::plan::observe::{self, Observation};
use lifeboat_engine::plan::{planner, Action, Plan};
use lifeboat_engine::state::{BackupRecord, SharedStore, Store};
use lifeboat_engine::testing::fake::FakeCloud;
use lifeboat_engine::{backup, Address};
use lifeboat_schema::Config;

const WAIT: backup::Wait = backup::Wait {
    timeout: std::time::Duration::from_secs(60),
    interval: std::time::Duration::from_millis(1),
};

fn config(generations: u32, allow_delete: bool) -> Config {
    let text = format!(
        r#"
account "main" {{
  regions      = ["us-east-1"]
  allow_delete = {allow_delete}
}}

policy "web" {{
  account             = account.main
  generations         = {generations}
  auto_remove_targets = "no"

  instance "i-0000000a" {{
    region = "us-east-1"
  }}
}}
"#
    );
    lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text)])
        .unwrap_or_else(|d| panic!("{d}"))
        .config
}

fn at(hour: u32) -> DateTime<Utc> {
    format!("2026-11-22T{hour:02}:00:00Z").parse().unwrap()
}

struct Bench {
    cloud: FakeCloud,
    store: SharedStore,
    config: Config,
    _dir: tempfile::TempDir,
}

impl Bench {
    /// One instance with two volumes; the fake pages every two items.
    async fn applied(config: Config) -> Bench {
        let cloud = FakeCloud::new(2);
        cloud
            .world
            .lock()
            .unwrap()
            .add_instance("i-0000000a", "us-east-1", &[], 2);
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Mutex::new(
            Store::open(&dir.path().join("state.db")).unwrap(),
        ));
        let b = Bench {
            cloud,
            store,
            config,
            _dir: dir,
        };
        let report = b.apply(&b.plan().await).await;
        assert_eq!(report.failed(), 0);
        b
    }

    fn cloud(&self) -> Arc<dyn Cloud> {
        Arc::new(self.cloud.clone())
    }

    async fn plan(&self) -> Plan {
        let state = self.store.lock().unwrap().load().unwrap();
        let obs = observe::observe(self.cloud(), &self.config, &state)
            .await
            .unwrap();
        planner::plan(&self.config, &state, &obs, at(20)).unwrap()
    }

    async fn apply(&self, plan: &Plan) -> apply::Report {
        let state = self.store.lock().unwrap().load().unwrap();
        let exec = Arc::new(Executor {
            cloud: self.cloud(),
            accounts: planner::known_accounts(&self.config, &state).unwrap(),
            store: self.store.clone(),
            now: at(20),
            lock_id: None,
            stop: Default::default(),
        });
        apply::apply(plan, exec, 4, |_, _| {}).await
    }

    async fn backup(&self, hour: u32) -> backup::BackupResult {
        backup::run(self.cloud(), self.store.clone(), "web", at(hour), WAIT)
            .await
            .unwrap()
    }

    fn catalog(&self) -> Vec<BackupRecord> {
        self.store.lock().unwrap().backups(Some("web")).unwrap()
    }

    fn backup_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.catalog().into_iter().map(|b| b.id).collect();
        ids.sort();
        ids
    }
}

fn id(hour: u32) -> String {
    format!("2026-11-22T{hour:02}:00:00Z")
}

/// What observing would say if every catalog snapshot existed: the guess the
/// retention after a backup used to make.
fn everything_exists(backups: &[BackupRecord]) -> Observation {
    let mut o = Observation::default();
    for b in backups {
        for s in &b.snapshots {
            o.snapshots.insert(
                s.id.clone(),
                lifeboat_engine::cloud::Snapshot {
                    id: s.id.clone(),
                    volume_id: s.volume_id.clone(),
                    region: s.region.clone(),
                    state: lifeboat_engine::cloud::SnapshotState::Completed,
                    started: None,
                    tags: Default::default(),
                },
            );
        }
    }
    o
}

#[tokio::test]
async fn a_backup_whose_snapshot_was_deleted_outside_lifeboat_is_not_a_generation_after_a_backup() {
    let b = Bench::applied(config(2, true)).await;
    b.backup(10).await;
    b.backup(11).await;
    // One snapshot of the 11:00 backup is deleted outside Lifeboat.
    let lost = b
        .catalog()
        .into_iter()
        .find(|r| r.id == id(11))
        .unwrap()
        .snapshots[0]
        .id
        .clone();
    b.cloud.world.lock().unwrap().snapshots.remove(&lost);

    // Had retention assumed every snapshot exists, the 12:00 backup would
    // have made 10:00 the third generation and deleted it.
    let state = b.store.lock().unwrap().load().unwrap();
    let pol = state.policy("web").unwrap().unwrap();
    let mut with_next = state.clone();
    let mut next = state.backups[0].clone();
    next.id = id(12);
    next.started = at(12);
    next.snapshots.clear();
    with_next.backups.push(next);
    let guessed =
        backup::retention_plan(&with_next, &pol, &everything_exists(&state.backups), at(12))
            .unwrap();
    assert!(guessed
        .changes
        .iter()
        .any(|c| c.address == Address::backup("web", &id(10))));

    // Observed, the damaged 11:00 backup is partial: 12:00 and 10:00 are the
    // two whole generations, and nothing is deleted.
    let r = b.backup(12).await;
    assert_eq!(r.retention.failed(), 0, "{:?}", r.retention);
    assert!(r.retention.outcomes.is_empty(), "{:?}", r.retention);
    assert_eq!(b.backup_ids(), [id(10), id(11), id(12)]);
    assert_eq!(b.cloud.world.lock().unwrap().calls_of("DeleteSnapshot"), 0);

    // The plan judges the same way: it forgets the lost snapshot, and
    // deletes nothing.
    let plan = b.plan().await;
    let changes: Vec<(Action, String)> = plan
        .changes
        .iter()
        .map(|c| (c.action, c.address.to_string()))
        .collect();
    assert_eq!(
        changes,
        [(Action::Read, format!("snapshot[\"{lost}\"]"))],
        "{plan:?}"
    );
}

#[tokio::test]
async fn the_retention_after_a_backup_observes_the_catalog_as_the_plan_does() {
    let b = Bench::applied(config(5, true)).await;
    for h in [10, 11, 12] {
        b.backup(h).await;
    }
    let lost = b.catalog()[1].snapshots[1].id.clone();
    b.cloud.world.lock().unwrap().snapshots.remove(&lost);
    let state = b.store.lock().unwrap().load().unwrap();
    let catalog: BTreeSet<String> = state
        .backups
        .iter()
        .flat_map(|r| r.snapshots.iter().map(|s| s.id.clone()))
        .collect();
    // The catalog's snapshots are observed by id alone.
    let of_catalog = |o: &Observation| -> BTreeSet<String> {
        assert!(o.snapshots.keys().all(|id| !catalog.contains(id)));
        o.catalog_snapshots
            .iter()
            .map(|id| id.to_string())
            .collect()
    };
    let for_plan = observe::observe(b.cloud(), &b.config, &state)
        .await
        .unwrap();
    b.cloud.world.lock().unwrap().calls.clear();
    let accounts = state.accounts().unwrap();
    let mine = BTreeSet::from(["web".to_string()]);
    let for_retention = observe::observe_catalog(b.cloud(), &state, &accounts, &mine)
        .await
        .unwrap();
    assert_eq!(of_catalog(&for_plan), of_catalog(&for_retention));
    assert!(!of_catalog(&for_retention).contains(&lost));
    assert_eq!(of_catalog(&for_retention).len(), catalog.len() - 1);
    // Lists, never one look per snapshot: six snapshots by tag in three
    // pages of two, then the lost one looked up by id.
    let w = b.cloud.world.lock().unwrap();
    assert_eq!(w.calls_of("DescribeSnapshots"), 4, "{:?}", w.calls);
    assert_eq!(w.calls.len(), 4, "{:?}", w.calls);
}

#[tokio::test]
async fn an_account_that_forbids_deletion_keeps_everything_after_backups_and_in_plans() {
    let b = Bench::applied(config(1, false)).await;
    for h in [10, 11, 12] {
        let r = b.backup(h).await;
        assert!(r.retention.outcomes.is_empty(), "{:?}", r.retention);
    }
    assert_eq!(b.backup_ids(), [id(10), id(11), id(12)]);
    {
        let w = b.cloud.world.lock().unwrap();
        assert_eq!(w.calls_of("DeleteSnapshot"), 0);
        assert_eq!(w.snapshots.len(), 6);
    }
    let plan = b.plan().await;
    assert!(plan.is_empty(), "{plan:?}");
    assert_eq!(
        plan.warnings,
        ["retention would delete 2 backup(s) of policy.web, but account main has allow_delete = false: they are kept"]
    );
    // The retention after a backup says the same.
    let state = b.store.lock().unwrap().load().unwrap();
    let pol = state.policy("web").unwrap().unwrap();
    let obs = everything_exists(&state.backups);
    let after_backup = backup::retention_plan(&state, &pol, &obs, at(13)).unwrap();
    assert!(after_backup.is_empty());
    assert_eq!(after_backup.warnings, plan.warnings);
}

#[tokio::test]
async fn when_the_catalog_cannot_be_observed_the_retention_after_a_backup_deletes_nothing() {
    let b = Bench::applied(config(1, true)).await;
    b.backup(10).await;
    let limits = backup::Limits::default();
    let record = backup::take(
        b.cloud(),
        b.store.clone(),
        "web",
        at(11),
        WAIT,
        vec![],
        &limits,
    )
    .await
    .unwrap();
    b.cloud
        .world
        .lock()
        .unwrap()
        .failing
        .insert("DescribeSnapshots".into(), ErrorKind::Throttled);
    let report = backup::retain(b.cloud(), b.store.clone(), &record, at(11), None)
        .await
        .unwrap();
    assert_eq!(report.failed(), 1, "{report:?}");
    let Outcome::Failed(why) = &report.outcomes[&Address::policy("web")] else {
        panic!("{report:?}");
    };
    assert!(why.starts_with("retention skipped"), "{why}");
    assert_eq!(b.backup_ids(), [id(10), id(11)]);
    assert_eq!(b.cloud.world.lock().unwrap().calls_of("DeleteSnapshot"), 0);

    // Once AWS answers, the next retention deletes the old generation.
    b.cloud.world.lock().unwrap().failing.clear();
    let report = backup::retain(b.cloud(), b.store.clone(), &record, at(11), None)
        .await
        .unwrap();
    assert_eq!(report.failed(), 0, "{report:?}");
    assert_eq!(report.done(), 3, "{report:?}");
    assert_eq!(b.backup_ids(), [id(11)]);
}
