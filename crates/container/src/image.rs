//! Containers from OCI images: an image store (a layout and its shared
//! snapshots), images prepared as overlay lower layers, and the image
//! config's defaults.

use std::path::{Path, PathBuf};

use hull_image_layers::oci::{ImageConfiguration, MediaType};
use hull_image_layers::snapshot::Snapshotter;
use hull_image_layers::{ApplyOptions, ImageLayout, PlatformSpec, ResolvedImage};

use crate::config::{ContainerBuilder, Rootfs};
use crate::{Error, Result};

/// Images and their extracted layers.
///
/// An OCI image layout (the images, by tag) and a snapshot store beside it
/// where each layer is extracted once, keyed by its chain ID, and shared,
/// read-only, by every container made from an image that has it.
///
/// ```no_run
/// use hull_container::{Container, ImageStore};
///
/// let store = ImageStore::open("/var/lib/hull/images", "/var/lib/hull/snapshots")?;
/// let image = store.prepare("busybox:latest")?; // extracts what is missing
/// let mut c = Container::builder("web")
///     .image(image.clone())                      // env, command, workdir, user
///     .env("MODE", "demo")                       // builder calls override
///     .build()?
///     .create()?;
/// c.start()?;
/// c.wait()?;
/// # Ok::<(), hull_container::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ImageStore {
    layout: ImageLayout,
    snapshots: Snapshotter,
    state_dir: PathBuf,
    empty: PathBuf,
    platform: PlatformSpec,
}

fn image_err(reference: &str) -> impl Fn(hull_image_layers::Error) -> Error + '_ {
    move |source| Error::Image {
        reference: reference.to_string(),
        source: Box::new(source),
    }
}

impl ImageStore {
    /// Opens the image layout at `layout_dir` (creating an empty one if
    /// there is none) and the snapshot store at `state_dir`.
    ///
    /// # Errors
    /// [`Error::Image`] if either cannot be opened or created.
    pub fn open(layout_dir: impl AsRef<Path>, state_dir: impl AsRef<Path>) -> Result<ImageStore> {
        let layout_dir = layout_dir.as_ref();
        let name = layout_dir.display().to_string();
        let layout = if layout_dir.join("oci-layout").exists() {
            ImageLayout::open(layout_dir)
        } else {
            ImageLayout::create(layout_dir)
        }
        .map_err(image_err(&name))?;
        let state_dir = state_dir.as_ref();
        let snapshots = Snapshotter::new(state_dir).map_err(image_err(&name))?;
        // The lower layer of an image without layers (an overlay needs one).
        let empty = state_dir.join("empty");
        std::fs::create_dir_all(&empty).map_err(|source| Error::RuntimeDir {
            action: "create",
            path: empty.clone(),
            source,
        })?;
        Ok(ImageStore {
            layout,
            snapshots,
            state_dir: state_dir.to_path_buf(),
            empty,
            platform: PlatformSpec::default(),
        })
    }

    /// The image layout.
    pub fn layout(&self) -> &ImageLayout {
        &self.layout
    }

    /// The snapshot store.
    pub fn snapshots(&self) -> &Snapshotter {
        &self.snapshots
    }

    /// The directory of the snapshot store.
    pub fn snapshots_root(&self) -> &Path {
        &self.state_dir
    }

    /// The platform images are picked for (default: this machine's).
    pub fn platform(&self) -> &PlatformSpec {
        &self.platform
    }

    /// Resolves `reference` (a tag or a manifest digest in the layout) and
    /// extracts the layers not extracted yet; a second container from the
    /// same image extracts nothing.
    ///
    /// # Errors
    /// [`Error::Image`] (e.g. `RefNotFound` for an unknown reference);
    /// [`Error::Invalid`] (`user`) if the image's user is not in its
    /// /etc/passwd.
    pub fn prepare(&self, reference: &str) -> Result<PreparedImage> {
        let image = self
            .layout
            .resolve(reference, &self.platform)
            .map_err(image_err(reference))?;
        self.prepare_resolved(reference, image)
    }

    /// As [`ImageStore::prepare`], for an image already resolved (or
    /// written but not tagged).
    ///
    /// # Errors
    /// As [`ImageStore::prepare`].
    pub fn prepare_resolved(&self, reference: &str, image: ResolvedImage) -> Result<PreparedImage> {
        let top = self
            .snapshots
            .unpack_image(&self.layout, &image, &ApplyOptions::default())
            .map_err(image_err(reference))?;
        let lowers = match &top {
            Some(chain) => self.snapshots.lowers(chain).map_err(image_err(reference))?,
            None => vec![self.empty.clone()],
        };
        let defaults = ImageDefaults::from_config(&image.config, &lowers)?;
        Ok(PreparedImage {
            reference: reference.to_string(),
            image,
            lowers,
            defaults,
        })
    }

