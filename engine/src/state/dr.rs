//! The DR catalog: per backup and destination, how its copies went
//! (`dr_runs`), and every copy made (`dr_copies`). Copies outlive the
//! backups they came from: a copy row names its backup by policy, id and
//! order, never by a foreign key, so that local retention deleting a backup
//! leaves its copies recorded (they expire with their own generations).

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::catalog::{
    ArtifactKind, BackupRecord, BackupStatus, SnapshotRecord, PROBLEMS_UNKNOWN_NOTE,
};
use super::store::{parse_ts, ts, StateError, StateResult, Store, Tx};

/// Where copies go: a region of an account.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Destination {
    pub account: String,
    pub region: String,
}

impl std::fmt::Display for Destination {
    /// `us-west-2:vault`: region, then account (the `--from REGION:ACCOUNT` form).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.region, self.account)
    }
}

impl Destination {
    /// The inverse of the printed form, where the account may be left out
    /// (`--from us-west-2`, a `dr_copy` address to the source's account):
    /// `REGION[:ACCOUNT]` as its region and account. The one reader of it.
    pub fn split(s: &str) -> (&str, Option<&str>) {
        match s.split_once(':') {
            Some((region, account)) => (region, Some(account)),
            None => (s, None),
        }
    }
}

/// A backup's DR status at one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrStatus {
    /// Waiting for its turn (the destination's copies in flight are at the cap).
    Pending,
    InProgress,
    Completed,
    Failed,
    /// Not copied: `every` copies only every Nth backup.
    Skipped,
    TimedOut,
}

impl DrStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DrStatus::Pending => "pending",
            DrStatus::InProgress => "in_progress",
            DrStatus::Completed => "completed",
            DrStatus::Failed => "failed",
            DrStatus::Skipped => "skipped",
            DrStatus::TimedOut => "timed_out",
        }
    }

    pub fn parse(s: &str) -> Option<DrStatus> {
        Some(match s {
            "pending" => DrStatus::Pending,
            "in_progress" => DrStatus::InProgress,
            "completed" => DrStatus::Completed,
            "failed" => DrStatus::Failed,
            "skipped" => DrStatus::Skipped,
            "timed_out" => DrStatus::TimedOut,
            _ => return None,
        })
    }

    /// Still to be worked on: a restarted runner resumes it.
    pub fn is_open(self) -> bool {
        matches!(self, DrStatus::Pending | DrStatus::InProgress)
    }
}

/// One backup's copies to one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrRun {
    pub policy: String,
    pub backup_id: String,
    /// The backup's place in its policy's order (`BackupRecord::seq`).
    pub backup_seq: i64,
    pub destination: Destination,
    pub status: DrStatus,
    pub started: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    /// Why it failed, timed out or was skipped; empty otherwise.
    pub detail: String,
}

/// One copy of one artifact at one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrCopyRecord {
    /// The copy's id there (`snap-…`, `ami-…`, a DB snapshot identifier).
    pub id: String,
    pub destination: Destination,
    pub kind: ArtifactKind,
    /// A DB copy's ARN (tags and deletes name it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// For a copied AMI's EBS snapshot: the copied AMI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub source_id: String,
    pub source_region: String,
    pub source_account: String,
    pub target: String,
    pub policy: String,
    pub backup_id: String,
    pub backup_seq: i64,
    /// `InProgress`, `Completed`, `Failed` or `TimedOut`.
    pub status: DrStatus,
    pub started: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<DateTime<Utc>>,
    /// When retention tagged it `lifeboat:expired` in an account where
    /// Lifeboat does not delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub problem: String,
    /// The EBS Snapshot Lock it got (an AMI copy: the lock of its snapshots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<CopyLock>,
    /// Why the last LockSnapshot failed; the next run tries again.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub lock_problem: String,
}

/// A copy's lock as recorded when LockSnapshot answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyLock {
    pub mode: lifeboat_schema::LockMode,
    pub until: DateTime<Utc>,
}

impl DrCopyRecord {
    /// The instant until which its recorded lock forbids deleting it, if
    /// that is after `now`.
    pub fn locked_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.lock.map(|l| l.until).filter(|u| *u > now)
    }

    /// `dr_copy.POLICY["SOURCE"]["REGION"]`, with `:ACCOUNT` when the copy
    /// is in another account than the policy's.
    pub fn address(&self, policy_account: &str) -> crate::addr::Address {
        crate::addr::Address::dr_copy(
            &self.policy,
            &self.source_id,
            &self.destination,
            policy_account,
        )
    }
}

