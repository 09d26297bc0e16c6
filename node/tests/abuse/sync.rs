//! The sync flood: evil peers claim thousands of newer listings and answer the
//! victim's fetches with bad envelopes, and garbage `Reconcile` requests come in.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::SwarmEvent;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_bytes::ByteBuf;
use smpl_node::net::behaviour::BehaviourEvent;
use smpl_node::net::wire::{MAX_FETCH_IDS, SyncRequest, SyncResponse};
use smpl_protocol::PackId;
use smpl_protocol::sync::{Bound, Item, MAX_LIST_ITEMS, MAX_MESSAGE_BYTES, Payload, RangePart, SyncMessage};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use crate::listings::{Bad, Forger};
use crate::peers::{Evil, answer_quietly, evil_swarm, probe};
use crate::victim::{Victim, load};
use crate::{FLOOD_LIMIT, HELD_SEQ, STEP, TARGET};

/// A reconciliation answer claiming `count` listings the victim lacks, and a newer
/// version of its own pack: `Diff` ranges of at most `MAX_LIST_ITEMS` items each.
fn claim_newer(rng: &mut StdRng, held: PackId, count: usize) -> Vec<u8> {
    let mut items: Vec<Item> = (0..count).map(|_| Item { id: PackId(rng.random()), version: 2 }).collect();
    items.push(Item::manifest(held, HELD_SEQ + 1));
    items.sort();
    items.dedup_by_key(|i| i.id);
    let chunks: Vec<&[Item]> = items.chunks(MAX_LIST_ITEMS - 24).collect();
    let ranges = chunks
        .iter()
        .enumerate()
        .map(|(k, chunk)| RangePart {
            upper: chunks.get(k + 1).map_or(Bound::End, |next| Bound::At(next[0].id)),
            payload: Payload::Diff { items: chunk.to_vec(), missing: vec![] },
        })
        .collect();
    let message = SyncMessage { ranges };
    message.validate().unwrap();
    let bytes = message.encode();
    assert!(bytes.len() <= MAX_MESSAGE_BYTES);
    bytes
}

/// What one evil sync peer did.
#[derive(Debug, Default)]
struct SyncAttack {
    fetches: u64,
    served: u64,
    dropped: bool,
}

/// Answers the victim's sync: `Hello` with no addresses, its first `Reconcile` with a
/// claim of `claim` newer listings, each `Fetch` with bad envelopes, one per id asked.
async fn sync_attacker(
    mut swarm: Evil,
    victim: &Victim,
    forger: Arc<Mutex<Forger>>,
    claim: usize,
    first: Vec<Vec<u8>>,
    seed: u64,
) -> SyncAttack {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut attack = SyncAttack::default();
    let mut first = first.into_iter();
    let mut claimed = false;
    swarm.dial(victim.addr.clone()).unwrap();
    let run = async {
        loop {
            let event = swarm.select_next_some().await;
            match event {
                SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. }
                    if peer_id == victim.peer =>
                {
                    attack.dropped = true;
                    return;
                }
                SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                    message: request_response::Message::Request { request, channel, .. },
                    ..
                })) => {
                    let response = match request {
                        SyncRequest::Hello { .. } => {
                            SyncResponse::Hello { iroh: vec![], relay: None, home: None }
                        }
                        SyncRequest::Reconcile(_) if !claimed => {
                            claimed = true;
                            SyncResponse::Reconcile(Some(ByteBuf::from(claim_newer(
                                &mut rng,
                                victim.pack,
                                claim,
                            ))))
                        }
                        SyncRequest::Reconcile(_) => SyncResponse::Reconcile(None),
                        SyncRequest::Fetch(ids) => {
                            attack.fetches += 1;
                            let mut forger = forger.lock().unwrap();
                            let envelopes: Vec<ByteBuf> = ids
                                .iter()
                                .map(|_| ByteBuf::from(first.next().unwrap_or_else(|| forger.next())))
                                .collect();
                            attack.served += envelopes.len() as u64;
                            SyncResponse::Envelopes(envelopes)
                        }
                        other => SyncResponse::nothing_for(&other),
                    };
                    let _ = swarm.behaviour_mut().sync.send_response(channel, response);
                }
                _ => {}
            }
        }
    };
    // A peer that is never dropped gives up after a while.
    let _ = timeout(Duration::from_secs(5), run).await;
    attack
}

