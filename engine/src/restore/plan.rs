//! A restore request turned into a [`RestorePlan`]: which backup, which
//! artifacts, and exactly what will be created with which settings.
//!
//! Defaults come from the backup's restore point (what the target was when
//! it was taken). Everything that can be checked before a create call is
//! checked here: an unknown target, no whole backup, a volume the backup
//! lacks, a subnet that does not exist, an instance to attach to in another
//! zone, a DB identifier already taken. A bad request creates nothing.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lifeboat_schema::Account;

/// The configured accounts, by name.
pub type Accounts = std::collections::BTreeMap<String, Account>;
use serde::{Deserialize, Serialize};

use super::look_ahead::Looked;
use super::source::{self, Artifacts, Chosen, Which};
use super::{Kind, RestoreError, TAG_RESTORED_FROM, TAG_RESTORE_ID};
use crate::cloud::restore::{
    DbRestoreRequest, Disk, ImageRegistration, InstanceShape, LaunchRequest, Mapping, Shape,
    VolumeRequest,
};
use crate::cloud::{collect_pages, Cloud, InstanceState, Query, Tags};
use crate::state::{ArtifactKind, Destination, SharedStore};

/// The version of the saved restore plan's format.
pub const RESTORE_FORMAT: &str = "1";

/// Which data volumes of an instance come back (the root always does).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Volumes {
    #[default]
    All,
    Root,
    /// The root and these (by their volume id at backup time).
    Only(Vec<String>),
}

/// `--private-ip`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PrivateIp {
    /// Any free address of the subnet.
    Auto,
    Ip(String),
}

/// What the operator asked for beyond the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    pub subnet: Option<String>,
    pub instance_type: Option<String>,
    pub security_groups: Option<Vec<String>>,
    pub key_name: Option<String>,
    pub private_ip: Option<PrivateIp>,
    pub tags: Vec<(String, String)>,
    pub volumes: Volumes,
    pub user_data: Option<String>,
    pub az: Option<String>,
    pub volume_type: Option<String>,
    pub size_gib: Option<i32>,
    pub iops: Option<i32>,
    pub kms_key: Option<String>,
    pub attach_to: Option<String>,
    pub device: Option<String>,
    pub swap: bool,
    pub identifier: Option<String>,
    pub class: Option<String>,
    pub subnet_group: Option<String>,
    pub instance_class: Option<String>,
}

/// One restore asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub kind: Kind,
    pub target: String,
    pub which: Which,
    /// `--from REGION[:ACCOUNT]`: a DR copy (account: the backup's when
    /// left out).
    pub from: Option<(String, Option<String>)>,
    pub to_account: Option<String>,
    pub to_region: Option<String>,
    pub options: Options,
    /// The recovery scenario, when a drill or a recovery asks.
    pub drill: Option<String>,
}

/// Shared with the account restored into, for the restore (and unshared
/// when it is done).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    pub kind: ArtifactKind,
    pub id: String,
}

/// Attaching a restored volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attach {
    pub instance_id: String,
    pub device: String,
    /// `--swap`: the volume now at that device, detached first and kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap_out: Option<String>,
}

/// One planned restore: saved with `--out`, performed by `run`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestorePlan {
    pub restore_format: String,
    /// The state's lineage: a saved restore plan only applies to its state.
    pub lineage: String,
    pub id: String,
    pub kind: Kind,
    pub target: String,
    pub policy: String,
    pub backup_id: String,
    pub backup_started: DateTime<Utc>,
    /// `local`, or the DR destination `REGION:ACCOUNT`.
    pub source: String,
    /// Where the artifacts are (account name, region).
    pub artifacts_account: String,
    pub artifacts_region: String,
    /// Where the restore creates (account name, region).
    pub account: String,
    pub region: String,
    /// The artifacts used, by id.
    pub from: Vec<String>,
    /// Shared with `share_with` (an AWS account id) for the restore.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shares: Vec<Share>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_with: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageRegistration>,
    /// Its `image_id` is empty when the image is the one registered first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<LaunchRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<Attach>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DbRestoreRequest>,
    /// An Aurora cluster's instances: (identifier, class).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<String>,
    /// What differs from the original, and why.
    #[serde(default)]
    pub notes: Vec<String>,
    /// What was asked: `apply FILE` plans it again and performs the saved
    /// plan only when both agree (a plan file edited between review and
    /// apply changes nothing).
    pub request: Request,
}

