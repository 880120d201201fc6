//! Owned namespace handles and joining them (setns).

use std::ffi::CString;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::{Error, Namespaces, Result, sys};

/// The identity of a namespace: the device and inode of its nsfs file, as
/// `stat` and `lsns` show them (`lsns` shows the inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NsId {
    /// Device number of the nsfs file system.
    pub dev: u64,
    /// Inode number: the number `lsns` prints and `/proc/PID/ns/KIND` links show.
    pub ino: u64,
}

/// An owned handle to one namespace, with its kind and identity.
///
/// Holding it keeps the namespace alive. Two handles are equal when they
/// refer to the same namespace, however they were opened.
///
/// ```no_run
/// use hull_ns::{Namespaces, NsFd};
/// let mine = NsFd::current(Namespaces::NET)?;
/// let init = NsFd::from_pid(1, Namespaces::NET)?;
/// println!("same net namespace as pid 1: {}", mine == init);
/// # Ok::<(), hull_ns::Error>(())
/// ```
pub struct NsFd {
    fd: OwnedFd,
    kind: Namespaces,
    id: NsId,
}

impl fmt::Debug for NsFd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NsFd({}:[{}], fd {})",
            self.kind,
            self.id.ino,
            self.fd.as_raw_fd()
        )
    }
}

impl PartialEq for NsFd {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for NsFd {}

impl std::hash::Hash for NsFd {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl AsFd for NsFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<NsFd> for OwnedFd {
    fn from(ns: NsFd) -> OwnedFd {
        ns.fd
    }
}

impl NsFd {
    /// Opens a namespace file: `/proc/PID/ns/KIND`, or a bind mount of one
    /// such as `/run/netns/NAME`. The kind is asked of the kernel
    /// (`NS_GET_NSTYPE`).
    ///
    /// # Errors
    /// [`Error::OpenNamespace`] if the file cannot be opened,
    /// [`Error::NotANamespace`] if it is not a namespace.
    pub fn open(path: impl AsRef<Path>) -> Result<NsFd> {
        Self::open_checked(path.as_ref(), None)
    }

    /// Opens the namespace of kind `kind` (exactly one) of process `pid`.
    ///
    /// # Errors
    /// As for [`NsFd::open`]; [`Error::InvalidCommand`] if `kind` is not
    /// exactly one kind.
    pub fn from_pid(pid: i32, kind: Namespaces) -> Result<NsFd> {
        let name = single_name(kind)?;
        Self::open_checked(&PathBuf::from(format!("/proc/{pid}/ns/{name}")), Some(kind))
    }

    /// Opens the calling thread's namespace of kind `kind`.
    ///
    /// # Errors
    /// As for [`NsFd::from_pid`].
    pub fn current(kind: Namespaces) -> Result<NsFd> {
        let name = single_name(kind)?;
        Self::open_checked(
            &PathBuf::from(format!("/proc/thread-self/ns/{name}")),
            Some(kind),
        )
    }

    /// Adopts an fd that refers to a namespace (e.g. one received over a
    /// socket).
    ///
    /// # Errors
    /// [`Error::NotANamespace`] if it is not one.
    pub fn from_fd(fd: OwnedFd) -> Result<NsFd> {
        let path = PathBuf::from(format!("fd {}", fd.as_raw_fd()));
        Self::from_owned(fd, &path, None)
    }

    fn open_checked(path: &Path, expected: Option<Namespaces>) -> Result<NsFd> {
        let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::NulByte {
            field: "namespace path",
            value: path.display().to_string(),
        })?;
        let fd = sys::open(&c, libc::O_RDONLY).map_err(|source| Error::OpenNamespace {
            path: path.into(),
            source,
        })?;
        Self::from_owned(fd, path, expected)
    }

    fn from_owned(fd: OwnedFd, path: &Path, expected: Option<Namespaces>) -> Result<NsFd> {
        let not_ns = || Error::NotANamespace {
            path: path.into(),
            expected,
        };
        let nstype = sys::ns_get_nstype(fd.as_fd()).map_err(|_| not_ns())?;
        let kind = Namespaces::from_bits(u32::try_from(nstype).map_err(|_| not_ns())?)
            .filter(|k| k.name().is_some())
            .ok_or_else(not_ns)?;
        if expected.is_some_and(|e| e != kind) {
            return Err(not_ns());
        }
        let meta = std::fs::File::from(fd.try_clone().map_err(|source| Error::OpenNamespace {
            path: path.into(),
            source,
        })?)
        .metadata()
        .map_err(|source| Error::OpenNamespace {
            path: path.into(),
            source,
        })?;
        use std::os::unix::fs::MetadataExt;
        Ok(NsFd {
            fd,
            kind,
            id: NsId {
                dev: meta.dev(),
                ino: meta.ino(),
            },
        })
    }

    /// The kind of this namespace (exactly one flag).
    pub fn kind(&self) -> Namespaces {
        self.kind
    }

    /// The namespace's identity.
    pub fn id(&self) -> NsId {
        self.id
    }

