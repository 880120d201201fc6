//! [`Resources`]: the limits a cgroup should have, in one typed value that is
//! validated when built, and its translation into control-file writes for
//! v1 or v2 (with the conversions runc uses between the two spellings).

use std::collections::BTreeSet;
use std::fmt;

use crate::error::{Error, Result};
use crate::layout::{Controller, Layout};
use crate::parse::{DeviceNumber, Limit, render_cpu_list};

/// CPU weight, in either spelling; converted to the host's one on apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuWeight {
    /// v1 `cpu.shares` (2 ..= 262144, default 1024).
    Shares(u64),
    /// v2 `cpu.weight` (1 ..= 10000, default 100).
    Weight(u64),
}

/// Block-I/O weight, in either spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoWeight {
    /// v1 `blkio.weight` (10 ..= 1000).
    Blkio(u16),
    /// v2 `io.weight` (1 ..= 10000).
    Io(u16),
}

/// Which I/O throttle a rate applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoLimitKind {
    /// Bytes read per second.
    ReadBps,
    /// Bytes written per second.
    WriteBps,
    /// Read operations per second.
    ReadIops,
    /// Write operations per second.
    WriteIops,
}

impl IoLimitKind {
    fn v1_file(self) -> &'static str {
        match self {
            IoLimitKind::ReadBps => "blkio.throttle.read_bps_device",
            IoLimitKind::WriteBps => "blkio.throttle.write_bps_device",
            IoLimitKind::ReadIops => "blkio.throttle.read_iops_device",
            IoLimitKind::WriteIops => "blkio.throttle.write_iops_device",
        }
    }
    fn v2_key(self) -> &'static str {
        match self {
            IoLimitKind::ReadBps => "rbps",
            IoLimitKind::WriteBps => "wbps",
            IoLimitKind::ReadIops => "riops",
            IoLimitKind::WriteIops => "wiops",
        }
    }
}

/// One I/O throttle on one block device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoLimit {
    /// The block device.
    pub device: DeviceNumber,
    /// What is limited.
    pub kind: IoLimitKind,
    /// The rate (bytes or operations per second).
    pub rate: u64,
}

/// Device kind in a device rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// Every device (`a`).
    All,
    /// Character devices (`c`).
    Char,
    /// Block devices (`b`).
    Block,
}

/// One device-access rule (`c 1:3 rwm`); `None` numbers mean `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    /// Allow (true) or deny (false).
    pub allow: bool,
    /// Device kind.
    pub kind: DeviceKind,
    /// Major number, or any.
    pub major: Option<u32>,
    /// Minor number, or any.
    pub minor: Option<u32>,
    /// Read access.
    pub read: bool,
    /// Write access.
    pub write: bool,
    /// mknod.
    pub mknod: bool,
}

impl fmt::Display for DeviceRule {
    /// The v1 `devices.allow`/`devices.deny` spelling: `c 1:3 rwm`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = match self.kind {
            DeviceKind::All => 'a',
            DeviceKind::Char => 'c',
            DeviceKind::Block => 'b',
        };
        let n = |x: Option<u32>| x.map_or_else(|| "*".to_string(), |v| v.to_string());
        write!(f, "{k} {}:{} ", n(self.major), n(self.minor))?;
        if self.read {
            f.write_str("r")?;
        }
        if self.write {
            f.write_str("w")?;
        }
        if self.mknod {
            f.write_str("m")?;
        }
        Ok(())
    }
}

/// The resources of a cgroup. Build with [`Resources::builder`]; a built
/// value is always valid (ranges, consistency); whether the host can honour
/// it is checked when it is applied.
///
/// ```
/// use hull_cgroup::{Resources, CpuWeight, Limit};
/// let r = Resources::builder()
///     .cpu_weight(CpuWeight::Shares(512))
///     .cpu_quota(10_000, 100_000)
///     .memory_limit(64 << 20)
///     .pids_max(Limit::Value(32))
///     .build()?;
/// assert_eq!(r.cpu_weight(), Some(CpuWeight::Shares(512)));
/// # Ok::<(), hull_cgroup::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    cpu_weight: Option<CpuWeight>,
    cpu_quota: Option<Limit>,
    cpu_period: Option<u64>,
    cpu_burst: Option<u64>,
    rt_runtime: Option<i64>,
    rt_period: Option<u64>,
    cpus: Option<BTreeSet<u32>>,
    mems: Option<BTreeSet<u32>>,
    memory_limit: Option<Limit>,
    memory_low: Option<Limit>,
    memory_high: Option<Limit>,
    memory_swap: Option<Limit>,
    swappiness: Option<u64>,
    oom_kill_disable: Option<bool>,
    pids_max: Option<Limit>,
    io_weight: Option<IoWeight>,
    io_device_weights: Vec<(DeviceNumber, IoWeight)>,
    io_limits: Vec<IoLimit>,
    devices: Vec<DeviceRule>,
    hugetlb: Vec<(String, Limit)>,
    net_cls_classid: Option<u32>,
    net_prio: Vec<(String, u32)>,
    frozen: Option<bool>,
}

