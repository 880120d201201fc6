//! Diffs: an overlay upper directory, or the difference of two directory
//! trees, as a deterministic layer tar with OCI whiteouts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::image::Digest;
use tar::{EntryType, Header};

use crate::digest::HashingWriter;
use crate::error::{Error, Result};
use crate::unpack::Compression;

/// What to diff.
#[derive(Debug, Clone, Copy)]
pub enum DiffSource<'a> {
    /// An overlayfs upper directory: its files are the changes, 0:0
    /// character devices (or empty files marked `trusted.overlay.whiteout`)
    /// are whiteouts, `trusted.overlay.opaque=y` marks opaque directories
    /// (the `user.overlay.*` forms of a `userxattr` mount too).
    /// Redirected (renamed) directories and metacopy files are not
    /// supported: mount with `redirect_dir=off,metacopy=off`.
    OverlayUpper(&'a Path),
    /// Two trees: what turns `lower` into `upper`.
    Trees {
        /// The base tree.
        lower: &'a Path,
        /// The changed tree.
        upper: &'a Path,
    },
}

/// Options of a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffOptions {
    /// Compression of the produced layer.
    pub compression: Compression,
    /// Set every entry's mtime to this (seconds since the epoch), for
    /// reproducible layers.
    pub mtime: Option<i64>,
    /// For [`DiffSource::Trees`]: compare the content of regular files whose
    /// metadata (size, mtime with nanoseconds, mode, owner) is identical.
    /// Without it, content is compared only when both mtimes have no
    /// sub-second part (as containerd does).
    pub compare_content: bool,
    /// Record extended attributes (`SCHILY.xattr.*`); overlayfs's own
    /// attributes are never recorded.
    pub xattrs: bool,
}

impl Default for DiffOptions {
    fn default() -> Self {
        Self {
            compression: Compression::Gzip,
            mtime: None,
            compare_content: false,
            xattrs: true,
        }
    }
}

/// What a diff wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffStats {
    /// sha256 of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Size of the uncompressed tar stream.
    pub tar_bytes: u64,
    /// Entries written (whiteouts included).
    pub entries: u64,
}

#[derive(Debug)]
enum Change {
    /// Add or replace the node at this upper path.
    Add(PathBuf, Metadata),
    /// `.wh.` the name.
    Whiteout,
    /// `.wh..wh..opq` inside this directory.
    Opaque,
}

/// Relative paths, compared component by component (parents first).
type Key = Vec<Vec<u8>>;

fn rel_of(key: &Key) -> Vec<u8> {
    key.join(&b'/')
}

fn walk_err(path: &Path) -> impl Fn(io::Error) -> Error + '_ {
    move |source| Error::Walk {
        path: path.to_path_buf(),
        source,
    }
}

fn sorted_names(dir: &Path) -> Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    for e in fs::read_dir(dir).map_err(walk_err(dir))? {
        let e = e.map_err(walk_err(dir))?;
        names.push(e.file_name().as_bytes().to_vec());
    }
    names.sort();
    Ok(names)
}

pub(crate) fn read_xattrs(path: &Path) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut list = vec![0u8; 4096];
    let n = loop {
        match rustix::fs::llistxattr(path, &mut list[..]) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) if list.len() < 1 << 20 => list.resize(list.len() * 4, 0),
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(walk_err(path)(e.into())),
        }
    };
    let mut out = Vec::new();
    for name in list[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.") {
            continue;
        }
        let mut val = vec![0u8; 256];
        let len = loop {
            match rustix::fs::lgetxattr(path, OsStr::from_bytes(name), &mut val[..]) {
                Ok(len) => break Some(len),
                Err(rustix::io::Errno::RANGE) if val.len() < 1 << 20 => {
                    val.resize(val.len() * 4, 0)
                }
                Err(rustix::io::Errno::NODATA) => break None,
                Err(e) => return Err(walk_err(path)(e.into())),
            }
        };
        if let Some(len) = len {
            val.truncate(len);
            out.push((name.to_vec(), val));
        }
    }
    out.sort();
    Ok(out)
}

fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut val = vec![0u8; 64];
    let n = rustix::fs::lgetxattr(path, name, &mut val[..]).ok()?;
    val.truncate(n);
    Some(val)
}

