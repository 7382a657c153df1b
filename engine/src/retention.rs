//! Retention: which backups fall outside a policy's generations.
//!
//! A successful, unfrozen backup is one generation. The newest `generations`
//! of them are kept; older successful backups expire. Partial and failed
//! backups never count, and expire once they are older than the oldest kept
//! generation (until then they may hold the only copy of some target).
//! Frozen backups and backups still running are never touched.

use crate::state::{BackupRecord, BackupStatus};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry<'a> {
    pub backup: &'a BackupRecord,
    pub reason: String,
}

/// Orders ids so that `T-10` comes after `T-9` (ids of one second share a
/// prefix and differ in a numeric suffix).
fn id_order(id: &str) -> (usize, &str) {
    (id.len(), id)
}

/// The backups of one policy that retention deletes when the policy keeps
/// `generations`. `backups` may be in any order and contain other policies'
/// backups (they are ignored).
pub fn expired<'a>(policy: &str, backups: &'a [BackupRecord], generations: u32) -> Vec<Expiry<'a>> {
    let mut mine: Vec<&BackupRecord> = backups
        .iter()
        .filter(|b| b.policy == policy && b.frozen.is_none())
        .collect();
    // Newest first; the id breaks ties so the order never depends on input order.
    mine.sort_by(|a, b| {
        b.started
            .cmp(&a.started)
            .then_with(|| id_order(&b.id).cmp(&id_order(&a.id)))
    });
    let mut out = Vec::new();
    let mut rank = 0u32;
    let mut oldest_kept = None;
    for b in &mine {
        if b.status == BackupStatus::Success {
            rank += 1;
            if rank > generations {
                out.push(Expiry {
                    backup: b,
                    reason: format!("retention: generation {rank} of {generations}"),
                });
            } else if rank == generations {
                oldest_kept = Some(b.started);
            }
        }
    }
    // Partial and failed backups never count, and go once older than the
    // oldest kept generation. So that they cannot pile up while every backup
    // is partial (a target gone with auto_remove_targets = "no"), only the
    // newest `generations` of them are kept once a newer complete backup
    // exists. Without any success, they may hold the only copies: kept.
    let newest_success = mine
        .iter()
        .find(|b| b.status == BackupStatus::Success)
        .map(|b| b.started);
    let mut incomplete_rank = 0u32;
    for b in &mine {
        if !matches!(b.status, BackupStatus::Partial | BackupStatus::Failed) {
            continue;
        }
        incomplete_rank += 1;
        let older_than_kept = oldest_kept.is_some_and(|limit| b.started < limit);
        let surplus =
            incomplete_rank > generations && newest_success.is_some_and(|t| b.started < t);
        if older_than_kept {
            out.push(Expiry {
                backup: b,
                reason: format!(
                    "retention: {} backup older than generation {generations}",
                    b.status.as_str()
                ),
            });
        } else if surplus {
            out.push(Expiry {
                backup: b,
                reason: format!(
                    "retention: {} backup {incomplete_rank} of {generations} incomplete ones kept, older than the newest success",
                    b.status.as_str()
                ),
            });
        }
    }
    out.sort_by(|a, b| {
        a.backup
            .started
            .cmp(&b.backup.started)
            .then_with(|| a.backup.id.cmp(&b.backup.id))
    });
    out
}

/// Everything of a removed policy that goes with it: every backup but the
/// frozen ones and those still running.
pub fn orphaned<'a>(policy: &str, backups: &'a [BackupRecord]) -> Vec<Expiry<'a>> {
    backups
        .iter()
        .filter(|b| b.policy == policy && b.frozen.is_none() && b.status != BackupStatus::Running)
        .map(|b| Expiry {
            backup: b,
            reason: "policy removed from configuration".to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Frozen;

    fn b(id: &str, hour: u32, status: BackupStatus) -> BackupRecord {
        BackupRecord {
            id: id.into(),
            policy: "web".into(),
            account: "main".into(),
            started: format!("2026-11-22T{hour:02}:00:00Z").parse().unwrap(),
            finished: None,
            status,
            frozen: None,
            snapshots: vec![],
            problems: vec![],
        }
    }

    fn ids(e: &[Expiry<'_>]) -> Vec<String> {
        e.iter()
            .map(|x| format!("{} {}", x.backup.id, x.reason))
            .collect()
    }

    #[test]
    fn keeps_the_newest_generations_and_expires_the_rest_oldest_first() {
        use BackupStatus::*;
        let all = vec![
            b("b1", 1, Success),
            b("b2", 2, Success),
            b("b3", 3, Success),
            b("b4", 4, Success),
        ];
        assert_eq!(
            ids(&expired("web", &all, 2)),
            vec![
                "b1 retention: generation 4 of 2",
                "b2 retention: generation 3 of 2"
            ]
        );
        assert!(expired("web", &all, 4).is_empty());
    }

    #[test]
    fn failed_and_partial_backups_do_not_count_and_go_once_older_than_the_oldest_kept() {
        use BackupStatus::*;
        let all = vec![
            b("f0", 0, Failed),
            b("s1", 1, Success),
            b("p2", 2, Partial),
            b("s3", 3, Success),
            b("r4", 4, Running),
        ];
        // Two generations: s1 and s3 are kept; f0 is older than s1, p2 is not.
        assert_eq!(
            ids(&expired("web", &all, 2)),
            vec!["f0 retention: failed backup older than generation 2"]
        );
        // One generation: s1 expires, and so do f0 and p2 (older than s3); the running one stays.
        assert_eq!(
            ids(&expired("web", &all, 1)),
            vec![
                "f0 retention: failed backup older than generation 1",
                "s1 retention: generation 2 of 1",
                "p2 retention: partial backup older than generation 1"
            ]
        );
    }

    #[test]
    fn incomplete_backups_do_not_pile_up_once_a_newer_success_exists() {
        use BackupStatus::*;
        let all = vec![
            b("s0", 0, Success),
            b("p1", 1, Partial),
            b("p2", 2, Partial),
            b("p3", 3, Partial),
            b("s4", 4, Success),
            b("p5", 5, Partial),
        ];
        // Two generations: s0 and s4 kept. p1..p3 are newer than s0 so the
        // "older than kept" rule spares them, but only two incomplete ones
        // (p5, p3) are kept; p2 and p1 are surplus.
        let got = ids(&expired("web", &all, 2));
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got[0].starts_with("p1 ") && got[1].starts_with("p2 "),
            "{got:?}"
        );
        // With no success at all, every partial is kept.
        let only_partial: Vec<_> = (0..5).map(|h| b(&format!("p{h}"), h, Partial)).collect();
        assert!(expired("web", &only_partial, 1).is_empty());
    }

    #[test]
    fn ids_of_the_same_second_order_by_their_numeric_suffix() {
        use BackupStatus::*;
        // Both started in the same second.
        let all = vec![b("T-10", 1, Success), b("T-9", 1, Success)];
        assert_eq!(
            ids(&expired("web", &all, 1)),
            vec!["T-9 retention: generation 2 of 1"]
        );
    }

    #[test]
    fn frozen_backups_never_count_and_never_expire() {
        use BackupStatus::*;
        let mut all = vec![
            b("s1", 1, Success),
            b("s2", 2, Success),
            b("s3", 3, Success),
        ];
        all[2].frozen = Some(Frozen {
            name: "audit".into(),
            at: all[2].started,
        });
        assert_eq!(
            ids(&expired("web", &all, 1)),
            vec!["s1 retention: generation 2 of 1"]
        );
        assert_eq!(orphaned("web", &all).len(), 2);
    }
}
