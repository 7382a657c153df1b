//! Membership of volumes and databases taken in by `select` blocks with
//! `kinds`, and of `tag_prefix` selectors: who joins, who leaves, and what
//! is not proof enough to take a database out.

use lifeboat_schema::ResourceKind;

use super::*;
use crate::cloud::{Database, DbSnapshotKind, Instance, InstanceState, Volume};
use crate::plan::observe::{db_key, db_list_key};

const REGION: &str = "us-east-1";

fn team(kinds: &[ResourceKind]) -> TagSelector {
    TagSelector {
        kinds: kinds.to_vec(),
        ..TagSelector::tag("team", Some("web"))
    }
}

fn policy(sels: Vec<TagSelector>) -> PolicyState {
    PolicyState {
        name: "web".into(),
        account: "main".into(),
        generations: 2,
        enabled: true,
        description: None,
        selectors: sels,
        excludes: vec![],
        auto_remove_targets: AutoRemove::Yes,
        schedules: vec![],
        options: Default::default(),
        dr: None,
        template: false,
        from_template: None,
    }
}

fn kv(pairs: &[(&str, &str)]) -> crate::cloud::Tags {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn db(kind: DbSnapshotKind, id: &str, status: &str, tags: &[(&str, &str)]) -> Database {
    Database {
        id: id.into(),
        kind,
        region: REGION.into(),
        status: status.into(),
        tags: kv(tags),
        cluster: None,
    }
}

/// An observation with these databases, their kinds listed whole.
fn with_dbs(dbs: Vec<Database>) -> Observation {
    let mut obs = Observation::default();
    for kind in [TargetKind::Rds, TargetKind::Aurora] {
        obs.databases_listed
            .insert(db_list_key("main", kind, REGION));
    }
    for d in dbs {
        let kind = match d.kind {
            DbSnapshotKind::Instance => TargetKind::Rds,
            DbSnapshotKind::Cluster => TargetKind::Aurora,
        };
        obs.databases.insert(db_key("main", kind, REGION, &d.id), d);
    }
    obs
}

fn target(kind: TargetKind, id: &str, sel: &TagSelector) -> TargetState {
    TargetState {
        kind,
        id: id.into(),
        account: "main".into(),
        region: REGION.into(),
        source: Source::Tag(sel.clone()),
        volumes: Default::default(),
        exclude_volumes: vec![],
        mode: Default::default(),
        ami_rotation: None,
    }
}

fn regions() -> BTreeSet<String> {
    BTreeSet::from([REGION.to_string()])
}

fn at() -> DateTime<Utc> {
    "2026-11-22T10:00:00Z".parse().unwrap()
}

fn changes(r: &Resolved) -> Vec<String> {
    r.changes.iter().map(|c| c.to_string()).collect()
}

#[test]
fn each_kind_joins_only_through_a_selector_that_takes_it_in() {
    use DbSnapshotKind::*;
    let mut obs = with_dbs(vec![
        db(Instance, "orders", "available", &[("team", "web")]),
        db(Instance, "gone", "deleting", &[("team", "web")]),
        db(Cluster, "analytics", "available", &[("team", "web")]),
    ]);
    obs.instances.insert(
        "i-1".into(),
        crate::cloud::Instance {
            id: "i-1".into(),
            region: REGION.into(),
            state: InstanceState::Running,
            tags: kv(&[("team", "web")]),
            volumes: vec![],
        },
    );
    for (id, state) in [("vol-1", "in-use"), ("vol-2", "deleting")] {
        obs.volumes.insert(
            id.into(),
            Volume {
                id: id.into(),
                region: REGION.into(),
                state: state.into(),
                tags: kv(&[("team", "web")]),
            },
        );
    }
    let sels = [team(&[ResourceKind::Volume, ResourceKind::Rds])];
    let found = tagged("main", &sels, &[], &regions(), &obs, |_| false);
    let got: Vec<(TargetKind, &str)> = found.iter().map(|t| (t.kind, t.id.as_str())).collect();
    // Not the instance nor the cluster (kinds), nor what is being deleted.
    assert_eq!(
        got,
        [(TargetKind::Rds, "orders"), (TargetKind::Volume, "vol-1")]
    );
    let sels = [team(&[ResourceKind::Aurora, ResourceKind::Instance])];
    let found = tagged("main", &sels, &[], &regions(), &obs, |_| false);
    let got: Vec<(TargetKind, &str)> = found.iter().map(|t| (t.kind, t.id.as_str())).collect();
    assert_eq!(
        got,
        [
            (TargetKind::Aurora, "analytics"),
            (TargetKind::Instance, "i-1")
        ]
    );
}

#[test]
fn a_tagged_database_leaves_when_untagged_or_deleting_but_not_when_merely_unseen() {
    use DbSnapshotKind::*;
    let sel = team(&[ResourceKind::Rds]);
    let pol = policy(vec![sel.clone()]);
    let current = vec![
        target(TargetKind::Rds, "a-untagged", &sel),
        target(TargetKind::Rds, "b-deleting", &sel),
        target(TargetKind::Rds, "c-absent", &sel),
        target(TargetKind::Rds, "d-stays", &sel),
        target(TargetKind::Rds, "e-stays", &sel),
    ];
    let obs = with_dbs(vec![
        db(Instance, "a-untagged", "available", &[("team", "data")]),
        db(Instance, "b-deleting", "deleting", &[("team", "web")]),
        db(Instance, "d-stays", "stopped", &[("team", "web")]),
        db(Instance, "e-stays", "available", &[("team", "web")]),
    ]);
    let r = resolve(&pol, &current, &regions(), &obs, at());
    assert_eq!(
        changes(&r),
        [
            "left: rds a-untagged (no longer matches tag team=web (rds))",
            "left: rds b-deleting (target database deleted)",
        ]
    );
    let ids: Vec<&str> = r.members.iter().map(|t| t.id.as_str()).collect();
    // Absent from a whole listing: kept by a backup; a plan shows it gone.
    assert_eq!(ids, ["c-absent", "d-stays", "e-stays"]);
    assert_eq!(
        gone_reason(&current[2], &obs).as_deref(),
        Some("target database no longer exists")
    );
    assert_eq!(gone_for_sure(&current[2], &obs), None);
}

#[test]
fn a_database_not_listed_is_neither_gone_nor_leaving() {
    let sel = team(&[ResourceKind::Aurora]);
    let t = target(TargetKind::Aurora, "analytics", &sel);
    let obs = Observation::default();
    assert_eq!(gone_reason(&t, &obs), None);
    let r = resolve(&policy(vec![sel]), &[t], &regions(), &obs, at());
    assert!(r.changes.is_empty(), "{r:?}");
    assert_eq!(r.members.len(), 1);
}

#[test]
fn a_prefix_selector_takes_in_instances_by_any_key_with_the_prefix() {
    let sel = TagSelector {
        prefix: true,
        ..TagSelector::tag("backup:", Some("daily"))
    };
    let mut obs = Observation::default();
    for (id, tags) in [
        ("i-1", kv(&[("backup:web", "daily")])),
        ("i-2", kv(&[("backup", "daily")])),
        (
            "i-3",
            kv(&[("backup:web", "weekly"), ("backup:db", "daily")]),
        ),
    ] {
        obs.instances.insert(
            id.into(),
            Instance {
                id: id.into(),
                region: REGION.into(),
                state: InstanceState::Running,
                tags,
                volumes: vec![],
            },
        );
    }
    let r = resolve(&policy(vec![sel]), &[], &regions(), &obs, at());
    assert_eq!(
        changes(&r),
        [
            "joined: instance i-1 (tag backup:*=daily)",
            "joined: instance i-3 (tag backup:*=daily)",
        ]
    );
}
