//! The resource-control operations log: one row per target per operation
//! (what was asked, when it was verified, how it ended). Like the run
//! mode's bookkeeping these writes do not bump the serial: a plan does not
//! read them.

use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::{parse_ts, ts, StateResult, Store};

/// One target's part in one operation of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlRecord {
    pub group: String,
    /// `instance i-…`, `rds NAME`, `aurora NAME`.
    pub target: String,
    /// `off`, `hibernate`, `on`.
    pub action: String,
    /// When the call was made (or the operation looked, for a target that
    /// was in the state asked for already).
    pub requested: DateTime<Utc>,
    /// When the target was seen in the state asked for.
    pub verified: Option<DateTime<Utc>>,
    /// `done`, `already`, `retried`, `failed`, `gone`, `skipped`.
    pub result: String,
    pub detail: String,
}

impl Store {
    /// Appends the rows of one operation.
    pub fn record_control(&mut self, rows: &[ControlRecord]) -> StateResult<()> {
        for r in rows {
            self.conn
                .execute(
                    "INSERT INTO control_operations
                        (grp, target, action, requested, verified, result, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        r.group,
                        r.target,
                        r.action,
                        ts(r.requested),
                        r.verified.map(ts),
                        r.result,
                        r.detail
                    ],
                )
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Records when the runner last ran an operation (or a database look)
    /// of a group, under `key` beside the policies' last slots, in one
    /// statement. The serial stays: a plan does not read it, and the
    /// runner writes it without the state lock (a saved plan must not go
    /// stale because a group acted).
    pub fn mark_control(&mut self, marks: &[(String, DateTime<Utc>)]) -> StateResult<()> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        for (key, at) in marks {
            tx.execute(
                "INSERT OR REPLACE INTO policy_runs (policy, last_slot, last_backup) VALUES (?1, ?2, NULL)",
                params![key, ts(*at)],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Every operation row, oldest first.
    pub fn control_log(&self) -> StateResult<Vec<ControlRecord>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT grp, target, action, requested, verified, result, detail
                 FROM control_operations ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (group, target, action, requested, verified, result, detail) =
                row.map_err(|e| self.err(e))?;
            out.push(ControlRecord {
                group,
                target,
                action,
                requested: parse_ts(&self.path, &requested)?,
                verified: verified.map(|v| parse_ts(&self.path, &v)).transpose()?,
                result,
                detail,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_logged_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("state.db")).unwrap();
        let t = |h: u32| chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 1, h, 0, 0).unwrap();
        let row = |target: &str, verified| ControlRecord {
            group: "nightly".into(),
            target: target.into(),
            action: "off".into(),
            requested: t(20),
            verified,
            result: "done".into(),
            detail: String::new(),
        };
        s.record_control(&[row("instance i-1", Some(t(21))), row("rds db", None)])
            .unwrap();
        assert_eq!(
            s.control_log().unwrap(),
            vec![row("instance i-1", Some(t(21))), row("rds db", None)]
        );
    }
}
