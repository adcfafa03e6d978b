use super::*;

fn info(len: usize) -> (Vec<u8>, InfoHash) {
    let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    let hash = InfoHash(Sha1::digest(&bytes).into());
    (bytes, hash)
}

fn piece(bytes: &[u8], i: u32) -> &[u8] {
    let start = i as usize * METADATA_PIECE;
    &bytes[start..(start + METADATA_PIECE).min(bytes.len())]
}

/// Answers every request from `answer(peer, piece)` until nothing is asked; returns the
/// outcome of the last data message.
fn run(
    fetch: &mut MetadataFetch,
    now: Instant,
    mut answer: impl FnMut(PeerKey, u32) -> Option<Vec<u8>>,
    total: u64,
) -> Option<Received> {
    let mut last = None;
    for _ in 0..10_000 {
        let mut out = Vec::new();
        fetch.requests(now, &mut out);
        if out.is_empty() {
            break;
        }
        for r in out {
            match answer(r.peer, r.piece) {
                Some(data) => {
                    let got = fetch.on_data(r.peer, r.piece, total, &data).unwrap();
                    if got != Received::Pending {
                        last = Some(got);
                    }
                }
                None => fetch.on_reject(now, r.peer, r.piece),
            }
        }
    }
    last
}

#[test]
fn assembles_from_several_peers_within_the_in_flight_limit() {
    let (bytes, hash) = info(5 * METADATA_PIECE + 100);
    let mut fetch = MetadataFetch::new(hash);
    let now = Instant::now();
    for k in 0..3 {
        fetch.offer(PeerKey(k), 3, bytes.len() as u64).unwrap();
    }
    let mut out = Vec::new();
    fetch.requests(now, &mut out);
    assert_eq!(out.len(), 6, "every piece asked at once: {out:?}");
    let senders: HashSet<PeerKey> = out.iter().map(|r| r.peer).collect();
    assert_eq!(senders.len(), 3, "shared among the peers");
    for k in 0..3 {
        assert!(out.iter().filter(|r| r.peer == PeerKey(k)).count() <= MAX_IN_FLIGHT as usize);
    }
    assert!(out.iter().all(|r| r.id == 3));
    let mut result = None;
    for r in out {
        result = Some(
            fetch
                .on_data(r.peer, r.piece, bytes.len() as u64, piece(&bytes, r.piece))
                .unwrap(),
        );
    }
    assert_eq!(result, Some(Received::Complete(bytes)));
    assert!(fetch.is_done());
}

#[test]
fn refuses_oversized_and_empty_offers_before_allocating() {
    let (_, hash) = info(10);
    let mut fetch = MetadataFetch::new(hash);
    assert_eq!(
        fetch.offer(PeerKey(1), 1, 1 << 31),
        Err(FetchError::TooLarge(1 << 31))
    );
    assert_eq!(fetch.offer(PeerKey(1), 1, 0), Err(FetchError::Empty));
    let mut out = Vec::new();
    fetch.requests(Instant::now(), &mut out);
    assert!(out.is_empty());
    assert_eq!(fetch.progress(), (0, 0));
}

#[test]
fn wrong_total_size_is_an_error_and_unrequested_data_is_dropped() {
    let (bytes, hash) = info(2 * METADATA_PIECE);
    let mut fetch = MetadataFetch::new(hash);
    fetch.offer(PeerKey(1), 1, bytes.len() as u64).unwrap();
    let mut out = Vec::new();
    fetch.requests(Instant::now(), &mut out);
    assert_eq!(
        fetch.on_data(PeerKey(1), 0, 999, piece(&bytes, 0)),
        Err(FetchError::WrongTotal {
            got: 999,
            expected: bytes.len() as u64
        })
    );
    // Another peer sending a piece nobody asked it for: ignored, nothing stored.
    assert_eq!(
        fetch.on_data(PeerKey(2), 1, bytes.len() as u64, piece(&bytes, 1)),
        Ok(Received::Pending)
    );
    assert_eq!(fetch.progress(), (0, bytes.len() as u64));
}

#[test]
fn the_size_most_peers_claim_wins_and_liars_about_size_are_not_asked() {
    let (bytes, hash) = info(3 * METADATA_PIECE);
    let mut fetch = MetadataFetch::new(hash);
    fetch.offer(PeerKey(1), 1, 30 << 20).unwrap();
    fetch.offer(PeerKey(2), 1, bytes.len() as u64).unwrap();
    fetch.offer(PeerKey(3), 1, bytes.len() as u64).unwrap();
    let got = run(
        &mut fetch,
        Instant::now(),
        |p, i| {
            assert_ne!(p, PeerKey(1), "the odd size is never asked");
            Some(piece(&bytes, i).to_vec())
        },
        bytes.len() as u64,
    );
    assert_eq!(got, Some(Received::Complete(bytes.clone())));
}

