//! Data-driven tests over `testdata/schema/`.
//!
//! - `load/<case>/`: one or more `*.lb.hcl` files, loaded together with
//!   [`load_sources`] (paths are the bare file names, so expectations do not
//!   depend on where the repository lives). `expected.json` holds the
//!   serialized `Config` of a valid case, `expected.txt` the rendered
//!   diagnostics (the errors, or the warnings of a valid case).
//! - `fmt/<case>/`: `input.lb.hcl` and `expected.hcl`, its canonical form (or
//!   `expected.txt` when formatting must fail).
//!
//! `LIFEBOAT_BLESS=1 cargo test -p lifeboat-schema` rewrites the expectations
//! from the current output; review the diff before keeping it.

use std::fs;
use std::path::{Path, PathBuf};

use lifeboat_schema::{format_source, load_sources, Diagnostics, Loaded};

fn testdata() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"))
        .join("../testdata/schema")
}

fn bless() -> bool {
    std::env::var_os("LIFEBOAT_BLESS").is_some_and(|v| v == "1")
}

fn case_dirs(kind: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(testdata().join(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no {kind} cases");
    dirs
}

fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut files: Vec<(PathBuf, String)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".lb.hcl"))
        .map(|p| {
            let text = fs::read_to_string(&p).unwrap();
            (PathBuf::from(p.file_name().unwrap()), text)
        })
        .collect();
    files.sort();
    files
}

/// Compares `actual` with the file, or rewrites it when blessing.
/// Returns a failure message instead of panicking so every case runs.
fn check(path: &Path, actual: Option<&str>, failures: &mut Vec<String>) {
    if bless() {
        match actual {
            Some(a) => fs::write(path, a).unwrap(),
            None => {
                let _ = fs::remove_file(path);
            }
        }
        return;
    }
    let expected = fs::read_to_string(path).ok();
    if expected.as_deref() != actual {
        failures.push(format!(
            "{}:\n--- expected\n{}\n--- actual\n{}",
            path.display(),
            expected.as_deref().unwrap_or("(no file)"),
            actual.unwrap_or("(nothing)")
        ));
    }
}

fn config_json(loaded: &Loaded) -> String {
    serde_json::to_string_pretty(&loaded.config).unwrap() + "\n"
}

fn rendered(d: &Diagnostics) -> Option<String> {
    (!d.is_empty()).then(|| d.to_string())
}

#[test]
fn load_cases() {
    let mut failures = Vec::new();
    for dir in case_dirs("load") {
        let srcs = sources(&dir);
        assert!(!srcs.is_empty(), "{}: no *.lb.hcl", dir.display());
        let (json, txt) = match load_sources(&srcs) {
            Ok(loaded) => (Some(config_json(&loaded)), rendered(&loaded.warnings)),
            Err(d) => {
                assert!(d.has_errors(), "{}: Err without errors", dir.display());
                (None, rendered(&d))
            }
        };
        check(&dir.join("expected.json"), json.as_deref(), &mut failures);
        check(&dir.join("expected.txt"), txt.as_deref(), &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn fmt_cases() {
    let mut failures = Vec::new();
    for dir in case_dirs("fmt") {
        let input = fs::read_to_string(dir.join("input.lb.hcl")).unwrap();
        let (hcl, txt) = match format_source(Path::new("input.lb.hcl"), &input) {
            Ok(out) => {
                let again = format_source(Path::new("input.lb.hcl"), &out).unwrap();
                if again != out {
                    failures.push(format!(
                        "{}: not idempotent:\n--- once\n{out}\n--- twice\n{again}",
                        dir.display()
                    ));
                }
                (Some(out), None)
            }
            Err(d) => (None, rendered(&d)),
        };
        check(&dir.join("expected.hcl"), hcl.as_deref(), &mut failures);
        check(&dir.join("expected.txt"), txt.as_deref(), &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// What a configuration means, without positions: the config, or the
/// problems' summaries.
fn meaning(srcs: &[(PathBuf, String)]) -> Result<String, Vec<String>> {
    match load_sources(srcs) {
        Ok(l) => Ok(config_json(&l)),
        Err(d) => {
            let mut s: Vec<String> = d.0.iter().map(|d| d.summary.clone()).collect();
            s.sort();
            Err(s)
        }
    }
}

/// Every input of every case, formatted: formatting is idempotent, keeps
/// every comment, and does not change what the configuration means.
#[test]
fn formatting_preserves_meaning() {
    let mut failures = Vec::new();
    let mut inputs: Vec<Vec<(PathBuf, String)>> =
        case_dirs("load").iter().map(|d| sources(d)).collect();
    for dir in case_dirs("fmt") {
        let text = fs::read_to_string(dir.join("input.lb.hcl")).unwrap();
        inputs.push(vec![(PathBuf::from("input.lb.hcl"), text)]);
    }
    for srcs in inputs {
        let mut formatted = Vec::new();
        for (path, text) in &srcs {
            let Ok(once) = format_source(path, text) else {
                formatted.push((path.clone(), text.clone()));
                continue;
            };
            let twice = format_source(path, &once).unwrap();
            if once != twice {
                failures.push(format!("{}: not idempotent", path.display()));
            }
            if comments(text) != comments(&once) {
                failures.push(format!(
                    "{}: comments changed:\n{:?}\n{:?}",
                    path.display(),
                    comments(text),
                    comments(&once)
                ));
            }
            formatted.push((path.clone(), once));
        }
        if meaning(&srcs) != meaning(&formatted) {
            failures.push(format!(
                "{:?}: meaning changed by formatting:\n{:?}\n{:?}",
                srcs.iter().map(|s| &s.0).collect::<Vec<_>>(),
                meaning(&srcs),
                meaning(&formatted)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The comment texts of a file, in order, spaces normalised. A rough scan
/// (comment markers inside strings count too), good enough as both sides
/// hold the same strings.
fn comments(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(['#', '/']) {
        let tail = &rest[i..];
        let end = if tail.starts_with("/*") {
            tail.find("*/").map_or(tail.len(), |e| e + 2)
        } else if tail.starts_with('#') || tail.starts_with("//") {
            tail.find('\n').unwrap_or(tail.len())
        } else {
            rest = &tail[1..];
            continue;
        };
        out.push(tail[..end].split_whitespace().collect::<Vec<_>>().join(" "));
        rest = &tail[end..];
    }
    out
}
