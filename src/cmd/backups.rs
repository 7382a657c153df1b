//! The backup catalog: `lifeboat backups` lists it, `backups show ID` shows
//! one backup with its snapshots, problems and the scripts it ran (their
//! captured stderr), and `lifeboat freeze ID` keeps a backup out of
//! retention.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Result};
use lifeboat_engine::backup::freeze::tag_frozen;
use lifeboat_engine::cloud::restore::Shape;
use lifeboat_engine::state::{BackupRecord, DrCopyRecord, DrRun, ScriptRun};
use lifeboat_engine::Address;

use crate::output::{print_table, stamp};
use crate::workspace::{cloud, locked, Workspace};

pub fn list(ws: &Workspace, policy: Option<&str>, json: bool) -> Result<u8> {
    let store = ws.store()?;
    let list = store.backups(policy)?;
    let runs = store.dr_runs(policy)?;
    if json {
        let mut v = serde_json::to_value(&list)?;
        if let Some(items) = v.as_array_mut() {
            for (item, b) in items.iter_mut().zip(&list) {
                item["dr"] = serde_json::to_value(runs_of(&runs, b))?;
            }
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_list(&list, &runs);
    }
    Ok(0)
}

fn runs_of<'a>(runs: &'a [DrRun], b: &BackupRecord) -> Vec<&'a DrRun> {
    runs.iter()
        .filter(|r| r.policy == b.policy && r.backup_id == b.id)
        .collect()
}

