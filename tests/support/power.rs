//! Fixtures for resource control: instances launched with hibernation
//! configured, and the power state of instances and databases read back.

use aws_sdk_ec2::types::{HibernationOptionsRequest, InstanceType};

use super::targets::Rds;
use super::Aws;

impl Aws {
    /// Runs one instance with hibernation configured (one root volume).
    pub fn run_hibernating_instance(&self) -> String {
        let req = self
            .ec2
            .run_instances()
            .image_id("ami-12345678")
            .instance_type(InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .hibernation_options(
                HibernationOptionsRequest::builder()
                    .configured(true)
                    .build(),
            );
        let out = self.rt.block_on(req.send()).expect("RunInstances");
        out.instances()[0].instance_id().unwrap().to_string()
    }

    /// The instance's state name (`running`, `stopped`, ...).
    pub fn instance_state(&self, id: &str) -> String {
        let out = self
            .rt
            .block_on(self.ec2.describe_instances().instance_ids(id).send())
            .expect("DescribeInstances");
        out.reservations()[0].instances()[0]
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_string())
            .unwrap_or_default()
    }
}

impl Rds {
    /// The DB instance's status (`available`, `stopped`, ...).
    pub fn instance_status(&self, id: &str) -> String {
        let out = self
            .rt
            .block_on(
                self.rds
                    .describe_db_instances()
                    .db_instance_identifier(id)
                    .send(),
            )
            .expect("DescribeDBInstances");
        out.db_instances()[0]
            .db_instance_status()
            .unwrap_or_default()
            .to_string()
    }
}
