//! `lifeboat recover NAME`, `lifeboat drill NAME` and `lifeboat drills`:
//! a recovery scenario carried out, rehearsed, and the rehearsals listed.
//!
//! Like `restore`, neither takes the state lock: each writes only its own
//! catalog rows, one transaction each, and a recovery is often needed while
//! the runner is busy.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use lifeboat_engine::backup::Wait;
use lifeboat_engine::recovery::drill::{self, DrillOutcome, Driller};
use lifeboat_engine::recovery::recover::Recoverer;
use lifeboat_engine::recovery::{scenario, RecoveryError, RecoveryReport};
use lifeboat_engine::restore::Which;
use lifeboat_engine::state::{DrillRecord, SharedStore};
use lifeboat_schema::RecoveryScenario;

use crate::cmd::restore::{operator, poll_interval};
use crate::files::write_atomically;
use crate::output::{confirm, print_table};
use crate::workspace::{cloud, Workspace};

/// How long a restore of a recovery or drill waits for what it creates.
const WAIT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

fn scenario_of<'a>(ws: &'a Workspace, name: &str) -> Result<&'a RecoveryScenario> {
    ws.config
        .recovery_scenario(name)
        .ok_or_else(|| RecoveryError::Unknown(name.to_string()).into())
}

async fn recoverer(ws: &Workspace) -> Result<Recoverer> {
    let store: SharedStore = Arc::new(Mutex::new(ws.store()?));
    Ok(Recoverer {
        cloud: cloud(ws).await?,
        store,
        accounts: Arc::new(ws.config.accounts.clone()),
        operator: operator(),
        wait: Wait {
            timeout: WAIT,
            interval: poll_interval(),
        },
    })
}

/// `lifeboat recover NAME`.
#[derive(clap::Args, Debug)]
pub struct RecoverArgs {
    name: String,
    /// A backup id, `latest` (the default), or an RFC 3339 instant (each
    /// target's newest backup at or before it).
    #[arg(long, default_value = "latest")]
    backup: String,
    /// Print the recovery plan and stop.
    #[arg(long)]
    plan_only: bool,
    #[arg(long)]
    json: bool,
    /// Perform without asking.
    #[arg(long)]
    auto_approve: bool,
}

/// `lifeboat recover NAME`.
pub async fn recover(ws: &Workspace, args: &RecoverArgs) -> Result<u8> {
    let RecoverArgs {
        name,
        backup,
        plan_only,
        json,
        auto_approve,
    } = args;
    let (plan_only, json, auto_approve) = (*plan_only, *json, *auto_approve);
    let sc = scenario_of(ws, name)?;
    let which: Which = backup.parse().map_err(anyhow::Error::msg)?;
    let rec = recoverer(ws).await?;
    let p = scenario::plan(
        &rec.cloud,
        &rec.store,
        &rec.accounts,
        sc,
        &which,
        None,
        ws.now,
    )
    .await
    .with_context(|| format!("recovery scenario {name} cannot be planned"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&p)?);
    } else {
        print!("{}", scenario::render(&p, ws.now));
    }
    if plan_only {
        return Ok(0);
    }
    if !auto_approve {
        if !std::io::stdin().is_terminal() {
            bail!("recover needs confirmation, and standard input is not a terminal: pass --auto-approve");
        }
        if !confirm("Do you want to perform this recovery?")? {
            println!("Recovery cancelled.");
            return Ok(1);
        }
    }
    crate::cmd::restore::reap_interrupted(ws, &rec.store, &rec.cloud, json).await?;
    let report = rec.run(&p).await;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(if report.ok { 0 } else { 1 })
}

fn secs(s: Option<i64>) -> String {
    s.map_or_else(|| "-".into(), |s| format!("{s}s"))
}