    /// A new image config for `FROM scratch`: this store's platform, no
    /// layers.
    ///
    /// # Errors
    /// [`Error::Image`] if the document cannot be built.
    pub fn scratch_config(&self) -> Result<ImageConfiguration> {
        self.platform.empty_config().map_err(|source| Error::Image {
            reference: "scratch".into(),
            source: Box::new(source),
        })
    }

    /// Writes `config` and a manifest of `layers` (bottom first) without
    /// tagging them, and reads them back as an image.
    ///
    /// # Errors
    /// [`Error::Image`].
    pub fn write_image(
        &self,
        config: &ImageConfiguration,
        layers: Vec<hull_image_layers::oci::Descriptor>,
    ) -> Result<ResolvedImage> {
        let err = image_err("(new image)");
        let desc = self.layout.write_image(config, layers).map_err(&err)?;
        self.layout.load_image(desc).map_err(err)
    }

    /// Imports the directory `tree` as a one-layer image (`docker
    /// import`), with `config` (from [`ImageStore::scratch_config`],
    /// possibly given env, cmd and so on), and tags it `tag`.
    ///
    /// # Errors
    /// [`Error::Image`].
    pub fn import_tree(
        &self,
        tree: &Path,
        mut config: ImageConfiguration,
        tag: &str,
    ) -> Result<ResolvedImage> {
        let err = image_err(tag);
        let layer = self
            .layout
            .write_layer(
                &hull_image_layers::diff::DiffSource::Trees {
                    lower: &self.empty,
                    upper: tree,
                },
                &hull_image_layers::diff::DiffOptions::default(),
            )
            .map_err(&err)?;
        config
            .rootfs_mut()
            .diff_ids_mut()
            .push(layer.diff_id.to_string());
        let opts = crate::CommitOptions {
            created_by: Some(format!("import {}", tree.display())),
            ..Default::default()
        };
        crate::commit::push_history(&mut config, &opts, false)?;
        let image = self.write_image(&config, vec![layer.descriptor])?;
        self.tag(tag, &image)?;
        Ok(image)
    }

    /// Tags an image in the layout.
    ///
    /// # Errors
    /// [`Error::Image`] (e.g. `InvalidRefName`).
    pub fn tag(&self, tag: &str, image: &ResolvedImage) -> Result<()> {
        debug_assert_eq!(image.descriptor.media_type(), &MediaType::ImageManifest);
        self.layout
            .tag(tag, &image.descriptor)
            .map_err(image_err(tag))
    }
}

/// An image ready to run: resolved, its layers extracted as shared
/// snapshots, and the defaults of its config. Give it to
/// [`ContainerBuilder::image`].
#[derive(Debug, Clone)]
pub struct PreparedImage {
    reference: String,
    image: ResolvedImage,
    lowers: Vec<PathBuf>,
    defaults: ImageDefaults,
}

impl PreparedImage {
    /// The reference it was prepared from.
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// The resolved image: manifest descriptor, manifest and config.
    pub fn image(&self) -> &ResolvedImage {
        &self.image
    }

    /// The snapshot directories stacked as overlay lower layers, top first.
    pub fn lowers(&self) -> &[PathBuf] {
        &self.lowers
    }

    /// The process defaults from the image config.
    pub fn defaults(&self) -> &ImageDefaults {
        &self.defaults
    }
}

/// The process defaults an image config gives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageDefaults {
    /// `Env`, as `(name, value)`.
    pub env: Vec<(String, String)>,
    /// `Entrypoint` followed by `Cmd`: the command.
    pub args: Vec<String>,
    /// `WorkingDir`, if set.
    pub workdir: Option<PathBuf>,
    /// `User` as written in the config.
    pub user_text: Option<String>,
    /// `User` resolved to `(uid, gid)` through the image's /etc/passwd
    /// and /etc/group.
    pub user: Option<(u32, u32)>,
}

impl ImageDefaults {
    fn from_config(config: &ImageConfiguration, lowers: &[PathBuf]) -> Result<ImageDefaults> {
        let mut d = ImageDefaults::default();
        let Some(c) = config.config() else {
            return Ok(d);
        };
        for e in c.env().iter().flatten() {
            if let Some((k, v)) = e.split_once('=') {
                d.env.push((k.to_string(), v.to_string()));
            }
        }
        d.args.extend(c.entrypoint().iter().flatten().cloned());
        d.args.extend(c.cmd().iter().flatten().cloned());
        d.workdir = c
            .working_dir()
            .as_ref()
            .filter(|w| !w.is_empty())
            .map(PathBuf::from);
        if let Some(u) = c.user().as_ref().filter(|u| !u.is_empty()) {
            d.user_text = Some(u.clone());
            d.user = Some(resolve_user(u, lowers)?);
        }
        Ok(d)
    }
}

