//! Views of one [`Plan`]: human text for a terminal, Markdown for a pull
//! request comment, JSON for machines. Diffing happened in the planner;
//! nothing here decides anything.

use std::fmt::Write;

use serde_json::Value;
use similar::{ChangeTag, TextDiff};

use crate::plan::{Action, Change, Effect, Plan};

mod fit;
mod style;
pub use fit::{markdown_within, MARKDOWN_MAX_BYTES};
pub use style::{Painter, Style, Tone};

fn line(c: &Change, style: Style) -> String {
    let symbol = style.paint(Tone::of(c.action), c.action.symbol());
    let mut s = format!("{symbol} {}", c.address);
    if let Some(to) = c.moved_to() {
        write!(s, " -> {}", crate::addr::Address::policy(to)).unwrap();
    }
    if let Some(r) = &c.reason {
        write!(s, "  ({r})").unwrap();
    }
    s
}

/// Pretty JSON with secrets-shaped fields hidden, for a person: an
/// external id (a digest by now) shows as "(set)"; `against` (the value
/// before an update) marks one that differs from it "(set, changed)".
fn shown(v: &Value, against: Option<&Value>) -> String {
    let mut v = v.clone();
    hide(&mut v, against);
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

fn hide(v: &mut Value, against: Option<&Value>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                let before = against.and_then(|a| a.get(k));
                if k == "external_id" && !x.is_null() {
                    let changed = against.is_some() && before != Some(&*x);
                    let text = if changed { "(set, changed)" } else { "(set)" };
                    *x = Value::String(text.into());
                } else {
                    hide(x, before);
                }
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter_mut().enumerate() {
                hide(x, against.and_then(|b| b.get(i)));
            }
        }
        _ => {}
    }
}

/// Masks secrets-shaped fields (`external_id`) in `v`, at any depth, for
/// what is written (JSON, saved plans, `state show`): an id in clear
/// becomes "(set)". A digest (what the state and plans hold since ids are
/// sealed) stays, so that a saved plan still tells a changed id.
pub fn mask(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                match x {
                    Value::String(id)
                        if k == "external_id" && !crate::cloud::external_id::is_sealed(id) =>
                    {
                        *x = Value::String("(set)".into());
                    }
                    _ => mask(x),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(mask),
        _ => {}
    }
}

/// The changed lines of an update, as a line diff of the two values.
pub fn value_diff(before: &Value, after: &Value) -> Vec<String> {
    let (b, a) = (shown(before, None), shown(after, Some(before)));
    let diff = TextDiff::from_lines(&b, &a);
    let mut out = Vec::new();
    for op in diff.iter_all_changes() {
        let sign = match op.tag() {
            ChangeTag::Delete => "-",
            ChangeTag::Insert => "+",
            ChangeTag::Equal => continue,
        };
        out.push(format!("{sign} {}", op.value().trim_end()));
    }
    out
}

/// Diff lines of two texts, with a hunk header per group of changes and
/// `context` unchanged lines around them.
pub fn text_diff(before: &str, after: &str, context: usize) -> Vec<String> {
    let diff = TextDiff::from_lines(before, after);
    let mut out = Vec::new();
    for group in diff.grouped_ops(context) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let (o, n) = (first.old_range().start, first.new_range().start);
        let (oe, ne) = (last.old_range().end, last.new_range().end);
        out.push(format!("@@ -{},{} +{},{} @@", o + 1, oe - o, n + 1, ne - n));
        for op in &group {
            for ch in diff.iter_changes(op) {
                let sign = match ch.tag() {
                    ChangeTag::Delete => "-",
                    ChangeTag::Insert => "+",
                    ChangeTag::Equal => " ",
                };
                out.push(format!("{sign} {}", ch.value().trim_end()));
            }
        }
    }
    out
}

