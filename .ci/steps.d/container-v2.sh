#!/usr/bin/env bash
# hull-container on a cgroup2-only machine, for real, in the v2vm guest
# (the tests skip on the v1/hybrid host).
set -euo pipefail
cd "$(dirname "$0")/../.."
runner=../shared/tools/v2vm/run-in-v2vm.sh
bin=$(cargo test -p hull-container --test cgroup_v2 --no-run --message-format=json 2>/dev/null |
  grep -o '"executable":"[^"]*cgroup_v2-[^"]*"' | tail -n1 | cut -d'"' -f4)
if [ -z "$bin" ]; then
  echo "container-v2: could not build the cgroup_v2 test binary" >&2
  exit 1
fi
"$runner" "$bin" --test-threads=1
