//! Performing a [`RestorePlan`]: shares, create calls, waits, in order.
//!
//! Each resource is recorded in the catalog in its own transaction as soon
//! as its create call returns, so a restore killed at any instant is
//! resumed from its record and its tags: an image, instance or volume
//! carrying the restore's id is adopted, never created twice (RunInstances
//! and CreateVolume also carry the id as their `ClientToken`), and a drill's
//! teardown knows everything there is to remove.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::Utc;
use lifeboat_schema::Account;

use super::plan::{account, Accounts};

use super::plan::RestorePlan;
use super::{RestoreError, TAG_RESTORE_ID, TAG_SWAPPED_OUT_BY};
use crate::backup::wait::{poll, Look};
use crate::backup::Wait;
use crate::cloud::restore::{Databases, Launch};
use crate::cloud::{
    collect_pages, gone_is_done, Cloud, DbSnapshotKind, Ec2, ImageQuery, InstanceState, Query, Tags,
};
use crate::share::{hold, release_all, Share};
use crate::state::holder::HolderId;
use crate::state::{
    restore_holder, ResourceKind, RestoreRecord, RestoreStatus, SharedStore, StateResult,
};

/// Where and how a restore runs.
pub struct Runner<'a> {
    pub cloud: &'a Arc<dyn Cloud>,
    pub store: &'a SharedStore,
    pub accounts: &'a Accounts,
    /// `user@host`, for the record.
    pub operator: String,
    /// How long to wait for instances to run and databases to be available.
    pub wait: Wait,
}

