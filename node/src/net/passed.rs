//! Listings fetched from each peer and not taken (see `MAX_PASSED`), each with the
//! version fetched, kept on disk while the node is stopped: without them, the
//! first round with a large peer after a restart fetches again every listing of
//! it the budget declined and forgot. Written when the node stops, read and
//! removed when it starts, so the file holds nothing while the node runs; a node
//! that crashed starts without it and fetches those listings once more.
//!
//! The file: `MAGIC`, then for each peer its id's length (u16) and bytes, when its
//! listings were first passed (u64, seconds since the Unix epoch), their number
//! (u32), and for each its pack id (16 bytes) and version (u64), integers
//! little-endian.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libp2p::PeerId;
use smpl_protocol::PackId;

use crate::util::fs::{WriteError, mode, write_atomic};

const MAGIC: &[u8] = b"smpl passed 2\n";
/// The bytes of one listing in the file: its pack id and version.
const ENTRY: usize = 16 + 8;

/// Listings fetched from one peer and not taken, each with the version fetched,
/// since when.
pub struct Passed {
    pub versions: HashMap<PackId, u64>,
    pub since: SystemTime,
}

impl Passed {
    pub fn new() -> Self {
        Passed { versions: HashMap::new(), since: SystemTime::now() }
    }

    /// How long ago the first of them was passed (none, for a time ahead of the
    /// clock).
    pub fn age(&self) -> Duration {
        self.since.elapsed().unwrap_or(Duration::ZERO)
    }
}

/// Writes `passed` to `path`, replacing what it held.
pub fn save(path: &Path, passed: &HashMap<PeerId, Passed>) -> Result<(), WriteError> {
    let listings: usize = passed.values().map(|p| p.versions.len()).sum();
    let mut out = Vec::with_capacity(MAGIC.len() + passed.len() * 60 + listings * ENTRY);
    out.extend_from_slice(MAGIC);
    for (peer, passed) in passed {
        let peer = peer.to_bytes();
        out.extend_from_slice(&(peer.len() as u16).to_le_bytes());
        out.extend_from_slice(&peer);
        let since = passed.since.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
        out.extend_from_slice(&since.to_le_bytes());
        out.extend_from_slice(&(passed.versions.len() as u32).to_le_bytes());
        for (id, version) in &passed.versions {
            out.extend_from_slice(&id.0);
            out.extend_from_slice(&version.to_le_bytes());
        }
    }
    write_atomic(path, &out, mode::PRIVATE)
}

/// Reads and removes the file at `path`: the peers' passed listings not older than
/// `keep_for`, at most `max` in all. A missing file is none; an unreadable or
/// damaged one is none too, with a warning (the listings are fetched again once).
pub fn take(path: &Path, keep_for: Duration, max: usize) -> HashMap<PeerId, Passed> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return HashMap::new(),
        Err(e) => {
            tracing::warn!("cannot read {}: {e}; listings declined before are fetched again", path.display());
            return HashMap::new();
        }
    };
    if let Err(e) = std::fs::remove_file(path) {
        tracing::warn!("cannot remove {}: {e}", path.display());
    }
    parse(&bytes, keep_for, max).unwrap_or_else(|| {
        tracing::warn!("{} is damaged; listings declined before are fetched again", path.display());
        HashMap::new()
    })
}

fn parse(bytes: &[u8], keep_for: Duration, max: usize) -> Option<HashMap<PeerId, Passed>> {
    let mut rest = bytes.strip_prefix(MAGIC)?;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = rest.split_at_checked(n)?;
        rest = tail;
        Some(head)
    };
    let u64_of = |bytes: &[u8]| u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
    let mut out: HashMap<PeerId, Passed> = HashMap::new();
    let mut held = 0usize;
    while let Some(len) = take(2) {
        let len = u16::from_le_bytes(len.try_into().expect("2 bytes")) as usize;
        let peer = PeerId::from_bytes(take(len)?).ok()?;
        let since = u64_of(take(8)?);
        let count = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
        let entries = take(count.checked_mul(ENTRY)?)?;
        // A time ahead of the clock counts from now.
        let since = (UNIX_EPOCH + Duration::from_secs(since)).min(SystemTime::now());
        let passed = out.entry(peer).or_insert_with(|| Passed { versions: HashMap::new(), since });
        if passed.age() >= keep_for {
            continue;
        }
        for entry in entries.chunks_exact(ENTRY).take(max.saturating_sub(held)) {
            let (id, version) = entry.split_at(16);
            let id = PackId(id.try_into().expect("16 bytes"));
            if passed.versions.insert(id, u64_of(version)).is_none() {
                held += 1;
            }
        }
    }
    out.retain(|_, passed| !passed.versions.is_empty());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(from: u8, n: u8) -> HashMap<PackId, u64> {
        (from..from + n).map(|i| (PackId([i; 16]), u64::from(i) * 1000 + 7)).collect()
    }

    #[test]
    fn passed_listings_and_their_versions_survive_the_file_and_the_file_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passed");
        let (a, b) = (PeerId::random(), PeerId::random());
        let now = SystemTime::now();
        let old = now - Duration::from_secs(7200);
        let passed = HashMap::from([
            (a, Passed { versions: versions(0, 10), since: now }),
            (b, Passed { versions: versions(100, 5), since: old }),
        ]);
        save(&path, &passed).unwrap();
        let back = take(&path, Duration::from_secs(3600), 1000);
        assert!(!path.exists(), "the file is removed once read");
        assert_eq!(back.len(), 1, "the peer's listings passed two hours ago are dropped");
        assert_eq!(back[&a].versions, versions(0, 10));
        assert_eq!(
            back[&a].since.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            now.duration_since(UNIX_EPOCH).unwrap().as_secs()
        );
        assert!(take(&path, Duration::from_secs(3600), 1000).is_empty(), "a missing file is none");
    }

    #[test]
    fn a_damaged_or_oversized_file_loses_nothing_but_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passed");
        let passed = HashMap::from([(
            PeerId::random(),
            Passed { versions: versions(0, 50), since: SystemTime::now() },
        )]);
        save(&path, &passed).unwrap();
        let whole = std::fs::read(&path).unwrap();
        // Cut anywhere but at the end of a peer: damaged, so none.
        for cut in [3, MAGIC.len() + 1, whole.len() - 7] {
            std::fs::write(&path, &whole[..cut]).unwrap();
            assert!(take(&path, Duration::from_secs(3600), 1000).is_empty(), "cut at {cut}");
            assert!(!path.exists());
        }
        // A count that claims more listings than the file holds.
        let mut lying = whole.clone();
        let count_at = whole.len() - 50 * ENTRY - 4;
        lying[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&path, &lying).unwrap();
        assert!(take(&path, Duration::from_secs(3600), 1000).is_empty());
        // Another format (the file of an older build, say) is none.
        std::fs::write(&path, b"smpl passed 1\n").unwrap();
        assert!(take(&path, Duration::from_secs(3600), 1000).is_empty());
        // At most `max` are taken back.
        save(&path, &passed).unwrap();
        assert_eq!(
            take(&path, Duration::from_secs(3600), 20).values().map(|p| p.versions.len()).sum::<usize>(),
            20
        );
    }
}
