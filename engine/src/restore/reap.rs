//! Restores whose process died midway (killed, a host rebooted): their
//! record says `running` with a holder that is gone. Every writing restore
//! command, and the runner, reaps them first: the shares they held are
//! let go (the last holder unshares), their launch image is deregistered,
//! and the record fails with a problem saying who stopped and how to go
//! on. What they created (instances, volumes, databases) stays: it is the
//! operator's now, tagged with the restore's id.
//!
//! A restore that ended without letting go of everything (an unshare or a
//! deregistration that failed) is tried again at the same time.

use std::sync::Arc;

use chrono::Utc;

use super::plan::Accounts;
use super::run::leftovers;
use super::{RestoreError, TAG_RESTORE_ID};
use crate::cloud::Cloud;
use crate::state::holder::HolderId;
use crate::state::{restore_holder, ResourceKind, RestoreRecord, RestoreStatus, SharedStore};

/// One restore the reaper acted on.
#[derive(Debug, Clone)]
pub struct Reaped {
    /// As recorded after the reaping.
    pub record: RestoreRecord,
    /// Whether its process had died with it `running` (else it had ended
    /// and only what it left was let go of again).
    pub interrupted: bool,
    /// What could not be let go of, tried again next time.
    pub left: Option<String>,
}

/// Whether `r` is `running` in a process that is gone (the drills' rule:
/// `HolderId::gone_since`). A record without a holder is left alone.
pub fn interrupted(r: &RestoreRecord) -> bool {
    r.status == RestoreStatus::Running && r.holder.as_ref().is_some_and(|h| h.gone_since(r.started))
}

/// Reaps the interrupted restores (see the module's doc).
pub async fn reap(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    accounts: &Accounts,
) -> Result<Vec<Reaped>, RestoreError> {
    let (restores, holders) = {
        let st = store.lock().expect("state lock poisoned");
        let holders: Vec<String> = st
            .share_holds(None)?
            .into_iter()
            .map(|h| h.holder)
            .collect();
        (st.restores()?, holders)
    };
    let mut out = Vec::new();
    for mut r in restores {
        let stopped = interrupted(&r);
        let ended = !matches!(r.status, RestoreStatus::Running);
        let left_behind = holders.contains(&restore_holder(&r.id))
            || r.resources
                .iter()
                .any(|x| x.kind == ResourceKind::Image && x.removed.is_none());
        if !(stopped || ended && left_behind) {
            continue;
        }
        let left = leftovers(cloud, store, accounts, &r)
            .await
            .err()
            .map(|e| e.to_string());
        if stopped {
            r.status = RestoreStatus::Failed;
            r.finished = Some(Utc::now());
            let why = stopped_problem(&r, left.as_deref());
            r.problem = if r.problem.is_empty() {
                why
            } else {
                format!("{}; {why}", r.problem)
            };
            let mut st = store.lock().expect("state lock poisoned");
            st.transaction(|tx| tx.put_restore(&r))?;
        }
        out.push(Reaped {
            record: r,
            interrupted: stopped,
            left,
        });
    }
    Ok(out)
}

/// The problem of a restore whose process stopped: who, by whom, what was
/// undone, and how to go on.
fn stopped_problem(r: &RestoreRecord, left: Option<&str>) -> String {
    let holder = r.holder.clone().unwrap_or_else(HolderId::current);
    let me = HolderId::current();
    let undone = match left {
        None => "its shares were released and its launch image deregistered".to_string(),
        Some(e) => format!("releasing its shares and launch image failed ({e}): tried again by the next restore command or runner"),
    };
    format!(
        "interrupted: the process running it (pid {} on {}) stopped before it finished; reaped by pid {} on {}: {undone}; what it created stays, tagged {TAG_RESTORE_ID}={}; to finish it, run `lifeboat apply FILE` with the restore plan saved by `lifeboat restore ... --out FILE` (restore {} then resumes and adopts what it made), or plan a new restore",
        holder.pid, holder.host, me.pid, me.host, r.id, r.id
    )
}
