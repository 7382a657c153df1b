//! `lifeboat graph [PLAN]`: the plan's dependency graph in Graphviz DOT.

use std::path::Path;

use anyhow::Result;
use lifeboat_engine::plan::graph;

use crate::cmd::plan;
use crate::workspace::Workspace;

/// `load` is called only without a saved plan: a saved plan is drawn
/// without the configuration.
pub async fn run(plan_file: Option<&Path>, load: impl FnOnce() -> Result<Workspace>) -> Result<u8> {
    let plan = match plan_file {
        Some(f) => plan::read(f)?,
        None => {
            let ws = load()?;
            let mut store = ws.store()?;
            plan::make(&ws, &mut store).await?
        }
    };
    print!("{}", graph::to_dot(&plan));
    Ok(0)
}
