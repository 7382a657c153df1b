//! Unit tests of recovery scenarios and drills over the in-memory fake:
//! steps restored in `after` order, a drill that tears down exactly what it
//! created and leaves the originals as they were (also when a step fails
//! midway), a drill of a dead process torn down by the next, and the
//! agenda's drill slots. The fake fills what the emulator cannot do here:
//! a failure injected into one call (RunInstances) in the middle of a
//! scenario, and a drill row whose process is gone.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use lifeboat_engine::backup;
use lifeboat_engine::cloud::network::{RegionInventory, SecurityGroup, Subnet, Vpc};
use lifeboat_engine::cloud::restore::{DbShape, Disk, InstanceShape};
use lifeboat_engine::cloud::{Cloud, DbSnapshotKind, ErrorKind, InstanceState};
use lifeboat_engine::plan::apply::{self, Executor};
use lifeboat_engine::plan::{observe, planner};
use lifeboat_engine::recovery::drill::{self, Driller};
use lifeboat_engine::recovery::recover::Recoverer;
use lifeboat_engine::recovery::scenario;
use lifeboat_engine::restore::Which;
use lifeboat_engine::runmode::agenda::{drill_key, Agenda};
use lifeboat_engine::state::holder::HolderId;
use lifeboat_engine::state::{DrillRecord, DrillStatus, SharedStore, Store};
use lifeboat_engine::testing::fake::FakeCloud;
use lifeboat_schema::Config;

const WAIT: backup::Wait = backup::Wait {
    timeout: std::time::Duration::from_secs(60),
    interval: std::time::Duration::from_millis(1),
};

const REGION: &str = "us-east-1";

fn config(scenario: &str) -> Config {
    config_with(&["i-0000000a"], scenario)
}

/// The configuration backing up instances `ids` and the database.
fn config_with(ids: &[&str], scenario: &str) -> Config {
    let instances: String = ids
        .iter()
        .map(|i| format!("  instance \"{i}\" {{\n    region = \"us-east-1\"\n  }}\n"))
        .collect();
    let text = format!(
        r#"
account "main" {{
  regions = ["us-east-1"]
}}

policy "prod" {{
  account     = account.main
  generations = 3
{instances}  rds "orders" {{
    region = "us-east-1"
  }}
}}

{scenario}
"#
    );
    lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text)])
        .unwrap_or_else(|d| panic!("{d}"))
        .config
}

const SCENARIO: &str = r#"
recovery_scenario "prod" {
  step "app" {
    instances     = ["i-0000000a"]
    after         = ["db"]
    instance_type = "t3.small"
  }
  step "db" {
    rds   = "orders"
    class = "db.t3.small"
  }
  check {
    script = "check.sh"
  }
  drill {
    every    = "7d"
    keep_for = "2h"
  }
}
"#;

fn disk(id: &str, device: &str) -> Disk {
    Disk {
        volume_id: id.into(),
        device: device.into(),
        availability_zone: "us-east-1a".into(),
        size_gib: 8,
        volume_type: "gp3".into(),
        delete_on_termination: device == "/dev/xvda",
        ..Disk::default()
    }
}

fn instance_shape() -> InstanceShape {
    InstanceShape {
        instance_type: "t3.large".into(),
        architecture: "x86_64".into(),
        root_device: "/dev/xvda".into(),
        availability_zone: "us-east-1a".into(),
        tags: [("Name".to_string(), "web".to_string())].into(),
        subnet_id: Some("subnet-0000000a".into()),
        vpc_id: Some("vpc-0000000a".into()),
        security_groups: vec!["sg-0000000a".into()],
        // The data volume outlives its instance: a teardown must delete it.
        disks: vec![
            disk("vol-000000a0", "/dev/xvda"),
            disk("vol-000000a1", "/dev/xvdb"),
        ],
        ..InstanceShape::default()
    }
}

fn db_shape() -> DbShape {
    DbShape {
        identifier: "orders".into(),
        kind: Some(DbSnapshotKind::Instance),
        class: "db.t3.large".into(),
        engine: "postgres".into(),
        ..DbShape::default()
    }
}

