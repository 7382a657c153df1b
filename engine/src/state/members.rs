//! The log of membership changes ([`crate::membership`]): which target
//! joined or left which policy, when, why, and by which backup.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::model::TargetKind;
use super::store::{parse_ts, ts, StateError, StateResult, Store, Tx};
use crate::membership::{MemberChange, Move};

impl Tx<'_> {
    pub fn log_member_change(&mut self, c: &MemberChange) -> StateResult<()> {
        self.tx
            .execute(
                "INSERT INTO member_changes (policy, target, kind, change, reason, alert, at, backup_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    c.policy,
                    c.target,
                    c.kind.noun(),
                    c.moved.as_str(),
                    c.reason,
                    c.alert,
                    ts(c.at),
                    c.backup_id
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

impl Store {
    /// The membership changes since `since`, optionally of one policy,
    /// oldest first.
    pub fn member_changes(
        &self,
        policy: Option<&str>,
        since: DateTime<Utc>,
    ) -> StateResult<Vec<MemberChange>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT policy, target, kind, change, reason, alert, at, backup_id
                 FROM member_changes WHERE (?1 IS NULL OR policy = ?1) AND at >= ?2
                 ORDER BY at, id",
            )
            .map_err(|e| self.err(e))?;
        type Row = ([String; 5], bool, String, Option<String>);
        let rows: Vec<Row> = st
            .query_map(params![policy, ts(since)], |r| {
                Ok((
                    [r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?],
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))?;
        let corrupt = |m: String| StateError::Corrupt {
            path: self.path.clone(),
            message: m,
        };
        let mut out = Vec::with_capacity(rows.len());
        for ([policy, target, kind, change, reason], alert, at, backup_id) in rows {
            let kind = match kind.as_str() {
                "instance" => TargetKind::Instance,
                "volume" => TargetKind::Volume,
                "rds" => TargetKind::Rds,
                "aurora" => TargetKind::Aurora,
                other => {
                    return Err(corrupt(format!(
                        "member change of {target}: kind {other:?}"
                    )))
                }
            };
            let moved = match change.as_str() {
                "joined" => Move::Joined,
                "left" => Move::Left,
                other => {
                    return Err(corrupt(format!(
                        "member change of {target}: change {other:?}"
                    )))
                }
            };
            out.push(MemberChange {
                at: parse_ts(&self.path, &at)?,
                policy,
                target,
                kind,
                moved,
                reason,
                alert,
                backup_id,
            });
        }
        Ok(out)
    }
}