/// Builder for [`Resources`]; [`ResourcesBuilder::build`] validates.
#[derive(Debug, Clone, Default)]
pub struct ResourcesBuilder {
    r: Resources,
}

macro_rules! getter {
    ($(#[$m:meta])* $name:ident: $t:ty) => {
        $(#[$m])*
        pub fn $name(&self) -> $t {
            self.$name.clone()
        }
    };
}

impl Resources {
    /// A builder with nothing set.
    pub fn builder() -> ResourcesBuilder {
        ResourcesBuilder::default()
    }

    getter!(/// CPU weight.
        cpu_weight: Option<CpuWeight>);
    getter!(/// CPU quota per period, µs.
        cpu_quota: Option<Limit>);
    getter!(/// CPU period, µs.
        cpu_period: Option<u64>);
    getter!(/// CPU burst, µs.
        cpu_burst: Option<u64>);
    getter!(/// Memory limit, bytes.
        memory_limit: Option<Limit>);
    getter!(/// Memory reservation (v1 soft limit, v2 `memory.low`), bytes.
        memory_low: Option<Limit>);
    getter!(/// Memory+swap limit, bytes (v1 spelling).
        memory_swap: Option<Limit>);
    getter!(/// Maximum number of tasks.
        pids_max: Option<Limit>);
    getter!(/// Allowed CPUs.
        cpus: Option<BTreeSet<u32>>);
    getter!(/// Device rules, in order.
        devices: Vec<DeviceRule>);
    getter!(/// Freezer state.
        frozen: Option<bool>);

    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Resources::default()
    }
}

impl ResourcesBuilder {
    /// CPU weight (shares or weight; converted as needed).
    pub fn cpu_weight(mut self, w: CpuWeight) -> Self {
        self.r.cpu_weight = Some(w);
        self
    }
    /// CPU bandwidth: `quota_us` of CPU time every `period_us`.
    pub fn cpu_quota(mut self, quota_us: u64, period_us: u64) -> Self {
        self.r.cpu_quota = Some(Limit::Value(quota_us));
        self.r.cpu_period = Some(period_us);
        self
    }
    /// Removes a CPU bandwidth limit (quota `max`).
    pub fn cpu_unlimited(mut self) -> Self {
        self.r.cpu_quota = Some(Limit::Max);
        self
    }
    /// CPU burst in µs (`cpu.cfs_burst_us` / `cpu.max.burst`).
    pub fn cpu_burst(mut self, burst_us: u64) -> Self {
        self.r.cpu_burst = Some(burst_us);
        self
    }
    /// Realtime runtime and period in µs (v1 with CONFIG_RT_GROUP_SCHED only).
    pub fn cpu_realtime(mut self, runtime_us: i64, period_us: u64) -> Self {
        self.r.rt_runtime = Some(runtime_us);
        self.r.rt_period = Some(period_us);
        self
    }
    /// Allowed CPUs, e.g. `"0-1,3"`; checked against the parent on apply.
    pub fn cpus(mut self, list: &str) -> Result<Self> {
        self.r.cpus = Some(parse_set("cpuset.cpus", list)?);
        Ok(self)
    }
    /// Allowed memory nodes, e.g. `"0"`.
    pub fn mems(mut self, list: &str) -> Result<Self> {
        self.r.mems = Some(parse_set("cpuset.mems", list)?);
        Ok(self)
    }
    /// Memory limit in bytes.
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.r.memory_limit = Some(Limit::Value(bytes));
        self
    }
    /// Memory limit as a [`Limit`] (`Max` removes it).
    pub fn memory_limit_opt(mut self, l: Limit) -> Self {
        self.r.memory_limit = Some(l);
        self
    }
    /// Memory reservation: v1 `memory.soft_limit_in_bytes`, v2 `memory.low`.
    pub fn memory_low(mut self, l: Limit) -> Self {
        self.r.memory_low = Some(l);
        self
    }
    /// v2 `memory.high` (throttling threshold; no v1 equivalent).
    pub fn memory_high(mut self, l: Limit) -> Self {
        self.r.memory_high = Some(l);
        self
    }
    /// Memory plus swap limit (v1 semantics, as in OCI); on v2 the swap part
    /// alone goes to `memory.swap.max`.
    pub fn memory_swap(mut self, l: Limit) -> Self {
        self.r.memory_swap = Some(l);
        self
    }
    /// v1 `memory.swappiness` (0 ..= 100).
    pub fn swappiness(mut self, v: u64) -> Self {
        self.r.swappiness = Some(v);
        self
    }
    /// v1 `memory.oom_control`: disable the OOM killer (tasks wait instead).
    pub fn oom_kill_disable(mut self, v: bool) -> Self {
        self.r.oom_kill_disable = Some(v);
        self
    }
    /// Maximum number of tasks (`pids.max`).
    pub fn pids_max(mut self, l: Limit) -> Self {
        self.r.pids_max = Some(l);
        self
    }
    /// Block-I/O weight.
    pub fn io_weight(mut self, w: IoWeight) -> Self {
        self.r.io_weight = Some(w);
        self
    }
    /// Block-I/O weight for one device.
    pub fn io_device_weight(mut self, device: DeviceNumber, w: IoWeight) -> Self {
        self.r.io_device_weights.push((device, w));
        self
    }
    /// An I/O throttle on one device.
    pub fn io_limit(mut self, device: DeviceNumber, kind: IoLimitKind, rate: u64) -> Self {
        self.r.io_limits.push(IoLimit { device, kind, rate });
        self
    }
    /// A device access rule (applied in order).
    pub fn device(mut self, rule: DeviceRule) -> Self {
        self.r.devices.push(rule);
        self
    }
    /// A hugetlb limit for one page size (`"2MB"`, `"1GB"`).
    pub fn hugetlb(mut self, page_size: &str, l: Limit) -> Self {
        self.r.hugetlb.push((page_size.to_string(), l));
        self
    }
    /// v1 `net_cls.classid`.
    pub fn net_cls_classid(mut self, id: u32) -> Self {
        self.r.net_cls_classid = Some(id);
        self
    }
    /// v1 `net_prio.ifpriomap` entry.
    pub fn net_prio(mut self, iface: &str, prio: u32) -> Self {
        self.r.net_prio.push((iface.to_string(), prio));
        self
    }

    /// Freezer state to put the cgroup in (see [`crate::Cgroup::freeze`]).
    pub fn frozen(mut self, frozen: bool) -> Self {
        self.r.frozen = Some(frozen);
        self
    }

    /// Validates and returns the resources.
    ///
    /// # Errors
    /// [`Error::InvalidResource`] naming the first bad field.
    pub fn build(self) -> Result<Resources> {
        let r = self.r;
        let bad = |field: &'static str, value: String, reason: &'static str| {
            Err(Error::InvalidResource {
                field,
                value,
                reason,
            })
        };
        match r.cpu_weight {
            Some(CpuWeight::Shares(s)) if !(2..=262_144).contains(&s) => {
                return bad("cpu.shares", s.to_string(), "must be 2 ..= 262144");
            }
            Some(CpuWeight::Weight(w)) if !(1..=10_000).contains(&w) => {
                return bad("cpu.weight", w.to_string(), "must be 1 ..= 10000");
            }
            _ => {}
        }
        if let Some(p) = r.cpu_period {
            if !(1_000..=1_000_000).contains(&p) {
                return bad("cpu.period", p.to_string(), "must be 1000 ..= 1000000 µs");
            }
        }
        if let Some(Limit::Value(q)) = r.cpu_quota {
            if q < 1_000 {
                return bad("cpu.quota", q.to_string(), "must be at least 1000 µs");
            }
            if q > i64::MAX as u64 / 1000 {
                return bad("cpu.quota", q.to_string(), "too large");
            }
        }
        if let Some(b) = r.cpu_burst {
            match r.cpu_quota {
                Some(Limit::Value(q)) if b <= q => {}
                _ => {
                    return bad(
                        "cpu.burst",
                        b.to_string(),
                        "needs a cpu quota at least as large as the burst",
                    );
                }
            }
        }
        if let (Some(rt), Some(p)) = (r.rt_runtime, r.rt_period) {
            if !(1..=1_000_000).contains(&p) {
                return bad("cpu.rt_period", p.to_string(), "must be 1 ..= 1000000 µs");
            }
            if rt != -1 && (rt < 0 || rt.unsigned_abs() > p) {
                return bad(
                    "cpu.rt_runtime",
                    rt.to_string(),
                    "must be -1 or 0 ..= rt_period",
                );
            }
        }
        for (field, l) in [
            ("memory.limit", r.memory_limit),
            ("memory.low", r.memory_low),
            ("memory.high", r.memory_high),
            ("memory.swap", r.memory_swap),
        ] {
            if let Some(Limit::Value(v)) = l {
                if v == 0 || v >= crate::parse::V1_UNLIMITED {
                    return bad(
                        field,
                        v.to_string(),
                        "must be above 0 and below 2^63 - 4096",
                    );
                }
            }
        }
        if let Some(Limit::Value(s)) = r.memory_swap {
            match r.memory_limit {
                Some(Limit::Value(m)) if s >= m => {}
                Some(Limit::Value(_)) => {
                    return bad(
                        "memory.swap",
                        s.to_string(),
                        "memory+swap must be >= the memory limit",
                    );
                }
                _ => {
                    return bad(
                        "memory.swap",
                        s.to_string(),
                        "a swap limit needs a memory limit",
                    );
                }
            }
        }
        if let Some(s) = r.swappiness {
            if s > 100 {
                return bad("memory.swappiness", s.to_string(), "must be 0 ..= 100");
            }
        }
        for w in r
            .io_weight
            .iter()
            .chain(r.io_device_weights.iter().map(|(_, w)| w))
        {
            match *w {
                IoWeight::Blkio(v) if !(10..=1000).contains(&v) => {
                    return bad("blkio.weight", v.to_string(), "must be 10 ..= 1000");
                }
                IoWeight::Io(v) if !(1..=10_000).contains(&v) => {
                    return bad("io.weight", v.to_string(), "must be 1 ..= 10000");
                }
                _ => {}
            }
        }
        for d in &r.devices {
            if d.kind == DeviceKind::All && (d.major.is_some() || d.minor.is_some()) {
                return bad("devices", d.to_string(), "type 'a' takes no device numbers");
            }
            if !(d.read || d.write || d.mknod) {
                return bad("devices", d.to_string(), "no access (r, w, m) given");
            }
        }
        for (size, _) in &r.hugetlb {
            if !valid_page_size(size) {
                return bad(
                    "hugetlb",
                    size.clone(),
                    "page size must look like 2MB, 1GB or 64KB",
                );
            }
        }
        for (iface, _) in &r.net_prio {
            if iface.is_empty()
                || iface.len() > 15
                || iface
                    .bytes()
                    .any(|b| b == b'/' || b.is_ascii_whitespace() || b == 0)
            {
                return bad("net_prio.ifpriomap", iface.clone(), "not an interface name");
            }
        }
        Ok(r)
    }
}

