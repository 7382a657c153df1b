//! `lifeboat dr ...`: disaster-recovery commands. `dr expired` lists
//! expired copies kept where Lifeboat does not delete (`dr_expired.rs`);
//! `dr check` runs the secured-DR check of the accounts with a `secured`
//! block.
//!
//! Exit codes of `dr check`: 0 every account checked is clean, 2 some
//! principal is allowed a prohibited action, 1 a check failed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Result};
use clap::Subcommand;
use lifeboat_engine::iam::check::{self, Finding, Report};

use crate::files::write_atomically;
use crate::output::print_table;
use crate::workspace::{cloud, Workspace};

#[derive(Subcommand)]
pub enum DrCommand {
    /// Copies expired in accounts with allow_delete = false (tagged
    /// lifeboat:expired), for someone holding delete rights there.
    Expired {
        /// Only copies in this account.
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Check secured DR accounts: report every principal allowed a
    /// prohibited action (exit 2), or say the account is clean (exit 0).
    Check {
        /// Only this account (default: every account with a secured block).
        #[arg(long)]
        account: Option<String>,
        /// Also write the findings to this CSV file.
        #[arg(long)]
        csv: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

/// One account's check.
struct Checked {
    report: Report,
    clean: bool,
    summary: String,
    /// `opened`, `closed` or `unchanged`.
    alert: String,
}

impl Checked {
    /// As `--json` prints it: the report, with whether it is clean, its
    /// summary line and what became of the alert.
    fn json(&self) -> Result<serde_json::Value> {
        let mut v = serde_json::to_value(&self.report)?;
        v["clean"] = self.clean.into();
        v["summary"] = self.summary.clone().into();
        v["alert"] = self.alert.clone().into();
        Ok(v)
    }
}

pub async fn run(ws: &Workspace, command: &DrCommand) -> Result<u8> {
    match command {
        DrCommand::Expired { account, json } => {
            super::dr_expired::run(ws, account.as_deref(), *json)
        }
        DrCommand::Check { account, csv, json } => {
            check(ws, account.as_deref(), csv.as_deref(), *json).await
        }
    }
}

/// `dr check`.
async fn check(
    ws: &Workspace,
    account: Option<&str>,
    csv: Option<&Path>,
    json: bool,
) -> Result<u8> {
    let secured: Vec<&String> = ws
        .config
        .accounts
        .iter()
        .filter(|(_, a)| a.secured.is_some())
        .map(|(n, _)| n)
        .collect();
    let names: Vec<&String> = match account {
        Some(a) if !ws.config.accounts.contains_key(a) => bail!("no account {a:?} is configured"),
        Some(a) if !secured.iter().any(|s| *s == a) => {
            bail!("account {a:?} has no secured block: there is nothing to check")
        }
        Some(a) => secured.into_iter().filter(|s| *s == a).collect(),
        None if secured.is_empty() => bail!("no configured account has a secured block"),
        None => secured,
    };
    let cloud = cloud(ws).await?;
    let store = Arc::new(Mutex::new(ws.store()?));
    let mut checked = Vec::new();
    let mut failed = false;
    for name in names {
        let acct = &ws.config.accounts[name];
        let result = async {
            let report = check::check(&cloud, acct).await?;
            let alert = check::record(&cloud, &store, &ws.config, &report, ws.now).await?;
            Ok::<_, check::CheckError>((report, alert))
        };
        match result.await {
            Ok((report, alert)) => checked.push(Checked {
                clean: report.is_clean(),
                summary: report.summary(),
                alert: format!("{alert:?}").to_lowercase(),
                report,
            }),
            Err(e @ check::CheckError::Notify(_)) => {
                // Checked and recorded; only the alert's publishing failed.
                crate::colour::error(format_args!("account {name}: {e}"));
                failed = true;
            }
            Err(e) => {
                crate::colour::error(format_args!("account {name}: {e}"));
                failed = true;
                // A check that cannot run is no clean account: the alert
                // says so until a check succeeds.
                let _ =
                    check::record_failure(&cloud, &store, &ws.config, name, &e.to_string(), ws.now)
                        .await;
            }
        }
    }
    if let Some(path) = csv {
        write_csv(path, &checked)?;
    }
    if json {
        let all = checked
            .iter()
            .map(Checked::json)
            .collect::<Result<Vec<_>>>()?;
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        print_human(&checked);
    }
    Ok(if failed {
        1
    } else if checked.iter().any(|c| !c.clean) {
        2
    } else {
        0
    })
}

fn print_human(checked: &[Checked]) {
    for c in checked {
        println!("{}", c.summary);
        if !c.clean {
            let rows: Vec<[String; 4]> = c.report.findings.iter().map(row).collect();
            print_table(["PRINCIPAL", "POLICY", "ALLOWS", "PROHIBITED"], &rows);
        }
        for u in &c.report.unread {
            println!("  not evaluated: {u}");
        }
        if c.report.findings.iter().any(|f| f.conditional) {
            println!("  (conditional): the statement has a Condition, taken as met");
        }
        let owner = check::alert_owner(&c.report.account);
        match c.alert.as_str() {
            "opened" => println!("Alert opened: {owner}"),
            "closed" => println!("Alert closed: {owner}"),
            _ => {}
        }
    }
}

fn row(f: &Finding) -> [String; 4] {
    let group = f
        .group
        .as_ref()
        .map(|g| format!(" via group {g}"))
        .unwrap_or_default();
    let conditional = if f.conditional { " (conditional)" } else { "" };
    [
        format!("{} {} ({})", f.principal_type, f.principal, f.principal_arn),
        format!("{} [{}{group}]", f.policy, f.source.as_str()),
        format!("{}{conditional}", f.action),
        f.prohibited.clone(),
    ]
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn write_csv(path: &Path, checked: &[Checked]) -> Result<()> {
    let mut out = String::from(
        "account,principal_type,principal,principal_arn,policy,source,group,action,prohibited,conditional\n",
    );
    for c in checked {
        for f in &c.report.findings {
            let cells = [
                c.report.account.as_str(),
                &f.principal_type,
                &f.principal,
                &f.principal_arn,
                &f.policy,
                f.source.as_str(),
                f.group.as_deref().unwrap_or(""),
                &f.action,
                &f.prohibited,
                if f.conditional { "true" } else { "false" },
            ];
            let line: Vec<String> = cells.iter().map(|s| field(s)).collect();
            out.push_str(&line.join(","));
            out.push('\n');
        }
    }
    write_atomically(path, out.as_bytes())
}
