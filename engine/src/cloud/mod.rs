//! The engine's view of AWS: narrow traits returning Lifeboat's own types.
//!
//! The providers crate implements these with the AWS SDK; tests implement
//! them with in-memory fakes. Lists are exposed one page at a time so that
//! the paging loop ([`collect_pages`]) lives here and is tested with a fake
//! that pages (the emulator never does).

pub mod calls;
pub mod copy;
pub mod external_id;
pub mod iam;
pub mod identity;
pub mod network;
pub mod power;
pub mod restore;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lifeboat_schema::Account;
use serde::{Deserialize, Serialize};

pub use copy::{
    DbCopyRequest, Encryption, ImageCopyRequest, KeyAlias, Kms, LockUntil, SnapshotCopyRequest,
    SnapshotLock, SnapshotLockRequest,
};

/// The kinds of failure the engine reacts to differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The resource does not exist (deleting it counts as done).
    NotFound,
    /// Throttled after the SDK's own retries were used up.
    Throttled,
    AccessDenied,
    /// The resource is in a state that forbids the action (in use, pending, ...).
    Conflict,
    /// The request was rejected as malformed.
    Invalid,
    /// The connection failed or timed out.
    Transport,
    /// Any other service error.
    Other,
    /// The credentials reach another AWS account than the one the account
    /// is pinned or recorded to (see [`identity`]).
    WrongAccount,
}

/// A failed AWS call, saying which account, region, resource and action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudError {
    pub kind: ErrorKind,
    /// The account's name in the configuration.
    pub account: String,
    pub region: String,
    /// `service:Action`, for example `ec2:CreateSnapshots`.
    pub action: String,
    /// The resource id the call was about, when there is one.
    pub resource: Option<String>,
    /// The AWS error code, for example `InvalidSnapshot.NotFound`.
    pub code: Option<String>,
    pub message: String,
}

impl fmt::Display for CloudError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed in account {} ({})",
            self.action, self.account, self.region
        )?;
        if let Some(r) = &self.resource {
            write!(f, " for {r}")?;
        }
        match &self.code {
            Some(c) => write!(f, ": {c}: {}", self.message),
            None => write!(f, ": {}", self.message),
        }
    }
}

impl std::error::Error for CloudError {}

/// A delete's result with "already gone" counted as done: an apply that was
/// interrupted after the call and run again finds the resource deleted,
/// which is the outcome it wanted.
pub fn gone_is_done(r: CloudResult<()>) -> CloudResult<()> {
    match r {
        Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

pub type CloudResult<T> = Result<T, CloudError>;

/// One page of a list call. `next` is the token for the following page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
    /// The call that answered, named in the error when its pages loop.
    pub call: Call,
}

/// Where a list call went: what a [`CloudError`] about it names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Call {
    pub account: String,
    pub region: String,
    /// `service:Action`, for example `ec2:DescribeSnapshots`.
    pub action: String,
}

/// The most values one filter of a list call takes: EC2 refuses more than
/// 200, and RDS is held to the same. Every list by ids goes through
/// [`collect_chunked`] or chunks its ids by this.
pub const FILTER_CHUNK: usize = 200;

