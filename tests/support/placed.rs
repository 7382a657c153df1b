//! An instance placed in a VPC of its own: what a recovery into a cloned
//! network maps from.

use aws_sdk_ec2::types::{BlockDeviceMapping, EbsBlockDevice, InstanceType};

use super::{network, Aws};

/// The VPC, subnet, security group and instance of [`Aws::placed_instance`].
pub struct Placed {
    pub vpc: String,
    pub subnet: String,
    pub group: String,
    pub instance: String,
}

impl Aws {
    /// A VPC (`cidr`) with one subnet in us-east-1a and one security
    /// group, and a one-volume instance in them.
    pub fn placed_instance(&self, cidr: &str, subnet_cidr: &str) -> Placed {
        self.rt.block_on(async {
            let vpc = network::vpc(&self.ec2, cidr).await;
            let subnet = network::subnets(&self.ec2, &vpc, &[(subnet_cidr, "us-east-1a")])
                .await
                .remove(0);
            let group = network::security_groups(&self.ec2, &vpc, &["app"])
                .await
                .remove(0);
            let out = self
                .ec2
                .run_instances()
                .image_id("ami-12345678")
                .instance_type(InstanceType::T3Micro)
                .min_count(1)
                .max_count(1)
                .subnet_id(&subnet)
                .security_group_ids(&group)
                .block_device_mappings(
                    BlockDeviceMapping::builder()
                        .device_name("/dev/sda1")
                        .ebs(EbsBlockDevice::builder().volume_size(1).build())
                        .build(),
                )
                .send()
                .await
                .expect("RunInstances");
            let instance = out.instances()[0].instance_id().unwrap().to_string();
            Placed {
                vpc,
                subnet,
                group,
                instance,
            }
        })
    }
}

impl Aws {
    /// A subnet's tags.
    pub fn subnet_tags(&self, id: &str) -> std::collections::BTreeMap<String, String> {
        let out = self
            .rt
            .block_on(self.ec2.describe_subnets().subnet_ids(id).send())
            .expect("DescribeSubnets");
        out.subnets()[0]
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}
