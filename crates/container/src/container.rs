//! The container and its lifecycle.

use std::fmt;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hull_ns::{Child, Command, ExitStatus, Namespaces, NsFd, Stdio};

use crate::config::{Config, ContainerBuilder, Mount, NetworkMode, Rootfs};
use crate::plan::{HostInfo, plan};
use crate::{Error, Result, store};

/// A container's status, as the OCI runtime spec names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Created: everything is set up and the process waits to be started.
    Created,
    /// Running.
    Running,
    /// Frozen by [`Container::pause`].
    Paused,
    /// Its process has exited (or it was never started and was killed).
    Stopped,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// The container's state in the shape of the OCI runtime spec's `state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// The spec version this state follows.
    pub oci_version: &'static str,
    /// The container id.
    pub id: String,
    /// Its status.
    pub status: Status,
    /// The pid of its process (0 once stopped).
    pub pid: i32,
    /// The root file system's directory on the host.
    pub rootfs: PathBuf,
}

impl State {
    /// The state as OCI state JSON.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"ociVersion\":\"{}\",\"id\":{},\"status\":\"{}\",\"pid\":{},\"bundle\":{}}}",
            self.oci_version,
            json_string(&self.id),
            self.status,
            self.pid,
            json_string(&self.rootfs.to_string_lossy())
        )
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A container: a process in its own namespaces and root file system.
///
/// ```no_run
/// use hull_container::Container;
///
/// let mut c = Container::builder("demo")
///     .args(["sh", "-c", "hostname; id -u"])
///     .build()?
///     .create()?;          // everything set up; the process waits
/// c.start()?;              // now it runs
/// let status = c.wait()?;
/// c.delete()?;             // idempotent; also done on drop
/// assert!(status.success());
/// # Ok::<(), hull_container::Error>(())
/// ```
#[derive(Debug)]
pub struct Container {
    config: Config,
    runtime_dir: PathBuf,
    rootfs_dir: PathBuf,
    child: Option<Child>,
    cgroup: Option<hull_cgroup::Cgroup>,
    terminal: Option<std::os::fd::OwnedFd>,
    /// A container loaded from the state store: its process, held by pidfd.
    foreign: Option<store::Foreign>,
    /// Bridge networking: the IPAM, the veth, the generated files.
    net: Option<NetState>,
    start_time: u64,
    status: Status,
    exit: Option<ExitStatus>,
    deleted: bool,
    detached: bool,
}

impl Container {
    /// Starts configuring a container with this id.
    pub fn builder(id: &str) -> ContainerBuilder {
        ContainerBuilder::new(id)
    }

    /// Creates the container from `config` with the caller's stdio: sets up
    /// everything and leaves its process waiting at the start gate.
    ///
    /// # Errors
    /// [`Error::RuntimeDir`], or [`Error::Process`] naming the step that
    /// failed (e.g. a program missing from the rootfs is the exec step with
    /// `ENOENT`). Nothing is left behind on error.
    pub fn create(config: Config) -> Result<Container> {
        Self::create_with_stdio(config, [Stdio::Inherit, Stdio::Inherit, Stdio::Inherit])
    }

    /// As [`Container::create`], with stdin, stdout and stderr given.
    ///
    /// # Errors
    /// As for [`Container::create`].
    pub fn create_with_stdio(config: Config, stdio: [Stdio; 3]) -> Result<Container> {
        Self::make(config, stdio, true)
    }

    /// Creates and starts the container in one step, with stdin, stdout and
    /// stderr given: as [`Container::create_with_stdio`] and then
    /// [`Container::start`], except that the process does not stop at a
    /// start gate. It runs its program as soon as it is set up, which saves
    /// a round trip between the two processes and a state-file write, for
    /// a caller with nothing to do in between (runc's `run` without hooks).
    /// A container on a bridge network still waits at the gate until its
    /// network is wired, then is started.
    ///
    /// # Errors
    /// As for [`Container::create`]; a failed execve is [`Error::Process`]
    /// from here, and nothing is left behind.
    pub fn run_with_stdio(config: Config, stdio: [Stdio; 3]) -> Result<Container> {
        let gate = matches!(config.network, NetworkMode::Bridge { .. });
        let mut c = Self::make(config, stdio, gate)?;
        if gate {
            c.start()?;
        }
        Ok(c)
    }

    fn make(config: Config, stdio: [Stdio; 3], gate: bool) -> Result<Container> {
        let runtime_dir = config.runtime_root.join(&config.id);
        std::fs::create_dir_all(&config.runtime_root).map_err(|source| Error::RuntimeDir {
            action: "create",
            path: config.runtime_root.clone(),
            source,
        })?;
        // create_dir (not _all): an existing directory means the id is taken.
        std::fs::create_dir(&runtime_dir).map_err(|source| Error::RuntimeDir {
            action: "create",
            path: runtime_dir.clone(),
            source,
        })?;
        let rootfs_dir = match &config.rootfs {
            Rootfs::Dir(d) => d.clone(),
            // The root is assembled on the runtime directory itself, in the
            // child's own mount namespace: the host only ever sees the
            // (empty) directory.
            Rootfs::Host | Rootfs::Overlay { .. } => runtime_dir.clone(),
        };
        let mut container = Container {
            config,
            runtime_dir,
            rootfs_dir,
            child: None,
            cgroup: None,
            terminal: None,
            foreign: None,
            net: None,
            start_time: 0,
            status: Status::Stopped,
            exit: None,
            deleted: false,
            detached: false,
        };
        // On error, `container` drops here and removes what was made.
        container.spawn(stdio, gate)?;
        container.status = if gate {
            Status::Created
        } else {
            Status::Running
        };
        if let Some(pid) = container.child.as_ref().map(Child::id) {
            container.start_time = store::start_time(pid).unwrap_or(0);
        }
        container.save()?;
        Ok(container)
    }

