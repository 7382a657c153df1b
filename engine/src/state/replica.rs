//! A state store whose truth is a [`Remote`] (shared state): the SQLite
//! file is a cache of the remote workspace, and every write reaches the
//! remote before it lands locally.
//!
//! How a write is captured, whatever code path makes it (a
//! [`Store::transaction`], a bookkeeping write, an explicit `BEGIN`): each
//! replicated table carries temporary triggers (they live in this
//! connection only, the file keeps none) that hand every written or
//! deleted row to `lifeboat_row`, a Rust function gathering the
//! transaction's changes, and move the cache's revision to the one the
//! commit will make. SQLite's commit hook then appends the changes to the
//! remote as one commit on the revision the transaction started from; the
//! local commit proceeds only if the remote accepted it, and is otherwise
//! turned into a rollback. So the cache never holds a row the remote does
//! not, and its revision (`_replica.rev`) is that of its content, in the
//! same local transaction. A process killed after the remote commit and
//! before the local one simply pulls its own commit again.
//!
//! The state lock and the run lease are not replicated rows: they are the
//! remote's single-record holds (`lease.rs` routes to them). A commit
//! carries the holds its writer has taken ([`Fence`]); the remote refuses
//! it when one was taken over, so a writer that lost its lease while paused
//! can never write afterwards.

use std::sync::{Arc, Mutex};

use rusqlite::functions::FunctionFlags;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};

use super::remote::{Fence, Pull, Remote, RemoteError, RowChange};
use super::{StateError, StateResult, Store, SCHEMA_VERSION};

/// Tables that are not replicated: the holds (the remote keeps them as
/// records of their own) and SQLite's and the cache's own bookkeeping.
const LOCAL_TABLES: &[&str] = &["lock", "lease", "_replica", "sqlite_sequence"];

/// How many times a transaction is run again after another writer
/// committed first (each time on the state as that writer left it).
pub(super) const CONFLICT_RETRIES: usize = 8;

/// The replica side of a [`Store`]: the remote and what the current local
/// transaction captured for it.
pub(crate) struct Replica {
    pub(super) remote: Arc<dyn Remote>,
    pub(super) inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
pub(crate) struct Inner {
    /// Set while pulled commits are applied: those writes are the remote's
    /// already and are not captured again.
    applying: bool,
    /// The revision the current transaction started from (first capture).
    base: Option<u64>,
    changes: Vec<RowChange>,
    /// The holds this store has taken.
    pub(super) fence: Fence,
}

impl Inner {
    fn reset(&mut self) {
        self.base = None;
        self.changes.clear();
    }
}

impl Store {
    /// Opens the cache at `cache` of the remote workspace `remote`, brings
    /// it up to the remote's head, and starts an empty workspace with this
    /// cache's fresh lineage.
    pub fn open_shared(cache: &std::path::Path, remote: Arc<dyn Remote>) -> StateResult<Store> {
        let schema = remote.schema().map_err(StateError::Remote)?;
        if schema > SCHEMA_VERSION {
            return Err(StateError::Remote(RemoteError::Schema(format!(
                "{} was written by a newer Lifeboat (schema version {schema}, this build knows {SCHEMA_VERSION})",
                remote.describe()
            ))));
        }
        if schema != 0 && schema < SCHEMA_VERSION {
            return Err(StateError::Remote(RemoteError::Schema(format!(
                "{} was written by an older Lifeboat (schema version {schema}, this build writes {SCHEMA_VERSION}); \
                 run that version's `lifeboat state pull` for a copy, or `lifeboat state migrate` with it, before upgrading",
                remote.describe()
            ))));
        }
        let mut store = Store::open(cache)?;
        let inner = Arc::new(Mutex::new(Inner::default()));
        let incarnation = remote.incarnation()?;
        install(&mut store.conn, remote.clone(), &incarnation, inner.clone())
            .map_err(|e| store.err(e))?;
        let (head, local) = (
            remote.head().map_err(StateError::Remote)?,
            local_rev(&store.conn).map_err(|e| store.err(e))?,
        );
        if head < local {
            return Err(StateError::Remote(RemoteError::Failed(format!(
                "{} is at revision {head}, behind this cache {} (revision {local}): the workspace was reset or restored; \
                 move the cache aside to start from the remote as it is",
                remote.describe(),
                cache.display()
            ))));
        }
        store.replica = Some(Replica { remote, inner });
        store.sync()?;
        store.seed()?;
        Ok(store)
    }

