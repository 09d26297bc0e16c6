//! The protocol's definition of a pack's content hash (`smpl_protocol::collection`)
//! is iroh-blobs' `Collection`, byte for byte: the metadata blob, the hash sequence
//! and the root hash agree for fixed and random file lists, so the two cannot drift
//! apart when either changes.

use iroh_blobs::Hash;
use iroh_blobs::format::collection::Collection;
use iroh_blobs::store::mem::MemStore;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use smpl_protocol::{BlobHash, collection};

type Files = Vec<(String, BlobHash)>;

fn iroh_collection(files: &Files) -> Collection {
    files.iter().map(|(name, hash)| (name.clone(), Hash::from_bytes(hash.0))).collect()
}

fn blob_hash(hash: Hash) -> BlobHash {
    BlobHash(*hash.as_bytes())
}

/// Characters for names: ASCII, a path separator, and multi-byte UTF-8.
const ALPHABET: &[char] = &['a', 'Z', '0', '-', '_', '.', ' ', '/', 'é', 'ß', 'ü', '音', '🥁'];

/// A random file list: up to 300 files (so the name count takes two varint bytes),
/// names up to 100 characters (up to 400 bytes: two-byte lengths too), some empty,
/// some repeated, random hashes.
fn random_files(rng: &mut StdRng) -> Files {
    let count = match rng.random_range(0..4) {
        0 => rng.random_range(0..3),
        1 => rng.random_range(120..300),
        _ => rng.random_range(3..40),
    };
    let mut files: Files = (0..count)
        .map(|_| {
            let len = rng.random_range(0..100);
            let name: String = (0..len).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())]).collect();
            (name, BlobHash(rng.random()))
        })
        .collect();
    if files.len() > 2 && rng.random_bool(0.3) {
        files[1] = files[0].clone();
    }
    files
}

/// The protocol's bytes and hashes equal iroh-blobs' for `files`.
fn check(files: &Files) {
    let blobs: Vec<_> = iroh_collection(files).to_blobs().collect();
    let [meta, seq] = blobs.as_slice() else { panic!("a collection is two blobs") };
    let names = files.iter().map(|(name, _)| name);
    assert_eq!(collection::metadata(names.clone()), meta.to_vec(), "metadata of {files:?}");
    let meta_hash = collection::metadata_hash(names);
    assert_eq!(meta_hash.0, *blake3::hash(meta).as_bytes());
    assert_eq!(collection::hash_seq(&meta_hash, files.iter().map(|(_, h)| *h)), seq.to_vec());

    let root = BlobHash(*blake3::hash(seq).as_bytes());
    assert_eq!(collection::content_hash(files.iter().map(|(n, h)| (n, *h))), root);
    let mut expected = vec![root, meta_hash];
    expected.extend(files.iter().map(|(_, h)| *h));
    assert_eq!(collection::blob_hashes(files.iter().map(|(n, h)| (n, *h))), expected);
}

#[test]
fn fixed_file_lists_agree_with_iroh_blobs() {
    let h = |b: u8| BlobHash([b; 32]);
    let lists: Vec<Files> = vec![
        vec![],
        vec![("kick.wav".into(), h(1))],
        vec![("".into(), h(0))],
        vec![("a/b/c.wav".into(), h(2)), ("Ünïcode snare.wav".into(), h(3)), ("a/b/c.wav".into(), h(2))],
        vec![("x".repeat(127), h(4)), ("y".repeat(128), h(5)), ("z".repeat(16_384), h(6))],
        (0..128).map(|i| (format!("loops/{i:03}.flac"), h(i as u8))).collect(),
    ];
    for files in &lists {
        check(files);
    }
}

#[test]
fn random_file_lists_agree_with_iroh_blobs() {
    let mut rng = StdRng::seed_from_u64(0x5eed_c011);
    for _ in 0..200 {
        check(&random_files(&mut rng));
    }
}

/// The protocol's golden vector (`protocol/tests/wire.rs`), computed by iroh-blobs.
#[test]
fn the_protocol_vector_is_iroh_blobs_root() {
    let files: Files = vec![
        ("kick.flac".into(), BlobHash([0x21; 32])),
        ("loops/dusty-808-loop-120.wav".into(), BlobHash([0x11; 32])),
        ("Ünïcode snare.wav".into(), BlobHash([0x31; 32])),
    ];
    let seq = iroh_collection(&files).to_blobs().last().expect("root blob");
    assert_eq!(
        BlobHash(*blake3::hash(&seq).as_bytes()).to_hex(),
        "b4fcb4b688108eed366e86ccd1cdf59bc9aaf16a8eda13e45be4909721975bcb"
    );
    let empty = Collection::default().to_blobs().last().expect("root blob");
    assert_eq!(
        BlobHash(*blake3::hash(&empty).as_bytes()).to_hex(),
        "c69e3bb6adb62a337f033d8d5d34498f7e58af9eadfbd8a835b6b0f7e861dbad"
    );
}

/// A collection stored in an iroh-blobs store gets the protocol's content hash as its
/// root, and its metadata blob is stored under the protocol's metadata hash.
#[tokio::test]
async fn a_stored_collection_has_the_protocol_root() {
    let store = MemStore::new();
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..5 {
        let files = random_files(&mut rng);
        let tag = iroh_collection(&files).store(&store).await.expect("store collection");
        let hashes = collection::blob_hashes(files.iter().map(|(n, h)| (n, *h)));
        assert_eq!(blob_hash(tag.hash()), hashes[0]);
        let meta = store.get_bytes(Hash::from_bytes(hashes[1].0)).await.expect("metadata blob");
        assert_eq!(meta.to_vec(), collection::metadata(files.iter().map(|(n, _)| n)));
    }
    store.shutdown().await.expect("shutdown");
}
