//! The gossip flood: evil peers publish bad listings on `smpl/listings/1` until the
//! victim has verified and dropped [`TARGET`] of them; an observer counts what the
//! victim forwards.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::PeerId;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, PublishError};
use libp2p::swarm::SwarmEvent;
use smpl_node::Multiaddr;
use smpl_node::net::INVALID_FORGIVEN;
use smpl_node::net::behaviour::{BehaviourEvent, LISTINGS_TOPIC};
use smpl_protocol::Signed;
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use crate::listings::{Bad, Forger, fresh_listings, manifest};
use crate::peers::{Evil, answer_quietly, evil_swarm, join_gossip, probe, stay_in_mesh, until_dropped};
use crate::victim::{Victim, load};
use crate::{FLOOD_LIMIT, GOSSIP_ATTACKERS, STEP, TARGET};

/// What one evil gossip peer did.
#[derive(Debug, Default)]
struct GossipAttack {
    /// Messages gossipsub took for sending (queued to the victim's connection).
    sent: u64,
    /// When the victim hung up: messages sent by then, and time since the first.
    banned_after: Option<(u64, Duration)>,
}

/// Joins the victim as a fresh identity and floods it with bad listings until it
/// hangs up or `quota` are sent; `first` go out before the random ones.
async fn gossip_attacker(
    seed: u64,
    (addr, victim): (Multiaddr, PeerId),
    forger: Arc<Mutex<Forger>>,
    quota: u64,
    first: Vec<Vec<u8>>,
) -> GossipAttack {
    let mut swarm = evil_swarm(seed);
    join_gossip(&mut swarm, &addr, victim).await;
    let topic = IdentTopic::new(LISTINGS_TOPIC);
    let mut attack = GossipAttack::default();
    let mut first = first.into_iter();
    let start = Instant::now();
    loop {
        let sending = attack.sent < quota;
        if sending {
            for _ in 0..(quota - attack.sent).min(32) {
                let bytes = first.next().unwrap_or_else(|| forger.lock().unwrap().next());
                match swarm.behaviour_mut().gossipsub.publish(topic.clone(), bytes) {
                    Ok(_) => attack.sent += 1,
                    // The connection's queue is full, or the victim is gone: let the swarm run.
                    Err(PublishError::AllQueuesFull(_) | PublishError::NoPeersSubscribedToTopic) => break,
                    Err(e) => panic!("gossipsub refused to publish: {e}"),
                }
            }
        }
        // Let the swarm work; once done sending, wait for the victim to hang up.
        let wait = if sending { Duration::from_millis(1) } else { STEP.saturating_sub(start.elapsed()) };
        match timeout(wait, swarm.select_next_some()).await {
            Ok(SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. }) if peer_id == victim => {
                attack.banned_after = Some((attack.sent, start.elapsed()));
                return attack;
            }
            Ok(event) => answer_quietly(&mut swarm, event),
            Err(_) if !sending => return attack,
            Err(_) => {}
        }
    }
}

