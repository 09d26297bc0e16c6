//! Sync messages: ranges, bounds and payloads, their binary encoding and the checks
//! every received message passes (the module docs give the layout and the rules).

use super::{Fingerprint, Item, MAX_LIST_ITEMS, MAX_MESSAGE_BYTES, MAX_RANGES, SYNC_VERSION, SyncError};
use crate::PackId;

const BOUND_END: u8 = 0xff;
const TAG_SKIP: u8 = 0;
const TAG_FINGERPRINT: u8 = 1;
const TAG_ITEM_LIST: u8 = 2;
const TAG_DIFF: u8 = 3;
/// The fewest bytes a range takes (a one-byte bound and a tag).
const MIN_RANGE_BYTES: usize = 2;
/// The fewest bytes an item or a missing id takes.
const MIN_ENTRY_BYTES: usize = PackId::LEN;

/// An upper bound of a range: a point of the id space, or above every id.
///
/// `At(p)` as an upper bound ends the range just below `p`; as a lower bound, the
/// range starts at `p` and contains it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bound {
    At(PackId),
    End,
}

impl Bound {
    /// The lower bound of the first range of every message: the all-zero id.
    pub const MIN: Bound = Bound::At(PackId([0; 16]));

    /// Whether `lower <= id < upper`, with `self` the lower bound.
    pub(crate) fn range_contains(self, upper: Bound, id: &PackId) -> bool {
        let at = Bound::At(*id);
        self <= at && at < upper
    }

    /// The shortest bound above `prev` and at or below `next` (`prev < next`): a
    /// prefix of `next` followed by zeros, so it takes few bytes on the wire.
    pub(crate) fn between(prev: &PackId, next: &PackId) -> Bound {
        let differ = prev.0.iter().zip(next.0).position(|(p, n)| *p != n).unwrap_or(PackId::LEN - 1);
        let mut point = [0u8; 16];
        point[..=differ].copy_from_slice(&next.0[..=differ]);
        Bound::At(PackId(point))
    }

    /// The written bytes of `At`: the point without its trailing zeros.
    fn significant(point: &PackId) -> &[u8] {
        let len = point.0.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
        &point.0[..len]
    }

    fn encoded_len(&self) -> usize {
        match self {
            Bound::At(point) => 1 + Bound::significant(point).len(),
            Bound::End => 1,
        }
    }
}

/// One range `[lower, upper)` of a message; `lower` is the previous range's `upper`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangePart {
    pub upper: Bound,
    pub payload: Payload,
}

/// What a range says; the module docs give the answer to each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Nothing to do in this range.
    Skip,
    /// The sender's fingerprint and item count of the range.
    Fingerprint { fingerprint: Fingerprint, count: u64 },
    /// Every item the sender holds in the range; answer with a `Diff`.
    ItemList { items: Vec<Item> },
    /// The answer to an `ItemList`: the sender's items whose version differs from the
    /// listed one or that were not listed, and the listed ids the sender lacks.
    Diff { items: Vec<Item>, missing: Vec<PackId> },
}

/// One message of a reconciliation session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncMessage {
    pub ranges: Vec<RangePart>,
}

