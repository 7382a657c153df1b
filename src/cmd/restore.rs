//! `lifeboat restore instance|volume|rds|aurora ID`: plans one restore,
//! prints it, asks, and performs it; `lifeboat restores` lists them.
//!
//! A restore does not take the state lock: it writes only its own catalog
//! rows (each a transaction), and the moment to restore is often while the
//! runner is busy. A saved restore plan (`--out`) is performed by
//! `lifeboat apply FILE`, after its state and backup are checked.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use lifeboat_engine::backup::Wait;
use lifeboat_engine::restore::plan::{self, PrivateIp, Volumes};
use lifeboat_engine::restore::reap;
use lifeboat_engine::restore::run::Runner;
use lifeboat_engine::restore::{render, Kind, Options, Request, RestorePlan, Which};
use lifeboat_engine::state::{RestoreRecord, SharedStore};

use crate::files::write_atomically;
use crate::output::{confirm, print_table};
use crate::workspace::{cloud, Workspace};

/// What every restore takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// The backup: its id, `latest` (the default), or an RFC 3339 instant
    /// (the newest backup at or before it).
    #[arg(long, default_value = "latest")]
    backup: String,
    /// Restore from the DR copies in REGION (of ACCOUNT; default the
    /// backup's account).
    #[arg(long, value_name = "REGION[:ACCOUNT]")]
    from: Option<String>,
    /// Restore into this region (from the DR copies there).
    #[arg(long)]
    to_region: Option<String>,
    /// Restore into this configured account (artifacts elsewhere are
    /// shared with it for the restore).
    #[arg(long)]
    to_account: Option<String>,
    /// A tag for what is created (repeatable), over the original's.
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    tags: Vec<String>,
    /// Perform without asking.
    #[arg(long)]
    auto_approve: bool,
    /// Print the plan and stop.
    #[arg(long)]
    plan_only: bool,
    /// Print the plan (and the result) as JSON.
    #[arg(long)]
    json: bool,
    /// Save the plan for `lifeboat apply FILE` and stop.
    #[arg(long)]
    out: Option<PathBuf>,
    /// How long to wait for what is created to run or be available.
    #[arg(long, default_value = "30m", value_parser = lifeboat_schema::parse_duration)]
    timeout: std::time::Duration,
}

#[derive(Subcommand, Debug)]
pub enum RestoreCommand {
    /// Launch an instance again from its backup (its volumes, type,
    /// placement and tags as they were).
    Instance {
        id: String,
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        subnet: Option<String>,
        #[arg(long)]
        instance_type: Option<String>,
        /// Comma-separated security group ids.
        #[arg(long, value_delimiter = ',')]
        security_groups: Option<Vec<String>>,
        #[arg(long)]
        key_name: Option<String>,
        /// An address of the subnet, or `auto`.
        #[arg(long)]
        private_ip: Option<String>,
        /// `all` (default), `root`, or comma-separated volume ids (with the root).
        #[arg(long, default_value = "all")]
        volumes: String,
        /// A file whose content is the instance's user data (not recorded at backup time).
        #[arg(long)]
        user_data: Option<PathBuf>,
    },
    /// Create a volume from its backup, optionally attached (or swapped in).
    Volume {
        id: String,
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        az: Option<String>,
        #[arg(long = "type")]
        volume_type: Option<String>,
        #[arg(long)]
        size: Option<i32>,
        #[arg(long)]
        iops: Option<i32>,
        #[arg(long)]
        kms_key: Option<String>,
        #[arg(long)]
        attach_to: Option<String>,
        #[arg(long)]
        device: Option<String>,
        /// Detach the volume now at the device (it is kept) and attach the restored one.
        #[arg(long)]
        swap: bool,
    },
    /// Restore an RDS instance from its DB snapshot.
    Rds {
        id: String,
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        identifier: Option<String>,
        #[arg(long)]
        class: Option<String>,
        #[arg(long)]
        subnet_group: Option<String>,
    },
    /// Restore an Aurora cluster and its instances from its cluster snapshot.
    Aurora {
        id: String,
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        identifier: Option<String>,
        #[arg(long)]
        instance_class: Option<String>,
        #[arg(long)]
        subnet_group: Option<String>,
    },
}

