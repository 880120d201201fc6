//! Whiteouts and opaque directories, in overlayfs form and in the OCI layer
//! (tar) form.
//!
//! In an overlay's upper (or lower) directory:
//! - a **whiteout** is a character device with device number 0:0; it hides
//!   the same name in every layer below;
//! - an **opaque directory** carries the xattr `trusted.overlay.opaque=y`
//!   (`user.overlay.opaque=y` for overlays mounted with `userxattr`); it
//!   hides the contents of the same directory in every layer below.
//!
//! In an OCI image layer the same facts are file names: `.wh.<name>` deletes
//! `<name>`, and `.wh..wh..opq` in a directory makes it opaque
//! ([`OciName`]).

use std::ffi::{CString, OsStr, OsString};
use std::fs::Metadata;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::error::{Error, Result, Role};
use crate::sys;

/// Where overlayfs keeps its own extended attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum XattrNamespace {
    /// `trusted.overlay.*` (the default; needs CAP_SYS_ADMIN in the initial
    /// user namespace to read or write).
    #[default]
    Trusted,
    /// `user.overlay.*` (mount option `userxattr`, for user namespaces).
    User,
}

impl XattrNamespace {
    /// The name of the opaque-directory attribute.
    pub fn opaque_xattr(self) -> &'static str {
        match self {
            XattrNamespace::Trusted => "trusted.overlay.opaque",
            XattrNamespace::User => "user.overlay.opaque",
        }
    }

    /// The name of the redirect attribute (a directory renamed or moved
    /// with `redirect_dir=on`, or a metacopy file's data source).
    pub fn redirect_xattr(self) -> &'static str {
        match self {
            XattrNamespace::Trusted => "trusted.overlay.redirect",
            XattrNamespace::User => "user.overlay.redirect",
        }
    }

    fn redirect_cstr(self) -> &'static std::ffi::CStr {
        match self {
            XattrNamespace::Trusted => c"trusted.overlay.redirect",
            XattrNamespace::User => c"user.overlay.redirect",
        }
    }

    fn opaque_cstr(self) -> &'static std::ffi::CStr {
        match self {
            XattrNamespace::Trusted => c"trusted.overlay.opaque",
            XattrNamespace::User => c"user.overlay.opaque",
        }
    }
}

fn cpath(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::InvalidPath {
        role: Role::Upper,
        path: path.to_path_buf(),
    })
}

