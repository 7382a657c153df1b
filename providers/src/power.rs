//! [`Power`] on the SDK: instance and database power states, and the
//! stop, hibernate and start calls of resource control. One SDK call per
//! method; the describes filter by id or tag, one page at a time.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_rds::types::{DbCluster, DbInstance};
use lifeboat_engine::cloud::power::{database_state, Power, PowerKind, PowerState, Powered};
use lifeboat_engine::cloud::{CloudResult, DbSnapshotKind, InstanceState, Page, Query};

use crate::convert::{build_filters, instance_state, sdk_filters, tags_from_sdk};
use crate::ec2::{next_token, AwsEc2, PAGE_SIZE};
use crate::rds::{id_filter, AwsRds, PAGE_SIZE as RDS_PAGE_SIZE};

/// EC2 and RDS of one account and region.
pub(crate) struct AwsPower {
    pub(crate) ec2: Arc<AwsEc2>,
    pub(crate) rds: AwsRds,
}

fn instance_power(state: InstanceState) -> PowerState {
    match state {
        InstanceState::Running => PowerState::Running,
        InstanceState::Stopped => PowerState::Stopped,
        InstanceState::Pending | InstanceState::Stopping => PowerState::Changing,
        InstanceState::ShuttingDown | InstanceState::Terminated => PowerState::Gone,
    }
}

fn db_instance(d: &DbInstance) -> Option<Powered> {
    let status = d.db_instance_status().unwrap_or_default();
    Some(Powered {
        id: d.db_instance_identifier()?.to_owned(),
        kind: PowerKind::Rds,
        state: database_state(status),
        detail: status.to_owned(),
        hibernation: false,
        tags: crate::rds::tags_from_sdk(d.tag_list()),
    })
}

fn db_cluster(c: &DbCluster) -> Option<Powered> {
    let status = c.status().unwrap_or_default();
    Some(Powered {
        id: c.db_cluster_identifier()?.to_owned(),
        kind: PowerKind::Aurora,
        state: database_state(status),
        detail: status.to_owned(),
        hibernation: false,
        tags: crate::rds::tags_from_sdk(c.tag_list()),
    })
}

#[async_trait]
impl Power for AwsPower {
    async fn instances_power(
        &self,
        q: &Query,
        token: Option<String>,
    ) -> CloudResult<Page<Powered>> {
        let action = "ec2:DescribeInstances";
        let filters = sdk_filters(build_filters(None, "instance-id", &q.ids, &q.tags));
        let out = self
            .ec2
            .client
            .describe_instances()
            .set_filters(Some(filters).filter(|f| !f.is_empty()))
            .max_results(PAGE_SIZE)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| self.ec2.ctx.sdk(action, None, &e))?;
        let mut items = Vec::new();
        for i in out.reservations().iter().flat_map(|r| r.instances()) {
            let Some(id) = i.instance_id() else { continue };
            let state = i.state();
            let name = state.and_then(|s| s.name()).map(|n| n.as_str());
            items.push(Powered {
                id: id.to_owned(),
                kind: PowerKind::Instance,
                state: instance_power(instance_state(name, state.and_then(|s| s.code()))),
                detail: name.unwrap_or_default().to_owned(),
                hibernation: i
                    .hibernation_options()
                    .and_then(|h| h.configured())
                    .unwrap_or(false),
                tags: tags_from_sdk(i.tags()),
            });
        }
        Ok(Page {
            items,
            next: next_token(out.next_token()),
            call: self.ec2.ctx.call(action),
        })
    }

    async fn stop_instances(&self, ids: &[String], hibernate: bool) -> CloudResult<()> {
        let action = "ec2:StopInstances";
        self.ec2
            .client
            .stop_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .set_hibernate(hibernate.then_some(true))
            .send()
            .await
            .map_err(|e| {
                self.ec2
                    .ctx
                    .sdk(action, ids.first().map(String::as_str), &e)
            })?;
        Ok(())
    }

    async fn start_instances(&self, ids: &[String]) -> CloudResult<()> {
        let action = "ec2:StartInstances";
        self.ec2
            .client
            .start_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(|e| {
                self.ec2
                    .ctx
                    .sdk(action, ids.first().map(String::as_str), &e)
            })?;
        Ok(())
    }

    async fn databases_power(
        &self,
        kind: DbSnapshotKind,
        ids: &[String],
        token: Option<String>,
    ) -> CloudResult<Page<Powered>> {
        let next = |m: Option<&str>| m.filter(|m| !m.is_empty()).map(str::to_owned);
        match kind {
            DbSnapshotKind::Instance => {
                let action = "rds:DescribeDBInstances";
                let out = self
                    .rds
                    .client
                    .describe_db_instances()
                    .set_filters(id_filter("db-instance-id", ids))
                    .max_records(RDS_PAGE_SIZE)
                    .set_marker(token)
                    .send()
                    .await
                    .map_err(|e| self.rds.ctx.sdk(action, None, &e))?;
                Ok(Page {
                    items: out.db_instances().iter().filter_map(db_instance).collect(),
                    next: next(out.marker()),
                    call: self.rds.ctx.call(action),
                })
            }
            DbSnapshotKind::Cluster => {
                let action = "rds:DescribeDBClusters";
                let out = self
                    .rds
                    .client
                    .describe_db_clusters()
                    .set_filters(id_filter("db-cluster-id", ids))
                    .max_records(RDS_PAGE_SIZE)
                    .set_marker(token)
                    .send()
                    .await
                    .map_err(|e| self.rds.ctx.sdk(action, None, &e))?;
                Ok(Page {
                    items: out.db_clusters().iter().filter_map(db_cluster).collect(),
                    next: next(out.marker()),
                    call: self.rds.ctx.call(action),
                })
            }
        }
    }

    async fn stop_database(&self, kind: DbSnapshotKind, id: &str) -> CloudResult<()> {
        let c = &self.rds.client;
        match kind {
            DbSnapshotKind::Instance => c
                .stop_db_instance()
                .db_instance_identifier(id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.rds.ctx.sdk("rds:StopDBInstance", Some(id), &e)),
            DbSnapshotKind::Cluster => c
                .stop_db_cluster()
                .db_cluster_identifier(id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.rds.ctx.sdk("rds:StopDBCluster", Some(id), &e)),
        }
    }

    async fn start_database(&self, kind: DbSnapshotKind, id: &str) -> CloudResult<()> {
        let c = &self.rds.client;
        match kind {
            DbSnapshotKind::Instance => c
                .start_db_instance()
                .db_instance_identifier(id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.rds.ctx.sdk("rds:StartDBInstance", Some(id), &e)),
            DbSnapshotKind::Cluster => c
                .start_db_cluster()
                .db_cluster_identifier(id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.rds.ctx.sdk("rds:StartDBCluster", Some(id), &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_states_map_to_power_states() {
        assert_eq!(instance_power(InstanceState::Running), PowerState::Running);
        assert_eq!(
            instance_power(InstanceState::Stopping),
            PowerState::Changing
        );
        assert_eq!(instance_power(InstanceState::Terminated), PowerState::Gone);
        assert_eq!(database_state("stopped"), PowerState::Stopped);
        assert_eq!(database_state("starting"), PowerState::Changing);
    }
}
