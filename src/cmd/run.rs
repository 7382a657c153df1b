//! `lifeboat run [--once]`: the scheduled work. The engine's run mode
//! ([`Daemon`]) decides and acts; this prints each [`RunEvent`] it reports
//! as one log line, for people or for log collectors.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Result;
use chrono::{DateTime, SecondsFormat, Utc};
use lifeboat_engine::backup::Wait;
use lifeboat_engine::cloud::Cloud;
use lifeboat_engine::runmode::clock::Clock;
pub use lifeboat_engine::runmode::daemon::Mode;
use lifeboat_engine::runmode::daemon::{Daemon, RunEvent};
use lifeboat_engine::runmode::drills::DrillEvent;
use lifeboat_engine::runmode::runner::Ran;
use lifeboat_engine::state::{DrStatus, SharedStore};
use lifeboat_schema::Config;
use serde_json::json;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

struct Log(LogFormat);

fn secured_fields(
    report: &lifeboat_engine::iam::check::Report,
    alert: &lifeboat_engine::iam::check::AlertChange,
) -> serde_json::Value {
    json!({
        "account": report.account,
        "findings": report.findings.len(),
        "principals": report.principals,
        "policies": report.policies,
        "alert": format!("{alert:?}").to_lowercase(),
        "summary": report.summary(),
    })
}

fn drill_fields(d: &lifeboat_engine::state::DrillRecord) -> serde_json::Value {
    json!({
        "scenario": d.scenario,
        "drill": d.id,
        "status": d.status.as_str(),
        "rto_seconds": d.rto_seconds,
        "rpo_seconds": d.rpo_seconds,
        "problem": d.problem,
    })
}

impl Log {
    /// A scheduled report written to S3, or not.
    fn scheduled_report(&self, at: DateTime<Utc>, event: &RunEvent) {
        match event {
            RunEvent::ReportWritten { kind, url, rows } => self.event(
                at,
                "report_written",
                json!({ "kind": kind, "url": url, "rows": rows }),
            ),
            RunEvent::ReportFailed { kind, url, error } => self.event(
                at,
                "report_error",
                json!({ "kind": kind, "url": url, "error": error }),
            ),
            _ => {}
        }
    }

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

