//! Raw system calls: the new mount API, mount(2)/umount2(2), mknod(2) and
//! extended attributes.
//!
//! # Safety
//!
//! This is the only module of the crate that calls into libc. Every wrapper
//! takes owned or borrowed file descriptors and NUL-terminated strings, so
//! callers stay in safe code; each block states why its pointers are valid.

#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `FSOPEN_CLOEXEC` from `<linux/mount.h>`.
const FSOPEN_CLOEXEC: libc::c_uint = 0x1;
/// `FSMOUNT_CLOEXEC` from `<linux/mount.h>`.
const FSMOUNT_CLOEXEC: libc::c_uint = 0x1;
/// `MOVE_MOUNT_F_EMPTY_PATH` from `<linux/mount.h>`.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
/// `MOUNT_ATTR_RDONLY` from `<linux/mount.h>`.
pub(crate) const MOUNT_ATTR_RDONLY: libc::c_uint = 0x1;

/// `enum fsconfig_command` from `<linux/mount.h>`.
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_SET_FD: libc::c_uint = 5;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;

fn cvt(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn cvt_int(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn owned_fd(rc: libc::c_long) -> io::Result<OwnedFd> {
    let fd =
        libc::c_int::try_from(cvt(rc)?).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this descriptor to us; nobody else
    // owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fsopen(fsname, FSOPEN_CLOEXEC)`: a filesystem context for `fsname`.
///
/// # Errors
/// ENOSYS on kernels without the new mount API, ENODEV for an unknown
/// filesystem, EPERM without CAP_SYS_ADMIN in the owning user namespace.
///
/// # References
/// fsopen(2)
pub(crate) fn fsopen(fsname: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: fsname is NUL-terminated and outlives the call.
    let rc = unsafe { libc::syscall(libc::SYS_fsopen, fsname.as_ptr(), FSOPEN_CLOEXEC) };
    owned_fd(rc)
}

/// `fsconfig(fd, FSCONFIG_SET_FLAG, key, NULL, 0)`.
///
/// # Errors
/// EINVAL when the filesystem rejects the key (details in the context log).
///
/// # References
/// fsconfig(2)
pub(crate) fn fsconfig_set_flag(fs: BorrowedFd<'_>, key: &CStr) -> io::Result<()> {
    // SAFETY: key is NUL-terminated; value is NULL as SET_FLAG requires.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_FLAG,
            key.as_ptr(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    };
    cvt(rc).map(drop)
}

/// `fsconfig(fd, FSCONFIG_SET_STRING, key, value, 0)`.
///
/// # Errors
/// EINVAL when the filesystem rejects the key or value.
///
/// # References
/// fsconfig(2)
pub(crate) fn fsconfig_set_string(fs: BorrowedFd<'_>, key: &CStr, value: &CStr) -> io::Result<()> {
    // SAFETY: key and value are NUL-terminated and outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    };
    cvt(rc).map(drop)
}

/// `fsconfig(fd, FSCONFIG_SET_FD, key, NULL, value_fd)`.
///
/// # Errors
/// EINVAL when the filesystem does not take a file descriptor for `key`
/// (overlayfs before Linux 6.13).
///
/// # References
/// fsconfig(2)
pub(crate) fn fsconfig_set_fd(
    fs: BorrowedFd<'_>,
    key: &CStr,
    value: BorrowedFd<'_>,
) -> io::Result<()> {
    // SAFETY: key is NUL-terminated; value is NULL as SET_FD requires and the
    // descriptor is borrowed for the duration of the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_FD,
            key.as_ptr(),
            std::ptr::null::<libc::c_char>(),
            value.as_raw_fd(),
        )
    };
    cvt(rc).map(drop)
}

/// `fsconfig(fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0)`: creates the superblock.
///
/// # Errors
/// Whatever the filesystem's fill_super returns (EINVAL with a log message
/// for bad layer combinations).
///
/// # References
/// fsconfig(2)
pub(crate) fn fsconfig_create(fs: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: CMD_CREATE takes no pointers.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    };
    cvt(rc).map(drop)
}

/// `fsmount(fd, FSMOUNT_CLOEXEC, attr)`: a detached mount of the context.
///
/// # Errors
/// EBUSY if the context has no superblock yet, EINVAL for bad attributes.
///
/// # References
/// fsmount(2)
pub(crate) fn fsmount(fs: BorrowedFd<'_>, attr: libc::c_uint) -> io::Result<OwnedFd> {
    // SAFETY: no pointers are passed.
    let rc = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attr) };
    owned_fd(rc)
}

