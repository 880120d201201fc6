//! The child's side of a spawn: a flat list of raw system calls, run between
//! clone and execve.
//!
//! Everything here is async-signal-safe: the child may share the parent's
//! memory (`CLONE_VM`), so it allocates nothing, takes no lock, cannot
//! panic, and touches only the prepared [`Plan`] (which the parent keeps
//! alive and unchanged until the child has exec'd or exited) and its own
//! stack. System calls go through [`raw`], which never writes `errno`.
//! A failure is reported as a fixed-size [`Record`] on the report pipe,
//! after which the child exits with status 127.
//!
//! The steps, in order (each a function below): [`join_namespaces`],
//! [`unshare_time`], [`signal_ready`], [`wait_for_parent`],
//! [`unshare_cgroup`], [`set_names`],
//! [`mount_proc`], [`fork_init`] (then [`run_init`] in PID 1),
//! [`set_stdio`], [`run_ops`], [`set_ids`], [`change_dir`], [`close_fds`],
//! [`reset_signals`], [`run_pre_exec`], [`wait_at_gate`], [`exec`].

#![allow(unsafe_code)]
// The raw system call ABI deals in machine words: the casts between
// isize, usize, i32 and u32 below are of small values (fds, signal numbers,
// errnos, indices) and are intended.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use crate::ops::{RawOp, RawParam, code};
use crate::sys::raw;

use super::Step;

/// The fixed-size message the child sends the parent: a failed step (or
/// [`Step::Ready`]), its errno and a detail index (which join, which fd).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Record {
    pub step: u32,
    pub errno: i32,
    pub detail: u32,
    pub reserved: u32,
}

pub(crate) const RECORD_LEN: usize = core::mem::size_of::<Record>();

impl Record {
    pub(crate) fn to_bytes(self) -> [u8; RECORD_LEN] {
        let mut b = [0u8; RECORD_LEN];
        b[0..4].copy_from_slice(&self.step.to_ne_bytes());
        b[4..8].copy_from_slice(&self.errno.to_ne_bytes());
        b[8..12].copy_from_slice(&self.detail.to_ne_bytes());
        b
    }

    pub(crate) fn from_bytes(b: &[u8; RECORD_LEN]) -> Record {
        let word = |i: usize| [b[i], b[i + 1], b[i + 2], b[i + 3]];
        Record {
            step: u32::from_ne_bytes(word(0)),
            errno: i32::from_ne_bytes(word(4)),
            detail: u32::from_ne_bytes(word(8)),
            reserved: 0,
        }
    }
}

/// One namespace to join: an fd (nsfs file or pidfd) and the setns flags.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Join {
    pub fd: i32,
    pub nstype: i32,
}

/// A pre-exec hook, called through a pointer to the parent's closure list.
pub(crate) type Hooks = Vec<Box<dyn FnMut() -> std::io::Result<()> + Send + Sync>>;

/// Everything the child needs, prepared by the parent. Raw pointers point
/// into buffers the parent owns and keeps alive until the child is gone or
/// has exec'd.
#[derive(Debug)]
pub(crate) struct Plan {
    pub report_fd: i32,
    /// Become non-dumpable before joining namespaces (only on the
    /// fork-like path: dumpability belongs to the address space).
    pub non_dumpable: bool,
    /// The child shares the caller's address space (CLONE_VM): a change of
    /// credentials would make the *caller* non-dumpable too, so the flag is
    /// put back after each one.
    pub shares_memory: bool,
    /// Read end of the parent's release pipe, or -1 when the child need not
    /// wait.
    pub sync_fd: i32,
    /// Send [`Step::Ready`] (after [`unshare_time`]) and wait for the parent.
    pub want_ready: bool,
    pub joins: [Join; 9],
    pub n_joins: usize,
    pub unshare_time: bool,
    /// Open v1 `tasks` files to write `0` into (see [`join_cgroups`]).
    pub cgroup_tasks: *const i32,
    pub n_cgroup_tasks: usize,
    /// v1 `tasks` files to open and write `0` into, NULL-terminated: made
    /// by the parent after the clone (see `Command::cgroup_tasks_after_clone`).
    pub cgroup_tasks_late: *const *const libc::c_char,
    /// Create the cgroup namespace after the parent has placed the child
    /// in its cgroups, so that the namespace is rooted there.
    pub unshare_cgroup: bool,
    pub hostname: (*const u8, usize),
    pub domainname: (*const u8, usize),
    pub mount_proc: bool,
    pub init: bool,
    pub cwd: *const libc::c_char,
    /// (uid, gid) to switch to, inside the namespace, if any.
    pub ids: Option<(u32, u32)>,
    /// Whether to clear supplementary groups when switching ids (not
    /// possible once setgroups is denied).
    pub clear_groups: bool,
    /// Fds to become 0, 1, 2, or -1 to inherit.
    pub stdio: [i32; 3],
    pub close_fds: bool,
    /// Fds to become 3, 4, ... (see [`close_fds`]).
    pub pass_fds: *const i32,
    pub n_pass_fds: usize,
    pub hooks: *mut Hooks,
    /// The caller's extra steps ([`crate::ChildOp`]), in order.
    pub ops: *const RawOp,
    pub n_ops: usize,
    /// Read end of the start gate, or -1: the child reports
    /// [`Step::AtGate`] and waits for a byte before execve.
    pub gate_fd: i32,
    /// Candidate paths of the program, NULL-terminated, tried in order.
    pub paths: *const *const libc::c_char,
    pub argv: *const *const libc::c_char,
    pub envp: *const *const libc::c_char,
}

fn fail(plan: &Plan, step: Step, errno: isize, detail: u32) -> ! {
    let rec = Record {
        step: step as u32,
        errno: (-errno) as i32,
        detail,
        reserved: 0,
    };
    raw::write_all(plan.report_fd, &rec.to_bytes());
    raw::exit(127)
}

fn check(plan: &Plan, step: Step, r: isize, detail: u32) -> isize {
    if r < 0 {
        fail(plan, step, r, detail);
    }
    r
}

