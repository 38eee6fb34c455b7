#!/usr/bin/env bash
# Load benchmark: rempart against nginx and HAProxy with the ai.robots.txt
# block, on this machine, interleaved, with the proxy under test pinned to one
# core and the load generator and origin to the other.
#
#   benches/load/run.sh              full run (5 rounds x 10 s), writes docs/benchmarks.md
#   benches/load/run.sh --smoke      1-second runs, 1 round, writes to a temp file (CI)
#   benches/load/run.sh --rounds 3 --duration 5
set -euo pipefail
cd "$(dirname "$0")/../.."

. benches/tools.sh

profile=release
for arg in "$@"; do
  if [ "$arg" = "--smoke" ]; then profile=${REMPART_BENCH_PROFILE:-dev}; fi
done
if [ "$profile" = release ]; then
  cargo build --release --locked --bin rempart
  bin="${CARGO_TARGET_DIR:-target}/release/rempart"
else
  cargo build --locked --bin rempart
  bin="${CARGO_TARGET_DIR:-target}/debug/rempart"
fi

exec python3 benches/load/bench.py --rempart "$bin" "$@"
