//! Block picker: which blocks to request from which peer (rarest first, then endgame).
//!
//! Owns the download's request bookkeeping: the pieces we hold, how many peers hold each
//! piece, and for the pieces in progress which blocks are received and whom they were asked
//! of. It never touches piece data, the disk or sockets, and never reads the clock: the
//! session feeds it events and sends the requests it hands out. [`Choker`] decides whom we
//! upload to.

mod choker;
#[cfg(test)]
mod tests;

pub use choker::{Choker, ChokerPeer};

use crate::core::keyed::Map;
use crate::wire::Bitfield;
use bitvec::prelude::{BitSlice, Msb0};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet};

pub use crate::core::{PeerKey, BLOCK_LEN};

/// In endgame, the most peers one block is requested from at once.
const MAX_ASKS: usize = 3;

/// Default for [`Picker::set_max_partial`].
const DEFAULT_MAX_PARTIAL: usize = 32;

/// One request-sized part of a piece.
///
/// `offset` is a multiple of [`BLOCK_LEN`] inside the piece; `len` is [`BLOCK_LEN`] except for
/// the piece's last block, which holds what is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Block {
    /// Piece index.
    pub piece: u32,
    /// Byte offset inside the piece.
    pub offset: u32,
    /// Length in bytes.
    pub len: u32,
}

/// What a received block means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// New data: store it. `cancel` lists other peers the same block was requested from
    /// (endgame): send them `cancel`. `piece_complete`: every block of the piece is now
    /// received, hash it.
    New {
        piece_complete: bool,
        cancel: Vec<PeerKey>,
    },
    /// We already have this block (or the piece): drop the data.
    Duplicate,
    /// Not a block we asked this peer for, or a block that does not exist (wrong
    /// offset/len): drop it.
    Unrequested,
}

/// A block named by its piece and its index inside the piece.
type BlockId = (u32, u32);

/// One peer a block was asked of.
#[derive(Debug, Clone, Copy)]
struct Ask {
    peer: PeerKey,
    /// False once the session released the request; kept so late data is still accepted.
    live: bool,
}

/// The state of one block of a piece in progress.
#[derive(Debug, Clone, Default)]
struct Slot {
    received: bool,
    /// Everyone the block was asked of since the piece started (emptied once received).
    asks: Vec<Ask>,
}

impl Slot {
    fn live(&self) -> usize {
        self.asks.iter().filter(|a| a.live).count()
    }

    fn live_for(&self, peer: PeerKey) -> bool {
        self.asks.iter().any(|a| a.live && a.peer == peer)
    }

    /// Records a live request to `peer`; returns whether nobody was asked before.
    fn ask(&mut self, peer: PeerKey) -> bool {
        let was_free = self.live() == 0;
        match self.asks.iter_mut().find(|a| a.peer == peer) {
            Some(a) => a.live = true,
            None => self.asks.push(Ask { peer, live: true }),
        }
        was_free
    }

    /// Ends `peer`'s live request: `None` if it had none, else whether nobody is asked now.
    fn release(&mut self, peer: PeerKey) -> Option<bool> {
        let ask = self.asks.iter_mut().find(|a| a.live && a.peer == peer)?;
        ask.live = false;
        Some(self.live() == 0)
    }
}

/// A piece started but not yet verified.
#[derive(Debug, Clone)]
struct Partial {
    /// One slot per block; emptied once every block is received (the piece awaits its hash).
    slots: Vec<Slot>,
    /// Blocks neither received nor asked of anyone.
    unassigned: u32,
    received: u32,
}

impl Partial {
    fn new(blocks: u32) -> Partial {
        Partial {
            slots: vec![Slot::default(); blocks as usize],
            unassigned: blocks,
            received: 0,
        }
    }

    fn complete(&self) -> bool {
        self.slots.is_empty()
    }
}