/// Lists what `fetch` returns for `ids`, [`FILTER_CHUNK`] ids per call,
/// every page of each.
pub async fn collect_chunked<'a, T, F, Fut>(ids: &'a [String], mut fetch: F) -> CloudResult<Vec<T>>
where
    F: FnMut(&'a [String], Option<String>) -> Fut,
    Fut: std::future::Future<Output = CloudResult<Page<T>>>,
{
    let mut out = Vec::new();
    for chunk in ids.chunks(FILTER_CHUNK) {
        out.extend(collect_pages(|t| fetch(chunk, t)).await?);
    }
    Ok(out)
}

/// The most pages one list is followed for: at the services' page sizes,
/// millions of resources, far past any account Lifeboat serves. A list that
/// does not end by then is a service answering in circles.
pub const MAX_PAGES: usize = 10_000;

/// Calls `fetch` until the service says there are no more pages.
///
/// A token the same list returned before would start the same pages over
/// forever, and a list past [`MAX_PAGES`] never ends in practice: both stop
/// with an error naming the call, never with an endless loop.
pub async fn collect_pages<T, F, Fut>(fetch: F) -> CloudResult<Vec<T>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = CloudResult<Page<T>>>,
{
    let mut out = Vec::new();
    each_page(fetch, |items| out.extend(items)).await?;
    Ok(out)
}

/// As [`collect_pages`], handing each page's items to `each` as it comes,
/// for a caller that keeps less than the whole answer (a plan's catalog
/// snapshots: the whole list would be held twice at its peak).
pub async fn each_page<T, F, Fut>(mut fetch: F, mut each: impl FnMut(Vec<T>)) -> CloudResult<()>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = CloudResult<Page<T>>>,
{
    let mut token = None;
    let mut seen = std::collections::BTreeSet::new();
    for pages in 1.. {
        let Page { items, next, call } = fetch(token.take()).await?;
        each(items);
        let Some(t) = next.filter(|t| !t.is_empty()) else {
            break;
        };
        if !seen.insert(t.clone()) {
            let why = format!(
                "the service returned the page token {t:?} a second time; the list would never end"
            );
            return Err(page_error(call, why));
        }
        if pages >= MAX_PAGES {
            let why = format!("the list did not end after {MAX_PAGES} pages");
            return Err(page_error(call, why));
        }
        token = Some(t);
    }
    Ok(())
}

fn page_error(call: Call, message: String) -> CloudError {
    CloudError {
        kind: ErrorKind::Other,
        account: call.account,
        region: call.region,
        action: call.action,
        resource: None,
        code: None,
        message,
    }
}

pub type Tags = BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    Pending,
    Running,
    Stopping,
    Stopped,
    ShuttingDown,
    Terminated,
}

impl InstanceState {
    /// Gone for backup purposes: terminated or on its way there.
    pub fn is_gone(self) -> bool {
        matches!(
            self,
            InstanceState::ShuttingDown | InstanceState::Terminated
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedVolume {
    pub volume_id: String,
    pub device: String,
    pub is_root: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    pub region: String,
    pub state: InstanceState,
    pub tags: Tags,
    pub volumes: Vec<AttachedVolume>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub id: String,
    pub region: String,
    /// `available`, `in-use`, `deleting`, ...
    pub state: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotState {
    Pending,
    Completed,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: String,
    pub volume_id: String,
    pub region: String,
    pub state: SnapshotState,
    pub started: Option<DateTime<Utc>>,
    pub tags: Tags,
}

/// An EBS snapshot with its description, for the callers that must tell
/// Lifeboat's own snapshots from others carrying the same tags by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescribedSnapshot {
    pub snapshot: Snapshot,
    pub description: String,
    /// Whether and with which key it is encrypted (what a copy must match).
    #[serde(default)]
    pub encryption: Encryption,
}

/// A server-side filter for DescribeInstances / DescribeVolumes. Conditions
/// are ANDed, the values of one condition ORed, as in EC2's `Filters`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Restrict to these ids (through the `instance-id` / `volume-id` filter,
    /// so missing ids are simply absent, not an error).
    pub ids: Vec<String>,
    /// `(tag key, values)`; a value may end in `*`. Empty values: any value (`tag-key`).
    /// The key [`ANY_TAG_KEY`] asks for resources carrying any of the keys
    /// given as its values ([`Query::any_tag_key`]).
    pub tags: Vec<(String, Vec<String>)>,
}

/// The key of a [`Query`] condition "carries one of these tag keys" (EC2's
/// `tag-key` filter with several values). No EC2 tag has an empty key, so
/// it cannot be mistaken for a real one.
pub const ANY_TAG_KEY: &str = "";

impl Query {
    /// Resources carrying at least one of `keys`, whatever the values: one
    /// filter, so one paged list however many keys.
    pub fn any_tag_key(keys: &[&str]) -> Query {
        Query {
            ids: vec![],
            tags: vec![(
                ANY_TAG_KEY.to_string(),
                keys.iter().map(|k| k.to_string()).collect(),
            )],
        }
    }
}

/// A server-side filter for DescribeSnapshots. Always restricted to the
/// account's own snapshots (`owner-id`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotQuery {
    pub ids: Vec<String>,
    pub tags: Vec<(String, Vec<String>)>,
    /// Only snapshots that have not completed (pending, error, ...): a wait
    /// for completion asks for those alone, so the answer stays small. The
    /// ids are then named as such (not filtered on), so an id AWS does not
    /// know — not yet visible after its create call, or deleted — fails the
    /// call with `NotFound` instead of reading as completed. One page.
    pub unfinished_only: bool,
}

/// One multi-volume CreateSnapshots call for an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSnapshotRequest {
    pub instance_id: String,
    pub exclude_boot_volume: bool,
    pub exclude_volume_ids: Vec<String>,
    pub description: String,
    /// Applied at creation (TagSpecifications), never in a second call.
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSnapshotRequest {
    pub volume_id: String,
    pub description: String,
    pub tags: Tags,
}

/// One CreateImage call for an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRequest {
    pub instance_id: String,
    /// AMI names are unique per account and region.
    pub name: String,
    pub description: String,
    /// `NoReboot = !reboot`.
    pub reboot: bool,
    /// Applied at creation to the image through TagSpecifications (its
    /// snapshots are tagged with CreateTags once they exist).
    pub tags: Tags,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageState {
    Pending,
    Available,
    /// `failed`, `invalid`, `error`, `deregistered`, ...
    Failed,
}

/// An AMI as DescribeImages reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub id: String,
    pub region: String,
    pub state: ImageState,
    /// The EBS snapshots of its block device mappings.
    pub snapshot_ids: Vec<String>,
    pub tags: Tags,
    /// Unique per account and region.
    #[serde(default)]
    pub name: String,
    /// Lifeboat writes its marker here (`backup::names`): tags alone can be
    /// put on anything by hand, so they never make an AMI Lifeboat's.
    #[serde(default)]
    pub description: String,
    /// `CreationDate`; `None` when AWS does not say.
    #[serde(default)]
    pub created: Option<DateTime<Utc>>,
}

