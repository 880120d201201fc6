//! hull-cgroup benchmarks (run as root):
//! - `create_apply_attach_delete`: a cgroup with cpu, memory and pids limits
//!   created, a process moved in and out, and the cgroup removed (hot path,
//!   back to back), plus the same with a pause before each round so the
//!   attach pays the cold path (on v1 an RCU grace period);
//! - `stats_read`: one full typed stats read;
//! - v2 only (e.g. in the v2vm guest): starting a child in a cgroup by
//!   writing `cgroup.procs` after fork versus `clone3(CLONE_INTO_CGROUP)`.
#![allow(unsafe_code, missing_docs)]

use std::collections::BTreeSet;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use hull::cgroup::{Cgroup, Controller, Layout, Limit, Mode, Resources};

/// A forked child that sleeps until killed; reaped on drop.
struct Sleeper(i32);

impl Sleeper {
    fn spawn() -> Sleeper {
        // SAFETY: the child only calls pause until SIGKILL.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            loop {
                // SAFETY: no arguments.
                unsafe { libc::pause() };
            }
        }
        Sleeper(pid)
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let mut st = 0;
        // SAFETY: our own child.
        unsafe {
            libc::kill(self.0, libc::SIGKILL);
            libc::waitpid(self.0, &mut st, 0);
        }
    }
}

fn controllers(layout: &Layout) -> BTreeSet<Controller> {
    [Controller::Cpu, Controller::Memory, Controller::Pids]
        .into_iter()
        .filter(|c| layout.has(*c))
        .collect()
}

fn resources() -> Resources {
    Resources::builder()
        .cpu_quota(50_000, 100_000)
        .memory_limit(256 << 20)
        .pids_max(Limit::Value(64))
        .build()
        .expect("valid resources")
}

fn round(parent: &Cgroup, home: &Cgroup, n: &mut u64, pid: i32, r: &Resources) {
    *n += 1;
    let mut cg = parent.child(&format!("b{n}")).expect("create");
    cg.apply(r).expect("apply");
    cg.add_process(pid).expect("attach");
    home.add_process(pid).expect("detach");
    cg.delete().expect("delete");
}

fn bench(c: &mut Criterion) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("cgroup benchmarks need root; skipped");
        return;
    }
    let layout = Layout::detect().expect("layout");
    let ctrls = controllers(&layout);
    let parent = Cgroup::create_with(
        &layout,
        &format!("/hull-bench-{}", std::process::id()),
        &ctrls,
    )
    .expect("bench parent");
    // The sleeper lives in a leaf of its own (v2: no processes in inner nodes).
    let home = parent.child("home").expect("home");
    let sleeper = Sleeper::spawn();
    home.add_process(sleeper.0).expect("sleeper into home");
    let r = resources();
    let mut n = 0u64;

    let mut g = c.benchmark_group("cgroup");
    g.bench_function(
        format!(
            "create_apply_attach_delete/{:?}/{}-dirs",
            layout.mode(),
            parent.dirs().count()
        ),
        |b| b.iter(|| round(&parent, &home, &mut n, sleeper.0, &r)),
    );
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(8));
    g.bench_function(
        format!("create_apply_attach_delete_cold/{:?}", layout.mode()),
        |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    std::thread::sleep(Duration::from_millis(200));
                    let t = Instant::now();
                    round(&parent, &home, &mut n, sleeper.0, &r);
                    total += t.elapsed();
                }
                total
            })
        },
    );
    g.finish();

    let mut g = c.benchmark_group("cgroup");
    g.bench_function(format!("stats_read/{:?}", layout.mode()), |b| {
        b.iter(|| home.stats().expect("stats"))
    });
    if layout.mode() == Mode::V2 {
        let target = parent.child("spawn").expect("spawn cgroup");
        let fd = target.dir_fd().expect("dir fd");
        g.bench_function("spawn_into_cgroup/fork+cgroup.procs", |b| {
            b.iter(|| fork_then_procs(&target))
        });
        g.bench_function("spawn_into_cgroup/clone3_CLONE_INTO_CGROUP", |b| {
            b.iter(|| clone_into(fd.as_raw_fd()))
        });
        drop(fd);
        drop(target);
    }
    g.finish();
    drop(sleeper);
    drop(home);
    drop(parent);
}

fn wait(pid: i32) {
    let mut st = 0;
    // SAFETY: reaps our own child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
}

/// fork, write the child's pid to cgroup.procs, let it run (it exits at
/// once), reap it.
fn fork_then_procs(cg: &Cgroup) {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: the child only reads one byte and _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let mut b = 0u8;
        // SAFETY: plain syscalls on inherited fds, then _exit.
        unsafe {
            libc::read(fds[0], (&raw mut b).cast(), 1);
            libc::_exit(0);
        }
    }
    cg.add_process(pid).expect("attach");
    // SAFETY: one byte from a valid buffer; then our pipe ends are closed.
    unsafe {
        libc::write(fds[1], b"g".as_ptr().cast(), 1);
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    wait(pid);
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// clone3 straight into the cgroup; the child exits at once; reap it.
fn clone_into(fd: i32) {
    let args = CloneArgs {
        flags: 0x2_0000_0000, // CLONE_INTO_CGROUP
        exit_signal: u64::try_from(libc::SIGCHLD).unwrap_or(17),
        cgroup: u64::try_from(fd).unwrap_or(u64::MAX),
        ..CloneArgs::default()
    };
    // SAFETY: args is a valid clone_args of the size given; the child (a
    // copy of this process) only _exits.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &raw const args,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r == 0 {
        // SAFETY: leave the child at once.
        unsafe { libc::_exit(0) };
    }
    assert!(r > 0, "clone3: {}", std::io::Error::last_os_error());
    wait(i32::try_from(r).unwrap_or(-1));
}

criterion_group!(benches, bench);
criterion_main!(benches);
