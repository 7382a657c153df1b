//! The reports' memory of what the catalog forgot: when a snapshot record
//! or a backup record is deleted (retention, `state rm`, a snapshot gone
//! from AWS), its report row is written here in the same transaction, with
//! when it went. `lifeboat report` shows these rows beside the live
//! catalog's for `report_retention` (a setting, 90 days by default); rows
//! older than that are pruned by the transaction that deletes a backup.
//!
//! Snapshot rows are taken as each snapshot record goes (the executor
//! deletes a backup's snapshots before the backup itself), one read by
//! primary key and one insert each.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::catalog::{is_note, ArtifactKind, BackupStatus};
use super::store::{parse_ts, ts, StateError, StateResult, Store, Tx};

/// How long deleted records stay in the reports when the configuration
/// says nothing (`report_retention`).
pub const DEFAULT_REPORT_RETENTION_DAYS: i64 = 90;

/// A backup the catalog no longer has, as the backups report showed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedBackup {
    pub policy: String,
    pub id: String,
    pub account: String,
    pub status: String,
    /// Its DR status per destination when it went ([`dr_status`]).
    pub dr_status: String,
    pub started: DateTime<Utc>,
    pub finished: Option<DateTime<Utc>>,
    /// 1 for a scheduled run's first attempt or an ad hoc backup, 2 for the
    /// first retry, ...
    pub attempt: u32,
    pub deleted_at: DateTime<Utc>,
}

/// A snapshot record (EBS snapshot, AMI, DB or cluster snapshot) the
/// catalog no longer has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedSnapshot {
    pub id: String,
    pub policy: String,
    pub backup_id: String,
    pub account: String,
    pub region: String,
    pub kind: ArtifactKind,
    pub target: String,
    pub volume_id: String,
    pub succeeded: bool,
    pub finished: Option<DateTime<Utc>>,
    pub deleted_at: DateTime<Utc>,
}

/// Whether a snapshot of `target` in a backup that ended `status` with
/// `problems` counts as taken: the backup finished (not running, not
/// failed) and none of its problems names the target.
pub fn snapshot_succeeded(status: BackupStatus, problems: &[String], target: &str) -> bool {
    let named = problems.iter().any(|p| {
        !is_note(p)
            && p.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                .any(|w| w == target)
    });
    matches!(status, BackupStatus::Success | BackupStatus::Partial) && !named
}

