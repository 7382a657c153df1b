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

mod look;
mod sources;

use look::{poll, Outcome};
use sources::{adopt, describe_sources};

use super::keys::{self, AliasCache, KeyChoice};
use super::{names, route, DrWork};
use crate::backup::names::image_name;
use crate::cloud::{
    CloudError, DbCopyRequest, DbSnapshotKind, Encryption, ErrorKind, ImageCopyRequest,
    SnapshotCopyRequest,
};
use crate::share::{self, Share, ShareError};
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
    /// Why the run has nothing left to copy though it is not done (the
    /// destination or the dr block was removed since it started).
    gone: Option<String>,
}

/// A copy started and not settled, with the room it takes.
struct InFlight {
    record: DrCopyRecord,
    _permits: Vec<OwnedSemaphorePermit>,
}

fn record(
    store: &SharedStore,
    f: impl FnMut(&mut crate::state::Tx<'_>) -> Result<(), StateError>,
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
    if let Some(why) = plan.gone.clone() {
        // Copies an earlier process started for this run are settled with
        // it, so that none stays in progress (and undeletable) for good.
        let open: Vec<DrCopyRecord> = work
            .store
            .lock()
            .expect("store")
            .dr_copies(Some(&run.policy))?
            .into_iter()
            .filter(|c| {
                c.backup_id == run.backup_id
                    && c.destination == run.destination
                    && c.status == DrStatus::InProgress
            })
            .map(|mut c| {
                c.status = DrStatus::Failed;
                c.finished = Some(work.now_at());
                c.problem = why.clone();
                c
            })
            .collect();
        record(&work.store, |tx| {
            for c in &open {
                tx.put_dr_copy(c)?;
            }
            Ok(())
        })?;
        let ended = settle(work, plan.run.clone(), DrStatus::Failed, why)?;
        unshare(&plan, None).await?;
        return Ok(ended);
    }
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
    let mut copies = Copies::default();
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
        Err(e) => {
            let ended = settle(work, plan.run.clone(), DrStatus::Failed, e.to_string())?;
            unshare(&plan, None).await?;
            return Ok(ended);
        }
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
    // A run whose destination the configuration no longer names copies
    // nothing and must not read as completed (`keep_original = false`
    // would then delete the originals): it fails, undoing its shares.
    let mut gone = None;
    let dr = policy.dr.clone().unwrap_or_else(|| {
        gone = Some(format!("policy {} no longer has a dr block", run.policy));
        lifeboat_schema::Dr {
            every: 1,
            timeout_secs: 0,
            regions: Vec::new(),
            generations: None,
            concurrency: None,
            cross_account: None,
            encryption_key_detection: lifeboat_schema::KeyDetection::Strict,
            lock: None,
        }
    });
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
    if gone.is_none() && artifacts.is_empty() {
        gone = Some(format!(
            "{} is no longer a destination of policy {}",
            run.destination, run.policy
        ));
    }
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
        gone,
    };
    if plan.gone.is_none() {
        // The sources could not be read: the run fails, and undoes the
        // shares a process before this one may have made.
        if let Err(e) = describe_sources(&mut plan).await {
            plan.gone = Some(e.to_string());
        }
    }
    Ok(plan)
}

