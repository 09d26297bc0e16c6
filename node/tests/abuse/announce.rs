//! `Announce`: a node sends the listings it signs straight to its peers, and takes
//! an announced listing only from the peer that signed it.

use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub;
use libp2p::request_response;
use libp2p::swarm::SwarmEvent;
use serde_bytes::ByteBuf;
use smpl_node::net::behaviour::BehaviourEvent;
use smpl_node::net::wire::{SyncRequest, SyncResponse};
use smpl_node::net::{RelayLimits, peer_id_of};
use smpl_protocol::{Envelope, Identity, Manifest, Signed};
use tokio::sync::mpsc;
use tokio::time::timeout;

use crate::common;
use crate::listings::manifest;
use crate::peers::{Evil, answer_quietly, evil_swarm, join_gossip};
use crate::victim::{Victim, load};
use crate::{STEP, TITLE};

/// A peer of its own key, connected to the victim.
async fn connected_peer(identity: &Identity, victim: &Victim) -> Evil {
    let no_relay = RelayLimits { when_public: false, ..RelayLimits::default() };
    let mut swarm = smpl_node::net::behaviour::build_swarm(identity, false, &no_relay, false).unwrap();
    swarm.dial(victim.addr.clone()).unwrap();
    timeout(STEP, async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == victim.peer => return,
                event => answer_quietly(&mut swarm, event),
            }
        }
    })
    .await
    .expect("never connected to the victim");
    swarm
}

/// Sends `request` to the victim and waits for its answer, answering the victim's
/// own requests meanwhile.
async fn ask(swarm: &mut Evil, victim: &Victim, request: SyncRequest) -> SyncResponse {
    let id = swarm.behaviour_mut().sync.send_request(&victim.peer, request);
    timeout(STEP, async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                    message: request_response::Message::Response { request_id, response },
                    ..
                })) if request_id == id => return response,
                SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::OutboundFailure {
                    request_id,
                    error,
                    ..
                })) if request_id == id => panic!("the announcement failed: {error}"),
                event => answer_quietly(swarm, event),
            }
        }
    })
    .await
    .expect("the victim never answered")
}

/// A peer announces listings: one signed by another key and one forged in its own
/// name are refused and counted, and the peer stays connected; its own valid one is
/// taken, and the victim gossips it on to a peer that never talked to the author.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_announced_listing_is_taken_only_from_its_signer_and_gossiped_on() {
    let dir = tempfile::tempdir().unwrap();
    let victim = Victim::start(dir.path()).await;
    let author = Identity::from_secret_bytes([0x3c; 32]);
    let mut peer = connected_peer(&author, &victim).await;

    // A gossip peer of its own, to see what the victim forwards.
    let mut listener = evil_swarm(71);
    join_gossip(&mut listener, &victim.addr, victim.peer).await;
    let (heard_tx, mut heard) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match listener.select_next_some().await {
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                    message,
                    ..
                })) => {
                    let _ = heard_tx.send(message.data);
                }
                event => answer_quietly(&mut listener, event),
            }
        }
    });

    let other = Identity::from_secret_bytes([0x4d; 32]);
    let not_own = manifest(&other.node_id(), "someone-elses", 1, TITLE).sign(&other).unwrap().into_bytes();
    let own = manifest(&author.node_id(), "announced-loops", 1, "Announced Loops");
    let envelope = own.sign(&author).unwrap().into_bytes();
    let mut forged = envelope.clone();
    *forged.last_mut().unwrap() ^= 0x01;

    for (bad, why) in [(not_own, "signed by another key"), (forged, "a broken signature")] {
        let answer = ask(&mut peer, &victim, SyncRequest::Announce(ByteBuf::from(bad))).await;
        assert!(matches!(answer, SyncResponse::Refused(_)), "a listing with {why} was answered {answer:?}");
    }
    assert_eq!(load(&victim.stats().announces_refused), 2);
    assert!(victim.node.store().manifest(&own.pack_id).unwrap().is_none());

    let answer = ask(&mut peer, &victim, SyncRequest::Announce(ByteBuf::from(envelope.clone()))).await;
    assert_eq!(answer, SyncResponse::Received);
    assert_eq!(load(&victim.stats().announced_new), 1);
    assert!(victim.node.store().manifest(&own.pack_id).unwrap().is_some(), "the announced listing is held");
    let forwarded = timeout(STEP, async {
        while let Some(data) = heard.recv().await {
            if data == envelope {
                return;
            }
        }
    })
    .await;
    assert!(forwarded.is_ok(), "the victim never gossiped the announced listing on");

    // Announced again: held already, taken once.
    let answer = ask(&mut peer, &victim, SyncRequest::Announce(ByteBuf::from(envelope))).await;
    assert_eq!(answer, SyncResponse::Received);
    assert_eq!(load(&victim.stats().announced_new), 1);
    let dropped = victim.node.status().await.unwrap().dropped;
    assert_eq!((dropped.announces_refused, dropped.peers_banned), (2, 0));
}

/// A node that publishes sends the listing to a peer it greeted, over sync: a
/// stock client that answers `Hello` receives it without any gossip.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_publish_is_announced_to_every_greeted_peer() {
    let dir = tempfile::tempdir().unwrap();
    let victim = Victim::start(dir.path()).await;
    let client = Identity::from_secret_bytes([0x5b; 32]);
    let mut peer = connected_peer(&client, &victim).await;
    let (announced_tx, mut announced) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match peer.select_next_some().await {
                SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                    message:
                        request_response::Message::Request {
                            request: SyncRequest::Announce(envelope),
                            channel,
                            ..
                        },
                    ..
                })) => {
                    let _ = announced_tx.send(envelope.into_vec());
                    let _ = peer.behaviour_mut().sync.send_response(channel, SyncResponse::Received);
                }
                event => answer_quietly(&mut peer, event),
            }
        }
    });
    // Connected and greeted: the victim's `connect` answers true only then.
    let greeted = timeout(STEP, async {
        while !victim.network().connect(client.node_id()).await.unwrap() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(greeted.is_ok(), "the victim never greeted the client");

    let folder = dir.path().join("pack");
    std::fs::create_dir_all(&folder).unwrap();
    common::write_wav(&folder.join("kick.wav"), 0.3, 60.0);
    let pack = common::publish(&victim.node, &folder, "Straight To You").await;

    let envelope = timeout(STEP, announced.recv()).await.expect("no announcement came").unwrap();
    let opened = Envelope::open(&envelope).expect("the announced listing verifies");
    assert_eq!(peer_id_of(&opened.signer()), Some(victim.peer));
    assert_eq!(Manifest::from_envelope(&opened).unwrap().pack_id, pack);
}
