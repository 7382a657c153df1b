//! Alert notifications to SNS: one Publish call when an alert opens, one
//! when it closes, and a daily summary. The message texts are documented in
//! docs/configuration.md (`notifications`).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lifeboat_schema::{Config, Notifications};

use crate::cloud::{Cloud, CloudError};
use crate::runmode::agenda;
use crate::state::model::PolicyState;
use crate::state::{Alert, SharedStore, StateError};

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("account {0} of the notifications block is not in state; run `lifeboat apply` first")]
    NoAccount(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Cloud(#[from] CloudError),
}

/// The subject and text published when `alert` opens.
pub fn opened_message(alert: &Alert, failures: u32) -> (String, String) {
    (
        format!("Lifeboat alert opened: policy {}", alert.policy),
        format!(
            "ALERT OPENED\npolicy: {}\nalert: {}\nopened: {}\nconsecutive failures: {failures}\nreason: {}\n",
            alert.policy,
            alert.id,
            alert.opened.to_rfc3339(),
            alert.message
        ),
    )
}

/// The subject and text published when a policy's membership could not be
/// decided for several backups in a row (`alert.policy` is its owner,
/// `policy.NAME.membership`).
pub fn membership_message(alert: &Alert) -> (String, String) {
    (
        format!("Lifeboat alert opened: {}", alert.policy),
        format!(
            "ALERT OPENED\n{}\nalert: {}\nopened: {}\nreason: {}\n",
            alert.policy,
            alert.id,
            alert.opened.to_rfc3339(),
            alert.message
        ),
    )
}

/// The subject and text published when a target leaves a policy under
/// `auto_remove_targets = "alert"`.
pub fn departed_message(c: &crate::membership::MemberChange) -> (String, String) {
    (
        format!("Lifeboat alert opened: policy.{}", c.policy),
        format!(
            "ALERT OPENED\npolicy: {}\n{} {} left the policy: {}\nat: {}\nbackup: {}\n",
            c.policy,
            c.kind.noun(),
            c.target,
            c.reason,
            c.at.to_rfc3339(),
            c.backup_id.as_deref().unwrap_or("-")
        ),
    )
}

/// The subject and text published when `alert` closes.
pub fn closed_message(
    alert: &Alert,
    closed: DateTime<Utc>,
    backup_id: Option<&str>,
) -> (String, String) {
    (
        format!("Lifeboat alert closed: policy {}", alert.policy),
        format!(
            "ALERT CLOSED\npolicy: {}\nalert: {}\nopened: {}\nclosed: {}\nsucceeded with backup: {}\n",
            alert.policy,
            alert.id,
            alert.opened.to_rfc3339(),
            closed.to_rfc3339(),
            backup_id.unwrap_or("-")
        ),
    )
}

/// Publishes one message to the configured topic.
pub async fn publish(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    n: &Notifications,
    subject: &str,
    message: &str,
) -> Result<String, NotifyError> {
    let state = store.lock().expect("store").load()?;
    let account = state
        .accounts()?
        .remove(&n.account)
        .ok_or_else(|| NotifyError::NoAccount(n.account.clone()))?;
    let sns = cloud.sns(&account, &n.region).await?;
    // SNS subjects are at most 100 characters.
    let subject: String = subject.chars().take(100).collect();
    Ok(sns.publish(&n.sns_topic, &subject, message).await?)
}

/// The daily summary: open alerts, DR copies that failed or timed out in
/// the last day and those still in progress, disabled policies, policies
/// without schedules, policies without targets (applied state).
pub fn summary_message(
    config: &Config,
    policies: &BTreeMap<String, PolicyState>,
    targets: &BTreeMap<String, usize>,
    alerts: &[Alert],
    dr_runs: &[crate::state::DrRun],
    now: DateTime<Utc>,
) -> (String, String) {
    let mut text = format!("LIFEBOAT DAILY SUMMARY\nat: {}\n", now.to_rfc3339());
    let mut section = |title: &str, lines: Vec<String>| {
        text.push_str(&format!("\n{title} ({}):\n", lines.len()));
        if lines.is_empty() {
            text.push_str("  none\n");
        }
        for l in lines {
            text.push_str(&format!("  {l}\n"));
        }
    };
    section(
        "open alerts",
        alerts
            .iter()
            .map(|a| {
                // An owner with a dot is an address already (`account.vault`,
                // the secured-DR check); the others are policy names.
                let owner = if a.policy.contains('.') {
                    a.policy.clone()
                } else {
                    format!("policy {}", a.policy)
                };
                format!("{owner} since {}: {}", a.opened.to_rfc3339(), a.message)
            })
            .collect(),
    );
    let dr_line = |r: &&crate::state::DrRun| {
        let detail = if r.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", r.detail)
        };
        format!(
            "policy {} backup {} to {} {}{detail}",
            r.policy,
            r.backup_id,
            r.destination,
            r.status.as_str().replace('_', " ")
        )
    };
    let day_ago = now - chrono::Duration::days(1);
    section(
        "DR copies failed or timed out in the last day",
        dr_runs
            .iter()
            .filter(|r| {
                matches!(
                    r.status,
                    crate::state::DrStatus::Failed | crate::state::DrStatus::TimedOut
                ) && r.updated >= day_ago
            })
            .map(|r| dr_line(&r))
            .collect(),
    );
    section(
        "DR copies in progress",
        dr_runs
            .iter()
            .filter(|r| r.status.is_open())
            .map(|r| dr_line(&r))
            .collect(),
    );
    section(
        "disabled policies",
        policies
            .values()
            .filter(|p| !p.enabled)
            .map(|p| p.name.clone())
            .collect(),
    );
    section(
        "policies without schedules",
        policies
            .values()
            .filter(|p| {
                p.schedules
                    .iter()
                    .all(|s| !config.schedules.contains_key(s))
            })
            .map(|p| p.name.clone())
            .collect(),
    );
    section(
        "policies without targets",
        policies
            .keys()
            .filter(|p| targets.get(*p).copied().unwrap_or(0) == 0)
            .cloned()
            .collect(),
    );
    (
        format!("Lifeboat daily summary: {} open alert(s)", alerts.len()),
        text,
    )
}

