//! Which resources a policy covers (`protected`) and which none does
//! (`unprotected`): every EC2 instance, EBS volume, RDS DB instance and
//! Aurora cluster of the configured backup accounts' regions, listed whole
//! through the cloud ports (one paged list per kind per region, the list
//! calls observation makes), held against the policies' targets in the
//! state (what apply and the backups' membership recorded).
//!
//! A volume attached to a covered instance is covered by that instance's
//! policies (their backups take it with the instance), unless the target
//! excludes it. A DB instance of an Aurora cluster is the cluster's: it is
//! not listed on its own. Terminated instances and deleted volumes are left
//! out. Enabled policies only; a template policy covers nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use lifeboat_schema::{Account, AccountKind, Config};

use super::{Kind, Table};
use crate::cloud::{collect_pages, Cloud, CloudError, DbSnapshotKind, Query, Tags};
use crate::state::model::{PolicyState, TargetKind, TargetState};

/// One resource found in AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub account: String,
    pub region: String,
    pub kind: TargetKind,
    pub id: String,
    /// Its `Name` tag, or empty.
    pub name: String,
    /// For an instance: its attached volumes.
    pub volumes: Vec<String>,
}

/// The resources of every backup account and region, and the list calls
/// that failed (their account and region are then left out).
#[derive(Debug, Default)]
pub struct Inventory {
    pub resources: Vec<Resource>,
    pub errors: Vec<CloudError>,
}

/// Lists every instance, volume, DB instance and Aurora cluster of the
/// configuration's backup accounts, region by region.
pub async fn inventory(cloud: &Arc<dyn Cloud>, config: &Config) -> Inventory {
    let mut inv = Inventory::default();
    for account in config.accounts.values() {
        if account.kind != AccountKind::Backup {
            continue;
        }
        for region in &account.regions {
            match region_inventory(cloud, account, region).await {
                Ok(found) => inv.resources.extend(found),
                Err(e) => inv.errors.push(e),
            }
        }
    }
    inv.resources.sort_by(|a, b| {
        (&a.account, &a.region, a.kind.noun(), &a.id).cmp(&(
            &b.account,
            &b.region,
            b.kind.noun(),
            &b.id,
        ))
    });
    inv
}

fn name_of(tags: &Tags) -> String {
    tags.get("Name").cloned().unwrap_or_default()
}

async fn region_inventory(
    cloud: &Arc<dyn Cloud>,
    account: &Account,
    region: &str,
) -> Result<Vec<Resource>, CloudError> {
    let ec2 = cloud.ec2(account, region).await?;
    let all = Query::default();
    let resource = |kind, id: String, tags: &Tags, volumes| Resource {
        account: account.name.clone(),
        region: region.to_string(),
        kind,
        id,
        name: name_of(tags),
        volumes,
    };
    let mut out = Vec::new();
    for i in collect_pages(|t| ec2.instances_page(&all, t)).await? {
        if i.state.is_gone() {
            continue;
        }
        let volumes = i.volumes.iter().map(|v| v.volume_id.clone()).collect();
        out.push(resource(TargetKind::Instance, i.id, &i.tags, volumes));
    }
    for v in collect_pages(|t| ec2.volumes_page(&all, t)).await? {
        if v.state == "deleting" || v.state == "deleted" {
            continue;
        }
        out.push(resource(TargetKind::Volume, v.id, &v.tags, vec![]));
    }
    let rds = cloud.rds(account, region).await?;
    for kind in [DbSnapshotKind::Instance, DbSnapshotKind::Cluster] {
        for d in collect_pages(|t| rds.databases_page(kind, t)).await? {
            if d.cluster.is_some() || d.status == "deleting" {
                continue;
            }
            let k = match kind {
                DbSnapshotKind::Instance => TargetKind::Rds,
                DbSnapshotKind::Cluster => TargetKind::Aurora,
            };
            out.push(resource(k, d.id, &d.tags, vec![]));
        }
    }
    Ok(out)
}

/// The policies covering each resource, by (account, region, id).
fn covering(
    resources: &[Resource],
    policies: &BTreeMap<String, PolicyState>,
    targets: &BTreeMap<(String, String), TargetState>,
) -> BTreeMap<(String, String, String), BTreeSet<String>> {
    let mut out: BTreeMap<(String, String, String), BTreeSet<String>> = BTreeMap::new();
    let live = |p: &str| policies.get(p).is_some_and(|p| p.enabled && !p.template);
    let attached: BTreeMap<(&str, &str, &str), &Resource> = resources
        .iter()
        .filter(|r| r.kind == TargetKind::Instance)
        .map(|r| ((r.account.as_str(), r.region.as_str(), r.id.as_str()), r))
        .collect();
    for ((policy, id), t) in targets {
        if !live(policy) {
            continue;
        }
        let key = (t.account.clone(), t.region.clone(), id.clone());
        out.entry(key).or_default().insert(policy.clone());
        if t.kind != TargetKind::Instance {
            continue;
        }
        if let Some(i) = attached.get(&(t.account.as_str(), t.region.as_str(), id.as_str())) {
            for v in i.volumes.iter().filter(|v| !t.exclude_volumes.contains(v)) {
                let key = (t.account.clone(), t.region.clone(), v.clone());
                out.entry(key).or_default().insert(policy.clone());
            }
        }
    }
    out
}

/// The protected and unprotected reports of `inv`; with `policy`, the
/// protected report keeps the resources that policy covers.
pub fn tables(
    inv: &Inventory,
    policies: &BTreeMap<String, PolicyState>,
    targets: &BTreeMap<(String, String), TargetState>,
    policy: Option<&str>,
) -> (Table, Table) {
    let cover = covering(&inv.resources, policies, targets);
    let mut protected = Vec::new();
    let mut unprotected = Vec::new();
    for r in &inv.resources {
        let key = (r.account.clone(), r.region.clone(), r.id.clone());
        let head = vec![
            r.account.clone(),
            r.region.clone(),
            r.kind.noun().to_string(),
            r.id.clone(),
            r.name.clone(),
        ];
        match cover.get(&key) {
            Some(by) if policy.is_none_or(|p| by.contains(p)) => {
                let schedules: BTreeSet<&str> = by
                    .iter()
                    .filter_map(|p| policies.get(p))
                    .flat_map(|p| p.schedules.iter().map(String::as_str))
                    .collect();
                let mut row = head;
                row.push(by.iter().cloned().collect::<Vec<_>>().join(" "));
                row.push(schedules.into_iter().collect::<Vec<_>>().join(" "));
                protected.push(row);
            }
            Some(_) => {}
            None => unprotected.push(head),
        }
    }
    (
        Table {
            kind: Kind::Protected,
            rows: protected,
        },
        Table {
            kind: Kind::Unprotected,
            rows: unprotected,
        },
    )
}