/// The request and shared options a subcommand stands for.
fn request(cmd: &RestoreCommand) -> Result<(Request, &Common)> {
    let mut o = Options::default();
    let (kind, id, common) = match cmd {
        RestoreCommand::Instance {
            id,
            common,
            subnet,
            instance_type,
            security_groups,
            key_name,
            private_ip,
            volumes,
            user_data,
        } => {
            o.subnet = subnet.clone();
            o.instance_type = instance_type.clone();
            o.security_groups = security_groups.clone();
            o.key_name = key_name.clone();
            o.private_ip = private_ip.as_ref().map(|p| match p.as_str() {
                "auto" => PrivateIp::Auto,
                ip => PrivateIp::Ip(ip.to_string()),
            });
            o.volumes = match volumes.as_str() {
                "all" => Volumes::All,
                "root" => Volumes::Root,
                list => Volumes::Only(list.split(',').map(|v| v.trim().to_string()).collect()),
            };
            if let Some(f) = user_data {
                o.user_data = Some(
                    std::fs::read_to_string(f)
                        .with_context(|| format!("cannot read {}", f.display()))?,
                );
            }
            (Kind::Instance, id, common)
        }
        RestoreCommand::Volume {
            id,
            common,
            az,
            volume_type,
            size,
            iops,
            kms_key,
            attach_to,
            device,
            swap,
        } => {
            o.az = az.clone();
            o.volume_type = volume_type.clone();
            o.size_gib = *size;
            o.iops = *iops;
            o.kms_key = kms_key.clone();
            o.attach_to = attach_to.clone();
            o.device = device.clone();
            o.swap = *swap;
            (Kind::Volume, id, common)
        }
        RestoreCommand::Rds {
            id,
            common,
            identifier,
            class,
            subnet_group,
        } => {
            o.identifier = identifier.clone();
            o.class = class.clone();
            o.subnet_group = subnet_group.clone();
            (Kind::Rds, id, common)
        }
        RestoreCommand::Aurora {
            id,
            common,
            identifier,
            instance_class,
            subnet_group,
        } => {
            o.identifier = identifier.clone();
            o.instance_class = instance_class.clone();
            o.subnet_group = subnet_group.clone();
            (Kind::Aurora, id, common)
        }
    };
    for t in &common.tags {
        let Some((k, v)) = t.split_once('=') else {
            bail!("--tag {t:?}: write KEY=VALUE");
        };
        o.tags.push((k.to_string(), v.to_string()));
    }
    let from = common.from.as_deref().map(|f| {
        let (r, a) = lifeboat_engine::state::Destination::split(f);
        (r.to_string(), a.map(str::to_string))
    });
    let which: Which = common.backup.parse().map_err(anyhow::Error::msg)?;
    Ok((
        Request {
            kind,
            target: id.clone(),
            which,
            from,
            to_account: common.to_account.clone(),
            to_region: common.to_region.clone(),
            options: o,
            drill: None,
        },
        common,
    ))
}

pub async fn run(ws: &Workspace, cmd: &RestoreCommand) -> Result<u8> {
    let (req, common) = request(cmd)?;
    let timeout = common.timeout;
    let store: SharedStore = Arc::new(Mutex::new(ws.store()?));
    let cloud = cloud(ws).await?;
    let p = plan::plan(&cloud, &store, &ws.config.accounts, &req, ws.now).await?;
    if common.json {
        println!("{}", serde_json::to_string_pretty(&p)?);
    } else {
        print!("{}", render::human(&p, ws.now));
    }
    if let Some(out) = &common.out {
        write_atomically(out, serde_json::to_string_pretty(&p)?.as_bytes())?;
        if !common.json {
            println!(
                "\nSaved the restore plan to {}: perform it with `lifeboat apply {}`.",
                out.display(),
                out.display()
            );
        }
        return Ok(0);
    }
    if common.plan_only {
        return Ok(0);
    }
    if !common.auto_approve {
        if !std::io::stdin().is_terminal() {
            bail!("restore needs confirmation, and standard input is not a terminal: pass --auto-approve");
        }
        if !confirm("Do you want to perform this restore?")? {
            println!("Restore cancelled.");
            return Ok(1);
        }
    }
    // Planning (`--plan-only`, `--out`) writes nothing; performing does,
    // and reaps what a stopped restore left first.
    reap_interrupted(ws, &store, &cloud, common.json).await?;
    perform(
        ws,
        &store,
        &cloud,
        &p,
        Wait {
            timeout,
            interval: poll_interval(),
        },
        common.json,
    )
    .await
}

/// How often a restore looks at what it created (tests shorten it).
pub(crate) fn poll_interval() -> std::time::Duration {
    let ms = std::env::var("LIFEBOAT_RESTORE_POLL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    std::time::Duration::from_millis(ms)
}

pub(crate) fn operator() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host}")
}

async fn perform(
    ws: &Workspace,
    store: &SharedStore,
    cloud: &Arc<dyn lifeboat_engine::cloud::Cloud>,
    p: &RestorePlan,
    wait: Wait,
    json: bool,
) -> Result<u8> {
    let runner = Runner {
        cloud,
        store,
        accounts: &ws.config.accounts,
        operator: operator(),
        wait,
    };
    // Ctrl-C stops the waits: the shares and the launch image go, and
    // what was made stays recorded for the same plan to finish.
    let stop = crate::workspace::stop_on_signal();
    match runner.run_until(p, &stop).await {
        Ok(r) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print_result(&r);
            }
            Ok(0)
        }
        Err(e) => {
            let st = store.lock().expect("state lock poisoned");
            if let Some(r) = st.restores()?.into_iter().find(|r| r.id == p.id) {
                print_result(&r);
            }
            Err(anyhow::Error::new(e).context(format!("restore {} failed", p.id)))
        }
    }
}

