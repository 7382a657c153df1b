//! `lifeboat run`: the scheduled work, as a daemon or once. One runner acts
//! on a workspace at a time (a lease in the state, renewed while it lives,
//! taken over once its holder is gone). It wakes for whatever the
//! [`Agenda`](crate::runmode::agenda::Agenda) says comes next, starts what is
//! due without waiting for it (see [`Runner`]), captures VPCs on their
//! interval, and sends the daily summary. It holds the state lock only
//! while its work needs it (`state::LockGate`): not while every run in
//! flight waits for AWS, so apply runs in between and meanwhile.
//!
//! With `fast_forward` (and a start instant), idle time passes at once (see
//! [`Clock`]); with `until` the runner stops at that instant. Together they
//! rehearse a week of scheduled work in seconds.
//!
//! The daemon prints nothing: it reports each thing it does as a
//! [`RunEvent`], and the caller says it in its own words.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use lifeboat_schema::Config;

use crate::backup::{self, BackupError, Wait};
use crate::cloud::Cloud;
use crate::runmode::agenda::Due;
use crate::runmode::attempt;
use crate::runmode::clock::{self, Clock};
use crate::runmode::notify;
use crate::runmode::runner::{Finished, Ran, Runner, Started};
use crate::state::{BackupRecord, DrRun, DrStatus, Retry, SharedStore, StateError};
use crate::vpc::capture as vpc_capture;

mod hold;
mod reload;

/// How long a lease lives without renewal by default: a runner killed
/// with `kill -9` on another host is replaced by a standby within this
/// time. The runner's state lock lives as long, so that a dead leader's
/// lock does not hold its successor back.
pub const LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// How the runner runs.
#[derive(Debug, Clone, Copy)]
pub struct Mode {
    /// Do what is due now (and what was missed within one interval), then stop.
    pub once: bool,
    /// Idle time passes at once (needs a start instant).
    pub fast_forward: bool,
    /// Stop at this instant.
    pub until: Option<DateTime<Utc>>,
    /// Create calls in flight per account and region, across all policies.
    pub concurrency: usize,
    /// DR copies in flight per destination region and account.
    pub dr_concurrency: usize,
    /// How long the lease and the runner's state lock live without
    /// renewal; both are renewed every third of it.
    pub lease_ttl: std::time::Duration,
}

impl Mode {
    fn ttl(&self) -> Duration {
        Duration::from_std(self.lease_ttl).unwrap_or(Duration::seconds(30))
    }
}

