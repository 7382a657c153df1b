//! The DR ports on the real SDK (`lifeboat_providers::AwsCloud`) against
//! the emulator: cross-region copies of snapshots, AMIs and DB (cluster)
//! snapshots, with their tags and encryption; shares with another account;
//! KMS aliases. Each test reads the result back with its own SDK clients.
//!
//! `AwsCloud` takes its endpoint and credentials from the environment, which
//! a process shares: the tests hold [`ENV`] from the moment they point the
//! environment at their emulator until they are done, so they run one at a
//! time.
//!
//! Where the emulator departs from AWS the assertion accepts both answers
//! and says why (see also the provider comments):
//! - a snapshot of an encrypted volume reports no `KmsKeyId`;
//! - an encrypted copy reports the key as it was asked for (the alias),
//!   AWS reports the key's ARN;
//! - CopyImage drops its TagSpecifications (the provider tags with
//!   CreateTags as well) and gives the copy one fresh snapshot.

mod support;

use std::sync::{Arc, Mutex, MutexGuard};

use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ec2::types::SnapshotAttributeName;
use lifeboat_engine::cloud::{
    Cloud, DbCopyRequest, DbSnapshot, DbSnapshotKind, DescribedSnapshot, Ec2, ErrorKind,
    ImageCopyRequest, ImageQuery, ImageRequest, Kms, Rds, SnapshotCopyRequest, SnapshotQuery, Tags,
};
use lifeboat_providers::AwsCloud;
use lifeboat_schema::{Account, AccountKind};
use support::{Emulator, ACCESS_KEY_ID, ACCOUNT_ID, SECRET_ACCESS_KEY};

const SOURCE: &str = "us-east-1";
const DEST: &str = "us-west-2";
/// The account copies are shared with.
const DR_ACCOUNT: &str = "222222222222";
const ALIAS: &str = "alias/lifeboat-test";

/// Held by a test while the environment points at its emulator.
static ENV: Mutex<()> = Mutex::new(());

/// One test's emulator, `AwsCloud` and SDK clients.
struct Dr {
    rt: tokio::runtime::Runtime,
    cloud: AwsCloud,
    account: Account,
    endpoint: String,
    // Dropped last: the emulator outlives every client.
    _emulator: Emulator,
    _env: MutexGuard<'static, ()>,
}

impl Dr {
    fn start() -> Dr {
        // A failed test poisons the lock; the environment is reset anyway.
        let env = ENV.lock().unwrap_or_else(|e| e.into_inner());
        let emulator = Emulator::start();
        let nowhere = std::env::temp_dir().join("lifeboat-dr-no-aws-config");
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
            regions: vec![SOURCE.to_owned(), DEST.to_owned()],
            profile: None,
            assume_role: None,
            allow_delete: false,
            account_id: None,
            manage_role: None,
            secured: None,
            tag_scan: None,
            location: Default::default(),
        };
        Dr {
            rt,
            // One attempt: the emulator answers what it lacks with a 500.
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

    fn ec2(&self, region: &str) -> Arc<dyn Ec2> {
        self.block(self.cloud.ec2(&self.account, region))
            .expect("an EC2 client")
    }

    fn rds(&self, region: &str) -> Arc<dyn Rds> {
        self.block(self.cloud.rds(&self.account, region))
            .expect("an RDS client")
    }

    fn kms(&self, region: &str) -> Arc<dyn Kms> {
        self.block(self.cloud.kms(&self.account, region))
            .expect("a KMS client")
    }

    fn credentials() -> Credentials {
        Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY, None, None, "lifeboat-dr")
    }

