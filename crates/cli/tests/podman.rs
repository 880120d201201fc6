//! podman (Debian's, with conmon and netavark) running containers with
//! `--runtime` pointing at the built hull binary, end to end, on a busybox
//! image imported from a local tarball (no registry).
//!
//! Isolation: each test has its own podman store (`--root`, `--runroot`,
//! `--tmpdir`, `--network-config-dir` in a temp dir), its own cgroup parent
//! at an absolute path (`--cgroup-manager=cgroupfs`; conmon lands in
//! `<parent>/conmon`), and runs every podman command inside one network and
//! mount namespace it created (a holder process made by `unshare`), with
//! fresh tmpfs mounts on /run, /dev/shm and /var/tmp there: podman's
//! bridge, firewall rules, netns files, shm locks and mounts never reach the
//! host's. Bridge networks use 198.18.0.0/15 subnets only.
//!
//! Flags every run gets, and why:
//! - `--ulimit nofile=1024:1024 --ulimit nproc=1024:1024`: podman's
//!   defaults (nofile 1048576, nproc 32768) are above this host's hard
//!   limits, and raising a hard limit needs CAP_SYS_RESOURCE, which this
//!   machine withholds (runc fails the same way here).

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use common::{
    HULL, Out, busybox_rootfs, cgroup_hierarchies, have, nsenter, output_with_tmpdir,
    remove_cgroup_tree, spawn_ns_holder, tar_dir,
};
use hull_testkit::unique_name;

struct Podman {
    dir: PathBuf,
    cgroup: String,
    holder: Child,
}

impl Podman {
    /// A private podman with the busybox image imported, or None (the test
    /// is skipped) without root or the tools.
    fn new() -> Option<Podman> {
        if !hull_testkit::is_root()
            || !Path::new("/bin/busybox").exists()
            || !["podman", "conmon", "unshare", "nsenter", "ip"]
                .iter()
                .all(|b| have(b))
        {
            eprintln!("skipped: needs root, busybox-static, podman, conmon, unshare, nsenter");
            return None;
        }
        let cgroup = unique_name("hull-podman-");
        let dir = std::env::temp_dir().join(&cgroup);
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let holder = spawn_ns_holder(&["/dev/shm"], "exec sleep 1000000");
        let p = Podman {
            dir,
            cgroup,
            holder,
        };
        let rootfs = p.dir.join("rootfs");
        busybox_rootfs(&rootfs);
        for app in ["httpd", "wget", "mkdir", "cut"] {
            let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(app));
        }
        let tar = p.dir.join("rootfs.tar");
        tar_dir(&rootfs, &tar);
        let o = p.podman(&["import", tar.to_str().unwrap(), "localhost/hullbox:latest"]);
        assert_eq!(o.code, 0, "import: {o:?}");
        Some(p)
    }

    /// Runs `cmd` (an nsenter into the holder's namespaces).
    fn in_ns(&self, cmd: &mut Command) -> Out {
        output_with_tmpdir(cmd, &self.dir.join("tmp"))
    }

    fn nsenter(&self) -> Command {
        nsenter(&self.holder)
    }

    fn globals(&self) -> Vec<String> {
        let d = |s: &str| self.dir.join(s).to_string_lossy().into_owned();
        vec![
            "--root".into(),
            d("root"),
            "--runroot".into(),
            d("runroot"),
            "--tmpdir".into(),
            d("libpod"),
            "--network-config-dir".into(),
            d("net"),
            "--cgroup-manager=cgroupfs".into(),
            "--events-backend=file".into(),
            "--storage-driver=overlay".into(),
            "--runtime".into(),
            HULL.into(),
        ]
    }

    fn podman(&self, args: &[&str]) -> Out {
        self.in_ns(self.nsenter().arg("podman").args(self.globals()).args(args))
    }

    /// `podman run` with the flags every run here needs, then `args`.
    fn run(&self, args: &[&str]) -> Out {
        let parent = format!("--cgroup-parent=/{}", self.cgroup);
        let mut all = vec![
            "run",
            parent.as_str(),
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ];
        all.extend_from_slice(args);
        self.podman(&all)
    }

    /// A shell command in the holder's namespaces (the "host" side).
    fn sh(&self, script: &str) -> Out {
        self.in_ns(self.nsenter().args(["sh", "-c", script]))
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.podman(&["rm", "--all", "--force", "--time", "0"]);
        // Whatever is left (conmon, containers) is in the test's cgroups.
        for h in cgroup_hierarchies() {
            remove_cgroup_tree(&h.join(&self.cgroup));
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        // The overlay mounts lived in the holder's mount namespace, gone now.
        let _ = std::fs::remove_dir_all(&self.dir);
        let leftover: Vec<_> = cgroup_hierarchies()
            .into_iter()
            .map(|h| h.join(&self.cgroup))
            .filter(|p| p.exists())
            .collect();
        if !std::thread::panicking() {
            assert!(leftover.is_empty(), "cgroups left: {leftover:?}");
            let m = std::fs::metadata("/dev/null").unwrap();
            assert_eq!(
                (m.uid(), m.gid(), m.mode() & 0o7777),
                (0, 0, 0o666),
                "/dev/null changed"
            );
        }
    }
}

