//! The restore ports on the real SDK (`lifeboat_providers::AwsCloud`)
//! against the emulator: what an instance, its volumes and a database are
//! (the describes a backup records), and the calls that bring them back.
//! Each test builds its fixtures and reads results back with its own SDK
//! clients.
//!
//! `AwsCloud` takes its endpoint and credentials from the environment, which
//! a process shares: the tests hold [`ENV`] while they use it.
//!
//! Where the emulator departs from AWS the test says so (the provider is
//! written for AWS):
//! - RunInstances and CreateVolume ignore `ClientToken` (a second call makes
//!   a second resource): the fake's tests (`engine/src/testing/fake/
//!   restore.rs`) cover the dedupe;
//! - RunInstances from a registered image creates volumes only for the
//!   mappings passed with it (empty ones), not from the image's snapshots,
//!   and reports every instance's root device as `/dev/sda1` (the fixtures
//!   use that device);
//! - RegisterImage keeps only the name and description: its mappings,
//!   root device and TagSpecifications are dropped (the provider tags with
//!   CreateTags as well; the mappings it sends are unit-tested);
//! - DescribeVolumes reports no DeleteOnTermination in an attachment, nor
//!   EnaSupport for an instance;
//! - a restored Aurora cluster stays `creating`; a cluster restored twice
//!   fails with `DBClusterSnapshotAlreadyExistsFault` where AWS answers
//!   `DBClusterAlreadyExistsFault` (both are a conflict).

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, IamInstanceProfileSpecification, InstanceType,
    ResourceType, Tag, TagSpecification, VolumeType,
};
use lifeboat_engine::cloud::restore::{
    Databases, DbRestoreRequest, ImageRegistration, Launch, LaunchRequest, Mapping, VolumeRequest,
};
use lifeboat_engine::cloud::{Cloud, DbSnapshotKind, ErrorKind, Tags};
use lifeboat_engine::restore::tagged;
use lifeboat_providers::AwsCloud;
use lifeboat_schema::{Account, AccountKind};
use support::{Emulator, ACCESS_KEY_ID, SECRET_ACCESS_KEY};

const REGION: &str = "us-east-1";
const ZONE: &str = "us-east-1b";
const RESTORE_TAG: &str = "lifeboat:restore-id";

/// Held by a test while the environment points at its emulator.
static ENV: Mutex<()> = Mutex::new(());

struct Restore {
    rt: tokio::runtime::Runtime,
    cloud: AwsCloud,
    account: Account,
    endpoint: String,
    _emulator: Emulator,
    _env: MutexGuard<'static, ()>,
}

/// An instance launched by the test with its network.
struct Fixture {
    instance: String,
    subnet: String,
    vpc: String,
    group: String,
    profile_arn: String,
    /// Volume id by device.
    volumes: BTreeMap<String, String>,
}

fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn credentials() -> Credentials {
    Credentials::new(
        ACCESS_KEY_ID,
        SECRET_ACCESS_KEY,
        None,
        None,
        "lifeboat-restore",
    )
}

impl Restore {
    fn start() -> Restore {
        let env = ENV.lock().unwrap_or_else(|e| e.into_inner());
        let emulator = Emulator::start();
        let nowhere = std::env::temp_dir().join("lifeboat-restore-no-aws-config");
        std::env::set_var("AWS_ENDPOINT_URL", emulator.endpoint());
        std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY);
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        std::env::set_var("AWS_CONFIG_FILE", &nowhere);
        std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", &nowhere);
        for var in ["AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"] {
            std::env::remove_var(var);
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let account = Account {
            name: "prod".to_owned(),
            kind: AccountKind::Backup,
            regions: vec![REGION.to_owned()],
            profile: None,
            assume_role: None,
            allow_delete: false,
            account_id: None,
            manage_role: None,
            secured: None,
            tag_scan: None,
            location: Default::default(),
        };
        Restore {
            rt,
            cloud: AwsCloud::with_max_attempts(1),
            account,
            endpoint: emulator.endpoint(),
            _emulator: emulator,
            _env: env,
        }
    }

    fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    fn launch(&self) -> Arc<dyn Launch> {
        self.block(self.cloud.launch(&self.account, REGION))
            .expect("the restore EC2 client")
    }

    fn ec2(&self) -> Arc<dyn lifeboat_engine::cloud::Ec2> {
        self.block(self.cloud.ec2(&self.account, REGION))
            .expect("the EC2 client")
    }

    fn databases(&self) -> Arc<dyn Databases> {
        self.block(self.cloud.databases(&self.account, REGION))
            .expect("the restore RDS client")
    }

    fn ec2_sdk(&self) -> aws_sdk_ec2::Client {
        let conf = aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(credentials())
            .build();
        aws_sdk_ec2::Client::from_conf(conf)
    }

    fn rds_sdk(&self) -> aws_sdk_rds::Client {
        let conf = aws_sdk_rds::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_sdk_rds::config::Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(credentials())
            .build();
        aws_sdk_rds::Client::from_conf(conf)
    }

    fn iam_sdk(&self) -> aws_sdk_iam::Client {
        let conf = aws_sdk_iam::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_sdk_iam::config::Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(credentials())
            .build();
        aws_sdk_iam::Client::from_conf(conf)
    }

    /// A VPC with a subnet in [`ZONE`], a group, a key pair, an instance
    /// profile, and an instance there: a 8 GiB root at `/dev/sda1`, a
    /// 5 GiB gp3 at `/dev/sdf` kept on termination, an encrypted 3 GiB at
    /// `/dev/sdg`.
    fn fixture(&self) -> Fixture {
        let ec2 = self.ec2_sdk();
        let vpc = self
            .block(ec2.create_vpc().cidr_block("10.0.0.0/16").send())
            .expect("CreateVpc");
        let vpc = vpc.vpc().and_then(|v| v.vpc_id()).unwrap().to_owned();
        let subnet = self
            .block(
                ec2.create_subnet()
                    .vpc_id(&vpc)
                    .cidr_block("10.0.1.0/24")
                    .availability_zone(ZONE)
                    .send(),
            )
            .expect("CreateSubnet");
        let subnet = subnet
            .subnet()
            .and_then(|s| s.subnet_id())
            .unwrap()
            .to_owned();
        let group = self
            .block(
                ec2.create_security_group()
                    .group_name("web")
                    .description("web")
                    .vpc_id(&vpc)
                    .send(),
            )
            .expect("CreateSecurityGroup")
            .group_id()
            .unwrap()
            .to_owned();
        self.block(ec2.create_key_pair().key_name("ops").send())
            .expect("CreateKeyPair");
        let profile = self
            .block(
                self.iam_sdk()
                    .create_instance_profile()
                    .instance_profile_name("web")
                    .send(),
            )
            .expect("CreateInstanceProfile");
        let profile_arn = profile.instance_profile().unwrap().arn().to_owned();
        let disk = |device: &str, ebs: EbsBlockDevice| {
            BlockDeviceMapping::builder()
                .device_name(device)
                .ebs(ebs)
                .build()
        };
        let out = self
            .block(
                ec2.run_instances()
                    .image_id("ami-12345678")
                    .instance_type(InstanceType::T3Small)
                    .min_count(1)
                    .max_count(1)
                    .subnet_id(&subnet)
                    .security_group_ids(&group)
                    .key_name("ops")
                    .iam_instance_profile(
                        IamInstanceProfileSpecification::builder()
                            .arn(&profile_arn)
                            .build(),
                    )
                    .block_device_mappings(disk(
                        "/dev/sda1",
                        EbsBlockDevice::builder().volume_size(8).build(),
                    ))
                    .block_device_mappings(disk(
                        "/dev/sdf",
                        EbsBlockDevice::builder()
                            .volume_size(5)
                            .volume_type(VolumeType::Gp3)
                            .delete_on_termination(false)
                            .build(),
                    ))
                    .block_device_mappings(disk(
                        "/dev/sdg",
                        EbsBlockDevice::builder()
                            .volume_size(3)
                            .encrypted(true)
                            .build(),
                    ))
                    .tag_specifications(
                        TagSpecification::builder()
                            .resource_type(ResourceType::Instance)
                            .tags(Tag::builder().key("Name").value("web-1").build())
                            .build(),
                    )
                    .send(),
            )
            .expect("RunInstances");
        let i = &out.instances()[0];
        let volumes = i
            .block_device_mappings()
            .iter()
            .map(|m| {
                (
                    m.device_name().unwrap().to_owned(),
                    m.ebs().and_then(|e| e.volume_id()).unwrap().to_owned(),
                )
            })
            .collect();
        Fixture {
            instance: i.instance_id().unwrap().to_owned(),
            subnet,
            vpc,
            group,
            profile_arn,
            volumes,
        }
    }

