//! CLONE_INTO_CGROUP, for real, in a cgroup2-only machine (the v2vm guest;
//! see .ci/steps.d/v2vm.sh). Skips where the root cgroup is not cgroup2
//! with controllers, as on a v1 or hybrid host.

use std::os::fd::OwnedFd;
use std::path::Path;

use hull_ns::Command;

fn v2_root() -> Option<&'static Path> {
    let root = Path::new("/sys/fs/cgroup");
    root.join("cgroup.controllers").exists().then_some(root)
}

#[test]
fn child_starts_in_the_given_cgroup() {
    let Some(root) = v2_root() else {
        eprintln!("skipped: not a cgroup2 host");
        return;
    };
    let dir = root.join(hull_testkit::unique_name("hull-ns-v2-"));
    std::fs::create_dir(&dir).unwrap();
    let fd: OwnedFd = std::fs::File::open(&dir).unwrap().into();
    let out = Command::new("cat")
        .arg("/proc/self/cgroup")
        .cgroup(fd)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(text.trim(), format!("0::/{name}"));
    // The child has exited: the cgroup is empty and can go.
    std::fs::remove_dir(&dir).unwrap();
}
