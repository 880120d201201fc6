//! User-namespace id maps: the `/proc/PID/uid_map` format, validation, and
//! writing maps for a child (directly or through `newuidmap`/`newgidmap`).

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;

use crate::{Error, Result};

/// The most lines the kernel accepts in one map (since Linux 4.15).
pub const MAX_ID_MAP_LINES: usize = 340;

/// One line of an id map: `count` ids starting at `inside` in the namespace
/// are `outside..outside+count` in the parent namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdRange {
    /// First id inside the namespace.
    pub inside: u32,
    /// First id in the parent namespace.
    pub outside: u32,
    /// Number of ids (at least 1).
    pub count: u32,
}

/// What is wrong with an id map line (see [`Error::IdMap`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdMapProblem {
    /// Not three unsigned 32-bit numbers.
    Malformed,
    /// A range of zero ids.
    ZeroCount,
    /// `start + count` passes 2^32 - 1 (the kernel's invalid id).
    Overflow,
    /// Overlaps an earlier line's range inside the namespace.
    OverlapInside,
    /// Overlaps an earlier line's range outside the namespace.
    OverlapOutside,
    /// More than [`MAX_ID_MAP_LINES`] lines.
    TooManyLines,
    /// No lines at all.
    Empty,
}

impl fmt::Display for IdMapProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdMapProblem::Malformed => {
                "expected three unsigned 32-bit numbers: inside outside count"
            }
            IdMapProblem::ZeroCount => "count must be at least 1",
            IdMapProblem::Overflow => "range runs past id 4294967294",
            IdMapProblem::OverlapInside => "range overlaps an earlier one inside the namespace",
            IdMapProblem::OverlapOutside => "range overlaps an earlier one outside the namespace",
            IdMapProblem::TooManyLines => "more than 340 lines",
            IdMapProblem::Empty => "the map has no lines",
        })
    }
}

impl IdRange {
    /// A range, validated on its own (count, overflow).
    pub fn new(inside: u32, outside: u32, count: u32) -> Result<IdRange> {
        let r = IdRange {
            inside,
            outside,
            count,
        };
        r.check(0)?;
        Ok(r)
    }

    fn check(&self, line: usize) -> Result<()> {
        let problem = if self.count == 0 {
            Some(IdMapProblem::ZeroCount)
        } else if u64::from(self.inside) + u64::from(self.count) > u64::from(u32::MAX)
            || u64::from(self.outside) + u64::from(self.count) > u64::from(u32::MAX)
        {
            Some(IdMapProblem::Overflow)
        } else {
            None
        };
        match problem {
            Some(problem) => Err(Error::IdMap {
                line,
                text: self.to_string(),
                problem,
            }),
            None => Ok(()),
        }
    }

    fn overlaps(a_start: u32, a_count: u32, b_start: u32, b_count: u32) -> bool {
        let (a0, a1) = (u64::from(a_start), u64::from(a_start) + u64::from(a_count));
        let (b0, b1) = (u64::from(b_start), u64::from(b_start) + u64::from(b_count));
        a0 < b1 && b0 < a1
    }
}

impl fmt::Display for IdRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.inside, self.outside, self.count)
    }
}

/// A uid or gid map: up to 340 non-overlapping [`IdRange`]s, valid by
/// construction.
///
/// Parses and renders the `/proc/PID/uid_map` format (one `inside outside
/// count` line per range, any amount of blank space between numbers).
///
/// ```
/// use hull_ns::IdMap;
/// let map: IdMap = "0 100000 65536\n".parse().unwrap();
/// assert_eq!(map.map_to_outside(0), Some(100000));
/// assert!("0 0 1\n0 5 1".parse::<IdMap>().is_err()); // overlap inside
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdMap {
    ranges: Vec<IdRange>,
}

impl IdMap {
    /// A map of the given ranges, validated as the kernel would.
    ///
    /// # Errors
    /// [`Error::IdMap`] naming the first bad line.
    pub fn new(ranges: impl IntoIterator<Item = IdRange>) -> Result<IdMap> {
        let ranges: Vec<IdRange> = ranges.into_iter().collect();
        if ranges.is_empty() {
            return Err(Error::IdMap {
                line: 0,
                text: String::new(),
                problem: IdMapProblem::Empty,
            });
        }
        if ranges.len() > MAX_ID_MAP_LINES {
            return Err(Error::IdMap {
                line: MAX_ID_MAP_LINES + 1,
                text: ranges[MAX_ID_MAP_LINES].to_string(),
                problem: IdMapProblem::TooManyLines,
            });
        }
        for (i, r) in ranges.iter().enumerate() {
            r.check(i + 1)?;
            for earlier in &ranges[..i] {
                let problem = if IdRange::overlaps(r.inside, r.count, earlier.inside, earlier.count)
                {
                    IdMapProblem::OverlapInside
                } else if IdRange::overlaps(r.outside, r.count, earlier.outside, earlier.count) {
                    IdMapProblem::OverlapOutside
                } else {
                    continue;
                };
                return Err(Error::IdMap {
                    line: i + 1,
                    text: r.to_string(),
                    problem,
                });
            }
        }
        Ok(IdMap { ranges })
    }

