//! Mounting overlays for real, each test in its own mount namespace.

mod common;

use std::path::Path;

use common::{e, ensure, is_mounted, isolated, tree};
use hull_overlayfs::whiteout::{create_whiteout, is_opaque, is_whiteout, set_opaque};
use hull_overlayfs::{Change, ChangeKind, MountApi, Overlay, Unmount, XattrNamespace};

fn write(p: &Path, s: &str) -> Result<(), String> {
    std::fs::write(p, s).map_err(|err| format!("write {p:?}: {err}"))
}

fn read(p: &Path) -> Result<String, String> {
    std::fs::read_to_string(p).map_err(|err| format!("read {p:?}: {err}"))
}

/// The seed's exercise, step by step, with both mount interfaces.
#[test]
fn seed_exercise_merged_view_whiteout_copy_up_and_opaque_dir() {
    for api in [MountApi::New, MountApi::NewPaths, MountApi::Legacy] {
        isolated("seed", |root| seed_exercise(root, api));
    }
}

fn seed_exercise(root: &Path, api: MountApi) -> Result<(), String> {
    let (lower, upper, work, merged) = (
        root.join("lower"),
        root.join("upper"),
        root.join("work"),
        root.join("merged"),
    );
    for d in [&lower, &upper, &work, &merged] {
        std::fs::create_dir(d).map_err(e("mkdir"))?;
    }
    write(&lower.join("in_lower.txt"), "lower only")?;
    write(&lower.join("in_both.txt"), "from lower")?;
    write(&lower.join("modify_me.txt"), "lower v1")?;
    write(&upper.join("in_upper.txt"), "upper only")?;
    write(&upper.join("in_both.txt"), "from upper")?;
    std::fs::create_dir(lower.join("dir")).map_err(e("mkdir lower/dir"))?;
    write(&lower.join("dir/hidden.txt"), "hidden by opaque dir")?;
    let lower_before = tree(&lower);

    let ov = Overlay::builder()
        .lower(&lower)
        .upper(&upper, &work)
        .target(&merged)
        .build()
        .map_err(e("build"))?;
    let mount = ov.mount_with(api).map_err(e("mount"))?;

    // The merged view shows all three files, in_both from upper.
    ensure(read(&merged.join("in_lower.txt"))? == "lower only", || {
        "in_lower missing".into()
    })?;
    ensure(read(&merged.join("in_upper.txt"))? == "upper only", || {
        "in_upper missing".into()
    })?;
    ensure(read(&merged.join("in_both.txt"))? == "from upper", || {
        "in_both not from upper".into()
    })?;

    // Deleting in_lower leaves a whiteout in upper, lower unchanged.
    std::fs::remove_file(merged.join("in_lower.txt")).map_err(e("rm in_lower"))?;
    ensure(!merged.join("in_lower.txt").exists(), || {
        "in_lower still visible".into()
    })?;
    let md = std::fs::symlink_metadata(upper.join("in_lower.txt")).map_err(e("lstat whiteout"))?;
    ensure(is_whiteout(&md), || {
        "upper/in_lower.txt is not a whiteout".into()
    })?;
    ensure(lower.join("in_lower.txt").exists(), || {
        "lower/in_lower.txt gone".into()
    })?;

    // Deleting in_upper removes it from upper (no whiteout needed).
    std::fs::remove_file(merged.join("in_upper.txt")).map_err(e("rm in_upper"))?;
    ensure(
        std::fs::symlink_metadata(upper.join("in_upper.txt")).is_err(),
        || "upper/in_upper.txt still there".into(),
    )?;

    // Modifying a lower file copies it up and leaves lower unchanged.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(merged.join("modify_me.txt"))
            .map_err(e("open modify_me"))?;
        f.write_all(b" +more").map_err(e("append"))?;
    }
    ensure(
        read(&merged.join("modify_me.txt"))? == "lower v1 +more",
        || "merged modify_me wrong".into(),
    )?;
    ensure(
        read(&upper.join("modify_me.txt"))? == "lower v1 +more",
        || "modify_me not copied up".into(),
    )?;
    ensure(read(&lower.join("modify_me.txt"))? == "lower v1", || {
        "lower modify_me changed".into()
    })?;

    // An opaque directory hides lower content: rm -r then mkdir.
    ensure(merged.join("dir/hidden.txt").exists(), || {
        "dir/hidden.txt not visible before".into()
    })?;
    std::fs::remove_dir_all(merged.join("dir")).map_err(e("rm -r dir"))?;
    std::fs::create_dir(merged.join("dir")).map_err(e("mkdir dir"))?;
    ensure(!merged.join("dir/hidden.txt").exists(), || {
        "opaque dir shows lower content".into()
    })?;
    ensure(
        is_opaque(&upper.join("dir"), XattrNamespace::Trusted).map_err(e("is_opaque"))?,
        || "upper/dir not opaque".into(),
    )?;

    mount.unmount().map_err(e("unmount"))?;
    ensure(!is_mounted(&merged), || "still mounted".into())?;
    ensure(tree(&lower) == lower_before, || {
        "lower layer changed".into()
    })?;

    let changes = ov.changes().map_err(e("changes"))?;
    let want = vec![
        Change {
            path: "dir".into(),
            kind: ChangeKind::Opaque,
        },
        Change {
            path: "in_both.txt".into(),
            kind: ChangeKind::Modified,
        },
        Change {
            path: "in_lower.txt".into(),
            kind: ChangeKind::Deleted,
        },
        Change {
            path: "modify_me.txt".into(),
            kind: ChangeKind::Modified,
        },
    ];
    ensure(changes == want, || {
        format!("changes {changes:?}, want {want:?}")
    })
}

