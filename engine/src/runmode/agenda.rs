//! The run mode's agenda: what is due at an instant, and when the next
//! thing comes due, for every kind of scheduled work: policy slots, waiting
//! retries, VPC captures, drills and the daily summary. Pure: it reads the
//! configuration, what the state says ran last, and the instant it is asked
//! about; the runner and the daemon load those and act on the answer.
//!
//! A policy runs for a *slot*, a planned instant of one of its schedules.
//! Each policy remembers the last slot it ran for. At a tick, the slots after
//! that one (but no further back than the grace window, one interval of the
//! schedule) and not after now are due, and the policy runs once for the
//! latest of them: missed slots are caught up with one backup, not one per
//! slot. A failed attempt's retry (kept in the state) is due at its own
//! time, like a slot. A capture is due one interval after its last run (at
//! once when it never ran); so is the secured-DR check of an account with
//! `secured { check_every }`, and the drill of a scenario with
//! `drill { every }` (from its last drill's start; a kept drill's teardown
//! is due when its `keep_for` ends); the daily summary once a day, past its
//! time.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveTime, Utc};
use lifeboat_schema::{Config, Schedule, VpcCapture};

use crate::control::{self, Action};
use crate::runmode::attempt::Trigger;
use crate::runmode::schedule;
use crate::state::model::PolicyState;
use crate::state::Retry;

/// How far back a missed slot still runs: one interval of its schedule
/// (months counted as 31 days, so a monthly slot is never lost to a short month).
pub fn grace(s: &Schedule) -> Duration {
    s.every.nominal_duration()
}

/// How often run mode captures `c`; `None` when it has no `every` (captured
/// only on demand). The one place the capture interval is read.
fn capture_interval(c: &VpcCapture) -> Option<Duration> {
    Some(c.every?.nominal_duration())
}

/// The key under which the state remembers a capture's last run, beside
/// the policies' last slots.
pub fn capture_key(capture: &str) -> String {
    format!("vpc_capture.{capture}")
}

/// The key under which [`Agenda::last`] holds when the scheduled reports
/// were last written (the state keeps it as a note,
/// `report::scheduled::REPORTS_NOTE`).
pub const REPORTS_KEY: &str = "notifications.reports";

/// How often run mode writes the reports to S3; `None` without a
/// `reports` block.
fn reports_interval(config: &Config) -> Option<Duration> {
    let secs = config.notifications.as_ref()?.reports.as_ref()?.every_secs;
    Some(Duration::seconds(i64::try_from(secs).ok()?))
}

/// How often run mode checks a secured account; `None` without
/// `check_every` (checked only by `lifeboat dr check`).
fn secured_interval(a: &lifeboat_schema::Account) -> Option<Duration> {
    let secs = a.secured.as_ref()?.check_every_secs?;
    Some(Duration::seconds(i64::try_from(secs).ok()?))
}

/// The key under which [`Agenda::last`] holds an account's last secured
/// check (the state keeps them in their own table).
pub fn secured_key(account: &str) -> String {
    format!("account.{account}.secured")
}

/// How often run mode scans an account's tags; `None` without
/// `tag_scan { every }` (its policies' members are then decided at their
/// backups, and by `lifeboat scan`).
fn tag_scan_interval(a: &lifeboat_schema::Account) -> Option<Duration> {
    let secs = a.tag_scan.as_ref()?.every_secs?;
    Some(Duration::seconds(i64::try_from(secs).ok()?))
}

/// The key under which the state remembers an account's last tag scan,
/// beside the policies' last slots.
pub fn tag_scan_key(account: &str) -> String {
    format!("account.{account}.tag_scan")
}

/// How often run mode drills scenario `sc`; `None` without a `drill` block.
fn drill_interval(sc: &lifeboat_schema::RecoveryScenario) -> Option<Duration> {
    let secs = sc.drill.as_ref()?.every_secs;
    Some(Duration::seconds(i64::try_from(secs).ok()?))
}

/// How often run mode looks for drills to tear down when none is due (each
/// look reads every drill and restore).
pub const DRILL_LOOK: Duration = Duration::minutes(5);

/// The key under which [`Agenda::last`] holds a scenario's last drill's
/// start (the state keeps drills in their own table).
pub fn drill_key(scenario: &str) -> String {
    format!("recovery_scenario.{scenario}.drill")
}

