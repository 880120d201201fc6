//! Addresses with a prefix length (`198.18.0.1/24`, `fd00::1/64`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::error::{Error, Result};

/// An IPv4 or IPv6 address with a prefix length, as `ip addr` shows it.
///
/// The address keeps its host bits (`198.18.0.1/24` is an interface
/// address); [`IpCidr::network`] gives the subnet.
///
/// ```
/// use hull_netns::IpCidr;
/// let a: IpCidr = "198.18.0.7/24".parse().unwrap();
/// assert_eq!(a.network().to_string(), "198.18.0.0/24");
/// assert!(a.contains("198.18.0.200".parse().unwrap()));
/// assert!("198.18.0.7/33".parse::<IpCidr>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpCidr {
    addr: IpAddr,
    prefix: u8,
}

impl IpCidr {
    /// An address with a prefix length.
    ///
    /// # Errors
    /// [`Error::InvalidCidr`] if `prefix` exceeds 32 (IPv4) or 128 (IPv6).
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(Error::InvalidCidr {
                input: format!("{addr}/{prefix}"),
                reason: "prefix length too long for the address family",
            });
        }
        Ok(IpCidr { addr, prefix })
    }

    /// The address (host bits kept).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// True for IPv4.
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// The subnet: the address with its host bits cleared.
    pub fn network(&self) -> IpCidr {
        IpCidr {
            addr: mask(self.addr, self.prefix),
            prefix: self.prefix,
        }
    }

    /// Whether `ip` is in this subnet (same family, same network bits).
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == mask(self.addr, self.prefix)
    }

    /// The same prefix with another address.
    pub fn with_addr(&self, addr: IpAddr) -> Result<IpCidr> {
        IpCidr::new(addr, self.prefix)
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for IpCidr {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason| Error::InvalidCidr {
            input: s.to_string(),
            reason,
        };
        let (a, p) = s.split_once('/').ok_or_else(|| bad("missing /PREFIX"))?;
        let addr: IpAddr = a.parse().map_err(|_| bad("not an IP address"))?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("prefix length is not a number"));
        }
        let prefix: u8 = p
            .parse()
            .map_err(|_| bad("prefix length is not a number"))?;
        IpCidr::new(addr, prefix).map_err(|_| bad("prefix length too long for the address family"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_prints() {
        let c: IpCidr = "198.18.3.9/23".parse().unwrap();
        assert_eq!(c.to_string(), "198.18.3.9/23");
        assert_eq!(c.network().to_string(), "198.18.2.0/23");
        let c: IpCidr = "fd00::5/64".parse().unwrap();
        assert_eq!(c.network().to_string(), "fd00::/64");
        assert_eq!("0.0.0.0/0".parse::<IpCidr>().unwrap().network().prefix(), 0);
    }

    #[test]
    fn rejects_bad_text() {
        for s in [
            "",
            "198.18.0.1",
            "198.18.0.1/",
            "198.18.0.1/33",
            "198.18.0.1/+1",
            "x/24",
            "198.18.0.256/24",
            "::1/129",
            "198.18.0.1/24/1",
            "198.18.0.1/0024",
        ] {
            assert!(
                matches!(s.parse::<IpCidr>(), Err(Error::InvalidCidr { .. })),
                "{s}"
            );
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,64}") {
            let _ = s.parse::<IpCidr>();
        }

        #[test]
        fn round_trips(a in any::<u32>(), p in 0u8..=32) {
            let c = IpCidr::new(IpAddr::V4(Ipv4Addr::from(a)), p).unwrap();
            prop_assert_eq!(c.to_string().parse::<IpCidr>().unwrap(), c);
            prop_assert!(c.contains(c.addr()));
            prop_assert!(c.network().contains(c.addr()));
        }
    }
}
