//! Recovery scenarios (`recovery_scenario` blocks) and their drills.
//!
//! - [`scenario`] plans a scenario: one restore plan per target of every
//!   step, wave by wave in `after` order, each planned like a single
//!   `lifeboat restore`; a bad target is an error naming its step.
//! - [`network`] maps the original subnets and security groups to those of
//!   the scenario's `network` clone.
//! - [`recover`] performs a scenario plan: the restores of one wave at once
//!   (a few at a time), no new wave after a failure, and per step the time
//!   until ready (RTO) and the age of the backups used (RPO).
//! - [`health`] waits for a drill's instances to pass EC2's status checks.
//! - [`drill`] rehearses a scenario: recover, run its check, tear down
//!   exactly what the drill's restore records list, and record the result;
//!   [`drill::reconcile`] tears down the drills of processes that died.

pub mod drill;
pub mod health;
pub mod network;
pub mod recover;
pub mod scenario;
pub mod teardown;

use crate::restore::RestoreError;
use crate::state::StateError;

pub use recover::{RecoveryReport, StepReport};
pub use scenario::{ScenarioPlan, StepPlan};

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// No `recovery_scenario` of that name.
    #[error("no recovery_scenario {0:?} in the configuration")]
    Unknown(String),
    /// A target of a step cannot be restored: nothing was created.
    #[error("step {step:?}, {target}: {source}")]
    Plan {
        step: String,
        target: String,
        #[source]
        source: RestoreError,
    },
    /// A step the configuration cannot express yet, or a scenario that
    /// cannot be planned as written.
    #[error("step {step:?}: {message}")]
    Step { step: String, message: String },
    /// The scenario's `network` clone cannot be mapped.
    #[error("network = vpc_clone.{clone}: {message}")]
    Network { clone: String, message: String },
    #[error(transparent)]
    State(#[from] StateError),
}

/// A new drill id: `d-`, the time, and random hex.
pub fn new_drill_id(now: chrono::DateTime<chrono::Utc>) -> String {
    let hex: String = crate::state::new_id()
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(8)
        .collect();
    format!("d-{}-{hex}", now.format("%Y%m%dt%H%M%S"))
}
