//! The commands, each as runc has it.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use hull_container::oci_spec::runtime::Spec;
use hull_container::{Container, NetworkMode, Status, Stdio};
use serde_json::{Value, json};

use crate::args::{self, Flag, Parsed, bool_flag, val};
use crate::{Error, Global, console, hooks, spec};

/// The file beside the library's state.json with what only the binary
/// knows: the bundle, the creation time, annotations and hooks.
const META_FILE: &str = "hull.json";

/// Runs `cmd` with its arguments; returns the exit code.
pub fn dispatch(g: &Global, cmd: &str, rest: &[String]) -> Result<i32, Error> {
    match cmd {
        "create" => create(g, rest),
        "start" => start(g, rest),
        "run" => run(g, rest),
        "state" => state(g, rest),
        "kill" => kill(g, rest),
        "delete" => delete(g, rest),
        "list" => list(g, rest),
        "ps" => ps(g, rest),
        "pause" => pause_resume(g, rest, true),
        "resume" => pause_resume(g, rest, false),
        "exec" => crate::exec::exec(g, rest),
        "events" => crate::events::events(g, rest),
        "update" => crate::events::update(g, rest),
        "spec" => spec_cmd(rest),
        "features" => {
            let (_, _) = args::parse(rest, &[], false)?;
            println!("{}", pretty(&spec::features()));
            Ok(0)
        }
        other => Err(Error::Usage(format!(
            "No help topic for '{other}'\n{}",
            crate::USAGE
        ))),
    }
}

pub(crate) fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// The one container id a command takes.
pub(crate) fn one_id<'a>(p: &'a Parsed, cmd: &str) -> Result<&'a str, Error> {
    match p.positional.as_slice() {
        [id] => Ok(id),
        _ => Err(Error::Usage(format!(
            "{cmd:?} requires exactly 1 argument(s)"
        ))),
    }
}

/// The container id and the arguments after it.
pub(crate) fn one_id_or_more<'a>(
    p: &'a Parsed,
    cmd: &str,
) -> Result<(&'a str, &'a [String]), Error> {
    match p.positional.split_first() {
        Some((id, rest)) => Ok((id, rest)),
        None => Err(Error::Usage(format!(
            "{cmd:?} requires a minimum of 1 argument(s)"
        ))),
    }
}

/// runc's rule for ids: letters, digits, `_`, `+`, `-` and `.`, not `.`
/// or `..`.
fn check_id(id: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::BadId(id.to_string()))
    }
}

/// Loads a container from the state store.
pub(crate) fn load(g: &Global, id: &str) -> Result<Container, Error> {
    check_id(id)?;
    Container::load(&g.root, id).map_err(|e| match e {
        hull_container::Error::NotFound { .. } => Error::NotFound(id.to_string()),
        e => Error::Container(e),
    })
}

/// Lets go of a container loaded from the store without touching it:
/// dropping would delete it, and [`Container::detach`] would write back a
/// state that another hull process may have changed since the load. The
/// pidfd and the cgroup handle close when this process exits.
pub(crate) fn release(c: Container) {
    std::mem::forget(c);
}

