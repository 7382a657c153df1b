//! The fake's restore calls, and what they model that the emulator does
//! not: client tokens, instances pending and databases creating for a
//! while, a cluster kept while it has instances, injected failures.

use super::*;
use crate::restore::tagged;
/// The tag a restore puts on everything it makes.
use crate::restore::TAG_RESTORE_ID as RESTORE_TAG;

const REGION: &str = "us-east-1";

fn account() -> Account {
    Account {
        name: "main".into(),
        kind: Default::default(),
        regions: vec![REGION.into()],
        profile: None,
        assume_role: None,
        allow_delete: true,
        account_id: None,
        manage_role: None,
        secured: None,
        tag_scan: None,
        location: Default::default(),
    }
}

fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn disk(volume_id: &str, device: &str, size_gib: i32) -> Disk {
    Disk {
        volume_id: volume_id.into(),
        device: device.into(),
        size_gib,
        volume_type: "gp3".into(),
        iops: Some(3000),
        delete_on_termination: device == "/dev/xvda",
        ..Disk::default()
    }
}

/// A world with instance `i-1` (root and one data disk) and its
/// snapshots registered as an image; returns the cloud and the image.
async fn world_with_image() -> (FakeCloud, Arc<dyn Launch>, String) {
    let cloud = FakeCloud::new(2);
    let ec2 = cloud.client(&account(), REGION).unwrap();
    let snapshots = {
        let mut w = cloud.world.lock().unwrap();
        w.add_shaped_instance(
            "i-1",
            REGION,
            InstanceShape {
                instance_type: "m5.large".into(),
                architecture: "x86_64".into(),
                root_device: "/dev/xvda".into(),
                availability_zone: format!("{REGION}b"),
                tags: tags(&[("Name", "web")]),
                disks: vec![disk("vol-1", "/dev/xvda", 8), disk("vol-2", "/dev/sdf", 50)],
                ..InstanceShape::default()
            },
        );
        ["vol-1", "vol-2"].map(|v| ec2.new_snapshot(&mut w, v, &Tags::new(), "").id)
    };
    let launch = cloud.launch(&account(), REGION).await.unwrap();
    let mapping = |device: &str, snapshot: &str, size| Mapping {
        device: device.into(),
        snapshot_id: snapshot.into(),
        size_gib: Some(size),
        volume_type: Some("gp3".into()),
        iops: None,
        throughput: None,
        delete_on_termination: device == "/dev/xvda",
    };
    let image = launch
        .register_image(&ImageRegistration {
            name: "restore-1".into(),
            description: String::new(),
            architecture: "x86_64".into(),
            root_device: "/dev/xvda".into(),
            ena: true,
            mappings: vec![
                mapping("/dev/xvda", &snapshots[0], 8),
                mapping("/dev/sdf", &snapshots[1], 50),
            ],
            tags: tags(&[(RESTORE_TAG, "r-1")]),
        })
        .await
        .unwrap();
    (cloud, launch, image)
}

fn launch_request(image: &str, token: &str) -> LaunchRequest {
    LaunchRequest {
        image_id: image.into(),
        instance_type: "m5.large".into(),
        subnet_id: None,
        availability_zone: Some(format!("{REGION}b")),
        security_groups: vec!["sg-1".into()],
        key_name: Some("ops".into()),
        iam_profile: None,
        private_ip: None,
        ebs_optimized: true,
        hibernation: false,
        user_data: Some("#!/bin/sh\n".into()),
        mappings: vec![],
        tags: tags(&[(RESTORE_TAG, "r-1")]),
        client_token: token.into(),
    }
}

