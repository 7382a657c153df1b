//! One `step "NAME" { .. }` of a `recovery_scenario`: exactly one kind of
//! resource, what it waits for, and the settings that kind takes.

use hcl_edit::structure::Block;

use super::db_targets::is_db_identifier;
use super::{start, Decoder, Scope};
use crate::config::{Step, StepKind};
use crate::source::Source;
use crate::validate;

const KINDS: &[&str] = &["instances", "volumes", "rds", "aurora"];
const STEP_ATTRS: &[&str] = &[
    "instances",
    "volumes",
    "rds",
    "aurora",
    "after",
    "instance_type",
    "class",
    "subnet",
    "security_groups",
];

/// A decoded step with what the scenario checks afterwards: the label's
/// offset (duplicates) and each `after` entry with its offset (unknown
/// steps, cycles), kept even when the step itself has errors.
pub(super) struct DecodedStep {
    pub name: String,
    pub name_at: usize,
    pub after: Vec<(String, usize)>,
    /// What the step restores, each as `(kind keyword, id, offset)`: no
    /// two steps of a scenario may restore the same one.
    pub targets: Vec<(&'static str, String, usize)>,
    /// `None` after a diagnostic.
    pub step: Option<Step>,
}

pub(super) fn decode_step(
    d: &mut Decoder,
    src: &Source,
    block: &Block,
    scenario_what: &str,
) -> Option<DecodedStep> {
    let label = d.name_label(src, block, "app");
    let what = match &label {
        Some((n, _)) => format!("step {n:?} of {scenario_what}"),
        None => format!("this step of {scenario_what}"),
    };
    let s = d.scope(src, &block.body, what, start(&block.ident), STEP_ATTRS, &[]);
    let (kind, targets) = match step_kind(d, &s) {
        Some((kind, at)) => {
            let word = kind.keyword();
            let ids: Vec<String> = match &kind {
                StepKind::Instances(ids) | StepKind::Volumes(ids) => ids.clone(),
                StepKind::Rds(id) | StepKind::Aurora(id) => vec![id.clone()],
            };
            let targets = ids.into_iter().zip(at).map(|(id, at)| (word, id, at));
            (Some(kind), targets.collect())
        }
        None => (None, vec![]),
    };
    let after = d.string_list(&s, "after", false);
    let after_ok = after.is_some() || d.get(&s, "after", false).is_none();
    let after = after.unwrap_or_default();
    let unique = d.duplicates_in_list(&s, "after", &after);
    let settings = settings(d, &s, kind.as_ref());
    let (name, name_at) = label?;
    let step = match (kind, settings) {
        (Some(kind), Some(settings)) if after_ok && unique => Some(Step {
            name: name.clone(),
            kind,
            after: after.iter().map(|(a, _)| a.clone()).collect(),
            instance_type: settings.instance_type,
            class: settings.class,
            subnet: settings.subnet,
            security_groups: settings.security_groups,
            location: src.location(start(&block.ident)),
        }),
        _ => None,
    };
    Some(DecodedStep {
        name,
        name_at,
        after,
        targets,
        step,
    })
}

/// Exactly one of `instances`, `volumes`, `rds`, `aurora`, with the offset
/// of each id; `None` after a diagnostic.
fn step_kind(d: &mut Decoder, s: &Scope<'_>) -> Option<(StepKind, Vec<usize>)> {
    let set: Vec<&str> = KINDS
        .iter()
        .copied()
        .filter(|k| d.get(s, k, false).is_some())
        .collect();
    match set.as_slice() {
        [] => {
            d.error(
                s.src,
                s.at,
                "Missing step kind",
                format!(
                    "{} must set one of \"instances\", \"volumes\", \"rds\" or \"aurora\": what the step restores",
                    s.what
                ),
            );
            None
        }
        [one] => one_kind(d, s, one),
        [first, second, ..] => {
            let at = start(&s.attrs[second].key);
            d.error(
                s.src,
                at,
                "Conflicting attributes",
                format!(
                    "{} sets both {first:?} and {second:?}; a step restores one kind of resource: put each kind in its own step",
                    s.what
                ),
            );
            None
        }
    }
}

fn one_kind(d: &mut Decoder, s: &Scope<'_>, kind: &str) -> Option<(StepKind, Vec<usize>)> {
    let split =
        |list: Vec<(String, usize)>| -> (Vec<String>, Vec<usize>) { list.into_iter().unzip() };
    match kind {
        "instances" => {
            let (ids, at) = split(ids(d, s, kind, "instance", "i-", validate::is_instance_id)?);
            Some((StepKind::Instances(ids), at))
        }
        "volumes" => {
            let (ids, at) = split(ids(d, s, kind, "volume", "vol-", validate::is_volume_id)?);
            Some((StepKind::Volumes(ids), at))
        }
        _ => {
            let (id, at) = d.string(s, kind, true)?;
            if !is_db_identifier(&id) {
                let what = if kind == "rds" {
                    "DB instance identifier"
                } else {
                    "DB cluster identifier"
                };
                d.error(
                    s.src,
                    at,
                    "Invalid identifier",
                    format!(
                        "{id:?} in {} is not a {what}: 1 to 63 letters, digits and hyphens, starting with a letter, without two hyphens in a row or one at the end",
                        s.what
                    ),
                );
                return None;
            }
            let kind = if kind == "rds" {
                StepKind::Rds(id)
            } else {
                StepKind::Aurora(id)
            };
            Some((kind, vec![at]))
        }
    }
}

/// `instances` / `volumes`: a non-empty list of distinct, well-formed ids.
fn ids(
    d: &mut Decoder,
    s: &Scope<'_>,
    attr: &str,
    noun: &str,
    prefix: &str,
    valid: fn(&str) -> bool,
) -> Option<Vec<(String, usize)>> {
    let list = d.string_list(s, attr, true)?;
    if list.is_empty() {
        let at = start(&s.attrs[attr].value);
        d.error(
            s.src,
            at,
            "Empty list",
            format!(
                "{attr:?} in {} lists no {noun}; name at least one, or remove the step",
                s.what
            ),
        );
        return None;
    }
    let mut ok = d.duplicates_in_list(s, attr, &list);
    let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    for (id, at) in &list {
        if !valid(id) {
            d.error(
                s.src,
                *at,
                &format!("Invalid {noun} id"),
                format!(
                    "{id:?} in {attr:?} of {} is not {article} {noun} id; expected {prefix:?} followed by 8 or 17 lowercase hex digits",
                    s.what
                ),
            );
            ok = false;
        }
    }
    ok.then_some(list)
}

#[derive(Default)]
struct Settings {
    instance_type: Option<String>,
    class: Option<String>,
    subnet: Option<String>,
    security_groups: Vec<String>,
}

/// `instance_type`, `class`, `subnet`, `security_groups`, each checked
/// against the step's kind; `None` after a diagnostic.
fn settings(d: &mut Decoder, s: &Scope<'_>, kind: Option<&StepKind>) -> Option<Settings> {
    let mut ok = true;
    let kind_word = kind.map(StepKind::keyword);
    let mut out = Settings::default();
    if let Some((t, at)) = d.string(s, "instance_type", false) {
        ok &= fits(d, s, "instance_type", kind_word, &["instances"], "class");
        ok &= shaped(d, s, at, "instance_type", &t, "t3.small", |t| {
            t.split_once('.').is_some_and(|(a, b)| word(a) && word(b))
        });
        out.instance_type = Some(t);
    } else {
        ok &= d.get(s, "instance_type", false).is_none();
    }
    if let Some((c, at)) = d.string(s, "class", false) {
        ok &= fits(
            d,
            s,
            "class",
            kind_word,
            &["rds", "aurora"],
            "instance_type",
        );
        ok &= shaped(d, s, at, "class", &c, "db.t3.medium", |c| {
            c.strip_prefix("db.")
                .and_then(|r| r.split_once('.'))
                .is_some_and(|(a, b)| word(a) && word(b))
        });
        out.class = Some(c);
    } else {
        ok &= d.get(s, "class", false).is_none();
    }
    let network_kinds = &["instances", "rds", "aurora"];
    if let Some((n, at)) = d.string(s, "subnet", false) {
        ok &= fits(d, s, "subnet", kind_word, network_kinds, "");
        if !validate::is_subnet_id(&n) {
            bad_id(d, s, at, "subnet", &n, "subnet-");
            ok = false;
        }
        out.subnet = Some(n);
    } else {
        ok &= d.get(s, "subnet", false).is_none();
    }
    if let Some(groups) = d.string_list(s, "security_groups", false) {
        ok &= fits(d, s, "security_groups", kind_word, network_kinds, "");
        ok &= d.duplicates_in_list(s, "security_groups", &groups);
        for (g, at) in &groups {
            if !validate::is_security_group_id(g) {
                bad_id(d, s, *at, "security group", g, "sg-");
                ok = false;
            }
        }
        out.security_groups = groups.into_iter().map(|(g, _)| g).collect();
    } else {
        ok &= d.get(s, "security_groups", false).is_none();
    }
    ok.then_some(out)
}

/// Lowercase letters, digits and hyphens, not empty.
fn word(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether `attr` applies to the step's kind; reports it when not.
/// An unknown kind (already reported) is not reported again.
fn fits(
    d: &mut Decoder,
    s: &Scope<'_>,
    attr: &str,
    kind: Option<&str>,
    allowed: &[&str],
    instead: &str,
) -> bool {
    let Some(kind) = kind else { return true };
    if allowed.contains(&kind) {
        return true;
    }
    let hint = if instead.is_empty() || kind == "volumes" {
        String::new()
    } else {
        format!("; {kind} steps take {instead:?}")
    };
    d.error(
        s.src,
        start(&s.attrs[attr].key),
        "Attribute not allowed here",
        format!(
            "{attr:?} in {} applies to {} steps only, not to {kind} steps{hint}",
            s.what,
            super::plain_list(allowed)
        ),
    );
    false
}

fn shaped(
    d: &mut Decoder,
    s: &Scope<'_>,
    at: usize,
    attr: &str,
    value: &str,
    example: &str,
    ok: impl Fn(&str) -> bool,
) -> bool {
    if ok(value) {
        return true;
    }
    d.error(
        s.src,
        at,
        "Invalid value",
        format!(
            "{value:?} is not a valid {attr:?} in {}; expected a name such as {example:?}",
            s.what
        ),
    );
    false
}

fn bad_id(d: &mut Decoder, s: &Scope<'_>, at: usize, noun: &str, id: &str, prefix: &str) {
    d.error(
        s.src,
        at,
        &format!("Invalid {noun} id"),
        format!(
            "{id:?} in {} is not a {noun} id; expected {prefix:?} followed by 8 or 17 lowercase hex digits",
            s.what
        ),
    );
}
