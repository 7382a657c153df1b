//! One operation of a group: find its targets (the listed ones, the
//! members its `select` blocks find now, and the instances whose
//! `lifeboat:resource-control` tag names it, see [`super::tagged`]),
//! stop, hibernate or start those
//! not in the state asked for, verify within the group's `timeout`, ask
//! once more for those that did not get there, and say which failed.
//!
//! Every target gets a row in the operations log, so a failed night can be
//! read back target by target.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lifeboat_schema::{Account, AutoRemove, Config, ResourceControlGroup, TagSelector};

use crate::cloud::power::{Power, PowerKind, PowerState, Powered};
use crate::cloud::{
    collect_chunked, collect_pages, Cloud, CloudError, ErrorKind, Query, Tags, FILTER_CHUNK,
};
use crate::control::tagged;
use crate::control::timetable::Action;
use crate::membership::tag::{control_items, NO_RESOURCE_CONTROL, TAG_RESOURCE_CONTROL};
use crate::plan::observe::selector_query;
use crate::state::ControlRecord;

/// The instant an operation reads when it logs a row.
pub type Now<'a> = &'a (dyn Fn() -> DateTime<Utc> + Send + Sync);

/// The tag AWS puts on the instances of an Auto Scaling group: the group
/// would replace an instance stopped under it, so none is acted on.
pub const AUTOSCALING_TAG: &str = "aws:autoscaling:groupName";

/// What an operation is asked to do.
#[derive(Debug, Clone)]
pub struct Request {
    pub action: Action,
    /// The periodic look of an off period: only databases found running
    /// again (AWS starts a database stopped for seven days) are stopped,
    /// and only they are logged.
    pub databases_only: bool,
    /// Time between two looks while waiting.
    pub poll: std::time::Duration,
    /// Raised when the runner stops (a signal, the lease lost): the
    /// operation stops waiting and says which targets it did not verify.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Request {
    fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::SeqCst))
    }
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub group: String,
    pub action: Action,
    /// One row per target looked at.
    pub rows: Vec<ControlRecord>,
    /// Why an alert should open: targets that failed, or listed ones gone
    /// under `auto_remove_targets = "alert"`, or instances two groups select.
    pub alert: Option<String>,
    /// The runner stopped while the operation waited: not every target
    /// was verified, and the operation is not remembered as done.
    pub interrupted: bool,
    /// Resource-control tags in the group's regions that take their
    /// instance nowhere (an unknown group, a malformed item), one line each.
    pub problems: Vec<String>,
}

impl Outcome {
    pub fn failed(&self) -> usize {
        self.rows.iter().filter(|r| r.result == "failed").count()
    }
}

/// A group's target in one region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    kind: PowerKind,
    id: String,
}

impl Key {
    fn name(&self) -> String {
        format!("{} {}", self.kind.as_str(), self.id)
    }
}

/// The regions a group acts in, with whether its listed targets are in
/// each: the listed targets are in the group's `region` (or the account's
/// only one); `select` and the instances tagged for the group are looked
/// for in that region or, without one, in all the account's. A template
/// acts nowhere.
pub fn regions(g: &ResourceControlGroup, account: &Account) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    if g.template {
        return out;
    }
    if !(g.instances.is_empty() && g.rds.is_empty() && g.aurora.is_empty()) {
        let listed = g
            .region
            .clone()
            .or_else(|| account.regions.first().cloned());
        out.extend(listed.map(|r| (r, true)));
    }
    match &g.region {
        Some(r) => {
            out.entry(r.clone()).or_insert(false);
        }
        None => {
            for r in &account.regions {
                out.entry(r.clone()).or_insert(false);
            }
        }
    }
    out
}

/// Every target of `g` in one region, as AWS reports it now: listed ones
/// it does not report are [`PowerState::Gone`]. One filtered describe per
/// selector, one for the resource-control tag, and one per kind of listed
/// id (by 200 ids).
pub async fn observe(
    power: &dyn Power,
    g: &ResourceControlGroup,
    listed_here: bool,
    databases_only: bool,
) -> Result<BTreeMap<(PowerKind, String), Powered>, CloudError> {
    observe_tagged(power, g, listed_here, databases_only, &mut Vec::new()).await
}

