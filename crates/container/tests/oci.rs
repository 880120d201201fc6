//! An OCI bundle with runc's default config, run end to end (as root, with
//! busybox-static for the root file system).

use std::io::Read;
use std::path::{Path, PathBuf};

use hull_container::Container;
use hull_container::oci_spec::runtime::Spec;
use hull_testkit::{is_root, unique_name};

const RUNC_SPEC: &str = include_str!("runc-spec.json");

struct Bundle(PathBuf);

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        if let Some(name) = self.0.file_name() {
            hull_testkit::remove_cgroup_parent(&name.to_string_lossy());
        }
    }
}

fn bundle() -> Option<Bundle> {
    let busybox = Path::new("/bin/busybox");
    if !busybox.exists() {
        return None;
    }
    let dir = std::env::temp_dir().join(unique_name("hull-oci-"));
    let rootfs = dir.join("rootfs");
    for d in ["bin", "etc", "proc", "dev", "sys", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
    for app in ["sh", "hostname", "id", "cat", "ls", "tty", "echo", "grep"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(app)).unwrap();
    }
    Some(Bundle(dir))
}

#[test]
fn runc_default_config_runs_with_a_terminal() {
    if !is_root() {
        return;
    }
    let Some(b) = bundle() else {
        eprintln!("skipped: busybox-static not installed");
        return;
    };
    let spec: Spec = serde_json::from_str(RUNC_SPEC).unwrap();
    let cfg = config(
        &b,
        spec,
        "hostname; id -u; tty; grep -c . /proc/self/mounts >/dev/null && echo mounts; echo x > /dev/null && echo null-ok; grep CapAmb /proc/self/status",
    );
    let mut c = cfg.create().unwrap();
    let master = c.take_terminal().expect("terminal");
    c.start().unwrap();
    let mut out = Vec::new();
    let mut f = std::fs::File::from(master);
    // Reading the master ends with EIO once the last slave fd is closed.
    let mut buf = [0u8; 4096];
    loop {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    let status = c.wait().unwrap();
    c.delete().unwrap();
    let text = String::from_utf8_lossy(&out).replace('\r', "");
    assert!(status.success(), "{status}: {text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "runc");
    assert_eq!(lines[1], "0");
    assert_eq!(lines[2], "/dev/console", "{text}");
    assert!(
        text.contains("mounts\n") && text.contains("null-ok\n"),
        "{text}"
    );
    // runc's default asks for these three as ambient capabilities.
    assert!(text.contains("CapAmb:\t0000000020000420"), "{text}");
}

/// The bundle's configuration from `spec`, running `sh -c script`, with
/// the bundle's own cgroup path and runtime directory.
fn config(b: &Bundle, mut spec: Spec, script: &str) -> hull_container::Config {
    let mut process = spec.process().clone().unwrap();
    process.set_args(Some(vec!["sh".into(), "-c".into(), script.into()]));
    spec.set_process(Some(process));
    let id = b.0.file_name().unwrap().to_string_lossy().into_owned();
    Container::from_oci(&id, &spec, &b.0)
        .unwrap()
        .cgroup_path(format!("{id}/c"))
        .runtime_root(b.0.join("run"))
        .build()
        .unwrap()
}

fn with_seccomp(json: &str) -> Spec {
    let mut v: serde_json::Value = serde_json::from_str(RUNC_SPEC).unwrap();
    v["linux"]["seccomp"] = serde_json::from_str(json).unwrap();
    v["process"]["terminal"] = false.into();
    serde_json::from_value(v).unwrap()
}

#[test]
fn seccomp_profile_from_the_spec_is_enforced() {
    if !is_root() {
        return;
    }
    let Some(b) = bundle() else {
        eprintln!("skipped: busybox-static not installed");
        return;
    };
    let spec = with_seccomp(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
              {"names": ["mkdir", "mkdirat", "no_such_call"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
              {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
               "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
            ]}"#,
    );
    let cfg = config(
        &b,
        spec,
        "mkdir /tmp/d 2>&1; grep Seccomp: /proc/self/status",
    );
    let (rd, wr) = std::io::pipe().unwrap();
    let mut c = Container::create_with_stdio(
        cfg,
        [
            hull_container::Stdio::Null,
            hull_container::Stdio::Fd(wr.into()),
            hull_container::Stdio::Inherit,
        ],
    )
    .unwrap();
    c.start().unwrap();
    let mut out = String::new();
    std::fs::File::from(std::os::fd::OwnedFd::from(rd))
        .read_to_string(&mut out)
        .unwrap();
    let status = c.wait().unwrap();
    c.delete().unwrap();
    assert!(status.success(), "{status}: {out}");
    assert!(out.contains("Function not implemented"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
}

#[test]
fn seccomp_notify_is_refused_by_name() {
    let spec = with_seccomp(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_NOTIFY"}]}"#,
    );
    let err = Container::from_oci("n", &spec, Path::new("/nonexistent")).unwrap_err();
    assert!(
        err.to_string().contains("linux.seccomp") && err.to_string().contains("SCMP_ACT_NOTIFY"),
        "{err}"
    );
}
