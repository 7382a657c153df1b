//! The `lifeboat` command: parses arguments, loads configuration and state,
//! wires the AWS providers into the engine, and prints what happened.
//!
//! Only this binary uses `anyhow`; the crates below return typed errors.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use lifeboat_engine::cloud::Cloud;
use lifeboat_engine::plan::apply::{self, Executor, Outcome};
use lifeboat_engine::plan::{graph, planner, render};
use lifeboat_engine::plan::{Action, Plan, FORMAT_VERSION};
use lifeboat_engine::runmode::attempt;
use lifeboat_engine::state::{BackupRecord, SharedStore, Store};
use lifeboat_engine::{backup, Address};
use lifeboat_schema::{Config, Diagnostics};

mod cmd_run;
mod cmd_schedule;
mod cmd_status;
mod cmd_vpc;

#[derive(Parser)]
#[command(
    name = "lifeboat",
    version,
    about = "Backup and disaster recovery for AWS, as code"
)]
struct Cli {
    /// The configuration directory (its *.lb.hcl files form one configuration).
    #[arg(long, short = 'C', global = true, default_value = ".")]
    dir: PathBuf,
    /// Pretend the time is this instant (RFC 3339); for tests and rehearsals.
    #[arg(long, global = true, hide = true)]
    now: Option<DateTime<Utc>>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check the configuration and report every problem at once.
    Validate,
    /// Rewrite configuration files in canonical form.
    Fmt {
        /// Change nothing; exit 1 if a file is not formatted.
        #[arg(long)]
        check: bool,
        /// Files to format (default: every *.lb.hcl file of the directory).
        files: Vec<PathBuf>,
    },
    /// Show what apply would do: changes, backups retention deletes, drift.
    Plan(PlanArgs),
    /// Perform a plan: a new one (after confirmation) or a saved one.
    Apply {
        /// A plan saved with `lifeboat plan --out FILE`.
        plan_file: Option<PathBuf>,
        /// Do not ask for confirmation.
        #[arg(long)]
        auto_approve: bool,
        /// How many changes run at once.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
        parallelism: u16,
    },
    /// Back up a policy now, then apply its retention.
    Backup {
        /// The policy's name.
        policy: String,
        /// How long to wait for the snapshots to complete, e.g. 90s, 30m, 2h, 1d.
        #[arg(long, default_value = "1h", value_parser = lifeboat_schema::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Perform the scheduled work: due backups with retention, as a daemon
    /// or once (`--once`, for cron).
    Run {
        /// Perform what is due now (and what was missed within one interval) and exit.
        #[arg(long)]
        once: bool,
        /// How long each backup waits for its snapshots, e.g. 90s, 30m, 2h, 1d.
        #[arg(long, default_value = "1h", value_parser = lifeboat_schema::parse_duration)]
        timeout: std::time::Duration,
        /// Log lines for people (human) or for log collectors (json).
        #[arg(long, value_enum, default_value = "human")]
        log_format: cmd_run::LogFormat,
        /// Let idle time pass at once: jump to each next wake-up instead of
        /// sleeping (rehearsals and tests; needs --now).
        #[arg(long)]
        fast_forward: bool,
        /// Stop at this instant (RFC 3339), after the work in flight.
        #[arg(long)]
        until: Option<DateTime<Utc>>,
        /// Create calls in flight at once per account and region, shared by
        /// every policy the runner is backing up.
        #[arg(long, default_value_t = backup::PER_REGION_CONCURRENCY as u64, value_parser = clap::value_parser!(u64).range(1..=256))]
        concurrency: u64,
    },
    /// List the backup catalog, or show one backup (`backups show ID`).
    Backups {
        #[arg(long)]
        policy: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        command: Option<BackupsCommand>,
    },
    /// Per policy: the last backup, its status, the next run and open alerts.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Move a backup to the freezer: kept until unfrozen, never counted by retention.
    Freeze {
        /// The backup's id (as listed by `lifeboat backups`).
        backup_id: String,
        /// A name to remember it by.
        #[arg(long)]
        name: String,
        /// The policy, when the id alone is ambiguous.
        #[arg(long)]
        policy: Option<String>,
    },
    /// List open alerts (for example targets removed with auto_remove_targets = "alert").
    Alerts {
        #[arg(long)]
        json: bool,
    },
    /// Inspect the state.
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
    /// Break a state lock left behind by a lifeboat that is gone.
    ForceUnlock {
        /// The lock ID named in the "state is locked" message.
        id: String,
    },
    /// Capture VPC networks and inspect their versions.
    Vpc {
        #[command(subcommand)]
        command: cmd_vpc::VpcCommand,
    },
    /// When schedules run.
    Schedule {
        #[command(subcommand)]
        command: cmd_schedule::ScheduleCommand,
    },
    /// Print the plan's dependency graph in Graphviz DOT.
    Graph {
        /// A saved plan (default: plan now).
        plan_file: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct PlanArgs {
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    detailed_exitcode: bool,
    /// Save the plan for `lifeboat apply FILE`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the plan as JSON.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Print the plan as Markdown (for a pull-request comment).
    #[arg(long)]
    markdown: bool,
    /// Fail (exit 1) if the plan destroys anything.
    #[arg(long)]
    deny_destroy: bool,
}

#[derive(Subcommand)]
enum BackupsCommand {
    /// One backup: snapshots, problems, and the scripts it ran with their stderr.
    Show {
        /// The backup's id (as listed by `lifeboat backups`).
        id: String,
        /// The policy, when the id alone is ambiguous.
        #[arg(long)]
        policy: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum StateCommand {
    /// List every managed address: objects, backups and snapshots.
    List,
}

/// A failure already explained to the user; only the exit code is left.
#[derive(Debug)]
struct Exit(u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0)
    }
}

impl std::error::Error for Exit {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if let Some(Exit(code)) = e.downcast_ref::<Exit>() {
                return ExitCode::from(*code);
            }
            eprintln!("Error: {e:#}");
            ExitCode::from(1)
        }
    }
}

struct Workspace {
    dir: PathBuf,
    config: Config,
    now: DateTime<Utc>,
}

fn print_diagnostics(d: &Diagnostics) {
    let mut err = std::io::stderr().lock();
    for diag in &d.0 {
        let _ = writeln!(err, "{diag}");
    }
}

fn load(cli: &Cli) -> Result<Workspace> {
    match lifeboat_schema::load_dir(&cli.dir) {
        Ok(loaded) => {
            print_diagnostics(&loaded.warnings);
            Ok(Workspace {
                dir: cli.dir.clone(),
                config: loaded.config,
                now: cli.now.unwrap_or_else(Utc::now),
            })
        }
        Err(diags) => {
            print_diagnostics(&diags);
            let n = diags
                .0
                .iter()
                .filter(|d| d.severity == lifeboat_schema::Severity::Error)
                .count();
            eprintln!("{n} error(s) in the configuration.");
            Err(Exit(1).into())
        }
    }
}

impl Workspace {
    fn state_path(&self) -> PathBuf {
        match &self.config.settings.state.path {
            Some(p) if Path::new(p).is_absolute() => PathBuf::from(p),
            Some(p) => self.dir.join(p),
            None => self.dir.join(".lifeboat").join("state.db"),
        }
    }