    /// Moves the calling thread into this namespace: setns(2).
    ///
    /// Mount and user namespaces can only be entered by a single-threaded
    /// process (the kernel refuses with `EINVAL` otherwise); the others
    /// affect the calling thread only. Joining a PID or time namespace
    /// affects only the children created afterwards.
    ///
    /// # Errors
    /// [`Error::Setns`] with the errno.
    ///
    /// # References
    /// [setns(2)](https://man7.org/linux/man-pages/man2/setns.2.html)
    #[doc(alias = "setns")]
    pub fn enter(&self) -> Result<()> {
        sys::setns(self.fd.as_fd(), self.kind.to_clone_flags()).map_err(|source| Error::Setns {
            kind: self.kind,
            target: Some(format!("{}:[{}]", self.kind, self.id.ino)),
            source,
        })
    }
}

fn single_name(kind: Namespaces) -> Result<&'static str> {
    kind.name().ok_or_else(|| Error::InvalidCommand {
        field: "kind",
        problem: format!("expected exactly one namespace kind, got {kind:?}"),
    })
}

/// A process's namespaces as one handle: a pidfd, joined with one
/// `setns(pidfd, flags)` where the kernel supports it (Linux 5.8+), and
/// through one `/proc/PID/ns/KIND` handle per kind where it does not.
#[derive(Debug)]
pub struct ProcessNamespaces {
    pid: i32,
    pidfd: OwnedFd,
    /// Handles opened up front for kernels without setns on a pidfd.
    fallback: Vec<NsFd>,
}

impl ProcessNamespaces {
    /// Opens the namespaces of `pid` that are in `kinds`.
    ///
    /// Kinds the process shares with the caller are left out of the join
    /// (entering one's own user namespace is an error for the kernel).
    ///
    /// # Errors
    /// [`Error::OpenPidfd`] or [`Error::OpenNamespace`].
    pub fn open(pid: i32, kinds: Namespaces) -> Result<(ProcessNamespaces, Namespaces)> {
        let pidfd = sys::pidfd_open(pid).map_err(|source| Error::OpenPidfd { pid, source })?;
        let mut join = Namespaces::empty();
        let mut fallback = Vec::new();
        for k in kinds.kinds() {
            let theirs = NsFd::from_pid(pid, k)?;
            let ours = NsFd::current(k)?;
            if theirs != ours {
                join |= k;
                if !pidfd_setns_supported() {
                    fallback.push(theirs);
                }
            }
        }
        Ok((
            ProcessNamespaces {
                pid,
                pidfd,
                fallback,
            },
            join,
        ))
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The pidfd.
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    pub(crate) fn fallback(&self) -> &[NsFd] {
        &self.fallback
    }

    /// Moves the calling thread into the process's namespaces of `kinds`,
    /// all at once (atomically, with one setns on the pidfd) where the kernel
    /// allows it, otherwise user namespace first and then the others.
    ///
    /// # Errors
    /// [`Error::Setns`].
    pub fn enter(&self, kinds: Namespaces) -> Result<()> {
        if kinds.is_empty() {
            return Ok(());
        }
        if self.fallback.is_empty() && pidfd_setns_supported() {
            return sys::setns(self.pidfd.as_fd(), kinds.to_clone_flags()).map_err(|source| {
                Error::Setns {
                    kind: kinds,
                    target: Some(format!("process {}", self.pid)),
                    source,
                }
            });
        }
        for ns in &self.fallback {
            if kinds.contains(ns.kind()) {
                ns.enter()?;
            }
        }
        Ok(())
    }
}

/// Joins the namespaces `kinds` of process `pid` from the calling thread
/// (what `nsenter -t PID` does before it runs a command).
///
/// # Errors
/// As for [`ProcessNamespaces::open`] and [`ProcessNamespaces::enter`].
pub fn enter_process(pid: i32, kinds: Namespaces) -> Result<()> {
    let (p, join) = ProcessNamespaces::open(pid, kinds)?;
    p.enter(join)
}

/// True when the running kernel accepts a pidfd in setns(2) (5.8+).
pub(crate) fn pidfd_setns_supported() -> bool {
    use std::sync::OnceLock;
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(|| kernel_at_least(5, 8))
}

pub(crate) fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    let (ma, mi) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (ma, mi) >= (major, minor)
}

/// Creates new namespaces for the calling thread (or, for mnt and user,
/// the whole single-threaded process): unshare(2) with `CLONE_NEW*` flags
/// only.
///
/// Only namespace flags are reachable here, so nothing that splits the fd
/// table or memory (which could break I/O safety) can be asked for. A new
/// PID or time namespace applies to the children created afterwards.
///
/// # Errors
/// [`Error::Unshare`] with the errno (e.g. `EINVAL` for a user or mount
/// namespace in a multithreaded process, `EPERM` without privilege).
///
/// # References
/// [unshare(2)](https://man7.org/linux/man-pages/man2/unshare.2.html)
pub fn unshare(namespaces: Namespaces) -> Result<()> {
    sys::unshare(namespaces.to_clone_flags())
        .map_err(|source| Error::Unshare { namespaces, source })
}
