//! VPC capture runs: read a region's network, cut it into documents
//! ([`crate::vpc::document`]), and store a new version of a VPC only when
//! its document's hash changed; capture retention, and the versions and
//! differences `lifeboat vpc` shows.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use lifeboat_schema::{Config, VpcCapture};
use serde::{Deserialize, Serialize};

use crate::cloud::{Cloud, CloudError};
use crate::state::{StateError, Store, VpcVersionRecord};
use crate::vpc::document::documents;
pub use crate::vpc::document::{hex_sha256, CaptureDoc};

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("no vpc_capture block named {0:?} in the configuration")]
    UnknownCapture(String),
    #[error("vpc_capture {capture:?} refers to account {account:?}, which is not configured")]
    UnknownAccount { capture: String, account: String },
    #[error(transparent)]
    State(#[from] StateError),
}

/// What happened to one VPC in a capture run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VpcOutcome {
    /// A new version was stored (the first one, or the network changed).
    Stored,
    /// The document equals the latest stored version; nothing was stored.
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpcResult {
    pub vpc_id: String,
    pub hash: String,
    pub outcome: VpcOutcome,
}

/// One region of a capture run: its VPCs, or why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionResult {
    pub capture: String,
    pub account: String,
    pub region: String,
    pub result: Result<Vec<VpcResult>, CloudError>,
}

/// The regions a capture reads: its own list, or its account's regions.
pub fn capture_regions(config: &Config, capture: &VpcCapture) -> Vec<String> {
    if !capture.regions.is_empty() {
        return capture.regions.clone();
    }
    config
        .accounts
        .get(&capture.account)
        .map(|a| a.regions.clone())
        .unwrap_or_default()
}

