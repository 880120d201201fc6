//! Port publishing: host port → container address and port, with
//! nftables DNAT in a table hull owns (`ip hull`), removed with its last
//! rule.
//!
//! # Why `nft -f -`
//! Rules go through the `nft` tool rather than nf_tables netlink messages:
//! the rules need nftables' expression bytecode (payload, fib, nat,
//! masquerade), for which no maintained pure-Rust synchronous encoder
//! exists, and `nft` applies a whole script in one kernel transaction, so
//! a publish or an unpublish is atomic. `nft` runs inside the host
//! namespace (spawned from a thread that joined it).
//!
//! # What reaches the container
//! - From other namespaces to any local address of the host namespace
//!   (`fib daddr type local`): the `prerouting` rule.
//! - From the host namespace itself to one of its own non-loopback
//!   addresses: the `output` rule.
//! - Hairpin: a container reaching its own published port through the
//!   host's address: the `postrouting` masquerade rule makes the reply come
//!   back through the host. With `br_netfilter` (`bridge-nf-call-iptables`
//!   = 1) the DNAT happens while the frame is bridged, so it leaves through
//!   the port it came in on: [`crate::setup_bridge`] turns on hairpin mode
//!   on the host-side veth for this.
//! - Not `127.0.0.1`: DNAT of loopback traffic to another interface needs
//!   `route_localnet`, which exposes loopback services to the network;
//!   the `output` rule excludes 127.0.0.0/8, so such connections are
//!   refused rather than silently half-working.
//!
//! Forwarded traffic needs `net.ipv4.ip_forward=1` in the host namespace
//! ([`crate::ensure_bridge`] sets it).

use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::netns::run_in_netns;

/// The nftables table hull owns (family `ip`).
pub const NFT_TABLE: &str = "hull";

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One published port.
///
/// ```
/// use hull_netns::{PortMapping, Proto};
/// let m = PortMapping::new(Proto::Tcp, 8080, "198.18.0.2".parse().unwrap(), 80);
/// assert_eq!(m.to_string(), "tcp 8080 -> 198.18.0.2:80");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortMapping {
    /// Protocol.
    pub proto: Proto,
    /// Port on the host's addresses.
    pub host_port: u16,
    /// The container's address.
    pub container_addr: Ipv4Addr,
    /// The container's port.
    pub container_port: u16,
}

impl PortMapping {
    /// A mapping of `host_port` to `container_addr:container_port`.
    pub fn new(
        proto: Proto,
        host_port: u16,
        container_addr: Ipv4Addr,
        container_port: u16,
    ) -> Self {
        PortMapping {
            proto,
            host_port,
            container_addr,
            container_port,
        }
    }

    fn comment(&self) -> String {
        format!("hull:{}:{}", self.proto.as_str(), self.host_port)
    }

    fn validate(&self) -> Result<()> {
        if self.host_port == 0 || self.container_port == 0 {
            return Err(Error::InvalidConfig {
                field: "port",
                reason: format!("{self}: port 0"),
            });
        }
        let a = self.container_addr;
        if a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_broadcast() {
            return Err(Error::InvalidConfig {
                field: "container address",
                reason: format!("{a} is not a unicast address"),
            });
        }
        Ok(())
    }

    /// The nft script lines that add this mapping's rules.
    fn add_rules(&self) -> String {
        let p = self.proto.as_str();
        let (hp, ca, cp, c) = (
            self.host_port,
            self.container_addr,
            self.container_port,
            self.comment(),
        );
        format!(
            "add rule ip {NFT_TABLE} prerouting fib daddr type local {p} dport {hp} dnat to {ca}:{cp} comment \"{c}\"\n\
             add rule ip {NFT_TABLE} output ip daddr != 127.0.0.0/8 fib daddr type local {p} dport {hp} dnat to {ca}:{cp} comment \"{c}\"\n\
             add rule ip {NFT_TABLE} postrouting ip saddr {ca} ip daddr {ca} {p} dport {cp} masquerade comment \"{c}\"\n"
        )
    }
}

impl std::fmt::Display for PortMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} -> {}:{}",
            self.proto.as_str(),
            self.host_port,
            self.container_addr,
            self.container_port
        )
    }
}

fn table_script() -> String {
    format!(
        "table ip {NFT_TABLE} {{\n\
         \tchain prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}\n\
         \tchain output {{ type nat hook output priority -100; policy accept; }}\n\
         \tchain postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}\n\
         }}\n"
    )
}

/// A rule of hull's table as `nft -a list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    chain: String,
    handle: u64,
    comment: Option<String>,
}

