//! The secured-DR check over the in-memory fake, and its schedule in run
//! mode. Fills what the emulator cannot show: GetAccountAuthorizationDetails
//! paged (the emulator answers in one page), conditions, NotAction, and a
//! Deny narrower than the grant; and the agenda's `check_every`, which
//! needs a clock that moves.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use lifeboat_engine::cloud::iam::{AuthorizationEntry, ManagedPolicy, PolicyText, PrincipalDetail};
use lifeboat_engine::cloud::Cloud;
use lifeboat_engine::iam::check::{self, evaluate, AlertChange, PolicySource};
use lifeboat_engine::runmode::agenda::{secured_key, Agenda};
use lifeboat_engine::state::{SharedStore, Store};
use lifeboat_engine::testing::fake::FakeCloud;
use lifeboat_schema::Config;

const PROHIBITED: &[&str] = &["ec2:DeleteSnapshot", "ec2:DeregisterImage", "rds:Delete*"];

fn doc(statements: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
}

fn role(name: &str, inline: &[&str], attached: &[&str]) -> AuthorizationEntry {
    AuthorizationEntry::Role(PrincipalDetail {
        name: name.into(),
        arn: format!("arn:aws:iam::222222222222:role/{name}"),
        inline: inline
            .iter()
            .enumerate()
            .map(|(i, s)| PolicyText {
                name: format!("p{i}"),
                document: doc(s),
            })
            .collect(),
        attached: attached.iter().map(|a| a.to_string()).collect(),
        groups: vec![],
    })
}

fn prohibited() -> Vec<String> {
    PROHIBITED.iter().map(|p| p.to_string()).collect()
}

/// (granted pattern, prohibited pattern, conditional) of one role's findings.
fn found(statements: &[&str]) -> Vec<(String, String, bool)> {
    let r = evaluate("vault", &[role("r", statements, &[])], &prohibited());
    r.findings
        .into_iter()
        .map(|f| (f.action, f.prohibited, f.conditional))
        .collect()
}

fn want(items: &[(&str, &str, bool)]) -> Vec<(String, String, bool)> {
    let mut v: Vec<_> = items
        .iter()
        .map(|(a, p, c)| (a.to_string(), p.to_string(), *c))
        .collect();
    v.sort();
    v
}

/// A case: its name, the documents of one role, and the findings expected
/// as (prohibited pattern, granted action, conditional).
type Case<'a> = (&'a str, Vec<String>, Vec<(&'a str, &'a str, bool)>);

