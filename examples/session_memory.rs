//! Measures a session's memory per idle torrent: resident size after adding N torrents
//! (64 KiB each, 4 pieces, seeding, no trackers, no peers) minus the resident size before,
//! with freed heap returned to the system before each reading (glibc `malloc_trim`), so
//! the figure counts live memory, not what loading left behind.
//! Run: cargo run --release --example session_memory [-- N [trackers]]

use battorrent::metainfo::Metainfo;
use battorrent::session::{AddTorrent, Session, SessionConfig};
use battorrent::wire::Bitfield;
use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Counts live heap bytes and blocks (to say what the resident size is made of).
struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
static LIVE_BLOCKS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[path = "support/rss.rs"]
mod support;

/// Resident set size in bytes, after trimming the heap.
fn rss() -> u64 {
    // SAFETY: malloc_trim only releases free memory; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
    support::rss()
}

/// A minimal single-file torrent of 64 KiB in 16 KiB pieces, with a tracker that refuses
/// connections when `tracker`.
fn torrent(i: usize, tracker: bool) -> Metainfo {
    let name = format!("f{i:05}.bin");
    let url = "http://127.0.0.1:9/announce";
    let announce = if tracker {
        format!("8:announce{}:{url}", url.len())
    } else {
        String::new()
    };
    let mut b = format!(
        "d{announce}4:infod6:lengthi65536e4:name{}:{name}12:piece lengthi16384e6:pieces80:",
        name.len()
    )
    .into_bytes();
    b.extend((0..80).map(|k| (k + i) as u8));
    b.extend_from_slice(b"ee");
    Metainfo::from_bytes(&b).expect("valid torrent")
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(1000, |a| a.parse().expect("a number"));
    // `trackers`: every torrent has an (unreachable) tracker, so its announcer runs.
    let trackers = std::env::args().nth(2).is_some_and(|a| a == "trackers");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let config = SessionConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            use_trackers: trackers,
            ..SessionConfig::default()
        };
        let session = Session::start(config).await.expect("session");
        let dir = std::env::temp_dir();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = rss();
        let (bytes0, blocks0) = (
            LIVE_BYTES.load(Ordering::Relaxed),
            LIVE_BLOCKS.load(Ordering::Relaxed),
        );
        for i in 0..n {
            let meta = torrent(i, trackers);
            session
                .add(AddTorrent {
                    meta,
                    dir: dir.clone(),
                    have: Some(Bitfield::repeat(true, 4)),
                    peers: Vec::new(),
                    paused: false,
                })
                .expect("added");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = rss();
        let (bytes1, blocks1) = (
            LIVE_BYTES.load(Ordering::Relaxed),
            LIVE_BLOCKS.load(Ordering::Relaxed),
        );
        println!(
            "{n} idle torrents: {:.1} MiB -> {:.1} MiB, {:.0} bytes per torrent",
            before as f64 / 1048576.0,
            after as f64 / 1048576.0,
            (after.saturating_sub(before)) as f64 / n as f64
        );
        println!(
            "live heap per torrent: {:.0} bytes in {:.1} blocks",
            bytes1.saturating_sub(bytes0) as f64 / n as f64,
            blocks1.saturating_sub(blocks0) as f64 / n as f64
        );
        session.shutdown().await;
    });
}