/// A server-side filter for DescribeImages, always `Owners = self`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageQuery {
    pub ids: Vec<String>,
    pub tags: Vec<(String, Vec<String>)>,
}

/// EC2 in one account and region.
#[async_trait]
pub trait Ec2: Send + Sync {
    async fn instances_page(&self, q: &Query, token: Option<String>)
        -> CloudResult<Page<Instance>>;
    async fn volumes_page(&self, q: &Query, token: Option<String>) -> CloudResult<Page<Volume>>;
    async fn snapshots_page(
        &self,
        q: &SnapshotQuery,
        token: Option<String>,
    ) -> CloudResult<Page<Snapshot>>;
    /// [`Ec2::snapshots_page`] keeping each snapshot's description.
    async fn described_snapshots_page(
        &self,
        q: &SnapshotQuery,
        token: Option<String>,
    ) -> CloudResult<Page<DescribedSnapshot>>;
    /// CreateSnapshots: one call for all the instance's chosen volumes.
    async fn create_instance_snapshots(
        &self,
        req: &InstanceSnapshotRequest,
    ) -> CloudResult<Vec<Snapshot>>;
    /// CreateSnapshot: one volume.
    async fn create_volume_snapshot(&self, req: &VolumeSnapshotRequest) -> CloudResult<Snapshot>;
    /// DeleteSnapshot. Deleting a snapshot that is already gone succeeds.
    async fn delete_snapshot(&self, snapshot_id: &str) -> CloudResult<()>;
    /// CreateImage with the tags in TagSpecifications; returns the AMI id.
    async fn create_image(&self, req: &ImageRequest) -> CloudResult<String>;
    /// DescribeImages of the account's own AMIs.
    async fn images_page(&self, q: &ImageQuery, token: Option<String>) -> CloudResult<Page<Image>>;
    /// CreateTags on several resources at once.
    async fn create_tags(&self, resource_ids: &[String], tags: &Tags) -> CloudResult<()>;
    /// DeregisterImage. Deregistering an AMI that is already gone succeeds.
    async fn deregister_image(&self, image_id: &str) -> CloudResult<()>;
    /// CopySnapshot into this client's region; returns the copy's id.
    async fn copy_snapshot(&self, req: &SnapshotCopyRequest) -> CloudResult<String>;
    /// CopyImage into this client's region; returns the copy's AMI id.
    async fn copy_image(&self, req: &ImageCopyRequest) -> CloudResult<String>;
    /// ModifySnapshotAttribute `createVolumePermission`: add (`share`) or
    /// remove the AWS account `account_id`.
    async fn share_snapshot(
        &self,
        snapshot_id: &str,
        account_id: &str,
        share: bool,
    ) -> CloudResult<()>;
    /// ModifyImageAttribute `launchPermission`: add or remove `account_id`.
    async fn share_image(&self, image_id: &str, account_id: &str, share: bool) -> CloudResult<()>;
    /// LockSnapshot (EBS Snapshot Lock); returns the lock as AWS set it.
    async fn lock_snapshot(&self, req: &SnapshotLockRequest) -> CloudResult<SnapshotLock>;
    /// DescribeLockedSnapshots of the given ids (at most 200 a call): the
    /// locks AWS reports, expired ones included; an unlocked snapshot is
    /// absent.
    async fn locked_snapshots_page(
        &self,
        snapshot_ids: &[String],
        token: Option<String>,
    ) -> CloudResult<Page<SnapshotLock>>;
}

