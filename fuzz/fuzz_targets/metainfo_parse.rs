//! .torrent parsing: `Metainfo::from_bytes` never panics, and whatever loads is safe to use.
//!
//! Checked on every successfully parsed input:
//! - one piece hash per `piece_length` bytes of `total_length` (rounded up);
//! - file offsets are contiguous from 0 and lengths sum to `total_length`;
//! - every path element (and the name) passes `path::check_element`;
//! - `relative_path` of every file is relative, made only of normal components (no `..`,
//!   no root, no `.`), and starts with the torrent's name;
//! - `info_bytes` is a bencoded dictionary equal to the input's `info` bytes, and the info hash is
//!   its SHA-1;
//! - `magnet()` formats to a link that parses back to the same info hash (and the same
//!   magnet value).
#![no_main]

use battorrent::bencode::{decode, Limits};
use battorrent::metainfo::{path::check_element, Magnet, Metainfo};
use libfuzzer_sys::fuzz_target;
use sha1::{Digest, Sha1};
use std::path::Component;

fuzz_target!(|data: &[u8]| {
    let Ok(meta) = Metainfo::from_bytes(data) else {
        return;
    };
    let info = &meta.info;

    // Pieces.
    assert!(info.piece_length > 0, "piece_length 0 accepted");
    assert!(info.total_length > 0, "empty torrent accepted");
    assert_eq!(
        info.pieces.len() as u64,
        info.total_length.div_ceil(info.piece_length),
        "piece count does not match total_length / piece_length"
    );

    // Files: contiguous offsets summing to total_length.
    assert!(!info.files.is_empty(), "torrent with no files accepted");
    assert!(info.multi_file || info.files.len() == 1);
    let mut offset = 0u64;
    for f in &info.files {
        assert_eq!(f.offset, offset, "file offsets are not contiguous: {:?}", f);
        offset = offset
            .checked_add(f.length)
            .expect("file lengths overflow u64");
    }
    assert_eq!(offset, info.total_length, "file lengths do not sum to total_length");

    // Paths.
    assert!(
        check_element(&info.name).is_ok(),
        "unsafe name accepted: {:?}",
        info.name
    );
    for f in &info.files {
        assert!(!f.path.is_empty(), "empty file path accepted");
        for element in f.elements() {
            assert!(
                check_element(element).is_ok(),
                "unsafe path element accepted: {:?} in {:?}",
                element,
                f.path
            );
        }
        let rel = info.relative_path(f);
        assert!(rel.is_relative(), "relative_path is not relative: {rel:?}");
        for c in rel.components() {
            assert!(
                matches!(c, Component::Normal(_)),
                "relative_path {rel:?} has a non-normal component {c:?}"
            );
        }
        let expected_len = if info.multi_file { 1 + f.elements().count() } else { 1 };
        assert_eq!(
            rel.components().count(),
            expected_len,
            "relative_path {rel:?} does not have one component per element of {:?}",
            f.path
        );
        assert_eq!(
            rel.components().next(),
            Some(Component::Normal(info.name.as_ref())),
            "relative_path {rel:?} does not start with the name"
        );
    }

    // info_bytes is the info dictionary as it appears in the input.
    let info_doc = decode(&meta.info_bytes, Limits::default()).expect("info_bytes must decode");
    assert!(info_doc.root.as_dict().is_some(), "info_bytes is not a dictionary");
    let root = decode(data, Limits::default()).expect("parsed input must decode");
    let info_span = root.root.get("info").expect("parsed input has info").span.clone();
    assert_eq!(
        &data[info_span], &meta.info_bytes[..],
        "info_bytes are not the input's info dictionary"
    );
    let digest: [u8; 20] = Sha1::digest(&meta.info_bytes).into();
    assert_eq!(meta.info_hash.0, digest, "info hash is not SHA-1(info_bytes)");

    // Magnet round trip.
    let magnet = meta.magnet();
    let link = magnet.to_string();
    let parsed: Magnet = link
        .parse()
        .unwrap_or_else(|e| panic!("own magnet link {link:?} does not parse: {e}"));
    assert_eq!(parsed.info_hash, meta.info_hash, "magnet lost the info hash: {link}");
    assert_eq!(parsed.display_name.as_deref(), Some(info.name.as_str()));
    assert_eq!(parsed.exact_length, Some(info.total_length));
});
