//! `lifeboat plan`: what apply would do, printed for people, as JSON or as
//! Markdown, and optionally saved for `lifeboat apply FILE`. Also the plan
//! making and saved-plan reading that apply and graph share.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use lifeboat_engine::plan::observe as observation;
use lifeboat_engine::plan::{planner, render, Plan, FORMAT_VERSION};
use lifeboat_engine::state::{Snapshot, Store};
use lifeboat_engine::vpc::clone::{self, CloneSource};

use crate::cmd::status;
use crate::files::write_atomically_with;
use crate::workspace::{cloud, Workspace};

#[derive(clap::Args)]
pub struct PlanArgs {
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
    #[command(flatten)]
    cap: MarkdownCap,
    /// Fail (exit 1) if the plan destroys anything.
    #[arg(long)]
    deny_destroy: bool,
    /// Plan only the changes at or under ADDRESS (repeatable: a policy
    /// takes in its targets, backups and their artifacts), and those they
    /// wait for; the plan says how many were left out.
    #[arg(long = "target", value_name = "ADDRESS")]
    targets: Vec<lifeboat_engine::Address>,
    /// `--refresh=false` plans from the configuration and the state alone,
    /// with no AWS call: targets, snapshots and DR copies are taken to be
    /// as the state last recorded them; IAM roles, VPC clones and resource
    /// control are not planned. `apply` always plans again against AWS.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    refresh: bool,
}

/// `--max-bytes`, for the Markdown view of `plan` and `show`.
#[derive(clap::Args)]
pub struct MarkdownCap {
    /// The most bytes the Markdown view may take (GitHub refuses comments
    /// over 65,536 characters). Over it, the counts and every destructive
    /// change are kept and the rest is folded, saying what was folded.
    #[arg(long, value_name = "N", requires = "markdown", default_value_t = render::MARKDOWN_MAX_BYTES as u64, value_parser = clap::value_parser!(u64).range(1_000..))]
    max_bytes: u64,
}

impl MarkdownCap {
    /// The Markdown view of `plan` within the cap; `full_view` is the
    /// command that shows all of it.
    pub fn render(&self, plan: &Plan, full_view: &str) -> String {
        let cap = usize::try_from(self.max_bytes).unwrap_or(usize::MAX);
        render::markdown_within(plan, cap, full_view)
    }
}

pub async fn run(ws: &Workspace, args: &PlanArgs) -> Result<u8> {
    let mut store = ws.store()?;
    let mut plan = if args.refresh {
        make(ws, &mut store).await?
    } else {
        let state = store.load()?;
        planner::plan(&ws.config, &state, &observation::from_state(), ws.now)?
    };
    if !args.targets.is_empty() {
        plan = lifeboat_engine::plan::target::restrict(&plan, &args.targets);
    }
    if args.json {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        render::json_to(&plan, &mut out).and_then(|()| out.flush())?;
    } else if args.markdown {
        let full_view = match &args.out {
            Some(out) => format!("lifeboat show {}", out.display()),
            None => "lifeboat plan".to_string(),
        };
        print!("{}", args.cap.render(&plan, &full_view));
    } else {
        print!(
            "{}",
            render::human_with(&plan, crate::colour::stdout_style())
        );
        print!("{}", status::next_runs_text(&ws.config, ws.now));
    }
    if let Some(out) = &args.out {
        // Masked as `--json` prints it: a saved plan travels between CI
        // jobs as an artifact, and apply performs the fresh plan's values,
        // never the saved ones (`plan::check` compares them masked).
        write_atomically_with(out, |mut w| render::json_to(&plan, &mut w))?;
        if !args.json && !args.markdown {
            println!(
                "\nSaved the plan to {}. Apply it with: lifeboat apply {}",
                out.display(),
                out.display()
            );
        }
    }
    if args.deny_destroy && plan.destroys() {
        crate::colour::error(format_args!(
            "the plan destroys {} object(s) and --deny-destroy is set.",
            plan.summary.destroy
        ));
        return Ok(1);
    }
    Ok(if args.detailed_exitcode && !plan.is_empty() {
        2
    } else {
        0
    })
}

