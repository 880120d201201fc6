//! A spawned process owned through its pidfd.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::{Error, Result, sys};

/// How a process ended: an exit code or the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitStatus {
    /// It called exit with this code.
    Exited(i32),
    /// A signal killed it (`core_dumped` when it dumped core).
    Signaled {
        /// The signal number.
        signal: i32,
        /// Whether a core dump was written.
        core_dumped: bool,
    },
}

impl ExitStatus {
    /// True for `Exited(0)`.
    pub fn success(self) -> bool {
        self == ExitStatus::Exited(0)
    }

    /// The exit code, if it exited.
    pub fn code(self) -> Option<i32> {
        match self {
            ExitStatus::Exited(c) => Some(c),
            ExitStatus::Signaled { .. } => None,
        }
    }

    /// The signal that killed it, if one did.
    pub fn signal(self) -> Option<i32> {
        match self {
            ExitStatus::Signaled { signal, .. } => Some(signal),
            ExitStatus::Exited(_) => None,
        }
    }

    /// The shell's convention: the code, or 128 + the signal.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled { signal, .. } => 128 + signal,
        }
    }

    pub(crate) fn from_siginfo(code: i32, status: i32) -> ExitStatus {
        match code {
            libc::CLD_EXITED => ExitStatus::Exited(status),
            libc::CLD_DUMPED => ExitStatus::Signaled {
                signal: status,
                core_dumped: true,
            },
            _ => ExitStatus::Signaled {
                signal: status,
                core_dumped: false,
            },
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Exited(c) => write!(f, "exit status {c}"),
            ExitStatus::Signaled {
                signal,
                core_dumped,
            } => write!(
                f,
                "killed by signal {signal}{}",
                if *core_dumped { " (core dumped)" } else { "" }
            ),
        }
    }
}

/// A spawned process, owned through a pidfd.
///
/// Waiting and signalling go through the pidfd, so a recycled pid can never
/// be hit by mistake and no SIGCHLD handler is involved. Dropping a `Child`
/// neither waits for nor kills the process (as with `std::process::Child`);
/// a process never waited for stays a zombie until the caller exits.
#[derive(Debug)]
pub struct Child {
    pub(crate) pid: i32,
    pub(crate) pidfd: OwnedFd,
    pub(crate) status: Option<ExitStatus>,
    /// Set while a created child waits at its start gate.
    pub(crate) pending: Option<Pending>,
    /// The write end of the child's stdin, when it was piped.
    pub stdin: Option<File>,
    /// The read end of the child's stdout, when it was piped.
    pub stdout: Option<File>,
    /// The read end of the child's stderr, when it was piped.
    pub stderr: Option<File>,
}

/// What a created child (waiting at its start gate) still needs from the
/// parent: the gate, the report pipe, and the stack and data it may still
/// be using.
#[derive(Debug)]
pub(crate) struct Pending {
    pub gate: OwnedFd,
    pub report: File,
    pub _stack: Option<crate::sys::Stack>,
    pub prepared: Box<crate::spawn::Prepared>,
}

/// The output of a finished process ([`Command::output`](crate::Command::output)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// How it ended.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
}

impl Child {
    /// The process id, as seen from the caller's PID namespace.
    pub fn id(&self) -> i32 {
        self.pid
    }

    /// True while the child waits at its start gate
    /// ([`Command::start_gate`](crate::Command::start_gate)).
    pub fn is_created(&self) -> bool {
        self.pending.is_some()
    }

    /// Lets a created child run: opens its start gate and returns once the
    /// program is running. Does nothing for a child that was not created
    /// with a gate or was started already.
    ///
    /// # Errors
    /// [`Error::Spawn`] if execve (or another last step) failed; the child
    /// has then exited and been reaped.
    pub fn start(&mut self) -> Result<()> {
        let r = crate::spawn::start_pending(&mut self.pending, &self.pidfd);
        if r.is_err() {
            self.status = Some(ExitStatus::Exited(127));
        }
        r
    }

    /// Gives up a created child without starting or killing it: it keeps
    /// waiting at its gate (started through a FIFO gate by another process,
    /// or killed), and the memory it still reads is deliberately leaked so
    /// it stays valid. Returns the pid. For a running child this is the
    /// same as dropping it.
    pub fn detach(mut self) -> i32 {
        if let Some(p) = self.pending.take() {
            std::mem::forget(p._stack);
            std::mem::forget(p.prepared);
        }
        self.pid
    }

    /// The pidfd (readable when the process has exited, for poll/epoll).
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Waits for the process to exit and reaps it; later calls return the
    /// same status.
    ///
    /// # Errors
    /// [`Error::Wait`].
    pub fn wait(&mut self) -> Result<ExitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        let (code, status) = sys::waitid_pidfd(self.pidfd.as_fd(), libc::WEXITED)
            .map_err(|source| Error::Wait {
                pid: self.pid,
                source,
            })?
            .ok_or_else(|| Error::Wait {
                pid: self.pid,
                source: std::io::Error::from_raw_os_error(libc::ECHILD),
            })?;
        let s = ExitStatus::from_siginfo(code, status);
        self.status = Some(s);
        Ok(s)
    }

    /// Reaps the process if it has exited, without blocking.
    ///
    /// # Errors
    /// [`Error::Wait`].
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        let r = sys::waitid_pidfd(self.pidfd.as_fd(), libc::WEXITED | libc::WNOHANG).map_err(
            |source| Error::Wait {
                pid: self.pid,
                source,
            },
        )?;
        Ok(r.map(|(code, status)| {
            let s = ExitStatus::from_siginfo(code, status);
            self.status = Some(s);
            s
        }))
    }

    /// Sends `signal` through the pidfd: pidfd_send_signal(2). Signalling a
    /// process that has exited but was not reaped yet is not an error.
    ///
    /// # Errors
    /// [`Error::Signal`] (`ESRCH` once the process was reaped).
    #[doc(alias = "pidfd_send_signal")]
    pub fn kill(&self, signal: i32) -> Result<()> {
        sys::pidfd_send_signal(self.pidfd.as_fd(), signal).map_err(|source| Error::Signal {
            pid: self.pid,
            signal,
            source,
        })
    }

    /// Closes stdin, reads stdout and stderr to the end, and waits.
    ///
    /// # Errors
    /// [`Error::Wait`] (reading the pipes is part of waiting).
    pub fn wait_with_output(mut self) -> Result<Output> {
        drop(self.stdin.take());
        let err_reader = self.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut v = Vec::new();
                let _ = e.read_to_end(&mut v);
                v
            })
        });
        let mut stdout = Vec::new();
        if let Some(mut o) = self.stdout.take() {
            o.read_to_end(&mut stdout).map_err(|source| Error::Wait {
                pid: self.pid,
                source,
            })?;
        }
        let stderr = err_reader
            .map(|t| t.join().unwrap_or_default())
            .unwrap_or_default();
        let status = self.wait()?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

impl Drop for Child {
    /// A created child that was never started is killed and reaped, and
    /// only then is the memory it was using freed. A running child is left
    /// alone.
    fn drop(&mut self) {
        if let Some(p) = self.pending.take() {
            let _ = sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL);
            let _ = sys::waitid_pidfd(self.pidfd.as_fd(), libc::WEXITED);
            drop(p);
        }
    }
}

impl AsFd for Child {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }
}
