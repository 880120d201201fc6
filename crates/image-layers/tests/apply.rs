//! Applying layers: entry types, metadata, whiteouts, compression, diff_ids.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use common::Layer;
use hull_image_layers::{
    ApplyOptions, Compression, DevicePolicy, Error, Ownership, WhiteoutMode, apply_layer,
    is_incomplete, sha256_digest,
};
use tar::EntryType;

fn apply(root: &Path, tar: &[u8]) -> hull_image_layers::Result<hull_image_layers::ApplyStats> {
    apply_layer(root, tar, Compression::None, &ApplyOptions::default())
}

fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(p, name, &mut buf[..]).ok()?;
    buf.truncate(n);
    Some(buf)
}

#[test]
fn every_entry_type_with_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut l = Layer::new();
    l.dir("etc")
        .file_mode("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644)
        .file_mode("bin/su", b"\x7fELF", 0o4755)
        .symlink("etc/link", "passwd")
        .hardlink("etc/hard", "etc/passwd")
        .raw(b"run/fifo", EntryType::Fifo, b"", b"", 0o600)
        .raw_owned(
            b"home/user/f",
            EntryType::Regular,
            b"u",
            b"",
            0o600,
            1000,
            1001,
            &[("user.note", b"hi"), ("trusted.overlay.opaque", b"y")],
        )
        .raw(b"dev/null", EntryType::Char, b"", b"", 0o666)
        .file("\u{1F600}/caf\u{e9}", b"unicode");
    let tar = l.tar();
    let stats = apply(root, &tar).unwrap();
    assert_eq!(stats.diff_id, sha256_digest(&tar));
    assert!(!is_incomplete(root));
    assert_eq!(
        fs::read(root.join("etc/passwd")).unwrap(),
        b"root:x:0:0::/root:/bin/sh\n"
    );
    let su = fs::metadata(root.join("bin/su")).unwrap();
    assert_eq!(su.mode() & 0o7777, 0o4755, "setuid kept");
    assert_eq!(su.mtime(), 1_600_000_000);
    assert_eq!(
        fs::read_link(root.join("etc/link")).unwrap(),
        Path::new("passwd")
    );
    assert_eq!(
        fs::metadata(root.join("etc/hard")).unwrap().ino(),
        fs::metadata(root.join("etc/passwd")).unwrap().ino()
    );
    assert!(
        fs::symlink_metadata(root.join("run/fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let f = fs::metadata(root.join("home/user/f")).unwrap();
    assert_eq!((f.uid(), f.gid()), (1000, 1001));
    assert_eq!(
        xattr(&root.join("home/user/f"), "user.note").as_deref(),
        Some(&b"hi"[..])
    );
    assert_eq!(
        xattr(&root.join("home/user/f"), "trusted.overlay.opaque"),
        None,
        "overlay xattrs never pass"
    );
    assert!(
        fs::symlink_metadata(root.join("dev/null"))
            .unwrap()
            .file_type()
            .is_char_device()
    );
    assert_eq!(
        fs::read(root.join("\u{1F600}/caf\u{e9}")).unwrap(),
        b"unicode"
    );
    assert_eq!(
        fs::metadata(root.join("etc")).unwrap().mtime(),
        1_600_000_000,
        "dir mtime set last"
    );
}

#[test]
fn gzip_and_zstd_layers_and_diff_id_check() {
    for c in [Compression::Gzip, Compression::Zstd] {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Layer::new();
        l.file("a", &vec![7u8; 100_000]);
        let plain = {
            let mut l2 = Layer::new();
            l2.file("a", &vec![7u8; 100_000]);
            l2.tar()
        };
        let data = if c == Compression::Gzip {
            l.gzip()
        } else {
            l.zstd()
        };
        assert_eq!(Compression::detect(&data), c);
        let mut opts = ApplyOptions {
            expected_diff_id: Some(sha256_digest(&plain)),
            ..Default::default()
        };
        apply_layer(dir.path(), &data[..], c, &opts).unwrap();
        assert_eq!(fs::read(dir.path().join("a")).unwrap().len(), 100_000);
        opts.expected_diff_id = Some(sha256_digest(b"other"));
        let e = apply_layer(dir.path(), &data[..], c, &opts).unwrap_err();
        assert!(matches!(e, Error::DiffIdMismatch { .. }), "{e}");
        assert!(is_incomplete(dir.path()));
    }
}

#[test]
fn whiteouts_hide_lower_files_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut l = Layer::new();
    l.file("a/keep", b"k")
        .file("a/gone", b"g")
        .file("b/x", b"x")
        .file("c/y", b"y");
    apply(root, &l.tar()).unwrap();
    let mut l = Layer::new();
    l.whiteout("a/.wh.gone")
        .whiteout(".wh.b")
        .whiteout(".wh.missing")
        .whiteout("nodir/.wh.x");
    apply(root, &l.tar()).unwrap();
    assert!(root.join("a/keep").exists());
    assert!(!root.join("a/gone").exists());
    assert!(!root.join("b").exists());
    assert!(root.join("c/y").exists());
}

#[test]
fn whiteout_does_not_hide_same_layer_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Layer::new();
    l.file("f", b"new").whiteout(".wh.f");
    apply(dir.path(), &l.tar()).unwrap();
    assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"new");
}

