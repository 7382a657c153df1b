//! The shared-state port: where a workspace lives when it is not a single
//! SQLite file on one disk (the DynamoDB backend; in-memory in tests).
//!
//! The engine keeps its catalog in SQLite either way. With a remote, that
//! SQLite file is a cache (`.lifeboat/cache/…`) and the remote is the truth:
//! every local commit is first appended to the remote as one commit, with
//! the rows it changed, and only lands locally once the remote accepted it
//! (see `replica.rs`). A commit names the revision it was made on and the
//! holds (state lock, run lease) its writer believes it has; the remote
//! refuses it when either is no longer so. That is the fencing: a paused or
//! partitioned process that lost its lease cannot write afterwards.
//!
//! The lock and the lease are not rows of the log: they change far more
//! often than the state (a lease is renewed every few seconds) and are
//! single records with conditional writes of their own.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One row a commit wrote or deleted: its table, its primary key (a JSON
/// array of the key columns, in order, or `[rowid]` for a table without
/// one) and its whole new value (`None`: deleted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowChange {
    pub table: String,
    pub key: Value,
    pub row: Option<Map<String, Value>>,
}

/// One accepted commit: the revision it made and the rows it changed, in
/// the order they were written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commit {
    pub rev: u64,
    pub changes: Vec<RowChange>,
}

/// What a reader needs to reach the remote's head from revision `since`.
#[derive(Debug, Clone, PartialEq)]
pub enum Pull {
    /// The commits after `since`, oldest first (empty: up to date).
    Log(Vec<Commit>),
    /// The whole workspace as of `rev`: every live row. Given when `since`
    /// is 0, or older than the log the remote still keeps.
    Full { rev: u64, rows: Vec<RowChange> },
}

/// Which single-record hold: the state lock or the run lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HoldKind {
    Lock,
    Lease,
}

/// A hold as the remote keeps it. `epoch` counts the takes of this hold in
/// the workspace, so a log line can say which term a runner acted in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldRecord {
    pub id: String,
    pub holder: String,
    pub operation: String,
    /// RFC 3339 times, as the SQLite backend writes them.
    pub acquired: String,
    pub expires: String,
    /// The holder's precise identity (`state::holder::HolderId`, as JSON).
    pub holder_id: Option<String>,
    pub epoch: u64,
}

/// The holds a commit's writer has: the remote checks each one named is
/// still the current hold of its kind, in the same transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fence {
    pub lock: Option<String>,
    pub lease: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    /// Someone else committed since `base`: pull and try again.
    #[error(
        "the workspace moved on (revision {found}) while this change was made on revision {base}"
    )]
    Conflict { base: u64, found: u64 },
    /// A hold named in the fence is no longer the writer's.
    #[error("this process no longer holds the {0}; the change was refused")]
    Fenced(String),
    /// The workspace's schema is newer or older than this build's.
    #[error("{0}")]
    Schema(String),
    /// Anything else: the message names the table, region and action.
    #[error("{0}")]
    Failed(String),
}

/// A workspace in a shared store. Calls block: the store is used from
/// synchronous code (under the shared store's mutex), and an implementation
/// over an async SDK runs its own runtime.
pub trait Remote: Send + Sync {
    /// For messages: `dynamodb table T (REGION), workspace W`.
    fn describe(&self) -> String;
    /// What tells this store apart from another of the same description
    /// (a table made again, restored, or in another account): a cache
    /// made of one is never used for another.
    fn incarnation(&self) -> Result<String, RemoteError>;
    /// The schema version the workspace's rows were written with (0: the
    /// workspace is empty), read consistently.
    fn schema(&self) -> Result<i64, RemoteError>;
    /// The current revision (0: empty), read consistently.
    fn head(&self) -> Result<u64, RemoteError>;
    /// What changed after `since`, read consistently.
    fn pull(&self, since: u64) -> Result<Pull, RemoteError>;
    /// Appends `changes` as revision `base + 1`, atomically, if the head is
    /// still `base` and every hold in `fence` is still current; records
    /// `schema` as the workspace's schema version. A change too large for
    /// one remote transaction is staged in steps that are each invisible
    /// until the last one publishes them.
    fn commit(
        &self,
        base: u64,
        schema: i64,
        fence: &Fence,
        changes: &[RowChange],
    ) -> Result<u64, RemoteError>;
    /// The current hold of `kind`, if any (live or not), read consistently.
    fn hold(&self, kind: HoldKind) -> Result<Option<HoldRecord>, RemoteError>;
    /// Writes `new` as the hold of `kind` if the current one is still
    /// `replacing`, exactly as the taker read and judged it (same id,
    /// epoch and expiry: a renewal since then makes it a `Conflict`;
    /// `None`: there is none). `new.epoch` is set by
    /// the remote to one more than the hold it replaces (or the last
    /// known). Returns the hold as written. `Conflict` when it changed.
    fn take_hold(
        &self,
        kind: HoldKind,
        new: &HoldRecord,
        replacing: Option<&HoldRecord>,
    ) -> Result<HoldRecord, RemoteError>;
    /// Moves the expiry of hold `id`; `Ok(false)` when `id` is not the
    /// current hold of `kind` any more.
    fn renew_hold(&self, kind: HoldKind, id: &str, expires: &str) -> Result<bool, RemoteError>;
    /// Removes hold `id` if it is still the current one (no-op otherwise).
    fn release_hold(&self, kind: HoldKind, id: &str) -> Result<(), RemoteError>;
    /// Folds the log into a copy of the live rows and drops the log it
    /// covers, so that the log does not grow for ever; a reader from
    /// before it then gets [`Pull::Full`]. Returns the revision folded to
    /// (`None`: nothing to fold). Safe beside commits.
    fn compact(&self) -> Result<Option<u64>, RemoteError>;
}
