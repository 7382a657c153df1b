//! [`Network`] on the SDK for one account and region: one paginated list
//! call per resource type, converted into the engine's VPC model.
//!
//! Two calls are made per resource because the API offers nothing else:
//! DescribeVpcAttribute (the DNS attributes of a VPC, one attribute per
//! call) and GetManagedPrefixListEntries (the entries of one prefix list;
//! only for lists the account owns, not the AWS-managed ones).

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    IpPermission, NatGatewayState, PrefixListState, TransitGatewayAttachmentState,
    TransitGatewayRouteTableState, TransitGatewayState, VpcAttributeName,
    VpcPeeringConnectionStateReasonCode, VpnState,
};
use aws_sdk_ec2::Client;
use lifeboat_engine::cloud::network::*;
use lifeboat_engine::cloud::{CloudResult, ErrorKind, Network, MAX_PAGES};

use crate::convert::tags_from_sdk;
use crate::error::ErrorContext;

pub(crate) struct AwsNetwork {
    client: Client,
    ctx: ErrorContext,
    /// The account's own id: prefix lists it owns get their entries read.
    account_id: String,
}

impl AwsNetwork {
    pub(crate) fn new(client: Client, ctx: ErrorContext, account_id: String) -> Self {
        Self {
            client,
            ctx,
            account_id,
        }
    }
}

/// Runs a paginated request to the end, handing each page to `$each`. The
/// SDK's paginator stops on a token repeated at once, not on one that
/// comes back later: past [`MAX_PAGES`] the list is an error, not a loop.
macro_rules! each_page {
    ($self:ident, $req:expr, $action:literal, |$page:ident| $each:block) => {{
        let mut stream = $req.into_paginator().send();
        let mut pages = 0usize;
        while let Some(page) = stream.next().await {
            let $page = page.map_err(|e| $self.ctx.sdk($action, None, &e))?;
            pages += 1;
            if pages > MAX_PAGES {
                return Err($self.ctx.error(
                    ErrorKind::Other,
                    $action,
                    None,
                    None,
                    format!("the list did not end after {MAX_PAGES} pages"),
                ));
            }
            $each
        }
    }};
}

fn s(v: Option<&str>) -> String {
    v.unwrap_or_default().to_owned()
}

fn o(v: Option<&str>) -> Option<String> {
    v.map(str::to_owned)
}

/// One rule per peer of an SDK permission.
pub(crate) fn rules(perms: &[IpPermission]) -> Vec<SecurityGroupRule> {
    let mut out = Vec::new();
    for p in perms {
        let protocol = s(p.ip_protocol());
        let (from_port, to_port) = if protocol == "-1" {
            (None, None)
        } else {
            (p.from_port(), p.to_port())
        };
        let mut push = |peer: RulePeer, description: Option<&str>| {
            out.push(SecurityGroupRule {
                protocol: protocol.clone(),
                from_port,
                to_port,
                peer,
                description: o(description).filter(|d| !d.is_empty()),
            })
        };
        for r in p.ip_ranges() {
            push(RulePeer::Cidr(s(r.cidr_ip())), r.description());
        }
        for r in p.ipv6_ranges() {
            push(RulePeer::Ipv6Cidr(s(r.cidr_ipv6())), r.description());
        }
        for r in p.prefix_list_ids() {
            push(RulePeer::PrefixList(s(r.prefix_list_id())), r.description());
        }
        for g in p.user_id_group_pairs() {
            push(
                RulePeer::Group {
                    group_id: s(g.group_id()),
                    user_id: o(g.user_id()),
                    vpc_id: o(g.vpc_id()),
                    vpc_peering_connection_id: o(g.vpc_peering_connection_id()),
                },
                g.description(),
            );
        }
    }
    out
}

