//! Network modes for a container, and the setup of bridge mode: a bridge on
//! the host side, a veth pair, the container end renamed `eth0` with an
//! address from the subnet and a default route via the bridge's address.

use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};

use crate::cidr::IpCidr;
use crate::error::{Error, Result};
use crate::netlink::{Netlink, Route, Vxlan, validate_ifname};
use crate::netns::{run_in_netns, write_sysctl_here};

/// How a container is networked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Network {
    /// A new network namespace with only loopback, up ([`setup_none`]).
    None,
    /// The host's network namespace: no new namespace.
    Host,
    /// Share the network namespace of another container, named by its id.
    Container(String),
    /// A new namespace joined to a host bridge ([`setup_bridge`]).
    Bridge(BridgeConfig),
}

impl Network {
    /// Whether the container gets a network namespace of its own.
    pub fn needs_new_netns(&self) -> bool {
        matches!(self, Network::None | Network::Bridge(_))
    }
}

/// A validated bridge network: the bridge's name, its subnet and its
/// address (the containers' gateway).
///
/// ```
/// use hull_netns::BridgeConfig;
/// let cfg = BridgeConfig::builder("hull0", "198.18.0.0/24".parse().unwrap())
///     .build()
///     .unwrap();
/// assert_eq!(cfg.gateway().to_string(), "198.18.0.1/24");
/// let bad = BridgeConfig::builder("hull0", "198.18.0.0/24".parse().unwrap())
///     .gateway("198.19.0.1".parse().unwrap())
///     .build();
/// assert!(bad.is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    bridge: String,
    subnet: IpCidr,
    gateway: IpCidr,
    mtu: Option<u32>,
    container_ifname: String,
}

/// Builder for [`BridgeConfig`]; validated at [`BridgeConfigBuilder::build`].
#[derive(Debug, Clone)]
pub struct BridgeConfigBuilder {
    bridge: String,
    subnet: IpCidr,
    gateway: Option<IpAddr>,
    mtu: Option<u32>,
    container_ifname: String,
}

impl BridgeConfig {
    /// Starts a bridge network named `bridge` on `subnet`.
    pub fn builder(bridge: &str, subnet: IpCidr) -> BridgeConfigBuilder {
        BridgeConfigBuilder {
            bridge: bridge.to_string(),
            subnet,
            gateway: None,
            mtu: None,
            container_ifname: "eth0".into(),
        }
    }

    /// The bridge's name.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// The subnet.
    pub fn subnet(&self) -> IpCidr {
        self.subnet
    }

    /// The bridge's address, the containers' gateway.
    pub fn gateway(&self) -> IpCidr {
        self.gateway
    }

    /// MTU for the veth pair, if set.
    pub fn mtu(&self) -> Option<u32> {
        self.mtu
    }

    /// The interface name inside the container (`eth0`).
    pub fn container_ifname(&self) -> &str {
        &self.container_ifname
    }
}

impl BridgeConfigBuilder {
    /// Sets the bridge address (default: the subnet's first host address).
    pub fn gateway(mut self, ip: IpAddr) -> Self {
        self.gateway = Some(ip);
        self
    }

