//! Measures what loading a .torrent costs: peak heap while `Metainfo::from_bytes` runs
//! (over the heap in use before it, so the input itself is not counted), as a multiple of
//! the file's size, and the time it takes.
//!
//! Run: cargo run --example metainfo_memory -- [many FILES | flat FILES | deep ELEMENTS | deep-files FILES ELEMENTS]
//! - `many 600000`: files two folders deep (names like `d1/d23/f456.bin`).
//! - `flat 1000000`: files in the torrent's folder (`f123.bin`).
//! - `deep 10000`: one file whose path has that many one-letter elements.
//! - `deep-files 300 1500`: that many files, each as deep, differing in the last element.

use battorrent::metainfo::Metainfo;
#[path = "support/peak_heap.rs"]
mod peak_heap;
use std::time::Instant;

#[global_allocator]
static ALLOCATOR: peak_heap::Counting = peak_heap::Counting;

/// A multi-file torrent over `paths` (each a list of elements), one byte per file.
fn torrent(paths: impl Iterator<Item = Vec<String>>) -> Vec<u8> {
    let mut files = Vec::new();
    let mut count = 0u64;
    for path in paths {
        files.extend_from_slice(b"d6:lengthi1e4:pathl");
        for element in path {
            files.extend_from_slice(format!("{}:{element}", element.len()).as_bytes());
        }
        files.extend_from_slice(b"ee");
        count += 1;
    }
    let piece_length = 1u64 << 20;
    let pieces = count.div_ceil(piece_length) as usize;
    let mut out = b"d4:infod5:filesl".to_vec();
    out.extend_from_slice(&files);
    out.extend_from_slice(b"e4:name4:test12:piece lengthi1048576e6:pieces");
    out.extend_from_slice(format!("{}:", pieces * 20).as_bytes());
    out.resize(out.len() + pieces * 20, b'x');
    out.extend_from_slice(b"ee");
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: usize| {
        args.get(i)
            .map_or(default, |a| a.parse().expect("a number"))
    };
    let mode = args.first().map_or("flat", String::as_str);
    let bytes = match mode {
        "many" => torrent((0..number(1, 600_000)).map(|i| {
            vec![
                format!("d{}", i / 100_000),
                format!("d{}", i / 1000 % 100),
                format!("f{}.bin", i % 1000),
            ]
        })),
        "flat" => torrent((0..number(1, 1_000_000)).map(|i| vec![format!("f{i}.bin")])),
        "deep" => torrent(std::iter::once(vec!["a".to_owned(); number(1, 10_000)])),
        "deep-files" => {
            let depth = number(2, 1500);
            torrent((0..number(1, 300)).map(|i| {
                let mut path = vec!["a".to_owned(); depth - 1];
                path.push(format!("f{i}"));
                path
            }))
        }
        other => panic!("unknown mode {other}"),
    };
    let before = peak_heap::reset_peak();
    let started = Instant::now();
    let result = Metainfo::from_bytes(&bytes);
    let elapsed = started.elapsed();
    let peak = peak_heap::peak() - before;
    let outcome = match &result {
        Ok(meta) => format!("loaded {} files", meta.info.files.len()),
        Err(e) => format!(
            "refused: {}",
            e.to_string().chars().take(120).collect::<String>()
        ),
    };
    println!(
        "{mode}: {} bytes, {outcome}, {:.3} s, peak heap {} bytes ({:.1} MiB) = {:.1} x the file",
        bytes.len(),
        elapsed.as_secs_f64(),
        peak,
        peak as f64 / f64::from(1 << 20),
        peak as f64 / bytes.len() as f64
    );
}
