//! A drill's teardown: removes exactly what the drill's restores created,
//! as their records list it, and nothing else.
//!
//! Each recorded resource is looked up by the restore's
//! [`TAG_RESTORE_ID`] first: only one carrying this restore's id is
//! removed, so a record can never aim a teardown at an original. The same
//! look finds what a restore made but could not record (its process died
//! between the create call and the record, or the volumes an instance was
//! launched with): those are recorded, then removed. A resource no longer
//! there counts as removed. Order: instances (and their wait to end), then
//! volumes, DB instances before their clusters, and registered images.
//! A call refused while what it removes is still held is made again after
//! pauses that double up to 30 s, within the restore wait.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use lifeboat_schema::Account;
use tokio::time::Instant;

use super::drill::Driller;
use crate::backup::Wait;
use crate::cloud::restore::Launch;
use crate::cloud::{collect_pages, CloudError, DbSnapshotKind, Ec2, ErrorKind, ImageQuery, Query};
use crate::restore::{tagged, TAG_RESTORE_ID};
use crate::state::{ResourceKind, RestoreRecord, RestoreStatus, StateError};

/// The longest pause between two tries of a teardown call.
const LONGEST_PAUSE: Duration = Duration::from_secs(30);

/// The pauses between a teardown's tries: the restore wait's interval,
/// doubled after each try up to [`LONGEST_PAUSE`], never past the wait's
/// end. Without jitter: each retry waits on one resource's own state (an
/// instance ending, a cluster's members going), not on a rate shared with
/// other callers, so spreading callers apart buys nothing.
struct Pauses {
    next: Duration,
    timeout: Duration,
}

impl Pauses {
    fn new(wait: Wait) -> Pauses {
        Pauses {
            next: wait.interval.max(Duration::from_millis(1)),
            timeout: wait.timeout,
        }
    }

    /// The pause before the next try, for a wait begun at `started`.
    fn next(&mut self, started: Instant) -> Duration {
        let left = self.timeout.saturating_sub(started.elapsed());
        let pause = self.next.min(left);
        self.next = (self.next * 2).min(LONGEST_PAUSE);
        pause
    }
}

/// Makes `call` again while it fails with a conflict (a volume still
/// attached to an ending instance, a cluster still holding instances being
/// deleted), pausing ever longer, until the restore wait is over.
async fn retry_conflict<F, Fut>(wait: Wait, mut call: F) -> Result<(), CloudError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), CloudError>>,
{
    let started = Instant::now();
    let mut pauses = Pauses::new(wait);
    loop {
        match call().await {
            Err(err) if err.kind == ErrorKind::Conflict && started.elapsed() < wait.timeout => {
                tokio::time::sleep(pauses.next(started)).await
            }
            other => return other,
        }
    }
}

/// What a teardown did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Teardown {
    /// Removed now, or found gone.
    pub removed: Vec<(ResourceKind, String)>,
    /// What could not be removed, and why (a later teardown tries again).
    pub problems: Vec<String>,
}

/// The order resources go in: what holds others first.
fn rank(k: ResourceKind) -> u8 {
    match k {
        ResourceKind::Instance => 0,
        ResourceKind::Volume => 1,
        ResourceKind::DbInstance => 2,
        ResourceKind::DbCluster => 3,
        ResourceKind::Image => 4,
    }
}

impl Driller {
    /// Removes everything the restores of drill `drill_id` created and have
    /// not removed yet.
    pub async fn teardown(&self, drill_id: &str) -> Result<Teardown, StateError> {
        let mut out = Teardown::default();
        // Instances first in every restore, then the rest kind by kind,
        // each pass reading the records again (a pass records what it
        // finds of the next, an instance's volumes).
        for pass in 0..=4u8 {
            let restores: Vec<RestoreRecord> = {
                let st = self.rec.store.lock().expect("state lock poisoned");
                st.restores()?
                    .into_iter()
                    .filter(|r| r.drill.as_deref() == Some(drill_id))
                    .collect()
            };
            for r in &restores {
                if let Err(e) = self.remove(r, pass, &mut out).await {
                    out.problems
                        .push(format!("restore {} ({} {}): {e}", r.id, r.kind, r.target));
                }
            }
        }
        self.close_restores(drill_id)?;
        Ok(out)
    }