    /// Snapshots a volume with the test's SDK client.
    fn snapshot(&self, volume_id: &str) -> String {
        self.block(self.ec2_sdk().create_snapshot().volume_id(volume_id).send())
            .expect("CreateSnapshot")
            .snapshot_id()
            .unwrap()
            .to_owned()
    }

    /// An instance as the test's SDK client sees it.
    fn instance(&self, id: &str) -> aws_sdk_ec2::types::Instance {
        let out = self
            .block(self.ec2_sdk().describe_instances().instance_ids(id).send())
            .expect("DescribeInstances");
        out.reservations()[0].instances()[0].clone()
    }

    fn volume(&self, id: &str) -> aws_sdk_ec2::types::Volume {
        let out = self
            .block(self.ec2_sdk().describe_volumes().volume_ids(id).send())
            .expect("DescribeVolumes");
        out.volumes()[0].clone()
    }
}

#[test]
fn an_instance_and_its_volumes_are_described_as_a_restore_needs_them() {
    let r = Restore::start();
    let f = r.fixture();
    let launch = r.launch();
    let missing = "i-0123456789abcdef0".to_owned();
    let page = r
        .block(launch.shapes_page(&[f.instance.clone(), missing], None))
        .expect("DescribeInstances");
    assert_eq!(
        page.items.len(),
        1,
        "a missing id is absent: {:?}",
        page.items
    );
    let (id, shape) = &page.items[0];
    assert_eq!(id, &f.instance);
    assert_eq!(shape.instance_type, "t3.small");
    assert_eq!(shape.architecture, "x86_64");
    assert_eq!(shape.availability_zone, ZONE);
    assert_eq!(shape.subnet_id.as_deref(), Some(f.subnet.as_str()));
    assert_eq!(shape.vpc_id.as_deref(), Some(f.vpc.as_str()));
    assert_eq!(shape.security_groups, vec![f.group.clone()]);
    assert_eq!(shape.key_name.as_deref(), Some("ops"));
    assert_eq!(shape.iam_profile.as_deref(), Some(f.profile_arn.as_str()));
    assert_eq!(shape.image_id.as_deref(), Some("ami-12345678"));
    assert!(shape.private_ip.is_some(), "{shape:?}");
    assert_eq!(shape.root_device, "/dev/sda1");
    assert_eq!(shape.tags, tags(&[("Name", "web-1")]));
    let devices: Vec<&str> = shape.disks.iter().map(|d| d.device.as_str()).collect();
    assert_eq!(devices, ["/dev/sda1", "/dev/sdf", "/dev/sdg"], "root first");
    for d in &shape.disks {
        assert_eq!(d.volume_id, f.volumes[&d.device]);
    }
    assert_eq!(shape.root().map(|d| d.device.as_str()), Some("/dev/sda1"));

    let ids: Vec<String> = f.volumes.values().cloned().collect();
    let disks = r
        .block(launch.disks_page(&ids, None))
        .expect("DescribeVolumes")
        .items;
    assert_eq!(disks.len(), 3, "{disks:?}");
    let by_device: BTreeMap<&str, _> = disks.iter().map(|d| (d.device.as_str(), d)).collect();
    assert_eq!(by_device["/dev/sda1"].size_gib, 8);
    let data = by_device["/dev/sdf"];
    assert_eq!(
        (data.size_gib, data.volume_type.as_str(), data.iops),
        (5, "gp3", Some(3000)),
        "{data:?}"
    );
    assert_eq!(data.availability_zone, ZONE);
    assert!(!data.encrypted && data.kms_key_id.is_none(), "{data:?}");
    let secret = by_device["/dev/sdg"];
    assert!(secret.encrypted, "{secret:?}");
    assert!(secret.kms_key_id.is_some(), "{secret:?}");
}

