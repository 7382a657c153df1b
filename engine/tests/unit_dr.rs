//! DR copies over the in-memory fake, for what the emulator cannot show:
//! a copy of a snapshot shared from another account (the emulator refuses
//! it), copies that stay pending until the DR timeout (the emulator
//! completes at once), the cap on copies in flight per destination (the
//! fake counts the most ever pending), the key chosen for an encrypted
//! copy in each detection mode, and a process killed between a copy call
//! and its record.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use lifeboat_engine::backup;
use lifeboat_engine::cloud::{Cloud, Encryption, SnapshotCopyRequest};
use lifeboat_engine::dr::{self, DrWork, Limits};
use lifeboat_engine::plan::apply;
use lifeboat_engine::plan::Plan;
use lifeboat_engine::runmode::attempt::{self, Context, Trigger};
use lifeboat_engine::state::{DrRun, DrStatus, SharedStore, Store};
use lifeboat_engine::testing::{self, fake::FakeCloud};
use lifeboat_schema::Config;

const WAIT: backup::Wait = backup::Wait {
    timeout: std::time::Duration::from_secs(60),
    interval: std::time::Duration::from_millis(1),
};

const MAIN_ID: &str = "111111111111";
const VAULT_ID: &str = "222222222222";

fn config(instances: usize, dr: &str) -> Config {
    let targets: String = (0..instances)
        .map(|n| format!("  instance \"i-{n:08x}\" {{\n    region = \"us-east-1\"\n  }}\n"))
        .collect();
    let text = format!(
        r#"
account "main" {{
  regions = ["us-east-1"]
}}

account "vault" {{
  type         = "dr"
  regions      = ["us-east-1"]
  allow_delete = false
}}

policy "web" {{
  account     = account.main
  generations = 2
{targets}
  dr {{
{dr}
  }}
}}
"#
    );
    lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text)])
        .unwrap_or_else(|d| panic!("{d}"))
        .config
}

fn at(minute: u32) -> DateTime<Utc> {
    format!("2026-11-22T10:{minute:02}:00Z").parse().unwrap()
}

struct Bench {
    cloud: FakeCloud,
    store: SharedStore,
    config: Config,
    _dir: tempfile::TempDir,
}

impl Bench {
    async fn applied(instances: usize, dr: &str) -> Bench {
        let cloud = FakeCloud::new(3);
        {
            let mut w = cloud.world.lock().unwrap();
            for n in 0..instances {
                w.add_instance(&format!("i-{n:08x}"), "us-east-1", &[], 1);
            }
            w.account_ids.insert("main".into(), MAIN_ID.into());
            w.account_ids.insert("vault".into(), VAULT_ID.into());
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Mutex::new(
            Store::open(&dir.path().join("state.db")).unwrap(),
        ));
        let b = Bench {
            cloud,
            store,
            config: config(instances, dr),
            _dir: dir,
        };
        let report = b.apply(&b.plan(at(0)).await, at(0)).await;
        assert_eq!(report.failed(), 0, "{report:?}");
        b
    }

    fn cloud(&self) -> Arc<dyn Cloud> {
        Arc::new(self.cloud.clone())
    }

    async fn plan(&self, now: DateTime<Utc>) -> Plan {
        testing::plan_config(self.cloud(), &self.store, &self.config, now).await
    }

    async fn apply(&self, plan: &Plan, now: DateTime<Utc>) -> apply::Report {
        testing::apply_plan(self.cloud(), &self.store, &self.config, plan, now).await
    }

    /// One ad hoc backup; returns the DR runs it recorded as pending.
    async fn backup(&self, minute: u32) -> Vec<DrRun> {
        let run = attempt::run(
            self.cloud(),
            self.store.clone(),
            "web",
            &Trigger::AdHoc,
            at(minute),
            WAIT,
            &Context::default(),
        )
        .await;
        assert!(run.succeeded, "{:?}", run.result.err());
        run.dr
    }