/// A lower file that upper does not have is copied up on write; the lower
/// copy stays as it was.
#[test]
fn modifying_a_lower_file_copies_it_up_and_keeps_lower() {
    isolated("copyup", |root| {
        let (lower, upper, work, merged) = (
            root.join("l"),
            root.join("u"),
            root.join("w"),
            root.join("m"),
        );
        for d in [&lower, &upper, &work, &merged] {
            std::fs::create_dir(d).map_err(e("mkdir"))?;
        }
        write(&lower.join("f"), "lower")?;
        let ov = Overlay::builder()
            .lower(&lower)
            .upper(&upper, &work)
            .target(&merged)
            .build()
            .map_err(e("build"))?;
        let m = ov.mount().map_err(e("mount"))?;
        write(&merged.join("f"), "changed")?;
        ensure(read(&upper.join("f"))? == "changed", || {
            "not copied up".into()
        })?;
        ensure(read(&lower.join("f"))? == "lower", || {
            "lower changed".into()
        })?;
        m.unmount().map_err(e("unmount"))?;
        let changes = ov.changes().map_err(e("changes"))?;
        ensure(
            changes
                == vec![Change {
                    path: "f".into(),
                    kind: ChangeKind::Modified,
                }],
            || format!("{changes:?}"),
        )
    });
}

/// 500 lower layers (the kernel's maximum) mount through the new API; the
/// top-most layer's file wins and each layer's own file shows through.
#[test]
fn five_hundred_lower_layers_mount_and_show_the_top_most_file() {
    isolated("500", |root| {
        let mut layers = Vec::new();
        for i in 0..500 {
            // Long-ish names so the option string would exceed one page.
            let d = root.join(format!("layer-with-a-long-name-{i:04}"));
            std::fs::create_dir(&d).map_err(e("mkdir layer"))?;
            write(&d.join("top"), &format!("{i}"))?;
            write(&d.join(format!("only-{i}")), "x")?;
            layers.push(d);
        }
        let merged = root.join("merged");
        std::fs::create_dir(&merged).map_err(e("mkdir"))?;
        // layers[499] is the top-most: given bottom-up, base first.
        let ov = Overlay::builder()
            .lowers_bottom_up(&layers)
            .target(&merged)
            .build()
            .map_err(e("build"))?;
        ensure(ov.lowers()[0] == layers[499], || {
            "bottom-up order not reversed".into()
        })?;
        // mount(2) cannot take this: a clear error, and no mount.
        match ov.mount_with(MountApi::Legacy) {
            Err(hull_overlayfs::Error::OptionsTooLong { len, max, .. }) if len > max => {}
            other => return Err(format!("legacy mount of 500 layers: {other:?}")),
        }
        ensure(!is_mounted(&merged), || {
            "failed legacy mount left a mount".into()
        })?;
        let m = ov.mount().map_err(e("mount 500"))?;
        ensure(read(&merged.join("top"))? == "499", || {
            "top-most file is not from the top layer".into()
        })?;
        ensure(
            merged.join("only-0").exists() && merged.join("only-250").exists(),
            || "lower files missing".into(),
        )?;
        // Read-only without an upper dir.
        ensure(std::fs::write(merged.join("new"), "x").is_err(), || {
            "overlay without upper is writable".into()
        })?;
        m.unmount().map_err(e("unmount"))
    });
}

