//! `ImageLayout::write_image`: a config and a manifest written untagged,
//! read back with `load_image`, tagged on demand, collected by gc.

use hull_image_layers::diff::DiffSource;
use hull_image_layers::{CommitOptions, ImageLayout, PlatformSpec};

#[test]
fn write_image_is_untagged_until_tagged_and_gc_collects_it() {
    let t = tempfile::tempdir().unwrap();
    let (empty, tree) = (t.path().join("empty"), t.path().join("tree"));
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("f"), b"data").unwrap();
    let layout = ImageLayout::create(t.path().join("layout")).unwrap();
    layout
        .commit(
            None,
            &DiffSource::Trees {
                lower: &empty,
                upper: &tree,
            },
            "base",
            &CommitOptions::default(),
        )
        .unwrap();
    let base = layout.resolve("base", &PlatformSpec::default()).unwrap();

    // The same layers with a changed config.
    let mut config = base.config.clone();
    config.set_author(Some("someone".into()));
    let desc = layout
        .write_image(&config, base.manifest.layers().clone())
        .unwrap();
    assert_ne!(desc.digest(), base.descriptor.digest());
    assert_eq!(layout.tags().unwrap(), ["base"]);
    let img = layout.load_image(desc.clone()).unwrap();
    assert_eq!(img.config.author().as_deref(), Some("someone"));
    assert_eq!(img.layers().unwrap(), base.layers().unwrap());

    // Untagged, gc removes its config and manifest, not the shared layer.
    let stats = layout.gc().unwrap();
    assert_eq!(stats.removed, 2, "{stats:?}");
    assert!(layout.load_image(desc.clone()).is_err());

    let desc = layout
        .write_image(&config, base.manifest.layers().clone())
        .unwrap();
    layout.tag("other", &desc).unwrap();
    assert_eq!(layout.gc().unwrap().removed, 0);
    let other = layout.resolve("other", &PlatformSpec::default()).unwrap();
    assert_eq!(other.layers().unwrap(), base.layers().unwrap());
}