    /// A copy of the first backup's first snapshot made in `account` and
    /// `region` outside the engine, tagged as the engine tags one: what a
    /// process that died before recording its copy leaves behind.
    async fn copy_by_hand(
        &self,
        account: &str,
        region: &str,
    ) -> lifeboat_engine::cloud::CloudResult<String> {
        let b = self.store.lock().unwrap().backups(Some("web")).unwrap()[0].clone();
        let source = &b.snapshots[0];
        let ec2 = self
            .cloud
            .ec2(&self.config.accounts[account], region)
            .await
            .unwrap();
        ec2.copy_snapshot(&SnapshotCopyRequest {
            source_region: source.region.clone(),
            source_id: source.id.clone(),
            description: String::new(),
            tags: dr::names::copy_tags("web", &b.id, source, MAIN_ID),
            kms_key_id: None,
            encrypt: false,
        })
        .await
    }

    fn work(&self, per_destination: usize, minute: u32) -> DrWork {
        let mut w = DrWork::new(
            self.cloud(),
            self.store.clone(),
            Limits::new(per_destination),
            at(minute),
        );
        w.interval = std::time::Duration::from_millis(2);
        w
    }

    async fn copy(&self, runs: Vec<DrRun>, per_destination: usize) -> Vec<DrRun> {
        dr::copy(&self.work(per_destination, 1), runs)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect()
    }
}

#[tokio::test]
async fn a_cross_account_copy_is_shared_copied_by_the_vault_then_unshared() {
    let b = Bench::applied(2, "cross_account {\n to = account.vault\n }").await;
    let runs = b.backup(0).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].destination.to_string(), "us-east-1:vault");
    let ended = b.copy(runs, 5).await;
    assert_eq!(ended[0].status, DrStatus::Completed, "{:?}", ended[0]);

    let copies = b.store.lock().unwrap().dr_copies(Some("web")).unwrap();
    assert_eq!(copies.len(), 2);
    let w = b.cloud.world.lock().unwrap();
    for c in &copies {
        assert_eq!(c.status, DrStatus::Completed);
        // The copy is the vault's, tagged with where it came from.
        assert_eq!(w.copies.owners[&c.id], "vault");
        let s = &w.snapshots[&c.id];
        assert_eq!(s.tags["lifeboat:dr-source"], c.source_id);
        assert_eq!(s.tags["lifeboat:dr-source-account"], MAIN_ID);
        assert_eq!(s.tags["lifeboat:dr-policy"], "web");
        assert!(
            !s.tags.contains_key("lifeboat:policy"),
            "a copy is never taken for a backup"
        );
    }
    // Shared for the copy, unshared once it completed.
    assert_eq!(w.calls_of("ModifySnapshotAttribute"), 4);
    assert!(w.copies.shares.is_empty(), "{:?}", w.copies.shares);
    assert_eq!(
        w.calls_of("CopySnapshot"),
        2,
        "exactly one copy call per artifact"
    );
}

#[tokio::test]
async fn without_the_share_the_vault_cannot_copy() {
    // The fake, as AWS, refuses a copy of another account's snapshot that
    // is not shared: the share step is what makes the copy possible.
    let b = Bench::applied(1, "cross_account {\n to = account.vault\n }").await;
    b.backup(0).await;
    let err = b.copy_by_hand("vault", "us-east-1").await.unwrap_err();
    assert_eq!(
        err.code.as_deref(),
        Some("InvalidSnapshot.NotFound"),
        "{err}"
    );
}

#[tokio::test]
async fn copies_pending_past_the_dr_timeout_time_out_and_open_an_alert() {
    let b = Bench::applied(2, "regions = [\"us-west-2\"]\n timeout = \"1s\"").await;
    b.cloud.world.lock().unwrap().copies.copy_polls = u32::MAX;
    let runs = b.backup(0).await;
    let mut work = b.work(5, 0);
    work.interval = std::time::Duration::from_millis(50);
    let ended = dr::copy(&work, runs).await;
    let run = ended[0].as_ref().unwrap();
    assert_eq!(run.status, DrStatus::TimedOut, "{run:?}");
    assert!(
        run.detail.contains("2 copies not completed"),
        "{}",
        run.detail
    );
    let s = b.store.lock().unwrap();
    assert!(s
        .dr_copies(Some("web"))
        .unwrap()
        .iter()
        .all(|c| c.status == DrStatus::TimedOut));
    let alerts = s.open_alerts().unwrap();
    assert!(
        alerts.iter().any(|a| a.message.contains("timed out")),
        "{alerts:?}"
    );
}