/// The binary's own record of a container (see [`META_FILE`]).
pub(crate) fn read_meta(g: &Global, id: &str) -> Value {
    std::fs::read_to_string(g.root.join(id).join(META_FILE))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

/// The state in runc's shape.
fn state_value(c: &mut Container, meta: &Value) -> Value {
    let s = c.state();
    let mut v = json!({
        "ociVersion": spec::OCI_VERSION,
        "id": s.id,
        "pid": s.pid,
        "status": s.status.to_string(),
        "bundle": meta["bundle"],
        "rootfs": meta["rootfs"],
        "created": meta["created"],
        "owner": "",
    });
    if meta["annotations"]
        .as_object()
        .is_some_and(|a| !a.is_empty())
    {
        v["annotations"] = meta["annotations"].clone();
    }
    v
}

/// The state a hook reads on stdin (the runtime spec's shape).
fn hook_state(c: &mut Container, meta: &Value) -> String {
    let s = c.state();
    json!({
        "ociVersion": spec::OCI_VERSION,
        "id": s.id,
        "status": s.status.to_string(),
        "pid": s.pid,
        "bundle": meta["bundle"],
        "annotations": meta["annotations"].as_object().cloned().unwrap_or_default(),
    })
    .to_string()
}

const CREATE_FLAGS: &[Flag] = &[
    val("bundle", Some('b')),
    val("console-socket", None),
    val("pid-file", None),
    bool_flag("no-pivot", None),
    bool_flag("no-new-keyring", None),
    val("preserve-fds", None),
    bool_flag("detach", Some('d')),
    bool_flag("keep", None),
    bool_flag("no-subreaper", None),
];

/// What `create` and `run` share.
struct CreateOpts {
    bundle: PathBuf,
    console_socket: Option<PathBuf>,
    pid_file: Option<PathBuf>,
    /// `--no-pivot`: MS_MOVE and chroot instead of pivot_root.
    no_pivot: bool,
    /// `--preserve-fds`: the caller's fds 3, 4, ..., for the container.
    preserve_fds: Vec<std::os::fd::OwnedFd>,
    /// `run` without `--detach`: the terminal (if any) stays here.
    foreground: bool,
    /// `run`: the process may start at once, without stopping at the
    /// start gate, if no hook needs it created but not started.
    run: bool,
}

/// `--preserve-fds N`: the caller's fds 3 .. 3+N, copied now
/// (close-on-exec here), for the container's 3 .. 3+N.
pub(crate) fn preserved_fds(p: &Parsed) -> Result<Vec<std::os::fd::OwnedFd>, Error> {
    let n: u16 = p
        .get("preserve-fds")
        .unwrap_or("0")
        .parse()
        .map_err(|_| Error::Usage("--preserve-fds takes a number".into()))?;
    let mut fds = Vec::with_capacity(usize::from(n));
    for fd in 3..3 + n {
        // SAFETY: fcntl on an fd number; a closed one is EBADF.
        let r = unsafe { libc::fcntl(i32::from(fd), libc::F_DUPFD_CLOEXEC, 3 + i32::from(n)) };
        if r < 0 {
            return Err(Error::Io {
                action: "--preserve-fds: duplicate",
                path: PathBuf::from(format!("fd {fd}")),
                source: std::io::Error::last_os_error(),
            });
        }
        // SAFETY: the new fd is ours alone.
        fds.push(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(r) });
    }
    Ok(fds)
}

impl CreateOpts {
    fn from(p: &Parsed, foreground: bool, run: bool) -> Result<CreateOpts, Error> {
        let preserve_fds = preserved_fds(p)?;
        let bundle = PathBuf::from(p.get("bundle").unwrap_or("."));
        let bundle = std::path::absolute(&bundle).map_err(|source| Error::Io {
            action: "resolve bundle",
            path: bundle.clone(),
            source,
        })?;
        Ok(CreateOpts {
            bundle,
            console_socket: p.get("console-socket").map(PathBuf::from),
            pid_file: p.get("pid-file").map(PathBuf::from),
            no_pivot: p.is("no-pivot"),
            preserve_fds,
            foreground,
            run,
        })
    }
}

/// The hooks that run between create and start: with any of them, `run`
/// stops the process at the start gate for them.
const GATED_HOOKS: [&str; 4] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
];

/// Reads the bundle's config.json, with its hooks taken out (the library
/// refuses them; the binary runs them).
pub(crate) fn read_bundle(bundle: &Path) -> Result<(Spec, Value), Error> {
    let path = bundle.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        action: "read",
        path: path.clone(),
        source,
    })?;
    let mut spec: Spec = serde_json::from_str(&text).map_err(|e| Error::Config {
        path: path.clone(),
        problem: e.to_string(),
    })?;
    let hooks = match spec.hooks_mut().take() {
        Some(h) => serde_json::to_value(h).map_err(|e| Error::Config {
            path: path.clone(),
            problem: e.to_string(),
        })?,
        None => Value::Null,
    };
    Ok((spec, hooks))
}

