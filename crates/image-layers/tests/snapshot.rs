//! Snapshots: layers extracted once per chain ID with overlay whiteouts,
//! stacked by a real overlay mount, prepared, committed, removed.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::process::Command;

use common::{Layer, list_tree};
use hull_image_layers::oci::{
    ConfigBuilder, Descriptor, ImageConfigurationBuilder, ImageManifestBuilder, MediaType,
    RootFsBuilder,
};
use hull_image_layers::snapshot::{SnapshotKind, Snapshotter};
use hull_image_layers::{
    ApplyOptions, Compression, Error, ImageLayout, PlatformSpec, sha256_digest,
};

/// Stores hand-made layers (gzip) as an image tagged `tag`.
pub fn image_from_layers(layout: &ImageLayout, tag: &str, layers: Vec<Vec<u8>>) -> Descriptor {
    let mut diff_ids = Vec::new();
    let mut descs = Vec::new();
    for tar in layers {
        diff_ids.push(sha256_digest(&tar).to_string());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let gz = gz.finish().unwrap();
        let (d, n) = layout.write_blob(&gz).unwrap();
        descs.push(Descriptor::new(Compression::Gzip.media_type(), n, d));
    }
    let config = ImageConfigurationBuilder::default()
        .architecture("amd64")
        .os("linux")
        .config(
            ConfigBuilder::default()
                .cmd(vec!["/bin/sh".to_string()])
                .build()
                .unwrap(),
        )
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(diff_ids)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let cd = layout
        .write_json_blob(MediaType::ImageConfig, &config)
        .unwrap();
    let m = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(cd)
        .layers(descs)
        .build()
        .unwrap();
    let md = layout
        .write_json_blob(MediaType::ImageManifest, &m)
        .unwrap();
    layout.tag(tag, &md).unwrap();
    md
}

fn two_layer_image(layout: &ImageLayout) {
    let mut l1 = Layer::new();
    l1.dir("d")
        .file("d/x", b"x")
        .file("d/y", b"y")
        .dir("o")
        .file("o/old", b"old")
        .file("a", b"a");
    let mut l2 = Layer::new();
    l2.whiteout("d/.wh.x")
        .dir("o")
        .whiteout("o/.wh..wh..opq")
        .file("o/new", b"new")
        .file("b", b"b");
    image_from_layers(layout, "img", vec![l1.tar(), l2.tar()]);
}

#[test]
fn layers_extract_once_per_chain_id_with_overlay_whiteouts() {
    let t = tempfile::tempdir().unwrap();
    let layout = ImageLayout::create(t.path().join("layout")).unwrap();
    two_layer_image(&layout);
    let snaps = Snapshotter::new(t.path().join("snaps")).unwrap();
    let img = layout.resolve("img", &PlatformSpec::default()).unwrap();
    let top = snaps
        .unpack_image(&layout, &img, &ApplyOptions::default())
        .unwrap()
        .unwrap();
    let chains = img.chain_ids().unwrap();
    assert_eq!(chains.last(), Some(&top));
    let walk = snaps.walk().unwrap();
    assert_eq!(walk.len(), 2);
    assert!(walk.iter().all(|s| s.kind == SnapshotKind::Committed));
    let l2 = snaps.committed_path(&top).unwrap();
    let w = fs::symlink_metadata(l2.join("d/x")).unwrap();
    assert!(w.file_type().is_char_device() && w.rdev() == 0);
    let mut v = [0u8; 2];
    let n = rustix::fs::lgetxattr(l2.join("o"), "trusted.overlay.opaque", &mut v).unwrap();
    assert_eq!(&v[..n], b"y");
    // A second unpack reuses the extracted directories.
    let ino = fs::metadata(&l2).unwrap().ino();
    assert_eq!(
        snaps
            .unpack_image(&layout, &img, &ApplyOptions::default())
            .unwrap(),
        Some(top.clone())
    );
    assert_eq!(fs::metadata(&l2).unwrap().ino(), ino);
    assert_eq!(snaps.lowers(&top).unwrap().len(), 2);
}