#[tokio::test]
async fn copies_in_flight_per_destination_never_pass_the_cap() {
    let b = Bench::applied(12, "regions = [\"us-west-2\"]").await;
    b.cloud.world.lock().unwrap().copies.copy_polls = 3;
    let runs = b.backup(0).await;
    let ended = b.copy(runs, 3).await;
    assert_eq!(ended[0].status, DrStatus::Completed, "{:?}", ended[0]);
    let w = b.cloud.world.lock().unwrap();
    let max = w.copies.max_in_flight[&("main".to_string(), "us-west-2".to_string())];
    assert_eq!(max, 3, "the cap is used and never passed");
    assert_eq!(w.calls_of("CopySnapshot"), 12);
}

#[tokio::test]
async fn a_policy_concurrency_below_the_runners_caps_its_copies() {
    let b = Bench::applied(6, "regions = [\"us-west-2\"]\n concurrency = 2").await;
    b.cloud.world.lock().unwrap().copies.copy_polls = 2;
    let runs = b.backup(0).await;
    let ended = b.copy(runs, 5).await;
    assert_eq!(ended[0].status, DrStatus::Completed);
    let w = b.cloud.world.lock().unwrap();
    assert_eq!(
        w.copies.max_in_flight[&("main".to_string(), "us-west-2".to_string())],
        2
    );
}

#[tokio::test]
async fn a_copy_made_before_a_crash_is_adopted_not_made_again() {
    let b = Bench::applied(1, "regions = [\"us-west-2\"]").await;
    let runs = b.backup(0).await;
    // The process died right after the copy call, before recording it:
    // the copy exists in AWS with its tags, the catalog knows nothing.
    let made = b.copy_by_hand("main", "us-west-2").await.unwrap();
    let ended = b.copy(runs, 5).await;
    assert_eq!(ended[0].status, DrStatus::Completed);
    let copies = b.store.lock().unwrap().dr_copies(Some("web")).unwrap();
    assert_eq!(copies.len(), 1);
    assert_eq!(
        copies[0].id, made,
        "the copy found by its tags is the one recorded"
    );
    assert_eq!(
        b.cloud.world.lock().unwrap().calls_of("CopySnapshot"),
        1,
        "never copied twice"
    );
}

#[tokio::test]
async fn every_second_backup_is_copied_and_the_other_is_skipped() {
    let b = Bench::applied(1, "regions = [\"us-west-2\"]\n every = 2").await;
    assert_eq!(b.backup(0).await.len(), 1, "the first backup is copied");
    assert!(b.backup(1).await.is_empty());
    assert_eq!(b.backup(2).await.len(), 1);
    let runs = b.store.lock().unwrap().dr_runs(Some("web")).unwrap();
    let statuses: Vec<DrStatus> = runs.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [DrStatus::Pending, DrStatus::Skipped, DrStatus::Pending]
    );
}

/// An encrypted source volume: its snapshots are encrypted with `key`.
fn encrypt_sources(b: &Bench, key: &str) {
    let mut w = b.cloud.world.lock().unwrap();
    let ids: Vec<String> = w.snapshots.keys().cloned().collect();
    for id in ids {
        w.copies.encryption.insert(
            id,
            Encryption {
                encrypted: true,
                kms_key_id: Some(key.to_string()),
            },
        );
    }
}

async fn encrypted_copy(detection: &str, dest_alias: bool, tag: Option<&str>) -> (Bench, DrRun) {
    let b = Bench::applied(
        1,
        &format!("regions = [\"us-west-2\"]\n encryption_key_detection = \"{detection}\""),
    )
    .await;
    let source_key = b
        .cloud
        .world
        .lock()
        .unwrap()
        .copies
        .add_key("main", "us-east-1", "alias/app");
    if dest_alias {
        b.cloud
            .world
            .lock()
            .unwrap()
            .copies
            .add_key("main", "us-west-2", "alias/app");
    }
    if let Some(k) = tag {
        let mut w = b.cloud.world.lock().unwrap();
        let i = w.instances.get_mut("i-00000000").unwrap();
        i.tags
            .insert("lifeboat:dr-kms-key:us-west-2".into(), k.into());
    }
    let runs = b.backup(0).await;
    encrypt_sources(&b, &source_key);
    let ended = b.copy(runs, 5).await;
    let run = ended.into_iter().next().unwrap();
    (b, run)
}

