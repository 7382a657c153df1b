//! One backup's copies to one destination, driven to the end: adopt copies
//! a killed process made, start copies while the destination has room
//! (shared with the vault first when it is another account), record each
//! copy as soon as its call returns, poll until every copy completed,
//! failed or the DR timeout passed, then unshare and record the outcome.
//!
//! Calls per run: the source describes (one per kind and 200 ids, for
//! encryption and ARNs), one adoption list per kind in the destination,
//! exactly one copy call per artifact (plus a share and an unshare per
//! artifact across accounts), and one describe per kind per look.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use lifeboat_schema::{Account, Dr};
use tokio::sync::OwnedSemaphorePermit;

use super::keys::{self, AliasCache, KeyChoice};
use super::{names, route, DrWork};
use crate::backup::names::image_name;
use crate::cloud::{
    collect_chunked, CloudError, DbCopyRequest, DbSnapshotKind, Encryption, ErrorKind,
    ImageCopyRequest, ImageQuery, ImageState, SnapshotCopyRequest, SnapshotQuery, SnapshotState,
};
use crate::state::{
    ArtifactKind, BackupRecord, DrCopyRecord, DrRun, DrStatus, SharedStore, SnapshotRecord,
    StateError,
};

/// What one run knows before it copies anything.
struct Plan<'a> {
    work: &'a DrWork,
    run: DrRun,
    dr: Dr,
    backup: BackupRecord,
    source: Account,
    dest: Account,
    /// The artifacts this destination receives, in the backup's order.
    artifacts: Vec<SnapshotRecord>,
    /// Encryption and (for DB snapshots) ARN of each source artifact.
    described: BTreeMap<String, (Encryption, String)>,
    /// Tags of the source volumes and instances (for the key tag).
    source_tags: BTreeMap<String, crate::cloud::Tags>,
}

/// A copy started and not settled, with the room it takes.
struct InFlight {
    record: DrCopyRecord,
    _permits: Vec<OwnedSemaphorePermit>,
}

fn record(
    store: &SharedStore,
    f: impl FnOnce(&mut crate::state::Tx<'_>) -> Result<(), StateError>,
) -> Result<(), StateError> {
    store.lock().expect("store").transaction(f)
}

/// Drives `run` to its end (or, without `work.wait`, until the copies that
/// fit are started). Returns the run as recorded.
pub(super) async fn drive(work: &DrWork, run: DrRun) -> Result<DrRun, StateError> {
    let plan = match prepare(work, run.clone()).await {
        Ok(p) => p,
        Err(problem) => return settle(work, run, DrStatus::Failed, problem),
    };
    let existing: BTreeMap<String, DrCopyRecord> = work
        .store
        .lock()
        .expect("store")
        .dr_copies(Some(&run.policy))?
        .into_iter()
        .filter(|c| {
            c.backup_id == run.backup_id && c.destination == run.destination && c.image.is_none()
        })
        .map(|c| (c.source_id.clone(), c))
        .collect();
    let mut copies = Copies::new(&plan);
    for c in existing.values() {
        copies.add_recorded(c.clone());
    }
    let todo: Vec<SnapshotRecord> = plan
        .artifacts
        .iter()
        .filter(|s| !existing.contains_key(&s.id))
        .cloned()
        .collect();
    let todo = match adopt(&plan, todo, &mut copies).await {
        Ok(t) => t,
        Err(e) => return settle(work, plan.run, DrStatus::Failed, e.to_string()),
    };
    let mut run = plan.run.clone();
    if run.status == DrStatus::Pending {
        run.status = DrStatus::InProgress;
        run.updated = work.now;
        record(&work.store, |tx| tx.put_dr_run(&run))?;
    }
    copies.run(&plan, todo).await
}

/// Settles `run` with `status` and `detail`, recording it (and an alert
/// for a failure or timeout).
fn settle(
    work: &DrWork,
    mut run: DrRun,
    status: DrStatus,
    detail: String,
) -> Result<DrRun, StateError> {
    run.status = status;
    run.detail = detail;
    run.updated = work.now;
    let alert = matches!(status, DrStatus::Failed | DrStatus::TimedOut).then(|| {
        format!(
            "DR copy of backup {} to {} {}: {}",
            run.backup_id,
            run.destination,
            if status == DrStatus::Failed {
                "failed"
            } else {
                "timed out"
            },
            run.detail
        )
    });
    record(&work.store, |tx| {
        tx.put_dr_run(&run)?;
        if let Some(m) = &alert {
            tx.open_alert(&run.policy, run.updated, m)?;
        }
        Ok(())
    })?;
    Ok(run)
}

/// Loads what the run needs from the state and describes the sources.
async fn prepare(work: &DrWork, run: DrRun) -> Result<Plan<'_>, String> {
    let state = work
        .store
        .lock()
        .expect("store")
        .load()
        .map_err(|e| e.to_string())?;
    let policy = state
        .policy(&run.policy)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("policy {} is no longer applied", run.policy))?;
    let dr = policy
        .dr
        .clone()
        .ok_or_else(|| format!("policy {} no longer has a dr block", run.policy))?;
    let backup = state
        .backups
        .iter()
        .find(|b| b.policy == run.policy && b.id == run.backup_id)
        .cloned()
        .ok_or_else(|| format!("backup {} is no longer in the catalog", run.backup_id))?;
    let accounts = state.accounts().map_err(|e| e.to_string())?;
    let source = accounts
        .get(&backup.account)
        .cloned()
        .ok_or_else(|| format!("account {} is not applied", backup.account))?;
    let dest = accounts
        .get(&run.destination.account)
        .cloned()
        .ok_or_else(|| format!("account {} is not applied", run.destination.account))?;
    let artifacts: Vec<SnapshotRecord> = route::routes(&dr, &policy.account, &backup.snapshots)
        .remove(&run.destination)
        .unwrap_or_default()
        .into_iter()
        .cloned()
        .collect();
    let mut plan = Plan {
        work,
        run,
        dr,
        backup,
        source,
        dest,
        artifacts,
        described: BTreeMap::new(),
        source_tags: BTreeMap::new(),
    };
    describe_sources(&mut plan)
        .await
        .map_err(|e| e.to_string())?;
    Ok(plan)
}

