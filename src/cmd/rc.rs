//! `lifeboat rc`: resource-control groups by hand. `rc off GROUP` and `rc on
//! GROUP` act now (as an edge would, verified, retried once, logged);
//! both under the state lock, and marked so that a runner leaves the
//! group until its next edge; `rc status` shows each target's desired and actual power state and the
//! next operation; `rc log` prints or exports the operations log.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Result};
use clap::Subcommand;
use lifeboat_engine::control::{self, Action, Request};
use lifeboat_engine::state::ControlRecord;

use crate::files::write_atomically;
use crate::output::print_table;
use crate::workspace::{cloud, locked, stop_on_signal, Workspace};

#[derive(Subcommand)]
pub enum RcCommand {
    /// Stop (or hibernate) the group's targets now.
    Off { group: String },
    /// Start the group's targets now.
    On { group: String },
    /// Each target's desired power state now, its actual state, and the
    /// next operation.
    Status {
        /// Only this group.
        group: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The operations log: every target of every operation.
    Log {
        #[arg(long)]
        json: bool,
        /// Also write it to FILE as CSV.
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
    },
}

pub async fn run(ws: &Workspace, command: &RcCommand) -> Result<u8> {
    match command {
        RcCommand::Off { group } => act(ws, group, Action::Off).await,
        RcCommand::On { group } => act(ws, group, Action::On).await,
        RcCommand::Status { group, json } => status(ws, group.as_deref(), *json).await,
        RcCommand::Log { json, csv } => log(ws, *json, csv.as_deref()),
    }
}

/// The configuration with the groups made from templates by the tags now
/// (a look at the tags, [`control::tagged::look`]), after checking that
/// `group` (if given) is one that acts: configured and no template, or
/// made from one. The tags' problems are printed on stderr.
async fn groups_now(
    ws: &Workspace,
    cloud: &std::sync::Arc<dyn lifeboat_engine::cloud::Cloud>,
    group: Option<&str>,
) -> Result<lifeboat_schema::Config> {
    let groups = &ws.config.resource_control_groups;
    if let Some(g) = group.and_then(|g| groups.get(g)).filter(|g| g.template) {
        bail!(
            "resource_control_group {:?} is a template: it never acts itself; the groups made from it (tag lifeboat:resource-control = NAME:{}) do",
            g.name,
            g.name
        );
    }
    let look = control::tagged::look(cloud, &ws.config, None).await?;
    for p in &look.problems {
        eprintln!("Problem: {p}");
    }
    let config = look.expand(&ws.config);
    if let Some(group) = group.filter(|g| !config.resource_control_groups.contains_key(*g)) {
        let names: Vec<&str> = config
            .resource_control_groups
            .values()
            .filter(|g| !g.template)
            .map(|g| g.name.as_str())
            .collect();
        bail!(
            "no resource_control_group {group:?} is configured or made from a template by a tag{}",
            if names.is_empty() {
                String::new()
            } else {
                format!("; groups: {}", names.join(", "))
            }
        )
    }
    Ok(config)
}

async fn act(ws: &Workspace, group: &str, action: Action) -> Result<u8> {
    let cloud = cloud(ws).await?;
    let config = groups_now(ws, &cloud, Some(group)).await?;
    let store = Arc::new(Mutex::new(ws.store()?));
    // The workspace's instant (--now, or the time it was loaded), moving on
    // with the real clock while the operation waits.
    let (start, began) = (ws.now, std::time::Instant::now());
    let now = move || start + chrono::Duration::from_std(began.elapsed()).unwrap_or_default();
    let req = Request {
        action,
        databases_only: false,
        poll: control::POLL,
        cancel: Some(stop_on_signal()),
    };
    // Under the state lock, as every command that writes; the mark tells
    // a runner that this operation stands for the latest edge, and that
    // the group's databases are not to be looked at until the next one.
    let marks = [(control::hand_key(group), start)];
    let config = &config;
    let outcome = locked(store.clone(), "rc", ws.lock_timeout, async move |_| {
        Ok(control::perform(&cloud, &store, config, group, &req, &marks, &now).await?)
    })
    .await?;
    // The operation's tag problems are among those printed above.
    print_rows(&outcome.rows);
    if let Some(a) = &outcome.alert {
        eprintln!("Alert: {a}");
    }
    Ok(if outcome.failed() > 0 { 1 } else { 0 })
}

async fn status(ws: &Workspace, group: Option<&str>, json: bool) -> Result<u8> {
    let cloud = cloud(ws).await?;
    let config = groups_now(ws, &cloud, group).await?;
    let rows = control::status(&cloud, &config, group, ws.now).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    if rows.is_empty() {
        println!("No resource-control targets.");
        return Ok(0);
    }
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.group.clone(),
                r.target.clone(),
                r.region.clone(),
                r.desired.clone(),
                if r.differs {
                    format!("{} (differs)", r.actual)
                } else {
                    r.actual.clone()
                },
                r.next.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print_table(
        ["GROUP", "TARGET", "REGION", "DESIRED", "ACTUAL", "NEXT"],
        &table,
    );
    Ok(0)
}

fn print_rows(rows: &[ControlRecord]) {
    if rows.is_empty() {
        println!("No targets.");
        return;
    }
    let table: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.group.clone(),
                r.target.clone(),
                r.action.clone(),
                r.requested.to_rfc3339(),
                r.verified
                    .map(|v| v.to_rfc3339())
                    .unwrap_or_else(|| "-".into()),
                r.result.clone(),
                r.detail.clone(),
            ]
        })
        .collect();
    print_table(
        [
            "GROUP",
            "TARGET",
            "ACTION",
            "REQUESTED",
            "VERIFIED",
            "RESULT",
            "DETAIL",
        ],
        &table,
    );
}

fn log(ws: &Workspace, json: bool, csv: Option<&Path>) -> Result<u8> {
    let rows = ws.store()?.control_log()?;
    if let Some(path) = csv {
        write_csv(path, &rows)?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if rows.is_empty() {
        println!("No resource-control operations yet.");
    } else {
        print_rows(&rows);
    }
    Ok(0)
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn write_csv(path: &Path, rows: &[ControlRecord]) -> Result<()> {
    let mut out = String::from("group,target,action,requested,verified,result,detail\n");
    for r in rows {
        let cells = [
            r.group.clone(),
            r.target.clone(),
            r.action.clone(),
            r.requested.to_rfc3339(),
            r.verified.map(|v| v.to_rfc3339()).unwrap_or_default(),
            r.result.clone(),
            r.detail.clone(),
        ];
        let line: Vec<String> = cells.iter().map(|s| field(s)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    write_atomically(path, out.as_bytes())
}