/// Rarest-first block picker with endgame; see the module documentation.
#[derive(Debug)]
pub struct Picker {
    piece_length: u32,
    total_length: u64,
    pieces: u32,
    have: Bitfield,
    have_count: usize,
    /// How many known peers hold each piece.
    availability: Vec<u32>,
    /// Pieces started and not yet verified (never pieces in `have`).
    partial: BTreeMap<u32, Partial>,
    /// Live requests per peer: `(piece, block)` is here exactly when that block's slot holds a
    /// live ask for the peer.
    requests: Map<PeerKey, HashSet<BlockId>>,
    max_partial: usize,
    rng: fastrand::Rng,
    /// Each piece's priority: 0 not wanted, [`NORMAL`] by default, up to [`URGENT`] (the
    /// highest of the files it holds, or a reader waiting for it).
    priority: Vec<u8>,
    /// Pieces wanted (priority above 0), and how many of them we hold.
    wanted: usize,
    have_wanted: usize,
    /// Start pieces in order instead of rarest first (playing while downloading).
    sequential: bool,
    /// Candidates `(inverted priority, availability or index, random tie-break, piece)`,
    /// kept between calls to reuse the allocation.
    scratch: Vec<Reverse<(u8, u32, u32, u32)>>,
}

/// Priority of a piece not wanted.
pub const SKIP: u8 = 0;
/// Default priority.
pub const NORMAL: u8 = 4;
/// Priority of a piece a reader waits for (streaming).
pub const URGENT: u8 = 7;

impl Picker {
    /// A picker for a torrent of `total_length` bytes in pieces of `piece_length` bytes.
    ///
    /// `piece_length` must be positive and the piece count (`ceil(total / piece_length)`) must
    /// fit a `u32`: both hold for validated metainfo. `total_length` may be 0 (no pieces).
    /// The last piece may be short, and its last block too. Tie-breaks are seeded randomly.
    pub fn new(piece_length: u32, total_length: u64) -> Picker {
        Picker::with_rng(piece_length, total_length, fastrand::Rng::new())
    }

    /// Like [`Picker::new`] with a fixed seed, so random tie-breaks repeat (tests).
    pub fn with_seed(piece_length: u32, total_length: u64, seed: u64) -> Picker {
        Picker::with_rng(piece_length, total_length, fastrand::Rng::with_seed(seed))
    }

    fn with_rng(piece_length: u32, total_length: u64, rng: fastrand::Rng) -> Picker {
        assert!(piece_length > 0, "piece length must be positive");
        let pieces = total_length.div_ceil(u64::from(piece_length));
        let pieces = u32::try_from(pieces).expect("piece count must fit a u32");
        Picker {
            piece_length,
            total_length,
            pieces,
            have: Bitfield::repeat(false, pieces as usize),
            have_count: 0,
            availability: vec![0; pieces as usize],
            partial: BTreeMap::new(),
            requests: Map::default(),
            max_partial: DEFAULT_MAX_PARTIAL,
            rng,
            priority: vec![NORMAL; pieces as usize],
            wanted: pieces as usize,
            have_wanted: 0,
            sequential: false,
            scratch: Vec::new(),
        }
    }

    /// Number of pieces in the torrent.
    pub fn piece_count(&self) -> usize {
        self.pieces as usize
    }

    /// Bytes in `piece`: the piece length, less for the last piece, 0 if out of range.
    pub fn piece_len(&self, piece: u32) -> u32 {
        if piece >= self.pieces {
            0
        } else if piece + 1 == self.pieces {
            // At most piece_length, so the cast is lossless.
            (self.total_length - u64::from(piece) * u64::from(self.piece_length)) as u32
        } else {
            self.piece_length
        }
    }

    /// Blocks in `piece` (`ceil(piece_len / BLOCK_LEN)`), 0 if out of range.
    pub fn block_count(&self, piece: u32) -> u32 {
        self.piece_len(piece).div_ceil(BLOCK_LEN)
    }

    /// Pieces we hold verified, one bit per piece in wire order.
    pub fn have(&self) -> &BitSlice<u8, Msb0> {
        &self.have
    }

    /// Number of pieces we hold verified.
    pub fn have_count(&self) -> usize {
        self.have_count
    }

