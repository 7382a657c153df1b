//! A backup recorded `running` before its first AWS call, with the runner
//! that owns it when a runner takes it (`state/inflight.rs`).

use chrono::{DateTime, Utc};

use crate::failpoint;
use crate::state::{BackupRecord, BackupStatus, SharedStore};

use super::names::backup_id;
use super::BackupError;

/// Reserves the backup's id and records it `running` before any AWS call:
/// from here on a process that dies leaves a backup that restart
/// reconciliation finds and closes.
pub(super) fn record(
    store: &SharedStore,
    policy: &str,
    account: &str,
    now: DateTime<Utc>,
    owner: Option<crate::state::Owner>,
) -> Result<String, BackupError> {
    let mut s = store.lock().expect("store");
    let id = backup_id(&s, policy, now)?;
    let rec = BackupRecord {
        seq: 0,
        id: id.clone(),
        policy: policy.to_string(),
        account: account.to_string(),
        started: now,
        finished: None,
        status: BackupStatus::Running,
        frozen: None,
        snapshots: vec![],
        problems: vec![],
    };
    // A runner's backup names the runner: while it lives, nobody else
    // takes the backup for one a dead process left (`state/inflight.rs`).
    s.transaction(|tx| {
        tx.insert_backup(&rec)?;
        match &owner {
            Some(o) => tx.own_backup(policy, &id, o),
            None => Ok(()),
        }
    })?;
    failpoint::hit(failpoint::BACKUP_STARTED);
    Ok(id)
}