/// Encryption (and DB ARNs) of the artifacts, one describe per region and
/// kind; the source volumes' and instances' tags only when one is encrypted.
async fn describe_sources(plan: &mut Plan<'_>) -> Result<(), CloudError> {
    let cloud = plan.work.cloud.clone();
    let mut by_region: BTreeMap<(String, ArtifactKind), Vec<String>> = BTreeMap::new();
    for s in &plan.artifacts {
        match s.kind {
            ArtifactKind::Image => {
                // An AMI is encrypted as its snapshots are: describe the first.
                if let Some(first) = plan
                    .backup
                    .snapshots
                    .iter()
                    .find(|x| x.image.as_deref() == Some(&s.id))
                {
                    by_region
                        .entry((s.region.clone(), ArtifactKind::Ebs))
                        .or_default()
                        .push(first.id.clone());
                }
            }
            k => by_region
                .entry((s.region.clone(), k))
                .or_default()
                .push(s.id.clone()),
        }
    }
    for ((region, kind), ids) in by_region {
        match kind {
            ArtifactKind::Ebs | ArtifactKind::Image => {
                let ec2 = cloud.ec2(&plan.source, &region).await?;
                let found = collect_chunked(&ids, |chunk, t| {
                    let ec2 = ec2.clone();
                    let q = SnapshotQuery {
                        ids: chunk.to_vec(),
                        ..Default::default()
                    };
                    async move { ec2.described_snapshots_page(&q, t).await }
                })
                .await?;
                for d in found {
                    plan.described
                        .insert(d.snapshot.id.clone(), (d.encryption, String::new()));
                }
            }
            ArtifactKind::DbSnapshot | ArtifactKind::DbClusterSnapshot => {
                let db_kind = db_kind(kind);
                let rds = cloud.rds(&plan.source, &region).await?;
                let found = collect_chunked(&ids, |chunk, t| {
                    let rds = rds.clone();
                    let chunk = chunk.to_vec();
                    async move { rds.db_snapshots_page(db_kind, &chunk, t).await }
                })
                .await?;
                for d in found {
                    plan.described.insert(d.id.clone(), (d.encryption, d.arn));
                }
            }
        }
    }
    // Images take their first snapshot's encryption.
    for s in plan
        .artifacts
        .iter()
        .filter(|s| s.kind == ArtifactKind::Image)
    {
        if let Some(first) = plan
            .backup
            .snapshots
            .iter()
            .find(|x| x.image.as_deref() == Some(&s.id))
        {
            if let Some(e) = plan.described.get(&first.id).cloned() {
                plan.described.insert(s.id.clone(), e);
            }
        }
    }
    if plan.described.values().any(|(e, _)| e.encrypted) {
        source_tags(plan).await?;
    }
    Ok(())
}

