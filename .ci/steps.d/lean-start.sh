#!/usr/bin/env bash
# The shipping build of the `hull` binary (README, benches/runtimes.sh):
# static, fixed-address, with its own process start-up (feature
# `lean-start`). Lints it and runs the binary's suites against it.
set -euo pipefail
cd "$(dirname "$0")/../.."
export RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static"
target="$(uname -m)-unknown-linux-gnu"
if [ "$(uname -m)" != x86_64 ]; then
  echo "lean-start: x86-64 only, skipped on $(uname -m)"
  exit 0
fi
cargo clippy -p hull-cli --features lean-start --target "$target" --all-targets -- -D warnings
cargo test -p hull-cli --features lean-start --target "$target" \
  --test cli --test differential --test podman
