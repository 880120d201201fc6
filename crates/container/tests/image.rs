//! Containers from images: the image config's defaults, shared snapshots,
//! commit with whiteouts, cp confined to the root, the Dockerfile builder.
//! As root; the base image is made from busybox-static.

mod common;

use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use common::images::Images;
use common::{Runtime, pipe, run_output};
use hull_container::hull_image_layers::oci::ConfigBuilder;
use hull_container::{
    CommitOptions, Container, Dockerfile, Error, ImageBuilder, ImageStore, Mount, Stdio,
};
use hull_testkit::probe_binary;
use serde_json::Value;

fn sh(rt: &Runtime, id: &str, store: &ImageStore, reference: &str, script: &str) -> String {
    let image = store.prepare(reference).unwrap();
    let (s, out) = run_output(rt.builder(id).image(image).args(["sh", "-c", script]));
    assert!(s.success(), "{id}: {s}: {out}");
    out
}

#[test]
fn the_image_config_reaches_the_process_and_the_builder_overrides_it() {
    require_root!();
    let Some(img) = Images::new() else { return };
    let store = &img.store;
    let base = store.prepare("base:1").unwrap();
    let mut config = base.image().config.clone();
    config.set_config(Some(
        ConfigBuilder::default()
            .env(vec![
                "PATH=/bin".to_string(),
                "FROM_IMAGE=yes".to_string(),
                "OVERRIDE=image".to_string(),
            ])
            .entrypoint(vec!["/hull-probe".to_string()])
            .cmd(vec!["from-cmd".to_string()])
            .working_dir("/home/app")
            .user("app")
            .build()
            .unwrap(),
    ));
    let probe_img = store
        .write_image(&config, base.image().manifest.layers().clone())
        .unwrap();
    store.tag("probe:1", &probe_img).unwrap();

    let rt = Runtime::new();
    let prepared = store.prepare("probe:1").unwrap();
    assert_eq!(prepared.defaults().user, Some((1000, 1000)));
    assert_eq!(prepared.defaults().args, ["/hull-probe", "from-cmd"]);
    let b = rt
        .builder("from-image")
        // Set before the image: still wins over the image's value.
        .env("OVERRIDE", "builder")
        .image(prepared)
        .mount(Mount::bind_ro(probe_binary(), "/hull-probe"));
    let (s, out) = run_output(b);
    assert!(s.success(), "{s}: {out}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["cwd"], "/home/app");
    assert_eq!(v["uid"][0], "1000");
    assert_eq!(v["gid"][0], "1000");
    assert_eq!(v["args"], serde_json::json!(["from-cmd"]));
    let env: Vec<&str> = v["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(env.contains(&"FROM_IMAGE=yes"), "{env:?}");
    assert!(env.contains(&"OVERRIDE=builder"), "{env:?}");
    assert!(env.contains(&"PATH=/bin"), "{env:?}");

    // Builder calls after the image override its command, user and cwd.
    let prepared = store.prepare("probe:1").unwrap();
    let b = rt
        .builder("overridden")
        .image(prepared)
        .args(["/hull-probe", "given"])
        .user(0, 0)
        .cwd("/tmp")
        .mount(Mount::bind_ro(probe_binary(), "/hull-probe"));
    let (s, out) = run_output(b);
    assert!(s.success(), "{s}: {out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["cwd"], "/tmp");
    assert_eq!(v["uid"][0], "0");
    assert_eq!(v["args"], serde_json::json!(["given"]));
    assert!(rt.is_empty(), "runtime directories left");
}

#[test]
fn containers_of_one_image_share_its_snapshots_but_not_their_writes() {
    require_root!();
    let Some(img) = Images::new() else { return };
    let rt = Runtime::new();
    let before = hull_testkit::Snapshot::take();
    let image = img.store.prepare("base:1").unwrap();
    assert_eq!(img.committed(), 1);
    let run = |id: &str, script: &str| {
        let (rd, wr) = pipe();
        let mut c = Container::create_with_stdio(
            rt.builder(id)
                .image(image.clone())
                .args(["sh", "-c", script])
                .build()
                .unwrap(),
            [Stdio::Null, Stdio::Fd(wr), Stdio::Inherit],
        )
        .unwrap();
        c.start().unwrap();
        let mut out = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(rd), &mut out).unwrap();
        assert!(c.wait().unwrap().success(), "{id}: {out}");
        (c, out)
    };
    let (mut a, out_a) = run("a", "echo a > /only-a; rm /etc/motd; cat /only-a");
    // a is stopped but not deleted: its upper layer still exists.
    let (mut b, out_b) = run(
        "b",
        "test ! -e /only-a && cat /etc/motd && echo b > /only-b && echo clean",
    );
    assert_eq!(out_a, "a\n");
    assert_eq!(out_b, "from the base image\nclean\n");
    // The second preparation extracted nothing.
    let again = img.store.prepare("base:1").unwrap();
    assert_eq!(again.lowers(), image.lowers());
    assert_eq!(img.committed(), 1);
    assert!(a.runtime_dir().join("upper/only-a").exists());
    assert!(!a.runtime_dir().join("upper/only-b").exists());
    a.delete().unwrap();
    b.delete().unwrap();
    assert!(rt.is_empty(), "runtime directories left");
    // No mount or link appeared on the host.
    before.assert_no_leaks(&[]);
    // The shared snapshot stays for the next container; the base is intact.
    assert_eq!(img.committed(), 1);
    assert!(image.lowers()[0].join("etc/motd").is_file());
}

#[test]
fn an_unknown_reference_is_a_typed_error() {
    require_root!();
    let Some(img) = Images::new() else { return };
    match img.store.prepare("missing:1") {
        Err(Error::Image { reference, source }) => {
            assert_eq!(reference, "missing:1");
            assert!(
                matches!(
                    *source,
                    hull_container::hull_image_layers::Error::RefNotFound { .. }
                ),
                "{source}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Nothing was extracted for it.
    assert_eq!(img.committed(), 0);
}

#[test]
fn commit_turns_a_deleted_lower_file_into_a_whiteout() {
    require_root!();
    let Some(img) = Images::new() else { return };
    let store = &img.store;
    let rt = Runtime::new();
    let image = store.prepare("base:1").unwrap();
    let (rd, wr) = pipe();
    let mut c = Container::create_with_stdio(
        rt.builder("committer")
            .image(image)
            // A mount point the image lacks: kept out of the commit.
            .mount(Mount::bind_ro(probe_binary(), "/hull-probe"))
            .args(["sh", "-c", "rm /etc/motd && echo added > /added"])
            .build()
            .unwrap(),
        [Stdio::Null, Stdio::Fd(wr), Stdio::Inherit],
    )
    .unwrap();
    c.start().unwrap();
    drop(rd);
    assert!(c.wait().unwrap().success());
    let new = c
        .commit(
            store,
            "derived:1",
            &CommitOptions {
                comment: Some("test commit".into()),
                ..CommitOptions::default()
            },
        )
        .unwrap();
    c.delete().unwrap();
    assert_eq!(new.manifest.layers().len(), 2);
    let history = new.config.history().clone().unwrap();
    let last = history.last().unwrap();
    assert_eq!(
        last.created_by().as_deref(),
        Some("sh -c rm /etc/motd && echo added > /added")
    );
    assert_eq!(last.comment().as_deref(), Some("test commit"));
    assert!(store.layout().tags().unwrap().contains(&"derived:1".into()));

    // The new image: only its own layer is extracted, as a whiteout.
    let derived = store.prepare("derived:1").unwrap();
    assert_eq!(img.committed(), 2);
    let top: &Path = &derived.lowers()[0];
    // Only the container's changes: no runtime mount points, no /dev.
    let mut entries = Vec::new();
    let mut stack = vec![top.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            entries.push(p.strip_prefix(top).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    entries.sort();
    assert_eq!(entries, ["added", "etc", "etc/motd"]);
    let m = std::fs::symlink_metadata(top.join("etc/motd")).unwrap();
    assert!(m.file_type().is_char_device(), "no whiteout: {m:?}");
    let out = sh(
        &rt,
        "from-derived",
        store,
        "derived:1",
        "test ! -e /etc/motd && cat /added",
    );
    assert_eq!(out, "added\n");
    // The base image still has the file.
    let out = sh(&rt, "from-base", store, "base:1", "cat /etc/motd");
    assert_eq!(out, "from the base image\n");
    assert!(rt.is_empty(), "runtime directories left");
}

#[test]
fn cp_copies_in_and_out_and_never_leaves_the_root() {
    require_root!();
    let Some(img) = Images::new() else { return };
    let rt = Runtime::new();
    // A host directory the container must not reach.
    let host = img.dir.join("host");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("secret"), "host secret\n").unwrap();
    let stage = img.dir.join("stage");
    std::fs::create_dir_all(stage.join("data/sub")).unwrap();
    std::fs::write(stage.join("data/sub/f"), "payload\n").unwrap();
    std::os::unix::fs::symlink(&host, stage.join("leak")).unwrap();
    std::os::unix::fs::symlink(host.join("secret"), stage.join("evil")).unwrap();
    std::os::unix::fs::symlink("/../../../..", stage.join("up")).unwrap();
    std::fs::write(stage.join("file"), "new\n").unwrap();

    let image = img.store.prepare("base:1").unwrap();
    let mut c = common::started(rt.builder("cp").image(image).args(["sleep", "100"]));
    // Symlinks are copied as symlinks.
    c.copy_in(stage.join("leak"), "/leak").unwrap();
    c.copy_in(stage.join("evil"), "/etc/evil").unwrap();
    c.copy_in(stage.join("up"), "/up").unwrap();
    c.copy_in(stage.join("data"), "/").unwrap();

    let copy_err = |r: hull_container::Result<()>| match r {
        Err(Error::Copy { source, .. }) => source.raw_os_error(),
        other => panic!("expected a copy error, got {other:?}"),
    };
    let out = img.dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    // Reading through a symlink to a host path: not found in the root.
    assert_eq!(
        copy_err(c.copy_out("/leak/secret", out.join("x"))),
        Some(libc::ENOENT)
    );
    // Writing through it: refused, nothing written on the host.
    assert_eq!(
        copy_err(c.copy_in(stage.join("file"), "/leak/new")),
        Some(libc::ENOENT)
    );
    assert!(!host.join("new").exists());
    // Writing onto a symlink: refused, the host file unchanged.
    assert_eq!(
        copy_err(c.copy_in(stage.join("file"), "/etc/evil")),
        Some(libc::ELOOP)
    );
    assert_eq!(
        std::fs::read_to_string(host.join("secret")).unwrap(),
        "host secret\n"
    );
    // Onto a FIFO or a device node: refused without opening it.
    let mut mk = c
        .exec(
            ["sh", "-c", "mkfifo /fifo && mknod /null-dev c 1 3"],
            [Stdio::Null, Stdio::Null, Stdio::Inherit],
        )
        .unwrap();
    assert!(mk.wait().unwrap().success());
    for target in ["/fifo", "/null-dev"] {
        assert_eq!(
            copy_err(c.copy_in(stage.join("file"), target)),
            Some(libc::EPERM),
            "{target}"
        );
    }
    // `..` through a symlink stops at the container's root.
    c.copy_out("/up/etc/passwd", out.join("passwd")).unwrap();
    assert!(
        std::fs::read_to_string(out.join("passwd"))
            .unwrap()
            .contains("app:x:1000")
    );
    // Copying a symlink out copies the link, not the host file.
    c.copy_out("/etc/evil", &out).unwrap();
    assert!(
        std::fs::symlink_metadata(out.join("evil"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // A directory round trip.
    c.copy_out("/data", &out).unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join("data/sub/f")).unwrap(),
        "payload\n"
    );
    c.delete().unwrap();
    assert!(matches!(
        c.copy_out("/etc/passwd", &out),
        Err(Error::State { .. })
    ));
    assert!(rt.is_empty(), "runtime directories left");
}

#[test]
fn a_dockerfile_builds_an_image_that_runs() {
    require_root!();
    let Some(img) = Images::new() else { return };
    let store = &img.store;
    let rt = Runtime::new();
    let ctx = img.dir.join("context");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("hello.txt"), "hello from the context\n").unwrap();
    let text = r#"# a test image
FROM base:1
ENV GREETING=hi
WORKDIR /app
COPY hello.txt ./
RUN echo "$GREETING from run" > /app/run.txt \
    && rm /etc/motd
USER app
LABEL purpose=test
EXPOSE 8080
CMD ["sh", "-c", "cat /app/hello.txt /app/run.txt; id -u; pwd; test ! -e /etc/motd && echo gone"]
"#;
    let file = Dockerfile::parse(text).unwrap();
    let mut lines = Vec::new();
    let rt_path = rt.0.clone();
    let parent = rt.cgroup_parent();
    let image = ImageBuilder::new(store, &ctx)
        .configure(move |b| b.runtime_root(&rt_path).cgroup_parent(parent.clone()))
        .quiet(true)
        .build(&file, "built:1", &mut |l| lines.push(l.to_string()))
        .unwrap();
    assert_eq!(lines.len(), 10, "{lines:#?}");
    assert_eq!(lines[0], "Step 1/9 : FROM base:1");
    assert!(lines[4].starts_with("Step 5/9 : RUN echo"), "{lines:#?}");
    // base + WORKDIR + COPY + RUN.
    assert_eq!(image.manifest.layers().len(), 4);
    let cc = image.config.config().clone().unwrap();
    assert_eq!(cc.labels().as_ref().unwrap()["purpose"], "test");
    assert_eq!(cc.exposed_ports().clone().unwrap(), ["8080/tcp"]);

    let prepared = store.prepare("built:1").unwrap();
    let (s, out) = run_output(rt.builder("built").image(prepared));
    assert!(s.success(), "{s}: {out}");
    assert_eq!(
        out,
        "hello from the context\nhi from run\n1000\n/app\ngone\n"
    );
    assert!(rt.is_empty(), "runtime directories left");
}

#[test]
fn dockerfile_errors_name_the_line() {
    require_root!();
    let Some(img) = Images::new() else { return };
    let rt = Runtime::new();
    let ctx = img.dir.join("context");
    std::fs::create_dir_all(&ctx).unwrap();
    let rt_path = rt.0.clone();
    let parent = rt.cgroup_parent();
    let builder = ImageBuilder::new(&img.store, &ctx)
        .configure(move |b| b.runtime_root(&rt_path).cgroup_parent(parent.clone()))
        .quiet(true);
    let build = |text: &str| {
        let file = Dockerfile::parse(text)?;
        builder.build(&file, "bad:1", &mut |_| {})
    };
    match build("FROM base:1\nADD x /x\n") {
        Err(Error::Dockerfile { line: 2, problem }) => {
            assert!(problem.contains("ADD"), "{problem}")
        }
        other => panic!("{other:?}"),
    }
    match build("# base\nFROM nothing:here\nRUN true\n") {
        Err(Error::BuildStep {
            line: 2,
            instruction,
            source,
        }) => {
            assert_eq!(instruction, "FROM");
            assert!(matches!(*source, Error::Image { .. }), "{source}");
        }
        other => panic!("{other:?}"),
    }
    match build("FROM base:1\nRUN true\nRUN exit 3\n") {
        Err(Error::BuildStep {
            line: 3, source, ..
        }) => {
            assert!(matches!(*source, Error::CommandFailed { .. }), "{source}")
        }
        other => panic!("{other:?}"),
    }
    match build("FROM base:1\nCOPY missing /x\n") {
        Err(Error::BuildStep {
            line: 2, source, ..
        }) => {
            assert!(matches!(*source, Error::Copy { .. }), "{source}")
        }
        other => panic!("{other:?}"),
    }
    assert!(!img.store.layout().tags().unwrap().contains(&"bad:1".into()));
    assert!(rt.is_empty(), "runtime directories left");
}

#[test]
fn a_running_container_is_committed_frozen_and_keeps_running() {
    require_root!();
    let Some(img) = Images::new() else { return };
    let store = &img.store;
    let rt = Runtime::new();
    let mut c = common::started(
        rt.builder("live")
            .image(store.prepare("base:1").unwrap())
            .args(["sh", "-c", "echo live > /state; exec sleep 100"]),
    );
    // Wait for the write (the upper layer is on the host).
    let upper = c.runtime_dir().join("upper/state");
    for _ in 0..200 {
        if upper.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    c.commit(store, "live:1", &CommitOptions::default())
        .unwrap();
    assert_eq!(c.status(), hull_container::Status::Running);
    c.delete().unwrap();
    let out = sh(&rt, "from-live", store, "live:1", "cat /state");
    assert_eq!(out, "live\n");
    // A container not made from an image has nothing to commit onto.
    let mut host = rt
        .builder("host-root")
        .args(["true"])
        .build()
        .unwrap()
        .create()
        .unwrap();
    assert!(matches!(
        host.commit(store, "nope:1", &CommitOptions::default()),
        Err(Error::Invalid {
            field: "rootfs",
            ..
        })
    ));
    host.delete().unwrap();
    assert!(rt.is_empty(), "runtime directories left");
}
