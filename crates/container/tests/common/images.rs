//! A busybox image store for the image tests.

use std::path::PathBuf;

use hull_container::ImageStore;
use hull_container::hull_image_layers::oci::ConfigBuilder;
use hull_testkit::{busybox_rootfs, unique_name};

/// A scratch directory with an image store holding `base:1`, a busybox
/// root with /etc/motd; removed on drop.
pub struct Images {
    pub dir: PathBuf,
    pub store: ImageStore,
}

impl Images {
    pub fn new() -> Option<Images> {
        let dir = std::env::temp_dir().join(unique_name("hull-img-"));
        let tree = dir.join("tree");
        std::fs::create_dir_all(&tree).unwrap();
        if let Err(e) = busybox_rootfs(&tree) {
            eprintln!("skipped: {e}");
            let _ = std::fs::remove_dir_all(&dir);
            return None;
        }
        std::fs::write(tree.join("etc/motd"), "from the base image\n").unwrap();
        let store = ImageStore::open(dir.join("layout"), dir.join("snapshots")).unwrap();
        let mut config = store.scratch_config().unwrap();
        config.set_config(Some(
            ConfigBuilder::default()
                .env(vec!["PATH=/bin".to_string()])
                .cmd(vec!["sh".to_string()])
                .build()
                .unwrap(),
        ));
        store.import_tree(&tree, config, "base:1").unwrap();
        std::fs::remove_dir_all(&tree).unwrap();
        Some(Images { dir, store })
    }

    /// Committed snapshot directories.
    pub fn committed(&self) -> usize {
        std::fs::read_dir(self.dir.join("snapshots/committed"))
            .unwrap()
            .count()
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
