//! Terminals: a new pseudo-terminal, and handing its master to the
//! `--console-socket` (a unix socket the caller listens on) with
//! SCM_RIGHTS, as runc does.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::Error;

/// A new pseudo-terminal: (master, slave), from the devpts instance of the
/// root file system at `root` (a container's, through /proc/PID/root, so
/// that the terminal has a name under its /dev/pts), or the host's when
/// `root` is None. The container's dev/ptmx is resolved inside that root
/// (openat2 RESOLVE_IN_ROOT: its symlinks cannot lead out) and must be the
/// ptmx device. The slave is opened through the master (TIOCGPTPEER),
/// never by path.
pub fn open_pty(root: Option<&Path>) -> std::io::Result<(OwnedFd, OwnedFd)> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    let m = match root {
        None => {
            // SAFETY: a NUL-terminated path and flags.
            unsafe { libc::open(c"/dev/ptmx".as_ptr(), flags) }
        }
        Some(root) => {
            let dir = std::fs::File::open(root)?;
            // SAFETY: open_how is plain integers; all-zero is valid.
            let mut how: libc::open_how = unsafe { std::mem::zeroed() };
            how.flags = u64::try_from(flags).unwrap_or(0);
            how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
            // SAFETY: a directory fd, a NUL-terminated path and an open_how
            // of the size given.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_openat2,
                    dir.as_raw_fd(),
                    c"dev/ptmx".as_ptr(),
                    &how,
                    std::mem::size_of::<libc::open_how>(),
                )
            };
            i32::try_from(r).unwrap_or(-1)
        }
    };
    if m < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new fd that nobody else owns.
    let master = unsafe { OwnedFd::from_raw_fd(m) };
    let meta = std::fs::File::from(master.try_clone()?).metadata()?;
    {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let (major, minor) = (libc::major(meta.rdev()), libc::minor(meta.rdev()));
        if !meta.file_type().is_char_device() || (major, minor) != (5, 2) {
            return Err(std::io::Error::from_raw_os_error(libc::ENOTTY));
        }
    }
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int from a valid pointer.
    if unsafe { libc::ioctl(m, libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd.
    let sl = unsafe { libc::ioctl(m, libc::TIOCGPTPEER, flags) };
    if sl < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new fd that nobody else owns.
    Ok((master, unsafe { OwnedFd::from_raw_fd(sl) }))
}

/// Sends `master` over the unix socket at `socket` (one byte of data, the
/// fd as SCM_RIGHTS), as runc's console socket protocol does.
pub fn send_master(socket: &Path, master: &OwnedFd) -> Result<(), Error> {
    let io = |source| Error::Io {
        action: "send the terminal to console socket",
        path: socket.to_path_buf(),
        source,
    };
    let stream = UnixStream::connect(socket).map_err(io)?;
    let name = b"/dev/ptmx";
    let mut iov = libc::iovec {
        iov_base: name.as_ptr() as *mut libc::c_void,
        iov_len: name.len(),
    };
    // The size of one int: 4, whatever the target.
    let fd_len: u32 = 4;
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(fd_len) } as usize;
    let mut cbuf = vec![0u64; space.div_ceil(8)];
    // SAFETY: an all-zero msghdr is valid; the fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space;
    // SAFETY: msg_control points at a buffer of CMSG_SPACE(sizeof(int))
    // bytes, so the first header and its data fit.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(fd_len) as usize;
        std::ptr::write_unaligned(
            libc::CMSG_DATA(cmsg).cast::<libc::c_int>(),
            master.as_raw_fd(),
        );
    }
    // SAFETY: a connected socket and a fully initialised msghdr.
    let r = unsafe { libc::sendmsg(stream.as_raw_fd(), &msg, 0) };
    if r < 0 {
        return Err(io(std::io::Error::last_os_error()));
    }
    Ok(())
}
