//! Copying files into and out of a container (`docker cp`), every path
//! resolved inside the container's root.
//!
//! The container's root is opened at `/proc/PID/root`; paths are resolved
//! from it with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so `..`
//! and absolute symlinks stay inside the root and `/proc/self/root`-style
//! links are refused. The last component is never followed (`O_NOFOLLOW`,
//! `*at` calls on a parent directory fd): a symlink in the container is
//! copied as a symlink, and writing onto one fails with `ELOOP`.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};

use crate::{Container, Error, Result, Status};

const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// What failed: the operation, the path and the OS error.
pub(crate) type CpError = (&'static str, PathBuf, io::Error);
type CpResult<T> = std::result::Result<T, CpError>;

fn errno<'a>(op: &'static str, path: &'a Path) -> impl Fn(rustix::io::Errno) -> CpError + 'a {
    move |e| (op, path.to_path_buf(), io::Error::from(e))
}

fn ioe<'a>(op: &'static str, path: &'a Path) -> impl Fn(io::Error) -> CpError + 'a {
    move |e| (op, path.to_path_buf(), e)
}

/// The file types a lookup distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

/// The answer of [`lookup_in_dir`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    Missing,
    /// An overlay whiteout (a 0:0 character device).
    Whiteout,
    Found(Kind),
}

fn kind_of(st: &rustix::fs::Stat) -> Kind {
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => Kind::File,
        FileType::Directory => Kind::Dir,
        FileType::Symlink => Kind::Symlink,
        _ => Kind::Other,
    }
}

/// Opens a directory to resolve paths from.
pub(crate) fn open_root(dir: &Path) -> io::Result<OwnedFd> {
    rustix::fs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)
}

/// A path inside a root, relative (`.` for the root itself).
fn relative(p: &Path) -> PathBuf {
    let r: PathBuf = p
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .collect();
    if r.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        r
    }
}

/// Looks `path` up inside the directory `root` (as a root), without
/// following its last component.
pub(crate) fn lookup_in_dir(root: &Path, path: &str) -> Lookup {
    let Ok(r) = open_root(root) else {
        return Lookup::Missing;
    };
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let Ok(fd) = rustix::fs::openat2(&r, relative(Path::new(path)), flags, Mode::empty(), IN_ROOT)
    else {
        return Lookup::Missing;
    };
    let Ok(st) = rustix::fs::fstat(&fd) else {
        return Lookup::Missing;
    };
    if FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0 {
        return Lookup::Whiteout;
    }
    Lookup::Found(kind_of(&st))
}

/// Reads a file inside the directory `root` (as a root).
pub(crate) fn read_in_dir(root: &Path, path: &str) -> io::Result<String> {
    let r = open_root(root)?;
    let fd = rustix::fs::openat2(
        &r,
        relative(Path::new(path)),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        IN_ROOT,
    )?;
    io::read_to_string(std::fs::File::from(fd))
}

/// Opens a directory inside `root`.
fn open_dir_in(root: BorrowedFd<'_>, path: &Path) -> CpResult<OwnedFd> {
    rustix::fs::openat2(
        root,
        relative(path),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        IN_ROOT,
    )
    .map_err(errno("resolve", path))
}

/// Splits a path inside a root into its parent directory (opened) and
/// last component (`.` when the path names a directory as a whole, such
/// as `/` or `a/..`).
fn parent_and_name(root: BorrowedFd<'_>, path: &Path) -> CpResult<(OwnedFd, PathBuf)> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok((open_dir_in(root, parent)?, PathBuf::from(name))),
        _ => Ok((open_dir_in(root, path)?, PathBuf::from("."))),
    }
}

