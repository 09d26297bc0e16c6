//! Range-based set reconciliation (`smpl_protocol::sync`): whole sessions against a
//! model of the set difference, their cost in bytes and rounds, golden bytes, limits,
//! and hostile input.

use std::collections::BTreeMap;

use proptest::prelude::*;
use smpl_protocol::PackId;
use smpl_protocol::sync::{
    self, Bound, Fingerprint, Item, MAX_LIST_ITEMS, MAX_MESSAGE_BYTES, MAX_RANGES, Outcome, Payload,
    RangePart, Reconciler, SyncError, SyncMessage,
};

/// A session's result: both sides' outcomes, the messages sent and their bytes.
struct Session {
    initiator: Outcome,
    responder: Outcome,
    messages: usize,
    bytes: usize,
    largest: usize,
}

/// Runs a session between `a` (initiator) and `b`, every message through its bytes.
fn session(a: &[Item], b: &[Item], max_messages: usize) -> Session {
    let (ra, rb) = (Reconciler::new(a), Reconciler::new(b));
    let mut outcomes = [Outcome::default(), Outcome::default()];
    let mut bytes = ra.initiate().encode();
    let (mut messages, mut total, mut largest) = (1, bytes.len(), bytes.len());
    let mut turn = 1;
    loop {
        let message = SyncMessage::decode(&bytes).expect("own messages decode");
        assert_eq!(message.encode(), bytes, "re-encodes to the same bytes");
        let (next, learned) = [&ra, &rb][turn].respond(&message).expect("own messages are valid");
        outcomes[turn].need.extend(learned.need);
        outcomes[turn].have.extend(learned.have);
        let Some(next) = next else { break };
        bytes = next.encode();
        assert!(bytes.len() <= MAX_MESSAGE_BYTES);
        messages += 1;
        total += bytes.len();
        largest = largest.max(bytes.len());
        assert!(messages <= max_messages, "no end after {messages} messages");
        turn = 1 - turn;
    }
    // Each message's outcome is sorted; across messages, sort (repeats stay, to be seen).
    for o in &mut outcomes {
        o.need.sort_unstable();
        o.have.sort_unstable();
    }
    let [initiator, responder] = outcomes;
    Session { initiator, responder, messages, bytes: total, largest }
}

/// The exact outcome for the side holding `mine`, from the two sets by version.
fn model(mine: &[Item], theirs: &[Item]) -> Outcome {
    let (m, t): (BTreeMap<_, _>, BTreeMap<_, _>) = (
        mine.iter().map(|i| (i.id, i.version)).collect(),
        theirs.iter().map(|i| (i.id, i.version)).collect(),
    );
    Outcome {
        need: t
            .iter()
            .filter(|(id, v)| m.get(id).is_none_or(|mv| mv < v))
            .map(|(id, v)| Item { id: *id, version: *v })
            .collect(),
        have: m.iter().filter(|(id, v)| t.get(id).is_none_or(|tv| tv < v)).map(|(id, _)| *id).collect(),
    }
}

/// Checks a session's outcomes against the model: exact, sorted, no repeats.
fn check(a: &[Item], b: &[Item], s: &Session) {
    assert_eq!(s.initiator, model(a, b), "initiator's outcome");
    assert_eq!(s.responder, model(b, a), "responder's outcome");
}

/// A well-spread id from a number (what BLAKE3-derived pack ids look like).
fn id(n: u64) -> PackId {
    let mut out = [0u8; 16];
    out.copy_from_slice(&blake3::hash(&n.to_le_bytes()).as_bytes()[..16]);
    PackId(out)
}

fn items(range: std::ops::Range<u64>, version: u64) -> Vec<Item> {
    range.map(|n| Item { id: id(n), version }).collect()
}

/// Upper bound on messages for sets of at most `n` items that fit in single answers:
/// two per split level (16 parts each, down to 16 items), the opening, an echoed
/// fingerprint, the lists and their diffs.
fn max_messages(n: usize) -> usize {
    let mut levels = 0;
    let mut left = n.max(1);
    while left > 16 {
        left = left.div_ceil(16);
        levels += 1;
    }
    2 * levels + 4
}

