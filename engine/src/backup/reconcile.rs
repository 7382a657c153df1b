//! Closing backups that a process dying left `running`, and adopting what
//! a backup's create calls made when their answers were lost.
//!
//! Calls per interrupted backup and region: one filtered list of AMIs and
//! one of EBS snapshots by the backup's tags, and for the policy's database
//! targets one DB snapshot describe per kind by id.
//!
//! Only what is the backup's own is adopted: an AMI or EBS snapshot must
//! carry Lifeboat's description for its tags (`names::is_marked`), a DB
//! snapshot the backup's tags and the id derived from policy, target and
//! backup, and each must have been created at or after the backup started
//! (less [`CLOCK_SKEW`]). An AMI tagged by hand with a guessable backup id
//! is never adopted, so retention never deletes it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lifeboat_schema::Account;

use crate::cloud::{collect_pages, Cloud, DbSnapshotKind, Ec2, ImageQuery, SnapshotQuery};
use crate::state::model::{TargetKind, TargetState};
use crate::state::{
    ArtifactKind, BackupRecord, BackupStatus, SharedStore, Snapshot, SnapshotRecord,
};

use super::names::{db_snapshot_id, is_marked, TAG_BACKUP_ID, TAG_POLICY, TAG_TARGET};
use super::BackupError;

/// How far AWS's clock may be behind this machine's: a backup is recorded
/// `running` before its first create call, so its artifacts' creation times
/// are after its start but for the difference between the two clocks.
pub(crate) const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// Was an artifact created at `created` made by a backup started at
/// `started`? Not when AWS does not say when.
pub(crate) fn made_since(created: Option<DateTime<Utc>>, started: DateTime<Utc>) -> bool {
    created.is_some_and(|c| c >= started - CLOCK_SKEW)
}

/// What [`reconcile_interrupted`] did: the backups it closed, and those it
/// could not look at in AWS (they stay `running` for the next attempt).
#[derive(Debug, Default)]
pub struct Reconciled {
    pub closed: Vec<BackupRecord>,
    /// `(policy, backup id, why)`.
    pub failed: Vec<(String, String, BackupError)>,
}

/// [`made_since`] for a DB (cluster) snapshot: RDS reports no creation time
/// while a snapshot is `creating`, and one being created now under the id
/// derived from this backup, with its tags, is this backup's.
pub(crate) fn db_made_since(s: &crate::cloud::DbSnapshot, started: DateTime<Utc>) -> bool {
    match s.created {
        None => s.status == "creating",
        created => made_since(created, started),
    }
}

/// Closes backups left `running` by a process that died. With the state
/// lock held, a `running` backup is orphaned unless a live runner owns it
/// (`state/inflight.rs`: a runner lets go of the lock while its backups
/// wait for AWS); those are left to their runner. For the others, the
/// snapshots AWS has for it (found by its tags, one filtered
/// list per region) are adopted into the catalog, never created twice, and
/// the backup is closed as failed so that it never counts as a generation
/// and retention cleans it up in time.
///
/// Each backup stands alone: one whose account cannot be reached (a role
/// deleted, access denied) stays `running` and is named in
/// [`Reconciled::failed`], and the others are still closed. Only a state
/// error fails the whole call.
pub async fn reconcile_interrupted(
    cloud: Arc<dyn Cloud>,
    store: SharedStore,
    now: DateTime<Utc>,
) -> Result<Reconciled, BackupError> {
    let (state, live) = {
        let mut s = store.lock().expect("store");
        let live: BTreeSet<(String, String)> = s
            .in_flight(None)?
            .into_iter()
            .map(|f| (f.policy, f.backup))
            .collect();
        (s.load()?, live)
    };
    let mut out = Reconciled::default();
    for b in state.backups.iter().filter(|b| {
        b.status == BackupStatus::Running && !live.contains(&(b.policy.clone(), b.id.clone()))
    }) {
        let why = "interrupted before it finished";
        match adopt_and_close(cloud.as_ref(), &store, &state, b, why, now).await {
            Ok(Some(rec)) => out.closed.push(rec),
            Ok(None) => {}
            Err(BackupError::State(e)) => return Err(e.into()),
            Err(e) => out.failed.push((b.policy.clone(), b.id.clone(), e)),
        }
    }
    Ok(out)
}

/// Closes, as failed, the backup `id` of `policy` that its own process
/// gave up on (the policy's `timeout`): its create calls in flight were
/// abandoned, and what AWS made for them is adopted by tags first, so that
/// nothing whose create call went through is left out of the catalog.
pub async fn close_abandoned(
    cloud: Arc<dyn Cloud>,
    store: &SharedStore,
    policy: &str,
    id: &str,
    why: &str,
) -> Result<Option<BackupRecord>, BackupError> {
    let state = store.lock().expect("store").load()?;
    let Some(b) = state
        .backups
        .iter()
        .find(|b| b.policy == policy && b.id == id && b.status == BackupStatus::Running)
    else {
        return Ok(None);
    };
    adopt_and_close(cloud.as_ref(), store, &state, b, why, Utc::now()).await
}

