//! cgroup v2 tests. They skip on a host whose /sys/fs/cgroup is not a
//! cgroup2 root with the cpu, memory and pids controllers (this project's v1
//! or hybrid hosts) and run for real in the v2vm guest
//! (.ci/steps.d/v2vm.sh).

mod common;

use std::os::fd::AsRawFd;

use hull_cgroup::{
    Cgroup, Controller, CpuWeight, DeviceKind, DeviceRule, Error, Layout, Limit, Mode, Resources,
};

fn layout() -> Option<Layout> {
    if !hull_testkit::is_root() {
        eprintln!("skipped: needs root");
        return None;
    }
    let l = Layout::detect().expect("detect layout");
    if l.mode() != Mode::V2 {
        eprintln!("skipped: not a cgroup v2 host (run in the v2vm guest)");
        return None;
    }
    for c in [Controller::Cpu, Controller::Memory, Controller::Pids] {
        if !l.is_v2(c) {
            eprintln!("skipped: v2 controller {c} missing");
            return None;
        }
    }
    Some(l)
}

macro_rules! v2_test {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            if let Some(l) = layout() {
                common::$name(&l);
            }
        }
    )*};
}

v2_test!(
    cpu_quota_holds_busy_loop_near_ten_percent,
    memory_limit_oom_kills_allocation_over_limit,
    fork_past_pids_max_fails,
    freeze_stops_counter_and_thaw_resumes,
    kill_empties_cgroup_and_children,
    delete_leaves_nothing_and_is_idempotent,
    bad_paths_are_typed_errors,
    cpuset_outside_host_is_typed_error,
    unknown_block_device_is_typed_error,
    stats_read_everything,
    oom_event_is_reported,
);

