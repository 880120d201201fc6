//! Bad input gets a typed error naming the path at fault, and leaves no
//! mount behind (checked by `isolated` with mountinfo snapshots).

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use common::{e, ensure, is_mounted, isolated};
use hull_overlayfs::{Error, MountApi, Overlay, Role};

fn dirs(root: &Path, names: &[&str]) -> Result<Vec<PathBuf>, String> {
    names
        .iter()
        .map(|n| {
            let p = root.join(n);
            std::fs::create_dir_all(&p).map_err(e("mkdir"))?;
            Ok(p)
        })
        .collect()
}

fn mount_tmpfs(target: &Path, ro: bool) -> Result<(), String> {
    let t = std::ffi::CString::new(target.as_os_str().as_bytes()).map_err(e("cstring"))?;
    let flags = if ro { libc::MS_RDONLY } else { 0 };
    // SAFETY: all strings are NUL-terminated and outlive the call.
    let rc = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            t.as_ptr(),
            c"tmpfs".as_ptr(),
            flags,
            std::ptr::null(),
        )
    };
    ensure(rc == 0, || {
        format!(
            "mount tmpfs {target:?}: {}",
            std::io::Error::last_os_error()
        )
    })
}

fn umount(target: &Path) {
    if let Ok(t) = std::ffi::CString::new(target.as_os_str().as_bytes()) {
        // SAFETY: t is NUL-terminated.
        unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) };
    }
}

