//! [`Cgroup`]: one cgroup, present in every hierarchy it needs.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::layout::{Controller, Layout, Mode};
use crate::parse::{keyed, parse_cpu_list, parse_flat_keyed};
use crate::resources::Resources;

/// How long freeze, thaw and kill wait for the kernel before giving up.
const STATE_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times rmdir is retried on EBUSY (a task that just exited may
/// still be accounted to the cgroup for a moment).
const RMDIR_RETRIES: u32 = 100;

/// One directory of the cgroup: a v1 hierarchy or the unified one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dir {
    /// Controllers this directory serves (empty for a membership-only unified
    /// directory on a hybrid host).
    controllers: BTreeSet<Controller>,
    /// The hierarchy's mount point.
    mount: PathBuf,
    /// The cgroup directory.
    path: PathBuf,
    /// Whether this is the unified (v2) hierarchy.
    v2: bool,
}

/// A cgroup, created (or opened) in every hierarchy its controllers need.
///
/// Deleted when dropped (best effort, and only if this handle created it)
/// unless [`Cgroup::keep`] was called; [`Cgroup::delete`] deletes it and
/// reports errors.
///
/// ```no_run
/// use hull_cgroup::{Cgroup, Layout, Resources};
/// let layout = Layout::detect()?;
/// let cg = Cgroup::create(&layout, "hull-demo")?;
/// cg.apply(&Resources::builder().memory_limit(64 << 20).build()?)?;
/// cg.add_process(std::process::id() as i32)?;
/// # Ok::<(), hull_cgroup::Error>(())
/// ```
#[derive(Debug)]
pub struct Cgroup {
    layout: Layout,
    path: String,
    dirs: Vec<Dir>,
    owned: bool,
    deleted: bool,
}

