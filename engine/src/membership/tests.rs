//! The membership rule as a table: each row is a policy's targets in state,
//! what AWS has now, and the changes expected.

use super::*;
use crate::cloud::{Instance, InstanceState};

fn sel(tag: &str, value: &str) -> TagSelector {
    TagSelector::tag(tag, Some(value))
}

fn policy(auto_remove: AutoRemove) -> PolicyState {
    PolicyState {
        name: "web".into(),
        account: "main".into(),
        generations: 2,
        enabled: true,
        description: None,
        selectors: vec![sel("team", "web*")],
        excludes: vec![sel("env", "prod")],
        auto_remove_targets: auto_remove,
        schedules: vec![],
        options: Default::default(),
        dr: None,
    }
}

fn target(id: &str, source: Source) -> TargetState {
    TargetState {
        kind: TargetKind::Instance,
        id: id.into(),
        account: "main".into(),
        region: "us-east-1".into(),
        source,
        volumes: Default::default(),
        exclude_volumes: vec![],
        mode: Default::default(),
        ami_rotation: None,
    }
}

fn instance(id: &str, region: &str, state: InstanceState, team: Option<&str>) -> Instance {
    Instance {
        id: id.into(),
        region: region.into(),
        state,
        tags: team
            .map(|t| [("team".to_string(), t.to_string())].into())
            .unwrap_or_default(),
        volumes: vec![],
    }
}

fn tags(id: &str, kv: &[(&str, &str)]) -> Instance {
    Instance {
        tags: kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..instance(id, "us-east-1", InstanceState::Running, None)
    }
}

/// (auto_remove, in state, in AWS, changes expected, members expected)
type Row = (
    AutoRemove,
    Vec<TargetState>,
    Vec<Instance>,
    Vec<&'static str>,
    Vec<&'static str>,
);

/// The table: each row a policy's targets, what AWS has, what changes.
fn rows() -> Vec<Row> {
    use InstanceState::*;
    let tagged = || Source::Tag(sel("team", "web*"));
    vec![
        // A new instance tagged team=web-2 joins; one in another region does not.
        (
            AutoRemove::Yes,
            vec![],
            vec![
                instance("i-1", "us-east-1", Running, Some("web-2")),
                instance("i-2", "eu-west-1", Running, Some("web")),
            ],
            vec!["joined: instance i-1 (tag team=web*)"],
            vec!["i-1"],
        ),
        // Tagged but terminated: never joins.
        (
            AutoRemove::Yes,
            vec![],
            vec![instance("i-1", "us-east-1", ShuttingDown, Some("web"))],
            vec![],
            vec![],
        ),
        // Untagged: leaves, with the selector it no longer matches.
        (
            AutoRemove::No,
            vec![target("i-1", tagged())],
            vec![instance("i-1", "us-east-1", Running, Some("db"))],
            vec!["left: instance i-1 (no longer matches tag team=web*)"],
            vec![],
        ),
        // A listed target is a member whatever its tags.
        (
            AutoRemove::Yes,
            vec![target("i-1", Source::Listed)],
            vec![instance("i-1", "us-east-1", Stopped, None)],
            vec![],
            vec!["i-1"],
        ),
        // Terminated: leaves under yes and alert, stays under no.
        (
            AutoRemove::Yes,
            vec![target("i-1", Source::Listed)],
            vec![instance("i-1", "us-east-1", Terminated, None)],
            vec!["left: instance i-1 (target terminated)"],
            vec![],
        ),
        (
            AutoRemove::Alert,
            vec![target("i-1", tagged()), target("i-2", Source::Listed)],
            vec![
                instance("i-1", "us-east-1", Terminated, Some("web")),
                instance("i-2", "us-east-1", Running, None),
            ],
            vec!["left: instance i-1 (target terminated)"],
            vec!["i-2"],
        ),
        // Absent from the answer is no proof it is gone: kept.
        (
            AutoRemove::Yes,
            vec![target("i-1", tagged()), target("i-2", Source::Listed)],
            vec![],
            vec![],
            vec!["i-1", "i-2"],
        ),
        (
            AutoRemove::No,
            vec![target("i-1", Source::Listed), target("i-2", tagged())],
            vec![instance("i-2", "us-east-1", Terminated, Some("web"))],
            vec![],
            vec!["i-1", "i-2"],
        ),
        // Excluded: never joins, and a member that gets the tag leaves.
        (
            AutoRemove::Yes,
            vec![target("i-1", tagged()), target("i-3", Source::Listed)],
            vec![
                tags("i-1", &[("team", "web"), ("env", "prod")]),
                tags("i-2", &[("team", "web"), ("env", "prod")]),
                tags("i-3", &[("env", "prod")]),
            ],
            vec!["left: instance i-1 (excluded by tag env=prod)"],
            vec!["i-3"],
        ),
        // `no-backup` on the resource wins over a selector and a listing,
        // under every auto_remove_targets; the N2WS keys count too.
        (
            AutoRemove::No,
            vec![target("i-1", Source::Listed), target("i-3", Source::Listed)],
            vec![
                tags("i-1", &[("lifeboat:backup", "web no-backup")]),
                tags("i-2", &[("team", "web"), ("cpm backup", "no-backup")]),
                tags("i-3", &[]),
            ],
            vec!["left: instance i-1 (tag lifeboat:backup=web no-backup)"],
            vec!["i-3"],
        ),
        // In state and still tagged: no change, counted once.
        (
            AutoRemove::Yes,
            vec![target("i-1", Source::Listed)],
            vec![instance("i-1", "us-east-1", Running, Some("web"))],
            vec![],
            vec!["i-1"],
        ),
    ]
}