/// [`observe`], also handing back every instance the tag look found (the
/// group's or not), whose tags the operation reads for problems.
pub async fn observe_tagged(
    power: &dyn Power,
    g: &ResourceControlGroup,
    listed_here: bool,
    databases_only: bool,
    tagged_here: &mut Vec<Powered>,
) -> Result<BTreeMap<(PowerKind, String), Powered>, CloudError> {
    let mut out = BTreeMap::new();
    let mut put = |p: Powered| {
        // `exclude` takes an instance out of the group, listed or selected.
        if !excluded(g, &p) {
            out.insert((p.kind, p.id.clone()), p);
        }
    };
    if !databases_only {
        for sel in &g.selectors {
            let q = selector_query(sel);
            for p in collect_pages(|t| power.instances_power(&q, t)).await? {
                // A terminated member has left the group; it is no target.
                if p.state != PowerState::Gone {
                    put(p);
                }
            }
        }
        // Instances naming the group in their tag; listed or selected
        // too, they are one target.
        let q = tagged::query();
        for p in collect_pages(|t| power.instances_power(&q, t)).await? {
            if p.state == PowerState::Gone {
                continue;
            }
            if tagged::names(g, &p.tags) {
                put(p.clone());
            }
            tagged_here.push(p);
        }
    }
    if !listed_here {
        return Ok(out);
    }
    let mut listed: Vec<(PowerKind, &[String])> =
        vec![(PowerKind::Rds, &g.rds), (PowerKind::Aurora, &g.aurora)];
    if !databases_only {
        listed.push((PowerKind::Instance, &g.instances));
    }
    for (kind, ids) in listed {
        let found = match kind.db() {
            None => {
                collect_chunked(ids, |c, t| {
                    let q = Query {
                        ids: c.to_vec(),
                        tags: vec![],
                    };
                    async move { power.instances_power(&q, t).await }
                })
                .await?
            }
            Some(db) => {
                collect_chunked(
                    ids,
                    |c, t| async move { power.databases_power(db, c, t).await },
                )
                .await?
            }
        };
        let mut found: BTreeMap<String, Powered> =
            found.into_iter().map(|p| (p.id.clone(), p)).collect();
        for id in ids {
            put(found.remove(id).unwrap_or_else(|| Powered {
                id: id.clone(),
                kind,
                state: PowerState::Gone,
                detail: "not found".into(),
                hibernation: false,
                tags: Default::default(),
            }));
        }
    }
    Ok(out)
}

/// Whether `sel` picks an instance with `tags` (a trailing `*` in the
/// value matches a prefix, as in the describe filters).
pub fn selects(sel: &TagSelector, tags: &Tags) -> bool {
    let Some(v) = tags.get(&sel.tag) else {
        return false;
    };
    match sel.value.as_deref() {
        None => true,
        Some(want) => match want.strip_suffix('*') {
            Some(prefix) => v.starts_with(prefix),
            None => v == want,
        },
    }
}

/// Whether an `exclude` block of `g` takes the target out of it.
fn excluded(g: &ResourceControlGroup, p: &Powered) -> bool {
    p.kind == PowerKind::Instance && g.excluded.iter().any(|s| selects(s, &p.tags))
}

/// Why a target a group lists or selects is never acted on: its opt-out
/// tag, or an Auto Scaling group that would replace it.
pub fn skip_reason(p: &Powered) -> Option<String> {
    if control_items(&p.tags).opt_out {
        return Some(format!(
            "tagged {TAG_RESOURCE_CONTROL} = {NO_RESOURCE_CONTROL}"
        ));
    }
    p.tags
        .get(AUTOSCALING_TAG)
        .map(|asg| format!("in Auto Scaling group {asg:?}, which would replace it if stopped"))
}