/// Two sets drawn from one pool of ids: shared, one-sided and bumped items.
fn pair() -> impl Strategy<Value = (Vec<Item>, Vec<Item>)> {
    let entry = (0u8..4, 0u64..3, 0u64..3);
    (prop::collection::btree_map(0u64..5000, entry, 0..700)).prop_map(|pool| {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for (n, (side, va, vb)) in pool {
            match side {
                0 => a.push(Item { id: id(n), version: va }),
                1 => b.push(Item { id: id(n), version: vb }),
                _ => {
                    a.push(Item { id: id(n), version: va });
                    b.push(Item { id: id(n), version: vb });
                }
            }
        }
        (a, b)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn sessions_find_exactly_the_difference((a, b) in pair()) {
        let bound = max_messages(a.len().max(b.len()));
        let s = session(&a, &b, bound);
        check(&a, &b, &s);
        let s = session(&b, &a, bound);
        check(&b, &a, &s);
    }

    #[test]
    fn one_sided_and_empty_sets(n in 0u64..400, shared in 0u64..400) {
        let (a, b) = (items(0..n + shared, 2), items(n..n + shared, 2));
        for (x, y) in [(&a, &b), (&b, &a), (&a, &Vec::new()), (&Vec::new(), &a)] {
            let s = session(x, y, max_messages(a.len()));
            check(x, y, &s);
        }
    }
}

#[test]
fn identical_sets_cost_a_few_bytes() {
    let a = items(0..1000, 2);
    let s = session(&a, &a, 1);
    check(&a, &a, &s);
    println!("1,000 identical items: {} message(s), {} bytes", s.messages, s.bytes);
    assert!(s.bytes <= 64, "{} bytes", s.bytes);
}

#[test]
fn one_sided_sets_take_few_rounds() {
    let a = items(0..1000, 4);
    for (x, y, label) in [(&a, &Vec::new(), "1,000 vs 0"), (&Vec::new(), &a, "0 vs 1,000")] {
        let s = session(x, y, 3);
        check(x, y, &s);
        println!("{label}: {} messages, {} bytes", s.messages, s.bytes);
    }
}

#[test]
fn hundred_thousand_items_ten_differences() {
    let a = items(0..100_000, 2);
    let mut b = a.clone();
    // Four items only here, three only there, three at other versions.
    b.retain(|i| ![id(10), id(20_000), id(40_000), id(99_999)].contains(&i.id));
    b.extend(items(100_000..100_003, 2));
    for n in [5, 50_000, 77_777] {
        let item = b.iter_mut().find(|i| i.id == id(n)).expect("present");
        item.version = if n == 50_000 { 1 } else { 3 };
    }
    b.sort();
    let s = session(&a, &b, 8);
    check(&a, &b, &s);
    assert_eq!(s.initiator.need.len() + s.initiator.have.len(), 10);
    println!("100,000 vs 100,000 with 10 differences: {} messages, {} bytes", s.messages, s.bytes);
    assert!(s.bytes <= 16 * 1024, "{} bytes", s.bytes);
}

#[test]
fn answers_larger_than_a_message_continue_in_later_rounds() {
    // 40,000 items are about 700 KiB of lists: several full answers.
    let a = items(0..40_000, 6);
    let b: Vec<Item> = a.iter().step_by(97).copied().collect();
    let s = session(&b, &a, 40);
    check(&b, &a, &s);
    println!("40,000 vs 413: {} messages, {} bytes, largest {} bytes", s.messages, s.bytes, s.largest);
    assert!(s.largest <= MAX_MESSAGE_BYTES && s.largest > MAX_MESSAGE_BYTES / 2);
}

#[test]
fn byte_level_helpers() {
    let a = items(0..300, 2);
    let b = items(10..300, 2);
    let mut message = sync::initiate(&a);
    let mut need_b = Vec::new();
    let mut need_a = Vec::new();
    for round in 0.. {
        let (side, need) = if round % 2 == 0 { (&b, &mut need_b) } else { (&a, &mut need_a) };
        let (next, learned) = sync::respond(side, &message).expect("valid");
        need.extend(learned);
        match next {
            Some(next) => message = next,
            None => break,
        }
    }
    assert_eq!(need_b, model(&b, &a).need);
    assert!(need_a.is_empty());
}

/// A message with every payload kind, and its bytes forever.
fn golden_message() -> SyncMessage {
    let at = |bytes: &[u8]| {
        let mut point = [0u8; 16];
        point[..bytes.len()].copy_from_slice(bytes);
        PackId(point)
    };
    let item = |first: u8, version| Item { id: PackId([first; 16]), version };
    SyncMessage {
        ranges: vec![
            RangePart { upper: Bound::At(at(&[0x10])), payload: Payload::Skip },
            RangePart {
                upper: Bound::At(at(&[0x20, 0x01])),
                payload: Payload::Fingerprint { fingerprint: Fingerprint([0xab; 16]), count: 300 },
            },
            RangePart {
                upper: Bound::At(at(&[0x30])),
                payload: Payload::ItemList { items: vec![item(0x21, 0), item(0x22, 129)] },
            },
            RangePart {
                upper: Bound::End,
                payload: Payload::Diff { items: vec![item(0x40, 7)], missing: vec![PackId([0x50; 16])] },
            },
        ],
    }
}

const GOLDEN_MESSAGE: &str = "010401100002200101ababababababababababababababababac02013002022121212121212121212121212121212100222222222222222222222222222222228101ff030140404040404040404040404040404040070150505050505050505050505050505050";

/// `Fingerprint::of` the items `([1; 16], 2)`, `([2; 16], 3)`, `([0xff; 16], u64::MAX)`.
const GOLDEN_FINGERPRINT: &str = "182552bd8c79bc23657f20a6f7657bb5";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

#[test]
fn golden_bytes() {
    let message = golden_message();
    let bytes = message.encode();
    println!("message: {}", hex(&bytes));
    assert_eq!(hex(&bytes), GOLDEN_MESSAGE, "sync message bytes changed");
    assert_eq!(SyncMessage::decode(&unhex(GOLDEN_MESSAGE)).expect("decodes"), message);
    assert_eq!(message.encoded_len(), bytes.len());

    // The layout by hand: version, range count, then each range.
    let mut expected = vec![1, 4];
    expected.extend([1, 0x10, 0]);
    expected.extend([2, 0x20, 0x01, 1]);
    expected.extend([0xab; 16]);
    expected.extend([0xac, 0x02]);
    expected.extend([1, 0x30, 2, 2]);
    expected.extend([0x21; 16]);
    expected.push(0);
    expected.extend([0x22; 16]);
    expected.extend([0x81, 0x01]);
    expected.extend([0xff, 3, 1]);
    expected.extend([0x40; 16]);
    expected.extend([7, 1]);
    expected.extend([0x50; 16]);
    assert_eq!(hex(&bytes), hex(&expected));

    let set = [
        Item { id: PackId([1; 16]), version: 2 },
        Item { id: PackId([2; 16]), version: 3 },
        Item { id: PackId([0xff; 16]), version: u64::MAX },
    ];
    let fingerprint = Fingerprint::of(&set);
    println!("fingerprint: {}", hex(&fingerprint.0));
    assert_eq!(hex(&fingerprint.0), GOLDEN_FINGERPRINT, "fingerprint definition changed");

    // The definition from the module docs, step by step.
    let mut lanes = [0u64; 4];
    for item in &set {
        let mut h = blake3::Hasher::new_derive_key("smpl/v1/sync-item");
        h.update(&item.id.0);
        h.update(&item.version.to_le_bytes());
        let out = h.finalize();
        for (k, lane) in lanes.iter_mut().enumerate() {
            let bytes: [u8; 8] = out.as_bytes()[8 * k..8 * k + 8].try_into().expect("8 bytes");
            *lane = lane.wrapping_add(u64::from_le_bytes(bytes));
        }
    }
    let mut h = blake3::Hasher::new_derive_key("smpl/v1/sync-fingerprint");
    for lane in lanes {
        h.update(&lane.to_le_bytes());
    }
    h.update(&3u64.to_le_bytes());
    assert_eq!(fingerprint.0[..], h.finalize().as_bytes()[..16]);
}

fn refused(bytes: &[u8]) -> SyncError {
    SyncMessage::decode(bytes).expect_err("refused")
}

#[test]
fn limits_and_malformed_input_are_refused() {
    let golden = golden_message().encode();

    let err = refused(&vec![1; MAX_MESSAGE_BYTES + 1]);
    assert_eq!(err, SyncError::TooLarge { len: MAX_MESSAGE_BYTES + 1, max: MAX_MESSAGE_BYTES });
    assert!(err.to_string().contains("over the limit"), "{err}");
    assert_eq!(refused(&[2, 0]), SyncError::UnknownVersion(2));
    assert!(matches!(refused(&[]), SyncError::Malformed { .. }));
    assert!(matches!(refused(&[1]), SyncError::Malformed { .. }));

    // Gigantic counts: refused from the count, before anything is allocated.
    let giant = [1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    assert!(matches!(refused(&giant), SyncError::TooManyRanges { count: u64::MAX, .. }));
    assert!(matches!(refused(&[1, 0x80, 0x40]), SyncError::TooManyRanges { count: 8192, .. }));
    assert!(matches!(refused(&[1, 0xff, 0x1f]), SyncError::Malformed { .. }), "count beyond the bytes");
    let mut list = vec![1, 1, 0xff, 2, 0xff, 0xff, 0xff, 0xff, 0x0f];
    assert!(matches!(refused(&list), SyncError::TooManyItems { range: 0, .. }));
    list.truncate(4);
    list.extend([0x81, 0x08]); // 1025 items
    assert!(matches!(refused(&list), SyncError::TooManyItems { count: 1025, .. }));
    // A fingerprint may claim any count; answering it allocates nothing for it.
    let mut huge = vec![1, 1, 0xff, 1];
    huge.extend([0; 16]);
    huge.extend([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    let message = SyncMessage::decode(&huge).expect("any count");
    let mine = items(0..100, 2);
    let (answer, _) = Reconciler::new(&mine).respond(&message).expect("answers");
    assert!(answer.is_some());

    let bad = |at: usize, byte: u8| {
        let mut b = golden.clone();
        b[at] = byte;
        refused(&b)
    };
    // Offsets in the golden bytes: 2..5 range 0 (bound, tag), 5..27 range 1 (bound at 6
    // and 7), 27..66 range 2 (its first item at 31), 66.. range 3.
    assert!(matches!(bad(4, 7), SyncError::Malformed { offset: 4, .. }), "unknown tag");
    assert!(matches!(bad(2, 17), SyncError::Malformed { offset: 2, .. }), "bound longer than 16 bytes");
    assert!(matches!(bad(3, 0), SyncError::Malformed { .. }), "bound ends in a zero");
    assert!(matches!(bad(7, 0), SyncError::Malformed { .. }), "bound ends in a zero");
    assert!(matches!(bad(6, 0x0f), SyncError::Invalid { range: 1, .. }), "bound going back");
    assert!(matches!(bad(31, 0x41), SyncError::Invalid { range: 2, .. }), "id out of its range");
    assert!(matches!(bad(48, 0x20), SyncError::Invalid { range: 2, .. }), "ids out of order");
    let mut both = golden.clone();
    both[69..85].copy_from_slice(&[0x50; 16]);
    assert!(matches!(refused(&both), SyncError::Invalid { range: 3, .. }), "id both in items and missing");
    assert!(matches!(bad(8, 9), SyncError::Malformed { .. }), "unknown tag");
    assert!(matches!(bad(1, 5), SyncError::Malformed { .. }), "more ranges than bytes");

    let mut trailing = golden.clone();
    trailing.push(0);
    assert!(matches!(refused(&trailing), SyncError::Malformed { .. }));
    let truncated = &golden[..golden.len() - 1];
    assert!(matches!(refused(truncated), SyncError::Malformed { .. }));

    // Structural rules, through `validate` (what `respond` checks too).
    let invalid = |ranges: Vec<RangePart>| {
        let message = SyncMessage { ranges };
        let err = message.validate().expect_err("invalid");
        assert_eq!(Reconciler::new(&[]).respond(&message).expect_err("refused"), err);
        assert!(SyncMessage::decode(&message.encode()).is_err());
        err
    };
    let part = |n: u8, payload| RangePart { upper: Bound::At(PackId([n; 16])), payload };
    let item = |n: u8| Item { id: PackId([n; 16]), version: 1 };
    invalid(vec![
        part(1, Payload::Skip),
        part(2, Payload::Skip),
        part(3, Payload::ItemList { items: vec![] }),
    ]);
    invalid(vec![part(1, Payload::Skip)]);
    invalid(vec![part(2, Payload::ItemList { items: vec![] }), part(1, Payload::ItemList { items: vec![] })]);
    invalid(vec![part(2, Payload::ItemList { items: vec![] }), part(2, Payload::ItemList { items: vec![] })]);
    invalid(vec![RangePart { upper: Bound::MIN, payload: Payload::ItemList { items: vec![] } }]);
    invalid(vec![RangePart { upper: Bound::End, payload: Payload::Skip }]);
    invalid(vec![part(2, Payload::ItemList { items: vec![item(1), item(1)] })]);
    invalid(vec![part(2, Payload::ItemList { items: vec![item(1), item(0)] })]);
    invalid(vec![part(2, Payload::ItemList { items: vec![item(2)] })]);
    invalid(vec![part(2, Payload::Diff { items: vec![], missing: vec![] })]);
    invalid(vec![part(2, Payload::Diff { items: vec![item(1)], missing: vec![PackId([1; 16])] })]);
    let err = invalid(vec![part(5, Payload::ItemList { items: vec![item(1); MAX_LIST_ITEMS + 1] })]);
    assert!(matches!(err, SyncError::TooManyItems { .. }));
    let ranges = (1..=MAX_RANGES as u32 + 1)
        .map(|n| {
            let mut point = [0u8; 16];
            point[..4].copy_from_slice(&n.to_be_bytes());
            RangePart { upper: Bound::At(PackId(point)), payload: Payload::ItemList { items: vec![] } }
        })
        .collect();
    assert!(matches!(invalid(ranges), SyncError::TooManyRanges { .. }));
}

/// A deterministic generator for the fuzz-style test (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Valid messages of several sessions, to mutate.
fn sample_messages() -> Vec<Vec<u8>> {
    let a = items(0..2000, 2);
    let mut b: Vec<Item> = a.iter().filter(|i| i.id.0[0] % 5 != 0).copied().collect();
    b.extend(items(5000..5100, 3));
    b.sort();
    let (ra, rb) = (Reconciler::new(&a), Reconciler::new(&b));
    let mut out = vec![ra.initiate().encode(), rb.initiate().encode(), golden_message().encode()];
    let mut message = ra.initiate();
    for turn in 1.. {
        let Ok((Some(next), _)) = [&ra, &rb][turn % 2].respond(&message) else { break };
        out.push(next.encode());
        message = next;
    }
    out
}

#[test]
fn random_and_mutated_bytes_never_panic() {
    let mut rng = Rng(0x5eed);
    let sets = [Vec::new(), items(0..20, 1), items(0..3000, 2)];
    let reconcilers: Vec<Reconciler> = sets.iter().map(|s| Reconciler::new(s)).collect();
    let samples = sample_messages();
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..20_000 {
        let bytes: Vec<u8> = if case < 10_000 {
            // Random bytes, half of them behind a plausible header.
            let len = rng.below(if case % 10 == 0 { 4000 } else { 200 });
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if case % 2 == 0 && len >= 2 {
                bytes[0] = 1;
                bytes[1] = rng.below(6) as u8;
            }
            bytes
        } else {
            let mut bytes = samples[rng.below(samples.len())].clone();
            for _ in 0..=rng.below(3) {
                let at = rng.below(bytes.len());
                match rng.below(6) {
                    0 => bytes.truncate(at),
                    1 if !bytes.is_empty() => bytes[at] ^= 1 << rng.below(8),
                    2 if !bytes.is_empty() => bytes[at] = rng.next() as u8,
                    3 => bytes.insert(at, rng.next() as u8),
                    4 if !bytes.is_empty() => {
                        bytes.remove(at);
                    }
                    _ => {
                        let end = (at + rng.below(40)).min(bytes.len());
                        let chunk = bytes[at..end].to_vec();
                        bytes.splice(at..at, chunk);
                    }
                }
            }
            bytes
        };
        match SyncMessage::decode(&bytes) {
            Ok(message) => {
                accepted += 1;
                assert_eq!(message.encode(), bytes, "accepted bytes are canonical");
                for r in &reconcilers {
                    if let Ok((Some(next), _)) = r.respond(&message) {
                        assert!(next.encoded_len() <= MAX_MESSAGE_BYTES);
                        next.validate().expect("answers are valid");
                    }
                }
            }
            Err(e) => {
                refused += 1;
                assert!(!e.to_string().is_empty());
            }
        }
    }
    println!("fuzz: {accepted} accepted, {refused} refused");
    assert!(refused > 10_000 && accepted > 100);
}