    /// Where the state lives, for messages: the file, or the remote.
    pub fn location(&self) -> String {
        match &self.replica {
            Some(r) => r.remote.describe(),
            None => self.path.display().to_string(),
        }
    }

    /// Is this store a cache of a shared remote workspace?
    pub fn is_shared(&self) -> bool {
        self.replica.is_some()
    }

    /// The remote's revision this cache holds (0 for a local state file).
    pub fn revision(&self) -> StateResult<u64> {
        if self.replica.is_none() {
            return Ok(0);
        }
        local_rev(&self.conn).map_err(|e| self.err(e))
    }

    /// Brings the cache up to the remote's head (a no-op for a local
    /// state file). Readers call it before a consistent read; writers
    /// before each attempt.
    pub fn sync(&mut self) -> StateResult<()> {
        let Some(replica) = &self.replica else {
            return Ok(());
        };
        let remote = replica.remote.clone();
        let inner = replica.inner.clone();
        let since = local_rev(&self.conn).map_err(|e| self.err(e))?;
        let pull = remote.pull(since).map_err(StateError::Remote)?;
        let (full, commits) = match pull {
            Pull::Log(c) if c.is_empty() => return Ok(()),
            Pull::Log(c) => (false, c.into_iter().map(|c| (c.rev, c.changes)).collect()),
            Pull::Full { rev, rows } => (true, vec![(rev, rows)]),
        };
        inner.lock().expect("replica").applying = true;
        let applied = apply(&mut self.conn, full, since, &commits);
        inner.lock().expect("replica").applying = false;
        applied.map_err(|e| self.err(e))
    }

    /// An empty remote workspace is started with this cache's content (a
    /// fresh lineage, serial 0): the first commit, refused if another
    /// process started it first (that one's lineage is then pulled).
    fn seed(&mut self) -> StateResult<()> {
        let Some(replica) = &self.replica else {
            return Ok(());
        };
        if local_rev(&self.conn).map_err(|e| self.err(e))? > 0 {
            return Ok(());
        }
        let rows = dump(&self.conn).map_err(|e| self.err(e))?;
        match replica
            .remote
            .commit(0, SCHEMA_VERSION, &Fence::default(), &rows)
        {
            Ok(rev) => {
                self.conn
                    .execute("UPDATE _replica SET rev = ?1", params![rev as i64])
                    .map_err(|e| self.err(e))?;
                Ok(())
            }
            Err(RemoteError::Conflict { .. }) => self.sync(),
            Err(e) => Err(StateError::Remote(e)),
        }
    }

    /// Records a hold this store took (or gave up) in its fence.
    pub(super) fn fence_mut(&self, f: impl FnOnce(&mut Fence)) {
        match &self.replica {
            Some(r) => f(&mut r.inner.lock().expect("replica").fence),
            None => f(&mut self.local_fence.lock().expect("fence")),
        }
    }
}

/// Is `e` the remote saying another writer committed first?
pub(super) fn is_conflict(e: &StateError) -> bool {
    matches!(e, StateError::Remote(RemoteError::Conflict { .. }))
}

fn local_rev(conn: &Connection) -> rusqlite::Result<u64> {
    let rev: Option<i64> = conn
        .query_row("SELECT rev FROM _replica WHERE slot = 1", [], |r| r.get(0))
        .optional()?;
    Ok(rev.unwrap_or(0) as u64)
}

/// The replicated tables of this schema, with their columns and key
/// columns (empty: the table is keyed by rowid).
/// A replicated table: its name, its columns, its key columns (empty:
/// keyed by rowid).
type Table = (String, Vec<String>, Vec<String>);

fn tables(conn: &Connection) -> rusqlite::Result<Vec<Table>> {
    let names: Vec<String> = conn
        .prepare("SELECT name FROM main.sqlite_master WHERE type = 'table' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::new();
    for name in names {
        if LOCAL_TABLES.contains(&name.as_str()) {
            continue;
        }
        let mut cols = Vec::new();
        let mut keys: Vec<(i64, String)> = Vec::new();
        let mut st = conn.prepare(&format!("PRAGMA main.table_info(\"{name}\")"))?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, i64>(5)?)))?;
        for row in rows {
            let (col, pk) = row?;
            if pk > 0 {
                keys.push((pk, col.clone()));
            }
            cols.push(col);
        }
        keys.sort();
        out.push((name, cols, keys.into_iter().map(|(_, c)| c).collect()));
    }
    Ok(out)
}