pub(crate) fn route(r: &aws_sdk_ec2::types::Route) -> Route {
    let target = if let Some(g) = r.gateway_id() {
        if g == "local" {
            RouteTarget::Local
        } else {
            RouteTarget::Gateway(g.to_owned())
        }
    } else if let Some(id) = r.egress_only_internet_gateway_id() {
        RouteTarget::EgressOnlyInternetGateway(id.to_owned())
    } else if let Some(id) = r.nat_gateway_id() {
        RouteTarget::NatGateway(id.to_owned())
    } else if let Some(id) = r.transit_gateway_id() {
        RouteTarget::TransitGateway(id.to_owned())
    } else if let Some(id) = r.vpc_peering_connection_id() {
        RouteTarget::VpcPeeringConnection(id.to_owned())
    } else if let Some(id) = r.instance_id() {
        RouteTarget::Instance(id.to_owned())
    } else if let Some(id) = r.network_interface_id() {
        RouteTarget::NetworkInterface(id.to_owned())
    } else if let Some(id) = r.carrier_gateway_id() {
        RouteTarget::CarrierGateway(id.to_owned())
    } else if let Some(id) = r.local_gateway_id() {
        RouteTarget::LocalGateway(id.to_owned())
    } else if let Some(id) = r.core_network_arn() {
        RouteTarget::CoreNetwork(id.to_owned())
    } else {
        RouteTarget::None
    };
    Route {
        destination_cidr: o(r.destination_cidr_block()),
        destination_ipv6_cidr: o(r.destination_ipv6_cidr_block()),
        destination_prefix_list_id: o(r.destination_prefix_list_id()),
        target,
        state: r.state().map(|x| x.as_str().to_owned()).unwrap_or_default(),
        origin: r
            .origin()
            .map(|x| x.as_str().to_owned())
            .unwrap_or_default(),
    }
}

fn attachments<'a>(
    items: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> Vec<GatewayAttachment> {
    items
        .filter_map(|(vpc, state)| {
            let vpc_id = vpc?.to_owned();
            let state = s(state);
            (state != "detached").then_some(GatewayAttachment { vpc_id, state })
        })
        .collect()
}

fn options(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .filter_map(|(k, v)| Some(((*k).to_owned(), (*v)?.to_owned())))
        .collect()
}

impl AwsNetwork {
    async fn dns_attribute(
        &self,
        vpc_id: &str,
        attribute: VpcAttributeName,
    ) -> CloudResult<Option<bool>> {
        let out = self
            .client
            .describe_vpc_attribute()
            .vpc_id(vpc_id)
            .attribute(attribute.clone())
            .send()
            .await
            .map_err(|e| self.ctx.sdk("ec2:DescribeVpcAttribute", Some(vpc_id), &e))?;
        let v = match attribute {
            VpcAttributeName::EnableDnsHostnames => out.enable_dns_hostnames(),
            _ => out.enable_dns_support(),
        };
        Ok(v.and_then(|v| v.value()))
    }

    async fn vpcs(&self, inv: &mut RegionInventory) -> CloudResult<()> {
        each_page!(
            self,
            self.client.describe_vpcs(),
            "ec2:DescribeVpcs",
            |page| {
                for v in page.vpcs() {
                    let Some(id) = v.vpc_id() else { continue };
                    let mut cidr_blocks: Vec<String> = v
                        .cidr_block_association_set()
                        .iter()
                        .filter(|a| {
                            a.cidr_block_state()
                                .and_then(|st| st.state())
                                .is_none_or(|st| st.as_str() == "associated")
                        })
                        .filter_map(|a| o(a.cidr_block()))
                        .collect();
                    if cidr_blocks.is_empty() {
                        cidr_blocks.extend(o(v.cidr_block()));
                    }
                    inv.vpcs.push(Vpc {
                        id: id.to_owned(),
                        cidr_blocks,
                        ipv6_cidr_blocks: v
                            .ipv6_cidr_block_association_set()
                            .iter()
                            .filter_map(|a| o(a.ipv6_cidr_block()))
                            .collect(),
                        instance_tenancy: v
                            .instance_tenancy()
                            .map(|t| t.as_str().to_owned())
                            .unwrap_or_else(|| "default".into()),
                        is_default: v.is_default().unwrap_or(false),
                        dhcp_options_id: o(v.dhcp_options_id()).filter(|d| d != "default"),
                        enable_dns_support: None,
                        enable_dns_hostnames: None,
                        tags: tags_from_sdk(v.tags()),
                    });
                }
            }
        );
        // Per VPC: the API has no list form of these attributes.
        for v in &mut inv.vpcs {
            v.enable_dns_support = self
                .dns_attribute(&v.id, VpcAttributeName::EnableDnsSupport)
                .await?;
            v.enable_dns_hostnames = self
                .dns_attribute(&v.id, VpcAttributeName::EnableDnsHostnames)
                .await?;
        }
        Ok(())
    }

