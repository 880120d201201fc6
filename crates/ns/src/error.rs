//! The crate's error type.

use std::io;
use std::path::PathBuf;

use crate::Namespaces;
use crate::idmap::IdMapProblem;
use crate::spawn::Step;

/// Everything that can fail in `hull-ns`: one variant per failing operation,
/// each naming its object and carrying the OS error where there is one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A namespace name that is neither an `lsns` nor an OCI name.
    #[error(
        "unknown namespace kind {name:?} (expected one of mnt, uts, ipc, user, pid, net, cgroup, time or their OCI names)"
    )]
    UnknownNamespace {
        /// The name given.
        name: String,
    },

    /// Opening a namespace file (`/proc/PID/ns/KIND`, a bind mount) failed.
    #[error("open namespace {path}: {source}")]
    OpenNamespace {
        /// The path opened.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// The file is not a namespace (`NS_GET_NSTYPE` failed) or not of the
    /// kind asked for.
    #[error("{path} is not a namespace{}", expected.map(|k| format!(" of kind {k}")).unwrap_or_default())]
    NotANamespace {
        /// The path opened.
        path: PathBuf,
        /// The kind that was expected, if one was.
        expected: Option<Namespaces>,
    },

    /// setns(2) into a namespace failed.
    #[error("setns into {kind} namespace{}: {source}", target.as_ref().map(|t| format!(" of {t}")).unwrap_or_default())]
    Setns {
        /// The kinds being joined.
        kind: Namespaces,
        /// What was joined (a path or a pid), when known.
        target: Option<String>,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// unshare(2) failed.
    #[error("unshare {namespaces} namespaces: {source}")]
    Unshare {
        /// The kinds asked for.
        namespaces: Namespaces,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// pidfd_open(2) on a process failed (it may not exist).
    #[error("open pidfd for process {pid}: {source}")]
    OpenPidfd {
        /// The process.
        pid: i32,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// A uid or gid map is malformed or would be refused by the kernel.
    #[error("id map line {line} ({text:?}): {problem}")]
    IdMap {
        /// The 1-based line (entry) at fault; 0 for the map as a whole.
        line: usize,
        /// The line's text as given or rendered.
        text: String,
        /// What is wrong with it.
        problem: IdMapProblem,
    },

    /// Writing `/proc/PID/{uid_map,gid_map,setgroups,timens_offsets}` failed.
    #[error("write {path}: {source}")]
    WriteProcFile {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// Running `newuidmap`/`newgidmap` failed or it exited unsuccessfully.
    #[error("{program} for process {pid} failed: {detail}")]
    IdMapHelper {
        /// The helper program.
        program: String,
        /// The process whose map was being written.
        pid: i32,
        /// Its exit status or the OS error starting it, and its stderr.
        detail: String,
    },

    /// A [`Command`](crate::Command) setting is invalid; the field is named.
    #[error("invalid command setting {field}: {problem}")]
    InvalidCommand {
        /// The builder field at fault.
        field: &'static str,
        /// Why it is invalid.
        problem: String,
    },

    /// A string given to a [`Command`](crate::Command) contains a NUL byte.
    #[error("{field} contains a NUL byte: {value:?}")]
    NulByte {
        /// The builder field at fault.
        field: &'static str,
        /// The value given.
        value: String,
    },

    /// Preparing the spawn (a pipe, the child's stack, a stdio fd) failed.
    #[error("prepare spawn of {program}: {what}: {source}")]
    Prepare {
        /// The program.
        program: String,
        /// What was being prepared.
        what: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// clone3(2)/clone(2) failed.
    #[error("clone for {program} with {namespaces} namespaces: {source}")]
    Clone {
        /// The program.
        program: String,
        /// The namespaces asked for.
        namespaces: Namespaces,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// A step the parent does for the child (id maps, cgroup, time offsets)
    /// failed; the child was killed and reaped.
    #[error("spawn {program}: parent step failed: {source}")]
    ParentStep {
        /// The program.
        program: String,
        /// What failed.
        #[source]
        source: Box<Error>,
    },

    /// The caller's step run after the clone
    /// ([`Command::cgroup_tasks_after_clone`](crate::Command::cgroup_tasks_after_clone))
    /// failed; the child was killed and reaped.
    #[error("spawn {program}: making its cgroups failed: {source}")]
    AfterClone {
        /// The program.
        program: String,
        /// The caller's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// Bringing up the loopback interface of the child's new network
    /// namespace, from the parent ([`Command::loopback_up`](crate::Command::loopback_up)), failed.
    #[error("bring up lo in the network namespace of process {pid}: {source}")]
    LoopbackUp {
        /// The child.
        pid: i32,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// A step in the child failed before execve; the child exited.
    #[error("spawn {program}: {step}{}: {source}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Spawn {
        /// The program.
        program: String,
        /// The step that failed.
        step: Step,
        /// The path or name the step worked on, if any.
        path: Option<PathBuf>,
        /// The errno the step returned.
        #[source]
        source: io::Error,
    },

    /// Waiting for a child failed.
    #[error("wait for process {pid}: {source}")]
    Wait {
        /// The process.
        pid: i32,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// Sending a signal failed.
    #[error("send signal {signal} to process {pid}: {source}")]
    Signal {
        /// The process.
        pid: i32,
        /// The signal.
        signal: i32,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// Reading from /proc failed.
    #[error("read {path}: {source}")]
    ReadProc {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The OS error number behind this error, if there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::OpenNamespace { source, .. }
            | Error::Setns { source, .. }
            | Error::Unshare { source, .. }
            | Error::OpenPidfd { source, .. }
            | Error::WriteProcFile { source, .. }
            | Error::Prepare { source, .. }
            | Error::Clone { source, .. }
            | Error::Spawn { source, .. }
            | Error::Wait { source, .. }
            | Error::Signal { source, .. }
            | Error::ReadProc { source, .. } => source.raw_os_error(),
            Error::ParentStep { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}
