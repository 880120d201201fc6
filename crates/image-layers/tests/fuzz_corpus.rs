//! Replays the committed seed corpus of the `image_layers_apply` fuzz target
//! on stable: each input is applied into a fresh root, and nothing outside
//! the root may change (same check as the fuzz target).

mod common;

use std::fs;
use std::path::Path;

use hull_image_layers::{ApplyOptions, Compression, Resolver, apply_layer};

#[test]
fn s14_fuzz_corpus_never_escapes_root() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/image_layers_apply");
    let mut n = 0;
    for e in fs::read_dir(&corpus).unwrap() {
        let path = e.unwrap().path();
        let data = fs::read(&path).unwrap();
        for resolver in [Resolver::Auto, Resolver::Walk] {
            let jail = common::Jail::new();
            let before = jail.outside();
            let opts = ApplyOptions {
                resolver,
                ..Default::default()
            };
            let _ = apply_layer(&jail.root(), &data[..], Compression::detect(&data), &opts);
            assert_eq!(
                before,
                jail.outside(),
                "{} escaped its root ({resolver:?})",
                path.display()
            );
        }
        n += 1;
    }
    assert!(n >= 5, "corpus missing");
}
