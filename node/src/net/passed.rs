//! Listings fetched from each peer and not taken (see `MAX_PASSED`), kept on disk
//! while the node is stopped: without them, the first round with a large peer
//! after a restart fetches again every listing of it the budget declined and
//! forgot. Written when the node stops, read and removed when it starts, so the
//! file holds nothing while the node runs; a node that crashed starts without it
//! and fetches those listings once more.
//!
//! The file: `MAGIC`, then for each peer its id's length (u16) and bytes, when its
//! listings were first passed (u64, seconds since the Unix epoch), their number
//! (u32) and their pack ids (16 bytes each), integers little-endian.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libp2p::PeerId;
use smpl_protocol::PackId;

use crate::util::fs::{mode, write_atomic};

const MAGIC: &[u8] = b"smpl passed 1\n";

/// Listings fetched from one peer and not taken, since when.
pub struct Passed {
    pub ids: HashSet<PackId>,
    pub since: SystemTime,
}

impl Passed {
    /// How long ago the first of them was passed (none, for a time ahead of the
    /// clock).
    pub fn age(&self) -> Duration {
        self.since.elapsed().unwrap_or(Duration::ZERO)
    }
}

/// Writes `passed` to `path`, replacing what it held.
pub fn save(path: &Path, passed: &HashMap<PeerId, Passed>) -> Result<(), crate::util::fs::WriteError> {
    let ids: usize = passed.values().map(|p| p.ids.len()).sum();
    let mut out = Vec::with_capacity(MAGIC.len() + passed.len() * 60 + ids * 16);
    out.extend_from_slice(MAGIC);
    for (peer, passed) in passed {
        let peer = peer.to_bytes();
        out.extend_from_slice(&(peer.len() as u16).to_le_bytes());
        out.extend_from_slice(&peer);
        let since = passed.since.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
        out.extend_from_slice(&since.to_le_bytes());
        out.extend_from_slice(&(passed.ids.len() as u32).to_le_bytes());
        for id in &passed.ids {
            out.extend_from_slice(&id.0);
        }
    }
    write_atomic(path, &out, mode::PRIVATE)
}

/// Reads and removes the file at `path`: the peers' passed listings not older than
/// `keep_for`, at most `max` ids in all. A missing file is none; an unreadable or
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
    match parse(&bytes, keep_for, max) {
        Some(passed) => passed,
        None => {
            tracing::warn!("{} is damaged; listings declined before are fetched again", path.display());
            HashMap::new()
        }
    }
}

fn parse(bytes: &[u8], keep_for: Duration, max: usize) -> Option<HashMap<PeerId, Passed>> {
    let mut rest = bytes.strip_prefix(MAGIC)?;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = rest.split_at_checked(n)?;
        rest = tail;
        Some(head)
    };
    let mut out = HashMap::new();
    let mut held = 0usize;
    while let Some(len) = take(2) {
        let len = u16::from_le_bytes(len.try_into().ok()?) as usize;
        let peer = PeerId::from_bytes(take(len)?).ok()?;
        let since = u64::from_le_bytes(take(8)?.try_into().ok()?);
        let count = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        let ids = take(count.checked_mul(16)?)?;
        // A time ahead of the clock counts from now.
        let since = (UNIX_EPOCH + Duration::from_secs(since)).min(SystemTime::now());
        let passed = Passed { ids: HashSet::new(), since };
        if passed.age() >= keep_for {
            continue;
        }
        let ids = ids.chunks_exact(16).take(max.saturating_sub(held));
        let passed = out.entry(peer).or_insert(passed);
        let before = passed.ids.len();
        passed.ids.extend(ids.map(|id| PackId(id.try_into().expect("16 bytes"))));
        held += passed.ids.len() - before;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(from: u8, n: u8) -> HashSet<PackId> {
        (from..from + n).map(|i| PackId([i; 16])).collect()
    }

    #[test]
    fn passed_listings_survive_the_file_and_the_file_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passed");
        let (a, b) = (PeerId::random(), PeerId::random());
        let now = SystemTime::now();
        let old = now - Duration::from_secs(7200);
        let passed = HashMap::from([
            (a, Passed { ids: ids(0, 10), since: now }),
            (b, Passed { ids: ids(100, 5), since: old }),
        ]);
        save(&path, &passed).unwrap();
        let back = take(&path, Duration::from_secs(3600), 1000);
        assert!(!path.exists(), "the file is removed once read");
        assert_eq!(back.len(), 1, "the peer's listings passed two hours ago are dropped");
        assert_eq!(back[&a].ids, ids(0, 10));
        assert_eq!(back[&a].since.duration_since(UNIX_EPOCH).unwrap().as_secs(), {
            now.duration_since(UNIX_EPOCH).unwrap().as_secs()
        });
        assert!(take(&path, Duration::from_secs(3600), 1000).is_empty(), "a missing file is none");
    }

    #[test]
    fn a_damaged_or_oversized_file_loses_nothing_but_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passed");
        let passed =
            HashMap::from([(PeerId::random(), Passed { ids: ids(0, 50), since: SystemTime::now() })]);
        save(&path, &passed).unwrap();
        let whole = std::fs::read(&path).unwrap();
        // Cut anywhere but at the end of a peer: damaged, so none.
        for cut in [3, MAGIC.len() + 1, whole.len() - 7] {
            std::fs::write(&path, &whole[..cut]).unwrap();
            assert!(take(&path, Duration::from_secs(3600), 1000).is_empty(), "cut at {cut}");
            assert!(!path.exists());
        }
        // A count that claims more ids than the file holds.
        let mut lying = whole.clone();
        let count_at = whole.len() - 50 * 16 - 4;
        lying[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&path, &lying).unwrap();
        assert!(take(&path, Duration::from_secs(3600), 1000).is_empty());
        // At most `max` ids are taken back.
        save(&path, &passed).unwrap();
        assert_eq!(
            take(&path, Duration::from_secs(3600), 20).values().map(|p| p.ids.len()).sum::<usize>(),
            20
        );
    }
}
