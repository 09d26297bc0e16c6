//! Listings fetched from each peer and not taken (see `MAX_PASSED`), each with the
//! version fetched, kept on disk while the node is stopped: without them, the
//! first round with a large peer after a restart fetches again every listing of
//! it the budget declined and forgot. Written when the node stops, read and
//! removed when it starts, so the file holds nothing while the node runs; a node
//! that crashed starts without it and fetches those listings once more.
//!
//! A peer's listings lapse after a while and are fetched once more, since the
//! budget may have room by then. When they are passed again, the next lapse
//! comes twice as late, up to [`MAX_KEEP`]: a peer offering a flood the budget
//! keeps declining costs its checks once a day, not once an hour.
//!
//! The file: `MAGIC`, then for each peer its id's length (u16) and bytes, when its
//! listings were first passed or last lapsed (u64, seconds since the Unix epoch),
//! how long they are kept (u64, seconds), their number (u32; none for a peer
//! whose listings lapsed), and for each its pack id (16 bytes) and version (u64),
//! integers little-endian. The format before, `MAGIC_2`, had no time kept.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libp2p::PeerId;
use smpl_protocol::PackId;

use crate::util::fs::{WriteError, mode, write_atomic};

const MAGIC: &[u8] = b"smpl passed 3\n";
const MAGIC_2: &[u8] = b"smpl passed 2\n";
/// The bytes of one listing in the file: its pack id and version.
const ENTRY: usize = 16 + 8;
/// The longest a peer's listings passed again and again are kept before they are
/// fetched once more.
pub const MAX_KEEP: Duration = Duration::from_secs(24 * 60 * 60);

/// Listings fetched from one peer and not taken, each with the version fetched,
/// since when, and for how long.
pub struct Passed {
    pub versions: HashMap<PackId, u64>,
    pub since: SystemTime,
    /// How long from `since` they are kept.
    pub keep_for: Duration,
    /// They lapsed at `since` and are being fetched once more: passed again, they
    /// are kept twice as long as before.
    pub lapsed: bool,
}

impl Passed {
    pub fn new(keep_for: Duration) -> Self {
        Passed { versions: HashMap::new(), since: SystemTime::now(), keep_for, lapsed: false }
    }

    /// How long ago they were first passed or lapsed (none, for a time ahead of
    /// the clock).
    pub fn age(&self) -> Duration {
        self.since.elapsed().unwrap_or(Duration::ZERO)
    }

    /// Listings fetched again and not taken: once these lapsed, they are kept
    /// twice as long as the last time, up to [`MAX_KEEP`].
    pub fn passed_again(&mut self) {
        if self.lapsed {
            self.lapsed = false;
            self.since = SystemTime::now();
            self.keep_for = self.kept_next();
        }
    }

    /// How long they are kept once passed again after they lapse.
    fn kept_next(&self) -> Duration {
        (self.keep_for * 2).min(MAX_KEEP)
    }

    /// Whether they have been kept their time and are to be fetched once more.
    fn due(&self) -> bool {
        !self.lapsed && self.age() >= self.keep_for
    }

    /// Drops them, to be fetched once more from now.
    fn lapse_now(&mut self) {
        self.versions = HashMap::new();
        self.since = SystemTime::now();
        self.lapsed = true;
    }
}

/// Lets each peer's listings that are due lapse, to be fetched once more; forgets
/// a peer whose lapsed listings were not passed again within `first_keep` (taken
/// in, or the peer gone), so that it starts again from `first_keep`. Returns the
/// peers whose listings lapsed.
pub fn lapse(passed: &mut HashMap<PeerId, Passed>, first_keep: Duration) -> Vec<PeerId> {
    passed.retain(|_, p| !(p.lapsed && p.age() >= first_keep));
    let mut lapsed = Vec::new();
    for (peer, p) in passed.iter_mut().filter(|(_, p)| p.due()) {
        lapsed.push(*peer);
        tracing::info!(
            "fetching again {} listings of {peer} not taken {} min ago; passed again, they are kept {} min",
            p.versions.len(),
            p.age().as_secs() / 60,
            p.kept_next().as_secs() / 60
        );
        p.lapse_now();
    }
    lapsed
}

