//! The Lifeboat engine: everything Lifeboat decides, grouped by feature.
//!
//! - [`cloud`]: the ports to AWS (traits, [`cloud::CloudError`], paging) and
//!   the network values they return.
//! - [`state`]: the SQLite store, its transactions and lease, the backup
//!   catalog, and typed views of the managed objects.
//! - [`plan`]: the plan value, the planner (observe, diff), the dependency
//!   graph, the executor (`apply`) and the renderers.
//! - [`retention`]: the one place that decides which backups expire.
//! - [`membership`]: who is in a policy, decided again by each backup
//!   (selectors and tags live, targets gone from AWS).
//! - [`backup`]: taking one backup of a policy, waiting for it, reconciling
//!   interrupted ones.
//! - [`dr`]: disaster-recovery copies of backups to other regions and
//!   accounts, with their status per destination.
//! - [`runmode`]: schedules, what is due and when, the runner, one attempt of
//!   a policy run, alerts and summaries.
//! - [`vpc`]: capture, CloudFormation export and clones of VPCs.
//! - [`restore`]: restores of instances, volumes and databases from a
//!   backup or a DR copy, planned first, each creation recorded.
//! - [`recovery`]: recovery scenarios planned and performed wave by wave,
//!   and drills that rehearse them and tear down what they made.
//! - [`share`]: shares of artifacts with other accounts, each held by
//!   whoever needs it and undone by the last holder.
//! - [`iam`]: the managed DR role, the minimal policy Lifeboat needs, and
//!   the secured-DR check.
//! - `testing` (feature `testing`): the in-memory fake cloud for tests and
//!   benchmarks.
//!
//! Must not import: any AWS SDK crate (`aws-*`) or the providers crate. AWS is
//! reached only through the traits in [`cloud`], which the providers crate
//! implements with the SDK and tests implement with in-memory fakes.

pub mod addr;
pub mod backup;
pub mod cloud;
pub mod control;
pub mod dr;
pub mod failpoint;
pub mod iam;
pub mod membership;
pub mod plan;
pub mod recovery;
pub mod report;
pub mod restore;
pub mod retention;
pub mod runmode;
pub mod share;
pub mod state;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod vpc;

pub use addr::Address;
