//! An in-memory AWS for tests and benchmarks: implements [`Cloud`] and
//! [`Ec2`] over shared maps, pages its lists (the emulator never does),
//! counts every call, and fails chosen actions on demand.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use lifeboat_schema::Account;

use crate::cloud::*;
use crate::model::glob_match;

/// The fake's world, shared by every client it hands out.
#[derive(Debug, Default)]
pub struct World {
    pub instances: BTreeMap<String, Instance>,
    pub volumes: BTreeMap<String, Volume>,
    pub snapshots: BTreeMap<String, Snapshot>,
    /// Every call made, as `Action region` (for example `CreateSnapshots us-east-1`).
    pub calls: Vec<String>,
    /// How many DescribeSnapshots calls a new snapshot stays `pending` for
    /// (real snapshots take minutes; the emulator's complete at once).
    pub pending_describes: u32,
    /// Snapshots of these volumes end in the `error` state.
    pub failing_volumes: std::collections::BTreeSet<String>,
    pending_left: BTreeMap<String, u32>,
    /// Actions that fail with the given kind, every time.
    pub failing: BTreeMap<String, ErrorKind>,
    /// VPC-family inventory by region, returned by [`Network::inventory`]
    /// (a region without one has no VPCs).
    pub networks: BTreeMap<String, crate::vpc::RegionInventory>,
    next: u64,
}

impl World {
    pub fn calls_of(&self, action: &str) -> usize {
        self.calls
            .iter()
            .filter(|c| c.split(' ').next() == Some(action))
            .count()
    }

    pub fn add_instance(&mut self, id: &str, region: &str, tags: &[(&str, &str)], volumes: usize) {
        let vols = (0..volumes)
            .map(|n| AttachedVolume {
                volume_id: format!("vol-{}-{n}", id.trim_start_matches("i-")),
                device: format!("/dev/xvd{}", (b'a' + n as u8) as char),
                is_root: n == 0,
            })
            .collect();
        self.instances.insert(
            id.to_string(),
            Instance {
                id: id.to_string(),
                region: region.to_string(),
                state: InstanceState::Running,
                tags: tags
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                volumes: vols,
            },
        );
    }
}

#[derive(Clone, Default)]
pub struct FakeCloud {
    pub world: Arc<Mutex<World>>,
    /// Items per page of every list call.
    pub page_size: usize,
}

impl FakeCloud {
    pub fn new(page_size: usize) -> Self {
        FakeCloud {
            world: Arc::default(),
            page_size: page_size.max(1),
        }
    }
}

#[async_trait]
impl Cloud for FakeCloud {
    async fn ec2(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Ec2>> {
        Ok(Arc::new(FakeEc2 {
            world: self.world.clone(),
            page_size: self.page_size,
            account: account.name.clone(),
            region: region.to_string(),
        }))
    }

    async fn network(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Network>> {
        Ok(Arc::new(FakeEc2 {
            world: self.world.clone(),
            page_size: self.page_size,
            account: account.name.clone(),
            region: region.to_string(),
        }))
    }
}

#[async_trait]
impl Network for FakeEc2 {
    /// Counted and failable as `DescribeVpcs`.
    async fn inventory(&self) -> CloudResult<crate::vpc::RegionInventory> {
        let w = self.enter("DescribeVpcs", None)?;
        Ok(w.networks.get(&self.region).cloned().unwrap_or_default())
    }
}

pub struct FakeEc2 {
    world: Arc<Mutex<World>>,
    page_size: usize,
    account: String,
    region: String,
}

fn tags_match(filters: &[(String, Vec<String>)], tags: &Tags) -> bool {
    filters.iter().all(|(k, vals)| match tags.get(k) {
        None => false,
        Some(v) => vals.is_empty() || vals.iter().any(|p| glob_match(p, v)),
    })
}

impl FakeEc2 {
    fn enter(
        &self,
        action: &str,
        resource: Option<&str>,
    ) -> CloudResult<std::sync::MutexGuard<'_, World>> {
        let mut w = self.world.lock().expect("fake world");
        w.calls.push(format!("{action} {}", self.region));
        if let Some(kind) = w.failing.get(action).copied() {
            return Err(CloudError {
                kind,
                account: self.account.clone(),
                region: self.region.clone(),
                action: format!("ec2:{action}"),
                resource: resource.map(str::to_string),
                code: Some("Injected".into()),
                message: "injected failure".into(),
            });
        }
        Ok(w)
    }

    fn page<T: Clone>(&self, all: Vec<T>, token: Option<String>) -> Page<T> {
        let start: usize = token.and_then(|t| t.parse().ok()).unwrap_or(0);
        let end = (start + self.page_size).min(all.len());
        let next = (end < all.len()).then(|| end.to_string());
        Page {
            items: all.get(start..end).unwrap_or_default().to_vec(),
            next,
        }
    }

    fn new_snapshot(&self, w: &mut World, volume_id: &str, tags: &Tags) -> Snapshot {
        w.next += 1;
        let id = format!("snap-{:017x}", w.next);
        let fails = w.failing_volumes.contains(volume_id);
        let state = if w.pending_describes > 0 || fails {
            let polls = w.pending_describes.max(1);
            w.pending_left.insert(id.clone(), polls);
            SnapshotState::Pending
        } else {
            SnapshotState::Completed
        };
        let s = Snapshot {
            id,
            volume_id: volume_id.to_string(),
            region: self.region.clone(),
            state,
            started: None,
            tags: tags.clone(),
        };
        w.snapshots.insert(s.id.clone(), s.clone());
        s
    }
}

#[async_trait]
impl Ec2 for FakeEc2 {
    async fn instances_page(
        &self,
        q: &Query,
        token: Option<String>,
    ) -> CloudResult<Page<Instance>> {
        let w = self.enter("DescribeInstances", None)?;
        let all = w
            .instances
            .values()
            .filter(|i| {
                i.region == self.region
                    && (q.ids.is_empty() || q.ids.contains(&i.id))
                    && tags_match(&q.tags, &i.tags)
            })
            .cloned()
            .collect();
        Ok(self.page(all, token))
    }

