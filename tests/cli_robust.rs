//! Bad input gets a message, never a crash: durations past what a clock
//! holds, on the command line and in the configuration, and configurations
//! nested deeper than any parser's stack. All offline.

mod support;

use support::Workspace;

const CONFIG: &str = r#"account "main" {
  regions = ["us-east-1"]
}

policy "web" {
  account     = account.main
  generations = 1
  instance "i-0123456789abcdef0" {}
  retries {
    count = 2
    wait  = "300000000d"
  }
}
"#;

#[test]
fn a_timeout_too_long_is_refused_on_the_command_line() {
    let ws = Workspace::offline();
    ws.write("main.lb.hcl", &CONFIG.replace("300000000d", "10m"));
    for args in [
        &["backup", "web", "--timeout", "30000000000w"][..],
        &["run", "--once", "--timeout", "300000000d"][..],
    ] {
        let run = ws.run(args).code(2);
        run.stderr_has("--timeout");
        run.stderr_has("too long a duration (at most 3650 days)");
    }
}

#[test]
fn a_duration_too_long_in_the_configuration_is_a_diagnostic() {
    let ws = Workspace::offline();
    ws.write("main.lb.hcl", CONFIG);
    let run = ws.run(&["validate"]).code(1);
    run.stderr_has("main.lb.hcl:11:13: error: Value out of range");
    run.stderr_has("\"300000000d\": duration too long (at most 3650 days)");
}

#[test]
fn a_configuration_nested_100000_deep_is_a_syntax_error() {
    let ws = Workspace::offline();
    let deep = format!("{CONFIG}x = {}\n", "[".repeat(100_000));
    ws.write("main.lb.hcl", &deep);
    let run = ws.run(&["validate"]).code(1);
    run.stderr_has("main.lb.hcl:14:");
    run.stderr_has("Nested too deeply");
    let run = ws.run(&["fmt", "--check"]).code(1);
    run.stderr_has("Nested too deeply");
}
