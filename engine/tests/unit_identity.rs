//! The account identity check over the in-memory fake: which AWS account
//! the credentials reach is set per account in the fake (the emulator
//! always answers one id), so a change of account between two processes
//! can be played.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use lifeboat_engine::backup::{self, BackupError};
use lifeboat_engine::cloud::identity::CheckedCloud;
use lifeboat_engine::cloud::{Cloud, ErrorKind};
use lifeboat_engine::plan::apply::{self, Executor};
use lifeboat_engine::plan::{observe, planner};
use lifeboat_engine::state::{SharedStore, Store};
use lifeboat_engine::testing::fake::FakeCloud;
use lifeboat_schema::Config;

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

const WAIT: backup::Wait = backup::Wait {
    timeout: std::time::Duration::from_secs(60),
    interval: std::time::Duration::from_millis(1),
};

fn config(text: &str) -> Config {
    lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text.to_string())])
        .unwrap_or_else(|d| panic!("{d}"))
        .config
}

fn at(hour: u32) -> DateTime<Utc> {
    format!("2026-11-22T{hour:02}:00:00Z").parse().unwrap()
}

/// A new process's cloud: the fake behind the identity check.
fn checked(fake: &FakeCloud, store: &SharedStore, config: &Config) -> Arc<dyn Cloud> {
    Arc::new(CheckedCloud::new(
        Arc::new(fake.clone()),
        store.clone(),
        config,
    ))
}

async fn apply(cloud: Arc<dyn Cloud>, store: &SharedStore, config: &Config) {
    let state = store.lock().unwrap().load().unwrap();
    let obs = observe::observe(cloud.clone(), config, &state)
        .await
        .unwrap();
    let plan = planner::plan(config, &state, &obs, at(9)).unwrap();
    let exec = Arc::new(Executor {
        cloud,
        accounts: planner::known_accounts(config, &state).unwrap(),
        store: store.clone(),
        now: at(9),
        lock_id: None,
        stop: Default::default(),
    });
    assert_eq!(apply::apply(&plan, exec, 4, |_, _| {}).await.failed(), 0);
}

fn setup() -> (FakeCloud, SharedStore, tempfile::TempDir) {
    let fake = FakeCloud::new(10);
    let mut w = fake.world.lock().unwrap();
    w.add_instance("i-0000000a", "us-east-1", &[], 2);
    w.account_ids.insert("main".into(), "111111111111".into());
    drop(w);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Mutex::new(
        Store::open(&dir.path().join("state.db")).unwrap(),
    ));
    (fake, store, dir)
}

#[tokio::test]
async fn the_first_id_is_recorded_with_one_sts_call_and_another_id_later_is_refused_before_any_list(
) {
    let (fake, store, _dir) = setup();
    let config = config(CONFIG);
    let cloud = checked(&fake, &store, &config);
    apply(cloud.clone(), &store, &config).await;
    backup::run(cloud, store.clone(), "web", at(10), WAIT)
        .await
        .unwrap();
    assert_eq!(
        store
            .lock()
            .unwrap()
            .recorded_account_id("main")
            .unwrap()
            .as_deref(),
        Some("111111111111")
    );
    assert_eq!(
        fake.world.lock().unwrap().calls_of("GetCallerIdentity"),
        1,
        "one STS call per account per process"
    );

    // Another process, whose credentials now reach another account.
    fake.world
        .lock()
        .unwrap()
        .account_ids
        .insert("main".into(), "222222222222".into());
    fake.world.lock().unwrap().calls.clear();
    let cloud = checked(&fake, &store, &config);
    let state = store.lock().unwrap().load().unwrap();
    let e = observe::observe(cloud.clone(), &config, &state)
        .await
        .expect_err("the plan's observation is refused");
    let said = e.to_string();
    for needle in ["\"main\"", "111111111111", "222222222222", "recorded"] {
        assert!(said.contains(needle), "{needle} in {said}");
    }
    match backup::run(cloud, store.clone(), "web", at(11), WAIT).await {
        Err(BackupError::Cloud(e)) => assert_eq!(e.kind, ErrorKind::WrongAccount),
        Err(e) => panic!("expected WrongAccount, got {e}"),
        Ok(_) => panic!("expected WrongAccount, the backup ran"),
    }
    let w = fake.world.lock().unwrap();
    assert_eq!(
        w.calls
            .iter()
            .filter(|c| !c.starts_with("GetCallerIdentity"))
            .count(),
        0,
        "nothing but STS was called: {:?}",
        w.calls
    );
    drop(w);
    assert_eq!(store.lock().unwrap().backups(Some("web")).unwrap().len(), 1);
    assert_eq!(
        store
            .lock()
            .unwrap()
            .recorded_account_id("main")
            .unwrap()
            .as_deref(),
        Some("111111111111")
    );
}

