//! Real cgroup tests on whatever layout the host has (v1 or hybrid here).
//! Every test works under its own `hull-test-<unique>` cgroup and checks
//! that nothing is left afterwards.

mod common;

use hull_cgroup::{Controller, Error, Layout, Mode, Resources};

fn layout() -> Option<Layout> {
    if !hull_testkit::is_root() {
        eprintln!("skipped: needs root");
        return None;
    }
    let l = Layout::detect().expect("detect layout");
    // Pure v2 hosts run the same exercises in the cgroup_v2 binary.
    if l.mode() == Mode::V2 {
        eprintln!("skipped: v2 host, see tests/cgroup_v2.rs");
        return None;
    }
    for c in [
        Controller::Cpu,
        Controller::Memory,
        Controller::Pids,
        Controller::Freezer,
    ] {
        if !l.has(c) {
            eprintln!("skipped: no {c} controller");
            return None;
        }
    }
    Some(l)
}

macro_rules! host_test {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            if let Some(l) = layout() {
                common::$name(&l);
            }
        }
    )*};
}

host_test!(
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
fn v1_memory_limit_below_usage_is_typed_error() {
    let Some(l) = layout() else { return };
    let root = common::TestRoot::new(&l);
    let cg = root.child("below");
    let mut k = common::kid_in(&cg, common::hold_24m);
    let t = std::time::Instant::now();
    while cg.memory_stats().unwrap().unwrap().usage < 24 << 20 {
        assert!(t.elapsed() < std::time::Duration::from_secs(20));
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let r = Resources::builder().memory_limit(1 << 20).build().unwrap();
    let e = cg.apply(&r);
    assert!(matches!(e, Err(Error::LimitBelowUsage { .. })), "{e:?}");
    cg.kill().unwrap();
    k.wait();
    drop(cg);
    root.finish();
}

#[test]
fn hybrid_host_creates_membership_in_unified_too() {
    let Some(l) = layout() else { return };
    if l.mode() != Mode::Hybrid {
        return;
    }
    let root = common::TestRoot::new(&l);
    let cg = root.child("uni");
    let v2 = cg.v2_dir().expect("unified dir").to_path_buf();
    assert!(v2.is_dir());
    let mut k = common::kid_in(&cg, common::sleeper);
    let procs = std::fs::read_to_string(v2.join("cgroup.procs")).unwrap();
    assert_eq!(procs.trim(), k.pid.to_string());
    // The unified directory's fd is what CLONE_INTO_CGROUP takes.
    let _fd = cg.dir_fd().unwrap();
    cg.kill().unwrap();
    k.wait();
    drop(cg);
    root.finish();
}

#[test]
fn v1_device_rules_apply() {
    let Some(l) = layout() else { return };
    if !l.has(Controller::Devices) {
        return;
    }
    let root = common::TestRoot::new(&l);
    let cg = root.child("dev");
    let rule = |allow, kind, major, minor| hull_cgroup::DeviceRule {
        allow,
        kind,
        major,
        minor,
        read: true,
        write: true,
        mknod: true,
    };
    let r = Resources::builder()
        .device(rule(false, hull_cgroup::DeviceKind::All, None, None))
        .device(rule(true, hull_cgroup::DeviceKind::Char, Some(1), Some(3)))
        .build()
        .unwrap();
    cg.apply(&r).unwrap();
    let list =
        std::fs::read_to_string(cg.dir_of(Controller::Devices).unwrap().join("devices.list"))
            .unwrap();
    assert_eq!(list.trim(), "c 1:3 rwm");
    drop(cg);
    root.finish();
}

#[test]
fn v1_thread_moves_alone() {
    let Some(l) = layout() else { return };
    let root = common::TestRoot::new(&l);
    let a = root.child("ta");
    let b = root.child("tb");
    let mut k = common::kid_in(&a, common::threaded_sleeper);
    // Wait for the kid's second thread.
    let t = std::time::Instant::now();
    let tid = loop {
        let tids: Vec<i32> = std::fs::read_dir(format!("/proc/{}/task", k.pid))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|t| *t != k.pid)
            .collect();
        if let Some(t) = tids.first() {
            break *t;
        }
        assert!(t.elapsed() < std::time::Duration::from_secs(10));
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    b.add_thread(tid).unwrap();
    let tasks = |cg: &hull_cgroup::Cgroup| {
        std::fs::read_to_string(cg.dir_of(Controller::Memory).unwrap().join("tasks")).unwrap()
    };
    assert_eq!(tasks(&b).trim(), tid.to_string());
    assert_eq!(tasks(&a).trim(), k.pid.to_string());
    root.cg.kill().unwrap();
    k.wait();
    drop((a, b));
    root.finish();
}

#[test]
fn hybrid_stats_include_pressure_from_unified() {
    let Some(l) = layout() else { return };
    if l.mode() != Mode::Hybrid {
        return;
    }
    let root = common::TestRoot::new(&l);
    let psi = root.cg.v2_dir().unwrap().join("cpu.pressure");
    // PSI may be off on the kernel command line; then there is nothing to see.
    if std::fs::read_to_string(&psi).is_err() {
        root.finish();
        return;
    }
    let s = root.cg.stats().unwrap();
    assert!(s.pressure.cpu.is_some(), "{s:?}");
    root.finish();
}

/// Every v1 setting this host has, applied, read back and updated live.
#[test]
fn v1_resources_apply_and_update_live() {
    let Some(l) = layout() else { return };
    use hull_cgroup::{CpuWeight, IoLimitKind, IoWeight, Limit};
    let root = common::TestRoot::new(&l);
    let cg = root.child("res");
    let r = Resources::builder()
        .cpu_weight(CpuWeight::Weight(100))
        .cpu_quota(20_000, 50_000)
        .cpu_burst(10_000)
        .memory_limit(128 << 20)
        .memory_low(Limit::Value(16 << 20))
        .swappiness(30)
        .oom_kill_disable(false)
        .pids_max(Limit::Value(50))
        .frozen(false)
        .build()
        .unwrap();
    cg.apply(&r).unwrap();
    let read = |c: Controller, f: &str| {
        std::fs::read_to_string(cg.dir_of(c).unwrap().join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(
        read(Controller::Cpu, "cpu.shares"),
        hull_cgroup::resources::weight_to_shares(100).to_string()
    );
    assert_eq!(read(Controller::Cpu, "cpu.cfs_quota_us"), "20000");
    assert_eq!(read(Controller::Cpu, "cpu.cfs_period_us"), "50000");
    assert_eq!(read(Controller::Cpu, "cpu.cfs_burst_us"), "10000");
    assert_eq!(
        read(Controller::Memory, "memory.limit_in_bytes"),
        (128u64 << 20).to_string()
    );
    assert_eq!(
        read(Controller::Memory, "memory.soft_limit_in_bytes"),
        (16u64 << 20).to_string()
    );
    assert_eq!(read(Controller::Memory, "memory.swappiness"), "30");
    assert_eq!(read(Controller::Pids, "pids.max"), "50");
    // Live update, and removing limits again.
    cg.apply(
        &Resources::builder()
            .cpu_unlimited()
            .memory_limit_opt(Limit::Max)
            .pids_max(Limit::Max)
            .build()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(read(Controller::Cpu, "cpu.cfs_quota_us"), "-1");
    assert_eq!(read(Controller::Pids, "pids.max"), "max");
    let m = cg.memory_stats().unwrap().unwrap();
    assert_eq!(m.limit, Some(Limit::Max));
    // Block I/O throttles on a device that exists here.
    if l.has(Controller::Io) {
        let dev = std::fs::read_dir("/sys/dev/block")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| {
                let (a, b) = n.split_once(':')?;
                Some(hull_cgroup::DeviceNumber {
                    major: a.parse().ok()?,
                    minor: b.parse().ok()?,
                })
            })
            .find(|d| d.minor == 0);
        if let Some(dev) = dev {
            let r = Resources::builder()
                .io_limit(dev, IoLimitKind::ReadBps, 1 << 20)
                .io_limit(dev, IoLimitKind::WriteIops, 100)
                .build()
                .unwrap();
            match cg.apply(&r) {
                Ok(()) => assert_eq!(
                    read(Controller::Io, "blkio.throttle.read_bps_device"),
                    format!("{}:{} {}", dev.major, dev.minor, 1 << 20)
                ),
                // Throttling partitions or virtual devices can be refused.
                Err(Error::Write { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
        let w = Resources::builder()
            .io_weight(IoWeight::Io(100))
            .build()
            .unwrap();
        match cg.apply(&w) {
            Ok(()) | Err(Error::MissingControlFile { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    drop(cg);
    root.finish();
}

#[test]
fn existing_cgroup_is_not_removed_by_a_second_handle() {
    let Some(l) = layout() else { return };
    let root = common::TestRoot::new(&l);
    let again = hull_cgroup::Cgroup::create(&l, root.cg.path()).unwrap();
    drop(again);
    assert!(root.cg.dirs().all(|d| d.is_dir()));
    let opened = hull_cgroup::Cgroup::open(&l, root.cg.path(), &l.default_controllers()).unwrap();
    assert!(opened.procs().unwrap().is_empty());
    drop(opened);
    assert!(root.cg.dirs().all(|d| d.is_dir()));
    assert!(matches!(
        hull_cgroup::Cgroup::open(&l, "hull-test-does-not-exist", &l.default_controllers()),
        Err(Error::Open { .. })
    ));
    root.finish();
}

#[test]
fn delete_with_live_task_fails_fast_and_names_the_directory() {
    let Some(l) = layout() else { return };
    let root = common::TestRoot::new(&l);
    let mut cg = root.child("live");
    let mut k = common::kid_in(&cg, common::sleeper);
    let t = std::time::Instant::now();
    match cg.delete() {
        Err(Error::Remove { path, source }) => {
            assert_eq!(source.raw_os_error(), Some(libc::EBUSY));
            assert!(path.ends_with("live"), "{}", path.display());
        }
        other => panic!("expected Remove, got {other:?}"),
    }
    assert!(
        t.elapsed() < std::time::Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    cg.kill().unwrap();
    k.wait();
    cg.delete().unwrap();
    drop(cg);
    root.finish();
}

#[test]
fn v1_realtime_budget_is_applied_where_the_kernel_has_it() {
    let Some(l) = layout() else { return };
    let root = common::TestRoot::new(&l);
    let rt = Resources::builder()
        .cpu_realtime(20_000, 1_000_000)
        .build()
        .unwrap();
    match root.cg.apply(&rt) {
        // Without CONFIG_RT_GROUP_SCHED the files are missing: a typed error.
        Err(Error::MissingControlFile { path }) => {
            assert!(path.ends_with("cpu.rt_period_us") || path.ends_with("cpu.rt_runtime_us"));
        }
        Err(e) => panic!("{e}"),
        Ok(()) => {
            let cg = root.child("rt");
            cg.apply(
                &Resources::builder()
                    .cpu_realtime(10_000, 1_000_000)
                    .build()
                    .unwrap(),
            )
            .unwrap();
            let got = std::fs::read_to_string(
                cg.dir_of(Controller::Cpu)
                    .unwrap()
                    .join("cpu.rt_runtime_us"),
            )
            .unwrap();
            assert_eq!(got.trim(), "10000");
            // More than the parent has is refused by the kernel, as a typed write error.
            let too_much = Resources::builder()
                .cpu_realtime(50_000, 1_000_000)
                .build()
                .unwrap();
            assert!(matches!(cg.apply(&too_much), Err(Error::Write { .. })));
            drop(cg);
        }
    }
    root.finish();
}
