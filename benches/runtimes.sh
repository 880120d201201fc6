#!/bin/sh
# Side-by-side start-up cost of OCI runtimes: `run` of /bin/true in the same
# busybox bundle with hull, runc and crun, interleaved (one of each per
# round, in rotating order), hot (repeated) and cold (page cache dropped
# before every run), printing medians and ratios to crun.
#
#   sudo benches/runtimes.sh [rounds]        (default 30; needs root)
#   HULL=/path/to/hull COLD=0 benches/runtimes.sh
#
# Each runtime gets the bundle with an absolute cgroupsPath under a
# bench-owned parent (removed at the end) and its own --root on a tmpfs.
#
# crun refuses hybrid cgroup hosts ("cgroups in hybrid mode not
# supported"): for crun only, this script hides the cgroup2 mount at
# /sys/fs/cgroup/unified in a private mount namespace (unshare -m, then a
# lazy umount there) and runs crun from a timing helper inside it; hull and
# runc run on the host as it is. The helper times crun exactly as the main
# loop times the others (posix_spawn + waitpid around the call).
#
# The cold mode drops the page cache (echo 3 > /proc/sys/vm/drop_caches),
# which affects the whole machine; COLD=0 skips it.
set -eu
ROUNDS=${1:-30}
HERE=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${HULL:-}" ]; then
    # A static binary: no dynamic loader and no libgcc_s at start-up
    # (about 0.4 ms less per call here), not position-independent (no
    # start-up relocation of its 190 KiB of pointer tables, which costs
    # about 0.5 ms a call here; Debian's runc is not PIE either), built with
    # the workspace's `dist` profile (LTO, one codegen unit, size-optimised:
    # fewer page faults at every start), with its own process start-up
    # (feature lean-start: no CPU probing by glibc, about 0.45 ms a call
    # here, where each `cpuid` traps to the hypervisor). The explicit
    # --target keeps the flags off build scripts and proc-macros.
    TARGET="$(uname -m)-unknown-linux-gnu"
    RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" \
        cargo build --profile dist -q -p hull-cli --features lean-start \
        --target "$TARGET" --manifest-path "$HERE/Cargo.toml"
    HULL="${CARGO_TARGET_DIR:-$HERE/target}/$TARGET/dist/hull"
fi
COLD=${COLD:-1}
WORK=$(mktemp -d /tmp/hull-bench-XXXXXX)
CG=$(basename "$WORK")
# The runtimes' state roots (--root) go on a tmpfs, as their defaults
# (/run/runc, /run/crun, /run/hull) do on a usual host; here /run is on
# disk, so /dev/shm is used. The bundle stays under /tmp.
STATE=$(mktemp -d /dev/shm/hull-bench-XXXXXX)
cleanup() {
    for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/unified/; do
        [ -d "$h$CG" ] || continue
        find "$h$CG" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
        rmdir "$h$CG" 2>/dev/null || true
    done
    rm -rf "$WORK" "$STATE"
}
trap cleanup EXIT INT TERM

# hull is timed as installed (copied, as `cargo install` and packages put
# runc and crun in place): a file fresh from the linker sits in the page
# cache in small pieces, and starting it takes more page faults (about
# 0.4 ms more per run here).
install -m 755 "$HULL" "$WORK/hull"
HULL="$WORK/hull"

mkdir -p "$WORK/bundle/rootfs/bin" "$WORK/bundle/rootfs/proc" "$WORK/bundle/rootfs/dev" \
         "$WORK/bundle/rootfs/sys" "$WORK/bundle/rootfs/tmp"
cp /bin/busybox "$WORK/bundle/rootfs/bin/busybox"
ln -s busybox "$WORK/bundle/rootfs/bin/true"
ln -s busybox "$WORK/bundle/rootfs/bin/sh"
(cd "$WORK/bundle" && runc spec)
python3 - "$WORK/bundle/config.json" "$CG" <<'PY'
import json, sys
p, cg = sys.argv[1], sys.argv[2]
s = json.load(open(p))
s["process"]["terminal"] = False
s["process"]["args"] = ["/bin/true"]
s["linux"]["cgroupsPath"] = f"/{cg}/c"
json.dump(s, open(p, "w"))
PY

python3 - "$HULL" "$WORK" "$ROUNDS" "$COLD" "$STATE" <<'PY'
import os, statistics, subprocess, sys, time
hull, work, rounds, cold, state = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]
bundle = os.path.join(work, "bundle")

def timed(argv):
    t = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, os.environ)
    _, status = os.waitpid(pid, 0)
    dt = time.perf_counter_ns() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(argv)}")
    return dt / 1e6

def argv(rt, i):
    path = {"hull": hull, "runc": "/usr/sbin/runc", "crun": "/usr/bin/crun"}[rt]
    if not os.path.exists(path):
        path = subprocess.check_output(["sh", "-c", f"command -v {rt}"], text=True).strip()
    return [path, "--root", os.path.join(state, rt), "run", "--bundle", bundle, f"{rt}-{i}"]

# The crun helper: in a private mount namespace without the cgroup2 mount,
# reads an argv per line, runs and times it, answers with milliseconds.
helper_src = r'''
import os, sys, time
for line in sys.stdin:
    argv = line.rstrip("\n").split("\0")
    t = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, os.environ)
    _, st = os.waitpid(pid, 0)
    dt = time.perf_counter_ns() - t
    print(dt / 1e6 if os.waitstatus_to_exitcode(st) == 0 else -1, flush=True)
'''
helper = subprocess.Popen(
    ["unshare", "-m", "sh", "-c",
     "umount -l /sys/fs/cgroup/unified && exec python3 -c \"$0\"", helper_src],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

def run(rt, i):
    a = argv(rt, i)
    if rt != "crun":
        return timed(a)
    helper.stdin.write("\0".join(a) + "\n")
    helper.stdin.flush()
    ms = float(helper.stdout.readline())
    if ms < 0:
        raise SystemExit("crun failed (in its private mount namespace)")
    return ms

def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3")

rts = ["hull", "runc", "crun"]
modes = [("hot", False)] + ([("cold", True)] if cold else [])
for rt in rts:  # warm-up, and a check that each works
    run(rt, "warm")
for name, is_cold in modes:
    times = {rt: [] for rt in rts}
    n = rounds if not is_cold else max(5, rounds // 3)
    for i in range(n):
        order = rts[i % 3:] + rts[:i % 3]
        for rt in order:
            if is_cold:
                drop_caches()
            times[rt].append(run(rt, f"{name}{i}"))
    med = {rt: statistics.median(v) for rt, v in times.items()}
    print(f"{name} ({n} interleaved rounds): median ms")
    for rt in rts:
        print(f"  {rt:5} {med[rt]:7.2f} ms   {med[rt] / med['crun']:5.2f}x crun   {med[rt] / med['runc']:5.2f}x runc")
helper.stdin.close()
helper.wait()
PY
