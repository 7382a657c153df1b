//! The DynamoDB state backend (`DynamoRemote`) against the emulator's
//! DynamoDB, through the real SDK: table creation, commits and pulls,
//! conflicts, fencing, staged large commits, holds and paginated pulls.

mod support;

use std::time::Instant;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::BehaviorVersion;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    PointInTimeRecoveryStatus, ScalarAttributeType, TimeToLiveStatus,
};
use aws_types::region::Region;
use aws_types::SdkConfig;
use lifeboat_engine::state::remote::{
    Commit, Fence, HoldKind, HoldRecord, Pull, Remote, RemoteError, RowChange,
};
use lifeboat_providers::DynamoRemote;
use serde_json::json;
use support::{Emulator, ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};

const TABLE: &str = "lifeboat-state";

fn config(emulator: &Emulator) -> SdkConfig {
    let credentials = Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY, None, None, "test");
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(emulator.endpoint())
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .build()
}

/// The test's own client, to read back what the remote wrote.
fn client(emulator: &Emulator) -> (aws_sdk_dynamodb::Client, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    (aws_sdk_dynamodb::Client::new(&config(emulator)), rt)
}

/// A remote on an initialised table.
fn remote(emulator: &Emulator, workspace: &str) -> DynamoRemote {
    let r = DynamoRemote::new(config(emulator), TABLE, workspace).unwrap();
    r.init_table(false).unwrap();
    r
}

fn row(table: &str, id: u64, payload: &str) -> RowChange {
    let value = json!({ "id": id, "payload": payload });
    RowChange {
        table: table.to_owned(),
        key: json!([id]),
        row: Some(value.as_object().unwrap().clone()),
    }
}

fn log(pull: Pull) -> Vec<Commit> {
    match pull {
        Pull::Log(commits) => commits,
        full => panic!("expected the log, got {full:?}"),
    }
}

fn hold(id: &str) -> HoldRecord {
    HoldRecord {
        id: id.to_owned(),
        holder: format!("host-{id}"),
        operation: "run".to_owned(),
        acquired: "2026-12-01T10:00:00+00:00".to_owned(),
        expires: "2026-12-01T10:00:30+00:00".to_owned(),
        holder_id: Some(format!("{{\"pid\":{}}}", id.len())),
        epoch: 0,
    }
}

#[test]
fn init_creates_the_table_with_recovery_and_deletion_protection() {
    let emulator = Emulator::start();
    let remote = DynamoRemote::new(config(&emulator), TABLE, "prod").unwrap();
    let advice = format!("table {TABLE} does not exist in {REGION}: run `lifeboat state init`");
    assert_eq!(
        remote.incarnation().map(|_| ()),
        Err(RemoteError::Failed(advice.clone()))
    );
    assert_eq!(remote.head(), Err(RemoteError::Failed(advice.clone())));
    let fence = Fence::default();
    assert_eq!(
        remote.commit(0, 1, &fence, &[row("t", 1, "x")]),
        Err(RemoteError::Failed(advice))
    );

    let report = remote.init_table(false).unwrap();
    assert!(report.created, "{report:?}");
    assert!(report.point_in_time_recovery && report.deletion_protection && report.ttl);
    assert!(report.messages.is_empty(), "{report:?}");
    remote.incarnation().map(|_| ()).unwrap();

    let (aws, rt) = client(&emulator);
    rt.block_on(async {
        let table = aws.describe_table().table_name(TABLE).send().await.unwrap();
        let table = table.table().unwrap();
        assert_eq!(table.deletion_protection_enabled(), Some(true));
        assert_eq!(
            table.billing_mode_summary().unwrap().billing_mode(),
            Some(&BillingMode::PayPerRequest)
        );
        let backups = aws
            .describe_continuous_backups()
            .table_name(TABLE)
            .send()
            .await
            .unwrap();
        let pitr = backups
            .continuous_backups_description()
            .unwrap()
            .point_in_time_recovery_description()
            .unwrap();
        assert_eq!(
            pitr.point_in_time_recovery_status(),
            Some(&PointInTimeRecoveryStatus::Enabled)
        );
        let ttl = aws
            .describe_time_to_live()
            .table_name(TABLE)
            .send()
            .await
            .unwrap();
        let ttl = ttl.time_to_live_description().unwrap();
        assert_eq!(ttl.attribute_name(), Some("expires_at"));
        assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    });

    // Run again: found, nothing to say.
    let again = remote.init_table(false).unwrap();
    assert!(!again.created && again.point_in_time_recovery && again.deletion_protection);
    assert!(again.messages.is_empty(), "{again:?}");
}

