//! Making and checking the state table (`lifeboat state init`).
//!
//! A table Lifeboat creates gets everything a state store needs: on-demand
//! billing (a runner's load is spiky and small), deletion protection (the
//! table is the only copy of the workspace), point-in-time recovery (the
//! way back from a bad apply or a wrong `state` command) and TTL on
//! `expires_at` (abandoned staged chunks). A table it finds is only
//! reported on unless the operator asks for repair: it may belong to an
//! account whose owners decide such things.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, PointInTimeRecoverySpecification,
    PointInTimeRecoveryStatus, ScalarAttributeType, TableDescription, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use lifeboat_engine::state::remote::RemoteError;

use super::Inner;

/// How long a new or updated table may take to become active.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(300);
/// AWS refuses to turn on point-in-time recovery for a minute or so after
/// the table was created (`ContinuousBackupsUnavailableException`).
const PITR_TIMEOUT: Duration = Duration::from_secs(180);
const POLL: Duration = Duration::from_secs(2);

/// The TTL attribute of staged chunks.
const TTL_ATTRIBUTE: &str = "expires_at";

/// What `init_table` did and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableReport {
    pub table: String,
    pub region: String,
    /// Created now (else it was there).
    pub created: bool,
    pub point_in_time_recovery: bool,
    pub deletion_protection: bool,
    /// TTL on `expires_at`, which removes abandoned staged chunks.
    pub ttl: bool,
    /// What is off and what was changed, one sentence each.
    pub messages: Vec<String>,
}

pub(super) async fn init(inner: &Inner, repair: bool) -> Result<TableReport, RemoteError> {
    let place = &inner.place;
    let mut report = TableReport {
        table: place.table.clone(),
        region: place.region.clone(),
        created: false,
        point_in_time_recovery: false,
        deletion_protection: false,
        ttl: false,
        messages: Vec::new(),
    };
    let table = match describe(inner).await? {
        Some(t) => t,
        None => {
            report.created = create(inner).await?;
            wait_active(inner).await?
        }
    };
    if let Some(problem) = key_schema_problem(table.key_schema(), table.attribute_definitions()) {
        return Err(place.broken(problem));
    }
    let fix = report.created || repair;

    report.deletion_protection = table.deletion_protection_enabled() == Some(true);
    if !report.deletion_protection && fix {
        inner
            .client
            .update_table()
            .table_name(&place.table)
            .deletion_protection_enabled(true)
            .send()
            .await
            .map_err(|e| place.fail("UpdateTable", &e))?;
        wait_active(inner).await?;
        report.deletion_protection = true;
        if !report.created {
            report
                .messages
                .push("deletion protection turned on".to_owned());
        }
    }

    report.point_in_time_recovery = pitr_on(inner).await?;
    if !report.point_in_time_recovery && fix {
        enable_pitr(inner).await?;
        report.point_in_time_recovery = true;
        if !report.created {
            report
                .messages
                .push("point-in-time recovery turned on".to_owned());
        }
    }

    report.ttl = ttl_on(inner).await?;
    if !report.ttl && fix {
        inner
            .client
            .update_time_to_live()
            .table_name(&place.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL_ATTRIBUTE)
                    .build()
                    .map_err(|e| place.broken(e))?,
            )
            .send()
            .await
            .map_err(|e| place.fail("UpdateTimeToLive", &e))?;
        report.ttl = true;
        if !report.created {
            report
                .messages
                .push(format!("TTL on {TTL_ATTRIBUTE} turned on"));
        }
    }

    let off = [
        (report.deletion_protection, "deletion protection is off: the table can be deleted by one call, and the workspace with it"),
        (report.point_in_time_recovery, "point-in-time recovery is off: the workspace cannot be restored to an earlier time"),
        (report.ttl, "TTL on expires_at is off: staged chunks of abandoned large commits stay in the table"),
    ];
    for (on, message) in off {
        if !on {
            report.messages.push(message.to_owned());
        }
    }
    Ok(report)
}

/// The table must exist, be active and have Lifeboat's keys.
/// Checks that the table exists, is active and has Lifeboat's key schema,
/// and says which table it is beyond its name: its ARN (account and
/// region) and when it was made. A table deleted and made again, restored
/// under the same name, or reached in another account or endpoint answers
/// otherwise. One DescribeTable, made when a workspace is opened; a missing
/// table says to run `lifeboat state init`.
pub(super) async fn incarnation(inner: &Inner) -> Result<String, RemoteError> {
    let place = &inner.place;
    let Some(table) = describe(inner).await? else {
        return Err(place.missing_table());
    };
    if let Some(problem) = key_schema_problem(table.key_schema(), table.attribute_definitions()) {
        return Err(place.broken(problem));
    }
    match table.table_status() {
        Some(TableStatus::Active | TableStatus::Updating) | None => {}
        Some(other) => {
            return Err(place.broken(format!("the table is {}, not ACTIVE", other.as_str())))
        }
    }
    Ok(format!(
        "{} made {}",
        table.table_arn().unwrap_or_default(),
        table
            .creation_date_time()
            .map(|t| t.to_string())
            .unwrap_or_default()
    ))
}

