//! `lifeboat vpc capture | list | show | diff` against the emulator, and the
//! `vpc_capture` block's diagnostics.

mod support;

use aws_sdk_ec2::config::Credentials;
use aws_sdk_ec2::types::IpPermission;
use serde_json::Value;
use support::{at, network, Emulator, Env, Workspace, ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};

const CONFIG: &str = r#"account "main" {
  regions = ["us-east-1"]
}

vpc_capture "prod" {
  account = account.main
  every   = "4h"
}
"#;

/// The test's own EC2 client, blocking on a private runtime.
struct Net {
    rt: tokio::runtime::Runtime,
    ec2: aws_sdk_ec2::Client,
}

/// What the fixture built.
struct Estate {
    vpc: String,
    web_sg: String,
    igw: String,
    nat: Option<String>,
}

impl Net {
    fn new(emulator: &Emulator) -> Net {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let credentials = Credentials::new(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            None,
            None,
            "lifeboat-tests",
        );
        Net {
            rt,
            ec2: network::ec2_client(&emulator.endpoint(), REGION, credentials),
        }
    }

    /// A VPC with two subnets in two zones, two security groups that
    /// reference each other, a route table with a route to an internet
    /// gateway, and a NAT gateway.
    fn build(&self) -> Estate {
        let ec2 = &self.ec2;
        self.rt.block_on(async {
            let vpc = network::vpc(ec2, "10.20.0.0/16").await;
            let zones = [
                ("10.20.1.0/24", "us-east-1a"),
                ("10.20.2.0/24", "us-east-1b"),
            ];
            let subnets = network::subnets(ec2, &vpc, &zones).await;
            let groups = network::security_groups(ec2, &vpc, &["web", "db"]).await;
            network::allow_group(ec2, &groups[1], &groups[0], 5432).await;
            network::allow_group(ec2, &groups[0], &groups[1], 8080).await;
            let route = network::internet_route(ec2, &vpc, &subnets[0]).await;
            let nat = network::nat_gateway(ec2, &subnets[0]).await;
            Estate {
                vpc,
                web_sg: groups[0].clone(),
                igw: route.igw,
                nat,
            }
        })
    }

    fn open_port(&self, group: &str, port: i32, cidr: &str) {
        self.rt
            .block_on(network::allow_cidr(&self.ec2, group, port, cidr));
    }
}

/// The versions `vpc list --json` reports for `vpc`.
fn versions(env: &Env, vpc: &str) -> Vec<Value> {
    let run = env.run(&["vpc", "list", "--json"]).ok();
    let all = run.json();
    let entry = all
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["vpc_id"] == vpc)
        .unwrap_or_else(|| panic!("{vpc} not listed\n{run}"));
    assert_eq!(entry["capture"], "prod");
    assert_eq!(entry["region"], "us-east-1");
    entry["versions"].as_array().unwrap().clone()
}

