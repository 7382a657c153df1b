//! The backup catalog: what each backup made and how it went, the freezer,
//! stored VPC capture versions and open alerts. Retention and the planner
//! decide from these records which snapshots may be destroyed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::store::{parse_ts, ts, StateError, StateResult, Store, Tx};
use crate::addr::Address;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupStatus {
    /// Started, not finished (a runner is working on it, or was killed).
    Running,
    Success,
    /// Some targets were backed up, some failed or were missing.
    Partial,
    Failed,
}

impl BackupStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupStatus::Running => "running",
            BackupStatus::Success => "success",
            BackupStatus::Partial => "partial",
            BackupStatus::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => BackupStatus::Running,
            "success" => BackupStatus::Success,
            "partial" => BackupStatus::Partial,
            "failed" => BackupStatus::Failed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frozen {
    pub name: String,
    pub at: DateTime<Utc>,
}

/// What a catalog record is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactKind {
    /// An EBS snapshot (of a volume, or one of an AMI's when `image` is set).
    #[default]
    Ebs,
    /// An AMI; its EBS snapshots are records of their own.
    Image,
    /// An RDS DB snapshot.
    DbSnapshot,
    /// An Aurora DB cluster snapshot.
    DbClusterSnapshot,
}

impl ArtifactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::Ebs => "ebs",
            ArtifactKind::Image => "image",
            ArtifactKind::DbSnapshot => "db_snapshot",
            ArtifactKind::DbClusterSnapshot => "db_cluster_snapshot",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ebs" => ArtifactKind::Ebs,
            "image" => ArtifactKind::Image,
            "db_snapshot" => ArtifactKind::DbSnapshot,
            "db_cluster_snapshot" => ArtifactKind::DbClusterSnapshot,
            _ => return None,
        })
    }

    pub fn is_ebs(&self) -> bool {
        *self == ArtifactKind::Ebs
    }
}

/// One thing a backup made: an EBS snapshot, an AMI, or a DB (cluster)
/// snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    pub id: String,
    /// The snapshot's volume; for an AMI or a DB snapshot, its source (the
    /// instance, DB instance or cluster).
    pub volume_id: String,
    /// The instance or volume id the policy targets.
    pub target: String,
    pub region: String,
    #[serde(default, skip_serializing_if = "ArtifactKind::is_ebs")]
    pub kind: ArtifactKind,
    /// For an AMI's EBS snapshot: the AMI (deregistered before it goes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

impl SnapshotRecord {
    /// The record's address: `snapshot["…"]`, `image["…"]`,
    /// `db_snapshot["…"]` or `db_cluster_snapshot["…"]`.
    pub fn address(&self) -> Address {
        match self.kind {
            ArtifactKind::Ebs => Address::snapshot(&self.id),
            ArtifactKind::Image => Address::Image {
                id: self.id.clone(),
            },
            ArtifactKind::DbSnapshot => Address::DbSnapshot {
                id: self.id.clone(),
            },
            ArtifactKind::DbClusterSnapshot => Address::DbClusterSnapshot {
                id: self.id.clone(),
            },
        }
    }
}

/// One run of a policy: its snapshots and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRecord {
    pub id: String,
    pub policy: String,
    /// The account's name; credentials are looked up from it.
    pub account: String,
    /// The order in which backups were taken: the state numbers each new
    /// backup after every earlier one. Retention ranks backups by it, never
    /// by `started` (a clock value a wrong clock or `--now` can skew).
    #[serde(default)]
    pub seq: i64,
    pub started: DateTime<Utc>,
    pub finished: Option<DateTime<Utc>>,
    pub status: BackupStatus,
    pub frozen: Option<Frozen>,
    pub snapshots: Vec<SnapshotRecord>,
    /// What went wrong, one line per problem (missing targets, failed calls).
    pub problems: Vec<String>,
}

impl BackupRecord {
    pub fn address(&self) -> Address {
        Address::backup(&self.policy, &self.id)
    }

