//! [`Ec2`] on the SDK for one account and region: each method is one call.

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    InstanceSpecification, OperationType, ResourceType, SnapshotAttributeName, TagSpecification,
};
use aws_sdk_ec2::Client;
use lifeboat_engine::cloud::{
    AttachedVolume, CloudResult, DescribedSnapshot, Ec2, Encryption, ErrorKind, Image,
    ImageCopyRequest, ImageQuery, ImageRequest, ImageState, Instance, InstanceSnapshotRequest,
    LockUntil, Page, Query, Snapshot, SnapshotCopyRequest, SnapshotLock, SnapshotLockRequest,
    SnapshotQuery, Tags, Volume, VolumeSnapshotRequest,
};

use crate::convert::{
    build_filters, instance_state, sdk_filters, snapshot_state, tags_from_sdk, tags_to_sdk,
    time_from_sdk, time_from_text,
};
use crate::error::ErrorContext;

/// Page size asked for. EC2 accepts up to 1,000 for these three calls
/// (DescribeVolumes may answer with fewer); the fewer pages, the fewer calls
/// a plan makes.
pub(crate) const PAGE_SIZE: i32 = 1000;

pub(crate) struct AwsEc2 {
    pub(crate) client: Client,
    pub(crate) ctx: ErrorContext,
    /// The account's own id, for the `owner-id` snapshot filter.
    account_id: String,
}

impl AwsEc2 {
    pub(crate) fn new(client: Client, ctx: ErrorContext, account_id: String) -> Self {
        Self {
            client,
            ctx,
            account_id,
        }
    }

    pub(crate) fn region(&self) -> String {
        self.ctx.region.clone()
    }
}

/// Tags applied at creation: nothing is tagged in a second call, so a
/// snapshot is never seen without its `lifeboat:*` tags.
fn snapshot_tag_spec(tags: &Tags) -> Option<TagSpecification> {
    if tags.is_empty() {
        return None;
    }
    Some(
        TagSpecification::builder()
            .resource_type(ResourceType::Snapshot)
            .set_tags(Some(tags_to_sdk(tags)))
            .build(),
    )
}

/// The AMI's TagSpecifications: the image only. The engine tags the AMI's
/// snapshots with CreateTags once the AMI is available: a `snapshot`
/// TagSpecification on CreateImage is not implemented everywhere (checked:
/// the emulator fails the whole call with it, as not implemented), so the
/// snapshots of an AMI are found through the AMI, which is tagged and
/// marked at creation, until that follow-up has run.
fn image_tag_specs(tags: &Tags) -> Option<Vec<TagSpecification>> {
    if tags.is_empty() {
        return None;
    }
    Some(vec![TagSpecification::builder()
        .resource_type(ResourceType::Image)
        .set_tags(Some(tags_to_sdk(tags)))
        .build()])
}

/// An AMI's state by name: anything but `pending` and `available` is final
/// and failed (`failed`, `invalid`, `error`, `deregistered`, ...).
fn image_state(s: Option<&str>) -> ImageState {
    match s {
        Some("available") => ImageState::Available,
        Some("pending") | None => ImageState::Pending,
        Some(_) => ImageState::Failed,
    }
}

/// How a describe answer says an artifact is encrypted. The key is only
/// kept for an encrypted one: it means nothing otherwise.
fn encryption(encrypted: Option<bool>, kms_key_id: Option<&str>) -> Encryption {
    let encrypted = encrypted.unwrap_or(false);
    Encryption {
        encrypted,
        kms_key_id: kms_key_id
            .filter(|k| encrypted && !k.is_empty())
            .map(str::to_owned),
    }
}

/// `Encrypted` and `KmsKeyId` of a copy: nothing when no encryption is
/// asked for (an encrypted source is copied encrypted anyway, with the
/// destination's default key), the key only together with `Encrypted`
/// (EC2 refuses a `KmsKeyId` without it).
fn copy_encryption(encrypt: bool, kms_key_id: Option<&str>) -> (Option<bool>, Option<String>) {
    let encrypt = encrypt || kms_key_id.is_some();
    (
        encrypt.then_some(true),
        kms_key_id.filter(|_| encrypt).map(str::to_owned),
    )
}

/// Sharing adds the account to a permission, unsharing removes it.
fn operation(share: bool) -> OperationType {
    if share {
        OperationType::Add
    } else {
        OperationType::Remove
    }
}