#[test]
fn an_image_registered_from_the_snapshots_launches_with_the_same_devices_and_tags() {
    let r = Restore::start();
    let f = r.fixture();
    let launch = r.launch();
    let ids: Vec<String> = f.volumes.values().cloned().collect();
    let mut disks = r.block(launch.disks_page(&ids, None)).unwrap().items;
    disks.sort_by(|a, b| a.device.cmp(&b.device));
    let mappings: Vec<Mapping> = disks
        .iter()
        .map(|d| Mapping {
            device: d.device.clone(),
            snapshot_id: r.snapshot(&d.volume_id),
            size_gib: Some(d.size_gib),
            volume_type: Some("gp3".to_owned()),
            iops: Some(3000),
            throughput: Some(125),
            delete_on_termination: d.device == "/dev/sda1",
        })
        .collect();
    let restore_tags = tags(&[(RESTORE_TAG, "r-1"), ("Name", "web-1")]);
    let image = r
        .block(launch.register_image(&ImageRegistration {
            name: "lifeboat-restore-r-1".to_owned(),
            description: "restore r-1 of web-1".to_owned(),
            architecture: "x86_64".to_owned(),
            root_device: "/dev/sda1".to_owned(),
            ena: true,
            mappings: mappings.clone(),
            tags: restore_tags.clone(),
        }))
        .expect("RegisterImage");
    let described = r
        .block(r.ec2_sdk().describe_images().image_ids(&image).send())
        .expect("DescribeImages");
    let ami = &described.images()[0];
    assert_eq!(ami.root_device_name(), Some("/dev/sda1"));
    let mut registered: Vec<(String, String)> = ami
        .block_device_mappings()
        .iter()
        .map(|m| {
            (
                m.device_name().unwrap().to_owned(),
                m.ebs().and_then(|e| e.snapshot_id()).unwrap().to_owned(),
            )
        })
        .collect();
    registered.sort();
    let asked: Vec<(String, String)> = mappings
        .iter()
        .map(|m| (m.device.clone(), m.snapshot_id.clone()))
        .collect();
    // The emulator's RegisterImage keeps only the name and description: it
    // reports one root mapping of a fresh snapshot whatever was asked (the
    // provider's mappings are checked in `providers/src/launch.rs`). AWS
    // reports the mappings asked for.
    let emulated = registered.len() == 1 && registered[0].0 == "/dev/sda1";
    assert!(
        registered == asked || emulated,
        "{registered:?} for {asked:?}"
    );
    assert_eq!(ami.name(), Some("lifeboat-restore-r-1"));
    let image_tags: Tags = ami
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_owned(), t.value().unwrap().to_owned()))
        .collect();
    assert_eq!(image_tags, restore_tags);

    let user_data = "#!/bin/sh\necho restored\n";
    let req = LaunchRequest {
        image_id: image.clone(),
        instance_type: "t3.small".to_owned(),
        subnet_id: Some(f.subnet.clone()),
        availability_zone: None,
        security_groups: vec![f.group.clone()],
        key_name: Some("ops".to_owned()),
        iam_profile: Some(f.profile_arn.clone()),
        private_ip: None,
        ebs_optimized: false,
        hibernation: false,
        user_data: Some(user_data.to_owned()),
        mappings: mappings.clone(),
        tags: restore_tags.clone(),
        client_token: "r-1-web-1".to_owned(),
    };
    let id = r.block(launch.run_instance(&req)).expect("RunInstances");
    let i = r.instance(&id);
    let mut devices: Vec<&str> = i
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.device_name())
        .collect();
    devices.sort();
    assert_eq!(devices, ["/dev/sda1", "/dev/sdf", "/dev/sdg"]);
    assert_eq!(i.subnet_id(), Some(f.subnet.as_str()));
    assert_eq!(i.key_name(), Some("ops"));
    let got: Tags = i
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_owned(), t.value().unwrap().to_owned()))
        .collect();
    assert_eq!(got, restore_tags);
    // The user data arrives as the instance reads it: encoded once.
    let attr = r
        .block(
            r.ec2_sdk()
                .describe_instance_attribute()
                .instance_id(&id)
                .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
                .send(),
        )
        .expect("DescribeInstanceAttribute");
    let encoded = attr.user_data().and_then(|u| u.value()).unwrap_or_default();
    assert_eq!(
        encoded, "IyEvYmluL3NoCmVjaG8gcmVzdG9yZWQK",
        "base64 of {user_data:?}"
    );

    // What the restore made is found again by its tag, filtered in EC2:
    // the instance, and its volumes (tagged at creation).
    let ec2 = r.ec2();
    let found = r
        .block(tagged::instances(ec2.as_ref(), "r-1"))
        .expect("restored instances");
    let found: Vec<_> = found.into_iter().map(|i| (i.id, i.tags)).collect();
    assert_eq!(found, vec![(id.clone(), restore_tags.clone())]);
    let volumes = r
        .block(tagged::volumes(ec2.as_ref(), "r-1"))
        .expect("volumes");
    assert_eq!(volumes.len(), 3, "{volumes:?}");
    assert!(
        volumes.iter().all(|v| v.tags == restore_tags),
        "{volumes:?}"
    );
    assert!(r
        .block(tagged::instances(ec2.as_ref(), "r-2"))
        .unwrap()
        .is_empty());

    // Terminated, it is no longer adopted; terminating again, or an
    // instance that never existed, is done already.
    r.block(launch.terminate_instance(&id)).expect("terminate");
    assert!(r
        .block(tagged::instances(ec2.as_ref(), "r-1"))
        .unwrap()
        .is_empty());
    r.block(launch.terminate_instance(&id)).expect("again");
    r.block(launch.terminate_instance("i-0123456789abcdef0"))
        .expect("an instance gone is done");

    assert_eq!(
        r.block(launch.subnet_zone(&f.subnet)).unwrap().as_deref(),
        Some(ZONE)
    );
    assert_eq!(
        r.block(launch.subnet_zone("subnet-0123456789abcdef0"))
            .unwrap(),
        None
    );
}