impl Store {
    /// Every DR run, optionally of one policy, oldest backup first.
    pub fn dr_runs(&self, policy: Option<&str>) -> StateResult<Vec<DrRun>> {
        read_runs(&self.conn, &self.path, policy)
    }

    /// Every recorded copy, optionally of one policy, oldest backup first.
    pub fn dr_copies(&self, policy: Option<&str>) -> StateResult<Vec<DrCopyRecord>> {
        read_copies(&self.conn, &self.path, policy)
    }
}

fn corrupt(path: &Path, m: String) -> StateError {
    StateError::Corrupt {
        path: path.to_path_buf(),
        message: m,
    }
}

pub(super) fn read_runs(
    conn: &Connection,
    path: &Path,
    policy: Option<&str>,
) -> StateResult<Vec<DrRun>> {
    let sq = |source| super::replica::sqlite_err(path, source);
    let mut st = conn
        .prepare(
            "SELECT policy, backup_id, backup_seq, account, region, status, started, updated, detail
             FROM dr_runs WHERE ?1 IS NULL OR policy = ?1
             ORDER BY policy, backup_seq, account, region",
        )
        .map_err(sq)?;
    let rows = st
        .query_map(params![policy], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, String>(8)?,
            ))
        })
        .map_err(sq)?;
    let mut out = Vec::new();
    for row in rows {
        let (policy, backup_id, backup_seq, account, region, status, started, updated, detail) =
            row.map_err(sq)?;
        let status = DrStatus::parse(&status).ok_or_else(|| {
            corrupt(path, format!("DR run of backup {backup_id} (policy {policy}) has the unknown status {status:?}"))
        })?;
        out.push(DrRun {
            policy,
            backup_id,
            backup_seq,
            destination: Destination { account, region },
            status,
            started: parse_ts(path, &started)?,
            updated: parse_ts(path, &updated)?,
            detail,
        });
    }
    Ok(out)
}

pub(super) fn read_copies(
    conn: &Connection,
    path: &Path,
    policy: Option<&str>,
) -> StateResult<Vec<DrCopyRecord>> {
    let sq = |source| super::replica::sqlite_err(path, source);
    let mut st = conn
        .prepare(
            "SELECT id, account, region, kind, arn, image_id, source_id, source_region,
                    source_account, target, policy, backup_id, backup_seq, status, started,
                    finished, expired, problem, lock_mode, lock_until, lock_problem
             FROM dr_copies WHERE ?1 IS NULL OR policy = ?1
             ORDER BY policy, backup_seq, account, region, source_id, id",
        )
        .map_err(sq)?;
    let rows = st
        .query_map(params![policy], |r| {
            let s = |i: usize| r.get::<_, String>(i);
            let o = |i: usize| r.get::<_, Option<String>>(i);
            Ok((
                [
                    s(0)?,
                    s(1)?,
                    s(2)?,
                    s(3)?,
                    s(6)?,
                    s(7)?,
                    s(8)?,
                    s(9)?,
                    s(10)?,
                    s(11)?,
                    s(13)?,
                    s(14)?,
                    s(17)?,
                ],
                [o(4)?, o(5)?, o(15)?, o(16)?],
                r.get::<_, i64>(12)?,
                [o(18)?, o(19)?],
                s(20)?,
            ))
        })
        .map_err(sq)?;
    let mut out = Vec::new();
    for row in rows {
        let (
            [id, account, region, kind, source_id, source_region, source_account, target, policy, backup_id, status, started, problem],
            [arn, image, finished, expired],
            backup_seq,
            [lock_mode, lock_until],
            lock_problem,
        ) = row.map_err(sq)?;
        let kind = ArtifactKind::parse(&kind).ok_or_else(|| {
            corrupt(
                path,
                format!("DR copy {id} in {region} ({account}) has the unknown kind {kind:?}"),
            )
        })?;
        let status = DrStatus::parse(&status).ok_or_else(|| {
            corrupt(
                path,
                format!("DR copy {id} in {region} ({account}) has the unknown status {status:?}"),
            )
        })?;
        let time = |t: Option<String>| t.map(|t| parse_ts(path, &t)).transpose();
        let lock = match (lock_mode, time(lock_until)?) {
            (Some(m), Some(until)) => Some(CopyLock {
                mode: lifeboat_schema::LockMode::parse(&m).ok_or_else(|| {
                    corrupt(
                        path,
                        format!(
                            "DR copy {id} in {region} ({account}) has the unknown lock mode {m:?}"
                        ),
                    )
                })?,
                until,
            }),
            _ => None,
        };
        out.push(DrCopyRecord {
            id,
            destination: Destination { account, region },
            kind,
            arn,
            image,
            source_id,
            source_region,
            source_account,
            target,
            policy,
            backup_id,
            backup_seq,
            status,
            started: parse_ts(path, &started)?,
            finished: time(finished)?,
            expired: time(expired)?,
            problem,
            lock,
            lock_problem,
        });
    }
    Ok(out)
}

