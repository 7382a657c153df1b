//! The fake's EBS Snapshot Lock. It fills an emulator hole: the emulator
//! implements neither LockSnapshot nor DescribeLockedSnapshots, so what a
//! lock does (its mode, its expiry, a cooling-off period, a delete refused
//! while it holds, a governance lock removed by someone) is shown here.

use super::*;

/// One snapshot's lock in the fake's world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeLock {
    pub mode: lifeboat_schema::LockMode,
    pub expires: chrono::DateTime<chrono::Utc>,
    /// When a compliance lock's cooling-off period ends.
    pub cool_off_until: Option<chrono::DateTime<chrono::Utc>>,
}

/// The locks, and every LockSnapshot call.
#[derive(Debug, Default)]
pub struct LockWorld {
    /// Locks by snapshot id.
    pub locks: BTreeMap<String, FakeLock>,
    /// Every LockSnapshot call, as (account name, region, request).
    pub requests: Vec<(String, String, SnapshotLockRequest)>,
    /// Snapshots whose LockSnapshot fails (as the emulator's does, for
    /// every snapshot).
    pub failing: std::collections::BTreeSet<String>,
}

impl FakeLock {
    fn state(&self, now: chrono::DateTime<chrono::Utc>) -> &'static str {
        if self.expires <= now {
            return "expired";
        }
        match self.mode {
            lifeboat_schema::LockMode::Governance => "governance",
            lifeboat_schema::LockMode::Compliance
                if self.cool_off_until.is_some_and(|t| t > now) =>
            {
                "compliance-cooloff"
            }
            lifeboat_schema::LockMode::Compliance => "compliance",
        }
    }

    fn report(&self, id: &str, now: chrono::DateTime<chrono::Utc>) -> SnapshotLock {
        SnapshotLock {
            snapshot_id: id.to_string(),
            state: self.state(now).to_string(),
            expires_on: Some(self.expires),
        }
    }
}

impl FakeEc2 {
    pub(super) fn fake_lock_snapshot(
        &self,
        req: &SnapshotLockRequest,
    ) -> CloudResult<SnapshotLock> {
        let mut w = self.enter("LockSnapshot", Some(&req.snapshot_id))?;
        let now = w.now();
        w.copies
            .locks
            .requests
            .push((self.account.clone(), self.region.clone(), req.clone()));
        if w.copies.locks.failing.contains(&req.snapshot_id) {
            return Err(self.error(
                ErrorKind::Other,
                "ec2:LockSnapshot",
                &req.snapshot_id,
                "InternalError",
                "injected LockSnapshot failure",
            ));
        }
        let here = w
            .snapshots
            .get(&req.snapshot_id)
            .is_some_and(|s| s.region == self.region);
        if !here {
            return Err(self.error(
                ErrorKind::NotFound,
                "ec2:LockSnapshot",
                &req.snapshot_id,
                "InvalidSnapshot.NotFound",
                "no such snapshot",
            ));
        }
        let expires = match req.until {
            LockUntil::Days(d) => now + chrono::Duration::days(i64::from(d)),
            LockUntil::At(t) => t,
        };
        let lock = FakeLock {
            mode: req.mode,
            expires,
            cool_off_until: req
                .cool_off_hours
                .map(|h| now + chrono::Duration::hours(i64::from(h))),
        };
        let out = lock.report(&req.snapshot_id, now);
        w.copies.locks.locks.insert(req.snapshot_id.clone(), lock);
        Ok(out)
    }

    pub(super) fn fake_locked_snapshots(
        &self,
        ids: &[String],
        token: Option<String>,
    ) -> CloudResult<Page<SnapshotLock>> {
        let w = self.enter("DescribeLockedSnapshots", None)?;
        self.filter_size("DescribeLockedSnapshots", ids.len())?;
        let now = w.now();
        let all = w
            .copies
            .locks
            .locks
            .iter()
            .filter(|(id, _)| ids.contains(id))
            .filter(|(id, _)| {
                w.snapshots
                    .get(*id)
                    .is_some_and(|s| s.region == self.region)
            })
            .map(|(id, l)| l.report(id, now))
            .collect();
        Ok(self.page("DescribeLockedSnapshots", all, token))
    }

    /// DeleteSnapshot of a snapshot whose lock holds fails, as in AWS.
    pub(super) fn refuse_locked(&self, w: &World, id: &str) -> CloudResult<()> {
        match w.copies.locks.locks.get(id) {
            Some(l) if l.expires > w.now() => Err(self.error(
                ErrorKind::Conflict,
                "ec2:DeleteSnapshot",
                id,
                "SnapshotLocked",
                "the snapshot is locked and cannot be deleted",
            )),
            _ => Ok(()),
        }
    }
}
