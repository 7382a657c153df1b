//! The planner: observes live AWS for what the configuration and state name,
//! then diffs desired (configuration), prior (state and catalog) and actual
//! (the observation) into a [`Plan`].
//!
//! Observation never mutates anything, and its cost grows with the number of
//! (account, region, query) pages, not with the number of resources: ids and
//! tag selectors go into server-side filters.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lifeboat_schema::{Account, AutoRemove, Config, TagSelector};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::addr::Address;
use crate::cloud::{
    collect_pages, Cloud, CloudError, Instance, Query, Snapshot, SnapshotQuery, Volume,
};
use crate::plan::{Action, Change, Effect, Plan};
use crate::retention;
use crate::state::model::{selector_matches, PolicyState, Source, TargetKind, TargetState};
use crate::state::{self, BackupRecord, BackupStatus, StateError, StateResult};

pub use crate::backup::names::{TAG_BACKUP_ID, TAG_POLICY, TAG_TARGET};

/// EC2 accepts at most 200 values in one filter.
const FILTER_CHUNK: usize = 200;

/// What live AWS has, for the ids, selectors and policies that matter.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Observation {
    pub instances: BTreeMap<String, Instance>,
    pub volumes: BTreeMap<String, Volume>,
    /// Snapshots tagged by Lifeboat, and catalog snapshots found by id.
    pub snapshots: BTreeMap<String, Snapshot>,
    /// For each `vpc_clone`: the capture version it is built from and the
    /// destination's zones ([`crate::vpc::clone::observe`]).
    pub clones: BTreeMap<String, crate::vpc::clone::CloneInput>,
}

/// The accounts the engine can act in: those in state (so a removed account's
/// backups can still be cleaned up) overlaid with the configuration's.
pub fn known_accounts(
    config: &Config,
    state: &state::Snapshot,
) -> StateResult<BTreeMap<String, Account>> {
    let mut out = state.accounts()?;
    for (name, a) in &config.accounts {
        out.insert(name.clone(), a.clone());
    }
    Ok(out)
}

/// Why observation failed: AWS refused a list call, or state holds an object
/// that does not decode.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error(transparent)]
    State(#[from] StateError),
}

#[derive(Debug, Default, Clone)]
struct RegionWork {
    instance_ids: BTreeSet<String>,
    volume_ids: BTreeSet<String>,
    selectors: BTreeSet<TagSelector>,
    policies: BTreeSet<String>,
    catalog_snapshots: BTreeSet<String>,
}

