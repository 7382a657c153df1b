//! What running restores read: retention keeps it until they end. A
//! restore records itself as running in the same transaction that finds its
//! artifacts still in the catalog ([`Tx::start_restore`]), so a backup or
//! copy either expired before the restore began (which then refuses to
//! start) or stays until it ends.

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::dr::Destination;
use super::holder::{HolderId, ABANDONED_AFTER};
use super::restore::{holder_gone, RestoreRecord, RestoreStatus};
use super::store::{parse_ts, ts, StateError, StateResult, Store, Tx};

/// A backup, or its copies at one destination, that a running restore reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InUse {
    pub restore: String,
    pub policy: String,
    pub backup_id: String,
    /// `None`: the backup's own artifacts; else the copies there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Destination>,
}

impl InUse {
    /// Does it read the backup's own artifacts?
    pub fn reads_backup(&self, policy: &str, backup_id: &str) -> bool {
        self.from.is_none() && self.policy == policy && self.backup_id == backup_id
    }

    /// Does it read the copies of that backup at `d`?
    pub fn reads_copies(&self, policy: &str, backup_id: &str, d: &Destination) -> bool {
        self.from.as_ref() == Some(d) && self.policy == policy && self.backup_id == backup_id
    }
}

/// A restore's `source` (`local`, or `REGION:ACCOUNT`) as a destination.
pub fn source_destination(source: &str) -> Option<Destination> {
    let (region, account) = Destination::split(source);
    Some(Destination {
        account: account?.to_string(),
        region: region.to_string(),
    })
}

pub(super) fn read_in_use(conn: &Connection, path: &Path) -> StateResult<Vec<InUse>> {
    let sq = |source| super::replica::sqlite_err(path, source);
    let mut st = conn
        .prepare(
            "SELECT id, policy, backup_id, source FROM restores WHERE status = ?1 ORDER BY started, id",
        )
        .map_err(sq)?;
    let rows = st
        .query_map(params![RestoreStatus::Running.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?))
        })
        .map_err(sq)?;
    let mut out = Vec::new();
    for row in rows {
        let (restore, policy, backup_id, source) = row.map_err(sq)?;
        out.push(InUse {
            restore,
            policy,
            backup_id,
            from: source_destination(&source),
        });
    }
    Ok(out)
}

impl Store {
    /// The backups and copies running restores read.
    pub fn in_use(&self) -> StateResult<Vec<InUse>> {
        read_in_use(&self.conn, &self.path)
    }
}

