//! Backups on demand (`lifeboat backup POLICY`): snapshot every target of an
//! applied policy now, record the backup in the catalog as it goes, then let
//! retention delete what falls outside the policy's generations.
//!
//! Calls per backup: one filtered describe per (region, kind) for all
//! targets together, then one create call per target with its tags inside.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use lifeboat_schema::{InstanceMode, VolumeChoice, DEFAULT_AMI_ROTATION_DAYS};

use crate::cloud::{
    collect_pages, Cloud, CloudError, CloudResult, DbSnapshotKind, DbSnapshotRequest, ImageRequest,
    InstanceSnapshotRequest, Query, Tags, VolumeSnapshotRequest,
};
use crate::plan::apply::Report;
use crate::plan::planner::{TAG_BACKUP_ID, TAG_POLICY, TAG_TARGET};
use crate::state::model::{PolicyState, TargetKind, TargetState};
use crate::state::{
    ArtifactKind, BackupRecord, BackupStatus, SharedStore, SnapshotRecord, StateError, Store,
};

mod retain;
pub use retain::{initial_ami_due, retain, retention_plan};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("policy.{0} is not in state; run `lifeboat apply` first")]
    NotApplied(String),
    #[error("policy.{0} is disabled")]
    Disabled(String),
    #[error("account {0} of the policy is not in state; run `lifeboat apply` first")]
    NoAccount(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Cloud(#[from] CloudError),
}

/// How many create calls run at once in one account and region, by default.
pub const PER_REGION_CONCURRENCY: usize = 16;

/// Bounds on the create calls in flight per (account, region), shared by
/// every backup that holds the same `Limits`: a runner's policies due
/// together stay within one bound per account and region, not one each.
#[derive(Debug, Clone)]
pub struct Limits {
    per_region: usize,
    /// One semaphore per (account, region), made on first use.
    regions: Arc<Mutex<RegionSemaphores>>,
}

type RegionSemaphores = BTreeMap<(String, String), Arc<tokio::sync::Semaphore>>;

impl Limits {
    pub fn new(per_region: usize) -> Limits {
        Limits {
            per_region: per_region.max(1),
            regions: Default::default(),
        }
    }

    pub fn per_region(&self) -> usize {
        self.per_region
    }

    fn region(&self, account: &str, region: &str) -> Arc<tokio::sync::Semaphore> {
        let mut m = self.regions.lock().expect("limits");
        m.entry((account.to_string(), region.to_string()))
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.per_region)))
            .clone()
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new(PER_REGION_CONCURRENCY)
    }
}

pub struct BackupResult {
    pub record: BackupRecord,
    /// What retention did after a successful backup.
    pub retention: Report,
}

/// The id of a backup started at `now`, unique within the policy.
fn backup_id(store: &mut Store, policy: &str, now: DateTime<Utc>) -> Result<String, StateError> {
    let base = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let taken: BTreeSet<String> = store
        .backups(Some(policy))?
        .into_iter()
        .map(|b| b.id)
        .collect();
    let mut id = base.clone();
    let mut n = 1;
    while taken.contains(&id) {
        n += 1;
        id = format!("{base}-{n}");
    }
    Ok(id)
}

enum TargetResult {
    /// The records made, and the EBS snapshots among them that the create
    /// call already reported completed (nothing to wait for).
    Taken(Vec<SnapshotRecord>, BTreeSet<String>),
    Problem(String),
}

/// How long a backup waits for its snapshots to leave `pending`.
#[derive(Debug, Clone, Copy)]
pub struct Wait {
    pub timeout: std::time::Duration,
    /// Time between two looks; the first look is immediate.
    pub interval: std::time::Duration,
}

impl Default for Wait {
    fn default() -> Self {
        Wait {
            timeout: std::time::Duration::from_secs(3600),
            interval: std::time::Duration::from_secs(15),
        }
    }
}

/// The snapshots a create call reported completed already.
fn completed(snaps: &[crate::cloud::Snapshot]) -> BTreeSet<String> {
    snaps
        .iter()
        .filter(|s| s.state == crate::cloud::SnapshotState::Completed)
        .map(|s| s.id.clone())
        .collect()
}