#[test]
fn init_reports_on_a_table_it_did_not_make_and_repairs_only_when_asked() {
    let emulator = Emulator::start();
    let (aws, rt) = client(&emulator);
    let make = |name: &str, sk: ScalarAttributeType| {
        rt.block_on(async {
            let attr = |n: &str, t: ScalarAttributeType| {
                AttributeDefinition::builder()
                    .attribute_name(n)
                    .attribute_type(t)
                    .build()
                    .unwrap()
            };
            let key = |n: &str, k: KeyType| {
                KeySchemaElement::builder()
                    .attribute_name(n)
                    .key_type(k)
                    .build()
                    .unwrap()
            };
            aws.create_table()
                .table_name(name)
                .attribute_definitions(attr("pk", ScalarAttributeType::S))
                .attribute_definitions(attr("sk", sk))
                .key_schema(key("pk", KeyType::Hash))
                .key_schema(key("sk", KeyType::Range))
                .billing_mode(BillingMode::PayPerRequest)
                .send()
                .await
                .unwrap();
        })
    };
    make(TABLE, ScalarAttributeType::S);
    let remote = DynamoRemote::new(config(&emulator), TABLE, "prod").unwrap();
    let report = remote.init_table(false).unwrap();
    assert!(!report.created);
    assert!(!report.point_in_time_recovery && !report.deletion_protection && !report.ttl);
    assert_eq!(report.messages.len(), 3, "{report:?}");
    assert!(report.messages[1].starts_with("point-in-time recovery is off"));
    // Still off: reporting changed nothing.
    assert!(!remote.init_table(false).unwrap().point_in_time_recovery);

    let repaired = remote.init_table(true).unwrap();
    assert!(repaired.point_in_time_recovery && repaired.deletion_protection && repaired.ttl);
    assert_eq!(
        repaired.messages,
        [
            "deletion protection turned on",
            "point-in-time recovery turned on",
            "TTL on expires_at turned on"
        ]
    );

    make("someone-elses", ScalarAttributeType::N);
    let other = DynamoRemote::new(config(&emulator), "someone-elses", "prod").unwrap();
    let Err(RemoteError::Failed(why)) = other.init_table(true) else {
        panic!("a table with other keys was accepted");
    };
    assert!(why.contains("[pk S HASH, sk N RANGE]"), "{why}");
    assert!(other.incarnation().is_err());
}

#[test]
fn commits_round_trip_through_pull() {
    let emulator = Emulator::start();
    let remote = remote(&emulator, "prod");
    assert_eq!(
        remote.describe(),
        "dynamodb table lifeboat-state (us-east-1), workspace prod"
    );
    assert_eq!((remote.head(), remote.schema()), (Ok(0), Ok(0)));
    assert_eq!(log(remote.pull(0).unwrap()), []);

    let first = vec![row("objects", 1, "one"), row("backups", 2, "two")];
    let started = Instant::now();
    assert_eq!(remote.commit(0, 7, &Fence::default(), &first), Ok(1));
    let commit_took = started.elapsed();
    let second = vec![RowChange {
        table: "objects".to_owned(),
        key: json!([1]),
        row: None,
    }];
    assert_eq!(remote.commit(1, 7, &Fence::default(), &second), Ok(2));
    assert_eq!((remote.head(), remote.schema()), (Ok(2), Ok(7)));

    let started = Instant::now();
    let pulled = log(remote.pull(0).unwrap());
    let pull_took = started.elapsed();
    eprintln!("one commit: {commit_took:?}; a pull of two commits: {pull_took:?}");
    let want = vec![
        Commit {
            rev: 1,
            changes: first,
        },
        Commit {
            rev: 2,
            changes: second.clone(),
        },
    ];
    assert_eq!(pulled, want);
    assert_eq!(log(remote.pull(1).unwrap()), want[1..]);
    assert_eq!(log(remote.pull(2).unwrap()), []);

    // Another workspace in the same table is another history.
    let staging = DynamoRemote::new(config(&emulator), TABLE, "staging").unwrap();
    assert_eq!(staging.head(), Ok(0));
    assert_eq!(log(staging.pull(0).unwrap()), []);
}

