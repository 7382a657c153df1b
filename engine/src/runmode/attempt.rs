//! One attempt of a policy run around [`backup::take`]: its scripts, its
//! timeout, its success rule, its retry, then the alert bookkeeping.
//!
//! An attempt runs the `before` script, takes the backup (snapshots and
//! their completion, bounded by the policy's `timeout`), runs the `after`
//! and `complete` scripts, and only then applies retention. An attempt is
//! *valid* when the backup succeeded and, under `success = "strict"`, every
//! script succeeded too; a strict backup whose scripts failed is marked
//! partial in the catalog before retention looks, so it never counts as a
//! generation.
//!
//! An invalid scheduled attempt is retried after `retries.wait`, up to
//! `retries.count` times. The retry is written to the state ([`Retry`]) and
//! the runner starts it when it is due, like a slot: nothing sleeps inside a
//! run, a restarted runner still retries, and the runner's other work goes on
//! meanwhile. An ad hoc backup (`lifeboat backup`) is one attempt, never
//! retried: the operator sees its outcome at once.
//!
//! When a run ends (a valid attempt, or the last allowed one) it counts
//! once: a failure adds to the policy's consecutive failures and opens an
//! alert when they reach `failures_to_alert`; a success resets the count and
//! closes the policy's open alert. Opening and closing are published to SNS
//! when the configuration has a `notifications` block. A scheduled slot that
//! arrives while a retry still waits replaces it, and the replaced run counts
//! as failed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use lifeboat_schema::{Notifications, PolicyOptions, SuccessRule};

use crate::backup::{self, BackupError, BackupResult, Wait};
use crate::cloud::Cloud;
use crate::runmode::notify;
use crate::runmode::scripts;
use crate::state::model::PolicyState;
use crate::state::{
    Alert, BackupRecord, BackupStatus, Retry, ScriptRun, SharedStore, Snapshot, StateError,
};

/// What a policy run needs beside the cloud and the store.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Where relative script paths start (the configuration directory).
    pub config_dir: PathBuf,
    pub notifications: Option<Notifications>,
    /// Create calls in flight per account and region, shared by all runs.
    pub limits: backup::Limits,
    /// The state lock the caller holds while the run works: retention
    /// deletes only while it is still held. `None` checks nothing (tests).
    /// A runner's runs use its gate in `limits` instead.
    pub lock_id: Option<String>,
}

impl Context {
    /// The state lock held now: the runner's (taken again after each
    /// wait for AWS), or the caller's.
    pub fn lock_now(&self) -> Option<String> {
        match self.limits.gate() {
            Some(g) => g.current(),
            None => self.lock_id.clone(),
        }
    }

    /// The lock retention checks before each delete. A runner that holds
    /// none now must not delete at all: `None` would check nothing, and an
    /// apply holding the lock may be deleting on another read.
    pub fn retention_lock(&self) -> Result<Option<String>, StateError> {
        let lock = self.lock_now();
        if lock.is_none() && self.limits.gate().is_some() {
            return Err(no_lock_to_delete());
        }
        Ok(lock)
    }
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

/// Why a policy runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A scheduled slot: its first attempt (`attempt` 1) or a retry.
    Scheduled {
        slot: DateTime<Utc>,
        attempt: u32,
        /// A waiting retry of an earlier slot that this run replaces.
        supersedes: Option<Retry>,
    },
    /// `lifeboat backup`: one attempt, never retried.
    AdHoc,
}

impl Trigger {
    fn attempt(&self) -> u32 {
        match self {
            Trigger::Scheduled { attempt, .. } => *attempt,
            Trigger::AdHoc => 1,
        }
    }
}

/// How one attempt of a policy run went.
pub struct PolicyRun {
    /// The attempt made (none when the policy could not run at all).
    pub attempt: Option<Attempt>,
    /// The attempt's backup (or why there was none).
    pub result: Result<BackupResult, BackupError>,
    /// The run ended with a valid generation.
    pub succeeded: bool,
    /// The attempt failed and another is scheduled (the run goes on).
    pub retry: Option<Retry>,
    /// A waiting retry this run replaced (that run counted as failed).
    pub superseded: Option<Retry>,
    /// Consecutive failed runs after this attempt.
    pub failures: u32,
    pub alert_opened: Option<Alert>,
    /// The alert of a policy whose membership could not be decided for
    /// [`backup::members::UNDECIDED_TO_ALERT`] backups in a row.
    pub membership_alert: Option<Alert>,
    pub alerts_closed: Vec<Alert>,
    /// Notifications that could not be published.
    pub notify_errors: Vec<String>,
    /// The DR runs the backup started (pending), for the caller to drive.
    pub dr: Vec<crate::state::DrRun>,
}