    /// Whether one of its problems is about target `id` (the whole word),
    /// leaving out notes that do not make the backup less whole (a restore
    /// point not recorded: [`NOTE_PREFIX`]). Retention and restores ask it.
    pub fn has_problem_with(&self, id: &str) -> bool {
        self.problems.iter().any(|p| {
            !is_note(p)
                && p.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                    .any(|w| w == id)
        })
    }
}

/// How a note of a backup begins: a line among its problems that says
/// what was not recorded beside the snapshots, never that one is missing.
pub const NOTE_PREFIX: &str = "restore point";

/// How the note of a backup whose membership could not be decided again
/// begins: it backed up the targets as applied (see `crate::membership`).
pub const MEMBERSHIP_NOTE: &str = "membership";

/// The note of a backup known only by DR copies made before Lifeboat
/// recorded a backup's problems with its copies.
pub const PROBLEMS_UNKNOWN_NOTE: &str =
    "problems unknown: its DR copies were made before Lifeboat recorded a backup's problems with them";

/// Is problem line `p` a note ([`NOTE_PREFIX`], [`MEMBERSHIP_NOTE`],
/// [`PROBLEMS_UNKNOWN_NOTE`])?
pub fn is_note(p: &str) -> bool {
    p.starts_with(NOTE_PREFIX) || p.starts_with(MEMBERSHIP_NOTE) || p == PROBLEMS_UNKNOWN_NOTE
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotOwner {
    pub policy: String,
    pub backup_id: String,
    pub status: BackupStatus,
    pub frozen: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub id: i64,
    pub policy: String,
    pub opened: DateTime<Utc>,
    pub message: String,
}

/// One stored version of a VPC capture (its document is read separately,
/// with [`Store::vpc_document`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpcVersionRecord {
    /// The catalog's row id; ignored on insert.
    pub id: i64,
    /// The `vpc_capture` block's name.
    pub capture: String,
    pub account: String,
    pub region: String,
    pub vpc_id: String,
    pub captured_at: DateTime<Utc>,
    /// SHA-256 of the canonical document JSON.
    pub hash: String,
}

impl Store {
    /// The catalog, oldest first, optionally for one policy.
    pub fn backups(&self, policy: Option<&str>) -> StateResult<Vec<BackupRecord>> {
        read_backups(&self.conn, &self.path, policy)
    }

    /// Which backup a catalog snapshot belongs to, and whether it may go.
    pub fn snapshot_owner(&self, snapshot_id: &str) -> StateResult<Option<SnapshotOwner>> {
        self.conn
            .query_row(
                "SELECT b.policy, b.id, b.status, b.frozen_name IS NOT NULL
                 FROM snapshots s JOIN backups b ON b.policy = s.policy AND b.id = s.backup_id
                 WHERE s.id = ?1",
                params![snapshot_id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, bool>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))?
            .map(|(policy, backup_id, status, frozen)| {
                let status = BackupStatus::parse(&status).ok_or_else(|| StateError::Corrupt {
                    path: self.path.clone(),
                    message: format!("bad backup status {status:?}"),
                })?;
                Ok(SnapshotOwner {
                    policy,
                    backup_id,
                    status,
                    frozen,
                })
            })
            .transpose()
    }

