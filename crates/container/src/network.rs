//! Network conveniences: the modes by name, published ports, and
//! statistics of a running container's interfaces.

use std::net::IpAddr;
use std::path::PathBuf;

use hull_netns::{BridgeConfig, HostsEntry, PortMapping, PortPublisher, Proto, PublishedPort};

use crate::config::{Config, ContainerBuilder, NetworkMode};
use crate::{Container, Error, Result};

impl NetworkMode {
    /// A network namespace of its own with only loopback (`--network none`).
    pub fn none() -> NetworkMode {
        NetworkMode::None
    }

    /// The caller's network namespace (`--network host`).
    pub fn host() -> NetworkMode {
        NetworkMode::Host
    }

    /// The network namespace of another container, which must have a
    /// process (`--network container:ID`).
    ///
    /// # Errors
    /// [`Error::State`] if it has none.
    pub fn container(other: &Container) -> Result<NetworkMode> {
        match other.pid() {
            Some(pid) => Ok(NetworkMode::Join(PathBuf::from(format!(
                "/proc/{pid}/ns/net"
            )))),
            None => Err(Error::State {
                id: other.id().to_string(),
                status: crate::Status::Stopped,
                action: "share its network namespace (it has no process)",
            }),
        }
    }

    /// A bridge network (`--network NAME`): the bridge `config` in the
    /// caller's network namespace, addresses from the IPAM kept in
    /// `ipam_dir`, the host's name servers, no links.
    pub fn bridge(config: BridgeConfig, ipam_dir: impl Into<PathBuf>) -> NetworkMode {
        NetworkMode::Bridge {
            config,
            ipam_dir: ipam_dir.into(),
            links: Vec::new(),
            nameservers: Vec::new(),
        }
    }

    /// Adds a link (`--link`): `name` resolves to `addr` through the
    /// container's /etc/hosts. Only for a bridge network; ignored
    /// otherwise.
    pub fn link(mut self, name: &str, addr: IpAddr) -> NetworkMode {
        if let NetworkMode::Bridge { links, .. } = &mut self {
            links.push(HostsEntry::new(addr, name));
        }
        self
    }

    /// Adds a name server for /etc/resolv.conf (`--dns`). Only for a
    /// bridge network; ignored otherwise.
    pub fn nameserver(mut self, addr: IpAddr) -> NetworkMode {
        if let NetworkMode::Bridge { nameservers, .. } = &mut self {
            nameservers.push(addr);
        }
        self
    }
}

/// A port to publish: a host port forwarded to the container's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortSpec {
    /// TCP or UDP.
    pub proto: Proto,
    /// The port on the host namespace's addresses.
    pub host_port: u16,
    /// The container's port.
    pub container_port: u16,
}

impl ContainerBuilder {
    /// Publishes a port (`-p HOST:CONTAINER`): connections to `host_port`
    /// on the caller's network namespace's addresses reach
    /// `container_port` at the container's address (nftables DNAT, see
    /// [`hull_netns::PortPublisher`]). Needs a bridge network; removed on
    /// delete.
    pub fn publish(mut self, proto: Proto, host_port: u16, container_port: u16) -> Self {
        self.config.ports.push(PortSpec {
            proto,
            host_port,
            container_port,
        });
        self
    }
}

/// Published ports need a bridge network (checked before anything is made).
pub(crate) fn check_ports(c: &Config) -> Result<()> {
    if !c.ports.is_empty() && !matches!(c.network, NetworkMode::Bridge { .. }) {
        return Err(Error::Invalid {
            field: "publish",
            problem: "published ports need a bridge network".into(),
        });
    }
    for (i, p) in c.ports.iter().enumerate() {
        if c.ports[..i]
            .iter()
            .any(|q| q.proto == p.proto && q.host_port == p.host_port)
        {
            return Err(Error::Invalid {
                field: "publish",
                problem: format!("{} port {} given twice", p.proto.as_str(), p.host_port),
            });
        }
    }
    Ok(())
}