/// The original VPC (a subnet, a group) and its clone `copy`, whose
/// subnet and group carry the originals' ids.
fn networks() -> RegionInventory {
    // What the clone's stack made carries its name (AWS's tag).
    let tag = |id: &str| -> lifeboat_engine::cloud::Tags {
        [
            ("lifeboat:original-id".to_string(), id.to_string()),
            (
                "aws:cloudformation:stack-name".to_string(),
                "lifeboat-vpc-clone-copy".to_string(),
            ),
        ]
        .into()
    };
    let vpc = |id: &str, t| Vpc {
        id: id.into(),
        tags: t,
        ..Vpc::default()
    };
    let subnet = |id: &str, vpc: &str, zone: &str, t| Subnet {
        id: id.into(),
        vpc_id: vpc.into(),
        availability_zone: zone.into(),
        tags: t,
        ..Subnet::default()
    };
    let group = |id: &str, vpc: &str, t| SecurityGroup {
        id: id.into(),
        vpc_id: vpc.into(),
        tags: t,
        ..SecurityGroup::default()
    };
    RegionInventory {
        vpcs: vec![
            vpc("vpc-0000000a", Default::default()),
            vpc("vpc-0000000c", tag("vpc-0000000a")),
        ],
        subnets: vec![
            subnet(
                "subnet-0000000a",
                "vpc-0000000a",
                "us-east-1a",
                Default::default(),
            ),
            subnet(
                "subnet-0000000c",
                "vpc-0000000c",
                "us-east-1b",
                tag("subnet-0000000a"),
            ),
        ],
        security_groups: vec![
            group("sg-0000000a", "vpc-0000000a", Default::default()),
            group("sg-0000000c", "vpc-0000000c", tag("sg-0000000a")),
        ],
        ..RegionInventory::default()
    }
}

/// What the originals are: instances, volumes and databases by id, with
/// the state of each.
type Originals = (
    BTreeMap<String, String>,
    BTreeMap<String, String>,
    BTreeMap<String, String>,
);

struct Bench {
    cloud: FakeCloud,
    store: SharedStore,
    config: Config,
    dir: tempfile::TempDir,
}

impl Bench {
    async fn new(check: &str) -> Bench {
        Bench::with(check, &["i-0000000a"], SCENARIO).await
    }

    /// Instances `ids` (the last letter names their volumes: `vol-000000X0`
    /// and `X1`), the database, and `scenario`.
    async fn with(check: &str, ids: &[&str], scenario: &str) -> Bench {
        let cloud = FakeCloud::new(2);
        {
            let mut w = cloud.world.lock().unwrap();
            for id in ids {
                let x = &id[id.len() - 1..];
                let mut shape = instance_shape();
                shape.disks = vec![
                    disk(&format!("vol-000000{x}0"), "/dev/xvda"),
                    disk(&format!("vol-000000{x}1"), "/dev/xvdb"),
                ];
                w.add_shaped_instance(id, REGION, shape);
            }
            w.add_database(REGION, db_shape());
            w.networks.insert(REGION.into(), networks());
        }
        let dir = tempfile::tempdir().unwrap();
        script(dir.path(), "check.sh", check);
        let store = Arc::new(Mutex::new(
            Store::open(&dir.path().join("state.db")).unwrap(),
        ));
        let b = Bench {
            cloud,
            store,
            config: config_with(ids, scenario),
            dir,
        };
        b.apply_and_back_up().await;
        b
    }

    fn cloud(&self) -> Arc<dyn Cloud> {
        Arc::new(self.cloud.clone())
    }

    async fn apply_and_back_up(&self) {
        let now = Utc::now();
        let state = self.store.lock().unwrap().load().unwrap();
        let obs = observe::observe(self.cloud(), &self.config, &state)
            .await
            .unwrap();
        let plan = planner::plan(&self.config, &state, &obs, now).unwrap();
        let exec = Arc::new(Executor {
            cloud: self.cloud(),
            accounts: planner::known_accounts(&self.config, &state).unwrap(),
            store: self.store.clone(),
            now,
            lock_id: None,
            stop: Default::default(),
        });
        let report = apply::apply(&plan, exec, 4, |_, _| {}).await;
        assert_eq!(report.failed(), 0, "{report:?}");
        // The backup records what its targets are (restore points), which
        // the restores read.
        let b = backup::run(self.cloud(), self.store.clone(), "prod", now, WAIT)
            .await
            .unwrap();
        assert!(b.record.problems.is_empty(), "{:?}", b.record.problems);
    }

