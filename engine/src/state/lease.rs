//! Holds on a workspace: the state lock (one operation at a time changes
//! the state: apply, backup, freeze, a runner while its work is in flight)
//! and the run-mode lease (one runner acts on a workspace). Both are one
//! mechanism: a single row naming its holder, with an expiry the holder
//! renews while it lives. A hold whose holder is gone (its process ended on
//! this host, or its hold expired) is taken over. The holder is printed as
//! `user@host (pid N)` and identified precisely by a [`HolderId`] (host,
//! boot, pid namespace, pid and start time) kept beside it.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};

use super::holder::{host_name, HolderId, Liveness};
use super::remote::{HoldKind, HoldRecord, RemoteError};
use super::{new_id, parse_ts, ts, SharedStore, StateError, StateResult, Store};

/// How long a lock is honoured without renewal: a holder killed with
/// `kill -9` does not wedge the workspace forever.
pub const LOCK_TTL_MINUTES: i64 = 60;

/// The same, on shared state: a dead holder on another host is not seen to
/// be dead, and its lock must not hold a runner back for an hour.
pub const SHARED_LOCK_TTL_MINUTES: i64 = 5;

/// How often a held state lock is renewed while its operation works: far
/// inside [`LOCK_TTL_MINUTES`], so a live holder never sees it expire.
const LOCK_RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Holds the state lock for `operation` while `work` runs, renews it in the
/// background (a confirmation prompt or a long wait for snapshots must not
/// outlive it), and releases it whatever `work` returns. A renewal that
/// fails (the lock was broken) is handed to `on_lost` once and renewal
/// stops; the work's own destructive calls check the lock is still theirs.
pub async fn with_lock<T, E>(
    store: SharedStore,
    operation: &str,
    on_lost: impl Fn(StateError) + Send + 'static,
    work: impl AsyncFnOnce(String) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<StateError>,
{
    with_lock_waiting(
        store,
        operation,
        std::time::Duration::ZERO,
        |_| {},
        on_lost,
        work,
    )
    .await
}

/// [`with_lock`], waiting up to `wait` for a lock another holder has
/// ([`lock_waiting`]) instead of failing at once.
pub async fn with_lock_waiting<T, E>(
    store: SharedStore,
    operation: &str,
    wait: std::time::Duration,
    on_wait: impl FnMut(&LockWaiting),
    on_lost: impl Fn(StateError) + Send + 'static,
    work: impl AsyncFnOnce(String) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<StateError>,
{
    let lock = lock_waiting(&store, operation, wait, on_wait).await?;
    let renewal = {
        let store = store.clone();
        let id = lock.id.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(LOCK_RENEW_EVERY).await;
                let renewed = store.lock().expect("store").renew_lock(&id);
                if let Err(e) = renewed {
                    on_lost(e);
                    return;
                }
            }
        })
    };
    let out = work(lock.id.clone()).await;
    renewal.abort();
    let released = store.lock().expect("store").unlock(&lock.id);
    let out = out?;
    released?;
    Ok(out)
}

/// The first pause between two tries for a held lock; it doubles up to
/// [`WAIT_POLL_MAX`], so a lock freed soon is taken soon and a long wait
/// costs one read every two seconds.
const WAIT_POLL_FIRST: std::time::Duration = std::time::Duration::from_millis(250);
const WAIT_POLL_MAX: std::time::Duration = std::time::Duration::from_secs(2);

/// How often a command waiting for the lock says it still waits.
const WAIT_REPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// What a command waiting for the state lock tells its operator: who holds
/// it, for what, and when the command gives up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockWaiting {
    pub id: String,
    pub holder: String,
    pub operation: String,
    pub since: String,
    pub give_up_at: String,
}

impl std::fmt::Display for LockWaiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Waiting for the state lock: held by {} for {} since {} (lock ID {}); giving up at {}.",
            self.holder, self.operation, self.since, self.id, self.give_up_at
        )
    }
}

