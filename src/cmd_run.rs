//! `lifeboat run [--once]`: the scheduled work. One runner acts on a
//! workspace at a time (a lease in the state, renewed while it lives). It
//! wakes for the next slot, retry, capture or daily summary, starts what is
//! due without waiting for it (see [`Runner`]), and logs one line per backup
//! start and finish. It holds the state lock only while work is in flight,
//! so plan and apply run in between.
//!
//! With `--fast-forward` (and `--now`), idle time passes at once: the runner
//! jumps its clock to its next wake-up instead of sleeping, while work in
//! flight still takes real time. With `--until` it stops at that instant.
//! Together they rehearse a week of scheduled work in seconds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use lifeboat_engine::backup::Wait;
use lifeboat_engine::cloud::Cloud;
use lifeboat_engine::runmode::attempt;
use lifeboat_engine::runmode::runner::{Due, Ran, Runner, Started};
use lifeboat_engine::state::{SharedStore, StateError};
use lifeboat_schema::Config;
use serde_json::json;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// How long a lease lives without renewal: a runner killed with `kill -9`
/// is replaced within this time.
const LEASE_TTL_SECS: i64 = 120;

/// The runner's clock: the real one, or `--now` moving forward in real
/// time, plus the idle time a fast-forwarding runner skipped.
struct Clock {
    base: DateTime<Utc>,
    started: std::time::Instant,
    skipped: std::cell::Cell<Duration>,
}

impl Clock {
    fn now(&self) -> DateTime<Utc> {
        self.base
            + Duration::from_std(self.started.elapsed()).unwrap_or_default()
            + self.skipped.get()
    }

    /// Moves the clock forward to `t` at once (fast-forward).
    fn jump_to(&self, t: DateTime<Utc>) {
        let now = self.now();
        if t > now {
            self.skipped.set(self.skipped.get() + (t - now));
        }
    }
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

struct Log(LogFormat);

impl Log {
    fn event(&self, now: DateTime<Utc>, event: &str, fields: serde_json::Value) {
        match self.0 {
            LogFormat::Json => {
                let mut v = json!({ "time": stamp(now), "event": event });
                if let (Some(o), serde_json::Value::Object(f)) = (v.as_object_mut(), fields) {
                    o.extend(f);
                }
                println!("{v}");
            }
            LogFormat::Human => {
                let mut line = format!("{}  {event:<15}", stamp(now));
                if let serde_json::Value::Object(f) = fields {
                    for (k, v) in f {
                        let v = match v {
                            serde_json::Value::String(s) => s,
                            other => other.to_string(),
                        };
                        line.push_str(&format!(" {k}={v}"));
                    }
                }
                println!("{line}");
            }
        }
    }

    fn started(&self, now: DateTime<Utc>, s: &Started) {
        match s {
            Started::Started(d) => {
                if let Some(r) = &d.supersedes {
                    self.event(
                        now,
                        "retry_replaced",
                        json!({ "policy": d.policy, "slot": stamp(r.slot), "attempt": r.attempt }),
                    );
                }
                let mut fields = json!({ "policy": d.policy, "slot": stamp(d.slot) });
                if d.is_retry() {
                    fields["attempt"] = json!(d.attempt);
                } else {
                    fields["schedules"] = json!(d.schedules.join(","));
                }
                self.event(now, "backup_start", fields);
            }
            Started::Skipped(d) => self.skipped(now, d),
        }
    }

    fn skipped(&self, now: DateTime<Utc>, d: &Due) {
        self.event(
            now,
            "backup_skipped",
            json!({ "policy": d.policy, "slot": stamp(d.slot), "reason": "previous run still in flight" }),
        );
    }

