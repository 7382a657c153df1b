//! `lifeboat show PLANFILE`: a saved plan rendered as `plan` printed it,
//! as text, JSON or Markdown. Read-only: it reads the file and nothing
//! else (no configuration, no state, no lock, no AWS), so a CI job can
//! render the plan artifact of another job anywhere.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use lifeboat_engine::plan::render;

use crate::cmd::plan::{self, MarkdownCap};

#[derive(clap::Args)]
pub struct ShowArgs {
    /// A plan saved with `lifeboat plan --out FILE`.
    plan_file: PathBuf,
    /// Print the plan as JSON (as `plan --json` does).
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Print the plan as Markdown (as `plan --markdown` does).
    #[arg(long)]
    markdown: bool,
    #[command(flatten)]
    cap: MarkdownCap,
}

pub fn run(args: &ShowArgs) -> Result<u8> {
    let plan = plan::read(&args.plan_file)?;
    if args.json {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        render::json_to(&plan, &mut out).and_then(|()| out.flush())?;
    } else if args.markdown {
        let full_view = format!("lifeboat show {}", args.plan_file.display());
        print!("{}", args.cap.render(&plan, &full_view));
    } else {
        // The plan's own view. `plan` goes on with the policies' next runs,
        // which are the configuration's and the clock's, not the plan's.
        print!(
            "{}",
            render::human_with(&plan, crate::colour::stdout_style())
        );
        println!(
            "\nThis is the saved plan as written. `lifeboat apply {}` performs only what a plan made then agrees with.",
            args.plan_file.display()
        );
    }
    Ok(0)
}
