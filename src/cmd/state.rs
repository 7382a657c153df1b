//! `lifeboat state list`: every address the state manages.

use anyhow::Result;
use lifeboat_engine::Address;

use crate::workspace::Workspace;

pub fn list(ws: &Workspace) -> Result<u8> {
    let mut store = ws.store()?;
    let state = store.load()?;
    let mut all: Vec<Address> = state.objects.keys().cloned().collect();
    for b in &state.backups {
        all.push(b.address());
        all.extend(b.snapshots.iter().map(|s| s.address()));
    }
    all.sort();
    for a in all {
        println!("{a}");
    }
    Ok(0)
}
