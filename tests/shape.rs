//! The shape of the code, checked like the layers are: a newcomer should be
//! able to read any file in one sitting and any function on one screen or two.
//!
//! - No source file of the crates is longer than [`FILE_LIMIT`] lines.
//! - No function outside test code is longer than [`FN_LIMIT`] lines.
//! - The in-memory fake cloud is built only for tests and benchmarks (the
//!   `testing` feature), never into the library the binary links.
//! - The binary holds no run-loop machinery: lease, heartbeat and wake-up
//!   live in the engine's run mode, where they are tested with the fake.
//!
//! A failure names the file, the line and the length, longest first.

use std::path::{Path, PathBuf};

const FILE_LIMIT: usize = 1_000;
const FN_LIMIT: usize = 120;

fn root() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The library and binary sources (not tests, examples or benches).
fn sources() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["src", "schema/src", "engine/src", "providers/src"] {
        rust_files(&root().join(dir), &mut out);
    }
    out
}

fn relative(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

/// A line without its string and char literals and its `//` comment, so that
/// braces inside them do not count.
fn code_of(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    let mut in_str = false;
    while let Some(c) = chars.next() {
        if in_str {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '/' if chars.peek() == Some(&'/') => break,
            // A char literal such as '{' (lifetimes have no closing quote
            // two characters later, so they are left alone).
            '\'' => {
                let rest: Vec<char> = chars.clone().take(3).collect();
                if rest.len() >= 2 && rest[1] == '\'' {
                    chars.next();
                    chars.next();
                } else if rest.len() >= 3 && rest[0] == '\\' && rest[2] == '\'' {
                    chars.next();
                    chars.next();
                    chars.next();
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// The name of the function a line declares, if it declares one.
fn declared_fn(line: &str) -> Option<String> {
    let t = line.trim_start();
    let mut words = t.split_whitespace().peekable();
    while let Some(w) = words.next() {
        match w {
            "pub" | "async" | "const" | "unsafe" | "extern" => continue,
            w if w.starts_with("pub(") => continue,
            "fn" => {
                let name = words.next()?;
                let end = name.find(['(', '<']).unwrap_or(name.len());
                return Some(name[..end].to_string());
            }
            _ => return None,
        }
    }
    None
}

/// (length, line, name) of every function outside `#[cfg(test)]` modules.
fn functions(text: &str) -> Vec<(usize, usize, String)> {
    let lines: Vec<String> = text.lines().map(code_of).collect();
    let mut out = Vec::new();
    let mut depth = 0i64;
    let mut test_depth: Option<i64> = None;
    let mut pending_test = false;
    for (i, line) in lines.iter().enumerate() {
        let raw = text.lines().nth(i).unwrap_or_default();
        if raw.contains("#[cfg(test)]") {
            pending_test = true;
        }
        if test_depth.is_none() {
            if let Some(name) = declared_fn(line) {
                if let Some(len) = body_length(&lines[i..]) {
                    out.push((len, i + 1, name));
                }
            }
        }
        let trimmed = line.trim_start();
        let item = trimmed
            .strip_prefix("pub")
            .map(|rest| match rest.strip_prefix('(') {
                Some(r) => r.split_once(')').map_or(r, |(_, after)| after),
                None => rest,
            })
            .unwrap_or(trimmed)
            .trim_start();
        if pending_test && item.starts_with("mod ") {
            pending_test = false;
            if trimmed.contains('{') {
                test_depth = Some(depth);
            }
        }
        for c in line.chars() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if test_depth == Some(depth) {
                        test_depth = None;
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// Lines from a declaration to its closing brace; `None` for a declaration
/// without a body (a trait method).
fn body_length(lines: &[String]) -> Option<usize> {
    let mut depth = 0i64;
    let mut started = false;
    for (n, line) in lines.iter().enumerate() {
        if !started && line.contains(';') && !line.contains('{') {
            return None;
        }
        for c in line.chars() {
            match c {
                '{' => {
                    depth += 1;
                    started = true;
                }
                '}' => depth -= 1,
                _ => {}
            }
        }
        if started && depth == 0 {
            return Some(n + 1);
        }
    }
    None
}

#[test]
fn no_source_file_is_longer_than_the_limit() {
    let mut long: Vec<(usize, String)> = sources()
        .iter()
        .map(|p| {
            let n = std::fs::read_to_string(p)
                .expect("read source")
                .lines()
                .count();
            (n, relative(p))
        })
        .filter(|(n, _)| *n > FILE_LIMIT)
        .collect();
    long.sort_by(|a, b| b.cmp(a));
    assert!(
        long.is_empty(),
        "files over {FILE_LIMIT} lines (split them by what they are about):\n{}",
        long.iter()
            .map(|(n, p)| format!("  {n:5}  {p}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn no_function_outside_tests_is_longer_than_the_limit() {
    let mut long = Vec::new();
    for p in sources() {
        let text = std::fs::read_to_string(&p).expect("read source");
        for (len, line, name) in functions(&text) {
            if len > FN_LIMIT {
                long.push((len, format!("{}:{line} {name}", relative(&p))));
            }
        }
    }
    long.sort_by(|a, b| b.cmp(a));
    assert!(
        long.is_empty(),
        "functions over {FN_LIMIT} lines (split them into named steps):\n{}",
        long.iter()
            .map(|(n, f)| format!("  {n:5}  {f}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_function_counter_sees_bodies_and_skips_test_modules() {
    let text = "fn a() {\n    let s = \"}\";\n    let c = '{';\n}\n\ntrait T {\n    fn b(&self);\n}\n\n#[cfg(test)]\npub(crate) mod tests {\n    fn c() {\n    }\n}\n\npub async fn d<T>(x: T)\nwhere\n    T: Clone,\n{\n}\n";
    let found: Vec<(usize, String)> = functions(text)
        .into_iter()
        .map(|(len, _, name)| (len, name))
        .collect();
    assert_eq!(found, vec![(4, "a".to_string()), (5, "d".to_string())]);
}

#[test]
fn the_fake_cloud_is_only_built_for_tests_and_benchmarks() {
    let lib = std::fs::read_to_string(root().join("engine/src/lib.rs")).expect("engine lib.rs");
    assert!(
        lib.contains("#[cfg(any(test, feature = \"testing\"))]\npub mod testing;"),
        "engine/src/lib.rs must gate `pub mod testing` behind the `testing` feature"
    );
    assert!(
        !root().join("engine/src/fake.rs").exists(),
        "the fake cloud lives in engine/src/testing/"
    );
    let manifest =
        std::fs::read_to_string(root().join("Cargo.toml")).expect("the binary's Cargo.toml");
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|s| s.split("\n[").next())
        .expect("a [dependencies] table");
    assert!(
        !deps.contains("testing"),
        "the binary must not enable the engine's testing feature"
    );
}

#[test]
fn the_binary_holds_no_run_loop_machinery() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let words = [
        "take_lease",
        "renew_lease",
        "heartbeat",
        "next_wake",
        "next_capture",
        "next_summary",
    ];
    let mut found = Vec::new();
    for p in files {
        let text = std::fs::read_to_string(&p).expect("read source");
        for (i, line) in text.lines().enumerate() {
            for w in words {
                if code_of(line).contains(w) {
                    found.push(format!("  {}:{} {w}", relative(&p), i + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the run loop belongs in engine/src/runmode/, the binary only formats its events:\n{}",
        found.join("\n")
    );
}
