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
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::addr::Address;

mod health;
mod lease;
pub use health::{Retry, ScriptRun, Skipped};
pub use lease::{LockInfo, LOCK_TTL_MINUTES};

/// The schema version this build writes; older files are migrated on open.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state file {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("state file {path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("state file {path} was written by a newer Lifeboat (schema version {found}, this build knows {SCHEMA_VERSION})")]
    TooNew { path: PathBuf, found: i64 },
    #[error("state is locked by {holder} for {operation} since {acquired} (lock ID {id}); if no other lifeboat is running, run `lifeboat force-unlock {id}`")]
    Locked {
        id: String,
        holder: String,
        operation: String,
        acquired: String,
    },
    #[error("another runner ({holder}, lease {id}) acts on this workspace since {acquired}; its lease runs until {expires}")]
    Leased {
        id: String,
        holder: String,
        acquired: String,
        expires: String,
    },
    #[error("no lock with ID {0} is held")]
    NoSuchLock(String),
    #[error("{0}")]
    Conflict(String),
    #[error("state object {address} cannot be read: {message}")]
    Decode { address: String, message: String },
}

pub type StateResult<T> = Result<T, StateError>;

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
    fn parse(s: &str) -> Option<Self> {
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// Everything the planner reads, loaded in one read transaction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub lineage: String,
    pub serial: u64,
    pub objects: BTreeMap<Address, Value>,
    pub backups: Vec<BackupRecord>,
}

/// The store as the concurrent parts of the engine hold it: one connection,
/// taken for the duration of one read or one transaction, never across an
/// AWS call.
pub type SharedStore = std::sync::Arc<std::sync::Mutex<Store>>;

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_ts(path: &Path, s: &str) -> StateResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StateError::Corrupt {
            path: path.to_path_buf(),
            message: format!("bad time {s:?}: {e}"),
        })
}