struct ScriptCall<'a> {
    ctx: &'a Context,
    policy: &'a str,
    backup_id: &'a str,
    targets: &'a str,
    attempt: u32,
    store: &'a SharedStore,
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
        let script = scripts::run(
            &program,
            &args,
            &s.pass_env,
            &env,
            &self.ctx.config_dir,
            Duration::from_secs(s.timeout_secs),
            s.collect_output,
        );
        // A script takes its time: a runner runs it without the state lock.
        let out = match self.ctx.limits.gate() {
            Some(g) => g.unlocked(script).await?,
            None => script.await,
        };
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

/// One attempt. Returns the backup result and the attempt's summary.
#[allow(clippy::too_many_arguments)]
async fn attempt(
    cloud: Arc<dyn Cloud>,
    store: &SharedStore,
    pol: &PolicyState,
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
    let id = match backup::backup_id(&store.lock().expect("store"), policy, at) {
        Ok(id) => id,
        Err(e) => return (Err(e.into()), summary),
    };
    // Membership is decided before the `before` script, so that the
    // targets it is given are those this backup takes.
    let (decided, _) = backup::members::decide(&cloud, store, policy, &id, at).await;
    let targets = match policy_targets(store, policy) {
        Ok(t) => t,
        Err(e) => return (Err(e.into()), summary),
    };
    let call = ScriptCall {
        ctx,
        policy,
        backup_id: &id,
        targets: &targets,
        attempt: number,
        store,
    };
    crate::failpoint::hit(crate::failpoint::BACKUP_BEFORE_SCRIPT);
    let mut script_problems: Vec<String> = Vec::new();
    let before_ok = match before_script(&call, opts, &mut script_problems).await {
        Ok(ok) => ok,
        Err(e) => return (Err(e.into()), summary),
    };
    let strict = opts.success == SuccessRule::Strict;
    // Under the strict rule a failed before script already makes this
    // backup invalid: it is recorded as partial from the start.
    let known: Vec<String> = if strict {
        script_problems.iter().map(|p| strict_note(p)).collect()
    } else {
        Vec::new()
    };
    let taken = take(
        cloud.clone(),
        store,
        (policy, &id),
        at,
        wait,
        opts,
        (known, decided),
        ctx,
    )
    .await;
    let taken = match taken {
        Ok(t) => t,
        Err(problem) => {
            summary.problems.push(problem.problem);
            problem.record
        }
    };
    let backup_ok = matches!(&taken, Ok(r) if r.status == BackupStatus::Success);
    if let Ok(r) = &taken {
        summary.backup_id = Some(r.id.clone());
        // The reports say which backups were retries; a first attempt is
        // what the catalog assumes.
        if number > 1 {
            let marked = store
                .lock()
                .expect("store")
                .transaction(|tx| tx.set_backup_attempt(policy, &r.id, number));
            if let Err(e) = marked {
                summary
                    .problems
                    .push(format!("the attempt number was not recorded: {e}"));
            }
        }
        if r.id != id {
            // Should not happen (the same rule); scripts were recorded under
            // the predicted id.
            summary
                .problems
                .push(format!("backup id {} differs from {id}", r.id));
        }
    }
    let after = after_scripts(&call, opts, before_ok, backup_ok, &mut script_problems).await;
    if let Err(e) = after {
        // The script's outcome is unknown: closed as it earned, less a
        // success, so that it does not count as a generation.
        if let Ok(r) = &taken {
            let mut r = r.clone();
            if r.status == BackupStatus::Success {
                r.status = BackupStatus::Partial;
            }
            r.problems
                .push(format!("the scripts' outcome was not recorded: {e}"));
            let _ = backup::finish(store, &r);
        }
        return (Err(e.into()), summary);
    }
    let taken = settle_scripts(store, taken, strict, &script_problems);
    let result = match ctx.retention_lock() {
        Ok(lock) => retain(cloud, store, policy, taken, at, lock.as_deref()).await,
        Err(e) => taken.and(Err(e.into())),
    };
    summary.valid = backup_ok && (!strict || script_problems.is_empty());
    summarise(&mut summary, &result, strict, script_problems);
    (result, summary)
}

