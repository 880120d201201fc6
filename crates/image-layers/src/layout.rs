//! OCI image layouts: the `oci-layout` file, `index.json` and the
//! content-addressed blob store under `blobs/sha256/`.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use oci_spec::image::{
    Descriptor, Digest, ImageConfiguration, ImageIndex, ImageIndexBuilder, ImageManifest,
    MediaType, Platform,
};
use serde::Serialize;

use crate::digest::{HashingWriter, digest_hex, parse_digest};
use crate::error::{Error, Result};

/// The annotation that names an image in an index.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// Largest JSON document (manifest, index, config) this crate reads.
pub const MAX_JSON_SIZE: u64 = 16 << 20;

/// How deep nested indexes are followed.
const MAX_INDEX_DEPTH: usize = 8;

/// Docker's manifest list media type (read like an OCI index).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker's image manifest media type (read like an OCI manifest).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// An OCI image layout directory.
///
/// ```no_run
/// use hull_image_layers::{ImageLayout, PlatformSpec};
/// let layout = ImageLayout::open("/var/lib/images/alpine")?;
/// let image = layout.resolve("latest", &PlatformSpec::default())?;
/// println!("{} layers", image.manifest.layers().len());
/// # Ok::<(), hull_image_layers::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ImageLayout {
    root: PathBuf,
}

/// The platform to pick from a multi-platform index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSpec {
    /// Operating system, as in the image spec (`linux`).
    pub os: String,
    /// Architecture, as in the image spec (`amd64`, `arm64`).
    pub architecture: String,
    /// Variant (`v8`); `None` accepts any.
    pub variant: Option<String>,
}

impl Default for PlatformSpec {
    /// linux/amd64.
    fn default() -> Self {
        Self {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }
}

impl std::fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl PlatformSpec {
    /// An image config for this platform without layers: the start of an
    /// image built `FROM scratch`.
    ///
    /// # Errors
    /// [`Error::BuildDocument`] if the document cannot be built.
    pub fn empty_config(&self) -> Result<oci_spec::image::ImageConfiguration> {
        use oci_spec::image::{ImageConfigurationBuilder, Os, RootFsBuilder};
        let spec = |source| Error::BuildDocument { source };
        ImageConfigurationBuilder::default()
            .os(Os::from(self.os.as_str()))
            .architecture(self.architecture.as_str())
            .rootfs(
                RootFsBuilder::default()
                    .typ("layers")
                    .diff_ids(Vec::<String>::new())
                    .build()
                    .map_err(spec)?,
            )
            .build()
            .map_err(spec)
    }

    /// Whether a descriptor's platform matches.
    pub fn matches(&self, p: &Platform) -> bool {
        p.os().to_string() == self.os
            && p.architecture().to_string() == self.architecture
            && match (&self.variant, p.variant()) {
                (Some(want), Some(have)) => want == have,
                (Some(_), None) => false,
                (None, _) => true,
            }
    }
}

/// An image resolved from a reference: its manifest and config.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The descriptor of the manifest.
    pub descriptor: Descriptor,
    /// The manifest.
    pub manifest: ImageManifest,
    /// The image config (env, cmd, entrypoint, user, workdir, ports, labels,
    /// history, diff_ids).
    pub config: ImageConfiguration,
}

impl ResolvedImage {
    /// The layers with their diff_ids, bottom first.
    ///
    /// # Errors
    /// [`Error::LayerCountMismatch`] when the counts differ,
    /// [`Error::InvalidDigest`] for a malformed diff_id.
    pub fn layers(&self) -> Result<Vec<(Descriptor, Digest)>> {
        let layers = self.manifest.layers();
        let diff_ids = self.config.rootfs().diff_ids();
        if layers.len() != diff_ids.len() {
            return Err(Error::LayerCountMismatch {
                digest: self.descriptor.digest().to_string(),
                layers: layers.len(),
                diff_ids: diff_ids.len(),
            });
        }
        layers
            .iter()
            .zip(diff_ids)
            .map(|(l, d)| Ok((l.clone(), parse_digest(d)?)))
            .collect()
    }

    /// The chain IDs of the layers, bottom first (as containerd computes them).
    ///
    /// # Errors
    /// As [`ResolvedImage::layers`].
    pub fn chain_ids(&self) -> Result<Vec<Digest>> {
        let diff_ids: Vec<Digest> = self.layers()?.into_iter().map(|(_, d)| d).collect();
        Ok(crate::snapshot::chain_ids(&diff_ids))
    }
}