fn parse_set(field: &'static str, list: &str) -> Result<BTreeSet<u32>> {
    let set = crate::parse::parse_cpu_list(list).map_err(|e| Error::InvalidResource {
        field,
        value: list.to_string(),
        reason: e.reason,
    })?;
    if set.is_empty() {
        return Err(Error::InvalidResource {
            field,
            value: list.to_string(),
            reason: "empty list",
        });
    }
    Ok(set)
}

fn valid_page_size(s: &str) -> bool {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && digits <= 6 && matches!(&s[digits..], "KB" | "MB" | "GB")
}

/// v1 `cpu.shares` → v2 `cpu.weight`, runc's formula:
/// `1 + (shares - 2) * 9999 / 262142` (0 stays 0, meaning unset).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

/// v2 `cpu.weight` → v1 `cpu.shares`, the inverse of runc's formula,
/// rounded up so that weight → shares → weight is exact:
/// `2 + ceil((weight - 1) * 262142 / 9999)`.
pub fn weight_to_shares(weight: u64) -> u64 {
    if weight == 0 {
        return 0;
    }
    let w = weight.clamp(1, 10_000);
    2 + ((w - 1) * 262_142).div_ceil(9999)
}

/// v1 `blkio.weight` → v2 `io.weight`, runc's formula:
/// `1 + (weight - 10) * 9999 / 990`.
pub fn blkio_to_io_weight(w: u16) -> u16 {
    if w == 0 {
        return 0;
    }
    let w = u32::from(w.clamp(10, 1000));
    u16::try_from(1 + ((w - 10) * 9999) / 990).unwrap_or(10_000)
}

