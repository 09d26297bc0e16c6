//! The reconciling side: answers each range of a message from the local item set,
//! within the size limits, and records what it learned.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::fingerprint::PrefixSums;
use super::message::varint_len;
use super::{
    Bound, Item, LIST_THRESHOLD, MAX_LIST_ITEMS, MAX_MESSAGE_BYTES, MAX_RANGES, Payload, RangePart,
    SPLIT_LIST_THRESHOLD, SPLIT_PARTS, SyncError, SyncMessage,
};
use crate::PackId;

/// What one side learned about the difference of the two sets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Listings the peer holds at a higher version, or that this side lacks, at the
    /// peer's version: fetch them.
    pub need: Vec<Item>,
    /// Ids this side holds at a higher version, or that the peer lacks.
    pub have: Vec<PackId>,
}

impl Outcome {
    /// Adds `other` to this outcome, keeping each list sorted and free of repeats.
    pub fn merge(&mut self, other: Outcome) {
        union(&mut self.need, other.need);
        union(&mut self.have, other.have);
    }

    pub fn is_empty(&self) -> bool {
        self.need.is_empty() && self.have.is_empty()
    }
}

/// Adds `theirs` to `mine`, keeping it sorted and free of repeats.
fn union<T: Ord>(mine: &mut Vec<T>, theirs: Vec<T>) {
    mine.extend(theirs);
    mine.sort_unstable();
    mine.dedup();
}

/// How large an answer may grow.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    pub(crate) bytes: usize,
    pub(crate) ranges: usize,
    /// Most entries of one `Diff` this side writes.
    pub(crate) list_items: usize,
    /// Ranges kept free in every answer for the rest of a full answer.
    pub(crate) rest_parts: usize,
}

const LIMITS: Budget =
    Budget { bytes: MAX_MESSAGE_BYTES, ranges: MAX_RANGES, list_items: MAX_LIST_ITEMS, rest_parts: 32 };

/// The largest range of the rest of a full answer: a `Fingerprint` with the longest
/// bound and count.
const REST_PART_BYTES: usize = 17 + 1 + 16 + 10;
/// Room for the version byte and the range count.
const HEADER_BYTES: usize = 1 + 3;

// Every single range this side writes fits in an empty answer next to the room kept
// for the rest, so each answer makes progress: a `Diff` of `MAX_LIST_ITEMS` items of
// at most 26 bytes, or the `SPLIT_PARTS` ranges of a split.
const _: () = assert!(
    HEADER_BYTES + LIMITS.rest_parts * REST_PART_BYTES + 17 + 1 + 2 * 3 + MAX_LIST_ITEMS * 26
        <= MAX_MESSAGE_BYTES
        && LIMITS.rest_parts + SPLIT_PARTS < MAX_RANGES
        && LIMITS.rest_parts >= 2
);

/// One node's side of reconciliation sessions, over a fixed set of items.
///
/// It holds no session state: every answer depends only on the message and the
/// items, so a node may keep one `Reconciler` for a whole session or build one per
/// message (building hashes every item once).
pub struct Reconciler<'a> {
    items: Cow<'a, [Item]>,
    sums: PrefixSums,
    budget: Budget,
}

/// What answering one received range produced.
struct Answer {
    /// Consecutive ranges, the first starting at the received range's lower bound.
    parts: Vec<(RangePart, Outcome)>,
    /// The parts end below the received range's upper bound, because the answer
    /// would not fit; the rest is answered like a full answer's rest.
    truncated: bool,
}

impl Answer {
    fn one(upper: Bound, payload: Payload) -> Answer {
        Answer { parts: vec![(RangePart { upper, payload }, Outcome::default())], truncated: false }
    }
}

impl<'a> Reconciler<'a> {
    /// A reconciler over `items`. Sorted items with distinct ids (the normal case)
    /// are borrowed; anything else is sorted into a copy that keeps the highest
    /// version of each id.
    pub fn new(items: &'a [Item]) -> Self {
        Reconciler::with_budget(items, LIMITS)
    }

    pub(crate) fn with_budget(items: &'a [Item], budget: Budget) -> Self {
        let items = if items.windows(2).all(|w| w[0].id < w[1].id) {
            Cow::Borrowed(items)
        } else {
            let mut owned = items.to_vec();
            owned.sort_unstable_by(|a, b| a.id.cmp(&b.id).then(b.version.cmp(&a.version)));
            owned.dedup_by_key(|item| item.id);
            Cow::Owned(owned)
        };
        let sums = PrefixSums::new(&items);
        Reconciler { items, sums, budget }
    }

