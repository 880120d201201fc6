//! Typed statistics of a cgroup, and pure parsers from control-file texts
//! to them (never panicking, whatever the text).

use std::path::Path;
use std::time::Duration;

use crate::cgroup::{Cgroup, read_file};
use crate::error::{Error, ParseError, Result};
use crate::layout::Controller;
use crate::parse::{
    DeviceNumber, Limit, Pressure, keyed, parse_blkio_v1, parse_flat_keyed, parse_io_stat,
    parse_limit, parse_pressure, parse_u64,
};

/// CPU usage and throttling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuStats {
    /// Total CPU time used.
    pub usage: Duration,
    /// User time (v1: USER_HZ resolution).
    pub user: Duration,
    /// System time.
    pub system: Duration,
    /// Enforcement periods elapsed (0 without a quota).
    pub nr_periods: u64,
    /// Periods in which the cgroup was throttled.
    pub nr_throttled: u64,
    /// Total time throttled.
    pub throttled: Duration,
}

/// Memory usage, limits and OOM counters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemoryStats {
    /// Current usage in bytes (v1 `memory.usage_in_bytes`, v2 `memory.current`).
    pub usage: u64,
    /// Peak usage (v1 `memory.max_usage_in_bytes`, v2 `memory.peak`, 5.19+).
    pub max_usage: Option<u64>,
    /// The limit (v1 `memory.limit_in_bytes`, v2 `memory.max`).
    pub limit: Option<Limit>,
    /// Times the limit was hit (v1 `memory.failcnt`, v2 `max` event).
    pub failcnt: u64,
    /// Times the cgroup went OOM (v2 `oom` event; v1 has no counter: 0).
    pub oom: u64,
    /// Processes killed by the OOM killer (v1 `oom_kill` of
    /// `memory.oom_control`, 4.13+; v2 `oom_kill` event).
    pub oom_kill: u64,
    /// v1: tasks are waiting in an OOM with the killer disabled.
    pub under_oom: bool,
    /// `memory.stat`, as keys and values.
    pub stat: Vec<(String, u64)>,
}

/// Process count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidsStats {
    /// Tasks now.
    pub current: u64,
    /// The limit.
    pub limit: Limit,
}

/// I/O done on one block device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoDeviceStats {
    /// The device.
    pub device: DeviceNumber,
    /// Bytes read.
    pub read_bytes: u64,
    /// Bytes written.
    pub write_bytes: u64,
    /// Read operations.
    pub read_ios: u64,
    /// Write operations.
    pub write_ios: u64,
}

/// Hugetlb usage for one page size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HugetlbStats {
    /// Page size (`2MB`).
    pub page_size: String,
    /// Bytes in use.
    pub usage: u64,
    /// The limit.
    pub limit: Limit,
}

/// Pressure stall information of the cgroup (where the kernel has PSI).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PressureStats {
    /// `cpu.pressure`.
    pub cpu: Option<Pressure>,
    /// `memory.pressure`.
    pub memory: Option<Pressure>,
    /// `io.pressure`.
    pub io: Option<Pressure>,
}

/// All statistics of a cgroup; a controller the cgroup lacks is `None`/empty.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stats {
    /// CPU.
    pub cpu: Option<CpuStats>,
    /// Memory.
    pub memory: Option<MemoryStats>,
    /// Pids.
    pub pids: Option<PidsStats>,
    /// Block I/O, per device.
    pub io: Vec<IoDeviceStats>,
    /// Hugetlb, per page size.
    pub hugetlb: Vec<HugetlbStats>,
    /// Pressure.
    pub pressure: PressureStats,
}

fn ns(v: u64) -> Duration {
    Duration::from_nanos(v)
}
fn us(v: u64) -> Duration {
    Duration::from_micros(v)
}

