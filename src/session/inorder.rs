//! Hashing large ("spilled") pieces as their blocks are written, so the check once a piece
//! is complete reads back from disk only what arrived out of order (usually nothing).
//!
//! The state is kept per attempt at a piece (the engine numbers them): bytes hashed for an
//! attempt that was abandoned never count for a later one. Within an attempt every block is
//! written once, and the engine restarts a piece only after its old writes landed, so what
//! was hashed is what the disk holds.

use super::driver::lock;
use sha1::{Digest, Sha1};
use std::sync::Mutex;

/// What was hashed of one attempt at a piece: its first `next` bytes.
struct InOrder {
    attempt: u64,
    next: u64,
    sha: Sha1,
}

/// One torrent's pieces being hashed as written.
#[derive(Default)]
pub struct WrittenHashes {
    pieces: Mutex<crate::core::keyed::Map<u32, InOrder>>,
}

impl WrittenHashes {
    /// `data` of `attempt` at `piece` was written at `offset` in the piece: hashed if it
    /// continues what was hashed so far (a block out of order is left for the read-back).
    pub fn written(&self, piece: u32, attempt: u64, offset: u64, data: &[u8]) {
        let taken = {
            let mut pieces = lock(&self.pieces);
            match pieces.get(&piece) {
                Some(h) if h.attempt == attempt && h.next == offset => pieces.remove(&piece),
                Some(h) if h.attempt > attempt => None,
                Some(h) if h.attempt == attempt => None,
                _ if offset == 0 => Some(InOrder {
                    attempt,
                    next: 0,
                    sha: Sha1::new(),
                }),
                _ => {
                    // A block of a newer attempt, not its first: an older attempt's state
                    // is of no use any more.
                    pieces.remove(&piece);
                    None
                }
            }
        };
        // Hashed outside the lock (other pieces' writes go on meanwhile).
        let Some(mut h) = taken else {
            return;
        };
        h.sha.update(data);
        h.next += data.len() as u64;
        let mut pieces = lock(&self.pieces);
        if !pieces
            .get(&piece)
            .is_some_and(|other| other.attempt > attempt)
        {
            pieces.insert(piece, h);
        }
    }

    /// How many bytes from the start of `piece` were hashed for `attempt`, and the hash
    /// state; forgets the piece. `(0, fresh)` when nothing (or another attempt) was.
    pub fn take(&self, piece: u32, attempt: Option<u64>) -> (u64, Sha1) {
        match lock(&self.pieces).remove(&piece) {
            Some(h) if Some(h.attempt) == attempt => (h.next, h.sha),
            _ => (0, Sha1::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_in_order_are_hashed_and_the_rest_is_left_for_the_read_back() {
        let w = WrittenHashes::default();
        w.written(3, 1, 0, b"ab");
        w.written(3, 1, 2, b"cd");
        w.written(3, 1, 6, b"gh"); // out of order: not hashed
        w.written(3, 1, 4, b"ef");
        let (next, sha) = w.take(3, Some(1));
        assert_eq!(next, 6);
        assert_eq!(sha.finalize()[..], Sha1::digest(b"abcdef")[..]);
        assert_eq!(w.take(3, Some(1)).0, 0, "taken once");
    }

    #[test]
    fn another_attempt_never_counts() {
        let w = WrittenHashes::default();
        w.written(0, 1, 0, b"liar");
        assert_eq!(w.take(0, Some(2)).0, 0);
        w.written(0, 1, 0, b"liar");
        w.written(0, 2, 4, b"late"); // a newer attempt: the old state goes
        w.written(0, 1, 4, b"more"); // and the old attempt cannot come back
        assert_eq!(w.take(0, Some(1)).0, 0);
        w.written(0, 2, 0, b"good");
        w.written(0, 1, 4, b"stale");
        let (next, sha) = w.take(0, Some(2));
        assert_eq!(next, 4);
        assert_eq!(sha.finalize()[..], Sha1::digest(b"good")[..]);
        assert_eq!(w.take(0, None).0, 0, "a re-check hashes everything");
    }
}
