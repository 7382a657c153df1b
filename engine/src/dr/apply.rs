//! What `apply` does for a `dr_copy` change: make the missing copies of a
//! backup (`+`), delete an expired copy where the account allows it (`-`),
//! tag it expired where it does not (`~`), or forget a copy gone from AWS
//! (`<=`). The copy is found in the catalog by its address, never taken
//! from the plan's values: an edited plan names at most what the catalog
//! already holds.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::addr::Address;
use crate::cloud::{gone_is_done, Tags};
use crate::plan::apply::{ApplyError, Executor, Refusal};
use crate::plan::{Action, Change};
use crate::retention::Holds;
use crate::state::{ArtifactKind, Destination, DrCopyRecord, DrRun, DrStatus};

use super::{names, DrWork, Limits};

/// One DR run is driven by one change at a time: the other changes of the
/// same backup and destination wait, then find their copies recorded.
type RunKey = (String, String, Destination);
static DRIVING: Mutex<BTreeMap<RunKey, Arc<tokio::sync::Mutex<()>>>> = Mutex::new(BTreeMap::new());

fn run_lock(policy: &str, backup: &str, d: &Destination) -> Arc<tokio::sync::Mutex<()>> {
    DRIVING
        .lock()
        .expect("dr runs")
        .entry((policy.to_string(), backup.to_string(), d.clone()))
        .or_default()
        .clone()
}

/// One bound on copies in flight per destination for every change of an
/// apply (and of every apply in this process), as the runner has one.
fn apply_limits() -> Limits {
    static LIMITS: std::sync::OnceLock<Limits> = std::sync::OnceLock::new();
    LIMITS.get_or_init(Limits::default).clone()
}

/// The catalog's copy (with an AMI's snapshot copies) at `address`.
pub(super) fn recorded(ex: &Executor, address: &Address) -> Result<Vec<DrCopyRecord>, ApplyError> {
    let Address::DrCopy { policy, source, to } = address else {
        return Ok(Vec::new());
    };
    let (region, account) = Destination::split(to);
    let all = ex.store.lock().expect("store").dr_copies(Some(policy))?;
    let main: Vec<DrCopyRecord> = all
        .iter()
        .filter(|c| {
            c.source_id == *source
                && c.image.is_none()
                && c.destination.region == region
                && match account {
                    Some(a) => c.destination.account == a,
                    None => c.destination.account == c.source_account,
                }
        })
        .cloned()
        .collect();
    let mut out = main.clone();
    for m in main.iter().filter(|m| m.kind == ArtifactKind::Image) {
        out.extend(
            all.iter()
                .filter(|c| c.image.as_deref() == Some(&m.id) && c.destination == m.destination)
                .cloned(),
        );
    }
    Ok(out)
}

impl Executor {
    /// Performs one `dr_copy` change.
    pub(crate) async fn dr_copy(&self, c: &Change) -> Result<(), ApplyError> {
        match c.action {
            Action::Create => self.make_copies(c).await,
            Action::Delete => self.delete_copy(c).await,
            Action::Update if super::lock::is_lock_change(c) => self.lock_copy(c).await,
            Action::Update => self.expire_copy(c).await,
            Action::Read => {
                let copies = recorded(self, &c.address)?;
                self.write(|tx| {
                    for r in &copies {
                        tx.delete_dr_copy(&r.destination, &r.id)?;
                    }
                    Ok(())
                })
            }
            Action::Replace | Action::Move => Err(ApplyError::NotApplicable {
                action: c.action,
                address: c.address.clone(),
            }),
        }
    }

