//! What Lifeboat calls the things a backup makes, and the tags it puts on
//! them: the backup id, AMI names, DB snapshot identifiers and the
//! `lifeboat:*` tags by which restart reconciliation, the planner and anyone
//! auditing the account find them again.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::cloud::Tags;
use crate::state::{StateError, Store};

/// The tags every snapshot Lifeboat creates carries.
pub const TAG_POLICY: &str = "lifeboat:policy";
pub const TAG_BACKUP_ID: &str = "lifeboat:backup-id";
pub const TAG_TARGET: &str = "lifeboat:target";

/// The tags of everything `backup` of `policy` makes for `target`.
pub(crate) fn backup_tags(policy: &str, backup: &str, target: &str) -> Tags {
    [
        (TAG_POLICY.to_string(), policy.to_string()),
        (TAG_BACKUP_ID.to_string(), backup.to_string()),
        (TAG_TARGET.to_string(), target.to_string()),
    ]
    .into()
}

/// The description Lifeboat writes on every EBS snapshot and AMI it makes:
/// its marker. Tags can be put on anything by hand; only what carries this
/// exact description for its own tags is ever adopted or imported as
/// Lifeboat's (and so ever deleted by retention).
pub(crate) fn description(policy: &str, backup: &str, target: &str) -> String {
    format!("Lifeboat backup {backup} of policy {policy}, target {target}")
}

/// Does `desc` mark an artifact as Lifeboat's for the backup and target its
/// `lifeboat:*` tags name?
pub(crate) fn is_marked(desc: &str, tags: &Tags) -> bool {
    match (
        tags.get(TAG_POLICY),
        tags.get(TAG_BACKUP_ID),
        tags.get(TAG_TARGET),
    ) {
        (Some(p), Some(b), Some(t)) => desc == description(p, b, t),
        _ => false,
    }
}

/// The id of a backup started at `now`, unique within the policy: the time,
/// with `-2`, `-3`, ... when the policy already has a backup of that second.
pub fn backup_id(store: &Store, policy: &str, now: DateTime<Utc>) -> Result<String, StateError> {
    let base = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let taken: BTreeSet<String> = store
        .backups(Some(policy))?
        .into_iter()
        .map(|b| b.id)
        .collect();
    let mut id = base.clone();
    let mut n = 1;
    while taken.contains(&id) {
        n += 1;
        id = format!("{base}-{n}");
    }
    Ok(id)
}

/// An AMI name (unique per account and region; letters, digits and
/// `()[] ./-'@_`, at most 128 characters).
pub(crate) fn image_name(policy: &str, target: &str, backup: &str) -> String {
    let raw = format!("lifeboat-{policy}-{target}-{backup}");
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(128)
        .collect()
}

/// A DB snapshot identifier: letters, digits and single hyphens, starting
/// with a letter, not ending with a hyphen, at most 255 characters.
pub(crate) fn db_snapshot_id(policy: &str, target: &str, backup: &str) -> String {
    let raw = format!("lifeboat-{policy}-{target}-{backup}").to_ascii_lowercase();
    let mut out = String::new();
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    out.truncate(255);
    out.trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_keep_only_what_ec2_accepts() {
        assert_eq!(
            image_name("web", "i-1", "2026-01-01T00:00:00Z"),
            "lifeboat-web-i-1-2026-01-01T00-00-00Z"
        );
        assert_eq!(image_name("p", &"x".repeat(200), "b").len(), 128);
    }

    #[test]
    fn db_snapshot_ids_have_single_hyphens_and_no_trailing_one() {
        assert_eq!(
            db_snapshot_id("Web", "db_1", "2026-01-01T00:00:00Z"),
            "lifeboat-web-db-1-2026-01-01t00-00-00z"
        );
        assert_eq!(db_snapshot_id("p", "t-", "-"), "lifeboat-p-t");
    }
}
