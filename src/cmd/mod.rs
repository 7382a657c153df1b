//! One module per command or command family; each takes the loaded
//! workspace (or what it needs instead) and returns the exit code.
//! `run` turns the run-mode daemon's events into log lines.

pub mod alerts;
pub mod apply;
pub mod backup;
pub mod backups;
pub mod dr;
pub mod dr_expired;
pub mod fmt;
pub mod force_unlock;
pub mod graph;
pub mod iam;
pub mod import;
pub mod plan;
pub mod rc;
pub mod recover;
pub mod report;
pub mod restore;
pub mod run;
pub mod scan;
pub mod schedule;
pub mod show;
pub mod state;
pub mod status;
pub mod validate;
pub mod vpc;
