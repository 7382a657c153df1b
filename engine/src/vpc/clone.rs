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
use crate::cloud::{
    gone_is_done, Cloud, CloudError, CloudResult, StackEvent, Stacks, TemplateSource,
};
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

/// The longest stack name CloudFormation takes.
const STACK_NAME_MAX: usize = 128;

/// Why `name` (read from the state or a saved plan, which may have been
/// edited) cannot be a clone's stack: CloudFormation names start with a
/// letter, hold only letters, digits and hyphens, and have at most 128
/// characters; a clone's stack also carries [`STACK_PREFIX`] and a name
/// after it, so that no edit can point Lifeboat at another stack.
pub fn stack_name_problem(name: &str) -> Option<String> {
    let why = if name.len() > STACK_NAME_MAX {
        format!("is longer than {STACK_NAME_MAX} characters")
    } else if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        "does not start with a letter".to_string()
    } else if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        "holds characters other than letters, digits and hyphens".to_string()
    } else if name.len() <= STACK_PREFIX.len() || !name.starts_with(STACK_PREFIX) {
        format!("is not {STACK_PREFIX}NAME")
    } else {
        return None;
    };
    Some(why)
}

/// Refuses a clone state whose stack name is not one Lifeboat gives, before
/// any call is made with it.
fn checked_stack(s: &CloneState) -> Result<&str, CloneError> {
    match stack_name_problem(&s.stack_name) {
        None => Ok(&s.stack_name),
        Some(why) => Err(CloneError::BadStackName {
            stack: s.stack_name.clone(),
            why,
        }),
    }
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

/// A clone's stack as errors name it: `stack NAME in account A (REGION)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackAt {
    pub stack: String,
    pub account: String,
    pub region: String,
}

impl StackAt {
    pub fn of(s: &CloneState) -> StackAt {
        StackAt {
            stack: s.stack_name.clone(),
            account: s.account.clone(),
            region: s.region.clone(),
        }
    }
}

impl std::fmt::Display for StackAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stack {} in account {} ({})",
            self.stack, self.account, self.region
        )
    }
}

