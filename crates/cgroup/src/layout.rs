//! Which cgroup layout the host has (v1, v2 or hybrid), where each
//! controller is mounted and where the current process sits.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::parse::{parse_mountinfo, parse_proc_cgroup};

/// A cgroup controller (resource subsystem).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Controller {
    /// CPU bandwidth and weight (`cpu`).
    Cpu,
    /// CPU accounting (`cpuacct`, v1 only; part of `cpu` on v2).
    Cpuacct,
    /// CPU and memory-node placement (`cpuset`).
    Cpuset,
    /// Memory (`memory`).
    Memory,
    /// Process count (`pids`).
    Pids,
    /// Block I/O (`blkio` on v1, `io` on v2).
    Io,
    /// Device access (`devices` on v1; an eBPF program on v2).
    Devices,
    /// Freezing (`freezer` on v1; built into every v2 cgroup).
    Freezer,
    /// Huge pages (`hugetlb`).
    Hugetlb,
    /// Network class id (`net_cls`, v1 only).
    NetCls,
    /// Network priority (`net_prio`, v1 only).
    NetPrio,
    /// perf events (`perf_event`).
    PerfEvent,
    /// RDMA (`rdma`).
    Rdma,
    /// Miscellaneous scalar resources (`misc`).
    Misc,
}

impl Controller {
    /// Every controller this crate knows.
    pub const ALL: [Controller; 14] = [
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Cpuset,
        Controller::Memory,
        Controller::Pids,
        Controller::Io,
        Controller::Devices,
        Controller::Freezer,
        Controller::Hugetlb,
        Controller::NetCls,
        Controller::NetPrio,
        Controller::PerfEvent,
        Controller::Rdma,
        Controller::Misc,
    ];

    /// The v1 name (`blkio` for [`Controller::Io`]).
    pub fn v1_name(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Cpuset => "cpuset",
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Io => "blkio",
            Controller::Devices => "devices",
            Controller::Freezer => "freezer",
            Controller::Hugetlb => "hugetlb",
            Controller::NetCls => "net_cls",
            Controller::NetPrio => "net_prio",
            Controller::PerfEvent => "perf_event",
            Controller::Rdma => "rdma",
            Controller::Misc => "misc",
        }
    }

    /// The v2 name (`io` for [`Controller::Io`]); `None` for controllers that
    /// do not exist as such on v2 (cpuacct, devices, freezer, net_cls, net_prio).
    pub fn v2_name(self) -> Option<&'static str> {
        match self {
            Controller::Io => Some("io"),
            Controller::Cpuacct
            | Controller::Devices
            | Controller::Freezer
            | Controller::NetCls
            | Controller::NetPrio => None,
            c => Some(c.v1_name()),
        }
    }

    fn from_v1(name: &str) -> Option<Controller> {
        Controller::ALL.into_iter().find(|c| c.v1_name() == name)
    }

    fn from_v2(name: &str) -> Option<Controller> {
        Controller::ALL
            .into_iter()
            .find(|c| c.v2_name() == Some(name))
    }
}

impl fmt::Display for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.v1_name())
    }
}

impl FromStr for Controller {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Controller::from_v1(s)
            .or_else(|| Controller::from_v2(s))
            .ok_or_else(|| Error::InvalidResource {
                field: "controller",
                value: s.to_string(),
                reason: "unknown controller name",
            })
    }
}

/// The host's cgroup layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only v1 hierarchies.
    V1,
    /// Only the unified v2 hierarchy.
    V2,
    /// v1 controller hierarchies plus a cgroup2 mount (e.g.
    /// `/sys/fs/cgroup/unified`), which tracks membership and holds whatever
    /// controllers v1 does not.
    Hybrid,
}

/// A mounted v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The cgroup the mount shows as its root (`/` unless in a cgroup
    /// namespace or a bind mount).
    pub root: String,
    /// Controllers bound to it (several when co-mounted, e.g. `cpu,cpuacct`).
    pub controllers: BTreeSet<Controller>,
    /// Name of a named hierarchy (`name=systemd`), if any.
    pub name: Option<String>,
    /// The current process's cgroup in this hierarchy, if known.
    pub current: Option<String>,
}

