//! Network namespace handles: anonymous ones held by an fd, named ones kept
//! as `ip netns` keeps them (a bind mount under `/run/netns`).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::netlink::Netlink;
use crate::sys;

/// Where `ip netns` keeps named network namespaces.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// A network namespace held open by a file descriptor.
///
/// Anonymous namespaces ([`NetNs::new`]) live as long as this handle (or
/// anything else inside them: a process, a socket). Named ones
/// ([`NetNs::create_named`]) are bind-mounted under `/run/netns` and are
/// visible to `ip netns`; one created through this handle is removed when the
/// handle drops unless [`NetNs::persist`] is called.
///
/// Dropping never waits for the kernel to finish destroying the namespace:
/// that happens asynchronously once the last reference goes.
#[derive(Debug)]
pub struct NetNs {
    fd: OwnedFd,
    mount: Option<NamedMount>,
}

/// The file a named namespace is bind-mounted on; removed on drop when this
/// crate created it.
#[derive(Debug)]
struct NamedMount {
    path: PathBuf,
    owned: bool,
}

impl Drop for NamedMount {
    fn drop(&mut self) {
        if self.owned {
            let _ = remove_ns_file(&self.path);
        }
    }
}

/// Runs `f` on a short-lived thread that has first joined the network
/// namespace `ns`, and returns its result.
///
/// Sockets created inside `f` stay bound to `ns` after the thread ends, and
/// processes spawned from `f` start inside `ns`: this is how the crate works
/// "inside" a namespace without moving the calling thread.
///
/// # Errors
/// [`Error::Thread`] if the thread cannot start, [`Error::EnterNetns`] if
/// `setns(2)` fails, [`Error::ThreadPanicked`] if `f` panics.
pub fn run_in_netns<F, T>(ns: BorrowedFd<'_>, f: F) -> Result<T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("hull-netns".into())
            .spawn_scoped(s, move || {
                sys::setns_net(ns).map_err(|source| Error::EnterNetns { source })?;
                Ok(f())
            })
            .map_err(|source| Error::Thread { source })?;
        handle.join().map_err(|_| Error::ThreadPanicked)?
    })
}

fn open_ns_file(path: &Path) -> Result<OwnedFd> {
    File::open(path)
        .map(OwnedFd::from)
        .map_err(|source| Error::OpenNetns {
            path: path.to_path_buf(),
            source,
        })
}

fn new_anonymous_fd() -> Result<OwnedFd> {
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("hull-netns-new".into())
            .spawn_scoped(s, || {
                sys::unshare_net().map_err(|source| Error::CreateNetns { source })?;
                open_ns_file(Path::new("/proc/thread-self/ns/net"))
            })
            .map_err(|source| Error::Thread { source })?;
        handle.join().map_err(|_| Error::ThreadPanicked)?
    })
}

fn validate_ns_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 255
        || name == "."
        || name == ".."
        || name.bytes().any(|b| b == b'/' || b == 0)
    {
        return Err(Error::InvalidNetnsName {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Makes `dir` exist and be a shared mount point, as iproute2 does for
/// `/run/netns`: unmounting a namespace file then propagates to every mount
/// namespace that saw it, so the namespace can be freed.
fn prepare_run_dir(dir: &Path) -> Result<()> {
    let err = |source| Error::NetnsDir {
        path: dir.to_path_buf(),
        source,
    };
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(err(e)),
    }
    let shared = libc::MS_SHARED | libc::MS_REC;
    match sys::set_propagation(dir, shared) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            // Not a mount point yet: bind it onto itself, then retry.
            sys::bind_mount(dir, dir, libc::MS_REC).map_err(err)?;
            sys::set_propagation(dir, shared).map_err(err)
        }
        Err(e) => Err(err(e)),
    }
}

impl NetNs {
    /// Creates a new anonymous network namespace (only loopback, down),
    /// held by the returned handle.
    ///
    /// The calling thread stays where it is: a helper thread unshares.
    ///
    /// # Errors
    /// [`Error::CreateNetns`] from `unshare(CLONE_NEWNET)`.
    pub fn new() -> Result<Self> {
        Ok(NetNs {
            fd: new_anonymous_fd()?,
            mount: None,
        })
    }

    /// A handle on the calling thread's current network namespace.
    ///
    /// # Errors
    /// [`Error::OpenNetns`] if `/proc/thread-self/ns/net` cannot be opened.
    pub fn current() -> Result<Self> {
        Ok(NetNs {
            fd: open_ns_file(Path::new("/proc/thread-self/ns/net"))?,
            mount: None,
        })
    }

