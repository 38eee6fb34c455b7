#!/usr/bin/env sh
# The release build of the container image, also run by .ci/run so that the
# image's build steps are checked where no container engine runs.
#   deploy/docker/build.sh OUT_DIR
set -eu
out="${1:?usage: build.sh OUT_DIR}"
cargo build --release --locked --bin rempart
mkdir -p "$out"
cp "${CARGO_TARGET_DIR:-target}/release/rempart" "$out/rempart"
"$out/rempart" --version