/// Copies `name` in the directory `parent` (never following it) to the
/// host path `dest`, recursively.
fn copy_entry_out(parent: BorrowedFd<'_>, name: &Path, dest: &Path, shown: &Path) -> CpResult<()> {
    let st = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(errno("stat", shown))?;
    let mode = st.st_mode & 0o7777;
    match kind_of(&st) {
        Kind::Symlink => {
            let target = rustix::fs::readlinkat(parent, name, Vec::new())
                .map_err(errno("readlink", shown))?;
            remove_host_file(dest)?;
            std::os::unix::fs::symlink(OsStr::from_bytes(target.as_bytes()), dest)
                .map_err(ioe("create symlink", dest))?;
        }
        Kind::Dir => {
            let dir = open_dir(parent, name).map_err(errno("open directory", shown))?;
            match std::fs::create_dir(dest) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dest.is_dir() => {}
                Err(e) => return Err(("create directory", dest.to_path_buf(), e)),
            }
            std::fs::set_permissions(dest, std::fs::Permissions::from_mode(mode))
                .map_err(ioe("chmod", dest))?;
            let mut names = Vec::new();
            for e in rustix::fs::Dir::read_from(&dir).map_err(errno("read directory", shown))? {
                let e = e.map_err(errno("read directory", shown))?;
                let n = OsStr::from_bytes(e.file_name().to_bytes());
                if n != "." && n != ".." {
                    names.push(PathBuf::from(n));
                }
            }
            for n in names {
                copy_entry_out(dir.as_fd(), &n, &dest.join(&n), &shown.join(&n))?;
            }
        }
        Kind::File => {
            let fd = reopen_regular(parent, name, OFlags::RDONLY, shown)?.ok_or_else(|| {
                (
                    "open",
                    shown.to_path_buf(),
                    io::Error::from_raw_os_error(libc::ENOENT),
                )
            })?;
            remove_host_file(dest)?;
            let mut out = std::fs::File::create(dest).map_err(ioe("create", dest))?;
            io::copy(&mut std::fs::File::from(fd), &mut out).map_err(ioe("copy", dest))?;
            out.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(ioe("chmod", dest))?;
        }
        // Devices, FIFOs and sockets are not copied.
        Kind::Other => {}
    }
    Ok(())
}

/// Opens `name` in `parent` with `flags` only if it is a regular file
/// (`None` if it does not exist). It is first opened with `O_PATH`, which
/// neither follows a symlink nor opens a device or FIFO, checked, then
/// reopened through `/proc/self/fd` (the same inode, so a concurrent swap
/// inside the container cannot turn the copy onto a device node). Not a
/// regular file: `ELOOP` for a symlink, `EISDIR` for a directory, `EPERM`
/// otherwise.
fn reopen_regular(
    parent: BorrowedFd<'_>,
    name: &Path,
    flags: OFlags,
    shown: &Path,
) -> CpResult<Option<OwnedFd>> {
    let path_fd = match rustix::fs::openat(
        parent,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(("open", shown.to_path_buf(), e.into())),
    };
    let st = rustix::fs::fstat(&path_fd).map_err(errno("stat", shown))?;
    let refuse = match kind_of(&st) {
        Kind::File => None,
        Kind::Symlink => Some(libc::ELOOP),
        Kind::Dir => Some(libc::EISDIR),
        Kind::Other => Some(libc::EPERM),
    };
    if let Some(e) = refuse {
        return Err((
            "open (not a regular file)",
            shown.to_path_buf(),
            io::Error::from_raw_os_error(e),
        ));
    }
    let proc_path = format!("/proc/self/fd/{}", path_fd.as_raw_fd());
    rustix::fs::open(proc_path.as_str(), flags | OFlags::CLOEXEC, Mode::empty())
        .map(Some)
        .map_err(errno("reopen", shown))
}

fn remove_host_file(dest: &Path) -> CpResult<()> {
    match std::fs::symlink_metadata(dest) {
        Ok(m) if !m.is_dir() => std::fs::remove_file(dest).map_err(ioe("replace", dest)),
        _ => Ok(()),
    }
}

/// Copies `src` (inside the root `root`) to exactly the host path `dest`:
/// a directory's contents are merged into `dest`.
pub(crate) fn copy_out_of_root(root: BorrowedFd<'_>, src: &Path, dest: &Path) -> CpResult<()> {
    let (parent, name) = parent_and_name(root, src)?;
    copy_entry_out(parent.as_fd(), &name, dest, src)
}

/// Copies the host path `src` into the directory `parent` as `name`,
/// recursively, never following `name` or anything below it.
fn copy_entry_in(src: &Path, parent: BorrowedFd<'_>, name: &Path, shown: &Path) -> CpResult<()> {
    let meta = std::fs::symlink_metadata(src).map_err(ioe("stat", src))?;
    let mode = Mode::from_raw_mode(meta.mode() & 0o7777);
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = std::fs::read_link(src).map_err(ioe("readlink", src))?;
        match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if kind_of(&st) == Kind::Dir => {
                return Err((
                    "replace",
                    shown.to_path_buf(),
                    io::Error::from_raw_os_error(libc::EISDIR),
                ));
            }
            Ok(_) => {
                rustix::fs::unlinkat(parent, name, AtFlags::empty())
                    .map_err(errno("replace", shown))?;
            }
            Err(_) => {}
        }
        rustix::fs::symlinkat(&target, parent, name).map_err(errno("create symlink", shown))?;
    } else if ft.is_dir() {
        match rustix::fs::mkdirat(parent, name, mode) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(("create directory", shown.to_path_buf(), e.into())),
        }
        let dir = open_dir(parent, name).map_err(errno("open directory", shown))?;
        rustix::fs::fchmod(&dir, mode).map_err(errno("chmod", shown))?;
        let mut entries: Vec<PathBuf> = std::fs::read_dir(src)
            .map_err(ioe("read directory", src))?
            .map(|e| e.map(|e| PathBuf::from(e.file_name())))
            .collect::<io::Result<_>>()
            .map_err(ioe("read directory", src))?;
        entries.sort();
        for n in entries {
            copy_entry_in(&src.join(&n), dir.as_fd(), &n, &shown.join(&n))?;
        }
    } else if ft.is_file() {
        let fd = match reopen_regular(parent, name, OFlags::WRONLY | OFlags::TRUNC, shown)? {
            Some(fd) => fd,
            // A new file: created exclusively, so it is a new regular file.
            None => rustix::fs::openat(
                parent,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                mode,
            )
            .map_err(errno("create", shown))?,
        };
        let mut out = std::fs::File::from(fd);
        let mut input = std::fs::File::open(src).map_err(ioe("open", src))?;
        io::copy(&mut input, &mut out).map_err(ioe("copy", shown))?;
        rustix::fs::fchmod(&out, mode).map_err(errno("chmod", shown))?;
    }
    // Devices, FIFOs and sockets are not copied.
    Ok(())
}

