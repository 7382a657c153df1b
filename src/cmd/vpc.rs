//! `lifeboat vpc ...`: capture VPC networks into the catalog, list the
//! versions, show one, diff two, and export one as a CloudFormation
//! template.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use clap::Subcommand;
use lifeboat_engine::state::{Store, VpcVersionRecord};
use lifeboat_engine::vpc::capture::{self, CaptureDoc, RegionResult, VpcOutcome};
use lifeboat_engine::vpc::export::{self, Export, ExportOptions, LeftOut};
use lifeboat_schema::Config;

use crate::output::stamp;
use crate::workspace::{cloud, locked, Workspace};

#[derive(Subcommand)]
pub enum VpcCommand {
    /// Capture every VPC of a vpc_capture block (default: of every block).
    Capture {
        /// The vpc_capture block's name.
        name: Option<String>,
    },
    /// List captures, their VPCs and the stored versions.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Print a captured VPC document as JSON.
    Show {
        /// The vpc_capture block's name.
        capture: String,
        /// The VPC id.
        vpc: String,
        /// The version current at this time (RFC 3339; default: the latest).
        #[arg(long)]
        at: Option<DateTime<Utc>>,
    },
    /// Show what changed in a VPC's network between two captures.
    Diff {
        /// The VPC id.
        vpc: String,
        /// The version current at this time (default: the one before --to).
        #[arg(long)]
        from: Option<DateTime<Utc>>,
        /// The version current at this time (default: the latest).
        #[arg(long)]
        to: Option<DateTime<Utc>>,
        /// The vpc_capture block, when several capture this VPC.
        #[arg(long)]
        capture: Option<String>,
    },
    /// Write a CloudFormation template that recreates a captured VPC's network.
    Export(ExportArgs),
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The vpc_capture block's name.
    #[arg(long)]
    capture: String,
    /// The VPC id.
    #[arg(long)]
    vpc: String,
    /// The version current at this time (RFC 3339; default: the latest).
    #[arg(long)]
    at: Option<DateTime<Utc>>,
    /// The region the template is for (default: the captured region).
    #[arg(long)]
    to_region: Option<String>,
    /// The clone VPC's Name tag (default: the original name + " (cloned)").
    #[arg(long)]
    name: Option<String>,
    /// Write the template here instead of to stdout.
    #[arg(short = 'o', long = "out")]
    out: Option<std::path::PathBuf>,
    /// Write what the template leaves out here: JSON lines when the file
    /// name ends in .json or .jsonl, text otherwise.
    #[arg(long)]
    log: Option<std::path::PathBuf>,
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

pub async fn run(ws: &Workspace, command: &VpcCommand) -> Result<u8> {
    match command {
        VpcCommand::Capture { name } => capture(ws, name.as_deref()).await,
        VpcCommand::List { json } => list(ws, *json),
        VpcCommand::Show { capture, vpc, at } => show(ws, capture, vpc, *at),
        VpcCommand::Diff {
            vpc,
            from,
            to,
            capture,
        } => diff(ws, vpc, *from, *to, capture.as_deref()),
        VpcCommand::Export(args) => export(ws, args).await,
    }
}

/// The vpc_capture blocks to capture: `name`, or every block.
fn capture_names(config: &Config, name: Option<&str>) -> Result<Vec<String>> {
    let names: Vec<String> = match name {
        Some(n) => vec![n.to_string()],
        None => config.vpc_captures.keys().cloned().collect(),
    };
    if names.is_empty() {
        bail!("the configuration has no vpc_capture block");
    }
    if let Some(n) = names.iter().find(|n| !config.vpc_captures.contains_key(*n)) {
        let declared: Vec<&str> = config.vpc_captures.keys().map(String::as_str).collect();
        bail!(
            "no vpc_capture block named {n:?} in the configuration (declared: {})",
            if declared.is_empty() {
                "none".to_string()
            } else {
                declared.join(", ")
            }
        );
    }
    Ok(names)
}

async fn capture(ws: &Workspace, name: Option<&str>) -> Result<u8> {
    let names = capture_names(&ws.config, name)?;
    let store = Arc::new(Mutex::new(ws.store()?));
    let store2 = store.clone();
    let now = ws.now;
    let config = ws.config.clone();
    let cloud = cloud(ws).await?;
    locked(store, "vpc capture", ws.lock_timeout, async move |_| {
        let mut tally = Tally::default();
        for name in &names {
            let regions = capture::capture(cloud.clone(), &store2, &config, name, now).await?;
            for r in regions {
                tally.print(r);
            }
        }
        // Capture retention: versions that no backup or clone needs any more.
        let pruned = capture::prune(&store2, &config)?;
        let Tally {
            stored,
            unchanged,
            failed,
        } = tally;
        println!(
            "\nCapture {}: {stored} new version(s), {unchanged} unchanged, {failed} region(s) failed, {pruned} old version(s) removed.",
            if failed == 0 { "complete" } else { "finished with errors" }
        );
        Ok(if failed == 0 { 0 } else { 1 })
    })
    .await
}

/// What a capture run did, counted as its regions are printed.
#[derive(Default)]
struct Tally {
    stored: usize,
    unchanged: usize,
    failed: usize,
}

impl Tally {
    fn print(&mut self, r: RegionResult) {
        let prefix = format!("vpc_capture.{} {}", r.capture, r.region);
        match r.result {
            Err(e) => {
                self.failed += 1;
                println!("{prefix}: failed: {e}");
            }
            Ok(vpcs) if vpcs.is_empty() => println!("{prefix}: no VPCs"),
            Ok(vpcs) => {
                for v in vpcs {
                    match v.outcome {
                        VpcOutcome::Stored => {
                            self.stored += 1;
                            println!("{prefix} {}: stored version {}", v.vpc_id, short(&v.hash));
                        }
                        VpcOutcome::Unchanged => {
                            self.unchanged += 1;
                            println!("{prefix} {}: unchanged ({})", v.vpc_id, short(&v.hash));
                        }
                    }
                }
            }
        }
    }
}

fn list(ws: &Workspace, json: bool) -> Result<u8> {
    let store = ws.store()?;
    let versions = store.vpc_versions()?;
    // (capture, account, region, vpc) -> versions, oldest first.
    let mut grouped: BTreeMap<(&str, &str, &str, &str), Vec<&VpcVersionRecord>> = BTreeMap::new();
    for v in &versions {
        grouped
            .entry((&v.capture, &v.account, &v.region, &v.vpc_id))
            .or_default()
            .push(v);
    }
    if json {
        let out: Vec<serde_json::Value> = grouped
            .iter()
            .map(|((capture, account, region, vpc_id), vs)| {
                serde_json::json!({
                    "capture": capture,
                    "account": account,
                    "region": region,
                    "vpc_id": vpc_id,
                    "versions": vs.iter().map(|v| serde_json::json!({
                        "captured_at": stamp(v.captured_at),
                        "hash": v.hash,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    if grouped.is_empty() {
        println!("No VPC captures. Take one with `lifeboat vpc capture`.");
        return Ok(0);
    }
    let mut last_capture = "";
    for ((capture, account, region, vpc_id), vs) in &grouped {
        if *capture != last_capture {
            println!("vpc_capture.{capture} (account {account})");
            last_capture = capture;
        }
        println!("  {region} {vpc_id}: {} version(s)", vs.len());
        for v in vs {
            println!("    {}  {}", stamp(v.captured_at), short(&v.hash));
        }
    }
    Ok(0)
}

/// The version of `vpc` in `capture` current at `at` (default: the
/// latest), among that VPC's `versions`, oldest first.
fn current_at<'a>(
    versions: &'a [VpcVersionRecord],
    capture: &str,
    vpc: &str,
    at: Option<DateTime<Utc>>,
) -> Result<&'a VpcVersionRecord> {
    if versions.is_empty() {
        bail!("no capture of {vpc} in vpc_capture.{capture}; see `lifeboat vpc list`");
    }
    let Some(v) = capture::version_at(versions, at) else {
        bail!(
            "no capture of {vpc} in vpc_capture.{capture} at or before {}; the first is from {}",
            stamp(at.expect("a time was given")),
            stamp(versions[0].captured_at)
        );
    };
    Ok(v)
}

fn show(ws: &Workspace, capture: &str, vpc: &str, at: Option<DateTime<Utc>>) -> Result<u8> {
    let store = ws.store()?;
    let versions: Vec<VpcVersionRecord> = store
        .vpc_versions()?
        .into_iter()
        .filter(|v| v.capture == capture && v.vpc_id == vpc)
        .collect();
    let v = current_at(&versions, capture, vpc, at)?;
    println!("{}", pretty(&store, v)?);
    Ok(0)
}

fn diff(
    ws: &Workspace,
    vpc: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    capture: Option<&str>,
) -> Result<u8> {
    let store = ws.store()?;
    let mut versions: Vec<VpcVersionRecord> = store
        .vpc_versions()?
        .into_iter()
        .filter(|v| v.vpc_id == vpc)
        .filter(|v| capture.is_none_or(|c| v.capture == c))
        .collect();
    let captures: BTreeSet<&str> = versions.iter().map(|v| v.capture.as_str()).collect();
    if captures.len() > 1 {
        let names: Vec<String> = captures.iter().map(|c| c.to_string()).collect();
        bail!(
            "{vpc} is captured by several vpc_capture blocks ({}); choose one with --capture",
            names.join(", ")
        );
    }
    versions.sort_by(|a, b| a.captured_at.cmp(&b.captured_at).then(a.id.cmp(&b.id)));
    if versions.is_empty() {
        bail!("no capture of {vpc}; see `lifeboat vpc list`");
    }
    if versions.len() < 2 && from.is_none() && to.is_none() {
        bail!(
            "{vpc} has only one captured version; a diff needs two (capture again after the network changes)"
        );
    }
    let Some(new) = capture::version_at(&versions, to) else {
        bail!(
            "no capture of {vpc} at or before {}",
            stamp(to.expect("given"))
        );
    };
    let old = match from {
        Some(t) => capture::version_at(&versions, Some(t)),
        None => versions.iter().rev().find(|v| {
            v.captured_at < new.captured_at || (v.captured_at == new.captured_at && v.id < new.id)
        }),
    };
    let Some(old) = old else {
        bail!(
            "no capture of {vpc} before the one from {} to compare with",
            stamp(new.captured_at)
        );
    };
    print_diff(&store, vpc, old, new)?;
    Ok(0)
}

/// The changed resources first (when both documents are readable), then
/// the documents' line diff.
fn print_diff(
    store: &Store,
    vpc: &str,
    old: &VpcVersionRecord,
    new: &VpcVersionRecord,
) -> Result<()> {
    let (a, b) = (pretty(store, old)?, pretty(store, new)?);
    if a == b {
        println!(
            "No changes in {vpc} between {} and {}.",
            stamp(old.captured_at),
            stamp(new.captured_at)
        );
        return Ok(());
    }
    let old_name = format!("{vpc} {} ({})", stamp(old.captured_at), short(&old.hash));
    let new_name = format!("{vpc} {} ({})", stamp(new.captured_at), short(&new.hash));
    if let (Ok(x), Ok(y)) = (
        serde_json::from_str::<CaptureDoc>(&a),
        serde_json::from_str::<CaptureDoc>(&b),
    ) {
        println!(
            "Changes in {vpc} from {} to {}:",
            stamp(old.captured_at),
            stamp(new.captured_at)
        );
        for line in capture::changed_resources(&x, &y) {
            println!("  {line}");
        }
        println!();
    }
    print!("{}", capture::diff_documents(&a, &b, &old_name, &new_name));
    Ok(())
}

/// `vpc export`: the template on stdout or in `--out`, the left-out log in
/// `--log`, and a summary on stderr.
async fn export(ws: &Workspace, args: &ExportArgs) -> Result<u8> {
    let (capture, vpc_id) = (args.capture.as_str(), args.vpc.as_str());
    if !ws.config.vpc_captures.contains_key(capture) {
        bail!("no vpc_capture block named {capture:?} in the configuration");
    }
    let store = ws.store()?;
    let mut versions: Vec<VpcVersionRecord> = store
        .vpc_versions()?
        .into_iter()
        .filter(|v| v.capture == capture && v.vpc_id == vpc_id)
        .collect();
    versions.sort_by(|a, b| a.captured_at.cmp(&b.captured_at).then(a.id.cmp(&b.id)));
    let regions: BTreeSet<&str> = versions.iter().map(|v| v.region.as_str()).collect();
    // Checked before any version is picked; none at all is reported below.
    if regions.len() > 1 {
        bail!(
            "{vpc_id} is captured in several regions ({}); this cannot be told apart",
            regions.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    let v = current_at(&versions, capture, vpc_id, args.at)?;
    let doc: CaptureDoc = serde_json::from_str(&store.vpc_document(v.id)?)?;
    let Some(account) = ws.config.accounts.get(&v.account) else {
        bail!(
            "the capture's account {:?} is no longer configured; its zones cannot be listed",
            v.account
        );
    };
    let to_region = args.to_region.as_deref().unwrap_or(&v.region).to_string();
    let cloud = cloud(ws).await?;
    let to_zones = cloud
        .network(account, &to_region)
        .await?
        .availability_zones()
        .await?;
    let opts = ExportOptions {
        source_region: v.region.clone(),
        captured_at: v.captured_at,
        to_region: to_region.clone(),
        to_zones,
        name: args.name.clone(),
    };
    let e = export::export(&doc, &opts)?;
    let text = e.text();
    write_export(args, &text, &e.left_out)?;
    print_export_summary(v, &to_region, &e, text.len());
    Ok(0)
}

/// The template (to `--out` or stdout) and what it leaves out (to `--log`).
fn write_export(args: &ExportArgs, text: &str, left_out: &[LeftOut]) -> Result<()> {
    match &args.out {
        Some(path) => crate::files::write_atomically(path, text.as_bytes())?,
        None => print!("{text}"),
    }
    if let Some(path) = &args.log {
        let json = path
            .extension()
            .is_some_and(|x| x == "json" || x == "jsonl");
        let mut body = String::new();
        for l in left_out {
            if json {
                body.push_str(&serde_json::to_string(l)?);
                body.push('\n');
            } else {
                body.push_str(&format!("{}: {}\n", l.what, l.reason));
            }
        }
        crate::files::write_atomically(path, body.as_bytes())?;
    }
    Ok(())
}

/// On stderr, so that a template on stdout stays clean: what was exported,
/// what was left out, and the CloudFormation limits it is over.
fn print_export_summary(v: &VpcVersionRecord, to_region: &str, e: &Export, text_len: usize) {
    let total: usize = e.resource_counts.values().sum();
    eprintln!(
        "Exported {total} resources of {} (captured {} in {}) for {to_region}; left out {}{}",
        v.vpc_id,
        stamp(v.captured_at),
        v.region,
        e.left_out.len(),
        if e.left_out.is_empty() { "." } else { ":" }
    );
    for l in &e.left_out {
        eprintln!("  {}: {}", l.what, l.reason);
    }
    if total > export::RESOURCE_LIMIT {
        crate::colour::warning(format_args!(
            "{total} resources exceed CloudFormation's limit of {} per template; CreateStack will refuse it.",
            export::RESOURCE_LIMIT
        ));
    }
    if text_len > export::TEMPLATE_BODY_LIMIT {
        eprintln!(
            "Note: the template is {text_len} bytes, over CloudFormation's inline limit of {}; deploy it from S3.",
            export::TEMPLATE_BODY_LIMIT
        );
    }
}

/// A stored document as pretty JSON, in the document's own field order.
fn pretty(store: &Store, v: &VpcVersionRecord) -> Result<String> {
    let raw = store.vpc_document(v.id)?;
    Ok(match serde_json::from_str::<CaptureDoc>(&raw) {
        Ok(doc) => doc.pretty(),
        Err(_) => serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&raw)?)?,
    })
}
