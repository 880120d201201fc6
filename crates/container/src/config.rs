//! The container's configuration: a typed builder, validated at build.

use std::path::{Component, Path, PathBuf};

use hull_ns::{IdMap, Namespaces};

use crate::caps::{Capabilities, Capability};
use crate::{Error, Result};

/// Where the container's root file system comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rootfs {
    /// An existing directory (e.g. an unpacked image), bound at the root.
    Dir(PathBuf),
    /// A minimal root made from the host: a tmpfs with the host's /usr bound
    /// read-only, the usual /bin, /sbin, /lib and /lib64 links into it, and
    /// a generated /etc (passwd, group, hostname, hosts, resolv.conf). Needs
    /// nothing downloaded.
    Host,
    /// An overlay of image layers. `lowers` are listed top-most first.
    /// Without `upper`, a private upper (and work) directory is made in the
    /// container's runtime directory and removed on delete.
    Overlay {
        /// Lower layers, top-most first.
        lowers: Vec<PathBuf>,
        /// `(upper, work)` directories on the same file system, if the
        /// writes should be kept.
        upper: Option<(PathBuf, PathBuf)>,
    },
}

/// The container's network.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum NetworkMode {
    /// A network namespace of its own with only loopback, up (the default).
    None,
    /// The caller's network namespace.
    Host,
    /// The network namespace at this path: `/proc/PID/ns/net` of another
    /// container, or a named one such as `/run/netns/NAME`.
    Join(PathBuf),
    /// A namespace of its own joined to a bridge in the caller's network
    /// namespace: a veth pair whose container end is `eth0`, an address
    /// from the subnet's IPAM (state kept in `ipam_dir`), a default route
    /// via the bridge, and generated /etc/hosts (with `links`), /etc/hostname
    /// and /etc/resolv.conf bound into the container.
    Bridge {
        /// The bridge network.
        config: hull_netns::BridgeConfig,
        /// Where the subnet's address allocations are kept.
        ipam_dir: PathBuf,
        /// Other containers' names for /etc/hosts.
        links: Vec<hull_netns::HostsEntry>,
        /// Name servers for /etc/resolv.conf (the host's when empty).
        nameservers: Vec<std::net::IpAddr>,
    },
}

/// A mount besides the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mount {
    /// A bind mount of a host file or directory.
    Bind {
        /// Host path.
        source: PathBuf,
        /// Absolute path inside the container.
        destination: PathBuf,
        /// Read-only inside the container.
        readonly: bool,
    },
    /// A tmpfs.
    Tmpfs {
        /// Absolute path inside the container.
        destination: PathBuf,
        /// Size limit in bytes (0: the kernel's default, half of RAM).
        size: u64,
    },
}

impl Mount {
    /// A read-write bind mount (`-v HOST:CONTAINER`).
    pub fn bind(source: impl Into<PathBuf>, destination: impl Into<PathBuf>) -> Mount {
        Mount::Bind {
            source: source.into(),
            destination: destination.into(),
            readonly: false,
        }
    }

    /// A read-only bind mount (`-v HOST:CONTAINER:ro`).
    pub fn bind_ro(source: impl Into<PathBuf>, destination: impl Into<PathBuf>) -> Mount {
        Mount::Bind {
            source: source.into(),
            destination: destination.into(),
            readonly: true,
        }
    }

    /// The path inside the container.
    pub fn destination(&self) -> &Path {
        match self {
            Mount::Bind { destination, .. } | Mount::Tmpfs { destination, .. } => destination,
        }
    }
}

/// A resource limit (setrlimit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// `libc::RLIMIT_*`.
    pub resource: u32,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// The paths runc masks by default: hidden behind /dev/null or an empty
