//! EBS Snapshot Lock on DR copies, over the in-memory fake. Every test here
//! fills the same emulator hole: the emulator implements neither
//! LockSnapshot nor DescribeLockedSnapshots, so a lock's mode, duration
//! and cooling-off period, a delete refused while it holds, its expiry, a
//! failed lock call and a governance lock removed outside Lifeboat can
//! only be shown with the fake (`testing/fake/locks.rs`).

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use lifeboat_engine::backup;
use lifeboat_engine::cloud::{Cloud, ErrorKind, LockUntil};
use lifeboat_engine::dr::{self, DrWork, Limits};
use lifeboat_engine::plan::apply;
use lifeboat_engine::plan::{Action, Plan};
use lifeboat_engine::runmode::attempt::{self, Context, Trigger};
use lifeboat_engine::state::{DrCopyRecord, DrStatus, SharedStore, Store};
use lifeboat_engine::testing::{self, fake::FakeCloud};
use lifeboat_schema::{Config, LockMode};

const WAIT: backup::Wait = backup::Wait {
    timeout: std::time::Duration::from_secs(60),
    interval: std::time::Duration::from_millis(1),
};

fn config(dr: &str) -> Config {
    let text = format!(
        r#"
account "main" {{
  regions = ["us-east-1"]
}}

account "vault" {{
  type         = "dr"
  regions      = ["us-east-1"]
  allow_delete = true
}}

policy "web" {{
  account     = account.main
  generations = 5
  instance "i-00000001" {{
    region = "us-east-1"
  }}
  dr {{
    cross_account {{
      to = account.vault
    }}
{dr}
  }}
}}
"#
    );
    lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text)])
        .unwrap_or_else(|d| panic!("{d}"))
        .config
}

fn t0() -> DateTime<Utc> {
    "2026-11-22T10:00:00Z".parse().unwrap()
}

struct Bench {
    cloud: FakeCloud,
    store: SharedStore,
    config: Config,
    _dir: tempfile::TempDir,
}

impl Bench {
    async fn applied(dr: &str) -> Bench {
        let cloud = FakeCloud::new(3);
        {
            let mut w = cloud.world.lock().unwrap();
            w.add_instance("i-00000001", "us-east-1", &[], 1);
            w.account_ids.insert("main".into(), "111111111111".into());
            w.account_ids.insert("vault".into(), "222222222222".into());
            w.clock = Some(t0());
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Mutex::new(
            Store::open(&dir.path().join("state.db")).unwrap(),
        ));
        let b = Bench {
            cloud,
            store,
            config: config(dr),
            _dir: dir,
        };
        let report = b.apply(&b.plan(t0()).await, t0()).await;
        assert_eq!(report.failed(), 0, "{report:?}");
        b
    }

    fn cloud(&self) -> Arc<dyn Cloud> {
        Arc::new(self.cloud.clone())
    }

    /// Someone outside Lifeboat removes the lock on `id` (ec2:UnlockSnapshot
    /// in governance mode, a cancel within a compliance lock's cool-off);
    /// the clock then moves to `now`.
    fn unlock_outside(&self, id: &str, now: DateTime<Utc>) {
        self.cloud
            .world
            .lock()
            .unwrap()
            .copies
            .locks
            .locks
            .remove(id);
        self.clock(now);
    }

    /// Every LockSnapshot fails from now on.
    fn fail_locks(&self) {
        let mut w = self.cloud.world.lock().unwrap();
        w.failing.insert("LockSnapshot".into(), ErrorKind::Other);
    }

    /// Moves the fake's clock (what its locks expire by).
    fn clock(&self, now: DateTime<Utc>) {
        self.cloud.world.lock().unwrap().clock = Some(now);
    }

    async fn plan(&self, now: DateTime<Utc>) -> Plan {
        testing::plan_config(self.cloud(), &self.store, &self.config, now).await
    }

    async fn apply(&self, plan: &Plan, now: DateTime<Utc>) -> apply::Report {
        testing::apply_plan(self.cloud(), &self.store, &self.config, plan, now).await
    }

