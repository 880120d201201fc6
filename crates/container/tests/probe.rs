//! Every builder option, shown working from inside by the probe (as root).

use std::path::PathBuf;

use hull_container::{Capability, Container, ContainerBuilder, Mount, Stdio};
use hull_ns::{IdMap, Namespaces, NsFd};
use hull_testkit::{is_root, probe_binary, unique_name};
use serde_json::Value;

struct Sandbox {
    dir: PathBuf,
    cgroup_parent: String,
}

impl Sandbox {
    fn new() -> Sandbox {
        let name = unique_name("hull-probe-");
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(dir.join("data/file"), "from the host\n").unwrap();
        Sandbox {
            dir,
            cgroup_parent: name,
        }
    }

    fn builder(&self, id: &str) -> ContainerBuilder {
        Container::builder(id)
            .runtime_root(self.dir.join("run"))
            .cgroup_parent(&self.cgroup_parent)
            .mount(Mount::bind_ro(probe_binary(), "/hull-probe"))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        hull_testkit::remove_cgroup_parent(&self.cgroup_parent);
    }
}

fn report(b: ContainerBuilder) -> Value {
    let mut fds = [0; 2];
    // SAFETY: a valid array for pipe2.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: both fds are new and ours.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut c = Container::create_with_stdio(
        b.build().unwrap(),
        [Stdio::Null, Stdio::Fd(wr), Stdio::Inherit],
    )
    .unwrap();
    c.start().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(rd), &mut out).unwrap();
    let status = c.wait().unwrap();
    c.delete().unwrap();
    assert!(status.success(), "{status}: {out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

fn has_mount(r: &Value, point: &str, fstype: &str, ro: bool) -> bool {
    strings(&r["mounts"]).iter().any(|m| {
        let f: Vec<&str> = m.split(' ').collect();
        f[0] == point && f[1] == fstype && (!ro || f[2].split(',').any(|o| o == "ro"))
    })
}

#[test]
fn every_builder_option_is_seen_from_inside() {
    if !is_root() {
        return;
    }
    let sb = Sandbox::new();
    let caps = hull_container::Capabilities::docker_default()
        .without("NET_RAW".parse::<Capability>().unwrap());
    let r = report(
        sb.builder("opts")
            .hostname("probe-host")
            .user(1000, 1000)
            .groups([1001, 1002])
            .env("FOO", "bar baz")
            .cwd("/data")
            .mount(Mount::bind_ro(sb.dir.join("data"), "/data"))
            .mount(Mount::Tmpfs {
                destination: "/scratch".into(),
                size: 1 << 20,
            })
            .rlimit(libc::RLIMIT_NOFILE, 200, 300)
            .capabilities(caps)
            .readonly_rootfs(true)
            .oom_score_adj(500)
            .sysctl("net.ipv4.ip_forward", "1")
            .args(["/hull-probe", "one arg"]),
    );
    assert_eq!(r["hostname"], "probe-host");
    assert_eq!(r["pid"], 1);
    assert_eq!(strings(&r["uid"]), ["1000"; 4]);
    assert_eq!(strings(&r["gid"]), ["1000"; 4]);
    assert_eq!(strings(&r["groups"]), ["1001", "1002"]);
    assert_eq!(r["CapInh"], "0000000000000000");
    assert_eq!(r["CapAmb"], "0000000000000000");
    assert_eq!(r["CapBnd"], format!("{:016x}", caps.bits()));
    assert_eq!(r["NoNewPrivs"], "1");
    assert_eq!(r["cwd"], "/data");
    assert!(strings(&r["env"]).contains(&"FOO=bar baz".to_string()));
    assert_eq!(strings(&r["args"]), ["one arg"]);
    // Only stdio (and the probe's own directory fd) are open.
    let fds: Vec<String> = strings(&r["fds"])
        .iter()
        .map(|f| f.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "{:?}", r["fds"]);
    // Its own namespaces, every kind asked for.
    for kind in [
        Namespaces::PID,
        Namespaces::MNT,
        Namespaces::UTS,
        Namespaces::IPC,
        Namespaces::NET,
        Namespaces::CGROUP,
    ] {
        let host = NsFd::current(kind).unwrap();
        let inside = r["namespaces"][kind.to_string()]
            .as_str()
            .unwrap()
            .to_string();
        assert_ne!(inside, format!("{}:[{}]", kind, host.id().ino), "{kind}");
    }
    for line in strings(&r["cgroup"]) {
        assert!(line.ends_with(":/"), "{line}");
    }
    assert!(
        strings(&r["limits"])
            .iter()
            .any(|l| l == "Max open files 200 300 files"),
        "{:?}",
        r["limits"]
    );
    // Mounts: the defaults, the volumes, read-only root and paths.
    assert!(has_mount(&r, "/", "tmpfs", true), "{:?}", r["mounts"]);
    assert!(has_mount(&r, "/proc", "proc", false));
    assert!(has_mount(&r, "/dev", "tmpfs", false));
    assert!(has_mount(&r, "/dev/pts", "devpts", false));
    assert!(has_mount(&r, "/dev/shm", "tmpfs", false));
    assert!(has_mount(&r, "/dev/mqueue", "mqueue", false));
    assert!(has_mount(&r, "/sys", "sysfs", true));
    assert!(
        has_mount(&r, "/sys/fs/cgroup", "tmpfs", true)
            || has_mount(&r, "/sys/fs/cgroup", "cgroup2", true)
    );
    assert!(has_mount(&r, "/proc/sys", "proc", true));
    assert!(
        has_mount(&r, "/data", "ext4", true)
            || strings(&r["mounts"])
                .iter()
                .any(|m| m.starts_with("/data ") && m.contains("ro"))
    );
    assert!(has_mount(&r, "/scratch", "tmpfs", false));
    assert!(
        has_mount(&r, "/usr", "ext4", true)
            || strings(&r["mounts"])
                .iter()
                .any(|m| m.starts_with("/usr ") && m.contains("ro"))
    );
}

#[test]
fn user_namespace_maps_root_to_an_unprivileged_uid() {
    if !is_root() {
        return;
    }
    let sb = Sandbox::new();
    let r = report(
        sb.builder("userns")
            .id_maps(
                "0 200000 65536".parse::<IdMap>().unwrap(),
                "0 200000 65536".parse().unwrap(),
            )
            .args(["/hull-probe"]),
    );
    assert_eq!(strings(&r["uid"]), ["0"; 4]);
    let map: Vec<String> = r["uid_map"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(map, ["0", "200000", "65536"]);
    assert_ne!(
        r["namespaces"]["user"].as_str().unwrap(),
        format!(
            "user:[{}]",
            NsFd::current(Namespaces::USER).unwrap().id().ino
        )
    );
}