/// A resource-control operation that should run now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlDue {
    pub group: String,
    pub action: Action,
    /// The periodic look at an off group's databases, not an edge.
    pub databases_only: bool,
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

    pub(crate) fn trigger(&self) -> Trigger {
        Trigger::Scheduled {
            slot: self.slot,
            attempt: self.attempt,
            supersedes: self.supersedes.clone(),
        }
    }
}

/// Is the daily summary at `at` (`HH:MM`, UTC) due at `now`: past today's
/// time and not yet sent today? `sent` is the date of the last one sent.
pub fn summary_due(at: &str, sent: Option<&str>, now: DateTime<Utc>) -> bool {
    let Ok(time) = NaiveTime::parse_from_str(at, "%H:%M") else {
        return false;
    };
    let today = now.date_naive();
    now.time() >= time && sent != Some(today.to_string().as_str())
}

/// How early a capture may come (at most a tenth of its interval): its last
/// run is recorded when its step began, which can be later in that wake-up
/// than the same step one interval on, so a capture would otherwise be found
/// a little short and skip a whole interval.
const CAPTURE_SLACK: Duration = Duration::minutes(1);

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

/// Everything the agenda reads: the configuration (schedules, captures, the
/// daily summary) and what the state says about the past.
#[derive(Debug, Clone)]
pub struct Agenda<'c> {
    pub config: &'c Config,
    /// The applied policies (the state): only those run.
    pub policies: BTreeMap<String, PolicyState>,
    /// The last slot each policy ran for, and each capture's last run
    /// (under [`capture_key`]).
    pub last: BTreeMap<String, DateTime<Utc>>,
    /// The attempts waiting in the state, but for runs in flight.
    pub retries: BTreeMap<String, Retry>,
    /// The date the last daily summary was sent.
    pub summary_sent: Option<String>,
    /// When each kept drill's `keep_for` ends (its teardown is due then).
    pub teardowns: Vec<DateTime<Utc>>,
}

