//! Security groups and their rules, and network ACLs.

use serde_json::{json, Value};

use super::naming::{att, bare, lid, r, short_hash, VPC_LID};
use super::regional::prefix_list_reason;
use super::Builder;
use crate::cloud::network::{RulePeer, SecurityGroup, SecurityGroupRule};

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

impl Builder<'_> {
    fn is_default_sg(&self, id: &str) -> bool {
        self.doc
            .security_groups
            .iter()
            .any(|g| g.id == id && g.name == "default")
    }

    /// The reference to a captured security group of this VPC.
    pub(super) fn sg_ref(&self, id: &str) -> Option<Value> {
        if self.is_default_sg(id) {
            Some(att(VPC_LID, "DefaultSecurityGroup"))
        } else if self.doc.security_groups.iter().any(|g| g.id == id) {
            Some(r(&lid("SecurityGroup", id)))
        } else {
            None
        }
    }

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

    pub(super) fn security_groups(&mut self) {
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
                self.default_group_missing_rules(g, ipv6);
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

    /// Rules the clone VPC's default group is created with that the
    /// original's lacks: CloudFormation cannot remove them, so each is
    /// logged for revoking by hand.
    fn default_group_missing_rules(&mut self, g: &SecurityGroup, ipv6: bool) {
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
            let present = rules
                .iter()
                .any(|r| default_sg_rule(&g.id, ipv6, egress, r) && (!egress || r.peer == peer));
            if !present {
                self.leave(
                    format!("security group {} (default) missing rule: {direction}", g.id),
                    "the clone VPC's default security group is created with this rule and CloudFormation cannot remove it; revoke it after deploying",
                );
            }
        }
    }

    pub(super) fn network_acls(&mut self) {
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
}
