//! No credential ever reaches the state, a plan file or any output.

mod support;

use support::{at, config, Env, Run, SECRET_ACCESS_KEY};

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn the_secret_key_never_leaves_the_environment() {
    let env = Env::start();
    let a = env.aws.run_instance(2, &[("team", "web")]);
    env.config(&config(1, &[&a.id], true, "yes"));

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
    ];
    // A failing call must not print the credentials either.
    env.ws.write(
        "broken.lb.hcl",
        "account \"x\" { regions = [\"us-east-1\"]  secret = 1 }\n",
    );
    runs.push(env.run(&["plan"]));
    runs.push(env.run(&["apply"]));

    for run in &runs {
        assert!(
            !run.all().contains(SECRET_ACCESS_KEY),
            "the secret key was printed\n{run}"
        );
    }
    assert!(runs[6].code == 0, "the saved plan applied\n{}", runs[6]);

    let plan = std::fs::read(env.ws.path().join("saved.plan")).expect("saved plan");
    assert!(
        !contains(&plan, SECRET_ACCESS_KEY),
        "the secret key is in the saved plan"
    );
    let state = env.ws.state_bytes();
    assert!(!state.is_empty(), "state was written");
    assert!(
        !contains(&state, SECRET_ACCESS_KEY),
        "the secret key is in the state files"
    );
}
