//! The run mode's scheduling: which policies are due at an instant, when the
//! next one will be, and the [`Runner`] that starts what is due.
//!
//! A policy runs for a *slot*, a planned instant of one of its schedules.
//! Each policy remembers the last slot it ran for. At a tick, the slots after
//! that one (but no further back than the grace window, one interval of the
//! schedule) and not after now are due, and the policy runs once for the
//! latest of them: missed slots are caught up with one backup, not one per
//! slot. A failed attempt's retry (kept in the state) is due at its own
//! time, like a slot.
//!
//! The runner starts each due run as a task of its own and does not wait
//! for it: a policy with a long backup or a retry does not hold up the
//! others. A policy is never run twice at once: a slot that comes while its
//! previous run is still in flight is recorded as skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use lifeboat_schema::{Config, Schedule};

use crate::backup::{self, BackupError, BackupResult, Wait};
use crate::cloud::Cloud;
use crate::runmode::attempt::{self, Trigger};
use crate::runmode::schedule;
use crate::state::model::PolicyState;
use crate::state::{BackupRecord, Retry, SharedStore, Skipped, StateError};

/// How far back a missed slot still runs: one interval of its schedule
/// (months counted as 31 days, so a monthly slot is never lost to a short month).
pub fn grace(s: &Schedule) -> Duration {
    s.every.nominal_duration()
}

/// A policy that should run now, for `slot`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub policy: String,
    pub slot: DateTime<Utc>,
    /// The schedules that have a slot at that instant (none for a retry).
    pub schedules: Vec<String>,
    pub kind: DueKind,
    /// The attempt to make: 1 for a new slot, 2 and up for retries (an
    /// attempt a killed runner left unfinished is made again).
    pub attempt: u32,
    /// A waiting retry of an earlier slot that this new slot replaces.
    pub supersedes: Option<Retry>,
}

/// Why a run is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueKind {
    /// A new slot of the policy's schedules.
    Slot,
    /// An attempt waiting in the state: a retry, or an attempt a killed
    /// runner left unfinished.
    Retry,
}

impl Due {
    pub fn is_retry(&self) -> bool {
        self.kind == DueKind::Retry
    }

    fn trigger(&self) -> Trigger {
        Trigger::Scheduled {
            slot: self.slot,
            attempt: self.attempt,
            supersedes: self.supersedes.clone(),
        }
    }
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
/// (state), `schedules` the configured ones, `last` each policy's last slot,
/// `retries` the retries waiting. A new slot takes precedence over a waiting
/// retry (and replaces it). Disabled policies and schedules missing from the
/// configuration never run.
pub fn due(
    schedules: &BTreeMap<String, Schedule>,
    policies: &BTreeMap<String, PolicyState>,
    last: &BTreeMap<String, DateTime<Utc>>,
    retries: &BTreeMap<String, Retry>,
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
                        kind: DueKind::Slot,
                        attempt: 1,
                        supersedes: None,
                    })
                }
            }
        }
        let waiting = retries.get(name);
        match (best, waiting) {
            (Some(mut d), r) => {
                d.supersedes = r.cloned();
                out.push(d);
            }
            (None, Some(r)) if r.due <= now => out.push(Due {
                policy: name.clone(),
                slot: r.slot,
                schedules: vec![],
                kind: DueKind::Retry,
                attempt: r.attempt,
                supersedes: None,
            }),
            (None, _) => {}
        }
    }
    out
}

/// The next instant after `now` at which some policy has a slot or a retry.
pub fn next_wake(
    schedules: &BTreeMap<String, Schedule>,
    policies: &BTreeMap<String, PolicyState>,
    retries: &BTreeMap<String, Retry>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let slots = policies
        .values()
        .filter(|p| p.enabled)
        .flat_map(|p| p.schedules.iter())
        .filter_map(|s| schedules.get(s))
        .filter_map(|s| schedule::next_after(s, now));
    let retries = retries
        .values()
        .filter(|r| policies.get(&r.policy).is_some_and(|p| p.enabled))
        .map(|r| r.due.max(now));
    slots.chain(retries).min()
}

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
    pub alerts_closed: Vec<crate::state::Alert>,
    pub notify_errors: Vec<String>,
}

/// What the runner did with a due run.
pub enum Started {
    Started(Due),
    /// The policy's previous run was still in flight.
    Skipped(Due),
}

