//! Internet, egress-only, NAT and VPN gateways, customer gateways and VPN
//! connections.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::naming::{att, bare, lid, lid_full, r, short_hash, VPC_LID};
use super::regional::TGW_REASON;
use super::Builder;

impl Builder<'_> {
    pub(super) fn gateways(&mut self) {
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
    pub(super) fn gateway_ref(&self, id: &str) -> Option<(Value, String)> {
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

    pub(super) fn nat_gateways(&mut self) {
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

    /// Customer gateways describe the on-premises device, which stays
    /// where it is: they are recreated in the destination with the same
    /// address and ASN. VPN connections are recreated on a recreated VPN
    /// gateway; they get new tunnel addresses and keys, which the
    /// on-premises device must be given (see the connection's
    /// configuration after deploying).
    pub(super) fn vpn(&mut self) {
        self.customer_gateways();
        self.vpn_connections();
    }

    /// The customer gateways of the VPN connections that are recreated.
    fn customer_gateways(&mut self) {
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
    }

    /// The VPN connections on a recreated VPN gateway, with their static
    /// routes; they need their customer gateway recreated first.
    fn vpn_connections(&mut self) {
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
}