/// Adopts what AWS has of the running backup `b` and closes it as failed,
/// saying `why`. `None` when its account is no longer in state.
async fn adopt_and_close(
    cloud: &dyn Cloud,
    store: &SharedStore,
    state: &Snapshot,
    b: &BackupRecord,
    why: &str,
    now: DateTime<Utc>,
) -> Result<Option<BackupRecord>, BackupError> {
    let accounts = state.accounts()?;
    let Some(acct) = accounts.get(&b.account) else {
        return Ok(None);
    };
    let mut orphan = Orphan::new(b);
    for region in &acct.regions {
        orphan.adopt_region(cloud, acct, region, state).await?;
    }
    Ok(Some(orphan.close(store, now, why)?))
}

/// Adopts into the running backup `id` of `policy` what AWS holds of it in
/// `region` beyond the catalog: the artifacts of create calls whose answers
/// were lost (the call failed on the way back, after AWS had made them).
/// Returns how many were adopted.
pub(super) async fn adopt_lost(
    cloud: &dyn Cloud,
    store: &SharedStore,
    acct: &Account,
    region: &str,
    policy: &str,
    id: &str,
) -> Result<usize, BackupError> {
    let state = store.lock().expect("store").load()?;
    let Some(b) = state
        .backups
        .iter()
        .find(|b| b.policy == policy && b.id == id)
    else {
        return Ok(0);
    };
    let mut orphan = Orphan::new(b);
    orphan.adopt_region(cloud, acct, region, &state).await?;
    let n = orphan.adopted.len();
    store.lock().expect("store").transaction(|tx| {
        for s in &orphan.adopted {
            tx.insert_snapshot(policy, id, s)?;
        }
        Ok(())
    })?;
    Ok(n)
}

/// An interrupted backup: what the catalog has of it, and what AWS has
/// beyond that.
struct Orphan<'a> {
    backup: &'a BackupRecord,
    known: BTreeSet<&'a str>,
    adopted: Vec<SnapshotRecord>,
}

