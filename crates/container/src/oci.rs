//! The adapter from an OCI runtime bundle (`config.json` as
//! [`oci_spec::runtime::Spec`] plus the bundle directory) to a
//! [`ContainerBuilder`].
//!
//! Every field of `runc spec`'s default configuration is understood. A field
//! this crate cannot honour is an [`Error::Oci`] naming it, never silently
//! dropped: joining existing namespaces by path, seccomp notification, hooks (the CLI's
//! job), AppArmor/SELinux labels, and mounts of other types than bind and
//! tmpfs beyond the default ones.

use std::path::Path;

use hull_cgroup::{DeviceKind, DeviceRule, Limit, Resources};
use hull_ns::{IdMap, IdRange, Namespaces};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::caps::{Capabilities, Capability};
use crate::config::{ContainerBuilder, Mount, Rlimit, Rootfs};
use crate::{Container, Error, Result};

fn oci(field: impl Into<String>, problem: impl Into<String>) -> Error {
    Error::Oci {
        field: field.into(),
        problem: problem.into(),
    }
}

/// The serde name of an enum value (`"CAP_CHOWN"`, `"RLIMIT_NOFILE"`).
fn serde_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The mounts every container gets from this crate's defaults; entries for
/// them in a spec are recognised and not mounted twice.
const DEFAULT_DESTINATIONS: &[&str] = &[
    "/proc",
    "/dev",
    "/dev/pts",
    "/dev/shm",
    "/dev/mqueue",
    "/sys",
    "/sys/fs/cgroup",
];

const RLIMITS: &[(&str, u32)] = &[
    ("RLIMIT_CPU", libc::RLIMIT_CPU),
    ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
    ("RLIMIT_DATA", libc::RLIMIT_DATA),
    ("RLIMIT_STACK", libc::RLIMIT_STACK),
    ("RLIMIT_CORE", libc::RLIMIT_CORE),
    ("RLIMIT_RSS", libc::RLIMIT_RSS),
    ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
    ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
    ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
    ("RLIMIT_AS", libc::RLIMIT_AS),
    ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
    ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
    ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
    ("RLIMIT_NICE", libc::RLIMIT_NICE),
    ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
    ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
];

impl Capabilities {
    /// The set an OCI capability list names (`process.capabilities.*`).
    ///
    /// # Errors
    /// [`Error::Oci`] naming `field` for a capability this crate does not
    /// know.
    pub fn from_oci<'a>(
        field: &str,
        names: impl IntoIterator<Item = &'a oci_spec::runtime::Capability>,
    ) -> Result<Capabilities> {
        let mut set = Capabilities::empty();
        for c in names {
            let name = serde_name(c);
            let cap: Capability = name
                .parse()
                .map_err(|_| oci(field, format!("unknown capability {name}")))?;
            set = set.with(cap);
        }
        Ok(set)
    }
}

impl Rlimit {
    /// The `RLIMIT_*` resource of an OCI rlimit type (`process.rlimits[].type`).
    pub fn resource_of(typ: oci_spec::runtime::PosixRlimitType) -> Option<u32> {
        let name = serde_name(&typ);
        RLIMITS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }
}

impl Container {
    /// A builder configured from an OCI runtime spec and its bundle
    /// directory (the root path is relative to it).
    ///
    /// # Errors
    /// [`Error::Oci`] naming the first field that cannot be honoured.
    pub fn from_oci(id: &str, spec: &Spec, bundle: &Path) -> Result<ContainerBuilder> {
        from_oci(id, spec, bundle)
    }
}