fn keys_asked(b: &Bench) -> Vec<Option<String>> {
    b.cloud
        .world
        .lock()
        .unwrap()
        .copies
        .copy_requests
        .iter()
        .map(|r| r.3.clone())
        .collect()
}

#[tokio::test]
async fn an_encrypted_copy_uses_the_destination_key_with_the_same_alias() {
    let (b, run) = encrypted_copy("strict", true, None).await;
    assert_eq!(run.status, DrStatus::Completed, "{run:?}");
    assert_eq!(keys_asked(&b), [Some("alias/app".to_string())]);
}

#[tokio::test]
async fn a_key_tag_on_the_source_wins_over_the_alias() {
    let (b, run) = encrypted_copy("strict", true, Some("alias/dr-west")).await;
    // The tagged alias does not exist in the destination: the copy call
    // names it and AWS refuses, which the run reports.
    assert_eq!(run.status, DrStatus::Failed, "{run:?}");
    assert!(run.detail.contains("alias/dr-west"), "{}", run.detail);
    assert_eq!(keys_asked(&b), Vec::<Option<String>>::new());
}

#[tokio::test]
async fn strict_detection_fails_a_copy_without_a_matching_key() {
    let (b, run) = encrypted_copy("strict", false, None).await;
    assert_eq!(run.status, DrStatus::Failed);
    assert!(
        run.detail.contains("no key with the alias alias/app"),
        "{}",
        run.detail
    );
    assert!(keys_asked(&b).is_empty(), "no copy call was made");
}

#[tokio::test]
async fn default_detection_uses_the_default_key_and_default_alert_says_so() {
    let (b, run) = encrypted_copy("default", false, None).await;
    assert_eq!(run.status, DrStatus::Completed, "{run:?}");
    assert_eq!(
        keys_asked(&b),
        [None],
        "EBS copies take the default key when none is named"
    );
    assert!(b.store.lock().unwrap().open_alerts().unwrap().is_empty());

    let (b, run) = encrypted_copy("default_alert", false, None).await;
    assert_eq!(run.status, DrStatus::Completed);
    let alerts = b.store.lock().unwrap().open_alerts().unwrap();
    assert!(
        alerts.iter().any(|a| a.message.contains("default key")),
        "{alerts:?}"
    );
}

