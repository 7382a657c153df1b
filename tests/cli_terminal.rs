//! Terminal habits: a configuration problem shown with its source line and
//! a caret under the place; colour only on a terminal and never under
//! `NO_COLOR` or `--no-color`; `LIFEBOAT_LOG` showing the AWS SDK's own
//! tracing on stderr without a credential in it.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use support::{Env, Workspace, EXTERNAL_ID, SECRET_ACCESS_KEY};

fn fixture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/terminal")
        .join(case)
}

/// `actual` against the file `expected` of a fixture; `LIFEBOAT_BLESS=1`
/// rewrites the file instead.
fn check(case: &str, expected: &str, actual: &str) {
    let path = fixture(case).join(expected);
    if std::env::var_os("LIFEBOAT_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        actual,
        want,
        "{} differs (LIFEBOAT_BLESS=1 rewrites it)",
        path.display()
    );
}

#[test]
fn each_configuration_problem_shows_its_line_with_a_caret_under_the_place() {
    let ws = Workspace::offline();
    for name in ["main.lb.hcl", "tail.lb.hcl"] {
        let text = std::fs::read_to_string(fixture("caret").join(name)).unwrap();
        ws.write(name, &text);
    }
    let run = ws.run(&["validate"]).code(1);
    check("caret", "expected.stderr", &run.stderr);
    // The machine views are the diagnostics alone.
    let json = ws.run(&["validate", "--json"]).code(1);
    assert!(!json.stdout.contains('^'), "{json}");
    let github = ws.run(&["validate", "--format", "github"]).code(1);
    assert!(!github.stdout.contains('^'), "{github}");
}

/// `lifeboat ARGS` run under a pseudo-terminal (util-linux `script`), so
/// that its standard output and error are a terminal; `NO_COLOR` as given.
/// Standard output and error arrive mixed, as on a screen.
fn on_a_terminal(ws: &Workspace, args: &[&str], no_color: Option<&str>) -> String {
    let line = std::iter::once(env!("CARGO_BIN_EXE_lifeboat"))
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    // The environment of every test run, given to `script` instead.
    let cmd = ws.command(ws.path(), &[], &[]);
    let mut script = std::process::Command::new("script");
    script
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .current_dir(ws.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_clear()
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR");
    if let Some(v) = no_color {
        script.env("NO_COLOR", v);
    }
    let out = script.output().expect("run script(1)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_plan_is_coloured_on_a_terminal_only_and_never_under_no_color_or_the_flag() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    env.config(&support::config(2, &[&a.id], false, "yes"));

    let coloured = on_a_terminal(&env.ws, &["plan"], None);
    assert!(
        coloured.contains("\x1b[32m+\x1b[0m policy.web"),
        "a create's symbol is green on a terminal:\n{coloured:?}"
    );
    let no_color = on_a_terminal(&env.ws, &["plan"], Some("1"));
    assert!(no_color.contains("+ policy.web"), "{no_color}");
    assert!(!no_color.contains('\x1b'), "NO_COLOR=1:\n{no_color:?}");
    let flag = on_a_terminal(&env.ws, &["--no-color", "plan"], None);
    assert!(flag.contains("+ policy.web"), "{flag}");
    assert!(!flag.contains('\x1b'), "--no-color:\n{flag:?}");
    // Not a terminal: plain, as every other test of the plan reads it.
    let piped = env.run(&["plan"]).ok();
    assert!(!piped.all().contains('\x1b'), "{piped}");

    // A configuration problem on a terminal: the severity and the caret
    // coloured, the header's text unchanged.
    env.ws.write("broken.lb.hcl", "bogus \"x\" {}\n");
    let broken = on_a_terminal(&env.ws, &["validate"], None);
    assert!(
        broken.contains(": \x1b[1;31merror\x1b[0m: ") && broken.contains("\x1b[1;31m^"),
        "{broken:?}"
    );
    let broken = on_a_terminal(&env.ws, &["validate"], Some("1"));
    assert!(!broken.contains('\x1b'), "{broken:?}");
}

#[test]
fn lifeboat_log_shows_the_sdk_calls_on_stderr_and_never_a_credential() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    // An account reached through an assumed role, with a policy that makes
    // the plan look into it: the SDK resolves (and could log) a session
    // token and a secret key of its own, from a call carrying the external
    // id.
    let text = support::config(2, &[&a.id], false, "yes")
        + &r#"
account "other" {
  regions = ["us-east-1"]
  assume_role {
    role_arn    = "arn:aws:iam::222222222222:role/lifeboat"
    external_id = "ext-id-7f3a9c"
  }
}

policy "far" {
  account     = account.other
  generations = 1
  select {
    tag   = "team"
    value = "far"
  }
}
"#
        .replace("ext-id-7f3a9c", EXTERNAL_ID);
    env.config(&text);

    for level in ["debug", "trace"] {
        let run = env
            .ws
            .run_env(&[("LIFEBOAT_LOG", level)], &["apply", "--auto-approve"])
            .ok();
        if level == "debug" {
            // The SDK's own events, on stderr: the orchestrator's attempts,
            // and the assumed role's credentials resolved.
            for needle in [
                "DEBUG",
                "aws_smithy_runtime::client::orchestrator",
                "AssumeRoleProvider",
            ] {
                assert!(run.stderr.contains(needle), "{needle}:\n{}", run.stderr);
            }
            assert!(!run.stdout.contains("DEBUG"), "stdout is the command's own");
        } else {
            // Capped at debug: the SDK's trace prints the external id.
            assert!(!run.stderr.contains(" TRACE "), "{}", run.stderr);
            assert!(run.stderr.contains(" DEBUG "), "{}", run.stderr);
        }
        for secret in [
            SECRET_ACCESS_KEY,
            // moto's session tokens all begin so.
            "FQoGZXIvYXdzEBYaD",
            "SecretAccessKey",
            EXTERNAL_ID,
        ] {
            assert!(
                !run.stderr.contains(secret),
                "LIFEBOAT_LOG={level} printed {secret:?}"
            );
        }
    }

    // Unset: nothing of the SDK's.
    let quiet = env.run(&["plan"]).ok();
    assert!(!quiet.stderr.contains("aws_smithy"), "{quiet}");
}
