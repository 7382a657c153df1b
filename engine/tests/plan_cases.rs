//! Data-driven planner tests: every folder of `testdata/plan/` holds a
//! configuration (`*.lb.hcl`), the prior state (`state.json`, optional), what
//! AWS has (`observed.json`, optional) and the expected plan as the operator
//! sees it plus its dependency edges (`expected.txt`).
//!
//! The same fixtures check that the retention after a backup
//! (`backup::retention_plan`) changes what the plan previews.
//!
//! `LIFEBOAT_BLESS=1 cargo test -p lifeboat-engine --test plan_cases` rewrites
//! the expectations; review the diff before committing it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use lifeboat_engine::backup;
use lifeboat_engine::plan::observe::Observation;
use lifeboat_engine::plan::{planner, render, Action, Change};
use lifeboat_engine::state::{self, model::PolicyState};
use lifeboat_engine::Address;

fn cases() -> Vec<PathBuf> {
    let root = Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
    )
    .join("../testdata/plan");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

fn read_json<T: serde::de::DeserializeOwned + Default>(path: &Path) -> T {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        }
        Err(_) => T::default(),
    }
}

fn check(case: &Path) -> Option<String> {
    let loaded =
        lifeboat_schema::load_dir(case).unwrap_or_else(|d| panic!("{}:\n{d}", case.display()));
    let prior: state::Snapshot = read_json(&case.join("state.json"));
    let observed: Observation = read_json(&case.join("observed.json"));
    let now = "2026-11-22T00:00:00Z".parse().unwrap();
    let plan = planner::plan(&loaded.config, &prior, &observed, now).unwrap();
    let mut actual = render::human(&plan);
    actual.push_str("\n--- dependencies ---\n");
    for c in &plan.changes {
        for d in &c.depends_on {
            actual.push_str(&format!("{d} -> {}\n", c.address));
        }
    }
    for c in plan.changes.iter().filter(|c| c.alert.is_some()) {
        actual.push_str(&format!(
            "alert on {}: {}\n",
            c.address,
            c.alert.as_deref().unwrap()
        ));
    }
    let expected_path = case.join("expected.txt");
    if std::env::var_os("LIFEBOAT_BLESS").is_some() {
        std::fs::write(&expected_path, &actual).unwrap();
        return None;
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    (expected != actual).then(|| {
        format!(
            "== {} ==\n--- expected\n{expected}\n--- actual\n{actual}",
            case.display()
        )
    })
}

#[test]
fn plan_cases_match_their_expectations() {
    let failures: Vec<String> = cases().iter().filter_map(|c| check(c)).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What the retention after a backup would change for each configured
/// policy, from the fixture's state and observation with the configuration's
/// accounts and generations (as after an apply).
fn run_path_retention(
    config: &lifeboat_schema::Config,
    prior: &state::Snapshot,
    observed: &Observation,
    now: chrono::DateTime<chrono::Utc>,
) -> (Vec<Change>, Vec<String>) {
    let mut applied = prior.clone();
    for (name, a) in &config.accounts {
        applied.objects.insert(
            Address::account(name),
            state::StoredValue::new(&serde_json::to_value(a).unwrap()),
        );
    }
    let mut changes = Vec::new();
    let mut warnings = Vec::new();
    for p in config.policies.values() {
        let plan = backup::retention_plan(&applied, &PolicyState::from(p), observed, now).unwrap();
        changes.extend(plan.changes);
        warnings.extend(plan.warnings);
    }
    (changes, warnings)
}

/// The policy each catalog address (backup or artifact) belongs to.
fn owners(prior: &state::Snapshot) -> BTreeMap<Address, (String, Address)> {
    let mut out = BTreeMap::new();
    for b in &prior.backups {
        out.insert(b.address(), (b.policy.clone(), b.address()));
        for s in &b.snapshots {
            out.insert(s.address(), (b.policy.clone(), b.address()));
        }
    }
    out
}

/// Retention has one home: for every fixture, the backup data the plan
/// deletes (or forgets because it is gone) for a configured policy is
/// exactly what the retention after a backup of that policy would change,
/// given the same state, observation, accounts and generations. The rest
/// of the plan's catalog changes are drift reads of backups that stay.
#[test]
fn retention_after_a_backup_changes_what_the_plan_previews() {
    let now = "2026-11-22T00:00:00Z".parse().unwrap();
    let mut compared = 0;
    let mut failures = Vec::new();
    for case in cases() {
        let loaded = lifeboat_schema::load_dir(&case).unwrap();
        let config = &loaded.config;
        let prior: state::Snapshot = read_json(&case.join("state.json"));
        let observed: Observation = read_json(&case.join("observed.json"));
        let plan = planner::plan(config, &prior, &observed, now).unwrap();
        let (run, run_warnings) = run_path_retention(config, &prior, &observed, now);
        let owners = owners(&prior);
        let run_by_addr: BTreeMap<&Address, &Change> =
            run.iter().map(|c| (&c.address, c)).collect();
        assert_eq!(run_by_addr.len(), run.len(), "{}", case.display());
        let run_backups: BTreeSet<&Address> = run
            .iter()
            .filter_map(|c| owners.get(&c.address).map(|o| &o.1))
            .collect();
        let mut seen = BTreeSet::new();
        for c in &plan.changes {
            let Some((policy, backup)) = owners.get(&c.address) else {
                continue;
            };
            if !config.policies.contains_key(policy) {
                continue;
            }
            match run_by_addr.get(&c.address) {
                Some(r) if *r == c => {
                    seen.insert(&c.address);
                }
                Some(r) => failures.push(format!(
                    "{}: {} differs:\nplan {c:?}\nrun  {r:?}",
                    case.display(),
                    c.address
                )),
                // Drift of a backup that stays: recorded by apply only.
                None if c.action == Action::Read
                    && c.reason.as_deref() == Some("deleted outside Lifeboat")
                    && !run_backups.contains(backup) => {}
                None => failures.push(format!(
                    "{}: the plan has {} {} that the retention after a backup does not",
                    case.display(),
                    c.action.symbol(),
                    c.address
                )),
            }
        }
        for c in &run {
            if !seen.contains(&c.address) {
                failures.push(format!(
                    "{}: the retention after a backup has {} {} that the plan does not",
                    case.display(),
                    c.action.symbol(),
                    c.address
                ));
            }
        }
        for w in &run_warnings {
            if !plan.warnings.contains(w) {
                failures.push(format!("{}: warning {w:?} not in the plan", case.display()));
            }
        }
        compared += run.len();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The fixtures do exercise retention (retention-lowered deletes backups).
    assert!(compared > 0);
}