    /// A backup at `now` and its DR copies, as the runner makes them.
    async fn backup_and_copy(&self, now: DateTime<Utc>) {
        self.clock(now);
        let run = attempt::run(
            self.cloud(),
            self.store.clone(),
            "web",
            &Trigger::AdHoc,
            now,
            WAIT,
            &Context::default(),
        )
        .await;
        assert!(run.succeeded, "{:?}", run.result.err());
        let mut work = DrWork::new(self.cloud(), self.store.clone(), Limits::new(5), now);
        work.interval = std::time::Duration::from_millis(2);
        for r in dr::copy(&work, run.dr).await {
            assert_eq!(r.unwrap().status, DrStatus::Completed);
        }
    }

    fn copies(&self) -> Vec<DrCopyRecord> {
        self.store.lock().unwrap().dr_copies(Some("web")).unwrap()
    }
}

#[tokio::test]
async fn a_completed_copy_is_locked_with_the_configured_mode_and_duration() {
    let b = Bench::applied("lock {\n mode = \"governance\"\n duration = \"30d\"\n }").await;
    b.backup_and_copy(t0()).await;
    let copies = b.copies();
    assert_eq!(copies.len(), 1);
    let c = &copies[0];
    let lock = c.lock.expect("the copy's lock is recorded");
    assert_eq!(lock.mode, LockMode::Governance);
    assert_eq!(lock.until, t0() + Duration::days(30));
    {
        let w = b.cloud.world.lock().unwrap();
        let reqs = &w.copies.locks.requests;
        assert_eq!(reqs.len(), 1, "{reqs:?}");
        let (account, region, req) = &reqs[0];
        assert_eq!((account.as_str(), region.as_str()), ("vault", "us-east-1"));
        assert_eq!(req.snapshot_id, c.id);
        assert_eq!(req.mode, LockMode::Governance);
        assert_eq!(req.until, LockUntil::Days(30));
        assert_eq!(req.cool_off_hours, None);
    }
    // The plan shows the lock and changes nothing.
    let plan = b.plan(t0() + Duration::hours(1)).await;
    assert!(plan.changes.is_empty(), "{:?}", plan.changes);
    assert_eq!(plan.copy_locks.len(), 1);
    assert_eq!(plan.copy_locks[0].state, "locked");
    assert_eq!(plan.copy_locks[0].until, Some(t0() + Duration::days(30)));
    let json = serde_json::to_string(&plan).unwrap();
    assert!(json.contains("\"copy_locks\""), "{json}");
}

#[tokio::test]
async fn a_compliance_lock_passes_its_cool_off_period_through() {
    let b = Bench::applied(
        "lock {\n mode = \"compliance\"\n duration = \"7d\"\n cool_off = \"24h\"\n }",
    )
    .await;
    b.backup_and_copy(t0()).await;
    {
        let w = b.cloud.world.lock().unwrap();
        let (_, _, req) = &w.copies.locks.requests[0];
        assert_eq!(req.mode, LockMode::Compliance);
        assert_eq!(req.until, LockUntil::Days(7));
        assert_eq!(req.cool_off_hours, Some(24));
        let lock = &w.copies.locks.locks[&req.snapshot_id];
        assert_eq!(lock.cool_off_until, Some(t0() + Duration::hours(24)));
    }
    assert_eq!(b.copies()[0].lock.unwrap().mode, LockMode::Compliance);
}

#[tokio::test]
async fn retention_keeps_a_locked_copy_until_its_lock_expires_then_deletes_it() {
    let b =
        Bench::applied("generations = 1\n lock {\n mode = \"governance\"\n duration = \"2d\"\n }")
            .await;
    b.backup_and_copy(t0()).await;
    let first = b.copies()[0].clone();
    // The second copy makes the first an expired generation (dr.generations
    // = 1); the retention after the run keeps it: it is locked.
    b.backup_and_copy(t0() + Duration::hours(1)).await;
    assert_eq!(b.copies().len(), 2);
    assert!(b
        .cloud
        .world
        .lock()
        .unwrap()
        .snapshots
        .contains_key(&first.id));
    assert_eq!(b.cloud.world.lock().unwrap().calls_of("DeleteSnapshot"), 0);

    let plan = b.plan(t0() + Duration::hours(2)).await;
    assert!(
        !plan.changes.iter().any(|c| c.action == Action::Delete),
        "{:?}",
        plan.changes
    );
    let until = "2026-11-24T10:00:00Z";
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains(&format!("kept: locked until {until}"))),
        "{:?}",
        plan.warnings
    );

    // Once the lock expired, the plan deletes it and apply does.
    let later = t0() + Duration::days(2) + Duration::hours(1);
    b.clock(later);
    let plan = b.plan(later).await;
    let deletes: Vec<_> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .collect();
    assert_eq!(deletes.len(), 1, "{:?}", plan.changes);
    // An apply at a time its recorded lock still holds refuses the delete
    // without calling DeleteSnapshot, whatever the plan says.
    let early = b.apply(&plan, t0() + Duration::hours(3)).await;
    assert_eq!(early.failed(), 1, "{early:?}");
    assert!(format!("{early:?}").contains("locked until"), "{early:?}");
    assert_eq!(b.cloud.world.lock().unwrap().calls_of("DeleteSnapshot"), 0);
    let report = b.apply(&plan, later).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    assert!(!b
        .cloud
        .world
        .lock()
        .unwrap()
        .snapshots
        .contains_key(&first.id));
    assert_eq!(b.copies().len(), 1);
}

