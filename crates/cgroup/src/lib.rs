//! hull-cgroup: work in progress.

#![deny(unsafe_code)]
