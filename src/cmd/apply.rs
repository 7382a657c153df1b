//! `lifeboat apply [PLAN]`: performs a saved plan, or a new one after
//! confirmation, under the state lock; one line per change as it finishes.

use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Result};
use lifeboat_engine::plan::apply::{self, Executor};
use lifeboat_engine::plan::{planner, render, Plan};
use lifeboat_engine::state::SharedStore;
use lifeboat_engine::Address;

use crate::cmd::plan;
use crate::output::print_outcome;
use crate::workspace::{cloud, locked, stop_on_signal, Workspace};

pub async fn run(
    ws: Workspace,
    plan_file: Option<&Path>,
    auto_approve: bool,
    parallelism: u16,
) -> Result<u8> {
    let store = Arc::new(Mutex::new(ws.store()?));
    let saved = match plan_file {
        Some(f) => Some(plan::read(f)?),
        None => None,
    };
    let interactive = std::io::stdin().is_terminal();
    if saved.is_none() && !auto_approve && !interactive {
        bail!("apply needs confirmation, and standard input is not a terminal; review with `lifeboat plan` and pass --auto-approve");
    }
    let store2 = store.clone();
    locked(store, "apply", async move |lock_id| {
        let plan = match saved {
            Some(plan) => still_current(&store2, plan)?,
            None => match new_plan(&ws, &store2, auto_approve).await? {
                ControlFlow::Continue(plan) => plan,
                ControlFlow::Break(code) => return Ok(code),
            },
        };
        if plan.is_empty() {
            println!("No changes. Nothing to apply.");
            return Ok(0);
        }
        perform(&ws, &store2, &plan, lock_id, parallelism).await
    })
    .await
}

/// A saved plan, if the state is still the one it was made against:
/// anything else may have changed what the plan should do.
fn still_current(store: &SharedStore, plan: Plan) -> Result<Plan> {
    let s = store.lock().expect("store");
    let (lineage, serial) = (s.lineage()?, s.serial()?);
    if plan.lineage != lineage {
        bail!("the saved plan was made for another state (lineage {}, this state is {lineage}); make a new plan", plan.lineage);
    }
    if plan.serial != serial {
        bail!("the saved plan is stale: it was made at state serial {}, and the state is now at serial {serial}; make a new plan", plan.serial);
    }
    Ok(plan)
}

/// A plan made now and shown, to perform once confirmed; or the exit code
/// when there is nothing to do or the operator declines.
async fn new_plan(
    ws: &Workspace,
    store: &SharedStore,
    auto_approve: bool,
) -> Result<ControlFlow<u8, Plan>> {
    let plan = {
        let (state, sources) = {
            let mut s = store.lock().expect("store");
            (
                s.load()?,
                lifeboat_engine::vpc::clone::catalog(&s, &ws.config)?,
            )
        };
        let observed = plan::observe(ws, &state, sources).await?;
        planner::plan(&ws.config, &state, &observed, ws.now)?
    };
    print!("{}", render::human(&plan));
    if plan.is_empty() {
        return Ok(ControlFlow::Break(0));
    }
    if !auto_approve && !confirm()? {
        println!("Apply cancelled.");
        return Ok(ControlFlow::Break(1));
    }
    Ok(ControlFlow::Continue(plan))
}

fn confirm() -> Result<bool> {
    print!("\nDo you want to perform these actions? Only 'yes' will be accepted: ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

/// Performs the plan's changes, `parallelism` at a time, until done or
/// interrupted by a signal.
async fn perform(
    ws: &Workspace,
    store: &SharedStore,
    plan: &Plan,
    lock_id: String,
    parallelism: u16,
) -> Result<u8> {
    let state = store.lock().expect("store").load()?;
    let mut accounts = planner::known_accounts(&ws.config, &state)?;
    // Accounts the plan itself creates are reachable by the later changes.
    for c in &plan.changes {
        if let (Address::Account { name }, Some(after)) = (&c.address, &c.after) {
            if let Ok(a) = serde_json::from_value(after.clone()) {
                accounts.insert(name.clone(), a);
            }
        }
    }
    let stop = stop_on_signal();
    let exec = Arc::new(Executor {
        cloud: cloud(ws).await?,
        accounts,
        store: store.clone(),
        now: ws.now,
        lock_id: Some(lock_id),
        stop: stop.clone(),
    });
    println!();
    let report = apply::apply(plan, exec, parallelism as usize, |c, o| {
        print_outcome(c.action, &c.address, o)
    })
    .await;
    let clean = report.failed() == 0 && report.interrupted() == 0;
    println!(
        "\nApply {}: {} done, {} failed, {} skipped, {} not started.",
        if clean {
            "complete"
        } else if report.interrupted() > 0 {
            "interrupted"
        } else {
            "finished with errors"
        },
        report.done(),
        report.failed(),
        report.skipped(),
        report.interrupted()
    );
    Ok(if clean { 0 } else { 1 })
}
