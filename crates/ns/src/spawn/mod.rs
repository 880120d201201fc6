//! Spawning a program in new or joined namespaces: [`Command`].
//!
//! The parent prepares everything (every path, argument and environment
//! string, the id-map text, pipes, a stack) before one clone3(2); the child
//! then runs only the flat list of raw system calls in [`child`], waits for
//! the parent-side steps (id maps, time offsets, a cgroup on old kernels) on
//! a pipe, and calls execve. A failing step sends a fixed `(step, errno)`
//! record on a close-on-exec pipe, so end-of-file on that pipe means the
//! program is running; the parent turns a record into [`Error::Spawn`]
//! naming the step and its path.
//!
//! When nothing forces a copy of the address space, the child shares the
//! parent's memory (`CLONE_VM`, as posix_spawn does), so the cost of a spawn
//! does not grow with the caller's size. A copy (fork semantics) is made
//! when the kernel or the caller needs one: joining a user or time
//! namespace (the kernel refuses those to a process that shares its
//! memory), running an init as PID 1, or pre-exec hooks.
//!
//! # Safety
//! This module holds the clone itself: it hands the child a stack and a
//! [`Plan`] of raw pointers into buffers owned by [`Command::spawn`]'s
//! frame, and guarantees (through [`ChildGuard`]) that none of them is freed
//! before the child has exec'd or exited.

#![allow(unsafe_code)]

mod child;

use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::idmap::{IdMap, IdMapKind, write_proc_file, write_setgroups_deny};
use crate::nsfd::{NsFd, ProcessNamespaces};
use crate::ops::{ChildOp, PreparedOps};
use crate::process::{Child, Pending};
use crate::sys::{self, CloneArgs, Stack};
use crate::{Error, Namespaces, Result};

use child::{Hooks, Join, Plan, RECORD_LEN, Record};

/// A step of the spawn that can fail in the child (see [`Error::Spawn`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u32)]
pub enum Step {
    /// Joining a namespace (setns).
    JoinNamespace = 1,
    /// Creating the time namespace (unshare).
    UnshareTime,
    /// Creating the cgroup namespace (unshare).
    UnshareCgroup,
    /// Waiting for the parent's release.
    WaitForParent,
    /// Setting the hostname.
    SetHostname,
    /// Setting the domain name.
    SetDomainname,
    /// Making mounts private before mounting /proc.
    MakeMountsPrivate,
    /// Mounting /proc.
    MountProc,
    /// Forking the main process from the init.
    ForkInit,
    /// Switching to the requested uid and gid.
    SetIds,
    /// Changing to the working directory.
    Chdir,
    /// Setting up stdin, stdout or stderr.
    Stdio,
    /// Resetting signal dispositions and the mask.
    ResetSignals,
    /// A pre-exec hook.
    PreExec,
    /// Executing the program.
    Exec,
    /// Not a failure: the child is ready for the parent-side steps.
    Ready,
    /// One of the caller's [`ChildOp`]s.
    ChildOp,
    /// Not a failure: the child waits at the start gate.
    AtGate,
    /// Waiting at the start gate.
    WaitAtGate,
    /// Joining a v1 cgroup (writing to its `tasks` file).
    JoinCgroup,
}

impl Step {
    fn from_u32(v: u32) -> Option<Step> {
        use Step::*;
        [
            JoinNamespace,
            UnshareTime,
            UnshareCgroup,
            WaitForParent,
            SetHostname,
            SetDomainname,
            MakeMountsPrivate,
            MountProc,
            ForkInit,
            SetIds,
            Chdir,
            Stdio,
            ResetSignals,
            PreExec,
            Exec,
            Ready,
            ChildOp,
            AtGate,
            WaitAtGate,
            JoinCgroup,
        ]
        .into_iter()
        .find(|s| *s as u32 == v)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::JoinNamespace => "join namespace",
            Step::UnshareTime => "create time namespace",
            Step::UnshareCgroup => "create cgroup namespace",
            Step::WaitForParent => "wait for parent",
            Step::SetHostname => "set hostname",
            Step::SetDomainname => "set domain name",
            Step::MakeMountsPrivate => "make mounts private",
            Step::MountProc => "mount /proc",
            Step::ForkInit => "fork main process from init",
            Step::SetIds => "switch user and group",
            Step::Chdir => "change directory to",
            Step::Stdio => "set up",
            Step::ResetSignals => "reset signals",
            Step::PreExec => "pre-exec hook",
            Step::Exec => "execute",
            Step::Ready => "ready",
            Step::ChildOp => "child step",
            Step::AtGate => "at start gate",
            Step::WaitAtGate => "wait at start gate",
            Step::JoinCgroup => "join cgroup",
        })
    }
}

/// What a child's stdin, stdout or stderr is connected to.
#[derive(Debug)]
pub enum Stdio {
    /// The caller's own.
    Inherit,
    /// /dev/null.
    Null,
    /// A new pipe; the caller's end is in [`Child`].
    Piped,
    /// This fd.
    Fd(OwnedFd),
}

impl From<OwnedFd> for Stdio {
    fn from(fd: OwnedFd) -> Stdio {
        Stdio::Fd(fd)
    }
}

impl From<File> for Stdio {
    fn from(f: File) -> Stdio {
        Stdio::Fd(f.into())
    }
}

/// Clock offsets for a new time namespace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeOffsets {
    /// Added to CLOCK_MONOTONIC inside the namespace (seconds, may be negative).
    pub monotonic_secs: i64,
    /// Added to CLOCK_BOOTTIME inside the namespace (seconds, may be negative).
    pub boottime_secs: i64,
}

/// A program to run in new or joined namespaces, configured like
/// [`std::process::Command`].
///
/// ```no_run
/// use hull_ns::{Command, Namespaces};
/// let out = Command::new("hostname")
///     .new_namespaces(Namespaces::UTS | Namespaces::PID | Namespaces::MNT)
///     .hostname("box")
///     .mount_proc(true)
///     .output()?;
/// assert_eq!(out.stdout, b"box\n");
/// # Ok::<(), hull_ns::Error>(())
/// ```
pub struct Command {
    program: OsString,
    args: Vec<OsString>,
    env_clear: bool,
    env: Vec<(OsString, Option<OsString>)>,
    cwd: Option<PathBuf>,
    stdio: [Option<Stdio>; 3],
    new_ns: Namespaces,
    join: Vec<NsFd>,
    join_process: Option<(i32, Namespaces)>,
    hostname: Option<String>,
    domainname: Option<String>,
    uid_map: Option<IdMap>,
    gid_map: Option<IdMap>,
    setgroups_deny: bool,
    id_map_helper: bool,
    time_offsets: Option<TimeOffsets>,
    mount_proc: bool,
    init: bool,
    ids: Option<(u32, u32)>,
    cgroup: Option<OwnedFd>,
    close_fds: bool,
    hooks: Hooks,
    ops: Vec<ChildOp>,
    start_gate: bool,
    gate_fifo: Option<OwnedFd>,
    non_dumpable: bool,
    cgroup_procs: Vec<PathBuf>,
    cgroup_tasks: Vec<PathBuf>,
    cgroup_tasks_late: Vec<PathBuf>,
    cgroup_make: Option<CgroupMake>,
    pass_fds: Vec<OwnedFd>,
    loopback_up: bool,
}

