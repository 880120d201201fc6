//! The Dockerfile parser of hull-container on arbitrary text: it returns
//! steps or an error naming a line, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = hull_container::Dockerfile::parse(text);
    }
});
