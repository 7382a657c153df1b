//! `lifeboat report`: the backups and snapshots reports (with the records
//! retention deleted, kept with when), the protected and unprotected
//! resources listed in AWS, `--json`, `--since`, `--policy`, the CSV file's
//! mode; and the runner writing the reports to S3 on `every`.

mod support;

use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use support::{at, config, Emulator, Env, ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};

/// The CSV's rows as maps from column to value.
fn rows(csv_text: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut lines = csv_text.lines();
    let head: Vec<String> = lines
        .next()
        .expect("a header")
        .split(',')
        .map(str::to_string)
        .collect();
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            // The values these tests meet hold no comma or quote.
            head.iter()
                .cloned()
                .zip(l.split(',').map(str::to_string))
                .collect()
        })
        .collect()
}

#[test]
fn reports_show_backups_deleted_by_retention_and_what_no_policy_covers() {
    let env = Env::start();
    let covered = env.aws.run_instance(1, &[]);
    let loose = env.aws.run_instance(1, &[("Name", "loose")]);
    env.config(&config(2, &[&covered.id], false, "yes"));
    env.apply();
    env.backup("web", &at(10));
    env.backup("web", &at(11));

    // Retention: one generation now, so the 10:00 backup goes.
    env.ws
        .edit("main.lb.hcl", "generations = 2", "generations = 1");
    env.apply();
    assert_eq!(env.backups(&[]).len(), 1, "retention deleted one backup");

    let file = env.ws.path().join("backups.csv");
    let out = env.run(&["report", "backups", "--csv", file.to_str().unwrap()]);
    let out = out.ok();
    assert!(out.stdout.is_empty(), "--csv FILE prints nothing: {out}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the report file is the operator's only");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with(
            "backup_id,account,policy,status,dr_status,started,finished,is_retry,deleted_at\n"
        ),
        "{text}"
    );
    let backups = rows(&text);
    assert_eq!(
        backups.len(),
        2,
        "the live backup and the deleted one: {text}"
    );
    let old = backups
        .iter()
        .find(|r| r["backup_id"] == at(10))
        .expect(&text);
    let new = backups
        .iter()
        .find(|r| r["backup_id"] == at(11))
        .expect(&text);
    assert!(!old["deleted_at"].is_empty(), "deleted, with when: {text}");
    assert_eq!(new["deleted_at"], "", "{text}");
    for r in [old, new] {
        assert_eq!(
            (r["policy"].as_str(), r["account"].as_str()),
            ("web", "main")
        );
        assert_eq!(
            (r["status"].as_str(), r["is_retry"].as_str()),
            ("success", "no")
        );
        assert_eq!(r["started"], r["backup_id"], "RFC 3339 UTC");
    }

    // Stdout by default, the same CSV.
    let printed = env.run(&["report", "backups"]).ok();
    assert_eq!(printed.stdout, text);

    // Snapshots: the deleted backup's snapshot too, as JSON.
    let snaps = env.run(&["report", "snapshots", "--json"]).ok().json();
    let snaps = snaps.as_array().expect("an array");
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    for s in snaps {
        assert_eq!(s["kind"], "EBS");
        assert_eq!(s["target"], covered.id.as_str());
        assert_eq!(s["volume_or_db"], covered.volumes[0].as_str());
        assert_eq!(s["succeeded"], "yes");
        let deleted = s["backup_id"] == at(10).as_str();
        assert_eq!(s["deleted_at"] != "", deleted, "{s}");
    }

    // --since: activity at or after the instant, or within a duration.
    let later = env.run(&["report", "backups", "--since", "2030-01-01T00:00:00Z"]);
    assert_eq!(rows(&later.ok().stdout).len(), 0);
    let recent = env
        .run(&["report", "backups", "--since", "1h", "--json"])
        .ok();
    let recent = recent.json();
    // Both backups finished on the real clock (their waits), and the
    // older was deleted just now.
    assert_eq!(recent.as_array().unwrap().len(), 2, "{recent}");
    let bad = env
        .run(&["report", "backups", "--since", "last week"])
        .code(1);
    bad.stderr_has("--since \"last week\" is neither an RFC 3339 time");

    // Coverage: the covered instance and its volume are protected, the
    // other instance and its volume are not.
    let unprotected = env.run(&["report", "unprotected"]).ok();
    let ids: Vec<String> = rows(&unprotected.stdout)
        .into_iter()
        .map(|r| r["resource_id"].clone())
        .collect();
    assert!(ids.contains(&loose.id), "{unprotected}");
    assert!(ids.contains(&loose.volumes[0]), "{unprotected}");
    assert!(!ids.contains(&covered.id), "{unprotected}");
    assert!(
        !ids.contains(&covered.volumes[0]),
        "attached to a covered instance: {unprotected}"
    );
    unprotected.stdout_has(",loose\n");
    let protected = env.run(&["report", "protected", "--json"]).ok().json();
    let protected = protected.as_array().unwrap();
    let ids: Vec<&str> = protected
        .iter()
        .map(|r| r["resource_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{protected:?}");
    assert!(ids.contains(&covered.id.as_str()) && ids.contains(&covered.volumes[0].as_str()));
    assert!(protected.iter().all(|r| r["policies"] == "web"));

    // An unknown policy is named.
    let nope = env.run(&["report", "backups", "--policy", "nope"]).code(1);
    nope.stderr_has("no policy \"nope\"");
    let web = env.run(&["report", "backups", "--policy", "web"]).ok();
    assert_eq!(rows(&web.stdout).len(), 2);
}

