//! Parsers for the kernel's text: mountinfo, `/proc/<pid>/cgroup` and the
//! cgroup control-file formats (single values, flat keyed, nested keyed,
//! v1 blkio tables, PSI, cpu lists).
//!
//! Every parser takes arbitrary text and returns a [`ParseError`] for
//! anything it does not understand; none of them panics.

use std::collections::BTreeSet;

use crate::error::ParseError;

/// One line of `/proc/<pid>/mountinfo` (the fields this crate needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// Mount id.
    pub id: u32,
    /// Parent mount id.
    pub parent: u32,
    /// Root of the mount within its filesystem (for cgroups: the cgroup path
    /// seen as the mount's root, `/` normally, deeper inside a cgroup namespace
    /// or a bind mount).
    pub root: String,
    /// Mount point.
    pub mount_point: String,
    /// Filesystem type (`cgroup`, `cgroup2`, ...).
    pub fs_type: String,
    /// Super-block options (for v1 cgroups, the controllers).
    pub super_options: String,
}

/// Undoes mountinfo's octal escapes (`\040` for space, `\011`, `\012`, `\134`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = u32::from(oct[0] - b'0') * 64
                    + u32::from(oct[1] - b'0') * 8
                    + u32::from(oct[2] - b'0');
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/<pid>/mountinfo`.
///
/// # Errors
/// A line with too few fields, a non-numeric id or no `-` separator.
pub fn parse_mountinfo(text: &str) -> Result<Vec<MountInfo>, ParseError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() < 10 {
            return Err(ParseError::new(n, "fewer than 10 fields"));
        }
        let id = fields[0]
            .parse()
            .map_err(|_| ParseError::new(n, "mount id is not a number"))?;
        let parent = fields[1]
            .parse()
            .map_err(|_| ParseError::new(n, "parent id is not a number"))?;
        let sep = fields[6..]
            .iter()
            .position(|f| *f == "-")
            .map(|p| p + 6)
            .ok_or_else(|| ParseError::new(n, "no '-' separator"))?;
        let (Some(fs_type), Some(_source), Some(super_options)) = (
            fields.get(sep + 1),
            fields.get(sep + 2),
            fields.get(sep + 3),
        ) else {
            return Err(ParseError::new(n, "missing fields after '-'"));
        };
        out.push(MountInfo {
            id,
            parent,
            root: unescape(fields[3]),
            mount_point: unescape(fields[4]),
            fs_type: (*fs_type).to_string(),
            super_options: (*super_options).to_string(),
        });
    }
    Ok(out)
}

/// One line of `/proc/<pid>/cgroup`: `hierarchy-id:controllers:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcCgroup {
    /// Hierarchy id (0 for the unified v2 hierarchy).
    pub hierarchy: u32,
    /// Controllers bound to the hierarchy (`name=systemd` included as is);
    /// empty for v2.
    pub controllers: Vec<String>,
    /// The process's cgroup path in that hierarchy (relative to its root).
    pub path: String,
}

/// Parses `/proc/<pid>/cgroup`.
///
/// # Errors
/// A line without two `:` separators or with a non-numeric hierarchy id.
pub fn parse_proc_cgroup(text: &str) -> Result<Vec<ProcCgroup>, ParseError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if line.is_empty() {
            continue;
        }
        let mut it = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
            return Err(ParseError::new(n, "expected id:controllers:path"));
        };
        let hierarchy = id
            .parse()
            .map_err(|_| ParseError::new(n, "hierarchy id is not a number"))?;
        out.push(ProcCgroup {
            hierarchy,
            controllers: ctrls
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect(),
            path: path.to_string(),
        });
    }
    Ok(out)
}

/// Parses a file holding one unsigned number (e.g. `memory.current`).
///
/// # Errors
/// Anything but one decimal number (surrounding whitespace allowed).
pub fn parse_u64(text: &str) -> Result<u64, ParseError> {
    text.trim()
        .parse()
        .map_err(|_| ParseError::new(1, "not an unsigned number"))
}

/// Parses a file holding one signed number (e.g. v1 `cpu.cfs_quota_us`, `-1`).
///
/// # Errors
/// Anything but one decimal number.
pub fn parse_i64(text: &str) -> Result<i64, ParseError> {
    text.trim()
        .parse()
        .map_err(|_| ParseError::new(1, "not a number"))
}

/// A limit as read from a control file: a number or no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Limit {
    /// No limit (`max` on v2, `-1` or the page-counter maximum on v1).
    Max,
    /// A limit of this many units (bytes, pids, ...).
    Value(u64),
}

