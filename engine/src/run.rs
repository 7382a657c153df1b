//! The run mode's scheduling: which policies are due at an instant, when the
//! next one will be, and one tick that performs what is due.
//!
//! A policy runs for a *slot*, a planned instant of one of its schedules.
//! Each policy remembers the last slot it ran for. At a tick, the slots after
//! that one (but no further back than the grace window, one interval of the
//! schedule) and not after now are due, and the policy runs once for the
//! latest of them: missed slots are caught up with one backup, not one per
//! slot.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use lifeboat_schema::{Config, EveryUnit, Schedule};

use crate::backup::{self, BackupError, BackupResult, Wait};
use crate::cloud::Cloud;
use crate::model::PolicyState;
use crate::planner;
use crate::policy_run;
use crate::schedule;
use crate::state::Store;

/// How far back a missed slot still runs: one interval of its schedule
/// (months counted as 31 days, so a monthly slot is never lost to a short month).
pub fn grace(s: &Schedule) -> Duration {
    let n = i64::from(s.every.count);
    match s.every.unit {
        EveryUnit::Minutes => Duration::minutes(n),
        EveryUnit::Hours => Duration::hours(n),
        EveryUnit::Days => Duration::days(n),
        EveryUnit::Weeks => Duration::weeks(n),
        EveryUnit::Months => Duration::days(31 * n),
    }
}

/// A policy that should run now, for `slot`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub policy: String,
    pub slot: DateTime<Utc>,
    /// The schedules that have a slot at that instant.
    pub schedules: Vec<String>,
}

/// The latest slot of `s` in `(after, now]`, if any.
fn latest_slot(s: &Schedule, after: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut cursor = after;
    let mut latest = None;
    while let Some(t) = schedule::next_after(s, cursor) {
        if t > now {
            break;
        }
        latest = Some(t);
        cursor = t;
    }
    latest
}

