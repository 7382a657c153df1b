//! `lifeboat vpc export` against the emulator: capture a VPC estate in
//! us-east-1, export it for us-west-2, check the template with cfn-lint,
//! deploy it with CloudFormation in us-west-2 and find the clone there.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_ec2::config::Credentials;
use aws_sdk_ec2::types::Filter;
use serde_json::Value;
use support::{at, network, Emulator, Env, ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};

const CONFIG: &str = r#"account "main" {
  regions = ["us-east-1"]
}

vpc_capture "prod" {
  account = account.main
}
"#;

const TO_REGION: &str = "us-west-2";

fn credentials() -> Credentials {
    Credentials::new(
        ACCESS_KEY_ID,
        SECRET_ACCESS_KEY,
        None,
        None,
        "lifeboat-tests",
    )
}

/// The test's own clients, blocking on a private runtime.
struct Clients {
    rt: tokio::runtime::Runtime,
    endpoint: String,
}

impl Clients {
    fn new(emulator: &Emulator) -> Clients {
        Clients {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime"),
            endpoint: emulator.endpoint(),
        }
    }

    fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        network::ec2_client(&self.endpoint, region, credentials())
    }

    fn cfn(&self, region: &str) -> aws_sdk_cloudformation::Client {
        aws_sdk_cloudformation::Client::from_conf(
            aws_sdk_cloudformation::Config::builder()
                .behavior_version(aws_sdk_cloudformation::config::BehaviorVersion::latest())
                .region(aws_sdk_cloudformation::config::Region::new(
                    region.to_string(),
                ))
                .endpoint_url(&self.endpoint)
                .credentials_provider(credentials())
                .build(),
        )
    }
}

struct Estate {
    vpc: String,
    pcx: String,
    tgw: String,
}

/// A VPC with subnets in zones a and c, two groups that reference each
/// other, an internet gateway with a route, a NAT gateway, a peering
/// connection and a transit gateway attachment, each with a route.
fn build(c: &Clients) -> Estate {
    let ec2 = &c.ec2(REGION);
    c.rt.block_on(async {
        let vpc = network::vpc(ec2, "10.40.0.0/16").await;
        let peer = network::vpc(ec2, "10.41.0.0/16").await;
        ec2.create_tags()
            .resources(&vpc)
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key("Name")
                    .value("prod")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let zones = [
            ("10.40.1.0/24", "us-east-1a"),
            ("10.40.2.0/24", "us-east-1c"),
        ];
        let subnets = network::subnets(ec2, &vpc, &zones).await;
        let groups = network::security_groups(ec2, &vpc, &["web", "db"]).await;
        network::allow_group(ec2, &groups[1], &groups[0], 5432).await;
        network::allow_group(ec2, &groups[0], &groups[1], 8080).await;
        network::allow_cidr(ec2, &groups[0], 443, "0.0.0.0/0").await;
        let rtb = network::internet_route(ec2, &vpc, &subnets[0])
            .await
            .route_table;
        network::nat_gateway(ec2, &subnets[0])
            .await
            .expect("a NAT gateway");
        let pcx = ec2
            .create_vpc_peering_connection()
            .vpc_id(&vpc)
            .peer_vpc_id(&peer)
            .send()
            .await
            .unwrap()
            .vpc_peering_connection
            .unwrap()
            .vpc_peering_connection_id
            .unwrap();
        ec2.create_route()
            .route_table_id(&rtb)
            .destination_cidr_block("10.41.0.0/16")
            .vpc_peering_connection_id(&pcx)
            .send()
            .await
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
        ec2.create_transit_gateway_vpc_attachment()
            .transit_gateway_id(&tgw)
            .vpc_id(&vpc)
            .subnet_ids(&subnets[1])
            .send()
            .await
            .unwrap();
        ec2.create_route()
            .route_table_id(&rtb)
            .destination_cidr_block("10.99.0.0/16")
            .transit_gateway_id(&tgw)
            .send()
            .await
            .unwrap();
        Estate { vpc, pcx, tgw }
    })
}

