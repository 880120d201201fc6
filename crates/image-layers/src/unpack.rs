//! Confined layer unpacking.
//!
//! Every filesystem operation is anchored at a directory file descriptor.
//! The parent directory of each entry is opened with `openat2(2)` and
//! `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`, so `..`, absolute symlinks and
//! symlinks pointing out all resolve inside the root; the entry itself is
//! then created with a `*at` call on its final component, which never follows
//! a symlink (`O_CREAT | O_EXCL | O_NOFOLLOW`, `mkdirat`, `symlinkat`,
//! `mknodat`, `linkat` without `AT_SYMLINK_FOLLOW`, `fchownat` and
//! `utimensat` with `AT_SYMLINK_NOFOLLOW`).

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use oci_spec::image::{Digest, MediaType};
use rustix::fs::{
    AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags, Timestamps, XattrFlags, makedev,
};
use rustix::io::Errno;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use crate::digest::Hasher;
use crate::error::{Error, Result};

/// The file a layer applier leaves in the root while it works; it stays
/// there if the unpack fails, marking the tree incomplete.
pub const INCOMPLETE_MARKER: &str = ".hull-incomplete";

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_WHITEOUT: &[u8] = b".wh..wh..opq";
const PATH_MAX: usize = 4096;
const NAME_MAX: usize = 255;
const MAX_REMOVE_DEPTH: usize = 4096;
/// Size of the chunks the decompression thread hands over.
const CHUNK: usize = 256 << 10;

/// Docker's gzip layer media type.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker's foreign (non-distributable) gzip layer media type.
pub const DOCKER_FOREIGN_LAYER_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Docker's uncompressed layer media type.
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker's zstd layer media type.
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";

/// How a layer stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar stream.
    None,
    /// gzip (possibly several members).
    Gzip,
    /// zstd.
    Zstd,
}

impl Compression {
    /// The compression a layer media type implies (OCI and Docker types);
    /// `None` for a media type that is not a layer.
    pub fn from_media_type(media_type: &MediaType) -> Option<Self> {
        Some(match media_type {
            MediaType::ImageLayer | MediaType::ImageLayerNonDistributable => Self::None,
            MediaType::ImageLayerGzip | MediaType::ImageLayerNonDistributableGzip => Self::Gzip,
            MediaType::ImageLayerZstd | MediaType::ImageLayerNonDistributableZstd => Self::Zstd,
            MediaType::Other(s) => match s.as_str() {
                DOCKER_LAYER_GZIP | DOCKER_FOREIGN_LAYER_GZIP => Self::Gzip,
                DOCKER_LAYER_TAR => Self::None,
                DOCKER_LAYER_ZSTD => Self::Zstd,
                _ => return None,
            },
            _ => return None,
        })
    }

    /// Guesses the compression from the first bytes of a stream.
    pub fn detect(prefix: &[u8]) -> Self {
        if prefix.starts_with(&[0x1f, 0x8b]) {
            Self::Gzip
        } else if prefix.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Self::Zstd
        } else {
            Self::None
        }
    }

    /// The OCI layer media type for this compression.
    pub fn media_type(self) -> MediaType {
        match self {
            Self::None => MediaType::ImageLayer,
            Self::Gzip => MediaType::ImageLayerGzip,
            Self::Zstd => MediaType::ImageLayerZstd,
        }
    }
}

/// Who owns unpacked files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ownership {
    /// The uid/gid from the tar headers.
    #[default]
    Preserve,
    /// The uid/gid from the tar headers plus these offsets (for a rootless
    /// container whose id map starts there).
    Shift {
        /// Added to every uid.
        uid: u32,
        /// Added to every gid.
        gid: u32,
    },
    /// Leave files owned by the caller.
    Ignore,
}

/// What to do with device nodes (character and block devices) in a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DevicePolicy {
    /// Create them with `mknodat` (needs CAP_MKNOD).
    #[default]
    Create,
    /// Skip them silently.
    Skip,
    /// Fail with [`Error::DeviceRejected`].
    Reject,
}

/// What to do with extended attributes (`SCHILY.xattr.*` PAX records).
/// Overlayfs's own attributes (`trusted.overlay.*`, `user.overlay.*`) are
/// never applied, whatever the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XattrPolicy {
    /// Drop them.
    Ignore,
    /// Apply them; an attribute the filesystem does not support
    /// (`EOPNOTSUPP`) or the caller may not set (`EPERM`) is skipped.
    #[default]
    Apply,
    /// Apply them; any failure is an error, and so is a PAX record the
    /// reader cannot parse (the `tar` crate splits records at newlines, so
    /// an attribute value containing one is lost under the other policies).
    Strict,
}

/// How whiteout entries are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhiteoutMode {
    /// Remove what they hide from the tree (applying a layer onto a merged
    /// root).
    #[default]
    Apply,
    /// Turn them into overlayfs whiteouts: a 0:0 character device for
    /// `.wh.NAME`, `trusted.overlay.opaque=y` for `.wh..wh..opq` (extracting
    /// a layer into its own snapshot directory).
    Overlay,
}

/// How paths are resolved inside the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resolver {
    /// `openat2(2)` with `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS` (Linux
    /// 5.6+), falling back to the user-space walk when the kernel lacks it.
    #[default]
    Auto,
    /// Always the user-space walk: component by component with
    /// `O_NOFOLLOW`, symlinks read and resolved against the root.
    Walk,
}

