//! Protection managed on the resource itself: the `lifeboat:backup` tag
//! (and N2WS's `cpm backup` / `cpm_backup`) makes an instance or volume a
//! member of the policies its items name, with an instance's backup mode
//! (`#only-amis`, ...), leaves a volume out of its instance's backups
//! (`#exclude`), keeps a resource out of everything (`no-backup`), and makes
//! policies from templates (`POLICY:TEMPLATE`). The real binary against the
//! emulator.

mod support;

use support::{at, target, Env};

const ACCOUNT: &str = "account \"main\" {\n  regions = [\"us-east-1\"]\n}\n";
const HOURLY: &str =
    "\nschedule \"hourly\" {\n  start = \"2026-11-22T00:17\"\n  every = \"1h\"\n}\n";

/// Policy `web`, run hourly, with `extra` lines inside.
fn web(extra: &str) -> String {
    format!(
        "{ACCOUNT}\npolicy \"web\" {{\n  account     = account.main\n  generations = 2\n  schedules   = [schedule.hourly]\n{extra}  auto_remove_targets = \"yes\"\n}}\n{HOURLY}"
    )
}

const SELECT_TEAM_WEB: &str = "  select {\n    tag   = \"team\"\n    value = \"web\"\n  }\n";

/// The JSON run-log events of one `run --once` at `now`.
fn run_once(env: &Env, now: &str) -> Vec<serde_json::Value> {
    let run = env
        .run(&["--now", now, "run", "--once", "--log-format", "json"])
        .ok();
    run.stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn events<'a>(all: &'a [serde_json::Value], name: &str) -> Vec<&'a serde_json::Value> {
    all.iter().filter(|e| e["event"] == name).collect()
}

