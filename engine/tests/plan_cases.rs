//! Data-driven planner tests: every folder of `testdata/plan/` holds a
//! configuration (`*.lb.hcl`), the prior state (`state.json`, optional), what
//! AWS has (`observed.json`, optional) and the expected plan as the operator
//! sees it plus its dependency edges (`expected.txt`).
//!
//! `LIFEBOAT_BLESS=1 cargo test -p lifeboat-engine --test plan_cases` rewrites
//! the expectations; review the diff before committing it.

use std::path::{Path, PathBuf};

use lifeboat_engine::plan::observe::Observation;
use lifeboat_engine::plan::planner;
use lifeboat_engine::plan::render;
use lifeboat_engine::state;

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
