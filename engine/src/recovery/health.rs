//! Before a drill's check runs, each instance it restored must pass EC2's
//! two status checks, not only be `running`: an instance whose OS has not
//! booted yet (`initializing`) fails any check that connects to it, and one
//! on a broken host (`impaired`) is a failed restore, not a failed
//! application.
//!
//! One DescribeInstanceStatus per (account, region) for every 100 open
//! instances, per look; `initializing` (and `not-applicable`, still starting)
//! is waited for until the restore wait is over, and so is `impaired` or
//! `insufficient-data` (AWS may still settle it); past the wait, the drill
//! fails naming the instance and the check.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::drill::Restored;
use super::recover::Recoverer;
use crate::backup::wait::{poll, Look};
use crate::cloud::restore::{InstanceHealth, STATUS_CHUNK};

/// Waits until every restored instance of `restored` passes both status
/// checks; `Err` names each that did not, with its account and region.
pub async fn wait_healthy(rec: &Recoverer, restored: &[Restored]) -> Result<(), String> {
    let mut groups: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
    for r in restored.iter().filter(|r| r.kind == "instance") {
        groups
            .entry((r.account.as_str(), r.region.as_str()))
            .or_default()
            .push(r.id.clone());
    }
    let mut problems = Vec::new();
    for ((account, region), ids) in groups {
        if let Err(p) = group(rec, account, region, ids).await {
            problems.push(p);
        }
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(problems.join("; ")),
    }
}

/// The wait for the instances of one account and region.
async fn group(
    rec: &Recoverer,
    account: &str,
    region: &str,
    ids: Vec<String>,
) -> Result<(), String> {
    let where_ = format!("account {account}, {region}");
    let a = rec
        .accounts
        .get(account)
        .ok_or_else(|| format!("account {account} is no longer in the configuration"))?;
    let launch = rec
        .cloud
        .launch(a, region)
        .await
        .map_err(|e| e.to_string())?;
    let last: Mutex<BTreeMap<String, InstanceHealth>> = Mutex::new(BTreeMap::new());
    let waited = poll(ids, STATUS_CHUNK, rec.wait, |ids| {
        let (launch, last) = (&launch, &last);
        async move {
            let found = launch.instance_status(&ids).await?;
            let mut seen = last.lock().expect("status map poisoned");
            Ok(found
                .into_iter()
                .map(|h| {
                    let look = if h.ok() {
                        Look::Done(())
                    } else {
                        Look::Pending
                    };
                    let id = h.id.clone();
                    seen.insert(id.clone(), h);
                    (id, look)
                })
                .collect())
        }
    })
    .await;
    if waited.failed.is_empty() {
        return Ok(());
    }
    let last = last.into_inner().expect("status map poisoned");
    let secs = rec.wait.timeout.as_secs();
    let each: Vec<String> = waited
        .failed
        .iter()
        .map(|(id, why)| match last.get(id) {
            Some(h) => format!("instance {id} ({where_}): {} after {secs}s", failing(h)),
            None => format!("instance {id} ({where_}): {why}"),
        })
        .collect();
    Err(each.join("; "))
}

/// Which of the two checks is not `ok`, and what it says.
fn failing(h: &InstanceHealth) -> String {
    let mut out = Vec::new();
    if h.instance != "ok" {
        out.push(format!("instance status check {}", h.instance));
    }
    if h.system != "ok" {
        out.push(format!("system status check {}", h.system));
    }
    out.join(", ")
}