    /// Starts making the cgroup and applying the limits on a thread: mkdir
    /// in nine v1 hierarchies is kernel work of a few hundred microseconds
    /// that a second CPU can do while this one plans the child.
    /// [`PendingCgroup::wait`] takes the result, or does the work itself if
    /// the thread has not begun it (where v1 hierarchies are joined after
    /// the clone, see [`defer_cgroup`], that is right after the clone);
    /// dropping it waits for a thread that has (and removes the cgroup), so
    /// nothing outlives an error.
    fn start_cgroup(&self, defer: bool) -> Result<PendingCgroup> {
        let Some(parent) = &self.config.cgroup_parent else {
            return Ok(PendingCgroup {
                job: None,
                v2_dir: None,
                deferred: None,
            });
        };
        let path = match &self.config.cgroup_path {
            Some(p) => p.clone(),
            None => format!("{}/{}", parent.trim_end_matches('/'), self.config.id),
        };
        let id = self.config.id.clone();
        let cg_err = |source| Error::Cgroup {
            id: id.clone(),
            source,
        };
        let controllers = self.config.cgroup_controllers.clone();
        // Joining v1 hierarchies after the clone (see `defer_cgroup`): the
        // v2 directory is made here, before the thread starts, so that the
        // job never makes it (nor, failing, removes it under the clone).
        let mut deferred = None;
        if defer {
            let layout = host_layout().map_err(cg_err)?;
            let set = controllers
                .clone()
                .unwrap_or_else(|| layout.default_controllers());
            // A path or controller the job will refuse: it says so itself.
            if let Ok(planned) = hull_cgroup::Cgroup::planned(&layout, &path, &set) {
                let v2 = planned.v2_dir();
                let tasks: Vec<PathBuf> = planned
                    .dirs()
                    .filter(|d| Some(*d) != v2)
                    .map(|d| d.join("tasks"))
                    .collect();
                if !tasks.is_empty() {
                    // Opened at once: a failing job removes the whole
                    // cgroup, and the clone then fails on this fd with the
                    // job's error to report.
                    let early_v2 = match v2 {
                        Some(_) => {
                            let none = std::collections::BTreeSet::new();
                            let early = hull_cgroup::Cgroup::create_with(&layout, &path, &none)
                                .map_err(cg_err)?;
                            let fd = early.dir_fd().map_err(cg_err)?;
                            Some((early, fd))
                        }
                        None => None,
                    };
                    deferred = Some(Deferred { tasks, early_v2 });
                }
            }
        }
        let resources = self.config.resources.clone();
        let job_path = path.clone();
        // The job looks up the host's layout itself, so that the thread
        // need not wait for this one (the first look-up parses mountinfo;
        // when deferring, this one has done it already).
        let make = move || -> hull_cgroup::Result<hull_cgroup::Cgroup> {
            let layout = host_layout()?;
            let cg = match &controllers {
                Some(set) => hull_cgroup::Cgroup::create_with(&layout, &job_path, set),
                None => hull_cgroup::Cgroup::create(&layout, &job_path),
            }?;
            // On an error `cg` drops here, which removes it again.
            if let Some(r) = &resources {
                cg.apply(r)?;
            }
            Ok(cg)
        };
        let mut pending = PendingCgroup::start(id.clone(), Box::new(make));
        pending.deferred = deferred;
        let layout = host_layout().map_err(cg_err)?;
        // Where its v2 directory will be, for the plan (not made yet).
        pending.v2_dir = match (
            layout.v2_hierarchy(),
            hull_cgroup::cgroup::normalize_path(&path),
        ) {
            (Some(v2), Ok(rel)) => Some(v2.mount_point.join(rel)),
            _ => None,
        };
        Ok(pending)
    }

    /// The step that mounts an overlay rootfs inside the container's own
    /// mount namespace (nothing is mounted on the host), with a private
    /// upper layer in the runtime directory unless one was given. The
    /// layers are validated here (hull-overlayfs) and mounted by the child
    /// with the new mount API.
    fn overlay_op(&self) -> Result<Option<hull_ns::ChildOp>> {
        let Rootfs::Overlay { lowers, upper } = &self.config.rootfs else {
            return Ok(None);
        };
        let (upper, work) = match upper {
            Some((u, w)) => (u.clone(), w.clone()),
            None => {
                let (u, w) = (
                    self.runtime_dir.join("upper"),
                    self.runtime_dir.join("work"),
                );
                for d in [&u, &w] {
                    std::fs::create_dir(d).map_err(|source| Error::RuntimeDir {
                        action: "create",
                        path: d.clone(),
                        source,
                    })?;
                }
                (u, w)
            }
        };
        let id = self.config.id.clone();
        let mut overlay = hull_overlayfs::Overlay::builder()
            .lowers_top_down(lowers.iter().cloned())
            .upper(&upper, &work)
            .target(&self.rootfs_dir);
        if self.config.image.is_some() {
            // An upper layer that can be committed: no redirects or
            // metadata-only copies (a diff cannot express them).
            overlay = overlay
                .redirect_dir(hull_overlayfs::RedirectDir::NoFollow)
                .metacopy(false);
        }
        let overlay = overlay.build().map_err(|source| Error::Overlay {
            id,
            source: Box::new(source),
        })?;
        use hull_ns::FsParam;
        let mut params = Vec::new();
        // Paths, not fds: the overlay clones each layer's mount, which the
        // kernel allows only from the mount namespace the path is looked up
        // in, and that is the child's. One fsconfig per layer ("lowerdir+",
        // Linux 6.8+) has no option-string length limit.
        let path = |p: &Path| p.to_string_lossy().into_owned();
        if kernel_at_least(6, 8) {
            // The overlay crate's own parameter list: layers, upper, work
            // and options, each path checked against fsconfig's limit.
            let list = overlay.fsconfig_params().map_err(|source| Error::Overlay {
                id: self.config.id.clone(),
                source: Box::new(source),
            })?;
            for prm in list {
                params.push(match prm {
                    hull_overlayfs::FsconfigParam::Flag { key } => FsParam::Flag(key.into()),
                    hull_overlayfs::FsconfigParam::String { key, value } => {
                        FsParam::String(key.into(), value.to_string_lossy().into_owned())
                    }
                    // Newer variants: not produced for these settings.
                    #[allow(unreachable_patterns)]
                    _ => continue,
                });
            }
        } else {
            let joined: Vec<String> = overlay
                .lowers()
                .iter()
                .map(|l| path(l).replace(':', "\\:"))
                .collect();
            params.push(FsParam::String("lowerdir".into(), joined.join(":")));
            params.push(FsParam::String("upperdir".into(), path(&upper)));
            params.push(FsParam::String("workdir".into(), path(&work)));
        }
        Ok(Some(hull_ns::ChildOp::FsMount {
            fstype: "overlay".into(),
            params,
            attrs: 0,
            target: self.rootfs_dir.clone(),
        }))
    }

