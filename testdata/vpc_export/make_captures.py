#!/usr/bin/env python3
"""Writes the input capture documents of the export golden tests.

The documents have the shape of engine::vpc::CaptureDoc (lists sorted as a
capture sorts them). Run from this directory; then `LIFEBOAT_BLESS=1 cargo
test -p lifeboat-engine vpc_export` rewrites the expected templates.
"""
import json

OWN = "111111111111"


def rule(proto, port, peer, desc=None):
    p = None if proto == "-1" else port
    return {"protocol": proto, "from_port": p, "to_port": p, "peer": peer, "description": desc}


def cidr(c):
    return {"cidr": c}


def group(g, user=None, vpc=None, pcx=None):
    return {"group": {"group_id": g, "user_id": user, "vpc_id": vpc, "vpc_peering_connection_id": pcx}}


def route(dest, kind, tid=None, state="active", origin="CreateRoute", v6=None, pl=None):
    target = {"kind": kind} if tid is None else {"kind": kind, "id": tid}
    return {"destination_cidr": dest, "destination_ipv6_cidr": v6, "destination_prefix_list_id": pl,
            "target": target, "state": state, "origin": origin}


def entry(egress, n, proto, action, c, ports=None, icmp=None, v6=None):
    return {"egress": egress, "rule_number": n, "protocol": proto, "action": action,
            "cidr_block": c, "ipv6_cidr_block": v6, "port_range": ports, "icmp": icmp}


def sg(i, name, ingress, egress, tags=None, vpc="vpc-0a1"):
    return {"id": i, "vpc_id": vpc, "name": name, "description": f"{name} servers" if name != "default" else "default VPC security group",
            "ingress": sorted(ingress, key=json.dumps), "egress": sorted(egress, key=json.dumps), "tags": tags or {}}


def subnet(i, az, c, public=False, v6=None, tags=None):
    return {"id": i, "vpc_id": "vpc-0a1", "availability_zone": az, "cidr_block": c,
            "ipv6_cidr_blocks": v6 or [], "map_public_ip_on_launch": public,
            "assign_ipv6_address_on_creation": bool(v6), "tags": tags or {}}


def attach(vpc="vpc-0a1", state="available"):
    return [{"vpc_id": vpc, "state": state}]


ALL = rule("-1", None, cidr("0.0.0.0/0"))

