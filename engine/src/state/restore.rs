//! The recovery catalog: each backup's restore points (what its targets
//! were when it was taken), every restore and drill, and every resource a
//! restore created, recorded as its create call returns. A drill's teardown
//! reads the last: it removes exactly what the record names.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::holder::{HolderId, ABANDONED_AFTER};
use super::store::{parse_ts, ts, StateError, StateResult, Store, Tx};
use crate::cloud::restore::Shape;

/// How a restore went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestoreStatus {
    /// Creating, or waiting for what it created to run (or killed there).
    Running,
    /// Everything it created is running or available.
    Completed,
    Failed,
    /// A drill's creations were removed again.
    TornDown,
}

impl RestoreStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreStatus::Running => "running",
            RestoreStatus::Completed => "completed",
            RestoreStatus::Failed => "failed",
            RestoreStatus::TornDown => "torn_down",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => RestoreStatus::Running,
            "completed" => RestoreStatus::Completed,
            "failed" => RestoreStatus::Failed,
            "torn_down" => RestoreStatus::TornDown,
            _ => return None,
        })
    }
}

/// What a restore created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// An AMI registered from a backup's snapshots to launch from.
    Image,
    Instance,
    Volume,
    DbInstance,
    DbCluster,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Image => "image",
            ResourceKind::Instance => "instance",
            ResourceKind::Volume => "volume",
            ResourceKind::DbInstance => "db_instance",
            ResourceKind::DbCluster => "db_cluster",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "image" => ResourceKind::Image,
            "instance" => ResourceKind::Instance,
            "volume" => ResourceKind::Volume,
            "db_instance" => ResourceKind::DbInstance,
            "db_cluster" => ResourceKind::DbCluster,
            _ => return None,
        })
    }
}

/// One resource a restore created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoredResource {
    pub kind: ResourceKind,
    pub id: String,
    pub created: DateTime<Utc>,
    /// When a teardown removed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<DateTime<Utc>>,
}

/// One restore: who, when, from what, into where, and what it made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreRecord {
    pub id: String,
    /// `instance`, `volume`, `rds` or `aurora`.
    pub kind: String,
    pub target: String,
    pub policy: String,
    pub backup_id: String,
    /// When the backup restored from was taken (the recovery point).
    pub backup_started: DateTime<Utc>,
    /// `local`, or the DR destination `REGION:ACCOUNT` restored from.
    pub source: String,
    /// Where it was restored: account name and region.
    pub account: String,
    pub region: String,
    /// The recovery scenario, for a drill's or a recovery's restores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<String>,
    /// `user@host` that ran it.
    pub operator: String,
    pub started: DateTime<Utc>,
    /// When everything it created was running or available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<DateTime<Utc>>,
    pub status: RestoreStatus,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub problem: String,
    #[serde(default)]
    pub resources: Vec<RestoredResource>,
    /// The process running it (none in records from before Lifeboat
    /// recorded it): a `running` restore whose process is gone is reaped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<HolderId>,
    /// When `holder` took the restore (its first run, or a resume): how
    /// long a holder that cannot be looked at has had it. `started` stays
    /// the first run's, for the time to recover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder_since: Option<DateTime<Utc>>,
}

impl RestoreRecord {
    /// Seconds from the start until everything ran (the time to recover).
    pub fn rto_seconds(&self) -> Option<i64> {
        self.ready.map(|r| (r - self.started).num_seconds())
    }

    /// Seconds between the backup used and the start (the data lost).
    pub fn rpo_seconds(&self) -> i64 {
        (self.started - self.backup_started).num_seconds()
    }

    /// Whether it is `running` in a process that is gone: its holder seen
    /// to be gone, or unseen for longer than [`ABANDONED_AFTER`] since it
    /// took the restore (`HolderId::gone_since`, the drills' rule). A
    /// record without a holder (left `running` by a Lifeboat that did not
    /// record it) counts as gone that long after its start.
    pub fn interrupted(&self) -> bool {
        self.status == RestoreStatus::Running
            && holder_gone(self.holder.as_ref(), self.holder_since, self.started)
    }
}

