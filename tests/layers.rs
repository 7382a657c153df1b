//! The layering invariant, checked against cargo's resolved dependency graph:
//! schema <- engine <- providers <- binary.
//!
//! - `lifeboat-schema` is pure: no tokio, no SQLite, no AWS crate, no engine
//!   or providers.
//! - `lifeboat-engine` talks to AWS only through its own traits: no AWS SDK,
//!   `aws-config` or `aws-smithy-*` crate, and not the providers.
//! - `lifeboat-providers` never reaches up into the binary.
//!
//! Normal and build dependencies count, directly or transitively; a crate's
//! dev-dependencies do not, since they never end up in the library.
//! A failure names the whole path, for example
//! `lifeboat-engine -> lifeboat-providers -> aws-sdk-ec2`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::process::Command;

use serde_json::Value;

/// Package name -> names of its normal and build dependencies.
type Graph = BTreeMap<String, BTreeSet<String>>;

fn resolved_graph() -> Graph {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
    let manifest = format!(
        "{}/Cargo.toml",
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
    );
    let mut cmd = Command::new(&cargo);
    cmd.args([
        "metadata",
        "--format-version",
        "1",
        "--manifest-path",
        &manifest,
    ]);
    // Only the packages built for this machine: no need to fetch crates
    // that exist for other platforms only.
    if let Some(host) = host_triple() {
        cmd.args(["--filter-platform", &host]);
    }
    let out = cmd.output().expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");

    let names: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let mut graph = Graph::new();
    for node in meta["resolve"]["nodes"].as_array().expect("resolve graph") {
        let name = names[node["id"].as_str().unwrap()].to_string();
        let deps = graph.entry(name).or_default();
        for dep in node["deps"].as_array().unwrap() {
            let counts = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].as_str() != Some("dev"));
            if counts {
                deps.insert(names[dep["pkg"].as_str().unwrap()].to_string());
            }
        }
    }
    graph
}

fn host_triple() -> Option<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let out = Command::new(rustc).arg("-vV").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|s| s.trim().to_string())
}

/// For every package reachable from `from` that `forbidden` matches, the
/// shortest dependency path to it.
fn offending_paths(graph: &Graph, from: &str, forbidden: impl Fn(&str) -> bool) -> Vec<String> {
    assert!(
        graph.contains_key(from),
        "{from} is not in the workspace's dependency graph"
    );
    let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([from]);
    let mut seen = BTreeSet::from([from]);
    let mut found = Vec::new();
    while let Some(pkg) = queue.pop_front() {
        for dep in graph.get(pkg).into_iter().flatten() {
            if !seen.insert(dep.as_str()) {
                continue;
            }
            parent.insert(dep, pkg);
            if forbidden(dep) {
                let mut path = vec![dep.as_str()];
                let mut at = dep.as_str();
                while let Some(p) = parent.get(at) {
                    path.push(p);
                    at = p;
                }
                path.reverse();
                found.push(path.join(" -> "));
            }
            queue.push_back(dep);
        }
    }
    found
}

#[track_caller]
fn assert_clean(graph: &Graph, from: &str, rule: &str, forbidden: impl Fn(&str) -> bool) {
    let paths = offending_paths(graph, from, forbidden);
    assert!(
        paths.is_empty(),
        "{from} reaches past its layer ({rule}):\n  {}",
        paths.join("\n  ")
    );
}

#[test]
fn schema_is_pure() {
    let graph = resolved_graph();
    assert_clean(
        &graph,
        "lifeboat-schema",
        "no tokio, SQLite, AWS, engine or providers",
        |name| {
            matches!(
                name,
                "tokio"
                    | "rusqlite"
                    | "libsqlite3-sys"
                    | "lifeboat-engine"
                    | "lifeboat-providers"
                    | "lifeboat"
            ) || name.starts_with("aws-")
        },
    );
}

#[test]
fn engine_never_imports_the_aws_sdk() {
    let graph = resolved_graph();
    assert_clean(
        &graph,
        "lifeboat-engine",
        "AWS only through its own traits",
        |name| {
            name.starts_with("aws-sdk-")
                || name == "aws-config"
                || name.starts_with("aws-smithy-")
                || name == "lifeboat-providers"
                || name == "lifeboat"
        },
    );
}

#[test]
fn providers_never_reach_the_binary() {
    let graph = resolved_graph();
    assert_clean(
        &graph,
        "lifeboat-providers",
        "the binary sits on top",
        |name| name == "lifeboat",
    );
}

/// Guards the check itself: if the graph were read wrongly, every rule
/// above would pass vacuously.
#[test]
fn the_check_sees_known_edges() {
    let graph = resolved_graph();
    let paths = offending_paths(&graph, "lifeboat-providers", |name| name == "aws-sdk-ec2");
    assert_eq!(paths, vec!["lifeboat-providers -> aws-sdk-ec2".to_string()]);
    let paths = offending_paths(&graph, "lifeboat", |name| name == "lifeboat-schema");
    assert_eq!(paths.len(), 1, "the binary reaches the schema: {paths:?}");
}

#[test]
fn a_violation_names_the_whole_path() {
    let graph: Graph = [
        ("lifeboat-engine", vec!["serde", "helper"]),
        ("helper", vec!["aws-smithy-types"]),
        ("serde", vec![]),
        ("aws-smithy-types", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(str::to_string).collect()))
    .collect();
    let paths = offending_paths(&graph, "lifeboat-engine", |n| n.starts_with("aws-smithy-"));
    assert_eq!(
        paths,
        vec!["lifeboat-engine -> helper -> aws-smithy-types".to_string()]
    );
}
