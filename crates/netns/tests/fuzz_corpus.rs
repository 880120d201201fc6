//! Replays the committed fuzz corpus (fuzz/corpus/netns_text) through every
//! parser on stable, so CI catches a panic without cargo-fuzz.

use std::path::Path;

#[test]
fn netns_text_corpus_replays_without_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/netns_text");
    let mut n = 0;
    let mut accepted = 0;
    for e in std::fs::read_dir(&dir).expect("corpus directory") {
        let data = std::fs::read(e.expect("corpus entry").path()).expect("corpus file");
        accepted += hull_netns::parse_all_for_fuzzing(&data);
        n += 1;
    }
    assert!(n >= 10, "corpus has only {n} files");
    assert!(accepted > n, "only {accepted} parses succeeded");
}