/// Parses `nft -a list table ip hull` output into its rules.
fn parse_rules(listing: &str) -> Vec<Rule> {
    let mut chain = None;
    let mut out = Vec::new();
    for line in listing.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("chain ") {
            chain = rest.split_whitespace().next().map(str::to_string);
            continue;
        }
        if t == "}" || t.starts_with("type ") || t.starts_with("table ") {
            continue;
        }
        let (Some(c), Some((body, handle))) = (&chain, t.rsplit_once("# handle ")) else {
            continue;
        };
        let Ok(handle) = handle.trim().parse::<u64>() else {
            continue;
        };
        let comment = body
            .split_once("comment \"")
            .and_then(|(_, r)| r.split_once('"'))
            .map(|(c, _)| c.to_string());
        out.push(Rule {
            chain: c.clone(),
            handle,
            comment,
        });
    }
    out
}

/// How many rules an `nft -a list` text holds (for the fuzz target).
pub(crate) fn parse_rules_for_fuzzing(listing: &str) -> usize {
    parse_rules(listing).len()
}

/// Publishes ports of containers in one host network namespace.
///
/// Each mapping is three rules in table `ip hull` (chains `prerouting`,
/// `output`, `postrouting`), tagged with the comment `hull:PROTO:PORT`;
/// the table is created with the first mapping and deleted with the last.
/// Traffic from other namespaces, from the host namespace itself (to its
/// non-loopback addresses) and hairpin traffic from containers reach the
/// container; `127.0.0.1` does not (DNAT of loopback traffic would need
/// `route_localnet`). `nft` is run (inside the host namespace) because the
/// rules need nftables expression bytecode for which no maintained
/// synchronous Rust encoder exists; each change is one `nft -f -`
/// transaction.
///
/// ```no_run
/// use hull_netns::{NetNs, PortMapping, PortPublisher, Proto};
/// # fn main() -> Result<(), hull_netns::Error> {
/// let host = NetNs::new()?;
/// let p = PortPublisher::new(&host)?;
/// p.publish(&PortMapping::new(Proto::Tcp, 8080, "198.18.0.2".parse().unwrap(), 80))?;
/// p.unpublish(Proto::Tcp, 8080)?; // the last one: the table goes too
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PortPublisher {
    host: OwnedFd,
}

impl PortPublisher {
    /// A publisher for the host namespace `host`.
    ///
    /// # Errors
    /// [`Error::EnterNetns`] if the fd cannot be duplicated.
    pub fn new(host: &impl AsFd) -> Result<Self> {
        let host = host
            .as_fd()
            .try_clone_to_owned()
            .map_err(|source| Error::EnterNetns { source })?;
        Ok(PortPublisher { host })
    }