    /// Sets the MTU of the veth pair (e.g. 1450 under a VXLAN overlay).
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }

    /// Sets the interface name inside the container (default `eth0`).
    pub fn container_ifname(mut self, name: &str) -> Self {
        self.container_ifname = name.to_string();
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    /// [`Error::InvalidIfName`] for the bridge or container interface name,
    /// [`Error::GatewayOutsideSubnet`] when the gateway is not a host
    /// address of the subnet, [`Error::InvalidConfig`] for a subnet with no
    /// room or an MTU below 68.
    pub fn build(self) -> Result<BridgeConfig> {
        validate_ifname(&self.bridge)?;
        validate_ifname(&self.container_ifname)?;
        let subnet = self.subnet.network();
        let max = if subnet.is_ipv4() { 30 } else { 126 };
        if subnet.prefix() > max {
            return Err(Error::InvalidConfig {
                field: "bridge subnet",
                reason: format!("{subnet} has no room for a gateway and a container"),
            });
        }
        let gateway = match self.gateway {
            Some(g) => {
                if !subnet.contains(g) || g == subnet.addr() {
                    return Err(Error::GatewayOutsideSubnet {
                        gateway: g,
                        subnet: subnet.to_string(),
                    });
                }
                g
            }
            None => nth_host(subnet, 1),
        };
        if let Some(m) = self.mtu {
            if m < 68 {
                return Err(Error::InvalidConfig {
                    field: "mtu",
                    reason: format!("{m} is below the IPv4 minimum of 68"),
                });
            }
        }
        Ok(BridgeConfig {
            bridge: self.bridge,
            subnet,
            gateway: subnet.with_addr(gateway)?,
            mtu: self.mtu,
            container_ifname: self.container_ifname,
        })
    }
}

fn nth_host(subnet: IpCidr, n: u8) -> IpAddr {
    match subnet.addr() {
        IpAddr::V4(a) => IpAddr::from(u32::from(a).wrapping_add(u32::from(n)).to_be_bytes()),
        IpAddr::V6(a) => IpAddr::from(u128::from(a).wrapping_add(u128::from(n)).to_be_bytes()),
    }
}

/// A host-side veth name derived from a container id: `veth` and 11 hex
/// digits of a hash (15 bytes, the kernel's limit).
pub fn host_veth_name(id: &str) -> String {
    // FNV-1a, 64 bits: stable across runs and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let hex = format!("{h:016x}");
    format!("veth{}", hex.get(..11).unwrap_or(&hex))
}

/// Network mode none: brings loopback up in the container's namespace.
///
/// # Errors
/// As [`Netlink::set_up`].
pub fn setup_none(container: &impl AsFd) -> Result<()> {
    Netlink::in_netns(container)?.set_up("lo")
}

/// Makes sure the bridge of `cfg` exists in the host namespace with its
/// address, up, and that the host forwards IPv4. Idempotent.
///
/// # Errors
/// Netlink and sysctl errors naming the bridge.
pub fn ensure_bridge(host: &impl AsFd, cfg: &BridgeConfig) -> Result<()> {
    ensure_bridge_on(&open_host(host, cfg)?, cfg)
}

/// Opens a netlink socket in the host namespace and turns on forwarding
/// there, both on one helper thread.
fn open_host(host: &impl AsFd, cfg: &BridgeConfig) -> Result<Netlink> {
    let key = if cfg.gateway.is_ipv4() {
        "net/ipv4/ip_forward"
    } else {
        "net/ipv6/conf/all/forwarding"
    };
    run_in_netns(host.as_fd(), || {
        write_sysctl_here(key, "1")?;
        Netlink::current()
    })?
}