/// v2 `io.weight` → v1 `blkio.weight`, the inverse of runc's formula rounded
/// up: `10 + ceil((weight - 1) * 990 / 9999)`.
pub fn io_to_blkio_weight(w: u16) -> u16 {
    if w == 0 {
        return 0;
    }
    let w = u32::from(w.clamp(1, 10_000));
    u16::try_from(10 + ((w - 1) * 990).div_ceil(9999)).unwrap_or(1000)
}

/// v1 memory+swap limit → v2 `memory.swap.max`, runc's rules: unlimited stays
/// unlimited, otherwise the swap part is `memory_swap - memory`.
///
/// # Errors
/// [`Error::InvalidResource`] when a swap limit comes without a memory limit
/// or is below it.
pub fn swap_to_v2(memory_swap: Limit, memory: Option<Limit>) -> Result<Limit> {
    match (memory_swap, memory) {
        (Limit::Max, _) => Ok(Limit::Max),
        (Limit::Value(s), Some(Limit::Value(m))) if s >= m => Ok(Limit::Value(s - m)),
        (Limit::Value(s), Some(Limit::Value(_))) => Err(Error::InvalidResource {
            field: "memory.swap",
            value: s.to_string(),
            reason: "memory+swap must be >= the memory limit",
        }),
        (Limit::Value(s), _) => Err(Error::InvalidResource {
            field: "memory.swap",
            value: s.to_string(),
            reason: "a swap limit needs a memory limit",
        }),
    }
}