#[tokio::test]
async fn shapes_and_disks_are_described_a_page_at_a_time() {
    let (cloud, launch, _) = world_with_image().await;
    let shapes = collect_pages(|t| launch.shapes_page(&[], t)).await.unwrap();
    assert_eq!(shapes.len(), 1);
    let (id, shape) = &shapes[0];
    assert_eq!(
        (id.as_str(), shape.instance_type.as_str()),
        ("i-1", "m5.large")
    );
    // As DescribeInstances: the disks' devices and ids only.
    assert_eq!(shape.disks[1].volume_id, "vol-2");
    assert_eq!(shape.disks[1].size_gib, 0);
    let disks = collect_pages(|t| launch.disks_page(&[], t)).await.unwrap();
    assert_eq!(disks.len(), 2);
    assert_eq!(disks[1].size_gib, 50);
    assert_eq!(
        disks[1].availability_zone, "us-east-1b",
        "the instance's zone"
    );
    let w = cloud.world.lock().unwrap();
    assert_eq!(w.calls_of("DescribeInstances"), 1);
    assert_eq!(w.calls_of("DescribeVolumes"), 1);
}

/// The emulator ignores RunInstances' and CreateVolume's ClientToken;
/// AWS answers a repeated token with what the first call made.
#[tokio::test]
async fn a_repeated_client_token_launches_and_creates_nothing_twice() {
    let (cloud, launch, image) = world_with_image().await;
    let first = launch
        .run_instance(&launch_request(&image, "t-1"))
        .await
        .unwrap();
    let again = launch
        .run_instance(&launch_request(&image, "t-1"))
        .await
        .unwrap();
    assert_eq!(first, again);
    let other = launch
        .run_instance(&launch_request(&image, "t-2"))
        .await
        .unwrap();
    assert_ne!(first, other);
    let snapshot = cloud.world.lock().unwrap().images[&image].snapshot_ids[1].clone();
    let req = VolumeRequest {
        snapshot_id: snapshot,
        availability_zone: format!("{REGION}b"),
        volume_type: "gp3".into(),
        size_gib: Some(60),
        iops: None,
        throughput: None,
        kms_key_id: None,
        tags: tags(&[(RESTORE_TAG, "r-1")]),
        client_token: "v-1".into(),
    };
    let v1 = launch.create_volume(&req).await.unwrap();
    assert_eq!(launch.create_volume(&req).await.unwrap(), v1);
    let w = cloud.world.lock().unwrap();
    assert_eq!(w.launches.len(), 2, "two launches made instances");
    assert_eq!(w.calls_of("RunInstances"), 3);
    // Two instances with two volumes each, and one volume.
    let ours = |t: &Tags| t.get(RESTORE_TAG).is_some_and(|v| v == "r-1");
    assert_eq!(w.volumes.values().filter(|v| ours(&v.tags)).count(), 5);
}

#[tokio::test]
async fn a_launched_instance_has_its_images_devices_and_runs_after_some_looks() {
    let (cloud, launch, image) = world_with_image().await;
    let ec2 = cloud.client(&account(), REGION).unwrap();
    cloud.world.lock().unwrap().launch_pending = 2;
    let id = launch
        .run_instance(&launch_request(&image, "t-1"))
        .await
        .unwrap();
    let state = || cloud.world.lock().unwrap().instances[&id].state;
    assert_eq!(state(), InstanceState::Pending);
    let found = tagged::instances(&ec2, "r-1").await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(state(), InstanceState::Pending);
    launch
        .shapes_page(std::slice::from_ref(&id), None)
        .await
        .unwrap();
    assert_eq!(state(), InstanceState::Running);

    let shape = cloud.world.lock().unwrap().shapes[&id].clone();
    let devices: Vec<&str> = shape.disks.iter().map(|d| d.device.as_str()).collect();
    assert_eq!(devices, ["/dev/xvda", "/dev/sdf"]);
    assert_eq!(shape.disks[1].size_gib, 50);
    assert_eq!(shape.key_name.as_deref(), Some("ops"));
    assert!(shape.ebs_optimized && shape.ena);
    assert_eq!(tagged::volumes(&ec2, "r-1").await.unwrap().len(), 2);

    // Terminated: the root (DeleteOnTermination) goes, the data disk
    // stays, detached; the instance is no longer found.
    launch.terminate_instance(&id).await.unwrap();
    assert!(tagged::instances(&ec2, "r-1").await.unwrap().is_empty());
    let left = tagged::volumes(&ec2, "r-1").await.unwrap();
    assert_eq!(left.len(), 1);
    let w = cloud.world.lock().unwrap();
    assert_eq!(w.volumes[&left[0].id].state, "available");
}

