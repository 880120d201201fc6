//! Raw system calls.
//!
//! Everything the spawned child runs between clone and execve goes through
//! the `raw` functions here: they are plain `syscall` instructions that touch
//! no memory but their arguments and never set `errno` (a child that shares
//! the parent's memory must not write the parent thread's `errno`). They
//! return the kernel's value: non-negative on success, `-errno` on failure.
//!
//! The parent side uses ordinary libc calls, wrapped to return
//! [`std::io::Result`].
//!
//! # Safety
//! Each function documents what its pointers must satisfy. The clone
//! trampoline ([`clone3_run`]) starts the child on a stack the caller owns
//! and keeps mapped until the child has exec'd or exited.

#![allow(unsafe_code)]
// The raw system call ABI deals in machine words: the casts between
// isize, usize, i32 and u32 here are of fds, lengths and errnos, and are
// intended.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

#[cfg(not(target_arch = "x86_64"))]
compile_error!(
    "hull-ns currently supports x86_64 only (its clone trampoline is written in assembly)"
);

pub(crate) mod raw {
    //! `syscall` instructions without libc (see the module documentation).
    use core::arch::asm;

    /// A system call with up to six arguments. Returns the raw kernel
    /// result (`-errno` on failure).
    ///
    /// # Safety
    /// The arguments must satisfy the system call's own contract.
    #[inline(always)]
    pub(crate) unsafe fn syscall6(
        n: i64,
        a1: usize,
        a2: usize,
        a3: usize,
        a4: usize,
        a5: usize,
        a6: usize,
    ) -> isize {
        let ret: isize;
        // SAFETY: the caller upholds the system call's contract; the
        // `syscall` instruction clobbers only rcx and r11 besides rax.
        unsafe {
            asm!(
                "syscall",
                inlateout("rax") n as isize => ret,
                in("rdi") a1,
                in("rsi") a2,
                in("rdx") a3,
                in("r10") a4,
                in("r8") a5,
                in("r9") a6,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        ret
    }

    /// See [`syscall6`].
    #[inline(always)]
    pub(crate) unsafe fn syscall3(n: i64, a1: usize, a2: usize, a3: usize) -> isize {
        // SAFETY: forwarded contract.
        unsafe { syscall6(n, a1, a2, a3, 0, 0, 0) }
    }

    /// Writes all of `buf` to `fd`, retrying on EINTR and short writes.
    pub(crate) fn write_all(fd: i32, buf: &[u8]) -> isize {
        let mut off = 0;
        while off < buf.len() {
            // SAFETY: the pointer and length describe the live slice `buf`.
            let r = unsafe {
                syscall3(
                    libc::SYS_write,
                    fd as usize,
                    buf.as_ptr() as usize + off,
                    buf.len() - off,
                )
            };
            if r == -(libc::EINTR as isize) {
                continue;
            }
            if r <= 0 {
                return r;
            }
            off += r as usize;
        }
        0
    }

    /// Reads into `buf` once, retrying on EINTR.
    pub(crate) fn read(fd: i32, buf: &mut [u8]) -> isize {
        loop {
            // SAFETY: the pointer and length describe the live slice `buf`.
            let r = unsafe {
                syscall3(
                    libc::SYS_read,
                    fd as usize,
                    buf.as_mut_ptr() as usize,
                    buf.len(),
                )
            };
            if r != -(libc::EINTR as isize) {
                return r;
            }
        }
    }

    /// exit_group(2): never returns.
    pub(crate) fn exit(code: i32) -> ! {
        loop {
            // SAFETY: exit_group takes no pointers and does not return.
            unsafe { syscall3(libc::SYS_exit_group, code as usize, 0, 0) };
        }
    }
}

/// The kernel's `struct clone_args` (clone3(2)), version 2 (with cgroup).
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
    pub cgroup: u64,
}

pub(crate) const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
pub(crate) const CLONE_PIDFD: u64 = 0x1000;

/// The child's entry point: gets the opaque argument, never returns.
pub(crate) type ChildEntry = extern "C" fn(usize) -> !;

/// clone3(2) that starts the child in `entry(arg)` on the stack described
/// by `args.stack`/`args.stack_size`. Returns the child's pid in the parent,
/// or `-errno`.
///
/// # Safety
/// `args` must be a valid `clone_args` whose stack is mapped, writable, owned
/// by the caller and unused by anyone else until the child has exec'd or
/// exited. With `CLONE_VM` the child shares the caller's memory: `entry` must
/// only use memory that stays valid and unchanged for that long, and must be
/// async-signal-safe. Without `CLONE_VM` the child works on a copy.
pub(crate) unsafe fn clone3_run(args: &mut CloneArgs, entry: ChildEntry, arg: usize) -> isize {
    let ret: isize;
    // SAFETY: the caller guarantees the stack and the child's memory rules.
    // In the parent, only rax/rcx/r11 change. In the child, the kernel has
    // set rsp to the top of the new stack: we clear the frame pointer, align
    // the stack and call `entry(arg)`, which never returns (ud2 guards it).
    // r12 and r13 carry `arg` and `entry` across the syscall (it preserves
    // them) and are callee-saved, so marking them as inputs is enough.
    unsafe {
        core::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "and rsp, -16",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 as isize => ret,
            in("rdi") args as *mut CloneArgs,
            in("rsi") core::mem::size_of::<CloneArgs>(),
            in("r12") arg,
            in("r13") entry,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// The legacy clone(2), through glibc's wrapper, for kernels without clone3.
/// `pidfd` receives the pidfd when `CLONE_PIDFD` is in `flags`.
///
/// # Safety
/// As for [`clone3_run`]; `stack_top` is the highest address of the stack.
pub(crate) unsafe fn clone_legacy(
    flags: libc::c_int,
    stack_top: *mut u8,
    entry: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    arg: usize,
    pidfd: &mut libc::c_int,
) -> io::Result<libc::pid_t> {
    // SAFETY: the caller guarantees the stack; `pidfd` is a valid out pointer.
    let pid = unsafe {
        libc::clone(
            entry,
            stack_top.cast(),
            flags,
            arg as *mut libc::c_void,
            pidfd as *mut libc::c_int,
        )
    };
    if pid < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(pid)
    }
}

/// A private anonymous mapping used as the child's stack, with a guard page
/// below it. Unmapped on drop.
#[derive(Debug)]
pub(crate) struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value.
unsafe impl Send for Stack {}

impl Stack {
    pub(crate) const GUARD: usize = 4096;

    pub(crate) fn new(len: usize) -> io::Result<Stack> {
        // SAFETY: an anonymous private mapping at an address of the kernel's
        // choosing; no existing memory is affected.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the first page lies inside the mapping just made.
        if unsafe { libc::mprotect(base, Self::GUARD, libc::PROT_NONE) } != 0 {
            let e = io::Error::last_os_error();
            // SAFETY: unmapping the mapping made above.
            unsafe { libc::munmap(base, len) };
            return Err(e);
        }
        Ok(Stack { base, len })
    }

    /// The lowest usable address (above the guard page).
    pub(crate) fn bottom(&self) -> u64 {
        self.base as u64 + Self::GUARD as u64
    }

    /// The usable size.
    pub(crate) fn size(&self) -> u64 {
        (self.len - Self::GUARD) as u64
    }

    /// One past the highest address.
    pub(crate) fn top(&self) -> *mut u8 {
        // SAFETY: `len` bytes from `base` are the mapping; one past its end is
        // a valid pointer to form.
        unsafe { self.base.cast::<u8>().add(self.len) }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping this value owns; nobody uses
        // it any more (the owner guarantees the child is gone or exec'd).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// setns(2) for the calling thread.
pub(crate) fn setns(fd: BorrowedFd<'_>, nstype: libc::c_int) -> io::Result<()> {
    // SAFETY: setns takes an fd we borrow and an int.
    cvt(unsafe { libc::setns(fd.as_raw_fd(), nstype) }).map(drop)
}

/// unshare(2) with namespace flags only (checked by the caller's type).
pub(crate) fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: only CLONE_NEW* flags reach here, which split no fd table and no
    // memory, so no Rust invariant can break.
    cvt(unsafe { libc::unshare(flags) }).map(drop)
}

/// pidfd_open(2).
pub(crate) fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes two integers.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new fd that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// pidfd_send_signal(2).
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: a borrowed fd, a signal number, no siginfo, no flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// waitid(P_PIDFD, fd, ..., options): returns `(si_code, si_status)` or
/// `None` when WNOHANG found nothing.
pub(crate) fn waitid_pidfd(
    pidfd: BorrowedFd<'_>,
    options: libc::c_int,
) -> io::Result<Option<(i32, i32)>> {
    loop {
        // SAFETY: an all-zero siginfo_t is a valid value to pass for output.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid out pointer; the fd is borrowed.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                options,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        // SAFETY: waitid filled `info` for a child event (or left it zeroed).
        let pid = unsafe { info.si_pid() };
        if pid == 0 {
            return Ok(None);
        }
        // SAFETY: as above, si_status is valid for SIGCHLD infos.
        let status = unsafe { info.si_status() };
        return Ok(Some((info.si_code, status)));
    }
}

/// pipe2(O_CLOEXEC): (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded: both fds are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// fcntl(F_DUPFD_CLOEXEC, 3): a copy of `fd` numbered 3 or above.
pub(crate) fn dup_above_stdio(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: duplicating a borrowed fd.
    let r = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) })?;
    // SAFETY: the new fd is ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// `fd` itself if its number is at least `min`, else a close-on-exec copy
/// numbered `min` or above (the original is closed).
pub(crate) fn renumber_at_least(fd: OwnedFd, min: i32) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() >= min {
        return Ok(fd);
    }
    // SAFETY: duplicating an fd we own.
    let r = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) })?;
    // SAFETY: the new fd is ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// Opens `path` with `flags | O_CLOEXEC`.
pub(crate) fn open(path: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: `path` is NUL-terminated.
    let r = cvt(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) })?;
    // SAFETY: the new fd is ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// ioctl(fd, NS_GET_NSTYPE): the CLONE_NEW* kind of an nsfs fd.
pub(crate) fn ns_get_nstype(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703; // _IO(0xb7, 0x3)
    // SAFETY: NS_GET_NSTYPE takes no argument and returns an int.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE) })
}

/// Blocks every signal in the calling thread, returning the old mask.
pub(crate) fn block_all_signals() -> libc::sigset_t {
    // SAFETY: zeroed sigsets are valid; sigfillset and pthread_sigmask get
    // valid pointers.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        old
    }
}

/// Restores a mask returned by [`block_all_signals`].
pub(crate) fn restore_signals(old: &libc::sigset_t) {
    // SAFETY: `old` is a valid sigset.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut()) };
}
