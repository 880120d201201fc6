//! Every cgroup control-file parser (stats, limits, PSI, mountinfo,
//! /proc/self/cgroup) on arbitrary bytes: none may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hull_cgroup::stats::parse_all_for_fuzzing(data);
});
