//! The records of a backup's create calls are committed in batches (a
//! group commit), over shared state. The in-memory remote fills the
//! emulator's holes here: it counts commits, makes each one take a while
//! (as a DynamoDB round trip does) and refuses them on cue; the fake cloud
//! answers create calls at once, so that many finish while one commit is
//! in flight. End to end against the emulator's DynamoDB, the tick's
//! `TransactWriteItems` are counted by `scripts/bench_tick.py`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lifeboat_engine::backup::{self, BackupError};
use lifeboat_engine::cloud::Cloud;
use lifeboat_engine::state::remote::{Pull, Remote};
use lifeboat_engine::state::{BackupStatus, SharedStore, Store};
use lifeboat_engine::testing::apply_config;
use lifeboat_engine::testing::fake::FakeCloud;
use lifeboat_engine::testing::remote::MemoryRemote;
use lifeboat_schema::Config;

const WAIT: backup::Wait = backup::Wait {
    timeout: Duration::from_secs(3600),
    interval: Duration::from_millis(1),
};
const REGION: &str = "us-east-1";
const TARGETS: usize = 40;

fn now() -> DateTime<Utc> {
    "2026-11-01T10:00:00Z".parse().unwrap()
}

fn instance(n: usize) -> String {
    format!("i-{n:08x}")
}

fn config() -> Config {
    let mut body = String::new();
    for n in 1..=TARGETS {
        body += &format!(
            "  instance \"{}\" {{\n    region = \"{REGION}\"\n  }}\n",
            instance(n)
        );
    }
    let text = format!(
        "account \"main\" {{\n  regions = [\"{REGION}\"]\n}}\n\npolicy \"big\" {{\n  account     = account.main\n  generations = 3\n{body}}}\n"
    );
    lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text)])
        .unwrap_or_else(|d| panic!("{d}"))
        .config
}

struct Shared {
    cloud: FakeCloud,
    remote: Arc<MemoryRemote>,
    store: SharedStore,
    _dir: tempfile::TempDir,
}

impl Shared {
    /// `TARGETS` instances of two volumes each, applied to a policy, with
    /// the state shared through an in-memory remote.
    async fn new() -> Shared {
        let cloud = FakeCloud::new(50);
        {
            let mut w = cloud.world.lock().unwrap();
            for n in 1..=TARGETS {
                w.add_instance(&instance(n), REGION, &[], 2);
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let remote = Arc::new(MemoryRemote::new());
        let store = Store::open_shared(&dir.path().join("cache.db"), remote.clone()).unwrap();
        let s = Shared {
            cloud,
            remote,
            store: Arc::new(Mutex::new(store)),
            _dir: dir,
        };
        let report = apply_config(s.cloud(), &s.store, &config(), now()).await;
        assert_eq!(report.failed(), 0, "{report:?}");
        s
    }

    fn cloud(&self) -> Arc<dyn Cloud> {
        Arc::new(self.cloud.clone())
    }

    async fn take(&self) -> Result<lifeboat_engine::state::BackupRecord, BackupError> {
        let limits = backup::Limits::default();
        backup::take(
            self.cloud(),
            self.store.clone(),
            "big",
            now(),
            WAIT,
            vec![],
            &limits,
        )
        .await
    }
}

#[tokio::test]
async fn unit_the_records_of_create_calls_answered_during_a_commit_go_in_the_next_one() {
    let s = Shared::new().await;
    s.remote.slow_commits(Duration::from_millis(30));
    let before = s.remote.commits();
    let record = s.take().await.unwrap();
    let commits = s.remote.commits() - before;

    assert_eq!(
        record.status,
        BackupStatus::Success,
        "{:?}",
        record.problems
    );
    // Every snapshot AWS made is in the catalog, once.
    let mut made: Vec<String> = s
        .cloud
        .world
        .lock()
        .unwrap()
        .snapshots
        .keys()
        .cloned()
        .collect();
    let mut recorded: Vec<String> = record.snapshots.iter().map(|x| x.id.clone()).collect();
    made.sort();
    recorded.sort();
    assert_eq!(made.len(), 2 * TARGETS);
    assert_eq!(recorded, made);
    // One commit per target would be TARGETS of them, plus the backup's
    // start and close: the create calls answered while a commit was in
    // flight shared the next one.
    assert!(commits <= 10, "{commits} commits for {TARGETS} targets");
    // Each target's records travel whole: both snapshots of an instance
    // are in one commit (the log never holds half a target's records).
    let Ok(Pull::Log(log)) = s.remote.pull(0) else {
        panic!("the memory remote's log")
    };
    let mut commit_of: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for c in &log {
        for row in c.changes.iter().filter(|r| r.table == "snapshots") {
            let target = row.row.as_ref().unwrap()["target"].as_str().unwrap();
            commit_of
                .entry(target.to_string())
                .or_default()
                .insert(c.rev);
        }
    }
    assert_eq!(commit_of.len(), TARGETS);
    assert!(
        commit_of.values().all(|revs| revs.len() == 1),
        "{commit_of:?}"
    );
}

#[tokio::test]
async fn unit_a_batch_that_cannot_be_committed_fails_the_backup() {
    let s = Shared::new().await;
    s.remote.slow_commits(Duration::from_millis(30));
    // The backup's start is recorded; every commit after it is refused.
    s.remote.refuse_commits_after(s.remote.commits() + 1);
    let taken = s.take().await;
    let err = taken.expect_err("a backup whose records were refused is not a success");
    assert!(err.to_string().contains("refused"), "{err}");
}

#[tokio::test]
async fn unit_a_backup_dropped_mid_way_commits_what_was_handed_over_and_nothing_after() {
    let s = Shared::new().await;
    // Commits slow enough that records queue behind the one in flight.
    s.remote.slow_commits(Duration::from_millis(50));
    let before = s.remote.commits();
    // A policy timeout drops the backup while its writer has work queued.
    let dropped = tokio::time::timeout(Duration::from_millis(80), s.take()).await;
    assert!(dropped.is_err(), "the backup was cut short");
    let at_drop = s.remote.commits();
    assert!(
        at_drop > before + 1,
        "records were committed before the drop"
    );
    // Nothing of the dropped backup commits afterwards (its runner or
    // command lets go of its lock or lease right after the drop).
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        s.remote.commits(),
        at_drop,
        "a commit after the backup was gone"
    );
}
