//! sha256 digests: validation and hashing readers/writers.

use std::io::{self, Read, Write};

use oci_spec::image::Digest;
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// Checks that `text` is `sha256:` followed by exactly 64 lowercase hex
/// digits, the only digest form this crate stores, and returns it parsed.
///
/// # Errors
/// [`Error::InvalidDigest`] for anything else (other algorithms, uppercase,
/// wrong length, path separators...).
///
/// ```
/// use hull_image_layers::parse_digest;
/// let hex = "a".repeat(64);
/// assert!(parse_digest(&format!("sha256:{hex}")).is_ok());
/// assert!(parse_digest(&format!("sha256:{}", hex.to_uppercase())).is_err());
/// assert!(parse_digest("sha256:../../etc/passwd").is_err());
/// ```
pub fn parse_digest(text: &str) -> Result<Digest> {
    let bad = || Error::InvalidDigest {
        digest: text.to_owned(),
    };
    let hex = text.strip_prefix("sha256:").ok_or_else(bad)?;
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(bad());
    }
    Digest::try_from(text).map_err(|_| bad())
}

/// The 64 hex digits of a digest, after checking it is well formed.
pub(crate) fn digest_hex(digest: &Digest) -> Result<&str> {
    let text: &str = digest.as_ref();
    parse_digest(text)?;
    Ok(&text[7..])
}

/// An incremental sha256.
#[derive(Default, Clone)]
pub(crate) struct Hasher(Sha256);

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher")
    }
}

impl Hasher {
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub(crate) fn digest(self) -> Digest {
        let out = self.0.finalize();
        let mut text = String::with_capacity(71);
        text.push_str("sha256:");
        for b in out.iter() {
            text.push(char::from(HEX[usize::from(b >> 4)]));
            text.push(char::from(HEX[usize::from(b & 15)]));
        }
        // A freshly formatted sha256 is always well formed.
        Digest::try_from(text).unwrap_or_else(|_| unreachable!())
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The sha256 digest of a byte string.
pub fn sha256_digest(data: &[u8]) -> Digest {
    let mut h = Hasher::default();
    h.update(data);
    h.digest()
}

/// A reader that hashes and counts what passes through it.
#[derive(Debug)]
pub(crate) struct HashingReader<R> {
    pub(crate) inner: R,
    pub(crate) hasher: Hasher,
    pub(crate) count: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Hasher::default(),
            count: 0,
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A writer that hashes and counts what passes through it.
#[derive(Debug)]
pub(crate) struct HashingWriter<W> {
    pub(crate) inner: W,
    pub(crate) hasher: Hasher,
    pub(crate) count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Hasher::default(),
            count: 0,
        }
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_string() {
        assert_eq!(
            sha256_digest(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn only_lowercase_sha256_accepted() {
        let hex = "0123456789abcdef".repeat(4);
        assert!(parse_digest(&format!("sha256:{hex}")).is_ok());
        for bad in [
            format!("sha256:{}", hex.to_uppercase()),
            format!("sha512:{hex}"),
            format!("sha256:{}", &hex[1..]),
            format!("sha256:{hex}0"),
            format!("sha256:{}/..", &hex[3..]),
            hex.clone(),
            String::new(),
        ] {
            assert!(parse_digest(&bad).is_err(), "{bad}");
        }
    }
}