fn print_result(r: &RestoreRecord) {
    println!();
    for res in &r.resources {
        let removed = if res.removed.is_some() {
            " (removed again)"
        } else {
            ""
        };
        println!("  {} {}: created{removed}", res.kind.as_str(), res.id);
    }
    match r.rto_seconds() {
        Some(s) => println!(
            "\nRestore {} {}: ready after {s} s, recovery point {} min before it started.",
            r.id,
            r.status.as_str(),
            r.rpo_seconds() / 60
        ),
        None => println!("\nRestore {} {}.", r.id, r.status.as_str()),
    }
}

/// How long a restore command waits for the reaping before it goes on:
/// in an outage, letting go of a dead restore's shares in a failed region
/// must not hold up the recovery.
const REAP_WITHIN: std::time::Duration = std::time::Duration::from_secs(60);

/// Reaps the restores a stopped process left `running` (`restore::reap`,
/// [`reap::Scope::Running`]: what ended restores left is the runner's) and
/// says so: every writing restore command does this first, for at most
/// [`REAP_WITHIN`].
pub(crate) async fn reap_interrupted(
    ws: &Workspace,
    store: &SharedStore,
    cloud: &Arc<dyn lifeboat_engine::cloud::Cloud>,
    json: bool,
) -> Result<()> {
    let say = |line: &str| {
        // JSON output stays one document: the note goes to stderr then.
        if json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    let reaping = reap::reap_within(
        cloud,
        store,
        &ws.config.accounts,
        reap::Scope::Running,
        REAP_WITHIN,
    );
    let Some(reaped) = reaping.await? else {
        say(&format!(
            "Warning: reaping interrupted restores took over {} s and was left for the runner (or the next restore command) to finish; going on.",
            REAP_WITHIN.as_secs()
        ));
        return Ok(());
    };
    for r in reaped {
        let what = if r.interrupted {
            format!(
                "Restore {} was left running by a stopped process: {}",
                r.record.id,
                r.record.status.as_str()
            )
        } else {
            format!(
                "Restore {} ended with shares or a launch image left",
                r.record.id
            )
        };
        let line = match &r.left {
            None => format!("{what}; its shares and launch image were let go of."),
            Some(e) => format!("{what}; letting go of its shares and launch image failed: {e}"),
        };
        say(&line);
    }
    Ok(())
}

/// `lifeboat apply FILE` with a saved restore plan: whether `text` is one.
pub fn is_restore_plan(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .is_some_and(|v| v.get("restore_format").is_some())
}

/// Performs a saved restore plan (checked by the runner against the state).
pub async fn apply_saved(ws: &Workspace, path: &Path, auto_approve: bool) -> Result<u8> {
    let text = crate::files::read_bounded(path, crate::cmd::plan::MAX_PLAN_BYTES, "restore plan")?;
    let p: RestorePlan = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a Lifeboat restore plan", path.display()))?;
    if p.restore_format != plan::RESTORE_FORMAT {
        bail!(
            "{} has restore plan format {:?}; this lifeboat reads {:?}",
            path.display(),
            p.restore_format,
            plan::RESTORE_FORMAT
        );
    }
    let _ = auto_approve; // a saved plan was reviewed when it was saved
    print!("{}", render::human(&p, ws.now));
    let store: SharedStore = Arc::new(Mutex::new(ws.store()?));
    let cloud = cloud(ws).await?;
    reap_interrupted(ws, &store, &cloud, false).await?;
    plan::check_saved(&cloud, &store, &ws.config.accounts, &p).await?;
    let wait = Wait {
        timeout: std::time::Duration::from_secs(1800),
        interval: poll_interval(),
    };
    perform(ws, &store, &cloud, &p, wait, false).await
}

/// `lifeboat restores`.
pub fn list(ws: &Workspace, json: bool) -> Result<u8> {
    let restores = ws.store()?.restores()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&restores)?);
        return Ok(0);
    }
    if restores.is_empty() {
        println!("No restores yet.");
        return Ok(0);
    }
    let rows: Vec<[String; 8]> = restores
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                format!("{} {}", r.kind, r.target),
                format!("{}/{}", r.policy, r.backup_id),
                r.source.clone(),
                format!("{} ({})", r.account, r.region),
                if r.interrupted() {
                    // Read-only: the next writing command reaps it.
                    "running (holder gone)".to_string()
                } else {
                    r.status.as_str().to_string()
                },
                r.rto_seconds()
                    .map(|s| format!("{s}s"))
                    .unwrap_or_else(|| "-".into()),
                format!("{}m", r.rpo_seconds() / 60),
            ]
        })
        .collect();
    print_table(
        [
            "ID", "WHAT", "BACKUP", "FROM", "INTO", "STATUS", "RTO", "RPO",
        ],
        &rows,
    );
    Ok(0)
}
