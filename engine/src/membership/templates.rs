//! Policies made from templates by the resources' own tags: an item
//! `POLICY:TEMPLATE` of a backup tag, where `TEMPLATE` is a configured
//! `template = true` policy and `POLICY` is not configured, asks for policy
//! `POLICY` as a copy of the template (schedules, generations, options,
//! DR), its members the resources whose tags name it. Such a policy lives
//! in state, not in the files. A configured `POLICY` takes the item as its
//! own and the template part is ignored.
//!
//! A made policy that no tag names any more (its last tagged resource was
//! terminated or untagged, or its template was renamed or removed) is kept,
//! with its last settings, while the catalog holds backups or DR copies of
//! it: that is when they are needed, and an operator passing
//! `--allow-destroy-backups` for some other removal must not lose them.
//! Its members leave by the usual rules. Once it has none it is disabled
//! (it would only fail at each of its times) and its backups expire as the
//! departed targets' they are (`departed_retention`); once none is left the
//! plan removes it as any removed policy.

use std::collections::{BTreeMap, BTreeSet};

use lifeboat_schema::validate::policy_name_key;
use lifeboat_schema::{Config, Policy};

use super::tag::{backup_tag, parse, Grammar};
use crate::plan::observe::{db_target_kind, Observation};
use crate::state::model::{PolicyState, TargetKind};
use crate::state::Snapshot;

/// Where a policy made from a template comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    pub template: String,
    /// The first resource (by id) whose tag asks for it.
    pub on: String,
}

impl Made {
    /// `from template web_tpl, tag on i-0abc`: the reason a plan gives.
    pub fn reason(&self) -> String {
        format!("from template {}, tag on {}", self.template, self.on)
    }
}

/// The policies made from templates that a plan keeps or makes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Wanted {
    /// Those the observed tags ask for, by name.
    pub made: BTreeMap<String, Made>,
    /// Made policies in state that nothing makes any more but that still
    /// have backups or DR copies in the catalog: kept as state has them.
    pub kept: BTreeMap<String, PolicyState>,
    /// Those of `kept` that do not run: no member left, no configured
    /// template, or a name that clashes; disabled, their backups kept.
    pub idle: BTreeSet<String>,
    /// Names refused, and policies kept, with why.
    pub warnings: Vec<String>,
}

/// One resource as the backup tag sees it: its kind, id, region, the key
/// its account is observed under, and its tags.
type Tagged<'a> = (
    TargetKind,
    &'a String,
    &'a String,
    String,
    &'a crate::cloud::Tags,
);

/// Every resource that can join by its tag: instances not terminated,
/// volumes, databases not on their way out.
fn tagged(obs: &Observation) -> impl Iterator<Item = Tagged<'_>> {
    let instances = obs
        .instances
        .values()
        .filter(|i| !i.state.is_gone())
        .map(|i| {
            (
                TargetKind::Instance,
                &i.id,
                &i.region,
                i.id.clone(),
                &i.tags,
            )
        });
    let volumes = obs
        .volumes
        .values()
        .map(|v| (TargetKind::Volume, &v.id, &v.region, v.id.clone(), &v.tags));
    let databases = obs
        .databases
        .iter()
        .filter(|(_, d)| d.status != "deleting" && d.status != "deleted")
        .map(|(key, d)| {
            let kind = db_target_kind(d.kind);
            (kind, &d.id, &d.region, key.clone(), &d.tags)
        });
    instances.chain(volumes).chain(databases)
}

/// The policies the observed tags ask to be made from configured templates
/// (resources count only in their template's account and its regions; an
/// opted-out resource asks for nothing), and the made policies in `prior`
/// that are kept while they have backups.
pub fn wanted(
    config: &Config,
    state: &Snapshot,
    prior: &BTreeMap<String, PolicyState>,
    obs: &Observation,
) -> Wanted {
    let mut out = Wanted::default();
    if obs.from_state {
        // No tags were read: the policies made from tags are those the
        // state records with members, while their template is still
        // configured (one kept for its backups alone stays kept).
        let targets = state.targets().unwrap_or_default();
        for (name, p) in prior {
            if !targets.keys().any(|(policy, _)| policy == name) {
                continue;
            }
            let Some(t) = &p.from_template else { continue };
            let configured = config.policies.get(t).is_some_and(|tpl| tpl.template);
            if configured && !config.policies.contains_key(name) {
                let on = "a resource, as recorded".to_string();
                let made = Made {
                    template: t.clone(),
                    on,
                };
                out.made.insert(name.clone(), made);
            }
        }
    }
    let mut refused: BTreeMap<String, String> = BTreeMap::new();
    for (kind, id, region, key, tags) in tagged(obs) {
        if super::opted_out(tags).is_some() {
            continue;
        }
        let Some((_, value)) = backup_tag(tags) else {
            continue;
        };
        for item in parse(Grammar::Backup, value).items {
            let Some(t) = &item.template else { continue };
            if config.policies.contains_key(&item.name) {
                continue;
            }
            let Some(tpl) = config.policies.get(t).filter(|p| p.template) else {
                continue;
            };
            let in_regions = config
                .accounts
                .get(&tpl.account)
                .is_some_and(|a| a.regions.contains(region));
            if !in_regions || !obs.in_account(&key, &tpl.account) {
                continue;
            }
            if let Some(why) = clash(&item.name, config, prior) {
                refused.entry(item.name.clone()).or_insert_with(|| {
                    format!(
                        "policy.{} is not made from template {t} (tag on {} {id}): {why}",
                        item.name,
                        kind.noun()
                    )
                });
                continue;
            }
            let made = Made {
                template: t.clone(),
                on: id.clone(),
            };
            // The smallest id asks first; two templates for one name: the
            // first resource's wins, so the plan does not depend on order.
            match out.made.get(&item.name) {
                Some(m) if m.on <= made.on => {}
                _ => {
                    out.made.insert(item.name.clone(), made);
                }
            }
        }
    }
    // Two new names that fold alike: the first (by name) is made.
    let mut keys: BTreeMap<String, String> = BTreeMap::new();
    out.made.retain(|name, m| {
        let key = policy_name_key(name);
        if let Some(first) = keys.get(&key) {
            refused.entry(name.clone()).or_insert_with(|| {
                format!(
                    "policy.{name} is not made from template {} (tag on {}): its DB snapshots would be named like those of policy.{first}, made from a tag too",
                    m.template, m.on
                )
            });
            return false;
        }
        keys.insert(key, name.clone());
        true
    });
    out.warnings.extend(refused.into_values());
    kept(config, state, prior, obs, &mut out);
    out
}

