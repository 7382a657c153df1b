//! Resource control over the in-memory fake, for what the emulator cannot
//! show: an instance that stays `stopping` (the emulator's stop at once),
//! hibernation chosen per instance (the emulator accepts `Hibernate` for
//! any instance), a runner that was down over edges (a virtual clock), and
//! a database AWS started again on its own after seven days stopped.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lifeboat_engine::backup::Wait;
use lifeboat_engine::cloud::{Cloud, DbSnapshotKind, InstanceState};
use lifeboat_engine::control::{self, Action, Request};
use lifeboat_engine::runmode::clock::Clock;
use lifeboat_engine::runmode::daemon::{Daemon, Exit, Mode};
use lifeboat_engine::state::{ControlRecord, SharedStore, Store};
use lifeboat_engine::testing::fake::FakeCloud;
use lifeboat_schema::Config;

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// A group `nightly` in account `dev` with `body` inside.
fn config(body: &str) -> Config {
    let text = format!(
        r#"
account "dev" {{
  regions = ["us-east-1"]
}}

resource_control_group "nightly" {{
  account = account.dev
{body}
}}
"#
    );
    lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text)])
        .unwrap_or_else(|d| panic!("{d}"))
        .config
}

fn store() -> (SharedStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("state.db")).unwrap();
    (Arc::new(Mutex::new(s)), dir)
}

fn fake_with(instances: &[&str]) -> FakeCloud {
    let fake = FakeCloud::new(10);
    {
        let mut w = fake.world.lock().unwrap();
        for id in instances {
            w.add_instance(id, "us-east-1", &[], 1);
        }
    }
    fake
}

fn request(action: Action) -> Request {
    Request {
        action,
        databases_only: false,
        poll: Duration::from_millis(10),
    }
}

async fn perform(fake: &FakeCloud, store: &SharedStore, config: &Config, action: Action) {
    let cloud: Arc<dyn Cloud> = Arc::new(fake.clone());
    let now = || t("2026-11-30T20:00:00Z");
    control::perform(&cloud, store, config, "nightly", request(action), &now)
        .await
        .unwrap();
}

fn log(store: &SharedStore) -> Vec<ControlRecord> {
    store.lock().unwrap().control_log().unwrap()
}

#[tokio::test]
async fn unit_an_instance_stuck_stopping_is_asked_twice_then_alerted() {
    let config = config(
        r#"
  timeout   = "1s"
  instances = ["i-0000000a", "i-0000000b"]
  window {
    off = "mon 20:00"
    on  = "tue 07:00"
  }
"#,
    );
    let fake = fake_with(&["i-0000000a", "i-0000000b"]);
    {
        let mut w = fake.world.lock().unwrap();
        w.power.stuck.insert("i-0000000a".into());
        // The other one takes a few looks, well within the timeout.
        w.power.change_looks = 2;
    }
    let (store, _dir) = store();
    perform(&fake, &store, &config, Action::Off).await;

    let rows = log(&store);
    let by = |id: &str| {
        rows.iter()
            .find(|r| r.target == format!("instance {id}"))
            .unwrap()
    };
    assert_eq!(by("i-0000000b").result, "done");
    assert!(by("i-0000000b").verified.is_some());
    let stuck = by("i-0000000a");
    assert_eq!(stuck.result, "failed", "{stuck:?}");
    assert!(
        stuck
            .detail
            .contains("still stopping after 1s and a second request"),
        "{}",
        stuck.detail
    );
    assert_eq!(stuck.verified, None);
    // The first call stops both, the retry asks again for the stuck one only.
    assert_eq!(fake.world.lock().unwrap().calls_of("StopInstances"), 2);
    let alerts = store.lock().unwrap().open_alerts().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].policy, "resource_control_group.nightly");
    assert!(
        alerts[0].message.contains("instance i-0000000a"),
        "{}",
        alerts[0].message
    );
    assert!(
        !alerts[0].message.contains("i-0000000b"),
        "{}",
        alerts[0].message
    );
}