/// Garbage for `Reconcile` requests: each one is refused by the decoder.
fn garbage_reconcile(rng: &mut StdRng, n: u64) -> Vec<u8> {
    let valid = |rng: &mut StdRng| {
        let mut items: Vec<Item> =
            (0..rng.random_range(1..40)).map(|_| Item { id: PackId(rng.random()), version: 2 }).collect();
        items.sort();
        items.dedup_by_key(|i| i.id);
        SyncMessage { ranges: vec![RangePart { upper: Bound::End, payload: Payload::ItemList { items } }] }
    };
    let random = |rng: &mut StdRng, len: usize| -> Vec<u8> { (0..len).map(|_| rng.random()).collect() };
    loop {
        let bytes = match n % 12 {
            // Random bytes, with and without the version byte.
            0 => {
                let len = rng.random_range(0..4000);
                random(rng, len)
            }
            1 => {
                let len = rng.random_range(0..4000);
                let mut bytes = vec![1];
                bytes.extend(random(rng, len));
                bytes
            }
            // A valid message cut short, or followed by more bytes.
            2 => {
                let bytes = valid(rng).encode();
                bytes[..rng.random_range(0..bytes.len())].to_vec()
            }
            3 => {
                let mut bytes = valid(rng).encode();
                let len = rng.random_range(1..64);
                bytes.extend(random(rng, len));
                bytes
            }
            // Counts over the limits.
            4 => vec![1, 0x81, 0x20 + rng.random_range(0..0x50)],
            5 => {
                let mut bytes = vec![1, 1, 0xff, 2];
                let over = (MAX_LIST_ITEMS as u16 + rng.random_range(1..5000)).to_le_bytes();
                bytes.extend([over[0] | 0x80, over[1] << 1 | over[0] >> 7]);
                bytes
            }
            // Ids out of order, or outside their range.
            6 => {
                let mut message = valid(rng);
                if let Payload::ItemList { items } = &mut message.ranges[0].payload {
                    items.push(items[0]);
                }
                message.encode()
            }
            7 => {
                let mut message = valid(rng);
                let Payload::ItemList { items } = &message.ranges[0].payload else { unreachable!() };
                message.ranges[0].upper = Bound::At(items[items.len() - 1].id);
                message.encode()
            }
            // Non-canonical forms: a padded varint, a bound ending in zero.
            8 => vec![1, 0x81, 0x00, 0xff, 0],
            9 => vec![1, 1, 2, rng.random_range(1..=255), 0, 0],
            // Skips in the wrong places, an empty diff, an unknown tag.
            10 => match rng.random_range(0..3) {
                0 => vec![1, 1, 0xff, 0],
                1 => vec![1, 1, 0xff, 3, 0, 0],
                _ => vec![1, 1, 0xff, rng.random_range(4..=255)],
            },
            // Over the size limit.
            _ => {
                let mut bytes = valid(rng).encode();
                bytes.resize(MAX_MESSAGE_BYTES + rng.random_range(1..1000), 0);
                bytes
            }
        };
        if SyncMessage::decode(&bytes).is_err() {
            return bytes;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_sync_answers_and_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let victim = Victim::start(dir.path()).await;
    victim.assert_consistent().await;
    let before = victim.snapshot().await;
    let stats = victim.stats();
    let stop_probe = CancellationToken::new();
    let prober = probe(&victim, stop_probe.clone());
    let start = Instant::now();

    // Garbage `Reconcile` requests, 32 in flight at a time: each answered `Refused`.
    let mut rng = StdRng::seed_from_u64(0x5eed_0002);
    let mut asker = evil_swarm(10);
    asker.dial(victim.addr.clone()).unwrap();
    let garbage = 600u64;
    let (mut asked, mut refused) = (0u64, 0u64);
    let mut in_flight: HashSet<OutboundRequestId> = HashSet::new();
    let mut connected = false;
    timeout(STEP, async {
        while refused < garbage {
            while connected && asked < garbage && in_flight.len() < 32 {
                let bytes = garbage_reconcile(&mut rng, asked);
                let request = SyncRequest::Reconcile(ByteBuf::from(bytes));
                in_flight.insert(asker.behaviour_mut().sync.send_request(&victim.peer, request));
                asked += 1;
            }
            match asker.select_next_some().await {
                SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == victim.peer => {
                    connected = true
                }
                SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                    message: request_response::Message::Response { request_id, response },
                    ..
                })) if in_flight.remove(&request_id) => match response {
                    SyncResponse::Refused(_) => refused += 1,
                    other => panic!("garbage request {asked} got {other:?}"),
                },
                SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::OutboundFailure {
                    error,
                    ..
                })) => panic!("a garbage request failed instead of being refused: {error}"),
                event => answer_quietly(&mut asker, event),
            }
        }
    })
    .await
    .expect("the victim stopped answering garbage requests");
    // The first ones are read and refused as garbage; past the peer's rate (a
    // burst of 200, then 20 a second) they are refused unread, as "busy".
    let limited = load(&stats.sync_rate_limited);
    println!(
        "sync: {refused} garbage Reconcile requests, all refused ({limited} over the peer's rate), in {:?}",
        start.elapsed()
    );
    assert!(limited > 0 && limited < garbage, "{limited} of {garbage} refused over the peer's rate");
    drop(asker);

    // Evil peers claim thousands of newer listings and answer every fetch with bad
    // envelopes; fresh identities come until the victim has verified TARGET of them.
    let forger = Arc::new(Mutex::new(Forger::new(0x5eed_0003, &victim.author, victim.pack)));
    let huge = {
        let mut forger = forger.lock().unwrap();
        vec![forger.make(Bad::Huge), forger.make(Bad::Huge)]
    };
    let mut first = huge;
    let verified = || load(&stats.fetched_invalid) + load(&stats.fetched_stale);
    let flood = Instant::now();
    let (mut identities, mut fetches, mut served, mut dropped) = (0u64, 0u64, 0u64, 0u64);
    while verified() < TARGET {
        assert!(flood.elapsed() < FLOOD_LIMIT, "only {} of {TARGET} verified in time", verified());
        identities += 1;
        // The first claims over ten thousand listings, so the victim asks for them in
        // twenty-one fetches. But the victim bans a peer once it verified an answer
        // with invalid listings, and answers still in flight then go unread: fresh
        // identities claim fewer, which wastes less forging.
        let claim = if identities == 1 { 20 * MAX_FETCH_IDS } else { 3 * MAX_FETCH_IDS };
        let swarm = evil_swarm(2000 + identities);
        let attack =
            sync_attacker(swarm, &victim, forger.clone(), claim, std::mem::take(&mut first), identities)
                .await;
        if identities == 1 {
            println!(
                "sync: evil peer 1 was asked {} fetches and served {} bad envelopes; dropped: {}",
                attack.fetches, attack.served, attack.dropped
            );
        }
        fetches += attack.fetches;
        served += attack.served;
        dropped += u64::from(attack.dropped);
    }
    let took = flood.elapsed();
    // Let the last fetched batches finish verification.
    let settled = timeout(STEP, async {
        while load(&stats.fetched) > verified() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        settled.is_ok(),
        "of {} fetched listings {} were refused, {} stale, and the rest taken as new",
        load(&stats.fetched),
        load(&stats.fetched_invalid),
        load(&stats.fetched_stale)
    );
    stop_probe.cancel();
    let (probes, slowest) = timeout(STEP, prober).await.expect("the probe hung").unwrap();

    let (invalid, stale, fetched) =
        (load(&stats.fetched_invalid), load(&stats.fetched_stale), load(&stats.fetched));
    let (made, replays) = forger.lock().unwrap().tally("sync");
    println!(
        "sync: {identities} evil identities were asked {fetches} fetches and served {served} bad envelopes \
         ({made} forged) in {took:?}; the victim received {fetched} and verified them all (invalid \
         {invalid}, stale replays {stale}); {dropped} evil peers dropped, banned {}; {probes} probes, \
         slowest {slowest:?}",
        load(&stats.banned),
    );
    assert_eq!(fetched, invalid + stale, "a fetched bad listing was accepted");
    assert_eq!(dropped, identities, "an evil sync peer was never disconnected");
    assert!(load(&stats.banned) >= identities, "not every evil sync peer was banned");
    assert!(invalid + stale >= TARGET);
    assert!(stale <= replays, "more listings were stale than replays were sent");
    assert!(probes > 0);
    assert_eq!(victim.snapshot().await, before, "the store or index changed");
    victim.assert_consistent().await;

    // The victim still serves its own listing, unchanged, to an honest peer.
    let mut honest = evil_swarm(4);
    honest.dial(victim.addr.clone()).unwrap();
    let request =
        honest.behaviour_mut().sync.send_request(&victim.peer, SyncRequest::Fetch(vec![victim.pack]));
    let answer = timeout(STEP, async {
        loop {
            match honest.select_next_some().await {
                SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                    message: request_response::Message::Response { request_id, response },
                    ..
                })) if request_id == request => return response,
                event => answer_quietly(&mut honest, event),
            }
        }
    })
    .await
    .expect("the victim did not answer an honest fetch");
    match answer {
        SyncResponse::Envelopes(envelopes) => {
            assert_eq!(envelopes.into_iter().map(|e| e.into_vec()).collect::<Vec<_>>(), before.envelope)
        }
        other => panic!("an honest fetch got {other:?}"),
    }

    victim.shutdown().await;
}

