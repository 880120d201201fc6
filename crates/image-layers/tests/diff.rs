//! Diffs and commits: overlay uppers and tree differences become layers
//! that reproduce the changed tree when applied on the base.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use common::list_tree;
use hull_image_layers::diff::{DiffOptions, DiffSource, write_diff};
use hull_image_layers::{
    ApplyOptions, CommitOptions, Compression, ImageLayout, PlatformSpec, apply_layer,
};
use proptest::prelude::*;

fn cp_a(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

fn diff_bytes(src: &DiffSource<'_>, opts: &DiffOptions) -> Vec<u8> {
    write_diff(src, Vec::new(), opts).unwrap().1
}

fn plain() -> DiffOptions {
    DiffOptions {
        compression: Compression::None,
        ..Default::default()
    }
}

fn setxattr(p: &Path, n: &str, v: &[u8]) {
    rustix::fs::lsetxattr(p, n, v, rustix::fs::XattrFlags::empty()).unwrap();
}

#[test]
fn tree_diff_applies_back_to_the_same_tree() {
    let t = tempfile::tempdir().unwrap();
    let (base, upper, out) = (
        t.path().join("base"),
        t.path().join("upper"),
        t.path().join("out"),
    );
    fs::create_dir(&base).unwrap();
    fs::create_dir_all(base.join("d/sub")).unwrap();
    fs::write(base.join("d/sub/f"), b"f").unwrap();
    fs::write(base.join("keep"), b"keep").unwrap();
    fs::write(base.join("mod"), b"old").unwrap();
    fs::write(base.join("todir"), b"file").unwrap();
    fs::create_dir(base.join("tofile")).unwrap();
    fs::write(base.join("tofile/x"), b"x").unwrap();
    symlink("keep", base.join("link")).unwrap();
    cp_a(&base, &upper);
    fs::remove_dir_all(upper.join("d/sub")).unwrap();
    fs::write(upper.join("mod"), b"new content").unwrap();
    fs::remove_file(upper.join("todir")).unwrap();
    fs::create_dir(upper.join("todir")).unwrap();
    fs::write(upper.join("todir/in"), b"in").unwrap();
    fs::remove_dir_all(upper.join("tofile")).unwrap();
    fs::write(upper.join("tofile"), b"now file").unwrap();
    fs::remove_file(upper.join("link")).unwrap();
    symlink("mod", upper.join("link")).unwrap();
    fs::set_permissions(upper.join("keep"), fs::Permissions::from_mode(0o4750)).unwrap();
    fs::hard_link(upper.join("keep"), upper.join("keep-link")).unwrap();
    fs::write(upper.join("caf\u{e9}-\u{1F600}"), b"uni").unwrap();
    setxattr(&upper.join("mod"), "user.tag", b"v1");
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let opts = DiffOptions {
            compression: c,
            ..Default::default()
        };
        let layer = diff_bytes(
            &DiffSource::Trees {
                lower: &base,
                upper: &upper,
            },
            &opts,
        );
        let _ = fs::remove_dir_all(&out);
        cp_a(&base, &out);
        apply_layer(&out, &layer[..], c, &ApplyOptions::default()).unwrap();
        assert_eq!(list_tree(&out), list_tree(&upper), "{c:?}");
        assert_eq!(
            fs::metadata(out.join("keep")).unwrap().ino(),
            fs::metadata(out.join("keep-link")).unwrap().ino()
        );
        let mut v = [0u8; 8];
        let n = rustix::fs::lgetxattr(out.join("mod"), "user.tag", &mut v).unwrap();
        assert_eq!(&v[..n], b"v1");
    }
}

#[test]
fn diff_is_deterministic_with_normalised_mtimes() {
    let t = tempfile::tempdir().unwrap();
    let (a, b, empty) = (t.path().join("a"), t.path().join("b"), t.path().join("e"));
    fs::create_dir(&empty).unwrap();
    for dir in [&a, &b] {
        fs::create_dir_all(dir.join("z/y")).unwrap();
        fs::write(dir.join("z/y/x"), b"x").unwrap();
        fs::write(dir.join("m"), b"m").unwrap();
        fs::write(dir.join("a"), b"a").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let opts = DiffOptions {
        mtime: Some(0),
        ..plain()
    };
    let la = diff_bytes(
        &DiffSource::Trees {
            lower: &empty,
            upper: &a,
        },
        &opts,
    );
    let lb = diff_bytes(
        &DiffSource::Trees {
            lower: &empty,
            upper: &b,
        },
        &opts,
    );
    assert_eq!(la, lb);
    let names: Vec<String> = tar::Archive::new(&la[..])
        .entries()
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_string()
        })
        .collect();
    assert_eq!(names, vec!["a", "m", "z", "z/y", "z/y/x"]);
}

