//! The state file itself: opening and migrating it, its lineage and serial,
//! the consistent read the planner works from, and the one transaction every
//! write goes through.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::catalog::{read_backups, BackupRecord};
use super::objects::StoredValue;
use crate::addr::Address;

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
    /// A symbolic link at the state path (see `state/file.rs`).
    #[error("state file {path} is a symbolic link (to {}); Lifeboat does not open its state through a link, which could point it at another file: name the file itself, or pass --follow-symlinks to open the link's target", target.display())]
    Symlink { path: PathBuf, target: PathBuf },
    #[error("state file {path} was written by a newer Lifeboat (schema version {found}, this build knows {SCHEMA_VERSION})")]
    TooNew { path: PathBuf, found: i64 },
    #[error("state is locked by {holder} for {operation} since {acquired} (lock ID {id}); if no other lifeboat is running, run `lifeboat force-unlock {id}`")]
    Locked {
        id: String,
        holder: String,
        operation: String,
        acquired: String,
    },
    /// [`StateError::Locked`] after waiting `--lock-timeout` for it.
    #[error("{refused} (waited {waited})")]
    LockWaitExpired {
        refused: Box<StateError>,
        waited: String,
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
    /// A backup runs in a live runner (which does not hold the state lock
    /// through its wait for AWS): `what` must wait for it.
    #[error("{what} refused: backup {backup} of policy.{policy} is in flight since {started}, run by {holder} (run lease {lease}); try again once it finished (`lifeboat backups --policy {policy}` shows it)")]
    InFlight {
        policy: String,
        backup: String,
        started: String,
        holder: String,
        lease: String,
        what: String,
    },
    #[error("{0}")]
    Conflict(String),
    /// The shared state refused or failed (see `state::remote`).
    // Not a `source`: the message is the remote's, said once.
    #[error("shared state: {0}")]
    Remote(super::remote::RemoteError),
    #[error("state object {address} cannot be read: {message}")]
    Decode { address: String, message: String },
}

pub type StateResult<T> = Result<T, StateError>;

impl From<super::remote::RemoteError> for StateError {
    fn from(e: super::remote::RemoteError) -> StateError {
        StateError::Remote(e)
    }
}

/// Everything the planner reads, loaded in one read transaction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub lineage: String,
    pub serial: u64,
    pub objects: BTreeMap<Address, StoredValue>,
    pub backups: Vec<BackupRecord>,
    /// When each target that left its policy left it: policy, then target.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub departed: BTreeMap<String, BTreeMap<String, DateTime<Utc>>>,
    /// Every DR copy recorded, oldest backup first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dr_copies: Vec<super::dr::DrCopyRecord>,
    /// Every backup's DR status per destination.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dr_runs: Vec<super::dr::DrRun>,
    /// What running restores read: retention keeps it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_use: Vec<super::in_use::InUse>,
}

/// The store as the concurrent parts of the engine hold it: one connection,
/// taken for the duration of one read or one transaction, never across an
/// AWS call.
pub type SharedStore = std::sync::Arc<std::sync::Mutex<Store>>;

pub struct Store {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    /// The shared workspace this file caches, if any (`replica.rs`).
    pub(super) replica: Option<super::replica::Replica>,
    /// The holds this store took of a state file of its own (shared state
    /// keeps its fence in the replica): every commit checks, in its
    /// transaction, that they are still this store's.
    pub(super) local_fence: std::sync::Mutex<super::remote::Fence>,
    /// Opened for a command that only reads ([`Store::open_read_only`]):
    /// nothing it does records anything.
    pub(super) reading: Option<super::reading::Reading>,
    /// How long the report rows of deleted records are kept (`history.rs`).
    pub(super) report_retention: chrono::Duration,
}