/// DescribeTable; `None` when the table does not exist.
async fn describe(inner: &Inner) -> Result<Option<TableDescription>, RemoteError> {
    let place = &inner.place;
    match inner
        .client
        .describe_table()
        .table_name(&place.table)
        .send()
        .await
    {
        Ok(out) => Ok(out.table().cloned()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(place.fail("DescribeTable", &e)),
    }
}

/// CreateTable; `false` when another process created it first.
async fn create(inner: &Inner) -> Result<bool, RemoteError> {
    let place = &inner.place;
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let sent = inner
        .client
        .create_table()
        .table_name(&place.table)
        .attribute_definitions(attr("pk").map_err(|e| place.broken(e))?)
        .attribute_definitions(attr("sk").map_err(|e| place.broken(e))?)
        .key_schema(key("pk", KeyType::Hash).map_err(|e| place.broken(e))?)
        .key_schema(key("sk", KeyType::Range).map_err(|e| place.broken(e))?)
        .billing_mode(BillingMode::PayPerRequest)
        .deletion_protection_enabled(true)
        .send()
        .await;
    match sent {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(place.fail("CreateTable", &e)),
    }
}

async fn wait_active(inner: &Inner) -> Result<TableDescription, RemoteError> {
    let place = &inner.place;
    let deadline = Instant::now() + ACTIVE_TIMEOUT;
    loop {
        if let Some(t) = describe(inner).await? {
            if t.table_status() == Some(&TableStatus::Active) {
                return Ok(t);
            }
        }
        if Instant::now() > deadline {
            return Err(place.broken(format!(
                "the table did not become ACTIVE within {} s",
                ACTIVE_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn pitr_on(inner: &Inner) -> Result<bool, RemoteError> {
    let place = &inner.place;
    let out = inner
        .client
        .describe_continuous_backups()
        .table_name(&place.table)
        .send()
        .await
        .map_err(|e| place.fail("DescribeContinuousBackups", &e))?;
    Ok(out
        .continuous_backups_description()
        .and_then(|d| d.point_in_time_recovery_description())
        .and_then(|p| p.point_in_time_recovery_status())
        == Some(&PointInTimeRecoveryStatus::Enabled))
}

async fn enable_pitr(inner: &Inner) -> Result<(), RemoteError> {
    let place = &inner.place;
    let spec = PointInTimeRecoverySpecification::builder()
        .point_in_time_recovery_enabled(true)
        .build()
        .map_err(|e| place.broken(e))?;
    let deadline = Instant::now() + PITR_TIMEOUT;
    loop {
        let sent = inner
            .client
            .update_continuous_backups()
            .table_name(&place.table)
            .point_in_time_recovery_specification(spec.clone())
            .send()
            .await;
        match sent {
            Ok(_) => return Ok(()),
            Err(e)
                if Instant::now() < deadline
                    && e.as_service_error()
                        .is_some_and(|s| s.is_continuous_backups_unavailable_exception()) =>
            {
                tokio::time::sleep(POLL).await;
            }
            Err(e) => return Err(place.fail("UpdateContinuousBackups", &e)),
        }
    }
}

async fn ttl_on(inner: &Inner) -> Result<bool, RemoteError> {
    let place = &inner.place;
    let out = inner
        .client
        .describe_time_to_live()
        .table_name(&place.table)
        .send()
        .await
        .map_err(|e| place.fail("DescribeTimeToLive", &e))?;
    Ok(out.time_to_live_description().is_some_and(|d| {
        matches!(
            d.time_to_live_status(),
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ) && d.attribute_name() == Some(TTL_ATTRIBUTE)
    }))
}

/// What is wrong with a table's keys for Lifeboat (`pk` S HASH, `sk` S
/// RANGE), if anything.
fn key_schema_problem(keys: &[KeySchemaElement], attrs: &[AttributeDefinition]) -> Option<String> {
    let kind_of = |name: &str| {
        attrs
            .iter()
            .find(|a| a.attribute_name() == name)
            .map(|a| a.attribute_type().clone())
    };
    let wanted = [("pk", KeyType::Hash), ("sk", KeyType::Range)];
    let matches = keys.len() == 2
        && wanted.iter().all(|(name, kind)| {
            keys.iter()
                .any(|k| k.attribute_name() == *name && k.key_type() == kind)
                && kind_of(name) == Some(ScalarAttributeType::S)
        });
    if matches {
        return None;
    }
    let found: Vec<String> = keys
        .iter()
        .map(|k| {
            let kind =
                kind_of(k.attribute_name()).map_or("?".to_owned(), |t| t.as_str().to_owned());
            format!("{} {} {}", k.attribute_name(), kind, k.key_type().as_str())
        })
        .collect();
    Some(format!(
        "the table's key schema is [{}], not Lifeboat's [pk S HASH, sk S RANGE]: it is another application's table",
        found.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, kind: KeyType) -> KeySchemaElement {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    }

    fn attr(name: &str, kind: ScalarAttributeType) -> AttributeDefinition {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
            .unwrap()
    }

    #[test]
    fn key_schema_is_pk_and_sk_strings() {
        use ScalarAttributeType::{N, S};
        let ours = [key("pk", KeyType::Hash), key("sk", KeyType::Range)];
        let strings = [attr("pk", S), attr("sk", S)];
        assert_eq!(key_schema_problem(&ours, &strings), None);

        let numeric = [attr("pk", S), attr("sk", N)];
        let got = key_schema_problem(&ours, &numeric).unwrap();
        assert!(got.contains("[pk S HASH, sk N RANGE]"), "{got}");

        let hash_only = [key("pk", KeyType::Hash)];
        assert!(key_schema_problem(&hash_only, &strings).is_some());
        let swapped = [key("sk", KeyType::Hash), key("pk", KeyType::Range)];
        assert!(key_schema_problem(&swapped, &strings).is_some());
    }
}
