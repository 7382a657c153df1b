//! Route tables, their associations, routes and route propagation.

use serde_json::json;

use super::naming::{bare, lid, lid_full, r, short_hash, VPC_LID};
use super::regional::{prefix_list_reason, PEERING_REASON, TGW_REASON};
use super::Builder;
use crate::cloud::network::{AssociationTarget, Route, RouteTarget};

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

impl Builder<'_> {
    pub(super) fn route_tables(&mut self) {
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
}
