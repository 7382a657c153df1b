//! A state edited by hand must not crash a run: values the configuration
//! could never hold (a retry wait of `u64::MAX` seconds) are bounded where
//! they meet the clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lifeboat_engine::backup::Wait;
use lifeboat_engine::cloud::{Cloud, ErrorKind};
use lifeboat_engine::plan::apply::{self, Executor};
use lifeboat_engine::plan::{observe, planner};
use lifeboat_engine::runmode::attempt::{self, Context, Trigger};
use lifeboat_engine::state::{SharedStore, Store};
use lifeboat_engine::testing::fake::FakeCloud;
use lifeboat_engine::Address;

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
  retries {
    count = 2
    wait  = "10m"
  }
}
"#;

fn at() -> DateTime<Utc> {
    "2026-11-22T10:00:00Z".parse().unwrap()
}

#[tokio::test]
async fn unit_a_retry_wait_past_any_date_in_the_state_waits_the_longest_duration() {
    let cloud = FakeCloud::new(10);
    cloud
        .world
        .lock()
        .unwrap()
        .add_instance("i-0000000a", "us-east-1", &[], 1);
    let dir = tempfile::tempdir().unwrap();
    let store: SharedStore = Arc::new(Mutex::new(
        Store::open(&dir.path().join("state.db")).unwrap(),
    ));
    let config = lifeboat_schema::load_sources(&[("main.lb.hcl".into(), CONFIG.to_string())])
        .unwrap()
        .config;
    let dyn_cloud: Arc<dyn Cloud> = Arc::new(cloud.clone());
    let state = store.lock().unwrap().load().unwrap();
    let obs = observe::observe(dyn_cloud.clone(), &config, &state)
        .await
        .unwrap();
    let plan = planner::plan(&config, &state, &obs, at()).unwrap();
    let exec = Arc::new(Executor {
        cloud: dyn_cloud.clone(),
        accounts: planner::known_accounts(&config, &state).unwrap(),
        store: store.clone(),
        now: at(),
        lock_id: None,
        stop: Default::default(),
    });
    assert_eq!(apply::apply(&plan, exec, 4, |_, _| {}).await.failed(), 0);

    // The state says: wait u64::MAX seconds before a retry.
    let addr = Address::Policy { name: "web".into() };
    let mut value = store.lock().unwrap().load().unwrap().objects[&addr].value();
    value["options"]["retries"]["wait_secs"] = serde_json::json!(u64::MAX);
    store
        .lock()
        .unwrap()
        .transaction(|tx| tx.put_object(&addr, &value))
        .unwrap();

    cloud
        .world
        .lock()
        .unwrap()
        .failing
        .insert("CreateSnapshots".into(), ErrorKind::AccessDenied);
    let ctx = Context {
        config_dir: dir.path().to_path_buf(),
        notifications: None,
        limits: Default::default(),
        lock_id: None,
    };
    let trigger = Trigger::Scheduled {
        slot: at(),
        attempt: 1,
        supersedes: None,
    };
    let wait = Wait {
        timeout: Duration::from_secs(60),
        interval: Duration::from_millis(1),
    };
    let r = attempt::run(dyn_cloud, store.clone(), "web", &trigger, at(), wait, &ctx).await;
    let retry = r.retry.expect("a retry is scheduled");
    let longest = chrono::Duration::days(lifeboat_schema::duration::MAX_DURATION_DAYS as i64);
    assert!(retry.due >= at() + longest, "{retry:?}");
    assert!(
        retry.due <= at() + longest + chrono::Duration::minutes(1),
        "{retry:?}"
    );
}