    /// Prints `event`, which happened at `at`, as log lines.
    fn say(&self, at: DateTime<Utc>, event: &RunEvent) {
        match event {
            RunEvent::LeaseWaiting { holder, until } => self.event(
                at,
                "waiting_for_lease",
                json!({ "holder": holder, "until": until }),
            ),
            RunEvent::RunnerStarted {
                lease,
                once,
                fast_forward,
            } => self.event(
                at,
                "runner_start",
                json!({ "lease": lease, "once": once, "fast_forward": fast_forward }),
            ),
            RunEvent::LockWaiting { holder, operation } => self.event(
                at,
                "waiting_for_lock",
                json!({ "holder": holder, "operation": operation }),
            ),
            RunEvent::BackupReconciled(b) => self.event(
                at,
                "backup_reconciled",
                json!({ "policy": b.policy, "backup": b.id, "status": b.status.as_str(), "snapshots": b.snapshots.len() }),
            ),
            RunEvent::ReconcileFailed {
                policy,
                backup,
                error,
            } => self.event(
                at,
                "reconcile_failed",
                json!({ "policy": policy, "backup": backup, "error": error }),
            ),
            RunEvent::RetryReplaced { policy, retry } => self.event(
                at,
                "retry_replaced",
                json!({ "policy": policy, "slot": stamp(retry.slot), "attempt": retry.attempt }),
            ),
            RunEvent::BackupStarted(d) => {
                let mut fields = json!({ "policy": d.policy, "slot": stamp(d.slot) });
                if d.is_retry() {
                    fields["attempt"] = json!(d.attempt);
                } else {
                    fields["schedules"] = json!(d.schedules.join(","));
                }
                self.event(at, "backup_start", fields);
            }
            RunEvent::BackupSkipped(d) => self.event(
                at,
                "backup_skipped",
                json!({ "policy": d.policy, "slot": stamp(d.slot), "reason": "previous run still in flight" }),
            ),
            RunEvent::BackupFinished(r) => self.finished(at, r),
            RunEvent::DrFinished(Ok(r)) => self.dr_finished(at, r),
            RunEvent::DrFinished(Err(e)) => self.event(at, "dr_error", json!({ "error": e })),
            RunEvent::CaptureFailed {
                capture,
                region,
                error,
            } => {
                let mut fields = json!({ "error": error });
                if let Some(c) = capture {
                    fields["capture"] = json!(c);
                }
                if let Some(r) = region {
                    fields["region"] = json!(r);
                }
                self.event(at, "capture_error", fields);
            }
            RunEvent::CaptureFinished {
                capture,
                stored,
                unchanged,
                failed_regions,
            } => self.event(
                at,
                "vpc_capture",
                json!({ "capture": capture, "stored": stored, "unchanged": unchanged, "failed_regions": failed_regions }),
            ),
            RunEvent::CapturesPruned { versions } => {
                self.event(at, "capture_pruned", json!({ "versions": versions }))
            }
            RunEvent::SecuredChecked { report, alert } => {
                self.event(at, "secured_check", secured_fields(report, alert))
            }
            RunEvent::SecuredCheckFailed { account, error } => {
                self.account_error(at, "secured_check_error", account, error)
            }
            RunEvent::TagScanned(s) => self.tag_scanned(at, s),
            RunEvent::TagScanFailed { account, error } => {
                self.account_error(at, "tag_scan_error", account, error)
            }
            RunEvent::Drill(d) => self.drill(at, d),
            RunEvent::Control(o) => self.control(at, o),
            RunEvent::ControlFailed { group, error } => {
                self.event(at, "control_error", json!({ "group": group, "error": error }))
            }
            RunEvent::SummarySent => self.event(at, "daily_summary", json!({})),
            RunEvent::ReportWritten { .. } | RunEvent::ReportFailed { .. } => {
                self.scheduled_report(at, event)
            }
            RunEvent::SummaryFailed { error } => {
                self.event(at, "notify_error", json!({ "error": error }))
            }
            RunEvent::ConfigReloaded { .. } | RunEvent::ConfigUnreadable { .. } => {
                self.reloaded(at, event)
            }
            RunEvent::NextRun(next) => self.event(at, "next_run", json!({ "at": stamp(*next) })),
            RunEvent::LeaseLost(e) => crate::colour::error(e),
            RunEvent::RunnerStopped => self.event(at, "runner_stop", json!({})),
        }
    }

    /// `dr_copied` or `dr_failed`: one DR run settled.
    fn dr_finished(&self, at: DateTime<Utc>, r: &lifeboat_engine::state::DrRun) {
        let event = if r.status == DrStatus::Completed {
            "dr_copied"
        } else {
            "dr_failed"
        };
        let fields = json!({
            "policy": r.policy,
            "backup": r.backup_id,
            "destination": r.destination.to_string(),
            "status": r.status.as_str(),
            "detail": r.detail,
        });
        self.event(at, event, fields);
    }

    /// `config_reloaded` (or `config_reload_error`): the serials the configuration was read at before
    /// and now, why, and per kind what changed (`policies=+1 ~1`).
    fn reloaded(&self, at: DateTime<Utc>, event: &RunEvent) {
        if let RunEvent::ConfigUnreadable { serial, error } = event {
            let kept = "the configuration the runner works from";
            let fields = json!({ "serial": serial, "error": error, "kept": kept });
            return self.event(at, "config_reload_error", fields);
        }
        let RunEvent::ConfigReloaded {
            from_serial,
            to_serial,
            changes,
            requested,
        } = event
        else {
            return;
        };
        let mut fields = json!({
            "old_serial": from_serial,
            "new_serial": to_serial,
            "reason": if *requested { "sighup" } else { "apply" },
        });
        for (kind, change) in changes {
            fields[kind] = json!(change);
        }
        self.event(at, "config_reloaded", fields);
    }

    /// A check or scan of `account` that could not be made or recorded.
    fn account_error(&self, at: DateTime<Utc>, event: &str, account: &str, error: &str) {
        self.event(at, event, json!({ "account": account, "error": error }));
    }

    /// One `member_joined` / `member_left` line: found by a backup (its
    /// id in `backup`) or a tag scan (`scan-…`).
    fn member(&self, at: DateTime<Utc>, c: &lifeboat_engine::membership::MemberChange) {
        self.event(
            at,
            &format!("member_{}", c.moved.as_str()),
            json!({
                "policy": c.policy,
                "target": c.target,
                "kind": c.kind.noun(),
                "reason": c.reason,
                "alert": c.alert,
                "backup": c.backup_id,
            }),
        );
    }