/// What [`ImageLayout::gc`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Number of blobs removed.
    pub removed: usize,
    /// Bytes freed.
    pub bytes: u64,
    /// Number of blobs kept.
    pub kept: usize,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

pub(crate) fn unique_suffix() -> String {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{n}-{t}", std::process::id())
}

/// Writes `data` to `path` atomically (temporary file, fsync, rename).
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", unique_suffix()));
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

impl ImageLayout {
    /// Creates a layout at `path` (or opens it if one is already there):
    /// the directory, `oci-layout`, an empty `index.json` and `blobs/sha256`.
    ///
    /// # Errors
    /// [`Error::CreateLayout`] naming the path that could not be created.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let root = path.as_ref().to_path_buf();
        let mk = |p: &Path| {
            fs::create_dir_all(p).map_err(|source| Error::CreateLayout {
                path: p.to_path_buf(),
                source,
            })
        };
        mk(&root.join("blobs/sha256"))?;
        mk(&root.join(".tmp"))?;
        let layout_file = root.join("oci-layout");
        if !layout_file.exists() {
            write_atomic(&layout_file, br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(|source| {
                Error::CreateLayout {
                    path: layout_file.clone(),
                    source,
                }
            })?;
        }
        let me = Self { root };
        if !me.root.join("index.json").exists() {
            let index = empty_index();
            me.write_index(&index)?;
        }
        Ok(me)
    }

