//! Helpers and the seed's exercises, shared by the host test binary and the
//! v2-only one (which runs in the v2vm guest).
#![allow(dead_code, unsafe_code)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hull_cgroup::{Cgroup, Controller, Error, Layout, Limit, Resources};

/// A cgroup the test owns: `hull-test-<unique>` at the top of every
/// hierarchy, deleted on drop; `finish` deletes it and checks nothing is left.
pub struct TestRoot {
    pub cg: Cgroup,
    dirs: Vec<PathBuf>,
    before: hull_testkit::Snapshot,
}

impl TestRoot {
    pub fn new(layout: &Layout) -> TestRoot {
        Self::with(layout, &layout.default_controllers())
    }

    pub fn with(layout: &Layout, ctrls: &BTreeSet<Controller>) -> TestRoot {
        let name = hull_testkit::unique_name("hull-test-");
        let cg = Cgroup::create_with(layout, &name, ctrls).expect("create test cgroup");
        let dirs: Vec<PathBuf> = cg.dirs().map(|d| d.to_path_buf()).collect();
        let roots: Vec<&std::path::Path> = dirs.iter().map(PathBuf::as_path).collect();
        let before = hull_testkit::Snapshot::take_with_cgroups(&roots);
        TestRoot { cg, dirs, before }
    }

    pub fn child(&self, name: &str) -> Cgroup {
        self.cg.child(name).expect("create child cgroup")
    }

    /// Deletes everything and asserts that no directory is left behind.
    pub fn finish(mut self) {
        // Every child cgroup the test made is gone again. (Only cgroups are
        // compared: other suites may add links or netns meanwhile.)
        let roots: Vec<&std::path::Path> = self.dirs.iter().map(PathBuf::as_path).collect();
        let after = hull_testkit::Snapshot::take_with_cgroups(&roots);
        assert_eq!(self.before.cgroups, after.cgroups, "leaked child cgroups");
        self.cg.delete().expect("delete test cgroup");
        for d in &self.dirs {
            assert!(!d.exists(), "leaked cgroup {}", d.display());
        }
    }
}

/// A forked child that waits for a start byte, then runs `body` and exits
/// with its return value. Killed and reaped on drop.
pub struct Kid {
    pub pid: i32,
    go: i32,
    status: Option<i32>,
}

impl Kid {
    pub fn spawn(body: fn() -> i32) -> Kid {
        let mut fds = [0; 2];
        // SAFETY: fds is a valid array of two ints.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: the child only reads a byte, runs `body` (fork-safe glibc
        // malloc) and _exits; it never returns into the harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let mut b = 0u8;
            // SAFETY: plain fd syscalls on the pipe this child inherited.
            unsafe {
                libc::close(fds[1]);
                libc::read(fds[0], (&raw mut b).cast(), 1);
            }
            let code = body();
            // SAFETY: leaves the child without running the parent's handlers.
            unsafe { libc::_exit(code) };
        }
        // SAFETY: closing our copy of the read end.
        unsafe { libc::close(fds[0]) };
        Kid {
            pid,
            go: fds[1],
            status: None,
        }
    }

    /// Lets the child run.
    pub fn start(&mut self) {
        if self.go >= 0 {
            // SAFETY: writes one byte from a valid buffer, then closes our fd.
            unsafe {
                libc::write(self.go, b"g".as_ptr().cast(), 1);
                libc::close(self.go);
            }
            self.go = -1;
        }
    }

    /// Waits for the child and returns its raw wait status.
    pub fn wait(&mut self) -> i32 {
        if let Some(s) = self.status {
            return s;
        }
        let mut st = 0;
        loop {
            // SAFETY: st is a valid out pointer; pid is our child.
            let r = unsafe { libc::waitpid(self.pid, &mut st, 0) };
            if r == self.pid {
                break;
            }
            assert_eq!(
                std::io::Error::last_os_error().raw_os_error(),
                Some(libc::EINTR)
            );
        }
        self.status = Some(st);
        st
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if self.status.is_none() {
            // SAFETY: signals our own, not yet reaped child.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            self.start();
            self.wait();
        }
    }
}

