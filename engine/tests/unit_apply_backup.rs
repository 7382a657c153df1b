//! Unit tests of the executor and of on-demand backups over the in-memory
//! fake (`lifeboat_engine::testing::fake`): what the emulator cannot show — paging,
//! injected failures, exact call counts.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use lifeboat_engine::cloud::{Cloud, ErrorKind, InstanceState};
use lifeboat_engine::plan::apply::{self, Executor, Outcome};
use lifeboat_engine::plan::{observe, planner};
use lifeboat_engine::state::{BackupStatus, SharedStore, Store};
use lifeboat_engine::testing::fake::FakeCloud;
use lifeboat_engine::{backup, Address};
use lifeboat_schema::Config;

const WAIT: backup::Wait = backup::Wait {
    timeout: std::time::Duration::from_secs(60),
    interval: std::time::Duration::from_millis(1),
};

const CONFIG: &str = r#"
account "main" {
  regions = ["us-east-1", "us-west-2"]
}

policy "web" {
  account             = account.main
  generations         = 2
  auto_remove_targets = "no"

  instance "i-0000000a" {
    region = "us-east-1"
  }

  select {
    tag   = "team"
    value = "web*"
  }
}
"#;

fn config(text: &str) -> Config {
    lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text.to_string())])
        .unwrap_or_else(|d| panic!("{d}"))
        .config
}

fn at(hour: u32) -> DateTime<Utc> {
    format!("2026-11-22T{hour:02}:00:00Z").parse().unwrap()
}

struct Bench {
    cloud: FakeCloud,
    store: SharedStore,
    config: Config,
    _dir: tempfile::TempDir,
}

impl Bench {
    /// A world with one listed instance, two tagged ones in two regions and
    /// one untagged, and a fake that pages every two items.
    fn new(text: &str) -> Bench {
        let cloud = FakeCloud::new(2);
        {
            let mut w = cloud.world.lock().unwrap();
            w.add_instance("i-0000000a", "us-east-1", &[], 2);
            w.add_instance("i-0000000b", "us-east-1", &[("team", "web")], 3);
            w.add_instance("i-0000000c", "us-west-2", &[("team", "web-2")], 1);
            w.add_instance("i-0000000d", "us-east-1", &[("team", "db")], 1);
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Mutex::new(
            Store::open(&dir.path().join("state.db")).unwrap(),
        ));
        Bench {
            cloud,
            store,
            config: config(text),
            _dir: dir,
        }
    }

    fn cloud(&self) -> Arc<dyn Cloud> {
        Arc::new(self.cloud.clone())
    }

    async fn plan(&self) -> lifeboat_engine::plan::Plan {
        let state = self.store.lock().unwrap().load().unwrap();
        let obs = observe::observe(self.cloud(), &self.config, &state)
            .await
            .unwrap();
        planner::plan(&self.config, &state, &obs, at(9)).unwrap()
    }

    async fn apply(&self) -> apply::Report {
        let plan = self.plan().await;
        let state = self.store.lock().unwrap().load().unwrap();
        let exec = Arc::new(Executor {
            cloud: self.cloud(),
            accounts: planner::known_accounts(&self.config, &state).unwrap(),
            store: self.store.clone(),
            now: at(9),
            lock_id: None,
            stop: Default::default(),
        });
        apply::apply(&plan, exec, 4, |_, _| {}).await
    }
}

#[tokio::test]
async fn unit_apply_makes_targets_from_ids_and_paged_tag_matches_then_plans_nothing() {
    let b = Bench::new(CONFIG);
    let report = b.apply().await;
    assert_eq!(report.failed(), 0);
    let state = b.store.lock().unwrap().load().unwrap();
    let addrs: Vec<String> = state.objects.keys().map(|a| a.to_string()).collect();
    assert_eq!(
        addrs,
        [
            "account.main",
            "policy.web",
            "policy.web.target[\"i-0000000a\"]",
            "policy.web.target[\"i-0000000b\"]",
            "policy.web.target[\"i-0000000c\"]"
        ]
    );
    assert!(
        b.plan().await.is_empty(),
        "a second plan after apply has nothing to do"
    );
}

