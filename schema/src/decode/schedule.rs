//! `schedule "NAME" { ... }` blocks and the policy attribute
//! `schedules = [schedule.NAME, ...]`.
//!
//! Besides the shape of each value, this checks the contradictions that can
//! be seen without a clock: days given for a weekly or monthly schedule, an
//! expiry not after the start, and disable windows that leave no time at
//! which the schedule could ever start a run.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Weekday};
use hcl_edit::structure::{Block, Body};

use super::{start, Decoder, Scope, Value};
use crate::config::{DisableWindow, Every, EveryUnit, Schedule, Tz};
use crate::source::Source;
use crate::validate;

const SCHEDULE_ATTRS: &[&str] = &["time_zone", "start", "every", "days", "expires"];
const WEEKDAYS: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const LOCAL_FORMAT: &str = "%Y-%m-%dT%H:%M";

/// Parses a local date-time as written in `start` and `expires`: `YYYY-MM-DDTHH:MM`.
fn parse_local(s: &str) -> Option<NaiveDateTime> {
    // chrono accepts one-digit fields; the language wants the fixed form.
    if s.len() != 16 {
        return None;
    }
    NaiveDateTime::parse_from_str(s, LOCAL_FORMAT).ok()
}

/// Parses a time of day as written in `disable`: `HH:MM`.
fn parse_time(s: &str) -> Option<NaiveTime> {
    if s.len() != 5 {
        return None;
    }
    NaiveTime::parse_from_str(s, "%H:%M").ok()
}

fn weekday(s: &str) -> Option<Weekday> {
    WEEKDAYS
        .iter()
        .position(|w| *w == s)
        .and_then(|i| Weekday::try_from(i as u8).ok())
}

/// Decodes every schedule block. Returns the schedules without problems and
/// the names of all declared schedules (so that a policy referring to a
/// schedule with an error of its own is not reported a second time).
pub(super) fn decode_schedules(
    d: &mut Decoder,
    files: &[(&Source, &Body)],
    blocks: &[(usize, &Block)],
) -> (BTreeMap<String, Schedule>, BTreeSet<String>) {
    let mut schedules = BTreeMap::new();
    let mut declared_at: HashMap<String, (usize, usize)> = HashMap::new();
    for &(i, b) in blocks {
        let src = files[i].0;
        let (name, schedule) = decode_schedule(d, src, b);
        let Some(name) = name else { continue };
        if let Some(&(fi, at)) = declared_at.get(&name) {
            d.error(
                src,
                start(b.labels.first().expect("named")),
                "Duplicate schedule",
                format!(
                    "schedule {name:?} is already declared at {}",
                    files[fi].0.short_location(at)
                ),
            );
            continue;
        }
        declared_at.insert(name.clone(), (i, start(&b.ident)));
        if let Some(s) = schedule {
            schedules.insert(name, s);
        }
    }
    (schedules, declared_at.into_keys().collect())
}

fn decode_schedule(
    d: &mut Decoder,
    src: &Source,
    block: &Block,
) -> (Option<String>, Option<Schedule>) {
    let name = d.name_label(src, block, "nightly");
    let what = match &name {
        Some((n, _)) => format!("schedule {n:?}"),
        None => "this schedule".into(),
    };
    let scope = d.scope(
        src,
        &block.body,
        what,
        start(&block.ident),
        SCHEDULE_ATTRS,
        &["disable"],
    );
    let mut ok = true;

    let time_zone = decode_time_zone(d, src, &scope, &mut ok);
    let start_at = decode_local(d, src, &scope, "start", true);
    let expires = decode_local(d, src, &scope, "expires", false);
    ok &= expires.is_some() || d.get(&scope, "expires", false).is_none();
    let every = decode_every(d, src, &scope);
    let days = decode_days(d, src, &scope, every.as_ref().map(|(e, _)| e), &mut ok);
    let disable = decode_disable_windows(d, src, &scope, &mut ok);

    let name = name.map(|(n, _)| n);
    let (Some(name), Some((start_at, _)), Some((every, _))) = (name.clone(), start_at, every)
    else {
        return (name, None);
    };
    ok &= expires_after_start(d, src, &scope, start_at, expires);
    if ok {
        if let Some(why) = never_runs(start_at, every.unit, days.as_deref(), &disable) {
            d.error(
                src,
                start(&block.ident),
                "Schedule never runs",
                format!("{} can never start a run: {why}", scope.what),
            );
            ok = false;
        }
    }
    let schedule = ok.then(|| Schedule {
        name: name.clone(),
        time_zone,
        start: start_at,
        every,
        days,
        expires: expires.map(|(e, _)| e),
        disable,
        location: src.location(start(&block.ident)),
    });
    (Some(name), schedule)
}

