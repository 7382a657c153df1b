//! The VPC, its CIDR blocks and its subnets.

use serde_json::json;

use super::naming::{att, lid, r, short_hash, VPC_LID};
use super::Builder;

impl Builder<'_> {
    /// The VPC's extra CIDR blocks (IPv4, and the Amazon-provided IPv6
    /// one): a subnet may lie in one, so subnets wait for them.
    fn subnet_dependencies(&self) -> Vec<String> {
        self.resources
            .iter()
            .filter(|(_, v)| v["Type"] == "AWS::EC2::VPCCidrBlock")
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub(super) fn vpc(&mut self) {
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

    pub(super) fn subnets(&mut self) {
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

    pub(super) fn subnet_known(&self, id: &str) -> bool {
        self.doc.subnets.iter().any(|s| s.id == id)
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

#[cfg(test)]
mod tests {
    use super::ipv6_position;

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