/// What a runner did, as it happens.
pub enum RunEvent {
    /// Another runner holds the lease; this one waits (reported again only
    /// when the holder or its expiry changes).
    LeaseWaiting {
        holder: String,
        until: String,
    },
    /// The lease is taken: the runner starts.
    RunnerStarted {
        lease: String,
        once: bool,
        fast_forward: bool,
    },
    /// Work is due, but someone else holds the state lock.
    LockWaiting {
        holder: String,
        operation: String,
    },
    /// A backup an interrupted runner left behind was closed.
    BackupReconciled(BackupRecord),
    /// A backup an interrupted runner left behind could not be looked at
    /// (its account cannot be reached); it stays open for the next try and
    /// every other policy runs on.
    ReconcileFailed {
        policy: String,
        backup: String,
        error: String,
    },
    /// A new slot replaced a retry of an earlier slot still waiting.
    RetryReplaced {
        policy: String,
        retry: Retry,
    },
    BackupStarted(Due),
    /// A slot came while the policy's previous run was still in flight.
    BackupSkipped(Due),
    /// A run ended (its attempt failed and a retry waits, or it counted).
    BackupFinished(Box<Ran>),
    /// A backup's DR copies to one destination ended (completed, failed,
    /// timed out), or could not be recorded.
    DrFinished(Result<DrRun, String>),
    /// A capture, or one region of it, could not be made or recorded
    /// (`capture` is empty when capture retention or the state failed).
    CaptureFailed {
        capture: Option<String>,
        region: Option<String>,
        error: String,
    },
    /// A capture ran: VPCs whose document changed were stored.
    CaptureFinished {
        capture: String,
        stored: usize,
        unchanged: usize,
        failed_regions: usize,
    },
    /// Capture versions no backup or clone needs any more went.
    CapturesPruned {
        versions: usize,
    },
    /// A secured-DR check ran (`check_every`): its summary, and whether it
    /// opened or closed the account's alert.
    SecuredChecked {
        report: Box<crate::iam::check::Report>,
        alert: crate::iam::check::AlertChange,
    },
    /// A secured-DR check could not be made or recorded.
    SecuredCheckFailed {
        account: String,
        error: String,
    },
    /// An account's tag scan ran (`tag_scan { every }`): the membership
    /// changes it recorded and the tags it could not follow.
    TagScanned(Box<crate::membership::scan::AccountScan>),
    /// A tag scan could not be made or recorded.
    TagScanFailed {
        account: String,
        error: String,
    },
    /// A drill of a recovery scenario started, ended or was cleaned up.
    Drill(crate::runmode::drills::DrillEvent),
    /// A resource-control operation ran (each target's row).
    Control(Box<crate::control::Outcome>),
    /// A resource-control operation could not be recorded.
    ControlFailed {
        group: String,
        error: String,
    },
    SummarySent,
    SummaryFailed {
        error: String,
    },
    /// A scheduled report was written to S3 (`notifications { reports }`).
    ReportWritten {
        kind: &'static str,
        url: String,
        rows: usize,
    },
    /// A scheduled report could not be made or written: where it was
    /// going, and the error (a failed call names its account, region and
    /// action).
    ReportFailed {
        kind: &'static str,
        url: String,
        error: String,
    },
    /// The runner read the configuration an apply recorded (it changed, or
    /// SIGHUP asked): the serial it was read at before and now, and per
    /// kind what changed (`"+1 ~2"`: added, removed with `-`, changed).
    ConfigReloaded {
        from_serial: u64,
        to_serial: u64,
        changes: Vec<(String, String)>,
        requested: bool,
    },
    /// The configuration an apply recorded cannot be read by this build
    /// (a newer Lifeboat applied it): the runner keeps working from the
    /// configuration it has.
    ConfigUnreadable {
        serial: u64,
        error: String,
    },
    /// The next slot or retry, when it changed (while idle).
    NextRun(DateTime<Utc>),
    /// The lease or the state lock could not be renewed (taken over or
    /// broken): the runner stops.
    LeaseLost(StateError),
    RunnerStopped,
}

/// Where a runner reports its events: called with the runner's clock and
/// the event, from the runner and from its heartbeat.
pub type OnEvent = Arc<dyn Fn(DateTime<Utc>, &RunEvent) + Send + Sync>;

/// How a runner ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Every run made a valid generation and retention deleted what it should.
    Clean,
    /// Some run, capture or retention failed, or `once` could not do its work.
    Failed,
    /// The lease or the state lock was taken over or broken: the runner
    /// started nothing more, abandoned the runs in flight (the next runner
    /// closes their backups) and stopped.
    HoldLost,
}

impl Exit {
    /// The process exit code: 0 when clean, 1 when some work failed, 4 when
    /// the runner lost its lease or state lock.
    pub fn code(self) -> u8 {
        match self {
            Exit::Clean => 0,
            Exit::Failed => 1,
            Exit::HoldLost => 4,
        }
    }

    fn of(failed: bool) -> Exit {
        if failed {
            Exit::Failed
        } else {
            Exit::Clean
        }
    }
}

/// Why a runner stopped before its time.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Backup(#[from] BackupError),
}

