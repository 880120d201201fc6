//! Builds an image from `examples/Dockerfile.example` and runs it. As root:
//! `cargo run --example build`.
//!
//! The base image `busybox:local` is made from the machine's busybox-static
//! (nothing is downloaded); every `RUN` step runs in a container and is
//! committed as a layer. Everything lives in a temporary directory that is
//! removed at the end.

use std::path::Path;

use hull::container::hull_image_layers::oci::ConfigBuilder;
use hull::container::{Container, Dockerfile, ImageBuilder, ImageStore};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    if !hull_testkit::is_root() {
        eprintln!("build: run as root");
        std::process::exit(1);
    }
    let work = std::env::temp_dir().join(format!("hull-build-example-{}", std::process::id()));
    let r = run(&work);
    // The containers removed their own cgroups; the (empty) parent goes too.
    remove_cgroup_parent("hull-build-example");
    let _ = std::fs::remove_dir_all(&work);
    r
}

/// `busybox:local`: a one-layer image of busybox-static.
fn base_image(store: &ImageStore, work: &Path) -> Result<()> {
    let tree = work.join("tree");
    std::fs::create_dir_all(&tree)?;
    hull_testkit::busybox_rootfs(&tree)?;
    std::fs::write(tree.join("etc/motd"), "welcome to busybox:local\n")?;
    let mut config = store.scratch_config()?;
    config.set_config(Some(
        ConfigBuilder::default()
            .env(vec!["PATH=/bin".to_string()])
            .cmd(vec!["sh".to_string()])
            .build()?,
    ));
    store.import_tree(&tree, config, "busybox:local")?;
    std::fs::remove_dir_all(&tree)?;
    Ok(())
}

fn run(work: &Path) -> Result<()> {
    let store = ImageStore::open(work.join("images"), work.join("snapshots"))?;
    base_image(&store, work)?;

    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let file = Dockerfile::parse(&std::fs::read_to_string(
        examples.join("Dockerfile.example"),
    )?)?;
    let runtime = work.join("run");
    let image = ImageBuilder::new(&store, &examples)
        .configure(|b| b.runtime_root(&runtime).cgroup_parent("hull-build-example"))
        .build(&file, "example:latest", &mut |line| println!("{line}"))?;
    println!(
        "{} layers, {} history entries",
        image.manifest.layers().len(),
        image.config.history().as_ref().map_or(0, Vec::len)
    );

    println!("\n== docker run example:latest ==");
    let mut c = Container::builder("built")
        .runtime_root(&runtime)
        .cgroup_parent("hull-build-example")
        .image(store.prepare("example:latest")?)
        .build()?
        .create()?;
    c.start()?;
    let status = c.wait()?;
    c.delete()?;
    println!("exited: {status}");
    Ok(())
}

/// The (empty) parent cgroup the containers were made under.
fn remove_cgroup_parent(name: &str) {
    if let Ok(layout) = hull::cgroup::Layout::detect() {
        if let Ok(mut cg) = hull::cgroup::Cgroup::create(&layout, name) {
            let _ = cg.delete();
        }
    }
}
