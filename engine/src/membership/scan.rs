//! Tag scans: one look, for one account, at the resources that carry the
//! backup tag and at what each policy's membership would be now.
//!
//! `lifeboat scan` previews (nothing is written); run mode records, on the
//! account's `tag_scan { every }`, so that a resource tagged between two
//! backups shows up as a member (in `status`, in the daily summary) before
//! its first backup, and one untagged leaves. A policy with a backup in
//! flight is left to that backup: it decides its own members.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lifeboat_schema::{Account, Config, ResourceKind};
use serde::Serialize;

use super::tag::{self, TagItem, TagProblem};
use super::{decide, record, MemberChange, MembershipError};
use crate::cloud::{collect_pages, Cloud, DbSnapshotKind, Query, Tags};
use crate::state::model::TargetKind;
use crate::state::SharedStore;

/// A resource that carries the backup tag, as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    pub kind: TargetKind,
    pub id: String,
    pub region: String,
    /// The key it was read under (`lifeboat:backup` or an alias).
    pub key: String,
    pub value: String,
    pub opt_out: bool,
    pub items: Vec<TagItem>,
    pub problems: Vec<TagProblem>,
    /// What the items ask that cannot be done as things are: a policy
    /// neither configured nor made from a template, a template that is not
    /// one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unresolved: Vec<String>,
}

/// One policy's membership, as the scan found it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyScan {
    pub policy: String,
    /// The changes made (run mode) or that a backup now would make.
    pub changes: Vec<MemberChange>,
    /// Departures held back: too many at once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held_back: Vec<MemberChange>,
    /// Why the policy was not looked at (a backup of it in flight) or
    /// could not be (AWS or the state failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a scan of one account found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountScan {
    pub account: String,
    pub at: DateTime<Utc>,
    pub regions: Vec<String>,
    pub kinds: Vec<ResourceKind>,
    pub found: Vec<Found>,
    pub policies: Vec<PolicyScan>,
    /// The look for tagged resources failed (the policies were still
    /// decided on their own looks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AccountScan {
    pub fn changes(&self) -> impl Iterator<Item = &MemberChange> {
        self.policies.iter().flat_map(|p| p.changes.iter())
    }

    /// Lines for the run log and `lifeboat scan`: each problem of a tag
    /// and each request that cannot be met, naming the resource.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for f in &self.found {
            let on = format!("{} {} ({}={:?})", f.kind.noun(), f.id, f.key, f.value);
            out.extend(f.problems.iter().map(|p| format!("{on}: {p}")));
            out.extend(f.unresolved.iter().map(|u| format!("{on}: {u}")));
        }
        for p in &self.policies {
            if let Some(e) = &p.error {
                out.push(format!("policy {}: membership not decided: {e}", p.policy));
            }
        }
        out.extend(self.error.iter().map(|e| format!("tag scan: {e}")));
        out
    }
}

/// Preview (`lifeboat scan`) or record (run mode).
#[derive(Debug, Clone, Copy)]
pub enum ScanMode<'a> {
    Preview,
    /// Record the changes as `scan_id`, leaving out the policies in `busy`
    /// (a backup of theirs is in flight and decides for itself).
    Record {
        scan_id: &'a str,
        busy: &'a BTreeSet<String>,
    },
}

/// Scans `account`: reads the backup tags of its resources where its
/// `tag_scan` says, and decides the membership of each of its applied
/// policies now (recording it under [`ScanMode::Record`]). One policy that
/// cannot be decided does not stop the others.
pub async fn scan(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    config: &Config,
    account: &Account,
    at: DateTime<Utc>,
    mode: ScanMode<'_>,
) -> Result<AccountScan, MembershipError> {
    let (regions, kinds) = account.tag_scope();
    let policies: BTreeMap<String, _> = {
        let mut st = store.lock().expect("store");
        st.load()?.policies()?
    };
    let mut out = AccountScan {
        account: account.name.clone(),
        at,
        regions: regions.clone(),
        kinds: kinds.clone(),
        found: vec![],
        policies: vec![],
        error: None,
    };
    match tagged_resources(cloud, account, &regions, &kinds).await {
        Ok(found) => {
            out.found = found
                .into_iter()
                .map(|f| unresolved(f, config, &policies))
                .collect()
        }
        Err(e) => out.error = Some(e.to_string()),
    }
    for name in policies
        .iter()
        .filter(|(_, p)| p.account == account.name)
        .map(|(n, _)| n)
    {
        let mut p = PolicyScan {
            policy: name.clone(),
            changes: vec![],
            held_back: vec![],
            skipped: None,
            error: None,
        };
        if let ScanMode::Record { busy, .. } = mode {
            if busy.contains(name) {
                p.skipped = Some("a backup of it is in flight and decides its members".into());
                out.policies.push(p);
                continue;
            }
        }
        let decided = match decide(cloud, store, name, at).await {
            Ok(None) => Ok((vec![], vec![])),
            Ok(Some(d)) => match mode {
                ScanMode::Preview => Ok((d.resolved.changes, d.resolved.held_back)),
                ScanMode::Record { scan_id, .. } => {
                    record(store, name, d, scan_id, at).map(|r| (r.changes, r.held_back))
                }
            },
            Err(e) => Err(e),
        };
        match decided {
            Ok((changes, held_back)) => {
                p.changes = changes;
                p.held_back = held_back;
            }
            Err(e) => p.error = Some(e.to_string()),
        }
        out.policies.push(p);
    }
    Ok(out)
}

