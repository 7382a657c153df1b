//! Resource control over the in-memory fake, for what the emulator cannot
//! show: an instance that stays `stopping` (the emulator's stop at once),
//! hibernation chosen per instance (the emulator accepts `Hibernate` for
//! any instance), a runner that was down over edges (a virtual clock), and
//! a database AWS started again on its own after seven days stopped, an
//! instance EC2 refuses inside a batch (the emulator takes any), two
//! groups selecting one instance and an Auto Scaling group's instance (the
//! emulator's tag filters are shown with the real binary in
//! `tests/cli_resource_control.rs`; these add what the group does with the
//! other groups' selections), an "on" after "off"s that stopped only some
//! targets, and an operation the runner stops while it waits.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lifeboat_engine::backup::Wait;
use lifeboat_engine::cloud::{Cloud, DbSnapshotKind, InstanceState};
use lifeboat_engine::control::{self, Action, Request};
use lifeboat_engine::runmode::clock::Clock;
use lifeboat_engine::runmode::daemon::{Daemon, Exit, Mode, RunEvent};
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
        cancel: None,
    }
}

async fn perform(fake: &FakeCloud, store: &SharedStore, config: &Config, action: Action) {
    let cloud: Arc<dyn Cloud> = Arc::new(fake.clone());
    let now = || t("2026-11-30T20:00:00Z");
    control::perform(
        &cloud,
        store,
        config,
        "nightly",
        &request(action),
        &[],
        &now,
    )
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
        metrics: Default::default(),
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
            lease_ttl: lifeboat_engine::runmode::daemon::LEASE_TTL,
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

fn results(store: &SharedStore) -> Vec<(String, String)> {
    log(store)
        .into_iter()
        .map(|r| (r.target, r.result))
        .collect()
}

fn pairs(rows: &[(&str, &str)]) -> Vec<(String, String)> {
    rows.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn unit_opted_out_excluded_and_autoscaling_instances_are_left_alone() {
    let config = config(
        r#"
  timeout   = "1s"
  instances = ["i-0000000a"]
  select {
    tag   = "env"
    value = "dev"
  }
  exclude {
    tag = "keep"
  }
  window {
    off = "mon 20:00"
    on  = "tue 07:00"
  }
"#,
    );
    let fake = fake_with(&[]);
    {
        let mut w = fake.world.lock().unwrap();
        // Listed, but its tag opts it out: the tag wins over the list.
        w.add_instance(
            "i-0000000a",
            "us-east-1",
            &[("lifeboat:resource-control", "no-resource-control")],
            1,
        );
        w.add_instance("i-0000000b", "us-east-1", &[("env", "dev")], 1);
        w.add_instance(
            "i-0000000c",
            "us-east-1",
            &[("env", "dev"), ("keep", "yes")],
            1,
        );
        w.add_instance(
            "i-0000000d",
            "us-east-1",
            &[("env", "dev"), ("aws:autoscaling:groupName", "web")],
            1,
        );
    }
    let (store, _dir) = store();
    perform(&fake, &store, &config, Action::Off).await;
    // The excluded one is no member: no row at all.
    assert_eq!(
        results(&store),
        pairs(&[
            ("instance i-0000000a", "skipped"),
            ("instance i-0000000b", "done"),
            ("instance i-0000000d", "skipped"),
        ])
    );
    let rows = log(&store);
    assert!(rows[0].detail.contains("no-resource-control"), "{rows:?}");
    assert!(
        rows[2].detail.contains("Auto Scaling group \"web\""),
        "{rows:?}"
    );
    let w = fake.world.lock().unwrap();
    let state = |id: &str| w.instances[id].state;
    assert_eq!(state("i-0000000b"), InstanceState::Stopped);
    for id in ["i-0000000a", "i-0000000c", "i-0000000d"] {
        assert_eq!(state(id), InstanceState::Running, "{id}");
    }
}

#[tokio::test]
async fn unit_an_instance_two_groups_select_is_left_alone_by_both_with_an_alert() {
    let text = r#"
account "dev" {
  regions = ["us-east-1"]
}

resource_control_group "nightly" {
  account = account.dev
  timeout = "1s"
  select {
    tag   = "env"
    value = "dev"
  }
  window {
    off = "mon 20:00"
    on  = "tue 07:00"
  }
}

resource_control_group "weekend" {
  account = account.dev
  timeout = "1s"
  select {
    tag   = "team"
    value = "data*"
  }
  window {
    off = "fri 20:00"
    on  = "mon 07:00"
  }
}
"#;
    let config = lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text.into())])
        .unwrap_or_else(|d| panic!("{d}"))
        .config;
    let fake = fake_with(&[]);
    {
        let mut w = fake.world.lock().unwrap();
        w.add_instance(
            "i-0000000a",
            "us-east-1",
            &[("env", "dev"), ("team", "data-eng")],
            1,
        );
        w.add_instance("i-0000000b", "us-east-1", &[("env", "dev")], 1);
        w.add_instance("i-0000000c", "us-east-1", &[("team", "data")], 1);
    }
    let (store, _dir) = store();
    let cloud: Arc<dyn Cloud> = Arc::new(fake.clone());
    let now = || t("2026-11-30T20:00:00Z");
    for group in ["nightly", "weekend"] {
        let o = control::perform(
            &cloud,
            &store,
            &config,
            group,
            &request(Action::Off),
            &[],
            &now,
        )
        .await
        .unwrap();
        let alert = o.alert.unwrap_or_default();
        assert!(
            alert.contains("selected by more than one group, left alone: instance i-0000000a"),
            "{alert}"
        );
    }
    assert_eq!(
        results(&store),
        pairs(&[
            ("instance i-0000000a", "skipped"),
            ("instance i-0000000b", "done"),
            ("instance i-0000000a", "skipped"),
            ("instance i-0000000c", "done"),
        ])
    );
    let rows = log(&store);
    assert!(
        rows[0]
            .detail
            .contains("also selected by resource_control_group \"weekend\""),
        "{}",
        rows[0].detail
    );
    assert_eq!(store.lock().unwrap().open_alerts().unwrap().len(), 2);
    let w = fake.world.lock().unwrap();
    assert_eq!(w.instances["i-0000000a"].state, InstanceState::Running);
}