/// The other groups of `g`'s account that also take instance `p` in
/// `region`: list it, select it, or are named by its resource-control tag
/// (configured, or made from a template), without excluding it.
fn also_selected_by(
    config: &Config,
    g: &ResourceControlGroup,
    region: &str,
    p: &Powered,
) -> Vec<String> {
    let Some(account) = config.accounts.get(&g.account) else {
        return Vec::new();
    };
    let mut out: BTreeSet<String> = config
        .resource_control_groups
        .iter()
        .filter(|(_, o)| o.account == g.account && !o.template)
        .filter(|(_, o)| {
            let listed = o.instances.contains(&p.id)
                && regions(o, account).get(region).copied() == Some(true);
            let picked = o.region.as_deref().is_none_or(|r| r == region)
                && o.selectors.iter().any(|s| selects(s, &p.tags));
            (listed || picked) && !excluded(o, p)
        })
        .map(|(name, _)| name.clone())
        .collect();
    let tag = tagged::read(config, &g.account, region, &p.id, &p.tags);
    let groups = &config.resource_control_groups;
    for name in &tag.groups {
        if groups.get(name).is_some_and(|o| !excluded(o, p)) {
            out.insert(name.clone());
        }
    }
    for (name, template) in &tag.made {
        // A made group excludes what its template does.
        if groups.get(template).is_some_and(|t| !excluded(t, p)) {
            out.insert(name.clone());
        }
    }
    out.remove(&g.name);
    out.into_iter().collect()
}

/// The state an action leaves a target in.
fn goal(action: Action) -> PowerState {
    match action {
        Action::Off => PowerState::Stopped,
        Action::On => PowerState::Running,
    }
}

/// Performs one operation of group `name` in every region it acts in.
///
/// `stopped` is what the group's last "off" stopped (the operations log's
/// [`control_stopped`](crate::state::Store::control_stopped)): an "on"
/// starts only those, and a database look stops again only those.
pub async fn operate(
    cloud: &Arc<dyn Cloud>,
    config: &Config,
    name: &str,
    req: &Request,
    stopped: &BTreeSet<String>,
    now: Now<'_>,
) -> Outcome {
    let g = &config.resource_control_groups[name];
    let mut out = Outcome {
        group: name.to_string(),
        action: req.action,
        rows: Vec::new(),
        alert: None,
        interrupted: false,
        problems: Vec::new(),
    };
    let Some(account) = config.accounts.get(&g.account) else {
        return out;
    };
    let mut gone = Vec::new();
    let mut shared = Vec::new();
    for (region, listed_here) in regions(g, account) {
        // The runner stopped: the regions left are not begun.
        if req.cancelled() {
            out.interrupted = true;
            break;
        }
        let mut op = Region {
            g,
            config,
            region: region.clone(),
            req,
            stopped,
            now,
            rows: BTreeMap::new(),
            shared: Vec::new(),
            problems: Vec::new(),
            interrupted: false,
        };
        match cloud.power(account, &region).await {
            Ok(power) => op.run(power.as_ref(), listed_here, &mut gone).await,
            Err(e) => op.fail_region(&region, &e),
        }
        out.interrupted |= op.interrupted;
        shared.extend(op.shared);
        out.problems.extend(op.problems);
        out.rows.extend(op.rows.into_values());
    }
    let failed: Vec<&str> = out
        .rows
        .iter()
        .filter(|r| r.result == "failed")
        .map(|r| r.target.as_str())
        .collect();
    let mut why = Vec::new();
    if !failed.is_empty() {
        why.push(format!(
            "{} failed for {}",
            req.action.as_str(),
            failed.join(", ")
        ));
    }
    if g.auto_remove_targets == AutoRemove::Alert && !gone.is_empty() {
        why.push(format!("gone from AWS: {}", gone.join(", ")));
    }
    if !shared.is_empty() {
        why.push(format!(
            "selected by more than one group, left alone: {}",
            shared.join(", ")
        ));
    }
    if !why.is_empty() {
        out.alert = Some(format!(
            "resource_control_group {name:?}: {}",
            why.join("; ")
        ));
    }
    out
}

fn instance_key(id: &str) -> Key {
    Key {
        kind: PowerKind::Instance,
        id: id.to_string(),
    }
}