    /// Makes the copies of the backup named in the change's `after` to its
    /// destination, as the runner would, waiting for them.
    async fn make_copies(&self, c: &Change) -> Result<(), ApplyError> {
        let after = c.after.as_ref().ok_or(ApplyError::NoValue)?;
        let field = |k: &str| {
            after
                .get(k)
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .ok_or_else(|| ApplyError::MissingField(k.to_string()))
        };
        let Address::DrCopy { policy, .. } = &c.address else {
            return Err(ApplyError::NoValue);
        };
        let (backup_id, account, region) =
            (field("backup_id")?, field("account")?, field("region")?);
        let dest = Destination { account, region };
        let lock = run_lock(policy, &backup_id, &dest);
        let _driving = lock.lock().await;
        // The plan found this copy missing, or its last try failed. A
        // record of it that failed or timed out is forgotten; one that
        // completed is looked for in AWS: found, the copy is done (another
        // change of this backup made it); gone, it is forgotten too. The
        // copy is then made again, or adopted when AWS has it by its tags.
        let records: Vec<DrCopyRecord> = recorded(self, &c.address)?
            .into_iter()
            .filter(|r| r.backup_id == backup_id)
            .collect();
        let done: Vec<DrCopyRecord> = records
            .iter()
            .filter(|r| r.status == DrStatus::Completed && r.image.is_none())
            .cloned()
            .collect();
        if !done.is_empty() {
            let seen =
                super::observe::observe_copies(self.cloud.clone(), &done, &self.accounts).await?;
            if done.iter().all(|r| seen.holds(r)) {
                return Ok(());
            }
        }
        // This artifact's settled records (failed, timed out, or completed
        // and gone), and the failed or timed-out records of the run's other
        // artifacts: those would fail the run again, and are made again
        // (or adopted) with it.
        let mut stale: Vec<DrCopyRecord> = records
            .into_iter()
            .filter(|r| r.status != DrStatus::InProgress)
            .collect();
        stale.extend(
            self.store
                .lock()
                .expect("store")
                .dr_copies(Some(policy))?
                .into_iter()
                .filter(|r| {
                    r.backup_id == backup_id
                        && r.destination == dest
                        && matches!(r.status, DrStatus::Failed | DrStatus::TimedOut)
                }),
        );
        self.write(|tx| {
            for r in &stale {
                tx.delete_dr_copy(&r.destination, &r.id)?;
            }
            Ok(())
        })?;
        let backup = self
            .store
            .lock()
            .expect("store")
            .backups(Some(policy))?
            .into_iter()
            .find(|b| b.id == backup_id)
            .ok_or_else(|| Refusal::NotInCatalog {
                id: backup_id.clone(),
            })?;
        let runs = self.store.lock().expect("store").dr_runs(Some(policy))?;
        let run = match runs
            .into_iter()
            .find(|r| r.backup_id == backup_id && r.destination == dest)
        {
            Some(r) if r.status.is_open() => r,
            Some(r) => DrRun {
                status: DrStatus::Pending,
                started: self.now,
                updated: self.now,
                detail: String::new(),
                ..r
            },
            None => DrRun {
                policy: policy.clone(),
                backup_id: backup.id.clone(),
                backup_seq: backup.seq,
                destination: dest,
                status: DrStatus::Pending,
                started: self.now,
                updated: self.now,
                detail: String::new(),
            },
        };
        self.write(|tx| tx.put_dr_run(&run))?;
        let mut work = DrWork::new(
            self.cloud.clone(),
            self.store.clone(),
            apply_limits(),
            self.now,
        );
        work.interval = std::time::Duration::from_secs(5);
        let ended = super::copy::drive(&work, run).await?;
        if ended.status == DrStatus::Completed {
            Ok(())
        } else {
            Err(ApplyError::Dr(format!(
                "DR copies of backup {} to {} {}: {}",
                ended.backup_id,
                ended.destination,
                ended.status.as_str(),
                ended.detail
            )))
        }
    }

    /// The copy to delete or tag, checked: recorded, settled, its backup
    /// not frozen; with the account it lives in.
    fn settled_copy(
        &self,
        c: &Change,
    ) -> Result<(Vec<DrCopyRecord>, &lifeboat_schema::Account), ApplyError> {
        let copies = recorded(self, &c.address)?;
        let Some(main) = copies.first().cloned() else {
            return Err(Refusal::NotInCatalog {
                id: c.address.to_string(),
            }
            .into());
        };
        if main.status == DrStatus::InProgress {
            return Err(Refusal::StillRunning {
                id: main.id,
                backup_id: main.backup_id,
                policy: main.policy,
            }
            .into());
        }
        let frozen = self
            .store
            .lock()
            .expect("store")
            .backups(Some(&main.policy))?
            .into_iter()
            .any(|b| b.id == main.backup_id && b.frozen.is_some());
        let reads = |u: &crate::state::InUse| {
            u.reads_copies(&main.policy, &main.backup_id, &main.destination)
        };
        if let Some(restore) = self.restoring(reads)? {
            return Err(Refusal::Restoring {
                id: main.id,
                account: main.destination.account.clone(),
                region: main.destination.region.clone(),
                backup_id: main.backup_id,
                policy: main.policy,
                restore,
            }
            .into());
        }
        if frozen {
            return Err(Refusal::Frozen {
                id: main.id,
                backup_id: main.backup_id,
                policy: main.policy,
            }
            .into());
        }
        let acct = self.account(&main.destination.account)?;
        Ok((copies, acct))
    }

