//! What a user controls in a running session (loopback): choosing files (a file left out
//! is not downloaded beyond the pieces it shares with wanted ones, the torrent is done once
//! the wanted files are, wanting the rest later completes it) and rate limits (a torrent's
//! download limit and the session's upload limit hold, and lifting them takes effect).

use battorrent::metainfo::create::{build, scan, CreateOptions};
use battorrent::picker::{NORMAL, SKIP};
use battorrent::session::{AddTorrent, Limits, Session, SessionConfig, TorrentState};
use battorrent::wire::Bitfield;
use std::net::SocketAddr;
use std::time::Duration;

fn config() -> SessionConfig {
    SessionConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        use_trackers: false,
        direct_writes: false,
        ..SessionConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_left_out_is_not_downloaded_and_wanting_it_later_completes_the_torrent() {
    let dir = std::env::temp_dir().join(format!("battorrent-selection-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let seed_dir = dir.join("seed");
    let folder = seed_dir.join("set");
    std::fs::create_dir_all(&folder).unwrap();
    let sizes = [
        ("a.bin", 100_000u32),
        ("b.bin", 300_000),
        ("c.bin", 200_000),
    ];
    for (i, (name, size)) in sizes.iter().enumerate() {
        let data: Vec<u8> = (0..*size)
            .map(|x| (x.wrapping_mul(2_654_435_761).wrapping_add(i as u32) >> 9) as u8)
            .collect();
        std::fs::write(folder.join(name), data).unwrap();
    }
    let input = scan(&folder, false, false).unwrap();
    let options = CreateOptions {
        piece_length: Some(32 * 1024),
        ..CreateOptions::default()
    };
    let meta = build(&input, &options, |_| {}).unwrap().metainfo;
    let names: Vec<&str> = meta.info.files.iter().map(|f| &*f.path).collect();
    assert_eq!(names, ["a.bin", "b.bin", "c.bin"]);

    let seeder = Session::start(config()).await.unwrap();
    seeder
        .add(AddTorrent {
            meta: meta.clone(),
            dir: seed_dir.clone(),
            have: Some(Bitfield::repeat(true, meta.info.piece_count())),
            peers: vec![],
            paused: false,
        })
        .unwrap();
    let getter = Session::start(config()).await.unwrap();
    let get_dir = dir.join("get");
    let id = getter
        .add(AddTorrent {
            meta: meta.clone(),
            dir: get_dir.clone(),
            have: Some(Bitfield::repeat(false, meta.info.piece_count())),
            peers: vec![seeder.local_addr()],
            paused: true,
        })
        .unwrap();
    getter
        .set_file_priorities(id, &[NORMAL, SKIP, NORMAL])
        .unwrap();
    assert!(
        getter.set_file_priorities(id, &[NORMAL]).is_err(),
        "one per file"
    );
    getter.resume(id).unwrap();
    tokio::time::timeout(Duration::from_secs(30), getter.completed(id))
        .await
        .expect("the wanted files complete");
    let stats = getter.stats(id).unwrap();
    assert_eq!(stats.wanted_bytes, stats.verified_bytes);
    assert_eq!(stats.left_bytes, 0);
    assert!(stats.verified_bytes < 600_000);
    let files = getter.file_stats(id).unwrap();
    assert_eq!(files[0].done_bytes, 100_000);
    assert_eq!(files[2].done_bytes, 200_000);
    assert_eq!(files[1].priority, SKIP);
    // b.bin: only the pieces it shares with a.bin and c.bin (32 KiB at most at each end).
    assert!(files[1].done_bytes <= 2 * 32 * 1024, "{files:?}");
    for name in ["a.bin", "c.bin"] {
        assert_eq!(
            std::fs::read(get_dir.join("set").join(name)).unwrap(),
            std::fs::read(folder.join(name)).unwrap(),
            "{name}"
        );
    }
    assert_eq!(getter.torrents()[0].state, TorrentState::Seeding);

    // Wanting b.bin too: the torrent downloads again and completes.
    getter.set_file_priorities(id, &[NORMAL; 3]).unwrap();
    assert!(!getter.stats(id).unwrap().complete);
    // (The seed was closed once nothing more was wanted from it: it is dialled again.)
    tokio::time::timeout(Duration::from_secs(30), getter.completed(id))
        .await
        .expect("the whole torrent completes");
    for (name, _) in sizes {
        assert_eq!(
            std::fs::read(get_dir.join("set").join(name)).unwrap(),
            std::fs::read(folder.join(name)).unwrap(),
            "{name}"
        );
    }
    getter.shutdown().await;
    seeder.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A seeder and a downloader of `size` bytes in pieces of `piece_length`; returns them
/// with the downloader's torrent id, paused.
async fn pair(
    tag: &str,
    size: usize,
    piece_length: u64,
) -> (
    Session,
    Session,
    battorrent::session::TorrentId,
    std::path::PathBuf,
) {
    let dir = std::env::temp_dir().join(format!("battorrent-limits-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let seed_dir = dir.join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let data: Vec<u8> = (0..size as u32)
        .map(|x| (x.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    std::fs::write(seed_dir.join("d.bin"), data).unwrap();
    let input = scan(&seed_dir.join("d.bin"), false, false).unwrap();
    let options = CreateOptions {
        piece_length: Some(piece_length),
        ..CreateOptions::default()
    };
    let meta = build(&input, &options, |_| {}).unwrap().metainfo;
    let seeder = Session::start(config()).await.unwrap();
    seeder
        .add(AddTorrent {
            meta: meta.clone(),
            dir: seed_dir,
            have: Some(Bitfield::repeat(true, meta.info.piece_count())),
            peers: vec![],
            paused: false,
        })
        .unwrap();
    let getter = Session::start(config()).await.unwrap();
    let id = getter
        .add(AddTorrent {
            meta: meta.clone(),
            dir: dir.join("get"),
            have: Some(Bitfield::repeat(false, meta.info.piece_count())),
            peers: vec![seeder.local_addr()],
            paused: true,
        })
        .unwrap();
    (seeder, getter, id, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torrents_download_limit_and_the_sessions_upload_limit_hold() {
    const SIZE: usize = 2 << 20;
    // A torrent's download limit: 512 KiB/s for 2 MiB is about 4 s (a quarter second of
    // burst).
    let (seeder, getter, id, dir) = pair("down", SIZE, 256 * 1024).await;
    let limits = Limits {
        download: Some(512 * 1024),
        upload: None,
    };
    getter.set_torrent_limits(id, limits).unwrap();
    assert_eq!(getter.torrent_limits(id).unwrap(), limits);
    let start = std::time::Instant::now();
    getter.resume(id).unwrap();
    tokio::time::timeout(Duration::from_secs(30), getter.completed(id))
        .await
        .expect("completes");
    let took = start.elapsed().as_secs_f64();
    assert!(
        (3.2..12.0).contains(&took),
        "2 MiB at 512 KiB/s took {took:.2} s"
    );
    getter.shutdown().await;
    seeder.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);

    // The session's upload limit, set while running: 1 MiB/s for 2 MiB, about 2 s; then
    // lifted.
    let (seeder, getter, id, dir) = pair("up", SIZE, 256 * 1024).await;
    seeder.set_limits(Limits {
        download: None,
        upload: Some(1 << 20),
    });
    assert_eq!(seeder.limits().upload, Some(1 << 20));
    let start = std::time::Instant::now();
    getter.resume(id).unwrap();
    tokio::time::timeout(Duration::from_secs(30), getter.completed(id))
        .await
        .expect("completes");
    let took = start.elapsed().as_secs_f64();
    assert!(
        (1.5..8.0).contains(&took),
        "2 MiB at 1 MiB/s took {took:.2} s"
    );
    seeder.set_limits(Limits::default());
    assert_eq!(seeder.limits(), Limits::default());
    getter.shutdown().await;
    seeder.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_gets_the_bytes_it_asks_for_first_while_the_rest_downloads() {
    const SIZE: usize = 4 << 20;
    // 256 pieces of 16 KiB: most are not even started when the reader asks.
    let (seeder, getter, id, dir) = pair("stream", SIZE, 16 * 1024).await;
    let original = std::fs::read(dir.join("seed/d.bin")).unwrap();
    // 1 MiB/s from the seeder: the whole torrent takes about 4 s.
    seeder.set_limits(Limits {
        download: None,
        upload: Some(1 << 20),
    });
    getter.resume(id).unwrap();
    // The end of the data, then a range across pieces in the middle.
    let tail = getter
        .read_at(id, (SIZE - 100_000) as u64, 100_000)
        .await
        .unwrap();
    let progress = getter.stats(id).unwrap();
    assert_eq!(tail, &original[SIZE - 100_000..]);
    assert!(
        progress.verified_bytes < (SIZE as u64) / 3,
        "the reader's pieces came first: {} of {SIZE} bytes verified when they arrived",
        progress.verified_bytes
    );
    let middle = getter.read_at(id, 1_000_000, 300_000).await.unwrap();
    assert_eq!(middle, &original[1_000_000..1_300_000]);
    assert!(
        getter.read_at(id, SIZE as u64 - 1, 2).await.is_err(),
        "past the end"
    );
    seeder.set_limits(Limits::default());
    tokio::time::timeout(Duration::from_secs(30), getter.completed(id))
        .await
        .expect("completes");
    getter.shutdown().await;
    seeder.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
