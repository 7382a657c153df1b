//! When schedules run: pure arithmetic from a [`Schedule`] to UTC instants.
//!
//! Minute and hour schedules step in absolute time from `start`, so an hourly
//! schedule started at 00:17 runs at minute 17 of every hour whatever the
//! zone's offset does. Day, week and month schedules step in local calendar
//! time, so a daily 10:00 run stays at 10:00 on the wall clock across
//! daylight-saving changes. Then:
//!
//! - a local time that does not exist (skipped by a DST change) means the
//!   first valid instant after it; a local time that happens twice means the
//!   first of the two, so a repeated hour never causes a second run;
//! - months clamp: a monthly run started on the 31st runs on the last day of
//!   shorter months, and on the 31st again when the month has one;
//! - `days` and the disable windows filter candidates by the wall-clock time
//!   at which they would start;
//! - nothing runs at or after `expires`.
//!
//! Searches are bounded ([`HORIZON_DAYS`]) so that a schedule whose every
//! candidate is filtered out ends with `None` rather than a loop.

use chrono::{
    DateTime, Datelike, Days, Duration, LocalResult, Months, NaiveDateTime, TimeZone, Timelike, Utc,
};
use lifeboat_schema::{Config, Diagnostic, EveryUnit, Schedule, Tz};

/// How far past the later of `after` and `start` a search looks for a run.
pub const HORIZON_DAYS: i64 = 5 * 366;

/// The instant a wall-clock time in `tz` stands for: the earlier of a
/// repeated time, and for a skipped time the first valid instant after it.
pub fn resolve(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    let pick = |r: LocalResult<DateTime<Tz>>| match r {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Some(a.min(b).with_timezone(&Utc)),
        LocalResult::None => None,
    };
    if let Some(t) = pick(tz.from_local_datetime(&local)) {
        return Some(t);
    }
    // A gap: transitions fall on whole minutes, so the first existing minute
    // after the skipped time is the instant the gap ends. Gaps last hours at
    // most; two days of minutes is a generous bound.
    let mut t = local.with_second(0)?.with_nanosecond(0)?;
    for _ in 0..(2 * 24 * 60) {
        t = t.checked_add_signed(Duration::minutes(1))?;
        if let Some(found) = pick(tz.from_local_datetime(&t)) {
            return Some(found);
        }
    }
    None
}

/// The wall-clock time of an instant in the schedule's zone.
pub fn local_time(s: &Schedule, t: DateTime<Utc>) -> NaiveDateTime {
    t.with_timezone(&s.time_zone).naive_local()
}

/// When the schedule's `days` or disable windows forbid a run starting at
/// the wall-clock time `local`, the local time until which they do.
fn blocked_until(s: &Schedule, local: NaiveDateTime) -> Option<NaiveDateTime> {
    let mut until: Option<NaiveDateTime> = None;
    if let Some(days) = &s.days {
        if !days.contains(&local.weekday()) {
            until = local
                .date()
                .succ_opt()
                .map(|d| d.and_time(chrono::NaiveTime::MIN));
        }
    }
    for w in &s.disable {
        if let Some(end) = w.end_after(local) {
            until = Some(until.map_or(end, |u| u.max(end)));
        }
    }
    until
}

/// The schedule's expiry as an instant.
pub fn expires_at(s: &Schedule) -> Option<DateTime<Utc>> {
    s.expires.and_then(|e| resolve(s.time_zone, e))
}

/// The first run strictly after `after`, or `None` when there is none (the
/// schedule expired, or nothing was found within the search horizon).
pub fn next_after(s: &Schedule, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let start = resolve(s.time_zone, s.start)?;
    let expires = expires_at(s);
    let horizon = after.max(start) + Duration::days(HORIZON_DAYS);
    let found = match s.every.unit {
        EveryUnit::Minutes => absolute(s, start, s.every.nominal_duration(), after, horizon),
        EveryUnit::Hours => absolute(s, start, s.every.nominal_duration(), after, horizon),
        EveryUnit::Days | EveryUnit::Weeks | EveryUnit::Months => calendar(s, after, horizon),
    }?;
    match expires {
        Some(e) if found >= e => None,
        _ => Some(found),
    }
}

/// Minute and hour units: `start + k * step`.
fn absolute(
    s: &Schedule,
    start: DateTime<Utc>,
    step: Duration,
    after: DateTime<Utc>,
    horizon: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let step_s = step.num_seconds();
    let mut k: i64 = if after < start {
        0
    } else {
        (after - start).num_seconds() / step_s + 1
    };
    loop {
        let t = start.checked_add_signed(Duration::seconds(k.checked_mul(step_s)?))?;
        if t > horizon || expires_at(s).is_some_and(|e| t >= e) {
            return None;
        }
        let Some(end) = blocked_until(s, local_time(s, t)) else {
            return Some(t);
        };
        // Jump to the first candidate at or after the end of the block.
        let end = resolve(s.time_zone, end)?;
        let to_end = (end - start).num_seconds();
        let jump = if to_end <= 0 {
            0
        } else {
            (to_end + step_s - 1) / step_s
        };
        k = jump.max(k + 1);
    }
}

