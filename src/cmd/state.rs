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
    // A policy made from a template by a tag lives in state only: marked,
    // so that nobody looks for it in the files.
    let made: std::collections::BTreeMap<String, String> = state
        .policies()?
        .into_iter()
        .filter_map(|(n, p)| Some((n, p.from_template?)))
        .collect();
    for a in all {
        match &a {
            Address::Policy { name } if made.contains_key(name) => {
                println!("{a} (from template {})", made[name])
            }
            _ => println!("{a}"),
        }
    }
    Ok(0)
}
