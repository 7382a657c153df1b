//! The head and the log: commits as transactions, pulls as queries.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use lifeboat_engine::state::remote::{Fence, HoldKind, RemoteError, RowChange};

use super::holds::hold_sk;
use super::{Inner, Place};

/// The most text one log or staged item carries. DynamoDB's item limit is
/// 400 KB; the rest is headroom for keys and attribute names.
pub(super) const CHUNK_BYTES: usize = 300_000;

/// The most chunks a commit puts into its own transaction. A transaction
/// takes 100 items and 4 MB; 12 chunks of 300 KB, the head and two checks
/// stay under both.
const MAX_INLINE_CHUNKS: usize = 12;

/// How long a staged chunk lives unless a commit publishes it.
const STAGE_TTL_SECONDS: i64 = 7 * 24 * 3600;

/// How often a transaction cancelled for a passing reason is tried again
/// before failing: another transaction or write in flight on one of its
/// items (`TransactionConflict`: a lease renewal racing the commit's check
/// of the lease), or throttling. The SDK does not retry a cancellation.
const CONFLICT_ATTEMPTS: u32 = 5;

/// A commit's rows as the table keeps them: the JSON array, cut into
/// pieces of at most [`CHUNK_BYTES`] at character boundaries.
pub(super) fn encode(changes: &[RowChange]) -> Result<Vec<String>, serde_json::Error> {
    let text = serde_json::to_string(changes)?;
    let mut chunks = Vec::new();
    let mut rest = text.as_str();
    while rest.len() > CHUNK_BYTES {
        let mut cut = CHUNK_BYTES;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        chunks.push(rest[..cut].to_owned());
        rest = &rest[cut..];
    }
    chunks.push(rest.to_owned());
    Ok(chunks)
}

/// The sort key of chunk `chunk` of revision `rev` in the log partition.
pub(super) fn log_sk(rev: u64, chunk: usize) -> String {
    format!("{rev:020}#{chunk:04}")
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

pub(super) fn get_n<T: std::str::FromStr>(
    item: &HashMap<String, AttributeValue>,
    name: &str,
) -> Option<T> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

/// What the head item says (zeros when the workspace is empty).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Head {
    pub rev: u64,
    pub schema: i64,
    /// The revision of the published snapshot (0: none); the log before
    /// it may be gone (see `compact`).
    pub snapshot: u64,
}

pub(super) async fn read_head(inner: &Inner) -> Result<Head, RemoteError> {
    let place = &inner.place;
    let out = inner
        .client
        .get_item()
        .table_name(&place.table)
        .key("pk", place.ws_pk())
        .key("sk", s("head"))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| place.fail("GetItem", &e))?;
    let Some(item) = out.item() else {
        return Ok(Head::default());
    };
    Ok(Head {
        rev: get_n(item, "rev").ok_or_else(|| place.broken("the head item has no revision"))?,
        schema: get_n(item, "schema").unwrap_or(0),
        snapshot: get_n(item, "snapshot").unwrap_or(0),
    })
}