/// A VPC clone's detail: resource counts for a create, the template's line
/// diff (and changed settings) for an update or replace.
fn clone_detail(c: &Change) -> Vec<String> {
    let str_of = |v: &Option<Value>, k: &str| {
        v.as_ref()
            .and_then(|v| v.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let mut out = Vec::new();
    match c.action {
        Action::Create => {
            if let Some(Value::Object(counts)) =
                c.after.as_ref().and_then(|a| a.get("resource_counts"))
            {
                for (ty, n) in counts {
                    out.push(format!("{n} x {ty}"));
                }
            }
        }
        Action::Update | Action::Replace => {
            let before = c.before.as_ref().map(|b| b.value());
            if let (Some(Value::Object(b)), Some(Value::Object(a))) = (before.as_deref(), &c.after)
            {
                for (k, y) in a {
                    if matches!(k.as_str(), "template" | "template_hash" | "resource_counts") {
                        continue;
                    }
                    let x = b.get(k).unwrap_or(&Value::Null);
                    if x != y {
                        out.push(format!("{k}: {x} -> {y}"));
                    }
                }
            }
            out.extend(text_diff(
                c.before
                    .as_ref()
                    .and_then(|b| b.str("template"))
                    .unwrap_or_default(),
                &str_of(&c.after, "template"),
                2,
            ));
        }
        _ => {}
    }
    out
}

/// "  target i-0abc, volume vol-0abc" for a snapshot change.
fn snapshot_detail(c: &Change) -> String {
    let get = |k: &str| c.before.as_ref().and_then(|b| b.str(k)).map(str::to_string);
    match (get("target"), get("volume_id"), get("kind"), get("image")) {
        (Some(t), _, Some(k), _) => {
            let what = match k.as_str() {
                "image" => "AMI",
                "db_snapshot" => "DB snapshot",
                "db_cluster_snapshot" => "DB cluster snapshot",
                _ => "record",
            };
            format!("  {what} of {t}")
        }
        (Some(t), _, None, Some(ami)) => format!("  target {t}, snapshot of AMI {ami}"),
        (Some(t), Some(v), None, None) => format!("  target {t}, volume {v}"),
        _ => String::new(),
    }
}

/// (snapshots, backups) deleted; DB (cluster) snapshots count as
/// snapshots, AMIs separately ([`amis_deleted`]).
fn deletes_backups(plan: &Plan) -> (usize, usize) {
    let mut snaps = 0;
    let mut backups = 0;
    for c in &plan.changes {
        if c.effect == Effect::DeletesBackups && c.action == Action::Delete {
            match c.address {
                crate::Address::Snapshot { .. }
                | crate::Address::DbSnapshot { .. }
                | crate::Address::DbClusterSnapshot { .. } => snaps += 1,
                crate::Address::Backup { .. } => backups += 1,
                _ => {}
            }
        }
    }
    (snaps, backups)
}

fn amis_deleted(plan: &Plan) -> usize {
    plan.changes
        .iter()
        .filter(|c| c.action == Action::Delete && matches!(c.address, crate::Address::Image { .. }))
        .count()
}

pub fn summary_line(plan: &Plan) -> String {
    let s = plan.summary;
    let mut line = format!(
        "Plan: {} to add, {} to change, {} to destroy.",
        s.add, s.change, s.destroy
    );
    if s.read > 0 {
        write!(line, " {} catalog record(s) to forget.", s.read).unwrap();
    }
    line
}

/// The line at the top of a plan that deletes the whole history of removed
/// policies: the one thing a reviewer must not scroll past.
fn history_banner(plan: &Plan) -> Option<String> {
    if plan.removed_with_backups.is_empty() {
        return copies_banner(plan);
    }
    let names: Vec<String> = plan
        .removed_with_backups
        .iter()
        .map(|p| format!("policy.{p}"))
        .collect();
    Some(format!(
        "THIS PLAN DELETES EVERY BACKUP OF {}: removed from the configuration. To rename a policy, use a moved block instead; apply refuses this without --allow-destroy-backups.",
        names.join(", ")
    ))
}

/// The note of a plan made without reading AWS: what it took on trust
/// and what it left out.
pub const FROM_STATE_NOTE: &str = "AWS was not read (--refresh=false): targets, snapshots and DR copies are taken to be as the state last recorded them, and IAM roles, VPC clones and resource control are not planned. `lifeboat apply` plans again against AWS and performs only what both plans agree on.";

/// The banner of a plan that deletes every DR copy of a policy whose `dr`
/// block, or the policy itself, was removed.
fn copies_banner(plan: &Plan) -> Option<String> {
    if plan.removed_copies.is_empty() {
        return None;
    }
    let names: Vec<String> = plan
        .removed_copies
        .iter()
        .map(|p| format!("policy.{p}"))
        .collect();
    Some(format!(
        "THIS PLAN ENDS EVERY DR COPY OF {}: its dr block or the policy was removed (copies are deleted, or tagged expired where deletes are not allowed); apply refuses this without --allow-destroy-backups.",
        names.join(", ")
    ))
}

/// Resource-control targets out of step with their windows, for people:
/// not changes (apply does not act on them), so shown apart.
fn power_lines(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    if plan.power.is_empty() {
        return out;
    }
    out.push_str("Resource control (acted on by the runner or `lifeboat rc`, not by apply):\n\n");
    for d in &plan.power {
        let next = d
            .next
            .as_deref()
            .map_or(String::new(), |n| format!("; next edge: {n}"));
        writeln!(
            out,
            "  {} {} ({} -> {}{next})",
            style.paint(Tone::Update, "~"),
            d.address,
            d.actual,
            d.desired
        )
        .unwrap();
    }
    out.push('\n');
    out
}

/// Each DR copy's lock (not changes: a copy to lock is a change as well).
fn lock_lines(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.copy_locks.is_empty() {
        return out;
    }
    out.push_str("DR copy locks:\n\n");
    for l in &plan.copy_locks {
        let how = match (l.mode, l.until) {
            (Some(m), Some(u)) => format!(" ({} until {})", m.as_str(), crate::dr::lock::stamp(u)),
            _ => String::new(),
        };
        writeln!(out, "  {} {}: {}{how}", l.address, l.id, l.state).unwrap();
    }
    out.push('\n');
    out
}

/// The terminal view: control changes, then the backup data that will be
/// deleted in a section of its own, then catalog drift and warnings.
pub fn human(plan: &Plan) -> String {
    human_with(plan, Style::plain())
}

/// [`human`], its symbols, warnings and banners shown in `style`.
pub fn human_with(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    if let Some(b) = history_banner(plan) {
        writeln!(out, "{}\n", style.paint(Tone::Danger, &format!("!! {b}"))).unwrap();
    }
    if plan.from_state {
        writeln!(out, "Note: {FROM_STATE_NOTE}\n").unwrap();
    }
    for w in &plan.warnings {
        writeln!(out, "{} {w}", style.paint(Tone::Warning, "Warning:")).unwrap();
    }
    if !plan.warnings.is_empty() {
        out.push('\n');
    }
    out.push_str(&power_lines(plan, style));
    out.push_str(&lock_lines(plan));
    if plan.is_empty() {
        out.push_str(no_changes(plan));
        return out;
    }
    let control: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.effect == Effect::Control)
        .collect();
    let data: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.effect == Effect::DeletesBackups)
        .collect();
    let drift: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.effect == Effect::Catalog)
        .collect();
    if !control.is_empty() {
        out.push_str("Lifeboat will perform the following actions:\n\n");
        for c in control {
            writeln!(out, "  {}", line(c, style)).unwrap();
            if matches!(c.address, crate::Address::VpcClone { .. }) {
                for l in clone_detail(c) {
                    writeln!(out, "      {}", style.diff_line(&l)).unwrap();
                }
            } else if let (Action::Update, Some(b), Some(a)) = (c.action, &c.before, &c.after) {
                for l in value_diff(&b.value(), a) {
                    writeln!(out, "      {}", style.diff_line(&l)).unwrap();
                }
            }
        }
        out.push('\n');
    }
    let mut shown_under_backup = std::collections::BTreeSet::new();
    if !data.is_empty() {
        let (snaps, backups) = deletes_backups(plan);
        let amis = amis_deleted(plan);
        let amis = if amis > 0 {
            format!(" and {amis} AMI(s)")
        } else {
            String::new()
        };
        let head = format!(
            "Backup data that will be DELETED ({snaps} snapshot(s){amis} in {backups} backup(s)):"
        );
        writeln!(out, "{}\n", style.paint(Tone::Danger, &head)).unwrap();
        let by_addr: std::collections::BTreeMap<&crate::Address, &Change> =
            plan.changes.iter().map(|c| (&c.address, c)).collect();
        for c in &data {
            if !matches!(c.address, crate::Address::Backup { .. }) {
                continue;
            }
            writeln!(out, "  {}", line(c, style)).unwrap();
            for d in &c.depends_on {
                if let Some(sc) = by_addr.get(d) {
                    shown_under_backup.insert(&sc.address);
                    writeln!(out, "      {}{}", line(sc, style), snapshot_detail(sc)).unwrap();
                }
            }
        }
        for c in data.iter().filter(|c| {
            !matches!(c.address, crate::Address::Backup { .. })
                && !shown_under_backup.contains(&c.address)
        }) {
            writeln!(out, "  {}{}", line(c, style), snapshot_detail(c)).unwrap();
        }
        out.push('\n');
    }
    let drift: Vec<&Change> = drift
        .into_iter()
        .filter(|c| !shown_under_backup.contains(&c.address))
        .collect();
    if !drift.is_empty() {
        out.push_str(
            "Catalog records of snapshots that no longer exist in AWS (forgotten on apply):\n\n",
        );
        for c in drift {
            writeln!(out, "  {}{}", line(c, style), snapshot_detail(c)).unwrap();
        }
        out.push('\n');
    }
    writeln!(out, "{}", summary_line(plan)).unwrap();
    out
}