    /// The items, sorted by id.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// The first message of a session: one range over the whole id space.
    pub fn initiate(&self) -> SyncMessage {
        let payload = if self.items.len() <= LIST_THRESHOLD {
            Payload::ItemList { items: self.items.to_vec() }
        } else {
            self.summary(0, self.items.len())
        };
        SyncMessage { ranges: vec![RangePart { upper: Bound::End, payload }] }
    }

    /// Answers a message from the peer: the next message (`None` when this side has
    /// nothing to send, which ends the session) and what this message taught.
    pub fn respond(&self, message: &SyncMessage) -> Result<(Option<SyncMessage>, Outcome), SyncError> {
        message.validate()?;
        let mut out = Builder::new(self.budget);
        let mut outcome = Outcome::default();
        let mut lower = Bound::MIN;
        for (k, part) in message.ranges.iter().enumerate() {
            let (i, j) = (self.index(lower), self.index(part.upper));
            let ours = self.items.get(i..j).unwrap_or_default();
            let answer = match &part.payload {
                Payload::Skip => Answer::one(part.upper, Payload::Skip),
                Payload::Fingerprint { fingerprint, count } => {
                    if *fingerprint == self.sums.fingerprint(&self.items, i, j) && *count == ours.len() as u64
                    {
                        Answer::one(part.upper, Payload::Skip)
                    } else if ours.len() <= LIST_THRESHOLD {
                        Answer::one(part.upper, Payload::ItemList { items: ours.to_vec() })
                    } else if *count <= LIST_THRESHOLD as u64 {
                        Answer::one(part.upper, self.summary(i, j))
                    } else {
                        self.split(part.upper, i, j)
                    }
                }
                Payload::ItemList { items } => diff(ours, items, part.upper, self.budget, out.room()),
                Payload::Diff { items, missing } => {
                    let learned = learn(ours, items, missing);
                    let skip = RangePart { upper: part.upper, payload: Payload::Skip };
                    Answer { parts: vec![(skip, learned)], truncated: false }
                }
            };
            let mut full = answer.truncated;
            for (range, learned) in answer.parts {
                let upper = range.upper;
                if !out.push(range) {
                    full = true;
                    break;
                }
                // Ranges ascend and do not overlap: the lists stay sorted and distinct.
                outcome.need.extend(learned.need);
                outcome.have.extend(learned.have);
                lower = upper;
            }
            if full {
                self.rest(&mut out, &mut outcome, &message.ranges[k..], lower);
                break;
            }
            lower = part.upper;
        }
        Ok((out.finish(), outcome))
    }

    /// Ends a full answer: `parts` are the received ranges not yet answered, the first
    /// of them from `lower` on. Each run of ranges that asked for an answer gets this
    /// side's fingerprint of the run, for the peer to answer next round; ranges the
    /// peer had finished stay skipped (a `Diff` among them still teaches). Past
    /// `budget.rest_parts` ranges, the last fingerprint runs up to the last range
    /// that asked, reopening the finished ones inside it.
    fn rest(&self, out: &mut Builder, outcome: &mut Outcome, parts: &[RangePart], mut lower: Bound) {
        let asks =
            |part: &RangePart| matches!(part.payload, Payload::Fingerprint { .. } | Payload::ItemList { .. });
        let last = parts.iter().rposition(asks);
        let (mut emitted, mut skipped_from, mut k) = (0, lower, 0);
        while let Some(part) = parts.get(k) {
            let Some(last) = last.filter(|last| k <= *last && asks(part)) else {
                if let Payload::Diff { items, missing } = &part.payload {
                    let learned = learn(self.slice(lower, part.upper), items, missing);
                    outcome.need.extend(learned.need);
                    outcome.have.extend(learned.have);
                }
                lower = part.upper;
                k += 1;
                continue;
            };
            if skipped_from < lower {
                out.push_rest(RangePart { upper: lower, payload: Payload::Skip });
                emitted += 1;
            }
            // This run of asking ranges, or everything up to the last one when at most
            // one more run would fit.
            let mut end = k;
            if emitted + 3 > self.budget.rest_parts {
                end = last;
            }
            while end < last && parts.get(end + 1).is_some_and(asks) {
                end += 1;
            }
            let upper = parts.get(end).map_or(Bound::End, |p| p.upper);
            let (i, j) = (self.index(lower), self.index(upper));
            out.push_rest(RangePart { upper, payload: self.summary(i, j) });
            emitted += 1;
            (lower, skipped_from, k) = (upper, upper, end + 1);
        }
    }

