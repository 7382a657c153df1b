//! `lifeboat backup POLICY`: one backup of a policy now, then its
//! retention, under the state lock.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use lifeboat_engine::backup::{self, BackupResult};
use lifeboat_engine::dr;
use lifeboat_engine::plan::Action;
use lifeboat_engine::runmode::attempt::{self, PolicyRun};
use lifeboat_engine::state::{BackupStatus, DrRun, DrStatus, StateError};

use crate::output::print_outcome;
use crate::workspace::{cloud, locked, refuse_in_flight, Workspace};

/// How the backup's DR copies run.
pub struct DrOptions {
    /// Wait for them (else start what fits and return).
    pub wait: bool,
    /// Copies in flight per destination.
    pub per_destination: usize,
}

pub async fn run(ws: Workspace, policy: &str, timeout: Duration, dr: DrOptions) -> Result<u8> {
    let wait_dr = dr.wait;
    let dr_limits = dr::Limits::new(dr.per_destination);
    let wait = backup::Wait {
        timeout,
        ..Default::default()
    };
    let store = Arc::new(Mutex::new(ws.store()?));
    let now = ws.now;
    let policy = policy.to_string();
    let store2 = store.clone();
    let cloud = cloud(&ws).await?;
    let mut ctx = attempt::Context {
        config_dir: ws.dir.clone(),
        notifications: ws.config.notifications.clone(),
        limits: backup::Limits::default(),
        lock_id: None,
    };
    locked(store, "backup", ws.lock_timeout, async move |lock_id| {
        // Retention deletes only while this lock is still ours.
        ctx.lock_id = Some(lock_id);
        refuse_in_flight(&store2, Some(&policy), &format!("lifeboat backup {policy}"))?;
        let reconciled = backup::reconcile_interrupted(cloud.clone(), store2.clone(), now).await?;
        for b in reconciled.closed {
            println!(
                "Closed backup {} of policy {} left running by an interrupted lifeboat: failed, {} snapshot(s) in the catalog.",
                b.id,
                b.policy,
                b.snapshots.len()
            );
        }
        for (p, id, e) in reconciled.failed {
            crate::colour::warning(format_args!(
                "backup {id} of policy {p}, left running by an interrupted lifeboat, could not be closed: {e}; it is tried again next time."
            ));
        }
        // The policy's scripts, timeout, success rule and alerts
        // apply as in a scheduled run; an ad hoc backup is one
        // attempt, never retried.
        let run = attempt::run(
            cloud.clone(),
            store2.clone(),
            &policy,
            &attempt::Trigger::AdHoc,
            now,
            wait,
            &ctx,
        )
        .await;
        print_alerts(&run);
        let dr_runs = run.dr.clone();
        let result = run.result?;
        let code = report(&result);
        let mut work = dr::DrWork::new(cloud, store2, dr_limits, now);
        work.wait = wait_dr;
        work.lock_id = ctx.lock_id.clone();
        let dr_failed = report_dr(dr::copy(&work, dr_runs).await, wait_dr);
        Ok(if code == 0 && dr_failed { 1 } else { code })
    })
    .await
}

/// Prints how each DR run ended; true when one failed or timed out.
fn report_dr(ended: Vec<Result<DrRun, StateError>>, waited: bool) -> bool {
    let mut failed = false;
    for r in ended {
        match r {
            Ok(run) => {
                let status = run.status.as_str().replace('_', " ");
                let detail = if run.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", run.detail)
                };
                println!(
                    "DR copy of backup {} to {}: {status}{detail}",
                    run.backup_id, run.destination
                );
                failed |= matches!(run.status, DrStatus::Failed | DrStatus::TimedOut);
            }
            Err(e) => {
                crate::colour::error(format_args!("DR: {e}"));
                failed = true;
            }
        }
    }
    if !waited {
        println!("DR copies continue in AWS; `lifeboat run` records them as they complete.");
    }
    failed
}

fn print_alerts(run: &PolicyRun) {
    if let Some(a) = &run.alert_opened {
        println!(
            "Alert {} opened for policy {}: {}",
            a.id, a.policy, a.message
        );
    }
    if let Some(a) = &run.membership_alert {
        println!("Alert {} opened for {}: {}", a.id, a.policy, a.message);
    }
    for a in &run.alerts_closed {
        println!("Alert {} of policy {} closed.", a.id, a.policy);
    }
    for e in &run.notify_errors {
        crate::colour::warning(format_args!("{e}"));
    }
}

/// Prints the backup and its retention; the exit code tells a complete
/// backup (0) from a partial one (2), a failed one (1) and a backup whose
/// retention left snapshots behind (3).
fn report(result: &BackupResult) -> u8 {
    let b = &result.record;
    let targets: BTreeSet<&str> = b.snapshots.iter().map(|s| s.target.as_str()).collect();
    println!(
        "Backup {} of policy {}: {} ({} snapshot(s) of {} target(s))",
        b.id,
        b.policy,
        b.status.as_str(),
        b.snapshots.len(),
        targets.len()
    );
    for c in &result.membership {
        println!("  {c}");
    }
    for p in &b.problems {
        println!("  problem: {p}");
    }
    let r = &result.retention;
    if !r.outcomes.is_empty() {
        println!("Retention:");
        for (addr, o) in &r.outcomes {
            print_outcome(Action::Delete, addr, o);
        }
    }
    if r.failed() > 0 {
        crate::colour::error(format_args!("retention could not delete everything it should; the next backup or apply tries again."));
        return 3;
    }
    match b.status {
        BackupStatus::Success => 0,
        BackupStatus::Partial => 2,
        BackupStatus::Failed | BackupStatus::Running => 1,
    }
}
