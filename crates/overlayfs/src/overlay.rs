//! The `Overlay` builder, mounting, and the `OverlayMount` guard.

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, Role};
use crate::sys;
use crate::whiteout::XattrNamespace;

/// The most lower layers (regular plus data-only) the kernel stacks
/// (`OVL_MAX_STACK`).
pub const MAX_LAYERS: usize = 500;

/// Entries overlayfs itself creates in a work directory; a work directory
/// holding only these is treated as empty (it was used by an earlier mount
/// of the same upper directory).
const WORK_DIR_OWN_ENTRIES: [&str; 2] = ["work", "index"];

/// The `redirect_dir` option: how renamed directories are recorded and
/// followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RedirectDir {
    /// Create and follow redirects (`on`).
    On,
    /// Follow existing redirects but do not create new ones (`follow`).
    Follow,
    /// Neither create nor follow redirects (`nofollow`).
    NoFollow,
    /// Do not create redirects; follow only if the module says so (`off`).
    Off,
}

impl RedirectDir {
    /// The option's value as the kernel spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RedirectDir::On => "on",
            RedirectDir::Follow => "follow",
            RedirectDir::NoFollow => "nofollow",
            RedirectDir::Off => "off",
        }
    }
}

/// The `xino` option: whether inode numbers get the layer's fsid in their
/// high bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Xino {
    /// Always (`on`).
    On,
    /// Never (`off`).
    Off,
    /// When the layers' inode numbers leave room (`auto`).
    Auto,
}

impl Xino {
    /// The option's value as the kernel spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Xino::On => "on",
            Xino::Off => "off",
            Xino::Auto => "auto",
        }
    }
}

/// Which kernel interface mounts the overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MountApi {
    /// The new mount API where the kernel has it, one fsconfig call per
    /// layer: layers as path strings when every path fits fsconfig's
    /// 255-byte string limit (the cheaper form), else as file descriptors
    /// (no length limit, Linux 6.13+); mount(2) on older kernels.
    #[default]
    Auto,
    /// fsopen/fsconfig/fsmount/move_mount only, each layer opened here and
    /// passed as a file descriptor; fails where the kernel lacks the API or
    /// does not take layers as file descriptors (before Linux 6.13).
    New,
    /// The new mount API with each layer passed as a path string
    /// ([`Overlay::fsconfig_params`]; Linux 6.8+): paths are looked up by the
    /// kernel in the mounting process's mount namespace, and each must be
    /// shorter than [`FSCONFIG_MAX_STRING`] bytes + 1.
    NewPaths,
    /// mount(2) with one option string of at most one page.
    Legacy,
}

/// The longest string value fsconfig(2) takes (the kernel copies at most
/// 256 bytes including the NUL).
pub const FSCONFIG_MAX_STRING: usize = 255;

/// One fsconfig(2) call of an overlay's configuration, as plain data for a
/// caller that runs the new mount API itself (e.g. in a forked child, in
/// another mount namespace): see [`Overlay::fsconfig_params`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FsconfigParam {
    /// `fsconfig(fd, FSCONFIG_SET_FLAG, key, NULL, 0)`.
    Flag {
        /// The key, e.g. `userxattr`.
        key: &'static str,
    },
    /// `fsconfig(fd, FSCONFIG_SET_STRING, key, value, 0)`.
    String {
        /// The key, e.g. `lowerdir+` or `index`.
        key: &'static str,
        /// The value: a path (not escaped) or an option value.
        value: OsString,
    },
}

/// Overlay options beyond the layers. `None` leaves the kernel's (module
/// parameter) default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Mount read-only (MOUNT_ATTR_RDONLY / MS_RDONLY).
    pub read_only: bool,
    /// `volatile`: skip all syncs to the upper filesystem.
    pub volatile: bool,
    /// `index=on|off`.
    pub index: Option<bool>,
    /// `metacopy=on|off`: copy up metadata only on chmod/chown.
    pub metacopy: Option<bool>,
    /// `redirect_dir=…`.
    pub redirect_dir: Option<RedirectDir>,
    /// `xino=…`.
    pub xino: Option<Xino>,
    /// `userxattr`: keep overlay's own xattrs in `user.overlay.*` (needed in a
    /// user namespace, where `trusted.*` is out of reach).
    pub userxattr: bool,
}

/// Builds an [`Overlay`]; see there.
#[derive(Debug, Clone, Default)]
pub struct OverlayBuilder {
    lowers: Vec<PathBuf>,
    data_lowers: Vec<PathBuf>,
    upper: Option<(PathBuf, PathBuf)>,
    target: Option<PathBuf>,
    options: Options,
}

