//! Unit tests over the in-memory fake of what `kinds` costs in AWS calls,
//! which the emulator cannot count: databases are listed only where a
//! selector takes them in, once per (kind, region, page), and a selector
//! that takes only databases makes no EC2 list call.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use lifeboat_engine::cloud::restore::DbShape;
use lifeboat_engine::cloud::{Cloud, DbSnapshotKind};
use lifeboat_engine::plan::{observe, planner};
use lifeboat_engine::state::Store;
use lifeboat_engine::testing::fake::FakeCloud;
use lifeboat_schema::Config;

fn config(select: &str) -> Config {
    let text = format!(
        "account \"main\" {{\n  regions = [\"us-east-1\", \"us-west-2\"]\n}}\n\npolicy \"web\" {{\n  account     = account.main\n  generations = 2\n  select {{\n{select}\n  }}\n}}\n"
    );
    lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text)])
        .unwrap_or_else(|d| panic!("{d}"))
        .config
}

fn at() -> DateTime<Utc> {
    "2026-11-22T09:00:00Z".parse().unwrap()
}

/// An instance and three DB instances tagged team=web, one of them in
/// us-west-2, and an untagged one; two items a page.
fn world() -> FakeCloud {
    let cloud = FakeCloud::new(2);
    let mut w = cloud.world.lock().unwrap();
    w.add_instance("i-0000000a", "us-east-1", &[("team", "web")], 1);
    for (id, region, team) in [
        ("orders", "us-east-1", Some("web")),
        ("billing", "us-east-1", Some("web")),
        ("other", "us-east-1", None),
        ("west", "us-west-2", Some("web")),
    ] {
        w.add_database(
            region,
            DbShape {
                identifier: id.into(),
                kind: Some(DbSnapshotKind::Instance),
                engine: "postgres".into(),
                tags: team
                    .map(|t| [("team".to_string(), t.to_string())].into())
                    .unwrap_or_default(),
                ..DbShape::default()
            },
        );
    }
    drop(w);
    cloud
}

/// The targets a plan adds, and the calls its observation made.
async fn plan(cloud: &FakeCloud, config: &Config) -> (Vec<String>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Mutex::new(
        Store::open(&dir.path().join("state.db")).unwrap(),
    ));
    let state = store.lock().unwrap().load().unwrap();
    cloud.world.lock().unwrap().calls.clear();
    let dyn_cloud: Arc<dyn Cloud> = Arc::new(cloud.clone());
    let obs = observe::observe(dyn_cloud, config, &state).await.unwrap();
    let p = planner::plan(config, &state, &obs, at()).unwrap();
    let targets = p
        .changes
        .iter()
        .map(|c| c.address.to_string())
        .filter(|a| a.contains(".target["))
        .collect();
    let calls = cloud.world.lock().unwrap().calls.clone();
    (targets, calls)
}

fn count(calls: &[String], action: &str) -> usize {
    calls
        .iter()
        .filter(|c| c.split(' ').next() == Some(action))
        .count()
}

#[tokio::test]
async fn unit_an_instance_selector_lists_no_database_and_no_volume() {
    let cloud = world();
    let (targets, calls) = plan(&cloud, &config("    tag = \"team\"")).await;
    assert_eq!(targets, ["policy.web.target[\"i-0000000a\"]"]);
    for action in ["DescribeDBInstances", "DescribeDBClusters"] {
        assert_eq!(count(&calls, action), 0, "{action}: {calls:?}");
    }
    // Volumes are listed only for the backup tag (one filtered list per
    // region), never for an instance selector.
    assert_eq!(count(&calls, "DescribeVolumes"), 2, "{calls:?}");
}

#[tokio::test]
async fn unit_an_rds_selector_lists_db_instances_once_per_region_and_page_and_no_instance() {
    let cloud = world();
    let (targets, calls) = plan(
        &cloud,
        &config("    tag   = \"team\"\n    value = \"web\"\n    kinds = [\"rds\"]"),
    )
    .await;
    assert_eq!(
        targets,
        [
            "policy.web.target[\"billing\"]",
            "policy.web.target[\"orders\"]",
            "policy.web.target[\"west\"]",
        ]
    );
    // us-east-1 holds three: two pages; us-west-2 one page.
    assert_eq!(count(&calls, "DescribeDBInstances"), 3, "{calls:?}");
    assert_eq!(count(&calls, "DescribeDBClusters"), 0, "{calls:?}");
    // Instances are listed only for the backup tag (one filtered list per
    // region), never for a database selector.
    assert_eq!(count(&calls, "DescribeInstances"), 2, "{calls:?}");
}

#[tokio::test]
async fn unit_a_listed_database_seen_opted_out_is_not_a_target_as_a_backup_would_decide() {
    let cloud = world();
    cloud.world.lock().unwrap().add_database(
        "us-east-1",
        DbShape {
            identifier: "legacy".into(),
            kind: Some(DbSnapshotKind::Instance),
            engine: "postgres".into(),
            tags: [("lifeboat:backup".to_string(), "no-backup".to_string())].into(),
            ..DbShape::default()
        },
    );
    let text = "    tag   = \"team\"\n    value = \"web\"\n    kinds = [\"rds\"]\n  }\n  rds \"legacy\" {\n    region = \"us-east-1\"";
    let (targets, _) = plan(&cloud, &config(text)).await;
    assert!(!targets.iter().any(|t| t.contains("legacy")), "{targets:?}");
    // Where no selector lists databases, a listed one is not looked at.
    let text = "    tag = \"team\"\n  }\n  rds \"legacy\" {\n    region = \"us-east-1\"";
    let (targets, _) = plan(&cloud, &config(text)).await;
    assert!(targets.iter().any(|t| t.contains("legacy")), "{targets:?}");
}
