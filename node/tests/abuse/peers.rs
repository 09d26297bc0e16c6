//! Evil peers: real libp2p swarms built with the node's own `build_swarm`, driven
//! by hand, and a probe that the victim keeps answering meanwhile.

use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic};
use libp2p::request_response;
use libp2p::swarm::SwarmEvent;
use libp2p::{PeerId, Swarm};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use smpl_node::Multiaddr;
use smpl_node::index::SearchQuery;
use smpl_node::net::RelayLimits;
use smpl_node::net::behaviour::{Behaviour, BehaviourEvent, LISTINGS_TOPIC, build_swarm};
use smpl_node::net::wire::SyncResponse;
use smpl_protocol::Identity;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use crate::victim::Victim;
use crate::{RESPONSIVE, STEP};

pub type Evil = Swarm<Behaviour>;

pub fn evil_swarm(seed: u64) -> Evil {
    let mut rng = StdRng::seed_from_u64(seed);
    let no_relay = RelayLimits { when_public: false, ..RelayLimits::default() };
    build_swarm(&Identity::from_secret_bytes(rng.random()), false, &no_relay, false).unwrap()
}

/// Answers the victim's sync requests without offering anything.
pub fn answer_quietly(swarm: &mut Evil, event: SwarmEvent<BehaviourEvent>) {
    if let SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
        message: request_response::Message::Request { request, channel, .. },
        ..
    })) = event
    {
        let _ = swarm.behaviour_mut().sync.send_response(channel, SyncResponse::nothing_for(&request));
    }
}

/// Dials the victim and waits until it is subscribed to the listings topic.
pub async fn join_gossip(swarm: &mut Evil, addr: &Multiaddr, victim: PeerId) {
    swarm.dial(addr.clone()).unwrap();
    let topic = IdentTopic::new(LISTINGS_TOPIC).hash();
    timeout(STEP, async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed {
                    peer_id,
                    topic: t,
                })) if peer_id == victim && t == topic => return,
                event => answer_quietly(swarm, event),
            }
        }
    })
    .await
    .expect("the victim never subscribed to the listings topic");
}

/// Runs `swarm` until the victim is in its listings mesh (both sides graft each
/// other at their next heartbeat) and `at_least` has passed since the call.
pub async fn stay_in_mesh(swarm: &mut Evil, victim: PeerId, at_least: Duration) {
    let topic = IdentTopic::new(LISTINGS_TOPIC).hash();
    let start = Instant::now();
    while start.elapsed() < at_least || !swarm.behaviour().gossipsub.mesh_peers(&topic).any(|p| *p == victim)
    {
        assert!(start.elapsed() < at_least + STEP, "the victim never took the peer into its mesh");
        if let Ok(event) = timeout(Duration::from_millis(50), swarm.select_next_some()).await {
            answer_quietly(swarm, event);
        }
    }
}

/// Waits until the victim hangs up on `swarm` (or `limit` passes).
pub async fn until_dropped(swarm: &mut Evil, victim: PeerId, limit: Duration) -> bool {
    let wait = async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } if peer_id == victim => {
                    return;
                }
                event => answer_quietly(swarm, event),
            }
        }
    };
    timeout(limit, wait).await.is_ok()
}

/// Searches the victim and asks its network actor for its peers, over and over, and
/// records the slowest answer; every answer must come within [`RESPONSIVE`].
pub fn probe(victim: &Victim, stop: CancellationToken) -> tokio::task::JoinHandle<(u64, Duration)> {
    let node = victim.node.clone();
    let pack = victim.pack;
    tokio::spawn(async move {
        let query = SearchQuery { text: Some("dusty".into()), packs: true, ..Default::default() };
        let (mut probes, mut slowest) = (0u64, Duration::ZERO);
        while !stop.is_cancelled() {
            let start = Instant::now();
            let hits = timeout(RESPONSIVE, node.search(query.clone()))
                .await
                .expect("a search took too long during the flood")
                .unwrap()
                .hits;
            assert!(hits.iter().any(|h| h.pack_id == pack), "the held pack went missing from search");
            timeout(RESPONSIVE, node.peers())
                .await
                .expect("the network actor took too long to answer during the flood")
                .unwrap();
            slowest = slowest.max(start.elapsed());
            probes += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (probes, slowest)
    })
}
