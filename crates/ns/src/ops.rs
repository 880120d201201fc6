//! Extra steps for the spawned child: the container's mounts, pivot_root,
//! masked paths, limits and privileges, as a flat list prepared in the
//! parent and run as raw system calls in the child.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{Error, Result};

/// One step the child runs after its namespaces, hostname and /proc are set
/// up and before it switches ids, changes directory and executes the
/// program (see [`Command::child_ops`](crate::Command::child_ops)).
///
/// These are mechanisms: which mounts, in which order, is the caller's
/// policy. Paths are taken as they are, in the child's mount namespace at
/// that point of the list (before or after a [`ChildOp::PivotRoot`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChildOp {
    /// mount(2). With `optional`, a missing target (`ENOENT`) is skipped.
    Mount {
        /// Source (device, directory for a bind, or a name).
        source: Option<PathBuf>,
        /// Mount point.
        target: PathBuf,
        /// File system type.
        fstype: Option<String>,
        /// `MS_*` flags.
        flags: u64,
        /// File-system specific options.
        data: Option<String>,
        /// Skip when the target does not exist.
        optional: bool,
    },
    /// From here on, *relative* paths in the targets of later ops (mount
    /// points, directories, files and links to create, read-only paths)
    /// are resolved inside `root` with openat2(RESOLVE_IN_ROOT): `..`,
    /// absolute symlinks and magic links cannot lead outside it, even if the
    /// tree changes meanwhile, and mounts go onto the resolved fd
    /// (CVE-2021-30465). Sources and absolute paths are unaffected;
    /// [`ChildOp::PivotRoot`] (or [`ChildOp::MoveRoot`]) ends it.
    ResolveIn {
        /// The directory (a mount point by then) to resolve in.
        root: PathBuf,
    },
    /// Makes `new_root` the root: chdir, `pivot_root(".", ".")`, detach the
    /// old root, chdir("/"). `new_root` must be a mount point.
    PivotRoot {
        /// The new root directory.
        new_root: PathBuf,
    },
    /// Makes `new_root` the root without pivot_root, for a caller whose
    /// root cannot be pivoted (an initramfs): chdir, move the mount onto
    /// `/` (`MS_MOVE`), chroot("."), chdir("/"). The old root stays
    /// underneath, reachable by a process that may chroot again: prefer
    /// [`ChildOp::PivotRoot`] (this is runc's `--no-pivot`).
    MoveRoot {
        /// The new root directory (a mount point).
        new_root: PathBuf,
    },
    /// mkdir(2); an existing directory is fine.
    Mkdir {
        /// The directory.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// Creates an empty file (e.g. a bind-mount target); an existing file is
    /// fine.
    CreateFile {
        /// The file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// mknod(2) of a character device node with exactly `mode`'s
    /// permission bits (the umask does not apply). An entry that exists
    /// already is left as it is, as runc does. Needs CAP_MKNOD in the
    /// initial user namespace (and the device cgroup's `m` access): a
    /// container with a user namespace of its own binds nodes instead.
    CharDevice {
        /// The node.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// The device's major number.
        major: u32,
        /// The device's minor number.
        minor: u32,
    },
    /// symlink(2); an existing link is fine.
    Symlink {
        /// What the link points to.
        target: PathBuf,
        /// The link itself.
        link: PathBuf,
    },
    /// Writes `data` to an existing file (e.g. a `/proc/sys` sysctl or
    /// `/proc/self/oom_score_adj`). The last component must not be a
    /// symlink, and a path under `/proc` must be on a real procfs.
    WriteFile {
        /// The file.
        path: PathBuf,
        /// What to write (in one write).
        data: Vec<u8>,
    },
    /// Hides a path: a file gets /dev/null bound over it (after checking
    /// that /dev/null is the real null device), a directory an empty
    /// read-only tmpfs; a missing path is skipped.
    MaskPath {
        /// The path.
        path: PathBuf,
    },
    /// Makes a path read-only by a bind mount onto itself remounted
    /// read-only; a missing path is skipped.
    ReadonlyPath {
        /// The path.
        path: PathBuf,
    },
    /// prlimit(2) on the child itself.
    SetRlimit {
        /// `RLIMIT_*` resource.
        resource: u32,
        /// Soft limit.
        soft: u64,
        /// Hard limit.
        hard: u64,
    },
    /// setsid(2): a new session, so that the program cannot reach the
    /// caller's terminal (no TIOCSTI into it).
    Setsid,
    /// Brings the loopback interface of the child's network namespace up
    /// (SIOCSIFFLAGS on a datagram socket).
    LoopbackUp,
    /// ioctl(0, TIOCSCTTY): makes stdin (a terminal) the controlling
    /// terminal of the new session (after [`ChildOp::Setsid`]).
    SetControllingTerminal,
    /// Switches to `uid`/`gid` with exactly `groups` as supplementary
    /// groups, keeping the permitted capabilities for a following
    /// [`ChildOp::Capabilities`].
    SetIds {
        /// User id.
        uid: u32,
        /// Group id.
        gid: u32,
        /// Supplementary groups.
        groups: Vec<u32>,
    },
    /// Drops every capability outside `keep` (bit N = capability N) from
    /// the bounding set. Needs CAP_SETPCAP, so it comes before
    /// [`ChildOp::SetIds`].
    BoundingSet {
        /// Capabilities to keep.
        keep: u64,
    },
    /// Sets the capability sets (bit N = capability N) with capset(2), then
    /// clears the ambient set and raises `ambient`.
    Capabilities {
        /// Effective set.
        effective: u64,
        /// Permitted set.
        permitted: u64,
        /// Inheritable set.
        inheritable: u64,
        /// Ambient set.
        ambient: u64,
    },
    /// prctl(PR_SET_NO_NEW_PRIVS): execve can no longer grant privileges.
    NoNewPrivs,
    /// seccomp(SECCOMP_SET_MODE_FILTER): installs a classic BPF program
    /// that every later system call of the child (and of the program it
    /// executes) goes through. Needs [`ChildOp::NoNewPrivs`] before it or
    /// CAP_SYS_ADMIN; the steps after the list (chdir, close_range,
    /// signal resets, the start gate, execve) must be allowed by it.
    Seccomp {
        /// The program (at most 4096 instructions).
        program: Vec<BpfInstruction>,
        /// `SECCOMP_FILTER_FLAG_*` flags.
        flags: u32,
    },
    /// Makes a file system with the new mount API in the child's own mount
    /// namespace and attaches it at `target`: fsopen(2), one fsconfig(2)
    /// per parameter (directories passed as fds, so no option-string
    /// length limit applies), fsmount(2), move_mount(2).
    FsMount {
        /// File system type, e.g. `overlay`.
        fstype: String,
        /// Parameters, in order.
        params: Vec<FsParam>,
        /// `MOUNT_ATTR_*` flags for fsmount.
        attrs: u32,
        /// Where to attach it.
        target: PathBuf,
    },
}

/// One classic BPF instruction (`struct sock_filter`) of a
/// [`ChildOp::Seccomp`] program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct BpfInstruction {
    /// Opcode (`BPF_LD | BPF_W | BPF_ABS`, ...).
    pub code: u16,
    /// Jump offset when the condition holds.
    pub jt: u8,
    /// Jump offset when it does not.
    pub jf: u8,
    /// The constant operand.
    pub k: u32,
}