/// Reads from AWS what the plan needs: one set of filtered, paged list calls
/// per (account, region), all regions concurrently.
pub async fn observe(
    cloud: Arc<dyn Cloud>,
    config: &Config,
    state: &state::Snapshot,
) -> Result<Observation, ObserveError> {
    let accounts = known_accounts(config, state)?;
    let mut work: BTreeMap<(String, String), RegionWork> = BTreeMap::new();
    for p in config.policies.values() {
        let Some(acct) = accounts.get(&p.account) else {
            continue;
        };
        for i in &p.instances {
            work.entry((p.account.clone(), i.region.clone()))
                .or_default()
                .instance_ids
                .insert(i.id.clone());
        }
        for v in &p.volumes {
            work.entry((p.account.clone(), v.region.clone()))
                .or_default()
                .volume_ids
                .insert(v.id.clone());
        }
        for r in &acct.regions {
            let w = work.entry((p.account.clone(), r.clone())).or_default();
            w.selectors.extend(p.selectors.iter().cloned());
            w.policies.insert(p.name.clone());
        }
    }
    for t in state.targets()?.values() {
        let w = work
            .entry((t.account.clone(), t.region.clone()))
            .or_default();
        match t.kind {
            TargetKind::Instance => w.instance_ids.insert(t.id.clone()),
            TargetKind::Volume => w.volume_ids.insert(t.id.clone()),
            // Databases are not observed: a missing one shows as a failed
            // create call in its backups.
            TargetKind::Rds | TargetKind::Aurora => false,
        };
    }
    for b in &state.backups {
        // Only plain EBS snapshots are checked: AMIs, their snapshots and DB
        // snapshots are deleted idempotently by retention.
        for s in b.snapshots.iter().filter(|s| is_plain_ebs(s)) {
            let w = work
                .entry((b.account.clone(), s.region.clone()))
                .or_default();
            w.policies.insert(b.policy.clone());
            w.catalog_snapshots.insert(s.id.clone());
        }
    }

    let mut jobs = tokio::task::JoinSet::new();
    for ((account, region), w) in work {
        let Some(acct) = accounts.get(&account).cloned() else {
            // Not seeing a catalog snapshot would read as "deleted outside
            // Lifeboat" and the catalog would forget it: refuse instead.
            if !w.catalog_snapshots.is_empty() {
                return Err(ObserveError::Cloud(CloudError {
                    kind: crate::cloud::ErrorKind::Invalid,
                    account: account.clone(),
                    region: region.clone(),
                    action: "lifeboat:observe".into(),
                    resource: None,
                    code: None,
                    message: format!(
                        "the catalog holds {} snapshot(s) in account {account}, which is neither configured nor in state; add the account back to the configuration",
                        w.catalog_snapshots.len()
                    ),
                }));
            }
            continue;
        };
        let cloud = cloud.clone();
        jobs.spawn(async move { observe_region(cloud, acct, region, w).await });
    }
    let mut obs = Observation::default();
    let mut first_err = None;
    while let Some(res) = jobs.join_next().await {
        match res {
            Ok(Ok(part)) => {
                obs.instances.extend(part.instances);
                obs.volumes.extend(part.volumes);
                obs.snapshots.extend(part.snapshots);
            }
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(join) => panic!("observation task failed: {join}"),
        }
    }
    match first_err {
        Some(e) => Err(e.into()),
        None => Ok(obs),
    }
}

async fn observe_region(
    cloud: Arc<dyn Cloud>,
    account: Account,
    region: String,
    w: RegionWork,
) -> Result<Observation, CloudError> {
    let ec2 = cloud.ec2(&account, &region).await?;
    let mut obs = Observation::default();
    for sel in &w.selectors {
        let q = Query {
            ids: vec![],
            tags: vec![(sel.tag.clone(), sel.value.iter().cloned().collect())],
        };
        for i in collect_pages(|t| ec2.instances_page(&q, t)).await? {
            obs.instances.insert(i.id.clone(), i);
        }
    }
    // Ids the selectors already returned need no second look.
    let ids: Vec<String> = w
        .instance_ids
        .into_iter()
        .filter(|id| !obs.instances.contains_key(id))
        .collect();
    for chunk in ids.chunks(FILTER_CHUNK) {
        let q = Query {
            ids: chunk.to_vec(),
            tags: vec![],
        };
        for i in collect_pages(|t| ec2.instances_page(&q, t)).await? {
            obs.instances.insert(i.id.clone(), i);
        }
    }
    let vids: Vec<String> = w.volume_ids.into_iter().collect();
    for chunk in vids.chunks(FILTER_CHUNK) {
        let q = Query {
            ids: chunk.to_vec(),
            tags: vec![],
        };
        for v in collect_pages(|t| ec2.volumes_page(&q, t)).await? {
            obs.volumes.insert(v.id.clone(), v);
        }
    }
    if !w.policies.is_empty() {
        let q = SnapshotQuery {
            ids: vec![],
            tags: vec![(TAG_POLICY.to_string(), w.policies.into_iter().collect())],
            unfinished_only: false,
        };
        for s in collect_pages(|t| ec2.snapshots_page(&q, t)).await? {
            obs.snapshots.insert(s.id.clone(), s);
        }
    }
    // A catalog snapshot whose tags were edited away is still ours: look the
    // rest up by id before calling it gone. Usually there are none.
    let missing: Vec<String> = w
        .catalog_snapshots
        .into_iter()
        .filter(|id| !obs.snapshots.contains_key(id))
        .collect();
    for chunk in missing.chunks(FILTER_CHUNK) {
        let q = SnapshotQuery {
            ids: chunk.to_vec(),
            tags: vec![],
            unfinished_only: false,
        };
        for s in collect_pages(|t| ec2.snapshots_page(&q, t)).await? {
            obs.snapshots.insert(s.id.clone(), s);
        }
    }
    Ok(obs)
}