/// The tags of the source volumes and instances, by id.
async fn source_tags(plan: &mut Plan<'_>) -> Result<(), CloudError> {
    let cloud = plan.work.cloud.clone();
    let mut regions: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for s in plan.backup.snapshots.iter() {
        let e = regions.entry(s.region.clone()).or_default();
        if s.volume_id.starts_with("vol-") && !e.0.contains(&s.volume_id) {
            e.0.push(s.volume_id.clone());
        }
        if s.target.starts_with("i-") && !e.1.contains(&s.target) {
            e.1.push(s.target.clone());
        }
    }
    for (region, (vols, insts)) in regions {
        let ec2 = cloud.ec2(&plan.source, &region).await?;
        let v = collect_chunked(&vols, |chunk, t| {
            let ec2 = ec2.clone();
            let q = crate::cloud::Query {
                ids: chunk.to_vec(),
                tags: vec![],
            };
            async move { ec2.volumes_page(&q, t).await }
        })
        .await?;
        plan.source_tags
            .extend(v.into_iter().map(|v| (v.id, v.tags)));
        let i = collect_chunked(&insts, |chunk, t| {
            let ec2 = ec2.clone();
            let q = crate::cloud::Query {
                ids: chunk.to_vec(),
                tags: vec![],
            };
            async move { ec2.instances_page(&q, t).await }
        })
        .await?;
        plan.source_tags
            .extend(i.into_iter().map(|i| (i.id, i.tags)));
    }
    Ok(())
}

pub(super) fn db_kind(kind: ArtifactKind) -> DbSnapshotKind {
    match kind {
        ArtifactKind::DbClusterSnapshot => DbSnapshotKind::Cluster,
        _ => DbSnapshotKind::Instance,
    }
}

/// Copies a killed process made but did not record: found in the
/// destination by their tags (EBS, AMIs) or their derived ids (DB), and
/// recorded now. Returns what is left to copy.
async fn adopt(
    plan: &Plan<'_>,
    todo: Vec<SnapshotRecord>,
    copies: &mut Copies,
) -> Result<Vec<SnapshotRecord>, CloudError> {
    if todo.is_empty() {
        return Ok(todo);
    }
    let cloud = &plan.work.cloud;
    let region = &plan.run.destination.region;
    let tags = vec![
        (
            names::TAG_DR_POLICY.to_string(),
            vec![plan.run.policy.clone()],
        ),
        (
            names::TAG_DR_BACKUP_ID.to_string(),
            vec![plan.run.backup_id.clone()],
        ),
    ];
    let mut found: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
    if todo.iter().any(|s| s.kind == ArtifactKind::Ebs) {
        let ec2 = cloud.ec2(&plan.dest, region).await?;
        let q = SnapshotQuery {
            tags: tags.clone(),
            ..Default::default()
        };
        for s in crate::cloud::collect_pages(|t| {
            let (ec2, q) = (ec2.clone(), q.clone());
            async move { ec2.snapshots_page(&q, t).await }
        })
        .await?
        {
            if let Some(src) = s.tags.get(names::TAG_DR_SOURCE) {
                found.insert(src.clone(), (s.id, None));
            }
        }
    }
    if todo.iter().any(|s| s.kind == ArtifactKind::Image) {
        let ec2 = cloud.ec2(&plan.dest, region).await?;
        let q = ImageQuery {
            tags: tags.clone(),
            ..Default::default()
        };
        for i in crate::cloud::collect_pages(|t| {
            let (ec2, q) = (ec2.clone(), q.clone());
            async move { ec2.images_page(&q, t).await }
        })
        .await?
        {
            if let Some(src) = i.tags.get(names::TAG_DR_SOURCE) {
                found.insert(src.clone(), (i.id, None));
            }
        }
    }
    for kind in [ArtifactKind::DbSnapshot, ArtifactKind::DbClusterSnapshot] {
        let ids: Vec<String> = todo
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| s.id.clone())
            .collect();
        if ids.is_empty() {
            continue;
        }
        let rds = cloud.rds(&plan.dest, region).await?;
        let db = db_kind(kind);
        for d in collect_chunked(&ids, |chunk, t| {
            let rds = rds.clone();
            let chunk = chunk.to_vec();
            async move { rds.db_snapshots_page(db, &chunk, t).await }
        })
        .await?
        {
            // Only a copy carrying this backup's tags is ours to adopt.
            if d.tags.get(names::TAG_DR_BACKUP_ID) == Some(&plan.run.backup_id) {
                found.insert(d.id.clone(), (d.id.clone(), Some(d.arn.clone())));
            }
        }
    }
    let mut left = Vec::new();
    for s in todo {
        match found.remove(&s.id) {
            Some((id, arn)) => {
                let rec = plan.copy_record(&s, id, arn);
                record(&plan.work.store, |tx| tx.put_dr_copy(&rec))
                    .map_err(|e| state_error(plan, e))?;
                copies.add_recorded(rec);
            }
            None => left.push(s),
        }
    }
    Ok(left)
}

