//! Which artifacts of a backup go where, and which backups are copied at
//! all: pure over the applied policy and the catalog.

use std::collections::BTreeMap;

use lifeboat_schema::{Dr, DrRegion};

use crate::state::{
    ArtifactKind, BackupRecord, BackupStatus, Destination, DrRun, DrStatus, SnapshotRecord,
};

/// The artifacts a copy call is made for: EBS snapshots of volumes and
/// instances, AMIs (CopyImage brings their snapshots along, so an AMI's
/// own snapshot records are left out), DB and cluster snapshots.
pub fn copied(s: &SnapshotRecord) -> bool {
    match s.kind {
        ArtifactKind::Ebs => s.image.is_none(),
        ArtifactKind::Image | ArtifactKind::DbSnapshot | ArtifactKind::DbClusterSnapshot => true,
    }
}

/// Every destination of the policy's backups for artifacts in `regions`
/// of `account`, and which of `artifacts` each receives. A region of the
/// policy's own account receives only artifacts not already in it (two
/// regions can copy to each other); the cross-account `"original"` region
/// is each artifact's own.
pub fn routes<'a>(
    dr: &Dr,
    account: &str,
    artifacts: impl IntoIterator<Item = &'a SnapshotRecord>,
) -> BTreeMap<Destination, Vec<&'a SnapshotRecord>> {
    let mut out: BTreeMap<Destination, Vec<&SnapshotRecord>> = BTreeMap::new();
    for s in artifacts.into_iter().filter(|s| copied(s)) {
        for r in &dr.regions {
            if *r != s.region {
                out.entry(Destination {
                    account: account.to_string(),
                    region: r.clone(),
                })
                .or_default()
                .push(s);
            }
        }
        if let Some(x) = &dr.cross_account {
            for r in &x.regions {
                let region = match r {
                    DrRegion::Original => s.region.clone(),
                    DrRegion::Named(n) => n.clone(),
                };
                let list = out
                    .entry(Destination {
                        account: x.to.clone(),
                        region,
                    })
                    .or_default();
                if !list.iter().any(|t| t.id == s.id) {
                    list.push(s);
                }
            }
        }
    }
    out
}

