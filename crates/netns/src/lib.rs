//! hull-netns: work in progress.

#![deny(unsafe_code)]
