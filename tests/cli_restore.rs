//! Restores end to end: the real binary against the emulator brings back a
//! terminated multi-volume instance from its snapshots and one backed up
//! as an AMI (same device layout, same tags), a volume swapped in on a
//! running instance, an RDS instance and an Aurora cluster, an instance
//! from its cross-region DR copy, and a saved restore plan; bad requests
//! create nothing.

mod support;

use support::targets::Rds;
use support::{at, Aws, Env};

fn config(instances: &str, extra: &str) -> String {
    format!(
        r#"account "main" {{
  regions = ["us-east-1"]
}}

policy "web" {{
  account     = account.main
  generations = 3
{instances}{extra}}}
"#
    )
}

fn instance(id: &str, mode: &str) -> String {
    format!("\n  instance \"{id}\" {{\n    region = \"us-east-1\"\n    mode   = \"{mode}\"\n  }}\n")
}

/// `lifeboat restore ARGS --auto-approve --json`, asserted to succeed; the
/// printed record (after the plan).
fn restore(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["restore"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--auto-approve", "--json"]);
    let run = env
        .ws
        .run_env(&[("LIFEBOAT_RESTORE_POLL_MS", "50")], &all)
        .ok();
    // Two JSON values: the plan, then the record.
    let mut values =
        serde_json::Deserializer::from_str(&run.stdout).into_iter::<serde_json::Value>();
    let plan = values.next().expect("the plan").expect("JSON");
    let record = values.next().expect("the record").expect("JSON");
    assert_eq!(plan["id"], record["id"], "{run}");
    record
}

fn created(record: &serde_json::Value, kind: &str) -> Vec<String> {
    record["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == kind)
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_terminated_instance_comes_back_with_its_volumes_and_tags() {
    let env = Env::start();
    let i = env
        .aws
        .run_instance(3, &[("Name", "web-1"), ("team", "web")]);
    env.config(&config(&instance(&i.id, "snapshots"), ""));
    env.apply();
    env.backup("web", &at(10));
    let original = env.aws.instance(&i.id);
    env.aws.terminate(&i.id);

    // `auto`: the emulator gives an instance launched without a subnet an
    // address outside its subnet, which it then refuses to hand out again
    // (AWS never does either). Asking for the original's address again is
    // covered with the fake (engine/tests/unit_restore.rs).
    let record = restore(&env, &["instance", &i.id, "--private-ip", "auto"]);
    assert_eq!(record["status"], "completed", "{record}");
    assert_eq!(record["backup_id"], at(10));
    let ids = created(&record, "instance");
    assert_eq!(ids.len(), 1, "{record}");
    let back = env.aws.instance(&ids[0]);
    assert_eq!(back.state, "running");
    assert_eq!(back.instance_type, original.instance_type);
    assert_eq!(back.subnet, original.subnet);
    let devices = |v: &support::restored::InstanceView| {
        v.devices.iter().map(|d| d.0.clone()).collect::<Vec<_>>()
    };
    assert_eq!(devices(&back), devices(&original), "same device layout");
    assert_eq!(back.tags["Name"], "web-1");
    assert_eq!(back.tags["team"], "web");
    assert_eq!(
        back.tags["lifeboat:restore-id"],
        record["id"].as_str().unwrap()
    );
    assert!(
        back.tags["lifeboat:restored-from"].starts_with("snap-"),
        "{:?}",
        back.tags
    );
    // The image registered for the launch is gone again; the backup's
    // snapshots stay; the original stays terminated.
    let images = created(&record, "image");
    assert_eq!(images.len(), 1, "{record}");
    assert!(!env.aws.image_exists(&images[0]));
    assert_eq!(env.aws.backup_snapshot_ids(&at(10)).len(), 3);
    assert_eq!(env.aws.instance(&i.id).state, "terminated");

    // Only the root volume, on request.
    let record = restore(
        &env,
        &[
            "instance",
            &i.id,
            "--volumes",
            "root",
            "--private-ip",
            "auto",
        ],
    );
    let back = env.aws.instance(&created(&record, "instance")[0]);
    assert_eq!(devices(&back), vec!["/dev/sda1".to_string()]);

    let listed = env.run(&["restores", "--json"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    env.run(&["restores"]).ok().stdout_has("completed");
}

#[test]
fn an_ami_backup_launches_from_its_image() {
    let env = Env::start();
    let i = env.aws.run_instance(2, &[("Name", "app")]);
    env.config(&config(&instance(&i.id, "ami"), ""));
    env.apply();
    env.backup("web", &at(10));
    let ami = env.aws.lifeboat_images()[0].id.clone();

    let plan = env.run(&["restore", "instance", &i.id, "--plan-only"]).ok();
    plan.stdout_has(&format!("from {ami}"))
        .stdout_has("restored_instance[")
        .stdout_has("1 to create");
    let record = restore(&env, &["instance", &i.id, "--instance-type", "t3.small"]);
    let back = env.aws.instance(&created(&record, "instance")[0]);
    assert_eq!(back.state, "running");
    assert_eq!(back.instance_type, "t3.small");
    assert_eq!(back.tags["Name"], "app");
    assert_eq!(back.tags["lifeboat:restored-from"], ami);
    assert!(created(&record, "image").is_empty(), "{record}");
    assert!(env.aws.image_exists(&ami), "the backup's AMI stays");
}

#[test]
fn a_volume_is_swapped_in_and_the_old_one_kept() {
    let env = Env::start();
    let i = env.aws.run_instance(2, &[]);
    let data = i.volumes[1].clone();
    env.config(&config(&instance(&i.id, "snapshots"), ""));
    env.apply();
    env.backup("web", &at(10));
    let device = env.aws.volume(&data).attached.unwrap().1;

    // Without --swap the occupied device is refused, and nothing is made.
    let before = env.aws.count_volumes();
    env.run(&[
        "restore",
        "volume",
        &data,
        "--attach-to",
        &i.id,
        "--auto-approve",
    ])
    .code(1)
    .mentions("pass --swap");
    assert_eq!(env.aws.count_volumes(), before);

    // A running instance's volume is never swapped out from under it.
    env.run(&[
        "restore",
        "volume",
        &data,
        "--attach-to",
        &i.id,
        "--swap",
        "--auto-approve",
    ])
    .code(1)
    .mentions(&format!("stop instance {} first", i.id));
    assert_eq!(env.aws.count_volumes(), before);
    env.aws.stop(&i.id);
    let record = restore(&env, &["volume", &data, "--attach-to", &i.id, "--swap"]);
    let new = created(&record, "volume");
    assert_eq!(new.len(), 1, "{record}");
    let v = env.aws.volume(&new[0]);
    assert_eq!(v.attached, Some((i.id.clone(), device.clone())));
    let old = env.aws.volume(&data);
    assert_eq!(
        old.state, "available",
        "the old volume is detached, not deleted"
    );
    assert_eq!(
        old.tags["lifeboat:swapped-out-by"],
        record["id"].as_str().unwrap()
    );
}

#[test]
fn bad_requests_are_refused_before_anything_is_created() {
    let env = Env::start();
    let i = env.aws.run_instance(2, &[]);
    let other = env.aws.run_instance(1, &[]);
    env.config(&config(&instance(&i.id, "snapshots"), ""));
    env.apply();
    env.backup("web", &at(10));
    let before = (
        env.aws.count_volumes(),
        env.aws
            .instances_where("instance-state-name", "running")
            .len(),
    );

    env.run(&[
        "restore",
        "instance",
        "i-0123456789abcdef0",
        "--auto-approve",
    ])
    .code(1)
    .mentions("no backup of instance i-0123456789abcdef0");
    env.run(&[
        "restore",
        "instance",
        &i.id,
        "--volumes",
        &other.volumes[0],
        "--auto-approve",
    ])
    .code(1)
    .mentions(&format!("has no snapshot of volume {}", other.volumes[0]));
    env.run(&[
        "restore",
        "instance",
        &i.id,
        "--subnet",
        "subnet-0123456789abcdef0",
        "--auto-approve",
    ])
    .code(1)
    .mentions("subnet subnet-0123456789abcdef0 does not exist");
    env.run(&[
        "restore",
        "volume",
        &i.volumes[1],
        "--az",
        "us-east-1b",
        "--attach-to",
        &other.id,
        "--device",
        "/dev/sdz",
        "--auto-approve",
    ])
    .code(1)
    .mentions("a volume attaches only in its own zone");
    env.run(&[
        "restore",
        "instance",
        &i.id,
        "--backup",
        "2020-01-01T00:00:00Z",
        "--auto-approve",
    ])
    .code(1)
    .mentions("at or before 2020-01-01");
    env.run(&[
        "restore",
        "instance",
        &i.id,
        "--from",
        "us-west-2",
        "--auto-approve",
    ])
    .code(1)
    .mentions("no completed DR copy");
    let after = (
        env.aws.count_volumes(),
        env.aws
            .instances_where("instance-state-name", "running")
            .len(),
    );
    assert_eq!(before, after, "nothing was created");
    let listed = env.run(&["restores", "--json"]).ok().json();
    assert_eq!(listed, serde_json::json!([]));
}

#[test]
fn databases_come_back_under_new_identifiers() {
    let env = Env::start();
    let rds = Rds::new(&env.emulator);
    rds.create_instance("orders");
    rds.create_cluster("reports");
    let targets = "\n  rds \"orders\" {\n    region = \"us-east-1\"\n  }\n  aurora \"reports\" {\n    region = \"us-east-1\"\n  }\n";
    env.config(&config("", targets));
    env.apply();
    env.backup("web", &at(10));

    let record = restore(&env, &["rds", "orders", "--identifier", "orders-restored"]);
    assert_eq!(record["status"], "completed", "{record}");
    let (status, tags) = rds.db_instance("orders-restored").expect("the restored DB");
    assert_eq!(status, "available");
    assert_eq!(tags["lifeboat:restore-id"], record["id"].as_str().unwrap());
    // The identifier is now taken: a second restore under it is refused.
    env.run(&[
        "restore",
        "rds",
        "orders",
        "--identifier",
        "orders-restored",
        "--auto-approve",
    ])
    .code(1)
    .mentions("already exists");

    let record = restore(
        &env,
        &["aurora", "reports", "--instance-class", "db.r5.large"],
    );
    assert_eq!(record["status"], "completed", "{record}");
    let cluster = created(&record, "db_cluster");
    assert_eq!(cluster, vec!["reports-restored".to_string()]);
    assert!(rds.db_cluster("reports-restored").is_some());
    let members = created(&record, "db_instance");
    assert_eq!(members.len(), 1, "{record}");
    assert!(rds.db_instance(&members[0]).is_some());
    assert!(
        rds.db_instance("orders").is_some(),
        "the original is untouched"
    );
}

#[test]
fn an_instance_comes_back_in_another_region_from_its_dr_copy() {
    let env = Env::start();
    let i = env.aws.run_instance(2, &[("Name", "web-1")]);
    let dr = "\n  dr {\n    regions = [\"us-west-2\"]\n  }\n";
    env.config(&config(&instance(&i.id, "snapshots"), dr));
    env.apply();
    env.backup("web", &at(10));
    let west = Aws::in_region(&env.emulator, "us-west-2");
    let subnet = west.default_subnet("us-west-2a");

    // The original's subnet is in us-east-1: one in us-west-2 is required.
    env.run(&[
        "restore",
        "instance",
        &i.id,
        "--from",
        "us-west-2",
        "--auto-approve",
    ])
    .code(1)
    .mentions("--subnet");
    let record = restore(
        &env,
        &[
            "instance",
            &i.id,
            "--from",
            "us-west-2",
            "--subnet",
            &subnet,
        ],
    );
    assert_eq!(record["region"], "us-west-2");
    assert_eq!(record["source"], "us-west-2:main");
    let back = west.instance(&created(&record, "instance")[0]);
    assert_eq!(back.state, "running");
    assert_eq!(back.subnet, subnet);
    assert_eq!(back.devices.len(), 2);
    let from = &back.tags["lifeboat:restored-from"];
    let copies: Vec<String> = west
        .describe_tagged_key("lifeboat:dr-source")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert!(
        copies.contains(from),
        "restored from a copy: {from} in {copies:?}"
    );
}

#[test]
fn a_backup_expired_locally_restores_from_its_dr_copy_as_it_was() {
    let env = Env::start();
    let i = env.aws.run_instance(2, &[("Name", "web-1")]);
    let mut one = config(
        &instance(&i.id, "snapshots"),
        "\n  dr {\n    regions     = [\"us-west-2\"]\n    generations = 3\n  }\n",
    );
    one = one.replace("generations = 3\n\n", "generations = 1\n\n");
    assert!(one.contains("generations = 1"), "{one}");
    env.config(&one);
    env.apply();
    env.backup("web", &at(10));
    env.backup("web", &at(11));
    // Locally one generation stays: the 10:00 backup is gone but for its copy.
    assert_eq!(env.backups(&[]).len(), 1);
    let first = "2026-11-22T10:00:00Z";
    let west = Aws::in_region(&env.emulator, "us-west-2");
    let subnet = west.default_subnet("us-west-2a");

    // Without --from, it says where the copies are.
    env.run(&[
        "restore",
        "instance",
        &i.id,
        "--backup",
        first,
        "--plan-only",
    ])
    .code(1)
    .mentions("--from us-west-2:main");
    // Copies recorded before Lifeboat kept a backup's problems with them:
    // the plan says what it cannot know.
    let db = rusqlite::Connection::open(env.ws.path().join(".lifeboat/state.db")).unwrap();
    db.execute("UPDATE dr_copies SET backup_problems = NULL", [])
        .unwrap();
    env.run(&[
        "restore",
        "instance",
        &i.id,
        "--backup",
        first,
        "--from",
        "us-west-2",
        "--subnet",
        &subnet,
        "--plan-only",
    ])
    .ok()
    .mentions("problems are unknown");
    let record = restore(
        &env,
        &[
            "instance",
            &i.id,
            "--backup",
            first,
            "--from",
            "us-west-2",
            "--subnet",
            &subnet,
        ],
    );
    assert_eq!(record["backup_id"], first);
    assert_eq!(record["source"], "us-west-2:main");
    // Its restore point outlived the backup: both disks and the tags.
    let back = west.instance(&created(&record, "instance")[0]);
    assert_eq!(back.state, "running");
    assert_eq!(back.devices.len(), 2, "{back:?}");
    assert_eq!(back.tags["Name"], "web-1");
    let from = &back.tags["lifeboat:restored-from"];
    let copies: Vec<String> = west
        .describe_tagged_key("lifeboat:dr-backup-id")
        .into_iter()
        .filter(|s| s.tags["lifeboat:dr-backup-id"] == first)
        .map(|s| s.id)
        .collect();
    assert!(copies.contains(from), "{from} in {copies:?}");
}

#[test]
fn a_saved_restore_plan_is_performed_by_apply() {
    let env = Env::start();
    let i = env.aws.run_instance(1, &[]);
    env.config(&config(&instance(&i.id, "snapshots"), ""));
    env.apply();
    env.backup("web", &at(10));
    env.run(&["restore", "instance", &i.id, "--out", "restore.json"])
        .ok()
        .stdout_has("lifeboat apply restore.json");
    let saved: serde_json::Value = serde_json::from_str(&env.ws.read("restore.json")).unwrap();
    // A plan edited after review (another instance type, say) is refused:
    // apply plans the request again and performs only what agrees.
    let mut edited = saved.clone();
    edited["launch"]["instance_type"] = "t3.2xlarge".into();
    env.ws.write("edited.json", &edited.to_string());
    env.ws
        .run_env(
            &[("LIFEBOAT_RESTORE_POLL_MS", "50")],
            &["apply", "edited.json"],
        )
        .code(1)
        .mentions("differs in launch");
    assert_eq!(
        env.run(&["restores", "--json"]).ok().json(),
        serde_json::json!([])
    );
    let run = env
        .ws
        .run_env(
            &[("LIFEBOAT_RESTORE_POLL_MS", "50")],
            &["apply", "restore.json"],
        )
        .ok();
    run.stdout_has("completed");
    let listed = env.run(&["restores", "--json"]).ok().json();
    assert_eq!(listed[0]["id"], saved["id"]);
    // Performed once: a second apply of the same plan is refused.
    env.ws
        .run_env(
            &[("LIFEBOAT_RESTORE_POLL_MS", "50")],
            &["apply", "restore.json"],
        )
        .code(1)
        .mentions("already ran");
}
