//! hull-image-layers: work in progress.

#![deny(unsafe_code)]
