//! The extension protocol (BEP 10) on a connection: our extension handshake after the
//! BitTorrent one, theirs read and kept, and metadata served (BEP 9) from the info
//! dictionary of a torrent that is not private (BEP 27). Unknown extensions are ignored.

use super::{DisconnectReason, Engine};
use crate::core::PeerKey;
use crate::wire::extension::{ExtHandshake, HANDSHAKE_ID};
use crate::wire::metadata::{self, MetadataMessage};
use crate::wire::Message;
use std::time::Instant;

/// Our extended message id for `ut_metadata` (what peers send us metadata messages under).
pub const OUR_UT_METADATA: u8 = 1;
/// Requests we queue (`reqq`), as we tell peers.
const REQQ: u32 = 2048;
/// Our client name in the extension handshake.
const CLIENT: &str = concat!("BatTorrent ", env!("CARGO_PKG_VERSION"));
/// A metadata request is refused while this many bytes wait to go to the peer.
const MAX_UNSENT_FOR_METADATA: usize = 256 * 1024;

/// What a peer told us in its extension handshake.
#[derive(Debug, Clone, Default)]
pub struct PeerExtensions {
    /// Its id for `ut_metadata`.
    pub ut_metadata: Option<u8>,
}

impl Engine {
    /// Sends our extension handshake to a peer that announced BEP 10.
    pub(super) fn send_extension_handshake(&mut self, key: PeerKey) {
        let serving = self.config.metadata.as_ref();
        // Metadata messages are taken while fetching (data) and while serving (requests);
        // a private torrent has neither.
        let metadata = serving.is_some() || self.is_fetching();
        let ours = ExtHandshake {
            ut_metadata: metadata.then_some(OUR_UT_METADATA),
            ut_pex: self.pex_enabled().then_some(super::pex::OUR_UT_PEX),
            port: self.config.listen.map(|a| a.port()),
            client: Some(CLIENT.to_string()),
            yourip: self.peers.get(&key).map(|p| p.addr.ip().to_canonical()),
            reqq: Some(REQQ),
            metadata_size: serving.map(|m| m.len() as u64),
            // A seed only uploads (BEP 21): peers need not offer it anything.
            upload_only: self.state == super::TorrentState::Seeding,
        };
        let mut payload = Vec::new();
        ours.encode(&mut payload);
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.send(
                &mut self.dirty,
                Message::Extended {
                    id: HANDSHAKE_ID,
                    payload: &payload,
                },
            );
        }
    }

    /// An extension message from `key`.
    pub(super) fn on_extended(&mut self, now: Instant, key: PeerKey, id: u8, payload: &[u8]) {
        match id {
            HANDSHAKE_ID => match ExtHandshake::parse(payload) {
                Ok(theirs) => {
                    if let Some(peer) = self.peers.get_mut(&key) {
                        peer.extensions = Some(PeerExtensions {
                            ut_metadata: theirs.ut_metadata,
                        });
                        peer.listen_port = theirs.port;
                        peer.pex.id = theirs.ut_pex;
                    }
                    // An incoming peer's listen address is taken while it is connected:
                    // not dialled again when PEX or a tracker names it.
                    if let Some(listen) = self.incoming_listen_addr(key) {
                        if !self.is_us(listen) {
                            self.book.connected(now, listen, super::PeerSource::Pex);
                        }
                    }
                    if self.is_fetching() {
                        self.fetch_offer(now, key, theirs.ut_metadata, theirs.metadata_size);
                    }
                    if let (Some(seen), Some(peer)) = (theirs.yourip, self.peers.get(&key)) {
                        self.actions.push_back(super::Action::ExternalIp {
                            voter: peer.addr.ip(),
                            seen,
                        });
                    }
                }
                Err(e) => self.close(
                    now,
                    key,
                    DisconnectReason::BadExtension(e.to_string()),
                    None,
                ),
            },
            OUR_UT_METADATA => match MetadataMessage::parse(payload) {
                Ok(MetadataMessage::Request { piece }) => self.serve_metadata(key, piece),
                // Data and rejects answer our requests while fetching (else ignored).
                Ok(reply) => self.on_metadata_reply(now, key, reply),
                Err(e) => self.close(
                    now,
                    key,
                    DisconnectReason::BadExtension(e.to_string()),
                    None,
                ),
            },
            super::pex::OUR_UT_PEX => self.on_pex(now, key, payload),
            _ => {}
        }
    }

    /// Answers a metadata request: the piece, or a reject when we do not serve metadata
    /// (private torrent), the piece does not exist, or the peer has too much unsent.
    fn serve_metadata(&mut self, key: PeerKey, piece: u32) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(their_id) = peer.extensions.as_ref().and_then(|e| e.ut_metadata) else {
            // It never said under which id it takes metadata messages.
            return;
        };
        let mut payload = Vec::new();
        let data = self.config.metadata.as_ref().and_then(|info| {
            let len = metadata::piece_len(info.len() as u64, piece);
            let start = piece as usize * metadata::METADATA_PIECE;
            (len > 0 && peer.out.len() < MAX_UNSENT_FOR_METADATA)
                .then(|| (info.len() as u64, &info[start..start + len]))
        });
        match data {
            Some((total_size, data)) => MetadataMessage::Data {
                piece,
                total_size,
                data,
            }
            .encode(&mut payload),
            None => MetadataMessage::Reject { piece }.encode(&mut payload),
        }
        peer.send(
            &mut self.dirty,
            Message::Extended {
                id: their_id,
                payload: &payload,
            },
        );
    }
}
