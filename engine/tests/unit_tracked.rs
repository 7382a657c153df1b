//! Unit tests over the in-memory fake of the rule that every artifact whose
//! create call went through is in the catalog: when the call's answer is
//! lost (a transport error after AWS made the resource) and when the SDK's
//! retry of such a call is told the name is taken. The emulator always
//! answers and never reports a duplicate AMI name, so only the fake can
//! lose an answer or replay a retry. Also `import` over every kind, DB and
//! cluster snapshots included, with hand-tagged look-alikes left out (the
//! emulator test of `import` covers EBS snapshots and AMIs).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use lifeboat_engine::backup::{self, TAG_POLICY};
use lifeboat_engine::cloud::{Cloud, Image, ImageState};
use lifeboat_engine::plan::apply::{self, Executor};
use lifeboat_engine::plan::{observe, planner};
use lifeboat_engine::state::{BackupStatus, SharedStore, Store};
use lifeboat_engine::testing::fake::FakeCloud;
use lifeboat_schema::Config;

const WAIT: backup::Wait = backup::Wait {
    timeout: std::time::Duration::from_secs(60),
    interval: std::time::Duration::from_millis(1),
};

const CONFIG: &str = r#"
account "main" {
  regions = ["us-east-1"]
}

policy "db" {
  account     = account.main
  generations = 3

  instance "i-0000000a" {
    region = "us-east-1"
    mode   = "ami"
  }
  instance "i-0000000c" {
    region = "us-east-1"
  }
  rds "orders-db" {
    region = "us-east-1"
  }
  aurora "orders-cluster" {
    region = "us-east-1"
  }
}
"#;

const CREATES: [&str; 4] = [
    "CreateImage",
    "CreateSnapshots",
    "CreateDBSnapshot",
    "CreateDBClusterSnapshot",
];

fn now() -> DateTime<Utc> {
    "2026-11-02T10:00:00Z".parse().unwrap()
}

struct Bench {
    cloud: FakeCloud,
    store: SharedStore,
    config: Config,
    _dir: tempfile::TempDir,
}

impl Bench {
    async fn new() -> Bench {
        let cloud = FakeCloud::new(2);
        {
            let mut w = cloud.world.lock().unwrap();
            w.add_instance("i-0000000a", "us-east-1", &[], 2);
            w.add_instance("i-0000000c", "us-east-1", &[], 2);
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Mutex::new(
            Store::open(&dir.path().join("state.db")).unwrap(),
        ));
        let config: Config =
            lifeboat_schema::load_sources(&[("main.lb.hcl".into(), CONFIG.into())])
                .unwrap_or_else(|d| panic!("{d}"))
                .config;
        let b = Bench {
            cloud,
            store,
            config: config.clone(),
            _dir: dir,
        };
        let state = b.store.lock().unwrap().load().unwrap();
        let obs = observe::observe(b.cloud(), &config, &state).await.unwrap();
        let plan = planner::plan(&config, &state, &obs, now()).unwrap();
        let exec = Arc::new(Executor {
            cloud: b.cloud(),
            accounts: planner::known_accounts(&config, &state).unwrap(),
            store: b.store.clone(),
            now: now(),
            lock_id: None,
            stop: Default::default(),
        });
        let report = apply::apply(&plan, exec, 4, |_, _| {}).await;
        assert_eq!(report.failed(), 0, "{report:?}");
        b
    }

    fn cloud(&self) -> Arc<dyn Cloud> {
        Arc::new(self.cloud.clone())
    }

    /// Every id the catalog has.
    fn catalog(&self) -> BTreeSet<String> {
        let s = self.store.lock().unwrap();
        s.backups(None)
            .unwrap()
            .into_iter()
            .flat_map(|b| b.snapshots)
            .map(|s| s.id)
            .collect()
    }