/// SHA-256 of the typed configuration (sources positions excluded).
pub fn config_digest(config: &Config) -> String {
    let bytes = serde_json::to_vec(config).expect("configuration serialises");
    let d = Sha256::digest(&bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("state values serialise")
}

/// "generations 2 -> 1, enabled true -> false"; nested values are named only.
pub fn describe_update(before: &Value, after: &Value) -> String {
    let (Value::Object(b), Value::Object(a)) = (before, after) else {
        return "changed".into();
    };
    let keys: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    let mut parts = Vec::new();
    for k in keys {
        let (x, y) = (
            b.get(k).unwrap_or(&Value::Null),
            a.get(k).unwrap_or(&Value::Null),
        );
        if x == y {
            continue;
        }
        let scalar = |v: &Value| !v.is_array() && !v.is_object();
        if scalar(x) && scalar(y) {
            let show = |v: &Value| match v {
                Value::String(s) => s.clone(),
                Value::Null => "(none)".into(),
                other => other.to_string(),
            };
            parts.push(format!("{k} {} -> {}", show(x), show(y)));
        } else {
            parts.push(format!("{k} changed"));
        }
    }
    parts.join(", ")
}

struct Builder {
    changes: Vec<Change>,
}

impl Builder {
    /// Create, update or nothing, for a control object.
    fn upsert(
        &mut self,
        address: Address,
        before: Option<&Value>,
        after: Value,
        create_reason: Option<String>,
        depends_on: Vec<Address>,
    ) {
        match before {
            None => {
                let mut c = Change::new(address, Action::Create, Effect::Control)
                    .after(Some(after))
                    .depends_on(depends_on);
                c.reason = create_reason;
                self.changes.push(c)
            }
            Some(b) if *b != after => {
                let reason = describe_update(b, &after);
                self.changes.push(
                    Change::new(address, Action::Update, Effect::Control)
                        .reason(reason)
                        .before(Some(b.clone()))
                        .after(Some(after))
                        .depends_on(depends_on),
                )
            }
            Some(_) => {}
        }
    }
}

fn snapshot_before(b: &BackupRecord, s: &state::SnapshotRecord) -> Value {
    let mut v = json!({
        "policy": b.policy, "backup": b.id, "account": b.account, "region": s.region,
        "volume_id": s.volume_id, "target": s.target,
    });
    if !s.kind.is_ebs() {
        v["kind"] = json!(s.kind.as_str());
    }
    if let Some(image) = &s.image {
        v["image"] = json!(image);
    }
    v
}

/// An EBS snapshot that is not part of an AMI: the only kind of catalog
/// record the planner looks up in AWS.
fn is_plain_ebs(s: &state::SnapshotRecord) -> bool {
    s.kind.is_ebs() && s.image.is_none()
}

/// The AMIs retention keeps whatever the generations: for each target in
/// state with `mode = "initial_ami"`, its newest AMI in the catalog (the
/// instance's current one). It goes once a newer AMI replaces it (after
/// `ami_rotation` days), or once the target leaves the policy or changes mode.
/// Only the policies `keep_policy` accepts count (a removed policy keeps nothing).
pub fn kept_initial_amis(
    state: &state::Snapshot,
    keep_policy: impl Fn(&str) -> bool,
) -> StateResult<BTreeSet<String>> {
    let initial: BTreeSet<(String, String)> = state
        .targets()?
        .into_iter()
        .filter(|((p, _), t)| t.mode == lifeboat_schema::InstanceMode::InitialAmi && keep_policy(p))
        .map(|(k, _)| k)
        .collect();
    let mut newest: BTreeMap<(String, String), (DateTime<Utc>, String)> = BTreeMap::new();
    for b in &state.backups {
        if !matches!(b.status, BackupStatus::Success | BackupStatus::Partial) {
            continue;
        }
        for s in &b.snapshots {
            let key = (b.policy.clone(), s.target.clone());
            if s.kind != state::ArtifactKind::Image || !initial.contains(&key) {
                continue;
            }
            let e = newest.entry(key).or_insert((b.started, s.id.clone()));
            if b.started > e.0 {
                *e = (b.started, s.id.clone());
            }
        }
    }
    Ok(newest.into_values().map(|(_, id)| id).collect())
}

fn backup_before(b: &BackupRecord) -> Value {
    json!({
        "policy": b.policy, "id": b.id, "account": b.account, "started": b.started,
        "status": b.status, "snapshots": b.snapshots.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
    })
}

/// The changes that delete an expired backup: each snapshot (or, when AWS
/// no longer has it, a catalog-only read), then the backup record.
///
/// `exists` is asked about plain EBS snapshots only; the other records are
/// deleted idempotently. The AMIs in `kept` (see [`kept_initial_amis`]) and
/// their snapshots stay, and so does the backup record holding them. An
/// AMI's snapshots are deleted after the AMI is deregistered.
pub fn expiry_changes(
    b: &BackupRecord,
    reason: &str,
    exists: impl Fn(&str) -> bool,
    kept: &BTreeSet<String>,
) -> Vec<Change> {
    let mut out = Vec::new();
    let mut deps = Vec::new();
    let mut keeps_some = false;
    for s in &b.snapshots {
        let image = if s.kind == state::ArtifactKind::Image {
            Some(&s.id)
        } else {
            s.image.as_ref()
        };
        if image.is_some_and(|i| kept.contains(i)) {
            keeps_some = true;
            continue;
        }
        let saddr = s.address();
        let (action, effect, why) = if !is_plain_ebs(s) || exists(&s.id) {
            (Action::Delete, Effect::DeletesBackups, reason.to_string())
        } else {
            (
                Action::Read,
                Effect::Catalog,
                "deleted outside Lifeboat".to_string(),
            )
        };
        out.push(Change {
            address: saddr.clone(),
            action,
            effect,
            reason: Some(why),
            before: Some(snapshot_before(b, s)),
            after: None,
            depends_on: match &s.image {
                Some(ami) => vec![Address::Image { id: ami.clone() }],
                None => vec![],
            },
            alert: None,
        });
        deps.push(saddr);
    }
    if keeps_some {
        return out;
    }
    out.push(Change {
        address: b.address(),
        action: Action::Delete,
        effect: Effect::DeletesBackups,
        reason: Some(reason.to_string()),
        before: Some(backup_before(b)),
        after: None,
        depends_on: deps,
        alert: None,
    });
    out
}

/// Why a target that exists in state is gone from AWS, if it is.
fn gone_reason(t: &TargetState, obs: &Observation) -> Option<String> {
    match t.kind {
        TargetKind::Instance => match obs.instances.get(&t.id) {
            None => Some("target no longer exists".into()),
            Some(i) if i.state.is_gone() => Some("target terminated".into()),
            Some(_) => None,
        },
        TargetKind::Volume => match obs.volumes.get(&t.id) {
            None => Some("target volume no longer exists".into()),
            Some(v) if v.state == "deleting" || v.state == "deleted" => {
                Some("target volume deleted".into())
            }
            Some(_) => None,
        },
        TargetKind::Rds | TargetKind::Aurora => None,
    }
}

/// Diffs configuration, state and observation into a plan. Pure: the same
/// inputs give the same plan, byte for byte.
pub fn plan(
    config: &Config,
    state: &state::Snapshot,
    obs: &Observation,
    now: DateTime<Utc>,
) -> StateResult<Plan> {
    let mut bld = Builder {
        changes: Vec::new(),
    };
    let mut warnings = Vec::new();

    // Accounts.
    for (name, a) in &config.accounts {
        let addr = Address::account(name);
        bld.upsert(
            addr.clone(),
            state.objects.get(&addr),
            to_value(a),
            None,
            vec![],
        );
    }
    let prior_policies = state.policies()?;
    let prior_targets = state.targets()?;

    // Policies and their targets.
    for (name, p) in &config.policies {
        let addr = Address::policy(name);
        let desired = PolicyState::from(p);
        bld.upsert(
            addr.clone(),
            state.objects.get(&addr),
            to_value(&desired),
            None,
            vec![Address::account(&p.account)],
        );

        let mut want: BTreeMap<String, TargetState> = BTreeMap::new();
        for i in &p.instances {
            let t = TargetState {
                kind: TargetKind::Instance,
                id: i.id.clone(),
                account: p.account.clone(),
                region: i.region.clone(),
                source: Source::Listed,
                volumes: i.volumes,
                exclude_volumes: i.exclude_volumes.clone(),
                mode: i.mode,
                ami_rotation: (i.mode == lifeboat_schema::InstanceMode::InitialAmi)
                    .then_some(i.ami_rotation),
            };
            if let Some(why) = gone_reason(&t, obs) {
                if p.auto_remove_targets != AutoRemove::No {
                    warnings.push(format!(
                        "instance {} listed in policy.{name} is not a target: {why} (auto_remove_targets = {:?})",
                        i.id,
                        format!("{:?}", p.auto_remove_targets).to_lowercase()
                    ));
                    continue;
                }
            }
            want.insert(i.id.clone(), t);
        }
        for v in &p.volumes {
            let t = TargetState {
                kind: TargetKind::Volume,
                id: v.id.clone(),
                account: p.account.clone(),
                region: v.region.clone(),
                source: Source::Listed,
                volumes: Default::default(),
                exclude_volumes: vec![],
                mode: Default::default(),
                ami_rotation: None,
            };
            if let Some(why) = gone_reason(&t, obs) {
                if p.auto_remove_targets != AutoRemove::No {
                    warnings.push(format!(
                        "volume {} listed in policy.{name} is not a target: {why}",
                        v.id
                    ));
                    continue;
                }
            }
            want.insert(v.id.clone(), t);
        }
        for (kind, list) in [(TargetKind::Rds, &p.rds), (TargetKind::Aurora, &p.aurora)] {
            for db in list {
                want.insert(
                    db.id.clone(),
                    TargetState {
                        kind,
                        id: db.id.clone(),
                        account: p.account.clone(),
                        region: db.region.clone(),
                        source: Source::Listed,
                        volumes: Default::default(),
                        exclude_volumes: vec![],
                        mode: Default::default(),
                        ami_rotation: None,
                    },
                );
            }
        }
        let regions: BTreeSet<&String> = config
            .accounts
            .get(&p.account)
            .map(|a| a.regions.iter().collect())
            .unwrap_or_default();
        let mut sels = p.selectors.clone();
        sels.sort();
        for i in obs.instances.values() {
            if i.state.is_gone() || !regions.contains(&i.region) || want.contains_key(&i.id) {
                continue;
            }
            if let Some(sel) = sels.iter().find(|s| selector_matches(s, &i.tags)) {
                want.insert(
                    i.id.clone(),
                    TargetState {
                        kind: TargetKind::Instance,
                        id: i.id.clone(),
                        account: p.account.clone(),
                        region: i.region.clone(),
                        source: Source::Tag(sel.clone()),
                        volumes: Default::default(),
                        exclude_volumes: vec![],
                        mode: Default::default(),
                        ami_rotation: None,
                    },
                );
            }
        }
        // With auto_remove_targets = "no", a vanished target stays until the
        // operator removes it; its backups report it missing.
        if p.auto_remove_targets == AutoRemove::No {
            for ((pol, id), t) in &prior_targets {
                let listed = p.instances.iter().any(|i| &i.id == id)
                    || p.volumes.iter().any(|v| &v.id == id)
                    || p.rds.iter().chain(&p.aurora).any(|d| &d.id == id);
                let still_declared =
                    listed || matches!(t.source, Source::Tag(ref s) if sels.contains(s));
                if pol == name
                    && !want.contains_key(id)
                    && still_declared
                    && gone_reason(t, obs).is_some()
                {
                    want.insert(id.clone(), t.clone());
                }
            }
        }
        for (id, t) in &want {
            let taddr = Address::target(name, id);
            let reason = Some(t.source.to_string());
            bld.upsert(
                taddr.clone(),
                state.objects.get(&taddr),
                to_value(t),
                reason,
                vec![addr.clone()],
            );
        }
        for ((pol, id), t) in &prior_targets {
            if pol != name || want.contains_key(id) {
                continue;
            }
            let reason = match gone_reason(t, obs) {
                Some(why) => why,
                None => match &t.source {
                    Source::Tag(sel) if sels.contains(sel) => format!("no longer matches {sel}"),
                    _ => "removed from configuration".to_string(),
                },
            };
            let gone = gone_reason(t, obs).is_some();
            let mut c = Change {
                address: Address::target(name, id),
                action: Action::Delete,
                effect: Effect::Control,
                reason: Some(reason.clone()),
                before: state.objects.get(&Address::target(name, id)).cloned(),
                after: None,
                depends_on: vec![],
                alert: None,
            };
            if gone && p.auto_remove_targets == AutoRemove::Alert {
                c.alert = Some(format!(
                    "{} {id} removed from policy {name}: {reason}",
                    t.kind.noun()
                ));
                c.reason = Some(format!("{reason}; alert recorded"));
            }
            bld.changes.push(c);
        }
    }

    // Policies removed from the configuration: targets go, then the policy.
    for (name, prior) in &prior_policies {
        if config.policies.contains_key(name) {
            continue;
        }
        let addr = Address::policy(name);
        let mut deps = Vec::new();
        for (pol, id) in prior_targets.keys() {
            if pol == name {
                let taddr = Address::target(name, id);
                bld.changes.push(
                    Change::new(taddr.clone(), Action::Delete, Effect::Control)
                        .reason("policy removed from configuration")
                        .before(state.objects.get(&taddr).cloned()),
                );
                deps.push(taddr);
            }
        }
        for e in retention::orphaned(name, &state.backups) {
            deps.push(e.backup.address());
        }
        bld.changes.push(
            Change::new(addr.clone(), Action::Delete, Effect::Control)
                .reason("removed from configuration")
                .before(Some(to_value(prior)))
                .depends_on(deps),
        );
    }

    // Retention: what falls outside generations, previewed before it happens.
    // A successful backup that lost snapshots outside Lifeboat is no longer
    // whole and must not count as a generation, in this plan already.
    let accounts = known_accounts(config, state)?;
    let judged: Vec<BackupRecord> = state
        .backups
        .iter()
        .map(|b| {
            let damaged = b
                .snapshots
                .iter()
                .any(|s| is_plain_ebs(s) && !obs.snapshots.contains_key(&s.id));
            let mut b = b.clone();
            if damaged && b.status == BackupStatus::Success {
                b.status = BackupStatus::Partial;
            }
            b
        })
        .collect();
    let mut expiring: BTreeMap<Address, String> = BTreeMap::new();
    for (name, p) in &config.policies {
        for e in retention::expired(name, &judged, p.generations) {
            expiring.insert(e.backup.address(), e.reason);
        }
    }
    for name in prior_policies
        .keys()
        .filter(|n| !config.policies.contains_key(*n))
    {
        for e in retention::orphaned(name, &judged) {
            expiring.insert(e.backup.address(), e.reason);
        }
    }
    // An account that forbids deletion keeps everything; say so.
    let mut protected: BTreeMap<(String, String), usize> = BTreeMap::new();
    expiring.retain(|addr, _| {
        let Some(b) = state.backups.iter().find(|b| &b.address() == addr) else {
            return true;
        };
        let allowed = accounts
            .get(&b.account)
            .map(|a| a.allow_delete)
            .unwrap_or(false);
        if !allowed {
            *protected
                .entry((b.policy.clone(), b.account.clone()))
                .or_default() += 1;
        }
        allowed
    });
    for ((policy, account), n) in protected {
        warnings.push(format!(
            "retention would delete {n} backup(s) of policy.{policy}, but account {account} has allow_delete = false: they are kept"
        ));
    }
    let kept_amis = kept_initial_amis(state, |p| config.policies.contains_key(p))?;
    for b in &state.backups {
        let baddr = b.address();
        match expiring.get(&baddr) {
            Some(reason) => bld.changes.extend(expiry_changes(
                b,
                reason,
                |id| obs.snapshots.contains_key(id),
                &kept_amis,
            )),
            None if b.status != BackupStatus::Running => {
                for s in b.snapshots.iter().filter(|s| is_plain_ebs(s)) {
                    if !obs.snapshots.contains_key(&s.id) {
                        bld.changes.push(
                            Change::new(Address::snapshot(&s.id), Action::Read, Effect::Catalog)
                                .reason("deleted outside Lifeboat")
                                .before(Some(snapshot_before(b, s))),
                        );
                    }
                }
            }
            None => {}
        }
    }

    // VPC clones: CloudFormation stacks built from captured versions.
    bld.changes.extend(crate::vpc::clone::clone_changes(
        config,
        state,
        &obs.clones,
        &crate::vpc::export::export,
        &mut warnings,
    ));

    // Accounts removed from the configuration go last.
    for addr in state.objects.keys() {
        if let Address::Account { name } = addr {
            if !config.accounts.contains_key(name) {
                // The account's credentials stay in state while the catalog
                // holds backups there that this plan does not delete (frozen,
                // running, or protected): without them those snapshots could
                // be neither observed nor ever cleaned up.
                let kept = state
                    .backups
                    .iter()
                    .filter(|b| &b.account == name && !expiring.contains_key(&b.address()))
                    .count();
                if kept > 0 {
                    warnings.push(format!(
                        "account {name} is no longer configured but the catalog still holds {kept} backup(s) there; it stays in state until they are gone"
                    ));
                    continue;
                }
                let mut deps: Vec<Address> = prior_policies
                    .values()
                    .filter(|p| &p.account == name && !config.policies.contains_key(&p.name))
                    .map(|p| Address::policy(&p.name))
                    .collect();
                deps.extend(
                    state
                        .backups
                        .iter()
                        .filter(|b| &b.account == name)
                        .map(|b| b.address()),
                );
                bld.changes.push(
                    Change::new(addr.clone(), Action::Delete, Effect::Control)
                        .reason("removed from configuration")
                        .before(state.objects.get(addr).cloned())
                        .depends_on(deps),
                );
            }
        }
    }

    // Keep only dependencies on changes that are in this plan.
    let present: BTreeSet<Address> = bld.changes.iter().map(|c| c.address.clone()).collect();
    for c in &mut bld.changes {
        c.depends_on.retain(|d| present.contains(d));
        c.depends_on.sort();
        c.depends_on.dedup();
    }
    warnings.sort();
    warnings.dedup();
    Ok(Plan::new(
        state.lineage.clone(),
        state.serial,
        config_digest(config),
        now,
        bld.changes,
        warnings,
    ))
}