fn state_error(plan: &Plan<'_>, e: StateError) -> CloudError {
    CloudError {
        kind: ErrorKind::Other,
        account: plan.run.destination.account.clone(),
        region: plan.run.destination.region.clone(),
        action: "state".into(),
        resource: None,
        code: None,
        message: e.to_string(),
    }
}

impl Plan<'_> {
    fn cross_account(&self) -> bool {
        self.run.destination.account != self.backup.account
    }

    fn copy_record(&self, s: &SnapshotRecord, id: String, arn: Option<String>) -> DrCopyRecord {
        DrCopyRecord {
            id,
            destination: self.run.destination.clone(),
            kind: s.kind,
            arn: arn.filter(|a| !a.is_empty()),
            image: None,
            source_id: s.id.clone(),
            source_region: s.region.clone(),
            source_account: self.backup.account.clone(),
            target: s.target.clone(),
            policy: self.run.policy.clone(),
            backup_id: self.run.backup_id.clone(),
            backup_seq: self.run.backup_seq,
            status: DrStatus::InProgress,
            started: self.work.now,
            finished: None,
            expired: None,
            problem: String::new(),
        }
    }

    /// The snapshots of AMI `image` in the backup.
    fn image_snapshots(&self, image: &str) -> Vec<String> {
        self.backup
            .snapshots
            .iter()
            .filter(|x| x.image.as_deref() == Some(image))
            .map(|x| x.id.clone())
            .collect()
    }

    /// Shares (or unshares) the source with the destination account.
    async fn share(
        &self,
        s: &SnapshotRecord,
        dest_id: &str,
        share: bool,
    ) -> Result<(), CloudError> {
        let cloud = &self.work.cloud;
        match s.kind {
            ArtifactKind::Ebs => {
                let ec2 = cloud.ec2(&self.source, &s.region).await?;
                ec2.share_snapshot(&s.id, dest_id, share).await
            }
            ArtifactKind::Image => {
                let ec2 = cloud.ec2(&self.source, &s.region).await?;
                ec2.share_image(&s.id, dest_id, share).await?;
                for snap in self.image_snapshots(&s.id) {
                    ec2.share_snapshot(&snap, dest_id, share).await?;
                }
                Ok(())
            }
            ArtifactKind::DbSnapshot | ArtifactKind::DbClusterSnapshot => {
                let rds = cloud.rds(&self.source, &s.region).await?;
                rds.share_db_snapshot(db_kind(s.kind), &s.id, dest_id, share)
                    .await
            }
        }
    }

    /// The copy call for `s`; returns the copy's id and ARN.
    async fn copy_call(
        &self,
        s: &SnapshotRecord,
        key: &KeyChoice,
        source_account_id: &str,
    ) -> Result<(String, Option<String>), CloudError> {
        let cloud = &self.work.cloud;
        let region = &self.run.destination.region;
        let tags = names::copy_tags(&self.run.policy, &self.run.backup_id, s, source_account_id);
        match s.kind {
            ArtifactKind::Ebs => {
                let ec2 = cloud.ec2(&self.dest, region).await?;
                let req = SnapshotCopyRequest {
                    source_region: s.region.clone(),
                    source_id: s.id.clone(),
                    description: names::copy_description(
                        &self.run.policy,
                        &self.run.backup_id,
                        &s.id,
                    ),
                    tags,
                    kms_key_id: key.key_for(s.kind),
                    encrypt: key.encrypted(),
                };
                Ok((ec2.copy_snapshot(&req).await?, None))
            }
            ArtifactKind::Image => {
                let ec2 = cloud.ec2(&self.dest, region).await?;
                let req = ImageCopyRequest {
                    source_region: s.region.clone(),
                    source_id: s.id.clone(),
                    name: image_name(&self.run.policy, &s.target, &self.run.backup_id),
                    description: names::copy_description(
                        &self.run.policy,
                        &self.run.backup_id,
                        &s.id,
                    ),
                    tags,
                    kms_key_id: key.key_for(s.kind),
                    encrypt: key.encrypted(),
                };
                Ok((ec2.copy_image(&req).await?, None))
            }
            ArtifactKind::DbSnapshot | ArtifactKind::DbClusterSnapshot => {
                let rds = cloud.rds(&self.dest, region).await?;
                let arn = self
                    .described
                    .get(&s.id)
                    .map(|(_, a)| a.clone())
                    .filter(|a| !a.is_empty())
                    .unwrap_or_else(|| names::db_arn(s, source_account_id));
                let req = DbCopyRequest {
                    kind: db_kind(s.kind),
                    source_arn: arn,
                    source_region: s.region.clone(),
                    target_id: s.id.clone(),
                    tags,
                    kms_key_id: key.key_for(s.kind),
                };
                let made = rds.copy_db_snapshot(&req).await?;
                Ok((made.id, Some(made.arn)))
            }
        }
    }
}