fn same_content(a: &Path, b: &Path) -> Result<bool> {
    let mut fa = io::BufReader::new(File::open(a).map_err(walk_err(a))?);
    let mut fb = io::BufReader::new(File::open(b).map_err(walk_err(b))?);
    let mut ba = vec![0u8; 64 << 10];
    let mut bb = vec![0u8; 64 << 10];
    loop {
        let n = read_full(&mut fa, &mut ba).map_err(walk_err(a))?;
        let m = read_full(&mut fb, &mut bb).map_err(walk_err(b))?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

struct Collector<'a> {
    opts: &'a DiffOptions,
    changes: BTreeMap<Key, Change>,
    /// Inode -> paths, for regular files with several links in upper.
    links: HashMap<(u64, u64), Vec<(Key, PathBuf)>>,
}

impl Collector<'_> {
    fn note_link(&mut self, key: &Key, path: &Path, m: &Metadata) {
        if m.file_type().is_file() && m.nlink() > 1 {
            self.links
                .entry((m.dev(), m.ino()))
                .or_default()
                .push((key.clone(), path.to_path_buf()));
        }
    }

    fn differs(&self, lp: &Path, l: &Metadata, up: &Path, u: &Metadata) -> Result<bool> {
        let (lt, ut) = (l.file_type(), u.file_type());
        if l.mode() != u.mode() || l.uid() != u.uid() || l.gid() != u.gid() {
            return Ok(true);
        }
        if !ut.is_dir() && (l.mtime() != u.mtime() || l.mtime_nsec() != u.mtime_nsec()) {
            return Ok(true);
        }
        if ut.is_dir() && (l.mtime() != u.mtime() || l.mtime_nsec() != u.mtime_nsec()) {
            return Ok(true);
        }
        if ut.is_symlink() {
            let a = fs::read_link(lp).map_err(walk_err(lp))?;
            let b = fs::read_link(up).map_err(walk_err(up))?;
            if a != b {
                return Ok(true);
            }
        }
        if (ut.is_block_device() || ut.is_char_device()) && l.rdev() != u.rdev() {
            return Ok(true);
        }
        if self.opts.xattrs && read_xattrs(lp)? != read_xattrs(up)? {
            return Ok(true);
        }
        if ut.is_file() && lt.is_file() {
            if l.size() != u.size() {
                return Ok(true);
            }
            let whole_seconds = l.mtime_nsec() == 0 && u.mtime_nsec() == 0;
            if (self.opts.compare_content || whole_seconds) && !same_content(lp, up)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn trees(&mut self, lower: Option<&Path>, upper: &Path, rel: &Key) -> Result<()> {
        let unames = sorted_names(upper)?;
        let lnames: Vec<Vec<u8>> = match lower {
            Some(l) => sorted_names(l)?,
            None => Vec::new(),
        };
        let uset: HashSet<&Vec<u8>> = unames.iter().collect();
        for n in &lnames {
            if !uset.contains(n) {
                let mut k = rel.clone();
                k.push(n.clone());
                self.changes.insert(k, Change::Whiteout);
            }
        }
        for n in &unames {
            let mut k = rel.clone();
            k.push(n.clone());
            let up = upper.join(OsStr::from_bytes(n));
            let um = fs::symlink_metadata(&up).map_err(walk_err(&up))?;
            if um.file_type().is_socket() {
                continue;
            }
            let lp = lower.map(|l| l.join(OsStr::from_bytes(n)));
            let lm = match &lp {
                Some(lp) => match fs::symlink_metadata(lp) {
                    Ok(m) => Some(m),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                    Err(e) => return Err(walk_err(lp)(e)),
                },
                None => None,
            };
            self.note_link(&k, &up, &um);
            let same_type = lm.as_ref().is_some_and(|l| l.file_type() == um.file_type());
            let changed = match (&lm, &lp) {
                (Some(l), Some(lp)) if same_type => self.differs(lp, l, &up, &um)?,
                _ => true,
            };
            if um.is_dir() {
                let lower_dir = if same_type { lp.as_deref() } else { None };
                if changed {
                    self.changes.insert(k.clone(), Change::Add(up.clone(), um));
                }
                self.trees(lower_dir, &up, &k)?;
            } else if changed {
                self.changes.insert(k, Change::Add(up, um));
            }
        }
        Ok(())
    }

    fn overlay(&mut self, upper: &Path, rel: &Key) -> Result<()> {
        for n in sorted_names(upper)? {
            let mut k = rel.clone();
            k.push(n.clone());
            let up = upper.join(OsStr::from_bytes(&n));
            let um = fs::symlink_metadata(&up).map_err(walk_err(&up))?;
            let ft = um.file_type();
            if ft.is_char_device() && um.rdev() == 0 {
                self.changes.insert(k, Change::Whiteout);
                continue;
            }
            if ft.is_file()
                && um.size() == 0
                && (get_xattr(&up, "trusted.overlay.whiteout").is_some()
                    || get_xattr(&up, "user.overlay.whiteout").is_some())
            {
                self.changes.insert(k, Change::Whiteout);
                continue;
            }
            if ft.is_socket() {
                continue;
            }
            self.note_link(&k, &up, &um);
            if ft.is_dir() {
                let opaque = [
                    get_xattr(&up, "trusted.overlay.opaque"),
                    get_xattr(&up, "user.overlay.opaque"),
                ]
                .iter()
                .any(|v| v.as_deref() == Some(b"y"));
                self.changes.insert(k.clone(), Change::Add(up.clone(), um));
                if opaque {
                    let mut ok = k.clone();
                    // An empty last component sorts before every child, so
                    // the marker follows its directory entry directly (naive
                    // appliers clear the directory when they meet it).
                    ok.push(Vec::new());
                    self.changes.insert(ok, Change::Opaque);
                }
                self.overlay(&up, &k)?;
            } else {
                self.changes.insert(k, Change::Add(up, um));
            }
        }
        Ok(())
    }

    /// A changed path sharing its inode with unchanged paths pulls them in,
    /// so the link survives in the applied tree.
    fn complete_link_groups(&mut self) -> Result<()> {
        let groups: Vec<Vec<(Key, PathBuf)>> = self.links.values().cloned().collect();
        for g in groups {
            if g.iter()
                .any(|(k, _)| matches!(self.changes.get(k), Some(Change::Add(..))))
            {
                for (k, p) in g {
                    if let std::collections::btree_map::Entry::Vacant(e) = self.changes.entry(k) {
                        let m = fs::symlink_metadata(&p).map_err(walk_err(&p))?;
                        e.insert(Change::Add(p, m));
                    }
                }
            }
        }
        Ok(())
    }
}

enum Compressor<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(w) => w.write(buf),
            Self::Gzip(w) => w.write(buf),
            Self::Zstd(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(w) => w.flush(),
            Self::Gzip(w) => w.flush(),
            Self::Zstd(w) => w.flush(),
        }
    }
}

