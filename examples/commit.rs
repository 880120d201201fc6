//! `docker commit`, as a library: run a container from an image, change
//! files, commit its writes as a new image, run the new image and show the
//! change. As root: `cargo run --example commit`.
//!
//! The base image is made from the machine's busybox-static; nothing is
//! downloaded, and everything is removed at the end.

use std::path::Path;

use hull::container::hull_image_layers::oci::ConfigBuilder;
use hull::container::{CommitOptions, Container, ImageStore};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    if !hull_testkit::is_root() {
        eprintln!("commit: run as root");
        std::process::exit(1);
    }
    let work = std::env::temp_dir().join(format!("hull-commit-example-{}", std::process::id()));
    let r = run(&work);
    let _ = std::fs::remove_dir_all(&work);
    r
}

fn run(work: &Path) -> Result<()> {
    let store = ImageStore::open(work.join("images"), work.join("snapshots"))?;
    let tree = work.join("tree");
    std::fs::create_dir_all(&tree)?;
    hull_testkit::busybox_rootfs(&tree)?;
    std::fs::write(tree.join("etc/motd"), "welcome to busybox:local\n")?;
    let mut config = store.scratch_config()?;
    config.set_config(Some(
        ConfigBuilder::default()
            .env(vec!["PATH=/bin".to_string()])
            .build()?,
    ));
    store.import_tree(&tree, config, "busybox:local")?;
    let runtime = work.join("run");
    let container = |id: &str, image: &str, script: &str| -> Result<Container> {
        let mut c = Container::builder(id)
            .runtime_root(&runtime)
            .no_cgroup()
            .image(store.prepare(image)?)
            .args(["sh", "-c", script])
            .build()?
            .create()?;
        c.start()?;
        c.wait()?;
        Ok(c)
    };

    println!("== run busybox:local, change files ==");
    let change =
        "echo 'written in the first container' > /note; rm /etc/motd; ls / | tr '\\n' ' '; echo";
    let mut first = container("first", "busybox:local", change)?;
    let image = first.commit(
        &store,
        "busybox:changed",
        &CommitOptions {
            comment: Some("the commit example".into()),
            ..CommitOptions::default()
        },
    )?;
    first.delete()?;
    println!("\n== committed busybox:changed ==");
    for h in image.config.history().iter().flatten() {
        println!(
            "history: {}",
            h.created_by().as_deref().unwrap_or("(nothing recorded)")
        );
    }

    println!("\n== run busybox:changed ==");
    let show = "cat /note; test -e /etc/motd && echo 'motd still there' || echo '/etc/motd is gone (a whiteout)'";
    container("second", "busybox:changed", show)?.delete()?;
    println!("\n== run busybox:local again: unchanged ==");
    container(
        "third",
        "busybox:local",
        "cat /etc/motd; test -e /note || echo 'no /note'",
    )?
    .delete()?;
    Ok(())
}