    /// The test's own EC2 client in `region`.
    fn ec2_sdk(&self, region: &str) -> aws_sdk_ec2::Client {
        let conf = aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Self::credentials())
            .build();
        aws_sdk_ec2::Client::from_conf(conf)
    }

    fn rds_sdk(&self, region: &str) -> aws_sdk_rds::Client {
        let conf = aws_sdk_rds::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_sdk_rds::config::Region::new(region.to_owned()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Self::credentials())
            .build();
        aws_sdk_rds::Client::from_conf(conf)
    }

    fn kms_sdk(&self, region: &str) -> aws_sdk_kms::Client {
        let conf = aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new(region.to_owned()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Self::credentials())
            .build();
        aws_sdk_kms::Client::from_conf(conf)
    }

    /// A KMS key in `region` with `alias`; returns (key id, key ARN).
    fn key(&self, region: &str, alias: &str) -> (String, String) {
        let kms = self.kms_sdk(region);
        let key = self
            .block(kms.create_key().description("lifeboat test").send())
            .expect("CreateKey");
        let meta = key.key_metadata().expect("key metadata");
        let id = meta.key_id().to_owned();
        self.block(
            kms.create_alias()
                .alias_name(alias)
                .target_key_id(&id)
                .send(),
        )
        .expect("CreateAlias");
        (id, meta.arn().unwrap_or_default().to_owned())
    }

    /// A 1 GiB volume in the source region (encrypted with `key` when
    /// given), snapshotted; returns the snapshot id.
    fn source_snapshot(&self, key: Option<&str>) -> String {
        let ec2 = self.ec2_sdk(SOURCE);
        let volume = self
            .block(
                ec2.create_volume()
                    .availability_zone(format!("{SOURCE}a"))
                    .size(1)
                    .set_encrypted(key.map(|_| true))
                    .set_kms_key_id(key.map(str::to_owned))
                    .send(),
            )
            .expect("CreateVolume");
        let snapshot = self
            .block(
                ec2.create_snapshot()
                    .volume_id(volume.volume_id().expect("a volume id"))
                    .description("source")
                    .send(),
            )
            .expect("CreateSnapshot");
        snapshot.snapshot_id().expect("a snapshot id").to_owned()
    }

    /// What the provider's DescribeSnapshots says of `ids` in `region`.
    fn described(&self, region: &str, ids: &[String]) -> Vec<DescribedSnapshot> {
        let q = SnapshotQuery {
            ids: ids.to_vec(),
            ..Default::default()
        };
        self.block(self.ec2(region).described_snapshots_page(&q, None))
            .expect("DescribeSnapshots")
            .items
    }
}

fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn copy_tags() -> Tags {
    tags(&[("lifeboat:policy", "dr"), ("lifeboat:copy-of", "source")])
}

#[test]
fn a_snapshot_copied_to_another_region_keeps_its_tags() {
    let dr = Dr::start();
    let source = dr.source_snapshot(None);
    let req = SnapshotCopyRequest {
        source_region: SOURCE.to_owned(),
        source_id: source.clone(),
        description: "lifeboat copy".to_owned(),
        tags: copy_tags(),
        kms_key_id: None,
        encrypt: false,
    };
    let copy = dr
        .block(dr.ec2(DEST).copy_snapshot(&req))
        .expect("CopySnapshot");
    assert_ne!(copy, source);

    // The provider finds it in the destination by its tags, at once.
    let q = SnapshotQuery {
        tags: vec![("lifeboat:policy".to_owned(), vec!["dr".to_owned()])],
        ..Default::default()
    };
    let found = dr
        .block(dr.ec2(DEST).described_snapshots_page(&q, None))
        .expect("DescribeSnapshots")
        .items;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].snapshot.id, copy);
    assert_eq!(found[0].snapshot.region, DEST);
    assert_eq!(found[0].snapshot.tags, copy_tags());
    assert_eq!(found[0].description, "lifeboat copy");
    assert!(!found[0].encryption.encrypted, "{found:?}");
    // And only there: the source region has no tagged snapshot.
    let in_source = dr
        .block(dr.ec2(SOURCE).described_snapshots_page(&q, None))
        .expect("DescribeSnapshots")
        .items;
    assert!(in_source.is_empty(), "{in_source:?}");
}