    fn nft(&self, op: &'static str, args: &[&str], script: Option<String>) -> Result<String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = run_in_netns(self.host.as_fd(), move || -> std::io::Result<_> {
            let mut child = Command::new("nft")
                .args(&args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()?;
            if let (Some(s), Some(mut stdin)) = (script, child.stdin.take()) {
                stdin.write_all(s.as_bytes())?;
            }
            child.wait_with_output()
        })?
        .map_err(|source| Error::NftSpawn { op, source })?;
        if !out.status.success() {
            return Err(Error::Nft {
                op,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The rules of hull's table; `None` when the table does not exist.
    fn rules(&self) -> Result<Option<Vec<Rule>>> {
        match self.nft(
            "list rules",
            &["-a", "list", "table", "ip", NFT_TABLE],
            None,
        ) {
            Ok(s) => Ok(Some(parse_rules(&s))),
            Err(Error::Nft { stderr, .. }) if stderr.contains("No such file or directory") => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Publishes a port: creates the table and its chains if needed and
    /// adds the mapping's rules, in one transaction.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`], [`Error::PortPublished`] when the host
    /// port is taken for that protocol, [`Error::NftSpawn`], [`Error::Nft`].
    pub fn publish(&self, m: &PortMapping) -> Result<()> {
        m.validate()?;
        let c = m.comment();
        if let Some(rules) = self.rules()? {
            if rules
                .iter()
                .any(|r| r.comment.as_deref() == Some(c.as_str()))
            {
                return Err(Error::PortPublished {
                    proto: m.proto.as_str(),
                    host_port: m.host_port,
                });
            }
        }
        let script = table_script() + &m.add_rules();
        self.nft("publish port", &["-f", "-"], Some(script))
            .map(drop)
    }

    /// Publishes a port and returns a guard that unpublishes it on drop
    /// (or with [`PublishedPort::remove`], which reports the error).
    ///
    /// # Errors
    /// As [`PortPublisher::publish`].
    pub fn publish_guarded(&self, m: &PortMapping) -> Result<PublishedPort> {
        // Duplicate the fd first, so nothing needs undoing if it fails.
        let host = self
            .host
            .try_clone()
            .map_err(|source| Error::EnterNetns { source })?;
        self.publish(m)?;
        Ok(PublishedPort {
            publisher: PortPublisher { host },
            proto: m.proto,
            host_port: m.host_port,
            removed: false,
        })
    }

    /// Removes a published port's rules; the table goes with its last rule.
    ///
    /// # Errors
    /// [`Error::PortNotPublished`], [`Error::NftSpawn`], [`Error::Nft`].
    pub fn unpublish(&self, proto: Proto, host_port: u16) -> Result<()> {
        let c = format!("hull:{}:{host_port}", proto.as_str());
        let not = || Error::PortNotPublished {
            proto: proto.as_str(),
            host_port,
        };
        let rules = self.rules()?.ok_or_else(not)?;
        let (mine, others): (Vec<&Rule>, Vec<&Rule>) = rules
            .iter()
            .partition(|r| r.comment.as_deref() == Some(c.as_str()));
        if mine.is_empty() {
            return Err(not());
        }
        let script = if others.is_empty() {
            format!("delete table ip {NFT_TABLE}\n")
        } else {
            mine.iter()
                .map(|r| {
                    format!(
                        "delete rule ip {NFT_TABLE} {} handle {}\n",
                        r.chain, r.handle
                    )
                })
                .collect()
        };
        self.nft("unpublish port", &["-f", "-"], Some(script))
            .map(drop)
    }

    /// The host ports currently published, as `(protocol, port)`.
    ///
    /// # Errors
    /// [`Error::NftSpawn`], [`Error::Nft`].
    pub fn published(&self) -> Result<Vec<(Proto, u16)>> {
        let mut out: Vec<(Proto, u16)> = self
            .rules()?
            .unwrap_or_default()
            .iter()
            .filter_map(|r| {
                let c = r.comment.as_deref()?.strip_prefix("hull:")?;
                let (p, port) = c.split_once(':')?;
                let proto = match p {
                    "tcp" => Proto::Tcp,
                    "udp" => Proto::Udp,
                    _ => return None,
                };
                Some((proto, port.parse().ok()?))
            })
            .collect();
        out.sort_by_key(|(p, port)| (p.as_str(), *port));
        out.dedup();
        Ok(out)
    }
}

/// A published port that is unpublished when dropped.
#[derive(Debug)]
pub struct PublishedPort {
    publisher: PortPublisher,
    proto: Proto,
    host_port: u16,
    removed: bool,
}

impl PublishedPort {
    /// The protocol and host port.
    pub fn port(&self) -> (Proto, u16) {
        (self.proto, self.host_port)
    }

    /// Unpublishes now, reporting any error.
    ///
    /// # Errors
    /// As [`PortPublisher::unpublish`].
    pub fn remove(mut self) -> Result<()> {
        self.removed = true;
        self.publisher.unpublish(self.proto, self.host_port)
    }
}

impl Drop for PublishedPort {
    fn drop(&mut self) {
        if !self.removed {
            let _ = self.publisher.unpublish(self.proto, self.host_port);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = r#"table ip hull { # handle 1
	chain prerouting { # handle 1
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local tcp dport 8080 dnat to 198.18.1.2:80 comment "hull:tcp:8080" # handle 4
	}

	chain output { # handle 2
		type nat hook output priority -100; policy accept;
		ip daddr != 127.0.0.0/8 fib daddr type local tcp dport 8080 dnat to 198.18.1.2:80 comment "hull:tcp:8080" # handle 5
	}

	chain postrouting { # handle 3
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 198.18.1.2 ip daddr 198.18.1.2 tcp dport 80 masquerade comment "hull:tcp:8080" # handle 6
		counter packets 0 bytes 0 # handle 9
	}
}
"#;

    #[test]
    fn listing_parses_into_rules() {
        let r = parse_rules(LISTING);
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].chain, "prerouting");
        assert_eq!(r[0].handle, 4);
        assert_eq!(r[0].comment.as_deref(), Some("hull:tcp:8080"));
        assert_eq!(r[2].chain, "postrouting");
        assert_eq!(r[3].comment, None);
        assert!(parse_rules("garbage\n# handle x\n").is_empty());
    }

    #[test]
    fn mappings_are_validated() {
        let a: Ipv4Addr = "198.18.0.2".parse().unwrap();
        assert!(PortMapping::new(Proto::Tcp, 0, a, 80).validate().is_err());
        assert!(
            PortMapping::new(Proto::Udp, 53, "127.0.0.1".parse().unwrap(), 53)
                .validate()
                .is_err()
        );
        let m = PortMapping::new(Proto::Udp, 5353, a, 53);
        assert!(m.validate().is_ok());
        assert!(
            m.add_rules()
                .contains("udp dport 5353 dnat to 198.18.0.2:53")
        );
    }
}