    /// Opens an existing layout, checking its `oci-layout` file.
    ///
    /// # Errors
    /// [`Error::ReadLayout`] if the file is missing, [`Error::InvalidLayout`]
    /// for an unsupported version.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let root = path.as_ref().to_path_buf();
        let layout_file = root.join("oci-layout");
        let text = read_limited(&layout_file)?;
        let v: serde_json::Value = serde_json::from_slice(&text).map_err(|source| Error::Json {
            what: layout_file.display().to_string(),
            source,
        })?;
        if v.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
            return Err(Error::InvalidLayout {
                path: root,
                reason: "imageLayoutVersion is not 1.0.0",
            });
        }
        Ok(Self { root })
    }

    /// The layout directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The path of a blob (whether or not it exists).
    ///
    /// # Errors
    /// [`Error::InvalidDigest`] for a malformed digest.
    pub fn blob_path(&self, digest: &Digest) -> Result<PathBuf> {
        Ok(self.root.join("blobs/sha256").join(digest_hex(digest)?))
    }

    /// Whether the blob is present.
    ///
    /// # Errors
    /// [`Error::InvalidDigest`] for a malformed digest.
    pub fn has_blob(&self, digest: &Digest) -> Result<bool> {
        Ok(self.blob_path(digest)?.is_file())
    }

    /// Starts a streaming blob write; [`BlobWriter::commit`] moves it into
    /// place under its digest.
    ///
    /// # Errors
    /// [`Error::WriteBlob`] if the temporary file cannot be created.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let tmpdir = self.root.join(".tmp");
        fs::create_dir_all(&tmpdir).map_err(|source| Error::WriteBlob {
            path: tmpdir.clone(),
            source,
        })?;
        let tmp = tmpdir.join(format!("blob-{}", unique_suffix()));
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|source| Error::WriteBlob {
                path: tmp.clone(),
                source,
            })?;
        Ok(BlobWriter {
            blobs: self.root.join("blobs/sha256"),
            tmp: Some(tmp),
            out: HashingWriter::new(io::BufWriter::with_capacity(256 << 10, file)),
        })
    }

    /// Writes a whole blob; returns its digest and size.
    ///
    /// # Errors
    /// [`Error::WriteBlob`].
    pub fn write_blob(&self, data: &[u8]) -> Result<(Digest, u64)> {
        let mut w = self.blob_writer()?;
        w.write_all(data).map_err(|source| Error::WriteBlob {
            path: w.tmp.clone().unwrap_or_default(),
            source,
        })?;
        w.commit()
    }

    /// Serialises `value` as JSON and stores it; returns its descriptor.
    ///
    /// # Errors
    /// [`Error::Json`], [`Error::WriteBlob`].
    pub fn write_json_blob<T: Serialize>(
        &self,
        media_type: MediaType,
        value: &T,
    ) -> Result<Descriptor> {
        let data = serde_json::to_vec(value).map_err(|source| Error::Json {
            what: media_type.to_string(),
            source,
        })?;
        let (digest, size) = self.write_blob(&data)?;
        Ok(Descriptor::new(media_type, size, digest))
    }

    /// Opens a blob for reading; the reader verifies size and digest when it
    /// reaches the end (call [`BlobReader::finish`] to get a typed error).
    ///
    /// # Errors
    /// [`Error::BlobNotFound`], [`Error::ReadBlob`], [`Error::SizeMismatch`]
    /// (if the file size already disagrees with `size`).
    pub fn open_blob(&self, digest: &Digest, size: Option<u64>) -> Result<BlobReader> {
        let path = self.blob_path(digest)?;
        let file = File::open(&path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                Error::BlobNotFound {
                    digest: digest.to_string(),
                }
            } else {
                Error::ReadBlob {
                    digest: digest.to_string(),
                    source,
                }
            }
        })?;
        let len = file
            .metadata()
            .map_err(|source| Error::ReadBlob {
                digest: digest.to_string(),
                source,
            })?
            .len();
        if let Some(expected) = size {
            if expected != len {
                return Err(Error::SizeMismatch {
                    digest: digest.to_string(),
                    expected,
                    actual: len,
                });
            }
        }
        Ok(BlobReader {
            digest: digest.clone(),
            expected: size.unwrap_or(len),
            inner: crate::digest::HashingReader::new(io::BufReader::with_capacity(256 << 10, file)),
            verdict: None,
        })
    }

    /// Reads a whole blob into memory (at most [`MAX_JSON_SIZE`] bytes),
    /// verified.
    ///
    /// # Errors
    /// [`Error::BlobTooLarge`], and those of [`ImageLayout::open_blob`].
    pub fn read_blob(&self, digest: &Digest, size: Option<u64>) -> Result<Vec<u8>> {
        let mut r = self.open_blob(digest, size)?;
        if r.expected > MAX_JSON_SIZE {
            return Err(Error::BlobTooLarge {
                digest: digest.to_string(),
                size: r.expected,
                limit: MAX_JSON_SIZE,
            });
        }
        let mut buf = Vec::with_capacity(usize::try_from(r.expected).unwrap_or(0));
        let res = r.read_to_end(&mut buf);
        r.finish()?;
        res.map_err(|source| Error::ReadBlob {
            digest: digest.to_string(),
            source,
        })?;
        Ok(buf)
    }

    /// Reads and parses a JSON blob.
    ///
    /// # Errors
    /// Those of [`ImageLayout::read_blob`] and [`Error::Json`].
    pub fn read_json<T: serde::de::DeserializeOwned>(&self, desc: &Descriptor) -> Result<T> {
        let data = self.read_blob(desc.digest(), Some(desc.size()))?;
        serde_json::from_slice(&data).map_err(|source| Error::Json {
            what: desc.digest().to_string(),
            source,
        })
    }

    /// Reads `index.json`.
    ///
    /// # Errors
    /// [`Error::ReadLayout`], [`Error::Json`].
    pub fn index(&self) -> Result<ImageIndex> {
        let path = self.root.join("index.json");
        let data = read_limited(&path)?;
        serde_json::from_slice(&data).map_err(|source| Error::Json {
            what: path.display().to_string(),
            source,
        })
    }

    /// Replaces `index.json` atomically.
    ///
    /// # Errors
    /// [`Error::Json`], [`Error::CreateLayout`].
    pub fn write_index(&self, index: &ImageIndex) -> Result<()> {
        let path = self.root.join("index.json");
        let data = serde_json::to_vec_pretty(index).map_err(|source| Error::Json {
            what: path.display().to_string(),
            source,
        })?;
        write_atomic(&path, &data).map_err(|source| Error::CreateLayout { path, source })
    }

    /// Resolves a reference name (the `org.opencontainers.image.ref.name`
    /// annotation in `index.json`, or the digest of a top-level entry) to a
    /// manifest, following nested indexes and picking `platform`; reads the
    /// manifest and config.
    ///
    /// # Errors
    /// [`Error::RefNotFound`], [`Error::NoMatchingPlatform`],
    /// [`Error::IndexTooDeep`], [`Error::UnsupportedMediaType`] and blob
    /// errors.
    pub fn resolve(&self, name: &str, platform: &PlatformSpec) -> Result<ResolvedImage> {
        let index = self.index()?;
        let mut candidates: Vec<&Descriptor> = index
            .manifests()
            .iter()
            .filter(|d| ref_name(d) == Some(name))
            .collect();
        if candidates.is_empty() {
            // A digest names an untagged (or any) top-level entry.
            if let Ok(digest) = parse_digest(name) {
                candidates = index
                    .manifests()
                    .iter()
                    .filter(|d| *d.digest() == digest)
                    .collect();
            }
        }
        if candidates.is_empty() {
            return Err(Error::RefNotFound { name: name.into() });
        }
        for d in candidates {
            if let Some(found) = self.pick(name, d, platform, 0)? {
                return self.load_image(found);
            }
        }
        Err(Error::NoMatchingPlatform {
            name: name.into(),
            platform: platform.to_string(),
        })
    }

    /// Reads the manifest and config a manifest descriptor points at.
    ///
    /// # Errors
    /// Blob and JSON errors.
    pub fn load_image(&self, descriptor: Descriptor) -> Result<ResolvedImage> {
        let manifest: ImageManifest = self.read_json(&descriptor)?;
        let config: ImageConfiguration = self.read_json(manifest.config())?;
        Ok(ResolvedImage {
            descriptor,
            manifest,
            config,
        })
    }

    fn pick(
        &self,
        name: &str,
        d: &Descriptor,
        platform: &PlatformSpec,
        depth: usize,
    ) -> Result<Option<Descriptor>> {
        if depth > MAX_INDEX_DEPTH {
            return Err(Error::IndexTooDeep {
                name: name.into(),
                limit: MAX_INDEX_DEPTH,
            });
        }
        if let Some(p) = d.platform() {
            if !platform.matches(p) {
                return Ok(None);
            }
        }
        if is_manifest(d.media_type()) {
            return Ok(Some(d.clone()));
        }
        if is_index(d.media_type()) {
            let nested: ImageIndex = self.read_json(d)?;
            for m in nested.manifests() {
                if let Some(found) = self.pick(name, m, platform, depth + 1)? {
                    return Ok(Some(found));
                }
            }
            return Ok(None);
        }
        Err(Error::UnsupportedMediaType {
            media_type: d.media_type().to_string(),
            digest: d.digest().to_string(),
        })
    }

    /// The reference names in `index.json`, sorted.
    ///
    /// # Errors
    /// Those of [`ImageLayout::index`].
    pub fn tags(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .index()?
            .manifests()
            .iter()
            .filter_map(|d| ref_name(d).map(str::to_owned))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Points `name` at `descriptor` (a manifest or index already in the
    /// store), replacing any earlier descriptor with that name.
    ///
    /// # Errors
    /// [`Error::InvalidRefName`], [`Error::BlobNotFound`], index errors.
    pub fn tag(&self, name: &str, descriptor: &Descriptor) -> Result<()> {
        let _lock = self.lock()?;
        self.tag_locked(name, descriptor)
    }

    /// [`ImageLayout::tag`] for a caller already holding [`ImageLayout::lock`].
    pub(crate) fn tag_locked(&self, name: &str, descriptor: &Descriptor) -> Result<()> {
        check_ref_name(name)?;
        if !self.has_blob(descriptor.digest())? {
            return Err(Error::BlobNotFound {
                digest: descriptor.digest().to_string(),
            });
        }
        let mut index = self.index()?;
        let mut d = descriptor.clone();
        let mut ann = d.annotations().clone().unwrap_or_default();
        ann.insert(REF_NAME_ANNOTATION.into(), name.into());
        d.set_annotations(Some(ann));
        let mut manifests: Vec<Descriptor> = index
            .manifests()
            .iter()
            .filter(|m| ref_name(m) != Some(name))
            .cloned()
            .collect();
        manifests.push(d);
        index.set_manifests(manifests);
        self.write_index(&index)
    }

    /// Removes the name from the index; returns whether it was there. The
    /// blobs stay until [`ImageLayout::gc`].
    ///
    /// # Errors
    /// Index errors.
    pub fn untag(&self, name: &str) -> Result<bool> {
        let _lock = self.lock()?;
        let mut index = self.index()?;
        let before = index.manifests().len();
        let manifests: Vec<Descriptor> = index
            .manifests()
            .iter()
            .filter(|m| ref_name(m) != Some(name))
            .cloned()
            .collect();
        let removed = manifests.len() != before;
        if removed {
            index.set_manifests(manifests);
            self.write_index(&index)?;
        }
        Ok(removed)
    }

    /// The digests reachable from `index.json` (indexes, manifests, configs,
    /// layers).
    ///
    /// # Errors
    /// Blob and JSON errors for reachable metadata.
    pub fn reachable(&self) -> Result<HashSet<String>> {
        let mut seen = HashSet::new();
        let mut stack: Vec<Descriptor> = self.index()?.manifests().clone();
        while let Some(d) = stack.pop() {
            if !seen.insert(d.digest().to_string()) {
                continue;
            }
            if !self.has_blob(d.digest())? {
                continue;
            }
            if is_index(d.media_type()) {
                let nested: ImageIndex = self.read_json(&d)?;
                stack.extend(nested.manifests().iter().cloned());
            } else if is_manifest(d.media_type()) {
                let m: ImageManifest = self.read_json(&d)?;
                stack.push(m.config().clone());
                stack.extend(m.layers().iter().cloned());
            }
        }
        Ok(seen)
    }

    /// Removes every blob nothing in `index.json` refers to, and stale
    /// temporary files.
    ///
    /// # Errors
    /// Those of [`ImageLayout::reachable`], [`Error::Walk`].
    pub fn gc(&self) -> Result<GcStats> {
        let _lock = self.lock()?;
        let keep = self.reachable()?;
        let dir = self.root.join("blobs/sha256");
        let mut stats = GcStats::default();
        let walk_err = |source| Error::Walk {
            path: dir.clone(),
            source,
        };
        for ent in fs::read_dir(&dir).map_err(walk_err)? {
            let ent = ent.map_err(walk_err)?;
            let name = ent.file_name().to_string_lossy().into_owned();
            if keep.contains(&format!("sha256:{name}")) {
                stats.kept += 1;
                continue;
            }
            let len = ent.metadata().map(|m| m.len()).unwrap_or(0);
            fs::remove_file(ent.path()).map_err(|source| Error::Walk {
                path: ent.path(),
                source,
            })?;
            stats.removed += 1;
            stats.bytes += len;
        }
        // Temporary files of writers that died long ago.
        let tmp = self.root.join(".tmp");
        if let Ok(rd) = fs::read_dir(&tmp) {
            let day = std::time::Duration::from_secs(24 * 3600);
            for ent in rd.flatten() {
                let old = ent
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > day);
                if old && ent.file_name() != "lock" {
                    let _ = fs::remove_file(ent.path());
                }
            }
        }
        Ok(stats)
    }

    /// Takes the layout's exclusive lock (`flock(2)` on `.tmp/lock`), held
    /// until the guard is dropped. [`ImageLayout::tag`], `untag`, `gc`,
    /// `commit` and the docker import take it themselves; hold it across
    /// writing blobs and tagging them when a `gc` may run concurrently, so
    /// the new blobs are not collected before they are referenced.
    ///
    /// # Errors
    /// [`Error::CreateLayout`] if the lock file cannot be opened or locked.
    pub fn lock(&self) -> Result<LayoutLock> {
        let tmp = self.root.join(".tmp");
        let path = tmp.join("lock");
        let err = |source| Error::CreateLayout {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(&tmp).map_err(err)?;
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(err)?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| err(e.into()))?;
        Ok(LayoutLock(f))
    }
}