/// The mounted unified (v2) hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Hierarchy {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The cgroup the mount shows as its root.
    pub root: String,
    /// Controllers available at its root (`cgroup.controllers`), minus those
    /// bound to v1 hierarchies.
    pub controllers: BTreeSet<Controller>,
    /// The current process's cgroup in it, if known.
    pub current: Option<String>,
}

/// The host's cgroup layout: mode, mounts and the current process's cgroups.
///
/// ```no_run
/// let layout = hull_cgroup::Layout::detect()?;
/// println!("{:?}, memory at {:?}", layout.mode(), layout.mount_point(hull_cgroup::Controller::Memory));
/// # Ok::<(), hull_cgroup::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    mode: Mode,
    v1: Vec<V1Hierarchy>,
    v2: Option<V2Hierarchy>,
}

const MOUNTINFO: &str = "/proc/self/mountinfo";
const PROC_CGROUP: &str = "/proc/self/cgroup";

fn read(path: &str) -> Result<String> {
    crate::cgroup::read_kernel_file(path).map_err(|source| Error::Read {
        path: path.into(),
        source,
    })
}

impl Layout {
    /// Detects the layout from `/proc/self/mountinfo`, `/proc/self/cgroup`
    /// and the unified root's `cgroup.controllers`.
    ///
    /// # Errors
    /// [`Error::Read`]/[`Error::Parse`] on the proc files,
    /// [`Error::NoCgroupMount`] when nothing is mounted.
    pub fn detect() -> Result<Layout> {
        let mi = read(MOUNTINFO)?;
        let pc = read(PROC_CGROUP)?;
        let mut layout = Layout::from_texts(&mi, &pc)?;
        if let Some(v2) = &layout.v2 {
            let p = v2.mount_point.join("cgroup.controllers");
            let text = crate::cgroup::read_kernel_file(&p).map_err(|source| Error::Read {
                path: p.clone(),
                source,
            })?;
            layout.set_v2_controllers(&text);
        }
        Ok(layout)
    }

    /// Builds a layout from the texts of mountinfo and `/proc/<pid>/cgroup`
    /// (no file is read; the v2 root's controllers start empty, see
    /// [`Layout::set_v2_controllers`]).
    ///
    /// # Errors
    /// [`Error::Parse`] on bad text, [`Error::NoCgroupMount`] when no cgroup
    /// filesystem is in the mountinfo.
    pub fn from_texts(mountinfo: &str, proc_cgroup: &str) -> Result<Layout> {
        let mounts = parse_mountinfo(mountinfo).map_err(|source| Error::Parse {
            path: MOUNTINFO.into(),
            source,
        })?;
        let procs = parse_proc_cgroup(proc_cgroup).map_err(|source| Error::Parse {
            path: PROC_CGROUP.into(),
            source,
        })?;
        let mut v1: Vec<V1Hierarchy> = Vec::new();
        let mut v2: Option<V2Hierarchy> = None;
        for m in &mounts {
            match m.fs_type.as_str() {
                "cgroup" => {
                    let mut controllers = BTreeSet::new();
                    let mut name = None;
                    for opt in m.super_options.split(',') {
                        if let Some(c) = Controller::from_v1(opt) {
                            controllers.insert(c);
                        } else if let Some(n) = opt.strip_prefix("name=") {
                            name = Some(n.to_string());
                        }
                    }
                    if controllers.is_empty() && name.is_none() {
                        continue;
                    }
                    // The same hierarchy mounted twice: keep the first.
                    if v1
                        .iter()
                        .any(|h| h.controllers == controllers && h.name == name)
                    {
                        continue;
                    }
                    let current = procs
                        .iter()
                        .find(|p| {
                            p.hierarchy != 0
                                && p.controllers.iter().any(|c| {
                                    Controller::from_v1(c).is_some_and(|c| controllers.contains(&c))
                                        || (name.is_some()
                                            && c.strip_prefix("name=") == name.as_deref())
                                })
                        })
                        .map(|p| p.path.clone());
                    v1.push(V1Hierarchy {
                        mount_point: PathBuf::from(&m.mount_point),
                        root: m.root.clone(),
                        controllers,
                        name,
                        current,
                    });
                }
                "cgroup2" if v2.is_none() => {
                    let current = procs
                        .iter()
                        .find(|p| p.hierarchy == 0 && p.controllers.is_empty())
                        .map(|p| p.path.clone());
                    v2 = Some(V2Hierarchy {
                        mount_point: PathBuf::from(&m.mount_point),
                        root: m.root.clone(),
                        controllers: BTreeSet::new(),
                        current,
                    });
                }
                _ => {}
            }
        }
        let has_v1_controllers = v1.iter().any(|h| !h.controllers.is_empty());
        let mode = match (has_v1_controllers, &v2) {
            (true, Some(_)) => Mode::Hybrid,
            (true, None) => Mode::V1,
            (false, Some(_)) => Mode::V2,
            (false, None) => {
                return Err(Error::NoCgroupMount {
                    path: MOUNTINFO.into(),
                });
            }
        };
        // Named-only v1 hierarchies (name=systemd) next to a v2 mount are
        // still hybrid in spirit but hold no controllers: keep them listed.
        Ok(Layout { mode, v1, v2 })
    }