impl Agenda<'_> {
    /// The last run recorded under `key`, unless it is later than `now`: a
    /// time in the future was written under a wrong clock or a `--now` ahead
    /// of it, and honouring it would stop the runner from running what is
    /// due until that time comes. [`future_times`] names such times.
    fn last_before(&self, key: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.last.get(key).copied().filter(|l| *l <= now)
    }

    /// The policy runs due at `now`. A new slot takes precedence over a
    /// waiting retry (and replaces it). Disabled policies and schedules
    /// missing from the configuration never run.
    pub fn runs(&self, now: DateTime<Utc>) -> Vec<Due> {
        let mut out = Vec::new();
        // A template never runs itself: the policies made from it do.
        for (name, p) in self
            .policies
            .iter()
            .filter(|(_, p)| p.enabled && !p.template)
        {
            let best = self.latest_slot_of(name, p, now);
            match (best, self.retries.get(name)) {
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

    /// The latest slot of policy `name` due at `now` over all its
    /// schedules, with every schedule that has a slot at that instant.
    fn latest_slot_of(&self, name: &str, p: &PolicyState, now: DateTime<Utc>) -> Option<Due> {
        let mut best: Option<Due> = None;
        for sname in &p.schedules {
            let Some(s) = self.config.schedules.get(sname) else {
                continue;
            };
            let floor = now - grace(s);
            let after = self.last_before(name, now).map_or(floor, |l| l.max(floor));
            let Some(slot) = latest_slot(s, after, now) else {
                continue;
            };
            match &mut best {
                Some(b) if b.slot == slot => b.schedules.push(sname.clone()),
                Some(b) if b.slot > slot => {}
                _ => {
                    best = Some(Due {
                        policy: name.to_string(),
                        slot,
                        schedules: vec![sname.clone()],
                        kind: DueKind::Slot,
                        attempt: 1,
                        supersedes: None,
                    })
                }
            }
        }
        best
    }

    /// The `vpc_capture` blocks due at `now`: those with an `every` whose
    /// last run is at least one interval ago (or that never ran).
    pub fn captures(&self, now: DateTime<Utc>) -> Vec<String> {
        self.config
            .vpc_captures
            .values()
            .filter_map(|c| {
                let every = capture_interval(c)?;
                match self.last_before(&capture_key(&c.name), now) {
                    Some(l) if l + every - (every / 10).min(CAPTURE_SLACK) > now => None,
                    _ => Some(c.name.clone()),
                }
            })
            .collect()
    }

    /// The accounts whose secured-DR check is due at `now`: those with a
    /// `check_every` whose last check is at least one interval ago (or
    /// that were never checked).
    pub fn secured_checks(&self, now: DateTime<Utc>) -> Vec<String> {
        self.config
            .accounts
            .values()
            .filter_map(|a| {
                let every = secured_interval(a)?;
                match self.last_before(&secured_key(&a.name), now) {
                    Some(l) if l + every - (every / 10).min(CAPTURE_SLACK) > now => None,
                    _ => Some(a.name.clone()),
                }
            })
            .collect()
    }

    /// The accounts whose tag scan is due at `now`: those with a
    /// `tag_scan { every }` whose last scan is at least one interval ago
    /// (or that were never scanned).
    pub fn tag_scans(&self, now: DateTime<Utc>) -> Vec<String> {
        self.config
            .accounts
            .values()
            .filter_map(|a| {
                let every = tag_scan_interval(a)?;
                match self.last_before(&tag_scan_key(&a.name), now) {
                    Some(l) if l + every - (every / 10).min(CAPTURE_SLACK) > now => None,
                    _ => Some(a.name.clone()),
                }
            })
            .collect()
    }

    /// When the next tag scan comes due.
    pub fn next_tag_scan(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.config
            .accounts
            .values()
            .filter_map(|a| {
                let every = tag_scan_interval(a)?;
                Some(
                    self.last_before(&tag_scan_key(&a.name), now)
                        .map_or(now, |l| l + every),
                )
            })
            .min()
    }

    /// When the next secured-DR check comes due.
    pub fn next_secured_check(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.config
            .accounts
            .values()
            .filter_map(|a| {
                let every = secured_interval(a)?;
                Some(
                    self.last_before(&secured_key(&a.name), now)
                        .map_or(now, |l| l + every),
                )
            })
            .min()
    }

    /// The scenarios whose drill is due at `now`: those with a `drill`
    /// block whose last drill started at least `every` ago (or that were
    /// never drilled).
    pub fn drills(&self, now: DateTime<Utc>) -> Vec<String> {
        self.config
            .recovery_scenarios
            .iter()
            .filter_map(|sc| {
                let every = drill_interval(sc)?;
                // A start in the future (a wrong clock, `--now`) counts as
                // just drilled: each drill makes real resources, and one
                // at every look until that time would be a loop of them.
                match self.last.get(&drill_key(&sc.name)) {
                    Some(l) if *l > now => None,
                    Some(l) if *l + every - (every / 10).min(CAPTURE_SLACK) > now => None,
                    _ => Some(sc.name.clone()),
                }
            })
            .collect()
    }

    /// When the next drill comes due, or a kept drill's teardown.
    pub fn next_drill(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let drills = self.config.recovery_scenarios.iter().filter_map(|sc| {
            let every = drill_interval(sc)?;
            Some(
                self.last_before(&drill_key(&sc.name), now)
                    .map_or(now, |l| l + every),
            )
        });
        // A teardown past its time is one this runner could not make (a
        // live process elsewhere holds the drill, or it failed): looked at
        // again after DRILL_LOOK, never at once in a loop.
        let teardowns = self
            .teardowns
            .iter()
            .map(|t| if *t > now { *t } else { now + DRILL_LOOK });
        drills.chain(teardowns).min()
    }

    /// Are the scheduled reports due at `now`: never written, or `every`
    /// since they were (less the slack captures get)?
    pub fn reports(&self, now: DateTime<Utc>) -> bool {
        let Some(every) = reports_interval(self.config) else {
            return false;
        };
        match self.last_before(REPORTS_KEY, now) {
            Some(l) => l + every - (every / 10).min(CAPTURE_SLACK) <= now,
            None => true,
        }
    }

    /// When the scheduled reports next come due (`now` when never written).
    pub fn next_reports(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let every = reports_interval(self.config)?;
        Some(
            self.last_before(REPORTS_KEY, now)
                .map_or(now, |l| (l + every).max(now)),
        )
    }

    /// Is the daily summary due at `now`?
    pub fn summary(&self, now: DateTime<Utc>) -> bool {
        self.summary_time()
            .is_some_and(|at| summary_due(at, self.summary_sent.as_deref(), now))
    }

    fn summary_time(&self) -> Option<&str> {
        self.config.notifications.as_ref()?.daily_summary.as_deref()
    }

    /// The next instant after `now` at which some policy has a slot or a
    /// retry (a retry already due counts as `now`).
    pub fn next_run(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let enabled = |p: &str| {
            self.policies
                .get(p)
                .is_some_and(|p| p.enabled && !p.template)
        };
        let slots = self
            .policies
            .values()
            .filter(|p| p.enabled)
            .flat_map(|p| p.schedules.iter())
            .filter_map(|s| self.config.schedules.get(s))
            .filter_map(|s| schedule::next_after(s, now));
        let retries = self
            .retries
            .values()
            .filter(|r| enabled(&r.policy))
            .map(|r| r.due.max(now));
        slots.chain(retries).min()
    }

    /// When the next capture comes due (`now` for one never run, or one
    /// overdue).
    pub fn next_capture(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.config
            .vpc_captures
            .values()
            .filter_map(|c| {
                let every = capture_interval(c)?;
                Some(
                    self.last_before(&capture_key(&c.name), now)
                        .map_or(now, |l| l + every),
                )
            })
            .min()
    }

    /// The next instant after `now` at which the daily summary's time
    /// comes (today's, or tomorrow's once today's has passed).
    pub fn next_summary(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let time = NaiveTime::parse_from_str(self.summary_time()?, "%H:%M").ok()?;
        let today = now.date_naive().and_time(time).and_utc();
        Some(if today > now {
            today
        } else {
            today + Duration::days(1)
        })
    }

    /// The resource-control operations due at `now`: a group whose latest
    /// window edge came after its last operation (or that never operated)
    /// applies what that edge says, once, however many edges a runner that
    /// was down missed; a group that is off, with databases, looks at them
    /// every [`control::DATABASE_LOOK`]. An operation by hand (`rc off`,
    /// `rc on`) after the latest edge stands for it: neither the edge nor
    /// a look acts until the next edge.
    pub fn controls(&self, now: DateTime<Utc>) -> Vec<ControlDue> {
        let mut out = Vec::new();
        for (name, g) in &self.config.resource_control_groups {
            let Some(edge) = control::timetable::latest_edge(g, now) else {
                continue;
            };
            let by_hand = self.last_before(&control::hand_key(name), now);
            let last = self.last_before(&control::key(name), now).max(by_hand);
            if last.is_none_or(|l| edge.at > l) {
                out.push(ControlDue {
                    group: name.clone(),
                    action: edge.action,
                    databases_only: false,
                });
                continue;
            }
            let has_databases = !(g.rds.is_empty() && g.aurora.is_empty());
            let looked = self.last_before(&control::look_key(name), now);
            // As for captures: the last look is stamped when its step
            // began, which may be a little later than the next step's.
            let look_due = looked.is_none_or(|l| l + control::DATABASE_LOOK - CAPTURE_SLACK <= now);
            let handled = by_hand.is_some_and(|h| h >= edge.at);
            if edge.action == Action::Off && has_databases && look_due && !handled {
                out.push(ControlDue {
                    group: name.clone(),
                    action: Action::Off,
                    databases_only: true,
                });
            }
        }
        out
    }

    /// When the next resource-control operation or database look comes due.
    pub fn next_control(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut next = Vec::new();
        for (name, g) in &self.config.resource_control_groups {
            next.extend(control::timetable::next_edge(g, now).map(|e| e.at));
            let latest = control::timetable::latest_edge(g, now);
            let off = latest.is_some_and(|e| e.action == Action::Off);
            let by_hand = self.last_before(&control::hand_key(name), now);
            let handled = by_hand.is_some_and(|h| latest.is_some_and(|e| h >= e.at));
            if off && !handled && !(g.rds.is_empty() && g.aurora.is_empty()) {
                let looked = self.last_before(&control::look_key(name), now);
                next.push(looked.map_or(now, |l| (l + control::DATABASE_LOOK).max(now)));
            }
        }
        next.into_iter().min()
    }

    /// When the next thing of any kind comes due: a slot, a retry, a
    /// capture, a secured check or the daily summary.
    pub fn next_due(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        [
            self.next_control(now),
            self.next_run(now),
            self.next_capture(now),
            self.next_secured_check(now),
            self.next_tag_scan(now),
            self.next_drill(now),
            self.next_summary(now),
            self.next_reports(now),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// Times the state holds that are later than `now` (beyond a minute of
/// clock skew): the last runs the agenda reads and the backups' start
/// times. Each is one warning line for `status` and `plan`; the runner
/// ignores them ([`Agenda`] treats such a last run as absent, retention
/// ranks by the order backups were taken).
pub fn future_times(
    last: &BTreeMap<String, DateTime<Utc>>,
    backups: &[crate::state::BackupRecord],
    now: DateTime<Utc>,
) -> Vec<String> {
    let limit = now + Duration::minutes(1);
    let mut out = Vec::new();
    for (key, t) in last.iter().filter(|(_, t)| **t > limit) {
        out.push(format!(
            "the last run of {key} is recorded at {t}, after now ({now}): a clock or a --now was ahead; the runner ignores it"
        ));
    }
    let ahead: Vec<&crate::state::BackupRecord> =
        backups.iter().filter(|b| b.started > limit).collect();
    if let Some(first) = ahead.first() {
        out.push(format!(
            "{} backup(s) started after now ({now}), e.g. {} at {}: a clock or a --now was ahead; retention ranks backups by the order they were taken, not by these times",
            ahead.len(),
            first.address(),
            first.started
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat_schema::{AutoRemove, Every, Notifications};

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
            excludes: vec![],
            auto_remove_targets: AutoRemove::No,
            schedules: schedules.iter().map(|s| s.to_string()).collect(),
            options: Default::default(),
            dr: None,
            template: false,
            from_template: None,
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn config(schedules: &[(&str, Schedule)]) -> Config {
        let mut c = Config::default();
        for (name, s) in schedules {
            c.schedules.insert(name.to_string(), s.clone());
        }
        c
    }

    /// The agenda of `config` with policy `web` on `schedules`.
    fn agenda<'c>(config: &'c Config, p: PolicyState) -> Agenda<'c> {
        Agenda {
            config,
            policies: [("web".to_string(), p)].into(),
            last: BTreeMap::new(),
            retries: BTreeMap::new(),
            summary_sent: None,
            teardowns: vec![],
        }
    }

    #[test]
    fn a_policy_is_due_once_for_the_latest_missed_slot_within_the_grace_window() {
        let c = config(&[("hourly", sched("1h", "2026-11-22T00:17"))]);
        let mut a = agenda(&c, policy(&["hourly"]));
        // Never ran: the slot of the last hour is due once.
        let d = a.runs(t("2026-11-22T10:20:00Z"));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].slot, t("2026-11-22T10:17:00Z"));
        a.last.insert("web".to_string(), d[0].slot);
        // Same hour again: nothing.
        assert!(a.runs(t("2026-11-22T10:59:00Z")).is_empty());
        // Three slots missed (11:17, 12:17, 13:17): one run, for the latest.
        let d = a.runs(t("2026-11-22T13:30:00Z"));
        assert_eq!(
            d.iter().map(|d| d.slot).collect::<Vec<_>>(),
            vec![t("2026-11-22T13:17:00Z")]
        );
        assert_eq!(
            a.next_run(t("2026-11-22T13:30:00Z")),
            Some(t("2026-11-22T14:17:00Z"))
        );
    }

    #[test]
    fn an_account_is_tag_scanned_once_per_interval_and_only_with_every() {
        let mut c = config(&[]);
        let account = |name: &str, every_secs| lifeboat_schema::Account {
            name: name.into(),
            kind: lifeboat_schema::AccountKind::Backup,
            regions: vec!["us-east-1".into()],
            profile: None,
            assume_role: None,
            allow_delete: true,
            account_id: None,
            manage_role: None,
            secured: None,
            tag_scan: Some(lifeboat_schema::TagScan {
                regions: vec![],
                kinds: lifeboat_schema::TagScan::DEFAULT_KINDS.to_vec(),
                every_secs,
            }),
            location: Default::default(),
        };
        c.accounts
            .insert("main".into(), account("main", Some(3600)));
        c.accounts.insert("quiet".into(), account("quiet", None));
        let mut a = agenda(&c, policy(&[]));
        let now = t("2026-11-22T10:00:00Z");
        assert_eq!(a.tag_scans(now), vec!["main".to_string()]);
        assert_eq!(a.next_due(now), Some(now));
        a.last.insert(tag_scan_key("main"), now);
        assert!(a.tag_scans(t("2026-11-22T10:30:00Z")).is_empty());
        assert_eq!(
            a.next_tag_scan(t("2026-11-22T10:30:00Z")),
            Some(t("2026-11-22T11:00:00Z"))
        );
        // The step that records a scan may begin a little after the next
        // one's: a minute early still counts.
        assert_eq!(
            a.tag_scans(t("2026-11-22T10:59:30Z")),
            vec!["main".to_string()]
        );
        // A scan recorded in the future (a wrong clock) does not stop them.
        a.last
            .insert(tag_scan_key("main"), t("2030-01-01T00:00:00Z"));
        assert_eq!(a.tag_scans(now), vec!["main".to_string()]);
    }

    #[test]
    fn two_schedules_with_the_same_slot_make_one_run_and_disabled_policies_none() {
        let c = config(&[
            ("hourly", sched("1h", "2026-11-22T00:00")),
            ("daily", sched("1d", "2026-11-22T00:00")),
        ]);
        let mut p = policy(&["hourly", "daily"]);
        let d = agenda(&c, p.clone()).runs(t("2026-11-23T00:00:30Z"));
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].schedules,
            vec!["hourly".to_string(), "daily".to_string()]
        );
        p.enabled = false;
        let a = agenda(&c, p);
        assert!(a.runs(t("2026-11-23T00:00:30Z")).is_empty());
        assert_eq!(a.next_run(t("2026-11-23T00:00:30Z")), None);
    }

    #[test]
    fn a_last_run_recorded_in_the_future_does_not_stop_what_is_due() {
        let c = config(&[("hourly", sched("1h", "2026-11-22T00:17"))]);
        let mut a = agenda(&c, policy(&["hourly"]));
        a.last.insert("web".into(), t("2030-01-01T00:17:00Z"));
        let due = a.runs(t("2026-11-22T10:20:00Z"));
        assert_eq!(due.len(), 1, "{due:?}");
        assert_eq!(due[0].slot, t("2026-11-22T10:17:00Z"));
        let warnings = future_times(&a.last, &[], t("2026-11-22T10:20:00Z"));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("the last run of web"), "{warnings:?}");
    }

    #[test]
    fn a_slot_older_than_one_interval_is_not_caught_up() {
        let c = config(&[("daily", sched("1d", "2026-11-01T03:00"))]);
        let mut a = agenda(&c, policy(&["daily"]));
        a.last.insert("web".to_string(), t("2026-11-10T03:00:00Z"));
        // Down for a week: only the latest slot within one day runs.
        let d = a.runs(t("2026-11-17T02:00:00Z"));
        assert_eq!(
            d.iter().map(|d| d.slot).collect::<Vec<_>>(),
            vec![t("2026-11-16T03:00:00Z")]
        );
    }

    #[test]
    fn a_waiting_retry_is_due_at_its_time_and_a_new_slot_replaces_it() {
        let c = config(&[("daily", sched("1d", "2026-11-01T03:00"))]);
        let mut a = agenda(&c, policy(&["daily"]));
        a.last.insert("web".to_string(), t("2026-11-22T03:00:00Z"));
        let retry = Retry {
            policy: "web".into(),
            slot: t("2026-11-22T03:00:00Z"),
            attempt: 2,
            due: t("2026-11-22T03:10:00Z"),
        };
        a.retries.insert("web".to_string(), retry.clone());
        assert!(a.runs(t("2026-11-22T03:05:00Z")).is_empty());
        assert_eq!(
            a.next_run(t("2026-11-22T03:05:00Z")),
            Some(t("2026-11-22T03:10:00Z"))
        );
        let d = a.runs(t("2026-11-22T03:10:00Z"));
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].slot, d[0].attempt), (retry.slot, 2));
        assert!(d[0].is_retry() && d[0].schedules.is_empty());
        assert_eq!(d[0].kind, DueKind::Retry);
        // Still waiting at the next slot: the new slot runs and replaces it.
        let d = a.runs(t("2026-11-23T03:00:00Z"));
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].slot, d[0].attempt), (t("2026-11-23T03:00:00Z"), 1));
        assert_eq!(d[0].supersedes, Some(retry));
    }

    fn with_capture(mut c: Config, every_hours: Option<u32>) -> Config {
        c.vpc_captures.insert(
            "prod".into(),
            VpcCapture {
                name: "prod".into(),
                account: "main".into(),
                regions: vec![],
                every: every_hours.map(|count| lifeboat_schema::Every {
                    count,
                    unit: lifeboat_schema::EveryUnit::Hours,
                }),
                location: Default::default(),
            },
        );
        c
    }

    #[test]
    fn captures_are_due_once_per_interval_and_at_once_when_never_run() {
        let h = |h: u32| -> DateTime<Utc> { format!("2026-11-22T{h:02}:00:00Z").parse().unwrap() };
        let c = with_capture(Config::default(), Some(4));
        let mut a = agenda(&c, policy(&[]));
        assert_eq!(a.captures(h(10)), vec!["prod".to_string()]);
        assert_eq!(a.next_capture(h(10)), Some(h(10)));
        a.last.insert(capture_key("prod"), h(10));
        assert!(a.captures(h(13)).is_empty());
        assert_eq!(a.next_capture(h(13)), Some(h(14)));
        assert_eq!(a.captures(h(14)), vec!["prod".to_string()]);
        // The last one ran a few seconds after its wake-up: the wake-up one
        // interval later still makes the next.
        a.last
            .insert(capture_key("prod"), h(10) + Duration::seconds(3));
        assert_eq!(a.captures(h(14)), vec!["prod".to_string()]);
        // Without `every`, a capture is never due in run mode.
        let c = with_capture(Config::default(), None);
        let a = agenda(&c, policy(&[]));
        assert!(a.captures(h(10)).is_empty());
        assert_eq!(a.next_capture(h(10)), None);
    }

    #[test]
    fn the_summary_is_due_once_a_day_after_its_time() {
        assert!(!summary_due("08:00", None, t("2026-11-22T07:59:00Z")));
        assert!(summary_due("08:00", None, t("2026-11-22T08:00:00Z")));
        assert!(summary_due(
            "08:00",
            Some("2026-11-21"),
            t("2026-11-22T13:00:00Z")
        ));
        assert!(!summary_due(
            "08:00",
            Some("2026-11-22"),
            t("2026-11-22T13:00:00Z")
        ));
        let c = Config {
            notifications: Some(Notifications {
                sns_topic: "arn".into(),
                account: "main".into(),
                region: "us-east-1".into(),
                daily_summary: Some("08:00".into()),
                reports: None,
            }),
            ..Config::default()
        };
        let mut a = agenda(&c, policy(&[]));
        a.summary_sent = Some("2026-11-22".into());
        assert!(!a.summary(t("2026-11-22T13:00:00Z")));
        assert_eq!(
            a.next_summary(t("2026-11-22T07:00:00Z")),
            Some(t("2026-11-22T08:00:00Z"))
        );
        assert_eq!(
            a.next_summary(t("2026-11-22T08:00:00Z")),
            Some(t("2026-11-23T08:00:00Z"))
        );
    }

    #[test]
    fn the_reports_are_due_at_first_then_every_interval_from_the_last_try() {
        let c = Config {
            notifications: Some(Notifications {
                sns_topic: "arn".into(),
                account: "main".into(),
                region: "us-east-1".into(),
                daily_summary: None,
                reports: Some(lifeboat_schema::ScheduledReports {
                    bucket: "b".into(),
                    prefix: String::new(),
                    every_secs: 86_400,
                }),
            }),
            ..Config::default()
        };
        let mut a = agenda(&c, policy(&[]));
        let now = t("2026-11-22T10:00:00Z");
        assert!(a.reports(now), "never written: due at once");
        assert_eq!(a.next_reports(now), Some(now));
        a.last.insert(REPORTS_KEY.into(), now);
        assert!(!a.reports(t("2026-11-23T09:58:00Z")));
        assert!(a.reports(t("2026-11-23T09:59:00Z")), "a minute's slack");
        assert_eq!(
            a.next_reports(t("2026-11-22T12:00:00Z")),
            Some(t("2026-11-23T10:00:00Z"))
        );
        assert!(!agenda(&Config::default(), policy(&[])).reports(now));
    }

    #[test]
    fn the_next_thing_due_is_the_earliest_of_slots_retries_captures_and_the_summary() {
        let mut c = with_capture(
            config(&[("daily", sched("1d", "2026-11-01T03:00"))]),
            Some(4),
        );
        c.notifications = Some(Notifications {
            sns_topic: "arn".into(),
            account: "main".into(),
            region: "us-east-1".into(),
            daily_summary: Some("02:30".into()),
            reports: None,
        });
        let mut a = agenda(&c, policy(&["daily"]));
        a.last
            .insert(capture_key("prod"), t("2026-11-22T00:00:00Z"));
        let now = t("2026-11-22T01:00:00Z");
        assert_eq!(a.next_due(now), Some(t("2026-11-22T02:30:00Z")));
        a.retries.insert(
            "web".into(),
            Retry {
                policy: "web".into(),
                slot: t("2026-11-21T03:00:00Z"),
                attempt: 2,
                due: t("2026-11-22T01:45:00Z"),
            },
        );
        assert_eq!(a.next_due(now), Some(t("2026-11-22T01:45:00Z")));
        let now = t("2026-11-22T02:45:00Z");
        a.retries.clear();
        assert_eq!(a.next_due(now), Some(t("2026-11-22T03:00:00Z")));
        let now = t("2026-11-22T03:30:00Z");
        assert_eq!(a.next_due(now), Some(t("2026-11-22T04:00:00Z")));
    }

    #[test]
    fn a_group_acts_once_per_edge_and_looks_at_its_databases_hourly_while_off() {
        let mut c = Config::default();
        let group: lifeboat_schema::ResourceControlGroup =
            serde_json::from_value(serde_json::json!({
                "name": "nightly", "account": "dev", "mode": "on_off", "time_zone": "UTC",
                "hibernate": false, "timeout_secs": 60, "rds": ["db"],
                "windows": [{ "off": "mon 20:00", "on": "tue 07:00" }],
            }))
            .unwrap();
        c.resource_control_groups.insert("nightly".into(), group);
        let mut a = agenda(&c, policy(&[]));
        let due = |a: &Agenda<'_>, at: &str| -> Vec<(Action, bool)> {
            a.controls(t(at))
                .into_iter()
                .map(|d| (d.action, d.databases_only))
                .collect()
        };
        // 2026-11-30 is a Monday. Never operated: what the windows say now.
        assert_eq!(due(&a, "2026-11-30T12:00:00Z"), [(Action::On, false)]);
        a.last
            .insert(control::key("nightly"), t("2026-11-30T12:00:00Z"));
        assert!(due(&a, "2026-11-30T19:59:00Z").is_empty());
        assert_eq!(
            a.next_control(t("2026-11-30T12:00:00Z")),
            Some(t("2026-11-30T20:00:00Z"))
        );
        assert_eq!(due(&a, "2026-11-30T20:00:00Z"), [(Action::Off, false)]);
        a.last
            .insert(control::key("nightly"), t("2026-11-30T20:00:00Z"));
        a.last
            .insert(control::look_key("nightly"), t("2026-11-30T20:00:00Z"));
        // `rc on` at 20:10: no look until the next edge, and the edge is
        // not due again.
        a.last
            .insert(control::hand_key("nightly"), t("2026-11-30T20:10:00Z"));
        assert!(a.controls(t("2026-11-30T23:00:00Z")).is_empty());
        assert_eq!(
            a.next_control(t("2026-11-30T23:00:00Z")),
            Some(t("2026-12-01T07:00:00Z"))
        );
        a.last.remove(&control::hand_key("nightly"));
        assert!(due(&a, "2026-11-30T20:30:00Z").is_empty());
        assert_eq!(
            a.next_control(t("2026-11-30T20:30:00Z")),
            Some(t("2026-11-30T21:00:00Z"))
        );
        assert_eq!(due(&a, "2026-11-30T21:00:00Z"), [(Action::Off, true)]);
        // Down from Monday night to Wednesday: one operation, Tuesday's on.
        assert_eq!(due(&a, "2026-12-02T12:00:00Z"), [(Action::On, false)]);
    }
}