/// The copies of one run: recorded and in flight, settled, and problems.
struct Copies {
    in_flight: Vec<InFlight>,
    /// Recorded in a earlier process, settled or not: not holding room.
    waiting: Vec<DrCopyRecord>,
    settled: Vec<DrCopyRecord>,
    problems: Vec<String>,
    alerts: Vec<String>,
    keys: AliasCache,
    source_account_id: Option<String>,
    dest_account_id: Option<String>,
    shared: Vec<SnapshotRecord>,
}

impl Copies {
    fn new(_plan: &Plan<'_>) -> Copies {
        Copies {
            in_flight: Vec::new(),
            waiting: Vec::new(),
            settled: Vec::new(),
            problems: Vec::new(),
            alerts: Vec::new(),
            keys: AliasCache::default(),
            source_account_id: None,
            dest_account_id: None,
            shared: Vec::new(),
        }
    }

    fn add_recorded(&mut self, c: DrCopyRecord) {
        if c.status == DrStatus::InProgress {
            self.waiting.push(c);
        } else {
            self.settled.push(c);
        }
    }

    /// Starts copies while there is room, waits for them, settles the run.
    async fn run(
        mut self,
        plan: &Plan<'_>,
        todo: Vec<SnapshotRecord>,
    ) -> Result<DrRun, StateError> {
        let work = plan.work;
        let elapsed = (work.now - plan.run.started).to_std().unwrap_or_default();
        let budget = std::time::Duration::from_secs(plan.dr.timeout_secs).saturating_sub(elapsed);
        let deadline = tokio::time::Instant::now() + budget;
        let mut todo: VecDeque<SnapshotRecord> = todo.into();
        // Copies recorded before: they hold room too, while they last.
        for c in std::mem::take(&mut self.waiting) {
            let permits = work
                .limits
                .acquire(&plan.run.policy, &plan.run.destination, plan.dr.concurrency)
                .await;
            self.in_flight.push(InFlight {
                record: c,
                _permits: permits,
            });
        }
        loop {
            self.start_what_fits(plan, &mut todo).await?;
            if !work.wait {
                return self.leave_running(plan);
            }
            self.look(plan).await?;
            if todo.is_empty() && self.in_flight.is_empty() {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return self.time_out(plan, todo);
            }
            if self.in_flight.is_empty() {
                // No room at all: wait for another run's copy to finish.
                let permits = tokio::select! {
                    p = work.limits.acquire(&plan.run.policy, &plan.run.destination, plan.dr.concurrency) => p,
                    _ = tokio::time::sleep_until(deadline) => continue,
                };
                drop(permits);
                continue;
            }
            tokio::time::sleep(
                work.interval
                    .min(deadline.saturating_duration_since(tokio::time::Instant::now())),
            )
            .await;
        }
        self.finish(plan).await
    }