#[test]
fn a_volume_from_a_snapshot_is_attached_detached_and_deleted() {
    let r = Restore::start();
    let f = r.fixture();
    let launch = r.launch();
    let snapshot = r.snapshot(&f.volumes["/dev/sdf"]);
    let volume_tags = tags(&[(RESTORE_TAG, "r-9")]);
    let req = VolumeRequest {
        snapshot_id: snapshot.clone(),
        availability_zone: ZONE.to_owned(),
        volume_type: "gp3".to_owned(),
        size_gib: Some(7),
        iops: Some(4000),
        throughput: Some(250),
        kms_key_id: None,
        tags: volume_tags.clone(),
        client_token: "r-9-sdf".to_owned(),
    };
    let volume = r.block(launch.create_volume(&req)).expect("CreateVolume");
    let disk = r
        .block(launch.disks_page(std::slice::from_ref(&volume), None))
        .unwrap()
        .items;
    assert_eq!(disk.len(), 1);
    assert_eq!(
        (
            disk[0].size_gib,
            disk[0].volume_type.as_str(),
            disk[0].iops,
            disk[0].throughput
        ),
        (7, "gp3", Some(4000), Some(250)),
        "{disk:?}"
    );
    assert_eq!(disk[0].tags, volume_tags);
    assert_eq!(r.volume(&volume).snapshot_id(), Some(snapshot.as_str()));

    r.block(launch.attach_volume(&volume, &f.instance, "/dev/sdh"))
        .expect("AttachVolume");
    let v = r.volume(&volume);
    assert_eq!(v.attachments()[0].device(), Some("/dev/sdh"));
    assert_eq!(v.attachments()[0].instance_id(), Some(f.instance.as_str()));
    r.block(launch.detach_volume(&volume, &f.instance))
        .expect("DetachVolume");
    assert!(r.volume(&volume).attachments().is_empty());

    r.block(launch.delete_volume(&volume))
        .expect("DeleteVolume");
    r.block(launch.delete_volume(&volume))
        .expect("a volume gone is done");

    // A volume that does not exist is not attached: the error names the
    // call and the volume.
    let err = r
        .block(launch.attach_volume("vol-0123456789abcdef0", &f.instance, "/dev/sdi"))
        .unwrap_err();
    assert_eq!(err.action, "ec2:AttachVolume");
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert_eq!(err.resource.as_deref(), Some("vol-0123456789abcdef0"));
}

