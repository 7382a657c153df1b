//! VPC clones: a `vpc_clone` block becomes a CloudFormation stack, in the
//! destination account and region, built from one captured version of a VPC
//! by [`crate::vpc::export::export`].
//!
//! Planning compares the template that the chosen capture version gives now
//! with the template recorded in state when the stack was last deployed;
//! applying creates, updates or deletes the stack and waits for it. Every
//! resource of an exported template is `DeletionPolicy: Retain`, so deleting
//! a clone's stack leaves the cloned network in place.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use lifeboat_schema::{Account, Config, VpcClone};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::addr::Address;
use crate::cloud::{Cloud, CloudError, CloudResult, StackEvent, Stacks, TemplateSource};
use crate::plan::{Action, Change, Effect};
use crate::state::{self, Store, VpcVersionRecord};
use crate::vpc::capture::{hex_sha256, version_at, CaptureDoc};
use crate::vpc::export::{Export, ExportError, ExportOptions, TEMPLATE_BODY_LIMIT};

/// Every clone's stack is named `lifeboat-vpc-clone-NAME`.
pub const STACK_PREFIX: &str = "lifeboat-vpc-clone-";

/// Tags on every clone stack (CloudFormation propagates them to resources).
pub const TAG_CLONE: &str = "lifeboat:vpc-clone";
pub const TAG_SOURCE_VPC: &str = "lifeboat:source-vpc";

pub fn stack_name(clone: &str) -> String {
    format!("{STACK_PREFIX}{clone}")
}

/// The capture version a clone is built from, with its document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloneSource {
    pub version: VpcVersionRecord,
    pub document: CaptureDoc,
}

/// What planning a clone needs beyond configuration and state: the chosen
/// version and the destination region's availability zones. A clone whose
/// capture has no version (yet, or at `at`) has no entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloneInput {
    pub source: CloneSource,
    pub to_zones: Vec<String>,
}

/// The state value of `vpc_clone.NAME`: what was deployed, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloneState {
    pub stack_name: String,
    pub account: String,
    pub region: String,
    pub capture: String,
    pub vpc: String,
    pub source_region: String,
    pub version_id: i64,
    pub captured_at: DateTime<Utc>,
    /// SHA-256 of `template`.
    pub template_hash: String,
    /// The template text, exactly as deployed.
    pub template: String,
    pub resource_counts: BTreeMap<String, usize>,
    #[serde(default)]
    pub template_bucket: Option<String>,
    pub timeout_seconds: u64,
}

impl CloneState {
    pub fn resources(&self) -> usize {
        self.resource_counts.values().sum()
    }
}

/// Reads, for every clone in the configuration, the version it is built
/// from (latest, or current at `at`) and that version's document.
pub fn catalog(
    store: &Store,
    config: &Config,
) -> state::StateResult<BTreeMap<String, CloneSource>> {
    let mut out = BTreeMap::new();
    if config.vpc_clones.is_empty() {
        return Ok(out);
    }
    let versions = store.vpc_versions()?;
    for (name, c) in &config.vpc_clones {
        let mine: Vec<VpcVersionRecord> = versions
            .iter()
            .filter(|v| v.capture == c.capture && v.vpc_id == c.vpc)
            .cloned()
            .collect();
        let Some(v) = version_at(&mine, c.at) else {
            continue;
        };
        let text = store.vpc_document(v.id)?;
        let document = serde_json::from_str(&text).map_err(|e| state::StateError::Corrupt {
            path: store.path().to_path_buf(),
            message: format!("VPC capture version {} of {}: {e}", v.id, v.vpc_id),
        })?;
        out.insert(
            name.clone(),
            CloneSource {
                version: v.clone(),
                document,
            },
        );
    }
    Ok(out)
}

/// Adds the destination zones to each clone's source: one
/// DescribeAvailabilityZones per (account, region).
pub async fn observe(
    cloud: Arc<dyn Cloud>,
    config: &Config,
    accounts: &BTreeMap<String, Account>,
    sources: BTreeMap<String, CloneSource>,
) -> CloudResult<BTreeMap<String, CloneInput>> {
    let mut zones: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (name, source) in sources {
        let Some(c) = config.vpc_clones.get(&name) else {
            continue;
        };
        let Some(acct) = accounts.get(&c.to_account) else {
            continue;
        };
        let key = (c.to_account.clone(), c.to_region.clone());
        if !zones.contains_key(&key) {
            let net = cloud.network(acct, &c.to_region).await?;
            let mut z = net.availability_zones().await.map_err(|e| CloudError {
                account: acct.name.clone(),
                region: c.to_region.clone(),
                ..e
            })?;
            z.sort();
            zones.insert(key.clone(), z);
        }
        out.insert(
            name,
            CloneInput {
                source,
                to_zones: zones[&key].clone(),
            },
        );
    }
    Ok(out)
}

