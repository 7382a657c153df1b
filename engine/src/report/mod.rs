//! Reports (`lifeboat report`, and the runner's reports to S3): the rows of
//! each kind built from the catalog, its history of deleted records
//! (`state/history.rs`) and, for coverage, live AWS (`coverage.rs`); one
//! [`Table`] per report, written as CSV or as JSON objects keyed by its
//! columns. `scheduled.rs`: the runner's reports written to S3. The
//! columns and what they mean: `docs/reports.md`.
//!
//! Reading a report writes nothing to the state.

pub mod coverage;
pub mod scheduled;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::state::{
    dr_status, snapshot_succeeded, ArtifactKind, BackupRecord, DrStatus, StateResult, Store,
};

/// What `lifeboat report` can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Backups,
    Snapshots,
    Protected,
    Unprotected,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Backups => "backups",
            Kind::Snapshots => "snapshots",
            Kind::Protected => "protected",
            Kind::Unprotected => "unprotected",
        }
    }

    /// The columns of the kind's report, in order (CSV header, JSON keys).
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Kind::Backups => &[
                "backup_id",
                "account",
                "policy",
                "status",
                "dr_status",
                "started",
                "finished",
                "is_retry",
                "deleted_at",
            ],
            Kind::Snapshots => &[
                "backup_id",
                "account",
                "region",
                "kind",
                "target",
                "volume_or_db",
                "artifact_id",
                "succeeded",
                "finished",
                "deleted_at",
            ],
            Kind::Protected => &[
                "account",
                "region",
                "resource_type",
                "resource_id",
                "name",
                "policies",
                "schedules",
            ],
            Kind::Unprotected => &["account", "region", "resource_type", "resource_id", "name"],
        }
    }
}

/// One report: its kind's columns and one row of values per record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub kind: Kind,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// The report as CSV: a header of the columns, then one line per row.
    pub fn to_csv(&self) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        // Writing to memory fails only on a row of the wrong length, which
        // the builders below never make.
        let _ = w.write_record(self.kind.columns());
        for row in &self.rows {
            let _ = w.write_record(row.iter().map(|cell| inert(cell).into_owned()));
        }
        w.into_inner().unwrap_or_default()
    }

    /// The report as a JSON array of objects keyed by the columns (values
    /// as they are: JSON is not opened by spreadsheets).
    pub fn to_json(&self) -> Value {
        let cols = self.kind.columns();
        Value::Array(
            self.rows
                .iter()
                .map(|row| {
                    let obj: Map<String, Value> = cols
                        .iter()
                        .zip(row)
                        .map(|(c, v)| (c.to_string(), Value::String(v.clone())))
                        .collect();
                    Value::Object(obj)
                })
                .collect(),
        )
    }
}

/// What a report is narrowed to: records with activity at or after
/// `since` (started, finished or deleted then), of one policy.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub since: Option<DateTime<Utc>>,
    pub policy: Option<String>,
}

impl Filter {
    fn policy_ok(&self, policy: &str) -> bool {
        self.policy.as_deref().is_none_or(|p| p == policy)
    }

    /// Any of the instants at or after `since` (a running record, with no
    /// end yet, is always recent).
    fn recent(&self, times: &[Option<DateTime<Utc>>]) -> bool {
        match self.since {
            None => true,
            Some(since) => times.iter().any(|t| t.is_none_or(|t| t >= since)),
        }
    }
}

/// An instant as the reports write it: RFC 3339, UTC, whole seconds.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn stamp_opt(t: Option<DateTime<Utc>>) -> String {
    t.map(stamp).unwrap_or_default()
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

/// The oldest deletion the reports still show at `now`.
fn history_start(store: &Store, now: DateTime<Utc>) -> DateTime<Utc> {
    now - store.report_retention()
}