/// The entry point the clone trampoline calls (clone3).
pub(crate) extern "C" fn child_main(arg: usize) -> ! {
    // SAFETY: the parent passes the address of a live, prepared Plan and
    // keeps it alive until this process has exec'd or exited.
    let plan = unsafe { &*(arg as *const Plan) };
    run(plan)
}

/// The entry point for glibc's clone(2) wrapper (the legacy path).
pub(crate) extern "C" fn child_main_legacy(arg: *mut libc::c_void) -> libc::c_int {
    child_main(arg as usize)
}

fn run(plan: &Plan) -> ! {
    make_non_dumpable(plan);
    join_namespaces(plan);
    unshare_time(plan);
    signal_ready(plan);
    wait_for_parent(plan);
    join_cgroups(plan);
    unshare_cgroup(plan);
    set_names(plan);
    mount_proc(plan);
    fork_init(plan);
    set_stdio(plan);
    run_ops(plan);
    set_ids(plan);
    change_dir(plan);
    close_fds(plan);
    reset_signals(plan);
    run_pre_exec(plan);
    wait_at_gate(plan);
    exec(plan)
}

/// Keeps processes inside the namespaces being joined from ptracing or
/// reading this one's memory (/proc/PID/mem) while it still holds the
/// caller's state; execve resets dumpability for the program.
fn make_non_dumpable(plan: &Plan) {
    if plan.non_dumpable {
        // SAFETY: prctl with integer arguments.
        let r = unsafe { raw::syscall3(libc::SYS_prctl, libc::PR_SET_DUMPABLE as usize, 0, 0) };
        check(plan, Step::JoinNamespace, r, 0);
    }
}

/// Enters the namespaces to join (user namespace first), by nsfs fd or, in
/// one call, by pidfd.
fn join_namespaces(plan: &Plan) {
    for (i, j) in plan.joins[..plan.n_joins].iter().enumerate() {
        // SAFETY: setns takes two integers.
        let r = unsafe { raw::syscall3(libc::SYS_setns, j.fd as usize, j.nstype as usize, 0) };
        check(plan, Step::JoinNamespace, r, i as u32);
    }
}

/// Creates the time namespace the program will enter at execve; the parent
/// writes its clock offsets in between.
fn unshare_time(plan: &Plan) {
    if plan.unshare_time {
        // SAFETY: unshare takes one integer.
        let r = unsafe { raw::syscall3(libc::SYS_unshare, 0x80, 0, 0) };
        check(plan, Step::UnshareTime, r, 0);
    }
}

/// Tells the parent the child is ready for the parent-side steps.
fn signal_ready(plan: &Plan) {
    if plan.want_ready {
        let rec = Record {
            step: Step::Ready as u32,
            ..Record::default()
        };
        let r = raw::write_all(plan.report_fd, &rec.to_bytes());
        check(plan, Step::WaitForParent, r, 0);
    }
}

/// Waits until the parent has written the id maps (and any other
/// parent-side step) and released the child. EOF means the parent gave up:
/// leave quietly.
fn wait_for_parent(plan: &Plan) {
    if plan.sync_fd < 0 {
        return;
    }
    let mut b = [0u8; 1];
    let r = raw::read(plan.sync_fd, &mut b);
    if r == 0 {
        raw::exit(127);
    }
    check(plan, Step::WaitForParent, r, 0);
    // SAFETY: closing an fd this process owns.
    unsafe { raw::syscall3(libc::SYS_close, plan.sync_fd as usize, 0, 0) };
}

/// Joins v1 cgroups by writing `0` (the calling thread, which is the whole
/// single-threaded child) into their `tasks` files, then closes them: the
/// kernel then skips the global threadgroup lock.
fn join_cgroups(plan: &Plan) {
    for i in 0..plan.n_cgroup_tasks {
        // SAFETY: `cgroup_tasks` points to `n_cgroup_tasks` prepared fds.
        let fd = unsafe { *plan.cgroup_tasks.add(i) };
        let r = raw::write_all(fd, b"0");
        check(plan, Step::JoinCgroup, r, i as u32);
        close(fd);
    }
    let mut i = 0;
    loop {
        // SAFETY: a NULL-terminated array of the parent's C strings.
        let path = unsafe { *plan.cgroup_tasks_late.add(i) };
        if path.is_null() {
            break;
        }
        let detail = (plan.n_cgroup_tasks + i) as u32;
        // SAFETY: openat with a NUL-terminated path and integer flags.
        let fd = unsafe {
            raw::syscall6(
                libc::SYS_openat,
                libc::AT_FDCWD as usize,
                path as usize,
                (libc::O_WRONLY | libc::O_CLOEXEC) as usize,
                0,
                0,
                0,
            )
        };
        check(plan, Step::JoinCgroup, fd, detail);
        let r = raw::write_all(fd as i32, b"0");
        check(plan, Step::JoinCgroup, r, detail);
        close(fd as i32);
        i += 1;
    }
}

/// Creates the cgroup namespace, rooted at the cgroup the child is in now.
fn unshare_cgroup(plan: &Plan) {
    if plan.unshare_cgroup {
        // SAFETY: unshare takes one integer.
        let r = unsafe { raw::syscall3(libc::SYS_unshare, libc::CLONE_NEWCGROUP as usize, 0, 0) };
        check(plan, Step::UnshareCgroup, r, 0);
    }
}

/// Sets the hostname and domain name of the new UTS namespace.
fn set_names(plan: &Plan) {
    if !plan.hostname.0.is_null() {
        // SAFETY: pointer and length describe the parent's prepared buffer.
        let r = unsafe {
            raw::syscall3(
                libc::SYS_sethostname,
                plan.hostname.0 as usize,
                plan.hostname.1,
                0,
            )
        };
        check(plan, Step::SetHostname, r, 0);
    }
    if !plan.domainname.0.is_null() {
        // SAFETY: as above.
        let r = unsafe {
            raw::syscall3(
                libc::SYS_setdomainname,
                plan.domainname.0 as usize,
                plan.domainname.1,
                0,
            )
        };
        check(plan, Step::SetDomainname, r, 0);
    }
}