/// Whether the process that took a `running` restore at `since` (else
/// at its `started`) is gone: see [`RestoreRecord::interrupted`].
pub(super) fn holder_gone(
    holder: Option<&HolderId>,
    since: Option<DateTime<Utc>>,
    started: DateTime<Utc>,
) -> bool {
    match holder {
        Some(h) => h.gone_since(since.unwrap_or(started)),
        None => Utc::now() - started > ABANDONED_AFTER,
    }
}

fn corrupt(store_path: &std::path::Path, m: String) -> StateError {
    StateError::Corrupt {
        path: store_path.to_path_buf(),
        message: m,
    }
}

impl Store {
    /// What `target` was when backup `backup_id` of `policy` was taken.
    pub fn restore_point(
        &self,
        policy: &str,
        backup_id: &str,
        target: &str,
    ) -> StateResult<Option<Shape>> {
        let raw: Option<String> = self
            .conn
            .query_row(
                "SELECT shape FROM restore_points WHERE policy = ?1 AND backup_id = ?2 AND target = ?3",
                params![policy, backup_id, target],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        raw.map(|s| {
            serde_json::from_str(&s).map_err(|e| {
                corrupt(
                    &self.path,
                    format!("restore point of {target} in backup {backup_id}: {e}"),
                )
            })
        })
        .transpose()
    }

    /// Every restore, oldest first, with what each created.
    pub fn restores(&self) -> StateResult<Vec<RestoreRecord>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, kind, target, policy, backup_id, backup_started, source, account, region,
                    drill, operator, started, ready, finished, status, problem, holder,
                    holder_since
                 FROM restores ORDER BY started, id",
            )
            .map_err(|e| self.err(e))?;
        type Row = (
            [String; 9],
            Option<String>,
            String,
            String,
            Option<String>,
            Option<String>,
            String,
            String,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = st
            .query_map([], |r| {
                Ok((
                    [
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                    ],
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                    r.get(12)?,
                    r.get(13)?,
                    r.get(14)?,
                    r.get(15)?,
                    r.get(16)?,
                    r.get(17)?,
                ))
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))?;
        let time = |t: Option<String>| t.map(|t| parse_ts(&self.path, &t)).transpose();
        let mut out = Vec::with_capacity(rows.len());
        for (s, drill, operator, started, ready, finished, status, problem, holder, since) in rows {
            let [id, kind, target, policy, backup_id, backup_started, source, account, region] = s;
            let status = RestoreStatus::parse(&status)
                .ok_or_else(|| corrupt(&self.path, format!("restore {id}: status {status:?}")))?;
            let resources = self.restored_resources(&id)?;
            let holder = holder
                .map(|h| serde_json::from_str::<HolderId>(&h))
                .transpose()
                .map_err(|e| corrupt(&self.path, format!("restore {id}: holder: {e}")))?;
            out.push(RestoreRecord {
                backup_started: parse_ts(&self.path, &backup_started)?,
                started: parse_ts(&self.path, &started)?,
                ready: time(ready)?,
                finished: time(finished)?,
                holder_since: time(since)?,
                id,
                kind,
                target,
                policy,
                backup_id,
                source,
                account,
                region,
                drill,
                operator,
                status,
                problem,
                resources,
                holder,
            });
        }
        Ok(out)
    }

    fn restored_resources(&self, restore_id: &str) -> StateResult<Vec<RestoredResource>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT kind, id, created, removed FROM restored_resources
                 WHERE restore_id = ?1 ORDER BY created, kind, id",
            )
            .map_err(|e| self.err(e))?;
        let rows: Vec<(String, String, String, Option<String>)> = st
            .query_map(params![restore_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|(kind, id, created, removed)| {
                Ok(RestoredResource {
                    kind: ResourceKind::parse(&kind).ok_or_else(|| {
                        corrupt(&self.path, format!("restore {restore_id}: kind {kind:?}"))
                    })?,
                    id,
                    created: parse_ts(&self.path, &created)?,
                    removed: removed.map(|r| parse_ts(&self.path, &r)).transpose()?,
                })
            })
            .collect()
    }
}

