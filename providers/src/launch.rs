//! [`Launch`] on the SDK for one account and region: what an instance and
//! its volumes were (the describes a backup records) and the calls that
//! bring them back. Implemented on [`AwsEc2`], so a restore shares the
//! (account, region) client a backup uses.

use async_trait::async_trait;
use lifeboat_engine::cloud::restore::{
    Disk, ImageRegistration, InstanceShape, Launch, LaunchRequest, VolumeRequest,
};
use lifeboat_engine::cloud::{CloudResult, ErrorKind, Page, Tags};

use crate::convert::{build_filters, sdk_filters, tags_from_sdk};
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

impl AwsEc2 {
    fn not_yet(&self, action: &str) -> lifeboat_engine::cloud::CloudError {
        self.ctx.error(
            ErrorKind::Invalid,
            action,
            None,
            None,
            "not implemented yet".to_owned(),
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

    async fn subnet_zone(&self, _subnet_id: &str) -> CloudResult<Option<String>> {
        Err(self.not_yet("ec2:DescribeSubnets"))
    }

    async fn register_image(&self, _req: &ImageRegistration) -> CloudResult<String> {
        Err(self.not_yet("ec2:RegisterImage"))
    }

    async fn run_instance(&self, _req: &LaunchRequest) -> CloudResult<String> {
        Err(self.not_yet("ec2:RunInstances"))
    }

    async fn create_volume(&self, _req: &VolumeRequest) -> CloudResult<String> {
        Err(self.not_yet("ec2:CreateVolume"))
    }

    async fn attach_volume(
        &self,
        _volume_id: &str,
        _instance_id: &str,
        _device: &str,
    ) -> CloudResult<()> {
        Err(self.not_yet("ec2:AttachVolume"))
    }

    async fn detach_volume(&self, _volume_id: &str, _instance_id: &str) -> CloudResult<()> {
        Err(self.not_yet("ec2:DetachVolume"))
    }

    async fn terminate_instance(&self, _instance_id: &str) -> CloudResult<()> {
        Err(self.not_yet("ec2:TerminateInstances"))
    }

    async fn delete_volume(&self, _volume_id: &str) -> CloudResult<()> {
        Err(self.not_yet("ec2:DeleteVolume"))
    }

    async fn restored_instances(&self, _restore_id: &str) -> CloudResult<Vec<(String, Tags)>> {
        Err(self.not_yet("ec2:DescribeInstances"))
    }

    async fn restored_volumes(&self, _restore_id: &str) -> CloudResult<Vec<(String, Tags)>> {
        Err(self.not_yet("ec2:DescribeVolumes"))
    }
}