/// The key expression of a row (`NEW` or `OLD`) and its whole value.
fn exprs(side: &str, cols: &[String], keys: &[String]) -> (String, String) {
    let key = if keys.is_empty() {
        format!("json_array({side}.rowid)")
    } else {
        let k: Vec<String> = keys.iter().map(|c| format!("{side}.\"{c}\"")).collect();
        format!("json_array({})", k.join(", "))
    };
    let mut fields: Vec<String> = cols
        .iter()
        .map(|c| format!("'{c}', {side}.\"{c}\""))
        .collect();
    if keys.is_empty() {
        fields.insert(0, format!("'rowid', {side}.rowid"));
    }
    (key, format!("json_object({})", fields.join(", ")))
}

/// Creates the cache's bookkeeping table, the capture function and the
/// triggers, and the hooks that commit to the remote.
fn install(
    conn: &mut Connection,
    remote: Arc<dyn Remote>,
    incarnation: &str,
    inner: Arc<Mutex<Inner>>,
) -> rusqlite::Result<()> {
    // The cache belongs to this description and incarnation of the store.
    let described = format!("{} ({incarnation})", remote.describe());
    start_cache(conn, &described)?;
    let captured = inner.clone();
    conn.create_scalar_function(
        "lifeboat_row",
        4,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DIRECTONLY,
        move |ctx| {
            let mut inner = captured.lock().expect("replica");
            if inner.applying {
                return Ok(0i64);
            }
            let table: String = ctx.get(0)?;
            let key: String = ctx.get(1)?;
            let row: Option<String> = ctx.get(2)?;
            let base: i64 = ctx.get(3)?;
            let bad = |e: serde_json::Error| rusqlite::Error::UserFunctionError(Box::new(e));
            let key: Value = serde_json::from_str(&key).map_err(bad)?;
            let row = match row {
                Some(r) => Some(serde_json::from_str::<Map<String, Value>>(&r).map_err(bad)?),
                None => None,
            };
            inner.base.get_or_insert(base as u64);
            inner.changes.push(RowChange { table, key, row });
            Ok(0i64)
        },
    )?;
    let next = inner.clone();
    conn.create_scalar_function(
        "lifeboat_next",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DIRECTONLY,
        move |ctx| {
            let rev: i64 = ctx.get(0)?;
            let inner = next.lock().expect("replica");
            Ok(match (inner.applying, inner.base) {
                (false, Some(base)) => base as i64 + 1,
                _ => rev,
            })
        },
    )?;
    for (t, cols, keys) in tables(conn)? {
        let (new_key, new_row) = exprs("NEW", &cols, &keys);
        let (old_key, _) = exprs("OLD", &cols, &keys);
        let base = "(SELECT rev FROM main._replica WHERE slot = 1)";
        let bump = "UPDATE main._replica SET rev = lifeboat_next(rev) WHERE slot = 1;";
        conn.execute_batch(&format!(
            "CREATE TEMP TRIGGER IF NOT EXISTS \"lifeboat_ins_{t}\" AFTER INSERT ON main.\"{t}\" BEGIN
                SELECT lifeboat_row('{t}', {new_key}, {new_row}, {base}); {bump}
             END;
             CREATE TEMP TRIGGER IF NOT EXISTS \"lifeboat_upd_{t}\" AFTER UPDATE ON main.\"{t}\" BEGIN
                SELECT lifeboat_row('{t}', {old_key}, NULL, {base}) WHERE {old_key} IS NOT {new_key};
                SELECT lifeboat_row('{t}', {new_key}, {new_row}, {base}); {bump}
             END;
             CREATE TEMP TRIGGER IF NOT EXISTS \"lifeboat_del_{t}\" AFTER DELETE ON main.\"{t}\" BEGIN
                SELECT lifeboat_row('{t}', {old_key}, NULL, {base}); {bump}
             END;"
        ))?;
    }
    // A row an `INSERT OR REPLACE` replaces on a unique key other than the
    // primary key is deleted without a delete trigger unless recursive
    // triggers are on: then it is captured like any delete.
    conn.execute_batch("PRAGMA recursive_triggers = ON")?;
    let rolled_back = inner.clone();
    conn.rollback_hook(Some(move || {
        rolled_back.lock().expect("replica").reset();
    }))?;
    // A local commit carrying captured changes lands only once the remote
    // accepted them; a refusal turns it into a rollback.
    conn.commit_hook(Some(move || {
        let mut st = inner.lock().expect("replica");
        if st.applying || st.changes.is_empty() {
            st.reset();
            return false;
        }
        let base = st.base.unwrap_or(0);
        let changes = coalesce(std::mem::take(&mut st.changes));
        let fence = st.fence.clone();
        st.reset();
        match remote.commit(base, SCHEMA_VERSION, &fence, &changes) {
            Ok(_) => false,
            Err(e) => {
                REFUSED.with(|r| *r.borrow_mut() = Some(e));
                true
            }
        }
    }))?;
    Ok(())
}