/// One region's part of an operation.
struct Region<'a> {
    g: &'a ResourceControlGroup,
    config: &'a Config,
    region: String,
    req: &'a Request,
    stopped: &'a BTreeSet<String>,
    now: Now<'a>,
    rows: BTreeMap<Key, ControlRecord>,
    /// Instances another group takes too (`instance i-… (also GROUP)`).
    shared: Vec<String>,
    /// Resource-control tags here that take their instance nowhere.
    problems: Vec<String>,
    interrupted: bool,
}

impl Region<'_> {
    fn row(&mut self, key: &Key, action: &str, result: &str, detail: String) {
        let now = (self.now)();
        let verified = matches!(result, "already").then_some(now);
        self.rows.insert(
            key.clone(),
            ControlRecord {
                group: self.g.name.clone(),
                target: key.name(),
                action: action.to_string(),
                requested: now,
                verified,
                result: result.to_string(),
                detail,
            },
        );
    }

    fn fail_region(&mut self, region: &str, e: &CloudError) {
        let key = Key {
            kind: PowerKind::Instance,
            id: format!("(region {region})"),
        };
        let action = self.req.action.as_str();
        self.row(&key, action, "failed", e.to_string());
    }

    async fn run(&mut self, power: &dyn Power, listed_here: bool, gone: &mut Vec<String>) {
        let mut tagged_here = Vec::new();
        let seen = match observe_tagged(
            power,
            self.g,
            listed_here,
            self.req.databases_only,
            &mut tagged_here,
        )
        .await
        {
            Ok(s) => s,
            Err(e) => return self.fail_region(&e.region.clone(), &e),
        };
        for p in &tagged_here {
            let r = tagged::read(self.config, &self.g.account, &self.region, &p.id, &p.tags);
            self.problems.extend(r.problems);
        }
        let goal = goal(self.req.action);
        let mut waiting: Vec<(Key, Powered)> = Vec::new();
        for ((kind, id), p) in seen {
            let key = Key { kind, id };
            let action = self.action_for(&p);
            if let Some(why) = self.left_alone(&key, &p) {
                // A look logs only what it stopped.
                if !self.req.databases_only {
                    self.row(&key, action, "skipped", why);
                }
                continue;
            }
            match p.state {
                s if s == goal => {
                    if !self.req.databases_only {
                        self.row(&key, action, "already", String::new());
                    }
                }
                // The periodic look acts on databases running again only.
                PowerState::Gone | PowerState::Changing if self.req.databases_only => {}
                PowerState::Gone => {
                    let (result, detail) = match self.g.auto_remove_targets {
                        AutoRemove::No => {
                            ("failed", format!("{} is gone: {}", key.name(), p.detail))
                        }
                        AutoRemove::Yes | AutoRemove::Alert => ("gone", p.detail.clone()),
                    };
                    if self.g.auto_remove_targets == AutoRemove::Alert {
                        gone.push(key.name());
                    }
                    self.row(&key, action, result, detail);
                }
                // Under way (stopping, starting, backing up): waited for,
                // and asked again at the retry if it settles elsewhere.
                PowerState::Changing => {
                    self.row(&key, action, "requested", format!("was {}", p.detail));
                    waiting.push((key, p));
                }
                _ => {
                    self.row(&key, action, "requested", String::new());
                    waiting.push((key, p));
                }
            }
        }
        self.drive(power, listed_here, &waiting).await;
    }

    /// Asks for the change, verifies it, and asks once more for the
    /// targets that did not get there or whose call failed.
    async fn drive(&mut self, power: &dyn Power, listed_here: bool, waiting: &[(Key, Powered)]) {
        let first: Vec<&(Key, Powered)> = waiting
            .iter()
            .filter(|(_, p)| p.state != PowerState::Changing)
            .collect();
        self.call(power, &first, false).await;
        let mut left = self.settle(power, listed_here).await;
        if self.interrupted {
            return self.abandon(left);
        }
        // A call that failed (throttled, a state AWS refused) is made again
        // with the others, without a timeout's wait.
        for (k, p) in waiting {
            if self.rows.get(k).is_some_and(|r| r.result == "call_failed") {
                left.push((k.clone(), p.clone()));
            }
        }
        if left.is_empty() {
            return;
        }
        // Once more, then a second timeout. An instance still `stopping` is
        // asked again (EC2 takes a repeated stop); a database under way
        // would refuse the call.
        let again: Vec<&(Key, Powered)> = left
            .iter()
            .filter(|(k, p)| {
                p.state != PowerState::Gone
                    && (k.kind == PowerKind::Instance || p.state != PowerState::Changing)
            })
            .collect();
        for (k, _) in &left {
            if let Some(r) = self.rows.get_mut(k) {
                // Hibernation refused (not enabled on the root volume, the
                // instance not ready for it): the second request stops it.
                if r.result == "call_failed" && r.action == "hibernate" {
                    r.action = "off".into();
                    r.detail = format!("hibernation refused, stopped instead: {}", r.detail);
                }
                if r.result == "requested" || r.result == "call_failed" {
                    r.result = "retrying".into();
                }
            }
        }
        self.call(power, &again, true).await;
        left = self.settle(power, listed_here).await;
        if self.interrupted {
            return self.abandon(left);
        }
        for (k, p) in left {
            if let Some(r) = self.rows.get_mut(&k) {
                r.result = "failed".into();
                let secs = self.g.timeout_secs;
                r.detail = format!(
                    "still {} after {secs}s and a second request{}",
                    p.detail,
                    if r.detail.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", r.detail)
                    }
                );
            }
        }
    }

    /// Why a target found is not acted on in this operation: its tags, a
    /// second group that takes it too, or (for an "on", or a look) that
    /// the group's last "off" did not stop it.
    fn left_alone(&mut self, key: &Key, p: &Powered) -> Option<String> {
        if let Some(why) = skip_reason(p) {
            return Some(why);
        }
        if key.kind == PowerKind::Instance {
            let others = also_selected_by(self.config, self.g, &self.region, p);
            if !others.is_empty() {
                let names: Vec<String> = others.iter().map(|o| format!("{o:?}")).collect();
                self.shared
                    .push(format!("{} (also {})", key.name(), others.join(", ")));
                return Some(format!(
                    "also selected by resource_control_group {}: no group acts on it",
                    names.join(", ")
                ));
            }
        }
        let ours = self.stopped.contains(&key.name());
        let goal_reached = p.state == goal(self.req.action);
        if (self.req.action == Action::On || self.req.databases_only) && !ours && !goal_reached {
            return Some("left alone: the group's last off did not stop it".into());
        }
        None
    }

    /// The runner stopped while waiting: the targets not verified fail,
    /// saying so (the next runner does the operation again).
    fn abandon(&mut self, left: Vec<(Key, Powered)>) {
        let seen: BTreeMap<Key, String> = left.into_iter().map(|(k, p)| (k, p.detail)).collect();
        for (k, r) in self.rows.iter_mut() {
            if matches!(r.result.as_str(), "requested" | "retrying" | "call_failed") {
                let was = seen.get(k).map_or("not seen", String::as_str);
                r.result = "failed".into();
                r.detail = format!("not verified: the runner stopped while it was {was}");
            }
        }
    }

    /// The time between two looks, cut short when the runner stops.
    async fn pause(&self) {
        let until = tokio::time::Instant::now() + self.req.poll;
        let step = std::time::Duration::from_millis(200);
        while !self.req.cancelled() && tokio::time::Instant::now() < until {
            tokio::time::sleep_until(until.min(tokio::time::Instant::now() + step)).await;
        }
    }

    /// `off`, `hibernate` or `on`, as the log names what was done.
    fn action_for(&self, p: &Powered) -> &'static str {
        match self.req.action {
            Action::On => "on",
            Action::Off if self.g.hibernate && p.hibernation => "hibernate",
            Action::Off => "off",
        }
    }

    /// The stop, hibernate or start calls for `targets`: instances in
    /// calls of up to 200, databases one call each. A failed call fails
    /// its targets on the `last` attempt, and leaves them for the retry
    /// before.
    async fn call(&mut self, power: &dyn Power, targets: &[&(Key, Powered)], last: bool) {
        let mut stop = Vec::new();
        let mut hibernate = Vec::new();
        let mut start = Vec::new();
        for (k, _) in targets {
            let hibernating = self.rows.get(k).is_some_and(|r| r.action == "hibernate");
            match (k.kind.db(), self.req.action) {
                (None, Action::On) => start.push(k.id.clone()),
                (None, Action::Off) if hibernating => hibernate.push(k.id.clone()),
                (None, Action::Off) => stop.push(k.id.clone()),
                (Some(db), action) => {
                    let r = match action {
                        Action::Off => power.stop_database(db, &k.id).await,
                        Action::On => power.start_database(db, &k.id).await,
                    };
                    if let Err(e) = r {
                        self.failed(k, &e, last);
                    }
                }
            }
        }
        for (ids, which) in [(stop, 0), (hibernate, 1), (start, 2)] {
            for chunk in ids.chunks(FILTER_CHUNK) {
                let one = |c: &[String]| {
                    let c = c.to_vec();
                    async move {
                        match which {
                            0 => power.stop_instances(&c, false).await,
                            1 => power.stop_instances(&c, true).await,
                            _ => power.start_instances(&c).await,
                        }
                    }
                };
                let Err(e) = one(chunk).await else {
                    continue;
                };
                // A throttled call is made again whole, at the retry.
                if chunk.len() == 1 || e.kind == ErrorKind::Throttled {
                    for id in chunk {
                        self.failed(&instance_key(id), &e, last);
                    }
                    continue;
                }
                // EC2 refuses a whole call for one instance it will not
                // act on: asked one by one, the others go ahead and each
                // error names its own instance.
                for id in chunk {
                    if let Err(e) = one(std::slice::from_ref(id)).await {
                        self.failed(&instance_key(id), &e, last);
                    }
                }
            }
        }
    }

    fn failed(&mut self, k: &Key, e: &CloudError, last: bool) {
        if let Some(r) = self.rows.get_mut(k) {
            r.result = if last { "failed" } else { "call_failed" }.into();
            r.detail = e.to_string();
        }
    }

    /// Looks until every target still waiting is in the state asked for,
    /// or the group's timeout passes; returns those that are not, as last
    /// seen. A failed look counts as a look that saw nothing settle.
    async fn settle(&mut self, power: &dyn Power, listed_here: bool) -> Vec<(Key, Powered)> {
        let goal = goal(self.req.action);
        let deadline =
            std::time::Instant::now() + std::time::Duration::from_secs(self.g.timeout_secs);
        let mut last: BTreeMap<Key, Powered> = BTreeMap::new();
        loop {
            let waiting: Vec<Key> = self
                .rows
                .iter()
                .filter(|(_, r)| r.result == "requested" || r.result == "retrying")
                .map(|(k, _)| k.clone())
                .collect();
            if waiting.is_empty() {
                return Vec::new();
            }
            if let Ok(seen) = observe(power, self.g, listed_here, self.req.databases_only).await {
                for k in &waiting {
                    let p = seen.get(&(k.kind, k.id.clone())).cloned();
                    let Some(p) = p else { continue };
                    if p.state == goal {
                        let retried = self.rows[k].result == "retrying";
                        let now = (self.now)();
                        let r = self.rows.get_mut(k).expect("waiting row");
                        r.verified = Some(now);
                        r.result = if retried { "retried" } else { "done" }.into();
                    } else {
                        last.insert(k.clone(), p);
                    }
                }
            }
            let still = self
                .rows
                .values()
                .any(|r| r.result == "requested" || r.result == "retrying");
            if !still {
                return Vec::new();
            }
            if self.req.cancelled() {
                self.interrupted = true;
            }
            if self.interrupted || std::time::Instant::now() >= deadline {
                return self
                    .rows
                    .iter()
                    .filter(|(_, r)| r.result == "requested" || r.result == "retrying")
                    .map(|(k, _)| {
                        let p = last.get(k).cloned().unwrap_or_else(|| Powered {
                            id: k.id.clone(),
                            kind: k.kind,
                            state: PowerState::Changing,
                            detail: "not seen".into(),
                            hibernation: false,
                            tags: Default::default(),
                        });
                        (k.clone(), p)
                    })
                    .collect();
            }
            self.pause().await;
        }
    }
}