    /// The items in `[lower, upper)`.
    fn slice(&self, lower: Bound, upper: Bound) -> &[Item] {
        self.items.get(self.index(lower)..self.index(upper)).unwrap_or_default()
    }

    /// The index of the first item at or above `bound`.
    fn index(&self, bound: Bound) -> usize {
        match bound {
            Bound::End => self.items.len(),
            Bound::At(point) => self.items.partition_point(|item| item.id < point),
        }
    }

    fn summary(&self, i: usize, j: usize) -> Payload {
        let fingerprint = self.sums.fingerprint(&self.items, i, j);
        Payload::Fingerprint { fingerprint, count: j.saturating_sub(i) as u64 }
    }

    /// `items[i..j]` (more than `SPLIT_PARTS` of them) as `SPLIT_PARTS` ranges of
    /// nearly equal count, the last one ending at `upper`: a fingerprint each, or the
    /// items of a range of at most `SPLIT_LIST_THRESHOLD` (a round sooner, for about
    /// as many bytes).
    fn split(&self, upper: Bound, i: usize, j: usize) -> Answer {
        let n = j - i;
        let mut parts = Vec::with_capacity(SPLIT_PARTS);
        let mut start = i;
        for k in 1..=SPLIT_PARTS {
            let end = i + n * k / SPLIT_PARTS;
            let bound = match (k < SPLIT_PARTS, self.items.get(end.wrapping_sub(1)), self.items.get(end)) {
                (true, Some(prev), Some(next)) => Bound::between(&prev.id, &next.id),
                _ => upper,
            };
            let payload = if end - start <= SPLIT_LIST_THRESHOLD {
                Payload::ItemList { items: self.items.get(start..end).unwrap_or_default().to_vec() }
            } else {
                self.summary(start, end)
            };
            parts.push((RangePart { upper: bound, payload }, Outcome::default()));
            start = end;
        }
        Answer { parts, truncated: false }
    }
}

/// Walks two id-sorted lists together.
enum Step {
    Ours(Item),
    Theirs(Item),
    Both(Item, Item),
}

fn merge<'x>(ours: &'x [Item], theirs: &'x [Item]) -> impl Iterator<Item = Step> + 'x {
    let (mut a, mut b) = (ours.iter().peekable(), theirs.iter().peekable());
    std::iter::from_fn(move || {
        let order = match (a.peek(), b.peek()) {
            (None, None) => return None,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(o), Some(t)) => o.id.cmp(&t.id),
        };
        Some(match order {
            Ordering::Less => Step::Ours(*a.next()?),
            Ordering::Greater => Step::Theirs(*b.next()?),
            Ordering::Equal => Step::Both(*a.next()?, *b.next()?),
        })
    })
}

/// Bytes of a `Diff` range besides its entries: the longest bound, the tag and the
/// two counts (at most `MAX_LIST_ITEMS`, so two bytes each).
const DIFF_OVERHEAD: usize = 17 + 1 + 2 + 2;

/// The answer to the peer's complete list `theirs` of a range whose items here are
/// `ours`: `Diff` ranges of at most `budget.list_items` entries, stopping early
/// (truncated) before the entries outgrow `room` bytes.
fn diff(ours: &[Item], theirs: &[Item], upper: Bound, budget: Budget, mut room: usize) -> Answer {
    let mut w = DiffWriter::default();
    for step in merge(ours, theirs) {
        // The id, its entry in the diff (ours, or missing here), and what it teaches.
        let (id, entry, need, have) = match step {
            Step::Ours(o) => (o.id, Some(Ok(o)), None, true),
            Step::Theirs(t) => (t.id, Some(Err(t.id)), Some(t), false),
            Step::Both(o, t) => (
                o.id,
                (o.version != t.version).then_some(Ok(o)),
                (t.version > o.version).then_some(t),
                o.version > t.version,
            ),
        };
        if let Some(entry) = entry {
            if w.items.len() + w.missing.len() >= budget.list_items {
                w.close_below(id);
            }
            let opening = if w.items.is_empty() && w.missing.is_empty() { DIFF_OVERHEAD } else { 0 };
            let cost = opening + PackId::LEN + entry.map_or(0, |item| varint_len(item.version));
            if cost > room {
                w.close_below(id);
                return Answer { parts: w.parts, truncated: true };
            }
            room -= cost;
            match entry {
                Ok(item) => w.items.push(item),
                Err(id) => w.missing.push(id),
            }
        }
        if let Some(item) = need {
            w.learned.need.push(item);
        }
        if have {
            w.learned.have.push(id);
        }
        w.prev = Some(id);
        w.open = true;
    }
    w.close(upper);
    Answer { parts: w.parts, truncated: false }
}

