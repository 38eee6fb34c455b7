#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 30) with the nightly
# toolchain, from the committed corpus, and fails on the first crash. What
# the run finds goes into a temporary directory (libFuzzer writes new and
# reduced inputs into its first corpus directory), so the checkout is left as
# it was; FUZZ_CORPUS_OUT=DIR keeps it there instead, to be reviewed.
#
#   fuzz/run.sh            30 s per target (what .ci/run does when nightly is present)
#   fuzz/run.sh 600        10 minutes per target
#   fuzz/run.sh 600 robots one target
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-30}
shift || true
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: no nightly toolchain; skipped"
  exit 0
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build >/dev/null
found=${FUZZ_CORPUS_OUT:-$(mktemp -d)}
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "$found/$t"
  echo "fuzz: $t for ${seconds}s"
  cargo +nightly fuzz run "$t" "$found/$t" "corpus/$t" -- -max_total_time="$seconds" -rss_limit_mb=4096 -print_final_stats=1 2>&1 \
    | grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+.*DONE|==[0-9]+==|SUMMARY|thread .* panicked|Done [0-9]+ runs)" || true
  if ls "artifacts/$t"/crash-* >/dev/null 2>&1; then
    echo "fuzz: $t crashed: $(ls artifacts/$t/crash-*)"
    exit 1
  fi
done
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no crash"
