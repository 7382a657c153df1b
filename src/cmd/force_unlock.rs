//! `lifeboat force-unlock ID`: breaks a state lock whose holder is gone.
//! The lock ID must be given, so that only the lock the operator saw
//! named in the "state is locked" message is broken.

use anyhow::Result;

use crate::workspace::Workspace;

pub fn run(ws: &Workspace, id: &str) -> Result<u8> {
    let mut store = ws.store()?;
    let held = store.force_unlock(id)?;
    println!(
        "Broke the lock {} held by {} for {}.",
        held.id, held.holder, held.operation
    );
    Ok(0)
}