/// Takes the state lock for `operation`; while a live holder has it, tries
/// again with a growing pause for up to `wait` (zero: fails at once, as
/// [`Store::lock`]). `on_wait` hears of the wait as it starts and every 30
/// seconds after. Once `wait` has passed, the refusal says how long it
/// waited. The deadline is on the real clock: `--now` does not shorten it.
pub async fn lock_waiting(
    store: &SharedStore,
    operation: &str,
    wait: std::time::Duration,
    mut on_wait: impl FnMut(&LockWaiting),
) -> StateResult<LockInfo> {
    let started = tokio::time::Instant::now();
    // Past any real wait: the CLI caps durations at ten years.
    let deadline = started
        .checked_add(wait)
        .unwrap_or(started + std::time::Duration::from_secs(100 * 365 * 86_400));
    let give_up_at = Duration::from_std(wait)
        .ok()
        .and_then(|w| Utc::now().checked_add_signed(w))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let mut pause = WAIT_POLL_FIRST;
    let mut next_report = started;
    loop {
        let taken = store.lock().expect("store").lock(operation);
        let refused = match taken {
            Err(e @ StateError::Locked { .. }) => e,
            other => return other,
        };
        let now = tokio::time::Instant::now();
        if now >= deadline {
            if wait.is_zero() {
                return Err(refused);
            }
            return Err(StateError::LockWaitExpired {
                refused: Box::new(refused),
                waited: lifeboat_schema::format_duration(wait),
            });
        }
        if now >= next_report {
            if let StateError::Locked {
                id,
                holder,
                operation,
                acquired,
            } = &refused
            {
                on_wait(&LockWaiting {
                    id: id.clone(),
                    holder: holder.clone(),
                    operation: operation.clone(),
                    since: acquired.clone(),
                    give_up_at: ts(give_up_at),
                });
            }
            next_report = now + WAIT_REPORT_EVERY;
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(WAIT_POLL_MAX);
    }
}

/// A hold on the workspace: the state lock, or the runner's lease (whose
/// operation is always `run`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub id: String,
    pub holder: String,
    pub operation: String,
    pub acquired: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

/// What a hold is for: each kind is one row of its own table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// The state lock, for one operation.
    Lock,
    /// The run-mode lease, for one runner.
    Lease,
}

impl Hold {
    fn select(self) -> &'static str {
        match self {
            Hold::Lock => {
                "SELECT id, holder, operation, acquired, expires, holder_id FROM lock WHERE slot = 1"
            }
            Hold::Lease => {
                "SELECT id, holder, 'run', acquired, expires, holder_id FROM lease WHERE slot = 1"
            }
        }
    }

    /// Writes `info`, held by `who`, as the hold of this kind, replacing any.
    fn write(self, conn: &Connection, info: &LockInfo, who: &HolderId) -> rusqlite::Result<usize> {
        let (acquired, expires) = (ts(info.acquired), ts(info.expires));
        // A HolderId always serialises; the fallback only keeps this total.
        let who = serde_json::to_string(who).unwrap_or_default();
        match self {
            Hold::Lock => conn.execute(
                "INSERT OR REPLACE INTO lock (slot, id, holder, operation, acquired, expires, holder_id) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)",
                params![info.id, info.holder, info.operation, acquired, expires, who],
            ),
            Hold::Lease => conn.execute(
                "INSERT OR REPLACE INTO lease (slot, id, holder, acquired, expires, holder_id) VALUES (1, ?1, ?2, ?3, ?4, ?5)",
                params![info.id, info.holder, acquired, expires, who],
            ),
        }
    }

    fn renew(self) -> &'static str {
        match self {
            Hold::Lock => "UPDATE lock SET expires = ?2 WHERE id = ?1",
            Hold::Lease => "UPDATE lease SET expires = ?2 WHERE id = ?1",
        }
    }

    fn release(self) -> &'static str {
        match self {
            Hold::Lock => "DELETE FROM lock WHERE id = ?1",
            Hold::Lease => "DELETE FROM lease WHERE id = ?1",
        }
    }

    /// The refusal while `held` is live.
    fn refused(self, held: LockInfo) -> StateError {
        match self {
            Hold::Lock => StateError::Locked {
                id: held.id,
                holder: held.holder,
                operation: held.operation,
                acquired: ts(held.acquired),
            },
            Hold::Lease => StateError::Leased {
                id: held.id,
                holder: held.holder,
                acquired: ts(held.acquired),
                expires: ts(held.expires),
            },
        }
    }

    fn remote(self) -> HoldKind {
        match self {
            Hold::Lock => HoldKind::Lock,
            Hold::Lease => HoldKind::Lease,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Hold::Lock => "state lock",
            Hold::Lease => "run lease",
        }
    }

    /// The error of a renewal whose hold is gone.
    fn lost(self, id: &str) -> StateError {
        StateError::Conflict(match self {
            Hold::Lock => {
                format!("the state lock {id} was broken by someone else (force-unlock?); stopping")
            }
            Hold::Lease => format!("the run lease {id} was taken over by another runner"),
        })
    }
}

