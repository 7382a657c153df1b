//! Building blocks of the VPC estates the capture, export and clone tests
//! build in the emulator, on the test's own EC2 client. Each is one or two
//! API calls; the tests compose them into the estate they need.

use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ec2::types::{DomainType, IpPermission, IpRange, UserIdGroupPair};
use aws_sdk_ec2::Client;

/// An EC2 client for `region` of the emulator at `endpoint`.
pub fn ec2_client(endpoint: &str, region: &str, credentials: Credentials) -> Client {
    Client::from_conf(
        aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .endpoint_url(endpoint)
            .credentials_provider(credentials)
            .build(),
    )
}

pub async fn vpc(ec2: &Client, cidr: &str) -> String {
    ec2.create_vpc()
        .cidr_block(cidr)
        .send()
        .await
        .unwrap()
        .vpc
        .unwrap()
        .vpc_id
        .unwrap()
}

/// One subnet per `(cidr, zone)`, in order.
pub async fn subnets(ec2: &Client, vpc: &str, specs: &[(&str, &str)]) -> Vec<String> {
    let mut out = Vec::new();
    for (cidr, az) in specs {
        let s = ec2
            .create_subnet()
            .vpc_id(vpc)
            .cidr_block(*cidr)
            .availability_zone(*az)
            .send()
            .await
            .unwrap();
        out.push(s.subnet.unwrap().subnet_id.unwrap());
    }
    out
}

/// One security group per name (described as "NAME tier"), in order.
pub async fn security_groups(ec2: &Client, vpc: &str, names: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for name in names {
        let g = ec2
            .create_security_group()
            .vpc_id(vpc)
            .group_name(*name)
            .description(format!("{name} tier"))
            .send()
            .await
            .unwrap();
        out.push(g.group_id.unwrap());
    }
    out
}

/// Lets `from_group` reach `group` on TCP `port`.
pub async fn allow_group(ec2: &Client, group: &str, from_group: &str, port: i32) {
    let rule = IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(port)
        .to_port(port)
        .user_id_group_pairs(UserIdGroupPair::builder().group_id(from_group).build())
        .build();
    ec2.authorize_security_group_ingress()
        .group_id(group)
        .ip_permissions(rule)
        .send()
        .await
        .unwrap();
}

/// Lets `cidr` reach `group` on TCP `port`.
pub async fn allow_cidr(ec2: &Client, group: &str, port: i32, cidr: &str) {
    let rule = IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(port)
        .to_port(port)
        .ip_ranges(IpRange::builder().cidr_ip(cidr).build())
        .build();
    ec2.authorize_security_group_ingress()
        .group_id(group)
        .ip_permissions(rule)
        .send()
        .await
        .unwrap();
}

/// An internet gateway attached to `vpc`, and a route table with a default
/// route to it, associated with `subnet`.
pub struct InternetRoute {
    pub igw: String,
    pub route_table: String,
}

pub async fn internet_route(ec2: &Client, vpc: &str, subnet: &str) -> InternetRoute {
    let igw = ec2
        .create_internet_gateway()
        .send()
        .await
        .unwrap()
        .internet_gateway
        .unwrap()
        .internet_gateway_id
        .unwrap();
    ec2.attach_internet_gateway()
        .vpc_id(vpc)
        .internet_gateway_id(&igw)
        .send()
        .await
        .unwrap();
    let route_table = ec2
        .create_route_table()
        .vpc_id(vpc)
        .send()
        .await
        .unwrap()
        .route_table
        .unwrap()
        .route_table_id
        .unwrap();
    ec2.create_route()
        .route_table_id(&route_table)
        .destination_cidr_block("0.0.0.0/0")
        .gateway_id(&igw)
        .send()
        .await
        .unwrap();
    ec2.associate_route_table()
        .route_table_id(&route_table)
        .subnet_id(subnet)
        .send()
        .await
        .unwrap();
    InternetRoute { igw, route_table }
}

/// A NAT gateway in `subnet` with a new Elastic IP (`None` where the
/// emulator refuses either call).
pub async fn nat_gateway(ec2: &Client, subnet: &str) -> Option<String> {
    let eip = ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .send()
        .await
        .ok()?
        .allocation_id?;
    ec2.create_nat_gateway()
        .subnet_id(subnet)
        .allocation_id(eip)
        .send()
        .await
        .ok()?
        .nat_gateway?
        .nat_gateway_id
}
