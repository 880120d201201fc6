//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

use crate::Controller;

/// Why a cgroup file's text could not be understood.
///
/// Carries the 1-based line number and what was wrong with it; never the
/// whole (possibly huge, possibly hostile) input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line number of the offending line (0 when the input as a whole is wrong).
    pub line: usize,
    /// What was wrong with it.
    pub reason: &'static str,
}

impl ParseError {
    pub(crate) fn new(line: usize, reason: &'static str) -> Self {
        ParseError { line, reason }
    }
}

/// Everything that can fail in this crate; each variant names one failing
/// operation and its object.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading a file (mountinfo, a cgroup control file) failed.
    #[error("read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A file's text could not be parsed.
    #[error("parse {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        source: ParseError,
    },
    /// Writing a value to a cgroup control file failed.
    #[error("write {value:?} to {path}: {source}")]
    Write {
        /// The control file.
        path: PathBuf,
        /// The value written.
        value: String,
        /// The cause.
        source: io::Error,
    },
    /// No cgroup filesystem is mounted (neither v1 nor v2).
    #[error("no cgroup filesystem mounted (looked in {path})")]
    NoCgroupMount {
        /// The mountinfo file that was read.
        path: PathBuf,
    },
    /// A cgroup path is not a plain relative path below its parent
    /// (contains `..`, `.`, an empty or NUL component, or is empty).
    #[error("cgroup path {path:?} is invalid: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A controller the operation needs is not available on this host.
    #[error("controller {controller} is not available on this host")]
    ControllerUnavailable {
        /// The controller.
        controller: Controller,
    },
    /// A setting cannot be honoured by this host's cgroup version or kernel.
    #[error("{setting} is not supported here: {reason}")]
    Unsupported {
        /// The setting (e.g. `memory.swappiness`, `devices`).
        setting: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A resource value is out of range or inconsistent (found at `build()`).
    #[error("invalid resource {field} = {value}: {reason}")]
    InvalidResource {
        /// The field (e.g. `cpu.shares`).
        field: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A control file the setting needs does not exist: the kernel lacks the
    /// feature (e.g. `memory.memsw.*` without swap accounting, `cpu.rt_*`
    /// without realtime group scheduling).
    #[error("control file {path} does not exist: this kernel lacks the setting")]
    MissingControlFile {
        /// The control file.
        path: PathBuf,
    },
    /// A block or character device named in a rule does not exist.
    #[error("unknown block device {major}:{minor} in {field}")]
    UnknownDevice {
        /// The setting that named it.
        field: &'static str,
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A cpuset names CPUs or memory nodes the parent cgroup does not have.
    #[error("cpuset {field} {requested:?} is not within the available {available:?}")]
    CpusetOutOfRange {
        /// `cpus` or `mems`.
        field: &'static str,
        /// The requested list.
        requested: String,
        /// The parent's effective list.
        available: String,
    },
    /// The kernel refused a limit below the cgroup's current usage.
    #[error("limit {value} in {path} is below current usage ({source})")]
    LimitBelowUsage {
        /// The control file.
        path: PathBuf,
        /// The value written.
        value: String,
        /// The kernel's answer (EBUSY).
        source: io::Error,
    },
    /// Building, loading or attaching the v2 eBPF device program failed.
    #[error("device program ({what}) for {path}: {source}")]
    DeviceProgram {
        /// The step (`BPF_PROG_LOAD`, `BPF_PROG_ATTACH`, ...).
        what: &'static str,
        /// The cgroup directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Creating a cgroup directory failed.
    #[error("create cgroup {path}: {source}")]
    Create {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Removing a cgroup directory failed (after retries on EBUSY).
    #[error("remove cgroup {path}: {source}")]
    Remove {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Moving a process or thread into a cgroup failed.
    #[error("add pid {pid} to {path}: {source}")]
    AddProcess {
        /// The process or thread id.
        pid: i32,
        /// The `cgroup.procs`/`tasks` file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Sending a signal to a process of the cgroup failed.
    #[error("kill pid {pid}: {source}")]
    Kill {
        /// The process.
        pid: i32,
        /// The cause.
        source: io::Error,
    },
    /// Opening a cgroup directory or control file failed.
    #[error("open {path}: {source}")]
    Open {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A state change (freeze, thaw, kill) did not complete in time.
    #[error("{what} of {path} did not complete within {millis} ms")]
    Timeout {
        /// The operation.
        what: &'static str,
        /// The cgroup.
        path: PathBuf,
        /// How long it waited.
        millis: u64,
    },
    /// Setting up or waiting on an event source (eventfd, inotify, poll) failed.
    #[error("{what} for {path}: {source}")]
    Event {
        /// The syscall (`eventfd2`, `inotify_add_watch`, `poll`, `read`).
        what: &'static str,
        /// The watched file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
