//! What an upper directory changed relative to its lower layers, as plain
//! data for a later commit into an image layer.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::overlay::Overlay;
use crate::whiteout::{XattrNamespace, is_opaque, is_whiteout, redirect};

/// What happened to one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeKind {
    /// The path is new: nothing visible below had this name.
    Added,
    /// The path existed below and the upper dir holds a new version (new
    /// content or metadata, or a different file type). Under
    /// `metacopy=on` the upper file may hold metadata only (it carries
    /// `<ns>.overlay.metacopy`): read its data through the merged view.
    Modified,
    /// The path existed below and was deleted (a whiteout).
    Deleted,
    /// The directory replaces the one below: none of the lower contents show
    /// through; everything inside it is reported as [`ChangeKind::Added`].
    Opaque,
}

/// One change found by [`changes`]: a path relative to the overlay's root
/// (no leading `/`) and what happened to it.
///
/// In a tar layer, `Added` and `Modified` become the upper dir's entry,
/// `Deleted` becomes a `.wh.<name>` entry and `Opaque` becomes the directory
/// plus a `.wh..wh..opq` entry inside it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Change {
    /// The path, relative to the overlay's root.
    pub path: PathBuf,
    /// What happened to it.
    pub kind: ChangeKind,
}

/// Walks `upper` and lists its changes against `lowers` (**top-most
/// first**, as in [`Overlay::lowers`]), parents before children, names in
/// byte order.
///
/// - a whiteout is `Deleted`;
/// - an opaque directory is `Opaque`, and everything below it `Added`;
/// - any other entry is `Modified` when the merged lower layers show the same
///   name, `Added` otherwise;
/// - a directory that also exists below is only a container for changes
///   (overlayfs copied it up to hold them): it is not reported itself unless
///   its mode or owner changed (then `Modified`); its entries are walked.
///
/// `ns` says where the overlay kept its xattrs (see
/// [`Overlay::xattr_namespace`]). A directory renamed under
/// `redirect_dir=on` keeps its contents under the old name below, which the
/// upper dir alone cannot list: the walk refuses it
/// ([`Error::RedirectedDir`]) rather than report a partial change list.
///
/// # Errors
/// [`Error::ReadDir`], [`Error::StatEntry`], [`Error::GetXattr`] naming the
/// path that could not be read; [`Error::RedirectedDir`].
pub fn changes(upper: &Path, lowers: &[PathBuf], ns: XattrNamespace) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    walk(upper, Path::new(""), lowers.to_vec(), ns, &mut out)?;
    Ok(out)
}

impl Overlay {
    /// The changes in this overlay's upper dir; empty without one. See
    /// [`changes`].
    ///
    /// # Errors
    /// As [`changes`].
    pub fn changes(&self) -> Result<Vec<Change>> {
        match self.upper_dir() {
            Some(upper) => changes(upper, self.lowers(), self.xattr_namespace()),
            None => Ok(Vec::new()),
        }
    }
}

fn lstat(path: &Path) -> Result<Option<std::fs::Metadata>> {
    match std::fs::symlink_metadata(path) {
        Ok(md) => Ok(Some(md)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => Ok(None),
        Err(source) => Err(Error::StatEntry {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// What the merged lower layers show under one name.
enum Lower {
    Absent,
    NonDir,
    /// A directory: the stack of directories merged there (top first) and
    /// the top one's metadata.
    Dir(Vec<PathBuf>, std::fs::Metadata),
}

fn lookup(lower_dirs: &[PathBuf], name: &std::ffi::OsStr, ns: XattrNamespace) -> Result<Lower> {
    let mut stack = Vec::new();
    let mut top: Option<std::fs::Metadata> = None;
    for dir in lower_dirs {
        let p = dir.join(name);
        let Some(md) = lstat(&p)? else { continue };
        if is_whiteout(&md) {
            break;
        }
        if !md.is_dir() {
            if top.is_none() {
                return Ok(Lower::NonDir);
            }
            // A non-directory below a directory is hidden by it.
            break;
        }
        let opaque = is_opaque(&p, ns)?;
        stack.push(p);
        if top.is_none() {
            top = Some(md);
        }
        if opaque {
            break;
        }
    }
    Ok(match top {
        Some(md) => Lower::Dir(stack, md),
        None => Lower::Absent,
    })
}

fn walk(
    upper_dir: &Path,
    rel: &Path,
    lower_dirs: Vec<PathBuf>,
    ns: XattrNamespace,
    out: &mut Vec<Change>,
) -> Result<()> {
    let read_err = |source| Error::ReadDir {
        path: upper_dir.to_path_buf(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(upper_dir).map_err(read_err)? {
        names.push(entry.map_err(read_err)?.file_name());
    }
    names.sort();
    for name in names {
        let up = upper_dir.join(&name);
        let path = rel.join(&name);
        let Some(md) = lstat(&up)? else { continue };
        if is_whiteout(&md) {
            out.push(Change {
                path,
                kind: ChangeKind::Deleted,
            });
            continue;
        }
        if md.is_dir() {
            // A renamed directory's contents live under its old name below;
            // the upper dir alone cannot list them.
            if redirect(&up, ns)?.is_some() {
                return Err(Error::RedirectedDir { path: up });
            }
            if is_opaque(&up, ns)? {
                out.push(Change {
                    path: path.clone(),
                    kind: ChangeKind::Opaque,
                });
                walk(&up, &path, Vec::new(), ns, out)?;
                continue;
            }
            match lookup(&lower_dirs, &name, ns)? {
                Lower::Dir(stack, lmd) => {
                    let same =
                        lmd.mode() == md.mode() && lmd.uid() == md.uid() && lmd.gid() == md.gid();
                    if !same {
                        out.push(Change {
                            path: path.clone(),
                            kind: ChangeKind::Modified,
                        });
                    }
                    walk(&up, &path, stack, ns, out)?;
                }
                Lower::NonDir => {
                    out.push(Change {
                        path: path.clone(),
                        kind: ChangeKind::Modified,
                    });
                    walk(&up, &path, Vec::new(), ns, out)?;
                }
                Lower::Absent => {
                    out.push(Change {
                        path: path.clone(),
                        kind: ChangeKind::Added,
                    });
                    walk(&up, &path, Vec::new(), ns, out)?;
                }
            }
            continue;
        }
        let kind = match lookup(&lower_dirs, &name, ns)? {
            Lower::Absent => ChangeKind::Added,
            Lower::NonDir | Lower::Dir(..) => ChangeKind::Modified,
        };
        out.push(Change { path, kind });
    }
    Ok(())
}
