//! The records of listings declined or evicted by the listing budget, in a file
//! whose size follows what it holds.
//!
//! Under a flood of fresh keys nearly every listing offered is declined, and the
//! budget forgets older records as new ones come: a few records are written and
//! removed for every listing offered. sled does not give back the disk of what it
//! removed as fast as that: replaying the flood benchmark's writes on sled 0.34
//! alone (100,000 listings offered, 81,000 of them declined), its file ended
//! 11–12 MB larger with these records than without them, for 31,000 records held
//! (0.7 MB of ids and seqs). So they are kept here, in a hash table on disk:
//!
//! - A header of [`HEADER`] bytes: [`MAGIC`], the number of slots, the number of
//!   records, and a random key (hashing with it, a peer cannot choose pack ids
//!   that fall on the same slots).
//! - Slots of [`SLOT`] bytes: pack id, seq, a tag of the listing's author (4 bytes
//!   of its hash, 0 when not known), and a check derived from the three with
//!   the key; a slot whose check does not match is empty. A slot never spans two
//!   disk blocks, so writing one is never seen half done. The tag lets the node
//!   find the records of an author it comes to deal with
//!   ([`DeclinedTable::remove_author`]); two authors sharing a tag only means the
//!   other one's listings are asked about again.
//! - Open addressing with linear probing; a removal moves the records after it
//!   back (no tombstones), so the slots hold records and nothing else.
//! - Past three quarters full, the table is written again into a file twice the
//!   size and renamed into place. It does not shrink: past its first 32 KB, the
//!   file takes at most 86 bytes (a slot at three eighths full) for each record
//!   of the most it has held, which the budget bounds. At three quarters, linear probing reads
//!   about 2.5 slots to find a record and 8.5 to find one absent.
//!
//! Nothing here is synced: a record lost in a crash is a listing the budget is
//! asked about again, and a record kept wrongly only holds back that version of a
//! listing, never a newer one. The count in the header can drift by a few after
//! a crash; a long probe, which a table fuller than its count gives, makes it
//! count again.
//!
//! A table of the first format (`SMPLDCL1`: no tags, an 8-byte check) is read
//! once into a table of this one, its records' authors not known.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use smpl_protocol::{NodeId, PackId};

const MAGIC: &[u8; 8] = b"SMPLDCL2";
/// The first format's magic: its slots have no tag and an 8-byte check.
const MAGIC_1: &[u8; 8] = b"SMPLDCL1";
/// Magic, slots, records, key.
const HEADER: u64 = 64;
/// Pack id, seq, author's tag, check.
const SLOT: u64 = 32;
/// Slots of a new table.
const FIRST_SLOTS: u64 = 1024;
/// A probe this long, or over an eighth of the slots, makes the table count its
/// records again. Probes grow long past about three quarters full; at that load,
/// the longest run of full slots in a table of 2^16–2^24 slots is a few hundred.
const LONG_PROBE: u64 = 1024;
/// Slots read at once by a scan.
const SCAN_SLOTS: u64 = 2048;
/// Slots [`DeclinedTable::forget_near`] looks at under one hold of the lock.
const FORGET_AT_ONCE: usize = 64;

/// The declined listings' records; see the module docs.
pub(super) struct DeclinedTable {
    path: PathBuf,
    table: Mutex<Table>,
}

struct Table {
    file: File,
    slots: u64,
    count: u64,
    key: [u8; 32],
}

#[derive(Clone, Copy)]
struct Record {
    pack: PackId,
    seq: u64,
    /// [`Table::tag`] of the listing's author; 0 when not known.
    tag: u32,
}

impl DeclinedTable {
    /// Opens the table at `path`, or makes an empty one there when there is none
    /// or it is unreadable (a warning says so: those records are forgotten).
    pub fn open(path: &Path) -> io::Result<DeclinedTable> {
        for stray in ["new", "grow"] {
            let _ = fs::remove_file(path.with_extension(stray));
        }
        let table = match Table::open(path) {
            Ok(Some(table)) => table,
            Ok(None) => Table::create(path, FIRST_SLOTS)?,
            Err(e) => {
                tracing::warn!("the declined listings' records are unreadable ({e}); starting them afresh");
                Table::create(path, FIRST_SLOTS)?
            }
        };
        Ok(DeclinedTable { path: path.to_path_buf(), table: Mutex::new(table) })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.table().count as usize
    }

