//! Snapshots on containerd's model.

use oci_spec::image::Digest;

use crate::digest::Hasher;

/// The chain IDs of a stack of diff_ids, bottom first:
/// `chain(0) = diff_id(0)`, `chain(n) = sha256(chain(n-1) + " " + diff_id(n))`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => {
                let mut h = Hasher::default();
                h.update(prev.as_ref().as_bytes());
                h.update(b" ");
                h.update(d.as_ref().as_bytes());
                h.digest()
            }
        };
        out.push(next);
    }
    out
}