/// A random-enough identifier without pulling in a UUID crate: time, pid and
/// a per-process counter hashed together.
pub fn new_id() -> String {
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = Sha256::new();
    h.update(format!(
        "{:?}-{}-{}-{:?}",
        std::time::SystemTime::now(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::thread::current().id()
    ));
    let d = h.finalize();
    let hex: String = d.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

const MIGRATIONS: &[&str] = &[
    // version 1
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE objects (address TEXT PRIMARY KEY, kind TEXT NOT NULL, value TEXT NOT NULL);
     CREATE TABLE backups (
        policy TEXT NOT NULL, id TEXT NOT NULL, account TEXT NOT NULL,
        started TEXT NOT NULL, finished TEXT, status TEXT NOT NULL,
        frozen_name TEXT, frozen_at TEXT, problems TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (policy, id));
     CREATE TABLE snapshots (
        id TEXT PRIMARY KEY, policy TEXT NOT NULL, backup_id TEXT NOT NULL,
        target TEXT NOT NULL, volume_id TEXT NOT NULL, region TEXT NOT NULL,
        FOREIGN KEY (policy, backup_id) REFERENCES backups (policy, id));
     CREATE INDEX snapshots_by_backup ON snapshots (policy, backup_id);
     CREATE TABLE alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT, policy TEXT NOT NULL,
        opened TEXT NOT NULL, closed TEXT, message TEXT NOT NULL);
     CREATE TABLE lock (
        slot INTEGER PRIMARY KEY CHECK (slot = 1), id TEXT NOT NULL, holder TEXT NOT NULL,
        operation TEXT NOT NULL, acquired TEXT NOT NULL, expires TEXT NOT NULL);",
    // version 2: VPC capture versions (one row per stored, changed document)
    "CREATE TABLE vpc_versions (
        id INTEGER PRIMARY KEY AUTOINCREMENT, capture TEXT NOT NULL, account TEXT NOT NULL,
        region TEXT NOT NULL, vpc_id TEXT NOT NULL, captured_at TEXT NOT NULL,
        hash TEXT NOT NULL, document TEXT NOT NULL);
     CREATE INDEX vpc_versions_by_vpc ON vpc_versions (capture, region, vpc_id, captured_at);",
    // version 3: the run mode's lease (one runner acts per workspace) and the
    // last scheduled slot each policy ran for
    "CREATE TABLE lease (
        slot INTEGER PRIMARY KEY CHECK (slot = 1), id TEXT NOT NULL, holder TEXT NOT NULL,
        acquired TEXT NOT NULL, expires TEXT NOT NULL);
     CREATE TABLE policy_runs (
        policy TEXT PRIMARY KEY, last_slot TEXT NOT NULL, last_backup TEXT);",
    // version 4: policy run options: consecutive failures per policy (alerts)
    // and the scripts each backup ran, with their captured stderr
    "CREATE TABLE policy_health (
        policy TEXT PRIMARY KEY, failures INTEGER NOT NULL DEFAULT 0);
     CREATE TABLE script_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT, policy TEXT NOT NULL, backup_id TEXT NOT NULL,
        attempt INTEGER NOT NULL, step TEXT NOT NULL, ok INTEGER NOT NULL,
        exit_code INTEGER, detail TEXT NOT NULL, stderr TEXT NOT NULL, at TEXT NOT NULL);
     CREATE INDEX script_runs_by_backup ON script_runs (policy, backup_id);",
    // version 5: what a catalog record is (an EBS snapshot, an AMI, a DB
    // snapshot or a DB cluster snapshot) and, for an AMI's EBS snapshots,
    // the AMI they belong to
    "ALTER TABLE snapshots ADD COLUMN kind TEXT NOT NULL DEFAULT 'ebs';
     ALTER TABLE snapshots ADD COLUMN image_id TEXT;",
    // version 6: retries waiting for their time (a run whose attempt failed,
    // kept in state so that a restarted runner still retries it) and the
    // scheduled runs skipped because the policy's previous run was in flight
    "CREATE TABLE policy_retries (
        policy TEXT PRIMARY KEY, slot TEXT NOT NULL, attempt INTEGER NOT NULL,
        due TEXT NOT NULL);
     CREATE TABLE skipped_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT, policy TEXT NOT NULL, slot TEXT NOT NULL,
        at TEXT NOT NULL, reason TEXT NOT NULL);",
];

