//! hull-cgroup: cgroups v1, v2 and hybrid hosts, with typed resources,
//! statistics and events.
//!
//! - [`Layout::detect`] reads `/proc/self/mountinfo` and `/proc/self/cgroup`
//!   and tells v1, v2 and hybrid hosts apart (v1 controllers plus a cgroup2
//!   mount such as `/sys/fs/cgroup/unified`), with the mount point of every
//!   controller and the current process's cgroups.
//! - [`Resources`] is a typed builder validated at `build()`; applying it
//!   converts between v1 and v2 spellings with runc's formulas
//!   ([`resources::shares_to_weight`], [`resources::swap_to_v2`], ...), and
//!   a setting the host cannot honour is an [`Error`], never dropped.
//! - [`Cgroup`] creates a cgroup in every hierarchy it needs, applies and
//!   updates resources, adds processes and threads, freezes, thaws, kills
//!   everything inside, nests, hands out the v2 directory fd for
//!   `CLONE_INTO_CGROUP`, and deletes itself leaf first (also on drop).
//! - [`Cgroup::stats`] returns typed [`Stats`]; the parsers behind it
//!   ([`parse`], [`stats`]) never panic on any input.
//! - [`Cgroup::memory_events`] waits for OOM and OOM-kill events (v1
//!   eventfd + `cgroup.event_control`, v2 `memory.events` + inotify).
//!
//! Device rules are `devices.allow`/`devices.deny` on v1 and an eBPF device
//! program attached to the cgroup on v2 (as runc and crun do).
//!
//! ```no_run
//! use hull_cgroup::{Cgroup, Layout, Limit, Resources};
//!
//! let layout = Layout::detect()?;
//! let mut cg = Cgroup::create(&layout, "/my-container")?;
//! cg.apply(
//!     &Resources::builder()
//!         .cpu_quota(50_000, 100_000) // half a CPU
//!         .memory_limit(256 << 20)
//!         .pids_max(Limit::Value(64))
//!         .build()?,
//! )?;
//! cg.add_process(1234)?;
//! let stats = cg.stats()?;
//! println!("memory in use: {:?}", stats.memory.map(|m| m.usage));
//! cg.kill()?;
//! cg.delete()?;
//! # Ok::<(), hull_cgroup::Error>(())
//! ```
#![deny(unsafe_code)]

mod bpf;
pub mod cgroup;
pub mod error;
pub mod events;
pub mod layout;
pub mod parse;
pub mod resources;
pub mod stats;
mod sys;

pub use cgroup::Cgroup;
pub use error::{Error, ParseError, Result};
pub use events::{MemoryEvent, MemoryEvents};
pub use layout::{Controller, Layout, Mode, V1Hierarchy, V2Hierarchy};
pub use parse::{DeviceNumber, Limit};
pub use resources::{
    CpuWeight, DeviceKind, DeviceRule, IoLimit, IoLimitKind, IoWeight, Resources, ResourcesBuilder,
    Setting,
};
pub use stats::{
    CpuStats, HugetlbStats, IoDeviceStats, MemoryStats, PidsStats, PressureStats, Stats,
};
