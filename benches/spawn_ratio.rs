//! Interleaved spawn-to-exit comparison of `/bin/true`: each round runs
//! every variant once, in turn, so that load on the machine hits all of
//! them alike; prints the median of each and the ratios the targets are
//! stated in (hull with no namespaces against `std::process::Command`,
//! hull with namespaces against the raw libc floor, and a caller holding
//! 4 GiB of touched memory against a small one).
//!
//! Run as root: `cargo bench --bench spawn_ratio` (`HULL_RATIO_ROUNDS`
//! sets the rounds, default 1000; `HULL_BENCH_BIG_GIB=0` skips the big
//! caller).

#![allow(missing_docs)]

use std::ffi::CString;
use std::time::{Duration, Instant};

use hull::ns::{Command, Namespaces};

const TRUE: &str = "/bin/true";

fn floor(path: &CString, ns: Namespaces) {
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    let flags = ns.to_clone_flags() | libc::SIGCHLD;
    // SAFETY: a fork-like raw clone; the child only calls execve and _exit.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) };
    if pid == 0 {
        // SAFETY: as above.
        unsafe {
            libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    let pid = libc::pid_t::try_from(pid).expect("clone");
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}

fn hull(ns: Namespaces) {
    let s = Command::new(TRUE)
        .new_namespaces(ns)
        .status()
        .expect("spawn");
    assert!(s.success());
}

fn std_cmd() {
    assert!(
        std::process::Command::new(TRUE)
            .status()
            .expect("spawn")
            .success()
    );
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn time(f: impl Fn()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs it too: do
    // nothing then.
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if std::env::args().any(|a| a == "--test" || a == "--list") || !root {
        return;
    }
    let rounds: usize = std::env::var("HULL_RATIO_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let path = CString::new(TRUE).unwrap();
    let core = Namespaces::PID | Namespaces::MNT | Namespaces::UTS | Namespaces::IPC;
    let net = core | Namespaces::NET;
    type Variant<'a> = (&'a str, Box<dyn Fn() + 'a>);
    let variants: Vec<Variant> = vec![
        ("std/none", Box::new(std_cmd)),
        ("floor/none", Box::new(|| floor(&path, Namespaces::empty()))),
        ("hull/none", Box::new(|| hull(Namespaces::empty()))),
        ("floor/pid_mnt_uts_ipc", Box::new(|| floor(&path, core))),
        ("hull/pid_mnt_uts_ipc", Box::new(|| hull(core))),
        ("floor/pid_mnt_uts_ipc_net", Box::new(|| floor(&path, net))),
        ("hull/pid_mnt_uts_ipc_net", Box::new(|| hull(net))),
    ];
    let mut samples = vec![Vec::with_capacity(rounds); variants.len()];
    for _ in 0..rounds {
        for (i, (_, f)) in variants.iter().enumerate() {
            samples[i].push(time(f));
        }
    }
    let med: Vec<Duration> = samples.iter_mut().map(|s| median(s)).collect();
    for ((name, _), m) in variants.iter().zip(&med) {
        println!("{name:28} median {:8.1} us", m.as_secs_f64() * 1e6);
    }
    let ratio = |a: usize, b: usize| med[a].as_secs_f64() / med[b].as_secs_f64();
    println!(
        "hull/none / std/none                          = {:.2} (target <= 1.10)",
        ratio(2, 0)
    );
    println!(
        "hull/pid_mnt_uts_ipc / floor                  = {:.2} (target <= 1.15)",
        ratio(4, 3)
    );
    println!(
        "hull/pid_mnt_uts_ipc_net / floor              = {:.2} (target <= 1.15)",
        ratio(6, 5)
    );

    let gib: usize = std::env::var("HULL_BENCH_BIG_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    if gib > 0 {
        let mut big = vec![0u8; gib << 30];
        for i in (0..big.len()).step_by(4096) {
            big[i] = 1;
        }
        let mut small = Vec::new();
        let mut large = Vec::new();
        for _ in 0..rounds / 2 {
            large.push(time(|| hull(core)));
        }
        drop(std::hint::black_box(big));
        for _ in 0..rounds / 2 {
            small.push(time(|| hull(core)));
        }
        let (l, s) = (median(&mut large), median(&mut small));
        println!(
            "hull/pid_mnt_uts_ipc with {gib} GiB caller: {:.1} us vs {:.1} us = {:.2} (target <= 1.10)",
            l.as_secs_f64() * 1e6,
            s.as_secs_f64() * 1e6,
            l.as_secs_f64() / s.as_secs_f64()
        );
    }
}
