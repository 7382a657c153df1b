//! When a group acts: its window edges as instants, pure.
//!
//! A window's `off` and `on` are wall-clock times of the week in the
//! group's zone, so an edge at 07:00 stays at 07:00 across daylight-saving
//! changes; a time the change skips means the first instant after it, a
//! time it repeats the first of the two (`runmode::schedule::resolve`, the
//! schedules' rule).

use chrono::{DateTime, Datelike, Days, Duration, NaiveDateTime, Utc};
use lifeboat_schema::{ControlMode, ResourceControlGroup, WeekTime};

use crate::runmode::schedule::resolve;

/// What an edge does to the group's targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Stop (or hibernate) them.
    Off,
    /// Start them.
    On,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Off => "off",
            Action::On => "on",
        }
    }
}

/// One edge of a window, as an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub at: DateTime<Utc>,
    pub action: Action,
}

/// The edges of the week, by time of week: each window's `off`, and its
/// `on` in `on_off` mode.
fn week_edges(g: &ResourceControlGroup) -> Vec<(WeekTime, Action)> {
    let mut out = Vec::new();
    for w in &g.windows {
        out.push((w.off, Action::Off));
        if g.mode == ControlMode::OnOff {
            out.extend(w.on.map(|on| (on, Action::On)));
        }
    }
    out
}

/// The local Monday 00:00 of the week holding `local`.
fn monday_of(local: NaiveDateTime) -> NaiveDateTime {
    let days = u64::from(local.weekday().num_days_from_monday());
    (local.date() - Days::new(days))
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
}

