//! The session as a library: several torrents in one process on one port, and a removed
//! torrent leaving nothing behind (tasks, sockets, file handles). Loopback only.

use battorrent::metainfo::create::{build, scan, CreateOptions};
use battorrent::metainfo::Metainfo;
use battorrent::session::{
    AddMagnet, AddTorrent, Session, SessionConfig, SessionEvent, TorrentState,
};
use battorrent::wire::Bitfield;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("battorrent-session-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `size` bytes of reproducible data as `dir/name` and makes a torrent of it.
fn torrent(dir: &Path, name: &str, size: usize, seed: u32) -> Metainfo {
    torrent_in_pieces(dir, name, size, seed, 32 * 1024)
}

/// [`torrent`] with pieces of `piece_length` bytes.
fn torrent_in_pieces(
    dir: &Path,
    name: &str,
    size: usize,
    seed: u32,
    piece_length: u64,
) -> Metainfo {
    let data: Vec<u8> = (0..size as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, data).unwrap();
    let input = scan(&path, false, false).unwrap();
    let options = CreateOptions {
        piece_length: Some(piece_length),
        ..CreateOptions::default()
    };
    build(&input, &options, |_| {}).unwrap().metainfo
}

fn config() -> SessionConfig {
    SessionConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        use_trackers: false,
        direct_writes: false,
        ..SessionConfig::default()
    }
}

fn add(meta: &Metainfo, dir: &Path, have: Option<bool>, peers: Vec<SocketAddr>) -> AddTorrent {
    let pieces = meta.info.piece_count();
    AddTorrent {
        meta: meta.clone(),
        dir: dir.to_path_buf(),
        have: have.map(|all| Bitfield::repeat(all, pieces)),
        peers,
        paused: false,
    }
}