    /// The seq declined for `pack`, if any.
    pub fn get(&self, pack: &PackId) -> io::Result<Option<u64>> {
        let table = self.table();
        Ok(table.find(pack)?.map(|(_, record)| record.seq))
    }

    /// Records that `seq` of `pack`, by `author` (`None`: not known), was
    /// declined, keeping the higher seq of two. Returns whether the pack had no
    /// record.
    pub fn record(&self, pack: &PackId, seq: u64, author: Option<&NodeId>) -> io::Result<bool> {
        let mut table = self.table();
        let record = Record { pack: *pack, seq, tag: author.map_or(0, Table::tag) };
        let (at, probe) = match table.probe(pack)? {
            Probe::Found(at, old) => {
                if old.seq < seq {
                    table.write(at, Some(record))?;
                }
                return Ok(false);
            }
            Probe::Empty(at, probe) => (at, probe),
        };
        table.write(at, Some(record))?;
        table.count += 1;
        if probe > LONG_PROBE.min(table.slots / 8) {
            let mut counted = 0;
            table.scan(|_| counted += 1)?;
            table.count = counted;
        }
        table.write_count()?;
        if table.count * 4 > table.slots * 3 {
            *table = table.grown(&self.path)?;
        }
        Ok(true)
    }

    /// Removes the record of `pack` if its seq is below `seq` (a newer version was
    /// stored). Returns whether one was removed.
    pub fn remove_below(&self, pack: &PackId, seq: u64) -> io::Result<bool> {
        let mut table = self.table();
        match table.find(pack)? {
            Some((at, record)) if record.seq < seq => {
                table.remove_at(at)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Removes up to `n` records other than `near`'s, those in the slots from
    /// `near`'s place on (as good as a random choice). Returns how many. The
    /// table's lock is let go after every [`FORGET_AT_ONCE`] slots looked at:
    /// the store's lookups wait for a few removals, not for thousands made by a
    /// thread at a low priority that a busy core keeps waiting.
    pub fn forget_near(&self, near: &PackId, n: usize) -> io::Result<usize> {
        let mut at = self.table().home(near);
        let (mut forgotten, mut looked) = (0, 0);
        loop {
            let mut table = self.table();
            // A removal may move a later record into `at`, so `at` is read again
            // then; every slot is looked at no more than about twice.
            for _ in 0..FORGET_AT_ONCE {
                if forgotten == n || table.count == 0 || looked >= table.slots * 2 {
                    return Ok(forgotten);
                }
                looked += 1;
                // The table may have grown while the lock was let go.
                at %= table.slots;
                if table.read(at)?.is_some_and(|record| record.pack != *near) {
                    table.remove_at(at)?;
                    forgotten += 1;
                } else {
                    at = (at + 1) % table.slots;
                }
            }
        }
    }

    /// Removes the records of `author`'s listings (and of any author sharing its
    /// tag). Returns their pack ids.
    pub fn remove_author(&self, author: &NodeId) -> io::Result<Vec<PackId>> {
        let mut table = self.table();
        let tag = Table::tag(author);
        let mut packs = Vec::new();
        table.scan(|record| {
            if record.tag == tag {
                packs.push(record.pack);
            }
        })?;
        for pack in &packs {
            if let Some((at, _)) = table.find(pack)? {
                table.remove_at(at)?;
            }
        }
        Ok(packs)
    }

    /// Every record, in no order.
    pub fn records(&self) -> io::Result<Vec<(PackId, u64)>> {
        let table = self.table();
        let mut records = Vec::with_capacity(table.count as usize);
        table.scan(|record| records.push((record.pack, record.seq)))?;
        Ok(records)
    }
}

enum Probe {
    Found(u64, Record),
    /// The empty slot the probe ended at, and how many slots it took.
    Empty(u64, u64),
}

impl Table {
    fn open(path: &Path) -> io::Result<Option<Table>> {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut header = [0u8; HEADER as usize];
        file.read_exact_at(&mut header, 0)?;
        let unreadable = |what: &str| Err(io::Error::new(io::ErrorKind::InvalidData, what.to_string()));
        let first_format = &header[..8] == MAGIC_1;
        if &header[..8] != MAGIC && !first_format {
            return unreadable("not a table of declined listings");
        }
        let slots = u64::from_be_bytes(header[8..16].try_into().expect("8 bytes"));
        let count = u64::from_be_bytes(header[16..24].try_into().expect("8 bytes"));
        if slots == 0 || file.metadata()?.len() < HEADER + slots * SLOT {
            return unreadable("shorter than its slots");
        }
        let key = header[32..64].try_into().expect("32 bytes");
        let table = Table { file, slots, count: count.min(slots), key };
        if first_format {
            return table.in_this_format(path).map(Some);
        }
        Ok(Some(table))
    }

    /// A table of this format in place of `self`, a table of the first one at
    /// `path`, with its records (their authors not known).
    fn in_this_format(&self, path: &Path) -> io::Result<Table> {
        let mut records = Vec::with_capacity(self.count as usize);
        self.scan_with(Table::decode_first_format, |record| records.push(record))?;
        let mut table = Table::create(&path.with_extension("grow"), self.slots)?;
        for record in records {
            table.insert(record)?;
        }
        table.write_count()?;
        fs::rename(path.with_extension("grow"), path)?;
        Ok(table)
    }

    /// Writes an empty table of `slots` at `path`, in place of what is there.
    fn create(path: &Path, slots: u64) -> io::Result<Table> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| io::Error::other(e.to_string()))?;
        let building = path.with_extension("new");
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&building)?;
        file.set_len(HEADER + slots * SLOT)?;
        let table = Table { file, slots, count: 0, key };
        let mut header = [0u8; HEADER as usize];
        header[..8].copy_from_slice(MAGIC);
        header[8..16].copy_from_slice(&slots.to_be_bytes());
        header[32..64].copy_from_slice(&key);
        table.file.write_all_at(&header, 0)?;
        fs::rename(&building, path)?;
        Ok(table)
    }

