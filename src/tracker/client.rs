//! The tracker client: announce and scrape, with BEP 12 tiers, over HTTP and (when given
//! the session's UDP socket) over UDP (BEP 15, see [`super::udp`]).
//!
//! URL building and response parsing are plain functions (tested without a network);
//! [`TrackerClient`] adds reqwest, timeouts, a response size cap and tier order.
//! Responses go through the strict bencode decoder, so a hostile tracker gets a clear error.

use super::guard;
use super::query::Event;
use super::udp::endpoint::UdpEndpoint;
use crate::bencode::{decode, Limits, Value};
use crate::core::{compact, InfoHash};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use url::Url;

/// Largest tracker response read (2 MiB: far beyond 200 peers in any form).
pub const MAX_RESPONSE_BYTES: usize = 2 << 20;

/// What a peer tells a tracker when it announces.
#[derive(Debug, Clone)]
pub struct AnnounceParams {
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
    pub port: u16,
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    pub event: Event,
    pub numwant: Option<u32>,
    /// Random per-session key (lets the tracker recognise us across address changes).
    pub key: u32,
}

/// A tracker's answer to an announce.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AnnounceResponse {
    /// Seconds to wait before the next regular announce.
    pub interval: u32,
    pub min_interval: Option<u32>,
    /// Seeders, if the tracker said.
    pub complete: Option<u64>,
    /// Leechers, if the tracker said.
    pub incomplete: Option<u64>,
    /// Peers from `peers` (compact or dictionary form) and `peers6`, port 0 dropped.
    pub peers: Vec<SocketAddr>,
    pub warning: Option<String>,
}

/// Scrape figures for one torrent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScrapeStats {
    pub complete: u64,
    pub incomplete: u64,
    pub downloaded: u64,
}

/// Why an announce or scrape failed.
#[derive(Debug, Error)]
pub enum ClientError {
    #[error("tracker {url} refused: {reason}")]
    Failure { url: String, reason: String },
    #[error("tracker {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("tracker {url} could not be reached: {error}")]
    Transport { url: String, error: String },
    #[error("tracker {url} sent a malformed response: {reason}")]
    Malformed { url: String, reason: String },
    #[error("tracker {url} sent more than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge { url: String },
    #[error("no usable tracker (HTTP, HTTPS, or UDP when the session has its UDP socket)")]
    NoTrackers,
    #[error("{0} has no scrape URL (its path does not end in 'announce')")]
    NoScrape(String),
    /// Not asked, or a redirect not followed: see [`super::guard`].
    #[error("tracker {url} not asked: {reason}")]
    Refused { url: String, reason: String },
}

/// Percent-encodes every byte outside the unreserved set (RFC 3986), for binary values.
pub fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The announce URL for `params` on `base` (which may already carry a query, such as a
/// private tracker's passkey).
pub fn announce_url(base: &Url, p: &AnnounceParams) -> String {
    let mut url = base.to_string();
    url.push(if base.query().is_some() { '&' } else { '?' });
    url += &format!(
        "info_hash={}&peer_id={}&port={}&uploaded={}&downloaded={}&left={}&compact=1&key={:08X}",
        percent_encode(&p.info_hash.0),
        percent_encode(&p.peer_id),
        p.port,
        p.uploaded,
        p.downloaded,
        p.left,
        p.key
    );
    let event = match p.event {
        Event::None => None,
        Event::Started => Some("started"),
        Event::Stopped => Some("stopped"),
        Event::Completed => Some("completed"),
    };
    if let Some(e) = event {
        url += &format!("&event={e}");
    }
    if let Some(n) = p.numwant {
        url += &format!("&numwant={n}");
    }
    url
}

/// The scrape URL of an announce URL (BEP 48: the last path element `announce...` becomes
/// `scrape...`), or `None` when the tracker has no scrape convention.
pub fn scrape_url(announce: &Url) -> Option<Url> {
    let path = announce.path();
    let cut = path.rfind('/')? + 1;
    let last = &path[cut..];
    let rest = last.strip_prefix("announce")?;
    let mut url = announce.clone();
    url.set_path(&format!("{}scrape{rest}", &path[..cut]));
    Some(url)
}

fn int_field(dict: &Value<'_>, key: &str) -> Option<u64> {
    dict.get(key)
        .and_then(Value::as_int)
        .and_then(|i| u64::try_from(i).ok())
}

/// Parses an announce response body: `Ok(Ok(response))`, `Ok(Err(failure reason))` when the
/// tracker refused, or `Err(what is malformed)`.
pub fn parse_announce_response(body: &[u8]) -> Result<Result<AnnounceResponse, String>, String> {
    let doc = decode(body, Limits::default()).map_err(|e| e.to_string())?;
    let root = &doc.root;
    if root.as_dict().is_none() {
        return Err(format!("expected a dictionary, found {}", root.type_name()));
    }
    if let Some(reason) = root.get("failure reason") {
        let text = reason
            .as_bytes()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        return Ok(Err(text.into_owned()));
    }
    let interval = int_field(root, "interval").ok_or("missing or invalid 'interval'")?;
    let mut peers = Vec::new();
    match root.get("peers") {
        Some(v) if v.as_bytes().is_some() => {
            let bytes = v.as_bytes().unwrap_or_default();
            if bytes.len() % 6 != 0 {
                return Err(format!(
                    "compact 'peers' is {} bytes, not a multiple of 6",
                    bytes.len()
                ));
            }
            peers.extend(compact::addrs(bytes, false));
        }
        Some(v) if v.as_list().is_some() => {
            for entry in v.as_list().unwrap_or_default() {
                let ip = entry
                    .get("ip")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<IpAddr>().ok());
                let port = int_field(entry, "port").and_then(|p| u16::try_from(p).ok());
                if let (Some(ip), Some(port)) = (ip, port) {
                    peers.push(SocketAddr::new(ip, port));
                }
            }
        }
        Some(v) => return Err(format!("'peers' is a {}", v.type_name())),
        None => {}
    }
    if let Some(bytes) = root.get("peers6").and_then(Value::as_bytes) {
        if bytes.len() % 18 != 0 {
            return Err(format!(
                "'peers6' is {} bytes, not a multiple of 18",
                bytes.len()
            ));
        }
        peers.extend(compact::addrs(bytes, true));
    }
    peers.retain(|p| p.port() != 0);
    Ok(Ok(AnnounceResponse {
        interval: interval.min(u64::from(u32::MAX)) as u32,
        min_interval: int_field(root, "min interval").map(|i| i.min(u64::from(u32::MAX)) as u32),
        complete: int_field(root, "complete"),
        incomplete: int_field(root, "incomplete"),
        peers,
        warning: root
            .get("warning message")
            .and_then(Value::as_bytes)
            .map(|w| String::from_utf8_lossy(w).into_owned()),
    }))
}