#[tokio::test]
async fn a_failed_lock_is_recorded_alerted_shown_in_the_plan_and_retried_by_the_next_run() {
    let b = Bench::applied("lock {\n mode = \"governance\"\n duration = \"30d\"\n }").await;
    b.fail_locks();
    b.backup_and_copy(t0()).await;
    let c = b.copies()[0].clone();
    assert_eq!(c.status, DrStatus::Completed, "the copy record is kept");
    assert!(c.lock.is_none());
    for word in ["ec2:LockSnapshot", "vault", "us-east-1", c.id.as_str()] {
        assert!(c.lock_problem.contains(word), "{word}: {}", c.lock_problem);
    }
    let alerts = b.store.lock().unwrap().open_alerts().unwrap();
    assert!(
        alerts
            .iter()
            .any(|a| a.message.contains("could not be locked") && a.message.contains(&c.id)),
        "{alerts:?}"
    );
    let plan = b.plan(t0() + Duration::minutes(5)).await;
    let lock: Vec<_> = plan
        .changes
        .iter()
        .filter(|ch| ch.action == Action::Update)
        .collect();
    assert_eq!(lock.len(), 1, "{:?}", plan.changes);
    assert!(
        lock[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("not locked yet"),
        "{:?}",
        lock[0]
    );
    assert_eq!(plan.copy_locks[0].state, "not_locked");

    // The next run locks it.
    b.cloud.world.lock().unwrap().failing.clear();
    b.backup_and_copy(t0() + Duration::hours(1)).await;
    let first = b.copies().into_iter().find(|x| x.id == c.id).unwrap();
    assert_eq!(first.lock.unwrap().mode, LockMode::Governance);
    assert!(first.lock_problem.is_empty());
    assert!(b
        .cloud
        .world
        .lock()
        .unwrap()
        .copies
        .locks
        .locks
        .contains_key(&c.id));
}

#[tokio::test]
async fn a_removed_governance_lock_is_planned_as_a_change_that_locks_it_again() {
    let b = Bench::applied("lock {\n mode = \"governance\"\n duration = \"30d\"\n }").await;
    b.backup_and_copy(t0()).await;
    let c = b.copies()[0].clone();
    let now = t0() + Duration::hours(2);
    b.unlock_outside(&c.id, now);
    let plan = b.plan(now).await;
    assert_eq!(plan.changes.len(), 1, "{:?}", plan.changes);
    let ch = &plan.changes[0];
    assert_eq!(ch.action, Action::Update);
    assert!(
        ch.reason
            .as_deref()
            .unwrap()
            .contains("removed outside Lifeboat"),
        "{ch:?}"
    );
    assert_eq!(plan.copy_locks[0].state, "unlocked");
    let report = b.apply(&plan, now).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    {
        let w = b.cloud.world.lock().unwrap();
        let (_, _, req) = w.copies.locks.requests.last().unwrap();
        // Locked again until the expiry it had, not for another 30 days.
        assert_eq!(req.until, LockUntil::At(t0() + Duration::days(30)));
        assert_eq!(
            w.copies.locks.locks[&c.id].expires,
            t0() + Duration::days(30)
        );
    }
    let plan = b.plan(now).await;
    assert!(plan.changes.is_empty(), "{:?}", plan.changes);
}

/// A compliance lock AWS no longer reports was cancelled in its cool-off,
/// the one way to undo it (a duration typed wrong): it is never put back,
/// the plan says why, and retention still keeps the copy until then.
#[tokio::test]
async fn a_compliance_lock_aws_let_go_of_is_a_note_never_a_change() {
    let b = Bench::applied(
        "lock {\n mode = \"compliance\"\n duration = \"7d\"\n cool_off = \"24h\"\n }",
    )
    .await;
    b.backup_and_copy(t0()).await;
    let c = b.copies()[0].clone();
    let now = t0() + Duration::hours(2);
    b.unlock_outside(&c.id, now);
    let plan = b.plan(now).await;
    assert!(plan.changes.is_empty(), "{:?}", plan.changes);
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("compliance lock") && w.contains("not locked again")),
        "{:?}",
        plan.warnings
    );
}