impl Container {
    /// The container's root, opened through its process.
    fn open_container_root(&mut self) -> Result<OwnedFd> {
        let status = self.status();
        let pid = match (status, self.pid()) {
            (Status::Created | Status::Running | Status::Paused, Some(pid)) => pid,
            _ => {
                return Err(Error::State {
                    id: self.id().to_string(),
                    status,
                    action: "copy files (it has no process)",
                });
            }
        };
        let root = PathBuf::from(format!("/proc/{pid}/root"));
        open_root(&root).map_err(|source| Error::Copy {
            id: self.id().to_string(),
            path: root,
            op: "open root",
            source,
        })
    }

    /// Copies the host file or directory `src` into the container (`docker
    /// cp SRC CONTAINER:DEST`): into `dest` when that is a directory in
    /// the container, else as `dest`. Directories are copied recursively,
    /// symlinks as symlinks; modes are kept, owners are root.
    ///
    /// Every path is resolved inside the container's root: `..` and
    /// symlinks cannot lead outside it, and an existing symlink at the
    /// destination is not written through (`ELOOP`).
    ///
    /// # Errors
    /// [`Error::State`] without a process; [`Error::Copy`] naming the path.
    pub fn copy_in(&mut self, src: impl AsRef<Path>, dest: impl AsRef<Path>) -> Result<()> {
        let (src, dest) = (src.as_ref(), dest.as_ref());
        let root = self.open_container_root()?;
        let id = self.id().to_string();
        let map = |(op, path, source): CpError| Error::Copy {
            id: id.clone(),
            path,
            op,
            source,
        };
        let base = src.file_name().map(PathBuf::from).ok_or_else(|| {
            map((
                "name",
                src.to_path_buf(),
                io::Error::from_raw_os_error(libc::EINVAL),
            ))
        })?;
        let (parent, name, shown) = match open_dir_in(root.as_fd(), dest) {
            // An existing directory: copy into it.
            Ok(dir) => (dir, base.clone(), dest.join(&base)),
            Err(_) => {
                let (p, n) = parent_and_name(root.as_fd(), dest).map_err(map)?;
                (p, n, dest.to_path_buf())
            }
        };
        // O_PATH directory fds cannot be written through: reopen.
        let parent = rustix::fs::openat(
            &parent,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| map(("open directory", shown.clone(), e.into())))?;
        copy_entry_in(src, parent.as_fd(), &name, &shown).map_err(map)
    }

    /// Copies the file or directory `src` out of the container to the host
    /// (`docker cp CONTAINER:SRC DEST`): into `dest` when that is an
    /// existing directory, else as `dest`. Symlinks in the container are
    /// copied as symlinks, never followed to their target.
    ///
    /// # Errors
    /// [`Error::State`] without a process; [`Error::Copy`] naming the path.
    pub fn copy_out(&mut self, src: impl AsRef<Path>, dest: impl AsRef<Path>) -> Result<()> {
        let (src, dest) = (src.as_ref(), dest.as_ref());
        let root = self.open_container_root()?;
        let dest = match (dest.is_dir(), src.file_name()) {
            (true, Some(n)) => dest.join(n),
            _ => dest.to_path_buf(),
        };
        copy_out_of_root(root.as_fd(), src, &dest).map_err(|(op, path, source)| Error::Copy {
            id: self.id().to_string(),
            path,
            op,
            source,
        })
    }
}

/// The directory `name` in `parent`, not following a symlink.
fn open_dir(parent: BorrowedFd<'_>, name: &Path) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}