/// Spawns `body` in `cg` (moved in before it starts).
pub fn kid_in(cg: &Cgroup, body: fn() -> i32) -> Kid {
    let mut k = Kid::spawn(body);
    cg.add_process(k.pid).expect("add kid to cgroup");
    k.start();
    k
}

pub fn busy() -> i32 {
    let mut x = 0u64;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

pub fn sleeper() -> i32 {
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

pub fn hog() -> i32 {
    let mut v: Vec<Vec<u8>> = Vec::new();
    for _ in 0..512 {
        v.push(vec![1u8; 1 << 20]);
    }
    0
}

/// Allocates 24 MiB, then sleeps.
pub fn hold_24m() -> i32 {
    let v = vec![1u8; 24 << 20];
    std::hint::black_box(&v);
    sleeper()
}

pub fn forker() -> i32 {
    // SAFETY: this single-threaded child forks; the grandchild _exits at once.
    let p = unsafe { libc::fork() };
    match p {
        0 => unsafe {
            // SAFETY: grandchild leaves at once.
            libc::_exit(0)
        },
        p if p > 0 => 0,
        _ if std::io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN) => 42,
        _ => 43,
    }
}

/// A counter in memory shared with forked children.
pub fn shared_counter() -> &'static AtomicU64 {
    static mut PTR: *mut AtomicU64 = std::ptr::null_mut();
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: an anonymous shared mapping of one page, never unmapped.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        // SAFETY: written once under ONCE before any read.
        unsafe { PTR = p.cast() };
    });
    // SAFETY: PTR points at a live, zero-initialised, page-aligned mapping.
    unsafe { &*PTR }
}

pub fn counter() -> i32 {
    let c = shared_counter();
    loop {
        c.fetch_add(1, Ordering::Relaxed);
        std::hint::spin_loop();
    }
}

fn signalled(status: i32) -> Option<i32> {
    libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status))
}

// ---- the seed's exercises ----

pub fn cpu_quota_holds_busy_loop_near_ten_percent(layout: &Layout) {
    let root = TestRoot::new(layout);
    let cg = root.child("cpu");
    cg.apply(
        &Resources::builder()
            .cpu_quota(10_000, 100_000)
            .build()
            .unwrap(),
    )
    .unwrap();
    let before = cg.cpu_stats().unwrap().expect("cpu stats").usage;
    let start = Instant::now();
    let mut k = kid_in(&cg, busy);
    std::thread::sleep(Duration::from_secs(2));
    let used = cg.cpu_stats().unwrap().unwrap().usage - before;
    let elapsed = start.elapsed();
    let stats = cg.cpu_stats().unwrap().unwrap();
    drop(cg.kill());
    k.wait();
    drop(cg);
    let ratio = used.as_secs_f64() / elapsed.as_secs_f64();
    // 10 % wanted; the machine is shared, so only grossly wrong values fail.
    assert!(
        (0.03..=0.2).contains(&ratio),
        "busy loop used {:.1}% of a CPU ({used:?} in {elapsed:?})",
        ratio * 100.0
    );
    assert!(stats.nr_throttled > 0, "never throttled: {stats:?}");
    root.finish();
}

pub fn memory_limit_oom_kills_allocation_over_limit(layout: &Layout) {
    let root = TestRoot::new(layout);
    let cg = root.child("mem");
    let mut b = Resources::builder().memory_limit(32 << 20);
    if !layout.is_v2(Controller::Memory)
        && cg
            .dir_of(Controller::Memory)
            .is_some_and(|d| d.join("memory.memsw.limit_in_bytes").exists())
    {
        b = b.memory_swap(Limit::Value(32 << 20));
    }
    if layout.is_v2(Controller::Memory) {
        b = b.memory_swap(Limit::Value(32 << 20));
    }
    cg.apply(&b.build().unwrap()).unwrap();
    let mut k = kid_in(&cg, hog);
    let st = k.wait();
    assert_eq!(
        signalled(st),
        Some(libc::SIGKILL),
        "hog was not killed: {st:#x}"
    );
    let m = cg.memory_stats().unwrap().expect("memory stats");
    assert_eq!(m.oom_kill, 1, "{m:?}");
    drop(cg);
    root.finish();
}

