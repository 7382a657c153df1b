//! The runner's reports: with `notifications { reports { bucket prefix
//! every } }`, the backups, snapshots and unprotected reports written as
//! CSV to `s3://BUCKET/PREFIX/KIND-TIMESTAMP.csv` (S3 PutObject through the
//! `Objects` port, with the notifications block's account and region)
//! when the agenda says they are due (`runmode/agenda.rs`). Each object
//! written or failed is one outcome; a failure is the runner's log event,
//! never its end.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lifeboat_schema::{Config, Notifications, ScheduledReports};

use super::{coverage, Filter, Kind, Table};
use crate::cloud::{Cloud, CloudError, ErrorKind};
use crate::state::{SharedStore, StateError};

/// The kinds the runner writes, in order.
pub const SCHEDULED: [Kind; 3] = [Kind::Backups, Kind::Snapshots, Kind::Unprotected];

/// The note under which the state keeps when the reports were last
/// written (or tried): the agenda reads it.
pub const REPORTS_NOTE: &str = "scheduled_reports";

/// One report object written, or why not.
#[derive(Debug)]
pub struct Written {
    pub kind: Kind,
    /// `s3://BUCKET/KEY`.
    pub url: String,
    /// The report's rows (header left out).
    pub rows: usize,
    pub error: Option<ReportError>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Cloud(#[from] CloudError),
    /// Some regions could not be listed: the unprotected report is not
    /// written incomplete.
    #[error("the inventory is incomplete: {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Inventory(Vec<CloudError>),
}

/// The object key of a report: `PREFIX/KIND-20261122T080000Z.csv`.
pub fn object_key(r: &ScheduledReports, kind: Kind, at: DateTime<Utc>) -> String {
    let name = format!("{}-{}.csv", kind.as_str(), at.format("%Y%m%dT%H%M%SZ"));
    match r.prefix.is_empty() {
        true => name,
        false => format!("{}/{name}", r.prefix),
    }
}

/// The three reports as the runner writes them (every row: no filter).
async fn tables(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    config: &Config,
    now: DateTime<Utc>,
) -> Vec<(Kind, Result<Table, ReportError>)> {
    let all = Filter::default();
    let (backups, snapshots, state) = {
        let mut s = store.lock().expect("store");
        (
            super::backups(&s, now, &all),
            super::snapshots(&s, now, &all),
            s.load(),
        )
    };
    let inv = coverage::inventory(cloud, config).await;
    let unprotected = match state {
        Err(e) => Err(e.into()),
        Ok(_) if !inv.errors.is_empty() => Err(ReportError::Inventory(inv.errors.clone())),
        Ok(state) => match (state.policies(), state.targets()) {
            (Ok(p), Ok(t)) => Ok(coverage::tables(&inv, &p, &t, None).1),
            (Err(e), _) | (_, Err(e)) => Err(e.into()),
        },
    };
    vec![
        (Kind::Backups, backups.map_err(Into::into)),
        (Kind::Snapshots, snapshots.map_err(Into::into)),
        (Kind::Unprotected, unprotected),
    ]
}

/// Writes the reports now (the agenda found them due), and records the
/// time, written or not, so that a failure is tried again at the next
/// `every` and not at every look. Without a reports block: nothing.
pub async fn write(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    config: &Config,
    now: DateTime<Utc>,
) -> Vec<Written> {
    let Some((n, r)) = config
        .notifications
        .as_ref()
        .and_then(|n| Some((n, n.reports.as_ref()?)))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let objects = match objects(cloud, config, n).await {
        Ok(o) => Some(o),
        Err(e) => {
            // Said once per report, each with where it was going.
            for kind in SCHEDULED {
                out.push(Written {
                    kind,
                    url: format!("s3://{}/{}", r.bucket, object_key(r, kind, now)),
                    rows: 0,
                    error: Some(ReportError::Cloud(e.clone())),
                });
            }
            None
        }
    };
    if let Some(objects) = objects {
        for (kind, table) in tables(cloud, store, config, now).await {
            let key = object_key(r, kind, now);
            let url = format!("s3://{}/{key}", r.bucket);
            let (rows, error) = match table {
                Ok(t) => {
                    let put = objects.put_object(&r.bucket, &key, t.to_csv()).await;
                    (t.rows.len(), put.err().map(ReportError::Cloud))
                }
                Err(e) => (0, Some(e)),
            };
            out.push(Written {
                kind,
                url,
                rows,
                error,
            });
        }
    }
    let _ = store
        .lock()
        .expect("store")
        .set_note(REPORTS_NOTE, &super::stamp(now));
    out
}

/// S3 in the notifications block's account and region.
async fn objects(
    cloud: &Arc<dyn Cloud>,
    config: &Config,
    n: &Notifications,
) -> Result<Arc<dyn crate::cloud::Objects>, CloudError> {
    let Some(account) = config.accounts.get(&n.account) else {
        return Err(CloudError {
            kind: ErrorKind::Invalid,
            account: n.account.clone(),
            region: n.region.clone(),
            action: "s3:PutObject".into(),
            resource: None,
            code: None,
            message: format!("account {} is not declared", n.account),
        });
    };
    cloud.objects(account, &n.region).await
}
