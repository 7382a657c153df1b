//! Instances that name their group themselves: the tag
//! `lifeboat:resource-control = GROUP` (or `GROUP:TEMPLATE`), read with
//! the grammar of [`crate::membership::tag`].
//!
//! - `GROUP` names a configured group of the instance's account (and, for
//!   a group with a `region`, of that region): the instance is one of its
//!   targets, found at each operation by one filtered describe per region
//!   (`tag-key = lifeboat:resource-control`), the value read here.
//! - `GROUP:TEMPLATE` with no group `GROUP` configured: the instance is a
//!   target of a group `GROUP` made from the template `TEMPLATE` (a
//!   `template = true` group of the same account). Made groups are not
//!   recorded anywhere: they are derived from the configuration and the
//!   tags at each look ([`look`]), so that removing the last tag removes
//!   the group, and a configured group of that name takes over at once.
//! - Anything else (an unknown group, a template named as a group, a group
//!   of another account or region, a malformed item) is a problem line,
//!   never an error: `plan` warns, the runner's log and `rc` print it.
//!
//! `no-resource-control` keeps winning: such an instance is shown skipped
//! by every group that would take it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use lifeboat_schema::{Config, ResourceControlGroup};

use crate::cloud::power::{PowerState, Powered};
use crate::cloud::{collect_pages, Cloud, CloudError, Query, Tags};
use crate::membership::tag::{control_items, TAG_RESOURCE_CONTROL};

/// The tag look's one server-side filter: every instance carrying the key
/// (the value is read client-side, as it holds several items).
pub fn query() -> Query {
    Query {
        ids: vec![],
        tags: vec![(TAG_RESOURCE_CONTROL.to_string(), vec![])],
    }
}

/// Whether `tags` name group `g`: an item with its name (for a group made
/// from a template, with that template too). A template is named by no
/// tag: it never acts itself.
pub fn names(g: &ResourceControlGroup, tags: &Tags) -> bool {
    if g.template {
        return false;
    }
    control_items(tags).items.iter().any(|i| {
        i.name == g.name
            && g.from_template
                .as_ref()
                .is_none_or(|t| i.template.as_ref() == Some(t))
    })
}

/// What one instance's tag says in its account and region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reading {
    /// The configured groups it names.
    pub groups: Vec<String>,
    /// The groups it makes: `(GROUP, TEMPLATE)`.
    pub made: Vec<(String, String)>,
    /// Items that take it nowhere, each a line for the log.
    pub problems: Vec<String>,
}

impl Reading {
    /// Every group the tag puts the instance in, configured or made.
    pub fn claimed(&self) -> impl Iterator<Item = &str> {
        self.groups
            .iter()
            .map(String::as_str)
            .chain(self.made.iter().map(|(g, _)| g.as_str()))
    }
}

/// Reads the resource-control tag of instance `id` in `account` and
/// `region` against the configuration. An opted-out instance is in no
/// group (its problems are still said: a typo is worth knowing).
pub fn read(config: &Config, account: &str, region: &str, id: &str, tags: &Tags) -> Reading {
    let value = control_items(tags);
    let mut out = Reading::default();
    let mut problem = |item: &str, why: String| {
        out_problem(&mut out.problems, account, region, id, item, &why);
    };
    for p in &value.problems {
        problem(&p.item, p.why.clone());
    }
    let here = |g: &ResourceControlGroup| -> Result<(), String> {
        if g.account != account {
            return Err(format!(
                "resource_control_group {:?} acts in account {}",
                g.name, g.account
            ));
        }
        match &g.region {
            Some(r) if r != region => Err(format!(
                "resource_control_group {:?} acts in region {r} only",
                g.name
            )),
            _ => Ok(()),
        }
    };
    let mut groups = Vec::new();
    let mut made = Vec::new();
    for item in &value.items {
        let text = item.to_string();
        match config.resource_control_groups.get(&item.name) {
            Some(g) if g.template => problem(
                &text,
                format!(
                    "resource_control_group {:?} is a template, which never acts itself; tag NAME:{} to make a group from it",
                    g.name, g.name
                ),
            ),
            Some(g) => match here(g) {
                Ok(()) => groups.push(g.name.clone()),
                Err(why) => problem(&text, why),
            },
            None => match &item.template {
                None => problem(
                    &text,
                    format!("no resource_control_group {:?} is configured", item.name),
                ),
                Some(t) => match config.resource_control_groups.get(t) {
                    Some(tg) if tg.template => match here(tg) {
                        Ok(()) => made.push((item.name.clone(), t.clone())),
                        Err(why) => problem(&text, why),
                    },
                    Some(_) => problem(
                        &text,
                        format!("resource_control_group {t:?} is not a template (template = true)"),
                    ),
                    None => problem(
                        &text,
                        format!("no template {t:?} is configured to make group {:?} from", item.name),
                    ),
                },
            },
        }
    }
    if !value.opt_out {
        out.groups = groups;
        out.made = made;
    }
    out
}

