//! The [`Runner`]: it starts what the agenda says is due, each run as a
//! task of its own, and does not wait for it: a policy with a long backup or
//! a retry does not hold up the others. A policy is never run twice at once:
//! a slot that comes while its previous run is still in flight is recorded
//! as skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lifeboat_schema::Config;

use crate::backup::{self, BackupError, BackupResult, Wait};
use crate::cloud::Cloud;
use crate::runmode::agenda::{Agenda, Due};
use crate::runmode::attempt;
use crate::runmode::notify::SUMMARY_NOTE;
use crate::state::model::PolicyState;
use crate::state::{LockGate, Retry, SharedStore, Skipped, StateError};

/// What one run of a policy did.
pub struct Ran {
    pub due: Due,
    /// The attempt's backup (or why there was none).
    pub result: Result<BackupResult, BackupError>,
    pub seconds: f64,
    pub attempt: Option<attempt::Attempt>,
    /// The run produced a valid generation (the policy's success rule).
    pub succeeded: bool,
    /// The attempt failed and this retry is scheduled.
    pub retry: Option<Retry>,
    pub alert_opened: Option<crate::state::Alert>,
    /// Membership not decided for several backups in a row.
    pub membership_alert: Option<crate::state::Alert>,
    pub alerts_closed: Vec<crate::state::Alert>,
    pub notify_errors: Vec<String>,
    /// DR runs the backup started; the runner drives them in the background.
    pub dr: Vec<crate::state::DrRun>,
}

/// Work the runner finished: a policy run, or a backup's DR copies to one
/// destination.
pub enum Finished {
    Backup(Box<Ran>),
    Dr(Result<crate::state::DrRun, StateError>),
}

impl Finished {
    /// The policy run, when this is one.
    pub fn backup(self) -> Option<Ran> {
        match self {
            Finished::Backup(r) => Some(*r),
            Finished::Dr(_) => None,
        }
    }
}

/// What the runner did with a due run.
#[derive(Debug)]
pub enum Started {
    Started(Due),
    /// The policy's previous run was still in flight.
    Skipped(Due),
}

/// Starts due runs as tasks and collects them as they finish. The caller
/// holds the lease; each run holds a share of the state lock
/// ([`Runner::share_lock`]) but while it waits for AWS.
pub struct Runner {
    cloud: Arc<dyn Cloud>,
    store: SharedStore,
    config: Config,
    wait: Wait,
    ctx: attempt::Context,
    jobs: tokio::task::JoinSet<Ran>,
    in_flight: BTreeSet<String>,
    /// DR runs in flight, each on its own, independent of the next backups.
    dr_jobs: tokio::task::JoinSet<DrJob>,
    /// The DR runs this runner is driving, so that a resume never drives
    /// one twice.
    dr_driving: BTreeSet<DrKey>,
    dr_limits: crate::dr::Limits,
    /// Ended DR runs not yet handed out by [`Runner::finished`].
    dr_done: Vec<Result<crate::state::DrRun, StateError>>,
    /// The runner's hold on the state lock (none: the caller holds it).
    gate: Option<LockGate>,
}

/// A DR run: policy, backup, destination.
type DrKey = (String, String, crate::state::Destination);
/// What one DR task drove, and how each run ended.
type DrJob = (Vec<DrKey>, Vec<Result<crate::state::DrRun, StateError>>);

impl Runner {
    pub fn new(
        cloud: Arc<dyn Cloud>,
        store: SharedStore,
        config: &Config,
        wait: Wait,
        ctx: attempt::Context,
    ) -> Runner {
        Runner {
            cloud,
            store,
            config: config.clone(),
            wait,
            ctx,
            jobs: tokio::task::JoinSet::new(),
            in_flight: BTreeSet::new(),
            dr_jobs: tokio::task::JoinSet::new(),
            dr_limits: crate::dr::Limits::default(),
            dr_done: Vec::new(),
            dr_driving: BTreeSet::new(),
            gate: None,
        }
    }

    /// Works from `config` from now on (the runner follows an apply): the
    /// agenda's schedules and the notifications of the runs started next.
    /// Runs in flight keep what they started with.
    pub fn follow(&mut self, config: &Config) {
        self.config = config.clone();
        self.ctx.notifications = config.notifications.clone();
    }

    /// The runner's hold on the state lock, shared by the runs and DR runs
    /// started from now on: each takes it for its commits and lets go of it
    /// while it waits for AWS, and their retention deletes only while the
    /// lock they hold then is still theirs.
    pub fn share_lock(&mut self, gate: LockGate) {
        self.ctx.limits = self.ctx.limits.clone().with_gate(gate.clone());
        self.gate = Some(gate);
    }

    /// Some run is in flight.
    pub fn busy(&self) -> bool {
        !self.in_flight.is_empty() || !self.dr_jobs.is_empty() || !self.dr_done.is_empty()
    }

    fn policies(&self) -> Result<BTreeMap<String, PolicyState>, StateError> {
        let state = self.store.lock().expect("store").load()?;
        state.policies()
    }