    /// A table twice the size holding every record of this one, in its place.
    fn grown(&self, path: &Path) -> io::Result<Table> {
        let mut grown = Table::create(&path.with_extension("grow"), self.slots * 2)?;
        let mut moved = Ok(());
        self.scan(|record| {
            if moved.is_ok() {
                moved = grown.insert(record);
            }
        })?;
        moved?;
        grown.write_count()?;
        fs::rename(path.with_extension("grow"), path)?;
        Ok(grown)
    }

    /// Puts `record` in the empty slot its probe ends at, unless its pack has
    /// one already (used while growing).
    fn insert(&mut self, record: Record) -> io::Result<()> {
        if let Probe::Empty(at, _) = self.probe(&record.pack)? {
            self.write(at, Some(record))?;
            self.count += 1;
        }
        Ok(())
    }

    fn hash(&self, pack: &PackId) -> [u8; 32] {
        *blake3::keyed_hash(&self.key, &pack.0).as_bytes()
    }

    /// The tag of `author`'s records: never 0, which stands for an author not
    /// known. Not keyed: a table grown anew has a new key, and keeps the tags.
    fn tag(author: &NodeId) -> u32 {
        let hash = blake3::hash(&author.0);
        u32::from_be_bytes(hash.as_bytes()[..4].try_into().expect("4 bytes")).max(1)
    }

    fn home(&self, pack: &PackId) -> u64 {
        u64::from_be_bytes(self.hash(pack)[..8].try_into().expect("8 bytes")) % self.slots
    }

    /// The check a slot of `record` carries: never zero, so a zeroed slot is empty.
    fn check(&self, record: &Record) -> u32 {
        let hash = u64::from_be_bytes(self.hash(&record.pack)[8..16].try_into().expect("8 bytes"));
        let mixed = hash ^ record.seq ^ u64::from(record.tag).rotate_left(32);
        (mixed as u32 ^ (mixed >> 32) as u32) | 1
    }