/// Makes `conn` a cache of the remote `described`: a cache of another
/// remote (or a state file never used as one) starts over, since its rows
/// are not this workspace's.
fn start_cache(conn: &Connection, described: &str) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _replica (
            slot INTEGER PRIMARY KEY CHECK (slot = 1), rev INTEGER NOT NULL, remote TEXT NOT NULL)",
    )?;
    // A cache of another remote (or of none) starts over: its rows are
    // not this workspace's.
    let of: Option<String> = conn
        .query_row("SELECT remote FROM _replica WHERE slot = 1", [], |r| {
            r.get(0)
        })
        .optional()?;
    if of.as_deref() != Some(described) {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let wiped = (|| -> rusqlite::Result<()> {
            conn.execute_batch("PRAGMA defer_foreign_keys = ON")?;
            for (t, _, _) in tables(conn)? {
                conn.execute(&format!("DELETE FROM \"{t}\""), [])?;
            }
            conn.execute(
                "INSERT OR REPLACE INTO _replica (slot, rev, remote) VALUES (1, 0, ?1)",
                params![described],
            )?;
            // A fresh lineage: the one the file had was its own or its
            // old remote's. The remote's replaces it on the first pull.
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('lineage', ?1), ('serial', '0')",
                params![super::new_id()],
            )?;
            Ok(())
        })();
        conn.execute_batch(if wiped.is_ok() { "COMMIT" } else { "ROLLBACK" })?;
        wiped?;
    }
    Ok(())
}

thread_local! {
    /// Why the remote refused the last commit made on this thread (the
    /// commit hook runs on the committing thread, inside its SQLite call).
    static REFUSED: std::cell::RefCell<Option<RemoteError>> = const { std::cell::RefCell::new(None) };
}

/// The error of a failed SQLite call on `path`: a commit the remote refused
/// is reported as that refusal, not as SQLite's "constraint failed".
pub(super) fn sqlite_err(path: &std::path::Path, source: rusqlite::Error) -> StateError {
    if let rusqlite::Error::SqliteFailure(f, _) = &source {
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_COMMITHOOK {
            if let Some(e) = REFUSED.with(|r| r.borrow_mut().take()) {
                return StateError::Remote(e);
            }
        }
    }
    StateError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

/// One change per row, at the place of its last change: a row written
/// several times in a transaction is sent once, as it ended.
fn coalesce(changes: Vec<RowChange>) -> Vec<RowChange> {
    let mut last = std::collections::HashMap::new();
    for (i, c) in changes.iter().enumerate() {
        last.insert((c.table.clone(), c.key.to_string()), i);
    }
    changes
        .into_iter()
        .enumerate()
        .filter(|(i, c)| last.get(&(c.table.clone(), c.key.to_string())) == Some(i))
        .map(|(_, c)| c)
        .collect()
}

/// Every replicated row, as the changes that make an empty cache this one.
pub(super) fn dump(conn: &Connection) -> rusqlite::Result<Vec<RowChange>> {
    let mut out = Vec::new();
    for (t, cols, keys) in tables(conn)? {
        let (key, row) = exprs(&format!("\"{t}\""), &cols, &keys);
        let mut st = conn.prepare(&format!("SELECT {key}, {row} FROM \"{t}\" ORDER BY rowid"))?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (k, v) = row?;
            let bad = |e: serde_json::Error| rusqlite::Error::UserFunctionError(Box::new(e));
            out.push(RowChange {
                table: t.clone(),
                key: serde_json::from_str(&k).map_err(bad)?,
                row: Some(serde_json::from_str(&v).map_err(bad)?),
            });
        }
    }
    Ok(out)
}

