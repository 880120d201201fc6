//! Cost of container networking on top of a network namespace.
//!
//! - `netns_only`: create an anonymous network namespace and drop it.
//! - `bridge_mode_remove`: create a netns, a veth pair on an existing bridge
//!   in a sandbox host namespace, rename the container end to eth0, address,
//!   default route, then tear down by deleting the veth synchronously
//!   (`BridgeAttachment::remove`, which pays the kernel's device
//!   unregistration) and dropping the netns.
//! - `bridge_mode_release`: the same with the fast teardown
//!   (`BridgeAttachment::release`: host end down and renamed, the pair left
//!   to the namespace's asynchronous destruction, never waited for).
//! - `bridge_setup_only`: only the `setup_bridge` call (veth created in
//!   the container's netns, attached, hairpin, eth0 rename, address, route),
//!   timed apart from namespace creation and teardown: what bridge
//!   networking adds on top of a network namespace.
//! - `bridge_mode_with_host`: `bridge_mode_release` plus creating the
//!   sandbox host namespace and its bridge each time.
//!
//! Everything happens inside namespaces the benchmark creates. Run as
//! root: `cargo bench --bench netns`.

#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use hull::netns::{BridgeConfig, NetNs, ensure_bridge, setup_bridge};

fn bench(c: &mut Criterion) {
    if !hull_testkit::is_root() {
        eprintln!("netns bench: needs root, skipped");
        return;
    }
    let cfg = BridgeConfig::builder("hull0", "198.18.60.0/24".parse().expect("cidr"))
        .build()
        .expect("config");
    let addr = "198.18.60.2".parse().expect("addr");
    let mut g = c.benchmark_group("netns");
    g.measurement_time(Duration::from_secs(5));

    g.bench_function("netns_only", |b| {
        b.iter(|| drop(NetNs::new().expect("netns")))
    });

    let host = NetNs::new().expect("host netns");
    ensure_bridge(&host, &cfg).expect("bridge");
    g.bench_function("bridge_mode_remove", |b| {
        b.iter(|| {
            let ctr = NetNs::new().expect("netns");
            let att = setup_bridge(&host, &ctr, &cfg, "vethbench", addr).expect("setup");
            att.remove().expect("remove");
        })
    });

    g.bench_function("bridge_mode_release", |b| {
        b.iter(|| {
            let ctr = NetNs::new().expect("netns");
            let att = setup_bridge(&host, &ctr, &cfg, "vethbench", addr).expect("setup");
            att.release().expect("release");
        })
    });

    g.bench_function("bridge_setup_only", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let ctr = NetNs::new().expect("netns");
                let t = std::time::Instant::now();
                let att = setup_bridge(&host, &ctr, &cfg, "vethbench", addr).expect("setup");
                total += t.elapsed();
                att.release().expect("release");
            }
            total
        })
    });

    g.bench_function("bridge_mode_with_host", |b| {
        b.iter(|| {
            let host = NetNs::new().expect("host netns");
            let ctr = NetNs::new().expect("netns");
            let att = setup_bridge(&host, &ctr, &cfg, "vethbench", addr).expect("setup");
            att.release().expect("release");
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