    pub fn open_alerts(&self) -> StateResult<Vec<Alert>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, policy, opened, message FROM alerts WHERE closed IS NULL ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, policy, opened, message) = row.map_err(|e| self.err(e))?;
            out.push(Alert {
                id,
                policy,
                opened: parse_ts(&self.path, &opened)?,
                message,
            });
        }
        Ok(out)
    }

    /// Every stored VPC capture version, ordered by capture, region, VPC,
    /// then oldest first.
    pub fn vpc_versions(&self) -> StateResult<Vec<VpcVersionRecord>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, capture, account, region, vpc_id, captured_at, hash FROM vpc_versions
                 ORDER BY capture, region, vpc_id, captured_at, id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, capture, account, region, vpc_id, at, hash) = row.map_err(|e| self.err(e))?;
            out.push(VpcVersionRecord {
                id,
                capture,
                account,
                region,
                vpc_id,
                captured_at: parse_ts(&self.path, &at)?,
                hash,
            });
        }
        Ok(out)
    }

    /// The canonical JSON document of one VPC capture version.
    pub fn vpc_document(&self, id: i64) -> StateResult<String> {
        self.conn
            .query_row(
                "SELECT document FROM vpc_versions WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }
}

pub(super) fn read_backups(
    conn: &Connection,
    path: &Path,
    policy: Option<&str>,
) -> StateResult<Vec<BackupRecord>> {
    let sq = |source| super::replica::sqlite_err(path, source);
    let corrupt = |m: String| StateError::Corrupt {
        path: path.to_path_buf(),
        message: m,
    };
    let mut snaps: BTreeMap<(String, String), Vec<SnapshotRecord>> = BTreeMap::new();
    {
        let mut st = conn
            .prepare("SELECT policy, backup_id, id, volume_id, target, region, kind, image_id FROM snapshots WHERE ?1 IS NULL OR policy = ?1 ORDER BY target, volume_id, id")
            .map_err(sq)?;
        let rows = st
            .query_map(params![policy], |r| {
                Ok((
                    (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                    SnapshotRecord {
                        id: r.get(2)?,
                        volume_id: r.get(3)?,
                        target: r.get(4)?,
                        region: r.get(5)?,
                        kind: ArtifactKind::Ebs,
                        image: r.get(7)?,
                    },
                    r.get::<_, String>(6)?,
                ))
            })
            .map_err(sq)?;
        for row in rows {
            let (k, mut s, kind) = row.map_err(sq)?;
            // A kind this version does not know (a newer Lifeboat's, or an
            // edit) must not be taken for an EBS snapshot: retention would
            // delete the wrong thing with the wrong call.
            s.kind = ArtifactKind::parse(&kind).ok_or_else(|| {
                corrupt(format!(
                    "snapshot record {} of backup {} (policy {}) has the unknown kind {kind:?}; expected ebs, image, db_snapshot or db_cluster_snapshot",
                    s.id, k.1, k.0
                ))
            })?;
            snaps.entry(k).or_default().push(s);
        }
    }
    let mut st = conn
        .prepare(
            "SELECT policy, id, account, started, finished, status, frozen_name, frozen_at, problems, seq
             FROM backups WHERE ?1 IS NULL OR policy = ?1 ORDER BY seq, started, policy, id",
        )
        .map_err(sq)?;
    let rows = st
        .query_map(params![policy], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, i64>(9)?,
            ))
        })
        .map_err(sq)?;
    let mut out = Vec::new();
    for row in rows {
        let (policy, id, account, started, finished, status, frozen_name, frozen_at, problems, seq) =
            row.map_err(sq)?;
        let status = BackupStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("bad backup status {status:?}")))?;
        let frozen = match (frozen_name, frozen_at) {
            (Some(name), Some(at)) => Some(Frozen {
                name,
                at: parse_ts(path, &at)?,
            }),
            _ => None,
        };
        let problems: Vec<String> =
            serde_json::from_str(&problems).map_err(|e| corrupt(format!("backup {id}: {e}")))?;
        let snapshots = snaps
            .remove(&(policy.clone(), id.clone()))
            .unwrap_or_default();
        out.push(BackupRecord {
            seq,
            started: parse_ts(path, &started)?,
            finished: finished.map(|f| parse_ts(path, &f)).transpose()?,
            id,
            policy,
            account,
            status,
            frozen,
            snapshots,
            problems,
        });
    }
    Ok(out)
}

