//! A synchronous rtnetlink handle bound to one network namespace: links,
//! veth pairs, bridges, dummies, VXLAN devices, addresses and routes.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVeth, InfoVxlan,
    LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::cidr::IpCidr;
use crate::error::{Error, KernelError, Result, errno_of};
use crate::netns::run_in_netns;

/// The longest interface name the kernel accepts (`IFNAMSIZ - 1`).
pub const IFNAME_MAX: usize = 15;

/// Checks an interface name the way the kernel's `dev_valid_name` does:
/// 1 to 15 bytes, not `.` or `..`, no `/`, `:` or whitespace.
///
/// # Errors
/// [`Error::InvalidIfName`] naming the problem.
pub fn validate_ifname(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name.len() > IFNAME_MAX {
        Some("longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("reserved name")
    } else if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace())
    {
        Some("contains '/', ':', NUL or whitespace")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidIfName {
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// A network interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Link kind (`veth`, `bridge`, `vxlan`, `dummy`…), `None` for
    /// loopback and physical devices.
    pub kind: Option<String>,
    /// MTU.
    pub mtu: Option<u32>,
    /// Whether the administrative `UP` flag is set.
    pub up: bool,
    /// Index of the bridge (controller) this link is attached to.
    pub controller: Option<u32>,
    /// Hardware address.
    pub mac: Option<Vec<u8>>,
}

impl Link {
    fn from_message(m: &LinkMessage) -> Option<Link> {
        let mut name = None;
        let mut link = Link {
            index: m.header.index,
            name: String::new(),
            kind: None,
            mtu: None,
            up: m.header.flags.contains(LinkFlags::Up),
            controller: None,
            mac: None,
        };
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(n) => name = Some(n.clone()),
                LinkAttribute::Mtu(v) => link.mtu = Some(*v),
                LinkAttribute::Controller(c) if *c != 0 => link.controller = Some(*c),
                LinkAttribute::Address(a) => link.mac = Some(a.clone()),
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        if let LinkInfo::Kind(k) = i {
                            link.kind = Some(k.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        link.name = name?;
        Some(link)
    }
}

/// An address configured on a link.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Address {
    /// Index of the link it is on.
    pub index: u32,
    /// The address and its prefix length.
    pub cidr: IpCidr,
}

/// A route, for adding, deleting and listing (main table).
///
/// ```
/// use hull_netns::{IpCidr, Route};
/// let default = Route::default_via("198.18.0.1".parse().unwrap());
/// assert_eq!(default.to_string(), "default via 198.18.0.1");
/// let r = Route::to("198.18.5.0/24".parse().unwrap()).dev("br0");
/// assert_eq!(r.to_string(), "198.18.5.0/24 dev br0");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Route {
    /// Destination subnet; `None` is the default route (IPv4 unless the
    /// gateway is IPv6).
    pub destination: Option<IpCidr>,
    /// Next hop.
    pub gateway: Option<IpAddr>,
    /// Output device.
    pub device: Option<String>,
    /// Metric (priority).
    pub metric: Option<u32>,
}

impl Route {
    /// A route to `destination` (give it a gateway or a device).
    pub fn to(destination: IpCidr) -> Route {
        Route {
            destination: Some(destination.network()),
            gateway: None,
            device: None,
            metric: None,
        }
    }

    /// The default route via `gateway`.
    pub fn default_via(gateway: IpAddr) -> Route {
        Route {
            destination: None,
            gateway: Some(gateway),
            device: None,
            metric: None,
        }
    }

    /// Sets the gateway.
    pub fn via(mut self, gateway: IpAddr) -> Route {
        self.gateway = Some(gateway);
        self
    }

    /// Sets the output device.
    pub fn dev(mut self, device: &str) -> Route {
        self.device = Some(device.to_string());
        self
    }

    /// Sets the metric.
    pub fn metric(mut self, metric: u32) -> Route {
        self.metric = Some(metric);
        self
    }

    fn is_ipv4(&self) -> bool {
        match (self.destination, self.gateway) {
            (Some(d), _) => d.is_ipv4(),
            (None, Some(g)) => g.is_ipv4(),
            (None, None) => true,
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.destination {
            Some(d) if d.prefix() > 0 => write!(f, "{d}")?,
            _ => f.write_str("default")?,
        }
        if let Some(g) = self.gateway {
            write!(f, " via {g}")?;
        }
        if let Some(d) = &self.device {
            write!(f, " dev {d}")?;
        }
        if let Some(m) = self.metric {
            write!(f, " metric {m}")?;
        }
        Ok(())
    }
}

/// A VXLAN device to create.
///
/// ```
/// use hull_netns::Vxlan;
/// let v = Vxlan::new("vx0", 42)
///     .local("198.18.100.1".parse().unwrap())
///     .remote("198.18.100.2".parse().unwrap())
///     .underlay("uplink");
/// assert_eq!(v.port, 4789);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Vxlan {
    /// Interface name.
    pub name: String,
    /// VXLAN network identifier (24 bits).
    pub vni: u32,
    /// Local underlay address (source of encapsulated packets).
    pub local: Option<IpAddr>,
    /// A unicast remote endpoint, or a multicast group (then `underlay` is
    /// required). The kernel keeps both in `IFLA_VXLAN_GROUP`.
    pub remote: Option<IpAddr>,
    /// UDP destination port (IANA 4789 by default).
    pub port: u16,
    /// Underlay device the tunnel sends through.
    pub underlay: Option<String>,
    /// Learn remote MACs from received packets (default on).
    pub learning: bool,
}

impl Vxlan {
    /// A VXLAN device `name` with VNI `vni`, port 4789, learning on.
    pub fn new(name: &str, vni: u32) -> Vxlan {
        Vxlan {
            name: name.to_string(),
            vni,
            local: None,
            remote: None,
            port: 4789,
            underlay: None,
            learning: true,
        }
    }

    /// Sets the local underlay address.
    pub fn local(mut self, ip: IpAddr) -> Vxlan {
        self.local = Some(ip);
        self
    }

    /// Sets a unicast remote endpoint.
    pub fn remote(mut self, ip: IpAddr) -> Vxlan {
        self.remote = Some(ip);
        self
    }

    /// Sets a multicast group (needs [`Vxlan::underlay`]).
    pub fn group(mut self, ip: IpAddr) -> Vxlan {
        self.remote = Some(ip);
        self
    }

    /// Sets the UDP destination port.
    pub fn port(mut self, port: u16) -> Vxlan {
        self.port = port;
        self
    }

    /// Sets the underlay device.
    pub fn underlay(mut self, dev: &str) -> Vxlan {
        self.underlay = Some(dev.to_string());
        self
    }

    fn validate(&self) -> Result<()> {
        validate_ifname(&self.name)?;
        if self.vni >= 1 << 24 {
            return Err(Error::InvalidConfig {
                field: "vxlan vni",
                reason: format!("{} does not fit in 24 bits", self.vni),
            });
        }
        if let Some(u) = &self.underlay {
            validate_ifname(u)?;
        }
        if let (Some(l), Some(r)) = (self.local, self.remote) {
            if l.is_ipv4() != r.is_ipv4() {
                return Err(Error::InvalidConfig {
                    field: "vxlan local/remote",
                    reason: format!("{l} and {r} are of different families"),
                });
            }
        }
        if let Some(r) = self.remote {
            if r.is_multicast() && self.underlay.is_none() {
                return Err(Error::InvalidConfig {
                    field: "vxlan underlay",
                    reason: format!("multicast group {r} needs an underlay device"),
                });
            }
        }
        Ok(())
    }
}

/// `NLM_F_CAPPED`: the error message carries only the request's header.
const NLM_F_CAPPED: u16 = 0x100;
/// `NLM_F_ACK_TLVS`: extended-ack attributes follow the request.
const NLM_F_ACK_TLVS: u16 = 0x200;
/// `NLMSGERR_ATTR_MSG`: the kernel's error text.
const NLMSGERR_ATTR_MSG: u16 = 1;

/// Turns a netlink error into an `io::Error`, with the kernel's
/// extended-ack message when there is one. `payload` is what follows the
/// errno: the request (whole, or only its header when capped), then the
/// attributes.
fn kernel_error(errno: i32, flags: u16, payload: &[u8]) -> io::Error {
    let plain = || io::Error::from_raw_os_error(errno);
    if flags & NLM_F_ACK_TLVS == 0 {
        return plain();
    }
    let mut off = if flags & NLM_F_CAPPED != 0 {
        16
    } else {
        let len = payload
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_ne_bytes)
            .and_then(|l| usize::try_from(l).ok());
        match len {
            Some(l) => l.saturating_add(3) & !3,
            None => return plain(),
        }
    };
    while let Some(hdr) = payload.get(off..off.saturating_add(4)) {
        let len = usize::from(u16::from_ne_bytes([hdr[0], hdr[1]]));
        let kind = u16::from_ne_bytes([hdr[2], hdr[3]]) & 0x3fff;
        if len < 4 {
            break;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let Some(v) = payload.get(off + 4..off + len) else {
                break;
            };
            let text = String::from_utf8_lossy(v)
                .trim_end_matches('\0')
                .to_string();
            if text.is_empty() {
                break;
            }
            let kind = plain().kind();
            return io::Error::new(
                kind,
                KernelError {
                    errno,
                    message: text,
                },
            );
        }
        off = off.saturating_add((len + 3) & !3);
    }
    plain()
}

fn retry_eintr<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

fn invalid_data(e: impl fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

fn family(ip: IpAddr) -> AddressFamily {
    if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

/// A synchronous `NETLINK_ROUTE` socket bound to one network namespace.
///
/// The namespace is fixed when the socket is opened: [`Netlink::in_netns`]
/// opens it on a helper thread that has joined the namespace, so the
/// calling thread never moves. Every request waits for the kernel's answer.
///
/// ```no_run
/// use hull_netns::{NetNs, Route};
/// # fn main() -> Result<(), hull_netns::Error> {
/// let host = NetNs::new()?;
/// let ctr = NetNs::new()?;
/// let nl = host.netlink()?;
/// nl.create_bridge("br0")?;
/// nl.create_veth("veth0", "eth0", Some(&ctr))?;
/// nl.attach("veth0", "br0")?;
/// nl.add_address("br0", "198.18.0.1/24".parse()?)?;
/// nl.set_up("br0")?;
/// nl.set_up("veth0")?;
/// let c = ctr.netlink()?;
/// c.add_address("eth0", "198.18.0.2/24".parse()?)?;
/// c.set_up("eth0")?;
/// c.add_route(&Route::default_via("198.18.0.1".parse().unwrap()))?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Netlink {
    socket: Socket,
    seq: Cell<u32>,
}

impl Netlink {
    /// Opens a socket in the calling thread's network namespace.
    ///
    /// # Errors
    /// [`Error::Socket`] if socket(2), bind(2) or connect(2) fails.
    pub fn current() -> Result<Self> {
        let err = |source| Error::Socket { source };
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(err)?;
        socket.bind_auto().map_err(err)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(err)?;
        // Extended acks make the kernel's error text available; failing to
        // turn them on is harmless.
        let _ = socket.set_ext_ack(true);
        Ok(Netlink {
            socket,
            seq: Cell::new(0),
        })
    }

    /// Opens a socket inside the network namespace `ns` (any
    /// `AsFd` namespace handle works: [`crate::NetNs`], `/proc/PID/ns/net`).
    ///
    /// # Errors
    /// [`Error::EnterNetns`] if `ns` is not a network namespace,
    /// [`Error::Socket`], [`Error::Thread`].
    pub fn in_netns<F: std::os::fd::AsFd>(ns: &F) -> Result<Self> {
        run_in_netns(ns.as_fd(), Self::current)?
    }

    fn request(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        let seq = self.seq.get().wrapping_add(1);
        self.seq.set(seq);
        let mut header = NetlinkHeader::default();
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        // Non-dump requests always ask for an ACK, which ends the answer.
        header.flags = NLM_F_REQUEST | flags | if dump { 0 } else { NLM_F_ACK };
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf[..]);
        retry_eintr(|| self.socket.send(&buf, 0))?;

        let mut out = Vec::new();
        let mut rbuf = vec![0u8; 64 * 1024];
        loop {
            let n = retry_eintr(|| self.socket.recv(&mut &mut rbuf[..], 0))?;
            let mut off = 0;
            while off < n {
                let bytes = rbuf.get(off..n).unwrap_or_default();
                let msg: NetlinkMessage<RouteNetlinkMessage> =
                    NetlinkMessage::deserialize(bytes).map_err(invalid_data)?;
                let len = usize::try_from(msg.header.length).map_err(invalid_data)?;
                if len == 0 {
                    return Err(invalid_data("zero-length netlink message"));
                }
                off += (len + 3) & !3;
                if msg.header.sequence_number != seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => match e.code {
                        Some(code) => {
                            return Err(kernel_error(
                                code.get().saturating_neg(),
                                msg.header.flags,
                                &e.header,
                            ));
                        }
                        None if !dump => return Ok(out),
                        None => {}
                    },
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    NetlinkPayload::Overrun(_) => {
                        return Err(io::Error::from_raw_os_error(libc::ENOBUFS));
                    }
                    _ => {}
                }
            }
        }
    }

    fn ack(&self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        self.request(msg, flags).map(drop)
    }

    // ---- links ----

    /// Lists every link in the namespace.
    ///
    /// # Errors
    /// [`Error::Dump`].
    pub fn links(&self) -> Result<Vec<Link>> {
        let msgs = self
            .request(
                RouteNetlinkMessage::GetLink(LinkMessage::default()),
                NLM_F_DUMP,
            )
            .map_err(|source| Error::Dump {
                what: "links",
                source,
            })?;
        Ok(msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Link::from_message(l),
                _ => None,
            })
            .collect())
    }

    /// Finds a link by name.
    ///
    /// # Errors
    /// [`Error::InvalidIfName`], [`Error::LinkNotFound`], [`Error::Link`].
    pub fn link(&self, name: &str) -> Result<Link> {
        validate_ifname(name)?;
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.get_link(m, name)
    }

    /// Finds a link by index.
    ///
    /// # Errors
    /// [`Error::LinkNotFound`], [`Error::Link`].
    pub fn link_by_index(&self, index: u32) -> Result<Link> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        self.get_link(m, &index.to_string())
    }

    fn get_link(&self, m: LinkMessage, name: &str) -> Result<Link> {
        let not_found = || Error::LinkNotFound {
            name: name.to_string(),
        };
        match self.request(RouteNetlinkMessage::GetLink(m), 0) {
            Ok(msgs) => msgs
                .iter()
                .find_map(|m| match m {
                    RouteNetlinkMessage::NewLink(l) => Link::from_message(l),
                    _ => None,
                })
                .ok_or_else(not_found),
            Err(e) if errno_of(&e) == Some(libc::ENODEV) => Err(not_found()),
            Err(source) => Err(Error::Link {
                op: "get",
                name: name.to_string(),
                source,
            }),
        }
    }

    /// Whether a link of that name exists.
    ///
    /// # Errors
    /// As [`Netlink::link`], except that a missing link is `Ok(false)`.
    pub fn link_exists(&self, name: &str) -> Result<bool> {
        match self.link(name) {
            Ok(_) => Ok(true),
            Err(Error::LinkNotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn index(&self, name: &str) -> Result<u32> {
        self.link(name).map(|l| l.index)
    }

    fn set_link(
        &self,
        op: &'static str,
        name: &str,
        f: impl FnOnce(&mut LinkMessage),
    ) -> Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = self.index(name)?;
        f(&mut m);
        self.ack(RouteNetlinkMessage::SetLink(m), 0)
            .map_err(|source| Error::Link {
                op,
                name: name.to_string(),
                source,
            })
    }

    /// Sets a link administratively up (`ip link set NAME up`).
    ///
    /// # Errors
    /// [`Error::LinkNotFound`], [`Error::Link`].
    pub fn set_up(&self, name: &str) -> Result<()> {
        self.set_link("set up", name, |m| {
            m.header.flags = LinkFlags::Up;
            m.header.change_mask = LinkFlags::Up;
        })
    }

    /// Sets a link down.
    ///
    /// # Errors
    /// [`Error::LinkNotFound`], [`Error::Link`].
    pub fn set_down(&self, name: &str) -> Result<()> {
        self.set_link("set down", name, |m| {
            m.header.flags = LinkFlags::empty();
            m.header.change_mask = LinkFlags::Up;
        })
    }

    /// Renames a link (it must be down, as the kernel requires).
    ///
    /// # Errors
    /// [`Error::InvalidIfName`] for `new_name`, [`Error::LinkExists`] if it
    /// is taken, [`Error::LinkNotFound`], [`Error::Link`] (`EBUSY` when the
    /// link is up).
    pub fn rename(&self, name: &str, new_name: &str) -> Result<()> {
        validate_ifname(new_name)?;
        let r = self.set_link("rename", name, |m| {
            m.attributes
                .push(LinkAttribute::IfName(new_name.to_string()));
        });
        match r {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Err(Error::LinkExists {
                name: new_name.to_string(),
            }),
            r => r,
        }
    }

    /// Sets a link's MTU.
    ///
    /// # Errors
    /// [`Error::LinkNotFound`], [`Error::Link`] (`EINVAL` out of range).
    pub fn set_mtu(&self, name: &str, mtu: u32) -> Result<()> {
        self.set_link("set mtu", name, |m| {
            m.attributes.push(LinkAttribute::Mtu(mtu))
        })
    }

    /// Moves a link into the network namespace `ns`
    /// (`ip link set NAME netns NS`); it arrives down and without
    /// addresses.
    ///
    /// # Errors
    /// [`Error::LinkNotFound`], [`Error::Link`] (`EEXIST` when the name is
    /// taken there).
    pub fn move_to_netns<F: std::os::fd::AsFd>(&self, name: &str, ns: &F) -> Result<()> {
        let fd = ns.as_fd();
        self.set_link("move to netns", name, |m| {
            m.attributes.push(LinkAttribute::NetNsFd(fd.as_raw_fd()));
        })
    }

    /// Deletes a link (for a veth, both ends go).
    ///
    /// # Errors
    /// [`Error::LinkNotFound`], [`Error::Link`].
    pub fn delete_link(&self, name: &str) -> Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = self.index(name)?;
        self.ack(RouteNetlinkMessage::DelLink(m), 0)
            .map_err(|source| Error::Link {
                op: "delete",
                name: name.to_string(),
                source,
            })
    }

    fn new_link(&self, name: &str, attributes: Vec<LinkAttribute>) -> Result<()> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        m.attributes.extend(attributes);
        match self.ack(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL) {
            Ok(()) => Ok(()),
            Err(e) if errno_of(&e) == Some(libc::EEXIST) => Err(Error::LinkExists {
                name: name.to_string(),
            }),
            Err(source) => Err(Error::Link {
                op: "create",
                name: name.to_string(),
                source,
            }),
        }
    }

    /// Creates a veth pair: `name` here and `peer` created directly in
    /// `peer_ns` (via `IFLA_NET_NS_FD`), or here when `None`. Both ends start
    /// down.
    ///
    /// # Errors
    /// [`Error::InvalidIfName`], [`Error::LinkExists`] naming the end whose
    /// name is taken, [`Error::Link`].
    pub fn create_veth(
        &self,
        name: &str,
        peer: &str,
        peer_ns: Option<&dyn std::os::fd::AsFd>,
    ) -> Result<()> {
        validate_ifname(name)?;
        validate_ifname(peer)?;
        let peer_fd: Option<BorrowedFd<'_>> = peer_ns.map(|n| n.as_fd());
        let mut p = LinkMessage::default();
        p.attributes.push(LinkAttribute::IfName(peer.to_string()));
        if let Some(fd) = peer_fd {
            p.attributes.push(LinkAttribute::NetNsFd(fd.as_raw_fd()));
        }
        let r = self.new_link(
            name,
            vec![LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Veth),
                LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
            ])],
        );
        match r {
            // EEXIST may be about either end: name the one that exists here,
            // else the peer.
            Err(Error::LinkExists { .. }) if !self.link_exists(name).unwrap_or(true) => {
                Err(Error::LinkExists {
                    name: peer.to_string(),
                })
            }
            r => r,
        }
    }

    /// Creates a bridge (`ip link add NAME type bridge`), down.
    ///
    /// # Errors
    /// [`Error::InvalidIfName`], [`Error::LinkExists`], [`Error::Link`].
    pub fn create_bridge(&self, name: &str) -> Result<()> {
        validate_ifname(name)?;
        self.new_link(
            name,
            vec![LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )])],
        )
    }

    /// Creates a dummy device, down.
    ///
    /// # Errors
    /// [`Error::InvalidIfName`], [`Error::LinkExists`], [`Error::Link`].
    pub fn create_dummy(&self, name: &str) -> Result<()> {
        validate_ifname(name)?;
        self.new_link(
            name,
            vec![LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Dummy,
            )])],
        )
    }

    /// Creates a VXLAN device, down.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] (VNI over 24 bits, mixed families, a group
    /// without underlay), [`Error::InvalidIfName`], [`Error::LinkNotFound`]
    /// for the underlay, [`Error::LinkExists`], [`Error::Link`].
    pub fn create_vxlan(&self, v: &Vxlan) -> Result<()> {
        v.validate()?;
        let mut data = vec![InfoVxlan::Id(v.vni)];
        match v.local {
            Some(IpAddr::V4(a)) => data.push(InfoVxlan::Local(a)),
            Some(IpAddr::V6(a)) => data.push(InfoVxlan::Local6(a)),
            None => {}
        }
        match v.remote {
            Some(IpAddr::V4(a)) => data.push(InfoVxlan::Group(a)),
            Some(IpAddr::V6(a)) => data.push(InfoVxlan::Group6(a)),
            None => {}
        }
        if let Some(u) = &v.underlay {
            data.push(InfoVxlan::Link(self.index(u)?));
        }
        data.push(InfoVxlan::Port(v.port));
        data.push(InfoVxlan::Learning(v.learning));
        self.new_link(
            &v.name,
            vec![LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Vxlan),
                LinkInfo::Data(InfoData::Vxlan(data)),
            ])],
        )
    }

    /// Attaches `port` to `bridge` (`ip link set PORT master BRIDGE`).
    ///
    /// # Errors
    /// [`Error::LinkNotFound`] for either, [`Error::Link`].
    pub fn attach(&self, port: &str, bridge: &str) -> Result<()> {
        let b = self.index(bridge)?;
        self.set_link("attach to bridge", port, |m| {
            m.attributes.push(LinkAttribute::Controller(b));
        })
    }

    /// Detaches `port` from its bridge (`ip link set PORT nomaster`).
    ///
    /// # Errors
    /// [`Error::LinkNotFound`], [`Error::Link`].
    pub fn detach(&self, port: &str) -> Result<()> {
        self.set_link("detach from bridge", port, |m| {
            m.attributes.push(LinkAttribute::Controller(0));
        })
    }

    /// Turns hairpin mode of a bridge port on or off
    /// (`ip link set PORT type bridge_slave hairpin on`): frames may leave
    /// through the port they came in on. Needed for published-port hairpin
    /// traffic when `br_netfilter` makes the bridge NAT at layer 2.
    ///
    /// # Errors
    /// [`Error::LinkNotFound`], [`Error::Link`] (`EOPNOTSUPP` if not a
    /// bridge port).
    pub fn set_hairpin(&self, port: &str, on: bool) -> Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = self.index(port)?;
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(
                on,
            )])),
        ]));
        self.ack(RouteNetlinkMessage::NewLink(m), 0)
            .map_err(|source| Error::Link {
                op: "set hairpin",
                name: port.to_string(),
                source,
            })
    }

    // ---- addresses ----

    fn address_message(index: u32, cidr: IpCidr) -> AddressMessage {
        let mut m = AddressMessage::default();
        m.header.family = family(cidr.addr());
        m.header.prefix_len = cidr.prefix();
        m.header.index = index;
        m.header.scope = AddressScope::Universe;
        if cidr.is_ipv4() {
            m.attributes.push(AddressAttribute::Local(cidr.addr()));
        } else {
            // No duplicate address detection: the address is usable at once.
            m.header.flags = AddressHeaderFlags::Nodad;
        }
        m.attributes.push(AddressAttribute::Address(cidr.addr()));
        m
    }

    /// Adds an address to a link (`ip addr add CIDR dev LINK`). IPv6
    /// addresses skip duplicate address detection.
    ///
    /// # Errors
    /// [`Error::LinkNotFound`], [`Error::Address`] (`EEXIST` when present).
    pub fn add_address(&self, link: &str, cidr: IpCidr) -> Result<()> {
        let m = Self::address_message(self.index(link)?, cidr);
        self.ack(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map_err(|source| Error::Address {
            op: "add",
            addr: cidr.to_string(),
            link: link.to_string(),
            source,
        })
    }

    /// Removes an address from a link.
    ///
    /// # Errors
    /// [`Error::LinkNotFound`], [`Error::Address`] (`EADDRNOTAVAIL` when
    /// absent).
    pub fn delete_address(&self, link: &str, cidr: IpCidr) -> Result<()> {
        let m = Self::address_message(self.index(link)?, cidr);
        self.ack(RouteNetlinkMessage::DelAddress(m), 0)
            .map_err(|source| Error::Address {
                op: "delete",
                addr: cidr.to_string(),
                link: link.to_string(),
                source,
            })
    }

    /// Lists addresses, of one link or of all.
    ///
    /// # Errors
    /// [`Error::LinkNotFound`], [`Error::Dump`].
    pub fn addresses(&self, link: Option<&str>) -> Result<Vec<Address>> {
        let want = link.map(|l| self.index(l)).transpose()?;
        let msgs = self
            .request(
                RouteNetlinkMessage::GetAddress(AddressMessage::default()),
                NLM_F_DUMP,
            )
            .map_err(|source| Error::Dump {
                what: "addresses",
                source,
            })?;
        let mut out = Vec::new();
        for m in &msgs {
            let RouteNetlinkMessage::NewAddress(a) = m else {
                continue;
            };
            if want.is_some_and(|w| w != a.header.index) {
                continue;
            }
            let mut local = None;
            let mut addr = None;
            for attr in &a.attributes {
                match attr {
                    AddressAttribute::Local(ip) => local = Some(*ip),
                    AddressAttribute::Address(ip) => addr = Some(*ip),
                    _ => {}
                }
            }
            if let Some(ip) = local.or(addr) {
                if let Ok(cidr) = IpCidr::new(ip, a.header.prefix_len) {
                    out.push(Address {
                        index: a.header.index,
                        cidr,
                    });
                }
            }
        }
        Ok(out)
    }

    // ---- routes ----

    fn route_message(&self, r: &Route) -> Result<RouteMessage> {
        let mut m = RouteMessage::default();
        let v4 = r.is_ipv4();
        if let Some(g) = r.gateway {
            if g.is_ipv4() != v4 {
                return Err(Error::InvalidConfig {
                    field: "route gateway",
                    reason: format!("{g} and the destination are of different families"),
                });
            }
        }
        m.header.address_family = if v4 {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Static;
        m.header.kind = RouteType::Unicast;
        m.header.scope = if r.gateway.is_none() && r.device.is_some() {
            RouteScope::Link
        } else {
            RouteScope::Universe
        };
        if let Some(d) = r.destination {
            m.header.destination_prefix_length = d.prefix();
            if d.prefix() > 0 {
                m.attributes
                    .push(RouteAttribute::Destination(RouteAddress::from(
                        d.network().addr(),
                    )));
            }
        }
        if let Some(g) = r.gateway {
            m.attributes
                .push(RouteAttribute::Gateway(RouteAddress::from(g)));
        }
        if let Some(dev) = &r.device {
            m.attributes.push(RouteAttribute::Oif(self.index(dev)?));
        }
        if let Some(p) = r.metric {
            m.attributes.push(RouteAttribute::Priority(p));
        }
        Ok(m)
    }

    /// Adds a route to the main table (`ip route add`).
    ///
    /// # Errors
    /// [`Error::GatewayUnreachable`] when no connected subnet holds the
    /// gateway, [`Error::LinkNotFound`] for the device, [`Error::Route`].
    pub fn add_route(&self, r: &Route) -> Result<()> {
        let m = self.route_message(r)?;
        match self.ack(RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_EXCL) {
            Ok(()) => Ok(()),
            Err(e) if errno_of(&e) == Some(libc::ENETUNREACH) && r.gateway.is_some() => {
                Err(Error::GatewayUnreachable {
                    gateway: r.gateway.unwrap_or(IpAddr::from([0, 0, 0, 0])),
                })
            }
            Err(source) => Err(Error::Route {
                op: "add",
                route: r.to_string(),
                source,
            }),
        }
    }

    /// Deletes a route from the main table.
    ///
    /// # Errors
    /// [`Error::LinkNotFound`], [`Error::Route`] (`ESRCH` when absent).
    pub fn delete_route(&self, r: &Route) -> Result<()> {
        let mut m = self.route_message(r)?;
        m.header.scope = RouteScope::NoWhere;
        m.header.protocol = RouteProtocol::Unspec;
        self.ack(RouteNetlinkMessage::DelRoute(m), 0)
            .map_err(|source| Error::Route {
                op: "delete",
                route: r.to_string(),
                source,
            })
    }

    /// Lists the unicast routes of the main table (IPv4 and IPv6).
    ///
    /// # Errors
    /// [`Error::Dump`].
    pub fn routes(&self) -> Result<Vec<Route>> {
        let names: HashMap<u32, String> = self
            .links()?
            .into_iter()
            .map(|l| (l.index, l.name))
            .collect();
        let msgs = self
            .request(
                RouteNetlinkMessage::GetRoute(RouteMessage::default()),
                NLM_F_DUMP,
            )
            .map_err(|source| Error::Dump {
                what: "routes",
                source,
            })?;
        let mut out = Vec::new();
        for m in &msgs {
            let RouteNetlinkMessage::NewRoute(r) = m else {
                continue;
            };
            let mut table = u32::from(r.header.table);
            let mut dst = None;
            let mut route = Route {
                destination: None,
                gateway: None,
                device: None,
                metric: None,
            };
            for a in &r.attributes {
                match a {
                    RouteAttribute::Table(t) => table = *t,
                    RouteAttribute::Destination(RouteAddress::Inet(a)) => {
                        dst = Some(IpAddr::V4(*a))
                    }
                    RouteAttribute::Destination(RouteAddress::Inet6(a)) => {
                        dst = Some(IpAddr::V6(*a));
                    }
                    RouteAttribute::Gateway(RouteAddress::Inet(a)) => {
                        route.gateway = Some(IpAddr::V4(*a));
                    }
                    RouteAttribute::Gateway(RouteAddress::Inet6(a)) => {
                        route.gateway = Some(IpAddr::V6(*a));
                    }
                    RouteAttribute::Oif(i) => route.device = names.get(i).cloned(),
                    RouteAttribute::Priority(p) => route.metric = Some(*p),
                    _ => {}
                }
            }
            if table != u32::from(RouteHeader::RT_TABLE_MAIN) || r.header.kind != RouteType::Unicast
            {
                continue;
            }
            let v4 = r.header.address_family == AddressFamily::Inet;
            let unspecified = if v4 {
                IpAddr::from([0u8; 4])
            } else {
                IpAddr::from([0u16; 8])
            };
            let plen = r.header.destination_prefix_length;
            route.destination = if plen == 0 {
                None
            } else {
                IpCidr::new(dst.unwrap_or(unspecified), plen).ok()
            };
            out.push(route);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifnames_follow_the_kernel_rules() {
        assert!(validate_ifname("eth0").is_ok());
        assert!(validate_ifname("a23456789012345").is_ok());
        for bad in [
            "",
            "a234567890123456",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "a\tb",
        ] {
            assert!(
                matches!(validate_ifname(bad), Err(Error::InvalidIfName { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn extended_ack_message_is_kept() {
        // A capped error: 16 bytes of request header, then one MSG
        // attribute "bad mtu\0" (4 + 8 bytes) and an OFFS attribute.
        let mut p = vec![0u8; 16];
        p.extend_from_slice(&12u16.to_ne_bytes());
        p.extend_from_slice(&1u16.to_ne_bytes());
        p.extend_from_slice(b"bad mtu\0");
        p.extend_from_slice(&8u16.to_ne_bytes());
        p.extend_from_slice(&2u16.to_ne_bytes());
        p.extend_from_slice(&0u32.to_ne_bytes());
        let e = kernel_error(libc::EINVAL, NLM_F_CAPPED | NLM_F_ACK_TLVS, &p);
        assert_eq!(errno_of(&e), Some(libc::EINVAL));
        assert!(e.to_string().contains("bad mtu"), "{e}");
        // Without TLVs, or truncated, it is the plain errno.
        assert_eq!(
            kernel_error(libc::EEXIST, 0, &p).raw_os_error(),
            Some(libc::EEXIST)
        );
        let e = kernel_error(libc::EINVAL, NLM_F_CAPPED | NLM_F_ACK_TLVS, &p[..20]);
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        let e = kernel_error(libc::EINVAL, NLM_F_ACK_TLVS, &[0xff; 3]);
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    }

    proptest::proptest! {
        #[test]
        fn kernel_error_never_panics(
            flags in proptest::prelude::any::<u16>(),
            p in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..96),
        ) {
            let e = kernel_error(libc::EINVAL, flags, &p);
            proptest::prop_assert_eq!(errno_of(&e), Some(libc::EINVAL));
        }
    }

    #[test]
    fn vxlan_validation() {
        assert!(Vxlan::new("vx0", 1 << 24).validate().is_err());
        assert!(
            Vxlan::new("vx0", 7)
                .group("239.1.1.1".parse().unwrap())
                .validate()
                .is_err()
        );
        assert!(
            Vxlan::new("vx0", 7)
                .local("198.18.0.1".parse().unwrap())
                .remote("fd00::1".parse().unwrap())
                .validate()
                .is_err()
        );
        assert!(
            Vxlan::new("vx0", 7)
                .remote("198.18.0.2".parse().unwrap())
                .validate()
                .is_ok()
        );
    }
}