    async fn subnets_and_groups(&self, inv: &mut RegionInventory) -> CloudResult<()> {
        each_page!(
            self,
            self.client.describe_subnets(),
            "ec2:DescribeSubnets",
            |page| {
                for x in page.subnets() {
                    let Some(id) = x.subnet_id() else { continue };
                    inv.subnets.push(Subnet {
                        id: id.to_owned(),
                        vpc_id: s(x.vpc_id()),
                        availability_zone: s(x.availability_zone()),
                        cidr_block: o(x.cidr_block()),
                        ipv6_cidr_blocks: x
                            .ipv6_cidr_block_association_set()
                            .iter()
                            .filter_map(|a| o(a.ipv6_cidr_block()))
                            .collect(),
                        map_public_ip_on_launch: x.map_public_ip_on_launch().unwrap_or(false),
                        assign_ipv6_address_on_creation: x
                            .assign_ipv6_address_on_creation()
                            .unwrap_or(false),
                        tags: tags_from_sdk(x.tags()),
                    });
                }
            }
        );
        each_page!(
            self,
            self.client.describe_security_groups(),
            "ec2:DescribeSecurityGroups",
            |page| {
                for g in page.security_groups() {
                    let Some(id) = g.group_id() else { continue };
                    inv.security_groups.push(SecurityGroup {
                        id: id.to_owned(),
                        vpc_id: s(g.vpc_id()),
                        name: s(g.group_name()),
                        description: s(g.description()),
                        ingress: rules(g.ip_permissions()),
                        egress: rules(g.ip_permissions_egress()),
                        tags: tags_from_sdk(g.tags()),
                    });
                }
            }
        );
        Ok(())
    }

