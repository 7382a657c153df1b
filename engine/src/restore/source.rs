//! Which backup a restore uses, and where its artifacts are: the backup's
//! own (local) or a DR copy at a destination. Pure over the catalog.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Kind, RestoreError};
use crate::cloud::restore::Shape;
use crate::state::{
    ArtifactKind, BackupRecord, BackupStatus, Destination, DrCopyRecord, DrStatus, SnapshotRecord,
    Store,
};

/// Which backup: `--backup ID`, `--backup latest` (the default), or the
/// newest at or before an instant (a recovery to a point in time).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Which {
    #[default]
    Latest,
    Id(String),
    AtOrBefore(DateTime<Utc>),
}

impl std::str::FromStr for Which {
    type Err = String;
    /// `latest`, or an id; an id that names no backup is read as an instant
    /// by [`choose`] (backup ids look like instants, and an id must win:
    /// read as an instant it would exclude its own backup, started a
    /// fraction of a second after the whole second it is named by).
    fn from_str(s: &str) -> Result<Which, String> {
        if s == "latest" {
            return Ok(Which::Latest);
        }
        Ok(Which::Id(s.to_string()))
    }
}

/// The artifacts a restore reads, and where they live.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Artifacts {
    /// The account (by name) and region that hold them.
    pub account: String,
    pub region: String,
    /// An instance's or volume's EBS snapshot to use, by source volume id.
    pub snapshots: BTreeMap<String, String>,
    /// The AMI, for an instance backed up as one.
    pub image: Option<String>,
    /// The DB (cluster) snapshot's identifier, and its ARN when known.
    pub db: Option<(String, Option<String>)>,
}

impl Artifacts {
    /// Every artifact id, for the record and the tags of what is created.
    pub fn ids(&self) -> Vec<String> {
        let mut out: Vec<String> = self.image.iter().cloned().collect();
        if self.image.is_none() {
            out.extend(self.snapshots.values().cloned());
        }
        out.extend(self.db.iter().map(|d| d.0.clone()));
        out
    }
}

/// The backup a restore uses, with what it recorded of the target.
#[derive(Debug, Clone)]
pub struct Chosen {
    pub backup: BackupRecord,
    pub shape: Option<Shape>,
    /// `None`: the backup's own artifacts; otherwise the DR destination.
    pub from: Option<Destination>,
    pub artifacts: Artifacts,
}

/// The target's artifacts in `b`, when `b` holds a whole backup of it: a
/// finished backup whose problems do not name the target.
fn records_of<'a>(b: &'a BackupRecord, kind: Kind, target: &str) -> Vec<&'a SnapshotRecord> {
    if !matches!(b.status, BackupStatus::Success | BackupStatus::Partial)
        || b.has_problem_with(target)
    {
        return vec![];
    }
    let found: Vec<&SnapshotRecord> = b
        .snapshots
        .iter()
        .filter(|s| {
            // A volume also restores from its instance's backup.
            let named = s.target == target
                || (kind == Kind::Volume && s.volume_id == target && s.image.is_none());
            named && kind.holds(s.kind)
        })
        .collect();
    // A problem with the policy's target (the instance of a volume) or with
    // one of the artifacts themselves leaves the backup not whole for it:
    // a failed data-volume snapshot is named by its instance and its id.
    if found
        .iter()
        .any(|s| b.has_problem_with(&s.target) || b.has_problem_with(&s.id))
    {
        return vec![];
    }
    found
}

/// Picks the backup of `target` that `which` names, whose artifacts are
/// there (`from`: completed DR copies at that destination).
pub fn choose(
    store: &Store,
    kind: Kind,
    target: &str,
    which: &Which,
    from: Option<&Destination>,
) -> Result<Chosen, RestoreError> {
    let mut backups = store.backups(None)?;
    // A backup that expired locally restores from its copies: known by them.
    let by_copies = store.copied_backups()?;
    if from.is_some() {
        backups.extend(by_copies);
        return pick(store, kind, target, which, from, &backups);
    }
    let local = pick(store, kind, target, which, None, &backups);
    match local {
        // The one asked for is known by its copies only: say where they are.
        Err(RestoreError::Invalid(why))
            if pick(store, kind, target, which, None, &by_copies).is_ok() =>
        {
            Err(RestoreError::Invalid(format!(
                "{why}; it expired locally but has DR copies: restore from one with --from {}",
                copy_places(store, target)?.join(" or --from ")
            )))
        }
        other => other,
    }
}

