//! The tracker's announce logic behind hyper's HTTP/1.1 server instead of our own httparse
//! loop: the same query parser, swarm code and bencoded replies, on the same single-threaded
//! tokio runtime, so `bench/tracker_vs_opentracker.py` can compare the two HTTP layers.
//! A measurement aid, not a product: no limits, timeouts, scrape or stats.
//!
//! Run: cargo run --release --example tracker_hyper -- ADDR [ALLOW_FILE]

use battorrent::tracker::response::write_failure;
use battorrent::tracker::{parse_announce, AccessList, Tracker, TrackerConfig};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

struct State {
    tracker: Mutex<Tracker>,
    started: Instant,
}

fn reply(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", "text/plain".parse().expect("valid header"));
    response
}

fn handle(
    state: &State,
    req: &Request<hyper::body::Incoming>,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let mut body = Vec::with_capacity(512);
    if req.uri().path() != "/announce" {
        write_failure(&mut body, "unknown path: use /announce");
        return reply(StatusCode::NOT_FOUND, body);
    }
    let query = req.uri().query().unwrap_or("").as_bytes();
    let announce = match parse_announce(query) {
        Ok(a) => a,
        Err(e) => {
            write_failure(&mut body, &e.to_string());
            return reply(StatusCode::BAD_REQUEST, body);
        }
    };
    let now = state.started.elapsed().as_secs() as u32;
    let ip = peer.ip().to_canonical();
    let mut tracker = state.tracker.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(refusal) = tracker
        .announce(&announce, ip, now)
        .map(|a| a.write(&mut body))
    {
        body.clear();
        write_failure(&mut body, &refusal.to_string());
    }
    reply(StatusCode::OK, body)
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("usage: tracker_hyper ADDR [ALLOW_FILE]");
    let access = match args.next() {
        Some(path) => AccessList::Allow(
            AccessList::read_hashes(std::path::Path::new(&path)).expect("readable allow list"),
        ),
        None => AccessList::Open,
    };
    let config = TrackerConfig {
        max_numwant: 50,
        ..TrackerConfig::default()
    };
    let state = Arc::new(State {
        tracker: Mutex::new(Tracker::new(config, access)),
        started: Instant::now(),
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        eprintln!("hyper tracker listening on http://{addr}/announce");
        loop {
            let (stream, peer) = listener.accept().await?;
            let state = state.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let response = handle(&state, &req, peer);
                    async move { Ok::<_, Infallible>(response) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    })
}