#[test]
fn bad_input_gets_typed_errors_naming_the_path_and_leaves_no_mount() {
    isolated("bad", |root| {
        let d = dirs(root, &["l1", "l2", "u", "w", "m"])?;
        let (l1, l2, u, w, m) = (&d[0], &d[1], &d[2], &d[3], &d[4]);
        let base = || Overlay::builder().lower(l1).lower(l2).upper(u, w).target(m);

        // Missing lower directory, named with its position.
        let missing = root.join("nope");
        match base().lower(&missing).build() {
            Err(Error::Stat {
                role: Role::Lower(2),
                path,
                ..
            }) if path == missing => {}
            other => return Err(format!("missing lower: {other:?}")),
        }
        // Missing target.
        match Overlay::builder()
            .lower(l1)
            .lower(l2)
            .target(&missing)
            .build()
        {
            Err(Error::Stat {
                role: Role::Target,
                path,
                ..
            }) if path == missing => {}
            other => return Err(format!("missing target: {other:?}")),
        }
        // A file where a directory belongs.
        let file = root.join("file");
        std::fs::write(&file, "x").map_err(e("write"))?;
        match base().lower(&file).build() {
            Err(Error::NotADirectory {
                role: Role::Lower(2),
                path,
            }) if path == file => {}
            other => return Err(format!("file as lower: {other:?}")),
        }
        // The same directory twice, also through a symlink.
        match base().lower(l1).build() {
            Err(Error::DuplicateDir {
                first: Role::Lower(0),
                second: Role::Lower(2),
                ..
            }) => {}
            other => return Err(format!("duplicate lower: {other:?}")),
        }
        let link = root.join("link");
        std::os::unix::fs::symlink(l2, &link).map_err(e("symlink"))?;
        match Overlay::builder()
            .lower(l1)
            .lower(l2)
            .upper(&link, w)
            .target(m)
            .build()
        {
            Err(Error::DuplicateDir {
                path,
                first: Role::Lower(1),
                second: Role::Upper,
            }) if path == link => {}
            other => return Err(format!("lower as upper via symlink: {other:?}")),
        }
        // Upper and work on different filesystems.
        let other_fs = root.join("tmpfs");
        std::fs::create_dir(&other_fs).map_err(e("mkdir"))?;
        mount_tmpfs(&other_fs, false)?;
        let res = base().upper(u, &other_fs).build();
        umount(&other_fs);
        match res {
            Err(Error::UpperWorkDifferentFilesystems { upper, work })
                if &upper == u && work == other_fs => {}
            other => return Err(format!("different fs: {other:?}")),
        }
        // Work inside upper.
        let nested = u.join("work");
        std::fs::create_dir(&nested).map_err(e("mkdir"))?;
        match base().upper(u, &nested).build() {
            Err(Error::UpperWorkNested { .. }) => {}
            other => return Err(format!("nested: {other:?}")),
        }
        std::fs::remove_dir(&nested).map_err(e("rmdir"))?;
        // A work dir with foreign content.
        std::fs::write(w.join("stray"), "x").map_err(e("write"))?;
        match base().build() {
            Err(Error::WorkDirNotEmpty { path, entry })
                if &path == w && entry == w.join("stray") => {}
            other => return Err(format!("non-empty work: {other:?}")),
        }
        std::fs::remove_file(w.join("stray")).map_err(e("rm"))?;
        // Upper inside a lower layer.
        let inside = l2.join("upper");
        std::fs::create_dir(&inside).map_err(e("mkdir"))?;
        match base().upper(&inside, w).build() {
            Err(Error::OverlappingLayers {
                path,
                role: Role::Upper,
                other,
                other_role: Role::Lower(1),
            }) if path == inside && &other == l2 => {}
            other => return Err(format!("upper inside lower: {other:?}")),
        }
        std::fs::remove_dir(&inside).map_err(e("rmdir"))?;
        // A lower layer inside the upper dir: the kernel refuses it at mount
        // time, through either interface, and nothing stays mounted.
        let low_in_up = u.join("layer");
        std::fs::create_dir(&low_in_up).map_err(e("mkdir"))?;
        let ov = base()
            .lower(&low_in_up)
            .build()
            .map_err(e("build lower-in-upper"))?;
        for api in [MountApi::New, MountApi::Legacy] {
            match ov.mount_with(api) {
                Err(Error::Fsconfig { .. }) | Err(Error::Mount { .. }) => {}
                other => return Err(format!("lower inside upper ({api:?}): {other:?}")),
            }
            ensure(!is_mounted(m), || "mounted anyway".into())?;
        }
        std::fs::remove_dir(&low_in_up).map_err(e("rmdir"))?;
        // Structural errors.
        match Overlay::builder().target(m).build() {
            Err(Error::NoLowerLayers) => {}
            other => return Err(format!("no lowers: {other:?}")),
        }
        match Overlay::builder().lower(l1).target(m).build() {
            Err(Error::SingleLayerWithoutUpper { path }) if &path == l1 => {}
            other => return Err(format!("single layer: {other:?}")),
        }
        match Overlay::builder()
            .lower(l1)
            .lower(l2)
            .target(m)
            .volatile(true)
            .build()
        {
            Err(Error::NeedsUpper { option: "volatile" }) => {}
            other => return Err(format!("volatile without upper: {other:?}")),
        }
        match base().userxattr(true).index(true).build() {
            Err(Error::ConflictingOptions {
                first: "userxattr",
                second: "index=on",
            }) => {}
            other => return Err(format!("userxattr+index: {other:?}")),
        }
        let nul = PathBuf::from(OsStr::from_bytes(b"/tmp/a\0b"));
        match base().lower(&nul).build() {
            Err(Error::InvalidPath {
                role: Role::Lower(2),
                path,
            }) if path == nul => {}
            other => return Err(format!("NUL in path: {other:?}")),
        }
        // The kernel's own refusal (upper on a read-only mount), through both
        // interfaces: a typed error naming the key/path, and no mount.
        let ro = root.join("ro");
        std::fs::create_dir(&ro).map_err(e("mkdir"))?;
        mount_tmpfs(&ro, false)?;
        let (ru, rw) = (ro.join("u"), ro.join("w"));
        std::fs::create_dir(&ru).map_err(e("mkdir"))?;
        std::fs::create_dir(&rw).map_err(e("mkdir"))?;
        let ro_c = std::ffi::CString::new(ro.as_os_str().as_bytes()).map_err(e("cstring"))?;
        // SAFETY: ro_c is NUL-terminated; remount read-only.
        let rc = unsafe {
            libc::mount(
                std::ptr::null(),
                ro_c.as_ptr(),
                std::ptr::null(),
                libc::MS_REMOUNT | libc::MS_RDONLY,
                std::ptr::null(),
            )
        };
        ensure(rc == 0, || {
            format!("remount ro: {}", std::io::Error::last_os_error())
        })?;
        let ov = Overlay::builder()
            .lower(l1)
            .upper(&ru, &rw)
            .target(m)
            .build()
            .map_err(e("build ro"))?;
        let new = ov.mount_with(MountApi::New);
        let legacy = ov.mount_with(MountApi::Legacy);
        umount(&ro);
        match new {
            Err(Error::Fsconfig {
                key, path: Some(p), ..
            }) if key == "upperdir" && p == ru => {}
            other => return Err(format!("ro upper (new API): {other:?}")),
        }
        match legacy {
            Err(Error::Mount { target, .. }) if &target == m => {}
            other => return Err(format!("ro upper (mount(2)): {other:?}")),
        }
        ensure(!is_mounted(m), || {
            "a failed mount left the target mounted".into()
        })
    });
}