fn sql_value(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

/// Applies pulled commits (or a full copy) to the cache in one local
/// transaction, skipping what a concurrent connection already applied.
fn apply(
    conn: &mut Connection,
    full: bool,
    since: u64,
    commits: &[(u64, Vec<RowChange>)],
) -> rusqlite::Result<()> {
    let schema = tables(conn)?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute_batch("PRAGMA defer_foreign_keys = ON")?;
    let now = local_rev(&tx)?;
    if full && commits.iter().all(|(at, _)| *at <= now) {
        // Another handle on this cache got as far meanwhile.
        return Ok(());
    }
    if full {
        for (t, _, _) in &schema {
            tx.execute(&format!("DELETE FROM \"{t}\""), [])?;
        }
    }
    let mut rev = now;
    for (at, changes) in commits {
        if !full && (*at <= now || *at <= since) {
            continue;
        }
        for c in changes {
            apply_one(&tx, &schema, c)?;
        }
        rev = *at;
    }
    tx.execute(
        "UPDATE _replica SET rev = ?1 WHERE slot = 1",
        params![rev as i64],
    )?;
    tx.commit()
}

fn apply_one(tx: &Connection, schema: &[Table], c: &RowChange) -> rusqlite::Result<()> {
    let Some((t, cols, keys)) = schema.iter().find(|(t, _, _)| *t == c.table) else {
        return Err(rusqlite::Error::InvalidColumnName(format!(
            "replicated table {} is not in this schema",
            c.table
        )));
    };
    let key_cols: Vec<String> = if keys.is_empty() {
        vec!["rowid".into()]
    } else {
        keys.clone()
    };
    let key_vals: Vec<SqlValue> = match c.key.as_array() {
        Some(a) if a.len() == key_cols.len() => a.iter().map(sql_value).collect(),
        _ => {
            return Err(rusqlite::Error::InvalidColumnName(format!(
                "a key of table {t} that is not {} values: {}",
                key_cols.len(),
                c.key
            )))
        }
    };
    let where_: Vec<String> = key_cols
        .iter()
        .enumerate()
        .map(|(i, k)| format!("\"{k}\" IS ?{}", i + 1))
        .collect();
    let where_ = where_.join(" AND ");
    let Some(row) = &c.row else {
        tx.execute(
            &format!("DELETE FROM \"{t}\" WHERE {where_}"),
            rusqlite::params_from_iter(key_vals),
        )?;
        return Ok(());
    };
    // Update in place, or insert: never delete and insert, which would
    // run the cascades of the foreign keys on a row that only changed.
    let mut names: Vec<String> = cols
        .iter()
        .filter(|c| row.contains_key(*c))
        .cloned()
        .collect();
    if keys.is_empty() {
        names.insert(0, "rowid".into());
    }
    let vals: Vec<SqlValue> = names
        .iter()
        .map(|n| sql_value(row.get(n).unwrap_or(&Value::Null)))
        .collect();
    let n = key_vals.len();
    let set: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, c)| format!("\"{c}\" = ?{}", n + i + 1))
        .collect();
    let updated = tx.execute(
        &format!("UPDATE \"{t}\" SET {} WHERE {where_}", set.join(", ")),
        rusqlite::params_from_iter(key_vals.iter().cloned().chain(vals.iter().cloned())),
    )?;
    if updated == 0 {
        let cols_sql: Vec<String> = names.iter().map(|c| format!("\"{c}\"")).collect();
        let marks: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
        tx.execute(
            &format!(
                "INSERT INTO \"{t}\" ({}) VALUES ({})",
                cols_sql.join(", "),
                marks.join(", ")
            ),
            rusqlite::params_from_iter(vals),
        )?;
    }
    Ok(())
}

impl Store {
    /// Runs a write of the run bookkeeping (no serial bump) on the latest
    /// state, again when another writer committed first.
    pub(super) fn retrying<T>(
        &mut self,
        mut f: impl FnMut(&mut Store) -> StateResult<T>,
    ) -> StateResult<T> {
        let mut attempt = 0;
        loop {
            if attempt > 0 {
                self.sync()?;
            }
            match f(self) {
                Err(e) if is_conflict(&e) && attempt < CONFLICT_RETRIES => attempt += 1,
                out => return out,
            }
        }
    }
}

#[cfg(test)]
#[path = "replica_tests.rs"]
mod tests;

