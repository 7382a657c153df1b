//! The values Lifeboat keeps in state for the objects it manages, derived
//! from the configuration. They are what plans compare and what apply writes.

use lifeboat_schema::{AutoRemove, InstanceMode, Policy, TagSelector, VolumeChoice};
use serde::{Deserialize, Serialize};

/// A policy's settings. Its targets are separate objects, so that adding an
/// instance shows as one new target, not as a change of the whole policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyState {
    pub name: String,
    pub account: String,
    pub generations: u32,
    pub enabled: bool,
    pub description: Option<String>,
    pub selectors: Vec<TagSelector>,
    /// `exclude` blocks; absent when none (and in state written before them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excludes: Vec<TagSelector>,
    pub auto_remove_targets: AutoRemove,
    /// Names of the policy's schedules, as written. Absent in state written
    /// before schedules existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<String>,
    /// Retries, timeout, success rule, alert threshold and scripts; absent
    /// when all are the defaults (and in state written before they existed).
    #[serde(
        default,
        skip_serializing_if = "lifeboat_schema::PolicyOptions::is_default"
    )]
    pub options: lifeboat_schema::PolicyOptions,
    /// Where its backups are copied (`dr { .. }`); absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dr: Option<lifeboat_schema::Dr>,
    /// `template = true`: never runs itself; absent otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub template: bool,
    /// The template this policy was made from by a resource's backup tag
    /// (`POLICY:TEMPLATE`); absent for a configured policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_template: Option<String>,
}

impl From<&Policy> for PolicyState {
    fn from(p: &Policy) -> Self {
        let mut selectors = p.selectors.clone();
        selectors.sort();
        let mut excludes = p.excludes.clone();
        excludes.sort();
        PolicyState {
            name: p.name.clone(),
            account: p.account.clone(),
            generations: p.generations,
            enabled: p.enabled,
            description: p.description.clone(),
            selectors,
            excludes,
            auto_remove_targets: p.auto_remove_targets,
            schedules: p.schedules.clone(),
            options: p.options.clone(),
            dr: p.dr.clone(),
            template: p.template,
            from_template: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    Instance,
    Volume,
    /// An RDS DB instance (CreateDBSnapshot).
    Rds,
    /// An Aurora DB cluster (CreateDBClusterSnapshot).
    Aurora,
}

impl TargetKind {
    /// The `kinds` word of a `select` block that takes this kind in.
    pub fn resource(self) -> lifeboat_schema::ResourceKind {
        use lifeboat_schema::ResourceKind;
        match self {
            TargetKind::Instance => ResourceKind::Instance,
            TargetKind::Volume => ResourceKind::Volume,
            TargetKind::Rds => ResourceKind::Rds,
            TargetKind::Aurora => ResourceKind::Aurora,
        }
    }

    /// The word plans and alerts use for the kind.
    pub fn noun(self) -> &'static str {
        match self {
            TargetKind::Instance => "instance",
            TargetKind::Volume => "volume",
            TargetKind::Rds => "rds",
            TargetKind::Aurora => "aurora",
        }
    }
}

/// Why a resource is a target: listed by id, matched by a tag selector, or
/// named by an item of its own backup tag (`lifeboat:backup=web#only-snaps`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "by", content = "selector")]
pub enum Source {
    Listed,
    Tag(TagSelector),
    /// The backup tag's key as found (`lifeboat:backup` or an N2WS alias)
    /// and the item that names the policy.
    BackupTag {
        key: String,
        value: String,
    },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Listed => f.write_str("listed in configuration"),
            Source::Tag(sel) => write!(f, "{sel}"),
            Source::BackupTag { key, value } => write!(f, "tag {key}={value}"),
        }
    }
}

/// One member of a policy: an instance or a volume, with how to back it up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetState {
    pub kind: TargetKind,
    pub id: String,
    pub account: String,
    pub region: String,
    pub source: Source,
    #[serde(default)]
    pub volumes: VolumeChoice,
    #[serde(default)]
    pub exclude_volumes: Vec<String>,
    #[serde(default)]
    pub mode: InstanceMode,
    /// Days between two AMIs with `mode = "initial_ami"`; absent otherwise
    /// (and in state written before AMI modes existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ami_rotation: Option<u32>,
}