/// A runner about to start: what it acts on, and how.
pub struct Daemon<'a> {
    pub cloud: Arc<dyn Cloud>,
    pub store: SharedStore,
    pub config: &'a Config,
    /// Where relative script paths start.
    pub config_dir: PathBuf,
    pub clock: Arc<Clock>,
    pub mode: Mode,
    pub wait: Wait,
    /// Raised (by a signal, or the heartbeat) to stop after the work in flight.
    pub stop: Arc<AtomicBool>,
    pub on_event: OnEvent,
    /// Counts what the runner reports, and when it looks at its work.
    pub metrics: Arc<crate::runmode::metrics::RunMetrics>,
}

/// The exit of a finished run: clean when it made a valid generation and
/// retention deleted what it should.
fn exit_of(r: &Ran) -> Exit {
    match &r.result {
        Ok(b) if r.succeeded && b.retention.failed() == 0 => Exit::Clean,
        _ => Exit::Failed,
    }
}

/// What one look at the agenda decided.
enum Step {
    /// Look again.
    Again,
    /// Stop with this exit.
    Stop(Exit),
}

/// The state of a runner holding the lease.
struct Running<'d, 'a> {
    d: &'d Daemon<'a>,
    runner: Runner,
    /// The state lock's id while held, shared with the heartbeat.
    lock: Arc<Mutex<Option<String>>>,
    /// The runner's hold on the state lock, shared with its runs.
    gate: crate::state::LockGate,
    /// This step's own share of the lock, while it starts work.
    share: Option<crate::state::GateGuard>,
    /// This runner's lease.
    lease: String,
    /// Raised (by the heartbeat, or a look at the state) once the lease or
    /// the state lock is no longer this runner's.
    lost: Arc<AtomicBool>,
    worst: Exit,
    said_next: Option<DateTime<Utc>>,
    reconciled: bool,
    /// The drill work started at an earlier look, while it runs.
    drill_task: Option<crate::runmode::drills::DrillTask>,
    /// When drill work was last started: without a drill due, the look for
    /// drills dead processes left and kept drills to end is made every
    /// `agenda::DRILL_LOOK`.
    drills_looked: Option<DateTime<Utc>>,
    /// The resource-control operations in flight.
    controls: crate::control::runner::ControlTasks,
}

