//! The runner's hold on the state lock, shared by its work in flight.
//!
//! A runner holds the state lock while some of its work needs it (its
//! steps, a backup's commits, retention, DR steps), and lets go of it once
//! every piece of work in flight is waiting for AWS ([`LockGate::unlocked`]):
//! a snapshot wait of hours then leaves `apply` free to run. Work that comes
//! out of its wait takes the lock again, waiting for it while another holder
//! has it (the lease is renewed meanwhile by the runner's heartbeat), so
//! every commit the runner makes outside a wait is made under the lock it
//! holds at that moment, and, on shared state, fenced by that lock and the
//! lease (`replica.rs`).
//!
//! Lock order: the user count, then the held lock's slot, then the store.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Duration;

use super::{Owner, SharedStore, StateError, StateResult};

/// Called with the refusal while work waits for a lock another holder has
/// (once per lock id).
pub type OnLocked = Arc<dyn Fn(&StateError) + Send + Sync>;

/// The runner's share of the state lock (cheap to clone).
#[derive(Clone)]
pub struct LockGate(Arc<Inner>);

struct Inner {
    store: SharedStore,
    operation: String,
    ttl: Duration,
    /// The lock's id while held; the heartbeat renews it holding this slot,
    /// so a lock let go of is never renewed.
    held: Arc<Mutex<Option<String>>>,
    /// Work in flight that needs the lock now.
    users: Mutex<usize>,
    /// Raised once the runner's lease is lost: nothing takes the lock again.
    lost: Arc<AtomicBool>,
    /// The runner whose backups these are.
    owner: Owner,
    on_locked: OnLocked,
    /// The lock id last reported to `on_locked`.
    said: Mutex<Option<String>>,
}

/// One piece of work's need of the lock: the lock is held while any guard
/// lives, and let go of when the last one drops.
pub struct GateGuard(Arc<Inner>);

/// The first pause between two tries for a held lock, doubling up to the
/// second, as `lock_waiting` does.
const POLL_FIRST: std::time::Duration = std::time::Duration::from_millis(250);
const POLL_MAX: std::time::Duration = std::time::Duration::from_secs(2);

impl LockGate {
    /// The gate of the runner `owner`, taking the lock for `operation` to
    /// live `ttl` without renewal, its id kept in `held`.
    pub fn new(
        store: SharedStore,
        operation: &str,
        ttl: Duration,
        held: Arc<Mutex<Option<String>>>,
        lost: Arc<AtomicBool>,
        owner: Owner,
        on_locked: OnLocked,
    ) -> LockGate {
        LockGate(Arc::new(Inner {
            store,
            operation: operation.to_string(),
            ttl,
            held,
            users: Mutex::new(0),
            lost,
            owner,
            on_locked,
            said: Mutex::new(None),
        }))
    }

    /// The lock's id, while held.
    pub fn current(&self) -> Option<String> {
        self.0.held.lock().expect("held lock").clone()
    }

    /// The runner the backups taken under this gate belong to.
    pub fn owner(&self) -> &Owner {
        &self.0.owner
    }

    /// Takes a share of the lock if it is held or free now; the refusal
    /// when another holder has it.
    pub fn try_enter(&self) -> StateResult<GateGuard> {
        let guard = self.0.join();
        self.0.take_once()?;
        Ok(guard)
    }

    /// Takes a share of the lock, waiting while another holder has it.
    pub async fn enter(&self) -> StateResult<GateGuard> {
        let guard = self.0.join();
        self.0.take_waiting().await?;
        Ok(guard)
    }

    /// Runs `wait` (a wait for AWS) without needing the lock: the lock is
    /// let go of when no other work needs it, and taken again (waiting for
    /// it) before this returns. The caller holds a guard.
    ///
    /// Cancel-safe: dropped in its wait (a policy's `timeout`), the caller's
    /// share counts again, so that the count stays balanced; the lock may
    /// then not be held, and whoever commits next takes it ([`enter`]).
    ///
    /// [`enter`]: LockGate::enter
    pub async fn unlocked<T>(&self, wait: impl std::future::Future<Output = T>) -> StateResult<T> {
        self.0.leave();
        // The caller's guard counts again (and is dropped by it), whether
        // the wait ends, is dropped, or the lock cannot be taken.
        let rejoin = Rejoin(&self.0);
        let out = wait.await;
        drop(rejoin);
        self.0.take_waiting().await?;
        Ok(out)
    }
}

impl GateGuard {
    /// Another share of the lock, for work started under this one.
    pub fn also(&self) -> GateGuard {
        self.0.join()
    }
}

impl Drop for GateGuard {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// Gives the caller's share back to the count when dropped.
struct Rejoin<'a>(&'a Inner);

impl Drop for Rejoin<'_> {
    fn drop(&mut self) {
        *self.0.users.lock().expect("gate users") += 1;
    }
}