/// Is `backup` (just finished) to be copied, under `every`? The first
/// successful backup is, then every `every`th successful one after the
/// last copied. Counted on the DR runs, which record every successful
/// backup as copied or skipped: local retention may already have deleted
/// the backups in between. A backup that did not succeed is never copied.
pub fn due(dr: &Dr, backup: &BackupRecord, runs: &[DrRun]) -> bool {
    if backup.status != BackupStatus::Success {
        return false;
    }
    if dr.every <= 1 {
        return true;
    }
    let mine = || {
        runs.iter()
            .filter(|r| r.policy == backup.policy && r.backup_id != backup.id)
    };
    // A run that failed or timed out is no copy: the next backup is due
    // as if it had been skipped, so a failure never widens the gap.
    let Some(last) = mine()
        .filter(|r| r.status == DrStatus::Completed || r.status.is_open())
        .map(|r| r.backup_seq)
        .max()
    else {
        return true;
    };
    let skipped: std::collections::BTreeSet<i64> = mine()
        .filter(|r| r.status == DrStatus::Skipped && r.backup_seq > last)
        .map(|r| r.backup_seq)
        .collect();
    skipped.len() + 1 >= dr.every as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat_schema::{CrossAccount, KeyDetection};

    fn dr(regions: &[&str], cross: Option<&[DrRegion]>) -> Dr {
        Dr {
            every: 1,
            timeout_secs: 60,
            regions: regions.iter().map(|r| r.to_string()).collect(),
            generations: None,
            concurrency: None,
            cross_account: cross.map(|c| CrossAccount {
                to: "vault".into(),
                regions: c.to_vec(),
                keep_original: true,
            }),
            encryption_key_detection: KeyDetection::Strict,
            lock: None,
        }
    }

    fn snap(id: &str, region: &str, kind: ArtifactKind, image: Option<&str>) -> SnapshotRecord {
        SnapshotRecord {
            id: id.into(),
            volume_id: "vol-1".into(),
            target: "i-1".into(),
            region: region.into(),
            kind,
            image: image.map(str::to_string),
        }
    }

    fn dest(account: &str, region: &str) -> Destination {
        Destination {
            account: account.into(),
            region: region.into(),
        }
    }

    #[test]
    fn mixed_regions_copy_only_what_is_not_already_there() {
        let arts = [
            snap("snap-east", "us-east-1", ArtifactKind::Ebs, None),
            snap("snap-west", "us-west-2", ArtifactKind::Ebs, None),
            snap("ami-1", "us-east-1", ArtifactKind::Image, None),
            snap("snap-of-ami", "us-east-1", ArtifactKind::Ebs, Some("ami-1")),
        ];
        let r = routes(&dr(&["us-east-1", "us-west-2"], None), "main", &arts);
        let ids = |d: &Destination| r[d].iter().map(|s| s.id.as_str()).collect::<Vec<_>>();
        assert_eq!(ids(&dest("main", "us-west-2")), ["snap-east", "ami-1"]);
        assert_eq!(ids(&dest("main", "us-east-1")), ["snap-west"]);
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn cross_account_original_follows_each_artifact() {
        let arts = [
            snap("snap-east", "us-east-1", ArtifactKind::Ebs, None),
            snap("snap-west", "us-west-2", ArtifactKind::Ebs, None),
        ];
        let d = dr(
            &[],
            Some(&[DrRegion::Original, DrRegion::Named("us-west-2".into())]),
        );
        let r = routes(&d, "main", &arts);
        let ids = |d: &Destination| r[d].iter().map(|s| s.id.as_str()).collect::<Vec<_>>();
        assert_eq!(ids(&dest("vault", "us-east-1")), ["snap-east"]);
        // snap-west reaches us-west-2 once, through "original" and by name.
        assert_eq!(ids(&dest("vault", "us-west-2")), ["snap-east", "snap-west"]);
    }

    fn backup(seq: i64, status: BackupStatus) -> BackupRecord {
        BackupRecord {
            id: format!("b{seq}"),
            policy: "web".into(),
            account: "main".into(),
            seq,
            started: chrono::Utc::now(),
            finished: None,
            status,
            frozen: None,
            snapshots: vec![],
            problems: vec![],
        }
    }

    fn run(seq: i64, status: DrStatus) -> DrRun {
        DrRun {
            policy: "web".into(),
            backup_id: format!("b{seq}"),
            backup_seq: seq,
            destination: dest("main", "us-west-2"),
            status,
            started: chrono::Utc::now(),
            updated: chrono::Utc::now(),
            detail: String::new(),
        }
    }

    #[test]
    fn every_nth_successful_backup_is_copied() {
        let mut d = dr(&["us-west-2"], None);
        d.every = 3;
        let backups: Vec<_> = (1..=7)
            .map(|n| {
                backup(
                    n,
                    if n == 3 {
                        BackupStatus::Partial
                    } else {
                        BackupStatus::Success
                    },
                )
            })
            .collect();
        let mut runs = Vec::new();
        let mut copied = Vec::new();
        for b in &backups {
            let is_due = due(&d, b, &runs);
            if is_due {
                copied.push(b.seq);
            }
            if b.status == BackupStatus::Success {
                runs.push(run(
                    b.seq,
                    if is_due {
                        DrStatus::Completed
                    } else {
                        DrStatus::Skipped
                    },
                ));
            }
        }
        // 1 copied; then 2, 4 skipped (3 failed and does not count), 5
        // copied; 6, 7 skipped.
        assert_eq!(copied, [1, 5]);
        assert!(
            !due(&d, &backups[2], &runs),
            "a partial backup is never copied"
        );
    }
}