/// One layer more than the kernel stacks is refused before mounting.
#[test]
fn five_hundred_and_one_layers_are_refused_with_a_typed_error() {
    isolated("501", |root| {
        let d = root.join("l");
        std::fs::create_dir(&d).map_err(e("mkdir"))?;
        let layers: Vec<_> = (0..501).map(|_| d.clone()).collect();
        match Overlay::builder()
            .lowers_top_down(layers)
            .target(root)
            .build()
        {
            Err(hull_overlayfs::Error::TooManyLayers {
                count: 501,
                max: 500,
            }) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
}

/// The guard unmounts on drop; unmount() reports EBUSY while a file is
/// open, and the detach mode then succeeds.
#[test]
fn guard_unmounts_on_drop_and_unmount_reports_busy() {
    isolated("guard", |root| {
        let (lower, lower2, merged) = (root.join("l"), root.join("l2"), root.join("m"));
        for d in [&lower, &lower2, &merged] {
            std::fs::create_dir(d).map_err(e("mkdir"))?;
        }
        write(&lower.join("f"), "x")?;
        let ov = Overlay::builder()
            .lower(&lower)
            .lower(&lower2)
            .target(&merged)
            .build()
            .map_err(e("build"))?;
        {
            let _m = ov.mount().map_err(e("mount"))?;
            ensure(is_mounted(&merged), || "not mounted".into())?;
        }
        ensure(!is_mounted(&merged), || "drop did not unmount".into())?;

        let m = ov.mount().map_err(e("mount"))?;
        let open = std::fs::File::open(merged.join("f")).map_err(e("open"))?;
        match m.unmount() {
            Err(hull_overlayfs::Error::Unmount { source, .. })
                if source.raw_os_error() == Some(libc::EBUSY) => {}
            other => return Err(format!("busy unmount: {other:?}")),
        }
        // The failed unmount consumed the guard, whose drop detached it.
        drop(open);
        ensure(!is_mounted(&merged), || {
            "busy guard not detached on drop".into()
        })?;

        let m = ov.mount().map_err(e("mount"))?;
        let open = std::fs::File::open(merged.join("f")).map_err(e("open"))?;
        m.unmount_with(Unmount::Detach).map_err(e("detach"))?;
        ensure(!is_mounted(&merged), || "detach left the mount".into())?;
        drop(open);

        // Something mounted over the overlay: the guard refuses to unmount
        // the path (it would hit the other mount) and says so.
        let m = ov.mount().map_err(e("mount"))?;
        let t =
            std::ffi::CString::new(merged.as_os_str().as_encoded_bytes()).map_err(e("cstring"))?;
        // SAFETY: NUL-terminated strings outliving the call.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                t.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        ensure(rc == 0, || {
            format!("tmpfs over overlay: {}", std::io::Error::last_os_error())
        })?;
        match m.unmount() {
            Err(hull_overlayfs::Error::Unmount { source, .. })
                if source.raw_os_error() == Some(libc::EBUSY) => {}
            other => return Err(format!("unmount under a stacked mount: {other:?}")),
        }
        let fs_on_top = std::fs::read_to_string("/proc/self/mountinfo").map_err(e("mountinfo"))?;
        let t_str = merged.to_string_lossy().into_owned();
        let stacked: Vec<_> = fs_on_top
            .lines()
            .filter(|l| l.split(' ').nth(4) == Some(&*t_str))
            .collect();
        ensure(
            stacked.len() == 2 && stacked[1].contains(" - tmpfs "),
            || format!("stack changed: {stacked:?}"),
        )?;
        // Clean up both, top first.
        for _ in 0..2 {
            // SAFETY: t is NUL-terminated.
            let rc = unsafe { libc::umount2(t.as_ptr(), 0) };
            ensure(rc == 0, || {
                format!("umount: {}", std::io::Error::last_os_error())
            })?;
        }
        Ok(())
    });
}

/// read_only and the value options reach the kernel (visible in
/// mountinfo), through both interfaces.
#[test]
fn options_reach_the_kernel() {
    for api in [MountApi::New, MountApi::NewPaths, MountApi::Legacy] {
        isolated("opts", |root| {
            let (lower, upper, work, merged) = (
                root.join("l"),
                root.join("u"),
                root.join("w"),
                root.join("m"),
            );
            for d in [&lower, &upper, &work, &merged] {
                std::fs::create_dir(d).map_err(e("mkdir"))?;
            }
            let ov = Overlay::builder()
                .lower(&lower)
                .upper(&upper, &work)
                .target(&merged)
                .read_only(true)
                .index(true)
                .xino(hull_overlayfs::Xino::On)
                .redirect_dir(hull_overlayfs::RedirectDir::NoFollow)
                .volatile(true)
                .build()
                .map_err(e("build"))?;
            let m = ov.mount_with(api).map_err(e("mount"))?;
            let t = merged.to_string_lossy().into_owned();
            let info = std::fs::read_to_string("/proc/self/mountinfo").map_err(e("mountinfo"))?;
            let line = info
                .lines()
                .find(|l| l.split(' ').nth(4) == Some(&t))
                .ok_or("no mountinfo line")?
                .to_string();
            for want in [
                " ro",
                "index=on",
                "redirect_dir=nofollow",
                "volatile",
                "upperdir=",
            ] {
                ensure(line.contains(want), || {
                    format!("{api:?}: {want} missing in {line}")
                })?;
            }
            ensure(std::fs::write(merged.join("x"), "x").is_err(), || {
                "read_only overlay writable".into()
            })?;
            m.unmount().map_err(e("unmount"))?;
            // A volatile mount leaves work/incompat/volatile; the kernel wants it gone.
            std::fs::remove_dir_all(&work).map_err(e("rm work"))?;
            Ok(())
        });
    }
}

fn set_xattr(path: &Path, name: &std::ffi::CStr, value: &[u8]) -> Result<(), String> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(e("cstring"))?;
    // SAFETY: NUL-terminated strings; value valid for its length.
    let rc = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    ensure(rc == 0, || {
        format!(
            "setxattr {name:?} on {path:?}: {}",
            std::io::Error::last_os_error()
        )
    })
}

