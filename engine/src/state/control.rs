//! The resource-control operations log: one row per target per operation
//! (what was asked, when it was verified, how it ended). Like the run
//! mode's bookkeeping these writes do not bump the serial: a plan does not
//! read them.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::{parse_ts, ts, Alert, StateResult, Store};

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

/// What one operation writes, in one transaction: its rows, its alert
/// opened (or the group's closed) and the runner's marks.
#[derive(Debug, Clone, Copy)]
pub struct ControlWrite<'a> {
    pub rows: &'a [ControlRecord],
    /// An hourly database look's rows.
    pub look: bool,
    /// The alert's owner (`resource_control_group.NAME`).
    pub owner: &'a str,
    /// Opens an alert with this message; `None` closes the open one when
    /// `close` (a look, which sees only databases, closes nothing).
    pub alert: Option<&'a str>,
    pub close: bool,
    pub at: DateTime<Utc>,
    /// Keys beside the policies' last slots and their instants (the
    /// runner's last operation and look, a by-hand operation).
    pub marks: &'a [(String, DateTime<Utc>)],
}

impl Store {
    /// Writes an operation: its rows, its alert and marks, all or nothing
    /// (a crash between them would leave an operation logged but not
    /// remembered, and done again). Returns the alert it opened. The
    /// serial stays: a plan does not read these, and the runner writes
    /// them without the state lock (a saved plan must not go stale
    /// because a group acted).
    pub fn write_control(&mut self, w: &ControlWrite<'_>) -> StateResult<Option<Alert>> {
        self.retrying(|s| s.write_control_once(w))
    }

    fn write_control_once(&mut self, w: &ControlWrite<'_>) -> StateResult<Option<Alert>> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| self.err(e))?;
        match self.write_control_in(w) {
            Ok(a) => {
                self.conn.execute_batch("COMMIT").map_err(|e| self.err(e))?;
                Ok(a)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    fn write_control_in(&mut self, w: &ControlWrite<'_>) -> StateResult<Option<Alert>> {
        let operation: i64 = self
            .conn
            .query_row(
                "SELECT COALESCE(MAX(operation), 0) + 1 FROM control_operations",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        for r in w.rows {
            self.conn
                .execute(
                    "INSERT INTO control_operations
                        (grp, target, action, requested, verified, result, detail, operation, look)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        r.group,
                        r.target,
                        r.action,
                        ts(r.requested),
                        r.verified.map(ts),
                        r.result,
                        r.detail,
                        operation,
                        w.look
                    ],
                )
                .map_err(|e| self.err(e))?;
        }
        for (key, at) in w.marks {
            self.conn
                .execute(
                    "INSERT OR REPLACE INTO policy_runs (policy, last_slot, last_backup) VALUES (?1, ?2, NULL)",
                    params![key, ts(*at)],
                )
                .map_err(|e| self.err(e))?;
        }
        match w.alert {
            // The `_once` forms: this is inside a transaction already, where a
            // pull (what the retrying forms start with) cannot run.
            Some(message) => self.open_policy_alert_once(w.owner, w.at, message),
            None => {
                if w.close {
                    self.close_policy_alerts_once(w.owner, None, w.at)?;
                }
                Ok(None)
            }
        }
    }

    /// The targets (`instance i-…`, `rds NAME`) group `group`'s last "off"
    /// stopped (or tried to), with the databases the looks after it
    /// stopped again: what an "on" starts and a look may stop again.
    pub fn control_stopped(&self, group: &str) -> StateResult<BTreeSet<String>> {
        let mut st = self
            .conn
            .prepare(
                "WITH last AS (SELECT MAX(operation) AS op FROM control_operations
                               WHERE grp = ?1 AND look = 0 AND action IN ('off', 'hibernate'))
                 SELECT target FROM control_operations, last
                 WHERE grp = ?1 AND (
                   (operation = last.op AND result IN ('done', 'retried', 'failed'))
                   OR (look = 1 AND operation > last.op AND result IN ('done', 'retried')))",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![group], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        let mut out = BTreeSet::new();
        for r in rows {
            out.insert(r.map_err(|e| self.err(e))?);
        }
        Ok(out)
    }

    /// Per group, the operations (and looks) that logged rows since
    /// `since`, and the rows among them that failed: `(operations, failed)`.
    pub fn control_counts(
        &self,
        since: DateTime<Utc>,
    ) -> StateResult<std::collections::BTreeMap<String, (usize, usize)>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT grp, COUNT(DISTINCT operation), SUM(result = 'failed')
                 FROM control_operations WHERE requested >= ?1 GROUP BY grp",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![ts(since)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = std::collections::BTreeMap::new();
        for row in rows {
            let (group, ops, failed) = row.map_err(|e| self.err(e))?;
            out.insert(group, (ops.max(0) as usize, failed.max(0) as usize));
        }
        Ok(out)
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
    fn an_operation_is_written_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("state.db")).unwrap();
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 1, 20, 0, 0).unwrap();
        let rows = [ControlRecord {
            group: "nightly".into(),
            target: "instance i-1".into(),
            action: "off".into(),
            requested: at,
            verified: None,
            result: "failed".into(),
            detail: "still stopping".into(),
        }];
        let marks = [("resource_control_group.nightly".to_string(), at)];
        let w = ControlWrite {
            rows: &rows,
            look: false,
            owner: "resource_control_group.nightly",
            alert: Some("off failed for instance i-1"),
            close: false,
            at,
            marks: &marks,
        };
        // The alert cannot be written: neither are the rows nor the mark.
        s.conn
            .execute_batch(
                "CREATE TRIGGER no_alerts BEFORE INSERT ON alerts
                 BEGIN SELECT RAISE(ABORT, 'no alerts'); END;",
            )
            .unwrap();
        assert!(s.write_control(&w).is_err());
        assert!(s.control_log().unwrap().is_empty());
        assert!(s.last_slots().unwrap().is_empty());
        s.conn.execute_batch("DROP TRIGGER no_alerts").unwrap();
        let opened = s.write_control(&w).unwrap().expect("opened");
        assert_eq!(opened.message, "off failed for instance i-1");
        assert_eq!(s.control_log().unwrap(), rows);
        assert_eq!(s.last_slots().unwrap().len(), 1);
        assert_eq!(
            s.control_stopped("nightly").unwrap(),
            BTreeSet::from(["instance i-1".to_string()])
        );
    }

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
        let rows = [row("instance i-1", Some(t(21))), row("rds db", None)];
        s.write_control(&ControlWrite {
            rows: &rows,
            look: false,
            owner: "resource_control_group.nightly",
            alert: None,
            close: false,
            at: t(21),
            marks: &[],
        })
        .unwrap();
        assert_eq!(
            s.control_log().unwrap(),
            vec![row("instance i-1", Some(t(21))), row("rds db", None)]
        );
    }
}