full = {
    "vpc": {"id": "vpc-0a1", "cidr_blocks": ["10.0.0.0/16", "10.2.0.0/16"],
            "ipv6_cidr_blocks": ["2600:1f18:abc:de00::/56"], "instance_tenancy": "default",
            "is_default": False, "dhcp_options_id": "dopt-0a1", "enable_dns_support": True,
            "enable_dns_hostnames": True,
            "tags": {"Name": "prod", "team": "platform", "aws:cloudformation:stack-name": "net"}},
    "subnets": [
        subnet("subnet-0a1", "us-east-1a", "10.0.1.0/24", public=True, tags={"Name": "public-a"}),
        subnet("subnet-0b2", "us-east-1b", "10.0.2.0/24", v6=["2600:1f18:abc:de02::/64"], tags={"Name": "private-b"}),
        subnet("subnet-0c3", "us-east-1c", "10.2.3.0/24", tags={"Name": "data-c"}),
    ],
    "security_groups": [
        sg("sg-0d0", "default",
           [rule("-1", None, group("sg-0d0", OWN)), rule("tcp", 22, cidr("10.0.0.0/8"), "admin ssh")],
           []),
        sg("sg-0db", "db",
           [rule("tcp", 5432, group("sg-0web", OWN), "from web"),
            rule("tcp", 5432, group("sg-0ff", "222222222222"), "from another account"),
            rule("tcp", 5432, group("sg-0pe", OWN, "vpc-0peer", "pcx-0a1"), "from the peer"),
            rule("tcp", 5432, group("sg-0db", OWN), "replication")],
           [rule("tcp", 5432, group("sg-0db", OWN))]),
        sg("sg-0web", "web",
           [rule("tcp", 443, cidr("0.0.0.0/0"), "https"),
            rule("tcp", 443, {"ipv6_cidr": "::/0"}),
            rule("tcp", 80, {"prefix_list": "pl-0own"}, "office"),
            rule("tcp", 80, {"prefix_list": "pl-0aws"}, "cloudfront"),
            rule("icmp", 8, cidr("10.0.0.0/8"))],
           [ALL, rule("tcp", 5432, group("sg-0db", OWN))],
           tags={"Name": "web"}),
        sg("sg-0out", "no-egress", [], []),
    ],
    "route_tables": [
        {"id": "rtb-0main", "vpc_id": "vpc-0a1",
         "routes": [route("10.0.0.0/16", "local", origin="CreateRouteTable"),
                    route("10.2.0.0/16", "local", origin="CreateRouteTable"),
                    route("0.0.0.0/0", "nat_gateway", "nat-0pub"),
                    route("172.16.0.0/12", "gateway", "vgw-0a1"),
                    route("192.168.50.0/24", "gateway", "vgw-0a1", origin="EnableVgwRoutePropagation"),
                    route(None, "egress_only_internet_gateway", "eigw-0a1", v6="::/0"),
                    route("10.50.0.0/16", "vpc_peering_connection", "pcx-0a1"),
                    route("10.60.0.0/16", "transit_gateway", "tgw-0a1"),
                    route("10.70.0.0/16", "instance", "i-0a1"),
                    route("10.71.0.0/16", "network_interface", "eni-0a1"),
                    route("10.72.0.0/16", "none", state="blackhole"),
                    route("10.73.0.0/16", "nat_gateway", "nat-0gone", state="blackhole"),
                    route("10.74.0.0/16", "carrier_gateway", "cagw-0a1"),
                    route("10.75.0.0/16", "local_gateway", "lgw-0a1"),
                    route("10.76.0.0/16", "core_network", "arn:aws:networkmanager::1:core-network/cn-0a1"),
                    route(None, "gateway", "vpce-0a1", pl="pl-0aws"),
                    route(None, "nat_gateway", "nat-0priv", pl="pl-0own")],
         "associations": [{"id": "rtbassoc-0m", "target": {"kind": "main"}}],
         "propagating_vgws": ["vgw-0a1"], "tags": {"Name": "main"}},
        {"id": "rtb-0pub", "vpc_id": "vpc-0a1",
         "routes": [route("10.0.0.0/16", "local", origin="CreateRouteTable"),
                    route("0.0.0.0/0", "gateway", "igw-0a1")],
         "associations": [{"id": "rtbassoc-0p", "target": {"kind": "subnet", "id": "subnet-0a1"}}],
         "propagating_vgws": [], "tags": {"Name": "public"}},
        {"id": "rtb-0edge", "vpc_id": "vpc-0a1",
         "routes": [route("10.0.0.0/16", "local", origin="CreateRouteTable")],
         "associations": [{"id": "rtbassoc-0e", "target": {"kind": "gateway", "id": "igw-0a1"}}],
         "propagating_vgws": [], "tags": {}},
    ],
    "network_acls": [
        {"id": "acl-0def", "vpc_id": "vpc-0a1", "is_default": True,
         "entries": [entry(False, 100, "-1", "allow", "0.0.0.0/0"),
                     entry(False, 32767, "-1", "deny", "0.0.0.0/0"),
                     entry(True, 100, "-1", "allow", "0.0.0.0/0"),
                     entry(True, 32767, "-1", "deny", "0.0.0.0/0")],
         "associations": [{"id": "aclassoc-0a", "subnet_id": "subnet-0a1"},
                          {"id": "aclassoc-0b", "subnet_id": "subnet-0b2"}],
         "tags": {}},
        {"id": "acl-0data", "vpc_id": "vpc-0a1", "is_default": False,
         "entries": [entry(False, 100, "6", "allow", "10.0.0.0/16", ports=[5432, 5432]),
                     entry(False, 110, "1", "allow", "10.0.0.0/16", icmp=[-1, -1]),
                     entry(False, 120, "6", "deny", None, ports=[22, 22], v6="::/0"),
                     entry(False, 32767, "-1", "deny", "0.0.0.0/0"),
                     entry(True, 100, "-1", "allow", "10.0.0.0/16"),
                     entry(True, 32767, "-1", "deny", "0.0.0.0/0")],
         "associations": [{"id": "aclassoc-0c", "subnet_id": "subnet-0c3"}],
         "tags": {"Name": "data"}},
    ],
    "internet_gateways": [{"id": "igw-0a1", "attachments": attach(), "tags": {"Name": "prod-igw"}}],
    "egress_only_internet_gateways": [{"id": "eigw-0a1", "attachments": attach("vpc-0a1", "attached"), "tags": {}}],
    "nat_gateways": [
        {"id": "nat-0priv", "vpc_id": "vpc-0a1", "subnet_id": "subnet-0b2", "connectivity_type": "private",
         "addresses": [{"allocation_id": None, "public_ip": None, "private_ip": "10.0.2.9"}], "tags": {}},
        {"id": "nat-0pub", "vpc_id": "vpc-0a1", "subnet_id": "subnet-0a1", "connectivity_type": "public",
         "addresses": [{"allocation_id": "eipalloc-0a1", "public_ip": "198.51.100.7", "private_ip": "10.0.1.9"},
                       {"allocation_id": "eipalloc-0a2", "public_ip": "198.51.100.8", "private_ip": "10.0.1.10"}],
         "tags": {"Name": "nat-a"}},
    ],
    "vpn_gateways": [{"id": "vgw-0a1", "gateway_type": "ipsec.1", "amazon_side_asn": 64512,
                      "attachments": attach("vpc-0a1", "attached"), "tags": {"Name": "to-office"}}],
    "vpn_connections": [
        {"id": "vpn-0a1", "connection_type": "ipsec.1", "customer_gateway_id": "cgw-0a1",
         "vpn_gateway_id": "vgw-0a1", "transit_gateway_id": None, "static_routes_only": True,
         "routes": ["192.168.0.0/24", "192.168.1.0/24"], "tags": {"Name": "office"}},
        {"id": "vpn-0tgw", "connection_type": "ipsec.1", "customer_gateway_id": "cgw-0b2",
         "vpn_gateway_id": None, "transit_gateway_id": "tgw-0a1", "static_routes_only": False,
         "routes": [], "tags": {}},
    ],
    "customer_gateways": [
        {"id": "cgw-0a1", "gateway_type": "ipsec.1", "bgp_asn": "65000", "ip_address": "203.0.113.10",
         "device_name": "office-fw", "tags": {"Name": "office"}},
        {"id": "cgw-0b2", "gateway_type": "ipsec.1", "bgp_asn": "65001", "ip_address": "203.0.113.20",
         "device_name": None, "tags": {}},
    ],
    "dhcp_options": {"id": "dopt-0a1", "configurations": {
        "domain-name": ["corp.example.com"], "domain-name-servers": ["10.0.0.2", "10.0.0.3"],
        "netbios-node-type": ["2"], "ntp-servers": ["169.254.169.123"]}, "tags": {"Name": "corp"}},
    "prefix_lists": [
        {"id": "pl-0aws", "name": "com.amazonaws.global.cloudfront.origin-facing", "address_family": "IPv4",
         "max_entries": None, "owner_id": "AWS", "entries": [], "tags": {}},
        {"id": "pl-0own", "name": "office", "address_family": "IPv4", "max_entries": 5, "owner_id": OWN,
         "entries": [{"cidr": "192.0.2.0/24", "description": "hq"}, {"cidr": "198.51.100.0/24", "description": None}],
         "tags": {"Name": "office"}},
    ],
    "peering_connections": [
        {"id": "pcx-0a1", "requester": {"vpc_id": "vpc-0a1", "owner_id": OWN, "region": "us-east-1", "cidr_blocks": ["10.0.0.0/16"]},
         "accepter": {"vpc_id": "vpc-0peer", "owner_id": OWN, "region": "us-east-1", "cidr_blocks": ["10.50.0.0/16"]},
         "status": "active", "tags": {}},
    ],
    "transit_gateways": [{"id": "tgw-0a1", "description": "hub", "amazon_side_asn": 64513,
                          "options": {"dns_support": "enable"}, "tags": {}}],
    "transit_gateway_attachments": [{"id": "tgw-attach-0a1", "transit_gateway_id": "tgw-0a1", "vpc_id": "vpc-0a1",
                                     "subnet_ids": ["subnet-0b2"], "options": {}, "tags": {}}],
    "transit_gateway_route_tables": [{"id": "tgw-rtb-0a1", "transit_gateway_id": "tgw-0a1", "default_association": True,
                                      "default_propagation": True, "tags": {}}],
}