    fn driller(&self) -> Driller {
        Driller {
            rec: Recoverer {
                cloud: self.cloud(),
                store: self.store.clone(),
                accounts: Arc::new(self.config.accounts.clone()),
                operator: "test@host".into(),
                wait: WAIT,
            },
            config_dir: self.dir.path().to_path_buf(),
        }
    }

    fn originals(&self) -> Originals {
        let w = self.cloud.world.lock().unwrap();
        (
            ["i-0000000a"]
                .iter()
                .map(|i| (i.to_string(), format!("{:?}", w.instances[*i].state)))
                .collect(),
            ["vol-000000a0", "vol-000000a1"]
                .iter()
                .map(|v| (v.to_string(), w.volumes[*v].state.clone()))
                .collect(),
            w.databases
                .iter()
                .filter(|((_, id), _)| id == "orders")
                .map(|((_, id), d)| (id.clone(), d.status.clone()))
                .collect(),
        )
    }

    /// Everything in the world that is not an original: instances not
    /// terminated, volumes, databases.
    fn leftovers(&self) -> Vec<String> {
        let w = self.cloud.world.lock().unwrap();
        let mut out: Vec<String> = w
            .instances
            .values()
            .filter(|i| i.id != "i-0000000a" && i.state != InstanceState::Terminated)
            .map(|i| i.id.clone())
            .collect();
        out.extend(
            w.volumes
                .keys()
                .filter(|v| !v.starts_with("vol-000000a"))
                .cloned(),
        );
        out.extend(
            w.databases
                .keys()
                .filter(|(_, id)| id != "orders")
                .map(|(_, id)| id.clone()),
        );
        out.extend(
            w.images
                .values()
                .filter(|i| i.name.starts_with("lifeboat-restore"))
                .map(|i| i.id.clone()),
        );
        out
    }

    fn call_index(&self, action: &str) -> usize {
        let w = self.cloud.world.lock().unwrap();
        w.calls
            .iter()
            .position(|c| c.split(' ').next() == Some(action))
            .unwrap_or_else(|| panic!("no {action} call"))
    }
}

