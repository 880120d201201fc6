//! Snapshots on containerd's model.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::image::Digest;

use crate::diff::{DiffOptions, DiffSource, write_diff};
use crate::digest::{Hasher, digest_hex, parse_digest};
use crate::error::{Error, Result};
use crate::image::RemoveOnDrop;
use crate::layout::{ImageLayout, ResolvedImage, unique_suffix};
use crate::unpack::{ApplyOptions, Compression, WhiteoutMode};

/// The chain IDs of a stack of diff_ids, bottom first:
/// `chain(0) = diff_id(0)`, `chain(n) = sha256(chain(n-1) + " " + diff_id(n))`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => {
                let mut h = Hasher::default();
                h.update(prev.as_ref().as_bytes());
                h.update(b" ");
                h.update(d.as_ref().as_bytes());
                h.digest()
            }
        };
        out.push(next);
    }
    out
}

/// Where snapshots live: `committed/<chain-id-hex>/{fs,parent}` for
/// extracted layers, `active/<key>/{upper,work,parent}` for writable ones.
///
/// Each layer is extracted once, keyed by its chain ID, with OCI whiteouts
/// turned into overlay whiteouts; containers stack the committed
/// directories as overlay lower layers and share them.
///
/// ```no_run
/// use hull_image_layers::{ApplyOptions, ImageLayout, PlatformSpec};
/// use hull_image_layers::snapshot::Snapshotter;
/// let layout = ImageLayout::open("/var/lib/images/alpine")?;
/// let snaps = Snapshotter::new("/var/lib/hull/snapshots")?;
/// let image = layout.resolve("latest", &PlatformSpec::default())?;
/// let top = snaps.unpack_image(&layout, &image, &ApplyOptions::default())?;
/// let active = snaps.prepare("ctr1", top.as_ref())?;
/// println!("mount -t overlay overlay -o {} /mnt", active.overlay_options());
/// # Ok::<(), hull_image_layers::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Snapshotter {
    root: PathBuf,
}

/// Committed (read-only, keyed by chain ID) or active (writable, keyed by a
/// caller's name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotKind {
    /// An extracted or committed layer.
    Committed,
    /// A writable upper directory on top of a committed parent.
    Active,
}

/// One snapshot, as [`Snapshotter::walk`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Committed or active.
    pub kind: SnapshotKind,
    /// The chain ID (committed) or key (active).
    pub name: String,
    /// The parent chain ID.
    pub parent: Option<String>,
}

/// A writable snapshot: the directories for an overlay mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSnapshot {
    /// The key.
    pub key: String,
    /// The overlay upper directory.
    pub upper: PathBuf,
    /// The overlay work directory.
    pub work: PathBuf,
    /// The lower directories, top first (empty for a snapshot without a
    /// parent).
    pub lowers: Vec<PathBuf>,
}

impl ActiveSnapshot {
    /// The overlay mount options (`lowerdir=...,upperdir=...,workdir=...`).
    /// Without lowers, an empty lower is not possible: mount the upper
    /// directory with a bind mount instead.
    pub fn overlay_options(&self) -> String {
        let lowers: Vec<String> = self
            .lowers
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        format!(
            "lowerdir={},upperdir={},workdir={}",
            lowers.join(":"),
            self.upper.display(),
            self.work.display()
        )
    }
}

/// The result of [`Snapshotter::commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedSnapshot {
    /// The new chain ID.
    pub chain_id: Digest,
    /// The diff_id of the upper directory as a layer.
    pub diff_id: Digest,
}

fn check_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 128
        && !key.starts_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidSnapshotKey { key: key.into() })
    }
}

impl Snapshotter {
    /// Opens (creating if needed) a snapshot store at `root`.
    ///
    /// # Errors
    /// [`Error::Snapshot`] if the directories cannot be created.
    pub fn new(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        for d in ["committed", "active", "tmp"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(|source| Error::Snapshot {
                key: String::new(),
                op: "mkdir",
                path: p.clone(),
                source,
            })?;
        }
        Ok(Self { root })
    }

    fn committed_dir(&self, chain: &Digest) -> Result<PathBuf> {
        Ok(self.root.join("committed").join(digest_hex(chain)?))
    }

    /// The filesystem directory of a committed snapshot.
    ///
    /// # Errors
    /// [`Error::SnapshotNotFound`], [`Error::InvalidDigest`].
    pub fn committed_path(&self, chain: &Digest) -> Result<PathBuf> {
        let d = self.committed_dir(chain)?;
        if !d.is_dir() {
            return Err(Error::SnapshotNotFound {
                key: chain.to_string(),
            });
        }
        Ok(d.join("fs"))
    }

    fn parent_of_committed(&self, chain: &Digest) -> Result<Option<Digest>> {
        let p = self.committed_dir(chain)?.join("parent");
        read_parent(&p, chain.as_ref())
    }

