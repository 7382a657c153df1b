//! `lifeboat run --listen`: the runner serves `/metrics` (Prometheus text
//! format) and `/healthz` while it runs, against the emulator; the values
//! move with a backup; a bad or busy address stops the runner before any
//! work.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use support::{free_port, Env};

fn config(web: &str) -> String {
    format!(
        r#"account "main" {{
  regions = ["us-east-1"]
}}

schedule "hourly" {{
  start = "2026-11-22T10:17"
  every = "1h"
}}

policy "web" {{
  account     = account.main
  generations = 5
  schedules   = [schedule.hourly]

  instance "{web}" {{
    region = "us-east-1"
  }}
}}
"#
    )
}

/// `GET path` on `port`: the status and the body, or `None` when nothing
/// answers.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    assert!(text.contains("Connection: close\r\n"), "{text}");
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

/// The value of the sample `series` (name and labels as written) in a
/// scrape.
fn value(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Scrapes until `ready` holds of the scrape, or fails after `limit`.
#[track_caller]
fn scrape_until(port: u16, limit: Duration, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let last = get(port, "/metrics").map(|(_, b)| b).unwrap_or_default();
        if ready(&last) {
            return last;
        }
        assert!(
            Instant::now() < deadline,
            "the scrape never got there:\n{last}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn logged(log: &Path, event: &str) -> bool {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains(&format!("\"event\":\"{event}\"")))
}

#[test]
fn a_runner_serves_metrics_and_health_that_move_with_a_backup() {
    let env = Env::start();
    let web = env.aws.run_instance(1, &[]);
    env.config(&config(&web.id));
    env.apply();

    // On the real clock from 10:16:40: idle until the 10:17 slot, then
    // a backup, then stop at --until.
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut runner = env.ws.spawn(
        &[
            "--now",
            "2026-11-22T10:16:40Z",
            "run",
            "--log-format",
            "json",
            "--listen",
            &listen,
            "--until",
            "2026-11-22T10:17:30Z",
        ],
        "run.log",
        "run.err",
    );
    let log = env.ws.path().join("run.log");

    // Healthy once it leads and looked at its agenda.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match get(port, "/healthz") {
            Some((200, body)) => {
                assert_eq!(body, "ok\n");
                break;
            }
            other => assert!(
                Instant::now() < deadline,
                "never healthy: {other:?}\n{}",
                env.ws.read("run.err")
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = get(port, "/nothing-here").expect("an answer");
    assert_eq!(status, 404, "{body}");

    let before = get(port, "/metrics").expect("metrics").1;
    assert!(!logged(&log, "backup_start"), "idle before 10:17");
    assert!(
        before.contains("# TYPE lifeboat_backups_total counter\n"),
        "{before}"
    );
    assert!(
        before.contains("# HELP lifeboat_runner_leader "),
        "{before}"
    );
    assert_eq!(value(&before, "lifeboat_runner_leader"), Some(1.0));
    assert!(value(&before, "lifeboat_last_look_timestamp_seconds").is_some_and(|t| t > 1.7e9));
    let web_success = "lifeboat_backups_total{policy=\"web\",status=\"success\"}";
    assert_eq!(value(&before, web_success), None, "{before}");
    let last_success = "lifeboat_policy_last_success_timestamp_seconds{policy=\"web\"}";
    assert_eq!(value(&before, last_success), None, "{before}");
    assert_eq!(
        value(
            &before,
            "lifeboat_policy_consecutive_failures{policy=\"web\"}"
        ),
        Some(0.0)
    );
    assert_eq!(
        value(&before, "lifeboat_policy_backups{policy=\"web\"}"),
        Some(0.0)
    );
    let create = "lifeboat_aws_calls_total{service=\"ec2\",action=\"CreateSnapshots\"}";
    assert_eq!(value(&before, create), None, "{before}");

    // The 10:17 slot's backup, once its run is counted and in the state.
    let after = scrape_until(port, Duration::from_secs(60), |s| {
        value(s, web_success) == Some(1.0) && value(s, last_success).is_some()
    });
    assert!(logged(&log, "backup_finish"));
    // The catalog's finish time, whichever clock recorded it.
    let t = value(&after, last_success).unwrap();
    assert!(t > 1_795_342_000.0, "{t}");
    assert!(value(&after, create).is_some_and(|n| n >= 1.0), "{after}");
    assert_eq!(
        value(&after, "lifeboat_artifacts_total{policy=\"web\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(&after, "lifeboat_policy_backups{policy=\"web\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(&after, "lifeboat_policy_artifacts{policy=\"web\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(
            &after,
            "lifeboat_policy_last_backup_status{policy=\"web\",status=\"success\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &after,
            "lifeboat_policy_last_backup_status{policy=\"web\",status=\"failed\"}"
        ),
        Some(0.0)
    );
    assert_eq!(value(&after, "lifeboat_open_alerts"), Some(0.0));

    // The listener ends with the runner.
    let status = runner
        .wait(Duration::from_secs(90))
        .expect("the runner stops at --until");
    assert!(status.success(), "{status:?}\n{}", env.ws.read("run.err"));
    assert!(
        get(port, "/healthz").is_none(),
        "still answering after the runner stopped"
    );
}

#[test]
fn a_bad_or_busy_listen_address_stops_the_runner_before_any_work() {
    let env = Env::start();
    let web = env.aws.run_instance(1, &[]);
    env.config(&config(&web.id));
    env.apply();

    let run = env.run(&["run", "--once", "--listen", "localhost-ish"]);
    let run = run.code(2);
    run.stderr_has("--listen");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let run = env.run(&[
        "--now",
        "2026-11-22T10:17:00Z",
        "run",
        "--once",
        "--listen",
        &addr,
    ]);
    let run = run.code(1);
    run.stderr_has(&format!("cannot listen on {addr}"));
    assert!(
        env.backups(&[]).is_empty(),
        "no backup before the listener binds"
    );
}
