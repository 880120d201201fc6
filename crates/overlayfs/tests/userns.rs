//! An overlay mounted inside a user namespace, with `userxattr`.

mod common;

use std::path::Path;

use common::{e, ensure, isolated};
use hull_overlayfs::whiteout::{is_opaque, is_whiteout};
use hull_overlayfs::{Change, ChangeKind, Overlay, XattrNamespace};

/// Maps uid/gid 0 of the new user namespace to our own (outside) ids: the
/// one mapping a process may write for itself, after denying setgroups.
fn map_self() -> Result<(), String> {
    std::fs::write("/proc/self/uid_map", "0 0 1").map_err(e("uid_map"))?;
    std::fs::write("/proc/self/setgroups", "deny").map_err(e("setgroups"))?;
    std::fs::write("/proc/self/gid_map", "0 0 1").map_err(e("gid_map"))
}

fn in_user_ns(root: &Path) -> Result<(), String> {
    map_self()?;
    let (lower, upper, work, merged) = (
        root.join("l"),
        root.join("u"),
        root.join("w"),
        root.join("m"),
    );
    let ov = Overlay::builder()
        .lower(&lower)
        .upper(&upper, &work)
        .target(&merged)
        .userxattr(true)
        .build()
        .map_err(e("build"))?;
    ensure(ov.xattr_namespace() == XattrNamespace::User, || {
        "namespace not user".into()
    })?;
    let m = ov.mount().map_err(e("mount in userns"))?;
    std::fs::remove_file(merged.join("gone")).map_err(e("rm gone"))?;
    std::fs::remove_dir_all(merged.join("d")).map_err(e("rm -r d"))?;
    std::fs::create_dir(merged.join("d")).map_err(e("mkdir d"))?;
    std::fs::write(merged.join("d/new"), "n").map_err(e("write d/new"))?;
    std::fs::write(merged.join("keep"), "changed").map_err(e("write keep"))?;
    ensure(!merged.join("d/old").exists(), || {
        "opaque dir shows lower content".into()
    })?;
    m.unmount().map_err(e("unmount"))?;
    let md = std::fs::symlink_metadata(upper.join("gone")).map_err(e("lstat"))?;
    ensure(is_whiteout(&md), || "no whiteout in upper".into())?;
    ensure(
        is_opaque(&upper.join("d"), XattrNamespace::User).map_err(e("is_opaque"))?,
        || "upper/d has no user.overlay.opaque".into(),
    )?;
    let changes = ov.changes().map_err(e("changes"))?;
    let want = vec![
        Change {
            path: "d".into(),
            kind: ChangeKind::Opaque,
        },
        Change {
            path: "d/new".into(),
            kind: ChangeKind::Added,
        },
        Change {
            path: "gone".into(),
            kind: ChangeKind::Deleted,
        },
        Change {
            path: "keep".into(),
            kind: ChangeKind::Modified,
        },
    ];
    ensure(changes == want, || format!("changes {changes:?}"))
}

#[test]
fn userxattr_overlay_inside_a_user_namespace() {
    isolated("userns", |root| {
        for d in ["l", "l/d", "u", "w", "m"] {
            std::fs::create_dir(root.join(d)).map_err(e("mkdir"))?;
        }
        std::fs::write(root.join("l/gone"), "x").map_err(e("write"))?;
        std::fs::write(root.join("l/keep"), "x").map_err(e("write"))?;
        std::fs::write(root.join("l/d/old"), "x").map_err(e("write"))?;
        let r = root.to_path_buf();
        // A grandchild in a new user + mount namespace; it maps itself.
        hull_testkit::in_child(
            hull_testkit::CLONE_NEWUSER | hull_testkit::CLONE_NEWNS,
            move || in_user_ns(&r),
        );
        // Seen from outside: the opaque marker is a user xattr, not trusted.
        let d = root.join("u/d");
        ensure(
            is_opaque(&d, XattrNamespace::User).map_err(e("is_opaque"))?,
            || "no user.overlay.opaque".into(),
        )?;
        ensure(
            !is_opaque(&d, XattrNamespace::Trusted).map_err(e("is_opaque"))?,
            || "trusted.overlay.opaque set".into(),
        )?;
        Ok(())
    });
}
