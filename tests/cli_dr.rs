//! DR copies end to end: the real binary against the emulator copies every
//! kind of artifact to another region with its tags, both ways in a
//! mixed-region policy, every Nth backup, keeps its own generations per
//! destination (deleting, or tagging where deletes are not allowed), shows
//! missing copies in the plan for apply to make, and shares a snapshot with
//! the vault account for a cross-account copy (which the emulator itself
//! cannot complete: the copy is covered with the fake in
//! engine/tests/unit_dr.rs).

mod support;

use support::targets::Rds;
use support::{at, Aws, Env};

const WEST: &str = "us-west-2";

fn config(
    instance: &str,
    extra_targets: &str,
    dr: &str,
    generations: u32,
    allow_delete: bool,
) -> String {
    format!(
        r#"account "main" {{
  regions      = ["us-east-1"]
  allow_delete = {allow_delete}
}}

policy "web" {{
  account     = account.main
  generations = {generations}

  instance "{instance}" {{
    region = "us-east-1"
  }}
{extra_targets}
  dr {{
{dr}
  }}
}}
"#
    )
}

/// The copies in `region` of the emulator, by the tag every copy carries.
fn copies_in(env: &Env, region: &str) -> Vec<support::Snapshot> {
    let aws = Aws::in_region(&env.emulator, region);
    aws.describe_tagged_key("lifeboat:dr-source")
}

fn backup_json(env: &Env, id: &str) -> serde_json::Value {
    env.run(&["backups", "show", id, "--json"]).ok().json()
}

#[test]
fn every_kind_is_copied_to_another_region_with_its_tags() {
    let env = Env::start();
    let rds = Rds::new(&env.emulator);
    let plain = env.aws.run_instance(2, &[]);
    let imaged = env.aws.run_instance(1, &[]);
    rds.create_instance("orders-db");
    rds.create_cluster("orders-cluster");
    let targets = format!(
        "  instance \"{}\" {{\n    region = \"us-east-1\"\n    mode   = \"ami\"\n  }}\n  rds \"orders-db\" {{\n    region = \"us-east-1\"\n  }}\n  aurora \"orders-cluster\" {{\n    region = \"us-east-1\"\n  }}\n",
        imaged.id
    );
    env.config(&config(
        &plain.id,
        &targets,
        "    regions = [\"us-west-2\"]",
        2,
        true,
    ));
    env.apply();
    let run = env.backup("web", &at(10));
    run.stdout_has("DR copy of backup 2026-11-22T10:00:00Z to us-west-2:main: completed");

    // Two volume snapshots, the AMI's snapshot (tagged once the copied
    // image is available), all tagged with where they came from.
    let west = copies_in(&env, WEST);
    let sources: Vec<&str> = west
        .iter()
        .map(|s| s.tags["lifeboat:dr-source"].as_str())
        .collect();
    assert_eq!(west.len(), 3, "{west:?}");
    for s in &west {
        assert_eq!(s.tags["lifeboat:dr-policy"], "web");
        assert_eq!(s.tags["lifeboat:dr-backup-id"], "2026-11-22T10:00:00Z");
        assert_eq!(s.tags["lifeboat:dr-source-region"], "us-east-1");
        assert!(
            !s.tags.contains_key("lifeboat:policy"),
            "a copy is not a backup: {s:?}"
        );
    }
    let east = env.aws.lifeboat_snapshots();
    for v in &plain.volumes {
        let original = east.iter().find(|s| &s.volume_id == v).expect("backed up");
        assert!(
            sources.contains(&original.id.as_str()),
            "{original:?} not copied"
        );
    }
    let west_ec2 = Aws::in_region(&env.emulator, WEST);
    let images = west_ec2.images_with_tag_key("lifeboat:dr-source");
    assert_eq!(images.len(), 1, "{images:?}");
    assert_eq!(images[0].tags["lifeboat:dr-policy"], "web");
    let west_rds = Rds::in_region(&env.emulator, WEST);
    let dbs = west_rds.db_snapshots();
    assert_eq!(dbs.len(), 1, "{dbs:?}");
    assert_eq!(dbs[0].tags["lifeboat:dr-backup-id"], "2026-11-22T10:00:00Z");
    let clusters = west_rds.cluster_snapshots();
    assert_eq!(clusters.len(), 1, "{clusters:?}");

    // The catalog: one DR run, completed, and every copy listed.
    let b = backup_json(&env, "2026-11-22T10:00:00Z");
    assert_eq!(b["dr"][0]["status"], "completed", "{b}");
    assert_eq!(
        b["dr_copies"].as_array().unwrap().len(),
        1 + 2 + 1 + 1 + 1,
        "{b}"
    );
    env.run(&["backups"])
        .ok()
        .stdout_has("us-west-2:main completed");
    env.assert_converged();
}