/// Does `value` match an EC2-style pattern where `*` stands for any run of
/// characters? The same rule EC2 applies server-side, re-checked here so
/// that membership never depends on how a filter was paged.
pub fn glob_match(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    let (mut pi, mut vi) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == v[vi] || p[pi] == '?') {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            pi += 1;
            mark = vi;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Does `sel` match a resource with `tags`? With `tag_prefix`, the value
/// pattern is tried on the value of every key that starts with the prefix,
/// and one match is enough; without `value`, having such a key is.
pub fn selector_matches(
    sel: &TagSelector,
    tags: &std::collections::BTreeMap<String, String>,
) -> bool {
    let value_ok = |v: &String| match &sel.value {
        None => true,
        Some(pat) => glob_match(pat, v),
    };
    match sel.prefix {
        true => tags
            .iter()
            .any(|(k, v)| k.starts_with(&sel.tag) && value_ok(v)),
        false => tags.get(&sel.tag).is_some_and(value_ok),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_prefixes_and_exact_values() {
        assert!(glob_match("web*", "web-1"));
        assert!(glob_match("web*", "web"));
        assert!(glob_match("web", "web"));
        assert!(!glob_match("web", "web-1"));
        assert!(!glob_match("web*", "db-web"));
        assert!(glob_match("*web*", "db-web-2"));
        assert!(glob_match("w?b", "wab"));
    }

    fn tags(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn prefix(p: &str, value: Option<&str>) -> TagSelector {
        TagSelector {
            prefix: true,
            ..TagSelector::tag(p, value)
        }
    }

    #[test]
    fn a_prefix_selector_matches_the_value_of_any_key_with_the_prefix() {
        let sel = prefix("backup:", Some("daily*"));
        assert!(selector_matches(
            &sel,
            &tags(&[("backup:web", "daily-7"), ("team", "web")])
        ));
        // The second key with the prefix matches though the first does not.
        assert!(selector_matches(
            &sel,
            &tags(&[("backup:a", "weekly"), ("backup:b", "daily")])
        ));
        assert!(!selector_matches(&sel, &tags(&[("backup:web", "weekly")])));
        // The value pattern is not tried on keys without the prefix.
        assert!(!selector_matches(
            &sel,
            &tags(&[("nobackup:web", "daily"), ("team", "daily")])
        ));
        // The prefix is a prefix of the key, not a pattern.
        assert!(!selector_matches(&sel, &tags(&[("Backup:web", "daily")])));
    }

    #[test]
    fn a_prefix_selector_without_value_matches_any_key_with_the_prefix() {
        let sel = prefix("backup:", None);
        assert!(selector_matches(&sel, &tags(&[("backup:", "")])));
        assert!(selector_matches(&sel, &tags(&[("backup:x", "anything")])));
        assert!(!selector_matches(&sel, &tags(&[("backup", "x")])));
        assert!(!selector_matches(&sel, &tags(&[])));
    }

    #[test]
    fn a_key_selector_takes_its_key_whole() {
        let sel = TagSelector::tag("backup", Some("yes"));
        assert!(selector_matches(&sel, &tags(&[("backup", "yes")])));
        assert!(!selector_matches(&sel, &tags(&[("backup:web", "yes")])));
    }

    #[test]
    fn a_selector_written_before_kinds_and_prefixes_decodes_as_instances_by_key() {
        let old: TagSelector =
            serde_json::from_str(r#"{"tag":"team","value":"web*"}"#).expect("decodes");
        assert_eq!(old, TagSelector::tag("team", Some("web*")));
        assert_eq!(old.kinds, vec![lifeboat_schema::ResourceKind::Instance]);
        assert!(!old.prefix);
        // And a new instance-only selector is written as before.
        assert_eq!(
            serde_json::to_string(&old).unwrap(),
            r#"{"tag":"team","value":"web*"}"#
        );
        let policy: PolicyState = serde_json::from_str(
            r#"{"name":"web","account":"main","generations":2,"enabled":true,"description":null,
                "selectors":[{"tag":"team","value":"web*"}],"auto_remove_targets":"no"}"#,
        )
        .expect("an old policy decodes");
        assert_eq!(
            policy.selectors[0].kinds,
            vec![lifeboat_schema::ResourceKind::Instance]
        );
    }
}