/// The tests count tasks and descriptors of the whole process: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Tasks alive once they stopped ending (at most 5 s): connection tasks end as their
/// sockets close, a moment after the teardown returns.
async fn tasks_settle_to(target: usize) -> usize {
    let metrics = tokio::runtime::Handle::current().metrics();
    let mut left = metrics.num_alive_tasks();
    for _ in 0..50 {
        if left <= target {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = metrics.num_alive_tasks();
    }
    left
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_torrents_in_one_process_on_one_port_each_way() {
    let _serial = SERIAL.lock().await;
    let dir = scratch("three");
    let seed_dir = dir.join("seed");
    let get_dir = dir.join("get");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let metas: Vec<Metainfo> = (0..3)
        .map(|i| {
            torrent(
                &seed_dir,
                &format!("file{i}.bin"),
                200_000 + i * 77_777,
                i as u32,
            )
        })
        .collect();

    let seeder = Session::start(config()).await.unwrap();
    // The seeder checks its data itself (have: None): it must find every piece.
    let seed_ids: Vec<_> = metas
        .iter()
        .map(|m| seeder.add(add(m, &seed_dir, None, vec![])).unwrap())
        .collect();
    for id in &seed_ids {
        tokio::time::timeout(Duration::from_secs(20), seeder.completed(*id))
            .await
            .expect("the seeder's check finds every piece");
    }
    // A torrent is in a session once.
    assert!(seeder.add(add(&metas[0], &seed_dir, None, vec![])).is_err());

    let getter = Session::start(config()).await.unwrap();
    let mut events = getter.subscribe();
    let ids: Vec<_> = metas
        .iter()
        .map(|m| {
            getter
                .add(add(m, &get_dir, Some(false), vec![seeder.local_addr()]))
                .unwrap()
        })
        .collect();
    for id in &ids {
        tokio::time::timeout(Duration::from_secs(30), getter.completed(*id))
            .await
            .expect("every torrent completes through the one listening port");
    }
    for i in 0..3 {
        let name = format!("file{i}.bin");
        assert_eq!(
            std::fs::read(get_dir.join(&name)).unwrap(),
            std::fs::read(seed_dir.join(&name)).unwrap()
        );
    }
    let mut completed = 0;
    while let Ok(e) = events.try_recv() {
        if matches!(e, SessionEvent::Completed(_)) {
            completed += 1;
        }
    }
    assert_eq!(completed, 3, "one completion event per torrent");
    let list = getter.torrents();
    assert_eq!(list.len(), 3);
    assert!(list.iter().all(|t| t.state == TorrentState::Seeding));
    let uploaded: u64 = seeder.torrents().iter().map(|t| t.stats.uploaded).sum();
    let total: u64 = metas.iter().map(|m| m.info.total_length).sum();
    assert!(
        uploaded >= total,
        "the seeder uploaded {uploaded} of {total}"
    );
    getter.shutdown().await;
    seeder.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_torrent_leaves_no_task_socket_or_file_behind() {
    let _serial = SERIAL.lock().await;
    let dir = scratch("remove");
    let seed_dir = dir.join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let meta = torrent(&seed_dir, "x.bin", 500_000, 9);
    let metrics = tokio::runtime::Handle::current().metrics();

    let seeder = Session::start(config()).await.unwrap();
    let tasks_before = metrics.num_alive_tasks();
    let fds_before = open_fds();
    let id = seeder
        .add(add(&meta, &seed_dir, Some(true), vec![]))
        .unwrap();
    // A leecher connects and downloads; then the seeder's torrent is removed under it.
    let getter = Session::start(config()).await.unwrap();
    let gid = getter
        .add(add(
            &meta,
            &dir.join("get"),
            Some(false),
            vec![seeder.local_addr()],
        ))
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), getter.completed(gid))
        .await
        .unwrap();
    getter.pause(gid).unwrap();
    getter.resume(gid).unwrap();
    seeder.remove(id).await.unwrap();
    assert!(seeder.stats(id).is_none());
    getter.shutdown().await;
    let left = tasks_settle_to(tasks_before).await;
    assert!(
        left <= tasks_before,
        "{left} tasks alive, {tasks_before} before"
    );
    let fds = open_fds();
    assert!(
        fds <= fds_before,
        "{fds} descriptors open, {fds_before} before"
    );
    seeder.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_session_leaves_no_task_behind() {
    let _serial = SERIAL.lock().await;
    let dir = scratch("drop");
    let meta = torrent(&dir, "y.bin", 100_000, 3);
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let seeder = Session::start(config()).await.unwrap();
    seeder.add(add(&meta, &dir, None, vec![])).unwrap();
    let getter = Session::start(config()).await.unwrap();
    getter
        .add(add(
            &meta,
            &dir.join("get"),
            Some(false),
            vec![seeder.local_addr()],
        ))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(metrics.num_alive_tasks() > before);
    drop(getter);
    drop(seeder);
    let left = tasks_settle_to(before).await;
    assert!(
        left <= before,
        "{left} tasks alive after dropping, {before} before"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_meet_through_the_tracker_and_say_stopped_when_removed() {
    use battorrent::tracker::{serve, AccessList, ServerConfig, Shared};
    let _serial = SERIAL.lock().await;
    let dir = scratch("tracker");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let announce = format!("http://{}/announce", listener.local_addr().unwrap());
    let mut server = ServerConfig::default();
    server.tracker.interval = 10;
    server.tracker.min_interval = 1;
    let tracker = Shared::new(server, AccessList::Open);
    let stop = tokio_util::sync::CancellationToken::new();
    let serving = tokio::spawn(serve(
        tracker.clone(),
        vec![listener],
        stop.clone().cancelled_owned(),
    ));

    let data = dir.join("z.bin");
    std::fs::write(&data, vec![7u8; 300_000]).unwrap();
    let input = scan(&data, false, false).unwrap();
    let options = CreateOptions {
        trackers: vec![vec![announce]],
        piece_length: Some(32 * 1024),
        ..CreateOptions::default()
    };
    let meta = build(&input, &options, |_| {}).unwrap().metainfo;
    let with_trackers = || SessionConfig {
        use_trackers: true,
        ..config()
    };
    let seeder = Session::start(with_trackers()).await.unwrap();
    let sid = seeder.add(add(&meta, &dir, Some(true), vec![])).unwrap();
    let getter = Session::start(with_trackers()).await.unwrap();
    let gid = getter
        .add(add(&meta, &dir.join("get"), Some(false), vec![]))
        .unwrap();
    // No --peer: the getter learns of the seeder from the tracker only.
    tokio::time::timeout(Duration::from_secs(30), getter.completed(gid))
        .await
        .expect("the download completes through tracker peers");
    let seeders = |n: usize| {
        let tracker = tracker.clone();
        let hash = meta.info_hash;
        async move {
            for _ in 0..100 {
                if tracker.scrape(&hash).complete == n {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            false
        }
    };
    assert!(seeders(2).await, "the getter announced `completed`");
    seeder.remove(sid).await.unwrap();
    assert!(seeders(1).await, "the removed torrent announced `stopped`");
    getter.shutdown().await;
    assert!(seeders(0).await, "shutdown announced `stopped`");
    seeder.shutdown().await;
    stop.cancel();
    let _ = serving.await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_pieces_go_to_disk_block_by_block_and_verify() {
    // 4 MiB pieces are written as their blocks arrive and hashed as written.
    let _serial = SERIAL.lock().await;
    let dir = scratch("large-pieces");
    let seed_dir = dir.join("seed");
    let get_dir = dir.join("get");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let meta = torrent_in_pieces(&seed_dir, "big.bin", (22 << 20) + 12_345, 7, 4 << 20);
    let seeder = Session::start(config()).await.unwrap();
    let seed_id = seeder
        .add(add(&meta, &seed_dir, Some(true), vec![]))
        .unwrap();
    let getter = Session::start(config()).await.unwrap();
    let id = getter
        .add(add(&meta, &get_dir, Some(false), vec![seeder.local_addr()]))
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), getter.completed(id))
        .await
        .expect("the download completes");
    let got = std::fs::read(get_dir.join("big.bin")).unwrap();
    assert!(got == std::fs::read(seed_dir.join("big.bin")).unwrap());
    let stats = &getter.torrents()[0].stats;
    assert_eq!(
        (stats.hash_failures, stats.disk_errors),
        (0, 0),
        "{stats:?}"
    );
    let _ = seed_id;
    getter.shutdown().await;
    seeder.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_magnet_waits_for_peers_then_fetches_its_metadata_and_downloads_under_one_id() {
    let _serial = SERIAL.lock().await;
    let dir = scratch("magnet");
    let seed_dir = dir.join("seed");
    let get_dir = dir.join("get");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let meta = torrent(&seed_dir, "m.bin", 700_000, 5);
    let metrics = tokio::runtime::Handle::current().metrics();
    let tasks_before = metrics.num_alive_tasks();

    let getter = Session::start(config()).await.unwrap();
    let mut events = getter.subscribe();
    let magnet = battorrent::metainfo::Magnet {
        display_name: Some("shown until the metadata comes".into()),
        trackers: Vec::new(),
        ..meta.magnet()
    };
    let id = getter
        .add_magnet(AddMagnet {
            magnet,
            dir: get_dir.clone(),
            peers: Vec::new(),
            paused: false,
        })
        .unwrap();
    // It returns at once, fetching, with the link's name; nobody to ask yet.
    let listed = getter.torrents();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
    assert_eq!(listed[0].state, TorrentState::FetchingMetadata);
    assert_eq!(listed[0].name, "shown until the metadata comes");
    assert!(getter.metainfo(id).is_none());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(getter.torrents()[0].state, TorrentState::FetchingMetadata);
    // The same info hash cannot be added twice, as a magnet or as a .torrent.
    assert!(getter
        .add(add(&meta, &get_dir, Some(false), vec![]))
        .is_err());

    // A seed appears: the torrent fetches the metadata from it, then the data.
    let seeder = Session::start(config()).await.unwrap();
    seeder
        .add(add(&meta, &seed_dir, Some(true), vec![]))
        .unwrap();
    getter.add_peers(id, &[seeder.local_addr()]).unwrap();
    tokio::time::timeout(Duration::from_secs(30), getter.completed(id))
        .await
        .expect("the magnet completes");
    assert_eq!(
        std::fs::read(get_dir.join("m.bin")).unwrap(),
        std::fs::read(seed_dir.join("m.bin")).unwrap()
    );
    let fetched = getter.metainfo(id).expect("metainfo once fetched");
    assert_eq!(fetched.info_bytes, meta.info_bytes, "byte for byte");
    assert_eq!(fetched.info_hash, meta.info_hash);
    let listed = getter.torrents();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id, "the id never changes");
    assert_eq!(listed[0].name, "m.bin");
    assert_eq!(listed[0].state, TorrentState::Seeding);
    let mut saw = Vec::new();
    while let Ok(e) = events.try_recv() {
        saw.push(e);
    }
    assert!(saw.contains(&SessionEvent::State(id, TorrentState::Checking)));
    assert!(saw.contains(&SessionEvent::Metadata(id)));
    assert!(saw.contains(&SessionEvent::Completed(id)));

    // Removing it leaves nothing behind.
    getter.remove(id).await.unwrap();
    getter.shutdown().await;
    seeder.shutdown().await;
    let left = tasks_settle_to(tasks_before).await;
    assert!(
        left <= tasks_before,
        "{left} tasks alive, {tasks_before} before"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_recheck_hashes_only_the_pieces_it_names() {
    let _serial = SERIAL.lock().await;
    let dir = scratch("partial-recheck");
    let meta = torrent(&dir, "three.bin", 3 * 32 * 1024, 3);
    // Piece 0 is damaged on disk, while the resume data says every piece is had.
    let path = dir.join("three.bin");
    let mut data = std::fs::read(&path).unwrap();
    data[100] ^= 0xFF;
    std::fs::write(&path, &data).unwrap();
    let session = Session::start(config()).await.unwrap();
    let settled = |id| {
        let session = &session;
        async move {
            for _ in 0..500 {
                if session.state(id) != Some(TorrentState::Checking) {
                    return session.have(id).unwrap();
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("still checking after 5 s");
        }
    };
    // Only piece 2 hashed again: piece 0 is taken on trust (the caller vouches for it).
    let id = session
        .add_rechecking(add(&meta, &dir, Some(true), vec![]), vec![2])
        .unwrap();
    assert_eq!(settled(id).await, Bitfield::repeat(true, 3));
    session.remove(id).await.unwrap();
    // Piece 0 hashed again: it fails, and the others are kept without hashing.
    let id = session
        .add_rechecking(add(&meta, &dir, Some(true), vec![]), vec![0])
        .unwrap();
    let have = settled(id).await;
    assert_eq!(have.iter_ones().collect::<Vec<_>>(), vec![1, 2]);
    session.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