#[tokio::test]
async fn unit_hibernation_is_asked_only_for_instances_configured_for_it() {
    let body = |hibernate: bool| {
        format!(
            r#"
  hibernate = {hibernate}
  instances = ["i-0000000a", "i-0000000b"]
  window {{
    off = "mon 20:00"
    on  = "tue 07:00"
  }}
"#
        )
    };
    for hibernate in [true, false] {
        let fake = fake_with(&["i-0000000a", "i-0000000b"]);
        fake.world
            .lock()
            .unwrap()
            .power
            .hibernation
            .insert("i-0000000b".into());
        let (store, _dir) = store();
        perform(&fake, &store, &config(&body(hibernate)), Action::Off).await;
        let w = fake.world.lock().unwrap();
        let expected: Vec<String> = if hibernate {
            vec!["i-0000000b".into()]
        } else {
            vec![]
        };
        assert_eq!(w.power.hibernated, expected, "hibernate = {hibernate}");
        for i in w.instances.values() {
            assert_eq!(i.state, InstanceState::Stopped, "{}", i.id);
        }
        let actions: Vec<(String, String)> = log(&store)
            .into_iter()
            .map(|r| (r.target, r.action))
            .collect();
        let second = if hibernate { "hibernate" } else { "off" };
        assert_eq!(
            actions,
            vec![
                ("instance i-0000000a".to_string(), "off".to_string()),
                ("instance i-0000000b".to_string(), second.to_string()),
            ]
        );
    }
}

