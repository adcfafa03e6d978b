//! Loading a .torrent costs a bounded multiple of its size in heap (README, Limits): a
//! counting allocator watches the peak while 100,000 files load. Before the decoder stopped
//! keeping a value tree beside the result, this was 21 times the file.

use battorrent::metainfo::Metainfo;
#[path = "../examples/support/peak_heap.rs"]
mod peak_heap;

#[global_allocator]
static ALLOCATOR: peak_heap::Counting = peak_heap::Counting;

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

    let before = peak_heap::reset_peak();
    let meta = Metainfo::from_bytes(&bytes).unwrap();
    let peak = peak_heap::peak() - before;
    assert_eq!(meta.info.files.len(), 100_000);
    let multiple = peak as f64 / bytes.len() as f64;
    assert!(
        multiple < 5.0,
        "peak heap {peak} bytes is {multiple:.1} x the file"
    );
}
