//! Planning, deploying and destroying clones against the fake cloud.

use super::*;
use crate::cloud::ErrorKind;
use crate::testing::fake::FakeCloud;
use serde_json::json;

const CONFIG: &str = r#"
account "main" {
  regions = ["us-east-1"]
}

account "vault" {
  regions = ["us-west-2"]
  assume_role {
    role_arn = "arn:aws:iam::222222222222:role/x"
  }
}

vpc_capture "prod" {
  account = account.main
}

vpc_clone "prod-west" {
  capture    = vpc_capture.prod
  vpc        = "vpc-0123abcd"
  to_region  = "us-west-2"
  to_account = account.vault
}
"#;

fn config(text: &str) -> Config {
    lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text.to_string())])
        .unwrap_or_else(|d| panic!("{d}"))
        .config
}

fn t(h: u32) -> DateTime<Utc> {
    format!("2026-11-22T{h:02}:00:00Z").parse().unwrap()
}

/// Stands in for the real export: one VPC resource per CIDR block, and
/// `pad` bytes of description.
fn fake_export(pad: usize) -> impl Fn(&CaptureDoc, &ExportOptions) -> Result<Export, ExportError> {
    move |doc, opts| {
        let mut resources = serde_json::Map::new();
        for (n, cidr) in doc.vpc.cidr_blocks.iter().enumerate() {
            resources.insert(
                format!("Vpc{n}"),
                json!({"Type": "AWS::EC2::VPC", "DeletionPolicy": "Retain",
                       "Properties": {"CidrBlock": cidr}}),
            );
        }
        let n = resources.len();
        Ok(Export {
            template: json!({
                "AWSTemplateFormatVersion": "2010-09-09",
                "Description": format!("{} in {}{}", doc.vpc.id, opts.to_region, "x".repeat(pad)),
                "Resources": resources,
            }),
            left_out: vec![],
            resource_counts: BTreeMap::from([("AWS::EC2::VPC".to_string(), n)]),
        })
    }
}

fn input(cidrs: &[&str], at: DateTime<Utc>, id: i64) -> CloneInput {
    let mut document = CaptureDoc::default();
    document.vpc.id = "vpc-0123abcd".into();
    document.vpc.cidr_blocks = cidrs.iter().map(|c| c.to_string()).collect();
    CloneInput {
        source: CloneSource {
            version: VpcVersionRecord {
                id,
                capture: "prod".into(),
                account: "main".into(),
                region: "us-east-1".into(),
                vpc_id: "vpc-0123abcd".into(),
                captured_at: at,
                hash: document.hash(),
            },
            document,
        },
        to_zones: vec!["us-west-2a".into(), "us-west-2b".into()],
    }
}

fn plan_with(
    cfg: &Config,
    state: &state::Snapshot,
    inputs: &BTreeMap<String, CloneInput>,
    pad: usize,
) -> (Vec<Change>, Vec<String>) {
    let mut warnings = vec![];
    let changes = clone_changes(cfg, state, inputs, &fake_export(pad), &mut warnings);
    (changes, warnings)
}

fn state_with(change: &Change) -> state::Snapshot {
    let mut s = state::Snapshot::default();
    s.objects.insert(
        change.address.clone(),
        crate::state::StoredValue::new(change.after.as_ref().unwrap()),
    );
    s
}

