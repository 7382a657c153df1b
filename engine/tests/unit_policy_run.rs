//! Unit tests of policy runs (retries, timeout, success rule, scripts,
//! alerts and their SNS notifications) over the in-memory fake.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lifeboat_engine::backup::Wait;
use lifeboat_engine::cloud::{Cloud, ErrorKind};
use lifeboat_engine::plan::apply::{self, Executor};
use lifeboat_engine::plan::{observe, planner};
use lifeboat_engine::runmode::attempt::{self, Context, Trigger};
use lifeboat_engine::state::{Alert, BackupStatus, Retry, SharedStore, Store};
use lifeboat_engine::testing::fake::FakeCloud;
use lifeboat_schema::Config;

const WAIT: Wait = Wait {
    timeout: Duration::from_secs(60),
    interval: Duration::from_millis(1),
};

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:alerts";

fn at(minute: u32) -> DateTime<Utc> {
    format!("2026-11-22T10:{minute:02}:00Z").parse().unwrap()
}

/// A run from its first attempt to its last.
#[derive(Default)]
struct Whole {
    attempts: Vec<attempt::Attempt>,
    retries: Vec<Retry>,
    succeeded: bool,
    failures: u32,
    alert_opened: Option<Alert>,
    alerts_closed: Vec<Alert>,
}

