//! hull-ns: work in progress.

#![deny(unsafe_code)]
