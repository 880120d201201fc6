//! Helpers for driving the built `hull` binary: a test-owned state root,
//! cgroup parent and busybox bundle, all removed afterwards.

#![allow(dead_code)] // each test binary uses a different part

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use hull_testkit::unique_name;
use serde_json::Value;

/// Returns early (the test passes) unless root with busybox-static.
#[macro_export]
macro_rules! require_root {
    () => {
        if !hull_testkit::is_root() || !std::path::Path::new("/bin/busybox").exists() {
            eprintln!("skipped: needs root and busybox-static");
            return;
        }
    };
}

/// The built binary.
pub const HULL: &str = env!("CARGO_BIN_EXE_hull");

/// What a run of the binary gave.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` with stdin from /dev/null and stdout/stderr to files in `dir`
/// (removed again), not pipes: a created container keeps them open.
pub fn output_via_files(cmd: &mut Command, dir: &Path) -> Out {
    let n = unique_name("out-");
    let (o, e) = (dir.join(format!("{n}.1")), dir.join(format!("{n}.2")));
    let status = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .status()
        .unwrap();
    let out = Out {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(&o).unwrap_or_default(),
        stderr: std::fs::read_to_string(&e).unwrap_or_default(),
    };
    let _ = std::fs::remove_file(o);
    let _ = std::fs::remove_file(e);
    out
}

