//! Taking one backup of a policy: load and check the policy, reserve the
//! backup's id and record it `running`, make one create call per target
//! (region by region), hand what each call made to the catalog writer at
//! once (`record.rs`: a group commit), wait for it to finish, and close the
//! backup with the status it earned.
//!
//! Calls per region: one filtered describe for the instances whose root
//! volume alone is backed up and one for the volumes (per 200 targets), one
//! create call per target with its tags inside, then the waits' describes;
//! beside them, the restore points' describes (`shapes.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lifeboat_schema::{Account, InstanceMode, VolumeChoice, DEFAULT_AMI_ROTATION_DAYS};
use tokio::task::JoinSet;

use crate::cloud::{
    collect_pages, Cloud, CloudError, DbSnapshotKind, DbSnapshotRequest, Ec2, ErrorKind,
    ImageQuery, ImageRequest, Instance, InstanceSnapshotRequest, Query, Rds, Snapshot,
    SnapshotState, Tags, VolumeSnapshotRequest, FILTER_CHUNK,
};
use crate::failpoint;
use crate::state::model::{PolicyState, TargetKind, TargetState};
use crate::state::{ArtifactKind, BackupRecord, BackupStatus, SharedStore, SnapshotRecord};

use super::names::{backup_tags, db_snapshot_id, description, image_name};
use super::record::Recorder;
use super::throttle::{self, retry_throttled};
use super::{initial_ami_due, retain, wait, BackupError, BackupResult, Limits, Wait};

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
    let retention = retain(cloud, store.clone(), &record, now, None).await?;
    BackupResult::of(&store, record, retention)
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
    let earned = take_open(
        cloud,
        store.clone(),
        policy,
        now,
        wait,
        known_problems,
        limits,
    )
    .await?;
    finish(&store, &earned)
}

/// [`take`], leaving the backup `running` in the catalog: the record
/// returned has the status and problems the backup earned, for the caller
/// to [`finish`] once what else decides it (the policy's `after` and
/// `complete` scripts) is known. A process that dies before then leaves a
/// `running` backup, which reconciliation closes as failed: it never counts
/// as a generation on a success that was not settled.
pub async fn take_open(
    cloud: Arc<dyn Cloud>,
    store: SharedStore,
    policy: &str,
    now: DateTime<Utc>,
    wait: Wait,
    known_problems: Vec<String>,
    limits: &Limits,
) -> Result<BackupRecord, BackupError> {
    take_open_decided(
        cloud,
        store,
        policy,
        now,
        wait,
        known_problems,
        None,
        limits,
    )
    .await
}

/// [`take_open`]; with `decided`, membership was decided by the caller
/// already (before the policy's `before` script, which gets the targets),
/// and these are its notes ([`super::members::decide`]).
#[allow(clippy::too_many_arguments)]
pub async fn take_open_decided(
    cloud: Arc<dyn Cloud>,
    store: SharedStore,
    policy: &str,
    now: DateTime<Utc>,
    wait: Wait,
    known_problems: Vec<String>,
    decided: Option<Vec<String>>,
    limits: &Limits,
) -> Result<BackupRecord, BackupError> {
    let applied = Applied::load(&store, policy)?;
    // The credentials must reach the AWS account this one is held to (see
    // `cloud::identity`) before the backup is recorded or AWS is called.
    cloud.account_id(&applied.account).await?;
    let owner = limits.gate().map(|g| g.owner().clone());
    let id = super::running::record(&store, policy, &applied.policy.account, now, owner)?;
    // Who is in the policy is decided now, on AWS's tags and what exists;
    // failing that, the targets as applied are backed up, with a note.
    let (notes, applied) = match decided {
        Some(notes) => (notes, applied),
        None => match super::members::decide(&cloud, &store, policy, &id, now).await {
            (notes, true) => (notes, Applied::load(&store, policy)?),
            (notes, false) => (notes, applied),
        },
    };
    let backup = Backup {
        cloud: &cloud,
        store: &store,
        applied: &applied,
        policy,
        id: &id,
        now,
        wait,
        limits,
        throttle_until: throttle::deadline(wait.timeout / 2),
    };
    let mut outcome = Outcome {
        problems: known_problems,
        taken: BTreeSet::new(),
        notes,
    };
    if applied.targets.is_empty() {
        outcome
            .problems
            .push("the policy has no targets".to_string());
    }
    for (region, targets) in applied.by_region() {
        backup.region(region, targets, &mut outcome).await?;
    }
    earned(&store, policy, &id, outcome, now)
}