    /// Marks the drill's restores whose creations are all gone as torn down.
    fn close_restores(&self, drill_id: &str) -> Result<(), StateError> {
        let mut st = self.rec.store.lock().expect("state lock poisoned");
        let done: Vec<RestoreRecord> = st
            .restores()?
            .into_iter()
            .filter(|r| r.drill.as_deref() == Some(drill_id))
            .filter(|r| r.resources.iter().all(|x| x.removed.is_some()))
            .filter(|r| matches!(r.status, RestoreStatus::Running | RestoreStatus::Completed))
            .collect();
        // Written from the records read above: never over a newer one.
        st.transaction_no_retry(|tx| {
            for mut r in done.clone() {
                r.status = RestoreStatus::TornDown;
                r.finished.get_or_insert_with(Utc::now);
                tx.put_restore(&r)?;
            }
            Ok(())
        })
    }

    fn record(&self, r: &RestoreRecord, kind: ResourceKind, id: &str, removed: bool) {
        let now = Utc::now();
        let mut st = self.rec.store.lock().expect("state lock poisoned");
        // A failed write leaves the resource listed: the next teardown
        // finds it again by its tag.
        let _ = st.transaction(|tx| {
            tx.restored(&r.id, kind, id, now)?;
            if removed {
                tx.unrestored(&r.id, kind, id, now)?;
            }
            Ok(())
        });
    }

    /// One pass (one [`rank`]) over restore `r`.
    async fn remove(&self, r: &RestoreRecord, pass: u8, out: &mut Teardown) -> Result<(), String> {
        let open: Vec<(ResourceKind, String)> = r
            .resources
            .iter()
            .filter(|x| x.removed.is_none() && rank(x.kind) == pass)
            .map(|x| (x.kind, x.id.clone()))
            .collect();
        // Looked up by tag even when nothing is recorded: what the restore
        // made but could not record.
        let by_tag = match r.kind.as_str() {
            "instance" => matches!(pass, 0 | 1 | 4),
            "volume" => pass == 1,
            _ => false,
        };
        if open.is_empty() && !by_tag {
            return Ok(());
        }
        let account: Account =
            self.rec.accounts.get(&r.account).cloned().ok_or_else(|| {
                format!("account {} is no longer in the configuration", r.account)
            })?;
        let cloud = &self.rec.cloud;
        let e = |e: CloudError| e.to_string();
        match pass {
            0 | 1 => {
                let ec2 = cloud.ec2(&account, &r.region).await.map_err(e)?;
                let launch = cloud.launch(&account, &r.region).await.map_err(e)?;
                if pass == 0 {
                    self.instances(r, ec2.as_ref(), launch.as_ref(), &open, out)
                        .await
                } else {
                    self.volumes(r, ec2.as_ref(), launch.as_ref(), &open, out)
                        .await
                }
            }
            2 | 3 => {
                let dbs = cloud.databases(&account, &r.region).await.map_err(e)?;
                let kind = if pass == 2 {
                    DbSnapshotKind::Instance
                } else {
                    DbSnapshotKind::Cluster
                };
                for (k, id) in &open {
                    match dbs.status(kind, id).await.map_err(e)? {
                        Some(s) if s.tags.get(TAG_RESTORE_ID) != Some(&r.id) => {
                            out.problems.push(format!(
                                "{id} does not carry {TAG_RESTORE_ID} = {}: left alone",
                                r.id
                            ));
                            continue;
                        }
                        // On its way already: asking again is refused.
                        Some(s) if s.status == "deleting" => {}
                        Some(_) => self.delete_db(dbs.as_ref(), kind, id).await.map_err(e)?,
                        None => {}
                    }
                    self.record(r, *k, id, true);
                    out.removed.push((*k, id.clone()));
                }
                Ok(())
            }
            _ => {
                let ec2 = cloud.ec2(&account, &r.region).await.map_err(e)?;
                self.images(r, ec2.as_ref(), &open, out).await
            }
        }
    }

