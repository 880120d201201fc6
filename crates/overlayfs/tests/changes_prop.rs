//! The change walk reports exactly what random operations on the merged view
//! did, checked against a model of overlayfs semantics.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use common::{e, ensure, isolated, tree};
use hull_overlayfs::{Change, ChangeKind, Overlay};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const TOP: [&str; 5] = ["a", "b", "d", "e", "n"];
const SUB: [&str; 3] = ["x", "y", "z"];

#[derive(Debug, Clone, Copy)]
enum OpKind {
    Write,
    Remove,
    Mkdir,
}

#[derive(Debug, Clone, Copy)]
struct Op {
    kind: OpKind,
    top: usize,
    sub: Option<usize>,
}

impl Op {
    fn path(self) -> PathBuf {
        let mut p = PathBuf::from(TOP[self.top]);
        if let Some(s) = self.sub {
            p.push(SUB[s]);
        }
        p
    }
}

fn op() -> impl Strategy<Value = Op> {
    (0..3u8, 0..TOP.len(), proptest::option::of(0..SUB.len())).prop_map(|(k, top, sub)| Op {
        kind: match k {
            0 => OpKind::Write,
            1 => OpKind::Remove,
            _ => OpKind::Mkdir,
        },
        top,
        sub,
    })
}

/// What the upper dir holds at one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upper {
    File,
    Dir { opaque: bool },
    Whiteout,
}

/// The lower layers (merged), the upper dir overlayfs should produce, and
/// the merged view the operations should leave.
struct Model {
    lower: BTreeMap<PathBuf, bool>,
    upper: BTreeMap<PathBuf, Upper>,
    view: BTreeMap<PathBuf, Option<Vec<u8>>>,
}

fn domain() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for t in TOP {
        v.push(PathBuf::from(t));
        for s in SUB {
            v.push(Path::new(t).join(s));
        }
    }
    v
}

impl Model {
    fn lower_visible(&self, p: &Path) -> Option<bool> {
        if let Some(parent) = p.parent().filter(|q| !q.as_os_str().is_empty()) {
            match self.upper.get(parent) {
                Some(Upper::Dir { opaque: true }) | Some(Upper::File) | Some(Upper::Whiteout) => {
                    return None;
                }
                _ => {}
            }
        }
        self.lower.get(p).copied()
    }

    fn merged(&self, p: &Path) -> Option<bool> {
        if let Some(parent) = p.parent().filter(|q| !q.as_os_str().is_empty()) {
            if self.merged(parent) != Some(true) {
                return None;
            }
        }
        match self.upper.get(p) {
            Some(Upper::File) => Some(false),
            Some(Upper::Dir { .. }) => Some(true),
            Some(Upper::Whiteout) => None,
            None => self.lower_visible(p),
        }
    }

    fn parent_ok(&self, p: &Path) -> bool {
        match p.parent().filter(|q| !q.as_os_str().is_empty()) {
            Some(parent) => self.merged(parent) == Some(true),
            None => true,
        }
    }

    fn copy_up_parent(&mut self, p: &Path) {
        if let Some(parent) = p.parent().filter(|q| !q.as_os_str().is_empty()) {
            self.upper
                .entry(parent.to_path_buf())
                .or_insert(Upper::Dir { opaque: false });
        }
    }

    /// Applies `op` to the model; false when it is not applicable (and
    /// must not be done to the filesystem either).
    fn apply(&mut self, op: Op) -> bool {
        let p = op.path();
        match op.kind {
            OpKind::Write => {
                if !self.parent_ok(&p) || self.merged(&p) == Some(true) {
                    return false;
                }
                self.copy_up_parent(&p);
                self.upper.insert(p.clone(), Upper::File);
                let v = self.view.entry(p).or_insert(Some(Vec::new()));
                if let Some(c) = v {
                    c.push(b'w');
                }
                true
            }
            OpKind::Mkdir => {
                if !self.parent_ok(&p) || self.merged(&p).is_some() {
                    return false;
                }
                self.copy_up_parent(&p);
                let opaque = self.upper.get(&p) == Some(&Upper::Whiteout);
                self.upper.insert(p.clone(), Upper::Dir { opaque });
                self.view.insert(p, None);
                true
            }
            OpKind::Remove => {
                if self.merged(&p).is_none() {
                    return false;
                }
                self.remove(&p);
                true
            }
        }
    }

    fn remove(&mut self, p: &Path) {
        if self.merged(p) == Some(true) {
            for c in domain() {
                if c.parent() == Some(p) && self.merged(&c).is_some() {
                    self.remove(&c);
                }
            }
        }
        self.copy_up_parent(p);
        self.upper.retain(|k, _| !k.starts_with(p));
        self.view.retain(|k, _| !k.starts_with(p));
        if self.lower_visible(p).is_some() {
            self.upper.insert(p.to_path_buf(), Upper::Whiteout);
        }
    }

    fn expected_changes(&self) -> Vec<Change> {
        let mut out = Vec::new();
        for (p, u) in &self.upper {
            let kind = match u {
                Upper::Whiteout => Some(ChangeKind::Deleted),
                Upper::Dir { opaque: true } => Some(ChangeKind::Opaque),
                Upper::Dir { opaque: false } => match self.lower_visible(p) {
                    Some(true) => None,
                    Some(false) => Some(ChangeKind::Modified),
                    None => Some(ChangeKind::Added),
                },
                Upper::File => Some(if self.lower_visible(p).is_some() {
                    ChangeKind::Modified
                } else {
                    ChangeKind::Added
                }),
            };
            if let Some(kind) = kind {
                out.push(Change {
                    path: p.clone(),
                    kind,
                });
            }
        }
        out.sort();
        out
    }
}