#[tokio::test]
async fn unit_backup_makes_one_create_call_per_instance_with_tags_and_no_per_target_describe() {
    let b = Bench::new(CONFIG);
    b.apply().await;
    b.cloud.world.lock().unwrap().calls.clear();
    let result = backup::run(b.cloud(), b.store.clone(), "web", at(10), WAIT)
        .await
        .unwrap();
    assert_eq!(result.record.status, BackupStatus::Success);
    assert_eq!(result.record.snapshots.len(), 2 + 3 + 1);
    let w = b.cloud.world.lock().unwrap();
    assert_eq!(
        w.calls_of("CreateSnapshots"),
        3,
        "one multi-volume call per instance"
    );
    assert_eq!(w.calls_of("CreateTags"), 0);
    // No describe per target: the create calls say what is gone. One
    // describe per region is the restore points' (what each instance was);
    // deciding who is in the policy now takes one per region and selector,
    // one for the listed target the selector did not return (whether
    // it still exists, and whether it opted out with `no-backup`), and one
    // per region for the instances carrying a backup tag (with one
    // DescribeVolumes for the volumes carrying one).
    assert_eq!(w.calls_of("DescribeInstances"), 2 + 3 + 2, "{:?}", w.calls);
    assert_eq!(w.calls_of("DescribeVolumes"), 2, "{:?}", w.calls);
    for s in w.snapshots.values() {
        assert_eq!(s.tags["lifeboat:policy"], "web");
        assert_eq!(s.tags["lifeboat:backup-id"], "2026-11-22T10:00:00Z");
        assert!(s.tags["lifeboat:target"].starts_with("i-"));
    }
}

#[tokio::test]
async fn unit_retention_after_backups_keeps_generations_and_spares_frozen_ones() {
    let b = Bench::new(CONFIG);
    b.apply().await;
    for h in [10, 11] {
        backup::run(b.cloud(), b.store.clone(), "web", at(h), WAIT)
            .await
            .unwrap();
    }
    b.store
        .lock()
        .unwrap()
        .transaction(|tx| tx.freeze("web", "2026-11-22T10:00:00Z", "audit", at(12)))
        .unwrap();
    for h in [13, 14, 15] {
        backup::run(b.cloud(), b.store.clone(), "web", at(h), WAIT)
            .await
            .unwrap();
    }
    let ids: Vec<String> = b
        .store
        .lock()
        .unwrap()
        .backups(Some("web"))
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(
        ids,
        [
            "2026-11-22T10:00:00Z",
            "2026-11-22T14:00:00Z",
            "2026-11-22T15:00:00Z"
        ]
    );
    // The snapshots of the expired backups are gone from "AWS" too.
    assert_eq!(b.cloud.world.lock().unwrap().snapshots.len(), 3 * 6);
}

#[tokio::test]
async fn unit_missing_target_with_auto_remove_no_makes_a_partial_backup() {
    let b = Bench::new(CONFIG);
    b.apply().await;
    b.cloud
        .world
        .lock()
        .unwrap()
        .instances
        .get_mut("i-0000000a")
        .unwrap()
        .state = InstanceState::Terminated;
    assert!(
        b.plan().await.is_empty(),
        "with auto_remove_targets = no the target stays"
    );
    let r = backup::run(b.cloud(), b.store.clone(), "web", at(10), WAIT)
        .await
        .unwrap();
    assert_eq!(r.record.status, BackupStatus::Partial);
    assert!(
        r.record.problems.iter().any(|p| p.contains("i-0000000a")),
        "{:?}",
        r.record.problems
    );
    // A partial backup is not a generation: nothing expires after it.
    assert!(r.retention.outcomes.is_empty());
}

#[tokio::test]
async fn unit_a_failed_change_skips_its_dependents_and_the_rest_goes_on() {
    let b = Bench::new(CONFIG);
    b.apply().await;
    for h in [10, 11] {
        backup::run(b.cloud(), b.store.clone(), "web", at(h), WAIT)
            .await
            .unwrap();
    }
    // Remove the policy: its snapshots, backups, targets and itself go, in that order.
    b.cloud
        .world
        .lock()
        .unwrap()
        .failing
        .insert("DeleteSnapshot".into(), ErrorKind::Throttled);
    let without_policy =
        config("account \"main\" {\n  regions = [\"us-east-1\", \"us-west-2\"]\n}\n");
    let b = Bench {
        config: without_policy,
        ..b
    };
    let report = b.apply().await;
    let backup_addr = Address::backup("web", "2026-11-22T10:00:00Z");
    assert!(
        matches!(report.outcomes[&backup_addr], Outcome::Skipped(_)),
        "{:?}",
        report.outcomes[&backup_addr]
    );
    assert!(matches!(
        report.outcomes[&Address::policy("web")],
        Outcome::Skipped(_)
    ));
    assert_eq!(
        report.outcomes[&Address::target("web", "i-0000000b")],
        Outcome::Done
    );
    let failed: Vec<_> = report
        .outcomes
        .values()
        .filter_map(|o| {
            if let Outcome::Failed(e) = o {
                Some(e)
            } else {
                None
            }
        })
        .collect();
    assert!(
        failed
            .iter()
            .all(|e| e.contains("ec2:DeleteSnapshot") && e.contains("account main")),
        "{failed:?}"
    );
    // Nothing of the catalog was lost: every backup is still recorded.
    assert_eq!(
        b.store.lock().unwrap().backups(Some("web")).unwrap().len(),
        2
    );
    // Once AWS recovers, a new plan finishes the job.
    b.cloud.world.lock().unwrap().failing.clear();
    assert_eq!(b.apply().await.failed(), 0);
    assert!(b
        .store
        .lock()
        .unwrap()
        .backups(Some("web"))
        .unwrap()
        .is_empty());
    assert!(b.plan().await.is_empty());
}

