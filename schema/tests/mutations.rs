//! Robustness: mutated versions of every fixture must never panic the
//! loader or the formatter, and whatever formats must format the same way
//! again and still mean the same thing.

use std::fs;
use std::path::{Path, PathBuf};

use lifeboat_schema::{format_source, load_sources};

/// A tiny deterministic generator: the test must not depend on a seed source.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 16) as usize
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

fn inputs() -> Vec<String> {
    let root = Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
    )
    .join("../testdata/schema");
    let mut out = Vec::new();
    for kind in ["load", "fmt"] {
        let mut dirs: Vec<PathBuf> = fs::read_dir(root.join(kind))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        dirs.sort();
        for dir in dirs {
            let mut files: Vec<PathBuf> = fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.to_string_lossy().ends_with(".lb.hcl"))
                .collect();
            files.sort();
            out.extend(files.iter().map(|f| fs::read_to_string(f).unwrap()));
        }
    }
    out
}

const SNIPPETS: &[&str] = &[
    " ",
    "\n",
    "\n\n",
    "# c\n",
    " // c",
    " /* c */ ",
    "/* a\nb */",
    "{",
    "}",
    "[",
    "]",
    "\"",
    "=",
    ",",
    "x = 1\n",
    "select { tag = \"a\" }\n",
    "  value = \"v\"",
    "\t",
    "é",
    "<<EOT\nx\nEOT\n",
];

fn mutate(text: &str, rng: &mut Rng) -> String {
    let mut s = text.to_string();
    for _ in 0..=rng.below(3) {
        let mut at = rng.below(s.len() + 1);
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        match rng.below(4) {
            0 => {
                let snippet = SNIPPETS[rng.below(SNIPPETS.len())];
                s.insert_str(at, snippet);
            }
            1 => {
                let mut end = (at + 1 + rng.below(8)).min(s.len());
                while !s.is_char_boundary(end) {
                    end += 1;
                }
                s.replace_range(at..end, "");
            }
            2 => {
                // Join a line with the next.
                if let Some(i) = s[at..].find('\n') {
                    s.replace_range(at + i..at + i + 1, " ");
                }
            }
            _ => {
                // Duplicate a line.
                let start = s[..at].rfind('\n').map_or(0, |i| i + 1);
                let end = s[at..].find('\n').map_or(s.len(), |i| at + i + 1);
                let line = s[start..end].to_string();
                s.insert_str(start, &line);
            }
        }
    }
    s
}

#[test]
fn mutated_fixtures_never_break_the_invariants() {
    let path = Path::new("m.lb.hcl");
    let iterations: usize = std::env::var("LIFEBOAT_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut failures = Vec::new();
    let mut formatted = 0usize;
    for input in inputs() {
        for _ in 0..iterations {
            let text = mutate(&input, &mut rng);
            let loaded = load_sources(&[(path.to_path_buf(), text.clone())]);
            let Ok(once) = format_source(path, &text) else {
                continue;
            };
            formatted += 1;
            match format_source(path, &once) {
                Ok(twice) if twice == once => {}
                other => {
                    failures.push(format!(
                        "not idempotent:\n--- input\n{text}\n--- once\n{once}\n--- twice\n{other:?}"
                    ));
                    continue;
                }
            }
            if comments(&text) != comments(&once) {
                failures.push(format!(
                    "comments changed:\n--- input\n{text}\n--- formatted\n{once}"
                ));
            }
            let reloaded = load_sources(&[(path.to_path_buf(), once.clone())]);
            let same = match (&loaded, &reloaded) {
                (Ok(a), Ok(b)) => {
                    serde_json::to_string(&a.config).unwrap()
                        == serde_json::to_string(&b.config).unwrap()
                }
                (Err(a), Err(b)) => {
                    let summaries = |d: &lifeboat_schema::Diagnostics| {
                        let mut s: Vec<String> = d.0.iter().map(|d| d.summary.clone()).collect();
                        s.sort();
                        s
                    };
                    summaries(a) == summaries(b)
                }
                _ => false,
            };
            if !same {
                failures.push(format!(
                    "meaning changed:\n--- input\n{text}\n--- formatted\n{once}\n--- before\n{loaded:?}\n--- after\n{reloaded:?}"
                ));
            }
        }
    }
    eprintln!("{formatted} mutated inputs formatted");
    assert!(formatted > 0);
    assert!(
        failures.is_empty(),
        "{} failures; first:\n{}",
        failures.len(),
        failures[0]
    );
}

/// The comments of a file, in order, spaces normalised. Rough (heredocs
/// count), but both sides hold the same heredocs.
fn comments(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut in_string = false;
    while let Some(i) = rest.find(['#', '/', '"', '\\']) {
        let tail = &rest[i..];
        if tail.starts_with('\\') {
            rest = tail.get(2..).unwrap_or("");
            continue;
        }
        if let Some(after) = tail.strip_prefix('"') {
            in_string = !in_string;
            rest = after;
            continue;
        }
        let end = if in_string {
            None
        } else if tail.starts_with("/*") {
            Some(tail.find("*/").map_or(tail.len(), |e| e + 2))
        } else if tail.starts_with('#') || tail.starts_with("//") {
            Some(tail.find('\n').unwrap_or(tail.len()))
        } else {
            None
        };
        let Some(end) = end else {
            rest = &tail[1..];
            continue;
        };
        out.push(tail[..end].split_whitespace().collect::<Vec<_>>().join(" "));
        rest = &tail[end..];
    }
    out
}
