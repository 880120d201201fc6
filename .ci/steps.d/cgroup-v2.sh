#!/usr/bin/env bash
# hull-cgroup's v2 tests, run for real in a cgroup2-only guest (the host
# mounts v1 controllers, where these tests skip).
set -euo pipefail
cd "$(dirname "$0")/../.."
runner=../shared/tools/v2vm/run-in-v2vm.sh
bin=$(cargo test -p hull-cgroup --test cgroup_v2 --no-run --message-format=json 2>/dev/null |
  grep -o '"executable":"[^"]*cgroup_v2-[^"]*"' | tail -n1 | cut -d'"' -f4)
if [ -z "$bin" ]; then
  echo "cgroup-v2: could not build the cgroup_v2 test binary" >&2
  exit 1
fi
# null_blk gives the io.max test a real block device.
"$runner" -k null_blk "$bin" --test-threads=2