    /// Whether we hold every piece (true for a torrent without pieces).
    pub fn is_complete(&self) -> bool {
        self.have_count == self.pieces as usize
    }

    /// How many pieces are wanted (not [`SKIP`]).
    pub fn wanted_count(&self) -> usize {
        self.wanted
    }

    /// Whether we hold every wanted piece: nothing is left to download.
    pub fn is_done(&self) -> bool {
        self.have_wanted == self.wanted
    }

    /// Sets each piece's priority ([`SKIP`] to [`URGENT`]; one per piece, else ignored).
    /// Pieces already started are finished whatever their new priority.
    pub fn set_priorities(&mut self, priority: &[u8]) {
        if priority.len() != self.pieces as usize {
            return;
        }
        self.priority.copy_from_slice(priority);
        self.wanted = priority.iter().filter(|&&p| p != SKIP).count();
        self.have_wanted = self
            .have
            .iter_ones()
            .filter(|&i| priority[i] != SKIP)
            .count();
    }

    /// Each piece's priority.
    pub fn priorities(&self) -> &[u8] {
        &self.priority
    }

    /// Starts new pieces in order (`true`) or rarest first (`false`, the default).
    /// Priorities come first either way.
    pub fn set_sequential(&mut self, sequential: bool) {
        self.sequential = sequential;
    }

    /// Whether pieces are started in order.
    pub fn sequential(&self) -> bool {
        self.sequential
    }

    fn wanted(&self, piece: usize) -> bool {
        self.priority.get(piece).is_some_and(|&p| p != SKIP)
    }

    /// Pieces already verified on disk at start-up (resume). Out of range: no-op.
    pub fn set_have(&mut self, piece: u32) {
        self.mark_have(piece);
    }

    /// Limit on pieces started but not verified (bounds the memory the session holds for
    /// partial pieces; a complete piece awaiting its hash check still counts). Default 32.
    /// New pieces are started only while fewer are in progress, or fewer than twice as
    /// many for a peer that holds none of the pieces being received; 0 stops starting
    /// any.
    pub fn set_max_partial(&mut self, n: usize) {
        self.max_partial = n;
    }

    /// A peer's bitfield arrived: each piece it holds becomes one peer more available.
    /// Bits past the piece count are ignored.
    pub fn peer_bitfield(&mut self, bits: &BitSlice<u8, Msb0>) {
        let pieces = self.availability.len();
        for i in bits.iter_ones().take_while(|&i| i < pieces) {
            self.availability[i] = self.availability[i].saturating_add(1);
        }
    }

    /// A peer sent `have` for `piece` (the session filters repeats). Out of range: no-op.
    pub fn peer_have(&mut self, piece: u32) {
        if let Some(n) = self.availability.get_mut(piece as usize) {
            *n = n.saturating_add(1);
        }
    }

    /// A peer left; `bits` is its final bitfield. Its requests are not released here: see
    /// [`Picker::release_peer`].
    pub fn peer_gone(&mut self, bits: &BitSlice<u8, Msb0>) {
        let pieces = self.availability.len();
        for i in bits.iter_ones().take_while(|&i| i < pieces) {
            self.availability[i] = self.availability[i].saturating_sub(1);
        }
    }

    /// Whether `peer_has` holds any wanted piece we lack (decides `interested`).
    pub fn wants_any(&self, peer_has: &BitSlice<u8, Msb0>) -> bool {
        peer_has
            .iter_ones()
            .take_while(|&i| i < self.have.len())
            .any(|i| !self.have[i] && self.wanted(i))
    }

    /// Assigns up to `max` more blocks to `peer` (which holds `peer_has`), appending them to
    /// `out`; the session must request exactly these.
    ///
    /// Preference: blocks of pieces in progress, fewest unassigned blocks first; then new
    /// pieces chosen rarest-first among those the peer has and we neither have nor started,
    /// random among equally rare ones (while fewer than the partial limit are in progress).
    /// In endgame (every block still needed is requested from someone) it hands out blocks
    /// already requested from other peers, those asked of the fewest first, never twice to
    /// the same peer and to at most 3 peers per block. Costs O(pieces) per call.
    pub fn pick(
        &mut self,
        peer: PeerKey,
        peer_has: &BitSlice<u8, Msb0>,
        max: usize,
        out: &mut Vec<Block>,
    ) {
        self.pick_within(peer, peer_has, peer_has, max, out);
    }

