//! `lifeboat status`: per policy, the last backup, its status, the next
//! scheduled run, open alerts, and who joined or left it in the last day. Also the next runs that `plan` prints
//! under the plan.

use anyhow::Result;
use chrono::{DateTime, Utc};
use lifeboat_engine::runmode::{agenda, schedule};
use lifeboat_engine::state::model::PolicyState;
use lifeboat_engine::state::{Snapshot, Store};
use lifeboat_schema::Config;
use serde_json::{json, Value};

use crate::output::{print_table, stamp};
use crate::workspace::Workspace;

/// The next slot of a policy's schedules after `now` (none when disabled
/// or without a configured schedule).
pub fn next_run(config: &Config, p: &PolicyState, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if !p.enabled {
        return None;
    }
    p.schedules
        .iter()
        .filter_map(|s| config.schedules.get(s))
        .filter_map(|s| schedule::next_after(s, now))
        .min()
}

pub fn run(ws: &Workspace, json: bool) -> Result<u8> {
    let mut store = ws.store()?;
    let state = store.load()?;
    let rows = rows(&store, &state, &ws.config, ws.now)?;
    for w in agenda::future_times(&store.last_slots()?, &state.backups, ws.now) {
        crate::colour::warning(format_args!("{w}"));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    if rows.is_empty() {
        println!("No policies in state; run `lifeboat apply` first.");
        return Ok(0);
    }
    print_rows(&rows);
    // Which runner acts; standby runners wait for its lease.
    match store.current_lease()? {
        Some(l) if l.expires > chrono::Utc::now() => println!(
            "\nRunner: {} leads since {} (lease until {}; standby runners take over when it lapses).",
            l.holder,
            stamp(l.acquired),
            stamp(l.expires)
        ),
        Some(l) => println!(
            "\nRunner: none; the last lease, {}'s, lapsed at {}.",
            l.holder,
            stamp(l.expires)
        ),
        None => println!("\nRunner: none holds the lease."),
    }
    // Who joined or left each policy in the last day, with why.
    for r in &rows {
        for c in r["membership_changes"].as_array().into_iter().flatten() {
            println!(
                "\npolicy.{} at {}: {}: {} {} ({})",
                r["policy"].as_str().unwrap_or_default(),
                c["at"].as_str().unwrap_or_default(),
                c["change"].as_str().unwrap_or_default(),
                c["kind"].as_str().unwrap_or_default(),
                c["target"].as_str().unwrap_or_default(),
                c["reason"].as_str().unwrap_or_default(),
            );
        }
    }
    for a in &store.open_alerts()? {
        println!(
            "\nalert {} on policy.{} since {}: {}",
            a.id,
            a.policy,
            stamp(a.opened),
            a.message
        );
    }
    Ok(0)
}

/// One JSON object per policy in the state: the `--json` output, and what
/// the table shows.
fn rows(
    store: &Store,
    state: &Snapshot,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Vec<Value>> {
    let policies = state.policies()?;
    let alerts = store.open_alerts()?;
    let retries = store.retries()?;
    let skipped = store.skipped(None)?;
    let mut rows = Vec::new();
    for (name, p) in &policies {
        let last = state
            .backups
            .iter()
            .filter(|b| &b.policy == name)
            .max_by(|a, b| (a.seq, a.started, &a.id).cmp(&(b.seq, b.started, &b.id)));
        // Its failure alerts, and those of targets that left it (owned by
        // its address).
        let address = format!("policy.{name}");
        let open: Vec<_> = alerts
            .iter()
            .filter(|a| &a.policy == name || a.policy == address)
            .collect();
        // A waiting retry comes before the next slot (a slot replaces it).
        let retry = retries.get(name).filter(|_| p.enabled);
        let scheduled = next_run(config, p, now);
        let next = match (retry, scheduled) {
            (Some(r), Some(s)) if s <= r.due => Some(stamp(s)),
            (Some(r), _) => Some(format!("{} (retry {})", stamp(r.due), r.attempt)),
            (None, s) => s.map(stamp),
        };
        rows.push(json!({
            "policy": name,
            "enabled": p.enabled,
            "last_backup": last.map(|b| b.id.clone()),
            "last_status": last.map(|b| b.status.as_str()),
            "last_started": last.map(|b| stamp(b.started)),
            "next_run": scheduled.map(stamp),
            "next": next,
            "retry": retry.map(|r| json!({
                "slot": stamp(r.slot), "attempt": r.attempt, "due": stamp(r.due),
            })),
            "skipped_runs": skipped.iter().filter(|k| &k.policy == name).count(),
            "consecutive_failures": store.failures(name)?,
            "open_alerts": open.iter().map(|a| json!({
                "id": a.id, "opened": stamp(a.opened), "message": a.message,
            })).collect::<Vec<_>>(),
            "membership_changes": store
                .member_changes(Some(name), now - chrono::Duration::hours(24))?
                .iter()
                .map(|c| json!({
                    "at": stamp(c.at), "change": c.moved.as_str(), "kind": c.kind.noun(),
                    "target": c.target, "reason": c.reason, "backup": c.backup_id,
                }))
                .collect::<Vec<_>>(),
        }));
    }
    Ok(rows)
}

fn print_rows(rows: &[Value]) {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let alerts = r["open_alerts"].as_array().map_or(0, Vec::len);
            [
                s(&r["policy"])
                    + if r["enabled"] == json!(false) {
                        " (disabled)"
                    } else {
                        ""
                    },
                s(&r["last_backup"]),
                s(&r["last_status"]),
                s(&r["next"]),
                r["consecutive_failures"].to_string(),
                if alerts == 0 {
                    "-".to_string()
                } else {
                    format!("{alerts} open")
                },
            ]
        })
        .collect();
    let head = [
        "POLICY",
        "LAST BACKUP",
        "STATUS",
        "NEXT RUN",
        "FAILURES",
        "ALERTS",
    ];
    print_table(head, &table);
}

/// The `plan` footer: each configured policy's next scheduled run (nothing
/// when no policy has schedules).
pub fn next_runs_text(config: &Config, now: DateTime<Utc>) -> String {
    if config.policies.values().all(|p| p.schedules.is_empty()) {
        return String::new();
    }
    let mut out = String::from("\nNext runs:\n");
    for (name, p) in &config.policies {
        let state = PolicyState::from(p);
        let line = if p.template {
            "template (never runs itself)".to_string()
        } else if !p.enabled {
            "disabled".to_string()
        } else if p.schedules.is_empty() {
            "no schedule".to_string()
        } else {
            match next_run(config, &state, now) {
                Some(t) => stamp(t),
                None => "none (schedules expired)".to_string(),
            }
        };
        out.push_str(&format!("  policy.{name}  {line}\n"));
    }
    out
}
