//! One scheduled run of a policy around [`backup::run`]: its scripts, its
//! timeout, its retries and its success rule, then the alert bookkeeping.
//!
//! An attempt runs the `before` script, takes the backup (snapshots, their
//! completion and retention, bounded by the policy's `timeout`), then runs
//! the `after` and `complete` scripts. An attempt is *valid* when the backup
//! succeeded and, under `success = "strict"`, every script succeeded too; a
//! strict backup whose scripts failed is marked partial in the catalog, so
//! retention never counts it as a generation. An invalid attempt is retried
//! after `retries.wait`, up to `retries.count` times, inside the policy's own
//! task (other policies are not held up).
//!
//! After the last attempt the run as a whole counts once: a failure adds to
//! the policy's consecutive failures and opens an alert when they reach
//! `failures_to_alert`; a success resets the count and closes the policy's
//! open alert. Opening and closing are published to SNS when the
//! configuration has a `notifications` block.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lifeboat_schema::{Notifications, PolicyOptions, SuccessRule};

use crate::addr::Address;
use crate::backup::{self, BackupError, BackupResult, Wait};
use crate::cloud::Cloud;
use crate::model::PolicyState;
use crate::notify;
use crate::planner;
use crate::scripts;
use crate::state::{Alert, BackupStatus, ScriptRun, StateError, Store};

/// What a policy run needs beside the cloud and the store.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Where relative script paths start (the configuration directory).
    pub config_dir: PathBuf,
    pub notifications: Option<Notifications>,
}

/// One attempt of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub number: u32,
    pub backup_id: Option<String>,
    pub status: Option<BackupStatus>,
    /// Counts as a generation under the policy's success rule.
    pub valid: bool,
    /// Why the attempt is not valid (empty when it is).
    pub problems: Vec<String>,
}

/// How a policy run went.
pub struct PolicyRun {
    pub attempts: Vec<Attempt>,
    /// The last attempt's backup (or why there was none).
    pub result: Result<BackupResult, BackupError>,
    pub succeeded: bool,
    /// Consecutive failures after this run.
    pub failures: u32,
    pub alert_opened: Option<Alert>,
    pub alerts_closed: Vec<Alert>,
    /// Notifications that could not be published.
    pub notify_errors: Vec<String>,
}

/// The id [`backup::run`] will give a backup of `policy` started at `at`
/// (the same rule: the time, made unique within the policy).
fn predicted_id(store: &Store, policy: &str, at: DateTime<Utc>) -> Result<String, StateError> {
    let base = at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let taken: BTreeSet<String> = store
        .backups(Some(policy))?
        .into_iter()
        .map(|b| b.id)
        .collect();
    let mut id = base.clone();
    let mut n = 1;
    while taken.contains(&id) {
        n += 1;
        id = format!("{base}-{n}");
    }
    Ok(id)
}

struct ScriptCall<'a> {
    ctx: &'a Context,
    policy: &'a str,
    backup_id: &'a str,
    targets: &'a str,
    attempt: u32,
    store: &'a Arc<Mutex<Store>>,
}

impl ScriptCall<'_> {
    /// Runs one script step and records it with the backup. `flag` is the
    /// third argument (`after`: the before script's success; `complete`: the
    /// backup's), also given as `LIFEBOAT_SUCCESS`.
    async fn step(
        &self,
        step: &str,
        path: &str,
        s: &lifeboat_schema::Scripts,
        flag: Option<bool>,
    ) -> Result<ScriptRun, StateError> {
        let program = scripts::resolve(&self.ctx.config_dir, path);
        let mut args = vec![self.policy.to_string(), self.backup_id.to_string()];
        let mut env = vec![
            ("LIFEBOAT_POLICY".to_string(), self.policy.to_string()),
            ("LIFEBOAT_BACKUP_ID".to_string(), self.backup_id.to_string()),
            ("LIFEBOAT_TARGETS".to_string(), self.targets.to_string()),
            ("LIFEBOAT_STEP".to_string(), step.to_string()),
            ("LIFEBOAT_ATTEMPT".to_string(), self.attempt.to_string()),
        ];
        if let Some(f) = flag {
            let v = if f { "1" } else { "0" };
            args.push(v.to_string());
            env.push(("LIFEBOAT_SUCCESS".to_string(), v.to_string()));
        }
        let out = scripts::run(
            &program,
            &args,
            &env,
            &self.ctx.config_dir,
            Duration::from_secs(s.timeout_secs),
            s.collect_output,
        )
        .await;
        let run = ScriptRun {
            attempt: self.attempt,
            step: step.to_string(),
            ok: out.ok,
            exit_code: out.exit_code,
            detail: out.detail,
            stderr: out.stderr,
            at: Utc::now(),
        };
        self.store
            .lock()
            .expect("store")
            .insert_script_run(self.policy, self.backup_id, &run)?;
        Ok(run)
    }
}