/// A DB subnet group over two zones and a security group; returns the
/// group's id.
fn db_network(r: &Restore) -> String {
    let ec2 = r.ec2_sdk();
    let vpc = r
        .block(ec2.create_vpc().cidr_block("10.1.0.0/16").send())
        .unwrap();
    let vpc = vpc.vpc().and_then(|v| v.vpc_id()).unwrap().to_owned();
    let mut subnets = Vec::new();
    for (n, zone) in ["us-east-1a", "us-east-1b"].iter().enumerate() {
        let s = r
            .block(
                ec2.create_subnet()
                    .vpc_id(&vpc)
                    .cidr_block(format!("10.1.{n}.0/24"))
                    .availability_zone(*zone)
                    .send(),
            )
            .unwrap();
        subnets.push(s.subnet().and_then(|s| s.subnet_id()).unwrap().to_owned());
    }
    let group = r
        .block(
            ec2.create_security_group()
                .group_name("db")
                .description("db")
                .vpc_id(&vpc)
                .send(),
        )
        .unwrap()
        .group_id()
        .unwrap()
        .to_owned();
    r.block(
        r.rds_sdk()
            .create_db_subnet_group()
            .db_subnet_group_name("data")
            .db_subnet_group_description("data")
            .set_subnet_ids(Some(subnets))
            .send(),
    )
    .expect("CreateDBSubnetGroup");
    group
}

fn rds_tag(k: &str, v: &str) -> aws_sdk_rds::types::Tag {
    aws_sdk_rds::types::Tag::builder().key(k).value(v).build()
}