/// Writes `passed` to `path`, replacing what it held.
pub fn save(path: &Path, passed: &HashMap<PeerId, Passed>) -> Result<(), WriteError> {
    let listings: usize = passed.values().map(|p| p.versions.len()).sum();
    let mut out = Vec::with_capacity(MAGIC.len() + passed.len() * 70 + listings * ENTRY);
    out.extend_from_slice(MAGIC);
    for (peer, passed) in passed {
        let peer = peer.to_bytes();
        out.extend_from_slice(&(peer.len() as u16).to_le_bytes());
        out.extend_from_slice(&peer);
        let since = passed.since.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
        out.extend_from_slice(&since.to_le_bytes());
        out.extend_from_slice(&passed.keep_for.as_secs().to_le_bytes());
        out.extend_from_slice(&(passed.versions.len() as u32).to_le_bytes());
        for (id, version) in &passed.versions {
            out.extend_from_slice(&id.0);
            out.extend_from_slice(&version.to_le_bytes());
        }
    }
    write_atomic(path, &out, mode::PRIVATE)
}

/// Reads and removes the file at `path`: the peers' passed listings not yet due,
/// at most `max` in all; a peer's that are due come back lapsed, to be fetched
/// once more. Listings in the format before are kept for `first_keep`. A missing
/// file is none; an unreadable or damaged one is none too, with a warning (the
/// listings are fetched again once).
pub fn take(path: &Path, first_keep: Duration, max: usize) -> HashMap<PeerId, Passed> {
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
    parse(&bytes, first_keep, max).unwrap_or_else(|| {
        tracing::warn!("{} is damaged; listings declined before are fetched again", path.display());
        HashMap::new()
    })
}