/// The caller's step that makes the cgroups of
/// [`Command::cgroup_tasks_after_clone`].
type CgroupMake =
    Box<dyn FnOnce() -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> + Send>;

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("new_namespaces", &self.new_ns)
            .field("join", &self.join)
            .field("join_process", &self.join_process)
            .field("hostname", &self.hostname)
            .field("uid_map", &self.uid_map)
            .field("gid_map", &self.gid_map)
            .field("init", &self.init)
            .field("mount_proc", &self.mount_proc)
            .finish_non_exhaustive()
    }
}

impl Command {
    /// A command running `program`, found in `PATH` unless it contains a
    /// slash, with no arguments, the caller's environment and stdio, and no
    /// namespaces.
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            env_clear: false,
            env: Vec::new(),
            cwd: None,
            stdio: [None, None, None],
            new_ns: Namespaces::empty(),
            join: Vec::new(),
            join_process: None,
            hostname: None,
            domainname: None,
            uid_map: None,
            gid_map: None,
            setgroups_deny: false,
            id_map_helper: false,
            time_offsets: None,
            mount_proc: false,
            init: false,
            ids: None,
            cgroup: None,
            close_fds: true,
            hooks: Vec::new(),
            ops: Vec::new(),
            start_gate: false,
            gate_fifo: None,
            non_dumpable: false,
            cgroup_procs: Vec::new(),
            cgroup_tasks: Vec::new(),
            cgroup_tasks_late: Vec::new(),
            cgroup_make: None,
            pass_fds: Vec::new(),
            loopback_up: false,
        }
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable.
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Command {
        self.env
            .push((key.as_ref().to_owned(), Some(val.as_ref().to_owned())));
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Starts from an empty environment instead of the caller's.
    pub fn env_clear(&mut self) -> &mut Command {
        self.env_clear = true;
        self.env.clear();
        self
    }

    /// The working directory (resolved in the child, after joining
    /// namespaces).
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// Connects stdin.
    pub fn stdin(&mut self, s: impl Into<Stdio>) -> &mut Command {
        self.stdio[0] = Some(s.into());
        self
    }

    /// Connects stdout.
    pub fn stdout(&mut self, s: impl Into<Stdio>) -> &mut Command {
        self.stdio[1] = Some(s.into());
        self
    }

    /// Connects stderr.
    pub fn stderr(&mut self, s: impl Into<Stdio>) -> &mut Command {
        self.stdio[2] = Some(s.into());
        self
    }

    /// Namespaces to create for the child.
    pub fn new_namespaces(&mut self, ns: Namespaces) -> &mut Command {
        self.new_ns = ns;
        self
    }

    /// Joins an existing namespace (may be called once per kind).
    pub fn join(&mut self, ns: NsFd) -> &mut Command {
        self.join.push(ns);
        self
    }

    /// Joins the namespaces `kinds` of process `pid`, all at once through a
    /// pidfd where the kernel allows it (what `nsenter -t PID` does). Kinds
    /// the process shares with the caller are skipped.
    pub fn join_process(&mut self, pid: i32, kinds: Namespaces) -> &mut Command {
        self.join_process = Some((pid, kinds));
        self
    }

    /// The hostname of the new UTS namespace.
    pub fn hostname(&mut self, name: impl Into<String>) -> &mut Command {
        self.hostname = Some(name.into());
        self
    }

    /// The NIS domain name of the new UTS namespace.
    pub fn domainname(&mut self, name: impl Into<String>) -> &mut Command {
        self.domainname = Some(name.into());
        self
    }

    /// The uid map of the new user namespace, written by the parent while
    /// the child waits.
    pub fn uid_map(&mut self, map: IdMap) -> &mut Command {
        self.uid_map = Some(map);
        self
    }

    /// The gid map of the new user namespace.
    pub fn gid_map(&mut self, map: IdMap) -> &mut Command {
        self.gid_map = Some(map);
        self
    }

    /// Runs the program as `uid` and `gid` (ids as seen inside its user
    /// namespace), with no supplementary groups unless setgroups is denied.
    /// In a new user namespace this is what makes the process *be* the
    /// mapped user: e.g. with the map `0 100000 1`, `user(0, 0)` makes it
    /// root inside and uid 100000 outside.
    pub fn user(&mut self, uid: u32, gid: u32) -> &mut Command {
        self.ids = Some((uid, gid));
        self
    }

    /// Writes `deny` to the child's `setgroups` file before its gid map (an
    /// unprivileged caller must).
    pub fn setgroups_deny(&mut self, deny: bool) -> &mut Command {
        self.setgroups_deny = deny;
        self
    }

    /// Writes the maps with `newuidmap`/`newgidmap` instead of directly
    /// (for multi-range maps as an unprivileged user).
    pub fn id_map_helper(&mut self, yes: bool) -> &mut Command {
        self.id_map_helper = yes;
        self
    }

    /// Clock offsets for a new time namespace (needs `Namespaces::TIME` in
    /// [`new_namespaces`](Command::new_namespaces)).
    pub fn time_offsets(&mut self, offsets: TimeOffsets) -> &mut Command {
        self.time_offsets = Some(offsets);
        self
    }

    /// Mounts a fresh /proc in the child, so that it shows the child's PID
    /// namespace (needs new mount and PID namespaces).
    pub fn mount_proc(&mut self, yes: bool) -> &mut Command {
        self.mount_proc = yes;
        self
    }

    /// Runs a minimal init as PID 1 of the new PID namespace: it reaps
    /// every zombie, forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and
    /// SIGUSR2 to the program, and exits with the program's status (128 + N
    /// when signal N killed it).
    pub fn init(&mut self, yes: bool) -> &mut Command {
        self.init = yes;
        self
    }

    /// Starts the child in this cgroup v2 directory (`CLONE_INTO_CGROUP`);
    /// on kernels without clone3 the parent writes `cgroup.procs` instead
    /// while the child waits.
    pub fn cgroup(&mut self, dir: OwnedFd) -> &mut Command {
        self.cgroup = Some(dir);
        self
    }

    /// Cgroup membership files (`cgroup.procs`, or `tasks` on v1) the
    /// parent writes the child's pid into while the child waits, before it
    /// creates its cgroup namespace: how a child joins v1 hierarchies.
    pub fn cgroup_procs(&mut self, files: impl IntoIterator<Item = PathBuf>) -> &mut Command {
        self.cgroup_procs.extend(files);
        self
    }

    /// cgroup v1 `tasks` files the child joins by writing `0` (itself) into
    /// them, before it creates its cgroup namespace. The parent opens them
    /// before the clone (so a bad path is an error naming it). Moving only
    /// the calling thread, the kernel skips the global threadgroup lock that
    /// a pid written into `cgroup.procs` by another process takes, with its
    /// RCU grace period: milliseconds when the machine has been idle, and a
    /// point where parallel spawns queue. For v2 use [`Command::cgroup`].
    pub fn cgroup_tasks(&mut self, files: impl IntoIterator<Item = PathBuf>) -> &mut Command {
        self.cgroup_tasks.extend(files);
        self
    }

    /// As [`Command::cgroup_tasks`], for cgroups that do not exist yet:
    /// `make` runs in the parent right after the clone, while the child
    /// waits, and must create them; then the child opens each of `files`
    /// and writes `0` into it. Making the cgroups thus overlaps the time a
    /// new task takes to get a CPU (long in a virtual machine, where waking
    /// an idle vCPU is a hypervisor round trip). An error from `make` fails
    /// the spawn with [`Error::AfterClone`], after the child is killed.
    ///
    /// The child opens the files by path with its own credentials, after
    /// joining the namespaces given to [`Command::join`]: the paths must
    /// name the files there, and a child in a new user namespace may lack
    /// the right to open them (use [`Command::cgroup_tasks`] then).
    pub fn cgroup_tasks_after_clone(
        &mut self,
        files: impl IntoIterator<Item = PathBuf>,
        make: impl FnOnce() -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>
        + Send
        + 'static,
    ) -> &mut Command {
        self.cgroup_tasks_late.extend(files);
        self.cgroup_make = Some(Box::new(make));
        self
    }

    /// Fds the program gets as 3, 4, ... in order (runc's
    /// `--preserve-fds`, systemd's socket activation); every other fd is
    /// closed at execve as usual. At most 256.
    pub fn pass_fds(&mut self, fds: impl IntoIterator<Item = OwnedFd>) -> &mut Command {
        self.pass_fds.extend(fds);
        self
    }

    /// Whether fds other than stdio that lack close-on-exec still reach the
    /// program (default: no, they are marked close-on-exec in the child).
    pub fn inherit_fds(&mut self, yes: bool) -> &mut Command {
        self.close_fds = !yes;
        self
    }

    /// Extra steps for the child, run in order after its namespaces,
    /// hostname and /proc are set up and before it switches ids (see
    /// [`Command::user`]), changes directory and executes the program: the
    /// mounts, pivot_root, masked paths, limits and privileges of a
    /// container. They run as raw system calls, prepared here.
    pub fn child_ops(&mut self, ops: impl IntoIterator<Item = ChildOp>) -> &mut Command {
        self.ops.extend(ops);
        self
    }

    /// Create/start split: [`spawn`](Command::spawn) returns once the child
    /// has done everything but execve and waits at a gate;
    /// [`Child::start`] lets it run. Dropping the [`Child`] before then
    /// kills it.
    pub fn start_gate(&mut self, yes: bool) -> &mut Command {
        self.start_gate = yes;
        self
    }

    /// Brings the loopback interface of the child's new network namespace
    /// up, as [`ChildOp::LoopbackUp`] does, but from a thread of this
    /// process that enters the namespace while the child does its other
    /// steps: on a machine with a spare CPU the ~0.2 ms the kernel takes
    /// for it leaves the child's path. With a start gate
    /// ([`Command::start_gate`], [`Command::start_gate_fifo`]) `spawn`
    /// returns once both are done; without one, the program could start
    /// first, so the child brings the interface up itself as its first
    /// step (before any of [`Command::child_ops`] could drop its
    /// capabilities). Needs a new network namespace ([`Namespaces::NET`]).
    pub fn loopback_up(&mut self, yes: bool) -> &mut Command {
        self.loopback_up = yes;
        self
    }

    /// Makes the child non-dumpable before it joins namespaces, so that
    /// processes already inside them cannot ptrace it or read its memory
    /// while it still holds the caller's state (needed when joining a
    /// running container; the program's own dumpability is reset by
    /// execve). Implies a copy of the address space.
    pub fn non_dumpable(&mut self, yes: bool) -> &mut Command {
        self.non_dumpable = yes;
        self
    }

    /// As [`start_gate`](Command::start_gate), with the gate a FIFO that
    /// `fifo` (opened read-write, so opening did not block) refers to:
    /// another process starts the child by writing a byte to the FIFO's
    /// path, as `runc start` does with `exec.fifo`.
    pub fn start_gate_fifo(&mut self, fifo: OwnedFd) -> &mut Command {
        self.start_gate = true;
        self.gate_fifo = Some(fifo);
        self
    }

    /// Runs `f` in the child just before execve.
    ///
    /// # Safety
    /// `f` runs in a child forked from a possibly multithreaded process: it
    /// must be async-signal-safe (no allocation, no locks), exactly as for
    /// [`std::os::unix::process::CommandExt::pre_exec`]. Setting a hook makes
    /// the spawn copy the address space (fork semantics).
    pub unsafe fn pre_exec<F>(&mut self, f: F) -> &mut Command
    where
        F: FnMut() -> std::io::Result<()> + Send + Sync + 'static,
    {
        self.hooks.push(Box::new(f));
        self
    }

    /// Spawns and waits, collecting stdout and stderr (piped unless set).
    ///
    /// # Errors
    /// As for [`spawn`](Command::spawn) and [`Child::wait`].
    pub fn output(&mut self) -> Result<crate::Output> {
        for i in 1..3 {
            if self.stdio[i].is_none() {
                self.stdio[i] = Some(Stdio::Piped);
            }
        }
        if self.stdio[0].is_none() {
            self.stdio[0] = Some(Stdio::Null);
        }
        self.spawn()?.wait_with_output()
    }

    /// Spawns and waits.
    ///
    /// # Errors
    /// As for [`spawn`](Command::spawn) and [`Child::wait`].
    pub fn status(&mut self) -> Result<crate::ExitStatus> {
        self.spawn()?.wait()
    }

    fn program_name(&self) -> String {
        self.program.to_string_lossy().into_owned()
    }

    fn invalid(&self, field: &'static str, problem: impl Into<String>) -> Error {
        Error::InvalidCommand {
            field,
            problem: problem.into(),
        }
    }

    /// Checks settings that contradict each other, before anything is made.
    fn validate(&self) -> Result<()> {
        let new = self.new_ns;
        let joined: Namespaces = self
            .join
            .iter()
            .fold(Namespaces::empty(), |a, n| a | n.kind())
            | self
                .join_process
                .map(|(_, k)| k)
                .unwrap_or_else(Namespaces::empty);
        if self.program.is_empty() {
            return Err(self.invalid("program", "empty program name"));
        }
        if !(new & joined).is_empty() {
            return Err(self.invalid(
                "namespaces",
                format!("{} both created and joined", new & joined),
            ));
        }
        for (i, a) in self.join.iter().enumerate() {
            if self.join[..i].iter().any(|b| b.kind() == a.kind()) {
                return Err(self.invalid("join", format!("{} namespace joined twice", a.kind())));
            }
        }
        if self.loopback_up && !new.contains(Namespaces::NET) {
            return Err(self.invalid(
                "loopback_up",
                "needs a new network namespace (it would change the caller's)",
            ));
        }
        let uts = new.contains(Namespaces::UTS) || joined.contains(Namespaces::UTS);
        if (self.hostname.is_some() || self.domainname.is_some()) && !uts {
            return Err(self.invalid(
                "hostname",
                "needs a new or joined UTS namespace (it would change the host's name)",
            ));
        }
        for (field, v) in [
            ("hostname", &self.hostname),
            ("domainname", &self.domainname),
        ] {
            if let Some(v) = v {
                if v.len() > 64 {
                    return Err(self.invalid(field, format!("{v:?} is longer than 64 bytes")));
                }
            }
        }
        if self.mount_proc
            && !(new.contains(Namespaces::MNT)
                && (new.contains(Namespaces::PID) || joined.contains(Namespaces::PID)))
        {
            return Err(self.invalid(
                "mount_proc",
                "needs a new mount namespace and a new or joined PID namespace",
            ));
        }
        if self.init && !new.contains(Namespaces::PID) {
            return Err(self.invalid("init", "needs a new PID namespace"));
        }
        if (self.uid_map.is_some() || self.gid_map.is_some()) && !new.contains(Namespaces::USER) {
            return Err(self.invalid("uid_map", "id maps need a new user namespace"));
        }
        if self.time_offsets.is_some() && !new.contains(Namespaces::TIME) {
            return Err(self.invalid("time_offsets", "needs a new time namespace"));
        }
        Ok(())
    }

    /// Spawns the program.
    ///
    /// Returns once the program is running (execve succeeded) or with the
    /// error of the step that failed, the child reaped.
    ///
    /// # Errors
    /// [`Error::InvalidCommand`] for contradicting settings (e.g. a hostname
    /// without a UTS namespace); [`Error::Prepare`], [`Error::Clone`],
    /// [`Error::ParentStep`]; [`Error::Spawn`] naming the step that failed
    /// in the child, e.g. `Exec` with `ENOENT` for a missing program.
    pub fn spawn(&mut self) -> Result<Child> {
        self.validate()?;
        let program = self.program_name();
        let prep = |what: &'static str| {
            let program = program.clone();
            move |source| Error::Prepare {
                program,
                what,
                source,
            }
        };

        // Strings and arrays the child reads, owned here until it has exec'd.
        let argv_c: Vec<CString> = std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| cstring("args", a))
            .collect::<Result<_>>()?;
        let envp_c = self.env_strings()?;
        let paths_c = self.candidate_paths(&envp_c)?;
        let cwd_c = self
            .cwd
            .as_ref()
            .map(|c| cstring("current_dir", c))
            .transpose()?;

        // Stdio: fds for the child, all numbered 3 or above, and our ends.
        let mut child_stdio: [Option<OwnedFd>; 3] = [None, None, None];
        let mut ours: [Option<File>; 3] = [None, None, None];
        for i in 0..3 {
            match self.stdio[i].take().unwrap_or(Stdio::Inherit) {
                Stdio::Inherit => {}
                Stdio::Null => {
                    let fd =
                        sys::open(c"/dev/null", libc::O_RDWR).map_err(prep("open /dev/null"))?;
                    child_stdio[i] =
                        Some(sys::dup_above_stdio(fd.as_fd()).map_err(prep("duplicate fd"))?);
                }
                Stdio::Piped => {
                    let (r, w) = sys::pipe().map_err(prep("create stdio pipe"))?;
                    let (theirs, mine) = if i == 0 { (r, w) } else { (w, r) };
                    child_stdio[i] =
                        Some(sys::dup_above_stdio(theirs.as_fd()).map_err(prep("duplicate fd"))?);
                    ours[i] = Some(File::from(mine));
                }
                Stdio::Fd(fd) => {
                    child_stdio[i] =
                        Some(sys::dup_above_stdio(fd.as_fd()).map_err(prep("duplicate fd"))?);
                }
            }
        }

        // Namespaces to join: user first (it grants the rights for the rest),
        // PID in the parent (setns on a PID namespace affects children only),
        // time and user in a copied child (the kernel refuses them to a
        // process sharing its memory).
        let mut joins: Vec<Join> = Vec::new();
        let mut pid_join: Option<NsFd> = None;
        let mut copy_memory = self.init || !self.hooks.is_empty() || self.non_dumpable;
        let mut join_order: Vec<&NsFd> = self.join.iter().collect();
        join_order.sort_by_key(|n| n.kind() != Namespaces::USER);
        for ns in join_order {
            if ns.kind() == Namespaces::PID {
                continue;
            }
            if ns.kind() == Namespaces::USER || ns.kind() == Namespaces::TIME {
                copy_memory = true;
            }
            joins.push(Join {
                fd: ns.as_fd().as_raw_fd(),
                nstype: ns.kind().to_clone_flags(),
            });
        }
        let proc_ns = match self.join_process {
            Some((pid, kinds)) => {
                let (p, mut kinds) = ProcessNamespaces::open(pid, kinds)?;
                if kinds.contains(Namespaces::PID) {
                    pid_join = Some(NsFd::from_pid(pid, Namespaces::PID)?);
                    kinds.remove(Namespaces::PID);
                }
                if kinds.intersects(Namespaces::USER | Namespaces::TIME) {
                    copy_memory = true;
                }
                Some((p, kinds))
            }
            None => None,
        };
        if let Some((p, kinds)) = &proc_ns {
            if !kinds.is_empty() {
                if p.fallback().is_empty() {
                    joins.push(Join {
                        fd: p.pidfd().as_raw_fd(),
                        nstype: kinds.to_clone_flags(),
                    });
                } else {
                    let mut fb: Vec<&NsFd> = p
                        .fallback()
                        .iter()
                        .filter(|n| kinds.contains(n.kind()))
                        .collect();
                    fb.sort_by_key(|n| n.kind() != Namespaces::USER);
                    joins.extend(fb.iter().map(|n| Join {
                        fd: n.as_fd().as_raw_fd(),
                        nstype: n.kind().to_clone_flags(),
                    }));
                }
            }
        }
        if let Some(ns) = self.join.iter().find(|n| n.kind() == Namespaces::PID) {
            pid_join = Some(ns.try_clone_handle()?);
        }
        let mut join_arr = [Join { fd: -1, nstype: 0 }; 9];
        if joins.len() > join_arr.len() {
            return Err(self.invalid("join", "too many namespaces to join"));
        }
        join_arr[..joins.len()].copy_from_slice(&joins);

        // Time namespaces are made by the child with unshare, so that the
        // parent can set the offsets before the program enters it at execve.
        let unshare_time = self.new_ns.contains(Namespaces::TIME);
        let want_ready = unshare_time && self.time_offsets.is_some();
        let clone_ns = self.new_ns - Namespaces::TIME - Namespaces::CGROUP;
        let unshare_cgroup = self.new_ns.contains(Namespaces::CGROUP);
        let needs_maps = self.uid_map.is_some() || self.gid_map.is_some();

        let (report_rd, report_wr) = sys::pipe().map_err(prep("create report pipe"))?;
        let mut report_rd = File::from(report_rd);
        let mut sync = None;
        // The cgroup fallback (legacy clone) also needs the child to wait;
        // the pipe is cheap, so it exists whenever a parent step might run.
        if needs_maps
            || want_ready
            || self.cgroup.is_some()
            || !self.cgroup_procs.is_empty()
            || self.cgroup_make.is_some()
        {
            sync = Some(sys::pipe().map_err(prep("create sync pipe"))?);
        }

        let gated = self.start_gate || self.gate_fifo.is_some();
        // Without a gate the parent could finish after the program starts.
        let lo_by_parent = self.loopback_up && gated;
        let ops = if self.loopback_up && !gated {
            // First, while the child still has its capabilities (the
            // caller's steps may drop them).
            let mut ops = Vec::with_capacity(self.ops.len() + 1);
            ops.push(ChildOp::LoopbackUp);
            ops.extend(self.ops.iter().cloned());
            crate::ops::prepare(&ops)?
        } else {
            crate::ops::prepare(&self.ops)?
        };
        let mut cgroup_tasks = Vec::with_capacity(self.cgroup_tasks.len());
        for path in &self.cgroup_tasks {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|source| Error::WriteProcFile {
                    path: path.clone(),
                    source,
                })?;
            cgroup_tasks.push(OwnedFd::from(f));
        }
        let cgroup_task_fds: Vec<i32> = cgroup_tasks.iter().map(|f| f.as_raw_fd()).collect();
        let cgroup_tasks_late_c = self
            .cgroup_tasks_late
            .iter()
            .map(|p| cstring("cgroup_tasks_after_clone", p))
            .collect::<Result<Vec<_>>>()?;
        if self.pass_fds.len() > child::MAX_PASS_FDS {
            return Err(Error::InvalidCommand {
                field: "pass_fds",
                problem: format!(
                    "{} fds given ({} at most)",
                    self.pass_fds.len(),
                    child::MAX_PASS_FDS
                ),
            });
        }
        let pass_fds = std::mem::take(&mut self.pass_fds);
        let pass_fd_nums: Vec<i32> = pass_fds.iter().map(|f| f.as_raw_fd()).collect();
        let gate = if let Some(fifo) = self.gate_fifo.take() {
            let w = fifo.try_clone().map_err(prep("duplicate start gate"))?;
            Some((fifo, w))
        } else if self.start_gate {
            Some(sys::pipe().map_err(prep("create start gate"))?)
        } else {
            None
        };
        // The fds the child still uses after it has placed the passed fds
        // at 3, 4, ... (the report pipe, the start gate) must not sit there.
        let first_free = 3 + i32::try_from(pass_fds.len()).unwrap_or(i32::MAX);
        let report_wr =
            sys::renumber_at_least(report_wr, first_free).map_err(prep("renumber report pipe"))?;
        let gate = match gate {
            Some((r, w)) => Some((
                sys::renumber_at_least(r, first_free).map_err(prep("renumber start gate"))?,
                w,
            )),
            None => None,
        };
        let mut prepared = Box::new(Prepared {
            program: program.clone(),
            cwd: self.cwd.clone(),
            hostname: self.hostname.as_ref().map(|h| h.as_bytes().to_vec()),
            domainname: self.domainname.as_ref().map(|h| h.as_bytes().to_vec()),
            joins: joins
                .iter()
                .map(|j| describe_join(j, &self.join, self.join_process))
                .collect(),
            argv: null_terminated(&argv_c),
            envp: null_terminated(&envp_c),
            paths: null_terminated(&paths_c),
            _argv_c: argv_c,
            _envp_c: envp_c,
            _paths_c: paths_c,
            cwd_c,
            ops,
            cgroup_task_paths: self
                .cgroup_tasks
                .iter()
                .chain(&self.cgroup_tasks_late)
                .cloned()
                .collect(),
            _cgroup_tasks: cgroup_tasks,
            cgroup_task_fds,
            cgroup_tasks_late: null_terminated(&cgroup_tasks_late_c),
            _cgroup_tasks_late_c: cgroup_tasks_late_c,
            _pass_fds: pass_fds,
            pass_fd_nums,
            plan: None,
        });
        let ptr_len = |v: &Option<Vec<u8>>| match v {
            Some(v) => (v.as_ptr(), v.len()),
            None => (std::ptr::null(), 0),
        };
        prepared.plan = Some(Plan {
            report_fd: report_wr.as_raw_fd(),
            non_dumpable: self.non_dumpable,
            shares_memory: !copy_memory,
            sync_fd: sync.as_ref().map(|(r, _)| r.as_raw_fd()).unwrap_or(-1),
            want_ready,
            joins: join_arr,
            n_joins: joins.len(),
            unshare_time,
            cgroup_tasks: prepared.cgroup_task_fds.as_ptr(),
            n_cgroup_tasks: prepared.cgroup_task_fds.len(),
            cgroup_tasks_late: prepared.cgroup_tasks_late.as_ptr(),
            unshare_cgroup,
            hostname: ptr_len(&prepared.hostname),
            domainname: ptr_len(&prepared.domainname),
            mount_proc: self.mount_proc,
            init: self.init,
            ids: self.ids,
            clear_groups: !self.setgroups_deny,
            cwd: prepared
                .cwd_c
                .as_ref()
                .map(|c| c.as_ptr())
                .unwrap_or(std::ptr::null()),
            stdio: [0, 1, 2].map(|i| child_stdio[i].as_ref().map(|f| f.as_raw_fd()).unwrap_or(-1)),
            close_fds: self.close_fds,
            pass_fds: prepared.pass_fd_nums.as_ptr(),
            n_pass_fds: prepared.pass_fd_nums.len(),
            hooks: if self.hooks.is_empty() {
                std::ptr::null_mut()
            } else {
                &mut self.hooks
            },
            ops: prepared.ops.raw.as_ptr(),
            n_ops: prepared.ops.raw.len(),
            gate_fd: gate.as_ref().map(|(r, _)| r.as_raw_fd()).unwrap_or(-1),
            paths: prepared.paths.as_ptr(),
            argv: prepared.argv.as_ptr(),
            envp: prepared.envp.as_ptr(),
        });

        let stack_size = if copy_memory { 256 * 1024 } else { 64 * 1024 };
        let stack = Stack::new(stack_size).map_err(prep("map child stack"))?;
        let Some(plan) = prepared.plan.as_mut() else {
            return Err(prep("plan")(std::io::Error::from_raw_os_error(
                libc::EINVAL,
            )));
        };
        let cloned = clone_child(
            plan,
            &stack,
            clone_ns,
            copy_memory,
            self.cgroup.as_ref(),
            pid_join.as_ref(),
        );
        let (pid, pidfd, used_clone3) = cloned.map_err(|e| match e {
            CloneError::Join(e) => e,
            CloneError::Clone(source) => Error::Clone {
                program: program.clone(),
                namespaces: self.new_ns,
                source,
            },
        })?;
        // From here on, a child exists: until it has exec'd, it may run on
        // `stack` and read `prepared`, so an early return must kill and reap
        // it first (the guard does), and only then free them.
        let mut guard = ChildGuard {
            pidfd: Some(pidfd),
            stack: Some(stack),
            prepared: Some(prepared),
        };
        drop(report_wr);
        drop(child_stdio);
        let gate_wr = gate.map(|(r, w)| {
            drop(r);
            w
        });
        let mut sync_wr = sync.map(|(_, w)| w);

        let parent_steps = |pid: i32| -> Result<()> {
            if let Some(cg) = &self.cgroup {
                if !used_clone3 {
                    write_cgroup_procs(cg, pid)?;
                }
            }
            for f in &self.cgroup_procs {
                write_proc_file(f, pid.to_string().as_bytes())?;
            }
            if let Some(m) = &self.uid_map {
                if self.id_map_helper {
                    m.write_with_helper(pid, IdMapKind::Uid)?;
                } else {
                    m.write_for(pid, IdMapKind::Uid)?;
                }
            }
            if let Some(m) = &self.gid_map {
                if self.setgroups_deny {
                    write_setgroups_deny(pid)?;
                }
                if self.id_map_helper {
                    m.write_with_helper(pid, IdMapKind::Gid)?;
                } else {
                    m.write_for(pid, IdMapKind::Gid)?;
                }
            }
            if let Some(t) = self.time_offsets {
                let text = format!(
                    "monotonic {} 0\nboottime {} 0\n",
                    t.monotonic_secs, t.boottime_secs
                );
                write_proc_file(
                    &PathBuf::from(format!("/proc/{pid}/timens_offsets")),
                    text.as_bytes(),
                )?;
            }
            Ok(())
        };
        let release = |sync_wr: Option<OwnedFd>| -> std::io::Result<()> {
            if let Some(w) = sync_wr {
                let mut f = File::from(w);
                std::io::Write::write_all(&mut f, b"1")?;
            }
            Ok(())
        };
        let parent_failed = |e: Error| Error::ParentStep {
            program: program.clone(),
            source: Box::new(e),
        };
        // Started once the child runs on (released), joined before return.
        let mut lo_thread = None;
        let start_lo = |lo_thread: &mut Option<_>| -> Result<()> {
            if lo_by_parent && lo_thread.is_none() {
                *lo_thread = Some(loopback_up_from_parent(pid).map_err(parent_failed)?);
            }
            Ok(())
        };
        // Made while the child gets going; it joins them once released.
        if let Some(make) = self.cgroup_make.take() {
            make().map_err(|source| Error::AfterClone {
                program: program.clone(),
                source,
            })?;
        }
        if !want_ready {
            parent_steps(pid).map_err(parent_failed)?;
            release(sync_wr.take()).map_err(prep("release child"))?;
            start_lo(&mut lo_thread)?;
        }
        loop {
            match guard.next_report(&mut report_rd)? {
                Report::Ready if sync_wr.is_some() => {
                    parent_steps(pid).map_err(parent_failed)?;
                    release(sync_wr.take()).map_err(prep("release child"))?;
                    start_lo(&mut lo_thread)?;
                }
                Report::AtGate => break,
                Report::Exec | Report::Ready => break,
            }
        }
        if let Some(t) = lo_thread {
            let done = t
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("loopback thread panicked")));
            done.map_err(|source| parent_failed(Error::LoopbackUp { pid, source }))?;
        }
        let pending = match (gate_wr, guard.prepared.take()) {
            (Some(gate), Some(prepared)) => Some(Pending {
                gate,
                report: report_rd,
                _stack: guard.stack.take(),
                prepared,
            }),
            _ => None,
        };
        let Some(pidfd) = guard.disarm() else {
            return Err(prep("keep pidfd")(std::io::Error::from_raw_os_error(
                libc::EBADF,
            )));
        };
        Ok(Child {
            pid,
            pidfd,
            status: None,
            pending,
            stdin: ours[0].take(),
            stdout: ours[1].take(),
            stderr: ours[2].take(),
        })
    }

    fn env_strings(&self) -> Result<Vec<CString>> {
        let mut vars: Vec<(OsString, OsString)> = if self.env_clear {
            Vec::new()
        } else {
            std::env::vars_os().collect()
        };
        for (k, v) in &self.env {
            vars.retain(|(kk, _)| kk != k);
            if let Some(v) = v {
                vars.push((k.clone(), v.clone()));
            }
        }
        vars.into_iter()
            .map(|(k, v)| {
                if k.as_bytes().contains(&b'=') || k.is_empty() {
                    return Err(Error::InvalidCommand {
                        field: "env",
                        problem: format!("bad variable name {k:?}"),
                    });
                }
                let mut s = k.into_vec();
                s.push(b'=');
                s.extend(v.into_vec());
                cstring("env", OsStr::from_bytes(&s))
            })
            .collect()
    }

    /// The paths execve should try, in order: the program itself if it
    /// contains a slash, otherwise each `PATH` directory (the child's `PATH`
    /// if set, else the caller's, else the usual default).
    fn candidate_paths(&self, envp: &[CString]) -> Result<Vec<CString>> {
        let prog = self.program.as_bytes();
        if prog.contains(&b'/') {
            return Ok(vec![cstring("program", &self.program)?]);
        }
        let path = envp
            .iter()
            .find_map(|e| e.to_bytes().strip_prefix(b"PATH=").map(<[u8]>::to_vec))
            .or_else(|| std::env::var_os("PATH").map(OsString::into_vec))
            .unwrap_or_else(|| {
                b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_vec()
            });
        path.split(|&b| b == b':')
            .map(|dir| {
                let dir = if dir.is_empty() { &b"."[..] } else { dir };
                let mut p = dir.to_vec();
                p.push(b'/');
                p.extend_from_slice(prog);
                cstring("program", OsStr::from_bytes(&p))
            })
            .collect()
    }
}