#[test]
fn podman_run_rm_with_limits_read_only_and_user() {
    let Some(p) = Podman::new() else { return };
    let o = p.run(&[
        "--rm",
        "--network",
        "none",
        "localhost/hullbox",
        "sh",
        "-c",
        "echo hi; grep Seccomp: /proc/self/status; exit 7",
    ]);
    // podman's default seccomp profile is in force (mode 2: a filter).
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (7, "hi\nSeccomp:\t2\n"),
        "{o:?}"
    );
    let script = "id -u; id -g; \
        cat /sys/fs/cgroup/memory$(grep :memory: /proc/self/cgroup | cut -d: -f3)/memory.limit_in_bytes; \
        cat /sys/fs/cgroup/pids$(grep :pids: /proc/self/cgroup | cut -d: -f3)/pids.max; \
        touch /x 2>/dev/null || echo read-only; touch /tmp/x && echo tmp-writable";
    let o = p.run(&[
        "--rm",
        "--network",
        "none",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        "--read-only",
        "--user",
        "65534:65534",
        "localhost/hullbox",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(
        o.stdout, "65534\n65534\n67108864\n50\nread-only\ntmp-writable\n",
        "{o:?}"
    );
    // --init: podman binds catatonit at /run/podman-init (a file bind
    // whose parent the image lacks) and makes it PID 1.
    let o = p.run(&[
        "--rm",
        "--init",
        "--network",
        "none",
        "localhost/hullbox",
        "sh",
        "-c",
        "tr '\\0' ' ' < /proc/1/cmdline; exit 9",
    ]);
    assert_eq!(o.code, 9, "{o:?}");
    assert!(o.stdout.starts_with("/run/podman-init -- sh -c"), "{o:?}");
    let o = p.podman(&["ps", "-aq"]);
    assert_eq!(o.stdout, "", "--rm left a container: {o:?}");
}

#[test]
fn podman_detached_exec_pause_stop_rm() {
    let Some(p) = Podman::new() else { return };
    let o = p.run(&[
        "-d",
        "--name",
        "d1",
        "--network",
        "none",
        "localhost/hullbox",
        "sleep",
        "1000",
    ]);
    assert_eq!(o.code, 0, "{o:?}");
    let o = p.podman(&[
        "exec",
        "d1",
        "sh",
        "-c",
        "echo exec-ok; id -u; grep Seccomp: /proc/self/status; cat /proc/1/cmdline",
    ]);
    // exec'd processes get the container's seccomp filter too.
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "exec-ok\n0\nSeccomp:\t2\nsleep\x001000\0"),
        "{o:?}"
    );
    let o = p.podman(&[
        "exec",
        "-u",
        "65534",
        "-e",
        "X=y",
        "-w",
        "/tmp",
        "d1",
        "sh",
        "-c",
        "id -u; echo $X; pwd; exit 4",
    ]);
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (4, "65534\ny\n/tmp\n"),
        "{o:?}"
    );
    let o = p.podman(&["exec", "--detach", "d1", "sleep", "500"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(p.podman(&["pause", "d1"]).code, 0);
    let o = p.podman(&["inspect", "--format", "{{.State.Status}}", "d1"]);
    assert_eq!(o.stdout, "paused\n", "{o:?}");
    assert_eq!(p.podman(&["unpause", "d1"]).code, 0);
    // sleep as PID 1 ignores SIGTERM: podman's stop falls back to SIGKILL.
    let o = p.podman(&["stop", "--time", "1", "d1"]);
    assert_eq!(o.code, 0, "{o:?}");
    let o = p.podman(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        "d1",
    ]);
    assert_eq!(o.stdout, "exited 137\n", "{o:?}");
    assert_eq!(p.podman(&["rm", "d1"]).code, 0);
    assert_eq!(p.podman(&["ps", "-aq"]).stdout, "");
}

