//! Retention holds what a running restore reads. The emulator never leaves
//! a restore in progress (its instances run at once), so a restore that is
//! still reading its backup when retention comes is shown here, over the
//! in-memory fake: the backup stays while the restore runs, and goes after.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use lifeboat_engine::backup;
use lifeboat_engine::cloud::restore::{Disk, InstanceShape};
use lifeboat_engine::cloud::Cloud;
use lifeboat_engine::plan::apply::{self, Executor};
use lifeboat_engine::plan::{observe, planner};
use lifeboat_engine::retention::{decide_copies, AssumeHeld, CopyPolicies};
use lifeboat_engine::state::{
    ArtifactKind, Destination, DrCopyRecord, DrRun, DrStatus, InUse, RestoreRecord, RestoreStatus,
    SharedStore, Store,
};
use lifeboat_engine::testing::fake::FakeCloud;
use lifeboat_schema::Config;

const REGION: &str = "us-east-1";
const I: &str = "i-0000000a";

const WAIT: backup::Wait = backup::Wait {
    timeout: std::time::Duration::from_secs(3600),
    interval: std::time::Duration::from_millis(1),
};

fn at(hour: i64) -> DateTime<Utc> {
    "2026-11-22T10:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::hours(hour)
}

fn config() -> Config {
    let text = format!(
        r#"account "main" {{
  regions = ["{REGION}"]
}}

policy "web" {{
  account     = account.main
  generations = 1
  instance "{I}" {{
    region = "{REGION}"
  }}
}}
"#
    );
    lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text)])
        .unwrap_or_else(|d| panic!("{d}"))
        .config
}

struct Bench {
    cloud: FakeCloud,
    store: SharedStore,
    config: Config,
    _dir: tempfile::TempDir,
}