struct Bench {
    cloud: FakeCloud,
    store: SharedStore,
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
        Bench::with_config(&config_text(options), &["a"]).await
    }

    /// A bench with configuration `text` and instances `i-0000000{suffix}`
    /// (two volumes each) in us-east-1, applied.
    async fn with_config(text: &str, instances: &[&str]) -> Bench {
        let cloud = FakeCloud::new(10);
        for suffix in instances {
            cloud.world.lock().unwrap().add_instance(
                &format!("i-{suffix:0>8}"),
                "us-east-1",
                &[],
                2,
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Mutex::new(
            Store::open(&dir.path().join("state.db")).unwrap(),
        ));
        let config = lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text.to_string())])
            .unwrap_or_else(|d| panic!("{d}"))
            .config;
        let b = Bench {
            cloud,
            store,
            config,
            dir,
        };
        let state = b.store.lock().unwrap().load().unwrap();
        let obs = observe::observe(b.cloud(), &b.config, &state)
            .await
            .unwrap();
        let plan = planner::plan(&b.config, &state, &obs, at(0)).unwrap();
        let exec = Arc::new(Executor {
            cloud: b.cloud(),
            accounts: planner::known_accounts(&b.config, &state).unwrap(),
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
            limits: Default::default(),
            lock_id: None,
        }
    }

    /// One attempt of the run for the slot at `minute`.
    async fn attempt(&self, trigger: &Trigger, now: DateTime<Utc>) -> attempt::PolicyRun {
        attempt::run(
            self.cloud(),
            self.store.clone(),
            "web",
            trigger,
            now,
            WAIT,
            &self.ctx(),
        )
        .await
    }

    /// The whole run for the slot at `minute`: the first attempt, then each
    /// retry the state schedules, made at its due time (as the runner would).
    async fn run(&self, minute: u32) -> Whole {
        let mut whole = Whole::default();
        let mut trigger = Trigger::Scheduled {
            slot: at(minute),
            attempt: 1,
            supersedes: None,
        };
        let mut now = at(minute);
        loop {
            let r = self.attempt(&trigger, now).await;
            whole.attempts.extend(r.attempt.clone());
            whole.succeeded = r.succeeded;
            whole.failures = r.failures;
            whole.alert_opened = r.alert_opened.clone();
            whole.alerts_closed = r.alerts_closed.clone();
            let Some(retry) = r.retry else { break };
            assert_eq!(
                self.store.lock().unwrap().retries().unwrap().get("web"),
                Some(&retry),
                "the retry waits in the state"
            );
            assert!(
                r.alert_opened.is_none(),
                "a run still retrying opens no alert"
            );
            now = retry.due;
            trigger = Trigger::Scheduled {
                slot: retry.slot,
                attempt: retry.attempt,
                supersedes: None,
            };
            whole.retries.push(retry);
        }
        assert!(self.store.lock().unwrap().retries().unwrap().is_empty());
        whole
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
    let r = b.run(1).await;
    // Two retries, each scheduled one wait after the failed attempt.
    assert_eq!(
        r.retries.iter().map(|x| x.attempt).collect::<Vec<_>>(),
        [2, 3]
    );
    assert!(r.retries[0].due >= at(1) + chrono::Duration::seconds(1));
    assert!(r.retries[1].due >= r.retries[0].due + chrono::Duration::seconds(1));
    assert!(r.retries.iter().all(|x| x.slot == at(1)));
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
async fn unit_snapshots_made_by_a_create_call_the_timeout_abandoned_are_in_the_catalog() {
    // The fake fills an emulator hole: moto answers every create at once,
    // so only the fake can make snapshots and answer after the timeout.
    let b = Bench::new("timeout = \"1s\"").await;
    b.cloud.world.lock().unwrap().answer_delay = Some(Duration::from_secs(5));
    let r = b.run(1).await;
    assert!(!r.succeeded);
    let backups = b.store.lock().unwrap().backups(Some("web")).unwrap();
    assert_eq!(backups.len(), 1);
    assert_eq!(backups[0].status, BackupStatus::Failed);
    let mut recorded: Vec<String> = backups[0].snapshots.iter().map(|s| s.id.clone()).collect();
    recorded.sort();
    let made: Vec<String> = b
        .cloud
        .world
        .lock()
        .unwrap()
        .snapshots
        .keys()
        .cloned()
        .collect();
    assert_eq!(made.len(), 2, "the call made both volumes' snapshots");
    assert_eq!(recorded, made, "{:?}", backups[0].problems);
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
    let send =
        |now| lifeboat_engine::runmode::notify::daily_summary(&cloud, &b.store, &config, now);
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

#[tokio::test]
async fn unit_a_new_slot_replaces_a_waiting_retry_and_that_run_counts_as_failed() {
    let b = Bench::new("failures_to_alert = 2\n retries {\n count = 2\n wait = \"1h\"\n }").await;
    b.fail_snapshots(true);
    let first = Trigger::Scheduled {
        slot: at(1),
        attempt: 1,
        supersedes: None,
    };
    let r = b.attempt(&first, at(1)).await;
    let retry = r.retry.expect("a retry is scheduled an hour later");
    assert!(retry.due >= "2026-11-22T11:01:00Z".parse::<DateTime<Utc>>().unwrap());
    assert_eq!(r.failures, 0, "a run still retrying has not failed yet");

    // The next slot comes before the retry: it replaces it.
    let second = Trigger::Scheduled {
        slot: at(30),
        attempt: 1,
        supersedes: Some(retry.clone()),
    };
    let r = b.attempt(&second, at(30)).await;
    assert_eq!(r.superseded, Some(retry));
    assert_eq!(r.failures, 1, "the replaced run counted as failed");
    let alert = r.alert_opened.as_ref().map(|a| a.message.clone());
    assert_eq!(alert, None, "one failure of two needed");
    // The new run failed too and waits for its own retry.
    let waiting = b.store.lock().unwrap().retries().unwrap();
    assert_eq!(waiting["web"].slot, at(30));
    assert_eq!(waiting["web"].attempt, 2);

    // An ad hoc backup that succeeds ends the waiting retry and the count.
    b.fail_snapshots(false);
    let r = b.attempt(&Trigger::AdHoc, at(40)).await;
    assert!(r.succeeded);
    assert!(r.retry.is_none());
    assert!(b.store.lock().unwrap().retries().unwrap().is_empty());
    assert_eq!(b.store.lock().unwrap().failures("web").unwrap(), 0);
}

#[tokio::test]
async fn unit_an_ad_hoc_backup_is_one_attempt_that_leaves_a_scheduled_retry_alone() {
    let b = Bench::new("retries {\n count = 3\n wait = \"10m\"\n }").await;
    b.fail_snapshots(true);
    let r = b.attempt(&Trigger::AdHoc, at(1)).await;
    assert!(r.retry.is_none(), "an ad hoc backup is not retried");
    assert_eq!(r.failures, 1);
    assert!(r.alert_opened.is_some());
    assert!(b.store.lock().unwrap().retries().unwrap().is_empty());
}

#[tokio::test]
async fn unit_the_runner_skips_a_slot_while_the_policy_s_run_is_in_flight() {
    use lifeboat_engine::runmode::agenda::{Due, DueKind};
    use lifeboat_engine::runmode::runner::{Finished, Runner, Started};
    let b = Bench::new("").await;
    let mut runner = Runner::new(b.cloud(), b.store.clone(), &b.config, WAIT, b.ctx());
    let due = |minute| Due {
        policy: "web".into(),
        slot: at(minute),
        schedules: vec!["hourly".into()],
        kind: DueKind::Slot,
        attempt: 1,
        supersedes: None,
    };
    let started = runner.start(vec![due(1)], at(1)).unwrap();
    assert!(matches!(started[..], [Started::Started(_)]));
    assert!(runner.busy());
    // The task has not even been polled yet: the policy is in flight.
    let again = runner.start(vec![due(2)], at(2)).unwrap();
    assert!(matches!(again[..], [Started::Skipped(_)]));
    let skipped = b.store.lock().unwrap().skipped(Some("web")).unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].slot, at(2));
    assert_eq!(b.store.lock().unwrap().last_slots().unwrap()["web"], at(2));
    // The attempt in flight waits in the state (for a restart), but it is
    // neither due again nor a reason to wake while it runs.
    let waiting = b.store.lock().unwrap().retries().unwrap();
    assert_eq!((waiting["web"].slot, waiting["web"].attempt), (at(1), 1));
    assert!(runner.due(at(3)).unwrap().is_empty());
    assert_eq!(runner.agenda().unwrap().next_run(at(3)), None);

    let ran = runner
        .finished()
        .await
        .and_then(Finished::backup)
        .expect("the first run finishes");
    assert!(ran.succeeded);
    assert_eq!(ran.due.slot, at(1));
    // The finished run does not move the last slot back to its own.
    assert_eq!(b.store.lock().unwrap().last_slots().unwrap()["web"], at(2));
    assert!(b.store.lock().unwrap().retries().unwrap().is_empty());
    assert!(runner.finished().await.is_none());
    assert!(!runner.busy());
    assert_eq!(b.cloud.world.lock().unwrap().calls_of("CreateSnapshots"), 1);
}