/// `uid`, `uid:gid`, `name`, `name:group` through the image's files.
pub(crate) fn resolve_user(user: &str, lowers: &[PathBuf]) -> Result<(u32, u32)> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read_in_lowers(lowers, "etc/passwd").unwrap_or_default();
    let bad = |what: &str| Error::Invalid {
        field: "user",
        problem: format!(
            "{what} of image user {user:?} is not in the image's /etc/passwd or /etc/group"
        ),
    };
    // name:x:uid:gid:...
    let entries: Vec<Vec<&str>> = passwd.lines().map(|l| l.split(':').collect()).collect();
    let (uid, primary) = match u.parse::<u32>() {
        Ok(n) => {
            let gid = entries
                .iter()
                .find(|e| e.len() > 3 && e[2].parse() == Ok(n))
                .and_then(|e| e[3].parse().ok());
            (n, gid)
        }
        Err(_) => {
            let e = entries
                .iter()
                .find(|e| e.len() > 3 && e[0] == u)
                .ok_or_else(|| bad("the user"))?;
            (
                e[2].parse().map_err(|_| bad("the user"))?,
                e[3].parse().ok(),
            )
        }
    };
    let gid = match g {
        None => primary.unwrap_or(0),
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let group = read_in_lowers(lowers, "etc/group").unwrap_or_default();
                group
                    .lines()
                    .map(|l| l.split(':').collect::<Vec<_>>())
                    .find(|e| e.len() > 2 && e[0] == g)
                    .and_then(|e| e[2].parse().ok())
                    .ok_or_else(|| bad("the group"))?
            }
        },
    };
    Ok((uid, gid))
}

/// Reads a file through the overlay's lower layers (top first), each
/// resolved inside its layer: the first layer that has it (or a whiteout
/// for it) answers.
pub(crate) fn read_in_lowers(lowers: &[PathBuf], path: &str) -> Option<String> {
    for l in lowers {
        match crate::cp::lookup_in_dir(l, path) {
            crate::cp::Lookup::Missing => continue,
            crate::cp::Lookup::Whiteout => return None,
            crate::cp::Lookup::Found(kind) => {
                if kind != crate::cp::Kind::File {
                    return None;
                }
                return crate::cp::read_in_dir(l, path).ok();
            }
        }
    }
    None
}

/// True when `path` exists in the stack of lower layers.
pub(crate) fn exists_in_lowers(lowers: &[PathBuf], path: &str) -> bool {
    for l in lowers {
        match crate::cp::lookup_in_dir(l, path) {
            crate::cp::Lookup::Missing => continue,
            crate::cp::Lookup::Whiteout => return false,
            crate::cp::Lookup::Found(_) => return true,
        }
    }
    false
}

/// The builder fields the caller set, which an image's defaults leave
/// alone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Explicit {
    pub(crate) args: bool,
    pub(crate) env: Vec<String>,
    pub(crate) cwd: bool,
    pub(crate) user: bool,
}

/// What a container made from an image keeps of it (for commit).
pub(crate) type ImageInfo = PreparedImage;

impl ContainerBuilder {
    /// The root file system from an image: its snapshots, shared with every
    /// other container of the image, stacked under a private upper
    /// directory in the container's runtime directory (removed on delete
    /// unless [committed](crate::Container::commit)). The image config's
    /// env, entrypoint and cmd, working directory and user become the
    /// defaults: [`args`](Self::args), [`env`](Self::env),
    /// [`cwd`](Self::cwd) and [`user`](Self::user), called before or after,
    /// override them (`args` replaces entrypoint and cmd together).
    pub fn image(mut self, image: PreparedImage) -> Self {
        let d = &image.defaults;
        let c = &mut self.config;
        c.rootfs = Rootfs::Overlay {
            lowers: image.lowers.clone(),
            upper: None,
        };
        if !self.explicit.args && !d.args.is_empty() {
            c.args = d.args.clone();
        }
        for (k, v) in &d.env {
            if !self.explicit.env.contains(k) {
                c.env.retain(|(ek, _)| ek != k);
                c.env.push((k.clone(), v.clone()));
            }
        }
        if let (false, Some(w)) = (self.explicit.cwd, &d.workdir) {
            c.cwd = w.clone();
        }
        if let (false, Some((uid, gid))) = (self.explicit.user, d.user) {
            c.uid = uid;
            c.gid = gid;
        }
        c.image = Some(Box::new(image));
        self
    }
}
