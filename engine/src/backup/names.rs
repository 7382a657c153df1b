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
/// On the artifacts of a frozen backup, its freezer name: what a catalog
/// rebuilt from tags needs to keep it frozen.
pub const TAG_FROZEN: &str = "lifeboat:frozen";

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

/// The longest AMI name EC2 takes.
pub(crate) const IMAGE_NAME_MAX: usize = 128;
/// The longest DB (cluster) snapshot identifier RDS takes.
pub(crate) const DB_SNAPSHOT_ID_MAX: usize = 255;

/// An AMI name (unique per account and region; letters, digits and
/// `()[] ./-'@_`, at most 128 characters). The backup id is what tells two
/// backups of one target apart, so when the name is too long the policy and
/// target are cut, never the backup id.
/// The start a backup id names (`2026-11-22T10:00:00Z`, or with a `-N`
/// suffix for a second backup in the same second).
pub(crate) fn backup_started(id: &str) -> Option<DateTime<Utc>> {
    let head = id.get(..20)?;
    chrono::NaiveDateTime::parse_from_str(head, "%Y-%m-%dT%H:%M:%SZ")
        .ok()
        .map(|t| t.and_utc())
}

pub(crate) fn image_name(policy: &str, target: &str, backup: &str) -> String {
    let clean = |raw: &str| -> String {
        raw.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    let tail = clean(backup);
    let mut head = clean(&format!("lifeboat-{policy}-{target}"));
    // Only ASCII is left: a byte is a character.
    head.truncate(IMAGE_NAME_MAX.saturating_sub(tail.len() + 1));
    let mut name = format!("{head}-{tail}");
    name.truncate(IMAGE_NAME_MAX);
    name
}

/// Lowercase letters, digits and single hyphens, none at the end.
fn db_id_part(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '-'
        };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    out.trim_end_matches('-').to_string()
}

/// A DB snapshot identifier: letters, digits and single hyphens, starting
/// with a letter, not ending with a hyphen, at most 255 characters. Like
/// [`image_name`], a long one loses part of the policy and target, never the
/// backup id.
pub(crate) fn db_snapshot_id(policy: &str, target: &str, backup: &str) -> String {
    let tail = db_id_part(backup);
    let tail = tail.trim_start_matches('-');
    let mut head = db_id_part(&format!("lifeboat-{policy}-{target}"));
    if tail.is_empty() {
        head.truncate(DB_SNAPSHOT_ID_MAX);
        return head.trim_end_matches('-').to_string();
    }
    head.truncate(DB_SNAPSHOT_ID_MAX.saturating_sub(tail.len() + 1));
    let mut id = format!("{}-{tail}", head.trim_end_matches('-'));
    id.truncate(DB_SNAPSHOT_ID_MAX);
    id
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

    /// The longest policy name the configuration allows, with the longest
    /// ids AWS gives: the names still hold the whole backup id and fit.
    #[test]
    fn the_longest_names_keep_the_whole_backup_id_and_fit_aws_limits() {
        let longest = lifeboat_schema::validate::MAX_POLICY_NAME;
        let policies = [
            "p".repeat(longest),
            format!("{}-x", "web-".repeat(longest / 4 - 1)),
        ];
        let backup = "2026-12-31T23:59:59Z-12";
        for policy in &policies {
            assert!(policy.len() <= longest);
            let instance = "i-0123456789abcdef0";
            let name = image_name(policy, instance, backup);
            assert!(name.len() <= IMAGE_NAME_MAX, "{name}");
            assert!(name.ends_with("2026-12-31T23-59-59Z-12"), "{name}");
            assert!(name.contains(policy.as_str()), "{name}");
            // RDS and Aurora identifiers have at most 63 characters.
            let db = format!("d{}", "b-".repeat(31));
            for target in [db.as_str(), "a", instance] {
                let id = db_snapshot_id(policy, target, backup);
                assert!(id.len() <= DB_SNAPSHOT_ID_MAX, "{id}");
                assert!(id.ends_with("-2026-12-31t23-59-59z-12"), "{id}");
                assert!(id.starts_with("lifeboat-"), "{id}");
                assert!(!id.contains("--") && !id.ends_with('-'), "{id}");
                assert!(id.contains(&db_id_part(policy)), "{id}");
            }
        }
    }

    /// Past the limits (an id longer than AWS gives today), the policy and
    /// target are cut, not the backup id: two backups never share a name.
    #[test]
    fn an_overlong_target_is_cut_before_the_backup_id() {
        let target = "x".repeat(400);
        let a = image_name("web", &target, "2026-01-01T00:00:00Z");
        let b = image_name("web", &target, "2026-01-01T00:00:00Z-2");
        assert_eq!(a.len(), IMAGE_NAME_MAX);
        assert!(a.ends_with("-2026-01-01T00-00-00Z"), "{a}");
        assert_ne!(a, b);
        let a = db_snapshot_id("web", &target, "2026-01-01T00:00:00Z");
        let b = db_snapshot_id("web", &target, "2026-01-01T00:00:00Z-2");
        assert_eq!(a.len(), DB_SNAPSHOT_ID_MAX);
        assert!(a.ends_with("x-2026-01-01t00-00-00z"), "{a}");
        assert_ne!(a, b);
    }
}