    /// The attempts waiting in the state, but for policies in flight (their
    /// row marks the attempt running now). Rows of policies no longer in
    /// the state go.
    fn waiting(
        &self,
        policies: &BTreeMap<String, PolicyState>,
    ) -> Result<BTreeMap<String, Retry>, StateError> {
        let mut s = self.store.lock().expect("store");
        let mut out = s.retries()?;
        for gone in out
            .keys()
            .filter(|p| !policies.contains_key(*p))
            .cloned()
            .collect::<Vec<_>>()
        {
            s.clear_retry(&gone)?;
            out.remove(&gone);
        }
        out.retain(|p, _| !self.in_flight.contains(p));
        Ok(out)
    }

    /// The policies with a backup in flight.
    pub fn running(&self) -> BTreeSet<String> {
        self.in_flight.clone()
    }

    /// The agenda as the state has it now: the applied policies, their
    /// last slots and captures' last runs, the attempts waiting (but for
    /// those in flight), and the last daily summary.
    pub fn agenda(&self) -> Result<Agenda<'_>, StateError> {
        let policies = self.policies()?;
        let retries = self.waiting(&policies)?;
        let (mut last, summary_sent, checks, drills, reports) = {
            let s = self.store.lock().expect("store");
            (
                s.last_slots()?,
                s.note(SUMMARY_NOTE)?,
                s.secured_checks()?,
                s.drills()?,
                s.note(crate::report::scheduled::REPORTS_NOTE)?,
            )
        };
        // A note that does not read as a time counts as never written.
        if let Some(at) = reports.and_then(|r| DateTime::parse_from_rfc3339(&r).ok()) {
            last.insert(
                crate::runmode::agenda::REPORTS_KEY.to_string(),
                at.with_timezone(&Utc),
            );
        }
        for (account, c) in checks {
            last.insert(crate::runmode::agenda::secured_key(&account), c.checked_at);
        }
        let mut teardowns = Vec::new();
        for d in drills {
            last.insert(crate::runmode::agenda::drill_key(&d.scenario), d.started);
            if d.status == crate::state::DrillStatus::Kept {
                teardowns.extend(d.keep_until);
            }
        }
        Ok(Agenda {
            config: &self.config,
            policies,
            last,
            retries,
            summary_sent,
            teardowns,
        })
    }

    /// The policy runs due at `now`: scheduled slots and retries.
    pub fn due(&self, now: DateTime<Utc>) -> Result<Vec<Due>, StateError> {
        Ok(self.agenda()?.runs(now))
    }

    /// Stops every run in flight (after an error of the runner itself), so
    /// that nothing writes once the runner lets go of the state lock.
    pub async fn shutdown(&mut self) {
        self.jobs.shutdown().await;
        self.dr_jobs.shutdown().await;
        self.in_flight.clear();
        self.dr_done.clear();
        self.dr_driving.clear();
    }

    /// Closes backups an interrupted runner left behind (adopting their
    /// snapshots from AWS tags, marking them failed). Only while idle: with
    /// a run in flight, a `running` backup may be this runner's own. The
    /// interrupted attempt itself is still waiting in the state (see
    /// [`Runner::start`]) and is made again.
    ///
    /// It also resumes the DR runs left pending or in progress that this
    /// runner is not driving (a stopped process's, `backup --no-wait-dr`'s):
    /// their copies are adopted from the catalog and AWS, never made twice.
    pub async fn reconcile(
        &mut self,
        now: DateTime<Utc>,
    ) -> Result<backup::Reconciled, BackupError> {
        let open = crate::dr::open_runs(&self.store)?;
        self.start_dr(open, now);
        if !self.in_flight.is_empty() {
            return Ok(backup::Reconciled::default());
        }
        backup::reconcile_interrupted(self.cloud.clone(), self.store.clone(), now).await
    }

    /// Starts every run in `dues`. A new slot spends itself as it starts
    /// and its attempt is written to the state with it, in one transaction:
    /// a runner killed at any point of the attempt (even in its `before`
    /// script, before any backup record exists) leaves the attempt waiting,
    /// and the next runner makes it. A policy whose previous run is still in
    /// flight is skipped, and that is recorded too.
    pub fn start(
        &mut self,
        dues: Vec<Due>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Started>, StateError> {
        let mut out = Vec::new();
        for d in dues {
            if self.in_flight.contains(&d.policy) {
                if !d.is_retry() {
                    self.store.lock().expect("store").skip_run(&Skipped {
                        policy: d.policy.clone(),
                        slot: d.slot,
                        at: now,
                        reason: "the policy's previous run was still in flight".into(),
                    })?;
                    out.push(Started::Skipped(d));
                }
                continue;
            }
            if !d.is_retry() {
                self.store.lock().expect("store").begin_slot(&Retry {
                    policy: d.policy.clone(),
                    slot: d.slot,
                    attempt: 1,
                    due: now,
                })?;
            }
            // Taken while the caller holds its own share: the run's share
            // keeps the lock until its first wait.
            let guard = match &self.gate {
                Some(g) => Some(g.try_enter()?),
                None => None,
            };
            self.in_flight.insert(d.policy.clone());
            let (cloud, store, ctx, wait) = (
                self.cloud.clone(),
                self.store.clone(),
                self.ctx.clone(),
                self.wait,
            );
            let due = d.clone();
            self.jobs.spawn(async move {
                let _share = guard;
                let clock = std::time::Instant::now();
                let trigger = due.trigger();
                let run =
                    attempt::run(cloud, store.clone(), &due.policy, &trigger, now, wait, &ctx)
                        .await;
                let mut result = run.result;
                if let (Err(_), Some(g)) = (&result, ctx.limits.gate()) {
                    disown_failed(&store, g, &due.policy).await;
                }
                if let Ok(b) = &result {
                    // Only while the slot is still the last one: a later slot
                    // skipped meanwhile must not be moved back.
                    let recorded = store.lock().expect("store").set_last_backup(
                        &due.policy,
                        due.slot,
                        &b.record.id,
                    );
                    if let Err(e) = recorded {
                        result = Err(BackupError::State(e));
                    }
                }
                Ran {
                    due,
                    result,
                    seconds: clock.elapsed().as_secs_f64(),
                    attempt: run.attempt,
                    succeeded: run.succeeded,
                    retry: run.retry,
                    alert_opened: run.alert_opened,
                    membership_alert: run.membership_alert,
                    alerts_closed: run.alerts_closed,
                    notify_errors: run.notify_errors,
                    dr: run.dr,
                }
            });
            out.push(Started::Started(d));
        }
        Ok(out)
    }

    /// The copies in flight per destination for the DR runs started from
    /// now on (`lifeboat run --dr-concurrency`).
    pub fn dr_concurrency(&mut self, per_destination: usize) {
        self.dr_limits = crate::dr::Limits::new(per_destination);
    }

    /// Drives `runs` in the background (a finished backup's, or those a
    /// stopped runner left open).
    pub fn start_dr(&mut self, runs: Vec<crate::state::DrRun>, now: DateTime<Utc>) {
        let key = |r: &crate::state::DrRun| {
            (r.policy.clone(), r.backup_id.clone(), r.destination.clone())
        };
        let runs: Vec<_> = runs
            .into_iter()
            .filter(|r| !self.dr_driving.contains(&key(r)))
            .collect();
        if runs.is_empty() {
            return;
        }
        let keys: Vec<DrKey> = runs.iter().map(key).collect();
        self.dr_driving.extend(keys.iter().cloned());
        let mut work = crate::dr::DrWork::new(
            self.cloud.clone(),
            self.store.clone(),
            self.dr_limits.clone(),
            now,
        );
        work.interval = self.wait.interval;
        work.lock_id = self.ctx.lock_id.clone();
        work.gate = self.gate.clone();
        // Each run driven takes its own share of the runner's lock
        // (`dr::copy`): one share between runs waiting at once would be let
        // go of by the first to wait while the others commit.
        self.dr_jobs
            .spawn(async move { (keys, crate::dr::copy(&work, runs).await) });
    }

    /// The next work to finish; `None` when none is in flight. A finished
    /// backup's DR runs start here, in the background.
    pub async fn finished(&mut self) -> Option<Finished> {
        if let Some(d) = self.dr_done.pop() {
            return Some(Finished::Dr(d));
        }
        loop {
            let backups = !self.jobs.is_empty();
            let dr = !self.dr_jobs.is_empty();
            tokio::select! {
                Some(j) = self.jobs.join_next(), if backups => {
                    let ran = j.expect("a backup task panicked");
                    self.in_flight.remove(&ran.due.policy);
                    // A fresh DR run's timeout counts from its recorded start.
                    if let Some(at) = ran.dr.iter().map(|r| r.started).max() {
                        self.start_dr(ran.dr.clone(), at);
                    }
                    return Some(Finished::Backup(Box::new(ran)));
                }
                Some(j) = self.dr_jobs.join_next(), if dr => {
                    let (keys, done) = j.expect("a DR task panicked");
                    for k in keys {
                        self.dr_driving.remove(&k);
                    }
                    self.dr_done = done;
                    if let Some(d) = self.dr_done.pop() {
                        return Some(Finished::Dr(d));
                    }
                }
                else => return None,
            }
        }
    }
}

/// A runner's backup that ended in an error (the lock not taken again, a
/// commit refused) may be left `running`: disowned under the lock, it is no
/// longer in flight, so that reconciliation closes it instead of its policy
/// staying refused until the runner restarts. Without the lock (the lease
/// lost) there is nothing to do: the backup is an orphan already.
async fn disown_failed(store: &SharedStore, gate: &LockGate, policy: &str) {
    let Ok(_share) = gate.enter().await else {
        return;
    };
    // A failure leaves the owner row to the lease's end, as before.
    let _ = store
        .lock()
        .expect("store")
        .disown_running(policy, gate.owner());
}
