//! Shared state over the in-memory remote: the conformance cases, and what
//! only shared state has (conflicts between processes, fencing, a lost
//! answer). The emulator's DynamoDB runs the same conformance cases in the
//! binary's `state_backends` test; these cover what it cannot be made to
//! do on cue: another writer landing between a pull and a commit, and an
//! answer lost after the remote accepted a commit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::Duration;
use serde_json::json;

use super::super::conformance;
use super::super::remote::{HoldKind, RemoteError, RowChange};
use super::super::{StateError, Store};
use crate::addr::Address;
use crate::testing::remote::MemoryRemote;

/// A handle on `remote` through a cache of its own, as a process on
/// another host would have.
fn opener(remote: Arc<MemoryRemote>) -> Box<dyn Fn() -> Store> {
    let dir = tempfile::tempdir().unwrap().keep();
    let n = AtomicUsize::new(0);
    Box::new(move || {
        let cache = dir.join(format!("cache-{}.db", n.fetch_add(1, Ordering::SeqCst)));
        Store::open_shared(&cache, remote.clone()).unwrap()
    })
}

#[test]
fn conformance_on_a_state_file() {
    conformance::run_all(&|| {
        let path = tempfile::tempdir().unwrap().keep().join("state.db");
        Box::new(move || Store::open(&path).unwrap())
    });
}

#[test]
fn conformance_on_shared_state() {
    conformance::run_all(&|| opener(Arc::new(MemoryRemote::new())));
}

#[test]
fn conformance_on_shared_state_with_handles_sharing_one_cache() {
    // Two processes of one host share the cache file as well.
    conformance::run_all(&|| {
        let remote = Arc::new(MemoryRemote::new());
        let cache = tempfile::tempdir().unwrap().keep().join("cache.db");
        Box::new(move || Store::open_shared(&cache, remote.clone()).unwrap())
    });
}

#[test]
fn a_writer_beaten_to_the_commit_makes_its_change_again_on_the_new_state() {
    let remote = Arc::new(MemoryRemote::new());
    let open = opener(remote.clone());
    let mut a = open();
    let other = RowChange {
        table: "objects".into(),
        key: json!(["vpc_clone.other"]),
        row: Some(
            json!({"address": "vpc_clone.other", "kind": "vpc_clone", "value": "{}"})
                .as_object()
                .unwrap()
                .clone(),
        ),
    };
    remote.interleave(vec![other]);
    let mut runs = 0;
    a.transaction(|tx| {
        runs += 1;
        tx.put_object(&Address::vpc_clone("mine"), &json!({}))
    })
    .unwrap();
    assert_eq!(runs, 2, "the change is made again after the conflict");
    let seen = open().load().unwrap();
    let names: Vec<String> = seen.objects.keys().map(|a| a.to_string()).collect();
    assert_eq!(names, ["vpc_clone.mine", "vpc_clone.other"]);
}

#[test]
fn a_runner_that_lost_its_lease_cannot_write_afterwards() {
    let remote = Arc::new(MemoryRemote::new());
    let open = opener(remote.clone());
    let mut zombie = open();
    let mut leader = open();
    zombie.take_lease(Duration::seconds(30)).unwrap();
    // The zombie pauses; its lease runs out and the standby takes over.
    remote.expire(HoldKind::Lease);
    leader.take_lease(Duration::seconds(30)).unwrap();
    let before = remote.commits();
    let err = zombie
        .transaction(|tx| tx.put_object(&Address::vpc_clone("late"), &json!({})))
        .unwrap_err();
    assert!(
        matches!(err, StateError::Remote(RemoteError::Fenced(ref h)) if h == "run lease"),
        "{err}"
    );
    assert_eq!(remote.commits(), before, "nothing reached the remote");
    assert!(leader.load().unwrap().objects.is_empty());
    assert!(
        zombie.load().unwrap().objects.is_empty(),
        "nor the zombie's cache"
    );
    // Its bookkeeping writes are refused the same way.
    assert!(matches!(
        zombie.record_failure("web"),
        Err(StateError::Remote(RemoteError::Fenced(_)))
    ));
}

#[test]
fn a_commit_whose_answer_was_lost_is_found_on_the_next_read() {
    let remote = Arc::new(MemoryRemote::new());
    let open = opener(remote.clone());
    let mut a = open();
    remote.lose_next_answer();
    let err = a
        .transaction(|tx| tx.put_object(&Address::vpc_clone("web"), &json!({})))
        .unwrap_err();
    assert!(
        matches!(err, StateError::Remote(RemoteError::Failed(_))),
        "{err}"
    );
    let seen = a.load().unwrap();
    assert_eq!(seen.serial, 1);
    assert!(seen.objects.contains_key(&Address::vpc_clone("web")));
}

#[test]
fn a_workspace_of_a_newer_schema_is_refused_before_anything_is_read() {
    let remote = Arc::new(MemoryRemote::new());
    let open = opener(remote.clone());
    drop(open());
    use super::super::remote::{Fence, Remote};
    remote
        .commit(
            remote.head().unwrap(),
            super::SCHEMA_VERSION + 1,
            &Fence::default(),
            &[],
        )
        .unwrap();
    let cache = tempfile::tempdir().unwrap().keep().join("c.db");
    let err = match Store::open_shared(&cache, remote) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a newer workspace was opened"),
    };
    assert!(err.contains("newer Lifeboat"), "{err}");
}