/// Retention refused: the runner holds no state lock at that moment.
pub(crate) fn no_lock_to_delete() -> StateError {
    StateError::Conflict(
        "the runner holds no state lock: retention deleted nothing (the next backup or apply does)"
            .into(),
    )
}

/// Runs the `before` script, if any; its failure goes to `problems`.
/// Returns whether it succeeded (or there was none).
async fn before_script(
    call: &ScriptCall<'_>,
    opts: &PolicyOptions,
    problems: &mut Vec<String>,
) -> Result<bool, StateError> {
    let Some(s) = &opts.scripts else {
        return Ok(true);
    };
    let Some(path) = &s.before else {
        return Ok(true);
    };
    let r = call.step("before", path, s, None).await?;
    if !r.ok {
        problems.push(format!("before script {path}: {}", r.detail));
    }
    Ok(r.ok)
}

/// A backup that outlived the policy's `timeout`: why, and its record as
/// closed.
struct TimedOut {
    problem: String,
    record: Result<BackupRecord, BackupError>,
}

/// Takes the backup, bounded by the policy's `timeout` (which also bounds
/// the wait for snapshots). A backup that times out is closed as failed.
#[allow(clippy::too_many_arguments)]
async fn take(
    cloud: Arc<dyn Cloud>,
    store: &SharedStore,
    (policy, id): (&str, &str),
    at: DateTime<Utc>,
    wait: Wait,
    opts: &PolicyOptions,
    (known, decided): (Vec<String>, Vec<String>),
    ctx: &Context,
) -> Result<Result<BackupRecord, BackupError>, TimedOut> {
    let mut wait = wait;
    if let Some(secs) = opts.timeout_secs {
        wait.timeout = wait.timeout.min(Duration::from_secs(secs));
    }
    // Left `running` until the scripts after it have settled it: a runner
    // killed in its `after` script leaves no success behind.
    let take = backup::take_open_decided(
        cloud.clone(),
        store.clone(),
        policy,
        at,
        wait,
        known,
        Some(decided),
        &ctx.limits,
    );
    let Some(secs) = opts.timeout_secs else {
        return Ok(take.await);
    };
    match tokio::time::timeout(Duration::from_secs(secs), take).await {
        Ok(r) => Ok(r),
        Err(_) => {
            // The backup was dropped, maybe in a wait without the lock: the
            // close and the retention after it are made under the lock,
            // taken again here (waiting while another holder has it).
            let _share = match ctx.limits.gate() {
                Some(g) => match g.enter().await {
                    Ok(share) => Some(share),
                    Err(e) => {
                        return Err(TimedOut {
                            problem: format!("the backup timed out after {secs}s"),
                            record: Err(e.into()),
                        })
                    }
                },
                None => None,
            };
            // The create calls in flight were abandoned; what AWS made for
            // them is adopted by tags before the backup is closed as failed.
            let why = format!("the backup timed out after {secs}s");
            if let Err(e) = backup::close_abandoned(cloud, store, policy, id, &why).await {
                return Err(TimedOut {
                    problem: why,
                    record: Err(e),
                });
            }
            let record = match record_of(store, policy, id) {
                Ok(Some(record)) => Ok(record),
                Ok(None) => Err(BackupError::State(StateError::Conflict(format!(
                    "policy {policy}: the backup timed out after {secs}s"
                )))),
                Err(e) => Err(e.into()),
            };
            Err(TimedOut {
                problem: format!("the backup timed out after {secs}s"),
                record,
            })
        }
    }
}

/// Runs the `after` and `complete` scripts, if any; their failures go to
/// `problems`.
async fn after_scripts(
    call: &ScriptCall<'_>,
    opts: &PolicyOptions,
    before_ok: bool,
    backup_ok: bool,
    problems: &mut Vec<String>,
) -> Result<(), StateError> {
    let Some(s) = &opts.scripts else {
        return Ok(());
    };
    if let Some(path) = &s.after {
        let r = call.step("after", path, s, Some(before_ok)).await?;
        if !r.ok {
            problems.push(format!("after script {path}: {}", r.detail));
        }
    }
    if let Some(path) = &s.complete {
        let all_ok = backup_ok && problems.is_empty();
        let r = call.step("complete", path, s, Some(all_ok)).await?;
        if !r.ok {
            problems.push(format!("complete script {path}: {}", r.detail));
        }
    }
    Ok(())
}