fn script(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A check that passes when LIFEBOAT_RESTORED names a new instance and a
/// new database, and keeps what it was given.
const CHECK: &str = r#"echo "$LIFEBOAT_SCENARIO $LIFEBOAT_DRILL_ID $LIFEBOAT_RESTORED" > given.txt
echo "$LIFEBOAT_RESTORED" | grep -q '"kind":"instance"' || exit 3
echo "$LIFEBOAT_RESTORED" | grep -q '"kind":"db_instance"' || exit 4
echo checked >&2"#;

#[tokio::test]
async fn a_scenario_restores_its_database_step_before_the_instances_that_wait_for_it() {
    let b = Bench::new(CHECK).await;
    let sc = b.config.recovery_scenario("prod").unwrap();
    let d = b.driller();
    let p = scenario::plan(
        &d.rec.cloud,
        &d.rec.store,
        &d.rec.accounts,
        sc,
        &Which::Latest,
        None,
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(p.waves.len(), 2);
    assert_eq!(p.waves[0][0].step, "db");
    assert_eq!(p.waves[1][0].step, "app");
    let db = &p.waves[0][0].restores[0];
    assert_eq!(
        db.database.as_ref().unwrap().class.as_deref(),
        Some("db.t3.small")
    );
    let app = &p.waves[1][0].restores[0];
    assert_eq!(app.launch.as_ref().unwrap().instance_type, "t3.small");
    let report = d.rec.run(&p).await;
    assert!(report.ok, "{report:?}");
    assert_eq!(
        report
            .steps
            .iter()
            .map(|s| s.step.as_str())
            .collect::<Vec<_>>(),
        vec!["db", "app"]
    );
    assert!(
        b.call_index("RestoreDBInstanceFromDBSnapshot") < b.call_index("RunInstances"),
        "the instances started before the database they wait for"
    );
    assert!(report.rto_seconds().is_some() && report.rpo_seconds().is_some());
    // A recovery is not a drill: nothing is torn down.
    assert_eq!(b.leftovers().len(), 4, "{:?}", b.leftovers());
}

#[tokio::test]
async fn a_drill_tears_down_exactly_what_it_created_and_the_originals_are_unchanged() {
    let b = Bench::new(CHECK).await;
    let before = b.originals();
    let sc = b.config.recovery_scenario("prod").unwrap();
    let o = b
        .driller()
        .drill(sc, &Which::Latest, None, Utc::now())
        .await
        .unwrap();
    assert_eq!(o.record.status, DrillStatus::Passed, "{:?}", o.record);
    assert_eq!(o.record.check_ok, Some(true));
    assert_eq!(o.record.check_output, "checked\n");
    assert!(o.record.torn_down.is_some() && o.record.rto_seconds.is_some());
    let given = std::fs::read_to_string(b.dir.path().join("given.txt")).unwrap();
    assert!(
        given.starts_with(&format!("prod {} [", o.record.id)),
        "{given}"
    );
    assert!(given.contains("\"step\":\"app\""), "{given}");
    assert_eq!(b.originals(), before);
    assert!(b.leftovers().is_empty(), "{:?}", b.leftovers());
    // Every resource the drill's restores list is marked removed; the kept
    // data volume was found by its tag and recorded before it went.
    let st = b.store.lock().unwrap();
    let restores: Vec<_> = st
        .restores()
        .unwrap()
        .into_iter()
        .filter(|r| r.drill.as_deref() == Some(o.record.id.as_str()))
        .collect();
    assert_eq!(restores.len(), 2);
    let resources: Vec<_> = restores.iter().flat_map(|r| &r.resources).collect();
    assert!(
        resources.iter().all(|x| x.removed.is_some()),
        "{resources:?}"
    );
    assert!(resources.len() >= 4, "{resources:?}");
    let drills = st.drills().unwrap();
    assert_eq!(drills.len(), 1);
    assert_eq!(
        (drills[0].id.as_str(), drills[0].status),
        (o.record.id.as_str(), DrillStatus::Passed)
    );
    let w = b.cloud.world.lock().unwrap();
    for action in ["DeleteVolume", "DeleteDBInstance", "TerminateInstances"] {
        assert!(w.calls_of(action) >= 1, "no {action}");
    }
}

#[tokio::test]
async fn a_step_failing_midway_still_tears_down_the_earlier_steps_and_fails_the_drill() {
    let b = Bench::new(CHECK).await;
    let before = b.originals();
    b.cloud
        .world
        .lock()
        .unwrap()
        .failing
        .insert("RunInstances".into(), ErrorKind::Other);
    let sc = b.config.recovery_scenario("prod").unwrap();
    let o = b
        .driller()
        .drill(sc, &Which::Latest, None, Utc::now())
        .await
        .unwrap();
    assert_eq!(o.record.status, DrillStatus::Failed);
    assert!(
        o.record.problem.contains("step \"app\""),
        "{}",
        o.record.problem
    );
    assert_eq!(o.record.check_ok, None, "the check ran after a failed step");
    assert!(!b.dir.path().join("given.txt").exists());
    assert_eq!(b.originals(), before);
    assert!(b.leftovers().is_empty(), "{:?}", b.leftovers());
    let w = b.cloud.world.lock().unwrap();
    assert_eq!(w.calls_of("DeleteDBInstance"), 1);
    assert_eq!(
        w.calls_of("DeregisterImage"),
        1,
        "the registered image stays"
    );
}

#[tokio::test]
async fn a_failing_check_fails_the_drill_after_its_teardown() {
    let b = Bench::new("echo nothing is listening >&2; exit 7").await;
    let sc = b.config.recovery_scenario("prod").unwrap();
    let o = b
        .driller()
        .drill(sc, &Which::Latest, None, Utc::now())
        .await
        .unwrap();
    assert_eq!(o.record.status, DrillStatus::Failed);
    assert_eq!(o.record.check_exit, Some(7));
    assert!(
        o.record.problem.contains("check.sh failed"),
        "{}",
        o.record.problem
    );
    assert!(b.leftovers().is_empty(), "{:?}", b.leftovers());
}

#[tokio::test]
async fn a_drill_whose_process_died_is_torn_down_by_reconcile_and_a_live_one_is_not() {
    let b = Bench::new(CHECK).await;
    let before = b.originals();
    let sc = b.config.recovery_scenario("prod").unwrap();
    let d = b.driller();
    let now = Utc::now();
    // The restores of a drill whose process is still at work...
    let mut rec = DrillRecord::new("d-test-dead", "prod", now);
    b.store
        .lock()
        .unwrap()
        .transaction(|tx| tx.put_drill(&rec))
        .unwrap();
    let p = scenario::plan(
        &d.rec.cloud,
        &d.rec.store,
        &d.rec.accounts,
        sc,
        &Which::Latest,
        Some(&rec.id),
        now,
    )
    .await
    .unwrap();
    assert!(d.rec.run(&p).await.ok);
    assert!(!b.leftovers().is_empty());
    // ... alive: left alone.
    assert!(drill::reconcile(&d).await.unwrap().is_empty());
    assert!(!b.leftovers().is_empty());
    // ... gone (its pid now names a process started at another time).
    let me = HolderId::current();
    rec.holder = HolderId {
        start: me.start.map(|s| s + 1),
        ..me
    };
    b.store
        .lock()
        .unwrap()
        .transaction(|tx| tx.put_drill(&rec))
        .unwrap();
    let done = drill::reconcile(&d).await.unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].record.status, DrillStatus::Failed);
    assert!(
        done[0]
            .record
            .problem
            .contains("stopped before it finished"),
        "{}",
        done[0].record.problem
    );
    assert!(b.leftovers().is_empty(), "{:?}", b.leftovers());
    assert_eq!(b.originals(), before);
    // Nothing is left: a second reconcile does nothing.
    assert!(drill::reconcile(&d).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_kept_drill_is_torn_down_once_its_keep_for_is_over() {
    let b = Bench::new(CHECK).await;
    let sc = b.config.recovery_scenario("prod").unwrap();
    let d = b.driller();
    let now = Utc::now();
    let o = d
        .drill(sc, &Which::Latest, Some(Duration::hours(2)), now)
        .await
        .unwrap();
    assert_eq!(o.record.status, DrillStatus::Kept);
    assert!(!b.leftovers().is_empty());
    assert!(d
        .finish_kept(now + Duration::hours(1))
        .await
        .unwrap()
        .is_empty());
    let done = d.finish_kept(now + Duration::hours(3)).await.unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].record.status, DrillStatus::Passed);
    assert!(b.leftovers().is_empty(), "{:?}", b.leftovers());
}