#[test]
fn v2_settings_are_written_in_v2_spelling() {
    let Some(l) = layout() else { return };
    let root = common::TestRoot::new(&l);
    let cg = root.child("spell");
    cg.apply(
        &Resources::builder()
            .cpu_weight(CpuWeight::Shares(1024))
            .cpu_quota(20_000, 100_000)
            .memory_limit(64 << 20)
            .memory_low(Limit::Value(8 << 20))
            .memory_high(Limit::Value(48 << 20))
            .pids_max(Limit::Value(10))
            .build()
            .unwrap(),
    )
    .unwrap();
    let d = cg.v2_dir().unwrap();
    let r = |f: &str| {
        std::fs::read_to_string(d.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(r("cpu.weight"), "39");
    assert_eq!(r("cpu.max"), "20000 100000");
    assert_eq!(r("memory.max"), (64u64 << 20).to_string());
    assert_eq!(r("memory.high"), (48u64 << 20).to_string());
    assert_eq!(r("pids.max"), "10");
    // Live update.
    cg.apply(&Resources::builder().pids_max(Limit::Max).build().unwrap())
        .unwrap();
    assert_eq!(r("pids.max"), "max");
    let s = cg.stats().unwrap();
    assert!(s.pressure.cpu.is_some() && s.pressure.memory.is_some());
    drop(cg);
    root.finish();
}

fn open_dev(path: &std::ffi::CStr) -> i32 {
    // SAFETY: path is NUL-terminated; the fd is closed at once.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return std::io::Error::last_os_error().raw_os_error().unwrap_or(-1);
    }
    // SAFETY: our own fd.
    unsafe { libc::close(fd) };
    0
}

/// Exit 0 when /dev/null opens and /dev/zero is refused with EPERM.
fn null_yes_zero_no() -> i32 {
    match (open_dev(c"/dev/null"), open_dev(c"/dev/zero")) {
        (0, libc::EPERM) => 0,
        (0, 0) => 10,
        (n, _) => 20 + n.min(100),
    }
}

/// Exit 0 when /dev/zero opens.
fn zero_yes() -> i32 {
    open_dev(c"/dev/zero")
}

fn exit_code(st: i32) -> i32 {
    if libc::WIFEXITED(st) {
        libc::WEXITSTATUS(st)
    } else {
        1000 + st
    }
}

#[test]
fn v2_device_rules_are_enforced_by_ebpf_and_replaced_on_update() {
    let Some(l) = layout() else { return };
    let root = common::TestRoot::new(&l);
    let cg = root.child("dev");
    let rule = |allow, kind, major, minor| DeviceRule {
        allow,
        kind,
        major,
        minor,
        read: true,
        write: true,
        mknod: true,
    };
    let r = Resources::builder()
        .device(rule(false, DeviceKind::All, None, None))
        .device(rule(true, DeviceKind::Char, Some(1), Some(3)))
        .build()
        .unwrap();
    cg.apply(&r).unwrap();
    let mut k = common::kid_in(&cg, null_yes_zero_no);
    assert_eq!(exit_code(k.wait()), 0);
    // Updating replaces the program: allowing everything lets /dev/zero open.
    let r = Resources::builder()
        .device(rule(true, DeviceKind::All, None, None))
        .build()
        .unwrap();
    cg.apply(&r).unwrap();
    let mut k = common::kid_in(&cg, zero_yes);
    assert_eq!(exit_code(k.wait()), 0, "old program still attached");
    drop(cg);
    root.finish();
}

#[test]
fn v2_rejects_what_it_cannot_honour() {
    let Some(l) = layout() else { return };
    let root = common::TestRoot::new(&l);
    let cg = root.child("unsup");
    let r = Resources::builder().swappiness(10).build().unwrap();
    assert!(matches!(cg.apply(&r), Err(Error::Unsupported { .. })));
    let r = Resources::builder()
        .cpu_realtime(1000, 10_000)
        .cpu_weight(CpuWeight::Weight(100))
        .build()
        .unwrap();
    assert!(matches!(cg.apply(&r), Err(Error::Unsupported { .. })));
    drop(cg);
    root.finish();
}

/// clone3(CLONE_INTO_CGROUP) with the directory fd starts the child inside.
#[test]
fn clone_into_cgroup_places_child() {
    let Some(l) = layout() else { return };
    let root = common::TestRoot::new(&l);
    let cg = root.child("clone");
    let fd = cg.dir_fd().unwrap();
    let pid = clone_into(fd.as_raw_fd());
    assert!(pid > 0, "clone3: {}", std::io::Error::last_os_error());
    assert_eq!(cg.procs().unwrap(), vec![pid]);
    cg.kill().unwrap();
    let mut st = 0;
    // SAFETY: reaps our own child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    drop(cg);
    root.finish();
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

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Forks with clone3 into the cgroup `fd`; the child sleeps until killed.
fn clone_into(fd: i32) -> i32 {
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: u64::try_from(libc::SIGCHLD).unwrap_or(17),
        cgroup: u64::try_from(fd).unwrap_or(u64::MAX),
        ..CloneArgs::default()
    };
    // SAFETY: args is a valid clone_args of the size passed; without
    // CLONE_VM the child gets a copy of our memory and only calls pause.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &raw const args,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r == 0 {
        loop {
            // SAFETY: pause has no arguments; the child waits for SIGKILL.
            unsafe { libc::pause() };
        }
    }
    i32::try_from(r).unwrap_or(-1)
}

#[test]
fn v2_nested_cgroup_gets_controllers_enabled() {
    let Some(l) = layout() else { return };
    let root = common::TestRoot::new(&l);
    let a = root.child("a");
    let b = a.child("b").unwrap();
    let sc = std::fs::read_to_string(a.v2_dir().unwrap().join("cgroup.subtree_control")).unwrap();
    for c in ["cpu", "memory", "pids"] {
        assert!(
            sc.split_whitespace().any(|x| x == c),
            "{c} not enabled: {sc}"
        );
    }
    b.apply(&Resources::builder().memory_limit(16 << 20).build().unwrap())
        .unwrap();
    drop(b);
    drop(a);
    root.finish();
}

