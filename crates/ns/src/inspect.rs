//! Every namespace on the system, as `lsns` lists them.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::flags::KINDS;
use crate::nsfd::NsId;
use crate::{Error, Namespaces, Result};

/// One namespace and the processes in it, as a line of `lsns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceInfo {
    /// Its kind (exactly one flag).
    pub kind: Namespaces,
    /// Its identity; `id.ino` is what `lsns` shows as NS.
    pub id: NsId,
    /// How many processes (not threads) are in it.
    pub nprocs: usize,
    /// The lowest pid in it.
    pub pid: i32,
    /// That process's real uid.
    pub uid: u32,
    /// That process's command line (its `comm` in brackets-free form when the
    /// command line is empty, as for kernel threads), as `lsns` shows it.
    pub command: String,
}

/// Lists every namespace that has at least one process, by walking
/// `/proc/*/ns`, sorted by kind then inode like `lsns`.
///
/// Processes that exit during the walk are skipped, and so are those whose
/// namespace links cannot be read.
///
/// # Errors
/// [`Error::ReadProc`] if `/proc` itself cannot be read.
pub fn list_namespaces() -> Result<Vec<NamespaceInfo>> {
    list_namespaces_in(Path::new("/proc"))
}

fn list_namespaces_in(proc: &Path) -> Result<Vec<NamespaceInfo>> {
    let rd = std::fs::read_dir(proc).map_err(|source| Error::ReadProc {
        path: proc.into(),
        source,
    })?;
    let mut pids: Vec<i32> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect();
    pids.sort_unstable();
    let mut by_ns: BTreeMap<(u32, NsId), (usize, i32)> = BTreeMap::new();
    for &pid in &pids {
        for (kind, name, _) in KINDS {
            let Ok(meta) = std::fs::metadata(proc.join(format!("{pid}/ns/{name}"))) else {
                continue;
            };
            let id = NsId {
                dev: meta.dev(),
                ino: meta.ino(),
            };
            let e = by_ns.entry((kind.bits(), id)).or_insert((0, pid));
            e.0 += 1;
        }
    }
    let mut out = Vec::with_capacity(by_ns.len());
    for ((bits, id), (nprocs, pid)) in by_ns {
        let (uid, command) = describe(proc, pid);
        out.push(NamespaceInfo {
            kind: Namespaces::from_bits_truncate(bits),
            id,
            nprocs,
            pid,
            uid,
            command,
        });
    }
    out.sort_by_key(|n| (n.id.ino, n.kind.bits()));
    Ok(out)
}

fn describe(proc: &Path, pid: i32) -> (u32, String) {
    let uid = std::fs::read_to_string(proc.join(format!("{pid}/status")))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(u32::MAX);
    let cmdline = std::fs::read(proc.join(format!("{pid}/cmdline"))).unwrap_or_default();
    let command = if cmdline.is_empty() {
        std::fs::read_to_string(proc.join(format!("{pid}/comm")))
            .unwrap_or_default()
            .trim_end_matches('\n')
            .to_string()
    } else {
        cmdline
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(String::from_utf8_lossy)
            .collect::<Vec<_>>()
            .join(" ")
    };
    (uid, command)
}