pub(super) fn db_kind(kind: ArtifactKind) -> DbSnapshotKind {
    match kind {
        ArtifactKind::DbClusterSnapshot => DbSnapshotKind::Cluster,
        _ => DbSnapshotKind::Instance,
    }
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
            lock: None,
            lock_problem: String::new(),
        }
    }

    /// The holder of this run's shares (`crate::share`): a restore or
    /// another run may need the same share meanwhile.
    fn holder(&self) -> String {
        crate::state::dr_holder(&self.run.policy, &self.run.backup_id, &self.run.destination)
    }

    /// What sharing `s` with the destination account takes: the artifact,
    /// and an AMI's snapshots with it.
    fn shares<'s>(&'s self, s: &'s SnapshotRecord, dest_id: &'s str) -> Vec<Share<'s>> {
        let one = |kind, id: &'s str| Share {
            owner: &self.source,
            kind,
            id,
            region: &s.region,
            with: dest_id,
        };
        let mut out = vec![one(s.kind, &s.id)];
        if s.kind == ArtifactKind::Image {
            out.extend(
                self.backup
                    .snapshots
                    .iter()
                    .filter(|x| x.image.as_deref() == Some(s.id.as_str()))
                    .map(|x| one(ArtifactKind::Ebs, &x.id)),
            );
        }
        out
    }

    /// Shares the source with the destination account, held by this run.
    async fn share(&self, s: &SnapshotRecord, dest_id: &str) -> Result<(), CloudError> {
        let holder = self.holder();
        for one in self.shares(s, dest_id) {
            share::hold(self.work.cloud.as_ref(), &self.work.store, &one, &holder)
                .await
                .map_err(|e| self.share_error(e))?;
        }
        Ok(())
    }

    /// Lets go of this run's hold of the source's share, unsharing it
    /// when nothing else holds it. Every share is tried (an AMI's and its
    /// snapshots'); the first error is returned.
    async fn unshare(&self, s: &SnapshotRecord, dest_id: &str) -> Result<(), CloudError> {
        let holder = self.holder();
        let mut first = Ok(());
        for one in self.shares(s, dest_id) {
            let r = share::release(self.work.cloud.as_ref(), &self.work.store, &one, &holder).await;
            if let Err(e) = r {
                if first.is_ok() {
                    first = Err(self.share_error(e));
                }
            }
        }
        first
    }

    fn share_error(&self, e: ShareError) -> CloudError {
        match e {
            ShareError::Cloud(e) => e,
            ShareError::State(e) => state_error(self, e),
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

/// What one start came to.
enum Start {
    /// Made; with an alert when made with the destination's default key
    /// under `default_alert`.
    Made(Box<DrCopyRecord>, Option<String>),
    NotMade {
        problem: Option<String>,
        alert: Option<String>,
    },
}

/// The copies of one run: recorded and in flight, settled, and problems.
#[derive(Default)]
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
    /// Why the last look at the copies failed, until one succeeds.
    last_look_error: Option<String>,
    /// Why the last start had to wait (throttled, AWS's copy limit, an
    /// identity that could not be had), said if the run times out.
    last_wait_error: Option<String>,
    identity_failures: u32,
}

/// Tries at the accounts' identities before a run gives up on them.
const IDENTITY_TRIES: u32 = 3;

impl Copies {
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
        // The time spent before this process took the run up counts on the
        // runner's clock (`--now`); the rest in real time.
        let elapsed = (work.now - plan.run.started).to_std().unwrap_or_default();
        let budget = std::time::Duration::from_secs(plan.dr.timeout_secs).saturating_sub(elapsed);
        let deadline = tokio::time::Instant::now() + budget;
        let mut todo: VecDeque<SnapshotRecord> = todo.into();
        // Copies an earlier process recorded are in flight in AWS already:
        // they are looked at, without waiting for room (which they may
        // need more of than a lowered cap now gives: waiting would never
        // end).
        for c in std::mem::take(&mut self.waiting) {
            let permits = work
                .limits
                .try_acquire(&plan.run.policy, &plan.run.destination, plan.dr.concurrency)
                .unwrap_or_default();
            self.in_flight.push(InFlight {
                record: c,
                _permits: permits,
            });
        }
        let mut room = None;
        loop {
            if tokio::time::Instant::now() >= deadline {
                return self.time_out(plan, todo).await;
            }
            let throttled = self.start_what_fits(plan, &mut todo, room.take()).await?;
            if !work.wait {
                return self.leave_running(plan);
            }
            self.look(plan).await?;
            if todo.is_empty() && self.in_flight.is_empty() {
                break;
            }
            if throttled {
                // AWS asked to slow down: wait a look's time before trying,
                // without the state lock.
                work.unlocked(tokio::time::sleep(
                    work.interval
                        .min(deadline.saturating_duration_since(tokio::time::Instant::now())),
                ))
                .await?;
            }
            if self.in_flight.is_empty() {
                // No room at all: wait for another run's copy to finish,
                // and keep the room for the next copy (dropping it would
                // hand it to the next run waiting, never to this one).
                // That may take as long as a copy: without the state lock.
                room = work
                    .unlocked(async {
                        tokio::select! {
                            p = work.limits.acquire(&plan.run.policy, &plan.run.destination, plan.dr.concurrency) => Some(p),
                            _ = tokio::time::sleep_until(deadline) => None,
                        }
                    })
                    .await?;
                continue;
            }
            // Copies take their time: a runner waits for them without the
            // state lock.
            work.unlocked(tokio::time::sleep(
                work.interval
                    .min(deadline.saturating_duration_since(tokio::time::Instant::now())),
            ))
            .await?;
        }
        self.finish(plan).await
    }

    async fn start_what_fits(
        &mut self,
        plan: &Plan<'_>,
        todo: &mut VecDeque<SnapshotRecord>,
        room: Option<Vec<OwnedSemaphorePermit>>,
    ) -> Result<bool, StateError> {
        let work = plan.work;
        let mut batch = Vec::new();
        if let Some(permits) = room {
            if let Some(s) = todo.pop_front() {
                batch.push((s, permits));
            }
        }
        while let Some(s) = todo.front().cloned() {
            let Some(permits) = work.limits.try_acquire(
                &plan.run.policy,
                &plan.run.destination,
                plan.dr.concurrency,
            ) else {
                break;
            };
            todo.pop_front();
            batch.push((s, permits));
        }
        if batch.is_empty() {
            return Ok(false);
        }
        if let Err(e) = self.account_ids(plan).await {
            // Without the accounts' identities nothing can be copied. Asked
            // again at the next looks, a few times; then the run ends
            // failed rather than asking for its whole timeout.
            self.identity_failures += 1;
            if self.identity_failures < IDENTITY_TRIES {
                self.last_wait_error = Some(e.to_string());
                for (s, _) in batch.into_iter().rev() {
                    todo.push_front(s);
                }
                return Ok(true);
            }
            self.problems.push(format!(
                "{} copies not started: {e}",
                batch.len() + todo.len()
            ));
            todo.clear();
            return Ok(false);
        }
        // The copies that fit start together: the calls are independent.
        let keys = tokio::sync::Mutex::new(std::mem::take(&mut self.keys));
        let started =
            super::futures_join(batch.iter().map(|(s, _)| self.start(plan, s, &keys))).await;
        self.keys = keys.into_inner();
        let mut throttled = Vec::new();
        // A source shared before a failed copy call is unshared with the
        // rest when the run settles ([`unshare`]). The copies a batch made
        // are recorded together, in one transaction.
        let mut made = Vec::new();
        for ((s, permits), outcome) in batch.into_iter().zip(started) {
            match outcome {
                Ok(Start::Made(rec, alert)) => {
                    self.alerts.extend(alert);
                    made.push(InFlight {
                        record: *rec,
                        _permits: permits,
                    });
                }
                Ok(Start::NotMade { problem, alert }) => {
                    self.problems.extend(problem);
                    self.alerts.extend(alert);
                }
                // Tried again at the next look.
                // AWS's cap on copies in flight (reached after a restart,
                // whose copies hold no room here) is waited out as well.
                Err(e)
                    if e.kind == ErrorKind::Throttled
                        || e.code.as_deref() == Some("ResourceLimitExceeded") =>
                {
                    self.last_wait_error = Some(e.to_string());
                    throttled.push(s)
                }
                Err(e) => self.problems.push(explain(plan, &s, &e)),
            }
        }
        if !made.is_empty() {
            record(&work.store, |tx| {
                for f in &made {
                    tx.put_dr_copy(&f.record)?;
                }
                Ok(())
            })?;
        }
        self.in_flight.extend(made);
        let again = !throttled.is_empty();
        for s in throttled.into_iter().rev() {
            todo.push_front(s);
        }
        Ok(again)
    }

    /// The source's and (across accounts) the destination's AWS account
    /// ids, asked once per run.
    async fn account_ids(&mut self, plan: &Plan<'_>) -> Result<(), CloudError> {
        let cloud = &plan.work.cloud;
        if self.source_account_id.is_none() {
            self.source_account_id = Some(cloud.account_id(&plan.source).await?);
        }
        if plan.cross_account() && self.dest_account_id.is_none() {
            self.dest_account_id = Some(cloud.account_id(&plan.dest).await?);
        }
        Ok(())
    }

    /// Shares, chooses the key and makes the copy call for one artifact.
    async fn start(
        &self,
        plan: &Plan<'_>,
        s: &SnapshotRecord,
        keys: &tokio::sync::Mutex<AliasCache>,
    ) -> Result<Start, CloudError> {
        let cloud = &plan.work.cloud;
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
        let chosen = {
            let mut cache = keys.lock().await;
            keys::choose(
                cloud.as_ref(),
                &mut cache,
                &source,
                &plan.run.destination,
                &plan.dest,
                plan.dr.encryption_key_detection,
            )
            .await
        };
        let key = match chosen {
            Ok(k) => k,
            Err(problem) => {
                let problem = Some(format!("{}: {problem}", s.id));
                return Ok(Start::NotMade {
                    problem,
                    alert: None,
                });
            }
        };
        let alert = match &key {
            KeyChoice::Default { why, alert: true } => Some(format!(
                "DR copy of {} to {} uses the destination's default key: {why}",
                s.id, plan.run.destination
            )),
            _ => None,
        };
        if plan.cross_account() {
            // A share that half happened (an AMI and some of its
            // snapshots) is undone with the rest when the run settles.
            let dest_id = self.dest_account_id.clone().unwrap_or_default();
            plan.share(s, &dest_id).await?;
        }
        let (id, arn) = match plan.copy_call(s, &key, &source_id).await {
            Ok(made) => made,
            Err(e)
                if plan.cross_account() && e.kind == ErrorKind::AccessDenied && enc.encrypted =>
            {
                let e = CloudError {
                    message: format!(
                        "{}; an encrypted copy into another account needs the source key ({}) shared with account {} (its key policy must allow kms:Decrypt, kms:CreateGrant and kms:DescribeKey to it)",
                        e.message,
                        enc.kms_key_id.clone().unwrap_or_default(),
                        plan.run.destination.account
                    ),
                    ..e
                };
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        crate::failpoint::hit(crate::failpoint::DR_COPIED);
        Ok(Start::Made(Box::new(plan.copy_record(s, id, arn)), alert))
    }

    /// One look at the destination: copies that completed or failed settle.
    async fn look(&mut self, plan: &Plan<'_>) -> Result<(), StateError> {
        if self.in_flight.is_empty() {
            return Ok(());
        }
        let seen = match poll(plan, &self.in_flight).await {
            Ok(s) => s,
            Err(e) => {
                // Tried again at the next look; said only if the run times
                // out with it.
                self.last_look_error = Some(e.to_string());
                return Ok(());
            }
        };
        self.last_look_error = None;
        // What this look settled, recorded in one transaction.
        let mut still = Vec::new();
        let mut writes: Vec<DrCopyRecord> = Vec::new();
        let mut settled = Vec::new();
        for f in std::mem::take(&mut self.in_flight) {
            match seen.get(&f.record.id) {
                Some(Outcome::Done(extra)) => {
                    let mut rec = f.record.clone();
                    rec.status = DrStatus::Completed;
                    rec.finished = Some(plan.work.now_at());
                    writes.push(rec.clone());
                    writes.extend(extra.iter().cloned());
                    settled.push((rec, f));
                }
                Some(Outcome::Failed(why)) => {
                    let mut rec = f.record.clone();
                    rec.status = DrStatus::Failed;
                    rec.finished = Some(plan.work.now_at());
                    rec.problem = why.clone();
                    writes.push(rec.clone());
                    self.problems
                        .push(format!("{} -> {}: {why}", rec.source_id, rec.id));
                    settled.push((rec, f));
                }
                None => still.push(f),
            }
        }
        if !writes.is_empty() {
            record(&plan.work.store, |tx| {
                for r in &writes {
                    tx.put_dr_copy(r)?;
                }
                Ok(())
            })?;
        }
        if let Some(lock) = &plan.dr.lock {
            // Locked as soon as recorded complete; a failure is recorded
            // and alerted, and the next run tries again.
            let done: Vec<DrCopyRecord> = settled
                .iter()
                .filter(|(r, _)| r.status == DrStatus::Completed)
                .map(|(r, _)| r.clone())
                .collect();
            let w = plan.work;
            super::lock::lock_copies(
                w.cloud.as_ref(),
                &w.store,
                &plan.dest,
                Some(lock),
                &done,
                w.now_at(),
            )
            .await?;
        }
        // The room each settled copy held is given back only now, once
        // its end is recorded.
        self.settled
            .extend(settled.into_iter().map(|(rec, _room)| rec));
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

    async fn time_out(
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
        let mut detail = format!(
            "{} copies not completed and {} not started within the DR timeout of {}s",
            timed_out.len(),
            todo.len(),
            plan.dr.timeout_secs
        );
        if let Some(e) = &self.last_look_error {
            detail.push_str(&format!("; the last look at them failed: {e}"));
        }
        if let Some(e) = &self.last_wait_error {
            detail.push_str(&format!("; copies waited because: {e}"));
        }
        let run = settle(plan.work, plan.run.clone(), DrStatus::TimedOut, detail)?;
        unshare(plan, self.dest_account_id.clone()).await?;
        Ok(run)
    }

    async fn finish(self, plan: &Plan<'_>) -> Result<DrRun, StateError> {
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
        let run = if self.problems.is_empty() && all_done {
            let mut run = plan.run.clone();
            run.status = DrStatus::Completed;
            run.updated = work.now_at();
            run.detail = String::new();
            record(&work.store, |tx| tx.put_dr_run(&run))?;
            run
        } else {
            settle(
                work,
                plan.run.clone(),
                DrStatus::Failed,
                self.problems.join("; "),
            )?
        };
        unshare(plan, self.dest_account_id.clone()).await?;
        Ok(run)
    }
}

/// Lets go of the shares of a settled cross-account run: every share the
/// run holds in the state (its owner and the account id shared with are
/// recorded there), unshared once nothing else holds it (the last holder
/// unshares: another run of the backup to that account, a restore into
/// it; a run resumed after a crash lets go of what the dead process held).
/// Every release is tried, whatever failed before it. The artifacts a
/// copy is made of that hold no row (shared by a Lifeboat that did not
/// record its holders) are released by the destination's account id. A
/// share that cannot be undone opens an alert: the original stays
/// readable by the other account, and the reaper tries again.
async fn unshare(plan: &Plan<'_>, dest_id: Option<String>) -> Result<(), StateError> {
    if !plan.cross_account() {
        return Ok(());
    }
    let account = &plan.run.destination.account;
    let holder = plan.holder();
    let work = plan.work;
    let held = work
        .store
        .lock()
        .expect("store")
        .share_holds(Some(&holder))?;
    let owners = BTreeMap::from([(plan.source.name.clone(), plan.source.clone())]);
    let mut left = Vec::new();
    if let Err(e) = share::release_all(work.cloud.as_ref(), &work.store, &owners, &holder).await {
        left.push(e.to_string());
    }
    // Every artifact a copy is made of, whatever the configuration routes
    // now (removing a share that was never made changes nothing).
    let unrecorded: Vec<&SnapshotRecord> = plan
        .backup
        .snapshots
        .iter()
        .filter(|s| route::copied(s))
        .filter(|s| !held.iter().any(|h| h.artifact_id == s.id))
        .collect();
    if !unrecorded.is_empty() {
        let dest_id = match dest_id {
            Some(id) => Ok(id),
            None => work.cloud.account_id(&plan.dest).await,
        };
        match dest_id {
            Ok(dest_id) => {
                for s in unrecorded {
                    if let Err(e) = plan.unshare(s, &dest_id).await {
                        if e.kind != ErrorKind::NotFound {
                            left.push(format!("{}: {e}", s.id));
                        }
                    }
                }
            }
            Err(e) => left.push(e.to_string()),
        }
    }
    if left.is_empty() {
        return Ok(());
    }
    let message = format!(
        "the originals of backup {} stay shared with account {account}: {}",
        plan.run.backup_id,
        left.join("; ")
    );
    record(&plan.work.store, |tx| {
        tx.open_alert(&plan.run.policy, plan.work.now_at(), &message)
    })
}

fn explain(plan: &Plan<'_>, s: &SnapshotRecord, e: &CloudError) -> String {
    format!("{} to {}: {e}", s.id, plan.run.destination)
}

impl DrWork {
    /// The time settled copies are stamped with: the work's `now`, moved
    /// on by the real time passed since it started.
    pub(super) fn now_at(&self) -> DateTime<Utc> {
        self.now + chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default()
    }
}