#[test]
fn v2_enabling_controllers_under_a_busy_parent_is_a_typed_error() {
    let Some(l) = layout() else { return };
    let root = common::TestRoot::new(&l);
    let a = root.child("busy");
    let mut k = common::kid_in(&a, common::sleeper);
    // a holds a process: the no-internal-process rule forbids enabling
    // controllers for its children.
    match Cgroup::create(&l, &format!("{}/child", a.path())) {
        Err(Error::Write { path, .. }) => assert!(path.ends_with("cgroup.subtree_control")),
        other => panic!("expected a Write error, got {other:?}"),
    }
    assert!(!a.v2_dir().unwrap().join("child").exists());
    a.kill().unwrap();
    k.wait();
    drop(a);
    root.finish();
}

#[test]
fn v2_hugetlb_limit_and_stats() {
    let Some(l) = layout() else { return };
    if !l.is_v2(Controller::Hugetlb) {
        eprintln!("skipped: no hugetlb controller");
        return;
    }
    let root = common::TestRoot::with(&l, &{
        let mut c = l.default_controllers();
        c.insert(Controller::Hugetlb);
        c
    });
    let cg = root.child("huge");
    cg.apply(
        &Resources::builder()
            .hugetlb("2MB", Limit::Value(4 << 20))
            .build()
            .unwrap(),
    )
    .unwrap();
    let max = std::fs::read_to_string(cg.v2_dir().unwrap().join("hugetlb.2MB.max")).unwrap();
    assert_eq!(max.trim(), (4u64 << 20).to_string());
    let s = cg.stats().unwrap();
    let h = s
        .hugetlb
        .iter()
        .find(|h| h.page_size == "2MB")
        .expect("2MB stats");
    assert_eq!(h.limit, Limit::Value(4 << 20));
    assert_eq!(h.usage, 0);
    drop(cg);
    root.finish();
}

fn read_nullb0() -> i32 {
    use std::io::Read;
    let mut buf = vec![0u8; 1 << 20];
    match std::fs::File::open("/dev/nullb0").and_then(|mut f| f.read_exact(&mut buf)) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// io.max on a null_blk device (the CI step loads the module with `-k null_blk`).
#[test]
fn v2_io_max_and_weight_on_a_real_device() {
    let Some(l) = layout() else { return };
    let Ok(dev) = std::fs::read_to_string("/sys/block/nullb0/dev") else {
        eprintln!("skipped: no /dev/nullb0 (run with -k null_blk)");
        return;
    };
    let (a, b) = dev.trim().split_once(':').unwrap();
    let dev = hull_cgroup::DeviceNumber {
        major: a.parse().unwrap(),
        minor: b.parse().unwrap(),
    };
    let root = common::TestRoot::new(&l);
    let cg = root.child("io");
    cg.apply(
        &Resources::builder()
            .io_limit(dev, hull_cgroup::IoLimitKind::ReadBps, 1 << 20)
            .io_limit(dev, hull_cgroup::IoLimitKind::WriteIops, 100)
            .build()
            .unwrap(),
    )
    .unwrap();
    let max = std::fs::read_to_string(cg.v2_dir().unwrap().join("io.max")).unwrap();
    let line = max
        .lines()
        .find(|x| x.starts_with(&format!("{}:{} ", dev.major, dev.minor)))
        .expect("io.max line");
    assert!(
        line.contains("rbps=1048576") && line.contains("wiops=100"),
        "{line}"
    );
    // Reads by a process of an unthrottled cgroup show up in its io stats.
    let reader = root.child("reader");
    let mut k = common::kid_in(&reader, read_nullb0);
    assert!(libc::WIFEXITED(k.wait()));
    let io = reader.stats().unwrap().io;
    let d = io
        .iter()
        .find(|s| s.device == dev)
        .expect("nullb0 in io.stat");
    assert!(d.read_bytes >= 1 << 20 && d.read_ios > 0, "{d:?}");
    drop(reader);
    drop(cg);
    root.finish();
}