/// Closes, as failed, a backup an attempt left running (it timed out).
fn close_timed_out(store: &Arc<Mutex<Store>>, policy: &str, id: &str, secs: u64) {
    let mut s = store.lock().expect("store");
    let Ok(backups) = s.backups(Some(policy)) else {
        return;
    };
    if let Some(b) = backups
        .into_iter()
        .find(|b| b.id == id && b.status == BackupStatus::Running)
    {
        let mut problems = b.problems.clone();
        problems.push(format!("the backup timed out after {secs}s"));
        let _ = s.transaction(|tx| {
            tx.finish_backup(policy, id, BackupStatus::Failed, Utc::now(), &problems)
        });
    }
}

/// Marks a successful backup partial: its scripts failed under the strict
/// rule, so it is not a valid generation.
fn downgrade(store: &Arc<Mutex<Store>>, policy: &str, id: &str, why: &[String]) {
    let mut s = store.lock().expect("store");
    let Ok(backups) = s.backups(Some(policy)) else {
        return;
    };
    if let Some(b) = backups.into_iter().find(|b| b.id == id) {
        let mut problems = b.problems.clone();
        problems.extend(why.iter().cloned());
        let finished = b.finished.unwrap_or_else(Utc::now);
        let _ = s.transaction(|tx| {
            tx.finish_backup(policy, id, BackupStatus::Partial, finished, &problems)
        });
    }
}