#[test]
fn a_missing_source_snapshot_names_the_call_region_and_snapshot() {
    let dr = Dr::start();
    let req = SnapshotCopyRequest {
        source_region: SOURCE.to_owned(),
        source_id: "snap-0123456789abcdef0".to_owned(),
        description: "lifeboat copy".to_owned(),
        tags: copy_tags(),
        kms_key_id: None,
        encrypt: false,
    };
    let err = dr
        .block(dr.ec2(DEST).copy_snapshot(&req))
        .expect_err("nothing to copy");
    assert_eq!(err.action, "ec2:CopySnapshot");
    assert_eq!(err.region, DEST);
    assert_eq!(err.account, "prod");
    assert_eq!(err.resource.as_deref(), Some("snap-0123456789abcdef0"));
    assert_eq!(err.kind, ErrorKind::NotFound, "{err:?}");
}

/// The emulator implements no EBS Snapshot Lock: LockSnapshot must come
/// back as an error that names the account, region, snapshot and action
/// (what the alert of a failed lock says), never a panic. Should the
/// emulator learn the call, the lock it reports is checked instead.
#[test]
fn a_lock_call_the_emulator_lacks_names_the_account_region_snapshot_and_action() {
    let dr = Dr::start();
    let snapshot = dr.source_snapshot(None);
    let req = lifeboat_engine::cloud::SnapshotLockRequest {
        snapshot_id: snapshot.clone(),
        mode: lifeboat_schema::LockMode::Governance,
        until: lifeboat_engine::cloud::LockUntil::Days(1),
        cool_off_hours: None,
    };
    match dr.block(dr.ec2(SOURCE).lock_snapshot(&req)) {
        Err(err) => {
            assert_eq!(err.action, "ec2:LockSnapshot", "{err:?}");
            assert_eq!(err.account, "prod");
            assert_eq!(err.region, SOURCE);
            assert_eq!(err.resource.as_deref(), Some(snapshot.as_str()));
            let text = err.to_string();
            for word in ["ec2:LockSnapshot", "prod", SOURCE, snapshot.as_str()] {
                assert!(text.contains(word), "{word} not in {text}");
            }
        }
        Ok(lock) => assert_eq!(lock.snapshot_id, snapshot),
    }
}

#[test]
fn an_encrypted_snapshot_is_copied_with_the_destination_key() {
    let dr = Dr::start();
    let (source_key, source_arn) = dr.key(SOURCE, ALIAS);
    let (dest_key, dest_arn) = dr.key(DEST, ALIAS);
    let source = dr.source_snapshot(Some(&source_key));

    let described = dr.described(SOURCE, std::slice::from_ref(&source));
    assert_eq!(described.len(), 1, "{described:?}");
    let enc = &described[0].encryption;
    assert!(enc.encrypted, "{described:?}");
    // AWS reports the volume's key; the emulator reports none.
    if let Some(key) = &enc.kms_key_id {
        assert!(key == &source_key || key == &source_arn, "{described:?}");
    }

    let req = SnapshotCopyRequest {
        source_region: SOURCE.to_owned(),
        source_id: source,
        description: "lifeboat copy".to_owned(),
        tags: copy_tags(),
        kms_key_id: Some(ALIAS.to_owned()),
        encrypt: true,
    };
    let copy = dr
        .block(dr.ec2(DEST).copy_snapshot(&req))
        .expect("CopySnapshot");
    let described = dr.described(DEST, std::slice::from_ref(&copy));
    assert_eq!(described.len(), 1, "{described:?}");
    let enc = &described[0].encryption;
    assert!(enc.encrypted, "{described:?}");
    // AWS reports the destination key's ARN; the emulator the alias asked for.
    let key = enc.kms_key_id.as_deref().expect("the copy's key");
    assert!(
        [ALIAS, dest_key.as_str(), dest_arn.as_str()].contains(&key),
        "{key} is not the destination key"
    );
    assert_eq!(described[0].snapshot.tags, copy_tags());
}