/// The `k`th local date-time of a day, week or month schedule.
fn calendar_local(s: &Schedule, k: u32) -> Option<NaiveDateTime> {
    let n = s.every.count.checked_mul(k)?;
    match s.every.unit {
        EveryUnit::Days => s.start.checked_add_days(Days::new(n.into())),
        EveryUnit::Weeks => s.start.checked_add_days(Days::new(u64::from(n) * 7)),
        // From `start` each time, not from the previous run, so that a run
        // clamped to the 30th goes back to the 31st when the month has one.
        EveryUnit::Months => s.start.checked_add_months(Months::new(n)),
        EveryUnit::Minutes | EveryUnit::Hours => None,
    }
}

/// Day, week and month units: wall-clock steps from `start`.
fn calendar(s: &Schedule, after: DateTime<Utc>, horizon: DateTime<Utc>) -> Option<DateTime<Utc>> {
    // Start a little before the step `after` falls in: offsets shift the
    // local date by at most a day.
    let after_local = local_time(s, after);
    let count = i64::from(s.every.count);
    let k0 = match s.every.unit {
        EveryUnit::Days => (after_local.date() - s.start.date()).num_days() / count,
        EveryUnit::Weeks => (after_local.date() - s.start.date()).num_days() / (7 * count),
        EveryUnit::Months => {
            let months = |d: NaiveDateTime| i64::from(d.year()) * 12 + i64::from(d.month0());
            (months(after_local) - months(s.start)) / count
        }
        EveryUnit::Minutes | EveryUnit::Hours => return None,
    };
    let mut k = u32::try_from((k0 - 1).max(0)).ok()?;
    loop {
        let t = resolve(s.time_zone, calendar_local(s, k)?)?;
        if t > horizon || expires_at(s).is_some_and(|e| t >= e) {
            return None;
        }
        if t > after && blocked_until(s, local_time(s, t)).is_none() {
            return Some(t);
        }
        k = k.checked_add(1)?;
    }
}

/// Every run from `from` (inclusive) until `until` (exclusive), in order.
pub fn times(s: &Schedule, from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut cursor = from - Duration::nanoseconds(1);
    while let Some(t) = next_after(s, cursor) {
        if t >= until {
            break;
        }
        out.push(t);
        cursor = t;
    }
    out
}