/// The HTTP client trackers are asked with (timeouts, user agent). It follows no redirect
/// itself: [`TrackerClient`] checks each one against [`super::guard`] first.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("BatTorrent/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("static client configuration")
}

/// Talks to a torrent's trackers in BEP 12 tier order.
#[derive(Clone)]
pub struct TrackerClient {
    http: reqwest::Client,
    /// The session's UDP socket, for `udp://` trackers (without it they are skipped).
    udp: Option<Arc<UdpEndpoint>>,
    tiers: Vec<Vec<Url>>,
}

impl TrackerClient {
    /// A client for `tiers` of tracker URLs; unparseable and non-HTTP(S) URLs are skipped.
    pub fn new(tiers: &[Vec<String>]) -> TrackerClient {
        TrackerClient::with_http(tiers, http_client())
    }

    /// Like [`TrackerClient::new`], sharing `http` (one connection pool and TLS setup for
    /// every torrent of a session; see [`http_client`]).
    pub fn with_http(tiers: &[Vec<String>], http: reqwest::Client) -> TrackerClient {
        TrackerClient::with_sockets(tiers, http, None)
    }

    /// Like [`TrackerClient::with_http`], with the session's UDP socket for `udp://`
    /// trackers.
    pub fn with_sockets(
        tiers: &[Vec<String>],
        http: reqwest::Client,
        udp: Option<Arc<UdpEndpoint>>,
    ) -> TrackerClient {
        let usable = |u: &Url| match u.scheme() {
            "http" | "https" => true,
            "udp" => udp.is_some() && u.host().is_some() && u.port().is_some(),
            _ => false,
        };
        let tiers = tiers
            .iter()
            .map(|tier| {
                tier.iter()
                    .filter_map(|u| Url::parse(u).ok())
                    .filter(usable)
                    .collect::<Vec<_>>()
            })
            .filter(|t| !t.is_empty())
            .collect();
        TrackerClient { http, udp, tiers }
    }

    /// Whether any tracker URL is usable.
    pub fn is_empty(&self) -> bool {
        self.tiers.is_empty()
    }

    /// The tiers in their current order (working trackers move to the front of their tier).
    pub fn tiers(&self) -> &[Vec<Url>] {
        &self.tiers
    }

    /// Announces to the first tracker that answers: tiers in order, URLs within a tier in
    /// order; the one that answers moves to the front of its tier (BEP 12). A tracker's
    /// `failure reason` is final (it was reached); other errors try the next URL.
    pub async fn announce(
        &mut self,
        params: &AnnounceParams,
    ) -> Result<(Url, AnnounceResponse), ClientError> {
        let mut last = ClientError::NoTrackers;
        for t in 0..self.tiers.len() {
            for i in 0..self.tiers[t].len() {
                let url = self.tiers[t][i].clone();
                match self.announce_to(&url, params).await {
                    Ok(response) => {
                        let working = self.tiers[t].remove(i);
                        self.tiers[t].insert(0, working);
                        return Ok((url, response));
                    }
                    Err(e @ ClientError::Failure { .. }) => return Err(e),
                    Err(e) => {
                        tracing::debug!("{}", crate::text::escape(&e.to_string()));
                        last = e;
                    }
                }
            }
        }
        Err(last)
    }