/// An instance in the source region and an AMI of it made by the provider.
fn source_image(dr: &Dr) -> String {
    let ec2 = dr.ec2_sdk(SOURCE);
    let run = dr
        .block(
            ec2.run_instances()
                .image_id("ami-12345678")
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                .min_count(1)
                .max_count(1)
                .send(),
        )
        .expect("RunInstances");
    let instance = run.instances()[0].instance_id().expect("an instance id");
    let req = ImageRequest {
        instance_id: instance.to_owned(),
        name: "web-source".to_owned(),
        description: "source".to_owned(),
        reboot: false,
        tags: tags(&[("lifeboat:policy", "source")]),
    };
    dr.block(dr.ec2(SOURCE).create_image(&req))
        .expect("CreateImage")
}

#[test]
fn an_image_copied_to_another_region_is_tagged_with_its_snapshots_there() {
    let dr = Dr::start();
    let source = source_image(&dr);
    let req = ImageCopyRequest {
        source_region: SOURCE.to_owned(),
        source_id: source.clone(),
        name: "web-copy".to_owned(),
        description: "lifeboat copy".to_owned(),
        tags: copy_tags(),
        kms_key_id: None,
        encrypt: false,
    };
    let copy = dr.block(dr.ec2(DEST).copy_image(&req)).expect("CopyImage");
    assert_ne!(copy, source);

    let q = ImageQuery {
        ids: vec![copy.clone()],
        tags: Vec::new(),
    };
    let images = dr
        .block(dr.ec2(DEST).images_page(&q, None))
        .expect("DescribeImages")
        .items;
    assert_eq!(images.len(), 1, "{images:?}");
    let image = &images[0];
    assert_eq!(image.region, DEST);
    assert_eq!(image.name, "web-copy");
    assert_eq!(image.description, "lifeboat copy");
    assert_eq!(image.tags, copy_tags());
    assert!(!image.snapshot_ids.is_empty(), "{image:?}");

    // The copy's snapshots are in the destination, for the engine to tag.
    let snapshots = dr.described(DEST, &image.snapshot_ids);
    let mut found: Vec<_> = snapshots.iter().map(|s| s.snapshot.id.clone()).collect();
    found.sort();
    let mut want = image.snapshot_ids.clone();
    want.sort();
    assert_eq!(found, want);
}

fn snapshot_shared_with(dr: &Dr, snapshot_id: &str) -> Vec<String> {
    let out = dr
        .block(
            dr.ec2_sdk(SOURCE)
                .describe_snapshot_attribute()
                .snapshot_id(snapshot_id)
                .attribute(SnapshotAttributeName::CreateVolumePermission)
                .send(),
        )
        .expect("DescribeSnapshotAttribute");
    out.create_volume_permissions()
        .iter()
        .filter_map(|p| p.user_id().map(str::to_owned))
        .collect()
}

fn image_shared_with(dr: &Dr, image_id: &str) -> Vec<String> {
    let out = dr
        .block(
            dr.ec2_sdk(SOURCE)
                .describe_image_attribute()
                .image_id(image_id)
                .attribute(aws_sdk_ec2::types::ImageAttributeName::LaunchPermission)
                .send(),
        )
        .expect("DescribeImageAttribute");
    out.launch_permissions()
        .iter()
        .filter_map(|p| p.user_id().map(str::to_owned))
        .collect()
}