/// A data-only lower layer mounts; its files are not visible by name, but a
/// metacopy file in a regular layer that redirects to one reads its data
/// (the composefs pattern).
#[test]
fn data_only_lower_layer_serves_data_through_metacopy_redirects() {
    isolated("data", |root| {
        let (lower, data, merged) = (root.join("l"), root.join("d"), root.join("m"));
        for d in [&lower, &data, &merged] {
            std::fs::create_dir(d).map_err(e("mkdir"))?;
        }
        write(&lower.join("visible"), "x")?;
        write(&data.join("blob"), "data from the data-only layer")?;
        // A metadata-only file: right size, no data, metacopy + redirect.
        let f = lower.join("f");
        std::fs::File::create(&f)
            .and_then(|file| file.set_len(29))
            .map_err(e("create metacopy file"))?;
        set_xattr(&f, c"trusted.overlay.metacopy", b"")?;
        set_xattr(&f, c"trusted.overlay.redirect", b"/blob")?;
        let ov = Overlay::builder()
            .lower(&lower)
            .data_lower(&data)
            .target(&merged)
            .metacopy(true)
            .build()
            .map_err(e("build"))?;
        for api in [MountApi::New, MountApi::NewPaths, MountApi::Legacy] {
            let m = ov.mount_with(api).map_err(e("mount"))?;
            ensure(merged.join("visible").exists(), || {
                "lower file missing".into()
            })?;
            ensure(!merged.join("blob").exists(), || {
                format!("{api:?}: data-only file visible by name")
            })?;
            let got = read(&merged.join("f"))?;
            ensure(got == "data from the data-only layer", || {
                format!("{api:?}: metacopy file reads {got:?}")
            })?;
            m.unmount().map_err(e("unmount"))?;
        }
        Ok(())
    });
}

