//! `select` and `exclude` blocks, of policies and of resource-control
//! groups: `{ tag | tag_prefix  value  kinds }`.

use hcl_edit::structure::Block;

use super::{quoted_list, start, Decoder, Scope};
use crate::config::{ResourceKind, TagSelector};
use crate::validate::did_you_mean;

/// Where a selector block is written: what it may say differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Use {
    /// A policy's `select`: `tag` or `tag_prefix`, and `kinds`.
    PolicySelect,
    /// A policy's `exclude`: `tag` or `tag_prefix`; it applies to every
    /// kind the policy selects.
    PolicyExclude,
    /// A resource-control group's `select`: `tag`, instances only.
    GroupSelect,
    /// A resource-control group's `exclude`: `tag`.
    GroupExclude,
}

impl Use {
    fn noun(self) -> &'static str {
        match self {
            Use::PolicySelect | Use::GroupSelect => "select",
            Use::PolicyExclude | Use::GroupExclude => "exclude",
        }
    }

    fn in_group(self) -> bool {
        matches!(self, Use::GroupSelect | Use::GroupExclude)
    }
}

/// "a" or "an", before `word`.
fn article(word: &str) -> &'static str {
    match word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        true => "an",
        false => "a",
    }
}

/// A `select` or `exclude` block, added to `selectors` unless the list has
/// it already (a warning).
pub(super) fn tag_block(
    d: &mut Decoder,
    scope: &Scope<'_>,
    b: &Block,
    used: Use,
    selectors: &mut Vec<TagSelector>,
) {
    let src = scope.src;
    let noun = used.noun();
    d.no_labels(src, b);
    let sel = d.scope(
        src,
        &b.body,
        format!("{} {noun} block of {}", article(noun), scope.what),
        start(&b.ident),
        &["tag", "tag_prefix", "value", "kinds"],
        &[],
    );
    let key = key_or_prefix(d, &sel, used);
    let value = d.string(&sel, "value", false).map(|(s, _)| s);
    let kinds = kinds(d, &sel, used);
    if let (Some((tag, prefix)), Some(kinds)) = (key, kinds) {
        let selector = TagSelector {
            tag,
            value,
            prefix,
            kinds,
        };
        if selectors.contains(&selector) {
            d.warning(
                src,
                start(&b.ident),
                "Duplicate selector",
                format!("{} {noun}s {selector} more than once", scope.what),
            );
        } else {
            selectors.push(selector);
        }
    }
}

/// `tag` or `tag_prefix`, exactly one: the key (or prefix) and whether it
/// is a prefix.
fn key_or_prefix(d: &mut Decoder, sel: &Scope<'_>, used: Use) -> Option<(String, bool)> {
    let src = sel.src;
    let prefix_attr = d.get(sel, "tag_prefix", false);
    if let (Some(a), true) = (prefix_attr, used.in_group()) {
        d.error(
            src,
            start(&a.key),
            "Unsupported attribute",
            format!(
                "{} cannot set \"tag_prefix\": resource-control groups select by one tag key (\"tag\")",
                sel.what
            ),
        );
        return None;
    }
    let has_tag = d.get(sel, "tag", false).is_some();
    match (has_tag, prefix_attr) {
        (true, Some(a)) => {
            d.error(
                src,
                start(&a.key),
                "Conflicting attributes",
                format!(
                    "{} sets both \"tag\" and \"tag_prefix\"; write one: \"tag\" for one key, \"tag_prefix\" for every key starting with it",
                    sel.what
                ),
            );
            None
        }
        (false, None) => {
            let detail = match used.in_group() {
                true => format!("{} must set \"tag\"", sel.what),
                false => format!("{} must set \"tag\" or \"tag_prefix\"", sel.what),
            };
            d.error(src, sel.at, "Missing required attribute", detail);
            None
        }
        (true, None) => d.text(sel, "tag", true).map(|t| (t, false)),
        (false, Some(_)) => d.text(sel, "tag_prefix", true).map(|t| (t, true)),
    }
}

/// `kinds`, sorted: instances only when absent. Only a policy's `select`
/// may set it.
fn kinds(d: &mut Decoder, sel: &Scope<'_>, used: Use) -> Option<Vec<ResourceKind>> {
    let src = sel.src;
    if let Some(a) = d.get(sel, "kinds", false) {
        let why = match used {
            Use::PolicySelect => None,
            Use::PolicyExclude => Some(
                "an exclude block applies to every kind its policy's select blocks take in; set \"kinds\" on those",
            ),
            Use::GroupSelect | Use::GroupExclude => Some(
                "resource-control groups select instances only; list RDS instances and Aurora clusters by id in \"rds\" and \"aurora\"",
            ),
        };
        if let Some(why) = why {
            d.error(
                src,
                start(&a.key),
                "Unsupported attribute",
                format!("{} cannot set \"kinds\": {why}", sel.what),
            );
            return None;
        }
    }
    let Some(list) = d.string_list(sel, "kinds", false) else {
        // Absent, or already reported.
        return match d.get(sel, "kinds", false) {
            None => Some(ResourceKind::instance_only()),
            Some(_) => None,
        };
    };
    let names: Vec<&str> = ResourceKind::ALL.iter().map(|k| k.as_str()).collect();
    if list.is_empty() {
        let at = d
            .get(sel, "kinds", false)
            .map_or(sel.at, |a| start(&a.value));
        d.error(
            src,
            at,
            "Empty value",
            format!(
                "\"kinds\" in {} must list at least one of {}",
                sel.what,
                quoted_list(&names)
            ),
        );
        return None;
    }
    let mut ok = d.duplicates_in_list(sel, "kinds", &list);
    let mut out = Vec::new();
    for (name, at) in &list {
        match ResourceKind::ALL.iter().find(|k| k.as_str() == name) {
            Some(k) => out.push(*k),
            None => {
                d.error(
                    src,
                    *at,
                    "Invalid value",
                    format!(
                        "\"kinds\" in {} lists {name:?}, which is not one of {}{}",
                        sel.what,
                        quoted_list(&names),
                        did_you_mean(name, names.iter().copied())
                    ),
                );
                ok = false;
            }
        }
    }
    out.sort();
    out.dedup();
    ok.then_some(out)
}