impl SyncMessage {
    /// The encoded bytes (see the module docs for the layout).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.push(SYNC_VERSION);
        put_varint(&mut out, self.ranges.len() as u64);
        for part in &self.ranges {
            part.encode_into(&mut out);
        }
        out
    }

    /// The length of [`SyncMessage::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        1 + varint_len(self.ranges.len() as u64)
            + self.ranges.iter().map(RangePart::encoded_len).sum::<usize>()
    }

    /// Parses and checks received bytes; limits are checked before any work that
    /// depends on them.
    pub fn decode(bytes: &[u8]) -> Result<SyncMessage, SyncError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(SyncError::TooLarge { len: bytes.len(), max: MAX_MESSAGE_BYTES });
        }
        let mut r = Reader { bytes, pos: 0 };
        let version = r.u8()?;
        if version != SYNC_VERSION {
            return Err(SyncError::UnknownVersion(version));
        }
        let count = r.varint()?;
        if count > MAX_RANGES as u64 {
            return Err(SyncError::TooManyRanges { count, max: MAX_RANGES });
        }
        let count = r.fits(count, MIN_RANGE_BYTES)?;
        let mut ranges = Vec::with_capacity(count);
        for range in 0..count {
            let upper = r.bound()?;
            let payload = match r.u8()? {
                TAG_SKIP => Payload::Skip,
                TAG_FINGERPRINT => {
                    Payload::Fingerprint { fingerprint: Fingerprint(r.array()?), count: r.varint()? }
                }
                TAG_ITEM_LIST => {
                    let n = r.list_len(range, 0)?;
                    Payload::ItemList { items: r.items(n)? }
                }
                TAG_DIFF => {
                    let n = r.list_len(range, 0)?;
                    let items = r.items(n)?;
                    let m = r.list_len(range, n)?;
                    let missing = (0..m).map(|_| r.array().map(PackId)).collect::<Result<_, _>>()?;
                    Payload::Diff { items, missing }
                }
                _ => return Err(r.malformed(1, "unknown range payload tag")),
            };
            ranges.push(RangePart { upper, payload });
        }
        if r.pos != bytes.len() {
            return Err(r.malformed(0, "trailing bytes after the last range"));
        }
        let message = SyncMessage { ranges };
        message.validate()?;
        Ok(message)
    }

    /// Checks the rules of the module docs that do not depend on the encoding: counts,
    /// the order of bounds and ids, and the canonical form. [`SyncMessage::decode`]
    /// and [`Reconciler::respond`](super::Reconciler::respond) call it.
    pub fn validate(&self) -> Result<(), SyncError> {
        if self.ranges.len() > MAX_RANGES {
            return Err(SyncError::TooManyRanges { count: self.ranges.len() as u64, max: MAX_RANGES });
        }
        let mut lower = Bound::MIN;
        let mut after_skip = false;
        for (range, part) in self.ranges.iter().enumerate() {
            let invalid = |reason| SyncError::Invalid { range, reason };
            if part.upper <= lower {
                return Err(invalid("upper bound is not above the range's lower bound"));
            }
            let upper = part.upper;
            match &part.payload {
                Payload::Skip if after_skip => return Err(invalid("a skip follows a skip")),
                Payload::Skip if range + 1 == self.ranges.len() => {
                    return Err(invalid("the last range is a skip"));
                }
                Payload::Skip | Payload::Fingerprint { .. } => {}
                Payload::ItemList { items } => {
                    check_count(range, items.len())?;
                    check_ids(items.iter().map(|i| &i.id), lower, upper).map_err(invalid)?;
                }
                Payload::Diff { items, missing } => {
                    check_count(range, items.len().saturating_add(missing.len()))?;
                    if items.is_empty() && missing.is_empty() {
                        return Err(invalid("an empty diff (a skip says that)"));
                    }
                    check_ids(items.iter().map(|i| &i.id), lower, upper).map_err(invalid)?;
                    check_ids(missing.iter(), lower, upper).map_err(invalid)?;
                    if !disjoint(items, missing) {
                        return Err(invalid("an id is both in the diff's items and missing"));
                    }
                }
            }
            after_skip = part.payload == Payload::Skip;
            lower = upper;
        }
        Ok(())
    }
}