fn out_problem(
    lines: &mut Vec<String>,
    account: &str,
    region: &str,
    id: &str,
    item: &str,
    why: &str,
) {
    lines.push(format!(
        "instance {id} (account {account}, {region}): {TAG_RESOURCE_CONTROL} item {item:?} is not used: {why}"
    ));
}

/// The group `name` made from `template`: the template's windows, mode,
/// zone, hibernation, timeout, region and excludes, acting on the
/// instances tagged `name:template`.
pub fn made_group(template: &ResourceControlGroup, name: &str) -> ResourceControlGroup {
    ResourceControlGroup {
        name: name.to_string(),
        template: false,
        from_template: Some(template.name.clone()),
        instances: Vec::new(),
        rds: Vec::new(),
        aurora: Vec::new(),
        selectors: Vec::new(),
        ..template.clone()
    }
}

/// What one look at the tags found.
#[derive(Debug, Clone, Default)]
pub struct Look {
    /// The groups made from templates, by name.
    pub made: BTreeMap<String, ResourceControlGroup>,
    /// Problem lines, once each.
    pub problems: Vec<String>,
}

impl Look {
    /// The configuration with the made groups in it, for an operation or
    /// a status of one of them.
    pub fn expand(&self, config: &Config) -> Config {
        let mut out = config.clone();
        for (name, g) in &self.made {
            out.resource_control_groups
                .entry(name.clone())
                .or_insert_with(|| g.clone());
        }
        out
    }
}

/// Looks at the tags in every region of every account that has a group
/// (of `only`'s account, when given): one filtered describe per region.
/// Returns the groups made from templates and the problems of every tag.
pub async fn look(
    cloud: &Arc<dyn Cloud>,
    config: &Config,
    only: Option<&str>,
) -> Result<Look, CloudError> {
    let mut regions: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for g in config.resource_control_groups.values() {
        let Some(account) = config.accounts.get(&g.account) else {
            continue;
        };
        if only.is_some_and(|o| o != g.account) {
            continue;
        }
        let set = regions.entry(g.account.as_str()).or_default();
        match &g.region {
            Some(r) => {
                set.insert(r);
            }
            None => set.extend(account.regions.iter().map(String::as_str)),
        }
    }
    let mut out = Look::default();
    let mut problems = BTreeSet::new();
    // A made group's template, as the first instance naming it said.
    let mut from: BTreeMap<String, String> = BTreeMap::new();
    for (name, set) in regions {
        let account = &config.accounts[name];
        for region in set {
            let power = cloud.power(account, region).await?;
            let q = query();
            for p in collect_pages(|t| power.instances_power(&q, t)).await? {
                if p.state == PowerState::Gone {
                    continue;
                }
                let r = read(config, name, region, &p.id, &p.tags);
                problems.extend(r.problems);
                for (group, template) in r.made {
                    made_from(
                        config,
                        &mut out,
                        &mut from,
                        &mut problems,
                        &p,
                        group,
                        template,
                    );
                }
            }
        }
    }
    out.problems = problems.into_iter().collect();
    Ok(out)
}