#[tokio::test]
async fn keep_original_false_deletes_the_original_once_its_copy_completed() {
    let b = Bench::applied(
        2,
        "cross_account {\n to = account.vault\n keep_original = false\n }",
    )
    .await;
    let runs = b.backup(0).await;
    let originals: Vec<String> = b.store.lock().unwrap().backups(Some("web")).unwrap()[0]
        .snapshots
        .iter()
        .map(|s| s.id.clone())
        .collect();
    let ended = b.copy(runs, 5).await;
    assert_eq!(ended[0].status, DrStatus::Completed, "{:?}", ended[0]);
    let w = b.cloud.world.lock().unwrap();
    for id in &originals {
        assert!(!w.snapshots.contains_key(id), "original {id} is deleted");
    }
    let copies = b.store.lock().unwrap().dr_copies(Some("web")).unwrap();
    assert_eq!(copies.len(), 2);
    for c in &copies {
        assert!(w.snapshots.contains_key(&c.id), "the copy {} stays", c.id);
    }
    assert!(b
        .store
        .lock()
        .unwrap()
        .backups(Some("web"))
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn keep_original_false_keeps_the_original_when_a_copy_failed() {
    let b = Bench::applied(
        2,
        "cross_account {\n to = account.vault\n keep_original = false\n }",
    )
    .await;
    let runs = b.backup(0).await;
    b.cloud.world.lock().unwrap().failing.insert(
        "CopySnapshot".into(),
        lifeboat_engine::cloud::ErrorKind::Other,
    );
    let ended = b.copy(runs, 5).await;
    assert_eq!(ended[0].status, DrStatus::Failed);
    let backups = b.store.lock().unwrap().backups(Some("web")).unwrap();
    assert_eq!(backups.len(), 1);
    let w = b.cloud.world.lock().unwrap();
    assert!(backups[0]
        .snapshots
        .iter()
        .all(|s| w.snapshots.contains_key(&s.id)));
    assert!(
        w.copies.shares.is_empty(),
        "the share is undone after a failed copy"
    );
}

#[tokio::test]
async fn a_departed_targets_last_copy_stays_when_newer_generations_lack_it() {
    let mut b = Bench::applied(2, "regions = [\"us-west-2\"]\n generations = 1").await;
    let first = b.backup(0).await;
    assert_eq!(b.copy(first, 5).await[0].status, DrStatus::Completed);
    // Target i-00000001 leaves the policy; the next generation lacks it.
    b.config = config(1, "regions = [\"us-west-2\"]\n generations = 1");
    let report = b.apply(&b.plan(at(1)).await, at(1)).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    let second = b.backup(2).await;
    assert_eq!(b.copy(second, 5).await[0].status, DrStatus::Completed);

    let copies = b.store.lock().unwrap().dr_copies(Some("web")).unwrap();
    let left: Vec<(&str, &str)> = copies
        .iter()
        .map(|c| (c.backup_id.as_str(), c.target.as_str()))
        .collect();
    assert_eq!(
        left,
        [
            ("2026-11-22T10:00:00Z", "i-00000001"),
            ("2026-11-22T10:02:00Z", "i-00000000")
        ],
        "the old copy of the target still kept goes; the departed target's only copy stays"
    );
}

#[tokio::test]
async fn a_run_that_copied_only_some_targets_is_not_a_generation() {
    let b = Bench::applied(2, "regions = [\"us-west-2\"]\n generations = 1").await;
    let first = b.backup(0).await;
    assert_eq!(b.copy(first, 5).await[0].status, DrStatus::Completed);
    let second = b.backup(1).await;
    // The second backup's copy of i-00000001 fails; i-00000000's completes.
    let failing = b.store.lock().unwrap().backups(Some("web")).unwrap()[1]
        .snapshots
        .iter()
        .find(|s| s.target == "i-00000001")
        .unwrap()
        .id
        .clone();
    b.cloud
        .world
        .lock()
        .unwrap()
        .copies
        .failing_sources
        .insert(failing);
    assert_eq!(b.copy(second, 5).await[0].status, DrStatus::Failed);
    // Retention of copies as a later run or plan would apply it.
    let policies = std::collections::BTreeSet::from(["web".to_string()]);
    dr::retain_copies(&b.work(5, 3), &policies).await.unwrap();
    let copies = b.store.lock().unwrap().dr_copies(Some("web")).unwrap();
    let first_copies = copies
        .iter()
        .filter(|c| c.backup_id == "2026-11-22T10:00:00Z")
        .count();
    assert_eq!(
        first_copies, 2,
        "the last whole generation stays: {copies:?}"
    );
}

/// Drives `runs` within a minute of real time: a run that waits forever
/// for room fails the test instead of hanging it.
async fn copy_within(b: &Bench, runs: Vec<DrRun>, per_destination: usize) -> Vec<DrRun> {
    tokio::time::timeout(
        std::time::Duration::from_secs(60),
        b.copy(runs, per_destination),
    )
    .await
    .expect("the DR runs end")
}

#[tokio::test]
async fn a_resumed_run_with_more_copies_in_flight_than_the_cap_finishes() {
    let b = Bench::applied(3, "regions = [\"us-west-2\"]").await;
    b.cloud.world.lock().unwrap().copies.copy_polls = 2;
    let runs = b.backup(0).await;
    // `backup --no-wait-dr` with room for three: three copies in flight.
    let mut work = b.work(5, 0);
    work.wait = false;
    let left = dr::copy(&work, runs).await;
    assert_eq!(left[0].as_ref().unwrap().status, DrStatus::InProgress);
    // A runner with room for one takes the run up.
    let ended = copy_within(&b, dr::open_runs(&b.store).unwrap(), 1).await;
    assert_eq!(ended[0].status, DrStatus::Completed, "{:?}", ended[0]);
    assert_eq!(b.cloud.world.lock().unwrap().calls_of("CopySnapshot"), 3);
}

#[tokio::test]
async fn runs_queued_for_one_place_of_room_take_turns_and_all_finish() {
    let b = Bench::applied(2, "regions = [\"us-west-2\"]").await;
    b.cloud.world.lock().unwrap().copies.copy_polls = 2;
    let mut runs = b.backup(0).await;
    runs.extend(b.backup(1).await);
    runs.extend(b.backup(2).await);
    let ended = copy_within(&b, runs, 1).await;
    assert!(
        ended.iter().all(|r| r.status == DrStatus::Completed),
        "{ended:?}"
    );
    let w = b.cloud.world.lock().unwrap();
    assert_eq!(
        w.copies.max_in_flight[&("main".to_string(), "us-west-2".to_string())],
        1
    );
    assert_eq!(w.calls_of("CopySnapshot"), 6);
}

#[tokio::test]
async fn a_timed_out_cross_account_run_undoes_its_shares() {
    let b = Bench::applied(
        1,
        "timeout = \"1s\"\n cross_account {\n to = account.vault\n }",
    )
    .await;
    b.cloud.world.lock().unwrap().copies.copy_polls = u32::MAX;
    let runs = b.backup(0).await;
    let mut work = b.work(5, 0);
    work.interval = std::time::Duration::from_millis(50);
    let ended = dr::copy(&work, runs).await;
    assert_eq!(ended[0].as_ref().unwrap().status, DrStatus::TimedOut);
    assert!(b.cloud.world.lock().unwrap().copies.shares.is_empty());
}

#[tokio::test]
async fn two_vault_regions_share_once_and_the_last_run_unshares() {
    let b = Bench::applied(
        1,
        "cross_account {\n to = account.vault\n regions = [\"original\", \"us-west-2\"]\n }",
    )
    .await;
    let runs = b.backup(0).await;
    assert_eq!(runs.len(), 2);
    let ended = b.copy(runs, 5).await;
    assert!(
        ended.iter().all(|r| r.status == DrStatus::Completed),
        "{ended:?}"
    );
    let w = b.cloud.world.lock().unwrap();
    assert!(w.copies.shares.is_empty(), "{:?}", w.copies.shares);
    assert_eq!(w.calls_of("CopySnapshot"), 2);
}

#[tokio::test]
async fn apply_makes_a_backups_missing_copies_once_each() {
    let mut b = Bench::applied(3, "regions = []").await;
    assert!(b.backup(0).await.is_empty(), "no destination yet");
    b.config = config(3, "regions = [\"us-west-2\"]");
    let plan = b.plan(at(1)).await;
    let creates: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| c.action == lifeboat_engine::plan::Action::Create)
        .map(|c| c.address.to_string())
        .filter(|a| a.starts_with("dr_copy."))
        .collect();
    assert_eq!(creates.len(), 3, "{creates:?}");
    let report = b.apply(&plan, at(1)).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    assert_eq!(b.cloud.world.lock().unwrap().calls_of("CopySnapshot"), 3);
    let copies = b.store.lock().unwrap().dr_copies(Some("web")).unwrap();
    assert_eq!(copies.len(), 3);
    assert!(copies.iter().all(|c| c.status == DrStatus::Completed));
    // Converged: nothing more to copy.
    let again = b.plan(at(2)).await;
    assert!(
        !again
            .changes
            .iter()
            .any(|c| c.address.to_string().starts_with("dr_copy.")),
        "{:?}",
        again.changes
    );
}

#[tokio::test]
async fn a_key_tag_naming_another_accounts_key_is_refused_for_the_vault() {
    let b = Bench::applied(1, "cross_account {\n to = account.vault\n }").await;
    let source_key = b
        .cloud
        .world
        .lock()
        .unwrap()
        .copies
        .add_key("main", "us-east-1", "alias/app");
    {
        let mut w = b.cloud.world.lock().unwrap();
        let i = w.instances.get_mut("i-00000000").unwrap();
        i.tags.insert(
            "lifeboat:dr-kms-key".into(),
            format!("arn:aws:kms:us-east-1:{MAIN_ID}:key/attacker"),
        );
    }
    let runs = b.backup(0).await;
    encrypt_sources(&b, &source_key);
    let ended = b.copy(runs, 5).await;
    assert_eq!(ended[0].status, DrStatus::Failed);
    assert!(
        ended[0].detail.contains("takes only a key of that account"),
        "{}",
        ended[0].detail
    );
    assert!(keys_asked(&b).is_empty(), "no copy was made under that key");
}

#[tokio::test]
async fn an_unreachable_vault_leaves_its_copies_alone_and_the_plan_goes_on() {
    let b = Bench::applied(
        1,
        "cross_account {\n to = account.vault\n }\n generations = 1",
    )
    .await;
    let runs = b.backup(0).await;
    assert_eq!(b.copy(runs, 5).await[0].status, DrStatus::Completed);
    b.cloud
        .world
        .lock()
        .unwrap()
        .broken_accounts
        .insert("vault".into());
    let plan = b.plan(at(5)).await;
    assert!(
        !plan
            .changes
            .iter()
            .any(|c| c.address.to_string().starts_with("dr_copy.")),
        "{:?}",
        plan.changes
    );
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("could not be looked at")),
        "{:?}",
        plan.warnings
    );
}