    /// A tag scan: its changes as member lines, then one `tag_scan` line
    /// with the counts and one `tag_problem` line per tag it could not
    /// follow.
    fn tag_scanned(&self, at: DateTime<Utc>, s: &lifeboat_engine::membership::scan::AccountScan) {
        for c in s.changes() {
            self.member(at, c);
        }
        let skipped: Vec<&str> = s
            .policies
            .iter()
            .filter(|p| p.skipped.is_some())
            .map(|p| p.policy.as_str())
            .collect();
        self.event(
            at,
            "tag_scan",
            json!({
                "account": s.account,
                "tagged": s.found.len(),
                "changes": s.changes().count(),
                "skipped_policies": skipped,
            }),
        );
        for p in s.problems() {
            self.event(
                at,
                "tag_problem",
                json!({ "account": s.account, "problem": p }),
            );
        }
    }

    /// One `control` line per target of a resource-control operation.
    fn control(&self, at: DateTime<Utc>, o: &lifeboat_engine::control::Outcome) {
        for r in &o.rows {
            self.event(
                at,
                "control",
                json!({
                    "group": r.group,
                    "target": r.target,
                    "action": r.action,
                    "result": r.result,
                    "detail": r.detail,
                }),
            );
        }
        if let Some(a) = &o.alert {
            self.event(
                at,
                "control_alert",
                json!({ "group": o.group, "message": a }),
            );
        }
        for p in &o.problems {
            self.event(
                at,
                "control_problem",
                json!({ "group": o.group, "problem": p }),
            );
        }
    }

    fn drill(&self, at: DateTime<Utc>, event: &DrillEvent) {
        match event {
            DrillEvent::Started { scenario } => {
                self.event(at, "drill_start", json!({ "scenario": scenario }))
            }
            DrillEvent::Finished(d) => self.event(at, "drill", drill_fields(d)),
            DrillEvent::TornDown(d) => self.event(at, "drill_torn_down", drill_fields(d)),
            DrillEvent::RestoreReaped(r, left) => self.event(
                at,
                "restore_reaped",
                json!({
                    "restore": r.id,
                    "status": r.status.as_str(),
                    "problem": r.problem,
                    "left": left,
                }),
            ),
            DrillEvent::Failed { scenario, error } => self.event(
                at,
                "drill_error",
                json!({ "scenario": scenario, "error": error }),
            ),
        }
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
        for a in r.alert_opened.iter().chain(&r.membership_alert) {
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
        if let Ok(b) = &r.result {
            for c in &b.membership {
                self.member(now, c);
            }
        }
        if let Ok(b) = &r.result {
            // Membership notes (tag items not used, departures held back):
            // lines of their own, as the backup's status does not show them.
            let notes = b
                .record
                .problems
                .iter()
                .filter(|p| p.starts_with(lifeboat_engine::state::MEMBERSHIP_NOTE));
            for p in notes {
                self.event(
                    now,
                    "membership_problem",
                    json!({ "policy": r.due.policy, "backup": b.record.id, "problem": p }),
                );
            }
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
    serve: Option<crate::listen::Serve>,
) -> Result<u8> {
    let log = Log(format);
    let metrics = serve
        .as_ref()
        .map(|s| s.metrics.clone())
        .unwrap_or_default();
    // Serves while the runner runs, its drain included; ends with it.
    let listening = serve.map(|s| crate::listen::spawn(s, store.clone(), stop.clone()));
    let clock = Arc::new(Clock::starting_at(now));
    // SIGHUP: read the applied configuration now rather than at the next
    // wake-up. Registered before the runner starts, so that the signal
    // never takes its default action (ending the process).
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let on_hup = {
        let clock = clock.clone();
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                clock.request_reload();
            }
        })
    };
    let daemon = Daemon {
        cloud,
        store,
        config,
        config_dir: config_dir.to_path_buf(),
        clock,
        mode,
        wait,
        stop,
        on_event: Arc::new(move |at, event| log.say(at, event)),
        metrics,
    };
    let exit = daemon.run().await;
    on_hup.abort();
    if let Some(l) = listening {
        l.abort();
    }
    Ok(exit?.code())
}