/// Polls the snapshots of one region until none is pending or `wait` runs
/// out: one filtered describe per 200 snapshots per look, never one per
/// snapshot, asking only for those not completed (a snapshot of the chunk
/// the answer leaves out has completed). Returns the snapshots that did not
/// complete, with why.
///
/// Asking for the unfinished ones keeps each answer small: the emulator
/// answers 1,000 completed snapshots in 1.4 s, and an empty answer in
/// 0.06 s. The ids are named in the call, so a snapshot AWS does not show
/// yet (just created) or any more (deleted meanwhile) fails the look with
/// `NotFound` and the chunk is looked at again next time, never counted as
/// completed: a backup is a generation only once AWS has shown every
/// snapshot of it completed.
async fn wait_for_completion(
    ec2: &dyn crate::cloud::Ec2,
    ids: Vec<String>,
    wait: Wait,
) -> BTreeMap<String, String> {
    use crate::cloud::{ErrorKind, SnapshotQuery, SnapshotState};
    let started = std::time::Instant::now();
    let mut open: BTreeSet<String> = ids.into_iter().collect();
    let mut failed = BTreeMap::new();
    // The first look is immediate: small snapshots are often done already.
    let mut pause = std::time::Duration::ZERO;
    while !open.is_empty() {
        if started.elapsed() >= wait.timeout {
            for id in open {
                failed.insert(
                    id,
                    format!("still pending after {}s", wait.timeout.as_secs()),
                );
            }
            break;
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        pause = wait.interval;
        let ids: Vec<String> = open.iter().cloned().collect();
        for chunk in ids.chunks(200) {
            let q = SnapshotQuery {
                ids: chunk.to_vec(),
                tags: vec![],
                unfinished_only: true,
            };
            match collect_pages(|tok| ec2.snapshots_page(&q, tok)).await {
                Ok(found) => {
                    let mut unfinished = BTreeSet::new();
                    for snap in found {
                        match snap.state {
                            SnapshotState::Pending => {
                                unfinished.insert(snap.id);
                            }
                            SnapshotState::Completed => {}
                            SnapshotState::Error => {
                                unfinished.insert(snap.id.clone());
                                open.remove(&snap.id);
                                failed.insert(snap.id, "ended in the error state".into());
                            }
                        }
                    }
                    for id in chunk.iter().filter(|id| !unfinished.contains(*id)) {
                        open.remove(id);
                    }
                }
                // A throttled or dropped look is not a failed snapshot: look
                // again next time; nor is a snapshot AWS does not list yet
                // (a deleted one stays open until the wait runs out). Any
                // other error will not heal by waiting.
                Err(e)
                    if matches!(
                        e.kind,
                        ErrorKind::Throttled | ErrorKind::Transport | ErrorKind::NotFound
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    for id in std::mem::take(&mut open) {
                        failed.insert(id, format!("could not be checked: {e}"));
                    }
                    break;
                }
            }
        }
    }
    failed
}

/// Closes backups left `running` by a process that died. Backups only run
/// under the state lock, so with the lock held any `running` backup is
/// orphaned: the snapshots AWS has for it (found by its tags, one filtered
/// list per region) are adopted into the catalog, never created twice, and
/// the backup is closed as failed so that it never counts as a generation
/// and retention cleans it up in time.
pub async fn reconcile_interrupted(
    cloud: Arc<dyn Cloud>,
    store: SharedStore,
    now: DateTime<Utc>,
) -> Result<Vec<BackupRecord>, BackupError> {
    let state = store.lock().expect("store").load()?;
    let accounts = state.accounts()?;
    let mut closed = Vec::new();
    for b in state
        .backups
        .iter()
        .filter(|b| b.status == BackupStatus::Running)
    {
        let Some(acct) = accounts.get(&b.account) else {
            continue;
        };
        let known: BTreeSet<&str> = b.snapshots.iter().map(|s| s.id.as_str()).collect();
        let mut adopted = Vec::new();
        let by_tags = vec![
            (TAG_POLICY.to_string(), vec![b.policy.clone()]),
            (TAG_BACKUP_ID.to_string(), vec![b.id.clone()]),
        ];
        for region in &acct.regions {
            let ec2 = cloud.ec2(acct, region).await?;
            // AMIs first (tagged at creation), with their snapshots found
            // through the AMI, tagged or not: they go after the AMI.
            let q = crate::cloud::ImageQuery {
                ids: vec![],
                tags: by_tags.clone(),
            };
            let mut of_image: BTreeMap<String, String> = BTreeMap::new();
            for img in collect_pages(|tok| ec2.images_page(&q, tok)).await? {
                let target = img.tags.get(TAG_TARGET).cloned().unwrap_or_default();
                for snap in &img.snapshot_ids {
                    of_image.insert(snap.clone(), img.id.clone());
                    if !known.contains(snap.as_str()) {
                        adopted.push(SnapshotRecord {
                            id: snap.clone(),
                            volume_id: target.clone(),
                            target: target.clone(),
                            region: region.clone(),
                            kind: ArtifactKind::Ebs,
                            image: Some(img.id.clone()),
                        });
                    }
                }
                if !known.contains(img.id.as_str()) {
                    adopted.push(SnapshotRecord {
                        id: img.id,
                        volume_id: target.clone(),
                        target,
                        region: region.clone(),
                        kind: ArtifactKind::Image,
                        image: None,
                    });
                }
            }
            let q = crate::cloud::SnapshotQuery {
                ids: vec![],
                tags: by_tags.clone(),
                unfinished_only: false,
            };
            for snap in collect_pages(|tok| ec2.snapshots_page(&q, tok)).await? {
                if known.contains(snap.id.as_str()) || of_image.contains_key(&snap.id) {
                    continue;
                }
                adopted.push(SnapshotRecord {
                    target: snap.tags.get(TAG_TARGET).cloned().unwrap_or_default(),
                    id: snap.id,
                    volume_id: snap.volume_id,
                    region: region.clone(),
                    kind: ArtifactKind::Ebs,
                    image: None,
                });
            }
            // DB snapshots cannot be listed by tag; their ids are derived
            // from policy, target and backup, so they are looked up by id.
            let dbs: Vec<TargetState> = state
                .targets()?
                .into_iter()
                .filter(|((p, _), t)| {
                    p == &b.policy
                        && &t.region == region
                        && matches!(t.kind, TargetKind::Rds | TargetKind::Aurora)
                })
                .map(|(_, t)| t)
                .collect();
            if dbs.is_empty() {
                continue;
            }
            let Ok(rds) = cloud.rds(acct, region).await else {
                continue;
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
                    .filter(|(id, _)| !known.contains(id.as_str()))
                    .collect();
                if ids.is_empty() {
                    continue;
                }
                let want: Vec<String> = ids.keys().cloned().collect();
                for s in collect_pages(|tok| rds.db_snapshots_page(kind, &want, tok)).await? {
                    let Some(target) = ids.get(&s.id) else {
                        continue;
                    };
                    adopted.push(SnapshotRecord {
                        id: s.id.clone(),
                        volume_id: target.clone(),
                        target: target.clone(),
                        region: region.clone(),
                        kind: akind,
                        image: None,
                    });
                }
            }
        }
        let mut problems = b.problems.clone();
        problems.push(format!(
            "interrupted before it finished; {} snapshot(s) recorded, {} adopted from AWS tags",
            b.snapshots.len(),
            adopted.len()
        ));
        store.lock().expect("store").transaction(|tx| {
            for s in &adopted {
                tx.insert_snapshot(&b.policy, &b.id, s)?;
            }
            tx.finish_backup(&b.policy, &b.id, BackupStatus::Failed, now, &problems)
        })?;
        let mut rec = b.clone();
        rec.snapshots.extend(adopted);
        rec.status = BackupStatus::Failed;
        rec.problems = problems;
        closed.push(rec);
    }
    Ok(closed)
}

/// Runs one backup of `policy` now, waiting for its snapshots to complete.
/// The caller holds the state lock.
pub async fn run(
    cloud: Arc<dyn Cloud>,
    store: SharedStore,
    policy: &str,
    now: DateTime<Utc>,
    wait: Wait,
) -> Result<BackupResult, BackupError> {
    run_with_problems(cloud, store, policy, now, wait, Vec::new()).await
}

/// [`run`], with problems known before it starts (a failed `before` script
/// under `success = "strict"`): a backup with problems is at best partial,
/// so retention does not count it as a generation.
pub async fn run_with_problems(
    cloud: Arc<dyn Cloud>,
    store: SharedStore,
    policy: &str,
    now: DateTime<Utc>,
    wait: Wait,
    known_problems: Vec<String>,
) -> Result<BackupResult, BackupError> {
    let limits = Limits::default();
    let record = take(
        cloud.clone(),
        store.clone(),
        policy,
        now,
        wait,
        known_problems,
        &limits,
    )
    .await?;
    let retention = retain(cloud, store, &record, now).await?;
    Ok(BackupResult { record, retention })
}

/// Takes one backup of `policy` and records it, without retention: the
/// snapshots (or AMIs, DB snapshots), their completion, the final status.
/// `known_problems` (a failed `before` script under `success = "strict"`)
/// make the backup at best partial. `limits` bounds the create calls in
/// flight per account and region.
pub async fn take(
    cloud: Arc<dyn Cloud>,
    store: SharedStore,
    policy: &str,
    now: DateTime<Utc>,
    wait: Wait,
    known_problems: Vec<String>,
    limits: &Limits,
) -> Result<BackupRecord, BackupError> {
    let state = store.lock().expect("store").load()?;
    let pol: PolicyState = state
        .policy(policy)?
        .ok_or_else(|| BackupError::NotApplied(policy.to_string()))?;
    if !pol.enabled {
        return Err(BackupError::Disabled(policy.to_string()));
    }
    let acct = state
        .accounts()?
        .remove(&pol.account)
        .ok_or_else(|| BackupError::NoAccount(pol.account.clone()))?;
    let targets: Vec<TargetState> = state
        .targets()?
        .into_iter()
        .filter(|((p, _), _)| p == policy)
        .map(|(_, t)| t)
        .collect();

    let id = {
        let mut s = store.lock().expect("store");
        let id = backup_id(&mut s, policy, now)?;
        let rec = BackupRecord {
            id: id.clone(),
            policy: policy.to_string(),
            account: pol.account.clone(),
            started: now,
            finished: None,
            status: BackupStatus::Running,
            frozen: None,
            snapshots: vec![],
            problems: vec![],
        };
        s.transaction(|tx| tx.insert_backup(&rec))?;
        crate::failpoint::hit(crate::failpoint::BACKUP_STARTED);
        id
    };

    let mut by_region: BTreeMap<String, Vec<TargetState>> = BTreeMap::new();
    for t in targets.iter().cloned() {
        by_region.entry(t.region.clone()).or_default().push(t);
    }
    let mut problems = known_problems;
    // Targets whose snapshots all exist and completed.
    let mut taken: BTreeSet<String> = BTreeSet::new();
    if targets.is_empty() {
        problems.push("the policy has no targets".to_string());
    }
    for (region, ts) in by_region {
        let ec2 = match cloud.ec2(&acct, &region).await {
            Ok(c) => c,
            Err(e) => {
                problems.extend(ts.iter().map(|t| format!("{}: {e}", t.id)));
                continue;
            }
        };
        // A describe only for the instances whose root volume alone is backed
        // up (the volume list is needed to leave the others out), one call per
        // 200. Every other target goes straight to its create call, which
        // itself says when an instance is gone: the emulator spends over a
        // second on each 200-instance describe, and AWS charges it to the
        // account's request rate.
        let ids: Vec<String> = ts
            .iter()
            .filter(|t| t.kind == TargetKind::Instance && t.volumes == VolumeChoice::Root)
            .map(|t| t.id.clone())
            .collect();
        let mut instances = BTreeMap::new();
        for chunk in ids.chunks(200) {
            let q = Query {
                ids: chunk.to_vec(),
                tags: vec![],
            };
            match collect_pages(|tok| ec2.instances_page(&q, tok)).await {
                Ok(found) => instances.extend(found.into_iter().map(|i| (i.id.clone(), i))),
                Err(e) => problems.push(format!("cannot list instances: {e}")),
            }
        }
        let vids: Vec<String> = ts
            .iter()
            .filter(|t| t.kind == TargetKind::Volume)
            .map(|t| t.id.clone())
            .collect();
        let mut volumes = BTreeMap::new();
        for chunk in vids.chunks(200) {
            let q = Query {
                ids: chunk.to_vec(),
                tags: vec![],
            };
            match collect_pages(|tok| ec2.volumes_page(&q, tok)).await {
                Ok(found) => volumes.extend(found.into_iter().map(|v| (v.id.clone(), v))),
                Err(e) => problems.push(format!("cannot list volumes: {e}")),
            }
        }
        // One RDS client for the region's database targets, if any.
        let rds_client: Result<Arc<dyn crate::cloud::Rds>, String> = if ts
            .iter()
            .any(|t| matches!(t.kind, TargetKind::Rds | TargetKind::Aurora))
        {
            cloud.rds(&acct, &region).await.map_err(|e| e.to_string())
        } else {
            Err("no database targets".into())
        };
        let sem = limits.region(&pol.account, &region);
        let mut jobs = tokio::task::JoinSet::new();
        for t in ts {
            let tags: Tags = [
                (TAG_POLICY.to_string(), policy.to_string()),
                (TAG_BACKUP_ID.to_string(), id.clone()),
                (TAG_TARGET.to_string(), t.id.clone()),
            ]
            .into();
            let description = format!("Lifeboat backup {id} of policy {policy}, target {}", t.id);
            let ec2 = ec2.clone();
            let sem = sem.clone();
            let region = region.clone();
            let instance = instances.get(&t.id).cloned();
            let volume = volumes.get(&t.id).cloned();
            // `Some(reboot)` when this backup of the instance is an AMI.
            let image_reboot = match t.mode {
                _ if t.kind != TargetKind::Instance => None,
                InstanceMode::Snapshots => None,
                InstanceMode::Ami => Some(false),
                InstanceMode::AmiReboot => Some(true),
                InstanceMode::InitialAmi => {
                    let days = t.ami_rotation.unwrap_or(DEFAULT_AMI_ROTATION_DAYS);
                    initial_ami_due(&state.backups, policy, &t.id, days, now).then_some(false)
                }
            };
            let rds =
                matches!(t.kind, TargetKind::Rds | TargetKind::Aurora).then(|| rds_client.clone());
            let policy_name = policy.to_string();
            let backup = id.clone();
            jobs.spawn(async move {
                let _permit = sem.acquire_owned().await.expect("semaphore");
                let record = |s: crate::cloud::Snapshot| SnapshotRecord {
                    id: s.id,
                    volume_id: s.volume_id,
                    target: t.id.clone(),
                    region: region.clone(),
                    kind: ArtifactKind::Ebs,
                    image: None,
                };
                // Everything but EBS snapshots: an AMI or a DB snapshot, its
                // source in `volume_id`.
                let artifact = |id: String, kind: ArtifactKind| SnapshotRecord {
                    id,
                    volume_id: t.id.clone(),
                    target: t.id.clone(),
                    region: region.clone(),
                    kind,
                    image: None,
                };
                match t.kind {
                    TargetKind::Instance => {
                        let missing = || {
                            TargetResult::Problem(format!(
                                "instance {} is missing (terminated or deleted)",
                                t.id
                            ))
                        };
                        if instance.as_ref().is_some_and(|i| i.state.is_gone()) {
                            return missing();
                        }
                        if let Some(reboot) = image_reboot {
                            let req = ImageRequest {
                                instance_id: t.id.clone(),
                                name: image_name(policy_name.as_str(), &t.id, &backup),
                                description,
                                reboot,
                                tags,
                            };
                            return match ec2.create_image(&req).await {
                                Ok(ami) => TargetResult::Taken(
                                    vec![artifact(ami, ArtifactKind::Image)],
                                    BTreeSet::new(),
                                ),
                                Err(e) => TargetResult::Problem(e.to_string()),
                            };
                        }
                        let mut exclude: Vec<String> = t.exclude_volumes.clone();
                        if t.volumes == VolumeChoice::Root {
                            let Some(i) = &instance else { return missing() };
                            exclude.extend(
                                i.volumes
                                    .iter()
                                    .filter(|v| !v.is_root)
                                    .map(|v| v.volume_id.clone()),
                            );
                        }
                        exclude.sort();
                        exclude.dedup();
                        let req = InstanceSnapshotRequest {
                            instance_id: t.id.clone(),
                            exclude_boot_volume: t.volumes == VolumeChoice::Data,
                            exclude_volume_ids: exclude,
                            description,
                            tags,
                        };
                        match ec2.create_instance_snapshots(&req).await {
                            // A terminated instance has no volumes left.
                            Ok(snaps) if snaps.is_empty() => TargetResult::Problem(format!(
                                "instance {} has no volumes to snapshot (terminated?)",
                                t.id
                            )),
                            Err(e) if e.kind == crate::cloud::ErrorKind::NotFound => missing(),
                            Ok(snaps) => {
                                let done = completed(&snaps);
                                TargetResult::Taken(snaps.into_iter().map(record).collect(), done)
                            }
                            Err(e) => TargetResult::Problem(e.to_string()),
                        }
                    }
                    TargetKind::Volume => {
                        if volume.is_none() {
                            return TargetResult::Problem(format!(
                                "volume {} is missing (deleted)",
                                t.id
                            ));
                        }
                        let req = VolumeSnapshotRequest {
                            volume_id: t.id.clone(),
                            description,
                            tags,
                        };
                        match ec2.create_volume_snapshot(&req).await {
                            Ok(s) => {
                                let done = completed(std::slice::from_ref(&s));
                                TargetResult::Taken(vec![record(s)], done)
                            }
                            Err(e) => TargetResult::Problem(e.to_string()),
                        }
                    }
                    TargetKind::Rds | TargetKind::Aurora => {
                        let (kind, artifact_kind) = if t.kind == TargetKind::Rds {
                            (DbSnapshotKind::Instance, ArtifactKind::DbSnapshot)
                        } else {
                            (DbSnapshotKind::Cluster, ArtifactKind::DbClusterSnapshot)
                        };
                        let rds = match rds {
                            Some(Ok(r)) => r,
                            Some(Err(e)) => return TargetResult::Problem(format!("{}: {e}", t.id)),
                            None => unreachable!("an RDS client is opened for database targets"),
                        };
                        let req = DbSnapshotRequest {
                            kind,
                            source_id: t.id.clone(),
                            snapshot_id: db_snapshot_id(policy_name.as_str(), &t.id, &backup),
                            tags,
                        };
                        match rds.create_db_snapshot(&req).await {
                            Ok(s) => TargetResult::Taken(
                                vec![artifact(s.id, artifact_kind)],
                                BTreeSet::new(),
                            ),
                            Err(e) => TargetResult::Problem(e.to_string()),
                        }
                    }
                }
            });
        }
        let mut created: BTreeMap<String, String> = BTreeMap::new();
        // AMIs and DB (cluster) snapshots made, by id: (target, kind).
        let mut artifacts: BTreeMap<String, (String, ArtifactKind)> = BTreeMap::new();
        while let Some(r) = jobs.join_next().await {
            match r.expect("backup task panicked") {
                TargetResult::Taken(snaps, done) => {
                    if let Some(first) = snaps.first() {
                        taken.insert(first.target.clone());
                    }
                    for s in &snaps {
                        if s.kind.is_ebs() && done.contains(&s.id) {
                            // Completed in the create call's own answer.
                        } else if s.kind.is_ebs() {
                            created.insert(s.id.clone(), s.target.clone());
                        } else {
                            artifacts.insert(s.id.clone(), (s.target.clone(), s.kind));
                        }
                    }
                    crate::failpoint::hit(crate::failpoint::BACKUP_CREATED);
                    // Recorded at once: a crash later cannot forget a snapshot
                    // that exists.
                    let mut s = store.lock().expect("store");
                    s.transaction(|tx| {
                        for snap in &snaps {
                            tx.insert_snapshot(policy, &id, snap)?;
                        }
                        Ok(())
                    })?;
                }
                TargetResult::Problem(p) => problems.push(p),
            }
        }
        // A backup is only as good as its slowest snapshot: retention must
        // not count it before every snapshot has completed.
        let unfinished =
            wait_for_completion(ec2.as_ref(), created.keys().cloned().collect(), wait).await;
        for (snap, why) in unfinished {
            let target = created.get(&snap).cloned().unwrap_or_default();
            taken.remove(&target);
            problems.push(format!("snapshot {snap} of {target} {why}"));
        }
        if !artifacts.is_empty() {
            let unfinished = finish_artifacts(
                ec2.as_ref(),
                rds_client.as_ref().ok().map(|r| r.as_ref()),
                &store,
                policy,
                &id,
                &region,
                &artifacts,
                wait,
            )
            .await?;
            for (id, why) in unfinished {
                let target = artifacts.get(&id).map(|a| a.0.clone()).unwrap_or_default();
                taken.remove(&target);
                problems.push(format!("{why} (target {target})"));
            }
        }
    }
    problems.sort();
    let status = match (taken.len(), problems.is_empty()) {
        (0, _) => BackupStatus::Failed,
        (_, true) => BackupStatus::Success,
        (_, false) => BackupStatus::Partial,
    };
    {
        let mut s = store.lock().expect("store");
        crate::failpoint::hit(crate::failpoint::BACKUP_BEFORE_FINISH);
        s.transaction(|tx| tx.finish_backup(policy, &id, status, Utc::now().max(now), &problems))?;
    }
    let record = store
        .lock()
        .expect("store")
        .backups(Some(policy))?
        .into_iter()
        .find(|b| b.id == id)
        .expect("the backup just recorded is in the catalog");
    Ok(record)
}

/// An AMI name (unique per account and region; letters, digits and
/// `()[] ./-'@_`, at most 128 characters).
fn image_name(policy: &str, target: &str, backup: &str) -> String {
    let raw = format!("lifeboat-{policy}-{target}-{backup}");
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(128)
        .collect()
}

/// A DB snapshot identifier: letters, digits and single hyphens, starting
/// with a letter, not ending with a hyphen, at most 255 characters.
fn db_snapshot_id(policy: &str, target: &str, backup: &str) -> String {
    let raw = format!("lifeboat-{policy}-{target}-{backup}").to_ascii_lowercase();
    let mut out = String::new();
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    out.truncate(255);
    out.trim_end_matches('-').to_string()
}

/// What one look at a resource says.
enum Look<T> {
    Pending,
    Done(T),
    Failed(String),
}

/// Polls `ids` with `look` (one call for all of them) until none is pending
/// or `wait` runs out. Returns what finished, with `look`'s data, and what
/// did not, with why.
async fn wait_for<T, F, Fut>(
    ids: Vec<String>,
    wait: Wait,
    mut look: F,
) -> (BTreeMap<String, T>, BTreeMap<String, String>)
where
    F: FnMut(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = CloudResult<Vec<(String, Look<T>)>>>,
{
    use crate::cloud::ErrorKind;
    let started = std::time::Instant::now();
    let mut open: BTreeSet<String> = ids.into_iter().collect();
    let mut done = BTreeMap::new();
    let mut failed = BTreeMap::new();
    let mut pause = std::time::Duration::ZERO;
    while !open.is_empty() {
        if started.elapsed() >= wait.timeout {
            for id in std::mem::take(&mut open) {
                failed.insert(
                    id,
                    format!("still pending after {}s", wait.timeout.as_secs()),
                );
            }
            break;
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        pause = wait.interval;
        match look(open.iter().cloned().collect()).await {
            Ok(found) => {
                for (id, l) in found {
                    if !open.contains(&id) {
                        continue;
                    }
                    match l {
                        Look::Pending => {}
                        Look::Done(t) => {
                            open.remove(&id);
                            done.insert(id, t);
                        }
                        Look::Failed(why) => {
                            open.remove(&id);
                            failed.insert(id, why);
                        }
                    }
                }
            }
            Err(e) if matches!(e.kind, ErrorKind::Throttled | ErrorKind::Transport) => {}
            Err(e) => {
                for id in std::mem::take(&mut open) {
                    failed.insert(id, format!("could not be checked: {e}"));
                }
            }
        }
    }
    (done, failed)
}

/// Waits for the AMIs and DB snapshots of one region to become available
/// (one filtered describe per kind per look, for all of them), then tags
/// each AMI's snapshots and records them in the catalog under the AMI.
/// Returns the ids of what did not finish, each with a sentence saying why.
#[allow(clippy::too_many_arguments)]
async fn finish_artifacts(
    ec2: &dyn crate::cloud::Ec2,
    rds: Option<&dyn crate::cloud::Rds>,
    store: &SharedStore,
    policy: &str,
    backup: &str,
    region: &str,
    artifacts: &BTreeMap<String, (String, ArtifactKind)>,
    wait: Wait,
) -> Result<BTreeMap<String, String>, BackupError> {
    use crate::cloud::{ImageQuery, ImageState};
    let mut out = BTreeMap::new();
    let of = |k: ArtifactKind| -> Vec<String> {
        artifacts
            .iter()
            .filter(|(_, (_, kind))| *kind == k)
            .map(|(id, _)| id.clone())
            .collect()
    };
    let amis = of(ArtifactKind::Image);
    if !amis.is_empty() {
        let (done, failed) = wait_for(amis, wait, |ids| async move {
            let q = ImageQuery { ids, tags: vec![] };
            let found = collect_pages(|tok| ec2.images_page(&q, tok)).await?;
            Ok(found
                .into_iter()
                .map(|i| {
                    let l = match i.state {
                        ImageState::Pending => Look::Pending,
                        ImageState::Available => Look::Done(i.snapshot_ids),
                        ImageState::Failed => Look::Failed("ended in a failed state".into()),
                    };
                    (i.id, l)
                })
                .collect())
        })
        .await;
        out.extend(
            failed
                .into_iter()
                .map(|(id, why)| (id.clone(), format!("AMI {id} {why}"))),
        );
        for (ami, snaps) in done {
            let target = artifacts.get(&ami).map(|a| a.0.clone()).unwrap_or_default();
            if snaps.is_empty() {
                continue;
            }
            // The AMI's snapshots only exist once CreateImage has made them,
            // and a `snapshot` TagSpecification on CreateImage is not honoured
            // everywhere (the emulator rejects it), so the AMI alone is tagged
            // at creation and its snapshots here, one CreateTags call per AMI
            // for all of them: restart reconciliation and anyone auditing the
            // account find them by these tags.
            let tags: Tags = [
                (TAG_POLICY.to_string(), policy.to_string()),
                (TAG_BACKUP_ID.to_string(), backup.to_string()),
                (TAG_TARGET.to_string(), target.clone()),
            ]
            .into();
            if let Err(e) = ec2.create_tags(&snaps, &tags).await {
                out.insert(
                    ami.clone(),
                    format!("the snapshots of AMI {ami} could not be tagged: {e}"),
                );
            }
            let records: Vec<SnapshotRecord> = snaps
                .into_iter()
                .map(|id| SnapshotRecord {
                    id,
                    volume_id: target.clone(),
                    target: target.clone(),
                    region: region.to_string(),
                    kind: ArtifactKind::Ebs,
                    image: Some(ami.clone()),
                })
                .collect();
            store.lock().expect("store").transaction(|tx| {
                for r in &records {
                    tx.insert_snapshot(policy, backup, r)?;
                }
                Ok(())
            })?;
        }
    }
    for (kind, akind, noun) in [
        (
            DbSnapshotKind::Instance,
            ArtifactKind::DbSnapshot,
            "DB snapshot",
        ),
        (
            DbSnapshotKind::Cluster,
            ArtifactKind::DbClusterSnapshot,
            "DB cluster snapshot",
        ),
    ] {
        let ids = of(akind);
        if ids.is_empty() {
            continue;
        }
        let Some(rds) = rds else {
            for id in ids {
                let why = format!("{noun} {id} could not be checked: no RDS client");
                out.insert(id, why);
            }
            continue;
        };
        let (_, failed) = wait_for(ids, wait, |ids| async move {
            let found = collect_pages(|tok| rds.db_snapshots_page(kind, &ids, tok)).await?;
            Ok(found
                .into_iter()
                .map(|s| {
                    let l = match s.status.as_str() {
                        "available" => Look::Done(()),
                        "failed" | "error" | "deleted" | "deleting" | "incompatible-restore" => {
                            Look::Failed(format!("ended in the {} state", s.status))
                        }
                        _ => Look::Pending,
                    };
                    (s.id, l)
                })
                .collect())
        })
        .await;
        out.extend(
            failed
                .into_iter()
                .map(|(id, why)| (id.clone(), format!("{noun} {id} {why}"))),
        );
    }
    Ok(out)
}