    fn finished(&self, now: DateTime<Utc>, r: &Ran) {
        if let (Some(a), Some(retry)) = (&r.attempt, &r.retry) {
            self.event(
                now,
                "attempt_failed",
                json!({
                    "policy": r.due.policy,
                    "attempt": a.number,
                    "backup": a.backup_id,
                    "problems": a.problems.join("; "),
                    "retry_at": stamp(retry.due),
                }),
            );
        }
        if let Some(a) = &r.alert_opened {
            self.event(
                now,
                "alert_open",
                json!({ "policy": a.policy, "alert": a.id, "message": a.message }),
            );
        }
        for a in &r.alerts_closed {
            self.event(
                now,
                "alert_close",
                json!({ "policy": a.policy, "alert": a.id }),
            );
        }
        for e in &r.notify_errors {
            self.event(
                now,
                "notify_error",
                json!({ "policy": r.due.policy, "error": e }),
            );
        }
        match &r.result {
            Ok(b) => self.event(
                now,
                "backup_finish",
                json!({
                    "policy": r.due.policy,
                    "backup": b.record.id,
                    "status": b.record.status.as_str(),
                    "snapshots": b.record.snapshots.len(),
                    "problems": b.record.problems.len(),
                    "retention_deleted": b.retention.done(),
                    "retention_failed": b.retention.failed(),
                    "attempt": r.due.attempt,
                    "valid": r.succeeded,
                    "seconds": (r.seconds * 1000.0).round() / 1000.0,
                }),
            ),
            Err(e) => self.event(
                now,
                "backup_error",
                json!({ "policy": r.due.policy, "error": e.to_string(), "seconds": (r.seconds * 1000.0).round() / 1000.0 }),
            ),
        }
    }
}

/// Captures every `vpc_capture` whose interval has passed, records the run,
/// and prunes capture versions no backup needs any more. Returns 1 when a
/// capture failed, else 0.
async fn capture_due(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    config: &Config,
    now: DateTime<Utc>,
    log: &Log,
) -> u8 {
    use lifeboat_engine::vpc::capture;
    let last = match store.lock().expect("store").last_slots() {
        Ok(l) => l,
        Err(e) => {
            log.event(now, "capture_error", json!({ "error": e.to_string() }));
            return 1;
        }
    };
    let mut code = 0;
    for name in capture::due_captures(config, &last, now) {
        let (mut stored, mut unchanged, mut failed) = (0, 0, 0);
        match capture::capture(cloud.clone(), store, config, &name, now).await {
            Ok(regions) => {
                for r in regions {
                    match r.result {
                        Ok(vpcs) => {
                            for v in vpcs {
                                match v.outcome {
                                    capture::VpcOutcome::Stored => stored += 1,
                                    capture::VpcOutcome::Unchanged => unchanged += 1,
                                }
                            }
                        }
                        Err(e) => {
                            failed += 1;
                            log.event(now, "capture_error", json!({ "capture": name, "region": r.region, "error": e.to_string() }));
                        }
                    }
                }
            }
            Err(e) => {
                failed += 1;
                log.event(
                    now,
                    "capture_error",
                    json!({ "capture": name, "error": e.to_string() }),
                );
            }
        }
        let recorded = store
            .lock()
            .expect("store")
            .transaction(|tx| tx.set_last_slot(&capture::run_key(&name), now, None));
        if failed > 0 || recorded.is_err() {
            code = 1;
        }
        log.event(now, "vpc_capture", json!({ "capture": name, "stored": stored, "unchanged": unchanged, "failed_regions": failed }));
    }
    match capture::prune(store, config) {
        Ok(0) => {}
        Ok(n) => log.event(now, "capture_pruned", json!({ "versions": n })),
        Err(e) => {
            log.event(now, "capture_error", json!({ "error": e.to_string() }));
            code = 1;
        }
    }
    code
}

/// Sleeps until `until` or until `stop` is raised, checking every second.
async fn sleep_until(clock: &Clock, until: DateTime<Utc>, stop: &AtomicBool) {
    while clock.now() < until && !stop.load(Ordering::SeqCst) {
        let left = (until - clock.now()).to_std().unwrap_or_default();
        tokio::time::sleep(left.min(std::time::Duration::from_secs(1))).await;
    }
}

/// How the runner runs.
#[derive(Debug, Clone, Copy)]
pub struct Mode {
    pub once: bool,
    /// Idle time passes at once (needs `--now`).
    pub fast_forward: bool,
    /// Stop at this instant.
    pub until: Option<DateTime<Utc>>,
    /// Create calls in flight per account and region, across all policies.
    pub concurrency: usize,
}

/// When to look again: the next slot, retry, capture or summary. A real
/// runner also looks once a minute, for policies an apply added meanwhile;
/// a fast-forwarding one jumps straight to the next wake-up.
fn wake_at(
    runner: &Runner,
    config: &Config,
    mode: Mode,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>> {
    let last = runner.last_slots()?;
    let next = [
        runner.next_wake(now)?,
        lifeboat_engine::vpc::capture::next_capture(config, &last, now),
        lifeboat_engine::runmode::notify::next_summary(config, now),
        mode.until,
    ]
    .into_iter()
    .flatten()
    .min();
    let poll = now + Duration::minutes(1);
    Ok(match (next, mode.fast_forward) {
        (Some(n), true) => n,
        (Some(n), false) => n.min(poll),
        (None, _) => poll,
    }
    .max(now))
}

/// The exit code of a finished run: 0 when it made a valid generation and
/// retention deleted what it should, else 1.
fn code_of(r: &Ran) -> u8 {
    match &r.result {
        Ok(b) if r.succeeded && b.retention.failed() == 0 => 0,
        _ => 1,
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn run(
    cloud: Arc<dyn Cloud>,
    store: SharedStore,
    config: &Config,
    now: Option<DateTime<Utc>>,
    mode: Mode,
    wait: Wait,
    format: LogFormat,
    stop: Arc<AtomicBool>,
    config_dir: &std::path::Path,
) -> Result<u8> {
    let ctx = attempt::Context {
        config_dir: config_dir.to_path_buf(),
        notifications: config.notifications.clone(),
        limits: lifeboat_engine::backup::Limits::new(mode.concurrency),
    };
    let clock = Clock {
        base: now.unwrap_or_else(Utc::now),
        started: std::time::Instant::now(),
        skipped: Default::default(),
    };
    let log = Log(format);
    let ttl = Duration::seconds(LEASE_TTL_SECS);
    let once = mode.once;

    // One runner per workspace: wait for the lease, and say so.
    let mut said = String::new();
    let lease = loop {
        let taken = store.lock().expect("store").take_lease(ttl);
        match taken {
            Ok(l) => break l,
            Err(StateError::Leased {
                holder, expires, ..
            }) => {
                let msg =
                    format!("another runner holds the lease ({holder}, until {expires}); waiting");
                if msg != said {
                    log.event(
                        clock.now(),
                        "waiting_for_lease",
                        json!({ "holder": holder, "until": expires }),
                    );
                    said = msg;
                }
                if stop.load(Ordering::SeqCst) {
                    return Ok(1);
                }
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    // The state lock while work is in flight (its id), renewed by the
    // heartbeat with the lease, however long a run or a drain takes.
    let held: Arc<Mutex<Option<String>>> = Default::default();
    let heartbeat = {
        let (store, id, stop, held) = (store.clone(), lease.id.clone(), stop.clone(), held.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                let lock = held.lock().expect("held lock").clone();
                let mut s = store.lock().expect("store");
                let renewed = s
                    .renew_lease(&id, ttl)
                    .and_then(|()| lock.map_or(Ok(()), |l| s.renew_lock(&l)));
                if let Err(e) = renewed {
                    eprintln!("Error: {e}");
                    stop.store(true, Ordering::SeqCst);
                    return;
                }
            }
        })
    };
    log.event(
        clock.now(),
        "runner_start",
        json!({ "lease": lease.id, "once": once, "fast_forward": mode.fast_forward }),
    );

    let mut runner = Runner::new(cloud.clone(), store.clone(), config, wait, ctx);
    // The state lock, held while work is in flight.
    let mut lock: Option<String> = None;
    let mut worst = 0u8;
    let mut said_next = None;
    let mut reconciled = false;
    let outcome: Result<u8> = 'run: loop {
        let now = clock.now();
        let stopping = stop.load(Ordering::SeqCst) || mode.until.is_some_and(|u| now >= u);
        let mut dues = if stopping {
            Vec::new()
        } else {
            match runner.due(now) {
                Ok(d) => d,
                Err(e) => break Err(e.into()),
            }
        };
        let last = match store.lock().expect("store").last_slots() {
            Ok(l) => l,
            Err(e) => break Err(e.into()),
        };
        let captures = !stopping
            && !lifeboat_engine::vpc::capture::due_captures(config, &last, now).is_empty();
        if (!dues.is_empty() || captures || !reconciled) && lock.is_none() {
            // The state lock is taken only while work is in flight, so plan
            // and apply can run in between.
            let locked = store.lock().expect("store").lock("run");
            match locked {
                Ok(l) => {
                    *held.lock().expect("held lock") = Some(l.id.clone());
                    lock = Some(l.id);
                }
                Err(StateError::Locked {
                    holder, operation, ..
                }) => {
                    log.event(
                        now,
                        "waiting_for_lock",
                        json!({ "holder": holder, "operation": operation }),
                    );
                    // Idle: a stop (or `--until`) need not wait for the lock.
                    if stop.load(Ordering::SeqCst) || stopping {
                        break Ok(worst.max(u8::from(once)));
                    }
                    // Real time: someone else's apply does not fast-forward.
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    continue;
                }
                Err(e) => break Err(e.into()),
            }
            // Idle with the lock: close what an interrupted runner left (at
            // start, and whenever work is about to begin).
            reconciled = true;
            match runner.reconcile(now).await {
                Ok(closed) => {
                    let again = !closed.is_empty();
                    for b in closed {
                        log.event(
                            now,
                            "backup_reconciled",
                            json!({ "policy": b.policy, "backup": b.id, "status": b.status.as_str(), "snapshots": b.snapshots.len() }),
                        );
                    }
                    // A closed backup may have made its retry due now.
                    if again && !stopping {
                        match runner.due(now) {
                            Ok(d) => dues = d,
                            Err(e) => break Err(e.into()),
                        }
                    }
                }
                Err(e) => break Err(e.into()),
            }
        }
        match runner.start(dues, now) {
            Ok(started) => {
                for s in &started {
                    log.started(clock.now(), s);
                }
            }
            Err(e) => break Err(e.into()),
        }
        if captures {
            // VPC captures on their own interval, then capture retention,
            // under the lock.
            worst = worst.max(capture_due(&cloud, &store, config, now, &log).await);
        }
        match lifeboat_engine::runmode::notify::daily_summary(&cloud, &store, config, clock.now())
            .await
        {
            Ok(true) => log.event(clock.now(), "daily_summary", json!({})),
            Ok(false) => {}
            Err(e) => log.event(
                clock.now(),
                "notify_error",
                json!({ "error": e.to_string() }),
            ),
        }
        let wake = match wake_at(&runner, config, mode, clock.now()) {
            Ok(w) => w,
            Err(e) => break Err(e),
        };
        // Work in flight: wait for it or for the wake-up, whichever first.
        // `--once` and a stopping runner wait for all of it.
        if runner.busy() {
            let drain = once || stopping;
            loop {
                let finished = if drain {
                    runner.finished().await
                } else {
                    tokio::select! {
                        r = runner.finished() => r,
                        _ = sleep_until(&clock, wake, &stop) => None,
                    }
                };
                let Some(r) = finished else { break };
                log.finished(clock.now(), &r);
                worst = worst.max(code_of(&r));
                if !drain || !runner.busy() {
                    break;
                }
            }
        }
        if !runner.busy() {
            if let Some(id) = lock.take() {
                *held.lock().expect("held lock") = None;
                if let Err(e) = store.lock().expect("store").unlock(&id) {
                    break 'run Err(e.into());
                }
            }
        }
        if once || stopping {
            break Ok(worst);
        }
        if !runner.busy() {
            let next = runner.next_wake(clock.now()).ok().flatten();
            if next.is_some() && next != said_next {
                log.event(clock.now(), "next_run", json!({ "at": next.map(stamp) }));
                said_next = next;
            }
            // Work that just finished may have scheduled a retry: look again.
            let wake = match wake_at(&runner, config, mode, clock.now()) {
                Ok(w) => w,
                Err(e) => break Err(e),
            };
            if mode.fast_forward {
                clock.jump_to(wake);
            } else {
                sleep_until(&clock, wake, &stop).await;
            }
        }
    };
    // After an error of the runner itself, runs still in flight stop before
    // the lock goes: nothing writes once it is released. Their backups stay
    // `running` and the next runner closes them.
    runner.shutdown().await;
    heartbeat.abort();
    if let Some(id) = lock.take() {
        store.lock().expect("store").unlock(&id)?;
    }
    store.lock().expect("store").release_lease(&lease.id)?;
    log.event(clock.now(), "runner_stop", json!({}));
    outcome
}