impl RangePart {
    pub(crate) fn encoded_len(&self) -> usize {
        let items_len =
            |items: &[Item]| items.iter().map(|i| PackId::LEN + varint_len(i.version)).sum::<usize>();
        self.upper.encoded_len()
            + 1
            + match &self.payload {
                Payload::Skip => 0,
                Payload::Fingerprint { count, .. } => 16 + varint_len(*count),
                Payload::ItemList { items } => varint_len(items.len() as u64) + items_len(items),
                Payload::Diff { items, missing } => {
                    varint_len(items.len() as u64)
                        + items_len(items)
                        + varint_len(missing.len() as u64)
                        + PackId::LEN * missing.len()
                }
            }
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        match &self.upper {
            Bound::End => out.push(BOUND_END),
            Bound::At(point) => {
                let bytes = Bound::significant(point);
                out.push(bytes.len() as u8);
                out.extend_from_slice(bytes);
            }
        }
        let put_items = |out: &mut Vec<u8>, items: &[Item]| {
            put_varint(out, items.len() as u64);
            for item in items {
                out.extend_from_slice(item.id.as_bytes());
                put_varint(out, item.version);
            }
        };
        match &self.payload {
            Payload::Skip => out.push(TAG_SKIP),
            Payload::Fingerprint { fingerprint, count } => {
                out.push(TAG_FINGERPRINT);
                out.extend_from_slice(&fingerprint.0);
                put_varint(out, *count);
            }
            Payload::ItemList { items } => {
                out.push(TAG_ITEM_LIST);
                put_items(out, items);
            }
            Payload::Diff { items, missing } => {
                out.push(TAG_DIFF);
                put_items(out, items);
                put_varint(out, missing.len() as u64);
                for id in missing {
                    out.extend_from_slice(id.as_bytes());
                }
            }
        }
    }
}

fn check_count(range: usize, count: usize) -> Result<(), SyncError> {
    if count > MAX_LIST_ITEMS {
        return Err(SyncError::TooManyItems { range, count: count as u64, max: MAX_LIST_ITEMS });
    }
    Ok(())
}

/// Ids strictly increasing, each within `[lower, upper)`.
fn check_ids<'a>(
    ids: impl Iterator<Item = &'a PackId>,
    lower: Bound,
    upper: Bound,
) -> Result<(), &'static str> {
    let mut prev: Option<&PackId> = None;
    for id in ids {
        if prev.is_some_and(|p| p >= id) {
            return Err("ids are not in strictly increasing order");
        }
        if !lower.range_contains(upper, id) {
            return Err("an id lies outside its range");
        }
        prev = Some(id);
    }
    Ok(())
}

/// Whether two id-sorted lists share no id.
fn disjoint(items: &[Item], missing: &[PackId]) -> bool {
    let (mut a, mut b) = (items.iter().peekable(), missing.iter().peekable());
    while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
        match x.id.cmp(y) {
            std::cmp::Ordering::Less => {
                a.next();
            }
            std::cmp::Ordering::Greater => {
                b.next();
            }
            std::cmp::Ordering::Equal => return false,
        }
    }
    true
}

