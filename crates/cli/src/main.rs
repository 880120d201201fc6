//! `hull`: an OCI runtime with runc's command line, on `hull-container`.
//!
//! ```text
//! hull [global flags] <command> [flags] <container-id> [arguments]
//! ```
//!
//! The create/start split works across processes as runc's does: `create`
//! leaves the container's process waiting on a FIFO in its state directory
//! (under `--root`, default /run/hull) and exits; `start` opens the gate.
//! Errors go to stderr and, with `--log`, to the log file as text or JSON
//! lines (`--log-format`), and the exit code is 1; `run` and `exec` exit
//! with the container process's code (128 + signal if it was killed).
//!
//! Where hull differs from runc, deliberately or for now:
//! - `linux.cgroupsPath` is taken from the root of each hierarchy, also
//!   when relative (runc puts a relative path under the caller's cgroup);
//!   without one, the container's cgroup is `hull/<id>`.
//! - `createContainer` and `startContainer` hooks run in the runtime's
//!   namespaces (see the `hooks` module).
//! - A program missing from the rootfs fails `start`, not `create` (the
//!   execve happens after the start gate opens).
//! - Unknown capability names are refused, not warned about; an ambient
//!   set is raised with the inheritable bits the kernel requires.
//! - `--systemd-cgroup` is refused by name; `--no-new-keyring` is accepted
//!   (no session keyring is made).

#![deny(unsafe_op_in_unsafe_fn)]
// The C `main` below replaces Rust's start-up (see there); the test
// harness keeps its own.
#![cfg_attr(not(test), no_main)]

mod args;
mod commands;
mod console;
mod events;
mod exec;
mod hooks;
mod log;
mod spec;
#[cfg(all(lean_start, not(test)))]
mod start;

use std::path::PathBuf;

use args::{Flag, bool_flag, val};

/// What can go wrong, each naming the thing at fault. The messages that
/// callers such as podman match on are runc's.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad command line.
    #[error("{0}")]
    Usage(String),
    /// No container with this id under the root.
    #[error("container does not exist")]
    NotFound(String),
    /// The id is taken.
    #[error("container with id exists: {0}")]
    Exists(String),
    /// The id is not a valid container id.
    #[error("invalid container id format: {0:?}")]
    BadId(String),
    /// The operation does not fit the container's status.
    #[error("{0}")]
    State(String),
    /// A library error.
    #[error("{0}")]
    Container(#[from] hull_container::Error),
    /// A file or socket operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The bundle's config.json is unusable.
    #[error("{path}: {problem}")]
    Config {
        /// The file.
        path: PathBuf,
        /// Why.
        problem: String,
    },
    /// Supported by runc, not by hull.
    #[error("{0}")]
    Unsupported(String),
    /// A hook failed.
    #[error("hooks.{kind}[{index}] {path}: {problem}")]
    Hook {
        /// The hook kind.
        kind: &'static str,
        /// Its index in the list.
        index: usize,
        /// Its path.
        path: String,
        /// Why.
        problem: String,
    },
    /// Spawning or waiting for a process failed.
    #[error("{0}")]
    Process(#[from] hull_ns::Error),
}

/// Options that come before the command.
#[derive(Debug)]
pub struct Global {
    /// `--root`: the state directory.
    pub root: PathBuf,
    /// Where messages go.
    pub log: log::Log,
}

const GLOBAL_FLAGS: &[Flag] = &[
    val("root", None),
    val("log", None),
    val("log-format", None),
    bool_flag("debug", None),
    bool_flag("systemd-cgroup", None),
    val("rootless", None),
    val("criu", None),
    bool_flag("version", Some('v')),
    bool_flag("help", Some('h')),
];

const USAGE: &str =
    "usage: hull [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND [flags] ID
commands: create start run state kill delete list ps pause resume exec events update spec features";

/// The process entry point, called by the C library in place of Rust's
/// start-up code. hull is started for every container operation, so it
/// skips what that code does and hull does not need: reading
/// /proc/self/maps to find the main thread's stack and mapping an
/// alternate signal stack, for each thread, to turn a stack overflow into a
/// message (an overflow is a plain SIGSEGV here). It keeps the two things
/// that matter: fds 0-2 are made valid (so no file the runtime opens can
/// become its stdout), and SIGPIPE is ignored (a closed pipe is an EPIPE
/// error, not a silent death). `std::env::args` still works: the standard
/// library reads the arguments from the C library's start-up on Linux.
#[cfg_attr(not(test), unsafe(no_mangle))]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    standard_fds_open();
    // SAFETY: setting a signal's disposition to SIG_IGN, before any thread.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // One malloc arena: the short-lived helper threads (cgroup, lo) would
    // each map and fault in an arena of their own otherwise.
    // SAFETY: mallopt with an integer parameter, before any thread exists.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut log = log::Log {
        file: None,
        format: log::Format::Text,
        debug: false,
    };
    let code = match real_main(&argv, &mut log) {
        Ok(code) => code,
        Err(e) => {
            log.error(&e.to_string());
            1
        }
    };
    std::process::exit(code);
}

/// Opens /dev/null on any of fds 0, 1 and 2 that is closed, as Rust's
/// start-up does: one poll(2) finds them.
fn standard_fds_open() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: poll on a live array of three pollfds, without waiting.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) };
    for p in fds {
        let closed = if r >= 0 {
            p.revents & libc::POLLNVAL != 0
        } else {
            // SAFETY: F_GETFD on a number that may not be an open fd.
            unsafe { libc::fcntl(p.fd, libc::F_GETFD) == -1 }
        };
        if closed {
            // The lowest free number, which is this one: the others below
            // it are open by now. Left open for the life of the process.
            // SAFETY: a static NUL-terminated path.
            unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        }
    }
}

fn real_main(argv: &[String], log: &mut log::Log) -> Result<i32, Error> {
    let (g, rest) = args::parse(argv, GLOBAL_FLAGS, true)?;
    log.file = g.get("log").map(PathBuf::from);
    log.debug = g.is("debug");
    log.format = match g.get("log-format").unwrap_or("text") {
        "text" => log::Format::Text,
        "json" => log::Format::Json,
        other => return Err(Error::Usage(format!("invalid log-format: {other}"))),
    };
    if g.is("version") {
        println!(
            "hull version {}\nspec: {}",
            env!("CARGO_PKG_VERSION"),
            spec::OCI_VERSION
        );
        return Ok(0);
    }
    let Some(cmd) = g.positional.first() else {
        println!("{USAGE}");
        return Ok(if g.is("help") { 0 } else { 1 });
    };
    if g.is("systemd-cgroup") {
        return Err(Error::Unsupported(
            "--systemd-cgroup is not supported: hull manages cgroupfs paths only (use podman's --cgroup-manager=cgroupfs)".into(),
        ));
    }
    if matches!(g.get("rootless"), Some("true")) {
        return Err(Error::Unsupported(
            "--rootless=true is not supported: hull runs as root".into(),
        ));
    }
    let global = Global {
        root: PathBuf::from(g.get("root").unwrap_or("/run/hull")),
        log: std::mem::replace(
            log,
            log::Log {
                file: log.file.clone(),
                format: log.format,
                debug: log.debug,
            },
        ),
    };
    global.log.debug(&format!("hull {}", argv.join(" ")));
    commands::dispatch(&global, cmd, &rest)
}
