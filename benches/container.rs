//! Full container spawn-to-exit of `/bin/true`, in-process and hot: PID,
//! mount, UTS, IPC and network namespaces, the host-derived root with
//! pivot_root, runc's default mounts, masked and read-only paths, the
//! capability and privilege steps, and a cgroup with memory and pids
//! limits. `spawn_to_exit*` time create, start and wait (the delete is
//! untimed); the others are whole cycles, delete included: one container,
//! the same with an overlay root, 5 and 10 in parallel, and a cold figure
//! (after 100 ms idle).
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
    fn timed(&self, iters: u64, controllers: Option<&[Controller]>) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let t = Instant::now();
            let mut c = self.spawn_to_exit(false, controllers);
            total += t.elapsed();
            c.delete().unwrap();
        }
        total
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.runtime);
        for h in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(h.path().join(&self.cgroup_parent));
        }
    }
}

fn container(c: &mut Criterion) {
    let env = Env::new();
    let mut g = c.benchmark_group("container");
    // Spawn-to-exit (create, start, wait), the delete untimed: with the
    // cgroup in every hierarchy (runc's choice), and in the cpu, memory and
    // pids hierarchies only (the work of the C reference in the issue).
    g.bench_function("spawn_to_exit", |b| b.iter_custom(|n| env.timed(n, None)));
    g.bench_function("spawn_to_exit_3_cgroups", |b| {
        b.iter_custom(|n| {
            env.timed(
                n,
                Some(&[Controller::Cpu, Controller::Memory, Controller::Pids]),
            )
        })
    });
    // Whole cycles, delete included.
    g.bench_function("host_root", |b| b.iter(|| env.run(false)));
    g.bench_function("overlay_root", |b| b.iter(|| env.run(true)));
    for n in [5usize, 10] {
        g.bench_function(format!("parallel_{n}"), |b| {
            b.iter(|| {
                std::thread::scope(|s| {
                    for _ in 0..n {
                        s.spawn(|| env.run(false));
                    }
                })
            })
        });
    }
    g.bench_function("cold_after_100ms_idle", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                std::thread::sleep(Duration::from_millis(100));
                let t = Instant::now();
                env.run(false);
                total += t.elapsed();
            }
            total
        })
    });
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