/// Every backup in the catalog, then those deleted within the report
/// retention, ordered by start.
pub fn backups(store: &Store, now: DateTime<Utc>, filter: &Filter) -> StateResult<Table> {
    let runs = store.dr_runs(filter.policy.as_deref())?;
    let attempts = store.backup_attempts()?;
    let mut rows: Vec<(DateTime<Utc>, Vec<String>)> = Vec::new();
    for b in store.backups(filter.policy.as_deref())? {
        if !filter.recent(&[Some(b.started), b.finished]) {
            continue;
        }
        let dr = dr_status(
            runs.iter()
                .filter(|r| r.policy == b.policy && r.backup_id == b.id)
                .map(|r| {
                    (
                        r.destination.account.as_str(),
                        r.destination.region.as_str(),
                        r.status.as_str(),
                    )
                }),
        );
        let attempt = attempts
            .get(&(b.policy.clone(), b.id.clone()))
            .copied()
            .unwrap_or(1);
        rows.push((
            b.started,
            vec![
                b.id,
                b.account,
                b.policy,
                b.status.as_str().to_string(),
                dr,
                stamp(b.started),
                stamp_opt(b.finished),
                yes_no(attempt > 1),
                String::new(),
            ],
        ));
    }
    for d in store.deleted_backups(history_start(store, now))? {
        if !filter.policy_ok(&d.policy)
            || !filter.recent(&[Some(d.started), d.finished, Some(d.deleted_at)])
        {
            continue;
        }
        rows.push((
            d.started,
            vec![
                d.id,
                d.account,
                d.policy,
                d.status,
                d.dr_status,
                stamp(d.started),
                stamp_opt(d.finished),
                yes_no(d.attempt > 1),
                stamp(d.deleted_at),
            ],
        ));
    }
    rows.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    Ok(Table {
        kind: Kind::Backups,
        rows: rows.into_iter().map(|(_, r)| r).collect(),
    })
}

/// The report's word for what a catalog record is.
pub fn artifact_word(kind: ArtifactKind) -> &'static str {
    match kind {
        ArtifactKind::Ebs => "EBS",
        ArtifactKind::Image => "AMI",
        ArtifactKind::DbSnapshot => "RDS",
        ArtifactKind::DbClusterSnapshot => "Aurora",
    }
}

/// Every snapshot record of the catalog (EBS snapshots, AMIs, DB and
/// cluster snapshots), every DR copy recorded (`copy`), then the records
/// deleted within the report retention.
pub fn snapshots(store: &Store, now: DateTime<Utc>, filter: &Filter) -> StateResult<Table> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let backups = store.backups(filter.policy.as_deref())?;
    let mut volumes: BTreeMap<&str, &str> = BTreeMap::new();
    for b in &backups {
        if filter.recent(&[b.finished]) {
            rows.extend(backup_snapshot_rows(b));
        }
        for s in &b.snapshots {
            volumes.insert(&s.id, &s.volume_id);
        }
    }
    for c in store.dr_copies(filter.policy.as_deref())? {
        if !filter.recent(&[c.finished]) {
            continue;
        }
        let account = c.destination.account.clone();
        rows.push(vec![
            c.backup_id,
            account,
            c.destination.region,
            "copy".into(),
            c.target,
            volumes
                .get(c.source_id.as_str())
                .map(|v| v.to_string())
                .unwrap_or_default(),
            c.id,
            yes_no(c.status == DrStatus::Completed),
            stamp_opt(c.finished),
            String::new(),
        ]);
    }
    for d in store.deleted_snapshots(history_start(store, now))? {
        if !filter.policy_ok(&d.policy) || !filter.recent(&[d.finished, Some(d.deleted_at)]) {
            continue;
        }
        rows.push(vec![
            d.backup_id,
            d.account,
            d.region,
            artifact_word(d.kind).into(),
            d.target,
            d.volume_id,
            d.id,
            yes_no(d.succeeded),
            stamp_opt(d.finished),
            stamp(d.deleted_at),
        ]);
    }
    Ok(Table {
        kind: Kind::Snapshots,
        rows,
    })
}

fn backup_snapshot_rows(b: &BackupRecord) -> impl Iterator<Item = Vec<String>> + '_ {
    b.snapshots.iter().map(move |s| {
        vec![
            b.id.clone(),
            b.account.clone(),
            s.region.clone(),
            artifact_word(s.kind).into(),
            s.target.clone(),
            s.volume_id.clone(),
            s.id.clone(),
            yes_no(snapshot_succeeded(b.status, &b.problems, &s.target)),
            stamp_opt(b.finished),
            String::new(),
        ]
    })
}

