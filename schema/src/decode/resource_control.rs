//! `resource_control_group "NAME" { .. }` blocks.
//!
//! Besides each value's shape this checks what can be seen without a clock:
//! windows that overlap, operations closer than
//! [`MIN_CONTROL_GAP_MINUTES`] on the week's circle, an `on` in `off_only`
//! mode (or none in `on_off`), and a target listed in two groups (two
//! timetables would fight over it).

use std::collections::{BTreeMap, HashMap};

use hcl_edit::structure::{Block, Body};

use super::policy::target_region;
use super::schedule::decode_time_zone;
use super::select::{tag_block, Use};
use super::{account_reference, start, DeclaredAccount, Decoder, Scope};
use crate::config::*;
use crate::source::Source;

const GROUP_ATTRS: &[&str] = &[
    "account",
    "mode",
    "time_zone",
    "hibernate",
    "timeout",
    "region",
    "instances",
    "rds",
    "aurora",
    "auto_remove_targets",
    "template",
];

/// Where one listed target was first named: its group and position.
type FirstListed = HashMap<(&'static str, String), (String, usize, usize)>;

pub(super) fn decode_groups(
    d: &mut Decoder,
    files: &[(&Source, &Body)],
    blocks: &[(usize, &Block)],
    accounts: &BTreeMap<String, DeclaredAccount>,
) -> BTreeMap<String, ResourceControlGroup> {
    let mut out = BTreeMap::new();
    let mut seen: HashMap<String, (usize, usize)> = HashMap::new();
    let mut listed: FirstListed = HashMap::new();
    for &(i, b) in blocks {
        let src = files[i].0;
        let (name, group) = decode_group(d, src, b, accounts);
        let Some((name, at)) = name else { continue };
        if let Some(&(fi, first)) = seen.get(&name) {
            d.error(
                src,
                at,
                "Duplicate resource_control_group",
                format!(
                    "resource_control_group {name:?} is already declared at {}",
                    files[fi].0.short_location(first)
                ),
            );
            continue;
        }
        seen.insert(name.clone(), (i, at));
        let Some((group, positions)) = group else {
            continue;
        };
        if listed_once(d, files, i, &group, positions, &mut listed) {
            out.insert(name, group);
        }
    }
    out
}

/// False (after reporting each) when a target of `group` is listed by a
/// group declared before it.
fn listed_once(
    d: &mut Decoder,
    files: &[(&Source, &Body)],
    file: usize,
    group: &ResourceControlGroup,
    positions: Vec<(&'static str, String, usize)>,
    listed: &mut FirstListed,
) -> bool {
    let mut ok = true;
    for (kind, id, at) in positions {
        match listed.get(&(kind, id.clone())) {
            Some((other, fi, first)) if *other != group.name => {
                d.error(
                    files[file].0,
                    at,
                    "Target in two groups",
                    format!(
                        "{kind} {id:?} is in resource_control_group {:?} and already in {other:?} (at {}); a target follows one timetable",
                        group.name,
                        files[*fi].0.short_location(*first)
                    ),
                );
                ok = false;
            }
            Some(_) => {}
            None => {
                listed.insert((kind, id), (group.name.clone(), file, at));
            }
        }
    }
    ok
}

type Decoded = (
    Option<(String, usize)>,
    Option<(ResourceControlGroup, Vec<(&'static str, String, usize)>)>,
);

fn decode_group(
    d: &mut Decoder,
    src: &Source,
    block: &Block,
    accounts: &BTreeMap<String, DeclaredAccount>,
) -> Decoded {
    let name = d.name_label(src, block, "nightly");
    let what = match &name {
        Some((n, _)) => format!("resource_control_group {n:?}"),
        None => "this resource_control_group".into(),
    };
    let scope = d.scope(
        src,
        &block.body,
        what,
        start(&block.ident),
        GROUP_ATTRS,
        &["select", "exclude", "window"],
    );
    let errors = |d: &Decoder| {
        d.diags
            .iter()
            .filter(|g| g.severity == crate::diag::Severity::Error)
            .count()
    };
    let errors_before = errors(d);
    let mut ok = true;
    let account = account_reference(d, &scope, accounts);
    let declared = account.and_then(|a| accounts.get(a));
    let mode = match d.choice(&scope, "mode", &["on_off", "off_only"]) {
        Some(1) => ControlMode::OffOnly,
        Some(_) => ControlMode::OnOff,
        None => {
            ok &= !scope.attrs.contains_key("mode");
            ControlMode::OnOff
        }
    };
    let time_zone = decode_time_zone(d, src, &scope, &mut ok);
    let hibernate = d.bool(&scope, "hibernate").unwrap_or(false);
    let template = d.bool(&scope, "template").unwrap_or(false);
    let timeout_secs = d
        .duration(&scope, "timeout", false)
        .unwrap_or(DEFAULT_CONTROL_TIMEOUT_SECS);
    let auto_remove_targets = match d.choice(&scope, "auto_remove_targets", &["no", "yes", "alert"])
    {
        Some(1) => AutoRemove::Yes,
        Some(2) => AutoRemove::Alert,
        _ => AutoRemove::No,
    };
    let (instances, rds, aurora, positions) = listed_targets(d, &scope);
    let listed_any = !(instances.is_empty() && rds.is_empty() && aurora.is_empty());
    // The listed targets need a region; `select` alone may look in all.
    let region = if scope.attrs.contains_key("region") || listed_any {
        let r = target_region(d, &scope, declared);
        ok &= r.is_some() || declared.is_none_or(|a| !a.regions_ok);
        r.filter(|_| scope.attrs.contains_key("region"))
    } else {
        None
    };
    let (selectors, excluded, windows) = group_blocks(d, &scope, mode, &mut ok);
    if template {
        ok &= template_lists_nothing(d, &scope, listed_any, !selectors.is_empty());
    }
    if windows.is_empty() && ok {
        d.error(
            src,
            scope.at,
            "Missing window",
            format!(
                "{} has no window block, so it never acts; add window {{ off = \"fri 20:00\"  on = \"mon 07:00\" }}",
                scope.what
            ),
        );
        ok = false;
    }
    if !listed_any && selectors.is_empty() && !template {
        d.warning(
            src,
            scope.at,
            "Empty group",
            format!(
                "{} lists no instances, rds or aurora and has no select block, so it controls nothing",
                scope.what
            ),
        );
    }
    ok &= windows_apart(d, &scope, &windows);
    let name_at = name
        .as_ref()
        .map(|_| start(block.labels.first().expect("named")));
    let group = match (&name, account) {
        (Some((n, _)), Some(account)) if ok && errors(d) == errors_before => Some((
            ResourceControlGroup {
                name: n.clone(),
                account: account.to_string(),
                template,
                from_template: None,
                mode,
                time_zone,
                hibernate,
                timeout_secs,
                region,
                instances,
                rds,
                aurora,
                selectors,
                excluded,
                windows: windows.into_iter().map(|(w, _)| w).collect(),
                auto_remove_targets,
                location: src.location(start(&block.ident)),
            },
            positions,
        )),
        _ => None,
    };
    (name.zip(name_at).map(|((n, _), at)| (n, at)), group)
}

/// False (after reporting each) when a template lists targets or has a
/// `select` block: a template never acts itself, and every group made
/// from it would take the same targets, which a target in two groups is
/// not allowed to be.
fn template_lists_nothing(
    d: &mut Decoder,
    scope: &Scope<'_>,
    listed_any: bool,
    selects: bool,
) -> bool {
    let src = scope.src;
    let mut ok = true;
    if listed_any {
        for attr in ["instances", "rds", "aurora"] {
            if let Some(a) = scope.attrs.get(attr) {
                d.error(
                    src,
                    start(&a.key),
                    "Targets in a template",
                    format!(
                        "{} is a template: it never acts itself, and the groups made from it take the instances tagged lifeboat:resource-control = NAME:TEMPLATE; remove {attr:?} or template = true",
                        scope.what
                    ),
                );
                ok = false;
            }
        }
    }
    if selects {
        for b in scope
            .blocks
            .iter()
            .filter(|b| b.ident.value().as_str() == "select")
        {
            d.error(
                src,
                start(&b.ident),
                "Select in a template",
                format!(
                    "{} is a template: every group made from it would select the same instances; remove the select block or template = true",
                    scope.what
                ),
            );
            ok = false;
        }
    }
    ok
}

/// A group's `select`, `exclude` and `window` blocks.
fn group_blocks(
    d: &mut Decoder,
    scope: &Scope<'_>,
    mode: ControlMode,
    ok: &mut bool,
) -> (
    Vec<TagSelector>,
    Vec<TagSelector>,
    Vec<(ControlWindow, usize)>,
) {
    let mut selectors = Vec::new();
    let mut excluded = Vec::new();
    let mut windows = Vec::new();
    for b in &scope.blocks {
        match b.ident.value().as_str() {
            "select" => tag_block(d, scope, b, Use::GroupSelect, &mut selectors),
            "exclude" => tag_block(d, scope, b, Use::GroupExclude, &mut excluded),
            _ => match decode_window(d, scope, b, mode) {
                Some(w) => windows.push((w, start(&b.ident))),
                None => *ok = false,
            },
        }
    }
    (selectors, excluded, windows)
}

/// The listed targets (`instances`, `rds`, `aurora`), with where each id
/// was written (for the check that no other group lists it).
fn listed_targets(d: &mut Decoder, scope: &Scope<'_>) -> Listed {
    let src = scope.src;
    let mut positions = Vec::new();
    let mut ids = |d: &mut Decoder, attr: &'static str, kind: &'static str| {
        let Some(list) = d.string_list(scope, attr, false) else {
            return Vec::new();
        };
        for (id, at) in &list {
            if id.trim().is_empty() || (attr == "instances" && !crate::validate::is_instance_id(id))
            {
                d.error(
                    src,
                    *at,
                    "Invalid target id",
                    format!(
                        "{id:?} in {attr:?} of {} is not a valid {kind} id",
                        scope.what
                    ),
                );
            }
            positions.push((kind, id.clone(), *at));
        }
        d.duplicates_in_list(scope, attr, &list);
        list.into_iter().map(|(id, _)| id).collect::<Vec<_>>()
    };
    let instances = ids(d, "instances", "instance");
    let rds = ids(d, "rds", "rds");
    let aurora = ids(d, "aurora", "aurora");
    (instances, rds, aurora, positions)
}

type Listed = (
    Vec<String>,
    Vec<String>,
    Vec<String>,
    Vec<(&'static str, String, usize)>,
);

/// One `window { off  on }` block.
fn decode_window(
    d: &mut Decoder,
    group: &Scope<'_>,
    b: &Block,
    mode: ControlMode,
) -> Option<ControlWindow> {
    let src = group.src;
    d.no_labels(src, b);
    let w = d.scope(
        src,
        &b.body,
        format!("a window of {}", group.what),
        start(&b.ident),
        &["off", "on"],
        &[],
    );
    let time = |d: &mut Decoder, attr: &str, required: bool| {
        let (s, at) = d.string(&w, attr, required)?;
        match s.parse::<WeekTime>() {
            Ok(t) => Some(Some((t, at))),
            Err(why) => {
                d.error(
                    src,
                    at,
                    "Invalid time",
                    format!("{attr:?} in {}: {why}", w.what),
                );
                None
            }
        }
    };
    let off = time(d, "off", true).flatten();
    let on = match (mode, w.attrs.get("on")) {
        (ControlMode::OffOnly, Some(a)) => {
            d.error(
                src,
                start(&a.key),
                "On time in off_only mode",
                format!(
                    "{} is off_only: Lifeboat only stops its targets, so a window has no \"on\"; remove it or set mode = \"on_off\"",
                    w.what
                ),
            );
            return None;
        }
        (ControlMode::OffOnly, None) => None,
        (ControlMode::OnOff, _) => Some(time(d, "on", true).flatten()?),
    };
    let (off, _) = off?;
    if let Some((on, at)) = on {
        if on == off {
            d.error(
                src,
                at,
                "Empty window",
                format!("{} is off and on at the same time, {on}", w.what),
            );
            return None;
        }
    }
    Some(ControlWindow {
        off,
        on: on.map(|(t, _)| t),
    })
}

/// False (after reporting it) when two windows overlap or two operations
/// (an `off` or an `on`) come less than [`MIN_CONTROL_GAP_MINUTES`] apart.
fn windows_apart(d: &mut Decoder, scope: &Scope<'_>, windows: &[(ControlWindow, usize)]) -> bool {
    let src = scope.src;
    let mut ok = true;
    for (j, (b, at)) in windows.iter().enumerate() {
        for (a, first) in &windows[..j] {
            if let (Some(x), Some(y)) = (a.span(), b.span()) {
                if overlap(x, y) {
                    d.error(
                        src,
                        *at,
                        "Overlapping windows",
                        format!(
                            "the window {} to {} of {} overlaps the window {} to {} at {}",
                            b.off,
                            b.on.expect("span"),
                            scope.what,
                            a.off,
                            a.on.expect("span"),
                            src.short_location(*first)
                        ),
                    );
                    ok = false;
                }
            }
        }
    }
    if !ok {
        return false;
    }
    let mut edges: Vec<(i64, WeekTime, usize)> = Vec::new();
    for (w, at) in windows {
        edges.push((w.off.minute_of_week(), w.off, *at));
        edges.extend(w.on.map(|on| (on.minute_of_week(), on, *at)));
    }
    edges.sort_by_key(|e| e.0);
    for (k, (m, t, at)) in edges.iter().enumerate() {
        let (pm, pt, _) = if k == 0 {
            let last = edges.last().expect("edges");
            (last.0 - WEEK_MINUTES, last.1, last.2)
        } else {
            edges[k - 1]
        };
        if edges.len() > 1 && m - pm < MIN_CONTROL_GAP_MINUTES {
            d.error(
                src,
                *at,
                "Operations too close",
                format!(
                    "{} acts at {pt} and again at {t}, {} minutes later; operations of a group must be at least {MIN_CONTROL_GAP_MINUTES} minutes apart",
                    scope.what,
                    m - pm
                ),
            );
            ok = false;
        }
    }
    ok
}

/// Do two `[off, on)` spans of the week's circle share a minute?
fn overlap(a: (i64, i64), b: (i64, i64)) -> bool {
    [-WEEK_MINUTES, 0, WEEK_MINUTES]
        .iter()
        .any(|s| a.0 < b.1 + s && b.0 + s < a.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_overlap_across_the_end_of_the_week() {
        let day = 1440;
        // sun 20:00 to mon 07:00 against mon 06:00 to mon 08:00.
        let weekend = (6 * day + 20 * 60, 7 * day + 7 * 60);
        assert!(overlap(weekend, (6 * 60, 8 * 60)));
        assert!(overlap((6 * 60, 8 * 60), weekend));
        assert!(!overlap(weekend, (8 * 60, 9 * 60)));
        assert!(!overlap((0, 60), (60, 120)));
    }
}
