//! The DR catalog: per backup and destination, how its copies went
//! (`dr_runs`), and every copy made (`dr_copies`). Copies outlive the
//! backups they came from: a copy row names its backup by policy, id and
//! order, never by a foreign key, so that local retention deleting a backup
//! leaves its copies recorded (they expire with their own generations).

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::catalog::ArtifactKind;
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
}

impl DrCopyRecord {
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
    let sq = |source| StateError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
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
    let sq = |source| StateError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let mut st = conn
        .prepare(
            "SELECT id, account, region, kind, arn, image_id, source_id, source_region,
                    source_account, target, policy, backup_id, backup_seq, status, started,
                    finished, expired, problem
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
            ))
        })
        .map_err(sq)?;
    let mut out = Vec::new();
    for row in rows {
        let (
            [id, account, region, kind, source_id, source_region, source_account, target, policy, backup_id, status, started, problem],
            [arn, image, finished, expired],
            backup_seq,
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
                    expired, problem)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
                 ON CONFLICT (account, region, id) DO UPDATE SET
                    status = excluded.status, finished = excluded.finished,
                    expired = excluded.expired, problem = excluded.problem",
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
                    c.problem
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Forgets a copy (deleted, or gone from AWS).
    pub fn delete_dr_copy(&mut self, d: &Destination, id: &str) -> StateResult<()> {
        self.tx
            .execute(
                "DELETE FROM dr_copies WHERE account = ?1 AND region = ?2 AND id = ?3",
                params![d.account, d.region, id],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}