/// v2 `memory.swap.max` → v1 memory+swap limit (`memory + swap`).
pub fn swap_to_v1(swap: Limit, memory: Limit) -> Limit {
    match (swap, memory) {
        (Limit::Value(s), Limit::Value(m)) => Limit::Value(s.saturating_add(m)),
        _ => Limit::Max,
    }
}

/// One control-file write that applying [`Resources`] performs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The controller whose directory holds the file.
    pub controller: Controller,
    /// The control file name.
    pub file: String,
    /// The value.
    pub value: String,
}

fn v1_limit(l: Limit) -> String {
    match l {
        Limit::Max => "-1".into(),
        Limit::Value(v) => v.to_string(),
    }
}

fn v2_limit(l: Limit) -> String {
    match l {
        Limit::Max => "max".into(),
        Limit::Value(v) => v.to_string(),
    }
}

impl Resources {
    /// The control-file writes that apply these resources on `layout`, in
    /// order. Pure: no file is touched.
    ///
    /// # Errors
    /// [`Error::ControllerUnavailable`] when a needed controller is absent,
    /// [`Error::Unsupported`] for a setting the host's cgroup version lacks
    /// (never silently dropped).
    pub fn settings(&self, layout: &Layout) -> Result<Vec<Setting>> {
        let mut out = Vec::new();
        let mut push = |c: Controller, file: &str, value: String| {
            out.push(Setting {
                controller: c,
                file: file.to_string(),
                value,
            });
        };
        let need = |c: Controller| -> Result<bool> {
            if layout.has(c) {
                Ok(layout.is_v2(c))
            } else {
                Err(Error::ControllerUnavailable { controller: c })
            }
        };
        use Controller as C;
        // cpu
        if self.cpu_weight.is_some()
            || self.cpu_quota.is_some()
            || self.cpu_burst.is_some()
            || self.rt_runtime.is_some()
        {
            let v2 = need(C::Cpu)?;
            if let Some(w) = self.cpu_weight {
                if v2 {
                    let w = match w {
                        CpuWeight::Shares(s) => shares_to_weight(s),
                        CpuWeight::Weight(w) => w,
                    };
                    push(C::Cpu, "cpu.weight", w.to_string());
                } else {
                    let s = match w {
                        CpuWeight::Shares(s) => s,
                        CpuWeight::Weight(w) => weight_to_shares(w),
                    };
                    push(C::Cpu, "cpu.shares", s.to_string());
                }
            }
            if v2 {
                if let Some(q) = self.cpu_quota {
                    let period = self.cpu_period.unwrap_or(100_000);
                    push(C::Cpu, "cpu.max", format!("{} {period}", v2_limit(q)));
                }
                if let Some(b) = self.cpu_burst {
                    push(C::Cpu, "cpu.max.burst", b.to_string());
                }
                if self.rt_runtime.is_some() {
                    return Err(Error::Unsupported {
                        setting: "cpu.rt_runtime",
                        reason: "cgroup v2 has no realtime group scheduling",
                    });
                }
            } else {
                if let Some(p) = self.cpu_period {
                    push(C::Cpu, "cpu.cfs_period_us", p.to_string());
                }
                if let Some(q) = self.cpu_quota {
                    push(C::Cpu, "cpu.cfs_quota_us", v1_limit(q));
                }
                if let Some(b) = self.cpu_burst {
                    push(C::Cpu, "cpu.cfs_burst_us", b.to_string());
                }
                if let (Some(rt), Some(p)) = (self.rt_runtime, self.rt_period) {
                    push(C::Cpu, "cpu.rt_period_us", p.to_string());
                    push(C::Cpu, "cpu.rt_runtime_us", rt.to_string());
                }
            }
        }
        // cpuset
        if self.cpus.is_some() || self.mems.is_some() {
            need(C::Cpuset)?;
            if let Some(c) = &self.cpus {
                push(C::Cpuset, "cpuset.cpus", render_cpu_list(c));
            }
            if let Some(m) = &self.mems {
                push(C::Cpuset, "cpuset.mems", render_cpu_list(m));
            }
        }
        // memory
        if self.memory_limit.is_some()
            || self.memory_low.is_some()
            || self.memory_high.is_some()
            || self.memory_swap.is_some()
            || self.swappiness.is_some()
            || self.oom_kill_disable.is_some()
        {
            let v2 = need(C::Memory)?;
            if v2 {
                if let Some(l) = self.memory_limit {
                    push(C::Memory, "memory.max", v2_limit(l));
                }
                if let Some(s) = self.memory_swap {
                    let s = swap_to_v2(s, self.memory_limit)?;
                    push(C::Memory, "memory.swap.max", v2_limit(s));
                }
                if let Some(l) = self.memory_low {
                    push(C::Memory, "memory.low", v2_limit(l));
                }
                if let Some(l) = self.memory_high {
                    push(C::Memory, "memory.high", v2_limit(l));
                }
                if self.swappiness.is_some() {
                    return Err(Error::Unsupported {
                        setting: "memory.swappiness",
                        reason: "cgroup v2 has no per-cgroup swappiness",
                    });
                }
                if self.oom_kill_disable == Some(true) {
                    return Err(Error::Unsupported {
                        setting: "memory.oom_kill_disable",
                        reason: "cgroup v2 cannot disable the OOM killer",
                    });
                }
            } else {
                if let Some(l) = self.memory_limit {
                    push(C::Memory, "memory.limit_in_bytes", v1_limit(l));
                }
                if let Some(s) = self.memory_swap {
                    push(C::Memory, "memory.memsw.limit_in_bytes", v1_limit(s));
                }
                if let Some(l) = self.memory_low {
                    push(C::Memory, "memory.soft_limit_in_bytes", v1_limit(l));
                }
                if self.memory_high.is_some() {
                    return Err(Error::Unsupported {
                        setting: "memory.high",
                        reason: "cgroup v1 has no memory.high",
                    });
                }
                if let Some(s) = self.swappiness {
                    push(C::Memory, "memory.swappiness", s.to_string());
                }
                if let Some(d) = self.oom_kill_disable {
                    push(C::Memory, "memory.oom_control", u8::from(d).to_string());
                }
            }
        }
        // pids
        if let Some(p) = self.pids_max {
            need(C::Pids)?;
            push(C::Pids, "pids.max", v2_limit(p));
        }
        // io
        if self.io_weight.is_some()
            || !self.io_device_weights.is_empty()
            || !self.io_limits.is_empty()
        {
            let v2 = need(C::Io)?;
            let io_w = |w: IoWeight| match w {
                IoWeight::Io(v) => v,
                IoWeight::Blkio(v) => blkio_to_io_weight(v),
            };
            let blkio_w = |w: IoWeight| match w {
                IoWeight::Blkio(v) => v,
                IoWeight::Io(v) => io_to_blkio_weight(v),
            };
            if let Some(w) = self.io_weight {
                if v2 {
                    push(C::Io, "io.weight", format!("default {}", io_w(w)));
                } else {
                    push(C::Io, "blkio.weight", blkio_w(w).to_string());
                }
            }
            for (d, w) in &self.io_device_weights {
                if v2 {
                    push(
                        C::Io,
                        "io.weight",
                        format!("{}:{} {}", d.major, d.minor, io_w(*w)),
                    );
                } else {
                    push(
                        C::Io,
                        "blkio.weight_device",
                        format!("{}:{} {}", d.major, d.minor, blkio_w(*w)),
                    );
                }
            }
            for l in &self.io_limits {
                if v2 {
                    let rate = if l.rate == 0 {
                        "max".to_string()
                    } else {
                        l.rate.to_string()
                    };
                    push(
                        C::Io,
                        "io.max",
                        format!(
                            "{}:{} {}={rate}",
                            l.device.major,
                            l.device.minor,
                            l.kind.v2_key()
                        ),
                    );
                } else {
                    push(
                        C::Io,
                        l.kind.v1_file(),
                        format!("{}:{} {}", l.device.major, l.device.minor, l.rate),
                    );
                }
            }
        }
        // devices
        if !self.devices.is_empty() {
            // On v2 the rules become an eBPF program (see Cgroup::apply),
            // not file writes.
            if !need(C::Devices)? {
                for d in &self.devices {
                    let file = if d.allow {
                        "devices.allow"
                    } else {
                        "devices.deny"
                    };
                    push(C::Devices, file, d.to_string());
                }
            }
        }
        // hugetlb
        if !self.hugetlb.is_empty() {
            let v2 = need(C::Hugetlb)?;
            for (size, l) in &self.hugetlb {
                if v2 {
                    push(C::Hugetlb, &format!("hugetlb.{size}.max"), v2_limit(*l));
                } else {
                    push(
                        C::Hugetlb,
                        &format!("hugetlb.{size}.limit_in_bytes"),
                        v1_limit(*l),
                    );
                }
            }
        }
        if let Some(id) = self.net_cls_classid {
            need(C::NetCls)?;
            push(C::NetCls, "net_cls.classid", id.to_string());
        }
        if !self.net_prio.is_empty() {
            need(C::NetPrio)?;
            for (i, p) in &self.net_prio {
                push(C::NetPrio, "net_prio.ifpriomap", format!("{i} {p}"));
            }
        }
        if self.frozen.is_some() {
            need(C::Freezer)?;
        }
        Ok(out)
    }

