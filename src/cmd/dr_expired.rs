//! `lifeboat dr expired`: the copies retention expired in accounts where
//! Lifeboat does not delete (`allow_delete = false`). They carry the tag
//! `lifeboat:expired`; this list is for someone holding delete rights there.

use anyhow::{bail, Result};
use lifeboat_engine::state::DrCopyRecord;

use crate::output::{print_table, stamp};
use crate::workspace::Workspace;

pub fn run(ws: &Workspace, account: Option<&str>, json: bool) -> Result<u8> {
    let store = ws.store()?;
    let copies = store.dr_copies(None)?;
    // A misspelt name would list nothing and read as "nothing to delete".
    // An account removed from the configuration whose copies are still
    // recorded is known too.
    let known = |a: &str| {
        ws.config.accounts.contains_key(a) || copies.iter().any(|c| c.destination.account == a)
    };
    if let Some(a) = account.filter(|a| !known(a)) {
        let names: Vec<&str> = ws.config.accounts.keys().map(String::as_str).collect();
        bail!(
            "no account {a:?} is configured or holds DR copies; configured accounts: {}",
            names.join(", ")
        );
    }
    let expired: Vec<DrCopyRecord> = copies
        .into_iter()
        .filter(|c| c.expired.is_some())
        .filter(|c| account.is_none_or(|a| c.destination.account == a))
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&expired)?);
        return Ok(0);
    }
    if expired.is_empty() {
        println!("No expired DR copies.");
        return Ok(0);
    }
    let rows: Vec<[String; 7]> = expired
        .iter()
        .map(|c| {
            [
                c.destination.account.clone(),
                c.destination.region.clone(),
                c.id.clone(),
                c.kind.as_str().to_string(),
                c.policy.clone(),
                c.backup_id.clone(),
                c.expired.map(stamp).unwrap_or_default(),
            ]
        })
        .collect();
    print_table(
        [
            "ACCOUNT", "REGION", "COPY", "KIND", "POLICY", "BACKUP", "EXPIRED",
        ],
        &rows,
    );
    Ok(0)
}