/// read-only tmpfs.
pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// The paths runc makes read-only by default.
pub const DEFAULT_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// A validated container configuration. Built by [`ContainerBuilder`].
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) id: String,
    pub(crate) rootfs: Rootfs,
    pub(crate) readonly_rootfs: bool,
    pub(crate) no_pivot: bool,
    pub(crate) pass_fds: Vec<std::sync::Arc<std::os::fd::OwnedFd>>,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) cwd: PathBuf,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) groups: Vec<u32>,
    pub(crate) hostname: Option<String>,
    pub(crate) namespaces: Namespaces,
    pub(crate) uid_map: Option<IdMap>,
    pub(crate) gid_map: Option<IdMap>,
    pub(crate) mounts: Vec<Mount>,
    pub(crate) masked_paths: Vec<PathBuf>,
    pub(crate) readonly_paths: Vec<PathBuf>,
    pub(crate) capabilities: Capabilities,
    pub(crate) ambient: Capabilities,
    pub(crate) rlimits: Vec<Rlimit>,
    pub(crate) no_new_privs: bool,
    pub(crate) seccomp: Option<crate::seccomp::Seccomp>,
    /// The compiled `seccomp` profile (empty without one).
    pub(crate) seccomp_program: Vec<hull_ns::BpfInstruction>,
    pub(crate) oom_score_adj: Option<i32>,
    pub(crate) sysctls: Vec<(String, String)>,
    pub(crate) init: bool,
    pub(crate) runtime_root: PathBuf,
    pub(crate) cgroup_parent: Option<String>,
    pub(crate) cgroup_path: Option<String>,
    pub(crate) cgroup_controllers: Option<std::collections::BTreeSet<hull_cgroup::Controller>>,
    pub(crate) resources: Option<hull_cgroup::Resources>,
    pub(crate) terminal: bool,
    pub(crate) mount_cgroups: bool,
    pub(crate) persist: bool,
    pub(crate) network: NetworkMode,
    /// The image the rootfs comes from (see [`ContainerBuilder::image`]).
    pub(crate) image: Option<Box<crate::image::ImageInfo>>,
    /// Published ports (bridge networking).
    pub(crate) ports: Vec<crate::network::PortSpec>,
}

impl Config {
    /// The container id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The namespaces the container gets.
    pub fn namespaces(&self) -> Namespaces {
        self.namespaces
    }
}

/// Builds a [`Config`]; see [`Container::builder`](crate::Container::builder).
///
/// Defaults follow runc's `runc spec`: new PID, mount, IPC, UTS, network
/// and cgroup namespaces; the default mounts, masked and read-only paths; Docker's
/// default capabilities with an empty inheritable set; `RLIMIT_NOFILE`
/// 1024; no_new_privs; the process `sh` as root in `/`.
#[derive(Debug, Clone)]
pub struct ContainerBuilder {
    pub(crate) config: Config,
    /// What the caller set, which an image's defaults do not override.
    pub(crate) explicit: crate::image::Explicit,
}

impl ContainerBuilder {
    pub(crate) fn new(id: &str) -> ContainerBuilder {
        ContainerBuilder {
            config: Config {
                id: id.to_string(),
                rootfs: Rootfs::Host,
                readonly_rootfs: false,
                no_pivot: false,
                pass_fds: Vec::new(),
                args: vec!["sh".into()],
                env: vec![
                    (
                        "PATH".into(),
                        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                    ),
                    ("TERM".into(), "xterm".into()),
                ],
                cwd: "/".into(),
                uid: 0,
                gid: 0,
                groups: Vec::new(),
                hostname: None,
                namespaces: Namespaces::PID
                    | Namespaces::MNT
                    | Namespaces::IPC
                    | Namespaces::UTS
                    | Namespaces::NET
                    | Namespaces::CGROUP,
                uid_map: None,
                gid_map: None,
                mounts: Vec::new(),
                masked_paths: DEFAULT_MASKED_PATHS.iter().map(PathBuf::from).collect(),
                readonly_paths: DEFAULT_READONLY_PATHS.iter().map(PathBuf::from).collect(),
                capabilities: Capabilities::docker_default(),
                ambient: Capabilities::empty(),
                rlimits: vec![Rlimit {
                    resource: libc::RLIMIT_NOFILE,
                    soft: 1024,
                    hard: 1024,
                }],
                no_new_privs: true,
                seccomp: None,
                seccomp_program: Vec::new(),
                oom_score_adj: None,
                sysctls: Vec::new(),
                init: false,
                runtime_root: PathBuf::from("/run/hull"),
                cgroup_parent: Some("hull".into()),
                cgroup_path: None,
                cgroup_controllers: None,
                resources: None,
                terminal: false,
                mount_cgroups: true,
                persist: false,
                network: NetworkMode::None,
                image: None,
                ports: Vec::new(),
            },
            explicit: Default::default(),
        }
    }