    async fn instances(
        &self,
        r: &RestoreRecord,
        ec2: &dyn Ec2,
        launch: &dyn Launch,
        open: &[(ResourceKind, String)],
        out: &mut Teardown,
    ) -> Result<(), String> {
        let e = |e: CloudError| e.to_string();
        let tagged: BTreeSet<String> = tagged::instances(ec2, &r.id)
            .await
            .map_err(e)?
            .into_iter()
            .map(|i| i.id)
            .collect();
        let ids = self
            .untagged(r, ec2, ResourceKind::Instance, open, &tagged, out)
            .await?;
        // The volumes of its instances are the restore's too: recorded
        // before the instances go, so that those kept past termination are
        // removed as recorded ones (a tag alone proves nothing: anyone may
        // put it on anything).
        let ours: Vec<String> = ids
            .iter()
            .filter(|i| tagged.contains(*i))
            .cloned()
            .collect();
        if !ours.is_empty() {
            let q = Query {
                ids: ours,
                tags: vec![],
            };
            let found = collect_pages(|t| ec2.instances_page(&q, t))
                .await
                .map_err(e)?;
            for v in found.iter().flat_map(|i| &i.volumes) {
                self.record(r, ResourceKind::Volume, &v.volume_id, false);
            }
        }
        let mut ended = BTreeSet::new();
        for id in &ids {
            if tagged.contains(id) {
                launch.terminate_instance(id).await.map_err(e)?;
                ended.insert(id.clone());
            }
            self.record(r, ResourceKind::Instance, id, true);
            out.removed.push((ResourceKind::Instance, id.clone()));
        }
        // Volumes kept past their instance (not deleted on termination)
        // are deleted next: they are free only once it has ended.
        self.wait_ended(ec2, &ended).await;
        Ok(())
    }

    /// What to remove of `kind`: the tagged ones, and the recorded ones
    /// that are gone. A recorded one still there without this restore's
    /// tag is left alone and reported: a record never aims a teardown at
    /// anything else.
    async fn untagged(
        &self,
        r: &RestoreRecord,
        ec2: &dyn Ec2,
        kind: ResourceKind,
        open: &[(ResourceKind, String)],
        tagged: &BTreeSet<String>,
        out: &mut Teardown,
    ) -> Result<BTreeSet<String>, String> {
        let e = |e: CloudError| e.to_string();
        let others: Vec<String> = open
            .iter()
            .map(|(_, id)| id.clone())
            .filter(|id| !tagged.contains(id))
            .collect();
        let mut there = BTreeSet::new();
        if !others.is_empty() {
            let q = Query {
                ids: others.clone(),
                tags: vec![],
            };
            match kind {
                ResourceKind::Instance => {
                    let found = collect_pages(|t| ec2.instances_page(&q, t))
                        .await
                        .map_err(e)?;
                    there.extend(
                        found
                            .into_iter()
                            .filter(|i| !i.state.is_gone())
                            .map(|i| i.id),
                    );
                }
                ResourceKind::Volume => {
                    let found = collect_pages(|t| ec2.volumes_page(&q, t))
                        .await
                        .map_err(e)?;
                    there.extend(found.into_iter().map(|v| v.id));
                }
                ResourceKind::Image | ResourceKind::DbInstance | ResourceKind::DbCluster => {
                    let q = ImageQuery {
                        ids: others.clone(),
                        tags: vec![],
                    };
                    let found = collect_pages(|t| ec2.images_page(&q, t)).await.map_err(e)?;
                    there.extend(found.into_iter().map(|i| i.id));
                }
            }
        }
        for id in &there {
            out.problems.push(format!(
                "{} {id} does not carry {TAG_RESTORE_ID} = {}: left alone",
                kind.as_str(),
                r.id
            ));
        }
        let mut ids: BTreeSet<String> = others
            .into_iter()
            .filter(|id| !there.contains(id))
            .collect();
        // Tagged and recorded (now: an instance pass records its volumes),
        // or an image of this restore's own name; a tagged one the record
        // does not name is left alone and reported.
        let recorded = self.recorded_now(r, kind).map_err(|e| e.to_string())?;
        for id in tagged {
            if recorded.contains(id) || own_image(kind, id, r, ec2).await {
                ids.insert(id.clone());
            } else {
                out.problems.push(format!(
                    "{} {id} carries {TAG_RESTORE_ID} = {} but is not recorded: left alone, remove it by hand if it is the drill's",
                    kind.as_str(),
                    r.id
                ));
            }
        }
        Ok(ids)
    }