#[tokio::test]
async fn unit_on_starts_only_what_the_last_off_stopped() {
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
    let state = |id: &str| fake.world.lock().unwrap().instances[id].state;
    let set = |id: &str, s| {
        fake.world
            .lock()
            .unwrap()
            .instances
            .get_mut(id)
            .unwrap()
            .state = s
    };
    // Someone stopped i-0000000b themselves: no "off" of the group did.
    set("i-0000000b", InstanceState::Stopped);
    let (store, _dir) = store();
    perform(&fake, &store, &config, Action::On).await;
    assert_eq!(state("i-0000000b"), InstanceState::Stopped);
    perform(&fake, &store, &config, Action::Off).await;
    perform(&fake, &store, &config, Action::On).await;
    assert_eq!(state("i-0000000a"), InstanceState::Running);
    assert_eq!(state("i-0000000b"), InstanceState::Stopped);
    assert_eq!(
        results(&store),
        pairs(&[
            ("instance i-0000000a", "already"),
            ("instance i-0000000b", "skipped"),
            ("instance i-0000000a", "done"),
            ("instance i-0000000b", "already"),
            ("instance i-0000000a", "done"),
            ("instance i-0000000b", "skipped"),
        ])
    );
    let rows = log(&store);
    assert_eq!(
        rows[5].detail, "left alone: the group's last off did not stop it",
        "{rows:?}"
    );
    assert_eq!(fake.world.lock().unwrap().calls_of("StartInstances"), 1);
}

#[tokio::test]
async fn unit_one_refused_instance_does_not_fail_the_others_of_its_call() {
    let config = config(
        r#"
  timeout   = "1s"
  instances = ["i-0000000a", "i-0000000b", "i-0000000c"]
  window {
    off = "mon 20:00"
    on  = "tue 07:00"
  }
"#,
    );
    let fake = fake_with(&["i-0000000a", "i-0000000b", "i-0000000c"]);
    fake.world
        .lock()
        .unwrap()
        .power
        .refused
        .insert("i-0000000b".into());
    let (store, _dir) = store();
    perform(&fake, &store, &config, Action::Off).await;
    assert_eq!(
        results(&store),
        pairs(&[
            ("instance i-0000000a", "done"),
            ("instance i-0000000b", "failed"),
            ("instance i-0000000c", "done"),
        ])
    );
    let rows = log(&store);
    assert!(
        rows[1]
            .detail
            .starts_with("ec2:StopInstances failed in account dev (us-east-1) for i-0000000b"),
        "{}",
        rows[1].detail
    );
    let alerts = store.lock().unwrap().open_alerts().unwrap();
    assert!(!alerts[0].message.contains("i-0000000a"), "{alerts:?}");
}