    async fn start_what_fits(
        &mut self,
        plan: &Plan<'_>,
        todo: &mut VecDeque<SnapshotRecord>,
    ) -> Result<(), StateError> {
        let work = plan.work;
        while let Some(s) = todo.front().cloned() {
            let Some(permits) = work.limits.try_acquire(
                &plan.run.policy,
                &plan.run.destination,
                plan.dr.concurrency,
            ) else {
                break;
            };
            todo.pop_front();
            match self.start(plan, &s).await {
                Ok(Some(rec)) => {
                    record(&work.store, |tx| tx.put_dr_copy(&rec))?;
                    self.in_flight.push(InFlight {
                        record: rec,
                        _permits: permits,
                    });
                }
                Ok(None) => {}
                Err(e) if e.kind == ErrorKind::Throttled => {
                    // Tried again at the next look.
                    todo.push_front(s);
                    break;
                }
                Err(e) => self.problems.push(explain(plan, &s, &e)),
            }
        }
        Ok(())
    }

    /// Shares, chooses the key and makes the copy call for one artifact.
    /// `Ok(None)`: not copied, with the problem recorded.
    async fn start(
        &mut self,
        plan: &Plan<'_>,
        s: &SnapshotRecord,
    ) -> Result<Option<DrCopyRecord>, CloudError> {
        let cloud = &plan.work.cloud;
        if self.source_account_id.is_none() {
            self.source_account_id = Some(cloud.account_id(&plan.source).await?);
        }
        let source_id = self.source_account_id.clone().unwrap_or_default();
        let (enc, _) = plan.described.get(&s.id).cloned().unwrap_or_default();
        let tags: Vec<&crate::cloud::Tags> = [s.volume_id.as_str(), s.target.as_str()]
            .iter()
            .filter_map(|id| plan.source_tags.get(*id))
            .collect();
        let source = keys::Source {
            account: &plan.source,
            region: &s.region,
            encryption: &enc,
            tags,
        };
        let key = match keys::choose(
            cloud.as_ref(),
            &mut self.keys,
            &source,
            &plan.run.destination,
            &plan.dest,
            plan.dr.encryption_key_detection,
        )
        .await
        {
            Ok(k) => k,
            Err(problem) => {
                self.problems.push(format!("{}: {problem}", s.id));
                return Ok(None);
            }
        };
        if let KeyChoice::Default { why, alert: true } = &key {
            self.alerts.push(format!(
                "DR copy of {} to {} uses the destination's default key: {why}",
                s.id, plan.run.destination
            ));
        }
        if plan.cross_account() {
            if self.dest_account_id.is_none() {
                self.dest_account_id = Some(cloud.account_id(&plan.dest).await?);
            }
            let dest_id = self.dest_account_id.clone().unwrap_or_default();
            plan.share(s, &dest_id, true).await?;
            self.shared.push(s.clone());
        }
        let (id, arn) = match plan.copy_call(s, &key, &source_id).await {
            Ok(made) => made,
            Err(e) if plan.cross_account() && e.kind == ErrorKind::AccessDenied && enc.encrypted => {
                return Err(CloudError {
                    message: format!(
                        "{}; an encrypted copy into another account needs the source key ({}) shared with account {} (its key policy must allow kms:Decrypt, kms:CreateGrant and kms:DescribeKey to it)",
                        e.message,
                        enc.kms_key_id.clone().unwrap_or_default(),
                        plan.run.destination.account
                    ),
                    ..e
                })
            }
            Err(e) => return Err(e),
        };
        crate::failpoint::hit("dr-after-copy-call");
        Ok(Some(plan.copy_record(s, id, arn)))
    }

