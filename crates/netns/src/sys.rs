//! Raw syscalls this crate needs that std does not offer. The only module
//! with `unsafe` code.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `setns(fd, CLONE_NEWNET)`: moves the calling thread into the network
/// namespace `fd` refers to.
///
/// # Errors
/// `EINVAL` if `fd` is not a network namespace, `EPERM` without
/// `CAP_SYS_ADMIN`.
///
/// # References
/// [setns(2)](https://man7.org/linux/man-pages/man2/setns.2.html)
#[doc(alias = "setns")]
pub(crate) fn setns_net(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: setns takes an fd and a flag; the fd is valid for the borrow.
    check(unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) })
}

/// `unshare(CLONE_NEWNET)`: gives the calling thread a new network
/// namespace.
///
/// # Errors
/// `EPERM` without `CAP_SYS_ADMIN`, `ENOSPC`/`ENOMEM` at limits.
///
/// # References
/// [unshare(2)](https://man7.org/linux/man-pages/man2/unshare.2.html)
#[doc(alias = "unshare")]
pub(crate) fn unshare_net() -> io::Result<()> {
    // SAFETY: CLONE_NEWNET only changes the calling thread's network
    // namespace; no fd table or memory is split.
    check(unsafe { libc::unshare(libc::CLONE_NEWNET) })
}

/// `mount(src, dst, NULL, MS_BIND | extra, NULL)`.
///
/// # Errors
/// The kernel's mount(2) errors (`ENOENT`, `EINVAL`, `EPERM`).
///
/// # References
/// [mount(2)](https://man7.org/linux/man-pages/man2/mount.2.html)
#[doc(alias = "mount")]
pub(crate) fn bind_mount(src: &Path, dst: &Path, extra: libc::c_ulong) -> io::Result<()> {
    let (s, d) = (cstr(src)?, cstr(dst)?);
    // SAFETY: both strings are NUL-terminated and live across the call; no
    // filesystem type or data pointer is passed.
    check(unsafe {
        libc::mount(
            s.as_ptr(),
            d.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND | extra,
            std::ptr::null(),
        )
    })
}

/// `mount("none", path, NULL, flags, NULL)` changing propagation
/// (`MS_SHARED`, `MS_PRIVATE`, with `MS_REC`).
///
/// # Errors
/// `EINVAL` if `path` is not a mount point.
///
/// # References
/// [mount(2)](https://man7.org/linux/man-pages/man2/mount.2.html)
#[doc(alias = "mount")]
pub(crate) fn set_propagation(path: &Path, flags: libc::c_ulong) -> io::Result<()> {
    let p = cstr(path)?;
    // SAFETY: the strings are NUL-terminated; no data pointer.
    check(unsafe {
        libc::mount(
            c"none".as_ptr(),
            p.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        )
    })
}

/// `umount2(path, MNT_DETACH)`.
///
/// # Errors
/// `EINVAL` if `path` is not a mount point, `ENOENT` if it does not exist.
///
/// # References
/// [umount2(2)](https://man7.org/linux/man-pages/man2/umount2.2.html)
#[doc(alias = "umount2")]
pub(crate) fn umount_detach(path: &Path) -> io::Result<()> {
    let p = cstr(path)?;
    // SAFETY: p is NUL-terminated and lives across the call.
    check(unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) })
}

/// `flock(fd, LOCK_EX)`: blocks until this open file holds the exclusive
/// lock; it is released when the file is closed.
///
/// # Errors
/// `EINTR` is retried; others (`ENOLCK`) are returned.
///
/// # References
/// [flock(2)](https://man7.org/linux/man-pages/man2/flock.2.html)
#[doc(alias = "flock")]
pub(crate) fn flock_exclusive(fd: BorrowedFd<'_>) -> io::Result<()> {
    loop {
        // SAFETY: flock takes a valid fd (borrowed) and a flag.
        match check(unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) }) {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            r => return r,
        }
    }
}
