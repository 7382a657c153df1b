//! An in-memory AWS for tests and benchmarks: implements [`Cloud`] and
//! [`Ec2`] over shared maps, pages its lists (the emulator never does),
//! counts every call, and fails chosen actions on demand.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use lifeboat_schema::Account;

use crate::cloud::*;
use crate::state::model::glob_match;

mod copies;
pub mod iam;
pub mod locks;
pub mod power;
mod restore;
mod services;

pub use copies::CopyWorld;
pub use restore::FakeDatabase;

/// The calls `World::throttled_creates_in_ten` throttles.
const CREATE_ACTIONS: &[&str] = &[
    "CreateSnapshots",
    "CreateSnapshot",
    "CreateImage",
    "CreateDBSnapshot",
    "CreateDBClusterSnapshot",
];

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
    /// Of every ten create calls (CreateSnapshots, CreateSnapshot,
    /// CreateImage, CreateDBSnapshot, CreateDBClusterSnapshot), how many are
    /// throttled: the call whose count mod 10 is below this one fails with
    /// `RequestLimitExceeded`, deterministically. The emulator never throttles.
    pub throttled_creates_in_ten: u64,
    create_calls: u64,
    /// Accounts (by name) whose every call is denied: a deleted role, a
    /// revoked trust (the emulator does not enforce IAM, so only the fake
    /// can show one broken account among healthy ones).
    pub broken_accounts: std::collections::BTreeSet<String>,
    /// VPC-family inventory by region, returned by [`Network::inventory`]
    /// (a region without one has no VPCs).
    pub networks: BTreeMap<String, crate::cloud::network::RegionInventory>,
    /// Availability zones by region for [`Network::availability_zones`]
    /// (default: `REGIONa`, `REGIONb`, `REGIONc`).
    pub zones: BTreeMap<String, Vec<String>>,
    /// CloudFormation stacks by (account name, region, stack name).
    pub stacks: BTreeMap<(String, String, String), FakeStack>,
    /// How many DescribeStacks calls a stack operation stays `*_IN_PROGRESS`
    /// for; `u32::MAX` never completes (as a failed stack in the emulator).
    pub stack_polls: u32,
    /// Stacks (by name) whose create or update fails: they end in
    /// `ROLLBACK_COMPLETE` / `UPDATE_ROLLBACK_COMPLETE` with a failure event.
    pub failing_stacks: std::collections::BTreeSet<String>,
    /// S3 objects by (bucket, key).
    pub objects: BTreeMap<(String, String), Vec<u8>>,
    /// SNS messages published, as (topic ARN, subject, message).
    pub published: Vec<(String, String, String)>,
    /// AMIs by id.
    pub images: BTreeMap<String, Image>,
    /// Every CreateImage request, in order.
    pub image_requests: Vec<ImageRequest>,
    /// DB (cluster) snapshots by id, with their kind, region and tags.
    pub db_snapshots: BTreeMap<String, FakeDbSnapshot>,
    /// How long each CreateSnapshots call takes (none: instant), so that
    /// calls overlap and their concurrency shows.
    pub create_delay: Option<std::time::Duration>,
    /// How many DescribeSnapshots calls a new snapshot stays unknown to
    /// (AWS lists a new snapshot a little after its create call answers).
    pub unlisted_describes: u32,
    unlisted_left: BTreeMap<String, u32>,
    /// CreateSnapshots calls in flight now, and the most there ever were.
    pub creates_in_flight: usize,
    pub max_creates_in_flight: usize,
    /// Called with the snapshot id after each DeleteSnapshot succeeded, out
    /// of the world's lock: a test acts between two deletes (breaks the
    /// state lock, say), which the emulator cannot be made to do.
    pub after_delete: Option<DeleteHook>,
    /// The AWS account id each account (by name) resolves to; unlisted
    /// accounts are [`FAKE_ACCOUNT_ID`].
    pub account_ids: BTreeMap<String, String>,
    /// Create actions (`CreateSnapshots`, `CreateImage`, `CreateDBSnapshot`,
    /// ...) whose resource is made but whose answer is lost: the call fails
    /// with a transport error. The emulator always answers.
    pub lost_answers: std::collections::BTreeSet<String>,
    /// Create actions that answer as the SDK's retry of a call whose first
    /// answer was lost: the resource is made, and the call fails with
    /// `InvalidAMIName.Duplicate` / `DBSnapshotAlreadyExists`.
    pub retried_creates: std::collections::BTreeSet<String>,
    /// How long a CreateSnapshots call takes to answer after it made its
    /// snapshots (none: at once), so that a timeout can abandon the call
    /// with its snapshots made.
    pub answer_delay: Option<std::time::Duration>,
    /// How long each ModifySnapshotAttribute call takes (none: at once): an
    /// unshare in a region that hangs in an outage.
    pub share_delay: Option<std::time::Duration>,
    /// The time new resources are stamped with (default: the clock).
    pub clock: Option<chrono::DateTime<chrono::Utc>>,
    /// EBS snapshot descriptions by id.
    pub descriptions: BTreeMap<String, String>,
    /// Roles, authorization details and callers ([`iam::IamWorld`]).
    pub iam: iam::IamWorld,
    /// Copies, shares, owners and KMS aliases.
    pub copies: CopyWorld,
    /// What each instance is, by id, for [`crate::cloud::restore::Launch`] (the region
    /// is its zone's).
    pub shapes: BTreeMap<String, crate::cloud::restore::InstanceShape>,
    /// Every detail of each volume, by id.
    pub disks: BTreeMap<String, crate::cloud::restore::Disk>,
    /// DB instances and clusters by kind and identifier.
    pub databases: BTreeMap<(DbSnapshotKind, String), FakeDatabase>,
    /// How many DescribeInstances looks a launched instance stays
    /// `pending` for (default 0: running at once).
    pub launch_pending: u32,
    /// How many status looks a restored database stays `creating` for.
    pub db_creating: u32,
    /// Every RegisterImage request, by the image id it made.
    pub registrations: BTreeMap<String, crate::cloud::restore::ImageRegistration>,
    /// Every RunInstances request that launched, in order.
    pub launches: Vec<crate::cloud::restore::LaunchRequest>,
    /// DescribeInstances looks left before a launched instance runs.
    launch_left: BTreeMap<String, u32>,
    /// Each instance's status checks (`(instance, system)`), look by look
    /// of DescribeInstanceStatus; the last one stays. An instance without
    /// an entry reports `ok`/`ok` while running (as the emulator always
    /// does): only the fake has checks that take a while or fail.
    pub instance_health: BTreeMap<String, std::collections::VecDeque<(String, String)>>,
    /// The looks each instance launched from now on gets in
    /// [`World::instance_health`] (empty: `ok` at once).
    pub launch_health: Vec<(String, String)>,
    /// Resource control: hibernation, instances changing, databases.
    pub power: power::PowerWorld,
    /// What each RunInstances / CreateVolume client token made.
    client_tokens: BTreeMap<String, String>,
    next: u64,
}

