//! The security properties of the design, one regression test each, named
//! after the property (S1..S14) or the CVE it guards against.

use std::os::fd::AsRawFd;

use hull_container::{Error, Mount};

mod common;

use common::{Runtime, run_output as output};

#[test]
fn s2_no_host_fd_leaks_into_the_container() {
    require_root!();
    let rt = Runtime::new();
    // An fd without close-on-exec in the caller must not reach the program.
    let f = std::fs::File::open("/etc/hostname").unwrap();
    // SAFETY: clearing FD_CLOEXEC on an fd we own.
    unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETFD, 0) };
    let (s, out) = output(rt.builder("fds").args(["sh", "-c", "ls /proc/self/fd"]));
    assert!(s.success());
    let fds: Vec<&str> = out.split_whitespace().collect();
    // 0, 1, 2 and the fd ls itself opened to list the directory.
    assert_eq!(fds, ["0", "1", "2", "3"], "{out}");
}

#[test]
fn cve_2024_21626_no_host_fd_in_container() {
    require_root!();
    let rt = Runtime::new();
    // A host directory open in the caller: a cwd through /proc/self/fd/N
    // would put the program in it, outside its root.
    let dir = std::fs::File::open("/etc").unwrap();
    let fd = dir.as_raw_fd();
    let err = rt
        .builder("cwd")
        .cwd(format!("/proc/self/fd/{fd}"))
        .args(["pwd"])
        .build()
        .unwrap()
        .create()
        .unwrap_err();
    assert!(err.to_string().contains("change directory"), "{err}");
    assert!(
        std::fs::read_dir(&rt.0).unwrap().next().is_none(),
        "runtime dir left behind"
    );
}

#[test]
fn cve_2019_16884_procfs_writes_reach_the_real_procfs() {
    require_root!();
    let rt = Runtime::new();
    // A volume mounted over a /proc/sys file must not receive the sysctl.
    let fake = rt.0.join("fake-ip-forward");
    std::fs::write(&fake, "untouched").unwrap();
    let err = rt
        .builder("procfs")
        .mount(Mount::bind(&fake, "/proc/sys/net/ipv4/ip_forward"))
        .sysctl("net.ipv4.ip_forward", "1")
        .args(["true"])
        .build()
        .unwrap()
        .create()
        .unwrap_err();
    assert!(
        err.to_string().contains("/proc/sys/net/ipv4/ip_forward"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&fake).unwrap(), "untouched");
    // Without the trick, the sysctl is set inside the container only.
    let (s, out) = output(
        rt.builder("procfs2")
            .sysctl("net.ipv4.ip_forward", "1")
            .args(["cat", "/proc/sys/net/ipv4/ip_forward"]),
    );
    assert!(s.success());
    assert_eq!(out.trim(), "1");
}

#[test]
fn cve_2025_31133_masked_paths_use_the_real_null_device() {
    require_root!();
    let rt = Runtime::new();
    // A regular file bound over /dev/null must not become the mask source.
    let fake = rt.0.join("fake-null");
    std::fs::write(&fake, "secret").unwrap();
    let err = rt
        .builder("mask")
        .mount(Mount::bind(&fake, "/dev/null"))
        .masked_paths(["/proc/cmdline"])
        .args(["true"])
        .build()
        .unwrap()
        .create()
        .unwrap_err();
    assert!(matches!(err, Error::Process { .. }), "{err:?}");
    assert!(err.to_string().contains("/proc/cmdline"), "{err}");
    // Masking works with the real one.
    let (s, out) = output(
        rt.builder("mask2")
            .masked_paths(["/proc/cmdline", "/proc/sys/fs"])
            .args(["sh", "-c", "wc -c < /proc/cmdline; ls /proc/sys/fs | wc -l"]),
    );
    assert!(s.success());
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["0", "0"]);
}

#[test]
fn cve_2022_29162_empty_inheritable_capabilities() {
    require_root!();
    let rt = Runtime::new();
    let (s, out) = output(
        rt.builder("caps")
            .args(["grep", "^Cap", "/proc/self/status"]),
    );
    assert!(s.success());
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(field("CapInh:"), "0000000000000000");
    assert_eq!(field("CapAmb:"), "0000000000000000");
    assert_eq!(field("CapBnd:"), "00000000a80425fb");
    assert_eq!(field("CapEff:"), "00000000a80425fb");
}

#[test]
fn cve_2022_0492_private_cgroup_namespace() {
    require_root!();
    let rt = Runtime::new();
    let (s, out) = output(rt.builder("cgns").args(["cat", "/proc/self/cgroup"]));
    assert!(s.success());
    for line in out.lines() {
        assert!(line.ends_with(":/"), "{line}");
    }
}

#[test]
fn s10_new_session_without_controlling_terminal() {
    require_root!();
    let rt = Runtime::new();
    let (s, out) = output(rt.builder("sid").args(["cat", "/proc/self/stat"]));
    assert!(s.success());
    // Fields after the command: state ppid pgrp session tty_nr.
    let rest = out.rsplit_once(')').unwrap().1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    assert_eq!(f[3], "1", "session is the container's PID 1: {out}");
    assert_eq!(f[4], "0", "no controlling terminal: {out}");
}