#[test]
fn podman_publishes_a_port_on_its_own_bridge() {
    let Some(p) = Podman::new() else { return };
    let o = p.podman(&["network", "create", "--subnet", "198.18.7.0/24", "hullnet"]);
    assert_eq!(o.code, 0, "{o:?}");
    let o = p.run(&[
        "-d",
        "--name",
        "web",
        "--network",
        "hullnet",
        "-p",
        "8080:80",
        "localhost/hullbox",
        "sh",
        "-c",
        "mkdir -p /www && echo served > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    assert_eq!(o.code, 0, "{o:?}");
    // Through the published port on the bridge's address, from the
    // test's own network namespace.
    let o = p.sh(
        "for i in $(seq 50); do /bin/busybox wget -q -O- http://198.18.7.1:8080/ && exit 0; sleep 0.1; done; exit 1",
    );
    assert_eq!((o.code, o.stdout.as_str()), (0, "served\n"), "{o:?}");
    // exec lands in the container's network namespace (joined by path).
    let o = p.podman(&[
        "exec",
        "web",
        "sh",
        "-c",
        "grep -c eth0 /proc/net/dev; cat /proc/sys/net/ipv4/ping_group_range",
    ]);
    assert_eq!(o.stdout, "1\n0\t0\n", "{o:?}");
}

#[test]
fn podman_run_it_with_a_terminal() {
    let Some(p) = Podman::new() else { return };
    if !have("script") {
        eprintln!("skipped: needs script(1) for a terminal");
        return;
    }
    // script(1) gives podman a terminal; the container's comes from hull
    // through conmon's console socket.
    let parent = format!("--cgroup-parent=/{}", p.cgroup);
    let cmd = format!(
        "podman {} run -it --rm {parent} --ulimit nofile=1024:1024 \
         --ulimit nproc=1024:1024 --network none localhost/hullbox sh -c 'tty; sleep 0.3; exit 3'",
        p.globals().join(" ")
    );
    let o = p.in_ns(p.nsenter().args(["script", "-qec", &cmd, "/dev/null"]));
    assert_eq!(o.code, 3, "{o:?}");
    // The terminal appears as /dev/console, as under runc.
    assert!(o.stdout.contains("/dev/console\r\n"), "{o:?}");
    // exec -it: the exec'd process gets its own terminal through the
    // console socket.
    let o = p.run(&[
        "-d",
        "--name",
        "t1",
        "--network",
        "none",
        "localhost/hullbox",
        "sleep",
        "100",
    ]);
    assert_eq!(o.code, 0, "{o:?}");
    let cmd = format!(
        "podman {} exec -it t1 sh -c 'tty; sleep 0.3; exit 5'",
        p.globals().join(" ")
    );
    let o = p.in_ns(p.nsenter().args(["script", "-qec", &cmd, "/dev/null"]));
    assert_eq!(o.code, 5, "{o:?}");
    assert!(o.stdout.contains("/dev/pts/0\r\n"), "{o:?}");
}
