//! The fake's restore calls ([`Launch`], [`Databases`]) on the same
//! [`World`]: instance shapes and disks by id, DB instances and clusters by
//! kind and identifier. Calls are counted under their AWS action names
//! (`DescribeInstances`, `RunInstances`, `RestoreDBInstanceFromDBSnapshot`,
//! ...) and fail on demand through [`World::failing`] like the others.
//!
//! What it adds to the emulator: instances that stay `pending` and
//! databases that stay `creating` for a while, RunInstances' and
//! CreateVolume's client tokens honoured, and injected failures.

use async_trait::async_trait;

use super::*;
use crate::cloud::restore::{
    Databases, DbRestoreRequest, DbShape, DbStatus, Disk, ImageRegistration, InstanceHealth,
    InstanceShape, Launch, LaunchRequest, Mapping, VolumeRequest, STATUS_CHUNK,
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

fn endpoint(identifier: &str, region: &str) -> String {
    format!("{identifier}.fake.{region}.rds.amazonaws.com")
}

impl World {
    /// An instance with its full shape: the instance, each disk as a
    /// volume attached at its device, and the shape itself (what a backup
    /// records). A disk without a zone is in the instance's.
    pub fn add_shaped_instance(&mut self, id: &str, region: &str, shape: InstanceShape) {
        let mut disks = shape.disks.clone();
        for d in &mut disks {
            if d.availability_zone.is_empty() {
                d.availability_zone = shape.availability_zone.clone();
            }
            self.volumes.insert(
                d.volume_id.clone(),
                Volume {
                    id: d.volume_id.clone(),
                    region: region.to_string(),
                    state: "in-use".into(),
                    tags: d.tags.clone(),
                },
            );
            self.disks.insert(d.volume_id.clone(), d.clone());
        }
        self.instances.insert(
            id.to_string(),
            Instance {
                id: id.to_string(),
                region: region.to_string(),
                state: InstanceState::Running,
                tags: shape.tags.clone(),
                volumes: attached(&disks, &shape.root_device),
            },
        );
        self.shapes
            .insert(id.to_string(), InstanceShape { disks, ..shape });
    }

    /// A DB instance or cluster, available, with its shape (its kind is
    /// the shape's, an instance when it has none).
    pub fn add_database(&mut self, region: &str, shape: DbShape) {
        let kind = shape.kind.unwrap_or(DbSnapshotKind::Instance);
        self.databases.insert(
            (kind, shape.identifier.clone()),
            FakeDatabase {
                region: region.to_string(),
                endpoint: Some(endpoint(&shape.identifier, region)),
                shape: DbShape {
                    kind: Some(kind),
                    ..shape
                },
                status: "available".into(),
                creating_left: 0,
            },
        );
    }

    /// One DescribeInstances look: launched instances count down to running.
    pub(super) fn settle_launches(&mut self) {
        let mut running = Vec::new();
        for (id, left) in self.launch_left.iter_mut() {
            *left = left.saturating_sub(1);
            if *left == 0 {
                running.push(id.clone());
            }
        }
        for id in running {
            self.launch_left.remove(&id);
            if let Some(i) = self.instances.get_mut(&id) {
                if i.state == InstanceState::Pending {
                    i.state = InstanceState::Running;
                }
            }
        }
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}-{:017x}", self.next)
    }

    /// Detaches a volume from whatever instance has it.
    fn detach(&mut self, volume_id: &str) {
        for i in self.instances.values_mut() {
            i.volumes.retain(|v| v.volume_id != volume_id);
        }
        for s in self.shapes.values_mut() {
            s.disks.retain(|d| d.volume_id != volume_id);
        }
        if let Some(v) = self.volumes.get_mut(volume_id) {
            v.state = "available".into();
        }
        if let Some(d) = self.disks.get_mut(volume_id) {
            d.device.clear();
        }
    }
}

/// The instance's view of its disks.
fn attached(disks: &[Disk], root: &str) -> Vec<AttachedVolume> {
    disks
        .iter()
        .map(|d| AttachedVolume {
            volume_id: d.volume_id.clone(),
            device: d.device.clone(),
            is_root: d.device == root,
        })
        .collect()
}

