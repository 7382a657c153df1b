//! `docs/run-log.md` describes every event the run log prints, and no other:
//! the event names are read from the printer's source (`src/cmd/run.rs`)
//! and matched against the page's `###` headings.

use std::collections::BTreeSet;
use std::path::PathBuf;

fn read(path: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// The string literals of `text` that are made of lower-case words and
/// underscores, with what comes before each (whitespace trimmed).
fn literals(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut before = String::new();
    while let Some(start) = rest.find('"') {
        before.push_str(&rest[..start]);
        let tail = &rest[start + 1..];
        let Some(end) = tail.find('"') else { break };
        let lit = &tail[..end];
        if !lit.is_empty() && lit.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            out.push((before.trim_end().to_string(), lit.to_string()));
        }
        before = format!("\"{lit}\"");
        rest = &tail[end + 1..];
    }
    out
}

/// The event names the printer prints.
fn printed() -> BTreeSet<String> {
    let src = read("src/cmd/run.rs");
    let code = src.split("#[cfg(test)]").next().unwrap_or(&src);
    let mut names = BTreeSet::new();
    // `self.event(at, "name", …)` and the helpers taking the name second.
    for (before, lit) in literals(code) {
        if before.ends_with("at,") || before.ends_with("now,") {
            names.insert(lit);
        }
    }
    // Names picked by a condition: `let event = if … { "a" } else { "b" };`.
    for part in code.split("let event = if").skip(1) {
        let block = part.split(';').next().unwrap_or_default();
        names.extend(literals(block).into_iter().map(|(_, l)| l));
    }
    // `member_joined` and `member_left`, from the change's direction.
    assert!(code.contains("\"member_{}\""), "the member lines moved");
    names.extend(["member_joined".to_string(), "member_left".to_string()]);
    names
}

/// The event names `docs/run-log.md` describes (`### `name``, or several
/// names on one heading).
fn documented() -> BTreeSet<String> {
    read("docs/run-log.md")
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .flat_map(|h| {
            h.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_printed_event_is_documented_and_every_documented_one_printed() {
    let printed = printed();
    let documented = documented();
    assert!(printed.len() > 30, "the scan lost the events: {printed:?}");
    let missing: Vec<_> = printed.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "events printed by src/cmd/run.rs but not described in docs/run-log.md: {missing:?}"
    );
    let stale: Vec<_> = documented.difference(&printed).collect();
    assert!(
        stale.is_empty(),
        "events described in docs/run-log.md that src/cmd/run.rs no longer prints: {stale:?}"
    );
}

#[test]
fn every_documented_event_has_a_field_table_or_says_it_has_none_and_an_example() {
    let doc = read("docs/run-log.md");
    for section in doc.split("\n### ").skip(1) {
        let name = section.lines().next().unwrap_or_default();
        assert!(
            section.contains("| field | type | meaning |") || section.contains("No fields."),
            "{name}: no field table"
        );
        assert!(
            section.contains("```json\n{\"time\":"),
            "{name}: no example line"
        );
        for block in section.split("```json\n").skip(1) {
            let line = block.lines().next().unwrap_or_default();
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{name}: the example is not JSON ({e}): {line}"));
            let event = v["event"].as_str().unwrap_or_default();
            assert!(
                name.contains(&format!("`{event}`")),
                "{name}: example of {event}"
            );
        }
    }
}