#[test]
fn snapshots_and_images_are_shared_with_an_account_and_unshared() {
    let dr = Dr::start();
    let ec2 = dr.ec2(SOURCE);
    let snapshot = dr.source_snapshot(None);
    let image = source_image(&dr);

    dr.block(ec2.share_snapshot(&snapshot, DR_ACCOUNT, true))
        .expect("share the snapshot");
    assert_eq!(snapshot_shared_with(&dr, &snapshot), [DR_ACCOUNT]);
    dr.block(ec2.share_image(&image, DR_ACCOUNT, true))
        .expect("share the image");
    assert_eq!(image_shared_with(&dr, &image), [DR_ACCOUNT]);

    dr.block(ec2.share_snapshot(&snapshot, DR_ACCOUNT, false))
        .expect("unshare the snapshot");
    assert!(snapshot_shared_with(&dr, &snapshot).is_empty());
    dr.block(ec2.share_image(&image, DR_ACCOUNT, false))
        .expect("unshare the image");
    assert!(image_shared_with(&dr, &image).is_empty());

    let err = dr
        .block(ec2.share_snapshot("snap-0123456789abcdef0", DR_ACCOUNT, true))
        .expect_err("no such snapshot");
    assert_eq!(err.action, "ec2:ModifySnapshotAttribute");
    assert_eq!(err.kind, ErrorKind::NotFound, "{err:?}");
}

/// A DB instance and a cluster in the source region with one manual
/// snapshot each; returns the provider's view of both.
fn source_db_snapshots(dr: &Dr) -> (DbSnapshot, DbSnapshot) {
    let rds = dr.rds_sdk(SOURCE);
    dr.block(
        rds.create_db_instance()
            .db_instance_identifier("orders")
            .db_instance_class("db.t3.micro")
            .engine("postgres")
            .allocated_storage(20)
            .master_username("lifeboat")
            .master_user_password("lifeboat-test-pw")
            .send(),
    )
    .expect("CreateDBInstance");
    dr.block(
        rds.create_db_cluster()
            .db_cluster_identifier("ledger")
            .engine("aurora-postgresql")
            .master_username("lifeboat")
            .master_user_password("lifeboat-test-pw")
            .send(),
    )
    .expect("CreateDBCluster");
    let provider = dr.rds(SOURCE);
    let make = |kind, source: &str, id: &str| {
        let req = lifeboat_engine::cloud::DbSnapshotRequest {
            kind,
            source_id: source.to_owned(),
            snapshot_id: id.to_owned(),
            tags: tags(&[("lifeboat:policy", "source")]),
        };
        dr.block(provider.create_db_snapshot(&req))
            .expect("create a DB snapshot")
    };
    let instance = make(DbSnapshotKind::Instance, "orders", "orders-1");
    let cluster = make(DbSnapshotKind::Cluster, "ledger", "ledger-1");
    (instance, cluster)
}

fn db_snapshot(dr: &Dr, region: &str, kind: DbSnapshotKind, id: &str) -> DbSnapshot {
    let page = dr
        .block(
            dr.rds(region)
                .db_snapshots_page(kind, &[id.to_owned()], None),
        )
        .expect("describe DB snapshots");
    assert_eq!(page.items.len(), 1, "{:?}", page.items);
    page.items.into_iter().next().expect("one snapshot")
}

#[test]
fn db_and_cluster_snapshots_are_copied_to_another_region_with_tags() {
    let dr = Dr::start();
    let (instance, cluster) = source_db_snapshots(&dr);
    for s in [&instance, &cluster] {
        assert!(
            s.arn
                .starts_with(&format!("arn:aws:rds:{SOURCE}:{ACCOUNT_ID}:")),
            "{s:?}"
        );
        assert!(!s.encryption.encrypted, "{s:?}");
    }
    let described = db_snapshot(&dr, SOURCE, DbSnapshotKind::Instance, "orders-1");
    assert_eq!(described.arn, instance.arn);

    let dest = dr.rds(DEST);
    for (kind, source, target) in [
        (DbSnapshotKind::Instance, &instance, "orders-1-dr"),
        (DbSnapshotKind::Cluster, &cluster, "ledger-1-dr"),
    ] {
        let req = DbCopyRequest {
            kind,
            source_arn: source.arn.clone(),
            source_region: SOURCE.to_owned(),
            target_id: target.to_owned(),
            tags: copy_tags(),
            kms_key_id: None,
        };
        let copy = dr.block(dest.copy_db_snapshot(&req)).expect("copy");
        assert_eq!(copy.id, target, "{kind:?}");
        assert_eq!(
            copy.tags,
            copy_tags(),
            "{kind:?}: the source's tags stay behind"
        );
        assert!(
            copy.arn
                .starts_with(&format!("arn:aws:rds:{DEST}:{ACCOUNT_ID}:")),
            "{copy:?}"
        );
        let found = db_snapshot(&dr, DEST, kind, target);
        assert_eq!(found.arn, copy.arn);
        assert_eq!(found.tags, copy_tags());
        assert_eq!(found.source_id, source.source_id, "{kind:?}");
    }
}

