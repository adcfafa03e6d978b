//! Which tracker URLs the client may ask: protection against request forgery (SSRF).
//!
//! A .torrent's author chooses its tracker URLs, and a tracker chooses where it redirects,
//! so without rules a torrent could make us send requests to services on this machine
//! (`http://127.0.0.1:8080/admin/...`). The rules follow libtorrent's `ssrf_mitigation`:
//! - a tracker on this machine (a loopback or unspecified address, by literal or by name)
//!   is asked only at a path starting with `/announce` (or `/scrape`, its BEP 48 twin);
//! - a redirect is followed only to the same host and port (or from http to https on the
//!   same host), at most [`MAX_REDIRECTS`] times, and the target obeys the rule above.
//!
//! Trackers on private networks (10.x, 192.168.x, ...) are allowed: LAN trackers are an
//! honest use, and libtorrent allows them too. Names are resolved once for the check and
//! again by the HTTP client, so a name whose answer flips in between is not caught.

use std::net::IpAddr;
use url::Url;

/// Redirects followed for one request.
pub const MAX_REDIRECTS: usize = 3;

/// Whether `ip` is this machine: loopback or unspecified, also inside an IPv6 address that
/// embeds an IPv4 one.
pub fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_unspecified(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.to_ipv4().is_some_and(|v4| is_local(IpAddr::V4(v4)))
        }
    }
}

/// Whether a tracker on this machine may be asked at `url`'s path.
fn local_path_allowed(url: &Url) -> bool {
    let path = url.path();
    path.starts_with("/announce") || path.starts_with("/scrape")
}

/// Why `url` must not be asked, when it points at this machine outside the tracker paths.
/// Host names are resolved to find out.
pub async fn check(url: &Url) -> Result<(), String> {
    if local_path_allowed(url) || !is_on_this_machine(url).await {
        return Ok(());
    }
    Err(format!(
        "{} is on this machine, and a tracker there is only asked at a path starting with \
         /announce (protection against request forgery)",
        url.host_str().unwrap_or_default()
    ))
}

/// Whether `url`'s host is this machine: a local address literal, or a name that resolves
/// to one (a name that does not resolve is left to the HTTP client to report).
async fn is_on_this_machine(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => is_local(ip.into()),
        Some(url::Host::Ipv6(ip)) => is_local(ip.into()),
        Some(url::Host::Domain(name)) => {
            let port = url.port_or_known_default().unwrap_or(80);
            match tokio::net::lookup_host((name, port)).await {
                Ok(mut addrs) => addrs.any(|a| is_local(a.ip())),
                Err(_) => false,
            }
        }
        None => false,
    }
}

/// Why a redirect from `from` (the URL first asked) to `to` must not be followed, if it
/// leaves the tracker's host and port. Only http to https on the same host may change them.
pub fn redirect(from: &Url, to: &Url) -> Result<(), String> {
    let same_host = from.host_str() == to.host_str();
    let same_origin =
        from.scheme() == to.scheme() && from.port_or_known_default() == to.port_or_known_default();
    let upgrade = from.scheme() == "http"
        && to.scheme() == "https"
        && from.port_or_known_default() == Some(80)
        && to.port_or_known_default() == Some(443);
    if same_host && (same_origin || upgrade) {
        return Ok(());
    }
    Err(format!(
        "it redirects to {}://{}:{}, another host or port; redirects are followed only \
         within the tracker's own host and port",
        to.scheme(),
        to.host_str().unwrap_or_default(),
        to.port_or_known_default().unwrap_or(0)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(u: &str) -> Url {
        Url::parse(u).unwrap()
    }

    #[test]
    fn local_addresses() {
        for ip in [
            "127.0.0.1",
            "127.9.9.9",
            "0.0.0.0",
            "::1",
            "::",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_local(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "10.99.0.1",
            "192.168.1.1",
            "8.8.8.8",
            "fd00::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_local(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn local_trackers_only_at_announce() {
        for ok in [
            "http://127.0.0.1:6969/announce",
            "http://127.0.0.1:6969/announce.php?pk=1",
            "http://127.0.0.1:6969/scrape",
            "http://10.99.0.1:6969/admin",
            "http://[fd00::1]/anything",
        ] {
            assert_eq!(check(&url(ok)).await, Ok(()), "{ok}");
        }
        for refused in [
            "http://127.0.0.1:8080/admin",
            "http://[::1]:8080/",
            "http://0.0.0.0/x/announce",
            "http://[::ffff:127.0.0.1]/x",
            "http://localhost:9/admin",
        ] {
            let e = check(&url(refused)).await.unwrap_err();
            assert!(
                e.contains("only asked at a path starting with /announce"),
                "{e}"
            );
        }
    }

    #[test]
    fn redirects_stay_on_the_tracker() {
        let from = url("http://t.example/announce");
        assert!(redirect(&from, &url("http://t.example/announce?x=1")).is_ok());
        assert!(redirect(&from, &url("http://t.example:80/a2")).is_ok());
        assert!(redirect(&from, &url("https://t.example/announce")).is_ok());
        for other in [
            "http://other.example/announce",
            "http://t.example:8080/announce",
            "http://127.0.0.1/announce",
            "https://t.example:8443/announce",
        ] {
            let e = redirect(&from, &url(other)).unwrap_err();
            assert!(e.contains("another host or port"), "{other}: {e}");
        }
        let tls = url("https://t.example/announce");
        assert!(redirect(&tls, &url("http://t.example/announce")).is_err());
    }
}
