#!/usr/bin/env bash
# Benchmarks (not tests): the figures in the README's performance section.
#   plan_scale  the planner over 10,000 instances and 50,000, then 100,000
#               catalog snapshots (in-memory AWS, real SQLite state), with its
#               time and peak resident memory; at 100,000 once with most of
#               the catalog expiring and once in its steady state
#   bench_tick  one `lifeboat run --once` tick with 1,000 due instance targets
#               against the AWS emulator, next to a minimal script making the
#               same create calls; once with the state in SQLite, once in a
#               DynamoDB table of the same emulator
#   bench_week  the runner's peak resident memory over a simulated week
#               (`run --fast-forward`) of a daily backup of 1,000 targets
#               against the emulator
#   dr_scale    the DR copies of one backup of 1,000 targets to one region,
#               20 in flight, copies pending for a few looks (in-memory AWS)
#   bench_dr    one `lifeboat backup` of 1,000 targets with their DR copies
#               to one region against the emulator, next to a minimal script
#   recovery_scale  a recovery scenario of 50 instances after 5 databases,
#               at most 5 restores in flight (in-memory AWS)
#   bench_recover  `lifeboat recover` of the same scenario against the
#               emulator, next to a minimal script making the same calls
# All use release builds. BENCH_TARGETS sets the tick's and the week's
# target count.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lifeboat-target}"
bash scripts/emulator-env.sh
echo "==> plan_scale"
cargo run --quiet --release -p lifeboat-engine --example plan_scale
PLAN_SCALE_SNAPSHOTS=100000 cargo run --quiet --release -p lifeboat-engine --example plan_scale
# The same catalog in its steady state: every backup a kept generation.
PLAN_SCALE_SNAPSHOTS=100000 PLAN_SCALE_GENERATIONS=10 cargo run --quiet --release -p lifeboat-engine --example plan_scale
echo "==> bench_tick"
cargo build --quiet --release --bin lifeboat
# With a failpoint set: a release build has none (a debug build made by
# `cargo test` would abort at once), so the tick completes as without it.
LIFEBOAT_FAILPOINT=backup-started .venv/bin/python scripts/bench_tick.py "$CARGO_TARGET_DIR/release/lifeboat" "${BENCH_TARGETS:-1000}"
.venv/bin/python scripts/bench_tick.py "$CARGO_TARGET_DIR/release/lifeboat" "${BENCH_TARGETS:-1000}" --backend dynamodb
echo "==> bench_week"
.venv/bin/python scripts/bench_week.py "$CARGO_TARGET_DIR/release/lifeboat" "${BENCH_TARGETS:-1000}" 7
echo "==> dr_scale"
cargo run --quiet --release -p lifeboat-engine --example dr_scale
echo "==> bench_dr"
.venv/bin/python scripts/bench_dr.py "$CARGO_TARGET_DIR/release/lifeboat" "${BENCH_TARGETS:-1000}"
echo "==> recovery_scale"
cargo run --quiet --release -p lifeboat-engine --example recovery_scale
echo "==> bench_recover"
.venv/bin/python scripts/bench_recover.py "$CARGO_TARGET_DIR/release/lifeboat" 50 5