#[tokio::test]
async fn unit_a_strict_after_script_failure_is_settled_before_retention_counts() {
    let b = Bench::new("success = \"strict\"\n scripts {\n after = \"after.sh\"\n }").await;
    script(
        b.dir.path(),
        "after.sh",
        "if [ -f broken ]; then exit 3; fi",
    );
    assert!(b.run(1).await.succeeded);
    assert!(b.run(2).await.succeeded);
    std::fs::write(b.dir.path().join("broken"), "").unwrap();
    let r = b.run(3).await;
    assert!(!r.succeeded);
    let backups = b.store.lock().unwrap().backups(Some("web")).unwrap();
    let status: Vec<(&str, BackupStatus)> =
        backups.iter().map(|x| (x.id.as_str(), x.status)).collect();
    // Had retention counted the third backup before its after script
    // failed, it would have deleted the first valid generation.
    assert_eq!(
        status,
        [
            ("2026-11-22T10:01:00Z", BackupStatus::Success),
            ("2026-11-22T10:02:00Z", BackupStatus::Success),
            ("2026-11-22T10:03:00Z", BackupStatus::Partial),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unit_policies_running_together_share_one_bound_per_account_and_region() {
    use lifeboat_engine::runmode::agenda::{Due, DueKind};
    use lifeboat_engine::runmode::runner::{Finished, Runner};
    // Two policies of four instances each, in one account and region.
    let text = config_text("").replace(
        "policy \"web\" {",
        "policy \"api\" {\n  account     = account.main\n  generations = 2\n  instance \"i-0000000e\" {\n    region = \"us-east-1\"\n  }\n  instance \"i-0000000f\" {\n    region = \"us-east-1\"\n  }\n  instance \"i-00000010\" {\n    region = \"us-east-1\"\n  }\n  instance \"i-00000011\" {\n    region = \"us-east-1\"\n  }\n}\n\npolicy \"web\" {\n  instance \"i-0000000b\" {\n    region = \"us-east-1\"\n  }\n  instance \"i-0000000c\" {\n    region = \"us-east-1\"\n  }\n  instance \"i-0000000d\" {\n    region = \"us-east-1\"\n  }",
    );
    let b = Bench::with_config(&text, &["a", "b", "c", "d", "e", "f", "10", "11"]).await;
    b.cloud.world.lock().unwrap().create_delay = Some(Duration::from_millis(50));
    let mut ctx = b.ctx();
    ctx.limits = lifeboat_engine::backup::Limits::new(3);
    let mut runner = Runner::new(b.cloud(), b.store.clone(), &b.config, WAIT, ctx);
    let due = |policy: &str| Due {
        policy: policy.into(),
        slot: at(1),
        schedules: vec!["hourly".into()],
        kind: DueKind::Slot,
        attempt: 1,
        supersedes: None,
    };
    runner.start(vec![due("api"), due("web")], at(1)).unwrap();
    let mut ok = 0;
    while let Some(r) = runner.finished().await.and_then(Finished::backup) {
        assert!(r.succeeded, "{:?}", r.attempt);
        ok += 1;
    }
    assert_eq!(ok, 2);
    let w = b.cloud.world.lock().unwrap();
    assert_eq!(w.calls_of("CreateSnapshots"), 8);
    // Eight calls of 50 ms, two policies at once: without the shared bound
    // each policy would have had its own (and up to eight in flight).
    assert_eq!(w.max_creates_in_flight, 3);
}

/// The emulator cannot be made to fail one describe while the rest of a
/// backup works: the fake fails every DescribeInstances, so that each
/// backup backs up the targets as applied with a note, and the alert of
/// the undecided membership is shown to open at the third in a row and
/// close when membership is decided again.
#[tokio::test]
async fn unit_membership_undecided_three_backups_in_a_row_opens_an_alert_closed_when_decided() {
    use lifeboat_engine::backup::members::{alert_owner, UNDECIDED_TO_ALERT};
    let b = Bench::new("").await;
    b.cloud
        .world
        .lock()
        .unwrap()
        .failing
        .insert("DescribeInstances".into(), ErrorKind::Throttled);
    let owner = alert_owner("web");
    assert_eq!(owner, "policy.web.membership");
    for n in 1..=UNDECIDED_TO_ALERT + 1 {
        let r = b.attempt(&Trigger::AdHoc, at(n as u32)).await;
        let record = &r.result.as_ref().expect("backed up").record;
        assert_eq!(record.status, BackupStatus::Success, "{record:?}");
        assert!(
            record
                .problems
                .iter()
                .any(|p| p.starts_with("membership: not decided again")),
            "{:?}",
            record.problems
        );
        let opened = r.membership_alert.is_some();
        assert_eq!(opened, n == UNDECIDED_TO_ALERT, "backup {n}");
    }
    let open = b.store.lock().unwrap().open_alerts().unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].policy, owner);
    assert!(
        open[0].message.contains("3 backups in a row"),
        "{}",
        open[0].message
    );
    let sent = b.published();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, "Lifeboat alert opened: policy.web.membership");

    b.cloud
        .world
        .lock()
        .unwrap()
        .failing
        .remove("DescribeInstances");
    let r = b.attempt(&Trigger::AdHoc, at(10)).await;
    assert!(r.succeeded);
    assert!(r.alerts_closed.iter().any(|a| a.policy == owner));
    assert!(b.store.lock().unwrap().open_alerts().unwrap().is_empty());
}