/// Adds the group `group` made from `template` that instance `p` names,
/// unless another instance made it from another template (then `p` is
/// left out, and said so).
fn made_from(
    config: &Config,
    out: &mut Look,
    from: &mut BTreeMap<String, String>,
    problems: &mut BTreeSet<String>,
    p: &Powered,
    group: String,
    template: String,
) {
    match from.get(&group) {
        Some(t) if *t != template => {
            problems.insert(format!(
                "instance {}: {TAG_RESOURCE_CONTROL} item \"{group}:{template}\" is not used: group {group:?} is made from template {t:?} by another instance's tag",
                p.id
            ));
        }
        Some(_) => {}
        None => {
            let tg = &config.resource_control_groups[&template];
            out.made.insert(group.clone(), made_group(tg, &group));
            from.insert(group, template);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let text = r#"
account "dev" {
  regions = ["eu-west-1", "us-east-1"]
}

account "prod" {
  regions = ["us-east-1"]
}

resource_control_group "nightly" {
  account = account.dev
  window {
    off = "mon 20:00"
    on  = "tue 07:00"
  }
}

resource_control_group "west" {
  account = account.dev
  region  = "eu-west-1"
  window {
    off = "mon 20:00"
    on  = "tue 07:00"
  }
}

resource_control_group "tpl" {
  account  = account.dev
  template = true
  window {
    off = "wed 20:00"
    on  = "thu 07:00"
  }
}

resource_control_group "prod_nightly" {
  account = account.prod
  window {
    off = "mon 20:00"
    on  = "tue 07:00"
  }
}
"#;
        lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text.into())])
            .unwrap_or_else(|d| panic!("{d}"))
            .config
    }

    /// Each row: a tag value on an instance of account dev in us-east-1,
    /// the configured groups it names, the groups it makes, and a fragment
    /// of each problem.
    #[test]
    fn tag_values_read_against_the_configuration() {
        let config = config();
        type Row<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>, Vec<&'a str>);
        let rows: Vec<Row> = vec![
            ("nightly", vec!["nightly"], vec![], vec![]),
            ("nightly:tpl", vec!["nightly"], vec![], vec![]),
            ("web:tpl", vec![], vec![("web", "tpl")], vec![]),
            (
                "nightly web:tpl",
                vec!["nightly"],
                vec![("web", "tpl")],
                vec![],
            ),
            ("nightly no-resource-control", vec![], vec![], vec![]),
            (
                "nightyl",
                vec![],
                vec![],
                vec!["no resource_control_group \"nightyl\""],
            ),
            ("tpl", vec![], vec![], vec!["is a template"]),
            ("web:nightly", vec![], vec![], vec!["not a template"]),
            ("web:nope", vec![], vec![], vec!["no template \"nope\""]),
            ("prod_nightly", vec![], vec![], vec!["acts in account prod"]),
            (
                "west",
                vec![],
                vec![],
                vec!["acts in region eu-west-1 only"],
            ),
            (
                "nightly web#exclude",
                vec!["nightly"],
                vec![],
                vec!["no options"],
            ),
        ];
        for (value, groups, made, problems) in rows {
            let mut tags = Tags::new();
            tags.insert(TAG_RESOURCE_CONTROL.into(), value.into());
            let r = read(&config, "dev", "us-east-1", "i-1", &tags);
            assert_eq!(r.groups, groups, "groups of {value:?}");
            let made: Vec<(String, String)> = made
                .into_iter()
                .map(|(g, t)| (g.to_string(), t.to_string()))
                .collect();
            assert_eq!(r.made, made, "made of {value:?}");
            assert_eq!(
                r.problems.len(),
                problems.len(),
                "{value:?}: {:?}",
                r.problems
            );
            for (p, want) in r.problems.iter().zip(problems) {
                assert!(p.contains(want), "{value:?}: {p} lacks {want:?}");
                assert!(
                    p.starts_with("instance i-1 (account dev, us-east-1): "),
                    "{p}"
                );
            }
        }
    }

    #[test]
    fn a_made_group_takes_only_instances_naming_its_template() {
        let config = config();
        let web = made_group(&config.resource_control_groups["tpl"], "web");
        assert!(!web.template);
        assert_eq!(web.windows, config.resource_control_groups["tpl"].windows);
        let tagged = |v: &str| {
            let mut t = Tags::new();
            t.insert(TAG_RESOURCE_CONTROL.into(), v.into());
            t
        };
        assert!(names(&web, &tagged("web:tpl")));
        assert!(!names(&web, &tagged("web")));
        assert!(!names(&web, &tagged("web:other")));
        assert!(names(
            &config.resource_control_groups["nightly"],
            &tagged("nightly:tpl")
        ));
        assert!(!names(
            &config.resource_control_groups["tpl"],
            &tagged("tpl")
        ));
    }
}
