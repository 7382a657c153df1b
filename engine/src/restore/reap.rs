//! Restores whose process died midway (killed, a host rebooted): their
//! record says `running` with a holder that is gone. Every writing restore
//! command, and the runner, reaps them first: the shares they held are
//! let go (the last holder unshares), their launch image is deregistered,
//! and the record fails with a problem saying who stopped and how to go
//! on. What they created (instances, volumes, databases) stays: it is the
//! operator's now, tagged with the restore's id.
//!
//! Each is claimed first, in one conditional write (still `running` under
//! the holder read): a restore resumed while the reaper looked is not its
//! to reap. Its shares are let go of only while it is not `running`
//! (`state::shares`), so a resume after the claim keeps the shares it took.
//!
//! The runner ([`Scope::All`]) also tries again what ended restores left
//! (an unshare or a deregistration that failed) and lets go of the shares
//! of DR runs that are settled or gone. The restore commands
//! ([`Scope::Running`]) reap only the interrupted restores, within a time
//! bound: a recovery must not wait on a failed region's unshares.

use std::sync::Arc;

use chrono::Utc;

use super::plan::Accounts;
use super::run::leftovers;
use super::{RestoreError, TAG_RESTORE_ID};
use crate::cloud::Cloud;
use crate::share::release_all;
use crate::state::holder::HolderId;
use crate::state::{
    dr_holder, dr_holder_policy, restore_holder, ResourceKind, RestoreRecord, RestoreStatus,
    SharedStore,
};

/// What a reap looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The restores left `running` by a process that is gone (the restore,
    /// recover and drill commands).
    Running,
    /// Those, what ended restores left behind, and the shares of settled
    /// DR runs (the runner).
    All,
}

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

/// Reaps the interrupted restores (see the module's doc).
pub async fn reap(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    accounts: &Accounts,
    scope: Scope,
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
    for r in restores {
        if r.interrupted() {
            let problem = stopped_problem(&r);
            let claimed = {
                let mut st = store.lock().expect("state lock poisoned");
                st.transaction(|tx| tx.claim_interrupted(&r, &problem, Utc::now()))?
            };
            if !claimed {
                continue; // taken over (or ended) since it was read
            }
            let left = leftovers(cloud, store, accounts, &r)
                .await
                .err()
                .map(|e| e.to_string());
            let record = RestoreRecord {
                status: RestoreStatus::Failed,
                finished: Some(Utc::now()),
                problem,
                ..r
            };
            out.push(Reaped {
                record,
                interrupted: true,
                left,
            });
            continue;
        }
        let ended = !matches!(r.status, RestoreStatus::Running);
        let left_behind = holders.contains(&restore_holder(&r.id))
            || r.resources
                .iter()
                .any(|x| x.kind == ResourceKind::Image && x.removed.is_none());
        if scope == Scope::All && ended && left_behind {
            let left = leftovers(cloud, store, accounts, &r)
                .await
                .err()
                .map(|e| e.to_string());
            out.push(Reaped {
                record: r,
                interrupted: false,
                left,
            });
        }
    }
    if scope == Scope::All {
        release_settled_dr(cloud, store, accounts, &holders).await?;
    }
    Ok(out)
}

/// [`reap`] for at most `within`: `None` when it took longer (what was
/// claimed by then is failed already, and what it held is let go of by the
/// runner's next reap, as an ended restore's leftovers).
pub async fn reap_within(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    accounts: &Accounts,
    scope: Scope,
    within: std::time::Duration,
) -> Result<Option<Vec<Reaped>>, RestoreError> {
    match tokio::time::timeout(within, reap(cloud, store, accounts, scope)).await {
        Ok(done) => done.map(Some),
        Err(_) => Ok(None),
    }
}

/// Lets go of the shares held by DR runs that are no longer open (settled
/// without letting go: an unshare failed, or the run's process died after
/// settling) or no longer recorded. What cannot be let go of opens an
/// alert on the run's policy, as the run itself does.
async fn release_settled_dr(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    accounts: &Accounts,
    holders: &[String],
) -> Result<(), RestoreError> {
    let open: Vec<String> = {
        let st = store.lock().expect("state lock poisoned");
        st.dr_runs(None)?
            .into_iter()
            .filter(|r| r.status.is_open())
            .map(|r| dr_holder(&r.policy, &r.backup_id, &r.destination))
            .collect()
    };
    let mut done: Vec<&String> = Vec::new();
    for h in holders.iter().filter(|h| h.starts_with("dr:")) {
        if open.contains(h) || done.contains(&h) {
            continue;
        }
        done.push(h);
        if let Err(e) = release_all(cloud.as_ref(), store, accounts, h).await {
            let policy = dr_holder_policy(h).unwrap_or_default().to_string();
            let lead = format!("shares held by {h} (its DR run has ended) stay");
            let mut st = store.lock().expect("state lock poisoned");
            // One alert while they stay, not one per runner tick.
            let open = st.open_alerts()?;
            if !open.iter().any(|a| a.message.starts_with(&lead)) {
                let message = format!("{lead}: {e}; tried again by the runner");
                st.transaction(|tx| tx.open_alert(&policy, Utc::now(), &message))?;
            }
        }
    }
    Ok(())
}

/// The problem of a restore whose process stopped: who, by whom, and how
/// to go on (what it held is let go of right after; what could not be is
/// tried again, and said by the reaper's report).
fn stopped_problem(r: &RestoreRecord) -> String {
    let me = HolderId::current();
    let who = match &r.holder {
        Some(h) => format!("the process running it (pid {} on {})", h.pid, h.host),
        None => "the process running it (not recorded: an earlier Lifeboat)".to_string(),
    };
    format!(
        "interrupted: {who} stopped before it finished; reaped by pid {} on {}, which lets go of its shares and launch image (what fails is tried again by the next restore command or runner); what it created stays, tagged {TAG_RESTORE_ID}={}; to finish it, run `lifeboat apply FILE` with the restore plan saved by `lifeboat restore ... --out FILE` (restore {} then resumes and adopts what it made), or plan a new restore",
        me.pid, me.host, r.id, r.id
    )
}