#[test]
fn a_commit_on_a_stale_base_is_a_conflict() {
    let emulator = Emulator::start();
    let remote = remote(&emulator, "prod");
    let fence = Fence::default();
    remote.commit(0, 1, &fence, &[row("t", 1, "a")]).unwrap();
    // Two writers both made a change on revision 0; the second loses.
    assert_eq!(
        remote.commit(0, 1, &fence, &[row("t", 2, "b")]),
        Err(RemoteError::Conflict { base: 0, found: 1 })
    );
    remote.commit(1, 1, &fence, &[row("t", 3, "c")]).unwrap();
    assert_eq!(
        remote.commit(1, 1, &fence, &[row("t", 4, "d")]),
        Err(RemoteError::Conflict { base: 1, found: 2 })
    );
    let revs: Vec<u64> = log(remote.pull(0).unwrap()).iter().map(|c| c.rev).collect();
    assert_eq!(revs, [1, 2]);
}

#[test]
fn a_commit_fenced_on_a_lease_taken_over_is_refused_and_invisible() {
    let emulator = Emulator::start();
    let remote = remote(&emulator, "prod");
    let lease_a = remote.take_hold(HoldKind::Lease, &hold("a"), None).unwrap();
    let lock = remote.take_hold(HoldKind::Lock, &hold("l"), None).unwrap();
    let fenced = Fence {
        lock: Some(lock.id.clone()),
        lease: Some(lease_a.id.clone()),
    };
    assert_eq!(remote.commit(0, 1, &fenced, &[row("t", 1, "a")]), Ok(1));

    // Runner b takes the lease over; a, paused meanwhile, tries to write.
    remote
        .take_hold(HoldKind::Lease, &hold("b"), Some(&lease_a))
        .unwrap();
    let zombie = remote.commit(1, 1, &fenced, &[row("t", 2, "zombie")]);
    assert_eq!(zombie, Err(RemoteError::Fenced("run lease".to_owned())));
    // Even on a stale base, the lost lease is what it is told.
    let stale = remote.commit(0, 1, &fenced, &[row("t", 2, "zombie")]);
    assert_eq!(stale, Err(RemoteError::Fenced("run lease".to_owned())));
    // Large (staged) commits are fenced the same way.
    let big: Vec<RowChange> = (0..40).map(|i| row("t", i, &"z".repeat(100_000))).collect();
    let staged = remote.commit(1, 1, &fenced, &big);
    assert_eq!(staged, Err(RemoteError::Fenced("run lease".to_owned())));

    assert_eq!(remote.head(), Ok(1));
    let pulled = log(remote.pull(0).unwrap());
    assert_eq!(pulled.len(), 1);
    assert_eq!(pulled[0].changes, [row("t", 1, "a")]);

    // A released lock fences too.
    remote.release_hold(HoldKind::Lock, "l").unwrap();
    let lock_only = Fence {
        lock: Some("l".to_owned()),
        lease: None,
    };
    let unlocked = remote.commit(1, 1, &lock_only, &[row("t", 3, "c")]);
    assert_eq!(unlocked, Err(RemoteError::Fenced("state lock".to_owned())));

    // b, the holder, writes.
    let b = Fence {
        lock: None,
        lease: Some("b".to_owned()),
    };
    assert_eq!(remote.commit(1, 1, &b, &[row("t", 4, "b")]), Ok(2));
}

#[test]
fn a_six_megabyte_commit_is_staged_and_round_trips() {
    let emulator = Emulator::start();
    let remote = remote(&emulator, "prod");
    remote
        .commit(0, 1, &Fence::default(), &[row("t", 0, "small")])
        .unwrap();
    // 60 rows of 100 KB, one of them alone larger than a chunk; non-ASCII
    // text so that chunks are cut between characters, not inside one.
    let mut rows: Vec<RowChange> = (1..60)
        .map(|i| row("catalog", i, &"ä€x".repeat(100_000 / 6)))
        .collect();
    rows.push(row("captures", 60, &"é".repeat(350_000)));
    let size = serde_json::to_string(&rows).unwrap().len();
    assert!(size > 6_000_000, "{size}");

    let started = Instant::now();
    assert_eq!(remote.commit(1, 1, &Fence::default(), &rows), Ok(2));
    let commit_took = started.elapsed();
    let started = Instant::now();
    let pulled = log(remote.pull(1).unwrap());
    eprintln!(
        "a {size}-byte staged commit: {commit_took:?}; its pull: {:?}",
        started.elapsed()
    );
    assert_eq!(
        pulled,
        [Commit {
            rev: 2,
            changes: rows
        }]
    );
    remote
        .commit(2, 1, &Fence::default(), &[row("t", 61, "after")])
        .unwrap();
    assert_eq!(log(remote.pull(0).unwrap()).len(), 3);

    // Published chunks lost their expiry; the TTL only removes orphans.
    let (aws, rt) = client(&emulator);
    let staged: Vec<_> = rt.block_on(async {
        aws.query()
            .table_name(TABLE)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S("ws#prod#stage".into()))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .unwrap()
    });
    assert!(staged.len() > 12, "{}", staged.len());
    assert!(staged.iter().all(|i| !i.contains_key("expires_at")));
}

