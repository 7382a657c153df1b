//! What a runner shows while it runs (`lifeboat run --listen`): its own
//! counters (backups, artifacts and retention deletes since it started,
//! DR runs, the AWS requests its clients sent), whether it leads and
//! when it last looked at its agenda, and the state's figures per policy.
//! The binary serves them over HTTP; their names, types and labels are
//! decided here, and documented in `docs/metrics.md`.
//!
//! A scrape reads the state at most once per [`FIGURES_TTL`] (and after
//! the runner finished a backup or DR run), with grouped queries
//! (`Store::figures`), so that scraping often neither loads the catalog
//! nor holds the store from the runner for long.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::cloud::calls::CallCounts;
use crate::runmode::clock::LOOK_EVERY;
use crate::runmode::daemon::RunEvent;
use crate::state::{Figures, SharedStore};

/// How long the state's figures are reused between scrapes.
pub const FIGURES_TTL: Duration = Duration::from_secs(10);

/// How long a runner may go without a look at its agenda (or, standing
/// by, at the lease) before it is reported unhealthy: a runner looks at
/// least every [`LOOK_EVERY`], and a look that starts captures, scans and
/// checks takes its time too.
pub const HEALTHY_LOOK_AGE: Duration = Duration::from_secs(5 * LOOK_EVERY.as_secs());

/// Where the runner is in its life.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Phase {
    #[default]
    Starting,
    /// Another runner holds the lease; this one waits for it.
    Standby,
    Leading,
    /// The lease or the state lock was taken over or broken.
    Lost(String),
    Stopped,
}

/// The runner's own counts, by label values.
#[derive(Debug, Default)]
struct Counts {
    phase: Phase,
    /// The last look, on the monotonic clock (health) and the host's.
    last_look: Option<(Instant, SystemTime)>,
    backups: BTreeMap<(String, String), u64>,
    artifacts: BTreeMap<String, u64>,
    retention_deleted: BTreeMap<String, u64>,
    retention_failed: BTreeMap<String, u64>,
    skipped: BTreeMap<String, u64>,
    dr_runs: BTreeMap<String, u64>,
    figures: Option<(Instant, Figures)>,
    state_readable: bool,
}

/// A runner's metrics, shared by the runner (which counts) and whoever
/// serves them.
#[derive(Debug, Default)]
pub struct RunMetrics {
    calls: Arc<CallCounts>,
    counts: Mutex<Counts>,
}

/// Whether the runner is healthy, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub ok: bool,
    /// `ok`, `ok (standby)`, or what is wrong.
    pub reason: String,
}

/// A metric's type in the exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// One metric with its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

/// One sample: label names and values, and the value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

