//! The `lifeboat` command: its arguments, and which command module each
//! one runs. What every command stands on (configuration, state, clock,
//! AWS) is in `workspace`, shared printing in `output`, and each command in
//! `cmd/`.
//!
//! Only this binary uses `anyhow`; the crates below return typed errors.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use lifeboat_engine::backup;
use lifeboat_engine::runmode::metrics::RunMetrics;

use workspace::{stop_on_signal, Workspace};

#[cfg(test)]
mod cli_examples_test;
mod cmd;
mod colour;
mod files;
mod listen;
mod output;
mod sdk_log;
mod snippet;
mod workspace;

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
    /// Never colour the output (it is coloured only on a terminal, and
    /// never when NO_COLOR is set).
    #[arg(long, global = true)]
    no_color: bool,
    /// Write saved plans, reports and templates through a symbolic link at
    /// the path given, and open a state file that is one (refused
    /// otherwise: a link planted there could aim the write elsewhere).
    #[arg(long, global = true)]
    follow_symlinks: bool,
    #[command(subcommand)]
    command: Command,
}

/// `--lock-timeout`, on every command that takes the state lock.
#[derive(clap::Args, Clone, Copy)]
struct LockWait {
    /// How long to wait for the state lock while another lifeboat holds it,
    /// e.g. 30s, 5m (default: fail at once).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = lifeboat_schema::parse_duration)]
    lock_timeout: std::time::Duration,
}

