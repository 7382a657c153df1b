//! `lifeboat iam policy`: the minimal IAM policy Lifeboat's own principal
//! needs in each configured account, for what the configuration uses
//! (engine/src/iam/needs.rs). Reads nothing from AWS.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use clap::Subcommand;
use lifeboat_engine::iam::needs::{self, AccountPolicy};

use crate::workspace::Workspace;

#[derive(Subcommand)]
pub enum IamCommand {
    /// Print the minimal IAM policy Lifeboat needs per configured account.
    Policy {
        /// Only this account.
        #[arg(long)]
        account: Option<String>,
        /// JSON: the account's policies (with --account), or an object of
        /// them by account name.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ws: &Workspace, command: &IamCommand) -> Result<u8> {
    let IamCommand::Policy { account, json } = command;
    let names: Vec<&String> = match account {
        Some(a) if !ws.config.accounts.contains_key(a) => {
            let known: Vec<&str> = ws.config.accounts.keys().map(String::as_str).collect();
            bail!(
                "no account {a:?} is configured; configured accounts: {}",
                known.join(", ")
            );
        }
        Some(a) => vec![a],
        None => ws.config.accounts.keys().collect(),
    };
    let policies: BTreeMap<&String, AccountPolicy> = names
        .into_iter()
        .filter_map(|n| needs::policy_for(&ws.config, n).map(|p| (n, p)))
        .collect();
    if *json {
        let text = match (account, policies.values().next()) {
            (Some(_), Some(p)) => serde_json::to_string_pretty(p)?,
            _ => serde_json::to_string_pretty(&policies)?,
        };
        println!("{text}");
        return Ok(0);
    }
    for (name, p) in &policies {
        println!("# account {name}: the policy of the principal Lifeboat acts as there");
        println!("{}", serde_json::to_string_pretty(&p.principal)?);
        if let Some(base) = &p.base_credentials {
            println!("# account {name}: its base credentials (profile or default chain), to assume the role");
            println!("{}", serde_json::to_string_pretty(base)?);
        }
    }
    Ok(0)
}
