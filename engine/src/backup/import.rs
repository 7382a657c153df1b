//! `lifeboat import`: the catalog rebuilt from what Lifeboat made in AWS,
//! for a state file that was lost or started anew.
//!
//! Calls per (account, region) of the configuration: one paged list of the
//! account's EBS snapshots and one of its AMIs by the `lifeboat:policy` tag
//! (the configured policies of the account), and one paged list of DB
//! snapshots and one of DB cluster snapshots (they cannot be listed by tag).
//!
//! Only Lifeboat's own artifacts are imported: an EBS snapshot or AMI must
//! carry Lifeboat's description for its tags (`names::is_marked`), a DB
//! snapshot the `lifeboat:*` tags and the id derived from them. They are
//! grouped into backups by `lifeboat:policy` and `lifeboat:backup-id`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lifeboat_schema::{Account, Config};

use crate::cloud::{
    collect_pages, Cloud, DbSnapshotKind, ImageQuery, ImageState, SnapshotQuery, SnapshotState,
};
use crate::plan::observe::Observation;
use crate::state::{
    self, ArtifactKind, BackupRecord, BackupStatus, Frozen, SharedStore, SnapshotRecord,
};

use super::names::{
    backup_started, db_snapshot_id, image_name, is_marked, TAG_BACKUP_ID, TAG_FROZEN, TAG_POLICY,
    TAG_TARGET,
};
use super::reconcile::{made_since, CLOCK_SKEW};
use super::BackupError;

/// One backup found in AWS that the catalog lacks, whole or in part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub record: BackupRecord,
    /// Already in the catalog: only its missing artifacts are recorded.
    pub known: bool,
}

impl Found {
    /// How many artifacts of each kind it brings, by kind name.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut out = BTreeMap::new();
        for s in &self.record.snapshots {
            *out.entry(s.kind.as_str()).or_default() += 1;
        }
        out
    }
}

/// An artifact as found, with what decides its backup's status and times.
struct Piece {
    policy: String,
    backup: String,
    record: SnapshotRecord,
    done: bool,
    created: Option<DateTime<Utc>>,
    /// The freezer name its `lifeboat:frozen` tag gives, if any.
    frozen: Option<String>,
}

/// Lists what Lifeboat made for the configured policies in every
/// configured account and region, and returns what the catalog lacks of it:
/// new backups, and artifacts of backups it has. Nothing is written.
pub async fn scan(
    cloud: Arc<dyn Cloud>,
    config: &Config,
    store: &SharedStore,
) -> Result<Vec<Found>, BackupError> {
    let catalog = store.lock().expect("store").backups(None)?;
    let recorded: BTreeSet<&str> = catalog
        .iter()
        .flat_map(|b| b.snapshots.iter().map(|s| s.id.as_str()))
        .collect();
    let mut pieces = Vec::new();
    for acct in config.accounts.values() {
        let policies: Vec<String> = config
            .policies
            .values()
            .filter(|p| p.account == acct.name)
            .map(|p| p.name.clone())
            .collect();
        if policies.is_empty() {
            continue;
        }
        for region in &acct.regions {
            pieces.extend(scan_region(cloud.as_ref(), acct, region, &policies).await?);
        }
    }
    let mut by_backup: BTreeMap<(String, String), Vec<Piece>> = BTreeMap::new();
    for p in pieces {
        // The server filtered by these policies; an answer that did not is
        // not taken on trust.
        if !config.policies.contains_key(&p.policy) {
            continue;
        }
        if !recorded.contains(p.record.id.as_str()) {
            by_backup
                .entry((p.policy.clone(), p.backup.clone()))
                .or_default()
                .push(p);
        }
    }
    let mut out = Vec::new();
    for ((policy, backup), pieces) in by_backup {
        let Some(p) = config.policies.get(&policy) else {
            continue;
        };
        let known = catalog.iter().any(|b| b.policy == policy && b.id == backup);
        out.push(Found {
            record: assemble(&policy, &backup, &p.account, &listed_targets(p), pieces),
            known,
        });
    }
    Ok(out)
}

/// The targets a policy lists by id (those its selectors find cannot be
/// known for a past backup).
fn listed_targets(p: &lifeboat_schema::Policy) -> BTreeSet<String> {
    p.instances
        .iter()
        .map(|t| t.id.clone())
        .chain(p.volumes.iter().map(|t| t.id.clone()))
        .chain(p.rds.iter().chain(&p.aurora).map(|t| t.id.clone()))
        .collect()
}