#[test]
fn plans_create_update_and_delete_with_retained_resources() {
    let cfg = config(CONFIG);
    let inputs = BTreeMap::from([("prod-west".to_string(), input(&["10.0.0.0/16"], t(10), 1))]);
    let (changes, warnings) = plan_with(&cfg, &state::Snapshot::default(), &inputs, 0);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(changes.len(), 1);
    let create = &changes[0];
    assert_eq!(create.address.to_string(), "vpc_clone.prod-west");
    assert_eq!(create.action, Action::Create);
    let reason = create.reason.as_deref().unwrap();
    assert!(
        reason.starts_with("1 resources from vpc-0123abcd captured 2026-11-22T10:00:00Z"),
        "{reason}"
    );
    assert!(
        reason.contains("lifeboat-vpc-clone-prod-west in vault (us-west-2)"),
        "{reason}"
    );
    assert_eq!(create.depends_on, vec![Address::account("vault")]);

    // Same capture: nothing to do.
    let deployed = state_with(create);
    let (again, _) = plan_with(&cfg, &deployed, &inputs, 0);
    assert!(again.is_empty(), "{again:?}");

    // The network changed: an update whose template diff shows it.
    let inputs2 = BTreeMap::from([(
        "prod-west".to_string(),
        input(&["10.0.0.0/16", "10.1.0.0/16"], t(12), 2),
    )]);
    let (upd, _) = plan_with(&cfg, &deployed, &inputs2, 0);
    assert_eq!(upd.len(), 1);
    assert_eq!(upd[0].action, Action::Update);
    assert!(upd[0]
        .reason
        .as_deref()
        .unwrap()
        .starts_with("template changed"));
    let text = crate::plan::render::human(&crate::plan::Plan::new(
        "l".into(),
        1,
        "d".into(),
        t(13),
        upd.clone(),
        vec![],
    ));
    assert!(text.contains("~ vpc_clone.prod-west"), "{text}");
    assert!(
        text.lines().any(
            |l| l.trim_start().starts_with('+') && l.contains("\"CidrBlock\": \"10.1.0.0/16\"")
        ),
        "{text}"
    );
    assert!(text.contains("version_id: 1 -> 2"), "{text}");

    // The block removed: the stack goes, its resources stay.
    let mut cfg2 = cfg.clone();
    cfg2.vpc_clones.clear();
    let (del, _) = plan_with(&cfg2, &deployed, &BTreeMap::new(), 0);
    assert_eq!(del.len(), 1);
    assert_eq!(del[0].action, Action::Delete);
    let reason = del[0].reason.as_deref().unwrap();
    assert!(
        reason.contains("lifeboat-vpc-clone-prod-west is deleted"),
        "{reason}"
    );
    assert!(reason.contains("RETAINED"), "{reason}");
}

#[test]
fn no_captured_version_and_oversized_templates_are_warnings() {
    let cfg = config(CONFIG);
    let (changes, warnings) = plan_with(&cfg, &state::Snapshot::default(), &BTreeMap::new(), 0);
    assert!(changes.is_empty());
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].contains("has no version of vpc-0123abcd yet"),
        "{warnings:?}"
    );

    let inputs = BTreeMap::from([("prod-west".to_string(), input(&["10.0.0.0/16"], t(10), 1))]);
    let (changes, warnings) = plan_with(
        &cfg,
        &state::Snapshot::default(),
        &inputs,
        TEMPLATE_BODY_LIMIT,
    );
    assert!(changes.is_empty());
    assert!(warnings[0].contains("set template_bucket"), "{warnings:?}");

    let with_bucket = CONFIG.replace(
        "to_account = account.vault",
        "to_account = account.vault\n  template_bucket = \"tpl-bucket\"",
    );
    let (changes, warnings) = plan_with(
        &config(&with_bucket),
        &state::Snapshot::default(),
        &inputs,
        TEMPLATE_BODY_LIMIT,
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(changes.len(), 1);
}

fn vault() -> Account {
    config(CONFIG).accounts["vault"].clone()
}

fn desired_state(pad: usize, cidrs: &[&str]) -> CloneState {
    let cfg = config(&CONFIG.replace(
        "to_account = account.vault",
        "to_account = account.vault\n  template_bucket = \"tpl-bucket\"",
    ));
    desired(
        &cfg.vpc_clones["prod-west"],
        &input(cidrs, t(10), 1),
        &fake_export(pad),
    )
    .unwrap()
}

fn quick() -> Wait {
    Wait {
        timeout: Duration::from_millis(200),
        poll: Duration::from_millis(1),
    }
}

#[tokio::test]
async fn a_stack_completes_after_some_polls_and_a_no_op_update_succeeds() {
    let cloud = FakeCloud::new(10);
    cloud.world.lock().unwrap().stack_polls = 3;
    let s = desired_state(0, &["10.0.0.0/16"]);
    deploy(&cloud, &vault(), &s, quick()).await.unwrap();
    {
        let w = cloud.world.lock().unwrap();
        let key = ("vault".into(), "us-west-2".into(), s.stack_name.clone());
        assert_eq!(w.stacks[&key].info.status, "CREATE_COMPLETE");
        assert_eq!(w.stacks[&key].tags[TAG_CLONE], "prod-west");
        assert!(matches!(w.stacks[&key].template, TemplateSource::Body(_)));
        assert!(w.calls_of("DescribeStacks") >= 3);
        assert_eq!(w.calls_of("PutObject"), 0);
    }
    // The same template again: UpdateStack says nothing to do.
    deploy(&cloud, &vault(), &s, quick()).await.unwrap();
    // A changed template: updated, after polls.
    let s2 = desired_state(0, &["10.0.0.0/16", "10.1.0.0/16"]);
    deploy(&cloud, &vault(), &s2, quick()).await.unwrap();
    let w = cloud.world.lock().unwrap();
    assert_eq!(w.calls_of("UpdateStack"), 2);
    let key = ("vault".into(), "us-west-2".into(), s.stack_name.clone());
    assert_eq!(w.stacks[&key].info.status, "UPDATE_COMPLETE");
}

