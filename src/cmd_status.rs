//! `lifeboat status`: per policy, the last backup, its status, the next
//! scheduled run and open alerts; and `lifeboat backups show ID`: one backup
//! with its snapshots, problems and the scripts it ran (captured stderr).

use anyhow::{bail, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use lifeboat_engine::runmode::schedule;
use lifeboat_engine::state::model::PolicyState;
use lifeboat_engine::state::Store;
use lifeboat_schema::Config;
use serde_json::json;

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

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

pub fn status(store: &mut Store, config: &Config, now: DateTime<Utc>, json: bool) -> Result<u8> {
    let state = store.load()?;
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
            .max_by(|a, b| a.started.cmp(&b.started).then_with(|| a.id.cmp(&b.id)));
        let open: Vec<_> = alerts.iter().filter(|a| &a.policy == name).collect();
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
        }));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    if rows.is_empty() {
        println!("No policies in state; run `lifeboat apply` first.");
        return Ok(0);
    }
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
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
    let mut w = head.map(str::len);
    for r in &table {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<width$}  ", width = w[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(head);
    for r in &table {
        line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]].map(|c| c.as_str()));
    }
    for a in &alerts {
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

pub fn show_backup(store: &Store, id: &str, policy: Option<&str>, json: bool) -> Result<u8> {
    let found: Vec<_> = store
        .backups(policy)?
        .into_iter()
        .filter(|b| b.id == id)
        .collect();
    let b = match found.as_slice() {
        [] => bail!("no backup {id:?} in the catalog (see `lifeboat backups`)"),
        [b] => b.clone(),
        _ => bail!("backup id {id:?} exists in several policies; add --policy"),
    };
    let scripts = store.script_runs(&b.policy, &b.id)?;
    if json {
        let mut v = serde_json::to_value(&b)?;
        v["scripts"] = serde_json::to_value(&scripts)?;
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    println!("backup   {}", b.id);
    println!("policy   {}", b.policy);
    println!("account  {}", b.account);
    println!("status   {}", b.status.as_str());
    println!("started  {}", stamp(b.started));
    println!(
        "finished {}",
        b.finished.map(stamp).unwrap_or_else(|| "-".into())
    );
    if let Some(f) = &b.frozen {
        println!("frozen   {} at {}", f.name, stamp(f.at));
    }
    println!("\nsnapshots ({}):", b.snapshots.len());
    for s in &b.snapshots {
        println!("  {}  {}  {}  {}", s.id, s.target, s.volume_id, s.region);
    }
    if !b.problems.is_empty() {
        println!("\nproblems:");
        for p in &b.problems {
            println!("  {p}");
        }
    }
    if !scripts.is_empty() {
        println!("\nscripts:");
        for r in &scripts {
            println!(
                "  attempt {}  {}  {}  {}",
                r.attempt,
                r.step,
                if r.ok { "ok" } else { "failed" },
                r.detail
            );
            if !r.stderr.is_empty() {
                println!("    stderr:");
                for l in r.stderr.lines() {
                    println!("      {l}");
                }
            }
        }
    }
    Ok(0)
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
        let line = if !p.enabled {
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
