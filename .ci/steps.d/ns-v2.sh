#!/usr/bin/env bash
# hull-ns's CLONE_INTO_CGROUP test, run for real in a cgroup2-only guest
# (it skips on the v1/hybrid host).
set -euo pipefail
cd "$(dirname "$0")/../.."
runner=../shared/tools/v2vm/run-in-v2vm.sh
bin=$(cargo test -p hull-ns --test cgroup_v2 --no-run --message-format=json 2>/dev/null |
  grep -o '"executable":"[^"]*cgroup_v2-[^"]*"' | tail -n1 | cut -d'"' -f4)
if [ -z "$bin" ]; then
  echo "ns-v2: could not build the cgroup_v2 test binary" >&2
  exit 1
fi
"$runner" "$bin" --test-threads=1