    async fn routing(&self, inv: &mut RegionInventory) -> CloudResult<()> {
        each_page!(
            self,
            self.client.describe_route_tables(),
            "ec2:DescribeRouteTables",
            |page| {
                for t in page.route_tables() {
                    let Some(id) = t.route_table_id() else {
                        continue;
                    };
                    let associations = t
                        .associations()
                        .iter()
                        .filter(|a| {
                            a.association_state()
                                .and_then(|st| st.state())
                                .is_none_or(|st| st.as_str() == "associated")
                        })
                        .map(|a| RouteTableAssociation {
                            id: s(a.route_table_association_id()),
                            target: if a.main().unwrap_or(false) {
                                AssociationTarget::Main
                            } else if let Some(sub) = a.subnet_id() {
                                AssociationTarget::Subnet(sub.to_owned())
                            } else {
                                AssociationTarget::Gateway(s(a.gateway_id()))
                            },
                        })
                        .collect();
                    inv.route_tables.push(RouteTable {
                        id: id.to_owned(),
                        vpc_id: s(t.vpc_id()),
                        routes: t.routes().iter().map(route).collect(),
                        associations,
                        propagating_vgws: t
                            .propagating_vgws()
                            .iter()
                            .filter_map(|p| o(p.gateway_id()))
                            .collect(),
                        tags: tags_from_sdk(t.tags()),
                    });
                }
            }
        );
        each_page!(
            self,
            self.client.describe_network_acls(),
            "ec2:DescribeNetworkAcls",
            |page| {
                for a in page.network_acls() {
                    let Some(id) = a.network_acl_id() else {
                        continue;
                    };
                    inv.network_acls.push(NetworkAcl {
                        id: id.to_owned(),
                        vpc_id: s(a.vpc_id()),
                        is_default: a.is_default().unwrap_or(false),
                        entries: a
                            .entries()
                            .iter()
                            .map(|e| NetworkAclEntry {
                                egress: e.egress().unwrap_or(false),
                                rule_number: e.rule_number().unwrap_or_default(),
                                protocol: s(e.protocol()),
                                action: e
                                    .rule_action()
                                    .map(|x| x.as_str().to_owned())
                                    .unwrap_or_default(),
                                cidr_block: o(e.cidr_block()),
                                ipv6_cidr_block: o(e.ipv6_cidr_block()),
                                port_range: e.port_range().and_then(|p| Some((p.from()?, p.to()?))),
                                icmp: e
                                    .icmp_type_code()
                                    .and_then(|c| Some((c.r#type()?, c.code()?))),
                            })
                            .collect(),
                        associations: a
                            .associations()
                            .iter()
                            .map(|x| NetworkAclAssociation {
                                id: s(x.network_acl_association_id()),
                                subnet_id: s(x.subnet_id()),
                            })
                            .collect(),
                        tags: tags_from_sdk(a.tags()),
                    });
                }
            }
        );
        Ok(())
    }

    async fn gateways(&self, inv: &mut RegionInventory) -> CloudResult<()> {
        each_page!(
            self,
            self.client.describe_internet_gateways(),
            "ec2:DescribeInternetGateways",
            |page| {
                for g in page.internet_gateways() {
                    let Some(id) = g.internet_gateway_id() else {
                        continue;
                    };
                    inv.internet_gateways.push(InternetGateway {
                        id: id.to_owned(),
                        attachments: attachments(
                            g.attachments()
                                .iter()
                                .map(|a| (a.vpc_id(), a.state().map(|x| x.as_str()))),
                        ),
                        tags: tags_from_sdk(g.tags()),
                    });
                }
            }
        );
        each_page!(
            self,
            self.client.describe_egress_only_internet_gateways(),
            "ec2:DescribeEgressOnlyInternetGateways",
            |page| {
                for g in page.egress_only_internet_gateways() {
                    let Some(id) = g.egress_only_internet_gateway_id() else {
                        continue;
                    };
                    inv.egress_only_internet_gateways
                        .push(EgressOnlyInternetGateway {
                            id: id.to_owned(),
                            attachments: attachments(
                                g.attachments()
                                    .iter()
                                    .map(|a| (a.vpc_id(), a.state().map(|x| x.as_str()))),
                            ),
                            tags: tags_from_sdk(g.tags()),
                        });
                }
            }
        );
        each_page!(
            self,
            self.client.describe_nat_gateways(),
            "ec2:DescribeNatGateways",
            |page| {
                for g in page.nat_gateways() {
                    let Some(id) = g.nat_gateway_id() else {
                        continue;
                    };
                    if matches!(
                        g.state(),
                        Some(
                            NatGatewayState::Deleted
                                | NatGatewayState::Deleting
                                | NatGatewayState::Failed
                        )
                    ) {
                        continue;
                    }
                    inv.nat_gateways.push(NatGateway {
                        id: id.to_owned(),
                        vpc_id: s(g.vpc_id()),
                        subnet_id: s(g.subnet_id()),
                        connectivity_type: g
                            .connectivity_type()
                            .map(|x| x.as_str().to_owned())
                            .unwrap_or_else(|| "public".into()),
                        addresses: g
                            .nat_gateway_addresses()
                            .iter()
                            .map(|a| NatGatewayAddress {
                                allocation_id: o(a.allocation_id()),
                                public_ip: o(a.public_ip()),
                                private_ip: o(a.private_ip()),
                            })
                            .collect(),
                        tags: tags_from_sdk(g.tags()),
                    });
                }
            }
        );
        Ok(())
    }

    /// DescribeVpnGateways, DescribeCustomerGateways and
    /// DescribeVpnConnections are not paginated: one call each.
    async fn vpn(&self, inv: &mut RegionInventory) -> CloudResult<()> {
        let gone =
            |st: Option<&VpnState>| matches!(st, Some(VpnState::Deleted | VpnState::Deleting));
        let out = self
            .client
            .describe_vpn_gateways()
            .send()
            .await
            .map_err(|e| self.ctx.sdk("ec2:DescribeVpnGateways", None, &e))?;
        for g in out.vpn_gateways() {
            let Some(id) = g.vpn_gateway_id() else {
                continue;
            };
            if gone(g.state()) {
                continue;
            }
            inv.vpn_gateways.push(VpnGateway {
                id: id.to_owned(),
                gateway_type: g
                    .r#type()
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
                amazon_side_asn: g.amazon_side_asn(),
                attachments: attachments(
                    g.vpc_attachments()
                        .iter()
                        .map(|a| (a.vpc_id(), a.state().map(|x| x.as_str()))),
                ),
                tags: tags_from_sdk(g.tags()),
            });
        }
        let out = self
            .client
            .describe_customer_gateways()
            .send()
            .await
            .map_err(|e| self.ctx.sdk("ec2:DescribeCustomerGateways", None, &e))?;
        for g in out.customer_gateways() {
            let Some(id) = g.customer_gateway_id() else {
                continue;
            };
            if matches!(g.state(), Some("deleted" | "deleting")) {
                continue;
            }
            inv.customer_gateways.push(CustomerGateway {
                id: id.to_owned(),
                gateway_type: s(g.r#type()),
                bgp_asn: o(g.bgp_asn()),
                ip_address: o(g.ip_address()),
                device_name: o(g.device_name()),
                tags: tags_from_sdk(g.tags()),
            });
        }
        let out = self
            .client
            .describe_vpn_connections()
            .send()
            .await
            .map_err(|e| self.ctx.sdk("ec2:DescribeVpnConnections", None, &e))?;
        for c in out.vpn_connections() {
            let Some(id) = c.vpn_connection_id() else {
                continue;
            };
            if gone(c.state()) {
                continue;
            }
            inv.vpn_connections.push(VpnConnection {
                id: id.to_owned(),
                connection_type: c
                    .r#type()
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
                customer_gateway_id: s(c.customer_gateway_id()),
                vpn_gateway_id: o(c.vpn_gateway_id()),
                transit_gateway_id: o(c.transit_gateway_id()),
                static_routes_only: c.options().and_then(|x| x.static_routes_only()),
                routes: c
                    .routes()
                    .iter()
                    .filter_map(|r| o(r.destination_cidr_block()))
                    .collect(),
                tags: tags_from_sdk(c.tags()),
            });
        }
        Ok(())
    }

    async fn dhcp_and_prefix_lists(&self, inv: &mut RegionInventory) -> CloudResult<()> {
        each_page!(
            self,
            self.client.describe_dhcp_options(),
            "ec2:DescribeDhcpOptions",
            |page| {
                for d in page.dhcp_options() {
                    let Some(id) = d.dhcp_options_id() else {
                        continue;
                    };
                    let mut configurations: BTreeMap<String, Vec<String>> = BTreeMap::new();
                    for c in d.dhcp_configurations() {
                        let Some(k) = c.key() else { continue };
                        configurations
                            .entry(k.to_owned())
                            .or_default()
                            .extend(c.values().iter().filter_map(|v| o(v.value())));
                    }
                    inv.dhcp_options.push(DhcpOptions {
                        id: id.to_owned(),
                        configurations,
                        tags: tags_from_sdk(d.tags()),
                    });
                }
            }
        );
        each_page!(
            self,
            self.client.describe_managed_prefix_lists(),
            "ec2:DescribeManagedPrefixLists",
            |page| {
                for p in page.prefix_lists() {
                    let Some(id) = p.prefix_list_id() else {
                        continue;
                    };
                    if matches!(
                        p.state(),
                        Some(PrefixListState::DeleteComplete | PrefixListState::DeleteInProgress)
                    ) {
                        continue;
                    }
                    inv.prefix_lists.push(ManagedPrefixList {
                        id: id.to_owned(),
                        name: s(p.prefix_list_name()),
                        address_family: s(p.address_family()),
                        max_entries: p.max_entries(),
                        owner_id: o(p.owner_id()),
                        entries: Vec::new(),
                        tags: tags_from_sdk(p.tags()),
                    });
                }
            }
        );
        // Per list: entries have no list-wide call. AWS-managed lists (owner
        // "AWS") are left without entries: they are the same everywhere.
        for p in &mut inv.prefix_lists {
            if p.owner_id.as_deref() != Some(self.account_id.as_str()) {
                continue;
            }
            each_page!(
                self,
                self.client
                    .get_managed_prefix_list_entries()
                    .prefix_list_id(&p.id),
                "ec2:GetManagedPrefixListEntries",
                |page| {
                    for e in page.entries() {
                        p.entries.push(PrefixListEntry {
                            cidr: s(e.cidr()),
                            description: o(e.description()).filter(|d| !d.is_empty()),
                        });
                    }
                }
            );
        }
        Ok(())
    }

    async fn peering_and_transit(&self, inv: &mut RegionInventory) -> CloudResult<()> {
        self.peering_connections(inv).await?;
        self.transit_gateways(inv).await?;
        self.transit_gateway_attachments(inv).await?;
        self.transit_gateway_route_tables(inv).await?;
        Ok(())
    }

    /// DescribeVpcPeeringConnections: peering connections not deleted, rejected,
    /// failed or expired, with both sides.
    async fn peering_connections(&self, inv: &mut RegionInventory) -> CloudResult<()> {
        each_page!(
            self,
            self.client.describe_vpc_peering_connections(),
            "ec2:DescribeVpcPeeringConnections",
            |page| {
                for p in page.vpc_peering_connections() {
                    let Some(id) = p.vpc_peering_connection_id() else {
                        continue;
                    };
                    let code = p.status().and_then(|x| x.code());
                    use VpcPeeringConnectionStateReasonCode as C;
                    if matches!(
                        code,
                        Some(C::Deleted | C::Deleting | C::Rejected | C::Failed | C::Expired)
                    ) {
                        continue;
                    }
                    let side = |i: Option<&aws_sdk_ec2::types::VpcPeeringConnectionVpcInfo>| {
                        let Some(i) = i else {
                            return PeeringSide::default();
                        };
                        let mut cidr_blocks: Vec<String> = i
                            .cidr_block_set()
                            .iter()
                            .filter_map(|c| o(c.cidr_block()))
                            .collect();
                        if cidr_blocks.is_empty() {
                            cidr_blocks.extend(o(i.cidr_block()));
                        }
                        PeeringSide {
                            vpc_id: s(i.vpc_id()),
                            owner_id: o(i.owner_id()),
                            region: o(i.region()),
                            cidr_blocks,
                        }
                    };
                    inv.peering_connections.push(VpcPeeringConnection {
                        id: id.to_owned(),
                        requester: side(p.requester_vpc_info()),
                        accepter: side(p.accepter_vpc_info()),
                        status: code.map(|c| c.as_str().to_owned()).unwrap_or_default(),
                        tags: tags_from_sdk(p.tags()),
                    });
                }
            }
        );
        Ok(())
    }

    /// DescribeTransitGateways: transit gateways not deleted, with their options.
    async fn transit_gateways(&self, inv: &mut RegionInventory) -> CloudResult<()> {
        each_page!(
            self,
            self.client.describe_transit_gateways(),
            "ec2:DescribeTransitGateways",
            |page| {
                for t in page.transit_gateways() {
                    let Some(id) = t.transit_gateway_id() else {
                        continue;
                    };
                    if matches!(
                        t.state(),
                        Some(TransitGatewayState::Deleted | TransitGatewayState::Deleting)
                    ) {
                        continue;
                    }
                    let opts = t.options();
                    inv.transit_gateways.push(TransitGateway {
                        id: id.to_owned(),
                        description: o(t.description()).filter(|d| !d.is_empty()),
                        amazon_side_asn: opts.and_then(|x| x.amazon_side_asn()),
                        options: opts
                            .map(|x| {
                                options(&[
                                    (
                                        "auto_accept_shared_attachments",
                                        x.auto_accept_shared_attachments().map(|v| v.as_str()),
                                    ),
                                    (
                                        "default_route_table_association",
                                        x.default_route_table_association().map(|v| v.as_str()),
                                    ),
                                    (
                                        "default_route_table_propagation",
                                        x.default_route_table_propagation().map(|v| v.as_str()),
                                    ),
                                    (
                                        "association_default_route_table_id",
                                        x.association_default_route_table_id(),
                                    ),
                                    (
                                        "propagation_default_route_table_id",
                                        x.propagation_default_route_table_id(),
                                    ),
                                    ("vpn_ecmp_support", x.vpn_ecmp_support().map(|v| v.as_str())),
                                    ("dns_support", x.dns_support().map(|v| v.as_str())),
                                    (
                                        "multicast_support",
                                        x.multicast_support().map(|v| v.as_str()),
                                    ),
                                ])
                            })
                            .unwrap_or_default(),
                        tags: tags_from_sdk(t.tags()),
                    });
                }
            }
        );
        Ok(())
    }

    /// DescribeTransitGatewayVpcAttachments: VPC attachments not deleted, failed
    /// or rejected, with their options.
    async fn transit_gateway_attachments(&self, inv: &mut RegionInventory) -> CloudResult<()> {
        each_page!(
            self,
            self.client.describe_transit_gateway_vpc_attachments(),
            "ec2:DescribeTransitGatewayVpcAttachments",
            |page| {
                use TransitGatewayAttachmentState as A;
                for a in page.transit_gateway_vpc_attachments() {
                    let Some(id) = a.transit_gateway_attachment_id() else {
                        continue;
                    };
                    if matches!(
                        a.state(),
                        Some(A::Deleted | A::Deleting | A::Failed | A::Rejected)
                    ) {
                        continue;
                    }
                    let opts = a.options();
                    inv.transit_gateway_attachments
                        .push(TransitGatewayVpcAttachment {
                            id: id.to_owned(),
                            transit_gateway_id: s(a.transit_gateway_id()),
                            vpc_id: s(a.vpc_id()),
                            subnet_ids: a.subnet_ids().to_vec(),
                            options: opts
                                .map(|x| {
                                    options(&[
                                        ("dns_support", x.dns_support().map(|v| v.as_str())),
                                        ("ipv6_support", x.ipv6_support().map(|v| v.as_str())),
                                        (
                                            "appliance_mode_support",
                                            x.appliance_mode_support().map(|v| v.as_str()),
                                        ),
                                    ])
                                })
                                .unwrap_or_default(),
                            tags: tags_from_sdk(a.tags()),
                        });
                }
            }
        );
        Ok(())
    }

    /// DescribeTransitGatewayRouteTables: route tables not deleted.
    async fn transit_gateway_route_tables(&self, inv: &mut RegionInventory) -> CloudResult<()> {
        each_page!(
            self,
            self.client.describe_transit_gateway_route_tables(),
            "ec2:DescribeTransitGatewayRouteTables",
            |page| {
                use TransitGatewayRouteTableState as R;
                for t in page.transit_gateway_route_tables() {
                    let Some(id) = t.transit_gateway_route_table_id() else {
                        continue;
                    };
                    if matches!(t.state(), Some(R::Deleted | R::Deleting)) {
                        continue;
                    }
                    inv.transit_gateway_route_tables
                        .push(TransitGatewayRouteTable {
                            id: id.to_owned(),
                            transit_gateway_id: s(t.transit_gateway_id()),
                            default_association: t
                                .default_association_route_table()
                                .unwrap_or(false),
                            default_propagation: t
                                .default_propagation_route_table()
                                .unwrap_or(false),
                            tags: tags_from_sdk(t.tags()),
                        });
                }
            }
        );
        Ok(())
    }
}

#[async_trait]
impl Network for AwsNetwork {
    async fn inventory(&self) -> CloudResult<RegionInventory> {
        let mut inv = RegionInventory::default();
        self.vpcs(&mut inv).await?;
        self.subnets_and_groups(&mut inv).await?;
        self.routing(&mut inv).await?;
        self.gateways(&mut inv).await?;
        self.vpn(&mut inv).await?;
        self.dhcp_and_prefix_lists(&mut inv).await?;
        self.peering_and_transit(&mut inv).await?;
        inv.normalise();
        Ok(inv)
    }

    /// DescribeAvailabilityZones: the region's standard zones (local and
    /// wavelength zones left out), sorted.
    async fn availability_zones(&self) -> CloudResult<Vec<String>> {
        let out = self
            .client
            .describe_availability_zones()
            .send()
            .await
            .map_err(|e| self.ctx.sdk("ec2:DescribeAvailabilityZones", None, &e))?;
        let mut zones: Vec<String> = out
            .availability_zones()
            .iter()
            .filter(|z| z.zone_type().is_none_or(|t| t == "availability-zone"))
            .filter_map(|z| z.zone_name().map(str::to_owned))
            .collect();
        zones.sort();
        zones.dedup();
        Ok(zones)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{IpRange, Ipv6Range, PrefixListId, RouteState, UserIdGroupPair};

    #[test]
    fn a_permission_becomes_one_rule_per_peer() {
        let p = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(443)
            .to_port(443)
            .ip_ranges(
                IpRange::builder()
                    .cidr_ip("10.0.0.0/8")
                    .description("")
                    .build(),
            )
            .ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build())
            .prefix_list_ids(PrefixListId::builder().prefix_list_id("pl-1").build())
            .user_id_group_pairs(
                UserIdGroupPair::builder()
                    .group_id("sg-1")
                    .user_id("123456789012")
                    .description("db")
                    .build(),
            )
            .build();
        let all = IpPermission::builder()
            .ip_protocol("-1")
            .from_port(0)
            .to_port(65535)
            .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
            .build();
        let r = rules(&[p, all]);
        assert_eq!(r.len(), 5);
        assert_eq!(r[0].peer, RulePeer::Cidr("10.0.0.0/8".into()));
        assert_eq!(r[0].description, None, "an empty description is none");
        assert_eq!(r[1].peer, RulePeer::Ipv6Cidr("::/0".into()));
        assert_eq!(r[2].peer, RulePeer::PrefixList("pl-1".into()));
        assert_eq!(
            r[3].peer,
            RulePeer::Group {
                group_id: "sg-1".into(),
                user_id: Some("123456789012".into()),
                vpc_id: None,
                vpc_peering_connection_id: None,
            }
        );
        assert_eq!(r[3].description.as_deref(), Some("db"));
        assert_eq!(
            (r[4].from_port, r[4].to_port),
            (None, None),
            "all traffic has no ports"
        );
    }

    #[test]
    fn route_targets_by_kind() {
        let local = aws_sdk_ec2::types::Route::builder()
            .destination_cidr_block("10.0.0.0/16")
            .gateway_id("local")
            .state(RouteState::Active)
            .build();
        assert_eq!(route(&local).target, RouteTarget::Local);
        assert_eq!(route(&local).state, "active");
        let nat = aws_sdk_ec2::types::Route::builder()
            .destination_cidr_block("0.0.0.0/0")
            .nat_gateway_id("nat-1")
            .build();
        assert_eq!(route(&nat).target, RouteTarget::NatGateway("nat-1".into()));
        let pcx = aws_sdk_ec2::types::Route::builder()
            .destination_prefix_list_id("pl-1")
            .vpc_peering_connection_id("pcx-1")
            .build();
        let r = route(&pcx);
        assert_eq!(r.target, RouteTarget::VpcPeeringConnection("pcx-1".into()));
        assert_eq!(r.destination_prefix_list_id.as_deref(), Some("pl-1"));
        let blackhole = aws_sdk_ec2::types::Route::builder()
            .destination_cidr_block("192.0.2.0/24")
            .state(RouteState::Blackhole)
            .build();
        assert_eq!(route(&blackhole).target, RouteTarget::None);
    }
}