/// A validated overlay: lower layers, an optional upper and work directory,
/// a mount point and options.
///
/// **Layer order: the first lower layer is the top-most.** This is the
/// kernel's `lowerdir=top:…:bottom` order: a file in `lowers()[0]` hides the
/// same file in every later layer. [`OverlayBuilder::lower`] appends a layer
/// *below* the ones added before; [`OverlayBuilder::lowers_bottom_up`] takes
/// layers in OCI image order (base first) and reverses them.
///
/// Without [`OverlayBuilder::upper`] the overlay is read-only (and the
/// kernel then wants at least two layers).
///
/// ```no_run
/// use hull_overlayfs::Overlay;
///
/// # fn main() -> Result<(), hull_overlayfs::Error> {
/// let overlay = Overlay::builder()
///     .lower("/layers/app")   // top-most lower layer
///     .lower("/layers/base")  // below it
///     .upper("/c1/upper", "/c1/work")
///     .target("/c1/rootfs")
///     .build()?;
/// let mount = overlay.mount()?;
/// // ... use /c1/rootfs ...
/// mount.unmount()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Overlay {
    lowers: Vec<PathBuf>,
    data_lowers: Vec<PathBuf>,
    upper: Option<(PathBuf, PathBuf)>,
    target: PathBuf,
    options: Options,
}

impl OverlayBuilder {
    /// Appends a lower layer *below* those added so far (so the first call
    /// names the top-most layer).
    pub fn lower(mut self, dir: impl Into<PathBuf>) -> Self {
        self.lowers.push(dir.into());
        self
    }

    /// Appends lower layers given top-most first (the kernel's order).
    pub fn lowers_top_down<I, P>(mut self, dirs: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        self.lowers.extend(dirs.into_iter().map(Into::into));
        self
    }

    /// Sets the lower layers from a list given bottom-most (base) first, the
    /// order of an OCI image manifest. Replaces layers added before.
    pub fn lowers_bottom_up<I, P>(mut self, dirs: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        let mut v: Vec<PathBuf> = dirs.into_iter().map(Into::into).collect();
        v.reverse();
        self.lowers = v;
        self
    }

    /// Appends a data-only lower layer (Linux 6.5+): its files are reachable
    /// only through metacopy redirects from regular layers, never by name
    /// (so layers that use it are typically mounted with `metacopy(true)`).
    /// Data-only layers sit below every regular lower layer.
    pub fn data_lower(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_lowers.push(dir.into());
        self
    }

    /// Sets the upper directory (where changes go) and the work directory
    /// overlayfs needs beside it, on the same filesystem. Without them the
    /// overlay is read-only.
    pub fn upper(mut self, upper: impl Into<PathBuf>, work: impl Into<PathBuf>) -> Self {
        self.upper = Some((upper.into(), work.into()));
        self
    }

    /// Sets the mount point (an existing directory).
    pub fn target(mut self, dir: impl Into<PathBuf>) -> Self {
        self.target = Some(dir.into());
        self
    }

    /// Mounts read-only even with an upper directory.
    pub fn read_only(mut self, on: bool) -> Self {
        self.options.read_only = on;
        self
    }

    /// `volatile`: no syncs to the upper filesystem (needs an upper dir; after
    /// a crash the upper dir must be discarded).
    pub fn volatile(mut self, on: bool) -> Self {
        self.options.volatile = on;
        self
    }

    /// `index=on|off`.
    pub fn index(mut self, on: bool) -> Self {
        self.options.index = Some(on);
        self
    }

    /// `metacopy=on|off`.
    pub fn metacopy(mut self, on: bool) -> Self {
        self.options.metacopy = Some(on);
        self
    }

    /// `redirect_dir=…`.
    pub fn redirect_dir(mut self, mode: RedirectDir) -> Self {
        self.options.redirect_dir = Some(mode);
        self
    }

    /// `xino=…`.
    pub fn xino(mut self, mode: Xino) -> Self {
        self.options.xino = Some(mode);
        self
    }

    /// `userxattr`: overlay xattrs in `user.overlay.*`, for overlays mounted
    /// inside a user namespace.
    pub fn userxattr(mut self, on: bool) -> Self {
        self.options.userxattr = on;
        self
    }

    /// Replaces all options at once.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Checks the configuration against itself and the filesystem and
    /// returns the overlay.
    ///
    /// # Errors
    /// [`Error::NoLowerLayers`], [`Error::TooManyLayers`],
    /// [`Error::SingleLayerWithoutUpper`],
    /// [`Error::InvalidPath`], [`Error::Stat`] (missing directory),
    /// [`Error::NotADirectory`], [`Error::DuplicateDir`],
    /// [`Error::UpperWorkDifferentFilesystems`], [`Error::UpperWorkNested`],
    /// [`Error::WorkDirNotEmpty`], [`Error::OverlappingLayers`],
    /// [`Error::NeedsUpper`],
    /// [`Error::ConflictingOptions`]; each names the path at fault.
    pub fn build(self) -> Result<Overlay> {
        let target = self.target.ok_or(Error::InvalidPath {
            role: Role::Target,
            path: PathBuf::new(),
        })?;
        let overlay = Overlay {
            lowers: self.lowers,
            data_lowers: self.data_lowers,
            upper: self.upper,
            target,
            options: self.options,
        };
        overlay.validate_static()?;
        overlay.validate_fs()?;
        Ok(overlay)
    }
}

impl Overlay {
    /// Starts a builder.
    pub fn builder() -> OverlayBuilder {
        OverlayBuilder::default()
    }