/// A lock AWS holds though Lifeboat recorded none (an answer lost, a
/// process stopped before the record) is recorded as AWS has it, and the
/// snapshot is not asked to be locked again (that would push a compliance
/// lock further, and AWS refuses a cool-off on a locked snapshot).
#[tokio::test]
async fn a_lock_aws_holds_already_is_recorded_not_asked_again() {
    let b = Bench::applied("lock {\n mode = \"governance\"\n duration = \"30d\"\n }").await;
    b.fail_locks();
    b.backup_and_copy(t0()).await;
    let c = b.copies()[0].clone();
    assert!(c.lock.is_none());
    let held = t0() + Duration::days(9);
    {
        let mut w = b.cloud.world.lock().unwrap();
        w.failing.clear();
        w.copies.locks.locks.insert(
            c.id.clone(),
            lifeboat_engine::testing::fake::locks::FakeLock {
                mode: LockMode::Governance,
                expires: held,
                cool_off_until: None,
            },
        );
    }
    let asked = |b: &Bench| {
        let w = b.cloud.world.lock().unwrap();
        w.copies
            .locks
            .requests
            .iter()
            .filter(|(_, _, r)| r.snapshot_id == c.id)
            .count()
    };
    let before = asked(&b);
    b.backup_and_copy(t0() + Duration::hours(1)).await;
    let first = b.copies().into_iter().find(|x| x.id == c.id).unwrap();
    assert_eq!(first.lock.map(|l| l.until), Some(held), "{first:?}");
    assert!(first.lock_problem.is_empty());
    assert_eq!(asked(&b), before, "no second LockSnapshot");
}

/// RDS has no snapshot lock (and the emulator none of any kind): a DB copy
/// of a policy with a lock block is never asked to be locked, and the plan
/// warns that the block does not protect it.
#[test]
fn unit_a_db_copy_under_a_lock_block_is_a_warning_never_a_lock() {
    use lifeboat_engine::state::{ArtifactKind, Destination};
    let config = config("lock {\n mode = \"governance\"\n duration = \"30d\"\n }");
    let db = DrCopyRecord {
        id: "web-db-1".into(),
        destination: Destination {
            account: "vault".into(),
            region: "us-east-1".into(),
        },
        kind: ArtifactKind::DbSnapshot,
        arn: Some("arn:aws:rds:us-east-1:222222222222:snapshot:web-db-1".into()),
        image: None,
        source_id: "web-db-1".into(),
        source_region: "us-east-1".into(),
        source_account: "main".into(),
        target: "db-1".into(),
        policy: "web".into(),
        backup_id: "b1".into(),
        backup_seq: 1,
        status: DrStatus::Completed,
        started: t0(),
        finished: Some(t0()),
        expired: None,
        problem: String::new(),
        lock: None,
        lock_problem: String::new(),
    };
    let state = lifeboat_engine::state::Snapshot {
        dr_copies: vec![db],
        ..Default::default()
    };
    let accounts = [("web".to_string(), "main".to_string())].into();
    let plan = dr::lock::plan_locks(&config, &state, None, &Default::default(), &accounts, t0());
    assert!(plan.changes.is_empty(), "{:?}", plan.changes);
    assert!(plan.views.is_empty(), "{:?}", plan.views);
    assert_eq!(plan.notes.len(), 1, "{:?}", plan.notes);
    assert!(
        plan.notes[0].contains("no lock for RDS DB snapshots"),
        "{:?}",
        plan.notes
    );
    assert!(
        plan.notes[0].contains("AWS Backup Vault Lock"),
        "{:?}",
        plan.notes
    );
}