#[test]
fn a_mixed_region_policy_copies_each_region_to_the_other() {
    let env = Env::start();
    let east = env.aws.run_instance(1, &[]);
    let west = Aws::in_region(&env.emulator, WEST).run_instance(1, &[]);
    let text = format!(
        r#"account "main" {{
  regions = ["us-east-1", "us-west-2"]
}}

policy "web" {{
  account     = account.main
  generations = 2

  instance "{}" {{
    region = "us-east-1"
  }}
  instance "{}" {{
    region = "us-west-2"
  }}
  dr {{
    regions = ["us-east-1", "us-west-2"]
  }}
}}
"#,
        east.id, west.id
    );
    env.config(&text);
    env.apply();
    env.backup("web", &at(10))
        .stdout_has("to us-east-1:main: completed")
        .stdout_has("to us-west-2:main: completed");
    let in_west = copies_in(&env, WEST);
    let in_east = copies_in(&env, "us-east-1");
    assert_eq!(in_west.len(), 1, "{in_west:?}");
    assert_eq!(in_east.len(), 1, "{in_east:?}");
    assert_eq!(in_west[0].tags["lifeboat:dr-source-region"], "us-east-1");
    assert_eq!(in_east[0].tags["lifeboat:dr-source-region"], "us-west-2");
}

#[test]
fn dr_generations_outlast_the_local_ones_and_every_skips_backups() {
    let env = Env::start();
    let i = env.aws.run_instance(1, &[]);
    env.config(&config(
        &i.id,
        "",
        "    regions     = [\"us-west-2\"]\n    generations = 2\n    every       = 2",
        1,
        true,
    ));
    env.apply();
    for hour in [10, 11, 12, 13, 14] {
        env.backup("web", &at(hour));
    }
    // Backups 10, 12 and 14 were copied, 11 and 13 skipped; locally one
    // generation stays, in the vault region two: 12 and 14.
    let listed = env.backups(&[]);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let west = copies_in(&env, WEST);
    let mut ids: Vec<&str> = west
        .iter()
        .map(|s| s.tags["lifeboat:dr-backup-id"].as_str())
        .collect();
    ids.sort();
    assert_eq!(ids, ["2026-11-22T12:00:00Z", "2026-11-22T14:00:00Z"]);
    env.assert_converged();
}

#[test]
fn where_deletes_are_not_allowed_an_expired_copy_is_tagged_and_listed() {
    let env = Env::start();
    let i = env.aws.run_instance(1, &[]);
    env.config(&config(
        &i.id,
        "",
        "    regions     = [\"us-west-2\"]\n    generations = 1",
        1,
        false,
    ));
    env.apply();
    env.backup("web", &at(10));
    env.backup("web", &at(11));
    let west = copies_in(&env, WEST);
    assert_eq!(west.len(), 2, "nothing is deleted: {west:?}");
    let expired: Vec<_> = west
        .iter()
        .filter(|s| s.tags.contains_key("lifeboat:expired"))
        .collect();
    assert_eq!(expired.len(), 1, "{west:?}");
    assert_eq!(
        expired[0].tags["lifeboat:dr-backup-id"],
        "2026-11-22T10:00:00Z"
    );
    let listed = env.run(&["dr", "expired", "--json"]).ok().json();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], expired[0].id.as_str());
    env.run(&["dr", "expired"]).ok().stdout_has(&expired[0].id);
    env.run(&["dr", "expired", "--account", "vualt"])
        .code(1)
        .stderr_has("no account \"vualt\" is configured or holds DR copies");
    // Tagged once: the next plan does not tag it again.
    env.assert_converged();
}