/// Options of the layer applier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOptions {
    /// File ownership.
    pub ownership: Ownership,
    /// Device nodes.
    pub devices: DevicePolicy,
    /// Extended attributes.
    pub xattrs: XattrPolicy,
    /// Whiteouts.
    pub whiteouts: WhiteoutMode,
    /// Largest regular file accepted, if limited. This also bounds GNU
    /// sparse entries, whose expanded size can be far larger than the
    /// stream (and than [`ApplyOptions::max_layer_size`] sees).
    pub max_entry_size: Option<u64>,
    /// Largest uncompressed layer accepted, if limited (a guard against
    /// decompression bombs).
    pub max_layer_size: Option<u64>,
    /// Leave [`INCOMPLETE_MARKER`] in the root until the layer is fully
    /// applied.
    pub mark_incomplete: bool,
    /// The diff_id the uncompressed stream must hash to.
    pub expected_diff_id: Option<Digest>,
    /// How paths are resolved inside the root.
    pub resolver: Resolver,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            ownership: Ownership::Preserve,
            devices: DevicePolicy::Create,
            xattrs: XattrPolicy::Apply,
            whiteouts: WhiteoutMode::Apply,
            max_entry_size: None,
            max_layer_size: None,
            mark_incomplete: true,
            expected_diff_id: None,
            resolver: Resolver::Auto,
        }
    }
}

/// What a layer application did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyStats {
    /// The sha256 of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Size of the uncompressed tar stream.
    pub tar_bytes: u64,
    /// Entries processed.
    pub entries: u64,
}

/// Whether a root was left incomplete by a failed [`apply_layer`].
pub fn is_incomplete(root: &Path) -> bool {
    root.join(INCOMPLETE_MARKER).symlink_metadata().is_ok()
}

/// Applies a layer (a tar stream, compressed as `compression` says) onto the
/// directory `root`, confined to it.
///
/// # Errors
/// [`Error::OpenRoot`], then as [`apply_layer_at`].
///
/// ```no_run
/// use hull_image_layers::{apply_layer, ApplyOptions, Compression};
/// let layer = std::fs::File::open("layer.tar.gz")?;
/// let stats = apply_layer("/tmp/rootfs".as_ref(), layer, Compression::Gzip, &ApplyOptions::default())?;
/// println!("diff_id {}", stats.diff_id);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn apply_layer<R: Read + Send>(
    root: &Path,
    layer: R,
    compression: Compression,
    opts: &ApplyOptions,
) -> Result<ApplyStats> {
    let fd = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::OpenRoot {
        path: root.to_path_buf(),
        source: e.into(),
    })?;
    apply_layer_at(fd.as_fd(), layer, compression, opts)
}

/// Applies a layer onto the directory `root` (an fd, `O_PATH` is enough).
///
/// # Errors
/// [`Error::ReadTar`] for a malformed stream (bad checksum, truncation, bad
/// compression), [`Error::TruncatedEntry`], [`Error::InvalidEntryPath`],
/// [`Error::InvalidHeader`], [`Error::EntryTooLarge`],
/// [`Error::UnsupportedEntryType`], [`Error::DeviceRejected`],
/// [`Error::Unpack`] for a failing filesystem operation,
/// [`Error::DiffIdMismatch`]. After an error the root keeps
/// [`INCOMPLETE_MARKER`] (when `mark_incomplete` is set).
pub fn apply_layer_at<R: Read + Send>(
    root: BorrowedFd<'_>,
    layer: R,
    compression: Compression,
    opts: &ApplyOptions,
) -> Result<ApplyStats> {
    if opts.mark_incomplete {
        rustix::fs::openat(
            root,
            INCOMPLETE_MARKER,
            OFlags::CREATE | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| unpack_err(INCOMPLETE_MARKER.as_bytes(), "create marker", e))?;
    }
    // Decompression and hashing run on a second thread, overlapping the
    // filesystem work (as `tar -z` overlaps with its gzip child).
    let (applied, produced) = std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(8);
        let (spent_tx, spent_rx) = mpsc::channel::<Vec<u8>>();
        let producer = scope.spawn(move || produce(layer, compression, &tx, &spent_rx));
        let mut reader = ChannelReader {
            rx,
            spent: spent_tx,
            cur: Vec::new(),
            pos: 0,
            total: 0,
            limit: opts.max_layer_size,
            exceeded: false,
        };
        let applied = apply_entries(root, opts, &mut reader);
        let exceeded = reader.exceeded;
        // Whatever happened, stop the producer: it sees the channel close.
        drop(reader);
        let applied = match (applied, opts.max_layer_size) {
            (Err(_), Some(limit)) if exceeded => Err(Error::LayerTooLarge { limit }),
            (a, _) => a,
        };
        (applied, producer.join())
    });
    // The consumer's error names the entry; it comes first.
    let (mut applier, entries_done) = applied?;
    let (hasher, tar_bytes) = match produced {
        Ok(Ok(v)) => v,
        Ok(Err(source)) => {
            return Err(Error::ReadTar {
                after: None,
                source,
            });
        }
        Err(_) => {
            return Err(Error::ReadTar {
                after: None,
                source: io::Error::other("decompression thread panicked"),
            });
        }
    };
    let diff_id = hasher.digest();
    if let Some(expected) = &opts.expected_diff_id {
        if *expected != diff_id {
            return Err(Error::DiffIdMismatch {
                layer: "layer stream".into(),
                expected: expected.to_string(),
                actual: diff_id.to_string(),
            });
        }
    }
    applier.finish_dirs()?;
    if opts.mark_incomplete {
        rustix::fs::unlinkat(root, INCOMPLETE_MARKER, AtFlags::empty())
            .map_err(|e| unpack_err(INCOMPLETE_MARKER.as_bytes(), "remove marker", e))?;
    }
    Ok(ApplyStats {
        diff_id,
        tar_bytes,
        entries: entries_done,
    })
}

/// Reads and decompresses the layer, hashing the uncompressed stream, and
/// sends it in chunks; returns the hash and size of everything sent (the
/// whole stream, unless the receiver hung up first).
fn produce<R: Read>(
    layer: R,
    compression: Compression,
    tx: &mpsc::SyncSender<io::Result<Vec<u8>>>,
    spent: &mpsc::Receiver<Vec<u8>>,
) -> io::Result<(Hasher, u64)> {
    let mut decoder: Box<dyn Read + '_> = match compression {
        Compression::None => Box::new(layer),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            128 << 10,
            layer,
        ))),
        Compression::Zstd => match zstd::stream::read::Decoder::new(layer) {
            Ok(d) => Box::new(d),
            Err(e) => {
                let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                return Err(e);
            }
        },
    };
    let mut hasher = Hasher::default();
    let mut count = 0u64;
    loop {
        // Reuse the consumer's spent chunks: no allocation or zeroing per
        // chunk in the steady state.
        let mut buf = spent.try_recv().unwrap_or_default();
        buf.resize(CHUNK, 0);
        let mut n = 0;
        while n < buf.len() {
            match decoder.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // The consumer reports the error; keep the original kind.
                    let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                    return Ok((hasher, count));
                }
            }
        }
        if n == 0 {
            return Ok((hasher, count));
        }
        buf.truncate(n);
        hasher.update(&buf);
        count += n as u64;
        if tx.send(Ok(buf)).is_err() {
            return Ok((hasher, count));
        }
    }
}

