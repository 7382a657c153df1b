//! A VPC as a capture document: a region's network as normalised, ordered
//! values, cut into one document per VPC.
//!
//! [`RegionInventory`] is what the [`Network`](crate::cloud::Network) trait
//! returns for one account and region. [`documents`] (pure) cuts it into a
//! [`CaptureDoc`] per VPC: the VPC, everything inside it, and the
//! region-level things it uses. Every list in a document is sorted, so the
//! same network always serialises to the same bytes and the same hash,
//! which is what lets a capture store a new version only on a change.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cloud::network::*;

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
        out.insert(vpc.id.clone(), document(&inv, vpc));
    }
    out
}

/// One VPC's document, cut from a normalised inventory.
fn document(inv: &RegionInventory, vpc: &Vpc) -> CaptureDoc {
    let mut doc = CaptureDoc {
        vpc: vpc.clone(),
        ..inside(inv, &vpc.id)
    };
    add_transit_gateways(inv, &mut doc);
    add_vpn_connections(inv, &mut doc);
    doc.dhcp_options = vpc
        .dhcp_options_id
        .as_deref()
        .and_then(|d| inv.dhcp_options.iter().find(|o| o.id == d))
        .cloned();
    doc.prefix_lists = prefix_lists_named(inv, &doc);
    doc
}

/// The items `keep` accepts, in their order.
fn kept<T: Clone>(items: &[T], keep: impl Fn(&T) -> bool) -> Vec<T> {
    items.iter().filter(|x| keep(x)).cloned().collect()
}

/// What belongs to the VPC itself: the resources in it, the gateways and
/// transit gateway attachments on it, and the peering connections it is
/// either side of.
fn inside(inv: &RegionInventory, id: &str) -> CaptureDoc {
    let mine = |v: &str| v == id;
    CaptureDoc {
        subnets: kept(&inv.subnets, |s| mine(&s.vpc_id)),
        security_groups: kept(&inv.security_groups, |g| mine(&g.vpc_id)),
        route_tables: kept(&inv.route_tables, |t| mine(&t.vpc_id)),
        network_acls: kept(&inv.network_acls, |a| mine(&a.vpc_id)),
        internet_gateways: kept(&inv.internet_gateways, |g| attached(&g.attachments, id)),
        egress_only_internet_gateways: kept(&inv.egress_only_internet_gateways, |g| {
            attached(&g.attachments, id)
        }),
        nat_gateways: kept(&inv.nat_gateways, |g| mine(&g.vpc_id)),
        vpn_gateways: kept(&inv.vpn_gateways, |g| attached(&g.attachments, id)),
        peering_connections: kept(&inv.peering_connections, |p| {
            mine(&p.requester.vpc_id) || mine(&p.accepter.vpc_id)
        }),
        transit_gateway_attachments: kept(&inv.transit_gateway_attachments, |a| mine(&a.vpc_id)),
        ..CaptureDoc::default()
    }
}

/// The transit gateways a VPC's attachments lead to.
fn attached_transit_gateways(attachments: &[TransitGatewayVpcAttachment]) -> BTreeSet<&str> {
    attachments
        .iter()
        .map(|a| a.transit_gateway_id.as_str())
        .collect()
}

/// The transit gateways the VPC is attached to, and their route tables.
fn add_transit_gateways(inv: &RegionInventory, doc: &mut CaptureDoc) {
    let tgw_ids = attached_transit_gateways(&doc.transit_gateway_attachments);
    doc.transit_gateways = kept(&inv.transit_gateways, |t| tgw_ids.contains(t.id.as_str()));
    doc.transit_gateway_route_tables = kept(&inv.transit_gateway_route_tables, |t| {
        tgw_ids.contains(t.transit_gateway_id.as_str())
    });
}

/// The VPN connections on the VPC's VPN gateways or on a transit gateway it
/// is attached to, and the customer gateways at their other end.
fn add_vpn_connections(inv: &RegionInventory, doc: &mut CaptureDoc) {
    let tgw_ids = attached_transit_gateways(&doc.transit_gateway_attachments);
    let vgw_ids: BTreeSet<&str> = doc.vpn_gateways.iter().map(|g| g.id.as_str()).collect();
    doc.vpn_connections = kept(&inv.vpn_connections, |c| {
        c.vpn_gateway_id
            .as_deref()
            .is_some_and(|g| vgw_ids.contains(g))
            || c.transit_gateway_id
                .as_deref()
                .is_some_and(|t| tgw_ids.contains(t))
    });
    let cgw_ids: BTreeSet<&str> = doc
        .vpn_connections
        .iter()
        .map(|c| c.customer_gateway_id.as_str())
        .collect();
    doc.customer_gateways = kept(&inv.customer_gateways, |g| cgw_ids.contains(g.id.as_str()));
}

/// The prefix lists the VPC's security group rules and routes name.
fn prefix_lists_named(inv: &RegionInventory, doc: &CaptureDoc) -> Vec<ManagedPrefixList> {
    let mut pl_ids = BTreeSet::new();
    for g in &doc.security_groups {
        prefix_lists_of(&g.ingress, &mut pl_ids);
        prefix_lists_of(&g.egress, &mut pl_ids);
    }
    for t in &doc.route_tables {
        for r in &t.routes {
            if let Some(p) = &r.destination_prefix_list_id {
                pl_ids.insert(p.clone());
            }
        }
    }
    kept(&inv.prefix_lists, |p| pl_ids.contains(&p.id))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cloud::Tags;
    use crate::vpc::capture::diff_documents;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    pub(crate) fn rule(port: i32, peer: RulePeer) -> SecurityGroupRule {
        SecurityGroupRule {
            protocol: "tcp".into(),
            from_port: Some(port),
            to_port: Some(port),
            peer,
            description: None,
        }
    }

    pub(crate) fn group_peer(id: &str) -> RulePeer {
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
}