impl Store {
    /// Takes the workspace lock for `operation`, or says who holds it.
    pub fn lock(&mut self, operation: &str) -> StateResult<LockInfo> {
        let ttl = self.lock_ttl();
        self.take(Hold::Lock, operation, ttl)
    }

    /// How long a command's lock lives without renewal: on shared state a
    /// holder on another host cannot be seen to die, so its lock must run
    /// out soon (it is renewed every minute while the command works).
    fn lock_ttl(&self) -> Duration {
        if self.replica.is_some() {
            Duration::minutes(SHARED_LOCK_TTL_MINUTES)
        } else {
            Duration::minutes(LOCK_TTL_MINUTES)
        }
    }

    /// Takes the lock for `operation` to live `ttl` without renewal (the
    /// runner's lives as long as its lease).
    pub fn lock_for(&mut self, operation: &str, ttl: Duration) -> StateResult<LockInfo> {
        self.take(Hold::Lock, operation, ttl)
    }

    /// Extends a lock taken with [`Store::lock_for`] by `ttl`.
    pub fn renew_lock_for(&mut self, id: &str, ttl: Duration) -> StateResult<()> {
        self.renew(Hold::Lock, id, ttl)
    }

    /// Extends a held lock; long applies call it as they make progress.
    pub fn renew_lock(&mut self, id: &str) -> StateResult<()> {
        let ttl = self.lock_ttl();
        self.renew(Hold::Lock, id, ttl)
    }

    pub fn unlock(&mut self, id: &str) -> StateResult<()> {
        self.release(Hold::Lock, id)
    }

    pub fn current_lock(&self) -> StateResult<Option<LockInfo>> {
        Ok(self.read_hold(Hold::Lock)?.map(|(info, _)| info))
    }

    /// The run-mode lease while its runner may still run: not expired
    /// (by the real clock) and its holder not seen gone.
    pub fn live_lease(&self) -> StateResult<Option<LockInfo>> {
        Ok(self
            .read_hold(Hold::Lease)?
            .filter(|(l, who)| l.expires > Utc::now() && holder_alive(&l.holder, who.as_ref()))
            .map(|(info, _)| info))
    }

    /// The run-mode lease, if any (live or not).
    pub fn current_lease(&self) -> StateResult<Option<LockInfo>> {
        Ok(self.read_hold(Hold::Lease)?.map(|(info, _)| info))
    }

    /// The hold of `kind`, from the shared state's record or the file.
    fn read_hold(&self, kind: Hold) -> StateResult<Option<(LockInfo, Option<HolderId>)>> {
        match &self.replica {
            Some(r) => match r.remote.hold(kind.remote())? {
                Some(h) => Ok(Some(from_record(&self.path, h)?)),
                None => Ok(None),
            },
            None => read(&self.conn, &self.path, kind),
        }
    }

    /// Breaks a lock left by a holder that is gone. Refuses a wrong id so
    /// that a typo cannot break somebody else's lock.
    pub fn force_unlock(&mut self, id: &str) -> StateResult<LockInfo> {
        let held = self
            .current_lock()?
            .filter(|l| l.id == id)
            .ok_or_else(|| StateError::NoSuchLock(id.to_string()))?;
        self.unlock(id)?;
        Ok(held)
    }

    /// Takes the run-mode lease for `ttl`, or says who holds it. A lease
    /// that expired belongs to a runner that died and is taken over.
    pub fn take_lease(&mut self, ttl: Duration) -> StateResult<LockInfo> {
        self.take(Hold::Lease, "run", ttl)
    }

    /// Extends the lease; fails when another runner took it over.
    pub fn renew_lease(&mut self, id: &str, ttl: Duration) -> StateResult<()> {
        self.renew(Hold::Lease, id, ttl)
    }

