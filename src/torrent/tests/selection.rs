//! Choosing what to download: pieces left out are never asked for, a torrent whose wanted
//! pieces are all verified is done, and wanting more makes it download again.

use super::harness::{Scripted, B};
use super::*;
use crate::picker::{NORMAL, SKIP, URGENT};

/// Sends the peer's data for every request in `asked` until nothing more is asked.
fn serve(p: &mut Scripted, mut asked: Vec<Block>) -> Vec<u32> {
    let mut pieces = Vec::new();
    while !asked.is_empty() {
        for b in &asked {
            p.send_block(*b, false);
            pieces.push(b.piece);
        }
        asked = Scripted::requests(&p.received());
    }
    pieces.sort_unstable();
    pieces.dedup();
    pieces
}

#[test]
fn only_wanted_pieces_are_downloaded_and_wanting_more_resumes() {
    // 8 pieces of one block each; the peer has them all.
    let mut p = Scripted::new(8 * B as usize, B as usize, false, true);
    let now = p.now;
    p.engine
        .set_piece_priorities(now, &[NORMAL, SKIP, SKIP, NORMAL, SKIP, SKIP, SKIP, NORMAL]);
    p.send(Message::Unchoke);
    let asked = Scripted::requests(&p.received());
    assert_eq!(serve(&mut p, asked), vec![0, 3, 7]);
    let stats = p.engine.stats();
    assert!(stats.complete, "every wanted piece: done");
    assert_eq!(
        (stats.wanted_bytes, stats.left_bytes),
        (3 * u64::from(B), 0)
    );
    assert_eq!(stats.pieces_have, 3);
    assert_eq!(p.engine.state(), TorrentState::Seeding);
    assert!(p.actions.iter().any(|a| matches!(a, Action::Completed)));
    // Done, and the peer is a seed: nothing to exchange, the connection is closed.
    assert_eq!(p.closed(), Some(&DisconnectReason::BothSeeds));
    // Now the rest is wanted too: downloading again, and interested in the next seed.
    let now = p.now;
    p.engine.set_piece_priorities(now, &[NORMAL; 8]);
    assert_eq!(p.engine.state(), TorrentState::Downloading);
    let stats = p.engine.stats();
    assert!(!stats.complete);
    assert_eq!(
        (stats.wanted_bytes, stats.left_bytes),
        (8 * u64::from(B), 5 * u64::from(B))
    );
}

#[test]
fn leaving_out_what_is_left_completes_the_download() {
    let mut p = Scripted::new(4 * B as usize, B as usize, false, true);
    p.send(Message::Unchoke);
    let asked = Scripted::requests(&p.received());
    for b in asked.iter().filter(|b| b.piece < 2) {
        p.send_block(*b, false);
    }
    p.received();
    assert_eq!(p.engine.state(), TorrentState::Downloading);
    let now = p.now;
    p.engine
        .set_piece_priorities(now, &[NORMAL, NORMAL, SKIP, SKIP]);
    assert_eq!(p.engine.state(), TorrentState::Seeding);
    assert!(p.engine.stats().complete);
    let mut completed = 0;
    while let Some(a) = p.engine.poll_action() {
        completed += usize::from(matches!(a, Action::Completed));
    }
    assert_eq!(completed, 1);
}

#[test]
fn urgent_pieces_come_first_and_sequential_goes_in_order() {
    let mut p = Scripted::new(8 * B as usize, B as usize, false, true);
    let now = p.now;
    let mut prio = [NORMAL; 8];
    prio[5] = URGENT;
    p.engine.set_piece_priorities(now, &prio);
    p.engine.set_sequential(true);
    p.send(Message::Unchoke);
    let asked: Vec<u32> = Scripted::requests(&p.received())
        .iter()
        .map(|b| b.piece)
        .collect();
    assert_eq!(asked, vec![5, 0, 1, 2, 3, 4, 6, 7]);
}