#[tokio::test]
async fn the_daily_summary_names_dr_runs_that_failed() {
    let b = Bench::applied(1, "regions = [\"us-west-2\"]").await;
    b.cloud.world.lock().unwrap().failing.insert(
        "CopySnapshot".into(),
        lifeboat_engine::cloud::ErrorKind::AccessDenied,
    );
    let runs = b.backup(0).await;
    assert_eq!(b.copy(runs, 5).await[0].status, DrStatus::Failed);
    let state = b.store.lock().unwrap().load().unwrap();
    let (_, text) = lifeboat_engine::runmode::notify::summary_message(
        &b.config,
        &state.policies().unwrap(),
        &Default::default(),
        &[],
        &state.dr_runs,
        at(30),
    );
    assert!(
        text.contains("DR copies failed or timed out in the last day (1):\n  policy web backup 2026-11-22T10:00:00Z to us-west-2:main failed: "),
        "{text}"
    );
}

#[tokio::test]
async fn a_vault_that_cannot_be_reached_fails_the_run_at_once() {
    let b = Bench::applied(
        2,
        "timeout = \"1h\"\n cross_account {\n to = account.vault\n }",
    )
    .await;
    let runs = b.backup(0).await;
    b.cloud
        .world
        .lock()
        .unwrap()
        .broken_accounts
        .insert("vault".into());
    let ended = copy_within(&b, runs, 5).await;
    assert_eq!(ended[0].status, DrStatus::Failed);
    assert!(
        ended[0].detail.contains("failed in account vault"),
        "{}",
        ended[0].detail
    );
    assert!(
        ended[0].detail.len() < 1000,
        "said once: {}",
        ended[0].detail
    );
}

