//! `resource_control_group "NAME" { .. }`: instances and databases Lifeboat
//! stops and starts on a weekly timetable, to save what they cost while
//! nobody uses them.

use chrono::{Datelike, NaiveDateTime, NaiveTime, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::{AutoRemove, TagSelector};
use crate::diag::Location;

/// `timeout` when unset: how long an operation waits for its targets to
/// reach the state asked for before it tries once more.
pub const DEFAULT_CONTROL_TIMEOUT_SECS: u64 = 30 * 60;
/// The shortest time between two operations of one group: a stop or start
/// takes minutes, and an instance billed per hour gains nothing from less.
pub const MIN_CONTROL_GAP_MINUTES: i64 = 60;
/// Minutes in a week: window edges are positions on this circle.
pub const WEEK_MINUTES: i64 = 7 * 24 * 60;

/// One group, checked: windows apart and not overlapping, targets named in
/// no other group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceControlGroup {
    pub name: String,
    /// The account's name.
    pub account: String,
    /// `template = true`: the group never acts itself; an instance tagged
    /// `lifeboat:resource-control = NAME:THIS` makes a group `NAME` from
    /// it (its windows, mode, zone, hibernation, timeout and excludes).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub template: bool,
    /// Set by Lifeboat, never by the configuration: the template a group
    /// was made from by its members' tags (such a group takes only the
    /// instances whose tag names it with this template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_template: Option<String>,
    pub mode: ControlMode,
    pub time_zone: Tz,
    /// Hibernate the instances configured for hibernation instead of
    /// stopping them (the others are stopped).
    pub hibernate: bool,
    /// How long an operation waits for each target's state (seconds).
    pub timeout_secs: u64,
    /// `region`: where the listed targets are, and where `select` looks;
    /// `None`: the account's only region for the listed targets, and every
    /// region of the account for `select`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// EC2 instance ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<String>,
    /// RDS DB instance identifiers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rds: Vec<String>,
    /// Aurora DB cluster identifiers (stopped and started as clusters).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aurora: Vec<String>,
    /// `select { tag  value }`: instances found by tag at each operation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub selectors: Vec<TagSelector>,
    /// `exclude { tag  value }`: instances never acted on, whether listed
    /// or selected (a `lifeboat:resource-control = no-resource-control`
    /// tag does the same from the instance's side).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<TagSelector>,
    pub windows: Vec<ControlWindow>,
    /// What happens to a listed target that no longer exists: `no` counts
    /// it as a failed operation, `yes` leaves it out, `alert` leaves it out
    /// and opens an alert.
    #[serde(default)]
    pub auto_remove_targets: AutoRemove,
    #[serde(skip)]
    pub location: Location,
}

/// `mode`: stop and start, or only stop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlMode {
    #[default]
    OnOff,
    /// Stops at each `off`; starting again is left to people.
    OffOnly,
}

/// `window { off = "fri 20:00"  on = "mon 07:00" }`: the targets are off
/// from `off` until `on` (wall-clock times in the group's zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlWindow {
    pub off: WeekTime,
    /// `None` in `off_only` mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<WeekTime>,
}

/// A weekday and a time of day: `"mon 07:00"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WeekTime {
    pub day: Weekday,
    pub time: NaiveTime,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl WeekTime {
    /// Minutes since Monday 00:00.
    pub fn minute_of_week(self) -> i64 {
        use chrono::Timelike;
        i64::from(self.day.num_days_from_monday()) * 1440
            + i64::from(self.time.hour()) * 60
            + i64::from(self.time.minute())
    }

    /// The same weekday and time of the week that `local` falls in.
    pub fn in_week_of(self, local: NaiveDateTime) -> NaiveDateTime {
        let monday =
            local.date() - chrono::Days::new(u64::from(local.weekday().num_days_from_monday()));
        (monday + chrono::Days::new(u64::from(self.day.num_days_from_monday()))).and_time(self.time)
    }
}

impl std::str::FromStr for WeekTime {
    type Err = String;

    /// `DAY HH:MM`, DAY one of mon, tue, wed, thu, fri, sat, sun.
    fn from_str(s: &str) -> Result<WeekTime, String> {
        let bad = || {
            format!("{s:?} is not a weekday and time; write one of mon, tue, wed, thu, fri, sat, sun and a time as HH:MM, as in \"mon 07:00\"")
        };
        let (day, time) = s.split_once(' ').ok_or_else(bad)?;
        let day = DAYS
            .iter()
            .position(|d| *d == day)
            .and_then(|i| Weekday::try_from(i as u8).ok())
            .ok_or_else(bad)?;
        if time.len() != 5 {
            return Err(bad());
        }
        let time = NaiveTime::parse_from_str(time, "%H:%M").map_err(|_| bad())?;
        Ok(WeekTime { day, time })
    }
}

impl TryFrom<String> for WeekTime {
    type Error = String;
    fn try_from(s: String) -> Result<WeekTime, String> {
        s.parse()
    }
}

impl From<WeekTime> for String {
    fn from(w: WeekTime) -> String {
        w.to_string()
    }
}

impl std::fmt::Display for WeekTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let day = DAYS[self.day.num_days_from_monday() as usize];
        write!(f, "{day} {}", self.time.format("%H:%M"))
    }
}

impl ControlWindow {
    /// The minutes of the week the window covers, as `[off, on)` on the
    /// week's circle; `None` without an `on`.
    pub fn span(&self) -> Option<(i64, i64)> {
        let off = self.off.minute_of_week();
        let mut on = self.on?.minute_of_week();
        if on <= off {
            on += WEEK_MINUTES;
        }
        Some((off, on))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn week_times_parse_and_print_alike() {
        let w: WeekTime = "fri 20:00".parse().unwrap();
        assert_eq!(w.day, Weekday::Fri);
        assert_eq!(w.to_string(), "fri 20:00");
        assert_eq!(w.minute_of_week(), 4 * 1440 + 20 * 60);
        for bad in [
            "",
            "fri",
            "friday 20:00",
            "fri 8:00",
            "fri 24:00",
            "fri  20:00",
        ] {
            assert!(bad.parse::<WeekTime>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_window_over_the_weekend_wraps_the_week() {
        let w = ControlWindow {
            off: "fri 20:00".parse().unwrap(),
            on: Some("mon 07:00".parse().unwrap()),
        };
        let (off, on) = w.span().unwrap();
        assert_eq!(on - off, (2 * 24 + 11) * 60);
    }
}