#[test]
fn the_plan_shows_missing_copies_and_apply_makes_them_again_after_drift() {
    let env = Env::start();
    let i = env.aws.run_instance(1, &[]);
    let without = config(&i.id, "", "", 2, true).replace("  dr {\n\n  }\n", "");
    env.config(&without);
    env.apply();
    env.backup("web", &at(10));
    let original = env.aws.lifeboat_snapshots()[0].id.clone();

    // DR enabled after the fact: the latest backup's copy is planned.
    env.config(&config(&i.id, "", "    regions = [\"us-west-2\"]", 2, true));
    let plan = env.run(&["plan"]).ok();
    let line = plan.plan_line("+", &format!("dr_copy.web[\"{original}\"][\"us-west-2\"]"));
    assert!(line.contains("has no copy at us-west-2:main"), "{line}");
    env.apply();
    assert_eq!(copies_in(&env, WEST).len(), 1);
    env.assert_converged();

    // Deleted outside Lifeboat: planned again, made again.
    let copy = copies_in(&env, WEST)[0].id.clone();
    Aws::in_region(&env.emulator, WEST).delete_snapshot(&copy);
    env.run(&["plan"])
        .ok()
        .plan_line("+", &format!("dr_copy.web[\"{original}\"][\"us-west-2\"]"));
    env.apply();
    let again = copies_in(&env, WEST);
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].id, copy);
    env.assert_converged();
}

#[test]
fn a_cross_account_copy_shares_the_snapshot_with_the_vault_and_unshares_it() {
    let env = Env::start();
    let i = env.aws.run_instance(1, &[]);
    let text = config(&i.id, "", "    cross_account {\n      to = account.vault\n    }", 2, true)
        .replace(
            "policy \"web\"",
            "account \"vault\" {\n  type         = \"dr\"\n  regions      = [\"us-east-1\"]\n  allow_delete = false\n  assume_role {\n    role_arn = \"arn:aws:iam::222222222222:role/lifeboat-dr\"\n  }\n}\n\npolicy \"web\"",
        );
    env.config(&text);
    env.apply();
    // The emulator cannot copy a snapshot shared from another account: the
    // copy call fails in the vault, naming it; the share is undone.
    let run = env.run(&["--now", &at(10), "backup", "web"]).code(1);
    run.stdout_has("to us-east-1:vault: failed")
        .stdout_has("ec2:CopySnapshot failed in account vault (us-east-1)");
    let snap = env.aws.lifeboat_snapshots()[0].id.clone();
    assert!(
        env.aws.shared_with(&snap).is_empty(),
        "the share is removed once the copy is settled"
    );
}

/// A runtime and SDK clients of the emulator for the encryption test.
struct Kms {
    rt: tokio::runtime::Runtime,
    endpoint: String,
}

impl Kms {
    fn new(env: &Env) -> Kms {
        Kms {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            endpoint: env.emulator.endpoint(),
        }
    }

    fn creds() -> aws_sdk_ec2::config::Credentials {
        aws_sdk_ec2::config::Credentials::new(
            support::ACCESS_KEY_ID,
            support::SECRET_ACCESS_KEY,
            None,
            None,
            "lifeboat-tests",
        )
    }

    fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::Config::builder()
                .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
                .region(aws_sdk_ec2::config::Region::new(region.to_string()))
                .endpoint_url(&self.endpoint)
                .credentials_provider(Self::creds())
                .build(),
        )
    }

    /// A key with `alias` in `region`; returns its id.
    fn key(&self, region: &str, alias: &str) -> String {
        let kms = aws_sdk_kms::Client::from_conf(
            aws_sdk_kms::Config::builder()
                .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
                .region(aws_sdk_kms::config::Region::new(region.to_string()))
                .endpoint_url(&self.endpoint)
                .credentials_provider(Self::creds())
                .build(),
        );
        let key = self
            .rt
            .block_on(kms.create_key().send())
            .expect("CreateKey");
        let id = key.key_metadata().unwrap().key_id().to_string();
        self.rt
            .block_on(
                kms.create_alias()
                    .alias_name(alias)
                    .target_key_id(&id)
                    .send(),
            )
            .expect("CreateAlias");
        id
    }

    /// An encrypted volume in us-east-1 with the given tags.
    fn encrypted_volume(&self, key: &str, tags: &[(&str, &str)]) -> String {
        use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
        let mut spec = TagSpecification::builder().resource_type(ResourceType::Volume);
        for (k, v) in tags {
            spec = spec.tags(Tag::builder().key(*k).value(*v).build());
        }
        let mut req = self
            .ec2("us-east-1")
            .create_volume()
            .availability_zone("us-east-1a")
            .size(1)
            .encrypted(true)
            .kms_key_id(key);
        if !tags.is_empty() {
            req = req.tag_specifications(spec.build());
        }
        let out = self.rt.block_on(req.send()).expect("CreateVolume");
        out.volume_id().unwrap().to_string()
    }

    /// (encrypted, key) of a snapshot.
    fn encryption(&self, region: &str, id: &str) -> (bool, Option<String>) {
        let out = self
            .rt
            .block_on(
                self.ec2(region)
                    .describe_snapshots()
                    .snapshot_ids(id)
                    .send(),
            )
            .expect("DescribeSnapshots");
        let s = &out.snapshots()[0];
        (
            s.encrypted().unwrap_or(false),
            s.kms_key_id().map(str::to_string),
        )
    }
}