/// The consumer side of [`produce`].
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    spent: mpsc::Sender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    /// Uncompressed bytes received, and the limit on them.
    total: u64,
    limit: Option<u64>,
    exceeded: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.total += chunk.len() as u64;
                    if self.limit.is_some_and(|l| self.total > l) {
                        self.exceeded = true;
                        return Err(io::Error::other("layer larger than the size limit"));
                    }
                    let old = std::mem::replace(&mut self.cur, chunk);
                    if old.capacity() == CHUNK {
                        let _ = self.spent.send(old);
                    }
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Applies every entry of the tar stream, then reads the stream to its end
/// so the diff_id covers the end-of-archive blocks and any padding.
fn apply_entries<'a>(
    root: BorrowedFd<'a>,
    opts: &'a ApplyOptions,
    reader: &mut ChannelReader,
) -> Result<(Applier<'a>, u64)> {
    let mut archive = tar::Archive::new(&mut *reader);
    let mut applier = Applier {
        root,
        opts,
        seen: HashSet::new(),
        dirs: Vec::new(),
        dir_index: HashMap::new(),
        cache: None,
        invalidated: false,
        buf: vec![0u8; 256 << 10],
    };
    let mut entries_done = 0u64;
    let mut last: Option<String> = None;
    {
        let entries = archive.entries().map_err(|source| Error::ReadTar {
            after: None,
            source,
        })?;
        for entry in entries {
            let mut entry = entry.map_err(|source| Error::ReadTar {
                after: last.clone(),
                source,
            })?;
            applier.entry(&mut entry, &last)?;
            entries_done += 1;
            last = Some(String::from_utf8_lossy(&entry.path_bytes()).into_owned());
        }
    }
    io::copy(archive.into_inner(), &mut io::sink()).map_err(|source| Error::ReadTar {
        after: last.clone(),
        source,
    })?;
    Ok((applier, entries_done))
}

fn unpack_err(path: &[u8], op: &'static str, e: Errno) -> Error {
    Error::Unpack {
        path: String::from_utf8_lossy(path).into_owned(),
        op,
        source: e.into(),
    }
}

/// Splits a tar path into normal components, resolving `.`, `..` and
/// leading slashes lexically (clamped at the root).
pub(crate) fn clean_path(raw: &[u8]) -> std::result::Result<Vec<&[u8]>, &'static str> {
    if raw.contains(&0) {
        return Err("path contains a NUL byte");
    }
    if raw.len() >= PATH_MAX {
        return Err("path longer than PATH_MAX");
    }
    let mut out: Vec<&[u8]> = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c if c.len() > NAME_MAX => return Err("path component longer than 255 bytes"),
            c => out.push(c),
        }
    }
    Ok(out)
}

fn join(comps: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::with_capacity(comps.iter().map(|c| c.len() + 1).sum());
    for (i, c) in comps.iter().enumerate() {
        if i > 0 {
            v.push(b'/');
        }
        v.extend_from_slice(c);
    }
    v
}

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

#[derive(Debug)]
struct DeferredDir {
    path: Vec<u8>,
    mode: u32,
    mtime: Option<(i64, u32)>,
}

struct Applier<'a> {
    root: BorrowedFd<'a>,
    opts: &'a ApplyOptions,
    /// Paths created by this layer (whiteouts never hide them).
    seen: HashSet<Vec<u8>>,
    dirs: Vec<DeferredDir>,
    dir_index: HashMap<Vec<u8>, usize>,
    /// The last parent directory opened, with its path.
    cache: Option<(Vec<u8>, OwnedFd)>,
    /// Set when something was removed: the cached parent may be stale.
    invalidated: bool,
    buf: Vec<u8>,
}

