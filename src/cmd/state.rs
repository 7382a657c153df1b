//! `lifeboat state list|show|rm|init|pull|migrate`: what the state manages, and
//! the state's own home: creating it, printing it, moving it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use lifeboat_engine::state::lock_waiting;
use lifeboat_engine::Address;
use lifeboat_schema::StateBackend;

use crate::workspace::Workspace;

/// `lifeboat state list [--json]`: every managed address, objects first
/// by kind, then each backup with what it made.
pub fn list(ws: &Workspace, json: bool) -> Result<u8> {
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
    let template = |a: &Address| match a {
        Address::Policy { name } => made.get(name),
        _ => None,
    };
    if json {
        let rows: Vec<serde_json::Value> = all
            .iter()
            .map(|a| {
                let mut row = serde_json::json!({ "address": a.to_string() });
                if let Some(t) = template(a) {
                    row["from_template"] = serde_json::json!(t);
                }
                row
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    for a in &all {
        match template(a) {
            Some(t) => println!("{a} (from template {t})"),
            None => println!("{a}"),
        }
    }
    Ok(0)
}

/// `lifeboat state show ADDRESS`: what the state records at one address,
/// as JSON: a managed object's value (an external id masked as the plan
/// masks it), a backup's catalog record, or an artifact's record with the
/// backup it belongs to.
pub fn show(ws: &Workspace, address: &str) -> Result<u8> {
    let addr: Address = match address.parse() {
        Ok(a) => a,
        Err(e) => anyhow::bail!("{address:?} is not an address: {e}"),
    };
    let mut store = ws.store()?;
    let state = store.load()?;
    let found = if let Some(v) = state.objects.get(&addr) {
        let mut v = v.value();
        lifeboat_engine::plan::render::mask(&mut v);
        Some(v)
    } else {
        state.backups.iter().find_map(|b| {
            if b.address() == addr {
                return serde_json::to_value(b).ok();
            }
            let s = b.snapshots.iter().find(|s| s.address() == addr)?;
            let mut v = serde_json::to_value(s).ok()?;
            v["backup"] = serde_json::json!(b.address().to_string());
            Some(v)
        })
    };
    match found {
        Some(v) => {
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(0)
        }
        None => anyhow::bail!(
            "the state has nothing at {addr} (`lifeboat state list` lists every address)"
        ),
    }
}

/// A state backend, as `state migrate --to` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    Sqlite,
    Dynamodb,
}

impl Backend {
    fn schema(self) -> StateBackend {
        match self {
            Backend::Sqlite => StateBackend::Sqlite,
            Backend::Dynamodb => StateBackend::Dynamodb,
        }
    }
}

/// `lifeboat state init [--repair]`.
pub fn init(ws: &Workspace, repair: bool) -> Result<u8> {
    // A table named while the state is still in SQLite is where `state
    // migrate` will copy it: it is made ready as well.
    if ws.config.settings.state.table.is_some() {
        let report = ws.remote()?.init_table(repair)?;
        println!(
            "Table {} in {}: {}.",
            report.table,
            report.region,
            if report.created { "created" } else { "found" }
        );
        let on = |b: bool| if b { "on" } else { "off" };
        println!(
            "  point-in-time recovery {}, deletion protection {}, expiry of abandoned staged commits {}",
            on(report.point_in_time_recovery),
            on(report.deletion_protection),
            on(report.ttl)
        );
        for m in &report.messages {
            println!("  {m}");
        }
    }
    let mut store = ws.store()?;
    println!(
        "State at {}: lineage {}, serial {}.",
        store.location(),
        store.lineage()?,
        store.load()?.serial
    );
    Ok(0)
}

/// `lifeboat state compact`.
pub fn compact(ws: &Workspace) -> Result<u8> {
    let store = ws.store()?;
    match store.compact()? {
        Some(rev) => println!("Folded {} up to revision {rev}.", store.location()),
        None if store.is_shared() => println!("Nothing to fold in {}.", store.location()),
        None => println!(
            "{} is a state file: it has no log to fold.",
            store.location()
        ),
    }
    Ok(0)
}

/// `lifeboat state pull [--json] [--out FILE]`.
pub fn pull(ws: &Workspace, json: bool, out: Option<&Path>) -> Result<u8> {
    let mut store = ws.store()?;
    if let Some(out) = out {
        if store.reading() == Some(&lifeboat_engine::state::Reading::Empty) {
            anyhow::bail!(
                "there is no state at {} yet: nothing to pull (the first apply makes it)",
                store.location()
            );
        }
        store.copy_to(out)?;
        // The digest of what was written, read back from the file.
        let written = lifeboat_engine::state::Store::open(out)?.digest()?;
        println!(
            "Wrote the state of {} to {} (digest {written}).",
            store.location(),
            out.display(),
        );
        return Ok(0);
    }
    let rows = store.rows()?;
    let digest = store.digest()?;
    let (lineage, serial) = (store.lineage()?, store.serial()?);
    if json {
        let mut tables: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
        for r in rows {
            if let Some(mut row) = r.row {
                // An object's value is JSON in a string: an external id in
                // it is masked as the plan masks it.
                if let Some(serde_json::Value::String(text)) = row.get_mut("value") {
                    if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(text) {
                        lifeboat_engine::plan::render::mask(&mut v);
                        *text = v.to_string();
                    }
                }
                tables
                    .entry(r.table)
                    .or_default()
                    .push(serde_json::Value::Object(row));
            }
        }
        let doc = serde_json::json!({
            "location": store.location(),
            "lineage": lineage,
            "serial": serial,
            "revision": store.revision()?,
            "digest": digest,
            "tables": tables,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(0);
    }
    println!("State at {}", store.location());
    println!("  lineage  {lineage}");
    println!("  serial   {serial}");
    if store.is_shared() {
        println!("  revision {}", store.revision()?);
    }
    println!("  digest   {digest}");
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in rows {
        *counts.entry(r.table).or_default() += 1;
    }
    for (table, n) in counts {
        println!("  {table:<22} {n} row(s)");
    }
    Ok(0)
}

/// The digest of the workspace on `to`, read afresh.
fn verify(ws: &Workspace, to: Backend) -> Result<String> {
    match to {
        Backend::Sqlite => Ok(ws.store_on(StateBackend::Sqlite)?.digest()?),
        Backend::Dynamodb => {
            let dir = tempfile::tempdir()?;
            let remote = std::sync::Arc::new(ws.remote()?);
            let mut fresh =
                lifeboat_engine::state::Store::open_shared(&dir.path().join("verify.db"), remote)?;
            Ok(fresh.digest()?)
        }
    }
}

/// `lifeboat state migrate --to BACKEND`: copies the workspace from the
/// configured backend to `to`, holding the state lock on both so nothing
/// writes either meanwhile, into an empty destination only, and checks the
/// copy by a digest of its content. The source is left as it was: the
/// operator switches `backend` once the copy is checked.
pub async fn migrate(ws: &Workspace, to: Backend, auto_approve: bool) -> Result<u8> {
    if ws.config.settings.state.backend == to.schema() {
        anyhow::bail!(
            "the state is on {} already: `--to` names the backend to copy it to",
            to.schema().as_str()
        );
    }
    let source = ws.store()?;
    let mut target = ws.store_on(to.schema())?;
    println!(
        "Copy the state at {} to {}.",
        source.location(),
        target.location()
    );
    if !target.is_empty()? {
        anyhow::bail!(
            "{} already holds state (serial {}): migrate copies into an empty workspace only",
            target.location(),
            target.serial()?
        );
    }
    if !auto_approve && !crate::output::confirm("Do you want to copy it?")? {
        println!("Migrate cancelled.");
        return Ok(1);
    }
    let (source, target) = (
        std::sync::Arc::new(std::sync::Mutex::new(source)),
        std::sync::Arc::new(std::sync::Mutex::new(target)),
    );
    let say = |w: &lifeboat_engine::state::LockWaiting| eprintln!("{w}");
    let source_lock = lock_waiting(&source, "state migrate", ws.lock_timeout, say).await?;
    let copied = async {
        let target_lock = lock_waiting(&target, "state migrate", ws.lock_timeout, say).await?;
        let done = (|| -> Result<String> {
            let (mut source, mut target) = (
                source.lock().expect("source"),
                target.lock().expect("target"),
            );
            if !target.is_empty()? {
                anyhow::bail!(
                    "{} was written meanwhile; nothing copied",
                    target.location()
                );
            }
            // A runner writes its bookkeeping without the state lock: while
            // one holds the lease, what it writes after the copy would stay
            // behind in the source.
            if let Some(l) = source
                .current_lease()?
                .filter(|l| l.expires > chrono::Utc::now())
            {
                anyhow::bail!(
                    "a runner ({}) holds the run lease of {} until {}: stop it, then migrate",
                    l.holder,
                    source.location(),
                    l.expires
                );
            }
            let rows = source.rows()?;
            let digest = source.digest()?;
            target.replace_with(&rows)?;
            // Checked through a fresh read of the destination (for DynamoDB,
            // a new cache: the table itself, not this host's copy of it),
            // and the source read again: neither moved.
            let check = verify(ws, to)?;
            let again = source.digest()?;
            if check != digest || again != digest {
                anyhow::bail!(
                    "the copy at {} does not match its source (digest {check}, source {digest}, source now {again})",
                    target.location()
                );
            }
            Ok(digest)
        })();
        target.lock().expect("target").unlock(&target_lock.id)?;
        done
    }
    .await;
    let mut source = source.lock().expect("source");
    source.unlock(&source_lock.id)?;
    let digest = copied?;
    println!(
        "Copied {} (serial {}, digest {digest}).",
        source.location(),
        source.serial()?
    );
    println!(
        "Now set `backend = \"{}\"` in the state block. The state at {} stays as it was until you remove it.",
        to.schema().as_str(),
        source.location()
    );
    Ok(0)
}

/// What `state rm` forgets at one address.
enum Forget {
    Object(Address),
    /// A backup's record and its artifacts' records.
    Backup {
        policy: String,
        id: String,
        artifacts: Vec<String>,
    },
}

/// Does the configuration still declare the object at `addr`? Forgetting
/// one would not make it go: a backup would still run for it, and its
/// absence from the state would read as a departure (a configured target
/// forgotten is not joined again, and its last backup would age out).
fn configured(config: &lifeboat_schema::Config, addr: &Address) -> bool {
    match addr {
        Address::Account { name } => config.accounts.contains_key(name),
        Address::Policy { name } => config.policies.contains_key(name),
        Address::Target { policy, .. } => config.policies.contains_key(policy),
        Address::VpcClone { name } => config.vpc_clones.contains_key(name),
        Address::IamRole { account } => config
            .accounts
            .get(account)
            .is_some_and(|a| a.manage_role.is_some()),
        Address::ControlTarget { group, .. } => config.resource_control_groups.contains_key(group),
        Address::Backup { .. }
        | Address::Snapshot { .. }
        | Address::Image { .. }
        | Address::DbSnapshot { .. }
        | Address::DbClusterSnapshot { .. }
        | Address::DrCopy { .. } => false,
    }
}

/// What `state rm` may forget at `addr` in `state`, or why not. Only
/// records whose loss leaves AWS untouched and nothing half-known: a
/// managed object the configuration no longer declares, or a whole
/// backup that has finished, is not frozen, and that no DR run or copy
/// and no running restore depends on.
fn forgettable(
    config: &lifeboat_schema::Config,
    state: &lifeboat_engine::state::Snapshot,
    addr: &Address,
) -> Result<Forget> {
    if state.objects.contains_key(addr) {
        if configured(config, addr) {
            anyhow::bail!(
                "{addr} is still in the configuration: remove it there and apply, or it stays managed (a forgotten target is not joined again, and retention would treat it as gone)"
            );
        }
        return Ok(Forget::Object(addr.clone()));
    }
    for b in &state.backups {
        if b.address() == *addr {
            if b.status == lifeboat_engine::state::BackupStatus::Running {
                anyhow::bail!("{addr} is in flight: forget it once its backup has ended");
            }
            if b.frozen.is_some() {
                anyhow::bail!(
                    "{addr} is in the freezer: unfreeze it first (`lifeboat import` could not bring its freezer name back)"
                );
            }
            let copied = state
                .dr_copies
                .iter()
                .any(|c| c.policy == b.policy && c.backup_id == b.id)
                || state
                    .dr_runs
                    .iter()
                    .any(|r| r.policy == b.policy && r.backup_id == b.id);
            if copied {
                anyhow::bail!(
                    "{addr} has DR runs or copies recorded: forgetting it would leave them unmanaged"
                );
            }
            if state
                .in_use
                .iter()
                .any(|u| u.policy == b.policy && u.backup_id == b.id)
            {
                anyhow::bail!("{addr} is read by a restore in progress");
            }
            return Ok(Forget::Backup {
                policy: b.policy.clone(),
                id: b.id.clone(),
                artifacts: b.snapshots.iter().map(|s| s.id.clone()).collect(),
            });
        }
        if b.snapshots.iter().any(|s| s.address() == *addr) {
            anyhow::bail!(
                "{addr} is an artifact of {}: forget the whole backup (`lifeboat state rm '{}'`)",
                b.address(),
                b.address()
            );
        }
    }
    anyhow::bail!("the state has nothing at {addr} (`lifeboat state list` lists every address)")
}

/// `lifeboat state rm ADDRESS… [--auto-approve]`: forgets records without
/// touching AWS, under the state lock. Every address is checked before
/// anything is asked or done, and all are forgotten in one transaction.
pub async fn rm(ws: &Workspace, addresses: &[String], auto_approve: bool) -> Result<u8> {
    let mut addrs = Vec::new();
    for a in addresses {
        match a.parse::<Address>() {
            Ok(addr) if !addrs.contains(&addr) => addrs.push(addr),
            Ok(_) => {}
            Err(e) => anyhow::bail!("{a:?} is not an address: {e}"),
        }
    }
    let store = std::sync::Arc::new(std::sync::Mutex::new(ws.store()?));
    let state = store.lock().expect("store").load()?;
    for addr in &addrs {
        forgettable(&ws.config, &state, addr)?;
    }
    println!("Lifeboat will forget, and leave in AWS as they are:");
    for addr in &addrs {
        println!("  - {addr}");
    }
    println!(
        "A forgotten backup's artifacts are no longer retained or deleted by Lifeboat (`lifeboat import` can adopt them again)."
    );
    if !auto_approve {
        if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            anyhow::bail!(
                "state rm asks for confirmation: run it in a terminal, or pass --auto-approve"
            );
        }
        if !crate::output::confirm("Do you want to forget them?")? {
            println!("Nothing forgotten.");
            return Ok(1);
        }
    }
    let say = |w: &lifeboat_engine::state::LockWaiting| eprintln!("{w}");
    let lock = lock_waiting(&store, "state rm", ws.lock_timeout, say).await?;
    let done = (|| -> Result<()> {
        let mut store = store.lock().expect("store");
        // Judged again under the lock: a runner may have moved on.
        let state = store.load()?;
        let forget = addrs
            .iter()
            .map(|a| forgettable(&ws.config, &state, a))
            .collect::<Result<Vec<_>>>()?;
        // Made once, on the state just judged: on shared state, a write
        // elsewhere since (a restore starting on the backup) refuses it.
        store.transaction_no_retry(|tx| {
            for f in &forget {
                match f {
                    Forget::Object(addr) => tx.delete_object(addr)?,
                    Forget::Backup {
                        policy,
                        id,
                        artifacts,
                    } => {
                        for a in artifacts {
                            tx.delete_snapshot(a, ws.now)?;
                        }
                        tx.delete_backup(policy, id, ws.now)?;
                    }
                }
            }
            Ok(())
        })?;
        Ok(())
    })();
    let released = store.lock().expect("store").unlock(&lock.id);
    done?;
    released?;
    println!(
        "Forgot {} address(es); nothing was deleted in AWS.",
        addrs.len()
    );
    Ok(0)
}