pub(super) fn invalid(m: impl Into<String>) -> RestoreError {
    RestoreError::Invalid(m.into())
}

pub(super) fn account<'a>(accounts: &'a Accounts, name: &str) -> Result<&'a Account, RestoreError> {
    accounts
        .get(name)
        .ok_or_else(|| invalid(format!("no account {name:?} in the configuration")))
}

/// Where the copies of `--from` / `--to-region` are.
fn destination(req: &Request, store: &SharedStore) -> Result<Option<Destination>, RestoreError> {
    let owner = || -> Result<String, RestoreError> {
        let st = store.lock().expect("state lock poisoned");
        Ok(source::newest_place(&st, &req.target)?
            .map(|(account, _)| account)
            .unwrap_or_default())
    };
    Ok(match (&req.from, &req.to_region) {
        (Some((region, acct)), _) => Some(Destination {
            region: region.clone(),
            account: match acct {
                Some(a) => a.clone(),
                None => owner()?,
            },
        }),
        (None, Some(region)) => {
            // `--to-region` alone: the copies there, in the account restored
            // into (or the backup's), unless that is where the backup is.
            let acct = match &req.to_account {
                Some(a) => a.clone(),
                None => owner()?,
            };
            Some(Destination {
                region: region.clone(),
                account: acct,
            })
        }
        (None, None) => None,
    })
}

/// What can be refused from the request alone.
fn check_request(req: &Request) -> Result<(), RestoreError> {
    if let (Some((from, _)), Some(to)) = (&req.from, &req.to_region) {
        if from != to {
            return Err(invalid(format!(
                "--from {from} and --to-region {to}: a restore is made where its copies are (copy them to {to} first)"
            )));
        }
    }
    for (k, _) in &req.options.tags {
        if k.starts_with("aws:") || k.starts_with("lifeboat:") {
            return Err(invalid(format!(
                "--tag {k}: keys starting with aws: are AWS's and lifeboat: Lifeboat's own"
            )));
        }
    }
    if let Some(id) = &req.options.identifier {
        super::db::check_db_identifier(id)?;
    }
    Ok(())
}