/// Every edge in `(from, to]`, in time order. Spans of a few weeks at most
/// are asked for; the search walks the local weeks that cover them.
pub fn edges_between(
    g: &ResourceControlGroup,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Edge> {
    let local = |t: DateTime<Utc>| t.with_timezone(&g.time_zone).naive_local();
    let edges = week_edges(g);
    // One week before and after: an edge's local time and its instant may
    // sit on either side of a week boundary.
    let mut week = monday_of(local(from)) - Duration::weeks(1);
    let last = monday_of(local(to)) + Duration::weeks(1);
    let mut found = Vec::new();
    while week <= last {
        for (t, action) in &edges {
            let wall = t.in_week_of(week);
            let Some(at) = resolve(g.time_zone, wall) else {
                continue;
            };
            if at > from && at <= to {
                found.push((at, wall, *action));
            }
        }
        week += Duration::weeks(1);
    }
    // Two edges a daylight-saving gap resolves to one instant (`sun 02:00`
    // off and `sun 03:00` on, the day 02:00 to 03:00 is skipped): the one
    // written later on the wall clock wins, as the windows say the targets
    // are in its state once both have passed.
    found.sort_by_key(|(at, wall, _)| (*at, *wall));
    let mut out: Vec<Edge> = Vec::new();
    for (at, _, action) in found {
        match out.last_mut() {
            Some(prev) if prev.at == at => prev.action = action,
            _ => out.push(Edge { at, action }),
        }
    }
    out
}

/// The latest edge at or before `t`: what the windows say the targets
/// should be now. `None` for a group without windows.
pub fn latest_edge(g: &ResourceControlGroup, t: DateTime<Utc>) -> Option<Edge> {
    edges_between(g, t - Duration::days(8), t).pop()
}

/// The first edge after `t`.
pub fn next_edge(g: &ResourceControlGroup, t: DateTime<Utc>) -> Option<Edge> {
    edges_between(g, t, t + Duration::days(8))
        .into_iter()
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat_schema::{ControlWindow, Tz};

    fn group(tz: Tz, windows: &[(&str, Option<&str>)]) -> ResourceControlGroup {
        ResourceControlGroup {
            template: false,
            from_template: None,
            name: "nightly".into(),
            account: "dev".into(),
            mode: if windows.iter().all(|w| w.1.is_none()) {
                ControlMode::OffOnly
            } else {
                ControlMode::OnOff
            },
            time_zone: tz,
            hibernate: false,
            timeout_secs: 60,
            region: None,
            instances: vec!["i-1".into()],
            rds: vec![],
            aurora: vec![],
            selectors: vec![],
            excluded: vec![],
            windows: windows
                .iter()
                .map(|(off, on)| ControlWindow {
                    off: off.parse().unwrap(),
                    on: on.map(|o| o.parse().unwrap()),
                })
                .collect(),
            auto_remove_targets: Default::default(),
            location: Default::default(),
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_latest_edge_says_what_the_targets_should_be() {
        let g = group(
            Tz::UTC,
            &[
                ("mon 20:00", Some("tue 07:00")),
                ("fri 20:00", Some("mon 07:00")),
            ],
        );
        // 2026-11-30 is a Monday.
        let at = |s| latest_edge(&g, t(s)).unwrap();
        assert_eq!(at("2026-11-30T12:00:00Z").action, Action::On);
        assert_eq!(at("2026-11-30T12:00:00Z").at, t("2026-11-30T07:00:00Z"));
        assert_eq!(at("2026-11-30T20:00:00Z").action, Action::Off);
        assert_eq!(at("2026-12-05T12:00:00Z").at, t("2026-12-04T20:00:00Z"));
        let next = next_edge(&g, t("2026-12-05T12:00:00Z")).unwrap();
        assert_eq!(
            (next.at, next.action),
            (t("2026-12-07T07:00:00Z"), Action::On)
        );
    }

    #[test]
    fn edges_keep_their_wall_clock_time_across_daylight_saving() {
        let g = group(Tz::Europe__Berlin, &[("sat 20:00", Some("sun 07:00"))]);
        // Summer time ends on Sunday 2026-10-25: 07:00 is UTC+1 then, and
        // Saturday's 20:00 is still UTC+2.
        let edges = edges_between(&g, t("2026-10-24T00:00:00Z"), t("2026-10-26T00:00:00Z"));
        let at: Vec<_> = edges.iter().map(|e| (e.at, e.action)).collect();
        assert_eq!(
            at,
            vec![
                (t("2026-10-24T18:00:00Z"), Action::Off),
                (t("2026-10-25T06:00:00Z"), Action::On),
            ]
        );
        // Summer time starts on Sunday 2026-03-29 at 02:00: an edge at
        // 02:30 that day is at 03:00 local, the first instant after the gap.
        let g = group(Tz::Europe__Berlin, &[("sun 02:30", Some("sun 10:00"))]);
        let e = next_edge(&g, t("2026-03-28T12:00:00Z")).unwrap();
        assert_eq!(e.at, t("2026-03-29T01:00:00Z"));
    }

    #[test]
    fn edges_a_daylight_saving_gap_joins_keep_the_later_ones_effect() {
        // Summer time starts on Sunday 2026-03-29 at 02:00 in Berlin: both
        // edges resolve to 03:00 local (01:00Z); the windows say on after
        // both, so the edge there is an "on".
        let g = group(Tz::Europe__Berlin, &[("sun 02:00", Some("sun 03:00"))]);
        let edges = edges_between(&g, t("2026-03-28T00:00:00Z"), t("2026-03-30T00:00:00Z"));
        let at: Vec<_> = edges.iter().map(|e| (e.at, e.action)).collect();
        assert_eq!(at, vec![(t("2026-03-29T01:00:00Z"), Action::On)]);
        assert_eq!(
            latest_edge(&g, t("2026-03-29T12:00:00Z")).unwrap().action,
            Action::On
        );
        // Written the other way round (on at 02:00, off at 03:00), off wins.
        let g = group(Tz::Europe__Berlin, &[("sun 03:00", Some("sun 02:00"))]);
        let edges = edges_between(&g, t("2026-03-28T00:00:00Z"), t("2026-03-30T00:00:00Z"));
        let at: Vec<_> = edges.iter().map(|e| (e.at, e.action)).collect();
        assert_eq!(at, vec![(t("2026-03-29T01:00:00Z"), Action::Off)]);
        // Summer time ends on Sunday 2026-10-25 (02:00 to 03:00 twice): a
        // repeated time is its first instant, so both edges stay, in order.
        let g = group(Tz::Europe__Berlin, &[("sun 02:00", Some("sun 02:30"))]);
        let edges = edges_between(&g, t("2026-10-24T00:00:00Z"), t("2026-10-26T00:00:00Z"));
        let at: Vec<_> = edges.iter().map(|e| (e.at, e.action)).collect();
        assert_eq!(
            at,
            vec![
                (t("2026-10-25T00:00:00Z"), Action::Off),
                (t("2026-10-25T00:30:00Z"), Action::On),
            ]
        );
    }

    #[test]
    fn off_only_groups_have_no_on_edges() {
        let g = group(Tz::UTC, &[("sat 01:00", None)]);
        let edges = edges_between(&g, t("2026-11-01T00:00:00Z"), t("2026-11-30T00:00:00Z"));
        assert_eq!(edges.len(), 4);
        assert!(edges.iter().all(|e| e.action == Action::Off));
    }
}
