//! A torrent of more files than the process may open at once downloads and seeds (issue
//! 11, item 10). Its own test binary: it lowers the process's open-file limit for good.

use battorrent::metainfo::create::{build, scan, CreateOptions};
use battorrent::session::{AddTorrent, Session, SessionConfig};
use battorrent::wire::Bitfield;
use std::net::SocketAddr;
use std::time::Duration;

const FILES: usize = 1_500;
/// Below the file count: every file open at once would not fit.
const FD_LIMIT: u64 = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifteen_hundred_files_under_a_limit_of_four_hundred_descriptors() {
    let limit = libc::rlimit {
        rlim_cur: FD_LIMIT,
        rlim_max: FD_LIMIT,
    };
    // SAFETY: setrlimit reads the struct passed in.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    let dir = std::env::temp_dir().join(format!("battorrent-many-files-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let seed_dir = dir.join("seed");
    let get_dir = dir.join("get");
    std::fs::create_dir_all(seed_dir.join("many")).unwrap();
    for i in 0..FILES {
        let data: Vec<u8> = (0..1000).map(|j| ((i * 7 + j) % 251) as u8).collect();
        std::fs::write(seed_dir.join(format!("many/{i:04}.bin")), data).unwrap();
    }
    let input = scan(&seed_dir.join("many"), false, false).unwrap();
    let options = CreateOptions {
        piece_length: Some(16 * 1024),
        ..CreateOptions::default()
    };
    let meta = build(&input, &options, |_| {}).unwrap().metainfo;
    let config = || SessionConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        use_trackers: false,
        direct_writes: false,
        ..SessionConfig::default()
    };
    let pieces = meta.info.piece_count();
    let seeder = Session::start(config()).await.unwrap();
    let seed_id = seeder
        .add(AddTorrent {
            meta: meta.clone(),
            dir: seed_dir.clone(),
            have: None,
            peers: vec![],
            paused: false,
        })
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), seeder.completed(seed_id))
        .await
        .expect("the seeder's check finds every piece");
    let getter = Session::start(config()).await.unwrap();
    let id = getter
        .add(AddTorrent {
            meta,
            dir: get_dir.clone(),
            have: Some(Bitfield::repeat(false, pieces)),
            peers: vec![seeder.local_addr()],
            paused: false,
        })
        .unwrap();
    let done = tokio::time::timeout(Duration::from_secs(120), getter.completed(id)).await;
    let errors = (getter.error(id), seeder.error(seed_id));
    assert!(done.is_ok(), "not complete: {errors:?}");
    for i in 0..FILES {
        let name = format!("many/{i:04}.bin");
        assert_eq!(
            std::fs::read(get_dir.join(&name)).unwrap(),
            std::fs::read(seed_dir.join(&name)).unwrap(),
            "{name}"
        );
    }
    assert_eq!(seeder.torrents()[0].stats.disk_errors, 0);
    getter.shutdown().await;
    seeder.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
