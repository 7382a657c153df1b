//! The behaviour every state backend must have, as cases run against each
//! one: the SQLite file, shared state over the in-memory remote (unit
//! tests), and shared state over DynamoDB in the emulator (the binary's
//! `state_backends` test). A case is given `open`, which returns a new
//! handle on the same workspace each time it is called: two handles stand
//! for two processes (a plan and a runner, two runners, CI and a host).

use chrono::{Duration, TimeZone, Utc};
use serde_json::json;

use super::{BackupRecord, BackupStatus, Retry, SnapshotRecord, StateError, Store};
use crate::addr::Address;

/// A new handle on the workspace under test.
pub type Open<'a> = &'a dyn Fn() -> Store;

/// One case: its name and its body.
pub type Case = (&'static str, fn(Open<'_>));

/// Every case, by name.
pub fn cases() -> Vec<Case> {
    vec![
        (
            "lineage_and_serial_are_shared",
            lineage_and_serial_are_shared,
        ),
        (
            "a_failed_transaction_writes_nothing",
            a_failed_transaction_writes_nothing,
        ),
        (
            "catalog_changes_reach_every_handle",
            catalog_changes_reach_every_handle,
        ),
        (
            "a_renamed_policy_keeps_its_backups",
            a_renamed_policy_keeps_its_backups,
        ),
        (
            "bookkeeping_reaches_every_handle",
            bookkeeping_reaches_every_handle,
        ),
        ("two_stale_writers_both_land", two_stale_writers_both_land),
        ("the_lock_is_exclusive", the_lock_is_exclusive),
        (
            "an_expired_lease_is_taken_over",
            an_expired_lease_is_taken_over,
        ),
    ]
}

/// Runs every case, each on a fresh workspace from `fresh` (which returns
/// the opener of a new, empty workspace).
pub fn run_all(fresh: &dyn Fn() -> Box<dyn Fn() -> Store>) {
    for (name, case) in cases() {
        let open = fresh();
        eprintln!("conformance: {name}");
        case(&*open);
    }
}