    /// Controllers these resources need.
    pub fn controllers(&self) -> BTreeSet<Controller> {
        let mut s = BTreeSet::new();
        use Controller as C;
        if self.cpu_weight.is_some()
            || self.cpu_quota.is_some()
            || self.cpu_burst.is_some()
            || self.rt_runtime.is_some()
        {
            s.insert(C::Cpu);
        }
        if self.cpus.is_some() || self.mems.is_some() {
            s.insert(C::Cpuset);
        }
        if self.memory_limit.is_some()
            || self.memory_low.is_some()
            || self.memory_high.is_some()
            || self.memory_swap.is_some()
            || self.swappiness.is_some()
            || self.oom_kill_disable.is_some()
        {
            s.insert(C::Memory);
        }
        if self.pids_max.is_some() {
            s.insert(C::Pids);
        }
        if self.io_weight.is_some()
            || !self.io_device_weights.is_empty()
            || !self.io_limits.is_empty()
        {
            s.insert(C::Io);
        }
        if !self.devices.is_empty() {
            s.insert(C::Devices);
        }
        if !self.hugetlb.is_empty() {
            s.insert(C::Hugetlb);
        }
        if self.net_cls_classid.is_some() {
            s.insert(C::NetCls);
        }
        if !self.net_prio.is_empty() {
            s.insert(C::NetPrio);
        }
        if self.frozen.is_some() {
            s.insert(C::Freezer);
        }
        s
    }