    async fn volumes_page(&self, q: &Query, token: Option<String>) -> CloudResult<Page<Volume>> {
        let w = self.enter("DescribeVolumes", None)?;
        let all = w
            .volumes
            .values()
            .filter(|v| {
                v.region == self.region
                    && (q.ids.is_empty() || q.ids.contains(&v.id))
                    && tags_match(&q.tags, &v.tags)
            })
            .cloned()
            .collect();
        Ok(self.page(all, token))
    }

    async fn snapshots_page(
        &self,
        q: &SnapshotQuery,
        token: Option<String>,
    ) -> CloudResult<Page<Snapshot>> {
        let mut w = self.enter("DescribeSnapshots", None)?;
        let w = &mut *w;
        for (id, left) in w.pending_left.iter_mut() {
            if *left == 0 {
                continue;
            }
            *left -= 1;
            if let (0, Some(s)) = (*left, w.snapshots.get_mut(id)) {
                s.state = if w.failing_volumes.contains(&s.volume_id) {
                    SnapshotState::Error
                } else {
                    SnapshotState::Completed
                };
            }
        }
        let all = w
            .snapshots
            .values()
            .filter(|s| {
                s.region == self.region
                    && (q.ids.is_empty() || q.ids.contains(&s.id))
                    && tags_match(&q.tags, &s.tags)
            })
            .cloned()
            .collect();
        Ok(self.page(all, token))
    }

    async fn create_instance_snapshots(
        &self,
        req: &InstanceSnapshotRequest,
    ) -> CloudResult<Vec<Snapshot>> {
        let mut w = self.enter("CreateSnapshots", Some(&req.instance_id))?;
        let Some(i) = w.instances.get(&req.instance_id).cloned() else {
            return Err(CloudError {
                kind: ErrorKind::NotFound,
                account: self.account.clone(),
                region: self.region.clone(),
                action: "ec2:CreateSnapshots".into(),
                resource: Some(req.instance_id.clone()),
                code: Some("InvalidInstanceID.NotFound".into()),
                message: "no such instance".into(),
            });
        };
        let mut out = Vec::new();
        for v in &i.volumes {
            if (v.is_root && req.exclude_boot_volume)
                || req.exclude_volume_ids.contains(&v.volume_id)
            {
                continue;
            }
            out.push(self.new_snapshot(&mut w, &v.volume_id, &req.tags));
        }
        Ok(out)
    }

    async fn create_volume_snapshot(&self, req: &VolumeSnapshotRequest) -> CloudResult<Snapshot> {
        let mut w = self.enter("CreateSnapshot", Some(&req.volume_id))?;
        Ok(self.new_snapshot(&mut w, &req.volume_id, &req.tags))
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> CloudResult<()> {
        let mut w = self.enter("DeleteSnapshot", Some(snapshot_id))?;
        w.snapshots.remove(snapshot_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn collect_pages_follows_tokens_to_the_end() {
        let cloud = FakeCloud::new(2);
        {
            let mut w = cloud.world.lock().unwrap();
            for n in 0..5 {
                w.add_instance(&format!("i-{n:08x}"), "us-east-1", &[("team", "web")], 1);
            }
            w.add_instance("i-000000ff", "us-east-1", &[("team", "db")], 1);
        }
        let acct = Account {
            name: "main".into(),
            kind: Default::default(),
            regions: vec!["us-east-1".into()],
            profile: None,
            assume_role: None,
            allow_delete: true,
            location: Default::default(),
        };
        let ec2 = cloud.ec2(&acct, "us-east-1").await.unwrap();
        let q = Query {
            ids: vec![],
            tags: vec![("team".into(), vec!["web".into()])],
        };
        let all = collect_pages(|t| ec2.instances_page(&q, t)).await.unwrap();
        assert_eq!(all.len(), 5);
        assert_eq!(
            cloud.world.lock().unwrap().calls_of("DescribeInstances"),
            3,
            "5 items at 2 a page is 3 pages"
        );
    }
}
