//! `lifeboat show PLANFILE` renders a saved plan as `plan` printed it, in
//! each view, reading nothing but the file; a file that is missing, not a
//! plan, or too large is refused naming it, and the state never moves. The
//! pull-request gate's plan (`--markdown --out --detailed-exitcode
//! --deny-destroy`) still saves and prints what it refuses.

mod support;

use support::{at, config, Env};

/// A workspace whose plan has creates, an update and retention deletes:
/// two backups of `web`, then `generations` lowered to 1, a second instance
/// listed and ten tagged ones selected (over 1,000 bytes of Markdown).
fn planned() -> (Env, String) {
    let env = Env::start();
    let one = env.aws.run_instance(1, &[]).id;
    let two = env.aws.run_instance(1, &[]).id;
    env.config(&config(2, &[&one], false, "yes"));
    env.apply();
    env.backup("web", &at(1));
    env.backup("web", &at(2));
    for _ in 0..10 {
        env.aws.run_instance(1, &[("team", "web")]);
    }
    env.config(&config(1, &[&one, &two], true, "yes"));
    (env, two)
}

#[test]
fn show_renders_a_saved_plan_as_plan_printed_it_in_every_view() {
    let (env, two) = planned();
    let now = at(3);
    let plan = env.run(&["--now", &now, "plan", "--out", "p.json"]).ok();
    plan.stdout_has(&two).stdout_has("- snapshot[");
    let before = env.ws.state_bytes();

    // Text: the plan's view, then `plan`'s own line about the saved file.
    let shown = env.run(&["show", "p.json"]).ok();
    let note = "\nThis is the saved plan as written. `lifeboat apply p.json` performs only what a plan made then agrees with.\n";
    let body = shown
        .stdout
        .strip_suffix(note)
        .expect("show ends with its note");
    assert_eq!(
        format!("{body}\nSaved the plan to p.json. Apply it with: lifeboat apply p.json\n"),
        plan.stdout,
        "show prints what plan printed\n{shown}"
    );

    // A file edited between jobs cannot make its deletes look milder: the
    // summary is counted again and a delete of backup data is marked so.
    let mut edited: serde_json::Value = serde_json::from_str(&env.ws.read("p.json")).unwrap();
    edited["summary"]["destroy"] = serde_json::json!(0);
    for c in edited["changes"].as_array_mut().unwrap() {
        c["effect"] = serde_json::json!("control");
    }
    env.ws.write("edited.json", &edited.to_string());
    let tampered = env.run(&["show", "edited.json"]).ok();
    assert_eq!(
        tampered.stdout,
        shown.stdout.replace("p.json", "edited.json"),
        "the edited file shows as the one written"
    );
    // JSON and Markdown: byte for byte what `plan` prints of the same state.
    let json = env.run(&["--now", &now, "plan", "--json"]).ok();
    let shown = env.run(&["show", "--json", "p.json"]).ok();
    assert_eq!(shown.stdout, json.stdout);
    let markdown = env.run(&["--now", &now, "plan", "--markdown"]).ok();
    let shown = env.run(&["show", "--markdown", "p.json"]).ok();
    assert_eq!(shown.stdout, markdown.stdout);
    assert!(markdown.stdout.starts_with("### Lifeboat plan"));

    // Under a cap smaller than the plan: folded alike, within the cap,
    // every delete kept, pointing at the full view.
    let whole = markdown.stdout.len();
    let cap = 1_000;
    assert!(whole > cap, "the fixture's Markdown is {whole} bytes");
    let capped = ["--markdown", "--max-bytes", "1000"];
    let plan = env
        .run(&[&["--now", &now, "plan", "--out", "p.json"], &capped[..]].concat())
        .ok();
    let shown = env
        .run(&[&["show"], &capped[..], &["p.json"]].concat())
        .ok();
    assert_eq!(shown.stdout, plan.stdout);
    assert!(shown.stdout.len() <= cap, "{shown}");
    shown.stdout_has("see the full plan with `lifeboat show p.json`");
    for line in markdown.stdout.lines().filter(|l| l.starts_with("| `-` |")) {
        shown.stdout_has(line);
    }

    // Nothing but the file: from a directory without configuration or
    // state, and the workspace's state never moved.
    let elsewhere = tempfile::tempdir().unwrap();
    let file = env.ws.path().join("p.json");
    env.ws
        .run_in(elsewhere.path(), &["show", file.to_str().unwrap()])
        .ok()
        .stdout_has(&two);
    assert_eq!(env.ws.state_bytes(), before, "show never writes the state");
}

#[test]
fn show_refuses_a_missing_garbled_or_oversized_file_naming_it() {
    let (env, _) = planned();
    env.apply();
    let before = env.ws.state_bytes();

    let refused = |file: &str, why: &str| {
        let run = env.run(&["show", file]).code(1);
        run.stderr_has(file).stderr_has(why);
        assert!(run.stdout.is_empty(), "{run}");
    };
    refused("missing.json", "cannot read the plan");
    env.ws
        .write("garbled.json", "{\"format_version\": \"1\", \"chan");
    refused("garbled.json", "is not a Lifeboat plan");
    env.ws.write("other.json", "{\"format_version\": \"9\"}");
    refused("other.json", "plan format \"9\"");
    env.ws
        .write("restore.json", "{\"restore_format\": \"1\", \"steps\": []}");
    refused("restore.json", "is a restore plan");
    std::fs::write(env.ws.path().join("binary.json"), [0xff, 0xfe, 0x00]).unwrap();
    refused("binary.json", "not UTF-8");
    // Sparse: the size is refused before a byte is read.
    let big = std::fs::File::create(env.ws.path().join("big.json")).unwrap();
    big.set_len((256 << 20) + 1).unwrap();
    refused("big.json", "larger than 256 MiB");

    assert_eq!(
        env.ws.state_bytes(),
        before,
        "a refused show changes nothing"
    );
}

#[test]
fn the_pull_request_gate_saves_and_prints_the_plan_it_refuses() {
    let (env, _) = planned();
    let gate = [
        "plan",
        "--out",
        "plan.json",
        "--markdown",
        "--detailed-exitcode",
        "--deny-destroy",
    ];
    // Retention deletes: refused (exit 1), yet the comment and the file
    // are there for the reviewer.
    let run = env.run(&gate).code(1);
    run.stdout_has("### Lifeboat plan")
        .stdout_has("| `-` |")
        .stderr_has("--deny-destroy");
    env.run(&["show", "plan.json"])
        .ok()
        .stdout_has("- snapshot[");
    // Once applied, a plan that only adds passes as "changes" (exit 2).
    env.apply();
    let three = env.aws.run_instance(1, &[]).id;
    env.ws.edit(
        "main.lb.hcl",
        "  generations = 1\n",
        &format!("  generations = 1\n  instance \"{three}\" {{ region = \"us-east-1\" }}\n"),
    );
    env.run(&gate).code(2).stdout_has(&three);
}