    /// Block devices named by I/O settings (checked to exist on apply).
    pub(crate) fn io_devices(&self) -> impl Iterator<Item = DeviceNumber> + '_ {
        self.io_device_weights
            .iter()
            .map(|(d, _)| *d)
            .chain(self.io_limits.iter().map(|l| l.device))
    }

    /// Requested cpus and mems (checked against the parent on apply).
    pub(crate) fn cpuset(&self) -> (Option<&BTreeSet<u32>>, Option<&BTreeSet<u32>>) {
        (self.cpus.as_ref(), self.mems.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v1() -> Layout {
        Layout::from_texts(
            "1 0 0:1 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu,cpuacct\n\
             2 0 0:2 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             3 0 0:3 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n\
             4 0 0:4 / /sys/fs/cgroup/devices rw - cgroup cgroup rw,devices\n\
             5 0 0:5 / /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio\n",
            "",
        )
        .unwrap()
    }

    fn v2() -> Layout {
        let mut l =
            Layout::from_texts("1 0 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "").unwrap();
        l.set_v2_controllers("cpuset cpu io memory hugetlb pids");
        l
    }

    fn find<'a>(s: &'a [Setting], f: &str) -> Option<&'a str> {
        s.iter().find(|x| x.file == f).map(|x| x.value.as_str())
    }

    #[test]
    fn shares_weight_known_points() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(weight_to_shares(1), 2);
        assert_eq!(weight_to_shares(10_000), 262_144);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
        assert_eq!(blkio_to_io_weight(500), 4950);
    }

    #[test]
    fn cpu_on_both_versions() {
        let r = Resources::builder()
            .cpu_weight(CpuWeight::Shares(1024))
            .cpu_quota(10_000, 100_000)
            .build()
            .unwrap();
        let s1 = r.settings(&v1()).unwrap();
        assert_eq!(find(&s1, "cpu.shares"), Some("1024"));
        assert_eq!(find(&s1, "cpu.cfs_quota_us"), Some("10000"));
        let s2 = r.settings(&v2()).unwrap();
        assert_eq!(find(&s2, "cpu.weight"), Some("39"));
        assert_eq!(find(&s2, "cpu.max"), Some("10000 100000"));
    }

    #[test]
    fn memory_on_both_versions() {
        let r = Resources::builder()
            .memory_limit(100)
            .memory_swap(Limit::Value(300))
            .build()
            .unwrap();
        let s1 = r.settings(&v1()).unwrap();
        assert_eq!(find(&s1, "memory.memsw.limit_in_bytes"), Some("300"));
        let s2 = r.settings(&v2()).unwrap();
        assert_eq!(find(&s2, "memory.max"), Some("100"));
        assert_eq!(find(&s2, "memory.swap.max"), Some("200"));
    }

    #[test]
    fn unhonourable_settings_are_errors() {
        let r = Resources::builder().swappiness(10).build().unwrap();
        assert!(matches!(
            r.settings(&v2()),
            Err(Error::Unsupported {
                setting: "memory.swappiness",
                ..
            })
        ));
        let r = Resources::builder()
            .memory_high(Limit::Value(1 << 20))
            .build()
            .unwrap();
        assert!(matches!(
            r.settings(&v1()),
            Err(Error::Unsupported {
                setting: "memory.high",
                ..
            })
        ));
        let r = Resources::builder().net_cls_classid(1).build().unwrap();
        assert!(matches!(
            r.settings(&v1()),
            Err(Error::ControllerUnavailable {
                controller: Controller::NetCls
            })
        ));
        let rule = DeviceRule {
            allow: false,
            kind: DeviceKind::All,
            major: None,
            minor: None,
            read: true,
            write: true,
            mknod: true,
        };
        let r = Resources::builder().device(rule).build().unwrap();
        assert_eq!(
            find(&r.settings(&v1()).unwrap(), "devices.deny"),
            Some("a *:* rwm")
        );
        // v2: an eBPF program, no file writes.
        assert!(r.settings(&v2()).unwrap().is_empty());
    }

    #[test]
    fn build_rejects_bad_values() {
        let e = |b: ResourcesBuilder| match b.build() {
            Err(Error::InvalidResource { field, .. }) => field,
            other => panic!("expected InvalidResource, got {other:?}"),
        };
        assert_eq!(
            e(Resources::builder().cpu_weight(CpuWeight::Shares(1))),
            "cpu.shares"
        );
        assert_eq!(
            e(Resources::builder().cpu_weight(CpuWeight::Weight(10_001))),
            "cpu.weight"
        );
        assert_eq!(e(Resources::builder().cpu_quota(10, 100_000)), "cpu.quota");
        assert_eq!(e(Resources::builder().cpu_quota(10_000, 10)), "cpu.period");
        assert_eq!(e(Resources::builder().cpu_burst(1000)), "cpu.burst");
        assert_eq!(
            e(Resources::builder().memory_swap(Limit::Value(10))),
            "memory.swap"
        );
        assert_eq!(
            e(Resources::builder()
                .memory_limit(100)
                .memory_swap(Limit::Value(10))),
            "memory.swap"
        );
        assert_eq!(e(Resources::builder().swappiness(101)), "memory.swappiness");
        assert_eq!(
            e(Resources::builder().io_weight(IoWeight::Blkio(5))),
            "blkio.weight"
        );
        assert_eq!(
            e(Resources::builder().hugetlb("2XB", Limit::Max)),
            "hugetlb"
        );
        assert_eq!(
            e(Resources::builder().net_prio("a/b", 1)),
            "net_prio.ifpriomap"
        );
        assert!(matches!(
            Resources::builder().cpus("3-1"),
            Err(Error::InvalidResource {
                field: "cpuset.cpus",
                ..
            })
        ));
        assert!(matches!(
            Resources::builder().cpus(""),
            Err(Error::InvalidResource {
                field: "cpuset.cpus",
                ..
            })
        ));
    }

    proptest! {
        #[test]
        fn shares_weight_stay_in_range_and_monotonic(a in 2u64..=262_144, b in 2u64..=262_144) {
            let (wa, wb) = (shares_to_weight(a), shares_to_weight(b));
            prop_assert!((1..=10_000).contains(&wa));
            if a <= b { prop_assert!(wa <= wb); }
            // Round trip loses at most the rounding of one step.
            let back = weight_to_shares(wa);
            prop_assert!(back <= a && a - back <= 27, "{} -> {} -> {}", a, wa, back);
        }

        #[test]
        fn weight_shares_round_trip(w in 1u64..=10_000) {
            let s = weight_to_shares(w);
            prop_assert!((2..=262_144).contains(&s));
            prop_assert_eq!(shares_to_weight(s), w);
        }

        #[test]
        fn io_weight_round_trip(w in 10u16..=1000) {
            let io = blkio_to_io_weight(w);
            prop_assert!((1..=10_000).contains(&io));
            prop_assert_eq!(io_to_blkio_weight(io), w);
        }

        #[test]
        fn swap_conversions_invert(m in 1u64..1 << 40, extra in 0u64..1 << 40) {
            let v2 = swap_to_v2(Limit::Value(m + extra), Some(Limit::Value(m))).unwrap();
            prop_assert_eq!(v2, Limit::Value(extra));
            prop_assert_eq!(swap_to_v1(v2, Limit::Value(m)), Limit::Value(m + extra));
        }

        #[test]
        fn any_built_resources_render_without_panic(shares in 0u64..300_000, q in 0u64..2_000_000, mem in 0u64..1 << 40, sw in 0u64..1 << 41) {
            if let Ok(r) = Resources::builder().cpu_weight(CpuWeight::Shares(shares)).cpu_quota(q, 100_000).memory_limit(mem).memory_swap(Limit::Value(sw)).build() {
                prop_assert!(r.settings(&v1()).is_ok());
                prop_assert!(r.settings(&v2()).is_ok());
            }
        }
    }
}