/// An empty token from the service means "no more pages", like a missing one.
pub(crate) fn next_token(t: Option<&str>) -> Option<String> {
    t.filter(|t| !t.is_empty()).map(str::to_owned)
}

#[async_trait]
impl Ec2 for AwsEc2 {
    async fn instances_page(
        &self,
        q: &Query,
        token: Option<String>,
    ) -> CloudResult<Page<Instance>> {
        // Ids go through the `instance-id` filter, never `InstanceIds`:
        // DescribeInstances refuses `MaxResults` together with `InstanceIds`,
        // and fails the whole call when one of them does not exist.
        let filters = sdk_filters(build_filters(None, "instance-id", &q.ids, &q.tags));
        let out = self
            .client
            .describe_instances()
            .set_filters(Some(filters).filter(|f| !f.is_empty()))
            .max_results(PAGE_SIZE)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| self.ctx.sdk("ec2:DescribeInstances", None, &e))?;

        let mut items = Vec::new();
        for reservation in out.reservations() {
            for i in reservation.instances() {
                let Some(id) = i.instance_id() else { continue };
                let root = i.root_device_name();
                let volumes = i
                    .block_device_mappings()
                    .iter()
                    .filter_map(|m| {
                        let volume_id = m.ebs()?.volume_id()?;
                        let device = m.device_name().unwrap_or_default();
                        Some(AttachedVolume {
                            volume_id: volume_id.to_owned(),
                            device: device.to_owned(),
                            is_root: root.is_some_and(|r| r == device),
                        })
                    })
                    .collect();
                let state = i.state();
                items.push(Instance {
                    id: id.to_owned(),
                    region: self.region(),
                    state: instance_state(
                        state.and_then(|s| s.name()).map(|n| n.as_str()),
                        state.and_then(|s| s.code()),
                    ),
                    tags: tags_from_sdk(i.tags()),
                    volumes,
                });
            }
        }
        Ok(Page {
            items,
            next: next_token(out.next_token()),
            call: self.ctx.call("ec2:DescribeInstances"),
        })
    }

    async fn volumes_page(&self, q: &Query, token: Option<String>) -> CloudResult<Page<Volume>> {
        let filters = sdk_filters(build_filters(None, "volume-id", &q.ids, &q.tags));
        let out = self
            .client
            .describe_volumes()
            .set_filters(Some(filters).filter(|f| !f.is_empty()))
            .max_results(PAGE_SIZE)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| self.ctx.sdk("ec2:DescribeVolumes", None, &e))?;
        let items = out
            .volumes()
            .iter()
            .filter_map(|v| {
                Some(Volume {
                    id: v.volume_id()?.to_owned(),
                    region: self.region(),
                    state: v.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                    tags: tags_from_sdk(v.tags()),
                })
            })
            .collect();
        Ok(Page {
            items,
            next: next_token(out.next_token()),
            call: self.ctx.call("ec2:DescribeVolumes"),
        })
    }

    async fn snapshots_page(
        &self,
        q: &SnapshotQuery,
        token: Option<String>,
    ) -> CloudResult<Page<Snapshot>> {
        let page = self.described_snapshots_page(q, token).await?;
        Ok(Page {
            items: page.items.into_iter().map(|d| d.snapshot).collect(),
            next: page.next,
            call: page.call,
        })
    }

    async fn described_snapshots_page(
        &self,
        q: &SnapshotQuery,
        token: Option<String>,
    ) -> CloudResult<Page<DescribedSnapshot>> {
        // Always `owner-id`: without it DescribeSnapshots also lists every
        // public snapshot in the region.
        let call = if q.unfinished_only {
            // Named ids: an unknown one is an error, never a silent absence.
            // AWS takes no page size with named ids.
            let mut specs = build_filters(Some(&self.account_id), "snapshot-id", &[], &q.tags);
            let states = ["pending", "error", "recoverable", "recovering"];
            specs.push(("status".to_owned(), states.map(str::to_owned).to_vec()));
            self.client
                .describe_snapshots()
                .set_snapshot_ids(Some(q.ids.clone()))
                .set_filters(Some(sdk_filters(specs)))
        } else {
            let specs = build_filters(Some(&self.account_id), "snapshot-id", &q.ids, &q.tags);
            self.client
                .describe_snapshots()
                .set_filters(Some(sdk_filters(specs)))
                .max_results(PAGE_SIZE)
                .set_next_token(token)
        };
        let out = call
            .send()
            .await
            .map_err(|e| self.ctx.sdk("ec2:DescribeSnapshots", None, &e))?;
        let items = out
            .snapshots()
            .iter()
            .filter_map(|s| {
                Some(DescribedSnapshot {
                    snapshot: Snapshot {
                        id: s.snapshot_id()?.to_owned(),
                        volume_id: s.volume_id().unwrap_or_default().to_owned(),
                        region: self.region(),
                        state: snapshot_state(s.state().map(|st| st.as_str())),
                        started: time_from_sdk(s.start_time()),
                        tags: tags_from_sdk(s.tags()),
                    },
                    description: s.description().unwrap_or_default().to_owned(),
                    encryption: encryption(s.encrypted(), s.kms_key_id()),
                })
            })
            .collect();
        Ok(Page {
            items,
            next: next_token(out.next_token()),
            call: self.ctx.call("ec2:DescribeSnapshots"),
        })
    }

    async fn create_instance_snapshots(
        &self,
        req: &InstanceSnapshotRequest,
    ) -> CloudResult<Vec<Snapshot>> {
        let spec = InstanceSpecification::builder()
            .instance_id(&req.instance_id)
            .exclude_boot_volume(req.exclude_boot_volume)
            .set_exclude_data_volume_ids(
                Some(req.exclude_volume_ids.clone()).filter(|v| !v.is_empty()),
            )
            .build();
        // CopyTagsFromSource stays unset: the snapshots carry exactly the
        // tags the engine asked for, not whatever the volumes happen to have.
        let out = self
            .client
            .create_snapshots()
            .instance_specification(spec)
            .description(&req.description)
            .set_tag_specifications(snapshot_tag_spec(&req.tags).map(|t| vec![t]))
            .send()
            .await
            .map_err(|e| {
                self.ctx
                    .sdk("ec2:CreateSnapshots", Some(&req.instance_id), &e)
            })?;
        Ok(out
            .snapshots()
            .iter()
            .filter_map(|s| {
                Some(Snapshot {
                    id: s.snapshot_id()?.to_owned(),
                    volume_id: s.volume_id().unwrap_or_default().to_owned(),
                    region: self.region(),
                    state: snapshot_state(s.state().map(|st| st.as_str())),
                    started: time_from_sdk(s.start_time()),
                    tags: tags_from_sdk(s.tags()),
                })
            })
            .collect())
    }

    async fn create_volume_snapshot(&self, req: &VolumeSnapshotRequest) -> CloudResult<Snapshot> {
        let action = "ec2:CreateSnapshot";
        let out = self
            .client
            .create_snapshot()
            .volume_id(&req.volume_id)
            .description(&req.description)
            .set_tag_specifications(snapshot_tag_spec(&req.tags).map(|t| vec![t]))
            .send()
            .await
            .map_err(|e| self.ctx.sdk(action, Some(&req.volume_id), &e))?;
        let Some(id) = out.snapshot_id() else {
            return Err(self.ctx.error(
                ErrorKind::Other,
                action,
                Some(&req.volume_id),
                None,
                "the answer carried no snapshot id".to_owned(),
            ));
        };
        Ok(Snapshot {
            id: id.to_owned(),
            volume_id: out.volume_id().unwrap_or(&req.volume_id).to_owned(),
            region: self.region(),
            state: snapshot_state(out.state().map(|st| st.as_str())),
            started: time_from_sdk(out.start_time()),
            tags: tags_from_sdk(out.tags()),
        })
    }

    async fn create_image(&self, req: &ImageRequest) -> CloudResult<String> {
        let action = "ec2:CreateImage";
        let out = self
            .client
            .create_image()
            .instance_id(&req.instance_id)
            .name(&req.name)
            .description(&req.description)
            .no_reboot(!req.reboot)
            .set_tag_specifications(image_tag_specs(&req.tags))
            .send()
            .await
            .map_err(|e| self.ctx.sdk(action, Some(&req.instance_id), &e))?;
        out.image_id().map(str::to_owned).ok_or_else(|| {
            self.ctx.error(
                ErrorKind::Other,
                action,
                Some(&req.instance_id),
                None,
                "the answer carried no image id".to_owned(),
            )
        })
    }

    async fn images_page(&self, q: &ImageQuery, token: Option<String>) -> CloudResult<Page<Image>> {
        // Ids through the `image-id` filter: `ImageIds` fails the whole call
        // when one of them is gone.
        let filters = sdk_filters(build_filters(None, "image-id", &q.ids, &q.tags));
        let out = self
            .client
            .describe_images()
            .owners("self")
            // A disabled or deprecated AMI still exists: left out, it would
            // read as deregistered and the catalog would forget it.
            .include_disabled(true)
            .include_deprecated(true)
            .set_filters(Some(filters).filter(|f| !f.is_empty()))
            .max_results(PAGE_SIZE)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| self.ctx.sdk("ec2:DescribeImages", None, &e))?;
        let items = out
            .images()
            .iter()
            .filter_map(|i| {
                Some(Image {
                    id: i.image_id()?.to_owned(),
                    region: self.region(),
                    state: image_state(i.state().map(|s| s.as_str())),
                    snapshot_ids: i
                        .block_device_mappings()
                        .iter()
                        .filter_map(|m| m.ebs()?.snapshot_id().map(str::to_owned))
                        .collect(),
                    tags: tags_from_sdk(i.tags()),
                    name: i.name().unwrap_or_default().to_owned(),
                    description: i.description().unwrap_or_default().to_owned(),
                    created: i.creation_date().and_then(time_from_text),
                })
            })
            .collect();
        Ok(Page {
            items,
            next: next_token(out.next_token()),
            call: self.ctx.call("ec2:DescribeImages"),
        })
    }

    async fn create_tags(&self, resource_ids: &[String], tags: &Tags) -> CloudResult<()> {
        self.client
            .create_tags()
            .set_resources(Some(resource_ids.to_vec()))
            .set_tags(Some(tags_to_sdk(tags)))
            .send()
            .await
            .map_err(|e| {
                self.ctx.sdk(
                    "ec2:CreateTags",
                    resource_ids.first().map(String::as_str),
                    &e,
                )
            })?;
        Ok(())
    }

    async fn deregister_image(&self, image_id: &str) -> CloudResult<()> {
        match self
            .client
            .deregister_image()
            .image_id(image_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = self.ctx.sdk("ec2:DeregisterImage", Some(image_id), &e);
                // Already deregistered is the goal reached.
                if err.kind == ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> CloudResult<()> {
        match self
            .client
            .delete_snapshot()
            .snapshot_id(snapshot_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = self.ctx.sdk("ec2:DeleteSnapshot", Some(snapshot_id), &e);
                // Already gone is the goal reached: retention may run twice.
                if err.kind == ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn copy_snapshot(&self, req: &SnapshotCopyRequest) -> CloudResult<String> {
        let action = "ec2:CopySnapshot";
        let (encrypted, kms_key_id) = copy_encryption(req.encrypt, req.kms_key_id.as_deref());
        // Called in the destination with SourceRegion. No PresignedUrl:
        // EC2 no longer needs one for an encrypted source (the SDK does not
        // build it either), and DestinationRegion is this client's region.
        let out = self
            .client
            .copy_snapshot()
            .source_region(&req.source_region)
            .source_snapshot_id(&req.source_id)
            .description(&req.description)
            .set_tag_specifications(snapshot_tag_spec(&req.tags).map(|t| vec![t]))
            .set_encrypted(encrypted)
            .set_kms_key_id(kms_key_id)
            .send()
            .await
            .map_err(|e| self.ctx.sdk(action, Some(&req.source_id), &e))?;
        out.snapshot_id().map(str::to_owned).ok_or_else(|| {
            self.ctx.error(
                ErrorKind::Other,
                action,
                Some(&req.source_id),
                None,
                "the answer carried no snapshot id".to_owned(),
            )
        })
    }

    async fn copy_image(&self, req: &ImageCopyRequest) -> CloudResult<String> {
        let action = "ec2:CopyImage";
        let (encrypted, kms_key_id) = copy_encryption(req.encrypt, req.kms_key_id.as_deref());
        // The tags go twice: as TagSpecifications, so that in AWS the copy
        // is never seen untagged (an interrupted run still finds it by its
        // tags), and with CreateTags once the call answers, because the
        // emulator accepts CopyImage's TagSpecifications and silently drops
        // them (checked). CopyImageTags stays unset: the copy carries
        // exactly the engine's tags, not the source's.
        let out = self
            .client
            .copy_image()
            .source_region(&req.source_region)
            .source_image_id(&req.source_id)
            .name(&req.name)
            .description(&req.description)
            .set_tag_specifications(image_tag_specs(&req.tags))
            .set_encrypted(encrypted)
            .set_kms_key_id(kms_key_id)
            .send()
            .await
            .map_err(|e| self.ctx.sdk(action, Some(&req.source_id), &e))?;
        let Some(id) = out.image_id() else {
            return Err(self.ctx.error(
                ErrorKind::Other,
                action,
                Some(&req.source_id),
                None,
                "the answer carried no image id".to_owned(),
            ));
        };
        // The copy exists from here on: a failed tag call must not read as
        // a failed copy (the engine would copy again). The engine tags the
        // copied image and its snapshots once it is available.
        if !req.tags.is_empty() {
            let _ = self.create_tags(&[id.to_owned()], &req.tags).await;
        }
        Ok(id.to_owned())
    }

    async fn share_snapshot(
        &self,
        snapshot_id: &str,
        account_id: &str,
        share: bool,
    ) -> CloudResult<()> {
        // OperationType with UserIds rather than the CreateVolumePermission
        // structure: AWS takes either, the emulator reads only this one.
        self.client
            .modify_snapshot_attribute()
            .snapshot_id(snapshot_id)
            .attribute(SnapshotAttributeName::CreateVolumePermission)
            .operation_type(operation(share))
            .user_ids(account_id)
            .send()
            .await
            .map_err(|e| {
                self.ctx
                    .sdk("ec2:ModifySnapshotAttribute", Some(snapshot_id), &e)
            })?;
        Ok(())
    }

    async fn share_image(&self, image_id: &str, account_id: &str, share: bool) -> CloudResult<()> {
        // As for snapshots: OperationType with UserIds, which AWS and the
        // emulator both read (the LaunchPermission structure is the other
        // form AWS takes).
        self.client
            .modify_image_attribute()
            .image_id(image_id)
            .attribute("launchPermission")
            .operation_type(operation(share))
            .user_ids(account_id)
            .send()
            .await
            .map_err(|e| self.ctx.sdk("ec2:ModifyImageAttribute", Some(image_id), &e))?;
        Ok(())
    }

    async fn lock_snapshot(&self, req: &SnapshotLockRequest) -> CloudResult<SnapshotLock> {
        let action = "ec2:LockSnapshot";
        let (days, at) = match req.until {
            LockUntil::Days(d) => (Some(d as i32), None),
            LockUntil::At(t) => (
                None,
                Some(aws_sdk_ec2::primitives::DateTime::from_secs(t.timestamp())),
            ),
        };
        let out = self
            .client
            .lock_snapshot()
            .snapshot_id(&req.snapshot_id)
            .lock_mode(aws_sdk_ec2::types::LockMode::from(req.mode.as_str()))
            .set_lock_duration(days)
            .set_expiration_date(at)
            .set_cool_off_period(req.cool_off_hours.map(|h| h as i32))
            .send()
            .await
            .map_err(|e| self.ctx.sdk(action, Some(&req.snapshot_id), &e))?;
        Ok(SnapshotLock {
            snapshot_id: req.snapshot_id.clone(),
            state: out
                .lock_state()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            expires_on: time_from_sdk(out.lock_expires_on()),
        })
    }

    async fn locked_snapshots_page(
        &self,
        snapshot_ids: &[String],
        token: Option<String>,
    ) -> CloudResult<Page<SnapshotLock>> {
        let action = "ec2:DescribeLockedSnapshots";
        let out = self
            .client
            .describe_locked_snapshots()
            .set_snapshot_ids(Some(snapshot_ids.to_vec()))
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| self.ctx.sdk(action, None, &e))?;
        let items = out
            .snapshots()
            .iter()
            .filter_map(|l| {
                Some(SnapshotLock {
                    snapshot_id: l.snapshot_id()?.to_owned(),
                    state: l
                        .lock_state()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                    expires_on: time_from_sdk(l.lock_expires_on()),
                })
            })
            .collect();
        Ok(Page {
            items,
            next: next_token(out.next_token()),
            call: self.ctx.call(action),
        })
    }
}