/// Appends `chunks` as revision `base + 1` (see the module doc of
/// `dynamo` for the steps of a large one).
pub(super) async fn commit(
    inner: &Inner,
    base: u64,
    schema: i64,
    fence: &Fence,
    chunks: Vec<String>,
) -> Result<u64, RemoteError> {
    let place = &inner.place;
    let rev = base + 1;
    let count = chunks.len();
    let staged = if count > MAX_INLINE_CHUNKS {
        Some(stage(inner, &chunks).await?)
    } else {
        None
    };

    let mut items = vec![head_update(place, base, schema)?];
    let checks = fence_checks(place, fence)?;
    let checked: Vec<(HoldKind, String)> =
        checks.iter().map(|(k, id, _)| (*k, id.clone())).collect();
    items.extend(checks.into_iter().map(|(_, _, item)| item));
    match &staged {
        Some(id) => items.push(log_put(
            place,
            log_sk(rev, 0),
            [("staged", s(id)), ("chunks", n(count))],
        )?),
        None => {
            for (i, text) in chunks.into_iter().enumerate() {
                items.push(log_put(
                    place,
                    log_sk(rev, i),
                    [("changes", s(text)), ("chunks", n(count))],
                )?);
            }
        }
    }

    let mut attempt = 0;
    loop {
        attempt += 1;
        let sent = inner
            .client
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .send()
            .await;
        let err = match sent {
            Ok(_) => break,
            Err(e) => e,
        };
        match cancelled(&err) {
            Some(Cancelled::Collided) if attempt < CONFLICT_ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            Some(Cancelled::Reasons(codes)) => {
                return Err(refusal(inner, base, &checked, &codes).await)
            }
            _ => return Err(place.fail("TransactWriteItems", &err)),
        }
    }
    if let Some(id) = staged {
        // A failure here is reported: the caller's local commit is then
        // rolled back, and its next pull reads this commit from the table
        // and settles its chunks (an error rather than a quiet success, so
        // that the chunks are never left to their expiry unread).
        settle(inner, &id, count).await?;
    }
    Ok(rev)
}

