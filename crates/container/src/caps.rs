//! Capabilities as a typed set.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// Linux capability names, in number order (`CAP_` prefix left out).
const NAMES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// One capability, by number (`CAP_CHOWN` is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Capability(u8);

impl Capability {
    /// The capability numbered `n`, if this crate knows it.
    pub fn from_number(n: u8) -> Option<Capability> {
        (usize::from(n) < NAMES.len()).then_some(Capability(n))
    }

    /// Its number.
    pub fn number(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CAP_{}", NAMES[usize::from(self.0)])
    }
}

impl FromStr for Capability {
    type Err = Error;

    /// Parses `CAP_CHOWN`, `chown` or `CHOWN`.
    fn from_str(s: &str) -> Result<Capability, Error> {
        let up = s.to_ascii_uppercase();
        let name = up.strip_prefix("CAP_").unwrap_or(&up);
        NAMES
            .iter()
            .position(|n| *n == name)
            .and_then(|i| u8::try_from(i).ok())
            .map(Capability)
            .ok_or_else(|| Error::Invalid {
                field: "capabilities",
                problem: format!("unknown capability {s:?}"),
            })
    }
}

/// A set of capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(u64);

impl Capabilities {
    /// No capabilities.
    pub fn empty() -> Capabilities {
        Capabilities(0)
    }

    /// Docker's default set: CHOWN, DAC_OVERRIDE, FSETID, FOWNER, MKNOD,
    /// NET_RAW, SETGID, SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE,
    /// SYS_CHROOT, KILL, AUDIT_WRITE.
    pub fn docker_default() -> Capabilities {
        [
            "CHOWN",
            "DAC_OVERRIDE",
            "FSETID",
            "FOWNER",
            "MKNOD",
            "NET_RAW",
            "SETGID",
            "SETUID",
            "SETFCAP",
            "SETPCAP",
            "NET_BIND_SERVICE",
            "SYS_CHROOT",
            "KILL",
            "AUDIT_WRITE",
        ]
        .iter()
        .filter_map(|n| n.parse().ok())
        .fold(Capabilities::empty(), Capabilities::with)
    }

    /// Every capability this crate knows.
    pub fn all() -> Capabilities {
        Capabilities((1u64 << NAMES.len()) - 1)
    }

    /// The set with `cap` added.
    pub fn with(self, cap: Capability) -> Capabilities {
        Capabilities(self.0 | 1 << cap.0)
    }

    /// The set without `cap`.
    pub fn without(self, cap: Capability) -> Capabilities {
        Capabilities(self.0 & !(1 << cap.0))
    }

    /// Whether `cap` is in the set.
    pub fn contains(self, cap: Capability) -> bool {
        self.0 & (1 << cap.0) != 0
    }

    /// The set from a bit mask; bits of capabilities this crate does not
    /// know are dropped.
    pub fn from_bits(bits: u64) -> Capabilities {
        Capabilities(bits & Capabilities::all().0)
    }

    /// The set as a bit mask (bit N = capability N), as in
    /// `/proc/PID/status`.
    pub fn bits(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_default_set() {
        let c: Capability = "CAP_SYS_ADMIN".parse().unwrap();
        assert_eq!(c.number(), 21);
        assert_eq!(c.to_string(), "CAP_SYS_ADMIN");
        assert_eq!("chown".parse::<Capability>().unwrap().number(), 0);
        assert!("CAP_BOGUS".parse::<Capability>().is_err());
        // Docker's default set as /proc/PID/status shows it.
        assert_eq!(Capabilities::docker_default().bits(), 0x0000_0000_a804_25fb);
        assert_eq!(
            Capability::from_number(40).unwrap().to_string(),
            "CAP_CHECKPOINT_RESTORE"
        );
        assert!(Capability::from_number(41).is_none());
    }
}