pub(super) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) fn parse_ts(path: &Path, s: &str) -> StateResult<DateTime<Utc>> {
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

pub(super) const MIGRATIONS: &[&str] = &[
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
    // version 7: the order in which backups were taken. Retention ranks by
    // it, never by clock values: a wrong clock or a `--now` in the future
    // cannot make an old backup look newest. Rows so far were inserted in
    // the order they were taken, and rowid keeps that order.
    "ALTER TABLE backups ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
     UPDATE backups SET seq = rowid;",
    // version 8: the precise identity of a lock's or lease's holder (host,
    // boot, pid namespace, pid, start time; see state::holder), and the AWS
    // account id each configured account's credentials resolved to first
    "ALTER TABLE lock ADD COLUMN holder_id TEXT;
     ALTER TABLE lease ADD COLUMN holder_id TEXT;
     CREATE TABLE account_ids (
        account TEXT PRIMARY KEY, account_id TEXT NOT NULL, recorded TEXT NOT NULL);",
    // version 9: when each target left its policy, so that its last backup
    // is kept for `departed_retention` from then
    "CREATE TABLE departed_targets (
        policy TEXT NOT NULL, target TEXT NOT NULL, at TEXT NOT NULL,
        PRIMARY KEY (policy, target));",
    // version 10: DR: each backup's status per destination, and every copy
    // made (no foreign key to backups: copies outlive the local backup)
    "CREATE TABLE dr_runs (
        policy TEXT NOT NULL, backup_id TEXT NOT NULL, backup_seq INTEGER NOT NULL,
        account TEXT NOT NULL, region TEXT NOT NULL, status TEXT NOT NULL,
        started TEXT NOT NULL, updated TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (policy, backup_id, account, region));
     CREATE TABLE dr_copies (
        id TEXT NOT NULL, account TEXT NOT NULL, region TEXT NOT NULL, kind TEXT NOT NULL,
        arn TEXT, image_id TEXT, source_id TEXT NOT NULL, source_region TEXT NOT NULL,
        source_account TEXT NOT NULL, target TEXT NOT NULL, policy TEXT NOT NULL,
        backup_id TEXT NOT NULL, backup_seq INTEGER NOT NULL, status TEXT NOT NULL,
        started TEXT NOT NULL, finished TEXT, expired TEXT, problem TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (account, region, id));
     CREATE INDEX dr_copies_by_backup ON dr_copies (policy, backup_id);",
    // version 11: secured-DR checks: the last check of each secured account and what
    // it found (run mode checks again every `check_every` from then)
    "CREATE TABLE secured_checks (
        account TEXT PRIMARY KEY, checked_at TEXT NOT NULL, findings INTEGER NOT NULL,
        principals INTEGER NOT NULL, policies INTEGER NOT NULL);",
    // version 12: restore points: what each target of a backup was when it was
    // taken (an instance's type, placement and disks; a database's class and
    // engine), as JSON, so that a restore rebuilds it after it is gone
    "CREATE TABLE restore_points (
        policy TEXT NOT NULL, backup_id TEXT NOT NULL, target TEXT NOT NULL,
        region TEXT NOT NULL, shape TEXT NOT NULL,
        PRIMARY KEY (policy, backup_id, target),
        FOREIGN KEY (policy, backup_id) REFERENCES backups (policy, id) ON DELETE CASCADE);",
    // version 13: restores and what each created, recorded as each create call
    // returns, so that a drill killed midway is torn down by the next runner
    "CREATE TABLE restores (
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, target TEXT NOT NULL,
        policy TEXT NOT NULL, backup_id TEXT NOT NULL, source TEXT NOT NULL,
        account TEXT NOT NULL, region TEXT NOT NULL, drill TEXT,
        operator TEXT NOT NULL, started TEXT NOT NULL, ready TEXT, finished TEXT,
        status TEXT NOT NULL, backup_started TEXT NOT NULL, problem TEXT NOT NULL DEFAULT '');
     CREATE TABLE restored_resources (
        restore_id TEXT NOT NULL REFERENCES restores (id) ON DELETE CASCADE,
        kind TEXT NOT NULL, id TEXT NOT NULL, created TEXT NOT NULL, removed TEXT,
        PRIMARY KEY (restore_id, kind, id));",
    // version 14: drills of recovery scenarios: who runs each (so that the
    // next process tears down the creations of one that died), the check's
    // result, and the times to recover
    "CREATE TABLE drills (
        id TEXT PRIMARY KEY, scenario TEXT NOT NULL, started TEXT NOT NULL,
        finished TEXT, status TEXT NOT NULL, problem TEXT NOT NULL DEFAULT '',
        holder TEXT NOT NULL, check_exit INTEGER, check_ok INTEGER,
        check_output TEXT NOT NULL DEFAULT '', rto_seconds INTEGER, rpo_seconds INTEGER,
        keep_until TEXT, torn_down TEXT);
     CREATE INDEX drills_by_scenario ON drills (scenario, started);",
    // version 15: restores from DR copies whose local backup expired. A
    // copy keeps what a restore needs of its backup once the backup is gone
    // (the source volume, when the backup was taken, its problems), and
    // restore points lose their cascade: they stay while the backup or any
    // copy of it remains (the catalog deletes them with the last of those).
    "CREATE TABLE restore_points_kept (
        policy TEXT NOT NULL, backup_id TEXT NOT NULL, target TEXT NOT NULL,
        region TEXT NOT NULL, shape TEXT NOT NULL,
        PRIMARY KEY (policy, backup_id, target));
     INSERT INTO restore_points_kept SELECT policy, backup_id, target, region, shape FROM restore_points;
     DROP TABLE restore_points;
     ALTER TABLE restore_points_kept RENAME TO restore_points;
     ALTER TABLE dr_copies ADD COLUMN volume_id TEXT;
     ALTER TABLE dr_copies ADD COLUMN backup_started TEXT;
     ALTER TABLE dr_copies ADD COLUMN backup_problems TEXT;
     UPDATE dr_copies SET
        volume_id = (SELECT s.volume_id FROM snapshots s WHERE s.id = dr_copies.source_id),
        backup_started = (SELECT b.started FROM backups b
                          WHERE b.policy = dr_copies.policy AND b.id = dr_copies.backup_id),
        backup_problems = (SELECT b.problems FROM backups b
                           WHERE b.policy = dr_copies.policy AND b.id = dr_copies.backup_id);",
    // version 16: membership changes a backup found (a target that joined a
    // policy by its tags, or left it), with why
    "CREATE TABLE member_changes (
        id INTEGER PRIMARY KEY AUTOINCREMENT, policy TEXT NOT NULL, target TEXT NOT NULL,
        kind TEXT NOT NULL, change TEXT NOT NULL, reason TEXT NOT NULL,
        alert INTEGER NOT NULL DEFAULT 0, at TEXT NOT NULL, backup_id TEXT);
     CREATE INDEX member_changes_by_policy ON member_changes (policy, at);",
    // version 17: shares held: who needs each share of an artifact with another account
    // (a restore, a DR run), so that only the last holder unshares; and the
    // process running each restore and since when, so that one killed midway is reaped
    "CREATE TABLE share_holds (
        artifact_id TEXT NOT NULL, kind TEXT NOT NULL, region TEXT NOT NULL,
        shared_with TEXT NOT NULL, owner TEXT NOT NULL, holder TEXT NOT NULL,
        since TEXT NOT NULL, releasing TEXT,
        PRIMARY KEY (artifact_id, region, shared_with, holder));
     CREATE INDEX share_holds_by_holder ON share_holds (holder);
     ALTER TABLE restores ADD COLUMN holder TEXT;
     ALTER TABLE restores ADD COLUMN holder_since TEXT;",
    // version 18: resource control: one row per target of each operation of a group
    // (stop, hibernate, start), with when it was asked and verified; the
    // rows of one operation share `operation`, and `look` marks the hourly
    // database looks (an "on" starts what the last non-look "off" stopped)
    "CREATE TABLE control_operations (
        id INTEGER PRIMARY KEY, grp TEXT NOT NULL, target TEXT NOT NULL,
        action TEXT NOT NULL, requested TEXT NOT NULL, verified TEXT,
        result TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '',
        operation INTEGER NOT NULL DEFAULT 0, look INTEGER NOT NULL DEFAULT 0);
     CREATE INDEX control_operations_by_group ON control_operations (grp, operation);",
    // version 19: reports. Which attempt of its scheduled run each backup
    // was (earlier backups: the first), and the report rows of backups and
    // snapshot records the catalog deleted, with when (`state/history.rs`),
    // kept for `report_retention`
    "ALTER TABLE backups ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
     CREATE TABLE report_backups (
        policy TEXT NOT NULL, id TEXT NOT NULL, account TEXT NOT NULL, status TEXT NOT NULL,
        dr_status TEXT NOT NULL, started TEXT NOT NULL, finished TEXT,
        attempt INTEGER NOT NULL, deleted_at TEXT NOT NULL,
        PRIMARY KEY (policy, id));
     CREATE INDEX report_backups_by_deleted ON report_backups (deleted_at);
     CREATE TABLE report_snapshots (
        id TEXT PRIMARY KEY, policy TEXT NOT NULL, backup_id TEXT NOT NULL,
        account TEXT NOT NULL, region TEXT NOT NULL, kind TEXT NOT NULL, target TEXT NOT NULL,
        volume_id TEXT NOT NULL, succeeded INTEGER NOT NULL, finished TEXT,
        deleted_at TEXT NOT NULL);
     CREATE INDEX report_snapshots_by_deleted ON report_snapshots (deleted_at);",
    // version 20: EBS Snapshot Lock on DR copies: the mode and expiry of the
    // lock a copy got (retention keeps it until then), and why the last
    // lock call failed (the next run tries again)
    "ALTER TABLE dr_copies ADD COLUMN lock_mode TEXT;
     ALTER TABLE dr_copies ADD COLUMN lock_until TEXT;
     ALTER TABLE dr_copies ADD COLUMN lock_problem TEXT NOT NULL DEFAULT '';",
    // version 21: external ids are kept only as keyed digests; the rows
    // an older Lifeboat wrote in clear are sealed in Rust after this
    // (`applied::seal_external_ids`), in the same transaction
    "UPDATE meta SET value = value WHERE 0;",
];

