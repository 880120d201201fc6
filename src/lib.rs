//! # hull
//!
//! Build Linux containers from reusable crates. `hull` re-exports each of
//! them under a short name:
//!
//! | module | crate | what it does |
//! | --- | --- | --- |
//! | [`ns`] | `hull-ns` | namespaces: clone3, unshare, setns, handles, id maps, a minimal init |
//! | [`cgroup`] | `hull-cgroup` | cgroups v1, v2 and hybrid: resources, stats, events |
//! | [`overlayfs`] | `hull-overlayfs` | overlay mounts, whiteouts, opaque directories |
//! | [`netns`] | `hull-netns` | netlink networking: veth, bridges, addresses, routes |
//! | [`image`] | `hull-image-layers` | OCI image layouts, layers, snapshots, commit |
//! | [`container`] | `hull-container` | the [`Container`]: rootfs, mounts, privileges, lifecycle |
//!
//! Every crate can be used on its own; see each one's documentation. Each
//! has a feature of the same name as its module here (all on by default).

#![deny(unsafe_code)]

#[cfg(feature = "cgroup")]
pub use hull_cgroup as cgroup;
#[cfg(feature = "container")]
pub use hull_container as container;
#[cfg(feature = "container")]
pub use hull_container::{Container, ContainerBuilder, Mount, Rootfs};
#[cfg(feature = "image")]
pub use hull_image_layers as image;
#[cfg(feature = "netns")]
pub use hull_netns as netns;
#[cfg(feature = "ns")]
pub use hull_ns as ns;
#[cfg(feature = "overlayfs")]
pub use hull_overlayfs as overlayfs;