impl Bench {
    async fn new() -> Bench {
        let cloud = FakeCloud::new(50);
        cloud.world.lock().unwrap().add_shaped_instance(
            I,
            REGION,
            InstanceShape {
                instance_type: "t3.small".into(),
                root_device: "/dev/xvda".into(),
                availability_zone: "us-east-1a".into(),
                disks: vec![Disk {
                    volume_id: "vol-0000000a".into(),
                    device: "/dev/xvda".into(),
                    availability_zone: "us-east-1a".into(),
                    size_gib: 8,
                    volume_type: "gp3".into(),
                    ..Disk::default()
                }],
                ..InstanceShape::default()
            },
        );
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Mutex::new(
            Store::open(&dir.path().join("state.db")).unwrap(),
        ));
        let b = Bench {
            cloud,
            store,
            config: config(),
            _dir: dir,
        };
        let plan = b.plan(at(0)).await;
        assert_eq!(b.apply(&plan).await.failed(), 0);
        b
    }

    fn cloud(&self) -> Arc<dyn Cloud> {
        Arc::new(self.cloud.clone())
    }

    async fn plan(&self, now: DateTime<Utc>) -> lifeboat_engine::plan::Plan {
        let state = self.store.lock().unwrap().load().unwrap();
        let obs = observe::observe(self.cloud(), &self.config, &state)
            .await
            .unwrap();
        planner::plan(&self.config, &state, &obs, now).unwrap()
    }

    async fn apply(&self, plan: &lifeboat_engine::plan::Plan) -> apply::Report {
        let state = self.store.lock().unwrap().load().unwrap();
        let exec = Arc::new(Executor {
            cloud: self.cloud(),
            accounts: planner::known_accounts(&self.config, &state).unwrap(),
            store: self.store.clone(),
            now: plan.created_at,
            lock_id: None,
            stop: Default::default(),
        });
        apply::apply(plan, exec, 4, |_, _| {}).await
    }

    async fn backup(&self, hour: i64) -> String {
        let r = backup::run(self.cloud(), self.store.clone(), "web", at(hour), WAIT)
            .await
            .unwrap();
        r.record.id
    }

    fn backups(&self) -> Vec<String> {
        let st = self.store.lock().unwrap();
        st.backups(None)
            .unwrap()
            .into_iter()
            .map(|b| b.id)
            .collect()
    }

    /// A restore of backup `id` in progress (another process is running it).
    fn restoring(&self, restore: &str, id: &str, status: RestoreStatus) {
        let st = self.store.lock().unwrap();
        let b = st.backups(None).unwrap();
        let b = b.iter().find(|b| b.id == id).unwrap();
        let ids: Vec<String> = b.snapshots.iter().map(|s| s.id.clone()).collect();
        let r = RestoreRecord {
            id: restore.into(),
            kind: "instance".into(),
            target: I.into(),
            policy: "web".into(),
            backup_id: id.into(),
            backup_started: b.started,
            source: "local".into(),
            account: "main".into(),
            region: REGION.into(),
            drill: None,
            operator: "ops@test".into(),
            started: at(1),
            ready: None,
            finished: None,
            status,
            problem: String::new(),
            resources: vec![],
            holder: None,
            holder_since: None,
        };
        drop(st);
        let mut st = self.store.lock().unwrap();
        st.transaction(|tx| match status {
            RestoreStatus::Running => tx.start_restore(&r, &ids).map(|m| assert!(m.is_empty())),
            _ => tx.put_restore(&r),
        })
        .unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn unit_a_backup_being_restored_outlives_its_generations_until_the_restore_ends() {
    let b = Bench::new().await;
    let first = b.backup(0).await;
    b.restoring("r-1", &first, RestoreStatus::Running);
    // One generation is kept: the second backup would expire the first.
    let second = b.backup(2).await;
    assert_eq!(b.backups(), [first.clone(), second.clone()]);
    let plan = b.plan(at(3)).await;
    assert!(
        plan.warnings
            .iter()
            .any(|n| n.contains("being restored (restore r-1)")),
        "the plan says why: {:?}",
        plan.warnings
    );
    b.restoring("r-1", &first, RestoreStatus::Completed);
    let third = b.backup(4).await;
    assert_eq!(b.backups(), [third], "released: both older ones went");
}

#[tokio::test(start_paused = true)]
async fn unit_a_plan_made_before_a_restore_began_does_not_delete_what_it_reads() {
    let b = Bench::new().await;
    let first = b.backup(0).await;
    b.restoring("r-1", &first, RestoreStatus::Running);
    let second = b.backup(2).await;
    b.restoring("r-1", &first, RestoreStatus::Completed);
    let plan = b.plan(at(3)).await;
    assert!(
        plan.changes
            .iter()
            .any(|c| c.address.to_string().contains(&first)),
        "the plan deletes the first backup: {:?}",
        plan.changes
    );
    // Another restore of it begins between the plan and its apply.
    b.restoring("r-2", &first, RestoreStatus::Running);
    let report = b.apply(&plan).await;
    let why = format!("{report:?}");
    assert!(report.failed() > 0, "{why}");
    assert!(why.contains("which restore r-2 is reading"), "{why}");
    assert!(
        why.contains(&format!("in account main ({REGION})")),
        "{why}"
    );
    assert_eq!(b.backups(), [first, second], "nothing of it was deleted");
}

#[test]
fn unit_the_copies_a_restore_reads_are_kept_past_their_generations() {
    let west = Destination {
        account: "main".into(),
        region: "us-west-2".into(),
    };
    let copy = |backup: &str, seq: i64| DrCopyRecord {
        id: format!("snap-copy-{backup}"),
        destination: west.clone(),
        kind: ArtifactKind::Ebs,
        arn: None,
        image: None,
        source_id: format!("snap-{backup}"),
        source_region: REGION.into(),
        source_account: "main".into(),
        target: I.into(),
        policy: "web".into(),
        backup_id: backup.into(),
        backup_seq: seq,
        status: DrStatus::Completed,
        started: at(seq),
        finished: Some(at(seq)),
        expired: None,
        problem: String::new(),
        lock: None,
        lock_problem: String::new(),
    };
    let run = |backup: &str, seq: i64| DrRun {
        policy: "web".into(),
        backup_id: backup.into(),
        backup_seq: seq,
        destination: west.clone(),
        status: DrStatus::Completed,
        started: at(seq),
        updated: at(seq),
        detail: String::new(),
    };
    let mut state = lifeboat_engine::state::Snapshot {
        dr_copies: vec![copy("b1", 1), copy("b2", 2)],
        dr_runs: vec![run("b1", 1), run("b2", 2)],
        ..Default::default()
    };
    let policies = CopyPolicies {
        generations: [("web".to_string(), (1, "main".to_string()))].into(),
        ..Default::default()
    };
    let accounts = config().accounts;
    let d = decide_copies(&state, &policies, &accounts, &AssumeHeld);
    assert_eq!(d.changes.len(), 1, "b1's copy expires: {d:?}");
    state.in_use.push(InUse {
        restore: "r-9".into(),
        policy: "web".into(),
        backup_id: "b1".into(),
        from: Some(west.clone()),
    });
    let d = decide_copies(&state, &policies, &accounts, &AssumeHeld);
    assert!(d.changes.is_empty(), "{d:?}");
    assert!(d.notes[0].contains("being restored (restore r-9)"), "{d:?}");
    // A restore of the local backup does not hold the copies.
    state.in_use[0].from = None;
    let d = decide_copies(&state, &policies, &accounts, &AssumeHeld);
    assert_eq!(d.changes.len(), 1, "{d:?}");
}