    fn decode(&self, slot: &[u8]) -> Option<Record> {
        let pack = PackId(slot[..16].try_into().expect("16 bytes"));
        let seq = u64::from_be_bytes(slot[16..24].try_into().expect("8 bytes"));
        let tag = u32::from_be_bytes(slot[24..28].try_into().expect("4 bytes"));
        let check = u32::from_be_bytes(slot[28..32].try_into().expect("4 bytes"));
        let record = Record { pack, seq, tag };
        (check != 0 && check == self.check(&record)).then_some(record)
    }

    fn read(&self, at: u64) -> io::Result<Option<Record>> {
        let mut slot = [0u8; SLOT as usize];
        self.file.read_exact_at(&mut slot, HEADER + at * SLOT)?;
        Ok(self.decode(&slot))
    }

    fn write(&self, at: u64, record: Option<Record>) -> io::Result<()> {
        let mut slot = [0u8; SLOT as usize];
        if let Some(record) = record {
            slot[..16].copy_from_slice(&record.pack.0);
            slot[16..24].copy_from_slice(&record.seq.to_be_bytes());
            slot[24..28].copy_from_slice(&record.tag.to_be_bytes());
            slot[28..32].copy_from_slice(&self.check(&record).to_be_bytes());
        }
        self.file.write_all_at(&slot, HEADER + at * SLOT)
    }

    fn write_count(&self) -> io::Result<()> {
        self.file.write_all_at(&self.count.to_be_bytes(), 16)
    }

    fn probe(&self, pack: &PackId) -> io::Result<Probe> {
        let mut at = self.home(pack);
        for probe in 0..self.slots {
            match self.read(at)? {
                None => return Ok(Probe::Empty(at, probe)),
                Some(record) if record.pack == *pack => return Ok(Probe::Found(at, record)),
                Some(_) => at = (at + 1) % self.slots,
            }
        }
        Err(io::Error::other("the table of declined listings is full"))
    }

    fn find(&self, pack: &PackId) -> io::Result<Option<(u64, Record)>> {
        Ok(match self.probe(pack)? {
            Probe::Found(at, record) => Some((at, record)),
            Probe::Empty(..) => None,
        })
    }

    /// Empties slot `at`, moving back the records after it that probing would
    /// no longer reach.
    fn remove_at(&mut self, mut hole: u64) -> io::Result<()> {
        let mut at = hole;
        loop {
            at = (at + 1) % self.slots;
            let Some(record) = self.read(at)? else { break };
            let home = self.home(&record.pack);
            // The record stays when its home is cyclically in (hole, at].
            let stays = if hole <= at { hole < home && home <= at } else { hole < home || home <= at };
            if !stays {
                self.write(hole, Some(record))?;
                hole = at;
            }
        }
        self.write(hole, None)?;
        self.count = self.count.saturating_sub(1);
        self.write_count()
    }

    /// A slot of the first format: pack id, seq and an 8-byte check, no tag.
    fn decode_first_format(&self, slot: &[u8]) -> Option<Record> {
        let pack = PackId(slot[..16].try_into().expect("16 bytes"));
        let seq = u64::from_be_bytes(slot[16..24].try_into().expect("8 bytes"));
        let check = u64::from_be_bytes(slot[24..32].try_into().expect("8 bytes"));
        let expected = (u64::from_be_bytes(self.hash(&pack)[8..16].try_into().expect("8 bytes")) ^ seq) | 1;
        (check != 0 && check == expected).then_some(Record { pack, seq, tag: 0 })
    }

    /// Calls `each` with every record, reading the slots in large runs.
    fn scan(&self, each: impl FnMut(Record)) -> io::Result<()> {
        self.scan_with(Table::decode, each)
    }

