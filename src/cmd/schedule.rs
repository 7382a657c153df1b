//! `lifeboat schedule times NAME|policy.NAME`: the planned run times of a
//! schedule, or of all the schedules of a policy merged, in the schedule's
//! zone and in UTC.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{bail, Result};
use chrono::{DateTime, Duration, Utc};
use clap::Subcommand;
use lifeboat_engine::runmode::schedule;
use lifeboat_schema::{Config, Schedule};

use crate::output::stamp;
use crate::workspace::Workspace;

#[derive(Subcommand)]
pub enum ScheduleCommand {
    /// List the planned run times of a schedule, or of every schedule of a policy.
    Times {
        /// A schedule's name (or schedule.NAME), or policy.NAME for all of a policy's schedules.
        target: String,
        /// The first instant to list, RFC 3339 (default: now).
        #[arg(long)]
        from: Option<DateTime<Utc>>,
        /// How far ahead of --from to list: Ns, Nm, Nh, Nd or Nw.
        #[arg(long, default_value = "7d")]
        next: String,
        /// Print a JSON array of {schedule, schedules, time_zone, local, utc}.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ws: &Workspace, command: &ScheduleCommand) -> Result<u8> {
    let (config, now) = (&ws.config, ws.now);
    match command {
        ScheduleCommand::Times {
            target,
            from,
            next,
            json,
        } => {
            let from = from.unwrap_or(now);
            let Some(until) = from.checked_add_signed(window(next)?) else {
                bail!("--from plus --next is past the last date Lifeboat can represent");
            };
            let schedules = resolve_target(config, target)?;
            let runs = merged(&schedules, from, until);
            let mut out = std::io::stdout().lock();
            if *json {
                let rows: Vec<serde_json::Value> = runs
                    .iter()
                    .map(|(t, by)| {
                        let zone = by[0].time_zone;
                        serde_json::json!({
                            "schedule": by[0].name,
                            "schedules": by.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
                            "time_zone": zone.name(),
                            "local": t.with_timezone(&zone).to_rfc3339(),
                            "utc": stamp(*t),
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
                return Ok(0);
            }
            if runs.is_empty() {
                eprintln!(
                    "No runs of {target} from {} until {}.",
                    stamp(from),
                    stamp(until)
                );
                return Ok(0);
            }
            let lines: Vec<(String, String, String)> = runs
                .iter()
                .map(|(t, by)| {
                    let local = t.with_timezone(&by[0].time_zone);
                    (
                        local.format("%Y-%m-%d %H:%M %Z (%:z)").to_string(),
                        stamp(*t),
                        by.iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    )
                })
                .collect();
            let width = lines.iter().map(|l| l.0.len()).max().unwrap_or(0);
            for (local, utc, names) in lines {
                writeln!(out, "{local:<width$}   {utc}   {names}")?;
            }
            Ok(0)
        }
    }
}

/// `--next`: a duration longer than zero.
fn window(text: &str) -> Result<Duration> {
    let length =
        lifeboat_schema::parse_duration(text).map_err(|e| anyhow::anyhow!("--next: {e}"))?;
    if length.is_zero() {
        bail!("--next must be longer than zero, not {text:?}");
    }
    Duration::from_std(length).map_err(|_| anyhow::anyhow!("--next: {text:?} is too long"))
}

/// The schedules `NAME`, `schedule.NAME` or `policy.NAME` stands for.
fn resolve_target<'a>(config: &'a Config, target: &str) -> Result<Vec<&'a Schedule>> {
    let known = |names: Vec<&String>| {
        if names.is_empty() {
            "none are declared".to_string()
        } else {
            format!(
                "declared: {}",
                names
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    };
    if let Some(name) = target.strip_prefix("policy.") {
        let Some(policy) = config.policies.get(name) else {
            bail!(
                "no policy {name:?} in the configuration ({})",
                known(config.policies.keys().collect())
            );
        };
        if policy.schedules.is_empty() {
            bail!("policy {name:?} has no schedules: add schedules = [schedule.NAME] to it");
        }
        // The schema checked every reference.
        return Ok(policy
            .schedules
            .iter()
            .filter_map(|s| config.schedules.get(s))
            .collect());
    }
    let name = target.strip_prefix("schedule.").unwrap_or(target);
    match config.schedules.get(name) {
        Some(s) => Ok(vec![s]),
        None => bail!(
            "no schedule {name:?} in the configuration ({}); for a policy write policy.NAME",
            known(config.schedules.keys().collect())
        ),
    }
}

/// At most this many runs are listed: a long --next on a minute schedule
/// would otherwise print millions of lines.
const MAX_RUNS: usize = 10_000;

/// The runs of the schedules in `[from, until)`, the first [`MAX_RUNS`] of
/// them; an instant at which several schedules run appears once, naming
/// them in the policy's order.
fn merged<'a>(
    schedules: &[&'a Schedule],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> BTreeMap<DateTime<Utc>, Vec<&'a Schedule>> {
    let mut runs: BTreeMap<DateTime<Utc>, Vec<&Schedule>> = BTreeMap::new();
    let mut cut = false;
    for s in schedules {
        let mut cursor = from - Duration::nanoseconds(1);
        let mut listed = 0;
        while let Some(t) = schedule::next_after(s, cursor).filter(|t| *t < until) {
            if listed == MAX_RUNS {
                cut = true;
                break;
            }
            runs.entry(t).or_default().push(s);
            cursor = t;
            listed += 1;
        }
    }
    if let Some(&first_dropped) = runs.keys().nth(MAX_RUNS) {
        runs.split_off(&first_dropped);
        cut = true;
    }
    if cut {
        eprintln!("Listing the first {MAX_RUNS} runs only; use a shorter --next to see the rest.");
    }
    runs
}
