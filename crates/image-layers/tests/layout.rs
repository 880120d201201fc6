//! Image layouts: blob store, index, resolve, tags, gc.

mod common;

use std::fs;

use common::Layer;
use hull_image_layers::oci::{
    Arch, ConfigBuilder, DescriptorBuilder, ImageConfigurationBuilder, ImageIndexBuilder,
    ImageManifestBuilder, MediaType, Os, PlatformBuilder, RootFsBuilder,
};
use hull_image_layers::{
    Compression, Error, ImageLayout, PlatformSpec, parse_digest, sha256_digest,
};

/// Writes a one-layer image for `arch` and returns its manifest descriptor.
fn write_image(
    layout: &ImageLayout,
    layer: Vec<u8>,
    arch: Arch,
    env: &str,
) -> hull_image_layers::oci::Descriptor {
    let diff_id = sha256_digest(&layer);
    let (ld, ls) = layout.write_blob(&layer).unwrap();
    let config = ImageConfigurationBuilder::default()
        .architecture(arch.clone())
        .os(Os::Linux)
        .config(
            ConfigBuilder::default()
                .env(vec![env.to_string()])
                .build()
                .unwrap(),
        )
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![diff_id.to_string()])
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let cd = layout
        .write_json_blob(MediaType::ImageConfig, &config)
        .unwrap();
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(cd)
        .layers(vec![
            DescriptorBuilder::default()
                .media_type(Compression::None.media_type())
                .digest(ld)
                .size(ls)
                .build()
                .unwrap(),
        ])
        .build()
        .unwrap();
    let mut md = layout
        .write_json_blob(MediaType::ImageManifest, &manifest)
        .unwrap();
    md.set_platform(Some(
        PlatformBuilder::default()
            .architecture(arch)
            .os(Os::Linux)
            .build()
            .unwrap(),
    ));
    md
}

#[test]
fn blob_round_trip_and_verification() {
    let dir = tempfile::tempdir().unwrap();
    let layout = ImageLayout::create(dir.path()).unwrap();
    let (d, n) = layout.write_blob(b"hello").unwrap();
    assert_eq!(d, sha256_digest(b"hello"));
    assert_eq!(n, 5);
    assert_eq!(layout.read_blob(&d, Some(5)).unwrap(), b"hello");
    // Wrong size in the descriptor.
    assert!(matches!(
        layout.read_blob(&d, Some(4)),
        Err(Error::SizeMismatch { .. })
    ));
    // Corrupt content, same size.
    fs::write(layout.blob_path(&d).unwrap(), b"jello").unwrap();
    assert!(matches!(
        layout.read_blob(&d, Some(5)),
        Err(Error::DigestMismatch { .. })
    ));
    // Missing blob.
    let other = sha256_digest(b"other");
    assert!(matches!(
        layout.read_blob(&other, None),
        Err(Error::BlobNotFound { .. })
    ));
    // The layout reopens, and nothing temporary is left behind.
    ImageLayout::open(dir.path()).unwrap();
    assert_eq!(fs::read_dir(dir.path().join(".tmp")).unwrap().count(), 0);
}

#[test]
fn dropped_blob_writer_leaves_nothing() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let layout = ImageLayout::create(dir.path()).unwrap();
    let mut w = layout.blob_writer().unwrap();
    w.write_all(b"partial").unwrap();
    drop(w);
    assert_eq!(fs::read_dir(dir.path().join(".tmp")).unwrap().count(), 0);
    assert_eq!(
        fs::read_dir(dir.path().join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn malformed_digests_are_rejected_before_touching_files() {
    let dir = tempfile::tempdir().unwrap();
    let layout = ImageLayout::create(dir.path()).unwrap();
    let upper = format!("sha256:{}", "A".repeat(64));
    assert!(parse_digest(&upper).is_err());
    let d: hull_image_layers::oci::Digest = format!("sha512:{}", "a".repeat(128)).parse().unwrap();
    assert!(matches!(
        layout.blob_path(&d),
        Err(Error::InvalidDigest { .. })
    ));
}

#[test]
fn open_rejects_non_layouts() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        ImageLayout::open(dir.path()),
        Err(Error::ReadLayout { .. })
    ));
    fs::write(
        dir.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"9"}"#,
    )
    .unwrap();
    assert!(matches!(
        ImageLayout::open(dir.path()),
        Err(Error::InvalidLayout { .. })
    ));
}

