//! The run mode's bookkeeping beside the catalog: consecutive failures per
//! policy, alerts opening and closing, the scripts each backup ran, and
//! retries waiting for their time, scheduled runs skipped because the
//! previous one was still in flight, and small runner notes (the date of
//! the last daily summary).
//!
//! These writes do not bump the serial: they describe how backups went,
//! not the managed objects a plan compares.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::{parse_ts, ts, Alert, StateResult, Store};

/// One script run of a backup attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptRun {
    /// 1 for the first attempt, 2 for the first retry, ...
    pub attempt: u32,
    /// `before`, `after` or `complete`.
    pub step: String,
    pub ok: bool,
    pub exit_code: Option<i32>,
    /// How it ended, in words (`exit status 0`, `timed out after 30s`, ...).
    pub detail: String,
    /// Captured standard error (bounded), empty when not collected.
    pub stderr: String,
    pub at: DateTime<Utc>,
}

/// A policy run whose last attempt failed and whose next attempt waits for
/// `due` (the policy's `retries.wait` after the failure).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retry {
    pub policy: String,
    /// The scheduled slot the run is for.
    pub slot: DateTime<Utc>,
    /// The number of the attempt to make (2 for the first retry).
    pub attempt: u32,
    pub due: DateTime<Utc>,
}

/// A scheduled slot that did not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub policy: String,
    pub slot: DateTime<Utc>,
    pub at: DateTime<Utc>,
    pub reason: String,
}

impl Store {
    /// The retries waiting for their time, by policy.
    pub fn retries(&self) -> StateResult<std::collections::BTreeMap<String, Retry>> {
        let mut st = self
            .conn
            .prepare("SELECT policy, slot, attempt, due FROM policy_retries")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = std::collections::BTreeMap::new();
        for row in rows {
            let (policy, slot, attempt, due) = row.map_err(|e| self.err(e))?;
            let retry = Retry {
                slot: parse_ts(&self.path, &slot)?,
                due: parse_ts(&self.path, &due)?,
                policy: policy.clone(),
                attempt,
            };
            out.insert(policy, retry);
        }
        Ok(out)
    }

    /// Schedules the next attempt of a run (replacing any other of the policy).
    pub fn set_retry(&mut self, r: &Retry) -> StateResult<()> {
        self.retrying(|s| s.set_retry_once(r))
    }

    fn set_retry_once(&mut self, r: &Retry) -> StateResult<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO policy_retries (policy, slot, attempt, due) VALUES (?1, ?2, ?3, ?4)",
                params![r.policy, ts(r.slot), r.attempt, ts(r.due)],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// A new slot of `r.policy` starts: the slot is spent and its first
    /// attempt recorded as under way, in one transaction.
    pub fn begin_slot(&mut self, r: &Retry) -> StateResult<()> {
        self.retrying(|s| s.begin_slot_once(r))
    }

    fn begin_slot_once(&mut self, r: &Retry) -> StateResult<()> {
        self.in_transaction(|tx| {
            spend_slot(tx, &r.policy, r.slot)?;
            tx.execute(
                "INSERT OR REPLACE INTO policy_retries (policy, slot, attempt, due) VALUES (?1, ?2, ?3, ?4)",
                params![r.policy, ts(r.slot), r.attempt, ts(r.due)],
            )?;
            Ok(())
        })
    }

    /// A slot skipped because the policy's previous run is in flight: the
    /// slot is spent and the skip recorded, in one transaction.
    pub fn skip_run(&mut self, k: &Skipped) -> StateResult<()> {
        self.retrying(|s| s.skip_run_once(k))
    }

    fn skip_run_once(&mut self, k: &Skipped) -> StateResult<()> {
        self.in_transaction(|tx| {
            spend_slot(tx, &k.policy, k.slot)?;
            tx.execute(
                "INSERT INTO skipped_runs (policy, slot, at, reason) VALUES (?1, ?2, ?3, ?4)",
                params![k.policy, ts(k.slot), ts(k.at), k.reason],
            )?;
            Ok(())
        })
    }

    /// Runs `f` in one transaction of the run bookkeeping (no serial bump).
    fn in_transaction(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>,
    ) -> StateResult<()> {
        let path = self.path.clone();
        let sq = |source| super::replica::sqlite_err(&path, source);
        let tx = self.conn.transaction().map_err(sq)?;
        f(&tx).map_err(sq)?;
        tx.commit().map_err(sq)
    }