impl Store {
    /// Every row of the workspace (the holds aside), table by table: what
    /// `state pull` prints and `state migrate` copies.
    pub fn rows(&mut self) -> StateResult<Vec<RowChange>> {
        self.sync()?;
        dump(&self.conn).map_err(|e| self.err(e))
    }

    /// A digest of the workspace's content: equal for two stores that hold
    /// the same rows, whatever their backend or row order.
    pub fn digest(&mut self) -> StateResult<String> {
        use sha2::{Digest, Sha256};
        let mut rows: Vec<(String, String, String)> = self
            .rows()?
            .into_iter()
            .map(|c| {
                let row = c.row.map(Value::Object).unwrap_or(Value::Null);
                (c.table, c.key.to_string(), row.to_string())
            })
            .collect();
        rows.sort();
        let mut h = Sha256::new();
        for (t, k, v) in rows {
            for part in [t, k, v] {
                h.update(part.len().to_le_bytes());
                h.update(part.as_bytes());
            }
        }
        Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Folds the shared workspace's log (see [`Remote::compact`]); a no-op
    /// for a state file.
    pub fn compact(&self) -> StateResult<Option<u64>> {
        match &self.replica {
            Some(r) => Ok(r.remote.compact()?),
            None => Ok(None),
        }
    }

    /// Is the workspace empty: no objects, no backups, serial 0?
    pub fn is_empty(&mut self) -> StateResult<bool> {
        let rows = self.rows()?;
        let serial = self.serial()?;
        Ok(serial == 0 && rows.iter().all(|c| c.table == "meta"))
    }

    /// Makes this workspace hold exactly `rows` (another workspace's, from
    /// [`Store::rows`]), lineage and serial included, in one transaction:
    /// on shared state, one commit.
    pub fn replace_with(&mut self, rows: &[RowChange]) -> StateResult<()> {
        self.retrying(|s| {
            let schema = tables(&s.conn).map_err(|e| s.err(e))?;
            let tx = s
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(|e| super::replica::sqlite_err(&s.path, e))?;
            let done = (|| {
                tx.execute_batch("PRAGMA defer_foreign_keys = ON")?;
                for (t, _, _) in &schema {
                    tx.execute(&format!("DELETE FROM \"{t}\""), [])?;
                }
                for c in rows {
                    apply_one(&tx, &schema, c)?;
                }
                Ok::<(), rusqlite::Error>(())
            })();
            match done {
                Ok(()) => tx
                    .commit()
                    .map_err(|e| super::replica::sqlite_err(&s.path, e)),
                Err(e) => Err(super::replica::sqlite_err(&s.path, e)),
            }
        })
    }

    /// Writes the workspace as a standalone state file at `to` (which must
    /// not exist): a backup of shared state, or its copy into SQLite.
    pub fn copy_to(&mut self, to: &std::path::Path) -> StateResult<()> {
        self.sync()?;
        // Made here, new and private: never through a file or a symlink
        // planted at the name, never readable by others.
        let made = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(to)
        };
        if let Err(e) = made {
            return Err(StateError::Conflict(format!(
                "cannot create {}: {e}; choose a new file",
                to.display()
            )));
        }
        let copied = self.vacuum_into(to).and_then(|()| {
            let copy = Connection::open(to).map_err(|e| super::replica::sqlite_err(to, e))?;
            copy.execute_batch(
                "DROP TABLE IF EXISTS _replica; DELETE FROM lock; DELETE FROM lease;",
            )
            .map_err(|e| super::replica::sqlite_err(to, e))
        });
        if copied.is_err() {
            // Never an empty or half-made copy left to be taken for a backup.
            let _ = std::fs::remove_file(to);
        }
        copied
    }

    /// `VACUUM INTO to`. A reading store's connection is `query_only`,
    /// which refuses the copy's writes into the new file too: it is lifted
    /// for the copy alone (the copy only reads this database).
    pub(super) fn vacuum_into(&self, to: &std::path::Path) -> StateResult<()> {
        let reading = self.reading.is_some();
        if reading {
            self.conn
                .pragma_update(None, "query_only", false)
                .map_err(|e| self.err(e))?;
        }
        let done = self
            .conn
            .execute("VACUUM INTO ?1", params![to.to_string_lossy()])
            .map(|_| ())
            .map_err(|e| self.err(e));
        if reading {
            self.conn
                .pragma_update(None, "query_only", true)
                .map_err(|e| self.err(e))?;
        }
        done
    }
}
