//! `lifeboat report KIND`: the reports of `lifeboat_engine::report` as CSV
//! (stdout, or `--csv FILE` written atomically, mode 0600) or as JSON
//! objects (`--json`). The rows are built in the engine; this parses the
//! arguments and prints.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use lifeboat_engine::report::{self, coverage, Filter, Kind, Table};

use crate::files::write_atomically_with;
use crate::workspace::{cloud, Workspace};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ReportKind {
    /// Every backup: status, DR status, times, retry, deletion.
    Backups,
    /// Every snapshot, AMI, DB snapshot and DR copy of the backups.
    Snapshots,
    /// Every instance, volume and database a policy covers (lists AWS).
    Protected,
    /// Every instance, volume and database no policy covers (lists AWS).
    Unprotected,
}

impl From<ReportKind> for Kind {
    fn from(k: ReportKind) -> Kind {
        match k {
            ReportKind::Backups => Kind::Backups,
            ReportKind::Snapshots => Kind::Snapshots,
            ReportKind::Protected => Kind::Protected,
            ReportKind::Unprotected => Kind::Unprotected,
        }
    }
}

#[derive(clap::Args)]
pub struct ReportArgs {
    #[arg(value_enum)]
    kind: ReportKind,
    /// Write the CSV to FILE (mode 0600, replaced atomically) instead of
    /// stdout.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Print a JSON array of objects keyed by the columns.
    #[arg(long)]
    json: bool,
    /// Only records started, finished or deleted at or after T: an RFC 3339
    /// time, or a duration back from now (e.g. 7d, 12h).
    #[arg(long, value_name = "T")]
    since: Option<String>,
    /// Only this policy's records (or, for `protected`, the resources it
    /// covers).
    #[arg(long)]
    policy: Option<String>,
}

/// `--since`: an instant, or a duration back from `now`.
fn since(arg: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(arg) {
        return Ok(t.with_timezone(&Utc));
    }
    match lifeboat_schema::parse_duration(arg) {
        Ok(d) => Ok(now - chrono::Duration::from_std(d)?),
        Err(e) => bail!(
            "--since {arg:?} is neither an RFC 3339 time (2026-11-22T08:00:00Z) nor a duration (7d, 12h): {e}"
        ),
    }
}

pub async fn run(ws: &Workspace, args: &ReportArgs) -> Result<u8> {
    let kind = Kind::from(args.kind);
    let mut store = ws.store()?;
    if let Some(p) = &args.policy {
        let mut known = report::known_policies(&mut store)?;
        known.extend(ws.config.policies.keys().cloned());
        if !known.contains(p) {
            let names: Vec<&str> = known.iter().map(String::as_str).collect();
            bail!(
                "no policy {p:?} in the configuration or the state (policies: {})",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            );
        }
        if kind == Kind::Unprotected {
            bail!(
                "--policy does not apply to the unprotected report: no policy covers its resources"
            );
        }
    }
    let filter = Filter {
        since: args
            .since
            .as_deref()
            .map(|s| since(s, ws.now))
            .transpose()?,
        policy: args.policy.clone(),
    };
    let mut failed = false;
    let table = match kind {
        Kind::Backups => report::backups(&store, ws.now, &filter)?,
        Kind::Snapshots => report::snapshots(&store, ws.now, &filter)?,
        Kind::Protected | Kind::Unprotected => {
            let state = store.load()?;
            let (policies, targets) = (state.policies()?, state.targets()?);
            drop(store);
            let inv = coverage::inventory(&cloud(ws).await?, &ws.config).await;
            for e in &inv.errors {
                eprintln!("Error: not listed, left out of the report: {e}");
                failed = true;
            }
            let (protected, unprotected) =
                coverage::tables(&inv, &policies, &targets, args.policy.as_deref());
            match kind {
                Kind::Protected => protected,
                _ => unprotected,
            }
        }
    };
    print(&table, args)?;
    Ok(u8::from(failed))
}

fn print(table: &Table, args: &ReportArgs) -> Result<()> {
    if let Some(path) = &args.csv {
        let bytes = table.to_csv();
        write_atomically_with(path, |w| w.write_all(&bytes))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&table.to_json())?);
    } else if args.csv.is_none() {
        let mut out = std::io::stdout().lock();
        out.write_all(&table.to_csv())?;
        out.flush()?;
    }
    Ok(())
}
