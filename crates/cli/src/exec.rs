//! `hull exec`: another process in a running container, described by a
//! `--process` JSON file or by the container's own process with the
//! command line's changes (runc's flags).

use std::path::{Path, PathBuf};

use hull_container::oci_spec::runtime::Process;
use hull_container::{Capabilities, Capability, Rlimit, Status, Stdio};
use hull_ns::ChildOp;

use crate::args::{self, bool_flag, val};
use crate::commands::{
    forward_signals, load, one_id_or_more, read_bundle, read_meta, write_pid_file,
};
use crate::{Error, Global, console};

/// The process to run: from `--process`, or the container's process
/// changed by the flags.
fn process(g: &Global, p: &args::Parsed, id: &str, argv: &[String]) -> Result<Process, Error> {
    if let Some(path) = p.get("process") {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            action: "read",
            path: path.into(),
            source,
        })?;
        return serde_json::from_str(&text).map_err(|e| Error::Config {
            path: path.into(),
            problem: e.to_string(),
        });
    }
    if argv.is_empty() {
        return Err(Error::Usage(
            "exec: no command given (args or --process)".into(),
        ));
    }
    let meta = read_meta(g, id);
    let bundle = PathBuf::from(meta["bundle"].as_str().unwrap_or(""));
    let (spec, _) = read_bundle(&bundle)?;
    let mut proc = spec.process().clone().unwrap_or_default();
    proc.set_args(Some(argv.to_vec()));
    proc.set_terminal(Some(p.is("tty")));
    let mut env = proc.env().clone().unwrap_or_default();
    for e in p.all("env") {
        let key = e.split_once('=').map_or(e, |(k, _)| k);
        env.retain(|x| x.split_once('=').map_or(x.as_str(), |(k, _)| k) != key);
        env.push(e.to_string());
    }
    proc.set_env(Some(env));
    if let Some(cwd) = p.get("cwd") {
        proc.set_cwd(cwd.into());
    }
    if let Some(u) = p.get("user") {
        let bad = || Error::Usage(format!("--user {u:?}: expected UID[:GID]"));
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?),
            None => (u.parse().map_err(|_| bad())?, 0),
        };
        let mut user = proc.user().clone();
        user.set_uid(uid);
        user.set_gid(gid);
        proc.set_user(user);
    }
    if p.is("no-new-privs") {
        proc.set_no_new_privileges(Some(true));
    }
    Ok(proc)
}

/// The namespaces to join: those the container's process has apart from
/// this process's (a joined network namespace included), or `saved`
/// where they cannot be read.
fn namespaces_of(pid: i32, saved: hull_ns::Namespaces) -> hull_ns::Namespaces {
    use hull_ns::{Namespaces, NsFd};
    let mut ns = Namespaces::empty();
    for kind in [
        Namespaces::USER,
        Namespaces::MNT,
        Namespaces::UTS,
        Namespaces::IPC,
        Namespaces::NET,
        Namespaces::PID,
        Namespaces::CGROUP,
        Namespaces::TIME,
    ] {
        match (NsFd::from_pid(pid, kind), NsFd::current(kind)) {
            (Ok(theirs), Ok(ours)) if theirs != ours => ns |= kind,
            (Ok(_), Ok(_)) => {}
            _ => return saved,
        }
    }
    ns
}

/// Runs `hull exec`; returns the process's exit code (0 with `--detach`).
pub fn exec(g: &Global, rest: &[String]) -> Result<i32, Error> {
    let (p, _) = args::parse(
        rest,
        &[
            val("process", Some('p')),
            bool_flag("tty", Some('t')),
            val("console-socket", None),
            bool_flag("detach", Some('d')),
            val("pid-file", None),
            val("env", Some('e')),
            val("cwd", None),
            val("user", Some('u')),
            val("additional-gids", Some('g')),
            val("cap", Some('c')),
            bool_flag("no-new-privs", None),
            val("preserve-fds", None),
            val("process-label", None),
            val("apparmor", None),
            bool_flag("ignore-paused", None),
            val("cgroup", None),
        ],
        false,
    )?;
    let (id, argv) = one_id_or_more(&p, "exec")?;
    let preserve_fds = crate::commands::preserved_fds(&p)?;
    let mut c = load(g, id)?;
    let r = exec_in(g, &p, &mut c, id, argv, preserve_fds);
    crate::commands::release(c);
    r
}