/// A backup's DR status, one `REGION:ACCOUNT STATUS` per destination
/// (`us-west-2:vault completed; eu-west-1:vault failed`), empty without DR.
pub fn dr_status<'a>(runs: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>) -> String {
    runs.into_iter()
        .map(|(account, region, status)| format!("{region}:{account} {status}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Tx<'_> {
    /// Keeps the report row of snapshot record `id` before it is deleted.
    pub(super) fn remember_snapshot(&mut self, id: &str, at: DateTime<Utc>) -> StateResult<()> {
        type Row = (String, String, String, String, String, String, String);
        let row: Option<(Row, String, String, Option<String>)> = self
            .tx
            .query_row(
                "SELECT s.policy, s.backup_id, b.account, s.region, s.kind, s.target, s.volume_id,
                        b.status, b.problems, b.finished
                 FROM snapshots s JOIN backups b ON b.policy = s.policy AND b.id = s.backup_id
                 WHERE s.id = ?1",
                params![id],
                |r| {
                    Ok((
                        (
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                        ),
                        r.get(7)?,
                        r.get(8)?,
                        r.get(9)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((
            (policy, backup_id, account, region, kind, target, volume),
            status,
            problems,
            finished,
        )) = row
        else {
            return Ok(());
        };
        let problems: Vec<String> = serde_json::from_str(&problems).unwrap_or_default();
        let succeeded =
            BackupStatus::parse(&status).is_some_and(|s| snapshot_succeeded(s, &problems, &target));
        self.tx
            .execute(
                "INSERT OR REPLACE INTO report_snapshots (id, policy, backup_id, account, region,
                    kind, target, volume_id, succeeded, finished, deleted_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    id,
                    policy,
                    backup_id,
                    account,
                    region,
                    kind,
                    target,
                    volume,
                    succeeded,
                    finished,
                    ts(at)
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Keeps the report row of backup `policy`/`id` before it is deleted,
    /// and prunes the rows older than the report retention.
    pub(super) fn remember_backup(
        &mut self,
        policy: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> StateResult<()> {
        let runs: Vec<(String, String, String)> = {
            let mut st = self
                .tx
                .prepare(
                    "SELECT account, region, status FROM dr_runs
                     WHERE policy = ?1 AND backup_id = ?2 ORDER BY account, region",
                )
                .map_err(|e| self.err(e))?;
            let rows = st
                .query_map(params![policy, id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .map_err(|e| self.err(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?
        };
        let dr = dr_status(
            runs.iter()
                .map(|(a, r, s)| (a.as_str(), r.as_str(), s.as_str())),
        );
        self.tx
            .execute(
                "INSERT OR REPLACE INTO report_backups (policy, id, account, status, dr_status,
                    started, finished, attempt, deleted_at)
                 SELECT policy, id, account, status, ?3, started, finished, attempt, ?4
                 FROM backups WHERE policy = ?1 AND id = ?2",
                params![policy, id, dr, ts(at)],
            )
            .map_err(|e| self.err(e))?;
        self.prune_history(at)
    }

    /// Forgets the report rows deleted longer than the report retention
    /// before `now`.
    pub fn prune_history(&mut self, now: DateTime<Utc>) -> StateResult<()> {
        let cutoff = ts(now - self.report_retention);
        for table in ["report_backups", "report_snapshots"] {
            self.tx
                .execute(
                    &format!("DELETE FROM {table} WHERE deleted_at < ?1"),
                    params![cutoff],
                )
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Records that backup `policy`/`id` is the `attempt`th attempt of its
    /// scheduled run (2 for the first retry).
    pub fn set_backup_attempt(&mut self, policy: &str, id: &str, attempt: u32) -> StateResult<()> {
        self.tx
            .execute(
                "UPDATE backups SET attempt = ?3 WHERE policy = ?1 AND id = ?2",
                params![policy, id, attempt],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

impl Store {
    /// How long deleted records stay in the reports (`report_retention`);
    /// the writes of this store prune by it.
    pub fn set_report_retention(&mut self, keep: chrono::Duration) {
        self.report_retention = keep;
    }

    pub fn report_retention(&self) -> chrono::Duration {
        self.report_retention
    }

    /// The attempt number of every backup in the catalog, by policy and id.
    pub fn backup_attempts(&self) -> StateResult<BTreeMap<(String, String), u32>> {
        let mut st = self
            .conn
            .prepare("SELECT policy, id, attempt FROM backups")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Backups deleted at or after `since`, oldest deletion first.
    pub fn deleted_backups(&self, since: DateTime<Utc>) -> StateResult<Vec<DeletedBackup>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT policy, id, account, status, dr_status, started, finished, attempt, deleted_at
                 FROM report_backups WHERE deleted_at >= ?1 ORDER BY deleted_at, policy, id",
            )
            .map_err(|e| self.err(e))?;
        type Row = (
            String,
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            u32,
            String,
        );
        let rows = st
            .query_map(params![ts(since)], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (policy, id, account, status, dr_status, started, finished, attempt, at): Row =
                row.map_err(|e| self.err(e))?;
            out.push(DeletedBackup {
                policy,
                id,
                account,
                status,
                dr_status,
                started: parse_ts(&self.path, &started)?,
                finished: finished.map(|f| parse_ts(&self.path, &f)).transpose()?,
                attempt,
                deleted_at: parse_ts(&self.path, &at)?,
            });
        }
        Ok(out)
    }

    /// Snapshot records deleted at or after `since`, oldest deletion first.
    pub fn deleted_snapshots(&self, since: DateTime<Utc>) -> StateResult<Vec<DeletedSnapshot>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, policy, backup_id, account, region, kind, target, volume_id, succeeded,
                        finished, deleted_at
                 FROM report_snapshots WHERE deleted_at >= ?1 ORDER BY deleted_at, id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![ts(since)], |r| {
                Ok((
                    (
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ),
                    (
                        r.get::<_, String>(5)?,
                        r.get::<_, String>(6)?,
                        r.get::<_, String>(7)?,
                        r.get::<_, bool>(8)?,
                        r.get::<_, Option<String>>(9)?,
                        r.get::<_, String>(10)?,
                    ),
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let ((id, policy, backup_id, account, region), (kind, target, volume_id, ok, fin, at)) =
                row.map_err(|e| self.err(e))?;
            let kind = ArtifactKind::parse(&kind).ok_or_else(|| StateError::Corrupt {
                path: self.path.clone(),
                message: format!("deleted snapshot record {id} has the unknown kind {kind:?}"),
            })?;
            out.push(DeletedSnapshot {
                id,
                policy,
                backup_id,
                account,
                region,
                kind,
                target,
                volume_id,
                succeeded: ok,
                finished: fin.map(|f| parse_ts(&self.path, &f)).transpose()?,
                deleted_at: parse_ts(&self.path, &at)?,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{BackupRecord, SnapshotRecord};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn backup(id: &str, status: BackupStatus, problems: &[&str]) -> BackupRecord {
        BackupRecord {
            seq: 0,
            id: id.into(),
            policy: "web".into(),
            account: "main".into(),
            started: t("2026-11-22T10:00:00Z"),
            finished: Some(t("2026-11-22T10:05:00Z")),
            status,
            frozen: None,
            snapshots: vec![SnapshotRecord {
                id: format!("snap-{id}"),
                volume_id: "vol-1".into(),
                target: "i-1".into(),
                region: "us-east-1".into(),
                kind: ArtifactKind::Ebs,
                image: None,
            }],
            problems: problems.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn expire(s: &mut Store, id: &str, at: DateTime<Utc>) {
        s.transaction(|tx| {
            tx.delete_snapshot(&format!("snap-{id}"), at)?;
            tx.delete_backup("web", id, at)
        })
        .unwrap();
    }

    #[test]
    fn a_deleted_backup_and_its_snapshots_are_kept_for_the_retention_then_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("state.db")).unwrap();
        s.set_report_retention(chrono::Duration::days(30));
        s.transaction(|tx| {
            tx.insert_backup(&backup("b1", BackupStatus::Success, &[]))?;
            tx.insert_backup(&backup("b2", BackupStatus::Partial, &["i-1 was missing"]))?;
            tx.set_backup_attempt("web", "b2", 2)
        })
        .unwrap();
        let t0 = t("2026-12-01T00:00:00Z");
        expire(&mut s, "b1", t0);
        let all = t("2000-01-01T00:00:00Z");
        let gone = s.deleted_backups(all).unwrap();
        assert_eq!(gone.len(), 1);
        assert_eq!((gone[0].id.as_str(), gone[0].deleted_at), ("b1", t0));
        assert_eq!((gone[0].status.as_str(), gone[0].attempt), ("success", 1));
        let snaps = s.deleted_snapshots(all).unwrap();
        assert_eq!(snaps.len(), 1);
        assert!(snaps[0].succeeded);
        assert_eq!(
            (
                snaps[0].id.as_str(),
                snaps[0].kind,
                snaps[0].account.as_str()
            ),
            ("snap-b1", ArtifactKind::Ebs, "main")
        );

        // 40 days later another deletion prunes the first (older than 30).
        let t1 = t0 + chrono::Duration::days(40);
        expire(&mut s, "b2", t1);
        let gone = s.deleted_backups(all).unwrap();
        assert_eq!(gone.len(), 1, "b1's row was pruned: {gone:?}");
        assert_eq!((gone[0].id.as_str(), gone[0].attempt), ("b2", 2));
        let snaps = s.deleted_snapshots(all).unwrap();
        assert_eq!(snaps.len(), 1, "{snaps:?}");
        assert!(!snaps[0].succeeded, "its target had a problem");
    }

    #[test]
    fn a_state_of_the_previous_version_migrates_keeping_its_backups_as_first_attempts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            let previous = super::super::store::MIGRATIONS.len() - 1;
            for sql in &super::super::store::MIGRATIONS[..previous] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", previous as i64)
                .unwrap();
            conn.execute_batch(
                "INSERT INTO meta (key, value) VALUES ('lineage', 'l-1'), ('serial', '3');
                 INSERT INTO backups (policy, id, account, started, finished, status, seq)
                    VALUES ('web', 'b1', 'main', '2026-11-22T10:00:00.000Z',
                            '2026-11-22T10:05:00.000Z', 'success', 1);
                 INSERT INTO snapshots (id, policy, backup_id, target, volume_id, region)
                    VALUES ('snap-b1', 'web', 'b1', 'i-1', 'vol-1', 'us-east-1');",
            )
            .unwrap();
        }
        let mut s = Store::open(&path).unwrap();
        assert_eq!(s.lineage().unwrap(), "l-1");
        assert_eq!(
            s.backup_attempts().unwrap()[&("web".to_string(), "b1".to_string())],
            1
        );
        let at = t("2026-12-01T00:00:00Z");
        expire(&mut s, "b1", at);
        let gone = s.deleted_backups(t("2000-01-01T00:00:00Z")).unwrap();
        assert_eq!((gone.len(), gone[0].deleted_at), (1, at));
        assert_eq!(s.deleted_snapshots(at).unwrap().len(), 1);
    }
}
