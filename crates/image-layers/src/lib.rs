//! # hull-image-layers
//!
//! OCI image layouts and layer tarballs, for building container root
//! filesystems:
//!
//! - [`ImageLayout`]: the `oci-layout` file, `index.json` and a
//!   content-addressed blob store (streaming writes that compute the digest,
//!   atomic renames, size and digest verified on every read). References
//!   resolve through nested indexes to a manifest for a [`PlatformSpec`];
//!   tags, untag and garbage collection.
//! - [`apply_layer`]: applies a tar layer (plain, gzip or zstd) onto a
//!   directory, confined to it: every write is anchored at a directory fd and
//!   resolved with `openat2(RESOLVE_IN_ROOT)` (or an equivalent user-space
//!   walk, see [`Resolver`]), so hostile paths, symlinks and hardlinks cannot
//!   reach outside. Whiteouts and opaque directories follow
//!   the image spec; the diff_id is checked.
//! - [`diff`]: turns an overlay upper directory or the difference of two
//!   trees into a deterministic layer, and [`ImageLayout::commit`] writes it
//!   as a new image.
//! - [`snapshot::Snapshotter`]: containerd-style snapshots, each layer
//!   extracted once into a directory keyed by its chain ID, ready to stack as
//!   overlay lower directories.
//! - [`import_docker_archive`]: imports a `docker save` archive.
//!
//! Build a one-layer image from a directory, then unpack it elsewhere:
//!
//! ```
//! use hull_image_layers::diff::DiffSource;
//! use hull_image_layers::{ApplyOptions, CommitOptions, ImageLayout, PlatformSpec};
//!
//! let work = std::env::temp_dir().join(format!("hull-image-doc-{}", std::process::id()));
//! let (empty, tree) = (work.join("empty"), work.join("tree"));
//! std::fs::create_dir_all(&empty)?;
//! std::fs::create_dir_all(tree.join("etc"))?;
//! std::fs::write(tree.join("etc/hostname"), "box\n")?;
//!
//! let layout = ImageLayout::create(work.join("layout"))?;
//! layout.commit(None, &DiffSource::Trees { lower: &empty, upper: &tree }, "demo:1",
//!               &CommitOptions::default())?;
//! assert_eq!(layout.tags()?, vec!["demo:1"]);
//!
//! let rootfs = work.join("rootfs");
//! layout.unpack("demo:1", &PlatformSpec::default(), &rootfs, &ApplyOptions::default(),
//!               &mut |_progress| {})?;
//! assert_eq!(std::fs::read_to_string(rootfs.join("etc/hostname"))?, "box\n");
//! std::fs::remove_dir_all(&work)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(unsafe_code)]

mod commit;
pub mod diff;
mod digest;
mod docker;
mod error;
mod image;
mod layout;
pub mod snapshot;
mod unpack;

pub use commit::{CommitOptions, WrittenLayer};
pub use digest::{parse_digest, sha256_digest};
pub use docker::{ImportedImage, import_docker_archive};
pub use error::{Error, Result};
pub use image::UnpackProgress;
pub use layout::{
    BlobReader, BlobWriter, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, GcStats, ImageLayout,
    LayoutLock, MAX_JSON_SIZE, PlatformSpec, REF_NAME_ANNOTATION, ResolvedImage, ref_name,
};
pub use unpack::{
    ApplyOptions, ApplyStats, Compression, DOCKER_FOREIGN_LAYER_GZIP, DOCKER_LAYER_GZIP,
    DOCKER_LAYER_TAR, DOCKER_LAYER_ZSTD, DevicePolicy, INCOMPLETE_MARKER, Ownership, Resolver,
    WhiteoutMode, XattrPolicy, apply_layer, apply_layer_at, is_incomplete,
};

/// Re-export of the OCI image types this crate's API uses.
pub use oci_spec::image as oci;
