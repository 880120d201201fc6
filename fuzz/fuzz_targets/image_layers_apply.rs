//! Applies arbitrary bytes as a layer (compression guessed from the magic)
//! into a fresh root (with openat2 or the user-space resolver) and checks
//! that nothing outside the root changed.
#![no_main]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use hull_image_layers::{ApplyOptions, Compression, Resolver, apply_layer};
use libfuzzer_sys::fuzz_target;

fn listing(dir: &Path, skip: &Path, out: &mut BTreeMap<String, (u32, u64, Vec<u8>)>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p == skip {
            continue;
        }
        let Ok(m) = fs::symlink_metadata(&p) else {
            continue;
        };
        let data = if m.is_file() {
            fs::read(&p).unwrap_or_default()
        } else {
            Vec::new()
        };
        out.insert(p.display().to_string(), (m.mode(), m.nlink(), data));
        if m.is_dir() {
            listing(&p, skip, out);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    fs::create_dir(&root).expect("mkdir root");
    fs::create_dir(dir.path().join("outside")).expect("mkdir outside");
    fs::write(dir.path().join("outside/secret"), b"secret").expect("write secret");
    fs::write(dir.path().join("sentinel"), b"sentinel").expect("write sentinel");
    let mut before = BTreeMap::new();
    listing(dir.path(), &root, &mut before);
    // Both resolvers: openat2 and the user-space walk (picked by length, so
    // the bytes themselves stay a plain layer).
    let opts = ApplyOptions {
        resolver: if data.len() % 2 == 0 {
            Resolver::Auto
        } else {
            Resolver::Walk
        },
        ..ApplyOptions::default()
    };
    let _ = apply_layer(&root, data, Compression::detect(data), &opts);
    let mut after = BTreeMap::new();
    listing(dir.path(), &root, &mut after);
    assert_eq!(
        before, after,
        "the layer changed something outside its root"
    );
});
