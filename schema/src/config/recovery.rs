//! `recovery_scenario "NAME" { .. }`: what `lifeboat recover` restores, where,
//! in which order, how the result is checked, and how often run mode
//! rehearses it as a drill.

use serde::{Deserialize, Serialize};

use crate::diag::Location;

/// `check.timeout` when unset: ten minutes.
pub const DEFAULT_CHECK_TIMEOUT_SECS: u64 = 600;
/// `drill.keep_for` when unset: an hour.
pub const DEFAULT_DRILL_KEEP_FOR_SECS: u64 = 3600;
/// The shortest `drill.every`: a drill restores real resources, so it is
/// not something to repeat every few minutes.
pub const MIN_DRILL_EVERY_SECS: u64 = 3600;

/// One `recovery_scenario` block, checked: every reference resolved, the
/// steps' `after` graph acyclic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryScenario {
    pub name: String,
    /// `account = account.X`: the account recovered into, by name; `None`:
    /// each target's backup account.
    pub account: Option<String>,
    /// `region = "…"`: the region recovered into; `None`: each target's
    /// backup region.
    pub region: Option<String>,
    /// `from`: the policy's own backups or their DR copies.
    pub from: RecoverFrom,
    /// `network = vpc_clone.X`: the clone whose subnets and security groups
    /// replace the originals', by name.
    pub network: Option<String>,
    /// The `step` blocks in declaration order (see [`RecoveryScenario::waves`]
    /// for the order they run in).
    pub steps: Vec<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<Check>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<Drill>,
    #[serde(skip)]
    pub location: Location,
}

/// Where the restored resources come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoverFrom {
    /// The backups themselves, in the targets' own account and region.
    #[default]
    Local,
    /// The DR copies held in the scenario's `region` and/or `account`.
    Dr,
}

/// `step "NAME" { instances = [..] | volumes = [..] | rds = ".." | aurora = ".." .. }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub kind: StepKind,
    /// Steps of the same scenario that must be finished before this one
    /// starts (names checked, no cycle).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// `instance_type` for the restored instances (instances steps only);
    /// `None`: each instance's type at backup time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// `class`: the DB instance class (rds and aurora steps only); `None`:
    /// the class at backup time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// `subnet = "subnet-…"`: overrides the subnet the network mapping gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// `security_groups = ["sg-…"]`: overrides the mapped security groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
    #[serde(skip)]
    pub location: Location,
}

/// What one step restores: exactly one kind of resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// EC2 instance ids (`i-…`), at least one, no duplicates.
    Instances(Vec<String>),
    /// EBS volume ids (`vol-…`), at least one, no duplicates.
    Volumes(Vec<String>),
    /// An RDS DB instance identifier.
    Rds(String),
    /// An Aurora DB cluster identifier.
    Aurora(String),
}

/// `check { script = "path"  timeout = "10m" }`: run after the steps, with
/// the new resources' ids and endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// As written: relative paths are the engine's to resolve.
    pub script: String,
    pub timeout_secs: u64,
}

/// `drill { every = "7d"  keep_for = "2h" }`: run mode rehearses the
/// scenario every `every`, keeps what it made for `keep_for`, then tears it down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drill {
    /// At least [`MIN_DRILL_EVERY_SECS`].
    pub every_secs: u64,
    /// Longer than zero, at most `every_secs`.
    pub keep_for_secs: u64,
}

impl RecoveryScenario {
    /// The step named `name`.
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// The steps in the order they may run: each wave holds the steps whose
    /// `after` steps are all in earlier waves, in declaration order. Steps of
    /// one wave may run together. Relies on the graph being acyclic, which
    /// loading checks; a step left in a cycle (a hand-built value) is not
    /// returned.
    pub fn waves(&self) -> Vec<Vec<&Step>> {
        let mut done: std::collections::HashSet<&str> = std::collections::HashSet::new();
        let mut left: Vec<&Step> = self.steps.iter().collect();
        let mut waves = Vec::new();
        loop {
            let (ready, rest): (Vec<&Step>, Vec<&Step>) = left
                .into_iter()
                .partition(|s| s.after.iter().all(|a| done.contains(a.as_str())));
            if ready.is_empty() {
                return waves;
            }
            done.extend(ready.iter().map(|s| s.name.as_str()));
            waves.push(ready);
            left = rest;
        }
    }
}

impl StepKind {
    /// The attribute that declares this kind: `instances`, `volumes`, `rds`, `aurora`.
    pub fn keyword(&self) -> &'static str {
        match self {
            StepKind::Instances(_) => "instances",
            StepKind::Volumes(_) => "volumes",
            StepKind::Rds(_) => "rds",
            StepKind::Aurora(_) => "aurora",
        }
    }
}

impl crate::config::Config {
    /// The `recovery_scenario` named `name`.
    pub fn recovery_scenario(&self, name: &str) -> Option<&RecoveryScenario> {
        self.recovery_scenarios.iter().find(|s| s.name == name)
    }
}
