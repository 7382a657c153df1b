//! Sharing an artifact (an EBS snapshot, an AMI, a DB or cluster snapshot)
//! with another AWS account for as long as something needs it: the one
//! home of the rule, used by restores (`restore::run`) and DR copies
//! (`dr::copy`) alike.
//!
//! One grant in AWS can be needed by several holders at once: two restores
//! into the same account, or a restore and a DR copy in flight of the same
//! backup into the vault account. Each holder is a row in the state
//! (`state::ShareHold`), and:
//!
//! - [`hold`] commits the holder's row, then shares. A process killed in
//!   between leaves a row and maybe no share: whoever releases the row
//!   later unshares what may not be shared, which changes nothing. Never a
//!   share without a row.
//! - [`release`] marks the row as letting go, unshares only when no other
//!   holder remains, and forgets the row once the unshare succeeded (a
//!   failed unshare keeps the row, for the next release to do it again).
//!   A holder that arrived while the unshare was on its way is given its
//!   share back.

use chrono::Utc;
use lifeboat_schema::Account;

use crate::cloud::{Cloud, CloudError, CloudResult, DbSnapshotKind, ErrorKind};
use crate::state::{ArtifactKind, ShareHold, SharedStore, StateError};

/// One share: what, where, with whom, and whose it is.
#[derive(Debug, Clone, Copy)]
pub struct Share<'a> {
    /// The account that owns the artifact (it makes the calls).
    pub owner: &'a Account,
    pub kind: ArtifactKind,
    pub id: &'a str,
    pub region: &'a str,
    /// The AWS account id shared with.
    pub with: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error(transparent)]
    State(#[from] StateError),
}

fn tx<T>(
    store: &SharedStore,
    f: impl FnMut(&mut crate::state::Tx<'_>) -> Result<T, StateError>,
) -> Result<T, StateError> {
    store.lock().expect("state lock poisoned").transaction(f)
}

/// The share or unshare call itself (an AMI's alone: its snapshots are
/// shares of their own).
async fn call(cloud: &dyn Cloud, s: &Share<'_>, share: bool) -> CloudResult<()> {
    match s.kind {
        ArtifactKind::Ebs => {
            let ec2 = cloud.ec2(s.owner, s.region).await?;
            ec2.share_snapshot(s.id, s.with, share).await
        }
        ArtifactKind::Image => {
            let ec2 = cloud.ec2(s.owner, s.region).await?;
            ec2.share_image(s.id, s.with, share).await
        }
        ArtifactKind::DbSnapshot | ArtifactKind::DbClusterSnapshot => {
            let kind = match s.kind {
                ArtifactKind::DbClusterSnapshot => DbSnapshotKind::Cluster,
                _ => DbSnapshotKind::Instance,
            };
            let rds = cloud.rds(s.owner, s.region).await?;
            rds.share_db_snapshot(kind, s.id, s.with, share).await
        }
    }
}

/// Records `holder` as needing `s`, then shares.
pub async fn hold(
    cloud: &dyn Cloud,
    store: &SharedStore,
    s: &Share<'_>,
    holder: &str,
) -> Result<(), ShareError> {
    let row = ShareHold {
        artifact_id: s.id.to_string(),
        kind: s.kind,
        region: s.region.to_string(),
        shared_with: s.with.to_string(),
        owner: s.owner.name.clone(),
        holder: holder.to_string(),
        since: Utc::now(),
        releasing: None,
    };
    tx(store, |tx| tx.hold_share(&row))?;
    call(cloud, s, true).await?;
    Ok(())
}

/// Lets go of `holder`'s hold of `s`, unsharing when no other holder
/// needs it. Returns whether it unshared. An artifact gone from AWS has
/// no share left to undo.
pub async fn release(
    cloud: &dyn Cloud,
    store: &SharedStore,
    s: &Share<'_>,
    holder: &str,
) -> Result<bool, ShareError> {
    let others = tx(store, |tx| {
        tx.releasing_share(s.id, s.region, s.with, holder, Utc::now())
    })?;
    let Some(others) = others else {
        // A restore run again since: the hold is the new run's.
        return Ok(false);
    };
    if others > 0 {
        tx(store, |tx| tx.release_share(s.id, s.region, s.with, holder))?;
        return Ok(false);
    }
    match call(cloud, s, false).await {
        Ok(()) => {}
        Err(e) if e.kind == ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let arrived = tx(store, |tx| tx.release_share(s.id, s.region, s.with, holder))?;
    if arrived > 0 {
        // Held (and maybe shared) while the unshare was on its way: the
        // newcomer needs the share that call may have taken away.
        call(cloud, s, true).await?;
        return Ok(false);
    }
    Ok(true)
}

/// Lets go of every share `holder` holds (a restore's, when it ends or is
/// reaped). Every release is tried; the first error is returned.
pub async fn release_all(
    cloud: &dyn Cloud,
    store: &SharedStore,
    accounts: &std::collections::BTreeMap<String, Account>,
    holder: &str,
) -> Result<(), ShareError> {
    let held = store
        .lock()
        .expect("state lock poisoned")
        .share_holds(Some(holder))?;
    let mut first = Ok(());
    for h in held {
        let Some(owner) = accounts.get(&h.owner) else {
            // Left in the state: the account's configuration is needed
            // to unshare, and a later release with it does.
            if first.is_ok() {
                first = Err(ShareError::State(StateError::Conflict(format!(
                    "cannot unshare {} in {} from AWS account {} (held by {}): its owner, account {}, is not configured; it stays shared until that account is configured again and a restore command or the runner lets go of it",
                    h.artifact_id, h.region, h.shared_with, h.holder, h.owner
                ))));
            }
            continue;
        };
        let s = Share {
            owner,
            kind: h.kind,
            id: &h.artifact_id,
            region: &h.region,
            with: &h.shared_with,
        };
        if let Err(e) = release(cloud, store, &s, holder).await {
            if first.is_ok() {
                first = Err(e);
            }
        }
    }
    first
}
