//! `lifeboat run [--once]`: the scheduled work. One runner acts on a
//! workspace at a time (a lease in the state, renewed while it lives); each
//! tick takes the state lock briefly, performs what is due and logs one line
//! per backup start and finish.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use lifeboat_engine::backup::Wait;
use lifeboat_engine::cloud::Cloud;
use lifeboat_engine::planner;
use lifeboat_engine::policy_run;
use lifeboat_engine::run::{self, Due, Ran};
use lifeboat_engine::state::{StateError, Store};
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

/// The runner's clock: the real one, or `--now` moving forward in real time.
struct Clock {
    base: DateTime<Utc>,
    started: std::time::Instant,
}

impl Clock {
    fn now(&self) -> DateTime<Utc> {
        self.base + Duration::from_std(self.started.elapsed()).unwrap_or_default()
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

    fn started(&self, now: DateTime<Utc>, d: &Due) {
        self.event(
            now,
            "backup_start",
            json!({ "policy": d.policy, "slot": stamp(d.slot), "schedules": d.schedules.join(",") }),
        );
    }

    fn finished(&self, now: DateTime<Utc>, r: &Ran) {
        for a in r.attempts.iter().filter(|a| !a.valid) {
            if r.attempts.len() > 1 {
                self.event(
                    now,
                    "attempt_failed",
                    json!({
                        "policy": r.due.policy,
                        "attempt": a.number,
                        "backup": a.backup_id,
                        "problems": a.problems.join("; "),
                    }),
                );
            }
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
                    "attempts": r.attempts.len(),
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
    store: &Arc<Mutex<Store>>,
    config: &Config,
    now: DateTime<Utc>,
    log: &Log,
) -> u8 {
    use lifeboat_engine::vpc;
    let last = match store.lock().expect("store").last_slots() {
        Ok(l) => l,
        Err(e) => {
            log.event(now, "capture_error", json!({ "error": e.to_string() }));
            return 1;
        }
    };
    let mut code = 0;
    for name in vpc::due_captures(config, &last, now) {
        let (mut stored, mut unchanged, mut failed) = (0, 0, 0);
        match vpc::capture(cloud.clone(), store, config, &name, now).await {
            Ok(regions) => {
                for r in regions {
                    match r.result {
                        Ok(vpcs) => {
                            for v in vpcs {
                                match v.outcome {
                                    vpc::VpcOutcome::Stored => stored += 1,
                                    vpc::VpcOutcome::Unchanged => unchanged += 1,
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
            .transaction(|tx| tx.set_last_slot(&vpc::run_key(&name), now, None));
        if failed > 0 || recorded.is_err() {
            code = 1;
        }
        log.event(now, "vpc_capture", json!({ "capture": name, "stored": stored, "unchanged": unchanged, "failed_regions": failed }));
    }
    match vpc::prune(store, config) {
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

#[allow(clippy::too_many_arguments)]
pub async fn run(
    cloud: Arc<dyn Cloud>,
    store: Arc<Mutex<Store>>,
    config: &Config,
    now: Option<DateTime<Utc>>,
    once: bool,
    wait: Wait,
    format: LogFormat,
    stop: Arc<AtomicBool>,
    config_dir: &std::path::Path,
) -> Result<u8> {
    let ctx = policy_run::Context {
        config_dir: config_dir.to_path_buf(),
        notifications: config.notifications.clone(),
    };
    let clock = Clock {
        base: now.unwrap_or_else(Utc::now),
        started: std::time::Instant::now(),
    };
    let log = Log(format);
    let ttl = Duration::seconds(LEASE_TTL_SECS);

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
    let heartbeat = {
        let (store, id, stop) = (store.clone(), lease.id.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                let renewed = store.lock().expect("store").renew_lease(&id, ttl);
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
        json!({ "lease": lease.id, "once": once }),
    );

    let mut worst = 0u8;
    let outcome = loop {
        // The state lock is taken per tick only, so plan and apply can run
        // between ticks.
        let now = clock.now();
        let locked = store.lock().expect("store").lock("run");
        let lock = match locked {
            Ok(l) => l,
            Err(StateError::Locked {
                holder, operation, ..
            }) => {
                log.event(
                    now,
                    "waiting_for_lock",
                    json!({ "holder": holder, "operation": operation }),
                );
                if once && stop.load(Ordering::SeqCst) {
                    break Ok(1);
                }
                sleep_until(&clock, now + Duration::seconds(5), &stop).await;
                if stop.load(Ordering::SeqCst) {
                    break Ok(worst);
                }
                continue;
            }
            Err(e) => break Err(e.into()),
        };
        let ran = run::tick(cloud.clone(), store.clone(), config, now, wait, &ctx, |d| {
            log.started(clock.now(), d)
        })
        .await;
        // VPC captures on their own interval, then capture retention, still
        // under this tick's lock.
        let captured = capture_due(&cloud, &store, config, now, &log).await;
        worst = worst.max(captured);
        let released = store.lock().expect("store").unlock(&lock.id);
        let ran = match (ran, released) {
            (Ok(r), Ok(())) => r,
            (Err(e), _) => break Err(e.into()),
            (_, Err(e)) => break Err(e.into()),
        };
        for r in &ran {
            log.finished(clock.now(), r);
            let code = match &r.result {
                Ok(b) if r.succeeded && b.retention.failed() == 0 => 0,
                _ => 1,
            };
            worst = worst.max(code);
        }
        match lifeboat_engine::notify::daily_summary(&cloud, &store, config, clock.now()).await {
            Ok(true) => log.event(clock.now(), "daily_summary", json!({})),
            Ok(false) => {}
            Err(e) => log.event(
                clock.now(),
                "notify_error",
                json!({ "error": e.to_string() }),
            ),
        }
        if once || stop.load(Ordering::SeqCst) {
            break Ok(worst);
        }
        let state = store.lock().expect("store").load();
        let policies = match state {
            Ok(s) => planner::state_policies(&s),
            Err(e) => break Err(e.into()),
        };
        let next = run::next_wake(&config.schedules, &policies, clock.now());
        let until = next
            .unwrap_or_else(|| clock.now() + Duration::minutes(1))
            .min(clock.now() + Duration::minutes(1));
        if let Some(n) = next {
            log.event(clock.now(), "next_run", json!({ "at": stamp(n) }));
        }
        sleep_until(&clock, until, &stop).await;
        if stop.load(Ordering::SeqCst) {
            break Ok(worst);
        }
    };
    heartbeat.abort();
    store.lock().expect("store").release_lease(&lease.id)?;
    log.event(clock.now(), "runner_stop", json!({}));
    outcome
}
