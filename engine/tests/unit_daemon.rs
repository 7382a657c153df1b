//! The run mode's daemon over the in-memory fake, on a virtual clock: a
//! fast-forwarded day of scheduled work without the binary.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lifeboat_engine::backup::Wait;
use lifeboat_engine::cloud::Cloud;
use lifeboat_engine::plan::apply::{self, Executor};
use lifeboat_engine::plan::planner;
use lifeboat_engine::runmode::clock::Clock;
use lifeboat_engine::runmode::daemon::{Daemon, Exit, Mode, RunEvent};
use lifeboat_engine::state::{BackupStatus, SharedStore, Store};
use lifeboat_engine::testing::fake::FakeCloud;
use lifeboat_schema::Config;

/// The events the daemon reported, with the instant it reported them at.
type Log = Vec<(DateTime<Utc>, String)>;

const CONFIG: &str = r#"
account "main" {
  regions = ["us-east-1"]
}

notifications {
  sns_topic     = "arn:aws:sns:us-east-1:123456789012:alerts"
  account       = account.main
  region        = "us-east-1"
  daily_summary = "08:00"
}

schedule "six-hourly" {
  start = "2026-11-22T00:00"
  every = "6h"
}

policy "web" {
  account     = account.main
  generations = 2
  schedules   = [schedule.six-hourly]

  instance "i-0000000a" {
    region = "us-east-1"
  }
}
"#;

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// The fake with one instance, the store with `CONFIG` applied.
async fn applied(config: &Config) -> (FakeCloud, SharedStore, tempfile::TempDir) {
    applied_with(FakeCloud::new(10), config).await
}

/// `fake` with instance `i-0000000a` added, the store with `config` applied.
async fn applied_with(
    fake: FakeCloud,
    config: &Config,
) -> (FakeCloud, SharedStore, tempfile::TempDir) {
    fake.world
        .lock()
        .unwrap()
        .add_instance("i-0000000a", "us-east-1", &[], 2);
    let cloud: Arc<dyn Cloud> = Arc::new(fake.clone());
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Mutex::new(
        Store::open(&dir.path().join("state.db")).unwrap(),
    ));
    let state = store.lock().unwrap().load().unwrap();
    let obs = lifeboat_engine::plan::observe::observe(cloud.clone(), config, &state)
        .await
        .unwrap();
    let start = t("2026-11-21T23:00:00Z");
    let plan = planner::plan(config, &state, &obs, start).unwrap();
    let exec = Arc::new(Executor {
        cloud,
        accounts: planner::known_accounts(config, &state).unwrap(),
        store: store.clone(),
        now: start,
        lock_id: None,
        stop: Default::default(),
    });
    assert_eq!(apply::apply(&plan, exec, 4, |_, _| {}).await.failed(), 0);
    (fake, store, dir)
}