pub fn fork_past_pids_max_fails(layout: &Layout) {
    let root = TestRoot::new(layout);
    let cg = root.child("pids");
    cg.apply(
        &Resources::builder()
            .pids_max(Limit::Value(1))
            .build()
            .unwrap(),
    )
    .unwrap();
    let mut k = kid_in(&cg, forker);
    let st = k.wait();
    assert!(libc::WIFEXITED(st), "{st:#x}");
    assert_eq!(libc::WEXITSTATUS(st), 42, "fork did not fail with EAGAIN");
    let p = cg.pids_stats().unwrap().unwrap();
    assert_eq!(p.limit, Limit::Value(1));
    drop(cg);
    root.finish();
}

pub fn freeze_stops_counter_and_thaw_resumes(layout: &Layout) {
    let root = TestRoot::new(layout);
    let cg = root.child("frz");
    let c = shared_counter();
    let mut k = kid_in(&cg, counter);
    let t = Instant::now();
    while c.load(Ordering::Relaxed) == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "counter never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    cg.freeze().unwrap();
    assert!(cg.is_frozen().unwrap());
    let a = c.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    let b = c.load(Ordering::Relaxed);
    assert_eq!(a, b, "counter advanced while frozen");
    cg.thaw().unwrap();
    let t = Instant::now();
    while c.load(Ordering::Relaxed) == b {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "counter did not resume"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!cg.is_frozen().unwrap());
    cg.kill().unwrap();
    assert_eq!(signalled(k.wait()), Some(libc::SIGKILL));
    drop(cg);
    root.finish();
}

pub fn kill_empties_cgroup_and_children(layout: &Layout) {
    let root = TestRoot::new(layout);
    let cg = root.child("kill");
    // Processes live in leaves only (v2's no-internal-process rule).
    let a = cg.child("a").unwrap();
    let inner = cg.child("inner").unwrap();
    let mut kids = vec![
        kid_in(&a, sleeper),
        kid_in(&a, busy),
        kid_in(&inner, sleeper),
    ];
    assert_eq!(a.procs().unwrap().len(), 2);
    assert_eq!(cg.procs_recursive().unwrap().len(), 3);
    cg.kill().unwrap();
    for k in &mut kids {
        assert_eq!(signalled(k.wait()), Some(libc::SIGKILL));
    }
    assert!(cg.procs_recursive().unwrap().is_empty());
    drop(a);
    drop(inner);
    drop(cg);
    root.finish();
}

pub fn delete_leaves_nothing_and_is_idempotent(layout: &Layout) {
    let root = TestRoot::new(layout);
    let mut a = root.child("a");
    let b = a.child("b").unwrap();
    let c = b.child("c").unwrap();
    let dirs: Vec<PathBuf> = a.dirs().map(|d| d.to_path_buf()).collect();
    assert!(c.dirs().all(|d| d.is_dir()));
    b.keep();
    c.keep();
    a.delete().unwrap();
    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    a.delete().unwrap();
    drop(a);
    root.finish();
}

pub fn bad_paths_are_typed_errors(layout: &Layout) {
    for p in ["../escape", "a/../../b", "", "/", "a//b"] {
        assert!(
            matches!(Cgroup::create(layout, p), Err(Error::InvalidPath { .. })),
            "{p:?}"
        );
    }
    let root = TestRoot::new(layout);
    assert!(matches!(
        root.cg.child("x/y"),
        Err(Error::InvalidPath { .. })
    ));
    assert!(matches!(
        root.cg.child(".."),
        Err(Error::InvalidPath { .. })
    ));
    root.finish();
}