fn short_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The desired state of one clone, or why it cannot be planned.
pub fn desired(
    c: &VpcClone,
    input: &CloneInput,
    export: &dyn Fn(&CaptureDoc, &ExportOptions) -> Result<Export, ExportError>,
) -> Result<CloneState, String> {
    let v = &input.source.version;
    let opts = ExportOptions {
        source_region: v.region.clone(),
        captured_at: v.captured_at,
        to_region: c.to_region.clone(),
        to_zones: input.to_zones.clone(),
        name: c.clone_name.clone(),
    };
    let exported = export(&input.source.document, &opts).map_err(|e| e.to_string())?;
    let template = exported.text();
    if template.len() > TEMPLATE_BODY_LIMIT && c.template_bucket.is_none() {
        return Err(format!(
            "its template is {} bytes, over CloudFormation's inline limit of {TEMPLATE_BODY_LIMIT} bytes; set template_bucket to upload it to S3",
            template.len()
        ));
    }
    Ok(CloneState {
        stack_name: stack_name(&c.name),
        account: c.to_account.clone(),
        region: c.to_region.clone(),
        capture: c.capture.clone(),
        vpc: c.vpc.clone(),
        source_region: v.region.clone(),
        version_id: v.id,
        captured_at: v.captured_at,
        template_hash: hex_sha256(template.as_bytes()),
        template,
        resource_counts: exported.resource_counts,
        template_bucket: c.template_bucket.clone(),
        timeout_seconds: c.timeout_seconds,
    })
}

fn to_value(s: &CloneState) -> Value {
    serde_json::to_value(s).expect("clone state serialises")
}

/// The changes for every clone: create, update (template or settings
/// changed), replace (destination moved), delete (block removed). Notes
/// that stop a clone from being planned go to `warnings`.
pub fn clone_changes(
    config: &Config,
    state: &state::Snapshot,
    inputs: &BTreeMap<String, CloneInput>,
    export: &dyn Fn(&CaptureDoc, &ExportOptions) -> Result<Export, ExportError>,
    warnings: &mut Vec<String>,
) -> Vec<Change> {
    let mut out = Vec::new();
    for (name, c) in &config.vpc_clones {
        let addr = Address::vpc_clone(name);
        let prior = state
            .objects
            .get(&addr)
            .and_then(|v| serde_json::from_value::<CloneState>(v.clone()).ok());
        let Some(input) = inputs.get(name) else {
            let when = match c.at {
                Some(t) => format!("at or before {}", short_time(t)),
                None => "yet".to_string(),
            };
            warnings.push(format!(
                "vpc_clone.{name}: vpc_capture.{} has no version of {} {when}; run `lifeboat vpc capture {}` first",
                c.capture, c.vpc, c.capture
            ));
            continue;
        };
        let want = match desired(c, input, export) {
            Ok(w) => w,
            Err(why) => {
                warnings.push(format!("vpc_clone.{name} cannot be planned: {why}"));
                continue;
            }
        };
        let deps = vec![Address::account(&want.account)];
        let from = format!(
            "{} resources from {} captured {}",
            want.resources(),
            want.vpc,
            short_time(want.captured_at)
        );
        match prior {
            None => out.push(
                Change::new(addr, Action::Create, Effect::Control)
                    .reason(format!(
                        "{from}; stack {} in {} ({})",
                        want.stack_name, want.account, want.region
                    ))
                    .after(Some(to_value(&want)))
                    .depends_on(deps),
            ),
            Some(p) if p == want => {}
            Some(p) => {
                let moved = p.account != want.account || p.region != want.region;
                let (action, reason) = if moved {
                    (
                        Action::Replace,
                        format!(
                            "destination {} ({}) -> {} ({}): a new stack; the old stack is deleted and its resources are RETAINED",
                            p.account, p.region, want.account, want.region
                        ),
                    )
                } else if p.template_hash != want.template_hash {
                    (
                        Action::Update,
                        format!(
                            "template changed: {from} (deployed: captured {})",
                            short_time(p.captured_at)
                        ),
                    )
                } else {
                    let mut what = Vec::new();
                    if p.template_bucket != want.template_bucket {
                        what.push("template_bucket");
                    }
                    if p.timeout_seconds != want.timeout_seconds {
                        what.push("timeout");
                    }
                    if p.version_id != want.version_id || p.captured_at != want.captured_at {
                        what.push("capture version (same template)");
                    }
                    if p.capture != want.capture || p.vpc != want.vpc {
                        what.push("source");
                    }
                    if what.is_empty() {
                        what.push("settings");
                    }
                    (Action::Update, format!("{} changed", what.join(", ")))
                };
                out.push(
                    Change::new(addr, action, Effect::Control)
                        .reason(reason)
                        .before(Some(to_value(&p)))
                        .after(Some(to_value(&want)))
                        .depends_on(deps),
                );
            }
        }
    }
    // Clones removed from the configuration: their stacks go, their
    // resources stay.
    for (addr, v) in &state.objects {
        let Address::VpcClone { name } = addr else {
            continue;
        };
        if config.vpc_clones.contains_key(name) {
            continue;
        }
        let stack = v
            .get("stack_name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| stack_name(name));
        out.push(
            Change::new(addr.clone(), Action::Delete, Effect::Control)
                .reason(format!(
                    "removed from configuration: stack {stack} is deleted; the cloned network's resources are RETAINED (DeletionPolicy Retain)"
                ))
                .before(Some(v.clone())),
        );
    }
    out
}

// ----------------------------------------------------------------------
// Apply
// ----------------------------------------------------------------------

/// How long to wait for a stack, and how often to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    pub timeout: Duration,
    pub poll: Duration,
}

