//! `lifeboat validate`: a good configuration passes; a broken one fails with
//! every problem listed as `FILE:LINE:COL: error: SUMMARY` and an indented
//! detail line, or as data (`--json`) and GitHub workflow commands
//! (`--format github`) for CI. Validation needs no AWS, so these tests run
//! offline.

mod support;

use support::Workspace;

#[test]
fn the_quickstart_configuration_is_valid() {
    let ws = Workspace::offline();
    ws.write(
        "main.lb.hcl",
        &support::config(2, &["i-0123456789abcdef0"], true, "yes"),
    );
    let run = ws.run(&["validate"]).ok();
    assert!(
        run.stdout
            .lines()
            .any(|l| l.trim() == "Configuration is valid."),
        "expected `Configuration is valid.`\n{run}"
    );
}

#[test]
fn the_shipped_examples_are_valid_and_formatted() {
    for name in ["quickstart", "dr", "recovery", "nightly", "shared-state"] {
        let example = format!(
            "{}/examples/{name}/main.lb.hcl",
            std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
        );
        let ws = Workspace::offline();
        ws.write("main.lb.hcl", &std::fs::read_to_string(example).unwrap());
        ws.run(&["validate"])
            .ok()
            .stdout_has("Configuration is valid.");
        ws.run(&["fmt", "--check"]).ok();
    }
}

/// One diagnostic as printed: the header line and the detail line under it.
struct Printed {
    file: String,
    line: usize,
    header: String,
    detail: String,
}

/// Every `FILE:LINE:COL: error: ...` header in `stderr`, with the line after it.
fn errors(stderr: &str) -> Vec<Printed> {
    let lines: Vec<&str> = stderr.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some((location, _)) = l.split_once(": error: ") else {
            continue;
        };
        let mut parts = location.rsplitn(3, ':');
        let (Some(col), Some(line), Some(file)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let (Ok(line), Ok(_col)) = (line.parse::<usize>(), col.parse::<usize>()) else {
            continue;
        };
        out.push(Printed {
            file: file.to_string(),
            line,
            header: l.to_string(),
            detail: lines.get(i + 1).copied().unwrap_or_default().to_string(),
        });
    }
    out
}

const BROKEN: &str = r#"account "main" {
  regions = ["us-east-1", "mars-1"]
  colour  = "blue"
}

policy "web" {
  account     = account.nope
  generations = 0
  instance "i-xyz" { region = "us-east-1" }
}

policy "web" {
  account     = account.main
  generations = 1
}

bogus "x" {}

policy "db" {
  account     = account.main
  generations = "two"
}
"#;

#[test]
fn every_problem_is_reported_with_its_line() {
    let ws = Workspace::offline();
    ws.write("main.lb.hcl", BROKEN);
    let run = ws.run(&["validate"]).code(1);
    let found = errors(&run.stderr);

    for e in &found {
        assert!(
            e.file.ends_with("main.lb.hcl"),
            "diagnostic names the file: {}\n{run}",
            e.header
        );
        assert!(
            e.detail.starts_with(' ') && !e.detail.trim().is_empty(),
            "an indented detail line follows {:?}\n{run}",
            e.header
        );
    }

    // (line, what the problem is, words of which at least one must appear in
    // the summary or detail, case-insensitively)
    let expected: &[(usize, &str, &[&str])] = &[
        (2, "region mars-1", &["region", "mars-1"]),
        (
            3,
            "unknown attribute",
            &["unknown", "unsupported", "unexpected", "colour"],
        ),
        (
            7,
            "reference to account.nope",
            &["account", "nope", "reference"],
        ),
        (8, "generations = 0", &["generations", "at least", "range"]),
        (9, "malformed instance id", &["i-xyz", "instance"]),
        (12, "duplicate policy", &["duplicate", "already"]),
        (
            17,
            "unknown block",
            &["bogus", "unknown", "unsupported", "unexpected"],
        ),
        (
            21,
            "wrong type",
            &["type", "number", "integer", "generations"],
        ),
    ];
    let mut missing = Vec::new();
    for (line, what, words) in expected {
        let hit = found.iter().any(|e| {
            let text = format!("{} {}", e.header, e.detail).to_lowercase();
            e.line == *line && words.iter().any(|w| text.contains(w))
        });
        if !hit {
            missing.push(format!("line {line}: {what}"));
        }
    }
    assert!(
        missing.is_empty(),
        "problems not reported:\n  {}\n{run}",
        missing.join("\n  ")
    );
    assert!(!run.stdout.contains("Configuration is valid."), "{run}");
}

#[test]
fn problems_in_every_file_are_reported() {
    let ws = Workspace::offline();
    ws.write(
        "accounts.lb.hcl",
        "account \"main\" {\n  regions = [\"us-east-1\"]\n  bogus   = 1\n}\n",
    );
    ws.write(
        "policies.lb.hcl",
        "policy \"web\" {\n  account     = account.main\n  generations = 0\n}\n",
    );
    // Not a configuration file: ignored even though it is not HCL.
    ws.write("notes.txt", "this { is not hcl");
    let run = ws.run(&["validate"]).code(1);
    let found = errors(&run.stderr);
    assert!(
        found
            .iter()
            .any(|e| e.file.ends_with("accounts.lb.hcl") && e.line == 3),
        "accounts.lb.hcl:3 reported\n{run}"
    );
    assert!(
        found
            .iter()
            .any(|e| e.file.ends_with("policies.lb.hcl") && e.line == 3),
        "policies.lb.hcl:3 reported\n{run}"
    );
}

