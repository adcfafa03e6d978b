//! Telling a torrent's trackers about it: the events the engine asks for (started,
//! completed, stopped), regular announces at the tracker's interval, retries with growing
//! delays, and the peers they return fed to the engine's peer book.

use super::driver::TorrentHandle;
use crate::torrent::PeerSource;
use crate::tracker::client::{AnnounceParams, TrackerClient};
use crate::tracker::Event;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// First retry delay after a failed announce (doubles up to [`MAX_RETRY`]).
const FIRST_RETRY: Duration = Duration::from_secs(5);
const MAX_RETRY: Duration = Duration::from_secs(300);
/// The `stopped` announce on the way out waits at most this long.
const STOPPED_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs until the torrent is cancelled, then says `stopped` if it had said `started`.
pub async fn run(
    torrent: Arc<TorrentHandle>,
    mut client: TrackerClient,
    peer_id: [u8; 20],
    port: u16,
) {
    let key = fastrand::u32(..);
    let params = |event| {
        let stats = torrent.lock().engine.stats();
        AnnounceParams {
            info_hash: torrent.info_hash,
            peer_id,
            port,
            uploaded: stats.uploaded,
            downloaded: stats.downloaded,
            left: stats.total_bytes - stats.verified_bytes,
            event,
            numwant: Some(50),
            key,
        }
    };
    let mut active = false;
    let mut next: Option<tokio::time::Instant> = None;
    let mut retry = FIRST_RETRY;
    // An event whose announce failed is sent again with the retry (trackers count
    // `started` and `completed`).
    let mut unsent = Event::None;
    loop {
        let regular = async move {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let queued = super::driver::lock(&torrent.announce).pop_front();
        let event = match queued {
            Some(e) => e,
            None => tokio::select! {
                _ = torrent.announce_wake.notified() => continue,
                _ = regular => std::mem::replace(&mut unsent, Event::None),
                _ = torrent.cancel.cancelled() => break,
            },
        };
        if event == Event::Stopped {
            if active {
                stopped(&mut client, &params(Event::Stopped)).await;
            }
            active = false;
            next = None;
            continue;
        }
        active = true;
        let request = params(event);
        let answer = tokio::select! {
            r = client.announce(&request) => r,
            _ = torrent.cancel.cancelled() => break,
        };
        let wait = match answer {
            Ok((url, response)) => {
                tracing::info!("{url}: {} peers", response.peers.len());
                if let Some(w) = &response.warning {
                    tracing::warn!("{url} warns: {w}");
                }
                let mut d = torrent.lock();
                d.engine
                    .handle_peers(Instant::now(), PeerSource::Tracker, &response.peers);
                torrent.dispatch(&mut d);
                retry = FIRST_RETRY;
                unsent = Event::None;
                Duration::from_secs(u64::from(response.interval.clamp(10, 3600)))
            }
            Err(e) => {
                tracing::warn!("announce failed: {e}");
                if event != Event::None {
                    unsent = event;
                }
                let wait = retry;
                retry = (retry * 2).min(MAX_RETRY);
                wait
            }
        };
        next = Some(tokio::time::Instant::now() + wait);
    }
    if active {
        stopped(&mut client, &params(Event::Stopped)).await;
    }
}

async fn stopped(client: &mut TrackerClient, params: &AnnounceParams) {
    if tokio::time::timeout(STOPPED_TIMEOUT, client.announce(params))
        .await
        .is_err()
    {
        tracing::debug!("stopped announce timed out");
    }
}
