//! Proof of possession: a provider shows that it holds a blob's bytes without
//! sending any of them.
//!
//! A buyer presents its licence only to the pack's author or to a provider that
//! proved it holds the content, so a node that merely claims to provide a pack
//! (provider records are not authenticated) does not learn who bought what.
//!
//! A blob's BLAKE3 hash is the root of a binary tree over its 1 KiB chunks: a
//! subtree of `n > 1` chunks has a left child of the largest power of two that is
//! less than `n` chunks and a right child of the rest. The verifier picks a blob it
//! knows the hash and size of (from the manifest) and a chunk at random; the
//! provider answers with the chaining value of that chunk and, for each level
//! from the root down, the chaining value of the sibling subtree off the path to
//! it ([`path`] gives the ranges). The verifier merges them bottom-up and compares
//! the result with the blob's hash ([`verify`]). Chaining values are hashes: they
//! reveal nothing of the audio, and answering for a random chunk takes the chunk's
//! bytes and the bytes (or hashes) of everything else.
//!
//! Only blobs over one chunk have a tree; smaller ones cannot be proved this way.

use blake3::hazmat::{ChainingValue, HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root};

use crate::BlobHash;

/// BLAKE3's chunk length, in bytes.
pub const CHUNK_BYTES: u64 = 1024;

/// The most chaining values a proof can hold: one per level of a tree over
/// 2^64 bytes, plus the chunk's own.
pub const MAX_PROOF_HASHES: usize = 64;

/// How many chunks a blob of `size` bytes has (an empty blob has one).
pub fn chunks(size: u64) -> u64 {
    size.div_ceil(CHUNK_BYTES).max(1)
}

/// One level of the path from the root to a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// The sibling subtree's chunks, `start..end`.
    pub sibling: (u64, u64),
    /// Whether the path goes on to the left (and the sibling is the right child).
    pub left: bool,
}

/// The steps from the root of a `size`-byte blob down to `chunk`, top-down.
/// Empty when the blob has a single chunk. `chunk` must be below [`chunks`].
pub fn path(size: u64, chunk: u64) -> Vec<Step> {
    let (mut start, mut end) = (0, chunks(size));
    let mut steps = Vec::new();
    while end - start > 1 {
        let left_len = 1u64 << (63 - (end - start - 1).leading_zeros());
        let middle = start + left_len;
        if chunk < middle {
            steps.push(Step { sibling: (middle, end), left: true });
            end = middle;
        } else {
            steps.push(Step { sibling: (start, middle), left: false });
            start = middle;
        }
    }
    steps
}

/// The chaining value of the subtree over `bytes`, which start at chunk `first`.
/// Must not be used for a whole blob (that is its root hash, finalised differently).
pub fn chaining_value(first: u64, bytes: &[u8]) -> ChainingValue {
    let mut hasher = blake3::Hasher::new();
    hasher.set_input_offset(first * CHUNK_BYTES);
    hasher.update(bytes);
    hasher.finalize_non_root()
}

/// Whether `proof` (the sibling chaining values of [`path`], top-down, then the
/// chunk's own) shows possession of chunk `chunk` of the blob `root` of `size` bytes.
pub fn verify(root: &BlobHash, size: u64, chunk: u64, proof: &[[u8; 32]]) -> bool {
    if chunk >= chunks(size) || proof.len() > MAX_PROOF_HASHES {
        return false;
    }
    let steps = path(size, chunk);
    if steps.is_empty() || proof.len() != steps.len() + 1 {
        return false;
    }
    let mut cv = proof[steps.len()];
    for (depth, step) in steps.iter().enumerate().rev() {
        let sibling = &proof[depth];
        let (left, right) = if step.left { (&cv, sibling) } else { (sibling, &cv) };
        if depth == 0 {
            return merge_subtrees_root(left, right, Mode::Hash).as_bytes() == &root.0;
        }
        cv = merge_subtrees_non_root(left, right, Mode::Hash);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The proof an honest holder of `data` gives for `chunk`.
    fn prove(data: &[u8], chunk: u64) -> Vec<[u8; 32]> {
        let bytes = |(a, b): (u64, u64)| {
            let end = (b * CHUNK_BYTES).min(data.len() as u64);
            &data[(a * CHUNK_BYTES) as usize..end as usize]
        };
        let mut proof: Vec<[u8; 32]> = path(data.len() as u64, chunk)
            .iter()
            .map(|s| chaining_value(s.sibling.0, bytes(s.sibling)))
            .collect();
        proof.push(chaining_value(chunk, bytes((chunk, chunk + 1))));
        proof
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 1024) as u8).collect()
    }

    #[test]
    fn honest_proofs_verify_for_every_chunk_of_many_sizes() {
        for len in [1025, 2048, 3000, 4096, 5 * 1024 + 1, 16 * 1024, 16 * 1024 + 7, 100_000] {
            let data = data(len);
            let root = BlobHash(*blake3::hash(&data).as_bytes());
            for chunk in 0..chunks(len as u64) {
                let proof = prove(&data, chunk);
                assert!(verify(&root, len as u64, chunk, &proof), "len {len}, chunk {chunk}");
                assert!(
                    !verify(&root, len as u64, (chunk + 1) % chunks(len as u64), &proof)
                        || chunks(len as u64) == 1
                );
            }
        }
    }

    #[test]
    fn a_proof_without_the_bytes_fails() {
        let data = data(10_000);
        let root = BlobHash(*blake3::hash(&data).as_bytes());
        let mut proof = prove(&data, 3);
        // Any one hash wrong, missing or extra: refused.
        for i in 0..proof.len() {
            let mut bad = proof.clone();
            bad[i][0] ^= 1;
            assert!(!verify(&root, 10_000, 3, &bad));
        }
        assert!(!verify(&root, 10_000, 3, &proof[1..]));
        proof.push([0; 32]);
        assert!(!verify(&root, 10_000, 3, &proof));
        // Another blob's proof, a wrong size, an out-of-range chunk.
        let other = data.iter().map(|b| b ^ 1).collect::<Vec<u8>>();
        assert!(!verify(&root, 10_000, 3, &prove(&other, 3)));
        assert!(!verify(&root, 4_000, 3, &prove(&data, 3)));
        assert!(!verify(&root, 10_000, 99, &prove(&data, 3)));
        // A one-chunk blob has no proof.
        assert!(!verify(&BlobHash(*blake3::hash(b"x").as_bytes()), 1, 0, &[[0; 32]]));
    }
}