/// Parses v2 `cpu.stat`.
///
/// # Errors
/// Bad text, or no `usage_usec`.
pub fn cpu_v2(cpu_stat: &str) -> Result<CpuStats, ParseError> {
    let e = parse_flat_keyed(cpu_stat)?;
    let g = |k| keyed(&e, k).unwrap_or(0);
    Ok(CpuStats {
        usage: us(keyed(&e, "usage_usec").ok_or(ParseError::new(0, "no usage_usec"))?),
        user: us(g("user_usec")),
        system: us(g("system_usec")),
        nr_periods: g("nr_periods"),
        nr_throttled: g("nr_throttled"),
        throttled: us(g("throttled_usec")),
    })
}

/// Parses v1 `cpuacct.usage` (ns), `cpuacct.stat` (USER_HZ ticks; `ticks`
/// per second) and `cpu.stat` (may be empty when the cpu controller is absent).
///
/// # Errors
/// Bad text.
pub fn cpu_v1(
    usage: &str,
    cpuacct_stat: &str,
    cpu_stat: &str,
    ticks: u64,
) -> Result<CpuStats, ParseError> {
    let a = parse_flat_keyed(cpuacct_stat)?;
    let c = parse_flat_keyed(cpu_stat)?;
    let tick = |v: u64| {
        let t = ticks.max(1);
        Duration::from_secs(v / t) + Duration::from_nanos((v % t).saturating_mul(1_000_000_000) / t)
    };
    Ok(CpuStats {
        usage: ns(parse_u64(usage)?),
        user: tick(keyed(&a, "user").unwrap_or(0)),
        system: tick(keyed(&a, "system").unwrap_or(0)),
        nr_periods: keyed(&c, "nr_periods").unwrap_or(0),
        nr_throttled: keyed(&c, "nr_throttled").unwrap_or(0),
        throttled: ns(keyed(&c, "throttled_time").unwrap_or(0)),
    })
}

/// Texts of the v2 memory files (`None` for a file the kernel lacks).
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryV2Files<'a> {
    /// `memory.current`.
    pub current: &'a str,
    /// `memory.peak`.
    pub peak: Option<&'a str>,
    /// `memory.max`.
    pub max: &'a str,
    /// `memory.events`.
    pub events: &'a str,
    /// `memory.stat`.
    pub stat: &'a str,
}

/// Parses the v2 memory files.
///
/// # Errors
/// Bad text in any of them.
pub fn memory_v2(f: MemoryV2Files<'_>) -> Result<MemoryStats, ParseError> {
    let ev = parse_flat_keyed(f.events)?;
    Ok(MemoryStats {
        usage: parse_u64(f.current)?,
        max_usage: f.peak.map(parse_u64).transpose()?,
        limit: Some(parse_limit(f.max)?),
        failcnt: keyed(&ev, "max").unwrap_or(0),
        oom: keyed(&ev, "oom").unwrap_or(0),
        oom_kill: keyed(&ev, "oom_kill").unwrap_or(0),
        under_oom: false,
        stat: parse_flat_keyed(f.stat)?,
    })
}

/// Texts of the v1 memory files.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryV1Files<'a> {
    /// `memory.usage_in_bytes`.
    pub usage: &'a str,
    /// `memory.max_usage_in_bytes`.
    pub max_usage: &'a str,
    /// `memory.limit_in_bytes`.
    pub limit: &'a str,
    /// `memory.failcnt`.
    pub failcnt: &'a str,
    /// `memory.oom_control`.
    pub oom_control: &'a str,
    /// `memory.stat`.
    pub stat: &'a str,
}

/// Parses the v1 memory files.
///
/// # Errors
/// Bad text in any of them.
pub fn memory_v1(f: MemoryV1Files<'_>) -> Result<MemoryStats, ParseError> {
    let oc = parse_flat_keyed(f.oom_control)?;
    Ok(MemoryStats {
        usage: parse_u64(f.usage)?,
        max_usage: Some(parse_u64(f.max_usage)?),
        limit: Some(parse_limit(f.limit)?),
        failcnt: parse_u64(f.failcnt)?,
        oom: 0,
        oom_kill: keyed(&oc, "oom_kill").unwrap_or(0),
        under_oom: keyed(&oc, "under_oom").unwrap_or(0) != 0,
        stat: parse_flat_keyed(f.stat)?,
    })
}