    /// One look at the destination: copies that completed or failed settle.
    async fn look(&mut self, plan: &Plan<'_>) -> Result<(), StateError> {
        if self.in_flight.is_empty() {
            return Ok(());
        }
        let seen = match poll(plan, &self.in_flight).await {
            Ok(s) => s,
            Err(e) => {
                // A failed look is tried again at the next one.
                note_failed_look(&mut self.problems, &e);
                return Ok(());
            }
        };
        let mut still = Vec::new();
        for f in std::mem::take(&mut self.in_flight) {
            match seen.get(&f.record.id) {
                Some(Outcome::Done(extra)) => {
                    let mut rec = f.record.clone();
                    rec.status = DrStatus::Completed;
                    rec.finished = Some(plan.work.now_at());
                    record(&plan.work.store, |tx| {
                        tx.put_dr_copy(&rec)?;
                        for e in extra {
                            tx.put_dr_copy(e)?;
                        }
                        Ok(())
                    })?;
                    self.settled.push(rec);
                }
                Some(Outcome::Failed(why)) => {
                    let mut rec = f.record.clone();
                    rec.status = DrStatus::Failed;
                    rec.finished = Some(plan.work.now_at());
                    rec.problem = why.clone();
                    record(&plan.work.store, |tx| tx.put_dr_copy(&rec))?;
                    self.problems
                        .push(format!("{} -> {}: {why}", rec.source_id, rec.id));
                    self.settled.push(rec);
                }
                None => still.push(f),
            }
        }
        self.in_flight = still;
        Ok(())
    }

    fn leave_running(self, plan: &Plan<'_>) -> Result<DrRun, StateError> {
        let mut run = plan.run.clone();
        run.status = DrStatus::InProgress;
        run.updated = plan.work.now;
        run.detail = self.problems.join("; ");
        record(&plan.work.store, |tx| tx.put_dr_run(&run))?;
        Ok(run)
    }

    fn time_out(
        mut self,
        plan: &Plan<'_>,
        todo: VecDeque<SnapshotRecord>,
    ) -> Result<DrRun, StateError> {
        let now = plan.work.now_at();
        let mut timed_out = Vec::new();
        for f in std::mem::take(&mut self.in_flight) {
            let mut rec = f.record;
            rec.status = DrStatus::TimedOut;
            rec.finished = Some(now);
            timed_out.push(rec);
        }
        record(&plan.work.store, |tx| {
            for r in &timed_out {
                tx.put_dr_copy(r)?;
            }
            Ok(())
        })?;
        let detail = format!(
            "{} copies not completed and {} not started within the DR timeout of {}s",
            timed_out.len(),
            todo.len(),
            plan.dr.timeout_secs
        );
        // Shares stay while a copy may still be reading its source; the
        // next run of this destination unshares what it shared.
        settle(plan.work, plan.run.clone(), DrStatus::TimedOut, detail)
    }

    async fn finish(mut self, plan: &Plan<'_>) -> Result<DrRun, StateError> {
        if plan.cross_account() {
            if let Some(dest_id) = self.dest_account_id.clone() {
                for s in std::mem::take(&mut self.shared) {
                    if let Err(e) = plan.share(&s, &dest_id, false).await {
                        if e.kind != ErrorKind::NotFound {
                            self.problems.push(format!("unsharing {}: {e}", s.id));
                        }
                    }
                }
            }
        }
        let work = plan.work;
        if !self.alerts.is_empty() {
            let alerts = self.alerts.clone();
            record(&work.store, |tx| {
                for a in &alerts {
                    tx.open_alert(&plan.run.policy, work.now, a)?;
                }
                Ok(())
            })?;
        }
        let all_done = self.settled.iter().all(|c| c.status == DrStatus::Completed);
        if self.problems.is_empty() && all_done {
            let mut run = plan.run.clone();
            run.status = DrStatus::Completed;
            run.updated = work.now_at();
            run.detail = String::new();
            record(&work.store, |tx| tx.put_dr_run(&run))?;
            return Ok(run);
        }
        settle(
            work,
            plan.run.clone(),
            DrStatus::Failed,
            self.problems.join("; "),
        )
    }
}

fn note_failed_look(problems: &mut Vec<String>, e: &CloudError) {
    // Kept only when it is the last word: a later look that succeeds
    // settles the copies anyway, so the run's detail names it at most once.
    let note = format!("a look at the copies failed: {e}");
    if !problems.contains(&note) {
        problems.push(note);
    }
}

