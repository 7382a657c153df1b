//! [`Rds`] on the SDK for one account and region: each method is one call.

use async_trait::async_trait;
use aws_sdk_rds::types::{DbClusterSnapshot, Filter, Tag};
use aws_sdk_rds::Client;
use lifeboat_engine::cloud::{
    CloudResult, Database, DbCopyRequest, DbSnapshot, DbSnapshotKind, DbSnapshotRequest,
    Encryption, ErrorKind, Page, Rds, Tags,
};

use crate::convert::time_from_sdk;
use crate::error::ErrorContext;

/// RDS accepts 20 to 100 records per page.
pub(crate) const PAGE_SIZE: i32 = 100;

pub(crate) struct AwsRds {
    pub(crate) client: Client,
    pub(crate) ctx: ErrorContext,
}

impl AwsRds {
    pub(crate) fn new(client: Client, ctx: ErrorContext) -> Self {
        Self { client, ctx }
    }
}

pub(crate) fn tags_from_sdk(tags: &[Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

pub(crate) fn tags_to_sdk(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// How RDS says a snapshot is encrypted (`Encrypted` of a DB snapshot,
/// `StorageEncrypted` of a cluster snapshot). The key only counts for an
/// encrypted one.
fn encryption(encrypted: Option<bool>, kms_key_id: Option<&str>) -> Encryption {
    let encrypted = encrypted.unwrap_or(false);
    Encryption {
        encrypted,
        kms_key_id: kms_key_id
            .filter(|k| encrypted && !k.is_empty())
            .map(str::to_owned),
    }
}

/// A DB instance snapshot as the engine sees it; `id` and `source_id`
/// stand in for what the answer leaves out.
fn instance_snapshot(s: &aws_sdk_rds::types::DbSnapshot, id: &str, source_id: &str) -> DbSnapshot {
    DbSnapshot {
        id: s.db_snapshot_identifier().unwrap_or(id).to_owned(),
        source_id: s.db_instance_identifier().unwrap_or(source_id).to_owned(),
        status: s.status().unwrap_or("creating").to_owned(),
        created: time_from_sdk(s.snapshot_create_time()),
        tags: tags_from_sdk(s.tag_list()),
        arn: s.db_snapshot_arn().unwrap_or_default().to_owned(),
        encryption: encryption(s.encrypted(), s.kms_key_id()),
    }
}

/// An Aurora cluster snapshot as the engine sees it.
fn cluster_snapshot(s: &DbClusterSnapshot, id: &str, source_id: &str) -> DbSnapshot {
    DbSnapshot {
        id: s.db_cluster_snapshot_identifier().unwrap_or(id).to_owned(),
        source_id: s.db_cluster_identifier().unwrap_or(source_id).to_owned(),
        status: s.status().unwrap_or("creating").to_owned(),
        created: time_from_sdk(s.snapshot_create_time()),
        tags: tags_from_sdk(s.tag_list()),
        arn: s.db_cluster_snapshot_arn().unwrap_or_default().to_owned(),
        encryption: encryption(s.storage_encrypted(), s.kms_key_id()),
    }
}

/// The id filter, or none for "all".
pub(crate) fn id_filter(name: &str, ids: &[String]) -> Option<Vec<Filter>> {
    if ids.is_empty() {
        return None;
    }
    Some(vec![Filter::builder()
        .name(name)
        .set_values(Some(ids.to_vec()))
        .build()])
}

#[async_trait]
impl Rds for AwsRds {
    async fn databases_page(
        &self,
        kind: DbSnapshotKind,
        token: Option<String>,
    ) -> CloudResult<Page<Database>> {
        let next = |m: Option<&str>| m.filter(|m| !m.is_empty()).map(str::to_owned);
        let region = &self.ctx.region;
        match kind {
            DbSnapshotKind::Instance => {
                let action = "rds:DescribeDBInstances";
                let out = self
                    .client
                    .describe_db_instances()
                    .max_records(PAGE_SIZE)
                    .set_marker(token)
                    .send()
                    .await
                    .map_err(|e| self.ctx.sdk(action, None, &e))?;
                let items = out
                    .db_instances()
                    .iter()
                    .filter_map(|d| {
                        Some(Database {
                            id: d.db_instance_identifier()?.to_owned(),
                            kind,
                            region: region.clone(),
                            status: d.db_instance_status().unwrap_or_default().to_owned(),
                            tags: tags_from_sdk(d.tag_list()),
                            cluster: d.db_cluster_identifier().map(str::to_owned),
                        })
                    })
                    .collect();
                Ok(Page {
                    items,
                    next: next(out.marker()),
                    call: self.ctx.call(action),
                })
            }
            DbSnapshotKind::Cluster => {
                let action = "rds:DescribeDBClusters";
                let out = self
                    .client
                    .describe_db_clusters()
                    .max_records(PAGE_SIZE)
                    .set_marker(token)
                    .send()
                    .await
                    .map_err(|e| self.ctx.sdk(action, None, &e))?;
                let items = out
                    .db_clusters()
                    .iter()
                    .filter_map(|c| {
                        Some(Database {
                            id: c.db_cluster_identifier()?.to_owned(),
                            kind,
                            region: region.clone(),
                            status: c.status().unwrap_or_default().to_owned(),
                            tags: tags_from_sdk(c.tag_list()),
                            cluster: None,
                        })
                    })
                    .collect();
                Ok(Page {
                    items,
                    next: next(out.marker()),
                    call: self.ctx.call(action),
                })
            }
        }
    }

    async fn create_db_snapshot(&self, req: &DbSnapshotRequest) -> CloudResult<DbSnapshot> {
        let missing = |action: &str| {
            self.ctx.error(
                ErrorKind::Other,
                action,
                Some(&req.source_id),
                None,
                "the answer carried no snapshot".to_owned(),
            )
        };
        match req.kind {
            DbSnapshotKind::Instance => {
                let action = "rds:CreateDBSnapshot";
                let out = self
                    .client
                    .create_db_snapshot()
                    .db_instance_identifier(&req.source_id)
                    .db_snapshot_identifier(&req.snapshot_id)
                    .set_tags(Some(tags_to_sdk(&req.tags)))
                    .send()
                    .await
                    .map_err(|e| self.ctx.sdk(action, Some(&req.source_id), &e))?;
                let s = out.db_snapshot().ok_or_else(|| missing(action))?;
                Ok(DbSnapshot {
                    source_id: req.source_id.clone(),
                    ..instance_snapshot(s, &req.snapshot_id, &req.source_id)
                })
            }
            DbSnapshotKind::Cluster => {
                let action = "rds:CreateDBClusterSnapshot";
                let out = self
                    .client
                    .create_db_cluster_snapshot()
                    .db_cluster_identifier(&req.source_id)
                    .db_cluster_snapshot_identifier(&req.snapshot_id)
                    .set_tags(Some(tags_to_sdk(&req.tags)))
                    .send()
                    .await
                    .map_err(|e| self.ctx.sdk(action, Some(&req.source_id), &e))?;
                let s = out.db_cluster_snapshot().ok_or_else(|| missing(action))?;
                Ok(DbSnapshot {
                    source_id: req.source_id.clone(),
                    ..cluster_snapshot(s, &req.snapshot_id, &req.source_id)
                })
            }
        }
    }

    async fn db_snapshots_page(
        &self,
        kind: DbSnapshotKind,
        ids: &[String],
        token: Option<String>,
    ) -> CloudResult<Page<DbSnapshot>> {
        let next = |m: Option<&str>| m.filter(|m| !m.is_empty()).map(str::to_owned);
        match kind {
            DbSnapshotKind::Instance => {
                let out = self
                    .client
                    .describe_db_snapshots()
                    .set_filters(id_filter("db-snapshot-id", ids))
                    .max_records(PAGE_SIZE)
                    .set_marker(token)
                    .send()
                    .await
                    .map_err(|e| self.ctx.sdk("rds:DescribeDBSnapshots", None, &e))?;
                Ok(Page {
                    items: out
                        .db_snapshots()
                        .iter()
                        .filter_map(|s| {
                            Some(DbSnapshot {
                                status: s.status().unwrap_or_default().to_owned(),
                                ..instance_snapshot(s, s.db_snapshot_identifier()?, "")
                            })
                        })
                        .collect(),
                    next: next(out.marker()),
                    call: self.ctx.call("rds:DescribeDBSnapshots"),
                })
            }
            DbSnapshotKind::Cluster => {
                let out = self
                    .client
                    .describe_db_cluster_snapshots()
                    .set_filters(id_filter("db-cluster-snapshot-id", ids))
                    .max_records(PAGE_SIZE)
                    .set_marker(token)
                    .send()
                    .await
                    .map_err(|e| self.ctx.sdk("rds:DescribeDBClusterSnapshots", None, &e))?;
                Ok(Page {
                    items: out
                        .db_cluster_snapshots()
                        .iter()
                        .filter_map(|s| {
                            Some(DbSnapshot {
                                status: s.status().unwrap_or_default().to_owned(),
                                ..cluster_snapshot(s, s.db_cluster_snapshot_identifier()?, "")
                            })
                        })
                        .collect(),
                    next: next(out.marker()),
                    call: self.ctx.call("rds:DescribeDBClusterSnapshots"),
                })
            }
        }
    }

    async fn delete_db_snapshot(&self, kind: DbSnapshotKind, id: &str) -> CloudResult<()> {
        let res = match kind {
            DbSnapshotKind::Instance => self
                .client
                .delete_db_snapshot()
                .db_snapshot_identifier(id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.ctx.sdk("rds:DeleteDBSnapshot", Some(id), &e)),
            DbSnapshotKind::Cluster => self
                .client
                .delete_db_cluster_snapshot()
                .db_cluster_snapshot_identifier(id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.ctx.sdk("rds:DeleteDBClusterSnapshot", Some(id), &e)),
        };
        match res {
            // Already gone is the goal reached: retention may run twice.
            Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    async fn copy_db_snapshot(&self, req: &DbCopyRequest) -> CloudResult<DbSnapshot> {
        // The source is named by ARN, which carries its region. No
        // SourceRegion: it is not an RDS parameter but an SDK convenience
        // that builds PreSignedUrl, which this SDK does not offer, and RDS
        // only reads PreSignedUrl in GovCloud (elsewhere it reaches into
        // the source region itself, encrypted or not).
        let missing = |action: &str| {
            self.ctx.error(
                ErrorKind::Other,
                action,
                Some(&req.source_arn),
                None,
                "the answer carried no snapshot".to_owned(),
            )
        };
        // CopyTags false: the copy carries exactly the engine's tags.
        match req.kind {
            DbSnapshotKind::Instance => {
                let action = "rds:CopyDBSnapshot";
                let out = self
                    .client
                    .copy_db_snapshot()
                    .source_db_snapshot_identifier(&req.source_arn)
                    .target_db_snapshot_identifier(&req.target_id)
                    .set_tags(Some(tags_to_sdk(&req.tags)).filter(|t| !t.is_empty()))
                    .set_kms_key_id(req.kms_key_id.clone())
                    .copy_tags(false)
                    .send()
                    .await
                    .map_err(|e| self.ctx.sdk(action, Some(&req.source_arn), &e))?;
                let s = out.db_snapshot().ok_or_else(|| missing(action))?;
                Ok(instance_snapshot(s, &req.target_id, ""))
            }
            DbSnapshotKind::Cluster => {
                let action = "rds:CopyDBClusterSnapshot";
                let out = self
                    .client
                    .copy_db_cluster_snapshot()
                    .source_db_cluster_snapshot_identifier(&req.source_arn)
                    .target_db_cluster_snapshot_identifier(&req.target_id)
                    .set_tags(Some(tags_to_sdk(&req.tags)).filter(|t| !t.is_empty()))
                    .set_kms_key_id(req.kms_key_id.clone())
                    .copy_tags(false)
                    .send()
                    .await
                    .map_err(|e| self.ctx.sdk(action, Some(&req.source_arn), &e))?;
                let s = out.db_cluster_snapshot().ok_or_else(|| missing(action))?;
                Ok(cluster_snapshot(s, &req.target_id, ""))
            }
        }
    }

    async fn share_db_snapshot(
        &self,
        kind: DbSnapshotKind,
        id: &str,
        account_id: &str,
        share: bool,
    ) -> CloudResult<()> {
        let (add, remove) = if share {
            (Some(vec![account_id.to_owned()]), None)
        } else {
            (None, Some(vec![account_id.to_owned()]))
        };
        match kind {
            DbSnapshotKind::Instance => self
                .client
                .modify_db_snapshot_attribute()
                .db_snapshot_identifier(id)
                .attribute_name("restore")
                .set_values_to_add(add)
                .set_values_to_remove(remove)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.ctx.sdk("rds:ModifyDBSnapshotAttribute", Some(id), &e)),
            DbSnapshotKind::Cluster => self
                .client
                .modify_db_cluster_snapshot_attribute()
                .db_cluster_snapshot_identifier(id)
                .attribute_name("restore")
                .set_values_to_add(add)
                .set_values_to_remove(remove)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    self.ctx
                        .sdk("rds:ModifyDBClusterSnapshotAttribute", Some(id), &e)
                }),
        }
    }

    async fn tag_db_snapshot(&self, arn: &str, tags: &Tags) -> CloudResult<()> {
        self.client
            .add_tags_to_resource()
            .resource_name(arn)
            .set_tags(Some(tags_to_sdk(tags)))
            .send()
            .await
            .map_err(|e| self.ctx.sdk("rds:AddTagsToResource", Some(arn), &e))?;
        Ok(())
    }
}
