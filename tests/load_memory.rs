//! Loading a .torrent costs a bounded multiple of its size in heap (README, Limits): a
//! counting allocator watches the peak while 100,000 files load. Before the decoder stopped
//! keeping a value tree beside the result, this was 21 times the file.

use battorrent::metainfo::Metainfo;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn a_hundred_thousand_files_load_in_under_five_times_the_file() {
    let mut bytes = b"d4:infod5:filesl".to_vec();
    for i in 0..100_000 {
        let name = format!("f{i}.bin");
        bytes.extend_from_slice(format!("d6:lengthi1e4:pathl{}:{name}ee", name.len()).as_bytes());
    }
    bytes.extend_from_slice(b"e4:name1:d12:piece lengthi1048576e6:pieces20:");
    bytes.extend_from_slice(&[b'x'; 20]);
    bytes.extend_from_slice(b"ee");

    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let meta = Metainfo::from_bytes(&bytes).unwrap();
    let peak = PEAK.load(Ordering::Relaxed) - before;
    assert_eq!(meta.info.files.len(), 100_000);
    let multiple = peak as f64 / bytes.len() as f64;
    assert!(
        multiple < 5.0,
        "peak heap {peak} bytes is {multiple:.1} x the file"
    );
}