/// Starts due runs as tasks and collects them as they finish. The caller
/// holds the lease, and holds the state lock while [`Runner::busy`].
pub struct Runner {
    cloud: Arc<dyn Cloud>,
    store: SharedStore,
    schedules: BTreeMap<String, Schedule>,
    wait: Wait,
    ctx: attempt::Context,
    jobs: tokio::task::JoinSet<Ran>,
    in_flight: BTreeSet<String>,
}

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
            schedules: config.schedules.clone(),
            wait,
            ctx,
            jobs: tokio::task::JoinSet::new(),
            in_flight: BTreeSet::new(),
        }
    }

    /// Some run is in flight.
    pub fn busy(&self) -> bool {
        !self.in_flight.is_empty()
    }

    fn policies(&self) -> Result<BTreeMap<String, PolicyState>, StateError> {
        let state = self.store.lock().expect("store").load()?;
        state.policies()
    }

    /// The last slot each policy (and capture) ran for.
    pub fn last_slots(&self) -> Result<BTreeMap<String, DateTime<Utc>>, StateError> {
        self.store.lock().expect("store").last_slots()
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

    /// What is due at `now`: scheduled slots and retries.
    pub fn due(&self, now: DateTime<Utc>) -> Result<Vec<Due>, StateError> {
        let policies = self.policies()?;
        let waiting = self.waiting(&policies)?;
        let last = self.store.lock().expect("store").last_slots()?;
        Ok(due(&self.schedules, &policies, &last, &waiting, now))
    }

    /// The next instant a slot or a retry comes due.
    pub fn next_wake(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, StateError> {
        let policies = self.policies()?;
        let waiting = self.waiting(&policies)?;
        Ok(next_wake(&self.schedules, &policies, &waiting, now))
    }

    /// Stops every run in flight (after an error of the runner itself), so
    /// that nothing writes once the runner lets go of the state lock.
    pub async fn shutdown(&mut self) {
        self.jobs.shutdown().await;
        self.in_flight.clear();
    }

    /// Closes backups an interrupted runner left behind (adopting their
    /// snapshots from AWS tags, marking them failed). Only while idle: with
    /// a run in flight, a `running` backup may be this runner's own. The
    /// interrupted attempt itself is still waiting in the state (see
    /// [`Runner::start`]) and is made again.
    pub async fn reconcile(&self, now: DateTime<Utc>) -> Result<Vec<BackupRecord>, BackupError> {
        if self.busy() {
            return Ok(vec![]);
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
            self.in_flight.insert(d.policy.clone());
            let (cloud, store, ctx, wait) = (
                self.cloud.clone(),
                self.store.clone(),
                self.ctx.clone(),
                self.wait,
            );
            let due = d.clone();
            self.jobs.spawn(async move {
                let clock = std::time::Instant::now();
                let trigger = due.trigger();
                let run =
                    attempt::run(cloud, store.clone(), &due.policy, &trigger, now, wait, &ctx)
                        .await;
                let mut result = run.result;
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
                    alerts_closed: run.alerts_closed,
                    notify_errors: run.notify_errors,
                }
            });
            out.push(Started::Started(d));
        }
        Ok(out)
    }

    /// The next run to finish; `None` when none is in flight.
    pub async fn finished(&mut self) -> Option<Ran> {
        let ran = self
            .jobs
            .join_next()
            .await?
            .expect("a backup task panicked");
        self.in_flight.remove(&ran.due.policy);
        Some(ran)
    }
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
        let d = due(
            &schedules,
            &policies,
            &last,
            &BTreeMap::new(),
            t("2026-11-22T10:20:00Z"),
        );
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].slot, t("2026-11-22T10:17:00Z"));
        last.insert("web".to_string(), d[0].slot);
        // Same hour again: nothing.
        assert!(due(
            &schedules,
            &policies,
            &last,
            &BTreeMap::new(),
            t("2026-11-22T10:59:00Z")
        )
        .is_empty());
        // Three slots missed (11:17, 12:17, 13:17): one run, for the latest.
        let d = due(
            &schedules,
            &policies,
            &last,
            &BTreeMap::new(),
            t("2026-11-22T13:30:00Z"),
        );
        assert_eq!(
            d.iter().map(|d| d.slot).collect::<Vec<_>>(),
            vec![t("2026-11-22T13:17:00Z")]
        );
        assert_eq!(
            next_wake(
                &schedules,
                &policies,
                &BTreeMap::new(),
                t("2026-11-22T13:30:00Z")
            ),
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
        let d = due(
            &schedules,
            &policies,
            &last,
            &BTreeMap::new(),
            t("2026-11-17T02:00:00Z"),
        );
        assert_eq!(
            d.iter().map(|d| d.slot).collect::<Vec<_>>(),
            vec![t("2026-11-16T03:00:00Z")]
        );
    }

    #[test]
    fn a_waiting_retry_is_due_at_its_time_and_a_new_slot_replaces_it() {
        let schedules = [("daily".to_string(), sched("1d", "2026-11-01T03:00"))].into();
        let policies = [("web".to_string(), policy(&["daily"]))].into();
        let last = [("web".to_string(), t("2026-11-22T03:00:00Z"))].into();
        let retry = Retry {
            policy: "web".into(),
            slot: t("2026-11-22T03:00:00Z"),
            attempt: 2,
            due: t("2026-11-22T03:10:00Z"),
        };
        let retries = [("web".to_string(), retry.clone())].into();
        assert!(due(
            &schedules,
            &policies,
            &last,
            &retries,
            t("2026-11-22T03:05:00Z")
        )
        .is_empty());
        assert_eq!(
            next_wake(&schedules, &policies, &retries, t("2026-11-22T03:05:00Z")),
            Some(t("2026-11-22T03:10:00Z"))
        );
        let d = due(
            &schedules,
            &policies,
            &last,
            &retries,
            t("2026-11-22T03:10:00Z"),
        );
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].slot, d[0].attempt), (retry.slot, 2));
        assert!(d[0].is_retry() && d[0].schedules.is_empty());
        assert_eq!(d[0].kind, DueKind::Retry);
        // Still waiting at the next slot: the new slot runs and replaces it.
        let d = due(
            &schedules,
            &policies,
            &last,
            &retries,
            t("2026-11-23T03:00:00Z"),
        );
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].slot, d[0].attempt), (t("2026-11-23T03:00:00Z"), 1));
        assert_eq!(d[0].supersedes, Some(retry));
    }
}