/// True when `md` (from `symlink_metadata`) describes an overlay whiteout: a
/// character device numbered 0:0.
pub fn is_whiteout(md: &Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

/// Creates a whiteout at `path` (mknod of a 0:0 character device), hiding
/// `path` in the layers below.
///
/// # Errors
/// [`Error::CreateWhiteout`] (EEXIST if `path` exists, EPERM without
/// CAP_MKNOD).
#[doc(alias = "mknod")]
pub fn create_whiteout(path: &Path) -> Result<()> {
    sys::mknod_whiteout(&cpath(path)?).map_err(|source| Error::CreateWhiteout {
        path: path.to_path_buf(),
        source,
    })
}

/// Marks the directory `dir` opaque: `<ns>.overlay.opaque=y`.
///
/// # Errors
/// [`Error::SetXattr`] (EPERM for `trusted.*` without CAP_SYS_ADMIN).
#[doc(alias = "setxattr")]
pub fn set_opaque(dir: &Path, ns: XattrNamespace) -> Result<()> {
    sys::lsetxattr(&cpath(dir)?, ns.opaque_cstr(), b"y").map_err(|source| Error::SetXattr {
        path: dir.to_path_buf(),
        name: ns.opaque_xattr(),
        source,
    })
}

/// True when the directory `dir` is opaque (`<ns>.overlay.opaque` is `y`).
///
/// The value `x` (a directory that may hold xattr whiteouts, Linux 6.7+) is
/// not opaque.
///
/// # Errors
/// [`Error::GetXattr`].
#[doc(alias = "getxattr")]
pub fn is_opaque(dir: &Path, ns: XattrNamespace) -> Result<bool> {
    let v = sys::lgetxattr(&cpath(dir)?, ns.opaque_cstr()).map_err(|source| Error::GetXattr {
        path: dir.to_path_buf(),
        name: ns.opaque_xattr(),
        source,
    })?;
    Ok(v.as_deref() == Some(b"y"))
}

/// The redirect target recorded on `path` (`<ns>.overlay.redirect`), if any.
///
/// # Errors
/// [`Error::GetXattr`].
#[doc(alias = "getxattr")]
pub fn redirect(path: &Path, ns: XattrNamespace) -> Result<Option<Vec<u8>>> {
    sys::lgetxattr(&cpath(path)?, ns.redirect_cstr()).map_err(|source| Error::GetXattr {
        path: path.to_path_buf(),
        name: ns.redirect_xattr(),
        source,
    })
}

/// Prefix of an OCI whiteout file name.
pub const OCI_WHITEOUT_PREFIX: &str = ".wh.";
/// The OCI opaque marker's file name.
pub const OCI_OPAQUE_MARKER: &str = ".wh..wh..opq";

/// What a file name in an OCI layer means for whiteouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OciName<'a> {
    /// An ordinary entry with this name.
    Regular(&'a OsStr),
    /// `.wh.<name>`: `<name>` is deleted.
    Whiteout(&'a OsStr),
    /// `.wh..wh..opq`: the directory holding it is opaque.
    Opaque,
}

impl<'a> OciName<'a> {
    /// Classifies one path component of a layer entry. Returns `None` for a
    /// name no layer may hold: empty, `.`, `..`, containing `/` or NUL, a
    /// whiteout of such a name, or another `.wh..wh.` reserved name.
    pub fn parse(name: &'a OsStr) -> Option<Self> {
        let b = name.as_bytes();
        if !valid_component(b) {
            return None;
        }
        if b == OCI_OPAQUE_MARKER.as_bytes() {
            return Some(OciName::Opaque);
        }
        if let Some(rest) = b.strip_prefix(OCI_WHITEOUT_PREFIX.as_bytes()) {
            // `.wh..wh.*` names are reserved for markers.
            if !valid_component(rest) || rest.starts_with(OCI_WHITEOUT_PREFIX.as_bytes()) {
                return None;
            }
            return Some(OciName::Whiteout(OsStr::from_bytes(rest)));
        }
        Some(OciName::Regular(name))
    }

    /// The file name that represents this in a layer.
    pub fn to_os_string(self) -> OsString {
        match self {
            OciName::Regular(n) => n.to_os_string(),
            OciName::Whiteout(n) => {
                let mut v = OCI_WHITEOUT_PREFIX.as_bytes().to_vec();
                v.extend_from_slice(n.as_bytes());
                OsString::from_vec(v)
            }
            OciName::Opaque => OsString::from(OCI_OPAQUE_MARKER),
        }
    }
}

fn valid_component(b: &[u8]) -> bool {
    !b.is_empty() && b != b"." && b != b".." && !b.contains(&b'/') && !b.contains(&0)
}

/// The OCI whiteout file name for a deleted `name` (`.wh.<name>`).
pub fn oci_whiteout_name(name: &OsStr) -> OsString {
    OciName::Whiteout(name).to_os_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                3 => prop::sample::select(vec![b'.', b'w', b'h', b'/', b'o', b'p', b'q', 0u8]),
                2 => any::<u8>(),
            ],
            0..16,
        )
    }

    proptest! {
        /// Parsing never panics, and whatever parses renders back to the
        /// same bytes.
        #[test]
        fn oci_name_parse_render_round_trip(bytes in name()) {
            let n = OsStr::from_bytes(&bytes);
            if let Some(parsed) = OciName::parse(n) {
                let rendered = parsed.to_os_string();
                prop_assert_eq!(rendered.as_bytes(), &bytes[..]);
                prop_assert!(!bytes.contains(&b'/') && !bytes.contains(&0));
            }
        }

        /// The whiteout of any valid ordinary name parses back to that name.
        #[test]
        fn oci_whiteout_of_valid_name_round_trips(bytes in name()) {
            let n = OsStr::from_bytes(&bytes);
            if let Some(OciName::Regular(_)) = OciName::parse(n) {
                let wh = oci_whiteout_name(n);
                prop_assert_eq!(OciName::parse(&wh), Some(OciName::Whiteout(n)));
            }
        }
    }

    #[test]
    fn oci_name_examples() {
        fn p(s: &str) -> Option<OciName<'_>> {
            OciName::parse(OsStr::new(s))
        }
        assert_eq!(p(".wh..wh..opq"), Some(OciName::Opaque));
        assert_eq!(p(".wh.foo"), Some(OciName::Whiteout(OsStr::new("foo"))));
        assert_eq!(p("foo"), Some(OciName::Regular(OsStr::new("foo"))));
        assert_eq!(p(".wh."), None);
        assert_eq!(p(".wh.."), None);
        assert_eq!(p(".wh..wh.x"), None);
        assert_eq!(p("a/b"), None);
        assert_eq!(p(""), None);
        assert_eq!(p(".."), None);
    }
}