    /// Records the backup a slot's run made, if that slot is still the
    /// policy's last one.
    pub fn set_last_backup(
        &mut self,
        policy: &str,
        slot: DateTime<Utc>,
        backup_id: &str,
    ) -> StateResult<()> {
        self.retrying(|s| s.set_last_backup_once(policy, slot, backup_id))
    }

    fn set_last_backup_once(
        &mut self,
        policy: &str,
        slot: DateTime<Utc>,
        backup_id: &str,
    ) -> StateResult<()> {
        self.conn
            .execute(
                "UPDATE policy_runs SET last_backup = ?3 WHERE policy = ?1 AND last_slot = ?2",
                params![policy, ts(slot), backup_id],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Drops the policy's waiting retry, if any.
    pub fn clear_retry(&mut self, policy: &str) -> StateResult<()> {
        self.retrying(|s| s.clear_retry_once(policy))
    }

    fn clear_retry_once(&mut self, policy: &str) -> StateResult<()> {
        self.conn
            .execute(
                "DELETE FROM policy_retries WHERE policy = ?1",
                params![policy],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The skipped slots of `policy` (all policies when `None`), oldest first.
    pub fn skipped(&self, policy: Option<&str>) -> StateResult<Vec<Skipped>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT policy, slot, at, reason FROM skipped_runs
                 WHERE ?1 IS NULL OR policy = ?1 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![policy], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (policy, slot, at, reason) = row.map_err(|e| self.err(e))?;
            out.push(Skipped {
                policy,
                slot: parse_ts(&self.path, &slot)?,
                at: parse_ts(&self.path, &at)?,
                reason,
            });
        }
        Ok(out)
    }

    /// Consecutive failed runs of `policy` since its last success.
    pub fn failures(&self, policy: &str) -> StateResult<u32> {
        self.conn
            .query_row(
                "SELECT failures FROM policy_health WHERE policy = ?1",
                params![policy],
                |r| r.get::<_, u32>(0),
            )
            .optional()
            .map(|o| o.unwrap_or(0))
            .map_err(|e| self.err(e))
    }

    /// Counts one more failed run; returns the new count.
    pub fn record_failure(&mut self, policy: &str) -> StateResult<u32> {
        self.retrying(|s| s.record_failure_once(policy))
    }

    fn record_failure_once(&mut self, policy: &str) -> StateResult<u32> {
        let n = self.failures(policy)? + 1;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO policy_health (policy, failures) VALUES (?1, ?2)",
                params![policy, n],
            )
            .map_err(|e| self.err(e))?;
        Ok(n)
    }

    /// A successful run: the count starts over.
    pub fn record_success(&mut self, policy: &str) -> StateResult<()> {
        self.retrying(|s| s.record_success_once(policy))
    }

    fn record_success_once(&mut self, policy: &str) -> StateResult<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO policy_health (policy, failures) VALUES (?1, 0)",
                params![policy],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Opens an alert for `policy` unless one is open already; returns the
    /// new alert.
    pub fn open_policy_alert(
        &mut self,
        policy: &str,
        opened: DateTime<Utc>,
        message: &str,
    ) -> StateResult<Option<Alert>> {
        self.retrying(|s| s.open_policy_alert_once(policy, opened, message))
    }

    pub(super) fn open_policy_alert_once(
        &mut self,
        policy: &str,
        opened: DateTime<Utc>,
        message: &str,
    ) -> StateResult<Option<Alert>> {
        if self.open_alerts()?.iter().any(|a| a.policy == policy) {
            return Ok(None);
        }
        self.conn
            .execute(
                "INSERT INTO alerts (policy, opened, message) VALUES (?1, ?2, ?3)",
                params![policy, ts(opened), message],
            )
            .map_err(|e| self.err(e))?;
        Ok(Some(Alert {
            id: self.conn.last_insert_rowid(),
            policy: policy.to_string(),
            opened,
            message: message.to_string(),
        }))
    }

    /// Closes the alerts of `policy` (with `before`: those opened before
    /// it; a success of a run that started then answers them, not those the
    /// run opened itself, such as a target that left as it started);
    /// returns those it closed.
    pub fn close_policy_alerts(
        &mut self,
        policy: &str,
        before: Option<DateTime<Utc>>,
        closed: DateTime<Utc>,
    ) -> StateResult<Vec<Alert>> {
        self.retrying(|s| s.close_policy_alerts_once(policy, before, closed))
    }

    pub(super) fn close_policy_alerts_once(
        &mut self,
        policy: &str,
        before: Option<DateTime<Utc>>,
        closed: DateTime<Utc>,
    ) -> StateResult<Vec<Alert>> {
        let open: Vec<Alert> = self
            .open_alerts()?
            .into_iter()
            .filter(|a| a.policy == policy && before.is_none_or(|b| a.opened < b))
            .collect();
        self.conn
            .execute(
                "UPDATE alerts SET closed = ?2
                 WHERE policy = ?1 AND closed IS NULL AND (?3 IS NULL OR opened < ?3)",
                params![policy, ts(closed), before.map(ts)],
            )
            .map_err(|e| self.err(e))?;
        Ok(open)
    }

    pub fn insert_script_run(
        &mut self,
        policy: &str,
        backup_id: &str,
        run: &ScriptRun,
    ) -> StateResult<()> {
        self.retrying(|s| s.insert_script_run_once(policy, backup_id, run))
    }

    fn insert_script_run_once(
        &mut self,
        policy: &str,
        backup_id: &str,
        run: &ScriptRun,
    ) -> StateResult<()> {
        self.conn
            .execute(
                "INSERT INTO script_runs (policy, backup_id, attempt, step, ok, exit_code, detail, stderr, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    policy,
                    backup_id,
                    run.attempt,
                    run.step,
                    run.ok,
                    run.exit_code,
                    run.detail,
                    run.stderr,
                    ts(run.at)
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The scripts a backup ran, in order.
    pub fn script_runs(&self, policy: &str, backup_id: &str) -> StateResult<Vec<ScriptRun>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT attempt, step, ok, exit_code, detail, stderr, at FROM script_runs
                 WHERE policy = ?1 AND backup_id = ?2 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![policy, backup_id], |r| {
                Ok((
                    r.get::<_, u32>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, Option<i32>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (attempt, step, ok, exit_code, detail, stderr, at) =
                row.map_err(|e| self.err(e))?;
            out.push(ScriptRun {
                attempt,
                step,
                ok,
                exit_code,
                detail,
                stderr,
                at: parse_ts(&self.path, &at)?,
            });
        }
        Ok(out)
    }

    /// A runner note (kept in the meta table under `note.KEY`).
    pub fn note(&self, key: &str) -> StateResult<Option<String>> {
        self.conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                params![format!("note.{key}")],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn set_note(&mut self, key: &str, value: &str) -> StateResult<()> {
        self.retrying(|s| s.set_note_once(key, value))
    }

    fn set_note_once(&mut self, key: &str, value: &str) -> StateResult<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                params![format!("note.{key}"), value],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

/// Makes `slot` the policy's last slot, with no backup yet.
fn spend_slot(
    tx: &rusqlite::Transaction<'_>,
    policy: &str,
    slot: DateTime<Utc>,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO policy_runs (policy, last_slot, last_backup) VALUES (?1, ?2, NULL)
         ON CONFLICT (policy) DO UPDATE SET last_slot = excluded.last_slot, last_backup = NULL",
        params![policy, ts(slot)],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_count_up_and_alerts_open_once_and_close() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("state.db")).unwrap();
        let t: DateTime<Utc> = "2026-11-22T10:00:00Z".parse().unwrap();
        assert_eq!(s.failures("web").unwrap(), 0);
        assert_eq!(s.record_failure("web").unwrap(), 1);
        assert_eq!(s.record_failure("web").unwrap(), 2);
        assert!(s.open_policy_alert("web", t, "down").unwrap().is_some());
        assert!(s.open_policy_alert("web", t, "down").unwrap().is_none());
        assert_eq!(s.open_alerts().unwrap().len(), 1);
        s.record_success("web").unwrap();
        assert_eq!(s.failures("web").unwrap(), 0);
        assert_eq!(s.close_policy_alerts("web", Some(t), t).unwrap().len(), 0);
        assert_eq!(s.close_policy_alerts("web", None, t).unwrap().len(), 1);
        assert!(s.open_alerts().unwrap().is_empty());
        assert_eq!(s.note("x").unwrap(), None);
        s.set_note("x", "2026-11-22").unwrap();
        assert_eq!(s.note("x").unwrap().as_deref(), Some("2026-11-22"));
    }
}