/// Closes the backup, still `running` while its scripts ran, with what they
/// came to: under the strict rule a backup whose after or complete script
/// failed is partial by the time retention counts generations; otherwise
/// their failures are recorded with it, its status unchanged.
fn settle_scripts(
    store: &SharedStore,
    taken: Result<BackupRecord, BackupError>,
    strict: bool,
    problems: &[String],
) -> Result<BackupRecord, BackupError> {
    let Ok(mut r) = taken else {
        return taken;
    };
    if strict && r.status == BackupStatus::Success && !problems.is_empty() {
        r.status = BackupStatus::Partial;
        r.problems.extend(problems.iter().map(|p| strict_note(p)));
    } else if !strict {
        r.problems.extend(problems.iter().cloned());
    }
    // A backup whose invalidity could not be recorded must not meet
    // retention, which would count it.
    backup::finish(store, &r)
}

/// Applies retention after a backup, on its record as the scripts left it.
async fn retain(
    cloud: Arc<dyn Cloud>,
    store: &SharedStore,
    policy: &str,
    taken: Result<BackupRecord, BackupError>,
    at: DateTime<Utc>,
    lock: Option<&str>,
) -> Result<BackupResult, BackupError> {
    let r = taken?;
    // Re-read the record: scripts may have changed its status and problems.
    let record = match record_of(store, policy, &r.id) {
        Ok(Some(rec)) => rec,
        _ => r,
    };
    let retention = backup::retain(cloud, store.clone(), &record, at, lock).await?;
    BackupResult::of(store, record, retention)
}

