//! Magnet link parsing: `str::parse::<Magnet>` never panics, and any magnet that parses
//! formats (`to_string`) to a link that parses back to an equal value (same info hash, name,
//! length, trackers and web seeds).
#![no_main]

use battorrent::metainfo::Magnet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(magnet) = text.parse::<Magnet>() else {
        return;
    };
    let link = magnet.to_string();
    let again: Magnet = link
        .parse()
        .unwrap_or_else(|e| panic!("formatted magnet {link:?} does not parse: {e}"));
    assert_eq!(again.info_hash, magnet.info_hash, "info hash changed: {text:?} -> {link:?}");
    assert_eq!(again, magnet, "magnet changed on round trip: {text:?} -> {link:?}");
    // Formatting is stable after one round.
    assert_eq!(again.to_string(), link, "to_string is not a fixed point");
});
