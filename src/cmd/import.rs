//! `lifeboat import`: rebuilds the backup catalog from the tags of what
//! Lifeboat made in AWS, for the configured accounts, regions and policies.
//! Shows what it will record and asks for `yes` (unless `--auto-approve`),
//! then records it in one transaction, under the state lock.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Result};
use lifeboat_engine::backup::import::{self, Found};

use crate::workspace::{cloud, locked, Workspace};

pub async fn run(ws: Workspace, auto_approve: bool) -> Result<u8> {
    if !auto_approve && !std::io::stdin().is_terminal() {
        bail!(
            "import needs confirmation, and standard input is not a terminal; pass --auto-approve"
        );
    }
    let store = Arc::new(Mutex::new(ws.store()?));
    let store2 = store.clone();
    locked(store, "import", ws.lock_timeout, async move |_| {
        // What a backup in flight made would be imported as a backup of
        // its own, beside the runner's record of it.
        crate::workspace::refuse_in_flight(&store2, None, "lifeboat import")?;
        let found = import::scan(cloud(&ws).await?, &ws.config, &store2).await?;
        if found.is_empty() {
            println!("Nothing to import: the catalog already has every backup Lifeboat made for the configured policies.");
            return Ok(0);
        }
        print_table(&found);
        if !auto_approve && !confirm()? {
            println!("Import cancelled.");
            return Ok(1);
        }
        let n = import::record_found(&store2, &found)?;
        let new = found.iter().filter(|f| !f.known).count();
        println!("Imported {n} artifact(s): {new} new backup(s), {} backup(s) completed.", found.len() - new);
        Ok(0)
    })
    .await
}

/// One line per backup: policy, backup id, artifacts by kind, start, status.
fn print_table(found: &[Found]) {
    println!("Lifeboat will record these backups found in AWS:\n");
    println!(
        "{:<16} {:<24} {:<40} {:<24} status",
        "policy", "backup", "artifacts", "started"
    );
    for f in found {
        let b = &f.record;
        let kinds: Vec<String> = f
            .counts()
            .into_iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        let status = if f.known {
            "in the catalog; adds what it lacks".to_string()
        } else {
            b.status.as_str().to_string()
        };
        println!(
            "{:<16} {:<24} {:<40} {:<24} {status}",
            b.policy,
            b.id,
            kinds.join(", "),
            b.started.format("%Y-%m-%dT%H:%M:%SZ"),
        );
    }
}

fn confirm() -> Result<bool> {
    crate::output::confirm("Do you want to record them?")
}