#[test]
fn resolve_through_nested_index_picks_platform() {
    let dir = tempfile::tempdir().unwrap();
    let layout = ImageLayout::create(dir.path()).unwrap();
    let mut l = Layer::new();
    l.file("amd", b"x");
    let amd = write_image(&layout, l.tar(), Arch::Amd64, "A=1");
    let mut l = Layer::new();
    l.file("arm", b"y");
    let arm = write_image(&layout, l.tar(), Arch::ARM64, "A=2");
    let inner = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![arm, amd])
        .build()
        .unwrap();
    let inner_d = layout
        .write_json_blob(MediaType::ImageIndex, &inner)
        .unwrap();
    let outer = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![inner_d])
        .build()
        .unwrap();
    let outer_d = layout
        .write_json_blob(MediaType::ImageIndex, &outer)
        .unwrap();
    layout.tag("multi:1", &outer_d).unwrap();

    let img = layout.resolve("multi:1", &PlatformSpec::default()).unwrap();
    let env = img.config.config().as_ref().unwrap().env().clone().unwrap();
    assert_eq!(env, vec!["A=1".to_string()]);
    let arm64 = PlatformSpec {
        os: "linux".into(),
        architecture: "arm64".into(),
        variant: None,
    };
    let img = layout.resolve("multi:1", &arm64).unwrap();
    assert_eq!(
        img.config.config().as_ref().unwrap().env().clone().unwrap(),
        vec!["A=2".to_string()]
    );
    assert_eq!(img.layers().unwrap().len(), 1);

    let s390 = PlatformSpec {
        os: "linux".into(),
        architecture: "s390x".into(),
        variant: None,
    };
    assert!(matches!(
        layout.resolve("multi:1", &s390),
        Err(Error::NoMatchingPlatform { .. })
    ));
    assert!(matches!(
        layout.resolve("nope", &PlatformSpec::default()),
        Err(Error::RefNotFound { .. })
    ));
    // A top-level entry by digest too.
    let by_digest = layout
        .resolve(outer_d.digest().as_ref(), &PlatformSpec::default())
        .unwrap();
    assert_eq!(
        by_digest
            .config
            .config()
            .as_ref()
            .unwrap()
            .env()
            .clone()
            .unwrap(),
        vec!["A=1".to_string()]
    );
}

#[test]
fn tags_untag_and_gc() {
    let dir = tempfile::tempdir().unwrap();
    let layout = ImageLayout::create(dir.path()).unwrap();
    let mut l = Layer::new();
    l.file("a", b"a");
    let a = write_image(&layout, l.tar(), Arch::Amd64, "X=a");
    let mut l = Layer::new();
    l.file("b", b"b");
    let b = write_image(&layout, l.tar(), Arch::Amd64, "X=b");
    layout.tag("a", &a).unwrap();
    layout.tag("b", &b).unwrap();
    layout.tag("b2", &b).unwrap();
    assert_eq!(layout.tags().unwrap(), vec!["a", "b", "b2"]);
    assert!(matches!(
        layout.tag("bad name", &a),
        Err(Error::InvalidRefName { .. })
    ));
    // Retagging replaces.
    layout.tag("b2", &a).unwrap();
    assert_eq!(layout.index().unwrap().manifests().len(), 3);
    // Nothing unreferenced yet.
    let stray = layout.write_blob(b"stray").unwrap().0;
    let st = layout.gc().unwrap();
    assert_eq!(st.removed, 1);
    assert!(!layout.has_blob(&stray).unwrap());
    assert!(layout.untag("b").unwrap());
    assert!(!layout.untag("b").unwrap());
    // b's manifest, config and layer are now unreferenced.
    let st = layout.gc().unwrap();
    assert_eq!(st.removed, 3);
    assert!(layout.resolve("a", &PlatformSpec::default()).is_ok());
    assert!(layout.resolve("b2", &PlatformSpec::default()).is_ok());
}