#[test]
fn encrypted_db_snapshots_are_copied_with_the_destination_key() {
    let dr = Dr::start();
    let (_, source_arn) = dr.key(SOURCE, ALIAS);
    let (_, dest_arn) = dr.key(DEST, ALIAS);
    let rds = dr.rds_sdk(SOURCE);
    dr.block(
        rds.create_db_instance()
            .db_instance_identifier("vault")
            .db_instance_class("db.t3.micro")
            .engine("postgres")
            .allocated_storage(20)
            .master_username("lifeboat")
            .master_user_password("lifeboat-test-pw")
            .storage_encrypted(true)
            .kms_key_id(&source_arn)
            .send(),
    )
    .expect("CreateDBInstance");
    dr.block(
        rds.create_db_cluster()
            .db_cluster_identifier("safe")
            .engine("aurora-postgresql")
            .master_username("lifeboat")
            .master_user_password("lifeboat-test-pw")
            .storage_encrypted(true)
            .kms_key_id(&source_arn)
            .send(),
    )
    .expect("CreateDBCluster");
    let provider = dr.rds(SOURCE);
    let dest = dr.rds(DEST);
    for (kind, source, id) in [
        (DbSnapshotKind::Instance, "vault", "vault-1"),
        (DbSnapshotKind::Cluster, "safe", "safe-1"),
    ] {
        let req = lifeboat_engine::cloud::DbSnapshotRequest {
            kind,
            source_id: source.to_owned(),
            snapshot_id: id.to_owned(),
            tags: Tags::new(),
        };
        dr.block(provider.create_db_snapshot(&req))
            .expect("create a DB snapshot");
        // The describe call reports the source key (Encrypted for a DB
        // snapshot, StorageEncrypted for a cluster snapshot).
        let described = db_snapshot(&dr, SOURCE, kind, id);
        assert!(described.encryption.encrypted, "{described:?}");
        assert_eq!(described.encryption.kms_key_id, Some(source_arn.clone()));

        let req = DbCopyRequest {
            kind,
            source_arn: described.arn.clone(),
            source_region: SOURCE.to_owned(),
            target_id: format!("{id}-dr"),
            tags: copy_tags(),
            kms_key_id: Some(ALIAS.to_owned()),
        };
        let copy = dr.block(dest.copy_db_snapshot(&req)).expect("copy");
        assert!(copy.encryption.encrypted, "{copy:?}");
        assert_eq!(
            copy.encryption.kms_key_id,
            Some(dest_arn.clone()),
            "{kind:?}"
        );
        let found = db_snapshot(&dr, DEST, kind, &req.target_id);
        assert_eq!(found.encryption, copy.encryption);
    }
}

