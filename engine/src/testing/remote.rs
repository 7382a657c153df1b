//! An in-memory shared-state remote ([`Remote`]) for tests: the commit log,
//! the holds and the fencing as the DynamoDB backend keeps them, plus what
//! the emulator cannot be made to do on cue: an answer lost after the
//! remote accepted a commit, and a count of the calls.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::state::remote::{
    Commit, Fence, HoldKind, HoldRecord, Pull, Remote, RemoteError, RowChange,
};

#[derive(Default)]
struct World {
    /// Every commit; those up to `folded` are only readable as the rows
    /// they left (`Pull::Full`), as after a compaction.
    log: Vec<Commit>,
    folded: u64,
    schema: i64,
    holds: HashMap<HoldKind, HoldRecord>,
    epochs: HashMap<HoldKind, u64>,
    /// The next commit is accepted, and its answer then lost.
    lose_next_answer: bool,
    /// Committed just before the next commit: another writer that got in
    /// between a reader's pull and its commit.
    interleave: Option<Vec<RowChange>>,
    commits: usize,
    /// How long each commit takes, as a round trip to a table would.
    commit_delay: Option<std::time::Duration>,
    /// Commits are refused once this many were accepted.
    refuse_after: Option<usize>,
}

#[derive(Default)]
pub struct MemoryRemote {
    world: Mutex<World>,
}

impl MemoryRemote {
    pub fn new() -> MemoryRemote {
        MemoryRemote::default()
    }

    /// Accept the next commit but answer as if the call failed (a timeout
    /// after the write landed).
    pub fn lose_next_answer(&self) {
        self.world.lock().unwrap().lose_next_answer = true;
    }

    /// Lets another writer commit `changes` just before the next commit.
    pub fn interleave(&self, changes: Vec<RowChange>) {
        self.world.lock().unwrap().interleave = Some(changes);
    }

    /// Makes every commit take `delay`, as a round trip to DynamoDB does,
    /// so that a writer's next changes pile up while one is in flight.
    pub fn slow_commits(&self, delay: std::time::Duration) {
        self.world.lock().unwrap().commit_delay = Some(delay);
    }

    /// Refuses every commit once `accepted` commits were accepted in all
    /// (a table out of reach, or a writer fenced out, from then on).
    pub fn refuse_commits_after(&self, accepted: usize) {
        self.world.lock().unwrap().refuse_after = Some(accepted);
    }

    /// How many commits were accepted.
    pub fn commits(&self) -> usize {
        self.world.lock().unwrap().commits
    }

    /// Moves a hold's expiry into the past, as if its holder stopped
    /// renewing it long ago.
    pub fn expire(&self, kind: HoldKind) {
        if let Some(h) = self.world.lock().unwrap().holds.get_mut(&kind) {
            h.expires = "2000-01-01T00:00:00.000Z".into();
        }
    }
}

impl Remote for MemoryRemote {
    fn describe(&self) -> String {
        "memory workspace".into()
    }

    fn incarnation(&self) -> Result<String, RemoteError> {
        Ok(format!("memory {:p}", self as *const MemoryRemote))
    }

    fn schema(&self) -> Result<i64, RemoteError> {
        Ok(self.world.lock().unwrap().schema)
    }

    fn head(&self) -> Result<u64, RemoteError> {
        Ok(self.world.lock().unwrap().log.len() as u64)
    }

    fn pull(&self, since: u64) -> Result<Pull, RemoteError> {
        let w = self.world.lock().unwrap();
        if since < w.folded {
            // The live rows at the head, in the order they were last written.
            let mut rows: Vec<RowChange> = Vec::new();
            for c in w.log.iter().flat_map(|c| &c.changes) {
                rows.retain(|r| !(r.table == c.table && r.key == c.key));
                if c.row.is_some() {
                    rows.push(c.clone());
                }
            }
            return Ok(Pull::Full {
                rev: w.log.len() as u64,
                rows,
            });
        }
        Ok(Pull::Log(
            w.log.iter().skip(since as usize).cloned().collect(),
        ))
    }

    fn compact(&self) -> Result<Option<u64>, RemoteError> {
        let mut w = self.world.lock().unwrap();
        let head = w.log.len() as u64;
        if head == w.folded {
            return Ok(None);
        }
        w.folded = head;
        Ok(Some(head))
    }

    fn commit(
        &self,
        base: u64,
        schema: i64,
        fence: &Fence,
        changes: &[RowChange],
    ) -> Result<u64, RemoteError> {
        let delay = self.world.lock().unwrap().commit_delay;
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
        let mut w = self.world.lock().unwrap();
        if w.refuse_after.is_some_and(|n| w.commits >= n) {
            return Err(RemoteError::Failed("the commit was refused".into()));
        }
        if let Some(other) = w.interleave.take() {
            let rev = w.log.len() as u64 + 1;
            w.log.push(Commit {
                rev,
                changes: other,
            });
        }
        let head = w.log.len() as u64;
        if head != base {
            return Err(RemoteError::Conflict { base, found: head });
        }
        for (kind, mine, noun) in [
            (HoldKind::Lock, &fence.lock, "state lock"),
            (HoldKind::Lease, &fence.lease, "run lease"),
        ] {
            if let Some(id) = mine {
                if w.holds.get(&kind).map(|h| &h.id) != Some(id) {
                    return Err(RemoteError::Fenced(noun.into()));
                }
            }
        }
        w.log.push(Commit {
            rev: head + 1,
            changes: changes.to_vec(),
        });
        w.schema = schema;
        w.commits += 1;
        if std::mem::take(&mut w.lose_next_answer) {
            return Err(RemoteError::Failed("the answer was lost".into()));
        }
        Ok(head + 1)
    }

    fn hold(&self, kind: HoldKind) -> Result<Option<HoldRecord>, RemoteError> {
        Ok(self.world.lock().unwrap().holds.get(&kind).cloned())
    }

    fn take_hold(
        &self,
        kind: HoldKind,
        new: &HoldRecord,
        replacing: Option<&HoldRecord>,
    ) -> Result<HoldRecord, RemoteError> {
        let mut w = self.world.lock().unwrap();
        if w.holds.get(&kind) != replacing {
            let found = w.log.len() as u64;
            return Err(RemoteError::Conflict { base: found, found });
        }
        let epoch = w.epochs.get(&kind).copied().unwrap_or(0) + 1;
        w.epochs.insert(kind, epoch);
        let mut h = new.clone();
        h.epoch = epoch;
        w.holds.insert(kind, h.clone());
        Ok(h)
    }

    fn renew_hold(&self, kind: HoldKind, id: &str, expires: &str) -> Result<bool, RemoteError> {
        let mut w = self.world.lock().unwrap();
        match w.holds.get_mut(&kind) {
            Some(h) if h.id == id => {
                h.expires = expires.to_string();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn release_hold(&self, kind: HoldKind, id: &str) -> Result<(), RemoteError> {
        let mut w = self.world.lock().unwrap();
        if w.holds.get(&kind).map(|h| h.id.as_str()) == Some(id) {
            w.holds.remove(&kind);
        }
        Ok(())
    }
}