/// `move_mount(mnt, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH)`:
/// attaches a detached mount at `target`.
///
/// # Errors
/// ENOENT/ENOTDIR for a bad target, EPERM without privilege.
///
/// # References
/// move_mount(2)
pub(crate) fn move_mount(mnt: BorrowedFd<'_>, target: &CStr) -> io::Result<()> {
    // SAFETY: both strings are NUL-terminated and outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    cvt(rc).map(drop)
}

/// Reads every pending message of a filesystem context's log (the text the
/// kernel attaches to a failed fsconfig), one per line.
pub(crate) fn read_fs_log(fs: BorrowedFd<'_>) -> String {
    let mut out = String::new();
    let mut buf = [0u8; 1024];
    // The log holds at most 8 messages; bound the loop anyway.
    for _ in 0..16 {
        // SAFETY: buf is valid for buf.len() bytes of writes.
        let n = unsafe { libc::read(fs.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        let Ok(n) = usize::try_from(n) else { break };
        if n == 0 {
            break;
        }
        let msg = String::from_utf8_lossy(&buf[..n.min(buf.len())]);
        if !out.is_empty() {
            out.push_str("; ");
        }
        // Messages start with "e ", "w " or "i " (error, warning, info).
        out.push_str(msg.trim_end());
    }
    out
}

/// `mount("overlay", target, "overlay", flags, data)`.
///
/// # Errors
/// EINVAL for bad options (see the kernel log), ENOENT for missing paths.
///
/// # References
/// mount(2)
pub(crate) fn mount_overlay(target: &CStr, flags: libc::c_ulong, data: &CStr) -> io::Result<()> {
    // SAFETY: every pointer is a NUL-terminated string outliving the call.
    let rc = unsafe {
        libc::mount(
            c"overlay".as_ptr(),
            target.as_ptr(),
            c"overlay".as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    };
    cvt_int(rc)
}

/// `umount2(target, flags | UMOUNT_NOFOLLOW)`.
///
/// # Errors
/// EBUSY while in use (without MNT_DETACH), EINVAL if nothing is mounted.
///
/// # References
/// umount2(2)
pub(crate) fn umount2(target: &CStr, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: target is NUL-terminated and outlives the call.
    let rc = unsafe { libc::umount2(target.as_ptr(), flags | libc::UMOUNT_NOFOLLOW) };
    cvt_int(rc)
}

/// `mknod(path, S_IFCHR | 0, makedev(0, 0))`: an overlay whiteout.
///
/// # Errors
/// EEXIST if `path` exists, EPERM without CAP_MKNOD (outside an overlay).
///
/// # References
/// mknod(2)
pub(crate) fn mknod_whiteout(path: &CStr) -> io::Result<()> {
    // SAFETY: path is NUL-terminated and outlives the call.
    let rc = unsafe { libc::mknod(path.as_ptr(), libc::S_IFCHR, libc::makedev(0, 0)) };
    cvt_int(rc)
}

/// `lgetxattr(path, name, buf, len)`: the value of an extended attribute of
/// `path` itself (not following a symlink), or `None` when it is not set.
///
/// # Errors
/// EPERM/EACCES when the namespace is not readable (trusted.* without
/// CAP_SYS_ADMIN), ERANGE for values longer than 4 KiB.
///
/// # References
/// getxattr(2)
pub(crate) fn lgetxattr(path: &CStr, name: &CStr) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: path and name are NUL-terminated; buf is valid for its length.
    let rc = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if rc < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => Ok(None),
            _ => Err(err),
        };
    }
    let n = usize::try_from(rc).unwrap_or(0).min(buf.len());
    buf.truncate(n);
    Ok(Some(buf))
}

/// `lsetxattr(path, name, value, len, 0)`.
///
/// # Errors
/// EPERM for trusted.* without CAP_SYS_ADMIN, ENOTSUP where the filesystem
/// has no xattrs.
///
/// # References
/// setxattr(2)
pub(crate) fn lsetxattr(path: &CStr, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: path and name are NUL-terminated; value is valid for its length.
    let rc = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    cvt_int(rc)
}

/// The id of the mount `path` lives on (`statx(STATX_MNT_ID)`), or `None`
/// where the kernel does not report it.
///
/// # Errors
/// ENOENT and the like from statx(2).
///
/// # References
/// statx(2)
pub(crate) fn mount_id(path: &CStr) -> io::Result<Option<u64>> {
    // SAFETY: statx is plain old data; all-zero is a valid value.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: path is NUL-terminated; stx is a valid out pointer.
    let rc = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_MNT_ID,
            &mut stx,
        )
    };
    cvt_int(rc)?;
    if stx.stx_mask & libc::STATX_MNT_ID != 0 {
        Ok(Some(stx.stx_mnt_id))
    } else {
        Ok(None)
    }
}

/// The system page size, the limit of mount(2)'s option string.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}
