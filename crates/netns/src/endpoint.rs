//! Bridge networking with address management in one piece: a container
//! joins a [`BridgeNetwork`] and gets an [`Endpoint`] whose teardown frees
//! both the veth and the address.

use std::os::fd::AsFd;
use std::path::Path;

use crate::cidr::IpCidr;
use crate::error::Result;
use crate::ipam::Ipam;
use crate::mode::{BridgeAttachment, BridgeConfig, host_veth_name, setup_bridge};

/// A bridge network (IPv4) whose addresses come from an [`Ipam`] pool.
///
/// ```no_run
/// use hull_netns::{BridgeConfig, BridgeNetwork, NetNs};
/// # fn main() -> Result<(), hull_netns::Error> {
/// let host = NetNs::new()?;
/// let cfg = BridgeConfig::builder("hull0", "198.18.0.0/24".parse()?).build()?;
/// let net = BridgeNetwork::new(cfg, "/run/hull/ipam")?;
/// let ctr = NetNs::new()?;
/// let ep = net.connect(&host, &ctr, "ctr-1")?; // eth0 198.18.0.2/24
/// ep.release()?; // veth out of the way, address back in the pool
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct BridgeNetwork {
    cfg: BridgeConfig,
    ipam: Ipam,
}

impl BridgeNetwork {
    /// A network for `cfg` with its address pool kept in `state_dir`.
    ///
    /// # Errors
    /// As [`Ipam::open`] (IPv4 subnets only).
    pub fn new(cfg: BridgeConfig, state_dir: impl AsRef<Path>) -> Result<Self> {
        let ipam = Ipam::open(state_dir, cfg.subnet(), Some(cfg.gateway().addr()))?;
        Ok(BridgeNetwork { cfg, ipam })
    }

    /// The configuration.
    pub fn config(&self) -> &BridgeConfig {
        &self.cfg
    }

    /// The address pool.
    pub fn ipam(&self) -> &Ipam {
        &self.ipam
    }

    /// Connects the container `id` (its network namespace `container`):
    /// allocates an address and runs [`setup_bridge`] with a host veth
    /// named after the id ([`host_veth_name`]). On error the address is
    /// released and no link is left.
    ///
    /// # Errors
    /// As [`Ipam::allocate`] and [`setup_bridge`].
    pub fn connect(&self, host: &impl AsFd, container: &impl AsFd, id: &str) -> Result<Endpoint> {
        let addr = self.ipam.allocate(id)?;
        match setup_bridge(host, container, &self.cfg, &host_veth_name(id), addr.addr()) {
            Ok(att) => Ok(Endpoint {
                attachment: Some(att),
                ipam: self.ipam.clone(),
                addr,
            }),
            Err(e) => {
                let _ = self.ipam.release(addr.addr());
                Err(e)
            }
        }
    }
}

/// A container's place on a [`BridgeNetwork`]: its veth and its address.
/// Dropping it deletes the veth and frees the address (best effort);
/// [`Endpoint::remove`] and [`Endpoint::release`] report errors.
#[derive(Debug)]
pub struct Endpoint {
    attachment: Option<BridgeAttachment>,
    ipam: Ipam,
    addr: IpCidr,
}

impl Endpoint {
    /// The container's address.
    pub fn addr(&self) -> IpCidr {
        self.addr
    }

    /// The host-side veth's name.
    pub fn host_veth(&self) -> &str {
        self.attachment
            .as_ref()
            .map(BridgeAttachment::host_veth)
            .unwrap_or_default()
    }

    /// Deletes the veth now ([`BridgeAttachment::remove`]) and frees the
    /// address.
    ///
    /// # Errors
    /// The first error of the two steps; both are always attempted.
    pub fn remove(mut self) -> Result<()> {
        let r = self
            .attachment
            .take()
            .map_or(Ok(()), BridgeAttachment::remove);
        let f = self.ipam.release(self.addr.addr()).map(drop);
        r.and(f)
    }

    /// Fast teardown ([`BridgeAttachment::release`]: never waits for the
    /// kernel) and frees the address.
    ///
    /// # Errors
    /// The first error of the two steps; both are always attempted.
    pub fn release(mut self) -> Result<()> {
        let r = self
            .attachment
            .take()
            .map_or(Ok(()), BridgeAttachment::release);
        let f = self.ipam.release(self.addr.addr()).map(drop);
        r.and(f)
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Some(att) = self.attachment.take() {
            drop(att);
            let _ = self.ipam.release(self.addr.addr());
        }
    }
}
