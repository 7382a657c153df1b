//! Closing backups that a process dying left `running`.
//!
//! Calls per interrupted backup and region: one filtered list of AMIs and
//! one of EBS snapshots by the backup's tags, and for the policy's database
//! targets one DB snapshot describe per kind by id.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lifeboat_schema::Account;

use crate::cloud::{
    collect_chunked, collect_pages, Cloud, DbSnapshotKind, Ec2, ImageQuery, SnapshotQuery,
};
use crate::state::model::{TargetKind, TargetState};
use crate::state::{
    ArtifactKind, BackupRecord, BackupStatus, SharedStore, Snapshot, SnapshotRecord,
};

use super::names::{db_snapshot_id, TAG_BACKUP_ID, TAG_POLICY, TAG_TARGET};
use super::BackupError;

/// What [`reconcile_interrupted`] did: the backups it closed, and those it
/// could not look at in AWS (they stay `running` for the next attempt).
#[derive(Debug, Default)]
pub struct Reconciled {
    pub closed: Vec<BackupRecord>,
    /// `(policy, backup id, why)`.
    pub failed: Vec<(String, String, BackupError)>,
}

/// Closes backups left `running` by a process that died. Backups only run
/// under the state lock, so with the lock held any `running` backup is
/// orphaned: the snapshots AWS has for it (found by its tags, one filtered
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
    let state = store.lock().expect("store").load()?;
    let accounts = state.accounts()?;
    let mut out = Reconciled::default();
    for b in state
        .backups
        .iter()
        .filter(|b| b.status == BackupStatus::Running)
    {
        let Some(acct) = accounts.get(&b.account) else {
            continue;
        };
        let mut orphan = Orphan::new(b);
        let looked = async {
            for region in &acct.regions {
                let ec2 = cloud.ec2(acct, region).await?;
                let of_images = orphan.adopt_images(ec2.as_ref(), region).await?;
                orphan
                    .adopt_snapshots(ec2.as_ref(), region, &of_images)
                    .await?;
                orphan
                    .adopt_db_snapshots(cloud.as_ref(), acct, region, &state)
                    .await?;
            }
            Ok::<(), BackupError>(())
        }
        .await;
        match looked {
            Ok(()) => out.closed.push(orphan.close(&store, now)?),
            Err(BackupError::State(e)) => return Err(e.into()),
            Err(e) => out.failed.push((b.policy.clone(), b.id.clone(), e)),
        }
    }
    Ok(out)
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
        for snap in collect_pages(|tok| ec2.snapshots_page(&q, tok)).await? {
            if self.known.contains(snap.id.as_str()) || of_images.contains(&snap.id) {
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
            let found = collect_chunked(&want, |ids, tok| rds.db_snapshots_page(kind, ids, tok));
            for s in found.await? {
                let Some(target) = ids.get(&s.id) else {
                    continue;
                };
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
    fn close(self, store: &SharedStore, now: DateTime<Utc>) -> Result<BackupRecord, BackupError> {
        let b = self.backup;
        let mut problems = b.problems.clone();
        problems.push(format!(
            "interrupted before it finished; {} snapshot(s) recorded, {} adopted from AWS tags",
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