fn exec_in(
    g: &Global,
    p: &args::Parsed,
    c: &mut hull_container::Container,
    id: &str,
    argv: &[String],
    preserve_fds: Vec<std::os::fd::OwnedFd>,
) -> Result<i32, Error> {
    match c.status() {
        Status::Running => {}
        Status::Paused => return Err(Error::State("cannot exec in a paused container".into())),
        _ => return Err(Error::State("cannot exec in a stopped container".into())),
    }
    let pid = c.pid().unwrap_or(0);
    let proc = process(g, p, id, argv)?;
    let mut proc = proc;
    let meta = read_meta(g, id);
    crate::commands::add_home(
        &mut proc,
        Path::new(meta["rootfs"].as_str().unwrap_or("/nonexistent")),
    );
    let args = proc.args().clone().unwrap_or_default();
    let Some(program) = args.first() else {
        return Err(Error::Usage("exec: process.args is empty".into()));
    };
    let terminal = proc.terminal().unwrap_or(false);
    let socket = p.get("console-socket").map(PathBuf::from);
    let detach = p.is("detach");
    if terminal && socket.is_none() && detach {
        return Err(Error::Usage(
            "cannot allocate tty if hull will detach without setting console socket".into(),
        ));
    }
    let (bounding, effective, permitted, inheritable, ambient) = match proc.capabilities() {
        Some(cs) => {
            let bits = |set: &str, names: &Option<_>| {
                let field = format!("process.capabilities.{set}");
                Capabilities::from_oci(&field, names.iter().flatten()).map(|c| c.bits())
            };
            (
                bits("bounding", cs.bounding())?,
                bits("effective", cs.effective())?,
                bits("permitted", cs.permitted())?,
                bits("inheritable", cs.inheritable())?,
                bits("ambient", cs.ambient())?,
            )
        }
        None => (0, 0, 0, 0, 0),
    };
    let mut extra_caps = 0u64;
    for name in p.all("cap") {
        let cap: Capability = name
            .parse()
            .map_err(|_| Error::Usage(format!("--cap {name}: unknown capability")))?;
        extra_caps |= Capabilities::empty().with(cap).bits();
    }
    let user = proc.user();
    let mut groups: Vec<u32> = user.additional_gids().clone().unwrap_or_default();
    for g in p.all("additional-gids") {
        groups.push(
            g.parse()
                .map_err(|_| Error::Usage(format!("--additional-gids {g:?}")))?,
        );
    }
    let mut cmd = hull_ns::Command::new(program);
    cmd.args(&args[1..])
        .env_clear()
        .join_process(pid, namespaces_of(pid, c.config().namespaces()))
        .non_dumpable(true)
        .current_dir(proc.cwd())
        .pass_fds(preserve_fds);
    if terminal {
        cmd.child_ops([ChildOp::Setsid, ChildOp::SetControllingTerminal]);
    }
    for r in proc.rlimits().iter().flatten() {
        if let Some(resource) = Rlimit::resource_of(r.typ()) {
            cmd.child_ops([ChildOp::SetRlimit {
                resource,
                soft: r.soft(),
                hard: r.hard(),
            }]);
        }
    }
    // The container's seccomp filter, last (or, without no_new_privs,
    // first: installing it then needs CAP_SYS_ADMIN), as for its process.
    let no_new_privs = proc.no_new_privileges().unwrap_or(false);
    let seccomp = match serde_json::from_value::<
        Option<hull_container::oci_spec::runtime::LinuxSeccomp>,
    >(meta["seccomp"].clone())
    {
        Ok(Some(profile)) => {
            let s = hull_container::seccomp::Seccomp::from_oci(&profile)?;
            Some(ChildOp::Seccomp {
                program: s.compile()?,
                flags: s.flags,
            })
        }
        Ok(None) => None,
        Err(e) => {
            return Err(Error::Config {
                path: "linux.seccomp".into(),
                problem: e.to_string(),
            });
        }
    };
    if !no_new_privs {
        cmd.child_ops(seccomp.clone());
    }
    cmd.child_ops([
        ChildOp::BoundingSet {
            keep: bounding | extra_caps,
        },
        ChildOp::SetIds {
            uid: user.uid(),
            gid: user.gid(),
            groups,
        },
        ChildOp::Capabilities {
            effective: effective | extra_caps,
            permitted: permitted | extra_caps,
            inheritable,
            ambient: ambient & (permitted | extra_caps) & inheritable,
        },
    ]);
    if no_new_privs {
        cmd.child_ops([ChildOp::NoNewPrivs]);
        cmd.child_ops(seccomp);
    }
    // Into the container's cgroups, as the library places its processes.
    c.place_in_cgroup(&mut cmd)?;
    for e in proc.env().iter().flatten() {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut master = None;
    if terminal {
        let root = PathBuf::from(format!("/proc/{pid}/root"));
        let (m, s) = console::open_pty(Some(&root)).map_err(|source| Error::Io {
            action: "open a terminal in",
            path: root.join("dev/ptmx"),
            source,
        })?;
        let dup = |fd: &std::os::fd::OwnedFd| {
            fd.try_clone().map_err(|source| Error::Io {
                action: "duplicate terminal",
                path: "/dev/ptmx".into(),
                source,
            })
        };
        cmd.stdin(Stdio::Fd(dup(&s)?))
            .stdout(Stdio::Fd(dup(&s)?))
            .stderr(Stdio::Fd(s));
        master = Some(m);
    } else {
        cmd.stdin(Stdio::Inherit)
            .stdout(Stdio::Inherit)
            .stderr(Stdio::Inherit);
    }
    if !detach {
        crate::commands::hold_signals();
    }
    let mut child = cmd.spawn()?;
    g.log
        .debug(&format!("exec {program} in {id}: pid {}", child.id()));
    if let Some(path) = p.get("pid-file") {
        write_pid_file(std::path::Path::new(path), child.id())?;
    }
    match (&socket, master) {
        (Some(sock), Some(m)) => console::send_master(sock, &m)?,
        (None, Some(m)) => crate::commands::pump_terminal(m),
        _ => {}
    }
    if detach {
        drop(child);
        return Ok(0);
    }
    forward_signals(child.id());
    let status = child.wait();
    crate::commands::stop_forwarding();
    Ok(status?.shell_code())
}
