//! The grammar of the tags a resource carries to manage its own
//! protection: `lifeboat:backup` (and N2WS's `cpm backup` / `cpm_backup`)
//! and `lifeboat:resource-control`.
//!
//! A value is space-separated items. Each item is an opt-out word
//! (`no-backup`, `no-resource-control`) or `NAME[:TEMPLATE][#OPTION…]`:
//! `NAME` is a policy (or group) the resource belongs to, `TEMPLATE` the
//! configured template to make it from when no such policy exists, and the
//! options say how. A volume's `#exclude` may stand alone (no name): the
//! volume is left out of every policy's backups of its instance.
//!
//! Parsing never fails as a whole: a malformed item is a [`TagProblem`]
//! naming the item and why, and the well-formed items next to it still
//! count. Tags are written by people and tools Lifeboat does not control;
//! one typo must not take the rest of a resource's protection away.

use lifeboat_schema::validate::{is_valid_name, MAX_POLICY_NAME};
use serde::{Deserialize, Serialize};

use crate::cloud::Tags;

/// The backup tag's key.
pub const TAG_BACKUP: &str = "lifeboat:backup";
/// The keys N2WS used for it, accepted so that tags from there keep working.
pub const TAG_BACKUP_ALIASES: [&str; 2] = ["cpm backup", "cpm_backup"];
/// The item of the backup tag that keeps a resource out of every policy.
pub const NO_BACKUP: &str = "no-backup";

/// The resource-control tag's key, and its opt-out item.
pub const TAG_RESOURCE_CONTROL: &str = "lifeboat:resource-control";
pub const NO_RESOURCE_CONTROL: &str = "no-resource-control";

/// How an item of the backup tag asks its resource to be backed up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TagOption {
    /// Snapshots only (an instance's `mode = "snapshots"`).
    OnlySnaps,
    /// An AMI now and then, snapshots between (`mode = "initial_ami"`).
    InitialAmi,
    /// AMIs without reboot (`mode = "ami"`).
    OnlyAmis,
    /// AMIs with reboot (`mode = "ami_reboot"`).
    OnlyAmisReboot,
    /// On a volume: leave it out of its instance's backups.
    Exclude,
}

impl TagOption {
    pub const ALL: [TagOption; 5] = [
        TagOption::OnlySnaps,
        TagOption::InitialAmi,
        TagOption::OnlyAmis,
        TagOption::OnlyAmisReboot,
        TagOption::Exclude,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TagOption::OnlySnaps => "only-snaps",
            TagOption::InitialAmi => "initial-ami",
            TagOption::OnlyAmis => "only-amis",
            TagOption::OnlyAmisReboot => "only-amis-reboot",
            TagOption::Exclude => "exclude",
        }
    }

    /// The backup mode this option asks for; `None` for `exclude`.
    pub fn mode(self) -> Option<lifeboat_schema::InstanceMode> {
        use lifeboat_schema::InstanceMode as M;
        match self {
            TagOption::OnlySnaps => Some(M::Snapshots),
            TagOption::InitialAmi => Some(M::InitialAmi),
            TagOption::OnlyAmis => Some(M::Ami),
            TagOption::OnlyAmisReboot => Some(M::AmiReboot),
            TagOption::Exclude => None,
        }
    }
}

/// One well-formed item: `NAME[:TEMPLATE][#OPTION…]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagItem {
    /// The policy or group; empty only for a lone `#exclude`.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<TagOption>,
}

impl TagItem {
    /// The backup mode the item asks for, if any.
    pub fn mode(&self) -> Option<lifeboat_schema::InstanceMode> {
        self.options.iter().find_map(|o| o.mode())
    }

    pub fn excludes(&self) -> bool {
        self.options.contains(&TagOption::Exclude)
    }
}

impl std::fmt::Display for TagItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if let Some(t) = &self.template {
            write!(f, ":{t}")?;
        }
        for o in &self.options {
            write!(f, "#{}", o.as_str())?;
        }
        Ok(())
    }
}

/// A malformed item and why it is not used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagProblem {
    pub item: String,
    pub why: String,
}

impl std::fmt::Display for TagProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "item {:?} is not used: {}", self.item, self.why)
    }
}

/// A tag value, read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagValue {
    /// The opt-out word is among the items: it wins over everything.
    pub opt_out: bool,
    pub items: Vec<TagItem>,
    pub problems: Vec<TagProblem>,
}

/// Which tag is read: the backup tag takes options, the resource-control
/// tag none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grammar {
    Backup,
    ResourceControl,
}

impl Grammar {
    fn opt_out(self) -> &'static str {
        match self {
            Grammar::Backup => NO_BACKUP,
            Grammar::ResourceControl => NO_RESOURCE_CONTROL,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Grammar::Backup => "policy",
            Grammar::ResourceControl => "group",
        }
    }
}

