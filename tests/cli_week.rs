//! The daemon through a simulated week against the emulator: `lifeboat run`
//! with `--now`, `--fast-forward` and `--until` jumps from one wake-up to
//! the next, so seven days of scheduled work take seconds while every backup
//! is a real one. Asserted: the exact runs made (slots, weekday limits, a
//! disabled window crossing midnight, retries), what retention kept, that
//! AWS holds exactly the snapshots the catalog does, and the SNS messages
//! (alert opened and closed, one daily summary a day) read back through an
//! SQS queue subscribed to the topic.

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use support::topic::Topic;
use support::Env;

fn config(web: &str, db: &str, topic: &str) -> String {
    format!(
        r#"account "main" {{
  regions = ["us-east-1"]
}}

notifications {{
  sns_topic     = "{topic}"
  account       = account.main
  region        = "us-east-1"
  daily_summary = "08:00"
}}

# Weekdays at 01:00.
schedule "nightly" {{
  start = "2026-11-23T01:00"
  every = "1d"
  days  = ["mon", "tue", "wed", "thu", "fri"]
}}

# 06:00 and 18:00, but not from Saturday 17:00 to Sunday 08:00.
schedule "twice-daily" {{
  start = "2026-11-23T06:00"
  every = "12h"

  disable {{
    day  = "sat"
    from = "17:00"
    to   = "08:00"
  }}
}}

policy "web" {{
  account     = account.main
  generations = 3
  schedules   = [schedule.nightly]

  instance "{web}" {{
    region = "us-east-1"
  }}
}}

policy "db" {{
  account           = account.main
  generations       = 3
  schedules         = [schedule.twice-daily]
  success           = "strict"
  failures_to_alert = 2

  retries {{
    count = 1
    wait  = "30m"
  }}

  scripts {{
    before = "scripts/freeze.sh"
  }}

  instance "{db}" {{
    region = "us-east-1"
  }}
}}
"#
    )
}

/// The database cannot be frozen on Wednesday the 25th.
const FREEZE: &str = "#!/bin/sh\ncase \"$LIFEBOAT_BACKUP_ID\" in\n  2026-11-25*) echo \"cannot freeze\" >&2; exit 1 ;;\nesac\n";