/// Checks that `path` is a plain relative cgroup path (a leading `/` is
/// allowed and ignored) and returns its normal form `a/b/c`.
///
/// # Errors
/// [`Error::InvalidPath`] for `..`, `.`, empty components, NUL, or an empty path.
pub fn normalize_path(path: &str) -> Result<String> {
    let bad = |reason| {
        Err(Error::InvalidPath {
            path: path.to_string(),
            reason,
        })
    };
    if path.contains('\0') {
        return bad("contains NUL");
    }
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    if trimmed.is_empty() {
        return bad("empty (the root cgroup cannot be managed)");
    }
    let mut parts = Vec::new();
    for part in trimmed.split('/') {
        match part {
            "" => return bad("empty component"),
            "." => return bad("'.' component"),
            ".." => return bad("'..' escapes the parent"),
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    // Belt and braces: the joined path must stay below its hierarchy.
    if Path::new(&joined)
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return bad("not a plain relative path");
    }
    Ok(joined)
}

/// Reads a whole kernel-generated file (proc, sysfs, cgroupfs) as text.
/// `fs::read_to_string` sees their size as 0 and reads in steps that grow
/// from 32 bytes (eight system calls for a mountinfo); a buffer of pages
/// from the start takes two.
///
/// # Errors
/// The open or read error; `InvalidData` for text that is not UTF-8.
pub fn read_kernel_file(path: impl AsRef<Path>) -> io::Result<String> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(8192);
    // Through `take`: `read_to_end` on a File itself first asks for the
    // file's size and position (statx, lseek), which these files lack.
    std::fs::File::open(path)?
        .take(u64::MAX)
        .read_to_end(&mut buf)?;
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

pub(crate) fn read_file(path: &Path) -> Result<String> {
    read_kernel_file(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn write_raw(path: &Path, value: &str) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).open(path)?;
    f.write_all(value.as_bytes())
}

pub(crate) fn write_file(path: &Path, value: &str) -> Result<()> {
    write_raw(path, value).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

fn is_errno(e: &io::Error, errno: i32) -> bool {
    e.raw_os_error() == Some(errno)
}

impl Cgroup {
    /// Creates (or opens, if it exists) the cgroup at `path` (relative to
    /// each hierarchy's root) with the layout's default controllers.
    ///
    /// # Errors
    /// See [`Cgroup::create_with`].
    pub fn create(layout: &Layout, path: &str) -> Result<Cgroup> {
        let ctrls = layout.default_controllers();
        Cgroup::create_with(layout, path, &ctrls)
    }

    /// Creates (or opens) the cgroup at `path` in every hierarchy that holds
    /// one of `controllers`, plus the unified hierarchy wherever one is
    /// mounted (membership on a hybrid host, and CLONE_INTO_CGROUP).
    ///
    /// On v2, the controllers are enabled in `cgroup.subtree_control` of
    /// every ancestor, root included. On v1, a new cpuset cgroup inherits
    /// its parent's cpus and mems (it could hold no task otherwise).
    /// On failure, every directory this call created is removed again.
    ///
    /// # Errors
    /// [`Error::InvalidPath`], [`Error::ControllerUnavailable`],
    /// [`Error::Create`], [`Error::Write`] (enabling controllers).
    pub fn create_with(
        layout: &Layout,
        path: &str,
        controllers: &BTreeSet<Controller>,
    ) -> Result<Cgroup> {
        let mut cg = Cgroup::plan(layout, path, controllers)?;
        cg.owned = true;
        let mut created: Vec<PathBuf> = Vec::new();
        let result = cg.make_dirs(&mut created);
        if let Err(e) = result {
            for d in created.iter().rev() {
                let _ = std::fs::remove_dir(d);
            }
            cg.deleted = true;
            return Err(e);
        }
        // A cgroup that existed everywhere already belongs to someone else:
        // dropping this handle must not remove it.
        cg.owned = cg.dirs.iter().any(|d| created.contains(&d.path));
        Ok(cg)
    }

    /// The cgroup at `path` as [`Cgroup::create_with`] would make it, with
    /// nothing read or made: its directories, before they exist (a spawner
    /// can prepare to join them while another thread makes them). Dropping
    /// it touches nothing.
    ///
    /// # Errors
    /// [`Error::InvalidPath`], [`Error::ControllerUnavailable`].
    pub fn planned(
        layout: &Layout,
        path: &str,
        controllers: &BTreeSet<Controller>,
    ) -> Result<Cgroup> {
        Cgroup::plan(layout, path, controllers)
    }

    /// Opens an existing cgroup without taking ownership: dropping it leaves
    /// the directories in place.
    ///
    /// # Errors
    /// [`Error::InvalidPath`], [`Error::ControllerUnavailable`], or
    /// [`Error::Open`] when a directory is missing.
    pub fn open(layout: &Layout, path: &str, controllers: &BTreeSet<Controller>) -> Result<Cgroup> {
        let cg = Cgroup::plan(layout, path, controllers)?;
        for d in &cg.dirs {
            if !d.path.is_dir() {
                return Err(Error::Open {
                    path: d.path.clone(),
                    source: io::Error::from_raw_os_error(libc::ENOENT),
                });
            }
        }
        Ok(cg)
    }

    fn plan(layout: &Layout, path: &str, controllers: &BTreeSet<Controller>) -> Result<Cgroup> {
        let path = normalize_path(path)?;
        let mut dirs: Vec<Dir> = Vec::new();
        for &c in controllers {
            if !layout.has(c) {
                return Err(Error::ControllerUnavailable { controller: c });
            }
            if let Some(h) = layout.v1_hierarchy(c) {
                match dirs.iter_mut().find(|d| d.mount == h.mount_point) {
                    Some(d) => {
                        d.controllers.insert(c);
                    }
                    None => dirs.push(Dir {
                        controllers: h.controllers.clone(),
                        path: h.mount_point.join(&path),
                        mount: h.mount_point.clone(),
                        v2: false,
                    }),
                }
            }
        }
        if let Some(v2) = layout.v2_hierarchy() {
            let ctrls: BTreeSet<Controller> = controllers
                .iter()
                .copied()
                .filter(|c| layout.is_v2(*c) && c.v2_name().is_some())
                .collect();
            dirs.push(Dir {
                controllers: ctrls,
                path: v2.mount_point.join(&path),
                mount: v2.mount_point.clone(),
                v2: true,
            });
        }
        Ok(Cgroup {
            layout: layout.clone(),
            path,
            dirs,
            owned: false,
            deleted: false,
        })
    }

    fn make_dirs(&self, created: &mut Vec<PathBuf>) -> Result<()> {
        for d in &self.dirs {
            // Ancestors first, top-down, so each can be prepared before its child.
            let mut cur = d.mount.clone();
            for comp in self.path.split('/') {
                if d.v2 && !d.controllers.is_empty() {
                    enable_controllers(&cur, &d.controllers)?;
                }
                cur.push(comp);
                match std::fs::create_dir(&cur) {
                    Ok(()) => created.push(cur.clone()),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(source) => {
                        return Err(Error::Create { path: cur, source });
                    }
                }
                if !d.v2 && d.controllers.contains(&Controller::Cpuset) {
                    inherit_cpuset(&cur)?;
                }
            }
        }
        Ok(())
    }

    /// The cgroup's path relative to its hierarchies' roots (`a/b`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The host layout this cgroup was created with.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Every directory of this cgroup (one per hierarchy).
    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.dirs.iter().map(|d| d.path.as_path())
    }

    /// The directory that serves `c`, if this cgroup has it.
    pub fn dir_of(&self, c: Controller) -> Option<&Path> {
        if let Some(d) = self
            .dirs
            .iter()
            .find(|d| !d.v2 && d.controllers.contains(&c))
        {
            return Some(&d.path);
        }
        if self.layout.is_v2(c) {
            return self.v2_dir();
        }
        None
    }

    /// The unified (v2) directory, if a cgroup2 hierarchy is mounted.
    pub fn v2_dir(&self) -> Option<&Path> {
        self.dirs.iter().find(|d| d.v2).map(|d| d.path.as_path())
    }

    /// The directory whose `cgroup.procs` lists the members: the unified
    /// one on v2, else the first v1 hierarchy.
    fn primary(&self) -> Option<&Path> {
        if self.layout.mode() == Mode::V2 {
            return self.v2_dir();
        }
        self.dirs
            .iter()
            .find(|d| !d.v2)
            .or(self.dirs.first())
            .map(|d| d.path.as_path())
    }

    /// Creates (or opens) a nested cgroup `name` below this one, with the
    /// same controllers; it is owned like this one.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] if `name` is not one plain component; as
    /// [`Cgroup::create_with`] otherwise.
    pub fn child(&self, name: &str) -> Result<Cgroup> {
        if name.contains('/') {
            return Err(Error::InvalidPath {
                path: name.to_string(),
                reason: "a child name is one component",
            });
        }
        normalize_path(name)?;
        let ctrls: BTreeSet<Controller> = self
            .dirs
            .iter()
            .flat_map(|d| d.controllers.iter().copied())
            .collect();
        Cgroup::create_with(&self.layout, &format!("{}/{name}", self.path), &ctrls)
    }

    /// Applies (or updates, on a live cgroup) `resources`.
    ///
    /// Checks first what the kernel would refuse with an unclear errno: block
    /// devices must exist and a cpuset must lie within the parent's.
    ///
    /// # Errors
    /// [`Error::UnknownDevice`], [`Error::CpusetOutOfRange`],
    /// [`Error::ControllerUnavailable`], [`Error::Unsupported`],
    /// [`Error::MissingControlFile`], [`Error::LimitBelowUsage`],
    /// [`Error::Write`], [`Error::DeviceProgram`] (v2 device rules).
    pub fn apply(&self, resources: &Resources) -> Result<()> {
        let settings = resources.settings(&self.layout)?;
        for dev in resources.io_devices() {
            let p = format!("/sys/dev/block/{}:{}", dev.major, dev.minor);
            if !Path::new(&p).exists() {
                return Err(Error::UnknownDevice {
                    field: "io",
                    major: dev.major,
                    minor: dev.minor,
                });
            }
        }
        let (cpus, mems) = resources.cpuset();
        for (field, want) in [("cpus", cpus), ("mems", mems)] {
            let Some(want) = want else { continue };
            let Some(dir) = self.dir_of(Controller::Cpuset) else {
                return Err(Error::ControllerUnavailable {
                    controller: Controller::Cpuset,
                });
            };
            let parent = dir.parent().unwrap_or(dir);
            let eff = parent.join(format!("cpuset.{field}.effective"));
            let file = if eff.exists() {
                eff
            } else {
                parent.join(format!("cpuset.{field}"))
            };
            let text = read_file(&file)?;
            let have = parse_cpu_list(&text).map_err(|source| Error::Parse {
                path: file.clone(),
                source,
            })?;
            if !want.is_subset(&have) {
                return Err(Error::CpusetOutOfRange {
                    field,
                    requested: crate::parse::render_cpu_list(want),
                    available: text.trim().to_string(),
                });
            }
        }
        let mut i = 0;
        // The file last written, kept open for the next setting of the same
        // file (device rules come one per write, a dozen in a row).
        let mut last: Option<(PathBuf, File)> = None;
        while i < settings.len() {
            let s = &settings[i];
            let Some(dir) = self.dir_of(s.controller) else {
                return Err(Error::ControllerUnavailable {
                    controller: s.controller,
                });
            };
            let mut path = dir.join(&s.file);
            // Opened without a look first (one lookup, not two, per file).
            let mut file = match last.take() {
                Some((p, f)) if p == path => Ok(f),
                _ => OpenOptions::new().write(true).open(&path),
            };
            if file.as_ref().is_err_and(|e| is_errno(e, libc::ENOENT)) {
                // Kernels with BFQ but without CFQ spell the weights with bfq.
                let alt = match s.file.as_str() {
                    "blkio.weight" => Some("blkio.bfq.weight"),
                    "blkio.weight_device" => Some("blkio.bfq.weight_device"),
                    _ => None,
                };
                match alt.map(|a| dir.join(a)) {
                    Some(a) if a.exists() => {
                        file = OpenOptions::new().write(true).open(&a);
                        path = a;
                    }
                    _ => return Err(Error::MissingControlFile { path }),
                }
            }
            let written = file.and_then(|mut f| f.write_all(s.value.as_bytes()).map(|()| f));
            match written {
                Ok(f) => last = Some((path, f)),
                // v1 refuses memory.limit above memsw.limit: raise memsw first.
                Err(e)
                    if is_errno(&e, libc::EINVAL)
                        && s.file == "memory.limit_in_bytes"
                        && settings
                            .get(i + 1)
                            .is_some_and(|n| n.file == "memory.memsw.limit_in_bytes") =>
                {
                    let n = &settings[i + 1];
                    let np = dir.join(&n.file);
                    write_file(&np, &n.value)?;
                    write_file(&path, &s.value)?;
                    i += 1;
                }
                Err(source)
                    if is_errno(&source, libc::EBUSY)
                        && (s.file.starts_with("memory.") || s.file == "pids.max") =>
                {
                    return Err(Error::LimitBelowUsage {
                        path,
                        value: s.value.clone(),
                        source,
                    });
                }
                Err(source) => {
                    return Err(Error::Write {
                        path,
                        value: s.value.clone(),
                        source,
                    });
                }
            }
            i += 1;
        }
        let devices = resources.devices();
        if !devices.is_empty() && self.layout.is_v2(Controller::Devices) {
            self.set_device_program(&devices)?;
        }
        if let Some(f) = resources.frozen() {
            self.set_frozen(f)?;
        }
        Ok(())
    }

    /// Replaces the cgroup's v2 device program with one built from `rules`:
    /// the new program is attached first, then the ones found before are
    /// detached, so there is no moment without a filter.
    fn set_device_program(&self, rules: &[crate::resources::DeviceRule]) -> Result<()> {
        use std::os::fd::AsFd;
        let path = self.v2_dir().map(Path::to_path_buf).unwrap_or_default();
        let err = |what: &'static str| {
            let path = path.clone();
            move |source| Error::DeviceProgram { what, path, source }
        };
        let dir = self.dir_fd()?;
        let old = crate::bpf::query(dir.as_fd()).map_err(err("BPF_PROG_QUERY"))?;
        let prog =
            crate::bpf::load(&crate::bpf::device_program(rules)).map_err(err("BPF_PROG_LOAD"))?;
        crate::bpf::attach(dir.as_fd(), prog.as_fd()).map_err(err("BPF_PROG_ATTACH"))?;
        for id in old {
            match crate::bpf::prog_fd_by_id(id) {
                Ok(fd) => match crate::bpf::detach(dir.as_fd(), fd.as_fd()) {
                    Ok(()) => {}
                    Err(e) if is_errno(&e, libc::ENOENT) => {}
                    Err(e) => return Err(err("BPF_PROG_DETACH")(e)),
                },
                Err(e) if is_errno(&e, libc::ENOENT) => {}
                Err(e) => return Err(err("BPF_PROG_GET_FD_BY_ID")(e)),
            }
        }
        Ok(())
    }

    /// Moves process `pid` (all its threads) into this cgroup, in every
    /// hierarchy.
    ///
    /// # Errors
    /// [`Error::AddProcess`] naming the `cgroup.procs` that refused it.
    pub fn add_process(&self, pid: i32) -> Result<()> {
        self.add(pid, "cgroup.procs", "cgroup.procs")
    }

    /// Moves one thread `tid` into this cgroup (v1 `tasks`; v2
    /// `cgroup.threads`, which needs a threaded cgroup). On a hybrid host the
    /// membership-only unified directory is left alone: it could only take
    /// the thread if it were threaded.
    ///
    /// # Errors
    /// [`Error::AddProcess`].
    pub fn add_thread(&self, tid: i32) -> Result<()> {
        self.add(tid, "tasks", "cgroup.threads")
    }

    fn add(&self, pid: i32, v1_file: &str, v2_file: &str) -> Result<()> {
        let threads = v1_file == "tasks";
        for d in &self.dirs {
            if threads && d.v2 && self.layout.mode() == Mode::Hybrid && d.controllers.is_empty() {
                continue;
            }
            let file = d.path.join(if d.v2 { v2_file } else { v1_file });
            write_raw(&file, &pid.to_string()).map_err(|source| Error::AddProcess {
                pid,
                path: file.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// The processes in this cgroup (not its children), from `cgroup.procs`.
    ///
    /// # Errors
    /// [`Error::Read`], [`Error::Parse`].
    pub fn procs(&self) -> Result<Vec<i32>> {
        match self.primary() {
            Some(p) => read_pids(&p.join("cgroup.procs")),
            None => Ok(Vec::new()),
        }
    }

    /// The processes in this cgroup and every cgroup below it.
    ///
    /// # Errors
    /// [`Error::Read`], [`Error::Parse`].
    pub fn procs_recursive(&self) -> Result<Vec<i32>> {
        let Some(p) = self.primary() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut dirs = vec![p.to_path_buf()];
        while let Some(d) = dirs.pop() {
            match read_pids(&d.join("cgroup.procs")) {
                Ok(p) => out.extend(p),
                Err(Error::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            dirs.extend(subdirs(&d));
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn freezer(&self) -> Option<(&Path, bool)> {
        if let Some(d) = self
            .dirs
            .iter()
            .find(|d| !d.v2 && d.controllers.contains(&Controller::Freezer))
        {
            return Some((&d.path, false));
        }
        let v2 = self.v2_dir()?;
        v2.join("cgroup.freeze").exists().then_some((v2, true))
    }

    /// Freezes every task in the cgroup (v1 `freezer.state`, v2
    /// `cgroup.freeze`) and waits until the kernel reports it frozen.
    ///
    /// # Errors
    /// [`Error::ControllerUnavailable`] without a freezer, [`Error::Write`],
    /// [`Error::Timeout`].
    pub fn freeze(&self) -> Result<()> {
        self.set_frozen(true)
    }

    /// Thaws the cgroup and waits until it runs again.
    ///
    /// # Errors
    /// As [`Cgroup::freeze`].
    pub fn thaw(&self) -> Result<()> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        let (dir, v2) = self.freezer().ok_or(Error::ControllerUnavailable {
            controller: Controller::Freezer,
        })?;
        let start = Instant::now();
        if v2 {
            let events = dir.join("cgroup.events");
            // Watch cgroup.events before writing, so no change is missed; the
            // kernel signals every change of "frozen" there.
            let watch = crate::sys::inotify().and_then(|fd| {
                crate::sys::inotify_watch(std::os::fd::AsFd::as_fd(&fd), &events).map(|()| fd)
            });
            write_file(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
            loop {
                let text = read_file(&events)?;
                let entries = parse_flat_keyed(&text).map_err(|source| Error::Parse {
                    path: events.clone(),
                    source,
                })?;
                if keyed(&entries, "frozen") == Some(u64::from(frozen)) {
                    return Ok(());
                }
                self.check_timeout(start, if frozen { "freeze" } else { "thaw" })?;
                match &watch {
                    Ok(fd) => {
                        let fd = std::os::fd::AsFd::as_fd(fd);
                        // Bounded wait: a missed wakeup costs at most this.
                        if crate::sys::poll_readable(fd, Some(Duration::from_millis(50)))
                            .unwrap_or(false)
                        {
                            let mut buf = [0u8; 1024];
                            let _ = crate::sys::read(fd, &mut buf);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        }
        let state = dir.join("freezer.state");
        let want = if frozen { "FROZEN" } else { "THAWED" };
        loop {
            // Writing FROZEN again re-tries tasks that were not yet frozen.
            write_file(&state, want)?;
            if read_file(&state)?.trim() == want {
                return Ok(());
            }
            self.check_timeout(start, if frozen { "freeze" } else { "thaw" })?;
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Whether the cgroup is frozen now.
    ///
    /// # Errors
    /// [`Error::ControllerUnavailable`], [`Error::Read`].
    pub fn is_frozen(&self) -> Result<bool> {
        let (dir, v2) = self.freezer().ok_or(Error::ControllerUnavailable {
            controller: Controller::Freezer,
        })?;
        if v2 {
            let p = dir.join("cgroup.freeze");
            Ok(read_file(&p)?.trim() == "1")
        } else {
            Ok(read_file(&dir.join("freezer.state"))?.trim() == "FROZEN")
        }
    }

    fn check_timeout(&self, start: Instant, what: &'static str) -> Result<()> {
        if start.elapsed() > STATE_TIMEOUT {
            return Err(Error::Timeout {
                what,
                path: self.primary().map(Path::to_path_buf).unwrap_or_default(),
                millis: u64::try_from(STATE_TIMEOUT.as_millis()).unwrap_or(u64::MAX),
            });
        }
        Ok(())
    }

    /// Kills every task in this cgroup and below with SIGKILL: `cgroup.kill`
    /// on v2; on v1 a freeze, kill, thaw loop (a frozen task cannot fork a
    /// replacement) until nothing but zombies is left.
    ///
    /// Zombies stay until their parent reaps them; this call does not wait
    /// for that.
    ///
    /// # Errors
    /// [`Error::Write`], [`Error::Kill`], [`Error::Timeout`].
    pub fn kill(&self) -> Result<()> {
        let start = Instant::now();
        if let Some(v2) = self.v2_dir() {
            let k = v2.join("cgroup.kill");
            if k.exists() && self.layout.mode() == Mode::V2 {
                write_file(&k, "1")?;
            }
        }
        let freezer = self.freezer().is_some();
        loop {
            let live: Vec<i32> = self
                .procs_recursive()?
                .into_iter()
                .filter(|p| !is_zombie(*p))
                .collect();
            if live.is_empty() {
                return Ok(());
            }
            if freezer {
                self.freeze()?;
            }
            for pid in live {
                match crate::sys::sigkill(pid) {
                    Ok(()) => {}
                    Err(e) if is_errno(&e, libc::ESRCH) => {}
                    Err(source) => return Err(Error::Kill { pid, source }),
                }
            }
            if freezer {
                self.thaw()?;
            }
            self.check_timeout(start, "kill")?;
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Opens the unified (v2) directory for `clone3(CLONE_INTO_CGROUP)`.
    ///
    /// On a hybrid host this places the child in the unified hierarchy only;
    /// it must still be added to the v1 hierarchies with
    /// [`Cgroup::add_process`].
    ///
    /// # Errors
    /// [`Error::Unsupported`] without a cgroup2 hierarchy, [`Error::Open`].
    pub fn dir_fd(&self) -> Result<OwnedFd> {
        let Some(p) = self.v2_dir() else {
            return Err(Error::Unsupported {
                setting: "CLONE_INTO_CGROUP",
                reason: "no cgroup2 hierarchy is mounted",
            });
        };
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(p)
            .map_err(|source| Error::Open {
                path: p.to_path_buf(),
                source,
            })?;
        Ok(OwnedFd::from(f))
    }

    /// Leaves the cgroup in place when this value is dropped.
    pub fn keep(mut self) {
        self.owned = false;
    }

    /// Deletes the cgroup and every cgroup below it, leaf first, in every
    /// hierarchy; rmdir is retried on EBUSY, and a directory already gone
    /// counts as deleted (so this is idempotent). The cgroup must hold no
    /// live task (see [`Cgroup::kill`]): a directory with live tasks fails at
    /// once with EBUSY.
    ///
    /// # Errors
    /// [`Error::Remove`] with the first directory that could not be removed
    /// (the others are still attempted).
    pub fn delete(&mut self) -> Result<()> {
        let mut first = None;
        for d in &self.dirs {
            if let Err(e) = remove_tree(&d.path) {
                first.get_or_insert(e);
            }
        }
        match first {
            None => {
                self.deleted = true;
                Ok(())
            }
            Some(e) => Err(e),
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if self.owned && !self.deleted {
            let _ = self.delete();
        }
    }
}

fn enable_controllers(dir: &Path, ctrls: &BTreeSet<Controller>) -> Result<()> {
    let file = dir.join("cgroup.subtree_control");
    let have = read_file(&file)?;
    let missing: Vec<String> = ctrls
        .iter()
        .filter_map(|c| c.v2_name())
        .filter(|n| !have.split_whitespace().any(|h| h == *n))
        .map(|n| format!("+{n}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    write_file(&file, &missing.join(" "))
}

fn inherit_cpuset(dir: &Path) -> Result<()> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let mine = dir.join(f);
        if read_file(&mine)?.trim().is_empty() {
            let theirs = read_file(&parent.join(f))?;
            write_file(&mine, theirs.trim())?;
        }
    }
    Ok(())
}

fn read_pids(path: &Path) -> Result<Vec<i32>> {
    let text = read_file(path)?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            l.trim().parse().map_err(|_| Error::Parse {
                path: path.to_path_buf(),
                source: crate::ParseError {
                    line: n + 1,
                    reason: "not a pid",
                },
            })
        })
        .collect()
}

fn subdirs(d: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(d)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

fn is_zombie(pid: i32) -> bool {
    match read_kernel_file(format!("/proc/{pid}/stat")) {
        // The state follows the last ')' (the command name may contain one).
        Ok(s) => s
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|st| st == "Z" || st == "X"),
        Err(_) => true,
    }
}

fn has_live_tasks(dir: &Path) -> bool {
    read_pids(&dir.join("cgroup.procs")).is_ok_and(|p| p.iter().any(|p| !is_zombie(*p)))
}

fn remove_tree(dir: &Path) -> Result<()> {
    // Most cgroups have no children: the directory itself first, without
    // reading it (EBUSY if it has children or tasks).
    match std::fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    for child in subdirs(dir) {
        remove_tree(&child)?;
    }
    let mut tries = 0;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            // Live tasks keep it busy for good: fail at once. Otherwise the
            // kernel is still letting go of exited tasks: wait a little.
            Err(e)
                if is_errno(&e, libc::EBUSY) && tries < RMDIR_RETRIES && !has_live_tasks(dir) =>
            {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(source) => {
                return Err(Error::Remove {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        }
    }
}

/// Opens a file for reading, mapping the error to [`Error::Open`].
pub(crate) fn open_file(path: &Path) -> Result<File> {
    File::open(path).map_err(|source| Error::Open {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_escape_are_rejected() {
        for p in ["", "/", "..", "a/../b", "a//b", "./a", "a/.", "a\0b", "a/"] {
            assert!(
                matches!(normalize_path(p), Err(Error::InvalidPath { .. })),
                "{p:?}"
            );
        }
        assert_eq!(normalize_path("/a/b").unwrap(), "a/b");
        assert_eq!(normalize_path("a").unwrap(), "a");
    }
}
