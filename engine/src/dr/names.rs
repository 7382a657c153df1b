//! The tags and descriptions of DR copies. Copies carry `lifeboat:dr-*`
//! keys, never the backup keys (`lifeboat:policy`, ...): a copy in a region
//! where the policy also backs up must never be taken for one of its
//! backups by reconciliation, import or retention of backups.

use crate::cloud::Tags;
use crate::state::{ArtifactKind, SnapshotRecord};

pub const TAG_DR_POLICY: &str = "lifeboat:dr-policy";
pub const TAG_DR_BACKUP_ID: &str = "lifeboat:dr-backup-id";
pub const TAG_DR_TARGET: &str = "lifeboat:dr-target";
/// The original's id, region and AWS account id.
pub const TAG_DR_SOURCE: &str = "lifeboat:dr-source";
pub const TAG_DR_SOURCE_REGION: &str = "lifeboat:dr-source-region";
pub const TAG_DR_SOURCE_ACCOUNT: &str = "lifeboat:dr-source-account";
/// On a copy retention expired in an account where Lifeboat does not
/// delete: when (RFC 3339). Someone holding delete rights deletes it.
pub const TAG_EXPIRED: &str = "lifeboat:expired";

/// The tags of the copy of `s`, made for `backup` of `policy`.
pub fn copy_tags(policy: &str, backup: &str, s: &SnapshotRecord, source_account_id: &str) -> Tags {
    [
        (TAG_DR_POLICY, policy),
        (TAG_DR_BACKUP_ID, backup),
        (TAG_DR_TARGET, s.target.as_str()),
        (TAG_DR_SOURCE, s.id.as_str()),
        (TAG_DR_SOURCE_REGION, s.region.as_str()),
        (TAG_DR_SOURCE_ACCOUNT, source_account_id),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

pub fn copy_description(policy: &str, backup: &str, source: &str) -> String {
    format!("Lifeboat DR copy of {source} (backup {backup} of policy {policy})")
}

/// The ARN of a DB (cluster) snapshot of the backup, for a copy that names
/// its source by ARN when the describe did not report one.
pub fn db_arn(s: &SnapshotRecord, account_id: &str) -> String {
    let what = match s.kind {
        ArtifactKind::DbClusterSnapshot => "cluster-snapshot",
        _ => "snapshot",
    };
    format!("arn:aws:rds:{}:{account_id}:{what}:{}", s.region, s.id)
}