#[test]
fn opaque_directory_keeps_only_this_layer_in_either_order() {
    for opaque_first in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut l = Layer::new();
        l.file("d/old", b"o")
            .file("d/sub/old", b"o")
            .file("other", b"x");
        apply(root, &l.tar()).unwrap();
        let mut l = Layer::new();
        l.dir("d");
        if opaque_first {
            l.whiteout("d/.wh..wh..opq");
        }
        l.dir("d/sub").file("d/sub/new", b"n").file("d/new", b"n");
        if !opaque_first {
            l.whiteout("d/.wh..wh..opq");
        }
        apply(root, &l.tar()).unwrap();
        let mut names: Vec<String> = common::list_tree(root).into_keys().collect();
        names.sort();
        assert_eq!(
            names,
            vec!["d", "d/new", "d/sub", "d/sub/new", "other"],
            "opaque_first={opaque_first}"
        );
    }
}

#[test]
fn file_and_directory_replace_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut l = Layer::new();
    l.file("x/inner", b"i").file("y", b"file");
    apply(root, &l.tar()).unwrap();
    let mut l = Layer::new();
    l.file("x", b"now a file").dir("y").file("y/z", b"z");
    apply(root, &l.tar()).unwrap();
    assert_eq!(fs::read(root.join("x")).unwrap(), b"now a file");
    assert_eq!(fs::read(root.join("y/z")).unwrap(), b"z");
}

#[test]
fn hardlink_to_lower_layer_file_and_symlink_retarget() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut l = Layer::new();
    l.file("lib/a.so", b"A").symlink("lib/cur", "a.so");
    apply(root, &l.tar()).unwrap();
    let mut l = Layer::new();
    l.hardlink("lib/a-link.so", "lib/a.so")
        .file("lib/b.so", b"B")
        .symlink("lib/cur", "b.so");
    apply(root, &l.tar()).unwrap();
    assert_eq!(
        fs::metadata(root.join("lib/a-link.so")).unwrap().ino(),
        fs::metadata(root.join("lib/a.so")).unwrap().ino()
    );
    assert_eq!(fs::read(root.join("lib/cur")).unwrap(), b"B");
}

#[test]
fn ownership_shift_and_mode_changes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut l = Layer::new();
    l.raw_owned(b"f", EntryType::Regular, b"", b"", 0o640, 5, 6, &[]);
    let opts = ApplyOptions {
        ownership: Ownership::Shift {
            uid: 100_000,
            gid: 200_000,
        },
        ..Default::default()
    };
    apply_layer(root, &l.tar()[..], Compression::None, &opts).unwrap();
    let m = fs::metadata(root.join("f")).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.mode() & 0o7777),
        (100_005, 200_006, 0o640)
    );
    let mut l = Layer::new();
    l.raw_owned(b"f", EntryType::Regular, b"", b"", 0o2755, 7, 8, &[]);
    apply(root, &l.tar()).unwrap();
    let m = fs::metadata(root.join("f")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (7, 8, 0o2755));
}

#[test]
fn device_policy() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Layer::new();
    l.raw(b"dev/sda", EntryType::Block, b"", b"", 0o600);
    let tar = l.tar();
    let skip = ApplyOptions {
        devices: DevicePolicy::Skip,
        ..Default::default()
    };
    apply_layer(dir.path(), &tar[..], Compression::None, &skip).unwrap();
    assert!(!dir.path().join("dev/sda").exists());
    let reject = ApplyOptions {
        devices: DevicePolicy::Reject,
        ..Default::default()
    };
    let e = apply_layer(dir.path(), &tar[..], Compression::None, &reject).unwrap_err();
    assert!(matches!(e, Error::DeviceRejected { .. }), "{e}");
}

#[test]
fn overlay_whiteout_mode_makes_overlay_whiteouts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut l = Layer::new();
    l.dir("d")
        .whiteout("d/.wh..wh..opq")
        .whiteout(".wh.gone")
        .file("d/f", b"f");
    let opts = ApplyOptions {
        whiteouts: WhiteoutMode::Overlay,
        ..Default::default()
    };
    apply_layer(root, &l.tar()[..], Compression::None, &opts).unwrap();
    let w = fs::symlink_metadata(root.join("gone")).unwrap();
    assert!(w.file_type().is_char_device());
    assert_eq!(w.rdev(), 0);
    assert_eq!(
        xattr(&root.join("d"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(root.join("d/f").exists());
}

#[test]
fn empty_layer_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    let tar = Layer::new().tar();
    let s = apply(dir.path(), &tar).unwrap();
    assert_eq!(s.entries, 0);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn pax_uid_gid_beyond_ustar_range() {
    let dir = tempfile::tempdir().unwrap();
    // Hand-written PAX records, as Go's archive/tar writes for large ids.
    let mut tar = Vec::new();
    {
        let mut b = tar::Builder::new(&mut tar);
        b.append_pax_extensions([("uid", &b"3000000"[..]), ("gid", &b"3000001"[..])])
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_path("big").unwrap();
        h.set_size(0);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, &b""[..]).unwrap();
        b.finish().unwrap();
    }
    apply(dir.path(), &tar).unwrap();
    let m = fs::metadata(dir.path().join("big")).unwrap();
    assert_eq!((m.uid(), m.gid()), (3_000_000, 3_000_001));
}

#[test]
fn overlay_mode_whiteout_keeps_same_layer_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Layer::new();
    l.file("f", b"kept").whiteout(".wh.f");
    let opts = ApplyOptions {
        whiteouts: WhiteoutMode::Overlay,
        ..Default::default()
    };
    apply_layer(dir.path(), &l.tar()[..], Compression::None, &opts).unwrap();
    assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"kept");
}