#[test]
fn overlay_upper_from_a_real_overlay_mount() {
    let before = hull_testkit::Snapshot::take();
    let t = tempfile::tempdir().unwrap();
    let p = t.path().to_path_buf();
    hull_testkit::in_child(hull_testkit::CLONE_NEWNS, move || {
        let (lower, upper, work, merged, out) = (
            p.join("lower"),
            p.join("upper"),
            p.join("work"),
            p.join("merged"),
            p.join("out"),
        );
        for d in [&lower, &upper, &work, &merged] {
            fs::create_dir(d).map_err(|e| e.to_string())?;
        }
        fs::create_dir_all(lower.join("opaque/old")).map_err(|e| e.to_string())?;
        fs::create_dir_all(lower.join("gone")).map_err(|e| e.to_string())?;
        fs::write(lower.join("gone/f"), b"f").map_err(|e| e.to_string())?;
        fs::write(lower.join("del"), b"d").map_err(|e| e.to_string())?;
        fs::write(lower.join("mod"), b"old").map_err(|e| e.to_string())?;
        let opts = format!(
            "lowerdir={},upperdir={},workdir={},redirect_dir=off,metacopy=off,index=off",
            lower.display(),
            upper.display(),
            work.display()
        );
        let st = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &opts])
            .arg(&merged)
            .status()
            .map_err(|e| e.to_string())?;
        if !st.success() {
            return Err("mount overlay failed".into());
        }
        fs::remove_dir_all(merged.join("gone")).map_err(|e| e.to_string())?;
        fs::remove_file(merged.join("del")).map_err(|e| e.to_string())?;
        fs::write(merged.join("mod"), b"new").map_err(|e| e.to_string())?;
        fs::remove_dir_all(merged.join("opaque")).map_err(|e| e.to_string())?;
        fs::create_dir(merged.join("opaque")).map_err(|e| e.to_string())?;
        fs::write(merged.join("opaque/new"), b"n").map_err(|e| e.to_string())?;
        fs::write(merged.join("added"), b"a").map_err(|e| e.to_string())?;
        let expected = list_tree(&merged);
        let st = Command::new("umount")
            .arg(&merged)
            .status()
            .map_err(|e| e.to_string())?;
        if !st.success() {
            return Err("umount failed".into());
        }
        let layer = write_diff(&DiffSource::OverlayUpper(&upper), Vec::new(), &plain())
            .map_err(|e| e.to_string())?
            .1;
        cp_a(&lower, &out);
        apply_layer(
            &out,
            &layer[..],
            Compression::None,
            &ApplyOptions::default(),
        )
        .map_err(|e| e.to_string())?;
        let got = list_tree(&out);
        if got != expected {
            return Err(format!("trees differ:\n{got:#?}\nvs\n{expected:#?}"));
        }
        Ok(())
    });
    before.assert_no_leaks(&[]);
}