/// v1 reports "no memory limit" as the page counter's maximum rounded to a
/// page; anything at or above this is treated as [`Limit::Max`].
pub const V1_UNLIMITED: u64 = 0x7FFF_FFFF_FFFF_F000;

/// Parses a limit: `max`, `-1`, or a number (v1's page-counter maximum and
/// above count as `max`).
///
/// # Errors
/// Anything else.
pub fn parse_limit(text: &str) -> Result<Limit, ParseError> {
    let t = text.trim();
    if t == "max" || t == "-1" {
        return Ok(Limit::Max);
    }
    let v = parse_u64(t)?;
    Ok(if v >= V1_UNLIMITED {
        Limit::Max
    } else {
        Limit::Value(v)
    })
}

/// Parses a flat keyed file (`key value` per line: `cpu.stat`, `memory.stat`,
/// `memory.events`, `memory.oom_control`, v1 `cpuacct.stat`).
///
/// # Errors
/// A line that is not exactly a key and an unsigned number.
pub fn parse_flat_keyed(text: &str) -> Result<Vec<(String, u64)>, ParseError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut it = line.split_whitespace();
        let (Some(k), Some(v), None) = (it.next(), it.next(), it.next()) else {
            return Err(ParseError::new(n, "expected 'key value'"));
        };
        let v = v
            .parse()
            .map_err(|_| ParseError::new(n, "value is not an unsigned number"))?;
        out.push((k.to_string(), v));
    }
    Ok(out)
}

/// Looks a key up in a parsed flat keyed file.
pub fn keyed(entries: &[(String, u64)], key: &str) -> Option<u64> {
    entries.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

/// A `major:minor` device number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DeviceNumber {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
}

fn parse_dev(s: &str, n: usize) -> Result<DeviceNumber, ParseError> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| ParseError::new(n, "device is not major:minor"))?;
    let major = a
        .parse()
        .map_err(|_| ParseError::new(n, "major is not a number"))?;
    let minor = b
        .parse()
        .map_err(|_| ParseError::new(n, "minor is not a number"))?;
    Ok(DeviceNumber { major, minor })
}

/// One line of a nested keyed file such as v2 `io.stat`:
/// `8:0 rbytes=1 wbytes=2 ...`.
pub type NestedLine = (DeviceNumber, Vec<(String, u64)>);

/// Parses v2 `io.stat` (and other `maj:min key=value ...` files).
///
/// # Errors
/// A bad device number or a pair that is not `key=number`.
pub fn parse_io_stat(text: &str) -> Result<Vec<NestedLine>, ParseError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let mut it = line.split_whitespace();
        let Some(dev) = it.next() else { continue };
        let dev = parse_dev(dev, n)?;
        let mut pairs = Vec::new();
        for kv in it {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| ParseError::new(n, "expected key=value"))?;
            let v = v
                .parse()
                .map_err(|_| ParseError::new(n, "value is not an unsigned number"))?;
            pairs.push((k.to_string(), v));
        }
        out.push((dev, pairs));
    }
    Ok(out)
}

/// One entry of a v1 blkio table (`8:0 Read 4096`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlkioEntry {
    /// The device.
    pub device: DeviceNumber,
    /// The operation (`Read`, `Write`, `Sync`, `Async`, `Discard`, `Total`).
    pub op: String,
    /// The value.
    pub value: u64,
}

/// Parses a v1 blkio table (`blkio.throttle.io_service_bytes`,
/// `blkio.throttle.io_serviced`); the trailing `Total N` line is skipped.
///
/// # Errors
/// A line that is not `maj:min Op number` or `Total number`.
pub fn parse_blkio_v1(text: &str) -> Result<Vec<BlkioEntry>, ParseError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            [] => {}
            ["Total", v] => {
                parse_u64(v).map_err(|_| ParseError::new(n, "total is not a number"))?;
            }
            [dev, op, v] => out.push(BlkioEntry {
                device: parse_dev(dev, n)?,
                op: (*op).to_string(),
                value: v
                    .parse()
                    .map_err(|_| ParseError::new(n, "value is not a number"))?,
            }),
            _ => return Err(ParseError::new(n, "expected 'maj:min Op value'")),
        }
    }
    Ok(out)
}

/// One line of a pressure (PSI) file.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PressureLine {
    /// Share of time stalled over the last 10 s, in percent.
    pub avg10: f64,
    /// Over the last 60 s, in percent.
    pub avg60: f64,
    /// Over the last 300 s, in percent.
    pub avg300: f64,
    /// Total stall time in microseconds.
    pub total_usec: u64,
}

