//! hull-cgroup: cgroups v1, v2 and hybrid.
#![deny(unsafe_code)]

pub mod error;
pub mod layout;
pub mod parse;
pub mod resources;

pub use error::{Error, ParseError, Result};
pub use layout::{Controller, Layout, Mode, V1Hierarchy, V2Hierarchy};
pub use parse::{DeviceNumber, Limit};
pub use resources::{
    CpuWeight, DeviceKind, DeviceRule, IoLimit, IoLimitKind, IoWeight, Resources, ResourcesBuilder,
    Setting,
};
