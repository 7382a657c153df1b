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

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};

mod catalog;
mod health;
mod store;
pub use catalog::{
    Alert, ArtifactKind, BackupRecord, BackupStatus, Frozen, SnapshotOwner, SnapshotRecord,
    VpcVersionRecord,
};
pub use health::{Retry, ScriptRun, Skipped};
pub use store::{
    new_id, SharedStore, Snapshot, StateError, StateResult, Store, Tx, SCHEMA_VERSION,
};
use store::{parse_ts, ts};

/// How long a lock is honoured without renewal: a holder killed with
/// `kill -9` does not wedge the workspace forever.
pub const LOCK_TTL_MINUTES: i64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub id: String,
    pub holder: String,
    pub operation: String,
    pub acquired: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

impl Store {
    /// Takes the workspace lock for `operation`, or says who holds it.
    pub fn lock(&mut self, operation: &str) -> StateResult<LockInfo> {
        let path = self.path.clone();
        let sq = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sq)?;
        if let Some(held) = read_lock(&tx, &path)? {
            // An expired lock belongs to a holder that died; it is taken over.
            // Expiry is judged by the real clock only: a `--now` rehearsal in
            // the future must not break somebody's live lock.
            if held.expires > Utc::now() && holder_alive(&held.holder) {
                return Err(StateError::Locked {
                    id: held.id,
                    holder: held.holder,
                    operation: held.operation,
                    acquired: ts(held.acquired),
                });
            }
        }
        let info = LockInfo {
            id: new_id(),
            holder: holder_name(),
            operation: operation.to_string(),
            acquired: Utc::now(),
            expires: Utc::now() + Duration::minutes(LOCK_TTL_MINUTES),
        };
        tx.execute(
            "INSERT OR REPLACE INTO lock (slot, id, holder, operation, acquired, expires) VALUES (1, ?1, ?2, ?3, ?4, ?5)",
            params![info.id, info.holder, info.operation, ts(info.acquired), ts(info.expires)],
        )
        .map_err(sq)?;
        tx.commit().map_err(sq)?;
        Ok(info)
    }

    /// Takes the run-mode lease for `ttl`, or says who holds it. A lease
    /// that expired belongs to a runner that died and is taken over.
    pub fn take_lease(&mut self, ttl: Duration) -> StateResult<LockInfo> {
        let path = self.path.clone();
        let sq = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sq)?;
        let held = tx
            .query_row(
                "SELECT id, holder, acquired, expires FROM lease WHERE slot = 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(sq)?;
        if let Some((id, holder, acquired, expires)) = held {
            let expires = parse_ts(&path, &expires)?;
            if expires > Utc::now() && holder_alive(&holder) {
                return Err(StateError::Leased {
                    id,
                    holder,
                    acquired,
                    expires: ts(expires),
                });
            }
        }
        let info = LockInfo {
            id: new_id(),
            holder: holder_name(),
            operation: "run".into(),
            acquired: Utc::now(),
            expires: Utc::now() + ttl,
        };
        tx.execute(
            "INSERT OR REPLACE INTO lease (slot, id, holder, acquired, expires) VALUES (1, ?1, ?2, ?3, ?4)",
            params![info.id, info.holder, ts(info.acquired), ts(info.expires)],
        )
        .map_err(sq)?;
        tx.commit().map_err(sq)?;
        Ok(info)
    }

    /// Extends the lease; fails when another runner took it over.
    pub fn renew_lease(&mut self, id: &str, ttl: Duration) -> StateResult<()> {
        let n = self
            .conn
            .execute(
                "UPDATE lease SET expires = ?2 WHERE id = ?1",
                params![id, ts(Utc::now() + ttl)],
            )
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(StateError::Conflict(format!(
                "the run lease {id} was taken over by another runner"
            )));
        }
        Ok(())
    }

    pub fn release_lease(&mut self, id: &str) -> StateResult<()> {
        self.conn
            .execute("DELETE FROM lease WHERE id = ?1", params![id])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

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

    /// Extends a held lock; long applies call it as they make progress.
    pub fn renew_lock(&mut self, id: &str) -> StateResult<()> {
        let expires = ts(Utc::now() + Duration::minutes(LOCK_TTL_MINUTES));
        let n = self
            .conn
            .execute(
                "UPDATE lock SET expires = ?2 WHERE id = ?1",
                params![id, expires],
            )
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(StateError::Conflict(format!(
                "the state lock {id} was broken by someone else (force-unlock?); stopping"
            )));
        }
        Ok(())
    }

    pub fn unlock(&mut self, id: &str) -> StateResult<()> {
        self.conn
            .execute("DELETE FROM lock WHERE id = ?1", params![id])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn current_lock(&self) -> StateResult<Option<LockInfo>> {
        read_lock(&self.conn, &self.path)
    }

    /// Breaks a lock left by a holder that is gone. Refuses a wrong id so
    /// that a typo cannot break somebody else's lock.
    pub fn force_unlock(&mut self, id: &str) -> StateResult<LockInfo> {
        let held = self
            .current_lock()?
            .filter(|l| l.id == id)
            .ok_or_else(|| StateError::NoSuchLock(id.to_string()))?;
        self.unlock(id)?;
        Ok(held)
    }
}

/// Could the holder of a lock or lease still be running? A holder on this
/// host whose process is gone is not: its lock is taken over at once, so a
/// killed lifeboat does not block the next one until the lock expires. A
/// holder on another host, or a pid now reused, counts as alive (the safe
/// side: wait or force-unlock).
fn holder_alive(holder: &str) -> bool {
    let this_host = holder_name();
    let host_of = |h: &str| {
        h.split_once('@')
            .and_then(|(_, rest)| rest.split(" (pid ").next().map(str::to_string))
    };
    let pid = holder
        .rsplit_once("(pid ")
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .and_then(|p| p.parse::<u32>().ok());
    match (host_of(holder), host_of(&this_host), pid) {
        (Some(h), Some(me), Some(pid)) if h == me => {
            let proc = Path::new("/proc");
            !proc.is_dir() || proc.join(pid.to_string()).exists()
        }
        _ => true,
    }
}

fn holder_name() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host} (pid {})", std::process::id())
}

fn read_lock(conn: &Connection, path: &Path) -> StateResult<Option<LockInfo>> {
    let sq = |source| StateError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let row = conn
        .query_row(
            "SELECT id, holder, operation, acquired, expires FROM lock WHERE slot = 1",
            [],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            },
        )
        .optional()
        .map_err(sq)?;
    match row {
        None => Ok(None),
        Some((id, holder, operation, acquired, expires)) => Ok(Some(LockInfo {
            id,
            holder,
            operation,
            acquired: parse_ts(path, &acquired)?,
            expires: parse_ts(path, &expires)?,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_lock_id_and_force_unlock_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut a = Store::open(&path).unwrap();
        let mut b = Store::open(&path).unwrap();
        let held = a.lock("apply").unwrap();
        match b.lock("apply") {
            Err(StateError::Locked { id, .. }) => assert_eq!(id, held.id),
            other => panic!("expected Locked, got {other:?}"),
        }
        assert!(matches!(
            b.force_unlock("wrong"),
            Err(StateError::NoSuchLock(_))
        ));
        b.force_unlock(&held.id).unwrap();
        b.lock("apply").unwrap();
        assert!(a.renew_lock(&held.id).is_err());
    }
}
