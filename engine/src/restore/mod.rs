//! Restores: bringing an instance, a volume, an RDS instance or an Aurora
//! cluster back from a backup or from a DR copy, planned first like every
//! other change.
//!
//! - [`source`] picks the backup and where its artifacts are (pure over
//!   the catalog).
//! - [`plan`] turns a request into a [`RestorePlan`]: what will be created
//!   from which artifact, with defaults from the backup's restore point,
//!   checked against AWS before anything is created.
//! - [`run`] performs a plan: each create call recorded as it returns (so a
//!   killed restore is adopted by its tags, never made twice), then the wait
//!   until everything runs.
//! - [`reap`] ends the restores whose process died midway: their shares
//!   and launch image go, their record fails saying how to go on.
//! - [`render`] prints a plan for people.
//!
//! Everything created carries [`TAG_RESTORED_FROM`] and [`TAG_RESTORE_ID`].

mod db;
pub mod look_ahead;
pub mod plan;
pub mod reap;
pub mod render;
pub mod run;
pub mod source;
pub mod tagged;

use crate::cloud::{CloudError, DbSnapshotKind};
use crate::state::{ArtifactKind, StateError};

pub use plan::{Options, Request, RestorePlan};
pub use source::Which;

/// On everything a restore creates: the artifact it came from.
pub const TAG_RESTORED_FROM: &str = "lifeboat:restored-from";
/// On everything a restore creates: the restore's id (how a killed restore
/// finds what it made, and a drill's teardown what to remove).
pub const TAG_RESTORE_ID: &str = "lifeboat:restore-id";
/// On a volume `--swap` detached: the restore that replaced it (it is kept).
pub const TAG_SWAPPED_OUT_BY: &str = "lifeboat:swapped-out-by";

/// What is restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Instance,
    Volume,
    Rds,
    Aurora,
}

impl Kind {
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Instance => "instance",
            Kind::Volume => "volume",
            Kind::Rds => "rds",
            Kind::Aurora => "aurora",
        }
    }

    /// Whether a catalog record of this kind restores a target of `self`.
    fn holds(self, a: ArtifactKind) -> bool {
        match self {
            Kind::Instance => matches!(a, ArtifactKind::Ebs | ArtifactKind::Image),
            Kind::Volume => a == ArtifactKind::Ebs,
            Kind::Rds => a == ArtifactKind::DbSnapshot,
            Kind::Aurora => a == ArtifactKind::DbClusterSnapshot,
        }
    }

    fn db_kind(self) -> Option<DbSnapshotKind> {
        match self {
            Kind::Rds => Some(DbSnapshotKind::Instance),
            Kind::Aurora => Some(DbSnapshotKind::Cluster),
            Kind::Instance | Kind::Volume => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The request cannot be met; nothing was created.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error(transparent)]
    State(#[from] StateError),
    /// A saved restore plan no longer fits the state.
    #[error("the saved restore plan is stale: {0}")]
    Stale(String),
}

impl From<crate::share::ShareError> for RestoreError {
    fn from(e: crate::share::ShareError) -> Self {
        match e {
            crate::share::ShareError::Cloud(e) => RestoreError::Cloud(e),
            crate::share::ShareError::State(e) => RestoreError::State(e),
        }
    }
}

/// A new restore id: `r-` and the time, then random hex (short enough for
/// RunInstances' 64-character `ClientToken`).
pub fn new_restore_id(now: chrono::DateTime<chrono::Utc>) -> String {
    let rand = crate::state::new_id();
    let hex: String = rand
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(8)
        .collect();
    format!("r-{}-{hex}", now.format("%Y%m%dt%H%M%S"))
}