    async fn delete_copy(&self, c: &Change) -> Result<(), ApplyError> {
        let (copies, acct) = self.settled_copy(c)?;
        let main = &copies[0];
        if !acct.allow_delete {
            return Err(Refusal::DeleteNotAllowed {
                account: acct.name.clone(),
                id: main.id.clone(),
            }
            .into());
        }
        // Whatever the plan says: a copy whose recorded lock holds is never
        // asked to be deleted (AWS would refuse it, half an AMI deleted).
        if let Some(until) = copies.iter().filter_map(|r| r.locked_at(self.now)).max() {
            return Err(ApplyError::Dr(format!(
                "DR copy {} at {} is locked until {}: it is not deleted before then",
                main.id,
                main.destination,
                super::lock::stamp(until)
            )));
        }
        self.still_locked()?;
        let region = &main.destination.region;
        match main.kind {
            ArtifactKind::Ebs => {
                let ec2 = self.cloud.ec2(acct, region).await?;
                gone_is_done(ec2.delete_snapshot(&main.id).await)?;
            }
            ArtifactKind::Image => {
                let ec2 = self.cloud.ec2(acct, region).await?;
                // The image's snapshots as AWS reports them, besides those
                // recorded (a copy that failed or timed out has none
                // recorded): none is left behind when it is deregistered.
                let q = crate::cloud::ImageQuery {
                    ids: vec![main.id.clone()],
                    ..Default::default()
                };
                let found = crate::cloud::collect_pages(|t| {
                    let (ec2, q) = (ec2.clone(), q.clone());
                    async move { ec2.images_page(&q, t).await }
                })
                .await?;
                let mut snaps: Vec<String> = copies[1..].iter().map(|s| s.id.clone()).collect();
                for i in found {
                    for s in i.snapshot_ids {
                        if !snaps.contains(&s) {
                            snaps.push(s);
                        }
                    }
                }
                // A copy that was ever to be locked is asked of AWS too
                // before its image goes: a lock the catalog missed (a lost
                // answer, one made outside) would refuse the snapshots'
                // deletes after the image was already deregistered.
                if copies
                    .iter()
                    .any(|r| r.lock.is_some() || !r.lock_problem.is_empty())
                {
                    let held = crate::cloud::collect_chunked(&snaps, |chunk, t| {
                        let ec2 = ec2.clone();
                        async move { ec2.locked_snapshots_page(chunk, t).await }
                    })
                    .await?;
                    if let Some(l) = held.iter().find(|l| l.holds()) {
                        return Err(ApplyError::Dr(format!(
                            "DR copy {} at {}: AWS reports its snapshot {} locked ({}): the image is not deregistered",
                            main.id, main.destination, l.snapshot_id, l.state
                        )));
                    }
                }
                gone_is_done(ec2.deregister_image(&main.id).await)?;
                for s in &snaps {
                    gone_is_done(ec2.delete_snapshot(s).await)?;
                }
            }
            ArtifactKind::DbSnapshot | ArtifactKind::DbClusterSnapshot => {
                let rds = self.cloud.rds(acct, region).await?;
                gone_is_done(
                    rds.delete_db_snapshot(super::copy::db_kind(main.kind), &main.id)
                        .await,
                )?;
            }
        }
        self.write(|tx| {
            for r in &copies {
                tx.delete_dr_copy(&r.destination, &r.id)?;
            }
            Ok(())
        })
    }

    /// Tags an expired copy `lifeboat:expired` in an account where Lifeboat
    /// does not delete, and records it expired.
    async fn expire_copy(&self, c: &Change) -> Result<(), ApplyError> {
        let (copies, acct) = self.settled_copy(c)?;
        let main = &copies[0];
        let region = &main.destination.region;
        let at = self.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let tags: Tags = [(names::TAG_EXPIRED.to_string(), at)].into();
        match main.kind {
            ArtifactKind::Ebs | ArtifactKind::Image => {
                let ec2 = self.cloud.ec2(acct, region).await?;
                let ids: Vec<String> = copies.iter().map(|r| r.id.clone()).collect();
                ec2.create_tags(&ids, &tags).await?;
            }
            ArtifactKind::DbSnapshot | ArtifactKind::DbClusterSnapshot => {
                let rds = self.cloud.rds(acct, region).await?;
                let arn = main.arn.clone().unwrap_or_default();
                rds.tag_db_snapshot(&arn, &tags).await?;
            }
        }
        let now = self.now;
        self.write(|tx| {
            for r in &copies {
                let mut r = r.clone();
                r.expired = Some(now);
                tx.put_dr_copy(&r)?;
            }
            Ok(())
        })
    }
}
