//! Exercises [`AwsCloud`] end to end against the AWS emulator (moto).
//!
//! ```sh
//! bash scripts/emulator-env.sh
//! MOTO_EC2_LOAD_DEFAULT_AMIS=false .venv/bin/moto_server -H 127.0.0.1 -p 5901 &
//! AWS_ENDPOINT_URL=http://127.0.0.1:5901 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
//!   AWS_EC2_METADATA_DISABLED=true LIFEBOAT_AWS_MAX_ATTEMPTS=1 \
//!   cargo run -p lifeboat-providers --example smoke
//! ```
//!
//! Run it against a freshly started (or reset) server: it counts resources.
//! Fixtures are made with the plain SDK; every check goes through the
//! engine's traits, the way the engine sees AWS. Panics on the first
//! mismatch.

use std::collections::BTreeMap;

use aws_config::BehaviorVersion;
use aws_sdk_ec2::types::{BlockDeviceMapping, EbsBlockDevice, Tag};
use lifeboat_engine::cloud::{
    Cloud, ErrorKind, InstanceSnapshotRequest, Query, SnapshotQuery, SnapshotState,
    VolumeSnapshotRequest,
};
use lifeboat_providers::AwsCloud;
use lifeboat_schema::{Account, AccountKind, AssumeRole};

const REGION: &str = "us-east-1";

fn account(name: &str, profile: Option<&str>, role: Option<&str>) -> Account {
    Account {
        name: name.to_owned(),
        kind: AccountKind::Backup,
        regions: vec![REGION.to_owned()],
        profile: profile.map(str::to_owned),
        assume_role: role.map(|arn| AssumeRole {
            role_arn: arn.to_owned(),
            external_id: Some("smoke".to_owned()),
            session_name: None,
        }),
        allow_delete: false,
        account_id: None,
        manage_role: None,
        secured: None,
        tag_scan: None,
        location: Default::default(),
    }
}

fn q_tag(key: &str, values: &[&str]) -> Query {
    Query {
        ids: vec![],
        tags: vec![(
            key.to_owned(),
            values.iter().map(|v| v.to_string()).collect(),
        )],
    }
}

