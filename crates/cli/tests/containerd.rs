//! containerd (Debian's 1.6, with containerd-shim-runc-v2) running
//! containers through `ctr run --runc-binary <hull>`: the shim drives hull
//! with runc's command line (`--log-format json`, create with a pid file,
//! start, state, kill, delete, exec with `--process`).
//!
//! Isolation as in the podman tests: a private containerd (its own config,
//! root, state and socket in a temp dir) is the holder of a network and
//! mount namespace made for the test, with fresh tmpfs mounts on /run and
//! /var/tmp there; cgroups under a test-owned absolute parent (`ctr run
//! --cgroup`). The image is a busybox rootfs imported into a private podman
//! store and saved as an OCI archive.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use common::{
    HULL, Out, busybox_rootfs, cgroup_hierarchies, have, nsenter, output_with_tmpdir,
    remove_cgroup_tree, spawn_ns_holder, tar_dir,
};
use hull_testkit::unique_name;

struct Containerd {
    dir: PathBuf,
    cgroup: String,
    holder: Child,
}

impl Containerd {
    fn new() -> Option<Containerd> {
        if !hull_testkit::is_root()
            || !Path::new("/bin/busybox").exists()
            || ![
                "containerd",
                "ctr",
                "containerd-shim-runc-v2",
                "podman",
                "unshare",
                "nsenter",
                "ip",
            ]
            .iter()
            .all(|b| have(b))
        {
            eprintln!(
                "skipped: needs root, busybox-static, containerd, ctr, podman, unshare, nsenter"
            );
            return None;
        }
        let cgroup = unique_name("hull-ctd-");
        let dir = std::env::temp_dir().join(&cgroup);
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let d = dir.display().to_string();
        std::fs::write(
            dir.join("config.toml"),
            format!(
                "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\", \"io.containerd.snapshotter.v1.btrfs\", \
                 \"io.containerd.snapshotter.v1.zfs\", \"io.containerd.snapshotter.v1.devmapper\", \
                 \"io.containerd.snapshotter.v1.aufs\"]\n\
                 [grpc]\n  address = \"{d}/containerd.sock\"\n[ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\
                 [debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n"
            ),
        )
        .unwrap();
        let holder = spawn_ns_holder(
            &[],
            &format!("exec containerd --config {d}/config.toml 2>{d}/containerd.log"),
        );
        let c = Containerd {
            dir,
            cgroup,
            holder,
        };
        assert!(
            common::wait_until(|| c.dir.join("containerd.sock").exists()),
            "containerd did not start"
        );
        let rootfs = c.dir.join("rootfs");
        busybox_rootfs(&rootfs);
        let tar = c.dir.join("rootfs.tar");
        tar_dir(&rootfs, &tar);
        let podman = format!(
            "podman --root {d}/proot --runroot {d}/prun --tmpdir {d}/plib --storage-driver=overlay"
        );
        let o = c.sh(&format!(
            "{podman} import {d}/rootfs.tar localhost/hullbox:latest >/dev/null && \
             {podman} save --format oci-archive -o {d}/img.tar localhost/hullbox:latest && \
             ctr -a {d}/containerd.sock -n hull image import --base-name localhost/hullbox {d}/img.tar"
        ));
        assert_eq!(o.code, 0, "image: {o:?}");
        Some(c)
    }

    fn in_ns(&self, cmd: &mut Command) -> Out {
        output_with_tmpdir(cmd, &self.dir.join("tmp"))
    }

    fn sh(&self, script: &str) -> Out {
        self.in_ns(nsenter(&self.holder).args(["sh", "-c", script]))
    }

    fn ctr(&self, args: &[&str]) -> Out {
        let sock = self.dir.join("containerd.sock");
        self.in_ns(
            nsenter(&self.holder)
                .args(["ctr", "-a"])
                .arg(&sock)
                .args(["-n", "hull"])
                .args(args),
        )
    }

    fn cgroup_of(&self, id: &str) -> String {
        format!("/{}/{id}", self.cgroup)
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for id in ["c1", "c2"] {
            let _ = self.ctr(&["task", "kill", "-s", "KILL", id]);
            let _ = self.ctr(&["task", "rm", "-f", id]);
            let _ = self.ctr(&["container", "rm", id]);
        }
        for h in cgroup_hierarchies() {
            remove_cgroup_tree(&h.join(&self.cgroup));
        }
        // Shims this containerd started (named by its socket path).
        let needle = self.dir.to_string_lossy().into_owned();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            if pid != i32::try_from(self.holder.id()).unwrap_or(0)
                && String::from_utf8_lossy(&cmdline).contains("containerd-shim")
                && String::from_utf8_lossy(&cmdline).contains(&needle)
            {
                // SAFETY: kill takes two integers; a shim of this test's
                // containerd.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        // SAFETY: kill takes two integers; our own child.
        unsafe { libc::kill(i32::try_from(self.holder.id()).unwrap_or(0), libc::SIGTERM) };
        let _ = self.holder.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        if !std::thread::panicking() {
            let left: Vec<_> = cgroup_hierarchies()
                .into_iter()
                .map(|h| h.join(&self.cgroup))
                .filter(|p| p.exists())
                .collect();
            assert!(left.is_empty(), "cgroups left: {left:?}");
        }
    }
}

#[test]
fn ctr_run_exec_kill_through_the_runc_shim() {
    let Some(c) = Containerd::new() else { return };
    let o = c.ctr(&[
        "run",
        "--rm",
        "--runc-binary",
        HULL,
        "--cgroup",
        &c.cgroup_of("c1"),
        "localhost/hullbox:latest",
        "c1",
        "sh",
        "-c",
        "echo hi-from-ctr; exit 3",
    ]);
    assert_eq!((o.code, o.stdout.as_str()), (3, "hi-from-ctr\n"), "{o:?}");
    let o = c.ctr(&[
        "run",
        "-d",
        "--runc-binary",
        HULL,
        "--cgroup",
        &c.cgroup_of("c2"),
        "localhost/hullbox:latest",
        "c2",
        "sleep",
        "100",
    ]);
    assert_eq!(o.code, 0, "{o:?}");
    let o = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "c2",
        "sh",
        "-c",
        "echo exec-ok; exit 4",
    ]);
    assert_eq!((o.code, o.stdout.as_str()), (4, "exec-ok\n"), "{o:?}");
    let o = c.ctr(&["task", "ls"]);
    assert!(o.stdout.contains("RUNNING"), "{o:?}");
    assert_eq!(c.ctr(&["task", "pause", "c2"]).code, 0);
    assert!(c.ctr(&["task", "ls"]).stdout.contains("PAUSED"));
    assert_eq!(c.ctr(&["task", "resume", "c2"]).code, 0);
    assert_eq!(c.ctr(&["task", "kill", "-s", "KILL", "c2"]).code, 0);
    assert!(common::wait_until(|| c
        .ctr(&["task", "ls"])
        .stdout
        .contains("STOPPED")));
    assert_eq!(c.ctr(&["task", "rm", "c2"]).code, 0);
    assert_eq!(c.ctr(&["container", "rm", "c2"]).code, 0);
}
