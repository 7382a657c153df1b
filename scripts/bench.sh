#!/usr/bin/env bash
# Benchmarks (not tests): figures for the README's performance section.
#   plan_scale  the planner over 10,000 instances and 50,000 catalog snapshots
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lifeboat-target}"
cargo run --quiet --release -p lifeboat-engine --example plan_scale