/// The policy as applied when its backup starts.
struct Applied {
    policy: PolicyState,
    account: Account,
    targets: Vec<TargetState>,
    /// The catalog's backups, for the AMI rotation of `initial_ami` targets.
    backups: Vec<BackupRecord>,
}

impl Applied {
    /// Refuses a policy that is not applied, is disabled, or whose account
    /// is not in state.
    fn load(store: &SharedStore, policy: &str) -> Result<Applied, BackupError> {
        let state = store.lock().expect("store").load()?;
        let pol: PolicyState = state
            .policy(policy)?
            .ok_or_else(|| BackupError::NotApplied(policy.to_string()))?;
        if pol.template {
            return Err(BackupError::Template(policy.to_string()));
        }
        if !pol.enabled {
            return Err(BackupError::Disabled(policy.to_string()));
        }
        let account = state
            .accounts()?
            .remove(&pol.account)
            .ok_or_else(|| BackupError::NoAccount(pol.account.clone()))?;
        let targets: Vec<TargetState> = state
            .targets()?
            .into_iter()
            .filter(|((p, _), _)| p == policy)
            .map(|(_, t)| t)
            .collect();
        Ok(Applied {
            policy: pol,
            account,
            targets,
            backups: state.backups,
        })
    }

    fn by_region(&self) -> BTreeMap<String, Vec<TargetState>> {
        let mut by_region: BTreeMap<String, Vec<TargetState>> = BTreeMap::new();
        for t in self.targets.iter().cloned() {
            by_region.entry(t.region.clone()).or_default().push(t);
        }
        by_region
    }
}

/// What the backup has come to so far.
struct Outcome {
    problems: Vec<String>,
    /// Targets whose snapshots all exist and completed.
    taken: BTreeSet<String>,
    /// Lines for the backup's problems that leave its status as the
    /// snapshots earned it (a restore point not recorded: `shapes.rs`).
    notes: Vec<String>,
}

impl Outcome {
    /// `target` did not make it into this backup, for the reason `problem`.
    fn lost(&mut self, target: &str, problem: String) {
        self.taken.remove(target);
        self.problems.push(problem);
    }
}

/// One backup in progress: what each of its steps needs.
struct Backup<'a> {
    cloud: &'a Arc<dyn Cloud>,
    store: &'a SharedStore,
    applied: &'a Applied,
    policy: &'a str,
    id: &'a str,
    now: DateTime<Utc>,
    wait: Wait,
    limits: &'a Limits,
    /// Until when throttled create calls are made again: one instant for
    /// the whole backup, half its wait from its start, so that the other
    /// half is left for what was made to complete and a policy `timeout`
    /// (the wait, at most) does not end the backup in the middle of it.
    throttle_until: tokio::time::Instant,
}

/// What the create calls of one region made that is still to finish.
#[derive(Default)]
struct Made {
    /// EBS snapshots not completed yet, by id: the target.
    snapshots: BTreeMap<String, String>,
    /// AMIs and DB (cluster) snapshots, by id: (target, kind).
    artifacts: BTreeMap<String, (String, ArtifactKind)>,
    /// A create call failed in a way that leaves open whether AWS made
    /// its resource (the answer was lost).
    unanswered: bool,
}

