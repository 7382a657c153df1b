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
//! did.

use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;

use crate::failpoint;
use crate::state::{SharedStore, SnapshotRecord};

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
}

#[derive(Default)]
struct Queue {
    /// Handed over and not yet being committed: one entry per target.
    pending: Vec<Vec<SnapshotRecord>>,
    /// Is a writer committing (or about to)? Only it takes from `pending`.
    writing: bool,
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
            }),
        }
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
        if !q.writing {
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
                Some(w) => w.await.expect("catalog writer panicked"),
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
    /// nothing is. A batch that fails is remembered and the next ones are
    /// still committed, so that as much of what exists as can be is in the
    /// catalog when the backup fails.
    fn drain(&self) {
        loop {
            let batch: Vec<SnapshotRecord> = {
                let mut q = self.queue.lock().expect("recorder");
                if q.pending.is_empty() {
                    q.writing = false;
                    return;
                }
                let n = q.pending.len().min(MAX_BATCH);
                q.pending.drain(..n).flatten().collect()
            };
            failpoint::hit(failpoint::BACKUP_BATCHED);
            if let Err(e) = record_snapshots(&self.store, &self.policy, &self.id, &batch) {
                self.queue.lock().expect("recorder").failed.get_or_insert(e);
            }
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
