//! Freezing a backup in AWS as well as in the catalog: its EBS snapshots
//! and AMIs carry `lifeboat:frozen = NAME`, so that a catalog rebuilt from
//! AWS tags (`lifeboat import`) knows the backup must be kept. Without it a
//! lost state would bring a frozen backup back as an ordinary one, and
//! retention would delete what the operator asked to keep.
//!
//! Calls: one CreateTags per region and 200 artifacts. DB and cluster
//! snapshots are not tagged (RDS tags by ARN); a backup holding only those
//! comes back unfrozen from an import.

use std::collections::BTreeMap;
use std::sync::Arc;

use lifeboat_schema::Account;

use super::names::TAG_FROZEN;
use super::BackupError;
use crate::cloud::{Cloud, Tags, FILTER_CHUNK};
use crate::state::{ArtifactKind, BackupRecord};

/// Tags the EBS snapshots and AMIs of `backup` as frozen under `name`.
/// Returns how many were tagged.
pub async fn tag_frozen(
    cloud: Arc<dyn Cloud>,
    account: &Account,
    backup: &BackupRecord,
    name: &str,
) -> Result<usize, BackupError> {
    let mut by_region: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for s in &backup.snapshots {
        if matches!(s.kind, ArtifactKind::Ebs | ArtifactKind::Image) {
            by_region
                .entry(s.region.as_str())
                .or_default()
                .push(s.id.clone());
        }
    }
    let tags: Tags = [(TAG_FROZEN.to_string(), name.to_string())].into();
    let mut n = 0;
    for (region, ids) in by_region {
        let ec2 = cloud.ec2(account, region).await?;
        for chunk in ids.chunks(FILTER_CHUNK) {
            ec2.create_tags(chunk, &tags).await?;
            n += chunk.len();
        }
    }
    Ok(n)
}