impl Tx<'_> {
    /// Records restore `r` as running, after checking that each artifact
    /// in `ids` is still in the catalog: the backup's own, or its completed
    /// copies at the restore's source that retention has not expired
    /// (tagged `lifeboat:expired` in an account that forbids deletion).
    /// Returns the ids found missing (and records nothing then).
    ///
    /// Refuses when the restore is `running` already in a process that
    /// may still run (`RestoreRecord::interrupted`, the reaper's rule):
    /// two runs of one restore would hold its shares under one name, and
    /// the first to end would let them go under the other.
    pub fn start_restore(&mut self, r: &RestoreRecord, ids: &[String]) -> StateResult<Vec<String>> {
        debug_assert_eq!(r.status, RestoreStatus::Running);
        self.refuse_running(&r.id)?;
        let mut missing = Vec::new();
        for id in ids {
            let found: bool = match source_destination(&r.source) {
                None => self.tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM snapshots WHERE id = ?1 AND policy = ?2 AND backup_id = ?3)",
                    params![id, r.policy, r.backup_id],
                    |row| row.get(0),
                ),
                Some(d) => self.tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM dr_copies WHERE id = ?1 AND account = ?2
                        AND region = ?3 AND policy = ?4 AND backup_id = ?5 AND status = 'completed'
                        AND expired IS NULL)",
                    params![id, d.account, d.region, r.policy, r.backup_id],
                    |row| row.get(0),
                ),
            }
            .map_err(|e| self.err(e))?;
            if !found {
                missing.push(id.clone());
            }
        }
        if missing.is_empty() {
            self.put_restore(r)?;
        }
        Ok(missing)
    }

    /// Errs when restore `id` is recorded `running` by a process that may
    /// still run.
    fn refuse_running(&mut self, id: &str) -> StateResult<()> {
        let row: Option<(String, Option<String>, Option<String>, String)> = self
            .tx
            .query_row(
                "SELECT status, holder, holder_since, started FROM restores WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((status, holder, since, started)) = row else {
            return Ok(());
        };
        if status != RestoreStatus::Running.as_str() {
            return Ok(());
        }
        let holder: Option<HolderId> = holder.and_then(|h| serde_json::from_str(&h).ok());
        let started = parse_ts(&self.path, &started)?;
        let since = since.map(|t| parse_ts(&self.path, &t)).transpose()?;
        if holder_gone(holder.as_ref(), since, started) {
            return Ok(());
        }
        let who = match &holder {
            Some(h) => format!("pid {} on {}", h.pid, h.host),
            None => "a Lifeboat that did not record its process".into(),
        };
        Err(StateError::Conflict(format!(
            "restore {id} is running already ({who}, since {}): wait for it to end, or stop that process and run the plan again (a process on another host or container counts as stopped {} hours after it took the restore)",
            since.unwrap_or(started).to_rfc3339(),
            ABANDONED_AFTER.num_hours()
        )))
    }

    /// Fails restore `r` as interrupted, if it is still `running` under
    /// the holder and since the time `r` records (the reaper read it a
    /// while ago; a resume meanwhile took it over). Returns whether it did:
    /// only then are its shares and launch image the reaper's to let go.
    pub fn claim_interrupted(
        &mut self,
        r: &RestoreRecord,
        problem: &str,
        at: DateTime<Utc>,
    ) -> StateResult<bool> {
        let holder = r
            .holder
            .as_ref()
            .map(|h| serde_json::to_string(h).expect("a holder serializes"));
        let n = self
            .tx
            .execute(
                "UPDATE restores SET status = ?1, problem = ?2, finished = ?3
                 WHERE id = ?4 AND status = ?5 AND holder IS ?6 AND holder_since IS ?7",
                params![
                    RestoreStatus::Failed.as_str(),
                    problem,
                    ts(at),
                    r.id,
                    RestoreStatus::Running.as_str(),
                    holder,
                    r.holder_since.map(ts)
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::restore::{Disk, Shape};
    use crate::state::holder::HolderId;
    use crate::state::{ArtifactKind, BackupRecord, BackupStatus, DrCopyRecord, DrStatus};
    use crate::state::{SnapshotRecord, Store};

    fn t(minute: u32) -> chrono::DateTime<chrono::Utc> {
        format!("2026-11-22T10:{minute:02}:00Z").parse().unwrap()
    }

    fn west() -> Destination {
        Destination {
            account: "main".into(),
            region: "us-west-2".into(),
        }
    }

    /// Backup `id` of volume vol-1 with a restore point, copied to us-west-2.
    fn backed_up_and_copied(s: &mut Store, id: &str, minute: u32, problems: &[&str]) {
        let snap = format!("snap-{id}");
        s.transaction(|tx| {
            tx.insert_backup(&BackupRecord {
                seq: 0,
                id: id.into(),
                policy: "web".into(),
                account: "main".into(),
                started: t(minute),
                finished: Some(t(minute + 1)),
                status: BackupStatus::Success,
                frozen: None,
                snapshots: vec![SnapshotRecord {
                    id: snap.clone(),
                    volume_id: "vol-1".into(),
                    target: "vol-1".into(),
                    region: "us-east-1".into(),
                    kind: ArtifactKind::Ebs,
                    image: None,
                }],
                problems: problems.iter().map(|p| p.to_string()).collect(),
            })?;
            let disk = Disk {
                volume_id: "vol-1".into(),
                device: String::new(),
                availability_zone: "us-east-1a".into(),
                size_gib: 8,
                volume_type: "gp3".into(),
                iops: None,
                throughput: None,
                encrypted: false,
                kms_key_id: None,
                delete_on_termination: false,
                tags: Default::default(),
            };
            tx.put_restore_point("web", id, "vol-1", "us-east-1", &Shape::Volume(disk))?;
            tx.put_dr_copy(&DrCopyRecord {
                id: format!("snap-copy-{id}"),
                destination: west(),
                kind: ArtifactKind::Ebs,
                arn: None,
                image: None,
                source_id: snap.clone(),
                source_region: "us-east-1".into(),
                source_account: "main".into(),
                target: "vol-1".into(),
                policy: "web".into(),
                backup_id: id.into(),
                backup_seq: 1,
                status: DrStatus::Completed,
                started: t(minute + 1),
                finished: Some(t(minute + 2)),
                expired: None,
                problem: String::new(),
                lock: None,
                lock_problem: String::new(),
            })
        })
        .unwrap();
    }

    fn expire_locally(s: &mut Store, id: &str) {
        s.transaction(|tx| {
            let at = chrono::Utc::now();
            tx.delete_snapshot(&format!("snap-{id}"), at)?;
            tx.delete_backup("web", id, at)
        })
        .unwrap();
    }

    #[test]
    fn a_backup_gone_locally_is_known_by_its_copies_with_its_restore_point_until_the_last_copy_goes(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("state.db")).unwrap();
        backed_up_and_copied(&mut s, "b1", 0, &["vol-2: snapshot failed"]);
        backed_up_and_copied(&mut s, "b2", 10, &[]);
        assert!(s.copied_backups().unwrap().is_empty(), "both are local");
        expire_locally(&mut s, "b1");

        let known = s.copied_backups().unwrap();
        assert_eq!(known.len(), 1, "{known:?}");
        let b = &known[0];
        assert_eq!((b.id.as_str(), b.started), ("b1", t(0)));
        assert_eq!(b.status, BackupStatus::Partial, "its problems came along");
        assert!(b.has_problem_with("vol-2"));
        assert_eq!(b.snapshots[0].id, "snap-b1");
        assert_eq!(b.snapshots[0].volume_id, "vol-1");
        assert!(
            s.restore_point("web", "b1", "vol-1").unwrap().is_some(),
            "kept for its copy"
        );

        // The last copy goes: nothing can restore it, its restore point goes.
        s.transaction(|tx| tx.delete_dr_copy(&west(), "snap-copy-b1"))
            .unwrap();
        assert!(s.restore_point("web", "b1", "vol-1").unwrap().is_none());
        assert!(s.copied_backups().unwrap().is_empty());
        // A backup with a copy keeps its restore point when its copy goes.
        s.transaction(|tx| tx.delete_dr_copy(&west(), "snap-copy-b2"))
            .unwrap();
        assert!(s.restore_point("web", "b2", "vol-1").unwrap().is_some());
    }

    #[test]
    fn a_new_backup_is_numbered_after_those_only_copies_remember() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("state.db")).unwrap();
        backed_up_and_copied(&mut s, "b1", 0, &[]);
        // The copy says it is backup 7 (numbered before the catalog emptied).
        s.transaction(|tx| {
            tx.tx
                .execute("UPDATE dr_copies SET backup_seq = 7", [])
                .map_err(|e| tx.err(e))?;
            Ok(())
        })
        .unwrap();
        expire_locally(&mut s, "b1");
        backed_up_and_copied(&mut s, "b2", 10, &[]);
        let b2 = s.backups(None).unwrap();
        assert_eq!(b2[0].seq, 8, "{b2:?}");
    }

    #[test]
    fn a_restore_starts_only_while_its_artifacts_are_recorded_and_then_holds_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("state.db")).unwrap();
        backed_up_and_copied(&mut s, "b1", 0, &[]);
        let mut r = RestoreRecord {
            id: "r-1".into(),
            kind: "volume".into(),
            target: "vol-1".into(),
            policy: "web".into(),
            backup_id: "b1".into(),
            backup_started: t(0),
            source: west().to_string(),
            account: "main".into(),
            region: "us-west-2".into(),
            drill: None,
            operator: "ops@host".into(),
            started: t(30),
            ready: None,
            finished: None,
            status: RestoreStatus::Running,
            problem: String::new(),
            resources: vec![],
            holder: None,
            holder_since: None,
        };
        let missing = s
            .transaction(|tx| tx.start_restore(&r, &["snap-copy-gone".into()]))
            .unwrap();
        assert_eq!(missing, ["snap-copy-gone"]);
        assert!(s.restores().unwrap().is_empty(), "nothing recorded");
        let missing = s
            .transaction(|tx| tx.start_restore(&r, &["snap-copy-b1".into()]))
            .unwrap();
        assert!(missing.is_empty());
        let held = s.in_use().unwrap();
        assert!(held[0].reads_copies("web", "b1", &west()));
        assert!(!held[0].reads_backup("web", "b1"));
        assert_eq!(s.load().unwrap().in_use, held);
        r.status = RestoreStatus::Completed;
        s.transaction(|tx| tx.put_restore(&r)).unwrap();
        assert!(s.in_use().unwrap().is_empty(), "released when it ends");
    }

    fn running(id: &str, holder: Option<HolderId>) -> RestoreRecord {
        RestoreRecord {
            id: id.into(),
            kind: "volume".into(),
            target: "vol-1".into(),
            policy: "web".into(),
            backup_id: "b1".into(),
            backup_started: t(0),
            source: west().to_string(),
            account: "main".into(),
            region: "us-west-2".into(),
            drill: None,
            operator: "ops@host".into(),
            started: Utc::now(),
            ready: None,
            finished: None,
            status: RestoreStatus::Running,
            problem: String::new(),
            resources: vec![],
            holder,
            holder_since: Some(Utc::now()),
        }
    }

    /// This process with another start time: a process that is gone.
    fn dead() -> HolderId {
        let me = HolderId::current();
        HolderId {
            start: me.start.map(|s| s + 1),
            ..me
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_restore_running_in_a_live_process_is_not_run_again_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("state.db")).unwrap();
        backed_up_and_copied(&mut s, "b1", 0, &[]);
        let ids = ["snap-copy-b1".to_string()];
        let first = running("r-1", Some(HolderId::current()));
        s.transaction(|tx| tx.start_restore(&first, &ids)).unwrap();
        // A second run of the same plan, while the first's process runs.
        let again = running("r-1", Some(dead()));
        let err = s
            .transaction(|tx| tx.start_restore(&again, &ids))
            .unwrap_err()
            .to_string();
        let me = HolderId::current();
        for said in [
            "restore r-1 is running already".to_string(),
            format!("pid {} on {}", me.pid, me.host),
            "wait for it to end".into(),
        ] {
            assert!(err.contains(&said), "{err}");
        }
        assert_eq!(s.restores().unwrap()[0].holder, first.holder, "kept");
        // Its process gone, a run takes it over.
        let mut gone = first.clone();
        gone.holder = Some(dead());
        s.transaction(|tx| tx.put_restore(&gone)).unwrap();
        let resumed = running("r-1", Some(HolderId::current()));
        let missing = s
            .transaction(|tx| tx.start_restore(&resumed, &ids))
            .unwrap();
        assert!(missing.is_empty());
        assert_eq!(s.restores().unwrap()[0].holder, resumed.holder);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_reaper_claims_only_the_run_it_read_not_one_that_resumed_since() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("state.db")).unwrap();
        let read = running("r-1", Some(dead()));
        s.transaction(|tx| tx.put_restore(&read)).unwrap();
        assert!(read.interrupted());
        // Resumed (another holder, since later) after the reaper read it.
        let mut resumed = read.clone();
        resumed.holder = Some(HolderId::current());
        resumed.holder_since = Some(Utc::now() + chrono::Duration::seconds(1));
        s.transaction(|tx| tx.put_restore(&resumed)).unwrap();
        let at = Utc::now();
        let claimed = s
            .transaction(|tx| tx.claim_interrupted(&read, "interrupted", at))
            .unwrap();
        assert!(!claimed);
        let now = &s.restores().unwrap()[0];
        assert_eq!(now.status, RestoreStatus::Running);
        assert_eq!(now.problem, "");
        // What it read is what is recorded: claimed.
        let claimed = s
            .transaction(|tx| tx.claim_interrupted(&resumed, "interrupted", at))
            .unwrap();
        assert!(claimed);
        let now = &s.restores().unwrap()[0];
        assert_eq!(
            (now.status, now.problem.as_str()),
            (RestoreStatus::Failed, "interrupted")
        );
        assert!(s.in_use().unwrap().is_empty(), "let go of by retention");
    }

    #[test]
    fn an_unseen_holder_is_timed_from_when_it_took_the_restore_not_from_the_first_start() {
        // A holder in another pid namespace cannot be looked at.
        let elsewhere = HolderId {
            pid_ns: Some("pid:[1]".into()),
            ..HolderId::current()
        };
        let mut r = running("r-1", Some(elsewhere));
        r.started = Utc::now() - chrono::Duration::days(1);
        r.holder_since = Some(Utc::now() - chrono::Duration::minutes(5));
        assert!(!r.interrupted(), "resumed five minutes ago");
        r.holder_since = Some(Utc::now() - chrono::Duration::hours(13));
        assert!(r.interrupted());
        // Records from before the time was recorded: from the start.
        r.holder_since = None;
        assert!(r.interrupted());
    }

    #[test]
    fn a_running_restore_without_a_holder_is_interrupted_twelve_hours_after_its_start() {
        let mut r = running("r-1", None);
        r.holder_since = None;
        r.started = Utc::now() - chrono::Duration::hours(1);
        assert!(!r.interrupted(), "an earlier Lifeboat may still run it");
        r.started = Utc::now() - chrono::Duration::hours(13);
        assert!(r.interrupted());
        r.status = RestoreStatus::Failed;
        assert!(!r.interrupted(), "ended");
    }

    #[test]
    fn a_copy_retention_expired_does_not_start_a_restore() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("state.db")).unwrap();
        backed_up_and_copied(&mut s, "b1", 0, &[]);
        s.transaction(|tx| {
            tx.tx
                .execute("UPDATE dr_copies SET expired = '2026-11-23T00:00:00Z'", [])
                .map_err(|e| tx.err(e))?;
            Ok(())
        })
        .unwrap();
        let r = running("r-1", Some(HolderId::current()));
        let missing = s
            .transaction(|tx| tx.start_restore(&r, &["snap-copy-b1".into()]))
            .unwrap();
        assert_eq!(missing, ["snap-copy-b1"]);
        assert!(s.restores().unwrap().is_empty());
    }

    #[test]
    fn copies_from_before_their_volume_was_recorded_restore_no_disk_and_say_problems_are_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("state.db")).unwrap();
        backed_up_and_copied(&mut s, "b1", 0, &[]);
        // A second disk's copy of the same backup.
        let mut second = s.dr_copies(None).unwrap()[0].clone();
        second.id = "snap-copy-b1-2".into();
        second.source_id = "snap-b1-2".into();
        s.transaction(|tx| tx.put_dr_copy(&second)).unwrap();
        expire_locally(&mut s, "b1");
        s.transaction(|tx| {
            tx.tx
                .execute(
                    "UPDATE dr_copies SET volume_id = NULL, backup_problems = NULL",
                    [],
                )
                .map_err(|e| tx.err(e))?;
            Ok(())
        })
        .unwrap();
        let known = s.copied_backups().unwrap();
        assert_eq!(known.len(), 1, "{known:?}");
        assert!(known[0].snapshots.is_empty(), "{:?}", known[0].snapshots);
        assert_eq!(known[0].problems, [crate::state::PROBLEMS_UNKNOWN_NOTE]);
        assert_eq!(known[0].status, BackupStatus::Success, "no known problem");
        assert!(!known[0].has_problem_with("vol-1"));
    }
}