/// Fills the attempt's status and problems from its result and scripts.
fn summarise(
    summary: &mut Attempt,
    result: &Result<BackupResult, BackupError>,
    strict: bool,
    script_problems: Vec<String>,
) {
    match result {
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
}

/// Runs one attempt of `policy` for `trigger` with its options, then
/// schedules its retry or counts the run for the policy's alerts.
pub async fn run(
    cloud: Arc<dyn Cloud>,
    store: SharedStore,
    policy: &str,
    trigger: &Trigger,
    now: DateTime<Utc>,
    wait: Wait,
    ctx: &Context,
) -> PolicyRun {
    let (state, pol) = match applied(&cloud, &store, policy, now, wait).await {
        Ok(found) => found,
        Err(e) => return not_run(e),
    };
    // An ad hoc backup whose credentials reach another AWS account than
    // the one its account is held to is refused before anything is
    // recorded. A scheduled one fails in the backup and counts, so that
    // its retry waits and its alert tells the operator.
    if *trigger == Trigger::AdHoc {
        if let Err(e) = same_account(&cloud, &state, &pol).await {
            return not_run(e);
        }
    }
    let mut out = not_run(BackupError::NotApplied(policy.to_string()));
    if let Err(e) = end_superseded(&store, &pol, trigger, now, &mut out) {
        return not_run(e.into());
    }
    let clock = std::time::Instant::now();
    let number = trigger.attempt();
    let (result, a) = attempt(cloud.clone(), &store, &pol, now, wait, number, ctx).await;
    let finished = now + chrono::Duration::from_std(clock.elapsed()).unwrap_or_default();
    out.succeeded = a.valid;
    let retry = next_attempt(trigger, &pol, &a, &result, finished);
    out.attempt = Some(a);
    out.result = result;
    if let (true, Ok(r)) = (out.succeeded, &out.result) {
        // Copies start from a valid generation only; `every` counts those.
        match crate::dr::record_due(&store, &pol, &r.record, finished) {
            Ok(runs) => out.dr = runs,
            Err(e) => out
                .notify_errors
                .push(format!("cannot record the backup's DR copies: {e}")),
        }
    }
    let retry = record_retry(&store, policy, trigger, retry, &mut out);
    if retry.is_some() {
        out.retry = retry;
    } else if let Err(e) = account(&store, &pol, now, finished, &mut out) {
        out.notify_errors
            .push(format!("cannot record the run: {e}"));
    }
    // After the run is counted, which replaces the alerts it closed.
    let record = out.result.as_ref().ok().map(|r| r.record.clone());
    match record.map(|r| backup::members::undecided_alert(&store, &r, finished)) {
        Some(Ok(a)) => {
            out.membership_alert = a.opened;
            out.alerts_closed.extend(a.closed);
        }
        Some(Err(e)) => out
            .notify_errors
            .push(format!("cannot record the membership alert: {e}")),
        None => {}
    }
    publish_alerts(&cloud, &store, ctx, finished, &mut out).await;
    out
}

/// The applied, enabled policy `policy` and the state it was read from, or
/// why it cannot run.
async fn applied(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    policy: &str,
    now: DateTime<Utc>,
    wait: Wait,
) -> Result<(Snapshot, PolicyState), BackupError> {
    let state = store.lock().expect("store").load()?;
    let Some(pol) = state.policy(policy)? else {
        // backup::run says why (not applied).
        return Err(backup::run(cloud.clone(), store.clone(), policy, now, wait)
            .await
            .err()
            .unwrap_or_else(|| BackupError::NotApplied(policy.to_string())));
    };
    if pol.template {
        return Err(BackupError::Template(policy.to_string()));
    }
    if !pol.enabled {
        return Err(BackupError::Disabled(policy.to_string()));
    }
    Ok((state, pol))
}

/// A waiting retry replaced by a new slot: that run ends here, failed.
fn end_superseded(
    store: &SharedStore,
    pol: &PolicyState,
    trigger: &Trigger,
    now: DateTime<Utc>,
    out: &mut PolicyRun,
) -> Result<(), StateError> {
    let Trigger::Scheduled {
        supersedes: Some(old),
        ..
    } = trigger
    else {
        return Ok(());
    };
    let why = format!(
        "the run for {} was replaced by a new slot before its attempt {}",
        old.slot.format("%Y-%m-%dT%H:%M:%SZ"),
        old.attempt
    );
    // The runner already put this run's attempt in the retry's place.
    let (n, opened) = count_failure(store, pol, now, old.attempt.saturating_sub(1), &why)?;
    out.failures = n;
    out.alert_opened = opened;
    out.superseded = Some(old.clone());
    Ok(())
}

/// Another attempt unless this one was valid, the last allowed, ad hoc, or
/// the catalog itself is in trouble (not worth retrying).
fn next_attempt(
    trigger: &Trigger,
    pol: &PolicyState,
    a: &Attempt,
    result: &Result<BackupResult, BackupError>,
    finished: DateTime<Utc>,
) -> Option<Retry> {
    let Trigger::Scheduled { slot, .. } = trigger else {
        return None;
    };
    if a.valid
        || a.number > pol.options.retries.count
        || matches!(result, Err(BackupError::State(_)))
    {
        return None;
    }
    // The configuration allows at most MAX_DURATION_DAYS; a state edited by
    // hand may say more, which must delay the retry, not overflow the clock.
    let longest = lifeboat_schema::duration::MAX_DURATION_DAYS * 86_400;
    let wait = i64::try_from(pol.options.retries.wait_secs.min(longest)).unwrap_or(0);
    Some(Retry {
        policy: pol.name.clone(),
        slot: *slot,
        attempt: a.number + 1,
        // Whole seconds, as the state stores and logs show it.
        due: (finished + chrono::Duration::seconds(wait)).trunc_subsecs(0),
    })
}

/// Writes the retry to the state, or clears the one waiting when the run
/// ended. A retry that could not be recorded will not happen: the run ends
/// here and counts (the returned retry is `None`).
fn record_retry(
    store: &SharedStore,
    policy: &str,
    trigger: &Trigger,
    retry: Option<Retry>,
    out: &mut PolicyRun,
) -> Option<Retry> {
    let recorded = {
        let mut s = store.lock().expect("store");
        match (&retry, trigger) {
            (Some(r), _) => s.set_retry(r),
            // A scheduled run that ended, or an ad hoc success, leaves no
            // retry waiting; an ad hoc failure leaves a scheduled one alone.
            (None, Trigger::Scheduled { .. }) => s.clear_retry(policy),
            (None, Trigger::AdHoc) if out.succeeded => s.clear_retry(policy),
            (None, Trigger::AdHoc) => Ok(()),
        }
    };
    match recorded {
        Ok(()) => retry,
        Err(e) => {
            out.notify_errors
                .push(format!("cannot record the retry: {e}"));
            None
        }
    }
}

/// Publishes the alerts the run opened and closed, when the configuration
/// has a `notifications` block.
async fn publish_alerts(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    ctx: &Context,
    finished: DateTime<Utc>,
    out: &mut PolicyRun,
) {
    let Some(n) = &ctx.notifications else {
        return;
    };
    let backup_id = out.result.as_ref().ok().map(|r| r.record.id.clone());
    let mut messages = Vec::new();
    if let Some(a) = &out.alert_opened {
        messages.push(notify::opened_message(a, out.failures));
    }
    if let Some(a) = &out.membership_alert {
        messages.push(notify::membership_message(a));
    }
    if let Ok(r) = &out.result {
        for c in r.membership.iter().filter(|c| c.alert) {
            messages.push(notify::departed_message(c));
        }
    }
    for a in &out.alerts_closed {
        messages.push(notify::closed_message(a, finished, backup_id.as_deref()));
    }
    for (subject, text) in messages {
        if let Err(e) = notify::publish(cloud, store, n, &subject, &text).await {
            out.notify_errors
                .push(format!("cannot publish to SNS: {e}"));
        }
    }
}

/// The ids of `policy`'s targets in the state, as scripts get them
/// (`LIFEBOAT_TARGETS`, space-separated).
fn policy_targets(store: &SharedStore, policy: &str) -> Result<String, StateError> {
    let targets = store.lock().expect("store").load()?.targets()?;
    let ids: Vec<String> = targets
        .into_iter()
        .filter(|((p, _), _)| p == policy)
        .map(|(_, t)| t.id)
        .collect();
    Ok(ids.join(" "))
}

/// The catalog record of backup `id` of `policy`.
fn record_of(
    store: &SharedStore,
    policy: &str,
    id: &str,
) -> Result<Option<BackupRecord>, StateError> {
    Ok(store
        .lock()
        .expect("store")
        .backups(Some(policy))?
        .into_iter()
        .find(|b| b.id == id))
}

fn strict_note(problem: &str) -> String {
    format!("{problem} (success = \"strict\": not a valid generation)")
}

/// The policy's account reaches the AWS account it is held to.
async fn same_account(
    cloud: &Arc<dyn Cloud>,
    state: &Snapshot,
    pol: &PolicyState,
) -> Result<(), BackupError> {
    if let Some(acct) = state.accounts()?.get(&pol.account) {
        cloud.account_id(acct).await?;
    }
    Ok(())
}

fn not_run(e: BackupError) -> PolicyRun {
    PolicyRun {
        attempt: None,
        result: Err(e),
        succeeded: false,
        retry: None,
        superseded: None,
        failures: 0,
        alert_opened: None,
        membership_alert: None,
        alerts_closed: vec![],
        notify_errors: vec![],
        dr: vec![],
    }
}

/// Counts the run for the policy's alerts.
fn account(
    store: &SharedStore,
    pol: &PolicyState,
    started: DateTime<Utc>,
    at: DateTime<Utc>,
    out: &mut PolicyRun,
) -> Result<(), StateError> {
    if out.succeeded {
        let mut s = store.lock().expect("store");
        s.record_success(&pol.name)?;
        out.alerts_closed = s.close_policy_alerts(&pol.name, Some(started), at)?;
        // Targets that left before this run (`auto_remove_targets =
        // "alert"`): answered by a success of the policy without them.
        let owner = crate::addr::Address::policy(&pol.name).to_string();
        out.alerts_closed
            .extend(s.close_policy_alerts(&owner, Some(started), at)?);
        out.failures = 0;
        return Ok(());
    }
    let last = out.attempt.as_ref();
    let why = last
        .map(|a| a.problems.join("; "))
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "the backup failed".to_string());
    let attempts = last.map_or(0, |a| a.number);
    let (failures, opened) = count_failure(store, pol, at, attempts, &why)?;
    out.failures = failures;
    if opened.is_some() {
        out.alert_opened = opened;
    }
    Ok(())
}

/// Counts one failed run of `pol`; opens its alert when the consecutive
/// failures reach `failures_to_alert`. Returns the count and the new alert.
fn count_failure(
    store: &SharedStore,
    pol: &PolicyState,
    at: DateTime<Utc>,
    attempts: u32,
    why: &str,
) -> Result<(u32, Option<Alert>), StateError> {
    let mut s = store.lock().expect("store");
    let failures = s.record_failure(&pol.name)?;
    if failures < pol.options.failures_to_alert {
        return Ok((failures, None));
    }
    let message = format!(
        "{failures} consecutive failed run(s) of policy {} (last after {attempts} attempt(s)): {why}",
        pol.name,
    );
    Ok((failures, s.open_policy_alert(&pol.name, at, &message)?))
}