/// The pull-request view, whole. [`markdown_within`] fits it to one
/// comment.
pub fn markdown(plan: &Plan) -> String {
    let mut out = String::from(MD_TITLE);
    for d in &plan.power {
        out.push_str(&md_power(d));
    }
    if plan.is_empty() {
        out.push_str(no_changes(plan));
        return out;
    }
    out.push_str(&md_top(plan));
    for w in &plan.warnings {
        out.push_str(&md_warning(w));
    }
    out.push_str(MD_TABLE_HEAD);
    for c in &plan.changes {
        out.push_str(&md_row(c));
    }
    for c in &plan.changes {
        if let Some(d) = md_details(c) {
            out.push_str(&d);
        }
    }
    out
}

const MD_TITLE: &str = "### Lifeboat plan\n\n";
/// The line of a plan without changes: AWS agrees only if it was read.
fn no_changes(plan: &Plan) -> &'static str {
    if plan.from_state {
        "No changes. Configuration and state agree (AWS was not read: --refresh=false).\n"
    } else {
        "No changes. Configuration, state and AWS agree.\n"
    }
}
const MD_TABLE_HEAD: &str = "| | Address | Reason |\n|---|---|---|\n";

/// A resource-control target out of step with its windows.
fn md_power(d: &crate::control::PowerDrift) -> String {
    format!(
        "> [!NOTE]\n> `{}` is {}, its windows say {} (run mode acts on it, not apply)\n\n",
        d.address, d.actual, d.desired
    )
}