#[tokio::main]
async fn main() {
    let base = aws_config::defaults(BehaviorVersion::latest())
        .region(REGION)
        .load()
        .await;
    let raw = aws_sdk_ec2::Client::new(&base);

    // Fixtures: two instances, each with a root and a data volume.
    let disk = |dev: &str, gib| {
        BlockDeviceMapping::builder()
            .device_name(dev)
            .ebs(EbsBlockDevice::builder().volume_size(gib).build())
            .build()
    };
    let run = raw
        .run_instances()
        .image_id("ami-12345678")
        .min_count(2)
        .max_count(2)
        .block_device_mappings(disk("/dev/sda1", 8))
        .block_device_mappings(disk("/dev/sdf", 10))
        .send()
        .await
        .expect("RunInstances");
    let ids: Vec<String> = run
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect();
    raw.create_tags()
        .resources(&ids[0])
        .tags(Tag::builder().key("team").value("web-1").build())
        .send()
        .await
        .expect("CreateTags");

    let cloud = AwsCloud::new();
    let main = account("main", None, None);
    let ec2 = cloud.ec2(&main, REGION).await.expect("ec2(main)");

    let page = ec2
        .instances_page(&q_tag("team", &["web*"]), None)
        .await
        .expect("instances by tag");
    assert_eq!(page.items.len(), 1, "{page:?}");
    let web = &page.items[0];
    assert_eq!(web.id, ids[0]);
    assert_eq!(web.tags.get("team").map(String::as_str), Some("web-1"));
    let roots = web.volumes.iter().filter(|v| v.is_root).count();
    println!(
        "instances_page(tag team=web*): {} instance, state {:?}, {} volumes ({} root): {:?}",
        page.items.len(),
        web.state,
        web.volumes.len(),
        roots,
        web.volumes
    );
    assert_eq!(web.volumes.len(), 2);
    assert_eq!(roots, 1);

    let by_key = ec2.instances_page(&q_tag("team", &[]), None).await.unwrap();
    let by_ids = ec2
        .instances_page(
            &Query {
                ids: ids.clone(),
                tags: vec![],
            },
            None,
        )
        .await
        .unwrap();
    let missing = ec2
        .instances_page(
            &Query {
                ids: vec!["i-0000000000000000f".into()],
                tags: vec![],
            },
            None,
        )
        .await;
    println!(
        "instances_page: tag-key team -> {}, ids -> {}, unknown id -> {:?}",
        by_key.items.len(),
        by_ids.items.len(),
        missing.as_ref().map(|p| p.items.len())
    );
    assert_eq!((by_key.items.len(), by_ids.items.len()), (1, 2));
    assert_eq!(missing.unwrap().items.len(), 0);

    let vol_ids: Vec<String> = web.volumes.iter().map(|v| v.volume_id.clone()).collect();
    let vols = ec2
        .volumes_page(
            &Query {
                ids: vol_ids.clone(),
                tags: vec![],
            },
            None,
        )
        .await
        .unwrap();
    println!(
        "volumes_page(ids): {} volumes, states {:?}",
        vols.items.len(),
        vols.items.iter().map(|v| &v.state).collect::<Vec<_>>()
    );
    assert_eq!(vols.items.len(), 2);

    // One CreateSnapshots call, tags at creation.
    let tags: BTreeMap<String, String> =
        [("lifeboat:policy", "web"), ("lifeboat:backup-id", "b-1")]
            .map(|(k, v)| (k.into(), v.into()))
            .into();
    let snaps = ec2
        .create_instance_snapshots(&InstanceSnapshotRequest {
            instance_id: web.id.clone(),
            exclude_boot_volume: false,
            exclude_volume_ids: vec![],
            description: "lifeboat smoke".into(),
            tags: tags.clone(),
        })
        .await
        .expect("create_instance_snapshots");
    println!(
        "create_instance_snapshots: {} snapshots, volumes {:?}, states {:?}, tags landed: {}",
        snaps.len(),
        snaps.iter().map(|s| &s.volume_id).collect::<Vec<_>>(),
        snaps.iter().map(|s| s.state).collect::<Vec<_>>(),
        snaps.iter().all(|s| s.tags == tags)
    );
    assert_eq!(snaps.len(), 2);
    assert!(snaps.iter().all(|s| s.tags == tags && s.started.is_some()));

    let one = ec2
        .create_volume_snapshot(&VolumeSnapshotRequest {
            volume_id: vol_ids[1].clone(),
            description: "lifeboat smoke volume".into(),
            tags: tags.clone(),
        })
        .await
        .expect("create_volume_snapshot");
    println!(
        "create_volume_snapshot: {} state {:?} tags {}",
        one.id,
        one.state,
        one.tags.len()
    );
    assert_eq!(one.tags, tags);

    let policy = || SnapshotQuery {
        ids: vec![],
        tags: vec![("lifeboat:policy".into(), vec!["we*".into()])],
        unfinished_only: false,
    };
    let listed = ec2
        .snapshots_page(&policy(), None)
        .await
        .expect("snapshots_page");
    println!(
        "snapshots_page(tag lifeboat:policy=we*): {} snapshots, all completed: {}",
        listed.items.len(),
        listed
            .items
            .iter()
            .all(|s| s.state == SnapshotState::Completed)
    );
    assert_eq!(listed.items.len(), 3);
    let by_id = ec2
        .snapshots_page(
            &SnapshotQuery {
                ids: vec![one.id.clone()],
                tags: vec![],
                unfinished_only: false,
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(by_id.items.len(), 1);

    ec2.delete_snapshot(&snaps[0].id).await.expect("delete");
    ec2.delete_snapshot(&snaps[0].id)
        .await
        .expect("second delete is Ok");
    let after = ec2.snapshots_page(&policy(), None).await.unwrap();
    println!(
        "delete_snapshot twice: Ok, Ok; {} snapshots left",
        after.items.len()
    );
    assert_eq!(after.items.len(), 2);

    let err = ec2
        .create_volume_snapshot(&VolumeSnapshotRequest {
            volume_id: "vol-0000000000000000f".into(),
            description: String::new(),
            tags: BTreeMap::new(),
        })
        .await
        .unwrap_err();
    println!("error mapping: {err}  [{:?}]", err.kind);
    assert_eq!(err.kind, ErrorKind::NotFound);

    // A second account through an assumed role: separate resources.
    let role_arn = "arn:aws:iam::222222222222:role/lifeboat";
    let vault = account("vault", None, Some(role_arn));
    let v_ec2 = cloud.ec2(&vault, REGION).await.expect("ec2(vault)");
    let v_instances = v_ec2.instances_page(&Query::default(), None).await.unwrap();
    let v_snaps = v_ec2
        .snapshots_page(&SnapshotQuery::default(), None)
        .await
        .unwrap();
    println!(
        "vault (assumed role): {} instances, {} snapshots before",
        v_instances.items.len(),
        v_snaps.items.len()
    );
    assert_eq!((v_instances.items.len(), v_snaps.items.len()), (0, 0));
    let assumed = aws_config::sts::AssumeRoleProvider::builder(role_arn)
        .configure(&base)
        .build()
        .await;
    let v_conf = base
        .to_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(assumed),
        )
        .build();
    let v_raw = aws_sdk_ec2::Client::new(&v_conf);
    let vol = v_raw
        .create_volume()
        .availability_zone("us-east-1a")
        .size(1)
        .send()
        .await
        .expect("CreateVolume in vault");
    let v_one = v_ec2
        .create_volume_snapshot(&VolumeSnapshotRequest {
            volume_id: vol.volume_id().unwrap().to_owned(),
            description: "vault".into(),
            tags: tags.clone(),
        })
        .await
        .expect("snapshot in vault");
    // Found only if the owner-id filter carries 222222222222.
    let v_listed = v_ec2.snapshots_page(&policy(), None).await.unwrap();
    let main_listed = ec2.snapshots_page(&policy(), None).await.unwrap();
    println!(
        "vault: snapshot {} listed {} (owner-id filter = assumed account); main still lists {}",
        v_one.id,
        v_listed.items.len(),
        main_listed.items.len()
    );
    assert_eq!((v_listed.items.len(), main_listed.items.len()), (1, 2));

    // Credential failures are reported as such, with the account's name.
    let broken = account("broken", Some("no-such-profile"), None);
    let err = cloud
        .ec2(&broken, REGION)
        .await
        .err()
        .expect("missing profile must fail");
    println!("missing profile: {err}  [{:?}]", err.kind);
    let broken_role = account("broken-role", Some("no-such-profile"), Some(role_arn));
    let err = cloud
        .ec2(&broken_role, REGION)
        .await
        .err()
        .expect("missing base credentials must fail");
    println!("role without base credentials: {err}  [{:?}]", err.kind);
    assert_eq!(err.action, "sts:AssumeRole");

    println!("smoke: all checks passed");
}