/// A plan of the configuration against the state and live AWS, now.
pub async fn make(ws: &Workspace, store: &mut Store) -> Result<Plan> {
    let (state, sources) = inputs(ws, store)?;
    make_from(ws, &state, sources).await
}

/// What a plan is made from that the state holds: the state itself and the
/// capture versions the VPC clones are built from.
pub fn inputs(
    ws: &Workspace,
    store: &mut Store,
) -> Result<(Snapshot, BTreeMap<String, CloneSource>)> {
    let state = store.load()?;
    let sources = clone::catalog(store, &ws.config)?;
    Ok((state, sources))
}

/// A plan of the configuration against `state` and live AWS, now.
pub async fn make_from(
    ws: &Workspace,
    state: &Snapshot,
    clone_sources: BTreeMap<String, CloneSource>,
) -> Result<Plan> {
    let observed = observe(ws, state, clone_sources).await?;
    let mut plan = planner::plan(&ws.config, state, &observed, ws.now)?;
    if !ws.config.resource_control_groups.is_empty() {
        let cloud = cloud(ws).await?;
        match lifeboat_engine::control::drift(&cloud, &ws.config, ws.now).await {
            Ok((power, problems)) => {
                plan.power = power;
                plan.warnings.extend(problems);
            }
            Err(e) => plan
                .warnings
                .push(format!("resource-control targets not looked at: {e}")),
        }
    }
    Ok(plan)
}

/// What live AWS has for the plan: targets and snapshots, and for VPC
/// clones the destination zones.
pub async fn observe(
    ws: &Workspace,
    state: &Snapshot,
    clone_sources: BTreeMap<String, CloneSource>,
) -> Result<observation::Observation> {
    let cloud = cloud(ws).await?;
    let mut observed = observation::observe(cloud.clone(), &ws.config, state).await?;
    let accounts = planner::known_accounts(&ws.config, state)?;
    observed.clones = clone::observe(cloud, &ws.config, &accounts, clone_sources).await?;
    Ok(observed)
}

/// The largest file read as a saved plan. A plan of ten thousand targets is
/// megabytes; past this it is not a plan `plan --out` wrote, and reading it
/// whole would only exhaust memory.
pub const MAX_PLAN_BYTES: u64 = 256 << 20;

/// A plan saved with `lifeboat plan --out`, refused when another version
/// of lifeboat wrote it, or when the file is too large, not text, or not a
/// plan; every refusal names the file.
pub fn read(path: &Path) -> Result<Plan> {
    let shown = path.display();
    let text = crate::files::read_bounded(path, MAX_PLAN_BYTES, "plan")?;
    // The version first, read alone: a large plan is then parsed once,
    // straight into its type, not into a JSON tree and again from it.
    #[derive(serde::Deserialize)]
    struct Version {
        #[serde(default)]
        format_version: String,
        #[serde(default)]
        restore_format: Option<serde::de::IgnoredAny>,
    }
    let version = serde_json::from_str::<Version>(&text)
        .with_context(|| format!("{shown} is not a Lifeboat plan"))?;
    if version.restore_format.is_some() {
        bail!("{shown} is a restore plan (saved by `lifeboat restore`), not a plan of the configuration; `lifeboat apply {shown}` shows and performs it");
    }
    let version = version.format_version;
    if version != FORMAT_VERSION {
        bail!("{shown} has plan format {version:?}; this lifeboat reads format {FORMAT_VERSION:?}");
    }
    let mut plan: Plan =
        serde_json::from_str(&text).with_context(|| format!("{shown} is not a Lifeboat plan"))?;
    plan.reckon();
    Ok(plan)
}