impl Backup<'_> {
    /// Backs up the targets of one region: their create calls, then the
    /// wait for what they made.
    async fn region(
        &self,
        region: String,
        targets: Vec<TargetState>,
        out: &mut Outcome,
    ) -> Result<(), BackupError> {
        let ec2 = match self.cloud.ec2(&self.applied.account, &region).await {
            Ok(c) => c,
            Err(e) => {
                out.problems
                    .extend(targets.iter().map(|t| format!("{}: {e}", t.id)));
                return Ok(());
            }
        };
        let seen = describe(ec2.as_ref(), &targets, &mut out.problems).await;
        let points = super::shapes::start(self.cloud, &self.applied.account, &region, &targets);
        let rds = self.rds_client(&region, &targets).await;
        let recorder = Recorder::new(self.store, self.policy, self.id);
        // Dropped with this backup, done or cancelled: nothing of it is
        // committed after it is gone.
        let _closing = recorder.closing();
        let jobs = self.start_creates(&region, targets, &ec2, &rds, &seen, &recorder);
        let made = self.record_created(jobs, &recorder, out).await?;
        if made.unanswered {
            // What AWS made for the calls whose answers were lost carries
            // the backup's tags: into the catalog with it, so nothing that
            // exists is untracked (the targets stay lost for this backup).
            let (cloud, acct) = (self.cloud.as_ref(), &self.applied.account);
            super::reconcile::adopt_lost(cloud, self.store, acct, &region, self.policy, self.id)
                .await?;
        }
        // A backup is only as good as its slowest snapshot: retention must
        // not count it before every snapshot has completed.
        let ids = made.snapshots.keys().cloned().collect();
        // The wait for AWS, which may last hours, is made without the
        // runner's state lock; what it found is recorded under it again.
        let waited = self.limits.unlocked(async {
            failpoint::held(failpoint::BACKUP_WAITING).await;
            wait::snapshots(ec2.as_ref(), ids, self.wait).await
        });
        for (snap, why) in waited.await? {
            let target = made.snapshots.get(&snap).cloned().unwrap_or_default();
            out.lost(&target, format!("snapshot {snap} of {target} {why}"));
        }
        if !made.artifacts.is_empty() {
            let rds = rds.as_ref().ok().map(|r| r.as_ref());
            let unfinished = self
                .finish_artifacts(ec2.as_ref(), rds, &region, &made.artifacts)
                .await?;
            for (id, why) in unfinished {
                let target = made
                    .artifacts
                    .get(&id)
                    .map(|a| a.0.clone())
                    .unwrap_or_default();
                out.lost(&target, format!("{why} (target {target})"));
            }
        }
        let (store, policy, id) = (self.store, self.policy, self.id);
        out.notes
            .extend(points.record(store, policy, id, &region).await);
        Ok(())
    }

    /// One RDS client for the region's database targets, if any.
    async fn rds_client(
        &self,
        region: &str,
        targets: &[TargetState],
    ) -> Result<Arc<dyn Rds>, String> {
        if targets.iter().any(|t| is_database(t.kind)) {
            let rds = self.cloud.rds(&self.applied.account, region).await;
            rds.map_err(|e| e.to_string())
        } else {
            Err("no database targets".into())
        }
    }

    /// Starts the create calls of one region's targets, as many at once as
    /// `limits` lets the account have in flight in the region.
    fn start_creates(
        &self,
        region: &str,
        targets: Vec<TargetState>,
        ec2: &Arc<dyn Ec2>,
        rds: &Result<Arc<dyn Rds>, String>,
        seen: &Seen,
        recorder: &Recorder,
    ) -> JoinSet<Result<TargetResult, BackupError>> {
        let sem = self.limits.region(&self.applied.policy.account, region);
        let deadline = self.throttle_until;
        let mut jobs = JoinSet::new();
        for target in targets {
            let create = Create {
                policy: self.policy.to_string(),
                backup: self.id.to_string(),
                region: region.to_string(),
                ec2: ec2.clone(),
                rds: rds.clone(),
                instance: seen.instances.get(&target.id).cloned(),
                volume_seen: seen.volumes.contains(&target.id),
                image_reboot: self.image_reboot(&target),
                target,
                deadline,
            };
            let sem = sem.clone();
            let recorder = recorder.clone();
            jobs.spawn(async move {
                let _permit = sem.acquire_owned().await.expect("semaphore");
                let r = create.call().await;
                // Handed to the writer in the task, with no await between
                // the create call's answer and the hand-over: a policy
                // `timeout` that drops the backup mid-way cannot lose what
                // a call made (the writer is not cancelled with it).
                if let TargetResult::Taken(snaps, _) = &r {
                    failpoint::hit(failpoint::BACKUP_CREATED);
                    recorder.record(snaps.clone());
                }
                Ok(r)
            });
        }
        jobs
    }

    /// `Some(reboot)` when this backup of `t` is an AMI.
    fn image_reboot(&self, t: &TargetState) -> Option<bool> {
        match t.mode {
            _ if t.kind != TargetKind::Instance => None,
            InstanceMode::Snapshots => None,
            InstanceMode::Ami => Some(false),
            InstanceMode::AmiReboot => Some(true),
            InstanceMode::InitialAmi => {
                let days = t.ami_rotation.unwrap_or(DEFAULT_AMI_ROTATION_DAYS);
                let backups = &self.applied.backups;
                initial_ami_due(backups, self.policy, &t.id, days, self.now).then_some(false)
            }
        }
    }

    /// Gathers what each create call made, once its records are in the
    /// catalog: the calls' tasks hand them to `recorder` as each call
    /// returns (a crash later cannot forget a snapshot that exists), and
    /// this waits for the last batch. A batch that could not be committed
    /// fails the backup, as a failed commit of one target's did.
    async fn record_created(
        &self,
        mut jobs: JoinSet<Result<TargetResult, BackupError>>,
        recorder: &Recorder,
        out: &mut Outcome,
    ) -> Result<Made, BackupError> {
        let mut made = Made::default();
        while let Some(r) = jobs.join_next().await {
            if recorder.failed() {
                // Stops here with the batch's error, the calls not yet
                // answered abandoned (no more snapshots made for a backup
                // that failed), as a failed commit stopped it.
                jobs.abort_all();
                recorder.flush().await?;
            }
            match r.expect("backup task panicked")? {
                TargetResult::Taken(snaps, done) => {
                    if let Some(first) = snaps.first() {
                        out.taken.insert(first.target.clone());
                    }
                    for s in &snaps {
                        if s.kind.is_ebs() && done.contains(&s.id) {
                            // Completed in the create call's own answer.
                        } else if s.kind.is_ebs() {
                            made.snapshots.insert(s.id.clone(), s.target.clone());
                        } else {
                            made.artifacts
                                .insert(s.id.clone(), (s.target.clone(), s.kind));
                        }
                    }
                }
                TargetResult::Problem(p) => out.problems.push(p),
                TargetResult::Unanswered(p) => {
                    out.problems.push(p);
                    made.unanswered = true;
                }
            }
        }
        recorder.flush().await?;
        Ok(made)
    }

    fn record_snapshots(&self, snaps: &[SnapshotRecord]) -> Result<(), BackupError> {
        super::record::record_snapshots(self.store, self.policy, self.id, snaps)
    }

    /// Waits for the AMIs and DB snapshots of one region to become available
    /// and records each AMI's snapshots under it. Returns the ids of what did
    /// not finish, each with a sentence saying why.
    async fn finish_artifacts(
        &self,
        ec2: &dyn Ec2,
        rds: Option<&dyn Rds>,
        region: &str,
        artifacts: &BTreeMap<String, (String, ArtifactKind)>,
    ) -> Result<BTreeMap<String, String>, BackupError> {
        let of = |k: ArtifactKind| -> Vec<String> {
            artifacts
                .iter()
                .filter(|(_, (_, kind))| *kind == k)
                .map(|(id, _)| id.clone())
                .collect()
        };
        let mut out = self
            .finish_images(ec2, region, artifacts, of(ArtifactKind::Image))
            .await?;
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
            let failed = self
                .limits
                .unlocked(wait::db_snapshots(rds, kind, ids, self.wait))
                .await?;
            out.extend(
                failed
                    .into_iter()
                    .map(|(id, why)| (id.clone(), format!("{noun} {id} {why}"))),
            );
        }
        Ok(out)
    }

    /// Waits for the AMIs `amis` to become available, then tags each one's
    /// snapshots and records them in the catalog under the AMI.
    async fn finish_images(
        &self,
        ec2: &dyn Ec2,
        region: &str,
        artifacts: &BTreeMap<String, (String, ArtifactKind)>,
        amis: Vec<String>,
    ) -> Result<BTreeMap<String, String>, BackupError> {
        let mut out = BTreeMap::new();
        if amis.is_empty() {
            return Ok(out);
        }
        let waited = self
            .limits
            .unlocked(wait::images(ec2, amis, self.wait))
            .await?;
        out.extend(
            waited
                .failed
                .into_iter()
                .map(|(id, why)| (id.clone(), format!("AMI {id} {why}"))),
        );
        for (ami, snaps) in waited.done {
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
            let tags = backup_tags(self.policy, self.id, &target);
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
            self.record_snapshots(&records)?;
        }
        Ok(out)
    }
}