    fn spawn(&mut self, stdio: [Stdio; 3], gate: bool) -> Result<()> {
        // (Not in a user namespace: the child opens the `tasks` files
        // itself, and there it may not be allowed to.)
        let defer = !self.config.namespaces.contains(Namespaces::USER);
        let mut pending_cgroup = Some(self.start_cgroup(defer)?);
        let overlay = self.overlay_op()?;
        let net_config = self.prepare_network()?;
        let c = net_config.as_ref().unwrap_or(&self.config);
        let mut host = HostInfo::detect(c);
        host.cgroup_v2_dir = pending_cgroup.as_ref().and_then(|p| p.v2_dir.clone());
        let mut pty = None;
        if c.terminal {
            let (master, slave, n) = open_pty().map_err(|source| Error::Terminal {
                id: c.id.clone(),
                source,
            })?;
            host.console = Some(PathBuf::from(format!("/dev/pts/{n}")));
            pty = Some((master, slave));
        }
        let p = plan(c, &host, &self.rootfs_dir, overlay);
        let mut cmd = Command::new(&c.args[0]);
        let mut passed = Vec::with_capacity(c.pass_fds.len());
        for fd in &c.pass_fds {
            passed.push(fd.try_clone().map_err(|e| Error::Invalid {
                field: "pass_fds",
                problem: format!("cannot duplicate fd {}: {e}", fd.as_raw_fd()),
            })?);
        }
        cmd.pass_fds(passed);
        cmd.args(&c.args[1..])
            .env_clear()
            .new_namespaces(p.namespaces)
            .child_ops(p.ops)
            .current_dir(&c.cwd)
            .init(c.init)
            .loopback_up(p.loopback_up);
        if !gate {
            // No gate: spawn returns once the program runs.
        } else if c.persist {
            let fifo = self.runtime_dir.join(store::GATE_FIFO);
            let io = |source| Error::RuntimeDir {
                action: "make start FIFO in",
                path: self.runtime_dir.clone(),
                source,
            };
            store::mkfifo(&fifo).map_err(io)?;
            cmd.start_gate_fifo(store::open_fifo(&fifo, false).map_err(io)?);
        } else {
            cmd.start_gate(true);
        }
        for (k, v) in &c.env {
            cmd.env(k, v);
        }
        if let Some(h) = p.hostname {
            cmd.hostname(h);
        }
        if let (Some(u), Some(g)) = (&c.uid_map, &c.gid_map) {
            cmd.uid_map(u.clone()).gid_map(g.clone());
        }
        // v1 hierarchies are joined after the clone (see `defer_cgroup`);
        // otherwise the cgroup is made first.
        let (early_v2, made) = match defer_cgroup(&mut cmd, &mut pending_cgroup) {
            Some(deferred) => deferred,
            None => {
                let cgroup = match pending_cgroup.take() {
                    Some(p) => p.wait()?,
                    None => None,
                };
                if let Some(cg) = &cgroup {
                    place_in_cgroup(&mut cmd, cg, &c.id)?;
                }
                (None, MadeCgroup::done(cgroup))
            }
        };
        if let NetworkMode::Join(path) = &c.network {
            let ns = hull_ns::NsFd::open(path).map_err(|source| Error::Process {
                id: c.id.clone(),
                source,
            })?;
            cmd.join(ns);
        }
        let [i, o, e] = if let Some((master, slave)) = pty {
            self.terminal = Some(master);
            let dup = |fd: &std::os::fd::OwnedFd| {
                fd.try_clone().map_err(|source| Error::Terminal {
                    id: c.id.clone(),
                    source,
                })
            };
            [
                Stdio::Fd(dup(&slave)?),
                Stdio::Fd(dup(&slave)?),
                Stdio::Fd(slave),
            ]
        } else {
            stdio
        };
        cmd.stdin(i).stdout(o).stderr(e);
        let spawned = cmd.spawn();
        // Held from here on: on an error it drops, which removes it again.
        // A cgroup that could not be made is the error to report.
        let cgroup = made.take()?;
        let child = spawned.map_err(|source| Error::Process {
            id: c.id.clone(),
            source,
        })?;
        // The full cgroup handle removes the v2 directory with the rest.
        if let Some(v2) = early_v2 {
            v2.keep();
        }
        let pid = child.id();
        self.child = Some(child);
        self.cgroup = cgroup;
        // The child waits at its start gate: wire its network now.
        self.attach_network(pid)?;
        Ok(())
    }

    /// For bridge networking: an address from the IPAM, and the generated
    /// /etc/hosts, /etc/hostname and /etc/resolv.conf in a directory beside
    /// the runtime directory, bound into the container. Returns the
    /// configuration with those mounts added.
    fn prepare_network(&mut self) -> Result<Option<Config>> {
        let NetworkMode::Bridge {
            config: bridge,
            ipam_dir,
            links,
            nameservers,
        } = &self.config.network
        else {
            crate::network::check_ports(&self.config)?;
            return Ok(None);
        };
        crate::network::check_ports(&self.config)?;
        let id = self.config.id.clone();
        let net_err = |source| Error::Network {
            id: id.clone(),
            source: Box::new(source),
        };
        let ipam = hull_netns::Ipam::open(ipam_dir, bridge.subnet(), Some(bridge.gateway().addr()))
            .map_err(net_err)?;
        let addr = ipam.allocate(&id).map_err(net_err)?;
        let files_dir = self.config.runtime_root.join(format!(".{id}.net"));
        // Held from here on: delete (or a failed create) releases it.
        self.net = Some(NetState {
            ipam,
            addr,
            attachment: None,
            files_dir: files_dir.clone(),
            ports: Vec::new(),
        });
        let hostname = self
            .config
            .hostname
            .clone()
            .unwrap_or_else(|| id.chars().take(64).collect());
        let hosts = hull_netns::hosts_file(&hostname, Some(addr.addr()), links).map_err(net_err)?;
        let resolv = if nameservers.is_empty() {
            hull_netns::resolv_conf_from_host(
                &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            )
        } else {
            hull_netns::resolv_conf(nameservers, &[], &[]).map_err(net_err)?
        };
        let io = |source| Error::RuntimeDir {
            action: "write network files in",
            path: files_dir.clone(),
            source,
        };
        std::fs::create_dir(&files_dir).map_err(io)?;
        let mut config = self.config.clone();
        for (name, text) in [
            ("hosts", hosts),
            (
                "hostname",
                hull_netns::hostname_file(&hostname).map_err(net_err)?,
            ),
            ("resolv.conf", resolv),
        ] {
            let path = files_dir.join(name);
            std::fs::write(&path, text).map_err(io)?;
            config
                .mounts
                .push(Mount::bind(path, Path::new("/etc").join(name)));
        }
        Ok(Some(config))
    }