/// `us-west-2 completed, us-east-1:vault in progress`, or `-`.
fn dr_summary(runs: &[&DrRun]) -> String {
    if runs.is_empty() {
        return "-".into();
    }
    runs.iter()
        .map(|r| format!("{} {}", r.destination, r.status.as_str().replace('_', " ")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_list(list: &[BackupRecord], runs: &[DrRun]) {
    if list.is_empty() {
        println!("No backups.");
        return;
    }
    let rows: Vec<[String; 7]> = list
        .iter()
        .map(|b| {
            let status = match &b.frozen {
                Some(f) => format!("{} (frozen: {})", b.status.as_str(), f.name),
                None => b.status.as_str().to_string(),
            };
            [
                b.id.clone(),
                b.policy.clone(),
                stamp(b.started),
                b.finished.map(stamp).unwrap_or_else(|| "-".into()),
                status,
                dr_summary(&runs_of(runs, b)),
                b.snapshots
                    .iter()
                    .map(|s| s.id.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            ]
        })
        .collect();
    let head = [
        "ID",
        "POLICY",
        "STARTED",
        "FINISHED",
        "STATUS",
        "DR",
        "SNAPSHOTS",
    ];
    print_table(head, &rows);
}

pub fn show(ws: &Workspace, id: &str, policy: Option<&str>, json: bool) -> Result<u8> {
    let store = ws.store()?;
    let found: Vec<_> = store
        .backups(policy)?
        .into_iter()
        .filter(|b| b.id == id)
        .collect();
    let b = match found.as_slice() {
        [] => bail!("no backup {id:?} in the catalog (see `lifeboat backups`)"),
        [b] => b.clone(),
        _ => bail!("backup id {id:?} exists in several policies; add --policy"),
    };
    let scripts = store.script_runs(&b.policy, &b.id)?;
    let runs = store.dr_runs(Some(&b.policy))?;
    let runs = runs_of(&runs, &b);
    let copies: Vec<DrCopyRecord> = store
        .dr_copies(Some(&b.policy))?
        .into_iter()
        .filter(|c| c.backup_id == b.id)
        .collect();
    let points = restore_points(&store, &b)?;
    if json {
        let mut v = serde_json::to_value(&b)?;
        v["restore_points"] = serde_json::to_value(&points)?;
        v["scripts"] = serde_json::to_value(&scripts)?;
        v["dr"] = serde_json::to_value(&runs)?;
        v["dr_copies"] = serde_json::to_value(&copies)?;
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    print_backup(&b, &scripts);
    print_restore_points(&points);
    print_dr(&runs, &copies);
    Ok(0)
}

/// What each target with snapshots in the backup was when it was taken, by
/// target; `None` when it was not recorded.
fn restore_points(
    store: &lifeboat_engine::state::Store,
    b: &BackupRecord,
) -> Result<BTreeMap<String, Option<Shape>>> {
    let mut out = BTreeMap::new();
    for s in &b.snapshots {
        if !out.contains_key(&s.target) {
            let shape = store.restore_point(&b.policy, &b.id, &s.target)?;
            out.insert(s.target.clone(), shape);
        }
    }
    Ok(out)
}

fn print_restore_points(points: &BTreeMap<String, Option<Shape>>) {
    if points.is_empty() {
        return;
    }
    println!("\nrestore points:");
    for (target, shape) in points {
        let line = shape
            .as_ref()
            .map(summary)
            .unwrap_or_else(|| "not recorded".into());
        println!("  {target}: {line}");
    }
}

/// One line of a restore point: `t3.large x86_64 us-east-1a subnet-1 3
/// disks`, `gp3 100 GiB us-east-1a`, `db.t3.micro postgres 14.7 multi-az`.
fn summary(shape: &Shape) -> String {
    let mut words: Vec<String> = Vec::new();
    match shape {
        Shape::Instance(i) => {
            words.extend([
                i.instance_type.clone(),
                i.architecture.clone(),
                i.availability_zone.clone(),
            ]);
            words.extend(i.subnet_id.clone());
            let n = i.disks.len();
            words.push(format!("{n} disk{}", if n == 1 { "" } else { "s" }));
        }
        Shape::Volume(d) => {
            words.extend([
                d.volume_type.clone(),
                format!("{} GiB", d.size_gib),
                d.availability_zone.clone(),
            ]);
            if d.encrypted {
                words.push("encrypted".into());
            }
        }
        Shape::Db(d) => {
            words.extend([d.class.clone(), d.engine.clone(), d.engine_version.clone()]);
            if d.multi_az {
                words.push("multi-az".into());
            }
            if !d.members.is_empty() {
                words.push(format!("{} member(s)", d.members.len()));
            }
        }
    }
    words.retain(|w| !w.is_empty());
    words.join(" ")
}

fn print_dr(runs: &[&DrRun], copies: &[DrCopyRecord]) {
    if runs.is_empty() {
        return;
    }
    println!("\nDR:");
    for r in runs {
        let detail = if r.detail.is_empty() {
            String::new()
        } else {
            format!("  ({})", r.detail)
        };
        println!(
            "  {}  {}{detail}",
            r.destination,
            r.status.as_str().replace('_', " ")
        );
        for c in copies.iter().filter(|c| c.destination == r.destination) {
            let expired = c
                .expired
                .map(|t| format!("  expired {}", stamp(t)))
                .unwrap_or_default();
            let of = c
                .image
                .as_ref()
                .map(|i| format!(" (of {i})"))
                .unwrap_or_default();
            println!(
                "    {} <- {} ({})  {}{of}{expired}",
                c.id,
                c.source_id,
                c.source_region,
                c.status.as_str().replace('_', " ")
            );
        }
    }
}

fn print_backup(b: &BackupRecord, scripts: &[ScriptRun]) {
    println!("backup   {}", b.id);
    println!("policy   {}", b.policy);
    println!("account  {}", b.account);
    println!("status   {}", b.status.as_str());
    println!("started  {}", stamp(b.started));
    println!(
        "finished {}",
        b.finished.map(stamp).unwrap_or_else(|| "-".into())
    );
    if let Some(f) = &b.frozen {
        println!("frozen   {} at {}", f.name, stamp(f.at));
    }
    println!("\nsnapshots ({}):", b.snapshots.len());
    for s in &b.snapshots {
        println!("  {}  {}  {}  {}", s.id, s.target, s.volume_id, s.region);
    }
    if !b.problems.is_empty() {
        println!("\nproblems:");
        for p in &b.problems {
            println!("  {p}");
        }
    }
    if !scripts.is_empty() {
        println!("\nscripts:");
        for r in scripts {
            println!(
                "  attempt {}  {}  {}  {}",
                r.attempt,
                r.step,
                if r.ok { "ok" } else { "failed" },
                r.detail
            );
            if !r.stderr.is_empty() {
                println!("    stderr:");
                for l in r.stderr.lines() {
                    println!("      {l}");
                }
            }
        }
    }
}

/// `backup_id` is a catalog id, or a backup address (which names its
/// policy, so `policy` is then not needed).
pub async fn freeze(
    ws: &Workspace,
    backup_id: &str,
    name: &str,
    policy: Option<&str>,
) -> Result<u8> {
    let mut store = ws.store()?;
    let (pol, id) = match backup_id.parse::<Address>() {
        Ok(Address::Backup { policy, id }) => (Some(policy), id),
        _ => (policy.map(str::to_string), backup_id.to_string()),
    };
    let matches: Vec<BackupRecord> = store
        .backups(pol.as_deref())?
        .into_iter()
        .filter(|b| b.id == id)
        .collect();
    let b = match matches.as_slice() {
        [] => bail!("no backup with id {id:?}; `lifeboat backups` lists them"),
        [b] => b.clone(),
        _ => bail!("backup id {id:?} exists in several policies; add --policy"),
    };
    // Freezing again under the same name only tags again (after a tagging
    // that failed).
    if let Some(f) = b.frozen.as_ref().filter(|f| f.name != name) {
        bail!(
            "backup {} of policy {} is already frozen as {:?}",
            b.id,
            b.policy,
            f.name
        );
    }
    let account = store
        .load()?
        .accounts()?
        .remove(&b.account)
        .ok_or_else(|| anyhow!("account {} of the backup is not in state", b.account))?;
    let store = Arc::new(Mutex::new(store));
    let store2 = store.clone();
    let now = ws.now;
    let cloud = cloud(ws).await?;
    locked(store, "freeze", ws.lock_timeout, async move |_| {
        let what = format!("freezing backup {} of policy.{}", b.id, b.policy);
        crate::workspace::refuse_in_flight(&store2, Some(&b.policy), &what)?;
        // The catalog first: it is what retention obeys. Then the tags, so
        // that a catalog rebuilt from AWS (`lifeboat import`) keeps the
        // freeze too; when they cannot be written the freeze stands and
        // freezing again under the same name retries them.
        if b.frozen.is_none() {
            store2
                .lock()
                .expect("store")
                .transaction(|tx| tx.freeze(&b.policy, &b.id, name, now))?;
        }
        println!(
            "Froze backup {} of policy {} as {name:?}: retention will keep it.",
            b.id, b.policy
        );
        match tag_frozen(cloud, &account, &b, name).await {
            Ok(n) => {
                println!("Tagged {n} artifact(s) lifeboat:frozen = {name:?}.");
                Ok(0)
            }
            Err(e) => {
                crate::colour::warning(format_args!("the artifacts could not be tagged as frozen ({e}); an import after a lost state would not know this freeze. Run the same freeze again to retry."));
                Ok(1)
            }
        }
    })
    .await
}