#[test]
fn evaluation_cases() {
    let allow = |a: &str| format!(r#"{{"Effect":"Allow","Action":{a},"Resource":"*"}}"#);
    let deny = |a: &str| format!(r#"{{"Effect":"Deny","Action":{a},"Resource":"*"}}"#);
    let cases: Vec<Case> = vec![
        ("nothing allowed", vec![allow(r#""ec2:Describe*""#)], vec![]),
        (
            "a direct allow",
            vec![allow(r#""ec2:DeleteSnapshot""#)],
            vec![("ec2:DeleteSnapshot", "ec2:DeleteSnapshot", false)],
        ),
        (
            "case does not matter",
            vec![allow(r#""EC2:deletesnapshot""#)],
            vec![("EC2:deletesnapshot", "ec2:DeleteSnapshot", false)],
        ),
        (
            "a wildcard in the grant",
            vec![allow(r#"["ec2:Describe*","ec2:De*"]"#)],
            vec![
                ("ec2:De*", "ec2:DeleteSnapshot", false),
                ("ec2:De*", "ec2:DeregisterImage", false),
            ],
        ),
        (
            "a wildcard in the prohibited pattern",
            vec![allow(r#""rds:DeleteDBClusterSnapshot""#)],
            vec![("rds:DeleteDBClusterSnapshot", "rds:Delete*", false)],
        ),
        (
            "question marks",
            vec![allow(r#""ec2:Delete?napshot""#)],
            vec![("ec2:Delete?napshot", "ec2:DeleteSnapshot", false)],
        ),
        (
            "everything",
            vec![allow(r#""*""#)],
            vec![
                ("*", "ec2:DeleteSnapshot", false),
                ("*", "ec2:DeregisterImage", false),
                ("*", "rds:Delete*", false),
            ],
        ),
        (
            "a resource other than * still grants",
            vec![r#"{"Effect":"Allow","Action":"ec2:DeleteSnapshot","Resource":"arn:aws:ec2:us-east-1::snapshot/*"}"#.into()],
            vec![("ec2:DeleteSnapshot", "ec2:DeleteSnapshot", false)],
        ),
        (
            "a condition is taken as met, and said",
            vec![r#"{"Effect":"Allow","Action":"ec2:DeleteSnapshot","Resource":"*","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"}}}"#.into()],
            vec![("ec2:DeleteSnapshot", "ec2:DeleteSnapshot", true)],
        ),
        (
            "NotAction grants what it leaves out",
            vec![r#"{"Effect":"Allow","NotAction":["ec2:DeleteSnapshot","rds:*"],"Resource":"*"}"#.into()],
            vec![("NotAction [ec2:DeleteSnapshot, rds:*]", "ec2:DeregisterImage", false)],
        ),
        (
            "an explicit deny wins",
            vec![allow(r#""ec2:*""#), deny(r#"["ec2:DeleteSnapshot","ec2:Deregister*"]"#)],
            vec![],
        ),
        (
            "a deny with a wildcard wins",
            vec![allow(r#""*""#), deny(r#""*""#)],
            vec![],
        ),
        (
            "a deny of part of a prohibited pattern does not",
            vec![allow(r#""rds:*""#), deny(r#""rds:DeleteDBSnapshot""#)],
            vec![("rds:*", "rds:Delete*", false)],
        ),
        (
            "a deny of the granting pattern wins",
            vec![allow(r#""rds:DeleteDBSnapshot""#), deny(r#""rds:DeleteDB*""#)],
            vec![],
        ),
        (
            "a deny of one granting pattern leaves the other",
            vec![
                allow(r#"["rds:DeleteDBSnapshot","rds:Delete*"]"#),
                deny(r#""rds:DeleteDBSnapshot""#),
            ],
            vec![("rds:Delete*", "rds:Delete*", false)],
        ),
        (
            "a conditional deny does not",
            vec![
                allow(r#""ec2:DeleteSnapshot""#),
                r#"{"Effect":"Deny","Action":"ec2:DeleteSnapshot","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}"#.into(),
            ],
            vec![("ec2:DeleteSnapshot", "ec2:DeleteSnapshot", false)],
        ),
        (
            "a deny on some resources does not",
            vec![
                allow(r#""ec2:DeleteSnapshot""#),
                r#"{"Effect":"Deny","Action":"ec2:DeleteSnapshot","Resource":"arn:aws:ec2:*::snapshot/keep-*"}"#.into(),
            ],
            vec![("ec2:DeleteSnapshot", "ec2:DeleteSnapshot", false)],
        ),
        (
            "a deny by NotAction wins when it leaves the pattern in",
            vec![allow(r#""ec2:*""#), r#"{"Effect":"Deny","NotAction":"ec2:Describe*","Resource":"*"}"#.into()],
            vec![],
        ),
        (
            "a lone statement object",
            vec![],
            vec![],
        ),
    ];
    for (name, statements, expected) in cases {
        let refs: Vec<&str> = statements.iter().map(String::as_str).collect();
        let mut got = found(&refs);
        got.sort();
        assert_eq!(got, want(&expected), "{name}");
    }
    // One statement as an object, not a list.
    let one = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ec2:DeleteSnapshot","Resource":"*"}}"#;
    let r = evaluate(
        "vault",
        &[AuthorizationEntry::Role(PrincipalDetail {
            name: "r".into(),
            arn: "arn:aws:iam::222222222222:role/r".into(),
            inline: vec![PolicyText {
                name: "one".into(),
                document: one.into(),
            }],
            ..Default::default()
        })],
        &prohibited(),
    );
    assert_eq!(r.findings.len(), 1);
}

/// A user in a group with a managed policy, URL-encoded as IAM sends it; a
/// policy attached but not listed is named as not evaluated.
fn account_details() -> Vec<AuthorizationEntry> {
    let encoded = doc(r#"{"Effect":"Allow","Action":"ec2:DeregisterImage","Resource":"*"}"#)
        .replace('{', "%7B")
        .replace('}', "%7D")
        .replace('"', "%22")
        .replace(':', "%3A")
        .replace('[', "%5B")
        .replace(']', "%5D")
        .replace(',', "%2C");
    let managed = "arn:aws:iam::222222222222:policy/images";
    vec![
        AuthorizationEntry::User(PrincipalDetail {
            name: "alice".into(),
            arn: "arn:aws:iam::222222222222:user/alice".into(),
            groups: vec!["ops".into()],
            ..Default::default()
        }),
        AuthorizationEntry::Group(PrincipalDetail {
            name: "ops".into(),
            arn: "arn:aws:iam::222222222222:group/ops".into(),
            attached: vec![managed.into()],
            ..Default::default()
        }),
        AuthorizationEntry::Policy(ManagedPolicy {
            name: "images".into(),
            arn: managed.into(),
            document: Some(encoded),
        }),
        role(
            "clean",
            &[r#"{"Effect":"Allow","Action":"ec2:Describe*","Resource":"*"}"#],
            &[],
        ),
        role(
            "orphan",
            &[],
            &["arn:aws:iam::aws:policy/AdministratorAccess"],
        ),
        role(
            "r1",
            &[r#"{"Effect":"Allow","Action":"ec2:DeleteSnapshot","Resource":"*"}"#],
            &[],
        ),
        role("r2", &[], &[managed]),
    ]
}

fn vault_config(check_every: &str) -> Config {
    let text = format!(
        r#"
account "main" {{
  regions = ["us-east-1"]
}}

account "vault" {{
  type    = "dr"
  regions = ["us-east-1"]
  secured {{
    prohibited  = ["ec2:DeleteSnapshot", "ec2:DeregisterImage", "rds:Delete*"]
    check_every = "{check_every}"
  }}
}}
"#
    );
    lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text)])
        .unwrap_or_else(|d| panic!("{d}"))
        .config
}

#[tokio::test]
async fn the_authorization_details_are_read_page_by_page_and_the_alert_opens_once_and_closes() {
    let fake = FakeCloud::new(2);
    fake.world
        .lock()
        .unwrap()
        .iam
        .details
        .insert("vault".into(), account_details());
    let cloud: Arc<dyn Cloud> = Arc::new(fake.clone());
    let config = vault_config("6h");
    let vault = &config.accounts["vault"];

    let report = check::check(&cloud, vault).await.unwrap();
    // Seven entries, two a page: four calls, every entry read.
    assert_eq!(
        fake.world
            .lock()
            .unwrap()
            .calls_of("GetAccountAuthorizationDetails"),
        4
    );
    assert_eq!(report.principals, 5, "alice and four roles");
    let who: Vec<(&str, &str, &PolicySource)> = report
        .findings
        .iter()
        .map(|f| (f.principal.as_str(), f.policy.as_str(), &f.source))
        .collect();
    assert_eq!(
        who,
        vec![
            ("r1", "p0", &PolicySource::Inline),
            ("r2", "images", &PolicySource::Managed),
            ("alice", "images", &PolicySource::GroupManaged),
        ]
    );
    assert_eq!(report.unread.len(), 1, "{:?}", report.unread);
    assert!(report.unread[0].contains("AdministratorAccess"));
    assert!(report
        .summary()
        .starts_with("account vault: 3 finding(s): 3 principal(s)"));

    let dir = tempfile::tempdir().unwrap();
    let store: SharedStore = Arc::new(Mutex::new(Store::open(&dir.path().join("s.db")).unwrap()));
    let t = |h: i64| "2026-12-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::hours(h);
    let rec = |r, h| check::record(&cloud, &store, &config, r, t(h));
    assert_eq!(rec(&report, 0).await.unwrap(), AlertChange::Opened);
    assert_eq!(rec(&report, 6).await.unwrap(), AlertChange::Unchanged);
    let alerts = store.lock().unwrap().open_alerts().unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].policy, "account.vault");
    // Still not clean while a policy could not be read (the orphan's).
    let unread_only = check::Report {
        findings: vec![],
        ..report.clone()
    };
    assert!(!unread_only.is_clean());
    assert_eq!(rec(&unread_only, 9).await.unwrap(), AlertChange::Unchanged);
    let clean = check::Report {
        findings: vec![],
        unread: vec![],
        ..report.clone()
    };
    assert_eq!(rec(&clean, 12).await.unwrap(), AlertChange::Closed);
    assert!(store.lock().unwrap().open_alerts().unwrap().is_empty());
    let checks = store.lock().unwrap().secured_checks().unwrap();
    assert_eq!(checks["vault"].checked_at, t(12));
    assert_eq!(checks["vault"].findings, 0);
}

#[test]
fn run_mode_checks_a_secured_account_every_check_every() {
    let config = vault_config("6h");
    let t = |h: i64| "2026-12-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::hours(h);
    let mut agenda = Agenda {
        config: &config,
        policies: BTreeMap::new(),
        last: BTreeMap::new(),
        retries: BTreeMap::new(),
        summary_sent: None,
        teardowns: vec![],
    };
    // Never checked: due at once.
    assert_eq!(agenda.secured_checks(t(0)), vec!["vault".to_string()]);
    assert_eq!(agenda.next_due(t(0)), Some(t(0)));
    agenda.last.insert(secured_key("vault"), t(0));
    assert!(agenda.secured_checks(t(5)).is_empty());
    assert_eq!(agenda.next_secured_check(t(5)), Some(t(6)));
    assert_eq!(agenda.next_due(t(5)), Some(t(6)));
    assert_eq!(agenda.secured_checks(t(6)), vec!["vault".to_string()]);
    // Without check_every: checked only on demand.
    let mut on_demand = config.clone();
    on_demand
        .accounts
        .get_mut("vault")
        .unwrap()
        .secured
        .as_mut()
        .unwrap()
        .check_every_secs = None;
    let agenda = Agenda {
        config: &on_demand,
        ..agenda
    };
    assert!(agenda.secured_checks(t(100)).is_empty());
    assert_eq!(agenda.next_secured_check(t(100)), None);
}

#[test]
fn a_policy_that_could_not_be_read_leaves_the_account_not_clean() {
    // A role with a managed policy the listing does not hold: it may grant
    // anything, so the account is not called clean.
    let r = evaluate(
        "vault",
        &[role(
            "r",
            &[],
            &["arn:aws:iam::222222222222:policy/missing"],
        )],
        &prohibited(),
    );
    assert!(r.findings.is_empty());
    assert!(!r.unread.is_empty(), "{:?}", r.unread);
    assert!(!r.is_clean());
    assert!(r.summary().contains("not clean"), "{}", r.summary());
}

#[tokio::test]
async fn an_iam_write_that_lets_a_principal_grant_itself_a_delete_is_a_finding() {
    let cloud = FakeCloud::new(2);
    let only_iam = role(
        "escalator",
        &[r#"{"Effect":"Allow","Action":"iam:PutRolePolicy","Resource":"*"}"#],
        &[],
    );
    cloud
        .world
        .lock()
        .unwrap()
        .iam
        .details
        .insert("vault".into(), vec![only_iam]);
    let config = vault_config("6h");
    let account = &config.accounts["vault"];
    let dyn_cloud: Arc<dyn Cloud> = Arc::new(cloud.clone());
    let report = check::check(&dyn_cloud, account).await.unwrap();
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    assert_eq!(report.findings[0].prohibited, "iam:PutRolePolicy");
    assert!(!report.is_clean());
}

#[tokio::test]
async fn taking_a_deny_away_is_escalation_but_a_service_linked_roles_iam_writes_are_not() {
    let cloud = FakeCloud::new(2);
    let undeny = role(
        "undeny",
        &[
            r#"{"Effect":"Allow","Action":"ec2:*","Resource":"*"}"#,
            r#"{"Effect":"Deny","Action":"ec2:DeleteSnapshot","Resource":"*"}"#,
            r#"{"Effect":"Allow","Action":"iam:DeleteRolePolicy","Resource":"*"}"#,
        ],
        &[],
    );
    let AuthorizationEntry::Role(mut linked) = role(
        "AWSServiceRoleForSSO",
        &[
            r#"{"Effect":"Allow","Action":["iam:PutRolePolicy","iam:AttachRolePolicy"],"Resource":"*"}"#,
        ],
        &[],
    ) else {
        unreachable!()
    };
    linked.arn =
        "arn:aws:iam::222222222222:role/aws-service-role/sso.amazonaws.com/AWSServiceRoleForSSO"
            .into();
    cloud.world.lock().unwrap().iam.details.insert(
        "vault".into(),
        vec![undeny, AuthorizationEntry::Role(linked)],
    );
    let config = vault_config("6h");
    let dyn_cloud: Arc<dyn Cloud> = Arc::new(cloud.clone());
    let report = check::check(&dyn_cloud, &config.accounts["vault"])
        .await
        .unwrap();
    let found: Vec<(&str, &str)> = report
        .findings
        .iter()
        .map(|f| (f.principal.as_str(), f.prohibited.as_str()))
        .collect();
    // DeleteSnapshot is denied, not found; the Deny's removal is; the
    // service-linked role's IAM writes are not.
    assert_eq!(
        found,
        [
            ("undeny", "ec2:DeregisterImage"),
            ("undeny", "iam:DeleteRolePolicy")
        ],
        "{found:?}"
    );
}

#[tokio::test]
async fn a_check_that_could_not_be_made_opens_one_alert_and_publishes_it() {
    let fake = FakeCloud::new(2);
    let cloud: Arc<dyn Cloud> = Arc::new(fake.clone());
    let text = format!(
        "{}\nnotifications {{\n  sns_topic = \"arn:aws:sns:us-east-1:123456789012:ops\"\n  account   = account.main\n  region    = \"us-east-1\"\n}}\n",
        r#"
account "main" {
  regions = ["us-east-1"]
}

account "vault" {
  type    = "dr"
  regions = ["us-east-1"]
  secured {
    prohibited = ["ec2:DeleteSnapshot"]
  }
}
"#
    );
    let config = lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text)])
        .unwrap_or_else(|d| panic!("{d}"))
        .config;
    let dir = tempfile::tempdir().unwrap();
    let store: SharedStore = Arc::new(Mutex::new(Store::open(&dir.path().join("s.db")).unwrap()));
    // The publishing account, as apply would have recorded it.
    let main = serde_json::to_value(&config.accounts["main"]).unwrap();
    store
        .lock()
        .unwrap()
        .transaction(|tx| tx.put_object(&lifeboat_engine::Address::account("main"), &main))
        .unwrap();
    let now: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
    for h in 0..2 {
        check::record_failure(
            &cloud,
            &store,
            &config,
            "vault",
            "AccessDenied",
            now + Duration::hours(h),
        )
        .await
        .unwrap();
    }
    let alerts = store.lock().unwrap().open_alerts().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0].message.contains("could not be made"),
        "{}",
        alerts[0].message
    );
    let published = fake.world.lock().unwrap().published.clone();
    assert_eq!(
        published.len(),
        1,
        "published once, when it opened: {published:?}"
    );
    assert!(published[0].1.contains("account.vault"));
}