    /// [`Table::scan`] with the slots read by `decode`.
    fn scan_with(
        &self,
        decode: impl Fn(&Table, &[u8]) -> Option<Record>,
        mut each: impl FnMut(Record),
    ) -> io::Result<()> {
        let mut run = vec![0u8; (SCAN_SLOTS * SLOT) as usize];
        let mut first = 0;
        while first < self.slots {
            let n = SCAN_SLOTS.min(self.slots - first);
            let bytes = &mut run[..(n * SLOT) as usize];
            self.file.read_exact_at(bytes, HEADER + first * SLOT)?;
            bytes.chunks_exact(SLOT as usize).filter_map(|slot| decode(self, slot)).for_each(&mut each);
            first += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(i: u32) -> PackId {
        PackId(*blake3::hash(&i.to_be_bytes()).as_bytes().first_chunk().unwrap())
    }

    /// The table against a map of the same records, through growing, removing
    /// and forgetting, and again after opening its file anew.
    #[test]
    fn the_table_holds_what_a_map_holds_and_its_file_follows_the_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("declined");
        let table = DeclinedTable::open(&path).unwrap();
        let mut map = std::collections::HashMap::new();
        for i in 0..5_000u32 {
            let seq = u64::from(i % 7);
            assert_eq!(table.record(&pack(i), seq, None).unwrap(), !map.contains_key(&pack(i)));
            map.insert(pack(i), seq);
        }
        assert!(!table.record(&pack(3), 1, None).unwrap(), "a lower seq keeps the higher one");
        assert!(!table.record(&pack(4), 9, None).unwrap());
        map.insert(pack(4), 9);
        for i in (0..5_000u32).step_by(3) {
            let seq = map[&pack(i)];
            assert!(!table.remove_below(&pack(i), seq).unwrap(), "a record at the stored seq stays");
            assert!(table.remove_below(&pack(i), seq + 1).unwrap());
            map.remove(&pack(i));
        }
        let forgotten = table.forget_near(&pack(1), 500).unwrap();
        assert_eq!(forgotten, 500);
        assert_eq!(table.get(&pack(1)).unwrap(), map.get(&pack(1)).copied(), "never the one named");
        let held: std::collections::HashMap<_, _> = table.records().unwrap().into_iter().collect();
        assert_eq!(held.len(), map.len() - 500);
        assert!(held.iter().all(|(pack, seq)| map.get(pack) == Some(seq)), "only records put there");
        for (pack, seq) in &held {
            assert_eq!(table.get(pack).unwrap(), Some(*seq), "every record reachable by its probe");
        }
        assert_eq!(table.len(), held.len());
        let taken = fs::metadata(&path).unwrap().len();
        assert!(taken <= HEADER + 86 * 5_000, "{taken} bytes for at most 5,000 records");
        drop(table);

        let again = DeclinedTable::open(&path).unwrap();
        assert_eq!(again.len(), held.len());
        assert!(held.iter().all(|(pack, seq)| again.get(pack).unwrap() == Some(*seq)));
        assert_eq!(again.get(&pack(0)).unwrap(), None);
    }

    /// A count in the header below the records held (a crash between a slot and
    /// the count) is mended by the first long probe, and the table grows.
    #[test]
    fn a_count_that_drifted_low_is_counted_again_before_the_table_fills() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("declined");
        let table = DeclinedTable::open(&path).unwrap();
        for i in 0..700 {
            table.record(&pack(i), 1, None).unwrap();
        }
        drop(table);
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&0u64.to_be_bytes(), 16).unwrap();
        let drifted = DeclinedTable::open(&path).unwrap();
        assert_eq!(drifted.len(), 0);
        for i in 700..1_000 {
            drifted.record(&pack(i), 1, None).unwrap();
        }
        assert_eq!(drifted.len(), 1_000);
        assert!((0..1_000).all(|i| drifted.get(&pack(i)).unwrap() == Some(1)));
        assert!(fs::metadata(&path).unwrap().len() > HEADER + FIRST_SLOTS * SLOT, "it grew");
    }

    /// A file that is not a table, or is cut short, is started afresh; a slot
    /// written over with garbage reads as empty.
    #[test]
    fn an_unreadable_table_starts_afresh_and_a_damaged_slot_reads_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("declined");
        fs::write(&path, b"not a table").unwrap();
        let table = DeclinedTable::open(&path).unwrap();
        assert_eq!(table.len(), 0);
        for i in 0..100 {
            table.record(&pack(i), 1, None).unwrap();
        }
        drop(table);
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        for at in 0..FIRST_SLOTS {
            file.write_all_at(&[0xA5; 8], HEADER + at * SLOT + 24).unwrap();
        }
        let damaged = DeclinedTable::open(&path).unwrap();
        assert!(damaged.records().unwrap().is_empty());
        assert_eq!(damaged.get(&pack(1)).unwrap(), None);
        file.set_len(HEADER + 10).unwrap();
        let cut = DeclinedTable::open(&path).unwrap();
        assert_eq!(cut.len(), 0);
        assert!(cut.record(&pack(1), 1, None).unwrap());
    }

    /// The records of one author are found by its tag and removed, whatever the
    /// table's size; records of other authors and of authors not known stay.
    #[test]
    fn an_authors_records_are_removed_and_the_rest_stay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("declined");
        let table = DeclinedTable::open(&path).unwrap();
        let (dealt, other) = (NodeId([1; 32]), NodeId([2; 32]));
        for i in 0..3_000u32 {
            let author = match i % 3 {
                0 => Some(&dealt),
                1 => Some(&other),
                _ => None,
            };
            table.record(&pack(i), 1, author).unwrap();
        }
        let mut removed = table.remove_author(&dealt).unwrap();
        removed.sort();
        let mut expected: Vec<PackId> = (0..3_000).step_by(3).map(pack).collect();
        expected.sort();
        assert_eq!(removed, expected);
        assert_eq!(table.len(), 2_000);
        assert!((0..3_000u32).all(|i| table.get(&pack(i)).unwrap().is_some() == (i % 3 != 0)));
        assert!(table.remove_author(&dealt).unwrap().is_empty(), "none left");
        drop(table);
        let again = DeclinedTable::open(&path).unwrap();
        assert_eq!(again.remove_author(&other).unwrap().len(), 1_000, "tags kept in the file");
    }

    /// A table of the first format, without tags, is read into this one: its
    /// records stay, their authors not known.
    #[test]
    fn a_table_of_the_first_format_is_read_into_this_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("declined");
        let key = [3u8; 32];
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
        let old = Table { file, slots: FIRST_SLOTS, count: 0, key };
        old.file.set_len(HEADER + FIRST_SLOTS * SLOT).unwrap();
        let mut header = [0u8; HEADER as usize];
        header[..8].copy_from_slice(MAGIC_1);
        header[8..16].copy_from_slice(&FIRST_SLOTS.to_be_bytes());
        header[16..24].copy_from_slice(&300u64.to_be_bytes());
        header[32..64].copy_from_slice(&key);
        old.file.write_all_at(&header, 0).unwrap();
        for i in 0..300u32 {
            let (pack, seq) = (pack(i), u64::from(i));
            let mut at = old.home(&pack);
            let mut slot = [0u8; SLOT as usize];
            while {
                old.file.read_exact_at(&mut slot, HEADER + at * SLOT).unwrap();
                slot != [0u8; SLOT as usize]
            } {
                at = (at + 1) % FIRST_SLOTS;
            }
            let check = (u64::from_be_bytes(old.hash(&pack)[8..16].try_into().unwrap()) ^ seq) | 1;
            slot[..16].copy_from_slice(&pack.0);
            slot[16..24].copy_from_slice(&seq.to_be_bytes());
            slot[24..32].copy_from_slice(&check.to_be_bytes());
            old.file.write_all_at(&slot, HEADER + at * SLOT).unwrap();
        }
        drop(old);
        let table = DeclinedTable::open(&path).unwrap();
        assert_eq!(table.len(), 300);
        assert!((0..300u32).all(|i| table.get(&pack(i)).unwrap() == Some(u64::from(i))));
        assert!(table.remove_author(&NodeId([1; 32])).unwrap().is_empty(), "no author known");
        let mut magic = [0u8; 8];
        File::open(&path).unwrap().read_exact_at(&mut magic, 0).unwrap();
        assert_eq!(&magic, MAGIC, "written in this format");
    }
}