fn parse(bytes: &[u8], first_keep: Duration, max: usize) -> Option<HashMap<PeerId, Passed>> {
    let (mut rest, kept_for) = match bytes.strip_prefix(MAGIC) {
        Some(rest) => (rest, true),
        None => (bytes.strip_prefix(MAGIC_2)?, false),
    };
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
        let keep_for =
            if kept_for { Duration::from_secs(u64_of(take(8)?)).min(MAX_KEEP) } else { first_keep };
        let count = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
        let entries = take(count.checked_mul(ENTRY)?)?;
        // A time ahead of the clock counts from now.
        let since = (UNIX_EPOCH + Duration::from_secs(since)).min(SystemTime::now());
        let passed =
            out.entry(peer).or_insert_with(|| Passed { since, lapsed: count == 0, ..Passed::new(keep_for) });
        if passed.due() {
            // Due while the node was stopped: fetched once more.
            passed.lapse_now();
        }
        if passed.lapsed {
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
    out.retain(|_, passed| passed.lapsed || !passed.versions.is_empty());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn versions(from: u8, n: u8) -> HashMap<PackId, u64> {
        (from..from + n).map(|i| (PackId([i; 16]), u64::from(i) * 1000 + 7)).collect()
    }

    #[test]
    fn listings_passed_again_after_they_lapse_are_kept_twice_as_long_up_to_a_day() {
        let peer = PeerId::random();
        let mut passed = HashMap::from([(peer, Passed { versions: versions(0, 10), ..Passed::new(HOUR) })]);
        passed.get_mut(&peer).unwrap().passed_again();
        assert_eq!(passed[&peer].keep_for, HOUR, "passed for the first time: no longer than the first hour");
        assert!(lapse(&mut passed, HOUR).is_empty(), "not due yet");

        let mut kept = Vec::new();
        for _ in 0..7 {
            let p = passed.get_mut(&peer).unwrap();
            p.since -= p.keep_for;
            assert_eq!(lapse(&mut passed, HOUR), [peer]);
            let p = passed.get_mut(&peer).unwrap();
            assert!(p.lapsed && p.versions.is_empty(), "fetched once more");
            assert!(p.age() < Duration::from_secs(60), "lapsed now");
            // Fetched again and declined again.
            p.versions = versions(0, 10);
            p.passed_again();
            assert!(!p.lapsed);
            kept.push(p.keep_for.as_secs() / 3600);
        }
        assert_eq!(kept, [2, 4, 8, 16, 24, 24, 24]);
    }

    #[test]
    fn a_peer_whose_lapsed_listings_are_not_passed_again_starts_over() {
        let (gone, back) = (PeerId::random(), PeerId::random());
        let mut passed = HashMap::from([
            (gone, Passed { versions: versions(0, 10), ..Passed::new(HOUR * 8) }),
            (back, Passed { versions: versions(0, 10), ..Passed::new(HOUR * 8) }),
        ]);
        for p in passed.values_mut() {
            p.since -= HOUR * 8;
        }
        assert_eq!(lapse(&mut passed, HOUR).len(), 2);
        // Within the first hour the one peer's listings are passed again.
        passed.get_mut(&back).unwrap().versions = versions(0, 3);
        passed.get_mut(&back).unwrap().passed_again();
        passed.get_mut(&gone).unwrap().since -= HOUR;
        assert!(lapse(&mut passed, HOUR).is_empty());
        assert!(!passed.contains_key(&gone), "taken in or gone: forgotten, back to the first hour");
        assert_eq!(passed[&back].keep_for, HOUR * 16);
    }

    #[test]
    fn a_file_of_the_format_before_keeps_its_listings_for_the_first_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passed");
        let peer = PeerId::random();
        let since = SystemTime::now() - Duration::from_secs(600);
        let mut old = MAGIC_2.to_vec();
        let id = peer.to_bytes();
        old.extend_from_slice(&(id.len() as u16).to_le_bytes());
        old.extend_from_slice(&id);
        old.extend_from_slice(&since.duration_since(UNIX_EPOCH).unwrap().as_secs().to_le_bytes());
        old.extend_from_slice(&2u32.to_le_bytes());
        for i in [1u8, 2] {
            old.extend_from_slice(&[i; 16]);
            old.extend_from_slice(&u64::from(i).to_le_bytes());
        }
        std::fs::write(&path, &old).unwrap();
        let back = take(&path, HOUR, 1000);
        assert_eq!(back[&peer].versions, HashMap::from([(PackId([1; 16]), 1), (PackId([2; 16]), 2)]));
        assert_eq!((back[&peer].keep_for, back[&peer].lapsed), (HOUR, false));
    }

    #[test]
    fn passed_listings_and_their_versions_survive_the_file_and_the_file_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passed");
        let (a, b) = (PeerId::random(), PeerId::random());
        let now = SystemTime::now();
        let old = now - Duration::from_secs(7200);
        let passed = HashMap::from([
            (a, Passed { versions: versions(0, 10), since: now, ..Passed::new(HOUR * 4) }),
            (b, Passed { versions: versions(100, 5), since: old, ..Passed::new(HOUR) }),
        ]);
        save(&path, &passed).unwrap();
        let back = take(&path, HOUR, 1000);
        assert!(!path.exists(), "the file is removed once read");
        assert_eq!(back[&a].versions, versions(0, 10));
        assert_eq!((back[&a].keep_for, back[&a].lapsed), (HOUR * 4, false));
        assert_eq!(
            back[&a].since.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            now.duration_since(UNIX_EPOCH).unwrap().as_secs()
        );
        assert!(back[&b].lapsed && back[&b].versions.is_empty(), "due two hours ago: fetched once more");
        assert_eq!(back[&b].keep_for, HOUR, "its time kept doubles only once passed again");
        assert!(take(&path, HOUR, 1000).is_empty(), "a missing file is none");

        // A lapsed peer survives the file as lapsed.
        save(&path, &back).unwrap();
        let again = take(&path, HOUR, 1000);
        assert!(again[&b].lapsed && !again[&a].lapsed);
    }

    #[test]
    fn a_damaged_or_oversized_file_loses_nothing_but_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passed");
        let passed =
            HashMap::from([(PeerId::random(), Passed { versions: versions(0, 50), ..Passed::new(HOUR) })]);
        save(&path, &passed).unwrap();
        let whole = std::fs::read(&path).unwrap();
        // Cut anywhere but at the end of a peer: damaged, so none.
        for cut in [3, MAGIC.len() + 1, whole.len() - 7] {
            std::fs::write(&path, &whole[..cut]).unwrap();
            assert!(take(&path, HOUR, 1000).is_empty(), "cut at {cut}");
            assert!(!path.exists());
        }
        // A count that claims more listings than the file holds.
        let mut lying = whole.clone();
        let count_at = whole.len() - 50 * ENTRY - 4;
        lying[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&path, &lying).unwrap();
        assert!(take(&path, HOUR, 1000).is_empty());
        // An unknown format is none.
        std::fs::write(&path, b"smpl passed 1\n").unwrap();
        assert!(take(&path, HOUR, 1000).is_empty());
        // At most `max` are taken back.
        save(&path, &passed).unwrap();
        assert_eq!(take(&path, HOUR, 20).values().map(|p| p.versions.len()).sum::<usize>(), 20);
    }
}