    fn store(&self) -> Result<Store> {
        Ok(Store::open(&self.state_path())?)
    }
}

async fn cloud() -> Result<Arc<dyn Cloud>> {
    let c = lifeboat_providers::AwsCloud::new();
    Ok(Arc::new(c))
}

async fn make_plan(ws: &Workspace, store: &mut Store) -> Result<Plan> {
    let state = store.load()?;
    let sources = lifeboat_engine::vpc::clone::catalog(store, &ws.config)?;
    let observed = observe(ws, &state, sources).await?;
    Ok(planner::plan(&ws.config, &state, &observed, ws.now)?)
}

/// What live AWS has for the plan: targets and snapshots, and for VPC
/// clones the destination zones.
async fn observe(
    ws: &Workspace,
    state: &lifeboat_engine::state::Snapshot,
    clone_sources: std::collections::BTreeMap<String, lifeboat_engine::vpc::clone::CloneSource>,
) -> Result<planner::Observation> {
    let cloud = cloud().await?;
    let mut observed = planner::observe(cloud.clone(), &ws.config, state).await?;
    let accounts = planner::known_accounts(&ws.config, state)?;
    observed.clones =
        lifeboat_engine::vpc::clone::observe(cloud, &ws.config, &accounts, clone_sources).await?;
    Ok(observed)
}

/// Holds the state lock for the duration of `f`, and releases it whatever
/// `f` returns.
async fn locked<T>(
    store: SharedStore,
    operation: &str,
    f: impl AsyncFnOnce(String) -> Result<T>,
) -> Result<T> {
    let lock = store.lock().expect("store").lock(operation)?;
    // Keep the lock alive while `f` works (a confirmation prompt, a long wait
    // for snapshots), so that it never expires under a live holder.
    let heartbeat = {
        let store = store.clone();
        let id = lock.id.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                let renewed = store.lock().expect("store").renew_lock(&id);
                if let Err(e) = renewed {
                    eprintln!("Error: {e}");
                    return;
                }
            }
        })
    };
    let out = f(lock.id.clone()).await;
    heartbeat.abort();
    let released = store.lock().expect("store").unlock(&lock.id);
    let out = out?;
    released?;
    Ok(out)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp-lifeboat");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

