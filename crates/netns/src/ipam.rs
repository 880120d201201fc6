//! Address allocation for a bridge subnet, persisted in a state directory
//! and serialised with `flock(2)` so concurrent containers (threads or
//! processes) never get the same address.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::cidr::IpCidr;
use crate::error::{Error, Result};
use crate::sys;

/// An IPv4 address pool for one subnet.
///
/// State lives in `DIR/SUBNET` (one `ADDRESS OWNER` line per allocation,
/// replaced atomically) next to a lock file `DIR/SUBNET.lock` that every
/// operation holds exclusively. The network address, the gateway and the
/// broadcast address are never handed out. The state file goes away with
/// its last allocation; the (empty) lock file stays, since removing a lock
/// file others may be waiting on would break the lock.
///
/// ```no_run
/// use hull_netns::Ipam;
/// # fn main() -> Result<(), hull_netns::Error> {
/// let pool = Ipam::open("/run/hull/ipam", "198.18.0.0/24".parse()?, None)?;
/// let a = pool.allocate("ctr-1")?; // 198.18.0.2/24 (.1 is the gateway)
/// pool.release(a.addr())?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Ipam {
    subnet: IpCidr,
    gateway: Ipv4Addr,
    state: PathBuf,
    lock: PathBuf,
}

fn v4(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}

impl Ipam {
    /// Opens (creating `state_dir` if needed) the pool of `subnet`, whose
    /// gateway is `gateway` or, when `None`, the first host address.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a non-IPv4 subnet or one smaller than
    /// /30, [`Error::GatewayOutsideSubnet`], [`Error::IpamState`] if the
    /// directory cannot be created.
    pub fn open(
        state_dir: impl AsRef<Path>,
        subnet: IpCidr,
        gateway: Option<IpAddr>,
    ) -> Result<Self> {
        let subnet = subnet.network();
        let Some(net) = v4(subnet.addr()) else {
            return Err(Error::InvalidConfig {
                field: "ipam subnet",
                reason: format!("{subnet} is not IPv4"),
            });
        };
        if subnet.prefix() > 30 {
            return Err(Error::InvalidConfig {
                field: "ipam subnet",
                reason: format!("{subnet} has no room for a gateway and a container"),
            });
        }
        let gateway = match gateway {
            None => Ipv4Addr::from(u32::from(net) + 1),
            Some(g) => {
                let usable = v4(g).filter(|g| {
                    subnet.contains(IpAddr::V4(*g)) && *g != net && *g != broadcast(subnet)
                });
                usable.ok_or(Error::GatewayOutsideSubnet {
                    gateway: g,
                    subnet: subnet.to_string(),
                })?
            }
        };
        let dir = state_dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| Error::IpamState {
            path: dir.to_path_buf(),
            source,
        })?;
        let base = format!("{net}-{}", subnet.prefix());
        Ok(Ipam {
            subnet,
            gateway,
            state: dir.join(&base),
            lock: dir.join(format!("{base}.lock")),
        })
    }

    /// The subnet.
    pub fn subnet(&self) -> IpCidr {
        self.subnet
    }

    /// The gateway (never allocated), with the subnet's prefix.
    pub fn gateway(&self) -> IpCidr {
        IpCidr::new(IpAddr::V4(self.gateway), self.subnet.prefix()).unwrap_or(self.subnet)
    }

    /// The state file.
    pub fn state_path(&self) -> &Path {
        &self.state
    }

    fn state_err(&self, path: &Path) -> impl Fn(std::io::Error) -> Error {
        let path = path.to_path_buf();
        move |source| Error::IpamState {
            path: path.clone(),
            source,
        }
    }

    /// Runs `f` on the current allocations under the exclusive lock and
    /// writes them back if `f` says so.
    fn locked<T>(
        &self,
        f: impl FnOnce(&mut Vec<(Ipv4Addr, String)>) -> Result<(T, bool)>,
    ) -> Result<T> {
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&self.lock)
            .map_err(self.state_err(&self.lock))?;
        sys::flock_exclusive(lock.as_fd()).map_err(self.state_err(&self.lock))?;
        let mut entries = self.read()?;
        let (out, changed) = f(&mut entries)?;
        if changed {
            self.write(&entries)?;
        }
        drop(lock);
        Ok(out)
    }

    fn read(&self) -> Result<Vec<(Ipv4Addr, String)>> {
        let mut text = String::new();
        match File::open(&self.state) {
            Ok(mut f) => {
                f.read_to_string(&mut text)
                    .map_err(self.state_err(&self.state))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.state_err(&self.state)(e)),
        }
        parse_state(&text).map_err(|line| Error::IpamCorrupt {
            path: self.state.clone(),
            line,
        })
    }

    fn write(&self, entries: &[(Ipv4Addr, String)]) -> Result<()> {
        if entries.is_empty() {
            return match std::fs::remove_file(&self.state) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(self.state_err(&self.state)(e))
                }
                _ => Ok(()),
            };
        }
        // Not with_extension: the subnet's dots would make it cut the name.
        let mut tmp = self.state.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut text = String::new();
        for (a, o) in entries {
            text.push_str(&format!("{a} {o}\n"));
        }
        let mut f = File::create(&tmp).map_err(self.state_err(&tmp))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_data())
            .map_err(self.state_err(&tmp))?;
        std::fs::rename(&tmp, &self.state).map_err(self.state_err(&self.state))
    }

    /// Allocates the lowest free address for `owner` (a container id: no
    /// whitespace), returned with the subnet's prefix.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a bad owner, [`Error::SubnetFull`],
    /// [`Error::IpamState`], [`Error::IpamCorrupt`].
    pub fn allocate(&self, owner: &str) -> Result<IpCidr> {
        validate_owner(owner)?;
        let net = u32::from(v4(self.subnet.addr()).unwrap_or(Ipv4Addr::UNSPECIFIED));
        let last = u32::from(broadcast(self.subnet));
        let addr = self.locked(|entries| {
            let taken: std::collections::HashSet<Ipv4Addr> =
                entries.iter().map(|(a, _)| *a).collect();
            let free = (net + 1..last)
                .map(Ipv4Addr::from)
                .find(|a| *a != self.gateway && !taken.contains(a));
            let Some(a) = free else {
                return Err(Error::SubnetFull {
                    subnet: self.subnet.to_string(),
                });
            };
            entries.push((a, owner.to_string()));
            Ok((a, true))
        })?;
        IpCidr::new(IpAddr::V4(addr), self.subnet.prefix())
    }

    /// Releases one address. Returns whether it was allocated.
    ///
    /// # Errors
    /// [`Error::AddressNotInSubnet`], [`Error::IpamState`],
    /// [`Error::IpamCorrupt`].
    pub fn release(&self, addr: IpAddr) -> Result<bool> {
        let Some(a) = v4(addr).filter(|_| self.subnet.contains(addr)) else {
            return Err(Error::AddressNotInSubnet {
                addr,
                subnet: self.subnet.to_string(),
            });
        };
        self.locked(|entries| {
            let before = entries.len();
            entries.retain(|(x, _)| *x != a);
            let changed = entries.len() != before;
            Ok((changed, changed))
        })
    }

    /// Releases every address of `owner`; returns how many.
    ///
    /// # Errors
    /// [`Error::IpamState`], [`Error::IpamCorrupt`].
    pub fn release_owner(&self, owner: &str) -> Result<usize> {
        self.locked(|entries| {
            let before = entries.len();
            entries.retain(|(_, o)| o != owner);
            let n = before - entries.len();
            Ok((n, n > 0))
        })
    }

    /// The current allocations, `(address, owner)`.
    ///
    /// # Errors
    /// [`Error::IpamState`], [`Error::IpamCorrupt`].
    pub fn allocations(&self) -> Result<Vec<(IpAddr, String)>> {
        self.locked(|entries| {
            Ok((
                entries
                    .iter()
                    .map(|(a, o)| (IpAddr::V4(*a), o.clone()))
                    .collect(),
                false,
            ))
        })
    }
}