/// The targets of the newest backup's snapshots, sorted.
fn snapshotted(env: &Env) -> Vec<String> {
    let backups = env.backups(&[]);
    let newest = backups.last().expect("a backup");
    let mut out: Vec<String> = newest["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["target"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

#[test]
fn an_instance_tagged_lifeboat_backup_joins_at_the_next_run_without_an_apply_and_leaves_untagged() {
    let env = Env::start();
    env.config(&web(""));
    env.apply();
    // Tagged after the apply, under the key and under an N2WS alias: one
    // list call with both keys finds both.
    let tagged = env.aws.run_instance(1, &[("lifeboat:backup", "web")]).id;
    let n2ws = env.aws.run_instance(1, &[("cpm backup", "web")]).id;
    let other = env.aws.run_instance(1, &[("lifeboat:backup", "")]).id;

    let log = run_once(&env, "2026-11-22T01:20:00Z");
    let mut joined: Vec<(String, String)> = events(&log, "member_joined")
        .iter()
        .map(|e| {
            (
                e["target"].as_str().unwrap().to_string(),
                e["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    joined.sort();
    let mut want = vec![
        (tagged.clone(), "tag lifeboat:backup=web".to_string()),
        (n2ws.clone(), "tag cpm backup=web".to_string()),
    ];
    want.sort();
    assert_eq!(joined, want, "{log:?}");
    let mut both = vec![tagged.clone(), n2ws.clone()];
    both.sort();
    assert_eq!(snapshotted(&env), both);
    assert!(!env.state_list().contains(&target(&other)));
    // The state already has them: the plan has nothing to add.
    env.assert_converged();

    // The item removed: it leaves at the next run, with why.
    env.aws.tag(&tagged, "lifeboat:backup", "");
    let log = run_once(&env, "2026-11-22T02:20:00Z");
    let left = events(&log, "member_left");
    assert_eq!(left.len(), 1, "{log:?}");
    assert_eq!(left[0]["target"], tagged.as_str());
    assert_eq!(
        left[0]["reason"],
        "no longer tagged lifeboat:backup for web"
    );
    assert_eq!(snapshotted(&env), [n2ws]);
}

#[test]
fn no_backup_beats_a_selector_and_a_tag_item_and_a_tagged_selected_instance_is_a_member_once() {
    let env = Env::start();
    let opted = env
        .aws
        .run_instance(1, &[("team", "web"), ("lifeboat:backup", "web no-backup")])
        .id;
    let both = env
        .aws
        .run_instance(1, &[("team", "web"), ("lifeboat:backup", "web#only-snaps")])
        .id;
    let selected = env.aws.run_instance(1, &[("team", "web")]).id;
    env.config(&web(SELECT_TEAM_WEB));
    let plan = env.run(&["plan"]).ok();
    let line = plan.plan_line("+", &target(&both));
    assert!(
        line.ends_with("(tag lifeboat:backup=web#only-snaps)"),
        "{line}"
    );
    let line = plan.plan_line("+", &target(&selected));
    assert!(line.ends_with("(tag team=web)"), "{line}");
    assert!(!plan.stdout.contains(&opted), "{plan}");
    env.apply();
    env.assert_converged();

    let run = env.backup("web", &at(10));
    run.stdout_lacks(&opted);
    let mut want = vec![both.clone(), selected];
    want.sort();
    assert_eq!(snapshotted(&env), want);

    // Its item removed, the selector still takes it: it stays, and a plan
    // shows the source it switched to as already applied.
    env.aws.tag(&both, "lifeboat:backup", "");
    let run = env.backup("web", &at(11));
    run.stdout_lacks(&format!("left: instance {both}"));
    assert_eq!(snapshotted(&env), want);
    env.assert_converged();
}

#[test]
fn exclude_on_a_volume_leaves_it_out_of_its_instance_backup() {
    let env = Env::start();
    let i = env.aws.run_instance(3, &[("lifeboat:backup", "web")]);
    let (root, skipped, kept) = (&i.volumes[0], &i.volumes[1], &i.volumes[2]);
    env.aws.tag(skipped, "lifeboat:backup", "#exclude");
    // Excluded from another policy only: still backed up by web.
    env.aws.tag(kept, "lifeboat:backup", "db#exclude");
    env.config(&web(""));
    // The exclusion as recorded: the emulator's CreateSnapshots ignores
    // ExcludeDataVolumeIds (the fake shows the snapshot left out:
    // unit_a_volume_tagged_exclude_gets_no_snapshot_in_its_instance_backup),
    // so what it is asked for is read from the plan.
    let plan = env.run(&["plan", "--json"]).ok().json();
    let member = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == target(&i.id).as_str())
        .unwrap_or_else(|| panic!("{plan}"));
    assert_eq!(
        member["after"]["exclude_volumes"],
        serde_json::json!([skipped])
    );
    env.apply();
    env.assert_converged();

    let run = env.backup("web", &at(10));
    let backups = env.backups(&[]);
    let id = backups[0]["id"].as_str().unwrap();
    let volumes: Vec<String> = env
        .aws
        .snapshots_tagged("lifeboat:backup-id", id)
        .into_iter()
        .map(|s| s.volume_id)
        .collect();
    assert!(volumes.contains(root), "{volumes:?}\n{run}");
    assert!(volumes.contains(kept), "{volumes:?}\n{run}");
    // The tag removed: the volume is back in at the next backup's refresh.
    env.aws.tag(skipped, "lifeboat:backup", "");
    env.backup("web", &at(11));
    let plan = env.run(&["plan", "--json"]).ok().json();
    assert!(
        !plan.to_string().contains(skipped.as_str()),
        "the refresh wrote the member back without the exclusion: {plan}"
    );
}

#[test]
fn only_amis_in_the_tag_gives_an_ami() {
    let env = Env::start();
    let i = env
        .aws
        .run_instance(1, &[("lifeboat:backup", "web#only-amis")])
        .id;
    env.config(&web(""));
    env.apply();
    let run = env.backup("web", &at(10));
    let images = env.aws.lifeboat_images();
    assert_eq!(images.len(), 1, "{run}");
    assert_eq!(images[0].tags["lifeboat:target"], i.as_str(), "{run}");
}

#[test]
fn an_item_naming_no_policy_is_a_plan_warning_and_a_run_log_problem_line() {
    let env = Env::start();
    let i = env
        .aws
        .run_instance(1, &[("lifeboat:backup", "web nosuch bad!")])
        .id;
    env.config(&web(""));
    let plan = env.run(&["plan"]).ok();
    let on = format!("tag lifeboat:backup=web nosuch bad! on instance {i}");
    plan.stdout_has(&format!(
        "Warning: {on}: item \"nosuch\" is not used: no policy nosuch is configured"
    ));
    plan.stdout_has(&format!("Warning: {on}: item \"bad!\" is not used"));
    env.apply();

    let log = run_once(&env, "2026-11-22T01:20:00Z");
    let finished = events(&log, "backup_finish");
    assert_eq!(finished.len(), 1, "{log:?}");
    assert_eq!(finished[0]["status"], "success", "{log:?}");
    let problems: Vec<&str> = events(&log, "membership_problem")
        .iter()
        .map(|e| e["problem"].as_str().unwrap())
        .collect();
    assert!(
        problems
            .iter()
            .any(|p| p.contains(&on) && p.contains("no policy nosuch")),
        "{log:?}"
    );
    // And in `lifeboat backup`'s output.
    env.backup("web", &at(10)).stdout_has(&format!(
        "problem: membership: {on}: item \"nosuch\" is not used"
    ));
}

/// A template run hourly, with `generations`.
fn template(generations: u32) -> String {
    format!(
        "{ACCOUNT}\npolicy \"web_tpl\" {{\n  template    = true\n  account     = account.main\n  generations = {generations}\n  schedules   = [schedule.hourly]\n  auto_remove_targets = \"yes\"\n}}\n{HOURLY}"
    )
}

#[test]
fn a_template_policy_is_made_from_a_tag_by_apply_and_backed_up_by_the_runner() {
    let env = Env::start();
    let i = env
        .aws
        .run_instance(1, &[("lifeboat:backup", "app:web_tpl#only-snaps")])
        .id;
    env.config(&template(2));
    let plan = env.run(&["plan"]).ok();
    let line = plan.plan_line("+", "policy.app");
    assert_eq!(
        line,
        format!("+ policy.app  (from template web_tpl, tag on {i})")
    );
    plan.plan_line("+", "policy.web_tpl");
    plan.plan_line("+", &format!("policy.app.target[\"{i}\"]"));
    env.apply();
    let state = env.state_list();
    assert!(
        state.contains(&"policy.app (from template web_tpl)".to_string()),
        "{state:?}"
    );
    env.assert_converged();

    // The runner backs up the made policy, never the template.
    let log = run_once(&env, "2026-11-22T01:20:00Z");
    let finished = events(&log, "backup_finish");
    assert_eq!(finished.len(), 1, "{log:?}");
    assert_eq!(finished[0]["policy"], "app", "{log:?}");
    assert_eq!(finished[0]["status"], "success", "{log:?}");
    env.run(&["--now", &at(10), "backup", "web_tpl"])
        .code(1)
        .stderr_has("is a template");

    // The template changed: its policies follow.
    env.config(&template(3));
    let plan = env.run(&["plan"]).ok();
    plan.plan_line("~", "policy.app");

    // No tag names it any more, and it has a backup: it is kept (disabled,
    // its member gone), and an apply that may destroy backups keeps it and
    // its backup all the same.
    env.aws.tag(&i, "lifeboat:backup", "");
    let plan = env.run(&["plan"]).ok();
    plan.mentions(
        "policy.app (made from template web_tpl): no lifeboat:backup tag names it any more",
    );
    assert_eq!(
        plan.plan_line("~", "policy.app"),
        "~ policy.app  (enabled true -> false)"
    );
    plan.plan_line("-", &format!("policy.app.target[\"{i}\"]"));
    let destroyed: Vec<String> = plan
        .changes("-")
        .into_iter()
        .filter(|l| {
            l == "- policy.app" || l.starts_with("- policy.app ") || !l.starts_with("- policy.")
        })
        .collect();
    assert!(destroyed.is_empty(), "{destroyed:?}\n{plan}");
    env.run(&["apply", "--auto-approve", "--allow-destroy-backups"])
        .ok();
    let state = env.state_list();
    assert!(
        state.contains(&"policy.app (from template web_tpl)".to_string()),
        "{state:?}"
    );
    let kept: Vec<_> = env
        .backups(&[])
        .into_iter()
        .filter(|b| b["policy"] == "app")
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(!env.aws.lifeboat_snapshots().is_empty());
    env.assert_converged();
}
