//! The DHT in the session: a bare magnet link (no tracker, no peer) is downloaded from a
//! seed found only through the DHT. Three sessions on loopback addresses: a bootstrap
//! node, a seed and a downloader, each with a DHT node on its peer port.

use battorrent::dht::{Config, DhtConfig};
use battorrent::metainfo::create::{build, scan, CreateOptions};
use battorrent::metainfo::Magnet;
use battorrent::session::{AddMagnet, AddTorrent, Session, SessionConfig, TorrentState};
use battorrent::wire::Bitfield;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

fn dht(bootstrap: Vec<SocketAddr>) -> DhtConfig {
    let mut config = DhtConfig {
        bootstrap,
        // Every node here shares 127.0.0.0/8.
        routing: Config {
            restrict_ips: false,
            ..Config::default()
        },
        ..DhtConfig::default()
    };
    config.responder.store.restrict_ips = false;
    config
}

fn session(ip: IpAddr, dht: DhtConfig) -> SessionConfig {
    SessionConfig {
        bind: SocketAddr::new(ip, 0),
        use_trackers: false,
        direct_writes: false,
        dht: Some(dht),
        ..SessionConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_magnet_link_downloads_from_a_seed_found_through_the_dht() {
    let ip = |last| IpAddr::from([127, 0, 0, last]);
    through_the_dht("v4", [ip(21), ip(22), ip(23)]).await;
}

/// The same over IPv6 (BEP 32): the sessions listen on ::1, so their DHT nodes speak IPv6
/// only and keep IPv6 tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_over_ipv6() {
    let v6 = IpAddr::from(std::net::Ipv6Addr::LOCALHOST);
    if std::net::UdpSocket::bind((v6, 0)).is_err() {
        eprintln!("skipped: no IPv6 loopback here");
        return;
    }
    through_the_dht("v6", [v6, v6, v6]).await;
}

/// A router, a seed and a downloader at `ips`: the downloader gets the bare magnet link's
/// metadata and data from the seed, found only through the DHT.
async fn through_the_dht(tag: &str, ips: [IpAddr; 3]) {
    let dir = std::env::temp_dir().join(format!("battorrent-dht-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let seed_dir = dir.join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(seed_dir.join("d.bin"), &data).unwrap();
    let input = scan(&seed_dir.join("d.bin"), false, false).unwrap();
    let meta = build(&input, &CreateOptions::default(), |_| {})
        .unwrap()
        .metainfo;

    let router = Session::start(session(ips[0], dht(vec![]))).await.unwrap();
    let boot = vec![router.local_addr()];
    let seeder = Session::start(session(ips[1], dht(boot.clone())))
        .await
        .unwrap();
    seeder
        .add(AddTorrent {
            meta: meta.clone(),
            dir: seed_dir.clone(),
            have: Some(Bitfield::repeat(true, meta.info.piece_count())),
            peers: vec![],
            paused: false,
        })
        .unwrap();
    let getter = Session::start(session(ips[2], dht(boot))).await.unwrap();
    // Nothing but the info hash.
    let magnet = Magnet {
        info_hash: meta.info_hash,
        display_name: None,
        trackers: vec![],
        web_seeds: vec![],
        exact_length: None,
        peers: vec![],
    };
    let id = getter
        .add_magnet(AddMagnet {
            magnet,
            dir: dir.join("get"),
            peers: vec![],
            paused: false,
        })
        .unwrap();
    let started = std::time::Instant::now();
    let done = tokio::time::timeout(Duration::from_secs(60), getter.completed(id)).await;
    eprintln!("found and downloaded in {:?}", started.elapsed());
    let stats = (router.dht_stats(), seeder.dht_stats(), getter.dht_stats());
    assert!(done.is_ok(), "not complete in 60 s; DHT: {stats:?}");
    assert_eq!(std::fs::read(dir.join("get/d.bin")).unwrap(), data);
    assert_eq!(getter.torrents()[0].state, TorrentState::Seeding);
    // A node that only queried the router is pinged before it counts (upkeep runs every
    // 5 s), and the figures are published once a second.
    let mut r = stats.0.unwrap();
    for _ in 0..120 {
        if r.nodes >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        r = router.dht_stats().unwrap();
    }
    assert!(r.nodes >= 2, "the bootstrap node knows both: {r:?}");
    let family_nodes = if ips[0].is_ipv6() {
        r.nodes6
    } else {
        r.nodes - r.nodes6
    };
    assert_eq!(family_nodes, r.nodes, "all in the {tag} table: {r:?}");
    getter.shutdown().await;
    seeder.shutdown().await;
    router.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
