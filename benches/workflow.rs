//! Spawn-to-exit of `/bin/true` from an image on a bridge network, in
//! process: the container bench's settings (PID, mount, UTS, IPC and
//! network namespaces, a cgroup with memory and pids limits) with an
//! overlay of the image's shared snapshots, a private upper layer, and
//! bridge networking (an IPAM address, a veth pair, eth0, a default route,
//! generated /etc/hosts, /etc/hostname and /etc/resolv.conf). Each
//! iteration prepares the image again: its snapshot is already extracted,
//! so only the reference is resolved. The delete is untimed.
//!
//! The process first moves into a new network namespace of its own (the
//! sandbox "host" holding the bridge), so the machine's network is never
//! touched. Run as root: `cargo bench --bench workflow`.

#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use hull::cgroup::{Limit, Resources};
use hull::container::hull_image_layers::oci::ConfigBuilder;
use hull::container::hull_netns::BridgeConfig;
use hull::container::{Container, ImageStore, NetworkMode};
use hull::ns::Namespaces;

static N: AtomicU64 = AtomicU64::new(0);

struct Env {
    dir: PathBuf,
    cgroup_parent: String,
    store: ImageStore,
    bridge: BridgeConfig,
}

impl Env {
    fn new() -> Env {
        let name = format!("hull-bench-wf-{}", std::process::id());
        let dir = std::env::temp_dir().join(&name);
        let tree = dir.join("tree");
        std::fs::create_dir_all(&tree).unwrap();
        hull_testkit::busybox_rootfs(&tree).unwrap();
        let store = ImageStore::open(dir.join("images"), dir.join("snapshots")).unwrap();
        let mut config = store.scratch_config().unwrap();
        config.set_config(Some(
            ConfigBuilder::default()
                .env(vec!["PATH=/bin".to_string()])
                .build()
                .unwrap(),
        ));
        store.import_tree(&tree, config, "busybox:bench").unwrap();
        // Extracted once, here.
        store.prepare("busybox:bench").unwrap();
        let bridge = BridgeConfig::builder("hullbench0", "198.18.90.0/24".parse().unwrap())
            .build()
            .unwrap();
        Env {
            dir,
            cgroup_parent: name,
            store,
            bridge,
        }
    }

    fn spawn_to_exit(&self, bridge: bool) -> Container {
        let id = format!("w{}", N.fetch_add(1, Ordering::Relaxed));
        let image = self.store.prepare("busybox:bench").unwrap();
        let mut b = Container::builder(&id)
            .runtime_root(self.dir.join("run"))
            .cgroup_parent(&self.cgroup_parent)
            .namespaces(
                Namespaces::PID
                    | Namespaces::MNT
                    | Namespaces::UTS
                    | Namespaces::IPC
                    | Namespaces::NET,
            )
            .resources(
                Resources::builder()
                    .memory_limit(256 << 20)
                    .pids_max(Limit::Value(100))
                    .build()
                    .unwrap(),
            )
            .image(image)
            .args(["/bin/true"]);
        if bridge {
            b = b.network(NetworkMode::bridge(
                self.bridge.clone(),
                self.dir.join("ipam"),
            ));
        }
        let mut c = b.build().unwrap().create().unwrap();
        c.start().unwrap();
        assert!(c.wait().unwrap().success());
        c
    }

    fn timed(&self, iters: u64, bridge: bool) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let t = Instant::now();
            let mut c = self.spawn_to_exit(bridge);
            total += t.elapsed();
            c.delete().unwrap();
        }
        total
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        hull_testkit::remove_cgroup_parent(&self.cgroup_parent);
    }
}

fn workflow(c: &mut Criterion) {
    if !hull_testkit::is_root() {
        eprintln!("workflow bench: run as root");
        return;
    }
    // SAFETY: unshare has no memory-safety preconditions; it moves this
    // (main) thread, which runs the benchmarks, into a new network
    // namespace: the sandbox host.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        panic!("unshare: {}", std::io::Error::last_os_error());
    }
    let env = Env::new();
    let mut g = c.benchmark_group("workflow");
    g.bench_function("image_prepare_extracted", |b| {
        b.iter(|| env.store.prepare("busybox:bench").unwrap())
    });
    g.bench_function("image_spawn_to_exit", |b| {
        b.iter_custom(|n| env.timed(n, false))
    });
    g.bench_function("image_bridge_spawn_to_exit", |b| {
        b.iter_custom(|n| env.timed(n, true))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(20);
    targets = workflow
}
criterion_main!(benches);