    /// Bridge networking, done by the parent while the child waits: the
    /// veth pair, eth0 with its address, and the default route.
    fn attach_network(&mut self, pid: i32) -> Result<()> {
        let NetworkMode::Bridge { config: bridge, .. } = &self.config.network else {
            return Ok(());
        };
        let id = self.config.id.clone();
        let Some(net) = self.net.as_mut() else {
            return Ok(());
        };
        let ns_err = |source| Error::Process {
            id: id.clone(),
            source,
        };
        let host = hull_ns::NsFd::current(Namespaces::NET).map_err(ns_err)?;
        let theirs = hull_ns::NsFd::from_pid(pid, Namespaces::NET).map_err(ns_err)?;
        let attachment = hull_netns::setup_bridge(
            &host,
            &theirs,
            bridge,
            &hull_netns::host_veth_name(&id),
            net.addr.addr(),
        )
        .map_err(|source| Error::Network {
            id: id.clone(),
            source: Box::new(source),
        })?;
        net.attachment = Some(attachment);
        crate::network::publish_ports(&self.config, &host, net.addr.addr(), &mut net.ports)?;
        Ok(())
    }

    /// The container's address on its bridge network, if it has one.
    pub fn address(&self) -> Option<std::net::IpAddr> {
        self.net.as_ref().map(|n| n.addr.addr())
    }

    /// The master side of the container's terminal (with
    /// [`ContainerBuilder::terminal`](crate::ContainerBuilder::terminal)),
    /// once.
    pub fn take_terminal(&mut self) -> Option<std::os::fd::OwnedFd> {
        self.terminal.take()
    }

    /// The container id.
    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// The configuration it was created from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The pid of its process (PID 1 inside), while it has one.
    pub fn pid(&self) -> Option<i32> {
        match self.status {
            Status::Created | Status::Running | Status::Paused => self
                .child
                .as_ref()
                .map(Child::id)
                .or(self.foreign.as_ref().map(|f| f.pid)),
            Status::Stopped => None,
        }
    }

    /// Starts a created container's process.
    ///
    /// # Errors
    /// [`Error::State`] unless created; [`Error::Process`] if the last steps
    /// (execve) failed.
    pub fn start(&mut self) -> Result<()> {
        if self.status != Status::Created {
            return Err(self.state_error("start"));
        }
        let id = self.config.id.clone();
        if self.child.is_none() && self.foreign.is_some() {
            // Created by another process: its gate is the FIFO.
            let fifo = self.runtime_dir.join(store::GATE_FIFO);
            let mut f = store::open_fifo(&fifo, true)
                .map(std::fs::File::from)
                .map_err(|source| Error::RuntimeDir {
                    action: "open start FIFO in",
                    path: self.runtime_dir.clone(),
                    source,
                })?;
            std::io::Write::write_all(&mut f, b"1").map_err(|source| Error::RuntimeDir {
                action: "start through FIFO in",
                path: self.runtime_dir.clone(),
                source,
            })?;
            self.status = Status::Running;
            return self.save();
        }
        let child = self.child.as_mut().ok_or_else(|| Error::State {
            id: id.clone(),
            status: Status::Stopped,
            action: "start",
        })?;
        match child.start() {
            Ok(()) => {
                self.status = Status::Running;
                self.save()
            }
            Err(source) => {
                self.status = Status::Stopped;
                let _ = self.save();
                Err(Error::Process { id, source })
            }
        }
    }

    /// Writes the state file (for a container made with
    /// [`ContainerBuilder::persist`](crate::ContainerBuilder::persist)).
    fn save(&self) -> Result<()> {
        if !self.config.persist || self.deleted {
            return Ok(());
        }
        let c = &self.config;
        store::Saved {
            id: c.id.clone(),
            pid: self.pid().unwrap_or(0),
            start_time: self.start_time,
            status: self.status,
            rootfs: self.rootfs_dir.clone(),
            cgroup: self.cgroup.as_ref().map(|g| g.path().to_string()),
            namespaces: c.namespaces,
            env: c.env.clone(),
            cwd: c.cwd.clone(),
            uid: c.uid,
            gid: c.gid,
            groups: c.groups.clone(),
            capabilities: c.capabilities,
            no_new_privs: c.no_new_privs,
        }
        .write(&self.runtime_dir)
    }