fn describe_join(j: &Join, join: &[NsFd], process: Option<(i32, Namespaces)>) -> PathBuf {
    if let Some(ns) = join.iter().find(|n| n.as_fd().as_raw_fd() == j.fd) {
        return format!("{}:[{}]", ns.kind(), ns.id().ino).into();
    }
    let kinds = Namespaces::from_bits_truncate(u32::try_from(j.nstype).unwrap_or(0));
    match process {
        Some((pid, _)) => format!("{kinds} namespaces of process {pid}").into(),
        None => format!("{kinds} namespaces").into(),
    }
}

impl NsFd {
    fn try_clone_handle(&self) -> Result<NsFd> {
        let fd = self
            .as_fd()
            .try_clone_to_owned()
            .map_err(|source| Error::OpenNamespace {
                path: format!("{}:[{}]", self.kind(), self.id().ino).into(),
                source,
            })?;
        NsFd::from_fd(fd)
    }
}

fn cstring(field: &'static str, s: impl AsRef<OsStr>) -> Result<CString> {
    CString::new(s.as_ref().as_bytes()).map_err(|_| Error::NulByte {
        field,
        value: s.as_ref().to_string_lossy().into_owned(),
    })
}

fn null_terminated(v: &[CString]) -> Vec<*const libc::c_char> {
    v.iter()
        .map(|c| c.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

fn read_record(f: &mut File) -> std::io::Result<Option<Record>> {
    let mut buf = [0u8; RECORD_LEN];
    let mut got = 0;
    while got < RECORD_LEN {
        match std::io::Read::read(f, &mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(Record::from_bytes(&buf)))
}

/// Enters the child's network namespace from a new thread (setns changes
/// only the calling thread's, and this one ends with the work) and brings
/// its loopback interface up there.
fn loopback_up_from_parent(pid: i32) -> Result<std::thread::JoinHandle<std::io::Result<()>>> {
    let ns = NsFd::open(format!("/proc/{pid}/ns/net"))?;
    std::thread::Builder::new()
        .name("hull-ns-lo".into())
        .spawn(move || {
            ns.enter().map_err(std::io::Error::other)?;
            let r = child::loopback_up();
            if r < 0 {
                let errno = i32::try_from(-r).unwrap_or(libc::EIO);
                return Err(std::io::Error::from_raw_os_error(errno));
            }
            Ok(())
        })
        .map_err(|source| Error::LoopbackUp { pid, source })
}

fn write_cgroup_procs(dir: &OwnedFd, pid: i32) -> Result<()> {
    let path = PathBuf::from(format!("/proc/self/fd/{}/cgroup.procs", dir.as_raw_fd()));
    write_proc_file(&path, pid.to_string().as_bytes())
}

/// Everything the child reads until it has exec'd: strings, pointer arrays,
/// ops and the plan pointing into them. Boxed, so the addresses the plan
/// holds stay valid when the box moves (into a created [`Child`]).
#[derive(Debug)]
pub(crate) struct Prepared {
    program: String,
    cwd: Option<PathBuf>,
    hostname: Option<Vec<u8>>,
    domainname: Option<Vec<u8>>,
    /// What each join entry is, for error messages.
    joins: Vec<PathBuf>,
    _argv_c: Vec<CString>,
    _envp_c: Vec<CString>,
    _paths_c: Vec<CString>,
    cwd_c: Option<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    paths: Vec<*const libc::c_char>,
    ops: PreparedOps,
    /// The v1 `tasks` files the child writes itself into, open, and their
    /// raw numbers for it.
    cgroup_task_paths: Vec<PathBuf>,
    _cgroup_tasks: Vec<OwnedFd>,
    cgroup_task_fds: Vec<i32>,
    /// The `tasks` files the child opens itself once the parent has made
    /// them (NULL-terminated), and their strings.
    cgroup_tasks_late: Vec<*const libc::c_char>,
    _cgroup_tasks_late_c: Vec<CString>,
    /// The fds the program gets as 3, 4, ..., open, and their numbers.
    _pass_fds: Vec<OwnedFd>,
    pass_fd_nums: Vec<i32>,
    plan: Option<Plan>,
}

// SAFETY: the raw pointers point into the box's own heap buffers; nothing
// else aliases them, so moving the box to another thread is fine.
unsafe impl Send for Prepared {}
// SAFETY: as above; shared references only read.
unsafe impl Sync for Prepared {}

impl Prepared {
    /// Turns a failure record into the error naming its step and object.
    fn error(&self, rec: &Record) -> Error {
        let step = Step::from_u32(rec.step).unwrap_or(Step::Exec);
        let detail = rec.detail as usize;
        let path = match step {
            Step::Exec => Some(PathBuf::from(&self.program)),
            Step::Chdir => self.cwd.clone(),
            Step::MountProc => Some("/proc".into()),
            Step::SetHostname => self
                .hostname
                .as_ref()
                .map(|h| PathBuf::from(String::from_utf8_lossy(h).into_owned())),
            Step::JoinNamespace => self.joins.get(detail).cloned(),
            Step::JoinCgroup => self.cgroup_task_paths.get(detail).cloned(),
            Step::ChildOp => self.ops.describe.get(detail).cloned(),
            Step::Stdio => Some(match detail {
                0..=2 => ["stdin", "stdout", "stderr"][detail].into(),
                n => format!("fd {n}").into(),
            }),
            _ => None,
        };
        Error::Spawn {
            program: self.program.clone(),
            step,
            path,
            source: std::io::Error::from_raw_os_error(rec.errno),
        }
    }
}

/// What the child said on the report pipe.
pub(crate) enum Report {
    /// Ready for the parent-side steps.
    Ready,
    /// Waiting at the start gate.
    AtGate,
    /// End of file: the program is running.
    Exec,
}

/// Reads the child's next report. A failure record means the child is
/// exiting: it is reaped through `pidfd`, and the record becomes the error
/// naming the step.
fn await_report(report: &mut File, prepared: &Prepared, pidfd: BorrowedFd<'_>) -> Result<Report> {
    let rec = read_record(report).map_err(|source| Error::Prepare {
        program: prepared.program.clone(),
        what: "read report pipe",
        source,
    })?;
    let Some(rec) = rec else {
        return Ok(Report::Exec);
    };
    match Step::from_u32(rec.step) {
        Some(Step::Ready) => Ok(Report::Ready),
        Some(Step::AtGate) => Ok(Report::AtGate),
        _ => {
            let _ = sys::waitid_pidfd(pidfd, libc::WEXITED);
            Err(prepared.error(&rec))
        }
    }
}

/// Kills and reaps a half-started child on an early return, and frees its
/// stack and prepared data only after that.
struct ChildGuard {
    pidfd: Option<OwnedFd>,
    stack: Option<Stack>,
    prepared: Option<Box<Prepared>>,
}

impl ChildGuard {
    /// The next report (see [`await_report`]).
    fn next_report(&mut self, report: &mut File) -> Result<Report> {
        match (self.prepared.as_deref(), self.pidfd.as_ref()) {
            (Some(prepared), Some(pidfd)) => await_report(report, prepared, pidfd.as_fd()),
            // Both are held until `disarm`, which ends the guard.
            _ => Err(Error::Prepare {
                program: String::new(),
                what: "read report pipe",
                source: std::io::Error::from_raw_os_error(libc::EBADF),
            }),
        }
    }

    /// The child has exec'd (or waits at the gate, holding the stack and
    /// data elsewhere): it is the caller's now.
    fn disarm(mut self) -> Option<OwnedFd> {
        self.stack.take();
        self.prepared.take();
        self.pidfd.take()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(fd) = self.pidfd.take() {
            let _ = sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
            let _ = sys::waitid_pidfd(fd.as_fd(), libc::WEXITED);
        }
        // Freed only now, after the child is gone.
        self.stack.take();
        self.prepared.take();
    }
}

/// Opens the start gate of a created child and waits until the program is
/// running; a failure record becomes the error.
pub(crate) fn start_pending(pending: &mut Option<Pending>, pidfd: &OwnedFd) -> Result<()> {
    let Some(mut p) = pending.take() else {
        return Ok(());
    };
    let mut gate = File::from(p.gate);
    std::io::Write::write_all(&mut gate, b"1").map_err(|source| Error::Prepare {
        program: p.prepared.program.clone(),
        what: "open start gate",
        source,
    })?;
    drop(gate);
    await_report(&mut p.report, &p.prepared, pidfd.as_fd()).map(drop)
    // `p` (with the stack and the prepared data) drops here: the child has
    // exec'd or exited.
}

enum CloneError {
    Join(Error),
    Clone(std::io::Error),
}

/// One clone3 (or clone on kernels without it) with every signal blocked,
/// so no handler of the caller's runs in the child before it resets them.
/// Returns the pid, the pidfd and whether clone3 was used.
fn clone_child(
    plan: &mut Plan,
    stack: &Stack,
    ns: Namespaces,
    copy_memory: bool,
    cgroup: Option<&OwnedFd>,
    pid_join: Option<&NsFd>,
) -> std::result::Result<(i32, OwnedFd, bool), CloneError> {
    // Joining a PID namespace: this thread's pid_for_children, restored after.
    let restore_pid = match pid_join {
        Some(target) => {
            let own = NsFd::open("/proc/thread-self/ns/pid").map_err(CloneError::Join)?;
            target.enter().map_err(CloneError::Join)?;
            Some(own)
        }
        None => None,
    };
    let mut flags = u64::from(ns.bits()) | sys::CLONE_PIDFD;
    if !copy_memory {
        flags |= libc::CLONE_VM as u64;
    }
    if cgroup.is_some() {
        flags |= sys::CLONE_INTO_CGROUP;
    }
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        stack: stack.bottom(),
        stack_size: stack.size(),
        cgroup: cgroup
            .and_then(|c| u64::try_from(c.as_raw_fd()).ok())
            .unwrap_or(0),
        ..CloneArgs::default()
    };
    let plan_addr = plan as *mut Plan as usize;
    let old_mask = sys::block_all_signals();
    // SAFETY: the stack is ours and stays mapped until the child has exec'd
    // or exited (ChildGuard); the plan and every buffer it points to live in
    // `Command::spawn`'s frame until then and are not modified; child_main
    // is async-signal-safe and never returns.
    let r = unsafe { sys::clone3_run(&mut args, child::child_main, plan_addr) };
    let result = if r == -(libc::ENOSYS as isize) {
        // Every flag but CLONE_INTO_CGROUP (dropped here) fits in an int.
        let legacy_flags =
            libc::c_int::try_from(flags & !sys::CLONE_INTO_CGROUP).unwrap_or(0) | libc::SIGCHLD;
        // SAFETY: as above, with the top of the same stack.
        unsafe {
            sys::clone_legacy(
                legacy_flags,
                stack.top(),
                child::child_main_legacy,
                plan_addr,
                &mut pidfd,
            )
        }
        .map(|pid| (pid, false))
    } else if r < 0 {
        Err(std::io::Error::from_raw_os_error(
            i32::try_from(-r).unwrap_or(libc::EINVAL),
        ))
    } else {
        Ok((i32::try_from(r).unwrap_or(0), true))
    };
    sys::restore_signals(&old_mask);
    if let Some(own) = restore_pid {
        // Going back to our own active PID namespace is always allowed.
        let _ = own.enter();
    }
    let (pid, used_clone3) = result.map_err(CloneError::Clone)?;
    // SAFETY: CLONE_PIDFD stored a new fd that nobody else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok((pid, pidfd, used_clone3))
}
