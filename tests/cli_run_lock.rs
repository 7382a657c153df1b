//! The runner holds the state lock only for its short commits, not through
//! a backup's wait for AWS: an apply gets in while a backup waits, and what
//! would pull the ground from under that backup is refused, naming it, and
//! with it the whole plan.
//!
//! The emulator completes snapshots at once, so the wait is held open by
//! the `backup-waiting:hold` failpoint, which keeps the backup in its wait
//! (the process goes on: lease renewals, other work) until the test
//! creates a file.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::Env;

fn config(web: &str, api: Option<&str>) -> String {
    let mut text = format!(
        r#"account "main" {{
  regions = ["us-east-1"]
}}

schedule "hourly" {{
  start = "2026-11-22T00:17"
  every = "1h"
}}

policy "web" {{
  account     = account.main
  generations = 2
  schedules   = [schedule.hourly]

  instance "{web}" {{
    region = "us-east-1"
  }}
}}
"#
    );
    if let Some(api) = api {
        text.push_str(&format!(
            "\npolicy \"api\" {{\n  account     = account.main\n  generations = 2\n\n  instance \"{api}\" {{\n    region = \"us-east-1\"\n  }}\n}}\n"
        ));
    }
    text
}

/// A `lifeboat run --once` whose backup is held in its wait for AWS.
struct Held {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Held {
    fn start(env: &Env, release: &std::path::Path) -> Held {
        let args = [
            "--now",
            "2026-11-22T10:20:00Z",
            "run",
            "--once",
            "--log-format",
            "json",
        ];
        let release = release.to_str().unwrap();
        let envs = [
            ("LIFEBOAT_FAILPOINT", "backup-waiting:hold"),
            ("LIFEBOAT_FAILPOINT_RELEASE", release),
        ];
        let mut child = env.ws.command(env.ws.path(), &args, &envs).spawn().unwrap();
        let (tx, lines) = mpsc::channel();
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Held {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    #[track_caller]
    fn wait_for(&mut self, needle: &str) {
        if self.seen.iter().any(|l| l.contains(needle)) {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line.clone());
            if line.contains(needle) {
                return;
            }
        }
        panic!("no line with {needle:?}:\n{}", self.seen.join("\n"));
    }

    fn finish(mut self) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(l);
                }
                return (status, self.seen.join("\n"));
            }
            assert!(Instant::now() < deadline, "{}", self.seen.join("\n"));
            while let Ok(l) = self.lines.try_recv() {
                self.seen.push(l);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn apply_gets_in_while_a_runner_backup_waits_and_what_would_orphan_it_is_refused() {
    let env = Env::start();
    let web = env.aws.run_instance(1, &[]);
    let api = env.aws.run_instance(1, &[]);
    env.config(&config(&web.id, None));
    env.apply();
    let release = env.ws.path().join("release");
    let mut runner = Held::start(&env, &release);
    runner.wait_for("failpoint backup-waiting: held");

    // An unrelated change: in within seconds, though the backup waits on.
    env.config(&config(&web.id, Some(&api.id)));
    let started = Instant::now();
    let apply = env
        .run(&["apply", "--auto-approve", "--lock-timeout", "60s"])
        .ok();
    let took = started.elapsed();
    apply.stdout_has("policy.api");
    assert!(took < Duration::from_secs(15), "apply took {took:?}");
    assert!(
        env.state_list().iter().any(|a| a == "policy.api"),
        "{:?}",
        env.state_list()
    );

    // The policy in flight: a backup beside it is refused, naming it.
    let refused = env.run(&["backup", "web"]).code(1);
    refused.stderr_has("lifeboat backup web refused: backup ");
    refused.stderr_has(" of policy.web is in flight since ");
    refused.stderr_has("run by ");
    // Removing it is refused (its targets too), and with it the whole
    // plan, before anything is done: the policy's backups would go first.
    env.config(&config(&web.id, Some(&api.id)).replace("policy \"web\"", "policy \"www\""));
    let removal = env
        .run(&["apply", "--auto-approve", "--allow-destroy-backups"])
        .code(1);
    removal.stdout_has(
        "(removing a target of its policy; nothing of this plan is applied) refused: backup ",
    );
    removal.stdout_has("policy.web (removing its policy; nothing of this plan is applied) refused");
    removal.stdout_has(" of policy.web is in flight since ");
    removal.stdout_has("try again once it finished");
    removal.stdout_has("policy.www: skipped");
    assert!(
        !env.state_list().iter().any(|a| a == "policy.www"),
        "nothing of a refused plan is applied: {:?}",
        env.state_list()
    );
    let list = env.state_list();
    assert!(list.iter().any(|a| a == "policy.web"), "{list:?}");
    assert!(
        list.iter().any(|a| a.starts_with("policy.web.target")),
        "{list:?}"
    );

    // Back as it was; then the wait ends and the backup is recorded once.
    env.config(&config(&web.id, Some(&api.id)));
    env.apply();
    std::fs::write(&release, "").unwrap();
    let (status, log) = runner.finish();
    assert!(status.success(), "{log}");
    assert!(!log.contains("backup_reconciled"), "{log}");
    let backups = env.backups(&["--policy", "web"]);
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(backups[0]["status"], "success", "{backups:?}");
    env.assert_converged();
}

#[test]
fn a_runner_killed_in_its_wait_leaves_a_backup_the_next_one_closes() {
    let env = Env::start();
    let web = env.aws.run_instance(1, &[]);
    env.config(&config(&web.id, None));
    env.apply();
    let release = env.ws.path().join("release");
    let mut runner = Held::start(&env, &release);
    runner.wait_for("failpoint backup-waiting: held");
    runner.child.kill().unwrap(); // SIGKILL, without the lock
    runner.child.wait().unwrap();

    // Its owner is gone: the backup is an orphan, closed by the next one.
    let next = env
        .run(&["--now", "2026-11-22T10:40:00Z", "backup", "web"])
        .ok();
    next.stdout_has("left running by an interrupted lifeboat: failed");
    let backups = env.backups(&["--policy", "web"]);
    assert_eq!(backups.len(), 2, "{backups:?}");
}