/// The first schema version that keeps no external id in clear.
const SEALED_SINCE: usize = 21;

impl Store {
    /// Opens the state file, creating it (and its directory) with a fresh
    /// lineage when missing, and migrating an older schema.
    ///
    /// The file and the directories made for it are private, and a
    /// symbolic link at `path` is refused (`state/file.rs`).
    pub fn open(path: &Path) -> StateResult<Store> {
        let sq = |source| super::replica::sqlite_err(path, source);
        let resolved = super::file::prepare(path)?;
        let conn = Connection::open_with_flags(
            resolved,
            OpenFlags::default() | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(sq)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sq)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sq)?;
        // WAL with FULL: every commit is atomic and is on disk when it
        // returns, so a power loss cannot undo a recorded delete, freeze or
        // new artifact (with NORMAL it could drop the newest commits, and a
        // snapshot recorded only by them would be forgotten by the catalog
        // while AWS keeps it). The cost is one WAL fsync per commit; the
        // README gives its measure on the 1,000-target tick.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sq)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(sq)?;
        // What a write replaces or deletes is zeroed, not left in the
        // page's free space: an external id sealed by the migration, a
        // record removed, cannot be read back out of the file.
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(sq)?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            replica: None,
            local_fence: Default::default(),
            reading: None,
            report_retention: chrono::Duration::days(super::history::DEFAULT_REPORT_RETENTION_DAYS),
        };
        store.keep_aside_before_migrating()?;
        store.migrate()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn err(&self, source: rusqlite::Error) -> StateError {
        super::replica::sqlite_err(&self.path, source)
    }

    pub(super) fn migrate(&mut self) -> StateResult<()> {
        let path = self.path.clone();
        let sq = |source| super::replica::sqlite_err(&path, source);
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
        // A negative version is no version Lifeboat wrote: skipping every
        // migration would leave a file without its tables.
        let done = usize::try_from(version).map_err(|_| StateError::Corrupt {
            path: path.clone(),
            message: format!(
                "schema version {version} (PRAGMA user_version) is not one Lifeboat writes"
            ),
        })?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
            tx.execute_batch(sql).map_err(sq)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(sq)?;
        }
        if done > 0 && done < SEALED_SINCE {
            super::applied::seal_external_ids(&tx).map_err(sq)?;
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
        self.sync()?;
        let path = self.path.clone();
        let sq = |source| super::replica::sqlite_err(&path, source);
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
                let value = StoredValue::from_text(v).map_err(|e| StateError::Corrupt {
                    path: path.clone(),
                    message: format!("{addr}: {e}"),
                })?;
                objects.insert(addr, value);
            }
        }
        let backups = read_backups(&tx, &path, None)?;
        let mut departed: BTreeMap<String, BTreeMap<String, DateTime<Utc>>> = BTreeMap::new();
        {
            let mut st = tx
                .prepare("SELECT policy, target, at FROM departed_targets")
                .map_err(sq)?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(sq)?;
            for row in rows {
                let (policy, target, at) = row.map_err(sq)?;
                departed
                    .entry(policy)
                    .or_default()
                    .insert(target, parse_ts(&path, &at)?);
            }
        }
        let dr_copies = super::dr::read_copies(&tx, &path, None)?;
        let dr_runs = super::dr::read_runs(&tx, &path, None)?;
        let in_use = super::in_use::read_in_use(&tx, &path)?;
        let snap = Snapshot {
            lineage,
            serial,
            objects,
            backups,
            departed,
            dr_copies,
            dr_runs,
            in_use,
        };
        snap.check_objects()?;
        Ok(snap)
    }

    /// serial when it commits. Either all of `f`'s writes land or none.
    pub fn transaction<T>(
        &mut self,
        mut f: impl FnMut(&mut Tx<'_>) -> StateResult<T>,
    ) -> StateResult<T> {
        // With shared state another writer may commit first: the change
        // is then made again on the state that writer left, a few times.
        // Optimistic: made on the cache as it is, and pulled only when the
        // remote says another writer got there first (a sole writer, the
        // runner in its tick, pays one round trip per change, not two).
        let mut attempt = 0;
        loop {
            if attempt > 0 {
                self.sync()?;
            }
            match self.transaction_once(&mut f) {
                Err(e)
                    if super::replica::is_conflict(&e)
                        && attempt < super::replica::CONFLICT_RETRIES =>
                {
                    attempt += 1;
                }
                out => return out,
            }
        }
    }

    /// [`Store::transaction`] made once, on the state as last read: for a
    /// change built from reads made before it, which must not be written
    /// over a newer state another writer left. Nothing is pulled first, so
    /// a change committed elsewhere since those reads makes it a conflict,
    /// the caller's error.
    pub fn transaction_no_retry<T>(
        &mut self,
        mut f: impl FnMut(&mut Tx<'_>) -> StateResult<T>,
    ) -> StateResult<T> {
        self.transaction_once(&mut f)
    }

    fn transaction_once<T>(
        &mut self,
        f: &mut impl FnMut(&mut Tx<'_>) -> StateResult<T>,
    ) -> StateResult<T> {
        let path = self.path.clone();
        let sq = |source| super::replica::sqlite_err(&path, source);
        let fence = match self.replica {
            None => Some(self.local_fence.lock().expect("fence").clone()),
            Some(_) => None,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sq)?;
        let mut w = Tx {
            tx,
            path: path.clone(),
            report_retention: self.report_retention,
        };
        let out = f(&mut w)?;
        if let Some(fence) = fence {
            super::lease::check_fence(&w.tx, &path, &fence)?;
        }
        w.tx.execute(
            "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'serial'",
            [],
        )
        .map_err(sq)?;
        w.tx.commit().map_err(sq)?;
        Ok(out)
    }
}

/// The writes of one transaction.
pub struct Tx<'a> {
    pub(super) tx: rusqlite::Transaction<'a>,
    pub(super) path: PathBuf,
    pub(super) report_retention: chrono::Duration,
}

/// The tables that keep a policy's run bookkeeping under its name: what a
/// move carries to the new name (and clears of a removed policy's leftovers
/// there first).
const POLICY_BOOKKEEPING: &[&str] = &[
    "alerts",
    "member_changes",
    "policy_runs",
    "policy_health",
    "script_runs",
    "policy_retries",
    "skipped_runs",
    "departed_targets",
];

impl Tx<'_> {
    pub(super) fn err(&self, source: rusqlite::Error) -> StateError {
        super::replica::sqlite_err(&self.path, source)
    }

    /// Stores `value` at `addr`, refusing one that would not load back
    /// ([`super::check_value`]): whoever writes (apply, a saved plan edited
    /// by hand or made by another version), no later load is left unable to
    /// read the state.
    pub fn put_object(&mut self, addr: &Address, value: &Value) -> StateResult<()> {
        super::check_value(addr, value)?;
        self.tx
            .execute(
                "INSERT OR REPLACE INTO objects (address, kind, value) VALUES (?1, ?2, ?3)",
                params![addr.to_string(), addr.kind(), value.to_string()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Renames policy `from` to `to` with everything recorded under its
    /// name: the policy and its targets, its backups and their artifacts,
    /// and the run mode's bookkeeping. Refused when `from` is not in state
    /// or `to` already is: a move never merges two histories.
    pub fn move_policy(&mut self, from: &str, to: &str) -> StateResult<()> {
        let (old, new) = (Address::policy(from), Address::policy(to));
        let value: Option<String> = self
            .tx
            .query_row(
                "SELECT value FROM objects WHERE address = ?1",
                params![old.to_string()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let taken: bool = self
            .tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM objects WHERE address = ?1)
                     OR EXISTS (SELECT 1 FROM backups WHERE policy = ?2)",
                params![new.to_string(), to],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        let Some(value) = value.filter(|_| !taken) else {
            return Err(StateError::Corrupt {
                path: self.path.to_path_buf(),
                message: format!(
                    "cannot move {old} to {new}: {old} is not in state, or {new} already is"
                ),
            });
        };
        let mut value: Value = serde_json::from_str(&value).map_err(|e| StateError::Corrupt {
            path: self.path.to_path_buf(),
            message: format!("{old}: {e}"),
        })?;
        value["name"] = Value::String(to.to_string());
        self.delete_object(&old)?;
        self.put_object(&new, &value)?;
        let targets: Vec<(String, String)> = {
            let mut st = self
                .tx
                .prepare("SELECT address, value FROM objects WHERE kind = 'target'")
                .map_err(|e| self.err(e))?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(|e| self.err(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?
        };
        for (addr, v) in targets {
            if let Ok(Address::Target { policy, id }) = addr.parse::<Address>() {
                if policy == from {
                    let v: Value = serde_json::from_str(&v).map_err(|e| StateError::Corrupt {
                        path: self.path.to_path_buf(),
                        message: format!("{addr}: {e}"),
                    })?;
                    self.delete_object(&Address::target(from, &id))?;
                    self.put_object(&Address::target(to, &id), &v)?;
                }
            }
        }
        // Rows a removed policy of the new name left behind (its last slot,
        // failure count, retry, alerts, logs) are not this policy's history:
        // they go, so that the rename neither merges them in nor collides
        // with them.
        for table in POLICY_BOOKKEEPING {
            self.tx
                .execute(
                    &format!("DELETE FROM {table} WHERE policy = ?1"),
                    params![to],
                )
                .map_err(|e| self.err(e))?;
        }
        // Snapshots point at their backup by (policy, id): checked at commit.
        self.tx
            .execute_batch("PRAGMA defer_foreign_keys = ON")
            .map_err(|e| self.err(e))?;
        // A policy's DR runs and copies, restore points and restores are
        // its history, like its backups.
        let history = [
            "backups",
            "snapshots",
            "dr_runs",
            "dr_copies",
            "restore_points",
            "restores",
        ];
        for table in history.iter().chain(POLICY_BOOKKEEPING) {
            self.tx
                .execute(
                    &format!("UPDATE {table} SET policy = ?2 WHERE policy = ?1"),
                    params![from, to],
                )
                .map_err(|e| self.err(e))?;
        }
        // The report rows of its deleted records follow it too; one of a
        // removed policy of the new name with the same backup id gives way.
        for table in ["report_backups", "report_snapshots"] {
            self.tx
                .execute(
                    &format!("UPDATE OR REPLACE {table} SET policy = ?2 WHERE policy = ?1"),
                    params![from, to],
                )
                .map_err(|e| self.err(e))?;
        }
        // A DR run's shares are held under its policy's name.
        self.move_dr_holders(from, to)
    }

    /// Records that target `id` left `policy` at `at` (the first time only:
    /// its last backup is kept from its departure, not from a later apply).
    pub fn target_departed(
        &mut self,
        policy: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> StateResult<()> {
        self.tx
            .execute(
                "INSERT OR IGNORE INTO departed_targets (policy, target, at) VALUES (?1, ?2, ?3)",
                params![policy, id, ts(at)],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Forgets the departures recorded for `policy` (removed: a policy of
    /// the same name later starts without them).
    pub fn forget_departures(&mut self, policy: &str) -> StateResult<()> {
        self.tx
            .execute(
                "DELETE FROM departed_targets WHERE policy = ?1",
                params![policy],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Target `id` is a member of `policy` (again).
    pub fn target_returned(&mut self, policy: &str, id: &str) -> StateResult<()> {
        self.tx
            .execute(
                "DELETE FROM departed_targets WHERE policy = ?1 AND target = ?2",
                params![policy, id],
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // Clone values are not decoded on load, so any JSON stands for one.
        s.transaction(|tx| {
            tx.put_object(
                &Address::vpc_clone("web"),
                &serde_json::json!({"stack_name": "web"}),
            )
        })
        .unwrap();
        assert_eq!(s.serial().unwrap(), 1);
        let r: StateResult<()> = s.transaction(|tx| {
            tx.put_object(&Address::vpc_clone("db"), &serde_json::json!({}))?;
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
            vec!["vpc_clone.web"]
        );
    }

    #[test]
    fn commits_are_durable_on_power_loss() {
        // A kill cannot test this (WAL survives one with NORMAL too): what
        // it rests on is the connection's setting, FULL (2), under which
        // every commit is fsynced before it returns.
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("state.db")).unwrap();
        let sync: i64 = s
            .conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous = FULL");
        let mode: String = s
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
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

    #[test]
    fn a_negative_schema_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        drop(Store::open(&path).unwrap());
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", -3).unwrap();
        drop(c);
        match Store::open(&path) {
            Err(StateError::Corrupt { message, .. }) => {
                assert!(message.contains("-3"), "{message}")
            }
            other => panic!("{:?}", other.err()),
        }
    }
}
