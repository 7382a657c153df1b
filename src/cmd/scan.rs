//! `lifeboat scan`: one tag scan now, of every backup account (or one):
//! the resources that carry the backup tag, what their tags ask that
//! cannot be done, and the membership changes each applied policy's next
//! backup would make. Nothing is written: run mode records scans on
//! `tag_scan { every }`, and each backup decides its own members.

use std::sync::{Arc, Mutex};

use anyhow::{bail, Result};
use lifeboat_engine::membership::scan::{self, AccountScan, ScanMode};
use lifeboat_schema::AccountKind;

use crate::workspace::{cloud, Workspace};

pub async fn run(ws: &Workspace, account: Option<&str>, json: bool) -> Result<u8> {
    if let Some(a) = account {
        if !ws.config.accounts.contains_key(a) {
            let names: Vec<&str> = ws.config.accounts.keys().map(String::as_str).collect();
            bail!(
                "no account {a:?} in the configuration (accounts: {})",
                names.join(", ")
            );
        }
    }
    let store = Arc::new(Mutex::new(ws.store()?));
    let cloud = cloud(ws).await?;
    let mut scans = Vec::new();
    for a in ws.config.accounts.values() {
        if a.kind != AccountKind::Backup || account.is_some_and(|n| n != a.name) {
            continue;
        }
        scans.push(scan::scan(&cloud, &store, &ws.config, a, ws.now, ScanMode::Preview).await?);
    }
    let failed = scans
        .iter()
        .any(|s| s.error.is_some() || s.policies.iter().any(|p| p.error.is_some()));
    if json {
        println!("{}", serde_json::to_string_pretty(&scans)?);
    } else {
        for s in &scans {
            print_scan(s);
        }
    }
    Ok(u8::from(failed))
}

fn print_scan(s: &AccountScan) {
    let kinds: Vec<&str> = s.kinds.iter().map(|k| k.as_str()).collect();
    println!(
        "account.{}: {} tagged resource(s) in {} ({})",
        s.account,
        s.found.len(),
        s.regions.join(", "),
        kinds.join(", ")
    );
    for f in &s.found {
        let what = if f.opt_out {
            "opted out of every policy".to_string()
        } else {
            let items: Vec<String> = f.items.iter().map(|i| i.to_string()).collect();
            items.join(" ")
        };
        println!(
            "  {} {} ({}) {}={:?}: {what}",
            f.kind.noun(),
            f.id,
            f.region,
            f.key,
            f.value
        );
    }
    for p in &s.policies {
        for c in &p.changes {
            let sign = match c.moved {
                lifeboat_engine::membership::Move::Joined => "+",
                lifeboat_engine::membership::Move::Left => "-",
            };
            println!("  {sign} policy.{}: {c}", p.policy);
        }
        for c in &p.held_back {
            println!("  ! policy.{}: held back (too many at once): {c}", p.policy);
        }
    }
    let changes = s.changes().count();
    if changes == 0 {
        println!("  No membership changes: every policy's members are as applied.");
    } else {
        println!("  {changes} membership change(s); the next backup of each policy makes them.");
    }
    for line in s.problems() {
        println!("  warning: {line}");
    }
}
