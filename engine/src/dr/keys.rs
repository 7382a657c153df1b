//! The key an encrypted copy is made with, in this order: a key named on
//! the source volume or instance by the tag `lifeboat:dr-kms-key:REGION`
//! (or `lifeboat:dr-kms-key` for every region); the destination key with
//! the same alias as the source key; otherwise what
//! `encryption_key_detection` says (fail, or the destination's default
//! key, with an alert for `default_alert`).

use std::collections::BTreeMap;

use lifeboat_schema::{Account, KeyDetection};

use crate::cloud::{collect_pages, Cloud, CloudError, Encryption, Tags};
use crate::state::{ArtifactKind, Destination};

/// The tag that names a DR key on a source volume or instance.
pub const TAG_DR_KEY: &str = "lifeboat:dr-kms-key";

/// What key a copy uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChoice {
    /// The source is not encrypted: no key, no encryption asked.
    Plain,
    /// This key (id, ARN or `alias/NAME`) in the destination.
    Key { key: String },
    /// The destination's default key; `alert` when the operator asked to
    /// hear about it (`default_alert`).
    Default { why: String, alert: bool },
}

impl KeyChoice {
    /// The `KmsKeyId` to send. RDS needs a key named for an encrypted copy
    /// across regions or accounts: its default is `alias/aws/rds`. EBS
    /// takes no key and uses the destination's default.
    pub fn key_for(&self, kind: ArtifactKind) -> Option<String> {
        match self {
            KeyChoice::Plain => None,
            KeyChoice::Key { key, .. } => Some(key.clone()),
            KeyChoice::Default { .. } => match kind {
                ArtifactKind::DbSnapshot | ArtifactKind::DbClusterSnapshot => {
                    Some("alias/aws/rds".into())
                }
                ArtifactKind::Ebs | ArtifactKind::Image => None,
            },
        }
    }

    pub fn encrypted(&self) -> bool {
        !matches!(self, KeyChoice::Plain)
    }
}

/// Aliases looked up once per (account, region) for one DR run.
#[derive(Default)]
pub struct AliasCache {
    /// (account, region) -> alias name -> key id.
    by_place: BTreeMap<(String, String), BTreeMap<String, Option<String>>>,
}

impl AliasCache {
    async fn aliases(
        &mut self,
        cloud: &dyn Cloud,
        account: &Account,
        region: &str,
    ) -> Result<&BTreeMap<String, Option<String>>, CloudError> {
        let k = (account.name.clone(), region.to_string());
        if !self.by_place.contains_key(&k) {
            let kms = cloud.kms(account, region).await?;
            let all = collect_pages(|t| {
                let kms = kms.clone();
                async move { kms.aliases_page(None, t).await }
            })
            .await?;
            let map = all.into_iter().map(|a| (a.name, a.target_key_id)).collect();
            self.by_place.insert(k.clone(), map);
        }
        Ok(&self.by_place[&k])
    }
}

/// The tag naming the key for `region`, from the source's own tags (the
/// volume's, then the instance's).
fn tagged_key(tags: &[&Tags], region: &str) -> Option<String> {
    let regional = format!("{TAG_DR_KEY}:{region}");
    for t in tags {
        if let Some(k) = t.get(&regional).filter(|k| !k.is_empty()) {
            return Some(k.clone());
        }
    }
    tags.iter()
        .find_map(|t| t.get(TAG_DR_KEY).filter(|k| !k.is_empty()).cloned())
}

/// Where the source key lives, for the alias lookup.
pub struct Source<'a> {
    pub account: &'a Account,
    pub region: &'a str,
    pub encryption: &'a Encryption,
    /// The source volume's and instance's tags, when known.
    pub tags: Vec<&'a Tags>,
}

/// Chooses the key for a copy of `source` into `dest` (whose account is
/// `dest_account`). `Err(problem)` when `strict` finds none, or a lookup
/// failed.
pub async fn choose(
    cloud: &dyn Cloud,
    cache: &mut AliasCache,
    source: &Source<'_>,
    dest: &Destination,
    dest_account: &Account,
    detection: KeyDetection,
) -> Result<KeyChoice, String> {
    if !source.encryption.encrypted {
        return Ok(KeyChoice::Plain);
    }
    if let Some(key) = tagged_key(&source.tags, &dest.region) {
        // Whoever can tag a workload volume must not be able to put the
        // vault's copies under a key of another account (which that
        // account could then schedule for deletion): a key named by ARN
        // must be the destination account's own. An alias or a bare key id
        // resolves in the destination account anyway.
        if let Some(owner) = key.strip_prefix("arn:").and_then(|r| r.split(':').nth(3)) {
            let dest_id = cloud
                .account_id(dest_account)
                .await
                .map_err(|e| e.to_string())?;
            if owner != dest_id {
                return Err(format!(
                    "the {TAG_DR_KEY} tag on the source names {key}, a key of AWS account {owner}; a copy into account {} ({dest_id}) takes only a key of that account",
                    dest.account
                ));
            }
        }
        return Ok(KeyChoice::Key { key });
    }
    let source_key = source.encryption.kms_key_id.clone().unwrap_or_default();
    let kms = cloud
        .kms(source.account, source.region)
        .await
        .map_err(|e| e.to_string())?;
    let key_id = source_key
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let names: Vec<String> = if key_id.is_empty() {
        Vec::new()
    } else {
        collect_pages(|t| {
            let (kms, key_id) = (kms.clone(), key_id.clone());
            async move { kms.aliases_page(Some(&key_id), t).await }
        })
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|a| a.name)
        .collect()
    };
    let there = cache
        .aliases(cloud, dest_account, &dest.region)
        .await
        .map_err(|e| e.to_string())?;
    for name in &names {
        // An AWS managed alias (alias/aws/ebs) exists in every account and
        // region without being listed until used: the destination's own.
        if name.starts_with("alias/aws/") || there.contains_key(name) {
            return Ok(KeyChoice::Key { key: name.clone() });
        }
    }
    let missing = match names.first() {
        Some(n) => format!("no key with the alias {n} in {dest}"),
        None => format!(
            "the source key {source_key} has no alias, and no {TAG_DR_KEY} tag names a key for {}",
            dest.region
        ),
    };
    match detection {
        KeyDetection::Strict => Err(format!(
            "{missing}; create one, tag the source with {TAG_DR_KEY}, or set encryption_key_detection = \"default\""
        )),
        KeyDetection::Default => Ok(KeyChoice::Default {
            why: missing,
            alert: false,
        }),
        KeyDetection::DefaultAlert => Ok(KeyChoice::Default {
            why: missing,
            alert: true,
        }),
    }
}
