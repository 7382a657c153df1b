//! Read-backs of what a restore created: instances with their devices and
//! tags, volumes with their attachment, DB instances and clusters.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;

use super::targets::Rds;
use super::Aws;

/// An instance as the emulator reports it.
#[derive(Debug, Clone)]
pub struct InstanceView {
    pub id: String,
    pub state: String,
    pub instance_type: String,
    pub subnet: String,
    pub zone: String,
    pub tags: BTreeMap<String, String>,
    /// (device, volume id), by device.
    pub devices: Vec<(String, String)>,
}

/// A volume as the emulator reports it.
#[derive(Debug, Clone)]
pub struct VolumeView {
    pub id: String,
    pub state: String,
    pub zone: String,
    pub size: i32,
    pub tags: BTreeMap<String, String>,
    /// (instance, device) while attached.
    pub attached: Option<(String, String)>,
}

fn tags(t: &[aws_sdk_ec2::types::Tag]) -> BTreeMap<String, String> {
    t.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

impl Aws {
    /// Instances matching `filter` (name, value).
    pub fn instances_where(&self, name: &str, value: &str) -> Vec<InstanceView> {
        let out = self
            .rt
            .block_on(
                self.ec2
                    .describe_instances()
                    .filters(Filter::builder().name(name).values(value).build())
                    .send(),
            )
            .expect("DescribeInstances");
        let mut found = vec![];
        for r in out.reservations() {
            for i in r.instances() {
                let mut devices: Vec<(String, String)> = i
                    .block_device_mappings()
                    .iter()
                    .filter_map(|m| {
                        Some((
                            m.device_name()?.to_string(),
                            m.ebs()?.volume_id()?.to_string(),
                        ))
                    })
                    .collect();
                devices.sort();
                found.push(InstanceView {
                    id: i.instance_id().unwrap_or_default().to_string(),
                    state: i
                        .state()
                        .and_then(|s| s.name())
                        .map(|n| n.as_str().to_string())
                        .unwrap_or_default(),
                    instance_type: i
                        .instance_type()
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default(),
                    subnet: i.subnet_id().unwrap_or_default().to_string(),
                    zone: i
                        .placement()
                        .and_then(|p| p.availability_zone())
                        .unwrap_or_default()
                        .to_string(),
                    tags: tags(i.tags()),
                    devices,
                });
            }
        }
        found
    }

    /// Stops an instance (the emulator stops it at once).
    pub fn stop(&self, id: &str) {
        self.rt
            .block_on(self.ec2.stop_instances().instance_ids(id).send())
            .expect("StopInstances");
    }

    /// One instance by id.
    pub fn instance(&self, id: &str) -> InstanceView {
        self.instances_where("instance-id", id)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("instance {id} in the emulator"))
    }

    /// Volumes matching `filter` (name, value).
    pub fn volumes_where(&self, name: &str, value: &str) -> Vec<VolumeView> {
        let out = self
            .rt
            .block_on(
                self.ec2
                    .describe_volumes()
                    .filters(Filter::builder().name(name).values(value).build())
                    .send(),
            )
            .expect("DescribeVolumes");
        out.volumes()
            .iter()
            .map(|v| VolumeView {
                id: v.volume_id().unwrap_or_default().to_string(),
                state: v
                    .state()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                zone: v.availability_zone().unwrap_or_default().to_string(),
                size: v.size().unwrap_or_default(),
                tags: tags(v.tags()),
                attached: v.attachments().first().map(|a| {
                    (
                        a.instance_id().unwrap_or_default().to_string(),
                        a.device().unwrap_or_default().to_string(),
                    )
                }),
            })
            .collect()
    }

    pub fn volume(&self, id: &str) -> VolumeView {
        self.volumes_where("volume-id", id)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("volume {id} in the emulator"))
    }

    /// Every volume of the region.
    pub fn count_volumes(&self) -> usize {
        let out = self
            .rt
            .block_on(self.ec2.describe_volumes().send())
            .expect("DescribeVolumes");
        out.volumes().len()
    }

    /// A subnet of the region's default VPC in zone `zone`.
    pub fn default_subnet(&self, zone: &str) -> String {
        let out = self
            .rt
            .block_on(
                self.ec2
                    .describe_subnets()
                    .filters(
                        Filter::builder()
                            .name("availability-zone")
                            .values(zone)
                            .build(),
                    )
                    .send(),
            )
            .expect("DescribeSubnets");
        out.subnets()
            .first()
            .and_then(|s| s.subnet_id())
            .unwrap_or_else(|| panic!("a default subnet in {zone}"))
            .to_string()
    }
}

impl Rds {
    /// A DB instance's status and tags, if it exists.
    pub fn db_instance(&self, id: &str) -> Option<(String, BTreeMap<String, String>)> {
        let out = self
            .rt
            .block_on(
                self.rds
                    .describe_db_instances()
                    .db_instance_identifier(id)
                    .send(),
            )
            .ok()?;
        let d = out.db_instances().first()?;
        Some((
            d.db_instance_status().unwrap_or_default().to_string(),
            super::targets::tags(d.tag_list()),
        ))
    }

    /// A DB cluster's status and tags, if it exists.
    pub fn db_cluster(&self, id: &str) -> Option<(String, BTreeMap<String, String>)> {
        let out = self
            .rt
            .block_on(
                self.rds
                    .describe_db_clusters()
                    .db_cluster_identifier(id)
                    .send(),
            )
            .ok()?;
        let d = out.db_clusters().first()?;
        Some((
            d.status().unwrap_or_default().to_string(),
            super::targets::tags(d.tag_list()),
        ))
    }
}