/// [`choose`] among `backups`.
fn pick(
    store: &Store,
    kind: Kind,
    target: &str,
    which: &Which,
    from: Option<&Destination>,
    backups: &[BackupRecord],
) -> Result<Chosen, RestoreError> {
    let names = |b: &BackupRecord| {
        b.snapshots
            .iter()
            .any(|s| s.target == target || s.volume_id == target)
    };
    let mut candidates: Vec<&BackupRecord> = backups
        .iter()
        .filter(|b| !records_of(b, kind, target).is_empty())
        .collect();
    if candidates.is_empty() {
        let known = backups.iter().any(names);
        return Err(RestoreError::Invalid(if known {
            format!("no whole backup of {} {target}: every backup that names it failed for it or is still running", kind.noun())
        } else {
            format!(
                "no backup of {} {target} is in the catalog (is it a target of a policy, and has one backup finished?)",
                kind.noun()
            )
        }));
    }
    candidates.sort_by_key(|b| std::cmp::Reverse(b.seq));
    let which = &match which {
        Which::Id(id) if !backups.iter().any(|b| &b.id == id) => {
            match DateTime::parse_from_rfc3339(id) {
                Ok(t) => Which::AtOrBefore(t.with_timezone(&Utc)),
                Err(_) => which.clone(),
            }
        }
        other => other.clone(),
    };
    let candidates: Vec<&BackupRecord> = match which {
        Which::Latest => candidates,
        Which::Id(id) => {
            let Some(b) = candidates.iter().find(|b| &b.id == id) else {
                return Err(RestoreError::Invalid(
                    if backups.iter().any(|b| &b.id == id) {
                        format!(
                            "backup {id} holds no whole backup of {} {target}",
                            kind.noun()
                        )
                    } else {
                        format!("no backup {id} in the catalog")
                    },
                ));
            };
            vec![*b]
        }
        Which::AtOrBefore(t) => {
            let at: Vec<&BackupRecord> =
                candidates.into_iter().filter(|b| b.started <= *t).collect();
            if at.is_empty() {
                return Err(RestoreError::Invalid(format!(
                    "no backup of {} {target} was taken at or before {}",
                    kind.noun(),
                    t.to_rfc3339()
                )));
            }
            at
        }
    };
    let copies = match from {
        Some(_) => store.dr_copies(None)?,
        None => vec![],
    };
    let mut missing = String::new();
    for b in candidates {
        let records = records_of(b, kind, target);
        let artifacts = match from {
            None => local(&records, b),
            Some(d) => match copied(&records, b, d, &copies) {
                Ok(a) => a,
                Err(why) => {
                    if missing.is_empty() {
                        missing = why;
                    }
                    continue;
                }
            },
        };
        // Recorded under the policy's target: the instance, for its volume.
        let shape = store.restore_point(&b.policy, &b.id, &records[0].target)?;
        return Ok(Chosen {
            backup: b.clone(),
            shape,
            from: from.cloned(),
            artifacts,
        });
    }
    let d = from.expect("only a DR source can lack artifacts");
    Err(RestoreError::Invalid(format!(
        "no completed DR copy of {} {target} in {d}: {missing}",
        kind.noun()
    )))
}

/// What `target` was in the backup `which` names: from a local backup, or
/// when those expired, from the copies of one. `None` when no backup whole
/// for it has a restore point.
pub fn shape(
    store: &Store,
    kind: Kind,
    target: &str,
    which: &Which,
) -> Result<Option<Shape>, RestoreError> {
    if let Ok(c) = choose(store, kind, target, which, None) {
        return Ok(c.shape);
    }
    for place in copy_places(store, target)? {
        let Some(d) = crate::state::source_destination(&place) else {
            continue;
        };
        if let Ok(c) = choose(store, kind, target, which, Some(&d)) {
            return Ok(c.shape);
        }
    }
    Ok(None)
}

/// Where completed copies of `target`'s artifacts are, as `--from` names them.
fn copy_places(store: &Store, target: &str) -> Result<Vec<String>, RestoreError> {
    let mut places: Vec<String> = store
        .dr_copies(None)?
        .iter()
        .filter(|c| c.target == target && c.status == DrStatus::Completed)
        .map(|c| c.destination.to_string())
        .collect();
    places.sort();
    places.dedup();
    Ok(places)
}

