//! # hull-container: Linux containers from hull's crates
//!
//! A [`Container`] is configured in memory with a typed builder (no bundle
//! on disk), validated at [`build`](ContainerBuilder::build), and run
//! through the create/start split of the OCI runtime spec:
//!
//! ```no_run
//! use hull_container::{Container, Mount, Rootfs};
//!
//! let mut c = Container::builder("web")
//!     .rootfs(Rootfs::Host)                       // nothing to download
//!     .hostname("web")
//!     .mount(Mount::bind_ro("/etc/os-release", "/etc/os-release"))
//!     .args(["sh", "-c", "hostname; id; ps"])
//!     .build()?
//!     .create()?;
//! c.start()?;
//! println!("{}", c.wait()?);
//! # Ok::<(), hull_container::Error>(())
//! ```
//!
//! ## The Docker workflow
//!
//! Containers from images, on networks, committed back, each step a few
//! lines: an [`ImageStore`] extracts each layer once and shares it;
//! [`ContainerBuilder::image`] stacks it under a private upper layer with
//! the image config's defaults; [`NetworkMode::bridge`] with
//! [`ContainerBuilder::publish`] wires the network;
//! [`Container::copy_in`] and [`Container::copy_out`] copy files, confined
//! to the container's root; [`Container::commit`] makes a new image of its
//! writes; [`ImageBuilder`] builds images from a [`Dockerfile`] subset.
//!
//! ```no_run
//! use hull_container::hull_netns::{BridgeConfig, Proto};
//! use hull_container::{CommitOptions, Container, ImageStore, NetworkMode};
//!
//! let store = ImageStore::open("/var/lib/hull/images", "/var/lib/hull/snapshots")?;
//! let bridge = BridgeConfig::builder("hull0", "198.18.0.0/24".parse().unwrap()).build().unwrap();
//! let mut web = Container::builder("web")
//!     .image(store.prepare("busybox:latest")?)            // docker run busybox:latest
//!     .network(NetworkMode::bridge(bridge, "/var/lib/hull/ipam"))
//!     .publish(Proto::Tcp, 8080, 80)                       // -p 8080:80
//!     .args(["httpd", "-f", "-p", "80", "-h", "/www"])
//!     .build()?
//!     .create()?;
//! web.copy_in("./site", "/www")?;                          // docker cp ./site web:/www
//! web.start()?;
//! println!("{:?}", web.usage()?);                          // docker stats
//! web.commit(&store, "web:v2", &CommitOptions::default())?; // docker commit web web:v2
//! web.delete()?;                                           // docker rm -f web
//! # Ok::<(), hull_container::Error>(())
//! ```
//!
//! The spawn: [`plan`] computes, as a pure function, the namespaces and the
//! child's flat list of steps (mounts into the new root, pivot_root,
//! sysctls, masked and read-only paths, rlimits, a new session, capability
//! bounding set, ids, capabilities, no_new_privs, the [`seccomp`] filter
//! last); `hull-ns` then runs them
//! with one clone3, in the child, as raw system calls.

#![deny(unsafe_code)]

mod caps;
mod commit;
mod config;
#[allow(unsafe_code)] // poll(2) on the pidfd; the pseudo-terminal ioctls
mod container;
mod cp;
mod dockerfile;
mod error;
mod image;
mod network;
mod oci;
pub mod plan;
pub mod seccomp;
#[allow(unsafe_code)] // flock, pidfd_open, pidfd_send_signal, poll, mkfifo
mod store;
mod syscalls;

pub use caps::{Capabilities, Capability};
pub use commit::{CommitOptions, rfc3339};
pub use config::{
    Config, ContainerBuilder, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, Mount, NetworkMode,
    Rlimit, Rootfs,
};
pub use container::{Container, State, Status};
pub use dockerfile::{Dockerfile, ImageBuilder, Instruction, Step};
pub use error::{Error, Result};
pub use hull_image_layers;
pub use hull_netns;
pub use hull_ns::{ExitStatus, Stdio};
pub use image::{ImageDefaults, ImageStore, PreparedImage};
pub use network::{ContainerStats, InterfaceStats, PortSpec};
pub use oci_spec;

impl Config {
    /// Creates the container (see [`Container::create`]).
    ///
    /// # Errors
    /// As for [`Container::create`].
    pub fn create(self) -> Result<Container> {
        Container::create(self)
    }
}
