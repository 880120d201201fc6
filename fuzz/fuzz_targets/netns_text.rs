//! Every hull-netns text parser (CIDR, interface and host names,
//! resolv.conf, IPAM state, nft listings) on arbitrary bytes: none may
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hull_netns::parse_all_for_fuzzing(data);
});