#[test]
fn a_db_instance_is_described_restored_from_its_snapshot_and_deleted() {
    let r = Restore::start();
    let group = db_network(&r);
    let rds = r.rds_sdk();
    r.block(
        rds.create_db_parameter_group()
            .db_parameter_group_name("pg15")
            .db_parameter_group_family("postgres15")
            .description("pg15")
            .send(),
    )
    .expect("CreateDBParameterGroup");
    r.block(
        rds.create_db_instance()
            .db_instance_identifier("orders")
            .db_instance_class("db.t3.micro")
            .engine("postgres")
            .engine_version("15.4")
            .allocated_storage(20)
            .master_username("admin1")
            .master_user_password("password-1")
            .db_subnet_group_name("data")
            .db_parameter_group_name("pg15")
            .port(5433)
            .vpc_security_group_ids(&group)
            .tags(rds_tag("team", "orders"))
            .send(),
    )
    .expect("CreateDBInstance");
    let dbs = r.databases();
    let shapes = r
        .block(dbs.shapes_page(
            DbSnapshotKind::Instance,
            &["orders".to_owned(), "gone".to_owned()],
            None,
        ))
        .expect("DescribeDBInstances")
        .items;
    assert_eq!(shapes.len(), 1, "{shapes:?}");
    let s = &shapes[0];
    assert_eq!(s.identifier, "orders");
    assert_eq!(s.kind, Some(DbSnapshotKind::Instance));
    assert_eq!(
        (
            s.class.as_str(),
            s.engine.as_str(),
            s.engine_version.as_str()
        ),
        ("db.t3.micro", "postgres", "15.4")
    );
    assert_eq!(s.subnet_group.as_deref(), Some("data"));
    assert_eq!(s.parameter_group.as_deref(), Some("pg15"));
    assert_eq!(s.port, Some(5433));
    assert!(!s.multi_az);
    assert!(s.availability_zone.is_some(), "{s:?}");
    assert_eq!(s.security_groups, vec![group.clone()]);
    assert_eq!(s.tags, tags(&[("team", "orders")]));

    r.block(
        rds.create_db_snapshot()
            .db_instance_identifier("orders")
            .db_snapshot_identifier("orders-1")
            .send(),
    )
    .expect("CreateDBSnapshot");
    let arn = r
        .block(
            rds.describe_db_snapshots()
                .db_snapshot_identifier("orders-1")
                .send(),
        )
        .unwrap()
        .db_snapshots()[0]
        .db_snapshot_arn()
        .unwrap()
        .to_owned();
    let req = DbRestoreRequest {
        kind: DbSnapshotKind::Instance,
        identifier: "orders-drill".to_owned(),
        // By ARN, as a snapshot shared from another account is named.
        snapshot: arn,
        class: Some("db.t3.small".to_owned()),
        engine: None,
        subnet_group: Some("data".to_owned()),
        parameter_group: Some("pg15".to_owned()),
        port: Some(5434),
        multi_az: false,
        security_groups: vec![group.clone()],
        tags: tags(&[(RESTORE_TAG, "r-3")]),
    };
    r.block(dbs.restore(&req))
        .expect("RestoreDBInstanceFromDBSnapshot");
    let status = r
        .block(dbs.status(DbSnapshotKind::Instance, "orders-drill"))
        .expect("DescribeDBInstances")
        .expect("restored");
    assert_eq!(status.identifier, "orders-drill");
    assert!(!status.status.is_empty());
    assert!(status.endpoint.is_some(), "{status:?}");
    assert_eq!(status.tags, tags(&[(RESTORE_TAG, "r-3")]));
    let restored = r
        .block(dbs.shapes_page(DbSnapshotKind::Instance, &["orders-drill".to_owned()], None))
        .unwrap()
        .items;
    assert_eq!(restored[0].class, "db.t3.small");
    assert_eq!(restored[0].port, Some(5434));

    let again = r.block(dbs.restore(&req)).unwrap_err();
    assert_eq!(again.kind, ErrorKind::Conflict, "{again}");
    assert_eq!(again.action, "rds:RestoreDBInstanceFromDBSnapshot");
    assert_eq!(again.resource.as_deref(), Some("orders-drill"));

    r.block(dbs.delete(DbSnapshotKind::Instance, "orders-drill"))
        .expect("DeleteDBInstance");
    assert_eq!(
        r.block(dbs.status(DbSnapshotKind::Instance, "orders-drill"))
            .unwrap(),
        None
    );
    r.block(dbs.delete(DbSnapshotKind::Instance, "orders-drill"))
        .expect("a database gone is done");
}

