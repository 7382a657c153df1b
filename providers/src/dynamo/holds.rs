//! The state lock and the run lease: one item each, conditional writes.
//!
//! An item outlives its release (the holder's attributes go, `epoch`
//! stays), so the epoch of the next take counts on from the last one.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use lifeboat_engine::state::remote::{HoldKind, HoldRecord, RemoteError};

use super::log::{get_n, get_s};
use super::Inner;

pub(super) fn hold_sk(kind: HoldKind) -> &'static str {
    match kind {
        HoldKind::Lock => "hold#lock",
        HoldKind::Lease => "hold#lease",
    }
}

/// The attributes a hold item carries while held (all but `epoch`).
const HELD: [&str; 6] = [
    "id",
    "holder",
    "operation",
    "acquired",
    "expires",
    "holder_id",
];

/// A hold item: the current hold, if any, and the epoch of the last take.
pub(super) struct Current {
    pub record: Option<HoldRecord>,
    pub epoch: u64,
}

fn key(inner: &Inner, kind: HoldKind) -> [(&'static str, AttributeValue); 2] {
    [
        ("pk", inner.place.ws_pk()),
        ("sk", AttributeValue::S(hold_sk(kind).to_owned())),
    ]
}

pub(super) async fn read(inner: &Inner, kind: HoldKind) -> Result<Current, RemoteError> {
    let place = &inner.place;
    let [(pk, pkv), (sk, skv)] = key(inner, kind);
    let out = inner
        .client
        .get_item()
        .table_name(&place.table)
        .key(pk, pkv)
        .key(sk, skv)
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| place.fail("GetItem", &e))?;
    let Some(item) = out.item() else {
        return Ok(Current {
            record: None,
            epoch: 0,
        });
    };
    Ok(Current {
        record: decode(item),
        epoch: get_n(item, "epoch").unwrap_or(0),
    })
}

fn decode(item: &HashMap<String, AttributeValue>) -> Option<HoldRecord> {
    let text = |name: &str| get_s(item, name).unwrap_or_default().to_owned();
    Some(HoldRecord {
        id: get_s(item, "id")?.to_owned(),
        holder: text("holder"),
        operation: text("operation"),
        acquired: text("acquired"),
        expires: text("expires"),
        holder_id: get_s(item, "holder_id").map(str::to_owned),
        epoch: get_n(item, "epoch").unwrap_or(0),
    })
}

/// Writes `new` over the hold `replacing` (none: no current hold) with the
/// next epoch. The epoch read is part of the condition: between our read
/// and our write another process may have taken and released the hold,
/// and two takes must never share an epoch. A refusal is a `Conflict`
/// whose `base` is the epoch this take counted on and `found` the
/// current one.
pub(super) async fn take(
    inner: &Inner,
    kind: HoldKind,
    new: HoldRecord,
    replacing: Option<&HoldRecord>,
) -> Result<HoldRecord, RemoteError> {
    let place = &inner.place;
    let current = read(inner, kind).await?;
    let record = HoldRecord {
        epoch: current.epoch + 1,
        ..new
    };
    let [(pk, pkv), (sk, skv)] = key(inner, kind);
    let text = |v: &str| AttributeValue::S(v.to_owned());
    let mut put = inner
        .client
        .put_item()
        .table_name(&place.table)
        .item(pk, pkv)
        .item(sk, skv)
        .item("id", text(&record.id))
        .item("holder", text(&record.holder))
        .item("operation", text(&record.operation))
        .item("acquired", text(&record.acquired))
        .item("expires", text(&record.expires))
        .item("epoch", AttributeValue::N(record.epoch.to_string()))
        .expression_attribute_names("#id", "id")
        .expression_attribute_names("#epoch", "epoch");
    if let Some(h) = &record.holder_id {
        put = put.item("holder_id", text(h));
    }
    let held = match replacing {
        None => "attribute_not_exists(#id)".to_owned(),
        // Exactly the hold the taker judged: a renewal since (a later
        // expiry) means its holder lives, and the take is refused.
        Some(old) => {
            put = put
                .expression_attribute_values(":old", text(&old.id))
                .expression_attribute_values(":seen", text(&old.expires))
                .expression_attribute_names("#expires", "expires");
            "#id = :old AND #expires = :seen".to_owned()
        }
    };
    let counted = if current.epoch == 0 {
        "attribute_not_exists(#epoch)".to_owned()
    } else {
        put =
            put.expression_attribute_values(":epoch", AttributeValue::N(current.epoch.to_string()));
        "#epoch = :epoch".to_owned()
    };
    match put
        .condition_expression(format!("{held} AND {counted}"))
        .send()
        .await
    {
        Ok(_) => Ok(record),
        Err(e) if is_condition_failed(&e) => Err(RemoteError::Conflict {
            base: current.epoch,
            found: read(inner, kind).await?.epoch,
        }),
        Err(e) => Err(place.fail("PutItem", &e)),
    }
}

fn is_condition_failed<E, R>(err: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

pub(super) async fn renew(
    inner: &Inner,
    kind: HoldKind,
    id: &str,
    expires: &str,
) -> Result<bool, RemoteError> {
    let place = &inner.place;
    let [(pk, pkv), (sk, skv)] = key(inner, kind);
    let sent = inner
        .client
        .update_item()
        .table_name(&place.table)
        .key(pk, pkv)
        .key(sk, skv)
        .update_expression("SET #expires = :expires")
        .condition_expression("#id = :id")
        .expression_attribute_names("#id", "id")
        .expression_attribute_names("#expires", "expires")
        .expression_attribute_values(":id", AttributeValue::S(id.to_owned()))
        .expression_attribute_values(":expires", AttributeValue::S(expires.to_owned()))
        .send()
        .await;
    match sent {
        Ok(_) => Ok(true),
        Err(e) if is_condition_failed(&e) => Ok(false),
        Err(e) => Err(place.fail("UpdateItem", &e)),
    }
}

/// Removes the holder's attributes if `id` still holds; keeps the epoch.
pub(super) async fn release(inner: &Inner, kind: HoldKind, id: &str) -> Result<(), RemoteError> {
    let place = &inner.place;
    let [(pk, pkv), (sk, skv)] = key(inner, kind);
    let mut update = inner
        .client
        .update_item()
        .table_name(&place.table)
        .key(pk, pkv)
        .key(sk, skv)
        .condition_expression("#a0 = :id")
        .expression_attribute_values(":id", AttributeValue::S(id.to_owned()));
    let mut names = Vec::new();
    for (i, attr) in HELD.iter().enumerate() {
        update = update.expression_attribute_names(format!("#a{i}"), *attr);
        names.push(format!("#a{i}"));
    }
    let sent = update
        .update_expression(format!("REMOVE {}", names.join(", ")))
        .send()
        .await;
    match sent {
        Ok(_) => Ok(()),
        // Someone else holds it now (or nobody): nothing of ours to remove.
        Err(e) if is_condition_failed(&e) => Ok(()),
        Err(e) => Err(place.fail("UpdateItem", &e)),
    }
}