    /// [`Picker::pick`] among `choose_from`, a part of what the peer holds (`peer_has`):
    /// for a seed spared in favour of leechers. The partial limit is decided by everything
    /// the peer holds (a seed can help with any piece in progress).
    pub fn pick_within(
        &mut self,
        peer: PeerKey,
        choose_from: &BitSlice<u8, Msb0>,
        peer_has: &BitSlice<u8, Msb0>,
        max: usize,
        out: &mut Vec<Block>,
    ) {
        let limit = self.start_limit(peer_has);
        let peer_has = choose_from;
        let mut want = max;
        if want == 0 || self.is_complete() {
            return;
        }
        let priority = &self.priority;
        let holds = |p: u32| peer_has.get(p as usize).is_some_and(|b| *b);

        let mut started: Vec<(u8, u32, u32)> = self
            .partial
            .iter()
            .filter(|(&p, part)| part.unassigned > 0 && holds(p))
            .map(|(&p, part)| {
                (
                    URGENT - priority[p as usize].min(URGENT),
                    part.unassigned,
                    p,
                )
            })
            .collect();
        // The most urgent first, then those nearest completion.
        started.sort_unstable();
        for (_, _, piece) in started {
            if want == 0 {
                return;
            }
            want -= self.assign_unasked(piece, peer, want, out);
        }

        if want > 0 && self.partial.len() < limit {
            want -= self.start_pieces(peer, peer_has, want, usize::MAX, limit, out);
        }

        if want > 0 && self.in_endgame() {
            self.assign_endgame(peer, &holds, want, out);
        }
    }

    /// Assigns every block of one new piece to `peer`, for a peer on parole: a piece that
    /// fails its hash check then came from it alone.
    ///
    /// The piece is chosen as [`Picker::pick`] starts new ones (rarest first among pieces the
    /// peer has and we neither have nor started, within the partial limit); nothing is
    /// appended if there is none. Blocks released later are pickable by anyone, and endgame
    /// may still hand them to other peers.
    pub fn pick_whole(
        &mut self,
        peer: PeerKey,
        peer_has: &BitSlice<u8, Msb0>,
        out: &mut Vec<Block>,
    ) {
        self.pick_whole_within(peer, peer_has, peer_has, out);
    }

    /// [`Picker::pick_whole`] among `choose_from`, a part of what the peer holds
    /// (`peer_has`), as [`Picker::pick_within`] does.
    pub fn pick_whole_within(
        &mut self,
        peer: PeerKey,
        choose_from: &BitSlice<u8, Msb0>,
        peer_has: &BitSlice<u8, Msb0>,
        out: &mut Vec<Block>,
    ) {
        let limit = self.start_limit(peer_has);
        let peer_has = choose_from;
        if self.partial.len() < limit {
            self.start_pieces(peer, peer_has, usize::MAX, 1, limit, out);
        }
    }

    /// How many pieces may be in progress when a peer holding `peer_has` asks: the partial
    /// limit, or twice it when pieces are being received and the peer holds none of them
    /// (pieces started with a peer that left, which no one else holds, must not stop
    /// everyone else for good).
    fn start_limit(&self, peer_has: &BitSlice<u8, Msb0>) -> usize {
        let mut receiving = self.partial.iter().filter(|(_, part)| !part.complete());
        let stranded = receiving.clone().next().is_some()
            && !receiving.any(|(&p, _)| peer_has.get(p as usize).is_some_and(|b| *b));
        if stranded {
            self.max_partial.saturating_mul(2)
        } else {
            self.max_partial
        }
    }