/// `time_zone`: UTC when left out, so that a schedule without one still
/// decodes; a problem with it clears `ok`.
pub(super) fn decode_time_zone(
    d: &mut Decoder,
    src: &Source,
    scope: &Scope<'_>,
    ok: &mut bool,
) -> Tz {
    match d.string(scope, "time_zone", false) {
        None => {
            // Present but not a string: already reported.
            *ok &= d.get(scope, "time_zone", false).is_none();
            Tz::UTC
        }
        Some((z, at)) => match z.parse::<Tz>() {
            Ok(tz) => tz,
            Err(_) => {
                d.error(
                    src,
                    at,
                    "Unknown time zone",
                    format!(
                        "{z:?} in {} is not an IANA time zone name; expected a name like \"Europe/Berlin\" or \"UTC\"{}",
                        scope.what,
                        zone_hint(&z)
                    ),
                );
                *ok = false;
                Tz::UTC
            }
        },
    }
}

/// `start` or `expires`: a local date-time with where it was written.
fn decode_local(
    d: &mut Decoder,
    src: &Source,
    scope: &Scope<'_>,
    attr: &str,
    required: bool,
) -> Option<(NaiveDateTime, usize)> {
    let (s, at) = d.string(scope, attr, required)?;
    match parse_local(&s) {
        Some(t) => Some((t, at)),
        None => {
            d.error(
                src,
                at,
                "Invalid date-time",
                format!(
                    "{attr:?} in {} must be a local date and time as YYYY-MM-DDTHH:MM, like \"2026-01-05T00:17\", not {s:?}",
                    scope.what
                ),
            );
            None
        }
    }
}

/// `every`: the interval between runs, with where it was written.
fn decode_every(d: &mut Decoder, src: &Source, scope: &Scope<'_>) -> Option<(Every, usize)> {
    d.string(scope, "every", true)
        .and_then(|(s, at)| match s.parse::<Every>() {
            Ok(e) => Some((e, at)),
            Err(why) => {
                d.error(
                    src,
                    at,
                    "Invalid interval",
                    format!("\"every\" in {}: {why}", scope.what),
                );
                None
            }
        })
}

/// `days`: the weekdays a run may start on (`None` when left out: every
/// day). Weekly and monthly schedules take their day from `start`, so the
/// list is refused for them.
fn decode_days(
    d: &mut Decoder,
    src: &Source,
    scope: &Scope<'_>,
    every: Option<&Every>,
    ok: &mut bool,
) -> Option<Vec<Weekday>> {
    let Some(list) = d.string_list(scope, "days", false) else {
        *ok &= d.get(scope, "days", false).is_none();
        return None;
    };
    let at = start(&scope.attrs["days"].value);
    let mut parsed = Vec::new();
    for (s, at) in &list {
        match weekday(s) {
            Some(w) => parsed.push(w),
            None => {
                d.error(
                    src,
                    *at,
                    "Invalid weekday",
                    format!(
                        "{s:?} in \"days\" of {} is not a weekday; expected one of {}{}",
                        scope.what,
                        WEEKDAYS.join(", "),
                        validate::did_you_mean(s, WEEKDAYS.iter().copied())
                    ),
                );
                *ok = false;
            }
        }
    }
    *ok &= d.duplicates_in_list(scope, "days", &list);
    if list.is_empty() {
        d.error(
            src,
            at,
            "Schedule never runs",
            format!(
                "\"days\" in {} is empty, so no day allows a run; list at least one weekday or leave \"days\" out",
                scope.what
            ),
        );
        *ok = false;
    }
    if let Some(e) = every {
        if matches!(e.unit, EveryUnit::Weeks | EveryUnit::Months) {
            d.error(
                src,
                at,
                "Days not allowed",
                format!(
                    "{} runs every {e}: weekly and monthly schedules take their day from \"start\", so \"days\" is only allowed with m, h and d units",
                    scope.what
                ),
            );
            *ok = false;
        }
    }
    Some(parsed)
}

/// Every `disable` block of a schedule, in the order written; a window with
/// a problem is left out and clears `ok`.
fn decode_disable_windows(
    d: &mut Decoder,
    src: &Source,
    scope: &Scope<'_>,
    ok: &mut bool,
) -> Vec<DisableWindow> {
    let mut disable = Vec::new();
    for b in &scope.blocks {
        match decode_disable_window(d, src, scope, b) {
            Some(w) => disable.push(w),
            None => *ok = false,
        }
    }
    disable
}

