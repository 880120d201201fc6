//! Replays the committed fuzz corpus of `overlayfs_whiteout_name` through the
//! parser, with the fuzz target's assertions, so CI exercises it on stable.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use hull_overlayfs::whiteout::OciName;

#[test]
fn fuzz_corpus_overlayfs_whiteout_name_replays() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/overlayfs_whiteout_name");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus dir") {
        let data = std::fs::read(entry.expect("entry").path()).expect("corpus file");
        if let Some(parsed) = OciName::parse(OsStr::from_bytes(&data)) {
            assert_eq!(parsed.to_os_string().as_bytes(), &data[..]);
            assert!(!data.contains(&b'/') && !data.contains(&0));
        }
        n += 1;
    }
    assert!(n >= 5, "corpus has only {n} entries");
}