/// Why a name a tag asks for may not be made, if it may not: it would
/// take over a policy whose removal is pending (its history under the
/// template's settings), or name its DB snapshots like another policy's.
fn clash(name: &str, config: &Config, prior: &BTreeMap<String, PolicyState>) -> Option<String> {
    if prior.get(name).is_some_and(|p| p.from_template.is_none()) {
        return Some(format!(
            "policy.{name} was removed from the configuration and its removal is not applied yet; a tag may not take it over"
        ));
    }
    let key = policy_name_key(name);
    let others = config.policies.keys().chain(prior.keys());
    for other in others.filter(|o| o.as_str() != name) {
        if other.eq_ignore_ascii_case(name) {
            return Some(format!(
                "policy.{other} differs from it only in case; name it policy.{other}, or another name"
            ));
        }
        if policy_name_key(other) == key {
            return Some(format!(
                "its DB snapshots would be named like those of policy.{other} ({key})"
            ));
        }
    }
    None
}

/// The made policies in `prior` nothing makes now (no tag names them, or
/// their template is gone) that still have backups or DR copies: kept with
/// their last settings, disabled when no resource's tag names them any
/// more, with a warning each.
fn kept(
    config: &Config,
    state: &Snapshot,
    prior: &BTreeMap<String, PolicyState>,
    obs: &Observation,
    out: &mut Wanted,
) {
    for (name, p) in prior {
        let Some(t) = &p.from_template else { continue };
        if config.policies.contains_key(name) || out.made.contains_key(name) {
            continue;
        }
        let backups = state.backups.iter().filter(|b| &b.policy == name).count();
        let copies = state.dr_copies.iter().filter(|c| &c.policy == name).count();
        if backups + copies == 0 {
            continue;
        }
        let regions: BTreeSet<String> = config
            .accounts
            .get(&p.account)
            .map(|a| a.regions.iter().cloned().collect())
            .unwrap_or_default();
        let members = super::claims::claimed(name, &p.account, &regions, obs, |_| false);
        let why = if config.policies.get(t).is_some_and(|x| x.template) {
            "no lifeboat:backup tag names it any more".to_string()
        } else {
            format!(
                "its template {t} is no longer a configured template; it keeps its last settings"
            )
        };
        let template = config.policies.get(t).filter(|x| x.template);
        let clashes = clash(name, config, prior);
        let what = match (&clashes, template, members.is_empty()) {
            (Some(c), ..) => format!("it is disabled: {c}"),
            (None, None, _) => "it is disabled (its backups are kept): configure the template again to run it".to_string(),
            (None, Some(_), true) => "it has no member left: it is disabled and its backups are kept (it makes no new ones, so its generations stay)".to_string(),
            (None, Some(_), false) => "it keeps the members whose tags name it".to_string(),
        };
        out.warnings.push(format!(
            "policy.{name} (made from template {t}): {why}; it is kept while the catalog holds its {backups} backup(s) and {copies} DR copy(ies): {what}"
        ));
        let mut kept = p.clone();
        // Runs only from a configured template with members (enabled as
        // the template is: a tag naming it again brings it back); idle,
        // orphaned or clashing, it is disabled, never removed with its
        // backups.
        match (template, clashes, members.is_empty()) {
            (Some(tp), None, false) => kept.enabled = tp.enabled,
            _ => {
                kept.enabled = false;
                out.idle.insert(name.clone());
            }
        }
        out.kept.insert(name.clone(), kept);
    }
}

/// `config` with the made policies added as copies of their templates
/// (named, not templates, no targets of their own), and the kept ones with
/// their last settings, so that every step of the plan (targets from tags,
/// retention, DR) treats them as configured.
pub fn with_made(config: &Config, wanted: &Wanted) -> Config {
    let mut out = config.clone();
    for (name, m) in &wanted.made {
        let tpl = &config.policies[&m.template];
        out.policies.insert(
            name.clone(),
            Policy {
                name: name.clone(),
                template: false,
                instances: vec![],
                volumes: vec![],
                rds: vec![],
                aurora: vec![],
                selectors: vec![],
                excludes: vec![],
                ..tpl.clone()
            },
        );
    }
    for (name, p) in &wanted.kept {
        out.policies.insert(
            name.clone(),
            Policy {
                name: name.clone(),
                account: p.account.clone(),
                generations: p.generations,
                enabled: p.enabled,
                description: p.description.clone(),
                instances: vec![],
                volumes: vec![],
                rds: vec![],
                aurora: vec![],
                selectors: p.selectors.clone(),
                excludes: p.excludes.clone(),
                auto_remove_targets: p.auto_remove_targets,
                schedules: p.schedules.clone(),
                options: p.options.clone(),
                dr: p.dr.clone(),
                template: false,
                location: Default::default(),
            },
        );
    }
    out
}

#[cfg(test)]
#[path = "templates_tests.rs"]
mod tests;
