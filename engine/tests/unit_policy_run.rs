//! Unit tests of policy runs (retries, timeout, success rule, scripts,
//! alerts and their SNS notifications) over the in-memory fake.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lifeboat_engine::apply::{self, Executor};
use lifeboat_engine::backup::Wait;
use lifeboat_engine::cloud::{Cloud, ErrorKind};
use lifeboat_engine::fake::FakeCloud;
use lifeboat_engine::planner;
use lifeboat_engine::policy_run::{self, Context};
use lifeboat_engine::state::{BackupStatus, Store};
use lifeboat_schema::Config;

const WAIT: Wait = Wait {
    timeout: Duration::from_secs(60),
    interval: Duration::from_millis(1),
};

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:alerts";

fn at(minute: u32) -> DateTime<Utc> {
    format!("2026-11-22T10:{minute:02}:00Z").parse().unwrap()
}

struct Bench {
    cloud: FakeCloud,
    store: Arc<Mutex<Store>>,
    config: Config,
    dir: tempfile::TempDir,
}

/// One policy `web` with one instance, `options` pasted into it, and a
/// notifications block.
fn config_text(options: &str) -> String {
    format!(
        r#"
account "main" {{
  regions = ["us-east-1"]
}}

notifications {{
  sns_topic = "{TOPIC}"
  account   = account.main
  region    = "us-east-1"
}}

policy "web" {{
  account     = account.main
  generations = 2
  instance "i-0000000a" {{
    region = "us-east-1"
  }}
{options}
}}
"#
    )
}

fn script(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

impl Bench {
    async fn new(options: &str) -> Bench {
        let cloud = FakeCloud::new(10);
        cloud
            .world
            .lock()
            .unwrap()
            .add_instance("i-0000000a", "us-east-1", &[], 2);
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Mutex::new(
            Store::open(&dir.path().join("state.db")).unwrap(),
        ));
        let config = lifeboat_schema::load_sources(&[("main.lb.hcl".into(), config_text(options))])
            .unwrap_or_else(|d| panic!("{d}"))
            .config;
        let b = Bench {
            cloud,
            store,
            config,
            dir,
        };
        let state = b.store.lock().unwrap().load().unwrap();
        let obs = planner::observe(b.cloud(), &b.config, &state)
            .await
            .unwrap();
        let plan = planner::plan(&b.config, &state, &obs, at(0));
        let exec = Arc::new(Executor {
            cloud: b.cloud(),
            accounts: planner::known_accounts(&b.config, &state),
            store: b.store.clone(),
            now: at(0),
            lock_id: None,
            stop: Default::default(),
        });
        let report = apply::apply(&plan, exec, 4, |_, _| {}).await;
        assert_eq!(report.failed(), 0);
        b
    }

    fn cloud(&self) -> Arc<dyn Cloud> {
        Arc::new(self.cloud.clone())
    }

    fn ctx(&self) -> Context {
        Context {
            config_dir: self.dir.path().to_path_buf(),
            notifications: self.config.notifications.clone(),
        }
    }

    async fn run(&self, minute: u32) -> policy_run::PolicyRun {
        policy_run::run(
            self.cloud(),
            self.store.clone(),
            "web",
            at(minute),
            WAIT,
            &self.ctx(),
        )
        .await
    }

    fn fail_snapshots(&self, fail: bool) {
        let mut w = self.cloud.world.lock().unwrap();
        if fail {
            w.failing
                .insert("CreateSnapshots".into(), ErrorKind::AccessDenied);
        } else {
            w.failing.remove("CreateSnapshots");
        }
    }

    fn published(&self) -> Vec<(String, String, String)> {
        self.cloud.world.lock().unwrap().published.clone()
    }
}

