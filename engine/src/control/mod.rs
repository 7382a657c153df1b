//! Resource control: the `resource_control_group` blocks' instances and
//! databases stopped (or hibernated) and started on a weekly timetable.
//!
//! - `timetable.rs`: the window edges as instants, pure (time zones, DST).
//! - `operate.rs`: one operation (find the targets, call, verify within
//!   the timeout, ask once more, say which failed).
//! - here: an operation recorded (the operations log, alerts), and the
//!   status of each target (`lifeboat rc status`).
//!
//! What is due, and when, is the run mode's agenda's to say
//! (`runmode::agenda`: [`Agenda::controls`](crate::runmode::agenda::Agenda::controls)).

pub mod operate;
pub(crate) mod runner;
pub mod tagged;
pub mod timetable;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use lifeboat_schema::{Config, ControlMode};
use serde::{Deserialize, Serialize};

use crate::addr::Address;

use crate::cloud::power::{PowerKind, PowerState};
use crate::cloud::Cloud;
use crate::runmode::notify;
use crate::state::{ControlWrite, SharedStore, StateError};
pub use operate::{Now, Outcome, Request};
pub use timetable::Action;

/// How often, while a group is off, its databases are looked at: AWS
/// starts a database that was stopped for seven days, and the look stops
/// it again.
pub const DATABASE_LOOK: Duration = Duration::hours(1);

/// Time between two looks while an operation waits for its targets.
pub const POLL: std::time::Duration = std::time::Duration::from_secs(5);

/// The key under which the state remembers a group's last operation run
/// by the runner, beside the policies' last slots.
pub fn key(group: &str) -> String {
    format!("resource_control_group.{group}")
}

/// The key of a group's last look at its databases.
pub fn look_key(group: &str) -> String {
    format!("resource_control_group.{group}.look")
}

/// The key of a group's last operation by hand (`lifeboat rc off|on`):
/// until the next edge, the runner neither repeats the latest edge nor
/// looks at the group's databases (someone started them on purpose).
pub fn hand_key(group: &str) -> String {
    format!("resource_control_group.{group}.by_hand")
}

/// Performs an operation and records it, in one transaction: its rows in
/// the operations log, an alert (published when notifications are
/// configured) when a target failed or a clean operation's closing of the
/// group's open one, and `marks` (left out when the operation was
/// interrupted, so that it is done again).
pub async fn perform(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    config: &Config,
    group: &str,
    req: &Request,
    marks: &[(String, DateTime<Utc>)],
    now: Now<'_>,
) -> Result<Outcome, StateError> {
    let stopped = store.lock().expect("store").control_stopped(group)?;
    let outcome = operate::operate(cloud, config, group, req, &stopped, now).await;
    let owner = key(group);
    let opened = store.lock().expect("store").write_control(&ControlWrite {
        rows: &outcome.rows,
        look: req.databases_only,
        owner: &owner,
        alert: outcome.alert.as_deref(),
        close: !req.databases_only && !outcome.interrupted,
        at: now(),
        marks: if outcome.interrupted { &[] } else { marks },
    })?;
    if let (Some(n), Some(a)) = (&config.notifications, opened) {
        let text = format!(
            "ALERT OPENED\n{owner}\nalert: {}\nopened: {}\nreason: {}\n",
            a.id,
            a.opened.to_rfc3339(),
            a.message
        );
        let subject = format!("Lifeboat alert opened: {owner}");
        // The alert is in the state either way; a failed publish is said
        // by the runner's next summary, not a failed operation.
        let _ = notify::publish(cloud, store, n, &subject, &text).await;
    }
    Ok(outcome)
}

/// Why an operation of a template's groups could not run.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    State(#[from] StateError),
    /// The look at the tags failed: no group made from the template is
    /// known, so none acted (the edge is done again at the next tick).
    #[error(transparent)]
    Cloud(#[from] crate::cloud::CloudError),
}

/// The operation of a template's edge: the groups made from `template`
/// now (one look at the tags of its account, [`tagged::look`]), each
/// performed as a group of its own (its rows, alert and "on" after its
/// "off" under its own name), then `marks` written under the template.
/// The tags' problems are said once, in an outcome of the template's
/// with no rows.
pub async fn perform_made(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    config: &Config,
    template: &str,
    req: &Request,
    marks: &[(String, DateTime<Utc>)],
    now: Now<'_>,
) -> Result<Vec<Outcome>, ControlError> {
    let account = &config.resource_control_groups[template].account;
    let look = tagged::look(cloud, config, Some(account)).await?;
    let expanded = look.expand(config);
    let mut out = Vec::new();
    let mut interrupted = false;
    for (name, g) in &look.made {
        if g.from_template.as_deref() != Some(template)
            || config.resource_control_groups.contains_key(name)
        {
            continue;
        }
        let mut o = perform(cloud, store, &expanded, name, req, &[], now).await?;
        o.problems.clear();
        interrupted |= o.interrupted;
        out.push(o);
    }
    if !look.problems.is_empty() {
        out.push(Outcome {
            group: template.to_string(),
            action: req.action,
            rows: Vec::new(),
            alert: None,
            interrupted: false,
            problems: look.problems,
        });
    }
    if !interrupted {
        store.lock().expect("store").write_control(&ControlWrite {
            rows: &[],
            look: req.databases_only,
            owner: &key(template),
            alert: None,
            close: false,
            at: now(),
            marks,
        })?;
    }
    Ok(out)
}

