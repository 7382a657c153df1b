//! The network as AWS lists it: VPCs and everything network-shaped in one
//! account and region. The [`Network`](super::Network) port returns a
//! [`RegionInventory`]; VPC capture (`crate::vpc`) normalises and cuts it.
//! These are plain values of the cloud port, so `cloud` does not depend on
//! the VPC feature that uses them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Tags;

/// A VPC's own settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vpc {
    pub id: String,
    /// IPv4 CIDR blocks, the primary one included.
    pub cidr_blocks: Vec<String>,
    pub ipv6_cidr_blocks: Vec<String>,
    /// `default`, `dedicated` or `host`.
    pub instance_tenancy: String,
    pub is_default: bool,
    pub dhcp_options_id: Option<String>,
    /// From DescribeVpcAttribute; `None` when it could not be read.
    pub enable_dns_support: Option<bool>,
    pub enable_dns_hostnames: Option<bool>,
    pub tags: Tags,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    pub id: String,
    pub vpc_id: String,
    pub availability_zone: String,
    pub cidr_block: Option<String>,
    pub ipv6_cidr_blocks: Vec<String>,
    pub map_public_ip_on_launch: bool,
    pub assign_ipv6_address_on_creation: bool,
    pub tags: Tags,
}

/// Where a security-group rule lets traffic come from (ingress) or go to
/// (egress). EC2 groups several of these in one permission; a capture keeps
/// one rule per peer so that adding a peer changes one line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RulePeer {
    Cidr(String),
    Ipv6Cidr(String),
    PrefixList(String),
    Group {
        group_id: String,
        /// The group's account, when the service says.
        user_id: Option<String>,
        /// Set for groups of a peered VPC.
        vpc_id: Option<String>,
        vpc_peering_connection_id: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SecurityGroupRule {
    /// `tcp`, `udp`, `icmp`, `icmpv6`, a protocol number, or `-1` for all.
    pub protocol: String,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub peer: RulePeer,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroup {
    pub id: String,
    pub vpc_id: String,
    pub name: String,
    pub description: String,
    pub ingress: Vec<SecurityGroupRule>,
    pub egress: Vec<SecurityGroupRule>,
    pub tags: Tags,
}

/// Where a route sends traffic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum RouteTarget {
    /// The VPC itself (`local`).
    Local,
    /// An internet gateway or a virtual private gateway.
    Gateway(String),
    EgressOnlyInternetGateway(String),
    NatGateway(String),
    TransitGateway(String),
    VpcPeeringConnection(String),
    Instance(String),
    NetworkInterface(String),
    CarrierGateway(String),
    LocalGateway(String),
    CoreNetwork(String),
    /// A route without a target the service named (a blackhole left by a
    /// deleted target, for example).
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Route {
    pub destination_cidr: Option<String>,
    pub destination_ipv6_cidr: Option<String>,
    pub destination_prefix_list_id: Option<String>,
    pub target: RouteTarget,
    /// `active` or `blackhole`.
    pub state: String,
    /// `CreateRouteTable`, `CreateRoute` or `EnableVgwRoutePropagation`.
    pub origin: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum AssociationTarget {
    /// The VPC's main route table.
    Main,
    Subnet(String),
    Gateway(String),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RouteTableAssociation {
    pub id: String,
    pub target: AssociationTarget,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTable {
    pub id: String,
    pub vpc_id: String,
    pub routes: Vec<Route>,
    pub associations: Vec<RouteTableAssociation>,
    /// Virtual private gateways whose routes are propagated into this table.
    pub propagating_vgws: Vec<String>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NetworkAclEntry {
    pub egress: bool,
    pub rule_number: i32,
    pub protocol: String,
    /// `allow` or `deny`.
    pub action: String,
    pub cidr_block: Option<String>,
    pub ipv6_cidr_block: Option<String>,
    /// `(from, to)` ports for TCP and UDP.
    pub port_range: Option<(i32, i32)>,
    /// `(type, code)` for ICMP.
    pub icmp: Option<(i32, i32)>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NetworkAclAssociation {
    pub id: String,
    pub subnet_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAcl {
    pub id: String,
    pub vpc_id: String,
    pub is_default: bool,
    pub entries: Vec<NetworkAclEntry>,
    pub associations: Vec<NetworkAclAssociation>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GatewayAttachment {
    pub vpc_id: String,
    pub state: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InternetGateway {
    pub id: String,
    pub attachments: Vec<GatewayAttachment>,
    pub tags: Tags,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressOnlyInternetGateway {
    pub id: String,
    pub attachments: Vec<GatewayAttachment>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NatGatewayAddress {
    pub allocation_id: Option<String>,
    pub public_ip: Option<String>,
    pub private_ip: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatGateway {
    pub id: String,
    pub vpc_id: String,
    pub subnet_id: String,
    /// `public` or `private`.
    pub connectivity_type: String,
    pub addresses: Vec<NatGatewayAddress>,
    pub tags: Tags,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpnGateway {
    pub id: String,
    pub gateway_type: String,
    pub amazon_side_asn: Option<i64>,
    pub attachments: Vec<GatewayAttachment>,
    pub tags: Tags,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerGateway {
    pub id: String,
    pub gateway_type: String,
    pub bgp_asn: Option<String>,
    pub ip_address: Option<String>,
    pub device_name: Option<String>,
    pub tags: Tags,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpnConnection {
    pub id: String,
    pub connection_type: String,
    pub customer_gateway_id: String,
    pub vpn_gateway_id: Option<String>,
    pub transit_gateway_id: Option<String>,
    pub static_routes_only: Option<bool>,
    /// Destination CIDRs of its static routes.
    pub routes: Vec<String>,
    pub tags: Tags,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhcpOptions {
    pub id: String,
    /// `domain-name-servers` -> values, and so on.
    pub configurations: BTreeMap<String, Vec<String>>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PrefixListEntry {
    pub cidr: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedPrefixList {
    pub id: String,
    pub name: String,
    /// `IPv4` or `IPv6`.
    pub address_family: String,
    pub max_entries: Option<i32>,
    pub owner_id: Option<String>,
    /// Empty for AWS-managed lists, whose entries are not read.
    pub entries: Vec<PrefixListEntry>,
    pub tags: Tags,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PeeringSide {
    pub vpc_id: String,
    pub owner_id: Option<String>,
    pub region: Option<String>,
    pub cidr_blocks: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpcPeeringConnection {
    pub id: String,
    pub requester: PeeringSide,
    pub accepter: PeeringSide,
    pub status: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitGateway {
    pub id: String,
    pub description: Option<String>,
    pub amazon_side_asn: Option<i64>,
    /// The gateway's options (`dns_support`, `vpn_ecmp_support`,
    /// `default_route_table_association`, ...) as `enable`/`disable` or ids.
    pub options: BTreeMap<String, String>,
    pub tags: Tags,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitGatewayVpcAttachment {
    pub id: String,
    pub transit_gateway_id: String,
    pub vpc_id: String,
    pub subnet_ids: Vec<String>,
    /// `dns_support`, `ipv6_support`, `appliance_mode_support`.
    pub options: BTreeMap<String, String>,
    pub tags: Tags,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitGatewayRouteTable {
    pub id: String,
    pub transit_gateway_id: String,
    pub default_association: bool,
    pub default_propagation: bool,
    pub tags: Tags,
}

/// Everything network-shaped in one account and region, as listed. Deleted
/// and failed resources are left out by the provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionInventory {
    pub vpcs: Vec<Vpc>,
    pub subnets: Vec<Subnet>,
    pub security_groups: Vec<SecurityGroup>,
    pub route_tables: Vec<RouteTable>,
    pub network_acls: Vec<NetworkAcl>,
    pub internet_gateways: Vec<InternetGateway>,
    pub egress_only_internet_gateways: Vec<EgressOnlyInternetGateway>,
    pub nat_gateways: Vec<NatGateway>,
    pub vpn_gateways: Vec<VpnGateway>,
    pub customer_gateways: Vec<CustomerGateway>,
    pub vpn_connections: Vec<VpnConnection>,
    pub dhcp_options: Vec<DhcpOptions>,
    pub prefix_lists: Vec<ManagedPrefixList>,
    pub peering_connections: Vec<VpcPeeringConnection>,
    pub transit_gateways: Vec<TransitGateway>,
    pub transit_gateway_attachments: Vec<TransitGatewayVpcAttachment>,
    pub transit_gateway_route_tables: Vec<TransitGatewayRouteTable>,
}