/// Where the newest backup of `target` was taken, local or known by its
/// copies: its account (by name, whose copies `--from REGION` means) and
/// region.
pub fn newest_place(store: &Store, target: &str) -> Result<Option<(String, String)>, RestoreError> {
    let mut all = store.backups(None)?;
    all.extend(store.copied_backups()?);
    Ok(all
        .iter()
        .filter_map(|b| {
            let s = b
                .snapshots
                .iter()
                .find(|s| s.target == target || s.volume_id == target)?;
            Some((b.seq, b.account.clone(), s.region.clone()))
        })
        .max_by_key(|(seq, _, _)| *seq)
        .map(|(_, account, region)| (account, region)))
}

fn local(records: &[&SnapshotRecord], b: &BackupRecord) -> Artifacts {
    let mut a = Artifacts {
        account: b.account.clone(),
        region: records
            .first()
            .map(|r| r.region.clone())
            .unwrap_or_default(),
        ..Artifacts::default()
    };
    for r in records {
        match r.kind {
            ArtifactKind::Image => a.image = Some(r.id.clone()),
            ArtifactKind::Ebs => {
                a.snapshots.insert(r.volume_id.clone(), r.id.clone());
            }
            ArtifactKind::DbSnapshot | ArtifactKind::DbClusterSnapshot => {
                a.db = Some((r.id.clone(), None));
            }
        }
    }
    a
}

/// The completed copies at `d` of every record: all of them, or why not.
fn copied(
    records: &[&SnapshotRecord],
    b: &BackupRecord,
    d: &Destination,
    copies: &[DrCopyRecord],
) -> Result<Artifacts, String> {
    let mut a = Artifacts {
        account: d.account.clone(),
        region: d.region.clone(),
        ..Artifacts::default()
    };
    let image = records.iter().find(|r| r.kind == ArtifactKind::Image);
    for r in records {
        // An AMI's copy brings its snapshots: only the AMI is looked up.
        if image.is_some() && r.kind == ArtifactKind::Ebs {
            continue;
        }
        let Some(c) = copies.iter().find(|c| {
            c.destination == *d
                && c.backup_id == b.id
                && c.policy == b.policy
                && c.source_id == r.id
                && c.status == DrStatus::Completed
                // Retention expired it (tagged, in an account that forbids
                // deletion): it may go any time.
                && c.expired.is_none()
        }) else {
            return Err(format!(
                "backup {} has no completed copy of {} there",
                b.id, r.id
            ));
        };
        match r.kind {
            ArtifactKind::Image => a.image = Some(c.id.clone()),
            ArtifactKind::Ebs => {
                a.snapshots.insert(r.volume_id.clone(), c.id.clone());
            }
            ArtifactKind::DbSnapshot | ArtifactKind::DbClusterSnapshot => {
                a.db = Some((c.id.clone(), c.arn.clone()));
            }
        }
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_retention_expired_is_not_restored_from() {
        let at: chrono::DateTime<chrono::Utc> = "2026-11-22T10:00:00Z".parse().unwrap();
        let snap = SnapshotRecord {
            id: "snap-1".into(),
            volume_id: "vol-1".into(),
            target: "vol-1".into(),
            region: "us-east-1".into(),
            kind: ArtifactKind::Ebs,
            image: None,
        };
        let b = BackupRecord {
            seq: 1,
            id: "b1".into(),
            policy: "web".into(),
            account: "main".into(),
            started: at,
            finished: Some(at),
            status: BackupStatus::Success,
            frozen: None,
            snapshots: vec![snap.clone()],
            problems: vec![],
        };
        let d = Destination {
            account: "vault".into(),
            region: "us-west-2".into(),
        };
        let mut copy = DrCopyRecord {
            id: "snap-copy-1".into(),
            destination: d.clone(),
            kind: ArtifactKind::Ebs,
            arn: None,
            image: None,
            source_id: "snap-1".into(),
            source_region: "us-east-1".into(),
            source_account: "main".into(),
            target: "vol-1".into(),
            policy: "web".into(),
            backup_id: "b1".into(),
            backup_seq: 1,
            status: DrStatus::Completed,
            started: at,
            finished: Some(at),
            expired: None,
            problem: String::new(),
            lock: None,
            lock_problem: String::new(),
        };
        let found = copied(&[&snap], &b, &d, std::slice::from_ref(&copy)).unwrap();
        assert_eq!(found.snapshots["vol-1"], "snap-copy-1");
        copy.expired = Some(at);
        let err = copied(&[&snap], &b, &d, &[copy]).unwrap_err();
        assert!(err.contains("no completed copy of snap-1"), "{err}");
    }
}