#[tokio::test]
async fn unit_a_failed_backup_is_retried_after_the_wait_then_opens_an_alert_published_once() {
    let b = Bench::new("retries {\n count = 2\n wait = \"1s\"\n }").await;
    b.fail_snapshots(true);
    let started = std::time::Instant::now();
    let r = b.run(1).await;
    assert!(started.elapsed() >= Duration::from_secs(2), "two waits");
    assert_eq!(r.attempts.len(), 3);
    assert!(!r.succeeded);
    assert_eq!(r.failures, 1);
    assert_eq!(b.cloud.world.lock().unwrap().calls_of("CreateSnapshots"), 3);
    // Three failed backups in the catalog, one per attempt.
    let backups = b.store.lock().unwrap().backups(Some("web")).unwrap();
    assert_eq!(backups.len(), 3);
    assert!(backups.iter().all(|x| x.status == BackupStatus::Failed));
    let alert = r.alert_opened.expect("an alert opens at the first failure");
    assert!(
        alert.message.contains("after 3 attempt(s)"),
        "{}",
        alert.message
    );
    assert_eq!(b.store.lock().unwrap().open_alerts().unwrap().len(), 1);
    let sent = b.published();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, TOPIC);
    assert_eq!(sent[0].1, "Lifeboat alert opened: policy web");
    assert!(sent[0].2.starts_with("ALERT OPENED\npolicy: web\n"));

    // A second failed run: still one alert, nothing more published.
    let r = b.run(20).await;
    assert_eq!(r.failures, 2);
    assert!(r.alert_opened.is_none());
    assert_eq!(b.published().len(), 1);

    // The next success closes it, and says so once.
    b.fail_snapshots(false);
    let r = b.run(40).await;
    assert!(r.succeeded);
    assert_eq!(r.attempts.len(), 1);
    assert_eq!(r.alerts_closed.len(), 1);
    assert!(b.store.lock().unwrap().open_alerts().unwrap().is_empty());
    assert_eq!(b.store.lock().unwrap().failures("web").unwrap(), 0);
    let sent = b.published();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].1, "Lifeboat alert closed: policy web");
    assert!(sent[1]
        .2
        .contains("succeeded with backup: 2026-11-22T10:40:00Z"));
}

#[tokio::test]
async fn unit_failures_to_alert_waits_for_that_many_consecutive_failures() {
    let b = Bench::new("failures_to_alert = 2").await;
    b.fail_snapshots(true);
    let r = b.run(1).await;
    assert_eq!(r.attempts.len(), 1, "no retries by default");
    assert!(r.alert_opened.is_none());
    // A success in between starts the count over.
    b.fail_snapshots(false);
    assert!(b.run(2).await.succeeded);
    b.fail_snapshots(true);
    assert!(b.run(3).await.alert_opened.is_none());
    assert!(b.run(4).await.alert_opened.is_some());
    assert_eq!(b.published().len(), 1);
}

#[tokio::test]
async fn unit_strict_makes_a_script_failure_an_invalid_generation_and_retries() {
    let b = Bench::new(
        "success = \"strict\"\n retries {\n count = 1\n wait = \"0s\"\n }\n scripts {\n before = \"before.sh\"\n complete = \"complete.sh\"\n }",
    )
    .await;
    script(
        b.dir.path(),
        "before.sh",
        "echo \"freeze failed for $LIFEBOAT_POLICY\" >&2; exit 4",
    );
    script(
        b.dir.path(),
        "complete.sh",
        "echo \"complete $1 $2 $3 success=$LIFEBOAT_SUCCESS targets=$LIFEBOAT_TARGETS\" >&2",
    );
    let r = b.run(1).await;
    assert_eq!(r.attempts.len(), 2);
    assert!(!r.succeeded);
    // Snapshots are still taken (recoverable), but the backups do not count.
    let backups = b.store.lock().unwrap().backups(Some("web")).unwrap();
    assert_eq!(backups.len(), 2);
    for x in &backups {
        assert_eq!(x.status, BackupStatus::Partial);
        assert_eq!(x.snapshots.len(), 2);
        assert!(
            x.problems
                .iter()
                .any(|p| p.contains("before script before.sh: exit status 4")),
            "{:?}",
            x.problems
        );
    }
    let runs = b
        .store
        .lock()
        .unwrap()
        .script_runs("web", &backups[0].id)
        .unwrap();
    assert_eq!(
        runs.iter().map(|r| r.step.as_str()).collect::<Vec<_>>(),
        ["before", "complete"]
    );
    assert!(!runs[0].ok);
    assert_eq!(runs[0].exit_code, Some(4));
    assert_eq!(runs[0].stderr, "freeze failed for web\n");
    assert_eq!(
        runs[1].stderr,
        format!(
            "complete web {} 0 success=0 targets=i-0000000a\n",
            backups[0].id
        )
    );
    assert!(r.alert_opened.is_some());
}