impl Inner {
    fn join(self: &Arc<Self>) -> GateGuard {
        *self.users.lock().expect("gate users") += 1;
        GateGuard(self.clone())
    }

    /// One user less; the last one lets go of the lock.
    fn leave(&self) {
        let mut users = self.users.lock().expect("gate users");
        // One leave per share: more would let go of a lock another share
        // still needs (two pieces of work waiting under one guard).
        if *users == 0 {
            drop(users);
            if cfg!(debug_assertions) {
                panic!("the runner's lock share left twice");
            }
            return;
        }
        *users -= 1;
        if *users > 0 {
            return;
        }
        let mut held = self.held.lock().expect("held lock");
        if let Some(id) = held.take() {
            // A release that fails leaves a lock that runs out with its
            // TTL (the lease's); nothing renews it any more.
            let _ = self.store.lock().expect("store").unlock(&id);
        }
    }

    /// Takes the lock unless held; the refusal when another holder has it.
    fn take_once(&self) -> StateResult<()> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(StateError::Conflict(
                "the run lease was lost: the runner takes the state lock no more".into(),
            ));
        }
        let mut held = self.held.lock().expect("held lock");
        if held.is_some() {
            return Ok(());
        }
        let taken = self
            .store
            .lock()
            .expect("store")
            .lock_for(&self.operation, self.ttl)?;
        *held = Some(taken.id);
        Ok(())
    }

    async fn take_waiting(&self) -> StateResult<()> {
        let mut pause = POLL_FIRST;
        loop {
            match self.take_once() {
                Err(e @ StateError::Locked { .. }) => {
                    if let StateError::Locked { id, .. } = &e {
                        let mut said = self.said.lock().expect("said");
                        if said.as_ref() != Some(id) {
                            *said = Some(id.clone());
                            (self.on_locked)(&e);
                        }
                    }
                }
                // Another runner's lock changing hands under it, or the
                // shared state failing for a moment: tried again while the
                // lease lives, rather than abandoning the work that waits.
                Err(e) if transient(&e) && !self.lost.load(Ordering::SeqCst) => {}
                other => return other,
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(POLL_MAX);
        }
    }
}

/// A refusal to take the lock that a later try may not meet.
fn transient(e: &StateError) -> bool {
    use super::remote::RemoteError;
    matches!(
        e,
        StateError::Conflict(_)
            | StateError::Remote(RemoteError::Conflict { .. } | RemoteError::Failed(_))
    )
}

#[cfg(test)]
mod tests {
    use super::super::remote::{HoldKind, HoldRecord, RemoteError};
    use super::*;
    use crate::state::Store;

    fn gate(path: &std::path::Path) -> (LockGate, SharedStore) {
        let store: SharedStore = Arc::new(Mutex::new(Store::open(path).unwrap()));
        let owner = Owner {
            lease: "lease".into(),
            holder: "me".into(),
        };
        let g = LockGate::new(
            store.clone(),
            "run",
            Duration::seconds(30),
            Default::default(),
            Default::default(),
            owner,
            Arc::new(|_| {}),
        );
        (g, store)
    }