impl Wait {
    /// The wait for a deployed clone: its `timeout`, polling every 5 seconds
    /// (the first look is immediate).
    pub fn for_state(s: &CloneState) -> Wait {
        Wait {
            timeout: Duration::from_secs(s.timeout_seconds),
            poll: Duration::from_secs(5),
        }
    }
}

/// How many recent events an error quotes.
const EVENTS_SHOWN: usize = 5;

fn show_events(events: &[StackEvent]) -> String {
    let failed: Vec<&StackEvent> = events
        .iter()
        .filter(|e| e.status.ends_with("_FAILED"))
        .take(EVENTS_SHOWN)
        .collect();
    let (title, list): (&str, Vec<&StackEvent>) = if failed.is_empty() {
        ("recent events", events.iter().take(EVENTS_SHOWN).collect())
    } else {
        ("failures", failed)
    };
    if list.is_empty() {
        return "no stack events".into();
    }
    let lines: Vec<String> = list
        .iter()
        .map(|e| {
            let mut s = format!("{} {} {}", e.resource_type, e.logical_id, e.status);
            if let Some(r) = e.reason.as_deref().filter(|r| !r.is_empty()) {
                s.push_str(": ");
                s.push_str(r);
            }
            s
        })
        .collect();
    format!("{title}: {}", lines.join("; "))
}

async fn events_text(stacks: &dyn Stacks, name: &str) -> String {
    match stacks.stack_events(name).await {
        Ok(ev) => show_events(&ev),
        Err(e) => format!("stack events unavailable: {e}"),
    }
}

/// Polls until the stack reaches `want` (a missing stack counts as
/// `DELETE_COMPLETE`), fails, or the wait times out.
pub async fn wait_for(
    stacks: &dyn Stacks,
    name: &str,
    where_: &str,
    want: &str,
    wait: Wait,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + wait.timeout;
    loop {
        let info = stacks
            .describe_stack(name)
            .await
            .map_err(|e| e.to_string())?;
        match info {
            None if want == "DELETE_COMPLETE" => return Ok(()),
            None => {
                return Err(format!(
                    "stack {name} {where_} disappeared while waiting for {want}"
                ))
            }
            Some(s) if s.status == want => return Ok(()),
            Some(s) if s.status.ends_with("_IN_PROGRESS") => {
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    return Err(format!(
                        "timed out after {}s waiting for stack {name} {where_} to reach {want} (still {}); {}",
                        wait.timeout.as_secs(),
                        s.status,
                        events_text(stacks, name).await
                    ));
                }
                tokio::time::sleep(wait.poll.min(deadline - now)).await;
            }
            Some(s) => {
                let why = s
                    .reason
                    .as_deref()
                    .filter(|r| !r.is_empty())
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                return Err(format!(
                    "stack {name} {where_} ended in {}{why} instead of {want}; {}",
                    s.status,
                    events_text(stacks, name).await
                ));
            }
        }
    }
}