    /// What AWS holds that Lifeboat made: everything tagged with a policy,
    /// and the snapshots of such AMIs (tagged or not).
    fn aws(&self) -> BTreeSet<String> {
        let w = self.cloud.world.lock().unwrap();
        let mut out = BTreeSet::new();
        for (id, s) in &w.snapshots {
            if s.tags.contains_key(TAG_POLICY) {
                out.insert(id.clone());
            }
        }
        for (id, i) in &w.images {
            if i.tags.contains_key(TAG_POLICY) {
                out.insert(id.clone());
                out.extend(i.snapshot_ids.iter().cloned());
            }
        }
        for (id, d) in &w.db_snapshots {
            if d.tags.contains_key(TAG_POLICY) {
                out.insert(id.clone());
            }
        }
        out
    }
}

#[tokio::test]
async fn what_a_create_call_made_is_in_the_catalog_when_its_answer_is_lost() {
    let b = Bench::new().await;
    b.cloud
        .world
        .lock()
        .unwrap()
        .lost_answers
        .extend(CREATES.map(String::from));
    let r = backup::run(b.cloud(), b.store.clone(), "db", now(), WAIT)
        .await
        .unwrap();
    // Every target's answer was lost: the backup did not get them, but
    // what AWS made for it is tracked (and so goes with retention).
    assert_eq!(r.record.status, BackupStatus::Failed, "{:?}", r.record);
    let aws = b.aws();
    assert_eq!(aws.len(), 1 + 2 + 2 + 1 + 1, "{aws:?}");
    assert_eq!(b.catalog(), aws);
}

#[tokio::test]
async fn a_retried_create_adopts_what_its_first_call_made_and_nothing_foreign() {
    let b = Bench::new().await;
    {
        let mut w = b.cloud.world.lock().unwrap();
        w.retried_creates.extend(
            ["CreateImage", "CreateDBSnapshot", "CreateDBClusterSnapshot"].map(String::from),
        );
    }
    let r = backup::run(b.cloud(), b.store.clone(), "db", now(), WAIT)
        .await
        .unwrap();
    assert_eq!(r.record.status, BackupStatus::Success, "{:?}", r.record);
    assert_eq!(b.catalog(), b.aws());
    assert_eq!(b.catalog().len(), 1 + 2 + 2 + 1 + 1);

    // An AMI someone else made under the name the next backup's AMI gets:
    // the Duplicate answer is not taken for this backup's own AMI.
    let next: DateTime<Utc> = "2026-11-03T10:00:00Z".parse().unwrap();
    let foreign = {
        let mut w = b.cloud.world.lock().unwrap();
        w.retried_creates.clear();
        let foreign = Image {
            id: "ami-0f0f0f0f0f0f0f0f0".into(),
            region: "us-east-1".into(),
            state: ImageState::Available,
            snapshot_ids: vec![],
            tags: Default::default(),
            name: "lifeboat-db-i-0000000a-2026-11-03T10-00-00Z".into(),
            description: String::new(),
            created: Some(now()),
        };
        w.images.insert(foreign.id.clone(), foreign.clone());
        foreign.id
    };
    let r = backup::run(b.cloud(), b.store.clone(), "db", next, WAIT)
        .await
        .unwrap();
    assert_eq!(r.record.status, BackupStatus::Partial, "{:?}", r.record);
    assert!(!b.catalog().contains(&foreign));
    assert_eq!(b.catalog(), b.aws());
}