    /// Loads a container that was created with
    /// [`persist`](crate::ContainerBuilder::persist), by any process, from
    /// the state store under `runtime_root`.
    ///
    /// The loaded container can be started, signalled, paused, resumed,
    /// exec'd into and deleted; only its exit status is out of reach (it is
    /// not this process's child).
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::StateFile`], [`Error::Cgroup`].
    pub fn load(runtime_root: &Path, id: &str) -> Result<Container> {
        let runtime_dir = runtime_root.join(id);
        let path = runtime_dir.join(store::STATE_FILE);
        let _lock = store::Lock::take(&runtime_dir).map_err(|_| Error::NotFound {
            id: id.to_string(),
            root: runtime_root.to_path_buf(),
        })?;
        let text = std::fs::read_to_string(&path).map_err(|_| Error::NotFound {
            id: id.to_string(),
            root: runtime_root.to_path_buf(),
        })?;
        let saved = store::Saved::from_json(&path, &text)?;
        let mut config = Container::builder(&saved.id).into_config_unchecked();
        config.runtime_root = runtime_root.to_path_buf();
        config.namespaces = saved.namespaces;
        config.env = saved.env;
        config.cwd = saved.cwd;
        config.uid = saved.uid;
        config.gid = saved.gid;
        config.groups = saved.groups;
        config.capabilities = saved.capabilities;
        config.no_new_privs = saved.no_new_privs;
        config.persist = true;
        config.cgroup_parent = None;
        let cgroup = match &saved.cgroup {
            Some(p) => {
                let id = saved.id.clone();
                let cg_err = |source| Error::Cgroup {
                    id: id.clone(),
                    source,
                };
                let layout = hull_cgroup::Layout::detect().map_err(cg_err)?;
                hull_cgroup::Cgroup::open(&layout, p, &layout.default_controllers()).ok()
            }
            None => None,
        };
        let foreign = store::Foreign::open(saved.pid, saved.start_time);
        let status = if foreign.is_some() {
            saved.status
        } else {
            Status::Stopped
        };
        Ok(Container {
            config,
            runtime_dir,
            rootfs_dir: saved.rootfs,
            child: None,
            cgroup,
            terminal: None,
            foreign,
            net: None,
            start_time: saved.start_time,
            status,
            exit: None,
            deleted: false,
            detached: false,
        })
    }

    /// The ids of the containers in the state store under `runtime_root`.
    pub fn list(runtime_root: &Path) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(runtime_root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join(store::STATE_FILE).exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        ids
    }

    /// Lets the container outlive this value (and this process): nothing
    /// is killed or removed on drop. A persisted container can then be
    /// loaded by id. Returns its pid.
    pub fn detach(mut self) -> Option<i32> {
        let pid = self.pid();
        let _ = self.save();
        if let Some(c) = self.child.take() {
            c.detach();
        }
        if let Some(cg) = self.cgroup.take() {
            cg.keep();
        }
        self.detached = true;
        pid
    }

    /// Waits for the process to exit and returns its status.
    ///
    /// # Errors
    /// [`Error::State`] for a created container (start it first).
    pub fn wait(&mut self) -> Result<ExitStatus> {
        if let Some(s) = self.exit {
            return Ok(s);
        }
        if self.status == Status::Created {
            return Err(self.state_error("wait (start it first)"));
        }
        let id = self.config.id.clone();
        let Some(child) = self.child.as_mut() else {
            return Err(self.state_error("wait (it is not this process's child)"));
        };
        let s = child
            .wait()
            .map_err(|source| Error::Process { id, source })?;
        self.exit = Some(s);
        self.status = Status::Stopped;
        Ok(s)
    }

    /// Sends a signal to the container's process (PID 1).
    ///
    /// # Errors
    /// [`Error::State`] once stopped; [`Error::Process`].
    pub fn kill(&mut self, signal: i32) -> Result<()> {
        self.refresh();
        // SIGKILL reaches a frozen process; other signals wait for a resume.
        if self.status == Status::Stopped {
            return Err(self.state_error("kill"));
        }
        let id = self.config.id.clone();
        if let (None, Some(f)) = (&self.child, &self.foreign) {
            return f.kill(signal).map_err(|source| Error::Process {
                id,
                source: hull_ns::Error::Signal {
                    pid: f.pid,
                    signal,
                    source,
                },
            });
        }
        let Some(child) = self.child.as_ref() else {
            return Err(self.state_error("kill"));
        };
        child
            .kill(signal)
            .map_err(|source| Error::Process { id, source })
    }

    /// Stops the container: SIGTERM, then SIGKILL if it has not exited
    /// within `timeout`. Returns its exit status.
    ///
    /// # Errors
    /// [`Error::Process`] or [`Error::Wait`].
    pub fn stop(&mut self, timeout: Duration) -> Result<ExitStatus> {
        self.refresh();
        if self.status == Status::Stopped {
            return self.wait();
        }
        if self.status == Status::Created {
            self.kill(libc::SIGKILL)?;
            self.status = Status::Running;
            return self.wait();
        }
        self.kill(libc::SIGTERM)?;
        if !self.wait_timeout(timeout)? {
            self.kill(libc::SIGKILL)?;
        }
        self.wait()
    }

    /// Waits until the process exits or `timeout` passes; true if it exited.
    fn wait_timeout(&mut self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        let Some(child) = self.child.as_ref() else {
            return Ok(true);
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
            let mut pfd = libc::pollfd {
                fd: child.pidfd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for a borrowed pidfd.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r > 0 {
                return Ok(true);
            }
            if r == 0 {
                return Ok(false);
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(Error::Wait {
                    id: self.config.id.clone(),
                    source: e,
                });
            }
        }
    }

    /// Updates the status if the process has exited.
    fn refresh(&mut self) {
        if self.status != Status::Stopped && self.child.is_none() {
            if let Some(f) = &self.foreign {
                if f.wait_exit(Duration::ZERO) {
                    self.status = Status::Stopped;
                }
            }
        }
        if self.status == Status::Running {
            if let Some(Ok(Some(s))) = self.child.as_mut().map(Child::try_wait) {
                self.exit = Some(s);
                self.status = Status::Stopped;
            }
        }
    }

    /// Freezes every process of the container (cgroup freezer).
    ///
    /// # Errors
    /// [`Error::State`] unless running or without a cgroup;
    /// [`Error::Cgroup`].
    pub fn pause(&mut self) -> Result<()> {
        self.refresh();
        if self.status != Status::Running {
            return Err(self.state_error("pause"));
        }
        let id = self.config.id.clone();
        let Some(cg) = &self.cgroup else {
            return Err(self.state_error("pause (it has no cgroup)"));
        };
        cg.freeze().map_err(|source| Error::Cgroup { id, source })?;
        self.status = Status::Paused;
        self.save()
    }

    /// Thaws a paused container.
    ///
    /// # Errors
    /// [`Error::State`] unless paused; [`Error::Cgroup`].
    pub fn resume(&mut self) -> Result<()> {
        if self.status != Status::Paused {
            return Err(self.state_error("resume"));
        }
        let id = self.config.id.clone();
        let Some(cg) = &self.cgroup else {
            return Err(self.state_error("resume"));
        };
        cg.thaw().map_err(|source| Error::Cgroup { id, source })?;
        self.status = Status::Running;
        self.save()
    }

    /// Resource usage from the container's cgroup.
    ///
    /// # Errors
    /// [`Error::State`] without a cgroup; [`Error::Cgroup`].
    pub fn stats(&self) -> Result<hull_cgroup::Stats> {
        let Some(cg) = &self.cgroup else {
            return Err(self.state_error("read stats (it has no cgroup)"));
        };
        cg.stats().map_err(|source| Error::Cgroup {
            id: self.config.id.clone(),
            source,
        })
    }

    /// The container's cgroup, if it has one.
    pub fn cgroup(&self) -> Option<&hull_cgroup::Cgroup> {
        self.cgroup.as_ref()
    }

    /// The current status.
    pub fn status(&mut self) -> Status {
        self.refresh();
        self.status
    }

    /// The state in the OCI shape.
    pub fn state(&mut self) -> State {
        let status = self.status();
        State {
            oci_version: "1.2.0",
            id: self.config.id.clone(),
            status,
            pid: self.pid().unwrap_or(0),
            rootfs: self.rootfs_dir.clone(),
        }
    }

    /// The pids (as seen from the caller) of every process in the
    /// container's PID namespace.
    ///
    /// # Errors
    /// [`Error::Process`] if the namespace cannot be read.
    pub fn processes(&mut self) -> Result<Vec<i32>> {
        let Some(pid) = self.pid() else {
            return Ok(Vec::new());
        };
        let id = self.config.id.clone();
        let ns =
            NsFd::from_pid(pid, Namespaces::PID).map_err(|source| Error::Process { id, source })?;
        let mut pids: Vec<i32> = std::fs::read_dir("/proc")
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                    .filter(|p| {
                        NsFd::from_pid(*p, Namespaces::PID).is_ok_and(|theirs| theirs == ns)
                    })
                    .collect()
            })
            .unwrap_or_default();
        pids.sort_unstable();
        Ok(pids)
    }

    /// Runs another process inside the running container: it joins the
    /// container's namespaces (non-dumpable while it does) and cgroups, gets
    /// the container's capabilities, and runs as its user in its working
    /// directory.
    ///
    /// # Errors
    /// [`Error::State`] unless running; [`Error::Process`].
    pub fn exec<I, S>(&mut self, args: I, stdio: [Stdio; 3]) -> Result<Child>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.refresh();
        if self.status != Status::Running {
            return Err(self.state_error("exec"));
        }
        let Some(pid) = self.pid() else {
            return Err(self.state_error("exec"));
        };
        let mut args = args.into_iter();
        let Some(program) = args.next() else {
            return Err(Error::Invalid {
                field: "args",
                problem: "no program given".into(),
            });
        };
        let c = &self.config;
        // A joined network namespace is the container's too.
        let mut join = c.namespaces;
        if matches!(c.network, NetworkMode::Join(_)) {
            join |= Namespaces::NET;
        }
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .join_process(pid, join)
            .non_dumpable(true)
            .current_dir(&c.cwd);
        // The container's privileges, without ambient capabilities.
        let mut ops = Vec::new();
        crate::plan::privileges(c, 0, &mut ops);
        cmd.child_ops(ops);
        // Into the container's cgroups too, before it could fork anything.
        if let Some(cg) = &self.cgroup {
            place_in_cgroup(&mut cmd, cg, &c.id)?;
        }
        for (k, v) in &c.env {
            cmd.env(k, v);
        }
        let [i, o, e] = stdio;
        cmd.stdin(i).stdout(o).stderr(e);
        cmd.spawn().map_err(|source| Error::Process {
            id: self.config.id.clone(),
            source,
        })
    }

    /// Makes a process spawned with `cmd` start in this container's cgroup,
    /// as [`Container::exec`] does (for callers that build their own
    /// [`Command`]); nothing to do for a container without one.
    ///
    /// # Errors
    /// [`Error::Cgroup`] if its cgroup2 directory cannot be opened.
    pub fn place_in_cgroup(&self, cmd: &mut Command) -> Result<()> {
        match &self.cgroup {
            Some(cg) => place_in_cgroup(cmd, cg, &self.config.id),
            None => Ok(()),
        }
    }

    /// Deletes the container: kills what is left, waits for it, and removes
    /// its runtime directory. Idempotent.
    ///
    /// # Errors
    /// [`Error::RuntimeDir`] if the directory cannot be removed.
    pub fn delete(&mut self) -> Result<()> {
        if self.deleted {
            return Ok(());
        }
        // Everything in the cgroup goes, exec'd processes included (a
        // frozen cgroup is thawed so the kill is delivered).
        if let Some(cg) = &self.cgroup {
            if self.status == Status::Paused {
                let _ = cg.thaw();
            }
            let _ = cg.kill();
        }
        if let Some(child) = self.child.as_mut() {
            if self.exit.is_none() {
                let _ = child.kill(libc::SIGKILL);
                if self.status != Status::Created {
                    if let Ok(s) = child.wait() {
                        self.exit = Some(s);
                    }
                }
            }
        }
        if let Some(f) = self.foreign.take() {
            let _ = f.kill(libc::SIGKILL);
            // Not our child: its parent (or init) reaps it; wait until gone.
            f.wait_exit(Duration::from_secs(10));
        }
        // A created child is killed and reaped when dropped.
        self.child = None;
        self.status = Status::Stopped;
        if let Some(mut cg) = self.cgroup.take() {
            if let Err(source) = cg.delete() {
                let id = self.config.id.clone();
                self.cgroup = Some(cg);
                return Err(Error::Cgroup { id, source });
            }
        }
        if let Some(net) = self.net.take() {
            net.release(&self.config.id);
        }
        // The rootfs mounts lived in the container's mount namespace, which
        // died with its last process: only empty directories are left.
        remove_runtime_dir(&self.runtime_dir)?;
        self.deleted = true;
        Ok(())
    }

    fn state_error(&self, action: &'static str) -> Error {
        Error::State {
            id: self.config.id.clone(),
            status: self.status,
            action,
        }
    }

    /// The container's runtime directory on the host.
    pub fn runtime_dir(&self) -> &Path {
        &self.runtime_dir
    }
}

/// A new pseudo-terminal: (master, slave, pty number). The slave is opened
/// through the master (TIOCGPTPEER), never by a path in /dev/pts.
fn open_pty() -> std::io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd, u32)> {
    use std::os::fd::FromRawFd;
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: a NUL-terminated path and flags.
    let m = unsafe { libc::open(c"/dev/ptmx".as_ptr(), flags) };
    if m < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new fd that nobody else owns.
    let master = unsafe { std::os::fd::OwnedFd::from_raw_fd(m) };
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int from a valid pointer.
    if unsafe { libc::ioctl(m, libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes an unsigned int to a valid pointer.
    if unsafe { libc::ioctl(m, libc::TIOCGPTN, &mut n) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd.
    let sl = unsafe { libc::ioctl(m, libc::TIOCGPTPEER, flags) };
    if sl < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new fd that nobody else owns.
    Ok((master, unsafe { std::os::fd::OwnedFd::from_raw_fd(sl) }, n))
}

/// A bridge-networked container's address, veth and generated files.
#[derive(Debug)]
struct NetState {
    ipam: hull_netns::Ipam,
    addr: hull_netns::IpCidr,
    attachment: Option<hull_netns::BridgeAttachment>,
    files_dir: PathBuf,
    /// Published ports, unpublished when dropped.
    ports: Vec<hull_netns::PublishedPort>,
}

impl NetState {
    /// Frees the veth (without waiting for the namespace's destruction),
    /// the address and the files. Best effort: each part is attempted.
    fn release(self, id: &str) {
        for p in self.ports {
            let _ = p.remove();
        }
        if let Some(a) = self.attachment {
            let _ = a.release();
        }
        let _ = self.ipam.release_owner(id);
        let _ = std::fs::remove_dir_all(&self.files_dir);
    }
}

/// A cgroup the spawn's after-clone step makes: the job until someone
/// takes it, and its result once the step has run.
#[derive(Clone)]
struct MadeCgroup {
    job: Arc<Mutex<Option<PendingCgroup>>>,
    result: Arc<Mutex<Option<Result<Option<hull_cgroup::Cgroup>>>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MadeCgroup {
    fn done(cgroup: Option<hull_cgroup::Cgroup>) -> MadeCgroup {
        MadeCgroup {
            job: Arc::new(Mutex::new(None)),
            result: Arc::new(Mutex::new(Some(Ok(cgroup)))),
        }
    }

    /// Finishes the job if no one has taken it yet.
    fn finish(&self) -> Option<Result<Option<hull_cgroup::Cgroup>>> {
        let job = lock(&self.job).take();
        job.map(PendingCgroup::wait)
    }

    /// The result: the step's, or (when the spawn failed before it ran,
    /// e.g. because a failing job removed the v2 directory under the
    /// clone) the job's, finished here.
    fn take(&self) -> Result<Option<hull_cgroup::Cgroup>> {
        let stored = lock(&self.result).take();
        stored.or_else(|| self.finish()).unwrap_or(Ok(None))
    }
}

/// Where the host has v1 hierarchies, the spawn does not wait for the
/// cgroup: the thread's job (or the spawn, right after the clone) makes it
/// while the new child is still getting a CPU, and the child joins each v1
/// hierarchy once released, by writing `0` into `tasks` as before. Only the
/// v2 directory is made first ([`Container::start_cgroup`]), as
/// CLONE_INTO_CGROUP needs it. Takes the pending cgroup into the spawn's
/// after-clone step; returns the v2 directory's handle (it removes the
/// directory if the spawn fails) and where the made cgroup will be. `None`,
/// with nothing taken, unless the pending cgroup was started for this.
fn defer_cgroup(
    cmd: &mut Command,
    pending: &mut Option<PendingCgroup>,
) -> Option<(Option<hull_cgroup::Cgroup>, MadeCgroup)> {
    let Deferred { tasks, early_v2 } = pending.as_mut().and_then(|p| p.deferred.take())?;
    let early_v2 = early_v2.map(|(early, fd)| {
        cmd.cgroup(fd);
        early
    });
    let job = pending.take()?;
    let made = MadeCgroup {
        job: Arc::new(Mutex::new(Some(job))),
        result: Arc::new(Mutex::new(None)),
    };
    let theirs = made.clone();
    cmd.cgroup_tasks_after_clone(tasks, move || {
        let Some(r) = theirs.finish() else {
            return Ok(());
        };
        let failed = r.as_ref().err().map(ToString::to_string);
        *lock(&theirs.result) = Some(r);
        match failed {
            None => Ok(()),
            Some(m) => Err(m.into()),
        }
    });
    Some((early_v2, made))
}

/// Places the spawned process in the container's cgroup: it writes itself
/// into the v1 hierarchies' `tasks` files (no global lock, see
/// [`Command::cgroup_tasks`]) and is born in the v2 one
/// (`CLONE_INTO_CGROUP`).
fn place_in_cgroup(cmd: &mut Command, cg: &hull_cgroup::Cgroup, id: &str) -> Result<()> {
    let v2 = cg.v2_dir();
    cmd.cgroup_tasks(
        cg.dirs()
            .filter(|d| Some(*d) != v2)
            .map(|d| d.join("tasks")),
    );
    if v2.is_some() {
        let dir = cg.dir_fd().map_err(|source| Error::Cgroup {
            id: id.to_string(),
            source,
        })?;
        cmd.cgroup(dir);
    }
    Ok(())
}

/// A cgroup being made on a thread ([`Container::start_cgroup`]).
struct PendingCgroup {
    /// The container's id, the job (until someone takes it) and the thread
    /// (none if it could not be started: `wait` runs the job then).
    job: Option<(String, CgroupJob, Option<CgroupThread>)>,
    /// Where the cgroup's v2 directory will be.
    v2_dir: Option<PathBuf>,
    /// For joining v1 hierarchies after the clone: their `tasks` files and
    /// the v2 directory, made already.
    deferred: Option<Deferred>,
}

/// See [`defer_cgroup`].
struct Deferred {
    tasks: Vec<PathBuf>,
    /// The v2 directory: it removes it (if it made it) unless kept, and
    /// its fd for CLONE_INTO_CGROUP.
    early_v2: Option<(hull_cgroup::Cgroup, std::os::fd::OwnedFd)>,
}

type MakeCgroup = Box<dyn FnOnce() -> hull_cgroup::Result<hull_cgroup::Cgroup> + Send>;
type CgroupJob = Arc<Mutex<Option<MakeCgroup>>>;
type CgroupThread = std::thread::JoinHandle<Option<hull_cgroup::Result<hull_cgroup::Cgroup>>>;

/// Takes the job if no one has yet.
fn take_job(job: &CgroupJob) -> Option<MakeCgroup> {
    lock(job).take()
}

impl PendingCgroup {
    /// Starts `make` on a thread. Whoever comes first runs it: the thread,
    /// or [`PendingCgroup::wait`] when the thread has not been scheduled yet
    /// (on a busy machine it may not get a CPU before the spawn needs the
    /// cgroup), or could not be started.
    fn start(id: String, make: MakeCgroup) -> PendingCgroup {
        let job: CgroupJob = Arc::new(Mutex::new(Some(make)));
        let theirs = Arc::clone(&job);
        let thread = std::thread::Builder::new()
            .name("hull-cgroup".into())
            .spawn(move || take_job(&theirs).map(|make| make()))
            .ok();
        PendingCgroup {
            job: Some((id, job, thread)),
            v2_dir: None,
            deferred: None,
        }
    }

    /// The cgroup, once made (`None` for a container without one): made
    /// here if the thread has not started on it, else the thread's.
    fn wait(mut self) -> Result<Option<hull_cgroup::Cgroup>> {
        let Some((id, job, thread)) = self.job.take() else {
            return Ok(None);
        };
        // A thread that has not taken the job finds it gone and ends.
        let made = if let Some(make) = take_job(&job) {
            make()
        } else {
            thread
                .and_then(|t| t.join().ok().flatten())
                .unwrap_or_else(|| {
                    Err(hull_cgroup::Error::Create {
                        path: PathBuf::from("(the cgroup thread panicked)"),
                        source: std::io::Error::other("panic"),
                    })
                })
        };
        made.map(Some)
            .map_err(|source| Error::Cgroup { id, source })
    }
}

impl Drop for PendingCgroup {
    /// Drops the job if no one has started it; else waits for the thread,
    /// so that the cgroup it made is removed (the result drops) before an
    /// error goes further.
    fn drop(&mut self) {
        if let Some((_, job, thread)) = self.job.take() {
            if take_job(&job).is_none() {
                if let Some(t) = thread {
                    let _ = t.join();
                }
            }
        }
    }
}

/// The host's cgroup layout, detected once per process (mounts of cgroup
/// file systems do not move under a running runtime).
fn host_layout() -> hull_cgroup::Result<hull_cgroup::Layout> {
    use std::sync::OnceLock;
    static LAYOUT: OnceLock<hull_cgroup::Layout> = OnceLock::new();
    if let Some(l) = LAYOUT.get() {
        return Ok(l.clone());
    }
    let l = hull_cgroup::Layout::detect()?;
    Ok(LAYOUT.get_or_init(|| l).clone())
}

fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    (it.next().unwrap_or(0), it.next().unwrap_or(0)) >= (major, minor)
}

fn remove_runtime_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::RuntimeDir {
            action: "remove",
            path: dir.to_path_buf(),
            source,
        }),
    }
}

impl Drop for Container {
    /// Best-effort [`Container::delete`], unless detached.
    fn drop(&mut self) {
        if !self.detached {
            let _ = self.delete();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A job that counts its runs and fails (a cgroup cannot be made
    /// without the kernel; the error is what comes back).
    fn counting(runs: &Arc<AtomicUsize>) -> MakeCgroup {
        let runs = Arc::clone(runs);
        Box::new(move || {
            runs.fetch_add(1, Ordering::SeqCst);
            Err(hull_cgroup::Error::Create {
                path: PathBuf::from("/test/made"),
                source: std::io::Error::from_raw_os_error(libc::EACCES),
            })
        })
    }

    #[test]
    fn the_cgroup_job_runs_once_whoever_takes_it() {
        for _ in 0..50 {
            let runs = Arc::new(AtomicUsize::new(0));
            let p = PendingCgroup::start("c1".into(), counting(&runs));
            let Err(Error::Cgroup { id, source }) = p.wait() else {
                panic!("expected the job's error");
            };
            assert_eq!(id, "c1");
            assert!(source.to_string().contains("/test/made"), "{source}");
            assert_eq!(runs.load(Ordering::SeqCst), 1);
        }
    }

    #[test]
    fn without_a_thread_wait_runs_the_job_and_drop_never_does() {
        let runs = Arc::new(AtomicUsize::new(0));
        let job: CgroupJob = Arc::new(Mutex::new(Some(counting(&runs))));
        let p = PendingCgroup {
            job: Some(("c2".into(), Arc::clone(&job), None)),
            v2_dir: None,
            deferred: None,
        };
        assert!(matches!(p.wait(), Err(Error::Cgroup { .. })));
        assert_eq!(runs.load(Ordering::SeqCst), 1);

        let runs = Arc::new(AtomicUsize::new(0));
        let job: CgroupJob = Arc::new(Mutex::new(Some(counting(&runs))));
        drop(PendingCgroup {
            job: Some(("c3".into(), Arc::clone(&job), None)),
            v2_dir: None,
            deferred: None,
        });
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        assert!(take_job(&job).is_none(), "drop takes the job");
    }

    #[test]
    fn a_deferred_cgroup_is_made_once_by_the_step_or_after_a_failed_spawn() {
        let made = |runs: &Arc<AtomicUsize>| MadeCgroup {
            job: Arc::new(Mutex::new(Some(PendingCgroup {
                job: Some(("d".into(), Arc::new(Mutex::new(Some(counting(runs)))), None)),
                v2_dir: None,
                deferred: None,
            }))),
            result: Arc::new(Mutex::new(None)),
        };
        // The after-clone step ran it: its result is what comes back.
        let runs = Arc::new(AtomicUsize::new(0));
        let m = made(&runs);
        let r = m.finish().expect("the job");
        *lock(&m.result) = Some(r);
        assert!(matches!(m.take(), Err(Error::Cgroup { .. })));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // The spawn failed before the step: the job runs now, once, so
        // its error is the one reported.
        let runs = Arc::new(AtomicUsize::new(0));
        let m = made(&runs);
        assert!(matches!(m.take(), Err(Error::Cgroup { .. })));
        assert!(m.finish().is_none());
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}