impl Daemon<'_> {
    fn report(&self, event: RunEvent) {
        self.metrics.observe(&event);
        (self.on_event)(self.clock.now(), &event);
    }

    pub(crate) fn report_at(&self, at: DateTime<Utc>, event: RunEvent) {
        self.metrics.observe(&event);
        (self.on_event)(at, &event);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Runs until `once` is done, `until` comes, or `stop` is raised.
    pub async fn run(&self) -> Result<Exit, DaemonError> {
        // Before the lease: what is applied while it waits is followed.
        let follow = reload::Follow::new(&self.store, self.config)?;
        let Some(lease) = self.take_lease().await? else {
            return Ok(Exit::Failed);
        };
        let lock: Arc<Mutex<Option<String>>> = Default::default();
        let lost = Arc::new(AtomicBool::new(false));
        let heartbeat = self.heartbeat(&lease.id, lock.clone(), lost.clone());
        self.report(RunEvent::RunnerStarted {
            lease: lease.id.clone(),
            once: self.mode.once,
            fast_forward: self.mode.fast_forward,
        });
        let ctx = attempt::Context {
            config_dir: self.config_dir.clone(),
            notifications: self.config.notifications.clone(),
            limits: backup::Limits::new(self.mode.concurrency),
            lock_id: None,
        };
        let mut runner = Runner::new(
            self.cloud.clone(),
            self.store.clone(),
            self.config,
            self.wait,
            ctx,
        );
        runner.dr_concurrency(self.mode.dr_concurrency);
        let gate = self.gate(&lease, lock.clone(), lost.clone());
        runner.share_lock(gate.clone());
        let r = Running {
            d: self,
            runner,
            lock,
            gate,
            share: None,
            lease: lease.id.clone(),
            lost,
            worst: Exit::Clean,
            said_next: None,
            reconciled: false,
            drill_task: None,
            drills_looked: None,
            controls: Default::default(),
        };
        // Steps, following the configuration applies record (`reload`).
        let (outcome, mut r) = self.steps(r, follow).await;
        // After an error of the runner itself, or once its lease or lock was
        // lost, runs still in flight stop before the lock goes: nothing
        // writes once it is released. Their backups stay `running` and the
        // next runner closes them.
        r.runner.shutdown().await;
        heartbeat.abort();
        r.unlock();
        self.store.lock().expect("store").release_lease(&lease.id)?;
        self.report(RunEvent::RunnerStopped);
        outcome
    }

    /// Captures every `vpc_capture` in `due`, records each run, and prunes
    /// capture versions no backup needs any more. Returns whether something
    /// failed.
    async fn capture(&self, due: &[String], now: DateTime<Utc>) -> bool {
        let mut failed_any = false;
        for name in due {
            let (mut stored, mut unchanged, mut failed) = (0, 0, 0);
            let failure = |region: Option<String>, error: String| RunEvent::CaptureFailed {
                capture: Some(name.clone()),
                region,
                error,
            };
            match vpc_capture::capture(self.cloud.clone(), &self.store, self.config, name, now)
                .await
            {
                Ok(regions) => {
                    for r in regions {
                        match r.result {
                            Ok(vpcs) => {
                                for v in vpcs {
                                    match v.outcome {
                                        vpc_capture::VpcOutcome::Stored => stored += 1,
                                        vpc_capture::VpcOutcome::Unchanged => unchanged += 1,
                                    }
                                }
                            }
                            Err(e) => {
                                failed += 1;
                                self.report_at(now, failure(Some(r.region), e.to_string()));
                            }
                        }
                    }
                }
                Err(e) => {
                    failed += 1;
                    self.report_at(now, failure(None, e.to_string()));
                }
            }
            let key = crate::runmode::agenda::capture_key(name);
            let recorded = self
                .store
                .lock()
                .expect("store")
                .transaction(|tx| tx.set_last_slot(&key, now, None));
            failed_any |= failed > 0 || recorded.is_err();
            self.report_at(
                now,
                RunEvent::CaptureFinished {
                    capture: name.clone(),
                    stored,
                    unchanged,
                    failed_regions: failed,
                },
            );
        }
        match vpc_capture::prune(&self.store, self.config) {
            Ok(0) => {}
            Ok(n) => self.report_at(now, RunEvent::CapturesPruned { versions: n }),
            Err(e) => {
                self.report_at(now, capture_error(e));
                failed_any = true;
            }
        }
        failed_any
    }
}