#[tokio::test]
async fn volumes_attach_detach_and_delete_as_ec2_allows() {
    let (cloud, launch, image) = world_with_image().await;
    let id = launch
        .run_instance(&launch_request(&image, "t-1"))
        .await
        .unwrap();
    let snapshot = cloud.world.lock().unwrap().images[&image].snapshot_ids[1].clone();
    let v = launch
        .create_volume(&VolumeRequest {
            snapshot_id: snapshot,
            availability_zone: format!("{REGION}b"),
            volume_type: "io2".into(),
            size_gib: Some(60),
            iops: Some(5000),
            throughput: None,
            kms_key_id: Some("alias/data".into()),
            tags: Tags::new(),
            client_token: "v".into(),
        })
        .await
        .unwrap();
    launch.attach_volume(&v, &id, "/dev/sdg").await.unwrap();
    let busy = launch.delete_volume(&v).await.unwrap_err();
    assert_eq!(busy.kind, ErrorKind::Conflict);
    let twice = launch.attach_volume(&v, &id, "/dev/sdh").await.unwrap_err();
    assert_eq!(twice.kind, ErrorKind::Conflict);
    {
        let w = cloud.world.lock().unwrap();
        assert!(w.shapes[&id].disks.iter().any(|d| d.device == "/dev/sdg"));
        let d = &w.disks[&v];
        assert!(d.encrypted && d.kms_key_id.as_deref() == Some("alias/data"));
    }
    launch.detach_volume(&v, &id).await.unwrap();
    launch.delete_volume(&v).await.unwrap();
    launch.delete_volume(&v).await.unwrap();
    let gone = launch.attach_volume(&v, &id, "/dev/sdg").await.unwrap_err();
    assert_eq!(gone.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn injected_failures_name_the_call() {
    let (cloud, launch, image) = world_with_image().await;
    cloud
        .world
        .lock()
        .unwrap()
        .failing
        .insert("RunInstances".into(), ErrorKind::Throttled);
    let err = launch
        .run_instance(&launch_request(&image, "t-1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Throttled);
    assert_eq!(err.action, "ec2:RunInstances");
    assert!(cloud.world.lock().unwrap().launches.is_empty());
}

fn db_snapshot(cloud: &FakeCloud, kind: DbSnapshotKind, id: &str, source: &str) {
    cloud.world.lock().unwrap().db_snapshots.insert(
        id.into(),
        FakeDbSnapshot {
            kind,
            region: REGION.into(),
            snapshot: DbSnapshot {
                id: id.into(),
                source_id: source.into(),
                status: "available".into(),
                created: None,
                tags: Tags::new(),
                arn: format!("arn:aws:rds:{REGION}:{FAKE_ACCOUNT_ID}:snapshot:{id}"),
                encryption: Encryption::default(),
            },
            tags: Tags::new(),
        },
    );
}

fn restore_request(kind: DbSnapshotKind, identifier: &str, snapshot: &str) -> DbRestoreRequest {
    DbRestoreRequest {
        kind,
        identifier: identifier.into(),
        snapshot: snapshot.into(),
        class: Some("db.t3.small".into()),
        engine: None,
        subnet_group: None,
        parameter_group: None,
        port: None,
        multi_az: false,
        security_groups: vec![],
        tags: tags(&[(RESTORE_TAG, "r-1")]),
    }
}

#[tokio::test]
async fn a_restored_database_is_creating_then_available_and_restored_once() {
    let cloud = FakeCloud::new(10);
    {
        let mut w = cloud.world.lock().unwrap();
        w.add_database(
            REGION,
            DbShape {
                identifier: "orders".into(),
                class: "db.t3.micro".into(),
                engine: "postgres".into(),
                ..DbShape::default()
            },
        );
        w.db_creating = 2;
    }
    db_snapshot(&cloud, DbSnapshotKind::Instance, "orders-1", "orders");
    let dbs = cloud.databases(&account(), REGION).await.unwrap();
    let shapes = dbs
        .shapes_page(DbSnapshotKind::Instance, &[], None)
        .await
        .unwrap();
    assert_eq!(shapes.items.len(), 1);
    // By ARN, as a shared snapshot is named.
    let arn = format!("arn:aws:rds:{REGION}:{FAKE_ACCOUNT_ID}:snapshot:orders-1");
    let req = restore_request(DbSnapshotKind::Instance, "orders-drill", &arn);
    dbs.restore(&req).await.unwrap();
    let again = dbs.restore(&req).await.unwrap_err();
    assert_eq!(again.kind, ErrorKind::Conflict);
    assert_eq!(again.code.as_deref(), Some("DBInstanceAlreadyExists"));
    let look = || dbs.status(DbSnapshotKind::Instance, "orders-drill");
    let first = look().await.unwrap().unwrap();
    assert_eq!(
        (first.status.as_str(), first.endpoint.is_none()),
        ("creating", true)
    );
    let second = look().await.unwrap().unwrap();
    assert_eq!(second.status, "available");
    assert!(second.endpoint.is_some());
    assert_eq!(second.tags, tags(&[(RESTORE_TAG, "r-1")]));
    let w = cloud.world.lock().unwrap();
    let db = &w.databases[&(DbSnapshotKind::Instance, "orders-drill".to_string())];
    assert_eq!(db.shape.engine, "postgres", "the snapshot's engine");
    assert_eq!(db.shape.class, "db.t3.small");
}

#[tokio::test]
async fn a_cluster_needs_its_engine_and_is_deleted_after_its_instances() {
    let cloud = FakeCloud::new(10);
    db_snapshot(&cloud, DbSnapshotKind::Cluster, "ledger-1", "ledger");
    let dbs = cloud.databases(&account(), REGION).await.unwrap();
    let mut req = restore_request(DbSnapshotKind::Cluster, "ledger-drill", "ledger-1");
    let err = dbs.restore(&req).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    req.engine = Some("aurora-postgresql".into());
    dbs.restore(&req).await.unwrap();
    let none = dbs
        .add_cluster_instance(
            "nope",
            "x-1",
            "db.r6g.large",
            "aurora-postgresql",
            &Tags::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(none.kind, ErrorKind::NotFound);
    dbs.add_cluster_instance(
        "ledger-drill",
        "ledger-drill-1",
        "db.r6g.large",
        "aurora-postgresql",
        &Tags::new(),
    )
    .await
    .unwrap();
    let shape = &dbs
        .shapes_page(DbSnapshotKind::Cluster, &["ledger-drill".into()], None)
        .await
        .unwrap()
        .items[0];
    assert_eq!(
        shape.members,
        vec![("ledger-drill-1".to_string(), "db.r6g.large".to_string())]
    );
    let busy = dbs
        .delete(DbSnapshotKind::Cluster, "ledger-drill")
        .await
        .unwrap_err();
    assert_eq!(busy.kind, ErrorKind::Conflict);
    dbs.delete(DbSnapshotKind::Instance, "ledger-drill-1")
        .await
        .unwrap();
    dbs.delete(DbSnapshotKind::Cluster, "ledger-drill")
        .await
        .unwrap();
    dbs.delete(DbSnapshotKind::Cluster, "ledger-drill")
        .await
        .unwrap();
    assert!(dbs
        .status(DbSnapshotKind::Cluster, "ledger-drill")
        .await
        .unwrap()
        .is_none());
}