/// The metadata of one entry, read from its headers.
struct Meta {
    mode: u32,
    owner: Option<(u32, u32)>,
    mtime: Option<(i64, u32)>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Applier<'_> {
    fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        last: &Option<String>,
    ) -> Result<()> {
        let raw_path = entry.path_bytes().into_owned();
        let shown = || String::from_utf8_lossy(&raw_path).into_owned();
        let mut kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink
        ) {
            return Ok(());
        }
        if kind == tar::EntryType::Regular && raw_path.ends_with(b"/") {
            kind = tar::EntryType::Directory;
        }
        let mut xattrs = Vec::new();
        let mut pax_mtime = None;
        let mut pax_uid = None;
        let mut pax_gid = None;
        let exts = entry.pax_extensions().map_err(|source| Error::ReadTar {
            after: last.clone(),
            source,
        })?;
        if let Some(exts) = exts {
            for ext in exts {
                // The `tar` crate splits PAX records at newlines, so a value
                // holding one (a binary xattr) reads as malformed records.
                // It skips them for the path; so do we, unless strict.
                let ext = match ext {
                    Ok(ext) => ext,
                    Err(_) if self.opts.xattrs != XattrPolicy::Strict => continue,
                    Err(source) => {
                        return Err(Error::ReadTar {
                            after: last.clone(),
                            source,
                        });
                    }
                };
                let key = ext.key_bytes();
                if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    xattrs.push((name.to_vec(), ext.value_bytes().to_vec()));
                } else if key == b"mtime" {
                    pax_mtime = parse_pax_time(ext.value_bytes());
                } else if key == b"uid" || key == b"gid" {
                    let v = std::str::from_utf8(ext.value_bytes())
                        .ok()
                        .and_then(|v| v.parse::<u64>().ok());
                    if key == b"uid" {
                        pax_uid = v;
                    } else {
                        pax_gid = v;
                    }
                }
            }
        }
        let comps = clean_path(&raw_path).map_err(|reason| Error::InvalidEntryPath {
            path: shown(),
            reason,
        })?;
        let Some((&name, parent_comps)) = comps.split_last() else {
            // The root itself: its metadata belongs to whoever made it.
            return Ok(());
        };
        if self.opts.mark_incomplete
            && parent_comps.is_empty()
            && name == INCOMPLETE_MARKER.as_bytes()
        {
            return Err(Error::InvalidEntryPath {
                path: shown(),
                reason: "name reserved for the incomplete-unpack marker",
            });
        }
        let key = join(&comps);
        if name.starts_with(WHITEOUT_PREFIX) {
            return self.whiteout(parent_comps, name, &key);
        }

        let header = entry.header();
        let field = |field| Error::InvalidHeader {
            path: shown(),
            field,
        };
        let mode = header.mode().map_err(|_| field("mode"))? & 0o7777;
        let owner = match self.opts.ownership {
            Ownership::Ignore => None,
            Ownership::Preserve | Ownership::Shift { .. } => {
                let (su, sg) = match self.opts.ownership {
                    Ownership::Shift { uid, gid } => (u64::from(uid), u64::from(gid)),
                    _ => (0, 0),
                };
                let uid = match pax_uid {
                    Some(u) => u,
                    None => header.uid().map_err(|_| field("uid"))?,
                }
                .checked_add(su);
                let gid = match pax_gid {
                    Some(g) => g,
                    None => header.gid().map_err(|_| field("gid"))?,
                }
                .checked_add(sg);
                let uid = uid
                    .and_then(|u| u32::try_from(u).ok())
                    .filter(|u| *u != u32::MAX)
                    .ok_or_else(|| field("uid"))?;
                let gid = gid
                    .and_then(|g| u32::try_from(g).ok())
                    .filter(|g| *g != u32::MAX)
                    .ok_or_else(|| field("gid"))?;
                Some((uid, gid))
            }
        };
        let mtime = match pax_mtime {
            Some(t) => Some(t),
            None => Some((
                i64::try_from(header.mtime().map_err(|_| field("mtime"))?)
                    .map_err(|_| field("mtime"))?,
                0,
            )),
        };
        let xattrs = self.filter_xattrs(xattrs);
        let meta = Meta {
            mode,
            owner,
            mtime,
            xattrs,
        };

        let parent = self.parent(parent_comps, &key)?;
        let res = self.create(entry, kind, &parent.1, name, &key, &meta, &shown);
        if !self.invalidated {
            self.cache = Some(parent);
        }
        self.invalidated = false;
        res?;
        self.seen.insert(key);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn create<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        kind: tar::EntryType,
        parent: &OwnedFd,
        name: &[u8],
        key: &[u8],
        meta: &Meta,
        shown: &dyn Fn() -> String,
    ) -> Result<()> {
        let parent = parent.as_fd();
        let err = |op, e: Errno| unpack_err(key, op, e);
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let size = entry.size();
                if let Some(limit) = self.opts.max_entry_size {
                    if size > limit {
                        return Err(Error::EntryTooLarge {
                            path: shown(),
                            size,
                            limit,
                        });
                    }
                }
                let fd = self.create_file(parent, name, key)?;
                let mut file = File::from(fd);
                let mut got = 0u64;
                loop {
                    let n = match entry.read(&mut self.buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(source) => {
                            return Err(Error::ReadTar {
                                after: Some(shown()),
                                source,
                            });
                        }
                    };
                    file.write_all(&self.buf[..n])
                        .map_err(|source| Error::Unpack {
                            path: shown(),
                            op: "write",
                            source,
                        })?;
                    got += n as u64;
                }
                if got != size {
                    return Err(Error::TruncatedEntry {
                        path: shown(),
                        size,
                        got,
                    });
                }
                if let Some((u, g)) = meta.owner {
                    rustix::fs::fchown(&file, Some(uid(u)), Some(gid(g)))
                        .map_err(|e| err("fchown", e))?;
                }
                rustix::fs::fchmod(&file, Mode::from_raw_mode(meta.mode))
                    .map_err(|e| err("fchmod", e))?;
                for (n, v) in &meta.xattrs {
                    self.xattr_result(
                        rustix::fs::fsetxattr(&file, os(n), v, XattrFlags::empty()),
                        key,
                    )?;
                }
                if let Some(t) = meta.mtime {
                    rustix::fs::futimens(&file, &times(t)).map_err(|e| err("futimens", e))?;
                }
            }
            tar::EntryType::Directory => {
                let mut kept = false;
                match rustix::fs::mkdirat(parent, os(name), Mode::from_raw_mode(0o700)) {
                    Ok(()) => {}
                    Err(Errno::EXIST) => {
                        let st = rustix::fs::statat(parent, os(name), AtFlags::SYMLINK_NOFOLLOW)
                            .map_err(|e| err("fstatat", e))?;
                        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                            self.remove_all(parent, name, key)?;
                            rustix::fs::mkdirat(parent, os(name), Mode::from_raw_mode(0o700))
                                .map_err(|e| err("mkdirat", e))?;
                        } else {
                            kept = true;
                        }
                    }
                    Err(e) => return Err(err("mkdirat", e)),
                }
                if let Some((u, g)) = meta.owner {
                    rustix::fs::chownat(
                        parent,
                        os(name),
                        Some(uid(u)),
                        Some(gid(g)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(|e| err("fchownat", e))?;
                }
                // A directory kept from a lower layer takes this entry's
                // attributes: stale ones go (not overlay's or SELinux's).
                let sync = kept && self.opts.xattrs != XattrPolicy::Ignore;
                if !meta.xattrs.is_empty() || sync {
                    let fd = rustix::fs::openat(
                        parent,
                        os(name),
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| err("openat", e))?;
                    if sync {
                        self.remove_stale_xattrs(&fd, &meta.xattrs, key)?;
                    }
                    for (n, v) in &meta.xattrs {
                        self.xattr_result(
                            rustix::fs::fsetxattr(&fd, os(n), v, XattrFlags::empty()),
                            key,
                        )?;
                    }
                }
                let d = DeferredDir {
                    path: key.to_vec(),
                    mode: meta.mode,
                    mtime: meta.mtime,
                };
                match self.dir_index.get(key) {
                    Some(&i) => self.dirs[i] = d,
                    None => {
                        self.dir_index.insert(key.to_vec(), self.dirs.len());
                        self.dirs.push(d);
                    }
                }
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .filter(|t| !t.is_empty() && !t.contains(&0))
                    .ok_or_else(|| Error::InvalidEntryPath {
                        path: shown(),
                        reason: "symlink without a valid target",
                    })?;
                if target.len() >= PATH_MAX {
                    return Err(Error::InvalidEntryPath {
                        path: shown(),
                        reason: "symlink target longer than PATH_MAX",
                    });
                }
                self.remove_existing(parent, name, key)?;
                rustix::fs::symlinkat(os(&target), parent, os(name))
                    .map_err(|e| err("symlinkat", e))?;
                self.finish_node(parent, name, key, meta)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .ok_or_else(|| Error::InvalidEntryPath {
                        path: shown(),
                        reason: "hardlink without a target",
                    })?;
                let tcomps = clean_path(&target).map_err(|reason| Error::InvalidEntryPath {
                    path: shown(),
                    reason,
                })?;
                let Some((&tname, tparent)) = tcomps.split_last() else {
                    return Err(Error::InvalidEntryPath {
                        path: shown(),
                        reason: "hardlink to the root directory",
                    });
                };
                if join(&tcomps) == key {
                    return Ok(());
                }
                let tdir = self.open_dir(tparent, false, &target)?;
                self.remove_existing(parent, name, key)?;
                rustix::fs::linkat(&tdir, os(tname), parent, os(name), AtFlags::empty())
                    .map_err(|e| err("linkat", e))?;
            }
            tar::EntryType::Fifo => {
                self.remove_existing(parent, name, key)?;
                rustix::fs::mknodat(
                    parent,
                    os(name),
                    FileType::Fifo,
                    Mode::from_raw_mode(0o600),
                    0,
                )
                .map_err(|e| err("mknodat", e))?;
                self.finish_node(parent, name, key, meta)?;
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                match self.opts.devices {
                    DevicePolicy::Skip => return Ok(()),
                    DevicePolicy::Reject => return Err(Error::DeviceRejected { path: shown() }),
                    DevicePolicy::Create => {}
                }
                let h = entry.header();
                let major =
                    h.device_major()
                        .ok()
                        .flatten()
                        .ok_or_else(|| Error::InvalidHeader {
                            path: shown(),
                            field: "devmajor",
                        })?;
                let minor =
                    h.device_minor()
                        .ok()
                        .flatten()
                        .ok_or_else(|| Error::InvalidHeader {
                            path: shown(),
                            field: "devminor",
                        })?;
                let ft = if kind == tar::EntryType::Char {
                    FileType::CharacterDevice
                } else {
                    FileType::BlockDevice
                };
                self.remove_existing(parent, name, key)?;
                rustix::fs::mknodat(
                    parent,
                    os(name),
                    ft,
                    Mode::from_raw_mode(0o600),
                    makedev(major, minor),
                )
                .map_err(|e| err("mknodat", e))?;
                self.finish_node(parent, name, key, meta)?;
            }
            other => {
                return Err(Error::UnsupportedEntryType {
                    path: shown(),
                    kind: other.as_byte(),
                });
            }
        }
        Ok(())
    }

    /// Ownership, mode, xattrs and mtime of a node created by name
    /// (symlink, fifo, device), without following it.
    fn finish_node(
        &self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        key: &[u8],
        meta: &Meta,
    ) -> Result<()> {
        let err = |op, e: Errno| unpack_err(key, op, e);
        let st = rustix::fs::statat(parent, os(name), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| err("fstatat", e))?;
        let is_link = FileType::from_raw_mode(st.st_mode) == FileType::Symlink;
        if let Some((u, g)) = meta.owner {
            rustix::fs::chownat(
                parent,
                os(name),
                Some(uid(u)),
                Some(gid(g)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| err("fchownat", e))?;
        }
        if !is_link {
            // Just created by us and not a symlink: fchmodat cannot be
            // redirected.
            rustix::fs::chmodat(
                parent,
                os(name),
                Mode::from_raw_mode(meta.mode),
                AtFlags::empty(),
            )
            .map_err(|e| err("fchmodat", e))?;
        }
        if !meta.xattrs.is_empty() {
            let p = proc_path(parent, name);
            for (n, v) in &meta.xattrs {
                self.xattr_result(
                    rustix::fs::lsetxattr(&p, os(n), v, XattrFlags::empty()),
                    key,
                )?;
            }
        }
        if let Some(t) = meta.mtime {
            rustix::fs::utimensat(parent, os(name), &times(t), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| err("utimensat", e))?;
        }
        Ok(())
    }

    fn remove_stale_xattrs(
        &self,
        fd: &OwnedFd,
        keep: &[(Vec<u8>, Vec<u8>)],
        key: &[u8],
    ) -> Result<()> {
        let mut list = vec![0u8; 4096];
        let n = loop {
            match rustix::fs::flistxattr(fd, &mut list[..]) {
                Ok(n) => break n,
                Err(Errno::RANGE) if list.len() < 1 << 20 => list.resize(list.len() * 4, 0),
                Err(Errno::NOTSUP) => return Ok(()),
                Err(e) => return self.xattr_result(Err(e), key),
            }
        };
        for name in list[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
            let protected = name.starts_with(b"trusted.overlay.")
                || name.starts_with(b"user.overlay.")
                || name == b"security.selinux";
            if protected || keep.iter().any(|(k, _)| k == name) {
                continue;
            }
            self.xattr_result(rustix::fs::fremovexattr(fd, os(name)), key)?;
        }
        Ok(())
    }

    fn filter_xattrs(&self, xattrs: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<(Vec<u8>, Vec<u8>)> {
        if self.opts.xattrs == XattrPolicy::Ignore {
            return Vec::new();
        }
        xattrs
            .into_iter()
            .filter(|(n, _)| {
                !n.is_empty()
                    && n.len() <= NAME_MAX
                    && !n.contains(&0)
                    && !n.starts_with(b"trusted.overlay.")
                    && !n.starts_with(b"user.overlay.")
            })
            .collect()
    }

    fn xattr_result(&self, r: rustix::io::Result<()>, key: &[u8]) -> Result<()> {
        match r {
            Ok(()) => Ok(()),
            Err(Errno::NOTSUP | Errno::PERM | Errno::ACCESS | Errno::INVAL | Errno::NODATA)
                if self.opts.xattrs == XattrPolicy::Apply =>
            {
                Ok(())
            }
            Err(e) => Err(unpack_err(key, "setxattr", e)),
        }
    }

    /// Creates a regular file, replacing whatever is at `name`.
    fn create_file(&mut self, parent: BorrowedFd<'_>, name: &[u8], key: &[u8]) -> Result<OwnedFd> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(parent, os(name), flags, Mode::from_raw_mode(0o600)) {
            Ok(fd) => Ok(fd),
            Err(Errno::EXIST) => {
                self.remove_existing(parent, name, key)?;
                rustix::fs::openat(parent, os(name), flags, Mode::from_raw_mode(0o600))
                    .map_err(|e| unpack_err(key, "openat", e))
            }
            Err(e) => Err(unpack_err(key, "openat", e)),
        }
    }

    /// Removes whatever is at `name` (a directory recursively).
    fn remove_existing(&mut self, parent: BorrowedFd<'_>, name: &[u8], key: &[u8]) -> Result<()> {
        self.remove_all(parent, name, key)
    }

    fn remove_all(&mut self, parent: BorrowedFd<'_>, name: &[u8], key: &[u8]) -> Result<()> {
        self.invalidated = true;
        remove_all_at(parent, name, 0).map_err(|e| unpack_err(key, "remove", e))
    }

    fn whiteout(&mut self, parent_comps: &[&[u8]], name: &[u8], key: &[u8]) -> Result<()> {
        let parent_key = join(parent_comps);
        let shown = || String::from_utf8_lossy(key).into_owned();
        if name == OPAQUE_WHITEOUT {
            let dir = self.open_dir(parent_comps, true, &parent_key)?;
            match self.opts.whiteouts {
                WhiteoutMode::Apply => {
                    self.invalidated = true;
                    self.cache = None;
                    let rd = reopen_dir(&dir).map_err(|e| unpack_err(&parent_key, "open", e))?;
                    self.clear_opaque(rd.as_fd(), &parent_key)?;
                }
                WhiteoutMode::Overlay => {
                    let rd = reopen_dir(&dir).map_err(|e| unpack_err(&parent_key, "open", e))?;
                    rustix::fs::fsetxattr(&rd, "trusted.overlay.opaque", b"y", XattrFlags::empty())
                        .map_err(|e| {
                            unpack_err(&parent_key, "setxattr trusted.overlay.opaque", e)
                        })?;
                }
            }
            return Ok(());
        }
        if name.starts_with(b".wh..wh.") {
            // AUFS bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not content.
            return Ok(());
        }
        let target = &name[WHITEOUT_PREFIX.len()..];
        if target.is_empty() || target == b"." || target == b".." {
            return Err(Error::InvalidEntryPath {
                path: shown(),
                reason: "whiteout of an empty, . or .. name",
            });
        }
        if self.opts.mark_incomplete
            && parent_comps.is_empty()
            && target == INCOMPLETE_MARKER.as_bytes()
        {
            return Err(Error::InvalidEntryPath {
                path: shown(),
                reason: "whiteout of the incomplete-unpack marker",
            });
        }
        let mut tkey = parent_key.clone();
        if !tkey.is_empty() {
            tkey.push(b'/');
        }
        tkey.extend_from_slice(target);
        match self.opts.whiteouts {
            WhiteoutMode::Apply => {
                if self.seen.contains(&tkey) {
                    // Whiteouts hide lower layers only.
                    return Ok(());
                }
                let dir = match self.open_dir(parent_comps, false, &parent_key) {
                    Ok(d) => d,
                    // Nothing there to hide.
                    Err(Error::Unpack { source, .. })
                        if matches!(source.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) =>
                    {
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                };
                self.cache = None;
                self.remove_all(dir.as_fd(), target, &tkey)
            }
            WhiteoutMode::Overlay => {
                if self.seen.contains(&tkey) {
                    return Ok(());
                }
                let dir = self.open_dir(parent_comps, true, &parent_key)?;
                self.remove_all(dir.as_fd(), target, &tkey)?;
                rustix::fs::mknodat(
                    &dir,
                    os(target),
                    FileType::CharacterDevice,
                    Mode::empty(),
                    makedev(0, 0),
                )
                .map_err(|e| unpack_err(&tkey, "mknodat whiteout", e))?;
                self.seen.insert(tkey);
                Ok(())
            }
        }
    }

    /// Removes everything below `dir` that this layer did not create.
    fn clear_opaque(&mut self, dir: BorrowedFd<'_>, key: &[u8]) -> Result<()> {
        let names = list_dir(dir).map_err(|e| unpack_err(key, "getdents", e))?;
        for name in names {
            if key.is_empty() && name == INCOMPLETE_MARKER.as_bytes() {
                continue;
            }
            let mut ck = key.to_vec();
            if !ck.is_empty() {
                ck.push(b'/');
            }
            ck.extend_from_slice(&name);
            if !self.seen.contains(&ck) {
                self.remove_all(dir, &name, &ck)?;
                continue;
            }
            match rustix::fs::openat(
                dir,
                os(&name),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(sub) => self.clear_opaque(sub.as_fd(), &ck)?,
                Err(Errno::NOTDIR | Errno::LOOP) => {}
                Err(e) => return Err(unpack_err(&ck, "openat", e)),
            }
        }
        Ok(())
    }

    /// The parent directory of an entry, created if missing (cached).
    fn parent(&mut self, comps: &[&[u8]], key: &[u8]) -> Result<(Vec<u8>, OwnedFd)> {
        let pkey = join(comps);
        if let Some((k, fd)) = self.cache.take() {
            if k == pkey {
                return Ok((k, fd));
            }
        }
        let fd = self.open_dir(comps, true, key)?;
        Ok((pkey, fd))
    }

    /// Opens a directory inside the root (O_PATH), resolving symlinks as if
    /// the root were `/`; with `create`, makes missing components.
    fn open_dir(&self, comps: &[&[u8]], create: bool, key: &[u8]) -> Result<OwnedFd> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        if comps.is_empty() {
            return rustix::fs::openat(self.root, ".", flags, Mode::empty())
                .map_err(|e| unpack_err(key, "openat root", e));
        }
        match resolve_in_root(self.root, &join(comps), flags, self.opts.resolver) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) if create => {}
            Err(e) => return Err(unpack_err(key, "openat2 parent", e)),
        }
        let mut cur = rustix::fs::openat(self.root, ".", flags, Mode::empty())
            .map_err(|e| unpack_err(key, "openat root", e))?;
        for i in 0..comps.len() {
            match resolve_in_root(self.root, &join(&comps[..=i]), flags, self.opts.resolver) {
                Ok(fd) => cur = fd,
                Err(Errno::NOENT) => {
                    match rustix::fs::mkdirat(&cur, os(comps[i]), Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(unpack_err(key, "mkdirat parent", e)),
                    }
                    cur = rustix::fs::openat(
                        &cur,
                        os(comps[i]),
                        flags | OFlags::NOFOLLOW,
                        Mode::empty(),
                    )
                    .map_err(|e| unpack_err(key, "openat parent", e))?;
                }
                Err(e) => return Err(unpack_err(key, "openat2 parent", e)),
            }
        }
        Ok(cur)
    }

    /// Sets modes and mtimes of directories last, since creating their
    /// children changed them.
    fn finish_dirs(&mut self) -> Result<()> {
        for d in self.dirs.iter().rev() {
            let fd = match resolve_in_root(
                self.root,
                &d.path,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                self.opts.resolver,
            ) {
                Ok(fd) => fd,
                // Removed or replaced later in the layer.
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                Err(e) => return Err(unpack_err(&d.path, "openat2", e)),
            };
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(d.mode))
                .map_err(|e| unpack_err(&d.path, "fchmod", e))?;
            if let Some(t) = d.mtime {
                rustix::fs::futimens(&fd, &times(t))
                    .map_err(|e| unpack_err(&d.path, "futimens", e))?;
            }
        }
        Ok(())
    }
}

