//! `lifeboat alerts`: the open alerts.

use anyhow::Result;

use crate::output::stamp;
use crate::workspace::Workspace;

pub fn run(ws: &Workspace, json: bool) -> Result<u8> {
    let alerts = ws.store()?.open_alerts()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&alerts)?);
    } else if alerts.is_empty() {
        println!("No open alerts.");
    } else {
        for a in &alerts {
            // Owners with a dot (`account.vault`, the secured-DR check) are
            // already addresses; the others are policy names.
            let owner = if a.policy.contains('.') {
                a.policy.clone()
            } else {
                format!("policy.{}", a.policy)
            };
            println!("{}  {owner}  {}", stamp(a.opened), a.message);
        }
    }
    Ok(0)
}