    /// Starts up to `pieces` rarest pieces the peer has (while fewer than `limit` are in
    /// progress) and assigns up to `want` of their blocks; returns blocks assigned.
    fn start_pieces(
        &mut self,
        peer: PeerKey,
        peer_has: &BitSlice<u8, Msb0>,
        want: usize,
        pieces: usize,
        limit: usize,
        out: &mut Vec<Block>,
    ) -> usize {
        let mut candidates = std::mem::take(&mut self.scratch);
        candidates.clear();
        for i in peer_has.iter_ones().take_while(|&i| i < self.have.len()) {
            let piece = i as u32;
            let priority = self.priority[i];
            if !self.have[i] && priority != SKIP && !self.partial.contains_key(&piece) {
                let (order, tie) = if self.sequential {
                    (piece, 0)
                } else {
                    (self.availability[i], self.rng.u32(..))
                };
                let inverted = URGENT - priority.min(URGENT);
                candidates.push(Reverse((inverted, order, tie, piece)));
            }
        }
        // A heap orders only the few pieces actually started: O(pieces) to build.
        let mut heap = BinaryHeap::from(candidates);
        let mut assigned = 0;
        let mut started = 0;
        while assigned < want && started < pieces && self.partial.len() < limit {
            let Some(Reverse((_, _, _, piece))) = heap.pop() else {
                break;
            };
            started += 1;
            self.partial
                .insert(piece, Partial::new(self.block_count(piece)));
            assigned += self.assign_unasked(piece, peer, want - assigned, out);
        }
        self.scratch = heap.into_vec();
        assigned
    }

    /// Assigns up to `want` unasked blocks of a piece in progress; returns how many.
    fn assign_unasked(
        &mut self,
        piece: u32,
        peer: PeerKey,
        want: usize,
        out: &mut Vec<Block>,
    ) -> usize {
        let Some(part) = self.partial.get(&piece) else {
            return 0;
        };
        let unasked: Vec<u32> = (0..part.slots.len() as u32)
            .filter(|&i| !part.slots[i as usize].received && part.slots[i as usize].live() == 0)
            .take(want)
            .collect();
        for &index in &unasked {
            self.assign(peer, piece, index, out);
        }
        unasked.len()
    }

    /// Endgame: assigns blocks already asked of others, least-asked first.
    fn assign_endgame(
        &mut self,
        peer: PeerKey,
        holds: &dyn Fn(u32) -> bool,
        want: usize,
        out: &mut Vec<Block>,
    ) {
        let mut candidates: Vec<(usize, u32, u32)> = Vec::new();
        for (&piece, part) in &self.partial {
            if !holds(piece) {
                continue;
            }
            for (index, slot) in part.slots.iter().enumerate() {
                let live = slot.live();
                if !slot.received && live < MAX_ASKS && !slot.live_for(peer) {
                    candidates.push((live, piece, index as u32));
                }
            }
        }
        candidates.sort_unstable();
        for &(_, piece, index) in candidates.iter().take(want) {
            self.assign(peer, piece, index, out);
        }
    }

    /// Records a live request of block `index` of a piece in progress to `peer` and appends
    /// the block to `out`.
    fn assign(&mut self, peer: PeerKey, piece: u32, index: u32, out: &mut Vec<Block>) {
        let piece_len = self.piece_len(piece);
        let Some(part) = self.partial.get_mut(&piece) else {
            return;
        };
        if part.slots[index as usize].ask(peer) {
            part.unassigned -= 1;
        }
        self.requests
            .entry(peer)
            .or_default()
            .insert((piece, index));
        out.push(block_at(piece, piece_len, index));
    }

    /// Ends `peer`'s live request for a block (its entry in `requests` is left to the
    /// caller); returns whether there was one.
    fn unask(&mut self, peer: PeerKey, piece: u32, index: u32) -> bool {
        let Some(part) = self.partial.get_mut(&piece) else {
            return false;
        };
        let Some(now_free) = part
            .slots
            .get_mut(index as usize)
            .and_then(|s| s.release(peer))
        else {
            return false;
        };
        if now_free {
            part.unassigned += 1;
        }
        true
    }

