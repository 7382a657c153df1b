//! `vpc_clone`: plan, apply, update and delete of a clone stack in another
//! account and region, against the emulator.

mod support;

use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use support::{at, network, Emulator, Env, Workspace, ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};

const ROLE: &str = "arn:aws:iam::222222222222:role/x";
const TO_REGION: &str = "us-west-2";

fn config(with_clone: bool) -> String {
    let mut c = format!(
        r#"account "main" {{
  regions = ["us-east-1"]
}}

account "vault" {{
  regions = ["us-west-2"]
  assume_role {{
    role_arn = "{ROLE}"
  }}
}}

vpc_capture "prod" {{
  account = account.main
}}
"#
    );
    if with_clone {
        c.push_str(
            r#"
vpc_clone "prod-west" {
  capture    = vpc_capture.prod
  vpc        = "VPC_ID"
  to_region  = "us-west-2"
  to_account = account.vault
  name       = "prod (cloned)"
  timeout    = "1m"
}
"#,
        );
    }
    c
}

/// The test's own EC2 clients, blocking on a private runtime.
struct Net {
    rt: tokio::runtime::Runtime,
    source: aws_sdk_ec2::Client,
    /// us-west-2 in account 222222222222, through the assumed role.
    dest: aws_sdk_ec2::Client,
    dest_s3: aws_sdk_s3::Client,
}

fn creds(id: &str, secret: &str, token: Option<String>) -> Credentials {
    Credentials::new(id, secret, token, None, "lifeboat-tests")
}

impl Net {
    fn new(emulator: &Emulator) -> Net {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let ec2 =
            |region: &str, c: Credentials| network::ec2_client(&emulator.endpoint(), region, c);
        let source = ec2(REGION, creds(ACCESS_KEY_ID, SECRET_ACCESS_KEY, None));
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(REGION))
                .endpoint_url(emulator.endpoint())
                .credentials_provider(creds(ACCESS_KEY_ID, SECRET_ACCESS_KEY, None))
                .build(),
        );
        let assumed = rt
            .block_on(
                sts.assume_role()
                    .role_arn(ROLE)
                    .role_session_name("lifeboat-tests")
                    .send(),
            )
            .expect("assume role")
            .credentials
            .expect("credentials");
        let dest_creds = creds(
            &assumed.access_key_id,
            &assumed.secret_access_key,
            Some(assumed.session_token),
        );
        let dest = ec2(TO_REGION, dest_creds.clone());
        let dest_s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(TO_REGION))
                .endpoint_url(emulator.endpoint())
                .force_path_style(true)
                .credentials_provider(dest_creds)
                .build(),
        );
        Net {
            rt,
            source,
            dest,
            dest_s3,
        }
    }

    fn make_bucket(&self, name: &str) {
        use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
        self.rt
            .block_on(
                self.dest_s3
                    .create_bucket()
                    .bucket(name)
                    .create_bucket_configuration(
                        CreateBucketConfiguration::builder()
                            .location_constraint(BucketLocationConstraint::UsWest2)
                            .build(),
                    )
                    .send(),
            )
            .expect("create bucket");
    }

    fn bucket_keys(&self, name: &str) -> Vec<String> {
        let out = self
            .rt
            .block_on(self.dest_s3.list_objects_v2().bucket(name).send())
            .expect("list objects");
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect()
    }

    /// A VPC with two subnets in two zones, two security groups, and an
    /// internet gateway with a default route.
    fn build(&self) -> String {
        let ec2 = &self.source;
        self.rt.block_on(async {
            let vpc = network::vpc(ec2, "10.30.0.0/16").await;
            let zones = [
                ("10.30.1.0/24", "us-east-1a"),
                ("10.30.2.0/24", "us-east-1b"),
            ];
            let subnets = network::subnets(ec2, &vpc, &zones).await;
            network::security_groups(ec2, &vpc, &["web", "db"]).await;
            network::internet_route(ec2, &vpc, &subnets[0]).await;
            vpc
        })
    }

    fn add_subnet(&self, vpc: &str, cidr: &str, az: &str) {
        self.rt
            .block_on(network::subnets(&self.source, vpc, &[(cidr, az)]));
    }

    /// The destination's VPCs with `cidr`, each with its subnets' CIDRs.
    fn clones(&self, cidr: &str) -> Vec<(String, Vec<String>)> {
        self.rt.block_on(async {
            let vpcs = self.dest.describe_vpcs().send().await.unwrap();
            let mut out = Vec::new();
            for v in vpcs.vpcs() {
                if v.cidr_block() != Some(cidr) {
                    continue;
                }
                let id = v.vpc_id().unwrap().to_string();
                let subnets = self
                    .dest
                    .describe_subnets()
                    .filters(
                        aws_sdk_ec2::types::Filter::builder()
                            .name("vpc-id")
                            .values(&id)
                            .build(),
                    )
                    .send()
                    .await
                    .unwrap();
                let mut cidrs: Vec<String> = subnets
                    .subnets()
                    .iter()
                    .filter_map(|s| s.cidr_block().map(str::to_string))
                    .collect();
                cidrs.sort();
                out.push((id, cidrs));
            }
            out
        })
    }
}