impl<'a> Orphan<'a> {
    fn new(backup: &'a BackupRecord) -> Orphan<'a> {
        Orphan {
            backup,
            known: backup.snapshots.iter().map(|s| s.id.as_str()).collect(),
            adopted: Vec::new(),
        }
    }

    /// Adopts what AWS has of the backup in one region.
    async fn adopt_region(
        &mut self,
        cloud: &dyn Cloud,
        acct: &Account,
        region: &str,
        state: &Snapshot,
    ) -> Result<(), BackupError> {
        let ec2 = cloud.ec2(acct, region).await?;
        let of_images = self.adopt_images(ec2.as_ref(), region).await?;
        self.adopt_snapshots(ec2.as_ref(), region, &of_images)
            .await?;
        self.adopt_db_snapshots(cloud, acct, region, state).await
    }

    /// The tag filter that finds what this backup made.
    fn by_tags(&self) -> Vec<(String, Vec<String>)> {
        vec![
            (TAG_POLICY.to_string(), vec![self.backup.policy.clone()]),
            (TAG_BACKUP_ID.to_string(), vec![self.backup.id.clone()]),
        ]
    }

    /// Adopts the backup's AMIs (tagged at creation) with their snapshots,
    /// found through the AMI, tagged or not: they go after the AMI. Returns
    /// the ids of the AMIs' snapshots.
    async fn adopt_images(
        &mut self,
        ec2: &dyn Ec2,
        region: &str,
    ) -> Result<BTreeSet<String>, BackupError> {
        let q = ImageQuery {
            ids: vec![],
            tags: self.by_tags(),
        };
        let mut of_images = BTreeSet::new();
        for img in collect_pages(|tok| ec2.images_page(&q, tok)).await? {
            if !is_marked(&img.description, &img.tags)
                || !made_since(img.created, self.backup.started)
            {
                continue;
            }
            let target = img.tags.get(TAG_TARGET).cloned().unwrap_or_default();
            for snap in &img.snapshot_ids {
                of_images.insert(snap.clone());
                if !self.known.contains(snap.as_str()) {
                    self.adopted.push(SnapshotRecord {
                        id: snap.clone(),
                        volume_id: target.clone(),
                        target: target.clone(),
                        region: region.to_string(),
                        kind: ArtifactKind::Ebs,
                        image: Some(img.id.clone()),
                    });
                }
            }
            if !self.known.contains(img.id.as_str()) {
                self.adopted.push(SnapshotRecord {
                    id: img.id,
                    volume_id: target.clone(),
                    target,
                    region: region.to_string(),
                    kind: ArtifactKind::Image,
                    image: None,
                });
            }
        }
        Ok(of_images)
    }

    /// Adopts the backup's EBS snapshots that are not an AMI's.
    async fn adopt_snapshots(
        &mut self,
        ec2: &dyn Ec2,
        region: &str,
        of_images: &BTreeSet<String>,
    ) -> Result<(), BackupError> {
        let q = SnapshotQuery {
            ids: vec![],
            tags: self.by_tags(),
            unfinished_only: false,
        };
        for d in collect_pages(|tok| ec2.described_snapshots_page(&q, tok)).await? {
            let snap = d.snapshot;
            if self.known.contains(snap.id.as_str())
                || of_images.contains(&snap.id)
                || !is_marked(&d.description, &snap.tags)
                || !made_since(snap.started, self.backup.started)
            {
                continue;
            }
            self.adopted.push(SnapshotRecord {
                target: snap.tags.get(TAG_TARGET).cloned().unwrap_or_default(),
                id: snap.id,
                volume_id: snap.volume_id,
                region: region.to_string(),
                kind: ArtifactKind::Ebs,
                image: None,
            });
        }
        Ok(())
    }

    /// Adopts the backup's DB (cluster) snapshots. They cannot be listed by
    /// tag; their ids are derived from policy, target and backup, so they
    /// are looked up by id. A region without an RDS client has none.
    async fn adopt_db_snapshots(
        &mut self,
        cloud: &dyn Cloud,
        acct: &Account,
        region: &str,
        state: &Snapshot,
    ) -> Result<(), BackupError> {
        let b = self.backup;
        let dbs: Vec<TargetState> = state
            .targets()?
            .into_iter()
            .filter(|((p, _), t)| {
                p == &b.policy
                    && t.region == region
                    && matches!(t.kind, TargetKind::Rds | TargetKind::Aurora)
            })
            .map(|(_, t)| t)
            .collect();
        if dbs.is_empty() {
            return Ok(());
        }
        let Ok(rds) = cloud.rds(acct, region).await else {
            return Ok(());
        };
        for (kind, akind, tkind) in [
            (
                DbSnapshotKind::Instance,
                ArtifactKind::DbSnapshot,
                TargetKind::Rds,
            ),
            (
                DbSnapshotKind::Cluster,
                ArtifactKind::DbClusterSnapshot,
                TargetKind::Aurora,
            ),
        ] {
            let ids: BTreeMap<String, String> = dbs
                .iter()
                .filter(|t| t.kind == tkind)
                .map(|t| (db_snapshot_id(&b.policy, &t.id, &b.id), t.id.clone()))
                .filter(|(id, _)| !self.known.contains(id.as_str()))
                .collect();
            if ids.is_empty() {
                continue;
            }
            let want: Vec<String> = ids.keys().cloned().collect();
            for s in collect_pages(|tok| rds.db_snapshots_page(kind, &want, tok)).await? {
                let Some(target) = ids.get(&s.id) else {
                    continue;
                };
                // No description on RDS snapshots: the derived id, the
                // backup's tags and the creation time stand for the marker.
                let ours = s.tags.get(TAG_BACKUP_ID) == Some(&b.id)
                    && s.tags.get(TAG_POLICY) == Some(&b.policy)
                    && db_made_since(&s, b.started);
                if !ours {
                    continue;
                }
                self.adopted.push(SnapshotRecord {
                    id: s.id.clone(),
                    volume_id: target.clone(),
                    target: target.clone(),
                    region: region.to_string(),
                    kind: akind,
                    image: None,
                });
            }
        }
        Ok(())
    }

    /// Records what was adopted and closes the backup as failed.
    fn close(
        self,
        store: &SharedStore,
        now: DateTime<Utc>,
        why: &str,
    ) -> Result<BackupRecord, BackupError> {
        let b = self.backup;
        let mut problems = b.problems.clone();
        problems.push(format!(
            "{why}; {} snapshot(s) recorded, {} adopted from AWS tags",
            b.snapshots.len(),
            self.adopted.len()
        ));
        store.lock().expect("store").transaction(|tx| {
            for s in &self.adopted {
                tx.insert_snapshot(&b.policy, &b.id, s)?;
            }
            tx.finish_backup(&b.policy, &b.id, BackupStatus::Failed, now, &problems)
        })?;
        let mut rec = b.clone();
        rec.snapshots.extend(self.adopted);
        rec.status = BackupStatus::Failed;
        rec.problems = problems;
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_db_snapshot_still_creating_without_a_time_is_this_backups_and_an_old_one_is_not() {
        let started: DateTime<Utc> = "2026-11-22T10:00:00Z".parse().unwrap();
        let snap = |status: &str, created: Option<&str>| crate::cloud::DbSnapshot {
            id: "lifeboat-web-orders-db-2026-11-22t10-00-00z".into(),
            source_id: "orders-db".into(),
            status: status.into(),
            created: created.map(|c| c.parse().unwrap()),
            tags: Default::default(),
            arn: String::new(),
            encryption: Default::default(),
        };
        // RDS gives no SnapshotCreateTime while a snapshot is being made.
        assert!(db_made_since(&snap("creating", None), started));
        assert!(!db_made_since(&snap("available", None), started));
        assert!(db_made_since(
            &snap("available", Some("2026-11-22T10:00:02Z")),
            started
        ));
        assert!(!db_made_since(
            &snap("available", Some("2026-11-01T00:00:00Z")),
            started
        ));
    }
}