impl<W: Write> Compressor<W> {
    fn new(w: W, c: Compression) -> io::Result<Self> {
        Ok(match c {
            Compression::None => Self::Plain(w),
            Compression::Gzip => Self::Gzip(flate2::write::GzEncoder::new(
                w,
                flate2::Compression::new(6),
            )),
            Compression::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(w, 3)?;
                e.include_checksum(true)?;
                Self::Zstd(e)
            }
        })
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Self::Plain(w) => Ok(w),
            Self::Gzip(w) => w.finish(),
            Self::Zstd(w) => w.finish(),
        }
    }
}

/// Writes the diff of `source` as a layer (compressed per `opts`) into
/// `out`; returns the stats and the writer.
///
/// Entries are sorted by path (parents first), owners are numeric only, and
/// with [`DiffOptions::mtime`] set the output depends on content and
/// metadata alone.
///
/// # Errors
/// [`Error::Walk`] reading the trees, [`Error::WriteTar`] writing.
///
/// ```no_run
/// use hull_image_layers::diff::{write_diff, DiffOptions, DiffSource};
/// let out = std::fs::File::create("layer.tar.gz")?;
/// let (stats, _) = write_diff(
///     &DiffSource::Trees { lower: "/tmp/a".as_ref(), upper: "/tmp/b".as_ref() },
///     out,
///     &DiffOptions::default(),
/// )?;
/// println!("diff_id {}", stats.diff_id);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_diff<W: Write>(
    source: &DiffSource<'_>,
    out: W,
    opts: &DiffOptions,
) -> Result<(DiffStats, W)> {
    let mut c = Collector {
        opts,
        changes: BTreeMap::new(),
        links: HashMap::new(),
    };
    match source {
        DiffSource::OverlayUpper(upper) => c.overlay(upper, &Vec::new())?,
        DiffSource::Trees { lower, upper } => c.trees(Some(lower), upper, &Vec::new())?,
    }
    c.complete_link_groups()?;
    let werr = |path: &[u8]| {
        let path = String::from_utf8_lossy(path).into_owned();
        move |source| Error::WriteTar { path, source }
    };
    let comp = Compressor::new(out, opts.compression).map_err(werr(b""))?;
    let mut b = tar::Builder::new(HashingWriter::new(comp));
    b.mode(tar::HeaderMode::Complete);
    b.follow_symlinks(false);
    let mut first_link: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    let mut entries = 0u64;
    for (key, change) in &c.changes {
        let rel = rel_of(key);
        let path = Path::new(OsStr::from_bytes(&rel));
        match change {
            Change::Whiteout | Change::Opaque => {
                let (parent, name) = key.split_at(key.len() - 1);
                let mut wkey = parent.to_vec();
                match change {
                    Change::Whiteout => {
                        let mut n = b".wh.".to_vec();
                        n.extend_from_slice(&name[0]);
                        wkey.push(n);
                    }
                    _ => wkey.push(b".wh..wh..opq".to_vec()),
                }
                let wrel = rel_of(&wkey);
                let mut h = Header::new_gnu();
                h.set_entry_type(EntryType::Regular);
                h.set_size(0);
                h.set_mode(0o600);
                h.set_uid(0);
                h.set_gid(0);
                h.set_mtime(opts.mtime.and_then(|t| u64::try_from(t).ok()).unwrap_or(0));
                b.append_data(&mut h, Path::new(OsStr::from_bytes(&wrel)), io::empty())
                    .map_err(werr(&wrel))?;
            }
            Change::Add(full, m) => {
                let ft = m.file_type();
                let mut h = Header::new_gnu();
                h.set_mode(m.mode() & 0o7777);
                h.set_uid(u64::from(m.uid()));
                h.set_gid(u64::from(m.gid()));
                let (sec, nsec) = match opts.mtime {
                    Some(t) => (t, 0),
                    None => (m.mtime(), m.mtime_nsec()),
                };
                h.set_mtime(u64::try_from(sec).unwrap_or(0));
                h.set_size(0);
                let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
                if nsec != 0 && sec >= 0 {
                    pax.push(("mtime".into(), format!("{sec}.{nsec:09}").into_bytes()));
                }
                if opts.xattrs {
                    for (n, v) in read_xattrs(full)? {
                        if let Ok(n) = String::from_utf8(n) {
                            pax.push((format!("SCHILY.xattr.{n}"), v));
                        }
                    }
                }
                let hard_target = if ft.is_file() && m.nlink() > 1 {
                    match first_link.get(&(m.dev(), m.ino())) {
                        Some(t) => Some(t.clone()),
                        None => {
                            first_link.insert((m.dev(), m.ino()), rel.clone());
                            None
                        }
                    }
                } else {
                    None
                };
                if !pax.is_empty() && hard_target.is_none() {
                    b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                        .map_err(werr(&rel))?;
                }
                if let Some(t) = hard_target {
                    h.set_entry_type(EntryType::Link);
                    b.append_link(&mut h, path, Path::new(OsStr::from_bytes(&t)))
                        .map_err(werr(&rel))?;
                } else if ft.is_dir() {
                    h.set_entry_type(EntryType::Directory);
                    b.append_data(&mut h, path, io::empty())
                        .map_err(werr(&rel))?;
                } else if ft.is_symlink() {
                    h.set_entry_type(EntryType::Symlink);
                    let target = fs::read_link(full).map_err(walk_err(full))?;
                    b.append_link(&mut h, path, &target).map_err(werr(&rel))?;
                } else if ft.is_file() {
                    h.set_entry_type(EntryType::Regular);
                    let f = File::open(full).map_err(walk_err(full))?;
                    let len = f.metadata().map_err(walk_err(full))?.len();
                    h.set_size(len);
                    // Exactly the header's size, even if the file changes.
                    let data = f.take(len).chain(io::repeat(0).take(len));
                    b.append_data(&mut h, path, data.take(len))
                        .map_err(werr(&rel))?;
                } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
                    h.set_entry_type(if ft.is_fifo() {
                        EntryType::Fifo
                    } else if ft.is_char_device() {
                        EntryType::Char
                    } else {
                        EntryType::Block
                    });
                    if !ft.is_fifo() {
                        let rdev = m.rdev();
                        h.set_device_major(rustix::fs::major(rdev))
                            .map_err(werr(&rel))?;
                        h.set_device_minor(rustix::fs::minor(rdev))
                            .map_err(werr(&rel))?;
                    }
                    b.append_data(&mut h, path, io::empty())
                        .map_err(werr(&rel))?;
                } else {
                    continue;
                }
            }
        }
        entries += 1;
    }
    b.finish().map_err(werr(b""))?;
    let hw = b.into_inner().map_err(werr(b""))?;
    let stats = DiffStats {
        diff_id: hw.hasher.digest(),
        tar_bytes: hw.count,
        entries,
    };
    let out = hw.inner.finish().map_err(werr(b""))?;
    Ok((stats, out))
}