#[tokio::test]
async fn a_stack_that_never_completes_times_out_naming_the_stack() {
    let cloud = FakeCloud::new(10);
    cloud.world.lock().unwrap().stack_polls = u32::MAX;
    let s = desired_state(0, &["10.0.0.0/16"]);
    let err = deploy(&cloud, &vault(), &s, quick()).await.unwrap_err();
    assert!(matches!(err, CloneError::TimedOut { .. }), "{err}");
    let err = err.to_string();
    assert!(err.contains("timed out"), "{err}");
    assert!(err.contains("lifeboat-vpc-clone-prod-west"), "{err}");
    assert!(err.contains("CREATE_IN_PROGRESS"), "{err}");
}

#[tokio::test]
async fn a_failed_stack_reports_its_failure_events() {
    let cloud = FakeCloud::new(10);
    {
        let mut w = cloud.world.lock().unwrap();
        w.stack_polls = 2;
        w.failing_stacks
            .insert("lifeboat-vpc-clone-prod-west".into());
    }
    let s = desired_state(0, &["10.0.0.0/16"]);
    let err = deploy(&cloud, &vault(), &s, quick()).await.unwrap_err();
    assert!(matches!(err, CloneError::Ended { .. }), "{err}");
    let err = err.to_string();
    assert!(err.contains("ended in ROLLBACK_COMPLETE"), "{err}");
    assert!(
        err.contains("AWS::EC2::VPC Vpc CREATE_FAILED: injected failure"),
        "{err}"
    );
    // A retry removes the rolled-back stack and creates it again.
    cloud.world.lock().unwrap().failing_stacks.clear();
    deploy(&cloud, &vault(), &s, quick()).await.unwrap();
    assert_eq!(cloud.world.lock().unwrap().calls_of("DeleteStack"), 1);
}

#[tokio::test]
async fn a_large_template_is_uploaded_and_deployed_by_url() {
    let cloud = FakeCloud::new(10);
    let s = desired_state(TEMPLATE_BODY_LIMIT, &["10.0.0.0/16"]);
    assert!(s.template.len() > TEMPLATE_BODY_LIMIT);
    deploy(&cloud, &vault(), &s, quick()).await.unwrap();
    {
        let w = cloud.world.lock().unwrap();
        let key = format!("lifeboat/{}/{}.json", s.stack_name, s.template_hash);
        assert_eq!(
            w.objects[&("tpl-bucket".to_string(), key.clone())],
            s.template.as_bytes()
        );
        let stack = &w.stacks[&("vault".into(), "us-west-2".into(), s.stack_name.clone())];
        assert_eq!(
            stack.template,
            TemplateSource::Url(format!("https://tpl-bucket.s3.amazonaws.com/{key}"))
        );
    }
    // Without a bucket, apply refuses rather than sending it inline.
    let mut no_bucket = s.clone();
    no_bucket.template_bucket = None;
    let err = deploy(&cloud, &vault(), &no_bucket, quick())
        .await
        .unwrap_err();
    assert!(matches!(err, CloneError::NoBucket { .. }), "{err}");
    assert!(err.to_string().contains("no template_bucket"), "{err}");
}

#[tokio::test]
async fn a_failed_call_keeps_its_kind_and_a_stack_already_gone_counts_as_deleted() {
    let cloud = FakeCloud::new(10);
    let s = desired_state(0, &["10.0.0.0/16"]);
    cloud
        .world
        .lock()
        .unwrap()
        .failing
        .insert("DescribeStacks".into(), ErrorKind::Throttled);
    match deploy(&cloud, &vault(), &s, quick()).await {
        Err(CloneError::Cloud(e)) => assert_eq!(e.kind, ErrorKind::Throttled),
        other => panic!("{other:?}"),
    }
    {
        let mut w = cloud.world.lock().unwrap();
        w.failing.clear();
        w.failing.insert("DeleteStack".into(), ErrorKind::NotFound);
    }
    destroy(&cloud, &vault(), &s, quick()).await.unwrap();
}