/// One fsconfig(2) parameter of a [`ChildOp::FsMount`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsParam {
    /// A flag (`FSCONFIG_SET_FLAG`), e.g. `ro`.
    Flag(String),
    /// A string value (`FSCONFIG_SET_STRING`), e.g. `("index", "off")`.
    String(String, String),
    /// An fd value (`FSCONFIG_SET_FD`). The fd is opened by the caller, in
    /// the caller's mount namespace: overlayfs refuses layer directories
    /// from another mount namespace, so give it paths ([`FsParam::String`]).
    Fd(String, MountFd),
}

/// An fd an op refers to, shared by the ops that hold it and kept open
/// until the spawn is done; compared by fd number.
#[derive(Debug, Clone)]
pub struct MountFd(pub Arc<OwnedFd>);

impl PartialEq for MountFd {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_raw_fd() == other.0.as_raw_fd()
    }
}

impl Eq for MountFd {}

impl From<OwnedFd> for MountFd {
    fn from(fd: OwnedFd) -> MountFd {
        MountFd(Arc::new(fd))
    }
}

/// Operation codes of the raw form.
pub(crate) mod code {
    pub const MOUNT: u32 = 1;
    pub const PIVOT_ROOT: u32 = 2;
    pub const MKDIR: u32 = 3;
    pub const CREATE_FILE: u32 = 4;
    pub const SYMLINK: u32 = 5;
    pub const WRITE_FILE: u32 = 6;
    pub const MASK_PATH: u32 = 7;
    pub const READONLY_PATH: u32 = 8;
    pub const SET_RLIMIT: u32 = 9;
    pub const SETSID: u32 = 10;
    pub const SET_IDS: u32 = 11;
    pub const CAPABILITIES: u32 = 12;
    pub const NO_NEW_PRIVS: u32 = 13;
    pub const BOUNDING_SET: u32 = 14;
    pub const FS_MOUNT: u32 = 16;
    pub const SET_CTTY: u32 = 17;
    pub const RESOLVE_IN: u32 = 18;
    pub const LOOPBACK_UP: u32 = 19;
    pub const SECCOMP: u32 = 20;
    pub const MOVE_ROOT: u32 = 21;
    pub const CHAR_DEVICE: u32 = 22;
}

