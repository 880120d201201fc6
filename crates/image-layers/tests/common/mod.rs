//! Helpers shared by the integration tests: hand-made tar layers and tree
//! listings.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use tar::{EntryType, Header};

/// Builds tar layers entry by entry, including entries the `tar` crate's
/// own path checks would refuse (`..`, absolute paths).
pub struct Layer {
    b: tar::Builder<Vec<u8>>,
    pub mtime: u64,
}

impl Default for Layer {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer {
    pub fn new() -> Self {
        let mut b = tar::Builder::new(Vec::new());
        b.mode(tar::HeaderMode::Complete);
        Self {
            b,
            mtime: 1_600_000_000,
        }
    }

    /// An entry with raw path and link name bytes.
    pub fn raw(
        &mut self,
        path: &[u8],
        kind: EntryType,
        data: &[u8],
        link: &[u8],
        mode: u32,
    ) -> &mut Self {
        self.raw_owned(path, kind, data, link, mode, 0, 0, &[])
    }

    #[allow(clippy::too_many_arguments)]
    pub fn raw_owned(
        &mut self,
        path: &[u8],
        kind: EntryType,
        data: &[u8],
        link: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
        xattrs: &[(&str, &[u8])],
    ) -> &mut Self {
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        for (k, v) in xattrs {
            pax.push((format!("SCHILY.xattr.{k}"), v.to_vec()));
        }
        if path.len() >= 100 {
            pax.push(("path".into(), path.to_vec()));
        }
        if link.len() >= 100 {
            pax.push(("linkpath".into(), link.to_vec()));
        }
        if !pax.is_empty() {
            self.b
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .unwrap();
        }
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(self.mtime);
        if matches!(kind, EntryType::Char | EntryType::Block) {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        }
        {
            let old = h.as_old_mut();
            old.name.fill(0);
            let n = path.len().min(99);
            old.name[..n].copy_from_slice(&path[..n]);
            old.linkname.fill(0);
            let n = link.len().min(99);
            old.linkname[..n].copy_from_slice(&link[..n]);
        }
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.raw(path.as_bytes(), EntryType::Regular, data, b"", 0o644)
    }
    pub fn file_mode(&mut self, path: &str, data: &[u8], mode: u32) -> &mut Self {
        self.raw(path.as_bytes(), EntryType::Regular, data, b"", mode)
    }
    pub fn dir(&mut self, path: &str) -> &mut Self {
        self.raw(path.as_bytes(), EntryType::Directory, b"", b"", 0o755)
    }
    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.raw(
            path.as_bytes(),
            EntryType::Symlink,
            b"",
            target.as_bytes(),
            0o777,
        )
    }
    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.raw(
            path.as_bytes(),
            EntryType::Link,
            b"",
            target.as_bytes(),
            0o644,
        )
    }
    pub fn whiteout(&mut self, path: &str) -> &mut Self {
        self.raw(path.as_bytes(), EntryType::Regular, b"", b"", 0o644)
    }

    pub fn tar(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }

    pub fn gzip(self) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&self.tar()).unwrap();
        e.finish().unwrap()
    }

    pub fn zstd(self) -> Vec<u8> {
        zstd::encode_all(&self.tar()[..], 1).unwrap()
    }
}

/// One node of a tree listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    File {
        mode: u32,
        uid: u32,
        gid: u32,
        data: Vec<u8>,
        mtime: i64,
    },
    Dir {
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Symlink {
        target: Vec<u8>,
        uid: u32,
        gid: u32,
    },
    Other {
        mode: u32,
        rdev: u64,
    },
}

/// Lists a tree (relative path -> node), not following symlinks.
pub fn list_tree(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd {
        let e = e.unwrap();
        let p = e.path();
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let m = fs::symlink_metadata(&p).unwrap();
        let ft = m.file_type();
        let node = if ft.is_dir() {
            walk(root, &p, out);
            Node::Dir {
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
            }
        } else if ft.is_file() {
            Node::File {
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                data: fs::read(&p).unwrap(),
                mtime: m.mtime(),
            }
        } else if ft.is_symlink() {
            Node::Symlink {
                target: fs::read_link(&p).unwrap().as_os_str().as_bytes().to_vec(),
                uid: m.uid(),
                gid: m.gid(),
            }
        } else {
            let _ = ft.is_fifo();
            Node::Other {
                mode: m.mode(),
                rdev: m.rdev(),
            }
        };
        out.insert(rel, node);
    }
}

/// A directory holding `root/` plus decoys outside it, to prove nothing
/// outside `root` changes.
pub struct Jail {
    pub dir: tempfile::TempDir,
}

impl Jail {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("root")).unwrap();
        fs::create_dir(dir.path().join("outside")).unwrap();
        fs::write(dir.path().join("outside/secret"), b"secret").unwrap();
        fs::write(dir.path().join("sentinel"), b"sentinel").unwrap();
        Self { dir }
    }
    pub fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("root")
    }
    /// Everything outside `root`, with contents.
    pub fn outside(&self) -> BTreeMap<String, Node> {
        let mut t = list_tree(self.dir.path());
        t.retain(|k, _| k != "root" && !k.starts_with("root/"));
        t
    }
}