impl Tx<'_> {
    pub fn backup_exists(&self, policy: &str, id: &str) -> StateResult<bool> {
        self.tx
            .query_row(
                "SELECT 1 FROM backups WHERE policy = ?1 AND id = ?2",
                params![policy, id],
                |_| Ok(()),
            )
            .optional()
            .map(|o| o.is_some())
            .map_err(|e| self.err(e))
    }

    /// Places backups recorded after the fact (`lifeboat import`) among the
    /// policy's others by their start times, keeping the order the others
    /// were taken in: a backup rebuilt from AWS tags is ranked by the only
    /// evidence there is, and never ahead of newer backups already here.
    /// `imported` are ids of the policy's backups inserted in this
    /// transaction.
    pub fn place_imported(&mut self, policy: &str, imported: &BTreeSet<String>) -> StateResult<()> {
        let rows: Vec<(String, String, i64)> = {
            let mut st = self
                .tx
                .prepare("SELECT id, started, seq FROM backups WHERE policy = ?1 ORDER BY seq, started, id")
                .map_err(|e| self.err(e))?;
            let rows = st
                .query_map(params![policy], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(|e| self.err(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?
        };
        let (mut new, old): (Vec<_>, Vec<_>) = rows
            .into_iter()
            .partition(|(id, _, _)| imported.contains(id));
        new.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
        // Merge: each imported backup goes before the first older-taken one
        // that started after it.
        let mut order: Vec<String> = Vec::new();
        let mut new = new.into_iter().peekable();
        for (id, started, _) in old {
            while let Some(n) = new.next_if(|n| n.1 < started) {
                order.push(n.0);
            }
            order.push(id);
        }
        order.extend(new.map(|n| n.0));
        let top: i64 = self
            .tx
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM backups", [], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))?;
        for (i, id) in order.iter().enumerate() {
            self.tx
                .execute(
                    "UPDATE backups SET seq = ?3 WHERE policy = ?1 AND id = ?2",
                    params![policy, id, top + 1 + i as i64],
                )
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Records a new backup, numbered after every backup taken before it:
    /// those whose copies alone remain count too (DR retention groups copies
    /// by that number, and a policy whose local backups all went to copies
    /// must not number a new one like an old one).
    pub fn insert_backup(&mut self, b: &BackupRecord) -> StateResult<()> {
        self.tx
            .execute(
                "INSERT INTO backups (policy, id, account, started, finished, status, problems, frozen_name, frozen_at, seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,
                    (SELECT MAX(n) + 1 FROM (SELECT COALESCE(MAX(seq), 0) AS n FROM backups
                        UNION ALL SELECT COALESCE(MAX(backup_seq), 0) FROM dr_copies
                        UNION ALL SELECT COALESCE(MAX(backup_seq), 0) FROM dr_runs)))",
                params![
                    b.policy,
                    b.id,
                    b.account,
                    ts(b.started),
                    b.finished.map(ts),
                    b.status.as_str(),
                    serde_json::to_string(&b.problems).unwrap_or_else(|_| "[]".into()),
                    b.frozen.as_ref().map(|f| f.name.clone()),
                    b.frozen.as_ref().map(|f| ts(f.at)),
                ],
            )
            .map_err(|e| self.err(e))?;
        for s in &b.snapshots {
            self.insert_snapshot(&b.policy, &b.id, s)?;
        }
        Ok(())
    }

    pub fn insert_snapshot(
        &mut self,
        policy: &str,
        backup_id: &str,
        s: &SnapshotRecord,
    ) -> StateResult<()> {
        self.tx
            .execute(
                "INSERT OR IGNORE INTO snapshots (id, policy, backup_id, target, volume_id, region, kind, image_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![s.id, policy, backup_id, s.target, s.volume_id, s.region, s.kind.as_str(), s.image],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn finish_backup(
        &mut self,
        policy: &str,
        id: &str,
        status: BackupStatus,
        finished: DateTime<Utc>,
        problems: &[String],
    ) -> StateResult<()> {
        self.tx
            .execute(
                "UPDATE backups SET status = ?3, finished = ?4, problems = ?5 WHERE policy = ?1 AND id = ?2",
                params![policy, id, status.as_str(), ts(finished), serde_json::to_string(problems).unwrap_or_else(|_| "[]".into())],
            )
            .map_err(|e| self.err(e))?;
        if status != BackupStatus::Running {
            self.disown_backup(policy, id)?;
        }
        Ok(())
    }

    /// Forgets a snapshot that no longer exists in AWS, and records the
    /// damage on its backup: the problem, and the status
    /// [`crate::retention::status_after_lost_snapshot`] gives (a successful
    /// backup becomes partial). Retention judges a backup by that same rule
    /// before the catalog knows, so the plan that shows this read and the
    /// apply that performs it count the same generations.
    pub fn forget_snapshot(&mut self, id: &str, at: DateTime<Utc>) -> StateResult<()> {
        let owner: Option<(String, String, String, String, String)> = self
            .tx
            .query_row(
                "SELECT b.policy, b.id, b.problems, b.status, s.kind FROM snapshots s
                 JOIN backups b ON b.policy = s.policy AND b.id = s.backup_id WHERE s.id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        if let Some((policy, backup_id, problems, status, kind)) = owner {
            let mut problems: Vec<String> = serde_json::from_str(&problems).unwrap_or_default();
            let noun = match kind.as_str() {
                "image" => "AMI",
                "db_snapshot" => "DB snapshot",
                "db_cluster_snapshot" => "DB cluster snapshot",
                _ => "snapshot",
            };
            problems.push(format!("{noun} {id} was deleted outside Lifeboat"));
            let status = BackupStatus::parse(&status)
                .map(|s| {
                    crate::retention::status_after_lost_snapshot(s)
                        .as_str()
                        .to_string()
                })
                .unwrap_or(status);
            self.tx
                .execute(
                    "UPDATE backups SET problems = ?3, status = ?4 WHERE policy = ?1 AND id = ?2",
                    params![
                        policy,
                        backup_id,
                        serde_json::to_string(&problems).unwrap_or_else(|_| "[]".into()),
                        status
                    ],
                )
                .map_err(|e| self.err(e))?;
        }
        self.delete_snapshot(id, at)
    }

    /// Removes a snapshot record, keeping its report row (deleted `at`).
    pub fn delete_snapshot(&mut self, id: &str, at: DateTime<Utc>) -> StateResult<()> {
        self.remember_snapshot(id, at)?;
        self.tx
            .execute("DELETE FROM snapshots WHERE id = ?1", params![id])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Removes a backup record; its snapshots must be gone first. Its
    /// report row is kept (deleted `at`), and the rows older than the report
    /// retention go.
    pub fn delete_backup(&mut self, policy: &str, id: &str, at: DateTime<Utc>) -> StateResult<()> {
        let left: i64 = self
            .tx
            .query_row(
                "SELECT COUNT(*) FROM snapshots WHERE policy = ?1 AND backup_id = ?2",
                params![policy, id],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        if left > 0 {
            return Err(StateError::Conflict(format!(
                "backup.{policy}[{id:?}] still has {left} snapshot(s) in the catalog"
            )));
        }
        self.remember_backup(policy, id, at)?;
        self.tx
            .execute(
                "DELETE FROM backups WHERE policy = ?1 AND id = ?2",
                params![policy, id],
            )
            .map_err(|e| self.err(e))?;
        self.disown_backup(policy, id)?;
        // Its restore points stay while a DR copy of it can be restored.
        self.drop_unused_restore_points(policy, id)
    }

    /// Moves a backup to the freezer: it no longer counts as a generation
    /// and retention never deletes it.
    pub fn freeze(
        &mut self,
        policy: &str,
        id: &str,
        name: &str,
        at: DateTime<Utc>,
    ) -> StateResult<()> {
        let n = self
            .tx
            .execute(
                "UPDATE backups SET frozen_name = ?3, frozen_at = ?4 WHERE policy = ?1 AND id = ?2",
                params![policy, id, name, ts(at)],
            )
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(StateError::Conflict(format!(
                "no backup {id} of policy {policy}"
            )));
        }
        Ok(())
    }

    /// The hash of the latest stored version of a VPC in a capture.
    pub fn latest_vpc_hash(
        &self,
        capture: &str,
        region: &str,
        vpc_id: &str,
    ) -> StateResult<Option<String>> {
        self.tx
            .query_row(
                "SELECT hash FROM vpc_versions WHERE capture = ?1 AND region = ?2 AND vpc_id = ?3
                 ORDER BY captured_at DESC, id DESC LIMIT 1",
                params![capture, region, vpc_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Removes one capture version (retention of captures).
    pub fn delete_vpc_version(&mut self, id: i64) -> StateResult<()> {
        self.tx
            .execute("DELETE FROM vpc_versions WHERE id = ?1", params![id])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Stores a new VPC capture version (`v.id` is ignored).
    pub fn insert_vpc_version(&mut self, v: &VpcVersionRecord, document: &str) -> StateResult<()> {
        self.tx
            .execute(
                "INSERT INTO vpc_versions (capture, account, region, vpc_id, captured_at, hash, document)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    v.capture,
                    v.account,
                    v.region,
                    v.vpc_id,
                    ts(v.captured_at),
                    v.hash,
                    document
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records that `policy` ran for its scheduled `slot`.
    pub fn set_last_slot(
        &mut self,
        policy: &str,
        slot: DateTime<Utc>,
        backup_id: Option<&str>,
    ) -> StateResult<()> {
        self.tx
            .execute(
                "INSERT OR REPLACE INTO policy_runs (policy, last_slot, last_backup) VALUES (?1, ?2, ?3)",
                params![policy, ts(slot), backup_id],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn open_alert(
        &mut self,
        policy: &str,
        opened: DateTime<Utc>,
        message: &str,
    ) -> StateResult<()> {
        self.tx
            .execute(
                "INSERT INTO alerts (policy, opened, message) VALUES (?1, ?2, ?3)",
                params![policy, ts(opened), message],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(policy: &str, id: &str, minute: u32) -> BackupRecord {
        BackupRecord {
            seq: 0,
            id: id.into(),
            policy: policy.into(),
            account: "main".into(),
            started: format!("2026-11-22T10:{minute:02}:00Z").parse().unwrap(),
            finished: None,
            status: BackupStatus::Running,
            frozen: None,
            snapshots: vec![SnapshotRecord {
                id: format!("snap-{id}"),
                volume_id: "vol-1".into(),
                target: "i-1".into(),
                region: "us-east-1".into(),
                kind: Default::default(),
                image: None,
            }],
            problems: vec![],
        }
    }

    #[test]
    fn a_note_is_no_problem_with_the_target_it_names() {
        let mut b = backup("web", "b1", 0);
        b.problems = vec!["restore point of i-1, i-2 not recorded: throttled".into()];
        assert!(!b.has_problem_with("i-1"));
        b.problems
            .push("snapshot snap-9 of i-10 (vol-3) ended in the error state".into());
        assert!(!b.has_problem_with("i-1"), "i-10 is another target");
        assert!(b.has_problem_with("i-10"));
    }

    #[test]
    fn catalog_round_trips_backups_freezer_and_refuses_deleting_a_backup_with_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("state.db")).unwrap();
        s.transaction(|tx| {
            tx.insert_backup(&backup("web", "b1", 0))?;
            tx.insert_backup(&backup("web", "b2", 5))?;
            tx.finish_backup(
                "web",
                "b1",
                BackupStatus::Success,
                "2026-11-22T10:01:00Z".parse().unwrap(),
                &[],
            )
        })
        .unwrap();
        s.transaction(|tx| tx.freeze("web", "b2", "keep", "2026-11-22T11:00:00Z".parse().unwrap()))
            .unwrap();
        let all = s.backups(Some("web")).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].status, BackupStatus::Success);
        assert_eq!(all[1].frozen.as_ref().unwrap().name, "keep");
        let at = "2026-11-23T00:00:00Z".parse().unwrap();
        assert!(s
            .transaction(|tx| tx.delete_backup("web", "b1", at))
            .is_err());
        s.transaction(|tx| {
            tx.delete_snapshot("snap-b1", at)?;
            tx.delete_backup("web", "b1", at)
        })
        .unwrap();
        assert_eq!(s.backups(None).unwrap().len(), 1);
    }

    #[test]
    fn an_unknown_artifact_kind_is_an_error_naming_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut s = Store::open(&path).unwrap();
        s.transaction(|tx| tx.insert_backup(&backup("web", "b1", 0)))
            .unwrap();
        drop(s);
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE snapshots SET kind = 'tape' WHERE id = 'snap-b1'",
            [],
        )
        .unwrap();
        drop(conn);
        let s = Store::open(&path).unwrap();
        let err = s.backups(None).unwrap_err();
        assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
        let err = err.to_string();
        for needle in ["snap-b1", "backup b1", "policy web", "\"tape\""] {
            assert!(err.contains(needle), "{needle:?} not in {err}");
        }
    }
}