/// An event as the test compares it: its time and a short description.
fn describe(at: DateTime<Utc>, e: &RunEvent) -> Option<(DateTime<Utc>, String)> {
    let what = match e {
        RunEvent::RunnerStarted { fast_forward, .. } => format!("start ff={fast_forward}"),
        RunEvent::BackupStarted(d) => format!("backup {}", d.slot.format("%H:%M")),
        RunEvent::BackupFinished(r) => format!(
            "finished {} valid={} deleted={}",
            r.due.slot.format("%H:%M"),
            r.succeeded,
            r.result.as_ref().map_or(0, |b| b.retention.done())
        ),
        RunEvent::SummarySent => "summary".into(),
        RunEvent::RunnerStopped => "stop".into(),
        // Next-run notes and the like are not what this test is about.
        _ => return None,
    };
    Some((at, what))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unit_a_fast_forwarded_day_takes_each_scheduled_backup_and_sends_one_summary() {
    let config = lifeboat_schema::load_sources(&[("main.lb.hcl".into(), CONFIG.to_string())])
        .unwrap_or_else(|d| panic!("{d}"))
        .config;
    let (fake, store, dir) = applied(&config).await;
    let events: Arc<Mutex<Log>> = Default::default();
    let seen = events.clone();
    let daemon = Daemon {
        metrics: Default::default(),
        cloud: Arc::new(fake.clone()),
        store: store.clone(),
        config: &config,
        config_dir: dir.path().to_path_buf(),
        clock: Arc::new(Clock::starting_at(Some(t("2026-11-22T00:00:00Z")))),
        mode: Mode {
            once: false,
            fast_forward: true,
            until: Some(t("2026-11-23T00:00:00Z")),
            concurrency: 4,
            dr_concurrency: 5,
            lease_ttl: lifeboat_engine::runmode::daemon::LEASE_TTL,
        },
        wait: Wait {
            timeout: Duration::from_secs(60),
            interval: Duration::from_millis(1),
        },
        stop: Arc::new(AtomicBool::new(false)),
        on_event: Arc::new(move |at, e| seen.lock().unwrap().extend(describe(at, e))),
    };
    let started = std::time::Instant::now();
    let exit = daemon.run().await.unwrap();
    assert_eq!(exit, Exit::Clean);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "idle time is skipped"
    );

    // Times to the minute: work in flight takes (a little) real time.
    let events: Vec<(String, String)> = events
        .lock()
        .unwrap()
        .iter()
        .map(|(at, what)| (at.format("%dT%H:%M").to_string(), what.clone()))
        .collect();
    let e = |at: &str, what: &str| (at.to_string(), what.to_string());
    assert_eq!(
        events,
        [
            e("22T00:00", "start ff=true"),
            e("22T00:00", "backup 00:00"),
            e("22T00:00", "finished 00:00 valid=true deleted=0"),
            e("22T06:00", "backup 06:00"),
            e("22T06:00", "finished 06:00 valid=true deleted=0"),
            e("22T08:00", "summary"),
            // Retention deletes the oldest backup: its two snapshots and
            // its record.
            e("22T12:00", "backup 12:00"),
            e("22T12:00", "finished 12:00 valid=true deleted=3"),
            e("22T18:00", "backup 18:00"),
            e("22T18:00", "finished 18:00 valid=true deleted=3"),
            e("23T00:00", "stop"),
        ]
    );

    // Four backups, two kept by retention; the state lock and the lease
    // are gone.
    let s = store.lock().unwrap();
    let kept: Vec<String> = s
        .backups(Some("web"))
        .unwrap()
        .into_iter()
        .filter(|b| b.status == BackupStatus::Success)
        .map(|b| b.id)
        .collect();
    assert_eq!(kept, ["2026-11-22T12:00:00Z", "2026-11-22T18:00:00Z"]);
    assert!(s.current_lock().unwrap().is_none());
    drop(s);
    let w = fake.world.lock().unwrap();
    assert_eq!(w.calls_of("CreateSnapshots"), 4);
    assert_eq!(w.published.len(), 1, "one daily summary");
}

/// Two accounts on one schedule; `broken`'s role is gone by the time the
/// runner starts, and an interrupted backup of its policy is still open.
const TWO_ACCOUNTS: &str = r#"
account "main" {
  regions = ["us-east-1"]
}

account "broken" {
  regions = ["us-east-1"]
}

schedule "six-hourly" {
  start = "2026-11-22T00:00"
  every = "6h"
}

policy "web" {
  account     = account.main
  generations = 2
  schedules   = [schedule.six-hourly]

  instance "i-0000000a" {
    region = "us-east-1"
  }
}

policy "db" {
  account     = account.broken
  generations = 2
  schedules   = [schedule.six-hourly]

  instance "i-0000000b" {
    region = "us-east-1"
  }
}
"#;

