//! The one error type of this crate.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can fail in `hull-netns`: one variant per failing
/// operation, naming its object and carrying the kernel's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An interface name is empty, longer than 15 bytes or holds a byte the
    /// kernel refuses (`/`, `:`, whitespace).
    #[error("invalid interface name {name:?}: {reason}")]
    InvalidIfName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A namespace name is empty, too long, or holds `/` or NUL.
    #[error("invalid network namespace name {name:?}")]
    InvalidNetnsName {
        /// The name as given.
        name: String,
    },
    /// Text that should be `ADDRESS/PREFIX` is not.
    #[error("invalid CIDR {input:?}: {reason}")]
    InvalidCidr {
        /// The text as given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A gateway (or another address that must be on a subnet) is not.
    #[error("gateway {gateway} is outside subnet {subnet}")]
    GatewayOutsideSubnet {
        /// The gateway.
        gateway: IpAddr,
        /// The subnet it should be on.
        subnet: String,
    },
    /// A configuration value is out of range (MTU 0, VNI over 24 bits, …).
    #[error("invalid {field}: {reason}")]
    InvalidConfig {
        /// The field at fault.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Opening or binding a NETLINK_ROUTE socket failed.
    #[error("open netlink socket: {source}")]
    Socket {
        /// The kernel's error.
        source: io::Error,
    },
    /// Starting the helper thread that enters a namespace failed.
    #[error("spawn helper thread to enter a network namespace: {source}")]
    Thread {
        /// The error from the thread spawn.
        source: io::Error,
    },
    /// The helper thread that entered a namespace panicked.
    #[error("helper thread in a network namespace panicked")]
    ThreadPanicked,
    /// setns(2) into a network namespace failed.
    #[error("setns into network namespace: {source}")]
    EnterNetns {
        /// The kernel's error.
        source: io::Error,
    },
    /// unshare(CLONE_NEWNET) failed.
    #[error("create network namespace: {source}")]
    CreateNetns {
        /// The kernel's error.
        source: io::Error,
    },
    /// A named network namespace does not exist or cannot be opened.
    #[error("open network namespace {path}: {source}")]
    OpenNetns {
        /// Its path, e.g. `/run/netns/NAME`.
        path: PathBuf,
        /// The kernel's error (`ENOENT` when it does not exist).
        source: io::Error,
    },
    /// A named network namespace already exists.
    #[error("network namespace {path} already exists")]
    NetnsExists {
        /// Its path.
        path: PathBuf,
    },
    /// Preparing the directory of named namespaces (mkdir, shared mount) failed.
    #[error("prepare network namespace directory {path}: {source}")]
    NetnsDir {
        /// The directory.
        path: PathBuf,
        /// The kernel's error.
        source: io::Error,
    },
    /// Bind-mounting a namespace onto its name failed.
    #[error("bind network namespace to {path}: {source}")]
    BindNetns {
        /// The file under the namespace directory.
        path: PathBuf,
        /// The kernel's error.
        source: io::Error,
    },
    /// Unmounting or removing a named namespace failed.
    #[error("delete network namespace {path}: {source}")]
    DeleteNetns {
        /// Its path.
        path: PathBuf,
        /// The kernel's error.
        source: io::Error,
    },
    /// A netlink request about a link failed.
    #[error("{op} link {name:?}: {source}")]
    Link {
        /// What was asked: "create", "delete", "set up", "rename", …
        op: &'static str,
        /// The link's name (or index as text).
        name: String,
        /// The kernel's error.
        source: io::Error,
    },
    /// A link of that name already exists.
    #[error("link {name:?} already exists")]
    LinkExists {
        /// The name.
        name: String,
    },
    /// No link of that name or index exists in the handle's namespace.
    #[error("no link {name:?}")]
    LinkNotFound {
        /// The name (or index as text).
        name: String,
    },
    /// A netlink request about an address failed.
    #[error("{op} address {addr} on {link:?}: {source}")]
    Address {
        /// "add" or "delete".
        op: &'static str,
        /// The address with its prefix.
        addr: String,
        /// The link's name.
        link: String,
        /// The kernel's error.
        source: io::Error,
    },
    /// A netlink request about a route failed.
    #[error("{op} route {route}: {source}")]
    Route {
        /// "add" or "delete".
        op: &'static str,
        /// The route, as `ip route` would print it.
        route: String,
        /// The kernel's error.
        source: io::Error,
    },
    /// A gateway is not reachable through any connected subnet.
    #[error("gateway {gateway} is unreachable (no connected subnet holds it)")]
    GatewayUnreachable {
        /// The gateway.
        gateway: IpAddr,
    },
    /// A netlink dump (list of links, addresses, routes) failed.
    #[error("list {what}: {source}")]
    Dump {
        /// "links", "addresses" or "routes".
        what: &'static str,
        /// The kernel's error.
        source: io::Error,
    },
    /// Reading or writing a sysctl in a namespace failed.
    #[error("sysctl {key}: {source}")]
    Sysctl {
        /// The key, e.g. `net/ipv4/ip_forward`.
        key: String,
        /// The kernel's error.
        source: io::Error,
    },
    /// Opening, locking, reading or writing the IPAM state failed.
    #[error("IPAM state {path}: {source}")]
    IpamState {
        /// The state or lock file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The IPAM state file holds a line that is not `ADDRESS OWNER`.
    #[error("IPAM state {path}: bad line {line:?}")]
    IpamCorrupt {
        /// The state file.
        path: PathBuf,
        /// The offending line.
        line: String,
    },
    /// Every usable address of the subnet is allocated.
    #[error("subnet {subnet} is full")]
    SubnetFull {
        /// The subnet.
        subnet: String,
    },
    /// Releasing or reserving an address the pool does not hold.
    #[error("address {addr} is not in subnet {subnet} or not usable there")]
    AddressNotInSubnet {
        /// The address.
        addr: IpAddr,
        /// The subnet.
        subnet: String,
    },
    /// Running `nft` failed to start or to finish.
    #[error("run nft to {op}: {source}")]
    NftSpawn {
        /// What it was asked to do.
        op: &'static str,
        /// The error.
        source: io::Error,
    },
    /// `nft` ran and reported an error.
    #[error("nft failed to {op}: {stderr}")]
    Nft {
        /// What it was asked to do.
        op: &'static str,
        /// Its standard error.
        stderr: String,
    },
    /// The host port is already published.
    #[error("port {proto} {host_port} is already published")]
    PortPublished {
        /// "tcp" or "udp".
        proto: &'static str,
        /// The host port.
        host_port: u16,
    },
    /// No published port matches.
    #[error("port {proto} {host_port} is not published")]
    PortNotPublished {
        /// "tcp" or "udp".
        proto: &'static str,
        /// The host port.
        host_port: u16,
    },
}

/// The kernel's answer to a failed netlink request: the error number
/// and, when the kernel gave one, its extended-ack message (for example
/// "Local and remote address must be from the same family"). Carried as
/// the inner error of the `io::Error` sources above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError {
    /// The errno.
    pub errno: i32,
    /// The kernel's explanation.
    pub message: String,
}

impl std::fmt::Display for KernelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({})",
            io::Error::from_raw_os_error(self.errno),
            self.message
        )
    }
}

impl std::error::Error for KernelError {}

/// The errno of an `io::Error`, also when it wraps a [`KernelError`].
pub(crate) fn errno_of(e: &io::Error) -> Option<i32> {
    e.raw_os_error().or_else(|| {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<KernelError>())
            .map(|k| k.errno)
    })
}

impl Error {
    /// The OS error number underneath, if there is one (also when the
    /// kernel added an extended-ack message).
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Socket { source }
            | Error::Thread { source }
            | Error::EnterNetns { source }
            | Error::CreateNetns { source }
            | Error::OpenNetns { source, .. }
            | Error::NetnsDir { source, .. }
            | Error::BindNetns { source, .. }
            | Error::DeleteNetns { source, .. }
            | Error::Link { source, .. }
            | Error::Address { source, .. }
            | Error::Route { source, .. }
            | Error::Dump { source, .. }
            | Error::Sysctl { source, .. }
            | Error::IpamState { source, .. }
            | Error::NftSpawn { source, .. } => errno_of(source),
            _ => None,
        }
    }
}