/// The note under which the state keeps the date of the last daily summary.
pub(crate) const SUMMARY_NOTE: &str = "daily_summary";

/// Publishes the daily summary if due (and records that it was sent);
/// returns whether it published.
pub async fn daily_summary(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<bool, NotifyError> {
    let Some(n) = &config.notifications else {
        return Ok(false);
    };
    let Some(at) = &n.daily_summary else {
        return Ok(false);
    };
    let (state, alerts, last) = {
        let s = store.lock().expect("store");
        let mut s = s;
        (s.load()?, s.open_alerts()?, s.note(SUMMARY_NOTE)?)
    };
    if !agenda::summary_due(at, last.as_deref(), now) {
        return Ok(false);
    }
    let policies = state.policies()?;
    let mut targets: BTreeMap<String, usize> = BTreeMap::new();
    for (policy, _) in state.targets()?.keys() {
        *targets.entry(policy.clone()).or_default() += 1;
    }
    let (subject, mut text) =
        summary_message(config, &policies, &targets, &alerts, &state.dr_runs, now);
    let drills =
        crate::runmode::drills::summary_lines(&store.lock().expect("store").drills()?, now);
    text.push_str(&format!("\ndrills in the last day ({}):\n", drills.len()));
    if drills.is_empty() {
        text.push_str("  none\n");
    }
    for l in drills {
        text.push_str(&format!("  {l}\n"));
    }
    let moves = store
        .lock()
        .expect("store")
        .member_changes(None, now - chrono::Duration::days(1))?;
    text.push_str(&format!(
        "\nmembership changes in the last day ({}):\n",
        moves.len()
    ));
    if moves.is_empty() {
        text.push_str("  none\n");
    }
    for c in moves {
        text.push_str(&format!(
            "  policy {} at {}: {c}\n",
            c.policy,
            c.at.to_rfc3339()
        ));
    }
    text.push_str(&unprotected_section(cloud, config, &policies, &state.targets()?).await);
    if !config.resource_control_groups.is_empty() {
        let lines = crate::control::summary_lines(cloud, store, config, now).await?;
        text.push_str(&format!(
            "\nresource control in the last day ({}):\n",
            lines.len()
        ));
        if lines.is_empty() {
            text.push_str("  none\n");
        }
        for l in lines {
            text.push_str(&format!("  {l}\n"));
        }
    }
    publish(cloud, store, n, &subject, &text).await?;
    store
        .lock()
        .expect("store")
        .set_note(SUMMARY_NOTE, &now.date_naive().to_string())?;
    Ok(true)
}

/// The summary's count of resources no policy covers, per kind (the
/// `unprotected` report's rows), and the regions that could not be listed.
async fn unprotected_section(
    cloud: &Arc<dyn Cloud>,
    config: &Config,
    policies: &BTreeMap<String, PolicyState>,
    targets: &BTreeMap<(String, String), crate::state::model::TargetState>,
) -> String {
    use crate::report::coverage;
    let inv = coverage::inventory(cloud, config).await;
    let (_, unprotected) = coverage::tables(&inv, policies, targets, None);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for row in &unprotected.rows {
        *counts.entry(row[2].as_str()).or_default() += 1;
    }
    let mut text = format!("\nunprotected resources ({}):\n", unprotected.rows.len());
    if counts.is_empty() && inv.errors.is_empty() {
        text.push_str("  none\n");
    }
    for (kind, n) in counts {
        text.push_str(&format!("  {kind}: {n}\n"));
    }
    for e in &inv.errors {
        text.push_str(&format!("  not listed: {e}\n"));
    }
    text
}