/// Creates a container and runs the create-time hooks; the container's
/// process waits at the start FIFO. Returns the container (owned: dropping
/// it deletes it), its record, and the terminal master if it stays here.
///
/// For `run` with no hook between create and start, the container is
/// started here too (its process does not stop at the gate): see
/// [`Container::run_with_stdio`].
fn create_container(
    g: &Global,
    id: &str,
    o: &CreateOpts,
) -> Result<(Container, Value, Option<OwnedFd>), Error> {
    check_id(id)?;
    if g.root.join(id).exists() {
        return Err(Error::Exists(id.to_string()));
    }
    let (mut spec, hooks) = read_bundle(&o.bundle)?;
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal && o.console_socket.is_none() && !o.foreground {
        return Err(Error::Usage(
            "cannot allocate tty if hull will detach without setting console socket".into(),
        ));
    }
    if !terminal && o.console_socket.is_some() {
        return Err(Error::Usage(
            "cannot use console socket if hull will not detach or allocate tty".into(),
        ));
    }
    let rootfs = spec
        .root()
        .as_ref()
        .map(|r| o.bundle.join(r.path()))
        .unwrap_or_default();
    if let Some(p) = spec.process_mut() {
        add_home(p, &rootfs);
    }
    // A network namespace given by path (podman's own networking) is
    // joined; the library refuses other namespace paths by name.
    let mut join_net = None;
    if let Some(linux) = spec.linux_mut() {
        if let Some(nss) = linux.namespaces_mut() {
            nss.retain(|n| {
                let net = n.typ() == hull_container::oci_spec::runtime::LinuxNamespaceType::Network;
                if net {
                    if let Some(p) = n.path() {
                        join_net = Some(p.clone());
                        return false;
                    }
                }
                true
            });
        }
    }
    // Network sysctls for a joined network namespace are written here, in
    // that namespace (the library takes them only with a new one).
    let mut net_sysctls = Vec::new();
    if join_net.is_some() {
        if let Some(sysctl) = spec
            .linux_mut()
            .as_mut()
            .and_then(|l| l.sysctl_mut().as_mut())
        {
            sysctl.retain(|k, v| {
                let net = k.starts_with("net.");
                if net {
                    net_sysctls.push((k.clone(), v.clone()));
                }
                !net
            });
        }
    }
    if let Some(path) = &join_net {
        set_net_sysctls(path, &net_sysctls)?;
    }
    let mut b = Container::from_oci(id, &spec, &o.bundle)?
        .runtime_root(&g.root)
        .persist(true);
    if let Some(p) = join_net {
        b = b.network(NetworkMode::Join(p));
    }
    if o.no_pivot {
        b = b.no_pivot(true);
    }
    let mut passed = Vec::with_capacity(o.preserve_fds.len());
    for (i, fd) in o.preserve_fds.iter().enumerate() {
        passed.push(fd.try_clone().map_err(|source| Error::Io {
            action: "--preserve-fds: duplicate",
            path: PathBuf::from(format!("fd {}", 3 + i)),
            source,
        })?);
    }
    b = b.pass_fds(passed);
    // No cgroup file system in the container unless the spec mounts one
    // (the library's default is to mount them).
    let cgroup_mount = spec
        .mounts()
        .iter()
        .flatten()
        .any(|m| m.destination() == Path::new("/sys/fs/cgroup"));
    if !cgroup_mount {
        b = b.mount_cgroups(false);
    }
    let cfg = b.build()?;
    let stdio = [Stdio::Inherit, Stdio::Inherit, Stdio::Inherit];
    let gated = !o.run
        || GATED_HOOKS
            .iter()
            .any(|k| !hooks::of_kind(&hooks, k).is_empty());
    let made = if gated {
        Container::create_with_stdio(cfg, stdio)
    } else {
        Container::run_with_stdio(cfg, stdio)
    };
    let mut c = made.map_err(|e| match e {
        hull_container::Error::RuntimeDir {
            action: "create",
            ref source,
            ..
        } if source.kind() == std::io::ErrorKind::AlreadyExists => Error::Exists(id.to_string()),
        e => Error::Container(e),
    })?;
    let root = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_default();
    let meta = json!({
        "bundle": o.bundle,
        "rootfs": if root.is_absolute() { root } else { o.bundle.join(root) },
        "created": crate::log::rfc3339_now(),
        "annotations": spec.annotations().clone().unwrap_or_default(),
        "hooks": hooks,
        // For exec: the library does not keep the filter in its store.
        "seccomp": spec.linux().as_ref().and_then(|l| l.seccomp().clone()),
    });
    let meta_path = c.runtime_dir().join(META_FILE);
    std::fs::write(&meta_path, meta.to_string()).map_err(|source| Error::Io {
        action: "write",
        path: meta_path,
        source,
    })?;
    let mut master = if terminal { c.take_terminal() } else { None };
    if let (Some(sock), Some(m)) = (&o.console_socket, master.take()) {
        console::send_master(sock, &m)?;
    }
    let state = hook_state(&mut c, &meta);
    for kind in ["prestart", "createRuntime", "createContainer"] {
        // On a failure `c` drops here, which deletes the container.
        hooks::run(&meta["hooks"], kind, &state)?;
    }
    if let Some(p) = &o.pid_file {
        write_pid_file(p, c.pid().unwrap_or(0))?;
    }
    Ok((c, meta, master))
}