    /// Sets the unified root's available controllers from the text of its
    /// `cgroup.controllers` (controllers bound to v1 are left out).
    pub fn set_v2_controllers(&mut self, text: &str) {
        let on_v1: BTreeSet<Controller> = self
            .v1
            .iter()
            .flat_map(|h| h.controllers.iter().copied())
            .collect();
        if let Some(v2) = &mut self.v2 {
            v2.controllers = text
                .split_whitespace()
                .filter_map(Controller::from_v2)
                .filter(|c| !on_v1.contains(c))
                .collect();
        }
    }

    /// The layout's mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The v1 hierarchies (empty on a v2 host).
    pub fn v1_hierarchies(&self) -> &[V1Hierarchy] {
        &self.v1
    }

    /// The unified hierarchy, if mounted.
    pub fn v2_hierarchy(&self) -> Option<&V2Hierarchy> {
        self.v2.as_ref()
    }

    /// The v1 hierarchy that holds `c`, if any.
    pub fn v1_hierarchy(&self, c: Controller) -> Option<&V1Hierarchy> {
        self.v1.iter().find(|h| h.controllers.contains(&c))
    }

    /// Whether `c` is served by the unified hierarchy (v2 semantics).
    pub fn is_v2(&self, c: Controller) -> bool {
        if self.v1_hierarchy(c).is_some() {
            return false;
        }
        match &self.v2 {
            // cpuacct is part of cpu and freezer part of every cgroup on v2.
            Some(v2) => match c {
                Controller::Cpuacct => v2.controllers.contains(&Controller::Cpu),
                Controller::Freezer | Controller::Devices => true,
                c => v2.controllers.contains(&c),
            },
            None => false,
        }
    }

    /// Whether `c` can be used on this host (v1 or v2).
    pub fn has(&self, c: Controller) -> bool {
        self.v1_hierarchy(c).is_some() || self.is_v2(c)
    }

    /// Where the hierarchy holding `c` is mounted.
    pub fn mount_point(&self, c: Controller) -> Option<&Path> {
        if let Some(h) = self.v1_hierarchy(c) {
            return Some(&h.mount_point);
        }
        if self.is_v2(c) {
            return self.v2.as_ref().map(|v| v.mount_point.as_path());
        }
        None
    }

    /// The current process's cgroup path for `c` (relative to the hierarchy
    /// root, as `/proc/self/cgroup` shows it).
    pub fn current(&self, c: Controller) -> Option<&str> {
        if let Some(h) = self.v1_hierarchy(c) {
            return h.current.as_deref();
        }
        if self.is_v2(c) {
            return self.v2.as_ref().and_then(|v| v.current.as_deref());
        }
        None
    }

    /// Controllers a new cgroup gets by default: every controller bound to a
    /// v1 hierarchy, and on a pure v2 host every controller of the unified root.
    pub fn default_controllers(&self) -> BTreeSet<Controller> {
        match self.mode {
            Mode::V1 | Mode::Hybrid => self
                .v1
                .iter()
                .flat_map(|h| h.controllers.iter().copied())
                .collect(),
            Mode::V2 => self
                .v2
                .as_ref()
                .map(|v| v.controllers.clone())
                .unwrap_or_default(),
        }
    }