/// Schedule problems that depend on the clock, for `lifeboat validate`:
/// a schedule that will never start another run is a warning.
pub fn lint(config: &Config, now: DateTime<Utc>) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    for s in config.schedules.values() {
        if next_after(s, now).is_some() {
            continue;
        }
        let d = match (s.expires, expires_at(s)) {
            (Some(local), Some(at)) if at <= now => Diagnostic::warning(
                "Schedule expired",
                format!(
                    "schedule {:?} expired at {} ({}), so it starts no more runs; remove it or move \"expires\" later",
                    s.name,
                    local.format("%Y-%m-%dT%H:%M"),
                    s.time_zone
                ),
                Some(s.location.clone()),
            ),
            _ => Diagnostic::warning(
                "Schedule never runs again",
                format!(
                    "schedule {:?} has no run in the {} years after {}",
                    s.name,
                    HORIZON_DAYS / 366,
                    now.format("%Y-%m-%dT%H:%M:%SZ")
                ),
                Some(s.location.clone()),
            ),
        };
        found.push(d);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat_schema::{DisableWindow, Every, Weekday};
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Case {
        case: String,
        schedule: Spec,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        runs: Vec<String>,
    }

    /// A schedule as written in HCL.
    #[derive(Deserialize)]
    struct Spec {
        #[serde(default)]
        time_zone: Option<String>,
        start: String,
        every: String,
        #[serde(default)]
        days: Option<Vec<String>>,
        #[serde(default)]
        expires: Option<String>,
        #[serde(default)]
        disable: Vec<Window>,
    }

    #[derive(Deserialize)]
    struct Window {
        day: String,
        from: String,
        to: String,
    }

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap()
    }

    fn time(s: &str) -> chrono::NaiveTime {
        chrono::NaiveTime::parse_from_str(s, "%H:%M").unwrap()
    }

    fn day(s: &str) -> Weekday {
        s.parse().unwrap()
    }

    fn schedule(spec: &Spec) -> Schedule {
        Schedule {
            name: "s".into(),
            time_zone: spec.time_zone.as_deref().unwrap_or("UTC").parse().unwrap(),
            start: local(&spec.start),
            every: spec.every.parse::<Every>().unwrap(),
            days: spec
                .days
                .as_ref()
                .map(|d| d.iter().map(|s| day(s)).collect()),
            expires: spec.expires.as_deref().map(local),
            disable: spec
                .disable
                .iter()
                .map(|w| DisableWindow {
                    day: (w.day != "all").then(|| day(&w.day)),
                    from: time(&w.from),
                    to: time(&w.to),
                })
                .collect(),
            location: Default::default(),
        }
    }

    fn vectors() -> Vec<(String, Case)> {
        let dir = format!(
            "{}/../testdata/schedule",
            std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
        );
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        let mut out = Vec::new();
        for f in files {
            let cases: Vec<Case> =
                serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            out.extend(cases.into_iter().map(|c| (name.clone(), c)));
        }
        out
    }

    fn shown(s: &Schedule, ts: &[DateTime<Utc>]) -> Vec<String> {
        ts.iter()
            .map(|t| t.with_timezone(&s.time_zone).to_rfc3339())
            .collect()
    }

    #[test]
    fn schedule_vectors() {
        let cases = vectors();
        assert!(cases.len() >= 30, "only {} vectors", cases.len());
        let mut zones = std::collections::BTreeSet::new();
        let mut failures = Vec::new();
        for (file, c) in &cases {
            let s = schedule(&c.schedule);
            zones.insert(s.time_zone.name());
            let expected: Vec<DateTime<Utc>> = c
                .runs
                .iter()
                .map(|r| DateTime::parse_from_rfc3339(r).unwrap().with_timezone(&Utc))
                .collect();
            let got = times(&s, c.from, c.until);
            if got != expected {
                failures.push(format!(
                    "{file}: {}\n  expected {:?}\n  got      {:?}",
                    c.case,
                    shown(&s, &expected),
                    shown(&s, &got)
                ));
                continue;
            }
            // next_after is strict and agrees with times() run by run.
            for pair in expected.windows(2) {
                assert_eq!(next_after(&s, pair[0]), Some(pair[1]), "{file}: {}", c.case);
                let just_before = pair[1] - Duration::seconds(1);
                assert_eq!(
                    next_after(&s, just_before),
                    Some(pair[1]),
                    "{file}: {}",
                    c.case
                );
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        for z in [
            "Europe/Berlin",
            "America/New_York",
            "Australia/Sydney",
            "Australia/Adelaide",
            "Asia/Kolkata",
            "UTC",
        ] {
            assert!(zones.contains(z), "no vector in {z}");
        }
    }

    fn spec(zone: &str, start: &str, every: &str) -> Spec {
        Spec {
            time_zone: Some(zone.into()),
            start: start.into(),
            every: every.into(),
            days: None,
            expires: None,
            disable: Vec::new(),
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// The runs of `s` in `[from, until)` by enumerating every step from
    /// `start`: slow, obviously complete, and blind to the shortcuts of
    /// [`next_after`] (jumps over blocked ranges, the first step to look at).
    fn brute_force(s: &Schedule, from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let expires = expires_at(s);
        let mut out = Vec::new();
        for k in 0u32.. {
            let t = match s.every.unit {
                EveryUnit::Minutes | EveryUnit::Hours => {
                    let minutes = if s.every.unit == EveryUnit::Hours {
                        60
                    } else {
                        1
                    };
                    resolve(s.time_zone, s.start).unwrap()
                        + Duration::minutes(i64::from(k) * i64::from(s.every.count) * minutes)
                }
                _ => resolve(s.time_zone, calendar_local(s, k).unwrap()).unwrap(),
            };
            if t >= until || expires.is_some_and(|e| t >= e) {
                break;
            }
            if t >= from && blocked_until(s, local_time(s, t)).is_none() {
                out.push(t);
            }
        }
        out
    }

    #[test]
    fn schedule_shortcuts_agree_with_enumerating_every_step() {
        let zones = [
            "Europe/Berlin",
            "America/New_York",
            "Australia/Sydney",
            "Australia/Adelaide",
            "Australia/Lord_Howe",
            "Asia/Kolkata",
        ];
        let everies = ["7m", "45m", "1h", "5h", "1d", "3d", "1w", "1mo"];
        let windows: [&[(&str, &str, &str)]; 4] = [
            &[],
            &[("all", "22:00", "06:00")],
            &[("sun", "01:30", "03:30"), ("all", "12:00", "13:00")],
            &[("sat", "00:00", "00:00"), ("mon", "02:00", "02:45")],
        ];
        let days: [Option<&[&str]>; 2] = [None, Some(&["mon", "wed", "sun"])];
        // Ten days around each change of the year in the zones above.
        let froms = [
            "2026-03-05T00:00:00Z",
            "2026-03-25T00:00:00Z",
            "2026-04-01T00:00:00Z",
            "2026-09-30T00:00:00Z",
            "2026-10-21T00:00:00Z",
            "2026-10-29T00:00:00Z",
        ];
        let mut checked = 0;
        for (i, zone) in zones.iter().enumerate() {
            for (j, every) in everies.iter().enumerate() {
                let mut sp = spec(zone, "2026-01-31T02:15", every);
                sp.disable = windows[(i + j) % windows.len()]
                    .iter()
                    .map(|(d, f, t)| Window {
                        day: d.to_string(),
                        from: f.to_string(),
                        to: t.to_string(),
                    })
                    .collect();
                if !every.ends_with('w') && !every.ends_with("mo") {
                    sp.days =
                        days[(i * 3 + j) % 2].map(|d| d.iter().map(|s| s.to_string()).collect());
                }
                let s = schedule(&sp);
                for from in froms {
                    let from = utc(from);
                    let until = from + Duration::days(10);
                    assert_eq!(
                        times(&s, from, until),
                        brute_force(&s, from, until),
                        "{zone} every {every} from {from}"
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, zones.len() * everies.len() * froms.len());
    }

    #[test]
    fn schedule_that_can_never_run_ends_the_search() {
        // The schema rejects these; the engine must still end.
        let mut sp = spec("Europe/Berlin", "2026-01-05T10:00", "1d");
        sp.disable = vec![Window {
            day: "all".into(),
            from: "09:00".into(),
            to: "11:00".into(),
        }];
        let s = schedule(&sp);
        assert_eq!(next_after(&s, utc("2026-01-01T00:00:00Z")), None);

        let mut sp = spec("UTC", "2026-01-05T10:00", "1m");
        sp.days = Some(vec!["mon".into()]);
        sp.disable = vec![Window {
            day: "mon".into(),
            from: "00:00".into(),
            to: "00:00".into(),
        }];
        let s = schedule(&sp);
        assert_eq!(next_after(&s, utc("2026-01-01T00:00:00Z")), None);
    }

    #[test]
    fn schedule_expired_yields_nothing_and_lints_as_a_warning() {
        let mut sp = spec("Europe/Berlin", "2026-01-01T10:00", "1d");
        sp.expires = Some("2026-02-01T00:00".into());
        let mut s = schedule(&sp);
        s.name = "old".into();
        assert_eq!(next_after(&s, utc("2026-03-01T00:00:00Z")), None);
        assert_eq!(
            next_after(&s, utc("2026-01-31T09:00:00Z")),
            None,
            "the 31 January run was at 09:00Z, the next would be after expiry"
        );
        let mut config = Config::default();
        config.schedules.insert("old".into(), s.clone());
        let found = lint(&config, utc("2026-03-01T00:00:00Z"));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].summary, "Schedule expired");
        assert_eq!(found[0].severity, lifeboat_schema::Severity::Warning);
        assert!(found[0].detail.contains("2026-02-01T00:00 (Europe/Berlin)"));
        assert!(lint(&config, utc("2026-01-15T00:00:00Z")).is_empty());
    }

    #[test]
    fn schedule_start_in_a_gap_is_the_end_of_the_gap() {
        let s = schedule(&spec("Europe/Berlin", "2026-03-29T02:30", "1h"));
        assert_eq!(
            times(&s, utc("2026-03-29T00:00:00Z"), utc("2026-03-29T03:00:00Z")),
            vec![utc("2026-03-29T01:00:00Z"), utc("2026-03-29T02:00:00Z")]
        );
    }

    #[test]
    fn schedule_resolve_picks_the_first_of_a_repeated_time() {
        let tz: Tz = "America/New_York".parse().unwrap();
        assert_eq!(
            resolve(tz, local("2026-11-01T01:30")),
            Some(utc("2026-11-01T05:30:00Z"))
        );
        assert_eq!(
            resolve(tz, local("2026-03-08T02:30")),
            Some(utc("2026-03-08T07:00:00Z"))
        );
    }

    #[test]
    fn schedule_minute_steps_jump_over_blocked_days() {
        // One jump per blocked day, not one step per minute: after 23:59 on
        // Sunday the next run is the following Sunday at 00:00.
        let mut sp = spec("Europe/Berlin", "2026-01-04T00:00", "1m");
        sp.days = Some(vec!["sun".into()]);
        let s = schedule(&sp);
        let mut t = utc("2026-01-04T22:58:00Z");
        for _ in 0..60 {
            t = next_after(&s, t).unwrap();
        }
        // 2 runs on 4 January, then 58 from 00:00 on 11 January (CET).
        assert_eq!(t, utc("2026-01-10T23:58:00Z"));
    }
}
