//! What AWS still holds of the recorded copies: one describe per
//! destination and kind (200 ids a call), the same evidence for `plan` and
//! for the retention after DR runs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use lifeboat_schema::Account;

use crate::cloud::{collect_chunked, Cloud, CloudError, ImageQuery, SnapshotQuery};
use crate::retention::Holds;
use crate::state::{ArtifactKind, Destination, DrCopyRecord};

/// The recorded copies found in AWS, by destination and id.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CopiesSeen {
    pub present: BTreeSet<(Destination, String)>,
    /// Destinations that could not be looked at, with why: their copies are
    /// neither judged lost nor expired, and the plan says so.
    #[serde(skip)]
    pub unreachable: BTreeMap<Destination, String>,
    /// Snapshots (copies, and an AMI copy's snapshots) whose recorded lock
    /// AWS reports holding (DescribeLockedSnapshots).
    #[serde(default)]
    pub locks_held: BTreeSet<(Destination, String)>,
    /// Destinations whose locks were looked at.
    #[serde(default)]
    pub locks_looked: BTreeSet<Destination>,
    /// Destinations whose locks could not be looked at, with why.
    #[serde(default)]
    pub lock_errors: BTreeMap<Destination, String>,
}

impl CopiesSeen {
    /// Does AWS report `c`'s lock (all its AMI's snapshots' locks) holding?
    /// `None` when its locks were not looked at.
    pub fn lock_holds(&self, c: &DrCopyRecord, all: &[DrCopyRecord]) -> Option<bool> {
        if !self.locks_looked.contains(&c.destination) {
            return None;
        }
        let ids: Vec<&str> = match c.kind {
            ArtifactKind::Image => all
                .iter()
                .filter(|x| x.image.as_deref() == Some(&c.id) && x.destination == c.destination)
                .map(|x| x.id.as_str())
                .collect(),
            _ => vec![c.id.as_str()],
        };
        Some(ids.iter().all(|id| {
            self.locks_held
                .contains(&(c.destination.clone(), id.to_string()))
        }))
    }
}

impl Holds for CopiesSeen {
    fn holds(&self, c: &DrCopyRecord) -> bool {
        self.present
            .contains(&(c.destination.clone(), c.id.clone()))
    }

    fn reachable(&self, d: &Destination) -> bool {
        !self.unreachable.contains_key(d)
    }
}

/// Looks for every copy in `copies` (main copies; an AMI stands for its
/// snapshots) in its destination. A destination whose account is not in
/// `accounts` (removed from the configuration) or whose list fails is
/// [`CopiesSeen::unreachable`]: nothing is decided about its copies, and
/// nothing taken as proof by them; one broken DR account does not stop
/// every plan.
pub async fn observe_copies(
    cloud: Arc<dyn Cloud>,
    copies: &[DrCopyRecord],
    accounts: &BTreeMap<String, Account>,
) -> Result<CopiesSeen, CloudError> {
    let mut by_dest: BTreeMap<Destination, Vec<DrCopyRecord>> = BTreeMap::new();
    for c in copies {
        by_dest
            .entry(c.destination.clone())
            .or_default()
            .push(c.clone());
    }
    let mut seen = CopiesSeen::default();
    for (dest, mine) in by_dest {
        if !accounts.contains_key(&dest.account) {
            seen.unreachable.insert(
                dest.clone(),
                format!("account {} is not configured", dest.account),
            );
            continue;
        }
        match observe_destination(cloud.clone(), &mine, accounts).await {
            Ok(s) => seen.present.extend(s.present),
            Err(e) => {
                seen.unreachable.insert(dest, e.to_string());
                continue;
            }
        }
        // A broken look at locks leaves the copies judged: only whether
        // their locks hold is unknown (and no lock change is planned).
        match observe_locks(cloud.clone(), &dest, &mine, &accounts[&dest.account]).await {
            Ok(Some(held)) => {
                seen.locks_looked.insert(dest.clone());
                seen.locks_held
                    .extend(held.into_iter().map(|id| (dest.clone(), id)));
            }
            Ok(None) => {}
            Err(e) => {
                seen.lock_errors.insert(dest, e.to_string());
            }
        }
    }
    Ok(seen)
}