#[tokio::test]
async fn unit_backup_waits_for_pending_snapshots_and_a_snapshot_in_error_fails_its_target() {
    let b = Bench::new(CONFIG);
    b.apply().await;
    {
        let mut w = b.cloud.world.lock().unwrap();
        w.pending_describes = 3;
        w.failing_volumes.insert("vol-0000000b-1".into());
        w.calls.clear();
    }
    let r = backup::run(b.cloud(), b.store.clone(), "web", at(10), WAIT)
        .await
        .unwrap();
    assert_eq!(
        r.record.status,
        BackupStatus::Partial,
        "{:?}",
        r.record.problems
    );
    assert_eq!(r.record.problems.len(), 1, "{:?}", r.record.problems);
    assert!(r.record.problems[0].contains("of i-0000000b ended in the error state"));
    let w = b.cloud.world.lock().unwrap();
    // Looks are per region and page, never per snapshot: us-east-1's five
    // snapshots take one look of three pages (the fake counts pending down
    // per call) and a second of one page (only unfinished snapshots are
    // listed, and by then that is the one in error); us-west-2's one takes
    // three looks.
    assert_eq!(w.calls_of("DescribeSnapshots"), 7, "{:?}", w.calls);
}

#[tokio::test]
async fn unit_backup_gives_up_waiting_after_its_timeout_and_keeps_older_generations() {
    let b = Bench::new(CONFIG);
    b.apply().await;
    for h in [10, 11] {
        backup::run(b.cloud(), b.store.clone(), "web", at(h), WAIT)
            .await
            .unwrap();
    }
    b.cloud.world.lock().unwrap().pending_describes = u32::MAX;
    let short = backup::Wait {
        timeout: std::time::Duration::from_millis(30),
        interval: std::time::Duration::from_millis(5),
    };
    let r = backup::run(b.cloud(), b.store.clone(), "web", at(12), short)
        .await
        .unwrap();
    assert_eq!(r.record.status, BackupStatus::Failed);
    assert!(
        r.record
            .problems
            .iter()
            .all(|p| p.contains("still pending")),
        "{:?}",
        r.record.problems
    );
    // Nothing expired on the strength of a backup that never completed.
    assert_eq!(
        b.store.lock().unwrap().backups(Some("web")).unwrap().len(),
        3
    );
}

#[tokio::test]
async fn unit_an_interrupted_apply_starts_nothing_new_and_a_new_plan_picks_up_the_rest() {
    let b = Bench::new(CONFIG);
    let plan = b.plan().await;
    let state = b.store.lock().unwrap().load().unwrap();
    let exec = Arc::new(Executor {
        cloud: b.cloud(),
        accounts: planner::known_accounts(&b.config, &state).unwrap(),
        store: b.store.clone(),
        now: at(9),
        lock_id: None,
        stop: Arc::new(std::sync::atomic::AtomicBool::new(true)),
    });
    let report = apply::apply(&plan, exec, 4, |_, _| {}).await;
    assert_eq!(report.interrupted(), plan.changes.len());
    assert!(b.store.lock().unwrap().load().unwrap().objects.is_empty());
    assert_eq!(b.apply().await.failed(), 0);
    assert!(b.plan().await.is_empty());
}