impl Daemon<'_> {
    /// Scans the accounts in `due` and records what changed; each scan's
    /// time is recorded whatever it found, so that a failing one is tried
    /// again one interval on, not at every wake-up. Returns whether one
    /// failed.
    async fn tag_scan(
        &self,
        due: &[String],
        busy: &std::collections::BTreeSet<String>,
        now: DateTime<Utc>,
    ) -> bool {
        use crate::membership::scan::{self, ScanMode};
        let mut failed = false;
        for name in due {
            let Some(account) = self.config.accounts.get(name) else {
                continue;
            };
            let scan_id = format!("scan-{}", now.format("%Y%m%dT%H%M%SZ"));
            let mode = ScanMode::Record {
                scan_id: &scan_id,
                busy,
            };
            match scan::scan(&self.cloud, &self.store, self.config, account, now, mode).await {
                Ok(s) => {
                    failed |= s.error.is_some() || s.policies.iter().any(|p| p.error.is_some());
                    // A departure that opened an alert is sent as a
                    // backup's would be: scans often see it first.
                    if let Some(n) = &self.config.notifications {
                        for c in s.changes().filter(|c| c.alert) {
                            let (subject, text) = notify::departed_message(c);
                            let sent =
                                notify::publish(&self.cloud, &self.store, n, &subject, &text).await;
                            if let Err(e) = sent {
                                failed = true;
                                self.report_at(
                                    now,
                                    RunEvent::TagScanFailed {
                                        account: name.clone(),
                                        error: format!("cannot publish to SNS: {e}"),
                                    },
                                );
                            }
                        }
                    }
                    self.report_at(now, RunEvent::TagScanned(Box::new(s)));
                }
                Err(e) => {
                    failed = true;
                    self.report_at(
                        now,
                        RunEvent::TagScanFailed {
                            account: name.clone(),
                            error: e.to_string(),
                        },
                    );
                }
            }
            let key = crate::runmode::agenda::tag_scan_key(name);
            let recorded = self
                .store
                .lock()
                .expect("store")
                .transaction(|tx| tx.set_last_slot(&key, now, None));
            if let Err(e) = recorded {
                failed = true;
                self.report_at(
                    now,
                    RunEvent::TagScanFailed {
                        account: name.clone(),
                        error: e.to_string(),
                    },
                );
            }
        }
        failed
    }

    /// The scheduled reports, due now: one event per object.
    async fn write_reports(&self, now: DateTime<Utc>) {
        for w in crate::report::scheduled::write(&self.cloud, &self.store, self.config, now).await {
            let kind = w.kind.as_str();
            self.report(match w.error {
                None => RunEvent::ReportWritten {
                    kind,
                    url: w.url,
                    rows: w.rows,
                },
                Some(e) => RunEvent::ReportFailed {
                    kind,
                    url: w.url,
                    error: e.to_string(),
                },
            });
        }
    }

    /// Checks the secured accounts in `due` (no state lock: a check only
    /// reads IAM and records its own row and alert). Returns whether one
    /// failed; findings are not a failure of the runner, they open an alert.
    async fn check_secured(&self, due: &[String], now: DateTime<Utc>) -> bool {
        let mut failed = false;
        for name in due {
            let Some(account) = self.config.accounts.get(name) else {
                continue;
            };
            let checked = async {
                let report = crate::iam::check::check(&self.cloud, account).await?;
                let alert =
                    crate::iam::check::record(&self.cloud, &self.store, self.config, &report, now)
                        .await?;
                Ok::<_, crate::iam::check::CheckError>((report, alert))
            };
            match checked.await {
                Ok((report, alert)) => self.report_at(
                    now,
                    RunEvent::SecuredChecked {
                        report: Box::new(report),
                        alert,
                    },
                ),
                // The check ran and was recorded; only publishing its alert
                // failed: not a check that could not be made.
                Err(e @ crate::iam::check::CheckError::Notify(_)) => {
                    failed = true;
                    self.report_at(
                        now,
                        RunEvent::SecuredCheckFailed {
                            account: name.clone(),
                            error: e.to_string(),
                        },
                    );
                }
                Err(e) => {
                    failed = true;
                    let _ = crate::iam::check::record_failure(
                        &self.cloud,
                        &self.store,
                        self.config,
                        name,
                        &e.to_string(),
                        now,
                    )
                    .await;
                    self.report_at(
                        now,
                        RunEvent::SecuredCheckFailed {
                            account: name.clone(),
                            error: e.to_string(),
                        },
                    );
                }
            }
        }
        failed
    }
}