    /// Wraps an fd that refers to a network namespace (from
    /// `/proc/PID/ns/net`, a pidfd-derived handle, another crate).
    pub fn from_fd(fd: OwnedFd) -> Self {
        NetNs { fd, mount: None }
    }

    /// Opens a namespace file by path (`/proc/PID/ns/net`,
    /// `/run/netns/NAME`).
    ///
    /// # Errors
    /// [`Error::OpenNetns`] if it cannot be opened (`ENOENT` when missing).
    pub fn open_path(path: impl AsRef<Path>) -> Result<Self> {
        Ok(NetNs {
            fd: open_ns_file(path.as_ref())?,
            mount: Some(NamedMount {
                path: path.as_ref().to_path_buf(),
                owned: false,
            }),
        })
    }

    /// Opens the named namespace `/run/netns/NAME` (as `ip netns` names it).
    ///
    /// # Errors
    /// [`Error::InvalidNetnsName`], or [`Error::OpenNetns`] with `ENOENT`
    /// when no such namespace exists.
    pub fn open_named(name: &str) -> Result<Self> {
        Self::open_named_in(NETNS_RUN_DIR, name)
    }

    /// Like [`NetNs::open_named`] with another directory.
    ///
    /// # Errors
    /// As [`NetNs::open_named`].
    pub fn open_named_in(dir: impl AsRef<Path>, name: &str) -> Result<Self> {
        validate_ns_name(name)?;
        Self::open_path(dir.as_ref().join(name))
    }

    /// Creates a named namespace `/run/netns/NAME`, as `ip netns add` does:
    /// the directory becomes a shared mount point, an empty file is created
    /// and a new namespace is bind-mounted onto it.
    ///
    /// The handle removes it on drop unless [`NetNs::persist`] is called.
    ///
    /// # Errors
    /// [`Error::InvalidNetnsName`], [`Error::NetnsExists`],
    /// [`Error::NetnsDir`], [`Error::CreateNetns`], [`Error::BindNetns`].
    /// Nothing is left behind on error.
    pub fn create_named(name: &str) -> Result<Self> {
        Self::create_named_in(NETNS_RUN_DIR, name)
    }

