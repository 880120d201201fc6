//! OCI image layouts with `hull::image`: build a small image, list tags,
//! unpack a tag with a progress bar, commit a directory's changes as a new
//! tagged image.
//!
//! ```text
//! cargo run --example image                 # self-contained demo in a temp dir
//! cargo run --example image -- tags LAYOUT
//! cargo run --example image -- unpack LAYOUT TAG DIR
//! cargo run --example image -- commit LAYOUT BASE-TAG|- LOWER UPPER NEW-TAG
//! ```
//!
//! The demo needs nothing downloaded: it generates a few files, commits them
//! as `demo:base`, unpacks that, changes the unpacked tree, commits the
//! change as `demo:v2`, and unpacks `demo:v2`.

use std::error::Error;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use hull::image::diff::{DiffOptions, DiffSource};
use hull::image::{
    ApplyOptions, CommitOptions, Compression, ImageLayout, PlatformSpec, UnpackProgress,
};

type Res<T = ()> = Result<T, Box<dyn Error>>;

fn progress_bar(p: UnpackProgress) {
    let width = 30u64;
    let filled = (p.bytes * width)
        .checked_div(p.total)
        .unwrap_or(width)
        .min(width);
    let bar: String = (0..width)
        .map(|i| if i < filled { '#' } else { ' ' })
        .collect();
    print!(
        "\r  layer {}/{} [{bar}] {:>6.2} / {:.2} MiB",
        p.layer + 1,
        p.layers,
        p.bytes as f64 / 1048576.0,
        p.total as f64 / 1048576.0
    );
    let _ = std::io::stdout().flush();
}

fn unpack(layout: &ImageLayout, tag: &str, dir: &Path) -> Res {
    println!("unpacking {tag} into {}", dir.display());
    layout.unpack(
        tag,
        &PlatformSpec::default(),
        dir,
        &ApplyOptions::default(),
        &mut progress_bar,
    )?;
    println!();
    Ok(())
}

fn tags(layout: &ImageLayout) -> Res {
    for t in layout.tags()? {
        let img = layout.resolve(&t, &PlatformSpec::default())?;
        println!(
            "  {t:<20} {} ({} layers)",
            img.descriptor.digest(),
            img.manifest.layers().len()
        );
    }
    Ok(())
}

fn commit(layout: &ImageLayout, base: Option<&str>, lower: &Path, upper: &Path, tag: &str) -> Res {
    let opts = CommitOptions {
        diff: DiffOptions {
            compression: Compression::Zstd,
            ..Default::default()
        },
        created_by: Some(format!("hull example: commit {}", upper.display())),
        ..Default::default()
    };
    let d = layout.commit(base, &DiffSource::Trees { lower, upper }, tag, &opts)?;
    println!("committed {tag} as {}", d.digest());
    Ok(())
}

/// A deterministic pseudo-random byte generator (xorshift).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b"abcdefgh ijklmnop\n"[(x % 18) as usize]
        })
        .collect()
}

fn demo(work: &Path) -> Res {
    let layout = ImageLayout::create(work.join("layout"))?;
    let (empty, base) = (work.join("empty"), work.join("base"));
    fs::create_dir_all(&empty)?;
    fs::create_dir_all(base.join("etc"))?;
    fs::create_dir_all(base.join("usr/share/doc"))?;
    fs::write(base.join("etc/hostname"), "demo\n")?;
    fs::write(base.join("etc/motd"), "built by the hull image example\n")?;
    for i in 0..8 {
        fs::write(
            base.join(format!("usr/share/doc/file{i}.txt")),
            noise(512 << 10, i + 1),
        )?;
    }
    std::os::unix::fs::symlink("../etc/hostname", base.join("usr/hostname-link"))?;
    commit(&layout, None, &empty, &base, "demo:base")?;

    let rootfs = work.join("rootfs");
    unpack(&layout, "demo:base", &rootfs)?;

    // Change the unpacked tree and commit the difference on top of the base.
    fs::write(rootfs.join("etc/motd"), "changed\n")?;
    fs::remove_file(rootfs.join("usr/share/doc/file3.txt"))?;
    fs::write(rootfs.join("new-file"), "added\n")?;
    commit(&layout, Some("demo:base"), &base, &rootfs, "demo:v2")?;

    println!("tags:");
    tags(&layout)?;
    let v2 = work.join("rootfs-v2");
    unpack(&layout, "demo:v2", &v2)?;
    println!(
        "motd of demo:v2: {}",
        fs::read_to_string(v2.join("etc/motd"))?.trim()
    );
    println!(
        "file3 present in demo:v2: {}",
        v2.join("usr/share/doc/file3.txt").exists()
    );
    Ok(())
}

fn main() -> Res {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        [] => {
            let work = std::env::temp_dir().join(format!("hull-image-example-{}", std::process::id()));
            let r = demo(&work);
            let _ = fs::remove_dir_all(&work);
            r
        }
        ["tags", layout] => tags(&ImageLayout::open(layout)?),
        ["unpack", layout, tag, dir] => unpack(&ImageLayout::open(layout)?, tag, Path::new(dir)),
        ["commit", layout, base, lower, upper, tag] => commit(
            &ImageLayout::create(layout)?,
            Some(*base).filter(|b| *b != "-"),
            &PathBuf::from(lower),
            &PathBuf::from(upper),
            tag,
        ),
        _ => Err("usage: image [tags LAYOUT | unpack LAYOUT TAG DIR | commit LAYOUT BASE LOWER UPPER TAG]".into()),
    }
}