/// Captures every VPC in the capture's regions. Each region is read in full
/// first and then stored in one transaction; a region that cannot be read
/// is reported and the others still run. A state failure stops the run.
pub async fn capture(
    cloud: Arc<dyn Cloud>,
    store: &Mutex<Store>,
    config: &Config,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Vec<RegionResult>, CaptureError> {
    let cap = config
        .vpc_captures
        .get(name)
        .ok_or_else(|| CaptureError::UnknownCapture(name.to_string()))?;
    let account =
        config
            .accounts
            .get(&cap.account)
            .ok_or_else(|| CaptureError::UnknownAccount {
                capture: name.to_string(),
                account: cap.account.clone(),
            })?;
    let mut out = Vec::new();
    for region in capture_regions(config, cap) {
        let inventory = match cloud.network(account, &region).await {
            Ok(n) => n.inventory().await,
            Err(e) => Err(e),
        };
        let result = match inventory {
            Err(e) => Err(e),
            Ok(inv) => {
                let docs = documents(&inv);
                let mut s = store.lock().expect("store");
                Ok(s.transaction(|tx| {
                    let mut results = Vec::new();
                    for (vpc_id, doc) in &docs {
                        let hash = doc.hash();
                        let latest = tx.latest_vpc_hash(name, &region, vpc_id)?;
                        let outcome = if latest.as_deref() == Some(hash.as_str()) {
                            VpcOutcome::Unchanged
                        } else {
                            tx.insert_vpc_version(
                                &VpcVersionRecord {
                                    id: 0,
                                    capture: name.to_string(),
                                    account: account.name.clone(),
                                    region: region.clone(),
                                    vpc_id: vpc_id.clone(),
                                    captured_at: now,
                                    hash: hash.clone(),
                                },
                                &doc.canonical_json(),
                            )?;
                            VpcOutcome::Stored
                        };
                        results.push(VpcResult {
                            vpc_id: vpc_id.clone(),
                            hash,
                            outcome,
                        });
                    }
                    Ok(results)
                })?)
            }
        };
        out.push(RegionResult {
            capture: name.to_string(),
            account: account.name.clone(),
            region,
            result,
        });
    }
    Ok(out)
}

/// Capture retention: the versions that may go. A version describes the
/// network from its capture time until the next version. It is kept while
/// it is one of the two newest of its VPC, while a backup of that account and region
/// started in its time still exists (a restore may need the network as it
/// was then), or while a `vpc_clone` pins a time it covers. `versions` must
/// be oldest first and of one (capture, region, VPC); `backups` are the
/// start times of the account's backups in that region; `pinned` are times
/// clones are deployed at.
pub fn prunable(
    versions: &[VpcVersionRecord],
    backups: &[DateTime<Utc>],
    pinned: &[DateTime<Utc>],
) -> Vec<i64> {
    let mut out = Vec::new();
    // The two newest always stay, so that `vpc diff` can show the latest
    // change of every VPC even in an account without backups.
    let keep_from = versions.len().saturating_sub(2);
    for (i, v) in versions.iter().enumerate().take(keep_from) {
        let next = &versions[i + 1];
        let covers = |t: &DateTime<Utc>| *t >= v.captured_at && *t < next.captured_at;
        if !backups.iter().any(covers) && !pinned.iter().any(covers) {
            out.push(v.id);
        }
    }
    out
}

/// Applies capture retention to the whole catalog in one transaction and
/// returns how many versions it removed.
pub fn prune(store: &Mutex<Store>, config: &Config) -> Result<usize, StateError> {
    let mut s = store.lock().expect("store");
    let versions = s.vpc_versions()?;
    let backups = s.backups(None)?;
    let mut groups: BTreeMap<(String, String, String), Vec<VpcVersionRecord>> = BTreeMap::new();
    for v in versions {
        groups
            .entry((v.capture.clone(), v.region.clone(), v.vpc_id.clone()))
            .or_default()
            .push(v);
    }
    let mut doomed = Vec::new();
    for ((capture, region, vpc_id), mut vs) in groups {
        vs.sort_by(|a, b| a.captured_at.cmp(&b.captured_at).then(a.id.cmp(&b.id)));
        let account = vs[0].account.clone();
        let times: Vec<DateTime<Utc>> = backups
            .iter()
            .filter(|b| b.account == account && b.snapshots.iter().any(|x| x.region == region))
            .map(|b| b.started)
            .collect();
        let pinned: Vec<DateTime<Utc>> = config
            .vpc_clones
            .values()
            .filter(|c| c.capture == capture && c.vpc == vpc_id)
            .filter_map(|c| c.at)
            .collect();
        doomed.extend(prunable(&vs, &times, &pinned));
    }
    if !doomed.is_empty() {
        s.transaction(|tx| doomed.iter().try_for_each(|id| tx.delete_vpc_version(*id)))?;
    }
    Ok(doomed.len())
}

/// The version current at `at` (the latest captured at or before it), or
/// the latest when `at` is `None`. `versions` must be oldest first.
pub fn version_at(
    versions: &[VpcVersionRecord],
    at: Option<DateTime<Utc>>,
) -> Option<&VpcVersionRecord> {
    match at {
        None => versions.last(),
        Some(t) => versions.iter().rev().find(|v| v.captured_at <= t),
    }
}

/// The resources that differ between two documents, one line each:
/// `+ subnets subnet-1` (added), `- ...` (removed), `~ ...` (changed); the
/// VPC first, then by kind and id.
pub fn changed_resources(old: &CaptureDoc, new: &CaptureDoc) -> Vec<String> {
    use serde_json::Value;
    fn by_id(v: &Value) -> BTreeMap<String, &Value> {
        let one = |x: &'_ Value| x.get("id").and_then(Value::as_str).map(str::to_string);
        match v {
            Value::Array(items) => items.iter().filter_map(|x| Some((one(x)?, x))).collect(),
            Value::Object(_) => one(v).map(|id| (id, v)).into_iter().collect(),
            _ => BTreeMap::new(),
        }
    }
    let (Ok(Value::Object(a)), Ok(Value::Object(b))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    // The VPC first, then the other kinds by name.
    let kinds = b
        .iter()
        .filter(|(k, _)| *k == "vpc")
        .chain(b.iter().filter(|(k, _)| *k != "vpc"));
    for (kind, new_v) in kinds {
        let Some(old_v) = a.get(kind) else { continue };
        let (before, after) = (by_id(old_v), by_id(new_v));
        for (id, v) in &after {
            match before.get(id) {
                None => out.push(format!("+ {kind} {id}")),
                Some(o) if o != v => out.push(format!("~ {kind} {id}")),
                Some(_) => {}
            }
        }
        for id in before.keys().filter(|id| !after.contains_key(*id)) {
            out.push(format!("- {kind} {id}"));
        }
    }
    out
}

/// A unified line diff of two documents' pretty JSON.
pub fn diff_documents(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .to_string()
}

#[cfg(test)]
mod tests {

    fn version(id: i64, hour: u32) -> VpcVersionRecord {
        VpcVersionRecord {
            id,
            capture: "prod".into(),
            account: "main".into(),
            region: "us-east-1".into(),
            vpc_id: "vpc-1".into(),
            captured_at: format!("2026-11-22T{hour:02}:00:00Z").parse().unwrap(),
            hash: format!("h{id}"),
        }
    }

    #[test]
    fn capture_versions_go_when_no_backup_or_clone_needs_their_time() {
        let t = |h: u32| -> DateTime<Utc> { format!("2026-11-22T{h:02}:30:00Z").parse().unwrap() };
        let vs = [version(1, 1), version(2, 3), version(3, 5), version(4, 7)];
        let vs5 = [
            version(1, 1),
            version(2, 3),
            version(3, 5),
            version(4, 7),
            version(5, 9),
        ];
        // A backup at 03:30 keeps version 2 (03:00-05:00); a clone pinned at
        // 01:30 keeps version 1; version 3 has neither; the two newest stay.
        assert_eq!(prunable(&vs5, &[t(3)], &[t(1)]), vec![3]);
        assert_eq!(prunable(&vs5, &[], &[]), vec![1, 2, 3]);
        assert_eq!(prunable(&vs, &[], &[]), vec![1, 2]);
        assert!(prunable(&vs[..2], &[], &[]).is_empty());
    }

    use super::*;
    use crate::testing::fake::FakeCloud;
    use crate::vpc::document::tests::{group_peer, inventory, rule};
    use lifeboat_schema::{Account, AccountKind};

    #[test]
    fn a_new_rule_changes_only_its_vpc_hash() {
        let before = documents(&inventory());
        let mut inv = inventory();
        inv.security_groups[1]
            .ingress
            .push(rule(6379, group_peer("sg-db")));
        let after = documents(&inv);
        assert_ne!(before["vpc-a"].hash(), after["vpc-a"].hash());
        assert_eq!(before["vpc-b"].hash(), after["vpc-b"].hash());
        let diff = diff_documents(
            &before["vpc-a"].pretty(),
            &after["vpc-a"].pretty(),
            "old",
            "new",
        );
        assert!(diff.contains("+") && diff.contains("6379"), "{diff}");
        assert_eq!(
            changed_resources(&before["vpc-a"], &after["vpc-a"]),
            ["~ security_groups sg-db"]
        );
        let mut fewer = after["vpc-a"].clone();
        fewer.subnets.remove(0);
        fewer.vpc.tags.clear();
        assert_eq!(
            changed_resources(&after["vpc-a"], &fewer),
            ["~ vpc vpc-a", "- subnets subnet-1"]
        );
    }

    fn config() -> Config {
        let mut c = Config::default();
        c.accounts.insert(
            "main".into(),
            Account {
                name: "main".into(),
                kind: AccountKind::Backup,
                regions: vec!["us-east-1".into(), "us-west-2".into()],
                profile: None,
                assume_role: None,
                allow_delete: true,
                account_id: None,
                manage_role: None,
                secured: None,
                tag_scan: None,
                location: Default::default(),
            },
        );
        c.vpc_captures.insert(
            "prod".into(),
            VpcCapture {
                name: "prod".into(),
                account: "main".into(),
                regions: vec!["us-east-1".into()],
                every: None,
                location: Default::default(),
            },
        );
        c
    }

    fn t(h: u32) -> DateTime<Utc> {
        format!("2026-11-22T{h:02}:00:00Z").parse().unwrap()
    }

    #[tokio::test]
    async fn an_unchanged_capture_stores_no_version_and_a_change_stores_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Mutex::new(Store::open(&dir.path().join("state.db")).unwrap());
        let fake = FakeCloud::new(10);
        fake.world
            .lock()
            .unwrap()
            .networks
            .insert("us-east-1".into(), inventory());
        let cloud: Arc<dyn Cloud> = Arc::new(fake.clone());
        let config = config();

        let first = capture(cloud.clone(), &store, &config, "prod", t(1))
            .await
            .unwrap();
        assert_eq!(first.len(), 1, "only the capture's region is read");
        let r = first[0].result.as_ref().unwrap();
        assert!(r.iter().all(|v| v.outcome == VpcOutcome::Stored));
        assert_eq!(r.len(), 2);

        let second = capture(cloud.clone(), &store, &config, "prod", t(2))
            .await
            .unwrap();
        let r = second[0].result.as_ref().unwrap();
        assert!(
            r.iter().all(|v| v.outcome == VpcOutcome::Unchanged),
            "{r:?}"
        );
        let versions = store.lock().unwrap().vpc_versions().unwrap();
        assert_eq!(versions.len(), 2, "no new version for an unchanged network");

        {
            let mut w = fake.world.lock().unwrap();
            let inv = w.networks.get_mut("us-east-1").unwrap();
            inv.security_groups[1]
                .ingress
                .push(rule(6379, group_peer("sg-db")));
        }
        let third = capture(cloud.clone(), &store, &config, "prod", t(3))
            .await
            .unwrap();
        let r = third[0].result.as_ref().unwrap();
        let outcome = |id: &str| r.iter().find(|v| v.vpc_id == id).unwrap().outcome;
        assert_eq!(outcome("vpc-a"), VpcOutcome::Stored);
        assert_eq!(outcome("vpc-b"), VpcOutcome::Unchanged);

        let s = store.lock().unwrap();
        let versions: Vec<_> = s
            .vpc_versions()
            .unwrap()
            .into_iter()
            .filter(|v| v.vpc_id == "vpc-a")
            .collect();
        assert_eq!(versions.len(), 2);
        assert_eq!(version_at(&versions, Some(t(2))).unwrap().captured_at, t(1));
        assert_eq!(version_at(&versions, None).unwrap().captured_at, t(3));
        let doc: CaptureDoc =
            serde_json::from_str(&s.vpc_document(versions[1].id).unwrap()).unwrap();
        assert_eq!(doc.hash(), versions[1].hash);
    }

    #[tokio::test]
    async fn a_region_that_cannot_be_read_is_reported_and_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Mutex::new(Store::open(&dir.path().join("state.db")).unwrap());
        let fake = FakeCloud::new(10);
        fake.world
            .lock()
            .unwrap()
            .failing
            .insert("DescribeVpcs".into(), crate::cloud::ErrorKind::AccessDenied);
        let cloud: Arc<dyn Cloud> = Arc::new(fake);
        let out = capture(cloud, &store, &config(), "prod", t(1))
            .await
            .unwrap();
        assert!(out[0].result.is_err());
        assert!(store.lock().unwrap().vpc_versions().unwrap().is_empty());
    }
}