#[test]
fn a_simulated_week_makes_exactly_the_scheduled_backups_retries_retention_and_alerts() {
    let env = Env::start();
    let topic = Topic::create(&env.emulator.endpoint());
    let web = env.aws.run_instance(1, &[]);
    let db = env.aws.run_instance(2, &[]);
    env.config(&config(&web.id, &db.id, &topic.arn));
    env.ws.write("scripts/freeze.sh", FREEZE);
    std::fs::set_permissions(
        env.ws.path().join("scripts/freeze.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    env.apply();

    let started = std::time::Instant::now();
    let week = env
        .run(&[
            "--now",
            "2026-11-23T00:00:00Z",
            "run",
            "--fast-forward",
            "--until",
            "2026-11-30T00:00:00Z",
            "--log-format",
            "json",
        ])
        // Wednesday's failed runs make the exit code 1.
        .code(1);
    let elapsed = started.elapsed();
    let events: Vec<serde_json::Value> = week
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let of = |name: &str| -> Vec<&serde_json::Value> {
        events.iter().filter(|e| e["event"] == name).collect()
    };

    // Every run started: (policy, slot, attempt).
    let starts: Vec<(String, String, u64)> = of("backup_start")
        .iter()
        .map(|e| {
            (
                e["policy"].as_str().unwrap().to_string(),
                e["slot"].as_str().unwrap().to_string(),
                e["attempt"].as_u64().unwrap_or(1),
            )
        })
        .collect();
    let mut expected: Vec<(String, String, u64)> = Vec::new();
    let run = |p: &str, slot: &str, attempt: u64| (p.to_string(), slot.to_string(), attempt);
    for day in 23..=29 {
        let d = format!("2026-11-{day}");
        // Mon 23 .. Fri 27: the nightly web backup.
        if day <= 27 {
            expected.push(run("web", &format!("{d}T01:00:00Z"), 1));
        }
        // Sunday 06:00 is inside the disabled window.
        if day != 29 {
            expected.push(run("db", &format!("{d}T06:00:00Z"), 1));
        }
        if day == 25 {
            expected.push(run("db", &format!("{d}T06:00:00Z"), 2));
        }
        // Saturday 18:00 is inside the disabled window.
        if day != 28 {
            expected.push(run("db", &format!("{d}T18:00:00Z"), 1));
        }
        if day == 25 {
            expected.push(run("db", &format!("{d}T18:00:00Z"), 2));
        }
    }
    assert_eq!(starts, expected, "{}", week.stdout);
    assert!(of("backup_skipped").is_empty());

    // Each run's backup started at its slot (retries one wait later).
    let finishes = of("backup_finish");
    assert_eq!(finishes.len(), expected.len());
    let ids: Vec<&str> = finishes
        .iter()
        .map(|e| e["backup"].as_str().unwrap())
        .collect();
    for ((policy, slot, attempt), id) in expected.iter().zip(&ids) {
        if *attempt == 1 {
            assert_eq!(id, slot, "{policy}");
        } else {
            // 30 minutes after the failed attempt finished.
            assert!(id.starts_with(&slot.replace(":00:00Z", ":30:0")), "{id}");
        }
    }
    let invalid: Vec<(&str, u64)> = finishes
        .iter()
        .filter(|e| e["valid"] == false)
        .map(|e| {
            (
                e["backup"].as_str().unwrap(),
                e["attempt"].as_u64().unwrap(),
            )
        })
        .map(|(id, a)| (&id[..16], a))
        .collect();
    assert_eq!(
        invalid,
        [
            ("2026-11-25T06:00", 1),
            ("2026-11-25T06:30", 2),
            ("2026-11-25T18:00", 1),
            ("2026-11-25T18:30", 2)
        ]
    );
    assert_eq!(of("attempt_failed").len(), 2, "one per retried attempt");

    // The alert opened at the second failed run (Wednesday evening's retry)
    // and closed with Thursday morning's success.
    let opened = of("alert_open");
    let closed = of("alert_close");
    assert_eq!((opened.len(), closed.len()), (1, 1));
    assert!(opened[0]["time"]
        .as_str()
        .unwrap()
        .starts_with("2026-11-25T18:30"));
    assert!(closed[0]["time"]
        .as_str()
        .unwrap()
        .starts_with("2026-11-26T06:00"));
    assert_eq!(of("daily_summary").len(), 7);

    // Retention: the newest three valid generations of each policy; the
    // invalid Wednesday backups went once older than the oldest kept.
    let mut kept: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let backups = env.backups(&[]);
    for b in &backups {
        kept.entry(b["policy"].as_str().unwrap().to_string())
            .or_default()
            .push(format!(
                "{} {}",
                b["id"].as_str().unwrap(),
                b["status"].as_str().unwrap()
            ));
    }
    assert_eq!(
        kept["web"],
        [
            "2026-11-25T01:00:00Z success",
            "2026-11-26T01:00:00Z success",
            "2026-11-27T01:00:00Z success"
        ]
    );
    assert_eq!(
        kept["db"],
        [
            "2026-11-27T18:00:00Z success",
            "2026-11-28T06:00:00Z success",
            "2026-11-29T18:00:00Z success"
        ]
    );
    // AWS holds exactly the catalog's snapshots: one per web backup, two
    // per db backup.
    let mut in_catalog: Vec<String> = backups
        .iter()
        .flat_map(|b| b["snapshots"].as_array().unwrap().iter())
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    in_catalog.sort();
    let mut in_aws: Vec<String> = env
        .aws
        .lifeboat_snapshots()
        .into_iter()
        .map(|s| s.id)
        .collect();
    in_aws.sort();
    assert_eq!(in_catalog.len(), 3 + 3 * 2);
    assert_eq!(in_aws, in_catalog);

    // What SNS delivered: seven daily summaries, the alert opening and its
    // closing, in order.
    let sent: Vec<String> = topic.drain().into_iter().map(|(s, _)| s).collect();
    let summary = "Lifeboat daily summary: 0 open alert(s)";
    let mut expected = vec![summary; 3];
    expected.push("Lifeboat alert opened: policy db");
    expected.push("Lifeboat alert closed: policy db");
    expected.extend([summary; 4]);
    assert_eq!(sent, expected);
    assert!(env.run(&["alerts", "--json"]).ok().json() == serde_json::json!([]));

    // A week in seconds, not days.
    assert!(elapsed < std::time::Duration::from_secs(90), "{elapsed:?}");
    env.assert_converged();
}