static OPENAT2_MISSING: AtomicBool = AtomicBool::new(false);

/// Opens `path` as if `root` were `/`: `openat2(2)` with `RESOLVE_IN_ROOT |
/// RESOLVE_NO_MAGICLINKS` where the kernel has it, else (or with
/// [`Resolver::Walk`]) [`walk_in_root`].
pub(crate) fn resolve_in_root(
    root: BorrowedFd<'_>,
    path: &[u8],
    flags: OFlags,
    resolver: Resolver,
) -> rustix::io::Result<OwnedFd> {
    if resolver == Resolver::Walk || OPENAT2_MISSING.load(Ordering::Relaxed) {
        return walk_in_root(root, path, flags);
    }
    loop {
        match rustix::fs::openat2(
            root,
            os(path),
            flags,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            // The kernel asks for a retry when a rename raced the lookup.
            Err(Errno::AGAIN) => continue,
            // Before Linux 5.6 (or filtered by seccomp).
            Err(Errno::NOSYS) => {
                OPENAT2_MISSING.store(true, Ordering::Relaxed);
                return walk_in_root(root, path, flags);
            }
            r => return r,
        }
    }
}

/// The user-space equivalent of `RESOLVE_IN_ROOT`: walks `path` one
/// component at a time from `root` with `O_PATH | O_NOFOLLOW` opens, reads
/// each symlink met with `readlinkat` and resolves its target against the
/// root (absolute) or the current directory (relative), and clamps `..` at
/// the root by keeping the stack of directories walked. The final component
/// follows symlinks unless `flags` has `O_NOFOLLOW`. Symlinks are never
/// followed by the kernel, so magic links cannot jump out either.
pub(crate) fn walk_in_root(
    root: BorrowedFd<'_>,
    path: &[u8],
    flags: OFlags,
) -> rustix::io::Result<OwnedFd> {
    const MAX_SYMLINKS: usize = 40;
    if path.is_empty() {
        return Err(Errno::NOENT);
    }
    let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut stack: Vec<OwnedFd> = vec![rustix::fs::openat(root, ".", dir_flags, Mode::empty())?];
    let mut queue: std::collections::VecDeque<Vec<u8>> = path
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
        .collect();
    let mut links = 0;
    while let Some(c) = queue.pop_front() {
        if c == b"." {
            continue;
        }
        if c == b".." {
            if stack.len() > 1 {
                stack.pop();
            }
            continue;
        }
        let cur = stack.last().ok_or(Errno::INVAL)?.as_fd();
        let last = queue.is_empty();
        let st = rustix::fs::statat(cur, os(&c), AtFlags::SYMLINK_NOFOLLOW)?;
        let is_link = FileType::from_raw_mode(st.st_mode) == FileType::Symlink;
        if is_link && !(last && flags.contains(OFlags::NOFOLLOW)) {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(Errno::LOOP);
            }
            let target = rustix::fs::readlinkat(cur, os(&c), Vec::new())?;
            let target = target.as_bytes();
            if target.starts_with(b"/") {
                stack.truncate(1);
            }
            for t in target.split(|b| *b == b'/').rev() {
                if !t.is_empty() && t != b"." {
                    queue.push_front(t.to_vec());
                }
            }
            continue;
        }
        if last {
            // O_NOFOLLOW: if the name became a symlink since the stat, fail
            // rather than follow it.
            return rustix::fs::openat(cur, os(&c), flags | OFlags::NOFOLLOW, Mode::empty());
        }
        let next = rustix::fs::openat(cur, os(&c), dir_flags, Mode::empty())?;
        stack.push(next);
    }
    let top = stack.last().ok_or(Errno::INVAL)?;
    rustix::fs::openat(top, ".", flags, Mode::empty())
}

