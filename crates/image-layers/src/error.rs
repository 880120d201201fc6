//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

/// Everything that can fail in this crate: one variant per failing operation,
/// each naming the object at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Creating a directory or file of an image layout failed.
    #[error("create image layout file {path}")]
    CreateLayout {
        /// The file or directory that could not be created.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Opening or reading a file of an image layout failed.
    #[error("read image layout file {path}")]
    ReadLayout {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The directory is not an OCI image layout this crate can read.
    #[error("{path} is not a supported OCI image layout: {reason}")]
    InvalidLayout {
        /// The layout directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A JSON document (index, manifest, config, oci-layout) is malformed.
    #[error("parse JSON document {what}")]
    Json {
        /// Which document (a path or a digest).
        what: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A digest string is not a well-formed lowercase sha256 digest.
    #[error("invalid digest {digest:?}: expected sha256:<64 lowercase hex digits>")]
    InvalidDigest {
        /// The rejected text.
        digest: String,
    },
    /// Writing a blob into the store failed.
    #[error("write blob into {path}")]
    WriteBlob {
        /// The temporary or final path of the blob.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A blob is not in the store.
    #[error("blob {digest} not found in the image layout")]
    BlobNotFound {
        /// The digest looked up.
        digest: String,
    },
    /// Reading a blob failed.
    #[error("read blob {digest}")]
    ReadBlob {
        /// The digest of the blob.
        digest: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A blob's content does not hash to its digest.
    #[error("blob {digest} is corrupt: its content hashes to {actual}")]
    DigestMismatch {
        /// The expected digest.
        digest: String,
        /// The digest of what was read.
        actual: String,
    },
    /// A blob's size differs from its descriptor.
    #[error("blob {digest} has {actual} bytes, its descriptor says {expected}")]
    SizeMismatch {
        /// The digest of the blob.
        digest: String,
        /// The size from the descriptor.
        expected: u64,
        /// The size found (at least this many bytes).
        actual: u64,
    },
    /// A JSON blob is larger than this crate accepts for metadata.
    #[error("metadata blob {digest} is {size} bytes, more than the limit of {limit}")]
    BlobTooLarge {
        /// The digest of the blob.
        digest: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// No descriptor in the index carries this reference name.
    #[error("no image named {name:?} in the layout")]
    RefNotFound {
        /// The reference name.
        name: String,
    },
    /// The reference exists, but no manifest matches the wanted platform.
    #[error("image {name:?} has no manifest for platform {platform}")]
    NoMatchingPlatform {
        /// The reference name.
        name: String,
        /// The wanted platform (os/arch[/variant]).
        platform: String,
    },
    /// Nested indexes go deeper than this crate follows.
    #[error("image {name:?}: nested indexes deeper than {limit} levels")]
    IndexTooDeep {
        /// The reference name.
        name: String,
        /// The depth limit.
        limit: usize,
    },
    /// A descriptor has a media type this operation cannot handle.
    #[error("unsupported media type {media_type:?} for {digest}")]
    UnsupportedMediaType {
        /// The media type.
        media_type: String,
        /// The digest of the blob it describes.
        digest: String,
    },
    /// A reference name is not acceptable.
    #[error("invalid reference name {name:?}")]
    InvalidRefName {
        /// The rejected name.
        name: String,
    },
    /// A manifest's layers and its config's diff_ids disagree in number.
    #[error("manifest {digest} lists {layers} layers but its config has {diff_ids} diff_ids")]
    LayerCountMismatch {
        /// The manifest digest.
        digest: String,
        /// Number of layers.
        layers: usize,
        /// Number of diff_ids.
        diff_ids: usize,
    },
    /// The uncompressed content of a layer does not hash to its diff_id.
    #[error("layer {layer}: uncompressed content hashes to {actual}, config says {expected}")]
    DiffIdMismatch {
        /// The layer's (compressed) digest, or a description of the stream.
        layer: String,
        /// The diff_id from the config.
        expected: String,
        /// The digest of the uncompressed stream.
        actual: String,
    },
    /// Opening the directory to unpack into failed.
    #[error("open unpack root {path}")]
    OpenRoot {
        /// The root directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The layer stream is not a valid tar archive (bad header checksum,
    /// truncation, bad compression, unreadable extension headers).
    #[error("read layer tar stream (after entry {after:?})")]
    ReadTar {
        /// The last entry read successfully, if any.
        after: Option<String>,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A tar entry ended before its header's size.
    #[error("tar entry {path:?} is truncated: {got} of {size} bytes")]
    TruncatedEntry {
        /// The entry path.
        path: String,
        /// The size from the header.
        size: u64,
        /// The bytes present.
        got: u64,
    },
    /// An entry path or link target is not acceptable.
    #[error("tar entry {path:?}: {reason}")]
    InvalidEntryPath {
        /// The entry path (lossily decoded).
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An entry is larger than the configured limit.
    #[error("tar entry {path:?} has {size} bytes, more than the limit of {limit}")]
    EntryTooLarge {
        /// The entry path.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The uncompressed layer is larger than the configured limit.
    #[error("layer is larger than the limit of {limit} uncompressed bytes")]
    LayerTooLarge {
        /// The limit.
        limit: u64,
    },
    /// A header field (mode, uid, gid, mtime, device numbers) is unreadable
    /// or out of range.
    #[error("tar entry {path:?}: bad header field {field}")]
    InvalidHeader {
        /// The entry path.
        path: String,
        /// The field.
        field: &'static str,
    },
    /// An entry type this crate does not unpack.
    #[error("tar entry {path:?}: unsupported entry type {kind:?}")]
    UnsupportedEntryType {
        /// The entry path.
        path: String,
        /// The raw type byte.
        kind: u8,
    },
    /// A device node was found and the device policy rejects it.
    #[error("tar entry {path:?} is a device node, which the device policy rejects")]
    DeviceRejected {
        /// The entry path.
        path: String,
    },
    /// A filesystem operation of the unpacker failed.
    #[error("unpack {path:?}: {op}")]
    Unpack {
        /// The entry path inside the root.
        path: String,
        /// The operation (`mkdirat`, `openat2`, `linkat`, ...).
        op: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Walking a directory tree (for a diff or a copy) failed.
    #[error("walk directory tree at {path}")]
    Walk {
        /// The path being read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Writing a layer tar stream failed.
    #[error("write layer entry {path:?}")]
    WriteTar {
        /// The entry being written.
        path: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A snapshot operation failed on the filesystem.
    #[error("snapshot {key:?}: {op} {path}")]
    Snapshot {
        /// The snapshot key or chain ID.
        key: String,
        /// The operation.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// No snapshot with this key exists.
    #[error("snapshot {key:?} does not exist")]
    SnapshotNotFound {
        /// The key.
        key: String,
    },
    /// A snapshot with this key already exists.
    #[error("snapshot {key:?} already exists")]
    SnapshotExists {
        /// The key.
        key: String,
    },
    /// A snapshot is still the parent of another snapshot.
    #[error("snapshot {key:?} is the parent of {child:?}")]
    SnapshotInUse {
        /// The key.
        key: String,
        /// A child that depends on it.
        child: String,
    },
    /// A snapshot key is not a safe single path component.
    #[error("invalid snapshot key {key:?}")]
    InvalidSnapshotKey {
        /// The rejected key.
        key: String,
    },
    /// Building an OCI document (config, manifest, descriptor) failed.
    #[error("build OCI document")]
    BuildDocument {
        /// The builder's error.
        #[source]
        source: oci_spec::OciSpecError,
    },
    /// A `docker save` archive is malformed.
    #[error("docker archive: {reason} ({name:?})")]
    DockerArchive {
        /// The member of the archive at fault.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