minimal = {
    "vpc": {"id": "vpc-0b2", "cidr_blocks": ["172.31.0.0/16"], "ipv6_cidr_blocks": [], "instance_tenancy": "default",
            "is_default": False, "dhcp_options_id": "dopt-0def", "enable_dns_support": True,
            "enable_dns_hostnames": False, "tags": {}},
    "subnets": [{"id": "subnet-0d4", "vpc_id": "vpc-0b2", "availability_zone": "us-east-1c",
                 "cidr_block": "172.31.0.0/20", "ipv6_cidr_blocks": [], "map_public_ip_on_launch": False,
                 "assign_ipv6_address_on_creation": False, "tags": {}}],
    "security_groups": [sg("sg-0d1", "default", [rule("-1", None, group("sg-0d1", OWN))], [ALL], vpc="vpc-0b2")],
    "route_tables": [{"id": "rtb-0m2", "vpc_id": "vpc-0b2",
                      "routes": [route("172.31.0.0/16", "local", origin="CreateRouteTable")],
                      "associations": [{"id": "rtbassoc-0m2", "target": {"kind": "main"}}],
                      "propagating_vgws": [], "tags": {}}],
    "network_acls": [{"id": "acl-0d2", "vpc_id": "vpc-0b2", "is_default": True,
                      "entries": [entry(False, 100, "-1", "allow", "0.0.0.0/0"),
                                  entry(False, 32767, "-1", "deny", "0.0.0.0/0"),
                                  entry(True, 100, "-1", "allow", "0.0.0.0/0"),
                                  entry(True, 32767, "-1", "deny", "0.0.0.0/0")],
                      "associations": [{"id": "aclassoc-0d", "subnet_id": "subnet-0d4"}], "tags": {}}],
    "internet_gateways": [], "egress_only_internet_gateways": [], "nat_gateways": [], "vpn_gateways": [],
    "vpn_connections": [], "customer_gateways": [],
    "dhcp_options": {"id": "dopt-0def", "configurations": {"domain-name": ["ec2.internal"],
                                                            "domain-name-servers": ["AmazonProvidedDNS"]}, "tags": {}},
    "prefix_lists": [], "peering_connections": [], "transit_gateways": [], "transit_gateway_attachments": [],
    "transit_gateway_route_tables": [],
}

