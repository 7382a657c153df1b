//! Region-level resources a VPC uses: DHCP options and prefix lists are
//! recreated; peering connections and transit gateways never are.

use serde_json::{json, Value};

use super::naming::{bare, lid, r, VPC_LID};
use super::Builder;
use crate::cloud::network::ManagedPrefixList;
use crate::vpc::document::CaptureDoc;

/// The domain name AWS's default DHCP options use in a region.
fn default_domain(region: &str) -> String {
    if region == "us-east-1" {
        "ec2.internal".into()
    } else {
        format!("{region}.compute.internal")
    }
}

impl Builder<'_> {
    /// Prefix lists the template recreates: the account's own.
    pub(super) fn own_prefix_list(&self, id: &str) -> Option<&ManagedPrefixList> {
        self.doc
            .prefix_lists
            .iter()
            .find(|p| p.id == id && !aws_managed(p))
    }

    pub(super) fn dhcp_options(&mut self) {
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

    pub(super) fn prefix_lists(&mut self) {
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

    pub(super) fn not_carried(&mut self) {
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
}

/// Transit gateways are left out: a transit gateway is a regional hub that
/// other VPCs, VPNs and accounts attach to, and a copy made for one cloned
/// VPC would be an empty hub that nothing else reaches. The clone is
/// attached to the destination's own transit gateway after deploying.
pub(super) const TGW_REASON: &str = "transit gateways are shared regional hubs; the export does not create one, so attachments, routes and VPN connections on it are left out; attach the clone to the destination's transit gateway after deploying";

pub(super) const PEERING_REASON: &str = "the peer VPC is not part of this export; peer the clone with its counterpart after deploying and add the routes";

fn aws_managed(p: &ManagedPrefixList) -> bool {
    p.owner_id.as_deref() == Some("AWS") || p.name.starts_with("com.amazonaws.")
}

pub(super) fn prefix_list_reason(doc: &CaptureDoc, id: &str) -> String {
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