/// What a reviewer must read first: the counts, the banner of a removed
/// policy's history, and whether backup data is deleted.
fn md_top(plan: &Plan) -> String {
    let mut out = format!("**{}**\n\n", summary_line(plan));
    if let Some(b) = history_banner(plan) {
        writeln!(out, "> [!CAUTION]\n> {b}\n").unwrap();
    }
    if plan.from_state {
        writeln!(out, "> [!NOTE]\n> {FROM_STATE_NOTE}\n").unwrap();
    }
    let (snaps, backups) = deletes_backups(plan);
    if snaps + backups > 0 {
        writeln!(
            out,
            "> [!WARNING]\n> This plan deletes backup data: {snaps} snapshot(s) in {backups} backup(s).\n"
        )
        .unwrap();
    }
    out
}

fn md_warning(w: &str) -> String {
    format!("> [!NOTE]\n> {w}\n\n")
}

/// One change's row of the table.
fn md_row(c: &Change) -> String {
    let reason = c.reason.clone().unwrap_or_default().replace('|', "\\|");
    format!(
        "| `{}` | `{}` | {} |\n",
        c.action.symbol(),
        c.address,
        reason
    )
}

/// An update's diff, folded under its address.
fn md_details(c: &Change) -> Option<String> {
    let (Action::Update, Some(b), Some(a)) = (c.action, &c.before, &c.after) else {
        return None;
    };
    let b = &*b.value();
    let mut out = format!(
        "\n<details><summary><code>{}</code></summary>\n\n```diff\n",
        c.address
    );
    let lines = if matches!(c.address, crate::Address::VpcClone { .. }) {
        clone_detail(c)
    } else {
        value_diff(b, a)
    };
    for l in lines {
        writeln!(out, "{l}").unwrap();
    }
    out.push_str("```\n\n</details>\n");
    Some(out)
}

