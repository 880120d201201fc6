//! The opt-in state store: with [`ContainerBuilder::persist`], a
//! container's state is a file in its runtime directory, so that another
//! process can [`Container::load`] it by id, act on it and delete it, even
//! after the process that created it died.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hull_ns::Namespaces;
use serde_json::{Value, json};

use crate::caps::Capabilities;
use crate::{Error, Result, Status};

/// The state file's name in the runtime directory.
pub(crate) const STATE_FILE: &str = "state.json";
/// The start gate's name in the runtime directory.
pub(crate) const GATE_FIFO: &str = "start.fifo";
/// The lock's name in the runtime directory.
pub(crate) const LOCK_FILE: &str = "lock";

/// What a process needs to know about a container it did not create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Saved {
    pub id: String,
    pub pid: i32,
    /// The process's start time (clock ticks since boot, /proc/PID/stat
    /// field 22): tells the container's process from a later one that
    /// reused its pid.
    pub start_time: u64,
    pub status: Status,
    pub rootfs: PathBuf,
    pub cgroup: Option<String>,
    pub namespaces: Namespaces,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub capabilities: Capabilities,
    pub no_new_privs: bool,
}

impl Saved {
    pub(crate) fn to_json(&self) -> String {
        json!({
            "id": self.id,
            "pid": self.pid,
            "startTime": self.start_time,
            "status": self.status.to_string(),
            "rootfs": self.rootfs.to_string_lossy(),
            "cgroup": self.cgroup,
            "namespaces": self.namespaces.to_string(),
            "env": self.env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            "cwd": self.cwd.to_string_lossy(),
            "uid": self.uid,
            "gid": self.gid,
            "groups": self.groups,
            "capabilities": self.capabilities.bits(),
            "noNewPrivs": self.no_new_privs,
        })
        .to_string()
    }

    pub(crate) fn from_json(path: &Path, text: &str) -> Result<Saved> {
        let bad = |what: &str| Error::StateFile {
            path: path.to_path_buf(),
            problem: format!("bad or missing {what}"),
        };
        let v: Value = serde_json::from_str(text).map_err(|e| Error::StateFile {
            path: path.to_path_buf(),
            problem: e.to_string(),
        })?;
        let s = |k: &str| v[k].as_str().map(str::to_string).ok_or_else(|| bad(k));
        let u = |k: &str| v[k].as_u64().ok_or_else(|| bad(k));
        let status = match s("status")?.as_str() {
            "created" => Status::Created,
            "running" => Status::Running,
            "paused" => Status::Paused,
            "stopped" => Status::Stopped,
            _ => return Err(bad("status")),
        };
        let env = v["env"]
            .as_array()
            .ok_or_else(|| bad("env"))?
            .iter()
            .map(|e| {
                e.as_str()
                    .and_then(|e| e.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .ok_or_else(|| bad("env"))
            })
            .collect::<Result<_>>()?;
        let groups = v["groups"]
            .as_array()
            .ok_or_else(|| bad("groups"))?
            .iter()
            .map(|g| {
                g.as_u64()
                    .and_then(|g| u32::try_from(g).ok())
                    .ok_or_else(|| bad("groups"))
            })
            .collect::<Result<_>>()?;
        let u32_of = |k: &str| u(k).and_then(|x| u32::try_from(x).map_err(|_| bad(k)));
        Ok(Saved {
            id: s("id")?,
            pid: i32::try_from(u("pid")?).map_err(|_| bad("pid"))?,
            start_time: u("startTime")?,
            status,
            rootfs: s("rootfs")?.into(),
            cgroup: v["cgroup"].as_str().map(str::to_string),
            namespaces: s("namespaces")?.parse().map_err(|_| bad("namespaces"))?,
            env,
            cwd: s("cwd")?.into(),
            uid: u32_of("uid")?,
            gid: u32_of("gid")?,
            groups,
            capabilities: Capabilities::from_bits(u("capabilities")?),
            no_new_privs: v["noNewPrivs"].as_bool().ok_or_else(|| bad("noNewPrivs"))?,
        })
    }

    /// Writes the state atomically (a new file renamed into place): readers
    /// see the old or the new file, never a partial one. Not fsync'd, as
    /// runc does not: the state describes processes, which do not survive
    /// a power loss either, and /run may be on disk, where an fsync per
    /// write costs milliseconds.
    pub(crate) fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(STATE_FILE);
        let tmp = dir.join(".state.json.tmp");
        let io = |source| Error::RuntimeDir {
            action: "write state in",
            path: dir.to_path_buf(),
            source,
        };
        let mut f = File::create(&tmp).map_err(io)?;
        f.write_all(self.to_json().as_bytes()).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }
}

/// The start time of `pid` (clock ticks since boot), if it exists.
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    let stat = hull_cgroup::cgroup::read_kernel_file(format!("/proc/{pid}/stat")).ok()?;
    // Field 22; the command (field 2) may contain spaces, so count from ')'.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// An exclusive lock on the container's runtime directory (flock), held
/// while a process changes the container.
#[derive(Debug)]
pub(crate) struct Lock(#[allow(dead_code)] File);

impl Lock {
    pub(crate) fn take(dir: &Path) -> Result<Lock> {
        let path = dir.join(LOCK_FILE);
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::RuntimeDir {
                action: "lock",
                path: path.clone(),
                source,
            })?;
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(Error::RuntimeDir {
                action: "lock",
                path,
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(Lock(f))
    }
}

/// A process this one did not create (so cannot wait for), held by pidfd.
#[derive(Debug)]
pub(crate) struct Foreign {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

impl Foreign {
    /// Opens `pid` if it is still the process that started at `start`.
    pub(crate) fn open(pid: i32, start: u64) -> Option<Foreign> {
        // SAFETY: pidfd_open takes two integers.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
        // SAFETY: a new fd that nobody else owns.
        let pidfd = unsafe { OwnedFd::from_raw_fd(fd) };
        // Checked after opening: from here on the pidfd pins this process.
        (start_time(pid) == Some(start)).then_some(Foreign { pid, pidfd })
    }

    pub(crate) fn kill(&self, sig: i32) -> std::io::Result<()> {
        // SAFETY: a borrowed pidfd, a signal number, no siginfo, no flags.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Waits up to `timeout` for the process to exit; true if it has.
    pub(crate) fn wait_exit(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let ms = i32::try_from(
                deadline
                    .saturating_duration_since(Instant::now())
                    .as_millis(),
            )
            .unwrap_or(i32::MAX);
            let mut pfd = libc::pollfd {
                fd: self.pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r > 0 {
                return true;
            }
            if r == 0 {
                return false;
            }
        }
    }
}

/// Opens the start FIFO read-write (which does not block).
pub(crate) fn open_fifo(path: &Path, write_only: bool) -> std::io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = File::options()
        .read(!write_only)
        .write(true)
        .custom_flags(libc::O_CLOEXEC | if write_only { libc::O_NONBLOCK } else { 0 })
        .open(path)?;
    Ok(f.into())
}

/// mkfifo(3).
pub(crate) fn mkfifo(path: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: a NUL-terminated path and a mode.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