/// Sets HOME, as runc does, when the process's environment has none: the
/// user's home directory from the rootfs's /etc/passwd, or `/`.
pub(crate) fn add_home(p: &mut hull_container::oci_spec::runtime::Process, rootfs: &Path) {
    let mut env = p.env().clone().unwrap_or_default();
    if env.iter().any(|e| e.starts_with("HOME=")) {
        return;
    }
    let uid = p.user().uid().to_string();
    let home = std::fs::read_to_string(rootfs.join("etc/passwd"))
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 6 && f[2] == uid && !f[5].is_empty()).then(|| f[5].to_string())
            })
        })
        .unwrap_or_else(|| "/".into());
    env.push(format!("HOME={home}"));
    p.set_env(Some(env));
}

/// Writes `net.*` sysctls in the network namespace at `ns` (from a thread
/// that enters it: /proc/sys/net is the opener's namespace's).
fn set_net_sysctls(ns: &Path, sysctls: &[(String, String)]) -> Result<(), Error> {
    if sysctls.is_empty() {
        return Ok(());
    }
    let ns = ns.to_path_buf();
    let sysctls = sysctls.to_vec();
    std::thread::spawn(move || -> Result<(), Error> {
        hull_ns::NsFd::open(&ns)?.enter()?;
        for (k, v) in &sysctls {
            if k.contains("..") || k.contains('/') {
                return Err(Error::Config {
                    path: "linux.sysctl".into(),
                    problem: format!("bad key {k:?}"),
                });
            }
            let path = PathBuf::from("/proc/sys").join(k.replace('.', "/"));
            std::fs::write(&path, v).map_err(|source| Error::Io {
                action: "write sysctl",
                path,
                source,
            })?;
        }
        Ok(())
    })
    .join()
    .unwrap_or_else(|_| Err(Error::Usage("sysctl thread panicked".into())))
}

