//! The ports a restore needs: what a resource was at backup time (its
//! shape, recorded in the catalog with each backup) and the calls that
//! bring it back (RegisterImage, RunInstances, CreateVolume, the RDS
//! restores) and take a drill's creations down again.
//!
//! Separate from [`super::Ec2`] and [`super::Rds`] so that a cloud that
//! only backs up (an old fake, a read-only check) need not implement them:
//! [`super::Cloud::launch`] and [`super::Cloud::databases`] refuse by default.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{CloudResult, DbSnapshotKind, Page, Tags};

/// One EBS volume as DescribeVolumes reports it, with where it was attached:
/// what a restored volume is created like.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    pub volume_id: String,
    /// The device name on its instance (`/dev/xvda`); empty when detached.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub device: String,
    pub availability_zone: String,
    pub size_gib: i32,
    /// `gp3`, `gp2`, `io1`, `io2`, `st1`, `sc1`, `standard`.
    pub volume_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<i32>,
    #[serde(default)]
    pub encrypted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// Whether the volume goes with its instance (the mapping's flag).
    #[serde(default)]
    pub delete_on_termination: bool,
    #[serde(default)]
    pub tags: Tags,
}

/// What an instance was at backup time: enough to launch it again after it
/// is long terminated. User data is not part of it: reading it costs one
/// call per instance, and it often holds secrets that must not reach the
/// state (a restore takes `--user-data FILE`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceShape {
    pub instance_type: String,
    /// `x86_64`, `arm64`, `i386`.
    pub architecture: String,
    pub root_device: String,
    pub availability_zone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    /// The instance profile's ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ip: Option<String>,
    /// The image it was launched from (may be long deregistered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    #[serde(default)]
    pub ebs_optimized: bool,
    #[serde(default)]
    pub ena: bool,
    #[serde(default)]
    pub hibernation: bool,
    #[serde(default)]
    pub tags: Tags,
    /// Every attached EBS volume, root first, then by device name.
    #[serde(default)]
    pub disks: Vec<Disk>,
}

impl InstanceShape {
    /// The disk mounted at the root device.
    pub fn root(&self) -> Option<&Disk> {
        self.disks.iter().find(|d| d.device == self.root_device)
    }
}

/// What a DB instance or Aurora cluster was at backup time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbShape {
    pub identifier: String,
    /// Named apart in JSON: [`Shape`]'s own tag is `kind`, and a field of
    /// the same name would make a recorded DB shape unreadable.
    #[serde(default, rename = "db_kind")]
    pub kind: Option<DbSnapshotKind>,
    /// The instance class; for a cluster, its first member's.
    #[serde(default)]
    pub class: String,
    pub engine: String,
    #[serde(default)]
    pub engine_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    #[serde(default)]
    pub multi_az: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// A cluster's member instances, by identifier: their classes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<(String, String)>,
    #[serde(default)]
    pub tags: Tags,
}

/// What a backup recorded of one target, kept in the catalog with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Shape {
    Instance(InstanceShape),
    Volume(Disk),
    Db(DbShape),
}

/// One block device of an image registered from snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    pub device: String,
    pub snapshot_id: String,
    pub size_gib: Option<i32>,
    pub volume_type: Option<String>,
    pub iops: Option<i32>,
    pub throughput: Option<i32>,
    pub delete_on_termination: bool,
}

/// RegisterImage from EBS snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRegistration {
    /// Unique per account and region.
    pub name: String,
    pub description: String,
    pub architecture: String,
    pub root_device: String,
    pub ena: bool,
    pub mappings: Vec<Mapping>,
    pub tags: Tags,
}

/// RunInstances of one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchRequest {
    pub image_id: String,
    pub instance_type: String,
    pub subnet_id: Option<String>,
    /// Used when there is no subnet (a default-VPC placement).
    pub availability_zone: Option<String>,
    pub security_groups: Vec<String>,
    pub key_name: Option<String>,
    pub iam_profile: Option<String>,
    pub private_ip: Option<String>,
    pub ebs_optimized: bool,
    pub hibernation: bool,
    pub user_data: Option<String>,
    /// Overrides of the image's mappings (size, type), by device.
    pub mappings: Vec<Mapping>,
    /// On the instance and its volumes, at creation.
    pub tags: Tags,
    /// RunInstances' `ClientToken`: a call made again after a lost answer
    /// or a killed run launches nothing twice.
    pub client_token: String,
}

/// CreateVolume from a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRequest {
    pub snapshot_id: String,
    pub availability_zone: String,
    pub volume_type: String,
    pub size_gib: Option<i32>,
    pub iops: Option<i32>,
    pub throughput: Option<i32>,
    /// A key to encrypt with (encryption follows the snapshot otherwise).
    pub kms_key_id: Option<String>,
    pub tags: Tags,
    /// CreateVolume's `ClientToken`.
    pub client_token: String,
}