fn from_oci(id: &str, spec: &Spec, bundle: &Path) -> Result<ContainerBuilder> {
    let mut b = Container::builder(id);
    let root = spec.root().as_ref().ok_or_else(|| oci("root", "missing"))?;
    let root_path = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    b = b
        .rootfs(Rootfs::Dir(root_path))
        .readonly_rootfs(root.readonly().unwrap_or(false));
    if let Some(h) = spec.hostname() {
        b = b.hostname(h.clone());
    }
    if spec.domainname().is_some() {
        return Err(oci("domainname", "not supported yet"));
    }
    if spec.hooks().is_some() {
        return Err(oci("hooks", "run by the runtime binary, not the library"));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| oci("process", "missing"))?;
    b = process_fields(b, process)?;
    let mut ns = Namespaces::empty();
    if let Some(linux) = spec.linux() {
        for (i, n) in linux.namespaces().iter().flatten().enumerate() {
            if n.path().is_some() {
                return Err(oci(
                    format!("linux.namespaces[{i}].path"),
                    "joining an existing namespace is not supported yet",
                ));
            }
            ns |= match n.typ() {
                LinuxNamespaceType::Pid => Namespaces::PID,
                LinuxNamespaceType::Network => Namespaces::NET,
                LinuxNamespaceType::Ipc => Namespaces::IPC,
                LinuxNamespaceType::Uts => Namespaces::UTS,
                LinuxNamespaceType::Mount => Namespaces::MNT,
                LinuxNamespaceType::Cgroup => Namespaces::CGROUP,
                LinuxNamespaceType::User => Namespaces::USER,
                LinuxNamespaceType::Time => Namespaces::TIME,
            };
        }
        b = b.namespaces(ns);
        if let (Some(u), Some(g)) = (linux.uid_mappings(), linux.gid_mappings()) {
            let map = |v: &[oci_spec::runtime::LinuxIdMapping], f: &str| {
                IdMap::new(v.iter().map(|m| IdRange {
                    inside: m.container_id(),
                    outside: m.host_id(),
                    count: m.size(),
                }))
                .map_err(|e| oci(f, e.to_string()))
            };
            b = b.id_maps(map(u, "linux.uidMappings")?, map(g, "linux.gidMappings")?);
        }
        if let Some(m) = linux.masked_paths() {
            b = b.masked_paths(m.iter().map(String::as_str));
        }
        if let Some(r) = linux.readonly_paths() {
            b = b.readonly_paths(r.iter().map(String::as_str));
        }
        let mut sysctls: Vec<(&String, &String)> = linux.sysctl().iter().flatten().collect();
        sysctls.sort();
        for (k, v) in sysctls {
            b = b.sysctl(k.clone(), v.clone());
        }
        if let Some(profile) = linux.seccomp() {
            b = b.seccomp(crate::seccomp::Seccomp::from_oci(profile)?);
        }
        if let Some(p) = linux.cgroups_path() {
            b = b.cgroup_path(p.to_string_lossy().trim_start_matches('/'));
        }
        if let Some(r) = linux.resources() {
            b = b.resources(resources(r)?);
        }
        if linux.devices().as_ref().is_some_and(|d| !d.is_empty()) {
            return Err(oci(
                "linux.devices",
                "extra device nodes are not supported yet",
            ));
        }
    }
    b = mounts(b, spec)?;
    Ok(b)
}

fn process_fields(
    mut b: ContainerBuilder,
    p: &oci_spec::runtime::Process,
) -> Result<ContainerBuilder> {
    if let Some(args) = p.args() {
        b = b.args(args.iter().cloned());
    }
    // The spec's environment is the whole environment (not added to the
    // builder's defaults).
    b.config.env.clear();
    for (i, e) in p.env().iter().flatten().enumerate() {
        let (k, v) = e.split_once('=').ok_or_else(|| {
            oci(
                format!("process.env[{i}]"),
                format!("{e:?} is not KEY=VALUE"),
            )
        })?;
        b = b.env(k, v);
    }
    b = b
        .cwd(p.cwd().clone())
        .user(p.user().uid(), p.user().gid())
        .groups(p.user().additional_gids().iter().flatten().copied())
        .terminal(p.terminal().unwrap_or(false))
        .no_new_privs(p.no_new_privileges().unwrap_or(false));
    if let Some(caps) = p.capabilities() {
        // The bounding set is applied as bounding, effective and permitted;
        // ambient (with the inheritable bits it needs) as given.
        let bounding = Capabilities::from_oci(
            "process.capabilities.bounding",
            caps.bounding().iter().flatten(),
        )?;
        let ambient = Capabilities::from_oci(
            "process.capabilities.ambient",
            caps.ambient().iter().flatten(),
        )?;
        if ambient.bits() & !bounding.bits() != 0 {
            return Err(oci(
                "process.capabilities.ambient",
                "not a subset of bounding",
            ));
        }
        b = b.capabilities(bounding).ambient_capabilities(ambient);
    }
    for (i, r) in p.rlimits().iter().flatten().enumerate() {
        let res = Rlimit::resource_of(r.typ()).ok_or_else(|| {
            oci(
                format!("process.rlimits[{i}].type"),
                format!("unknown {}", serde_name(&r.typ())),
            )
        })?;
        b = b.rlimit(res, r.soft(), r.hard());
    }
    if let Some(adj) = p.oom_score_adj() {
        b = b.oom_score_adj(adj);
    }
    if p.apparmor_profile().is_some() || p.selinux_label().is_some() {
        return Err(oci("process.apparmorProfile", "no LSM is supported"));
    }
    Ok(b)
}

