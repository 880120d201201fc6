//! Test helpers for hull's integration tests (not published).
//!
//! - [`in_child`] runs a closure in a forked child inside fresh namespaces, so
//!   a test can mount, unshare and change hostnames without touching the host.
//! - [`unique_name`] gives names no other test (or test run) will use.
//! - [`Snapshot`] records what a test could leak (mounts, cgroup directories,
//!   named network namespaces, links) so it can be compared afterwards.
//!
//! Tests run as root on the real kernel; nothing here mocks it.

#![allow(unsafe_code)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Namespace flags for [`in_child`], re-exported from libc for convenience.
pub use libc::{
    CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER,
    CLONE_NEWUTS,
};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call, e.g. `hull-test-1234-7-prefix`.
///
/// Short enough (with a short prefix) to serve as an interface name: keep the
/// prefix under 4 bytes when the result must fit in 15.
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}x{n}", std::process::id())
}

/// Runs `f` in a forked child that first unshares `flags` (libc `CLONE_NEW*`
/// bits; `CLONE_NEWNS` also makes `/` recursively private there).
///
/// The child's result, or its panic message, comes back to the caller: an
/// `Err` or a panic in the child makes this function panic with that
/// message, so a test fails with the real reason. The child exits with
/// `_exit`, so nothing it did (mounts in its namespace, its hostname)
/// outlives it.
///
/// `CLONE_NEWPID` applies to the children of the child, not to the child
/// itself (as with unshare(2)); `f` runs in the old pid namespace.
pub fn in_child<F>(flags: libc::c_int, f: F)
where
    F: FnOnce() -> Result<(), String>,
{
    let (mut rd, wr) = pipe();
    // SAFETY: fork has no memory-safety preconditions; the child only runs
    // the test closure and leaves through _exit, never returning into the
    // test harness. glibc's malloc is fork-safe, which the closure relies on.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        panic!("fork: {}", std::io::Error::last_os_error());
    }
    if pid == 0 {
        drop(rd);
        let mut wr = std::fs::File::from(wr);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            setup_child(flags)?;
            f()
        }));
        let (code, msg) = match outcome {
            Ok(Ok(())) => (0, String::new()),
            Ok(Err(e)) => (1, e),
            Err(p) => (
                2,
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_string()))
                    .unwrap_or_else(|| "panic".into()),
            ),
        };
        let _ = wr.write_all(msg.as_bytes());
        drop(wr);
        // SAFETY: _exit ends the child without running the parent's atexit
        // handlers or destructors.
        unsafe { libc::_exit(code) };
    }
    drop(wr);
    let mut msg = String::new();
    let _ = rd.read_to_string(&mut msg);
    let status = wait_pid(pid);
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        return;
    }
    if libc::WIFSIGNALED(status) {
        panic!("test child killed by signal {}", libc::WTERMSIG(status));
    }
    panic!("test child failed: {msg}");
}

fn setup_child(flags: libc::c_int) -> Result<(), String> {
    if flags != 0 {
        // SAFETY: unshare with namespace flags only; no fd table or VM is split.
        if unsafe { libc::unshare(flags) } != 0 {
            return Err(format!(
                "unshare({flags:#x}): {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    if flags & libc::CLONE_NEWNS != 0 {
        make_root_private()?;
    }
    Ok(())
}

/// Makes `/` recursively private in the current mount namespace, so mounts
/// made here never propagate to the host.
pub fn make_root_private() -> Result<(), String> {
    // SAFETY: the strings are NUL-terminated literals; no data pointer.
    let rc = unsafe {
        libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(format!(
            "make / private: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn pipe() -> (std::fs::File, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints for pipe2 to fill.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody else.
    unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            OwnedFd::from_raw_fd(fds[1]),
        )
    }
}

fn wait_pid(pid: libc::pid_t) -> libc::c_int {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out pointer; pid is our own child.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            return status;
        }
        let err = std::io::Error::last_os_error();
        assert_eq!(err.raw_os_error(), Some(libc::EINTR), "waitpid: {err}");
    }
}

/// What a test could leave behind on the host, recorded at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Mount points of this process's mount namespace.
    pub mounts: BTreeSet<String>,
    /// Named network namespaces under /run/netns.
    pub netns: BTreeSet<String>,
    /// Network interfaces of this process's network namespace.
    pub links: BTreeSet<String>,
    /// Directories under the cgroup roots given to [`Snapshot::take_with_cgroups`].
    pub cgroups: BTreeSet<PathBuf>,
}

impl Snapshot {
    /// Records mounts, named netns and links.
    pub fn take() -> Self {
        Self::take_with_cgroups(&[])
    }

    /// Records mounts, named netns, links and every directory below each of
    /// `cgroup_roots` (test-owned cgroup parents).
    pub fn take_with_cgroups(cgroup_roots: &[&Path]) -> Self {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .collect();
        let netns = list_dir(Path::new("/run/netns"));
        let links = list_dir(Path::new("/sys/class/net"));
        let mut cgroups = BTreeSet::new();
        for root in cgroup_roots {
            walk_dirs(root, &mut cgroups);
        }
        Snapshot {
            mounts,
            netns,
            links,
            cgroups,
        }
    }

    /// Panics, naming what differs, if `later` is not the same as `self`.
    pub fn assert_unchanged(&self, later: &Snapshot) {
        let mut diffs = Vec::new();
        diff_sets("mount", &self.mounts, &later.mounts, &mut diffs);
        diff_sets("netns", &self.netns, &later.netns, &mut diffs);
        diff_sets("link", &self.links, &later.links, &mut diffs);
        diff_sets("cgroup", &self.cgroups, &later.cgroups, &mut diffs);
        assert!(diffs.is_empty(), "leaked or lost: {}", diffs.join(", "));
    }

    /// Takes a new snapshot (with the same cgroup roots) and asserts that
    /// nothing changed since `self`.
    pub fn assert_no_leaks(&self, cgroup_roots: &[&Path]) {
        self.assert_unchanged(&Snapshot::take_with_cgroups(cgroup_roots));
    }
}

fn diff_sets<T: Ord + std::fmt::Debug>(
    what: &str,
    before: &BTreeSet<T>,
    after: &BTreeSet<T>,
    out: &mut Vec<String>,
) {
    for x in after.difference(before) {
        out.push(format!("new {what} {x:?}"));
    }
    for x in before.difference(after) {
        out.push(format!("gone {what} {x:?}"));
    }
}

fn list_dir(p: &Path) -> BTreeSet<String> {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn walk_dirs(p: &Path, out: &mut BTreeSet<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(p) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            let path = e.path();
            walk_dirs(&path, out);
            out.insert(path);
        }
    }
}