/// The layout's exclusive lock; released on drop.
#[derive(Debug)]
pub struct LayoutLock(#[allow(dead_code)] File);

/// The `org.opencontainers.image.ref.name` annotation of a descriptor.
pub fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations()
        .as_ref()
        .and_then(|a| a.get(REF_NAME_ANNOTATION))
        .map(String::as_str)
}

fn check_ref_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:@/+".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidRefName { name: name.into() })
    }
}

pub(crate) fn is_manifest(m: &MediaType) -> bool {
    matches!(m, MediaType::ImageManifest)
        || matches!(m, MediaType::Other(s) if s == DOCKER_MANIFEST)
}

pub(crate) fn is_index(m: &MediaType) -> bool {
    matches!(m, MediaType::ImageIndex)
        || matches!(m, MediaType::Other(s) if s == DOCKER_MANIFEST_LIST)
}

pub(crate) fn empty_index() -> ImageIndex {
    ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(Vec::<Descriptor>::new())
        .build()
        .unwrap_or_default()
}

fn read_limited(path: &Path) -> Result<Vec<u8>> {
    let err = |source| Error::ReadLayout {
        path: path.to_path_buf(),
        source,
    };
    let f = File::open(path).map_err(err)?;
    let mut buf = Vec::new();
    f.take(MAX_JSON_SIZE + 1)
        .read_to_end(&mut buf)
        .map_err(err)?;
    if buf.len() as u64 > MAX_JSON_SIZE {
        return Err(Error::InvalidLayout {
            path: path.to_path_buf(),
            reason: "file larger than the metadata size limit",
        });
    }
    Ok(buf)
}

