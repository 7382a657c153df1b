//! The port resource control needs: whether instances and databases run,
//! and the calls that stop, hibernate and start them.
//!
//! Separate from [`super::Ec2`] and [`super::Rds`], as the restore ports
//! are, so that a cloud that only backs up need not implement it:
//! [`super::Cloud::power`] refuses by default.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{CloudResult, DbSnapshotKind, Page, Query, Tags};

/// Whether a target runs, as far as resource control cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerState {
    /// `running` (EC2), `available` (RDS).
    Running,
    /// `stopped`.
    Stopped,
    /// On its way somewhere (`pending`, `stopping`, `starting`, a
    /// database `backing-up` or `modifying`, ...): looked at again.
    Changing,
    /// Terminated, deleted, or not found.
    Gone,
}

impl PowerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::Running => "running",
            PowerState::Stopped => "stopped",
            PowerState::Changing => "changing",
            PowerState::Gone => "gone",
        }
    }
}

/// What a target is, for resource control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerKind {
    /// An EC2 instance (StopInstances / StartInstances).
    Instance,
    /// An RDS DB instance (StopDBInstance / StartDBInstance).
    Rds,
    /// An Aurora cluster, stopped and started as a whole (StopDBCluster /
    /// StartDBCluster): its member instances cannot be stopped one by one.
    Aurora,
}

impl PowerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PowerKind::Instance => "instance",
            PowerKind::Rds => "rds",
            PowerKind::Aurora => "aurora",
        }
    }

    /// The kind of the RDS describe and calls; `None` for an instance.
    pub fn db(self) -> Option<DbSnapshotKind> {
        match self {
            PowerKind::Instance => None,
            PowerKind::Rds => Some(DbSnapshotKind::Instance),
            PowerKind::Aurora => Some(DbSnapshotKind::Cluster),
        }
    }
}

/// One target as a describe reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Powered {
    pub id: String,
    pub kind: PowerKind,
    pub state: PowerState,
    /// The state's name as AWS gives it (`stopping`, `available`, ...).
    pub detail: String,
    /// Instances launched with hibernation configured
    /// (`HibernationOptions.Configured`); false for databases.
    #[serde(default)]
    pub hibernation: bool,
    #[serde(default)]
    pub tags: Tags,
}

/// EC2 and RDS power calls in one account and region.
#[async_trait]
pub trait Power: Send + Sync {
    /// DescribeInstances by the query's ids or tags; terminated instances
    /// are reported [`PowerState::Gone`].
    async fn instances_power(&self, q: &Query, token: Option<String>)
        -> CloudResult<Page<Powered>>;
    /// StopInstances; with `hibernate`, `Hibernate = true` (every instance
    /// given must be configured for it).
    async fn stop_instances(&self, ids: &[String], hibernate: bool) -> CloudResult<()>;
    /// StartInstances.
    async fn start_instances(&self, ids: &[String]) -> CloudResult<()>;
    /// DescribeDBInstances / DescribeDBClusters filtered by identifier
    /// (missing ones are absent).
    async fn databases_power(
        &self,
        kind: DbSnapshotKind,
        ids: &[String],
        token: Option<String>,
    ) -> CloudResult<Page<Powered>>;
    /// StopDBInstance / StopDBCluster.
    async fn stop_database(&self, kind: DbSnapshotKind, id: &str) -> CloudResult<()>;
    /// StartDBInstance / StartDBCluster.
    async fn start_database(&self, kind: DbSnapshotKind, id: &str) -> CloudResult<()>;
}

/// A database status by name: `available` runs, `stopped` is stopped,
/// `deleting` and the like are on their way out, anything else changes.
pub fn database_state(status: &str) -> PowerState {
    match status {
        "available" => PowerState::Running,
        "stopped" => PowerState::Stopped,
        "deleting" | "deleted" | "failed" | "inaccessible-encryption-credentials" => {
            PowerState::Gone
        }
        _ => PowerState::Changing,
    }
}
