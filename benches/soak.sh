#!/usr/bin/env bash
# Soak test: 10 minutes at half the measured maximum with a mix of browsers,
# crawlers, a licensed crawler and slow clients (benches/soak.py).
#
#   benches/soak.sh                  10 minutes, release build, prints the Markdown section
#   benches/soak.sh --minutes 2      shorter
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/tools.sh
cargo build --release --locked --bin rempart
exec python3 benches/soak.py --rempart "${CARGO_TARGET_DIR:-target}/release/rempart" "$@"
