//! Looks made once for many restores: a recovery scenario plans one
//! restore per instance, and each would ask on its own whether its subnet
//! exists (DescribeSubnets) and whether its original still runs
//! (DescribeInstances). [`look_ahead`] asks for all of them at once, one
//! call per account and region for every 200 ids ([`FILTER_CHUNK`]), and
//! planning reads the answers from the [`Looked`] it returns.
//!
//! What is not in it (a failed look, a request whose answer this pass did
//! not foresee) is asked for by the planning itself, one call as before:
//! the look-ahead saves calls, it decides nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::plan::{self, Accounts};
use super::{Kind, Request};
use crate::cloud::{collect_pages, Cloud, Query, FILTER_CHUNK};
use crate::state::SharedStore;

/// `(account name, region, id)`.
type Key = (String, String, String);

/// The answers of a look-ahead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Looked {
    /// Each subnet asked for: its zone, `None` when it does not exist.
    subnets: BTreeMap<Key, Option<String>>,
    /// Each original instance asked for: whether it still runs.
    alive: BTreeMap<Key, bool>,
}

fn key(account: &str, region: &str, id: &str) -> Key {
    (account.to_string(), region.to_string(), id.to_string())
}

impl Looked {
    /// Subnet `id` in `account`'s `region`: `Some(zone or None)` when it
    /// was looked at.
    pub fn subnet(&self, account: &str, region: &str, id: &str) -> Option<Option<String>> {
        self.subnets.get(&key(account, region, id)).cloned()
    }

    /// Whether instance `id` of `account`'s `region` still runs, when it
    /// was looked at.
    pub fn alive(&self, account: &str, region: &str, id: &str) -> Option<bool> {
        self.alive.get(&key(account, region, id)).copied()
    }
}

/// What planning `req` will look at: the subnet it launches into, and the
/// original whose address it may take (see `plan::private_ip`).
fn wanted(req: &Request, store: &SharedStore) -> (Option<Key>, Option<Key>) {
    let Ok((chosen, _, _)) = plan::chosen(req, store) else {
        return (None, None);
    };
    let Some(crate::cloud::restore::Shape::Instance(shape)) = &chosen.shape else {
        return (None, None);
    };
    let dest = plan::dest_account(req, &chosen);
    let region = chosen.artifacts.region.clone();
    let same_place = plan::same_place(shape, &region, &dest, &chosen);
    let subnet = match (&req.options.subnet, same_place) {
        (Some(s), _) => Some(s.clone()),
        (None, true) => shape.subnet_id.clone(),
        (None, false) => None,
    };
    let original = req.drill.is_none()
        && req.options.private_ip.is_none()
        && shape.private_ip.is_some()
        && same_place
        && subnet == shape.subnet_id;
    (
        subnet.map(|s| key(&dest, &region, &s)),
        original.then(|| key(&chosen.backup.account, &region, &req.target)),
    )
}

/// Looks at every subnet and original the instance requests of `reqs`
/// will ask about, grouped by account and region.
pub async fn look_ahead(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    accounts: &Accounts,
    reqs: &[Request],
) -> Looked {
    let mut subnets: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut originals: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for req in reqs.iter().filter(|r| r.kind == Kind::Instance) {
        let (subnet, original) = wanted(req, store);
        if let Some((a, r, id)) = subnet {
            subnets.entry((a, r)).or_default().insert(id);
        }
        if let Some((a, r, id)) = original {
            originals.entry((a, r)).or_default().insert(id);
        }
    }
    let mut out = Looked::default();
    for ((name, region), ids) in subnets {
        let Some(a) = accounts.get(&name) else {
            continue;
        };
        let Ok(launch) = cloud.launch(a, &region).await else {
            continue;
        };
        let ids: Vec<String> = ids.into_iter().collect();
        for chunk in ids.chunks(FILTER_CHUNK) {
            // A failed look leaves these to the planning, one by one.
            let Ok(zones) = launch.subnet_zones(chunk).await else {
                continue;
            };
            for id in chunk {
                let zone = zones.get(id).cloned();
                out.subnets.insert(key(&name, &region, id), zone);
            }
        }
    }
    for ((name, region), ids) in originals {
        let Some(a) = accounts.get(&name) else {
            continue;
        };
        let Ok(ec2) = cloud.ec2(a, &region).await else {
            continue;
        };
        let ids: Vec<String> = ids.into_iter().collect();
        for chunk in ids.chunks(FILTER_CHUNK) {
            let q = Query {
                ids: chunk.to_vec(),
                tags: vec![],
            };
            let Ok(found) = collect_pages(|t| ec2.instances_page(&q, t)).await else {
                continue;
            };
            for id in chunk {
                let alive = found.iter().any(|i| &i.id == id && !i.state.is_gone());
                out.alive.insert(key(&name, &region, id), alive);
            }
        }
    }
    out
}