/// A pressure (PSI) file: `some` and, where the kernel reports it, `full`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pressure {
    /// Some tasks stalled.
    pub some: PressureLine,
    /// All non-idle tasks stalled (absent for cpu on older kernels).
    pub full: Option<PressureLine>,
}

/// Parses a PSI file (`cpu.pressure`, `memory.pressure`, `io.pressure`).
///
/// # Errors
/// A line not of the form `some|full avg10=.. avg60=.. avg300=.. total=..`
/// or no `some` line.
pub fn parse_pressure(text: &str) -> Result<Pressure, ParseError> {
    let mut some = None;
    let mut full = None;
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let mut it = line.split_whitespace();
        let Some(kind) = it.next() else { continue };
        let mut pl = PressureLine::default();
        let mut seen = 0u8;
        for kv in it {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| ParseError::new(n, "expected key=value"))?;
            let bad = || ParseError::new(n, "bad number");
            let avg = |v: &str| -> Result<f64, ParseError> {
                let x: f64 = v.parse().map_err(|_| bad())?;
                if x.is_finite() && x >= 0.0 {
                    Ok(x)
                } else {
                    Err(bad())
                }
            };
            match k {
                "avg10" => (pl.avg10, seen) = (avg(v)?, seen | 1),
                "avg60" => (pl.avg60, seen) = (avg(v)?, seen | 2),
                "avg300" => (pl.avg300, seen) = (avg(v)?, seen | 4),
                "total" => (pl.total_usec, seen) = (v.parse().map_err(|_| bad())?, seen | 8),
                _ => {}
            }
        }
        if seen != 15 {
            return Err(ParseError::new(n, "missing avg10/avg60/avg300/total"));
        }
        match kind {
            "some" => some = Some(pl),
            "full" => full = Some(pl),
            _ => return Err(ParseError::new(n, "expected 'some' or 'full'")),
        }
    }
    let some = some.ok_or_else(|| ParseError::new(0, "no 'some' line"))?;
    Ok(Pressure { some, full })
}

/// Largest CPU or node number accepted in a list (the kernel's NR_CPUS
/// ceiling is 8192).
pub const MAX_CPU: u32 = 8191;

/// Parses a cpu or node list (`0-3,5,7-8`; empty means none).
///
/// # Errors
/// A bad number, a reversed range, or a number above [`MAX_CPU`].
pub fn parse_cpu_list(text: &str) -> Result<BTreeSet<u32>, ParseError> {
    let mut out = BTreeSet::new();
    let t = text.trim();
    if t.is_empty() {
        return Ok(out);
    }
    for part in t.split(',') {
        let num = |s: &str| -> Result<u32, ParseError> {
            let v: u32 = s
                .trim()
                .parse()
                .map_err(|_| ParseError::new(1, "not a cpu number"))?;
            if v > MAX_CPU {
                return Err(ParseError::new(1, "cpu number too large"));
            }
            Ok(v)
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(ParseError::new(1, "reversed range"));
                }
                out.extend(a..=b);
            }
            None => {
                out.insert(num(part)?);
            }
        }
    }
    Ok(out)
}

