//! Policies made from templates, through whole plans: what makes them,
//! what keeps them for their backups, and the names a tag may not take.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use lifeboat_schema::Config;

use crate::cloud::{
    Database, DbSnapshotKind, Instance, InstanceState, Snapshot, SnapshotState, Tags,
};
use crate::plan::observe::{db_key, Observation};
use crate::plan::planner::plan;
use crate::plan::{Action, Plan};
use crate::state::model::TargetKind;
use crate::state::{self, ArtifactKind, BackupRecord, BackupStatus, SnapshotRecord};

fn now() -> DateTime<Utc> {
    "2026-11-22T12:00:00Z".parse().unwrap()
}

/// Accounts main and other share us-east-1; template `web_tpl` (renamed
/// to `tpl` when asked) in main, and `extra` policies.
fn config(template: &str, extra: &str) -> Config {
    let text = format!(
        r#"
account "main" {{
  regions = ["us-east-1"]
}}

account "other" {{
  regions = ["us-east-1"]
}}

schedule "hourly" {{
  start = "2026-11-22T00:17"
  every = "1h"
}}

policy "{template}" {{
  template    = true
  account     = account.main
  generations = 2
  schedules   = [schedule.hourly]
  auto_remove_targets = "yes"
}}
{extra}"#
    );
    lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text)])
        .unwrap_or_else(|d| panic!("{d}"))
        .config
}

fn tags(value: &str) -> Tags {
    [("lifeboat:backup".to_string(), value.to_string())].into()
}

fn instance(id: &str, value: &str) -> Instance {
    Instance {
        id: id.into(),
        region: "us-east-1".into(),
        state: InstanceState::Running,
        tags: tags(value),
        volumes: vec![],
    }
}

/// `instances`, and snap-1 (the one backup's snapshot) in AWS.
fn observed(instances: Vec<Instance>) -> Observation {
    let snap = Snapshot {
        id: "snap-1".into(),
        volume_id: "vol-1".into(),
        region: "us-east-1".into(),
        state: SnapshotState::Completed,
        started: None,
        tags: Tags::new(),
    };
    Observation {
        instances: instances.into_iter().map(|i| (i.id.clone(), i)).collect(),
        snapshots: [("snap-1".to_string(), snap)].into(),
        ..Default::default()
    }
}

/// `state` with the plan's control changes performed, as apply does.
fn applied(state: &state::Snapshot, p: &Plan) -> state::Snapshot {
    let mut out = state.clone();
    for c in &p.changes {
        match c.action {
            Action::Create | Action::Update => {
                out.objects.insert(
                    c.address.clone(),
                    crate::state::StoredValue::new(c.after.as_ref().unwrap()),
                );
            }
            Action::Delete => {
                out.objects.remove(&c.address);
            }
            _ => {}
        }
    }
    out
}

fn backup_of(policy: &str) -> BackupRecord {
    BackupRecord {
        seq: 1,
        id: "b1".into(),
        policy: policy.into(),
        account: "main".into(),
        started: "2026-11-22T01:17:00Z".parse().unwrap(),
        finished: None,
        status: BackupStatus::Success,
        frozen: None,
        snapshots: vec![SnapshotRecord {
            id: "snap-1".into(),
            volume_id: "vol-1".into(),
            target: "i-1".into(),
            region: "us-east-1".into(),
            kind: ArtifactKind::Ebs,
            image: None,
        }],
        problems: vec![],
    }
}

/// The plan's lines: `+ policy.app`, `- policy.app.target["i-1"]`, ...
fn lines(p: &Plan) -> Vec<String> {
    p.changes
        .iter()
        .map(|c| {
            let sign = match c.action {
                Action::Create => "+",
                Action::Delete => "-",
                Action::Update => "~",
                _ => "?",
            };
            format!("{sign} {}", c.address)
        })
        .collect()
}