pub fn cpuset_outside_host_is_typed_error(layout: &Layout) {
    if !layout.has(Controller::Cpuset) {
        return;
    }
    let root = TestRoot::new(layout);
    let cg = root.child("cs");
    let r = Resources::builder()
        .cpus("0-4000")
        .unwrap()
        .build()
        .unwrap();
    assert!(matches!(
        cg.apply(&r),
        Err(Error::CpusetOutOfRange { field: "cpus", .. })
    ));
    let r = Resources::builder().cpus("0").unwrap().build().unwrap();
    cg.apply(&r).unwrap();
    drop(cg);
    root.finish();
}

pub fn unknown_block_device_is_typed_error(layout: &Layout) {
    if !layout.has(Controller::Io) {
        return;
    }
    let root = TestRoot::new(layout);
    let cg = root.child("io");
    let dev = hull_cgroup::DeviceNumber {
        major: 4095,
        minor: 4095,
    };
    let r = Resources::builder()
        .io_limit(dev, hull_cgroup::IoLimitKind::ReadBps, 1 << 20)
        .build()
        .unwrap();
    assert!(matches!(
        cg.apply(&r),
        Err(Error::UnknownDevice {
            major: 4095,
            minor: 4095,
            ..
        })
    ));
    drop(cg);
    root.finish();
}

pub fn stats_read_everything(layout: &Layout) {
    let root = TestRoot::new(layout);
    let cg = root.child("st");
    cg.apply(
        &Resources::builder()
            .memory_limit(256 << 20)
            .pids_max(Limit::Value(100))
            .build()
            .unwrap(),
    )
    .unwrap();
    let mut k = kid_in(&cg, hold_24m);
    let t = Instant::now();
    loop {
        let m = cg.memory_stats().unwrap().unwrap();
        if m.usage >= 24 << 20 {
            assert_eq!(m.limit, Some(Limit::Value(256 << 20)));
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "usage stuck at {}",
            m.usage
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let s = cg.stats().unwrap();
    assert_eq!(s.pids.map(|p| p.current), Some(1));
    assert!(s.cpu.is_some());
    assert!(!s.memory.unwrap().stat.is_empty());
    cg.kill().unwrap();
    k.wait();
    drop(cg);
    root.finish();
}

pub fn oom_event_is_reported(layout: &Layout) {
    use hull_cgroup::MemoryEvent;
    let root = TestRoot::new(layout);
    let cg = root.child("oomev");
    cg.apply(
        &Resources::builder()
            .memory_limit(32 << 20)
            .memory_swap(Limit::Value(32 << 20))
            .build()
            .unwrap(),
    )
    .or_else(|_| cg.apply(&Resources::builder().memory_limit(32 << 20).build().unwrap()))
    .unwrap();
    let mut ev = cg.memory_events().unwrap();
    assert!(ev.wait(Some(Duration::from_millis(50))).unwrap().is_empty());
    let mut k = kid_in(&cg, hog);
    let mut seen = Vec::new();
    let t = Instant::now();
    while !seen
        .iter()
        .any(|e| matches!(e, MemoryEvent::OomKill { .. }))
    {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no OOM kill event: {seen:?}"
        );
        seen.extend(ev.wait(Some(Duration::from_secs(1))).unwrap());
    }
    assert!(
        seen.iter().any(|e| matches!(e, MemoryEvent::Oom { .. })),
        "{seen:?}"
    );
    assert_eq!(signalled(k.wait()), Some(libc::SIGKILL));
    drop(ev);
    drop(cg);
    root.finish();
}

/// A process with a second thread; both sleep.
pub fn threaded_sleeper() -> i32 {
    let _t = std::thread::spawn(sleeper);
    sleeper()
}