#[test]
fn the_agenda_says_a_drill_is_due_every_interval_and_when_a_kept_one_ends() {
    let c = config(SCENARIO);
    let t = |s: &str| -> DateTime<Utc> { s.parse().unwrap() };
    let mut a = Agenda {
        config: &c,
        policies: BTreeMap::new(),
        last: BTreeMap::new(),
        retries: BTreeMap::new(),
        summary_sent: None,
        teardowns: vec![],
    };
    let now = t("2026-12-01T10:00:00Z");
    // Never drilled: due at once.
    assert_eq!(a.drills(now), vec!["prod".to_string()]);
    a.last.insert(drill_key("prod"), now);
    assert!(a.drills(now + Duration::days(6)).is_empty());
    assert_eq!(
        a.next_drill(now + Duration::days(1)),
        Some(now + Duration::days(7))
    );
    assert_eq!(a.drills(now + Duration::days(7)), vec!["prod".to_string()]);
    // A kept drill's teardown comes first.
    a.teardowns.push(now + Duration::hours(2));
    assert_eq!(a.next_drill(now), Some(now + Duration::hours(2)));
    assert_eq!(a.next_due(now), Some(now + Duration::hours(2)));
    // A scenario without a drill block is never drilled by run mode.
    let c = config(&SCENARIO.replace(
        "drill {\n    every    = \"7d\"\n    keep_for = \"2h\"\n  }",
        "",
    ));
    let a = Agenda {
        config: &c,
        policies: BTreeMap::new(),
        last: BTreeMap::new(),
        retries: BTreeMap::new(),
        summary_sent: None,
        teardowns: vec![],
    };
    assert!(a.drills(now).is_empty());
    assert_eq!(a.next_drill(now), None);
}