/// Policy app made from web_tpl by i-1's tag and applied, with one backup.
fn made_with_backup(config: &Config) -> state::Snapshot {
    let obs = observed(vec![instance("i-1", "app:web_tpl")]);
    let first = plan(config, &state::Snapshot::default(), &obs, now()).unwrap();
    assert!(
        lines(&first).contains(&"+ policy.app".to_string()),
        "{first:?}"
    );
    let mut state = applied(&state::Snapshot::default(), &first);
    state.backups.push(backup_of("app"));
    state
}

/// The plan keeps policy.app and its backup, and says why; `idle`: it has
/// no member left and is disabled.
fn assert_kept(p: &Plan, why: &str, idle: bool) {
    let lines = lines(p);
    assert!(!lines.contains(&"- policy.app".to_string()), "{lines:?}");
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("- backup.") || l.starts_with("- snapshot")),
        "{lines:?}"
    );
    assert!(p.removed_with_backups.is_empty(), "{p:?}");
    let update = p
        .changes
        .iter()
        .find(|c| c.address.to_string() == "policy.app");
    match idle {
        true => {
            let reason = update.and_then(|c| c.reason.clone()).unwrap_or_default();
            assert_eq!(reason, "enabled true -> false", "{lines:?}");
        }
        false => assert!(update.is_none(), "{lines:?}"),
    }
    assert!(
        p.warnings
            .iter()
            .any(|w| w.starts_with("policy.app (made from template web_tpl)") && w.contains(why)),
        "{:?}",
        p.warnings
    );
}

#[test]
fn a_made_policy_whose_last_tagged_instance_terminated_is_kept_for_its_backups() {
    let config = config("web_tpl", "");
    let state = made_with_backup(&config);
    let mut gone = instance("i-1", "app:web_tpl");
    gone.state = InstanceState::Terminated;
    let p = plan(&config, &state, &observed(vec![gone]), now()).unwrap();
    assert_kept(&p, "no lifeboat:backup tag names it any more", true);
    // Its member leaves as any terminated one does.
    assert!(
        lines(&p).contains(&"- policy.app.target[\"i-1\"]".to_string()),
        "{p:?}"
    );
}

#[test]
fn a_made_policy_whose_tag_was_removed_is_kept_disabled_with_its_backups_and_removed_without_them()
{
    let config = config("web_tpl", "");
    let state = made_with_backup(&config);
    let untagged = observed(vec![instance("i-1", "")]);
    let p = plan(&config, &state, &untagged, now()).unwrap();
    assert_kept(&p, "no lifeboat:backup tag names it any more", true);
    assert!(
        lines(&p).contains(&"- policy.app.target[\"i-1\"]".to_string()),
        "{p:?}"
    );

    // Applied: disabled, and its backup is kept, a month on too: the
    // policy makes no new backups, so its generations stay.
    let mut later = applied(&state, &p);
    later.departed = [("app".to_string(), [("i-1".to_string(), now())].into())].into();
    let p = plan(&config, &later, &untagged, now()).unwrap();
    assert_kept(&p, "it has no member left: it is disabled", false);
    let month = now() + chrono::Duration::days(31);
    let p = plan(&config, &later, &untagged, month).unwrap();
    assert_kept(&p, "its backups are kept", false);

    // Its backups expired (or never were): the normal delete.
    let mut empty = state.clone();
    empty.backups.clear();
    let p = plan(&config, &empty, &untagged, now()).unwrap();
    assert!(lines(&p).contains(&"- policy.app".to_string()), "{p:?}");
}

#[test]
fn a_made_policy_whose_template_was_renamed_keeps_its_last_settings() {
    let state = made_with_backup(&config("web_tpl", ""));
    // web_tpl is now tpl, with other generations; the tag still says
    // app:web_tpl.
    let renamed = config("tpl", "").to_owned();
    let obs = observed(vec![instance("i-1", "app:web_tpl")]);
    let p = plan(&renamed, &state, &obs, now()).unwrap();
    // Its settings stay, but it no longer runs: the template that made it
    // is gone.
    assert_kept(
        &p,
        "its template web_tpl is no longer a configured template",
        true,
    );
}