/// The in-container probe: a small static binary (std only) that prints,
/// as one JSON object, what a process sees from inside a container:
/// hostname, ids and maps, capabilities, no_new_privs, namespaces, mounts,
/// open fds, cgroups, limits, cwd, environment and arguments.
///
/// Built once per source version with the toolchain's `rustc` (statically
/// linked, so it runs in any root file system) into the system temp
/// directory; returns its path. Panics, naming the compiler's output, if it
/// cannot be built.
pub fn probe_binary() -> PathBuf {
    use std::sync::OnceLock;
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let src = include_str!("../probe/hull-probe.rs");
        let hash = src.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let dir = std::env::temp_dir().join(format!("hull-probe-{hash:016x}"));
        let bin = dir.join("hull-probe");
        if bin.exists() {
            return bin;
        }
        std::fs::create_dir_all(&dir).expect("probe build dir");
        let src_path = dir.join("hull-probe.rs");
        std::fs::write(&src_path, src).expect("probe source");
        let tmp = dir.join(format!("hull-probe.{}", std::process::id()));
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let out = std::process::Command::new(rustc)
            .args([
                "--edition",
                "2021",
                "-O",
                "-C",
                "target-feature=+crt-static",
                "-o",
            ])
            .arg(&tmp)
            .arg(&src_path)
            .output()
            .expect("run rustc for the probe");
        assert!(
            out.status.success(),
            "building the probe failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Renamed into place: concurrent test binaries never see half a file.
        std::fs::rename(&tmp, &bin).expect("install probe");
        bin
    })
    .clone()
}

/// True when the process runs as root (uid 0). Integration tests that need
/// root print a line and return early otherwise.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Where busybox-static is installed (Debian's `busybox-static`).
pub const BUSYBOX: &str = "/bin/busybox";

/// Fills `dir` with a minimal root file system made of the static busybox
/// at [`BUSYBOX`]: `/bin/busybox` with a link per applet in `/bin`, an
/// `/etc/passwd` and `/etc/group` with `root` and `app` (1000:1000), and
/// empty `/proc`, `/sys`, `/dev`, `/tmp` (1777), `/root`, `/home/app` and
/// `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf` as mount points.
/// Nothing is downloaded. Fails if busybox is not installed.
pub fn busybox_rootfs(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let e = |what: &str, err: std::io::Error| format!("{what}: {err}");
    let list = std::process::Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .map_err(|err| e(BUSYBOX, err))?;
    if !list.status.success() {
        return Err(format!("{BUSYBOX} --list failed"));
    }
    for d in [
        "bin", "etc", "proc", "sys", "dev", "tmp", "root", "home/app", "var", "run",
    ] {
        std::fs::create_dir_all(dir.join(d)).map_err(|err| e(d, err))?;
    }
    std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777))
        .map_err(|err| e("tmp", err))?;
    std::fs::copy(BUSYBOX, dir.join("bin/busybox")).map_err(|err| e("bin/busybox", err))?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet))
            .map_err(|err| e(applet, err))?;
    }
    std::os::unix::fs::symlink("bin", dir.join("sbin")).map_err(|err| e("sbin", err))?;
    let files = [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
        ),
        ("etc/group", "root:x:0:\napp:x:1000:\n"),
        ("etc/hosts", ""),
        ("etc/hostname", ""),
        ("etc/resolv.conf", ""),
    ];
    for (f, text) in files {
        std::fs::write(dir.join(f), text).map_err(|err| e(f, err))?;
    }
    std::os::unix::fs::chown(dir.join("home/app"), Some(1000), Some(1000))
        .map_err(|err| e("home/app", err))?;
    Ok(())
}

/// Every mounted cgroup hierarchy's root: each v1 controller's and the
/// unified one on a v1 or hybrid host, /sys/fs/cgroup on a cgroup2-only one.
pub fn cgroup_hierarchies() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut v: Vec<PathBuf> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("cgroup.procs").exists())
        .collect();
    if root.join("cgroup.procs").exists() {
        v.push(root.into());
    }
    v
}

/// Removes the (empty) test-owned cgroup `name` right under every
/// hierarchy's root, best effort.
pub fn remove_cgroup_parent(name: &str) {
    for h in cgroup_hierarchies() {
        let _ = std::fs::remove_dir(h.join(name));
    }
}