    /// The root file system (default: [`Rootfs::Host`]).
    pub fn rootfs(mut self, rootfs: Rootfs) -> Self {
        self.config.rootfs = rootfs;
        self.config.image = None;
        self
    }

    /// Mounts the root file system read-only.
    pub fn readonly_rootfs(mut self, yes: bool) -> Self {
        self.config.readonly_rootfs = yes;
        self
    }

    /// Enters the root by moving its mount onto `/` and chroot instead of
    /// pivot_root, for hosts whose own root cannot be pivoted (an
    /// initramfs); runc's `--no-pivot`. Weaker: the old root stays
    /// underneath, and a process with CAP_SYS_CHROOT may reach it. Default:
    /// no.
    pub fn no_pivot(mut self, yes: bool) -> Self {
        self.config.no_pivot = yes;
        self
    }

    /// Fds the process gets as 3, 4, ... in order (runc's
    /// `--preserve-fds`, socket activation); no other fd of the caller
    /// reaches the container.
    pub fn pass_fds(mut self, fds: impl IntoIterator<Item = std::os::fd::OwnedFd>) -> Self {
        self.config
            .pass_fds
            .extend(fds.into_iter().map(std::sync::Arc::new));
        self
    }

    /// The program and its arguments (found in the container's `PATH`).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.args = args.into_iter().map(Into::into).collect();
        self.explicit.args = true;
        self
    }

    /// Sets an environment variable (replacing one of the same name).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.explicit.env.push(key.clone());
        self.config.env.retain(|(k, _)| *k != key);
        self.config.env.push((key, value.into()));
        self
    }

    /// The working directory inside the container (absolute).
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.cwd = dir.into();
        self.explicit.cwd = true;
        self
    }

    /// The user and group the process runs as (ids inside the container).
    pub fn user(mut self, uid: u32, gid: u32) -> Self {
        self.config.uid = uid;
        self.config.gid = gid;
        self.explicit.user = true;
        self
    }

    /// Supplementary groups.
    pub fn groups(mut self, groups: impl IntoIterator<Item = u32>) -> Self {
        self.config.groups = groups.into_iter().collect();
        self
    }

    /// The hostname (default: the container id, cut to 64 bytes).
    pub fn hostname(mut self, name: impl Into<String>) -> Self {
        self.config.hostname = Some(name.into());
        self
    }

    /// The namespaces to create (must include mount and PID).
    pub fn namespaces(mut self, ns: Namespaces) -> Self {
        self.config.namespaces = ns;
        self
    }

    /// A rootless container: a new user namespace with these maps.
    pub fn id_maps(mut self, uid_map: IdMap, gid_map: IdMap) -> Self {
        self.config.namespaces |= Namespaces::USER;
        self.config.uid_map = Some(uid_map);
        self.config.gid_map = Some(gid_map);
        self
    }

    /// Adds a mount.
    pub fn mount(mut self, m: Mount) -> Self {
        self.config.mounts.push(m);
        self
    }

    /// Replaces the masked paths.
    pub fn masked_paths<I: IntoIterator<Item = P>, P: Into<PathBuf>>(mut self, paths: I) -> Self {
        self.config.masked_paths = paths.into_iter().map(Into::into).collect();
        self
    }

    /// Replaces the read-only paths.
    pub fn readonly_paths<I: IntoIterator<Item = P>, P: Into<PathBuf>>(mut self, paths: I) -> Self {
        self.config.readonly_paths = paths.into_iter().map(Into::into).collect();
        self
    }

    /// The capabilities (bounding, permitted and effective; inheritable and
    /// ambient stay empty).
    pub fn capabilities(mut self, caps: Capabilities) -> Self {
        self.config.capabilities = caps;
        self
    }

    /// Ambient capabilities: kept across execve by a non-root user. They
    /// must be in the capability set too, and are also made inheritable
    /// (which the kernel requires); empty by default.
    pub fn ambient_capabilities(mut self, caps: Capabilities) -> Self {
        self.config.ambient = caps;
        self
    }

    /// Adds one capability to the set.
    pub fn cap_add(mut self, cap: Capability) -> Self {
        self.config.capabilities = self.config.capabilities.with(cap);
        self
    }

    /// Removes one capability from the set.
    pub fn cap_drop(mut self, cap: Capability) -> Self {
        self.config.capabilities = self.config.capabilities.without(cap);
        self
    }

    /// Sets a resource limit (replacing one for the same resource).
    pub fn rlimit(mut self, resource: u32, soft: u64, hard: u64) -> Self {
        self.config.rlimits.retain(|r| r.resource != resource);
        self.config.rlimits.push(Rlimit {
            resource,
            soft,
            hard,
        });
        self
    }

    /// Whether execve may grant privileges (setuid binaries, file
    /// capabilities); default: no (no_new_privs set).
    pub fn no_new_privs(mut self, yes: bool) -> Self {
        self.config.no_new_privs = yes;
        self
    }

    /// A seccomp profile for the process, installed as the last step
    /// before it runs (or, without no_new_privs, before capabilities are
    /// dropped, since installing it then needs CAP_SYS_ADMIN); default:
    /// none. The profile must allow what runs after it: `execve`,
    /// `close_range`, `chdir`, `rt_sigaction`, `rt_sigprocmask`, and `read`
    /// and `openat` for the start gate.
    pub fn seccomp(mut self, profile: crate::seccomp::Seccomp) -> Self {
        self.config.seccomp = Some(profile);
        self
    }

    /// The process's oom_score_adj (-1000 to 1000).
    pub fn oom_score_adj(mut self, adj: i32) -> Self {
        self.config.oom_score_adj = Some(adj);
        self
    }

    /// Sets a namespaced sysctl, e.g. `net.ipv4.ip_forward`.
    pub fn sysctl(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.sysctls.push((key.into(), value.into()));
        self
    }

    /// Runs a minimal init as PID 1 that reaps zombies and forwards signals.
    pub fn init(mut self, yes: bool) -> Self {
        self.config.init = yes;
        self
    }

    /// Where runtime directories live (default `/run/hull`); each container
    /// gets `<root>/<id>`, removed on delete.
    pub fn runtime_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.runtime_root = dir.into();
        self
    }

    /// The cgroup the container's cgroup is made under (default `hull`):
    /// the container gets `<parent>/<id>` in every hierarchy, a path taken
    /// from each hierarchy's root, never from the caller's own cgroup.
    pub fn cgroup_parent(mut self, parent: impl Into<String>) -> Self {
        self.config.cgroup_parent = Some(parent.into());
        self
    }

    /// The container's cgroup path itself (instead of `<parent>/<id>`),
    /// from each hierarchy's root.
    pub fn cgroup_path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.config.cgroup_parent = Some(String::new());
        self.config.cgroup_path = Some(path);
        self
    }

    /// The controllers whose hierarchies get the container's cgroup
    /// (default: every one the host has, as runc does). Fewer hierarchies
    /// make creating and removing the cgroup cheaper on v1; pause needs the
    /// freezer, limits need their controllers.
    pub fn cgroup_controllers(
        mut self,
        controllers: impl IntoIterator<Item = hull_cgroup::Controller>,
    ) -> Self {
        self.config.cgroup_controllers = Some(controllers.into_iter().collect());
        self
    }

    /// Gives the process a new pseudo-terminal as stdin, stdout, stderr and
    /// controlling terminal; the caller gets the master side from
    /// [`Container::take_terminal`](crate::Container::take_terminal).
    pub fn terminal(mut self, yes: bool) -> Self {
        self.config.terminal = yes;
        self
    }

    /// Whether the container sees its cgroups, read-only, at
    /// /sys/fs/cgroup (default: yes, as runc's default config does).
    pub fn mount_cgroups(mut self, yes: bool) -> Self {
        self.config.mount_cgroups = yes;
        self
    }

    /// Keeps the container's state in a file in its runtime directory (and
    /// its start gate as a FIFO there), so that another process can
    /// [`Container::load`](crate::Container::load) it by id, start, signal,
    /// pause, exec into and delete it, even after this process is gone.
    pub fn persist(mut self, yes: bool) -> Self {
        self.config.persist = yes;
        self
    }

    /// The network (default [`NetworkMode::None`]). `Host` and `Join`
    /// take the network namespace out of [`namespaces`](Self::namespaces);
    /// `None` and `Bridge` put it in.
    pub fn network(mut self, network: NetworkMode) -> Self {
        match &network {
            NetworkMode::Host | NetworkMode::Join(_) => self.config.namespaces -= Namespaces::NET,
            NetworkMode::None | NetworkMode::Bridge { .. } => {
                self.config.namespaces |= Namespaces::NET
            }
        }
        self.config.network = network;
        self
    }

    /// No cgroup of its own: the container stays in the caller's cgroups
    /// (no resource limits, pause or cgroup statistics).
    pub fn no_cgroup(mut self) -> Self {
        self.config.cgroup_parent = None;
        self.config.cgroup_path = None;
        self
    }

    /// Resource limits, applied to the container's cgroup.
    pub fn resources(mut self, resources: hull_cgroup::Resources) -> Self {
        self.config.resources = Some(resources);
        self
    }

    /// The configuration as it stands, unvalidated (for a container loaded
    /// from the state store, whose configuration was validated when it was
    /// created).
    pub(crate) fn into_config_unchecked(self) -> Config {
        self.config
    }

    /// Validates and returns the configuration.
    ///
    /// # Errors
    /// [`Error::Invalid`] or [`Error::Path`] naming the field at fault.
    pub fn build(self) -> Result<Config> {
        let mut c = self.config;
        validate_id(&c.id)?;
        if let Some(profile) = &c.seccomp {
            c.seccomp_program = profile.compile()?;
        }
        if let Rootfs::Dir(dir) = &c.rootfs {
            let meta = std::fs::metadata(dir).map_err(|source| Error::Path {
                field: "rootfs",
                path: dir.clone(),
                source,
            })?;
            if !meta.is_dir() {
                return Err(invalid(
                    "rootfs",
                    format!("{} is not a directory", dir.display()),
                ));
            }
        }
        if let Rootfs::Overlay { lowers, upper } = &c.rootfs {
            if lowers.is_empty() {
                return Err(invalid(
                    "rootfs",
                    "an overlay needs at least one lower layer",
                ));
            }
            let dirs = lowers.iter().chain(upper.iter().flat_map(|(u, w)| [u, w]));
            for d in dirs {
                std::fs::metadata(d).map_err(|source| Error::Path {
                    field: "rootfs",
                    path: d.clone(),
                    source,
                })?;
            }
        }
        if c.resources.is_some() && c.cgroup_parent.is_none() {
            return Err(invalid(
                "resources",
                "resource limits need a cgroup (no_cgroup was set)",
            ));
        }
        for p in c.cgroup_parent.iter().chain(&c.cgroup_path) {
            if p.split('/').any(|part| part == "..") || p.contains('\0') {
                return Err(invalid(
                    "cgroup_parent",
                    format!("{p:?} must not contain '..'"),
                ));
            }
        }
        if c.args.is_empty() || c.args[0].is_empty() {
            return Err(invalid("args", "no program given"));
        }
        for a in &c.args {
            no_nul("args", a)?;
        }
        for (k, v) in &c.env {
            if k.is_empty() || k.contains('=') {
                return Err(invalid("env", format!("bad variable name {k:?}")));
            }
            no_nul("env", k)?;
            no_nul("env", v)?;
        }
        inside_path("cwd", &c.cwd)?;
        if !c.namespaces.contains(Namespaces::MNT | Namespaces::PID) {
            return Err(invalid(
                "namespaces",
                "a container needs new mount and PID namespaces",
            ));
        }
        if c.namespaces.contains(Namespaces::USER) != c.uid_map.is_some() {
            return Err(invalid(
                "namespaces",
                "a user namespace needs id maps and id maps need a user namespace",
            ));
        }
        if let Some(h) = &c.hostname {
            if h.len() > 64 || h.is_empty() {
                return Err(invalid("hostname", format!("{h:?} must be 1 to 64 bytes")));
            }
            if !c.namespaces.contains(Namespaces::UTS) {
                return Err(invalid("hostname", "needs a UTS namespace"));
            }
        }
        for m in &c.mounts {
            inside_path("mounts", m.destination())?;
            if let Mount::Bind { source, .. } = m {
                std::fs::metadata(source).map_err(|source_err| Error::Path {
                    field: "mounts",
                    path: source.clone(),
                    source: source_err,
                })?;
            }
        }
        for p in c.masked_paths.iter().chain(&c.readonly_paths) {
            inside_path("masked_paths", p)?;
        }
        match &c.network {
            NetworkMode::Join(p) => {
                std::fs::metadata(p).map_err(|source| Error::Path {
                    field: "network",
                    path: p.clone(),
                    source,
                })?;
                if c.namespaces.contains(Namespaces::NET) {
                    return Err(invalid(
                        "network",
                        "joining a network namespace and creating one",
                    ));
                }
            }
            // `None` without a network namespace (taken out through
            // `namespaces`) is the host's network, as `Host` is.
            NetworkMode::Bridge { .. } if !c.namespaces.contains(Namespaces::NET) => {
                return Err(invalid(
                    "network",
                    "a bridge network needs a network namespace",
                ));
            }
            _ => {}
        }
        if let Some(adj) = c.oom_score_adj {
            if !(-1000..=1000).contains(&adj) {
                return Err(invalid(
                    "oom_score_adj",
                    format!("{adj} is outside -1000..=1000"),
                ));
            }
        }
        for (k, _) in &c.sysctls {
            let ok = !k.is_empty()
                && k.split('.').all(|p| {
                    !p.is_empty()
                        && p.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                });
            if !ok {
                return Err(invalid("sysctl", format!("bad sysctl name {k:?}")));
            }
            if !(k.starts_with("net.")
                || k.starts_with("kernel.msg")
                || k.starts_with("kernel.sem")
                || k.starts_with("kernel.shm")
                || k.starts_with("fs.mqueue.")
                || k == "kernel.domainname"
                || k == "kernel.hostname")
            {
                return Err(invalid(
                    "sysctl",
                    format!("{k} is not namespaced: it would change the host"),
                ));
            }
            if k.starts_with("net.") && !c.namespaces.contains(Namespaces::NET) {
                return Err(invalid("sysctl", format!("{k} needs a network namespace")));
            }
        }
        if c.ambient.bits() & !c.capabilities.bits() != 0 {
            return Err(invalid(
                "ambient_capabilities",
                "must be a subset of the capability set",
            ));
        }
        for r in &c.rlimits {
            if r.soft > r.hard {
                return Err(invalid(
                    "rlimit",
                    format!(
                        "resource {}: soft {} above hard {}",
                        r.resource, r.soft, r.hard
                    ),
                ));
            }
        }
        Ok(c)
    }
}

