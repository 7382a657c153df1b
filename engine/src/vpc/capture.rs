//! VPC capture: a region's network as normalised, ordered values, cut into
//! one document per VPC, hashed, and stored in the catalog as versions.
//!
//! [`RegionInventory`] is what the [`Network`](crate::cloud::Network) trait
//! returns for one account and region. [`documents`] (pure) cuts it into a
//! [`CaptureDoc`] per VPC: the VPC, everything inside it, and the
//! region-level things it uses. Every list in a document is sorted, so the
//! same network always serialises to the same bytes and the same hash;
//! [`capture`] stores a new version only when that hash changed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use lifeboat_schema::{Config, VpcCapture};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cloud::network::*;
use crate::cloud::{Cloud, CloudError};
use crate::state::{StateError, Store, VpcVersionRecord};

/// One VPC's network at one time: the VPC, what belongs to it, and the
/// region-level resources it uses (DHCP options, customer gateways of its
/// VPN connections, transit gateways it is attached to, prefix lists its
/// rules and routes name). Field order and sorted lists make its JSON
/// canonical.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureDoc {
    pub vpc: Vpc,
    pub subnets: Vec<Subnet>,
    pub security_groups: Vec<SecurityGroup>,
    pub route_tables: Vec<RouteTable>,
    pub network_acls: Vec<NetworkAcl>,
    pub internet_gateways: Vec<InternetGateway>,
    pub egress_only_internet_gateways: Vec<EgressOnlyInternetGateway>,
    pub nat_gateways: Vec<NatGateway>,
    pub vpn_gateways: Vec<VpnGateway>,
    pub vpn_connections: Vec<VpnConnection>,
    pub customer_gateways: Vec<CustomerGateway>,
    pub dhcp_options: Option<DhcpOptions>,
    pub prefix_lists: Vec<ManagedPrefixList>,
    pub peering_connections: Vec<VpcPeeringConnection>,
    pub transit_gateways: Vec<TransitGateway>,
    pub transit_gateway_attachments: Vec<TransitGatewayVpcAttachment>,
    pub transit_gateway_route_tables: Vec<TransitGatewayRouteTable>,
}

impl CaptureDoc {
    /// The canonical bytes: compact JSON of the normalised document.
    pub fn canonical_json(&self) -> String {
        serde_json::to_string(self).expect("a capture document always serialises")
    }

    /// SHA-256 of [`Self::canonical_json`], lowercase hex.
    pub fn hash(&self) -> String {
        hex_sha256(self.canonical_json().as_bytes())
    }

    /// Pretty JSON, for `show` and `diff`.
    pub fn pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a capture document always serialises")
    }
}

pub fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn by_id<T>(v: &mut [T], id: impl Fn(&T) -> &str) {
    v.sort_by(|a, b| id(a).cmp(id(b)));
}

fn sorted<T: Ord>(v: &mut Vec<T>) {
    v.sort();
    v.dedup();
}

impl RegionInventory {
    /// Sorts every list (resources by id, their rules, routes, entries,
    /// associations and attachments by value) so that the order the
    /// service answered in never shows.
    pub fn normalise(&mut self) {
        for v in &mut self.vpcs {
            sorted(&mut v.cidr_blocks);
            sorted(&mut v.ipv6_cidr_blocks);
        }
        by_id(&mut self.vpcs, |x| &x.id);
        for s in &mut self.subnets {
            sorted(&mut s.ipv6_cidr_blocks);
        }
        by_id(&mut self.subnets, |x| &x.id);
        for g in &mut self.security_groups {
            sorted(&mut g.ingress);
            sorted(&mut g.egress);
        }
        by_id(&mut self.security_groups, |x| &x.id);
        for t in &mut self.route_tables {
            sorted(&mut t.routes);
            sorted(&mut t.associations);
            sorted(&mut t.propagating_vgws);
        }
        by_id(&mut self.route_tables, |x| &x.id);
        for a in &mut self.network_acls {
            sorted(&mut a.entries);
            sorted(&mut a.associations);
        }
        by_id(&mut self.network_acls, |x| &x.id);
        for g in &mut self.internet_gateways {
            sorted(&mut g.attachments);
        }
        by_id(&mut self.internet_gateways, |x| &x.id);
        for g in &mut self.egress_only_internet_gateways {
            sorted(&mut g.attachments);
        }
        by_id(&mut self.egress_only_internet_gateways, |x| &x.id);
        for g in &mut self.nat_gateways {
            sorted(&mut g.addresses);
        }
        by_id(&mut self.nat_gateways, |x| &x.id);
        for g in &mut self.vpn_gateways {
            sorted(&mut g.attachments);
        }
        by_id(&mut self.vpn_gateways, |x| &x.id);
        by_id(&mut self.customer_gateways, |x| &x.id);
        for c in &mut self.vpn_connections {
            sorted(&mut c.routes);
        }
        by_id(&mut self.vpn_connections, |x| &x.id);
        for d in &mut self.dhcp_options {
            for values in d.configurations.values_mut() {
                sorted(values);
            }
        }
        by_id(&mut self.dhcp_options, |x| &x.id);
        for p in &mut self.prefix_lists {
            sorted(&mut p.entries);
        }
        by_id(&mut self.prefix_lists, |x| &x.id);
        for p in &mut self.peering_connections {
            sorted(&mut p.requester.cidr_blocks);
            sorted(&mut p.accepter.cidr_blocks);
        }
        by_id(&mut self.peering_connections, |x| &x.id);
        by_id(&mut self.transit_gateways, |x| &x.id);
        for a in &mut self.transit_gateway_attachments {
            sorted(&mut a.subnet_ids);
        }
        by_id(&mut self.transit_gateway_attachments, |x| &x.id);
        by_id(&mut self.transit_gateway_route_tables, |x| &x.id);
    }
}