    /// A block's data arrived from `peer`. Returns what the session must do.
    ///
    /// Checked in this order: a block that does not exist (piece out of range, offset not on
    /// a block boundary, wrong length) is `Unrequested`; a block of a piece we have, of a piece
    /// complete and awaiting its hash, or already received is `Duplicate`; a block never
    /// asked of `peer` since its piece was started is `Unrequested`; anything else is `New`,
    /// even if the request was released meanwhile (late data is still good data).
    pub fn block_received(&mut self, peer: PeerKey, block: Block) -> Received {
        let Some(index) = self.locate(block) else {
            return Received::Unrequested;
        };
        if self.have[block.piece as usize] {
            return Received::Duplicate;
        }
        let Some(part) = self.partial.get_mut(&block.piece) else {
            return Received::Unrequested;
        };
        if part.complete() {
            return Received::Duplicate;
        }
        let slot = &mut part.slots[index as usize];
        if slot.received {
            return Received::Duplicate;
        }
        if !slot.asks.iter().any(|a| a.peer == peer) {
            return Received::Unrequested;
        }
        if slot.live() == 0 {
            part.unassigned -= 1;
        }
        let mut cancel = Vec::new();
        for ask in std::mem::take(&mut slot.asks)
            .into_iter()
            .filter(|a| a.live)
        {
            forget(&mut self.requests, ask.peer, (block.piece, index));
            if ask.peer != peer {
                cancel.push(ask.peer);
            }
        }
        slot.received = true;
        part.received += 1;
        let piece_complete = part.received as usize == part.slots.len();
        if piece_complete {
            // Per-block state is no longer needed: free it while the piece is hashed.
            part.slots = Vec::new();
        }
        Received::New {
            piece_complete,
            cancel,
        }
    }

    /// The session gave up on a block requested from `peer` (choked, timed out, cancelled):
    /// it becomes pickable again unless still requested from another peer. A block not
    /// requested from `peer` (or not existing) is ignored.
    pub fn release(&mut self, peer: PeerKey, block: Block) {
        if let Some(index) = self.locate(block) {
            if self.unask(peer, block.piece, index) {
                forget(&mut self.requests, peer, (block.piece, index));
            }
        }
    }

    /// Releases everything requested from `peer` (disconnect, snubbed), as [`Picker::release`]
    /// does for each. Returns the released blocks, ordered by piece and offset.
    pub fn release_peer(&mut self, peer: PeerKey) -> Vec<Block> {
        self.release_peer_except(peer, &[])
    }

    /// [`Picker::release_peer`] but for the blocks of the pieces in `keep`, which stay
    /// requested (a choke from a peer that still serves those pieces: BEP 6 allowed fast).
    pub fn release_peer_except(&mut self, peer: PeerKey, keep: &[u32]) -> Vec<Block> {
        let Some(ids) = self.requests.remove(&peer) else {
            return Vec::new();
        };
        let (kept, mut ids): (HashSet<BlockId>, Vec<BlockId>) = if keep.is_empty() {
            (HashSet::new(), ids.into_iter().collect())
        } else {
            let (kept, gone): (HashSet<BlockId>, HashSet<BlockId>) =
                ids.into_iter().partition(|(piece, _)| keep.contains(piece));
            (kept, gone.into_iter().collect())
        };
        if !kept.is_empty() {
            self.requests.insert(peer, kept);
        }
        ids.sort_unstable();
        let mut released = Vec::with_capacity(ids.len());
        for (piece, index) in ids {
            if self.unask(peer, piece, index) {
                released.push(block_at(piece, self.piece_len(piece), index));
            }
        }
        released
    }

    /// Outstanding requests assigned to `peer`.
    pub fn requested_from(&self, peer: PeerKey) -> usize {
        self.requests.get(&peer).map_or(0, HashSet::len)
    }

    /// The piece passed its hash check: mark it had (dropping any requests still out for it).
    /// Out of range or already had: no-op.
    pub fn piece_verified(&mut self, piece: u32) {
        self.mark_have(piece);
    }

