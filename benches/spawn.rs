//! Spawn-to-exit latency of `/bin/true`.
//!
//! - `std`: `std::process::Command`, the baseline.
//! - `floor`: the same clone + execve + wait written directly on libc with
//!   nothing prepared for safety (what a minimal C program does): the
//!   lowest cost the kernel allows for each namespace set.
//! - `hull`: `hull_ns::Command` with no namespaces, each namespace alone,
//!   pid+mnt+uts+ipc, and the same plus net.
//! - `big_caller/*`: the same with 4 GiB of touched memory in the caller.
//!
//! Run as root: `cargo bench --bench spawn`. `HULL_BENCH_BIG_GIB` changes
//! the big caller's size (0 skips that group).

#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::ffi::CString;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use hull::ns::{Command, Namespaces};

const TRUE: &str = "/bin/true";

fn hull_true(ns: Namespaces) {
    let status = Command::new(TRUE)
        .new_namespaces(ns)
        .status()
        .expect("spawn");
    assert!(status.success());
}

fn std_true() {
    let status = std::process::Command::new(TRUE).status().expect("spawn");
    assert!(status.success());
}

/// clone(flags | SIGCHLD) + execve + waitpid, as a C program would do it.
struct Floor {
    path: CString,
    argv: [*const libc::c_char; 2],
    envp: [*const libc::c_char; 1],
}

impl Floor {
    fn new() -> Floor {
        let path = CString::new(TRUE).unwrap();
        let argv = [path.as_ptr(), std::ptr::null()];
        Floor {
            path,
            argv,
            envp: [std::ptr::null()],
        }
    }

    fn run(&self, ns: Namespaces) {
        let flags = ns.to_clone_flags() | libc::SIGCHLD;
        // SAFETY: a fork-like raw clone (no shared memory); the child only
        // calls execve and _exit, both async-signal-safe, on prepared data.
        let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) };
        if pid == 0 {
            // SAFETY: as above.
            unsafe {
                libc::execve(self.path.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr());
                libc::_exit(127);
            }
        }
        assert!(pid > 0, "clone: {}", std::io::Error::last_os_error());
        let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
        let mut status = 0;
        // SAFETY: waiting for our own child with a valid status pointer.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(status, 0);
    }
}

fn sets() -> Vec<(&'static str, Namespaces)> {
    let core = Namespaces::PID | Namespaces::MNT | Namespaces::UTS | Namespaces::IPC;
    vec![
        ("none", Namespaces::empty()),
        ("pid", Namespaces::PID),
        ("mnt", Namespaces::MNT),
        ("uts", Namespaces::UTS),
        ("ipc", Namespaces::IPC),
        ("net", Namespaces::NET),
        ("user", Namespaces::USER),
        ("cgroup", Namespaces::CGROUP),
        ("time", Namespaces::TIME),
        ("pid_mnt_uts_ipc", core),
        ("pid_mnt_uts_ipc_net", core | Namespaces::NET),
    ]
}

fn spawn(c: &mut Criterion) {
    let floor = Floor::new();
    let mut g = c.benchmark_group("spawn");
    g.bench_function("std/none", |b| b.iter(std_true));
    for (name, ns) in sets() {
        if ["none", "pid_mnt_uts_ipc", "pid_mnt_uts_ipc_net"].contains(&name) {
            g.bench_function(format!("floor/{name}"), |b| {
                b.iter(|| floor.run(black_box(ns)))
            });
        }
        g.bench_function(format!("hull/{name}"), |b| {
            b.iter(|| hull_true(black_box(ns)))
        });
    }
    g.finish();
}

fn big_caller(c: &mut Criterion) {
    let gib: usize = std::env::var("HULL_BENCH_BIG_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    if gib == 0 {
        return;
    }
    // Touch every page so the page tables are really populated.
    let mut big = vec![0u8; gib << 30];
    for i in (0..big.len()).step_by(4096) {
        big[i] = 1;
    }
    let floor = Floor::new();
    let core = Namespaces::PID | Namespaces::MNT | Namespaces::UTS | Namespaces::IPC;
    let mut g = c.benchmark_group(format!("spawn_big_caller_{gib}gib"));
    g.bench_function("std/none", |b| b.iter(std_true));
    g.bench_function("floor/none", |b| b.iter(|| floor.run(Namespaces::empty())));
    g.bench_function("hull/none", |b| b.iter(|| hull_true(Namespaces::empty())));
    g.bench_function("hull/pid_mnt_uts_ipc", |b| b.iter(|| hull_true(core)));
    g.bench_function("hull/pid_mnt_uts_ipc_net", |b| {
        b.iter(|| hull_true(core | Namespaces::NET))
    });
    g.finish();
    black_box(&big);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = spawn, big_caller
}
criterion_main!(benches);