fn reopen_dir(dir: &OwnedFd) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn list_dir(dir: BorrowedFd<'_>) -> rustix::io::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let d = Dir::read_from(dir)?;
    for ent in d {
        let ent = ent?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.push(n.to_vec());
        }
    }
    Ok(out)
}

/// Removes `name` in `parent` without following symlinks; a directory is
/// emptied through file descriptors first. A missing name is not an error.
pub(crate) fn remove_all_at(
    parent: BorrowedFd<'_>,
    name: &[u8],
    depth: usize,
) -> rustix::io::Result<()> {
    // Symlinked parents let a layer build trees deeper than PATH_MAX; stop
    // before the recursion exhausts the stack.
    if depth > MAX_REMOVE_DEPTH {
        return Err(Errno::NAMETOOLONG);
    }
    match rustix::fs::unlinkat(parent, os(name), AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR) => {}
        Err(e) => return Err(e),
    }
    let fd = match rustix::fs::openat(
        parent,
        os(name),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    for child in list_dir(fd.as_fd())? {
        remove_all_at(fd.as_fd(), &child, depth + 1)?;
    }
    drop(fd);
    match rustix::fs::unlinkat(parent, os(name), AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

fn proc_path(parent: BorrowedFd<'_>, name: &[u8]) -> PathBuf {
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", parent.as_raw_fd()));
    p.push(os(name));
    p
}

fn uid(u: u32) -> rustix::fs::Uid {
    rustix::fs::Uid::from_raw(u)
}

fn gid(g: u32) -> rustix::fs::Gid {
    rustix::fs::Gid::from_raw(g)
}

fn times((sec, nsec): (i64, u32)) -> Timestamps {
    let t = rustix::fs::Timespec {
        tv_sec: sec,
        tv_nsec: nsec.into(),
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// Parses a PAX time (`seconds[.fraction]`).
fn parse_pax_time(v: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(v).ok()?;
    let (sec, frac) = match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    };
    let sec: i64 = sec.parse().ok()?;
    if frac.is_empty() {
        return Some((sec, 0));
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let nsec: u32 = digits.parse().ok()?;
    if sec < 0 && nsec > 0 {
        // Negative fractional times are rare; round down to whole seconds.
        return Some((sec, 0));
    }
    Some((sec, nsec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_path_clamps_at_root() {
        let c = clean_path(b"/../a/./b/../../../c//d/").unwrap();
        assert_eq!(c, vec![&b"c"[..], &b"d"[..]]);
        assert!(clean_path(b"..").unwrap().is_empty());
        assert!(clean_path(b"a\0b").is_err());
        assert!(clean_path(&[b'x'; 256]).is_err());
        assert!(clean_path(&[b'x'; 4096]).is_err());
    }

    /// The user-space walk opens the same inode as openat2(RESOLVE_IN_ROOT)
    /// or fails where it fails.
    #[test]
    fn walk_matches_openat2() {
        use std::os::unix::fs::symlink;
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("a/b/c")).unwrap();
        std::fs::write(r.join("a/b/f"), b"f").unwrap();
        symlink("/a/b", r.join("abs")).unwrap();
        symlink("../../..", r.join("a/up")).unwrap();
        symlink("b/c", r.join("a/rel")).unwrap();
        symlink("loop2", r.join("loop1")).unwrap();
        symlink("loop1", r.join("loop2")).unwrap();
        symlink("/proc/self/root", r.join("magic")).unwrap();
        symlink("f", r.join("a/b/lf")).unwrap();
        let root = rustix::fs::open(r, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let paths = [
            "",
            ".",
            "..",
            "a",
            "a/b/c",
            "abs",
            "abs/c",
            "abs/../..",
            "a/up",
            "a/up/a/b/f",
            "a/rel",
            "a/rel/..",
            "loop1",
            "loop1/x",
            "magic",
            "magic/etc",
            "a/b/lf",
            "a/b/f/x",
            "/a/../../a/b",
            "missing",
            "a/missing/x",
        ];
        for flags in [
            OFlags::PATH | OFlags::CLOEXEC,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        ] {
            for p in paths {
                let k = resolve_in_root(root.as_fd(), p.as_bytes(), flags, Resolver::Auto);
                let w = walk_in_root(root.as_fd(), p.as_bytes(), flags);
                match (k, w) {
                    (Ok(a), Ok(b)) => {
                        let (sa, sb) = (
                            rustix::fs::fstat(&a).unwrap(),
                            rustix::fs::fstat(&b).unwrap(),
                        );
                        assert_eq!(
                            (sa.st_dev, sa.st_ino),
                            (sb.st_dev, sb.st_ino),
                            "{p:?} {flags:?}"
                        );
                    }
                    (Err(_), Err(_)) => {}
                    (k, w) => panic!("{p:?} {flags:?}: openat2 {k:?}, walk {w:?}"),
                }
            }
        }
    }

    #[test]
    fn pax_times_parse() {
        assert_eq!(parse_pax_time(b"12.5"), Some((12, 500_000_000)));
        assert_eq!(parse_pax_time(b"12"), Some((12, 0)));
        assert_eq!(parse_pax_time(b"1.123456789123"), Some((1, 123_456_789)));
        assert_eq!(parse_pax_time(b"x"), None);
    }

    #[test]
    fn compression_from_magic_and_media_type() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::detect(b"abc"), Compression::None);
        assert_eq!(
            Compression::from_media_type(&MediaType::Other(DOCKER_LAYER_GZIP.into())),
            Some(Compression::Gzip)
        );
        assert_eq!(Compression::from_media_type(&MediaType::ImageConfig), None);
    }
}