#[test]
fn prepare_mount_commit_remove() {
    let before = hull_testkit::Snapshot::take();
    let t = tempfile::tempdir().unwrap();
    let p = t.path().to_path_buf();
    let layout = ImageLayout::create(p.join("layout")).unwrap();
    two_layer_image(&layout);
    let expected_root = p.join("expected");
    layout
        .unpack(
            "img",
            &PlatformSpec::default(),
            &expected_root,
            &ApplyOptions::default(),
            &mut |_| {},
        )
        .unwrap();
    let snaps = Snapshotter::new(p.join("snaps")).unwrap();
    let img = layout.resolve("img", &PlatformSpec::default()).unwrap();
    let top = snaps
        .unpack_image(&layout, &img, &ApplyOptions::default())
        .unwrap()
        .unwrap();
    let active = snaps.prepare("ctr1", Some(&top)).unwrap();
    assert!(matches!(
        snaps.prepare("ctr1", Some(&top)),
        Err(Error::SnapshotExists { .. })
    ));
    assert!(matches!(
        snaps.prepare("../x", None),
        Err(Error::InvalidSnapshotKey { .. })
    ));
    let merged = p.join("merged");
    fs::create_dir(&merged).unwrap();
    let opts = active.overlay_options();
    let (m2, exp) = (merged.clone(), expected_root.clone());
    hull_testkit::in_child(hull_testkit::CLONE_NEWNS, move || {
        let st = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &opts])
            .arg(&m2)
            .status()
            .map_err(|e| e.to_string())?;
        if !st.success() {
            return Err(format!("mount -o {opts} failed"));
        }
        let (got, want) = (list_tree(&m2), list_tree(&exp));
        if got != want {
            return Err(format!("merged view differs:\n{got:#?}\nvs\n{want:#?}"));
        }
        fs::write(m2.join("c"), b"c").map_err(|e| e.to_string())?;
        fs::remove_file(m2.join("a")).map_err(|e| e.to_string())?;
        Ok(())
    });
    before.assert_no_leaks(&[]);
    // The container's changes, committed as a new image from the upper
    // directory, unpack to the merged view.
    layout
        .commit(
            Some("img"),
            &hull_image_layers::diff::DiffSource::OverlayUpper(&active.upper),
            "img:2",
            &hull_image_layers::CommitOptions::default(),
        )
        .unwrap();
    let v2 = p.join("v2");
    layout
        .unpack(
            "img:2",
            &PlatformSpec::default(),
            &v2,
            &ApplyOptions::default(),
            &mut |_| {},
        )
        .unwrap();
    let mut want: Vec<String> = list_tree(&expected_root)
        .into_keys()
        .filter(|k| k != "a")
        .collect();
    want.push("c".into());
    want.sort();
    assert_eq!(list_tree(&v2).into_keys().collect::<Vec<_>>(), want);
    assert_eq!(fs::read(v2.join("c")).unwrap(), b"c");
    let c = snaps.commit("ctr1").unwrap();
    let walk = snaps.walk().unwrap();
    assert_eq!(
        walk.iter()
            .filter(|s| s.kind == SnapshotKind::Committed)
            .count(),
        3
    );
    assert_eq!(
        walk.iter()
            .filter(|s| s.kind == SnapshotKind::Active)
            .count(),
        0
    );
    let fs3 = snaps.committed_path(&c.chain_id).unwrap();
    assert_eq!(fs::read(fs3.join("c")).unwrap(), b"c");
    assert!(
        fs::symlink_metadata(fs3.join("a"))
            .unwrap()
            .file_type()
            .is_char_device()
    );
    assert!(matches!(
        snaps.remove(top.as_ref()),
        Err(Error::SnapshotInUse { .. })
    ));
    snaps.remove(c.chain_id.as_ref()).unwrap();
    snaps.remove(top.as_ref()).unwrap();
    snaps.prepare("scratch", None).unwrap();
    snaps.remove("scratch").unwrap();
    assert!(matches!(
        snaps.remove("scratch"),
        Err(Error::SnapshotNotFound { .. })
    ));
    assert_eq!(snaps.walk().unwrap().len(), 1);
    assert_eq!(fs::read_dir(p.join("snaps/tmp")).unwrap().count(), 0);
}
