//! [`Rds`] on the SDK for one account and region: each method is one call.

use async_trait::async_trait;
use aws_sdk_rds::types::{Filter, Tag};
use aws_sdk_rds::Client;
use lifeboat_engine::cloud::{
    CloudResult, DbSnapshot, DbSnapshotKind, DbSnapshotRequest, ErrorKind, Page, Rds, Tags,
};

use crate::convert::time_from_sdk;
use crate::error::ErrorContext;

/// RDS accepts 20 to 100 records per page.
const PAGE_SIZE: i32 = 100;

pub(crate) struct AwsRds {
    client: Client,
    ctx: ErrorContext,
}

impl AwsRds {
    pub(crate) fn new(client: Client, ctx: ErrorContext) -> Self {
        Self { client, ctx }
    }
}

fn tags_from_sdk(tags: &[Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

fn tags_to_sdk(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The id filter, or none for "all".
fn id_filter(name: &str, ids: &[String]) -> Option<Vec<Filter>> {
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
                    id: s
                        .db_snapshot_identifier()
                        .unwrap_or(&req.snapshot_id)
                        .to_owned(),
                    source_id: req.source_id.clone(),
                    status: s.status().unwrap_or("creating").to_owned(),
                    created: time_from_sdk(s.snapshot_create_time()),
                    tags: tags_from_sdk(s.tag_list()),
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
                    id: s
                        .db_cluster_snapshot_identifier()
                        .unwrap_or(&req.snapshot_id)
                        .to_owned(),
                    source_id: req.source_id.clone(),
                    status: s.status().unwrap_or("creating").to_owned(),
                    created: time_from_sdk(s.snapshot_create_time()),
                    tags: tags_from_sdk(s.tag_list()),
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
                                id: s.db_snapshot_identifier()?.to_owned(),
                                source_id: s
                                    .db_instance_identifier()
                                    .unwrap_or_default()
                                    .to_owned(),
                                status: s.status().unwrap_or_default().to_owned(),
                                created: time_from_sdk(s.snapshot_create_time()),
                                tags: tags_from_sdk(s.tag_list()),
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
                                id: s.db_cluster_snapshot_identifier()?.to_owned(),
                                source_id: s.db_cluster_identifier().unwrap_or_default().to_owned(),
                                status: s.status().unwrap_or_default().to_owned(),
                                created: time_from_sdk(s.snapshot_create_time()),
                                tags: tags_from_sdk(s.tag_list()),
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
}