    /// The lower layers, **top-most first**.
    pub fn lowers(&self) -> &[PathBuf] {
        &self.lowers
    }

    /// The data-only lower layers.
    pub fn data_lowers(&self) -> &[PathBuf] {
        &self.data_lowers
    }

    /// The upper directory, if any.
    pub fn upper_dir(&self) -> Option<&Path> {
        self.upper.as_ref().map(|(u, _)| u.as_path())
    }

    /// The work directory, if any.
    pub fn work_dir(&self) -> Option<&Path> {
        self.upper.as_ref().map(|(_, w)| w.as_path())
    }

    /// The mount point.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The options.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Where overlay keeps its xattrs for this overlay's options.
    pub fn xattr_namespace(&self) -> XattrNamespace {
        if self.options.userxattr {
            XattrNamespace::User
        } else {
            XattrNamespace::Trusted
        }
    }

    /// Every path with its role, in mount order.
    fn paths(&self) -> impl Iterator<Item = (Role, &Path)> {
        let lowers = self
            .lowers
            .iter()
            .enumerate()
            .map(|(i, p)| (Role::Lower(i), p.as_path()));
        let data = self
            .data_lowers
            .iter()
            .enumerate()
            .map(|(i, p)| (Role::DataLower(i), p.as_path()));
        let upper = self
            .upper
            .iter()
            .flat_map(|(u, w)| [(Role::Upper, u.as_path()), (Role::Work, w.as_path())]);
        lowers
            .chain(data)
            .chain(upper)
            .chain(std::iter::once((Role::Target, self.target.as_path())))
    }

    /// Checks that need no filesystem access.
    fn validate_static(&self) -> Result<()> {
        if self.lowers.is_empty() {
            return Err(Error::NoLowerLayers);
        }
        let count = self.lowers.len() + self.data_lowers.len();
        if count > MAX_LAYERS {
            return Err(Error::TooManyLayers {
                count,
                max: MAX_LAYERS,
            });
        }
        for (role, path) in self.paths() {
            let bytes = path.as_os_str().as_bytes();
            if bytes.is_empty() || bytes.contains(&0) {
                return Err(Error::InvalidPath {
                    role,
                    path: path.to_path_buf(),
                });
            }
        }
        if self.upper.is_none() && count < 2 {
            return Err(Error::SingleLayerWithoutUpper {
                path: self.lowers[0].clone(),
            });
        }
        let o = &self.options;
        if self.upper.is_none() && o.volatile {
            return Err(Error::NeedsUpper { option: "volatile" });
        }
        if o.userxattr {
            if o.index == Some(true) {
                return Err(Error::ConflictingOptions {
                    first: "userxattr",
                    second: "index=on",
                });
            }
            if o.metacopy == Some(true) {
                return Err(Error::ConflictingOptions {
                    first: "userxattr",
                    second: "metacopy=on",
                });
            }
            if o.redirect_dir == Some(RedirectDir::On) {
                return Err(Error::ConflictingOptions {
                    first: "userxattr",
                    second: "redirect_dir=on",
                });
            }
        }
        Ok(())
    }

    /// Checks against the filesystem: existence, identity, upper/work.
    fn validate_fs(&self) -> Result<()> {
        // (dev, ino) of every layer, to find a directory used twice (also
        // through symlinks or bind mounts) and upper/work inside a layer.
        let mut seen: HashMap<(u64, u64), (Role, &Path)> = HashMap::new();
        for (role, path) in self.paths() {
            let md = std::fs::metadata(path).map_err(|source| Error::Stat {
                role,
                path: path.to_path_buf(),
                source,
            })?;
            if !md.is_dir() {
                return Err(Error::NotADirectory {
                    role,
                    path: path.to_path_buf(),
                });
            }
            // The target may well be one of the layers (mounting over a lower
            // dir is legal); only the layers must be distinct.
            if role == Role::Target {
                continue;
            }
            if let Some((first, _)) = seen.insert((md.dev(), md.ino()), (role, path)) {
                return Err(Error::DuplicateDir {
                    path: path.to_path_buf(),
                    first,
                    second: role,
                });
            }
        }
        if let Some((upper, work)) = &self.upper {
            let (cu, cw) = check_upper_work(upper, work)?;
            check_not_inside_layer(Role::Upper, upper, &cu, &seen)?;
            check_not_inside_layer(Role::Work, work, &cw, &seen)?;
        }
        Ok(())
    }

    /// Mounts the overlay at its target, through the new mount API where the
    /// kernel has it and mount(2) otherwise ([`MountApi::Auto`]).
    ///
    /// # Errors
    /// See [`Overlay::mount_with`].
    pub fn mount(&self) -> Result<OverlayMount> {
        self.mount_with(MountApi::Auto)
    }

