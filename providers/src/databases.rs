//! [`Databases`] on the SDK for one account and region: what a DB instance
//! or Aurora cluster was (the describes a backup records) and the restores.
//! Implemented on [`AwsRds`], built with the same credentials as backups'.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_rds::types::{DbCluster, DbInstance};
use lifeboat_engine::cloud::restore::{Databases, DbRestoreRequest, DbShape, DbStatus};
use lifeboat_engine::cloud::{CloudResult, DbSnapshotKind, ErrorKind, Page, Tags};

use crate::rds::{id_filter, tags_from_sdk, AwsRds, PAGE_SIZE};

fn next_marker(m: Option<&str>) -> Option<String> {
    m.filter(|m| !m.is_empty()).map(str::to_owned)
}

fn instance_shape(d: &DbInstance) -> Option<DbShape> {
    Some(DbShape {
        identifier: d.db_instance_identifier()?.to_owned(),
        kind: Some(DbSnapshotKind::Instance),
        class: d.db_instance_class().unwrap_or_default().to_owned(),
        engine: d.engine().unwrap_or_default().to_owned(),
        engine_version: d.engine_version().unwrap_or_default().to_owned(),
        subnet_group: d
            .db_subnet_group()
            .and_then(|g| g.db_subnet_group_name())
            .map(str::to_owned),
        parameter_group: d
            .db_parameter_groups()
            .first()
            .and_then(|g| g.db_parameter_group_name())
            .map(str::to_owned),
        // The endpoint's port once there is one; DbInstancePort before.
        port: d
            .endpoint()
            .and_then(|e| e.port())
            .or(d.db_instance_port())
            .filter(|p| *p > 0),
        multi_az: d.multi_az().unwrap_or(false),
        availability_zone: d.availability_zone().map(str::to_owned),
        security_groups: d
            .vpc_security_groups()
            .iter()
            .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
            .collect(),
        members: Vec::new(),
        tags: tags_from_sdk(d.tag_list()),
    })
}

/// A cluster's shape; `classes` are its members' instance classes by
/// identifier (DescribeDBClusters does not give them). The writer comes
/// first, so the cluster's class is its writer's.
fn cluster_shape(c: &DbCluster, classes: &BTreeMap<String, String>) -> Option<DbShape> {
    let mut members: Vec<(bool, String)> = c
        .db_cluster_members()
        .iter()
        .filter_map(|m| {
            Some((
                !m.is_cluster_writer().unwrap_or(false),
                m.db_instance_identifier()?.to_owned(),
            ))
        })
        .collect();
    members.sort();
    let members: Vec<(String, String)> = members
        .into_iter()
        .map(|(_, id)| {
            let class = classes.get(&id).cloned().unwrap_or_default();
            (id, class)
        })
        .collect();
    let class = members
        .first()
        .map(|(_, c)| c.clone())
        .filter(|c| !c.is_empty())
        // A Multi-AZ DB cluster (not Aurora) names its class itself.
        .or_else(|| c.db_cluster_instance_class().map(str::to_owned))
        .unwrap_or_default();
    Some(DbShape {
        identifier: c.db_cluster_identifier()?.to_owned(),
        kind: Some(DbSnapshotKind::Cluster),
        class,
        engine: c.engine().unwrap_or_default().to_owned(),
        engine_version: c.engine_version().unwrap_or_default().to_owned(),
        subnet_group: c.db_subnet_group().map(str::to_owned),
        parameter_group: c.db_cluster_parameter_group().map(str::to_owned),
        port: c.port().filter(|p| *p > 0),
        multi_az: c.multi_az().unwrap_or(false),
        availability_zone: None,
        security_groups: c
            .vpc_security_groups()
            .iter()
            .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
            .collect(),
        members,
        tags: tags_from_sdk(c.tag_list()),
    })
}

impl AwsRds {
    /// The instance class of every member of `clusters`: DescribeDBInstances
    /// filtered by `db-cluster-id`, every page.
    async fn member_classes(&self, clusters: &[String]) -> CloudResult<BTreeMap<String, String>> {
        let mut classes = BTreeMap::new();
        if clusters.is_empty() {
            return Ok(classes);
        }
        let mut marker = None;
        loop {
            let out = self
                .client
                .describe_db_instances()
                .set_filters(id_filter("db-cluster-id", clusters))
                .max_records(PAGE_SIZE)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| self.ctx.sdk("rds:DescribeDBInstances", None, &e))?;
            for d in out.db_instances() {
                if let (Some(id), Some(class)) = (d.db_instance_identifier(), d.db_instance_class())
                {
                    classes.insert(id.to_owned(), class.to_owned());
                }
            }
            marker = next_marker(out.marker());
            if marker.is_none() {
                return Ok(classes);
            }
        }
    }

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
impl Databases for AwsRds {
    async fn shapes_page(
        &self,
        kind: DbSnapshotKind,
        ids: &[String],
        token: Option<String>,
    ) -> CloudResult<Page<DbShape>> {
        match kind {
            DbSnapshotKind::Instance => {
                let action = "rds:DescribeDBInstances";
                // The filter, not DBInstanceIdentifier: a missing one is
                // absent instead of failing the page.
                let out = self
                    .client
                    .describe_db_instances()
                    .set_filters(id_filter("db-instance-id", ids))
                    .max_records(PAGE_SIZE)
                    .set_marker(token)
                    .send()
                    .await
                    .map_err(|e| self.ctx.sdk(action, None, &e))?;
                Ok(Page {
                    items: out
                        .db_instances()
                        .iter()
                        .filter_map(instance_shape)
                        .collect(),
                    next: next_marker(out.marker()),
                    call: self.ctx.call(action),
                })
            }
            DbSnapshotKind::Cluster => {
                let action = "rds:DescribeDBClusters";
                let out = self
                    .client
                    .describe_db_clusters()
                    .set_filters(id_filter("db-cluster-id", ids))
                    .max_records(PAGE_SIZE)
                    .set_marker(token)
                    .send()
                    .await
                    .map_err(|e| self.ctx.sdk(action, None, &e))?;
                let clusters: Vec<String> = out
                    .db_clusters()
                    .iter()
                    .filter_map(|c| c.db_cluster_identifier().map(str::to_owned))
                    .collect();
                let classes = self.member_classes(&clusters).await?;
                Ok(Page {
                    items: out
                        .db_clusters()
                        .iter()
                        .filter_map(|c| cluster_shape(c, &classes))
                        .collect(),
                    next: next_marker(out.marker()),
                    call: self.ctx.call(action),
                })
            }
        }
    }

    async fn restore(&self, _req: &DbRestoreRequest) -> CloudResult<()> {
        Err(self.not_yet("rds:RestoreDBInstanceFromDBSnapshot"))
    }

    async fn add_cluster_instance(
        &self,
        _cluster: &str,
        _identifier: &str,
        _class: &str,
        _engine: &str,
        _tags: &Tags,
    ) -> CloudResult<()> {
        Err(self.not_yet("rds:CreateDBInstance"))
    }

    async fn status(
        &self,
        _kind: DbSnapshotKind,
        _identifier: &str,
    ) -> CloudResult<Option<DbStatus>> {
        Err(self.not_yet("rds:DescribeDBInstances"))
    }

    async fn delete(&self, _kind: DbSnapshotKind, _identifier: &str) -> CloudResult<()> {
        Err(self.not_yet("rds:DeleteDBInstance"))
    }
}
