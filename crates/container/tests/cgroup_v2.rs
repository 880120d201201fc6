//! Containers on a cgroup2-only machine, for real (the v2vm guest; see
//! .ci/steps.d/v2vm.sh): born in their cgroup by CLONE_INTO_CGROUP,
//! limits visible inside, freeze, stats, exec and delete (with `no_pivot`:
//! the guest runs from an initramfs). Skips where the
//! root cgroup is not cgroup2 with controllers, as on a v1 or hybrid host.

use std::path::{Path, PathBuf};

use hull_cgroup::{Limit, Resources};
use hull_container::{Rootfs, Status};

mod common;

use common::{Runtime, exec_output, run_output};

fn v2_host() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// A root file system of busybox alone, removed on drop.
struct Busybox(PathBuf);

impl Busybox {
    fn new() -> Busybox {
        let dir = std::env::temp_dir().join(hull_testkit::unique_name("hull-v2-root-"));
        for d in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
        for app in ["sh", "cat", "sleep", "echo", "grep"] {
            std::os::unix::fs::symlink("busybox", dir.join("bin").join(app)).unwrap();
        }
        Busybox(dir)
    }
}

impl Drop for Busybox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn limits() -> Resources {
    Resources::builder()
        .memory_limit(64 << 20)
        .pids_max(Limit::Value(32))
        .build()
        .unwrap()
}

#[test]
fn container_is_born_in_its_v2_cgroup_with_its_limits() {
    if !v2_host() {
        eprintln!("skipped: not a cgroup2 host");
        return;
    }
    let root = Busybox::new();
    let rt = Runtime::new();
    let (s, out) = run_output(
        rt.builder("v2a")
            .rootfs(Rootfs::Dir(root.0.clone()))
            // The guest's root is its initramfs, which pivot_root refuses.
            .no_pivot(true)
            .resources(limits())
            .args([
                "sh",
                "-c",
                "cat /proc/self/cgroup /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max",
            ]),
    );
    assert!(s.success(), "{s}: {out}");
    assert_eq!(out, "0::/\n67108864\n32\n");
    assert!(rt.is_empty());
}

#[test]
fn pause_stats_exec_and_delete_on_v2() {
    if !v2_host() {
        eprintln!("skipped: not a cgroup2 host");
        return;
    }
    let root = Busybox::new();
    let rt = Runtime::new();
    let mut c = rt
        .builder("v2b")
        .rootfs(Rootfs::Dir(root.0.clone()))
        // The guest's root is its initramfs, which pivot_root refuses.
        .no_pivot(true)
        .resources(limits())
        .args(["sleep", "100"])
        .build()
        .unwrap()
        .create()
        .unwrap();
    let dir = c.cgroup().unwrap().v2_dir().unwrap().to_path_buf();
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
    assert_eq!(procs.trim(), c.pid().unwrap().to_string());
    c.start().unwrap();
    c.pause().unwrap();
    assert_eq!(c.status(), Status::Paused);
    c.resume().unwrap();
    assert_eq!(c.status(), Status::Running);
    let stats = c.stats().unwrap();
    assert!(format!("{stats:?}").contains("memory"), "{stats:?}");
    let (status, out) = exec_output(&mut c, &["cat", "/proc/self/cgroup"]);
    assert!(status.success());
    assert_eq!(out, "0::/\n");
    c.delete().unwrap();
    assert!(!dir.exists());
    assert!(rt.is_empty());
}
