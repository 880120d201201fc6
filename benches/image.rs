//! Layer unpack and diff throughput.
//!
//! - `unpack/{hull,gnu-tar}/{gzip,zstd}`: the same layer (a generated tree
//!   of ~1000 files, ~48 MiB uncompressed) applied into an empty directory by
//!   `hull::image::apply_layer` and by GNU `tar -x` (with `-z` / `--zstd`).
//!   Throughput is in uncompressed tar bytes. Everything lives in /dev/shm
//!   when it exists, so the figures measure the unpackers, not the disk.
//! - `diff/{tree-vs-empty,tree-vs-copy-1pct}`: `write_diff` of the tree
//!   against an empty tree (every file read and written to an uncompressed
//!   tar) and against a copy with 1% of the files changed (metadata walk plus
//!   the changed files).

#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hull::image::diff::{DiffOptions, DiffSource, write_diff};
use hull::image::{ApplyOptions, Compression, apply_layer};

struct Fixture {
    dir: PathBuf,
    tree: PathBuf,
    empty: PathBuf,
    copy: PathBuf,
    tar_bytes: u64,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let words: [&[u8]; 8] = [
        b"layer ", b"image ", b"tar ", b"root ", b"file\n", b"0123 ", b"hull ", b"x",
    ];
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(words[(x % 8) as usize]);
        if x % 5 == 0 {
            out.push(x.to_le_bytes()[1]);
        }
    }
    out.truncate(len);
    out
}

fn fixture() -> Fixture {
    // tmpfs when there is one: the figures then show the unpacker, not the disk.
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("hull-bench-image-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let (tree, empty, copy) = (dir.join("tree"), dir.join("empty"), dir.join("copy"));
    fs::create_dir_all(&empty).unwrap();
    let mut total = 0usize;
    for i in 0..1000u64 {
        let sub = tree.join(format!("d{:02}/s{}", i % 40, i % 3));
        fs::create_dir_all(&sub).unwrap();
        // Mostly small files, a few large ones, like a distribution image.
        let len = if i % 100 == 0 {
            3 << 20
        } else {
            usize::try_from((i * 7919) % 40_000 + 100).unwrap_or(100)
        };
        total += len;
        fs::write(sub.join(format!("f{i}")), noise(len, i + 1)).unwrap();
        if i % 50 == 0 {
            std::os::unix::fs::symlink(format!("f{i}"), sub.join(format!("l{i}"))).unwrap();
        }
    }
    let st = Command::new("cp")
        .arg("-a")
        .arg(&tree)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(st.success());
    for i in (0..1000u64).step_by(100) {
        let p = copy.join(format!("d{:02}/s{}/f{i}", i % 40, i % 3));
        fs::write(p, b"changed").unwrap();
    }
    let _ = total;
    let mut f = Fixture {
        dir,
        tree,
        empty,
        copy,
        tar_bytes: 0,
    };
    for (c, name) in [
        (Compression::Gzip, "layer.tar.gz"),
        (Compression::Zstd, "layer.tar.zst"),
    ] {
        let out = fs::File::create(f.dir.join(name)).unwrap();
        let opts = DiffOptions {
            compression: c,
            ..Default::default()
        };
        let (stats, _) = write_diff(
            &DiffSource::Trees {
                lower: &f.empty,
                upper: &f.tree,
            },
            out,
            &opts,
        )
        .unwrap();
        f.tar_bytes = stats.tar_bytes;
    }
    f
}

/// Times `run` on a fresh empty directory per iteration; removal is not
/// timed.
fn time_into_fresh_dir(base: &Path, iters: u64, run: impl Fn(&Path)) -> Duration {
    let mut total = Duration::ZERO;
    for i in 0..iters {
        let target = base.join(format!("out-{i}"));
        fs::create_dir(&target).unwrap();
        let t = Instant::now();
        run(&target);
        total += t.elapsed();
        fs::remove_dir_all(&target).unwrap();
    }
    total
}

fn unpack(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("unpack");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Bytes(f.tar_bytes));
    for (comp, name, flag) in [
        (Compression::Gzip, "layer.tar.gz", "-z"),
        (Compression::Zstd, "layer.tar.zst", "--zstd"),
    ] {
        let layer = f.dir.join(name);
        let label = if comp == Compression::Gzip {
            "gzip"
        } else {
            "zstd"
        };
        g.bench_function(format!("hull/{label}"), |b| {
            b.iter_custom(|iters| {
                time_into_fresh_dir(&f.dir, iters, |t| {
                    let file = fs::File::open(&layer).unwrap();
                    apply_layer(t, file, comp, &ApplyOptions::default()).unwrap();
                })
            })
        });
        g.bench_function(format!("gnu-tar/{label}"), |b| {
            b.iter_custom(|iters| {
                time_into_fresh_dir(&f.dir, iters, |t| {
                    let st = Command::new("tar")
                        .arg(flag)
                        .arg("-xpf")
                        .arg(&layer)
                        .arg("-C")
                        .arg(t)
                        .status()
                        .unwrap();
                    assert!(st.success());
                })
            })
        });
    }
    g.finish();
}

fn diff(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("diff");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Bytes(f.tar_bytes));
    let plain = DiffOptions {
        compression: Compression::None,
        ..Default::default()
    };
    g.bench_function("tree-vs-empty", |b| {
        b.iter(|| {
            write_diff(
                &DiffSource::Trees {
                    lower: &f.empty,
                    upper: &f.tree,
                },
                std::io::sink(),
                &plain,
            )
            .unwrap()
        })
    });
    g.bench_function("tree-vs-copy-1pct", |b| {
        b.iter(|| {
            write_diff(
                &DiffSource::Trees {
                    lower: &f.tree,
                    upper: &f.copy,
                },
                std::io::sink(),
                &plain,
            )
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, unpack, diff);
criterion_main!(benches);