    /// A map of one id: `inside` in the namespace is `outside` outside.
    pub fn single(inside: u32, outside: u32) -> IdMap {
        IdMap {
            ranges: vec![IdRange {
                inside,
                outside,
                count: 1,
            }],
        }
    }

    /// The ranges, in the order given.
    pub fn ranges(&self) -> &[IdRange] {
        &self.ranges
    }

    /// The id outside the namespace that `inside` maps to, if any.
    pub fn map_to_outside(&self, inside: u32) -> Option<u32> {
        self.ranges.iter().find_map(|r| {
            let off = inside.checked_sub(r.inside)?;
            (off < r.count).then(|| r.outside + off)
        })
    }

    /// The id inside the namespace that `outside` maps to, if any.
    pub fn map_to_inside(&self, outside: u32) -> Option<u32> {
        self.ranges.iter().find_map(|r| {
            let off = outside.checked_sub(r.outside)?;
            (off < r.count).then(|| r.inside + off)
        })
    }

    /// Writes this map as `/proc/PID/uid_map` (or `gid_map`, per `kind`).
    ///
    /// The kernel accepts one write per map, in one write(2) call; this does
    /// exactly that. Writing a gid map as an unprivileged user needs
    /// `/proc/PID/setgroups` set to `deny` first ([`write_setgroups_deny`]).
    ///
    /// # Errors
    /// [`Error::WriteProcFile`] naming the file.
    pub fn write_for(&self, pid: i32, kind: IdMapKind) -> Result<()> {
        let path = PathBuf::from(format!("/proc/{pid}/{}", kind.file_name()));
        write_proc_file(&path, self.to_string().as_bytes())
    }

    /// Writes this map for `pid` with the setuid helper `newuidmap` or
    /// `newgidmap` (from shadow's `uidmap` package), which lets an
    /// unprivileged user install the multi-range maps that `/etc/subuid` and
    /// `/etc/subgid` allow.
    ///
    /// # Errors
    /// [`Error::IdMapHelper`] with the helper's status and stderr.
    pub fn write_with_helper(&self, pid: i32, kind: IdMapKind) -> Result<()> {
        let program = match kind {
            IdMapKind::Uid => "newuidmap",
            IdMapKind::Gid => "newgidmap",
        };
        let mut cmd = std::process::Command::new(program);
        cmd.arg(pid.to_string());
        for r in &self.ranges {
            cmd.args([
                r.inside.to_string(),
                r.outside.to_string(),
                r.count.to_string(),
            ]);
        }
        let out = cmd.output().map_err(|e| Error::IdMapHelper {
            program: program.into(),
            pid,
            detail: e.to_string(),
        })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::IdMapHelper {
                program: program.into(),
                pid,
                detail: format!(
                    "{}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            })
        }
    }
}

/// Which map a process file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdMapKind {
    /// `/proc/PID/uid_map`.
    Uid,
    /// `/proc/PID/gid_map`.
    Gid,
}

impl IdMapKind {
    fn file_name(self) -> &'static str {
        match self {
            IdMapKind::Uid => "uid_map",
            IdMapKind::Gid => "gid_map",
        }
    }
}

/// Writes `deny` to `/proc/PID/setgroups`, which an unprivileged writer must
/// do before writing a gid map (and which keeps the process from dropping
/// supplementary groups to gain access).
///
/// # Errors
/// [`Error::WriteProcFile`].
pub fn write_setgroups_deny(pid: i32) -> Result<()> {
    write_proc_file(&PathBuf::from(format!("/proc/{pid}/setgroups")), b"deny")
}

pub(crate) fn write_proc_file(path: &std::path::Path, data: &[u8]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|source| Error::WriteProcFile {
            path: path.into(),
            source,
        })?;
    let n = f.write(data).map_err(|source| Error::WriteProcFile {
        path: path.into(),
        source,
    })?;
    if n != data.len() {
        return Err(Error::WriteProcFile {
            path: path.into(),
            source: std::io::Error::from_raw_os_error(libc::EIO),
        });
    }
    Ok(())
}