    /// What the state records restore `r` made of `kind`, read now.
    fn recorded_now(
        &self,
        r: &RestoreRecord,
        kind: ResourceKind,
    ) -> Result<BTreeSet<String>, StateError> {
        let st = self.rec.store.lock().expect("state lock poisoned");
        Ok(st
            .restores()?
            .into_iter()
            .filter(|x| x.id == r.id)
            .flat_map(|x| x.resources)
            .filter(|x| x.kind == kind)
            .map(|x| x.id)
            .collect())
    }

    /// Waits (within the restore wait) for `ids` to be terminated.
    async fn wait_ended(&self, ec2: &dyn Ec2, ids: &BTreeSet<String>) {
        if ids.is_empty() {
            return;
        }
        let started = Instant::now();
        let q = Query {
            ids: ids.iter().cloned().collect(),
            tags: vec![],
        };
        let mut pauses = Pauses::new(self.rec.wait);
        while started.elapsed() < self.rec.wait.timeout {
            match collect_pages(|t| ec2.instances_page(&q, t)).await {
                Ok(found)
                    if found
                        .iter()
                        .all(|i| i.state == crate::cloud::InstanceState::Terminated) =>
                {
                    return
                }
                Ok(_) | Err(_) => tokio::time::sleep(pauses.next(started)).await,
            }
        }
    }

    async fn volumes(
        &self,
        r: &RestoreRecord,
        ec2: &dyn Ec2,
        launch: &dyn Launch,
        open: &[(ResourceKind, String)],
        out: &mut Teardown,
    ) -> Result<(), String> {
        let e = |e: CloudError| e.to_string();
        let tagged: BTreeSet<String> = tagged::volumes(ec2, &r.id)
            .await
            .map_err(e)?
            .into_iter()
            .map(|v| v.id)
            .collect();
        let ids = self
            .untagged(r, ec2, ResourceKind::Volume, open, &tagged, out)
            .await?;
        for id in &ids {
            if tagged.contains(id) {
                self.delete_volume(launch, id).await.map_err(e)?;
            }
            self.record(r, ResourceKind::Volume, id, true);
            out.removed.push((ResourceKind::Volume, id.clone()));
        }
        Ok(())
    }

    /// DeleteVolume, again while the volume is still in use by an instance
    /// that is ending (within the restore wait).
    async fn delete_volume(&self, launch: &dyn Launch, id: &str) -> Result<(), CloudError> {
        retry_conflict(self.rec.wait, || launch.delete_volume(id)).await
    }

    /// DeleteDBInstance / DeleteDBCluster, again while a cluster still
    /// holds instances being deleted (within the restore wait).
    async fn delete_db(
        &self,
        dbs: &dyn crate::cloud::restore::Databases,
        kind: DbSnapshotKind,
        id: &str,
    ) -> Result<(), CloudError> {
        retry_conflict(self.rec.wait, || dbs.delete(kind, id)).await
    }