/// An RDS instance snapshot or an Aurora cluster snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DbSnapshotKind {
    /// CreateDBSnapshot of a DB instance.
    Instance,
    /// CreateDBClusterSnapshot of an Aurora cluster.
    Cluster,
}

/// CreateDBSnapshot / CreateDBClusterSnapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbSnapshotRequest {
    pub kind: DbSnapshotKind,
    /// The DB instance or cluster identifier.
    pub source_id: String,
    pub snapshot_id: String,
    /// Applied at creation (the `Tags` parameter).
    pub tags: Tags,
}

/// A DB (cluster) snapshot as the describe calls report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbSnapshot {
    pub id: String,
    pub source_id: String,
    /// `creating`, `available`, `failed`, ...
    pub status: String,
    /// `SnapshotCreateTime`; `None` while AWS does not say.
    #[serde(default)]
    pub created: Option<DateTime<Utc>>,
    /// The `TagList` of the describe answer (empty when it carries none).
    #[serde(default)]
    pub tags: Tags,
    /// `DBSnapshotArn` / `DBClusterSnapshotArn` (empty when not reported).
    #[serde(default)]
    pub arn: String,
    #[serde(default)]
    pub encryption: Encryption,
}

/// An RDS DB instance or Aurora cluster as a describe lists it, for the
/// `select` blocks that take databases in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Database {
    pub id: String,
    pub kind: DbSnapshotKind,
    pub region: String,
    /// `available`, `stopped`, `deleting`, ...
    pub status: String,
    #[serde(default)]
    pub tags: Tags,
    /// The Aurora cluster a DB instance belongs to: such an instance is
    /// backed up with its cluster, never on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

/// RDS in one account and region.
#[async_trait]
pub trait Rds: Send + Sync {
    /// One page of every DB instance (DescribeDBInstances) or Aurora
    /// cluster (DescribeDBClusters) of the region, with its tags: RDS lists
    /// cannot filter on tags, so selectors are matched on the answer.
    async fn databases_page(
        &self,
        kind: DbSnapshotKind,
        token: Option<String>,
    ) -> CloudResult<Page<Database>>;
    async fn create_db_snapshot(&self, req: &DbSnapshotRequest) -> CloudResult<DbSnapshot>;
    /// DescribeDBSnapshots / DescribeDBClusterSnapshots filtered by id
    /// (`db-snapshot-id` / `db-cluster-snapshot-id`); missing ids are absent.
    async fn db_snapshots_page(
        &self,
        kind: DbSnapshotKind,
        ids: &[String],
        token: Option<String>,
    ) -> CloudResult<Page<DbSnapshot>>;
    /// DeleteDBSnapshot / DeleteDBClusterSnapshot. Gone already succeeds.
    async fn delete_db_snapshot(&self, kind: DbSnapshotKind, id: &str) -> CloudResult<()>;
    /// CopyDBSnapshot / CopyDBClusterSnapshot into this client's region.
    async fn copy_db_snapshot(&self, req: &DbCopyRequest) -> CloudResult<DbSnapshot>;
    /// ModifyDBSnapshotAttribute / ModifyDBClusterSnapshotAttribute
    /// `restore`: add (`share`) or remove the AWS account `account_id`.
    async fn share_db_snapshot(
        &self,
        kind: DbSnapshotKind,
        id: &str,
        account_id: &str,
        share: bool,
    ) -> CloudResult<()>;
    /// AddTagsToResource on a DB (cluster) snapshot, by ARN.
    async fn tag_db_snapshot(&self, arn: &str, tags: &Tags) -> CloudResult<()>;
}