    #[tokio::test]
    async fn the_lock_is_let_go_of_while_every_user_waits_and_taken_again_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let (g, store) = gate(&path);
        let a = g.enter().await.unwrap();
        let b = a.also();
        let first = g.current().unwrap();
        // One user waits: the other still needs the lock.
        g.unlocked(async {
            assert_eq!(g.current().as_ref(), Some(&first));
        })
        .await
        .unwrap();
        drop(b);
        // The last user waits: the lock is free for somebody else, who
        // gets it at once.
        let mut other = Store::open(&path).unwrap();
        let g2 = g.clone();
        let mut release = None;
        g2.unlocked(async {
            assert_eq!(g.current(), None);
            assert_eq!(store.lock().unwrap().current_lock().unwrap(), None);
            let apply = other.lock("apply").unwrap();
            // The waiter takes it again only once the apply let go.
            release = Some(tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(400)).await;
                other.unlock(&apply.id).unwrap();
            }));
        })
        .await
        .unwrap();
        release.unwrap().await.unwrap();
        let again = g.current().unwrap();
        assert_ne!(again, first);
        assert_eq!(
            store.lock().unwrap().current_lock().unwrap().map(|l| l.id),
            Some(again)
        );
        drop(a);
        assert_eq!(store.lock().unwrap().current_lock().unwrap(), None);
    }

    #[tokio::test]
    async fn a_wait_dropped_midway_gives_its_share_back() {
        let dir = tempfile::tempdir().unwrap();
        let (g, store) = gate(&dir.path().join("state.db"));
        let a = g.enter().await.unwrap();
        let b = a.also();
        // A policy's timeout drops the work under `a` in its wait.
        let dropped = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            g.unlocked(std::future::pending::<()>()),
        )
        .await;
        assert!(dropped.is_err());
        // `a` still counts: the other share going leaves it the lock.
        drop(b);
        assert!(
            g.current().is_some(),
            "the lock was let go of under a live share"
        );
        assert!(store.lock().unwrap().current_lock().unwrap().is_some());
        drop(a);
        assert_eq!(g.current(), None);
        assert_eq!(store.lock().unwrap().current_lock().unwrap(), None);
    }

    #[tokio::test]
    async fn a_wait_dropped_after_the_lock_was_let_go_of_leaves_the_count_balanced() {
        let dir = tempfile::tempdir().unwrap();
        let (g, store) = gate(&dir.path().join("state.db"));
        let a = g.enter().await.unwrap();
        let dropped = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            g.unlocked(std::future::pending::<()>()),
        )
        .await;
        assert!(dropped.is_err());
        assert_eq!(g.current(), None, "let go of in the wait");
        // A fresh share takes it again, and the lock is let go of once
        // both are gone.
        let fresh = g.enter().await.unwrap();
        assert!(g.current().is_some());
        drop(fresh);
        assert!(g.current().is_some(), "`a` still needs it");
        drop(a);
        assert_eq!(store.lock().unwrap().current_lock().unwrap(), None);
    }

    /// A shared state whose first takes of the lock fail as DynamoDB may
    /// (a transient error), as no emulated table can be made to.
    struct Flaky {
        inner: crate::testing::remote::MemoryRemote,
        failures: std::sync::atomic::AtomicUsize,
    }

    impl super::super::remote::Remote for Flaky {
        fn describe(&self) -> String {
            self.inner.describe()
        }
        fn incarnation(&self) -> Result<String, RemoteError> {
            self.inner.incarnation()
        }
        fn schema(&self) -> Result<i64, RemoteError> {
            self.inner.schema()
        }
        fn head(&self) -> Result<u64, RemoteError> {
            self.inner.head()
        }
        fn pull(&self, since: u64) -> Result<super::super::remote::Pull, RemoteError> {
            self.inner.pull(since)
        }
        fn commit(
            &self,
            base: u64,
            schema: i64,
            fence: &super::super::remote::Fence,
            changes: &[super::super::remote::RowChange],
        ) -> Result<u64, RemoteError> {
            self.inner.commit(base, schema, fence, changes)
        }
        fn hold(&self, kind: HoldKind) -> Result<Option<HoldRecord>, RemoteError> {
            self.inner.hold(kind)
        }
        fn take_hold(
            &self,
            kind: HoldKind,
            new: &HoldRecord,
            replacing: Option<&HoldRecord>,
        ) -> Result<HoldRecord, RemoteError> {
            if kind == HoldKind::Lock
                && self
                    .failures
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
            {
                return Err(RemoteError::Failed(
                    "dynamodb: TransactWriteItems: throttled".into(),
                ));
            }
            self.inner.take_hold(kind, new, replacing)
        }
        fn renew_hold(&self, kind: HoldKind, id: &str, expires: &str) -> Result<bool, RemoteError> {
            self.inner.renew_hold(kind, id, expires)
        }
        fn release_hold(&self, kind: HoldKind, id: &str) -> Result<(), RemoteError> {
            self.inner.release_hold(kind, id)
        }
        fn compact(&self) -> Result<Option<u64>, RemoteError> {
            self.inner.compact()
        }
    }

    #[tokio::test]
    async fn a_transient_failure_taking_the_lock_again_is_tried_again_while_the_lease_lives() {
        let dir = tempfile::tempdir().unwrap();
        let remote = Arc::new(Flaky {
            inner: crate::testing::remote::MemoryRemote::new(),
            failures: Default::default(),
        });
        let store: SharedStore = Arc::new(Mutex::new(
            Store::open_shared(&dir.path().join("cache.db"), remote.clone()).unwrap(),
        ));
        let lost = Arc::new(AtomicBool::new(false));
        let g = LockGate::new(
            store.clone(),
            "run",
            Duration::seconds(30),
            Default::default(),
            lost.clone(),
            Owner {
                lease: "lease".into(),
                holder: "me".into(),
            },
            Arc::new(|_| {}),
        );
        let a = g.enter().await.unwrap();
        // The wait ends; the first two tries to take the lock again fail.
        g.unlocked(async {
            assert_eq!(g.current(), None);
            remote.failures.store(2, Ordering::SeqCst);
        })
        .await
        .unwrap();
        assert!(g.current().is_some());
        assert_eq!(remote.failures.load(Ordering::SeqCst), 0);
        // With the lease lost, a failure ends the wait for the lock.
        let out = g
            .unlocked(async {
                remote.failures.store(1, Ordering::SeqCst);
                lost.store(true, Ordering::SeqCst);
            })
            .await;
        assert!(out.is_err());
        drop(a);
    }
}