    async fn images(
        &self,
        r: &RestoreRecord,
        ec2: &dyn Ec2,
        open: &[(ResourceKind, String)],
        out: &mut Teardown,
    ) -> Result<(), String> {
        let e = |e: CloudError| e.to_string();
        let q = ImageQuery {
            ids: vec![],
            tags: vec![(TAG_RESTORE_ID.into(), vec![r.id.clone()])],
        };
        let tagged: BTreeSet<String> = collect_pages(|t| ec2.images_page(&q, t))
            .await
            .map_err(e)?
            .into_iter()
            .filter(|i| i.tags.get(TAG_RESTORE_ID) == Some(&r.id))
            .map(|i| i.id)
            .collect();
        let ids = self
            .untagged(r, ec2, ResourceKind::Image, open, &tagged, out)
            .await?;
        for id in &ids {
            if tagged.contains(id) {
                ec2.deregister_image(id).await.map_err(e)?;
            }
            self.record(r, ResourceKind::Image, id, true);
            out.removed.push((ResourceKind::Image, id.clone()));
        }
        Ok(())
    }
}

/// Whether image `id` is named as restore `r` names the image it registers
/// (`lifeboat-restore-ID-…`): its own, even when its record was lost.
async fn own_image(kind: ResourceKind, id: &str, r: &RestoreRecord, ec2: &dyn Ec2) -> bool {
    if kind != ResourceKind::Image {
        return false;
    }
    let q = ImageQuery {
        ids: vec![id.to_string()],
        tags: vec![],
    };
    let prefix = format!("lifeboat-restore-{}-", r.id);
    collect_pages(|t| ec2.images_page(&q, t))
        .await
        .is_ok_and(|found| found.iter().any(|i| i.name.starts_with(&prefix)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conflict() -> CloudError {
        CloudError {
            kind: ErrorKind::Conflict,
            account: "main".into(),
            region: "us-east-1".into(),
            action: "ec2:DeleteVolume".into(),
            resource: Some("vol-1".into()),
            code: Some("VolumeInUse".into()),
            message: "in use".into(),
        }
    }

    /// The clock is paused: each sleep advances it exactly, so the waits
    /// between the tries are what the back-off asked for.
    #[tokio::test(start_paused = true)]
    async fn a_refused_removal_is_tried_again_after_doubling_pauses_up_to_the_cap() {
        let wait = Wait {
            timeout: Duration::from_secs(120),
            interval: Duration::from_secs(5),
        };
        let tries = std::sync::Mutex::new(Vec::new());
        let result = retry_conflict(wait, || {
            let mut t = tries.lock().unwrap();
            t.push(Instant::now());
            let n = t.len();
            async move {
                match n {
                    1..=5 => Err(conflict()),
                    _ => Ok(()),
                }
            }
        })
        .await;
        assert!(result.is_ok());
        let t = tries.into_inner().unwrap();
        let gaps: Vec<u64> = t.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
        assert_eq!(gaps, vec![5, 10, 20, 30, 30]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_removal_still_refused_when_the_wait_is_over_fails_with_the_conflict() {
        let wait = Wait {
            timeout: Duration::from_secs(40),
            interval: Duration::from_secs(5),
        };
        let start = Instant::now();
        let tries = std::sync::atomic::AtomicU32::new(0);
        let result = retry_conflict(wait, || {
            tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Err(conflict()) }
        })
        .await;
        assert_eq!(result.unwrap_err().kind, ErrorKind::Conflict);
        // 5 + 10 + 20, then the 5 s left: never past the wait.
        assert_eq!(start.elapsed(), Duration::from_secs(40));
        assert_eq!(tries.load(std::sync::atomic::Ordering::SeqCst), 5);
    }
}