/// Reads a tag value by `grammar`. Never fails: malformed items are
/// problems, the others count.
pub fn parse(grammar: Grammar, value: &str) -> TagValue {
    let mut out = TagValue::default();
    for raw in value.split_whitespace() {
        // Any case: `No-Backup` is meant as the opt-out, and reading it as
        // a policy name would keep the resource in its policies.
        if raw.eq_ignore_ascii_case(grammar.opt_out()) {
            out.opt_out = true;
            continue;
        }
        match parse_item(grammar, raw) {
            Ok(item) => {
                if out.items.iter().any(|i| i.name == item.name) && !item.name.is_empty() {
                    out.problems.push(TagProblem {
                        item: raw.to_string(),
                        why: format!("{} {} is named twice", grammar.noun(), item.name),
                    });
                } else {
                    out.items.push(item);
                }
            }
            Err(why) => out.problems.push(TagProblem {
                item: raw.to_string(),
                why,
            }),
        }
    }
    out
}

fn parse_item(grammar: Grammar, raw: &str) -> Result<TagItem, String> {
    let mut parts = raw.split('#');
    let head = parts.next().unwrap_or_default();
    let mut options = Vec::new();
    for o in parts {
        if grammar == Grammar::ResourceControl {
            return Err("resource-control items take no options".into());
        }
        let Some(opt) = TagOption::ALL.into_iter().find(|x| x.as_str() == o) else {
            let known: Vec<&str> = TagOption::ALL.iter().map(|x| x.as_str()).collect();
            return Err(if o.is_empty() {
                "an empty option after '#'".into()
            } else {
                format!("unknown option {o:?} (known: {})", known.join(", "))
            });
        };
        if options.contains(&opt) {
            return Err(format!("option {o} given twice"));
        }
        options.push(opt);
    }
    let modes = options.iter().filter(|o| o.mode().is_some()).count();
    if modes > 1 {
        return Err("more than one of only-snaps, initial-ami, only-amis, only-amis-reboot".into());
    }
    if options.contains(&TagOption::Exclude) && modes > 0 {
        return Err("exclude takes no backup mode: it leaves a volume out".into());
    }
    let (name, template) = match head.split_once(':') {
        None => (head, None),
        Some((_, t)) if t.contains(':') => return Err("more than one ':'".into()),
        Some((n, t)) => (n, Some(t)),
    };
    if name.is_empty() {
        // Only a lone `#exclude` names nothing.
        if template.is_none() && options == [TagOption::Exclude] {
            return Ok(TagItem {
                name: String::new(),
                template: None,
                options,
            });
        }
        return Err(format!("no {} name", grammar.noun()));
    }
    check_name(grammar, name)?;
    if let Some(t) = template {
        if t.is_empty() {
            return Err("an empty template name after ':'".into());
        }
        check_name(grammar, t).map_err(|why| format!("template: {why}"))?;
        if t == name {
            return Err(format!(
                "{} {name} cannot be its own template",
                grammar.noun()
            ));
        }
    }
    Ok(TagItem {
        name: name.to_string(),
        template: template.map(str::to_string),
        options,
    })
}

fn check_name(grammar: Grammar, name: &str) -> Result<(), String> {
    if !is_valid_name(name) {
        return Err(format!(
            "{name:?} is not a {} name (a letter or '_', then letters, digits, '_' or '-')",
            grammar.noun()
        ));
    }
    if grammar == Grammar::Backup && name.len() > MAX_POLICY_NAME {
        return Err(format!(
            "{name:?} is longer than {MAX_POLICY_NAME} characters"
        ));
    }
    Ok(())
}

/// The backup tag among `tags`, by its key or an alias: `(key, value)`.
/// When several are present the Lifeboat key wins, then the aliases in
/// order, so that one resource has one reading.
pub fn backup_tag(tags: &Tags) -> Option<(&'static str, &str)> {
    std::iter::once(TAG_BACKUP)
        .chain(TAG_BACKUP_ALIASES)
        .find_map(|k| tags.get(k).map(|v| (k, v.as_str())))
}

/// The resource's backup tag, read; empty when it carries none.
pub fn backup_items(tags: &Tags) -> TagValue {
    backup_tag(tags)
        .map(|(_, v)| parse(Grammar::Backup, v))
        .unwrap_or_default()
}

