//! The state store: containers loaded by id from another process, and
//! deleted after their creator died (as root).

use std::path::PathBuf;
use std::time::Duration;

use hull_container::{Container, Status};
use hull_testkit::{Snapshot, is_root, unique_name};

struct Sandbox {
    dir: PathBuf,
    cgroup_parent: String,
}

impl Sandbox {
    fn new() -> Sandbox {
        let name = unique_name("hull-store-");
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        Sandbox {
            dir,
            cgroup_parent: name,
        }
    }

    fn runtime(&self) -> PathBuf {
        self.dir.join("run")
    }

    fn cgroup_dirs(&self) -> usize {
        std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
            .map(|h| h.path().join(&self.cgroup_parent))
            .filter(|p| p.is_dir())
            .map(|p| {
                std::fs::read_dir(p)
                    .unwrap()
                    .flatten()
                    .filter(|e| e.path().is_dir())
                    .count()
            })
            .sum()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        hull_testkit::remove_cgroup_parent(&self.cgroup_parent);
    }
}

/// Runs `f` in a forked child that then dies: with `_exit(0)` or, when
/// `kill` is set, by SIGKILL with no clean-up at all.
fn in_dying_child(kill: bool, f: impl FnOnce()) {
    // SAFETY: the child runs `f` and leaves through _exit or SIGKILL.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_ok();
        // SAFETY: ending the forked child without running the harness.
        unsafe {
            if kill && ok {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
            libc::_exit(if ok { 0 } else { 1 });
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if kill {
        assert!(
            libc::WIFSIGNALED(status),
            "creator did not die as planned: {status}"
        );
    } else {
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "creator failed"
        );
    }
}

#[test]
fn another_process_starts_and_deletes_a_created_container() {
    if !is_root() {
        return;
    }
    let sb = Sandbox::new();
    let before = Snapshot::take();
    let marker = sb.dir.join("marker");
    std::fs::create_dir_all(&marker).unwrap();
    let (rt, cg, m) = (sb.runtime(), sb.cgroup_parent.clone(), marker.clone());
    in_dying_child(false, move || {
        let c = Container::builder("stored")
            .runtime_root(&rt)
            .cgroup_parent(&cg)
            .persist(true)
            .mount(hull_container::Mount::bind(&m, "/m"))
            .args(["sh", "-c", "touch /m/started; sleep 100"])
            .build()
            .unwrap()
            .create()
            .unwrap();
        c.detach();
    });
    assert_eq!(Container::list(&sb.runtime()), ["stored"]);
    let mut c = Container::load(&sb.runtime(), "stored").unwrap();
    assert_eq!(c.status(), Status::Created);
    assert!(c.state().to_json().contains("\"created\""));
    assert!(!marker.join("started").exists());
    c.start().unwrap();
    for _ in 0..200 {
        if marker.join("started").exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        marker.join("started").exists(),
        "start through the FIFO did nothing"
    );
    // A third view sees it running, pauses and resumes it.
    let mut again = Container::load(&sb.runtime(), "stored").unwrap();
    assert_eq!(again.status(), Status::Running);
    again.pause().unwrap();
    std::mem::forget(again);
    // The paused status is saved: a fourth view sees it and resumes.
    let mut fourth = Container::load(&sb.runtime(), "stored").unwrap();
    assert_eq!(fourth.status(), Status::Paused);
    fourth.resume().unwrap();
    std::mem::forget(fourth);
    let mut fifth = Container::load(&sb.runtime(), "stored").unwrap();
    assert_eq!(fifth.status(), Status::Running);
    std::mem::forget(fifth);
    let pid = c.pid().unwrap();
    c.delete().unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}/status")).exists() || {
            let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            s.contains("zombie")
        }
    );
    assert!(Container::list(&sb.runtime()).is_empty());
    assert_eq!(sb.cgroup_dirs(), 0, "cgroup left behind");
    assert!(matches!(
        Container::load(&sb.runtime(), "stored"),
        Err(hull_container::Error::NotFound { .. })
    ));
    before.assert_no_leaks(&[]);
}

#[test]
fn container_whose_creator_was_killed_is_deleted_cleanly() {
    if !is_root() {
        return;
    }
    let sb = Sandbox::new();
    let (rt, cg) = (sb.runtime(), sb.cgroup_parent.clone());
    in_dying_child(true, move || {
        let mut c = Container::builder("orphan")
            .runtime_root(&rt)
            .cgroup_parent(&cg)
            .persist(true)
            .args(["sleep", "100"])
            .build()
            .unwrap()
            .create()
            .unwrap();
        c.start().unwrap();
        std::mem::forget(c); // then SIGKILL: nothing runs after this
    });
    let mut c = Container::load(&sb.runtime(), "orphan").unwrap();
    assert_eq!(c.status(), Status::Running);
    assert_eq!(c.processes().unwrap().len(), 1);
    c.delete().unwrap();
    assert!(Container::list(&sb.runtime()).is_empty());
    assert_eq!(sb.cgroup_dirs(), 0, "cgroup left behind");
}
