//! State and catalog: one SQLite file holding the managed objects (accounts,
//! policies, targets) and the backup catalog (backups, snapshots, freezer,
//! alerts), with Terraform-style lineage and serial and an exclusive lock.
//!
//! Every change goes through [`Store::transaction`], which commits atomically
//! and bumps the serial, so a process killed at any instant leaves either the
//! old state or the new one, never a mixture. WAL mode keeps readers (plan)
//! unblocked while a writer (apply, backup) works.

pub mod model;
mod objects;
pub use objects::{check_value, StoredValue};

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

mod applied;
mod catalog;
mod control;
pub use control::{ControlRecord, ControlWrite};
mod dr;
mod figures;
mod file;
pub use figures::{Figures, PolicyFigures};
mod drill;
pub use dr::{CopyLock, Destination, DrCopyRecord, DrRun, DrStatus};
pub use drill::{DrillRecord, DrillStatus};
mod gate;
mod health;
mod history;
pub use history::{
    dr_status, snapshot_succeeded, DeletedBackup, DeletedSnapshot, DEFAULT_REPORT_RETENTION_DAYS,
};
pub mod holder;
mod identity;
mod in_use;
pub use gate::{GateGuard, LockGate, OnLocked};
mod inflight;
pub use in_use::{source_destination, InUse};
pub use inflight::{InFlight, Owner};
#[cfg(any(test, feature = "testing"))]
pub mod conformance;
mod lease;
mod members;
mod reading;
#[cfg(any(test, feature = "testing"))]
pub use reading::create_at_version;
pub use reading::Reading;
pub mod remote;
mod replica;
mod restore;
pub use restore::{ResourceKind, RestoreRecord, RestoreStatus, RestoredResource};
mod secured;
mod shares;
mod store;
pub use catalog::{
    is_note, Alert, ArtifactKind, BackupRecord, BackupStatus, Frozen, SnapshotOwner,
    SnapshotRecord, VpcVersionRecord, MEMBERSHIP_NOTE, NOTE_PREFIX, PROBLEMS_UNKNOWN_NOTE,
};
pub use health::{Retry, ScriptRun, Skipped};
pub use identity::Expected;
pub use lease::{
    lock_waiting, with_lock, with_lock_waiting, LockInfo, LockWaiting, LOCK_TTL_MINUTES,
};
pub use secured::SecuredCheck;
pub use shares::{dr_holder, dr_holder_policy, restore_holder, ShareHold};
pub use store::{
    new_id, SharedStore, Snapshot, StateError, StateResult, Store, Tx, SCHEMA_VERSION,
};
use store::{parse_ts, ts};

impl Store {
    /// The last scheduled slot each policy ran for.
    pub fn last_slots(&self) -> StateResult<BTreeMap<String, DateTime<Utc>>> {
        let mut st = self
            .conn
            .prepare("SELECT policy, last_slot FROM policy_runs")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.err(e))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (policy, slot) = row.map_err(|e| self.err(e))?;
            out.insert(policy, parse_ts(&self.path, &slot)?);
        }
        Ok(out)
    }
}