#[test]
fn a_syntax_error_names_its_position() {
    let ws = Workspace::offline();
    ws.write(
        "main.lb.hcl",
        "account \"main\" {\n  regions = [\"us-east-1\"\n}\n",
    );
    let run = ws.run(&["validate"]).code(1);
    assert!(
        !errors(&run.stderr).is_empty(),
        "a `main.lb.hcl:LINE:COL: error:` line\n{run}"
    );
}

#[test]
fn validate_reads_the_directory_given_with_dir() {
    let ws = Workspace::offline();
    ws.write(
        "conf/main.lb.hcl",
        &support::config(2, &["i-0123456789abcdef0"], false, "no"),
    );
    ws.run(&["--dir", "conf", "validate"])
        .ok()
        .stdout_has("Configuration is valid.");
}

#[test]
fn diagnostics_as_json_and_as_github_annotations_say_the_same_as_the_text() {
    let ws = Workspace::offline();
    ws.write("main.lb.hcl", BROKEN);
    let text = errors(&ws.run(&["validate"]).code(1).stderr);

    let run = ws.run(&["validate", "--json"]).code(1);
    let doc = run.json();
    assert_eq!(doc["valid"], false);
    // Warnings (a policy that backs up nothing) come along, in place.
    let all = doc["diagnostics"].as_array().unwrap();
    assert!(all.iter().any(|d| d["severity"] == "warning"), "{run}");
    let diags: Vec<_> = all.iter().filter(|d| d["severity"] == "error").collect();
    assert_eq!(diags.len(), text.len(), "{run}");
    assert_eq!(doc["errors"], text.len());
    for (d, t) in diags.iter().zip(&text) {
        assert!(d["file"].as_str().unwrap().ends_with("main.lb.hcl"));
        assert_eq!(d["line"], t.line, "{run}");
        assert!(d["column"].as_u64().unwrap() >= 1);
        assert_eq!(d["severity"], "error");
        assert!(t.header.ends_with(d["summary"].as_str().unwrap()), "{run}");
        assert_eq!(d["detail"].as_str().unwrap(), t.detail.trim());
    }
    // The same with --format json.
    assert_eq!(
        ws.run(&["validate", "--format", "json"]).code(1).json(),
        doc
    );

    let run = ws.run(&["validate", "--format", "github"]).code(1);
    assert_eq!(run.stdout.lines().count(), all.len(), "{run}");
    let lines: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("::error "))
        .collect();
    assert_eq!(lines.len(), text.len(), "{run}");
    for (l, t) in lines.iter().zip(&text) {
        assert!(
            l.starts_with("::error file=") && l.contains(&format!(",line={},col=", t.line)),
            "{run}"
        );
    }

    // A valid configuration: valid, no diagnostics, exit 0.
    ws.write(
        "main.lb.hcl",
        &support::config(2, &["i-0123456789abcdef0"], true, "yes"),
    );
    let doc = ws.run(&["validate", "--json"]).ok().json();
    assert_eq!(doc["valid"], true);
    assert!(doc["diagnostics"].as_array().unwrap().is_empty());
}

#[test]
fn completions_and_the_manual_page_come_from_the_argument_parser() {
    let ws = Workspace::offline();
    let bash = ws.run(&["completions", "bash"]).ok();
    assert!(bash.stdout.contains("_lifeboat()"), "{bash}");
    for sub in ["validate", "plan", "apply", "run", "state", "completions"] {
        assert!(bash.stdout.contains(sub), "{sub} in the bash completions");
    }
    for shell in ["zsh", "fish"] {
        let run = ws.run(&["completions", shell]).ok();
        assert!(run.stdout.contains("lock-timeout"), "{run}");
    }
    ws.run(&["completions", "tcsh"]).code(2);
    let man = ws.run(&["man"]).ok();
    assert!(man.stdout.contains(".TH lifeboat 1"), "{man}");
    assert!(man.stdout.contains(".SH SUBCOMMANDS"), "{man}");
    assert!(man.stdout.contains("lifeboat\\-validate(1)"), "{man}");
}

#[test]
fn a_reading_command_whose_reader_went_away_stops_quietly() {
    use std::process::Stdio;
    let ws = Workspace::offline();
    // The reader is gone before the first line (`lifeboat … | head -0`).
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let writer2 = writer.try_clone().expect("pipe");
    let out = ws
        .command(ws.path(), &["completions", "bash"], &[])
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("run lifeboat");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // A view written as data meets it as an error: the same quiet stop.
    ws.write(
        "p.json",
        r#"{"format_version": "1", "lineage": "l", "serial": 0, "config_digest": "d",
            "created_at": "2026-12-01T00:00:00Z", "changes": [],
            "summary": {"add": 0, "change": 0, "destroy": 0, "read": 0}}"#,
    );
    let out = ws
        .command(ws.path(), &["show", "--json", "p.json"], &[])
        .stdout(Stdio::from(writer2))
        .stderr(Stdio::piped())
        .output()
        .expect("run lifeboat");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}
