//! Fuzzes the OCI whiteout name parser (`OciName::parse`), which classifies
//! file names taken from untrusted image layers.
#![no_main]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use hull_overlayfs::whiteout::OciName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let name = OsStr::from_bytes(data);
    if let Some(parsed) = OciName::parse(name) {
        // Whatever parses renders back to the same name and is one path
        // component.
        assert_eq!(parsed.to_os_string().as_bytes(), data);
        assert!(!data.contains(&b'/') && !data.contains(&0));
    }
});