/// Returns once `flag` is raised.
async fn raised(flag: &AtomicBool) {
    while !flag.load(Ordering::SeqCst) {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

fn capture_error(e: StateError) -> RunEvent {
    RunEvent::CaptureFailed {
        capture: None,
        region: None,
        error: e.to_string(),
    }
}

impl Running<'_, '_> {
    /// One look at the agenda: start what is due (taking the state lock
    /// for it), capture, send the summary, then wait for the work in flight
    /// or the next wake-up.
    async fn step(&mut self) -> Result<Step, DaemonError> {
        let d = self.d;
        d.metrics.look();
        if self.hold_lost()? {
            return Ok(Step::Stop(Exit::HoldLost));
        }
        let now = d.clock.now();
        let stopping = d.stopped() || d.mode.until.is_some_and(|u| now >= u);
        let (mut dues, captures, checks, drills, controls, scans, reports) = if stopping {
            Default::default()
        } else {
            let agenda = self.runner.agenda()?;
            (
                agenda.runs(now),
                agenda.captures(now),
                agenda.secured_checks(now),
                agenda.drills(now),
                agenda.controls(now),
                agenda.tag_scans(now),
                agenda.reports(now),
            )
        };
        let busy = self.runner.busy();
        let locked_work = !dues.is_empty() || !captures.is_empty() || !scans.is_empty();
        if locked_work || (!self.reconciled && !busy) {
            if let Some(step) = self.take_lock(now, stopping).await? {
                return Ok(step);
            }
            // Only while idle: a runner's own backups are not reconciled.
            if !busy && self.reconcile(now).await? && !stopping {
                // A closed backup may have made its retry due now.
                dues = self.runner.due(now)?;
            }
        }
        for s in self.runner.start(dues, now)? {
            self.report_started(s);
        }
        if !captures.is_empty() {
            // VPC captures on their own interval, then capture retention,
            // under the lock.
            if d.capture(&captures, now).await {
                self.worst = Exit::Failed;
            }
        }
        if !scans.is_empty() && self.share.is_some() {
            // Under the lock, as a backup's own membership decision is;
            // the policies with a backup in flight are left to it.
            if d.tag_scan(&scans, &self.runner.running(), now).await {
                self.worst = Exit::Failed;
            }
        }
        self.controls_done(false).await;
        if !stopping {
            d.start_controls(&mut self.controls, &controls, now);
        }
        if d.check_secured(&checks, now).await {
            self.worst = Exit::Failed;
        }
        if self.drill_task.as_ref().is_some_and(|t| t.is_finished()) {
            self.drills_done().await;
        }
        let look_again = self
            .drills_looked
            .is_none_or(|t| now - t >= crate::runmode::agenda::DRILL_LOOK || now < t);
        if !stopping && self.drill_task.is_none() && (!drills.is_empty() || look_again) {
            self.drill_task = Some(d.start_drills(&drills, now));
            self.drills_looked = Some(now);
        }
        match notify::daily_summary(&d.cloud, &d.store, d.config, d.clock.now()).await {
            Ok(true) => d.report(RunEvent::SummarySent),
            Ok(false) => {}
            Err(e) => d.report(RunEvent::SummaryFailed {
                error: e.to_string(),
            }),
        }
        if reports {
            d.write_reports(now).await;
        }
        let wake = self.wake_at(d.clock.now())?;
        // The runs hold their own shares of the lock: it goes once none
        // needs it (all waiting for AWS, or done).
        self.unlock();
        self.wait_for_work(wake, self.d.mode.once || stopping).await;
        if self.hold_lost()? {
            return Ok(Step::Stop(Exit::HoldLost));
        }
        if d.mode.once || stopping {
            // A stop raised ends their waits; what they verified is logged.
            self.controls_done(true).await;
            if d.mode.once && !d.stopped() {
                // `--once` reports its drills: it waits for them.
                self.drills_done().await;
            } else if let Some(t) = self.drill_task.take() {
                // Stopping: what a drill in flight made is torn down by the
                // next runner (this process, its holder, is gone then).
                t.abort();
            }
            return Ok(Step::Stop(self.worst));
        }
        if !self.runner.busy() {
            self.idle().await?;
        }
        Ok(Step::Again)
    }

    /// Is the lease, or the state lock while held, no longer this runner's?
    /// Looked at in the state before each step and after waiting for work,
    /// besides the heartbeat's renewals, so that no step starts work for a
    /// workspace another runner took over.
    fn hold_lost(&mut self) -> Result<bool, StateError> {
        if self.lost.load(Ordering::SeqCst) {
            return Ok(true);
        }
        let (lease, lock, held) = {
            // The slot is kept while the state is read: a run letting go of
            // the lock meanwhile is not taken for a broken lock.
            let slot = self.lock.lock().expect("held lock");
            let s = self.d.store.lock().expect("store");
            (s.current_lease()?, slot.clone(), s.current_lock()?)
        };
        let why = if lease.as_ref().map(|l| &l.id) != Some(&self.lease) {
            format!(
                "the run lease {} was taken over by another runner",
                self.lease
            )
        } else if let Some(id) = lock.filter(|id| held.as_ref().map(|l| &l.id) != Some(id)) {
            format!("the state lock {id} was broken by someone else (force-unlock?)")
        } else {
            return Ok(false);
        };
        if !self.lost.swap(true, Ordering::SeqCst) {
            self.d
                .report(RunEvent::LeaseLost(StateError::Conflict(format!(
                    "{why}; stopping"
                ))));
        }
        self.d.stop.store(true, Ordering::SeqCst);
        Ok(true)
    }

    /// Takes this step's share of the state lock for the work about to
    /// start: `None` when taken,
    /// else what to do while someone else holds it.
    async fn take_lock(
        &mut self,
        now: DateTime<Utc>,
        stopping: bool,
    ) -> Result<Option<Step>, StateError> {
        let d = self.d;
        // The state lock is taken only while work needs it, so plan and
        // apply can run in between, and while backups wait for AWS.
        match self.gate.try_enter() {
            Ok(share) => {
                self.share = Some(share);
                Ok(None)
            }
            Err(StateError::Locked {
                holder, operation, ..
            }) => {
                d.report_at(now, RunEvent::LockWaiting { holder, operation });
                // Idle: a stop (or `until`) need not wait for the lock.
                if d.stopped() || stopping {
                    return Ok(Some(Step::Stop(self.worst.max(Exit::of(d.mode.once)))));
                }
                // Real time: someone else's apply does not fast-forward.
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                Ok(Some(Step::Again))
            }
            Err(e) => Err(e),
        }
    }

    /// Idle with the lock: closes what an interrupted runner left (at
    /// start, and whenever work is about to begin). Returns whether it
    /// closed any backup.
    async fn reconcile(&mut self, now: DateTime<Utc>) -> Result<bool, BackupError> {
        let done = self.runner.reconcile(now).await?;
        // One that could not be closed is tried again at the next wake-up.
        self.reconciled = done.failed.is_empty();
        let any = !done.closed.is_empty();
        for b in done.closed {
            self.d.report_at(now, RunEvent::BackupReconciled(b));
        }
        for (policy, backup, e) in done.failed {
            let error = e.to_string();
            self.d.report_at(
                now,
                RunEvent::ReconcileFailed {
                    policy,
                    backup,
                    error,
                },
            );
        }
        Ok(any)
    }

    fn report_started(&self, s: Started) {
        let d = self.d;
        let at = d.clock.now();
        match s {
            Started::Started(due) => {
                if let Some(retry) = &due.supersedes {
                    let policy = due.policy.clone();
                    let retry = retry.clone();
                    d.report_at(at, RunEvent::RetryReplaced { policy, retry });
                }
                d.report_at(at, RunEvent::BackupStarted(due));
            }
            Started::Skipped(due) => d.report_at(at, RunEvent::BackupSkipped(due)),
        }
    }

    /// When to look again: the next thing on the agenda, or `until`.
    fn wake_at(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>, StateError> {
        let next = self.runner.agenda()?.next_due(now);
        let next = [next, self.d.mode.until].into_iter().flatten().min();
        Ok(clock::wake_at(next, now, self.d.mode.fast_forward))
    }

    /// Work in flight: waits for it or for the wake-up, whichever comes
    /// first; with `drain` (once, or stopping), for all of it.
    async fn wait_for_work(&mut self, wake: DateTime<Utc>, drain: bool) {
        let d = self.d;
        while self.runner.busy() {
            // A lost lease or lock ends any wait, a drain's included: the
            // runs in flight are then abandoned, not finished.
            let finished = if drain {
                tokio::select! {
                    r = self.runner.finished() => r,
                    _ = raised(&self.lost) => None,
                }
            } else {
                tokio::select! {
                    r = self.runner.finished() => r,
                    _ = d.clock.sleep_until(wake, &d.stop) => None,
                }
            };
            let Some(r) = finished else { break };
            match r {
                Finished::Backup(r) => {
                    self.worst = self.worst.max(exit_of(&r));
                    d.report(RunEvent::BackupFinished(r));
                }
                Finished::Dr(r) => {
                    if !matches!(&r, Ok(run) if run.status == DrStatus::Completed) {
                        self.worst = Exit::Failed;
                    }
                    d.report(RunEvent::DrFinished(r.map_err(|e| e.to_string())));
                }
            }
            if !drain {
                break;
            }
        }
    }

    /// Lets go of this step's share of the state lock: the lock goes
    /// when no run holds one either.
    fn unlock(&mut self) {
        self.share = None;
    }

    /// Nothing in flight: says when the next run is (when that changed),
    /// then sleeps (or jumps) to the next wake-up. Work that just finished
    /// may have scheduled a retry, so the agenda is read again.
    async fn idle(&mut self) -> Result<(), StateError> {
        let d = self.d;
        let now = d.clock.now();
        let next = self.runner.agenda().ok().and_then(|a| a.next_run(now));
        if let Some(at) = next {
            if next != self.said_next {
                d.report(RunEvent::NextRun(at));
                self.said_next = next;
            }
        }
        let wake = self.wake_at(d.clock.now())?;
        if self.controls.busy() {
            // Time jumps only once they are over, as they take their time;
            // in real time, one that ends wakes the loop.
            if d.mode.fast_forward {
                self.controls_done(true).await;
            } else {
                tokio::select! {
                    r = self.controls.next() => {
                        if r.is_some_and(|r| d.control_done(r)) {
                            self.worst = Exit::Failed;
                        }
                        return Ok(());
                    }
                    _ = d.clock.sleep_until(wake, &d.stop) => return Ok(()),
                }
            }
        }
        if self.drill_task.is_some() && d.mode.fast_forward {
            // Time jumps only once the drill in flight is over, as it
            // would have taken its time.
            self.drills_done().await;
        } else if let Some(t) = self.drill_task.as_mut() {
            // A drill that ends wakes the loop: its alert is not left for
            // the next wake-up.
            tokio::select! {
                r = t => {
                    self.drill_task = None;
                    if d.drills_done(r, d.clock.now()).await {
                        self.worst = Exit::Failed;
                    }
                }
                _ = d.clock.sleep_until(wake, &d.stop) => {}
            }
        } else if d.mode.fast_forward {
            d.clock.jump_to(wake);
        } else {
            d.clock.sleep_until(wake, &d.stop).await;
        }
        Ok(())
    }

    /// Reports the resource-control operations that ended; with `all`,
    /// waits for every one in flight.
    async fn controls_done(&mut self, all: bool) {
        loop {
            let done = if all {
                self.controls.next().await
            } else {
                // Only those already over: `next` answers at once then.
                tokio::select! {
                    biased;
                    r = self.controls.next() => r,
                    _ = std::future::ready(()) => None,
                }
            };
            let Some(done) = done else { break };
            if self.d.control_done(done) {
                self.worst = Exit::Failed;
            }
        }
    }

    /// Waits for the drill task in flight, if any, and reports it.
    async fn drills_done(&mut self) {
        if let Some(t) = self.drill_task.take() {
            let d = self.d;
            if d.drills_done(t.await, d.clock.now()).await {
                self.worst = Exit::Failed;
            }
        }
    }
}