pub(crate) fn varint_len(mut v: u64) -> usize {
    let mut len = 1;
    while v >= 0x80 {
        v >>= 7;
        len += 1;
    }
    len
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A cursor over received bytes; every read checks what is left.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    /// An error about the value that started `back` bytes before the cursor.
    fn malformed(&self, back: usize, reason: &'static str) -> SyncError {
        SyncError::Malformed { offset: self.pos.saturating_sub(back), reason }
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn u8(&mut self) -> Result<u8, SyncError> {
        let b = *self.bytes.get(self.pos).ok_or_else(|| self.malformed(0, "truncated"))?;
        self.pos += 1;
        Ok(b)
    }

    fn array(&mut self) -> Result<[u8; 16], SyncError> {
        let slice = self.bytes.get(self.pos..self.pos + 16).ok_or_else(|| self.malformed(0, "truncated"))?;
        let mut out = [0u8; 16];
        out.copy_from_slice(slice);
        self.pos += 16;
        Ok(out)
    }

    fn varint(&mut self) -> Result<u64, SyncError> {
        let start = self.pos;
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.u8()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(SyncError::Malformed { offset: start, reason: "varint over u64::MAX" });
            }
            value |= bits << shift;
            if b & 0x80 == 0 {
                if b == 0 && shift > 0 {
                    return Err(SyncError::Malformed {
                        offset: start,
                        reason: "varint not in its shortest form",
                    });
                }
                return Ok(value);
            }
        }
        Err(SyncError::Malformed { offset: start, reason: "varint longer than 10 bytes" })
    }

    /// `count` things of at least `min_bytes` each must fit in what is left.
    fn fits(&self, count: u64, min_bytes: usize) -> Result<usize, SyncError> {
        match usize::try_from(count) {
            Ok(n) if n.saturating_mul(min_bytes) <= self.remaining() => Ok(n),
            _ => Err(self.malformed(0, "count larger than the rest of the message")),
        }
    }

    /// A list length for range `range` that already holds `before` entries.
    fn list_len(&mut self, range: usize, before: usize) -> Result<usize, SyncError> {
        let n = self.varint()?;
        let total = n.saturating_add(before as u64);
        if total > MAX_LIST_ITEMS as u64 {
            return Err(SyncError::TooManyItems { range, count: total, max: MAX_LIST_ITEMS });
        }
        self.fits(n, MIN_ENTRY_BYTES)
    }

    fn items(&mut self, n: usize) -> Result<Vec<Item>, SyncError> {
        (0..n).map(|_| Ok(Item { id: PackId(self.array()?), version: self.varint()? })).collect()
    }

    fn bound(&mut self) -> Result<Bound, SyncError> {
        let len = self.u8()?;
        if len == BOUND_END {
            return Ok(Bound::End);
        }
        let len = usize::from(len);
        if len > PackId::LEN {
            return Err(self.malformed(1, "bound longer than 16 bytes"));
        }
        let bytes = self.bytes.get(self.pos..self.pos + len).ok_or_else(|| self.malformed(0, "truncated"))?;
        if bytes.last() == Some(&0) {
            return Err(self.malformed(1, "bound ends in a zero byte (not in its shortest form)"));
        }
        let mut point = [0u8; 16];
        point[..len].copy_from_slice(bytes);
        self.pos += len;
        Ok(Bound::At(PackId(point)))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn id(first: u8, second: u8) -> PackId {
        let mut bytes = [0u8; 16];
        bytes[0] = first;
        bytes[1] = second;
        PackId(bytes)
    }

    #[test]
    fn varints_are_canonical() {
        for v in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX - 1, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v));
            let mut r = Reader { bytes: &out, pos: 0 };
            assert_eq!(r.varint().unwrap(), v);
            assert_eq!(r.pos, out.len());
        }
        for bad in [&[0x80, 0x00][..], &[0xff; 10], &[0xff; 11], &[0x80; 3]] {
            let mut r = Reader { bytes: bad, pos: 0 };
            assert!(r.varint().is_err(), "{bad:?}");
        }
        let mut max_plus = vec![0xff; 9];
        max_plus.push(0x02);
        assert!(Reader { bytes: &max_plus, pos: 0 }.varint().is_err());
    }

    #[test]
    fn between_is_short_and_separates() {
        let (a, b) = (id(0x12, 0x34), id(0x12, 0x56));
        let bound = Bound::between(&a, &b);
        assert_eq!(bound, Bound::At(id(0x12, 0x56)));
        assert_eq!(bound.encoded_len(), 3);
        assert_eq!(Bound::between(&id(1, 0xff), &id(2, 0)), Bound::At(id(2, 0)));
        assert_eq!(Bound::At(id(2, 0)).encoded_len(), 2);
    }

    proptest! {
        #[test]
        fn between_lies_between(a in any::<[u8; 16]>(), b in any::<[u8; 16]>()) {
            prop_assume!(a != b);
            let (lo, hi) = if a < b { (PackId(a), PackId(b)) } else { (PackId(b), PackId(a)) };
            let bound = Bound::between(&lo, &hi);
            prop_assert!(Bound::At(lo) < bound && bound <= Bound::At(hi));
            // Nothing shorter would do.
            if let Bound::At(point) = bound {
                let len = Bound::significant(&point).len();
                let mut shorter = point;
                shorter.0[len - 1] = 0;
                prop_assert!(Bound::At(shorter) <= Bound::At(lo));
            }
        }
    }
}