fn volume_policy(volume: &str, detection: &str) -> String {
    format!(
        r#"account "main" {{
  regions = ["us-east-1"]
}}

policy "data" {{
  account     = account.main
  generations = 3

  volume "{volume}" {{
    region = "us-east-1"
  }}
  dr {{
    regions                  = ["us-west-2"]
    encryption_key_detection = "{detection}"
  }}
}}
"#
    )
}

#[test]
fn an_encrypted_copy_takes_the_key_its_source_names_or_the_mode_decides() {
    let env = Env::start();
    let kms = Kms::new(&env);
    let source_key = kms.key("us-east-1", "alias/app");
    kms.key(WEST, "alias/dr-west");
    let tagged = kms.encrypted_volume(
        &source_key,
        &[("lifeboat:dr-kms-key:us-west-2", "alias/dr-west")],
    );
    env.config(&volume_policy(&tagged, "strict"));
    env.apply();
    env.backup("data", &at(10))
        .stdout_has("to us-west-2:main: completed");
    let copy = copies_in(&env, WEST)[0].id.clone();
    let (encrypted, key) = kms.encryption(WEST, &copy);
    assert!(encrypted, "the copy is encrypted");
    // The emulator reports the key as it was asked for; AWS reports its ARN.
    assert!(
        key.as_deref()
            .is_some_and(|k| k.contains("dr-west") || !k.contains(&source_key)),
        "{key:?}"
    );

    // Without a tag, and with no key found for the source (the emulator
    // reports none for a snapshot of an encrypted volume): strict fails
    // the copy, saying why; default uses the destination's default key.
    let plain = kms.encrypted_volume(&source_key, &[]);
    env.config(&volume_policy(&plain, "strict"));
    env.apply();
    env.run(&["--now", &at(11), "backup", "data"])
        .code(1)
        .stdout_has("to us-west-2:main: failed")
        .stdout_has("encryption_key_detection = \"default\"");
    env.config(&volume_policy(&plain, "default"));
    env.apply();
    env.backup("data", &at(12))
        .stdout_has("to us-west-2:main: completed");
}

/// A lock block against the emulator, which implements no EBS Snapshot
/// Lock: the copy is made and recorded, its failed lock call is an alert
/// naming the account, region, snapshot and LockSnapshot, and the plan
/// shows the copy as one to lock. (What a lock does is covered with the
/// fake in engine/tests/unit_dr_lock.rs.)
#[test]
fn a_lock_the_emulator_refuses_is_an_alert_and_a_planned_lock_never_a_lost_copy() {
    let env = Env::start();
    let plain = env.aws.run_instance(1, &[]);
    env.config(&config(
        &plain.id,
        "",
        "    regions = [\"us-west-2\"]\n    lock {\n      mode     = \"governance\"\n      duration = \"7d\"\n    }",
        2,
        true,
    ));
    env.apply();
    let run = env.run(&["--now", &at(10), "backup", "web"]);
    run.stdout_has("DR copy of backup 2026-11-22T10:00:00Z to us-west-2:main: completed");
    let west = copies_in(&env, WEST);
    assert_eq!(west.len(), 1, "{west:?}");
    let copy = &west[0].id;
    let b = backup_json(&env, "2026-11-22T10:00:00Z");
    let copies = b["dr_copies"].as_array().unwrap();
    assert_eq!(copies.len(), 1, "the copy is recorded: {b}");
    assert_eq!(copies[0]["status"], "completed", "{b}");

    let alerts = env.run(&["alerts"]).ok();
    for word in [
        "could not be locked",
        "ec2:LockSnapshot",
        "main",
        WEST,
        copy.as_str(),
    ] {
        alerts.stdout_has(word);
    }
    let plan = env.run(&["plan"]);
    plan.stdout_has("dr_copy.web[");
    plan.stdout_has("not locked yet");
    plan.stdout_has("not_locked");
}