impl Store {
    /// Opens the state file, creating it (and its directory) with a fresh
    /// lineage when missing, and migrating an older schema.
    pub fn open(path: &Path) -> StateResult<Store> {
        let sq = |source| StateError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| StateError::Corrupt {
                    path: path.to_path_buf(),
                    message: format!("cannot create directory {}: {e}", dir.display()),
                })?;
            }
        }
        let conn = Connection::open(path).map_err(sq)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sq)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sq)?;
        // WAL with NORMAL: every commit is atomic and survives a killed process;
        // only an OS crash or power loss can drop the newest commits, and the
        // snapshots they recorded carry tags the next backup adopts them by.
        // FULL would fsync once per target and double a 1,000-target tick.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sq)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(sq)?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.migrate()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> StateError {
        StateError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn migrate(&mut self) -> StateResult<()> {
        let path = self.path.clone();
        let sq = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sq)?;
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(sq)?;
        if version > SCHEMA_VERSION {
            return Err(StateError::TooNew {
                path: path.clone(),
                found: version,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql).map_err(sq)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(sq)?;
        }
        if version == 0 {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('lineage', ?1), ('serial', '0')",
                params![new_id()],
            )
            .map_err(sq)?;
        }
        tx.commit().map_err(sq)
    }

    fn meta(conn: &Connection, key: &str) -> rusqlite::Result<String> {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
            r.get(0)
        })
    }

    pub fn lineage(&self) -> StateResult<String> {
        Self::meta(&self.conn, "lineage").map_err(|e| self.err(e))
    }

    pub fn serial(&self) -> StateResult<u64> {
        let s = Self::meta(&self.conn, "serial").map_err(|e| self.err(e))?;
        s.parse().map_err(|_| StateError::Corrupt {
            path: self.path.clone(),
            message: format!("bad serial {s:?}"),
        })
    }

    /// Reads everything the planner needs in one consistent view.
    pub fn load(&mut self) -> StateResult<Snapshot> {
        let path = self.path.clone();
        let sq = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sq)?;
        let lineage = Self::meta(&tx, "lineage").map_err(sq)?;
        let serial_s = Self::meta(&tx, "serial").map_err(sq)?;
        let serial = serial_s.parse().map_err(|_| StateError::Corrupt {
            path: path.clone(),
            message: format!("bad serial {serial_s:?}"),
        })?;
        let mut objects = BTreeMap::new();
        {
            let mut st = tx
                .prepare("SELECT address, value FROM objects")
                .map_err(sq)?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(sq)?;
            for row in rows {
                let (a, v) = row.map_err(sq)?;
                let addr: Address = a.parse().map_err(|e| StateError::Corrupt {
                    path: path.clone(),
                    message: format!("{e}"),
                })?;
                let value = serde_json::from_str(&v).map_err(|e| StateError::Corrupt {
                    path: path.clone(),
                    message: format!("{addr}: {e}"),
                })?;
                objects.insert(addr, value);
            }
        }
        let backups = read_backups(&tx, &path, None)?;
        let snap = Snapshot {
            lineage,
            serial,
            objects,
            backups,
        };
        snap.check_objects()?;
        Ok(snap)
    }

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

    /// Runs `f` in one immediate (write-locked) transaction and bumps the
    /// serial when it commits. Either all of `f`'s writes land or none.
    pub fn transaction<T>(
        &mut self,
        f: impl FnOnce(&mut Tx<'_>) -> StateResult<T>,
    ) -> StateResult<T> {
        let path = self.path.clone();
        let sq = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sq)?;
        let mut w = Tx {
            tx,
            path: path.clone(),
        };
        let out = f(&mut w)?;
        w.tx.execute(
            "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'serial'",
            [],
        )
        .map_err(sq)?;
        w.tx.commit().map_err(sq)?;
        Ok(out)
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
}

fn read_backups(
    conn: &Connection,
    path: &Path,
    policy: Option<&str>,
) -> StateResult<Vec<BackupRecord>> {
    let sq = |source| StateError::Sqlite {
        path: path.to_path_buf(),
        source,
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
                        kind: ArtifactKind::parse(&r.get::<_, String>(6)?).unwrap_or_default(),
                        image: r.get(7)?,
                    },
                ))
            })
            .map_err(sq)?;
        for row in rows {
            let (k, s) = row.map_err(sq)?;
            snaps.entry(k).or_default().push(s);
        }
    }
    let mut st = conn
        .prepare(
            "SELECT policy, id, account, started, finished, status, frozen_name, frozen_at, problems
             FROM backups WHERE ?1 IS NULL OR policy = ?1 ORDER BY started, policy, id",
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
            ))
        })
        .map_err(sq)?;
    let mut out = Vec::new();
    for row in rows {
        let (policy, id, account, started, finished, status, frozen_name, frozen_at, problems) =
            row.map_err(sq)?;
        let corrupt = |m: String| StateError::Corrupt {
            path: path.to_path_buf(),
            message: m,
        };
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

/// The writes of one transaction.
pub struct Tx<'a> {
    tx: rusqlite::Transaction<'a>,
    path: PathBuf,
}