/// The backup record the pieces of one backup make: `success` only when
/// every artifact is complete (snapshots completed, AMIs available with
/// their snapshots, DB snapshots available) and every target the policy
/// lists has one (the lost catalog may have called it partial: a target
/// missing is the evidence AWS keeps of that), `partial` otherwise; started
/// at the time its id names, or its earliest artifact's.
fn assemble(
    policy: &str,
    backup: &str,
    account: &str,
    listed: &BTreeSet<String>,
    pieces: Vec<Piece>,
) -> BackupRecord {
    let earliest = pieces.iter().filter_map(|p| p.created).min();
    let latest = pieces.iter().filter_map(|p| p.created).max();
    let started = backup_started(backup).or(earliest).unwrap_or_else(Utc::now);
    let mut incomplete: Vec<String> = pieces
        .iter()
        .filter(|p| !p.done)
        .map(|p| format!("{} was not complete when imported", p.record.address()))
        .collect();
    let covered: BTreeSet<&str> = pieces.iter().map(|p| p.record.target.as_str()).collect();
    for t in listed.iter().filter(|t| !covered.contains(t.as_str())) {
        incomplete.push(format!("{t}: no artifact of it in AWS when imported"));
    }
    let status = if incomplete.is_empty() {
        BackupStatus::Success
    } else {
        BackupStatus::Partial
    };
    let problems = incomplete;
    // Any artifact tagged frozen keeps the whole backup in the freezer.
    let frozen = pieces
        .iter()
        .find_map(|p| p.frozen.clone())
        .map(|name| Frozen {
            name,
            at: Utc::now(),
        });
    let mut snapshots: Vec<SnapshotRecord> = pieces.into_iter().map(|p| p.record).collect();
    snapshots.sort_by(|a, b| a.id.cmp(&b.id));
    BackupRecord {
        seq: 0,
        id: backup.to_string(),
        policy: policy.to_string(),
        account: account.to_string(),
        started,
        finished: Some(latest.unwrap_or(started).max(started)),
        status,
        frozen,
        snapshots,
        problems,
    }
}

/// What Lifeboat made for `policies` in one account and region.
async fn scan_region(
    cloud: &dyn Cloud,
    acct: &Account,
    region: &str,
    policies: &[String],
) -> Result<Vec<Piece>, BackupError> {
    let ec2 = cloud.ec2(acct, region).await?;
    let by_policy = vec![(TAG_POLICY.to_string(), policies.to_vec())];
    let mut out = Vec::new();
    let q = ImageQuery {
        ids: vec![],
        tags: by_policy.clone(),
    };
    let mut of_images = BTreeSet::new();
    for img in collect_pages(|tok| ec2.images_page(&q, tok)).await? {
        if !is_marked(&img.description, &img.tags) {
            continue;
        }
        let (policy, backup, target) = lifeboat_tags(&img.tags);
        // The name cannot be changed after creation: it must be the one
        // Lifeboat gives this backup's AMI of this target.
        if img.name != image_name(&policy, &target, &backup) || !trusted(&backup, img.created) {
            continue;
        }
        let done = img.state == ImageState::Available && !img.snapshot_ids.is_empty();
        for snap in &img.snapshot_ids {
            of_images.insert(snap.clone());
            out.push(Piece {
                policy: policy.clone(),
                backup: backup.clone(),
                record: record(
                    snap,
                    &target,
                    &target,
                    region,
                    ArtifactKind::Ebs,
                    Some(&img.id),
                ),
                done,
                created: img.created,
                frozen: img.tags.get(TAG_FROZEN).cloned(),
            });
        }
        out.push(Piece {
            record: record(&img.id, &target, &target, region, ArtifactKind::Image, None),
            policy,
            backup,
            done,
            created: img.created,
            frozen: img.tags.get(TAG_FROZEN).cloned(),
        });
    }
    let q = SnapshotQuery {
        ids: vec![],
        tags: by_policy,
        unfinished_only: false,
    };
    for d in collect_pages(|tok| ec2.described_snapshots_page(&q, tok)).await? {
        let s = d.snapshot;
        if of_images.contains(&s.id) || !is_marked(&d.description, &s.tags) {
            continue;
        }
        let (policy, backup, target) = lifeboat_tags(&s.tags);
        if !trusted(&backup, s.started) {
            continue;
        }
        out.push(Piece {
            policy,
            backup,
            record: record(
                &s.id,
                &s.volume_id,
                &target,
                region,
                ArtifactKind::Ebs,
                None,
            ),
            done: s.state == SnapshotState::Completed,
            created: s.started,
            frozen: s.tags.get(TAG_FROZEN).cloned(),
        });
    }
    // A region without an RDS client has no DB snapshots to import.
    let Ok(rds) = cloud.rds(acct, region).await else {
        return Ok(out);
    };
    for (kind, akind) in [
        (DbSnapshotKind::Instance, ArtifactKind::DbSnapshot),
        (DbSnapshotKind::Cluster, ArtifactKind::DbClusterSnapshot),
    ] {
        for s in collect_pages(|tok| rds.db_snapshots_page(kind, &[], tok)).await? {
            let (policy, backup, target) = lifeboat_tags(&s.tags);
            // No description on RDS snapshots: the tags and the id derived
            // from them stand for the marker.
            if !policies.contains(&policy)
                || backup.is_empty()
                || s.id != db_snapshot_id(&policy, &target, &backup)
                || !trusted(&backup, s.created)
            {
                continue;
            }
            out.push(Piece {
                policy,
                backup,
                record: record(&s.id, &target, &target, region, akind, None),
                done: s.status == "available",
                created: s.created,
                frozen: s.tags.get(TAG_FROZEN).cloned(),
            });
        }
    }
    Ok(out)
}

