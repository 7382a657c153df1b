//! The fake's resource control: instance power over the world's
//! instances, hibernation per instance, database power, and what the
//! emulator cannot do: an instance that stays `stopping` (for some looks,
//! or for good), and a database AWS starts again on its own.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;

use super::{tags_match, FakeEc2, World};
use crate::cloud::power::{database_state, Power, PowerKind, PowerState, Powered};
use crate::cloud::{
    CloudError, CloudResult, DbSnapshotKind, ErrorKind, InstanceState, Page, Query,
};

/// The power side of the fake's world.
#[derive(Debug, Default)]
pub struct PowerWorld {
    /// Instances launched with hibernation configured.
    pub hibernation: BTreeSet<String>,
    /// Instances configured for hibernation whose hibernation AWS refuses
    /// (an unencrypted root volume, an agent not ready).
    pub hibernation_refused: BTreeSet<String>,
    /// Instances a StopInstances with `Hibernate` was asked of, in order.
    pub hibernated: Vec<String>,
    /// How many looks a stopped or started instance stays `stopping` or
    /// `pending` (the emulator's change at once).
    pub change_looks: u32,
    /// Instances that stay `stopping` once asked to stop, whatever is
    /// asked again (a stuck instance).
    pub stuck: BTreeSet<String>,
    /// Instances EC2 will not stop or start (a state it refuses, a
    /// protected one): a call naming one of them is refused as a whole,
    /// as EC2 refuses StopInstances for one bad id among many.
    pub refused: BTreeSet<String>,
    /// Looks left, and the state each instance changing gets to.
    changing: BTreeMap<String, (u32, InstanceState)>,
    /// Databases by kind and identifier: their region and status.
    pub databases: BTreeMap<(DbSnapshotKind, String), (String, String)>,
}

impl World {
    /// An RDS instance or Aurora cluster for resource control, `available`.
    pub fn add_power_database(&mut self, kind: DbSnapshotKind, id: &str, region: &str) {
        self.power.databases.insert(
            (kind, id.to_string()),
            (region.to_string(), "available".into()),
        );
    }

    /// A database's status, as AWS would report it.
    pub fn database_status(&self, kind: DbSnapshotKind, id: &str) -> Option<String> {
        let (_, s) = self.power.databases.get(&(kind, id.to_string()))?;
        Some(s.clone())
    }

    /// One look: instances that are changing count down to their state.
    fn look_at_power(&mut self) {
        let mut done = Vec::new();
        for (id, (left, to)) in self.power.changing.iter_mut() {
            if self.power.stuck.contains(id) {
                continue;
            }
            if *left == 0 {
                done.push((id.clone(), *to));
            } else {
                *left -= 1;
            }
        }
        for (id, to) in done {
            self.power.changing.remove(&id);
            if let Some(i) = self.instances.get_mut(&id) {
                i.state = to;
            }
        }
    }

    fn change(&mut self, id: &str, via: InstanceState, to: InstanceState) {
        let looks = self.power.change_looks;
        if let Some(i) = self.instances.get_mut(id) {
            if looks == 0 && !self.power.stuck.contains(id) {
                i.state = to;
            } else {
                i.state = via;
                self.power.changing.insert(id.to_string(), (looks, to));
            }
        }
    }
}

fn state_name(s: InstanceState) -> &'static str {
    match s {
        InstanceState::Pending => "pending",
        InstanceState::Running => "running",
        InstanceState::Stopping => "stopping",
        InstanceState::Stopped => "stopped",
        InstanceState::ShuttingDown => "shutting-down",
        InstanceState::Terminated => "terminated",
    }
}

impl FakeEc2 {
    /// The whole call refused when it names a refused instance.
    fn refuse_any(&self, w: &World, action: &str, ids: &[String]) -> CloudResult<()> {
        match ids.iter().find(|id| w.power.refused.contains(*id)) {
            Some(id) => Err(self.refuse(
                action,
                id,
                "IncorrectInstanceState",
                format!("{id} is not in a state from which it can be stopped or started"),
            )),
            None => Ok(()),
        }
    }

    fn refuse(&self, action: &str, id: &str, code: &str, message: String) -> CloudError {
        CloudError {
            kind: ErrorKind::Conflict,
            account: self.account.clone(),
            region: self.region.clone(),
            action: action.into(),
            resource: Some(id.to_string()),
            code: Some(code.into()),
            message,
        }
    }
}

