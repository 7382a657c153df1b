#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, unit tests and the
# integration tests that drive the real binary against the AWS emulator.
#
# Installs what it needs (the emulator into .venv/); builds into
# $CARGO_TARGET_DIR, by default $HOME/.cache/lifeboat-target, so that a fresh
# clone reuses an earlier build. A cold build of the AWS SDK takes ~10 minutes
# on two cores.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lifeboat-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-auto}"

step() { printf '\n==> %s\n' "$*"; }

step "AWS emulator (.venv/)"
bash scripts/emulator-env.sh

step "cargo deny check licenses bans sources"
# Pinned, and installed inside the repository (.tools/, ignored by git): the
# first run builds it, later runs find it. Its own release profile (fat LTO,
# one codegen unit) makes that build take tens of minutes on two busy
# cores; a checker needs no such optimisation, so it is built without.
deny_version=0.20.2
deny="$root/.tools/bin/cargo-deny"
if [ "$("$deny" --version 2>/dev/null)" != "cargo-deny $deny_version" ]; then
    CARGO_TARGET_DIR="$CARGO_TARGET_DIR/tools" \
        CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
        cargo install cargo-deny --version "=$deny_version" --locked --root "$root/.tools"
fi
# The checks that need no network, on the crates built for this machine
# (one target: cargo-deny then reads the graph as `cargo metadata
# --filter-platform` does, from what the build downloaded).
host="$(rustc -vV | sed -n 's/^host: //p')"
# On a machine whose cargo registry is empty, the offline check would find
# no crate to read: fetch the locked graph first (a no-op when present).
cargo fetch --locked --target "$host"
"$deny" --offline --target "$host" check licenses bans sources

step "cargo fmt --all --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test --workspace"
cargo test --workspace

step "container image (examples/deploy/Dockerfile)"
# Built where a container engine answers; elsewhere the Dockerfile is
# checked by its lint (src/cli_examples_test.rs, run above).
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    docker build --file examples/deploy/Dockerfile --tag lifeboat:test .
else
    echo "no container engine answers here: the Dockerfile was checked by its lint"
fi
