//! The run mode: schedules, what is due and when, the runner that starts
//! due work, one attempt of a policy run (scripts, success rule, retention,
//! retries, alerts), and the messages it publishes.

pub mod agenda;
pub mod attempt;
pub mod clock;
pub mod daemon;
pub mod notify;
pub mod runner;
pub mod schedule;
pub mod scripts;
