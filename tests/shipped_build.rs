//! What a shipped build of Lifeboat is made of, read from cargo's own
//! feature resolution: without the integration tests' dev-dependencies,
//! the engine is built with neither its fake cloud (`testing`) nor its
//! failpoints (`failpoints`, which let `LIFEBOAT_FAILPOINT` abort or hang
//! the process). `cargo build --release` and `cargo install` resolve
//! features this way.
//!
//! Runs `cargo tree` offline and against the committed `Cargo.lock`
//! (`--frozen`): it needs no network and fails on a lock file out of date.

use std::process::Command;

/// The features of `lifeboat-engine` that the `lifeboat` package turns on
/// over the given kinds of edges, as `cargo tree` prints them.
fn engine_features(edges: &str) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
    let manifest = format!("{}/Cargo.toml", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(cargo)
        .args([
            "tree",
            "--manifest-path",
            &manifest,
            "--offline",
            "--frozen",
        ])
        .args([
            "-p",
            "lifeboat",
            "-i",
            "lifeboat-engine",
            "--prefix",
            "none",
        ])
        .args(["-e", edges])
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("cargo tree prints UTF-8")
}

#[test]
fn the_shipped_binary_is_built_without_failpoints_or_the_fake_cloud() {
    let shipped = engine_features("normal,build,features");
    for feature in ["failpoints", "testing"] {
        assert!(
            !shipped.contains(&format!("lifeboat-engine feature \"{feature}\"")),
            "a build of lifeboat without its tests turns on the engine's `{feature}` feature:\n{shipped}"
        );
    }
    // The same question with the tests' dev-dependencies counted finds
    // both: the check above can see a feature when it is there.
    let tests = engine_features("all,features");
    for feature in ["failpoints", "testing"] {
        assert!(
            tests.contains(&format!("lifeboat-engine feature \"{feature}\"")),
            "the integration tests' build lacks the engine's `{feature}` feature:\n{tests}"
        );
    }
}