/// The backup statuses `lifeboat_policy_last_backup_status` has a series for.
const STATUSES: [&str; 4] = ["running", "success", "partial", "failed"];

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl RunMetrics {
    /// Metrics whose AWS requests are those `calls` counts (the
    /// providers' counter).
    pub fn new(calls: Arc<CallCounts>) -> RunMetrics {
        RunMetrics {
            calls,
            counts: Mutex::default(),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().expect("run metrics")
    }

    /// The runner looked at its agenda, or at the lease it waits for.
    pub fn look(&self) {
        self.counts().last_look = Some((Instant::now(), SystemTime::now()));
    }

    /// Counts what `event` says happened.
    pub fn observe(&self, event: &RunEvent) {
        let mut c = self.counts();
        let add = |m: &mut BTreeMap<String, u64>, k: &str, n: u64| {
            *m.entry(k.to_owned()).or_default() += n;
        };
        match event {
            RunEvent::LeaseWaiting { .. } => c.phase = Phase::Standby,
            RunEvent::RunnerStarted { .. } => c.phase = Phase::Leading,
            RunEvent::LeaseLost(e) => c.phase = Phase::Lost(e.to_string()),
            RunEvent::RunnerStopped => c.phase = Phase::Stopped,
            RunEvent::BackupSkipped(d) => add(&mut c.skipped, &d.policy, 1),
            // The catalog changed: the next scrape reads it again, TTL or not.
            RunEvent::BackupReconciled(_) => c.figures = None,
            RunEvent::BackupFinished(r) => {
                let policy = &r.due.policy;
                let status = match &r.result {
                    Ok(b) => {
                        add(&mut c.artifacts, policy, b.record.snapshots.len() as u64);
                        add(&mut c.retention_deleted, policy, b.retention.done() as u64);
                        add(&mut c.retention_failed, policy, b.retention.failed() as u64);
                        b.record.status.as_str()
                    }
                    Err(_) => "error",
                };
                *c.backups
                    .entry((policy.clone(), status.to_owned()))
                    .or_default() += 1;
                c.figures = None;
            }
            RunEvent::DrFinished(r) => {
                c.figures = None;
                let status = r.as_ref().map_or("error", |r| r.status.as_str());
                add(&mut c.dr_runs, status, 1);
            }
            _ => {}
        }
    }

    /// Healthy while the runner looks at its agenda (or, standing by, at
    /// the lease) at least every [`HEALTHY_LOOK_AGE`] and is not
    /// `stopping` (draining after a signal), has not lost its lease and
    /// has not stopped.
    pub fn health(&self, stopping: bool) -> Health {
        let c = self.counts();
        let bad = |reason: String| Health { ok: false, reason };
        match &c.phase {
            Phase::Lost(why) => return bad(format!("lost its hold: {why}")),
            Phase::Stopped => return bad("the runner stopped".into()),
            _ if stopping => {
                return bad("draining: finishing the work in flight, starting none".into())
            }
            _ => {}
        }
        let Some((at, _)) = c.last_look.filter(|_| c.phase != Phase::Starting) else {
            return bad("starting: the runner has not looked at its work or the lease yet".into());
        };
        let age = at.elapsed();
        if age > HEALTHY_LOOK_AGE {
            return bad(format!(
                "the runner last looked at its work {}s ago (healthy within {}s)",
                age.as_secs(),
                HEALTHY_LOOK_AGE.as_secs()
            ));
        }
        let reason = match c.phase {
            Phase::Standby => "ok (standby: waiting for the lease)",
            _ => "ok",
        };
        Health {
            ok: true,
            reason: reason.into(),
        }
    }

    /// The state's figures, read again when older than [`FIGURES_TTL`].
    /// The store is never held while the counts are, so a scrape cannot
    /// stall the runner's counting behind a state read.
    fn figures(&self, store: &SharedStore) -> (Figures, bool) {
        {
            let c = self.counts();
            if let Some((at, f)) = &c.figures {
                if at.elapsed() < FIGURES_TTL {
                    return (f.clone(), c.state_readable);
                }
            }
        }
        let read = store.lock().expect("store").figures();
        let mut c = self.counts();
        c.state_readable = read.is_ok();
        if let Ok(f) = read {
            c.figures = Some((Instant::now(), f));
        }
        let f = c
            .figures
            .as_ref()
            .map(|(_, f)| f.clone())
            .unwrap_or_default();
        (f, c.state_readable)
    }

    /// Every metric, with its samples now.
    pub fn families(&self, store: &SharedStore) -> Vec<Family> {
        let (figures, readable) = self.figures(store);
        let mut out = self.runner_families();
        out.extend(state_families(&figures, readable));
        let calls = self.calls.snapshot();
        let per_call = |pick: fn(&crate::cloud::calls::CallCount) -> u64| {
            calls
                .iter()
                .map(|((service, action), c)| Sample {
                    labels: vec![("service", service.clone()), ("action", action.clone())],
                    value: pick(c) as f64,
                })
                .collect()
        };
        out.push(Family {
            name: "lifeboat_aws_calls_total",
            help: "Requests sent to AWS (every attempt, SDK retries included).",
            kind: Kind::Counter,
            samples: per_call(|c| c.calls),
        });
        out.push(Family {
            name: "lifeboat_aws_throttles_total",
            help: "Requests AWS answered with a throttle (slow down, request limit).",
            kind: Kind::Counter,
            samples: per_call(|c| c.throttled),
        });
        out
    }

    /// The runner's own metrics.
    fn runner_families(&self) -> Vec<Family> {
        let c = self.counts();
        let one = |v: f64| {
            vec![Sample {
                labels: vec![],
                value: v,
            }]
        };
        let by_policy = |m: &BTreeMap<String, u64>| {
            m.iter()
                .map(|(p, n)| Sample {
                    labels: vec![("policy", p.clone())],
                    value: *n as f64,
                })
                .collect()
        };
        let counter = |name, help, samples| Family {
            name,
            help,
            kind: Kind::Counter,
            samples,
        };
        vec![
            Family {
                name: "lifeboat_runner_leader",
                help: "1 while this runner holds the run lease, else 0 (standby, stopped).",
                kind: Kind::Gauge,
                samples: one(f64::from(u8::from(c.phase == Phase::Leading))),
            },
            Family {
                name: "lifeboat_last_look_timestamp_seconds",
                help: "When the runner last looked at its agenda or the lease (unix time).",
                kind: Kind::Gauge,
                samples: c.last_look.map(|(_, t)| one(unix(t))).unwrap_or_default(),
            },
            counter(
                "lifeboat_backups_total",
                "Policy runs this runner finished, by policy and backup status (error: no backup).",
                c.backups
                    .iter()
                    .map(|((p, s), n)| Sample {
                        labels: vec![("policy", p.clone()), ("status", s.clone())],
                        value: *n as f64,
                    })
                    .collect(),
            ),
            counter(
                "lifeboat_artifacts_total",
                "Artifacts (snapshots, AMIs, DB snapshots) the runner's backups made.",
                by_policy(&c.artifacts),
            ),
            counter(
                "lifeboat_retention_deletes_total",
                "Backup data retention deleted after the runner's backups.",
                by_policy(&c.retention_deleted),
            ),
            counter(
                "lifeboat_retention_delete_failures_total",
                "Retention deletes that failed after the runner's backups.",
                by_policy(&c.retention_failed),
            ),
            counter(
                "lifeboat_backups_skipped_total",
                "Scheduled slots skipped: the policy's previous run was still in flight.",
                by_policy(&c.skipped),
            ),
            counter(
                "lifeboat_dr_runs_total",
                "DR runs (one backup to one destination) the runner settled, by status.",
                c.dr_runs
                    .iter()
                    .map(|(s, n)| Sample {
                        labels: vec![("status", s.clone())],
                        value: *n as f64,
                    })
                    .collect(),
            ),
        ]
    }
}

/// The state's figures as gauges.
fn state_families(f: &Figures, readable: bool) -> Vec<Family> {
    let gauge = |name, help, pick: fn(&crate::state::PolicyFigures) -> Option<f64>| Family {
        name,
        help,
        kind: Kind::Gauge,
        samples: f
            .policies
            .iter()
            .filter_map(|(p, v)| {
                pick(v).map(|value| Sample {
                    labels: vec![("policy", p.clone())],
                    value,
                })
            })
            .collect(),
    };
    let statuses = f
        .policies
        .iter()
        .filter(|(_, v)| v.last_status.is_some())
        .flat_map(|(p, v)| {
            STATUSES.iter().map(move |s| Sample {
                labels: vec![("policy", p.clone()), ("status", (*s).to_owned())],
                value: f64::from(u8::from(v.last_status.as_deref() == Some(s))),
            })
        })
        .collect();
    vec![
        Family {
            name: "lifeboat_state_readable",
            help: "1 when the last read of the state's figures succeeded, else 0.",
            kind: Kind::Gauge,
            samples: vec![Sample {
                labels: vec![],
                value: f64::from(u8::from(readable)),
            }],
        },
        gauge(
            "lifeboat_policy_last_success_timestamp_seconds",
            "When the policy's last successful backup finished (unix time).",
            |v| v.last_success.map(|t| t.timestamp() as f64),
        ),
        Family {
            name: "lifeboat_policy_last_backup_status",
            help: "1 for the status of the policy's last backup, 0 for the others.",
            kind: Kind::Gauge,
            samples: statuses,
        },
        gauge(
            "lifeboat_policy_consecutive_failures",
            "Failed runs of the policy in a row since its last success.",
            |v| Some(v.consecutive_failures as f64),
        ),
        gauge(
            "lifeboat_policy_backups",
            "Backups of the policy in the catalog.",
            |v| Some(v.backups as f64),
        ),
        gauge(
            "lifeboat_policy_artifacts",
            "Artifacts of the policy in the catalog.",
            |v| Some(v.artifacts as f64),
        ),
        gauge(
            "lifeboat_policy_open_alerts",
            "Open alerts of the policy and its targets.",
            |v| Some(v.open_alerts as f64),
        ),
        gauge(
            "lifeboat_dr_copies_in_flight",
            "DR copies of the policy pending or in progress.",
            |v| Some(v.dr_in_flight as f64),
        ),
        gauge(
            "lifeboat_dr_copies_failed",
            "DR copies of the policy that failed or timed out (not expired).",
            |v| Some(v.dr_failed as f64),
        ),
        Family {
            name: "lifeboat_open_alerts",
            help: "Open alerts, whoever owns them.",
            kind: Kind::Gauge,
            samples: vec![Sample {
                labels: vec![],
                value: f.open_alerts as f64,
            }],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{StateError, Store};

    fn store() -> (tempfile::TempDir, SharedStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.db")).unwrap();
        (dir, Arc::new(Mutex::new(s)))
    }

    fn family<'a>(fs: &'a [Family], name: &str) -> &'a Family {
        fs.iter().find(|f| f.name == name).unwrap()
    }

    #[test]
    fn health_follows_the_runner_s_life() {
        let m = RunMetrics::default();
        assert!(!m.health(false).ok, "no look yet");
        m.look();
        assert!(!m.health(false).ok, "neither leading nor standing by yet");
        m.observe(&RunEvent::LeaseWaiting {
            holder: "h".into(),
            until: "u".into(),
        });
        assert_eq!(
            m.health(false).reason,
            "ok (standby: waiting for the lease)"
        );
        m.observe(&RunEvent::RunnerStarted {
            lease: "l".into(),
            once: false,
            fast_forward: false,
        });
        assert_eq!(m.health(false).reason, "ok");
        assert!(m.health(true).reason.starts_with("draining"));
        m.observe(&RunEvent::LeaseLost(StateError::Conflict("taken".into())));
        assert!(!m.health(false).ok);
        assert!(m.health(false).reason.contains("taken"));
    }

    #[test]
    fn a_runner_that_stops_looking_is_unhealthy() {
        let m = RunMetrics::default();
        m.counts().last_look = Some((
            Instant::now() - HEALTHY_LOOK_AGE - Duration::from_secs(1),
            SystemTime::now(),
        ));
        m.counts().phase = Phase::Leading;
        let h = m.health(false);
        assert!(!h.ok && h.reason.contains("ago"), "{h:?}");
    }

    #[test]
    fn leadership_calls_and_the_state_are_reported() {
        let calls = Arc::new(CallCounts::default());
        calls.record("EC2", "CreateSnapshots", false);
        calls.record("EC2", "CreateSnapshots", true);
        let m = RunMetrics::new(calls);
        let (_dir, store) = store();
        let fs = m.families(&store);
        assert_eq!(family(&fs, "lifeboat_runner_leader").samples[0].value, 0.0);
        m.observe(&RunEvent::RunnerStarted {
            lease: "l".into(),
            once: false,
            fast_forward: false,
        });
        let fs = m.families(&store);
        assert_eq!(family(&fs, "lifeboat_runner_leader").samples[0].value, 1.0);
        let calls = &family(&fs, "lifeboat_aws_calls_total").samples[0];
        assert_eq!(calls.value, 2.0);
        assert_eq!(
            calls.labels,
            vec![
                ("service", "ec2".to_owned()),
                ("action", "CreateSnapshots".to_owned())
            ]
        );
        assert_eq!(
            family(&fs, "lifeboat_aws_throttles_total").samples[0].value,
            1.0
        );
        assert_eq!(family(&fs, "lifeboat_state_readable").samples[0].value, 1.0);
        assert_eq!(family(&fs, "lifeboat_open_alerts").samples[0].value, 0.0);
    }
}
