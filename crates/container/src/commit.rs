//! Committing a container's writes as a new image (`docker commit`).

use std::path::{Path, PathBuf};

use hull_image_layers::diff::{DiffOptions, DiffSource};
use hull_image_layers::oci::{HistoryBuilder, ImageConfiguration};
use hull_image_layers::{ResolvedImage, WrittenLayer};

use crate::config::{Config, NetworkMode};
use crate::image::{ImageStore, exists_in_lowers};
use crate::{Container, Error, Result, Status};

/// Options of [`Container::commit`].
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// The history entry's `created_by` (default: the container's command).
    pub created_by: Option<String>,
    /// The author, in the config and the history entry.
    pub author: Option<String>,
    /// The history entry's comment.
    pub comment: Option<String>,
    /// How the layer is made (compression, fixed mtimes).
    pub diff: DiffOptions,
}

/// The current time as RFC 3339 (UTC, seconds).
pub(crate) fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs, None)
}

/// A Unix time (seconds, and nanoseconds if given) as RFC 3339 in UTC, as
/// image configs, OCI state and runc's logs write it:
/// `2024-02-29T12:34:56Z` or `2024-02-29T12:34:56.000000005Z`.
pub fn rfc3339(secs: u64, nanos: Option<u32>) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil from days (proleptic Gregorian), after H. Hinnant.
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let fraction = nanos.map(|n| format!(".{n:09}")).unwrap_or_default();
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{fraction}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

impl ImageStore {
    /// Writes the overlay upper directory `upper` as a layer on top of
    /// `base`, with `config` (the base's config, possibly changed) gaining
    /// the layer's diff_id and a history entry; returns the new image,
    /// written but not tagged.
    ///
    /// # Errors
    /// [`Error::Image`].
    pub fn commit_upper(
        &self,
        base: &ResolvedImage,
        mut config: ImageConfiguration,
        upper: &Path,
        opts: &CommitOptions,
    ) -> Result<ResolvedImage> {
        let err = |source| Error::Image {
            reference: upper.display().to_string(),
            source: Box::new(source),
        };
        let layer: WrittenLayer = self
            .layout()
            .write_layer(&DiffSource::OverlayUpper(upper), &opts.diff)
            .map_err(err)?;
        config
            .rootfs_mut()
            .diff_ids_mut()
            .push(layer.diff_id.to_string());
        push_history(&mut config, opts, false)?;
        let mut layers = base.manifest.layers().clone();
        layers.push(layer.descriptor);
        self.write_image(&config, layers)
    }
}

/// Adds a history entry (`empty_layer` for a change of config only).
pub(crate) fn push_history(
    config: &mut ImageConfiguration,
    opts: &CommitOptions,
    empty_layer: bool,
) -> Result<()> {
    let created = now_rfc3339();
    let mut h = HistoryBuilder::default().created(created.clone());
    if empty_layer {
        h = h.empty_layer(true);
    }
    if let Some(c) = &opts.created_by {
        h = h.created_by(c.clone());
    }
    if let Some(a) = &opts.author {
        h = h.author(a.clone());
        config.set_author(Some(a.clone()));
    }
    if let Some(c) = &opts.comment {
        h = h.comment(c.clone());
    }
    let entry = h.build().map_err(|source| Error::Image {
        reference: "(history)".into(),
        source: Box::new(hull_image_layers::Error::BuildDocument { source }),
    })?;
    config.set_created(Some(created));
    config
        .history_mut()
        .get_or_insert_with(Vec::new)
        .push(entry);
    Ok(())
}

