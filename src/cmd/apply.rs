//! `lifeboat apply [PLAN]`: performs a saved plan, or a new one after
//! confirmation, under the state lock; one line per change as it finishes.
//! A saved plan is checked against a plan made now and only that fresh
//! plan's changes run ([`check`]).

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Result};
use lifeboat_engine::plan::apply::{self, Executor};
use lifeboat_engine::plan::check::{self, same_origin};
use lifeboat_engine::plan::{planner, render, Plan};
use lifeboat_engine::state::SharedStore;
use lifeboat_engine::Address;

use crate::cmd::plan;
use crate::output::print_outcome;
use crate::workspace::{cloud, locked, stop_on_signal, Workspace};

/// What a plan must not do for apply to go ahead.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gates {
    /// `--deny-destroy`: nothing destroyed, nothing forgotten.
    pub deny_destroy: bool,
    /// `--allow-destroy-backups`: the backups of a removed policy may go.
    pub allow_destroy_backups: bool,
}

impl Gates {
    /// Why `plan` may not be applied, if it may not.
    fn refusal(self, plan: &Plan) -> Option<String> {
        if self.deny_destroy && plan.destroys() {
            return Some(format!(
                "the plan destroys {} object(s) and forgets {} catalog record(s), and --deny-destroy is set; nothing was applied",
                plan.summary.destroy, plan.summary.read
            ));
        }
        if !self.allow_destroy_backups && !plan.removed_with_backups.is_empty() {
            return Some(format!(
                "the plan deletes every backup of {}, removed from the configuration; nothing was applied. Restore the policy (or rename it with a moved block), or pass --allow-destroy-backups",
                plan.removed_with_backups
                    .iter()
                    .map(|p| format!("policy.{p}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !self.allow_destroy_backups && !plan.removed_copies.is_empty() {
            return Some(format!(
                "the plan deletes every DR copy of {}, whose dr block or policy was removed; nothing was applied. Restore it, or pass --allow-destroy-backups",
                plan.removed_copies
                    .iter()
                    .map(|p| format!("policy.{p}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        None
    }
}

pub async fn run(
    ws: Workspace,
    plan_file: Option<&Path>,
    auto_approve: bool,
    parallelism: u16,
    gates: Gates,
    targets: &[Address],
) -> Result<u8> {
    if let Some(f) = plan_file {
        // Unreadable or too large here, it is refused as a plan below.
        let text = crate::files::read_bounded(f, crate::cmd::plan::MAX_PLAN_BYTES, "plan")
            .unwrap_or_default();
        if crate::cmd::restore::is_restore_plan(&text) {
            return crate::cmd::restore::apply_saved(&ws, f, auto_approve).await;
        }
    }
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
    locked(store, "apply", ws.lock_timeout, async move |lock_id| {
        let plan = match saved {
            Some(plan) => checked(&ws, &store2, plan).await?,
            None => match new_plan(&ws, &store2, auto_approve, gates, targets).await? {
                ControlFlow::Continue(plan) => plan,
                // 0: nothing to change (1: refused or declined).
                ControlFlow::Break(0) => return record_applied(&ws, &store2, targets),
                ControlFlow::Break(code) => return Ok(code),
            },
        };
        if let Some(why) = gates.refusal(&plan) {
            crate::colour::error(format_args!("{why}."));
            return Ok(1);
        }
        if plan.is_empty() {
            println!("No changes. Nothing to apply.");
            return record_applied(&ws, &store2, targets);
        }
        match perform(&ws, &store2, &plan, lock_id, parallelism).await? {
            0 => record_applied(&ws, &store2, targets),
            code => Ok(code),
        }
    })
    .await
}

/// After a clean apply (or one with nothing to change): records the
/// configuration in the state, for runners to follow (their schedules,
/// captures and notifications are configuration, not objects). Exit 0.
///
/// Not after a targeted apply: the configuration was applied in part, and
/// runners following it would act on schedules, windows and groups whose
/// policies the cut left behind.
fn record_applied(ws: &Workspace, store: &SharedStore, targets: &[Address]) -> Result<u8> {
    if targets.is_empty() {
        store.lock().expect("store").record_applied(&ws.config)?;
    }
    Ok(0)
}

/// The changes of a plan made now that the saved plan asked for, once the
/// saved plan is shown to come from this state and configuration and to ask
/// for nothing a fresh plan would not do. Refused, with nothing changed,
/// otherwise.
async fn checked(ws: &Workspace, store: &SharedStore, saved: Plan) -> Result<Plan> {
    {
        let s = store.lock().expect("store");
        // Cheap checks first: no AWS call for a plan that cannot apply.
        same_origin(
            &saved,
            &s.lineage()?,
            s.serial()?,
            &planner::config_digest(&ws.config),
        )?;
    }
    let fresh = make(ws, store).await?;
    let checked = check::check(&saved, &fresh)?;
    for note in &checked.notes {
        println!("Note: {note}.");
    }
    Ok(checked.plan)
}

/// A plan made now, from the state as it is under the lock.
async fn make(ws: &Workspace, store: &SharedStore) -> Result<Plan> {
    let (state, sources) = plan::inputs(ws, &mut store.lock().expect("store"))?;
    plan::make_from(ws, &state, sources).await
}

/// A plan made now and shown, to perform once confirmed; or the exit code
/// when there is nothing to do or the operator declines.
async fn new_plan(
    ws: &Workspace,
    store: &SharedStore,
    auto_approve: bool,
    gates: Gates,
    targets: &[Address],
) -> Result<ControlFlow<u8, Plan>> {
    let mut plan = make(ws, store).await?;
    if !targets.is_empty() {
        // Judged as a saved plan naming fewer changes than a plan made
        // now: a cut that deletes backup data is refused.
        let cut = lifeboat_engine::plan::target::restrict(&plan, targets);
        print!(
            "{}",
            render::human_with(&cut, crate::colour::stdout_style())
        );
        let pulled = lifeboat_engine::plan::target::settings_pulled_in(&cut, targets);
        if !pulled.is_empty() {
            let named: Vec<String> = pulled.iter().map(|a| a.to_string()).collect();
            crate::colour::error(format_args!(
                "the targeted changes wait for {}, which change what retention decides; target them too. Nothing was applied.",
                named.join(", ")
            ));
            return Ok(ControlFlow::Break(1));
        }
        match check::check(&cut, &plan) {
            Ok(checked) => plan = checked.plan,
            Err(e) => {
                crate::colour::error(format_args!("{e}"));
                return Ok(ControlFlow::Break(1));
            }
        }
    } else {
        print!(
            "{}",
            render::human_with(&plan, crate::colour::stdout_style())
        );
    }
    if plan.is_empty() {
        return Ok(ControlFlow::Break(0));
    }
    if let Some(why) = gates.refusal(&plan) {
        crate::colour::error(format_args!("{why}."));
        return Ok(ControlFlow::Break(1));
    }
    if !auto_approve && !confirm()? {
        println!("Apply cancelled.");
        return Ok(ControlFlow::Break(1));
    }
    Ok(ControlFlow::Continue(plan))
}

fn confirm() -> Result<bool> {
    crate::output::confirm("Do you want to perform these actions?")
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
