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
        template: false,
        from_template: None,
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
        // A listed target leaving by its tag always alerts.
        let listed_by_tag = r
            .changes
            .iter()
            .filter(|c| c.reason.starts_with("tag "))
            .filter(|c| {
                current
                    .iter()
                    .any(|t| t.id == c.target && t.source == Source::Listed)
            })
            .count();
        let want = match auto_remove {
            AutoRemove::Alert => r.changes.len().min(1).max(listed_by_tag),
            _ => listed_by_tag,
        };
        assert_eq!(alerts, want, "row {n}");
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
        tag_problems: vec![],
        rewritten: false,
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

fn volume(id: &str, kv: &[(&str, &str)]) -> crate::cloud::Volume {
    crate::cloud::Volume {
        id: id.into(),
        region: "us-east-1".into(),
        state: "in-use".into(),
        tags: kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn with_volumes(mut i: Instance, vols: &[&str]) -> Instance {
    i.volumes = vols
        .iter()
        .enumerate()
        .map(|(n, v)| crate::cloud::AttachedVolume {
            volume_id: v.to_string(),
            device: format!("/dev/sd{}", (b'a' + n as u8) as char),
            is_root: n == 0,
        })
        .collect();
    i
}

fn by_tag(value: &str) -> Source {
    Source::BackupTag {
        key: TAG_BACKUP.into(),
        value: value.into(),
    }
}

/// A precedence case: the policy's targets in state, AWS's instances and
/// volumes, the changes expected, and each member as
/// `id source mode [excluded volumes]`.
struct Case {
    why: &'static str,
    current: Vec<TargetState>,
    instances: Vec<Instance>,
    volumes: Vec<crate::cloud::Volume>,
    changes: Vec<&'static str>,
    members: Vec<&'static str>,
}

fn precedence_cases() -> Vec<Case> {
    let web = || Source::Tag(sel("team", "web*"));
    vec![
        Case {
            why: "the tag alone makes a member, with the policy's defaults",
            current: vec![],
            instances: vec![tags("i-1", &[("lifeboat:backup", "web")])],
            volumes: vec![],
            changes: vec!["joined: instance i-1 (tag lifeboat:backup=web)"],
            members: vec!["i-1 tag lifeboat:backup=web Snapshots []"],
        },
        Case {
            why: "tagged and selected: one member, the tag's source and option",
            current: vec![],
            instances: vec![tags(
                "i-1",
                &[("team", "web"), ("lifeboat:backup", "db web#only-amis")],
            )],
            volumes: vec![],
            changes: vec!["joined: instance i-1 (tag lifeboat:backup=web#only-amis)"],
            members: vec!["i-1 tag lifeboat:backup=web#only-amis Ami []"],
        },
        Case {
            why: "no-backup beats the tag and the selector",
            current: vec![],
            instances: vec![tags(
                "i-1",
                &[("team", "web"), ("lifeboat:backup", "web no-backup")],
            )],
            volumes: vec![],
            changes: vec![],
            members: vec![],
        },
        Case {
            why: "an N2WS key counts; another policy's item does not",
            current: vec![],
            instances: vec![
                tags("i-1", &[("cpm backup", "web#initial-ami")]),
                tags("i-2", &[("cpm_backup", "db")]),
            ],
            volumes: vec![],
            changes: vec!["joined: instance i-1 (tag cpm backup=web#initial-ami)"],
            members: vec!["i-1 tag cpm backup=web#initial-ami InitialAmi []"],
        },
        Case {
            why: "the item removed: a tag member leaves",
            current: vec![target("i-1", by_tag("web")), target("i-2", Source::Listed)],
            instances: vec![tags("i-1", &[("lifeboat:backup", "db")]), tags("i-2", &[])],
            volumes: vec![],
            changes: vec!["left: instance i-1 (no longer tagged lifeboat:backup for web)"],
            members: vec!["i-2 listed in configuration Snapshots []"],
        },
        Case {
            why: "the item removed but a selector still takes it: it stays, by the selector",
            current: vec![target("i-1", by_tag("web"))],
            instances: vec![tags("i-1", &[("team", "web")])],
            volumes: vec![],
            changes: vec![],
            members: vec!["i-1 tag team=web* Snapshots []"],
        },
        Case {
            why: "a selected member tagged later: the tag becomes its source",
            current: vec![target("i-1", web())],
            instances: vec![tags(
                "i-1",
                &[("team", "web"), ("lifeboat:backup", "web#only-amis-reboot")],
            )],
            volumes: vec![],
            changes: vec![],
            members: vec!["i-1 tag lifeboat:backup=web#only-amis-reboot AmiReboot []"],
        },
    ]
    .into_iter()
    .chain(precedence_cases_listed_and_volumes())
    .collect()
}

/// Listed targets and volumes: what a tag may change of them.
fn precedence_cases_listed_and_volumes() -> Vec<Case> {
    vec![
        Case {
            why: "a listed target keeps what the configuration says",
            current: vec![target("i-1", Source::Listed)],
            instances: vec![tags("i-1", &[("lifeboat:backup", "web#only-amis")])],
            volumes: vec![],
            changes: vec![],
            members: vec!["i-1 listed in configuration Snapshots []"],
        },
        Case {
            why: "a listed instance's exclusions stay as applied at a backup",
            current: vec![target("i-1", Source::Listed)],
            instances: vec![with_volumes(tags("i-1", &[]), &["vol-root", "vol-all"])],
            volumes: vec![volume("vol-all", &[("lifeboat:backup", "#exclude")])],
            changes: vec![],
            members: vec!["i-1 listed in configuration Snapshots []"],
        },
        Case {
            why: "a tagged volume joins; #exclude volumes leave their instance's backups, never a root volume",
            current: vec![target("i-1", Source::Tag(sel("team", "web*")))],
            instances: vec![with_volumes(
                tags("i-1", &[("team", "web")]),
                &["vol-root", "vol-all", "vol-web", "vol-db"],
            )],
            volumes: vec![
                volume("vol-root", &[("lifeboat:backup", "#exclude")]),
                volume("vol-all", &[("lifeboat:backup", "#exclude")]),
                volume("vol-web", &[("lifeboat:backup", "web#exclude")]),
                volume("vol-db", &[("lifeboat:backup", "db#exclude")]),
                volume("vol-9", &[("lifeboat:backup", "web")]),
            ],
            changes: vec!["joined: volume vol-9 (tag lifeboat:backup=web)"],
            members: vec![
                "i-1 tag team=web* Snapshots [vol-all, vol-web]",
                "vol-9 tag lifeboat:backup=web Snapshots []",
            ],
        },
        Case {
            why: "a tagged instance elsewhere, or terminated, is not a member",
            current: vec![],
            instances: vec![
                Instance {
                    region: "eu-west-1".into(),
                    ..tags("i-1", &[("lifeboat:backup", "web")])
                },
                Instance {
                    state: InstanceState::Terminated,
                    ..tags("i-2", &[("lifeboat:backup", "web")])
                },
            ],
            volumes: vec![],
            changes: vec![],
            members: vec![],
        },
    ]
}

#[test]
fn no_backup_beats_the_tag_which_beats_selectors() {
    let regions = BTreeSet::from(["us-east-1".to_string()]);
    let at: DateTime<Utc> = "2026-11-22T10:00:00Z".parse().unwrap();
    for case in precedence_cases() {
        let obs = Observation {
            instances: case
                .instances
                .into_iter()
                .map(|i| (i.id.clone(), i))
                .collect(),
            volumes: case
                .volumes
                .into_iter()
                .map(|v| (v.id.clone(), v))
                .collect(),
            ..Observation::default()
        };
        let r = resolve(&policy(AutoRemove::Yes), &case.current, &regions, &obs, at);
        let got: Vec<String> = r.changes.iter().map(|c| c.to_string()).collect();
        assert_eq!(got, case.changes, "{}", case.why);
        let members: Vec<String> = r
            .members
            .iter()
            .map(|t| {
                format!(
                    "{} {} {:?} [{}]",
                    t.id,
                    t.source,
                    t.mode,
                    t.exclude_volumes.join(", ")
                )
            })
            .collect();
        assert_eq!(members, case.members, "{}", case.why);
    }
}

#[test]
fn tag_departures_count_against_the_most_leaving_at_once() {
    let current = vec![
        target("i-1", by_tag("web")),
        target("i-2", by_tag("web")),
        target("i-3", Source::Listed),
    ];
    // The backup tag wiped from two of three: nobody leaves.
    let obs = Observation {
        instances: ["i-1", "i-2", "i-3"]
            .into_iter()
            .map(|id| (id.to_string(), tags(id, &[])))
            .collect(),
        ..Observation::default()
    };
    let regions = BTreeSet::from(["us-east-1".to_string()]);
    let at: DateTime<Utc> = "2026-11-22T10:00:00Z".parse().unwrap();
    let r = resolve(&policy(AutoRemove::Yes), &current, &regions, &obs, at);
    assert_eq!(r.held_back.len(), 2, "{r:?}");
    assert!(r.changes.is_empty());
    assert_eq!(r.members.len(), 3);
}

#[test]
fn tag_items_naming_nothing_known_are_problems_naming_the_resource() {
    let obs = Observation {
        instances: [
            tags("i-1", &[("lifeboat:backup", "web nosuch bad!")]),
            tags("i-2", &[("lifeboat:backup", "new:tpl other:nosuch tpl")]),
            tags("i-3", &[("lifeboat:backup", "web#exclude")]),
        ]
        .into_iter()
        .map(|i| (i.id.clone(), i))
        .collect(),
        ..Observation::default()
    };
    let regions = BTreeSet::from(["us-east-1".to_string()]);
    let got = claims::problems(&regions, &obs, |p| p == "web", |t| t == "tpl");
    let want = [
        "tag lifeboat:backup=new:tpl other:nosuch tpl on instance i-2: item \"other:nosuch\" is not used: no policy other is configured, and nosuch is not a configured template",
        "tag lifeboat:backup=new:tpl other:nosuch tpl on instance i-2: item \"tpl\" is not used: tpl is a template",
        "tag lifeboat:backup=web nosuch bad! on instance i-1: item \"bad!\" is not used",
        "tag lifeboat:backup=web nosuch bad! on instance i-1: item \"nosuch\" is not used: no policy nosuch is configured",
        "tag lifeboat:backup=web#exclude on instance i-3: item \"web#exclude\" is not used: #exclude leaves a volume out",
    ];
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (g, w) in got.iter().zip(want) {
        assert!(g.starts_with(w), "{g}\n  does not start with\n{w}");
    }
}

/// One plan observes every account, and two accounts often share a
/// region: another account's resources never join, by selector or tag.
#[test]
fn another_accounts_resources_join_nothing_by_selector_or_tag() {
    let mine = tags("i-mine", &[("team", "web")]);
    let theirs = tags("i-theirs", &[("team", "web")]);
    let tagged_theirs = tags("i-tagged", &[(TAG_BACKUP, "web")]);
    let mut obs = Observation::default();
    for i in [mine, theirs, tagged_theirs] {
        obs.instances.insert(i.id.clone(), i);
    }
    obs.owners.insert("i-mine".into(), "main".into());
    obs.owners.insert("i-theirs".into(), "dev".into());
    obs.owners.insert("i-tagged".into(), "dev".into());
    let mut p = policy(AutoRemove::Yes);
    p.selectors = vec![sel("team", "web")];
    let regions = BTreeSet::from(["us-east-1".to_string()]);
    let at: DateTime<Utc> = "2026-11-22T10:00:00Z".parse().unwrap();
    let r = resolve(&p, &[], &regions, &obs, at);
    let ids: Vec<&str> = r.members.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["i-mine"]);
}

fn moved(target: &str, moved: Move, reason: &str) -> MemberChange {
    MemberChange {
        policy: "web".into(),
        target: target.into(),
        kind: TargetKind::Instance,
        moved,
        reason: reason.into(),
        alert: false,
        at: "2026-11-22T09:00:00Z".parse().unwrap(),
        backup_id: None,
    }
}

fn decision(current: usize, leaving: &[&str]) -> Decision {
    let current: Vec<TargetState> = (0..current)
        .map(|n| target(&format!("i-{n}"), Source::Tag(sel("team", "web"))))
        .collect();
    let members = current
        .iter()
        .filter(|t| !leaving.contains(&t.id.as_str()))
        .cloned()
        .collect();
    Decision {
        resolved: Resolved {
            members,
            changes: leaving
                .iter()
                .map(|id| moved(id, Move::Left, "no longer matches tag team=web"))
                .collect(),
            held_back: vec![],
        },
        current,
        tag_problems: vec![],
        updated: vec![],
        exclusions: vec![],
    }
}

/// The guard counts the last day's departures too, and not the members
/// that joined within it: one resource at a time, scan after scan, or junk
/// joined first, must not drain a policy.
#[test]
fn departures_over_a_day_count_against_the_most_leaving_at_once() {
    let left = |ids: &[&str]| -> Vec<MemberChange> {
        ids.iter()
            .map(|id| moved(id, Move::Left, "no longer matches tag team=web"))
            .collect()
    };
    // Alone, one of two may go.
    let mut d = decision(2, &["i-0"]);
    hold_back_over_window(&mut d, &[]);
    assert_eq!(d.resolved.changes.len(), 1);
    // After another left this day, the second is held back.
    let mut d = decision(2, &["i-0"]);
    hold_back_over_window(&mut d, &left(&["i-9"]));
    assert!(d.resolved.changes.is_empty(), "{:?}", d.resolved);
    assert_eq!(d.resolved.held_back.len(), 1);
    assert_eq!(d.resolved.members.len(), 2);
    // Twenty junk members joined this day: ten real ones leaving out of
    // thirty is still all of the ten that were there.
    let leaving: Vec<String> = (0..10).map(|n| format!("i-{n}")).collect();
    let leaving: Vec<&str> = leaving.iter().map(String::as_str).collect();
    let mut d = decision(30, &leaving);
    let joined: Vec<MemberChange> = (10..30)
        .map(|n| moved(&format!("i-{n}"), Move::Joined, "tag lifeboat:backup=web"))
        .collect();
    hold_back_over_window(&mut d, &joined);
    assert_eq!(d.resolved.held_back.len(), 10);
    assert_eq!(d.resolved.members.len(), 30);
    // Volumes left out by their #exclude tag are not departures.
    let mut d = decision(2, &["i-0"]);
    let excluded = moved(
        "vol-1",
        Move::Left,
        &format!("{EXCLUDED_BY_TAG} of instance i-1's backups"),
    );
    hold_back_over_window(&mut d, &[excluded]);
    assert_eq!(d.resolved.changes.len(), 1);
}

/// Terminations are facts, not a tag gone wrong: they never count; a
/// target that joined and left within the day was never in the base.
#[test]
fn terminations_and_churn_within_the_day_do_not_hold_departures_back() {
    let mut d = decision(2, &["i-0"]);
    let terminated: Vec<MemberChange> = (5..9)
        .map(|n| moved(&format!("i-{n}"), Move::Left, "target terminated"))
        .collect();
    hold_back_over_window(&mut d, &terminated);
    assert_eq!(d.resolved.changes.len(), 1, "{:?}", d.resolved);
    let mut d = decision(4, &["i-0"]);
    let churn = vec![
        moved("i-7", Move::Joined, "tag team=web"),
        moved("i-7", Move::Left, "no longer matches tag team=web"),
    ];
    hold_back_over_window(&mut d, &churn);
    assert_eq!(d.resolved.changes.len(), 1, "{:?}", d.resolved);
}