impl Container {
    /// Commits the container's writes (its private upper layer) as a new
    /// layer on top of the image it was made from, and tags the new image
    /// `tag` in `store`'s layout; a history entry records what was run.
    /// Deleted files of lower layers become whiteouts. A running container
    /// with a cgroup is frozen while its layer is written. For a stopped
    /// container, the mount points the runtime made (empty files and
    /// directories the image lacks, such as a bind mount's target) are
    /// left out of the layer.
    ///
    /// New containers can then be made from `tag`; the base image's
    /// snapshots are reused, only the new layer is extracted.
    ///
    /// # Errors
    /// [`Error::Invalid`] (`rootfs`) unless made with
    /// [`ContainerBuilder::image`](crate::ContainerBuilder::image);
    /// [`Error::Image`]; [`Error::Cgroup`] if it cannot be frozen.
    pub fn commit(
        &mut self,
        store: &ImageStore,
        tag: &str,
        opts: &CommitOptions,
    ) -> Result<ResolvedImage> {
        let Some(info) = self.config().image.clone() else {
            return Err(Error::Invalid {
                field: "rootfs",
                problem: format!(
                    "container {} was not made from an image: nothing to commit onto",
                    self.id()
                ),
            });
        };
        let mut opts = opts.clone();
        if opts.created_by.is_none() {
            opts.created_by = Some(self.config().args.join(" "));
        }
        let upper = self.runtime_dir().join("upper");
        let freeze = self.status() == Status::Running && self.cgroup().is_some();
        if freeze {
            self.pause()?;
        }
        // Once stopped, the mount points the runtime made are set aside.
        let stash = self.runtime_dir().join("commit-stash");
        let hidden = if self.status() == Status::Stopped {
            hide_mount_points(self.config(), &upper, info.lowers(), &stash)
        } else {
            Vec::new()
        };
        let base = info.image();
        let written = store.commit_upper(base, base.config.clone(), &upper, &opts);
        restore(hidden);
        let _ = std::fs::remove_dir(&stash);
        if freeze {
            self.resume()?;
        }
        let image = written?;
        store.tag(tag, &image)?;
        Ok(image)
    }
}

/// The mount points the runtime makes in the root (paths inside it,
/// relative): the default mounts, the configured mounts' destinations and
/// the network files.
fn mount_points(c: &Config) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = ["proc", "dev", "sys"].iter().map(PathBuf::from).collect();
    for m in &c.mounts {
        let d = m.destination();
        out.push(d.strip_prefix("/").unwrap_or(d).to_path_buf());
    }
    if matches!(c.network, NetworkMode::Bridge { .. }) {
        for f in ["etc/hosts", "etc/hostname", "etc/resolv.conf"] {
            out.push(PathBuf::from(f));
        }
    }
    out
}

/// Moves out of `upper` (into `stash`, on the same file system) the mount
/// points the runtime created there: empty files and directories the image
/// lacks, and their parents that are left empty and are not in the image,
/// as Docker's init layer keeps them out of a commit. Best effort; returns
/// what was moved, as `(from, to)`.
fn hide_mount_points(
    c: &Config,
    upper: &Path,
    lowers: &[PathBuf],
    stash: &Path,
) -> Vec<(PathBuf, PathBuf)> {
    let mut moved = Vec::new();
    if std::fs::create_dir_all(stash).is_err() {
        return moved;
    }
    let is_empty = |p: &Path| match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none()),
        Ok(m) => m.is_file() && m.len() == 0,
        Err(_) => false,
    };
    for point in mount_points(c) {
        let mut rel = point.as_path();
        loop {
            let up = upper.join(rel);
            if !is_empty(&up) || exists_in_lowers(lowers, &rel.to_string_lossy()) {
                break;
            }
            let to = stash.join(moved.len().to_string());
            if std::fs::rename(&up, &to).is_err() {
                break;
            }
            moved.push((up, to));
            match rel.parent() {
                Some(p) if !p.as_os_str().is_empty() => rel = p,
                _ => break,
            }
        }
    }
    moved
}

/// Puts back what [`hide_mount_points`] moved, last first.
fn restore(moved: Vec<(PathBuf, PathBuf)>) {
    for (from, to) in moved.into_iter().rev() {
        let _ = std::fs::rename(to, from);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_has_the_shape() {
        let t = super::now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'), "{t}");
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(super::rfc3339(0, None), "1970-01-01T00:00:00Z");
        assert_eq!(
            super::rfc3339(1_709_210_096, Some(5)),
            "2024-02-29T12:34:56.000000005Z"
        );
    }
}