#[tokio::test]
async fn a_run_whose_destination_was_removed_fails_and_keeps_the_originals() {
    let mut b = Bench::applied(
        1,
        "cross_account {\n to = account.vault\n keep_original = false\n }",
    )
    .await;
    let runs = b.backup(0).await;
    // The runner was down; the vault region changes before it resumes.
    b.config = config(
        1,
        "cross_account {\n to = account.vault\n regions = [\"eu-west-1\"]\n keep_original = false\n }",
    );
    let report = b.apply(&b.plan(at(1)).await, at(1)).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    let ended = b.copy(runs, 5).await;
    assert_eq!(ended[0].status, DrStatus::Failed);
    assert!(
        ended[0].detail.contains("no longer a destination"),
        "{}",
        ended[0].detail
    );
    let backups = b.store.lock().unwrap().backups(Some("web")).unwrap();
    let w = b.cloud.world.lock().unwrap();
    assert!(backups[0]
        .snapshots
        .iter()
        .all(|s| w.snapshots.contains_key(&s.id)));
}

#[tokio::test]
async fn keep_original_false_keeps_a_backup_whose_copy_is_gone() {
    let mut b = Bench::applied(1, "cross_account {\n to = account.vault\n }").await;
    let runs = b.backup(0).await;
    assert_eq!(b.copy(runs, 5).await[0].status, DrStatus::Completed);
    // The vault copy is deleted outside Lifeboat; then keep_original goes
    // false. The plan keeps the original and makes the copy again.
    let copy = b.store.lock().unwrap().dr_copies(Some("web")).unwrap()[0]
        .id
        .clone();
    b.cloud.world.lock().unwrap().snapshots.remove(&copy);
    b.config = config(
        1,
        "cross_account {\n to = account.vault\n keep_original = false\n }",
    );
    let plan = b.plan(at(1)).await;
    assert!(
        !plan
            .changes
            .iter()
            .any(|c| c.address.to_string().starts_with("snapshot[")),
        "no original is deleted on the word of a lost copy: {:?}",
        plan.changes
    );
    let report = b.apply(&plan, at(1)).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    let original = b.store.lock().unwrap().backups(Some("web")).unwrap()[0].snapshots[0]
        .id
        .clone();
    assert!(b
        .cloud
        .world
        .lock()
        .unwrap()
        .snapshots
        .contains_key(&original));
    // With the copy made again, the original goes.
    backup::retain_policy(b.cloud(), b.store.clone(), "web", None, at(2), None)
        .await
        .unwrap();
    assert!(!b
        .cloud
        .world
        .lock()
        .unwrap()
        .snapshots
        .contains_key(&original));
    assert!(b
        .store
        .lock()
        .unwrap()
        .backups(Some("web"))
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn identities_that_cannot_be_had_fail_the_run_after_a_few_tries() {
    let b = Bench::applied(2, "regions = [\"us-west-2\"]").await;
    let runs = b.backup(0).await;
    b.cloud.world.lock().unwrap().failing.insert(
        "GetCallerIdentity".into(),
        lifeboat_engine::cloud::ErrorKind::Transport,
    );
    let ended = copy_within(&b, runs, 5).await;
    assert_eq!(ended[0].status, DrStatus::Failed);
    assert!(
        ended[0].detail.contains("2 copies not started"),
        "{}",
        ended[0].detail
    );
    let w = b.cloud.world.lock().unwrap();
    assert_eq!(w.calls_of("CopySnapshot"), 0);
    assert!(w.calls_of("GetCallerIdentity") >= 3);
}

#[tokio::test]
async fn a_copy_left_in_error_by_a_dead_process_is_made_again_not_adopted() {
    let b = Bench::applied(1, "regions = [\"us-west-2\"]").await;
    let runs = b.backup(0).await;
    // A dead process made a copy that then ended in error, unrecorded.
    let broken = b.copy_by_hand("main", "us-west-2").await.unwrap();
    b.cloud
        .world
        .lock()
        .unwrap()
        .snapshots
        .get_mut(&broken)
        .unwrap()
        .state = lifeboat_engine::cloud::SnapshotState::Error;
    let ended = b.copy(runs, 5).await;
    assert_eq!(ended[0].status, DrStatus::Completed, "{:?}", ended[0]);
    let copies = b.store.lock().unwrap().dr_copies(Some("web")).unwrap();
    assert_eq!(copies.len(), 1);
    assert_ne!(
        copies[0].id, broken,
        "the broken copy is not the one recorded"
    );
}

#[tokio::test]
async fn copies_in_a_vault_removed_from_the_configuration_prove_nothing() {
    let mut b = Bench::applied(1, "cross_account {\n to = account.vault\n }").await;
    let runs = b.backup(0).await;
    assert_eq!(b.copy(runs, 5).await[0].status, DrStatus::Completed);
    // The old vault leaves the configuration; a new one takes its place,
    // with keep_original = false. The old copies are not looked at, so
    // they cannot stand for the originals.
    let text = r#"
account "main" {
  regions = ["us-east-1"]
}

account "vault2" {
  type    = "dr"
  regions = ["us-east-1"]
}

policy "web" {
  account     = account.main
  generations = 2

  instance "i-00000000" {
    region = "us-east-1"
  }
  dr {
    cross_account {
      to            = account.vault2
      keep_original = false
    }
  }
}
"#;
    b.config = lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text.to_string())])
        .unwrap_or_else(|d| panic!("{d}"))
        .config;
    let plan = b.plan(at(1)).await;
    assert!(
        !plan
            .changes
            .iter()
            .any(|c| c.action == lifeboat_engine::plan::Action::Delete
                && c.address.to_string().starts_with("snapshot[")),
        "{:?}",
        plan.changes
    );
    // And the old vault stays in state while its copies are recorded.
    assert!(
        !plan
            .changes
            .iter()
            .any(|c| c.address.to_string() == "account.vault"),
        "{:?}",
        plan.changes
    );
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("account vault is no longer configured")),
        "{:?}",
        plan.warnings
    );
}