#[test]
fn whiteout_and_recreate_in_one_layer_in_either_order() {
    for whiteout_first in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut l = Layer::new();
        l.file("x/lower", b"l");
        apply(root, &l.tar()).unwrap();
        let mut l = Layer::new();
        if whiteout_first {
            l.whiteout(".wh.x").file("x", b"new");
        } else {
            l.file("x", b"new").whiteout(".wh.x");
        }
        apply(root, &l.tar()).unwrap();
        assert_eq!(
            fs::read(root.join("x")).unwrap(),
            b"new",
            "whiteout_first={whiteout_first}"
        );
    }
}

#[test]
fn unprivileged_unpack_with_rootless_policies() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    std::os::unix::fs::chown(&root, Some(1000), Some(1000)).unwrap();
    let mut l = Layer::new();
    l.raw(b"ro", EntryType::Directory, b"", b"", 0o555)
        .file("ro/inside", b"written before the dir became read-only")
        .raw(b"dev/sda", EntryType::Block, b"", b"", 0o600)
        .raw_owned(
            b"f",
            EntryType::Regular,
            b"f",
            b"",
            0o4755,
            0,
            0,
            &[("user.ok", b"1"), ("trusted.no", b"1")],
        );
    let tar = l.tar();
    let r2 = root.clone();
    hull_testkit::in_child(0, move || {
        // SAFETY: plain syscalls in a single-threaded forked child.
        let ok = unsafe {
            libc::setgroups(0, std::ptr::null()) == 0
                && libc::setgid(1000) == 0
                && libc::setuid(1000) == 0
        };
        if !ok {
            return Err("drop privileges".into());
        }
        let strict = ApplyOptions {
            devices: DevicePolicy::Skip,
            ..Default::default()
        };
        // Keeping the layer's root ownership needs CAP_CHOWN.
        match apply_layer(&r2, &tar[..], Compression::None, &strict) {
            Err(Error::Unpack {
                op: "fchownat" | "fchown",
                ..
            }) => {}
            other => return Err(format!("expected a chown failure, got {other:?}")),
        }
        let _ = fs::remove_file(r2.join(hull_image_layers::INCOMPLETE_MARKER));
        let opts = ApplyOptions {
            ownership: Ownership::Ignore,
            devices: DevicePolicy::Skip,
            ..Default::default()
        };
        apply_layer(&r2, &tar[..], Compression::None, &opts).map_err(|e| e.to_string())?;
        Ok(())
    });
    assert_eq!(fs::metadata(root.join("ro")).unwrap().mode() & 0o777, 0o555);
    assert!(root.join("ro/inside").exists());
    assert!(!root.join("dev/sda").exists());
    let f = fs::metadata(root.join("f")).unwrap();
    assert_eq!((f.uid(), f.mode() & 0o7777), (1000, 0o4755));
    assert_eq!(
        xattr(&root.join("f"), "user.ok").as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(xattr(&root.join("f"), "trusted.no"), None);
    assert!(!is_incomplete(&root));
}

#[test]
fn xattr_value_with_newline_is_dropped_not_fatal() {
    use hull_image_layers::XattrPolicy;
    let dir = tempfile::tempdir().unwrap();
    let mut l = Layer::new();
    l.raw_owned(
        b"f",
        EntryType::Regular,
        b"f",
        b"",
        0o644,
        0,
        0,
        &[("user.a", b"x\ny"), ("user.b", b"ok")],
    );
    let tar = l.tar();
    apply(dir.path(), &tar).unwrap();
    assert_eq!(
        xattr(&dir.path().join("f"), "user.b").as_deref(),
        Some(&b"ok"[..])
    );
    assert_eq!(xattr(&dir.path().join("f"), "user.a"), None);
    let strict = ApplyOptions {
        xattrs: XattrPolicy::Strict,
        ..Default::default()
    };
    let e = apply_layer(dir.path(), &tar[..], Compression::None, &strict).unwrap_err();
    assert!(matches!(e, Error::ReadTar { .. }), "{e}");
}