fn head_update(place: &Place, base: u64, schema: i64) -> Result<TransactWriteItem, RemoteError> {
    let condition = if base == 0 {
        "attribute_not_exists(#rev)"
    } else {
        "#rev = :base"
    };
    let mut update = Update::builder()
        .table_name(&place.table)
        .key("pk", place.ws_pk())
        .key("sk", s("head"))
        .update_expression("SET #rev = :next, #schema = :schema, #updated = :now")
        .condition_expression(condition)
        .expression_attribute_names("#rev", "rev")
        .expression_attribute_names("#schema", "schema")
        .expression_attribute_names("#updated", "updated")
        .expression_attribute_values(":next", n(base + 1))
        .expression_attribute_values(":schema", n(schema))
        .expression_attribute_values(":now", s(chrono::Utc::now().to_rfc3339()));
    if base != 0 {
        update = update.expression_attribute_values(":base", n(base));
    }
    let update = update.build().map_err(|e| place.broken(e))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// One `ConditionCheck` per hold the writer names, in the order lock, lease.
fn fence_checks(
    place: &Place,
    fence: &Fence,
) -> Result<Vec<(HoldKind, String, TransactWriteItem)>, RemoteError> {
    let named = [
        (HoldKind::Lock, &fence.lock),
        (HoldKind::Lease, &fence.lease),
    ];
    let mut checks = Vec::new();
    for (kind, id) in named {
        let Some(id) = id else { continue };
        let check = ConditionCheck::builder()
            .table_name(&place.table)
            .key("pk", place.ws_pk())
            .key("sk", s(hold_sk(kind)))
            .condition_expression("#id = :id")
            .expression_attribute_names("#id", "id")
            .expression_attribute_values(":id", s(id))
            .build()
            .map_err(|e| place.broken(e))?;
        let item = TransactWriteItem::builder().condition_check(check).build();
        checks.push((kind, id.clone(), item));
    }
    Ok(checks)
}

fn log_put<const K: usize>(
    place: &Place,
    sk: String,
    attrs: [(&str, AttributeValue); K],
) -> Result<TransactWriteItem, RemoteError> {
    let mut put = Put::builder()
        .table_name(&place.table)
        .item("pk", place.log_pk())
        .item("sk", s(sk));
    for (name, value) in attrs {
        put = put.item(name, value);
    }
    let put = put.build().map_err(|e| place.broken(e))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// Writes a large commit's chunks where no reader looks, with an expiry;
/// returns the id the publishing log item names.
async fn stage(inner: &Inner, chunks: &[String]) -> Result<String, RemoteError> {
    let place = &inner.place;
    let id = lifeboat_engine::state::new_id();
    let expires = chrono::Utc::now().timestamp() + STAGE_TTL_SECONDS;
    for (i, text) in chunks.iter().enumerate() {
        inner
            .client
            .put_item()
            .table_name(&place.table)
            .item("pk", place.stage_pk())
            .item("sk", s(format!("{id}#{i:04}")))
            .item("changes", s(text.as_str()))
            .item("expires_at", n(expires))
            .send()
            .await
            .map_err(|e| place.fail("PutItem", &e))?;
    }
    Ok(id)
}

/// Removes the expiry of a published commit's staged chunks. A commit that
/// stopped between publishing and this is settled by the next pull that
/// reads it (the expiry is a day away).
pub(super) async fn settle(inner: &Inner, id: &str, count: usize) -> Result<(), RemoteError> {
    let place = &inner.place;
    for i in 0..count {
        inner
            .client
            .update_item()
            .table_name(&place.table)
            .key("pk", place.stage_pk())
            .key("sk", s(format!("{id}#{i:04}")))
            .update_expression("REMOVE expires_at")
            .send()
            .await
            .map_err(|e| place.fail("UpdateItem", &e))?;
    }
    Ok(())
}

enum Cancelled {
    /// Nothing refused it, something was busy: try again.
    Collided,
    /// The codes, one per item in request order (`None` for an item that
    /// passed); empty when the service gave none.
    Reasons(Vec<Option<String>>),
}

fn cancelled(
    err: &aws_sdk_dynamodb::error::SdkError<
        TransactWriteItemsError,
        aws_sdk_dynamodb::config::http::HttpResponse,
    >,
) -> Option<Cancelled> {
    let TransactWriteItemsError::TransactionCanceledException(e) = err.as_service_error()? else {
        return None;
    };
    let codes: Vec<Option<String>> = e
        .cancellation_reasons()
        .iter()
        .map(|r| r.code().filter(|c| *c != "None").map(str::to_owned))
        .collect();
    let passing = [
        "TransactionConflict",
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
    ];
    let failures: Vec<&str> = codes.iter().flatten().map(String::as_str).collect();
    if !failures.is_empty() && failures.iter().all(|c| passing.contains(c)) {
        return Some(Cancelled::Collided);
    }
    Some(Cancelled::Reasons(codes))
}

/// Why a commit was refused, from the cancellation reasons (item 0 is the
/// head, then the checks in `checked` order) or, when the service gave
/// none, from the head and holds read again. A lost hold wins over a moved
/// head: pulling and retrying cannot help a fenced writer.
async fn refusal(
    inner: &Inner,
    base: u64,
    checked: &[(HoldKind, String)],
    codes: &[Option<String>],
) -> RemoteError {
    let failed = |i: usize| {
        codes
            .get(i)
            .is_some_and(|c| c.as_deref() == Some("ConditionalCheckFailed"))
    };
    let lost = if codes.is_empty() {
        lost_hold(inner, checked).await
    } else {
        Ok(checked
            .iter()
            .enumerate()
            .find(|(i, _)| failed(i + 1))
            .map(|(_, (k, _))| *k))
    };
    match lost {
        Err(e) => return e,
        Ok(Some(kind)) => return RemoteError::Fenced(hold_name(kind).to_owned()),
        Ok(None) => {}
    }
    match read_head(inner).await {
        Ok(head) if head.rev != base || failed(0) => RemoteError::Conflict {
            base,
            found: head.rev,
        },
        Ok(_) => inner.place.broken(format!(
            "TransactWriteItems was cancelled for another reason: {codes:?}"
        )),
        Err(e) => e,
    }
}

/// Which named hold is no longer the writer's, by reading each again.
async fn lost_hold(
    inner: &Inner,
    checked: &[(HoldKind, String)],
) -> Result<Option<HoldKind>, RemoteError> {
    for (kind, id) in checked {
        let current = super::holds::read(inner, *kind).await?.record;
        if current.map(|h| h.id).as_deref() != Some(id.as_str()) {
            return Ok(Some(*kind));
        }
    }
    Ok(None)
}

pub(super) fn hold_name(kind: HoldKind) -> &'static str {
    match kind {
        HoldKind::Lock => "state lock",
        HoldKind::Lease => "run lease",
    }
}