/// Writes a pid file atomically, as runc does.
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let io = |source| Error::Io {
        action: "write pid file",
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(&tmp, pid.to_string()).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn create(g: &Global, rest: &[String]) -> Result<i32, Error> {
    let (p, _) = args::parse(rest, CREATE_FLAGS, false)?;
    let id = one_id(&p, "create")?;
    let (c, _, _) = create_container(g, id, &CreateOpts::from(&p, false, false)?)?;
    c.detach();
    Ok(0)
}

/// Starts a created container: startContainer hooks, the gate, poststart.
fn start_container(c: &mut Container, meta: &Value) -> Result<(), Error> {
    match c.status() {
        Status::Created => {}
        Status::Stopped => {
            return Err(Error::State(
                "cannot start a container that has stopped".into(),
            ));
        }
        Status::Running | Status::Paused => {
            return Err(Error::State(
                "cannot start an already running container".into(),
            ));
        }
    }
    let state = hook_state(c, meta);
    hooks::run(&meta["hooks"], "startContainer", &state)?;
    c.start()?;
    let state = hook_state(c, meta);
    hooks::run(&meta["hooks"], "poststart", &state)
}

fn start(g: &Global, rest: &[String]) -> Result<i32, Error> {
    let (p, _) = args::parse(rest, &[], false)?;
    let id = one_id(&p, "start")?;
    let mut c = load(g, id)?;
    let meta = read_meta(g, id);
    let r = start_container(&mut c, &meta);
    release(c);
    r.map(|()| 0)
}

fn run(g: &Global, rest: &[String]) -> Result<i32, Error> {
    let (p, _) = args::parse(rest, CREATE_FLAGS, false)?;
    let id = one_id(&p, "run")?;
    let detach = p.is("detach");
    if !detach {
        hold_signals();
    }
    let (mut c, meta, master) = create_container(g, id, &CreateOpts::from(&p, !detach, true)?)?;
    // Started already unless a hook needed the created state.
    let start = |c: &mut Container| {
        if c.status() == Status::Created {
            start_container(c, &meta)
        } else {
            hooks::run(&meta["hooks"], "poststart", &hook_state(c, &meta))
        }
    };
    if detach {
        start(&mut c)?;
        c.detach();
        return Ok(0);
    }
    let pid = c.pid().unwrap_or(0);
    forward_signals(pid);
    if let Some(m) = master {
        pump_terminal(m);
    }
    start(&mut c)?;
    let status = c.wait();
    stop_forwarding();
    let status = status?;
    let state = hook_state(&mut c, &meta);
    if p.is("keep") {
        c.detach();
    } else {
        c.delete()?;
        if let Err(e) = hooks::run(&meta["hooks"], "poststop", &state) {
            g.log.warn(&e.to_string());
        }
    }
    Ok(status.shell_code())
}

/// The pid that [`forward_signals`]' handler sends to; 0 for none.
static FORWARD_TO: AtomicI32 = AtomicI32::new(0);

/// The signals a foreground `run` or `exec` passes on to the container.
const FORWARDED: [i32; 7] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

fn forwarded_set() -> libc::sigset_t {
    // SAFETY: a zeroed sigset is valid plain data, initialised by
    // sigemptyset; the pointers are to this local.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in FORWARDED {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Blocks the signals [`forward_signals`] will pass on, before the
/// process is spawned: one that arrives before its pid is known stays
/// pending until then instead of ending hull (the container's process
/// starts with an empty mask). Threads started from here on inherit it.
pub(crate) fn hold_signals() {
    let set = forwarded_set();
    // SAFETY: a valid set; changes this thread's mask only.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// Signals hull gets while it waits in the foreground go to the container.
///
/// A handler sends them on (kill(2) is async-signal-safe), rather than a
/// thread waiting in sigwait: `run` is timed by every caller, and a thread
/// costs a stack mapping and a clone. `SA_RESTART` restarts the system
/// calls hull waits in; the few that are not restarted report EINTR, which
/// the standard library and hull's waits retry. Signals held since
/// [`hold_signals`] are delivered, and so passed on, once the handler is in
/// place.
pub(crate) fn forward_signals(pid: i32) {
    extern "C" fn forward(sig: libc::c_int) {
        let pid = FORWARD_TO.load(Ordering::Relaxed);
        if pid > 0 {
            // SAFETY: errno is this thread's; kill takes two integers. errno
            // is put back for the code the signal interrupted.
            unsafe {
                let errno = *libc::__errno_location();
                libc::kill(pid, sig);
                *libc::__errno_location() = errno;
            }
        }
    }
    FORWARD_TO.store(pid, Ordering::Relaxed);
    for s in FORWARDED {
        // SAFETY: a zeroed sigaction is valid plain data; the handler only
        // calls async-signal-safe functions.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = forward as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(s, &sa, std::ptr::null_mut());
        }
    }
    let set = forwarded_set();
    // SAFETY: a valid set; changes this thread's mask only.
    unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
}

/// Ends [`forward_signals`] once the process is reaped, so that its pid,
/// free for reuse, gets nothing more.
pub(crate) fn stop_forwarding() {
    FORWARD_TO.store(0, Ordering::Relaxed);
}

/// Copies stdin to the terminal and the terminal to stdout (foreground
/// `run` of a spec with `terminal: true` and no console socket).
pub(crate) fn pump_terminal(master: OwnedFd) {
    let mut out = std::fs::File::from(master);
    let Ok(mut input) = out.try_clone() else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut input);
    });
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut out, &mut std::io::stdout());
    });
}

fn state(g: &Global, rest: &[String]) -> Result<i32, Error> {
    let (p, _) = args::parse(rest, &[], false)?;
    let id = one_id(&p, "state")?;
    let mut c = load(g, id)?;
    let v = state_value(&mut c, &read_meta(g, id));
    release(c);
    println!("{}", pretty(&v));
    Ok(0)
}

/// A signal by name (`KILL`, `SIGKILL`, `kill`) or number.
pub(crate) fn parse_signal(s: &str) -> Result<i32, Error> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => {
            let rt = name
                .strip_prefix("RTMIN+")
                .and_then(|n| n.parse::<i32>().ok())
                .map(|n| libc::SIGRTMIN() + n)
                .or_else(|| {
                    name.strip_prefix("RTMAX-")
                        .and_then(|n| n.parse::<i32>().ok())
                        .map(|n| libc::SIGRTMAX() - n)
                })
                .filter(|n| (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(n));
            return rt.ok_or_else(|| Error::Usage(format!("unknown signal {s:?}")));
        }
    };
    Ok(n)
}