impl Runner<'_> {
    fn tx<T>(&self, f: impl FnMut(&mut crate::state::Tx) -> StateResult<T>) -> StateResult<T> {
        let mut st = self.store.lock().expect("state lock poisoned");
        st.transaction(f)
    }

    fn made(&self, p: &RestorePlan, kind: ResourceKind, id: &str) -> Result<(), RestoreError> {
        self.tx(|tx| tx.restored(&p.id, kind, id, Utc::now()))?;
        Ok(())
    }

    /// Performs `p`, or resumes it after a kill. Returns the record; a
    /// failure is recorded (with what was created) before it is returned.
    pub async fn run(&self, p: &RestorePlan) -> Result<RestoreRecord, RestoreError> {
        self.run_until(p, &AtomicBool::new(false)).await
    }

    /// [`Runner::run`], interrupted when `stop` is raised (a signal): what
    /// was made stays recorded, the shares and the temporary image go.
    pub async fn run_until(
        &self,
        p: &RestorePlan,
        stop: &AtomicBool,
    ) -> Result<RestoreRecord, RestoreError> {
        let existing = {
            let st = self.store.lock().expect("state lock poisoned");
            if st.lineage()? != p.lineage {
                return Err(RestoreError::Stale(
                    "it was planned against another state (lineage differs)".into(),
                ));
            }
            st.restores()?.into_iter().find(|r| r.id == p.id)
        };
        // A failed restore may be run again: what it made is adopted by
        // its tags, never made twice.
        // A restore run for the first time has made nothing yet: it skips
        // the looks for what an earlier run of it made.
        let resumed = existing.is_some();
        let mut record = match existing {
            Some(r) if matches!(r.status, RestoreStatus::Completed | RestoreStatus::TornDown) => {
                return Err(RestoreError::Invalid(format!(
                    "restore {} already ran ({}): plan a new one",
                    p.id,
                    r.status.as_str()
                )))
            }
            Some(r) => RestoreRecord {
                status: RestoreStatus::Running,
                problem: String::new(),
                holder: Some(HolderId::current()),
                holder_since: Some(Utc::now()),
                ..r
            },
            None => RestoreRecord {
                id: p.id.clone(),
                kind: p.kind.noun().into(),
                target: p.target.clone(),
                policy: p.policy.clone(),
                backup_id: p.backup_id.clone(),
                backup_started: p.backup_started,
                source: p.source.clone(),
                account: p.account.clone(),
                region: p.region.clone(),
                drill: p.drill.clone(),
                operator: self.operator.clone(),
                started: Utc::now(),
                ready: None,
                finished: None,
                status: RestoreStatus::Running,
                problem: String::new(),
                resources: vec![],
                holder: Some(HolderId::current()),
                holder_since: Some(Utc::now()),
            },
        };
        // Running from here, if its artifacts are still there: retention
        // keeps them from this commit until the restore ends.
        let missing = self.tx(|tx| tx.start_restore(&record, &p.from))?;
        if !missing.is_empty() {
            return Err(RestoreError::Stale(format!(
                "backup {} of policy {} no longer has {} in the catalog ({}): retention expired it since the plan",
                p.backup_id,
                p.policy,
                missing.join(", "),
                p.source
            )));
        }
        let result = tokio::select! {
            r = self.body(p, resumed) => r,
            _ = raised(stop) => Err(RestoreError::Invalid(
                "interrupted: what was made is recorded; run the same plan again to finish it".into(),
            )),
        };
        // The outcome is recorded first, then the shares and the temporary
        // image go: a process killed in between leaves an ended restore
        // whose leftovers the reaper lets go of, never a finished restore
        // that looks interrupted.
        record.finished = Some(Utc::now());
        match &result {
            Ok(()) => {
                record.ready = record.finished;
                record.status = RestoreStatus::Completed;
            }
            Err(e) => {
                record.status = RestoreStatus::Failed;
                record.problem = e.to_string();
            }
        }
        self.tx(|tx| tx.put_restore(&record))?;
        let cleaned = leftovers(self.cloud, self.store, self.accounts, &record).await;
        if let Err(e) = &cleaned {
            // Reported, and tried again by the reaper; a restore whose
            // resources run is done all the same.
            let note = format!(
                "letting go of its shares and launch image failed ({e}): tried again by the next restore command or runner"
            );
            let problem = if record.problem.is_empty() {
                note
            } else {
                format!("{}; then: {note}", record.problem)
            };
            self.tx(|tx| tx.note_restore_problem(&p.id, &problem))?;
        }
        if result.is_err() {
            both(result, cleaned)?;
        }
        let st = self.store.lock().expect("state lock poisoned");
        Ok(st
            .restores()?
            .into_iter()
            .find(|r| r.id == p.id)
            .expect("the restore just recorded"))
    }

    async fn body(&self, p: &RestorePlan, resumed: bool) -> Result<(), RestoreError> {
        self.share(p).await?;
        let dest = account(self.accounts, &p.account)?;
        match (&p.launch, &p.volume, &p.database) {
            (Some(_), _, _) => self.instance(p, dest, resumed).await,
            (_, Some(_), _) => self.volume(p, dest, resumed).await,
            (_, _, Some(_)) => self.database(p, dest).await,
            _ => Err(RestoreError::Invalid(
                "the restore plan creates nothing".into(),
            )),
        }
    }

    /// Shares the artifacts with the account restored into, each held by
    /// this restore (`crate::share`: another restore or a DR copy may hold
    /// the same share, and only the last holder undoes it).
    async fn share(&self, p: &RestorePlan) -> Result<(), RestoreError> {
        let Some(with) = &p.share_with else {
            return Ok(());
        };
        let owner = account(self.accounts, &p.artifacts_account)?;
        let holder = restore_holder(&p.id);
        for s in &p.shares {
            let share = Share {
                owner,
                kind: s.kind,
                id: &s.id,
                region: &p.artifacts_region,
                with,
            };
            hold(self.cloud.as_ref(), self.store, &share, &holder).await?;
        }
        Ok(())
    }

    async fn instance(
        &self,
        p: &RestorePlan,
        dest: &Account,
        resumed: bool,
    ) -> Result<(), RestoreError> {
        let launch_req = p.launch.as_ref().expect("an instance restore launches");
        let ec2 = self.cloud.ec2(dest, &p.region).await?;
        let launch = self.cloud.launch(dest, &p.region).await?;
        let mut req = launch_req.clone();
        let mut registered = None;
        if let Some(reg) = &p.image {
            let q = ImageQuery {
                ids: vec![],
                tags: vec![(TAG_RESTORE_ID.into(), vec![p.id.clone()])],
            };
            // Its own name too: a tag alone can be put on any image by
            // hand, and this image is deregistered once the instance runs.
            let own = || async {
                let found = collect_pages(|t| ec2.images_page(&q, t)).await?;
                let id = found.into_iter().find(|i| i.name == reg.name).map(|i| i.id);
                Ok::<_, RestoreError>(id)
            };
            let before = if resumed { own().await? } else { None };
            let image = match before {
                Some(id) => id,
                None => match launch.register_image(reg).await {
                    Ok(id) => id,
                    Err(e) => own().await?.ok_or(e)?,
                },
            };
            self.made(p, ResourceKind::Image, &image)?;
            req.image_id = image.clone();
            registered = Some(image);
        }
        let before = match resumed {
            true => first_instance(ec2.as_ref(), &p.id).await?,
            false => None,
        };
        let instance = match before {
            Some(id) => id,
            None => match launch.run_instance(&req).await {
                Ok(id) => id,
                // An answer lost on the way may hide a launch: what carries
                // this restore's id is its own, and is recorded.
                Err(e) => first_instance(ec2.as_ref(), &p.id).await?.ok_or(e)?,
            },
        };
        self.made(p, ResourceKind::Instance, &instance)?;
        crate::failpoint::hit(crate::failpoint::RESTORE_LAUNCHED);
        // The image only carried the mappings to the launch: the instance's
        // volumes are its own, the backup's snapshots stay, and the cleanup
        // deregisters it however the launch went.
        let _ = registered;
        wait_running(ec2.as_ref(), &instance, self.wait)
            .await
            .map_err(|e| placed(e, p))
    }

    async fn volume(
        &self,
        p: &RestorePlan,
        dest: &Account,
        resumed: bool,
    ) -> Result<(), RestoreError> {
        let req = p
            .volume
            .as_ref()
            .expect("a volume restore creates a volume");
        let ec2 = self.cloud.ec2(dest, &p.region).await?;
        let launch = self.cloud.launch(dest, &p.region).await?;
        let before = match resumed {
            true => first_volume(ec2.as_ref(), &p.id).await?,
            false => None,
        };
        let volume = match before {
            Some(id) => id,
            None => match launch.create_volume(req).await {
                Ok(id) => id,
                Err(e) => first_volume(ec2.as_ref(), &p.id).await?.ok_or(e)?,
            },
        };
        self.made(p, ResourceKind::Volume, &volume)?;
        wait_volume(ec2.as_ref(), &volume, &["available", "in-use"], self.wait)
            .await
            .map_err(|e| placed(e, p))?;
        if let Some(a) = &p.attach {
            self.attach(p, ec2.as_ref(), launch.as_ref(), &volume, a)
                .await?;
        }
        Ok(())
    }

    async fn attach(
        &self,
        p: &RestorePlan,
        ec2: &dyn Ec2,
        launch: &dyn Launch,
        volume: &str,
        a: &super::plan::Attach,
    ) -> Result<(), RestoreError> {
        let live =
            collect_pages(|t| launch.shapes_page(std::slice::from_ref(&a.instance_id), t)).await?;
        let at_device = live
            .first()
            .and_then(|(_, s)| s.disks.iter().find(|d| d.device == a.device))
            .map(|d| d.volume_id.clone());
        if at_device.as_deref() == Some(volume) {
            return Ok(()); // attached before a kill
        }
        if let (Some(old), Some(now_there)) = (&a.swap_out, &at_device) {
            if old == now_there {
                let mut t = Tags::new();
                t.insert(TAG_SWAPPED_OUT_BY.into(), p.id.clone());
                ec2.create_tags(std::slice::from_ref(old), &t).await?;
                launch.detach_volume(old, &a.instance_id).await?;
                wait_volume(ec2, old, &["available"], self.wait).await?;
            }
        }
        let attached = match launch
            .attach_volume(volume, &a.instance_id, &a.device)
            .await
        {
            Ok(()) => wait_volume(ec2, volume, &["in-use"], self.wait).await,
            Err(e) => Err(e.into()),
        };
        if let (Err(e), Some(old)) = (&attached, &a.swap_out) {
            // The instance must not be left without the volume it had.
            let back = launch.attach_volume(old, &a.instance_id, &a.device).await;
            return Err(RestoreError::Invalid(format!(
                "{e}; the swapped-out volume {old} was {} at {} of {}",
                match back {
                    Ok(()) => "attached again".to_string(),
                    Err(b) => format!("NOT attached again ({b}): attach it by hand"),
                },
                a.device,
                a.instance_id
            )));
        }
        attached.map_err(|e| placed(e, p))
    }

    async fn database(&self, p: &RestorePlan, dest: &Account) -> Result<(), RestoreError> {
        let req = p.database.as_ref().expect("a database restore");
        let dbs = self.cloud.databases(dest, &p.region).await?;
        let (main_kind, resource) = match req.kind {
            DbSnapshotKind::Instance => (DbSnapshotKind::Instance, ResourceKind::DbInstance),
            DbSnapshotKind::Cluster => (DbSnapshotKind::Cluster, ResourceKind::DbCluster),
        };
        let d = dbs.as_ref();
        // Recorded before the call: the identifier is known, and a process
        // killed between the call and a record after it would leave a
        // database nobody tears down (teardown checks the tag first, so a
        // name recorded for a database never made removes nothing).
        // After a create call whose answer was lost, what exists under the
        // identifier with this restore's tag is its own (anything else
        // there refuses the restore before it is recorded).
        let adopted = self.adopt(p, d, main_kind, &req.identifier).await?;
        self.made(p, resource, &req.identifier)?;
        if !adopted {
            if let Err(e) = d.restore(req).await {
                if !self.adopt(p, d, main_kind, &req.identifier).await? {
                    self.tx(|tx| tx.forget_restored(&p.id, resource, &req.identifier))?;
                    return Err(e.into());
                }
            }
        }
        let engine = req.engine.clone().unwrap_or_default();
        let member_kind = DbSnapshotKind::Instance;
        for (member, class) in &p.members {
            let adopted = self.adopt(p, d, member_kind, member).await?;
            self.made(p, ResourceKind::DbInstance, member)?;
            if !adopted {
                let added = d
                    .add_cluster_instance(&req.identifier, member, class, &engine, &req.tags)
                    .await;
                if let Err(e) = added {
                    if !self.adopt(p, d, member_kind, member).await? {
                        self.tx(|tx| tx.forget_restored(&p.id, ResourceKind::DbInstance, member))?;
                        return Err(e.into());
                    }
                }
            }
        }
        wait_db(dbs.as_ref(), main_kind, &req.identifier, self.wait).await?;
        for (member, _) in &p.members {
            wait_db(dbs.as_ref(), DbSnapshotKind::Instance, member, self.wait).await?;
        }
        Ok(())
    }

    /// Whether `identifier` exists already as this restore's (made before a
    /// kill); one that exists as anything else is never taken over.
    async fn adopt(
        &self,
        p: &RestorePlan,
        dbs: &dyn Databases,
        kind: DbSnapshotKind,
        identifier: &str,
    ) -> Result<bool, RestoreError> {
        match dbs.status(kind, identifier).await? {
            None => Ok(false),
            Some(s) if s.tags.get(TAG_RESTORE_ID) == Some(&p.id) => Ok(true),
            Some(_) => Err(RestoreError::Invalid(format!(
                "{identifier} already exists in account {} ({}) and is not this restore's: nothing was created over it",
                p.account, p.region
            ))),
        }
    }
}

