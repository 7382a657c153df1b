//! Restore points: what each target of a backup was when it was taken (an
//! instance's type, placement, network and every attached disk; a volume's
//! type and size; a database's class and engine), kept in the catalog with
//! the backup so that a restore rebuilds a target long gone.
//!
//! Calls per region and backup: one DescribeInstances per 200 instances,
//! one DescribeVolumes per 200 volumes (the instances' disks and the volume
//! targets together), one DescribeDBInstances / DescribeDBClusters per 200
//! databases, every page of each. They run in a task of their own beside
//! the create calls and the waits, so they do not lengthen the backup.
//!
//! A restore point that cannot be described does not make the backup any
//! less good: its snapshots are what a restore needs first, and the
//! operator can give the rest on the command line. So a failed describe is
//! a note on the backup (a line among its problems that leaves its status
//! as the snapshots earned it), never a failure or a partial backup.

use std::collections::BTreeMap;
use std::sync::Arc;

use lifeboat_schema::Account;
use tokio::task::JoinHandle;

use crate::cloud::restore::{Disk, InstanceShape, Shape};
use crate::cloud::{collect_chunked, Cloud, CloudError, DbSnapshotKind};
use crate::state::model::{TargetKind, TargetState};
use crate::state::SharedStore;

/// At most this many target ids are named in one note; the rest are
/// counted (a failed describe of 1000 instances is one line, not 1000).
const NAMED: usize = 5;

/// What the describes of one region came to.
#[derive(Debug, Default)]
struct Described {
    shapes: Vec<(String, Shape)>,
    notes: Vec<String>,
}

/// The describes of one region's restore points, running in the
/// background. Dropped before [`Pending::record`] (a backup that stopped
/// on an error), it stops them.
pub(super) struct Pending {
    task: Option<JoinHandle<Described>>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// Starts describing the restore points of `targets`, all of `region`.
pub(super) fn start(
    cloud: &Arc<dyn Cloud>,
    account: &Account,
    region: &str,
    targets: &[TargetState],
) -> Pending {
    let by_kind = |k: TargetKind| -> Vec<String> {
        targets
            .iter()
            .filter(|t| t.kind == k)
            .map(|t| t.id.clone())
            .collect()
    };
    let ids = Ids {
        instances: by_kind(TargetKind::Instance),
        volumes: by_kind(TargetKind::Volume),
        rds: by_kind(TargetKind::Rds),
        aurora: by_kind(TargetKind::Aurora),
    };
    let (cloud, account, region) = (cloud.clone(), account.clone(), region.to_string());
    let task = tokio::spawn(async move { ids.describe(cloud.as_ref(), &account, &region).await });
    Pending { task: Some(task) }
}

impl Pending {
    /// Waits for the describes and writes what they found in one state
    /// transaction, under backup `id` of `policy` (recorded already).
    /// Returns the notes for the backup: what was not recorded, and why.
    pub(super) async fn record(
        mut self,
        store: &SharedStore,
        policy: &str,
        id: &str,
        region: &str,
    ) -> Vec<String> {
        let task = self.task.take().expect("recorded once");
        let Described { shapes, mut notes } = match task.await {
            Ok(d) => d,
            Err(e) => {
                return vec![format!(
                    "restore points in {region} not recorded: their describes stopped: {e}"
                )]
            }
        };
        if shapes.is_empty() {
            return notes;
        }
        let written = store.lock().expect("store").transaction(|tx| {
            for (target, shape) in &shapes {
                tx.put_restore_point(policy, id, target, region, shape)?;
            }
            Ok(())
        });
        if let Err(e) = written {
            let ids: Vec<String> = shapes.into_iter().map(|(t, _)| t).collect();
            notes.push(format!(
                "restore point of {} not recorded: {e}",
                named(&ids)
            ));
        }
        notes
    }
}

/// One region's targets by kind.
struct Ids {
    instances: Vec<String>,
    volumes: Vec<String>,
    rds: Vec<String>,
    aurora: Vec<String>,
}

impl Ids {
    async fn describe(&self, cloud: &dyn Cloud, account: &Account, region: &str) -> Described {
        let mut out = Described::default();
        if !self.instances.is_empty() || !self.volumes.is_empty() {
            // A cloud that cannot restore instances (the default) has no
            // describes for them either: nothing to record, nothing wrong.
            if let Ok(launch) = cloud.launch(account, region).await {
                self.ec2(launch.as_ref(), &mut out).await;
            }
        }
        if !self.rds.is_empty() || !self.aurora.is_empty() {
            if let Ok(dbs) = cloud.databases(account, region).await {
                self.databases(dbs.as_ref(), &mut out).await;
            }
        }
        out
    }

