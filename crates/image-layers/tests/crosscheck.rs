//! Cross-checks against tools written elsewhere: umoci (OCI layouts, layer
//! generation and extraction) and skopeo (layout validation, docker-archive
//! export). Skipped with a note when the tools are not installed (CI
//! installs them from .ci/apt-packages).

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use common::list_tree;
use hull_image_layers::diff::{DiffOptions, DiffSource};
use hull_image_layers::{
    ApplyOptions, CommitOptions, Compression, ImageLayout, PlatformSpec, import_docker_archive,
};

fn have(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("{tool} not installed: cross-check skipped");
    }
    found
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn gzip_opts() -> CommitOptions {
    CommitOptions {
        diff: DiffOptions {
            compression: Compression::Gzip,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A two-layer image `app:v2` (second layer with whiteouts) in `layout`.
fn our_image(t: &Path, layout: &ImageLayout) {
    let (e, base, upper) = (t.join("e"), t.join("base"), t.join("upper"));
    fs::create_dir_all(&e).unwrap();
    fs::create_dir_all(base.join("etc/conf.d")).unwrap();
    fs::write(base.join("etc/conf.d/a"), b"a").unwrap();
    fs::write(base.join("etc/hostname"), b"box\n").unwrap();
    fs::create_dir_all(base.join("usr/bin")).unwrap();
    fs::write(base.join("usr/bin/tool"), b"#!/bin/sh\n").unwrap();
    symlink("tool", base.join("usr/bin/alias")).unwrap();
    layout
        .commit(
            None,
            &DiffSource::Trees {
                lower: &e,
                upper: &base,
            },
            "app:v1",
            &gzip_opts(),
        )
        .unwrap();
    run(Command::new("cp").arg("-a").arg(&base).arg(&upper));
    fs::remove_dir_all(upper.join("etc/conf.d")).unwrap();
    fs::write(upper.join("etc/hostname"), b"other\n").unwrap();
    fs::write(upper.join("new"), b"new").unwrap();
    layout
        .commit(
            Some("app:v1"),
            &DiffSource::Trees {
                lower: &base,
                upper: &upper,
            },
            "app:v2",
            &gzip_opts(),
        )
        .unwrap();
}

fn names_and_content(root: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    list_tree(root)
        .into_iter()
        .map(|(k, n)| match n {
            common::Node::File { data, .. } => (k, Some(data)),
            common::Node::Symlink { target, .. } => (k, Some(target)),
            _ => (k, None),
        })
        .collect()
}

#[test]
fn umoci_unpacks_our_images_like_we_do() {
    if !have("umoci") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let layout = ImageLayout::create(t.path().join("L")).unwrap();
    our_image(t.path(), &layout);
    let ours = t.path().join("ours");
    layout
        .unpack(
            "app:v2",
            &PlatformSpec::default(),
            &ours,
            &ApplyOptions::default(),
            &mut |_| {},
        )
        .unwrap();
    let bundle = t.path().join("bundle");
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:app:v2", t.path().join("L").display()))
        .arg(&bundle));
    assert_eq!(
        names_and_content(&bundle.join("rootfs")),
        names_and_content(&ours)
    );
}

#[test]
fn we_unpack_umoci_images_like_umoci_does() {
    if !have("umoci") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let l = t.path().join("L");
    let b = t.path().join("bundle");
    run(Command::new("umoci").arg("init").arg("--layout").arg(&l));
    run(Command::new("umoci")
        .arg("new")
        .arg("--image")
        .arg(format!("{}:base", l.display())));
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:base", l.display()))
        .arg(&b));
    let rootfs = b.join("rootfs");
    fs::create_dir_all(rootfs.join("opt/app/sub")).unwrap();
    fs::write(rootfs.join("opt/app/sub/f"), b"f").unwrap();
    fs::write(rootfs.join("opt/app/g"), b"g").unwrap();
    symlink("/opt/app/g", rootfs.join("opt/link")).unwrap();
    run(Command::new("umoci")
        .arg("repack")
        .arg("--image")
        .arg(format!("{}:v1", l.display()))
        .arg(&b));
    fs::remove_dir_all(rootfs.join("opt/app/sub")).unwrap();
    fs::write(rootfs.join("opt/app/g"), b"changed").unwrap();
    run(Command::new("umoci")
        .arg("repack")
        .arg("--image")
        .arg(format!("{}:v2", l.display()))
        .arg(&b));
    let layout = ImageLayout::open(&l).unwrap();
    let ours = t.path().join("ours");
    layout
        .unpack(
            "v2",
            &PlatformSpec::default(),
            &ours,
            &ApplyOptions::default(),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(names_and_content(&ours), names_and_content(&rootfs));
}

#[test]
fn skopeo_accepts_our_layout_and_its_docker_archive_imports_back() {
    if !have("skopeo") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let layout = ImageLayout::create(t.path().join("L")).unwrap();
    our_image(t.path(), &layout);
    let src = format!("oci:{}:app:v2", t.path().join("L").display());
    // A copy verifies every digest and size we wrote.
    run(Command::new("skopeo")
        .args(["copy", "-q", &src])
        .arg(format!("oci:{}:copy", t.path().join("L2").display())));
    let archive = t.path().join("d.tar");
    run(Command::new("skopeo")
        .args(["copy", "-q", &src])
        .arg(format!(
            "docker-archive:{}:localhost/example/app:v2",
            archive.display()
        )));
    let imported = ImageLayout::create(t.path().join("I")).unwrap();
    let images = import_docker_archive(&imported, fs::File::open(&archive).unwrap()).unwrap();
    assert_eq!(images[0].tags, vec!["localhost/example/app:v2"]);
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    layout
        .unpack(
            "app:v2",
            &PlatformSpec::default(),
            &a,
            &ApplyOptions::default(),
            &mut |_| {},
        )
        .unwrap();
    imported
        .unpack(
            "localhost/example/app:v2",
            &PlatformSpec::default(),
            &b,
            &ApplyOptions::default(),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(list_tree(&a), list_tree(&b));
}