#[test]
fn a_clone_is_created_updated_and_deleted_leaving_its_network() {
    let env = Env::start();
    let net = Net::new(&env.emulator);
    let vpc = net.build();
    env.config(&config(true).replace("VPC_ID", &vpc));

    // Nothing captured yet: a warning, no change, no failure.
    let run = env.run(&["plan"]).ok();
    run.stdout_has("vpc_capture.prod has no version of");

    env.run(&["--now", &at(10), "vpc", "capture"]).ok();
    let run = env.run(&["plan"]).ok();
    let line = run.plan_line("+", "vpc_clone.prod-west");
    assert!(
        line.contains(&format!("from {vpc} captured 2026-11-22T10:00:00Z")),
        "{run}"
    );
    assert!(
        line.contains("lifeboat-vpc-clone-prod-west in vault (us-west-2)"),
        "{run}"
    );
    run.stdout_has("x AWS::EC2::Subnet");

    let run = env.apply();
    run.stdout_has("vpc_clone.prod-west");
    let clones = net.clones("10.30.0.0/16");
    assert_eq!(
        clones.len(),
        1,
        "one clone in account 222222222222, us-west-2: {clones:?}"
    );
    assert_eq!(clones[0].1, vec!["10.30.1.0/24", "10.30.2.0/24"]);
    env.assert_converged();

    // The source changes and is captured again: the clone's plan shows the
    // template diff, and apply updates the stack in place.
    net.add_subnet(&vpc, "10.30.3.0/24", "us-east-1c");
    env.run(&["--now", &at(12), "vpc", "capture"]).ok();
    let run = env.run(&["plan"]).ok();
    let line = run.plan_line("~", "vpc_clone.prod-west");
    assert!(line.contains("template changed"), "{run}");
    assert!(
        run.stdout
            .lines()
            .any(|l| l.trim_start().starts_with('+') && l.contains("10.30.3.0/24")),
        "the new subnet is an added template line\n{run}"
    );
    env.apply();
    let clones = net.clones("10.30.0.0/16");
    assert_eq!(clones.len(), 1, "{clones:?}");
    assert_eq!(
        clones[0].1,
        vec!["10.30.1.0/24", "10.30.2.0/24", "10.30.3.0/24"]
    );
    env.assert_converged();

    // The block goes: the stack is deleted, the network stays.
    env.config(&config(false));
    let run = env.run(&["plan"]).ok();
    let line = run.plan_line("-", "vpc_clone.prod-west");
    assert!(line.contains("RETAINED"), "{run}");
    env.apply();
    assert!(!env.state_list().iter().any(|a| a.starts_with("vpc_clone.")));
    let clones = net.clones("10.30.0.0/16");
    assert_eq!(clones.len(), 1, "the retained clone stays: {clones:?}");
    env.assert_converged();
}

#[test]
fn vpc_clone_blocks_are_checked() {
    let ws = Workspace::offline();
    ws.write(
        "main.lb.hcl",
        r#"account "main" {
  regions = ["us-east-1"]
}

vpc_capture "prod" {
  account = account.main
}

vpc_clone "a" {
  capture   = vpc_capture.prd
  vpc       = "vpc-0123abcd"
  to_region = "us-west-2"
}

vpc_clone "b" {
  capture    = vpc_capture.prod
  vpc        = "vpc-12"
  to_region  = "mars-1"
  to_account = account.vault
  at         = "yesterday"
}

vpc_clone "b" {
  capture   = vpc_capture.prod
  vpc       = "vpc-0123abcd"
  to_region = "us-west-2"
}
"#,
    );
    let run = ws.run(&["validate"]).code(1);
    run.stderr_has("main.lb.hcl:10:15");
    run.stderr_has("did you mean vpc_capture.prod?");
    run.stderr_has("main.lb.hcl:17:16");
    run.stderr_has("is not a VPC id");
    run.stderr_has("main.lb.hcl:18:16");
    run.stderr_has("\"mars-1\"");
    run.stderr_has("main.lb.hcl:19:16");
    run.stderr_has("no account \"vault\" is declared");
    run.stderr_has("main.lb.hcl:20:16");
    run.stderr_has("RFC 3339");
    run.stderr_has("main.lb.hcl:23:11");
    run.stderr_has("vpc_clone \"b\" is already declared at main.lb.hcl:15");
}

#[test]
fn a_template_over_the_inline_limit_goes_through_the_bucket() {
    let env = Env::start();
    let net = Net::new(&env.emulator);
    let vpc = net.build();
    // Enough subnets for a template over 51,200 bytes.
    for n in 10..130 {
        let az = ["us-east-1a", "us-east-1b", "us-east-1c"][n % 3];
        net.add_subnet(&vpc, &format!("10.30.{n}.0/24"), az);
    }
    let cfg = config(true).replace("VPC_ID", &vpc);
    env.config(&cfg);
    env.run(&["--now", &at(10), "vpc", "capture"]).ok();

    // Without a bucket the clone cannot be planned, and the plan says why.
    let run = env.run(&["plan"]).ok();
    run.stdout_has("set template_bucket");
    run.stdout_lacks("+ vpc_clone.prod-west");

    net.make_bucket("lifeboat-templates-west");
    env.config(&cfg.replace(
        "timeout    = \"1m\"",
        "timeout    = \"1m\"\n  template_bucket = \"lifeboat-templates-west\"",
    ));
    let run = env.run(&["plan"]).ok();
    run.plan_line("+", "vpc_clone.prod-west");
    env.apply();
    let keys = net.bucket_keys("lifeboat-templates-west");
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        keys[0].starts_with("lifeboat/lifeboat-vpc-clone-prod-west/"),
        "{keys:?}"
    );
    let clones = net.clones("10.30.0.0/16");
    assert_eq!(clones.len(), 1, "{clones:?}");
    assert_eq!(clones[0].1.len(), 122, "{clones:?}");
    env.assert_converged();
}
