//! Peer exchange (BEP 11, `ut_pex`) on the connections of a torrent that is not private:
//! once a minute each peer that speaks it hears which peers joined and left since we last
//! told it (only peers whose listen address we know: ones we dialled, and ones that gave
//! their port in the extension handshake); peers it tells us about go to the peer book. A
//! peer that sends PEX more often than every [`MIN_PEX_GAP`], or lists too many addresses,
//! is a flood and is dropped.

use super::{Direction, DisconnectReason, Engine, PeerSource};
use crate::core::PeerKey;
use crate::wire::pex::{flags, Pex, MAX_PEX_SENT};
use crate::wire::Message;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Our extended message id for `ut_pex`.
pub const OUR_UT_PEX: u8 = 2;
/// Time between our PEX messages to one peer (BEP 11: at most one a minute).
pub const PEX_EVERY: Duration = Duration::from_secs(60);
/// PEX messages closer together than this are a flood.
pub const MIN_PEX_GAP: Duration = Duration::from_secs(20);

/// PEX state of one connection.
#[derive(Debug, Default)]
pub struct PeerPex {
    /// Its id for `ut_pex`, if it speaks it.
    pub id: Option<u8>,
    /// Listen addresses we told it about (and did not since say dropped).
    pub told: HashSet<SocketAddr>,
    pub sent_at: Option<Instant>,
    pub received_at: Option<Instant>,
}

impl Engine {
    /// Whether this torrent exchanges peers (never a private one, BEP 27).
    pub(super) fn pex_enabled(&self) -> bool {
        !self.config.private
    }

    /// The address `key` accepts connections at, if known.
    fn listen_addr(&self, key: PeerKey) -> Option<SocketAddr> {
        let p = self.peers.get(&key)?;
        match p.direction {
            Direction::Outgoing => Some(p.addr),
            Direction::Incoming => self.incoming_listen_addr(key),
        }
    }

    /// The address an incoming peer said it listens at (its extension handshake's port).
    pub(super) fn incoming_listen_addr(&self, key: PeerKey) -> Option<SocketAddr> {
        let p = self.peers.get(&key)?;
        if p.direction != Direction::Incoming {
            return None;
        }
        p.listen_port
            .filter(|&port| port != 0)
            .map(|port| SocketAddr::new(p.addr.ip(), port))
    }

    /// On the tick: a PEX message to each peer that speaks it and is due one.
    pub(super) fn send_pex(&mut self, now: Instant) {
        if !self.pex_enabled() {
            return;
        }
        let due = |p: &super::peer::Peer| {
            p.pex.id.is_some()
                && p.pex
                    .sent_at
                    .map_or(true, |t| now.saturating_duration_since(t) >= PEX_EVERY)
        };
        if !self.peers.values().any(due) {
            return;
        }
        let live: Vec<(PeerKey, Option<SocketAddr>, bool)> = self
            .peers
            .values()
            .filter(|p| p.is_live())
            .map(|p| (p.key, self.listen_addr(p.key), p.is_seed()))
            .collect();
        for &(key, own, _) in &live {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            let Some(id) = peer.pex.id else {
                continue;
            };
            if peer
                .pex
                .sent_at
                .is_some_and(|t| now.saturating_duration_since(t) < PEX_EVERY)
            {
                continue;
            }
            let current: HashSet<SocketAddr> = live
                .iter()
                .filter_map(|&(_, a, _)| a)
                .filter(|a| Some(*a) != own)
                .collect();
            let mut message = Pex::default();
            for &(other, a, seed) in &live {
                let Some(a) = a else { continue };
                if other == key || peer.pex.told.contains(&a) || message.added.len() >= MAX_PEX_SENT
                {
                    continue;
                }
                let f = flags::REACHABLE | if seed { flags::SEED } else { 0 };
                message.added.push((a, f));
            }
            message.dropped = peer
                .pex
                .told
                .iter()
                .filter(|a| !current.contains(a))
                .take(MAX_PEX_SENT)
                .copied()
                .collect();
            peer.pex.sent_at = Some(now);
            if message.added.is_empty() && message.dropped.is_empty() {
                continue;
            }
            for (a, _) in &message.added {
                peer.pex.told.insert(*a);
            }
            for a in &message.dropped {
                peer.pex.told.remove(a);
            }
            let mut payload = Vec::new();
            message.encode(&mut payload);
            peer.send(
                &mut self.dirty,
                Message::Extended {
                    id,
                    payload: &payload,
                },
            );
        }
    }

    /// A PEX message from `key`.
    pub(super) fn on_pex(&mut self, now: Instant, key: PeerKey, payload: &[u8]) {
        if !self.pex_enabled() {
            return;
        }
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let flood = peer
            .pex
            .received_at
            .is_some_and(|t| now.saturating_duration_since(t) < MIN_PEX_GAP);
        peer.pex.received_at = Some(now);
        let message = match Pex::parse(payload) {
            Ok(_) if flood => {
                let reason = DisconnectReason::BadExtension("PEX messages too often".into());
                return self.close(now, key, reason, None);
            }
            Ok(m) => m,
            Err(e) => {
                return self.close(
                    now,
                    key,
                    DisconnectReason::BadExtension(e.to_string()),
                    None,
                )
            }
        };
        let addrs: Vec<SocketAddr> = message.added.iter().map(|(a, _)| *a).collect();
        self.handle_peers(now, PeerSource::Pex, &addrs);
    }
}