/// The resources in `regions` of the `kinds` given that carry the backup
/// tag under any of its keys: one paged, `tag-key`-filtered describe per
/// key, region and EC2 kind; RDS lists cannot filter on tags, so the
/// database kinds are listed whole (one paged describe per kind and
/// region) and read here.
async fn tagged_resources(
    cloud: &Arc<dyn Cloud>,
    account: &Account,
    regions: &[String],
    kinds: &[ResourceKind],
) -> Result<Vec<Found>, crate::cloud::CloudError> {
    let mut out: BTreeMap<String, Found> = BTreeMap::new();
    let keys = std::iter::once(tag::TAG_BACKUP).chain(tag::TAG_BACKUP_ALIASES);
    let db_kinds = [
        (ResourceKind::Rds, DbSnapshotKind::Instance, TargetKind::Rds),
        (ResourceKind::Aurora, DbSnapshotKind::Cluster, TargetKind::Aurora),
    ];
    for region in regions {
        for (_, db, target) in db_kinds.iter().filter(|(k, ..)| kinds.contains(k)) {
            let rds = cloud.rds(account, region).await?;
            for d in collect_pages(|t| rds.databases_page(*db, t)).await? {
                // An Aurora cluster's instances are backed up with it.
                if d.cluster.is_none() {
                    add(&mut out, *target, &d.id, region, &d.tags);
                }
            }
        }
        let ec2 = cloud.ec2(account, region).await?;
        for key in keys.clone() {
            let q = Query {
                ids: vec![],
                tags: vec![(key.to_string(), vec![])],
            };
            if kinds.contains(&ResourceKind::Instance) {
                for i in collect_pages(|t| ec2.instances_page(&q, t)).await? {
                    if !i.state.is_gone() {
                        add(&mut out, TargetKind::Instance, &i.id, region, &i.tags);
                    }
                }
            }
            if kinds.contains(&ResourceKind::Volume) {
                for v in collect_pages(|t| ec2.volumes_page(&q, t)).await? {
                    add(&mut out, TargetKind::Volume, &v.id, region, &v.tags);
                }
            }
        }
    }
    Ok(out.into_values().collect())
}

fn add(out: &mut BTreeMap<String, Found>, kind: TargetKind, id: &str, region: &str, tags: &Tags) {
    let Some((key, value)) = tag::backup_tag(tags) else {
        return;
    };
    let read = tag::parse(tag::Grammar::Backup, value);
    out.entry(id.to_string()).or_insert_with(|| Found {
        kind,
        id: id.to_string(),
        region: region.to_string(),
        key: key.to_string(),
        value: value.to_string(),
        // An opt-out under any key wins (see `opted_out`).
        opt_out: super::opted_out(tags).is_some(),
        items: read.items,
        problems: read.problems,
        unresolved: vec![],
    });
}

/// Names what `f`'s items ask that cannot be met: a policy neither applied
/// nor configured, and without a template; a template that is not a
/// configured `template = true` policy.
fn unresolved(
    mut f: Found,
    config: &Config,
    applied: &BTreeMap<String, crate::state::model::PolicyState>,
) -> Found {
    if f.opt_out {
        return f;
    }
    for item in f.items.iter().filter(|i| !i.name.is_empty()) {
        let known = applied.contains_key(&item.name) || config.policies.contains_key(&item.name);
        match (&item.template, known) {
            (_, true) => {}
            (None, false) => f.unresolved.push(format!(
                "names policy {}, which is not configured (and no template is given)",
                item.name
            )),
            (Some(t), false) if !config.policies.contains_key(t) => f.unresolved.push(format!(
                "asks for policy {} from template {t}, which is not configured",
                item.name
            )),
            (Some(t), false) => f.unresolved.push(format!(
                "asks for policy {} from template {t}: `lifeboat apply` makes it",
                item.name
            )),
        }
    }
    f
}
