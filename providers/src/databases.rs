//! [`Databases`] on the SDK for one account and region: what a DB instance
//! or Aurora cluster was (the describes a backup records) and the restores.
//! Implemented on [`AwsRds`], built with the same credentials as backups'.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_rds::types::{DbCluster, DbInstance};
use lifeboat_engine::cloud::restore::{Databases, DbRestoreRequest, DbShape, DbStatus};
use lifeboat_engine::cloud::{gone_is_done, CloudResult, DbSnapshotKind, ErrorKind, Page, Tags};

use crate::rds::{id_filter, tags_from_sdk, tags_to_sdk, AwsRds, PAGE_SIZE};

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

    async fn restore(&self, req: &DbRestoreRequest) -> CloudResult<()> {
        let groups = Some(req.security_groups.clone()).filter(|g| !g.is_empty());
        let tags = Some(tags_to_sdk(&req.tags)).filter(|t| !t.is_empty());
        match req.kind {
            DbSnapshotKind::Instance => {
                let action = "rds:RestoreDBInstanceFromDBSnapshot";
                self.client
                    .restore_db_instance_from_db_snapshot()
                    .db_instance_identifier(&req.identifier)
                    // An ARN names a snapshot shared from another account.
                    .db_snapshot_identifier(&req.snapshot)
                    .set_db_instance_class(req.class.clone())
                    .set_db_subnet_group_name(req.subnet_group.clone())
                    .set_db_parameter_group_name(req.parameter_group.clone())
                    .set_port(req.port)
                    .multi_az(req.multi_az)
                    .set_vpc_security_group_ids(groups)
                    .set_tags(tags)
                    .send()
                    .await
                    .map_err(|e| self.ctx.sdk(action, Some(&req.identifier), &e))?;
            }
            DbSnapshotKind::Cluster => {
                let action = "rds:RestoreDBClusterFromSnapshot";
                // RDS requires the engine; said here, before any call.
                let Some(engine) = &req.engine else {
                    return Err(self.ctx.error(
                        ErrorKind::Invalid,
                        action,
                        Some(&req.identifier),
                        None,
                        "a cluster is restored with its engine, and none was given".to_owned(),
                    ));
                };
                // The class is not passed: an Aurora cluster takes its
                // instances' classes with CreateDBInstance (see
                // `add_cluster_instance`).
                self.client
                    .restore_db_cluster_from_snapshot()
                    .db_cluster_identifier(&req.identifier)
                    .snapshot_identifier(&req.snapshot)
                    .engine(engine)
                    .set_db_subnet_group_name(req.subnet_group.clone())
                    .set_db_cluster_parameter_group_name(req.parameter_group.clone())
                    .set_port(req.port)
                    .set_vpc_security_group_ids(groups)
                    .set_tags(tags)
                    .send()
                    .await
                    .map_err(|e| self.ctx.sdk(action, Some(&req.identifier), &e))?;
            }
        }
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
        self.client
            .create_db_instance()
            .db_instance_identifier(identifier)
            .db_cluster_identifier(cluster)
            .db_instance_class(class)
            .engine(engine)
            .set_tags(Some(tags_to_sdk(tags)).filter(|t| !t.is_empty()))
            .send()
            .await
            .map_err(|e| self.ctx.sdk("rds:CreateDBInstance", Some(identifier), &e))?;
        Ok(())
    }

    async fn status(
        &self,
        kind: DbSnapshotKind,
        identifier: &str,
    ) -> CloudResult<Option<DbStatus>> {
        let ids = [identifier.to_owned()];
        match kind {
            DbSnapshotKind::Instance => {
                let action = "rds:DescribeDBInstances";
                let out = self
                    .client
                    .describe_db_instances()
                    .set_filters(id_filter("db-instance-id", &ids))
                    .send()
                    .await
                    .map_err(|e| self.ctx.sdk(action, Some(identifier), &e))?;
                Ok(out
                    .db_instances()
                    .iter()
                    .find(|d| d.db_instance_identifier() == Some(identifier))
                    .map(|d| DbStatus {
                        identifier: identifier.to_owned(),
                        status: d.db_instance_status().unwrap_or_default().to_owned(),
                        endpoint: d
                            .endpoint()
                            .and_then(|e| e.address())
                            .filter(|a| !a.is_empty())
                            .map(str::to_owned),
                        tags: tags_from_sdk(d.tag_list()),
                    }))
            }
            DbSnapshotKind::Cluster => {
                let action = "rds:DescribeDBClusters";
                let out = self
                    .client
                    .describe_db_clusters()
                    .set_filters(id_filter("db-cluster-id", &ids))
                    .send()
                    .await
                    .map_err(|e| self.ctx.sdk(action, Some(identifier), &e))?;
                Ok(out
                    .db_clusters()
                    .iter()
                    .find(|c| c.db_cluster_identifier() == Some(identifier))
                    .map(|c| DbStatus {
                        identifier: identifier.to_owned(),
                        status: c.status().unwrap_or_default().to_owned(),
                        endpoint: c.endpoint().filter(|a| !a.is_empty()).map(str::to_owned),
                        tags: tags_from_sdk(c.tag_list()),
                    }))
            }
        }
    }

    async fn delete(&self, kind: DbSnapshotKind, identifier: &str) -> CloudResult<()> {
        // No final snapshot: a drill's database is a copy of data whose
        // backup exists already.
        let res = match kind {
            DbSnapshotKind::Instance => self
                .client
                .delete_db_instance()
                .db_instance_identifier(identifier)
                .skip_final_snapshot(true)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.ctx.sdk("rds:DeleteDBInstance", Some(identifier), &e)),
            DbSnapshotKind::Cluster => self
                .client
                .delete_db_cluster()
                .db_cluster_identifier(identifier)
                .skip_final_snapshot(true)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.ctx.sdk("rds:DeleteDBCluster", Some(identifier), &e)),
        };
        gone_is_done(res)
    }
}
