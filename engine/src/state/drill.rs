//! Drills of recovery scenarios: one row per drill, written when it starts
//! (with the process that runs it, so that another process can tell a
//! drill whose runner died from one still running), then with the check's
//! result, the times to recover and how it ended. What a drill created is
//! in the restore catalog, under restores whose `drill` column is its id.

use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::holder::HolderId;
use super::store::{parse_ts, ts, StateError, StateResult, Store, Tx};

/// Where a drill is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrillStatus {
    /// Restoring, checking or tearing down (or its process died there).
    Running,
    /// Checked; what it made is kept until `keep_until`, then torn down.
    Kept,
    /// Everything restored, the check passed, everything torn down.
    Passed,
    /// A restore, the check or the teardown failed (`problem` says which).
    Failed,
}

impl DrillStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DrillStatus::Running => "running",
            DrillStatus::Kept => "kept",
            DrillStatus::Passed => "passed",
            DrillStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => DrillStatus::Running,
            "kept" => DrillStatus::Kept,
            "passed" => DrillStatus::Passed,
            "failed" => DrillStatus::Failed,
            _ => return None,
        })
    }

    /// Whether the drill has ended (its teardown ran).
    pub fn is_final(self) -> bool {
        matches!(self, DrillStatus::Passed | DrillStatus::Failed)
    }
}

/// One drill of a recovery scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillRecord {
    pub id: String,
    pub scenario: String,
    pub started: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<DateTime<Utc>>,
    pub status: DrillStatus,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub problem: String,
    /// The process running it.
    pub holder: HolderId,
    /// The check script's exit code (`None`: no check, not run yet, or
    /// killed by its timeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_exit: Option<i32>,
    /// Whether the check passed (`None`: not run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_ok: Option<bool>,
    /// The end of the check's output.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub check_output: String,
    /// Seconds from the start until the last step was ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_seconds: Option<i64>,
    /// The age of the oldest backup used, at the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_seconds: Option<i64>,
    /// A kept drill's teardown time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_until: Option<DateTime<Utc>>,
    /// When its teardown finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torn_down: Option<DateTime<Utc>>,
}

impl DrillRecord {
    /// A drill starting now in this process.
    pub fn new(id: &str, scenario: &str, started: DateTime<Utc>) -> DrillRecord {
        DrillRecord {
            id: id.to_string(),
            scenario: scenario.to_string(),
            started,
            finished: None,
            status: DrillStatus::Running,
            problem: String::new(),
            holder: HolderId::current(),
            check_exit: None,
            check_ok: None,
            check_output: String::new(),
            rto_seconds: None,
            rpo_seconds: None,
            keep_until: None,
            torn_down: None,
        }
    }
}

type Row = (
    [String; 5],
    Option<String>,
    Option<i32>,
    Option<bool>,
    String,
    Option<i64>,
    Option<i64>,
    [Option<String>; 2],
);

impl Store {
    /// Every drill, oldest first.
    pub fn drills(&self) -> StateResult<Vec<DrillRecord>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, scenario, started, status, holder, finished, check_exit, check_ok,
                    check_output, rto_seconds, rpo_seconds, keep_until, torn_down, problem
                 FROM drills ORDER BY started, id",
            )
            .map_err(|e| self.err(e))?;
        let rows: Vec<(Row, String)> = st
            .query_map([], |r| {
                Ok((
                    (
                        [r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?],
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                        r.get(9)?,
                        r.get(10)?,
                        [r.get(11)?, r.get(12)?],
                    ),
                    r.get(13)?,
                ))
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))?;
        let corrupt = |m: String| StateError::Corrupt {
            path: self.path.clone(),
            message: m,
        };
        let time = |t: Option<String>| t.map(|t| parse_ts(&self.path, &t)).transpose();
        let mut out = Vec::with_capacity(rows.len());
        for (row, problem) in rows {
            let (s, finished, check_exit, check_ok, check_output, rto, rpo, [keep, torn]) = row;
            let [id, scenario, started, status, holder] = s;
            let status = DrillStatus::parse(&status)
                .ok_or_else(|| corrupt(format!("drill {id}: status {status:?}")))?;
            let holder: HolderId = serde_json::from_str(&holder)
                .map_err(|e| corrupt(format!("drill {id}: holder: {e}")))?;
            out.push(DrillRecord {
                started: parse_ts(&self.path, &started)?,
                finished: time(finished)?,
                keep_until: time(keep)?,
                torn_down: time(torn)?,
                id,
                scenario,
                status,
                problem,
                holder,
                check_exit,
                check_ok,
                check_output,
                rto_seconds: rto,
                rpo_seconds: rpo,
            });
        }
        Ok(out)
    }

    /// The drill `id`.
    pub fn drill(&self, id: &str) -> StateResult<Option<DrillRecord>> {
        Ok(self.drills()?.into_iter().find(|d| d.id == id))
    }
}

impl Tx<'_> {
    /// Records a drill, or its progress (everything but its id, scenario
    /// and start).
    pub fn put_drill(&mut self, d: &DrillRecord) -> StateResult<()> {
        let holder = serde_json::to_string(&d.holder).expect("a holder serializes");
        self.tx
            .execute(
                "INSERT INTO drills (id, scenario, started, finished, status, problem, holder,
                    check_exit, check_ok, check_output, rto_seconds, rpo_seconds, keep_until, torn_down)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                 ON CONFLICT (id) DO UPDATE SET
                    finished = excluded.finished, status = excluded.status,
                    problem = excluded.problem, holder = excluded.holder,
                    check_exit = excluded.check_exit, check_ok = excluded.check_ok,
                    check_output = excluded.check_output, rto_seconds = excluded.rto_seconds,
                    rpo_seconds = excluded.rpo_seconds, keep_until = excluded.keep_until,
                    torn_down = excluded.torn_down",
                params![
                    d.id,
                    d.scenario,
                    ts(d.started),
                    d.finished.map(ts),
                    d.status.as_str(),
                    d.problem,
                    holder,
                    d.check_exit,
                    d.check_ok,
                    d.check_output,
                    d.rto_seconds,
                    d.rpo_seconds,
                    d.keep_until.map(ts),
                    d.torn_down.map(ts),
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drill_is_recorded_and_read_back_with_its_holder_and_results() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = Store::open(&dir.path().join("state.db")).unwrap();
        let t0: DateTime<Utc> = "2026-12-01T10:00:00Z".parse().unwrap();
        let mut d = DrillRecord::new("d-1", "prod-west", t0);
        st.transaction(|tx| tx.put_drill(&d)).unwrap();
        assert_eq!(st.drills().unwrap(), vec![d.clone()]);
        d.status = DrillStatus::Failed;
        d.problem = "the check failed: exit status 3".into();
        d.check_exit = Some(3);
        d.check_ok = Some(false);
        d.rto_seconds = Some(42);
        d.rpo_seconds = Some(3600);
        d.finished = Some(t0 + chrono::Duration::minutes(5));
        d.torn_down = d.finished;
        st.transaction(|tx| tx.put_drill(&d)).unwrap();
        assert_eq!(st.drill("d-1").unwrap(), Some(d));
    }
}