/// The mappings an image launches with: its registration's, or one per
/// snapshot (`/dev/xvda`, `/dev/xvdb`, ...) for an image made otherwise.
fn image_mappings(w: &World, image: &Image) -> (String, String, Vec<Mapping>) {
    if let Some(r) = w.registrations.get(&image.id) {
        return (
            r.architecture.clone(),
            r.root_device.clone(),
            r.mappings.clone(),
        );
    }
    let mappings = image
        .snapshot_ids
        .iter()
        .enumerate()
        .map(|(n, s)| Mapping {
            device: format!("/dev/xvd{}", (b'a' + n as u8) as char),
            snapshot_id: s.clone(),
            size_gib: None,
            volume_type: None,
            iops: None,
            throughput: None,
            delete_on_termination: true,
        })
        .collect();
    ("x86_64".into(), "/dev/xvda".into(), mappings)
}

impl FakeEc2 {
    fn not_found(&self, action: &str, resource: &str, code: &str) -> CloudError {
        self.error(
            ErrorKind::NotFound,
            action,
            resource,
            code,
            "does not exist",
        )
    }

    /// A launched instance's zone and VPC: its subnet's when the fake knows
    /// the subnet, the zone asked for, or the region's first.
    fn placement(&self, w: &World, req: &LaunchRequest) -> (String, Option<String>) {
        let subnet = req.subnet_id.as_ref().and_then(|id| {
            w.networks
                .get(&self.region)?
                .subnets
                .iter()
                .find(|s| &s.id == id)
        });
        match subnet {
            Some(s) => (s.availability_zone.clone(), Some(s.vpc_id.clone())),
            None => (
                req.availability_zone
                    .clone()
                    .unwrap_or_else(|| format!("{}a", self.region)),
                None,
            ),
        }
    }

    /// RunInstances' work under the world's lock.
    fn launch(&self, w: &mut World, req: &LaunchRequest) -> CloudResult<String> {
        let action = "ec2:RunInstances";
        let token = format!("run:{}", req.client_token);
        if let Some(id) = w.client_tokens.get(&token) {
            return Ok(id.clone());
        }
        let me = self.own_account_id(w);
        let Some(image) = w
            .images
            .get(&req.image_id)
            .filter(|i| i.region == self.region)
            .filter(|_| w.copies.visible(&req.image_id, &self.account, &me))
            .cloned()
        else {
            return Err(self.not_found(action, &req.image_id, "InvalidAMIID.NotFound"));
        };
        let (architecture, root, mappings) = image_mappings(w, &image);
        let (zone, vpc_id) = self.placement(w, req);
        let id = w.next_id("i");
        let mut disks = Vec::new();
        for m in &mappings {
            let o = req.mappings.iter().find(|o| o.device == m.device);
            let pick = |f: fn(&Mapping) -> Option<i32>| o.and_then(f).or(f(m));
            let volume_id = w.next_id("vol");
            let disk = Disk {
                volume_id: volume_id.clone(),
                device: m.device.clone(),
                availability_zone: zone.clone(),
                size_gib: pick(|m| m.size_gib).unwrap_or(8),
                volume_type: o
                    .and_then(|o| o.volume_type.clone())
                    .or(m.volume_type.clone())
                    .unwrap_or_else(|| "gp3".into()),
                iops: pick(|m| m.iops),
                throughput: pick(|m| m.throughput),
                encrypted: false,
                kms_key_id: None,
                delete_on_termination: o
                    .map_or(m.delete_on_termination, |o| o.delete_on_termination),
                tags: req.tags.clone(),
            };
            w.volumes.insert(
                volume_id.clone(),
                Volume {
                    id: volume_id.clone(),
                    region: self.region.clone(),
                    state: "in-use".into(),
                    tags: req.tags.clone(),
                },
            );
            w.disks.insert(volume_id, disk.clone());
            disks.push(disk);
        }
        let pending = w.launch_pending;
        if pending > 0 {
            w.launch_left.insert(id.clone(), pending);
        }
        w.instances.insert(
            id.clone(),
            Instance {
                id: id.clone(),
                region: self.region.clone(),
                state: if pending > 0 {
                    InstanceState::Pending
                } else {
                    InstanceState::Running
                },
                tags: req.tags.clone(),
                volumes: attached(&disks, &root),
            },
        );
        let shape = InstanceShape {
            instance_type: req.instance_type.clone(),
            architecture,
            root_device: root,
            availability_zone: zone,
            subnet_id: req.subnet_id.clone(),
            vpc_id,
            security_groups: req.security_groups.clone(),
            key_name: req.key_name.clone(),
            iam_profile: req.iam_profile.clone(),
            private_ip: req.private_ip.clone(),
            image_id: Some(req.image_id.clone()),
            ebs_optimized: req.ebs_optimized,
            ena: w.registrations.get(&image.id).is_none_or(|r| r.ena),
            hibernation: req.hibernation,
            tags: req.tags.clone(),
            disks,
        };
        w.shapes.insert(id.clone(), shape);
        if !w.launch_health.is_empty() {
            let looks = w.launch_health.iter().cloned().collect();
            w.instance_health.insert(id.clone(), looks);
        }
        w.client_tokens.insert(token, id.clone());
        w.launches.push(req.clone());
        Ok(id)
    }
}

