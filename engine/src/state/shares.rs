//! Who holds each share of an artifact with another AWS account. A share
//! is one grant in AWS (a snapshot's, an AMI's or a DB snapshot's create
//! permission for an account id), but several things may need it at once:
//! two restores into the same account, a restore and a DR copy in flight.
//! Each records itself as a holder before it shares, and the share is
//! undone only by the last holder to let go (see `crate::share`).
//!
//! A row marked `releasing` is a holder in the middle of letting go: it
//! no longer counts for the others, so that two holders releasing at once
//! cannot each leave the unshare to the other.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::store::{parse_ts, ts, StateError, StateResult, Store, Tx};
use super::ArtifactKind;

/// One holder of one share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareHold {
    pub artifact_id: String,
    pub kind: ArtifactKind,
    /// The artifact's region.
    pub region: String,
    /// The AWS account id it is shared with.
    pub shared_with: String,
    /// The configured account (by name) that owns the artifact: the one
    /// whose credentials share and unshare it.
    pub owner: String,
    /// `restore:ID`, or `dr:POLICY/BACKUP/REGION:ACCOUNT` (renamed with its
    /// policy: `Tx::move_policy`).
    pub holder: String,
    pub since: DateTime<Utc>,
    /// When this holder started letting go.
    pub releasing: Option<DateTime<Utc>>,
}

/// The holder of a restore's shares.
pub fn restore_holder(restore_id: &str) -> String {
    format!("restore:{restore_id}")
}

/// The holder of a DR run's shares.
pub fn dr_holder(policy: &str, backup_id: &str, destination: &super::Destination) -> String {
    format!("dr:{policy}/{backup_id}/{destination}")
}

/// The policy of a DR run's holder.
pub fn dr_holder_policy(holder: &str) -> Option<&str> {
    holder.strip_prefix("dr:")?.split('/').next()
}

impl Store {
    /// Every share held, by `holder` only when given.
    pub fn share_holds(&self, holder: Option<&str>) -> StateResult<Vec<ShareHold>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT artifact_id, kind, region, shared_with, owner, holder, since, releasing
                 FROM share_holds WHERE ?1 IS NULL OR holder = ?1
                 ORDER BY since, artifact_id, holder",
            )
            .map_err(|e| self.err(e))?;
        type Row = ([String; 7], Option<String>);
        let rows: Vec<Row> = st
            .query_map(params![holder], |r| {
                Ok((
                    [
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ],
                    r.get(7)?,
                ))
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|(s, releasing)| {
                let [artifact_id, kind, region, shared_with, owner, holder, since] = s;
                let kind = ArtifactKind::parse(&kind).ok_or_else(|| StateError::Corrupt {
                    path: self.path.clone(),
                    message: format!("share of {artifact_id} held by {holder}: kind {kind:?}"),
                })?;
                Ok(ShareHold {
                    since: parse_ts(&self.path, &since)?,
                    releasing: releasing.map(|t| parse_ts(&self.path, &t)).transpose()?,
                    artifact_id,
                    kind,
                    region,
                    shared_with,
                    owner,
                    holder,
                })
            })
            .collect()
    }
}

