//! Unit tests of the reconciler, with tiny budgets so that answers are cut short and
//! carried over to the next round all the time.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

/// Items from `(id byte pairs, version)`; ids spread over the space.
fn set(pairs: &BTreeMap<u16, u64>) -> Vec<Item> {
    pairs
        .iter()
        .map(|(k, v)| {
            let mut id = [0u8; 16];
            id[..2].copy_from_slice(&k.to_be_bytes());
            id[15] = (*k % 7) as u8;
            Item { id: PackId(id), version: *v }
        })
        .collect()
}

/// The exact outcome for the side holding `mine` against `theirs`.
fn model(mine: &[Item], theirs: &[Item]) -> Outcome {
    let mut out = Outcome::default();
    for step in merge(mine, theirs) {
        match step {
            Step::Ours(o) => out.have.push(o.id),
            Step::Theirs(t) => out.need.push(t),
            Step::Both(o, t) if t.version > o.version => out.need.push(t),
            Step::Both(o, t) if o.version > t.version => out.have.push(o.id),
            Step::Both(..) => {}
        }
    }
    out
}

/// Runs a session through encode and decode; returns both outcomes and the number of
/// messages.
fn run(a: &Reconciler, b: &Reconciler, max_messages: usize) -> (Outcome, Outcome, usize) {
    let mut outcomes = [Outcome::default(), Outcome::default()];
    let mut bytes = a.initiate().encode();
    let mut messages = 1;
    let mut turn = 1;
    loop {
        assert!(bytes.len() <= MAX_MESSAGE_BYTES);
        let message = SyncMessage::decode(&bytes).expect("own messages decode");
        assert_eq!(message.encode(), bytes, "canonical");
        let side = if turn == 0 { a } else { b };
        let (next, learned) = side.respond(&message).expect("own messages are valid");
        let acc = &mut outcomes[turn];
        acc.need.extend(learned.need);
        acc.have.extend(learned.have);
        let Some(next) = next else { break };
        bytes = next.encode();
        messages += 1;
        assert!(messages <= max_messages, "no end after {messages} messages");
        turn = 1 - turn;
    }
    let [mut x, mut y] = outcomes;
    for o in [&mut x, &mut y] {
        o.merge(Outcome::default());
    }
    (x, y, messages)
}

const TINY: Budget = Budget { bytes: 700, ranges: 6, list_items: 3, rest_parts: 2 };

fn versions() -> impl Strategy<Value = BTreeMap<u16, u64>> {
    prop::collection::btree_map(0u16..600, 0u64..4, 0..250)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn tiny_budgets_still_reconcile(a in versions(), b in versions()) {
        let (a, b) = (set(&a), set(&b));
        let (ra, rb) = (Reconciler::with_budget(&a, TINY), Reconciler::with_budget(&b, TINY));
        let (oa, ob, _) = run(&ra, &rb, 2000);
        prop_assert_eq!(oa, model(&a, &b));
        prop_assert_eq!(ob, model(&b, &a));
    }
}

#[test]
fn unsorted_input_is_normalised() {
    let id = |b| PackId([b; 16]);
    let items = [
        Item { id: id(3), version: 1 },
        Item { id: id(1), version: 4 },
        Item { id: id(3), version: 7 },
        Item { id: id(2), version: 0 },
    ];
    let r = Reconciler::new(&items);
    assert_eq!(
        r.items(),
        &[Item { id: id(1), version: 4 }, Item { id: id(2), version: 0 }, Item { id: id(3), version: 7 }]
    );
}

#[test]
fn diff_is_cut_into_lists_and_rounds() {
    let mine: Vec<Item> = set(&(0..400).map(|k| (k, 2)).collect());
    let r = Reconciler::with_budget(&mine, Budget { bytes: 2000, ranges: 64, list_items: 10, rest_parts: 2 });
    let empty = Reconciler::new(&[]);
    // The empty side opens with an empty list; the answer is cut into lists of 10 and
    // ends with a fingerprint of the rest.
    let (answer, learned) = r.respond(&empty.initiate()).unwrap();
    let answer = answer.unwrap();
    assert!(answer.encoded_len() <= 2000, "{}", answer.encoded_len());
    let lists = &answer.ranges[..answer.ranges.len() - 1];
    assert!(lists.len() > 2);
    for part in lists {
        let Payload::Diff { items, missing } = &part.payload else { panic!("{part:?}") };
        assert!(items.len() <= 10 && missing.is_empty());
    }
    let rest = answer.ranges.last().unwrap();
    assert_eq!(rest.upper, Bound::End);
    assert!(matches!(rest.payload, Payload::Fingerprint { .. }));
    // What it learned is exactly what it listed.
    let listed: Vec<PackId> = lists
        .iter()
        .flat_map(|p| match &p.payload {
            Payload::Diff { items, .. } => items.iter().map(|i| i.id).collect(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(learned.have, listed);
    assert!(learned.need.is_empty());
}

#[test]
fn equal_lists_answer_nothing() {
    let mine = set(&(0..10).map(|k| (k * 50, 2)).collect());
    let r = Reconciler::new(&mine);
    let (answer, learned) = r.respond(&r.initiate()).unwrap();
    assert_eq!(answer, None);
    assert!(learned.is_empty());
}