/// Mounts a fresh /proc for the new PID namespace, after making every mount
/// private so that nothing propagates back to the parent's namespace.
fn mount_proc(plan: &Plan) {
    if !plan.mount_proc {
        return;
    }
    // SAFETY: NUL-terminated literals; no data argument.
    let r = unsafe {
        raw::syscall6(
            libc::SYS_mount,
            0,
            c"/".as_ptr() as usize,
            0,
            (libc::MS_REC | libc::MS_PRIVATE) as usize,
            0,
            0,
        )
    };
    check(plan, Step::MakeMountsPrivate, r, 0);
    // SAFETY: as above.
    let r = unsafe {
        raw::syscall6(
            libc::SYS_mount,
            c"proc".as_ptr() as usize,
            c"/proc".as_ptr() as usize,
            c"proc".as_ptr() as usize,
            (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) as usize,
            0,
            0,
        )
    };
    check(plan, Step::MountProc, r, 0);
}

/// Signals PID 1 passes on to the main process.
const FORWARDED: [i32; 6] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// With an init: forks the main process and stays behind as PID 1.
/// Every signal is still blocked here (the parent blocked them around the
/// clone), so nothing is lost before [`run_init`] waits for them.
fn fork_init(plan: &Plan) {
    if !plan.init {
        return;
    }
    // SAFETY: a fork-like clone (no shared memory, no stack change): the
    // new process continues here on a copy of this stack.
    let r = unsafe { raw::syscall6(libc::SYS_clone, libc::SIGCHLD as usize, 0, 0, 0, 0, 0) };
    let main = check(plan, Step::ForkInit, r, 0);
    if main > 0 {
        run_init(plan, main as i32);
    }
}

/// PID 1: reaps every child, forwards signals to the main process, and
/// exits with the main process's status (128 + N if signal N killed it).
fn run_init(plan: &Plan, main: i32) -> ! {
    // The report pipe must reach EOF when the main process execs, and the
    // init holds no stdio of its own.
    for fd in [plan.report_fd, 0, 1, 2] {
        // SAFETY: closing fds this process owns.
        unsafe { raw::syscall3(libc::SYS_close, fd as usize, 0, 0) };
    }
    // Name it for ps: it is a copy of the caller until now.
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe {
        raw::syscall3(
            libc::SYS_prctl,
            libc::PR_SET_NAME as usize,
            c"hull-init".as_ptr() as usize,
            0,
        )
    };
    let all: u64 = !0;
    loop {
        // SAFETY: an all-zero siginfo is a valid buffer; the set is 8 bytes.
        let mut info: libc::siginfo_t = unsafe { core::mem::zeroed() };
        // SAFETY: pointers to the live set and info; no timeout.
        let sig = unsafe {
            raw::syscall6(
                libc::SYS_rt_sigtimedwait,
                &all as *const u64 as usize,
                &mut info as *mut libc::siginfo_t as usize,
                0,
                8,
                0,
                0,
            )
        };
        if sig < 0 {
            continue;
        }
        let sig = sig as i32;
        if sig == libc::SIGCHLD {
            loop {
                let mut status: i32 = 0;
                // SAFETY: a valid status pointer; no rusage.
                let pid = unsafe {
                    raw::syscall6(
                        libc::SYS_wait4,
                        -1isize as usize,
                        &mut status as *mut i32 as usize,
                        libc::WNOHANG as usize,
                        0,
                        0,
                        0,
                    )
                };
                if pid <= 0 {
                    break;
                }
                if pid as i32 == main {
                    let code = if libc::WIFEXITED(status) {
                        libc::WEXITSTATUS(status)
                    } else {
                        128 + libc::WTERMSIG(status)
                    };
                    raw::exit(code);
                }
            }
        } else if FORWARDED.contains(&sig) {
            // SAFETY: kill takes two integers.
            unsafe { raw::syscall3(libc::SYS_kill, main as usize, sig as usize, 0) };
        }
    }
}

/// Runs the caller's extra steps ([`crate::ChildOp`]) in order.
fn run_ops(plan: &Plan) {
    // The directory relative targets are resolved in (ChildOp::ResolveIn).
    let mut root_fd: i32 = -1;
    for i in 0..plan.n_ops {
        // SAFETY: `ops` points to `n_ops` prepared entries.
        let op = unsafe { &*plan.ops.add(i) };
        let r = match op.code {
            code::RESOLVE_IN | code::PIVOT_ROOT | code::MOVE_ROOT => {
                close(root_fd);
                root_fd = -1;
                if op.code == code::RESOLVE_IN {
                    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
                    // SAFETY: a prepared NUL-terminated path.
                    let fd = unsafe {
                        raw::syscall6(
                            libc::SYS_openat,
                            AT_FDCWD,
                            op.a[0] as usize,
                            flags as usize,
                            0,
                            0,
                            0,
                        )
                    };
                    if fd >= 0 {
                        root_fd = fd as i32;
                    }
                    fd.min(0)
                } else {
                    run_op(op, -1)
                }
            }
            code::SET_IDS => keeping_dumpable(plan, || run_op(op, root_fd)),
            _ => run_op(op, root_fd),
        };
        let skipped = op.optional && r == -(libc::ENOENT as isize);
        if r < 0 && !skipped {
            fail(plan, Step::ChildOp, r, i as u32);
        }
    }
    close(root_fd);
}

fn close(fd: i32) {
    if fd >= 0 {
        // SAFETY: closing an fd this process owns.
        unsafe { raw::syscall3(libc::SYS_close, fd as usize, 0, 0) };
    }
}

/// `/proc/self/fd/N` for an fd, NUL-terminated, on the stack.
struct FdPath([u8; 32]);