/// Renders a set as a canonical cpu list (`0-3,5`).
pub fn render_cpu_list(set: &BTreeSet<u32>) -> String {
    let mut out = String::new();
    let mut it = set.iter().copied().peekable();
    while let Some(start) = it.next() {
        let mut end = start;
        while it.peek() == Some(&(end + 1)) {
            end += 1;
            it.next();
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn mountinfo_escapes() {
        let t = "36 31 0:33 / /sys/fs/cgroup/a\\040b rw - cgroup cgroup rw,cpu\n";
        let m = parse_mountinfo(t).unwrap();
        assert_eq!(m[0].mount_point, "/sys/fs/cgroup/a b");
    }

    #[test]
    fn mountinfo_optional_fields() {
        let t = "30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:9 master:2 - cgroup2 cgroup2 rw,nsdelegate\n";
        let m = parse_mountinfo(t).unwrap();
        assert_eq!(m[0].fs_type, "cgroup2");
        assert_eq!(m[0].super_options, "rw,nsdelegate");
    }

    #[test]
    fn mountinfo_bad_lines() {
        assert!(parse_mountinfo("1 2 3").is_err());
        assert!(parse_mountinfo("x 2 0:1 / /a rw a b c d e").is_err());
        assert!(parse_mountinfo("1 2 0:1 / /a rw a b c d e").is_err());
    }

    #[test]
    fn proc_cgroup_lines() {
        let p = parse_proc_cgroup("4:memory:/a/b\n1:name=systemd:/\n0::/x:y\n").unwrap();
        assert_eq!(p[0].controllers, vec!["memory"]);
        assert_eq!(p[2].hierarchy, 0);
        assert!(p[2].controllers.is_empty());
        assert_eq!(p[2].path, "/x:y");
        assert!(parse_proc_cgroup("nope").is_err());
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit("max\n"), Ok(Limit::Max));
        assert_eq!(parse_limit("-1"), Ok(Limit::Max));
        assert_eq!(parse_limit("9223372036854771712\n"), Ok(Limit::Max));
        assert_eq!(parse_limit("4096"), Ok(Limit::Value(4096)));
        assert!(parse_limit("lots").is_err());
    }

    #[test]
    fn pressure() {
        let t = "some avg10=0.12 avg60=1.00 avg300=0.00 total=1234\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=5\n";
        let p = parse_pressure(t).unwrap();
        assert_eq!(p.some.total_usec, 1234);
        assert_eq!(p.full.map(|f| f.total_usec), Some(5));
        assert!(parse_pressure("some avg10=NaN avg60=0 avg300=0 total=1").is_err());
        assert!(parse_pressure("").is_err());
    }

    #[test]
    fn blkio_and_io_stat() {
        let t = "8:0 Read 4096\n8:0 Write 0\nTotal 4096\n";
        let b = parse_blkio_v1(t).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].device, DeviceNumber { major: 8, minor: 0 });
        let s = parse_io_stat("259:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n").unwrap();
        assert_eq!(s[0].1[1], ("wbytes".to_string(), 2));
        assert!(parse_io_stat("259:0 rbytes").is_err());
    }

    #[test]
    fn cpu_lists() {
        let s = parse_cpu_list("0-3,5,7-8\n").unwrap();
        assert_eq!(render_cpu_list(&s), "0-3,5,7-8");
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("99999").is_err());
        assert!(parse_cpu_list("").unwrap().is_empty());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*") {
            let _ = parse_mountinfo(&s);
            let _ = parse_proc_cgroup(&s);
            let _ = parse_u64(&s);
            let _ = parse_i64(&s);
            let _ = parse_limit(&s);
            let _ = parse_flat_keyed(&s);
            let _ = parse_io_stat(&s);
            let _ = parse_blkio_v1(&s);
            let _ = parse_pressure(&s);
            let _ = parse_cpu_list(&s);
        }

        #[test]
        fn cpu_list_round_trips(set in proptest::collection::btree_set(0u32..300, 0..40)) {
            let text = render_cpu_list(&set);
            prop_assert_eq!(parse_cpu_list(&text).unwrap(), set);
        }

        #[test]
        fn flat_keyed_round_trips(entries in proptest::collection::vec(("[a-z_]{1,12}", any::<u64>()), 0..20)) {
            let text: String = entries.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
            let parsed = parse_flat_keyed(&text).unwrap();
            prop_assert_eq!(parsed, entries);
        }

        #[test]
        fn io_stat_round_trips(lines in proptest::collection::vec((any::<u32>(), any::<u32>(), proptest::collection::vec(("[a-z]{1,8}", any::<u64>()), 0..6)), 0..8)) {
            let text: String = lines.iter().map(|(a, b, kv)| {
                let pairs: Vec<String> = kv.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{a}:{b} {}\n", pairs.join(" "))
            }).collect();
            let parsed = parse_io_stat(&text).unwrap();
            prop_assert_eq!(parsed.len(), lines.len());
            for (p, (a, b, kv)) in parsed.iter().zip(&lines) {
                prop_assert_eq!(p.0, DeviceNumber { major: *a, minor: *b });
                prop_assert_eq!(&p.1, kv);
            }
        }

        #[test]
        fn mountinfo_round_trips(id in 1u32..100000, parent in 0u32..100000, mp in "/[a-z/]{0,20}", opts in "[a-z,=]{1,30}") {
            let line = format!("{id} {parent} 0:31 / {mp} rw,relatime shared:1 - cgroup cgroup {opts}\n");
            let m = parse_mountinfo(&line).unwrap();
            prop_assert_eq!(m[0].id, id);
            prop_assert_eq!(&m[0].mount_point, &mp);
            prop_assert_eq!(&m[0].super_options, &opts);
        }
    }
}