#[tokio::test]
async fn unit_a_refused_hibernation_does_not_plain_stop_the_others_of_its_call() {
    let config = config(
        r#"
  hibernate = true
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
        w.power.hibernation.insert("i-0000000a".into());
        w.power.hibernation.insert("i-0000000b".into());
        w.power.hibernation_refused.insert("i-0000000b".into());
    }
    let (store, _dir) = store();
    perform(&fake, &store, &config, Action::Off).await;
    let rows: Vec<(String, String)> = log(&store)
        .into_iter()
        .map(|r| (r.action, r.result))
        .collect();
    assert_eq!(rows, pairs(&[("hibernate", "done"), ("off", "retried")]));
    assert_eq!(fake.world.lock().unwrap().power.hibernated, ["i-0000000a"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unit_a_database_started_by_hand_is_not_stopped_again_by_the_looks() {
    let config = config(
        r#"
  rds = ["reporting", "ledger"]
  window {
    off = "fri 20:00"
    on  = "mon 07:00"
  }
"#,
    );
    let fake = fake_with(&[]);
    let set = |id: &str, s: &str| {
        fake.world
            .lock()
            .unwrap()
            .power
            .databases
            .get_mut(&(DbSnapshotKind::Instance, id.into()))
            .unwrap()
            .1 = s.into();
    };
    let status = |id: &str| {
        fake.world
            .lock()
            .unwrap()
            .database_status(DbSnapshotKind::Instance, id)
            .unwrap()
    };
    {
        let mut w = fake.world.lock().unwrap();
        w.add_power_database(DbSnapshotKind::Instance, "reporting", "us-east-1");
        w.add_power_database(DbSnapshotKind::Instance, "ledger", "us-east-1");
    }
    // The ledger was stopped already when the window opened.
    set("ledger", "stopped");
    let (store, _dir) = store();
    assert_eq!(
        run_once(&fake, &store, &config, "2026-12-04T20:00:00Z").await,
        Exit::Clean
    );
    assert_eq!(status("reporting"), "stopped");
    // Someone starts the ledger in the console: the group never stopped
    // it, so the looks leave it.
    set("ledger", "available");
    run_once(&fake, &store, &config, "2026-12-04T21:00:00Z").await;
    assert_eq!(status("ledger"), "available");
    // `rc on` at 21:30 starts the reporting database on purpose: no look
    // stops it again before the next edge.
    let cloud: Arc<dyn Cloud> = Arc::new(fake.clone());
    let now = || t("2026-12-04T21:30:00Z");
    let marks = [(control::hand_key("nightly"), now())];
    control::perform(
        &cloud,
        &store,
        &config,
        "nightly",
        &request(Action::On),
        &marks,
        &now,
    )
    .await
    .unwrap();
    assert_eq!(status("reporting"), "available");
    for at in ["2026-12-04T23:00:00Z", "2026-12-05T12:00:00Z"] {
        run_once(&fake, &store, &config, at).await;
        assert_eq!(status("reporting"), "available", "{at}");
        assert_eq!(status("ledger"), "available", "{at}");
    }
    assert_eq!(fake.world.lock().unwrap().calls_of("StopDBInstance"), 1);
    // The next window stops what runs again.
    run_once(&fake, &store, &config, "2026-12-11T20:00:00Z").await;
    assert_eq!(status("reporting"), "stopped");
    assert_eq!(status("ledger"), "stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unit_an_operation_waits_beside_the_runner_and_ends_when_it_stops() {
    let text = r#"
account "dev" {
  regions = ["us-east-1"]
}

resource_control_group "nightly" {
  account   = account.dev
  timeout   = "10m"
  instances = ["i-0000000a"]
  window {
    off = "mon 20:00"
    on  = "tue 07:00"
  }
}

resource_control_group "quick" {
  account   = account.dev
  timeout   = "10m"
  instances = ["i-0000000b"]
  window {
    off = "mon 20:00"
    on  = "tue 07:00"
  }
}
"#;
    let config = lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text.into())])
        .unwrap_or_else(|d| panic!("{d}"))
        .config;
    let fake = fake_with(&["i-0000000a", "i-0000000b"]);
    fake.world
        .lock()
        .unwrap()
        .power
        .stuck
        .insert("i-0000000a".into());
    let (store, _dir) = store();
    let dir = tempfile::tempdir().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let daemon = Daemon {
        metrics: Default::default(),
        cloud: Arc::new(fake.clone()),
        store: store.clone(),
        config: &config,
        config_dir: dir.path().to_path_buf(),
        clock: Arc::new(Clock::starting_at(Some(t("2026-11-30T20:00:00Z")))),
        mode: Mode {
            once: false,
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
        stop: stop.clone(),
        on_event: Arc::new(move |_, e| {
            if let RunEvent::Control(o) = e {
                seen.lock().unwrap().push(o.group.clone());
            }
        }),
    };
    let (flag, watched) = (stop.clone(), events.clone());
    let quick_first = tokio::spawn(async move {
        // The other group's operation ends while the stuck one waits.
        let mut quick = false;
        for _ in 0..50 {
            quick = watched.lock().unwrap().iter().any(|g| g == "quick");
            if quick {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        quick
    });
    // Inline, the operation held the loop for two ten-minute timeouts.
    let exit = tokio::time::timeout(Duration::from_secs(20), daemon.run())
        .await
        .expect("the runner stops while the operation waits")
        .unwrap();
    assert_eq!(exit, Exit::Failed);
    assert!(
        quick_first.await.unwrap(),
        "one group waits beside the other"
    );
    let rows: Vec<ControlRecord> = log(&store)
        .into_iter()
        .filter(|r| r.group == "nightly")
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].result, "failed");
    assert!(
        rows[0]
            .detail
            .starts_with("not verified: the runner stopped while it was stopping"),
        "{}",
        rows[0].detail
    );
    // Not remembered: the next runner does the edge again.
    let last = store.lock().unwrap().last_slots().unwrap();
    assert!(!last.contains_key(&control::key("nightly")), "{last:?}");
    assert_eq!(*events.lock().unwrap(), ["quick", "nightly"]);
}
