//! Invite lines: how a producer hands a friend everything needed for first
//! contact, with no server in between.
//!
//! An invite is one line of multiaddrs separated by commas, each ending in the
//! same `/p2p/<peer id>`: the node's direct addresses (public ones that AutoNAT
//! confirmed, then its listen addresses) and its relayed addresses
//! (`…/p2p/<relay>/p2p-circuit/p2p/<node>`). A single address ending in
//! `/p2p/<peer id>` is an invite too, so `smpl node --bootstrap` and
//! `smpl connect` take either.

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

/// An invite line, parsed: the node and the addresses to dial it at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invite {
    pub peer: PeerId,
    pub addrs: Vec<Multiaddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    #[error("an invite holds at least one address")]
    Empty,
    #[error("{addr:?} is not a multiaddr: {reason}")]
    Address { addr: String, reason: String },
    #[error("{addr} does not end in /p2p/<peer id> (`smpl invite` prints a full invite)")]
    NoPeer { addr: String },
    #[error("the addresses of an invite name different nodes ({first} and {other})")]
    Mixed { first: PeerId, other: PeerId },
}

/// The peer id an address ends in.
pub fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    match addr.iter().last()? {
        Protocol::P2p(peer) => Some(peer),
        _ => None,
    }
}

impl Invite {
    /// The line `smpl invite` prints.
    pub fn line(&self) -> String {
        self.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(",")
    }
}

impl std::str::FromStr for Invite {
    type Err = InviteError;

    fn from_str(line: &str) -> Result<Invite, InviteError> {
        let mut peer = None;
        let mut addrs = Vec::new();
        for part in line.split([',', ' ']).map(str::trim).filter(|p| !p.is_empty()) {
            let addr: Multiaddr = part.parse().map_err(|e: libp2p::multiaddr::Error| {
                InviteError::Address { addr: part.to_string(), reason: e.to_string() }
            })?;
            let this = peer_of(&addr).ok_or_else(|| InviteError::NoPeer { addr: part.to_string() })?;
            match peer {
                None => peer = Some(this),
                Some(first) if first != this => return Err(InviteError::Mixed { first, other: this }),
                Some(_) => {}
            }
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        let peer = peer.ok_or(InviteError::Empty)?;
        Ok(Invite { peer, addrs })
    }
}

impl std::fmt::Display for Invite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.line())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
    const R: &str = "12D3KooWRBhwfeP2Y4TCx1SM6s9rUoHhR5STiGwxBhgFRcw3UERE";

    #[test]
    fn a_line_round_trips_and_one_address_is_an_invite() {
        let line = format!(
            "/ip4/198.51.100.7/udp/4747/quic-v1/p2p/{P},/ip4/198.51.100.1/tcp/4747/p2p/{R}/p2p-circuit/p2p/{P}"
        );
        let invite: Invite = line.parse().unwrap();
        assert_eq!(invite.peer.to_string(), P);
        assert_eq!(invite.addrs.len(), 2);
        assert_eq!(invite.line(), line);
        let one: Invite = format!("/ip4/127.0.0.1/tcp/1/p2p/{P}").parse().unwrap();
        assert_eq!(one.addrs.len(), 1);
    }

    #[test]
    fn bad_invites_say_what_is_wrong() {
        assert!(matches!("".parse::<Invite>(), Err(InviteError::Empty)));
        assert!(matches!("/ip4/127.0.0.1/tcp/1".parse::<Invite>(), Err(InviteError::NoPeer { .. })));
        assert!(matches!("hello".parse::<Invite>(), Err(InviteError::Address { .. })));
        let mixed = format!("/ip4/127.0.0.1/tcp/1/p2p/{P},/ip4/127.0.0.1/tcp/2/p2p/{R}");
        assert!(matches!(mixed.parse::<Invite>(), Err(InviteError::Mixed { .. })));
    }
}
