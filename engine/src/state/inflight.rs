//! Backups in flight in a runner that does not hold the state lock.
//!
//! The runner holds the state lock only around its short commits, not
//! through a backup's wait for AWS, so holding the lock no longer says that
//! no backup is in flight. A backup the runner starts records its owner
//! (the runner's lease) with its `running` row, in the same transaction;
//! while that lease is live, the backup is the runner's own and nobody else
//! closes it, adopts or deletes its snapshots, removes its policy or runs a
//! backup of that policy beside it. Once the lease is gone (its runner died,
//! or another took over), the backup is an orphan as before, closed by the
//! next reconciliation. A `running` backup without an owner was taken under
//! the state lock held throughout (`lifeboat backup`): found by a holder of
//! the lock, its process is gone.

use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::{BackupStatus, StateError, StateResult, Store, Tx};

/// The meta key under which a running backup's owner is kept.
fn key(policy: &str, id: &str) -> String {
    format!("owner.{policy}/{id}")
}

/// Who runs a backup: the runner's lease, and how it prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub lease: String,
    pub holder: String,
}

/// A backup in flight in a live runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    pub policy: String,
    /// The policy's account, by name.
    pub account: String,
    pub backup: String,
    pub started: DateTime<Utc>,
    pub owner: Owner,
}

impl InFlight {
    /// The refusal of `what` (an apply's change, a backup, a freeze, an
    /// import) while this backup is in flight.
    pub fn refuse(&self, what: &str) -> StateError {
        StateError::InFlight {
            policy: self.policy.clone(),
            backup: self.backup.clone(),
            started: super::ts(self.started),
            holder: self.owner.holder.clone(),
            lease: self.owner.lease.clone(),
            what: what.to_string(),
        }
    }
}

impl Tx<'_> {
    /// Records `owner` as the runner of the backup `id` of `policy`: called
    /// in the transaction that records it `running`.
    pub fn own_backup(&mut self, policy: &str, id: &str, owner: &Owner) -> StateResult<()> {
        let value = serde_json::to_string(owner).unwrap_or_default();
        self.tx
            .execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                params![key(policy, id), value],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Forgets the owner of a backup that ended (closed or deleted).
    pub(super) fn disown_backup(&mut self, policy: &str, id: &str) -> StateResult<()> {
        self.tx
            .execute("DELETE FROM meta WHERE key = ?1", params![key(policy, id)])
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

impl Store {
    /// The owner recorded for the backup `id` of `policy`, if any.
    pub fn backup_owner(&self, policy: &str, id: &str) -> StateResult<Option<Owner>> {
        let raw: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                params![key(policy, id)],
                |r| r.get(0),
            )
            .ok();
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    /// The backups in flight in a live runner (of `policy`, or of all):
    /// `running`, with an owner whose lease is the live lease now. On
    /// shared state, what other hosts committed counts: read the latest.
    pub fn in_flight(&mut self, policy: Option<&str>) -> StateResult<Vec<InFlight>> {
        self.sync()?;
        let Some(lease) = self.live_lease()? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for b in self.backups(policy)? {
            if b.status != BackupStatus::Running {
                continue;
            }
            match self.backup_owner(&b.policy, &b.id)? {
                Some(owner) if owner.lease == lease.id => out.push(InFlight {
                    policy: b.policy,
                    account: b.account,
                    backup: b.id,
                    started: b.started,
                    owner,
                }),
                _ => {}
            }
        }
        Ok(out)
    }

    /// Forgets `owner` as the runner of its `running` backups of `policy`:
    /// a runner's backup that ended in an error is no longer in flight, and
    /// the next reconciliation (the runner's own, or any lock holder's)
    /// closes it. Returns the backups disowned.
    pub fn disown_running(&mut self, policy: &str, owner: &Owner) -> StateResult<Vec<String>> {
        self.sync()?;
        let mut mine = Vec::new();
        for b in self.backups(Some(policy))? {
            if b.status == BackupStatus::Running
                && self.backup_owner(&b.policy, &b.id)?.as_ref() == Some(owner)
            {
                mine.push(b.id);
            }
        }
        if !mine.is_empty() {
            self.transaction(|tx| {
                for id in &mine {
                    tx.disown_backup(policy, id)?;
                }
                Ok(())
            })?;
        }
        Ok(mine)
    }

    /// Is the backup `id` of `policy` in flight in a live runner?
    pub fn owned_by_live_runner(&mut self, policy: &str, id: &str) -> StateResult<bool> {
        Ok(self.in_flight(Some(policy))?.iter().any(|f| f.backup == id))
    }
}