/// Parses `pids.current` and `pids.max`.
///
/// # Errors
/// Bad text.
pub fn pids(current: &str, max: &str) -> Result<PidsStats, ParseError> {
    Ok(PidsStats {
        current: parse_u64(current)?,
        limit: parse_limit(max)?,
    })
}

/// Parses v2 `io.stat`.
///
/// # Errors
/// Bad text.
pub fn io_v2(io_stat: &str) -> Result<Vec<IoDeviceStats>, ParseError> {
    Ok(parse_io_stat(io_stat)?
        .into_iter()
        .map(|(device, kv)| {
            let g = |k| keyed(&kv, k).unwrap_or(0);
            IoDeviceStats {
                device,
                read_bytes: g("rbytes"),
                write_bytes: g("wbytes"),
                read_ios: g("rios"),
                write_ios: g("wios"),
            }
        })
        .collect())
}

/// Parses v1 `blkio.throttle.io_service_bytes` and `blkio.throttle.io_serviced`.
///
/// # Errors
/// Bad text.
pub fn io_v1(service_bytes: &str, serviced: &str) -> Result<Vec<IoDeviceStats>, ParseError> {
    let mut out: Vec<IoDeviceStats> = Vec::new();
    for (text, bytes) in [(service_bytes, true), (serviced, false)] {
        for e in parse_blkio_v1(text)? {
            let idx = match out.iter().position(|d| d.device == e.device) {
                Some(i) => i,
                None => {
                    out.push(IoDeviceStats {
                        device: e.device,
                        ..IoDeviceStats::default()
                    });
                    out.len() - 1
                }
            };
            let d = &mut out[idx];
            match (e.op.as_str(), bytes) {
                ("Read", true) => d.read_bytes = e.value,
                ("Write", true) => d.write_bytes = e.value,
                ("Read", false) => d.read_ios = e.value,
                ("Write", false) => d.write_ios = e.value,
                _ => {}
            }
        }
    }
    Ok(out)
}