#[async_trait]
impl Power for FakeEc2 {
    async fn instances_power(
        &self,
        q: &Query,
        token: Option<String>,
    ) -> CloudResult<Page<Powered>> {
        let mut w = self.enter("DescribeInstances", None)?;
        self.filter_size("DescribeInstances", q.ids.len())?;
        w.look_at_power();
        let all = w
            .instances
            .values()
            .filter(|i| {
                i.region == self.region
                    && (q.ids.is_empty() || q.ids.contains(&i.id))
                    && tags_match(&q.tags, &i.tags)
            })
            .map(|i| Powered {
                id: i.id.clone(),
                kind: PowerKind::Instance,
                state: match i.state {
                    InstanceState::Running => PowerState::Running,
                    InstanceState::Stopped => PowerState::Stopped,
                    InstanceState::Pending | InstanceState::Stopping => PowerState::Changing,
                    InstanceState::ShuttingDown | InstanceState::Terminated => PowerState::Gone,
                },
                detail: state_name(i.state).into(),
                hibernation: w.power.hibernation.contains(&i.id),
                tags: i.tags.clone(),
            })
            .collect();
        Ok(self.page("DescribeInstances", all, token))
    }

    async fn stop_instances(&self, ids: &[String], hibernate: bool) -> CloudResult<()> {
        let mut w = self.enter("StopInstances", ids.first().map(String::as_str))?;
        self.refuse_any(&w, "ec2:StopInstances", ids)?;
        for id in ids {
            if hibernate
                && (!w.power.hibernation.contains(id) || w.power.hibernation_refused.contains(id))
            {
                return Err(self.refuse(
                    "ec2:StopInstances",
                    id,
                    "UnsupportedHibernationConfiguration",
                    format!("{id} is not configured for hibernation"),
                ));
            }
        }
        for id in ids {
            if hibernate {
                w.power.hibernated.push(id.clone());
            }
            let running = w.instances.get(id).is_some_and(|i| {
                matches!(i.state, InstanceState::Running | InstanceState::Stopping)
            });
            if running {
                w.change(id, InstanceState::Stopping, InstanceState::Stopped);
            }
        }
        Ok(())
    }

    async fn start_instances(&self, ids: &[String]) -> CloudResult<()> {
        let mut w = self.enter("StartInstances", ids.first().map(String::as_str))?;
        self.refuse_any(&w, "ec2:StartInstances", ids)?;
        for id in ids {
            let stopped = w
                .instances
                .get(id)
                .is_some_and(|i| i.state == InstanceState::Stopped);
            if stopped {
                w.change(id, InstanceState::Pending, InstanceState::Running);
            }
        }
        Ok(())
    }

    async fn databases_power(
        &self,
        kind: DbSnapshotKind,
        ids: &[String],
        token: Option<String>,
    ) -> CloudResult<Page<Powered>> {
        let action = match kind {
            DbSnapshotKind::Instance => "DescribeDBInstances",
            DbSnapshotKind::Cluster => "DescribeDBClusters",
        };
        let w = self.enter(action, None)?;
        let all = w
            .power
            .databases
            .iter()
            .filter(|((k, id), (region, _))| {
                *k == kind && *region == self.region && ids.contains(id)
            })
            .map(|((_, id), (_, status))| Powered {
                id: id.clone(),
                kind: match kind {
                    DbSnapshotKind::Instance => PowerKind::Rds,
                    DbSnapshotKind::Cluster => PowerKind::Aurora,
                },
                state: database_state(status),
                detail: status.clone(),
                hibernation: false,
                tags: Default::default(),
            })
            .collect();
        Ok(self.page(action, all, token))
    }

    async fn stop_database(&self, kind: DbSnapshotKind, id: &str) -> CloudResult<()> {
        self.set_database(kind, id, "Stop", "available", "stopped")
    }

    async fn start_database(&self, kind: DbSnapshotKind, id: &str) -> CloudResult<()> {
        self.set_database(kind, id, "Start", "stopped", "available")
    }
}

impl FakeEc2 {
    /// A database stop or start: refused unless the database is `from`,
    /// as RDS refuses it (`InvalidDBInstanceState`).
    fn set_database(
        &self,
        kind: DbSnapshotKind,
        id: &str,
        verb: &str,
        from: &str,
        to: &str,
    ) -> CloudResult<()> {
        let noun = match kind {
            DbSnapshotKind::Instance => "DBInstance",
            DbSnapshotKind::Cluster => "DBCluster",
        };
        let action = format!("{verb}{noun}");
        let mut w = self.enter(&action, Some(id))?;
        let Some((_, status)) = w.power.databases.get_mut(&(kind, id.to_string())) else {
            return Err(CloudError {
                kind: ErrorKind::NotFound,
                ..self.refuse(
                    &format!("rds:{action}"),
                    id,
                    &format!("{noun}NotFound"),
                    format!("{id} not found"),
                )
            });
        };
        if status != from {
            return Err(self.refuse(
                &format!("rds:{action}"),
                id,
                &format!("Invalid{noun}State"),
                format!("{id} is {status}"),
            ));
        }
        *status = to.to_string();
        Ok(())
    }
}
