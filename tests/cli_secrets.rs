//! No credential ever reaches the state, a plan file or any output.

mod support;

use support::{at, config, Env, Run, EXTERNAL_ID, SECRET_ACCESS_KEY};

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn the_secret_key_never_leaves_the_environment() {
    let env = Env::start();
    let a = env.aws.run_instance(2, &[("team", "web")]);
    // An account reached through a role with an external id: every command
    // below, and every file they leave, is checked for the id as well
    // (tests/support: each run's output, and the workspace when dropped).
    let role = format!(
        "\naccount \"other\" {{\n  regions = [\"us-east-1\"]\n  assume_role {{\n    role_arn    = \"arn:aws:iam::123456789012:role/lifeboat\"\n    external_id = \"{EXTERNAL_ID}\"\n  }}\n}}\n"
    );
    env.config(&(config(1, &[&a.id], true, "yes") + &role));

    let mut runs: Vec<Run> = vec![
        env.run(&["validate"]),
        env.run(&["plan"]),
        env.run(&["plan", "--json"]),
        env.run(&["plan", "--markdown"]),
        env.run(&["plan", "--out", "saved.plan"]),
        env.run(&["graph"]),
        env.run(&["apply", "saved.plan", "--auto-approve"]),
        env.run(&["--now", &at(10), "backup", "web"]),
        env.run(&["--now", &at(11), "backup", "web"]),
        env.run(&["backups"]),
        env.run(&["backups", "--json"]),
        env.run(&["state", "list"]),
        env.run(&["state", "list", "--json"]),
        env.run(&["state", "show", "account.main"]),
        env.run(&["state", "show", "account.other"]),
        env.run(&["state", "pull", "--json"]),
        env.run(&["show", "saved.plan", "--json"]),
        env.run(&["status", "--json"]),
    ];
    // A failing call must not print the credentials either.
    env.ws.write(
        "broken.lb.hcl",
        "account \"x\" { regions = [\"us-east-1\"]  secret = 1 }\n",
    );
    runs.push(env.run(&["plan"]));
    runs.push(env.run(&["apply"]));

    for secret in [SECRET_ACCESS_KEY, EXTERNAL_ID] {
        for run in &runs {
            assert!(!run.all().contains(secret), "{secret} was printed\n{run}");
        }
    }
    assert!(runs[6].code == 0, "the saved plan applied\n{}", runs[6]);
    assert!(
        runs[15].stdout.contains("hmac-sha256:"),
        "the state keeps the id's digest\n{}",
        runs[15]
    );

    let plan = std::fs::read(env.ws.path().join("saved.plan")).expect("saved plan");
    let state = env.ws.state_bytes();
    assert!(!state.is_empty(), "state was written");
    for secret in [SECRET_ACCESS_KEY, EXTERNAL_ID] {
        assert!(!contains(&plan, secret), "{secret} is in the saved plan");
        assert!(!contains(&state, secret), "{secret} is in the state files");
    }
}

#[test]
fn a_backup_script_gets_the_documented_variables_and_no_credential() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    let text = config(2, &[&a.id], false, "yes").replace(
        "  auto_remove_targets",
        "  scripts {\n    before   = \"scripts/env.sh\"\n    pass_env = [\"TEAM_CONTACT\"]\n  }\n  auto_remove_targets",
    );
    env.config(&text);
    env.ws
        .write("scripts/env.sh", "#!/bin/sh\nenv > seen-env.txt\n");
    let script = env.ws.path().join("scripts/env.sh");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.apply();
    env.ws
        .run_env(
            &[("TEAM_CONTACT", "ops@example.com"), ("UNRELATED", "x")],
            &["--now", &at(1), "backup", "web"],
        )
        .ok();
    let seen = env.ws.read("seen-env.txt");
    for has in [
        "LIFEBOAT_POLICY=web\n",
        "LIFEBOAT_STEP=before\n",
        "LIFEBOAT_ATTEMPT=1\n",
        "TEAM_CONTACT=ops@example.com\n",
        "PATH=",
    ] {
        assert!(seen.contains(has), "{has:?} not in:\n{seen}");
    }
    // The runner's own credentials, endpoint and settings stay with it.
    for lacks in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        SECRET_ACCESS_KEY,
        "AWS_ENDPOINT_URL",
        "AWS_CONFIG_FILE",
        "UNRELATED",
        "NO_COLOR",
    ] {
        assert!(!seen.contains(lacks), "{lacks:?} in:\n{seen}");
    }
}
