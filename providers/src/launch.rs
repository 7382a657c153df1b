//! [`Launch`] on the SDK for one account and region: what an instance and
//! its volumes were (the describes a backup records) and the calls that
//! bring them back. Implemented on [`AwsEc2`], so a restore shares the
//! (account, region) client a backup uses.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    ArchitectureValues, BlockDeviceMapping, EbsBlockDevice, HibernationOptionsRequest,
    IamInstanceProfileSpecification, InstanceType, Placement, ResourceType, TagSpecification,
    VolumeType,
};
use lifeboat_engine::cloud::restore::{
    Disk, ImageRegistration, InstanceHealth, InstanceShape, Launch, LaunchRequest, Mapping,
    VolumeRequest,
};
use lifeboat_engine::cloud::{
    collect_pages, gone_is_done, CloudError, CloudResult, Ec2, ErrorKind, Page, Tags,
};

use crate::convert::{build_filters, sdk_filters, tags_from_sdk, tags_to_sdk};
use crate::ec2::{next_token, AwsEc2, PAGE_SIZE};

/// Disks root first, then by device name: the order a restore maps them in.
fn order_disks(disks: &mut [Disk], root: &str) {
    disks.sort_by(|a, b| {
        (a.device != root, a.device.as_str()).cmp(&(b.device != root, b.device.as_str()))
    });
}

/// An instance's shape from DescribeInstances: its disks carry the device,
/// the volume id and the mapping's DeleteOnTermination only.
fn instance_shape(i: &aws_sdk_ec2::types::Instance) -> InstanceShape {
    let root = i.root_device_name().unwrap_or_default().to_owned();
    let mut disks: Vec<Disk> = i
        .block_device_mappings()
        .iter()
        .filter_map(|m| {
            let ebs = m.ebs()?;
            Some(Disk {
                volume_id: ebs.volume_id()?.to_owned(),
                device: m.device_name().unwrap_or_default().to_owned(),
                delete_on_termination: ebs.delete_on_termination().unwrap_or(false),
                ..Disk::default()
            })
        })
        .collect();
    order_disks(&mut disks, &root);
    InstanceShape {
        instance_type: i
            .instance_type()
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default(),
        architecture: i
            .architecture()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default(),
        root_device: root,
        availability_zone: i
            .placement()
            .and_then(|p| p.availability_zone())
            .unwrap_or_default()
            .to_owned(),
        subnet_id: i.subnet_id().filter(|s| !s.is_empty()).map(str::to_owned),
        vpc_id: i.vpc_id().filter(|s| !s.is_empty()).map(str::to_owned),
        security_groups: i
            .security_groups()
            .iter()
            .filter_map(|g| g.group_id().map(str::to_owned))
            .collect(),
        key_name: i.key_name().filter(|s| !s.is_empty()).map(str::to_owned),
        iam_profile: i
            .iam_instance_profile()
            .and_then(|p| p.arn())
            .map(str::to_owned),
        private_ip: i.private_ip_address().map(str::to_owned),
        image_id: i.image_id().map(str::to_owned),
        ebs_optimized: i.ebs_optimized().unwrap_or(false),
        ena: i.ena_support().unwrap_or(false),
        hibernation: i
            .hibernation_options()
            .and_then(|h| h.configured())
            .unwrap_or(false),
        tags: tags_from_sdk(i.tags()),
        disks,
    }
}

/// A volume as DescribeVolumes reports it, with its first attachment's
/// device and DeleteOnTermination (a non-multi-attach volume has one).
fn disk(v: &aws_sdk_ec2::types::Volume) -> Option<Disk> {
    let attachment = v.attachments().first();
    let encrypted = v.encrypted().unwrap_or(false);
    Some(Disk {
        volume_id: v.volume_id()?.to_owned(),
        device: attachment
            .and_then(|a| a.device())
            .unwrap_or_default()
            .to_owned(),
        availability_zone: v.availability_zone().unwrap_or_default().to_owned(),
        size_gib: v.size().unwrap_or(0),
        volume_type: v
            .volume_type()
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default(),
        iops: v.iops(),
        throughput: v.throughput(),
        encrypted,
        kms_key_id: v
            .kms_key_id()
            .filter(|k| encrypted && !k.is_empty())
            .map(str::to_owned),
        delete_on_termination: attachment
            .and_then(|a| a.delete_on_termination())
            .unwrap_or(false),
        tags: tags_from_sdk(v.tags()),
    })
}

