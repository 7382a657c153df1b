//! Restore points end to end: the real `lifeboat backup` against the
//! emulator records what each target was at backup time (an instance's
//! type, placement, network and every disk; a volume's type and size; a
//! database's class and engine), and `lifeboat backups show` prints it, in
//! one line per target and whole under `--json`.

mod support;

use serde_json::Value;
use support::targets::Rds;
use support::{at, Env};

const CONFIG: &str = r#"account "main" {
  regions = ["us-east-1"]
}

policy "web" {
  account     = account.main
  generations = 2

  instance "INSTANCE" {
    region = "us-east-1"
  }
  volume "VOLUME" {
    region = "us-east-1"
  }
  rds "orders-db" {
    region = "us-east-1"
  }
  aurora "orders-cluster" {
    region = "us-east-1"
  }
}
"#;

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("a string, got {v}"))
}

#[test]
fn a_backup_records_each_targets_restore_point_and_backups_show_prints_it() {
    let env = Env::start();
    let rds = Rds::new(&env.emulator);
    let i = env.aws.run_instance(2, &[("team", "web")]);
    let other = env.aws.run_instance(2, &[]);
    let volume = other.volumes[1].clone();
    rds.create_instance("orders-db");
    rds.create_cluster("orders-cluster");
    env.config(
        &CONFIG
            .replace("INSTANCE", &i.id)
            .replace("VOLUME", &volume),
    );
    env.apply();

    let id = at(10);
    env.backup("web", &id);
    let b = env.run(&["backups", "show", &id, "--json"]).ok().json();
    assert_eq!(b["status"], "success", "{b:#}");
    assert_eq!(b["problems"], Value::Array(vec![]), "{b:#}");
    let points = &b["restore_points"];

    let inst = &points[&i.id];
    assert_eq!(inst["kind"], "instance", "{inst:#}");
    assert_eq!(inst["instance_type"], "t3.micro", "{inst:#}");
    assert!(text(&inst["availability_zone"]).starts_with("us-east-1"));
    assert!(text(&inst["subnet_id"]).starts_with("subnet-"), "{inst:#}");
    let sgs = inst["security_groups"].as_array().expect("security groups");
    assert!(!sgs.is_empty(), "{inst:#}");
    assert!(sgs.iter().all(|g| text(g).starts_with("sg-")), "{inst:#}");
    assert_eq!(inst["root_device"], "/dev/sda1", "{inst:#}");
    assert_eq!(inst["tags"]["team"], "web", "{inst:#}");
    let disks = inst["disks"].as_array().expect("disks");
    let layout: Vec<(&str, &str)> = disks
        .iter()
        .map(|d| (text(&d["device"]), text(&d["volume_id"])))
        .collect();
    assert_eq!(
        layout,
        [
            ("/dev/sda1", i.volumes[0].as_str()),
            ("/dev/sdf", i.volumes[1].as_str())
        ],
        "root first, every disk: {inst:#}"
    );
    for d in disks {
        assert_eq!(d["size_gib"], 1, "{d:#}");
        assert!(!text(&d["volume_type"]).is_empty(), "{d:#}");
        assert_eq!(d["availability_zone"], inst["availability_zone"], "{d:#}");
    }

    let vol = &points[&volume];
    assert_eq!(vol["kind"], "volume", "{vol:#}");
    assert_eq!(vol["size_gib"], 1, "{vol:#}");
    assert!(!text(&vol["volume_type"]).is_empty(), "{vol:#}");

    let db = &points["orders-db"];
    assert_eq!(db["kind"], "db", "{db:#}");
    assert_eq!(db["class"], "db.t3.micro", "{db:#}");
    assert_eq!(db["engine"], "postgres", "{db:#}");
    let cluster = &points["orders-cluster"];
    assert_eq!(cluster["engine"], "aurora-postgresql", "{cluster:#}");

    // One line per target in the text form.
    let show = env.run(&["backups", "show", &id]).ok();
    show.stdout_has("restore points:");
    show.stdout_has(&format!("{}: t3.micro", i.id));
    show.stdout_has("2 disks");
    show.stdout_has("orders-db: db.t3.micro postgres");
}