/// The snapshots at `dest` whose lock AWS reports holding, among those
/// whose copy records a lock: one DescribeLockedSnapshots per 200 ids.
/// `None` (no call) when no copy there records a lock.
async fn observe_locks(
    cloud: Arc<dyn Cloud>,
    dest: &Destination,
    copies: &[DrCopyRecord],
    account: &Account,
) -> Result<Option<Vec<String>>, CloudError> {
    let locked: BTreeSet<&str> = copies
        .iter()
        .filter(|c| c.image.is_none() && c.lock.is_some())
        .map(|c| c.id.as_str())
        .collect();
    let ids: Vec<String> = copies
        .iter()
        .filter(|c| match &c.image {
            Some(ami) => locked.contains(ami.as_str()),
            None => c.kind == ArtifactKind::Ebs && locked.contains(c.id.as_str()),
        })
        .map(|c| c.id.clone())
        .collect();
    if ids.is_empty() {
        return Ok(None);
    }
    let ec2 = cloud.ec2(account, &dest.region).await?;
    let found = collect_chunked(&ids, |chunk, t| {
        let ec2 = ec2.clone();
        let chunk = chunk.to_vec();
        async move { ec2.locked_snapshots_page(&chunk, t).await }
    })
    .await?;
    Ok(Some(
        found
            .into_iter()
            .filter(|l| l.holds())
            .map(|l| l.snapshot_id)
            .collect(),
    ))
}

async fn observe_destination(
    cloud: Arc<dyn Cloud>,
    copies: &[DrCopyRecord],
    accounts: &BTreeMap<String, Account>,
) -> Result<CopiesSeen, CloudError> {
    let mut by: BTreeMap<(Destination, ArtifactKind), Vec<String>> = BTreeMap::new();
    let mut seen = CopiesSeen::default();
    for c in copies.iter().filter(|c| c.image.is_none()) {
        if accounts.contains_key(&c.destination.account) {
            by.entry((c.destination.clone(), c.kind))
                .or_default()
                .push(c.id.clone());
        } else {
            seen.present.insert((c.destination.clone(), c.id.clone()));
        }
    }
    for ((dest, kind), ids) in by {
        let account = &accounts[&dest.account];
        let found: Vec<String> = match kind {
            ArtifactKind::Ebs => {
                let ec2 = cloud.ec2(account, &dest.region).await?;
                collect_chunked(&ids, |chunk, t| {
                    let ec2 = ec2.clone();
                    let q = SnapshotQuery {
                        ids: chunk.to_vec(),
                        ..Default::default()
                    };
                    async move { ec2.snapshots_page(&q, t).await }
                })
                .await?
                .into_iter()
                .map(|s| s.id)
                .collect()
            }
            ArtifactKind::Image => {
                let ec2 = cloud.ec2(account, &dest.region).await?;
                collect_chunked(&ids, |chunk, t| {
                    let ec2 = ec2.clone();
                    let q = ImageQuery {
                        ids: chunk.to_vec(),
                        ..Default::default()
                    };
                    async move { ec2.images_page(&q, t).await }
                })
                .await?
                .into_iter()
                .map(|i| i.id)
                .collect()
            }
            ArtifactKind::DbSnapshot | ArtifactKind::DbClusterSnapshot => {
                let rds = cloud.rds(account, &dest.region).await?;
                let k = super::copy::db_kind(kind);
                collect_chunked(&ids, |chunk, t| {
                    let rds = rds.clone();
                    let chunk = chunk.to_vec();
                    async move { rds.db_snapshots_page(k, &chunk, t).await }
                })
                .await?
                .into_iter()
                .map(|d| d.id)
                .collect()
            }
        };
        seen.present
            .extend(found.into_iter().map(|id| (dest.clone(), id)));
    }
    Ok(seen)
}