/// A scenario with `network = vpc_clone.copy`.
const CLONED: &str = r#"
vpc_capture "prod" {
  account = account.main
  regions = ["us-east-1"]
}

vpc_clone "copy" {
  capture   = vpc_capture.prod
  vpc       = "vpc-0000000a"
  to_region = "us-east-1"
}

recovery_scenario "cloned" {
  region  = "us-east-1"
  network = vpc_clone.copy
  step "app" {
    instances = ["i-0000000a"]
  }
}
"#;

#[tokio::test]
async fn a_network_clone_maps_the_instances_subnet_and_groups_or_the_plan_fails() {
    let b = Bench::new(CHECK).await;
    let c = config(CLONED);
    let sc = c.recovery_scenario("cloned").unwrap();
    let d = b.driller();
    let plan = || {
        scenario::plan(
            &d.rec.cloud,
            &d.rec.store,
            &d.rec.accounts,
            sc,
            &Which::Latest,
            None,
            Utc::now(),
        )
    };
    // Not deployed yet: no state for the clone.
    let e = plan().await.unwrap_err().to_string();
    assert!(
        e.contains("vpc_clone.copy") && e.contains("not deployed"),
        "{e}"
    );
    let clone = serde_json::json!({
        "stack_name": "lifeboat-vpc-clone-copy",
        "account": "main",
        "region": "us-east-1",
        "capture": "prod",
        "vpc": "vpc-0000000a",
        "source_region": "us-east-1",
        "version_id": 1,
        "captured_at": "2026-11-01T00:00:00Z",
        "template_hash": "",
        "template": "{}",
        "resource_counts": {},
        "timeout_seconds": 600
    });
    b.store
        .lock()
        .unwrap()
        .transaction(|tx| tx.put_object(&lifeboat_engine::Address::vpc_clone("copy"), &clone))
        .unwrap();
    let p = plan().await.unwrap();
    let launch = p.waves[0][0].restores[0].launch.clone().unwrap();
    assert_eq!(launch.subnet_id.as_deref(), Some("subnet-0000000c"));
    assert_eq!(launch.security_groups, vec!["sg-0000000c".to_string()]);
    // A group with no counterpart in the clone is a plan error, not a guess.
    b.cloud
        .world
        .lock()
        .unwrap()
        .networks
        .get_mut(REGION)
        .unwrap()
        .security_groups
        .pop();
    let e = plan().await.unwrap_err().to_string();
    assert!(
        e.contains("step \"app\"") && e.contains("sg-0000000a has no counterpart"),
        "{e}"
    );
}

#[tokio::test]
async fn a_record_naming_an_original_never_aims_a_teardown_at_it() {
    let b = Bench::new(CHECK).await;
    let sc = b.config.recovery_scenario("prod").unwrap();
    let d = b.driller();
    let o = d.drill(sc, &Which::Latest, None, Utc::now()).await.unwrap();
    assert_eq!(o.record.status, DrillStatus::Passed);
    let terminated = b.cloud.world.lock().unwrap().calls_of("TerminateInstances");
    // A record edited (or written wrongly) to name the original, under a
    // drill whose process is gone.
    let restore = {
        let st = b.store.lock().unwrap();
        st.restores().unwrap()[1].id.clone()
    };
    let mut rec = o.record.clone();
    let me = HolderId::current();
    rec.holder = HolderId {
        start: me.start.map(|s| s + 1),
        ..me
    };
    b.store
        .lock()
        .unwrap()
        .transaction(|tx| {
            tx.put_drill(&rec)?;
            tx.restored(
                &restore,
                lifeboat_engine::state::ResourceKind::Instance,
                "i-0000000a",
                Utc::now(),
            )
        })
        .unwrap();
    let done = drill::reconcile(&d).await.unwrap();
    assert_eq!(done.len(), 1);
    let w = b.cloud.world.lock().unwrap();
    assert_eq!(w.instances["i-0000000a"].state, InstanceState::Running);
    assert_eq!(w.calls_of("TerminateInstances"), terminated);
}

