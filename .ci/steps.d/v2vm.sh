#!/usr/bin/env bash
# The tests that need a cgroup2-only machine, run for real in the v2vm
# guest (on the v1/hybrid host they skip): one guest per test binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
runner=../shared/tools/v2vm/run-in-v2vm.sh

# in_guest PACKAGE TEST [RUNNER OPTIONS...] -- [TEST ARGS...]
in_guest() {
  local pkg=$1 test=$2 bin
  shift 2
  local opts=()
  while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do opts+=("$1"); shift; done
  [ "${1:-}" = "--" ] && shift
  bin=$(cargo test -p "$pkg" --test "$test" --no-run --message-format=json 2>/dev/null |
    grep -o "\"executable\":\"[^\"]*/${test}-[^\"]*\"" | tail -n1 | cut -d'"' -f4)
  if [ -z "$bin" ]; then
    echo "v2vm: could not build $pkg's $test test binary" >&2
    exit 1
  fi
  echo "--- $pkg: $test"
  "$runner" "${opts[@]}" "$bin" "$@"
}

# hull-cgroup: every controller (null_blk gives io.max a block device).
in_guest hull-cgroup cgroup_v2 -k null_blk -- --test-threads=2
# hull-ns: CLONE_INTO_CGROUP.
in_guest hull-ns cgroup_v2 -- --test-threads=1
# hull-container: containers born in their v2 cgroup.
in_guest hull-container cgroup_v2 -- --test-threads=1
# hull-cli: the binary driven through its lifecycle on a cgroup2-only
# machine. The binary is shared from the target directory (9p); the guest's
# root is an initramfs, so the tests give create and run --no-pivot.
target_dir=$(cargo metadata --format-version 1 --no-deps |
  grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)
in_guest hull-cli cli -s "$target_dir/debug" -- --test-threads=1