/// Fills a hole of the emulator: it does not enforce IAM, so it cannot show
/// one account denied among healthy ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unit_a_broken_account_fails_its_own_policies_and_the_others_run_on_time() {
    let config = lifeboat_schema::load_sources(&[("main.lb.hcl".into(), TWO_ACCOUNTS.to_string())])
        .unwrap_or_else(|d| panic!("{d}"))
        .config;
    let (fake, store, dir) = {
        let fake = FakeCloud::new(10);
        fake.world
            .lock()
            .unwrap()
            .add_instance("i-0000000b", "us-east-1", &[], 1);
        let (f, s, d) = applied_with(fake, &config).await;
        (f, s, d)
    };
    // An earlier runner died during a backup of `db`; then the account broke.
    store
        .lock()
        .unwrap()
        .transaction(|tx| {
            tx.insert_backup(&lifeboat_engine::state::BackupRecord {
                seq: 0,
                id: "2026-11-21T18:00:00Z".into(),
                policy: "db".into(),
                account: "broken".into(),
                started: t("2026-11-21T18:00:00Z"),
                finished: None,
                status: BackupStatus::Running,
                frozen: None,
                snapshots: vec![],
                problems: vec![],
            })
        })
        .unwrap();
    fake.world
        .lock()
        .unwrap()
        .broken_accounts
        .insert("broken".into());

    let events: Arc<Mutex<Vec<String>>> = Default::default();
    let seen = events.clone();
    let daemon = Daemon {
        metrics: Default::default(),
        cloud: Arc::new(fake.clone()),
        store: store.clone(),
        config: &config,
        config_dir: dir.path().to_path_buf(),
        clock: Arc::new(Clock::starting_at(Some(t("2026-11-22T00:00:00Z")))),
        mode: Mode {
            once: true,
            fast_forward: false,
            until: None,
            concurrency: 4,
            dr_concurrency: 5,
            lease_ttl: lifeboat_engine::runmode::daemon::LEASE_TTL,
        },
        wait: Wait {
            timeout: Duration::from_secs(60),
            interval: Duration::from_millis(1),
        },
        stop: Arc::new(AtomicBool::new(false)),
        on_event: Arc::new(move |_, e| {
            let what = match e {
                RunEvent::ReconcileFailed { policy, .. } => format!("reconcile failed {policy}"),
                RunEvent::BackupFinished(r) => {
                    format!("finished {} valid={}", r.due.policy, r.succeeded)
                }
                _ => return,
            };
            seen.lock().unwrap().push(what);
        }),
    };
    daemon.run().await.unwrap();
    let mut events = events.lock().unwrap().clone();
    events.sort();
    assert_eq!(
        events,
        [
            "finished db valid=false",
            "finished web valid=true",
            "reconcile failed db",
        ]
    );
    let s = store.lock().unwrap();
    let web = s.backups(Some("web")).unwrap();
    assert_eq!(web.len(), 1);
    assert_eq!(web[0].status, BackupStatus::Success);
    let alerts = s.open_alerts().unwrap();
    assert!(
        alerts.iter().any(|a| a.policy == "db"),
        "the broken account's policy opens an alert: {alerts:?}"
    );
    assert!(!alerts.iter().any(|a| a.policy == "web"), "{alerts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unit_a_runner_whose_lease_is_taken_over_starts_nothing_more_and_exits_with_code_4() {
    let config = lifeboat_schema::load_sources(&[("main.lb.hcl".into(), CONFIG.to_string())])
        .unwrap_or_else(|d| panic!("{d}"))
        .config;
    let (fake, store, dir) = applied(&config).await;
    let events: Arc<Mutex<Log>> = Default::default();
    let stolen: Arc<Mutex<Option<String>>> = Default::default();
    let (seen, thief) = (events.clone(), stolen.clone());
    let path = dir.path().join("state.db");
    let on_event = move |at: DateTime<Utc>, e: &RunEvent| {
        match e {
            // Another runner takes the lease over as soon as the first
            // backup finished (written into the state as it would be).
            RunEvent::BackupFinished(_) if thief.lock().unwrap().is_none() => {
                let mut other = Store::open(&path).unwrap();
                let mine = other.current_lease().unwrap().unwrap();
                other.release_lease(&mine.id).unwrap();
                let theirs = other.take_lease(chrono::Duration::seconds(120)).unwrap();
                *thief.lock().unwrap() = Some(theirs.id);
            }
            RunEvent::LeaseLost(why) => {
                seen.lock().unwrap().push((at, format!("lost: {why}")));
            }
            _ => {}
        }
        seen.lock().unwrap().extend(describe(at, e));
    };
    let daemon = Daemon {
        metrics: Default::default(),
        cloud: Arc::new(fake.clone()),
        store: store.clone(),
        config: &config,
        config_dir: dir.path().to_path_buf(),
        clock: Arc::new(Clock::starting_at(Some(t("2026-11-22T00:00:00Z")))),
        mode: Mode {
            once: false,
            fast_forward: true,
            until: Some(t("2026-11-23T00:00:00Z")),
            concurrency: 4,
            dr_concurrency: 5,
            lease_ttl: lifeboat_engine::runmode::daemon::LEASE_TTL,
        },
        wait: Wait {
            timeout: Duration::from_secs(60),
            interval: Duration::from_millis(1),
        },
        stop: Arc::new(AtomicBool::new(false)),
        on_event: Arc::new(on_event),
    };
    let exit = daemon.run().await.unwrap();
    assert_eq!(exit, Exit::HoldLost);
    assert_eq!(exit.code(), 4);

    let events: Vec<String> = events
        .lock()
        .unwrap()
        .iter()
        .map(|(_, w)| w.clone())
        .collect();
    let lost = events
        .iter()
        .position(|e| e.starts_with("lost:"))
        .expect("LeaseLost reported");
    assert!(events[lost].contains("taken over"), "{events:?}");
    assert!(
        !events[lost..].iter().any(|e| e.starts_with("backup ")),
        "no backup starts after the lease is lost: {events:?}"
    );
    assert_eq!(fake.world.lock().unwrap().calls_of("CreateSnapshots"), 1);
    // The other runner's lease is left alone, and this runner's state lock
    // is released.
    let s = store.lock().unwrap();
    assert_eq!(
        s.current_lease().unwrap().map(|l| l.id),
        stolen.lock().unwrap().clone()
    );
    assert!(s.current_lock().unwrap().is_none());
}