#[tokio::test]
async fn unit_the_executor_refuses_to_delete_a_snapshot_frozen_after_the_plan_was_made() {
    let b = Bench::new(CONFIG);
    b.apply().await;
    for h in [10, 11] {
        backup::run(b.cloud(), b.store.clone(), "web", at(h), WAIT)
            .await
            .unwrap();
    }
    // A plan that removes the policy, made before the freeze ...
    let b = Bench {
        config: config("account \"main\" {\n  regions = [\"us-east-1\", \"us-west-2\"]\n}\n"),
        ..b
    };
    let plan = b.plan().await;
    // ... and a freeze that lands before it is applied.
    b.store
        .lock()
        .unwrap()
        .transaction(|tx| tx.freeze("web", "2026-11-22T10:00:00Z", "audit", at(12)))
        .unwrap();
    let state = b.store.lock().unwrap().load().unwrap();
    let exec = Arc::new(Executor {
        cloud: b.cloud(),
        accounts: planner::known_accounts(&b.config, &state).unwrap(),
        store: b.store.clone(),
        now: at(12),
        lock_id: None,
        stop: Default::default(),
    });
    let report = apply::apply(&plan, exec, 4, |_, _| {}).await;
    let refused: Vec<&String> = report
        .outcomes
        .values()
        .filter_map(|o| {
            if let Outcome::Failed(e) = o {
                Some(e)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(refused.len(), 6, "{:?}", report.outcomes);
    assert!(
        refused.iter().all(|e| e.contains("frozen backup")),
        "{refused:?}"
    );
    let kept = b.store.lock().unwrap().backups(Some("web")).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        kept[0].snapshots.len(),
        6,
        "every frozen snapshot is still in the catalog"
    );
    assert_eq!(
        b.cloud.world.lock().unwrap().snapshots.len(),
        6,
        "and in AWS"
    );
}

#[tokio::test]
async fn unit_retention_never_deletes_in_an_account_that_forbids_it() {
    let protected = CONFIG.replace(
        "regions = [\"us-east-1\", \"us-west-2\"]",
        "regions      = [\"us-east-1\", \"us-west-2\"]\n  allow_delete = false",
    );
    let b = Bench::new(&protected);
    b.apply().await;
    for h in [10, 11, 12, 13] {
        let r = backup::run(b.cloud(), b.store.clone(), "web", at(h), WAIT)
            .await
            .unwrap();
        assert_eq!(r.retention.failed(), 0);
    }
    assert_eq!(
        b.store.lock().unwrap().backups(Some("web")).unwrap().len(),
        4
    );
    let plan = b.plan().await;
    assert!(plan.changes.is_empty(), "{:?}", plan.changes);
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("allow_delete = false")),
        "{:?}",
        plan.warnings
    );
}

#[tokio::test]
async fn unit_a_backup_left_running_is_closed_with_the_snapshots_aws_has_for_it() {
    use lifeboat_engine::state::{BackupRecord, SnapshotRecord};
    let b = Bench::new(CONFIG);
    b.apply().await;
    // A lifeboat killed after recording one snapshot of a backup whose
    // second snapshot was created but not yet recorded.
    let id = "2026-11-22T09:30:00Z";
    let tags = |t: &str| -> lifeboat_engine::cloud::Tags {
        [
            ("lifeboat:policy".to_string(), "web".to_string()),
            ("lifeboat:backup-id".to_string(), id.to_string()),
            ("lifeboat:target".to_string(), t.to_string()),
        ]
        .into()
    };
    {
        let mut w = b.cloud.world.lock().unwrap();
        for (snap, target) in [
            ("snap-recorded", "i-0000000a"),
            ("snap-unrecorded", "i-0000000b"),
        ] {
            w.snapshots.insert(
                snap.into(),
                lifeboat_engine::cloud::Snapshot {
                    id: snap.into(),
                    volume_id: "vol-x".into(),
                    region: "us-east-1".into(),
                    state: lifeboat_engine::cloud::SnapshotState::Completed,
                    started: Some(at(9) + chrono::Duration::minutes(31)),
                    tags: tags(target),
                },
            );
            // Lifeboat's marker: what reconciliation adopts must carry it.
            w.descriptions.insert(
                snap.into(),
                format!("Lifeboat backup {id} of policy web, target {target}"),
            );
        }
    }
    let running = BackupRecord {
        seq: 0,
        id: id.into(),
        policy: "web".into(),
        account: "main".into(),
        started: at(9),
        finished: None,
        status: BackupStatus::Running,
        frozen: None,
        snapshots: vec![SnapshotRecord {
            id: "snap-recorded".into(),
            volume_id: "vol-x".into(),
            target: "i-0000000a".into(),
            region: "us-east-1".into(),
            kind: Default::default(),
            image: None,
        }],
        problems: vec![],
    };
    b.store
        .lock()
        .unwrap()
        .transaction(|tx| tx.insert_backup(&running))
        .unwrap();

    let closed = backup::reconcile_interrupted(b.cloud(), b.store.clone(), at(10))
        .await
        .unwrap();
    assert_eq!(closed.closed.len(), 1);
    let rec = &b.store.lock().unwrap().backups(Some("web")).unwrap()[0];
    assert_eq!(rec.status, BackupStatus::Failed);
    let mut snaps: Vec<&str> = rec.snapshots.iter().map(|s| s.id.as_str()).collect();
    snaps.sort();
    assert_eq!(snaps, ["snap-recorded", "snap-unrecorded"]);
    assert!(rec.problems[0].contains("1 adopted"), "{:?}", rec.problems);
    // Nothing was created, and a second pass finds nothing left to close.
    assert_eq!(b.cloud.world.lock().unwrap().calls_of("CreateSnapshots"), 0);
    assert!(
        backup::reconcile_interrupted(b.cloud(), b.store.clone(), at(11))
            .await
            .unwrap()
            .closed
            .is_empty()
    );
}

