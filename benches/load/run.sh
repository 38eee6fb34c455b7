#!/usr/bin/env bash
# Load benchmark: rempart with the shipped configuration, as the CDN-front
# deployment sees traffic (the load generator is the trusted CDN; each request
# from one of 65,536 client addresses in X-Forwarded-For), against, in the
# same interleaved run and with the same pre-built requests: a bare pingora
# proxy (benches/bare/proxy.rs, pingora's own floor), a plain nginx proxy,
# nginx with the ai.robots.txt map and HAProxy with its token ACL. Two runs:
# one thread per proxy pinned to core 1 (wrk and the origin on core 0), then
# two threads on both cores, shared with wrk and the origin. Every workload
# must be answered as intended (page 200 from the origin, the crawlers as the
# shipped policy says), or the run fails. Details: bench.py, crowd.py and the
# method section of docs/benchmarks.md.
#
#   benches/load/run.sh              full run (5 rounds x 10 s), release builds, writes docs/benchmarks.md
#   benches/load/run.sh --smoke      1 round x 1 s, debug builds, writes to a temp file (CI)
#   benches/load/run.sh --rounds 3 --duration 5
#   benches/load/run.sh --baseline OTHER/rempart --baseline-root OTHER   another build in the same run
set -euo pipefail
cd "$(dirname "$0")/../.."

. benches/tools.sh

profile=release
for arg in "$@"; do
  if [ "$arg" = "--smoke" ]; then profile=${REMPART_BENCH_PROFILE:-dev}; fi
done
target="${CARGO_TARGET_DIR:-target}"
if [ "$profile" = release ]; then
  cargo build --release --locked --bin rempart --example bare-pingora
  dir="$target/release"
else
  cargo build --locked --bin rempart --example bare-pingora
  dir="$target/debug"
fi

exec python3 benches/load/bench.py --rempart "$dir/rempart" --bare "$dir/examples/bare-pingora" "$@"
