//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A directory under /tmp removed (with everything in it) when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let p =
            std::env::temp_dir().join(hull_testkit::unique_name(&format!("hull-ovl-{prefix}-")));
        std::fs::create_dir(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Creates (and returns) a subdirectory.
    pub fn dir(&self, name: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::create_dir_all(&p).expect("create subdir");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `f` in a child in its own mount namespace with a fresh temp dir,
/// checking that the temp dir is gone and no mount leaked in the parent,
/// and that the child's own mount table is back to where it started.
pub fn isolated<F>(prefix: &str, f: F)
where
    F: FnOnce(&Path) -> Result<(), String>,
{
    if !hull_testkit::is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let before = hull_testkit::Snapshot::take();
    let tmp = TempDir::new(prefix);
    let root = tmp.path().to_path_buf();
    hull_testkit::in_child(hull_testkit::CLONE_NEWNS, || {
        let inner = hull_testkit::Snapshot::take();
        f(&root)?;
        let after = hull_testkit::Snapshot::take();
        if inner != after {
            return Err(format!(
                "mounts leaked in the test's namespace: {:?}",
                after.mounts.difference(&inner.mounts).collect::<Vec<_>>()
            ));
        }
        Ok(())
    });
    drop(tmp);
    assert!(!root.exists(), "temp dir {root:?} left behind");
    before.assert_no_leaks(&[]);
}

/// Every path under `root` (relative) with its content (`None` for dirs,
/// `Some(bytes)` for files, `Some("<chr>")` for devices).
pub fn tree(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    fn go(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        names.sort();
        for n in names {
            let p = dir.join(&n);
            let rel = p.strip_prefix(root).expect("prefix").to_path_buf();
            let md = std::fs::symlink_metadata(&p).expect("lstat");
            if md.is_dir() {
                out.insert(rel, None);
                go(root, &p, out);
            } else if md.is_file() {
                out.insert(rel, Some(std::fs::read(&p).expect("read")));
            } else {
                out.insert(rel, Some(b"<special>".to_vec()));
            }
        }
    }
    go(root, root, &mut out);
    out
}

pub fn ensure(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

pub fn e<E: std::error::Error>(ctx: &str) -> impl FnOnce(E) -> String + '_ {
    move |err| {
        let mut s = format!("{ctx}: {err}");
        let mut src = err.source();
        while let Some(x) = src {
            s.push_str(&format!(": {x}"));
            src = x.source();
        }
        s
    }
}

pub fn is_mounted(target: &Path) -> bool {
    let t = target.to_string_lossy();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(&*t))
}