fn mounts(mut b: ContainerBuilder, spec: &Spec) -> Result<ContainerBuilder> {
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let dest = m.destination();
        let opts: Vec<&str> = m.options().iter().flatten().map(String::as_str).collect();
        let typ = m.typ().as_deref().unwrap_or("");
        let is_bind = typ == "bind" || opts.iter().any(|o| *o == "bind" || *o == "rbind");
        if !is_bind && DEFAULT_DESTINATIONS.iter().any(|d| Path::new(d) == dest) {
            if dest == Path::new("/sys/fs/cgroup") {
                b = b.mount_cgroups(true);
            }
            continue;
        }
        if is_bind {
            let source = m
                .source()
                .clone()
                .ok_or_else(|| oci(format!("mounts[{i}].source"), "a bind mount needs a source"))?;
            b = b.mount(Mount::Bind {
                source,
                destination: dest.clone(),
                readonly: opts.contains(&"ro"),
            });
        } else if typ == "tmpfs" {
            let size = opts
                .iter()
                .find_map(|o| o.strip_prefix("size="))
                .map(parse_size)
                .transpose()
                .map_err(|p| oci(format!("mounts[{i}].options"), p))?
                .unwrap_or(0);
            b = b.mount(Mount::Tmpfs {
                destination: dest.clone(),
                size,
            });
        } else {
            return Err(oci(
                format!("mounts[{i}].type"),
                format!("{typ:?} mounts are not supported"),
            ));
        }
    }
    Ok(b)
}

fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let (num, shift) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 10),
        Some('m' | 'M') => (&s[..s.len() - 1], 20),
        Some('g' | 'G') => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| format!("bad size {s:?}"))
}

fn resources(r: &oci_spec::runtime::LinuxResources) -> Result<Resources> {
    let mut b = Resources::builder();
    if let Some(m) = r.memory() {
        if let Some(l) = m.limit() {
            b = b.memory_limit_opt(limit(l));
        }
        if let Some(l) = m.reservation() {
            b = b.memory_low(limit(l));
        }
        if let Some(l) = m.swap() {
            b = b.memory_swap(limit(l));
        }
        if let Some(s) = m.swappiness() {
            b = b.swappiness(s);
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(shares) = c.shares() {
            b = b.cpu_weight(hull_cgroup::CpuWeight::Shares(shares));
        }
        if let (Some(q), p) = (c.quota(), c.period()) {
            let period = p.unwrap_or(100_000);
            b = match u64::try_from(q) {
                Ok(q) => b.cpu_quota(q, period),
                Err(_) => b.cpu_unlimited(),
            };
        }
        if let Some(cpus) = c.cpus() {
            b = b
                .cpus(cpus)
                .map_err(|e| oci("linux.resources.cpu.cpus", e.to_string()))?;
        }
        if let Some(mems) = c.mems() {
            b = b
                .mems(mems)
                .map_err(|e| oci("linux.resources.cpu.mems", e.to_string()))?;
        }
    }
    if let Some(p) = r.pids() {
        b = b.pids_max(limit(p.limit()));
    }
    for (i, d) in r.devices().iter().flatten().enumerate() {
        let field = || format!("linux.resources.devices[{i}]");
        let kind = match d.typ().map(|t| serde_name(&t)).as_deref() {
            None | Some("a") => DeviceKind::All,
            Some("c") | Some("u") => DeviceKind::Char,
            Some("b") => DeviceKind::Block,
            Some(other) => return Err(oci(field(), format!("device type {other:?}"))),
        };
        let access = d.access().clone().unwrap_or_else(|| "rwm".into());
        let num = |v: Option<i64>| -> Result<Option<u32>> {
            match v {
                None | Some(-1) => Ok(None),
                Some(n) => u32::try_from(n)
                    .map(Some)
                    .map_err(|_| oci(field(), format!("device number {n}"))),
            }
        };
        b = b.device(DeviceRule {
            allow: d.allow(),
            kind,
            major: num(d.major())?,
            minor: num(d.minor())?,
            read: access.contains('r'),
            write: access.contains('w'),
            mknod: access.contains('m'),
        });
    }
    // As runc does, the standard devices stay usable whatever the spec's
    // rules (its default denies everything).
    if r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        let allow = |major: u32, minor: Option<u32>| DeviceRule {
            allow: true,
            kind: DeviceKind::Char,
            major: Some(major),
            minor,
            read: true,
            write: true,
            mknod: true,
        };
        for (major, minor) in [
            (1, Some(3)),
            (1, Some(5)),
            (1, Some(7)),
            (1, Some(8)),
            (1, Some(9)),
            (5, Some(0)),
            (5, Some(2)),
            (136, None),
        ] {
            b = b.device(allow(major, minor));
        }
    }
    if r.block_io().is_some() || r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()) {
        return Err(oci(
            "linux.resources",
            "blockIO and hugepageLimits are not mapped yet",
        ));
    }
    b.build().map_err(|e| oci("linux.resources", e.to_string()))
}