fn print_report(r: &RecoveryReport) {
    println!();
    let rows: Vec<[String; 5]> = r
        .steps
        .iter()
        .map(|s| {
            let made: Vec<String> = s
                .restores
                .iter()
                .map(|o| {
                    let ids: Vec<String> = o
                        .record
                        .iter()
                        .flat_map(|r| r.resources.iter())
                        .filter(|x| x.removed.is_none())
                        .map(|x| x.id.clone())
                        .collect();
                    format!("{} -> {}", o.target, ids.join(" "))
                })
                .collect();
            [
                s.step.clone(),
                if s.ok { "ready" } else { "failed" }.to_string(),
                secs(s.rto_seconds),
                secs(s.rpo_seconds),
                made.join("; "),
            ]
        })
        .collect();
    print_table(["STEP", "STATUS", "RTO", "RPO", "RESTORED"], &rows);
    for s in &r.steps {
        for o in s.restores.iter().filter(|o| !o.problem.is_empty()) {
            println!("step {:?}, {}: {}", s.step, o.target, o.problem);
        }
    }
    if !r.not_started.is_empty() {
        println!("Not started: {}", r.not_started.join(", "));
    }
    println!(
        "\nRecovery {} {}: RTO {}, RPO {}.",
        r.scenario,
        if r.ok { "completed" } else { "failed" },
        secs(r.rto_seconds()),
        secs(r.rpo_seconds())
    );
}

/// `lifeboat drill NAME`: never asks; exits 1 when the drill failed.
pub async fn drill(ws: &Workspace, name: &str, json: bool) -> Result<u8> {
    let sc = scenario_of(ws, name)?;
    let d = Driller {
        rec: recoverer(ws).await?,
        config_dir: ws.dir.clone(),
    };
    // Restores and drills an earlier process left midway go first.
    crate::cmd::restore::reap_interrupted(ws, &d.rec.store, &d.rec.cloud, json).await?;
    for o in drill::reconcile(&d).await? {
        if !json {
            println!(
                "Tore down drill {} of {} left by a stopped process ({} resource(s)): {}.",
                o.record.id,
                o.record.scenario,
                o.removed.len(),
                o.record.status.as_str()
            );
        }
    }
    let o = d.drill(sc, &Which::Latest, None, ws.now).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&o)?);
    } else {
        print_drill(&o);
    }
    Ok(if o.passed() { 0 } else { 1 })
}

fn print_drill(o: &DrillOutcome) {
    if let Some(r) = &o.report {
        print_report(r);
    }
    let d = &o.record;
    if let Some(ok) = d.check_ok {
        println!(
            "Check: {} (exit {}).",
            if ok { "passed" } else { "failed" },
            d.check_exit.map_or_else(|| "-".into(), |c| c.to_string())
        );
        if !d.check_output.is_empty() {
            println!("{}", d.check_output.trim_end());
        }
    }
    for (kind, id) in &o.removed {
        println!("  - {} {id}: removed", kind.as_str());
    }
    println!(
        "\nDrill {} of {} {}{}.",
        d.id,
        d.scenario,
        d.status.as_str(),
        if d.problem.is_empty() {
            String::new()
        } else {
            format!(": {}", d.problem)
        }
    );
}

/// `lifeboat drills`.
pub fn list(ws: &Workspace, json: bool, csv: Option<&Path>) -> Result<u8> {
    let drills = ws.store()?.drills()?;
    if let Some(path) = csv {
        write_csv(path, &drills)?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&drills)?);
        return Ok(0);
    }
    if drills.is_empty() {
        println!("No drills yet.");
        return Ok(0);
    }
    let rows: Vec<[String; 7]> = drills
        .iter()
        .map(|d| {
            [
                d.id.clone(),
                d.scenario.clone(),
                d.started.to_rfc3339(),
                d.status.as_str().to_string(),
                secs(d.rto_seconds),
                secs(d.rpo_seconds),
                d.problem.clone(),
            ]
        })
        .collect();
    print_table(
        [
            "ID", "SCENARIO", "STARTED", "STATUS", "RTO", "RPO", "PROBLEM",
        ],
        &rows,
    );
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

fn write_csv(path: &Path, drills: &[DrillRecord]) -> Result<()> {
    let mut out = String::from(
        "id,scenario,started,finished,status,rto_seconds,rpo_seconds,check_exit,problem\n",
    );
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    for d in drills {
        let cells = [
            d.id.clone(),
            d.scenario.clone(),
            d.started.to_rfc3339(),
            d.finished.map(|f| f.to_rfc3339()).unwrap_or_default(),
            d.status.as_str().to_string(),
            opt(d.rto_seconds),
            opt(d.rpo_seconds),
            opt(d.check_exit.map(i64::from)),
            d.problem.clone(),
        ];
        let line: Vec<String> = cells.iter().map(|s| field(s)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    write_atomically(path, out.as_bytes())
}
