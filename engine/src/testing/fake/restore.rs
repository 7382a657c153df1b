//! The fake's restore calls ([`Launch`], [`Databases`]) on the same
//! [`World`]: instance shapes and disks by id, DB instances and clusters by
//! kind and identifier. Calls are counted under their AWS action names
//! (`DescribeInstances`, `RunInstances`, `RestoreDBInstanceFromDBSnapshot`,
//! ...) and fail on demand through [`World::failing`] like the others.

use async_trait::async_trait;

use super::*;
use crate::cloud::restore::{
    Databases, DbRestoreRequest, DbShape, DbStatus, Disk, ImageRegistration, InstanceShape, Launch,
    LaunchRequest, VolumeRequest,
};

/// A DB instance or Aurora cluster in the fake's world.
#[derive(Debug, Clone)]
pub struct FakeDatabase {
    pub region: String,
    pub shape: DbShape,
    /// `creating`, `available`, ...
    pub status: String,
    pub endpoint: Option<String>,
    /// Status looks left before a `creating` one is `available`.
    pub creating_left: u32,
}

fn in_region(zone: &str, region: &str) -> bool {
    zone.starts_with(region)
}

impl FakeEc2 {
    fn todo(&self, action: &str) -> CloudError {
        self.error(
            ErrorKind::Invalid,
            action,
            "",
            "NotImplemented",
            "not implemented yet",
        )
    }
}

#[async_trait]
impl Launch for FakeEc2 {
    async fn shapes_page(
        &self,
        ids: &[String],
        token: Option<String>,
    ) -> CloudResult<Page<(String, InstanceShape)>> {
        let w = self.enter("DescribeInstances", None)?;
        self.filter_size("DescribeInstances", ids.len())?;
        let all = w
            .shapes
            .iter()
            .filter(|(id, s)| {
                in_region(&s.availability_zone, &self.region)
                    && (ids.is_empty() || ids.contains(id))
            })
            .map(|(id, s)| {
                // DescribeInstances knows only the device, the volume and
                // DeleteOnTermination of each disk.
                let disks = s
                    .disks
                    .iter()
                    .map(|d| Disk {
                        volume_id: d.volume_id.clone(),
                        device: d.device.clone(),
                        delete_on_termination: d.delete_on_termination,
                        ..Disk::default()
                    })
                    .collect();
                (id.clone(), InstanceShape { disks, ..s.clone() })
            })
            .collect();
        Ok(self.page("DescribeInstances", all, token))
    }

    async fn disks_page(&self, ids: &[String], token: Option<String>) -> CloudResult<Page<Disk>> {
        let w = self.enter("DescribeVolumes", None)?;
        self.filter_size("DescribeVolumes", ids.len())?;
        let all = w
            .disks
            .values()
            .filter(|d| {
                in_region(&d.availability_zone, &self.region)
                    && (ids.is_empty() || ids.contains(&d.volume_id))
            })
            .cloned()
            .collect();
        Ok(self.page("DescribeVolumes", all, token))
    }

    async fn subnet_zone(&self, _subnet_id: &str) -> CloudResult<Option<String>> {
        Err(self.todo("ec2:DescribeSubnets"))
    }

    async fn register_image(&self, _req: &ImageRegistration) -> CloudResult<String> {
        Err(self.todo("ec2:RegisterImage"))
    }

    async fn run_instance(&self, _req: &LaunchRequest) -> CloudResult<String> {
        Err(self.todo("ec2:RunInstances"))
    }

    async fn create_volume(&self, _req: &VolumeRequest) -> CloudResult<String> {
        Err(self.todo("ec2:CreateVolume"))
    }

    async fn attach_volume(
        &self,
        _volume_id: &str,
        _instance_id: &str,
        _device: &str,
    ) -> CloudResult<()> {
        Err(self.todo("ec2:AttachVolume"))
    }

    async fn detach_volume(&self, _volume_id: &str, _instance_id: &str) -> CloudResult<()> {
        Err(self.todo("ec2:DetachVolume"))
    }

    async fn terminate_instance(&self, _instance_id: &str) -> CloudResult<()> {
        Err(self.todo("ec2:TerminateInstances"))
    }

    async fn delete_volume(&self, _volume_id: &str) -> CloudResult<()> {
        Err(self.todo("ec2:DeleteVolume"))
    }

    async fn restored_instances(&self, _restore_id: &str) -> CloudResult<Vec<(String, Tags)>> {
        Err(self.todo("ec2:DescribeInstances"))
    }

    async fn restored_volumes(&self, _restore_id: &str) -> CloudResult<Vec<(String, Tags)>> {
        Err(self.todo("ec2:DescribeVolumes"))
    }
}

#[async_trait]
impl Databases for FakeEc2 {
    async fn shapes_page(
        &self,
        kind: DbSnapshotKind,
        ids: &[String],
        token: Option<String>,
    ) -> CloudResult<Page<DbShape>> {
        let action = match kind {
            DbSnapshotKind::Instance => "DescribeDBInstances",
            DbSnapshotKind::Cluster => "DescribeDBClusters",
        };
        let w = self.enter(action, None)?;
        self.filter_size(action, ids.len())?;
        let all = w
            .databases
            .iter()
            .filter(|((k, id), d)| {
                *k == kind && d.region == self.region && (ids.is_empty() || ids.contains(id))
            })
            .map(|(_, d)| d.shape.clone())
            .collect();
        Ok(self.page(action, all, token))
    }

    async fn restore(&self, _req: &DbRestoreRequest) -> CloudResult<()> {
        Err(self.todo("rds:RestoreDBInstanceFromDBSnapshot"))
    }

    async fn add_cluster_instance(
        &self,
        _cluster: &str,
        _identifier: &str,
        _class: &str,
        _engine: &str,
        _tags: &Tags,
    ) -> CloudResult<()> {
        Err(self.todo("rds:CreateDBInstance"))
    }

    async fn status(
        &self,
        _kind: DbSnapshotKind,
        _identifier: &str,
    ) -> CloudResult<Option<DbStatus>> {
        Err(self.todo("rds:DescribeDBInstances"))
    }

    async fn delete(&self, _kind: DbSnapshotKind, _identifier: &str) -> CloudResult<()> {
        Err(self.todo("rds:DeleteDBInstance"))
    }
}