fn invalid(field: &'static str, problem: impl Into<String>) -> Error {
    Error::Invalid {
        field,
        problem: problem.into(),
    }
}

fn no_nul(field: &'static str, s: &str) -> Result<()> {
    if s.contains('\0') {
        return Err(invalid(field, format!("{s:?} contains a NUL byte")));
    }
    Ok(())
}

/// Container ids are what runc accepts: letters, digits, `_`, `+`, `-`, `.`,
/// at most 1024 bytes, and not `.` or `..`.
fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "id",
            format!("{id:?}: use letters, digits, '_', '+', '-' and '.' only"),
        ))
    }
}

/// A path inside the container: absolute, no `..`, no NUL.
fn inside_path(field: &'static str, p: &Path) -> Result<()> {
    if !p.is_absolute() {
        return Err(invalid(field, format!("{} is not absolute", p.display())));
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(invalid(field, format!("{} contains '..'", p.display())));
    }
    no_nul(field, &p.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        for bad in ["", "a/b", "..", ".", "a b", "x\0"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "web-1", "x.y_z+1"] {
            assert!(validate_id(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn builder_names_the_bad_field() {
        let field = |b: ContainerBuilder| match b.build() {
            Err(Error::Invalid { field, .. }) | Err(Error::Path { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let b = || ContainerBuilder::new("t");
        assert_eq!(field(ContainerBuilder::new("a/b")), "id");
        assert_eq!(
            field(b().rootfs(Rootfs::Dir("/nonexistent-rootfs".into()))),
            "rootfs"
        );
        assert_eq!(field(b().args(Vec::<String>::new())), "args");
        assert_eq!(field(b().cwd("relative")), "cwd");
        assert_eq!(
            field(b().mount(Mount::bind("/nonexistent-src", "/x"))),
            "mounts"
        );
        assert_eq!(field(b().mount(Mount::bind("/tmp", "/../etc"))), "mounts");
        assert_eq!(field(b().namespaces(Namespaces::PID)), "namespaces");
        assert_eq!(field(b().sysctl("kernel.panic", "1")), "sysctl");
        assert_eq!(field(b().oom_score_adj(5000)), "oom_score_adj");
        assert_eq!(field(b().hostname("x".repeat(65))), "hostname");
        assert!(b().build().is_ok());
    }
}