/// Could an artifact created at `created` belong to backup `backup`? Its id
/// must name a start that is not in the future, and the artifact must have
/// been created since then: tags and descriptions can be written by anyone
/// with `ec2:CreateTags`, creation times cannot, so a resource made before
/// the backup it claims (a golden AMI tagged by hand) or a backup id dated
/// ahead to rank newest is left out.
fn trusted(backup: &str, created: Option<DateTime<Utc>>) -> bool {
    backup_started(backup)
        .is_some_and(|started| started <= Utc::now() + CLOCK_SKEW && made_since(created, started))
}

fn lifeboat_tags(tags: &crate::cloud::Tags) -> (String, String, String) {
    let get = |k: &str| tags.get(k).cloned().unwrap_or_default();
    (get(TAG_POLICY), get(TAG_BACKUP_ID), get(TAG_TARGET))
}

fn record(
    id: &str,
    volume_id: &str,
    target: &str,
    region: &str,
    kind: ArtifactKind,
    image: Option<&str>,
) -> SnapshotRecord {
    SnapshotRecord {
        id: id.to_string(),
        volume_id: volume_id.to_string(),
        target: target.to_string(),
        region: region.to_string(),
        kind,
        image: image.map(str::to_string),
    }
}

/// Records what [`scan`] found, in one transaction: new backups whole, and
/// the missing artifacts of backups the catalog has (left as they are
/// otherwise). Returns how many artifacts were recorded.
pub fn record_found(store: &SharedStore, found: &[Found]) -> Result<usize, BackupError> {
    let mut n = 0;
    store.lock().expect("store").transaction(|tx| {
        // Counted again if the transaction is made again.
        n = 0;
        let mut imported: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for f in found {
            let b = &f.record;
            if f.known || tx.backup_exists(&b.policy, &b.id)? {
                for s in &b.snapshots {
                    tx.insert_snapshot(&b.policy, &b.id, s)?;
                }
            } else {
                tx.insert_backup(b)?;
                imported
                    .entry(b.policy.as_str())
                    .or_default()
                    .insert(b.id.clone());
            }
            n += b.snapshots.len();
        }
        // Retention ranks by the order taken: an imported backup takes its
        // place by time, not after every backup already recorded.
        for (policy, ids) in &imported {
            tx.place_imported(policy, ids)?;
        }
        Ok(())
    })?;
    Ok(n)
}

/// A plan's warning when the catalog has no backups and AWS holds
/// artifacts Lifeboat made for the configured policies: the state was lost
/// or started anew, and `lifeboat import` rebuilds its catalog.
pub fn hint(config: &Config, state: &state::Snapshot, obs: &Observation) -> Option<String> {
    if !state.backups.is_empty() {
        return None;
    }
    let mut policies = BTreeSet::new();
    let mut n = 0;
    for s in obs.snapshots.values() {
        if let Some(p) = s.tags.get(TAG_POLICY) {
            if config.policies.contains_key(p) {
                policies.insert(p.as_str());
                n += 1;
            }
        }
    }
    (n > 0).then(|| {
        let names: Vec<&str> = policies.into_iter().collect();
        format!(
            "the catalog has no backups, but AWS holds {n} snapshot(s) Lifeboat made for policy {}; run `lifeboat import` to rebuild the catalog from their tags",
            names.join(", ")
        )
    })
}