/// One block device: RegisterImage's names its snapshot; RunInstances'
/// overrides leave it out (the image's stays).
fn block_device(m: &Mapping, with_snapshot: bool) -> BlockDeviceMapping {
    let ebs = EbsBlockDevice::builder()
        .set_snapshot_id(with_snapshot.then(|| m.snapshot_id.clone()))
        .set_volume_size(m.size_gib)
        .set_volume_type(m.volume_type.as_deref().map(VolumeType::from))
        .set_iops(m.iops)
        .set_throughput(m.throughput)
        .delete_on_termination(m.delete_on_termination)
        .build();
    BlockDeviceMapping::builder()
        .device_name(&m.device)
        .ebs(ebs)
        .build()
}

/// Tags on one kind of resource at creation, none when there are none.
fn tag_spec(kind: ResourceType, tags: &Tags) -> Option<TagSpecification> {
    (!tags.is_empty()).then(|| {
        TagSpecification::builder()
            .resource_type(kind)
            .set_tags(Some(tags_to_sdk(tags)))
            .build()
    })
}

/// Standard base64 with padding: RunInstances takes user data encoded, the
/// engine hands it over as the text the instance is to read.
fn base64(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(text.len().div_ceil(3) * 4);
    for chunk in text.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl AwsEc2 {
    fn missing(&self, action: &str, resource: &str, what: &str) -> CloudError {
        self.ctx.error(
            ErrorKind::Other,
            action,
            Some(resource),
            None,
            format!("the answer carried no {what}"),
        )
    }
}

#[async_trait]
impl Launch for AwsEc2 {
    async fn shapes_page(
        &self,
        ids: &[String],
        token: Option<String>,
    ) -> CloudResult<Page<(String, InstanceShape)>> {
        // The `instance-id` filter, never `InstanceIds`: a terminated and
        // forgotten instance is absent instead of failing the whole page.
        let filters = sdk_filters(build_filters(None, "instance-id", ids, &[]));
        let out = self
            .client
            .describe_instances()
            .set_filters(Some(filters).filter(|f| !f.is_empty()))
            .max_results(PAGE_SIZE)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| self.ctx.sdk("ec2:DescribeInstances", None, &e))?;
        let items = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| Some((i.instance_id()?.to_owned(), instance_shape(i))))
            .collect();
        Ok(Page {
            items,
            next: next_token(out.next_token()),
            call: self.ctx.call("ec2:DescribeInstances"),
        })
    }

    async fn disks_page(&self, ids: &[String], token: Option<String>) -> CloudResult<Page<Disk>> {
        let filters = sdk_filters(build_filters(None, "volume-id", ids, &[]));
        let out = self
            .client
            .describe_volumes()
            .set_filters(Some(filters).filter(|f| !f.is_empty()))
            .max_results(PAGE_SIZE)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| self.ctx.sdk("ec2:DescribeVolumes", None, &e))?;
        Ok(Page {
            items: out.volumes().iter().filter_map(disk).collect(),
            next: next_token(out.next_token()),
            call: self.ctx.call("ec2:DescribeVolumes"),
        })
    }

    async fn subnet_zones(&self, ids: &[String]) -> CloudResult<BTreeMap<String, String>> {
        // The filter: a missing subnet is absent from the answer, not an
        // error failing the others.
        let filters = sdk_filters(build_filters(None, "subnet-id", ids, &[]));
        let action = "ec2:DescribeSubnets";
        collect_pages(|token| {
            let filters = filters.clone();
            async move {
                let out = self
                    .client
                    .describe_subnets()
                    .set_filters(Some(filters))
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| self.ctx.sdk(action, ids.first().map(String::as_str), &e))?;
                let items: Vec<(String, String)> = out
                    .subnets()
                    .iter()
                    .filter_map(|s| {
                        Some((s.subnet_id()?.to_owned(), s.availability_zone()?.to_owned()))
                    })
                    .collect();
                Ok(Page {
                    items,
                    next: next_token(out.next_token()),
                    call: self.ctx.call(action),
                })
            }
        })
        .await
        .map(|found| {
            found
                .into_iter()
                .filter(|(id, _)| ids.contains(id))
                .collect()
        })
    }

    async fn instance_status(&self, ids: &[String]) -> CloudResult<Vec<InstanceHealth>> {
        let action = "ec2:DescribeInstanceStatus";
        // `InstanceIds`, which refuses `MaxResults`: the answer for at
        // most 100 ids is small, and pages only when AWS decides to.
        let summary = |s: Option<&aws_sdk_ec2::types::InstanceStatusSummary>| {
            s.and_then(|s| s.status())
                .map(|s| s.as_str().to_owned())
                .unwrap_or_else(|| "not-applicable".to_owned())
        };
        collect_pages(|token| async move {
            let out = self
                .client
                .describe_instance_status()
                .set_instance_ids(Some(ids.to_vec()))
                .include_all_instances(true)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| self.ctx.sdk(action, ids.first().map(String::as_str), &e))?;
            let items = out
                .instance_statuses()
                .iter()
                .filter_map(|s| {
                    Some(InstanceHealth {
                        id: s.instance_id()?.to_owned(),
                        instance: summary(s.instance_status()),
                        system: summary(s.system_status()),
                    })
                })
                .collect();
            Ok(Page {
                items,
                next: next_token(out.next_token()),
                call: self.ctx.call(action),
            })
        })
        .await
    }

    async fn register_image(&self, req: &ImageRegistration) -> CloudResult<String> {
        let action = "ec2:RegisterImage";
        let mappings = req.mappings.iter().map(|m| block_device(m, true)).collect();
        let out = self
            .client
            .register_image()
            .name(&req.name)
            .description(&req.description)
            .architecture(ArchitectureValues::from(req.architecture.as_str()))
            .root_device_name(&req.root_device)
            .ena_support(req.ena)
            .virtualization_type("hvm")
            .set_block_device_mappings(Some(mappings))
            .set_tag_specifications(tag_spec(ResourceType::Image, &req.tags).map(|t| vec![t]))
            .send()
            .await
            .map_err(|e| self.ctx.sdk(action, Some(&req.name), &e))?;
        let id = out
            .image_id()
            .ok_or_else(|| self.missing(action, &req.name, "image id"))?;
        // Tagged again with CreateTags, as CopyImage is: the emulator takes
        // RegisterImage's TagSpecifications and drops them (checked). The
        // image exists from here on, so a failed tag call does not fail it.
        if !req.tags.is_empty() {
            let _ = self.create_tags(&[id.to_owned()], &req.tags).await;
        }
        Ok(id.to_owned())
    }

    async fn run_instance(&self, req: &LaunchRequest) -> CloudResult<String> {
        let action = "ec2:RunInstances";
        // A subnet decides the zone; only without one is the zone placed.
        let placement = req
            .availability_zone
            .as_ref()
            .filter(|_| req.subnet_id.is_none())
            .map(|z| Placement::builder().availability_zone(z).build());
        let tags: Vec<TagSpecification> = [ResourceType::Instance, ResourceType::Volume]
            .into_iter()
            .filter_map(|r| tag_spec(r, &req.tags))
            .collect();
        // Overrides of the image's mappings: the snapshot stays the image's
        // (EC2 takes a device's size, type and DeleteOnTermination here, not
        // another snapshot). The emulator creates volumes only for the
        // mappings passed here, empty ones: it ignores the image's.
        let mappings: Vec<BlockDeviceMapping> = req
            .mappings
            .iter()
            .map(|m| block_device(m, false))
            .collect();
        let out = self
            .client
            .run_instances()
            .image_id(&req.image_id)
            .instance_type(InstanceType::from(req.instance_type.as_str()))
            .min_count(1)
            .max_count(1)
            // The emulator ignores it (checked: a second call launches a
            // second instance); EC2 answers with the first instance.
            .client_token(&req.client_token)
            .set_subnet_id(req.subnet_id.clone())
            .set_placement(placement)
            .set_security_group_ids(Some(req.security_groups.clone()).filter(|g| !g.is_empty()))
            .set_key_name(req.key_name.clone())
            .set_iam_instance_profile(
                req.iam_profile
                    .as_ref()
                    .map(|arn| IamInstanceProfileSpecification::builder().arn(arn).build()),
            )
            .set_private_ip_address(req.private_ip.clone())
            // Only when asked: `false` is the default, and some types
            // refuse either value explicitly.
            .set_ebs_optimized(req.ebs_optimized.then_some(true))
            .set_hibernation_options(req.hibernation.then(|| {
                HibernationOptionsRequest::builder()
                    .configured(true)
                    .build()
            }))
            .set_user_data(req.user_data.as_deref().map(base64))
            .set_block_device_mappings(Some(mappings).filter(|m| !m.is_empty()))
            .set_tag_specifications(Some(tags).filter(|t| !t.is_empty()))
            .send()
            .await
            .map_err(|e| self.ctx.sdk(action, Some(&req.image_id), &e))?;
        out.instances()
            .first()
            .and_then(|i| i.instance_id())
            .map(str::to_owned)
            .ok_or_else(|| self.missing(action, &req.image_id, "instance"))
    }

    async fn create_volume(&self, req: &VolumeRequest) -> CloudResult<String> {
        let action = "ec2:CreateVolume";
        let out = self
            .client
            .create_volume()
            .snapshot_id(&req.snapshot_id)
            .availability_zone(&req.availability_zone)
            .volume_type(VolumeType::from(req.volume_type.as_str()))
            .set_size(req.size_gib)
            .set_iops(req.iops)
            .set_throughput(req.throughput)
            // EC2 refuses a key without `Encrypted`.
            .set_encrypted(req.kms_key_id.as_ref().map(|_| true))
            .set_kms_key_id(req.kms_key_id.clone())
            .set_tag_specifications(tag_spec(ResourceType::Volume, &req.tags).map(|t| vec![t]))
            .client_token(&req.client_token)
            .send()
            .await
            .map_err(|e| self.ctx.sdk(action, Some(&req.snapshot_id), &e))?;
        out.volume_id()
            .map(str::to_owned)
            .ok_or_else(|| self.missing(action, &req.snapshot_id, "volume id"))
    }

    async fn attach_volume(
        &self,
        volume_id: &str,
        instance_id: &str,
        device: &str,
    ) -> CloudResult<()> {
        self.client
            .attach_volume()
            .volume_id(volume_id)
            .instance_id(instance_id)
            .device(device)
            .send()
            .await
            .map_err(|e| self.ctx.sdk("ec2:AttachVolume", Some(volume_id), &e))?;
        Ok(())
    }

    async fn detach_volume(&self, volume_id: &str, instance_id: &str) -> CloudResult<()> {
        self.client
            .detach_volume()
            .volume_id(volume_id)
            .instance_id(instance_id)
            .send()
            .await
            .map_err(|e| self.ctx.sdk("ec2:DetachVolume", Some(volume_id), &e))?;
        Ok(())
    }

    async fn terminate_instance(&self, instance_id: &str) -> CloudResult<()> {
        gone_is_done(
            self.client
                .terminate_instances()
                .instance_ids(instance_id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    self.ctx
                        .sdk("ec2:TerminateInstances", Some(instance_id), &e)
                }),
        )
    }

    async fn delete_volume(&self, volume_id: &str) -> CloudResult<()> {
        gone_is_done(
            self.client
                .delete_volume()
                .volume_id(volume_id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.ctx.sdk("ec2:DeleteVolume", Some(volume_id), &e)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_is_encoded_as_ec2_expects() {
        assert_eq!(base64(""), "");
        assert_eq!(base64("f"), "Zg==");
        assert_eq!(base64("fo"), "Zm8=");
        assert_eq!(base64("foo"), "Zm9v");
        assert_eq!(base64("#!/bin/sh\necho hi\n"), "IyEvYmluL3NoCmVjaG8gaGkK");
    }

    #[test]
    fn an_image_maps_its_snapshots_and_a_launch_only_overrides_them() {
        let m = Mapping {
            device: "/dev/sdf".into(),
            snapshot_id: "snap-1".into(),
            size_gib: Some(20),
            volume_type: Some("io2".into()),
            iops: Some(4000),
            throughput: None,
            delete_on_termination: false,
        };
        let image = block_device(&m, true);
        assert_eq!(image.device_name(), Some("/dev/sdf"));
        let ebs = image.ebs().expect("an EBS mapping");
        assert_eq!(ebs.snapshot_id(), Some("snap-1"));
        assert_eq!(ebs.volume_size(), Some(20));
        assert_eq!(ebs.volume_type(), Some(&VolumeType::Io2));
        assert_eq!((ebs.iops(), ebs.throughput()), (Some(4000), None));
        assert_eq!(ebs.delete_on_termination(), Some(false));
        let launch = block_device(&m, false);
        let ebs = launch.ebs().expect("an EBS mapping");
        assert_eq!(ebs.snapshot_id(), None, "the image's snapshot stays");
        assert_eq!(ebs.volume_size(), Some(20));
    }

    #[test]
    fn disks_go_root_first_then_by_device() {
        let d = |dev: &str| Disk {
            device: dev.into(),
            ..Disk::default()
        };
        let mut disks = vec![d("/dev/sdf"), d("/dev/sdb"), d("/dev/xvda")];
        order_disks(&mut disks, "/dev/xvda");
        let order: Vec<&str> = disks.iter().map(|d| d.device.as_str()).collect();
        assert_eq!(order, ["/dev/xvda", "/dev/sdb", "/dev/sdf"]);
    }
}