fn db_shared_with(dr: &Dr, kind: DbSnapshotKind, id: &str) -> Vec<String> {
    let rds = dr.rds_sdk(SOURCE);
    let attributes = match kind {
        DbSnapshotKind::Instance => dr
            .block(
                rds.describe_db_snapshot_attributes()
                    .db_snapshot_identifier(id)
                    .send(),
            )
            .expect("DescribeDBSnapshotAttributes")
            .db_snapshot_attributes_result()
            .map(|r| {
                r.db_snapshot_attributes()
                    .iter()
                    .filter(|a| a.attribute_name() == Some("restore"))
                    .flat_map(|a| a.attribute_values().to_vec())
                    .collect()
            }),
        DbSnapshotKind::Cluster => dr
            .block(
                rds.describe_db_cluster_snapshot_attributes()
                    .db_cluster_snapshot_identifier(id)
                    .send(),
            )
            .expect("DescribeDBClusterSnapshotAttributes")
            .db_cluster_snapshot_attributes_result()
            .map(|r| {
                r.db_cluster_snapshot_attributes()
                    .iter()
                    .filter(|a| a.attribute_name() == Some("restore"))
                    .flat_map(|a| a.attribute_values().to_vec())
                    .collect()
            }),
    };
    attributes.unwrap_or_default()
}

#[test]
fn db_snapshots_are_shared_unshared_and_tagged() {
    let dr = Dr::start();
    let (instance, cluster) = source_db_snapshots(&dr);
    let rds = dr.rds(SOURCE);
    for (kind, s) in [
        (DbSnapshotKind::Instance, &instance),
        (DbSnapshotKind::Cluster, &cluster),
    ] {
        dr.block(rds.share_db_snapshot(kind, &s.id, DR_ACCOUNT, true))
            .expect("share");
        assert_eq!(db_shared_with(&dr, kind, &s.id), [DR_ACCOUNT], "{kind:?}");
        dr.block(rds.share_db_snapshot(kind, &s.id, DR_ACCOUNT, false))
            .expect("unshare");
        assert!(db_shared_with(&dr, kind, &s.id).is_empty(), "{kind:?}");

        dr.block(rds.tag_db_snapshot(&s.arn, &tags(&[("lifeboat:shared", DR_ACCOUNT)])))
            .expect("AddTagsToResource");
        let found = db_snapshot(&dr, SOURCE, kind, &s.id);
        let want = tags(&[
            ("lifeboat:policy", "source"),
            ("lifeboat:shared", DR_ACCOUNT),
        ]);
        assert_eq!(found.tags, want, "{kind:?}");
    }

    let err = dr
        .block(rds.share_db_snapshot(DbSnapshotKind::Instance, "gone", DR_ACCOUNT, true))
        .expect_err("no such snapshot");
    assert_eq!(err.action, "rds:ModifyDBSnapshotAttribute");
    assert_eq!(err.resource.as_deref(), Some("gone"));
    assert_eq!(err.kind, ErrorKind::NotFound, "{err:?}");
}

#[test]
fn kms_aliases_are_listed_for_the_region_or_for_one_key() {
    let dr = Dr::start();
    let (key, arn) = dr.key(DEST, ALIAS);
    let (other, _) = dr.key(DEST, "alias/lifeboat-other");
    dr.key(SOURCE, "alias/lifeboat-source-only");
    let kms = dr.kms(DEST);

    let all = dr.block(kms.aliases_page(None, None)).expect("ListAliases");
    assert_eq!(all.next, None);
    assert_eq!(all.call.action, "kms:ListAliases");
    assert_eq!(all.call.region, DEST);
    let target = |name: &str| {
        all.items
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.target_key_id.clone())
    };
    assert_eq!(target(ALIAS), Some(Some(key.clone())), "{:?}", all.items);
    assert_eq!(target("alias/lifeboat-other"), Some(Some(other)));
    // The aliases of the region asked about, not of another.
    assert_eq!(target("alias/lifeboat-source-only"), None);

    for id in [&key, &arn] {
        let one = dr
            .block(kms.aliases_page(Some(id), None))
            .expect("ListAliases of a key");
        let names: Vec<_> = one.items.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, [ALIAS], "key given as {id}");
        assert_eq!(one.next, None);
    }
}
