//! The namespace kinds as a set of flags, with the names `lsns` and the OCI
//! runtime spec use.

use std::fmt;
use std::str::FromStr;

use crate::Error;

bitflags::bitflags! {
    /// A set of namespace kinds, as the `CLONE_NEW*` flags of clone(2),
    /// unshare(2) and setns(2).
    ///
    /// Each kind has two names: the one `lsns` and `/proc/PID/ns` use
    /// (`mnt`, `net`, ...), which [`Display`](fmt::Display) prints, and the one
    /// of the OCI runtime spec (`mount`, `network`, ...). [`FromStr`] accepts
    /// both, separated by commas, e.g. `"pid,mnt,uts"`.
    ///
    /// ```
    /// use hull_ns::Namespaces;
    /// let ns: Namespaces = "pid,mount,uts".parse().unwrap();
    /// assert_eq!(ns, Namespaces::PID | Namespaces::MNT | Namespaces::UTS);
    /// assert_eq!(ns.to_string(), "mnt,uts,pid");
    /// ```
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct Namespaces: u32 {
        /// Mount namespace (`CLONE_NEWNS`): `mnt`, OCI `mount`.
        const MNT = libc::CLONE_NEWNS as u32;
        /// UTS namespace (`CLONE_NEWUTS`): hostname and domain name.
        const UTS = libc::CLONE_NEWUTS as u32;
        /// IPC namespace (`CLONE_NEWIPC`): System V IPC and POSIX message queues.
        const IPC = libc::CLONE_NEWIPC as u32;
        /// User namespace (`CLONE_NEWUSER`): user and group ids, capabilities.
        const USER = libc::CLONE_NEWUSER as u32;
        /// PID namespace (`CLONE_NEWPID`).
        const PID = libc::CLONE_NEWPID as u32;
        /// Network namespace (`CLONE_NEWNET`): `net`, OCI `network`.
        const NET = libc::CLONE_NEWNET as u32;
        /// Cgroup namespace (`CLONE_NEWCGROUP`): the cgroup root a process sees.
        const CGROUP = libc::CLONE_NEWCGROUP as u32;
        /// Time namespace (`CLONE_NEWTIME`): monotonic and boottime offsets.
        const TIME = 0x0000_0080;
    }
}

/// Every kind in the order `/proc/PID/ns` and this crate list them, with
/// the `lsns` name and the OCI name.
pub(crate) const KINDS: [(Namespaces, &str, &str); 8] = [
    (Namespaces::MNT, "mnt", "mount"),
    (Namespaces::UTS, "uts", "uts"),
    (Namespaces::IPC, "ipc", "ipc"),
    (Namespaces::USER, "user", "user"),
    (Namespaces::PID, "pid", "pid"),
    (Namespaces::NET, "net", "network"),
    (Namespaces::CGROUP, "cgroup", "cgroup"),
    (Namespaces::TIME, "time", "time"),
];

impl Namespaces {
    /// The `lsns` (and `/proc/PID/ns/NAME`) name of a single kind, or `None`
    /// when `self` is not exactly one kind.
    pub fn name(self) -> Option<&'static str> {
        KINDS
            .iter()
            .find(|(k, _, _)| *k == self)
            .map(|(_, n, _)| *n)
    }

    /// The OCI runtime spec name (`mount`, `network`, `pid`, ...) of a single
    /// kind, or `None` when `self` is not exactly one kind.
    pub fn oci_name(self) -> Option<&'static str> {
        KINDS
            .iter()
            .find(|(k, _, _)| *k == self)
            .map(|(_, _, o)| *o)
    }

    /// Parses one kind by its `lsns` or OCI name.
    pub fn parse_kind(name: &str) -> Option<Namespaces> {
        KINDS
            .iter()
            .find(|(_, n, o)| *n == name || *o == name)
            .map(|(k, _, _)| *k)
    }

    /// The single kinds in `self`, in the canonical order.
    pub fn kinds(self) -> impl Iterator<Item = Namespaces> {
        KINDS
            .iter()
            .map(|(k, _, _)| *k)
            .filter(move |k| self.contains(*k))
    }

    /// The raw `CLONE_NEW*` bits as a C int.
    pub fn to_clone_flags(self) -> libc::c_int {
        // All defined bits are below 2^31, so the value fits an int.
        libc::c_int::try_from(self.bits()).unwrap_or(0)
    }
}

impl fmt::Display for Namespaces {
    /// Comma-separated `lsns` names in canonical order; empty for no kinds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for k in self.kinds() {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            f.write_str(k.name().unwrap_or("?"))?;
        }
        Ok(())
    }
}

impl FromStr for Namespaces {
    type Err = Error;

    /// Parses comma-separated kind names (`lsns` or OCI spelling); the empty
    /// string is the empty set.
    fn from_str(s: &str) -> Result<Self, Error> {
        let mut out = Namespaces::empty();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            out |= Namespaces::parse_kind(part).ok_or_else(|| Error::UnknownNamespace {
                name: part.to_string(),
            })?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_match_proc() {
        for (k, n, _) in KINDS {
            assert_eq!(k.name(), Some(n));
            assert!(
                std::path::Path::new("/proc/self/ns").join(n).exists(),
                "{n}"
            );
        }
        assert_eq!(Namespaces::TIME.bits(), 0x80);
        assert_eq!(Namespaces::parse_kind("network"), Some(Namespaces::NET));
        assert!("pid,bogus".parse::<Namespaces>().is_err());
        assert_eq!((Namespaces::PID | Namespaces::NET).name(), None);
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(bits in 0u32..256) {
            let ns = Namespaces::from_bits_truncate(
                KINDS.iter().enumerate()
                    .filter(|(i, _)| bits & (1 << i) != 0)
                    .fold(0, |acc, (_, (k, _, _))| acc | k.bits()));
            prop_assert_eq!(ns.to_string().parse::<Namespaces>().unwrap(), ns);
            let oci: Vec<_> = ns.kinds().map(|k| k.oci_name().unwrap()).collect();
            prop_assert_eq!(oci.join(",").parse::<Namespaces>().unwrap(), ns);
        }

        #[test]
        fn parse_never_panics(s in ".{0,40}") {
            let _ = s.parse::<Namespaces>();
        }
    }
}