/// The daily summary's resource-control lines: per group (configured,
/// made from a template by a tag now, or named in the log of the last
/// day) its operations since `now` less a day, the targets that failed in
/// them, and its targets out of step with its windows now (one look at
/// AWS; when it fails, a line says so).
pub async fn summary_lines(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Vec<String>, StateError> {
    let counts = store
        .lock()
        .expect("store")
        .control_counts(now - Duration::days(1))?;
    let mut groups: std::collections::BTreeSet<String> = counts.keys().cloned().collect();
    groups.extend(
        config
            .resource_control_groups
            .values()
            .filter(|g| !g.template)
            .map(|g| g.name.clone()),
    );
    let mut apart = BTreeMap::new();
    let looked = match tagged::look(cloud, config, None).await {
        Ok(look) => {
            let config = look.expand(config);
            groups.extend(look.made.keys().cloned());
            status(cloud, &config, None, now).await
        }
        Err(e) => Err(e),
    };
    let mut out = Vec::new();
    match &looked {
        Ok(rows) => {
            for r in rows.iter().filter(|r| r.differs) {
                *apart.entry(r.group.clone()).or_insert(0usize) += 1;
            }
        }
        Err(e) => out.push(format!("targets out of step not looked at: {e}")),
    }
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    for g in groups {
        let (ops, failed) = counts.get(&g).copied().unwrap_or((0, 0));
        let mut line = format!(
            "group {g}: {}, {}",
            plural(ops, "operation", "operations"),
            plural(failed, "failed target", "failed targets")
        );
        if looked.is_ok() {
            let n = apart.get(&g).copied().unwrap_or(0);
            line.push_str(&format!(
                ", {}",
                plural(n, "target out of step", "targets out of step")
            ));
        }
        out.push(line);
    }
    Ok(out)
}

/// A target whose power state disagrees with its group's windows, as the
/// plan shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerDrift {
    pub address: Address,
    /// As AWS reports it.
    pub actual: String,
    /// What the windows say now.
    pub desired: String,
    /// The next edge: `off at …` or `on at …`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The targets of every group (those made from templates too) whose
/// power state disagrees with the windows now, and the problems of the
/// resource-control tags (list calls only, as everything plan reads).
pub async fn drift(
    cloud: &Arc<dyn Cloud>,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<(Vec<PowerDrift>, Vec<String>), crate::cloud::CloudError> {
    let look = tagged::look(cloud, config, None).await?;
    let config = look.expand(config);
    let power = status(cloud, &config, None, now)
        .await?
        .into_iter()
        .filter(|s| s.differs)
        .map(|s| PowerDrift {
            address: Address::ControlTarget {
                group: s.group,
                id: match s.kind {
                    Some(PowerKind::Instance) | None => s.id,
                    Some(k) => format!("{}:{}", k.as_str(), s.id),
                },
            },
            actual: s.actual,
            desired: s.desired,
            next: s.next,
        })
        .collect();
    Ok((power, look.problems))
}

/// One target's line of `lifeboat rc status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetStatus {
    pub group: String,
    pub region: String,
    /// `instance i-…`, `rds NAME`, `aurora NAME`.
    pub target: String,
    #[serde(skip)]
    pub kind: Option<PowerKind>,
    #[serde(skip)]
    pub id: String,
    /// What the windows say now: `running` or `stopped`; `-` in `off_only`
    /// mode between edges (the group only stops).
    pub desired: String,
    /// As AWS reports it (`running`, `stopping`, `stopped`, `available`,
    /// `not found`, ...).
    pub actual: String,
    /// Whether actual and desired disagree.
    pub differs: bool,
    /// The next edge: `off at …` or `on at …`.
    pub next: Option<String>,
}

/// Every target of every group (or of `only`), as AWS reports it now,
/// with what the windows want and the next operation.
pub async fn status(
    cloud: &Arc<dyn Cloud>,
    config: &Config,
    only: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<TargetStatus>, crate::cloud::CloudError> {
    let mut out = Vec::new();
    for (name, g) in &config.resource_control_groups {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let Some(account) = config.accounts.get(&g.account) else {
            continue;
        };
        let latest = timetable::latest_edge(g, now);
        // An off_only group wants nothing between its edges: it only stops.
        let desired = match (g.mode, latest.map(|e| e.action)) {
            (ControlMode::OnOff, Some(Action::Off)) => Some(PowerState::Stopped),
            (ControlMode::OnOff, Some(Action::On)) => Some(PowerState::Running),
            (ControlMode::OffOnly, _) | (ControlMode::OnOff, None) => None,
        };
        let next = timetable::next_edge(g, now)
            .map(|e| format!("{} at {}", e.action.as_str(), e.at.to_rfc3339()));
        for (region, listed) in operate::regions(g, account) {
            let power = cloud.power(account, &region).await?;
            let seen = operate::observe(power.as_ref(), g, listed, false).await?;
            for ((kind, id), p) in seen {
                // Never acted on: nothing is wanted of it.
                let skipped = operate::skip_reason(&p);
                let desired = desired.filter(|_| skipped.is_none());
                out.push(TargetStatus {
                    group: name.clone(),
                    region: region.clone(),
                    target: format!("{} {id}", kind.as_str()),
                    kind: Some(kind),
                    id: id.clone(),
                    desired: desired.map_or("-", PowerState::as_str).to_string(),
                    actual: match &skipped {
                        Some(why) => format!("{} (skipped: {why})", p.detail),
                        None => p.detail.clone(),
                    },
                    differs: desired.is_some_and(|d| d != p.state),
                    next: next.clone(),
                });
            }
        }
    }
    Ok(out)
}