#[tokio::test]
async fn destroy_deletes_the_stack_and_waits() {
    let cloud = FakeCloud::new(10);
    let s = desired_state(0, &["10.0.0.0/16"]);
    deploy(&cloud, &vault(), &s, quick()).await.unwrap();
    cloud.world.lock().unwrap().stack_polls = 2;
    destroy(&cloud, &vault(), &s, quick()).await.unwrap();
    assert!(cloud.world.lock().unwrap().stacks.is_empty());
}

#[tokio::test]
async fn apply_records_a_clone_only_after_its_stack_completed() {
    use crate::plan::apply::{apply, Executor, Outcome};
    use std::sync::Mutex;

    let cfg = config(CONFIG);
    let inputs = BTreeMap::from([("prod-west".to_string(), input(&["10.0.0.0/16"], t(10), 1))]);
    let (changes, _) = plan_with(&cfg, &state::Snapshot::default(), &inputs, 0);
    let plan = crate::plan::Plan::new("l".into(), 0, "d".into(), t(11), changes, vec![]);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Mutex::new(
        Store::open(&dir.path().join("state.db")).unwrap(),
    ));
    let cloud = FakeCloud::new(10);
    let exec = |cloud: &FakeCloud| {
        Arc::new(Executor {
            cloud: Arc::new(cloud.clone()),
            accounts: cfg.accounts.clone(),
            store: store.clone(),
            now: t(11),
            lock_id: None,
            stop: Arc::default(),
        })
    };
    let addr = Address::vpc_clone("prod-west");

    // The stack fails: nothing is recorded, and the error quotes events.
    cloud
        .world
        .lock()
        .unwrap()
        .failing_stacks
        .insert(stack_name("prod-west"));
    let report = apply(&plan, exec(&cloud), 1, |_, _| {}).await;
    match &report.outcomes[&addr] {
        Outcome::Failed(e) => assert!(e.contains("CREATE_FAILED"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(!store
        .lock()
        .unwrap()
        .load()
        .unwrap()
        .objects
        .contains_key(&addr));

    // It succeeds: recorded, with the deployed template.
    cloud.world.lock().unwrap().failing_stacks.clear();
    let report = apply(&plan, exec(&cloud), 1, |_, _| {}).await;
    assert_eq!(report.outcomes[&addr], Outcome::Done);
    let st = store.lock().unwrap().load().unwrap();
    let rec: CloneState = serde_json::from_value(st.objects[&addr].value()).unwrap();
    assert_eq!(rec.stack_name, "lifeboat-vpc-clone-prod-west");
    assert_eq!(rec.account, "vault");
}

#[tokio::test]
async fn an_edited_stack_name_is_refused_before_any_call() {
    let cloud = FakeCloud::new(10);
    let good = desired_state(0, &["10.0.0.0/16"]);
    for bad in [
        "",
        "x",
        "lifeboat-vpc-clone-",
        "lifeboat-vpc-",
        "someone-elses-stack",
        "lifeboat-vpc-clone-a_b",
        "lifeboat-vpc-clone-é",
        "1lifeboat-vpc-clone-a",
        &format!("lifeboat-vpc-clone-{}", "a".repeat(110)),
    ] {
        let s = CloneState {
            stack_name: bad.to_string(),
            ..good.clone()
        };
        let err = deploy(&cloud, &vault(), &s, quick()).await.unwrap_err();
        assert!(
            matches!(err, CloneError::BadStackName { .. }),
            "{bad:?}: {err}"
        );
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        let err = destroy(&cloud, &vault(), &s, quick()).await.unwrap_err();
        assert!(
            matches!(err, CloneError::BadStackName { .. }),
            "{bad:?}: {err}"
        );
    }
    assert!(cloud.world.lock().unwrap().calls.is_empty());
    assert_eq!(stack_name_problem(&stack_name(&"a".repeat(109))), None);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_past_any_instant_waits_instead_of_overflowing() {
    let cloud = FakeCloud::new(10);
    cloud.world.lock().unwrap().stack_polls = 2;
    let s = CloneState {
        timeout_seconds: u64::MAX,
        ..desired_state(0, &["10.0.0.0/16"])
    };
    deploy(&cloud, &vault(), &s, Wait::for_state(&s))
        .await
        .unwrap();
}