#[tokio::test]
async fn import_rebuilds_every_kind_from_tags_and_leaves_hand_tagged_ones_out() {
    use lifeboat_engine::backup::import;
    use lifeboat_engine::cloud::{DbSnapshotKind, DbSnapshotRequest, ImageRequest};
    let b = Bench::new().await;
    let next: DateTime<Utc> = "2026-11-03T10:00:00Z".parse().unwrap();
    for t in [now(), next] {
        let r = backup::run(b.cloud(), b.store.clone(), "db", t, WAIT)
            .await
            .unwrap();
        assert_eq!(r.record.status, BackupStatus::Success);
    }
    let before = b.store.lock().unwrap().backups(None).unwrap();
    // Hand-made look-alikes: an AMI with Lifeboat's tags but not its
    // description, and a DB snapshot with its tags under another id.
    let acct = b.config.accounts["main"].clone();
    let tags: lifeboat_engine::cloud::Tags = [
        ("lifeboat:policy".to_string(), "db".to_string()),
        (
            "lifeboat:backup-id".to_string(),
            "2026-11-02T10:00:00Z".to_string(),
        ),
        ("lifeboat:target".to_string(), "orders-db".to_string()),
    ]
    .into();
    let ec2 = b.cloud.ec2(&acct, "us-east-1").await.unwrap();
    ec2.create_image(&ImageRequest {
        instance_id: "i-0000000c".into(),
        name: "golden".into(),
        description: "golden image".into(),
        reboot: false,
        tags: tags.clone(),
    })
    .await
    .unwrap();
    let rds = b.cloud.rds(&acct, "us-east-1").await.unwrap();
    rds.create_db_snapshot(&DbSnapshotRequest {
        kind: DbSnapshotKind::Instance,
        source_id: "orders-db".into(),
        snapshot_id: "manual-orders".into(),
        tags,
    })
    .await
    .unwrap();

    // The state is lost: a new, empty one.
    let dir = tempfile::tempdir().unwrap();
    let fresh: SharedStore = Arc::new(Mutex::new(
        Store::open(&dir.path().join("state.db")).unwrap(),
    ));
    let found = import::scan(b.cloud(), &b.config, &fresh).await.unwrap();
    assert_eq!(found.len(), 2);
    import::record_found(&fresh, &found).unwrap();
    let after = fresh.lock().unwrap().backups(None).unwrap();
    type Shape = Vec<(String, BackupStatus, BTreeSet<String>)>;
    let shape = |bs: &[lifeboat_engine::state::BackupRecord]| -> Shape {
        bs.iter()
            .map(|x| {
                (
                    x.id.clone(),
                    x.status,
                    x.snapshots.iter().map(|s| s.id.clone()).collect(),
                )
            })
            .collect()
    };
    assert_eq!(shape(&after), shape(&before));
    assert_eq!(after.len(), 2);
    assert!(after.iter().any(|x| x.started == now()));
    // A second import finds nothing left.
    assert!(import::scan(b.cloud(), &b.config, &fresh)
        .await
        .unwrap()
        .is_empty());
}

/// What import may trust: tags and descriptions anyone with CreateTags and
/// ModifyImageAttribute can write, creation times nobody can. An AMI made
/// before the backup it claims, or a backup id dated ahead to rank newest,
/// is left out; a backup missing a target the policy lists comes back
/// partial, never as a whole generation. The emulator cannot back-date a
/// creation time, so the fake does.
#[tokio::test]
async fn import_trusts_creation_times_not_tags_and_a_backup_missing_a_target_is_partial() {
    use lifeboat_engine::backup::import;
    let b = Bench::new().await;
    let r = backup::run(b.cloud(), b.store.clone(), "db", now(), WAIT)
        .await
        .unwrap();
    assert_eq!(r.record.status, BackupStatus::Success);
    {
        let mut w = b.cloud.world.lock().unwrap();
        let (ami, image) = w
            .images
            .iter()
            .find(|(_, i)| i.tags.contains_key(TAG_POLICY))
            .map(|(k, v)| (k.clone(), v.clone()))
            .unwrap();
        // A copy of it claiming a backup dated years ahead.
        let mut ahead = image.clone();
        ahead.id = "ami-ahead".into();
        ahead
            .tags
            .insert("lifeboat:backup-id".into(), "2099-01-01T00:00:00Z".into());
        w.images.insert(ahead.id.clone(), ahead);
        // And the real one, as if made long before its backup started.
        w.images.get_mut(&ami).unwrap().created = Some("2026-01-01T00:00:00Z".parse().unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let fresh: SharedStore = Arc::new(Mutex::new(
        Store::open(&dir.path().join("state.db")).unwrap(),
    ));
    let found = import::scan(b.cloud(), &b.config, &fresh).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let rec = &found[0].record;
    assert!(rec.snapshots.iter().all(|s| s.id != "ami-ahead"));
    assert!(
        !rec.snapshots
            .iter()
            .any(|s| s.kind == lifeboat_engine::state::ArtifactKind::Image),
        "{rec:?}"
    );
    assert_eq!(rec.status, BackupStatus::Partial, "{rec:?}");
    assert!(
        rec.problems.iter().any(|p| p.starts_with("i-0000000a:")),
        "{:?}",
        rec.problems
    );
}
