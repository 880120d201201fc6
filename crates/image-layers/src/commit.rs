//! Committing a diff as a new image in a layout.

use std::io::Write;

use oci_spec::image::{
    Descriptor, DescriptorBuilder, Digest, HistoryBuilder, ImageConfiguration,
    ImageManifestBuilder, MediaType, PlatformBuilder,
};

use crate::diff::{DiffOptions, DiffSource, DiffStats, write_diff};
use crate::error::{Error, Result};
use crate::layout::{ImageLayout, PlatformSpec};

/// Options of [`ImageLayout::commit`].
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// How the layer is made.
    pub diff: DiffOptions,
    /// The platform of the base image to pick, and of a new image without a
    /// base.
    pub platform: PlatformSpec,
    /// `created` of the config and history entry (RFC 3339); none if unset.
    pub created: Option<String>,
    /// `author` of the config and history entry.
    pub author: Option<String>,
    /// `created_by` of the history entry.
    pub created_by: Option<String>,
    /// `comment` of the history entry.
    pub comment: Option<String>,
}

/// A layer written into a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenLayer {
    /// Its descriptor (compressed digest and size, media type).
    pub descriptor: Descriptor,
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// Entries in the tar.
    pub entries: u64,
}

fn spec_err(source: oci_spec::OciSpecError) -> Error {
    Error::BuildDocument { source }
}

impl ImageLayout {
    /// Writes the diff of `source` as a layer blob.
    ///
    /// # Errors
    /// Those of [`write_diff`] and [`ImageLayout::blob_writer`].
    pub fn write_layer(&self, source: &DiffSource<'_>, opts: &DiffOptions) -> Result<WrittenLayer> {
        let w = self.blob_writer()?;
        let (stats, w): (DiffStats, _) = write_diff(source, w, opts)?;
        let (digest, size) = w.commit()?;
        Ok(WrittenLayer {
            descriptor: Descriptor::new(opts.compression.media_type(), size, digest),
            diff_id: stats.diff_id,
            entries: stats.entries,
        })
    }

    /// Diffs `source` into a new layer on top of the image `base` (or of
    /// nothing), writes the layer, a config with the new diff_id and a
    /// history entry, and a manifest, and tags it `tag`. Returns the
    /// manifest descriptor.
    ///
    /// # Errors
    /// Those of [`ImageLayout::resolve`], [`ImageLayout::write_layer`] and
    /// [`ImageLayout::tag`].
    ///
    /// ```no_run
    /// use hull_image_layers::{CommitOptions, ImageLayout, diff::DiffSource};
    /// let layout = ImageLayout::open("/var/lib/images/app")?;
    /// let upper = std::path::Path::new("/run/ctr/upper");
    /// layout.commit(Some("base"), &DiffSource::OverlayUpper(upper), "app:v2", &CommitOptions::default())?;
    /// # Ok::<(), hull_image_layers::Error>(())
    /// ```
    pub fn commit(
        &self,
        base: Option<&str>,
        source: &DiffSource<'_>,
        tag: &str,
        opts: &CommitOptions,
    ) -> Result<Descriptor> {
        let lock = self.lock()?;
        let base = base.map(|b| self.resolve(b, &opts.platform)).transpose()?;
        let layer = self.write_layer(source, &opts.diff)?;
        let mut config: ImageConfiguration = match &base {
            Some(b) => b.config.clone(),
            None => opts.platform.empty_config()?,
        };
        config
            .rootfs_mut()
            .diff_ids_mut()
            .push(layer.diff_id.to_string());
        let mut h = HistoryBuilder::default();
        if let Some(c) = &opts.created {
            h = h.created(c.clone());
            config.set_created(Some(c.clone()));
        }
        if let Some(a) = &opts.author {
            h = h.author(a.clone());
            config.set_author(Some(a.clone()));
        }
        if let Some(c) = &opts.created_by {
            h = h.created_by(c.clone());
        }
        if let Some(c) = &opts.comment {
            h = h.comment(c.clone());
        }
        let history = h.build().map_err(spec_err)?;
        config
            .history_mut()
            .get_or_insert_with(Vec::new)
            .push(history);
        let mut layers = base
            .as_ref()
            .map(|b| b.manifest.layers().clone())
            .unwrap_or_default();
        layers.push(layer.descriptor.clone());
        let desc = self.write_image(&config, layers)?;
        self.tag_locked(tag, &desc)?;
        drop(lock);
        Ok(desc)
    }

    /// Writes `config` and a manifest listing `layers` (bottom first, their
    /// blobs already in the layout) as blobs, without tagging them; returns
    /// the manifest descriptor, which [`ImageLayout::load_image`] reads and
    /// [`ImageLayout::tag`] names. Untagged, both go at the next
    /// [`ImageLayout::gc`].
    ///
    /// # Errors
    /// [`Error::BuildDocument`], [`Error::Json`] and blob write errors.
    pub fn write_image(
        &self,
        config: &ImageConfiguration,
        layers: Vec<Descriptor>,
    ) -> Result<Descriptor> {
        let config_desc = self.write_json_blob(MediaType::ImageConfig, config)?;
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(config_desc)
            .layers(layers)
            .build()
            .map_err(spec_err)?;
        let data = serde_json::to_vec(&manifest).map_err(|source| Error::Json {
            what: "image manifest".to_string(),
            source,
        })?;
        let mut w = self.blob_writer()?;
        w.write_all(&data).map_err(|source| Error::WriteBlob {
            path: self.path().join(".tmp"),
            source,
        })?;
        let (digest, size) = w.commit()?;
        let platform = PlatformBuilder::default()
            .os(config.os().clone())
            .architecture(config.architecture().clone())
            .build()
            .map_err(spec_err)?;
        DescriptorBuilder::default()
            .media_type(MediaType::ImageManifest)
            .digest(digest)
            .size(size)
            .platform(platform)
            .build()
            .map_err(spec_err)
    }
}
