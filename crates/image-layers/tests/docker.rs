//! Importing `docker save` archives.

mod common;

use common::{Layer, list_tree};
use hull_image_layers::{
    ApplyOptions, Error, ImageLayout, PlatformSpec, import_docker_archive, sha256_digest,
};
use tar::EntryType;

fn docker_archive(layers: &[Vec<u8>], drop_layer: bool) -> Vec<u8> {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| sha256_digest(l).to_string())
        .collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "test"}],
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_name = format!("{}.json", &sha256_digest(&config).to_string()[7..]);
    let mut out = Layer::new();
    let mut names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let dir = format!("layer{i}");
        out.dir(&dir);
        out.file(&format!("{dir}/VERSION"), b"1.0");
        if drop_layer && i == 0 {
            names.push(format!("{dir}/layer.tar"));
            continue;
        }
        if i > 0 && l == &layers[0] {
            // docker save links duplicate layers to the first copy.
            out.raw(
                format!("{dir}/layer.tar").as_bytes(),
                EntryType::Symlink,
                b"",
                b"../layer0/layer.tar",
                0o777,
            );
        } else {
            out.file(&format!("{dir}/layer.tar"), l);
        }
        names.push(format!("{dir}/layer.tar"));
    }
    out.file(&config_name, &config);
    let manifest = serde_json::json!([{"Config": config_name, "RepoTags": ["example/app:1.0"], "Layers": names}]);
    out.file("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    out.file("repositories", br#"{"example/app":{"1.0":"x"}}"#);
    out.tar()
}

#[test]
fn docker_save_archive_imports_and_unpacks() {
    let t = tempfile::tempdir().unwrap();
    let layout = ImageLayout::create(t.path().join("layout")).unwrap();
    let mut l1 = Layer::new();
    l1.dir("bin")
        .file_mode("bin/sh", b"#!", 0o755)
        .file("etc/os-release", b"ID=test\n");
    let mut l2 = Layer::new();
    l2.whiteout("etc/.wh.os-release").file("app", b"app");
    let l1 = l1.tar();
    let archive = docker_archive(&[l1.clone(), l2.tar(), l1], false);
    let imported = import_docker_archive(&layout, &archive[..]).unwrap();
    assert_eq!(imported.len(), 1);
    assert_eq!(imported[0].tags, vec!["example/app:1.0"]);
    assert_eq!(layout.tags().unwrap(), vec!["example/app:1.0"]);
    let img = layout
        .resolve("example/app:1.0", &PlatformSpec::default())
        .unwrap();
    assert_eq!(img.layers().unwrap().len(), 3);
    let root = t.path().join("rootfs");
    layout
        .unpack(
            "example/app:1.0",
            &PlatformSpec::default(),
            &root,
            &ApplyOptions::default(),
            &mut |_| {},
        )
        .unwrap();
    let names: Vec<String> = list_tree(&root).into_keys().collect();
    assert_eq!(names, vec!["app", "bin", "bin/sh", "etc", "etc/os-release"]);
    // Only the config, the two distinct layers and the manifest are stored.
    assert_eq!(
        std::fs::read_dir(t.path().join("layout/blobs/sha256"))
            .unwrap()
            .count(),
        4
    );
    assert_eq!(layout.gc().unwrap().removed, 0);
}

#[test]
fn docker_archive_with_missing_layer_is_rejected() {
    let t = tempfile::tempdir().unwrap();
    let layout = ImageLayout::create(t.path().join("layout")).unwrap();
    let mut l1 = Layer::new();
    l1.file("a", b"a");
    let archive = docker_archive(&[l1.tar()], true);
    let e = import_docker_archive(&layout, &archive[..]).unwrap_err();
    assert!(matches!(e, Error::DockerArchive { .. }), "{e}");
    let e = import_docker_archive(&layout, &b"garbage"[..]).unwrap_err();
    assert!(
        matches!(e, Error::ReadTar { .. } | Error::DockerArchive { .. }),
        "{e}"
    );
}
