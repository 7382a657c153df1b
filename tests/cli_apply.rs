//! `lifeboat apply`: confirmation, executing a saved plan, refusing a stale
//! one, and converging so that the next plan is empty.

mod support;

use support::{at, config, target, Env};

fn one_instance(env: &Env) -> String {
    let id = env.aws.run_instance(2, &[]).id;
    env.config(&config(2, &[&id], false, "yes"));
    id
}

#[test]
fn apply_without_a_terminal_needs_auto_approve() {
    let env = Env::start();
    one_instance(&env);
    let run = env.run(&["apply"]).code(1);
    run.mentions("--auto-approve");
    assert!(env.state_list().is_empty(), "nothing was applied\n{run}");
    let plan = env.run(&["plan", "--detailed-exitcode"]).code(2);
    assert_eq!(plan.plan_summary(), (3, 0, 0), "everything is still to do");
}

#[test]
fn apply_converges_and_twice_changes_nothing() {
    let env = Env::start();
    let id = one_instance(&env);
    env.apply();
    assert_eq!(
        env.state_list(),
        vec![
            "account.main".to_string(),
            "policy.web".to_string(),
            target(&id)
        ]
    );
    env.assert_converged();
    env.apply();
    env.assert_converged();
    assert_eq!(env.aws.count_snapshots(), 0, "apply takes no backup");
}

#[test]
fn apply_honours_parallelism() {
    let env = Env::start();
    let ids: Vec<String> = (0..3)
        .map(|_| env.aws.run_instance(1, &[("team", "web")]).id)
        .collect();
    env.config(&config(2, &[], true, "yes"));
    env.run(&["apply", "--auto-approve", "--parallelism", "1"])
        .ok();
    let state = env.state_list();
    for id in &ids {
        assert!(state.contains(&target(id)), "{id} is a target: {state:?}");
    }
    env.assert_converged();
}

#[test]
fn a_saved_plan_is_applied_as_planned() {
    let env = Env::start();
    let id = one_instance(&env);
    env.run(&["plan", "--out", "saved.plan"]).ok();
    env.run(&["apply", "saved.plan", "--auto-approve"]).ok();
    assert!(env.state_list().contains(&target(&id)));
    env.assert_converged();
}

#[test]
fn a_saved_plan_is_stale_after_another_apply() {
    let env = Env::start();
    one_instance(&env);
    env.run(&["plan", "--out", "saved.plan"]).ok();
    env.apply();
    let before = env.state_list();
    let run = env.run(&["apply", "saved.plan", "--auto-approve"]).code(1);
    run.mentions("stale");
    assert_eq!(env.state_list(), before, "a refused plan changes nothing");
}

#[test]
fn a_saved_plan_is_stale_after_a_backup() {
    let env = Env::start();
    one_instance(&env);
    env.apply();
    env.ws
        .edit("main.lb.hcl", "generations = 2", "generations = 3");
    env.run(&["plan", "--out", "saved.plan"]).ok();
    env.backup("web", &at(10));
    let run = env.run(&["apply", "saved.plan", "--auto-approve"]).code(1);
    run.mentions("stale");
    // A fresh plan applies fine.
    env.apply();
    env.assert_converged();
}