    /// Mounts the overlay at its target through the given interface.
    ///
    /// With [`MountApi::New`] every layer is opened here (O_PATH) and handed
    /// to the kernel as a file descriptor with `lowerdir+` (one fsconfig call
    /// per layer), so neither the one-page limit of mount(2) nor the 256-byte
    /// limit of an fsconfig string applies. Nothing is attached until every
    /// parameter was accepted, so a failure leaves no mount behind.
    ///
    /// # Errors
    /// [`Error::Open`] for a layer that cannot be opened, [`Error::Fsopen`],
    /// [`Error::Fsconfig`] (naming the key and path, with the kernel's log
    /// message), [`Error::Fsmount`], [`Error::MoveMount`]; with
    /// [`MountApi::NewPaths`] also [`Error::PathTooLong`]; with mount(2)
    /// [`Error::OptionsTooLong`] and [`Error::Mount`].
    #[doc(
        alias = "fsopen",
        alias = "fsconfig",
        alias = "fsmount",
        alias = "move_mount",
        alias = "mount"
    )]
    pub fn mount_with(&self, api: MountApi) -> Result<OverlayMount> {
        match api {
            MountApi::Legacy => self.mount_legacy(),
            MountApi::New => self.mount_new(Layers::Fds),
            MountApi::NewPaths => self.mount_new(Layers::Paths),
            MountApi::Auto => match self.mount_new(self.preferred_layers()) {
                Err(e) if new_api_unavailable(&e) => self.mount_legacy(),
                other => other,
            },
        }
    }

    fn target_cstring(&self) -> Result<CString> {
        cstring(&self.target, Role::Target)
    }

    fn mount_new(&self, layers: Layers) -> Result<OverlayMount> {
        let target = self.target_cstring()?;
        let mnt = self.mount_detached_with(layers)?;
        // Until move_mount succeeds the mount is detached: dropping `mnt`
        // on error frees it, nothing is left behind.
        sys::move_mount(mnt.as_fd(), &target).map_err(|source| Error::MoveMount {
            target: self.target.clone(),
            source,
        })?;
        Ok(OverlayMount::new(self.target.clone(), target))
    }

    /// Creates the overlay as a detached mount (new mount API only) and
    /// returns its file descriptor, attached nowhere: the caller attaches it
    /// with move_mount(2) (e.g. relative to a directory fd it resolved safely
    /// inside a container root), or drops it to discard the overlay. The fd
    /// keeps the mount busy: close it once attached, before unmounting.
    ///
    /// Layers go as path strings when they all fit, else as file
    /// descriptors, as with [`MountApi::Auto`].
    ///
    /// # Errors
    /// As [`Overlay::mount_with`] for [`MountApi::New`], except
    /// [`Error::MoveMount`].
    #[doc(alias = "fsmount")]
    pub fn mount_detached(&self) -> Result<OwnedFd> {
        self.mount_detached_with(self.preferred_layers())
    }

    /// Path strings (one syscall per layer, and the kernel keeps the name
    /// as given) unless a path is too long for fsconfig: then fds.
    fn preferred_layers(&self) -> Layers {
        let fits = self
            .paths()
            .all(|(_, p)| p.as_os_str().len() <= FSCONFIG_MAX_STRING);
        if fits { Layers::Paths } else { Layers::Fds }
    }

    /// The fsconfig(2) calls that configure this overlay, in order: one
    /// `lowerdir+` per lower layer (top-most first), one `datadir+` per
    /// data-only layer, `upperdir`, `workdir`, then the options. Paths are
    /// passed as they are (no escaping; Linux 6.8+ takes `lowerdir+`).
    /// Read-only is a mount attribute (MOUNT_ATTR_RDONLY), not a parameter.
    ///
    /// # Errors
    /// [`Error::PathTooLong`] for a path fsconfig cannot take as a string
    /// (over [`FSCONFIG_MAX_STRING`] bytes); mount by file descriptor
    /// ([`MountApi::New`]) instead.
    pub fn fsconfig_params(&self) -> Result<Vec<FsconfigParam>> {
        let mut v = Vec::new();
        for (role, path) in self.paths() {
            let key = match role {
                Role::Lower(_) => "lowerdir+",
                Role::DataLower(_) => "datadir+",
                Role::Upper => "upperdir",
                Role::Work => "workdir",
                Role::Target => continue,
            };
            if path.as_os_str().len() > FSCONFIG_MAX_STRING {
                return Err(Error::PathTooLong {
                    role,
                    path: path.to_path_buf(),
                    max: FSCONFIG_MAX_STRING,
                });
            }
            v.push(FsconfigParam::String {
                key,
                value: path.as_os_str().to_os_string(),
            });
        }
        for (key, value) in self.value_options() {
            v.push(match value {
                Some(value) => FsconfigParam::String {
                    key,
                    value: value.into(),
                },
                None => FsconfigParam::Flag { key },
            });
        }
        Ok(v)
    }

    fn mount_detached_with(&self, layers: Layers) -> Result<OwnedFd> {
        let fs = sys::fsopen(c"overlay").map_err(|source| Error::Fsopen { source })?;
        let fsconfig_err =
            |key: &str, path: Option<&Path>, source: std::io::Error| Error::Fsconfig {
                key: key.to_string(),
                path: path.map(Path::to_path_buf),
                target: self.target.clone(),
                log: sys::read_fs_log(fs.as_fd()),
                source,
            };
        match layers {
            Layers::Fds => {
                // O_PATH fds need only search permission on the layer, as a
                // path lookup would; kernels before 6.15 or so take only
                // fds opened for reading (EBADF otherwise): then switch.
                let o_path = std::cell::Cell::new(true);
                let set_dir = |key: &CStr, role: Role, path: &Path| -> Result<()> {
                    let dir = open_dir(path, role, o_path.get())?;
                    let res = match sys::fsconfig_set_fd(fs.as_fd(), key, dir.as_fd()) {
                        Err(e) if o_path.get() && e.raw_os_error() == Some(libc::EBADF) => {
                            o_path.set(false);
                            // Drop the refusal from the context's log.
                            let _ = sys::read_fs_log(fs.as_fd());
                            let dir = open_dir(path, role, false)?;
                            sys::fsconfig_set_fd(fs.as_fd(), key, dir.as_fd())
                        }
                        other => other,
                    };
                    res.map_err(|e| fsconfig_err(&key.to_string_lossy(), Some(path), e))
                };
                for (role, path) in self.paths() {
                    match role {
                        Role::Lower(_) => set_dir(c"lowerdir+", role, path)?,
                        Role::DataLower(_) => set_dir(c"datadir+", role, path)?,
                        Role::Upper => set_dir(c"upperdir", role, path)?,
                        Role::Work => set_dir(c"workdir", role, path)?,
                        Role::Target => {}
                    }
                }
                for (key, value) in self.value_options() {
                    let ckey = static_cstring(key);
                    let res = match value {
                        Some(v) => sys::fsconfig_set_string(fs.as_fd(), &ckey, &static_cstring(v)),
                        None => sys::fsconfig_set_flag(fs.as_fd(), &ckey),
                    };
                    res.map_err(|e| fsconfig_err(key, None, e))?;
                }
            }
            Layers::Paths => {
                for param in self.fsconfig_params()? {
                    let (key, res, path) = match &param {
                        FsconfigParam::Flag { key } => (
                            *key,
                            sys::fsconfig_set_flag(fs.as_fd(), &static_cstring(key)),
                            None,
                        ),
                        FsconfigParam::String { key, value } => {
                            let cv = CString::new(value.as_bytes()).unwrap_or_default();
                            let res =
                                sys::fsconfig_set_string(fs.as_fd(), &static_cstring(key), &cv);
                            (*key, res, key.contains("dir").then(|| Path::new(value)))
                        }
                    };
                    res.map_err(|e| fsconfig_err(key, path, e))?;
                }
            }
        }
        sys::fsconfig_create(fs.as_fd()).map_err(|e| fsconfig_err("create", None, e))?;
        let attr = if self.options.read_only {
            sys::MOUNT_ATTR_RDONLY
        } else {
            0
        };
        sys::fsmount(fs.as_fd(), attr).map_err(|source| Error::Fsmount {
            target: self.target.clone(),
            log: sys::read_fs_log(fs.as_fd()),
            source,
        })
    }

    fn mount_legacy(&self) -> Result<OverlayMount> {
        let target = self.target_cstring()?;
        let data = self.render_legacy_options();
        let max = sys::page_size() - 1;
        if data.len() > max {
            return Err(Error::OptionsTooLong {
                target: self.target.clone(),
                len: data.len(),
                max,
            });
        }
        let options = String::from_utf8_lossy(&data).into_owned();
        let cdata = CString::new(data).map_err(|_| Error::InvalidPath {
            role: Role::Target,
            path: self.target.clone(),
        })?;
        let flags = if self.options.read_only {
            libc::MS_RDONLY
        } else {
            0
        };
        sys::mount_overlay(&target, flags, &cdata).map_err(|source| Error::Mount {
            target: self.target.clone(),
            options,
            source,
        })?;
        Ok(OverlayMount::new(self.target.clone(), target))
    }

    /// The non-path options as `(key, Some(value))` or `(flag, None)`, in the
    /// order both interfaces pass them.
    pub fn value_options(&self) -> Vec<(&'static str, Option<&'static str>)> {
        let o = &self.options;
        let on_off = |b: bool| if b { "on" } else { "off" };
        let mut v = Vec::new();
        if o.userxattr {
            v.push(("userxattr", None));
        }
        if let Some(r) = o.redirect_dir {
            v.push(("redirect_dir", Some(r.as_str())));
        }
        if let Some(b) = o.index {
            v.push(("index", Some(on_off(b))));
        }
        if let Some(b) = o.metacopy {
            v.push(("metacopy", Some(on_off(b))));
        }
        if let Some(x) = o.xino {
            v.push(("xino", Some(x.as_str())));
        }
        if o.volatile {
            v.push(("volatile", None));
        }
        v
    }

    /// The option string mount(2) would get, e.g.
    /// `lowerdir=/top:/bottom,upperdir=/u,workdir=/w,index=off`.
    ///
    /// Backslashes, commas and colons in paths are escaped with a backslash,
    /// as overlayfs expects. Data-only layers follow the regular ones after
    /// `::` separators.
    pub fn render_legacy_options(&self) -> Vec<u8> {
        let mut s = b"lowerdir=".to_vec();
        for (i, p) in self.lowers.iter().enumerate() {
            if i > 0 {
                s.push(b':');
            }
            escape_into(&mut s, p.as_os_str());
        }
        for p in &self.data_lowers {
            s.extend_from_slice(b"::");
            escape_into(&mut s, p.as_os_str());
        }
        if let Some((upper, work)) = &self.upper {
            s.extend_from_slice(b",upperdir=");
            escape_into(&mut s, upper.as_os_str());
            s.extend_from_slice(b",workdir=");
            escape_into(&mut s, work.as_os_str());
        }
        for (key, value) in self.value_options() {
            s.push(b',');
            s.extend_from_slice(key.as_bytes());
            if let Some(v) = value {
                s.push(b'=');
                s.extend_from_slice(v.as_bytes());
            }
        }
        s
    }
}

