//! Replays the committed fuzz corpus (fuzz/corpus/container_dockerfile)
//! through the Dockerfile parser: every input parses or fails with an error
//! naming a line, without panicking.

use std::path::Path;

use hull_container::{Dockerfile, Error};

#[test]
fn dockerfile_corpus_replays_without_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/container_dockerfile");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("corpus directory") {
        let data = std::fs::read(e.expect("corpus entry").path()).expect("corpus file");
        let text = String::from_utf8_lossy(&data);
        match Dockerfile::parse(&text) {
            Ok(f) => assert!(!f.steps.is_empty()),
            Err(Error::Dockerfile { line, .. }) => {
                assert!(line >= 1 && line <= text.lines().count().max(1))
            }
            Err(other) => panic!("unexpected error type: {other}"),
        }
        n += 1;
    }
    assert!(n >= 10, "corpus has only {n} files");
}