#[test]
fn a_tagged_rds_instance_makes_the_policy_and_joins_it() {
    let config = config("web_tpl", "");
    let db = Database {
        id: "orders".into(),
        kind: DbSnapshotKind::Instance,
        region: "us-east-1".into(),
        status: "available".into(),
        tags: tags("app:web_tpl"),
        cluster: None,
    };
    let obs = Observation {
        databases: [(db_key("main", TargetKind::Rds, "us-east-1", "orders"), db)].into(),
        ..Default::default()
    };
    let p = plan(&config, &state::Snapshot::default(), &obs, now()).unwrap();
    let lines = lines(&p);
    assert!(lines.contains(&"+ policy.app".to_string()), "{lines:?}");
    assert!(
        lines.contains(&"+ policy.app.target[\"orders\"]".to_string()),
        "{lines:?}"
    );
}

#[test]
fn another_accounts_tag_in_a_shared_region_makes_nothing() {
    let config = config("web_tpl", "");
    let mut obs = observed(vec![instance("i-9", "app:web_tpl")]);
    obs.owners = BTreeMap::from([("i-9".to_string(), "other".to_string())]);
    let p = plan(&config, &state::Snapshot::default(), &obs, now()).unwrap();
    assert!(!lines(&p).iter().any(|l| l.contains("policy.app")), "{p:?}");
    // In its own account it does.
    obs.owners.insert("i-9".into(), "main".into());
    let p = plan(&config, &state::Snapshot::default(), &obs, now()).unwrap();
    assert!(lines(&p).contains(&"+ policy.app".to_string()), "{p:?}");
}

#[test]
fn a_tag_may_not_take_over_a_policy_whose_removal_is_pending() {
    let with_old = config(
        "web_tpl",
        "policy \"old\" {\n  account = account.main\n  generations = 1\n}\n",
    );
    let state = applied(
        &state::Snapshot::default(),
        &plan(
            &with_old,
            &state::Snapshot::default(),
            &observed(vec![]),
            now(),
        )
        .unwrap(),
    );
    // `old` removed from the files; a tag asks for old:web_tpl.
    let config = config("web_tpl", "");
    let obs = observed(vec![instance("i-1", "old:web_tpl")]);
    let p = plan(&config, &state, &obs, now()).unwrap();
    let lines = lines(&p);
    assert!(lines.contains(&"- policy.old".to_string()), "{lines:?}");
    assert!(!lines.contains(&"~ policy.old".to_string()), "{lines:?}");
    assert!(
        p.warnings.iter().any(|w| w
            .starts_with("policy.old is not made from template web_tpl (tag on instance i-1)")
            && w.contains("removal is not applied yet")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn a_made_name_may_not_differ_from_another_policy_only_in_case_or_punctuation() {
    let config = config(
        "web_tpl",
        "policy \"App\" {\n  account = account.main\n  generations = 1\n}\n\npolicy \"my-db\" {\n  account = account.main\n  generations = 1\n}\n",
    );
    let obs = observed(vec![
        instance("i-1", "app:web_tpl"),
        instance("i-2", "my_db:web_tpl"),
        instance("i-3", "my_app:web_tpl"),
        instance("i-4", "my-app:web_tpl"),
    ]);
    let p = plan(&config, &state::Snapshot::default(), &obs, now()).unwrap();
    let lines = lines(&p);
    for refused in ["policy.app", "policy.my_db", "policy.my_app"] {
        assert!(!lines.contains(&format!("+ {refused}")), "{lines:?}");
    }
    // Two new names that fold alike: the first by name is made.
    assert!(lines.contains(&"+ policy.my-app".to_string()), "{lines:?}");
    let w = p.warnings.join("\n");
    assert!(w.contains("policy.app is not made from template web_tpl (tag on instance i-1): policy.App differs from it only in case"), "{w}");
    assert!(w.contains("policy.my_db is not made from template web_tpl (tag on instance i-2): its DB snapshots would be named like those of policy.my-db (my-db)"), "{w}");
    assert!(w.contains("policy.my_app is not made from template web_tpl (tag on i-3): its DB snapshots would be named like those of policy.my-app, made from a tag too"), "{w}");
}