impl FdPath {
    fn new(fd: i32) -> FdPath {
        let mut b = [0u8; 32];
        let prefix = b"/proc/self/fd/";
        b[..prefix.len()].copy_from_slice(prefix);
        let mut digits = [0u8; 12];
        let mut n = fd.max(0) as u32;
        let mut k = 0;
        loop {
            digits[k] = b'0' + (n % 10) as u8;
            k += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for j in 0..k {
            b[prefix.len() + j] = digits[k - 1 - j];
        }
        FdPath(b)
    }

    fn ptr(&self) -> usize {
        self.0.as_ptr() as usize
    }
}

fn is_relative(path: usize) -> bool {
    // SAFETY: `path` is a prepared NUL-terminated string: its first byte
    // can be read.
    path != 0 && unsafe { *(path as *const u8) } != b'/'
}

/// openat2(root, path, O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS).
fn resolve(root_fd: i32, path: usize) -> isize {
    const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
    const RESOLVE_IN_ROOT: u64 = 0x10;
    let how: [u64; 3] = [
        (libc::O_PATH | libc::O_CLOEXEC) as u64,
        0,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    ];
    // SAFETY: a prepared path, a valid open_how of 24 bytes.
    unsafe {
        raw::syscall6(
            libc::SYS_openat2,
            root_fd as usize,
            path,
            how.as_ptr() as usize,
            24,
            0,
            0,
        )
    }
}

/// Where a relative path's last component is to be made: its parent
/// resolved in the root (an fd to close) and a pointer to the name.
fn resolve_parent(root_fd: i32, path: usize) -> Result<(i32, usize), isize> {
    // SAFETY: `path` is a prepared NUL-terminated string.
    let bytes = unsafe { core::ffi::CStr::from_ptr(path as *const libc::c_char) }.to_bytes();
    let (parent_fd, name) = match bytes.iter().rposition(|&b| b == b'/') {
        None => (resolve(root_fd, c".".as_ptr() as usize), path),
        Some(idx) => {
            let mut buf = [0u8; 4096];
            if idx >= buf.len() {
                return Err(-(libc::ENAMETOOLONG as isize));
            }
            buf[..idx].copy_from_slice(&bytes[..idx]);
            (resolve(root_fd, buf.as_ptr() as usize), path + idx + 1)
        }
    };
    if parent_fd < 0 {
        return Err(parent_fd);
    }
    Ok((parent_fd as i32, name))
}

const AT_FDCWD: usize = libc::AT_FDCWD as usize;

/// One op; returns 0 or `-errno`. Relative targets are resolved in
/// `root_fd` (when set) and used through their fd.
fn run_op(op: &RawOp, root_fd: i32) -> isize {
    let a = op.a.map(|x| x as usize);
    if root_fd >= 0 {
        if let Some(r) = run_op_in_root(op, &a, root_fd) {
            return r;
        }
    }
    // SAFETY: for every call below, the pointers in `a` were prepared by
    // the parent for this opcode (NUL-terminated strings, buffers with their
    // lengths) and outlive the child's use of them; the other words are
    // plain integers.
    unsafe {
        match op.code {
            code::MOUNT => raw::syscall6(libc::SYS_mount, a[0], a[1], a[2], a[3], a[4], 0),
            code::PIVOT_ROOT => {
                let dot = c".".as_ptr() as usize;
                let mut r = raw::syscall3(libc::SYS_chdir, a[0], 0, 0);
                if r == 0 {
                    r = raw::syscall3(libc::SYS_pivot_root, dot, dot, 0);
                }
                if r == 0 {
                    r = raw::syscall3(libc::SYS_umount2, dot, libc::MNT_DETACH as usize, 0);
                }
                if r == 0 {
                    r = raw::syscall3(libc::SYS_chdir, c"/".as_ptr() as usize, 0, 0);
                }
                r
            }
            code::MOVE_ROOT => {
                let dot = c".".as_ptr() as usize;
                let slash = c"/".as_ptr() as usize;
                let mut r = raw::syscall3(libc::SYS_chdir, a[0], 0, 0);
                if r == 0 {
                    r = raw::syscall6(libc::SYS_mount, dot, slash, 0, libc::MS_MOVE as usize, 0, 0);
                }
                if r == 0 {
                    r = raw::syscall3(libc::SYS_chroot, dot, 0, 0);
                }
                if r == 0 {
                    r = raw::syscall3(libc::SYS_chdir, slash, 0, 0);
                }
                r
            }
            code::MKDIR => ok_if_exists(raw::syscall3(libc::SYS_mkdirat, AT_FDCWD, a[0], a[1])),
            code::CREATE_FILE => {
                let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOCTTY;
                let fd =
                    raw::syscall6(libc::SYS_openat, AT_FDCWD, a[0], flags as usize, a[1], 0, 0);
                if fd < 0 {
                    return fd;
                }
                raw::syscall3(libc::SYS_close, fd as usize, 0, 0);
                0
            }
            code::CHAR_DEVICE => char_device(AT_FDCWD, a[0], a[1], a[2]),
            code::SYMLINK => ok_if_exists(raw::syscall3(libc::SYS_symlinkat, a[0], AT_FDCWD, a[1])),
            code::WRITE_FILE => {
                let flags = libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NOFOLLOW;
                let fd = raw::syscall6(libc::SYS_openat, AT_FDCWD, a[0], flags as usize, 0, 0, 0);
                if fd < 0 {
                    return fd;
                }
                // A write meant for procfs must reach the real procfs, not
                // a file some mount put in its place (CVE-2019-16884).
                if a[3] != 0 {
                    let mut st = KStatfs::default();
                    let r = raw::syscall3(
                        libc::SYS_fstatfs,
                        fd as usize,
                        &mut st as *mut KStatfs as usize,
                        0,
                    );
                    if r < 0 || st.kind_bsize[0] != PROC_SUPER_MAGIC {
                        raw::syscall3(libc::SYS_close, fd as usize, 0, 0);
                        return if r < 0 { r } else { -(libc::EXDEV as isize) };
                    }
                }
                let data = core::slice::from_raw_parts(a[1] as *const u8, a[2]);
                let r = raw::write_all(fd as i32, data);
                raw::syscall3(libc::SYS_close, fd as usize, 0, 0);
                r.min(0)
            }
            code::MASK_PATH => {
                let null = c"/dev/null".as_ptr() as usize;
                // The mask's source must be the real null device, not
                // something put in its place (CVE-2025-31133).
                let mut st: libc::stat = core::mem::zeroed();
                let r = raw::syscall6(
                    libc::SYS_newfstatat,
                    AT_FDCWD,
                    null,
                    &mut st as *mut libc::stat as usize,
                    libc::AT_SYMLINK_NOFOLLOW as usize,
                    0,
                    0,
                );
                if r < 0 {
                    return r;
                }
                if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != libc::makedev(1, 3) {
                    return -(libc::EPERM as isize);
                }
                // A directory gets an empty read-only tmpfs, anything else
                // the null device (stat first: a failed bind costs more).
                let mut target: libc::stat = core::mem::zeroed();
                let r = raw::syscall6(
                    libc::SYS_newfstatat,
                    AT_FDCWD,
                    a[0],
                    &mut target as *mut libc::stat as usize,
                    0,
                    0,
                    0,
                );
                if r < 0 {
                    return r;
                }
                if target.st_mode & libc::S_IFMT == libc::S_IFDIR {
                    let tmpfs = c"tmpfs".as_ptr() as usize;
                    let flags =
                        (libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC)
                            as usize;
                    raw::syscall6(
                        libc::SYS_mount,
                        tmpfs,
                        a[0],
                        tmpfs,
                        flags,
                        c"size=0".as_ptr() as usize,
                        0,
                    )
                } else {
                    raw::syscall6(libc::SYS_mount, null, a[0], 0, libc::MS_BIND as usize, 0, 0)
                }
            }
            code::READONLY_PATH => {
                let bind = (libc::MS_BIND | libc::MS_REC) as usize;
                let r = raw::syscall6(libc::SYS_mount, a[0], a[0], 0, bind, 0, 0);
                if r < 0 {
                    return r;
                }
                // Keep the flags a user namespace may have locked.
                let mut st = KStatfs::default();
                let r = raw::syscall3(libc::SYS_statfs, a[0], &mut st as *mut KStatfs as usize, 0);
                if r < 0 {
                    return r;
                }
                let keep = (libc::ST_NOSUID
                    | libc::ST_NODEV
                    | libc::ST_NOEXEC
                    | libc::ST_NOATIME
                    | libc::ST_NODIRATIME
                    | libc::ST_RELATIME) as usize;
                let flags = (libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY) as usize
                    | (st.flags as usize & keep);
                raw::syscall6(libc::SYS_mount, 0, a[0], 0, flags, 0, 0)
            }
            code::SET_RLIMIT => {
                let lim = [a[1] as u64, a[2] as u64];
                raw::syscall6(libc::SYS_prlimit64, 0, a[0], lim.as_ptr() as usize, 0, 0, 0)
            }
            code::SETSID => raw::syscall3(libc::SYS_setsid, 0, 0, 0).min(0),
            code::SET_IDS => {
                let steps = [
                    (libc::SYS_prctl, [libc::PR_SET_KEEPCAPS as usize, 1, 0]),
                    (libc::SYS_setgroups, [a[3], a[2], 0]),
                    (libc::SYS_setresgid, [a[1], a[1], a[1]]),
                    (libc::SYS_setresuid, [a[0], a[0], a[0]]),
                ];
                for (nr, args) in steps {
                    let r = raw::syscall3(nr, args[0], args[1], args[2]);
                    if r < 0 {
                        return r;
                    }
                }
                0
            }
            code::BOUNDING_SET => {
                for cap in 0..=a[1] {
                    if a[0] & (1 << cap) == 0 {
                        let r =
                            raw::syscall3(libc::SYS_prctl, libc::PR_CAPBSET_DROP as usize, cap, 0);
                        if r < 0 && r != -(libc::EINVAL as isize) {
                            return r;
                        }
                    }
                }
                0
            }
            code::CAPABILITIES => {
                // _LINUX_CAPABILITY_VERSION_3: two 32-bit words per set.
                let header: [u32; 2] = [0x2008_0522, 0];
                let lo = |x: usize| (x & 0xffff_ffff) as u32;
                let hi = |x: usize| (x >> 32) as u32;
                let data: [u32; 6] = [lo(a[0]), lo(a[1]), lo(a[2]), hi(a[0]), hi(a[1]), hi(a[2])];
                let r = raw::syscall3(
                    libc::SYS_capset,
                    header.as_ptr() as usize,
                    data.as_ptr() as usize,
                    0,
                );
                if r < 0 {
                    return r;
                }
                let amb = libc::PR_CAP_AMBIENT as usize;
                let r = raw::syscall6(
                    libc::SYS_prctl,
                    amb,
                    libc::PR_CAP_AMBIENT_CLEAR_ALL as usize,
                    0,
                    0,
                    0,
                    0,
                );
                if r < 0 {
                    return r;
                }
                for cap in 0..=a[4] {
                    if a[3] & (1 << cap) != 0 {
                        let raise = libc::PR_CAP_AMBIENT_RAISE as usize;
                        let r = raw::syscall6(libc::SYS_prctl, amb, raise, cap, 0, 0, 0);
                        if r < 0 {
                            return r;
                        }
                    }
                }
                0
            }
            code::SECCOMP => raw::syscall3(
                libc::SYS_seccomp,
                1, // SECCOMP_SET_MODE_FILTER
                a[1],
                a[0],
            ),
            code::NO_NEW_PRIVS => raw::syscall6(
                libc::SYS_prctl,
                libc::PR_SET_NO_NEW_PRIVS as usize,
                1,
                0,
                0,
                0,
                0,
            ),
            code::FS_MOUNT => fs_mount(&a),
            code::LOOPBACK_UP => loopback_up(),
            code::SET_CTTY => raw::syscall3(libc::SYS_ioctl, 0, libc::TIOCSCTTY as usize, 0),
            _ => -(libc::EINVAL as isize),
        }
    }
}

const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// The kernel's `struct statfs` on x86_64 (libc's lacks `f_flags`).
#[repr(C)]
#[derive(Default)]
struct KStatfs {
    kind_bsize: [i64; 2],
    counts: [u64; 5],
    fsid: [i32; 2],
    namelen_frsize: [i64; 2],
    flags: i64,
    spare: [i64; 4],
}

/// fsopen, one fsconfig per parameter, create, fsmount, move_mount onto the
/// target; every fd closed again. `a` as prepared for `FS_MOUNT`.
fn fs_mount(a: &[usize; 6]) -> isize {
    const FSOPEN_CLOEXEC: usize = 1;
    const FSCONFIG_CMD_CREATE: usize = 6;
    const FSMOUNT_CLOEXEC: usize = 1;
    const MOVE_MOUNT_F_EMPTY_PATH: usize = 0x4;
    // SAFETY: every pointer was prepared by the parent for this op
    // (NUL-terminated strings, an array of `a[2]` parameters) and stays
    // alive until the child has exec'd; the rest are integers.
    unsafe {
        let fs = raw::syscall3(libc::SYS_fsopen, a[0], FSOPEN_CLOEXEC, 0);
        if fs < 0 {
            return fs;
        }
        let params = core::slice::from_raw_parts(a[1] as *const RawParam, a[2]);
        let mut r = 0;
        for prm in params {
            r = raw::syscall6(
                libc::SYS_fsconfig,
                fs as usize,
                prm.cmd as usize,
                prm.key as usize,
                prm.value as usize,
                prm.aux as usize,
                0,
            );
            if r < 0 {
                break;
            }
        }
        if r >= 0 {
            r = raw::syscall6(
                libc::SYS_fsconfig,
                fs as usize,
                FSCONFIG_CMD_CREATE,
                0,
                0,
                0,
                0,
            );
        }
        let mut mnt = -1;
        if r >= 0 {
            mnt = raw::syscall3(libc::SYS_fsmount, fs as usize, FSMOUNT_CLOEXEC, a[3]);
            r = mnt.min(0);
        }
        raw::syscall3(libc::SYS_close, fs as usize, 0, 0);
        if r >= 0 {
            r = raw::syscall6(
                libc::SYS_move_mount,
                mnt as usize,
                c"".as_ptr() as usize,
                AT_FDCWD,
                a[4],
                MOVE_MOUNT_F_EMPTY_PATH,
                0,
            );
        }
        if mnt >= 0 {
            raw::syscall3(libc::SYS_close, mnt as usize, 0, 0);
        }
        r.min(0)
    }
}

/// The ops whose target is relative, resolved inside the root; `None` for
/// any other op (run as usual).
fn run_op_in_root(op: &RawOp, a: &[usize; 6], root_fd: i32) -> Option<isize> {
    let target = match op.code {
        code::MOUNT => a[1],
        code::SYMLINK => a[1],
        code::MKDIR
        | code::CREATE_FILE
        | code::CHAR_DEVICE
        | code::WRITE_FILE
        | code::READONLY_PATH => a[0],
        _ => return None,
    };
    if !is_relative(target) {
        return None;
    }
    // SAFETY: as in run_op: prepared pointers and integers, fds we own.
    let r = unsafe {
        match op.code {
            code::MOUNT => {
                let fd = resolve(root_fd, target);
                if fd < 0 {
                    return Some(fd);
                }
                let p = FdPath::new(fd as i32);
                let r = raw::syscall6(libc::SYS_mount, a[0], p.ptr(), a[2], a[3], a[4], 0);
                close(fd as i32);
                r
            }
            code::READONLY_PATH => {
                let fd = resolve(root_fd, target);
                if fd < 0 {
                    return Some(fd);
                }
                let p = FdPath::new(fd as i32);
                let bind = (libc::MS_BIND | libc::MS_REC) as usize;
                let r = raw::syscall6(libc::SYS_mount, p.ptr(), p.ptr(), 0, bind, 0, 0);
                close(fd as i32);
                if r < 0 {
                    return Some(r);
                }
                // Resolved again: now to the new bind mount itself.
                let fd = resolve(root_fd, target);
                if fd < 0 {
                    return Some(fd);
                }
                let p = FdPath::new(fd as i32);
                let r = remount_readonly(p.ptr());
                close(fd as i32);
                r
            }
            _ => {
                let (pfd, name) = match resolve_parent(root_fd, target) {
                    Ok(x) => x,
                    Err(e) => return Some(e),
                };
                let dir = pfd as usize;
                let r = match op.code {
                    code::MKDIR => ok_if_exists(raw::syscall3(libc::SYS_mkdirat, dir, name, a[1])),
                    code::SYMLINK => {
                        ok_if_exists(raw::syscall3(libc::SYS_symlinkat, a[0], dir, name))
                    }
                    code::CHAR_DEVICE => char_device(dir, name, a[1], a[2]),
                    code::CREATE_FILE => {
                        let flags = libc::O_CREAT
                            | libc::O_WRONLY
                            | libc::O_CLOEXEC
                            | libc::O_NOCTTY
                            | libc::O_NOFOLLOW;
                        let fd =
                            raw::syscall6(libc::SYS_openat, dir, name, flags as usize, a[1], 0, 0);
                        close(fd as i32);
                        fd.min(0)
                    }
                    _ => {
                        // WRITE_FILE
                        let flags =
                            libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NOFOLLOW;
                        let fd =
                            raw::syscall6(libc::SYS_openat, dir, name, flags as usize, 0, 0, 0);
                        if fd < 0 {
                            fd
                        } else {
                            let data = core::slice::from_raw_parts(a[1] as *const u8, a[2]);
                            let r = raw::write_all(fd as i32, data);
                            close(fd as i32);
                            r.min(0)
                        }
                    }
                };
                close(pfd);
                r
            }
        }
    };
    Some(r)
}

/// mknodat(2) of a character device, then fchmodat(2) to the exact
/// permission bits (mknod applies the umask); an existing entry is left.
///
/// # Safety
/// `name` points to a NUL-terminated path; `dir` is an fd or AT_FDCWD.
unsafe fn char_device(dir: usize, name: usize, perm: usize, dev: usize) -> isize {
    let mode = libc::S_IFCHR as usize | perm;
    // SAFETY: the caller's path; integers.
    let r = unsafe { raw::syscall6(libc::SYS_mknodat, dir, name, mode, dev, 0, 0) };
    if r == -(libc::EEXIST as isize) {
        return 0;
    }
    if r < 0 {
        return r;
    }
    // SAFETY: as above; the node was made by this call, not followed.
    unsafe { raw::syscall6(libc::SYS_fchmodat, dir, name, perm, 0, 0, 0) }
}

/// Remounts a bind mount read-only, keeping the flags a user namespace may
/// have locked (nosuid, nodev, noexec, atime).
///
/// # Safety
/// `path` points to a NUL-terminated path.
unsafe fn remount_readonly(path: usize) -> isize {
    let mut st = KStatfs::default();
    // SAFETY: the caller's path and a valid statfs buffer.
    let r = unsafe { raw::syscall3(libc::SYS_statfs, path, &mut st as *mut KStatfs as usize, 0) };
    if r < 0 {
        return r;
    }
    let keep = (libc::ST_NOSUID
        | libc::ST_NODEV
        | libc::ST_NOEXEC
        | libc::ST_NOATIME
        | libc::ST_NODIRATIME
        | libc::ST_RELATIME) as usize;
    let flags =
        (libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY) as usize | (st.flags as usize & keep);
    // SAFETY: as above.
    unsafe { raw::syscall6(libc::SYS_mount, 0, path, 0, flags, 0, 0) }
}

/// SIOCGIFFLAGS then SIOCSIFFLAGS with IFF_UP on `lo`.
pub(super) fn loopback_up() -> isize {
    // struct ifreq: a 16-byte name, then a union whose first member is the
    // short flags; 40 bytes in all on x86_64.
    let mut ifr = [0u8; 40];
    ifr[..2].copy_from_slice(b"lo");
    // SAFETY: socket, ioctl with a valid ifreq buffer, close.
    unsafe {
        let fd = raw::syscall3(
            libc::SYS_socket,
            libc::AF_INET as usize,
            (libc::SOCK_DGRAM | libc::SOCK_CLOEXEC) as usize,
            0,
        );
        if fd < 0 {
            return fd;
        }
        let mut r = raw::syscall3(
            libc::SYS_ioctl,
            fd as usize,
            libc::SIOCGIFFLAGS as usize,
            ifr.as_mut_ptr() as usize,
        );
        if r >= 0 {
            let flags = u16::from_ne_bytes([ifr[16], ifr[17]]) | libc::IFF_UP as u16;
            ifr[16..18].copy_from_slice(&flags.to_ne_bytes());
            r = raw::syscall3(
                libc::SYS_ioctl,
                fd as usize,
                libc::SIOCSIFFLAGS as usize,
                ifr.as_mut_ptr() as usize,
            );
        }
        close(fd as i32);
        r.min(0)
    }
}

fn ok_if_exists(r: isize) -> isize {
    if r == -(libc::EEXIST as isize) { 0 } else { r }
}

/// Create/start split: reports that everything is ready, then waits for the
/// start signal (a byte on the gate). EOF means the caller gave up.
fn wait_at_gate(plan: &Plan) {
    if plan.gate_fd < 0 {
        return;
    }
    let rec = Record {
        step: Step::AtGate as u32,
        ..Record::default()
    };
    let r = raw::write_all(plan.report_fd, &rec.to_bytes());
    check(plan, Step::WaitAtGate, r, 0);
    let mut b = [0u8; 1];
    let r = raw::read(plan.gate_fd, &mut b);
    if r == 0 {
        raw::exit(127);
    }
    check(plan, Step::WaitAtGate, r, 0);
    // SAFETY: closing an fd this process owns.
    unsafe { raw::syscall3(libc::SYS_close, plan.gate_fd as usize, 0, 0) };
}

/// Becomes the requested user and group (after the parent wrote the id
/// maps, so that the ids exist in a new user namespace). Raw set*id calls
/// change only this single-threaded process, which is all there is.
/// Runs `f`, a change of credentials, and then puts the address space's
/// dumpable flag back if this child shares it with the caller (the kernel
/// clears it on a change of ids, which would leave the caller unable to be
/// ptraced or to read its own /proc files as itself). The program gets the
/// flag execve computes for it either way.
fn keeping_dumpable(plan: &Plan, f: impl FnOnce() -> isize) -> isize {
    if !plan.shares_memory {
        return f();
    }
    let get = libc::PR_GET_DUMPABLE as usize;
    let set = libc::PR_SET_DUMPABLE as usize;
    // SAFETY: prctl with integer arguments.
    let before = unsafe { raw::syscall3(libc::SYS_prctl, get, 0, 0) };
    let r = f();
    if before == 0 || before == 1 {
        // SAFETY: as above.
        unsafe { raw::syscall3(libc::SYS_prctl, set, before as usize, 0) };
    }
    r
}

fn set_ids(plan: &Plan) {
    let Some((uid, gid)) = plan.ids else {
        return;
    };
    let r = keeping_dumpable(plan, || set_ids_now(uid, gid, plan.clear_groups));
    if r < 0 {
        fail(plan, Step::SetIds, r, 0);
    }
}

fn set_ids_now(uid: u32, gid: u32, clear_groups: bool) -> isize {
    if clear_groups {
        // SAFETY: setgroups with an empty list takes no pointer.
        let r = unsafe { raw::syscall3(libc::SYS_setgroups, 0, 0, 0) };
        if r < 0 {
            return r;
        }
    }
    let g = gid as usize;
    // SAFETY: setresgid/setresuid take integers.
    let r = unsafe { raw::syscall3(libc::SYS_setresgid, g, g, g) };
    if r < 0 {
        return r;
    }
    let u = uid as usize;
    // SAFETY: as above.
    unsafe { raw::syscall3(libc::SYS_setresuid, u, u, u) }
}

/// Changes to the working directory, and checks that it lies inside the
/// root: a path through a still-open fd of the caller (`/proc/self/fd/N`)
/// could otherwise leave the program in a host directory
/// (CVE-2024-21626). getcwd(2) fails with ENOENT, or gives a path that does
/// not start with `/`, for a directory the root cannot reach.
fn change_dir(plan: &Plan) {
    if !plan.cwd.is_null() {
        // SAFETY: a NUL-terminated path the parent prepared.
        let r = unsafe { raw::syscall3(libc::SYS_chdir, plan.cwd as usize, 0, 0) };
        check(plan, Step::Chdir, r, 0);
        let mut buf = [0u8; 256];
        // SAFETY: a valid buffer and its length.
        let r = unsafe { raw::syscall3(libc::SYS_getcwd, buf.as_mut_ptr() as usize, buf.len(), 0) };
        // ERANGE (a long path) is fine: it was resolved inside the root.
        let outside = (r < 0 && r != -(libc::ERANGE as isize)) || (r > 0 && buf[0] != b'/');
        if outside {
            fail(plan, Step::Chdir, -(libc::ENOENT as isize), 0);
        }
    }
}

/// Puts the prepared fds (all numbered 3 or above) on 0, 1 and 2.
fn set_stdio(plan: &Plan) {
    for (target, &fd) in plan.stdio.iter().enumerate() {
        if fd >= 0 {
            // SAFETY: dup3 takes integers; fd != target since fd >= 3.
            let r = unsafe { raw::syscall3(libc::SYS_dup3, fd as usize, target, 0) };
            check(plan, Step::Stdio, r, target as u32);
        }
    }
}

/// The most fds [`crate::Command::pass_fds`] takes.
pub(crate) const MAX_PASS_FDS: usize = 256;

/// Puts the fds to pass at 3, 4, ... and marks every fd above them
/// close-on-exec, so nothing else but stdio reaches the program (the report
/// pipe still closes at execve, which is the signal of success).
fn close_fds(plan: &Plan) {
    // The fds to pass become 3, 4, ...: each is first copied above that
    // range (so that no target overwrites a source not yet moved), then
    // dup2'd into place, which clears close-on-exec on the copy.
    let n = plan.n_pass_fds.min(MAX_PASS_FDS);
    let mut high = [0i32; MAX_PASS_FDS];
    for (i, h) in high.iter_mut().enumerate().take(n) {
        // SAFETY: `pass_fds` points to `n_pass_fds` prepared fds; fcntl
        // takes integers.
        let r = unsafe {
            let src = *plan.pass_fds.add(i);
            raw::syscall3(
                libc::SYS_fcntl,
                src as usize,
                libc::F_DUPFD_CLOEXEC as usize,
                3 + n,
            )
        };
        check(plan, Step::Stdio, r, 3 + i as u32);
        *h = r as i32;
    }
    for (i, h) in high.iter().enumerate().take(n) {
        // SAFETY: dup2 takes integers.
        let r = unsafe { raw::syscall3(libc::SYS_dup2, *h as usize, 3 + i, 0) };
        check(plan, Step::Stdio, r, 3 + i as u32);
    }
    if plan.close_fds {
        const CLOSE_RANGE_CLOEXEC: usize = 1 << 2;
        // SAFETY: close_range takes integers. Kernels before 5.11 lack the
        // flag (EINVAL) or the call (ENOSYS): Rust opens every fd with
        // O_CLOEXEC anyway, so that is not an error.
        unsafe {
            raw::syscall3(
                libc::SYS_close_range,
                3 + n,
                !0u32 as usize,
                CLOSE_RANGE_CLOEXEC,
            )
        };
    }
}

/// Restores default signal dispositions (handlers and an ignored SIGPIPE)
/// and unblocks every signal, as a fresh program expects.
fn reset_signals(plan: &Plan) {
    #[repr(C)]
    struct KSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    for sig in 1..=64usize {
        if sig == libc::SIGKILL as usize || sig == libc::SIGSTOP as usize {
            continue;
        }
        let mut old = KSigaction {
            handler: 0,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        // SAFETY: querying the disposition into a valid kernel_sigaction.
        let r = unsafe {
            raw::syscall6(
                libc::SYS_rt_sigaction,
                sig,
                0,
                &mut old as *mut KSigaction as usize,
                8,
                0,
                0,
            )
        };
        let ignored_pipe = sig == libc::SIGPIPE as usize && old.handler == libc::SIG_IGN;
        if r == 0 && (old.handler > libc::SIG_IGN || ignored_pipe) {
            let dfl = KSigaction {
                handler: libc::SIG_DFL,
                flags: 0,
                restorer: 0,
                mask: 0,
            };
            // SAFETY: installing SIG_DFL from a valid kernel_sigaction.
            let r = unsafe {
                raw::syscall6(
                    libc::SYS_rt_sigaction,
                    sig,
                    &dfl as *const KSigaction as usize,
                    0,
                    8,
                    0,
                    0,
                )
            };
            check(plan, Step::ResetSignals, r, sig as u32);
        }
    }
    let empty: u64 = 0;
    // SAFETY: setting the mask from a valid 8-byte set.
    let r = unsafe {
        raw::syscall6(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK as usize,
            &empty as *const u64 as usize,
            0,
            8,
            0,
            0,
        )
    };
    check(plan, Step::ResetSignals, r, 0);
}

/// Runs the caller's pre-exec hooks (only ever set on the fork-like path,
/// where the child has its own copy of memory).
fn run_pre_exec(plan: &Plan) {
    if plan.hooks.is_null() {
        return;
    }
    // SAFETY: the parent set `hooks` only for a fork-like clone, so this is
    // the child's own copy of the list; the caller of the unsafe `pre_exec`
    // promised the hooks are fit to run here.
    let hooks = unsafe { &mut *plan.hooks };
    for (i, hook) in hooks.iter_mut().enumerate() {
        if let Err(e) = hook() {
            let errno = e.raw_os_error().unwrap_or(libc::EINVAL);
            fail(plan, Step::PreExec, -(errno as isize), i as u32);
        }
    }
}

/// Executes the program: each candidate path in turn, as execvp does,
/// reporting the most telling error if none runs.
fn exec(plan: &Plan) -> ! {
    let mut err: isize = -(libc::ENOENT as isize);
    let mut i = 0;
    loop {
        // SAFETY: `paths` is a NULL-terminated array the parent prepared.
        let path = unsafe { *plan.paths.add(i) };
        if path.is_null() {
            break;
        }
        // SAFETY: NUL-terminated path and NULL-terminated argv/envp arrays.
        let r = unsafe {
            raw::syscall3(
                libc::SYS_execve,
                path as usize,
                plan.argv as usize,
                plan.envp as usize,
            )
        };
        // ENOENT and ENOTDIR mean "try the next directory"; anything else
        // (EACCES, ENOEXEC, ...) is the better explanation to keep.
        let not_found = r == -(libc::ENOENT as isize) || r == -(libc::ENOTDIR as isize);
        if !not_found && err == -(libc::ENOENT as isize) {
            err = r;
        }
        i += 1;
    }
    fail(plan, Step::Exec, err, 0)
}