#[tokio::test]
async fn unit_snapshots_only_counts_a_backup_whose_scripts_failed() {
    let b = Bench::new(
        "success = \"snapshots_only\"\n retries {\n count = 3\n wait = \"0s\"\n }\n scripts {\n after = \"after.sh\"\n }",
    )
    .await;
    script(b.dir.path(), "after.sh", "echo \"after $3\" >&2; exit 1");
    let r = b.run(1).await;
    assert_eq!(r.attempts.len(), 1);
    assert!(r.succeeded);
    let backups = b.store.lock().unwrap().backups(Some("web")).unwrap();
    assert_eq!(backups.len(), 1);
    assert_eq!(backups[0].status, BackupStatus::Success);
    assert!(backups[0]
        .problems
        .iter()
        .any(|p| p.contains("after script after.sh")));
    let runs = b
        .store
        .lock()
        .unwrap()
        .script_runs("web", &backups[0].id)
        .unwrap();
    // The after script is told the before script succeeded (there was none).
    assert_eq!(runs[0].stderr, "after 1\n");
    assert!(r.alert_opened.is_none());
}

#[tokio::test]
async fn unit_a_script_past_its_timeout_fails_the_step() {
    let b = Bench::new("scripts {\n before = \"slow.sh\"\n timeout = \"1s\"\n }").await;
    script(b.dir.path(), "slow.sh", "echo waiting >&2; sleep 20");
    let started = std::time::Instant::now();
    let r = b.run(1).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!r.succeeded);
    let backups = b.store.lock().unwrap().backups(Some("web")).unwrap();
    let runs = b
        .store
        .lock()
        .unwrap()
        .script_runs("web", &backups[0].id)
        .unwrap();
    assert!(runs[0].detail.contains("timed out"), "{}", runs[0].detail);
    assert_eq!(runs[0].stderr, "waiting\n");
}

#[tokio::test]
async fn unit_the_policy_timeout_bounds_the_wait_for_snapshots() {
    let b = Bench::new("timeout = \"1s\"").await;
    b.cloud.world.lock().unwrap().pending_describes = u32::MAX;
    let started = std::time::Instant::now();
    let r = b.run(1).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!r.succeeded);
    let backups = b.store.lock().unwrap().backups(Some("web")).unwrap();
    assert_eq!(backups.len(), 1);
    assert_ne!(backups[0].status, BackupStatus::Success);
    assert_ne!(backups[0].status, BackupStatus::Running);
}

#[tokio::test]
async fn unit_the_daily_summary_is_published_once_a_day() {
    let text = config_text("").replace(
        "region    = \"us-east-1\"\n}",
        "region    = \"us-east-1\"\n  daily_summary = \"08:00\"\n}",
    );
    let b = Bench::new("").await;
    let config = lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text)])
        .unwrap_or_else(|d| panic!("{d}"))
        .config;
    let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    let cloud = b.cloud();
    let send = |now| lifeboat_engine::notify::daily_summary(&cloud, &b.store, &config, now);
    assert!(!send(t("2026-11-22T07:00:00Z")).await.unwrap());
    assert!(send(t("2026-11-22T08:01:00Z")).await.unwrap());
    assert!(!send(t("2026-11-22T09:00:00Z")).await.unwrap());
    assert!(send(t("2026-11-23T08:00:00Z")).await.unwrap());
    let sent = b.published();
    assert_eq!(sent.len(), 2);
    assert!(
        sent[0]
            .2
            .contains("policies without schedules (1):\n  web\n"),
        "{}",
        sent[0].2
    );
    assert!(sent[0].2.contains("open alerts (0):\n  none\n"));
}

#[tokio::test]
async fn unit_an_invalid_strict_backup_never_makes_retention_delete_a_valid_generation() {
    let b = Bench::new(
        "retries {\n count = 2\n wait = \"0s\"\n }\n scripts {\n before = \"before.sh\"\n }",
    )
    .await;
    script(
        b.dir.path(),
        "before.sh",
        "if [ -f broken ]; then exit 1; fi",
    );
    assert!(b.run(1).await.succeeded);
    assert!(b.run(2).await.succeeded);
    std::fs::write(b.dir.path().join("broken"), "").unwrap();
    let r = b.run(3).await;
    assert_eq!(r.attempts.len(), 3);
    let backups = b.store.lock().unwrap().backups(Some("web")).unwrap();
    let good: Vec<&str> = backups
        .iter()
        .filter(|x| x.status == BackupStatus::Success)
        .map(|x| x.id.as_str())
        .collect();
    // generations = 2: both valid generations are still there.
    assert_eq!(good, ["2026-11-22T10:01:00Z", "2026-11-22T10:02:00Z"]);
    assert_eq!(
        backups
            .iter()
            .filter(|x| x.status == BackupStatus::Partial)
            .count(),
        3
    );
    assert!(r.alert_opened.unwrap().message.contains(
        "before script before.sh: exit status 1 (success = \"strict\": not a valid generation)"
    ));
}