    /// Like [`NetNs::create_named`] with another directory.
    ///
    /// # Errors
    /// As [`NetNs::create_named`].
    pub fn create_named_in(dir: impl AsRef<Path>, name: &str) -> Result<Self> {
        validate_ns_name(name)?;
        let dir = dir.as_ref();
        prepare_run_dir(dir)?;
        let path = dir.join(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o000)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(f) => drop(f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::NetnsExists { path });
            }
            Err(source) => return Err(Error::BindNetns { path, source }),
        }
        let bound = std::thread::scope(|s| {
            let handle = std::thread::Builder::new()
                .name("hull-netns-add".into())
                .spawn_scoped(s, || {
                    sys::unshare_net().map_err(|source| Error::CreateNetns { source })?;
                    sys::bind_mount(Path::new("/proc/thread-self/ns/net"), &path, 0).map_err(
                        |source| Error::BindNetns {
                            path: path.clone(),
                            source,
                        },
                    )?;
                    open_ns_file(&path)
                })
                .map_err(|source| Error::Thread { source })?;
            handle.join().map_err(|_| Error::ThreadPanicked)?
        });
        match bound {
            Ok(fd) => Ok(NetNs {
                fd,
                mount: Some(NamedMount { path, owned: true }),
            }),
            Err(e) => {
                let _ = sys::umount_detach(&path);
                let _ = std::fs::remove_file(&path);
                Err(e)
            }
        }
    }

    /// Removes the named namespace `/run/netns/NAME` (as `ip netns del`):
    /// lazily unmounts and unlinks it. Processes and handles inside keep it
    /// alive; this never waits for its destruction.
    ///
    /// # Errors
    /// [`Error::InvalidNetnsName`], [`Error::DeleteNetns`] (`ENOENT` when
    /// it does not exist).
    pub fn delete_named(name: &str) -> Result<()> {
        Self::delete_named_in(NETNS_RUN_DIR, name)
    }

    /// Like [`NetNs::delete_named`] with another directory.
    ///
    /// # Errors
    /// As [`NetNs::delete_named`].
    pub fn delete_named_in(dir: impl AsRef<Path>, name: &str) -> Result<()> {
        validate_ns_name(name)?;
        remove_ns_file(&dir.as_ref().join(name))
    }

    /// The path of a named namespace, `None` for an anonymous one.
    pub fn path(&self) -> Option<&Path> {
        self.mount.as_ref().map(|m| m.path.as_path())
    }

    /// Keeps a named namespace after this handle drops (as `ip netns add`
    /// does) and returns the fd.
    pub fn persist(self) -> OwnedFd {
        self.into_fd()
    }

    /// The fd, giving up any cleanup duty.
    pub fn into_fd(self) -> OwnedFd {
        if let Some(mut m) = self.mount {
            m.owned = false;
        }
        self.fd
    }

    /// Deletes the namespace now: a named one created by this handle is
    /// unmounted and unlinked; the fd is closed. Never waits for the
    /// kernel's asynchronous destruction.
    ///
    /// # Errors
    /// [`Error::DeleteNetns`] if unmounting or unlinking fails.
    pub fn delete(self) -> Result<()> {
        match self.mount {
            Some(mut m) if m.owned => {
                m.owned = false;
                remove_ns_file(&m.path)
            }
            _ => Ok(()),
        }
    }

    /// A netlink handle bound to this namespace.
    ///
    /// # Errors
    /// As [`Netlink::in_netns`].
    pub fn netlink(&self) -> Result<Netlink> {
        Netlink::in_netns(&self.fd)
    }

    /// Runs `f` on a thread inside this namespace (see [`run_in_netns`]).
    ///
    /// # Errors
    /// As [`run_in_netns`].
    pub fn run<F, T>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        run_in_netns(self.fd.as_fd(), f)
    }

    /// Writes a network sysctl inside this namespace, e.g.
    /// `set_sysctl("net/ipv4/ip_forward", "1")`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a key outside `net/` or with `..`,
    /// [`Error::Sysctl`] if the write fails.
    pub fn set_sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.run(|| write_sysctl_here(key, value))?
    }

    /// Reads a network sysctl inside this namespace (trailing newline
    /// removed).
    ///
    /// # Errors
    /// As [`NetNs::set_sysctl`].
    pub fn sysctl(&self, key: &str) -> Result<String> {
        let path = sysctl_path(key)?;
        self.run(move || {
            let mut s = String::new();
            File::open(&path)
                .and_then(|mut f| f.read_to_string(&mut s))
                .map(|_| s.trim_end().to_string())
        })?
        .map_err(|source| Error::Sysctl {
            key: key.to_string(),
            source,
        })
    }

    /// Turns on IPv4 forwarding (`net/ipv4/ip_forward`), which a namespace
    /// that routes for containers needs.
    ///
    /// # Errors
    /// As [`NetNs::set_sysctl`].
    pub fn enable_ip_forward(&self) -> Result<()> {
        self.set_sysctl("net/ipv4/ip_forward", "1")
    }
}

/// Writes a network sysctl of the calling thread's network namespace.
pub(crate) fn write_sysctl_here(key: &str, value: &str) -> Result<()> {
    let path = sysctl_path(key)?;
    OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|source| Error::Sysctl {
            key: key.to_string(),
            source,
        })
}

fn sysctl_path(key: &str) -> Result<PathBuf> {
    let ok = key.starts_with("net/")
        && key.split('/').all(|c| {
            !c.is_empty()
                && c != ".."
                && c != "."
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        });
    if !ok {
        return Err(Error::InvalidConfig {
            field: "sysctl key",
            reason: format!("{key:?} is not a net/ sysctl"),
        });
    }
    Ok(Path::new("/proc/sys").join(key))
}

fn remove_ns_file(path: &Path) -> Result<()> {
    let err = |source| Error::DeleteNetns {
        path: path.to_path_buf(),
        source,
    };
    match sys::umount_detach(path) {
        Ok(()) => {}
        // Not mounted (a stale file): still remove it.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
        Err(e) => return Err(err(e)),
    }
    std::fs::remove_file(path).map_err(err)
}

impl AsFd for NetNs {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_keys_are_confined_to_net() {
        assert!(sysctl_path("net/ipv4/ip_forward").is_ok());
        assert!(sysctl_path("net/ipv4/conf/eth0/forwarding").is_ok());
        for bad in [
            "kernel/hostname",
            "net/../kernel/x",
            "net//x",
            "net/ipv4/a b",
            "/net/x",
        ] {
            assert!(sysctl_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ns_names_are_checked() {
        assert!(validate_ns_name("a-b_c.1").is_ok());
        for bad in ["", ".", "..", "a/b", "a\0b"] {
            assert!(validate_ns_name(bad).is_err(), "{bad:?}");
        }
    }
}
