//! Bad input gets a message, never a crash: durations past what a clock
//! holds, on the command line and in the configuration, and configurations
//! nested deeper than any parser's stack, files too large to read whole.
//! All offline.

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

#[test]
fn blocks_nested_10000_deep_are_a_syntax_error_in_every_command_that_reads_them() {
    let ws = Workspace::offline();
    ws.write("main.lb.hcl", &CONFIG.replace("300000000d", "10m"));
    let deep = format!("{}{}", "b {\n".repeat(10_000), "}\n".repeat(10_000));
    ws.write("deep.lb.hcl", &deep);
    for args in [&["validate"][..], &["plan"], &["fmt", "--check"]] {
        let run = ws.run(args).code(1);
        run.stderr_has("deep.lb.hcl:33:");
        run.stderr_has("Nested too deeply: more than 32 levels");
    }
}

#[test]
fn a_configuration_file_past_10_mib_is_refused_before_it_is_parsed() {
    let ws = Workspace::offline();
    ws.write("main.lb.hcl", &CONFIG.replace("300000000d", "10m"));
    // 11 MiB of comments: valid HCL, so only the size refuses it.
    let filler = "# a line of filler\n";
    ws.write("big.lb.hcl", &filler.repeat((11 << 20) / filler.len()));
    for args in [&["validate"][..], &["plan"], &["fmt", "--check"]] {
        let run = ws.run(args).code(1);
        run.stderr_has("error: Configuration file too large");
        run.stderr_has("big.lb.hcl holds 11.0 MiB, more than the 10 MiB");
    }
}