/// A peer that only listens: every message it receives on the listings topic was
/// forwarded by the victim (it is connected to nobody else).
async fn observer(
    mut swarm: Evil,
    victim: PeerId,
    in_mesh: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    stop: CancellationToken,
) {
    let topic = IdentTopic::new(LISTINGS_TOPIC).hash();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {
                let meshed = swarm.behaviour().gossipsub.mesh_peers(&topic).any(|p| *p == victim);
                in_mesh.store(meshed, Ordering::Relaxed);
            }
            event = swarm.select_next_some() => match event {
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                    propagation_source,
                    message_id,
                    ..
                })) => {
                    received.fetch_add(1, Ordering::Relaxed);
                    let _ = swarm.behaviour_mut().gossipsub.report_message_validation_result(
                        &message_id,
                        &propagation_source,
                        MessageAcceptance::Ignore,
                    );
                }
                event => answer_quietly(&mut swarm, event),
            },
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_gossip_is_dropped_and_its_senders_banned() {
    let dir = tempfile::tempdir().unwrap();
    let victim = Victim::start(dir.path()).await;
    victim.assert_consistent().await;
    let before = victim.snapshot().await;
    let forger = Arc::new(Mutex::new(Forger::new(0x5eed_0001, &victim.author, victim.pack)));

    // An observer peer sees whatever the victim forwards: once it has grafted the
    // victim into its mesh, the victim has it in its own.
    let mut watch = evil_swarm(1);
    join_gossip(&mut watch, &victim.addr, victim.peer).await;
    let (in_mesh, forwarded, stop_watch) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)), CancellationToken::new());
    let watcher =
        tokio::spawn(observer(watch, victim.peer, in_mesh.clone(), forwarded.clone(), stop_watch.clone()));
    timeout(STEP, async {
        while !in_mesh.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the observer never joined the victim's mesh");

    let stop_probe = CancellationToken::new();
    let prober = probe(&victim, stop_probe.clone());
    let stats = victim.stats();
    let verified = || load(&stats.gossip_invalid) + load(&stats.gossip_stale) + load(&stats.gossip_new);
    let flood = Instant::now();

    // One evil peer tries to deliver all of them. Gossipsub's own max transmit size
    // (the largest envelope plus 64 KiB, in `build_swarm`) caps one message: a larger
    // one is refused by the sender's gossipsub (`MessageTooLarge`) and would be by the
    // victim's decoder, so the largest bad listings sent are just over the envelope
    // limit, and the largest manifest with a forged signature.
    let huge = {
        let mut forger = forger.lock().unwrap();
        vec![forger.make(Bad::Huge), forger.make(Bad::Huge)]
    };
    let target = (victim.addr.clone(), victim.peer);
    let first = gossip_attacker(2, target.clone(), forger.clone(), TARGET, huge).await;
    let first_verified = verified();
    let (first_sent_before_ban, first_ban_time) =
        first.banned_after.expect("the first evil peer was never disconnected");
    println!(
        "gossip: evil peer 1 sent {} bad listings; the victim verified and refused {first_verified} of them \
         and disconnected it after {first_sent_before_ban} sent, {first_ban_time:?} into its flood",
        first.sent
    );

    // It was banned before delivering them all: the rest come from fresh identities,
    // a few at a time, until the victim has verified and dropped TARGET in all. Each
    // sends a few dozen: the victim verifies ten to twenty before it bans the sender
    // (its third rejection bans it; the rest were already being verified), and
    // drops the rest unverified.
    let mut attackers = JoinSet::new();
    let (mut identities, mut sent, mut unbanned) = (1u64, first.sent, 0u64);
    let mut bans = vec![first_sent_before_ban];
    loop {
        if verified() < TARGET {
            assert!(flood.elapsed() < FLOOD_LIMIT, "only {} of {TARGET} verified in time", verified());
            while attackers.len() < GOSSIP_ATTACKERS {
                identities += 1;
                attackers.spawn(gossip_attacker(
                    1000 + identities,
                    target.clone(),
                    forger.clone(),
                    48,
                    vec![],
                ));
            }
        }
        let Some(attack) = timeout(STEP, attackers.join_next()).await.expect("an evil peer hung") else {
            break;
        };
        let attack = attack.unwrap();
        sent += attack.sent;
        match attack.banned_after {
            Some((n, _)) => bans.push(n),
            None => unbanned += 1,
        }
    }
    let took = flood.elapsed();
    stop_probe.cancel();
    let (probes, slowest) = timeout(STEP, prober).await.expect("the probe hung").unwrap();

    // Every bad listing that reached verification was dropped: none stored, none
    // forwarded, the store and the index as they were.
    let (invalid, stale, new) =
        (load(&stats.gossip_invalid), load(&stats.gossip_stale), load(&stats.gossip_new));
    let (made, replays) = forger.lock().unwrap().tally("gossip");
    println!(
        "gossip: {identities} evil identities sent {sent} bad listings ({made} forged) in {took:?}; the victim \
         verified {} (invalid {invalid}, stale replays {stale}, new {new}) and dropped the other {} \
         unverified (a banned sender's, or still queued when it was cut off); banned {} peers, the \
         evil side saw a median of {} sent before its ban; {probes} probes, slowest {slowest:?}",
        invalid + stale + new,
        sent.saturating_sub(invalid + stale + new),
        load(&stats.banned),
        median(&mut bans),
    );
    assert_eq!(new, 0, "a bad listing was accepted");
    assert!(invalid + stale >= TARGET);
    assert!(stale <= replays, "more listings were stale than replays were sent");
    assert_eq!(unbanned, 0, "an evil peer that sent bad listings was never disconnected");
    assert!(load(&stats.banned) >= identities, "not every evil peer was banned");
    assert!(probes > 0);
    assert_eq!(victim.snapshot().await, before, "the store or index changed");
    victim.assert_consistent().await;
    // Give the victim a heartbeat to forward anything it wrongly accepted.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(forwarded.load(Ordering::Relaxed), 0, "the victim forwarded a bad listing");
    let peers = victim.node.peers().await.unwrap();
    assert_eq!(peers.len(), 1, "evil peers are still connected: {peers:?}");

    // A banned identity cannot come back.
    let mut again = evil_swarm(2); // the first evil peer's identity
    again.dial(victim.addr.clone()).unwrap();
    assert!(until_dropped(&mut again, victim.peer, STEP).await, "a banned peer reconnected");

    // And the victim still takes and forwards a good listing from an honest peer.
    let mut honest = evil_swarm(3);
    join_gossip(&mut honest, &victim.addr, victim.peer).await;
    let good = manifest(&victim.author.node_id(), "fresh-loops", 1, "Fresh Loops");
    let envelope = good.sign(&victim.author).unwrap().into_bytes();
    honest.behaviour_mut().gossipsub.publish(IdentTopic::new(LISTINGS_TOPIC), envelope).unwrap();
    timeout(STEP, async {
        while forwarded.load(Ordering::Relaxed) == 0 {
            tokio::select! {
                event = honest.select_next_some() => answer_quietly(&mut honest, event),
                _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
        }
    })
    .await
    .expect("the victim did not forward a good listing after the flood");
    assert_eq!(load(&stats.gossip_new), 1);
    assert!(victim.node.store().manifest(&good.pack_id).unwrap().is_some());

    stop_watch.cancel();
    timeout(STEP, watcher).await.expect("the observer hung").unwrap();
    victim.shutdown().await;
}

fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

/// Valid listings one peer pushes as fast as gossipsub sends them.
const VALID_FLOOD: u64 = 6_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_peer_s_flood_of_valid_listings_is_held_to_its_rate_and_others_get_through() {
    let dir = tempfile::tempdir().unwrap();
    let victim = Victim::start(dir.path()).await;
    let stats = victim.stats();
    // From 60 fresh keys.
    let envelopes = fresh_listings(0, VALID_FLOOD, 100, "Valid Spam");
    let mut flooder = evil_swarm(11);
    join_gossip(&mut flooder, &victim.addr, victim.peer).await;
    let topic = IdentTopic::new(LISTINGS_TOPIC);
    let start = Instant::now();
    let mut envelopes = envelopes.into_iter().peekable();
    let mut unsent = 0;
    while envelopes.peek().is_some() {
        while let Some(bytes) = envelopes.peek() {
            match flooder.behaviour_mut().gossipsub.publish(topic.clone(), bytes.clone()) {
                Ok(_) => {
                    envelopes.next();
                }
                Err(PublishError::AllQueuesFull(_)) => {
                    // Gossipsub has taken it as seen all the same: it cannot go again.
                    envelopes.next();
                    unsent += 1;
                    break;
                }
                Err(e) => panic!("gossipsub refused to publish: {e}"),
            }
        }
        if let Ok(event) = timeout(Duration::from_millis(1), flooder.select_next_some()).await {
            answer_quietly(&mut flooder, event);
        }
        assert!(start.elapsed() < FLOOD_LIMIT, "the flood did not go out in time");
    }
    let sent_in = start.elapsed();
    let sent = VALID_FLOOD - unsent;
    // Every listing is either checked (new) or dropped unchecked.
    let seen = || {
        load(&stats.gossip_new)
            + load(&stats.gossip_stale)
            + load(&stats.gossip_dropped)
            + load(&stats.gossip_rate_limited)
    };
    timeout(STEP, async {
        while seen() < sent {
            if let Ok(event) = timeout(Duration::from_millis(10), flooder.select_next_some()).await {
                answer_quietly(&mut flooder, event);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {sent} listings reached the victim", seen()));
    let (new, limited) = (load(&stats.gossip_new), load(&stats.gossip_rate_limited));
    println!(
        "valid flood from one peer, sent in {sent_in:?}: {new} checked and stored, {limited} over the peer's \
         rate, {} over the validation queue",
        load(&stats.gossip_dropped)
    );
    assert!(limited > 0, "the peer's rate never held it back ({new} stored)");
    // At most the burst plus the refill over the time it took (with a second's slack).
    let allowed = 1_000 + 250 * (start.elapsed().as_secs() + 1);
    assert!(new <= allowed, "{new} stored from one peer, over {allowed}");
    assert_eq!(load(&stats.gossip_invalid), 0, "valid listings cost no score");
    assert_eq!(victim.node.status().await.unwrap().dropped.gossip_rate_limited, limited);

    // Another peer has its own share: its listing is taken at once.
    let mut honest = evil_swarm(12);
    join_gossip(&mut honest, &victim.addr, victim.peer).await;
    let good = manifest(&victim.author.node_id(), "fresh-loops", 1, "Fresh Loops");
    let envelope = good.sign(&victim.author).unwrap().into_bytes();
    honest.behaviour_mut().gossipsub.publish(topic, envelope).unwrap();
    timeout(STEP, async {
        while victim.node.store().manifest(&good.pack_id).unwrap().is_none() {
            tokio::select! {
                event = honest.select_next_some() => answer_quietly(&mut honest, event),
                event = flooder.select_next_some() => answer_quietly(&mut flooder, event),
                _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
        }
    })
    .await
    .expect("an honest peer's listing did not get through after the flood");
    victim.shutdown().await;
}

/// Listings each of [`CROWD`] peers floods with, all within a peer's burst.
const CROWD_LISTINGS: u64 = 1_000;
const CROWD: u64 = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_from_an_author_dealt_with_passes_a_full_checking_queue() {
    let dir = tempfile::tempdir().unwrap();
    let victim = Victim::start(dir.path()).await;
    let stats = victim.stats();
    // The victim has fetched a pack of this author: an author it has dealt with.
    victim.node.budget().keep(victim.pack, victim.author.node_id());
    let topic = IdentTopic::new(LISTINGS_TOPIC);

    // Peers of their own keys flood valid listings of fresh authors at wire speed,
    // more at once than the victim checks.
    let stop = CancellationToken::new();
    let mut crowd = JoinSet::new();
    for peer in 0..CROWD {
        let envelopes = fresh_listings(1 + peer, CROWD_LISTINGS, 10, "Crowd Spam");
        let (target, topic, stop) = ((victim.addr.clone(), victim.peer), topic.clone(), stop.clone());
        crowd.spawn(async move {
            let mut flooder = evil_swarm(40 + peer);
            join_gossip(&mut flooder, &target.0, target.1).await;
            for bytes in envelopes {
                // A full queue to the victim takes the listing as sent all the same.
                let _ = flooder.behaviour_mut().gossipsub.publish(topic.clone(), bytes);
                if let Ok(event) = timeout(Duration::from_micros(100), flooder.select_next_some()).await {
                    answer_quietly(&mut flooder, event);
                }
            }
            while !stop.is_cancelled() {
                if let Ok(event) = timeout(Duration::from_millis(10), flooder.select_next_some()).await {
                    answer_quietly(&mut flooder, event);
                }
            }
        });
    }
    timeout(STEP, async {
        while load(&stats.gossip_dropped) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the crowd never filled the checking queue");

    // While the queue is full, the author the victim dealt with publishes.
    let mut honest = evil_swarm(13);
    join_gossip(&mut honest, &victim.addr, victim.peer).await;
    let good = manifest(&victim.author.node_id(), "through-the-crowd", 1, "Through The Crowd");
    honest.behaviour_mut().gossipsub.publish(topic, good.sign(&victim.author).unwrap().into_bytes()).unwrap();
    let published = Instant::now();
    let indexed = || victim.node.index().packs().unwrap().iter().any(|(pack, _)| *pack == good.pack_id);
    timeout(STEP, async {
        while !indexed() {
            tokio::select! {
                event = honest.select_next_some() => answer_quietly(&mut honest, event),
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
    })
    .await
    .expect("the listing of an author the victim dealt with was lost in the flood");
    let took = published.elapsed();
    let dropped_then = load(&stats.gossip_dropped);
    // The queue was still full after it: it did not wait for the flood to pass.
    timeout(STEP, async {
        while load(&stats.gossip_dropped) == dropped_then && !crowd.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .ok();
    println!(
        "crowd of {CROWD} peers: the dealt-with author's listing was indexed {took:?} after it was published; \
         {dropped_then} crowd listings dropped unchecked by then, {} in all",
        load(&stats.gossip_dropped)
    );
    assert!(load(&stats.gossip_dropped) > dropped_then, "the flood was over before the listing arrived");
    stop.cancel();
    while crowd.join_next().await.is_some() {}
    victim.shutdown().await;
}

/// A peer that has stood in the victim's mesh a while has a gossipsub score (its
/// time in the mesh) far above what a few invalid listings take away, so the score
/// alone would never graylist it: the victim still bans it at its third invalid
/// listing in quick succession, and not before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_long_in_the_mesh_is_banned_at_its_third_invalid_listing() {
    const IN_MESH: Duration = Duration::from_secs(4);
    let dir = tempfile::tempdir().unwrap();
    let victim = Victim::start(dir.path()).await;
    let before = victim.snapshot().await;
    let stats = victim.stats();
    let mut forger = Forger::new(0x5eed_0003, &victim.author, victim.pack);

    let mut evil = evil_swarm(4);
    join_gossip(&mut evil, &victim.addr, victim.peer).await;
    stay_in_mesh(&mut evil, victim.peer, IN_MESH).await;
    let topic = IdentTopic::new(LISTINGS_TOPIC);

    // Two invalid listings are forgiven: the victim checks them and stays connected.
    for _ in 0..INVALID_FORGIVEN {
        let bad = forger.make(Bad::NotTheAuthor);
        evil.behaviour_mut().gossipsub.publish(topic.clone(), bad).unwrap();
    }
    let checked = timeout(STEP, async {
        while load(&stats.gossip_invalid) < u64::from(INVALID_FORGIVEN) {
            if let Ok(event) = timeout(Duration::from_millis(20), evil.select_next_some()).await {
                answer_quietly(&mut evil, event);
            }
        }
    });
    checked.await.expect("the victim never checked the invalid listings");
    assert!(!until_dropped(&mut evil, victim.peer, Duration::from_secs(2)).await, "banned before its third");

    // The third bans it.
    let bad = forger.make(Bad::FlippedSignature);
    evil.behaviour_mut().gossipsub.publish(topic, bad).unwrap();
    assert!(until_dropped(&mut evil, victim.peer, STEP).await, "the evil peer was never disconnected");
    assert_eq!(load(&stats.gossip_invalid), u64::from(INVALID_FORGIVEN) + 1);
    assert_eq!(load(&stats.banned), 1);
    assert_eq!(victim.snapshot().await, before, "the store or index changed");
    victim.shutdown().await;
}

/// Listings are few (a producer publishes now and then), so a mesh peer delivers
/// next to none: an honest peer that stood in the victim's mesh past the time
/// gossipsub starts to count its deliveries (5 s), then leaves the mesh (it
/// unsubscribes, which prunes it), has done nothing wrong and stays connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_leaves_a_quiet_mesh_is_not_banned() {
    const IN_MESH: Duration = Duration::from_secs(7);
    let dir = tempfile::tempdir().unwrap();
    let victim = Victim::start(dir.path()).await;
    let stats = victim.stats();

    let mut peer = evil_swarm(5);
    join_gossip(&mut peer, &victim.addr, victim.peer).await;
    stay_in_mesh(&mut peer, victim.peer, IN_MESH).await;
    assert!(peer.behaviour_mut().gossipsub.unsubscribe(&IdentTopic::new(LISTINGS_TOPIC)));
    assert!(
        !until_dropped(&mut peer, victim.peer, Duration::from_secs(4)).await,
        "the victim hung up on a peer for leaving its mesh"
    );
    assert_eq!(load(&stats.banned), 0);
    victim.shutdown().await;
}