/// A blob being written: hashes as it goes, moved into place by
/// [`BlobWriter::commit`]; dropped uncommitted, it removes its temporary file.
#[derive(Debug)]
pub struct BlobWriter {
    blobs: PathBuf,
    tmp: Option<PathBuf>,
    out: HashingWriter<io::BufWriter<File>>,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.out.count
    }

    /// Flushes, syncs and renames the blob to `blobs/sha256/<digest>`;
    /// returns its digest and size.
    ///
    /// # Errors
    /// [`Error::WriteBlob`].
    pub fn commit(mut self) -> Result<(Digest, u64)> {
        let tmp = self.tmp.take().unwrap_or_default();
        let err = |source| Error::WriteBlob {
            path: tmp.clone(),
            source,
        };
        let res = (|| {
            self.out.flush().map_err(err)?;
            self.out.inner.get_ref().sync_data().map_err(err)?;
            let digest = std::mem::take(&mut self.out.hasher).digest();
            let dest = self.blobs.join(&digest.as_ref()[7..]);
            fs::rename(&tmp, &dest).map_err(|source| Error::WriteBlob { path: dest, source })?;
            Ok((digest, self.out.count))
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// A blob being read; verifies size and digest at the end of the stream.
#[derive(Debug)]
pub struct BlobReader {
    digest: Digest,
    expected: u64,
    inner: crate::digest::HashingReader<io::BufReader<File>>,
    verdict: Option<Result<(), (u64, String)>>,
}

impl BlobReader {
    /// The expected size.
    pub fn size(&self) -> u64 {
        self.expected
    }

    /// Bytes read so far.
    pub fn position(&self) -> u64 {
        self.inner.count
    }

    /// Reads whatever is left and checks size and digest.
    ///
    /// # Errors
    /// [`Error::SizeMismatch`], [`Error::DigestMismatch`], [`Error::ReadBlob`].
    pub fn finish(mut self) -> Result<()> {
        let copied = io::copy(&mut self, &mut io::sink());
        if let Some(Err((actual_size, actual_digest))) = self.verdict.take() {
            return Err(if actual_size != self.expected {
                Error::SizeMismatch {
                    digest: self.digest.to_string(),
                    expected: self.expected,
                    actual: actual_size,
                }
            } else {
                Error::DigestMismatch {
                    digest: self.digest.to_string(),
                    actual: actual_digest,
                }
            });
        }
        copied.map_err(|source| Error::ReadBlob {
            digest: self.digest.to_string(),
            source,
        })?;
        Ok(())
    }

    fn verify(&mut self) -> io::Result<()> {
        if self.verdict.is_none() {
            let digest = self.inner.hasher.clone().digest();
            let ok = self.inner.count == self.expected && digest == self.digest;
            self.verdict = Some(if ok {
                Ok(())
            } else {
                Err((self.inner.count, digest.to_string()))
            });
        }
        match &self.verdict {
            Some(Err(_)) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("blob {} failed verification", self.digest),
            )),
            _ => Ok(()),
        }
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if matches!(self.verdict, Some(Err(_))) {
            return self.verify().map(|()| 0);
        }
        // Never read past the expected size: a grown file is corrupt.
        let left = self.expected.saturating_sub(self.inner.count);
        if left == 0 {
            // Probe for trailing bytes, which make the count exceed the size.
            let mut probe = [0u8; 1];
            self.inner.read(&mut probe)?;
            self.verify()?;
            return Ok(0);
        }
        let max = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 && !buf.is_empty() {
            self.verify()?;
        }
        Ok(n)
    }
}
