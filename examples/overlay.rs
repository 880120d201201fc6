//! The overlay exercise, step by step: a lower and an upper layer merged,
//! a whiteout, a removal from upper, a copy-up, an opaque directory, and the
//! change list the upper directory records.
//!
//! ```text
//! sudo cargo run --example overlay
//! ```
//!
//! Needs root. It first moves into its own private mount namespace, so the
//! overlay is never visible outside and vanishes with the process, and it
//! removes its temporary directories when it ends.

use std::error::Error;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use hull::overlayfs::whiteout::{is_opaque, is_whiteout};
use hull::overlayfs::{Overlay, XattrNamespace};

/// A temporary directory removed with everything in it when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Unshares the mount namespace and makes `/` private in it, so nothing
/// mounted here propagates to the host.
fn private_mount_namespace() -> std::io::Result<()> {
    // SAFETY: unshare(CLONE_NEWNS) takes no pointers; the process is still
    // single-threaded here.
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

fn show(dir: &Path, label: &str) -> std::io::Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    names.sort();
    println!("   {label}:");
    for n in names {
        let p = dir.join(&n);
        let md = std::fs::symlink_metadata(&p)?;
        let what = if is_whiteout(&md) {
            "whiteout (char 0:0)".to_string()
        } else if md.file_type().is_char_device() {
            format!("char device {}", md.rdev())
        } else if md.is_dir() {
            "dir".to_string()
        } else {
            format!("{:?}", std::fs::read_to_string(&p).unwrap_or_default())
        };
        println!("     {:<14} {what}", n.to_string_lossy());
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    private_mount_namespace().map_err(|e| format!("private mount namespace (run as root): {e}"))?;
    let tmp =
        TempDir(std::env::temp_dir().join(format!("hull-overlay-example-{}", std::process::id())));
    let root = &tmp.0;
    let (lower, upper, work, merged) = (
        root.join("lower"),
        root.join("upper"),
        root.join("work"),
        root.join("merged"),
    );
    for d in [&lower, &upper, &work, &merged, &lower.join("dir")] {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(lower.join("in_lower.txt"), "lower only")?;
    std::fs::write(lower.join("in_both.txt"), "from lower")?;
    std::fs::write(lower.join("modify_me.txt"), "lower v1")?;
    std::fs::write(lower.join("dir/hidden.txt"), "hidden later")?;
    std::fs::write(upper.join("in_upper.txt"), "upper only")?;
    std::fs::write(upper.join("in_both.txt"), "from upper")?;

    println!("1. layers under {}", root.display());
    show(&lower, "lower")?;
    show(&upper, "upper")?;

    let overlay = Overlay::builder()
        .lower(&lower)
        .upper(&upper, &work)
        .target(&merged)
        .build()?;
    let mount = overlay.mount()?;
    println!("2. mounted overlay on {}", merged.display());
    show(&merged, "merged (in_both comes from upper)")?;

    std::fs::remove_file(merged.join("in_lower.txt"))?;
    println!("3. rm merged/in_lower.txt: upper gets a whiteout, lower keeps the file");
    show(&upper, "upper")?;
    println!(
        "   lower/in_lower.txt still there: {}",
        lower.join("in_lower.txt").exists()
    );

    std::fs::remove_file(merged.join("in_upper.txt"))?;
    println!("4. rm merged/in_upper.txt: removed from upper, no whiteout needed");
    show(&upper, "upper")?;

    std::fs::OpenOptions::new()
        .append(true)
        .open(merged.join("modify_me.txt"))?
        .write_all(b" + edit")?;
    println!("5. append to merged/modify_me.txt: copied up, lower unchanged");
    println!(
        "   upper: {:?}  lower: {:?}",
        std::fs::read_to_string(upper.join("modify_me.txt"))?,
        std::fs::read_to_string(lower.join("modify_me.txt"))?
    );

    std::fs::remove_dir_all(merged.join("dir"))?;
    std::fs::create_dir(merged.join("dir"))?;
    println!("6. rm -r merged/dir; mkdir merged/dir: an opaque dir hides lower content");
    println!(
        "   merged/dir/hidden.txt visible: {}; upper/dir opaque: {}",
        merged.join("dir/hidden.txt").exists(),
        is_opaque(&upper.join("dir"), XattrNamespace::Trusted)?
    );

    mount.unmount()?;
    println!("7. unmounted; the upper dir's changes, ready for a layer:");
    for change in overlay.changes()? {
        println!(
            "   {:<9} {}",
            format!("{:?}", change.kind),
            change.path.display()
        );
    }
    Ok(())
}