/// Creates or updates the clone's stack and waits for it. Uploads the
/// template to `template_bucket` when it is over the inline limit. An
/// update with nothing to change succeeds at once.
pub async fn deploy(
    cloud: &dyn Cloud,
    account: &Account,
    s: &CloneState,
    wait: Wait,
) -> Result<(), String> {
    let where_ = format!("in account {} ({})", s.account, s.region);
    let stacks = cloud
        .stacks(account, &s.region)
        .await
        .map_err(|e| e.to_string())?;
    let template = if s.template.len() <= TEMPLATE_BODY_LIMIT {
        TemplateSource::Body(s.template.clone())
    } else {
        let Some(bucket) = &s.template_bucket else {
            return Err(format!(
                "the template of stack {} is {} bytes, over the inline limit of {TEMPLATE_BODY_LIMIT}, and no template_bucket is set",
                s.stack_name,
                s.template.len()
            ));
        };
        let key = format!("lifeboat/{}/{}.json", s.stack_name, s.template_hash);
        let objects = cloud
            .objects(account, &s.region)
            .await
            .map_err(|e| e.to_string())?;
        let url = objects
            .put_object(bucket, &key, s.template.clone().into_bytes())
            .await
            .map_err(|e| e.to_string())?;
        TemplateSource::Url(url)
    };
    let name = s.stack_name.as_str();
    let existing = stacks
        .describe_stack(name)
        .await
        .map_err(|e| e.to_string())?;
    let create = match existing.as_ref().map(|i| i.status.as_str()) {
        None | Some("DELETE_COMPLETE") => true,
        // A stack whose creation failed cannot be updated: remove it first.
        Some("ROLLBACK_COMPLETE") => {
            stacks.delete_stack(name).await.map_err(|e| e.to_string())?;
            wait_for(&*stacks, name, &where_, "DELETE_COMPLETE", wait).await?;
            true
        }
        Some(st) if st.ends_with("_IN_PROGRESS") => {
            return Err(format!(
                "stack {name} {where_} is busy ({st}); apply again when it settles"
            ))
        }
        Some(_) => false,
    };
    if create {
        let tags = BTreeMap::from([
            (
                TAG_CLONE.to_string(),
                s.stack_name[STACK_PREFIX.len()..].to_string(),
            ),
            (TAG_SOURCE_VPC.to_string(), s.vpc.clone()),
        ]);
        stacks
            .create_stack(name, &template, &tags)
            .await
            .map_err(|e| e.to_string())?;
        wait_for(&*stacks, name, &where_, "CREATE_COMPLETE", wait).await
    } else {
        let changed = stacks
            .update_stack(name, &template)
            .await
            .map_err(|e| e.to_string())?;
        if changed {
            wait_for(&*stacks, name, &where_, "UPDATE_COMPLETE", wait).await
        } else {
            Ok(())
        }
    }
}

/// Deletes the clone's stack and waits until it is gone. The template's
/// resources are all `Retain`, so the network stays.
pub async fn destroy(
    cloud: &dyn Cloud,
    account: &Account,
    s: &CloneState,
    wait: Wait,
) -> Result<(), String> {
    let where_ = format!("in account {} ({})", s.account, s.region);
    let stacks = cloud
        .stacks(account, &s.region)
        .await
        .map_err(|e| e.to_string())?;
    stacks
        .delete_stack(&s.stack_name)
        .await
        .map_err(|e| e.to_string())?;
    wait_for(&*stacks, &s.stack_name, &where_, "DELETE_COMPLETE", wait).await
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn fake_export(
        pad: usize,
    ) -> impl Fn(&CaptureDoc, &ExportOptions) -> Result<Export, ExportError> {
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
        s.objects
            .insert(change.address.clone(), change.after.clone().unwrap());
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
            text.lines()
                .any(|l| l.trim_start().starts_with('+')
                    && l.contains("\"CidrBlock\": \"10.1.0.0/16\"")),
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
        assert!(err.contains("no template_bucket"), "{err}");
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
        let rec: CloneState = serde_json::from_value(st.objects[&addr].clone()).unwrap();
        assert_eq!(rec.stack_name, "lifeboat-vpc-clone-prod-west");
        assert_eq!(rec.account, "vault");
    }
}
