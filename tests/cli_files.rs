//! The files Lifeboat writes are its user's alone, whatever the umask: the
//! state file and its directory, saved plans, exported templates and
//! their logs, reports; `fmt` keeps a configuration file's mode. A
//! symbolic link planted where Lifeboat writes (or opens its state) is
//! refused unless `--follow-symlinks` is given, and one planted at the
//! temporary name is never followed.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::{at, config, Env, Workspace};

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

const OFFLINE: &str = "account \"main\" {\n  regions = [\"us-east-1\"]\n}\n";

#[test]
fn state_plans_templates_and_reports_are_private_under_a_permissive_umask() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    env.config(&format!(
        "{}\nvpc_capture \"prod\" {{\n  account = account.main\n}}\n",
        config(2, &[&a.id], false, "yes")
    ));
    let ws = &env.ws;
    let dir = ws.path();

    ws.run_umask("000", &["plan", "--out", "plan.json"]).ok();
    assert_eq!(mode(&dir.join("plan.json")), 0o600, "saved plan");
    // A plan only reads; the first apply makes the state.
    ws.run_umask("000", &["apply", "--auto-approve"]).ok();
    assert_eq!(mode(&dir.join(".lifeboat")), 0o700, "state directory");
    assert_eq!(mode(&dir.join(".lifeboat/state.db")), 0o600, "state file");

    ws.run_umask("000", &["--now", &at(10), "vpc", "capture"])
        .ok();
    let vpcs = ws.run(&["vpc", "list", "--json"]).ok().json();
    let vpc = vpcs[0]["vpc_id"]
        .as_str()
        .unwrap_or_else(|| panic!("a captured VPC (the default one): {vpcs}"))
        .to_string();
    ws.run_umask(
        "000",
        &[
            "vpc",
            "export",
            "--capture",
            "prod",
            "--vpc",
            &vpc,
            "-o",
            "vpc.json",
            "--log",
            "left-out.txt",
        ],
    )
    .ok();
    assert_eq!(mode(&dir.join("vpc.json")), 0o600, "exported template");
    assert_eq!(mode(&dir.join("left-out.txt")), 0o600, "export log");

    ws.run_umask("000", &["drills", "--csv", "drills.csv"]).ok();
    assert_eq!(mode(&dir.join("drills.csv")), 0o600, "report");

    // Nothing the state left beside it is wider (WAL companions take the
    // state file's mode; SQLite removes them at a clean close).
    for entry in std::fs::read_dir(dir.join(".lifeboat")).unwrap() {
        let p = entry.unwrap().path();
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&p), want, "{}", p.display());
    }
}

#[test]
fn fmt_keeps_a_configuration_files_mode_whatever_the_umask() {
    let ws = Workspace::offline();
    ws.write(
        "main.lb.hcl",
        "account \"main\" {\nregions = [\"us-east-1\"]\n}\n",
    );
    let file = ws.path().join("main.lb.hcl");
    for (kept, mask) in [(0o644, "077"), (0o600, "000"), (0o640, "000")] {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(kept)).unwrap();
        ws.run_umask(mask, &["fmt"]).ok();
        assert_eq!(ws.read("main.lb.hcl"), OFFLINE, "formatted");
        assert_eq!(mode(&file), kept, "umask {mask}");
        ws.write(
            "main.lb.hcl",
            "account \"main\" {\nregions = [\"us-east-1\"]\n}\n",
        );
    }
}

#[test]
fn a_symlink_at_a_destination_is_refused_and_followed_only_when_asked() {
    let ws = Workspace::offline();
    ws.write("main.lb.hcl", OFFLINE);
    let dir = ws.path();
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("drills.csv")).unwrap();

    let run = ws.run(&["drills", "--csv", "drills.csv"]).code(1);
    run.stderr_has("drills.csv is a symbolic link (to ");
    run.stderr_has("pass --follow-symlinks");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(std::fs::symlink_metadata(dir.join("drills.csv"))
        .unwrap()
        .file_type()
        .is_symlink());

    ws.run(&["--follow-symlinks", "drills", "--csv", "drills.csv"])
        .ok();
    assert!(
        std::fs::read_to_string(&victim)
            .unwrap()
            .starts_with("id,scenario,"),
        "written through the link"
    );
    assert!(
        std::fs::symlink_metadata(dir.join("drills.csv"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link stays a link"
    );
}

#[test]
fn a_symlink_at_the_temporary_name_is_never_followed() {
    let ws = Workspace::offline();
    ws.write("main.lb.hcl", OFFLINE);
    let dir = ws.path();
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("drills.csv.tmp-lifeboat")).unwrap();
    for flags in [&[][..], &["--follow-symlinks"]] {
        let mut args = flags.to_vec();
        args.extend(["drills", "--csv", "drills.csv"]);
        ws.run(&args).ok();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(ws.read("drills.csv").starts_with("id,scenario,"));
        assert!(!dir.join("drills.csv.tmp-lifeboat").exists());
        std::os::unix::fs::symlink(&victim, dir.join("drills.csv.tmp-lifeboat")).unwrap();
    }
}

#[test]
fn a_state_file_that_is_a_symlink_is_opened_only_with_follow_symlinks() {
    let ws = Workspace::offline();
    ws.write("main.lb.hcl", OFFLINE);
    let dir = ws.path();
    std::fs::create_dir(dir.join(".lifeboat")).unwrap();
    let real = dir.join("elsewhere.db");
    std::os::unix::fs::symlink(&real, dir.join(".lifeboat/state.db")).unwrap();

    let run = ws.run(&["state", "init"]).code(1);
    run.stderr_has("state.db is a symbolic link (to ");
    run.stderr_has("pass --follow-symlinks");
    assert!(!real.exists(), "nothing made at the link's target");

    ws.run_umask("000", &["--follow-symlinks", "state", "init"])
        .ok();
    assert_eq!(mode(&real), 0o600, "the target made private");
    assert!(std::fs::symlink_metadata(dir.join(".lifeboat/state.db"))
        .unwrap()
        .file_type()
        .is_symlink());
    ws.run(&["--follow-symlinks", "state", "init"]).ok();
}

#[test]
fn a_state_file_shared_on_purpose_keeps_its_mode() {
    let ws = Workspace::offline();
    ws.write("main.lb.hcl", OFFLINE);
    ws.run(&["state", "init"]).ok();
    let state = ws.path().join(".lifeboat/state.db");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o660)).unwrap();
    ws.run_umask("077", &["state", "init"]).ok();
    assert_eq!(mode(&state), 0o660);
}