/// The backup as its outcome earned it: its status and problems, not yet
/// written (the catalog still has it `running`).
fn earned(
    store: &SharedStore,
    policy: &str,
    id: &str,
    outcome: Outcome,
    now: DateTime<Utc>,
) -> Result<BackupRecord, BackupError> {
    let Outcome {
        mut problems,
        taken,
        notes,
    } = outcome;
    problems.sort();
    let status = match (taken.len(), problems.is_empty()) {
        (0, _) => BackupStatus::Failed,
        (_, true) => BackupStatus::Success,
        (_, false) => BackupStatus::Partial,
    };
    let mut record = store
        .lock()
        .expect("store")
        .backups(Some(policy))?
        .into_iter()
        .find(|b| b.id == id)
        .expect("the backup recorded running is in the catalog");
    record.status = status;
    // After the status: a restore point not recorded leaves the backup
    // as good as its snapshots (there is no run log to say it elsewhere).
    // Each is a note (`is_note`), so that retention and restores do not
    // take it for a missing artifact of the target it names.
    debug_assert!(notes.iter().all(|n| crate::state::is_note(n)));
    problems.extend(notes);
    record.problems = problems;
    record.finished = Some(Utc::now().max(now));
    Ok(record)
}

/// Closes the backup `record` with its status, problems and finish time,
/// and returns it as the catalog now has it.
pub fn finish(store: &SharedStore, record: &BackupRecord) -> Result<BackupRecord, BackupError> {
    let (policy, id) = (record.policy.as_str(), record.id.as_str());
    let finished = record.finished.unwrap_or_else(Utc::now);
    {
        let mut s = store.lock().expect("store");
        failpoint::hit(failpoint::BACKUP_BEFORE_FINISH);
        s.transaction(|tx| {
            tx.finish_backup(policy, id, record.status, finished, &record.problems)
        })?;
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

fn is_database(kind: TargetKind) -> bool {
    matches!(kind, TargetKind::Rds | TargetKind::Aurora)
}

/// What the describes before the create calls showed of a region's targets.
struct Seen {
    instances: BTreeMap<String, Instance>,
    volumes: BTreeSet<String>,
}

/// Describes only the instances whose root volume alone is backed up (the
/// volume list is needed to leave the others out) and the volumes, one call
/// per 200. Every other target goes straight to its create call, which
/// itself says when an instance is gone: the emulator spends over a second
/// on each 200-instance describe, and AWS charges it to the account's
/// request rate.
async fn describe(ec2: &dyn Ec2, targets: &[TargetState], problems: &mut Vec<String>) -> Seen {
    let ids: Vec<String> = targets
        .iter()
        .filter(|t| t.kind == TargetKind::Instance && t.volumes == VolumeChoice::Root)
        .map(|t| t.id.clone())
        .collect();
    let mut instances = BTreeMap::new();
    for chunk in ids.chunks(FILTER_CHUNK) {
        let q = Query {
            ids: chunk.to_vec(),
            tags: vec![],
        };
        match collect_pages(|tok| ec2.instances_page(&q, tok)).await {
            Ok(found) => instances.extend(found.into_iter().map(|i| (i.id.clone(), i))),
            Err(e) => problems.push(format!("cannot list instances: {e}")),
        }
    }
    let ids: Vec<String> = targets
        .iter()
        .filter(|t| t.kind == TargetKind::Volume)
        .map(|t| t.id.clone())
        .collect();
    let mut volumes = BTreeSet::new();
    for chunk in ids.chunks(FILTER_CHUNK) {
        let q = Query {
            ids: chunk.to_vec(),
            tags: vec![],
        };
        match collect_pages(|tok| ec2.volumes_page(&q, tok)).await {
            Ok(found) => volumes.extend(found.into_iter().map(|v| v.id)),
            Err(e) => problems.push(format!("cannot list volumes: {e}")),
        }
    }
    Seen { instances, volumes }
}

/// What one target's create call came to.
enum TargetResult {
    /// The records made, and the EBS snapshots among them that the create
    /// call already reported completed (nothing to wait for).
    Taken(Vec<SnapshotRecord>, BTreeSet<String>),
    Problem(String),
    /// The call failed where AWS may have made the resource anyway (a
    /// transport error, a throttle after retries, an unknown failure).
    Unanswered(String),
}

/// A create call's failure as a [`TargetResult`].
fn create_failed(e: CloudError) -> TargetResult {
    match e.kind {
        ErrorKind::Transport | ErrorKind::Throttled | ErrorKind::Other => {
            TargetResult::Unanswered(e.to_string())
        }
        _ => TargetResult::Problem(e.to_string()),
    }
}

/// The create call of one target, run as a task of its own.
struct Create {
    target: TargetState,
    policy: String,
    backup: String,
    region: String,
    ec2: Arc<dyn Ec2>,
    rds: Result<Arc<dyn Rds>, String>,
    /// The instance as described, if it was (root-volume-only instances).
    instance: Option<Instance>,
    /// Did the describe show the volume?
    volume_seen: bool,
    /// `Some(reboot)` when this backup of the instance is an AMI.
    image_reboot: Option<bool>,
    /// Until when a throttled create call is made again.
    deadline: tokio::time::Instant,
}

impl Create {
    async fn call(self) -> TargetResult {
        match self.target.kind {
            TargetKind::Instance if self.instance.as_ref().is_some_and(|i| i.state.is_gone()) => {
                self.missing()
            }
            TargetKind::Instance => match self.image_reboot {
                Some(reboot) => self.image(reboot).await,
                None => self.instance_snapshots().await,
            },
            TargetKind::Volume => self.volume_snapshot().await,
            TargetKind::Rds | TargetKind::Aurora => self.db_snapshot().await,
        }
    }

    fn tags(&self) -> Tags {
        backup_tags(&self.policy, &self.backup, &self.target.id)
    }

    fn description(&self) -> String {
        description(&self.policy, &self.backup, &self.target.id)
    }

    fn missing(&self) -> TargetResult {
        TargetResult::Problem(format!(
            "instance {} is missing (terminated or deleted)",
            self.target.id
        ))
    }

    /// The catalog record of an EBS snapshot of the target.
    fn record(&self, s: Snapshot) -> SnapshotRecord {
        SnapshotRecord {
            id: s.id,
            volume_id: s.volume_id,
            target: self.target.id.clone(),
            region: self.region.clone(),
            kind: ArtifactKind::Ebs,
            image: None,
        }
    }

    /// The catalog record of anything but an EBS snapshot (an AMI or a DB
    /// snapshot), its source in `volume_id`.
    fn artifact(&self, id: String, kind: ArtifactKind) -> SnapshotRecord {
        SnapshotRecord {
            id,
            volume_id: self.target.id.clone(),
            target: self.target.id.clone(),
            region: self.region.clone(),
            kind,
            image: None,
        }
    }

    async fn image(&self, reboot: bool) -> TargetResult {
        let t = &self.target;
        let req = ImageRequest {
            instance_id: t.id.clone(),
            name: image_name(&self.policy, &t.id, &self.backup),
            description: self.description(),
            reboot,
            tags: self.tags(),
        };
        let ami = match retry_throttled(self.deadline, || self.ec2.create_image(&req)).await {
            Ok(ami) => ami,
            // The SDK retried a call whose first answer was lost, and the
            // first had made the AMI: adopt it, if it is this backup's.
            Err(e) if e.code.as_deref() == Some("InvalidAMIName.Duplicate") => {
                match self.own_image(&req).await {
                    Some(ami) => ami,
                    // Not found (yet): what the call made is adopted by its
                    // tags and marker once the backup's calls are done.
                    None => return TargetResult::Unanswered(e.to_string()),
                }
            }
            Err(e) => return create_failed(e),
        };
        TargetResult::Taken(
            vec![self.artifact(ami, ArtifactKind::Image)],
            BTreeSet::new(),
        )
    }

    /// Was an artifact created at `created` made since this backup started?
    /// One made in advance under the name this backup would use is not its.
    fn made_for_this_backup(&self, created: Option<chrono::DateTime<chrono::Utc>>) -> bool {
        super::names::backup_started(&self.backup)
            .is_some_and(|started| super::reconcile::made_since(created, started))
    }

    /// The AMI named as `req` asks that carries this backup's tags and
    /// Lifeboat's marker; never one made by anyone else under that name.
    async fn own_image(&self, req: &ImageRequest) -> Option<String> {
        let q = ImageQuery {
            ids: vec![],
            tags: req
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), vec![v.clone()]))
                .collect(),
        };
        let found = collect_pages(|tok| self.ec2.images_page(&q, tok))
            .await
            .ok()?;
        found
            .into_iter()
            .find(|i| {
                i.name == req.name
                    && carries(&i.tags, &req.tags)
                    && i.description == req.description
                    && self.made_for_this_backup(i.created)
            })
            .map(|i| i.id)
    }

    async fn instance_snapshots(&self) -> TargetResult {
        let t = &self.target;
        let mut exclude: Vec<String> = t.exclude_volumes.clone();
        if t.volumes == VolumeChoice::Root {
            let Some(i) = &self.instance else {
                return self.missing();
            };
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
            description: self.description(),
            tags: self.tags(),
        };
        let made = retry_throttled(self.deadline, || self.ec2.create_instance_snapshots(&req));
        match made.await {
            // A terminated instance has no volumes left.
            Ok(snaps) if snaps.is_empty() => TargetResult::Problem(format!(
                "instance {} has no volumes to snapshot (terminated?)",
                t.id
            )),
            Err(e) if e.kind == ErrorKind::NotFound => self.missing(),
            Ok(snaps) => {
                let done = completed(&snaps);
                TargetResult::Taken(snaps.into_iter().map(|s| self.record(s)).collect(), done)
            }
            Err(e) => create_failed(e),
        }
    }

    async fn volume_snapshot(&self) -> TargetResult {
        if !self.volume_seen {
            return TargetResult::Problem(format!(
                "volume {} is missing (deleted)",
                self.target.id
            ));
        }
        let req = VolumeSnapshotRequest {
            volume_id: self.target.id.clone(),
            description: self.description(),
            tags: self.tags(),
        };
        match retry_throttled(self.deadline, || self.ec2.create_volume_snapshot(&req)).await {
            Ok(s) => {
                let done = completed(std::slice::from_ref(&s));
                TargetResult::Taken(vec![self.record(s)], done)
            }
            Err(e) => create_failed(e),
        }
    }

    async fn db_snapshot(&self) -> TargetResult {
        let t = &self.target;
        let (kind, artifact_kind) = if t.kind == TargetKind::Rds {
            (DbSnapshotKind::Instance, ArtifactKind::DbSnapshot)
        } else {
            (DbSnapshotKind::Cluster, ArtifactKind::DbClusterSnapshot)
        };
        let rds = match &self.rds {
            Ok(r) => r,
            Err(e) => return TargetResult::Problem(format!("{}: {e}", t.id)),
        };
        let req = DbSnapshotRequest {
            kind,
            source_id: t.id.clone(),
            snapshot_id: db_snapshot_id(&self.policy, &t.id, &self.backup),
            tags: self.tags(),
        };
        let id = match retry_throttled(self.deadline, || rds.create_db_snapshot(&req)).await {
            Ok(s) => s.id,
            // The SDK retried a call whose first answer was lost: adopt the
            // snapshot the first made, if it carries this backup's tags.
            Err(e)
                if e.code.as_deref() == Some("DBSnapshotAlreadyExists")
                    || e.code.as_deref() == Some("DBClusterSnapshotAlreadyExistsFault") =>
            {
                let want = [req.snapshot_id.clone()];
                let found = collect_pages(|tok| rds.db_snapshots_page(kind, &want, tok)).await;
                let own = found.ok().and_then(|f| {
                    f.into_iter().find(|s| {
                        s.id == req.snapshot_id
                            && carries(&s.tags, &req.tags)
                            && super::names::backup_started(&self.backup)
                                .is_some_and(|started| super::reconcile::db_made_since(s, started))
                    })
                });
                match own {
                    Some(s) => s.id,
                    None => return TargetResult::Unanswered(e.to_string()),
                }
            }
            Err(e) => return create_failed(e),
        };
        TargetResult::Taken(vec![self.artifact(id, artifact_kind)], BTreeSet::new())
    }
}

/// Does `tags` hold every tag of `wanted`, with its value?
fn carries(tags: &Tags, wanted: &Tags) -> bool {
    wanted.iter().all(|(k, v)| tags.get(k) == Some(v))
}

/// The snapshots a create call reported completed already.
fn completed(snaps: &[Snapshot]) -> BTreeSet<String> {
    snaps
        .iter()
        .filter(|s| s.state == SnapshotState::Completed)
        .map(|s| s.id.clone())
        .collect()
}