    /// The piece failed its hash check: all its blocks become missing again and the piece
    /// can be started anew (its outstanding requests are forgotten, so their data arrives as
    /// `Unrequested`). A piece we had becomes missing too. Out of range: no-op.
    pub fn piece_failed(&mut self, piece: u32) {
        if piece >= self.pieces {
            return;
        }
        self.drop_partial(piece);
        if self.have[piece as usize] {
            self.unmark_have(piece);
        }
    }

    /// A piece started must wait before it can start again (its old data is still on
    /// the way to the disk): its requests are forgotten and it is neither had nor picked
    /// until [`Picker::piece_failed`] releases it. Had or out of range: no-op.
    pub fn piece_parked(&mut self, piece: u32) {
        if piece >= self.pieces || self.have[piece as usize] {
            return;
        }
        self.drop_partial(piece);
        self.hold(piece);
    }

    /// Live requests, all peers together.
    pub fn requested_total(&self) -> usize {
        self.requests.values().map(HashSet::len).sum()
    }

    /// A piece we had must be checked again (reading it failed): it is neither had nor
    /// picked until [`Picker::piece_verified`] or [`Picker::piece_failed`] says how the
    /// check went. Not had: no-op.
    pub fn piece_rechecking(&mut self, piece: u32) {
        if piece >= self.pieces || !self.have[piece as usize] {
            return;
        }
        self.unmark_have(piece);
        self.hold(piece);
    }

    /// Whether every block still needed is already requested from someone, so
    /// [`Picker::pick`] hands out duplicates. False once complete.
    pub fn in_endgame(&self) -> bool {
        let partial_wanted = self
            .partial
            .keys()
            .filter(|&&p| self.wanted(p as usize))
            .count();
        let unstarted = self
            .wanted
            .saturating_sub(self.have_wanted + partial_wanted);
        !self.is_done() && unstarted == 0 && self.partial.values().all(|p| p.unassigned == 0)
    }

    /// The block index of `block` if such a block exists (offset and length both match).
    fn locate(&self, block: Block) -> Option<u32> {
        let piece_len = self.piece_len(block.piece);
        if block.offset % BLOCK_LEN != 0 || block.offset >= piece_len {
            return None;
        }
        let index = block.offset / BLOCK_LEN;
        (block_at(block.piece, piece_len, index) == block).then_some(index)
    }

    fn mark_have(&mut self, piece: u32) {
        if piece >= self.pieces || self.have[piece as usize] {
            return;
        }
        self.drop_partial(piece);
        self.have.set(piece as usize, true);
        self.have_count += 1;
        if self.wanted(piece as usize) {
            self.have_wanted += 1;
        }
    }

    fn unmark_have(&mut self, piece: u32) {
        self.have.set(piece as usize, false);
        self.have_count -= 1;
        if self.wanted(piece as usize) {
            self.have_wanted -= 1;
        }
    }

    /// Lists `piece` as complete and awaiting its hash: neither picked nor had.
    fn hold(&mut self, piece: u32) {
        let blocks = self.block_count(piece);
        self.partial.insert(
            piece,
            Partial {
                slots: Vec::new(),
                unassigned: 0,
                received: blocks,
            },
        );
    }

    /// Forgets a piece in progress and every live request for its blocks.
    fn drop_partial(&mut self, piece: u32) {
        let Some(part) = self.partial.remove(&piece) else {
            return;
        };
        for (index, slot) in part.slots.iter().enumerate() {
            for ask in slot.asks.iter().filter(|a| a.live) {
                forget(&mut self.requests, ask.peer, (piece, index as u32));
            }
        }
    }
}

/// The `index`th block of a piece of `piece_len` bytes.
fn block_at(piece: u32, piece_len: u32, index: u32) -> Block {
    let offset = index * BLOCK_LEN;
    Block {
        piece,
        offset,
        len: BLOCK_LEN.min(piece_len - offset),
    }
}

/// Removes one live request from a peer's set, dropping the set once empty.
fn forget(requests: &mut Map<PeerKey, HashSet<BlockId>>, peer: PeerKey, id: BlockId) {
    if let Some(set) = requests.get_mut(&peer) {
        set.remove(&id);
        if set.is_empty() {
            requests.remove(&peer);
        }
    }
}