/// A running backup of one snapshot, for cases and tests.
pub fn sample_backup(policy: &str, id: &str) -> BackupRecord {
    BackupRecord {
        seq: 0,
        id: id.into(),
        policy: policy.into(),
        account: "main".into(),
        started: Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
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

fn policy(name: &str) -> serde_json::Value {
    json!({
        "name": name, "account": "main", "generations": 3, "enabled": true,
        "description": null, "selectors": [], "auto_remove_targets": "no"
    })
}

fn lineage_and_serial_are_shared(open: Open<'_>) {
    let mut a = open();
    let mut b = open();
    assert_eq!(a.lineage().unwrap(), b.lineage().unwrap());
    a.transaction(|tx| tx.put_object(&Address::vpc_clone("web"), &json!({"stack_name": "web"})))
        .unwrap();
    let seen = b.load().unwrap();
    assert_eq!(seen.serial, 1);
    assert!(seen.objects.contains_key(&Address::vpc_clone("web")));
    b.transaction(|tx| tx.delete_object(&Address::vpc_clone("web")))
        .unwrap();
    let seen = a.load().unwrap();
    assert_eq!(seen.serial, 2);
    assert!(seen.objects.is_empty());
}

fn a_failed_transaction_writes_nothing(open: Open<'_>) {
    let mut a = open();
    let r: Result<(), StateError> = a.transaction(|tx| {
        tx.put_object(&Address::vpc_clone("db"), &json!({}))?;
        Err(StateError::Conflict("refused by the caller".into()))
    });
    assert!(r.is_err());
    let seen = open().load().unwrap();
    assert_eq!(seen.serial, 0);
    assert!(seen.objects.is_empty());
    assert_eq!(a.load().unwrap(), seen);
}

fn catalog_changes_reach_every_handle(open: Open<'_>) {
    let mut a = open();
    let mut b = open();
    a.transaction(|tx| tx.insert_backup(&sample_backup("web", "b1")))
        .unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 22, 10, 5, 0).unwrap();
    b.transaction(|tx| tx.finish_backup("web", "b1", BackupStatus::Success, at, &[]))
        .unwrap();
    let seen = a.load().unwrap();
    assert_eq!(seen.backups.len(), 1);
    assert_eq!(seen.backups[0].status, BackupStatus::Success);
    assert_eq!(seen.backups[0].snapshots.len(), 1);
    a.transaction(|tx| {
        tx.delete_snapshot("snap-b1", at)?;
        tx.delete_backup("web", "b1", at)
    })
    .unwrap();
    assert!(b.load().unwrap().backups.is_empty());
}

fn a_renamed_policy_keeps_its_backups(open: Open<'_>) {
    let mut a = open();
    a.transaction(|tx| {
        tx.put_object(&Address::policy("web"), &policy("web"))?;
        tx.insert_backup(&sample_backup("web", "b1"))
    })
    .unwrap();
    a.transaction(|tx| tx.move_policy("web", "site")).unwrap();
    let seen = open().load().unwrap();
    let owners: Vec<&str> = seen.backups.iter().map(|b| b.policy.as_str()).collect();
    assert_eq!(owners, ["site"]);
    assert!(seen.objects.contains_key(&Address::policy("site")));
    assert!(!seen.objects.contains_key(&Address::policy("web")));
}

fn bookkeeping_reaches_every_handle(open: Open<'_>) {
    let mut a = open();
    let slot = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
    a.begin_slot(&Retry {
        policy: "web".into(),
        slot,
        attempt: 1,
        due: slot,
    })
    .unwrap();
    assert_eq!(a.record_failure("web").unwrap(), 1);
    let mut b = open();
    b.sync().unwrap();
    assert_eq!(b.record_failure("web").unwrap(), 2);
    assert_eq!(b.retries().unwrap()["web"].attempt, 1);
    assert_eq!(b.last_slots().unwrap()["web"], slot);
    a.sync().unwrap();
    assert_eq!(a.failures("web").unwrap(), 2);
    // Bookkeeping is not a change a plan must see: the serial stays.
    assert_eq!(a.serial().unwrap(), 0);
}

fn two_stale_writers_both_land(open: Open<'_>) {
    let mut a = open();
    let mut b = open();
    a.load().unwrap();
    b.load().unwrap();
    a.transaction(|tx| tx.put_object(&Address::vpc_clone("a"), &json!({})))
        .unwrap();
    // `b` last read before `a` wrote: its change is made on `a`'s.
    b.transaction(|tx| tx.put_object(&Address::vpc_clone("b"), &json!({})))
        .unwrap();
    let seen = open().load().unwrap();
    assert_eq!(seen.serial, 2);
    assert_eq!(seen.objects.len(), 2);
}

fn the_lock_is_exclusive(open: Open<'_>) {
    let mut a = open();
    let mut b = open();
    let held = a.lock("apply").unwrap();
    match b.lock("backup") {
        Err(StateError::Locked { id, operation, .. }) => {
            assert_eq!(id, held.id);
            assert_eq!(operation, "apply");
        }
        other => panic!("a second lock was not refused: {other:?}"),
    }
    assert_eq!(
        b.current_lock().unwrap().map(|l| l.id),
        Some(held.id.clone())
    );
    assert!(matches!(
        b.force_unlock("not-the-id"),
        Err(StateError::NoSuchLock(_))
    ));
    a.unlock(&held.id).unwrap();
    let mine = b.lock("backup").unwrap();
    assert_ne!(mine.id, held.id);
    b.unlock(&mine.id).unwrap();
    assert_eq!(a.current_lock().unwrap(), None);
}

fn an_expired_lease_is_taken_over(open: Open<'_>) {
    let mut a = open();
    let mut b = open();
    // A lease that has already run out stands for a runner that stopped
    // renewing it (paused, partitioned, killed on another host).
    let first = a.take_lease(Duration::seconds(-1)).unwrap();
    let second = b.take_lease(Duration::seconds(30)).unwrap();
    assert_ne!(first.id, second.id);
    assert!(a.renew_lease(&first.id, Duration::seconds(30)).is_err());
    assert!(matches!(
        a.take_lease(Duration::seconds(30)),
        Err(StateError::Leased { .. })
    ));
    b.release_lease(&second.id).unwrap();
    assert_eq!(a.current_lease().unwrap(), None);
}