/// One attempt. Returns the backup result and the attempt's summary.
#[allow(clippy::too_many_arguments)]
async fn attempt(
    cloud: Arc<dyn Cloud>,
    store: &Arc<Mutex<Store>>,
    pol: &PolicyState,
    targets: &str,
    at: DateTime<Utc>,
    wait: Wait,
    number: u32,
    ctx: &Context,
) -> (Result<BackupResult, BackupError>, Attempt) {
    let opts: &PolicyOptions = &pol.options;
    let policy = pol.name.as_str();
    let mut summary = Attempt {
        number,
        backup_id: None,
        status: None,
        valid: false,
        problems: vec![],
    };
    let id = match predicted_id(&store.lock().expect("store"), policy, at) {
        Ok(id) => id,
        Err(e) => return (Err(e.into()), summary),
    };
    let call = ScriptCall {
        ctx,
        policy,
        backup_id: &id,
        targets,
        attempt: number,
        store,
    };
    let mut script_problems: Vec<String> = Vec::new();
    let mut before_ok = true;
    if let Some(s) = &opts.scripts {
        if let Some(path) = &s.before {
            match call.step("before", path, s, None).await {
                Ok(r) if r.ok => {}
                Ok(r) => {
                    before_ok = false;
                    script_problems.push(format!("before script {path}: {}", r.detail));
                }
                Err(e) => return (Err(e.into()), summary),
            }
        }
    }
    let strict = opts.success == SuccessRule::Strict;
    // Under the strict rule a failed before script already makes this
    // backup invalid: it is recorded as partial before retention looks.
    let known: Vec<String> = if strict {
        script_problems.iter().map(|p| strict_note(p)).collect()
    } else {
        Vec::new()
    };
    let mut wait = wait;
    let result = match opts.timeout_secs {
        Some(secs) => {
            wait.timeout = wait.timeout.min(Duration::from_secs(secs));
            match tokio::time::timeout(
                Duration::from_secs(secs),
                backup::run_with_problems(cloud, store.clone(), policy, at, wait, known),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => {
                    close_timed_out(store, policy, &id, secs);
                    summary
                        .problems
                        .push(format!("the backup timed out after {secs}s"));
                    let rec = store
                        .lock()
                        .expect("store")
                        .backups(Some(policy))
                        .map(|bs| bs.into_iter().find(|b| b.id == id));
                    match rec {
                        Ok(Some(record)) => Ok(BackupResult {
                            record,
                            retention: Default::default(),
                        }),
                        Ok(None) => Err(BackupError::State(StateError::Conflict(format!(
                            "policy {policy}: the backup timed out after {secs}s"
                        )))),
                        Err(e) => Err(e.into()),
                    }
                }
            }
        }
        None => backup::run_with_problems(cloud, store.clone(), policy, at, wait, known).await,
    };
    let backup_ok = matches!(&result, Ok(r) if r.record.status == BackupStatus::Success);
    if let Ok(r) = &result {
        summary.backup_id = Some(r.record.id.clone());
        if r.record.id != id {
            // Should not happen (the same rule); scripts were recorded under
            // the predicted id.
            summary
                .problems
                .push(format!("backup id {} differs from {id}", r.record.id));
        }
    }
    if let Some(s) = &opts.scripts {
        if let Some(path) = &s.after {
            match call.step("after", path, s, Some(before_ok)).await {
                Ok(r) if r.ok => {}
                Ok(r) => script_problems.push(format!("after script {path}: {}", r.detail)),
                Err(e) => return (Err(e.into()), summary),
            }
        }
        if let Some(path) = &s.complete {
            let all_ok = backup_ok && script_problems.is_empty();
            match call.step("complete", path, s, Some(all_ok)).await {
                Ok(r) if r.ok => {}
                Ok(r) => script_problems.push(format!("complete script {path}: {}", r.detail)),
                Err(e) => return (Err(e.into()), summary),
            }
        }
    }
    if !script_problems.is_empty() {
        if let Ok(r) = &result {
            if strict && r.record.status == BackupStatus::Success {
                let why: Vec<String> = script_problems.iter().map(|p| strict_note(p)).collect();
                downgrade(store, policy, &r.record.id, &why);
            } else if !strict {
                // Recorded with the backup, without changing its status.
                let mut s = store.lock().expect("store");
                let problems: Vec<String> = r
                    .record
                    .problems
                    .iter()
                    .cloned()
                    .chain(script_problems.iter().cloned())
                    .collect();
                let finished = r.record.finished.unwrap_or(at);
                let _ = s.transaction(|tx| {
                    tx.finish_backup(policy, &r.record.id, r.record.status, finished, &problems)
                });
            }
        }
    }
    // Re-read the record: scripts may have changed its status and problems.
    let result = match result {
        Ok(mut r) => {
            if let Ok(Some(rec)) = store
                .lock()
                .expect("store")
                .backups(Some(policy))
                .map(|bs| bs.into_iter().find(|b| b.id == r.record.id))
            {
                r.record = rec;
            }
            Ok(r)
        }
        Err(e) => Err(e),
    };
    summary.valid = backup_ok && (!strict || script_problems.is_empty());
    match &result {
        Ok(r) => {
            summary.status = Some(r.record.status);
            if r.record.status != BackupStatus::Success && summary.problems.is_empty() {
                summary.problems.extend(r.record.problems.iter().cloned());
            }
        }
        Err(e) => summary.problems.push(e.to_string()),
    }
    if !summary.valid || !strict {
        for p in script_problems {
            if !summary.problems.iter().any(|q| q.starts_with(&p)) {
                summary.problems.push(p);
            }
        }
    }
    (result, summary)
}