#[derive(Subcommand)]
enum Command {
    /// Check the configuration and report every problem at once.
    Validate {
        /// The diagnostics as one JSON document on stdout (same as
        /// `--format json`).
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// text (default, on stderr), json, or github (workflow commands
        /// that annotate a pull request's lines).
        #[arg(long, value_enum, default_value_t)]
        format: cmd::validate::Format,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `lifeboat man | man -l -`.
    Man,
    /// Rewrite configuration files in canonical form.
    Fmt {
        /// Change nothing; exit 1 if a file is not formatted.
        #[arg(long)]
        check: bool,
        /// Files to format (default: every *.lb.hcl file of the directory).
        files: Vec<PathBuf>,
    },
    /// Show what apply would do: changes, backups retention deletes, drift.
    Plan(cmd::plan::PlanArgs),
    /// Render a saved plan as `plan` printed it (text, --json or
    /// --markdown); reads nothing but the file.
    Show(cmd::show::ShowArgs),
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
        /// Fail (exit 1, nothing applied) if the plan destroys anything.
        #[arg(long)]
        deny_destroy: bool,
        /// Allow deleting every backup of a policy removed from the
        /// configuration (refused without it).
        #[arg(long)]
        allow_destroy_backups: bool,
        /// Apply only the changes at or under ADDRESS (repeatable), and
        /// those they wait for; refused if that would delete backup data
        /// while other changes are left out.
        #[arg(long = "target", value_name = "ADDRESS", conflicts_with = "plan_file")]
        targets: Vec<lifeboat_engine::Address>,
        #[command(flatten)]
        lock: LockWait,
    },
    /// Rebuild the backup catalog from the tags of what Lifeboat made in
    /// AWS (a lost or new state file), after confirmation.
    Import {
        /// Do not ask for confirmation.
        #[arg(long)]
        auto_approve: bool,
        #[command(flatten)]
        lock: LockWait,
    },
    /// Back up a policy now, then apply its retention.
    Backup {
        /// The policy's name.
        policy: String,
        /// How long to wait for the snapshots to complete, e.g. 90s, 30m, 2h, 1d.
        #[arg(long, default_value = "1h", value_parser = lifeboat_schema::parse_duration)]
        timeout: std::time::Duration,
        /// Start the backup's DR copies and return without waiting for them
        /// (`lifeboat run` finishes them).
        #[arg(long)]
        no_wait_dr: bool,
        /// DR copies in flight at once per destination region and account
        /// (AWS allows 20).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=20))]
        dr_concurrency: u64,
        #[command(flatten)]
        lock: LockWait,
    },
    /// Perform the scheduled work: due backups with retention, as a daemon
    /// or once (`--once`, for cron).
    Run(RunArgs),
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
        #[command(flatten)]
        lock: LockWait,
    },
    /// List open alerts (for example targets removed with auto_remove_targets = "alert").
    Alerts {
        #[arg(long)]
        json: bool,
    },
    /// Disaster recovery: `dr expired` lists copies retention expired where
    /// Lifeboat does not delete; `dr check` runs the secured-DR check.
    Dr {
        #[command(subcommand)]
        command: cmd::dr::DrCommand,
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
        command: cmd::vpc::VpcCommand,
    },
    /// When schedules run.
    Schedule {
        #[command(subcommand)]
        command: cmd::schedule::ScheduleCommand,
    },
    /// Print the plan's dependency graph in Graphviz DOT.
    Graph {
        /// A saved plan (default: plan now).
        plan_file: Option<PathBuf>,
    },
    /// Restore an instance, volume, RDS instance or Aurora cluster from a
    /// backup or a DR copy: plan, ask, perform.
    Restore {
        #[command(subcommand)]
        command: cmd::restore::RestoreCommand,
    },
    /// List restores: what, from which backup, into where, RTO and RPO.
    Restores {
        #[arg(long)]
        json: bool,
    },
    /// Carry out a recovery_scenario: every step's restores in order, from
    /// the latest backups (or those at or before --backup).
    Recover(cmd::recover::RecoverArgs),
    /// Rehearse a recovery_scenario: recover, run its check, tear down what
    /// the drill made. Never asks; exits 1 when the drill fails.
    Drill {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// List drills: scenario, result, RTO and RPO.
    Drills {
        #[arg(long)]
        json: bool,
        /// Also write them to FILE as CSV.
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
    },
    /// IAM: `iam policy` prints the policy Lifeboat needs per account.
    Iam {
        #[command(subcommand)]
        command: cmd::iam::IamCommand,
    },
    /// One tag scan now: the resources carrying the backup tag and the
    /// membership changes the next backups would make. Writes nothing.
    Scan {
        /// Only this account.
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Reports as CSV (or --json): backups, snapshots (both with the records
    /// deleted within report_retention), protected and unprotected
    /// resources (listed in AWS). Writes nothing to the state.
    Report(cmd::report::ReportArgs),
    /// Resource control: `rc off|on GROUP` now, `rc status`, `rc log`.
    Rc {
        #[command(subcommand)]
        command: cmd::rc::RcCommand,
    },
}

/// The arguments of `lifeboat run`.
#[derive(clap::Args)]
struct RunArgs {
    /// Perform what is due now (and what was missed within one interval) and exit.
    #[arg(long)]
    once: bool,
    /// How long each backup waits for its snapshots, e.g. 90s, 30m, 2h, 1d.
    #[arg(long, default_value = "1h", value_parser = lifeboat_schema::parse_duration)]
    timeout: std::time::Duration,
    /// Log lines for people (human) or for log collectors (json).
    #[arg(long, value_enum, default_value = "human")]
    log_format: cmd::run::LogFormat,
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
    /// DR copies in flight at once per destination region and account
    /// (AWS allows 20), shared by every policy.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=20))]
    dr_concurrency: u64,
    /// How long the runner's lease (and its state lock) lives without
    /// renewal: a standby runner takes over within this time of the
    /// leader's death. Renewed every third of it.
    #[arg(long, default_value = "30s", value_parser = lifeboat_schema::parse_duration)]
    lease_ttl: std::time::Duration,
    /// Serve /metrics (Prometheus text format) and /healthz over HTTP on
    /// this address while the runner runs, e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<std::net::SocketAddr>,
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

impl Command {
    /// Does the command only read (state, configuration, a saved plan) and
    /// print? Such a command may stop anywhere.
    fn changes_nothing(&self) -> bool {
        match self {
            Command::Validate { .. }
            | Command::Completions { .. }
            | Command::Man
            | Command::Plan(_)
            | Command::Show(_)
            | Command::Backups { .. }
            | Command::Status { .. }
            | Command::Graph { .. }
            | Command::Restores { .. }
            | Command::Report(_)
            | Command::Scan { .. } => true,
            Command::State { command } => {
                matches!(
                    command,
                    StateCommand::List { .. } | StateCommand::Show { .. }
                )
            }
            _ => false,
        }
    }

    /// Does the command only read the state? It then opens it so that
    /// nothing is written, created or migrated there (see
    /// `Store::open_read_only`).
    fn reads_state_only(&self) -> bool {
        self.changes_nothing()
            || matches!(
                self,
                Command::Alerts { .. }
                    | Command::Drills { .. }
                    | Command::Dr {
                        command: cmd::dr::DrCommand::Expired { .. }
                    }
                    | Command::Rc {
                        command: cmd::rc::RcCommand::Status { .. } | cmd::rc::RcCommand::Log { .. }
                    }
                    | Command::State {
                        command: StateCommand::Pull { .. }
                    }
            )
    }
}

#[derive(Subcommand)]
enum StateCommand {
    /// List every managed address: objects, backups and snapshots.
    List {
        /// One JSON array of `{address, from_template?}`.
        #[arg(long)]
        json: bool,
    },
    /// Print what the state records at one address (JSON), e.g.
    /// `policy.web` or `backup.web["2026-11-22T10:17:00Z"]`.
    Show { address: String },
    /// Create the state's home (the DynamoDB table, with point-in-time
    /// recovery and deletion protection, or the SQLite file) and start the
    /// workspace; on an existing table, check it.
    Init {
        /// Turn on point-in-time recovery and deletion protection of an
        /// existing table where they are off.
        #[arg(long)]
        repair: bool,
    },
    /// Print the workspace's state: a summary, every row (--json), or a
    /// standalone SQLite copy (--out FILE), for backups of the state.
    Pull {
        #[arg(long)]
        json: bool,
        /// Write a SQLite state file (must not exist) instead.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Forget records without deleting anything in AWS: managed objects
    /// (planned again from the configuration) or whole finished backups
    /// (their artifacts stay in AWS, unmanaged). Asks first.
    Rm {
        /// Addresses as `state list` prints them.
        #[arg(required = true)]
        addresses: Vec<String>,
        /// Do not ask for confirmation.
        #[arg(long)]
        auto_approve: bool,
        #[command(flatten)]
        lock: LockWait,
    },
    /// Fold a DynamoDB workspace's commit log into a copy of its rows, so
    /// that a new host's first read stays short; run it on a schedule.
    Compact,
    /// Copy the workspace to the other backend, where the state block puts
    /// it for that backend, under both locks, checked by a digest.
    Migrate {
        #[arg(long, value_enum)]
        to: cmd::state::Backend,
        /// Do not ask for confirmation.
        #[arg(long)]
        auto_approve: bool,
        #[command(flatten)]
        lock: LockWait,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    colour::init(cli.no_color);
    sdk_log::init();
    files::follow_symlinks(cli.follow_symlinks);
    if cli.command.changes_nothing() {
        output::stop_quietly_on_broken_pipe();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    output::exit_code(rt.block_on(run(cli)))
}

fn load(cli: &Cli) -> Result<Workspace> {
    let mut ws = workspace::load(&cli.dir, cli.now)?;
    ws.reading = cli.command.reads_state_only();
    Ok(ws)
}

/// The workspace of a command that takes the state lock.
fn load_locking(cli: &Cli, lock: LockWait) -> Result<Workspace> {
    let mut ws = load(cli)?;
    ws.lock_timeout = lock.lock_timeout;
    Ok(ws)
}

async fn run(cli: Cli) -> Result<u8> {
    match &cli.command {
        Command::Validate { json, format } => {
            let format = if *json {
                cmd::validate::Format::Json
            } else {
                *format
            };
            cmd::validate::run(&cli.dir, cli.now, format)
        }
        Command::Completions { shell } => completions(*shell),
        Command::Man => {
            use clap::CommandFactory;
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(0)
        }
        Command::Fmt { check, files } => cmd::fmt::run(&cli.dir, *check, files),
        Command::Plan(args) => cmd::plan::run(&load(&cli)?, args).await,
        Command::Show(args) => cmd::show::run(args),
        Command::Apply {
            plan_file,
            auto_approve,
            parallelism,
            deny_destroy,
            allow_destroy_backups,
            targets,
            lock,
        } => {
            let gates = cmd::apply::Gates {
                deny_destroy: *deny_destroy,
                allow_destroy_backups: *allow_destroy_backups,
            };
            cmd::apply::run(
                load_locking(&cli, *lock)?,
                plan_file.as_deref(),
                *auto_approve,
                *parallelism,
                gates,
                targets,
            )
            .await
        }
        Command::Import { auto_approve, lock } => {
            cmd::import::run(load_locking(&cli, *lock)?, *auto_approve).await
        }
        Command::Backup {
            policy,
            timeout,
            no_wait_dr,
            dr_concurrency,
            lock,
        } => {
            let dr = cmd::backup::DrOptions {
                wait: !*no_wait_dr,
                per_destination: usize::try_from(*dr_concurrency).unwrap_or(1),
            };
            cmd::backup::run(load_locking(&cli, *lock)?, policy, *timeout, dr).await
        }
        Command::Run(args) => run_mode(&cli, args).await,
        Command::Backups {
            command: Some(BackupsCommand::Show { id, policy, json }),
            ..
        } => cmd::backups::show(&load(&cli)?, id, policy.as_deref(), *json),
        Command::Status { json } => cmd::status::run(&load(&cli)?, *json),
        Command::Backups {
            policy,
            json,
            command: None,
        } => cmd::backups::list(&load(&cli)?, policy.as_deref(), *json),
        Command::Freeze {
            backup_id,
            name,
            policy,
            lock,
        } => {
            let ws = load_locking(&cli, *lock)?;
            cmd::backups::freeze(&ws, backup_id, name, policy.as_deref()).await
        }
        Command::Alerts { json } => cmd::alerts::run(&load(&cli)?, *json),
        Command::State { command } => match command {
            StateCommand::List { json } => cmd::state::list(&load(&cli)?, *json),
            StateCommand::Show { address } => cmd::state::show(&load(&cli)?, address),
            StateCommand::Init { repair } => cmd::state::init(&load(&cli)?, *repair),
            StateCommand::Compact => cmd::state::compact(&load(&cli)?),
            StateCommand::Pull { json, out } => {
                cmd::state::pull(&load(&cli)?, *json, out.as_deref())
            }
            StateCommand::Rm {
                addresses,
                auto_approve,
                lock,
            } => cmd::state::rm(&load_locking(&cli, *lock)?, addresses, *auto_approve).await,
            StateCommand::Migrate {
                to,
                auto_approve,
                lock,
            } => cmd::state::migrate(&load_locking(&cli, *lock)?, *to, *auto_approve).await,
        },
        Command::ForceUnlock { id } => cmd::force_unlock::run(&load(&cli)?, id),
        Command::Vpc { command } => cmd::vpc::run(&load(&cli)?, command).await,
        Command::Schedule { command } => cmd::schedule::run(&load(&cli)?, command),
        Command::Graph { plan_file } => cmd::graph::run(plan_file.as_deref(), || load(&cli)).await,
        Command::Dr { command } => cmd::dr::run(&load(&cli)?, command).await,
        Command::Restore { command } => cmd::restore::run(&load(&cli)?, command).await,
        Command::Restores { json } => cmd::restore::list(&load(&cli)?, *json),
        Command::Recover(args) => cmd::recover::recover(&load(&cli)?, args).await,
        Command::Drill { name, json } => cmd::recover::drill(&load(&cli)?, name, *json).await,
        Command::Drills { json, csv } => cmd::recover::list(&load(&cli)?, *json, csv.as_deref()),
        Command::Iam { command } => cmd::iam::run(&load(&cli)?, command),
        Command::Rc { command } => cmd::rc::run(&load(&cli)?, command).await,
        Command::Report(args) => cmd::report::run(&load(&cli)?, args).await,
        Command::Scan { account, json } => {
            cmd::scan::run(&load(&cli)?, account.as_deref(), *json).await
        }
    }
}

/// `lifeboat completions SHELL`.
fn completions(shell: clap_complete::Shell) -> Result<u8> {
    use clap::CommandFactory;
    let mut cli = Cli::command();
    clap_complete::generate(shell, &mut cli, "lifeboat", &mut std::io::stdout());
    Ok(0)
}

/// `lifeboat run`.
async fn run_mode(cli: &Cli, args: &RunArgs) -> Result<u8> {
    let RunArgs {
        once,
        timeout,
        log_format,
        fast_forward,
        until,
        concurrency,
        dr_concurrency,
        lease_ttl,
        listen,
    } = args;
    // Refused before the state is opened: nothing is touched.
    if *fast_forward && cli.now.is_none() {
        bail!("--fast-forward needs --now: a runner on the real clock cannot skip time");
    }
    if let (Some(until), Some(now)) = (until, cli.now) {
        if *until <= now {
            bail!("--until {until} is not after --now {now}: there is nothing to run");
        }
    }
    let ws = load(cli)?;
    // Bound before the state is opened: a port in use stops the runner
    // before it does anything.
    let listener = match listen {
        Some(addr) => Some(listen::bind(*addr).await?),
        None => None,
    };
    let store = Arc::new(Mutex::new(ws.store()?));
    let (cloud, calls) = workspace::counted_cloud(&ws).await?;
    let serve = listener.map(|listener| listen::Serve {
        listener,
        metrics: Arc::new(RunMetrics::new(calls)),
    });
    let wait = backup::Wait {
        timeout: *timeout,
        ..Default::default()
    };
    let mode = cmd::run::Mode {
        once: *once,
        fast_forward: *fast_forward,
        until: *until,
        concurrency: usize::try_from(*concurrency).unwrap_or(1),
        dr_concurrency: usize::try_from(*dr_concurrency).unwrap_or(1),
        lease_ttl: (*lease_ttl).max(std::time::Duration::from_secs(3)),
    };
    cmd::run::run(
        cloud,
        store,
        &ws.config,
        cli.now,
        mode,
        wait,
        *log_format,
        stop_on_signal(),
        &ws.dir,
        serve,
    )
    .await
}