/// Runs the daemon `--once` at `now`.
async fn run_once(fake: &FakeCloud, store: &SharedStore, config: &Config, now: &str) -> Exit {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon {
        cloud: Arc::new(fake.clone()),
        store: store.clone(),
        config,
        config_dir: dir.path().to_path_buf(),
        clock: Arc::new(Clock::starting_at(Some(t(now)))),
        mode: Mode {
            once: true,
            fast_forward: false,
            until: None,
            concurrency: 4,
            dr_concurrency: 5,
        },
        wait: Wait {
            timeout: Duration::from_secs(60),
            interval: Duration::from_millis(1),
        },
        stop: Arc::new(AtomicBool::new(false)),
        on_event: Arc::new(|_, _| {}),
    };
    daemon.run().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unit_a_runner_down_over_edges_applies_the_current_state_once() {
    let config = config(
        r#"
  instances = ["i-0000000a"]
  window {
    off = "mon 20:00"
    on  = "tue 07:00"
  }
  window {
    off = "wed 20:00"
    on  = "thu 07:00"
  }
"#,
    );
    let fake = fake_with(&["i-0000000a"]);
    let (store, _dir) = store();
    // Monday 2026-11-30, 20:00: the runner stops the instance, then dies.
    assert_eq!(
        run_once(&fake, &store, &config, "2026-11-30T20:00:00Z").await,
        Exit::Clean
    );
    let state = |f: &FakeCloud| f.world.lock().unwrap().instances["i-0000000a"].state;
    assert_eq!(state(&fake), InstanceState::Stopped);
    // The runner's operations leave the serial (a saved plan stays good).
    let serial = store.lock().unwrap().serial().unwrap();
    // Back on Thursday at noon: Tuesday's on, Wednesday's off and
    // Thursday's on were missed. The windows say on: one start, no stop.
    assert_eq!(
        run_once(&fake, &store, &config, "2026-12-03T12:00:00Z").await,
        Exit::Clean
    );
    assert_eq!(state(&fake), InstanceState::Running);
    let calls = |f: &FakeCloud, action| f.world.lock().unwrap().calls_of(action);
    assert_eq!(calls(&fake, "StopInstances"), 1);
    assert_eq!(calls(&fake, "StartInstances"), 1);
    // A later look before the next edge does nothing more.
    assert_eq!(
        run_once(&fake, &store, &config, "2026-12-03T15:00:00Z").await,
        Exit::Clean
    );
    let actions: Vec<String> = log(&store).into_iter().map(|r| r.action).collect();
    assert_eq!(actions, ["off", "on"]);
    assert_eq!(store.lock().unwrap().serial().unwrap(), serial);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unit_a_database_aws_started_again_is_stopped_at_the_next_look() {
    let config = config(
        r#"
  rds    = ["reporting"]
  aurora = ["analytics"]
  window {
    off = "fri 20:00"
    on  = "mon 07:00"
  }
"#,
    );
    let fake = fake_with(&[]);
    {
        let mut w = fake.world.lock().unwrap();
        w.add_power_database(DbSnapshotKind::Instance, "reporting", "us-east-1");
        w.add_power_database(DbSnapshotKind::Cluster, "analytics", "us-east-1");
    }
    let (store, _dir) = store();
    let status =
        |f: &FakeCloud, kind, id| f.world.lock().unwrap().database_status(kind, id).unwrap();
    // Friday 2026-12-04, 20:00: both stop (the cluster as a cluster).
    assert_eq!(
        run_once(&fake, &store, &config, "2026-12-04T20:00:00Z").await,
        Exit::Clean
    );
    assert_eq!(
        status(&fake, DbSnapshotKind::Instance, "reporting"),
        "stopped"
    );
    assert_eq!(
        status(&fake, DbSnapshotKind::Cluster, "analytics"),
        "stopped"
    );
    assert_eq!(fake.world.lock().unwrap().calls_of("StopDBCluster"), 1);
    // AWS starts the DB instance again on its own.
    fake.world
        .lock()
        .unwrap()
        .power
        .databases
        .get_mut(&(DbSnapshotKind::Instance, "reporting".into()))
        .unwrap()
        .1 = "available".into();
    // Within the hour nothing looks; after it, the look stops it again.
    assert_eq!(
        run_once(&fake, &store, &config, "2026-12-04T20:30:00Z").await,
        Exit::Clean
    );
    assert_eq!(
        status(&fake, DbSnapshotKind::Instance, "reporting"),
        "available"
    );
    assert_eq!(
        run_once(&fake, &store, &config, "2026-12-04T21:00:00Z").await,
        Exit::Clean
    );
    assert_eq!(
        status(&fake, DbSnapshotKind::Instance, "reporting"),
        "stopped"
    );
    let calls = |f: &FakeCloud, action| f.world.lock().unwrap().calls_of(action);
    assert_eq!(calls(&fake, "StopDBInstance"), 2);
    assert_eq!(calls(&fake, "StopDBCluster"), 1);
    let rows: Vec<(String, String)> = log(&store)
        .into_iter()
        .map(|r| (r.target, r.result))
        .collect();
    assert_eq!(
        rows,
        [
            ("rds reporting".to_string(), "done".to_string()),
            ("aurora analytics".to_string(), "done".to_string()),
            ("rds reporting".to_string(), "done".to_string()),
        ]
    );
}

#[tokio::test]
async fn unit_a_refused_call_is_made_once_more_then_fails_naming_the_call() {
    let config = config(
        r#"
  timeout   = "1s"
  instances = ["i-0000000a"]
  window {
    off = "mon 20:00"
    on  = "tue 07:00"
  }
"#,
    );
    let fake = fake_with(&["i-0000000a"]);
    fake.world.lock().unwrap().failing.insert(
        "StopInstances".into(),
        lifeboat_engine::cloud::ErrorKind::Throttled,
    );
    let (store, _dir) = store();
    let started = std::time::Instant::now();
    perform(&fake, &store, &config, Action::Off).await;
    // The second call follows at once, not after a timeout.
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(fake.world.lock().unwrap().calls_of("StopInstances"), 2);
    let rows = log(&store);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].result, "failed");
    assert!(
        rows[0]
            .detail
            .starts_with("ec2:StopInstances failed in account dev (us-east-1) for i-0000000a"),
        "{}",
        rows[0].detail
    );
}

#[tokio::test]
async fn unit_an_instance_whose_hibernation_is_refused_is_stopped_at_the_second_request() {
    let config = config(
        r#"
  hibernate = true
  instances = ["i-0000000a"]
  window {
    off = "mon 20:00"
    on  = "tue 07:00"
  }
"#,
    );
    let fake = fake_with(&["i-0000000a"]);
    {
        let mut w = fake.world.lock().unwrap();
        w.power.hibernation.insert("i-0000000a".into());
        w.power.hibernation_refused.insert("i-0000000a".into());
    }
    let (store, _dir) = store();
    perform(&fake, &store, &config, Action::Off).await;
    let rows = log(&store);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].action.as_str(), rows[0].result.as_str()),
        ("off", "retried")
    );
    assert!(
        rows[0]
            .detail
            .starts_with("hibernation refused, stopped instead: ec2:StopInstances failed"),
        "{}",
        rows[0].detail
    );
    let w = fake.world.lock().unwrap();
    assert_eq!(w.instances["i-0000000a"].state, InstanceState::Stopped);
    assert!(w.power.hibernated.is_empty());
}