fn attached(attachments: &[GatewayAttachment], vpc: &str) -> bool {
    attachments.iter().any(|a| a.vpc_id == vpc)
}

fn prefix_lists_of(rules: &[SecurityGroupRule], out: &mut BTreeSet<String>) {
    for r in rules {
        if let RulePeer::PrefixList(id) = &r.peer {
            out.insert(id.clone());
        }
    }
}

/// Cuts a region's inventory into one document per VPC. Pure.
pub fn documents(inventory: &RegionInventory) -> BTreeMap<String, CaptureDoc> {
    let mut inv = inventory.clone();
    inv.normalise();
    let mut out = BTreeMap::new();
    for vpc in &inv.vpcs {
        let id = vpc.id.as_str();
        let mine = |v: &str| v == id;
        let subnets: Vec<Subnet> = inv
            .subnets
            .iter()
            .filter(|s| mine(&s.vpc_id))
            .cloned()
            .collect();
        let security_groups: Vec<SecurityGroup> = inv
            .security_groups
            .iter()
            .filter(|g| mine(&g.vpc_id))
            .cloned()
            .collect();
        let route_tables: Vec<RouteTable> = inv
            .route_tables
            .iter()
            .filter(|t| mine(&t.vpc_id))
            .cloned()
            .collect();
        let network_acls = inv
            .network_acls
            .iter()
            .filter(|a| mine(&a.vpc_id))
            .cloned()
            .collect();
        let internet_gateways = inv
            .internet_gateways
            .iter()
            .filter(|g| attached(&g.attachments, id))
            .cloned()
            .collect();
        let egress_only_internet_gateways = inv
            .egress_only_internet_gateways
            .iter()
            .filter(|g| attached(&g.attachments, id))
            .cloned()
            .collect();
        let nat_gateways = inv
            .nat_gateways
            .iter()
            .filter(|g| mine(&g.vpc_id))
            .cloned()
            .collect();
        let vpn_gateways: Vec<VpnGateway> = inv
            .vpn_gateways
            .iter()
            .filter(|g| attached(&g.attachments, id))
            .cloned()
            .collect();
        let transit_gateway_attachments: Vec<TransitGatewayVpcAttachment> = inv
            .transit_gateway_attachments
            .iter()
            .filter(|a| mine(&a.vpc_id))
            .cloned()
            .collect();
        let tgw_ids: BTreeSet<&str> = transit_gateway_attachments
            .iter()
            .map(|a| a.transit_gateway_id.as_str())
            .collect();
        let transit_gateways = inv
            .transit_gateways
            .iter()
            .filter(|t| tgw_ids.contains(t.id.as_str()))
            .cloned()
            .collect();
        let transit_gateway_route_tables = inv
            .transit_gateway_route_tables
            .iter()
            .filter(|t| tgw_ids.contains(t.transit_gateway_id.as_str()))
            .cloned()
            .collect();
        let vgw_ids: BTreeSet<&str> = vpn_gateways.iter().map(|g| g.id.as_str()).collect();
        let vpn_connections: Vec<VpnConnection> = inv
            .vpn_connections
            .iter()
            .filter(|c| {
                c.vpn_gateway_id
                    .as_deref()
                    .is_some_and(|g| vgw_ids.contains(g))
                    || c.transit_gateway_id
                        .as_deref()
                        .is_some_and(|t| tgw_ids.contains(t))
            })
            .cloned()
            .collect();
        let cgw_ids: BTreeSet<&str> = vpn_connections
            .iter()
            .map(|c| c.customer_gateway_id.as_str())
            .collect();
        let customer_gateways = inv
            .customer_gateways
            .iter()
            .filter(|g| cgw_ids.contains(g.id.as_str()))
            .cloned()
            .collect();
        let dhcp_options = vpc
            .dhcp_options_id
            .as_deref()
            .and_then(|d| inv.dhcp_options.iter().find(|o| o.id == d))
            .cloned();
        let mut pl_ids = BTreeSet::new();
        for g in &security_groups {
            prefix_lists_of(&g.ingress, &mut pl_ids);
            prefix_lists_of(&g.egress, &mut pl_ids);
        }
        for t in &route_tables {
            for r in &t.routes {
                if let Some(p) = &r.destination_prefix_list_id {
                    pl_ids.insert(p.clone());
                }
            }
        }
        let prefix_lists = inv
            .prefix_lists
            .iter()
            .filter(|p| pl_ids.contains(&p.id))
            .cloned()
            .collect();
        let peering_connections = inv
            .peering_connections
            .iter()
            .filter(|p| mine(&p.requester.vpc_id) || mine(&p.accepter.vpc_id))
            .cloned()
            .collect();
        out.insert(
            vpc.id.clone(),
            CaptureDoc {
                vpc: vpc.clone(),
                subnets,
                security_groups,
                route_tables,
                network_acls,
                internet_gateways,
                egress_only_internet_gateways,
                nat_gateways,
                vpn_gateways,
                vpn_connections,
                customer_gateways,
                dhcp_options,
                prefix_lists,
                peering_connections,
                transit_gateways,
                transit_gateway_attachments,
                transit_gateway_route_tables,
            },
        );
    }
    out
}

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