/// How the new mount API names the layers.
#[derive(Debug, Clone, Copy)]
enum Layers {
    Fds,
    Paths,
}

/// Escapes a path for an overlayfs option string: `\`, `,` and `:` get a
/// leading backslash.
pub fn escape_into(out: &mut Vec<u8>, path: &OsStr) {
    for &b in path.as_bytes() {
        if matches!(b, b'\\' | b',' | b':') {
            out.push(b'\\');
        }
        out.push(b);
    }
}

/// True when `e` says the running kernel lacks what the new mount API path
/// needs: fsopen itself (ENOSYS), or layers passed as file descriptors with
/// `lowerdir+` (overlayfs before Linux 6.13 answers "Bad value", before 6.8
/// "Unknown parameter"). Any other failure is a real error and is returned.
fn new_api_unavailable(e: &Error) -> bool {
    match e {
        Error::Fsopen { source } => source.raw_os_error() == Some(libc::ENOSYS),
        Error::Fsconfig {
            key, source, log, ..
        } => {
            key == "lowerdir+"
                && source.raw_os_error() == Some(libc::EINVAL)
                && (log.contains("Unknown parameter") || log.contains("Bad value"))
        }
        _ => false,
    }
}

/// An option key or value of this crate's own (static, NUL-free) text.
fn static_cstring(s: &'static str) -> CString {
    CString::new(s).unwrap_or_default()
}