/// The policies due at `now`. Pure: `policies` are the applied policies
/// (state), `schedules` the configured ones, `last` each policy's last slot.
/// Disabled policies and schedules missing from the configuration never run.
pub fn due(
    schedules: &BTreeMap<String, Schedule>,
    policies: &BTreeMap<String, PolicyState>,
    last: &BTreeMap<String, DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Vec<Due> {
    let mut out = Vec::new();
    for (name, p) in policies.iter().filter(|(_, p)| p.enabled) {
        let mut best: Option<Due> = None;
        for sname in &p.schedules {
            let Some(s) = schedules.get(sname) else {
                continue;
            };
            let floor = now - grace(s);
            let after = last.get(name).map_or(floor, |l| (*l).max(floor));
            let Some(slot) = latest_slot(s, after, now) else {
                continue;
            };
            match &mut best {
                Some(b) if b.slot == slot => b.schedules.push(sname.clone()),
                Some(b) if b.slot > slot => {}
                _ => {
                    best = Some(Due {
                        policy: name.clone(),
                        slot,
                        schedules: vec![sname.clone()],
                    })
                }
            }
        }
        out.extend(best);
    }
    out
}

/// The next instant after `now` at which some policy has a slot.
pub fn next_wake(
    schedules: &BTreeMap<String, Schedule>,
    policies: &BTreeMap<String, PolicyState>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    policies
        .values()
        .filter(|p| p.enabled)
        .flat_map(|p| p.schedules.iter())
        .filter_map(|s| schedules.get(s))
        .filter_map(|s| schedule::next_after(s, now))
        .min()
}

/// What one tick did for one policy.
pub struct Ran {
    pub due: Due,
    /// The last attempt's backup (or why there was none).
    pub result: Result<BackupResult, BackupError>,
    pub seconds: f64,
    /// Every attempt (the first, then retries).
    pub attempts: Vec<policy_run::Attempt>,
    /// The run produced a valid generation (the policy's success rule).
    pub succeeded: bool,
    pub alert_opened: Option<crate::state::Alert>,
    pub alerts_closed: Vec<crate::state::Alert>,
    pub notify_errors: Vec<String>,
}

/// Performs what is due at `now`: closes backups an interrupted runner left
/// behind, then runs every due policy with its options (retries, timeout,
/// scripts, alerts; see [`policy_run`]) — policies in parallel; within one,
/// the backup's own per-region bounds apply — and records each slot. The
/// caller holds the lease and the state lock. `started` is told each backup
/// as it begins.
pub async fn tick(
    cloud: Arc<dyn Cloud>,
    store: Arc<Mutex<Store>>,
    config: &Config,
    now: DateTime<Utc>,
    wait: Wait,
    ctx: &policy_run::Context,
    mut started: impl FnMut(&Due),
) -> Result<Vec<Ran>, BackupError> {
    backup::reconcile_interrupted(cloud.clone(), store.clone(), now).await?;
    let (state, last) = {
        let mut s = store.lock().expect("store");
        (s.load()?, s.last_slots()?)
    };
    let policies = planner::state_policies(&state);
    let mut jobs = tokio::task::JoinSet::new();
    for d in due(&config.schedules, &policies, &last, now) {
        started(&d);
        let (cloud, store, ctx) = (cloud.clone(), store.clone(), ctx.clone());
        jobs.spawn(async move {
            let clock = std::time::Instant::now();
            let run = policy_run::run(cloud, store.clone(), &d.policy, now, wait, &ctx).await;
            let result = run.result;
            let id = result.as_ref().ok().map(|r| r.record.id.clone());
            // The slot is spent whatever the outcome: a failed backup is not
            // retried by the next tick as if it were missed.
            let recorded = store
                .lock()
                .expect("store")
                .transaction(|tx| tx.set_last_slot(&d.policy, d.slot, id.as_deref()));
            let result = match recorded {
                Ok(()) => result,
                Err(e) => Err(BackupError::State(e)),
            };
            Ran {
                due: d,
                result,
                seconds: clock.elapsed().as_secs_f64(),
                attempts: run.attempts,
                succeeded: run.succeeded,
                alert_opened: run.alert_opened,
                alerts_closed: run.alerts_closed,
                notify_errors: run.notify_errors,
            }
        });
    }
    let mut out = Vec::new();
    while let Some(r) = jobs.join_next().await {
        out.push(r.expect("a backup task panicked"));
    }
    out.sort_by(|a, b| a.due.policy.cmp(&b.due.policy));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat_schema::{AutoRemove, Every};

    fn sched(every: &str, start: &str) -> Schedule {
        Schedule {
            name: "s".into(),
            time_zone: lifeboat_schema::Tz::UTC,
            start: chrono::NaiveDateTime::parse_from_str(start, "%Y-%m-%dT%H:%M").unwrap(),
            every: every.parse::<Every>().unwrap(),
            days: None,
            expires: None,
            disable: vec![],
            location: Default::default(),
        }
    }

    fn policy(schedules: &[&str]) -> PolicyState {
        PolicyState {
            name: "web".into(),
            account: "main".into(),
            generations: 2,
            enabled: true,
            description: None,
            selectors: vec![],
            auto_remove_targets: AutoRemove::No,
            schedules: schedules.iter().map(|s| s.to_string()).collect(),
            options: Default::default(),
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_policy_is_due_once_for_the_latest_missed_slot_within_the_grace_window() {
        let schedules = [("hourly".to_string(), sched("1h", "2026-11-22T00:17"))].into();
        let policies = [("web".to_string(), policy(&["hourly"]))].into();
        let mut last = BTreeMap::new();
        // Never ran: the slot of the last hour is due once.
        let d = due(&schedules, &policies, &last, t("2026-11-22T10:20:00Z"));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].slot, t("2026-11-22T10:17:00Z"));
        last.insert("web".to_string(), d[0].slot);
        // Same hour again: nothing.
        assert!(due(&schedules, &policies, &last, t("2026-11-22T10:59:00Z")).is_empty());
        // Three slots missed (11:17, 12:17, 13:17): one run, for the latest.
        let d = due(&schedules, &policies, &last, t("2026-11-22T13:30:00Z"));
        assert_eq!(
            d.iter().map(|d| d.slot).collect::<Vec<_>>(),
            vec![t("2026-11-22T13:17:00Z")]
        );
        assert_eq!(
            next_wake(&schedules, &policies, t("2026-11-22T13:30:00Z")),
            Some(t("2026-11-22T14:17:00Z"))
        );
    }

    #[test]
    fn two_schedules_with_the_same_slot_make_one_run_and_disabled_policies_none() {
        let schedules = [
            ("hourly".to_string(), sched("1h", "2026-11-22T00:00")),
            ("daily".to_string(), sched("1d", "2026-11-22T00:00")),
        ]
        .into();
        let mut p = policy(&["hourly", "daily"]);
        let policies: BTreeMap<String, PolicyState> = [("web".to_string(), p.clone())].into();
        let d = due(
            &schedules,
            &policies,
            &BTreeMap::new(),
            t("2026-11-23T00:00:30Z"),
        );
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].schedules,
            vec!["hourly".to_string(), "daily".to_string()]
        );
        p.enabled = false;
        let policies = [("web".to_string(), p)].into();
        assert!(due(
            &schedules,
            &policies,
            &BTreeMap::new(),
            t("2026-11-23T00:00:30Z")
        )
        .is_empty());
    }

    #[test]
    fn a_slot_older_than_one_interval_is_not_caught_up() {
        let schedules = [("daily".to_string(), sched("1d", "2026-11-01T03:00"))].into();
        let policies = [("web".to_string(), policy(&["daily"]))].into();
        let last = [("web".to_string(), t("2026-11-10T03:00:00Z"))].into();
        // Down for a week: only the latest slot within one day runs.
        let d = due(&schedules, &policies, &last, t("2026-11-17T02:00:00Z"));
        assert_eq!(
            d.iter().map(|d| d.slot).collect::<Vec<_>>(),
            vec![t("2026-11-16T03:00:00Z")]
        );
    }
}
