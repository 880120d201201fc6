//! Cgroups, pause/resume, stats and overlay roots (as root).

use std::path::{Path, PathBuf};
use std::time::Duration;

use hull_cgroup::{Layout, Limit, Resources};
use hull_container::{Container, ContainerBuilder, Rootfs, Status, Stdio};
use hull_testkit::{Snapshot, is_root, unique_name};

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

/// A test-owned runtime directory and cgroup parent, both removed after.
struct Sandbox {
    dir: PathBuf,
    cgroup_parent: String,
}

impl Sandbox {
    fn new() -> Sandbox {
        let name = unique_name("hull-res-");
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        Sandbox {
            dir,
            cgroup_parent: name,
        }
    }

    fn builder(&self, id: &str) -> ContainerBuilder {
        Container::builder(id)
            .runtime_root(self.dir.join("run"))
            .cgroup_parent(&self.cgroup_parent)
    }

    /// Every directory of the test-owned cgroup parent, in every hierarchy.
    fn cgroup_roots(&self) -> Vec<PathBuf> {
        let layout = Layout::detect().unwrap();
        let mut v: Vec<PathBuf> = layout
            .v1_hierarchies()
            .iter()
            .map(|h| h.mount_point.join(&self.cgroup_parent))
            .collect();
        if let Some(h) = layout.v2_hierarchy() {
            v.push(h.mount_point.join(&self.cgroup_parent));
        }
        v
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        for d in self.cgroup_roots() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

fn out_pipe() -> (std::fs::File, Stdio) {
    let mut fds = [0; 2];
    // SAFETY: a valid array for pipe2.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: both fds are new and ours.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    (std::fs::File::from(rd), Stdio::Fd(wr))
}

#[test]
fn limits_reach_the_container_and_its_cgroup_is_removed() {
    require_root!();
    let sb = Sandbox::new();
    let resources = Resources::builder()
        .memory_limit(64 << 20)
        .pids_max(Limit::Value(20))
        .build()
        .unwrap();
    let (mut rd, wr) = out_pipe();
    let mut c = Container::create_with_stdio(
        sb.builder("lim")
            .resources(resources)
            .args(["sh", "-c", "cat /proc/self/cgroup"])
            .build()
            .unwrap(),
        [Stdio::Null, wr, Stdio::Inherit],
    )
    .unwrap();
    let cg = c.cgroup().unwrap();
    let mem_dir = cg
        .dir_of(hull_cgroup::Controller::Memory)
        .unwrap()
        .to_path_buf();
    let pids_dir = cg
        .dir_of(hull_cgroup::Controller::Pids)
        .unwrap()
        .to_path_buf();
    let limit = std::fs::read_to_string(mem_dir.join("memory.limit_in_bytes"))
        .or_else(|_| std::fs::read_to_string(mem_dir.join("memory.max")))
        .unwrap();
    assert_eq!(limit.trim(), (64u64 << 20).to_string());
    assert_eq!(
        std::fs::read_to_string(pids_dir.join("pids.max"))
            .unwrap()
            .trim(),
        "20"
    );
    // The created process is already in the cgroup.
    let procs = std::fs::read_to_string(mem_dir.join("cgroup.procs")).unwrap();
    assert_eq!(procs.trim(), c.pid().unwrap().to_string());
    c.start().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut rd, &mut out).unwrap();
    assert!(c.wait().unwrap().success());
    // Inside its cgroup namespace the container sees itself at the root.
    for line in out.lines() {
        assert!(line.ends_with(":/"), "{line}");
    }
    c.delete().unwrap();
    assert!(!mem_dir.exists() && !pids_dir.exists());
}

#[test]
fn a_cgroup_that_cannot_be_made_is_a_typed_error_and_leaves_nothing() {
    require_root!();
    let sb = Sandbox::new();
    let before = Snapshot::take();
    // CPU 4095 is on no machine this runs on: applying the limits fails
    // after the directories exist (the cgroup is made on a thread while
    // the child is planned), and they must go again.
    let resources = Resources::builder().cpus("4095").unwrap().build().unwrap();
    let err = sb
        .builder("nocpu")
        .resources(resources)
        .args(["true"])
        .build()
        .unwrap()
        .create()
        .unwrap_err();
    assert!(
        matches!(
            &err,
            hull_container::Error::Cgroup {
                source: hull_cgroup::Error::CpusetOutOfRange { .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("nocpu"), "{err}");
    for root in sb.cgroup_roots() {
        assert!(
            !root.join("nocpu").exists(),
            "{} left behind",
            root.display()
        );
    }
    assert!(!sb.dir.join("run/nocpu").exists());
    before.assert_no_leaks(&[]);
}

#[test]
fn fork_past_pids_limit_fails_inside() {
    require_root!();
    let sb = Sandbox::new();
    let r = Resources::builder()
        .pids_max(Limit::Value(4))
        .build()
        .unwrap();
    let (mut rd, wr) = out_pipe();
    let mut c = Container::create_with_stdio(
        sb.builder("pids")
            .resources(r)
            .args([
                "sh",
                "-c",
                "for i in 1 2 3 4 5 6; do sleep 5 & done 2>&1; echo done",
            ])
            .build()
            .unwrap(),
        [Stdio::Null, wr, Stdio::Inherit],
    )
    .unwrap();
    c.start().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut rd, &mut out).unwrap();
    c.wait().unwrap();
    // The shell reports the failed fork (EAGAIN) on stdout (2>&1).
    assert!(
        out.contains("fork") || out.contains("Resource temporarily unavailable"),
        "{out}"
    );
    c.delete().unwrap();
}

#[test]
fn pause_stops_the_container_and_resume_continues_it() {
    require_root!();
    let sb = Sandbox::new();
    let counter = sb.dir.join("counter");
    std::fs::create_dir_all(&counter).unwrap();
    let mut c = sb
        .builder("pause")
        .mount(hull_container::Mount::bind(&counter, "/c"))
        .args([
            "sh",
            "-c",
            "i=0; while :; do i=$((i+1)); echo $i > /c/t; mv /c/t /c/n; sleep 0.01; done",
        ])
        .build()
        .unwrap()
        .create()
        .unwrap();
    c.start().unwrap();
    // The writer renames a complete file into place, so a freeze never
    // leaves it half written; retry only while it does not exist yet.
    let read = || {
        for _ in 0..100 {
            let text = std::fs::read_to_string(counter.join("n")).unwrap_or_default();
            if let Ok(n) = text.trim().parse::<u64>() {
                return n;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("counter never readable");
    };
    std::thread::sleep(Duration::from_millis(300));
    c.pause().unwrap();
    assert_eq!(c.status(), Status::Paused);
    assert!(c.state().to_json().contains("\"paused\""));
    let a = read();
    std::thread::sleep(Duration::from_millis(300));
    let b = read();
    assert_eq!(a, b, "counter moved while paused");
    c.resume().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(read() > b, "counter did not move after resume");
    let stats = c.stats().unwrap();
    assert!(stats.pids.is_some() || stats.memory.is_some());
    c.pause().unwrap();
    // Delete works on a paused container.
    c.delete().unwrap();
}

#[test]
fn overlay_root_from_layers_with_private_upper() {
    require_root!();
    let sb = Sandbox::new();
    let before = Snapshot::take();
    // Layer 0 (bottom): a host-like root made of links into the host /usr
    // cannot work (overlay needs real files), so the layers carry a static
    // busybox when the machine has one, else the test is skipped.
    let busybox = Path::new("/bin/busybox");
    if !busybox.exists() {
        eprintln!("skipped: busybox-static not installed");
        return;
    }
    let bottom = sb.dir.join("l0");
    let top = sb.dir.join("l1");
    for d in ["bin", "etc"] {
        std::fs::create_dir_all(bottom.join(d)).unwrap();
    }
    std::fs::create_dir_all(top.join("etc")).unwrap();
    std::fs::copy(busybox, bottom.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", bottom.join("bin/sh")).unwrap();
    std::fs::write(bottom.join("etc/layer"), "bottom\n").unwrap();
    std::fs::write(bottom.join("etc/only-bottom"), "b\n").unwrap();
    std::fs::write(top.join("etc/layer"), "top\n").unwrap();
    let run = |id: &str, script: &str| {
        let (mut rd, wr) = out_pipe();
        let mut c = Container::create_with_stdio(
            sb.builder(id)
                .rootfs(Rootfs::Overlay {
                    lowers: vec![top.clone(), bottom.clone()],
                    upper: None,
                })
                .env("PATH", "/bin")
                .args(["sh", "-c", script])
                .build()
                .unwrap(),
            [Stdio::Null, wr, Stdio::Inherit],
        )
        .unwrap();
        c.start().unwrap();
        let mut out = String::new();
        std::io::Read::read_to_string(&mut rd, &mut out).unwrap();
        assert!(c.wait().unwrap().success(), "{out}");
        c.delete().unwrap();
        out
    };
    let out = run(
        "ov1",
        "busybox cat /etc/layer /etc/only-bottom; busybox rm /etc/only-bottom; echo new > /etc/new; busybox ls /etc",
    );
    assert_eq!(out, "top\nb\nlayer\nnew\n");
    // A second container from the same layers does not see the first's writes.
    let out = run("ov2", "busybox ls /etc");
    assert_eq!(out, "layer\nonly-bottom\n");
    // The layers themselves are unchanged.
    assert!(bottom.join("etc/only-bottom").exists());
    assert!(!top.join("etc/new").exists());
    before.assert_no_leaks(&[]);
}