fn cstring(path: &Path, role: Role) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::InvalidPath {
        role,
        path: path.to_path_buf(),
    })
}

fn open_dir(path: &Path, role: Role, o_path: bool) -> Result<OwnedFd> {
    let flags = if o_path { libc::O_PATH } else { 0 };
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
        .map(|f: File| OwnedFd::from(f))
        .map_err(|source| Error::Open {
            role,
            path: path.to_path_buf(),
            source,
        })
}

/// Refuses an upper or work dir inside a lower layer (copy-up would change
/// a layer the overlay reads from): walks the dir's ancestors and looks each
/// up among the layers' (dev, ino). The opposite case, a layer inside the
/// upper or work dir, the kernel refuses at mount time ("overlapping").
fn check_not_inside_layer(
    role: Role,
    dir: &Path,
    canonical: &Path,
    layers: &HashMap<(u64, u64), (Role, &Path)>,
) -> Result<()> {
    for ancestor in canonical.ancestors().skip(1) {
        let Ok(md) = std::fs::metadata(ancestor) else {
            continue;
        };
        if let Some((other_role, other)) = layers.get(&(md.dev(), md.ino())) {
            if matches!(other_role, Role::Lower(_) | Role::DataLower(_)) {
                return Err(Error::OverlappingLayers {
                    path: dir.to_path_buf(),
                    role,
                    other: other.to_path_buf(),
                    other_role: *other_role,
                });
            }
        }
    }
    Ok(())
}

/// Checks upper and work against each other; returns their canonical paths.
fn check_upper_work(upper: &Path, work: &Path) -> Result<(PathBuf, PathBuf)> {
    let different = || Error::UpperWorkDifferentFilesystems {
        upper: upper.to_path_buf(),
        work: work.to_path_buf(),
    };
    let stat = |role, p: &Path| {
        std::fs::metadata(p).map_err(|source| Error::Stat {
            role,
            path: p.to_path_buf(),
            source,
        })
    };
    if stat(Role::Upper, upper)?.dev() != stat(Role::Work, work)?.dev() {
        return Err(different());
    }
    let mnt = |role, p: &Path| {
        sys::mount_id(&cstring(p, role)?).map_err(|source| Error::Stat {
            role,
            path: p.to_path_buf(),
            source,
        })
    };
    if let (Some(a), Some(b)) = (mnt(Role::Upper, upper)?, mnt(Role::Work, work)?) {
        if a != b {
            return Err(different());
        }
    }
    let canon = |role, p: &Path| {
        std::fs::canonicalize(p).map_err(|source| Error::Stat {
            role,
            path: p.to_path_buf(),
            source,
        })
    };
    let (cu, cw) = (canon(Role::Upper, upper)?, canon(Role::Work, work)?);
    if cu.starts_with(&cw) || cw.starts_with(&cu) {
        return Err(Error::UpperWorkNested {
            upper: upper.to_path_buf(),
            work: work.to_path_buf(),
        });
    }
    let entries = std::fs::read_dir(work).map_err(|source| Error::ReadDir {
        path: work.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| Error::ReadDir {
            path: work.to_path_buf(),
            source,
        })?;
        let name = entry.file_name();
        let own = WORK_DIR_OWN_ENTRIES.iter().any(|n| OsStr::new(n) == name);
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if !(own && is_dir) {
            return Err(Error::WorkDirNotEmpty {
                path: work.to_path_buf(),
                entry: entry.path(),
            });
        }
    }
    Ok((cu, cw))
}

