//! Shared state on DynamoDB (the emulator's, through the real SDK), end to
//! end: the engine's conformance cases on a DynamoDB workspace, `lifeboat`
//! on two "hosts" (two configuration directories with caches of their own)
//! sharing one workspace, and `state migrate` both ways with its digest.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_sdk_dynamodb::config::BehaviorVersion;
use aws_types::region::Region;
use aws_types::SdkConfig;
use lifeboat_engine::state::{conformance, Store};
use lifeboat_providers::DynamoRemote;
use support::{at, config, Env, Workspace, ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};

const TABLE: &str = "lifeboat-state";

fn sdk(endpoint: &str) -> SdkConfig {
    let credentials = Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY, None, None, "test");
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build()
}

#[test]
fn conformance_on_dynamodb() {
    let emulator = support::Emulator::start();
    let endpoint = emulator.endpoint();
    DynamoRemote::new(sdk(&endpoint), TABLE, "init")
        .unwrap()
        .init_table(false)
        .unwrap();
    let workspaces = AtomicUsize::new(0);
    conformance::run_all(&|| {
        // Each case on a workspace of its own in the one table.
        let workspace = format!("case-{}", workspaces.fetch_add(1, Ordering::SeqCst));
        let dir = tempfile::tempdir().unwrap().keep();
        let handles = AtomicUsize::new(0);
        let endpoint = endpoint.clone();
        Box::new(move || {
            let remote = DynamoRemote::new(sdk(&endpoint), TABLE, &workspace).unwrap();
            let cache = dir.join(format!(
                "cache-{}.db",
                handles.fetch_add(1, Ordering::SeqCst)
            ));
            Store::open_shared(&cache, Arc::new(remote)).unwrap()
        })
    });
}

/// The quickstart configuration with its state in the emulator's DynamoDB.
fn shared(instance: &str) -> String {
    format!(
        "lifeboat {{\n  state {{\n    backend   = \"dynamodb\"\n    table     = \"{TABLE}\"\n    region    = \"{REGION}\"\n    workspace = \"prod\"\n  }}\n}}\n\n{}",
        config(2, &[instance], false, "yes")
    )
}

#[test]
fn two_hosts_share_one_workspace() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    env.config(&shared(&a.id));
    let init = env.run(&["state", "init"]).ok();
    init.stdout_has("created")
        .stdout_has("point-in-time recovery on, deletion protection on");
    // A second init finds the table and starts nothing new.
    env.run(&["state", "init"]).ok().stdout_has("found");
    env.apply();
    env.backup("web", &at(10));
    assert!(
        !env.ws.path().join(".lifeboat/state.db").exists(),
        "no state file: the state is in DynamoDB"
    );

    // Another host: the same configuration in another directory, with a
    // cache of its own, sees what the first did.
    let other = Workspace::new(&env.emulator);
    other.write("main.lb.hcl", &shared(&a.id));
    other
        .run(&["plan", "--detailed-exitcode"])
        .code(0)
        .no_changes();
    let listed = other.run(&["backups", "--json"]).ok().json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    other.run(&["--now", &at(11), "backup", "web"]).ok();
    // ... and the first host sees the second's backup.
    assert_eq!(env.backups(&[]).len(), 2);

    // A lock taken on one host holds on the other.
    let pulled = env.run(&["state", "pull", "--json"]).ok().json();
    assert_eq!(
        pulled["serial"],
        other.run(&["state", "pull", "--json"]).ok().json()["serial"]
    );
    assert_eq!(
        pulled["tables"]["backups"].as_array().map(Vec::len),
        Some(2)
    );
    for secret in [ACCESS_KEY_ID, SECRET_ACCESS_KEY] {
        assert!(
            !pulled.to_string().contains(secret),
            "no credential in state"
        );
    }
}

#[test]
fn state_migrates_to_dynamodb_and_back_with_the_same_digest() {
    let env = Env::start();
    let a = env.aws.run_instance(1, &[]);
    // SQLite in use, DynamoDB named as where migrate copies to.
    let on_sqlite = shared(&a.id).replace("\"dynamodb\"", "\"sqlite\"");
    env.config(&on_sqlite);
    env.apply();
    env.backup("web", &at(10));
    let before = env.run(&["state", "pull"]).ok();
    let digest = |run: &support::Run| {
        run.stdout
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("digest")
                    .map(|d| d.trim().to_string())
            })
            .expect("a digest line")
    };
    let sqlite_digest = digest(&before);

    env.run(&["state", "init"]).ok();
    // The table must exist first: migrate to a missing one says what to run.
    let migrated = env
        .run(&["state", "migrate", "--to", "dynamodb", "--auto-approve"])
        .ok();
    migrated
        .stdout_has(&sqlite_digest)
        .stdout_has("backend = \"dynamodb\"");
    // Into a workspace that holds state already, nothing is copied.
    env.run(&["state", "migrate", "--to", "dynamodb", "--auto-approve"])
        .code(1)
        .stderr_has("already holds state");

    env.config(&shared(&a.id));
    assert_eq!(digest(&env.run(&["state", "pull"]).ok()), sqlite_digest);
    env.assert_converged();
    assert_eq!(env.backups(&[]).len(), 1);

    // And back, to a new file.
    std::fs::rename(
        env.ws.path().join(".lifeboat/state.db"),
        env.ws.path().join("old.db"),
    )
    .unwrap();
    env.run(&["state", "migrate", "--to", "sqlite", "--auto-approve"])
        .ok()
        .stdout_has(&sqlite_digest);
    env.config(&on_sqlite);
    assert_eq!(digest(&env.run(&["state", "pull"]).ok()), sqlite_digest);
    env.assert_converged();
}