/// The raw form the child runs: an opcode and six machine words (pointers
/// into [`PreparedOps`] buffers, lengths, flags).
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
pub(crate) struct RawOp {
    pub code: u32,
    pub optional: bool,
    pub a: [u64; 6],
}

/// One fsconfig call in raw form: command, key, value pointer, aux (fd).
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
pub(crate) struct RawParam {
    pub cmd: u32,
    pub key: u64,
    pub value: u64,
    pub aux: i32,
}

/// The ops with every string and list they need, owned, plus the raw form
/// pointing into them. Heap buffers do not move when this value moves.
#[derive(Debug, Default)]
pub(crate) struct PreparedOps {
    _strings: Vec<CString>,
    _lists: Vec<Vec<u32>>,
    _data: Vec<Vec<u8>>,
    pub raw: Vec<RawOp>,
    /// Detached mounts the raw ops refer to by number, kept open.
    _fds: Vec<MountFd>,
    _params: Vec<Vec<RawParam>>,
    /// BPF programs and their `struct sock_fprog` (length, pointer).
    _programs: Vec<(Vec<BpfInstruction>, Box<[u64; 2]>)>,
    /// What each op works on, for error messages.
    pub describe: Vec<PathBuf>,
}

fn c(path: &Path, strings: &mut Vec<CString>) -> Result<u64> {
    let s = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::NulByte {
        field: "child_ops",
        value: path.display().to_string(),
    })?;
    let p = s.as_ptr() as u64;
    strings.push(s);
    Ok(p)
}

fn opt_c(s: Option<&Path>, strings: &mut Vec<CString>) -> Result<u64> {
    s.map_or(Ok(0), |s| c(s, strings))
}

/// The highest capability number the kernel knows, read once per process.
fn cap_last_cap() -> u64 {
    static LAST: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *LAST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(40)
    })
}

