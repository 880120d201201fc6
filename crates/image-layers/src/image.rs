//! Unpacking whole images from a layout.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, Digest};

use crate::error::{Error, Result};
use crate::layout::{ImageLayout, PlatformSpec, unique_suffix};
use crate::unpack::{ApplyOptions, ApplyStats, Compression, apply_layer};

/// Progress of an image unpack, reported as layers are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackProgress {
    /// Index of the layer being applied (0 = bottom).
    pub layer: usize,
    /// Number of layers.
    pub layers: usize,
    /// Compressed bytes read so far, over all layers.
    pub bytes: u64,
    /// Compressed size of all layers.
    pub total: u64,
}

struct Progress<'a, R> {
    inner: R,
    state: UnpackProgress,
    last: u64,
    report: &'a mut (dyn FnMut(UnpackProgress) + Send),
}

impl<R: Read> Read for Progress<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.state.bytes += n as u64;
        if self.state.bytes - self.last >= 1 << 20 || n == 0 {
            self.last = self.state.bytes;
            (self.report)(self.state);
        }
        Ok(n)
    }
}

impl ImageLayout {
    /// Applies one layer blob of this layout onto `root`, checking the blob's
    /// digest and size and the uncompressed stream's `diff_id`.
    ///
    /// # Errors
    /// [`Error::UnsupportedMediaType`] for a descriptor that is not a layer,
    /// blob errors, and those of [`apply_layer`].
    pub fn apply_layer_blob(
        &self,
        layer: &Descriptor,
        diff_id: &Digest,
        root: &Path,
        opts: &ApplyOptions,
    ) -> Result<ApplyStats> {
        self.apply_layer_blob_with(layer, diff_id, root, opts, &mut |_| {}, 0, 1, 0, 0)
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_layer_blob_with(
        &self,
        layer: &Descriptor,
        diff_id: &Digest,
        root: &Path,
        opts: &ApplyOptions,
        report: &mut (dyn FnMut(UnpackProgress) + Send),
        index: usize,
        layers: usize,
        done: u64,
        total: u64,
    ) -> Result<ApplyStats> {
        let compression = Compression::from_media_type(layer.media_type()).ok_or_else(|| {
            Error::UnsupportedMediaType {
                media_type: layer.media_type().to_string(),
                digest: layer.digest().to_string(),
            }
        })?;
        let mut blob = self.open_blob(layer.digest(), Some(layer.size()))?;
        let mut opts = opts.clone();
        opts.expected_diff_id = Some(diff_id.clone());
        let res = apply_layer(
            root,
            Progress {
                inner: &mut blob,
                state: UnpackProgress {
                    layer: index,
                    layers,
                    bytes: done,
                    total,
                },
                last: done,
                report,
            },
            compression,
            &opts,
        );
        // A corrupt blob is the cause of any later failure: report it first.
        let verified = blob.finish();
        let stats = match (res, verified) {
            (_, Err(e)) => return Err(e),
            (
                Err(Error::DiffIdMismatch {
                    expected, actual, ..
                }),
                Ok(()),
            ) => {
                return Err(Error::DiffIdMismatch {
                    layer: layer.digest().to_string(),
                    expected,
                    actual,
                });
            }
            (Err(e), Ok(())) => return Err(e),
            (Ok(s), Ok(())) => s,
        };
        Ok(stats)
    }

    /// Unpacks the image `name` (for `platform`) into `target`, which must
    /// not exist or be an empty directory. Layers are applied in a staging
    /// directory beside `target` that is renamed into place only when every
    /// layer applied and verified, so a failure leaves `target` untouched
    /// (and the staging directory removed). `report` is called about every
    /// MiB of compressed input, from the thread that reads and decompresses
    /// the layers.
    ///
    /// # Errors
    /// Those of [`ImageLayout::resolve`] and [`ImageLayout::apply_layer_blob`],
    /// and [`Error::Unpack`] for the staging directory.
    pub fn unpack(
        &self,
        name: &str,
        platform: &PlatformSpec,
        target: &Path,
        opts: &ApplyOptions,
        report: &mut (dyn FnMut(UnpackProgress) + Send),
    ) -> Result<()> {
        if let Ok(mut rd) = fs::read_dir(target) {
            if rd.next().is_some() {
                return Err(Error::Unpack {
                    path: target.display().to_string(),
                    op: "check target is empty",
                    source: io::Error::from_raw_os_error(libc::ENOTEMPTY),
                });
            }
        } else if target.symlink_metadata().is_ok() {
            return Err(Error::Unpack {
                path: target.display().to_string(),
                op: "check target is a directory",
                source: io::Error::from_raw_os_error(libc::ENOTDIR),
            });
        }
        let image = self.resolve(name, platform)?;
        let layers = image.layers()?;
        let staging = staging_path(target);
        let err = |op, path: &Path, source| Error::Unpack {
            path: path.display().to_string(),
            op,
            source,
        };
        fs::create_dir(&staging).map_err(|e| err("mkdir staging", &staging, e))?;
        let mut guard = RemoveOnDrop(Some(staging.clone()));
        let total: u64 = layers.iter().map(|(d, _)| d.size()).sum();
        let mut done = 0;
        let mut opts = opts.clone();
        opts.mark_incomplete = false;
        for (i, (layer, diff_id)) in layers.iter().enumerate() {
            self.apply_layer_blob_with(
                layer,
                diff_id,
                &staging,
                &opts,
                report,
                i,
                layers.len(),
                done,
                total,
            )?;
            done += layer.size();
        }
        if target.symlink_metadata().is_ok() {
            // Only an empty directory may be replaced.
            fs::remove_dir(target).map_err(|e| err("rmdir target", target, e))?;
        }
        fs::rename(&staging, target).map_err(|e| err("rename staging", target, e))?;
        guard.0 = None;
        Ok(())
    }
}

fn staging_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "rootfs".into());
    target.with_file_name(format!(".{name}.partial-{}", unique_suffix()))
}

/// Removes a directory tree when dropped (best effort).
#[derive(Debug)]
pub(crate) struct RemoveOnDrop(pub(crate) Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_dir_all(p);
        }
    }
}