    /// Announces to one tracker.
    pub async fn announce_to(
        &self,
        url: &Url,
        params: &AnnounceParams,
    ) -> Result<AnnounceResponse, ClientError> {
        if url.scheme() == "udp" {
            return match &self.udp {
                Some(udp) => udp.announce(url, params).await,
                None => Err(ClientError::NoTrackers),
            };
        }
        let body = self.fetch(&announce_url(url, params)).await?;
        let malformed = |reason| ClientError::Malformed {
            url: url.to_string(),
            reason,
        };
        match parse_announce_response(&body).map_err(malformed)? {
            Ok(response) => Ok(response),
            Err(reason) => Err(ClientError::Failure {
                url: url.to_string(),
                reason,
            }),
        }
    }

    /// Scrapes `hashes` from the tracker whose announce URL is `announce` (BEP 48).
    /// Hashes the tracker does not mention are absent from the result.
    pub async fn scrape(
        &self,
        announce: &Url,
        hashes: &[InfoHash],
    ) -> Result<Vec<(InfoHash, ScrapeStats)>, ClientError> {
        let base =
            scrape_url(announce).ok_or_else(|| ClientError::NoScrape(announce.to_string()))?;
        let mut url = base.to_string();
        for (i, h) in hashes.iter().enumerate() {
            let sep = if i == 0 && base.query().is_none() {
                '?'
            } else {
                '&'
            };
            url += &format!("{sep}info_hash={}", percent_encode(&h.0));
        }
        let body = self.fetch(&url).await?;
        let malformed = |reason: String| ClientError::Malformed {
            url: base.to_string(),
            reason,
        };
        let doc = decode(&body, Limits::default()).map_err(|e| malformed(e.to_string()))?;
        if let Some(reason) = doc.root.get("failure reason").and_then(Value::as_bytes) {
            return Err(ClientError::Failure {
                url: base.to_string(),
                reason: String::from_utf8_lossy(reason).into_owned(),
            });
        }
        let files = doc
            .root
            .get("files")
            .and_then(Value::as_dict)
            .ok_or_else(|| malformed("no 'files' dictionary".into()))?;
        Ok(files
            .iter()
            .filter_map(|(key, stats)| {
                let hash = InfoHash(<[u8; 20]>::try_from(*key).ok()?);
                let get = |k| int_field(stats, k).unwrap_or(0);
                Some((
                    hash,
                    ScrapeStats {
                        complete: get("complete"),
                        incomplete: get("incomplete"),
                        downloaded: get("downloaded"),
                    },
                ))
            })
            .collect())
    }

    /// GETs `url` and returns the body, refusing non-200 answers and bodies over the cap.
    /// `url` and every redirect are checked against [`super::guard`] before a connection.
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, ClientError> {
        let shown = url.split('?').next().unwrap_or(url).to_owned();
        let transport = |e: reqwest::Error| ClientError::Transport {
            url: shown.clone(),
            error: e.without_url().to_string(),
        };
        let refused = |reason: String| ClientError::Refused {
            url: shown.clone(),
            reason,
        };
        let first = Url::parse(url).map_err(|e| refused(format!("not a URL: {e}")))?;
        guard::check(&first).await.map_err(refused)?;
        let mut target = first.clone();
        let mut redirects = 0;
        let mut response = loop {
            let response = self
                .http
                .get(target.clone())
                .send()
                .await
                .map_err(transport)?;
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .filter(|_| response.status().is_redirection());
            let Some(location) = location else {
                break response;
            };
            redirects += 1;
            if redirects > guard::MAX_REDIRECTS {
                return Err(refused(format!(
                    "more than {} redirects",
                    guard::MAX_REDIRECTS
                )));
            }
            let next = location
                .to_str()
                .ok()
                .and_then(|l| target.join(l).ok())
                .ok_or_else(|| refused("it redirects to an unreadable location".into()))?;
            guard::redirect(&first, &next).map_err(refused)?;
            guard::check(&next).await.map_err(refused)?;
            target = next;
        };
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(ClientError::TooLarge { url: shown });
            }
            body.extend_from_slice(&chunk);
        }
        if status != 200 {
            // Trackers often explain a refusal in a bencoded body even on 4xx.
            if let Ok(Err(reason)) = parse_announce_response(&body) {
                return Err(ClientError::Failure { url: shown, reason });
            }
            return Err(ClientError::Status { url: shown, status });
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests;