/// A test sandbox: a directory with the state root and bundles, and a
/// cgroup parent at an absolute path of its own name.
pub struct Sandbox {
    pub dir: PathBuf,
    pub name: String,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let name = unique_name("hull-cli-");
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        Sandbox { dir, name }
    }

    /// The `--root` for hull.
    pub fn root(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// Runs `hull --root <root> args...` with stdin from /dev/null and
    /// stdout/stderr to files (a created container keeps them open).
    pub fn hull(&self, args: &[&str]) -> Out {
        self.hull_with(&["--root", self.root().to_str().unwrap()], args)
    }

    /// Runs hull with `global` flags before `args`. On a machine whose root
    /// is an initramfs (the v2vm guest), where pivot_root cannot work,
    /// `create` and `run` get `--no-pivot`, as runc needs there too.
    pub fn hull_with(&self, global: &[&str], args: &[&str]) -> Out {
        let mut args = args.to_vec();
        if root_is_initramfs() && matches!(args.first(), Some(&"create" | &"run")) {
            args.insert(1, "--no-pivot");
        }
        output_via_files(Command::new(HULL).args(global).args(args), &self.dir)
    }

    /// The container's state JSON (panics unless `state` succeeds).
    pub fn state(&self, id: &str) -> Value {
        let o = self.hull(&["state", id]);
        assert_eq!(o.code, 0, "state {id}: {o:?}");
        serde_json::from_str(&o.stdout).unwrap()
    }

    /// A bundle directory with a busybox rootfs and hull's default spec
    /// changed by `edit`: no terminal, and an absolute cgroupsPath under
    /// this sandbox's cgroup parent.
    pub fn bundle(&self, id: &str, args: &[&str], edit: impl FnOnce(&mut Value)) -> PathBuf {
        let b = self.dir.join(format!("bundle-{id}"));
        busybox_rootfs(&b.join("rootfs"));
        let o = Command::new(HULL)
            .args(["spec", "--bundle", b.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        let path = b.join("config.json");
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        v["process"]["terminal"] = false.into();
        v["process"]["args"] = args.iter().map(|a| Value::from(*a)).collect();
        v["linux"]["cgroupsPath"] = format!("/{}/{id}", self.name).into();
        edit(&mut v);
        std::fs::write(&path, v.to_string()).unwrap();
        b
    }

    /// The container's cgroup directories that exist, in any hierarchy.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        cgroup_hierarchies()
            .into_iter()
            .map(|h| h.join(&self.name))
            .filter(|p| p.is_dir())
            .flat_map(|p| {
                std::fs::read_dir(&p)
                    .unwrap()
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Asserts that no container, state directory or cgroup is left.
    pub fn assert_clean(&self) {
        let left: Vec<_> = std::fs::read_dir(self.root())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "state left behind: {left:?}");
        assert!(
            self.cgroup_dirs().is_empty(),
            "cgroups left: {:?}",
            self.cgroup_dirs()
        );
        // Container stdio is never chowned through to the host's /dev/null.
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata("/dev/null").unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o7777),
            (0, 0, 0o666),
            "/dev/null changed"
        );
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let root = self.root();
        for e in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            let _ = Command::new(HULL)
                .args(["--root", root.to_str().unwrap(), "delete", "--force", &id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        for h in cgroup_hierarchies() {
            remove_cgroup_tree(&h.join(&self.name));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// True when / is an initramfs (rootfs or a tmpfs root without a parent
/// mount), where pivot_root fails with EINVAL.
pub fn root_is_initramfs() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .is_some_and(|l| {
            l.split_once(" - ")
                .is_some_and(|(_, t)| t.starts_with("rootfs "))
        })
}

/// True on a cgroup2-only machine.
pub fn cgroup2_only() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

pub use hull_testkit::cgroup_hierarchies;

/// Removes a cgroup and its children, depth first, killing what is left
/// in them (cgroups this test created only).
pub fn remove_cgroup_tree(dir: &Path) {
    if !dir.is_dir() {
        return;
    }
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            remove_cgroup_tree(&e.path());
        }
    }
    for _ in 0..100 {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.parse::<i32>().ok()) {
            // SAFETY: kill takes two integers; these are processes of a
            // test-owned cgroup.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A root file system with busybox-static and its applets as symlinks.
pub fn busybox_rootfs(rootfs: &Path) {
    for d in ["bin", "etc", "proc", "dev", "sys", "tmp", "root"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for app in [
        "sh", "true", "false", "echo", "cat", "sleep", "id", "hostname", "ls", "tty", "grep", "ps",
        "kill", "touch", "wc", "head", "stat", "env", "pwd", "mkdir", "rm",
    ] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(app)).unwrap();
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
}

/// Receives one fd sent with SCM_RIGHTS.
pub fn recv_fd(stream: &UnixStream) -> OwnedFd {
    let mut buf = [0u8; 64];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = [0u64; 8];
    // SAFETY: an all-zero msghdr is valid; the fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf);
    // SAFETY: a connected socket and buffers that outlive the call.
    let r = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    assert!(r > 0, "recvmsg: {}", std::io::Error::last_os_error());
    // SAFETY: the kernel filled msg_control; CMSG_FIRSTHDR checks its length.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        assert!(!cmsg.is_null() && (*cmsg).cmsg_type == libc::SCM_RIGHTS);
        OwnedFd::from_raw_fd(std::ptr::read_unaligned(
            libc::CMSG_DATA(cmsg).cast::<libc::c_int>(),
        ))
    }
}

/// Waits (up to 5 s) until `f` holds.
pub fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}

/// Whether `bin` is on the PATH.
pub fn have(bin: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts a process holding a new mount and network namespace (fresh tmpfs
/// on /run, /var/tmp and `extra_tmpfs`, `lo` up), in which a test runs a
/// client and its daemons so that they never touch the host's; once ready
/// it runs `then` (`exec sleep 1000000`, or a daemon). The caller kills it.
pub fn spawn_ns_holder(extra_tmpfs: &[&str], then: &str) -> std::process::Child {
    use std::io::BufRead;
    let mut script = String::new();
    for dir in ["/run", "/var/tmp"].iter().chain(extra_tmpfs) {
        script.push_str(&format!("mount -t tmpfs tmpfs {dir} && "));
    }
    script.push_str(&format!("ip link set lo up && echo ready && {then}"));
    let mut holder = Command::new("unshare")
        .args(["--mount", "--net", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let read = std::io::BufReader::new(holder.stdout.take().unwrap()).read_line(&mut line);
    if read.is_err() || line != "ready\n" {
        let _ = holder.kill();
        let _ = holder.wait();
        panic!("namespace holder failed: {read:?} {line:?}");
    }
    holder
}

/// `nsenter` into a holder's mount and network namespaces.
pub fn nsenter(holder: &std::process::Child) -> Command {
    let mut c = Command::new("nsenter");
    c.args(["-t", &holder.id().to_string(), "-m", "-n"]);
    c
}

/// Runs `cmd` with `TMPDIR` set and no stdin, and returns what it gave.
pub fn output_with_tmpdir(cmd: &mut Command, tmpdir: &Path) -> Out {
    let o = cmd
        .env("TMPDIR", tmpdir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Packs `dir` into the tarball `tar`.
pub fn tar_dir(dir: &Path, tar: &Path) {
    let o = Command::new("tar")
        .args([
            "-C",
            dir.to_str().unwrap(),
            "-cf",
            tar.to_str().unwrap(),
            ".",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
}