impl fmt::Display for IdMap {
    /// One `inside outside count` line per range, each ending in a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.ranges {
            writeln!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for IdMap {
    type Err = Error;

    /// Parses the `/proc/PID/uid_map` format; blank lines are skipped.
    fn from_str(s: &str) -> Result<IdMap> {
        let mut ranges = Vec::new();
        for (i, line) in s.lines().enumerate() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.is_empty() {
                continue;
            }
            let nums: Option<Vec<u32>> = (fields.len() == 3)
                .then(|| fields.iter().map(|f| f.parse::<u32>().ok()).collect())
                .flatten();
            let Some(nums) = nums else {
                return Err(Error::IdMap {
                    line: i + 1,
                    text: line.to_string(),
                    problem: IdMapProblem::Malformed,
                });
            };
            ranges.push(IdRange {
                inside: nums[0],
                outside: nums[1],
                count: nums[2],
            });
        }
        IdMap::new(ranges)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_kernel_format() {
        let m: IdMap = "         0          0 4294967295\n".parse().unwrap();
        assert_eq!(m.ranges()[0].count, u32::MAX);
        let m: IdMap = "0 1000 1\n1 100000 65536\n".parse().unwrap();
        assert_eq!(m.map_to_outside(1), Some(100000));
        assert_eq!(m.map_to_inside(1000), Some(0));
        assert_eq!(m.map_to_outside(70000), None);
        assert_eq!(m.to_string(), "0 1000 1\n1 100000 65536\n");
    }

    #[test]
    fn rejects_what_the_kernel_rejects() {
        let problem = |s: &str| match s.parse::<IdMap>() {
            Err(Error::IdMap { problem, .. }) => problem,
            other => panic!("{s:?}: {other:?}"),
        };
        assert_eq!(problem(""), IdMapProblem::Empty);
        assert_eq!(problem("0 0"), IdMapProblem::Malformed);
        assert_eq!(problem("0 0 -1"), IdMapProblem::Malformed);
        assert_eq!(problem("a b c"), IdMapProblem::Malformed);
        assert_eq!(problem("0 0 0"), IdMapProblem::ZeroCount);
        assert_eq!(problem("4294967295 0 1"), IdMapProblem::Overflow);
        assert_eq!(problem("0 10 5\n4 100 2"), IdMapProblem::OverlapInside);
        assert_eq!(problem("0 10 5\n5 14 2"), IdMapProblem::OverlapOutside);
        let many: String = (0..341).map(|i| format!("{i} {i} 1\n")).collect();
        assert_eq!(problem(&many), IdMapProblem::TooManyLines);
    }

    fn ranges() -> impl Strategy<Value = Vec<IdRange>> {
        prop::collection::vec((0u32..1900, 0u32..1900, 1u32..50), 1..8).prop_map(|v| {
            // Range i lies in [2000 i, 2000 i + 1949): never overlapping.
            v.into_iter()
                .zip(0u32..)
                .map(|((a, b, c), i)| IdRange {
                    inside: a + 2000 * i,
                    outside: b + 2000 * i,
                    count: c,
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn render_parse_round_trip(r in ranges()) {
            let m = IdMap::new(r).unwrap();
            prop_assert_eq!(m.to_string().parse::<IdMap>().unwrap(), m.clone());
            for r in m.ranges() {
                prop_assert_eq!(m.map_to_outside(r.inside + r.count - 1), Some(r.outside + r.count - 1));
            }
        }

        #[test]
        fn parse_never_panics(s in "[0-9 \n-]{0,60}") {
            let _ = s.parse::<IdMap>();
        }

        #[test]
        fn accepted_maps_have_no_overlaps(v in prop::collection::vec((0u32..100, 0u32..100, 0u32..20), 1..6)) {
            let rs: Vec<IdRange> = v.into_iter().map(|(a, b, c)| IdRange { inside: a, outside: b, count: c }).collect();
            if let Ok(m) = IdMap::new(rs) {
                for (i, a) in m.ranges().iter().enumerate() {
                    for b in &m.ranges()[..i] {
                        prop_assert!(!IdRange::overlaps(a.inside, a.count, b.inside, b.count));
                        prop_assert!(!IdRange::overlaps(a.outside, a.count, b.outside, b.count));
                    }
                }
            }
        }
    }
}