    pub fn release_lease(&mut self, id: &str) -> StateResult<()> {
        self.release(Hold::Lease, id)
    }

    /// Takes a hold of `kind` for `ttl`, in one write transaction, unless
    /// a live holder has it.
    fn take(&mut self, kind: Hold, operation: &str, ttl: Duration) -> StateResult<LockInfo> {
        if self.replica.is_some() {
            return self.take_shared(kind, operation, ttl);
        }
        let path = self.path.clone();
        let sq = |source| super::replica::sqlite_err(&path, source);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sq)?;
        if let Some((held, who)) = read(&tx, &path, kind)? {
            // An expired hold belongs to a holder that died; it is taken
            // over. Expiry is judged by the real clock only: a `--now`
            // rehearsal in the future must not break somebody's live hold.
            if held.expires > Utc::now() && holder_alive(&held.holder, who.as_ref()) {
                return Err(kind.refused(held));
            }
        }
        let me = HolderId::current();
        let info = LockInfo {
            id: new_id(),
            holder: holder_name(&me),
            operation: operation.to_string(),
            acquired: Utc::now(),
            expires: Utc::now() + ttl,
        };
        kind.write(&tx, &info, &me).map_err(sq)?;
        tx.commit().map_err(sq)?;
        let id = info.id.clone();
        self.fence_mut(|f| match kind {
            Hold::Lock => f.lock = Some(id),
            Hold::Lease => f.lease = Some(id),
        });
        Ok(info)
    }

    /// [`Store::take`] on shared state: the remote's record of the hold is
    /// replaced only if it is still the one judged dead (or absent), so two
    /// processes taking over the same dead hold cannot both win.
    fn take_shared(&mut self, kind: Hold, operation: &str, ttl: Duration) -> StateResult<LockInfo> {
        let remote = match &self.replica {
            Some(r) => r.remote.clone(),
            None => return Err(StateError::Conflict("no shared state".into())),
        };
        // The record as read: the take is conditioned on it unchanged.
        let seen = remote.hold(kind.remote())?;
        if let Some(h) = &seen {
            let (held, who) = from_record(&self.path, h.clone())?;
            if held.expires > Utc::now() && holder_alive(&held.holder, who.as_ref()) {
                return Err(kind.refused(held));
            }
        }
        let me = HolderId::current();
        let record = HoldRecord {
            id: new_id(),
            holder: holder_name(&me),
            operation: operation.to_string(),
            acquired: ts(Utc::now()),
            expires: ts(Utc::now() + ttl),
            holder_id: serde_json::to_string(&me).ok(),
            epoch: 0,
        };
        match remote.take_hold(kind.remote(), &record, seen.as_ref()) {
            Ok(written) => {
                let (info, _) = from_record(&self.path, written)?;
                let id = info.id.clone();
                self.fence_mut(|f| match kind {
                    Hold::Lock => f.lock = Some(id),
                    Hold::Lease => f.lease = Some(id),
                });
                Ok(info)
            }
            Err(RemoteError::Conflict { .. }) => match self.read_hold(kind)? {
                // Our own take, whose answer was lost and whose retry then
                // found it done.
                Some((now, _)) if now.id == record.id => {
                    let id = now.id.clone();
                    self.fence_mut(|f| match kind {
                        Hold::Lock => f.lock = Some(id),
                        Hold::Lease => f.lease = Some(id),
                    });
                    Ok(now)
                }
                Some((now, _)) => Err(kind.refused(now)),
                None => Err(StateError::Conflict(format!(
                    "the {} changed hands while it was being taken; try again",
                    kind.noun()
                ))),
            },
            Err(e) => Err(e.into()),
        }
    }

    fn renew(&mut self, kind: Hold, id: &str, ttl: Duration) -> StateResult<()> {
        if let Some(r) = &self.replica {
            if !r
                .remote
                .renew_hold(kind.remote(), id, &ts(Utc::now() + ttl))?
            {
                return Err(kind.lost(id));
            }
            return Ok(());
        }
        let n = self
            .conn
            .execute(kind.renew(), params![id, ts(Utc::now() + ttl)])
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(kind.lost(id));
        }
        Ok(())
    }

    fn release(&mut self, kind: Hold, id: &str) -> StateResult<()> {
        if let Some(r) = &self.replica {
            r.remote.release_hold(kind.remote(), id)?;
            self.fence_mut(|f| {
                let mine = match kind {
                    Hold::Lock => &mut f.lock,
                    Hold::Lease => &mut f.lease,
                };
                if mine.as_deref() == Some(id) {
                    *mine = None;
                }
            });
            return Ok(());
        }
        self.conn
            .execute(kind.release(), params![id])
            .map_err(|e| self.err(e))?;
        self.fence_mut(|f| {
            let mine = match kind {
                Hold::Lock => &mut f.lock,
                Hold::Lease => &mut f.lease,
            };
            if mine.as_deref() == Some(id) {
                *mine = None;
            }
        });
        Ok(())
    }
}

