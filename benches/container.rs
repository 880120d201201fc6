//! Full container spawn-to-exit of `/bin/true`, in-process and hot: PID,
//! mount, UTS, IPC and network namespaces, the host-derived root with
//! pivot_root, runc's default mounts, masked and read-only paths, the
//! capability and privilege steps, and a cgroup with memory and pids
//! limits. `spawn_to_exit*` time create, start and wait (the delete is
//! untimed): one container with its cgroup in every hierarchy, in three
//! only, with an overlay root, 5 and 10 at once, and cold (after 100 ms
//! idle); `cycle_*` are whole cycles, delete included.
//!
//! Run as root: `cargo bench --bench container`.

#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use hull::cgroup::{Controller, Limit, Resources};
use hull::container::{Container, Rootfs};
use hull::ns::Namespaces;

static N: AtomicU64 = AtomicU64::new(0);

struct Env {
    runtime: PathBuf,
    cgroup_parent: String,
    layers: PathBuf,
}

impl Env {
    fn new() -> Env {
        let name = format!("hull-bench-{}", std::process::id());
        let runtime = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&runtime).unwrap();
        // An overlay root: one layer holding the host's /usr (bind mounts
        // are not layers, so the layer is a small tree with links into a
        // read-only bind of /usr made by the container's mounts).
        let layers = runtime.join("layer");
        std::fs::create_dir_all(layers.join("usr")).unwrap();
        for d in ["bin", "sbin", "lib", "lib64"] {
            if std::path::Path::new("/usr").join(d).is_dir() {
                let _ = std::os::unix::fs::symlink(format!("usr/{d}"), layers.join(d));
            }
        }
        Env {
            runtime,
            cgroup_parent: name,
            layers,
        }
    }

    fn run(&self, overlay: bool) {
        let c = self.spawn_to_exit(overlay, None);
        drop(c);
    }

    /// Create, start and wait; returns the container for an untimed delete.
    fn spawn_to_exit(&self, overlay: bool, controllers: Option<&[Controller]>) -> Container {
        let id = format!("b{}", N.fetch_add(1, Ordering::Relaxed));
        let mut b = Container::builder(&id)
            .runtime_root(&self.runtime)
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
            .args(["/bin/true"]);
        if let Some(set) = controllers {
            b = b.cgroup_controllers(set.iter().copied());
        }
        if overlay {
            b = b
                .rootfs(Rootfs::Overlay {
                    lowers: vec![self.layers.clone()],
                    upper: None,
                })
                .mount(hull::container::Mount::bind_ro("/usr", "/usr"));
        }
        let mut c = b.build().unwrap().create().unwrap();
        c.start().unwrap();
        assert!(c.wait().unwrap().success());
        c
    }

    /// Times spawn-to-exit only; each container is deleted outside the
    /// measured time.
    fn timed(&self, iters: u64, overlay: bool, controllers: Option<&[Controller]>) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let t = Instant::now();
            let mut c = self.spawn_to_exit(overlay, controllers);
            total += t.elapsed();
            c.delete().unwrap();
        }
        total
    }

    /// Times `n` containers spawned to exit in parallel (one thread
    /// each); the deletes are untimed.
    fn timed_parallel(&self, iters: u64, n: usize) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let t = Instant::now();
            let done: Vec<Container> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..n)
                    .map(|_| s.spawn(|| self.spawn_to_exit(false, None)))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            total += t.elapsed();
            for mut c in done {
                c.delete().unwrap();
            }
        }
        total
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.runtime);
        hull_testkit::remove_cgroup_parent(&self.cgroup_parent);
    }
}

fn container(c: &mut Criterion) {
    let env = Env::new();
    let mut g = c.benchmark_group("container");
    // Spawn-to-exit (create, start, wait), the delete untimed: with the
    // cgroup in every hierarchy (runc's choice), and in the cpu, memory and
    // pids hierarchies only (the work of the C reference in the issue).
    g.bench_function("spawn_to_exit", |b| {
        b.iter_custom(|n| env.timed(n, false, None))
    });
    g.bench_function("spawn_to_exit_3_cgroups", |b| {
        b.iter_custom(|n| {
            env.timed(
                n,
                false,
                Some(&[Controller::Cpu, Controller::Memory, Controller::Pids]),
            )
        })
    });
    g.bench_function("spawn_to_exit_overlay", |b| {
        b.iter_custom(|n| env.timed(n, true, None))
    });
    // 5 and 10 at once: the time until the last one has exited.
    for n in [5usize, 10] {
        g.bench_function(format!("spawn_to_exit_parallel_{n}"), |b| {
            b.iter_custom(|iters| env.timed_parallel(iters, n))
        });
    }
    g.bench_function("spawn_to_exit_cold_after_100ms_idle", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                std::thread::sleep(Duration::from_millis(100));
                total += env.timed(1, false, None);
            }
            total
        })
    });
    // Whole cycles, delete included.
    g.bench_function("cycle_host_root", |b| b.iter(|| env.run(false)));
    g.bench_function("cycle_overlay_root", |b| b.iter(|| env.run(true)));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(20);
    targets = container
}
criterion_main!(benches);
