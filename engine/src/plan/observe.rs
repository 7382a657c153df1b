//! Observation: what live AWS has for what the configuration and state name.
//! The planner observes everything a plan diffs; a backup's retention
//! observes only the catalog snapshots of the policies it retains, with the
//! same calls, so that both judge a backup's snapshots on the same evidence.
//!
//! Observation never mutates anything, and its cost grows with the number of
//! (account, region, query) pages, not with the number of resources: ids and
//! tag selectors go into server-side filters.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use lifeboat_schema::{Account, Config, TagSelector};

use crate::cloud::{
    collect_pages, Cloud, CloudError, ErrorKind, Instance, Query, Snapshot, SnapshotQuery, Volume,
};
use crate::plan::planner::{known_accounts, TAG_POLICY};
use crate::retention::is_plain_ebs;
use crate::state::model::TargetKind;
use crate::state::{self, BackupRecord, StateError};

/// EC2 accepts at most 200 values in one filter.
const FILTER_CHUNK: usize = crate::cloud::FILTER_CHUNK;

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

/// Why observation failed: AWS refused a list call, or state holds an object
/// that does not decode.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// What to look at in one (account, region).
#[derive(Debug, Default, Clone)]
struct RegionWork {
    instance_ids: BTreeSet<String>,
    volume_ids: BTreeSet<String>,
    selectors: BTreeSet<TagSelector>,
    policies: BTreeSet<String>,
    catalog_snapshots: BTreeSet<String>,
}

type Work = BTreeMap<(String, String), RegionWork>;

/// Reads from AWS what the plan needs: one set of filtered, paged list calls
/// per (account, region), all regions concurrently.
pub async fn observe(
    cloud: Arc<dyn Cloud>,
    config: &Config,
    state: &state::Snapshot,
) -> Result<Observation, ObserveError> {
    let accounts = known_accounts(config, state)?;
    let mut work = Work::new();
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
    add_catalog(&mut work, &state.backups);
    gather(cloud, &accounts, work).await
}

/// Reads from AWS the catalog snapshots of `policies`' backups, as
/// [`observe`] does for a plan: in each (account, region) where they have
/// some, one paged list by `lifeboat:policy` tag, then a look-up by id of
/// those the tags did not return (usually none). Retention after a backup
/// judges the policy's backups on this, exactly as the plan would.
pub async fn observe_catalog(
    cloud: Arc<dyn Cloud>,
    state: &state::Snapshot,
    accounts: &BTreeMap<String, Account>,
    policies: &BTreeSet<String>,
) -> Result<Observation, ObserveError> {
    let mut work = Work::new();
    let backups: Vec<BackupRecord> = state
        .backups
        .iter()
        .filter(|b| policies.contains(&b.policy))
        .cloned()
        .collect();
    add_catalog(&mut work, &backups);
    gather(cloud, accounts, work).await
}

/// The catalog snapshots to find, where their backups' accounts are.
fn add_catalog(work: &mut Work, backups: &[BackupRecord]) {
    for b in backups {
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
}

/// Runs the work of every (account, region) concurrently. One failed region
/// fails the whole observation: a partial one would read as "deleted".
async fn gather(
    cloud: Arc<dyn Cloud>,
    accounts: &BTreeMap<String, Account>,
    work: Work,
) -> Result<Observation, ObserveError> {
    let mut jobs = tokio::task::JoinSet::new();
    for ((account, region), w) in work {
        let Some(acct) = accounts.get(&account).cloned() else {
            // Not seeing a catalog snapshot would read as "deleted outside
            // Lifeboat" and the catalog would forget it: refuse instead.
            if !w.catalog_snapshots.is_empty() {
                return Err(ObserveError::Cloud(CloudError {
                    kind: ErrorKind::Invalid,
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
