//! hull-overlayfs: work in progress.

#![deny(unsafe_code)]