/// Publishes `c`'s ports to `addr` from the host namespace `host`; the
/// guards unpublish them when dropped.
pub(crate) fn publish_ports(
    c: &Config,
    host: &impl std::os::fd::AsFd,
    addr: IpAddr,
    out: &mut Vec<PublishedPort>,
) -> Result<()> {
    if c.ports.is_empty() {
        return Ok(());
    }
    let net_err = |source| Error::Network {
        id: c.id.clone(),
        source: Box::new(source),
    };
    let IpAddr::V4(v4) = addr else {
        return Err(Error::Invalid {
            field: "publish",
            problem: format!("{addr}: published ports need an IPv4 address"),
        });
    };
    let publisher = PortPublisher::new(host).map_err(net_err)?;
    for p in &c.ports {
        let m = PortMapping::new(p.proto, p.host_port, v4, p.container_port);
        out.push(publisher.publish_guarded(&m).map_err(net_err)?);
    }
    Ok(())
}

/// Counters of one network interface, from the container's
/// `/proc/net/dev`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceStats {
    /// Interface name (`lo`, `eth0`).
    pub name: String,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Send errors.
    pub tx_errors: u64,
    /// Sent packets dropped.
    pub tx_dropped: u64,
}

/// Parses `/proc/net/dev`.
pub(crate) fn parse_net_dev(text: &str) -> Vec<InterfaceStats> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let v: Vec<u64> = rest
                .split_whitespace()
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            if v.len() < 12 {
                return None;
            }
            Some(InterfaceStats {
                name: name.trim().to_string(),
                rx_bytes: v[0],
                rx_packets: v[1],
                rx_errors: v[2],
                rx_dropped: v[3],
                tx_bytes: v[8],
                tx_packets: v[9],
                tx_errors: v[10],
                tx_dropped: v[11],
            })
        })
        .collect()
}

/// What [`Container::usage`] reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ContainerStats {
    /// The cgroup's figures (CPU, memory, pids, I/O), if it has a cgroup.
    pub cgroup: Option<hull_cgroup::Stats>,
    /// The counters of each interface in its network namespace.
    pub network: Vec<InterfaceStats>,
}

impl Container {
    /// The counters of each interface in the container's network
    /// namespace (`docker stats`' NET I/O).
    ///
    /// # Errors
    /// [`Error::State`] without a process; [`Error::Stats`] if its
    /// `/proc/PID/net/dev` cannot be read.
    pub fn network_stats(&mut self) -> Result<Vec<InterfaceStats>> {
        let status = self.status();
        let Some(pid) = self.pid() else {
            return Err(Error::State {
                id: self.id().to_string(),
                status,
                action: "read network statistics (it has no process)",
            });
        };
        let path = PathBuf::from(format!("/proc/{pid}/net/dev"));
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Stats {
            id: self.id().to_string(),
            path,
            source,
        })?;
        Ok(parse_net_dev(&text))
    }

    /// Resource usage of a running container: its cgroup's figures and its
    /// interfaces' counters.
    ///
    /// # Errors
    /// As [`Container::stats`] and [`Container::network_stats`].
    pub fn usage(&mut self) -> Result<ContainerStats> {
        let cgroup = match self.cgroup() {
            Some(_) => Some(self.stats()?),
            None => None,
        };
        Ok(ContainerStats {
            cgroup,
            network: self.network_stats()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_is_parsed() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
            face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
            lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0\n  \
            eth0:    5000      40    1    2    0     0          0         0     3000      30    3    4    0     0       0          0\n";
        let s = parse_net_dev(text);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].name, "eth0");
        assert_eq!(
            (
                s[1].rx_bytes,
                s[1].rx_packets,
                s[1].rx_errors,
                s[1].rx_dropped
            ),
            (5000, 40, 1, 2)
        );
        assert_eq!(
            (
                s[1].tx_bytes,
                s[1].tx_packets,
                s[1].tx_errors,
                s[1].tx_dropped
            ),
            (3000, 30, 3, 4)
        );
    }
}
