//! Unit tests of the fitted Markdown view, on plans built in memory.

use serde_json::json;

use super::*;
use crate::plan::{Change, Effect};

const SHOW: &str = "lifeboat show plan.json";

fn plan(changes: Vec<Change>, warnings: Vec<String>) -> Plan {
    Plan::new(
        "lineage".into(),
        3,
        "digest".into(),
        "2026-12-02T00:00:00Z".parse().unwrap(),
        changes,
        warnings,
    )
}

fn create_target(n: usize) -> Change {
    Change::new(
        Address::target("web", &format!("i-{n:017x}")),
        Action::Create,
        Effect::Control,
    )
    .reason("tag team=web")
    .after(Some(json!({"id": format!("i-{n:017x}")})))
}

fn delete_snapshot(n: usize) -> Change {
    Change::new(
        Address::snapshot(&format!("snap-{n:017x}")),
        Action::Delete,
        Effect::DeletesBackups,
    )
    .reason("retention: generation 3 of 2")
    .before(Some(
        json!({"policy": "web", "backup": "b1", "target": "i-1", "volume_id": "vol-1"}),
    ))
}

fn update_policy(name: &str) -> Change {
    Change::new(Address::policy(name), Action::Update, Effect::Control)
        .reason("generations 2 -> 1")
        .before(Some(json!({"generations": 2})))
        .after(Some(json!({"generations": 1})))
}

/// 10,000 creates of targets, five retention deletes, a policy deleted and
/// an update: megabytes whole.
fn large() -> Plan {
    let mut changes: Vec<Change> = (0..10_000).map(create_target).collect();
    changes.extend((0..5).map(delete_snapshot));
    changes.push(Change::new(
        Address::policy("old"),
        Action::Delete,
        Effect::Control,
    ));
    changes.push(update_policy("web"));
    plan(changes, vec!["instance i-gone is listed but absent".into()])
}

#[test]
fn a_plan_of_ten_thousand_creates_fits_the_cap_and_keeps_every_delete() {
    let plan = large();
    assert!(markdown(&plan).len() > 10 * MARKDOWN_MAX_BYTES);
    let out = markdown_within(&plan, MARKDOWN_MAX_BYTES, SHOW);
    assert!(out.len() <= MARKDOWN_MAX_BYTES, "{} bytes", out.len());
    // The counts and every destructive change.
    assert!(out.contains("**Plan: 10000 to add, 1 to change, 6 to destroy.**"));
    for c in plan.changes.iter().filter(|c| c.action == Action::Delete) {
        assert!(out.contains(&md_row(c)), "{} is listed", c.address);
    }
    assert!(out.contains("every destructive change is listed"), "{out}");
    assert!(!out.contains("[!CAUTION]"), "nothing destructive left out");
    // The rest fills the room in order, then is folded per kind.
    let kept = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Create && out.contains(&md_row(c)))
        .count();
    assert!(kept > 100, "the room left is used: {kept} creates kept");
    let folded = 10_000 - kept;
    assert!(
        out.contains(&format!(
            "… and {} more creates of backup targets, folded; see the full plan with `lifeboat show plan.json`",
            thousands(folded)
        )),
        "{}",
        &out[out.len().saturating_sub(2000)..]
    );
    // The warning was kept (it comes before the other rows).
    assert!(out.contains("instance i-gone is listed but absent"));
}

#[test]
fn a_plan_that_fits_is_unchanged_by_the_cap() {
    let small = plan(
        vec![create_target(1), delete_snapshot(1), update_policy("web")],
        vec!["a warning".into()],
    );
    let whole = markdown(&small);
    assert_eq!(markdown_within(&small, MARKDOWN_MAX_BYTES, SHOW), whole);
    assert_eq!(markdown_within(&small, whole.len(), SHOW), whole);
    let empty = plan(vec![], vec![]);
    assert_eq!(markdown_within(&empty, 200, SHOW), markdown(&empty));
}

#[test]
fn destructive_changes_beyond_the_cap_are_counted_never_dropped_silently() {
    let mut changes: Vec<Change> = (0..3_000).map(delete_snapshot).collect();
    changes.extend((0..50).map(create_target));
    let plan = plan(changes, vec![]);
    let cap = 20_000;
    let out = markdown_within(&plan, cap, SHOW);
    assert!(out.len() <= cap, "{} bytes", out.len());
    let listed = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete && out.contains(&md_row(c)))
        .count();
    assert!(listed > 10 && listed < 3_000, "{listed} listed");
    // The deletes kept are the first ones, in order.
    assert!(plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .take(listed)
        .all(|c| out.contains(&md_row(c))));
    let left_out = 3_000 - listed;
    assert!(
        out.contains(&format!(
            "**{} more destructive change(s) (deletes and replaces) are not listed**",
            thousands(left_out)
        )),
        "{out}"
    );
    assert!(out.contains("some destructive changes are left out"));
    assert!(out.contains("… and 50 more creates of backup targets, folded"));
}

#[test]
fn the_diffs_of_updates_fold_before_any_row_and_say_so() {
    // Updates whose diffs are large: rows fit, diffs do not.
    let big = "x".repeat(4_000);
    let changes: Vec<Change> = (0..20)
        .map(|n| {
            Change::new(
                Address::policy(&format!("p{n}")),
                Action::Update,
                Effect::Control,
            )
            .reason("schedule changed")
            .before(Some(json!({"script": big})))
            .after(Some(json!({"script": format!("{big}y")})))
        })
        .collect();
    let plan = plan(changes, vec![]);
    let out = markdown_within(&plan, 30_000, SHOW);
    assert!(out.len() <= 30_000, "{} bytes", out.len());
    for c in &plan.changes {
        assert!(out.contains(&md_row(c)), "{} is listed", c.address);
    }
    assert!(out.contains("… and the diffs of"), "{out}");
    assert!(!out.contains("more updates of"), "no row folded");
}

#[test]
fn one_folded_change_reads_in_the_singular() {
    let long = create_target(1).reason("r".repeat(5_000));
    let plan = plan(vec![delete_snapshot(1), delete_snapshot(2), long], vec![]);
    let out = markdown_within(&plan, 3_000, SHOW);
    assert!(out.len() <= 3_000, "{} bytes", out.len());
    for c in plan.changes.iter().filter(|c| c.action == Action::Delete) {
        assert!(out.contains(&md_row(c)), "{} is listed", c.address);
    }
    assert!(
        out.contains("… and 1 more create of a backup target, folded"),
        "{out}"
    );
}

#[test]
fn thousands_are_separated() {
    assert_eq!(thousands(0), "0");
    assert_eq!(thousands(999), "999");
    assert_eq!(thousands(9_412), "9,412");
    assert_eq!(thousands(1_234_567), "1,234,567");
}