#[test]
fn holds_refuse_stale_takes_and_renewals_and_epochs_rise() {
    let emulator = Emulator::start();
    let remote = remote(&emulator, "prod");
    assert_eq!(remote.hold(HoldKind::Lease), Ok(None));

    let a = remote.take_hold(HoldKind::Lease, &hold("a"), None).unwrap();
    assert_eq!(a.epoch, 1);
    assert_eq!(remote.hold(HoldKind::Lease), Ok(Some(a.clone())));
    // Only one take without a predecessor wins.
    assert!(matches!(
        remote.take_hold(HoldKind::Lease, &hold("x"), None),
        Err(RemoteError::Conflict { .. })
    ));
    assert!(remote
        .renew_hold(HoldKind::Lease, "a", "2026-12-01T10:01:00+00:00")
        .unwrap());
    let renewed = remote.hold(HoldKind::Lease).unwrap().unwrap();
    assert_eq!(renewed.expires, "2026-12-01T10:01:00+00:00");

    // A take judged on the hold before its renewal is refused: its holder lives.
    assert!(matches!(
        remote.take_hold(HoldKind::Lease, &hold("b"), Some(&a)),
        Err(RemoteError::Conflict { .. })
    ));
    let b = remote
        .take_hold(HoldKind::Lease, &hold("b"), Some(&renewed))
        .unwrap();
    assert_eq!(b.epoch, 2);
    // a is late: its takeover of what it saw, and its renewal, both fail.
    assert!(matches!(
        remote.take_hold(HoldKind::Lease, &hold("c"), Some(&renewed)),
        Err(RemoteError::Conflict { .. })
    ));
    assert_eq!(remote.renew_hold(HoldKind::Lease, "a", "later"), Ok(false));
    // a's release does not remove b's lease.
    remote.release_hold(HoldKind::Lease, "a").unwrap();
    assert_eq!(
        remote.hold(HoldKind::Lease).unwrap().map(|h| h.id),
        Some("b".into())
    );

    // Epochs keep rising across a release.
    remote.release_hold(HoldKind::Lease, "b").unwrap();
    assert_eq!(remote.hold(HoldKind::Lease), Ok(None));
    let d = remote.take_hold(HoldKind::Lease, &hold("d"), None).unwrap();
    assert_eq!(d.epoch, 3);
    // The lock counts on its own.
    let lock = remote.take_hold(HoldKind::Lock, &hold("l"), None).unwrap();
    assert_eq!(lock.epoch, 1);
}

#[test]
fn pull_pages_through_hundreds_of_commits() {
    let emulator = Emulator::start();
    let remote = remote(&emulator, "prod");
    // 300 commits of ~10 KB: ~3 MB of log, so several 1 MB query pages.
    let payload = "p".repeat(10_000);
    let lease = remote.take_hold(HoldKind::Lease, &hold("a"), None).unwrap();
    let fence = Fence {
        lock: None,
        lease: Some(lease.id),
    };
    let started = Instant::now();
    for rev in 0..300 {
        let changes = [row("t", rev, &payload)];
        remote.commit(rev, 1, &fence, &changes).unwrap();
    }
    eprintln!(
        "300 fenced commits of 10 KB: {:?} each",
        started.elapsed() / 300
    );
    let started = Instant::now();
    let pulled = log(remote.pull(0).unwrap());
    eprintln!("a pull of 300 commits (~3 MB): {:?}", started.elapsed());
    let revs: Vec<u64> = pulled.iter().map(|c| c.rev).collect();
    assert_eq!(revs, (1..=300).collect::<Vec<_>>());
    assert!(pulled
        .iter()
        .all(|c| c.changes[0].key == json!([c.rev - 1])));
    assert_eq!(log(remote.pull(250).unwrap()).len(), 50);
}