#[test]
fn rejects_and_timeouts_move_pieces_to_other_peers() {
    let (bytes, hash) = info(4 * METADATA_PIECE);
    let mut fetch = MetadataFetch::new(hash);
    let now = Instant::now();
    fetch.offer(PeerKey(1), 1, bytes.len() as u64).unwrap();
    fetch.offer(PeerKey(2), 1, bytes.len() as u64).unwrap();
    let mut out = Vec::new();
    fetch.requests(now, &mut out);
    for r in &out {
        if r.peer == PeerKey(1) {
            fetch.on_reject(now, r.peer, r.piece);
        }
    }
    // Peer 2 never answers: after the timeout, peer 1 (rested) takes everything.
    let later = now + REQUEST_TIMEOUT;
    fetch.on_tick(later);
    let mut again = Vec::new();
    fetch.requests(later, &mut again);
    assert!(!again.is_empty());
    assert!(again.iter().all(|r| r.peer == PeerKey(1)), "{again:?}");
}

#[test]
fn a_lying_peer_is_found_alone_and_the_fetch_completes_from_an_honest_one() {
    let (bytes, hash) = info(6 * METADATA_PIECE + 5);
    let total = bytes.len() as u64;
    let mut fetch = MetadataFetch::new(hash);
    let now = Instant::now();
    fetch.offer(PeerKey(1), 1, total).unwrap(); // liar
    fetch.offer(PeerKey(2), 1, total).unwrap();
    let mut outcomes = Vec::new();
    for _ in 0..100 {
        let mut out = Vec::new();
        fetch.requests(now, &mut out);
        if out.is_empty() {
            break;
        }
        for r in out {
            let mut data = piece(&bytes, r.piece).to_vec();
            if r.peer == PeerKey(1) {
                data[0] ^= 1;
            }
            let got = fetch.on_data(r.peer, r.piece, total, &data).unwrap();
            if got != Received::Pending {
                outcomes.push(got);
            }
        }
    }
    // Both contributed to the first copy: it fails and nobody is proven. From then on one
    // peer at a time (the liar, if asked alone, is proven) until an honest copy completes.
    assert_eq!(
        outcomes.first(),
        Some(&Received::HashFailed { proven: None })
    );
    assert!(
        matches!(outcomes.last(), Some(Received::Complete(b)) if *b == bytes),
        "{} outcomes",
        outcomes.len()
    );
    assert!(outcomes[1..outcomes.len() - 1].iter().all(|o| *o
        == Received::HashFailed {
            proven: Some(PeerKey(1))
        }));
}

#[test]
fn a_single_peer_whose_copy_fails_is_proven_at_once() {
    let (bytes, hash) = info(METADATA_PIECE + 1);
    let mut fetch = MetadataFetch::new(hash);
    fetch.offer(PeerKey(7), 1, bytes.len() as u64).unwrap();
    let got = run(
        &mut fetch,
        Instant::now(),
        |_, i| Some(vec![0; piece(&bytes, i).len()]),
        bytes.len() as u64,
    );
    assert_eq!(
        got,
        Some(Received::HashFailed {
            proven: Some(PeerKey(7))
        })
    );
    assert_eq!(fetch.offers(), 0, "not asked again");
}

#[test]
fn a_peer_leaving_returns_its_pieces() {
    let (bytes, hash) = info(2 * METADATA_PIECE);
    let mut fetch = MetadataFetch::new(hash);
    let now = Instant::now();
    fetch.offer(PeerKey(1), 1, bytes.len() as u64).unwrap();
    let mut out = Vec::new();
    fetch.requests(now, &mut out);
    assert_eq!(out.len(), 2);
    fetch.remove(PeerKey(1));
    fetch.offer(PeerKey(2), 5, bytes.len() as u64).unwrap();
    let mut again = Vec::new();
    fetch.requests(now, &mut again);
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|r| r.peer == PeerKey(2) && r.id == 5));
    // A late answer from the departed peer is ignored.
    assert_eq!(
        fetch.on_data(PeerKey(1), 0, bytes.len() as u64, piece(&bytes, 0)),
        Ok(Received::Pending)
    );
}