/// cfn-lint on `path`, failing on errors; skipped with a message when
/// cfn-lint is not installed.
fn cfn_lint(path: &Path, region: &str) {
    let bin = Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
    )
    .join(".venv/bin/cfn-lint");
    if !bin.exists() {
        eprintln!("skipping cfn-lint: {} is not installed", bin.display());
        return;
    }
    let out = std::process::Command::new(&bin)
        .args(["--regions", region, "--format", "parseable", "--"])
        .arg(path)
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(1);
    assert!(
        code & 3 == 0,
        "cfn-lint found errors (exit {code}):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Creates the stack and waits (with a timeout: a failed stack stays in
/// progress in the emulator) until it is complete.
fn deploy(c: &Clients, region: &str, name: &str, template: &str) {
    let cfn = c.cfn(region);
    c.rt.block_on(async {
        cfn.create_stack()
            .stack_name(name)
            .template_body(template)
            .send()
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = cfn.describe_stacks().stack_name(name).send().await.unwrap();
            let status = out.stacks()[0]
                .stack_status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            if status == "CREATE_COMPLETE" {
                return;
            }
            assert!(
                !status.contains("FAILED") && !status.contains("ROLLBACK"),
                "stack {name}: {status}"
            );
            assert!(Instant::now() < deadline, "stack {name} stuck in {status}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

#[test]
fn a_captured_vpc_exports_lints_and_deploys_in_another_region() {
    let env = Env::start();
    let clients = Clients::new(&env.emulator);
    let estate = build(&clients);
    env.config(CONFIG);
    env.run(&["--now", &at(10), "vpc", "capture"]).ok();

    let dir = env.ws.path();
    let run = env
        .run(&[
            "vpc",
            "export",
            "--capture",
            "prod",
            "--vpc",
            &estate.vpc,
            "--to-region",
            TO_REGION,
            "-o",
            "clone.json",
            "--log",
            "left-out.jsonl",
        ])
        .ok();
    run.stderr_has("Exported ");
    run.stderr_has("left out");
    let template_text = std::fs::read_to_string(dir.join("clone.json")).unwrap();
    let template: Value = serde_json::from_str(&template_text).unwrap();
    let resources = template["Resources"].as_object().unwrap();
    let of_type = |t: &str| resources.values().filter(|r| r["Type"] == t).count();
    assert_eq!(of_type("AWS::EC2::VPC"), 1);
    assert_eq!(of_type("AWS::EC2::Subnet"), 2);
    assert!(of_type("AWS::EC2::SecurityGroup") >= 2);
    assert_eq!(of_type("AWS::EC2::SecurityGroupIngress"), 2);
    assert_eq!(of_type("AWS::EC2::NatGateway"), 1);
    assert!(
        resources.values().all(|r| r["DeletionPolicy"] == "Retain"),
        "{template_text}"
    );
    assert!(!template_text.contains(&format!("\"{}\"", estate.pcx)));

    // The log names the peering and transit gateway routes, one JSON line each.
    let log = std::fs::read_to_string(dir.join("left-out.jsonl")).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let whats: Vec<&str> = lines.iter().map(|l| l["what"].as_str().unwrap()).collect();
    assert!(
        whats
            .iter()
            .any(|w| w.ends_with(&format!("10.41.0.0/16 -> {}", estate.pcx))),
        "{log}"
    );
    assert!(
        whats
            .iter()
            .any(|w| w.ends_with(&format!("10.99.0.0/16 -> {}", estate.tgw))),
        "{log}"
    );
    assert!(lines
        .iter()
        .all(|l| l["reason"].as_str().is_some_and(|r| !r.is_empty())));

    // The same capture gives the same bytes, on stdout too.
    let again = env
        .run(&[
            "vpc",
            "export",
            "--capture",
            "prod",
            "--vpc",
            &estate.vpc,
            "--to-region",
            TO_REGION,
        ])
        .ok();
    assert_eq!(again.stdout, template_text);

    cfn_lint(&dir.join("clone.json"), TO_REGION);
    deploy(&clients, TO_REGION, "prod-clone", &template_text);

    // The clone exists in us-west-2, found by its original-id tag.
    let west = clients.ec2(TO_REGION);
    clients.rt.block_on(async {
        let vpcs = west
            .describe_vpcs()
            .filters(filter("tag:lifeboat:original-id", &estate.vpc))
            .send()
            .await
            .unwrap();
        let vpcs = vpcs.vpcs();
        assert_eq!(vpcs.len(), 1, "{vpcs:?}");
        let clone = &vpcs[0];
        assert_eq!(clone.cidr_block(), Some("10.40.0.0/16"));
        let name = clone
            .tags()
            .iter()
            .find(|t| t.key() == Some("Name"))
            .and_then(|t| t.value());
        assert_eq!(name, Some("prod (cloned)"));
        let clone_id = clone.vpc_id().unwrap();

        let subnets = west
            .describe_subnets()
            .filters(filter("vpc-id", clone_id))
            .send()
            .await
            .unwrap();
        let mut zones: Vec<(&str, &str)> = subnets
            .subnets()
            .iter()
            .map(|s| {
                (
                    s.cidr_block().unwrap_or_default(),
                    s.availability_zone().unwrap_or_default(),
                )
            })
            .collect();
        zones.sort();
        assert_eq!(
            zones,
            [
                ("10.40.1.0/24", "us-west-2a"),
                ("10.40.2.0/24", "us-west-2c")
            ]
        );

        let groups = west
            .describe_security_groups()
            .filters(filter("vpc-id", clone_id))
            .send()
            .await
            .unwrap();
        let groups = groups.security_groups();
        let id_of = |name: &str| {
            groups
                .iter()
                .find(|g| g.group_name() == Some(name))
                .and_then(|g| g.group_id())
                .unwrap_or_else(|| panic!("no group {name} in the clone: {groups:?}"))
                .to_string()
        };
        let (web, db) = (id_of("web"), id_of("db"));
        let db_group = groups.iter().find(|g| g.group_id() == Some(&db)).unwrap();
        assert!(
            db_group
                .ip_permissions()
                .iter()
                .any(|p| p.from_port() == Some(5432)
                    && p.user_id_group_pairs()
                        .iter()
                        .any(|u| u.group_id() == Some(&web))),
            "db admits web by the clone's group id: {db_group:?}"
        );

        // The internet gateway is attached and routed to; the NAT gateway
        // is in the clone's public subnet.
        let igws = west
            .describe_internet_gateways()
            .filters(filter("attachment.vpc-id", clone_id))
            .send()
            .await
            .unwrap();
        assert_eq!(igws.internet_gateways().len(), 1, "{igws:?}");
        let igw = igws.internet_gateways()[0].internet_gateway_id().unwrap();
        let tables = west
            .describe_route_tables()
            .filters(filter("vpc-id", clone_id))
            .send()
            .await
            .unwrap();
        assert!(
            tables
                .route_tables()
                .iter()
                .any(|t| t.routes().iter().any(|r| {
                    r.destination_cidr_block() == Some("0.0.0.0/0") && r.gateway_id() == Some(igw)
                })),
            "{tables:?}"
        );
        let nats = west
            .describe_nat_gateways()
            .filter(filter("vpc-id", clone_id))
            .send()
            .await
            .unwrap();
        assert_eq!(nats.nat_gateways().len(), 1, "{nats:?}");
    });
}

#[test]
fn export_refuses_unknown_captures_vpcs_times_and_missing_zones() {
    let env = Env::start();
    let clients = Clients::new(&env.emulator);
    let estate = build(&clients);
    env.config(CONFIG);
    env.run(&["--now", &at(10), "vpc", "capture"]).ok();
    let export = |extra: &[&str]| {
        let mut args = vec!["vpc", "export"];
        args.extend_from_slice(extra);
        env.run(&args)
    };

    let run = export(&["--capture", "nope", "--vpc", &estate.vpc]).code(1);
    run.mentions("no vpc_capture block named \"nope\"");
    let run = export(&["--capture", "prod", "--vpc", "vpc-0000"]).code(1);
    run.mentions("no capture of vpc-0000");
    let run = export(&["--capture", "prod", "--vpc", &estate.vpc, "--at", &at(9)]).code(1);
    run.mentions("at or before");
    // The emulator's us-west-1 has zones a and b; the VPC uses c.
    let run = export(&[
        "--capture",
        "prod",
        "--vpc",
        &estate.vpc,
        "--to-region",
        "us-west-1",
    ])
    .code(1);
    run.mentions("us-west-1 has no zone c (for us-east-1c)");
    // A time after the capture picks it; a log not named .json is text.
    export(&[
        "--capture",
        "prod",
        "--vpc",
        &estate.vpc,
        "--at",
        &at(11),
        "--log",
        "left-out.txt",
    ])
    .ok();
    let log = std::fs::read_to_string(env.ws.path().join("left-out.txt")).unwrap();
    assert!(
        log.lines().any(
            |l| l.starts_with(&format!("peering connection {} with ", estate.pcx))
                && l.contains(": the peer VPC is not part of this export")
        ),
        "{log}"
    );
}