/// Refuses a commit to a state file of this host when a hold its writer
/// took is no longer its own: a process paused past its hold's expiry (or
/// whose lock was force-unlocked) and taken over must not write once it
/// resumes. Checked inside the commit's transaction, which holds SQLite's
/// write lock, so no take-over can come between the check and the commit.
pub(super) fn check_fence(
    conn: &Connection,
    path: &Path,
    fence: &super::remote::Fence,
) -> StateResult<()> {
    for (kind, mine) in [(Hold::Lock, &fence.lock), (Hold::Lease, &fence.lease)] {
        let Some(mine) = mine else { continue };
        let current = read(conn, path, kind)?.map(|(held, _)| held.id);
        if current.as_deref() != Some(mine.as_str()) {
            return Err(StateError::Remote(super::remote::RemoteError::Fenced(
                kind.noun().to_string(),
            )));
        }
    }
    Ok(())
}

/// Could the holder of a lock or lease still be running? A holder in this
/// host's boot and pid namespace whose process is gone (or whose pid now
/// names a process started at another time) is not: its hold is taken over
/// at once, so a killed lifeboat does not block the next one until the
/// hold expires. A holder elsewhere counts as alive (the safe side: wait
/// for the expiry or force-unlock). A hold written before holders were
/// identified precisely has only its printed form, `user@host (pid N)`.
fn holder_alive(holder: &str, who: Option<&HolderId>) -> bool {
    if let Some(who) = who {
        return who.liveness() != Liveness::Gone;
    }
    let host_of = |h: &str| {
        h.split_once('@')
            .and_then(|(_, rest)| rest.split(" (pid ").next().map(str::to_string))
    };
    let pid = holder
        .rsplit_once("(pid ")
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .and_then(|p| p.parse::<u32>().ok());
    match (host_of(holder), pid) {
        (Some(h), Some(pid)) if h == host_name() => {
            let proc = Path::new("/proc");
            !proc.is_dir() || proc.join(pid.to_string()).exists()
        }
        _ => true,
    }
}

/// A hold as the shared state keeps it, read as the file's would be.
fn from_record(path: &Path, h: HoldRecord) -> StateResult<(LockInfo, Option<HolderId>)> {
    Ok((
        LockInfo {
            id: h.id,
            holder: h.holder,
            operation: h.operation,
            acquired: parse_ts(path, &h.acquired)?,
            expires: parse_ts(path, &h.expires)?,
        },
        h.holder_id.and_then(|w| serde_json::from_str(&w).ok()),
    ))
}

/// How a hold names its holder for people: `user@host (pid N)`.
fn holder_name(who: &HolderId) -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("{user}@{} (pid {})", who.host, who.pid)
}

