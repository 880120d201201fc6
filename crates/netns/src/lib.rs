//! # hull-netns
//!
//! Container networking over netlink, synchronous and without shelling out
//! to `ip`: network namespace handles (anonymous, or named as `ip netns`
//! keeps them), links (veth pairs, bridges, dummies, VXLAN), addresses,
//! routes and namespace sysctls.
//!
//! Every operation goes through a [`Netlink`] handle bound to one network
//! namespace: the socket is opened on a short-lived thread that joined the
//! namespace, so the caller's own thread never moves and the host's network
//! is never touched by accident.
//!
//! On top of that:
//! - network modes ([`Network`]) and bridge mode ([`setup_bridge`]): a
//!   bridge in the host namespace, a veth pair whose container end is
//!   created directly in the container's namespace and renamed `eth0`, an
//!   address, a default route via the bridge; [`attach_vxlan`] joins the
//!   bridge to a VXLAN overlay between hosts;
//! - [`Ipam`], addresses for a subnet persisted under a `flock`;
//! - [`hosts_file`], [`hostname_file`], [`resolv_conf`]: the container's
//!   name-service files, as text;
//! - [`PortPublisher`]: published ports as nftables DNAT rules in a table
//!   hull owns (see the `ports` notes on [`PortPublisher`] for hairpin and
//!   localhost behaviour, and why it runs `nft`).
//!
//! # Teardown
//! Nothing here waits for the kernel's asynchronous destruction of a
//! network namespace (tens of milliseconds after its last reference goes):
//! [`BridgeAttachment::release`] sets the host end of the veth down and
//! renames it out of the way (its name is free at once) and leaves the
//! pair to the namespace's destruction; [`BridgeAttachment::remove`]
//! deletes it synchronously instead (paying the kernel's device
//! unregistration, tens of milliseconds). Named namespaces are lazily
//! unmounted and unlinked, and dropping a [`NetNs`] only closes its fd.
//!
//! ```no_run
//! use hull_netns::{NetNs, Route};
//! # fn main() -> Result<(), hull_netns::Error> {
//! let host = NetNs::new()?; // a sandbox "host"
//! let ctr = NetNs::new()?; // a container
//! let h = host.netlink()?;
//! h.create_veth("veth-a", "eth0", Some(&ctr))?;
//! h.add_address("veth-a", "198.18.0.1/30".parse()?)?;
//! h.set_up("veth-a")?;
//! let c = ctr.netlink()?;
//! c.set_up("lo")?;
//! c.add_address("eth0", "198.18.0.2/30".parse()?)?;
//! c.set_up("eth0")?;
//! c.add_route(&Route::default_via("198.18.0.1".parse().unwrap()))?;
//! # Ok(()) }
//! ```

#![deny(unsafe_code)]
#![deny(missing_docs)]

mod cidr;
mod endpoint;
mod error;
mod files;
mod ipam;
mod mode;
mod netlink;
mod netns;
mod ports;
mod sys;

pub use cidr::IpCidr;
pub use endpoint::{BridgeNetwork, Endpoint};
pub use error::{Error, KernelError, Result};
pub use files::{
    HostsEntry, hostname_file, hosts_file, resolv_conf, resolv_conf_from_host, validate_hostname,
};
pub use ipam::Ipam;
pub use mode::{
    BridgeAttachment, BridgeConfig, BridgeConfigBuilder, Network, attach_vxlan, ensure_bridge,
    host_veth_name, setup_bridge, setup_none,
};
pub use netlink::{Address, IFNAME_MAX, Link, Netlink, Route, Vxlan, validate_ifname};
pub use netns::{NETNS_RUN_DIR, NetNs, run_in_netns};
pub use ports::{NFT_TABLE, PortMapping, PortPublisher, Proto, PublishedPort};

/// Runs every text parser of this crate on `data` (the fuzz target's
/// entry point); returns how many accepted it. Never panics.
#[doc(hidden)]
pub fn parse_all_for_fuzzing(data: &[u8]) -> usize {
    let Ok(text) = std::str::from_utf8(data) else {
        return 0;
    };
    let mut n = 0;
    for line in text.lines() {
        n += usize::from(line.parse::<IpCidr>().is_ok());
        n += usize::from(validate_ifname(line).is_ok());
        n += usize::from(hostname_file(line).is_ok());
    }
    n += usize::from(!resolv_conf_from_host(text).is_empty());
    n += usize::from(ipam::parse_state_for_fuzzing(text));
    n += ports::parse_rules_for_fuzzing(text);
    n
}