    /// The instances' shapes, then every disk of theirs and every volume
    /// target in one DescribeVolumes (per 200).
    async fn ec2(&self, launch: &dyn crate::cloud::restore::Launch, out: &mut Described) {
        let mut instances: Vec<(String, InstanceShape)> = Vec::new();
        if !self.instances.is_empty() {
            match collect_chunked(&self.instances, |c, t| launch.shapes_page(c, t)).await {
                Ok(found) => instances = found,
                Err(e) => out.notes.push(not_recorded(&self.instances, &e)),
            }
        }
        let mut volume_ids: Vec<String> = instances
            .iter()
            .flat_map(|(_, s)| s.disks.iter().map(|d| d.volume_id.clone()))
            .chain(self.volumes.iter().cloned())
            .collect();
        volume_ids.sort();
        volume_ids.dedup();
        let disks: BTreeMap<String, Disk> = if volume_ids.is_empty() {
            BTreeMap::new()
        } else {
            match collect_chunked(&volume_ids, |c, t| launch.disks_page(c, t)).await {
                Ok(found) => found
                    .into_iter()
                    .map(|d| (d.volume_id.clone(), d))
                    .collect(),
                Err(e) => {
                    // The instances keep what DescribeInstances said of
                    // their disks (device and volume id): still a layout.
                    let ids: Vec<String> = instances.iter().map(|(i, _)| i.clone()).collect();
                    if !ids.is_empty() {
                        out.notes.push(format!(
                            "restore point of {} lacks its disks' details: {e}",
                            named(&ids)
                        ));
                    }
                    if !self.volumes.is_empty() {
                        out.notes.push(not_recorded(&self.volumes, &e));
                    }
                    BTreeMap::new()
                }
            }
        };
        for (id, mut shape) in instances {
            shape.disks = merged(&shape, &disks);
            out.shapes.push((id, Shape::Instance(shape)));
        }
        // A target missing from an answer is gone: its create call says so
        // among the backup's problems, and there is nothing to record.
        for v in &self.volumes {
            if let Some(d) = disks.get(v) {
                out.shapes.push((v.clone(), Shape::Volume(d.clone())));
            }
        }
    }

    async fn databases(&self, dbs: &dyn crate::cloud::restore::Databases, out: &mut Described) {
        for (kind, ids) in [
            (DbSnapshotKind::Instance, &self.rds),
            (DbSnapshotKind::Cluster, &self.aurora),
        ] {
            if ids.is_empty() {
                continue;
            }
            match collect_chunked(ids, |c, t| dbs.shapes_page(kind, c, t)).await {
                Ok(found) => out.shapes.extend(found.into_iter().map(|mut s| {
                    s.kind.get_or_insert(kind);
                    (s.identifier.clone(), Shape::Db(s))
                })),
                Err(e) => out.notes.push(not_recorded(ids, &e)),
            }
        }
    }
}

/// The instance's disks with DescribeVolumes' details, the device and
/// delete-on-termination flag from the instance's own mapping; root first,
/// then by device name. Every attached disk is kept, not only those the
/// backup snapshotted: which come back is the restore's choice.
fn merged(shape: &InstanceShape, details: &BTreeMap<String, Disk>) -> Vec<Disk> {
    let mut disks: Vec<Disk> = shape
        .disks
        .iter()
        .map(|m| match details.get(&m.volume_id) {
            Some(d) => Disk {
                device: m.device.clone(),
                delete_on_termination: m.delete_on_termination,
                ..d.clone()
            },
            None => m.clone(),
        })
        .collect();
    disks.sort_by(|a, b| {
        let root = |d: &Disk| d.device != shape.root_device;
        (root(a), &a.device).cmp(&(root(b), &b.device))
    });
    disks
}

fn not_recorded(ids: &[String], e: &CloudError) -> String {
    format!("restore point of {} not recorded: {e}", named(ids))
}

/// `i-1`, `i-1, i-2`, or `i-1, …, i-5 and 245 more`.
fn named(ids: &[String]) -> String {
    let shown = ids
        .iter()
        .take(NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    match ids.len().saturating_sub(NAMED) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(id: &str, device: &str) -> Disk {
        Disk {
            volume_id: id.into(),
            device: device.into(),
            ..Default::default()
        }
    }

    #[test]
    fn disks_merge_details_keep_the_mapping_and_put_root_first() {
        let shape = InstanceShape {
            root_device: "/dev/xvda".into(),
            disks: vec![
                disk("vol-b", "/dev/sdg"),
                Disk {
                    delete_on_termination: true,
                    ..disk("vol-root", "/dev/xvda")
                },
                disk("vol-a", "/dev/sdf"),
            ],
            ..Default::default()
        };
        let details: BTreeMap<String, Disk> = [
            Disk {
                size_gib: 8,
                volume_type: "gp3".into(),
                delete_on_termination: false,
                ..disk("vol-root", "")
            },
            Disk {
                size_gib: 100,
                volume_type: "io2".into(),
                iops: Some(3000),
                ..disk("vol-a", "")
            },
        ]
        .into_iter()
        .map(|d| (d.volume_id.clone(), d))
        .collect();
        let got = merged(&shape, &details);
        let order: Vec<&str> = got.iter().map(|d| d.device.as_str()).collect();
        assert_eq!(order, ["/dev/xvda", "/dev/sdf", "/dev/sdg"]);
        assert_eq!(got[0].size_gib, 8);
        assert!(got[0].delete_on_termination, "the mapping's flag wins");
        assert_eq!(got[1].iops, Some(3000));
        assert_eq!(got[2].volume_type, "", "undescribed: the mapping alone");
    }

    #[test]
    fn many_ids_are_counted_not_listed() {
        let ids: Vec<String> = (0..250).map(|i| format!("i-{i}")).collect();
        assert_eq!(named(&ids), "i-0, i-1, i-2, i-3, i-4 and 245 more");
        assert_eq!(named(&ids[..2]), "i-0, i-1");
    }
}