    /// The lower directories of `chain`, top first.
    ///
    /// # Errors
    /// [`Error::SnapshotNotFound`] if any ancestor is missing.
    pub fn lowers(&self, chain: &Digest) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut cur = Some(chain.clone());
        while let Some(c) = cur {
            if out.len() > 1000 {
                return Err(Error::SnapshotNotFound { key: c.to_string() });
            }
            out.push(self.committed_path(&c)?);
            cur = self.parent_of_committed(&c)?;
        }
        Ok(out)
    }

    /// Extracts one layer blob on top of `parent` (if not already there) and
    /// returns its chain ID.
    ///
    /// # Errors
    /// Those of [`ImageLayout::apply_layer_blob`] and [`Error::Snapshot`].
    pub fn extract_layer(
        &self,
        layout: &ImageLayout,
        parent: Option<&Digest>,
        layer: &oci_spec::image::Descriptor,
        diff_id: &Digest,
        opts: &ApplyOptions,
    ) -> Result<Digest> {
        let chain = match parent {
            None => diff_id.clone(),
            Some(p) => chain_ids(&[p.clone(), diff_id.clone()])
                .pop()
                .unwrap_or_else(|| diff_id.clone()),
        };
        let dest = self.committed_dir(&chain)?;
        if dest.is_dir() {
            return Ok(chain);
        }
        if let Some(p) = parent {
            self.committed_path(p)?;
        }
        let key = chain.to_string();
        let tmp = self.root.join("tmp").join(unique_suffix());
        let serr = |op, path: &Path, source| Error::Snapshot {
            key: key.clone(),
            op,
            path: path.to_path_buf(),
            source,
        };
        fs::create_dir_all(tmp.join("fs")).map_err(|e| serr("mkdir", &tmp, e))?;
        let mut guard = RemoveOnDrop(Some(tmp.clone()));
        let mut o = opts.clone();
        o.whiteouts = WhiteoutMode::Overlay;
        o.mark_incomplete = false;
        layout.apply_layer_blob(layer, diff_id, &tmp.join("fs"), &o)?;
        let parent_text = parent.map(|p| p.to_string()).unwrap_or_default();
        fs::write(tmp.join("parent"), parent_text).map_err(|e| serr("write parent", &tmp, e))?;
        match fs::rename(&tmp, &dest) {
            Ok(()) => guard.0 = None,
            // Extracted concurrently by someone else: theirs is as good.
            Err(_) if dest.is_dir() => {}
            Err(e) => return Err(serr("rename", &dest, e)),
        }
        Ok(chain)
    }

    /// Extracts every layer of an image that is not extracted yet; returns
    /// the top chain ID (`None` for an image without layers).
    ///
    /// # Errors
    /// Those of [`Snapshotter::extract_layer`].
    pub fn unpack_image(
        &self,
        layout: &ImageLayout,
        image: &ResolvedImage,
        opts: &ApplyOptions,
    ) -> Result<Option<Digest>> {
        let mut parent: Option<Digest> = None;
        for (layer, diff_id) in image.layers()? {
            parent = Some(self.extract_layer(layout, parent.as_ref(), &layer, &diff_id, opts)?);
        }
        Ok(parent)
    }

    /// Creates a writable snapshot `key` on top of `parent`.
    ///
    /// # Errors
    /// [`Error::InvalidSnapshotKey`], [`Error::SnapshotExists`],
    /// [`Error::SnapshotNotFound`] (parent), [`Error::Snapshot`].
    pub fn prepare(&self, key: &str, parent: Option<&Digest>) -> Result<ActiveSnapshot> {
        check_key(key)?;
        let lowers = match parent {
            Some(p) => self.lowers(p)?,
            None => Vec::new(),
        };
        let dir = self.root.join("active").join(key);
        let serr = |op, path: &Path, source| Error::Snapshot {
            key: key.into(),
            op,
            path: path.to_path_buf(),
            source,
        };
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Error::SnapshotExists { key: key.into() });
            }
            Err(e) => return Err(serr("mkdir", &dir, e)),
        }
        let mut guard = RemoveOnDrop(Some(dir.clone()));
        for d in ["upper", "work"] {
            fs::create_dir(dir.join(d)).map_err(|e| serr("mkdir", &dir.join(d), e))?;
        }
        let parent_text = parent.map(|p| p.to_string()).unwrap_or_default();
        fs::write(dir.join("parent"), parent_text).map_err(|e| serr("write parent", &dir, e))?;
        guard.0 = None;
        Ok(ActiveSnapshot {
            key: key.into(),
            upper: dir.join("upper"),
            work: dir.join("work"),
            lowers,
        })
    }

    /// The active snapshot `key`.
    ///
    /// # Errors
    /// [`Error::SnapshotNotFound`].
    pub fn active(&self, key: &str) -> Result<ActiveSnapshot> {
        check_key(key)?;
        let dir = self.root.join("active").join(key);
        if !dir.is_dir() {
            return Err(Error::SnapshotNotFound { key: key.into() });
        }
        let parent = read_parent(&dir.join("parent"), key)?;
        let lowers = match &parent {
            Some(p) => self.lowers(p)?,
            None => Vec::new(),
        };
        Ok(ActiveSnapshot {
            key: key.into(),
            upper: dir.join("upper"),
            work: dir.join("work"),
            lowers,
        })
    }

    /// Turns the (unmounted) active snapshot `key` into a committed one: its
    /// upper directory, already in overlay form, becomes the committed
    /// directory of the new chain ID; the active snapshot is gone.
    ///
    /// # Errors
    /// [`Error::SnapshotNotFound`], the diff's errors, [`Error::Snapshot`].
    pub fn commit(&self, key: &str) -> Result<CommittedSnapshot> {
        let active = self.active(key)?;
        let dir = self.root.join("active").join(key);
        let parent = read_parent(&dir.join("parent"), key)?;
        let opts = DiffOptions {
            compression: Compression::None,
            ..DiffOptions::default()
        };
        let (stats, _) = write_diff(&DiffSource::OverlayUpper(&active.upper), io::sink(), &opts)?;
        let chain = match &parent {
            None => stats.diff_id.clone(),
            Some(p) => chain_ids(&[p.clone(), stats.diff_id.clone()])
                .pop()
                .unwrap_or_else(|| stats.diff_id.clone()),
        };
        let dest = self.committed_dir(&chain)?;
        let serr = |op, path: &Path, source| Error::Snapshot {
            key: key.into(),
            op,
            path: path.to_path_buf(),
            source,
        };
        if dest.is_dir() {
            fs::remove_dir_all(&dir).map_err(|e| serr("remove", &dir, e))?;
        } else {
            let _ = fs::remove_dir_all(dir.join("work"));
            fs::rename(dir.join("upper"), dir.join("fs")).map_err(|e| serr("rename", &dir, e))?;
            fs::rename(&dir, &dest).map_err(|e| serr("rename", &dest, e))?;
        }
        Ok(CommittedSnapshot {
            chain_id: chain,
            diff_id: stats.diff_id,
        })
    }

    /// Every snapshot, committed first, each sorted by name.
    ///
    /// # Errors
    /// [`Error::Walk`].
    pub fn walk(&self) -> Result<Vec<SnapshotInfo>> {
        let mut out = Vec::new();
        for (kind, sub) in [
            (SnapshotKind::Committed, "committed"),
            (SnapshotKind::Active, "active"),
        ] {
            let dir = self.root.join(sub);
            let werr = |source| Error::Walk {
                path: dir.clone(),
                source,
            };
            let mut names: Vec<String> = fs::read_dir(&dir)
                .map_err(werr)?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for n in names {
                let name = match kind {
                    SnapshotKind::Committed => format!("sha256:{n}"),
                    SnapshotKind::Active => n.clone(),
                };
                let parent = read_parent(&dir.join(&n).join("parent"), &name)?;
                out.push(SnapshotInfo {
                    kind,
                    name,
                    parent: parent.map(|p| p.to_string()),
                });
            }
        }
        Ok(out)
    }

    /// Removes a snapshot: an active one by key, a committed one by chain ID
    /// (`sha256:...`), refusing while another snapshot has it as parent.
    ///
    /// # Errors
    /// [`Error::SnapshotNotFound`], [`Error::SnapshotInUse`],
    /// [`Error::Snapshot`].
    pub fn remove(&self, name: &str) -> Result<()> {
        let dir = if name.starts_with("sha256:") {
            let chain = parse_digest(name)?;
            let all = self.walk()?;
            if let Some(child) = all.iter().find(|s| s.parent.as_deref() == Some(name)) {
                return Err(Error::SnapshotInUse {
                    key: name.into(),
                    child: child.name.clone(),
                });
            }
            self.committed_dir(&chain)?
        } else {
            check_key(name)?;
            self.root.join("active").join(name)
        };
        if !dir.is_dir() {
            return Err(Error::SnapshotNotFound { key: name.into() });
        }
        // Move aside first so a half-removed snapshot is never visible.
        let trash = self.root.join("tmp").join(unique_suffix());
        let serr = |op, path: &Path, source| Error::Snapshot {
            key: name.into(),
            op,
            path: path.to_path_buf(),
            source,
        };
        fs::rename(&dir, &trash).map_err(|e| serr("rename", &dir, e))?;
        fs::remove_dir_all(&trash).map_err(|e| serr("remove", &trash, e))
    }
}

fn read_parent(path: &Path, key: &str) -> Result<Option<Digest>> {
    let text = fs::read_to_string(path).map_err(|source| Error::Snapshot {
        key: key.into(),
        op: "read parent",
        path: path.to_path_buf(),
        source,
    })?;
    let text = text.trim();
    if text.is_empty() {
        Ok(None)
    } else {
        parse_digest(text).map(Some)
    }
}