/// How [`OverlayMount::unmount_with`] detaches the overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Unmount {
    /// umount2(target, 0): fails with EBUSY while files are open.
    #[default]
    Normal,
    /// umount2(target, MNT_DETACH): detach now, free when no longer busy.
    Detach,
}

/// A mounted overlay. Dropping it unmounts (lazily, if it is busy);
/// [`OverlayMount::unmount`] does the same and returns the error.
///
/// Unmounting goes by path, so the guard first checks that the target still
/// shows the overlay's own mount (by mount id) and never unmounts a mount
/// stacked on top of it.
#[derive(Debug)]
#[must_use = "dropping an OverlayMount unmounts it"]
pub struct OverlayMount {
    target: PathBuf,
    ctarget: CString,
    /// The mount's id right after mounting, to notice when something else
    /// was mounted over it (then unmounting the path would hit that mount).
    mnt_id: Option<u64>,
    mounted: bool,
}

impl OverlayMount {
    fn new(target: PathBuf, ctarget: CString) -> Self {
        let mnt_id = sys::mount_id(&ctarget).ok().flatten();
        OverlayMount {
            target,
            ctarget,
            mnt_id,
            mounted: true,
        }
    }

    /// True unless the target now shows a different mount than ours.
    fn still_on_top(&self) -> bool {
        match (self.mnt_id, sys::mount_id(&self.ctarget)) {
            (Some(ours), Ok(Some(now))) => ours == now,
            _ => true,
        }
    }

    /// The mount point.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Unmounts (umount2 without flags).
    ///
    /// # Errors
    /// [`Error::Unmount`], e.g. EBUSY while a file is open on the overlay; the
    /// guard then still unmounts lazily when dropped.
    pub fn unmount(self) -> Result<()> {
        self.unmount_with(Unmount::Normal)
    }

    /// Unmounts with the given mode.
    ///
    /// # Errors
    /// [`Error::Unmount`] with umount2's error, or with EBUSY (and nothing
    /// unmounted) when another mount now covers the target: unmounting the
    /// path would remove that one instead. The guard's drop then leaves the
    /// overlay in place too.
    #[doc(alias = "umount2")]
    pub fn unmount_with(mut self, mode: Unmount) -> Result<()> {
        if !self.still_on_top() {
            // Unmounting the path would remove someone else's mount.
            self.mounted = false;
            return Err(Error::Unmount {
                target: self.target.clone(),
                source: std::io::Error::from_raw_os_error(libc::EBUSY),
            });
        }
        let flags = match mode {
            Unmount::Normal => 0,
            Unmount::Detach => libc::MNT_DETACH,
        };
        sys::umount2(&self.ctarget, flags).map_err(|source| Error::Unmount {
            target: self.target.clone(),
            source,
        })?;
        self.mounted = false;
        Ok(())
    }

    /// Leaves the overlay mounted and returns its mount point (for a
    /// container root that outlives this process, or that pivot_root will
    /// take over).
    pub fn leak(mut self) -> PathBuf {
        self.mounted = false;
        std::mem::take(&mut self.target)
    }
}

