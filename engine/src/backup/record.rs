//! Recording what a backup's create calls made: a group commit.
//!
//! Every create call's records must reach the catalog, and with the state
//! shared (DynamoDB) each commit is a round trip to the table, made one at a
//! time under the store's lock. Committing once per target made the tick
//! wait on those round trips one after another, and made the create calls'
//! tasks block tokio's worker threads on the store while they did. So a
//! create call's task hands its records to the region's [`Recorder`] and
//! goes on; one writer, on a blocking thread of its own, commits whatever
//! has been handed over since its last commit, in one transaction, until
//! nothing is left. A target's records always travel whole in one
//! transaction; a transaction holds at most [`MAX_BATCH`] targets.
//!
//! Safety: the records are handed over with no await between the create
//! call's answer and the hand-over, and the writer is not a task that a
//! dropped backup (a policy `timeout`) cancels, so what was handed over is
//! committed. A process that dies before the writer committed leaves
//! snapshots that carry the backup's id tag: restart reconciliation adopts
//! them (`reconcile.rs`), and `insert_snapshot` ignores a record already
//! there, so a snapshot is never counted twice. A batch that fails is not
//! dropped silently: its error fails the backup, as a failed single commit
//! did, and the writer stops there (what it had not committed carries the
//! backup's tags, and the backup, left `running`, is reconciled).
//!
//! Nothing is committed after the backup is gone: a backup dropped (its
//! policy's timeout, a runner shutting down) waits, as it drops, for the
//! batch being committed and commits what is still queued itself, then
//! closes the recorder. Dropping happens before the runner or command lets
//! go of its lock or lease, so every record is committed under the hold
//! it was made under.

use std::sync::{Arc, Condvar, Mutex};

use tokio::task::JoinHandle;

use crate::failpoint;
use crate::state::{SharedStore, SnapshotRecord, StateError};

use super::BackupError;

/// Targets per transaction at most: a commit of that many records stays
/// well inside one DynamoDB `TransactWriteItems` (bigger changes would be
/// staged in chunks, which costs round trips of their own).
pub(super) const MAX_BATCH: usize = 50;

/// Commits the records of one region's create calls in batches.
#[derive(Clone)]
pub(super) struct Recorder {
    shared: Arc<Shared>,
}

struct Shared {
    store: SharedStore,
    policy: String,
    id: String,
    queue: Mutex<Queue>,
    /// Signalled when a batch's commit ends.
    committed: Condvar,
}

#[derive(Default)]
struct Queue {
    /// Handed over and not yet being committed: one entry per target.
    pending: Vec<Vec<SnapshotRecord>>,
    /// Is a writer committing (or about to)? Only it takes from `pending`.
    writing: bool,
    /// Is a batch taken from `pending` and not yet committed?
    in_commit: bool,
    /// The backup is gone: no writer takes another batch.
    closed: bool,
    /// The running (or last) writer, for [`Recorder::flush`] to wait on.
    writer: Option<JoinHandle<()>>,
    /// The first batch that could not be committed.
    failed: Option<BackupError>,
}

impl Recorder {
    pub(super) fn new(store: &SharedStore, policy: &str, id: &str) -> Recorder {
        Recorder {
            shared: Arc::new(Shared {
                store: store.clone(),
                policy: policy.to_string(),
                id: id.to_string(),
                queue: Mutex::new(Queue::default()),
                committed: Condvar::new(),
            }),
        }
    }

    /// Closes the recorder when dropped: see [`Closing`].
    pub(super) fn closing(&self) -> Closing {
        Closing(self.shared.clone())
    }

    /// Hands one target's records to the writer, starting one if none is
    /// committing. Never waits on the store: called from the create call's
    /// task on a tokio worker. Must be called within a tokio runtime.
    pub(super) fn record(&self, snaps: Vec<SnapshotRecord>) {
        if snaps.is_empty() {
            return;
        }
        let mut q = self.shared.queue.lock().expect("recorder");
        q.pending.push(snaps);
        if !q.writing && !q.closed && q.failed.is_none() {
            q.writing = true;
            let shared = self.shared.clone();
            q.writer = Some(tokio::task::spawn_blocking(move || shared.drain()));
        }
    }