async fn run(cli: Cli) -> Result<u8> {
    match &cli.command {
        Command::Validate => {
            let ws = load(&cli)?;
            let lints = lifeboat_engine::runmode::schedule::lint(&ws.config, ws.now);
            print_diagnostics(&Diagnostics(lints));
            println!("Configuration is valid.");
            Ok(0)
        }
        Command::Fmt { check, files } => fmt(&cli.dir, *check, files),
        Command::Plan(args) => {
            let ws = load(&cli)?;
            let mut store = ws.store()?;
            let plan = make_plan(&ws, &mut store).await?;
            if args.json {
                print!("{}", render::json(&plan));
            } else if args.markdown {
                print!("{}", render::markdown(&plan));
            } else {
                print!("{}", render::human(&plan));
                print!("{}", cmd_status::next_runs_text(&ws.config, ws.now));
            }
            if let Some(out) = &args.out {
                write_atomically(out, serde_json::to_string_pretty(&plan)?.as_bytes())?;
                if !args.json && !args.markdown {
                    println!(
                        "\nSaved the plan to {}. Apply it with: lifeboat apply {}",
                        out.display(),
                        out.display()
                    );
                }
            }
            if args.deny_destroy && plan.destroys() {
                eprintln!(
                    "Error: the plan destroys {} object(s) and --deny-destroy is set.",
                    plan.summary.destroy
                );
                return Ok(1);
            }
            Ok(if args.detailed_exitcode && !plan.is_empty() {
                2
            } else {
                0
            })
        }
        Command::Apply {
            plan_file,
            auto_approve,
            parallelism,
        } => {
            let ws = load(&cli)?;
            let store = Arc::new(Mutex::new(ws.store()?));
            let saved = match plan_file {
                Some(f) => Some(read_plan(f)?),
                None => None,
            };
            let now = ws.now;
            let interactive = std::io::stdin().is_terminal();
            if saved.is_none() && !auto_approve && !interactive {
                bail!("apply needs confirmation, and standard input is not a terminal; review with `lifeboat plan` and pass --auto-approve");
            }
            let store2 = store.clone();
            locked(store.clone(), "apply", async move |lock_id| {
                let plan = match saved {
                    Some(plan) => {
                        let s = store2.lock().expect("store");
                        let (lineage, serial) = (s.lineage()?, s.serial()?);
                        if plan.lineage != lineage {
                            bail!("the saved plan was made for another state (lineage {}, this state is {lineage}); make a new plan", plan.lineage);
                        }
                        if plan.serial != serial {
                            bail!("the saved plan is stale: it was made at state serial {}, and the state is now at serial {serial}; make a new plan", plan.serial);
                        }
                        plan
                    }
                    None => {
                        let plan = {
                            let (state, sources) = {
                                let mut s = store2.lock().expect("store");
                                (s.load()?, lifeboat_engine::vpc::clone::catalog(&s, &ws.config)?)
                            };
                            let observed = observe(&ws, &state, sources).await?;
                            planner::plan(&ws.config, &state, &observed, now)?
                        };
                        print!("{}", render::human(&plan));
                        if plan.is_empty() {
                            return Ok(0);
                        }
                        if !auto_approve && !confirm()? {
                            println!("Apply cancelled.");
                            return Ok(1);
                        }
                        plan
                    }
                };
                if plan.is_empty() {
                    println!("No changes. Nothing to apply.");
                    return Ok(0);
                }
                let state = store2.lock().expect("store").load()?;
                let mut accounts = planner::known_accounts(&ws.config, &state)?;
                for c in &plan.changes {
                    if let (Address::Account { name }, Some(after)) = (&c.address, &c.after) {
                        if let Ok(a) = serde_json::from_value(after.clone()) {
                            accounts.insert(name.clone(), a);
                        }
                    }
                }
                let stop = stop_on_signal();
                let exec = Arc::new(Executor {
                    cloud: cloud().await?,
                    accounts,
                    store: store2.clone(),
                    now,
                    lock_id: Some(lock_id),
                    stop: stop.clone(),
                });
                println!();
                let report = apply::apply(&plan, exec, *parallelism as usize, |c, o| {
                    print_outcome(c.action, &c.address, o)
                })
                .await;
                let clean = report.failed() == 0 && report.interrupted() == 0;
                println!(
                    "\nApply {}: {} done, {} failed, {} skipped, {} not started.",
                    if clean { "complete" } else if report.interrupted() > 0 { "interrupted" } else { "finished with errors" },
                    report.done(),
                    report.failed(),
                    report.skipped(),
                    report.interrupted()
                );
                Ok(if clean { 0 } else { 1 })
            })
            .await
        }
        Command::Backup { policy, timeout } => {
            let wait = backup::Wait {
                timeout: *timeout,
                ..Default::default()
            };
            let ws = load(&cli)?;
            let store = Arc::new(Mutex::new(ws.store()?));
            let now = ws.now;
            let policy = policy.clone();
            let store2 = store.clone();
            let ctx = attempt::Context {
                config_dir: ws.dir.clone(),
                notifications: ws.config.notifications.clone(),
                limits: backup::Limits::default(),
            };
            locked(store, "backup", async move |_| {
                for b in backup::reconcile_interrupted(cloud().await?, store2.clone(), now).await? {
                    println!(
                        "Closed backup {} of policy {} left running by an interrupted lifeboat: failed, {} snapshot(s) in the catalog.",
                        b.id,
                        b.policy,
                        b.snapshots.len()
                    );
                }
                // The policy's scripts, timeout, success rule and alerts
                // apply as in a scheduled run; an ad hoc backup is one
                // attempt, never retried.
                let run = attempt::run(
                    cloud().await?,
                    store2,
                    &policy,
                    &attempt::Trigger::AdHoc,
                    now,
                    wait,
                    &ctx,
                )
                .await;
                if let Some(a) = &run.alert_opened {
                    println!("Alert {} opened for policy {}: {}", a.id, a.policy, a.message);
                }
                for a in &run.alerts_closed {
                    println!("Alert {} of policy {} closed.", a.id, a.policy);
                }
                for e in &run.notify_errors {
                    eprintln!("Warning: {e}");
                }
                let result = run.result?;
                let b = &result.record;
                let targets: std::collections::BTreeSet<&str> =
                    b.snapshots.iter().map(|s| s.target.as_str()).collect();
                println!(
                    "Backup {} of policy {}: {} ({} snapshot(s) of {} target(s))",
                    b.id,
                    b.policy,
                    b.status.as_str(),
                    b.snapshots.len(),
                    targets.len()
                );
                for p in &b.problems {
                    println!("  problem: {p}");
                }
                let r = &result.retention;
                if !r.outcomes.is_empty() {
                    println!("Retention:");
                    for (addr, o) in &r.outcomes {
                        print_outcome(Action::Delete, addr, o);
                    }
                }
                if r.failed() > 0 {
                    eprintln!("Error: retention could not delete everything it should; the next backup or apply tries again.");
                    return Ok(3);
                }
                Ok(match b.status {
                    lifeboat_engine::state::BackupStatus::Success => 0,
                    lifeboat_engine::state::BackupStatus::Partial => 2,
                    lifeboat_engine::state::BackupStatus::Failed
                    | lifeboat_engine::state::BackupStatus::Running => 1,
                })
            })
            .await
        }
        Command::Run {
            once,
            timeout,
            log_format,
            fast_forward,
            until,
            concurrency,
        } => {
            // Refused before the state is opened: nothing is touched.
            if *fast_forward && cli.now.is_none() {
                bail!("--fast-forward needs --now: a runner on the real clock cannot skip time");
            }
            if let (Some(until), Some(now)) = (until, cli.now) {
                if *until <= now {
                    bail!("--until {until} is not after --now {now}: there is nothing to run");
                }
            }
            let ws = load(&cli)?;
            let store = Arc::new(Mutex::new(ws.store()?));
            let wait = backup::Wait {
                timeout: *timeout,
                ..Default::default()
            };
            let mode = cmd_run::Mode {
                once: *once,
                fast_forward: *fast_forward,
                until: *until,
                concurrency: usize::try_from(*concurrency).unwrap_or(1),
            };
            cmd_run::run(
                cloud().await?,
                store,
                &ws.config,
                cli.now,
                mode,
                wait,
                *log_format,
                stop_on_signal(),
                &ws.dir,
            )
            .await
        }
        Command::Backups {
            command: Some(BackupsCommand::Show { id, policy, json }),
            ..
        } => {
            let ws = load(&cli)?;
            cmd_status::show_backup(&ws.store()?, id, policy.as_deref(), *json)
        }
        Command::Status { json } => {
            let ws = load(&cli)?;
            cmd_status::status(&mut ws.store()?, &ws.config, ws.now, *json)
        }
        Command::Backups {
            policy,
            json,
            command: None,
        } => {
            let ws = load(&cli)?;
            let store = ws.store()?;
            let list = store.backups(policy.as_deref())?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print_backups(&list);
            }
            Ok(0)
        }
        Command::Freeze {
            backup_id,
            name,
            policy,
        } => {
            let ws = load(&cli)?;
            let mut store = ws.store()?;
            let (pol, id) = match backup_id.parse::<Address>() {
                Ok(Address::Backup { policy, id }) => (Some(policy), id),
                _ => (policy.clone(), backup_id.clone()),
            };
            let matches: Vec<BackupRecord> = store
                .backups(pol.as_deref())?
                .into_iter()
                .filter(|b| b.id == id)
                .collect();
            let b = match matches.as_slice() {
                [] => bail!("no backup with id {id:?}; `lifeboat backups` lists them"),
                [b] => b.clone(),
                _ => bail!("backup id {id:?} exists in several policies; add --policy"),
            };
            if let Some(f) = &b.frozen {
                bail!(
                    "backup {} of policy {} is already frozen as {:?}",
                    b.id,
                    b.policy,
                    f.name
                );
            }
            let lock = store.lock("freeze")?;
            let r = store.transaction(|tx| tx.freeze(&b.policy, &b.id, name, ws.now));
            store.unlock(&lock.id)?;
            r?;
            println!(
                "Froze backup {} of policy {} as {name:?}: retention will keep it.",
                b.id, b.policy
            );
            Ok(0)
        }
        Command::Alerts { json } => {
            let ws = load(&cli)?;
            let alerts = ws.store()?.open_alerts()?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&alerts)?);
            } else if alerts.is_empty() {
                println!("No open alerts.");
            } else {
                for a in &alerts {
                    println!(
                        "{}  policy.{}  {}",
                        a.opened.format("%Y-%m-%dT%H:%M:%SZ"),
                        a.policy,
                        a.message
                    );
                }
            }
            Ok(0)
        }
        Command::State {
            command: StateCommand::List,
        } => {
            let ws = load(&cli)?;
            let mut store = ws.store()?;
            let state = store.load()?;
            let mut all: Vec<Address> = state.objects.keys().cloned().collect();
            for b in &state.backups {
                all.push(b.address());
                all.extend(b.snapshots.iter().map(|s| s.address()));
            }
            all.sort();
            for a in all {
                println!("{a}");
            }
            Ok(0)
        }
        Command::ForceUnlock { id } => {
            let ws = load(&cli)?;
            let mut store = ws.store()?;
            let held = store.force_unlock(id)?;
            println!(
                "Broke the lock {} held by {} for {}.",
                held.id, held.holder, held.operation
            );
            Ok(0)
        }
        Command::Vpc { command } => cmd_vpc::run(&cli, command).await,
        Command::Schedule { command } => {
            let ws = load(&cli)?;
            cmd_schedule::run(&ws.config, ws.now, command)
        }
        Command::Graph { plan_file } => {
            let plan = match plan_file {
                Some(f) => read_plan(f)?,
                None => {
                    let ws = load(&cli)?;
                    let mut store = ws.store()?;
                    make_plan(&ws, &mut store).await?
                }
            };
            print!("{}", graph::to_dot(&plan));
            Ok(0)
        }
    }
}

