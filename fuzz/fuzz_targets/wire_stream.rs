//! The peer wire decoder and rules on arbitrary bytes: the first two bytes choose a torrent
//! geometry (and, by the first's high bit, whether the fast extension is in force), the rest
//! is a stream of frames. Decoding and checking never panic, never consume more bytes than
//! given, every message that decodes re-encodes to exactly the bytes it came from, and no
//! fast extension message passes the rules unless the extension is in force.
#![no_main]

use battorrent::wire::{decode, max_message_len, Message, Rules};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let piece_length = 16384 * (1 + u64::from(data[0] % 8));
    let total = piece_length * u64::from(data[1]) + u64::from(data[0]) * 37;
    let mut rules = Rules::new(piece_length, total);
    let fast = data[0] & 0x80 != 0;
    rules.set_fast(fast);
    let max = max_message_len(rules.pieces() as usize);
    let mut rest = &data[2..];
    loop {
        match decode(rest, max) {
            Ok(Some((message, used))) => {
                assert!(used <= rest.len() && used >= 4);
                if !matches!(message, Message::Unknown { .. }) {
                    let mut again = Vec::new();
                    message.encode(&mut again);
                    assert_eq!(again, &rest[..used], "re-encoding differs: {message:?}");
                }
                if rules.check(&message).is_ok() {
                    assert!(fast || !message.is_fast(), "fast message passed: {message:?}");
                    if let Message::Bitfield(bytes) = message {
                        let bits = rules.bitfield(bytes).expect("checked bitfield converts");
                        assert_eq!(bits.len(), rules.pieces() as usize);
                    }
                }
                rest = &rest[used..];
            }
            Ok(None) | Err(_) => return,
        }
    }
});