/// A path over fsconfig's 255-byte string limit is refused for the
/// path-string interface, and mounts by file descriptor.
#[test]
fn path_over_fsconfig_string_limit_mounts_by_fd_only() {
    isolated("long", |root| {
        let mut deep = root.to_path_buf();
        while deep.as_os_str().len() <= 300 {
            deep.push("a-rather-long-directory-name");
        }
        std::fs::create_dir_all(&deep).map_err(e("mkdir deep"))?;
        let (l1, m) = (root.join("l1"), root.join("m"));
        std::fs::create_dir(&l1).map_err(e("mkdir"))?;
        std::fs::create_dir(&m).map_err(e("mkdir"))?;
        let ov = Overlay::builder()
            .lower(&deep)
            .lower(&l1)
            .target(&m)
            .build()
            .map_err(e("build"))?;
        match ov.fsconfig_params() {
            Err(Error::PathTooLong {
                role: Role::Lower(0),
                path,
                max: 255,
            }) if path == deep => {}
            other => return Err(format!("fsconfig_params: {other:?}")),
        }
        match ov.mount_with(MountApi::NewPaths) {
            Err(Error::PathTooLong { .. }) => {}
            other => return Err(format!("NewPaths: {other:?}")),
        }
        ensure(!is_mounted(&m), || "mounted after refusal".into())?;
        ov.mount_with(MountApi::New)
            .map_err(e("by fd"))?
            .unmount()
            .map_err(e("unmount"))?;
        // Auto picks file descriptors for it by itself.
        ov.mount()
            .map_err(e("auto"))?
            .unmount()
            .map_err(e("unmount"))
    });
}

/// An option string over one page is refused before mount(2) with the
/// lengths; the new API mounts the same overlay.
#[test]
fn option_string_over_one_page_is_refused_for_mount2_only() {
    isolated("page", |root| {
        let mut layers = Vec::new();
        for i in 0..40 {
            let p = root.join(format!("{}-{i}", "x".repeat(120)));
            std::fs::create_dir(&p).map_err(e("mkdir"))?;
            layers.push(p);
        }
        let m = root.join("m");
        std::fs::create_dir(&m).map_err(e("mkdir"))?;
        let ov = Overlay::builder()
            .lowers_top_down(&layers)
            .target(&m)
            .build()
            .map_err(e("build"))?;
        match ov.mount_with(MountApi::Legacy) {
            Err(Error::OptionsTooLong { len, max, target }) if len > max && target == m => {}
            other => return Err(format!("{other:?}")),
        }
        ensure(!is_mounted(&m), || "mounted after refusal".into())?;
        ov.mount_with(MountApi::New)
            .map_err(e("new API"))?
            .unmount()
            .map_err(e("unmount"))
    });
}
