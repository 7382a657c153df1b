//! Policies made from templates by the resources' own tags: an item
//! `POLICY:TEMPLATE` of a backup tag, where `TEMPLATE` is a configured
//! `template = true` policy and `POLICY` is not configured, asks for policy
//! `POLICY` as a copy of the template (schedules, generations, options,
//! DR), its members the resources whose tags name it. Such a policy lives
//! in state, not in the files; a plan keeps it while some tag in the
//! template's account names it, and removes it (as any removed policy)
//! once none does. A configured `POLICY` takes the item as its own and the
//! template part is ignored.

use std::collections::{BTreeMap, BTreeSet};

use lifeboat_schema::{Config, Policy};

use super::tag::{backup_tag, parse, Grammar};
use crate::plan::observe::Observation;

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

/// The policies the observed tags ask to be made from configured templates,
/// by name. Resources count only in their template's account's regions;
/// an opted-out resource asks for nothing.
pub fn wanted(config: &Config, obs: &Observation) -> BTreeMap<String, Made> {
    let regions_of = |p: &Policy| -> BTreeSet<&String> {
        config
            .accounts
            .get(&p.account)
            .map(|a| a.regions.iter().collect())
            .unwrap_or_default()
    };
    let tagged = obs
        .instances
        .values()
        .filter(|i| !i.state.is_gone())
        .map(|i| (&i.id, &i.region, &i.tags))
        .chain(obs.volumes.values().map(|v| (&v.id, &v.region, &v.tags)));
    let mut out: BTreeMap<String, Made> = BTreeMap::new();
    for (id, region, tags) in tagged {
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
            if !regions_of(tpl).contains(region) {
                continue;
            }
            let made = Made {
                template: t.clone(),
                on: id.clone(),
            };
            // The smallest id asks first; two templates for one name: the
            // first resource's wins, so the plan does not depend on order.
            match out.get(&item.name) {
                Some(m) if m.on <= made.on => {}
                _ => {
                    out.insert(item.name.clone(), made);
                }
            }
        }
    }
    out
}

/// `config` with the policies of `made` added as copies of their templates
/// (named, not templates, no targets of their own), so that every step of
/// the plan (targets from tags, retention, DR) treats them as configured.
pub fn with_made(config: &Config, made: &BTreeMap<String, Made>) -> Config {
    let mut out = config.clone();
    for (name, m) in made {
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
    out
}