# A default VPC recorded by zone ids, with what only odd captures hold:
# extra IPv6 blocks, a DHCP set with an option CloudFormation lacks, a VPN
# connection whose customer gateway lacks its address, references to
# subnets and gateways outside the capture, and a default security group
# without AWS's ingress rule.
edge = {
    "vpc": {"id": "vpc-0e3", "cidr_blocks": ["172.31.0.0/16"],
            "ipv6_cidr_blocks": ["2600:1f18:1:100::/56", "2600:1f18:2:200::/56"], "instance_tenancy": "dedicated",
            "is_default": True, "dhcp_options_id": "dopt-0e3", "enable_dns_support": None,
            "enable_dns_hostnames": None, "tags": {"aws:created-by": "x"}},
    "subnets": [
        {"id": "subnet-0e1", "vpc_id": "vpc-0e3", "availability_zone": "use1-az1", "cidr_block": "172.31.0.0/20",
         "ipv6_cidr_blocks": ["2600:1f18:1:1ff::/64", "2600:1f18:1:1fe::/64"], "map_public_ip_on_launch": True,
         "assign_ipv6_address_on_creation": True, "tags": {}},
        {"id": "subnet-0e2", "vpc_id": "vpc-0e3", "availability_zone": "use1-az3", "cidr_block": "172.31.16.0/20",
         "ipv6_cidr_blocks": ["2600:1f18:9:900::/64"], "map_public_ip_on_launch": True,
         "assign_ipv6_address_on_creation": False, "tags": {}},
    ],
    "security_groups": [
        sg("sg-0e0", "default", [], [ALL, rule("-1", None, {"ipv6_cidr": "::/0"})], vpc="vpc-0e3"),
        sg("sg-0e5", "app", [rule("tcp", 8080, group("sg-0e0", OWN)), rule("udp", 53, group("sg-0zz", OWN, "vpc-0other"))],
           [ALL, rule("-1", None, {"ipv6_cidr": "::/0"})], vpc="vpc-0e3"),
    ],
    "route_tables": [
        {"id": "rtb-0e4", "vpc_id": "vpc-0e3",
         "routes": [route("172.31.0.0/16", "local", origin="CreateRouteTable"),
                    route("0.0.0.0/0", "gateway", "igw-0elsewhere"),
                    route("10.9.0.0/16", "nat_gateway", "nat-0e9"),
                    route(None, "egress_only_internet_gateway", "eigw-0none", v6="::/0"),
                    route(None, "none")],
         "associations": [{"id": "rtbassoc-0e1", "target": {"kind": "main"}},
                          {"id": "rtbassoc-0e2", "target": {"kind": "subnet", "id": "subnet-0gone"}},
                          {"id": "rtbassoc-0e3", "target": {"kind": "gateway", "id": "vgw-0none"}}],
         "propagating_vgws": ["vgw-0none"], "tags": {}},
    ],
    "network_acls": [
        {"id": "acl-0e6", "vpc_id": "vpc-0e3", "is_default": False,
         "entries": [entry(False, 100, "tcp", "allow", "0.0.0.0/0", ports=[443, 443]),
                     entry(False, 110, "gre", "allow", "0.0.0.0/0"),
                     entry(True, 100, "-1", "allow", "0.0.0.0/0")],
         "associations": [{"id": "aclassoc-0e1", "subnet_id": "subnet-0e1"},
                          {"id": "aclassoc-0e9", "subnet_id": "subnet-0gone"}], "tags": {}},
    ],
    "internet_gateways": [], "egress_only_internet_gateways": [],
    "nat_gateways": [{"id": "nat-0e9", "vpc_id": "vpc-0e3", "subnet_id": "subnet-0gone", "connectivity_type": "public",
                      "addresses": [], "tags": {}}],
    "vpn_gateways": [{"id": "vgw-0e7", "gateway_type": "ipsec.1", "amazon_side_asn": None,
                      "attachments": attach("vpc-0e3", "attached"), "tags": {}}],
    "vpn_connections": [
        {"id": "vpn-0e8", "connection_type": "ipsec.1", "customer_gateway_id": "cgw-0e8",
         "vpn_gateway_id": "vgw-0e7", "transit_gateway_id": None, "static_routes_only": None,
         "routes": [], "tags": {}},
    ],
    "customer_gateways": [{"id": "cgw-0e8", "gateway_type": "ipsec.1", "bgp_asn": None, "ip_address": None,
                           "device_name": None, "tags": {}}],
    "dhcp_options": {"id": "dopt-0e3", "configurations": {
        "domain-name": ["ec2.internal"], "domain-name-servers": ["AmazonProvidedDNS"],
        "netbios-node-type": ["two"], "vendor-option": ["x"]}, "tags": {}},
    "prefix_lists": [], "peering_connections": [], "transit_gateways": [], "transit_gateway_attachments": [],
    "transit_gateway_route_tables": [],
}

CASES = {
    "edge": (edge, {"source_region": "us-east-1", "captured_at": "2026-11-22T03:00:00Z",
                    "to_region": "eu-central-1", "to_zones": ["eu-central-1a", "eu-central-1b", "eu-central-1c", "eu-central-1-ham-1a"],
                    "name": None}),
    "full": (full, {"source_region": "us-east-1", "captured_at": "2026-11-22T01:00:00Z",
                    "to_region": "us-west-2", "to_zones": ["us-west-2a", "us-west-2b", "us-west-2c", "us-west-2d"],
                    "name": None}),
    "minimal": (minimal, {"source_region": "us-east-1", "captured_at": "2026-11-22T02:00:00Z",
                          "to_region": "eu-west-1", "to_zones": ["eu-west-1a", "eu-west-1b", "eu-west-1c"],
                          "name": "dr copy"}),
}

if __name__ == "__main__":
    import os
    for case, (doc, opts) in CASES.items():
        os.makedirs(case, exist_ok=True)
        with open(f"{case}/capture.json", "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        with open(f"{case}/options.json", "w") as f:
            json.dump(opts, f, indent=2)
            f.write("\n")
