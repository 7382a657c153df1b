//! Highly available runners on shared state: two `lifeboat run` processes
//! ("hosts": two configuration directories with caches of their own) on one
//! DynamoDB workspace in the emulator. One leads; the other stands by and
//! says so; the leader is killed with SIGKILL in the middle of a backup;
//! the standby takes over within the lease's TTL, reconciles the killed
//! backup, and every scheduled slot of the simulated day gets exactly one
//! successful backup.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{Env, Workspace, REGION};

const TABLE: &str = "lifeboat-state";

fn config(instance: &str) -> String {
    format!(
        r#"lifeboat {{
  state {{
    backend = "dynamodb"
    table   = "{TABLE}"
    region  = "{REGION}"
  }}
}}

account "main" {{
  regions = ["us-east-1"]
}}

schedule "hourly" {{
  start = "2026-11-22T00:17"
  every = "1h"
}}

policy "web" {{
  account     = account.main
  generations = 30
  schedules   = [schedule.hourly]

  instance "{instance}" {{
    region = "us-east-1"
  }}
}}
"#
    )
}

/// A runner process whose output lines arrive on a channel, with the
/// instant each arrived.
struct Runner {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
    seen: Vec<(Instant, String)>,
}

impl Runner {
    fn start(ws: &Workspace, envs: &[(&str, &str)]) -> Runner {
        let args = [
            "--now",
            "2026-11-22T00:00:00Z",
            "run",
            "--fast-forward",
            "--until",
            "2026-11-23T00:00:00Z",
            "--lease-ttl",
            "3s",
            "--log-format",
            "json",
        ];
        let mut child = ws.command(ws.path(), &args, envs).spawn().unwrap();
        let (tx, lines) = mpsc::channel();
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send((Instant::now(), line));
                }
            });
        }
        Runner {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (at most `within`) for a line containing `needle`; returns the
    /// instant it came.
    #[track_caller]
    fn wait_for(&mut self, needle: &str, within: Duration) -> Instant {
        if let Some((at, _)) = self.seen.iter().find(|(_, l)| l.contains(needle)) {
            return *at;
        }
        let deadline = Instant::now() + within;
        while let Ok((at, line)) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push((at, line.clone()));
            if line.contains(needle) {
                return at;
            }
        }
        panic!("no line with {needle:?} within {within:?}:\n{}", self.log());
    }

    fn log(&self) -> String {
        self.seen
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits for the process to end; its whole output.
    fn finish(mut self, within: Duration) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(l);
                }
                return (status, self.log());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "the runner did not finish within {within:?}:\n{}",
                    self.log()
                );
            }
            while let Ok(l) = self.lines.try_recv() {
                self.seen.push(l);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn a_standby_runner_takes_over_a_killed_leader_and_every_slot_is_backed_up_once() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    env.config(&config(&a.id));
    env.run(&["state", "init"]).ok();
    env.apply();
    let other = Workspace::new(&env.emulator);
    other.write("main.lb.hcl", &config(&a.id));

    // The leader stops dead right after its first create call returned,
    // before the snapshot is in the catalog: the worst moment to die.
    let mut leader = Runner::start(&env.ws, &[("LIFEBOAT_FAILPOINT", "backup-created:pause")]);
    leader.wait_for("runner_start", Duration::from_secs(60));
    leader.wait_for("failpoint backup-created: paused", Duration::from_secs(60));

    let mut standby = Runner::start(&other, &[]);
    standby.wait_for("waiting_for_lease", Duration::from_secs(60));
    // Any host's `status` says who leads.
    other.run(&["status"]).ok().stdout_has("leads since");

    leader.child.kill().unwrap(); // SIGKILL
    let killed = Instant::now();
    leader.child.wait().unwrap();

    let took_over = standby.wait_for("runner_start", Duration::from_secs(60));
    let after = took_over.saturating_duration_since(killed);
    eprintln!("the standby took over {after:?} after the kill");
    // The lease lives 3 s; the standby looks every 2 s.
    assert!(
        after <= Duration::from_secs(3 + 2 + 2),
        "the standby took over {after:?} after the kill"
    );
    let (status, log) = standby.finish(Duration::from_secs(300));
    assert!(status.success(), "{log}");
    assert!(
        log.contains("backup_reconciled"),
        "the killed backup is closed:\n{log}"
    );

    // Every slot of the day has exactly one successful backup, and every
    // snapshot AWS holds is in the catalog once (the killed backup's too).
    let backups = env.backups(&[]);
    let mut per_hour = std::collections::BTreeMap::<String, usize>::new();
    for b in &backups {
        if b["status"] == "success" {
            let id = b["id"].as_str().unwrap();
            *per_hour.entry(id[..13].to_string()).or_default() += 1;
        }
    }
    let hours: Vec<String> = (0..24).map(|h| format!("2026-11-22T{h:02}")).collect();
    assert_eq!(
        per_hour.keys().cloned().collect::<Vec<_>>(),
        hours,
        "{backups:#?}"
    );
    assert!(per_hour.values().all(|n| *n == 1), "{per_hour:?}");
    let in_catalog: usize = backups
        .iter()
        .map(|b| b["snapshots"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(
        env.aws.lifeboat_snapshots().len(),
        in_catalog,
        "{backups:#?}"
    );
}