/// One `disable { day from to }` block. `day` left out or `"all"` means
/// every day.
fn decode_disable_window(
    d: &mut Decoder,
    src: &Source,
    scope: &Scope<'_>,
    b: &Block,
) -> Option<DisableWindow> {
    d.no_labels(src, b);
    let w = d.scope(
        src,
        &b.body,
        format!("a disable block of {}", scope.what),
        start(&b.ident),
        &["day", "from", "to"],
        &[],
    );
    let day = match d.string(&w, "day", false) {
        None => Some(None),
        Some((s, _)) if s == "all" => Some(None),
        Some((s, at)) => match weekday(&s) {
            Some(wd) => Some(Some(wd)),
            None => {
                let allowed: Vec<&str> = WEEKDAYS.iter().copied().chain(["all"]).collect();
                d.error(
                    src,
                    at,
                    "Invalid weekday",
                    format!(
                        "\"day\" in {} must be a weekday ({}) or \"all\", not {s:?}{}",
                        w.what,
                        WEEKDAYS.join(", "),
                        validate::did_you_mean(&s, allowed)
                    ),
                );
                None
            }
        },
    };
    let time = |d: &mut Decoder, attr: &str| {
        let (s, at) = d.string(&w, attr, true)?;
        let t = parse_time(&s);
        if t.is_none() {
            d.error(
                src,
                at,
                "Invalid time",
                format!(
                    "{attr:?} in {} must be a time of day as HH:MM (00:00 to 23:59), not {s:?}",
                    w.what
                ),
            );
        }
        t
    };
    let from = time(d, "from");
    let to = time(d, "to");
    match (day, from, to) {
        (Some(day), Some(from), Some(to)) => Some(DisableWindow { day, from, to }),
        _ => None,
    }
}

/// False (after reporting it) when `expires` is not later than `start`: such
/// a schedule could never run.
fn expires_after_start(
    d: &mut Decoder,
    src: &Source,
    scope: &Scope<'_>,
    start_at: NaiveDateTime,
    expires: Option<(NaiveDateTime, usize)>,
) -> bool {
    let Some((e, at)) = expires else {
        return true;
    };
    if e > start_at {
        return true;
    }
    d.error(
        src,
        at,
        "Expiry not after start",
        format!(
            "{} expires at {} but starts at {}, so it never runs; \"expires\" must be later than \"start\"",
            scope.what,
            e.format(LOCAL_FORMAT),
            start_at.format(LOCAL_FORMAT)
        ),
    );
    false
}

/// A close IANA name for a misspelt zone.
fn zone_hint(z: &str) -> String {
    let lower = z.to_lowercase();
    if let Some(tz) = chrono_tz::TZ_VARIANTS
        .iter()
        .find(|t| t.name().to_lowercase() == lower)
    {
        return format!("; did you mean {:?}?", tz.name());
    }
    let names: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|t| t.name()).collect();
    validate::did_you_mean(z, names)
}

/// Which minutes of each weekday (Monday first) the windows disable.
fn disabled_minutes(windows: &[DisableWindow]) -> Vec<[bool; 1440]> {
    // 2024-01-01 is a Monday; any week would do.
    let monday = NaiveDate::from_ymd_opt(2024, 1, 1).expect("valid date");
    (0..7)
        .map(|day| {
            let date = monday + chrono::Days::new(day);
            let mut minutes = [false; 1440];
            for (m, slot) in minutes.iter_mut().enumerate() {
                let t = date
                    .and_hms_opt(m as u32 / 60, m as u32 % 60, 0)
                    .expect("valid time");
                *slot = windows.iter().any(|w| w.covers(t));
            }
            minutes
        })
        .collect()
}

