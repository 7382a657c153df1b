//! Export of a captured VPC as a CloudFormation template that recreates its
//! network in another region or account.
//!
//! CONTRACT (shared by `lifeboat vpc export` and the `vpc_clone` planner):
//! the signatures below are fixed; the body is being written.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::cloud::network::{
    AssociationTarget, ManagedPrefixList, Route, RouteTarget, RulePeer, SecurityGroupRule,
};
use crate::cloud::Tags;
use crate::vpc::capture::CaptureDoc;

/// CloudFormation's limit for an inline TemplateBody, in bytes.
pub const TEMPLATE_BODY_LIMIT: usize = 51_200;

/// CloudFormation's limit of resources in one template. A larger export is
/// still returned (the count is in [`Export::resource_counts`]); callers
/// warn, since CreateStack will refuse it.
pub const RESOURCE_LIMIT: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// The region the capture was taken in.
    pub source_region: String,
    /// When the capture was taken (tagged on every resource).
    pub captured_at: DateTime<Utc>,
    /// Where the template will be deployed.
    pub to_region: String,
    /// The availability zones of `to_region`, as DescribeAvailabilityZones
    /// lists them (e.g. `us-west-2a`, `us-west-2b`).
    pub to_zones: Vec<String>,
    /// The clone's Name tag; default: the original name + " (cloned)".
    pub name: Option<String>,
}

/// Something of the source network the template does not carry, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LeftOut {
    /// What, e.g. `route rtb-0abc 10.1.0.0/16 -> pcx-0def`.
    pub what: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Export {
    /// The template (JSON), deterministic for the same inputs.
    pub template: serde_json::Value,
    pub left_out: Vec<LeftOut>,
    /// Resources in the template by CloudFormation type.
    pub resource_counts: BTreeMap<String, usize>,
}

impl Export {
    /// The template as deployable text: pretty JSON with a trailing newline.
    pub fn text(&self) -> String {
        serde_json::to_string_pretty(&self.template).expect("templates serialise") + "\n"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// The destination has fewer zones than the source uses (by letter).
    #[error("{0}")]
    Zones(String),
}

/// Builds the template for `doc`.
///
/// Pure and deterministic: logical ids come from the original ids (or, for
/// rules and routes, from a hash of their content), resources are kept in a
/// sorted map, and everything the template does not carry is returned in
/// [`Export::left_out`], sorted.
pub fn export(doc: &CaptureDoc, opts: &ExportOptions) -> Result<Export, ExportError> {
    let zones = zone_map(doc, opts)?;
    let mut b = Builder {
        doc,
        opts,
        zones,
        resources: BTreeMap::new(),
        left_out: Vec::new(),
    };
    b.vpc();
    b.dhcp_options();
    b.prefix_lists();
    b.subnets();
    b.gateways();
    b.nat_gateways();
    b.security_groups();
    b.route_tables();
    b.network_acls();
    b.vpn();
    b.not_carried();
    b.finish()
}

// ---------------------------------------------------------------------------
// Availability zones

/// Maps every zone the capture's subnets use to a destination zone.
///
/// A zone name (`us-east-1b`) keeps its suffix after the region name (`b`,
/// or `-bos-1a` for a Local Zone) and must exist in the destination as
/// `<to_region><suffix>`. A zone id (`use1-az2`) does not say which zone
/// name it is in the source account; it is mapped to the destination's zone
/// of the same ordinal (the second zone for `az2`), which keeps subnets that
/// were in distinct zones in distinct zones.
fn zone_map(
    doc: &CaptureDoc,
    opts: &ExportOptions,
) -> Result<BTreeMap<String, String>, ExportError> {
    let mut dest: Vec<&str> = opts.to_zones.iter().map(String::as_str).collect();
    dest.sort();
    dest.dedup();
    // Standard zones of the destination (`us-west-2a`), for ordinal mapping.
    let standard: Vec<&str> = dest
        .iter()
        .copied()
        .filter(|z| {
            z.strip_prefix(opts.to_region.as_str())
                .is_some_and(|s| s.len() == 1 && s.chars().all(|c| c.is_ascii_lowercase()))
        })
        .collect();
    let mut out = BTreeMap::new();
    let mut missing: Vec<String> = Vec::new();
    let used: std::collections::BTreeSet<&str> = doc
        .subnets
        .iter()
        .map(|s| s.availability_zone.as_str())
        .collect();
    for az in used {
        if let Some(suffix) = az.strip_prefix(opts.source_region.as_str()) {
            let want = format!("{}{suffix}", opts.to_region);
            if dest.contains(&want.as_str()) {
                out.insert(az.to_string(), want);
            } else {
                missing.push(format!("{} (for {az})", suffix.trim_start_matches('-')));
            }
        } else if let Some(n) = az_id_ordinal(az) {
            match standard.get(n - 1) {
                Some(z) => {
                    out.insert(az.to_string(), z.to_string());
                }
                None => missing.push(format!("number {n} (for zone id {az})")),
            }
        } else {
            missing.push(format!(
                "matching {az:?} (not a zone of {})",
                opts.source_region
            ));
        }
    }
    if missing.is_empty() {
        return Ok(out);
    }
    Err(ExportError::Zones(format!(
        "{} has no zone {} that the subnets of {} use; its zones are: {}",
        opts.to_region,
        missing.join(", "),
        doc.vpc.id,
        if dest.is_empty() {
            "none listed".to_string()
        } else {
            dest.join(", ")
        }
    )))
}

/// `use1-az2` -> 2.
fn az_id_ordinal(az: &str) -> Option<usize> {
    let (_, n) = az.rsplit_once("-az")?;
    n.parse().ok().filter(|n| *n > 0)
}

// ---------------------------------------------------------------------------
// Names

/// The id without its type prefix and with only ASCII letters and digits:
/// `subnet-0abc` -> `0abc`.
fn bare(id: &str) -> String {
    let rest = id.split_once('-').map_or(id, |(_, r)| r);
    rest.chars().filter(char::is_ascii_alphanumeric).collect()
}

/// A short content hash for logical ids of things that have no id of
/// their own (rules, routes, CIDR blocks).
fn short_hash(v: &impl Serialize) -> String {
    let text = serde_json::to_string(v).expect("serialises");
    crate::vpc::capture::hex_sha256(text.as_bytes())[..10].to_string()
}

fn lid(kind: &str, id: &str) -> String {
    format!("{kind}{}", bare(id))
}

/// For kinds that hold several types of original (an attachment of an
/// internet or a VPN gateway): the whole id, prefix included.
fn lid_full(kind: &str, id: &str) -> String {
    let id: String = id.chars().filter(char::is_ascii_alphanumeric).collect();
    format!("{kind}{id}")
}

const VPC_LID: &str = "VPC";
const TAG_ORIGINAL_ID: &str = "lifeboat:original-id";
const TAG_ORIGINAL_REGION: &str = "lifeboat:original-region";
const TAG_CAPTURED_AT: &str = "lifeboat:captured-at";

fn r(lid: &str) -> Value {
    json!({ "Ref": lid })
}

fn att(lid: &str, attribute: &str) -> Value {
    json!({ "Fn::GetAtt": [lid, attribute] })
}

fn protocol_number(p: &str) -> Option<i64> {
    match p.to_ascii_lowercase().as_str() {
        "-1" | "all" => Some(-1),
        "tcp" => Some(6),
        "udp" => Some(17),
        "icmp" => Some(1),
        "icmpv6" => Some(58),
        other => other.parse().ok(),
    }
}

fn is_allow_all_egress(rule: &SecurityGroupRule) -> bool {
    rule.protocol == "-1" && rule.peer == RulePeer::Cidr("0.0.0.0/0".into())
}

fn describe_rule(rule: &SecurityGroupRule) -> String {
    let ports = match (rule.from_port, rule.to_port) {
        _ if rule.protocol == "-1" => String::new(),
        (Some(a), Some(b)) if a == b => format!(" {a}"),
        (Some(a), Some(b)) => format!(" {a}-{b}"),
        _ => String::new(),
    };
    let peer = match &rule.peer {
        RulePeer::Cidr(c) | RulePeer::Ipv6Cidr(c) | RulePeer::PrefixList(c) => c.clone(),
        RulePeer::Group {
            group_id, user_id, ..
        } => match user_id {
            Some(u) => format!("{u}/{group_id}"),
            None => group_id.clone(),
        },
    };
    let proto = if rule.protocol == "-1" {
        "all"
    } else {
        rule.protocol.as_str()
    };
    format!("{proto}{ports} {peer}")
}

fn describe_route(table: &str, route: &Route) -> String {
    let dest = route
        .destination_cidr
        .as_deref()
        .or(route.destination_ipv6_cidr.as_deref())
        .or(route.destination_prefix_list_id.as_deref())
        .unwrap_or("?");
    let target = match &route.target {
        RouteTarget::Local => "local".to_string(),
        RouteTarget::None => "no target".to_string(),
        RouteTarget::Gateway(id)
        | RouteTarget::EgressOnlyInternetGateway(id)
        | RouteTarget::NatGateway(id)
        | RouteTarget::TransitGateway(id)
        | RouteTarget::VpcPeeringConnection(id)
        | RouteTarget::Instance(id)
        | RouteTarget::NetworkInterface(id)
        | RouteTarget::CarrierGateway(id)
        | RouteTarget::LocalGateway(id)
        | RouteTarget::CoreNetwork(id) => id.clone(),
    };
    format!("route {table} {dest} -> {target}")
}

/// The domain name AWS's default DHCP options use in a region.
fn default_domain(region: &str) -> String {
    if region == "us-east-1" {
        "ec2.internal".into()
    } else {
        format!("{region}.compute.internal")
    }
}

// ---------------------------------------------------------------------------
// The builder

struct Builder<'a> {
    doc: &'a CaptureDoc,
    opts: &'a ExportOptions,
    zones: BTreeMap<String, String>,
    resources: BTreeMap<String, Value>,
    left_out: Vec<LeftOut>,
}

