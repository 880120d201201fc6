//! # hull-ns: Linux namespaces
//!
//! Safe wrappers for the namespace system calls, and a spawner built on
//! them:
//!
//! - [`Namespaces`]: the kinds (pid, net, ipc, mnt, uts, user, cgroup, time)
//!   as flags, with the names `lsns` and the OCI runtime spec use.
//! - [`NsFd`]: an owned handle to one namespace (from a pid, a path such as
//!   `/run/netns/NAME`, or the current one), compared by identity, entered
//!   with setns. [`ProcessNamespaces`] joins several of a process's
//!   namespaces at once through a pidfd.
//! - [`unshare`]: new namespaces for the caller (namespace flags only).
//! - [`list_namespaces`]: every namespace on the system, as `lsns` shows them.
//! - [`IdMap`]: user-namespace uid/gid maps: parse, validate, render, write.
//! - [`Command`]: spawn a program in new or joined namespaces with one
//!   clone3, id maps, hostname, a fresh /proc and an optional minimal init
//!   as PID 1; [`Child`] owns the pidfd.
//!
//! ```no_run
//! use hull_ns::{Command, Namespaces};
//!
//! // A shell that is PID 1 of its own PID namespace, with its own hostname
//! // and a /proc that shows only its processes.
//! let status = Command::new("sh")
//!     .args(["-c", "hostname; ps"])
//!     .new_namespaces(Namespaces::PID | Namespaces::MNT | Namespaces::UTS | Namespaces::IPC)
//!     .hostname("sandbox")
//!     .mount_proc(true)
//!     .status()?;
//! assert!(status.success());
//! # Ok::<(), hull_ns::Error>(())
//! ```
//!
//! Only x86_64 is supported for now: the clone trampoline that starts the
//! child on its own stack is written in assembly.

#![deny(unsafe_code)]

mod error;
mod flags;
mod idmap;
mod inspect;
mod nsfd;
mod ops;
mod process;
mod spawn;
mod sys;

pub use error::{Error, Result};
pub use flags::Namespaces;
pub use idmap::{IdMap, IdMapKind, IdMapProblem, IdRange, MAX_ID_MAP_LINES, write_setgroups_deny};
pub use inspect::{NamespaceInfo, list_namespaces};
pub use nsfd::{NsFd, NsId, ProcessNamespaces, enter_process, unshare};
pub use ops::{BpfInstruction, ChildOp, FsParam, MountFd};
pub use process::{Child, ExitStatus, Output};
pub use spawn::{Command, Stdio, Step, TimeOffsets};
