//! The crate's error type.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Which directory of an overlay a path plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// A lower layer, by its index counted from the top (0 is the top-most).
    Lower(usize),
    /// A data-only lower layer, by its index in the order given.
    DataLower(usize),
    /// The upper directory.
    Upper,
    /// The work directory.
    Work,
    /// The mount point.
    Target,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Lower(i) => write!(f, "lower layer {i} (0 = top)"),
            Role::DataLower(i) => write!(f, "data-only lower layer {i}"),
            Role::Upper => f.write_str("upper dir"),
            Role::Work => f.write_str("work dir"),
            Role::Target => f.write_str("target"),
        }
    }
}

/// Everything that can fail in this crate. Each variant is one failing
/// operation and names the path it failed on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The overlay has no lower layer.
    #[error("overlay needs at least one lower layer")]
    NoLowerLayers,

    /// Without an upper dir the kernel needs at least two layers (lower plus
    /// data-only) to merge; a single directory would be a plain bind mount.
    #[error(
        "read-only overlay of the single layer {path:?}: needs a second lower layer or an upper dir"
    )]
    SingleLayerWithoutUpper {
        /// The only layer.
        path: PathBuf,
    },

    /// More layers than the kernel stacks (lower plus data-only layers).
    #[error("{count} lower layers given, the kernel stacks at most {max}")]
    TooManyLayers {
        /// Lower plus data-only layers given.
        count: usize,
        /// The kernel's limit.
        max: usize,
    },

    /// A path is empty or contains a NUL byte.
    #[error("{role} path {path:?} is empty or contains a NUL byte")]
    InvalidPath {
        /// What the path is for.
        role: Role,
        /// The path.
        path: PathBuf,
    },

    /// A directory of the overlay does not exist or cannot be inspected.
    #[error("{role} {path:?}: cannot stat")]
    Stat {
        /// What the path is for.
        role: Role,
        /// The path.
        path: PathBuf,
        /// The error from stat(2).
        #[source]
        source: io::Error,
    },

    /// A path of the overlay is not a directory.
    #[error("{role} {path:?} is not a directory")]
    NotADirectory {
        /// What the path is for.
        role: Role,
        /// The path.
        path: PathBuf,
    },

    /// The same directory is used twice (also through a symlink or bind mount
    /// of the same inode).
    #[error("{path:?} is used twice: as {first} and as {second}")]
    DuplicateDir {
        /// The later of the two paths.
        path: PathBuf,
        /// The first use.
        first: Role,
        /// The second use.
        second: Role,
    },

    /// The upper and work directories are not on the same filesystem mount.
    #[error("upper dir {upper:?} and work dir {work:?} are on different filesystems or mounts")]
    UpperWorkDifferentFilesystems {
        /// The upper directory.
        upper: PathBuf,
        /// The work directory.
        work: PathBuf,
    },

    /// One of upper and work is inside the other.
    #[error("upper dir {upper:?} and work dir {work:?} must not contain each other")]
    UpperWorkNested {
        /// The upper directory.
        upper: PathBuf,
        /// The work directory.
        work: PathBuf,
    },

    /// The upper or work directory is inside a lower layer.
    #[error("{role} {path:?} is inside {other_role} {other:?}")]
    OverlappingLayers {
        /// The upper or work directory.
        path: PathBuf,
        /// Its role.
        role: Role,
        /// The lower layer holding it.
        other: PathBuf,
        /// That layer's role.
        other_role: Role,
    },

    /// The work directory holds something overlayfs did not put there.
    #[error("work dir {path:?} is not empty (found {entry:?})")]
    WorkDirNotEmpty {
        /// The work directory.
        path: PathBuf,
        /// The first unexpected entry.
        entry: PathBuf,
    },

    /// An option needs an upper directory but none was given.
    #[error("option {option} needs an upper and a work dir")]
    NeedsUpper {
        /// The option.
        option: &'static str,
    },

    /// Two options that the kernel refuses together.
    #[error("options {first} and {second} conflict")]
    ConflictingOptions {
        /// One option.
        first: &'static str,
        /// The other.
        second: &'static str,
    },

    /// A path is too long for an fsconfig(2) string value.
    #[error("{role} {path:?} is longer than the {max} bytes fsconfig takes as a string")]
    PathTooLong {
        /// What the path is for.
        role: Role,
        /// The path.
        path: PathBuf,
        /// The limit.
        max: usize,
    },

    /// mount(2) takes at most one page of options; the rendered string is
    /// longer (use the new mount API, which adds layers one at a time).
    #[error("overlay option string for {target:?} is {len} bytes, mount(2) takes at most {max}")]
    OptionsTooLong {
        /// The mount point.
        target: PathBuf,
        /// Length of the rendered option string.
        len: usize,
        /// The limit (page size minus the NUL).
        max: usize,
    },

    /// Opening a directory to hand it to the kernel failed.
    #[error("{role} {path:?}: cannot open")]
    Open {
        /// What the path is for.
        role: Role,
        /// The path.
        path: PathBuf,
        /// The error from open(2).
        #[source]
        source: io::Error,
    },

    /// fsopen("overlay") failed.
    #[error("fsopen(overlay) failed")]
    Fsopen {
        /// The error from fsopen(2).
        #[source]
        source: io::Error,
    },

    /// fsconfig rejected a parameter, or creating the superblock failed.
    #[error("fsconfig {key}{} for {target:?} failed{}", .path.as_ref().map(|p| format!("={}", p.display())).unwrap_or_default(), kernel_log(.log))]
    Fsconfig {
        /// The parameter (`lowerdir+`, `upperdir`, `xino`, … or `create`).
        key: String,
        /// The directory the parameter named, if any.
        path: Option<PathBuf>,
        /// The mount point.
        target: PathBuf,
        /// What the kernel wrote to the context log.
        log: String,
        /// The error from fsconfig(2).
        #[source]
        source: io::Error,
    },

    /// fsmount failed.
    #[error("fsmount for {target:?} failed{}", kernel_log(.log))]
    Fsmount {
        /// The mount point.
        target: PathBuf,
        /// What the kernel wrote to the context log.
        log: String,
        /// The error from fsmount(2).
        #[source]
        source: io::Error,
    },

    /// Attaching the new mount at its target failed.
    #[error("move_mount to {target:?} failed")]
    MoveMount {
        /// The mount point.
        target: PathBuf,
        /// The error from move_mount(2).
        #[source]
        source: io::Error,
    },

    /// mount(2) of the overlay failed.
    #[error("mount(2) of overlay on {target:?} failed (options: {options})")]
    Mount {
        /// The mount point.
        target: PathBuf,
        /// The option string passed.
        options: String,
        /// The error from mount(2).
        #[source]
        source: io::Error,
    },

    /// Unmounting the overlay failed.
    #[error("unmount of {target:?} failed")]
    Unmount {
        /// The mount point.
        target: PathBuf,
        /// The error from umount2(2).
        #[source]
        source: io::Error,
    },

    /// Creating a whiteout failed.
    #[error("cannot create whiteout {path:?}")]
    CreateWhiteout {
        /// The whiteout's path.
        path: PathBuf,
        /// The error from mknod(2).
        #[source]
        source: io::Error,
    },

    /// Reading an extended attribute failed.
    #[error("cannot read xattr {name} of {path:?}")]
    GetXattr {
        /// The file.
        path: PathBuf,
        /// The attribute.
        name: &'static str,
        /// The error from lgetxattr(2).
        #[source]
        source: io::Error,
    },

    /// Setting an extended attribute failed.
    #[error("cannot set xattr {name} on {path:?}")]
    SetXattr {
        /// The file.
        path: PathBuf,
        /// The attribute.
        name: &'static str,
        /// The error from lsetxattr(2).
        #[source]
        source: io::Error,
    },

    /// Reading a directory during a change walk failed.
    #[error("cannot read directory {path:?}")]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The error from readdir.
        #[source]
        source: io::Error,
    },

    /// The change walk met a renamed directory (`redirect_dir=on`), whose
    /// contents the upper dir alone does not hold.
    #[error(
        "{path:?} is a renamed directory (overlay redirect); its changes cannot be listed from the upper dir"
    )]
    RedirectedDir {
        /// The directory in the upper dir.
        path: PathBuf,
    },

    /// Inspecting an entry during a change walk failed.
    #[error("cannot stat {path:?}")]
    StatEntry {
        /// The entry.
        path: PathBuf,
        /// The error from lstat(2).
        #[source]
        source: io::Error,
    },
}

fn kernel_log(log: &str) -> String {
    if log.is_empty() {
        String::new()
    } else {
        format!(" (kernel: {log})")
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