/// Why a clone cannot be planned, deployed or destroyed. A failed AWS call
/// keeps its [`CloudError`], kind included.
#[derive(Debug, thiserror::Error)]
pub enum CloneError {
    #[error(transparent)]
    Cloud(#[from] CloudError),
    /// The capture cannot be turned into a template for the destination.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// Found when planning: the template does not fit inline and the block
    /// names no bucket to upload it to.
    #[error("its template is {bytes} bytes, over CloudFormation's inline limit of {TEMPLATE_BODY_LIMIT} bytes; set template_bucket to upload it to S3")]
    NeedsBucket { bytes: usize },
    /// Found when applying a recorded clone whose bucket was removed.
    #[error("the template of stack {stack} is {bytes} bytes, over the inline limit of {TEMPLATE_BODY_LIMIT}, and no template_bucket is set")]
    NoBucket { stack: String, bytes: usize },
    /// Somebody else's operation on the stack is in progress.
    #[error("{at} is busy ({status}); apply again when it settles")]
    Busy { at: StackAt, status: String },
    #[error("{at} disappeared while waiting for {want}")]
    Disappeared { at: StackAt, want: &'static str },
    /// The recorded stack name is not one Lifeboat gives a clone (a state or
    /// plan edited by hand): nothing is called with it.
    #[error("the recorded stack name {stack:?} {why}; a clone's stack is named {STACK_PREFIX}NAME with letters, digits and hyphens, at most 128 characters")]
    BadStackName { stack: String, why: String },
    #[error("timed out after {}s waiting for {at} to reach {want} (still {status}); {events}", .waited.as_secs())]
    TimedOut {
        at: StackAt,
        want: &'static str,
        waited: Duration,
        status: String,
        /// The stack's recent events, or its failures.
        events: String,
    },
    /// The stack settled in another state than the one waited for (a
    /// rollback, a failed delete).
    #[error("{at} ended in {status}{} instead of {want}; {events}", in_parens(.reason))]
    Ended {
        at: StackAt,
        status: String,
        reason: Option<String>,
        want: &'static str,
        events: String,
    },
}

fn in_parens(reason: &Option<String>) -> String {
    reason
        .as_deref()
        .filter(|r| !r.is_empty())
        .map(|r| format!(" ({r})"))
        .unwrap_or_default()
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
) -> Result<CloneState, CloneError> {
    let v = &input.source.version;
    let opts = ExportOptions {
        source_region: v.region.clone(),
        captured_at: v.captured_at,
        to_region: c.to_region.clone(),
        to_zones: input.to_zones.clone(),
        name: c.clone_name.clone(),
    };
    let exported = export(&input.source.document, &opts)?;
    let template = exported.text();
    if template.len() > TEMPLATE_BODY_LIMIT && c.template_bucket.is_none() {
        return Err(CloneError::NeedsBucket {
            bytes: template.len(),
        });
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
        match clone_change(name, c, state, inputs, export) {
            Ok(Some(change)) => out.push(change),
            Ok(None) => {}
            Err(warning) => warnings.push(warning),
        }
    }
    out.extend(removed_clones(config, state));
    out
}

/// The change for one configured clone: `None` when it is deployed as
/// wanted, the warning when it cannot be planned.
fn clone_change(
    name: &str,
    c: &VpcClone,
    state: &state::Snapshot,
    inputs: &BTreeMap<String, CloneInput>,
    export: &dyn Fn(&CaptureDoc, &ExportOptions) -> Result<Export, ExportError>,
) -> Result<Option<Change>, String> {
    let addr = Address::vpc_clone(name);
    // A recorded clone that does not decode is not planned at all: read as
    // absent, it would be planned as a new stack beside the one it names.
    let prior = state
        .object::<CloneState>(&addr)
        .map_err(|e| format!("vpc_clone.{name} is not planned: {e}"))?;
    let Some(input) = inputs.get(name) else {
        let when = match c.at {
            Some(t) => format!("at or before {}", short_time(t)),
            None => "yet".to_string(),
        };
        return Err(format!(
            "vpc_clone.{name}: vpc_capture.{} has no version of {} {when}; run `lifeboat vpc capture {}` first",
            c.capture, c.vpc, c.capture
        ));
    };
    let want = desired(c, input, export)
        .map_err(|why| format!("vpc_clone.{name} cannot be planned: {why}"))?;
    let deps = vec![Address::account(&want.account)];
    let change = match prior {
        None => Change::new(addr, Action::Create, Effect::Control)
            .reason(format!(
                "{}; stack {} in {} ({})",
                origin(&want),
                want.stack_name,
                want.account,
                want.region
            ))
            .after(Some(to_value(&want))),
        Some(p) if p == want => return Ok(None),
        Some(p) => {
            let (action, reason) = what_changed(&p, &want);
            Change::new(addr, action, Effect::Control)
                .reason(reason)
                .before(Some(to_value(&p)))
                .after(Some(to_value(&want)))
        }
    };
    Ok(Some(change.depends_on(deps)))
}

/// `N resources from VPC captured T`: what a clone is built from.
fn origin(want: &CloneState) -> String {
    format!(
        "{} resources from {} captured {}",
        want.resources(),
        want.vpc,
        short_time(want.captured_at)
    )
}

/// How a deployed clone changes, and why: a moved destination is a new
/// stack (replace); otherwise the stack is updated, naming what differs.
fn what_changed(p: &CloneState, want: &CloneState) -> (Action, String) {
    if p.account != want.account || p.region != want.region {
        return (
            Action::Replace,
            format!(
                "destination {} ({}) -> {} ({}): a new stack; the old stack is deleted and its resources are RETAINED",
                p.account, p.region, want.account, want.region
            ),
        );
    }
    if p.template_hash != want.template_hash {
        return (
            Action::Update,
            format!(
                "template changed: {} (deployed: captured {})",
                origin(want),
                short_time(p.captured_at)
            ),
        );
    }
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
}

/// Clones removed from the configuration: their stacks go, their
/// resources stay.
fn removed_clones(config: &Config, state: &state::Snapshot) -> Vec<Change> {
    let mut out = Vec::new();
    for (addr, v) in &state.objects {
        let Address::VpcClone { name } = addr else {
            continue;
        };
        if config.vpc_clones.contains_key(name) {
            continue;
        }
        let v = v.value();
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
    at: &StackAt,
    want: &'static str,
    wait: Wait,
) -> Result<(), CloneError> {
    let name = at.stack.as_str();
    // A timeout read from an edited state may be past what an instant holds:
    // then the wait has no deadline a clock could reach anyway.
    let start = tokio::time::Instant::now();
    let deadline = start
        .checked_add(wait.timeout)
        .unwrap_or_else(|| start + Duration::from_secs(100 * 365 * 86_400));
    loop {
        match stacks.describe_stack(name).await? {
            None if want == "DELETE_COMPLETE" => return Ok(()),
            None => {
                return Err(CloneError::Disappeared {
                    at: at.clone(),
                    want,
                })
            }
            Some(s) if s.status == want => return Ok(()),
            Some(s) if s.status.ends_with("_IN_PROGRESS") => {
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    return Err(CloneError::TimedOut {
                        at: at.clone(),
                        want,
                        waited: wait.timeout,
                        status: s.status,
                        events: events_text(stacks, name).await,
                    });
                }
                tokio::time::sleep(wait.poll.min(deadline - now)).await;
            }
            Some(s) => {
                return Err(CloneError::Ended {
                    at: at.clone(),
                    status: s.status,
                    reason: s.reason,
                    want,
                    events: events_text(stacks, name).await,
                });
            }
        }
    }
}

/// Where CloudFormation reads the clone's template from: inline when it
/// fits, else uploaded to `template_bucket` under a key of its hash.
async fn template_source(
    cloud: &dyn Cloud,
    account: &Account,
    s: &CloneState,
) -> Result<TemplateSource, CloneError> {
    if s.template.len() <= TEMPLATE_BODY_LIMIT {
        return Ok(TemplateSource::Body(s.template.clone()));
    }
    let Some(bucket) = &s.template_bucket else {
        return Err(CloneError::NoBucket {
            stack: s.stack_name.clone(),
            bytes: s.template.len(),
        });
    };
    let key = format!("lifeboat/{}/{}.json", s.stack_name, s.template_hash);
    let objects = cloud.objects(account, &s.region).await?;
    let url = objects
        .put_object(bucket, &key, s.template.clone().into_bytes())
        .await?;
    Ok(TemplateSource::Url(url))
}

/// Creates or updates the clone's stack and waits for it. Uploads the
/// template to `template_bucket` when it is over the inline limit. An
/// update with nothing to change succeeds at once.
pub async fn deploy(
    cloud: &dyn Cloud,
    account: &Account,
    s: &CloneState,
    wait: Wait,
) -> Result<(), CloneError> {
    let name = checked_stack(s)?;
    let at = StackAt::of(s);
    let stacks = cloud.stacks(account, &s.region).await?;
    let template = template_source(cloud, account, s).await?;
    let existing = stacks.describe_stack(name).await?;
    let create = match existing.as_ref().map(|i| i.status.as_str()) {
        None | Some("DELETE_COMPLETE") => true,
        // A stack whose creation failed cannot be updated: remove it first.
        Some("ROLLBACK_COMPLETE") => {
            stacks.delete_stack(name).await?;
            wait_for(&*stacks, &at, "DELETE_COMPLETE", wait).await?;
            true
        }
        Some(st) if st.ends_with("_IN_PROGRESS") => {
            return Err(CloneError::Busy {
                at,
                status: st.to_string(),
            })
        }
        Some(_) => false,
    };
    if create {
        let tags = BTreeMap::from([
            (
                TAG_CLONE.to_string(),
                name.strip_prefix(STACK_PREFIX).unwrap_or(name).to_string(),
            ),
            (TAG_SOURCE_VPC.to_string(), s.vpc.clone()),
        ]);
        stacks.create_stack(name, &template, &tags).await?;
        wait_for(&*stacks, &at, "CREATE_COMPLETE", wait).await
    } else if stacks.update_stack(name, &template).await? {
        wait_for(&*stacks, &at, "UPDATE_COMPLETE", wait).await
    } else {
        Ok(())
    }
}

/// Deletes the clone's stack and waits until it is gone. The template's
/// resources are all `Retain`, so the network stays. A stack that is gone
/// already counts as deleted: an interrupted apply may have deleted it.
pub async fn destroy(
    cloud: &dyn Cloud,
    account: &Account,
    s: &CloneState,
    wait: Wait,
) -> Result<(), CloneError> {
    let name = checked_stack(s)?;
    let stacks = cloud.stacks(account, &s.region).await?;
    gone_is_done(stacks.delete_stack(name).await)?;
    wait_for(&*stacks, &StackAt::of(s), "DELETE_COMPLETE", wait).await
}

#[cfg(test)]
mod tests;