impl Tx<'_> {
    /// Records `h` as a holder of its share (again: it holds, and stops
    /// letting go if it had started to).
    pub fn hold_share(&mut self, h: &ShareHold) -> StateResult<()> {
        self.tx
            .execute(
                "INSERT INTO share_holds (artifact_id, kind, region, shared_with, owner, holder, since)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (artifact_id, region, shared_with, holder) DO UPDATE SET releasing = NULL",
                params![
                    h.artifact_id,
                    h.kind.as_str(),
                    h.region,
                    h.shared_with,
                    h.owner,
                    h.holder,
                    ts(h.since)
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Marks `holder` as letting go of the share of `artifact_id` (when it
    /// holds it). Returns how many other holders still hold it, or `None`
    /// when the holder is a restore running again (resumed since it ended
    /// or was reaped): the hold is the new run's, and stays.
    pub fn releasing_share(
        &mut self,
        artifact_id: &str,
        region: &str,
        shared_with: &str,
        holder: &str,
        at: DateTime<Utc>,
    ) -> StateResult<Option<usize>> {
        if self.held_again(holder)? {
            return Ok(None);
        }
        self.tx
            .execute(
                "UPDATE share_holds SET releasing = ?5
                 WHERE artifact_id = ?1 AND region = ?2 AND shared_with = ?3 AND holder = ?4",
                params![artifact_id, region, shared_with, holder, ts(at)],
            )
            .map_err(|e| self.err(e))?;
        self.holders(artifact_id, region, shared_with).map(Some)
    }

    /// Forgets `holder`'s hold of the share. Returns how many other holders
    /// still hold it (a restore running again keeps its hold, and counts).
    pub fn release_share(
        &mut self,
        artifact_id: &str,
        region: &str,
        shared_with: &str,
        holder: &str,
    ) -> StateResult<usize> {
        if self.held_again(holder)? {
            return Ok(self.holders(artifact_id, region, shared_with)?.max(1));
        }
        self.tx
            .execute(
                "DELETE FROM share_holds
                 WHERE artifact_id = ?1 AND region = ?2 AND shared_with = ?3 AND holder = ?4",
                params![artifact_id, region, shared_with, holder],
            )
            .map_err(|e| self.err(e))?;
        self.holders(artifact_id, region, shared_with)
    }

    /// Whether `holder` is a restore that is `running`, or a DR run that is
    /// open: holds are let go of only once their holder ended (a restore
    /// records its outcome first, a DR run settles first) or was reaped,
    /// so a running one is a run that took it over since, and its hold
    /// stays.
    fn held_again(&self, holder: &str) -> StateResult<bool> {
        let (sql, key) = if let Some(id) = holder.strip_prefix("restore:") {
            (
                "SELECT EXISTS (SELECT 1 FROM restores WHERE id = ?1 AND status = 'running')",
                id,
            )
        } else if holder.starts_with("dr:") {
            (
                "SELECT EXISTS (SELECT 1 FROM dr_runs
                    WHERE 'dr:' || policy || '/' || backup_id || '/' || region || ':' || account = ?1
                    AND status IN ('pending', 'in_progress'))",
                holder,
            )
        } else {
            return Ok(false);
        };
        self.tx
            .query_row(sql, params![key], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Renames the DR holders of policy `from` to `to` (with the policy).
    pub(super) fn move_dr_holders(&mut self, from: &str, to: &str) -> StateResult<()> {
        let (old, new) = (format!("dr:{from}/"), format!("dr:{to}/"));
        self.tx
            .execute(
                "UPDATE share_holds SET holder = ?2 || substr(holder, length(?1) + 1)
                 WHERE substr(holder, 1, length(?1)) = ?1",
                params![old, new],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The holders of a share that are not letting go of it.
    fn holders(&self, artifact_id: &str, region: &str, shared_with: &str) -> StateResult<usize> {
        let n: i64 = self
            .tx
            .query_row(
                "SELECT COUNT(*) FROM share_holds
                 WHERE artifact_id = ?1 AND region = ?2 AND shared_with = ?3 AND releasing IS NULL",
                params![artifact_id, region, shared_with],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(holder: &str) -> ShareHold {
        ShareHold {
            artifact_id: "snap-1".into(),
            kind: ArtifactKind::Ebs,
            region: "us-east-1".into(),
            shared_with: "222222222222".into(),
            owner: "main".into(),
            holder: holder.into(),
            since: "2026-11-22T10:00:00Z".parse().unwrap(),
            releasing: None,
        }
    }

    #[test]
    fn two_holders_letting_go_at_once_leave_the_unshare_to_one_of_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("state.db")).unwrap();
        let now = Utc::now();
        s.transaction(|tx| {
            tx.hold_share(&hold("restore:a"))?;
            tx.hold_share(&hold("dr:web/b/us-east-1:vault"))
        })
        .unwrap();
        let (k, r, w) = ("snap-1", "us-east-1", "222222222222");
        // The first to start letting go sees the other still holding...
        let others = s
            .transaction(|tx| tx.releasing_share(k, r, w, "restore:a", now))
            .unwrap();
        assert_eq!(others, Some(1));
        // ... and the second, while the first has not forgotten its row,
        // counts it out: it unshares.
        let others = s
            .transaction(|tx| tx.releasing_share(k, r, w, "dr:web/b/us-east-1:vault", now))
            .unwrap();
        assert_eq!(others, Some(0));
        // Holding again stops letting go.
        s.transaction(|tx| tx.hold_share(&hold("restore:a")))
            .unwrap();
        let left = s
            .transaction(|tx| tx.release_share(k, r, w, "dr:web/b/us-east-1:vault"))
            .unwrap();
        assert_eq!(left, 1);
        let held = s.share_holds(None).unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].holder, "restore:a");
        assert_eq!(held[0].releasing, None);
        assert_eq!(s.share_holds(Some("restore:b")).unwrap(), vec![]);
    }

    #[test]
    fn a_restore_running_again_keeps_its_holds_from_a_late_release() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("state.db")).unwrap();
        s.transaction(|tx| {
            tx.hold_share(&hold("restore:r-1"))?;
            tx.tx
                .execute(
                    "INSERT INTO restores (id, kind, target, policy, backup_id, backup_started,
                        source, account, region, operator, started, status)
                     VALUES ('r-1', 'volume', 'vol-1', 'web', 'b1', '2026-11-22T10:00:00Z',
                        'local', 'main', 'us-east-1', 'ops', '2026-11-22T10:00:00Z', 'running')",
                    [],
                )
                .map_err(|e| tx.err(e))?;
            Ok(())
        })
        .unwrap();
        let (k, r, w) = ("snap-1", "us-east-1", "222222222222");
        let now = Utc::now();
        // Running (resumed since a reaper or its earlier run read it).
        let others = s
            .transaction(|tx| tx.releasing_share(k, r, w, "restore:r-1", now))
            .unwrap();
        assert_eq!(others, None);
        let left = s
            .transaction(|tx| tx.release_share(k, r, w, "restore:r-1"))
            .unwrap();
        assert_eq!(left, 1, "the running restore still holds it");
        assert_eq!(s.share_holds(None).unwrap().len(), 1);
        assert_eq!(s.share_holds(None).unwrap()[0].releasing, None);
        // Ended: let go.
        s.transaction(|tx| {
            tx.tx
                .execute("UPDATE restores SET status = 'failed'", [])
                .map_err(|e| tx.err(e))?;
            Ok(())
        })
        .unwrap();
        let others = s
            .transaction(|tx| tx.releasing_share(k, r, w, "restore:r-1", now))
            .unwrap();
        assert_eq!(others, Some(0));
        let left = s
            .transaction(|tx| tx.release_share(k, r, w, "restore:r-1"))
            .unwrap();
        assert_eq!(left, 0);
        assert!(s.share_holds(None).unwrap().is_empty());
    }

    #[test]
    fn a_dr_runs_holds_follow_its_policy_when_renamed() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("state.db")).unwrap();
        s.transaction(|tx| {
            let web = crate::state::model::PolicyState {
                name: "web".into(),
                account: "main".into(),
                generations: 3,
                enabled: true,
                description: None,
                selectors: vec![],
                excludes: vec![],
                auto_remove_targets: Default::default(),
                schedules: vec![],
                options: Default::default(),
                dr: None,
                template: false,
                from_template: None,
            };
            let web = serde_json::to_value(&web).unwrap();
            tx.put_object(&crate::addr::Address::policy("web"), &web)?;
            tx.hold_share(&hold("dr:web/b/us-east-1:vault"))?;
            tx.hold_share(&hold("dr:webby/b/us-east-1:vault"))?;
            tx.hold_share(&hold("restore:web"))
        })
        .unwrap();
        s.transaction(|tx| tx.move_policy("web", "site")).unwrap();
        let holders: Vec<String> = s
            .share_holds(None)
            .unwrap()
            .into_iter()
            .map(|h| h.holder)
            .collect();
        assert_eq!(
            holders,
            [
                "dr:site/b/us-east-1:vault",
                "dr:webby/b/us-east-1:vault",
                "restore:web"
            ]
        );
    }
}
