//! Helpers shared by the container tests.

#![allow(dead_code)] // each test binary uses a different part

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;

use hull_container::{Container, ContainerBuilder, ExitStatus, Stdio};
use hull_testkit::unique_name;

pub mod images;

/// Returns early (the test passes) unless running as root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !hull_testkit::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

/// A test-owned runtime root and cgroup parent (named after it), both
/// removed afterwards.
pub struct Runtime(pub PathBuf);

impl Runtime {
    pub fn new() -> Runtime {
        let p = std::env::temp_dir().join(unique_name("hull-ct-"));
        std::fs::create_dir_all(&p).unwrap();
        Runtime(p)
    }

    /// A builder using this runtime root and cgroup parent.
    pub fn builder(&self, id: &str) -> ContainerBuilder {
        Container::builder(id)
            .runtime_root(&self.0)
            .cgroup_parent(self.cgroup_parent())
    }

    /// True when no container left anything in the runtime root.
    pub fn is_empty(&self) -> bool {
        std::fs::read_dir(&self.0).unwrap().next().is_none()
    }

    /// The test-owned cgroup parent.
    pub fn cgroup_parent(&self) -> String {
        self.0.file_name().unwrap().to_string_lossy().into_owned()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        // The containers removed their own cgroups: only the test-owned
        // parent is left in each hierarchy (and must be empty).
        if let Ok(layout) = hull_cgroup::Layout::detect() {
            if let Ok(mut cg) = hull_cgroup::Cgroup::create(&layout, &self.cgroup_parent()) {
                let _ = cg.delete();
            }
        }
    }
}

/// The veth (and `hv`-named) links in the calling thread's network
/// namespace: after a test, none of its containers' links may be left.
pub fn leftover_links() -> Result<Vec<String>, String> {
    Ok(std::fs::read_dir("/sys/class/net")
        .map_err(|e| format!("/sys/class/net: {e}"))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("hv") || n.starts_with("veth"))
        .collect())
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: a valid array for pipe2.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both fds are new and ours.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Creates, starts and waits for a container, returning its status and
/// stdout, then deletes it.
pub fn run_output(b: ContainerBuilder) -> (ExitStatus, String) {
    let (rd, wr) = pipe();
    let mut c = Container::create_with_stdio(
        b.build().unwrap(),
        [Stdio::Null, Stdio::Fd(wr), Stdio::Inherit],
    )
    .unwrap();
    c.start().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(rd), &mut out).unwrap();
    let s = c.wait().unwrap();
    c.delete().unwrap();
    (s, out)
}

/// Runs a process in a running container and returns its status and
/// stdout.
pub fn exec_output(c: &mut Container, args: &[&str]) -> (ExitStatus, String) {
    let (rd, wr) = pipe();
    let mut child = c
        .exec(
            args.iter().copied(),
            [Stdio::Null, Stdio::Fd(wr), Stdio::Inherit],
        )
        .unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(rd), &mut out).unwrap();
    (child.wait().unwrap(), out)
}

/// Builds, creates and starts a container.
pub fn started(b: ContainerBuilder) -> Container {
    let mut c = b.build().unwrap().create().unwrap();
    c.start().unwrap();
    c
}