#[test]
fn commit_on_base_then_unpack_gives_the_new_tree() {
    let t = tempfile::tempdir().unwrap();
    let layout = ImageLayout::create(t.path().join("layout")).unwrap();
    let (empty, base, upper) = (
        t.path().join("e"),
        t.path().join("base"),
        t.path().join("upper"),
    );
    fs::create_dir(&empty).unwrap();
    fs::create_dir(&base).unwrap();
    fs::write(base.join("hello"), b"hello").unwrap();
    let opts = CommitOptions {
        created_by: Some("test".into()),
        ..Default::default()
    };
    layout
        .commit(
            None,
            &DiffSource::Trees {
                lower: &empty,
                upper: &base,
            },
            "base",
            &opts,
        )
        .unwrap();
    cp_a(&base, &upper);
    fs::write(upper.join("world"), b"world").unwrap();
    fs::remove_file(upper.join("hello")).unwrap();
    let zopts = CommitOptions {
        diff: DiffOptions {
            compression: Compression::Zstd,
            ..Default::default()
        },
        ..opts
    };
    layout
        .commit(
            Some("base"),
            &DiffSource::Trees {
                lower: &base,
                upper: &upper,
            },
            "app:v2",
            &zopts,
        )
        .unwrap();
    let img = layout.resolve("app:v2", &PlatformSpec::default()).unwrap();
    assert_eq!(img.layers().unwrap().len(), 2);
    assert_eq!(img.config.history().as_ref().unwrap().len(), 2);
    let target = t.path().join("rootfs");
    let mut reports = 0;
    layout
        .unpack(
            "app:v2",
            &PlatformSpec::default(),
            &target,
            &ApplyOptions::default(),
            &mut |_| reports += 1,
        )
        .unwrap();
    assert!(reports > 0);
    assert_eq!(list_tree(&target), list_tree(&upper));
    assert_eq!(layout.tags().unwrap(), vec!["app:v2", "base"]);
}

#[test]
fn failed_unpack_leaves_target_untouched() {
    let t = tempfile::tempdir().unwrap();
    let layout = ImageLayout::create(t.path().join("layout")).unwrap();
    let (empty, base) = (t.path().join("e"), t.path().join("base"));
    fs::create_dir(&empty).unwrap();
    fs::create_dir(&base).unwrap();
    fs::write(base.join("f"), vec![3u8; 10_000]).unwrap();
    layout
        .commit(
            None,
            &DiffSource::Trees {
                lower: &empty,
                upper: &base,
            },
            "img",
            &CommitOptions::default(),
        )
        .unwrap();
    let img = layout.resolve("img", &PlatformSpec::default()).unwrap();
    let blob = layout.blob_path(img.manifest.layers()[0].digest()).unwrap();
    let mut data = fs::read(&blob).unwrap();
    let n = data.len();
    data[n - 20] ^= 1;
    fs::write(&blob, data).unwrap();
    let target = t.path().join("rootfs");
    let e = layout
        .unpack(
            "img",
            &PlatformSpec::default(),
            &target,
            &ApplyOptions::default(),
            &mut |_| {},
        )
        .unwrap_err();
    assert!(
        matches!(e, hull_image_layers::Error::DigestMismatch { .. }),
        "{e}"
    );
    assert!(!target.exists());
    let leftovers: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 3, "{leftovers:?}");
}

#[derive(Debug, Clone)]
enum Op {
    Write(usize, Vec<u8>, u32),
    Mkdir(usize),
    Remove(usize),
    Symlink(usize, usize),
    Hardlink(usize, usize),
    Chmod(usize, u32),
    Chown(usize, u32),
    Xattr(usize, u8),
    /// Set the mtime to a whole second (so only content can tell files apart).
    Touch(usize),
    Fifo(usize),
    Rename(usize, usize),
}

const PATHS: &[&str] = &["a", "b", "c", "a/x", "a/y", "b/x", "b/z", "a/x/q", "c/d"];

fn op() -> impl Strategy<Value = Op> {
    let p = 0..PATHS.len();
    let mode = prop::sample::select(vec![0o644u32, 0o755, 0o600, 0o4755, 0o2711]);
    prop_oneof![
        (
            p.clone(),
            prop::collection::vec(any::<u8>(), 0..40),
            mode.clone()
        )
            .prop_map(|(p, d, m)| Op::Write(p, d, m)),
        p.clone().prop_map(Op::Mkdir),
        p.clone().prop_map(Op::Remove),
        (p.clone(), p.clone()).prop_map(|(a, b)| Op::Symlink(a, b)),
        (p.clone(), p.clone()).prop_map(|(a, b)| Op::Hardlink(a, b)),
        (p.clone(), mode).prop_map(|(a, m)| Op::Chmod(a, m)),
        (p.clone(), prop::sample::select(vec![0u32, 1000])).prop_map(|(a, u)| Op::Chown(a, u)),
        p.clone().prop_map(Op::Touch),
        p.clone().prop_map(Op::Fifo),
        (p.clone(), p.clone()).prop_map(|(a, b)| Op::Rename(a, b)),
        // Not a newline: the `tar` crate's PAX reader splits records there
        // (see xattr_value_with_newline_is_dropped_not_fatal in apply.rs).
        (p, any::<u8>().prop_filter("newline", |v| *v != b'\n')).prop_map(|(a, v)| Op::Xattr(a, v)),
    ]
}