impl Tx<'_> {
    /// Records what `target` was when backup `backup_id` of `policy` was
    /// taken (again: the newer answer wins).
    pub fn put_restore_point(
        &mut self,
        policy: &str,
        backup_id: &str,
        target: &str,
        region: &str,
        shape: &Shape,
    ) -> StateResult<()> {
        let json = serde_json::to_string(shape).expect("a shape serializes");
        self.tx
            .execute(
                "INSERT INTO restore_points (policy, backup_id, target, region, shape)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (policy, backup_id, target) DO UPDATE SET
                    region = excluded.region, shape = excluded.shape",
                params![policy, backup_id, target, region, json],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records a restore, or its new status, readiness and finish (its
    /// resources are recorded one by one with [`Tx::restored`]).
    pub fn put_restore(&mut self, r: &RestoreRecord) -> StateResult<()> {
        self.tx
            .execute(
                "INSERT INTO restores (id, kind, target, policy, backup_id, backup_started, source,
                    account, region, drill, operator, started, ready, finished, status, problem,
                    holder, holder_since)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                    ?18)
                 ON CONFLICT (id) DO UPDATE SET
                    ready = excluded.ready, finished = excluded.finished,
                    status = excluded.status, problem = excluded.problem,
                    holder = excluded.holder, holder_since = excluded.holder_since",
                params![
                    r.id,
                    r.kind,
                    r.target,
                    r.policy,
                    r.backup_id,
                    ts(r.backup_started),
                    r.source,
                    r.account,
                    r.region,
                    r.drill,
                    r.operator,
                    ts(r.started),
                    r.ready.map(ts),
                    r.finished.map(ts),
                    r.status.as_str(),
                    r.problem,
                    r.holder
                        .as_ref()
                        .map(|h| serde_json::to_string(h).expect("a holder serializes")),
                    r.holder_since.map(ts)
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Sets the problem of restore `id` once it ended (a cleanup that failed
    /// after its outcome was recorded); a run that took it over since is
    /// left alone.
    pub fn note_restore_problem(&mut self, id: &str, problem: &str) -> StateResult<()> {
        self.tx
            .execute(
                "UPDATE restores SET problem = ?2 WHERE id = ?1 AND status != 'running'",
                params![id, problem],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records that restore `restore_id` created resource `id` (again:
    /// nothing changes, so an adopted resource is recorded once).
    pub fn restored(
        &mut self,
        restore_id: &str,
        kind: ResourceKind,
        id: &str,
        at: DateTime<Utc>,
    ) -> StateResult<()> {
        self.tx
            .execute(
                "INSERT OR IGNORE INTO restored_resources (restore_id, kind, id, created)
                 VALUES (?1, ?2, ?3, ?4)",
                params![restore_id, kind.as_str(), id, ts(at)],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Forgets that restore `restore_id` made `id`: recorded before its
    /// create call, which failed without making it.
    pub fn forget_restored(
        &mut self,
        restore_id: &str,
        kind: ResourceKind,
        id: &str,
    ) -> StateResult<()> {
        self.tx
            .execute(
                "DELETE FROM restored_resources WHERE restore_id = ?1 AND kind = ?2 AND id = ?3",
                params![restore_id, kind.as_str(), id],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records that a teardown removed resource `id` of restore `restore_id`.
    pub fn unrestored(
        &mut self,
        restore_id: &str,
        kind: ResourceKind,
        id: &str,
        at: DateTime<Utc>,
    ) -> StateResult<()> {
        self.tx
            .execute(
                "UPDATE restored_resources SET removed = ?4
                 WHERE restore_id = ?1 AND kind = ?2 AND id = ?3",
                params![restore_id, kind.as_str(), id, ts(at)],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}