#[test]
fn membership_changes_follow_tags_and_terminations_as_auto_remove_says() {
    let regions = BTreeSet::from(["us-east-1".to_string()]);
    let at: DateTime<Utc> = "2026-11-22T10:00:00Z".parse().unwrap();
    for (n, (auto_remove, current, aws, changes, members)) in rows().into_iter().enumerate() {
        let obs = Observation {
            instances: aws.into_iter().map(|i| (i.id.clone(), i)).collect(),
            ..Observation::default()
        };
        let r = resolve(&policy(auto_remove), &current, &regions, &obs, at);
        let got: Vec<String> = r.changes.iter().map(|c| c.to_string()).collect();
        assert_eq!(got, changes, "row {n}");
        let ids: Vec<&str> = r.members.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, members, "row {n}");
        let alerts = r.changes.iter().filter(|c| c.alert).count();
        assert_eq!(
            alerts,
            usize::from(auto_remove == AutoRemove::Alert),
            "row {n}"
        );
        assert!(r.held_back.is_empty(), "row {n}");
    }
}

#[test]
fn more_than_half_of_the_targets_leaving_at_once_is_held_back_but_joins_go_on() {
    use InstanceState::*;
    let tagged = || Source::Tag(sel("team", "web*"));
    let current = vec![
        target("i-1", tagged()),
        target("i-2", tagged()),
        target("i-3", Source::Listed),
    ];
    // A tagging tool wiped the team tag of two of three: nobody leaves.
    let obs = Observation {
        instances: [
            instance("i-1", "us-east-1", Running, None),
            instance("i-2", "us-east-1", Running, None),
            instance("i-3", "us-east-1", Running, None),
            instance("i-4", "us-east-1", Running, Some("web")),
        ]
        .into_iter()
        .map(|i| (i.id.clone(), i))
        .collect(),
        ..Observation::default()
    };
    let regions = BTreeSet::from(["us-east-1".to_string()]);
    let at: DateTime<Utc> = "2026-11-22T10:00:00Z".parse().unwrap();
    let r = resolve(&policy(AutoRemove::Yes), &current, &regions, &obs, at);
    assert_eq!(r.held_back.len(), 2, "{r:?}");
    let got: Vec<String> = r.changes.iter().map(|c| c.to_string()).collect();
    assert_eq!(got, ["joined: instance i-4 (tag team=web*)"]);
    let ids: Vec<&str> = r.members.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["i-1", "i-2", "i-3", "i-4"]);
    let note = Refreshed {
        changes: r.changes,
        held_back: r.held_back,
        targets: 3,
    }
    .note()
    .unwrap();
    assert!(
        note.starts_with("membership: 2 of 3 targets would have left"),
        "{note}"
    );
    // One of three may go.
    let mut one = obs.clone();
    one.instances.get_mut("i-2").unwrap().tags = [("team".to_string(), "web".to_string())].into();
    let r = resolve(&policy(AutoRemove::Yes), &current, &regions, &one, at);
    assert!(r.held_back.is_empty());
    assert_eq!(
        r.changes.iter().filter(|c| c.moved == Move::Left).count(),
        1
    );
}