fn s3(emulator: &Emulator) -> (tokio::runtime::Runtime, aws_sdk_s3::Client) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(emulator.endpoint())
            .force_path_style(true)
            .credentials_provider(Credentials::new(
                ACCESS_KEY_ID,
                SECRET_ACCESS_KEY,
                None,
                None,
                "lifeboat-tests",
            ))
            .build(),
    );
    (rt, client)
}

fn keys(rt: &tokio::runtime::Runtime, s3: &aws_sdk_s3::Client) -> Vec<String> {
    let out = rt
        .block_on(s3.list_objects_v2().bucket("reports").send())
        .expect("list objects");
    let mut keys: Vec<String> = out
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    keys.sort();
    keys
}

#[test]
fn the_runner_writes_the_reports_to_s3_every_day() {
    let env = Env::start();
    let covered = env.aws.run_instance(1, &[]);
    let loose = env.aws.run_instance(1, &[]);
    let mut text = config(2, &[&covered.id], false, "yes");
    text.push_str(
        "\nnotifications {\n  sns_topic = \"arn:aws:sns:us-east-1:123456789012:lifeboat\"\n  account   = account.main\n  region    = \"us-east-1\"\n  reports {\n    bucket = \"reports\"\n    prefix = \"lifeboat/\"\n    every  = \"1d\"\n  }\n}\n",
    );
    env.config(&text);
    env.apply();
    env.backup("web", &at(9));
    let (rt, s3) = s3(&env.emulator);

    // Without the bucket: each report is a logged failure naming the call
    // and the bucket, and the runner goes on.
    let failed = env.run(&["--now", &at(10), "run", "--once", "--log-format", "json"]);
    failed.stdout_has("\"event\":\"report_error\"");
    failed.stdout_has("s3:PutObject failed in account main (us-east-1) for s3://reports/");

    rt.block_on(s3.create_bucket().bucket("reports").send())
        .expect("create bucket");
    // Tried at 10:00, so next due a day later.
    let run = env.run(&["--now", &at(12), "run", "--once", "--log-format", "json"]);
    run.stdout_lacks("report_");
    assert!(keys(&rt, &s3).is_empty());

    let run = env.run(&[
        "--now",
        "2026-11-23T10:00:00Z",
        "run",
        "--once",
        "--log-format",
        "json",
    ]);
    run.stdout_has("\"event\":\"report_written\"");
    assert_eq!(
        keys(&rt, &s3),
        [
            "lifeboat/backups-20261123T100000Z.csv",
            "lifeboat/snapshots-20261123T100000Z.csv",
            "lifeboat/unprotected-20261123T100000Z.csv",
        ]
    );
    let body = |key: &str| {
        let o = rt
            .block_on(s3.get_object().bucket("reports").key(key).send())
            .expect("get object");
        let bytes = rt.block_on(o.body.collect()).expect("body").into_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    };
    let backups = body("lifeboat/backups-20261123T100000Z.csv");
    assert!(
        backups.contains(&format!("{},main,web,success", at(9))),
        "{backups}"
    );
    let unprotected = body("lifeboat/unprotected-20261123T100000Z.csv");
    assert!(unprotected.contains(&loose.id), "{unprotected}");
    assert!(!unprotected.contains(&covered.id), "{unprotected}");
}