#[tokio::test]
async fn a_tag_alone_never_aims_a_teardown_at_an_original() {
    let b = Bench::new(CHECK).await;
    let sc = b.config.recovery_scenario("prod").unwrap();
    let d = b.driller();
    let o = d.drill(sc, &Which::Latest, None, Utc::now()).await.unwrap();
    let restore = {
        let st = b.store.lock().unwrap();
        st.restores().unwrap()[1].id.clone()
    };
    // Someone with ec2:CreateTags puts the restore's id on the original,
    // then the drill is reconciled again (its process gone).
    b.cloud
        .world
        .lock()
        .unwrap()
        .instances
        .get_mut("i-0000000a")
        .unwrap()
        .tags
        .insert("lifeboat:restore-id".into(), restore.clone());
    let mut rec = o.record.clone();
    let me = HolderId::current();
    rec.holder = HolderId {
        start: me.start.map(|s| s + 1),
        ..me
    };
    rec.status = DrillStatus::Running;
    b.store
        .lock()
        .unwrap()
        .transaction(|tx| tx.put_drill(&rec))
        .unwrap();
    let terminated = b.cloud.world.lock().unwrap().calls_of("TerminateInstances");
    let t = d.teardown(&o.record.id).await.unwrap();
    assert!(
        t.problems
            .iter()
            .any(|p| p.contains("i-0000000a") && p.contains("not recorded")),
        "{:?}",
        t.problems
    );
    let w = b.cloud.world.lock().unwrap();
    assert_eq!(w.instances["i-0000000a"].state, InstanceState::Running);
    assert_eq!(w.calls_of("TerminateInstances"), terminated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unit_run_mode_drills_when_due_keeps_it_for_keep_for_then_tears_it_down() {
    use lifeboat_engine::runmode::clock::Clock;
    use lifeboat_engine::runmode::daemon::{Daemon, Mode, RunEvent};
    use lifeboat_engine::runmode::drills::DrillEvent;
    use std::sync::atomic::AtomicBool;

    let b = Bench::new(CHECK).await;
    let before = b.originals();
    let t0: DateTime<Utc> = "2026-12-10T00:00:00Z".parse().unwrap();
    type Events = Arc<Mutex<Vec<(DateTime<Utc>, String)>>>;
    let events: Events = Default::default();
    let seen = events.clone();
    let daemon = Daemon {
        metrics: Default::default(),
        cloud: b.cloud(),
        store: b.store.clone(),
        config: &b.config,
        config_dir: b.dir.path().to_path_buf(),
        clock: Arc::new(Clock::starting_at(Some(t0))),
        mode: Mode {
            once: false,
            fast_forward: true,
            until: Some(t0 + Duration::hours(3)),
            concurrency: 4,
            dr_concurrency: 5,
            lease_ttl: lifeboat_engine::runmode::daemon::LEASE_TTL,
        },
        wait: WAIT,
        stop: Arc::new(AtomicBool::new(false)),
        on_event: Arc::new(move |at, e| {
            if let RunEvent::Drill(d) = e {
                let what = match d {
                    DrillEvent::Started { scenario } => format!("start {scenario}"),
                    DrillEvent::Finished(r) => format!("drill {}", r.status.as_str()),
                    DrillEvent::TornDown(r) => format!("torn down {}", r.id),
                    DrillEvent::RestoreReaped(r, _) => format!("reaped {}", r.id),
                    DrillEvent::Failed { error, .. } => format!("error {error}"),
                };
                seen.lock().unwrap().push((at, what));
            }
        }),
    };
    daemon.run().await.unwrap();
    let events = events.lock().unwrap().clone();
    let whats: Vec<&str> = events.iter().map(|(_, w)| w.as_str()).collect();
    assert_eq!(
        whats,
        vec!["start prod", "drill kept", "drill passed"],
        "{events:?}"
    );
    // Torn down when keep_for (2h) was over, not before.
    assert!(events[2].0 >= t0 + Duration::hours(2), "{events:?}");
    assert!(b.leftovers().is_empty(), "{:?}", b.leftovers());
    assert_eq!(b.originals(), before);
}

/// The fake fills a hole of the emulator here: its instances pass both
/// status checks the moment they run, never `initializing` or `impaired`.
#[tokio::test]
async fn a_drill_waits_for_its_instances_status_checks_before_the_check() {
    let b = Bench::new(CHECK).await;
    let init = ("initializing".to_string(), "initializing".to_string());
    let ok = ("ok".to_string(), "ok".to_string());
    b.cloud.world.lock().unwrap().launch_health = vec![init.clone(), init, ok];
    let sc = b.config.recovery_scenario("prod").unwrap();
    let o = b
        .driller()
        .drill(sc, &Which::Latest, None, Utc::now())
        .await
        .unwrap();
    assert_eq!(o.record.status, DrillStatus::Passed, "{:?}", o.record);
    assert_eq!(o.record.check_ok, Some(true));
    let w = b.cloud.world.lock().unwrap();
    assert_eq!(
        w.calls_of("DescribeInstanceStatus"),
        3,
        "two looks initializing, the third ok"
    );
}

#[tokio::test]
async fn an_impaired_instance_past_the_wait_fails_the_drill_naming_it_and_its_check() {
    let b = Bench::new(CHECK).await;
    b.cloud.world.lock().unwrap().launch_health = vec![("ok".into(), "impaired".into())];
    let sc = b.config.recovery_scenario("prod").unwrap();
    let mut d = b.driller();
    d.rec.wait.timeout = std::time::Duration::from_millis(300);
    let o = d.drill(sc, &Which::Latest, None, Utc::now()).await.unwrap();
    assert_eq!(o.record.status, DrillStatus::Failed);
    let p = &o.record.problem;
    assert!(p.contains("system status check impaired"), "{p}");
    assert!(
        p.contains("instance i-") && p.contains("account main, us-east-1"),
        "{p}"
    );
    assert!(!p.contains("instance status check"), "{p}");
    assert_eq!(
        o.record.check_ok, None,
        "the check ran on an impaired instance"
    );
    assert!(b.leftovers().is_empty(), "{:?}", b.leftovers());
}

#[tokio::test]
async fn a_recovery_looks_at_its_instances_subnets_and_originals_once_per_region() {
    let ids = ["i-0000000a", "i-0000000b", "i-0000000c"];
    let sc = r#"
recovery_scenario "prod" {
  step "app" {
    instances = ["i-0000000a", "i-0000000b", "i-0000000c"]
  }
}
"#;
    let b = Bench::with(CHECK, &ids, sc).await;
    {
        // Each original still runs, at the address its backup recorded.
        let mut w = b.cloud.world.lock().unwrap();
        for (n, shape) in w.shapes.values_mut().enumerate() {
            shape.private_ip = Some(format!("10.0.0.{}", n + 10));
        }
        w.calls.clear();
    }
    // The backup recorded the addresses taken above only from now on: back
    // up again so that the restore points carry them.
    backup::run(b.cloud(), b.store.clone(), "prod", Utc::now(), WAIT)
        .await
        .unwrap();
    b.cloud.world.lock().unwrap().calls.clear();
    // One page holds every answer: what is counted is calls per id.
    let mut b = b;
    b.cloud.page_size = 100;
    let d = b.driller();
    let sc = b.config.recovery_scenario("prod").unwrap();
    let p = scenario::plan(
        &d.rec.cloud,
        &d.rec.store,
        &d.rec.accounts,
        sc,
        &Which::Latest,
        None,
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(p.restores().count(), 3);
    // The originals run: none of the restores asks for their address.
    for (_, r) in p.restores() {
        assert_eq!(r.launch.as_ref().unwrap().private_ip, None, "{r:?}");
        assert!(r
            .notes
            .iter()
            .any(|n| n.contains("the original still runs")));
    }
    let w = b.cloud.world.lock().unwrap();
    assert_eq!(w.calls_of("DescribeSubnets"), 1, "{:?}", w.calls);
    assert_eq!(w.calls_of("DescribeInstances"), 1, "{:?}", w.calls);
}
