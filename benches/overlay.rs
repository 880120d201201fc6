//! Mount + unmount time of an overlay with 1, 10, 100 and 500 lower layers
//! (plus an upper dir), through the new mount API (layers as file
//! descriptors, `new_api_fds`, or as path strings, `new_api_paths`, which
//! `MountApi::Auto` uses when the paths fit) and through
//! mount(2) side by side where the option string fits in mount(2)'s one
//! page; and the cost of `build()` (validation).
//!
//! ```text
//! sudo cargo bench --bench overlay
//! ```
//!
//! Needs root. The benchmark moves into its own private mount namespace
//! first, so nothing it mounts is visible outside, and removes its
//! temporary directories at the end. The layers live on a tmpfs mounted
//! there: unmounting an overlay syncs its upper filesystem, and on a shared
//! disk that sync measures everyone else's writes, not the overlay.

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use hull::overlayfs::{MountApi, Overlay};

const LAYER_COUNTS: [usize; 4] = [1, 10, 100, 500];

/// A temporary directory with a tmpfs on it; unmounted and removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Ok(c) = std::ffi::CString::new(self.0.as_os_str().as_encoded_bytes()) {
            // SAFETY: c is NUL-terminated and outlives the call.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mount_tmpfs(dir: &Path) -> std::io::Result<()> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())?;
    // SAFETY: NUL-terminated strings outliving the call; no data.
    let rc = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            c.as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn private_mount_namespace() -> std::io::Result<()> {
    // SAFETY: unshare(CLONE_NEWNS) takes no pointers; it runs before
    // criterion starts any thread.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: NUL-terminated literals; no data pointer.
    let rc = unsafe {
        libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `n` lower layers with one file each, an upper, a work dir and a target,
/// all under `root/<n>`; short names so 100 layers fit in one page.
fn overlay(root: &Path, n: usize) -> Overlay {
    let base = root.join(n.to_string());
    let mut layers = Vec::new();
    for i in 0..n {
        let d = base.join(format!("{i}"));
        std::fs::create_dir_all(&d).expect("mkdir layer");
        std::fs::write(d.join(format!("f{i}")), "x").expect("write layer file");
        layers.push(d);
    }
    for d in ["u", "w", "m"] {
        std::fs::create_dir_all(base.join(d)).expect("mkdir");
    }
    Overlay::builder()
        .lowers_bottom_up(layers)
        .upper(base.join("u"), base.join("w"))
        .target(base.join("m"))
        .build()
        .expect("valid overlay")
}

fn bench(c: &mut Criterion, root: &Path) {
    let overlays: Vec<(usize, Overlay)> = LAYER_COUNTS
        .iter()
        .map(|&n| (n, overlay(root, n)))
        .collect();
    let mut g = c.benchmark_group("overlay_mount_unmount");
    for (n, ov) in &overlays {
        g.bench_with_input(BenchmarkId::new("new_api_fds", n), ov, |b, ov| {
            b.iter(|| {
                ov.mount_with(MountApi::New)
                    .expect("mount")
                    .unmount()
                    .expect("unmount")
            })
        });
        g.bench_with_input(BenchmarkId::new("new_api_paths", n), ov, |b, ov| {
            b.iter(|| {
                ov.mount_with(MountApi::NewPaths)
                    .expect("mount")
                    .unmount()
                    .expect("unmount")
            })
        });
        let fits = ov.render_legacy_options().len() < 4096;
        if fits {
            g.bench_with_input(BenchmarkId::new("mount2", n), ov, |b, ov| {
                b.iter(|| {
                    ov.mount_with(MountApi::Legacy)
                        .expect("mount")
                        .unmount()
                        .expect("unmount")
                })
            });
        } else {
            eprintln!("mount2/{n}: option string over one page, mount(2) cannot mount it");
        }
    }
    g.finish();

    let mut g = c.benchmark_group("overlay_build");
    for (n, ov) in &overlays {
        let (lowers, upper, work, target) = (
            ov.lowers().to_vec(),
            ov.upper_dir().map(Path::to_path_buf),
            ov.work_dir().map(Path::to_path_buf),
            ov.target().to_path_buf(),
        );
        g.bench_function(BenchmarkId::new("validate", n), |b| {
            b.iter(|| {
                let mut builder = Overlay::builder()
                    .lowers_top_down(lowers.iter().cloned())
                    .target(&target);
                if let (Some(u), Some(w)) = (&upper, &work) {
                    builder = builder.upper(u, w);
                }
                builder.build().expect("valid")
            })
        });
    }
    g.finish();
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("overlay benchmark needs root; skipped");
        return;
    }
    if let Err(e) = private_mount_namespace() {
        eprintln!("cannot enter a private mount namespace: {e}; skipped");
        return;
    }
    let tmp =
        TempDir(std::env::temp_dir().join(format!("hull-overlay-bench-{}", std::process::id())));
    std::fs::create_dir_all(&tmp.0).expect("temp dir");
    mount_tmpfs(&tmp.0).expect("tmpfs for the layers");
    let mut c = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    bench(&mut c, &tmp.0);
    c.final_summary();
}
