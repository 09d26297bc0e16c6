//! A pack's content hash: the one hash a manifest names its files by, and the
//! exact bytes a license token licenses.
//!
//! The content of a pack is a collection in the format of iroh-blobs'
//! `Collection`, so that nodes fetch it as one hash sequence over iroh. It is
//! three kinds of blobs:
//!
//! 1. **The metadata blob**: the file names in order, behind a fixed header, in
//!    postcard's encoding of `{ header: [u8; 13], names: Vec<String> }`:
//!
//!    ```text
//!    metadata = "CollectionV0."          the 13 bytes of HEADER, as they are
//!               count:varint             the number of names
//!               (len:varint utf8*len)*   each name: its length in bytes, its UTF-8
//!    ```
//!
//!    `varint` is unsigned LEB128: 7 bits a byte, least significant group first,
//!    the high bit set on every byte but the last, in its shortest form.
//! 2. **The files**, each a blob named by its BLAKE3 hash.
//! 3. **The hash sequence**, the collection's root blob: the 32-byte BLAKE3 hash of
//!    the metadata blob, then the hash of each file in the order of the names,
//!    concatenated (`32 · (1 + n)` bytes, no length, no separator).
//!
//! The content hash is the BLAKE3 hash of the hash sequence. It covers the names,
//! their order and every file's bytes: renaming, reordering, adding or removing a
//! file gives another content hash.
//!
//! The names are relative paths with `/` (a manifest's sample names). This module
//! defines the bytes only: the limits on names and their count are the manifest's
//! ([`MAX_FILE_NAME`](crate::limits::MAX_FILE_NAME),
//! [`MAX_SAMPLES`](crate::limits::MAX_SAMPLES)).
//!
//! ```
//! use smpl_protocol::BlobHash;
//! use smpl_protocol::collection;
//!
//! let kick = BlobHash(*blake3::hash(b"kick").as_bytes());
//! let files = [("kick.wav", kick)];
//! let meta = collection::metadata(["kick.wav"]);
//! assert_eq!(meta, b"CollectionV0.\x01\x08kick.wav");
//!
//! let seq = collection::hash_seq(&collection::metadata_hash(["kick.wav"]), [kick]);
//! assert_eq!(seq.len(), 64);
//! assert_eq!(collection::content_hash(files).0, *blake3::hash(&seq).as_bytes());
//! ```

use crate::BlobHash;

/// The first 13 bytes of every metadata blob.
pub const HEADER: &[u8; 13] = b"CollectionV0.";

/// The metadata blob of a collection of files with these names, in order.
pub fn metadata<N: AsRef<str>>(names: impl IntoIterator<Item = N>) -> Vec<u8> {
    let mut count = 0u64;
    let mut body = Vec::new();
    for name in names {
        let name = name.as_ref().as_bytes();
        put_varint(&mut body, name.len() as u64);
        body.extend_from_slice(name);
        count += 1;
    }
    let mut out = Vec::with_capacity(HEADER.len() + 10 + body.len());
    out.extend_from_slice(HEADER);
    put_varint(&mut out, count);
    out.extend_from_slice(&body);
    out
}

/// The hash of the metadata blob of these names: the first hash of the
/// collection's hash sequence.
pub fn metadata_hash<N: AsRef<str>>(names: impl IntoIterator<Item = N>) -> BlobHash {
    blake3_of(&metadata(names))
}

/// The hash sequence, the root blob: `metadata` (the metadata blob's hash), then
/// each file's hash, concatenated.
pub fn hash_seq(metadata: &BlobHash, files: impl IntoIterator<Item = BlobHash>) -> Vec<u8> {
    let mut out = metadata.0.to_vec();
    for hash in files {
        out.extend_from_slice(&hash.0);
    }
    out
}

/// The content hash of these files (name and blob hash each), in this order: the
/// hash of the hash sequence.
pub fn content_hash<N: AsRef<str>>(files: impl IntoIterator<Item = (N, BlobHash)>) -> BlobHash {
    let hashes = blob_hashes(files);
    blake3_of(&hash_seq(&hashes[1], hashes[2..].iter().copied()))
}

/// Every blob of the collection of these files: the root (the content hash), the
/// metadata blob, then each file, in the order given.
pub fn blob_hashes<N: AsRef<str>>(files: impl IntoIterator<Item = (N, BlobHash)>) -> Vec<BlobHash> {
    let (names, hashes): (Vec<N>, Vec<BlobHash>) = files.into_iter().unzip();
    let meta = metadata_hash(names);
    let root = blake3_of(&hash_seq(&meta, hashes.iter().copied()));
    let mut out = Vec::with_capacity(hashes.len() + 2);
    out.push(root);
    out.push(meta);
    out.extend(hashes);
    out
}

fn blake3_of(bytes: &[u8]) -> BlobHash {
    BlobHash(*blake3::hash(bytes).as_bytes())
}

/// Appends `value` as unsigned LEB128.
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_leb128() {
        for (value, bytes) in [
            (0u64, &[0x00][..]),
            (1, &[0x01]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (255, &[0xff, 0x01]),
            (300, &[0xac, 0x02]),
            (16_384, &[0x80, 0x80, 0x01]),
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out, bytes, "{value}");
        }
    }

    #[test]
    fn empty_collection() {
        assert_eq!(metadata::<&str>([]), b"CollectionV0.\x00");
        let hashes = blob_hashes::<&str>([]);
        assert_eq!(hashes.len(), 2);
        assert_eq!(hashes[1], blake3_of(b"CollectionV0.\x00"));
        assert_eq!(hashes[0], blake3_of(&hashes[1].0));
        assert_eq!(content_hash::<&str>([]), hashes[0]);
    }

    #[test]
    fn long_names_take_longer_lengths() {
        let name = "a".repeat(200);
        let meta = metadata([&name, &name]);
        assert_eq!(&meta[13..16], &[2, 0xc8, 0x01]);
        assert_eq!(meta.len(), 13 + 1 + 2 * (2 + 200));
    }

    #[test]
    fn names_and_order_count() {
        let (a, b) = (BlobHash([1; 32]), BlobHash([2; 32]));
        let base = content_hash([("a.wav", a), ("b.wav", b)]);
        assert_ne!(content_hash([("b.wav", b), ("a.wav", a)]), base);
        assert_ne!(content_hash([("a.wav", a), ("c.wav", b)]), base);
        assert_ne!(content_hash([("a.wav", a)]), base);
        assert_eq!(content_hash([("a.wav".to_string(), a), ("b.wav".to_string(), b)]), base);
    }
}