impl Drop for OverlayMount {
    fn drop(&mut self) {
        if self.mounted && self.still_on_top() && sys::umount2(&self.ctarget, 0).is_err() {
            let _ = sys::umount2(&self.ctarget, libc::MNT_DETACH);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::os::unix::ffi::OsStringExt;

    /// Splits like overlayfs' ovl_next_opt: on unescaped commas, keeping the
    /// escapes.
    fn split_unescaped(s: &[u8], sep: u8) -> Vec<Vec<u8>> {
        let mut out = vec![Vec::new()];
        let mut i = 0;
        while i < s.len() {
            let b = s[i];
            if b == b'\\' && i + 1 < s.len() {
                let last = out.last_mut().expect("non-empty");
                last.push(b);
                last.push(s[i + 1]);
                i += 2;
                continue;
            }
            if b == sep {
                out.push(Vec::new());
            } else {
                out.last_mut().expect("non-empty").push(b);
            }
            i += 1;
        }
        out
    }

    fn unescape(s: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < s.len() {
            if s[i] == b'\\' && i + 1 < s.len() {
                i += 1;
            }
            out.push(s[i]);
            i += 1;
        }
        out
    }

    /// Parses a rendered option string the way the kernel does: options,
    /// then `lowerdir` layers (`::` starts data-only layers), unescaped.
    #[allow(clippy::type_complexity)]
    fn parse(
        s: &[u8],
    ) -> (
        Vec<Vec<u8>>,
        Vec<Vec<u8>>,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Vec<String>,
    ) {
        let (mut lowers, mut data, mut upper, mut work, mut rest) =
            (Vec::new(), Vec::new(), None, None, Vec::new());
        for opt in split_unescaped(s, b',') {
            let eq = opt.iter().position(|&b| b == b'=');
            let (key, value) = match eq {
                Some(i) => (&opt[..i], Some(&opt[i + 1..])),
                None => (&opt[..], None),
            };
            match (key, value) {
                (b"lowerdir", Some(v)) => {
                    let mut in_data = false;
                    for part in split_unescaped(v, b':') {
                        if part.is_empty() {
                            in_data = true;
                            continue;
                        }
                        if in_data {
                            data.push(unescape(&part));
                        } else {
                            lowers.push(unescape(&part));
                        }
                    }
                }
                (b"upperdir", Some(v)) => upper = Some(unescape(v)),
                (b"workdir", Some(v)) => work = Some(unescape(v)),
                _ => rest.push(String::from_utf8_lossy(&opt).into_owned()),
            }
        }
        (lowers, data, upper, work, rest)
    }

    fn path_bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                3 => prop::sample::select(vec![b'\\', b',', b':', b'=', b'/', b' ']),
                5 => 1u8..=255,
            ],
            1..24,
        )
    }

    fn options() -> impl Strategy<Value = Options> {
        (
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>()),
            proptest::option::of(prop::sample::select(vec![
                RedirectDir::On,
                RedirectDir::Follow,
                RedirectDir::NoFollow,
                RedirectDir::Off,
            ])),
            proptest::option::of(prop::sample::select(vec![Xino::On, Xino::Off, Xino::Auto])),
            any::<bool>(),
        )
            .prop_map(
                |(read_only, volatile, index, metacopy, redirect_dir, xino, userxattr)| Options {
                    read_only,
                    volatile,
                    index,
                    metacopy,
                    redirect_dir,
                    xino,
                    userxattr,
                },
            )
    }

    proptest! {
        /// Every path survives escaping and the kernel's splitting, and every
        /// option appears once with its value.
        #[test]
        fn legacy_options_round_trip(
            lowers in proptest::collection::vec(path_bytes(), 1..6),
            data in proptest::collection::vec(path_bytes(), 0..3),
            upper in proptest::option::of((path_bytes(), path_bytes())),
            options in options(),
        ) {
            let p = |v: &Vec<u8>| PathBuf::from(std::ffi::OsString::from_vec(v.clone()));
            let ov = Overlay {
                lowers: lowers.iter().map(p).collect(),
                data_lowers: data.iter().map(p).collect(),
                upper: upper.as_ref().map(|(u, w)| (p(u), p(w))),
                target: PathBuf::from("/mnt"),
                options: options.clone(),
            };
            let s = ov.render_legacy_options();
            prop_assert!(!s.contains(&0));
            let (l, d, u, w, rest) = parse(&s);
            prop_assert_eq!(l, lowers);
            prop_assert_eq!(d, data.clone());
            prop_assert_eq!(u, upper.as_ref().map(|x| x.0.clone()));
            prop_assert_eq!(w, upper.as_ref().map(|x| x.1.clone()));
            let want: Vec<String> = ov
                .value_options()
                .into_iter()
                .map(|(k, v)| match v { Some(v) => format!("{k}={v}"), None => k.to_string() })
                .collect();
            prop_assert_eq!(&rest, &want);
            prop_assert_eq!(rest.iter().any(|o| o == "userxattr"), options.userxattr);
            prop_assert_eq!(rest.iter().any(|o| o == "volatile"), options.volatile);
            if let Some(b) = options.index {
                let want = format!("index={}", if b { "on" } else { "off" });
                prop_assert!(rest.contains(&want));
            }
            prop_assert_eq!(rest.iter().any(|o| o.starts_with("metacopy=")), options.metacopy.is_some());
        }
    }

    #[test]
    fn escape_examples() {
        let mut v = Vec::new();
        escape_into(&mut v, OsStr::new("/a:b,c\\d"));
        assert_eq!(v, b"/a\\:b\\,c\\\\d");
    }

    #[test]
    fn render_example() {
        let ov = Overlay {
            lowers: vec!["/top".into(), "/bottom".into()],
            data_lowers: vec!["/data".into()],
            upper: Some(("/u".into(), "/w".into())),
            target: "/m".into(),
            options: Options {
                index: Some(false),
                xino: Some(Xino::Auto),
                ..Options::default()
            },
        };
        assert_eq!(
            String::from_utf8_lossy(&ov.render_legacy_options()),
            "lowerdir=/top:/bottom::/data,upperdir=/u,workdir=/w,index=off,xino=auto"
        );
    }
}