/// The machine view: the plan value itself.
pub fn json(plan: &Plan) -> String {
    let mut out = Vec::new();
    json_to(plan, &mut out).expect("writing to memory");
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// [`json`], written to `out` change by change: each change is made a
/// value, masked and written on its own, so that a plan of many thousand
/// deletions is never held a second time as one value (nor as one string).
/// The text is the same as the whole plan's masked value pretty-printed:
/// keys in order at every level, two spaces an indent.
pub fn json_to(plan: &Plan, out: &mut impl std::io::Write) -> std::io::Result<()> {
    // Every field but the changes, exhaustively, so that a new field of
    // the plan cannot be left out of its JSON.
    let Plan {
        format_version,
        lineage,
        serial,
        config_digest,
        created_at,
        changes,
        summary,
        warnings,
        removed_with_backups,
        removed_copies,
        power,
        from_state,
        copy_locks,
    } = plan;
    let head = Plan {
        format_version: format_version.clone(),
        lineage: lineage.clone(),
        serial: *serial,
        config_digest: config_digest.clone(),
        created_at: *created_at,
        changes: vec![],
        summary: *summary,
        warnings: warnings.clone(),
        removed_with_backups: removed_with_backups.clone(),
        removed_copies: removed_copies.clone(),
        power: power.clone(),
        from_state: *from_state,
        copy_locks: copy_locks.clone(),
    };
    let mut head = serde_json::to_value(&head).map_err(std::io::Error::other)?;
    mask(&mut head);
    let Value::Object(fields) = head else {
        unreachable!("a plan serialises as an object")
    };
    // `fields` is ordered by key, as the whole value's printing is.
    out.write_all(b"{")?;
    for (n, (key, value)) in fields.iter().enumerate() {
        out.write_all(if n == 0 { b"\n  " } else { b",\n  " })?;
        serde_json::to_writer(&mut *out, key)?;
        out.write_all(b": ")?;
        if key != "changes" || changes.is_empty() {
            write_indented(out, value, "  ")?;
            continue;
        }
        out.write_all(b"[")?;
        for (i, c) in changes.iter().enumerate() {
            out.write_all(if i == 0 { b"\n    " } else { b",\n    " })?;
            let mut v = serde_json::to_value(c).map_err(std::io::Error::other)?;
            mask(&mut v);
            write_indented(out, &v, "    ")?;
        }
        out.write_all(b"\n  ]")?;
    }
    out.write_all(b"\n}\n")
}

/// `v` pretty-printed as it is at `indent` inside a larger value: its
/// lines after the first are indented by `indent`.
fn write_indented(out: &mut impl std::io::Write, v: &Value, indent: &str) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(std::io::Error::other)?;
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            out.write_all(b"\n")?;
            out.write_all(indent.as_bytes())?;
        }
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Address;
    use serde_json::json;

    /// The JSON view as it was made before it was written change by change:
    /// the whole plan as one value, masked, pretty-printed.
    fn whole(plan: &Plan) -> String {
        let mut v = serde_json::to_value(plan).unwrap();
        mask(&mut v);
        serde_json::to_string_pretty(&v).unwrap() + "\n"
    }

    #[test]
    fn the_json_written_change_by_change_is_the_whole_plan_masked_byte_for_byte() {
        let account = json!({"name": "main", "role": {"arn": "arn:aws:iam::1:role/x", "external_id": "s3cret"}, "regions": ["us-east-1"]});
        let changes = vec![
            Change::new(Address::account("main"), Action::Update, Effect::Control)
                .reason("regions changed")
                .before(Some(account.clone()))
                .after(Some(
                    json!({"name": "main", "nested": [{"external_id": "x"}, {}], "empty": []}),
                )),
            Change::new(
                Address::Snapshot {
                    id: "snap-1".into(),
                },
                Action::Delete,
                Effect::DeletesBackups,
            )
            .reason("retention: generation 4 of 3 \"quoted\"\nand a new line")
            .before(Some(
                json!({"policy": "web", "backup": "b1", "target": "i-1"}),
            ))
            .depends_on(vec![Address::policy("web")]),
        ];
        let mut plan = Plan::new(
            "lineage".into(),
            7,
            "digest".into(),
            "2026-12-02T00:00:00Z".parse().unwrap(),
            changes,
            vec!["a warning".into()],
        );
        plan.removed_with_backups = vec!["old".into()];
        let text = json(&plan);
        assert_eq!(text, whole(&plan));
        assert!(!text.contains("s3cret") && text.contains("(set)"), "{text}");
        // And read back as the plan it is (but the masked secret).
        let back: Plan = serde_json::from_str(&text).unwrap();
        assert_eq!(back.changes.len(), 2);
        assert_eq!(back.changes[1], plan.changes[1]);

        let empty = Plan::new(
            "lineage".into(),
            0,
            "digest".into(),
            "2026-12-02T00:00:00Z".parse().unwrap(),
            vec![],
            vec![],
        );
        assert_eq!(json(&empty), whole(&empty));
    }

    #[test]
    fn a_changed_external_id_shows_as_changed_and_never_as_its_digest() {
        let role = |id: &str| json!({"assume_role": {"role_arn": "r", "external_id": id}});
        let (b, a) = (role("hmac-sha256:aa"), role("hmac-sha256:bb"));
        let lines = value_diff(&b, &a).join("\n");
        assert!(
            lines.contains("- ") && lines.contains("\"(set)\""),
            "{lines}"
        );
        assert!(
            lines.contains("+ ") && lines.contains("(set, changed)"),
            "{lines}"
        );
        assert!(!lines.contains("hmac-sha256"), "{lines}");
        assert!(value_diff(&b, &b).is_empty());
        // Written views keep the digest (a saved plan tells a change) and
        // hide an id in clear.
        let (mut sealed, mut clear) = (b.clone(), role("s3cret"));
        mask(&mut sealed);
        mask(&mut clear);
        assert_eq!(sealed, b);
        assert_eq!(clear["assume_role"]["external_id"], "(set)");
    }

    /// Marks a piece as `<Tone|text>`, so that a test sees where a style
    /// applied and can take the marks out again.
    fn marked(tone: Tone, text: &str) -> String {
        format!("<{tone:?}|{text}>")
    }

    fn unmarked(text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('<') {
            let Some(bar) = rest[open..].find('|') else {
                break;
            };
            let close = rest[open..].find('>').expect("a closed mark") + open;
            out.push_str(&rest[..open]);
            out.push_str(&rest[open + bar + 1..close]);
            rest = &rest[close + 1..];
        }
        out + rest
    }

    #[test]
    fn a_style_marks_symbols_warnings_and_banners_and_changes_nothing_else() {
        let snapshot = |id: &str| Address::Snapshot { id: id.into() };
        let changes = vec![
            Change::new(Address::policy("new"), Action::Create, Effect::Control),
            Change::new(Address::policy("web"), Action::Update, Effect::Control)
                .before(Some(json!({"generations": 2})))
                .after(Some(json!({"generations": 3}))),
            Change::new(Address::policy("old"), Action::Delete, Effect::Control),
            Change::new(Address::account("main"), Action::Replace, Effect::Control),
            Change::new(snapshot("snap-1"), Action::Delete, Effect::DeletesBackups),
            Change::new(snapshot("snap-2"), Action::Read, Effect::Catalog),
        ];
        let mut plan = Plan::new(
            "lineage".into(),
            1,
            "digest".into(),
            "2026-12-02T00:00:00Z".parse().unwrap(),
            changes,
            vec!["a warning".into()],
        );
        plan.removed_with_backups = vec!["old".into()];
        let styled = human_with(&plan, Style::painted(marked));
        assert_eq!(unmarked(&styled), human(&plan), "{styled}");
        for piece in [
            "<Create|+> policy.new",
            "<Update|~> policy.web",
            "<Delete|-> policy.old",
            "<Replace|-/+> account.main",
            "<Delete|-> snapshot",
            "<Forget|<=> snapshot",
            "<Warning|Warning:> a warning",
            "<Danger|!! THIS PLAN DELETES EVERY BACKUP",
            "<Danger|Backup data that will be DELETED",
            "<Delete|->   \"generations\": 2",
            "<Create|+>   \"generations\": 3",
        ] {
            assert!(styled.contains(piece), "{piece:?} in\n{styled}");
        }
    }
}
