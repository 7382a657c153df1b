//! Compaction: the log folded into a snapshot of the live rows, so that a
//! new reader does not replay a workspace's whole history and the table
//! does not grow with every commit ever made.
//!
//! Steps, each safe to stop after: (1) write the snapshot's chunks under
//! `ws#<W>#snap`, `<rev>#<chunk>` (invisible: the head does not name it
//! yet); (2) publish it by setting the head's `snapshot` (conditioned on
//! it being newer than the one there); (3) delete what it covers but its
//! last commit: staged chunks of those commits, then their log items, then
//! older snapshots.
//! A reader that finds a hole in the log reads the snapshot instead
//! ([`Pull::Full`]). A compaction that stopped before (3) leaves garbage
//! the next one removes; one that lost the race at (2) deletes its chunks.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use lifeboat_engine::state::remote::{Pull, RemoteError, RowChange};

use super::log::{encode, get_s, log_sk, n, read_head, s};
use super::pull::{fold, pull, query};
use super::Inner;

/// BatchWriteItem's limit.
const BATCH: usize = 25;

/// Folds the log up to the current head into a snapshot and removes what
/// it covers. Returns the snapshot's revision, or `None` when there was
/// nothing to fold (or another compaction got further meanwhile).
pub(super) async fn compact(inner: &Inner) -> Result<Option<u64>, RemoteError> {
    let place = &inner.place;
    let (rev, rows) = live_rows(inner).await?;
    if rev == 0 || read_head(inner).await?.snapshot >= rev {
        return Ok(None);
    }
    let chunks = encode(&rows).map_err(|e| place.broken(e))?;
    let count = chunks.len();
    for (i, text) in chunks.into_iter().enumerate() {
        inner
            .client
            .put_item()
            .table_name(&place.table)
            .item("pk", place.snap_pk())
            .item("sk", s(log_sk(rev, i)))
            .item("changes", s(text))
            .item("chunks", n(count))
            .send()
            .await
            .map_err(|e| place.fail("PutItem", &e))?;
    }
    let published = inner
        .client
        .update_item()
        .table_name(&place.table)
        .key("pk", place.ws_pk())
        .key("sk", s("head"))
        .update_expression("SET #snapshot = :rev")
        .condition_expression(
            "#rev >= :rev AND (attribute_not_exists(#snapshot) OR #snapshot < :rev)",
        )
        .expression_attribute_names("#rev", "rev")
        .expression_attribute_names("#snapshot", "snapshot")
        .expression_attribute_values(":rev", n(rev))
        .send()
        .await;
    if let Err(e) = published {
        let lost = e
            .as_service_error()
            .is_some_and(|s| s.is_conditional_check_failed_exception());
        if !lost {
            return Err(place.fail("UpdateItem", &e));
        }
        // Another compaction of the same revision published first: its
        // chunks are these very keys (same revision, same rows), and
        // deleting them would leave the head naming a snapshot that is gone.
        if read_head(inner).await?.snapshot == rev {
            return Ok(None);
        }
        let ours: Vec<_> = (0..count)
            .map(|i| key(place.snap_pk(), log_sk(rev, i)))
            .collect();
        delete(inner, ours).await?;
        return Ok(None);
    }
    remove_covered(inner, rev).await?;
    Ok(Some(rev))
}

/// The workspace's live rows at its latest revision.
async fn live_rows(inner: &Inner) -> Result<(u64, Vec<RowChange>), RemoteError> {
    Ok(match pull(inner, 0).await? {
        Pull::Full { rev, rows } => (rev, rows),
        Pull::Log(commits) => {
            let rev = commits.last().map_or(0, |c| c.rev);
            (rev, fold(Vec::new(), commits))
        }
    })
}

fn key(pk: AttributeValue, sk: String) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_owned(), pk), ("sk".to_owned(), s(sk))])
}

/// Deletes the log before `rev` (staged chunks first, so that no log item
/// is gone while its chunks stay) and every snapshot older than `rev`.
/// Commit `rev` itself stays: a reader from before it then finds the log
/// starting after a hole, which is how it knows to read the snapshot,
/// without a read of the head on every pull.
async fn remove_covered(inner: &Inner, rev: u64) -> Result<(), RemoteError> {
    let place = &inner.place;
    let upto = format!("{:020}#9999", rev - 1);
    let log = query(inner, place.log_pk(), "#sk <= :sk", upto).await?;
    let mut staged = Vec::new();
    for item in &log {
        if let Some(id) = get_s(item, "staged") {
            let chunks = query(
                inner,
                place.stage_pk(),
                "begins_with(#sk, :sk)",
                format!("{id}#"),
            )
            .await?;
            staged.extend(
                chunks
                    .iter()
                    .filter_map(|c| get_s(c, "sk").map(str::to_owned)),
            );
        }
    }
    let staged = staged
        .into_iter()
        .map(|sk| key(place.stage_pk(), sk))
        .collect();
    delete(inner, staged).await?;
    let covered = log
        .iter()
        .filter_map(|it| get_s(it, "sk"))
        .map(|sk| key(place.log_pk(), sk.to_owned()))
        .collect();
    delete(inner, covered).await?;
    let older = query(inner, place.snap_pk(), "#sk < :sk", format!("{rev:020}#")).await?;
    let older = older
        .iter()
        .filter_map(|it| get_s(it, "sk"))
        .map(|sk| key(place.snap_pk(), sk.to_owned()))
        .collect();
    delete(inner, older).await
}

/// BatchWriteItem deletes, 25 at a time, until none is left unprocessed.
async fn delete(
    inner: &Inner,
    keys: Vec<HashMap<String, AttributeValue>>,
) -> Result<(), RemoteError> {
    let place = &inner.place;
    let mut requests = Vec::new();
    for k in keys {
        let delete = DeleteRequest::builder()
            .set_key(Some(k))
            .build()
            .map_err(|e| place.broken(e))?;
        requests.push(WriteRequest::builder().delete_request(delete).build());
    }
    let mut pause = Duration::from_millis(50);
    while !requests.is_empty() {
        let rest = requests.split_off(requests.len().min(BATCH));
        let batch = std::mem::replace(&mut requests, rest);
        let out = inner
            .client
            .batch_write_item()
            .request_items(&place.table, batch)
            .send()
            .await
            .map_err(|e| place.fail("BatchWriteItem", &e))?;
        let unprocessed = out
            .unprocessed_items()
            .and_then(|u| u.get(&place.table))
            .cloned()
            .unwrap_or_default();
        if !unprocessed.is_empty() {
            // Throttled: back off, then send them again first.
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
            requests.splice(0..0, unprocessed);
        }
    }
    Ok(())
}