/// Whiteouts and opaque dirs made by hand in a lower layer are honoured by
/// the kernel and recognised by the crate.
#[test]
fn hand_made_whiteout_and_opaque_dir_hide_lower_content() {
    isolated("wh", |root| {
        let (bottom, top, merged) = (root.join("b"), root.join("t"), root.join("m"));
        for d in [&bottom, &top, &merged] {
            std::fs::create_dir(d).map_err(e("mkdir"))?;
        }
        write(&bottom.join("gone"), "x")?;
        std::fs::create_dir(bottom.join("d")).map_err(e("mkdir"))?;
        write(&bottom.join("d/old"), "x")?;
        create_whiteout(&top.join("gone")).map_err(e("whiteout"))?;
        std::fs::create_dir(top.join("d")).map_err(e("mkdir"))?;
        set_opaque(&top.join("d"), XattrNamespace::Trusted).map_err(e("opaque"))?;
        write(&top.join("d/new"), "x")?;
        let md = std::fs::symlink_metadata(top.join("gone")).map_err(e("lstat"))?;
        ensure(is_whiteout(&md), || "not a whiteout".into())?;
        ensure(
            is_opaque(&top.join("d"), XattrNamespace::Trusted).map_err(e("is_opaque"))?,
            || "not opaque".into(),
        )?;
        ensure(
            !is_opaque(&bottom.join("d"), XattrNamespace::Trusted).map_err(e("is_opaque"))?,
            || "bottom/d opaque".into(),
        )?;
        let ov = Overlay::builder()
            .lower(&top)
            .lower(&bottom)
            .target(&merged)
            .build()
            .map_err(e("build"))?;
        let m = ov.mount().map_err(e("mount"))?;
        ensure(!merged.join("gone").exists(), || {
            "whiteout did not hide".into()
        })?;
        ensure(
            !merged.join("d/old").exists() && merged.join("d/new").exists(),
            || "opaque dir did not hide".into(),
        )?;
        m.unmount().map_err(e("unmount"))?;
        // The same layers as upper-vs-lower changes.
        let changes =
            hull_overlayfs::changes(&top, std::slice::from_ref(&bottom), XattrNamespace::Trusted)
                .map_err(e("changes"))?;
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
        ];
        ensure(changes == want, || format!("{changes:?}"))
    });
}

/// Paths with the option string's special characters mount through both
/// interfaces (escaped for mount(2), passed as fds to the new API).
#[test]
fn paths_with_commas_colons_and_backslashes_mount() {
    isolated("odd", |root| {
        let (l0, l1, u, w, m) = (
            root.join("lo,w:er\\0"),
            root.join("low=er 1"),
            root.join("up,per"),
            root.join("wo:rk"),
            root.join("mer,ged"),
        );
        for d in [&l0, &l1, &u, &w, &m] {
            std::fs::create_dir(d).map_err(e("mkdir"))?;
        }
        write(&l0.join("f"), "top")?;
        write(&l1.join("f"), "bottom")?;
        write(&l1.join("g"), "g")?;
        let ov = Overlay::builder()
            .lower(&l0)
            .lower(&l1)
            .upper(&u, &w)
            .target(&m)
            .build()
            .map_err(e("build"))?;
        for api in [MountApi::New, MountApi::NewPaths, MountApi::Legacy] {
            let mount = ov.mount_with(api).map_err(e("mount"))?;
            ensure(
                read(&m.join("f"))? == "top" && read(&m.join("g"))? == "g",
                || format!("{api:?}: wrong view"),
            )?;
            write(&m.join("new"), "n")?;
            mount.unmount().map_err(e("unmount"))?;
            ensure(read(&u.join("new"))? == "n", || {
                format!("{api:?}: upper not used")
            })?;
        }
        Ok(())
    });
}

/// metacopy=on: a chmod copies up metadata only; the walk reports it as
/// modified.
#[test]
fn metacopy_copies_up_metadata_only() {
    isolated("meta", |root| {
        let (lower, upper, work, merged) = (
            root.join("l"),
            root.join("u"),
            root.join("w"),
            root.join("m"),
        );
        for d in [&lower, &upper, &work, &merged] {
            std::fs::create_dir(d).map_err(e("mkdir"))?;
        }
        write(&lower.join("f"), "lower data")?;
        let ov = Overlay::builder()
            .lower(&lower)
            .upper(&upper, &work)
            .target(&merged)
            .metacopy(true)
            .build()
            .map_err(e("build"))?;
        let m = ov.mount().map_err(e("mount"))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(merged.join("f"), std::fs::Permissions::from_mode(0o600))
            .map_err(e("chmod"))?;
        ensure(read(&merged.join("f"))? == "lower data", || {
            "merged content changed".into()
        })?;
        m.unmount().map_err(e("unmount"))?;
        let up = upper.join("f");
        let c = std::ffi::CString::new(up.as_os_str().as_encoded_bytes()).map_err(e("cstring"))?;
        // SAFETY: NUL-terminated strings; size query with a null buffer.
        let n = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                c"trusted.overlay.metacopy".as_ptr(),
                std::ptr::null_mut(),
                0,
            )
        };
        ensure(n >= 0, || "upper/f has no metacopy xattr".into())?;
        let changes = ov.changes().map_err(e("changes"))?;
        ensure(
            changes
                == vec![Change {
                    path: "f".into(),
                    kind: ChangeKind::Modified,
                }],
            || format!("{changes:?}"),
        )
    });
}