fn explain(plan: &Plan<'_>, s: &SnapshotRecord, e: &CloudError) -> String {
    format!("{} to {}: {e}", s.id, plan.run.destination)
}

/// How a copy stands after one look.
enum Outcome {
    /// Completed; for an AMI, the records of its copied snapshots.
    Done(Vec<DrCopyRecord>),
    Failed(String),
}

/// One describe per kind in the destination for the copies in flight.
async fn poll(
    plan: &Plan<'_>,
    in_flight: &[InFlight],
) -> Result<BTreeMap<String, Outcome>, CloudError> {
    let cloud = &plan.work.cloud;
    let region = &plan.run.destination.region;
    let ids = |k: ArtifactKind| -> Vec<String> {
        in_flight
            .iter()
            .filter(|f| f.record.kind == k)
            .map(|f| f.record.id.clone())
            .collect()
    };
    let mut out = BTreeMap::new();
    let ebs = ids(ArtifactKind::Ebs);
    if !ebs.is_empty() {
        let ec2 = cloud.ec2(&plan.dest, region).await?;
        let found = collect_chunked(&ebs, |chunk, t| {
            let ec2 = ec2.clone();
            let q = SnapshotQuery {
                ids: chunk.to_vec(),
                ..Default::default()
            };
            async move { ec2.snapshots_page(&q, t).await }
        })
        .await?;
        for s in found {
            match s.state {
                SnapshotState::Completed => {
                    out.insert(s.id, Outcome::Done(Vec::new()));
                }
                SnapshotState::Error => {
                    out.insert(
                        s.id,
                        Outcome::Failed("the copy ended in the error state".into()),
                    );
                }
                SnapshotState::Pending => {}
            }
        }
    }
    let images = ids(ArtifactKind::Image);
    if !images.is_empty() {
        let ec2 = cloud.ec2(&plan.dest, region).await?;
        let found = collect_chunked(&images, |chunk, t| {
            let ec2 = ec2.clone();
            let q = ImageQuery {
                ids: chunk.to_vec(),
                ..Default::default()
            };
            async move { ec2.images_page(&q, t).await }
        })
        .await?;
        for i in found {
            match i.state {
                ImageState::Available => {
                    let f = in_flight
                        .iter()
                        .find(|f| f.record.id == i.id)
                        .expect("asked for");
                    let tags = i.tags.clone();
                    if !i.snapshot_ids.is_empty() {
                        ec2.create_tags(&i.snapshot_ids, &tags).await?;
                    }
                    let extra = i
                        .snapshot_ids
                        .iter()
                        .map(|sid| DrCopyRecord {
                            id: sid.clone(),
                            kind: ArtifactKind::Ebs,
                            image: Some(i.id.clone()),
                            arn: None,
                            status: DrStatus::Completed,
                            finished: Some(plan.work.now_at()),
                            ..f.record.clone()
                        })
                        .collect();
                    out.insert(i.id, Outcome::Done(extra));
                }
                ImageState::Failed => {
                    out.insert(i.id, Outcome::Failed("the copied AMI failed".into()));
                }
                ImageState::Pending => {}
            }
        }
    }
    for kind in [ArtifactKind::DbSnapshot, ArtifactKind::DbClusterSnapshot] {
        let db = ids(kind);
        if db.is_empty() {
            continue;
        }
        let rds = cloud.rds(&plan.dest, region).await?;
        let k = db_kind(kind);
        let found = collect_chunked(&db, |chunk, t| {
            let rds = rds.clone();
            let chunk = chunk.to_vec();
            async move { rds.db_snapshots_page(k, &chunk, t).await }
        })
        .await?;
        for d in found {
            match d.status.as_str() {
                "available" => {
                    out.insert(d.id, Outcome::Done(Vec::new()));
                }
                "failed" | "incompatible-restore" | "deleting" | "deleted" => {
                    out.insert(d.id, Outcome::Failed(format!("the copy is {}", d.status)));
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

impl DrWork {
    /// The time settled copies are stamped with: the work's `now`, moved
    /// on by the real time passed since it started.
    pub(super) fn now_at(&self) -> DateTime<Utc> {
        self.now + chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default()
    }
}