#[async_trait]
impl Launch for FakeEc2 {
    async fn shapes_page(
        &self,
        ids: &[String],
        token: Option<String>,
    ) -> CloudResult<Page<(String, InstanceShape)>> {
        let mut w = self.enter("DescribeInstances", None)?;
        self.filter_size("DescribeInstances", ids.len())?;
        w.settle_launches();
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

    async fn subnet_zones(
        &self,
        ids: &[String],
    ) -> CloudResult<std::collections::BTreeMap<String, String>> {
        let w = self.enter("DescribeSubnets", ids.first().map(String::as_str))?;
        self.filter_size("DescribeSubnets", ids.len())?;
        Ok(w.networks
            .get(&self.region)
            .map(|n| {
                n.subnets
                    .iter()
                    .filter(|s| ids.contains(&s.id))
                    .map(|s| (s.id.clone(), s.availability_zone.clone()))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The AMI is available at once; its name is unique per region.
    async fn instance_status(&self, ids: &[String]) -> CloudResult<Vec<InstanceHealth>> {
        let action = "DescribeInstanceStatus";
        let mut w = self.enter(action, ids.first().map(String::as_str))?;
        if ids.len() > STATUS_CHUNK {
            return Err(self.error(
                ErrorKind::Other,
                "ec2:DescribeInstanceStatus",
                &ids[0],
                "InvalidParameterValue",
                "at most 100 instance ids per call",
            ));
        }
        w.settle_launches();
        let mut out = Vec::new();
        for id in ids {
            let Some(i) = w.instances.get(id).filter(|i| i.region == self.region) else {
                return Err(self.not_found(
                    "ec2:DescribeInstanceStatus",
                    id,
                    "InvalidInstanceID.NotFound",
                ));
            };
            let running = i.state == InstanceState::Running;
            let (instance, system) = match w.instance_health.get_mut(id) {
                _ if !running => ("not-applicable".into(), "not-applicable".into()),
                Some(looks) if looks.len() > 1 => looks.pop_front().expect("two looks or more"),
                Some(looks) if !looks.is_empty() => looks[0].clone(),
                _ => ("ok".into(), "ok".into()),
            };
            out.push(InstanceHealth {
                id: id.clone(),
                instance,
                system,
            });
        }
        Ok(out)
    }

    async fn register_image(&self, req: &ImageRegistration) -> CloudResult<String> {
        let mut w = self.enter("RegisterImage", Some(&req.name))?;
        if w.images
            .values()
            .any(|m| m.name == req.name && m.region == self.region)
        {
            return Err(self.error(
                ErrorKind::Invalid,
                "ec2:RegisterImage",
                &req.name,
                "InvalidAMIName.Duplicate",
                "AMI name is already in use",
            ));
        }
        // A snapshot of another account counts only once shared with this
        // one (the emulator has one account: the fake fills that hole).
        let me = self.own_account_id(&w);
        if let Some(m) = req.mappings.iter().find(|m| {
            !w.snapshots.contains_key(&m.snapshot_id)
                || !w.copies.visible(&m.snapshot_id, &self.account, &me)
        }) {
            return Err(self.not_found(
                "ec2:RegisterImage",
                &m.snapshot_id,
                "InvalidSnapshot.NotFound",
            ));
        }
        let id = w.next_id("ami");
        let created = Some(w.now());
        w.images.insert(
            id.clone(),
            Image {
                id: id.clone(),
                region: self.region.clone(),
                state: ImageState::Available,
                snapshot_ids: req.mappings.iter().map(|m| m.snapshot_id.clone()).collect(),
                tags: req.tags.clone(),
                name: req.name.clone(),
                description: req.description.clone(),
                created,
            },
        );
        w.copies.owners.insert(id.clone(), self.account.clone());
        w.registrations.insert(id.clone(), req.clone());
        Ok(id)
    }

    /// One instance, with a new volume per mapping of its image; a client
    /// token already used answers with the instance it launched, as EC2
    /// does.
    async fn run_instance(&self, req: &LaunchRequest) -> CloudResult<String> {
        let mut w = self.enter("RunInstances", Some(&req.image_id))?;
        let id = self.launch(&mut w, req)?;
        self.answered(&w, "RunInstances", &req.image_id)?;
        Ok(id)
    }

    async fn create_volume(&self, req: &VolumeRequest) -> CloudResult<String> {
        let action = "ec2:CreateVolume";
        let mut w = self.enter("CreateVolume", Some(&req.snapshot_id))?;
        let token = format!("vol:{}", req.client_token);
        if let Some(id) = w.client_tokens.get(&token) {
            return Ok(id.clone());
        }
        let me = self.own_account_id(&w);
        if !w.snapshots.contains_key(&req.snapshot_id)
            || !w.copies.visible(&req.snapshot_id, &self.account, &me)
        {
            return Err(self.not_found(action, &req.snapshot_id, "InvalidSnapshot.NotFound"));
        }
        let encryption = w
            .copies
            .encryption
            .get(&req.snapshot_id)
            .cloned()
            .unwrap_or_default();
        let id = w.next_id("vol");
        w.volumes.insert(
            id.clone(),
            Volume {
                id: id.clone(),
                region: self.region.clone(),
                state: "available".into(),
                tags: req.tags.clone(),
            },
        );
        let disk = Disk {
            volume_id: id.clone(),
            device: String::new(),
            availability_zone: req.availability_zone.clone(),
            size_gib: req.size_gib.unwrap_or(8),
            volume_type: req.volume_type.clone(),
            iops: req.iops,
            throughput: req.throughput,
            encrypted: req.kms_key_id.is_some() || encryption.encrypted,
            kms_key_id: req.kms_key_id.clone().or(encryption.kms_key_id),
            delete_on_termination: false,
            tags: req.tags.clone(),
        };
        w.disks.insert(id.clone(), disk);
        w.client_tokens.insert(token, id.clone());
        self.answered(&w, "CreateVolume", &req.snapshot_id)?;
        Ok(id)
    }

    async fn attach_volume(
        &self,
        volume_id: &str,
        instance_id: &str,
        device: &str,
    ) -> CloudResult<()> {
        let action = "ec2:AttachVolume";
        let mut w = self.enter("AttachVolume", Some(volume_id))?;
        let w = &mut *w;
        let Some(v) = w.volumes.get_mut(volume_id) else {
            return Err(self.not_found(action, volume_id, "InvalidVolume.NotFound"));
        };
        let Some(i) = w
            .instances
            .get_mut(instance_id)
            .filter(|i| !i.state.is_gone())
        else {
            return Err(self.not_found(action, instance_id, "InvalidInstanceID.NotFound"));
        };
        if v.state != "available" {
            return Err(self.error(
                ErrorKind::Conflict,
                action,
                volume_id,
                "VolumeInUse",
                "the volume is attached already",
            ));
        }
        v.state = "in-use".into();
        i.volumes.push(AttachedVolume {
            volume_id: volume_id.to_string(),
            device: device.to_string(),
            is_root: false,
        });
        if let Some(d) = w.disks.get_mut(volume_id) {
            d.device = device.to_string();
            if let Some(s) = w.shapes.get_mut(instance_id) {
                s.disks.push(d.clone());
            }
        }
        Ok(())
    }

    async fn detach_volume(&self, volume_id: &str, instance_id: &str) -> CloudResult<()> {
        let action = "ec2:DetachVolume";
        let mut w = self.enter("DetachVolume", Some(volume_id))?;
        let on_it = w
            .instances
            .get(instance_id)
            .is_some_and(|i| i.volumes.iter().any(|v| v.volume_id == volume_id));
        if !w.volumes.contains_key(volume_id) {
            return Err(self.not_found(action, volume_id, "InvalidVolume.NotFound"));
        }
        if !on_it {
            return Err(self.error(
                ErrorKind::Conflict,
                action,
                volume_id,
                "IncorrectState",
                "the volume is not attached to this instance",
            ));
        }
        w.detach(volume_id);
        Ok(())
    }

    /// Volumes marked DeleteOnTermination go with it; the others stay,
    /// detached.
    async fn terminate_instance(&self, instance_id: &str) -> CloudResult<()> {
        let mut w = self.enter("TerminateInstances", Some(instance_id))?;
        let Some(i) = w.instances.get_mut(instance_id) else {
            return Ok(());
        };
        i.state = InstanceState::Terminated;
        let volumes = std::mem::take(&mut i.volumes);
        for v in volumes {
            let goes = w
                .disks
                .get(&v.volume_id)
                .is_some_and(|d| d.delete_on_termination);
            w.detach(&v.volume_id);
            if goes {
                w.volumes.remove(&v.volume_id);
                w.disks.remove(&v.volume_id);
            }
        }
        w.launch_left.remove(instance_id);
        Ok(())
    }

    async fn delete_volume(&self, volume_id: &str) -> CloudResult<()> {
        let mut w = self.enter("DeleteVolume", Some(volume_id))?;
        if w.volumes
            .get(volume_id)
            .is_some_and(|v| v.state == "in-use")
        {
            return Err(self.error(
                ErrorKind::Conflict,
                "ec2:DeleteVolume",
                volume_id,
                "VolumeInUse",
                "the volume is attached",
            ));
        }
        w.volumes.remove(volume_id);
        w.disks.remove(volume_id);
        Ok(())
    }
}

fn describe_action(kind: DbSnapshotKind) -> &'static str {
    match kind {
        DbSnapshotKind::Instance => "DescribeDBInstances",
        DbSnapshotKind::Cluster => "DescribeDBClusters",
    }
}

/// RDS's code for a database that is there already.
fn exists_code(kind: DbSnapshotKind) -> &'static str {
    match kind {
        DbSnapshotKind::Instance => "DBInstanceAlreadyExists",
        DbSnapshotKind::Cluster => "DBClusterAlreadyExistsFault",
    }
}

impl FakeEc2 {
    fn new_database(&self, w: &mut World, shape: DbShape) -> FakeDatabase {
        let creating_left = w.db_creating;
        FakeDatabase {
            region: self.region.clone(),
            status: if creating_left > 0 {
                "creating"
            } else {
                "available"
            }
            .into(),
            endpoint: (creating_left == 0).then(|| endpoint(&shape.identifier, &self.region)),
            shape,
            creating_left,
        }
    }
}

/// The fake's RDS restores: a database restored from a snapshot takes the
/// engine of the database the snapshot was taken of when the fake knows it.
#[async_trait]
impl Databases for FakeEc2 {
    async fn shapes_page(
        &self,
        kind: DbSnapshotKind,
        ids: &[String],
        token: Option<String>,
    ) -> CloudResult<Page<DbShape>> {
        let action = describe_action(kind);
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

    async fn restore(&self, req: &DbRestoreRequest) -> CloudResult<()> {
        let action = match req.kind {
            DbSnapshotKind::Instance => "RestoreDBInstanceFromDBSnapshot",
            DbSnapshotKind::Cluster => "RestoreDBClusterFromSnapshot",
        };
        let mut w = self.enter(action, Some(&req.identifier))?;
        let rds_action = format!("rds:{action}");
        if w.databases
            .contains_key(&(req.kind, req.identifier.clone()))
        {
            return Err(self.error(
                ErrorKind::Conflict,
                &rds_action,
                &req.identifier,
                exists_code(req.kind),
                "a database with this identifier exists",
            ));
        }
        let me = self.own_account_id(&w);
        let Some(snapshot) = w
            .db_snapshots
            .values()
            .find(|s| {
                s.kind == req.kind
                    && (s.snapshot.id == req.snapshot || s.snapshot.arn == req.snapshot)
                    && w.copies.visible(&s.snapshot.id, &self.account, &me)
            })
            .map(|s| s.snapshot.clone())
        else {
            let code = match req.kind {
                DbSnapshotKind::Instance => "DBSnapshotNotFound",
                DbSnapshotKind::Cluster => "DBClusterSnapshotNotFoundFault",
            };
            return Err(self.not_found(&rds_action, &req.snapshot, code));
        };
        // RestoreDBClusterFromSnapshot requires the engine; an instance
        // restore takes the snapshot's.
        if req.kind == DbSnapshotKind::Cluster && req.engine.is_none() {
            return Err(self.error(
                ErrorKind::Invalid,
                &rds_action,
                &req.identifier,
                "MissingParameter",
                "Engine is required",
            ));
        }
        let source = w.databases.get(&(req.kind, snapshot.source_id.clone()));
        let engine = req
            .engine
            .clone()
            .or_else(|| source.map(|s| s.shape.engine.clone()))
            .unwrap_or_default();
        let shape = DbShape {
            identifier: req.identifier.clone(),
            kind: Some(req.kind),
            class: req.class.clone().unwrap_or_default(),
            engine,
            engine_version: source
                .map(|s| s.shape.engine_version.clone())
                .unwrap_or_default(),
            subnet_group: req.subnet_group.clone(),
            parameter_group: req.parameter_group.clone(),
            port: req.port,
            multi_az: req.multi_az,
            availability_zone: None,
            security_groups: req.security_groups.clone(),
            members: Vec::new(),
            tags: req.tags.clone(),
        };
        let db = self.new_database(&mut w, shape);
        w.databases.insert((req.kind, req.identifier.clone()), db);
        self.answered(&w, action, &req.identifier)?;
        Ok(())
    }

    async fn add_cluster_instance(
        &self,
        cluster: &str,
        identifier: &str,
        class: &str,
        engine: &str,
        tags: &Tags,
    ) -> CloudResult<()> {
        let mut w = self.enter("CreateDBInstance", Some(identifier))?;
        let action = "rds:CreateDBInstance";
        let instance_key = (DbSnapshotKind::Instance, identifier.to_string());
        if w.databases.contains_key(&instance_key) {
            return Err(self.error(
                ErrorKind::Conflict,
                action,
                identifier,
                "DBInstanceAlreadyExists",
                "a database with this identifier exists",
            ));
        }
        let cluster_key = (DbSnapshotKind::Cluster, cluster.to_string());
        let Some(c) = w.databases.get_mut(&cluster_key) else {
            return Err(self.not_found(action, cluster, "DBClusterNotFoundFault"));
        };
        c.shape
            .members
            .push((identifier.to_string(), class.to_string()));
        if c.shape.class.is_empty() {
            c.shape.class = class.to_string();
        }
        let shape = DbShape {
            identifier: identifier.to_string(),
            kind: Some(DbSnapshotKind::Instance),
            class: class.to_string(),
            engine: engine.to_string(),
            tags: tags.clone(),
            ..DbShape::default()
        };
        let db = self.new_database(&mut w, shape);
        w.databases.insert(instance_key, db);
        Ok(())
    }

    async fn status(
        &self,
        kind: DbSnapshotKind,
        identifier: &str,
    ) -> CloudResult<Option<DbStatus>> {
        let mut w = self.enter(describe_action(kind), Some(identifier))?;
        let Some(d) = w
            .databases
            .get_mut(&(kind, identifier.to_string()))
            .filter(|d| d.region == self.region)
        else {
            return Ok(None);
        };
        if d.creating_left > 0 {
            d.creating_left -= 1;
            if d.creating_left == 0 {
                d.status = "available".into();
                d.endpoint = Some(endpoint(identifier, &self.region));
            }
        }
        Ok(Some(DbStatus {
            identifier: identifier.to_string(),
            status: d.status.clone(),
            endpoint: d.endpoint.clone(),
            tags: d.shape.tags.clone(),
        }))
    }

    /// As RDS: a cluster with instances in it is not deleted.
    async fn delete(&self, kind: DbSnapshotKind, identifier: &str) -> CloudResult<()> {
        let action = match kind {
            DbSnapshotKind::Instance => "DeleteDBInstance",
            DbSnapshotKind::Cluster => "DeleteDBCluster",
        };
        let mut w = self.enter(action, Some(identifier))?;
        let action = format!("rds:{action}");
        let action = action.as_str();
        let key = (kind, identifier.to_string());
        let Some(db) = w.databases.get(&key) else {
            return Ok(());
        };
        if kind == DbSnapshotKind::Cluster && !db.shape.members.is_empty() {
            return Err(self.error(
                ErrorKind::Conflict,
                action,
                identifier,
                "InvalidDBClusterStateFault",
                "the cluster still has instances",
            ));
        }
        w.databases.remove(&key);
        for c in w.databases.values_mut() {
            c.shape.members.retain(|(m, _)| m != identifier);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