/// The key under which run mode remembers a capture's last run.
pub fn run_key(capture: &str) -> String {
    format!("vpc_capture.{capture}")
}

/// The `vpc_capture` blocks run mode should capture at `now`: those with an
/// `every` whose last run (by `run_key`) is at least one interval ago.
pub fn due_captures(
    config: &Config,
    last: &BTreeMap<String, DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Vec<String> {
    config
        .vpc_captures
        .values()
        .filter_map(|c| {
            let every = c.every?.nominal_duration();
            match last.get(&run_key(&c.name)) {
                Some(l) if *l + every > now => None,
                _ => Some(c.name.clone()),
            }
        })
        .collect()
}

/// When the next capture comes due (now, for one never run).
pub fn next_capture(
    config: &Config,
    last: &BTreeMap<String, DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    config
        .vpc_captures
        .values()
        .filter_map(|c| {
            let every = c.every?.nominal_duration();
            Some(last.get(&run_key(&c.name)).map_or(now, |l| *l + every))
        })
        .min()
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
    use crate::cloud::Tags;

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
    fn captures_are_due_once_per_interval_in_run_mode() {
        let mut config = Config::default();
        config.vpc_captures.insert(
            "prod".into(),
            VpcCapture {
                name: "prod".into(),
                account: "main".into(),
                regions: vec![],
                every: Some(lifeboat_schema::Every {
                    count: 4,
                    unit: lifeboat_schema::EveryUnit::Hours,
                }),
                location: Default::default(),
            },
        );
        let t = |h: u32| -> DateTime<Utc> { format!("2026-11-22T{h:02}:00:00Z").parse().unwrap() };
        let mut last = BTreeMap::new();
        assert_eq!(
            due_captures(&config, &last, t(10)),
            vec!["prod".to_string()]
        );
        last.insert(run_key("prod"), t(10));
        assert!(due_captures(&config, &last, t(13)).is_empty());
        assert_eq!(
            due_captures(&config, &last, t(14)),
            vec!["prod".to_string()]
        );
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
    use lifeboat_schema::{Account, AccountKind};

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn rule(port: i32, peer: RulePeer) -> SecurityGroupRule {
        SecurityGroupRule {
            protocol: "tcp".into(),
            from_port: Some(port),
            to_port: Some(port),
            peer,
            description: None,
        }
    }

    fn group_peer(id: &str) -> RulePeer {
        RulePeer::Group {
            group_id: id.into(),
            user_id: None,
            vpc_id: None,
            vpc_peering_connection_id: None,
        }
    }

    /// Two VPCs sharing a region: one with a full estate, one bare.
    pub(crate) fn inventory() -> RegionInventory {
        RegionInventory {
            vpcs: vec![
                Vpc {
                    id: "vpc-b".into(),
                    cidr_blocks: vec!["10.1.0.0/16".into()],
                    instance_tenancy: "default".into(),
                    dhcp_options_id: Some("dopt-1".into()),
                    ..Vpc::default()
                },
                Vpc {
                    id: "vpc-a".into(),
                    cidr_blocks: vec!["10.0.0.0/16".into(), "10.2.0.0/16".into()],
                    ipv6_cidr_blocks: vec!["2600:1f18::/56".into()],
                    instance_tenancy: "default".into(),
                    dhcp_options_id: Some("dopt-1".into()),
                    enable_dns_support: Some(true),
                    enable_dns_hostnames: Some(false),
                    tags: tags(&[("Name", "prod")]),
                    ..Vpc::default()
                },
            ],
            subnets: vec![
                Subnet {
                    id: "subnet-2".into(),
                    vpc_id: "vpc-a".into(),
                    availability_zone: "us-east-1b".into(),
                    cidr_block: Some("10.0.2.0/24".into()),
                    ..Subnet::default()
                },
                Subnet {
                    id: "subnet-1".into(),
                    vpc_id: "vpc-a".into(),
                    availability_zone: "us-east-1a".into(),
                    cidr_block: Some("10.0.1.0/24".into()),
                    map_public_ip_on_launch: true,
                    ..Subnet::default()
                },
                Subnet {
                    id: "subnet-9".into(),
                    vpc_id: "vpc-b".into(),
                    availability_zone: "us-east-1a".into(),
                    cidr_block: Some("10.1.1.0/24".into()),
                    ..Subnet::default()
                },
            ],
            security_groups: vec![
                SecurityGroup {
                    id: "sg-web".into(),
                    vpc_id: "vpc-a".into(),
                    name: "web".into(),
                    description: "web".into(),
                    ingress: vec![
                        rule(443, RulePeer::Cidr("0.0.0.0/0".into())),
                        rule(80, RulePeer::PrefixList("pl-1".into())),
                        rule(22, RulePeer::Ipv6Cidr("::/0".into())),
                    ],
                    egress: vec![rule(5432, group_peer("sg-db"))],
                    ..SecurityGroup::default()
                },
                SecurityGroup {
                    id: "sg-db".into(),
                    vpc_id: "vpc-a".into(),
                    name: "db".into(),
                    description: "db".into(),
                    ingress: vec![rule(5432, group_peer("sg-web"))],
                    ..SecurityGroup::default()
                },
            ],
            route_tables: vec![RouteTable {
                id: "rtb-1".into(),
                vpc_id: "vpc-a".into(),
                routes: vec![
                    Route {
                        destination_cidr: Some("0.0.0.0/0".into()),
                        destination_ipv6_cidr: None,
                        destination_prefix_list_id: None,
                        target: RouteTarget::Gateway("igw-1".into()),
                        state: "active".into(),
                        origin: "CreateRoute".into(),
                    },
                    Route {
                        destination_cidr: Some("10.0.0.0/16".into()),
                        destination_ipv6_cidr: None,
                        destination_prefix_list_id: None,
                        target: RouteTarget::Local,
                        state: "active".into(),
                        origin: "CreateRouteTable".into(),
                    },
                    Route {
                        destination_cidr: None,
                        destination_ipv6_cidr: None,
                        destination_prefix_list_id: Some("pl-2".into()),
                        target: RouteTarget::TransitGateway("tgw-1".into()),
                        state: "active".into(),
                        origin: "CreateRoute".into(),
                    },
                ],
                associations: vec![
                    RouteTableAssociation {
                        id: "rtbassoc-2".into(),
                        target: AssociationTarget::Subnet("subnet-1".into()),
                    },
                    RouteTableAssociation {
                        id: "rtbassoc-1".into(),
                        target: AssociationTarget::Main,
                    },
                ],
                ..RouteTable::default()
            }],
            internet_gateways: vec![
                InternetGateway {
                    id: "igw-1".into(),
                    attachments: vec![GatewayAttachment {
                        vpc_id: "vpc-a".into(),
                        state: "available".into(),
                    }],
                    ..InternetGateway::default()
                },
                InternetGateway {
                    id: "igw-detached".into(),
                    ..InternetGateway::default()
                },
            ],
            vpn_gateways: vec![VpnGateway {
                id: "vgw-1".into(),
                gateway_type: "ipsec.1".into(),
                attachments: vec![GatewayAttachment {
                    vpc_id: "vpc-a".into(),
                    state: "attached".into(),
                }],
                ..VpnGateway::default()
            }],
            customer_gateways: vec![
                CustomerGateway {
                    id: "cgw-1".into(),
                    gateway_type: "ipsec.1".into(),
                    ..CustomerGateway::default()
                },
                CustomerGateway {
                    id: "cgw-unused".into(),
                    ..CustomerGateway::default()
                },
            ],
            vpn_connections: vec![VpnConnection {
                id: "vpn-1".into(),
                customer_gateway_id: "cgw-1".into(),
                vpn_gateway_id: Some("vgw-1".into()),
                ..VpnConnection::default()
            }],
            dhcp_options: vec![DhcpOptions {
                id: "dopt-1".into(),
                configurations: [(
                    "domain-name-servers".to_string(),
                    vec!["AmazonProvidedDNS".to_string()],
                )]
                .into(),
                ..DhcpOptions::default()
            }],
            prefix_lists: vec![
                ManagedPrefixList {
                    id: "pl-1".into(),
                    name: "office".into(),
                    entries: vec![
                        PrefixListEntry {
                            cidr: "192.0.2.0/24".into(),
                            description: None,
                        },
                        PrefixListEntry {
                            cidr: "198.51.100.0/24".into(),
                            description: None,
                        },
                    ],
                    ..ManagedPrefixList::default()
                },
                ManagedPrefixList {
                    id: "pl-2".into(),
                    name: "partners".into(),
                    ..ManagedPrefixList::default()
                },
                ManagedPrefixList {
                    id: "pl-unused".into(),
                    ..ManagedPrefixList::default()
                },
            ],
            peering_connections: vec![VpcPeeringConnection {
                id: "pcx-1".into(),
                requester: PeeringSide {
                    vpc_id: "vpc-b".into(),
                    ..PeeringSide::default()
                },
                accepter: PeeringSide {
                    vpc_id: "vpc-a".into(),
                    ..PeeringSide::default()
                },
                status: "active".into(),
                ..VpcPeeringConnection::default()
            }],
            transit_gateways: vec![TransitGateway {
                id: "tgw-1".into(),
                ..TransitGateway::default()
            }],
            transit_gateway_attachments: vec![TransitGatewayVpcAttachment {
                id: "tgw-attach-1".into(),
                transit_gateway_id: "tgw-1".into(),
                vpc_id: "vpc-a".into(),
                subnet_ids: vec!["subnet-2".into(), "subnet-1".into()],
                ..TransitGatewayVpcAttachment::default()
            }],
            transit_gateway_route_tables: vec![TransitGatewayRouteTable {
                id: "tgw-rtb-1".into(),
                transit_gateway_id: "tgw-1".into(),
                default_association: true,
                default_propagation: true,
                ..TransitGatewayRouteTable::default()
            }],
            ..RegionInventory::default()
        }
    }

    fn reversed(mut inv: RegionInventory) -> RegionInventory {
        inv.vpcs.reverse();
        inv.subnets.reverse();
        inv.security_groups.reverse();
        for g in &mut inv.security_groups {
            g.ingress.reverse();
        }
        for t in &mut inv.route_tables {
            t.routes.reverse();
            t.associations.reverse();
        }
        inv.prefix_lists.reverse();
        for p in &mut inv.prefix_lists {
            p.entries.reverse();
        }
        for a in &mut inv.transit_gateway_attachments {
            a.subnet_ids.reverse();
        }
        inv.internet_gateways.reverse();
        inv.customer_gateways.reverse();
        inv
    }

    #[test]
    fn each_vpc_gets_its_own_resources_and_the_region_level_ones_it_uses() {
        let docs = documents(&inventory());
        assert_eq!(docs.keys().collect::<Vec<_>>(), ["vpc-a", "vpc-b"]);
        let a = &docs["vpc-a"];
        let ids = |v: Vec<&str>| v.join(",");
        assert_eq!(
            ids(a.subnets.iter().map(|s| s.id.as_str()).collect()),
            "subnet-1,subnet-2"
        );
        assert_eq!(
            ids(a.security_groups.iter().map(|s| s.id.as_str()).collect()),
            "sg-db,sg-web"
        );
        assert_eq!(
            ids(a.internet_gateways.iter().map(|g| g.id.as_str()).collect()),
            "igw-1"
        );
        assert_eq!(a.vpn_connections.len(), 1);
        assert_eq!(
            ids(a.customer_gateways.iter().map(|g| g.id.as_str()).collect()),
            "cgw-1"
        );
        assert_eq!(
            ids(a.prefix_lists.iter().map(|p| p.id.as_str()).collect()),
            "pl-1,pl-2",
            "the lists named by rules and routes, not the unused one"
        );
        assert_eq!(a.dhcp_options.as_ref().unwrap().id, "dopt-1");
        assert_eq!(a.transit_gateways.len(), 1);
        assert_eq!(a.transit_gateway_route_tables.len(), 1);
        assert_eq!(a.peering_connections.len(), 1);

        let b = &docs["vpc-b"];
        assert_eq!(b.subnets.len(), 1);
        assert!(b.security_groups.is_empty() && b.internet_gateways.is_empty());
        assert!(b.transit_gateways.is_empty() && b.customer_gateways.is_empty());
        assert_eq!(b.peering_connections.len(), 1, "either side counts");
        assert_eq!(b.dhcp_options.as_ref().unwrap().id, "dopt-1");
    }

    #[test]
    fn lists_are_sorted_and_the_order_of_the_answer_never_changes_the_bytes() {
        let docs = documents(&inventory());
        let again = documents(&reversed(inventory()));
        for (id, d) in &docs {
            assert_eq!(d.canonical_json(), again[id].canonical_json());
            assert_eq!(d.hash(), again[id].hash());
            assert_eq!(d.hash().len(), 64);
        }
        let a = &docs["vpc-a"];
        let web = a.security_groups.iter().find(|g| g.id == "sg-web").unwrap();
        let ports: Vec<_> = web.ingress.iter().map(|r| r.from_port.unwrap()).collect();
        assert!(ports.windows(2).all(|w| w[0] <= w[1]), "{ports:?}");
        let rt = &a.route_tables[0];
        assert_eq!(rt.associations[0].target, AssociationTarget::Main);
        assert_eq!(rt.routes[0].destination_cidr, None, "None sorts first");
        assert_eq!(
            a.transit_gateway_attachments[0].subnet_ids,
            ["subnet-1", "subnet-2"]
        );
    }

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

    #[test]
    fn the_document_json_names_route_targets_and_peers_by_kind() {
        let docs = documents(&inventory());
        let v = serde_json::to_value(&docs["vpc-a"]).unwrap();
        let routes = &v["route_tables"][0]["routes"];
        assert!(routes
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["target"] == serde_json::json!({"kind": "gateway", "id": "igw-1"})));
        assert!(routes
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["target"] == serde_json::json!({"kind": "local"})));
        let back: CaptureDoc = serde_json::from_value(v).unwrap();
        assert_eq!(back, docs["vpc-a"]);
    }

    /// The document format is pinned: a change to it makes every stored
    /// VPC look changed at the next capture, so it must be deliberate.
    /// `LIFEBOAT_BLESS=1` rewrites `testdata/vpc/`.
    #[test]
    fn documents_match_the_golden_files() {
        let dir = std::path::Path::new(
            &std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
        )
        .join("../testdata/vpc");
        let docs = documents(&inventory());
        let mut hashes = String::new();
        for (id, doc) in &docs {
            hashes.push_str(&format!("{id} {}\n", doc.hash()));
        }
        let mut files: Vec<(String, String)> = docs
            .iter()
            .map(|(id, d)| (format!("{id}.json"), d.pretty() + "\n"))
            .collect();
        files.push(("hashes.txt".into(), hashes));
        for (name, text) in files {
            let path = dir.join(&name);
            if std::env::var_os("LIFEBOAT_BLESS").is_some() {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &text).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (LIFEBOAT_BLESS=1 writes it)", path.display()));
            assert!(
                want == text,
                "{name} differs from the golden file:\n{}",
                diff_documents(&want, &text, "golden", "now")
            );
        }
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