/// The VPC family of EC2 in one account and region, read for VPC capture.
#[async_trait]
pub trait Network: Send + Sync {
    /// Every VPC-family resource of the region (deleted ones left out).
    ///
    /// An implementation makes one paginated list call per resource type,
    /// never one per resource, with two unavoidable exceptions:
    /// DescribeVpcAttribute (the DNS attributes are only readable one VPC
    /// and one attribute at a time) and GetManagedPrefixListEntries (entries
    /// are only readable one list at a time; AWS-managed lists are skipped).
    async fn inventory(&self) -> CloudResult<network::RegionInventory>;

    /// The region's availability zone names (`us-west-2a`, ...), sorted:
    /// where an exported template places subnets. The default refuses.
    async fn availability_zones(&self) -> CloudResult<Vec<String>> {
        Err(refused(
            "ec2:DescribeAvailabilityZones",
            "this cloud does not list availability zones",
        ))
    }
}

/// An error for a capability a cloud does not offer.
fn refused(action: &str, message: &str) -> CloudError {
    CloudError {
        kind: ErrorKind::Invalid,
        account: String::new(),
        region: String::new(),
        action: action.into(),
        resource: None,
        code: None,
        message: message.into(),
    }
}

/// Where CloudFormation reads a template from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateSource {
    /// Inline `TemplateBody` (at most `TEMPLATE_BODY_LIMIT` (`crate::vpc::export`) bytes).
    Body(String),
    /// `TemplateURL` of an uploaded template.
    Url(String),
}

/// A stack as DescribeStacks reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackInfo {
    pub name: String,
    pub id: String,
    /// `CREATE_IN_PROGRESS`, `CREATE_COMPLETE`, `ROLLBACK_COMPLETE`, ...
    pub status: String,
    pub reason: Option<String>,
}

/// One entry of DescribeStackEvents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackEvent {
    pub at: Option<DateTime<Utc>>,
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: Option<String>,
}

/// CloudFormation in one account and region.
#[async_trait]
pub trait Stacks: Send + Sync {
    /// CreateStack; returns the stack id.
    async fn create_stack(
        &self,
        name: &str,
        template: &TemplateSource,
        tags: &Tags,
    ) -> CloudResult<String>;
    /// UpdateStack. `Ok(false)` when CloudFormation says there is nothing to
    /// update ("No updates are to be performed"), which is not an error.
    async fn update_stack(&self, name: &str, template: &TemplateSource) -> CloudResult<bool>;
    /// DeleteStack. Deleting a stack that does not exist succeeds.
    async fn delete_stack(&self, name: &str) -> CloudResult<()>;
    /// DescribeStacks for one stack; `None` when it does not exist.
    async fn describe_stack(&self, name: &str) -> CloudResult<Option<StackInfo>>;
    /// DescribeStackEvents, newest first (the first page is enough).
    async fn stack_events(&self, name: &str) -> CloudResult<Vec<StackEvent>>;
}

/// S3 in one account and region, for templates too large to send inline.
#[async_trait]
pub trait Objects: Send + Sync {
    /// PutObject; returns the object's URL for CloudFormation's `TemplateURL`.
    async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> CloudResult<String>;
}

/// SNS in one account and region, for alert notifications.
#[async_trait]
pub trait Sns: Send + Sync {
    /// Publish: one call per message; returns the message id.
    async fn publish(&self, topic_arn: &str, subject: &str, message: &str) -> CloudResult<String>;
}

/// Opens AWS clients for configured accounts.
#[async_trait]
pub trait Cloud: Send + Sync {
    /// The AWS account id `account`'s credentials reach (STS
    /// GetCallerIdentity, with the account's own credentials or assumed
    /// role). Cached per account.
    async fn account_id(&self, account: &Account) -> CloudResult<String>;