fn run(root: &Path, ops: &[Op]) {
    for op in ops {
        let path = |i: usize| root.join(PATHS[i]);
        let _ = match op {
            Op::Write(i, d, m) => {
                let p = path(*i);
                let _ = fs::remove_file(&p);
                fs::write(&p, d)
                    .and_then(|()| fs::set_permissions(&p, fs::Permissions::from_mode(*m)))
            }
            Op::Mkdir(i) => fs::create_dir(path(*i)),
            Op::Remove(i) => fs::remove_file(path(*i)).or_else(|_| fs::remove_dir_all(path(*i))),
            Op::Symlink(i, t) => symlink(PATHS[*t], path(*i)),
            Op::Hardlink(i, t) => {
                if fs::symlink_metadata(path(*t)).is_ok_and(|m| m.is_file()) {
                    fs::hard_link(path(*t), path(*i))
                } else {
                    Ok(())
                }
            }
            Op::Chmod(i, m) => {
                if fs::symlink_metadata(path(*i)).is_ok_and(|m| !m.is_symlink()) {
                    fs::set_permissions(path(*i), fs::Permissions::from_mode(*m))
                } else {
                    Ok(())
                }
            }
            Op::Chown(i, u) => std::os::unix::fs::lchown(path(*i), Some(*u), Some(*u)),
            Op::Touch(i) => {
                let t = rustix::fs::Timespec {
                    tv_sec: 1_700_000_000,
                    tv_nsec: 0,
                };
                rustix::fs::utimensat(
                    rustix::fs::CWD,
                    path(*i),
                    &rustix::fs::Timestamps {
                        last_access: t,
                        last_modification: t,
                    },
                    rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(Into::into)
            }
            Op::Fifo(i) => rustix::fs::mknodat(
                rustix::fs::CWD,
                path(*i),
                rustix::fs::FileType::Fifo,
                rustix::fs::Mode::from_raw_mode(0o644),
                0,
            )
            .map_err(Into::into),
            Op::Rename(a, b) => fs::rename(path(*a), path(*b)),
            Op::Xattr(i, v) => {
                if fs::symlink_metadata(path(*i)).is_ok_and(|m| !m.is_symlink()) {
                    rustix::fs::lsetxattr(
                        path(*i),
                        "user.p",
                        &[*v],
                        rustix::fs::XattrFlags::empty(),
                    )
                    .map_err(Into::into)
                } else {
                    Ok(())
                }
            }
        };
    }
}

fn xattrs_of(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for k in list_tree(root).keys() {
        let p = root.join(k);
        if fs::symlink_metadata(&p).unwrap().is_symlink() {
            continue;
        }
        let mut v = [0u8; 4];
        if let Ok(n) = rustix::fs::lgetxattr(&p, "user.p", &mut v) {
            out.push((k.clone(), v[..n].to_vec()));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_random_changes(base_ops in prop::collection::vec(op(), 0..12), ops in prop::collection::vec(op(), 1..12)) {
        let t = tempfile::tempdir().unwrap();
        let (base, upper, out) = (t.path().join("base"), t.path().join("upper"), t.path().join("out"));
        fs::create_dir(&base).unwrap();
        run(&base, &base_ops);
        cp_a(&base, &upper);
        run(&upper, &ops);
        let layer = diff_bytes(&DiffSource::Trees { lower: &base, upper: &upper }, &plain());
        cp_a(&base, &out);
        apply_layer(&out, &layer[..], Compression::None, &ApplyOptions::default()).unwrap();
        prop_assert_eq!(list_tree(&out), list_tree(&upper));
        prop_assert_eq!(xattrs_of(&out), xattrs_of(&upper));
    }
}

#[test]
fn overlay_upper_with_user_xattr_markers() {
    let t = tempfile::tempdir().unwrap();
    let (base, upper, out) = (
        t.path().join("base"),
        t.path().join("upper"),
        t.path().join("out"),
    );
    fs::create_dir_all(base.join("o/old")).unwrap();
    fs::write(base.join("gone"), b"g").unwrap();
    fs::write(base.join("keep"), b"k").unwrap();
    fs::create_dir_all(upper.join("o")).unwrap();
    fs::write(upper.join("o/new"), b"n").unwrap();
    setxattr(&upper.join("o"), "user.overlay.opaque", b"y");
    fs::write(upper.join("gone"), b"").unwrap();
    setxattr(&upper.join("gone"), "user.overlay.whiteout", b"");
    let layer = diff_bytes(&DiffSource::OverlayUpper(&upper), &plain());
    cp_a(&base, &out);
    apply_layer(
        &out,
        &layer[..],
        Compression::None,
        &ApplyOptions::default(),
    )
    .unwrap();
    let names: Vec<String> = list_tree(&out).into_keys().collect();
    assert_eq!(names, vec!["keep", "o", "o/new"]);
}

#[test]
fn opaque_marker_directly_follows_its_directory() {
    let t = tempfile::tempdir().unwrap();
    let upper = t.path().join("upper");
    fs::create_dir_all(upper.join("o")).unwrap();
    for n in ["!first", "+plus", "-dash", "z"] {
        fs::write(upper.join("o").join(n), n).unwrap();
    }
    setxattr(&upper.join("o"), "trusted.overlay.opaque", b"y");
    let layer = diff_bytes(&DiffSource::OverlayUpper(&upper), &plain());
    let names: Vec<String> = tar::Archive::new(&layer[..])
        .entries()
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_string()
        })
        .collect();
    assert_eq!(
        names,
        vec![
            "o",
            "o/.wh..wh..opq",
            "o/!first",
            "o/+plus",
            "o/-dash",
            "o/z"
        ]
    );
}

fn overlay_round_trip(base_ops: &[Op], ops: &[Op]) {
    let before = hull_testkit::Snapshot::take();
    let t = tempfile::tempdir().unwrap();
    let p = t.path().to_path_buf();
    let (base_ops, ops) = (base_ops.to_vec(), ops.to_vec());
    hull_testkit::in_child(hull_testkit::CLONE_NEWNS, move || {
        let (lower, upper, work, merged, out) = (
            p.join("lower"),
            p.join("upper"),
            p.join("work"),
            p.join("merged"),
            p.join("out"),
        );
        for d in [&lower, &upper, &work, &merged] {
            fs::create_dir(d).map_err(|e| e.to_string())?;
        }
        run(&lower, &base_ops);
        let opts = format!(
            "lowerdir={},upperdir={},workdir={},redirect_dir=off,metacopy=off,index=off",
            lower.display(),
            upper.display(),
            work.display()
        );
        let st = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &opts])
            .arg(&merged)
            .status()
            .map_err(|e| e.to_string())?;
        if !st.success() {
            return Err("mount overlay".into());
        }
        run(&merged, &ops);
        let (want, want_x) = (list_tree(&merged), xattrs_of(&merged));
        let st = Command::new("umount")
            .arg(&merged)
            .status()
            .map_err(|e| e.to_string())?;
        if !st.success() {
            return Err("umount".into());
        }
        let layer = write_diff(&DiffSource::OverlayUpper(&upper), Vec::new(), &plain())
            .map_err(|e| e.to_string())?
            .1;
        cp_a(&lower, &out);
        apply_layer(
            &out,
            &layer[..],
            Compression::None,
            &ApplyOptions::default(),
        )
        .map_err(|e| e.to_string())?;
        let (got, got_x) = (list_tree(&out), xattrs_of(&out));
        if got != want || got_x != want_x {
            return Err(format!(
                "trees differ:\n{got:#?}\n{got_x:?}\nvs merged\n{want:#?}\n{want_x:?}"
            ));
        }
        Ok(())
    });
    before.assert_no_leaks(&[]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// The same round trip through a real overlay mount: random operations
    /// on the merged view, the upper directory diffed into a layer, applied
    /// on the lower tree, give the merged view.
    #[test]
    fn overlay_round_trip_random_changes(base_ops in prop::collection::vec(op(), 0..12), ops in prop::collection::vec(op(), 1..12)) {
        overlay_round_trip(&base_ops, &ops);
    }
}
