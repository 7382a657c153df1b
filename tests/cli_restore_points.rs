//! Restore points end to end: the real `lifeboat backup` against the
//! emulator records what each target was at backup time (an instance's
//! type, placement, network and every disk; a volume's type and size; a
//! database's class and engine), and `lifeboat backups show` prints it, in
//! one line per target and whole under `--json`.

mod support;

use aws_sdk_ec2::config::Credentials;
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, InstanceType, ResourceType, Tag, TagSpecification,
    VolumeType,
};
use serde_json::Value;
use support::network;
use support::targets::Rds;
use support::{at, Env, ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};

/// An instance placed as a restore must rebuild it: in its own subnet of
/// us-east-1b with two security groups and a key, a gp3 root of 2 GiB at
/// `/dev/sda1` and an st1 data disk of 4 GiB at `/dev/sdf`.
struct Placed {
    id: String,
    subnet: String,
    groups: Vec<String>,
    /// Root first.
    volumes: Vec<String>,
}

fn placed(env: &Env) -> Placed {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let credentials = Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY, None, None, "tests");
    let ec2 = network::ec2_client(&env.emulator.endpoint(), REGION, credentials);
    rt.block_on(async {
        let vpc = network::vpc(&ec2, "10.30.0.0/16").await;
        let subnet = network::subnets(&ec2, &vpc, &[("10.30.1.0/24", "us-east-1b")]).await;
        let groups = network::security_groups(&ec2, &vpc, &["web", "ops"]).await;
        ec2.create_key_pair().key_name("ops").send().await.unwrap();
        // The emulator's RunInstances passes no IOPS on to its volumes, so
        // the data disk is of a type that takes none.
        let disk = |device: &str, size: i32, kind: VolumeType| {
            BlockDeviceMapping::builder()
                .device_name(device)
                .ebs(
                    EbsBlockDevice::builder()
                        .volume_size(size)
                        .volume_type(kind)
                        .build(),
                )
                .build()
        };
        let out = ec2
            .run_instances()
            .image_id("ami-12345678")
            .instance_type(InstanceType::T3Large)
            .min_count(1)
            .max_count(1)
            .subnet_id(&subnet[0])
            .security_group_ids(&groups[0])
            .security_group_ids(&groups[1])
            .key_name("ops")
            .block_device_mappings(disk("/dev/sda1", 2, VolumeType::Gp3))
            .block_device_mappings(disk("/dev/sdf", 4, VolumeType::St1))
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .tags(Tag::builder().key("team").value("web").build())
                    .build(),
            )
            .send()
            .await
            .expect("RunInstances");
        let i = &out.instances()[0];
        let volumes = ["/dev/sda1", "/dev/sdf"]
            .iter()
            .map(|dev| {
                i.block_device_mappings()
                    .iter()
                    .find(|m| m.device_name() == Some(*dev))
                    .and_then(|m| m.ebs()?.volume_id())
                    .unwrap_or_else(|| panic!("{dev} mapped"))
                    .to_string()
            })
            .collect();
        Placed {
            id: i.instance_id().unwrap().to_string(),
            subnet: subnet[0].clone(),
            groups,
            volumes,
        }
    })
}

const CONFIG: &str = r#"account "main" {
  regions = ["us-east-1"]
}

policy "web" {
  account     = account.main
  generations = 2

  instance "INSTANCE" {
    region = "us-east-1"
  }
  volume "VOLUME" {
    region = "us-east-1"
  }
  rds "orders-db" {
    region = "us-east-1"
  }
  aurora "orders-cluster" {
    region = "us-east-1"
  }
}
"#;

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("a string, got {v}"))
}

#[test]
fn a_backup_records_each_targets_restore_point_and_backups_show_prints_it() {
    let env = Env::start();
    let rds = Rds::new(&env.emulator);
    let i = placed(&env);
    let other = env.aws.run_instance(2, &[]);
    let volume = other.volumes[1].clone();
    rds.create_instance("orders-db");
    rds.create_cluster("orders-cluster");
    env.config(&CONFIG.replace("INSTANCE", &i.id).replace("VOLUME", &volume));
    env.apply();

    let id = at(10);
    env.backup("web", &id);
    let b = env.run(&["backups", "show", &id, "--json"]).ok().json();
    assert_eq!(b["status"], "success", "{b:#}");
    assert_eq!(b["problems"], Value::Array(vec![]), "{b:#}");
    let points = &b["restore_points"];

    let inst = &points[&i.id];
    assert_eq!(inst["kind"], "instance", "{inst:#}");
    assert_eq!(inst["instance_type"], "t3.large", "{inst:#}");
    assert_eq!(inst["availability_zone"], "us-east-1b", "{inst:#}");
    assert_eq!(inst["subnet_id"], i.subnet.as_str(), "{inst:#}");
    let mut groups: Vec<&str> = inst["security_groups"]
        .as_array()
        .expect("security groups")
        .iter()
        .map(text)
        .collect();
    groups.sort();
    let mut want: Vec<&str> = i.groups.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(groups, want, "{inst:#}");
    assert_eq!(inst["key_name"], "ops", "{inst:#}");
    assert_eq!(inst["root_device"], "/dev/sda1", "{inst:#}");
    assert_eq!(inst["tags"]["team"], "web", "{inst:#}");
    let disks: Vec<(&str, &str, i64, &str)> = inst["disks"]
        .as_array()
        .expect("disks")
        .iter()
        .map(|d| {
            (
                text(&d["device"]),
                text(&d["volume_id"]),
                d["size_gib"].as_i64().unwrap_or_default(),
                text(&d["volume_type"]),
            )
        })
        .collect();
    assert_eq!(
        disks,
        [
            ("/dev/sda1", i.volumes[0].as_str(), 2, "gp3"),
            ("/dev/sdf", i.volumes[1].as_str(), 4, "st1")
        ],
        "root first, every disk: {inst:#}"
    );

    let vol = &points[&volume];
    assert_eq!(vol["kind"], "volume", "{vol:#}");
    assert_eq!(vol["size_gib"], 1, "{vol:#}");
    assert!(!text(&vol["volume_type"]).is_empty(), "{vol:#}");

    let db = &points["orders-db"];
    assert_eq!(db["kind"], "db", "{db:#}");
    assert_eq!(db["class"], "db.t3.micro", "{db:#}");
    assert_eq!(db["engine"], "postgres", "{db:#}");
    let cluster = &points["orders-cluster"];
    assert_eq!(cluster["engine"], "aurora-postgresql", "{cluster:#}");

    // One line per target in the text form.
    let show = env.run(&["backups", "show", &id]).ok();
    show.stdout_has("restore points:");
    show.stdout_has(&format!(
        "{}: t3.large x86_64 us-east-1b {}",
        i.id, i.subnet
    ));
    show.stdout_has("2 disks");
    show.stdout_has("orders-db: db.t3.micro postgres");
}