impl Tx<'_> {
    fn err(&self, source: rusqlite::Error) -> StateError {
        StateError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    pub fn put_object(&mut self, addr: &Address, value: &Value) -> StateResult<()> {
        self.tx
            .execute(
                "INSERT OR REPLACE INTO objects (address, kind, value) VALUES (?1, ?2, ?3)",
                params![addr.to_string(), addr.kind(), value.to_string()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn delete_object(&mut self, addr: &Address) -> StateResult<()> {
        self.tx
            .execute(
                "DELETE FROM objects WHERE address = ?1",
                params![addr.to_string()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

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

    pub fn insert_backup(&mut self, b: &BackupRecord) -> StateResult<()> {
        self.tx
            .execute(
                "INSERT INTO backups (policy, id, account, started, finished, status, problems) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    b.policy,
                    b.id,
                    b.account,
                    ts(b.started),
                    b.finished.map(ts),
                    b.status.as_str(),
                    serde_json::to_string(&b.problems).unwrap_or_else(|_| "[]".into())
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
        Ok(())
    }

    /// Forgets a snapshot that no longer exists in AWS. Its backup is no
    /// longer whole, so a successful one becomes partial: it must not go on
    /// counting as a generation.
    pub fn forget_snapshot(&mut self, id: &str) -> StateResult<()> {
        let owner: Option<(String, String, String)> = self
            .tx
            .query_row(
                "SELECT b.policy, b.id, b.problems FROM snapshots s
                 JOIN backups b ON b.policy = s.policy AND b.id = s.backup_id WHERE s.id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        if let Some((policy, backup_id, problems)) = owner {
            let mut problems: Vec<String> = serde_json::from_str(&problems).unwrap_or_default();
            problems.push(format!("snapshot {id} was deleted outside Lifeboat"));
            self.tx
                .execute(
                    "UPDATE backups SET problems = ?3,
                        status = CASE status WHEN 'success' THEN 'partial' ELSE status END
                     WHERE policy = ?1 AND id = ?2",
                    params![
                        policy,
                        backup_id,
                        serde_json::to_string(&problems).unwrap_or_else(|_| "[]".into())
                    ],
                )
                .map_err(|e| self.err(e))?;
        }
        self.delete_snapshot(id)
    }

    pub fn delete_snapshot(&mut self, id: &str) -> StateResult<()> {
        self.tx
            .execute("DELETE FROM snapshots WHERE id = ?1", params![id])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Removes a backup record; its snapshots must be gone first.
    pub fn delete_backup(&mut self, policy: &str, id: &str) -> StateResult<()> {
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
        self.tx
            .execute(
                "DELETE FROM backups WHERE policy = ?1 AND id = ?2",
                params![policy, id],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
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

    /// Stores a new VPC capture version (`v.id` is ignored).
    /// Removes one capture version (retention of captures).
    pub fn delete_vpc_version(&mut self, id: i64) -> StateResult<()> {
        self.tx
            .execute("DELETE FROM vpc_versions WHERE id = ?1", params![id])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

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
    fn new_state_has_lineage_and_serial_zero_and_reopens_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.db");
        let s = Store::open(&path).unwrap();
        let lineage = s.lineage().unwrap();
        assert_eq!(s.serial().unwrap(), 0);
        drop(s);
        let s = Store::open(&path).unwrap();
        assert_eq!(s.lineage().unwrap(), lineage);
    }

    #[test]
    fn transaction_bumps_serial_and_a_failed_one_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("state.db")).unwrap();
        s.transaction(|tx| {
            tx.put_object(
                &Address::policy("web"),
                &serde_json::json!({"generations": 2}),
            )
        })
        .unwrap();
        assert_eq!(s.serial().unwrap(), 1);
        let r: StateResult<()> = s.transaction(|tx| {
            tx.put_object(&Address::policy("db"), &serde_json::json!({}))?;
            Err(StateError::Conflict("boom".into()))
        });
        assert!(r.is_err());
        let snap = s.load().unwrap();
        assert_eq!(snap.serial, 1);
        assert_eq!(
            snap.objects
                .keys()
                .map(|a| a.to_string())
                .collect::<Vec<_>>(),
            vec!["policy.web"]
        );
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
        assert!(s.transaction(|tx| tx.delete_backup("web", "b1")).is_err());
        s.transaction(|tx| {
            tx.delete_snapshot("snap-b1")?;
            tx.delete_backup("web", "b1")
        })
        .unwrap();
        assert_eq!(s.backups(None).unwrap().len(), 1);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        drop(Store::open(&path).unwrap());
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        assert!(matches!(
            Store::open(&path),
            Err(StateError::TooNew { found: 99, .. })
        ));
    }
}
