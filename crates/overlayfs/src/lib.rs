//! Overlay mounts through the new mount API, whiteouts and opaque
//! directories, and the change list of an upper directory.
//!
//! - [`Overlay`] is a typed, validated description of an overlay: lower
//!   layers (**the first is the top-most**), an optional upper and work
//!   directory (without them the overlay is read-only), the mount point and
//!   [`Options`]. [`Overlay::mount`] mounts it with fsopen/fsconfig/fsmount/
//!   move_mount, adding one layer per fsconfig call (`lowerdir+`, as a path
//!   or, for paths over fsconfig's 255-byte string limit, as a file
//!   descriptor), so the one-page limit of mount(2) does not apply and 500
//!   layers mount; on kernels without that it falls back to mount(2).
//!   [`Overlay::fsconfig_params`] gives the same configuration as plain data
//!   for a caller that runs fsconfig itself (in a forked child, in another
//!   mount namespace), and [`Overlay::mount_detached`] a detached mount fd
//!   to attach by fd.
//! - [`OverlayMount`] unmounts when dropped; [`OverlayMount::unmount`]
//!   returns the error instead.
//! - [`whiteout`] creates and recognises whiteouts (0:0 character devices)
//!   and opaque directories, and maps them to OCI layer names.
//! - [`changes()`] walks an upper directory and lists what it added, modified,
//!   deleted or made opaque: plain data that another crate can write as a
//!   tar layer.
//!
//! # Example
//!
//! ```no_run
//! use hull_overlayfs::{ChangeKind, Overlay};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Layers in OCI order (base first), as an image manifest lists them.
//! let overlay = Overlay::builder()
//!     .lowers_bottom_up(["/img/layer0", "/img/layer1"])
//!     .upper("/ctr/upper", "/ctr/work")
//!     .target("/ctr/rootfs")
//!     .build()?;
//! let mount = overlay.mount()?;
//! std::fs::write("/ctr/rootfs/hello", "hi")?;
//! mount.unmount()?;
//! for change in overlay.changes()? {
//!     if change.kind == ChangeKind::Added {
//!         println!("added {}", change.path.display());
//!     }
//! }
//! # Ok(()) }
//! ```

#![deny(unsafe_code)]
#![deny(missing_docs)]

mod changes;
mod error;
mod overlay;
mod sys;
pub mod whiteout;

pub use changes::{Change, ChangeKind, changes};
pub use error::{Error, Result, Role};
pub use overlay::{
    FSCONFIG_MAX_STRING, FsconfigParam, MAX_LAYERS, MountApi, Options, Overlay, OverlayBuilder,
    OverlayMount, RedirectDir, Unmount, Xino, escape_into,
};
pub use whiteout::XattrNamespace;