/// The container's processes, as runc finds them: from its cgroup (every
/// hierarchy agrees; the first is read). Without a cgroup, the processes
/// of its PID namespace, and only if it has one of its own: a container in
/// the caller's PID namespace would otherwise be every process there.
fn container_pids(c: &mut Container) -> Result<Vec<i32>, Error> {
    if let Some(cg) = c.cgroup() {
        let mut pids = cg.procs_recursive().map_err(|source| {
            Error::Container(hull_container::Error::Cgroup {
                id: c.id().to_string(),
                source,
            })
        })?;
        pids.sort_unstable();
        pids.dedup();
        return Ok(pids);
    }
    if !c.config().namespaces().contains(hull_ns::Namespaces::PID) {
        return Err(Error::State(format!(
            "container {} has neither a cgroup nor a PID namespace of its own",
            c.id()
        )));
    }
    Ok(c.processes()?)
}

fn kill(g: &Global, rest: &[String]) -> Result<i32, Error> {
    let (p, _) = args::parse(rest, &[bool_flag("all", Some('a'))], false)?;
    let (id, sig) = match p.positional.as_slice() {
        [id] => (id.as_str(), libc::SIGTERM),
        [id, sig] => (id.as_str(), parse_signal(sig)?),
        _ => {
            return Err(Error::Usage(
                "\"kill\" requires a minimum of 1 and a maximum of 2 argument(s)".into(),
            ));
        }
    };
    let mut c = load(g, id)?;
    let r = (|| {
        if c.status() == Status::Stopped {
            return Err(Error::State("container not running".into()));
        }
        if p.is("all") {
            for pid in container_pids(&mut c)? {
                // SAFETY: kill takes two integers.
                unsafe { libc::kill(pid, sig) };
            }
            Ok(())
        } else {
            c.kill(sig).map_err(Error::from)
        }
    })();
    release(c);
    r.map(|()| 0)
}

fn delete(g: &Global, rest: &[String]) -> Result<i32, Error> {
    let (p, _) = args::parse(rest, &[bool_flag("force", Some('f'))], false)?;
    let force = p.is("force");
    if p.positional.is_empty() {
        return Err(Error::Usage(
            "\"delete\" requires a minimum of 1 argument(s)".into(),
        ));
    }
    let mut code = 0;
    for id in &p.positional {
        if let Err(e) = delete_one(g, id, force) {
            if p.positional.len() == 1 {
                return Err(e);
            }
            g.log.error(&format!("{id}: {e}"));
            code = 1;
        }
    }
    Ok(code)
}

fn delete_one(g: &Global, id: &str, force: bool) -> Result<(), Error> {
    let mut c = match load(g, id) {
        Ok(c) => c,
        Err(Error::NotFound(_)) => {
            // A directory without a state file: an aborted create.
            check_id(id)?;
            let _ = std::fs::remove_dir_all(g.root.join(id));
            return if force {
                Ok(())
            } else {
                Err(Error::NotFound(id.to_string()))
            };
        }
        Err(e) => return Err(e),
    };
    let meta = read_meta(g, id);
    let status = c.status();
    if matches!(status, Status::Running | Status::Paused) && !force {
        release(c);
        return Err(Error::State(format!(
            "cannot delete container {id} that is not stopped: {status}"
        )));
    }
    c.delete()?;
    let state = json!({
        "ociVersion": spec::OCI_VERSION,
        "id": id,
        "status": "stopped",
        "pid": 0,
        "bundle": meta["bundle"],
        "annotations": meta["annotations"].as_object().cloned().unwrap_or_default(),
    })
    .to_string();
    if let Err(e) = hooks::run(&meta["hooks"], "poststop", &state) {
        g.log.warn(&e.to_string());
    }
    Ok(())
}

/// Formats rows as Go's tabwriter with runc's settings (minimum width 12,
/// padding 3).
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count() + 3)
                .max()
                .unwrap_or(0)
                .max(12)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == cols {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[i]));
            }
        }
        out.push('\n');
    }
    out
}