#[test]
fn s11_no_new_privs() {
    require_root!();
    let rt = Runtime::new();
    let (_, out) = output(
        rt.builder("nnp")
            .args(["grep", "NoNewPrivs", "/proc/self/status"]),
    );
    assert_eq!(out.trim(), "NoNewPrivs:\t1");
    let (_, out) = output(rt.builder("nnp2").no_new_privs(false).args([
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ]));
    assert_eq!(out.trim(), "NoNewPrivs:\t0");
}

#[test]
fn s11_seccomp_filter_installed_last() {
    use hull_container::seccomp::{Action, Seccomp};
    require_root!();
    let rt = Runtime::new();
    let profile = Seccomp::new(Action::Allow).rule(["mkdir", "mkdirat"], Action::Errno(38));
    let script =
        "mkdir /tmp/x 2>/dev/null; echo rc=$?; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status";
    let (s, out) = output(
        rt.builder("sc")
            .mount(Mount::Tmpfs {
                destination: "/tmp".into(),
                size: 0,
            })
            .seccomp(profile.clone())
            .args(["sh", "-c", script]),
    );
    assert!(s.success(), "{s}: {out}");
    assert_eq!(out, "rc=1\nNoNewPrivs:\t1\nSeccomp:\t2\n");
    // Without no_new_privs it goes in before the capabilities are dropped.
    let (s, out) = output(
        rt.builder("sc2")
            .no_new_privs(false)
            .seccomp(profile)
            .args(["sh", "-c", script]),
    );
    assert!(s.success(), "{s}: {out}");
    assert_eq!(out, "rc=1\nNoNewPrivs:\t0\nSeccomp:\t2\n");
    // A profile that forbids execve fails the start with an error, and
    // leaves nothing behind.
    let denied = Seccomp::new(Action::Allow).rule(["execve"], Action::Errno(1));
    let mut c = rt
        .builder("sc3")
        .seccomp(denied)
        .args(["true"])
        .build()
        .unwrap()
        .create()
        .unwrap();
    let started = c.start();
    let status = c.wait();
    assert!(
        started.is_err() || !status.as_ref().unwrap().success(),
        "{started:?} {status:?}"
    );
    c.delete().unwrap();
    assert!(rt.is_empty());
}

#[test]
fn s11_exec_gets_the_seccomp_filter() {
    use hull_container::seccomp::{Action, Seccomp};
    require_root!();
    let rt = Runtime::new();
    let mut c = common::started(
        rt.builder("sce")
            .seccomp(Seccomp::new(Action::Allow).rule(["mkdir", "mkdirat"], Action::Errno(38)))
            .args(["sleep", "100"]),
    );
    let (status, out) = common::exec_output(
        &mut c,
        &[
            "sh",
            "-c",
            "mkdir /x 2>/dev/null; echo rc=$?; grep Seccomp: /proc/self/status",
        ],
    );
    assert!(status.success());
    assert_eq!(out, "rc=1\nSeccomp:\t2\n");
    c.delete().unwrap();
}

#[test]
fn cve_2019_5736_no_handle_to_the_runtime_binary() {
    require_root!();
    let rt = Runtime::new();
    let me = std::env::current_exe().unwrap();
    let (s, out) = output(rt.builder("exe").args([
        "sh",
        "-c",
        "for p in /proc/[0-9]*; do readlink $p/exe; ls -l $p/fd 2>/dev/null | sed 's/.*-> //'; done",
    ]));
    assert!(s.success());
    assert!(
        !out.contains(&*me.to_string_lossy()),
        "runtime binary visible: {out}"
    );
}

#[test]
fn s12_containers_from_busy_threads_never_deadlock() {
    require_root!();
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let rt = Runtime::new();
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0u8..8)
        .map(|i| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut keep = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    keep.push(vec![i; 100 + keep.len() % 1000]);
                    if keep.len() > 100 {
                        keep.clear();
                    }
                }
            })
        })
        .collect();
    for i in 0..50 {
        let mut c = common::started(rt.builder(&format!("busy{i}")).args(["true"]));
        assert!(c.wait().unwrap().success());
        c.delete().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn s13_no_signal_after_the_process_is_reaped() {
    require_root!();
    let rt = Runtime::new();
    let mut c = common::started(rt.builder("reaped").args(["true"]));
    c.wait().unwrap();
    // The pid may be reused by now; the container refuses to signal it.
    assert!(matches!(c.kill(libc::SIGKILL), Err(Error::State { .. })));
}

#[test]
fn cve_2021_30465_mount_targets_resolved_inside_the_root() {
    require_root!();
    if !std::path::Path::new("/bin/busybox").exists() {
        eprintln!("skipped: busybox-static not installed");
        return;
    }
    let rt = Runtime::new();
    // A hostile root file system: /dev is a symlink to a host directory.
    let escape = rt.0.join("host-dir");
    std::fs::create_dir_all(&escape).unwrap();
    let rootfs = rt.0.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
    std::os::unix::fs::symlink(&escape, rootfs.join("dev")).unwrap();
    let err = rt
        .builder("escape")
        .rootfs(hull_container::Rootfs::Dir(rootfs.clone()))
        .args(["sh", "-c", "true"])
        .build()
        .unwrap()
        .create()
        .unwrap_err();
    // Resolved inside the root, the link leads nowhere: a typed error naming
    // the target, and nothing made in the host directory it pointed at.
    assert!(err.to_string().contains("dev"), "{err}");
    assert!(
        std::fs::read_dir(&escape).unwrap().next().is_none(),
        "wrote outside the root"
    );
}
