//! The run mode: schedules, the agenda (what is due and when), the runner
//! that starts due work, the daemon around it (lease, state lock, clock,
//! captures, drills, daily summary), one attempt of a policy run (scripts, success
//! rule, retention, retries, alerts), and the messages it publishes.

pub mod agenda;
pub mod attempt;
pub mod clock;
pub mod daemon;
pub mod drills;
pub mod metrics;
pub mod notify;
pub mod runner;
pub mod schedule;
pub mod scripts;