fn list(g: &Global, rest: &[String]) -> Result<i32, Error> {
    let (p, _) = args::parse(
        rest,
        &[val("format", Some('f')), bool_flag("quiet", Some('q'))],
        false,
    )?;
    let mut states = Vec::new();
    for id in Container::list(&g.root) {
        if let Ok(mut c) = load(g, &id) {
            states.push(state_value(&mut c, &read_meta(g, &id)));
            release(c);
        }
    }
    if p.is("quiet") {
        for s in &states {
            println!("{}", s["id"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    match p.get("format").unwrap_or("table") {
        "json" if states.is_empty() => println!("null"),
        "json" => println!("{}", Value::Array(states)),
        "table" => {
            let mut rows = vec![
                ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
                    .map(String::from)
                    .to_vec(),
            ];
            for s in &states {
                let t = |k: &str| s[k].as_str().unwrap_or("").to_string();
                rows.push(vec![
                    t("id"),
                    s["pid"].to_string(),
                    t("status"),
                    t("bundle"),
                    t("created"),
                    "root".into(),
                ]);
            }
            print!("{}", table(&rows));
        }
        other => return Err(Error::Usage(format!("invalid format option {other:?}"))),
    }
    Ok(0)
}

fn ps(g: &Global, rest: &[String]) -> Result<i32, Error> {
    let (p, _) = args::parse(rest, &[val("format", Some('f'))], false)?;
    let Some((id, ps_args)) = p.positional.split_first() else {
        return Err(Error::Usage(
            "\"ps\" requires a minimum of 1 argument(s)".into(),
        ));
    };
    let mut c = load(g, id)?;
    let r = if c.status() == Status::Stopped {
        Ok(Vec::new())
    } else {
        container_pids(&mut c)
    };
    release(c);
    let pids = r?;
    match p.get("format").unwrap_or("table") {
        "json" => println!("{}", json!(pids)),
        "table" => {
            let args: Vec<&str> = if ps_args.is_empty() {
                vec!["-ef"]
            } else {
                ps_args.iter().map(String::as_str).collect()
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .map_err(|source| Error::Io {
                    action: "run",
                    path: "ps".into(),
                    source,
                })?;
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or("");
            let col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .ok_or_else(|| Error::Usage("ps output has no PID column".into()))?;
            let mut so = std::io::stdout().lock();
            let _ = writeln!(so, "{header}");
            for l in lines {
                let pid = l
                    .split_whitespace()
                    .nth(col)
                    .and_then(|x| x.parse::<i32>().ok());
                if pid.is_some_and(|p| pids.contains(&p)) {
                    let _ = writeln!(so, "{l}");
                }
            }
        }
        other => return Err(Error::Usage(format!("invalid format option {other:?}"))),
    }
    Ok(0)
}

fn pause_resume(g: &Global, rest: &[String], pause: bool) -> Result<i32, Error> {
    let (p, _) = args::parse(rest, &[], false)?;
    let id = one_id(&p, if pause { "pause" } else { "resume" })?;
    let mut c = load(g, id)?;
    let r = match (pause, c.status()) {
        (true, Status::Running) => c.pause().map_err(Error::from),
        (false, Status::Paused) => c.resume().map_err(Error::from),
        (true, _) => Err(Error::State("container not running".into())),
        (false, _) => Err(Error::State("container not paused".into())),
    };
    release(c);
    r.map(|()| 0)
}

fn spec_cmd(rest: &[String]) -> Result<i32, Error> {
    let (p, _) = args::parse(
        rest,
        &[val("bundle", Some('b')), bool_flag("rootless", None)],
        false,
    )?;
    let dir = PathBuf::from(p.get("bundle").unwrap_or("."));
    let path = dir.join("config.json");
    if path.exists() {
        return Err(Error::State(
            "File config.json exists. Remove it first".into(),
        ));
    }
    let rootless = p.is("rootless").then(|| {
        // SAFETY: getuid and getgid cannot fail.
        unsafe { (libc::getuid(), libc::getgid()) }
    });
    let text = serde_json::to_string_pretty(&spec::default_spec(rootless)).unwrap_or_default();
    std::fs::write(&path, text + "\n").map_err(|source| Error::Io {
        action: "write",
        path,
        source,
    })?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("hup").unwrap(), 1);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("RTMIN+1").unwrap(), libc::SIGRTMIN() + 1);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
    }

    #[test]
    fn ids() {
        assert!(check_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn table_like_tabwriter() {
        let t = table(&[
            vec!["ID".into(), "PID".into()],
            vec!["a-long-container-id".into(), "1".into()],
        ]);
        assert_eq!(t, "ID                    PID\na-long-container-id   1\n");
    }
}