/// A detached mount from mount_detached() is attached by the caller with
/// move_mount(2); dropping the fd unattached leaves nothing.
#[test]
fn detached_mount_is_attached_by_the_caller() {
    isolated("detached", |root| {
        let (l0, l1, merged) = (root.join("l0"), root.join("l1"), root.join("m"));
        for d in [&l0, &l1, &merged] {
            std::fs::create_dir(d).map_err(e("mkdir"))?;
        }
        write(&l1.join("f"), "x")?;
        let ov = Overlay::builder()
            .lower(&l0)
            .lower(&l1)
            .target(&merged)
            .build()
            .map_err(e("build"))?;
        drop(ov.mount_detached().map_err(e("detached"))?);
        ensure(!is_mounted(&merged), || {
            "an unattached mount showed up".into()
        })?;
        let fd = ov.mount_detached().map_err(e("detached"))?;
        let dir = std::fs::File::open(&merged).map_err(e("open target"))?;
        use std::os::fd::AsRawFd;
        // SAFETY: valid fds and NUL-terminated empty paths;
        // MOVE_MOUNT_F_EMPTY_PATH (4) | MOVE_MOUNT_T_EMPTY_PATH (0x40).
        let rc = unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                fd.as_raw_fd(),
                c"".as_ptr(),
                dir.as_raw_fd(),
                c"".as_ptr(),
                0x44,
            )
        };
        ensure(rc == 0, || {
            format!("move_mount: {}", std::io::Error::last_os_error())
        })?;
        drop(dir);
        // The fd pins the mount (umount would say EBUSY): close it.
        drop(fd);
        ensure(read(&merged.join("f"))? == "x", || {
            "attached overlay not visible".into()
        })?;
        let t =
            std::ffi::CString::new(merged.as_os_str().as_encoded_bytes()).map_err(e("cstring"))?;
        // SAFETY: t is NUL-terminated.
        let rc = unsafe { libc::umount2(t.as_ptr(), 0) };
        ensure(rc == 0, || {
            format!("umount: {}", std::io::Error::last_os_error())
        })
    });
}

/// A panic while the overlay is mounted unwinds through the guard, which
/// unmounts it.
#[test]
fn guard_unmounts_when_a_panic_unwinds() {
    isolated("panic", |root| {
        let (l0, l1, merged) = (root.join("l0"), root.join("l1"), root.join("m"));
        for d in [&l0, &l1, &merged] {
            std::fs::create_dir(d).map_err(e("mkdir"))?;
        }
        let ov = Overlay::builder()
            .lower(&l0)
            .lower(&l1)
            .target(&merged)
            .build()
            .map_err(e("build"))?;
        let res = std::panic::catch_unwind(|| {
            let _m = ov.mount().expect("mount");
            assert!(is_mounted(&merged));
            panic!("boom while mounted");
        });
        ensure(res.is_err(), || "no panic".into())?;
        ensure(!is_mounted(&merged), || {
            "panic left the overlay mounted".into()
        })
    });
}

/// With redirect_dir=on a lower directory can be renamed; the change walk
/// refuses the redirected dir (its contents are not in the upper dir)
/// instead of reporting a partial list.
#[test]
fn change_walk_refuses_a_renamed_directory() {
    isolated("redirect", |root| {
        let (lower, upper, work, merged) = (
            root.join("l"),
            root.join("u"),
            root.join("w"),
            root.join("m"),
        );
        for d in [&lower, &upper, &work, &merged, &root.join("l/dir")] {
            std::fs::create_dir_all(d).map_err(e("mkdir"))?;
        }
        write(&lower.join("dir/f"), "x")?;
        let ov = Overlay::builder()
            .lower(&lower)
            .upper(&upper, &work)
            .target(&merged)
            .redirect_dir(hull_overlayfs::RedirectDir::On)
            .build()
            .map_err(e("build"))?;
        let m = ov.mount().map_err(e("mount"))?;
        std::fs::rename(merged.join("dir"), merged.join("moved")).map_err(e("rename"))?;
        ensure(read(&merged.join("moved/f"))? == "x", || {
            "renamed dir lost its content".into()
        })?;
        m.unmount().map_err(e("unmount"))?;
        match ov.changes() {
            Err(hull_overlayfs::Error::RedirectedDir { path }) if path == upper.join("moved") => {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    });
}