/// The policies the state knows (configured and made from templates), for
/// `--policy`: an unknown name is the caller's error.
pub fn known_policies(store: &mut Store) -> StateResult<BTreeSet<String>> {
    let mut names: BTreeSet<String> = store.load()?.policies()?.into_keys().collect();
    names.extend(store.backups(None)?.into_iter().map(|b| b.policy));
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{BackupStatus, SnapshotRecord};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn store_with_two_backups() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("state.db")).unwrap();
        for (id, hour) in [("b1", 10), ("b2", 11)] {
            let b = BackupRecord {
                seq: 0,
                id: id.into(),
                policy: "web".into(),
                account: "main".into(),
                started: t(&format!("2026-11-22T{hour}:00:00Z")),
                finished: Some(t(&format!("2026-11-22T{hour}:05:00Z"))),
                status: BackupStatus::Success,
                frozen: None,
                snapshots: vec![SnapshotRecord {
                    id: format!("ami-{id}"),
                    volume_id: "i-1".into(),
                    target: "i-1".into(),
                    region: "us-east-1".into(),
                    kind: ArtifactKind::Image,
                    image: None,
                }],
                problems: vec![],
            };
            s.transaction(|tx| tx.insert_backup(&b)).unwrap();
        }
        let at = t("2026-11-23T00:00:00Z");
        s.transaction(|tx| {
            tx.delete_snapshot("ami-b1", at)?;
            tx.delete_backup("web", "b1", at)
        })
        .unwrap();
        (dir, s)
    }

    #[test]
    fn the_backups_report_shows_the_deleted_backup_until_the_retention_ends() {
        let (_dir, s) = store_with_two_backups();
        let now = t("2026-11-24T00:00:00Z");
        let table = backups(&s, now, &Filter::default()).unwrap();
        let csv = String::from_utf8(table.to_csv()).unwrap();
        assert_eq!(
            csv,
            "backup_id,account,policy,status,dr_status,started,finished,is_retry,deleted_at\n\
             b1,main,web,success,,2026-11-22T10:00:00Z,2026-11-22T10:05:00Z,no,2026-11-23T00:00:00Z\n\
             b2,main,web,success,,2026-11-22T11:00:00Z,2026-11-22T11:05:00Z,no,\n"
        );
        let json = table.to_json();
        assert_eq!(json[0]["deleted_at"], "2026-11-23T00:00:00Z");
        // Past the retention (90 days by default) the row is not shown,
        // pruned or not.
        let later = t("2027-03-01T00:00:00Z");
        assert_eq!(
            backups(&s, later, &Filter::default()).unwrap().rows.len(),
            1
        );
        // --since keeps activity at or after it.
        let since = Filter {
            since: Some(t("2026-11-22T10:30:00Z")),
            policy: None,
        };
        assert_eq!(
            backups(&s, now, &since).unwrap().rows.len(),
            2,
            "b1 was deleted later"
        );
        let since = Filter {
            since: Some(t("2026-11-23T10:30:00Z")),
            policy: None,
        };
        assert_eq!(backups(&s, now, &since).unwrap().rows.len(), 0);
        let other = Filter {
            since: None,
            policy: Some("db".into()),
        };
        assert!(backups(&s, now, &other).unwrap().rows.is_empty());
    }

    #[test]
    fn the_snapshots_report_says_ami_and_keeps_the_deleted_one() {
        let (_dir, s) = store_with_two_backups();
        let table = snapshots(&s, t("2026-11-24T00:00:00Z"), &Filter::default()).unwrap();
        let kinds: Vec<(&str, &str, &str)> = table
            .rows
            .iter()
            .map(|r| (r[6].as_str(), r[3].as_str(), r[9].as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("ami-b2", "AMI", ""),
                ("ami-b1", "AMI", "2026-11-23T00:00:00Z")
            ]
        );
    }
}

/// A CSV cell a spreadsheet will not run: one starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return (a Name tag anyone with CreateTags can
/// set) is prefixed with `'`, which spreadsheets show as text.
fn inert(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

#[cfg(test)]
mod inert_tests {
    use super::inert;

    #[test]
    fn a_cell_a_spreadsheet_would_run_is_written_as_text() {
        assert_eq!(inert("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(inert("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(inert("i-0abc"), "i-0abc");
        assert_eq!(inert(""), "");
    }
}