/// What a restore leaves after it, once it is recorded as ended (done,
/// failed, or reaped after its process died): no share it holds (a share is only for the restore's
/// time) and no image registered for the launch (it would hold the
/// backup's snapshots against retention). What it created otherwise stays.
pub(super) async fn leftovers(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    accounts: &Accounts,
    r: &RestoreRecord,
) -> Result<(), RestoreError> {
    let unshared = release_all(cloud.as_ref(), store, accounts, &restore_holder(&r.id))
        .await
        .map_err(RestoreError::from);
    let images: Vec<String> = {
        let st = store.lock().expect("state lock poisoned");
        // Not while a run that took the restore over since may launch
        // from its image.
        st.restores()?
            .into_iter()
            .filter(|x| x.id == r.id && x.status != RestoreStatus::Running)
            .flat_map(|x| x.resources)
            .filter(|x| x.kind == ResourceKind::Image && x.removed.is_none())
            .map(|x| x.id)
            .collect()
    };
    let mut deregistered = Ok(());
    if !images.is_empty() {
        let dest = account(accounts, &r.account)?;
        let ec2 = cloud.ec2(dest, &r.region).await?;
        for image in images {
            match gone_is_done(ec2.deregister_image(&image).await) {
                Ok(()) => {
                    let mut st = store.lock().expect("state lock poisoned");
                    st.transaction(|tx| {
                        tx.unrestored(&r.id, ResourceKind::Image, &image, Utc::now())
                    })?;
                }
                Err(e) => deregistered = Err(e.into()),
            }
        }
    }
    both(unshared, deregistered)
}

