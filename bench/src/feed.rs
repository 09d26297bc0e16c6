//! A gossip peer for the node harnesses (`scale --via gossip`, `flood
//! --gossip-peers`): a libp2p swarm in this process with a key of its own, as any
//! stranger on the network could run, that joins a node's listings topic and
//! publishes signed envelopes at a fixed rate. It answers the node's sync requests
//! with nothing, so what it brings comes by gossip.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, PublishError};
use libp2p::request_response;
use libp2p::swarm::SwarmEvent;
use smpl_node::net::RelayLimits;
use smpl_node::net::behaviour::{Behaviour, BehaviourEvent, LISTINGS_TOPIC, build_swarm};
use smpl_node::net::wire::SyncResponse;
use smpl_node::{Multiaddr, Store};
use smpl_protocol::{Identity, NodeId};

use crate::nodes::Apart;

/// A running feeder.
pub struct Feeding {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    thread: JoinHandle<Result<()>>,
}

impl Feeding {
    /// Stops publishing and returns how many listings were published.
    pub fn stop(self) -> Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().map_err(|_| anyhow!("the feeder panicked"))??;
        Ok(self.sent.load(Ordering::Relaxed))
    }
}

/// Every listing's envelope stored in the (stopped) node store at `db`, in pack id
/// order.
pub fn load(db: &Path) -> Result<Vec<Vec<u8>>> {
    let store = Store::open(db).with_context(|| format!("opening the seeder's store {}", db.display()))?;
    let ids: Vec<_> = store.pack_seqs()?.into_iter().map(|(pack, _)| pack).collect();
    let mut envelopes = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(512) {
        envelopes.extend(store.envelopes(chunk, usize::MAX)?.0);
    }
    Ok(envelopes)
}

/// Starts publishing `envelopes`, in order, to the node at `target`, `rate` a
/// second, as the peer whose key `seed` makes, on a thread held `apart`.
pub fn start(
    envelopes: Vec<Vec<u8>>,
    target: (Multiaddr, NodeId),
    rate: u32,
    seed: u64,
    apart: Apart,
) -> Result<Feeding> {
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let thread = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || {
            apart.apply_here()?;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(feed(envelopes, target, rate.max(1), seed, &stop, &sent))
        })
    };
    Ok(Feeding { stop, sent, thread })
}

async fn feed(
    envelopes: Vec<Vec<u8>>,
    (addr, node): (Multiaddr, NodeId),
    rate: u32,
    seed: u64,
    stop: &AtomicBool,
    sent: &AtomicU64,
) -> Result<()> {
    let secret = *blake3::hash(format!("smpl scale feeder {seed}").as_bytes()).as_bytes();
    let no_relay = RelayLimits { when_public: false, ..RelayLimits::default() };
    let mut swarm = build_swarm(&Identity::from_secret_bytes(secret), false, &no_relay, false)?;
    let peer = smpl_node::net::peer_id_of(&node).context("the node's id is not a key")?;
    swarm.dial(addr)?;
    let topic = IdentTopic::new(LISTINGS_TOPIC);
    let subscribed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed {
                    peer_id,
                    topic: t,
                })) if peer_id == peer && t == topic.hash() => return,
                event => answer_with_nothing(&mut swarm, event),
            }
        }
    });
    if subscribed.await.is_err() {
        bail!("the node did not subscribe to the listings topic within 30 s");
    }
    let mut pending = envelopes.into_iter();
    let mut next = pending.next();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::Relaxed) {
        tokio::select! {
            _ = tick.tick() => {
                let Some(envelope) = &next else { continue };
                match swarm.behaviour_mut().gossipsub.publish(topic.clone(), envelope.clone()) {
                    Ok(_) => {
                        sent.fetch_add(1, Ordering::Relaxed);
                        next = pending.next();
                    }
                    // The connection's queue is full: this listing goes at the next tick.
                    Err(PublishError::AllQueuesFull(_)) => {}
                    Err(e) => bail!("publishing a listing failed: {e}"),
                }
            }
            event = swarm.select_next_some() => answer_with_nothing(&mut swarm, event),
        }
    }
    Ok(())
}

/// Answers the node's sync requests without offering anything.
fn answer_with_nothing(swarm: &mut libp2p::Swarm<Behaviour>, event: SwarmEvent<BehaviourEvent>) {
    if let SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
        message: request_response::Message::Request { request, channel, .. },
        ..
    })) = event
    {
        let _ = swarm.behaviour_mut().sync.send_response(channel, SyncResponse::nothing_for(&request));
    }
}