/// The account id of an account the fake was given none for.
pub const FAKE_ACCOUNT_ID: &str = "123456789012";

/// A test's action after a delete (see [`World::after_delete`]).
#[derive(Clone)]
pub struct DeleteHook(pub Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for DeleteHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeleteHook")
    }
}

/// A DB snapshot or cluster snapshot in the fake's world.
#[derive(Debug, Clone)]
pub struct FakeDbSnapshot {
    pub kind: DbSnapshotKind,
    pub region: String,
    pub snapshot: DbSnapshot,
    pub tags: Tags,
}

/// A stack in the fake's world.
#[derive(Debug, Clone)]
pub struct FakeStack {
    pub info: StackInfo,
    pub template: TemplateSource,
    pub tags: Tags,
    /// Newest first, as DescribeStackEvents.
    pub events: Vec<StackEvent>,
    polls_left: u32,
    /// The status the current operation ends in.
    settles_to: String,
}

impl World {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.unwrap_or_else(chrono::Utc::now)
    }

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
    async fn account_id(&self, account: &Account) -> CloudResult<String> {
        let region = account.regions.first().cloned().unwrap_or_default();
        // A broken account's role cannot be assumed: STS refuses first.
        self.client(account, &region)?;
        let mut w = self.world.lock().expect("fake world");
        w.calls.push(format!("GetCallerIdentity {region}"));
        if let Some(&kind) = w.failing.get("GetCallerIdentity") {
            return Err(CloudError {
                kind,
                account: account.name.clone(),
                region,
                action: "sts:GetCallerIdentity".into(),
                resource: None,
                code: Some("Injected".into()),
                message: "injected failure".into(),
            });
        }
        Ok(w.account_ids
            .get(&account.name)
            .cloned()
            .unwrap_or_else(|| FAKE_ACCOUNT_ID.to_string()))
    }

    async fn ec2(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Ec2>> {
        Ok(Arc::new(self.client(account, region)?))
    }

    async fn network(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Network>> {
        Ok(Arc::new(self.client(account, region)?))
    }

    async fn stacks(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Stacks>> {
        Ok(Arc::new(self.client(account, region)?))
    }

    async fn objects(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Objects>> {
        Ok(Arc::new(self.client(account, region)?))
    }

    async fn sns(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Sns>> {
        Ok(Arc::new(self.client(account, region)?))
    }

    async fn rds(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Rds>> {
        Ok(Arc::new(self.client(account, region)?))
    }

    async fn kms(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Kms>> {
        Ok(Arc::new(self.client(account, region)?))
    }

    async fn launch(
        &self,
        account: &Account,
        region: &str,
    ) -> CloudResult<Arc<dyn crate::cloud::restore::Launch>> {
        Ok(Arc::new(self.client(account, region)?))
    }

    async fn databases(
        &self,
        account: &Account,
        region: &str,
    ) -> CloudResult<Arc<dyn crate::cloud::restore::Databases>> {
        Ok(Arc::new(self.client(account, region)?))
    }

    async fn power(
        &self,
        account: &Account,
        region: &str,
    ) -> CloudResult<Arc<dyn crate::cloud::power::Power>> {
        Ok(Arc::new(self.client(account, region)?))
    }

    async fn iam(&self, account: &Account) -> CloudResult<Arc<dyn crate::cloud::iam::Iam>> {
        let c = self.client(account, "global")?;
        Ok(Arc::new(iam::FakeIam {
            world: c.world,
            page_size: c.page_size,
            account: c.account,
        }))
    }
}

impl FakeCloud {
    fn client(&self, account: &Account, region: &str) -> CloudResult<FakeEc2> {
        if self
            .world
            .lock()
            .expect("world")
            .broken_accounts
            .contains(&account.name)
        {
            return Err(CloudError {
                kind: ErrorKind::AccessDenied,
                account: account.name.clone(),
                region: region.to_string(),
                action: "sts:AssumeRole".into(),
                resource: None,
                code: Some("AccessDenied".into()),
                message: "the account's role cannot be assumed".into(),
            });
        }
        Ok(FakeEc2 {
            world: self.world.clone(),
            page_size: self.page_size,
            account: account.name.clone(),
            region: region.to_string(),
        })
    }
}

pub struct FakeEc2 {
    world: Arc<Mutex<World>>,
    page_size: usize,
    account: String,
    region: String,
}

/// EC2's tag filters: `tag:KEY` = values, or with no values `tag-key` =
/// KEY, where EC2 takes `*` in the key as a wildcard (a `tag_prefix`
/// selector's filter, `backup:*`).
fn tags_match(filters: &[(String, Vec<String>)], tags: &Tags) -> bool {
    filters.iter().all(|(k, vals)| match tags.get(k) {
        None if k == crate::cloud::ANY_TAG_KEY => vals.iter().any(|key| tags.contains_key(key)),
        None => vals.is_empty() && k.contains('*') && tags.keys().any(|t| glob_match(k, t)),
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
        if w.throttled_creates_in_ten > 0 && CREATE_ACTIONS.contains(&action) {
            let n = w.create_calls;
            w.create_calls += 1;
            if n % 10 < w.throttled_creates_in_ten {
                return Err(CloudError {
                    kind: ErrorKind::Throttled,
                    account: self.account.clone(),
                    region: self.region.clone(),
                    action: format!("ec2:{action}"),
                    resource: resource.map(str::to_string),
                    code: Some("RequestLimitExceeded".into()),
                    message: "Request limit exceeded.".into(),
                });
            }
        }
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

    /// AWS refuses a filter of more than 200 values; so does the fake (the
    /// emulator takes any number), so a list that does not chunk fails here.
    fn filter_size(&self, action: &str, values: usize) -> CloudResult<()> {
        if values <= FILTER_CHUNK {
            return Ok(());
        }
        Err(CloudError {
            kind: ErrorKind::Invalid,
            account: self.account.clone(),
            region: self.region.clone(),
            action: format!("ec2:{action}"),
            resource: None,
            code: Some("FilterLimitExceeded".into()),
            message: format!("The filter has {values} values; at most {FILTER_CHUNK} are allowed"),
        })
    }

    fn error(
        &self,
        kind: ErrorKind,
        action: &str,
        resource: &str,
        code: &str,
        message: &str,
    ) -> CloudError {
        CloudError {
            kind,
            account: self.account.clone(),
            region: self.region.clone(),
            action: action.into(),
            resource: Some(resource.to_string()),
            code: Some(code.into()),
            message: message.into(),
        }
    }

    /// The answer of a create call that made its resource: lost (a
    /// transport error) when `lost_answers` names the action.
    fn answered(&self, w: &World, action: &str, resource: &str) -> CloudResult<()> {
        if !w.lost_answers.contains(action) {
            return Ok(());
        }
        Err(self.error(
            ErrorKind::Transport,
            action,
            resource,
            "RequestTimeout",
            "the connection closed before the answer arrived",
        ))
    }

    /// CreateSnapshots' work under the world's lock: the snapshots made,
    /// and how long the answer is to take.
    #[allow(clippy::type_complexity)]
    fn make_instance_snapshots(
        &self,
        req: &InstanceSnapshotRequest,
    ) -> CloudResult<(Vec<Snapshot>, Option<std::time::Duration>)> {
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
        // As AWS and the emulator do: a terminated instance has no volumes.
        if i.state.is_gone() {
            return Ok((out, None));
        }
        for v in &i.volumes {
            if (v.is_root && req.exclude_boot_volume)
                || req.exclude_volume_ids.contains(&v.volume_id)
            {
                continue;
            }
            out.push(self.new_snapshot(&mut w, &v.volume_id, &req.tags, &req.description));
        }
        self.answered(&w, "CreateSnapshots", &req.instance_id)?;
        Ok((out, w.answer_delay))
    }

    fn page<T: Clone>(&self, action: &str, all: Vec<T>, token: Option<String>) -> Page<T> {
        let start: usize = token.and_then(|t| t.parse().ok()).unwrap_or(0);
        let end = (start + self.page_size).min(all.len());
        let next = (end < all.len()).then(|| end.to_string());
        Page {
            items: all.get(start..end).unwrap_or_default().to_vec(),
            next,
            call: Call {
                account: self.account.clone(),
                region: self.region.clone(),
                action: format!("ec2:{action}"),
            },
        }
    }

    fn new_snapshot(
        &self,
        w: &mut World,
        volume_id: &str,
        tags: &Tags,
        description: &str,
    ) -> Snapshot {
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
            started: Some(w.now()),
            tags: tags.clone(),
        };
        w.descriptions.insert(s.id.clone(), description.to_string());
        w.copies.owners.insert(s.id.clone(), self.account.clone());
        if w.unlisted_describes > 0 {
            let n = w.unlisted_describes;
            w.unlisted_left.insert(s.id.clone(), n);
        }
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
        let mut w = self.enter("DescribeInstances", None)?;
        self.filter_size("DescribeInstances", q.ids.len())?;
        w.settle_launches();
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
        Ok(self.page("DescribeInstances", all, token))
    }

    async fn volumes_page(&self, q: &Query, token: Option<String>) -> CloudResult<Page<Volume>> {
        let w = self.enter("DescribeVolumes", None)?;
        self.filter_size("DescribeVolumes", q.ids.len())?;
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
        Ok(self.page("DescribeVolumes", all, token))
    }

    async fn snapshots_page(
        &self,
        q: &SnapshotQuery,
        token: Option<String>,
    ) -> CloudResult<Page<Snapshot>> {
        let mut w = self.enter("DescribeSnapshots", None)?;
        self.filter_size("DescribeSnapshots", q.ids.len())?;
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
        w.copies.look(&mut w.snapshots, &self.account, &self.region);
        let unlisted: std::collections::BTreeSet<String> = w
            .unlisted_left
            .iter_mut()
            .filter_map(|(id, left)| {
                *left = left.saturating_sub(1);
                (*left > 0).then(|| id.clone())
            })
            .collect();
        if q.unfinished_only {
            // Named ids, as the provider sends them: an unknown one fails.
            if let Some(missing) = q.ids.iter().find(|id| {
                unlisted.contains(*id)
                    || w.snapshots.get(*id).is_none_or(|s| s.region != self.region)
            }) {
                return Err(self.error(
                    ErrorKind::NotFound,
                    "ec2:DescribeSnapshots",
                    missing,
                    "InvalidSnapshot.NotFound",
                    "no such snapshot",
                ));
            }
        }
        // The token is the last id of the page before: a page starts where
        // the last ended, so a list of many pages scans the world once.
        let from = match token {
            Some(last) => std::ops::Bound::Excluded(last),
            None => std::ops::Bound::Unbounded,
        };
        let mut items: Vec<Snapshot> = w
            .snapshots
            .range((from, std::ops::Bound::Unbounded))
            .map(|(_, s)| s)
            .filter(|s| {
                s.region == self.region
                    && w.copies.owned_by(&s.id, &self.account)
                    && !unlisted.contains(&s.id)
                    && (q.ids.is_empty() || q.ids.contains(&s.id))
                    && tags_match(&q.tags, &s.tags)
                    && !(q.unfinished_only && s.state == SnapshotState::Completed)
            })
            .take(self.page_size + 1)
            .cloned()
            .collect();
        let more = items.len() > self.page_size;
        items.truncate(self.page_size);
        let mut page = self.page("DescribeSnapshots", Vec::new(), None);
        page.next = more.then(|| items_last(&items));
        page.items = items;
        Ok(page)
    }

    async fn described_snapshots_page(
        &self,
        q: &SnapshotQuery,
        token: Option<String>,
    ) -> CloudResult<Page<DescribedSnapshot>> {
        let page = self.snapshots_page(q, token).await?;
        let w = self.world.lock().expect("fake world");
        let items = page
            .items
            .into_iter()
            .map(|s| DescribedSnapshot {
                description: w.descriptions.get(&s.id).cloned().unwrap_or_default(),
                encryption: w.copies.encryption.get(&s.id).cloned().unwrap_or_default(),
                snapshot: s,
            })
            .collect();
        Ok(Page {
            items,
            next: page.next,
            call: page.call,
        })
    }

    async fn create_instance_snapshots(
        &self,
        req: &InstanceSnapshotRequest,
    ) -> CloudResult<Vec<Snapshot>> {
        let delay = {
            let mut w = self.world.lock().expect("fake world");
            w.creates_in_flight += 1;
            w.max_creates_in_flight = w.max_creates_in_flight.max(w.creates_in_flight);
            w.create_delay
        };
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        self.world.lock().expect("fake world").creates_in_flight -= 1;
        let (out, late) = self.make_instance_snapshots(req)?;
        if let Some(d) = late {
            tokio::time::sleep(d).await;
        }
        Ok(out)
    }

    async fn create_volume_snapshot(&self, req: &VolumeSnapshotRequest) -> CloudResult<Snapshot> {
        let mut w = self.enter("CreateSnapshot", Some(&req.volume_id))?;
        let s = self.new_snapshot(&mut w, &req.volume_id, &req.tags, &req.description);
        self.answered(&w, "CreateSnapshot", &req.volume_id)?;
        Ok(s)
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> CloudResult<()> {
        let mut w = self.enter("DeleteSnapshot", Some(snapshot_id))?;
        self.refuse_locked(&w, snapshot_id)?;
        if w.images
            .values()
            .any(|i| i.snapshot_ids.iter().any(|s| s == snapshot_id))
        {
            return Err(self.error(
                ErrorKind::Conflict,
                "ec2:DeleteSnapshot",
                snapshot_id,
                "InvalidSnapshot.InUse",
                "the snapshot is in use by an AMI",
            ));
        }
        w.snapshots.remove(snapshot_id);
        let hook = w.after_delete.clone();
        drop(w);
        if let Some(DeleteHook(hook)) = hook {
            hook(snapshot_id);
        }
        Ok(())
    }

    /// One snapshot per attached volume, untagged (as the emulator, which
    /// fails a snapshot TagSpecification); the AMI is available at once.
    /// AMI names are unique per region (`InvalidAMIName.Duplicate`).
    async fn create_image(&self, req: &ImageRequest) -> CloudResult<String> {
        let mut w = self.enter("CreateImage", Some(&req.instance_id))?;
        let Some(i) = w.instances.get(&req.instance_id).cloned() else {
            return Err(self.error(
                ErrorKind::NotFound,
                "ec2:CreateImage",
                &req.instance_id,
                "InvalidInstanceID.NotFound",
                "no such instance",
            ));
        };
        let duplicate = || {
            self.error(
                ErrorKind::Invalid,
                "ec2:CreateImage",
                &req.name,
                "InvalidAMIName.Duplicate",
                "AMI name is already in use",
            )
        };
        if w.images
            .values()
            .any(|m| m.name == req.name && m.region == self.region)
        {
            return Err(duplicate());
        }
        w.next += 1;
        let id = format!("ami-{:017x}", w.next);
        let made_by = format!("Created by CreateImage({}) for {id}", req.instance_id);
        let snapshot_ids = i
            .volumes
            .iter()
            .map(|v| {
                self.new_snapshot(&mut w, &v.volume_id, &Tags::new(), &made_by)
                    .id
            })
            .collect();
        let created = Some(w.now());
        w.images.insert(
            id.clone(),
            Image {
                id: id.clone(),
                region: self.region.clone(),
                state: ImageState::Available,
                snapshot_ids,
                tags: req.tags.clone(),
                name: req.name.clone(),
                description: req.description.clone(),
                created,
            },
        );
        w.image_requests.push(req.clone());
        w.copies.owners.insert(id.clone(), self.account.clone());
        if w.retried_creates.contains("CreateImage") {
            return Err(duplicate());
        }
        self.answered(&w, "CreateImage", &req.instance_id)?;
        Ok(id)
    }

    async fn images_page(&self, q: &ImageQuery, token: Option<String>) -> CloudResult<Page<Image>> {
        let w = self.enter("DescribeImages", None)?;
        self.filter_size("DescribeImages", q.ids.len())?;
        let all = w
            .images
            .values()
            .filter(|i| {
                i.region == self.region
                    && w.copies.owned_by(&i.id, &self.account)
                    && (q.ids.is_empty() || q.ids.contains(&i.id))
                    && tags_match(&q.tags, &i.tags)
            })
            .cloned()
            .collect();
        Ok(self.page("DescribeImages", all, token))
    }

    async fn create_tags(&self, resource_ids: &[String], tags: &Tags) -> CloudResult<()> {
        let mut w = self.enter("CreateTags", resource_ids.first().map(String::as_str))?;
        for id in resource_ids {
            if let Some(s) = w.snapshots.get_mut(id) {
                s.tags.extend(tags.clone());
            } else if let Some(i) = w.images.get_mut(id) {
                i.tags.extend(tags.clone());
            }
        }
        Ok(())
    }

    async fn deregister_image(&self, image_id: &str) -> CloudResult<()> {
        let mut w = self.enter("DeregisterImage", Some(image_id))?;
        w.images.remove(image_id);
        Ok(())
    }

    async fn copy_snapshot(&self, req: &SnapshotCopyRequest) -> CloudResult<String> {
        self.fake_copy_snapshot(req)
    }

    async fn copy_image(&self, req: &ImageCopyRequest) -> CloudResult<String> {
        self.fake_copy_image(req)
    }

    async fn share_snapshot(&self, id: &str, account_id: &str, share: bool) -> CloudResult<()> {
        let delay = self.world.lock().expect("fake world").share_delay;
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        self.fake_share("ModifySnapshotAttribute", id, account_id, share)
    }

    async fn share_image(&self, id: &str, account_id: &str, share: bool) -> CloudResult<()> {
        self.fake_share("ModifyImageAttribute", id, account_id, share)
    }

    async fn lock_snapshot(&self, req: &SnapshotLockRequest) -> CloudResult<SnapshotLock> {
        self.fake_lock_snapshot(req)
    }

    async fn locked_snapshots_page(
        &self,
        ids: &[String],
        token: Option<String>,
    ) -> CloudResult<Page<SnapshotLock>> {
        self.fake_locked_snapshots(ids, token)
    }
}

/// The token of a page of snapshots: its last id.
fn items_last(items: &[Snapshot]) -> String {
    items.last().map(|s| s.id.clone()).unwrap_or_default()
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
            account_id: None,
            manage_role: None,
            secured: None,
            tag_scan: None,
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