/// The resource's resource-control tag, read; empty when it carries none.
pub fn control_items(tags: &Tags) -> TagValue {
    tags.get(TAG_RESOURCE_CONTROL)
        .map(|v| parse(Grammar::ResourceControl, v))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str, template: Option<&str>, options: &[TagOption]) -> TagItem {
        TagItem {
            name: name.into(),
            template: template.map(Into::into),
            options: options.to_vec(),
        }
    }

    /// Each row: a value, the items read from it, whether it opts out, and
    /// a fragment of each problem in order.
    #[test]
    fn backup_tag_values_read_as_items_problems_and_opt_outs() {
        use TagOption::*;
        let long = "p".repeat(MAX_POLICY_NAME + 1);
        let rows: Vec<(&str, Vec<TagItem>, bool, Vec<&str>)> = vec![
            ("web", vec![item("web", None, &[])], false, vec![]),
            (
                "  web   db ",
                vec![item("web", None, &[]), item("db", None, &[])],
                false,
                vec![],
            ),
            (
                "web:tpl",
                vec![item("web", Some("tpl"), &[])],
                false,
                vec![],
            ),
            (
                "web#only-snaps",
                vec![item("web", None, &[OnlySnaps])],
                false,
                vec![],
            ),
            (
                "web:tpl#only-amis-reboot",
                vec![item("web", Some("tpl"), &[OnlyAmisReboot])],
                false,
                vec![],
            ),
            (
                "web#initial-ami db#only-amis",
                vec![
                    item("web", None, &[InitialAmi]),
                    item("db", None, &[OnlyAmis]),
                ],
                false,
                vec![],
            ),
            ("#exclude", vec![item("", None, &[Exclude])], false, vec![]),
            (
                "web#exclude",
                vec![item("web", None, &[Exclude])],
                false,
                vec![],
            ),
            ("no-backup", vec![], true, vec![]),
            ("web no-backup", vec![item("web", None, &[])], true, vec![]),
            ("", vec![], false, vec![]),
            ("web#fast", vec![], false, vec!["unknown option \"fast\""]),
            ("web#", vec![], false, vec!["empty option"]),
            (
                "web#only-snaps#only-amis",
                vec![],
                false,
                vec!["more than one"],
            ),
            (
                "web#only-snaps#only-snaps",
                vec![],
                false,
                vec!["given twice"],
            ),
            (
                "web#exclude#only-amis",
                vec![],
                false,
                vec!["exclude takes no backup mode"],
            ),
            ("web:", vec![], false, vec!["empty template"]),
            ("web:a:b", vec![], false, vec!["more than one ':'"]),
            (":tpl", vec![], false, vec!["no policy name"]),
            ("#only-snaps", vec![], false, vec!["no policy name"]),
            ("#", vec![], false, vec!["empty option"]),
            ("9web", vec![], false, vec!["not a policy name"]),
            ("web:9t", vec![], false, vec!["template: "]),
            ("web:web", vec![], false, vec!["its own template"]),
            ("wéb", vec![], false, vec!["not a policy name"]),
            (long.as_str(), vec![], false, vec!["longer than"]),
            (
                "web bad! db",
                vec![item("web", None, &[]), item("db", None, &[])],
                false,
                vec!["not a policy name"],
            ),
            (
                "web web:tpl",
                vec![item("web", None, &[])],
                false,
                vec!["named twice"],
            ),
            ("NO-BACKUP", vec![], true, vec![]),
            ("No-Backup web", vec![item("web", None, &[])], true, vec![]),
        ];
        for (value, items, opt_out, problems) in rows {
            let got = parse(Grammar::Backup, value);
            assert_eq!(got.items, items, "items of {value:?}");
            assert_eq!(got.opt_out, opt_out, "opt-out of {value:?}");
            assert_eq!(
                got.problems.len(),
                problems.len(),
                "problems of {value:?}: {:?}",
                got.problems
            );
            for (p, want) in got.problems.iter().zip(problems) {
                assert!(
                    p.to_string().contains(want),
                    "{value:?}: {p} lacks {want:?}"
                );
            }
        }
    }

    #[test]
    fn resource_control_items_take_no_options() {
        let got = parse(
            Grammar::ResourceControl,
            "nightly weekend:nightly no-resource-control web#exclude",
        );
        assert_eq!(
            got.items,
            vec![
                item("nightly", None, &[]),
                item("weekend", Some("nightly"), &[])
            ]
        );
        assert!(got.opt_out);
        assert_eq!(got.problems.len(), 1);
        assert!(got.problems[0].why.contains("no options"));
        // The other grammar's opt-out word is just a (badly named) item.
        assert!(!parse(Grammar::ResourceControl, "no-backup").opt_out);
    }

    #[test]
    fn the_lifeboat_key_wins_over_the_aliases() {
        let mut tags = Tags::new();
        tags.insert("cpm backup".into(), "old".into());
        assert_eq!(backup_tag(&tags), Some(("cpm backup", "old")));
        tags.insert("cpm_backup".into(), "older".into());
        assert_eq!(backup_tag(&tags), Some(("cpm backup", "old")));
        tags.insert(TAG_BACKUP.into(), "web#only-snaps".into());
        assert_eq!(
            backup_items(&tags).items,
            vec![item("web", None, &[TagOption::OnlySnaps])]
        );
    }

    #[test]
    fn any_value_parses_without_a_panic() {
        for value in [
            "#",
            "##",
            ":",
            "::",
            "#:#",
            ":#exclude",
            "a:#",
            "\u{0}",
            "a:b#exclude:c",
            "🦀:🦀#🦀",
        ] {
            let got = parse(Grammar::Backup, value);
            assert!(got.items.is_empty(), "{value:?}: {got:?}");
        }
    }
}