fn ensure_bridge_on(nl: &Netlink, cfg: &BridgeConfig) -> Result<()> {
    if !nl.link_exists(&cfg.bridge)? {
        match nl.create_bridge(&cfg.bridge) {
            // Another container created it meanwhile.
            Ok(()) | Err(Error::LinkExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let has_addr = nl
        .addresses(Some(&cfg.bridge))?
        .iter()
        .any(|a| a.cidr == cfg.gateway);
    if !has_addr {
        match nl.add_address(&cfg.bridge, cfg.gateway) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            r => r?,
        }
    }
    nl.set_up(&cfg.bridge)
}

/// Joins the bridge of `cfg` to a VXLAN overlay: makes sure the bridge
/// exists ([`ensure_bridge`]), creates `vxlan` in the host namespace,
/// attaches it to the bridge and brings it up. Containers on bridges of
/// different hosts joined with the same VNI share one layer-2 segment;
/// give their veths an MTU 50 bytes below the underlay's
/// ([`BridgeConfigBuilder::mtu`]).
///
/// On error the VXLAN device is deleted again.
///
/// # Errors
/// As [`ensure_bridge`] and [`Netlink::create_vxlan`].
pub fn attach_vxlan(host: &impl AsFd, cfg: &BridgeConfig, vxlan: &Vxlan) -> Result<()> {
    let nl = open_host(host, cfg)?;
    ensure_bridge_on(&nl, cfg)?;
    nl.create_vxlan(vxlan)?;
    let r = (|| {
        if let Some(m) = cfg.mtu {
            nl.set_mtu(&vxlan.name, m)?;
        }
        nl.attach(&vxlan.name, &cfg.bridge)?;
        nl.set_up(&vxlan.name)
    })();
    if r.is_err() {
        let _ = nl.delete_link(&vxlan.name);
    }
    r
}

fn dup(fd: &impl AsFd) -> Result<OwnedFd> {
    fd.as_fd()
        .try_clone_to_owned()
        .map_err(|source| Error::EnterNetns { source })
}

/// A container attached to a bridge: owns the host-side veth, which
/// [`BridgeAttachment::remove`] (or drop) deletes; the container end goes
/// with it. Never waits for the container's namespace to be destroyed.
#[derive(Debug)]
pub struct BridgeAttachment {
    host: OwnedFd,
    host_veth: String,
    addr: IpCidr,
    removed: bool,
}

impl BridgeAttachment {
    /// The host-side veth's name.
    pub fn host_veth(&self) -> &str {
        &self.host_veth
    }

    /// The container's address.
    pub fn addr(&self) -> IpCidr {
        self.addr
    }

    /// Deletes the host-side veth (and so the container end) now.
    ///
    /// The kernel's device unregistration waits for RCU grace periods, so
    /// this takes tens of milliseconds on a busy machine;
    /// [`release`](Self::release) avoids that when the container's
    /// namespace is going away anyway.
    ///
    /// # Errors
    /// As [`Netlink::delete_link`]; a veth already gone (its namespace
    /// destroyed) is not an error.
    pub fn remove(mut self) -> Result<()> {
        self.removed = true;
        delete_host_veth(&self.host, &self.host_veth)
    }

    /// Fast teardown for a container whose network namespace is being
    /// destroyed: sets the host-side veth down and renames it to
    /// `hulldINDEX`, which frees its name and stops its traffic at once,
    /// and leaves the deletion of the pair to the kernel's asynchronous
    /// destruction of the container's namespace. Returns without waiting
    /// for either (about a millisecond instead of [`remove`](Self::remove)'s
    /// device unregistration).
    ///
    /// The renamed veth lives as long as the container's namespace does:
    /// call this only when the last process and handle of that namespace
    /// are going away.
    ///
    /// # Errors
    /// As [`Netlink::set_down`] and [`Netlink::rename`]; a veth already gone
    /// is not an error.
    pub fn release(mut self) -> Result<()> {
        self.removed = true;
        let nl = Netlink::in_netns(&self.host)?;
        let r = (|| {
            let index = nl.link(&self.host_veth)?.index;
            nl.set_down(&self.host_veth)?;
            nl.rename(&self.host_veth, &format!("hulld{index}"))
        })();
        match r {
            Err(Error::LinkNotFound { .. }) => Ok(()),
            Err(e) => {
                // Fall back to deleting it now rather than leaving it.
                let _ = delete_host_veth(&self.host, &self.host_veth);
                Err(e)
            }
            Ok(()) => Ok(()),
        }
    }
}

fn delete_host_veth(host: &OwnedFd, name: &str) -> Result<()> {
    match Netlink::in_netns(host)?.delete_link(name) {
        Err(Error::LinkNotFound { .. }) => Ok(()),
        r => r,
    }
}

impl Drop for BridgeAttachment {
    fn drop(&mut self) {
        if !self.removed {
            let _ = delete_host_veth(&self.host, &self.host_veth);
        }
    }
}

/// Bridge mode: creates (if needed) the bridge in `host`, a veth pair
/// `host_veth` ↔ container end created directly in `container`'s
/// namespace, attaches the host end to the bridge, renames the container
/// end to `eth0` (hairpin mode on the host end, for published-port
/// hairpin traffic), gives it `addr`, brings loopback and `eth0` up and adds
/// a default route via the bridge's address.
///
/// On error nothing is left behind (the veth is deleted).
///
/// # Errors
/// [`Error::InvalidIfName`] for `host_veth`, [`Error::AddressNotInSubnet`]
/// when `addr` is not a host address of the subnet or is the gateway,
/// [`Error::LinkExists`] when `host_veth` is taken, and the netlink errors
/// of each step.
pub fn setup_bridge(
    host: &impl AsFd,
    container: &impl AsFd,
    cfg: &BridgeConfig,
    host_veth: &str,
    addr: IpAddr,
) -> Result<BridgeAttachment> {
    validate_ifname(host_veth)?;
    let subnet = cfg.subnet;
    if !subnet.contains(addr) || addr == subnet.addr() || addr == cfg.gateway.addr() {
        return Err(Error::AddressNotInSubnet {
            addr,
            subnet: subnet.to_string(),
        });
    }
    let addr = subnet.with_addr(addr)?;
    let h = open_host(host, cfg)?;
    ensure_bridge_on(&h, cfg)?;
    // A temporary name for the container end: the container's namespace is
    // its own, so the fixed name cannot collide with anything but an
    // earlier, failed attempt.
    let tmp = "hull-tmp0";
    h.create_veth(host_veth, tmp, Some(&container.as_fd()))?;
    let att = BridgeAttachment {
        host: dup(host)?,
        host_veth: host_veth.to_string(),
        addr,
        removed: false,
    };
    if let Some(m) = cfg.mtu {
        h.set_mtu(host_veth, m)?;
    }
    h.attach(host_veth, &cfg.bridge)?;
    // With br_netfilter, DNAT of a container's own published port happens
    // at layer 2 and the frame goes back out the port it came in on.
    h.set_hairpin(host_veth, true)?;
    h.set_up(host_veth)?;
    let c = Netlink::in_netns(container)?;
    let eth = cfg.container_ifname.as_str();
    c.rename(tmp, eth)?;
    if let Some(m) = cfg.mtu {
        c.set_mtu(eth, m)?;
    }
    c.set_up("lo")?;
    c.add_address(eth, addr)?;
    c.set_up(eth)?;
    c.add_route(&Route::default_via(cfg.gateway.addr()))?;
    Ok(att)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_veth_names_fit() {
        let a = host_veth_name("container-1");
        assert_eq!(a.len(), 15);
        assert!(validate_ifname(&a).is_ok());
        assert_ne!(a, host_veth_name("container-2"));
        assert_eq!(a, host_veth_name("container-1"));
    }

    #[test]
    fn bridge_config_validation() {
        let s: IpCidr = "198.18.0.0/24".parse().unwrap();
        assert!(
            BridgeConfig::builder("a_name_of_16_byt", s)
                .build()
                .is_err()
        );
        assert!(matches!(
            BridgeConfig::builder("br0", s)
                .gateway("198.18.1.1".parse().unwrap())
                .build(),
            Err(Error::GatewayOutsideSubnet { .. })
        ));
        assert!(matches!(
            BridgeConfig::builder("br0", s)
                .gateway("198.18.0.0".parse().unwrap())
                .build(),
            Err(Error::GatewayOutsideSubnet { .. })
        ));
        assert!(
            BridgeConfig::builder("br0", "198.18.0.0/31".parse().unwrap())
                .build()
                .is_err()
        );
        assert!(BridgeConfig::builder("br0", s).mtu(10).build().is_err());
        let c = BridgeConfig::builder("br0", "198.18.0.77/24".parse().unwrap())
            .gateway("198.18.0.254".parse().unwrap())
            .build()
            .unwrap();
        assert_eq!(c.subnet().to_string(), "198.18.0.0/24");
        assert_eq!(c.gateway().to_string(), "198.18.0.254/24");
        assert!(Network::Bridge(c).needs_new_netns());
        assert!(!Network::Host.needs_new_netns());
    }
}
