//! Waiting for memory events (OOM, OOM kill, limit hits) of a cgroup: v1
//! through `cgroup.event_control` and an eventfd, v2 by watching
//! `memory.events` with inotify.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cgroup::{Cgroup, open_file};
use crate::error::{Error, Result};
use crate::layout::Controller;
use crate::parse::{keyed, parse_flat_keyed};
use crate::sys;

/// Something that happened to a cgroup's memory, with how many times since
/// the last report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryEvent {
    /// The cgroup ran out of memory (v1 eventfd notification; v2 `oom`).
    Oom {
        /// Occurrences since the last report.
        count: u64,
    },
    /// The OOM killer killed a process of the cgroup.
    OomKill {
        /// Kills since the last report.
        count: u64,
    },
    /// Usage hit the hard limit (v2 `max`).
    Max {
        /// Occurrences since the last report.
        count: u64,
    },
    /// Usage went over `memory.high` (v2 `high`).
    High {
        /// Occurrences since the last report.
        count: u64,
    },
    /// The cgroup was removed; no further events will come.
    Removed,
}

/// How often v1 re-reads `memory.oom_control` for kill counts, which have
/// no notification of their own.
const V1_TICK: Duration = Duration::from_millis(50);

#[derive(Debug)]
enum Source {
    V1 {
        efd: OwnedFd,
        // Kept open: the kernel's registration lives as long as this file.
        _oom_control: File,
    },
    V2 {
        inotify: OwnedFd,
    },
}

/// A subscription to a cgroup's memory events; see [`Cgroup::memory_events`].
#[derive(Debug)]
pub struct MemoryEvents {
    source: Source,
    dir: PathBuf,
    file: PathBuf,
    last: Counters,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counters {
    oom: u64,
    oom_kill: u64,
    max: u64,
    high: u64,
}

fn ev_err<'a>(
    what: &'static str,
    path: &'a std::path::Path,
) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Event {
        what,
        path: path.to_path_buf(),
        source,
    }
}

impl Cgroup {
    /// Subscribes to this cgroup's memory events. Events are those after
    /// this call.
    ///
    /// # Errors
    /// [`Error::ControllerUnavailable`] without the memory controller,
    /// [`Error::Event`] when eventfd/inotify setup fails, [`Error::Write`]
    /// on `cgroup.event_control`.
    pub fn memory_events(&self) -> Result<MemoryEvents> {
        let dir = self
            .dir_of(Controller::Memory)
            .ok_or(Error::ControllerUnavailable {
                controller: Controller::Memory,
            })?
            .to_path_buf();
        if self.layout().is_v2(Controller::Memory) {
            let file = dir.join("memory.events");
            let inotify = sys::inotify().map_err(ev_err("inotify_init1", &file))?;
            sys::inotify_watch(inotify.as_fd(), &file)
                .map_err(ev_err("inotify_add_watch", &file))?;
            let mut me = MemoryEvents {
                source: Source::V2 { inotify },
                dir,
                file,
                last: Counters::default(),
            };
            me.last = me.read_counters()?;
            return Ok(me);
        }
        let file = dir.join("memory.oom_control");
        let efd = sys::eventfd().map_err(ev_err("eventfd2", &file))?;
        let oc = open_file(&file)?;
        let ctl = dir.join("cgroup.event_control");
        let line = format!("{} {}", efd.as_raw_fd(), oc.as_raw_fd());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&ctl)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .map_err(|source| Error::Write {
                path: ctl.clone(),
                value: line.clone(),
                source,
            })?;
        let mut me = MemoryEvents {
            source: Source::V1 {
                efd,
                _oom_control: oc,
            },
            dir,
            file,
            last: Counters::default(),
        };
        me.last = me.read_counters()?;
        Ok(me)
    }
}

impl MemoryEvents {
    fn read_counters(&self) -> Result<Counters> {
        let text = match crate::cgroup::read_kernel_file(&self.file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(self.last),
            Err(source) => {
                return Err(Error::Read {
                    path: self.file.clone(),
                    source,
                });
            }
        };
        let e = parse_flat_keyed(&text).map_err(|source| Error::Parse {
            path: self.file.clone(),
            source,
        })?;
        let g = |k| keyed(&e, k).unwrap_or(0);
        Ok(match self.source {
            Source::V1 { .. } => Counters {
                oom_kill: g("oom_kill"),
                ..Counters::default()
            },
            Source::V2 { .. } => Counters {
                oom: g("oom"),
                oom_kill: g("oom_kill"),
                max: g("max"),
                high: g("high"),
            },
        })
    }

    fn diff(&mut self, v1_ooms: u64) -> Result<Vec<MemoryEvent>> {
        let now = self.read_counters()?;
        let d = |a: u64, b: u64| a.saturating_sub(b);
        let mut out = Vec::new();
        let oom = v1_ooms + d(now.oom, self.last.oom);
        if oom > 0 {
            out.push(MemoryEvent::Oom { count: oom });
        }
        for (count, ev) in [
            (
                d(now.oom_kill, self.last.oom_kill),
                MemoryEvent::OomKill { count: 0 },
            ),
            (d(now.max, self.last.max), MemoryEvent::Max { count: 0 }),
            (d(now.high, self.last.high), MemoryEvent::High { count: 0 }),
        ] {
            if count > 0 {
                out.push(match ev {
                    MemoryEvent::OomKill { .. } => MemoryEvent::OomKill { count },
                    MemoryEvent::Max { .. } => MemoryEvent::Max { count },
                    _ => MemoryEvent::High { count },
                });
            }
        }
        self.last = now;
        if !self.dir.exists() {
            out.push(MemoryEvent::Removed);
        }
        Ok(out)
    }

    /// Waits until at least one event happens, or `timeout` passes (an
    /// empty list then). `None` waits forever.
    ///
    /// # Errors
    /// [`Error::Event`] from poll/read, [`Error::Read`]/[`Error::Parse`] on
    /// the events file.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<Vec<MemoryEvent>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            // Counters may have moved before the first wait, and on v1 the
            // kill is counted only after the eventfd fired for the OOM.
            let ev = self.diff(0)?;
            if !ev.is_empty() {
                return Ok(ev);
            }
            let mut left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left == Some(Duration::ZERO) {
                return Ok(Vec::new());
            }
            if matches!(self.source, Source::V1 { .. }) {
                left = Some(left.map_or(V1_TICK, |l| l.min(V1_TICK)));
            }
            let fd = match &self.source {
                Source::V1 { efd, .. } => efd.as_fd(),
                Source::V2 { inotify } => inotify.as_fd(),
            };
            let ready = sys::poll_readable(fd, left).map_err(ev_err("poll", &self.file))?;
            if !ready {
                continue;
            }
            let mut buf = [0u8; 4096];
            let n = match sys::read(fd, &mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
                Err(e) => return Err(ev_err("read", &self.file)(e)),
            };
            if let Source::V1 { .. } = self.source {
                let mut c = [0u8; 8];
                if n >= 8 {
                    c.copy_from_slice(&buf[..8]);
                }
                let ev = self.diff(u64::from_ne_bytes(c))?;
                if !ev.is_empty() {
                    return Ok(ev);
                }
            }
        }
    }
}