#[test]
fn capture_is_incremental_and_diff_shows_a_new_rule() {
    let env = Env::start();
    let net = Net::new(&env.emulator);
    let estate = net.build();
    env.config(CONFIG);

    let run = env.run(&["--now", &at(10), "vpc", "capture"]).ok();
    run.stdout_has(&format!("{}: stored version", estate.vpc));
    assert_eq!(versions(&env, &estate.vpc).len(), 1);

    // The document holds the whole network of the VPC.
    let run = env.run(&["vpc", "show", "prod", &estate.vpc]).ok();
    let doc = run.json();
    assert_eq!(
        doc["vpc"]["cidr_blocks"],
        serde_json::json!(["10.20.0.0/16"])
    );
    let zones: Vec<&str> = doc["subnets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["availability_zone"].as_str().unwrap())
        .collect();
    assert_eq!(zones.len(), 2, "{run}");
    assert!(zones.contains(&"us-east-1a") && zones.contains(&"us-east-1b"));
    let groups = doc["security_groups"].as_array().unwrap();
    let web = groups.iter().find(|g| g["id"] == estate.web_sg).unwrap();
    assert!(
        web["ingress"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["from_port"] == 8080 && r["peer"]["group"]["group_id"].is_string()),
        "the group reference is kept: {web}"
    );
    assert!(doc["internet_gateways"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["id"] == estate.igw));
    let text = doc.to_string();
    assert!(
        text.contains(&format!(r#"{{"id":"{}","kind":"gateway"}}"#, estate.igw))
            || text.contains(&format!(r#""kind":"gateway","id":"{}""#, estate.igw)),
        "the IGW route: {text}"
    );
    let nat = estate
        .nat
        .as_ref()
        .expect("the emulator creates NAT gateways");
    assert!(
        doc["nat_gateways"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| &g["id"] == nat),
        "{text}"
    );

    // Nothing changed: nothing stored.
    let run = env.run(&["--now", &at(11), "vpc", "capture", "prod"]).ok();
    run.stdout_has(&format!("{}: unchanged", estate.vpc));
    assert_eq!(versions(&env, &estate.vpc).len(), 1);
    let run = env.run(&["vpc", "diff", &estate.vpc]).code(1);
    run.mentions("two");

    // A new rule: a new version, and the diff shows it.
    net.open_port(&estate.web_sg, 8443, "203.0.113.0/24");
    let run = env.run(&["--now", &at(12), "vpc", "capture"]).ok();
    run.stdout_has(&format!("{}: stored version", estate.vpc));
    let vs = versions(&env, &estate.vpc);
    assert_eq!(vs.len(), 2);
    assert_eq!(vs[0]["captured_at"], at(10));
    assert_eq!(vs[1]["captured_at"], at(12));

    let run = env.run(&["vpc", "diff", &estate.vpc]).ok();
    run.stdout_has(&format!("~ security_groups {}", estate.web_sg));
    let added: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .collect();
    assert!(
        added.iter().any(|l| l.contains("203.0.113.0/24")),
        "the new rule is an added line\n{run}"
    );
    assert!(
        !run.stdout
            .lines()
            .any(|l| l.starts_with('-') && !l.starts_with("---") && l.contains("8080")),
        "the old rules are not removed\n{run}"
    );

    // Times pick versions.
    let run = env
        .run(&["vpc", "show", "prod", &estate.vpc, "--at", &at(11)])
        .ok();
    run.stdout_lacks("203.0.113.0/24");
    let run = env
        .run(&[
            "vpc",
            "diff",
            &estate.vpc,
            "--from",
            &at(10),
            "--to",
            &at(11),
        ])
        .ok();
    run.stdout_has("No changes");
    let run = env.run(&["vpc", "list"]).ok();
    run.stdout_has("vpc_capture.prod (account main)");
    run.stdout_has(&format!("us-east-1 {}: 2 version(s)", estate.vpc));
}

/// Ids of `doc[kind]` (an array of resources).
fn ids(doc: &Value, kind: &str) -> Vec<String> {
    doc[kind]
        .as_array()
        .unwrap_or_else(|| panic!("{kind} is a list: {doc}"))
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn region_level_resources_are_captured_with_the_vpc_that_uses_them() {
    let env = Env::start();
    let net = Net::new(&env.emulator);
    let ec2 = &net.ec2;
    struct Built {
        a: String,
        b: String,
        pl: String,
        eigw: String,
        vgw: String,
        cgw: String,
        vpn: String,
        dopt: String,
        pcx: String,
        tgw: String,
        tgw_attach: String,
    }
    let x = net.rt.block_on(async {
        let a = network::vpc(ec2, "10.30.0.0/16").await;
        let b = network::vpc(ec2, "10.31.0.0/16").await;
        let subnet = network::subnets(ec2, &a, &[("10.30.1.0/24", "us-east-1a")])
            .await
            .remove(0);
        let pl = ec2
            .create_managed_prefix_list()
            .prefix_list_name("office")
            .address_family("IPv4")
            .max_entries(5)
            .entries(
                aws_sdk_ec2::types::AddPrefixListEntry::builder()
                    .cidr("192.0.2.0/24")
                    .description("hq")
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .prefix_list
            .unwrap()
            .prefix_list_id
            .unwrap();
        let sg = ec2
            .create_security_group()
            .vpc_id(&a)
            .group_name("office")
            .description("office access")
            .send()
            .await
            .unwrap()
            .group_id
            .unwrap();
        ec2.authorize_security_group_ingress()
            .group_id(&sg)
            .ip_permissions(
                IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(443)
                    .to_port(443)
                    .prefix_list_ids(
                        aws_sdk_ec2::types::PrefixListId::builder()
                            .prefix_list_id(&pl)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let eigw = ec2
            .create_egress_only_internet_gateway()
            .vpc_id(&a)
            .send()
            .await
            .unwrap()
            .egress_only_internet_gateway
            .unwrap()
            .egress_only_internet_gateway_id
            .unwrap();
        let vgw = ec2
            .create_vpn_gateway()
            .r#type(aws_sdk_ec2::types::GatewayType::Ipsec1)
            .send()
            .await
            .unwrap()
            .vpn_gateway
            .unwrap()
            .vpn_gateway_id
            .unwrap();
        ec2.attach_vpn_gateway()
            .vpn_gateway_id(&vgw)
            .vpc_id(&a)
            .send()
            .await
            .unwrap();
        let cgw = ec2
            .create_customer_gateway()
            .bgp_asn(65000)
            .ip_address("198.51.100.7")
            .r#type(aws_sdk_ec2::types::GatewayType::Ipsec1)
            .send()
            .await
            .unwrap()
            .customer_gateway
            .unwrap()
            .customer_gateway_id
            .unwrap();
        let vpn = ec2
            .create_vpn_connection()
            .r#type("ipsec.1")
            .customer_gateway_id(&cgw)
            .vpn_gateway_id(&vgw)
            .send()
            .await
            .unwrap()
            .vpn_connection
            .unwrap()
            .vpn_connection_id
            .unwrap();
        let dopt = ec2
            .create_dhcp_options()
            .dhcp_configurations(
                aws_sdk_ec2::types::NewDhcpConfiguration::builder()
                    .key("domain-name")
                    .values("example.internal")
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .dhcp_options
            .unwrap()
            .dhcp_options_id
            .unwrap();
        ec2.associate_dhcp_options()
            .dhcp_options_id(&dopt)
            .vpc_id(&a)
            .send()
            .await
            .unwrap();
        let pcx = ec2
            .create_vpc_peering_connection()
            .vpc_id(&a)
            .peer_vpc_id(&b)
            .send()
            .await
            .unwrap()
            .vpc_peering_connection
            .unwrap()
            .vpc_peering_connection_id
            .unwrap();
        let tgw = ec2
            .create_transit_gateway()
            .description("core")
            .send()
            .await
            .unwrap()
            .transit_gateway
            .unwrap()
            .transit_gateway_id
            .unwrap();
        let tgw_attach = ec2
            .create_transit_gateway_vpc_attachment()
            .transit_gateway_id(&tgw)
            .vpc_id(&a)
            .subnet_ids(&subnet)
            .send()
            .await
            .unwrap()
            .transit_gateway_vpc_attachment
            .unwrap()
            .transit_gateway_attachment_id
            .unwrap();
        Built {
            a,
            b,
            pl,
            eigw,
            vgw,
            cgw,
            vpn,
            dopt,
            pcx,
            tgw,
            tgw_attach,
        }
    });
    env.config(CONFIG);
    env.run(&["--now", &at(10), "vpc", "capture", "prod"]).ok();

    let run = env.run(&["vpc", "show", "prod", &x.a]).ok();
    let doc = run.json();
    assert_eq!(
        ids(&doc, "egress_only_internet_gateways"),
        [x.eigw.as_str()],
        "{run}"
    );
    assert_eq!(ids(&doc, "vpn_gateways"), [x.vgw.as_str()], "{run}");
    assert_eq!(ids(&doc, "vpn_connections"), [x.vpn.as_str()], "{run}");
    assert_eq!(ids(&doc, "customer_gateways"), [x.cgw.as_str()], "{run}");
    assert_eq!(doc["dhcp_options"]["id"], x.dopt.as_str(), "{run}");
    assert_eq!(
        doc["dhcp_options"]["configurations"]["domain-name"],
        serde_json::json!(["example.internal"])
    );
    assert_eq!(ids(&doc, "prefix_lists"), [x.pl.as_str()], "{run}");
    assert_eq!(
        doc["prefix_lists"][0]["entries"][0]["cidr"], "192.0.2.0/24",
        "an owned list's entries are read: {run}"
    );
    assert_eq!(ids(&doc, "peering_connections"), [x.pcx.as_str()], "{run}");
    assert_eq!(ids(&doc, "transit_gateways"), [x.tgw.as_str()], "{run}");
    assert_eq!(
        ids(&doc, "transit_gateway_attachments"),
        [x.tgw_attach.as_str()],
        "{run}"
    );

    // The peer VPC sees the peering, and nothing of the other VPC's gateways.
    let run = env.run(&["vpc", "show", "prod", &x.b]).ok();
    let doc = run.json();
    assert_eq!(ids(&doc, "peering_connections"), [x.pcx.as_str()], "{run}");
    for kind in [
        "vpn_gateways",
        "customer_gateways",
        "transit_gateways",
        "prefix_lists",
        "egress_only_internet_gateways",
    ] {
        assert!(ids(&doc, kind).is_empty(), "{kind}: {run}");
    }
}

#[test]
fn vpc_capture_blocks_are_checked_with_positions() {
    let ws = Workspace::offline();
    ws.write(
        "main.lb.hcl",
        r#"account "main" {
  regions = ["us-east-1"]
}

vpc_capture "a" {
  account = account.mian
}

vpc_capture "b" {
  account = account.main
  regions = ["us-west-2", "nowhere"]
  every   = "1mo"
}

vpc_capture "b" {
  account = account.main
}
"#,
    );
    let run = ws.run(&["validate"]).code(1);
    run.stderr_has("main.lb.hcl:6:13");
    run.stderr_has("did you mean account.main?");
    run.stderr_has("main.lb.hcl:11:14");
    run.stderr_has("not a region of account \"main\"");
    run.stderr_has("main.lb.hcl:11:27");
    run.stderr_has("main.lb.hcl:12:13");
    run.stderr_has("\"every\"");
    run.stderr_has("main.lb.hcl:15:13");
    run.stderr_has("already declared at");
}

#[test]
fn old_captures_are_removed_once_no_backup_from_their_time_remains() {
    let env = Env::start();
    let net = Net::new(&env.emulator);
    let estate = net.build();
    let a = env.aws.run_instance(1, &[]);
    env.config(&format!(
        "{CONFIG}\npolicy \"web\" {{\n  account     = account.main\n  generations = 1\n\n  instance \"{}\" {{\n    region = \"us-east-1\"\n  }}\n}}\n",
        a.id
    ));
    env.apply();
    let times = |env: &Env| -> Vec<String> {
        versions(env, &estate.vpc)
            .iter()
            .map(|v| v["captured_at"].as_str().unwrap().to_string())
            .collect()
    };

    // Versions at 10:00, 12:00 and 14:00, with a backup at 11:00 (inside the
    // 10:00 version's time).
    env.run(&["--now", &at(10), "vpc", "capture"]).ok();
    env.backup("web", &at(11));
    net.open_port(&estate.web_sg, 8443, "10.9.0.0/16");
    env.run(&["--now", &at(12), "vpc", "capture"]).ok();
    net.open_port(&estate.web_sg, 9443, "10.9.0.0/16");
    env.run(&["--now", &at(14), "vpc", "capture"])
        .ok()
        .stdout_has("0 old version(s) removed");
    assert_eq!(
        times(&env),
        vec![at(10), at(12), at(14)],
        "the 11:00 backup keeps the 10:00 network"
    );

    // A new backup retires the 11:00 one (generations = 1); the next capture
    // removes the 10:00 and 12:00 versions; the two newest stay for `vpc diff`.
    env.backup("web", &at(15));
    net.open_port(&estate.web_sg, 10443, "10.9.0.0/16");
    env.run(&["--now", &at(16), "vpc", "capture"])
        .ok()
        .stdout_has("2 old version(s) removed");
    assert_eq!(times(&env), vec![at(14), at(16)]);
}

#[test]
fn run_mode_captures_on_the_capture_interval() {
    let env = Env::start();
    let net = Net::new(&env.emulator);
    let estate = net.build();
    env.config(CONFIG);
    env.run(&["--now", &at(10), "run", "--once"])
        .ok()
        .stdout_has("vpc_capture")
        .stdout_has("stored=2");
    // Two VPCs (the region's default one and the estate). every = "4h":
    // nothing at 12:00, an unchanged capture at 14:00.
    env.run(&["--now", &at(12), "run", "--once"])
        .ok()
        .stdout_lacks("vpc_capture");
    env.run(&["--now", &at(14), "run", "--once"])
        .ok()
        .stdout_has("unchanged=2");
    assert_eq!(versions(&env, &estate.vpc).len(), 1);
}