/// Two lower layers: l0 (top) holds a and d/x, l1 holds b, d/y and e/z.
fn setup_lowers(l0: &Path, l1: &Path) -> Result<Model, String> {
    let mut lower = BTreeMap::new();
    let mut view = BTreeMap::new();
    for (layer, entries) in [
        (l0, &[("a", Some("A")), ("d", None), ("d/x", Some("X"))][..]),
        (
            l1,
            &[
                ("b", Some("B")),
                ("d", None),
                ("d/y", Some("Y")),
                ("e", None),
                ("e/z", Some("Z")),
            ][..],
        ),
    ] {
        std::fs::create_dir(layer).map_err(e("mkdir layer"))?;
        for (name, content) in entries {
            let p = layer.join(name);
            match content {
                Some(c) => std::fs::write(&p, c).map_err(e("write lower"))?,
                None => std::fs::create_dir(&p).map_err(e("mkdir lower"))?,
            }
            lower.insert(PathBuf::from(name), content.is_none());
            view.insert(PathBuf::from(name), content.map(|c| c.as_bytes().to_vec()));
        }
    }
    Ok(Model {
        lower,
        upper: BTreeMap::new(),
        view,
    })
}

fn run_case(root: &Path, ops: &[Op]) -> Result<(), String> {
    let case = root.join(hull_testkit::unique_name("case"));
    std::fs::create_dir(&case).map_err(e("mkdir case"))?;
    let res = run_case_in(&case, ops);
    std::fs::remove_dir_all(&case).map_err(e("rm case"))?;
    res
}

fn run_case_in(case: &Path, ops: &[Op]) -> Result<(), String> {
    let (l0, l1, u, w, m) = (
        case.join("l0"),
        case.join("l1"),
        case.join("u"),
        case.join("w"),
        case.join("m"),
    );
    let mut model = setup_lowers(&l0, &l1)?;
    for d in [&u, &w, &m] {
        std::fs::create_dir(d).map_err(e("mkdir"))?;
    }
    let (t0, t1) = (tree(&l0), tree(&l1));
    let ov = Overlay::builder()
        .lower(&l0)
        .lower(&l1)
        .upper(&u, &w)
        .target(&m)
        .build()
        .map_err(e("build"))?;
    let mount = ov.mount().map_err(e("mount"))?;
    for &op in ops {
        if !model.apply(op) {
            continue;
        }
        let p = m.join(op.path());
        match op.kind {
            OpKind::Write => {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&p)
                    .map_err(e("open"))?;
                f.write_all(b"w").map_err(e("write"))?;
            }
            OpKind::Mkdir => std::fs::create_dir(&p).map_err(e("mkdir"))?,
            OpKind::Remove => {
                if p.is_dir() {
                    std::fs::remove_dir_all(&p).map_err(e("rm -r"))?
                } else {
                    std::fs::remove_file(&p).map_err(e("rm"))?
                }
            }
        }
    }
    let merged = tree(&m);
    ensure(merged == model.view, || {
        format!("merged view {merged:?}\nmodel {:?}", model.view)
    })?;
    mount.unmount().map_err(e("unmount"))?;
    ensure(tree(&l0) == t0 && tree(&l1) == t1, || {
        "a lower layer changed".into()
    })?;
    let mut got = ov.changes().map_err(e("changes"))?;
    got.sort();
    let want = model.expected_changes();
    ensure(got == want, || {
        format!(
            "ops {ops:?}\nchanges {got:?}\nwant    {want:?}\nupper {:?}",
            tree(&u)
        )
    })
}

#[test]
fn change_walk_reports_exactly_what_random_operations_did() {
    isolated("prop", |root| {
        let mut runner = TestRunner::new(Config {
            cases: 96,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&proptest::collection::vec(op(), 0..24), |ops| {
                run_case(root, &ops).map_err(TestCaseError::fail)
            })
            .map_err(|err| err.to_string())
    });
}

/// A fixed sequence covering each kind of change once.
#[test]
fn change_walk_fixed_sequence() {
    isolated("fixed", |root| {
        let ops = [
            Op {
                kind: OpKind::Remove,
                top: 0,
                sub: None,
            }, // rm a (lower) -> Deleted
            Op {
                kind: OpKind::Write,
                top: 1,
                sub: None,
            }, // b modified
            Op {
                kind: OpKind::Remove,
                top: 2,
                sub: None,
            }, // rm -r d
            Op {
                kind: OpKind::Mkdir,
                top: 2,
                sub: None,
            }, // mkdir d -> Opaque
            Op {
                kind: OpKind::Write,
                top: 2,
                sub: Some(0),
            }, // d/x in opaque dir -> Added
            Op {
                kind: OpKind::Write,
                top: 3,
                sub: Some(1),
            }, // e/y new in merged dir -> Added
            Op {
                kind: OpKind::Mkdir,
                top: 4,
                sub: None,
            }, // n new dir -> Added
        ];
        run_case(root, &ops)
    });
}