    /// Controllers available, each with the hierarchy version serving it.
    pub fn controllers(&self) -> BTreeMap<Controller, Mode> {
        Controller::ALL
            .into_iter()
            .filter_map(|c| {
                if self.v1_hierarchy(c).is_some() {
                    Some((c, Mode::V1))
                } else if self.is_v2(c) {
                    Some((c, Mode::V2))
                } else {
                    None
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This host: v1 controllers one per mount plus /sys/fs/cgroup/unified.
    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CG: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/cdfd
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";

    /// A classic v1 host with co-mounted controllers (Debian 10 style).
    const V1: &str = "\
25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,name=systemd
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,net_cls,net_prio
31 25 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,memory
32 25 0:29 /docker/abc /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,pids
";
    const V1_CG: &str = "\
5:pids:/docker/abc
4:memory:/user.slice
3:net_cls,net_prio:/
2:cpu,cpuacct:/user.slice
1:name=systemd:/user.slice/session-1.scope
";

    /// A pure v2 host (systemd's unified mode).
    const V2: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
    const V2_CG: &str = "0::/user.slice/user-1000.slice/session-2.scope\n";

    #[test]
    fn hybrid_layout_of_this_kind_of_host() {
        let mut l = Layout::from_texts(HYBRID, HYBRID_CG).unwrap();
        l.set_v2_controllers("hugetlb\n");
        assert_eq!(l.mode(), Mode::Hybrid);
        assert_eq!(
            l.mount_point(Controller::Memory),
            Some(Path::new("/sys/fs/cgroup/memory"))
        );
        assert_eq!(l.current(Controller::Memory), Some("/process_api/cdfd"));
        assert!(!l.is_v2(Controller::Memory));
        assert!(l.is_v2(Controller::Hugetlb));
        assert_eq!(
            l.mount_point(Controller::Hugetlb),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        assert!(!l.has(Controller::NetCls));
        assert_eq!(l.v1_hierarchies().len(), 9);
        assert!(!l.default_controllers().contains(&Controller::Hugetlb));
        assert_eq!(
            l.v2_hierarchy().and_then(|v| v.current.as_deref()),
            Some("/")
        );
    }

    #[test]
    fn v1_layout_with_comounts() {
        let l = Layout::from_texts(V1, V1_CG).unwrap();
        assert_eq!(l.mode(), Mode::V1);
        assert_eq!(
            l.mount_point(Controller::Cpuacct),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert_eq!(
            l.mount_point(Controller::Cpu),
            l.mount_point(Controller::Cpuacct)
        );
        assert_eq!(l.current(Controller::Cpu), Some("/user.slice"));
        assert_eq!(l.current(Controller::NetPrio), Some("/"));
        assert_eq!(
            l.v1_hierarchy(Controller::Pids).map(|h| h.root.as_str()),
            Some("/docker/abc")
        );
        assert!(!l.has(Controller::Io));
        let sd = l
            .v1_hierarchies()
            .iter()
            .find(|h| h.name.is_some())
            .unwrap();
        assert_eq!(sd.current.as_deref(), Some("/user.slice/session-1.scope"));
    }

    #[test]
    fn v2_layout() {
        let mut l = Layout::from_texts(V2, V2_CG).unwrap();
        l.set_v2_controllers("cpuset cpu io memory hugetlb pids rdma misc\n");
        assert_eq!(l.mode(), Mode::V2);
        assert!(l.is_v2(Controller::Memory));
        assert!(l.is_v2(Controller::Cpuacct));
        assert!(l.is_v2(Controller::Freezer));
        assert_eq!(
            l.current(Controller::Io),
            Some("/user.slice/user-1000.slice/session-2.scope")
        );
        assert!(l.default_controllers().contains(&Controller::Io));
        assert!(!l.has(Controller::NetCls));
    }

    #[test]
    fn nothing_mounted() {
        let t = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n";
        assert!(matches!(
            Layout::from_texts(t, ""),
            Err(Error::NoCgroupMount { .. })
        ));
    }

    #[test]
    fn detect_on_this_host() {
        let l = Layout::detect().unwrap();
        // Whatever the host is, the answer is self-consistent.
        for (c, _) in l.controllers() {
            assert!(l.mount_point(c).is_some());
        }
    }
}