/// Waits until `stop` is raised.
async fn raised(stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Both results: the first error, with the second's after it.
fn both(a: Result<(), RestoreError>, b: Result<(), RestoreError>) -> Result<(), RestoreError> {
    match (a, b) {
        (Ok(()), r) | (r, Ok(())) => r,
        (Err(a), Err(b)) => Err(RestoreError::Invalid(format!("{a}; then: {b}"))),
    }
}

/// A wait's failure with where it happened.
fn placed(e: RestoreError, p: &RestorePlan) -> RestoreError {
    match e {
        RestoreError::Invalid(m) => RestoreError::Invalid(format!(
            "{m} (account {}, {}, restore {})",
            p.account, p.region, p.id
        )),
        other => other,
    }
}

/// The first instance carrying the restore's tag.
async fn first_instance(ec2: &dyn Ec2, restore_id: &str) -> Result<Option<String>, RestoreError> {
    let found = super::tagged::instances(ec2, restore_id).await?;
    Ok(found.into_iter().next().map(|i| i.id))
}

/// The first volume carrying the restore's tag.
async fn first_volume(ec2: &dyn Ec2, restore_id: &str) -> Result<Option<String>, RestoreError> {
    let found = super::tagged::volumes(ec2, restore_id).await?;
    Ok(found.into_iter().next().map(|v| v.id))
}

fn waited(id: &str, what: &str, w: crate::backup::wait::Waited<()>) -> Result<(), RestoreError> {
    match w.failed.get(id) {
        Some(why) => Err(RestoreError::Invalid(format!("{what} {id} {why}"))),
        None => Ok(()),
    }
}

async fn wait_running(ec2: &dyn Ec2, id: &str, wait: Wait) -> Result<(), RestoreError> {
    let w = poll(vec![id.to_string()], 1, wait, |ids| async move {
        let q = Query { ids, tags: vec![] };
        let found = collect_pages(|t| ec2.instances_page(&q, t)).await?;
        Ok(found
            .into_iter()
            .map(|i| {
                let look = match i.state {
                    InstanceState::Running => Look::Done(()),
                    s if s.is_gone() => Look::Failed("was terminated while starting".into()),
                    _ => Look::Pending,
                };
                (i.id, look)
            })
            .collect())
    })
    .await;
    waited(id, "instance", w)
}

async fn wait_volume(
    ec2: &dyn Ec2,
    id: &str,
    want: &[&str],
    wait: Wait,
) -> Result<(), RestoreError> {
    let w = poll(vec![id.to_string()], 1, wait, |ids| async move {
        let q = Query { ids, tags: vec![] };
        let found = collect_pages(|t| ec2.volumes_page(&q, t)).await?;
        Ok(found
            .into_iter()
            .map(|v| {
                let look = if want.contains(&v.state.as_str()) {
                    Look::Done(())
                } else if v.state == "error" {
                    Look::Failed("ended in the error state".into())
                } else {
                    Look::Pending
                };
                (v.id, look)
            })
            .collect())
    })
    .await;
    waited(id, "volume", w)
}

async fn wait_db(
    dbs: &dyn Databases,
    kind: DbSnapshotKind,
    id: &str,
    wait: Wait,
) -> Result<(), RestoreError> {
    let w = poll(vec![id.to_string()], 1, wait, |ids| async move {
        let mut out = vec![];
        for id in ids {
            let look = match dbs.status(kind, &id).await? {
                Some(s) if s.status == "available" => Look::Done(()),
                Some(s) if s.status.contains("fail") || s.status.starts_with("incompatible") => {
                    Look::Failed(format!("ended {}", s.status))
                }
                Some(_) => Look::Pending,
                None => Look::Failed("is gone".into()),
            };
            out.push((id, look));
        }
        Ok(out)
    })
    .await;
    waited(id, "database", w)
}