fn parse_at<T>(path: &Path, r: Result<T, ParseError>) -> Result<T> {
    r.map_err(|source| Error::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a file, `None` when it does not exist.
fn read_opt(path: &Path) -> Result<Option<String>> {
    match crate::cgroup::read_kernel_file(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

impl Cgroup {
    /// Reads every statistic the cgroup's controllers offer.
    ///
    /// # Errors
    /// [`Error::Read`] or [`Error::Parse`] naming the file.
    pub fn stats(&self) -> Result<Stats> {
        let mut s = Stats {
            cpu: self.cpu_stats()?,
            memory: self.memory_stats()?,
            pids: self.pids_stats()?,
            ..Stats::default()
        };
        if let Some(d) = self.dir_of(Controller::Io) {
            if self.layout().is_v2(Controller::Io) {
                let p = d.join("io.stat");
                if let Some(t) = read_opt(&p)? {
                    s.io = parse_at(&p, io_v2(&t))?;
                }
            } else {
                let p1 = d.join("blkio.throttle.io_service_bytes");
                let p2 = d.join("blkio.throttle.io_serviced");
                let t1 = read_opt(&p1)?.unwrap_or_default();
                let t2 = read_opt(&p2)?.unwrap_or_default();
                s.io = parse_at(&p1, io_v1(&t1, &t2))?;
            }
        }
        if let Some(d) = self.dir_of(Controller::Hugetlb) {
            let v2 = self.layout().is_v2(Controller::Hugetlb);
            if let Ok(rd) = std::fs::read_dir(d) {
                let mut sizes: Vec<String> = rd
                    .filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        let rest = n.strip_prefix("hugetlb.")?;
                        let size =
                            rest.strip_suffix(if v2 { ".current" } else { ".usage_in_bytes" })?;
                        (!size.contains('.')).then(|| size.to_string())
                    })
                    .collect();
                sizes.sort();
                for size in sizes {
                    let (u, l) = if v2 {
                        (
                            format!("hugetlb.{size}.current"),
                            format!("hugetlb.{size}.max"),
                        )
                    } else {
                        (
                            format!("hugetlb.{size}.usage_in_bytes"),
                            format!("hugetlb.{size}.limit_in_bytes"),
                        )
                    };
                    let (pu, pl) = (d.join(u), d.join(l));
                    let usage = parse_at(&pu, parse_u64(&read_file(&pu)?))?;
                    let limit = parse_at(&pl, parse_limit(&read_file(&pl)?))?;
                    s.hugetlb.push(HugetlbStats {
                        page_size: size,
                        usage,
                        limit,
                    });
                }
            }
        }
        if let Some(d) = self.v2_dir() {
            for (name, slot) in [
                ("cpu.pressure", &mut s.pressure.cpu),
                ("memory.pressure", &mut s.pressure.memory),
                ("io.pressure", &mut s.pressure.io),
            ] {
                let p = d.join(name);
                // Reading a pressure file fails with EOPNOTSUPP when PSI is off.
                if let Ok(Some(t)) = read_opt(&p) {
                    *slot = Some(parse_at(&p, parse_pressure(&t))?);
                }
            }
        }
        Ok(s)
    }

    /// CPU statistics, `None` without the cpu/cpuacct controller.
    ///
    /// # Errors
    /// [`Error::Read`], [`Error::Parse`].
    pub fn cpu_stats(&self) -> Result<Option<CpuStats>> {
        if self.layout().is_v2(Controller::Cpu) {
            let Some(d) = self.dir_of(Controller::Cpu) else {
                return Ok(None);
            };
            let p = d.join("cpu.stat");
            return Ok(Some(parse_at(&p, cpu_v2(&read_file(&p)?))?));
        }
        let Some(a) = self.dir_of(Controller::Cpuacct) else {
            return Ok(None);
        };
        if self.layout().is_v2(Controller::Cpuacct) {
            return Ok(None);
        }
        let pu = a.join("cpuacct.usage");
        let usage = read_file(&pu)?;
        let stat = read_opt(&a.join("cpuacct.stat"))?.unwrap_or_default();
        let cpu_stat = match self.dir_of(Controller::Cpu) {
            Some(c) => read_opt(&c.join("cpu.stat"))?.unwrap_or_default(),
            None => String::new(),
        };
        // Only the flat-keyed cpu.stat lines this parser knows are used;
        // newer kernels add more, which it keeps ignoring.
        Ok(Some(parse_at(
            &pu,
            cpu_v1(&usage, &stat, &cpu_stat, crate::sys::clock_ticks()),
        )?))
    }

    /// Memory statistics, `None` without the memory controller.
    ///
    /// # Errors
    /// [`Error::Read`], [`Error::Parse`].
    pub fn memory_stats(&self) -> Result<Option<MemoryStats>> {
        let Some(d) = self.dir_of(Controller::Memory) else {
            return Ok(None);
        };
        let r = |f: &str| read_file(&d.join(f));
        let p = d.join("memory.stat");
        if self.layout().is_v2(Controller::Memory) {
            let peak = read_opt(&d.join("memory.peak"))?;
            let (current, max, events, stat) = (
                r("memory.current")?,
                r("memory.max")?,
                r("memory.events")?,
                r("memory.stat")?,
            );
            let f = MemoryV2Files {
                current: &current,
                peak: peak.as_deref(),
                max: &max,
                events: &events,
                stat: &stat,
            };
            return Ok(Some(parse_at(&p, memory_v2(f))?));
        }
        let (usage, max_usage, limit, failcnt, oom_control, stat) = (
            r("memory.usage_in_bytes")?,
            r("memory.max_usage_in_bytes")?,
            r("memory.limit_in_bytes")?,
            r("memory.failcnt")?,
            r("memory.oom_control")?,
            r("memory.stat")?,
        );
        let f = MemoryV1Files {
            usage: &usage,
            max_usage: &max_usage,
            limit: &limit,
            failcnt: &failcnt,
            oom_control: &oom_control,
            stat: &stat,
        };
        Ok(Some(parse_at(&p, memory_v1(f))?))
    }

    /// Pids statistics, `None` without the pids controller.
    ///
    /// # Errors
    /// [`Error::Read`], [`Error::Parse`].
    pub fn pids_stats(&self) -> Result<Option<PidsStats>> {
        let Some(d) = self.dir_of(Controller::Pids) else {
            return Ok(None);
        };
        let p = d.join("pids.current");
        Ok(Some(parse_at(
            &p,
            pids(&read_file(&p)?, &read_file(&d.join("pids.max"))?),
        )?))
    }
}

/// Runs every control-file parser of this crate over `data` (split at NUL
/// bytes into the several files some parsers take). Returns how many parsers
/// accepted their input. For the fuzz target and its corpus replay test: it
/// must never panic, whatever `data` is.
#[doc(hidden)]
pub fn parse_all_for_fuzzing(data: &[u8]) -> usize {
    use crate::parse;
    let text = String::from_utf8_lossy(data);
    let parts: Vec<&str> = text.split('\0').collect();
    let p = |i: usize| parts.get(i).copied().unwrap_or("");
    let ok = [
        parse::parse_mountinfo(&text).is_ok(),
        parse::parse_proc_cgroup(&text).is_ok(),
        crate::Layout::from_texts(p(0), p(1)).is_ok(),
        parse::parse_limit(&text).is_ok(),
        parse::parse_flat_keyed(&text).is_ok(),
        parse::parse_io_stat(&text).is_ok(),
        parse::parse_blkio_v1(&text).is_ok(),
        parse::parse_pressure(&text).is_ok(),
        parse::parse_cpu_list(&text).is_ok(),
        cpu_v2(&text).is_ok(),
        cpu_v1(p(0), p(1), p(2), 100).is_ok(),
        memory_v2(MemoryV2Files {
            current: p(0),
            peak: parts.get(1).copied(),
            max: p(2),
            events: p(3),
            stat: p(4),
        })
        .is_ok(),
        memory_v1(MemoryV1Files {
            usage: p(0),
            max_usage: p(1),
            limit: p(2),
            failcnt: p(3),
            oom_control: p(4),
            stat: p(5),
        })
        .is_ok(),
        pids(p(0), p(1)).is_ok(),
        io_v1(p(0), p(1)).is_ok(),
        io_v2(&text).is_ok(),
    ];
    ok.iter().filter(|x| **x).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cpu_v2_sample() {
        let t = "usage_usec 1000\nuser_usec 600\nsystem_usec 400\nnr_periods 10\nnr_throttled 2\nthrottled_usec 50\nnr_bursts 0\nburst_usec 0\n";
        let c = cpu_v2(t).unwrap();
        assert_eq!(c.usage, Duration::from_micros(1000));
        assert_eq!(c.nr_throttled, 2);
        assert!(cpu_v2("user_usec 1\n").is_err());
    }

    #[test]
    fn cpu_v1_sample() {
        let c = cpu_v1(
            "2000000000\n",
            "user 150\nsystem 50\n",
            "nr_periods 3\nnr_throttled 1\nthrottled_time 7000\n",
            100,
        )
        .unwrap();
        assert_eq!(c.usage, Duration::from_secs(2));
        assert_eq!(c.user, Duration::from_millis(1500));
        assert_eq!(c.throttled, Duration::from_micros(7));
    }

    #[test]
    fn memory_samples() {
        let m = memory_v1(MemoryV1Files {
            usage: "4096\n",
            max_usage: "8192\n",
            limit: "9223372036854771712\n",
            failcnt: "0\n",
            oom_control: "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
            stat: "cache 0\nrss 4096\n",
        })
        .unwrap();
        assert_eq!(m.limit, Some(Limit::Max));
        assert_eq!(m.oom_kill, 1);
        let m = memory_v2(MemoryV2Files {
            current: "4096\n",
            peak: None,
            max: "1048576\n",
            events: "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n",
            stat: "anon 4096\n",
        })
        .unwrap();
        assert_eq!((m.failcnt, m.oom, m.oom_kill), (5, 1, 1));
        assert_eq!(m.limit, Some(Limit::Value(1_048_576)));
    }

    #[test]
    fn io_samples() {
        let v = io_v1("8:0 Read 10\n8:0 Write 20\n8:0 Sync 0\n8:0 Async 30\n8:0 Discard 0\n8:0 Total 30\nTotal 30\n", "8:0 Read 1\n8:0 Write 2\nTotal 3\n").unwrap();
        assert_eq!(
            v,
            vec![IoDeviceStats {
                device: DeviceNumber { major: 8, minor: 0 },
                read_bytes: 10,
                write_bytes: 20,
                read_ios: 1,
                write_ios: 2
            }]
        );
        let v = io_v2("254:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n").unwrap();
        assert_eq!(v[0].write_ios, 4);
    }

    proptest! {
        #[test]
        fn stat_parsers_never_panic(a in "\\PC*", b in "\\PC*", c in "[a-z_ 0-9\\n]*") {
            let _ = cpu_v2(&a);
            let _ = cpu_v1(&a, &b, &c, 100);
            let _ = cpu_v1(&c, &c, &c, 0);
            let _ = memory_v2(MemoryV2Files { current: &a, peak: Some(&b), max: &c, events: &c, stat: &a });
            let _ = memory_v1(MemoryV1Files { usage: &a, max_usage: &b, limit: &c, failcnt: &a, oom_control: &c, stat: &c });
            let _ = pids(&a, &b);
            let _ = io_v1(&a, &c);
            let _ = io_v2(&b);
        }

        #[test]
        fn cpu_v2_round_trips(u in any::<u64>(), us_ in any::<u64>(), sy in any::<u64>(), p in any::<u64>(), t in any::<u64>(), tu in any::<u64>()) {
            let text = format!("usage_usec {u}\nuser_usec {us_}\nsystem_usec {sy}\nnr_periods {p}\nnr_throttled {t}\nthrottled_usec {tu}\n");
            let c = cpu_v2(&text).unwrap();
            prop_assert_eq!(c.usage, Duration::from_micros(u));
            prop_assert_eq!(c.nr_periods, p);
            prop_assert_eq!(c.throttled, Duration::from_micros(tu));
        }

        #[test]
        fn memory_events_round_trip(max in any::<u64>(), oom in any::<u64>(), kill in any::<u64>(), cur in any::<u64>()) {
            let events = format!("low 0\nhigh 0\nmax {max}\noom {oom}\noom_kill {kill}\n");
            let cur_s = cur.to_string();
            let m = memory_v2(MemoryV2Files { current: &cur_s, peak: None, max: "max\n", events: &events, stat: "" }).unwrap();
            prop_assert_eq!((m.usage, m.failcnt, m.oom, m.oom_kill), (cur, max, oom, kill));
            prop_assert_eq!(m.limit, Some(Limit::Max));
        }

        #[test]
        fn cpu_v1_ticks_never_overflow(u in any::<u64>(), t in any::<u64>()) {
            let s = format!("user {u}\nsystem {u}\n");
            prop_assert!(cpu_v1("0", &s, "", t).is_ok());
        }
    }
}