/// RestoreDBInstanceFromDBSnapshot / RestoreDBClusterFromSnapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbRestoreRequest {
    pub kind: DbSnapshotKind,
    /// The new DB instance or cluster identifier.
    pub identifier: String,
    /// The snapshot's identifier, or its ARN when it is shared from another
    /// account.
    pub snapshot: String,
    /// The instance class (for a cluster: of the instances created in it).
    pub class: Option<String>,
    pub engine: Option<String>,
    pub subnet_group: Option<String>,
    pub parameter_group: Option<String>,
    pub port: Option<i32>,
    pub multi_az: bool,
    pub security_groups: Vec<String>,
    pub tags: Tags,
}

/// A DB instance or cluster as the describe calls report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbStatus {
    pub identifier: String,
    /// `creating`, `available`, `deleting`, ...
    pub status: String,
    /// The address clients connect to, once AWS gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub tags: Tags,
}

/// One instance's two EC2 status checks, as DescribeInstanceStatus reports
/// them: `ok`, `initializing`, `impaired`, `insufficient-data`, or
/// `not-applicable` (not running).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceHealth {
    pub id: String,
    /// The instance status check (the guest: reachability of its OS).
    pub instance: String,
    /// The system status check (the host AWS runs it on).
    pub system: String,
}

impl InstanceHealth {
    pub fn ok(&self) -> bool {
        self.instance == "ok" && self.system == "ok"
    }
}

/// The most instance ids one DescribeInstanceStatus call names.
pub const STATUS_CHUNK: usize = 100;

/// EC2's restore calls in one account and region.
#[async_trait]
pub trait Launch: Send + Sync {
    /// DescribeInstances filtered by id: each instance's shape (its disks
    /// carry only the device and volume id: [`Launch::disks_page`] fills in
    /// the rest).
    async fn shapes_page(
        &self,
        ids: &[String],
        token: Option<String>,
    ) -> CloudResult<Page<(String, InstanceShape)>>;
    /// DescribeVolumes filtered by id, every detail a restore needs.
    async fn disks_page(&self, ids: &[String], token: Option<String>) -> CloudResult<Page<Disk>>;
    /// DescribeSubnets filtered by id (at most 200): each existing
    /// subnet's availability zone; missing ones are absent.
    async fn subnet_zones(&self, ids: &[String]) -> CloudResult<BTreeMap<String, String>>;
    /// One subnet's availability zone, `None` when it does not exist.
    async fn subnet_zone(&self, subnet_id: &str) -> CloudResult<Option<String>> {
        let mut zones = self.subnet_zones(&[subnet_id.to_string()]).await?;
        Ok(zones.remove(subnet_id))
    }
    /// DescribeInstanceStatus of `ids` (at most [`STATUS_CHUNK`]), stopped
    /// and pending ones included (`IncludeAllInstances`).
    async fn instance_status(&self, ids: &[String]) -> CloudResult<Vec<InstanceHealth>>;
    /// RegisterImage with the mappings; returns the AMI id.
    async fn register_image(&self, req: &ImageRegistration) -> CloudResult<String>;
    /// RunInstances of one instance; returns its id.
    async fn run_instance(&self, req: &LaunchRequest) -> CloudResult<String>;
    /// CreateVolume; returns its id.
    async fn create_volume(&self, req: &VolumeRequest) -> CloudResult<String>;
    async fn attach_volume(
        &self,
        volume_id: &str,
        instance_id: &str,
        device: &str,
    ) -> CloudResult<()>;
    async fn detach_volume(&self, volume_id: &str, instance_id: &str) -> CloudResult<()>;
    /// TerminateInstances of one instance. Gone already succeeds.
    async fn terminate_instance(&self, instance_id: &str) -> CloudResult<()>;
    /// DeleteVolume. Gone already succeeds.
    async fn delete_volume(&self, volume_id: &str) -> CloudResult<()>;
}

/// RDS's restore calls in one account and region.
#[async_trait]
pub trait Databases: Send + Sync {
    /// DescribeDBInstances / DescribeDBClusters filtered by identifier,
    /// missing ones absent.
    async fn shapes_page(
        &self,
        kind: DbSnapshotKind,
        ids: &[String],
        token: Option<String>,
    ) -> CloudResult<Page<DbShape>>;
    /// RestoreDBInstanceFromDBSnapshot / RestoreDBClusterFromSnapshot.
    async fn restore(&self, req: &DbRestoreRequest) -> CloudResult<()>;
    /// CreateDBInstance in a restored Aurora cluster (a cluster restored
    /// from a snapshot has no instance until one is added).
    async fn add_cluster_instance(
        &self,
        cluster: &str,
        identifier: &str,
        class: &str,
        engine: &str,
        tags: &Tags,
    ) -> CloudResult<()>;
    /// DescribeDBInstances / DescribeDBClusters of one; `None` when gone.
    async fn status(&self, kind: DbSnapshotKind, identifier: &str)
        -> CloudResult<Option<DbStatus>>;
    /// DeleteDBInstance / DeleteDBCluster without a final snapshot (a
    /// drill's copy of data that has its backup already). Gone succeeds.
    async fn delete(&self, kind: DbSnapshotKind, identifier: &str) -> CloudResult<()>;
}