/// The hold of `kind`, if any (live or not), with its holder's identity
/// when it was recorded (an unreadable one counts as unrecorded: the
/// printed form is then judged, as for holds written before it existed).
fn read(
    conn: &Connection,
    path: &Path,
    kind: Hold,
) -> StateResult<Option<(LockInfo, Option<HolderId>)>> {
    let sq = |source| super::replica::sqlite_err(path, source);
    let row = conn
        .query_row(kind.select(), [], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })
        .optional()
        .map_err(sq)?;
    match row {
        None => Ok(None),
        Some((id, holder, operation, acquired, expires, who)) => Ok(Some((
            LockInfo {
                id,
                holder,
                operation,
                acquired: parse_ts(path, &acquired)?,
                expires: parse_ts(path, &expires)?,
            },
            who.and_then(|w| serde_json::from_str(&w).ok()),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Address;

    #[test]
    fn a_second_holder_is_refused_with_the_lock_id_and_force_unlock_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut a = Store::open(&path).unwrap();
        let mut b = Store::open(&path).unwrap();
        let held = a.lock("apply").unwrap();
        match b.lock("apply") {
            Err(StateError::Locked { id, .. }) => assert_eq!(id, held.id),
            other => panic!("expected Locked, got {other:?}"),
        }
        assert!(matches!(
            b.force_unlock("wrong"),
            Err(StateError::NoSuchLock(_))
        ));
        b.force_unlock(&held.id).unwrap();
        b.lock("apply").unwrap();
        assert!(a.renew_lock(&held.id).is_err());
    }

    #[test]
    fn a_lease_is_refused_while_live_renewed_by_its_holder_and_free_once_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut a = Store::open(&path).unwrap();
        let mut b = Store::open(&path).unwrap();
        let lease = a.take_lease(Duration::seconds(120)).unwrap();
        assert_eq!(lease.operation, "run");
        match b.take_lease(Duration::seconds(120)) {
            Err(StateError::Leased { id, .. }) => assert_eq!(id, lease.id),
            Err(e) => panic!("expected Leased, got {e:?}"),
            Ok(_) => panic!("expected Leased, got a second lease"),
        }
        // The lease and the lock are separate holds.
        b.lock("apply").unwrap();
        a.renew_lease(&lease.id, Duration::seconds(120)).unwrap();
        a.release_lease(&lease.id).unwrap();
        assert!(a.renew_lease(&lease.id, Duration::seconds(120)).is_err());
        b.take_lease(Duration::seconds(120)).unwrap();
    }

    #[tokio::test]
    async fn a_waiting_taker_gives_up_after_its_wait_naming_the_holder_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut a = Store::open(&path).unwrap();
        let held = a.lock("backup").unwrap();
        let b: SharedStore =
            std::sync::Arc::new(std::sync::Mutex::new(Store::open(&path).unwrap()));
        let mut heard = Vec::new();
        let started = std::time::Instant::now();
        let wait = std::time::Duration::from_millis(700);
        let refused = lock_waiting(&b, "apply", wait, |w| heard.push(w.clone()))
            .await
            .unwrap_err();
        assert!(started.elapsed() >= wait, "{:?}", started.elapsed());
        match &refused {
            StateError::LockWaitExpired { refused, waited } => {
                assert_eq!(waited, "0s", "whole seconds, as the syntax writes them");
                assert!(matches!(**refused, StateError::Locked { ref id, .. } if *id == held.id));
            }
            other => panic!("expected LockWaitExpired, got {other:?}"),
        }
        assert_eq!(heard.len(), 1, "once at the start, then every 30 s");
        assert_eq!(heard[0].id, held.id);
        assert_eq!(heard[0].operation, "backup");
        let line = heard[0].to_string();
        assert!(
            line.starts_with("Waiting for the state lock: held by "),
            "{line}"
        );
        assert!(
            line.contains(&format!(
                "for backup since {} (lock ID {}); giving up at ",
                ts(held.acquired),
                held.id
            )),
            "{line}"
        );
        // Without a wait, the refusal is today's, at once.
        let refused = lock_waiting(&b, "apply", std::time::Duration::ZERO, |_| {
            panic!("no wait")
        })
        .await
        .unwrap_err();
        assert!(matches!(refused, StateError::Locked { .. }), "{refused:?}");
    }

    #[tokio::test]
    async fn a_waiting_taker_gets_the_lock_once_its_holder_releases_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut a = Store::open(&path).unwrap();
        let held = a.lock("backup").unwrap();
        let release = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(600)).await;
            a.unlock(&held.id).unwrap();
        });
        let b: SharedStore =
            std::sync::Arc::new(std::sync::Mutex::new(Store::open(&path).unwrap()));
        let mut heard = 0;
        let got = lock_waiting(&b, "apply", std::time::Duration::from_secs(30), |_| {
            heard += 1
        })
        .await
        .unwrap();
        assert_eq!(got.operation, "apply");
        assert_eq!(heard, 1);
        release.await.unwrap();
    }

    #[test]
    fn an_expired_hold_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut a = Store::open(&path).unwrap();
        let mut b = Store::open(&path).unwrap();
        let old = a.take_lease(Duration::seconds(-1)).unwrap();
        let new = b.take_lease(Duration::seconds(120)).unwrap();
        assert_ne!(old.id, new.id);
        assert!(a.renew_lease(&old.id, Duration::seconds(120)).is_err());
    }

    #[test]
    fn a_writer_whose_hold_was_taken_over_while_it_was_paused_commits_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let (mut a, mut b) = (Store::open(&path).unwrap(), Store::open(&path).unwrap());
        let put = |s: &mut Store, name: &str| {
            s.transaction(|tx| tx.put_object(&Address::vpc_clone(name), &serde_json::json!({})))
        };
        // `a` leads, then sleeps past its lease; `b` takes over and writes.
        a.take_lease(Duration::seconds(-1)).unwrap();
        put(&mut a, "before").unwrap();
        b.take_lease(Duration::seconds(120)).unwrap();
        put(&mut b, "by-b").unwrap();
        // `a` wakes up: its commit is refused, and nothing of it is kept.
        let err = put(&mut a, "zombie").unwrap_err();
        assert!(
            matches!(err, StateError::Remote(RemoteError::Fenced(ref h)) if h == "run lease"),
            "{err}"
        );
        let seen = b.load().unwrap();
        assert!(!seen.objects.contains_key(&Address::vpc_clone("zombie")));
        assert_eq!(seen.serial, 2);
        // A lock broken by force-unlock fences its holder the same way.
        let held = a.lock("apply").unwrap();
        b.unlock(&held.id).unwrap();
        assert!(put(&mut a, "after-unlock").is_err());
        // A store holding nothing writes as before.
        put(&mut b, "free").unwrap();
    }

    /// Writes a lease held by `who` until `expires`, as another process
    /// would have.
    fn plant_lease(store: &Store, who: &HolderId, expires: DateTime<Utc>) -> LockInfo {
        let info = LockInfo {
            id: new_id(),
            holder: holder_name(who),
            operation: "run".into(),
            acquired: Utc::now(),
            expires,
        };
        Hold::Lease.write(&store.conn, &info, who).unwrap();
        info
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_hold_whose_pid_was_reused_by_a_process_started_at_another_time_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("state.db")).unwrap();
        // This very process has the recorded pid, but it started at another
        // time than the holder did: the holder is gone.
        let me = HolderId::current();
        let reused = HolderId {
            start: me.start.map(|t| t + 1),
            ..me
        };
        let old = plant_lease(&s, &reused, Utc::now() + Duration::minutes(10));
        let new = s.take_lease(Duration::seconds(120)).unwrap();
        assert_ne!(old.id, new.id);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_hold_from_another_pid_namespace_waits_for_its_expiry_even_with_a_dead_pid_here() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("state.db")).unwrap();
        // Same host name (a container beside this one), a pid that does not
        // exist here: its process cannot be looked at from this namespace.
        let other = HolderId {
            pid_ns: Some("pid:[1]".into()),
            pid: u32::MAX - 1,
            start: Some(1),
            ..HolderId::current()
        };
        let live = plant_lease(&s, &other, Utc::now() + Duration::minutes(10));
        match s.take_lease(Duration::seconds(120)) {
            Err(StateError::Leased { id, holder, .. }) => {
                assert_eq!(id, live.id);
                assert!(
                    holder.ends_with(&format!("(pid {})", u32::MAX - 1)),
                    "{holder}"
                );
            }
            other => panic!("expected Leased, got {other:?}"),
        }
        let expired = plant_lease(&s, &other, Utc::now() - Duration::seconds(1));
        let new = s.take_lease(Duration::seconds(120)).unwrap();
        assert_ne!(expired.id, new.id);
    }

    #[test]
    fn a_live_holder_in_this_process_is_refused_and_its_identity_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut a = Store::open(&path).unwrap();
        let held = a.lock("apply").unwrap();
        let (_, who) = read(&a.conn, &path, Hold::Lock).unwrap().unwrap();
        assert_eq!(who, Some(HolderId::current()));
        let mut b = Store::open(&path).unwrap();
        assert!(matches!(b.lock("apply"), Err(StateError::Locked { id, .. }) if id == held.id));
    }
}