/// A peer that answers every round with the same message the victim cannot decode:
/// no round with it ends at its first answer, since none was ever taken in whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_answer_that_does_not_decode_never_settles_a_round() {
    let dir = tempfile::tempdir().unwrap();
    let victim = Victim::start(dir.path()).await;
    let garbage = garbage_reconcile(&mut StdRng::seed_from_u64(7), 0);
    let mut swarm = evil_swarm(7_001);
    swarm.dial(victim.addr.clone()).unwrap();
    let mut rounds = 0;
    let answered = async {
        while rounds < 4 {
            if let SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                message: request_response::Message::Request { request, channel, .. },
                ..
            })) = swarm.select_next_some().await
            {
                let response = match request {
                    SyncRequest::Reconcile(_) => {
                        rounds += 1;
                        SyncResponse::Reconcile(Some(ByteBuf::from(garbage.clone())))
                    }
                    other => SyncResponse::nothing_for(&other),
                };
                let _ = swarm.behaviour_mut().sync.send_response(channel, response);
            }
        }
    };
    // Rounds after the first are asked for by hand.
    let ask = async {
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            victim.network().sync_all().await.unwrap();
        }
    };
    tokio::select! {
        result = timeout(STEP, answered) => result.expect("the victim stopped reconciling"),
        _ = ask => unreachable!(),
    }
    assert_eq!(load(&victim.stats().rounds_settled), 0, "a round settled on an answer that does not decode");
    victim.shutdown().await;
}