    /// Has a batch failed? The backup then stops as a failed commit
    /// stopped it.
    pub(super) fn failed(&self) -> bool {
        self.shared.queue.lock().expect("recorder").failed.is_some()
    }

    /// Waits until everything handed over is committed; the first batch's
    /// error if one could not be.
    pub(super) async fn flush(&self) -> Result<(), BackupError> {
        loop {
            let writer = self.shared.queue.lock().expect("recorder").writer.take();
            match writer {
                Some(w) => {
                    if let Err(e) = w.await {
                        let mut q = self.shared.queue.lock().expect("recorder");
                        q.failed
                            .get_or_insert(BackupError::State(StateError::Conflict(format!(
                                "the catalog writer of backup {} stopped: {e}",
                                self.shared.id
                            ))));
                    }
                }
                None => break,
            }
        }
        match self.shared.queue.lock().expect("recorder").failed.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Shared {
    /// The writer: commits what is pending, batch after batch, until
    /// nothing is, the backup is gone, or a batch fails (its error is kept
    /// for [`Recorder::flush`]; the backup stops with it).
    fn drain(&self) {
        // Whatever ends this thread (a panic included), the recorder is
        // left in a state a flush and a closing backup understand.
        let _ended = Ended(self);
        loop {
            let batch: Vec<SnapshotRecord> = {
                let mut q = self.queue.lock().expect("recorder");
                if q.pending.is_empty() || q.closed || q.failed.is_some() {
                    return;
                }
                let n = q.pending.len().min(MAX_BATCH);
                q.in_commit = true;
                q.pending.drain(..n).flatten().collect()
            };
            failpoint::hit(failpoint::BACKUP_BATCHED);
            let result = record_snapshots(&self.store, &self.policy, &self.id, &batch);
            let mut q = self.queue.lock().expect("recorder");
            q.in_commit = false;
            if let Err(e) = result {
                q.failed.get_or_insert(e);
            }
            self.committed.notify_all();
        }
    }
}

/// Ends a writer: no longer writing, no batch in commit (one that panicked
/// counts as failed).
struct Ended<'a>(&'a Shared);

impl Drop for Ended<'_> {
    fn drop(&mut self) {
        let mut q = match self.0.queue.lock() {
            Ok(q) => q,
            Err(poisoned) => poisoned.into_inner(),
        };
        if q.in_commit {
            q.in_commit = false;
            q.failed
                .get_or_insert(BackupError::State(StateError::Conflict(format!(
                    "the catalog writer of backup {} stopped in a commit",
                    self.0.id
                ))));
        }
        q.writing = false;
        self.0.committed.notify_all();
    }
}

/// Held by a region's backup while it runs. Dropped with it, finished or
/// not, it closes the recorder: it waits for a batch in commit, then
/// commits what is still queued on this thread, so that every record is
/// committed before the caller lets go of its lock or lease (a backup
/// dropped by a timeout or a runner's shutdown included), and none after.
pub(super) struct Closing(Arc<Shared>);

impl Drop for Closing {
    fn drop(&mut self) {
        let shared = &self.0;
        let left: Vec<SnapshotRecord> = {
            let mut q = match shared.queue.lock() {
                Ok(q) => q,
                Err(poisoned) => poisoned.into_inner(),
            };
            q.closed = true;
            while q.in_commit {
                q = match shared.committed.wait(q) {
                    Ok(q) => q,
                    Err(poisoned) => poisoned.into_inner(),
                };
            }
            if q.failed.is_some() {
                // The store refused: what is left carries the backup's
                // tags and is reconciled with the backup.
                return;
            }
            q.pending.drain(..).flatten().collect()
        };
        if !left.is_empty() {
            // An error here leaves the same: tagged snapshots of a backup
            // still `running`, which reconciliation adopts.
            let _ = record_snapshots(&shared.store, &shared.policy, &shared.id, &left);
        }
    }
}

/// Records what a create call made under the backup, in one transaction.
pub(super) fn record_snapshots(
    store: &SharedStore,
    policy: &str,
    id: &str,
    snaps: &[SnapshotRecord],
) -> Result<(), BackupError> {
    store.lock().expect("store").transaction(|tx| {
        for snap in snaps {
            tx.insert_snapshot(policy, id, snap)?;
        }
        Ok(())
    })?;
    Ok(())
}
