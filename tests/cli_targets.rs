//! Target membership: instances join a policy by id or by tag, and leave it
//! when they are terminated (depending on `auto_remove_targets`).

mod support;

use support::{at, config, target, Env};

#[test]
fn tagging_an_instance_later_adds_it_to_the_policy() {
    let env = Env::start();
    env.aws.run_instance(1, &[("team", "web")]);
    env.config(&config(2, &[], true, "yes"));
    env.apply();
    env.assert_converged();

    let late = env.aws.run_instance(1, &[("team", "web")]).id;
    let plan = env.run(&["plan", "--detailed-exitcode"]).code(2);
    let line = plan.plan_line("+", &target(&late));
    assert!(line.ends_with("(tag team=web)"), "{line:?}\n{plan}");
    assert_eq!(plan.plan_summary(), (1, 0, 0));
    env.apply();
    env.assert_converged();
}

#[test]
fn terminated_targets_are_removed_when_auto_remove_is_yes() {
    let env = Env::start();
    let explicit = env.aws.run_instance(1, &[]).id;
    let tagged = env.aws.run_instance(1, &[("team", "web")]).id;
    let stays = env.aws.run_instance(1, &[("team", "web")]).id;
    env.config(&config(2, &[&explicit], true, "yes"));
    env.apply();

    env.aws.terminate(&explicit);
    env.aws.terminate(&tagged);
    let plan = env.run(&["plan", "--detailed-exitcode"]).code(2);
    for id in [&explicit, &tagged] {
        let line = plan.plan_line("-", &target(id));
        assert!(
            line.contains("terminated"),
            "the reason names the termination: {line:?}\n{plan}"
        );
    }
    plan.stdout_lacks(&stays);
    assert_eq!(plan.plan_summary(), (0, 0, 2));

    env.apply();
    let state = env.state_list();
    assert!(
        !state.contains(&target(&explicit)) && !state.contains(&target(&tagged)),
        "{state:?}"
    );
    assert!(state.contains(&target(&stays)), "{state:?}");
    // Still listed in the configuration, but gone: it does not come back.
    env.assert_converged();

    env.backup("web", &at(10));
    let backups = env.backups(&[]);
    assert_eq!(
        backups[0]["status"], "success",
        "only live targets are backed up: {}",
        backups[0]
    );
}

#[test]
fn terminated_targets_stay_when_auto_remove_is_no_and_the_backup_is_partial() {
    let env = Env::start();
    let gone = env.aws.run_instance(1, &[]).id;
    let alive = env.aws.run_instance(2, &[]).id;
    env.config(&config(2, &[&gone, &alive], false, "no"));
    env.apply();
    env.aws.terminate(&gone);

    env.assert_converged();
    assert!(env.state_list().contains(&target(&gone)));

    let run = env.run(&["--now", &at(10), "backup", "web"]);
    run.mentions("partial");
    let backups = env.backups(&[]);
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(backups[0]["status"], "partial", "{}\n{run}", backups[0]);
    let targets: Vec<&str> = backups[0]["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        vec![alive.as_str(), alive.as_str()],
        "the live instance was still backed up"
    );
}

#[test]
fn alert_mode_removes_the_target_and_records_an_alert() {
    let env = Env::start();
    let gone = env.aws.run_instance(1, &[]).id;
    let alive = env.aws.run_instance(1, &[]).id;
    env.config(&config(2, &[&gone, &alive], false, "alert"));
    env.apply();
    env.aws.terminate(&gone);

    let plan = env.run(&["plan"]).ok();
    let line = plan.plan_line("-", &target(&gone));
    assert!(line.contains("terminated"), "{line:?}\n{plan}");
    env.apply();
    env.assert_converged();

    let alerts = env.run(&["alerts"]).ok();
    alerts.stdout_has(&gone);
    let json = env.run(&["alerts", "--json"]).ok().json();
    let items = json.as_array().expect("`alerts --json` prints an array");
    assert_eq!(items.len(), 1, "one alert: {json}");
    assert!(items[0].to_string().contains(&gone), "{json}");
}