impl Tx<'_> {
    /// Records a DR run, or its new status.
    pub fn put_dr_run(&mut self, r: &DrRun) -> StateResult<()> {
        self.tx
            .execute(
                "INSERT INTO dr_runs (policy, backup_id, backup_seq, account, region, status, started, updated, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (policy, backup_id, account, region) DO UPDATE SET
                    status = excluded.status, started = excluded.started,
                    updated = excluded.updated, detail = excluded.detail",
                params![
                    r.policy,
                    r.backup_id,
                    r.backup_seq,
                    r.destination.account,
                    r.destination.region,
                    r.status.as_str(),
                    ts(r.started),
                    ts(r.updated),
                    r.detail
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records a copy, or its new status, finish and expiry.
    pub fn put_dr_copy(&mut self, c: &DrCopyRecord) -> StateResult<()> {
        self.tx
            .execute(
                "INSERT INTO dr_copies (id, account, region, kind, arn, image_id, source_id, source_region,
                    source_account, target, policy, backup_id, backup_seq, status, started, finished,
                    expired, problem, lock_mode, lock_until, lock_problem, volume_id, backup_started,
                    backup_problems)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
                    ?19, ?20, ?21,
                    (SELECT volume_id FROM snapshots WHERE id = ?7),
                    (SELECT started FROM backups WHERE policy = ?11 AND id = ?12),
                    (SELECT problems FROM backups WHERE policy = ?11 AND id = ?12))
                 ON CONFLICT (account, region, id) DO UPDATE SET
                    status = excluded.status, finished = excluded.finished,
                    expired = excluded.expired, problem = excluded.problem,
                    lock_mode = excluded.lock_mode, lock_until = excluded.lock_until,
                    lock_problem = excluded.lock_problem,
                    volume_id = COALESCE(dr_copies.volume_id, excluded.volume_id),
                    backup_started = COALESCE(dr_copies.backup_started, excluded.backup_started),
                    backup_problems = COALESCE(dr_copies.backup_problems, excluded.backup_problems)",
                params![
                    c.id,
                    c.destination.account,
                    c.destination.region,
                    c.kind.as_str(),
                    c.arn,
                    c.image,
                    c.source_id,
                    c.source_region,
                    c.source_account,
                    c.target,
                    c.policy,
                    c.backup_id,
                    c.backup_seq,
                    c.status.as_str(),
                    ts(c.started),
                    c.finished.map(ts),
                    c.expired.map(ts),
                    c.problem,
                    c.lock.map(|l| l.mode.as_str()),
                    c.lock.map(|l| ts(l.until)),
                    c.lock_problem
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Forgets a copy (deleted, or gone from AWS), and the restore points
    /// of its backup with the last copy of a backup that expired locally.
    pub fn delete_dr_copy(&mut self, d: &Destination, id: &str) -> StateResult<()> {
        let of: Option<(String, String)> = self
            .tx
            .query_row(
                "SELECT policy, backup_id FROM dr_copies WHERE account = ?1 AND region = ?2 AND id = ?3",
                params![d.account, d.region, id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        self.tx
            .execute(
                "DELETE FROM dr_copies WHERE account = ?1 AND region = ?2 AND id = ?3",
                params![d.account, d.region, id],
            )
            .map_err(|e| self.err(e))?;
        if let Some((policy, backup_id)) = of {
            self.drop_unused_restore_points(&policy, &backup_id)?;
        }
        Ok(())
    }

    /// Deletes the restore points of a backup that neither the catalog nor
    /// any DR copy holds any more: nothing can be restored from it.
    pub(super) fn drop_unused_restore_points(
        &mut self,
        policy: &str,
        backup_id: &str,
    ) -> StateResult<()> {
        self.tx
            .execute(
                "DELETE FROM restore_points WHERE policy = ?1 AND backup_id = ?2
                   AND NOT EXISTS (SELECT 1 FROM backups WHERE policy = ?1 AND id = ?2)
                   AND NOT EXISTS (SELECT 1 FROM dr_copies WHERE policy = ?1 AND backup_id = ?2)",
                params![policy, backup_id],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

impl Store {
    /// The backups known only by their DR copies: their local backup
    /// expired (or was deleted) while copies of it remain. Each is rebuilt
    /// from what its copies recorded of it: its artifacts by source id,
    /// when it was taken and its problems, so that a restore from a copy
    /// chooses among them as among local backups. Oldest first.
    pub fn copied_backups(&self) -> StateResult<Vec<BackupRecord>> {
        let sq = |e| self.err(e);
        let mut st = self
            .conn
            .prepare(
                "SELECT c.policy, c.backup_id, c.source_account, c.source_id, c.source_region,
                        c.target, c.kind, c.image_id, c.volume_id, c.backup_started,
                        c.backup_problems, c.started, c.backup_seq
                 FROM dr_copies c
                 WHERE NOT EXISTS (SELECT 1 FROM backups b WHERE b.policy = c.policy AND b.id = c.backup_id)
                 ORDER BY c.policy, c.backup_seq, c.backup_id, c.source_id",
            )
            .map_err(sq)?;
        type Row = ([String; 8], [Option<String>; 4], i64);
        let rows: Vec<Row> = st
            .query_map([], |r| {
                Ok((
                    [
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(11)?,
                    ],
                    [r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?],
                    r.get(12)?,
                ))
            })
            .map_err(sq)?
            .collect::<Result<_, _>>()
            .map_err(sq)?;
        let mut out: Vec<BackupRecord> = Vec::new();
        for (s, o, seq) in rows {
            let [policy, backup_id, account, source_id, source_region, target, kind, copy_started] =
                s;
            let [image, volume_id, started, problems] = o;
            let problems_unknown = problems.is_none();
            let kind = ArtifactKind::parse(&kind).ok_or_else(|| {
                corrupt(
                    &self.path,
                    format!("DR copy of {source_id} has the unknown kind {kind:?}"),
                )
            })?;
            let fresh = out
                .last()
                .is_none_or(|b| b.policy != policy || b.id != backup_id);
            if fresh {
                let mut problems: Vec<String> = match &problems {
                    Some(p) => serde_json::from_str(p).map_err(|e| {
                        corrupt(
                            &self.path,
                            format!("DR copies of backup {backup_id}: problems: {e}"),
                        )
                    })?,
                    None => vec![],
                };
                let status = match problems.is_empty() {
                    true => BackupStatus::Success,
                    false => BackupStatus::Partial,
                };
                if problems_unknown {
                    // Copied before Lifeboat recorded a backup's problems
                    // with its copies: a note, not a problem (no target is
                    // known to have failed), that the plan repeats.
                    problems.push(PROBLEMS_UNKNOWN_NOTE.to_string());
                }
                let started = parse_ts(&self.path, started.as_deref().unwrap_or(&copy_started))?;
                out.push(BackupRecord {
                    id: backup_id.clone(),
                    policy: policy.clone(),
                    account,
                    seq,
                    started,
                    finished: None,
                    status,
                    frozen: None,
                    snapshots: vec![],
                    problems,
                });
            }
            let b = out.last_mut().expect("pushed above");
            if b.snapshots.iter().any(|x| x.id == source_id) {
                continue;
            }
            // A DB snapshot's source is its database, the target itself; an
            // EBS snapshot's volume was recorded with the copy. A copy made
            // before Lifeboat recorded it is left out: which disk it was is
            // not known (several would fall on one key), so that disk does
            // not restore, and the plan says so.
            let volume_id = match (kind, volume_id) {
                (ArtifactKind::Ebs, None) => continue,
                (_, Some(v)) => v,
                (_, None) => target.clone(),
            };
            b.snapshots.push(SnapshotRecord {
                id: source_id,
                volume_id,
                target,
                region: source_region,
                kind,
                // Marks an AMI's snapshot (the copied AMI stands for the source's).
                image,
            });
        }
        Ok(out)
    }
}