/// Why a schedule can never start a run, if it cannot.
///
/// Minute and hour schedules step in absolute time, so their local minutes
/// shift with offsets: only whole disabled days are certain. Day, week and
/// month schedules always run at the start's time of day.
fn never_runs(
    start_at: NaiveDateTime,
    unit: EveryUnit,
    days: Option<&[Weekday]>,
    windows: &[DisableWindow],
) -> Option<String> {
    if windows.is_empty() {
        return None;
    }
    let off = disabled_minutes(windows);
    let full = |w: Weekday| off[w.num_days_from_monday() as usize].iter().all(|b| *b);
    let all_week = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];
    if all_week.iter().all(|w| full(*w)) {
        return Some("its disable windows together cover the whole week".into());
    }
    let allowed: Vec<Weekday> = match unit {
        EveryUnit::Weeks => vec![start_at.weekday()],
        EveryUnit::Months => all_week.to_vec(),
        EveryUnit::Minutes | EveryUnit::Hours | EveryUnit::Days => {
            days.map_or_else(|| all_week.to_vec(), <[Weekday]>::to_vec)
        }
    };
    let names = || {
        allowed
            .iter()
            .map(|w| WEEKDAYS[w.num_days_from_monday() as usize])
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !allowed.is_empty() && allowed.iter().all(|w| full(*w)) {
        return Some(format!(
            "its disable windows cover all of every day it may run on ({})",
            names()
        ));
    }
    if matches!(unit, EveryUnit::Days | EveryUnit::Weeks | EveryUnit::Months) {
        let minute = (start_at.hour() * 60 + start_at.minute()) as usize;
        if !allowed.is_empty()
            && allowed
                .iter()
                .all(|w| off[w.num_days_from_monday() as usize][minute])
        {
            return Some(format!(
                "it runs at {} and its disable windows cover that time on every day it may run on ({})",
                start_at.format("%H:%M"),
                names()
            ));
        }
    }
    None
}