pub(crate) fn prepare(ops: &[ChildOp]) -> Result<PreparedOps> {
    let mut p = PreparedOps::default();
    let cap_last = cap_last_cap();
    for op in ops {
        let s = &mut p._strings;
        let (raw, what) = match op {
            ChildOp::Mount {
                source,
                target,
                fstype,
                flags,
                data,
                optional,
            } => (
                RawOp {
                    code: code::MOUNT,
                    optional: *optional,
                    a: [
                        opt_c(source.as_deref(), s)?,
                        c(target, s)?,
                        opt_c(fstype.as_deref().map(Path::new), s)?,
                        *flags,
                        opt_c(data.as_deref().map(Path::new), s)?,
                        0,
                    ],
                },
                target.clone(),
            ),
            ChildOp::ResolveIn { root } => (
                RawOp {
                    code: code::RESOLVE_IN,
                    a: [c(root, s)?, 0, 0, 0, 0, 0],
                    ..RawOp::default()
                },
                root.clone(),
            ),
            ChildOp::PivotRoot { new_root } => (
                RawOp {
                    code: code::PIVOT_ROOT,
                    a: [c(new_root, s)?, 0, 0, 0, 0, 0],
                    ..RawOp::default()
                },
                new_root.clone(),
            ),
            ChildOp::MoveRoot { new_root } => (
                RawOp {
                    code: code::MOVE_ROOT,
                    a: [c(new_root, s)?, 0, 0, 0, 0, 0],
                    ..RawOp::default()
                },
                new_root.clone(),
            ),
            ChildOp::Mkdir { path, mode } | ChildOp::CreateFile { path, mode } => (
                RawOp {
                    code: if matches!(op, ChildOp::Mkdir { .. }) {
                        code::MKDIR
                    } else {
                        code::CREATE_FILE
                    },
                    a: [c(path, s)?, u64::from(*mode), 0, 0, 0, 0],
                    ..RawOp::default()
                },
                path.clone(),
            ),
            ChildOp::CharDevice {
                path,
                mode,
                major,
                minor,
            } => (
                RawOp {
                    code: code::CHAR_DEVICE,
                    a: [
                        c(path, s)?,
                        u64::from(*mode & 0o7777),
                        libc::makedev(*major, *minor),
                        0,
                        0,
                        0,
                    ],
                    ..RawOp::default()
                },
                path.clone(),
            ),
            ChildOp::Symlink { target, link } => (
                RawOp {
                    code: code::SYMLINK,
                    a: [c(target, s)?, c(link, s)?, 0, 0, 0, 0],
                    ..RawOp::default()
                },
                link.clone(),
            ),
            ChildOp::WriteFile { path, data } => {
                let d = data.clone();
                let (ptr, len) = (d.as_ptr() as u64, d.len() as u64);
                let path_ptr = c(path, s)?;
                let must_be_procfs = u64::from(path.starts_with("/proc"));
                p._data.push(d);
                (
                    RawOp {
                        code: code::WRITE_FILE,
                        a: [path_ptr, ptr, len, must_be_procfs, 0, 0],
                        ..RawOp::default()
                    },
                    path.clone(),
                )
            }
            ChildOp::MaskPath { path } | ChildOp::ReadonlyPath { path } => (
                RawOp {
                    code: if matches!(op, ChildOp::MaskPath { .. }) {
                        code::MASK_PATH
                    } else {
                        code::READONLY_PATH
                    },
                    optional: true,
                    a: [c(path, s)?, 0, 0, 0, 0, 0],
                },
                path.clone(),
            ),
            ChildOp::SetRlimit {
                resource,
                soft,
                hard,
            } => (
                RawOp {
                    code: code::SET_RLIMIT,
                    a: [u64::from(*resource), *soft, *hard, 0, 0, 0],
                    ..RawOp::default()
                },
                PathBuf::from(format!("rlimit {resource}")),
            ),
            ChildOp::LoopbackUp => (
                RawOp {
                    code: code::LOOPBACK_UP,
                    ..RawOp::default()
                },
                PathBuf::from("lo"),
            ),
            ChildOp::SetControllingTerminal => (
                RawOp {
                    code: code::SET_CTTY,
                    ..RawOp::default()
                },
                PathBuf::from("controlling terminal"),
            ),
            ChildOp::Setsid => (
                RawOp {
                    code: code::SETSID,
                    ..RawOp::default()
                },
                PathBuf::from("setsid"),
            ),
            ChildOp::SetIds { uid, gid, groups } => {
                let g = groups.clone();
                let (ptr, len) = (g.as_ptr() as u64, g.len() as u64);
                p._lists.push(g);
                (
                    RawOp {
                        code: code::SET_IDS,
                        a: [u64::from(*uid), u64::from(*gid), ptr, len, 0, 0],
                        ..RawOp::default()
                    },
                    PathBuf::from(format!("uid {uid} gid {gid}")),
                )
            }
            ChildOp::BoundingSet { keep } => (
                RawOp {
                    code: code::BOUNDING_SET,
                    a: [*keep, cap_last, 0, 0, 0, 0],
                    ..RawOp::default()
                },
                PathBuf::from("capability bounding set"),
            ),
            ChildOp::Capabilities {
                effective,
                permitted,
                inheritable,
                ambient,
            } => (
                RawOp {
                    code: code::CAPABILITIES,
                    a: [*effective, *permitted, *inheritable, *ambient, cap_last, 0],
                    ..RawOp::default()
                },
                PathBuf::from("capabilities"),
            ),
            ChildOp::FsMount {
                fstype,
                params,
                attrs,
                target,
            } => {
                let fstype_ptr = c(Path::new(fstype), s)?;
                let mut raw_params = Vec::with_capacity(params.len());
                for prm in params {
                    raw_params.push(match prm {
                        FsParam::Flag(k) => RawParam {
                            cmd: 0,
                            key: c(Path::new(k), s)?,
                            ..RawParam::default()
                        },
                        FsParam::String(k, v) => RawParam {
                            cmd: 1,
                            key: c(Path::new(k), s)?,
                            value: c(Path::new(v), s)?,
                            aux: 0,
                        },
                        FsParam::Fd(k, fd) => {
                            p._fds.push(fd.clone());
                            RawParam {
                                cmd: 5,
                                key: c(Path::new(k), s)?,
                                value: 0,
                                aux: fd.0.as_raw_fd(),
                            }
                        }
                    });
                }
                let (ptr, len) = (raw_params.as_ptr() as u64, raw_params.len() as u64);
                p._params.push(raw_params);
                let target_ptr = c(target, s)?;
                (
                    RawOp {
                        code: code::FS_MOUNT,
                        a: [fstype_ptr, ptr, len, u64::from(*attrs), target_ptr, 0],
                        ..RawOp::default()
                    },
                    target.clone(),
                )
            }
            ChildOp::NoNewPrivs => (
                RawOp {
                    code: code::NO_NEW_PRIVS,
                    ..RawOp::default()
                },
                PathBuf::from("no_new_privs"),
            ),
            ChildOp::Seccomp { program, flags } => {
                let len = u16::try_from(program.len())
                    .ok()
                    .filter(|&n| (1..=4096).contains(&n))
                    .ok_or_else(|| Error::InvalidCommand {
                        field: "child_ops",
                        problem: format!(
                            "a seccomp program has {} instructions (1 to 4096 allowed)",
                            program.len()
                        ),
                    })?;
                let program = program.clone();
                // struct sock_fprog: an unsigned short, padding, a pointer.
                let fprog = Box::new([u64::from(len), program.as_ptr() as u64]);
                let ptr = fprog.as_ptr() as u64;
                p._programs.push((program, fprog));
                (
                    RawOp {
                        code: code::SECCOMP,
                        a: [ptr, u64::from(*flags), 0, 0, 0, 0],
                        ..RawOp::default()
                    },
                    PathBuf::from("seccomp filter"),
                )
            }
        };
        p.raw.push(raw);
        p.describe.push(what);
    }
    Ok(p)
}
