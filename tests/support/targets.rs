//! Fixtures for AMI and database targets: the test's own RDS client (DB
//! instances, Aurora clusters, their snapshots and tags) and AMI read-backs.

use std::collections::BTreeMap;

use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};

use super::{Aws, Emulator, ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};

/// An AMI as the emulator reports it.
#[derive(Debug, Clone)]
pub struct Ami {
    pub id: String,
    pub snapshot_ids: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

impl Aws {
    /// Tags resource `id` with `key` = `value` (CreateTags).
    pub fn tag(&self, id: &str, key: &str, value: &str) {
        let tag = aws_sdk_ec2::types::Tag::builder()
            .key(key)
            .value(value)
            .build();
        self.rt
            .block_on(self.ec2.create_tags().resources(id).tags(tag).send())
            .expect("CreateTags");
    }

    /// Removes tag `key` from resource `id` (DeleteTags).
    pub fn untag(&self, id: &str, key: &str) {
        let tag = aws_sdk_ec2::types::Tag::builder().key(key).build();
        self.rt
            .block_on(self.ec2.delete_tags().resources(id).tags(tag).send())
            .expect("DeleteTags");
    }

    /// The account's own AMIs carrying the tag key `lifeboat:policy`.
    pub fn lifeboat_images(&self) -> Vec<Ami> {
        self.images_with_tag_key("lifeboat:policy")
    }

    /// The account's snapshots carrying the tag key `key`.
    pub fn describe_tagged_key(&self, key: &str) -> Vec<super::Snapshot> {
        self.describe_snapshots(vec![aws_sdk_ec2::types::Filter::builder()
            .name("tag-key")
            .values(key)
            .build()])
    }

    /// The AWS accounts a snapshot is shared with (createVolumePermission).
    pub fn shared_with(&self, snapshot_id: &str) -> Vec<String> {
        let out = self
            .rt
            .block_on(
                self.ec2
                    .describe_snapshot_attribute()
                    .snapshot_id(snapshot_id)
                    .attribute(aws_sdk_ec2::types::SnapshotAttributeName::CreateVolumePermission)
                    .send(),
            )
            .expect("DescribeSnapshotAttribute");
        out.create_volume_permissions()
            .iter()
            .filter_map(|p| p.user_id().map(str::to_string))
            .collect()
    }

    /// The account's AMIs carrying the tag key `key`.
    pub fn images_with_tag_key(&self, key: &str) -> Vec<Ami> {
        let out = self
            .rt
            .block_on(
                self.ec2
                    .describe_images()
                    .owners("self")
                    .filters(
                        aws_sdk_ec2::types::Filter::builder()
                            .name("tag-key")
                            .values(key)
                            .build(),
                    )
                    .send(),
            )
            .expect("DescribeImages");
        out.images()
            .iter()
            .map(|i| Ami {
                id: i.image_id().unwrap_or_default().to_string(),
                snapshot_ids: i
                    .block_device_mappings()
                    .iter()
                    .filter_map(|m| m.ebs()?.snapshot_id().map(str::to_string))
                    .collect(),
                tags: i
                    .tags()
                    .iter()
                    .map(|t| {
                        (
                            t.key().unwrap_or_default().to_string(),
                            t.value().unwrap_or_default().to_string(),
                        )
                    })
                    .collect(),
            })
            .collect()
    }

    /// Deregisters an AMI, as someone outside Lifeboat would.
    pub fn deregister_image(&self, id: &str) {
        self.rt
            .block_on(self.ec2.deregister_image().image_id(id).send())
            .expect("DeregisterImage");
    }

    /// Deletes a snapshot, as someone outside Lifeboat would.
    pub fn delete_snapshot(&self, id: &str) {
        self.rt
            .block_on(self.ec2.delete_snapshot().snapshot_id(id).send())
            .expect("DeleteSnapshot");
    }

    /// An AMI of `instance_id` made by hand, tagged at creation; returns its id.
    pub fn create_image(
        &self,
        instance_id: &str,
        name: &str,
        description: &str,
        tags: &[(&str, &str)],
    ) -> String {
        use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
        let spec = tags.iter().fold(
            TagSpecification::builder().resource_type(ResourceType::Image),
            |b, (k, v)| b.tags(Tag::builder().key(*k).value(*v).build()),
        );
        let out = self
            .rt
            .block_on(
                self.ec2
                    .create_image()
                    .instance_id(instance_id)
                    .name(name)
                    .description(description)
                    .tag_specifications(spec.build())
                    .send(),
            )
            .expect("CreateImage in the emulator");
        out.image_id().expect("an image id").to_string()
    }

    /// Does the account still have the AMI `id`?
    pub fn image_exists(&self, id: &str) -> bool {
        let out = self
            .rt
            .block_on(
                self.ec2
                    .describe_images()
                    .owners("self")
                    .filters(
                        aws_sdk_ec2::types::Filter::builder()
                            .name("image-id")
                            .values(id)
                            .build(),
                    )
                    .send(),
            )
            .expect("DescribeImages");
        !out.images().is_empty()
    }