#[test]
fn an_aurora_cluster_is_described_restored_given_an_instance_and_deleted() {
    let r = Restore::start();
    let group = db_network(&r);
    let rds = r.rds_sdk();
    r.block(
        rds.create_db_cluster()
            .db_cluster_identifier("ledger")
            .engine("aurora-postgresql")
            .engine_version("15.4")
            .master_username("admin1")
            .master_user_password("password-1")
            .db_subnet_group_name("data")
            .port(5432)
            .vpc_security_group_ids(&group)
            .tags(rds_tag("team", "ledger"))
            .send(),
    )
    .expect("CreateDBCluster");
    for (id, class) in [("ledger-a", "db.r6g.large"), ("ledger-b", "db.r6g.xlarge")] {
        r.block(
            rds.create_db_instance()
                .db_instance_identifier(id)
                .db_cluster_identifier("ledger")
                .db_instance_class(class)
                .engine("aurora-postgresql")
                .send(),
        )
        .expect("CreateDBInstance in the cluster");
    }
    let dbs = r.databases();
    let shapes = r
        .block(dbs.shapes_page(DbSnapshotKind::Cluster, &["ledger".to_owned()], None))
        .expect("DescribeDBClusters")
        .items;
    assert_eq!(shapes.len(), 1, "{shapes:?}");
    let s = &shapes[0];
    assert_eq!(s.kind, Some(DbSnapshotKind::Cluster));
    assert_eq!(s.engine, "aurora-postgresql");
    assert_eq!(s.subnet_group.as_deref(), Some("data"));
    assert_eq!(s.port, Some(5432));
    assert_eq!(s.security_groups, vec![group.clone()]);
    assert_eq!(s.tags, tags(&[("team", "ledger")]));
    let mut members = s.members.clone();
    members.sort();
    assert_eq!(
        members,
        vec![
            ("ledger-a".to_owned(), "db.r6g.large".to_owned()),
            ("ledger-b".to_owned(), "db.r6g.xlarge".to_owned()),
        ]
    );
    // The writer's class (the first member made is the writer).
    assert_eq!(s.class, "db.r6g.large");

    r.block(
        rds.create_db_cluster_snapshot()
            .db_cluster_identifier("ledger")
            .db_cluster_snapshot_identifier("ledger-1")
            .send(),
    )
    .expect("CreateDBClusterSnapshot");
    let mut req = DbRestoreRequest {
        kind: DbSnapshotKind::Cluster,
        identifier: "ledger-drill".to_owned(),
        snapshot: "ledger-1".to_owned(),
        class: Some("db.r6g.large".to_owned()),
        engine: None,
        subnet_group: Some("data".to_owned()),
        parameter_group: None,
        port: Some(5432),
        multi_az: false,
        security_groups: vec![group.clone()],
        tags: tags(&[(RESTORE_TAG, "r-4")]),
    };
    let no_engine = r.block(dbs.restore(&req)).unwrap_err();
    assert_eq!(no_engine.kind, ErrorKind::Invalid, "{no_engine}");
    req.engine = Some("aurora-postgresql".to_owned());
    r.block(dbs.restore(&req))
        .expect("RestoreDBClusterFromSnapshot");
    let again = r.block(dbs.restore(&req)).unwrap_err();
    assert_eq!(again.kind, ErrorKind::Conflict, "{again}");

    let member_tags = tags(&[(RESTORE_TAG, "r-4")]);
    r.block(dbs.add_cluster_instance(
        "ledger-drill",
        "ledger-drill-1",
        "db.r6g.large",
        "aurora-postgresql",
        &member_tags,
    ))
    .expect("CreateDBInstance");
    let status = r
        .block(dbs.status(DbSnapshotKind::Cluster, "ledger-drill"))
        .unwrap()
        .expect("restored cluster");
    assert!(status.endpoint.is_some(), "{status:?}");
    assert_eq!(status.tags, member_tags);
    let member = r
        .block(dbs.status(DbSnapshotKind::Instance, "ledger-drill-1"))
        .unwrap()
        .expect("its instance");
    assert_eq!(member.tags, member_tags);

    // RDS keeps a cluster that still has instances.
    let busy = r
        .block(dbs.delete(DbSnapshotKind::Cluster, "ledger-drill"))
        .unwrap_err();
    assert_eq!(busy.kind, ErrorKind::Conflict, "{busy}");
    r.block(dbs.delete(DbSnapshotKind::Instance, "ledger-drill-1"))
        .expect("DeleteDBInstance");
    r.block(dbs.delete(DbSnapshotKind::Cluster, "ledger-drill"))
        .expect("DeleteDBCluster");
    assert_eq!(
        r.block(dbs.status(DbSnapshotKind::Cluster, "ledger-drill"))
            .unwrap(),
        None
    );
    r.block(dbs.delete(DbSnapshotKind::Cluster, "ledger-drill"))
        .expect("a cluster gone is done");
}