/// `Diff` ranges under construction.
#[derive(Default)]
struct DiffWriter {
    parts: Vec<(RangePart, Outcome)>,
    items: Vec<Item>,
    missing: Vec<PackId>,
    learned: Outcome,
    /// The last id walked.
    prev: Option<PackId>,
    /// Ids were walked since the last range was closed.
    open: bool,
}

impl DiffWriter {
    fn close(&mut self, upper: Bound) {
        let (items, missing) = (std::mem::take(&mut self.items), std::mem::take(&mut self.missing));
        let payload = if items.is_empty() && missing.is_empty() {
            Payload::Skip
        } else {
            Payload::Diff { items, missing }
        };
        self.parts.push((RangePart { upper, payload }, std::mem::take(&mut self.learned)));
        self.open = false;
    }

    /// Closes the range below `id` (above every id walked so far), if ids were walked
    /// since the last close; the bound then lies above the last one.
    fn close_below(&mut self, id: PackId) {
        if let (true, Some(prev)) = (self.open, self.prev) {
            self.close(Bound::between(&prev, &id));
        }
    }
}

/// What the peer's `Diff` (its `items` that differ, the listed ids it is `missing`)
/// says, given `ours`, the items here in that range.
fn learn(ours: &[Item], items: &[Item], missing: &[PackId]) -> Outcome {
    let mut learned = Outcome::default();
    let mut missing = missing.iter().peekable();
    for step in merge(ours, items) {
        match step {
            Step::Ours(o) => {
                while missing.next_if(|m| **m < o.id).is_some() {}
                if missing.next_if(|m| **m == o.id).is_some() {
                    learned.have.push(o.id);
                }
            }
            Step::Theirs(t) => learned.need.push(t),
            Step::Both(o, t) => match t.version.cmp(&o.version) {
                Ordering::Greater => learned.need.push(t),
                Ordering::Less => learned.have.push(o.id),
                Ordering::Equal => {}
            },
        }
    }
    learned
}

/// An answer under construction, within its budget. Neighbouring skips merge and
/// trailing skips are dropped, so the result is in canonical form.
struct Builder {
    budget: Budget,
    ranges: Vec<RangePart>,
    bytes: usize,
}

impl Builder {
    fn new(budget: Budget) -> Self {
        Builder { budget, ranges: Vec::new(), bytes: HEADER_BYTES }
    }

    /// Bytes left for ranges, keeping room for the rest.
    fn room(&self) -> usize {
        self.budget.bytes.saturating_sub(self.bytes + self.budget.rest_parts * REST_PART_BYTES)
    }

    /// Adds `range` unless it would not fit (keeping room for the rest).
    fn push(&mut self, range: RangePart) -> bool {
        let room = self.room();
        let fits = |grow: usize, new_ranges: usize| {
            grow <= room && self.ranges.len() + new_ranges + self.budget.rest_parts <= self.budget.ranges
        };
        let fit = match self.ranges.last() {
            // A skip after a skip only moves the last bound.
            Some(last) if range.payload == Payload::Skip && last.payload == Payload::Skip => {
                fits(range.encoded_len().saturating_sub(last.encoded_len()), 0)
            }
            _ => fits(range.encoded_len(), 1),
        };
        if fit {
            self.append(range);
        }
        fit
    }

    /// Adds a range of the rest of a full answer, into the kept room.
    fn push_rest(&mut self, range: RangePart) {
        self.append(range);
    }

    fn append(&mut self, range: RangePart) {
        match self.ranges.last_mut() {
            Some(last) if range.payload == Payload::Skip && last.payload == Payload::Skip => {
                self.bytes = self.bytes - last.encoded_len() + range.encoded_len();
                last.upper = range.upper;
            }
            _ => {
                self.bytes += range.encoded_len();
                self.ranges.push(range);
            }
        }
    }

    fn finish(mut self) -> Option<SyncMessage> {
        while self.ranges.last().is_some_and(|r| r.payload == Payload::Skip) {
            self.ranges.pop();
        }
        (!self.ranges.is_empty()).then_some(SyncMessage { ranges: self.ranges })
    }
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