fn broadcast(subnet: IpCidr) -> Ipv4Addr {
    let net = u32::from(v4(subnet.addr()).unwrap_or(Ipv4Addr::UNSPECIFIED));
    let host = u32::MAX
        .checked_shr(u32::from(subnet.prefix()))
        .unwrap_or(0);
    Ipv4Addr::from(net | host)
}

fn validate_owner(owner: &str) -> Result<()> {
    if owner.is_empty()
        || owner.len() > 255
        || owner.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::InvalidConfig {
            field: "ipam owner",
            reason: format!("{owner:?} must be 1-255 characters without whitespace"),
        });
    }
    Ok(())
}

/// Whether state text parses (for the fuzz target).
pub(crate) fn parse_state_for_fuzzing(text: &str) -> bool {
    parse_state(text).is_ok()
}

/// Parses state text; on failure returns the offending line.
fn parse_state(text: &str) -> std::result::Result<Vec<(Ipv4Addr, String)>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut it = l.split_whitespace();
            match (it.next().map(str::parse::<Ipv4Addr>), it.next(), it.next()) {
                (Some(Ok(a)), Some(o), None) => Ok((a, o.to_string())),
                _ => Err(l.to_string()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn state_text_parses() {
        let e = parse_state("198.18.0.2 a\n\n198.18.0.3 b\n").unwrap();
        assert_eq!(e.len(), 2);
        assert!(parse_state("198.18.0.2\n").is_err());
        assert!(parse_state("x a\n").is_err());
        assert!(parse_state("198.18.0.2 a b\n").is_err());
    }

    #[test]
    fn broadcast_of_subnets() {
        assert_eq!(
            broadcast("198.18.0.0/24".parse().unwrap()).to_string(),
            "198.18.0.255"
        );
        assert_eq!(
            broadcast("198.18.0.0/15".parse().unwrap()).to_string(),
            "198.19.255.255"
        );
    }

    proptest! {
        #[test]
        fn state_parser_never_panics(s in "\\PC{0,200}") {
            let _ = parse_state(&s);
        }
    }
}