#[test]
fn a_failed_call_names_table_region_workspace_and_action_but_no_secret() {
    let emulator = Emulator::start();
    let remote = remote(&emulator, "prod");
    drop(emulator);
    let Err(RemoteError::Failed(why)) = remote.head() else {
        panic!("a call to a stopped emulator succeeded");
    };
    assert!(
        why.starts_with(
            "dynamodb:GetItem failed on dynamodb table lifeboat-state (us-east-1), workspace prod"
        ),
        "{why}"
    );
    assert!(
        !why.contains(SECRET_ACCESS_KEY) && !why.contains(ACCESS_KEY_ID),
        "{why}"
    );
    let Err(RemoteError::Failed(why)) = remote.commit(0, 1, &Fence::default(), &[]) else {
        panic!("a commit to a stopped emulator succeeded");
    };
    assert!(
        why.starts_with("dynamodb:TransactWriteItems failed on"),
        "{why}"
    );
}

/// Every item of a partition of the state table, by sort key.
fn partition(emulator: &Emulator, pk: &str) -> Vec<String> {
    let (aws, rt) = client(emulator);
    let items: Vec<_> = rt.block_on(async {
        aws.query()
            .table_name(TABLE)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .unwrap()
    });
    items
        .iter()
        .map(|i| i["sk"].as_s().unwrap().clone())
        .collect()
}

fn full(pull: Pull) -> (u64, Vec<RowChange>) {
    match pull {
        Pull::Full { rev, mut rows } => {
            rows.sort_by_key(|r| (r.table.clone(), r.key.to_string()));
            (rev, rows)
        }
        log => panic!("expected a snapshot, got {log:?}"),
    }
}

#[test]
fn compaction_folds_the_log_into_a_snapshot_that_older_readers_get() {
    let emulator = Emulator::start();
    let remote = remote(&emulator, "prod");
    let f = Fence::default();
    let gone = |id: u64| RowChange {
        table: "t".to_owned(),
        key: json!([id]),
        row: None,
    };
    assert_eq!(remote.compact(), Ok(None), "nothing to fold yet");
    remote
        .commit(0, 1, &f, &[row("t", 1, "a"), row("t", 2, "b")])
        .unwrap();
    remote
        .commit(1, 1, &f, &[row("t", 1, "a2"), gone(2)])
        .unwrap();
    let big: Vec<RowChange> = (0..40).map(|i| row("u", i, &"u".repeat(100_000))).collect();
    remote.commit(2, 1, &f, &big).unwrap();
    remote.commit(3, 1, &f, &[row("t", 3, "c")]).unwrap();
    assert!(!partition(&emulator, "ws#prod#stage").is_empty());

    assert_eq!(remote.compact(), Ok(Some(4)));
    assert_eq!(remote.compact(), Ok(None), "nothing new");
    let mut want = vec![row("t", 1, "a2"), row("t", 3, "c")];
    want.extend(big);
    want.sort_by_key(|r| (r.table.clone(), r.key.to_string()));
    assert_eq!(full(remote.pull(0).unwrap()), (4, want.clone()));
    assert_eq!(full(remote.pull(2).unwrap()), (4, want.clone()));
    assert_eq!(log(remote.pull(4).unwrap()), []);
    assert_eq!(
        log(remote.pull(3).unwrap()),
        [Commit {
            rev: 4,
            changes: vec![row("t", 3, "c")]
        }]
    );
    // What it covers is gone but its last commit: the log, the staged chunks.
    assert_eq!(
        partition(&emulator, "ws#prod#log"),
        [format!("{:020}#0000", 4)]
    );
    assert_eq!(partition(&emulator, "ws#prod#stage"), Vec::<String>::new());

    // Commits go on; a reader at the snapshot gets the log after it, one
    // from before it the snapshot with that log folded in.
    remote.commit(4, 1, &f, &[row("t", 5, "e")]).unwrap();
    remote.commit(5, 1, &f, &[gone(3)]).unwrap();
    let after: Vec<u64> = log(remote.pull(4).unwrap()).iter().map(|c| c.rev).collect();
    assert_eq!(after, [5, 6]);
    want.retain(|r| r.key != json!([3]) || r.table != "t");
    want.push(row("t", 5, "e"));
    want.sort_by_key(|r| (r.table.clone(), r.key.to_string()));
    assert_eq!(full(remote.pull(1).unwrap()), (6, want.clone()));

    // A second compaction starts from the first snapshot and replaces it.
    assert_eq!(remote.compact(), Ok(Some(6)));
    assert_eq!(full(remote.pull(0).unwrap()), (6, want));
    let snapshots = partition(&emulator, "ws#prod#snap");
    assert!(!snapshots.is_empty());
    assert!(snapshots
        .iter()
        .all(|sk| sk.starts_with(&format!("{:020}#", 6))));
    assert_eq!(remote.head(), Ok(6));
}