#[tokio::test]
async fn unit_a_snapshot_aws_does_not_list_yet_is_never_taken_for_completed() {
    let b = Bench::new(CONFIG);
    b.apply().await;
    for h in [10, 11] {
        backup::run(b.cloud(), b.store.clone(), "web", at(h), WAIT)
            .await
            .unwrap();
    }
    // New snapshots stay unknown to DescribeSnapshots for a few looks, as
    // in AWS right after the create call (which says `pending`): the
    // backup waits them out.
    {
        let mut w = b.cloud.world.lock().unwrap();
        w.unlisted_describes = 3;
        w.pending_describes = 1;
    }
    let r = backup::run(b.cloud(), b.store.clone(), "web", at(12), WAIT)
        .await
        .unwrap();
    assert_eq!(
        r.record.status,
        BackupStatus::Success,
        "{:?}",
        r.record.problems
    );

    // Never listed within the wait (deleted at once, say): not a generation,
    // and retention keeps the older ones.
    b.cloud.world.lock().unwrap().unlisted_describes = u32::MAX;
    let short = backup::Wait {
        timeout: std::time::Duration::from_millis(30),
        interval: std::time::Duration::from_millis(5),
    };
    let r = backup::run(b.cloud(), b.store.clone(), "web", at(13), short)
        .await
        .unwrap();
    assert_eq!(
        r.record.status,
        BackupStatus::Failed,
        "{:?}",
        r.record.problems
    );
    assert_eq!(r.retention.done(), 0);
    let ok: Vec<String> = b
        .store
        .lock()
        .unwrap()
        .backups(Some("web"))
        .unwrap()
        .into_iter()
        .filter(|x| x.status == BackupStatus::Success)
        .map(|x| x.id)
        .collect();
    // generations = 2: the two valid ones from before the failed backup.
    assert_eq!(ok, ["2026-11-22T11:00:00Z", "2026-11-22T12:00:00Z"]);
}

/// The hole this fills: the emulator's CreateSnapshots ignores
/// `ExcludeDataVolumeIds`, so only the fake can show that a volume tagged
/// `lifeboat:backup=#exclude` gets no snapshot in its instance's backup
/// (`tests/cli_backup_tag.rs` shows the exclusion recorded through the
/// real SDK). Membership is decided by the backup itself, with no apply
/// after the tags.
#[tokio::test]
async fn unit_a_volume_tagged_exclude_gets_no_snapshot_in_its_instance_backup() {
    let b = Bench::new(CONFIG);
    b.apply().await;
    {
        let mut w = b.cloud.world.lock().unwrap();
        w.add_instance("i-0000000e", "us-east-1", &[("lifeboat:backup", "web")], 3);
        for (vol, value) in [
            ("vol-0000000e-1", "#exclude"),
            ("vol-0000000e-2", "db#exclude"),
        ] {
            w.volumes.insert(
                vol.into(),
                lifeboat_engine::cloud::Volume {
                    id: vol.into(),
                    region: "us-east-1".into(),
                    state: "in-use".into(),
                    tags: [("lifeboat:backup".to_string(), value.to_string())].into(),
                },
            );
        }
    }
    let result = backup::run(b.cloud(), b.store.clone(), "web", at(10), WAIT)
        .await
        .unwrap();
    assert_eq!(
        result.record.status,
        BackupStatus::Success,
        "{:?}",
        result.record
    );
    let w = b.cloud.world.lock().unwrap();
    let mut of_e: Vec<&str> = w
        .snapshots
        .values()
        .filter(|s| s.tags["lifeboat:target"] == "i-0000000e")
        .map(|s| s.volume_id.as_str())
        .collect();
    of_e.sort();
    assert_eq!(of_e, ["vol-0000000e-0", "vol-0000000e-2"]);
}
