//! `lifeboat validate`: the configuration loads (its problems are printed
//! while loading), and the schedule lints run at the workspace's time.

use anyhow::Result;
use lifeboat_schema::Diagnostics;

use crate::output::print_diagnostics;
use crate::workspace::Workspace;

pub fn run(ws: &Workspace) -> Result<u8> {
    let lints = lifeboat_engine::runmode::schedule::lint(&ws.config, ws.now);
    print_diagnostics(&Diagnostics(lints));
    println!("Configuration is valid.");
    Ok(0)
}