/// `schedules = [schedule.NAME, ...]` in a policy: the names, checked against
/// the declared schedules. Problems are reported; the good names are kept.
pub(super) fn policy_schedules(
    d: &mut Decoder,
    scope: &Scope<'_>,
    declared: &BTreeSet<String>,
) -> Vec<String> {
    let Some(attr) = d.get(scope, "schedules", false) else {
        return Vec::new();
    };
    let list = match d.value(scope, &attr.value) {
        Some(Value::List(l)) => l,
        Some(v) => {
            let hint = match &v {
                Value::Ref(p) => format!("; write [{}]", p.join(".")),
                _ => String::new(),
            };
            d.error(
                scope.src,
                start(&attr.value),
                "Incorrect type",
                format!(
                    "\"schedules\" in {} must be a list of schedule references, as in [schedule.nightly], not {}{hint}",
                    scope.what,
                    v.describe()
                ),
            );
            return Vec::new();
        }
        None => return Vec::new(),
    };
    let mut names: Vec<String> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for e in list.iter() {
        let at = start(e);
        let name = match d.value(scope, e) {
            None => continue,
            Some(Value::Ref(path)) if path.len() == 2 && path[0] == "schedule" => path[1].clone(),
            Some(Value::Str(s)) => {
                let example = if validate::is_valid_name(&s) {
                    s.clone()
                } else {
                    "NAME".into()
                };
                d.error(
                    scope.src,
                    at,
                    "Invalid reference",
                    format!(
                        "the elements of \"schedules\" in {} must be references to schedule blocks, not strings: write schedule.{example} without quotes",
                        scope.what
                    ),
                );
                continue;
            }
            Some(v) => {
                let got = match &v {
                    Value::Ref(p) => p.join("."),
                    other => other.describe(),
                };
                d.error(
                    scope.src,
                    at,
                    "Invalid reference",
                    format!(
                        "the elements of \"schedules\" in {} must refer to schedules, as in schedule.nightly; {got} is not a schedule reference",
                        scope.what
                    ),
                );
                continue;
            }
        };
        if !declared.contains(&name) {
            if d.complete {
                let known = match validate::suggest(&name, declared.iter().map(String::as_str)) {
                    Some(s) => format!("; did you mean schedule.{s}?"),
                    None if declared.is_empty() => String::new(),
                    None => format!(
                        "; declared schedules: {}",
                        declared.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                };
                d.error(
                    scope.src,
                    at,
                    "Reference to undeclared schedule",
                    format!(
                        "{} refers to schedule.{name}, but no schedule {name:?} is declared{known}",
                        scope.what
                    ),
                );
            }
            continue;
        }
        if seen.insert(name.clone(), at).is_some() {
            d.error(
                scope.src,
                at,
                "Duplicate value",
                format!(
                    "schedule.{name} is listed more than once in \"schedules\" of {}",
                    scope.what
                ),
            );
            continue;
        }
        names.push(name);
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveTime {
        parse_time(s).unwrap()
    }

    fn at(s: &str) -> NaiveDateTime {
        parse_local(s).unwrap()
    }

    fn window(day: Option<Weekday>, from: &str, to: &str) -> DisableWindow {
        DisableWindow {
            day,
            from: t(from),
            to: t(to),
        }
    }

    #[test]
    fn schedule_intervals_parse_whole_numbers_of_one_unit() {
        for (text, count, unit) in [
            ("1m", 1, EveryUnit::Minutes),
            ("90m", 90, EveryUnit::Minutes),
            ("6h", 6, EveryUnit::Hours),
            ("1d", 1, EveryUnit::Days),
            ("2w", 2, EveryUnit::Weeks),
            ("3mo", 3, EveryUnit::Months),
            ("100000d", 100_000, EveryUnit::Days),
        ] {
            let e: Every = text.parse().unwrap();
            assert_eq!((e.count, e.unit), (count, unit), "{text}");
            assert_eq!(e.to_string(), text);
        }
        for bad in [
            "", "h", "0h", "1.5h", "-1h", "1 h", "1H", "1y", "1month", "100001d", "01x",
        ] {
            assert!(bad.parse::<Every>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn schedule_local_times_have_one_form() {
        assert!(parse_local("2026-01-05T00:17").is_some());
        for bad in [
            "2026-01-05 00:17",
            "2026-1-5T0:17",
            "2026-01-05T00:17:00",
            "2026-02-30T00:00",
            "2026-01-05T24:00",
        ] {
            assert!(parse_local(bad).is_none(), "{bad:?}");
        }
        assert!(parse_time("23:59").is_some());
        for bad in ["24:00", "9:00", "09:60", "0900"] {
            assert!(parse_time(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn schedule_windows_cover_from_inclusive_to_exclusive_across_midnight() {
        // 2026-11-23 is a Monday.
        let w = window(Some(Weekday::Mon), "17:00", "08:00");
        assert!(!w.covers(at("2026-11-23T16:59")));
        assert!(w.covers(at("2026-11-23T17:00")));
        assert!(w.covers(at("2026-11-24T07:59")));
        assert!(!w.covers(at("2026-11-24T08:00")));
        assert!(
            !w.covers(at("2026-11-24T17:00")),
            "Tuesday evening is not Monday's"
        );
        assert!(
            !w.covers(at("2026-11-23T07:00")),
            "Monday morning belongs to Sunday's window"
        );
        assert_eq!(
            w.end_after(at("2026-11-23T20:00")),
            Some(at("2026-11-24T08:00"))
        );
        assert_eq!(
            w.end_after(at("2026-11-24T01:00")),
            Some(at("2026-11-24T08:00"))
        );
        assert_eq!(w.end_after(at("2026-11-24T09:00")), None);

        let day = window(None, "13:00", "15:00");
        assert!(day.covers(at("2026-11-26T13:00")) && !day.covers(at("2026-11-26T15:00")));

        let whole = window(Some(Weekday::Sat), "00:00", "00:00");
        assert!(whole.covers(at("2026-11-28T00:00")) && whole.covers(at("2026-11-28T23:59")));
        assert!(!whole.covers(at("2026-11-29T00:00")));
    }

    #[test]
    fn schedule_never_runs_only_when_no_time_is_left() {
        let start = at("2026-01-05T10:00"); // a Monday
        let all_night = [window(None, "18:00", "06:00")];
        assert_eq!(never_runs(start, EveryUnit::Hours, None, &all_night), None);
        let everything = [
            window(None, "06:00", "18:00"),
            window(None, "18:00", "06:00"),
        ];
        assert!(never_runs(start, EveryUnit::Hours, None, &everything)
            .unwrap()
            .contains("whole week"));
        let mondays = [window(Some(Weekday::Mon), "00:00", "00:00")];
        let only_monday = [Weekday::Mon];
        assert!(never_runs(start, EveryUnit::Minutes, Some(&only_monday), &mondays).is_some());
        assert_eq!(never_runs(start, EveryUnit::Minutes, None, &mondays), None);
        // A weekly Monday run is blocked by Monday's window; a monthly one is not.
        assert!(never_runs(start, EveryUnit::Weeks, None, &mondays).is_some());
        assert_eq!(never_runs(start, EveryUnit::Months, None, &mondays), None);
        // Daily at 10:00 inside a daily 09:00-11:00 window: never.
        let mornings = [window(None, "09:00", "11:00")];
        assert!(never_runs(start, EveryUnit::Days, None, &mornings).is_some());
        // Hourly is not: it runs at other times of the day.
        assert_eq!(never_runs(start, EveryUnit::Hours, None, &mornings), None);
    }
}