    /// The tags of one snapshot (empty when it does not exist).
    pub fn snapshot_tags(&self, id: &str) -> BTreeMap<String, String> {
        let out = self
            .rt
            .block_on(
                self.ec2
                    .describe_snapshots()
                    .filters(
                        aws_sdk_ec2::types::Filter::builder()
                            .name("snapshot-id")
                            .values(id)
                            .build(),
                    )
                    .send(),
            )
            .expect("DescribeSnapshots");
        out.snapshots()
            .iter()
            .flat_map(|s| s.tags())
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}

/// A DB (cluster) snapshot as the emulator reports it.
#[derive(Debug, Clone)]
pub struct DbSnap {
    pub id: String,
    pub source: String,
    pub tags: BTreeMap<String, String>,
}

/// The test's own RDS client (us-east-1), blocking on a private runtime.
pub struct Rds {
    pub(super) rt: tokio::runtime::Runtime,
    pub(super) rds: aws_sdk_rds::Client,
}

pub(super) fn tags(list: &[aws_sdk_rds::types::Tag]) -> BTreeMap<String, String> {
    list.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

impl Rds {
    pub fn new(emulator: &Emulator) -> Rds {
        Rds::in_region(emulator, REGION)
    }

    /// A client of `region`.
    pub fn in_region(emulator: &Emulator, region: &str) -> Rds {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let conf = aws_sdk_rds::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .endpoint_url(emulator.endpoint())
            .credentials_provider(Credentials::new(
                ACCESS_KEY_ID,
                SECRET_ACCESS_KEY,
                None,
                None,
                "lifeboat-tests",
            ))
            .build();
        Rds {
            rt,
            rds: aws_sdk_rds::Client::from_conf(conf),
        }
    }

    /// Deletes a DB snapshot, as someone outside Lifeboat would.
    pub fn delete_db_snapshot(&self, id: &str) {
        self.rt
            .block_on(
                self.rds
                    .delete_db_snapshot()
                    .db_snapshot_identifier(id)
                    .send(),
            )
            .expect("DeleteDBSnapshot");
    }

    /// A small PostgreSQL DB instance.
    pub fn create_instance(&self, id: &str) {
        self.rt
            .block_on(
                self.rds
                    .create_db_instance()
                    .db_instance_identifier(id)
                    .db_instance_class("db.t3.micro")
                    .engine("postgres")
                    .allocated_storage(20)
                    .master_username("lifeboat")
                    .master_user_password("lifeboat-test-pw")
                    .send(),
            )
            .expect("CreateDBInstance");
    }

    /// A small PostgreSQL DB instance with tags.
    pub fn create_tagged_instance(&self, id: &str, tags: &[(&str, &str)]) {
        let mut req = self
            .rds
            .create_db_instance()
            .db_instance_identifier(id)
            .db_instance_class("db.t3.micro")
            .engine("postgres")
            .allocated_storage(20)
            .master_username("lifeboat")
            .master_user_password("lifeboat-test-pw");
        for (k, v) in tags {
            req = req.tags(aws_sdk_rds::types::Tag::builder().key(*k).value(*v).build());
        }
        self.rt.block_on(req.send()).expect("CreateDBInstance");
    }

    /// Removes tag `key` from DB instance `id`.
    pub fn untag_instance(&self, id: &str, key: &str) {
        let out = self
            .rt
            .block_on(
                self.rds
                    .describe_db_instances()
                    .db_instance_identifier(id)
                    .send(),
            )
            .expect("DescribeDBInstances");
        let arn = out.db_instances()[0]
            .db_instance_arn()
            .expect("an ARN")
            .to_string();
        self.rt
            .block_on(
                self.rds
                    .remove_tags_from_resource()
                    .resource_name(arn)
                    .tag_keys(key)
                    .send(),
            )
            .expect("RemoveTagsFromResource");
    }

    /// An Aurora PostgreSQL cluster with tags.
    pub fn create_tagged_cluster(&self, id: &str, tags: &[(&str, &str)]) {
        let mut req = self
            .rds
            .create_db_cluster()
            .db_cluster_identifier(id)
            .engine("aurora-postgresql")
            .master_username("lifeboat")
            .master_user_password("lifeboat-test-pw");
        for (k, v) in tags {
            req = req.tags(aws_sdk_rds::types::Tag::builder().key(*k).value(*v).build());
        }
        self.rt.block_on(req.send()).expect("CreateDBCluster");
    }

    /// An Aurora PostgreSQL cluster.
    pub fn create_cluster(&self, id: &str) {
        self.rt
            .block_on(
                self.rds
                    .create_db_cluster()
                    .db_cluster_identifier(id)
                    .engine("aurora-postgresql")
                    .master_username("lifeboat")
                    .master_user_password("lifeboat-test-pw")
                    .send(),
            )
            .expect("CreateDBCluster");
    }

    /// Manual DB snapshots, with their tags.
    pub fn db_snapshots(&self) -> Vec<DbSnap> {
        let out = self
            .rt
            .block_on(
                self.rds
                    .describe_db_snapshots()
                    .snapshot_type("manual")
                    .send(),
            )
            .expect("DescribeDBSnapshots");
        out.db_snapshots()
            .iter()
            .map(|s| DbSnap {
                id: s.db_snapshot_identifier().unwrap_or_default().to_string(),
                source: s.db_instance_identifier().unwrap_or_default().to_string(),
                tags: tags(s.tag_list()),
            })
            .collect()
    }

    /// Manual DB cluster snapshots, with their tags.
    pub fn cluster_snapshots(&self) -> Vec<DbSnap> {
        let out = self
            .rt
            .block_on(
                self.rds
                    .describe_db_cluster_snapshots()
                    .snapshot_type("manual")
                    .send(),
            )
            .expect("DescribeDBClusterSnapshots");
        out.db_cluster_snapshots()
            .iter()
            .map(|s| DbSnap {
                id: s
                    .db_cluster_snapshot_identifier()
                    .unwrap_or_default()
                    .to_string(),
                source: s.db_cluster_identifier().unwrap_or_default().to_string(),
                tags: tags(s.tag_list()),
            })
            .collect()
    }
}
