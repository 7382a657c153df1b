//! The Lifeboat engine: addresses, state and catalog, the planner, the plan
//! graph and its executor, backups and retention.
//!
//! Owns the decisions: what is a target, which backups expire, what a plan
//! contains and in which order apply performs it. Main types: [`Address`],
//! [`plan::Plan`], [`state::Store`], the [`cloud::Cloud`] door to AWS.
//!
//! Must not import: any AWS SDK crate (`aws-*`) or the providers crate. AWS is
//! reached only through the traits in [`cloud`], which the providers crate
//! implements with the SDK and tests implement with in-memory fakes.

pub mod addr;
pub mod cloud;
pub mod model;
pub mod plan;
pub mod planner;
pub mod retention;
pub mod schedule;
pub mod state;

pub use addr::Address;
pub mod apply;
pub mod backup;
pub mod clone;
pub mod failpoint;
pub mod fake;
pub mod graph;
pub mod notify;
pub mod policy_run;
pub mod render;
pub mod run;
pub mod scripts;
pub mod vpc;
pub mod vpc_export;
