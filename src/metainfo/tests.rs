//! Loading tests: exact bytes hashed, UTF-8 preferences, padding, and paths that cost time
//! or memory out of proportion to their size.

use super::Metainfo;
use sha1::{Digest, Sha1};
use std::time::{Duration, Instant};

fn torrent(info: impl AsRef<[u8]>) -> Vec<u8> {
    [b"d8:announce9:http://x/4:info", info.as_ref(), b"e"].concat()
}

#[test]
fn info_hash_is_over_the_original_bytes_even_when_unsorted() {
    // Keys out of order plus an unknown key: a re-encoding would sort them and drop
    // nothing, giving a different hash. The raw bytes must be hashed.
    let info = format!(
        "d4:name1:x12:piece lengthi16384e6:lengthi5e6:pieces20:{}7:unknowni1ee",
        "a".repeat(20)
    );
    let bytes = torrent(&info);
    let meta = Metainfo::from_bytes(&bytes).unwrap();
    let expected: [u8; 20] = Sha1::digest(info.as_bytes()).into();
    assert_eq!(meta.info_hash.0, expected);
    assert_eq!(&*meta.info_bytes, info.as_bytes());
    assert!(
        meta.warnings.iter().any(|w| w.contains("out of order")),
        "{:?}",
        meta.warnings
    );
}

#[test]
fn utf8_names_are_preferred_and_trackers_fall_back_to_announce() {
    let info = [
        &b"d5:filesld6:lengthi3e4:pathl2:\xff\xfee10:path.utf-8l5:caf\xc3\xa9eee"[..],
        b"4:name3:old10:name.utf-84:new!12:piece lengthi16384e6:pieces20:",
        &[b'a'; 20],
        b"e",
    ]
    .concat();
    let meta = Metainfo::from_bytes(&torrent(&info)).unwrap();
    assert_eq!(meta.info.name, "new!");
    assert_eq!(&*meta.info.files[0].path, "caf\u{e9}");
    assert_eq!(meta.trackers, [["http://x/"]]);
}

#[test]
fn padding_files_are_marked_and_counted_in_offsets() {
    let info = format!(
        "d5:filesld6:lengthi5e4:pathl1:aeed4:attr1:p6:lengthi16379e4:pathl4:.pad5:16379eed6:lengthi3e4:pathl1:beee4:name1:d12:piece lengthi16384e6:pieces40:{}e",
        "a".repeat(40)
    );
    let meta = Metainfo::from_bytes(&torrent(&info)).unwrap();
    let files = &meta.info.files;
    assert!(!files[0].padding && files[1].padding && !files[2].padding);
    assert_eq!(files[2].offset, 16384);
    assert_eq!(meta.info.piece_len(1), 3);
}

/// A multi-file torrent named `d` over `paths`, one byte per file.
fn folder(paths: impl IntoIterator<Item = Vec<String>>) -> Vec<u8> {
    let mut files = Vec::new();
    for path in paths {
        files.extend_from_slice(b"d6:lengthi1e4:pathl");
        for element in path {
            files.extend_from_slice(format!("{}:{element}", element.len()).as_bytes());
        }
        files.extend_from_slice(b"ee");
    }
    let info = [
        &b"d5:filesl"[..],
        &files,
        b"e4:name1:d12:piece lengthi1048576e6:pieces20:",
        &[b'x'; 20],
        b"e",
    ]
    .concat();
    torrent(info)
}

#[test]
fn a_very_deep_path_is_refused_at_once() {
    // 30 KB: one path 10,000 elements deep. Checking every prefix of it took 20 s and
    // 1.2 GB before paths were capped and checked in linear time.
    let bytes = folder([vec!["a".to_owned(); 10_000]]);
    let started = Instant::now();
    let error = Metainfo::from_bytes(&bytes).unwrap_err().to_string();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        error.contains("'info.files[0].path[2047]'")
            && error.contains("path is at least 4097 bytes long; at most 4096 are allowed"),
        "{error}"
    );
    let long = folder([vec!["a".to_owned(), "x".repeat(256)]]);
    let error = Metainfo::from_bytes(&long).unwrap_err().to_string();
    assert!(
        error.contains("path element is 256 bytes long; at most 255"),
        "{error}"
    );
}

#[test]
fn many_deep_files_under_the_caps_load_in_linear_time() {
    // 300 files 2,000 elements deep (4,002 bytes each with the name): 1.8 MB. Checking every
    // prefix of every path took over a minute in a debug build.
    let paths = (0..300).map(|i| {
        let mut path = vec!["a".to_owned(); 1999];
        path.push(format!("f{i}"));
        path
    });
    let bytes = folder(paths);
    let started = Instant::now();
    let meta = Metainfo::from_bytes(&bytes).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(meta.info.files.len(), 300);
    // Clashes deep down are still found.
    let clash = folder([vec!["a".to_owned(); 1500], vec!["a".to_owned(); 1501]]);
    let error = Metainfo::from_bytes(&clash).unwrap_err().to_string();
    assert!(error.contains("is both a file and a folder"), "{error}");
}