/// Runs `policy` for a scheduled slot (or on demand) with its options.
pub async fn run(
    cloud: Arc<dyn Cloud>,
    store: Arc<Mutex<Store>>,
    policy: &str,
    now: DateTime<Utc>,
    wait: Wait,
    ctx: &Context,
) -> PolicyRun {
    let loaded = store.lock().expect("store").load();
    let state = match loaded {
        Ok(s) => s,
        Err(e) => return not_run(e.into()),
    };
    let Some(pol) = state
        .objects
        .get(&Address::policy(policy))
        .and_then(|v| serde_json::from_value::<PolicyState>(v.clone()).ok())
    else {
        // backup::run says why (not applied).
        return not_run(
            backup::run(cloud, store, policy, now, wait)
                .await
                .err()
                .unwrap_or_else(|| BackupError::NotApplied(policy.to_string())),
        );
    };
    if !pol.enabled {
        return not_run(BackupError::Disabled(policy.to_string()));
    }
    let targets: Vec<String> = planner::state_targets(&state)
        .into_iter()
        .filter(|((p, _), _)| p == policy)
        .map(|(_, t)| t.id)
        .collect();
    let targets = targets.join(" ");
    let clock = std::time::Instant::now();
    let mut attempts = Vec::new();
    let mut number = 0;
    let result = loop {
        number += 1;
        let at = now + chrono::Duration::from_std(clock.elapsed()).unwrap_or_default();
        let (result, a) =
            attempt(cloud.clone(), &store, &pol, &targets, at, wait, number, ctx).await;
        let valid = a.valid;
        attempts.push(a);
        // A state error is not worth retrying: the catalog is in trouble.
        if valid
            || number > pol.options.retries.count
            || matches!(result, Err(BackupError::State(_)))
        {
            break result;
        }
        tokio::time::sleep(Duration::from_secs(pol.options.retries.wait_secs)).await;
    };
    let succeeded = attempts.last().is_some_and(|a| a.valid);
    let finished = now + chrono::Duration::from_std(clock.elapsed()).unwrap_or_default();
    let mut out = PolicyRun {
        attempts,
        result,
        succeeded,
        failures: 0,
        alert_opened: None,
        alerts_closed: vec![],
        notify_errors: vec![],
    };
    if let Err(e) = account(&store, &pol, finished, &mut out) {
        out.notify_errors
            .push(format!("cannot record the run: {e}"));
    }
    if let Some(n) = &ctx.notifications {
        let backup_id = out.result.as_ref().ok().map(|r| r.record.id.clone());
        let mut messages = Vec::new();
        if let Some(a) = &out.alert_opened {
            messages.push(notify::opened_message(a, out.failures));
        }
        for a in &out.alerts_closed {
            messages.push(notify::closed_message(a, finished, backup_id.as_deref()));
        }
        for (subject, text) in messages {
            if let Err(e) = notify::publish(&cloud, &store, n, &subject, &text).await {
                out.notify_errors
                    .push(format!("cannot publish to SNS: {e}"));
            }
        }
    }
    out
}

fn strict_note(problem: &str) -> String {
    format!("{problem} (success = \"strict\": not a valid generation)")
}

fn not_run(e: BackupError) -> PolicyRun {
    PolicyRun {
        attempts: vec![],
        result: Err(e),
        succeeded: false,
        failures: 0,
        alert_opened: None,
        alerts_closed: vec![],
        notify_errors: vec![],
    }
}

/// Counts the run for the policy's alerts.
fn account(
    store: &Arc<Mutex<Store>>,
    pol: &PolicyState,
    at: DateTime<Utc>,
    out: &mut PolicyRun,
) -> Result<(), StateError> {
    let mut s = store.lock().expect("store");
    if out.succeeded {
        s.record_success(&pol.name)?;
        out.alerts_closed = s.close_policy_alerts(&pol.name, at)?;
        out.failures = 0;
        return Ok(());
    }
    out.failures = s.record_failure(&pol.name)?;
    if out.failures >= pol.options.failures_to_alert {
        let last = out.attempts.last();
        let why = last
            .map(|a| a.problems.join("; "))
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "the backup failed".to_string());
        let message = format!(
            "{} consecutive failed run(s) of policy {} (last after {} attempt(s)): {why}",
            out.failures,
            pol.name,
            out.attempts.len()
        );
        out.alert_opened = s.open_policy_alert(&pol.name, at, &message)?;
    }
    Ok(())
}
