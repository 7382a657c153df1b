//! Who a backup takes, decided as it starts ([`crate::membership::refresh`]),
//! and the alert when that keeps failing.
//!
//! A backup whose membership cannot be decided (a describe failed) backs
//! up the targets as applied and carries a note saying so. One such
//! backup is a glitch; several in a row mean that instances tagged since
//! are not backed up and terminated ones keep failing, which nobody sees
//! in a note: after [`UNDECIDED_TO_ALERT`] backups in a row an alert opens
//! (owned by `policy.NAME.membership`, apart from the failure alert), and
//! it closes at the first backup that decides membership again. The count
//! is a note in the state (`membership_undecided.POLICY`), written as each
//! backup ends.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::addr::Address;
use crate::cloud::Cloud;
use crate::state::{Alert, BackupRecord, SharedStore, StateError, MEMBERSHIP_NOTE};

/// Backups in a row that could not decide membership before an alert opens.
pub const UNDECIDED_TO_ALERT: usize = 3;

/// How the note of a backup that backed up the targets as applied begins.
pub fn undecided_prefix() -> String {
    format!("{MEMBERSHIP_NOTE}: not decided again")
}

/// Decides `policy`'s members as its backup `backup_id` starts, and
/// returns the notes the backup carries: held-back departures, or that
/// membership could not be decided (the targets as applied are then
/// backed up), and whether the targets changed.
pub async fn decide(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    policy: &str,
    backup_id: &str,
    now: DateTime<Utc>,
) -> (Vec<String>, bool) {
    match crate::membership::refresh(cloud, store, policy, backup_id, now).await {
        Ok(r) => {
            let notes = r.note().into_iter().chain(r.tag_notes()).collect();
            // A member rewritten in place (a new tag option, a source
            // switched) changes what is backed up as much as a join.
            (notes, !r.changes.is_empty() || r.rewritten)
        }
        Err(e) => (
            vec![format!(
                "{} ({e}); the targets as applied were backed up",
                undecided_prefix()
            )],
            false,
        ),
    }
}

/// The owner of the alert of `policy`'s undecided membership.
pub fn alert_owner(policy: &str) -> String {
    format!("{}.membership", Address::policy(policy))
}

/// What [`undecided_alert`] did.
#[derive(Debug, Default)]
pub struct UndecidedAlert {
    pub opened: Option<Alert>,
    pub closed: Vec<Alert>,
}

/// The state's note counting `policy`'s backups in a row that could not
/// decide membership.
fn count_key(policy: &str) -> String {
    format!("membership_undecided.{policy}")
}

/// After backup `record`: counts it among the backups in a row that could
/// not decide membership (or starts the count over), opens the alert at
/// [`UNDECIDED_TO_ALERT`] and closes it when membership is decided again.
pub fn undecided_alert(
    store: &SharedStore,
    record: &BackupRecord,
    at: DateTime<Utc>,
) -> Result<UndecidedAlert, StateError> {
    let policy = record.policy.as_str();
    let prefix = undecided_prefix();
    let undecided = record.problems.iter().any(|p| p.starts_with(&prefix));
    let mut s = store.lock().expect("store");
    let key = count_key(policy);
    let owner = alert_owner(policy);
    let mut out = UndecidedAlert::default();
    if !undecided {
        if s.note(&key)?.is_some_and(|n| n != "0") {
            s.set_note(&key, "0")?;
        }
        out.closed = s.close_policy_alerts(&owner, None, at)?;
        return Ok(out);
    }
    // Counted from a note, not from the catalog: retention may already
    // have deleted the earlier backups of the run (`generations` below
    // the threshold).
    let run = s
        .note(&key)?
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0)
        + 1;
    s.set_note(&key, &run.to_string())?;
    if run >= UNDECIDED_TO_ALERT {
        out.opened = s.open_policy_alert(
            &owner,
            at,
            &format!(
                "membership of policy {policy} not decided for {run} backups in a row; they backed up the targets as applied (latest: {})",
                record.id
            ),
        )?;
    }
    Ok(out)
}