#[test]
fn docker_media_types_and_full_config_are_read() {
    use hull_image_layers::{
        ApplyOptions, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST,
    };
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let layout = ImageLayout::create(dir.path().join("L")).unwrap();
    let mut l = Layer::new();
    l.file("etc/app.conf", b"conf");
    let tar = l.tar();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let (ld, ls) = layout.write_blob(&gz).unwrap();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"User":"app:app","Env":["PATH=/usr/bin","A=b"],
        "Entrypoint":["/entry"],"Cmd":["--serve"],"WorkingDir":"/srv","ExposedPorts":{{"8080/tcp":{{}}}},
        "Labels":{{"org.example.role":"web"}}}},"rootfs":{{"type":"layers","diff_ids":["{}"]}},
        "history":[{{"created_by":"ADD app.conf"}}]}}"#,
        sha256_digest(&tar)
    );
    let (cd, cs) = layout.write_blob(config.as_bytes()).unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
        "config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{cs},"digest":"{cd}"}},
        "layers":[{{"mediaType":"{DOCKER_LAYER_GZIP}","size":{ls},"digest":"{ld}"}}]}}"#
    );
    let (md, ms) = layout.write_blob(manifest.as_bytes()).unwrap();
    let list = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[
        {{"mediaType":"{DOCKER_MANIFEST}","size":{ms},"digest":"{md}","platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
    );
    let (xd, xs) = layout.write_blob(list.as_bytes()).unwrap();
    let desc = DescriptorBuilder::default()
        .media_type(MediaType::Other(DOCKER_MANIFEST_LIST.into()))
        .digest(xd)
        .size(xs)
        .build()
        .unwrap();
    layout.tag("docker", &desc).unwrap();
    let img = layout.resolve("docker", &PlatformSpec::default()).unwrap();
    let c = img.config.config().clone().unwrap();
    assert_eq!(c.user().as_deref(), Some("app:app"));
    assert_eq!(c.entrypoint().clone().unwrap(), vec!["/entry"]);
    assert_eq!(c.cmd().clone().unwrap(), vec!["--serve"]);
    assert_eq!(c.working_dir().as_deref(), Some("/srv"));
    assert_eq!(c.exposed_ports().clone().unwrap(), vec!["8080/tcp"]);
    assert_eq!(c.labels().clone().unwrap()["org.example.role"], "web");
    assert_eq!(c.env().clone().unwrap().len(), 2);
    assert_eq!(img.config.history().as_ref().unwrap().len(), 1);
    let root = dir.path().join("root");
    layout
        .unpack(
            "docker",
            &PlatformSpec::default(),
            &root,
            &ApplyOptions::default(),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(fs::read(root.join("etc/app.conf")).unwrap(), b"conf");
    assert_eq!(layout.gc().unwrap().removed, 0);
}

#[test]
fn gc_waits_for_the_layout_lock() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let layout = ImageLayout::create(dir.path()).unwrap();
    let lock = layout.lock().unwrap();
    // A blob written under the lock, not yet tagged.
    let (d, _) = layout.write_blob(b"pending").unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let (l2, done2) = (layout.clone(), done.clone());
    let t = std::thread::spawn(move || {
        let st = l2.gc().unwrap();
        done2.store(true, Ordering::SeqCst);
        st
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        !done.load(Ordering::SeqCst),
        "gc ran while the lock was held"
    );
    assert!(layout.has_blob(&d).unwrap());
    drop(lock);
    assert_eq!(t.join().unwrap().removed, 1);
}

#[test]
fn failed_commit_leaves_no_temporary_files() {
    use hull_image_layers::CommitOptions;
    use hull_image_layers::diff::DiffSource;
    let dir = tempfile::tempdir().unwrap();
    let layout = ImageLayout::create(dir.path().join("L")).unwrap();
    let missing = dir.path().join("missing");
    let e = layout
        .commit(
            None,
            &DiffSource::Trees {
                lower: &missing,
                upper: &missing,
            },
            "x",
            &CommitOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(e, Error::Walk { .. }), "{e}");
    let left: Vec<_> = fs::read_dir(dir.path().join("L/.tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec!["lock"]);
    assert_eq!(
        fs::read_dir(dir.path().join("L/blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
    assert!(layout.tags().unwrap().is_empty());
}
