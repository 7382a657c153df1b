//! `lifeboat fmt`: rewrites configuration files canonically; `--check` only
//! reports the files that are not. Formatting needs no AWS.

mod support;

use support::Workspace;

const UGLY: &str = "account \"main\" {\nregions=[\"us-east-1\"]\n}\n\npolicy \"web\" {\n\taccount=account.main\n    generations=2\ninstance \"i-0123456789abcdef0\" {   region=\"us-east-1\" }\n  select {\ntag=\"team\"\nvalue=\"web\"\n}\nauto_remove_targets=\"yes\"\n}\n";

#[test]
fn check_names_unformatted_files_and_changes_nothing() {
    let ws = Workspace::offline();
    ws.write("main.lb.hcl", UGLY);
    let run = ws.run(&["fmt", "--check"]).code(1);
    assert!(
        run.all().contains("main.lb.hcl"),
        "the unformatted file is named\n{run}"
    );
    assert_eq!(ws.read("main.lb.hcl"), UGLY, "--check must not rewrite");
}

#[test]
fn fmt_rewrites_canonically_and_is_stable() {
    let ws = Workspace::offline();
    ws.write("main.lb.hcl", UGLY);
    ws.run(&["fmt"]).ok();
    let formatted = ws.read("main.lb.hcl");
    assert_ne!(formatted, UGLY, "fmt changed the file");

    for line in formatted.lines() {
        assert!(!line.contains('\t'), "no tabs: {line:?}\n{formatted}");
        let indent = line.len() - line.trim_start().len();
        assert_eq!(
            indent % 2,
            0,
            "two-space indentation: {line:?}\n{formatted}"
        );
        if let Some((key, value)) = line.trim().split_once('=') {
            if !line.trim_start().starts_with("instance")
                && !line.trim_start().starts_with("select")
            {
                assert!(
                    key.ends_with(' ') && value.starts_with(' '),
                    "` = ` around the sign: {line:?}\n{formatted}"
                );
            }
        }
    }
    assert!(
        formatted
            .lines()
            .any(|l| l.starts_with("  generations") && l.ends_with(" = 2")),
        "attributes of a block are indented two spaces\n{formatted}"
    );
    assert!(
        formatted.ends_with("}\n"),
        "ends with one newline\n{formatted}"
    );

    ws.run(&["fmt", "--check"]).ok();
    ws.run(&["fmt"]).ok();
    assert_eq!(
        ws.read("main.lb.hcl"),
        formatted,
        "formatting twice changes nothing"
    );
    ws.run(&["validate"])
        .ok()
        .stdout_has("Configuration is valid.");
}

#[test]
fn check_passes_on_the_shipped_example() {
    let example = format!(
        "{}/examples/quickstart/main.lb.hcl",
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
    );
    let ws = Workspace::offline();
    ws.write("main.lb.hcl", &std::fs::read_to_string(example).unwrap());
    ws.run(&["fmt", "--check"]).ok();
}

#[test]
fn check_passes_on_the_formatted_form_and_only_names_bad_files() {
    let ws = Workspace::offline();
    ws.write("a.lb.hcl", UGLY);
    ws.run(&["fmt"]).ok();
    ws.write(
        "b.lb.hcl",
        "account \"other\" {\nregions=[\"us-west-2\"]\n}\n",
    );
    let run = ws.run(&["fmt", "--check"]).code(1);
    assert!(run.all().contains("b.lb.hcl"), "{run}");
    assert!(
        !run.all().contains("a.lb.hcl"),
        "the formatted file is not named\n{run}"
    );
}