    /// EC2 for `account` in `region`, with the account's credentials
    /// (default chain, profile, or assumed role). Clients are cached.
    async fn ec2(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Ec2>>;

    /// RDS for `account` in `region`. The default refuses.
    async fn rds(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Rds>> {
        Err(CloudError {
            account: account.name.clone(),
            region: region.to_string(),
            ..refused("rds:CreateDBSnapshot", "this cloud does not support RDS")
        })
    }

    /// The VPC family for `account` in `region`. The default refuses, for
    /// clouds that do not offer VPC capture.
    async fn network(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Network>> {
        Err(CloudError {
            kind: ErrorKind::Invalid,
            account: account.name.clone(),
            region: region.to_string(),
            action: "ec2:DescribeVpcs".into(),
            resource: None,
            code: None,
            message: "this cloud does not support VPC capture".into(),
        })
    }

    /// CloudFormation for `account` in `region`. The default refuses.
    async fn stacks(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Stacks>> {
        Err(CloudError {
            account: account.name.clone(),
            region: region.to_string(),
            ..refused(
                "cloudformation:CreateStack",
                "this cloud does not support CloudFormation",
            )
        })
    }

    /// S3 for `account` in `region`. The default refuses.
    async fn objects(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Objects>> {
        Err(CloudError {
            account: account.name.clone(),
            region: region.to_string(),
            ..refused("s3:PutObject", "this cloud does not support S3 uploads")
        })
    }

    /// KMS for `account` in `region`. The default refuses.
    async fn kms(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Kms>> {
        Err(CloudError {
            account: account.name.clone(),
            region: region.to_string(),
            ..refused("kms:ListAliases", "this cloud does not support KMS")
        })
    }

    /// IAM for `account` (global: no region), with its credentials. The
    /// default refuses.
    async fn iam(&self, account: &Account) -> CloudResult<Arc<dyn iam::Iam>> {
        Err(CloudError {
            account: account.name.clone(),
            ..refused("iam:GetRole", "this cloud does not support IAM")
        })
    }

    /// EC2's restore calls for `account` in `region`. The default refuses.
    async fn launch(
        &self,
        account: &Account,
        region: &str,
    ) -> CloudResult<Arc<dyn restore::Launch>> {
        Err(CloudError {
            account: account.name.clone(),
            region: region.to_string(),
            ..refused("ec2:RunInstances", "this cloud does not restore instances")
        })
    }

    /// RDS's restore calls for `account` in `region`. The default refuses.
    async fn databases(
        &self,
        account: &Account,
        region: &str,
    ) -> CloudResult<Arc<dyn restore::Databases>> {
        Err(CloudError {
            account: account.name.clone(),
            region: region.to_string(),
            ..refused(
                "rds:RestoreDBInstanceFromDBSnapshot",
                "this cloud does not restore databases",
            )
        })
    }

    /// Resource control's calls for `account` in `region`. The default refuses.
    async fn power(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn power::Power>> {
        Err(CloudError {
            account: account.name.clone(),
            region: region.to_string(),
            ..refused(
                "ec2:StopInstances",
                "this cloud does not stop or start resources",
            )
        })
    }

    /// SNS for `account` in `region`. The default refuses.
    async fn sns(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Sns>> {
        Err(CloudError {
            account: account.name.clone(),
            region: region.to_string(),
            ..refused("sns:Publish", "this cloud does not support SNS")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> Call {
        Call {
            account: "main".into(),
            region: "us-east-1".into(),
            action: "ec2:DescribeSnapshots".into(),
        }
    }

    fn page(n: u32, next: Option<&str>) -> CloudResult<Page<u32>> {
        Ok(Page {
            items: vec![n],
            next: next.map(str::to_string),
            call: call(),
        })
    }

    #[tokio::test]
    async fn a_repeated_page_token_ends_the_list_with_an_error_naming_the_call() {
        // a -> b -> a -> b ... : without the check this never returns.
        let mut calls = 0;
        let err = collect_pages(|t| {
            calls += 1;
            let next = if t.as_deref() == Some("a") { "b" } else { "a" };
            std::future::ready(page(calls, Some(next)))
        })
        .await
        .unwrap_err();
        assert_eq!(calls, 3);
        let shown = err.to_string();
        assert!(
            shown.starts_with("ec2:DescribeSnapshots failed in account main (us-east-1)"),
            "{shown}"
        );
        assert!(shown.contains("\"a\" a second time"), "{shown}");
    }

    #[tokio::test]
    async fn a_list_that_never_ends_stops_at_the_page_cap() {
        let mut calls = 0usize;
        let err = collect_pages(|_| {
            calls += 1;
            std::future::ready(page(1, Some(&calls.to_string())))
        })
        .await
        .unwrap_err();
        assert_eq!(calls, MAX_PAGES);
        assert!(
            err.to_string().contains("did not end after 10000 pages"),
            "{err}"
        );
        // An empty token ends the list like no token.
        let all = collect_pages(|t| std::future::ready(page(1, t.is_none().then_some(""))))
            .await
            .unwrap();
        assert_eq!(all, vec![1]);
    }
}