fn read_plan(path: &Path) -> Result<Plan> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the plan {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a Lifeboat plan", path.display()))?;
    let version = v
        .get("format_version")
        .and_then(|x| x.as_str())
        .unwrap_or("");
    if version != FORMAT_VERSION {
        bail!(
            "{} has plan format {version:?}; this lifeboat reads format {FORMAT_VERSION:?}",
            path.display()
        );
    }
    serde_json::from_value(v).with_context(|| format!("{} is not a Lifeboat plan", path.display()))
}

fn confirm() -> Result<bool> {
    print!("\nDo you want to perform these actions? Only 'yes' will be accepted: ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

fn print_outcome(action: Action, addr: &Address, o: &Outcome) {
    let verb = match action {
        Action::Create => "created",
        Action::Update => "updated",
        Action::Delete => "deleted",
        Action::Replace => "replaced",
        Action::Read => "forgotten",
    };
    match o {
        Outcome::Done => println!("  {addr}: {verb}"),
        Outcome::Failed(e) => println!("  {addr}: FAILED: {e}"),
        Outcome::Skipped(dep) => println!("  {addr}: skipped ({dep} failed)"),
        Outcome::Interrupted => println!("  {addr}: not started (interrupted)"),
    }
}

/// A flag raised by SIGINT or SIGTERM. Apply then starts nothing new,
/// finishes and records what is in flight, and releases the state lock, so
/// an interrupted apply leaves state true to AWS and can simply be re-planned.
fn stop_on_signal() -> Arc<std::sync::atomic::AtomicBool> {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        eprintln!("Interrupted: finishing the changes in flight, starting no new ones.");
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    stop
}

fn print_backups(list: &[BackupRecord]) {
    if list.is_empty() {
        println!("No backups.");
        return;
    }
    let fmt_t = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let rows: Vec<[String; 6]> = list
        .iter()
        .map(|b| {
            let status = match &b.frozen {
                Some(f) => format!("{} (frozen: {})", b.status.as_str(), f.name),
                None => b.status.as_str().to_string(),
            };
            [
                b.id.clone(),
                b.policy.clone(),
                fmt_t(b.started),
                b.finished.map(fmt_t).unwrap_or_else(|| "-".into()),
                status,
                b.snapshots
                    .iter()
                    .map(|s| s.id.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            ]
        })
        .collect();
    let head = ["ID", "POLICY", "STARTED", "FINISHED", "STATUS", "SNAPSHOTS"];
    let mut w = head.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let print_row = |r: &[&str]| {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == r.len() {
                    c.to_string()
                } else {
                    format!("{c:<width$}", width = w[i])
                }
            })
            .collect();
        println!("{}", cells.join("  ").trim_end());
    };
    print_row(&head);
    for r in &rows {
        print_row(&r.iter().map(String::as_str).collect::<Vec<_>>());
    }
}

fn fmt(dir: &Path, check: bool, files: &[PathBuf]) -> Result<u8> {
    let files: Vec<PathBuf> = if files.is_empty() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            // Named as diagnostics name them: `main.lb.hcl`, not `./main.lb.hcl`.
            .filter_map(|e| {
                e.ok().map(|e| {
                    if dir == Path::new(".") {
                        PathBuf::from(e.file_name())
                    } else {
                        e.path()
                    }
                })
            })
            .filter(|p| p.to_string_lossy().ends_with(lifeboat_schema::FILE_SUFFIX) && p.is_file())
            .collect();
        v.sort();
        v
    } else {
        files.to_vec()
    };
    let mut unformatted = 0;
    let mut errors = 0;
    for f in &files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        match lifeboat_schema::format_source(f, &text) {
            Err(d) => {
                print_diagnostics(&d);
                errors += 1;
            }
            Ok(out) if out != text => {
                unformatted += 1;
                if check {
                    println!("{}", f.display());
                } else {
                    write_atomically(f, out.as_bytes())?;
                    println!("{}", f.display());
                }
            }
            Ok(_) => {}
        }
    }
    if errors > 0 {
        return Ok(1);
    }
    if check && unformatted > 0 {
        eprintln!("{unformatted} file(s) need formatting; run `lifeboat fmt`.");
        return Ok(1);
    }
    Ok(0)
}