fn limit(v: i64) -> Limit {
    u64::try_from(v).map_or(Limit::Max, Limit::Value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `runc spec`'s default config.json.
    const RUNC_SPEC: &str = r#"{
	"ociVersion": "1.0.2-dev",
	"process": {
		"terminal": true,
		"user": {"uid": 0, "gid": 0},
		"args": ["sh"],
		"env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
		"cwd": "/",
		"capabilities": {
			"bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
			"effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
			"permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
			"ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
		},
		"rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
		"noNewPrivileges": true
	},
	"root": {"path": "rootfs", "readonly": true},
	"hostname": "runc",
	"mounts": [
		{"destination": "/proc", "type": "proc", "source": "proc"},
		{"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
		{"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
		{"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
		{"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
		{"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
		{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
	],
	"linux": {
		"resources": {"devices": [{"allow": false, "access": "rwm"}]},
		"namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
		"maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
		"readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
	}
}"#;

    #[test]
    fn runc_default_spec_maps_field_by_field() {
        let spec: Spec = serde_json::from_str(RUNC_SPEC).unwrap();
        let bundle = std::env::temp_dir();
        let cfg = from_oci("x", &spec, &bundle).unwrap().build();
        // rootfs does not exist in the temp dir: the error names the field.
        match cfg {
            Err(Error::Path {
                field: "rootfs",
                path,
                ..
            }) => assert_eq!(path, bundle.join("rootfs")),
            Ok(c) => {
                assert_eq!(
                    c.namespaces(),
                    Namespaces::PID
                        | Namespaces::NET
                        | Namespaces::IPC
                        | Namespaces::UTS
                        | Namespaces::MNT
                        | Namespaces::CGROUP
                );
            }
            Err(other) => panic!("{other:?}"),
        }
        let b = from_oci("x", &spec, &bundle)
            .unwrap()
            .rootfs(Rootfs::Host)
            .build()
            .unwrap();
        assert!(b.terminal);
        assert!(b.readonly_rootfs);
        assert!(b.no_new_privs);
        assert_eq!(b.hostname.as_deref(), Some("runc"));
        assert_eq!(b.args, ["sh"]);
        assert_eq!(b.capabilities.bits(), (1 << 29) | (1 << 5) | (1 << 10));
        assert_eq!(b.ambient, b.capabilities);
        assert_eq!(b.masked_paths.len(), 10);
        assert_eq!(b.readonly_paths.len(), 5);
        assert!(b.mounts.is_empty(), "default mounts are not added twice");
        assert!(b.mount_cgroups);
        assert!(b.resources.is_some());
    }

    #[test]
    fn the_specs_env_replaces_the_defaults() {
        let spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.2","root":{"path":"/"},"process":{"user":{"uid":0,"gid":0},"cwd":"/","args":["sh"],
                "env":["A=1"]}}"#,
        )
        .unwrap();
        let c = from_oci("x", &spec, Path::new("/"))
            .unwrap()
            .rootfs(Rootfs::Host)
            .build()
            .unwrap();
        assert_eq!(c.env, [("A".to_string(), "1".to_string())]);
    }

    #[test]
    fn unsupported_fields_are_named() {
        let spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.2","root":{"path":"/"},"process":{"user":{"uid":0,"gid":0},"cwd":"/","args":["sh"]},
                "mounts":[{"destination":"/x","type":"nfs","source":"h:/e"}]}"#,
        )
        .unwrap();
        let err = from_oci("x", &spec, Path::new("/")).unwrap_err();
        assert!(err.to_string().contains("mounts[0].type"), "{err}");
        let spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.2","root":{"path":"/"},"process":{"user":{"uid":0,"gid":0},"cwd":"/","args":["sh"]},
                "linux":{"namespaces":[{"type":"network","path":"/run/netns/x"}]}}"#,
        )
        .unwrap();
        let err = from_oci("x", &spec, Path::new("/")).unwrap_err();
        assert!(
            err.to_string().contains("linux.namespaces[0].path"),
            "{err}"
        );
    }
}