impl Builder<'_> {
    fn leave(&mut self, what: impl Into<String>, reason: impl Into<String>) {
        self.left_out.push(LeftOut {
            what: what.into(),
            reason: reason.into(),
        });
    }

    fn add(&mut self, lid: &str, kind: &str, properties: Value, depends_on: &[String]) {
        let mut res = json!({
            "Type": kind,
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": properties,
        });
        let mut deps: Vec<&String> = depends_on.iter().collect();
        deps.sort();
        deps.dedup();
        if !deps.is_empty() {
            res["DependsOn"] = json!(deps);
        }
        // Ids of one type never share their bare form, so a clash is a
        // bug; in a release build it gets a deterministic suffix instead.
        debug_assert!(
            !self.resources.contains_key(lid),
            "logical id {lid} used twice"
        );
        let mut key = lid.to_string();
        let mut n = 2;
        while self.resources.contains_key(&key) {
            key = format!("{lid}N{n}");
            n += 1;
        }
        self.resources.insert(key, res);
    }

    /// The tags of a recreated resource: its own (minus `aws:*`), the
    /// original id, region and capture time, and `name` when given.
    fn tags(&self, original_id: &str, own: &Tags, name: Option<String>) -> Value {
        let mut t: BTreeMap<String, String> = own
            .iter()
            .filter(|(k, _)| !k.starts_with("aws:"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        t.insert(TAG_ORIGINAL_ID.into(), original_id.into());
        t.insert(TAG_ORIGINAL_REGION.into(), self.opts.source_region.clone());
        t.insert(
            TAG_CAPTURED_AT.into(),
            self.opts
                .captured_at
                .to_rfc3339_opts(SecondsFormat::Secs, true),
        );
        if let Some(n) = name {
            t.insert("Name".into(), n);
        }
        Value::Array(
            t.into_iter()
                .map(|(k, v)| json!({ "Key": k, "Value": v }))
                .collect(),
        )
    }

    fn is_default_sg(&self, id: &str) -> bool {
        self.doc
            .security_groups
            .iter()
            .any(|g| g.id == id && g.name == "default")
    }

    /// The reference to a captured security group of this VPC.
    fn sg_ref(&self, id: &str) -> Option<Value> {
        if self.is_default_sg(id) {
            Some(att(VPC_LID, "DefaultSecurityGroup"))
        } else if self.doc.security_groups.iter().any(|g| g.id == id) {
            Some(r(&lid("SecurityGroup", id)))
        } else {
            None
        }
    }

    /// Prefix lists the template recreates: the account's own.
    fn own_prefix_list(&self, id: &str) -> Option<&ManagedPrefixList> {
        self.doc
            .prefix_lists
            .iter()
            .find(|p| p.id == id && !aws_managed(p))
    }

    fn subnet_dependencies(&self) -> Vec<String> {
        self.resources
            .iter()
            .filter(|(_, v)| v["Type"] == "AWS::EC2::VPCCidrBlock")
            .map(|(k, _)| k.clone())
            .collect()
    }

    // -- VPC -----------------------------------------------------------------

    fn vpc(&mut self) {
        let v = &self.doc.vpc;
        let name = self.opts.name.clone().unwrap_or_else(|| {
            format!(
                "{} (cloned)",
                v.tags.get("Name").cloned().unwrap_or_else(|| v.id.clone())
            )
        });
        // The capture keeps CIDR blocks sorted, so which block was primary
        // is not known; the first in order becomes the primary one and the
        // others are associated after creation, which yields the same
        // address space.
        let mut props = json!({
            "CidrBlock": v.cidr_blocks.first().cloned().unwrap_or_else(|| "10.0.0.0/16".into()),
            "InstanceTenancy": if v.instance_tenancy.is_empty() { "default" } else { v.instance_tenancy.as_str() },
            "Tags": self.tags(&v.id, &v.tags, Some(name)),
        });
        if let Some(d) = v.enable_dns_support {
            props["EnableDnsSupport"] = json!(d);
        }
        if let Some(d) = v.enable_dns_hostnames {
            props["EnableDnsHostnames"] = json!(d);
        }
        self.add(VPC_LID, "AWS::EC2::VPC", props, &[]);
        if v.cidr_blocks.is_empty() {
            self.leave(
                format!("vpc {} cidr", v.id),
                "the capture lists no IPv4 CIDR block; 10.0.0.0/16 is used",
            );
        }
        for cidr in v.cidr_blocks.iter().skip(1) {
            self.add(
                &format!("VPCCidrBlock{}", short_hash(cidr)),
                "AWS::EC2::VPCCidrBlock",
                json!({ "VpcId": r(VPC_LID), "CidrBlock": cidr }),
                &[],
            );
        }
        if let Some(first) = v.ipv6_cidr_blocks.first() {
            self.add(
                "VPCCidrBlockIpv6",
                "AWS::EC2::VPCCidrBlock",
                json!({ "VpcId": r(VPC_LID), "AmazonProvidedIpv6CidrBlock": true }),
                &[],
            );
            self.leave(
                format!("vpc {} ipv6 block {first}", v.id),
                "IPv6 blocks are assigned by Amazon; the clone gets a new Amazon-provided block and its subnets keep their position in it",
            );
        }
        for extra in v.ipv6_cidr_blocks.iter().skip(1) {
            self.leave(
                format!("vpc {} ipv6 block {extra}", v.id),
                "only one Amazon-provided IPv6 block is created for the clone",
            );
        }
        if v.is_default {
            self.leave(
                format!("vpc {} default", v.id),
                "the clone is an ordinary VPC; a region's default VPC cannot be created by CloudFormation",
            );
        }
    }

    fn dhcp_options(&mut self) {
        let Some(d) = &self.doc.dhcp_options else {
            return;
        };
        let c = &d.configurations;
        let one = |k: &str| c.get(k).map(|v| v.join(" "));
        let src_default = default_domain(&self.opts.source_region);
        let is_default_set = c
            .keys()
            .all(|k| k == "domain-name" || k == "domain-name-servers")
            && one("domain-name").is_none_or(|n| n == src_default)
            && c.get("domain-name-servers")
                .is_none_or(|s| s == &["AmazonProvidedDNS".to_string()]);
        if is_default_set {
            // The destination VPC gets its region's own default set.
            return;
        }
        let mut props = json!({ "Tags": self.tags(&d.id, &d.tags, None) });
        if let Some(n) = one("domain-name") {
            let n = if n == src_default {
                default_domain(&self.opts.to_region)
            } else {
                n
            };
            props["DomainName"] = json!(n);
        }
        for (key, prop) in [
            ("domain-name-servers", "DomainNameServers"),
            ("ntp-servers", "NtpServers"),
            ("netbios-name-servers", "NetbiosNameServers"),
        ] {
            if let Some(v) = c.get(key) {
                props[prop] = json!(v);
            }
        }
        for (key, prop) in [
            ("netbios-node-type", "NetbiosNodeType"),
            (
                "ipv6-address-preferred-lease-time",
                "Ipv6AddressPreferredLeaseTime",
            ),
        ] {
            if let Some(n) = one(key) {
                match n.parse::<i64>() {
                    Ok(n) => props[prop] = json!(n),
                    Err(_) => {
                        self.leave(format!("dhcp options {} {key} {n}", d.id), "not a number")
                    }
                }
            }
        }
        for key in c.keys() {
            if ![
                "domain-name",
                "domain-name-servers",
                "ntp-servers",
                "netbios-name-servers",
                "netbios-node-type",
                "ipv6-address-preferred-lease-time",
            ]
            .contains(&key.as_str())
            {
                self.leave(
                    format!("dhcp options {} {key}", d.id),
                    "CloudFormation has no property for this option",
                );
            }
        }
        let l = lid("DHCPOptions", &d.id);
        self.add(&l, "AWS::EC2::DHCPOptions", props, &[]);
        self.add(
            &format!("VPCDHCPOptionsAssociation{}", bare(&d.id)),
            "AWS::EC2::VPCDHCPOptionsAssociation",
            json!({ "VpcId": r(VPC_LID), "DhcpOptionsId": r(&l) }),
            &[],
        );
    }

    fn prefix_lists(&mut self) {
        for p in &self.doc.prefix_lists {
            if aws_managed(p) {
                // Rules and routes that use it are logged where they are met.
                continue;
            }
            let entries: Vec<Value> = p
                .entries
                .iter()
                .map(|e| {
                    let mut v = json!({ "Cidr": e.cidr });
                    if let Some(d) = &e.description {
                        v["Description"] = json!(d);
                    }
                    v
                })
                .collect();
            let max = p
                .max_entries
                .unwrap_or(0)
                .max(p.entries.len() as i32)
                .max(1);
            let family = if p.address_family.is_empty() {
                "IPv4"
            } else {
                p.address_family.as_str()
            };
            let props = json!({
                "PrefixListName": if p.name.is_empty() { p.id.as_str() } else { p.name.as_str() },
                "AddressFamily": family,
                "MaxEntries": max,
                "Entries": entries,
                "Tags": self.tags(&p.id, &p.tags, None),
            });
            self.add(
                &lid("PrefixList", &p.id),
                "AWS::EC2::PrefixList",
                props,
                &[],
            );
        }
    }

    // -- Subnets -------------------------------------------------------------

    fn subnets(&mut self) {
        let deps = self.subnet_dependencies();
        let v6_block = self.doc.vpc.ipv6_cidr_blocks.first().cloned();
        for s in &self.doc.subnets {
            let az = self
                .zones
                .get(&s.availability_zone)
                .cloned()
                .expect("every zone was mapped");
            let mut props = json!({
                "VpcId": r(VPC_LID),
                "AvailabilityZone": az,
                "Tags": self.tags(&s.id, &s.tags, None),
            });
            if let Some(c) = &s.cidr_block {
                props["CidrBlock"] = json!(c);
            }
            if s.map_public_ip_on_launch {
                props["MapPublicIpOnLaunch"] = json!(true);
            }
            let mut ipv6 = false;
            for (n, block) in s.ipv6_cidr_blocks.iter().enumerate() {
                let cidr = v6_block
                    .as_deref()
                    .and_then(|vpc_block| ipv6_position(vpc_block, block));
                match (n, cidr) {
                    (0, Some((index, count, bits))) => {
                        props["Ipv6CidrBlock"] = json!({
                            "Fn::Select": [index, { "Fn::Cidr": [
                                { "Fn::Select": [0, att(VPC_LID, "Ipv6CidrBlocks")] },
                                count,
                                bits.to_string(),
                            ] }]
                        });
                        ipv6 = true;
                    }
                    (0, None) => self.leave(
                        format!("subnet {} ipv6 block {block}", s.id),
                        "it is not inside the VPC's first IPv6 block by a prefix CloudFormation's Fn::Cidr can express",
                    ),
                    _ => self.leave(
                        format!("subnet {} ipv6 block {block}", s.id),
                        "CloudFormation gives a subnet one IPv6 block",
                    ),
                }
            }
            if ipv6 && s.assign_ipv6_address_on_creation {
                props["AssignIpv6AddressOnCreation"] = json!(true);
            }
            self.add(&lid("Subnet", &s.id), "AWS::EC2::Subnet", props, &deps);
        }
    }

    fn subnet_known(&self, id: &str) -> bool {
        self.doc.subnets.iter().any(|s| s.id == id)
    }

    // -- Gateways ------------------------------------------------------------

    fn gateways(&mut self) {
        for g in &self.doc.internet_gateways {
            let l = lid("InternetGateway", &g.id);
            let props = json!({ "Tags": self.tags(&g.id, &g.tags, None) });
            self.add(&l, "AWS::EC2::InternetGateway", props, &[]);
            self.add(
                &lid_full("VPCGatewayAttachment", &g.id),
                "AWS::EC2::VPCGatewayAttachment",
                json!({ "VpcId": r(VPC_LID), "InternetGatewayId": r(&l) }),
                &[],
            );
        }
        for g in &self.doc.egress_only_internet_gateways {
            let props = json!({ "VpcId": r(VPC_LID), "Tags": self.tags(&g.id, &g.tags, None) });
            self.add(
                &lid("EgressOnlyInternetGateway", &g.id),
                "AWS::EC2::EgressOnlyInternetGateway",
                props,
                &[],
            );
        }
        for g in &self.doc.vpn_gateways {
            let l = lid("VPNGateway", &g.id);
            let mut props = json!({
                "Type": if g.gateway_type.is_empty() { "ipsec.1" } else { g.gateway_type.as_str() },
                "Tags": self.tags(&g.id, &g.tags, None),
            });
            if let Some(asn) = g.amazon_side_asn {
                props["AmazonSideAsn"] = json!(asn);
            }
            self.add(&l, "AWS::EC2::VPNGateway", props, &[]);
            self.add(
                &lid_full("VPCGatewayAttachment", &g.id),
                "AWS::EC2::VPCGatewayAttachment",
                json!({ "VpcId": r(VPC_LID), "VpnGatewayId": r(&l) }),
                &[],
            );
        }
    }

    /// A reference to a recreated internet or VPN gateway, and the
    /// attachment anything routing to it must wait for.
    fn gateway_ref(&self, id: &str) -> Option<(Value, String)> {
        if self.doc.internet_gateways.iter().any(|g| g.id == id) {
            Some((
                r(&lid("InternetGateway", id)),
                lid_full("VPCGatewayAttachment", id),
            ))
        } else if self.doc.vpn_gateways.iter().any(|g| g.id == id) {
            Some((
                r(&lid("VPNGateway", id)),
                lid_full("VPCGatewayAttachment", id),
            ))
        } else {
            None
        }
    }

    fn nat_gateways(&mut self) {
        let igw_attachments: Vec<String> = self
            .doc
            .internet_gateways
            .iter()
            .map(|g| lid_full("VPCGatewayAttachment", &g.id))
            .collect();
        for n in &self.doc.nat_gateways {
            if !self.subnet_known(&n.subnet_id) {
                self.leave(
                    format!("nat gateway {}", n.id),
                    format!("its subnet {} is not in the capture", n.subnet_id),
                );
                continue;
            }
            let l = lid("NatGateway", &n.id);
            let private = n.connectivity_type == "private";
            let mut props = json!({
                "SubnetId": r(&lid("Subnet", &n.subnet_id)),
                "ConnectivityType": if private { "private" } else { "public" },
                "Tags": self.tags(&n.id, &n.tags, None),
            });
            let mut deps = Vec::new();
            if !private {
                // A new Elastic IP: the original address belongs to the
                // source region.
                let eip = lid("EIP", &n.id);
                let original = n
                    .addresses
                    .first()
                    .and_then(|a| a.allocation_id.clone())
                    .unwrap_or_else(|| n.id.clone());
                let eip_props = json!({
                    "Domain": "vpc",
                    "Tags": self.tags(&original, &BTreeMap::new(), None),
                });
                self.add(&eip, "AWS::EC2::EIP", eip_props, &igw_attachments);
                props["AllocationId"] = att(&eip, "AllocationId");
                deps.clone_from(&igw_attachments);
            }
            for a in n.addresses.iter().skip(1) {
                let what = a
                    .public_ip
                    .as_deref()
                    .or(a.private_ip.as_deref())
                    .unwrap_or("?");
                self.leave(
                    format!("nat gateway {} secondary address {what}", n.id),
                    "only the primary address is recreated",
                );
            }
            self.add(&l, "AWS::EC2::NatGateway", props, &deps);
        }
    }

    // -- Security groups -----------------------------------------------------

    /// The properties a rule has in common as an inline rule or a
    /// standalone resource; `None` (logged) when it cannot be carried.
    fn rule_props(&mut self, group: &str, egress: bool, rule: &SecurityGroupRule) -> Option<Value> {
        let direction = if egress { "egress" } else { "ingress" };
        let what = format!("security group {group} {direction} {}", describe_rule(rule));
        let mut p = json!({ "IpProtocol": rule.protocol });
        if rule.protocol != "-1" {
            if let Some(f) = rule.from_port {
                p["FromPort"] = json!(f);
            }
            if let Some(t) = rule.to_port {
                p["ToPort"] = json!(t);
            }
        }
        if let Some(d) = &rule.description {
            p["Description"] = json!(d);
        }
        match &rule.peer {
            RulePeer::Cidr(c) => p["CidrIp"] = json!(c),
            RulePeer::Ipv6Cidr(c) => p["CidrIpv6"] = json!(c),
            RulePeer::PrefixList(id) => {
                if self.own_prefix_list(id).is_none() {
                    self.leave(what, prefix_list_reason(self.doc, id));
                    return None;
                }
                let key = if egress {
                    "DestinationPrefixListId"
                } else {
                    "SourcePrefixListId"
                };
                p[key] = r(&lid("PrefixList", id));
            }
            RulePeer::Group {
                group_id,
                user_id,
                vpc_id,
                vpc_peering_connection_id,
            } => {
                let same_vpc = vpc_id.as_deref().is_none_or(|v| v == self.doc.vpc.id);
                match self.sg_ref(group_id) {
                    Some(reference) if same_vpc => {
                        let key = if egress {
                            "DestinationSecurityGroupId"
                        } else {
                            "SourceSecurityGroupId"
                        };
                        p[key] = reference;
                    }
                    _ => {
                        let reason = match (vpc_peering_connection_id, user_id, vpc_id) {
                            (Some(pcx), _, _) => format!(
                                "the group is in a VPC peered through {pcx}, which the clone is not peered with"
                            ),
                            (None, _, Some(v)) if v != &self.doc.vpc.id => {
                                format!("the group belongs to another VPC ({v})")
                            }
                            (None, Some(u), _) => format!(
                                "the group is not in this VPC (another VPC or account, owner {u})"
                            ),
                            _ => "the group is not in this VPC (another VPC or account)".to_string(),
                        };
                        self.leave(what, reason);
                        return None;
                    }
                }
            }
        }
        Some(p)
    }

    fn security_groups(&mut self) {
        let groups = self.doc.security_groups.clone();
        let ipv6 = !self.doc.vpc.ipv6_cidr_blocks.is_empty();
        for g in &groups {
            let default = g.name == "default";
            let group_ref = self.sg_ref(&g.id).expect("a group of this VPC");
            let mut inline_ingress = Vec::new();
            let mut inline_egress = Vec::new();
            // Rules AWS puts in a new group (or the VPC's default group).
            let has_default_egress = g.egress.iter().any(is_allow_all_egress);
            for (egress, rules) in [(false, &g.ingress), (true, &g.egress)] {
                for rule in rules {
                    if default && default_sg_rule(&g.id, ipv6, egress, rule) {
                        continue; // the new VPC's default group has it already
                    }
                    if !default && egress && has_default_egress && g.egress.len() == 1 {
                        continue; // the only egress rule is the one AWS adds
                    }
                    let Some(mut p) = self.rule_props(&g.id, egress, rule) else {
                        continue;
                    };
                    let standalone = default || matches!(rule.peer, RulePeer::Group { .. });
                    if !standalone {
                        if egress {
                            inline_egress.push(p)
                        } else {
                            inline_ingress.push(p)
                        }
                        continue;
                    }
                    let (kind, prefix) = if egress {
                        ("AWS::EC2::SecurityGroupEgress", "Egress")
                    } else {
                        ("AWS::EC2::SecurityGroupIngress", "Ingress")
                    };
                    p["GroupId"] = group_ref.clone();
                    let l = format!("SecurityGroup{}{prefix}{}", bare(&g.id), short_hash(rule));
                    self.add(&l, kind, p, &[]);
                }
            }
            if default {
                let expected = [
                    (
                        false,
                        RulePeer::Cidr(String::new()),
                        "ingress all from itself",
                    ),
                    (
                        true,
                        RulePeer::Cidr("0.0.0.0/0".into()),
                        "egress all 0.0.0.0/0",
                    ),
                    (true, RulePeer::Ipv6Cidr("::/0".into()), "egress all ::/0"),
                ];
                for (egress, peer, direction) in expected {
                    if !ipv6 && matches!(peer, RulePeer::Ipv6Cidr(_)) {
                        continue;
                    }
                    let rules = if egress { &g.egress } else { &g.ingress };
                    let present = rules.iter().any(|r| {
                        default_sg_rule(&g.id, ipv6, egress, r) && (!egress || r.peer == peer)
                    });
                    if !present {
                        self.leave(
                            format!("security group {} (default) missing rule: {direction}", g.id),
                            "the clone VPC's default security group is created with this rule and CloudFormation cannot remove it; revoke it after deploying",
                        );
                    }
                }
                continue;
            }
            let mut props = json!({
                "VpcId": r(VPC_LID),
                "GroupName": g.name,
                "GroupDescription": if g.description.is_empty() { g.name.as_str() } else { g.description.as_str() },
                "Tags": self.tags(&g.id, &g.tags, None),
            });
            if !inline_ingress.is_empty() {
                props["SecurityGroupIngress"] = Value::Array(inline_ingress);
            }
            // Listing egress rules inline makes CloudFormation replace the
            // allow-all rule AWS adds with exactly these; without any it
            // stays. A group whose egress rules all reference groups (or
            // that has none) gets a rule to the loopback range, which lets
            // nothing out, so that the allow-all rule goes.
            let only_default = has_default_egress && g.egress.len() == 1;
            if !only_default {
                if inline_egress.is_empty() {
                    inline_egress.push(json!({
                        "IpProtocol": "-1",
                        "CidrIp": "127.0.0.1/32",
                        "Description": "placeholder: no IPv4 egress beyond the listed rules",
                    }));
                }
                props["SecurityGroupEgress"] = Value::Array(inline_egress);
            }
            self.add(
                &lid("SecurityGroup", &g.id),
                "AWS::EC2::SecurityGroup",
                props,
                &[],
            );
        }
    }

    // -- Route tables --------------------------------------------------------

    fn route_tables(&mut self) {
        let explicit: std::collections::BTreeSet<&str> = self
            .doc
            .route_tables
            .iter()
            .flat_map(|t| &t.associations)
            .filter_map(|a| match &a.target {
                AssociationTarget::Subnet(s) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        let implicit: Vec<String> = self
            .doc
            .subnets
            .iter()
            .filter(|s| !explicit.contains(s.id.as_str()))
            .map(|s| s.id.clone())
            .collect();
        let tables = self.doc.route_tables.clone();
        for t in &tables {
            let l = lid("RouteTable", &t.id);
            let props = json!({ "VpcId": r(VPC_LID), "Tags": self.tags(&t.id, &t.tags, None) });
            self.add(&l, "AWS::EC2::RouteTable", props, &[]);
            let main = t
                .associations
                .iter()
                .any(|a| a.target == AssociationTarget::Main);
            let mut subnets: Vec<String> = t
                .associations
                .iter()
                .filter_map(|a| match &a.target {
                    AssociationTarget::Subnet(s) => Some(s.clone()),
                    _ => None,
                })
                .collect();
            if main {
                // CloudFormation cannot address a VPC's main route table;
                // the subnets that used it implicitly are associated with
                // its copy explicitly, so they route as before.
                subnets.extend(implicit.iter().cloned());
                self.leave(
                    format!("route table {} main designation", t.id),
                    "CloudFormation cannot replace a VPC's main route table; this table is recreated as an ordinary table, associated explicitly with the subnets that used it implicitly; the clone's own main table has only the local route",
                );
            }
            for s in subnets {
                if !self.subnet_known(&s) {
                    self.leave(
                        format!("route table {} association with {s}", t.id),
                        "the subnet is not in the capture",
                    );
                    continue;
                }
                self.add(
                    &lid("SubnetRouteTableAssociation", &s),
                    "AWS::EC2::SubnetRouteTableAssociation",
                    json!({ "RouteTableId": r(&l), "SubnetId": r(&lid("Subnet", &s)) }),
                    &[],
                );
            }
            for a in &t.associations {
                if let AssociationTarget::Gateway(g) = &a.target {
                    match self.gateway_ref(g) {
                        Some((gw, attachment)) => self.add(
                            &lid_full("GatewayRouteTableAssociation", g),
                            "AWS::EC2::GatewayRouteTableAssociation",
                            json!({ "RouteTableId": r(&l), "GatewayId": gw }),
                            &[attachment],
                        ),
                        None => self.leave(
                            format!("route table {} association with gateway {g}", t.id),
                            "the gateway is not recreated by this export",
                        ),
                    }
                }
            }
            for route in &t.routes {
                self.route(&t.id, &l, route);
            }
            for vgw in &t.propagating_vgws {
                match self.gateway_ref(vgw) {
                    Some((gw, attachment)) => self.add(
                        &format!("VPNGatewayRoutePropagation{}{}", bare(&t.id), bare(vgw)),
                        "AWS::EC2::VPNGatewayRoutePropagation",
                        json!({ "RouteTableIds": [r(&l)], "VpnGatewayId": gw }),
                        &[attachment],
                    ),
                    None => self.leave(
                        format!("route table {} propagation from {vgw}", t.id),
                        "the VPN gateway is not attached to this VPC",
                    ),
                }
            }
        }
    }

    fn route(&mut self, table: &str, table_lid: &str, route: &Route) {
        let what = describe_route(table, route);
        if route.target == RouteTarget::Local {
            return; // every VPC routes its own CIDRs
        }
        if route.origin == "EnableVgwRoutePropagation" {
            self.leave(
                what,
                "propagated by the VPN gateway, not configured; the clone's table propagates routes from the recreated gateway when it did here",
            );
            return;
        }
        if route.state == "blackhole" {
            self.leave(what, "a blackhole route: its target no longer exists");
            return;
        }
        let mut props = json!({ "RouteTableId": r(table_lid) });
        let mut deps = Vec::new();
        let reason = match &route.target {
            RouteTarget::Local => unreachable!("handled above"),
            RouteTarget::Gateway(g) => match self.gateway_ref(g) {
                Some((gw, attachment)) => {
                    props["GatewayId"] = gw;
                    deps.push(attachment);
                    None
                }
                None if g.starts_with("vpce-") => Some(
                    "VPC endpoints are not captured; create the endpoint in the clone and route to it".to_string(),
                ),
                None => Some(format!("the gateway {g} is not attached to this VPC")),
            },
            RouteTarget::EgressOnlyInternetGateway(g) => {
                if self.doc.egress_only_internet_gateways.iter().any(|x| &x.id == g) {
                    props["EgressOnlyInternetGatewayId"] = r(&lid("EgressOnlyInternetGateway", g));
                    None
                } else {
                    Some(format!("the egress-only internet gateway {g} is not attached to this VPC"))
                }
            }
            RouteTarget::NatGateway(n) => {
                if self.resources.contains_key(&lid("NatGateway", n)) {
                    props["NatGatewayId"] = r(&lid("NatGateway", n));
                    None
                } else {
                    Some(format!("the NAT gateway {n} is not recreated (it is not in this VPC's capture)"))
                }
            }
            RouteTarget::TransitGateway(_) => Some(TGW_REASON.to_string()),
            RouteTarget::VpcPeeringConnection(_) => Some(PEERING_REASON.to_string()),
            RouteTarget::Instance(_) => Some(
                "routes to instances are not carried: the instance is not part of the network; recover it and add the route".to_string(),
            ),
            RouteTarget::NetworkInterface(_) => Some(
                "routes to network interfaces are not carried: the interface belongs to an instance or service outside the export".to_string(),
            ),
            RouteTarget::CarrierGateway(_) => {
                Some("carrier gateways (Wavelength) are not captured".to_string())
            }
            RouteTarget::LocalGateway(_) => {
                Some("local gateways belong to an Outpost in the source region".to_string())
            }
            RouteTarget::CoreNetwork(_) => Some(
                "Cloud WAN core networks are not captured; attach the clone to the core network".to_string(),
            ),
            RouteTarget::None => Some("the route has no target (blackhole)".to_string()),
        };
        if let Some(reason) = reason {
            self.leave(what, reason);
            return;
        }
        if let Some(c) = &route.destination_cidr {
            props["DestinationCidrBlock"] = json!(c);
        } else if let Some(c) = &route.destination_ipv6_cidr {
            props["DestinationIpv6CidrBlock"] = json!(c);
        } else if let Some(p) = &route.destination_prefix_list_id {
            if self.own_prefix_list(p).is_none() {
                self.leave(what, prefix_list_reason(self.doc, p));
                return;
            }
            props["DestinationPrefixListId"] = r(&lid("PrefixList", p));
        } else {
            self.leave(what, "the route has no destination");
            return;
        }
        let dest = route
            .destination_cidr
            .as_ref()
            .or(route.destination_ipv6_cidr.as_ref())
            .or(route.destination_prefix_list_id.as_ref());
        let l = format!("Route{}{}", bare(table), short_hash(&dest));
        self.add(&l, "AWS::EC2::Route", props, &deps);
    }

    // -- Network ACLs --------------------------------------------------------

    fn network_acls(&mut self) {
        let acls = self.doc.network_acls.clone();
        for a in &acls {
            let l = lid("NetworkAcl", &a.id);
            let props = json!({ "VpcId": r(VPC_LID), "Tags": self.tags(&a.id, &a.tags, None) });
            self.add(&l, "AWS::EC2::NetworkAcl", props, &[]);
            if a.is_default {
                self.leave(
                    format!("network acl {} default designation", a.id),
                    "CloudFormation cannot change a VPC's default network ACL; this ACL is recreated as an ordinary one and associated with its subnets; the clone's own default ACL keeps its allow-all rules and no subnet uses it",
                );
            }
            for e in &a.entries {
                if e.rule_number >= 32767 {
                    continue; // the catch-all deny every ACL has
                }
                let what = format!(
                    "network acl {} {} rule {}",
                    a.id,
                    if e.egress { "egress" } else { "ingress" },
                    e.rule_number
                );
                let Some(protocol) = protocol_number(&e.protocol) else {
                    self.leave(what, format!("unknown protocol {:?}", e.protocol));
                    continue;
                };
                let mut p = json!({
                    "NetworkAclId": r(&l),
                    "RuleNumber": e.rule_number,
                    "Protocol": protocol,
                    "RuleAction": e.action,
                    "Egress": e.egress,
                });
                if let Some(c) = &e.cidr_block {
                    p["CidrBlock"] = json!(c);
                }
                if let Some(c) = &e.ipv6_cidr_block {
                    p["Ipv6CidrBlock"] = json!(c);
                }
                if let Some((from, to)) = e.port_range {
                    p["PortRange"] = json!({ "From": from, "To": to });
                }
                if let Some((ty, code)) = e.icmp {
                    p["Icmp"] = json!({ "Type": ty, "Code": code });
                }
                let id = format!(
                    "NetworkAcl{}{}{}",
                    bare(&a.id),
                    if e.egress { "Egress" } else { "Ingress" },
                    e.rule_number
                );
                self.add(&id, "AWS::EC2::NetworkAclEntry", p, &[]);
            }
            for assoc in &a.associations {
                if !self.subnet_known(&assoc.subnet_id) {
                    self.leave(
                        format!("network acl {} association with {}", a.id, assoc.subnet_id),
                        "the subnet is not in the capture",
                    );
                    continue;
                }
                self.add(
                    &lid("SubnetNetworkAclAssociation", &assoc.subnet_id),
                    "AWS::EC2::SubnetNetworkAclAssociation",
                    json!({ "NetworkAclId": r(&l), "SubnetId": r(&lid("Subnet", &assoc.subnet_id)) }),
                    &[],
                );
            }
        }
    }

    // -- VPN -----------------------------------------------------------------

    /// Customer gateways describe the on-premises device, which stays
    /// where it is: they are recreated in the destination with the same
    /// address and ASN. VPN connections are recreated on a recreated VPN
    /// gateway; they get new tunnel addresses and keys, which the
    /// on-premises device must be given (see the connection's
    /// configuration after deploying).
    fn vpn(&mut self) {
        let cgws_used: std::collections::BTreeSet<&str> = self
            .doc
            .vpn_connections
            .iter()
            .filter(|c| {
                c.vpn_gateway_id
                    .as_deref()
                    .is_some_and(|g| self.gateway_ref(g).is_some())
            })
            .map(|c| c.customer_gateway_id.as_str())
            .collect();
        for c in &self.doc.customer_gateways {
            if !cgws_used.contains(c.id.as_str()) {
                self.leave(
                    format!("customer gateway {}", c.id),
                    "used only by VPN connections this export does not recreate",
                );
                continue;
            }
            let (Some(ip), Some(asn)) = (
                &c.ip_address,
                c.bgp_asn.as_ref().and_then(|a| a.parse::<i64>().ok()),
            ) else {
                self.leave(
                    format!("customer gateway {}", c.id),
                    "the capture lacks its IP address or BGP ASN",
                );
                continue;
            };
            let mut props = json!({
                "Type": if c.gateway_type.is_empty() { "ipsec.1" } else { c.gateway_type.as_str() },
                "IpAddress": ip,
                "BgpAsn": asn,
                "Tags": self.tags(&c.id, &c.tags, None),
            });
            if let Some(d) = &c.device_name {
                props["DeviceName"] = json!(d);
            }
            self.add(
                &lid("CustomerGateway", &c.id),
                "AWS::EC2::CustomerGateway",
                props,
                &[],
            );
        }
        for v in &self.doc.vpn_connections {
            let what = format!("vpn connection {}", v.id);
            let gw = v
                .vpn_gateway_id
                .as_deref()
                .and_then(|g| self.gateway_ref(g));
            let Some((gw, attachment)) = gw else {
                let reason = if v.transit_gateway_id.is_some() {
                    TGW_REASON.to_string()
                } else {
                    "its VPN gateway is not attached to this VPC".to_string()
                };
                self.leave(what, reason);
                continue;
            };
            if !self
                .resources
                .contains_key(&lid("CustomerGateway", &v.customer_gateway_id))
            {
                self.leave(
                    what,
                    format!(
                        "its customer gateway {} is not recreated",
                        v.customer_gateway_id
                    ),
                );
                continue;
            }
            let l = lid("VPNConnection", &v.id);
            let mut props = json!({
                "Type": if v.connection_type.is_empty() { "ipsec.1" } else { v.connection_type.as_str() },
                "CustomerGatewayId": r(&lid("CustomerGateway", &v.customer_gateway_id)),
                "VpnGatewayId": gw,
                "Tags": self.tags(&v.id, &v.tags, None),
            });
            if let Some(s) = v.static_routes_only {
                props["StaticRoutesOnly"] = json!(s);
            }
            self.add(&l, "AWS::EC2::VPNConnection", props, &[attachment]);
            for cidr in &v.routes {
                self.add(
                    &format!("VPNConnectionRoute{}{}", bare(&v.id), short_hash(cidr)),
                    "AWS::EC2::VPNConnectionRoute",
                    json!({ "VpnConnectionId": r(&l), "DestinationCidrBlock": cidr }),
                    &[],
                );
            }
        }
    }

    // -- What is never recreated ------------------------------------------------

    fn not_carried(&mut self) {
        for p in &self.doc.peering_connections {
            let other = if p.requester.vpc_id == self.doc.vpc.id {
                &p.accepter
            } else {
                &p.requester
            };
            self.leave(
                format!("peering connection {} with {}", p.id, other.vpc_id),
                PEERING_REASON,
            );
        }
        for t in &self.doc.transit_gateways {
            self.leave(format!("transit gateway {}", t.id), TGW_REASON);
        }
        for a in &self.doc.transit_gateway_attachments {
            self.leave(
                format!(
                    "transit gateway attachment {} to {}",
                    a.id, a.transit_gateway_id
                ),
                TGW_REASON,
            );
        }
        for t in &self.doc.transit_gateway_route_tables {
            self.leave(format!("transit gateway route table {}", t.id), TGW_REASON);
        }
        for p in &self.doc.prefix_lists {
            if aws_managed(p) {
                self.leave(
                    format!("prefix list {} ({})", p.id, p.name),
                    prefix_list_reason(self.doc, &p.id),
                );
            }
        }
    }

    fn finish(mut self) -> Result<Export, ExportError> {
        self.left_out.sort();
        self.left_out.dedup();
        let mut resource_counts = BTreeMap::new();
        for v in self.resources.values() {
            let kind = v["Type"].as_str().expect("every resource has a type");
            *resource_counts.entry(kind.to_string()).or_insert(0) += 1;
        }
        let captured = self
            .opts
            .captured_at
            .to_rfc3339_opts(SecondsFormat::Secs, true);
        let template = json!({
            "AWSTemplateFormatVersion": "2010-09-09",
            "Description": format!(
                "Lifeboat clone of {} ({}, captured {captured}) for {}",
                self.doc.vpc.id, self.opts.source_region, self.opts.to_region
            ),
            "Metadata": {
                "Lifeboat": {
                    "SourceVpc": self.doc.vpc.id,
                    "SourceRegion": self.opts.source_region,
                    "CapturedAt": captured,
                    "LeftOut": self.left_out.iter().map(|l| format!("{}: {}", l.what, l.reason)).collect::<Vec<_>>(),
                }
            },
            "Resources": self.resources,
            "Outputs": {
                "VpcId": { "Description": "The clone's VPC", "Value": r(VPC_LID) },
            },
        });
        Ok(Export {
            template,
            left_out: self.left_out,
            resource_counts,
        })
    }
}

/// Transit gateways are left out: a transit gateway is a regional hub that
/// other VPCs, VPNs and accounts attach to, and a copy made for one cloned
/// VPC would be an empty hub that nothing else reaches. The clone is
/// attached to the destination's own transit gateway after deploying.
const TGW_REASON: &str = "transit gateways are shared regional hubs; the export does not create one, so attachments, routes and VPN connections on it are left out; attach the clone to the destination's transit gateway after deploying";

const PEERING_REASON: &str = "the peer VPC is not part of this export; peer the clone with its counterpart after deploying and add the routes";

fn aws_managed(p: &ManagedPrefixList) -> bool {
    p.owner_id.as_deref() == Some("AWS") || p.name.starts_with("com.amazonaws.")
}

fn prefix_list_reason(doc: &CaptureDoc, id: &str) -> String {
    match doc.prefix_lists.iter().find(|p| p.id == id) {
        Some(p) if aws_managed(p) => format!(
            "{} is an AWS-managed prefix list; its id is specific to the source region",
            if p.name.is_empty() {
                id
            } else {
                p.name.as_str()
            }
        ),
        _ => format!("the prefix list {id} is not in the capture"),
    }
}

/// The rules the VPC's default security group is created with.
/// AWS adds the IPv6 allow-all egress rule too when the VPC has an IPv6
/// block, which the clone has when the original had one.
fn default_sg_rule(group: &str, ipv6: bool, egress: bool, rule: &SecurityGroupRule) -> bool {
    if rule.protocol != "-1" {
        return false;
    }
    if egress {
        rule.peer == RulePeer::Cidr("0.0.0.0/0".into())
            || (ipv6 && rule.peer == RulePeer::Ipv6Cidr("::/0".into()))
    } else {
        matches!(&rule.peer, RulePeer::Group { group_id, .. } if group_id == group)
    }
}

/// Where an IPv6 subnet block sits in the VPC's block: `(index, count,
/// host bits)` for `Fn::Select [index, Fn::Cidr [vpc block, count, bits]]`.
fn ipv6_position(vpc_block: &str, subnet_block: &str) -> Option<(u128, u128, u32)> {
    let parse = |s: &str| -> Option<(u128, u32)> {
        let (addr, len) = s.split_once('/')?;
        let a: std::net::Ipv6Addr = addr.parse().ok()?;
        Some((u128::from(a), len.parse().ok()?))
    };
    let (vpc, vlen) = parse(vpc_block)?;
    let (sub, slen) = parse(subnet_block)?;
    if slen < vlen || slen > 128 || vlen == 0 {
        return None;
    }
    let extra = slen - vlen;
    if extra > 8 {
        return None; // Fn::Cidr makes at most 256 blocks
    }
    let vmask = u128::MAX << (128 - vlen);
    if sub & vmask != vpc & vmask {
        return None;
    }
    let index = (sub >> (128 - slen)) & ((1u128 << extra) - 1);
    Some((index, 1u128 << extra, 128 - slen))
}

/// Runs cfn-lint (installed with the emulator by
/// `scripts/emulator-env.sh`) on a template and fails on errors. Without
/// the binary it says so and passes. Shared by the golden tests and the
/// integration test (as a copy: integration tests cannot see `cfg(test)`).
#[cfg(test)]
pub(crate) fn cfn_lint(template: &str, region: &str) {
    let bin = std::path::Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
    )
    .join("../.venv/bin/cfn-lint");
    if !bin.exists() {
        eprintln!(
            "skipping cfn-lint: {} is not installed (run scripts/emulator-env.sh)",
            bin.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("template.json");
    std::fs::write(&path, template).unwrap();
    let out = std::process::Command::new(&bin)
        .args(["--regions", region, "--format", "parseable", "--"])
        .arg(&path)
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(1);
    // cfn-lint's exit code is a bit mask: 1 fatal, 2 errors, 4 warnings,
    // 8 informational.
    assert!(
        code & 3 == 0,
        "cfn-lint found errors (exit {code}):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn dir() -> PathBuf {
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"))
            .join("../testdata/vpc_export")
    }

    fn options(v: &Value) -> ExportOptions {
        ExportOptions {
            source_region: v["source_region"].as_str().unwrap().into(),
            captured_at: v["captured_at"].as_str().unwrap().parse().unwrap(),
            to_region: v["to_region"].as_str().unwrap().into(),
            to_zones: v["to_zones"]
                .as_array()
                .unwrap()
                .iter()
                .map(|z| z.as_str().unwrap().to_string())
                .collect(),
            name: v["name"].as_str().map(str::to_string),
        }
    }

    fn case(name: &str) -> (CaptureDoc, ExportOptions) {
        let d = dir().join(name);
        let doc: CaptureDoc =
            serde_json::from_str(&std::fs::read_to_string(d.join("capture.json")).unwrap())
                .unwrap();
        let opts: Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("options.json")).unwrap())
                .unwrap();
        (doc, options(&opts))
    }

    fn left_out_text(e: &Export) -> String {
        e.left_out
            .iter()
            .map(|l| format!("{}\n    {}\n", l.what, l.reason))
            .collect()
    }

    fn golden(path: &Path, text: &str) {
        if std::env::var_os("LIFEBOAT_BLESS").is_some() {
            std::fs::write(path, text).unwrap();
            return;
        }
        let want = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{}: {e} (LIFEBOAT_BLESS=1 writes it)", path.display()));
        assert!(
            want == text,
            "{} differs from the golden file:\n{}",
            path.display(),
            crate::vpc::capture::diff_documents(&want, text, "golden", "now")
        );
    }

    /// Every case in testdata/vpc_export/: the template, the left-out log
    /// and the resource counts match the golden files, and cfn-lint finds
    /// no error in the template.
    #[test]
    fn exports_match_the_golden_files_and_pass_cfn_lint() {
        let mut cases: Vec<_> = std::fs::read_dir(dir())
            .unwrap()
            .filter_map(|e| {
                let e = e.unwrap();
                e.path()
                    .join("capture.json")
                    .exists()
                    .then(|| e.file_name())
            })
            .collect();
        cases.sort();
        assert!(cases.len() >= 2, "{cases:?}");
        for c in cases {
            let name = c.to_str().unwrap();
            let (doc, opts) = case(name);
            let e = export(&doc, &opts).unwrap();
            let d = dir().join(name);
            golden(&d.join("template.json"), &e.text());
            golden(&d.join("left_out.txt"), &left_out_text(&e));
            golden(
                &d.join("counts.json"),
                &(serde_json::to_string_pretty(&e.resource_counts).unwrap() + "\n"),
            );
            cfn_lint(&e.text(), &opts.to_region);
        }
    }

    #[test]
    fn the_same_capture_gives_the_same_bytes() {
        let (doc, opts) = case("full");
        let a = export(&doc, &opts).unwrap();
        let b = export(&doc.clone(), &opts.clone()).unwrap();
        assert_eq!(a.text(), b.text());
        assert_eq!(a.left_out, b.left_out);
    }

    fn resources(e: &Export) -> &serde_json::Map<String, Value> {
        e.template["Resources"].as_object().unwrap()
    }

    #[test]
    fn every_resource_is_retained_and_no_original_id_is_referenced() {
        let (doc, opts) = case("full");
        let e = export(&doc, &opts).unwrap();
        let total: usize = e.resource_counts.values().sum();
        assert_eq!(total, resources(&e).len());
        for (id, r) in resources(&e) {
            assert!(id.chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
            assert_eq!(r["DeletionPolicy"], "Retain", "{id}");
            assert_eq!(r["UpdateReplacePolicy"], "Retain", "{id}");
            // Original ids appear only in tags.
            let mut props = r["Properties"].clone();
            if let Some(p) = props.as_object_mut() {
                p.remove("Tags");
            }
            let text = props.to_string();
            for prefix in [
                "\"vpc-",
                "\"subnet-",
                "\"sg-",
                "\"igw-",
                "\"rtb-",
                "\"nat-",
                "\"vgw-",
                "\"cgw-",
                "\"pl-",
            ] {
                assert!(!text.contains(prefix), "{id} names an original id: {text}");
            }
        }
    }

    #[test]
    fn tags_record_the_origin_and_drop_aws_tags() {
        let (doc, opts) = case("full");
        let e = export(&doc, &opts).unwrap();
        let tags = &resources(&e)["VPC"]["Properties"]["Tags"];
        let get = |k: &str| {
            tags.as_array()
                .unwrap()
                .iter()
                .find(|t| t["Key"] == k)
                .map(|t| t["Value"].as_str().unwrap().to_string())
        };
        assert_eq!(get("Name").as_deref(), Some("prod (cloned)"));
        assert_eq!(get("team").as_deref(), Some("platform"));
        assert_eq!(get(TAG_ORIGINAL_ID).as_deref(), Some("vpc-0a1"));
        assert_eq!(get(TAG_ORIGINAL_REGION).as_deref(), Some("us-east-1"));
        assert_eq!(
            get(TAG_CAPTURED_AT).as_deref(),
            Some("2026-11-22T01:00:00Z")
        );
        assert_eq!(get("aws:cloudformation:stack-name"), None);

        let mut named = opts.clone();
        named.name = Some("prod west".into());
        let e = export(&doc, &named).unwrap();
        assert!(resources(&e)["VPC"]["Properties"]["Tags"]
            .to_string()
            .contains("\"prod west\""));
        let mut unnamed = doc.clone();
        unnamed.vpc.tags.clear();
        let e = export(&unnamed, &opts).unwrap();
        assert!(resources(&e)["VPC"]["Properties"]["Tags"]
            .to_string()
            .contains("\"vpc-0a1 (cloned)\""));
    }

    #[test]
    fn zones_map_by_letter_and_a_missing_letter_is_an_error() {
        let (doc, mut opts) = case("full");
        let e = export(&doc, &opts).unwrap();
        assert_eq!(
            resources(&e)["Subnet0c3"]["Properties"]["AvailabilityZone"],
            "us-west-2c"
        );
        opts.to_zones = vec!["us-west-2a".into(), "us-west-2b".into()];
        let err = export(&doc, &opts).unwrap_err();
        let ExportError::Zones(msg) = &err;
        assert!(msg.contains("no zone c (for us-east-1c)"), "{msg}");
        assert!(msg.contains("us-west-2a, us-west-2b"), "{msg}");
    }

    #[test]
    fn zone_ids_map_to_the_zone_of_the_same_number() {
        let (mut doc, opts) = case("full");
        doc.subnets[0].availability_zone = "use1-az2".into();
        let e = export(&doc, &opts).unwrap();
        assert_eq!(
            resources(&e)["Subnet0a1"]["Properties"]["AvailabilityZone"],
            "us-west-2b"
        );
        doc.subnets[0].availability_zone = "use1-az6".into();
        let ExportError::Zones(msg) = export(&doc, &opts).unwrap_err();
        assert!(
            msg.contains("zone number 6 (for zone id use1-az6)"),
            "{msg}"
        );
    }

    #[test]
    fn rules_between_groups_of_the_vpc_become_references_in_separate_resources() {
        let (doc, opts) = case("full");
        let e = export(&doc, &opts).unwrap();
        let res = resources(&e);
        let ingress: Vec<&Value> = res
            .iter()
            .filter(|(k, v)| {
                k.starts_with("SecurityGroup0db") && v["Type"] == "AWS::EC2::SecurityGroupIngress"
            })
            .map(|(_, v)| v)
            .collect();
        let sources: Vec<String> = ingress
            .iter()
            .map(|v| v["Properties"]["SourceSecurityGroupId"].to_string())
            .collect();
        assert!(
            sources.contains(&r#"{"Ref":"SecurityGroup0web"}"#.to_string()),
            "{sources:?}"
        );
        assert!(
            sources.contains(&r#"{"Ref":"SecurityGroup0db"}"#.to_string()),
            "{sources:?}"
        );
        assert_eq!(
            ingress.len(),
            2,
            "the other account's and the peer's group are left out"
        );
        // The default group is not recreated; its extra rule goes on the
        // clone's default group.
        assert!(!res.contains_key("SecurityGroup0d0"));
        assert!(res.values().any(|v| v["Properties"]["GroupId"]
            == json!({"Fn::GetAtt": ["VPC", "DefaultSecurityGroup"]})));
        // web keeps AWS's allow-all egress, listed inline with its own.
        let web = &res["SecurityGroup0web"]["Properties"];
        assert_eq!(web["SecurityGroupEgress"][0]["CidrIp"], "0.0.0.0/0");
        // A group without egress rules loses the allow-all one.
        let none = &res["SecurityGroup0out"]["Properties"];
        assert_eq!(none["SecurityGroupEgress"][0]["CidrIp"], "127.0.0.1/32");
        let lo = left_out_text(&e);
        assert!(
            lo.contains("security group sg-0db ingress tcp 5432 222222222222/sg-0ff"),
            "{lo}"
        );
        assert!(lo.contains("peered through pcx-0a1"), "{lo}");
        assert!(
            lo.contains("security group sg-0web ingress tcp 80 pl-0aws"),
            "{lo}"
        );
        assert!(lo.contains("sg-0d0 (default) missing rule: egress"), "{lo}");
    }

    #[test]
    fn routes_that_cannot_be_carried_are_logged_one_by_one() {
        let (doc, opts) = case("full");
        let e = export(&doc, &opts).unwrap();
        let lo = left_out_text(&e);
        for want in [
            "route rtb-0main 10.50.0.0/16 -> pcx-0a1",
            "route rtb-0main 10.60.0.0/16 -> tgw-0a1",
            "route rtb-0main 10.70.0.0/16 -> i-0a1",
            "route rtb-0main 10.71.0.0/16 -> eni-0a1",
            "route rtb-0main 10.72.0.0/16 -> no target",
            "route rtb-0main 10.73.0.0/16 -> nat-0gone",
            "route rtb-0main 10.74.0.0/16 -> cagw-0a1",
            "route rtb-0main 10.75.0.0/16 -> lgw-0a1",
            "route rtb-0main 192.168.50.0/24 -> vgw-0a1",
            "route rtb-0main pl-0aws -> vpce-0a1",
            "peering connection pcx-0a1 with vpc-0peer",
            "transit gateway tgw-0a1",
            "transit gateway attachment tgw-attach-0a1",
            "vpn connection vpn-0tgw",
            "customer gateway cgw-0b2",
            "nat gateway nat-0pub secondary address 198.51.100.8",
        ] {
            assert!(lo.contains(want), "{want} missing from:\n{lo}");
        }
        let routes: Vec<&Value> = resources(&e)
            .values()
            .filter(|v| v["Type"] == "AWS::EC2::Route")
            .collect();
        // igw, nat, vgw, eigw (IPv6) and the own prefix list via the private NAT.
        assert_eq!(routes.len(), 5, "{routes:?}");
    }

    #[test]
    fn the_main_table_is_associated_explicitly_with_the_implicit_subnets() {
        let (doc, opts) = case("full");
        let e = export(&doc, &opts).unwrap();
        let res = resources(&e);
        for s in ["Subnet0b2", "Subnet0c3"] {
            let a = &res[&format!("SubnetRouteTableAssociation{}", &s[6..])];
            assert_eq!(
                a["Properties"]["RouteTableId"],
                json!({"Ref": "RouteTable0main"})
            );
        }
        assert_eq!(
            res["SubnetRouteTableAssociation0a1"]["Properties"]["RouteTableId"],
            json!({"Ref": "RouteTable0pub"})
        );
    }

    #[test]
    fn ipv6_subnets_keep_their_position_in_the_new_block() {
        assert_eq!(
            ipv6_position("2600:1f18:abc:de00::/56", "2600:1f18:abc:de02::/64"),
            Some((2, 256, 64))
        );
        assert_eq!(
            ipv6_position("2600:1f18:abc:de00::/56", "2600:1f18:abc:ee02::/64"),
            None
        );
    }
}
