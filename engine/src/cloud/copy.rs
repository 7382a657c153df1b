//! The values the DR ports take and return: copy requests, shares, and the
//! KMS aliases that pick an encrypted copy's key. Kept apart from the
//! backup ports in `cloud/mod.rs` so that the copy feature reads in one
//! place.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{CloudResult, DbSnapshotKind, Page, Tags};

/// How an artifact is encrypted, as its describe call reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    pub encrypted: bool,
    /// The key's ARN (or id) when encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
}

/// CopySnapshot, called in the destination region (and account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotCopyRequest {
    pub source_region: String,
    pub source_id: String,
    pub description: String,
    /// Applied at creation (TagSpecifications).
    pub tags: Tags,
    /// Encrypt the copy with this key (id, ARN or `alias/NAME`); `None`
    /// with `encrypt`: the destination's default key.
    pub kms_key_id: Option<String>,
    /// Ask for an encrypted copy (always true for an encrypted source).
    pub encrypt: bool,
}

/// CopyImage, called in the destination region (and account). The copied
/// image's snapshots are tagged afterwards with CreateTags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageCopyRequest {
    pub source_region: String,
    pub source_id: String,
    /// Unique per account and region.
    pub name: String,
    pub description: String,
    /// Applied to the image once the call answers (CreateTags).
    pub tags: Tags,
    pub kms_key_id: Option<String>,
    pub encrypt: bool,
}

/// CopyDBSnapshot / CopyDBClusterSnapshot, called in the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbCopyRequest {
    pub kind: DbSnapshotKind,
    /// The source snapshot's ARN (a copy from another region or account
    /// names its source by ARN).
    pub source_arn: String,
    pub source_region: String,
    /// The copy's identifier.
    pub target_id: String,
    pub tags: Tags,
    /// Required by RDS for an encrypted source copied to another region
    /// or account.
    pub kms_key_id: Option<String>,
}

/// LockSnapshot: lock an EBS snapshot against deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotLockRequest {
    pub snapshot_id: String,
    pub mode: lifeboat_schema::LockMode,
    /// What the lock lasts: a number of days from now (a fresh lock) or
    /// an instant (a lock put back with the expiry it had).
    pub until: LockUntil,
    /// CoolOffPeriod in hours (compliance only).
    pub cool_off_hours: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockUntil {
    /// LockDuration.
    Days(u32),
    /// ExpirationDate.
    At(chrono::DateTime<chrono::Utc>),
}

/// A snapshot's lock as LockSnapshot or DescribeLockedSnapshots reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotLock {
    pub snapshot_id: String,
    /// `governance`, `compliance`, `compliance-cooloff` or `expired`.
    pub state: String,
    /// When the lock ends (LockExpiresOn).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_on: Option<chrono::DateTime<chrono::Utc>>,
}

impl SnapshotLock {
    /// Does it still keep the snapshot from being deleted?
    pub fn holds(&self) -> bool {
        !self.state.is_empty() && self.state != "expired"
    }
}

/// One KMS alias (`ListAliases`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAlias {
    /// `alias/NAME`.
    pub name: String,
    /// The key it points at (`None` for an AWS managed alias not yet used).
    pub target_key_id: Option<String>,
}

/// KMS in one account and region: the aliases that carry a source key's
/// name over to the destination.
#[async_trait]
pub trait Kms: Send + Sync {
    /// ListAliases, of one key when `key_id` is given (an id or ARN).
    async fn aliases_page(
        &self,
        key_id: Option<&str>,
        token: Option<String>,
    ) -> CloudResult<Page<KeyAlias>>;
}