#[test]
fn a_cache_of_another_workspace_starts_over() {
    let cache = tempfile::tempdir().unwrap().keep().join("cache.db");
    let first = Arc::new(MemoryRemote::new());
    let mut s = Store::open_shared(&cache, first.clone()).unwrap();
    s.transaction(|tx| tx.put_object(&Address::vpc_clone("web"), &json!({})))
        .unwrap();
    let lineage = s.lineage().unwrap();
    drop(s);
    struct Other(MemoryRemote);
    impl super::super::remote::Remote for Other {
        fn describe(&self) -> String {
            "another workspace".into()
        }
        fn incarnation(&self) -> Result<String, RemoteError> {
            self.0.incarnation()
        }
        fn schema(&self) -> Result<i64, RemoteError> {
            self.0.schema()
        }
        fn head(&self) -> Result<u64, RemoteError> {
            self.0.head()
        }
        fn pull(&self, since: u64) -> Result<super::super::remote::Pull, RemoteError> {
            self.0.pull(since)
        }
        fn commit(
            &self,
            base: u64,
            schema: i64,
            fence: &super::super::remote::Fence,
            changes: &[RowChange],
        ) -> Result<u64, RemoteError> {
            self.0.commit(base, schema, fence, changes)
        }
        fn hold(
            &self,
            kind: HoldKind,
        ) -> Result<Option<super::super::remote::HoldRecord>, RemoteError> {
            self.0.hold(kind)
        }
        fn take_hold(
            &self,
            kind: HoldKind,
            new: &super::super::remote::HoldRecord,
            replacing: Option<&super::super::remote::HoldRecord>,
        ) -> Result<super::super::remote::HoldRecord, RemoteError> {
            self.0.take_hold(kind, new, replacing)
        }
        fn renew_hold(&self, kind: HoldKind, id: &str, expires: &str) -> Result<bool, RemoteError> {
            self.0.renew_hold(kind, id, expires)
        }
        fn release_hold(&self, kind: HoldKind, id: &str) -> Result<(), RemoteError> {
            self.0.release_hold(kind, id)
        }
        fn compact(&self) -> Result<Option<u64>, RemoteError> {
            self.0.compact()
        }
    }
    let mut s = Store::open_shared(&cache, Arc::new(Other(MemoryRemote::new()))).unwrap();
    let seen = s.load().unwrap();
    assert!(
        seen.objects.is_empty(),
        "the other workspace's rows are gone"
    );
    assert_ne!(seen.lineage, lineage);
    assert_eq!(first.head().unwrap(), 2, "the first workspace is untouched");
    use super::super::remote::Remote;
}

/// A workspace with a little of everything: objects, a backup, bookkeeping.
fn filled(s: &mut Store) {
    s.transaction(|tx| {
        tx.put_object(&Address::vpc_clone("web"), &json!({"stack_name": "web"}))?;
        tx.insert_backup(&super::super::conformance::sample_backup("web", "b1"))
    })
    .unwrap();
    s.record_failure("web").unwrap();
    s.set_note("last_tick", "2026-11-22T10:00:00Z").unwrap();
}

#[test]
fn a_file_copied_into_shared_state_and_back_keeps_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let mut file = Store::open(&dir.path().join("state.db")).unwrap();
    filled(&mut file);
    let digest = file.digest().unwrap();
    let remote = Arc::new(MemoryRemote::new());
    let open = opener(remote.clone());
    let mut shared = open();
    assert!(shared.is_empty().unwrap());
    shared.replace_with(&file.rows().unwrap()).unwrap();
    let mut other = open();
    assert_eq!(other.digest().unwrap(), digest);
    assert_eq!(other.lineage().unwrap(), file.lineage().unwrap());
    assert_eq!(other.load().unwrap().backups.len(), 1);
    let back = dir.path().join("back.db");
    other.copy_to(&back).unwrap();
    let mut back = Store::open(&back).unwrap();
    assert_eq!(back.digest().unwrap(), digest);
    assert_eq!(back.load().unwrap(), file.load().unwrap());
}

#[test]
fn a_cache_behind_a_compacted_log_is_rebuilt_from_the_rows() {
    let remote = Arc::new(MemoryRemote::new());
    let open = opener(remote.clone());
    let mut behind = open();
    let mut writer = open();
    filled(&mut writer);
    writer
        .transaction(|tx| {
            tx.delete_object(&Address::vpc_clone("web"))?;
            tx.put_object(&Address::vpc_clone("db"), &json!({}))
        })
        .unwrap();
    let digest = writer.digest().unwrap();
    assert!(writer.compact().unwrap().is_some());
    assert_eq!(writer.compact().unwrap(), None, "nothing new to fold");
    // A cache from before the compaction, and a new one, read the rows.
    assert_eq!(behind.digest().unwrap(), digest);
    assert_eq!(open().digest().unwrap(), digest);
    let seen = behind.load().unwrap();
    let names: Vec<String> = seen.objects.keys().map(|a| a.to_string()).collect();
    assert_eq!(names, ["vpc_clone.db"]);
    // Writing goes on from the folded revision.
    behind
        .transaction(|tx| tx.put_object(&Address::vpc_clone("late"), &json!({})))
        .unwrap();
    assert_eq!(writer.load().unwrap().objects.len(), 2);
}