/// Plans `req`: reads the catalog, then checks what it can in AWS.
pub async fn plan(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    accounts: &Accounts,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<RestorePlan, RestoreError> {
    plan_looked(cloud, store, accounts, req, now, &Looked::default()).await
}

/// [`plan`] with the answers of `looked` (looked up for many requests at
/// once) instead of one call each.
pub async fn plan_looked(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    accounts: &Accounts,
    req: &Request,
    now: DateTime<Utc>,
    looked: &Looked,
) -> Result<RestorePlan, RestoreError> {
    let id = super::new_restore_id(now);
    plan_as(cloud, store, accounts, req, &id, looked).await
}

/// A saved plan checked against what planning its request again makes
/// now (same restore id, same backup): `Err` says how they differ.
pub async fn check_saved(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    accounts: &Accounts,
    saved: &RestorePlan,
) -> Result<(), RestoreError> {
    let mut req = saved.request.clone();
    req.which = Which::Id(saved.backup_id.clone());
    let mut fresh = plan_as(cloud, store, accounts, &req, &saved.id, &Looked::default()).await?;
    // The request as saved (`latest` stays `latest`): what it asks is what
    // was planned again.
    fresh.request = saved.request.clone();
    let value = |p: &RestorePlan| {
        let mut v = serde_json::to_value(p).expect("a plan serializes");
        v.as_object_mut().map(|o| o.remove("notes"));
        v
    };
    let (a, b) = (value(saved), value(&fresh));
    if a == b {
        return Ok(());
    }
    let keys: Vec<String> = a
        .as_object()
        .into_iter()
        .flat_map(|o| o.keys())
        .chain(b.as_object().into_iter().flat_map(|o| o.keys()))
        .filter(|k| a.get(k.as_str()) != b.get(k.as_str()))
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    Err(RestoreError::Stale(format!(
        "planned again now, it differs in {} (edited, or AWS changed since): plan the restore again",
        keys.join(", ")
    )))
}

/// The backup `req` restores from, where its artifacts are (`None`: the
/// backup's own), and the state's lineage.
pub(super) fn chosen(
    req: &Request,
    store: &SharedStore,
) -> Result<(Chosen, Option<Destination>, String), RestoreError> {
    let mut from = destination(req, store)?;
    let st = store.lock().expect("state lock poisoned");
    let lineage = st.lineage()?;
    // `--to-region` naming the backup's own region is a local restore.
    let local = source::choose(&st, req.kind, &req.target, &req.which, None);
    if req.from.is_none() {
        if let (Ok(c), Some(d)) = (&local, &from) {
            if c.artifacts.region == d.region && c.artifacts.account == d.account {
                from = None;
            }
        }
    }
    let chosen = match &from {
        None => local?,
        Some(d) => source::choose(&st, req.kind, &req.target, &req.which, Some(d))?,
    };
    Ok((chosen, from, lineage))
}

/// The account restored into.
pub(super) fn dest_account(req: &Request, chosen: &Chosen) -> String {
    req.to_account
        .clone()
        .unwrap_or_else(|| chosen.artifacts.account.clone())
}

/// [`plan`] under a given restore id.
async fn plan_as(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    accounts: &Accounts,
    req: &Request,
    id: &str,
    looked: &Looked,
) -> Result<RestorePlan, RestoreError> {
    check_request(req)?;
    let (chosen, from, lineage) = chosen(req, store)?;
    let dest_account = dest_account(req, &chosen);
    account(accounts, &dest_account)?;
    account(accounts, &chosen.artifacts.account)?;
    let id = id.to_string();
    let mut p = RestorePlan {
        restore_format: RESTORE_FORMAT.into(),
        lineage,
        id: id.clone(),
        kind: req.kind,
        target: req.target.clone(),
        policy: chosen.backup.policy.clone(),
        backup_id: chosen.backup.id.clone(),
        backup_started: chosen.backup.started,
        source: from
            .as_ref()
            .map_or_else(|| "local".to_string(), |d| d.to_string()),
        artifacts_account: chosen.artifacts.account.clone(),
        artifacts_region: chosen.artifacts.region.clone(),
        account: dest_account,
        region: chosen.artifacts.region.clone(),
        from: chosen.artifacts.ids(),
        shares: vec![],
        share_with: None,
        image: None,
        launch: None,
        volume: None,
        attach: None,
        database: None,
        members: vec![],
        drill: req.drill.clone(),
        notes: vec![],
        request: req.clone(),
    };
    if p.account != p.artifacts_account {
        let to = account(accounts, &p.account)?;
        p.share_with = Some(cloud.account_id(to).await?);
        p.shares = shares(&chosen.artifacts, req.kind);
        p.notes.push(format!(
            "the artifacts are in account {}: they are shared with account {} for the restore and unshared after",
            p.artifacts_account, p.account
        ));
    }
    if chosen
        .backup
        .problems
        .iter()
        .any(|x| x == crate::state::PROBLEMS_UNKNOWN_NOTE)
    {
        p.notes.push(format!(
            "backup {}'s problems are unknown (its DR copies predate their record): a target it failed to back up would not show here",
            chosen.backup.id
        ));
    }
    match req.kind {
        Kind::Instance => plan_instance(cloud, accounts, req, &chosen, &mut p, looked).await?,
        Kind::Volume => plan_volume(cloud, accounts, req, &chosen, &mut p).await?,
        Kind::Rds | Kind::Aurora => {
            super::db::plan_database(cloud, accounts, req, &chosen, &mut p).await?
        }
    }
    Ok(p)
}

fn shares(a: &Artifacts, kind: Kind) -> Vec<Share> {
    let mut out = vec![];
    if let Some(i) = &a.image {
        out.push(Share {
            kind: ArtifactKind::Image,
            id: i.clone(),
        });
    } else {
        out.extend(a.snapshots.values().map(|s| Share {
            kind: ArtifactKind::Ebs,
            id: s.clone(),
        }));
    }
    if let Some((id, _)) = &a.db {
        let kind = if kind == Kind::Aurora {
            ArtifactKind::DbClusterSnapshot
        } else {
            ArtifactKind::DbSnapshot
        };
        out.push(Share {
            kind,
            id: id.clone(),
        });
    }
    out
}

/// The tags of what a restore creates: the original's (less those AWS and
/// Lifeboat reserve), the operator's, and the restore's own.
pub(super) fn tags(original: &Tags, extra: &[(String, String)], from: &str, id: &str) -> Tags {
    let mut t: Tags = original
        .iter()
        .filter(|(k, _)| !k.starts_with("aws:") && !k.starts_with("lifeboat:"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    t.extend(extra.iter().cloned());
    t.insert(TAG_RESTORED_FROM.into(), from.into());
    t.insert(TAG_RESTORE_ID.into(), id.into());
    t
}

fn instance_shape(chosen: &Chosen, target: &str) -> Result<InstanceShape, RestoreError> {
    match &chosen.shape {
        Some(Shape::Instance(s)) => Ok(s.clone()),
        _ if chosen.artifacts.image.is_some() => Ok(InstanceShape::default()),
        _ => Err(invalid(format!(
            "backup {} recorded no restore point for instance {target} (it was taken before Lifeboat recorded them): restore its volumes one by one with `lifeboat restore volume`",
            chosen.backup.id
        ))),
    }
}

/// Whether the original instance still exists (then its private address is
/// not asked for again).
async fn original_alive(
    cloud: &Arc<dyn Cloud>,
    acct: &Account,
    region: &str,
    id: &str,
) -> Result<bool, RestoreError> {
    let ec2 = cloud.ec2(acct, region).await?;
    let q = Query {
        ids: vec![id.to_string()],
        tags: vec![],
    };
    let found = collect_pages(|t| ec2.instances_page(&q, t)).await?;
    Ok(found.iter().any(|i| !i.state.is_gone()))
}

/// Whether an instance comes back where it was: its own region and
/// account (then its subnet, groups and key pair apply as they were).
pub(super) fn same_place(
    shape: &InstanceShape,
    region: &str,
    account: &str,
    chosen: &Chosen,
) -> bool {
    let original_region = shape
        .availability_zone
        .trim_end_matches(|c: char| c.is_ascii_lowercase());
    let same_region = shape.availability_zone.is_empty() || original_region == region;
    same_region && account == chosen.backup.account
}

async fn plan_instance(
    cloud: &Arc<dyn Cloud>,
    accounts: &Accounts,
    req: &Request,
    chosen: &Chosen,
    p: &mut RestorePlan,
    looked: &Looked,
) -> Result<(), RestoreError> {
    let o = &req.options;
    let shape = instance_shape(chosen, &req.target)?;
    let same_place = same_place(&shape, &p.region, &p.account, chosen);
    let subnet = subnet(cloud, accounts, req, chosen, &shape, same_place, p, looked).await?;
    let instance_type = o
        .instance_type
        .clone()
        .or_else(|| Some(shape.instance_type.clone()).filter(|t| !t.is_empty()))
        .ok_or_else(|| {
            invalid(format!(
                "backup {} recorded no instance type for {}: pass --instance-type",
                chosen.backup.id, req.target
            ))
        })?;
    let security_groups = match (&o.security_groups, same_place) {
        (Some(g), _) => g.clone(),
        (None, true) => shape.security_groups.clone(),
        (None, false) => {
            p.notes.push(format!("the original's security groups are not in {} of account {}: the subnet's VPC default group applies (pass --security-groups)", p.region, p.account));
            vec![]
        }
    };
    let key_name = o.key_name.clone().or_else(|| {
        let k = shape.key_name.clone();
        if !same_place && k.is_some() {
            p.notes.push("the original's key pair is left out: key pairs are per region and account (pass --key-name)".into());
            return None;
        }
        k
    });
    // A drill's instance runs beside production: never with its role.
    let iam_profile = if p.account == chosen.backup.account && req.drill.is_none() {
        shape.iam_profile.clone()
    } else {
        if req.drill.is_some() && shape.iam_profile.is_some() {
            p.notes.push("a drill's instance gets no instance profile: it must not act with the original's role".into());
        }
        None
    };
    if req.drill.is_some() && subnet.is_some() && subnet == shape.subnet_id {
        p.notes.push(format!(
            "the drill's instance runs in the original's subnet {}: a network = vpc_clone.NAME keeps drills apart from production",
            subnet.as_deref().unwrap_or_default()
        ));
    }
    let own_subnet = same_place && subnet == shape.subnet_id;
    let private_ip =
        private_ip(cloud, accounts, req, chosen, &shape, own_subnet, p, looked).await?;
    // Restored from the AMI, or from the root volume's snapshot.
    let from_id = chosen.artifacts.image.clone().or_else(|| {
        let root = shape.root()?;
        chosen.artifacts.snapshots.get(&root.volume_id).cloned()
    });
    let tags = tags(&shape.tags, &o.tags, &from_id.unwrap_or_default(), &p.id);
    let image_id = match &chosen.artifacts.image {
        Some(ami) => {
            if o.volumes != Volumes::All {
                return Err(invalid(format!(
                    "backup {} of {} is an AMI: it restores with every volume it holds (--volumes all)",
                    chosen.backup.id, req.target
                )));
            }
            ami.clone()
        }
        None => {
            p.image = Some(registration(chosen, &shape, o, &req.target, &p.id, &tags)?);
            if o.volumes == Volumes::All {
                p.notes.extend(disks_left_behind(chosen, &shape));
            }
            String::new()
        }
    };
    p.launch = Some(LaunchRequest {
        image_id,
        instance_type,
        subnet_id: subnet,
        availability_zone: None,
        security_groups,
        key_name,
        iam_profile,
        private_ip,
        ebs_optimized: shape.ebs_optimized,
        hibernation: shape.hibernation,
        user_data: o.user_data.clone(),
        // The image's own mappings again: RunInstances then makes every
        // volume as registered even where an image's mappings are not
        // carried over (the emulator launches with the root volume alone).
        mappings: p
            .image
            .as_ref()
            .map(|i| i.mappings.clone())
            .unwrap_or_default(),
        tags,
        client_token: p.id.clone(),
    });
    Ok(())
}

/// The subnet: the operator's, or the original's when the instance comes
/// back where it was; checked to exist.
#[allow(clippy::too_many_arguments)]
async fn subnet(
    cloud: &Arc<dyn Cloud>,
    accounts: &Accounts,
    req: &Request,
    chosen: &Chosen,
    shape: &InstanceShape,
    same_place: bool,
    p: &RestorePlan,
    looked: &Looked,
) -> Result<Option<String>, RestoreError> {
    let subnet = match (&req.options.subnet, same_place) {
        (Some(s), _) => Some(s.clone()),
        (None, true) => shape.subnet_id.clone(),
        (None, false) => {
            return Err(invalid(format!(
            "instance {} was in {} of account {}: name a subnet of {} in account {} with --subnet",
            req.target,
            shape.subnet_id.as_deref().unwrap_or("a subnet"),
            chosen.backup.account,
            p.region,
            p.account
        )))
        }
    };
    if let Some(s) = &subnet {
        let zone = match looked.subnet(&p.account, &p.region, s) {
            Some(zone) => zone,
            None => {
                let dest = account(accounts, &p.account)?;
                let launch = cloud.launch(dest, &p.region).await?;
                launch.subnet_zone(s).await?
            }
        };
        if zone.is_none() {
            return Err(invalid(format!(
                "subnet {s} does not exist in account {} ({})",
                p.account, p.region
            )));
        }
    }
    Ok(subnet)
}

/// The private address asked for: the operator's, or the original's when
/// the instance comes back into its own subnet and the original is gone.
#[allow(clippy::too_many_arguments)]
async fn private_ip(
    cloud: &Arc<dyn Cloud>,
    accounts: &Accounts,
    req: &Request,
    chosen: &Chosen,
    shape: &InstanceShape,
    own_subnet: bool,
    p: &mut RestorePlan,
    looked: &Looked,
) -> Result<Option<String>, RestoreError> {
    if req.drill.is_some() {
        // A drill never takes the original's address: clients that still
        // use it would reach the drill, and lose it at its teardown.
        return Ok(None);
    }
    Ok(match &req.options.private_ip {
        Some(PrivateIp::Ip(ip)) => Some(ip.clone()),
        Some(PrivateIp::Auto) => None,
        None if own_subnet && shape.private_ip.is_some() => {
            let alive = match looked.alive(&chosen.backup.account, &p.region, &req.target) {
                Some(alive) => alive,
                None => {
                    let backup_acct = account(accounts, &chosen.backup.account)?;
                    original_alive(cloud, backup_acct, &p.region, &req.target).await?
                }
            };
            if alive {
                p.notes.push(format!(
                    "the original still runs: its private address {} is left to it (pass --private-ip to ask for another)",
                    shape.private_ip.as_deref().unwrap_or_default()
                ));
                None
            } else {
                shape.private_ip.clone()
            }
        }
        None => None,
    })
}

/// Notes for the disks the instance had that the backup holds no snapshot
/// of (excluded by the policy, or lost since): they do not come back.
fn disks_left_behind(chosen: &Chosen, shape: &InstanceShape) -> Vec<String> {
    shape
        .disks
        .iter()
        .filter(|d| !chosen.artifacts.snapshots.contains_key(&d.volume_id))
        .map(|d| {
            format!(
                "{} ({}) does not come back: backup {} holds no snapshot of it",
                d.volume_id, d.device, chosen.backup.id
            )
        })
        .collect()
}

/// The image registered from the backup's snapshots, one mapping per disk
/// that comes back, with its size and type at backup time.
fn registration(
    chosen: &Chosen,
    shape: &InstanceShape,
    o: &Options,
    target: &str,
    id: &str,
    tags: &Tags,
) -> Result<ImageRegistration, RestoreError> {
    let b = &chosen.backup.id;
    let root = shape
        .root()
        .ok_or_else(|| invalid(format!("backup {b} recorded no root volume for {target}")))?;
    let snap_of = |d: &Disk| chosen.artifacts.snapshots.get(&d.volume_id).cloned();
    if snap_of(root).is_none() {
        return Err(invalid(format!(
            "backup {b} has no snapshot of {target}'s root volume {} ({}): restore its other volumes with `lifeboat restore volume`",
            root.volume_id, root.device
        )));
    }
    if let Volumes::Only(ids) = &o.volumes {
        for v in ids {
            if !shape.disks.iter().any(|d| &d.volume_id == v)
                || !chosen.artifacts.snapshots.contains_key(v)
            {
                return Err(invalid(format!(
                    "backup {b} has no snapshot of volume {v} of {target}"
                )));
            }
        }
    }
    let wanted = |d: &Disk| {
        d.device == shape.root_device
            || match &o.volumes {
                Volumes::All => true,
                Volumes::Root => false,
                Volumes::Only(ids) => ids.contains(&d.volume_id),
            }
    };
    let mappings = shape
        .disks
        .iter()
        .filter(|d| wanted(d))
        .filter_map(|d| {
            Some(Mapping {
                device: d.device.clone(),
                snapshot_id: snap_of(d)?,
                size_gib: Some(d.size_gib).filter(|s| *s > 0),
                volume_type: Some(d.volume_type.clone()).filter(|t| !t.is_empty()),
                iops: d
                    .iops
                    .filter(|_| matches!(d.volume_type.as_str(), "io1" | "io2" | "gp3")),
                throughput: d.throughput.filter(|_| d.volume_type == "gp3"),
                delete_on_termination: d.delete_on_termination,
            })
        })
        .collect();
    Ok(ImageRegistration {
        name: format!("lifeboat-restore-{id}-{target}"),
        description: format!("Lifeboat restore {id} of {target} from backup {b}"),
        architecture: Some(shape.architecture.clone())
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "x86_64".into()),
        root_device: shape.root_device.clone(),
        ena: shape.ena,
        mappings,
        tags: tags.clone(),
    })
}

/// The disk a volume restore rebuilds: the volume's own restore point, or
/// its disk in its instance's.
fn disk_of(chosen: &Chosen, volume: &str) -> Option<Disk> {
    match &chosen.shape {
        Some(Shape::Volume(d)) => Some(d.clone()),
        Some(Shape::Instance(s)) => s.disks.iter().find(|d| d.volume_id == volume).cloned(),
        _ => None,
    }
}

async fn plan_volume(
    cloud: &Arc<dyn Cloud>,
    accounts: &Accounts,
    req: &Request,
    chosen: &Chosen,
    p: &mut RestorePlan,
) -> Result<(), RestoreError> {
    let o = &req.options;
    let b = &chosen.backup.id;
    let snapshot = chosen
        .artifacts
        .snapshots
        .get(&req.target)
        .cloned()
        .ok_or_else(|| {
            invalid(format!(
                "backup {b} has no snapshot of volume {}",
                req.target
            ))
        })?;
    p.from = vec![snapshot.clone()];
    let disk = disk_of(chosen, &req.target).unwrap_or_default();
    let same_region = disk.availability_zone.starts_with(&p.region);
    let az = match (&o.az, same_region && !disk.availability_zone.is_empty()) {
        (Some(z), _) => z.clone(),
        (None, true) => disk.availability_zone.clone(),
        (None, false) => {
            return Err(invalid(format!(
                "no availability zone of {} is known for volume {}: pass --az",
                p.region, req.target
            )))
        }
    };
    if !az.starts_with(&p.region) {
        return Err(invalid(format!("zone {az} is not in {}", p.region)));
    }
    if let Some(size) = o.size_gib {
        if disk.size_gib > 0 && size < disk.size_gib {
            return Err(invalid(format!(
                "--size {size} is smaller than the volume was ({} GiB)",
                disk.size_gib
            )));
        }
    }
    p.attach = attach_plan(cloud, accounts, o, &az, &disk, p).await?;
    let volume_type = o
        .volume_type
        .clone()
        .or_else(|| Some(disk.volume_type.clone()).filter(|t| !t.is_empty()))
        .unwrap_or_else(|| "gp3".into());
    p.volume = Some(VolumeRequest {
        snapshot_id: snapshot.clone(),
        availability_zone: az,
        iops: o
            .iops
            .or(disk.iops)
            .filter(|_| matches!(volume_type.as_str(), "io1" | "io2" | "gp3")),
        throughput: disk.throughput.filter(|_| volume_type == "gp3"),
        volume_type,
        size_gib: o.size_gib.or(Some(disk.size_gib).filter(|s| *s > 0)),
        kms_key_id: o.kms_key.clone(),
        tags: tags(&disk.tags, &o.tags, &snapshot, &p.id),
        client_token: p.id.clone(),
    });
    Ok(())
}

/// Where a restored volume is attached (`--attach-to`), with the volume
/// `--swap` replaces; checked against the instance as it is now.
async fn attach_plan(
    cloud: &Arc<dyn Cloud>,
    accounts: &Accounts,
    o: &Options,
    az: &str,
    disk: &Disk,
    p: &RestorePlan,
) -> Result<Option<Attach>, RestoreError> {
    let Some(instance) = &o.attach_to else {
        if o.swap {
            return Err(invalid(
                "--swap needs --attach-to and the instance to swap on",
            ));
        }
        return Ok(None);
    };
    let dest = account(accounts, &p.account)?;
    let launch = cloud.launch(dest, &p.region).await?;
    let found = collect_pages(|t| launch.shapes_page(std::slice::from_ref(instance), t)).await?;
    let Some((_, live)) = found.into_iter().next() else {
        return Err(invalid(format!(
            "instance {instance} does not exist in account {} ({})",
            p.account, p.region
        )));
    };
    if live.availability_zone != az {
        return Err(invalid(format!(
            "instance {instance} is in {}, and the volume would be in {az}: a volume attaches only in its own zone (pass --az {})",
            live.availability_zone, live.availability_zone
        )));
    }
    let device = o
        .device
        .clone()
        .or_else(|| Some(disk.device.clone()).filter(|d| !d.is_empty()))
        .ok_or_else(|| invalid("pass --device to attach the volume"))?;
    let at_device = live.disks.iter().find(|d| d.device == device);
    let swap_out = match (o.swap, at_device) {
        (true, Some(d)) => Some(d.volume_id.clone()),
        (true, None) => {
            return Err(invalid(format!("--swap: instance {instance} has no volume at {device}")))
        }
        (false, Some(d)) => {
            return Err(invalid(format!(
                "instance {instance} has volume {} at {device}: pass --swap to replace it (it is detached and kept) or another --device",
                d.volume_id
            )))
        }
        (false, None) => None,
    };
    if swap_out.is_some() {
        // Detaching a mounted volume from a running instance risks its
        // file system, and the instance loses the disk it runs on.
        let ec2 = cloud.ec2(dest, &p.region).await?;
        let q = Query {
            ids: vec![instance.clone()],
            tags: vec![],
        };
        let state = collect_pages(|t| ec2.instances_page(&q, t)).await?;
        if !state.iter().any(|i| i.state == InstanceState::Stopped) {
            return Err(invalid(format!(
                "--swap: stop instance {instance} first (its volume at {device} is detached for the restored one)"
            )));
        }
    }
    Ok(Some(Attach {
        instance_id: instance.clone(),
        device,
        swap_out,
    }))
}