/// The daily summary's resource-control lines over the fake (the emulator
/// has no clock to move a day on): operations and failed targets of the
/// last day from the operations log, targets out of step from a look.
#[tokio::test]
async fn unit_the_daily_summary_counts_operations_failures_and_targets_out_of_step() {
    use lifeboat_engine::state::{ControlRecord, ControlWrite};
    let text = config_text("").replace(
        "region    = \"us-east-1\"\n}",
        "region    = \"us-east-1\"\n  daily_summary = \"08:00\"\n}",
    ) + r#"
resource_control_group "nightly" {
  account   = account.main
  instances = ["i-0000000a"]
  window {
    off = "sat 20:00"
    on  = "mon 07:00"
  }
}

resource_control_group "quiet" {
  account = account.main
  select {
    tag = "never-there"
  }
  window {
    off = "wed 20:00"
    on  = "thu 07:00"
  }
}
"#;
    let b = Bench::new("").await;
    let config = lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text)])
        .unwrap_or_else(|d| panic!("{d}"))
        .config;
    let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    let row = |at: &str, result: &str| ControlRecord {
        group: "nightly".into(),
        target: "instance i-0000000a".into(),
        action: "off".into(),
        requested: t(at),
        verified: None,
        result: result.into(),
        detail: String::new(),
    };
    // Two days ago (not counted), then two operations of the last day,
    // one of which failed.
    for (at, result) in [
        ("2026-11-20T20:00:00Z", "failed"),
        ("2026-11-21T20:00:00Z", "failed"),
        ("2026-11-22T06:00:00Z", "done"),
    ] {
        b.store
            .lock()
            .unwrap()
            .write_control(&ControlWrite {
                rows: &[row(at, result)],
                look: false,
                owner: "resource_control_group.nightly",
                alert: None,
                close: false,
                at: t(at),
                marks: &[],
            })
            .unwrap();
    }
    // Sunday: the windows want the instance stopped; it runs.
    let cloud = b.cloud();
    assert!(lifeboat_engine::runmode::notify::daily_summary(
        &cloud,
        &b.store,
        &config,
        t("2026-11-22T08:01:00Z")
    )
    .await
    .unwrap());
    let sent = b.published();
    assert!(
        sent[0].2.contains(
            "resource control in the last day (2):\n  group nightly: 2 operations, 1 failed target, 1 target out of step\n  group quiet: 0 operations, 0 failed targets, 0 targets out of step\n"
        ),
        "{}",
        sent[0].2
    );
}