#[tokio::test]
async fn a_pin_to_another_account_refuses_and_records_nothing() {
    let (fake, store, _dir) = setup();
    let config = config(&CONFIG.replace(
        "regions = [\"us-east-1\"]",
        "regions    = [\"us-east-1\"]\n  account_id = \"999999999999\"",
    ));
    let cloud = checked(&fake, &store, &config);
    let state = store.lock().unwrap().load().unwrap();
    let e = observe::observe(cloud, &config, &state)
        .await
        .expect_err("refused");
    let said = e.to_string();
    for needle in ["\"main\"", "111111111111", "999999999999", "pinned"] {
        assert!(said.contains(needle), "{needle} in {said}");
    }
    assert_eq!(
        store.lock().unwrap().recorded_account_id("main").unwrap(),
        None
    );
    assert_eq!(fake.world.lock().unwrap().calls_of("DescribeInstances"), 0);
}

/// Records the external id of every account the identity check hands on:
/// the emulator's STS takes any id, so this is where it shows that the id
/// itself, never its digest, reaches the provider.
struct Recorder {
    inner: FakeCloud,
    seen: Mutex<Vec<Option<String>>>,
}

impl Recorder {
    fn saw(&self, account: &lifeboat_schema::Account) {
        let id = account
            .assume_role
            .as_ref()
            .and_then(|r| r.external_id.clone());
        self.seen.lock().unwrap().push(id);
    }
}

#[async_trait::async_trait]
impl Cloud for Recorder {
    async fn account_id(
        &self,
        account: &lifeboat_schema::Account,
    ) -> lifeboat_engine::cloud::CloudResult<String> {
        self.saw(account);
        self.inner.account_id(account).await
    }

    async fn ec2(
        &self,
        account: &lifeboat_schema::Account,
        region: &str,
    ) -> lifeboat_engine::cloud::CloudResult<Arc<dyn lifeboat_engine::cloud::Ec2>> {
        self.saw(account);
        self.inner.ec2(account, region).await
    }
}

/// [`CONFIG`] with the account reached through a role and its id.
fn with_role(id: &str) -> Config {
    config(&CONFIG.replace(
        "  regions = [\"us-east-1\"]\n}",
        &format!("  regions = [\"us-east-1\"]\n  assume_role {{\n    role_arn    = \"arn:aws:iam::111111111111:role/lifeboat\"\n    external_id = \"{id}\"\n  }}\n}}"),
    ))
}

#[tokio::test]
async fn the_provider_gets_the_id_itself_for_an_account_the_state_keeps_sealed() {
    let (fake, store, _dir) = setup();
    let files = with_role("ext-id-7f3a9c-clear");
    let recorder = Arc::new(Recorder {
        inner: fake.clone(),
        seen: Mutex::new(Vec::new()),
    });
    let cloud: Arc<dyn Cloud> =
        Arc::new(CheckedCloud::new(recorder.clone(), store.clone(), &files));
    apply(cloud.clone(), &store, &files).await;
    let recorded = store.lock().unwrap().load().unwrap().accounts().unwrap();
    let sealed = recorded["main"].assume_role.as_ref().unwrap();
    assert!(sealed
        .external_id
        .as_deref()
        .unwrap()
        .starts_with("hmac-sha256:"));
    recorder.seen.lock().unwrap().clear();

    // A backup acts through the account the state recorded (sealed).
    backup::run(cloud, store.clone(), "web", at(10), WAIT)
        .await
        .unwrap();
    let seen = recorder.seen.lock().unwrap().clone();
    assert!(!seen.is_empty());
    assert!(
        seen.iter()
            .all(|id| id.as_deref() == Some("ext-id-7f3a9c-clear")),
        "{seen:?}"
    );

    // Files with another id (not applied): nothing reaches the provider.
    recorder.seen.lock().unwrap().clear();
    let other = with_role("another-id-2b7e");
    let cloud: Arc<dyn Cloud> =
        Arc::new(CheckedCloud::new(recorder.clone(), store.clone(), &other));
    match backup::run(cloud, store.clone(), "web", at(11), WAIT).await {
        Err(BackupError::Cloud(e)) => {
            assert_eq!(e.action, "sts:AssumeRole");
            assert!(e.message.contains("only as a digest"), "{e}");
        }
        Err(e) => panic!("expected the id refused, got {e}"),
        Ok(_) => panic!("expected the id refused, the backup ran"),
    }
    assert!(recorder.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_account_whose_role_or_id_changed_is_checked_again() {
    let (fake, store, _dir) = setup();
    let one = with_role("ext-one-1a2b");
    let cloud = checked(&fake, &store, &one);
    let account = &one.accounts["main"];
    cloud.ec2(account, "us-east-1").await.unwrap();
    cloud.ec2(account, "us-east-1").await.unwrap();
    let sts = || fake.world.lock().unwrap().calls_of("GetCallerIdentity");
    assert_eq!(sts(), 1, "checked once per account");
    // A runner that took up an apply changing the id: new credentials,
    // checked again before any use, rather than trusted by name.
    let two = with_role("ext-two-3c4d");
    cloud.ec2(&two.accounts["main"], "us-east-1").await.unwrap();
    assert_eq!(sts(), 2, "checked again");
}
