//! `/stats` (JSON) and `/metrics` (Prometheus text) of the tracker server, HTTP and UDP.

use super::server::Shared;
use std::sync::atomic::{AtomicU64, Ordering};

/// Request counters for /stats and /metrics.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) announces: AtomicU64,
    pub(super) scrapes: AtomicU64,
    pub(super) other: AtomicU64,
    pub(super) bad_requests: AtomicU64,
    pub(super) refused: AtomicU64,
    pub(super) connections: AtomicU64,
    pub(super) connections_dropped: AtomicU64,
    pub(super) connections_evicted: AtomicU64,
}

fn counter(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

pub(super) fn stats_json(shared: &Shared) -> String {
    let (totals, memory, (evicted, prefixes)) = {
        let tracker = shared.tracker();
        (tracker.totals(), tracker.memory_used(), tracker.evictions())
    };
    let c = &shared.counters;
    let udp = shared.udp.counts();
    serde_json::json!({
        "uptime_seconds": shared.now(),
        "torrents": totals.torrents,
        "peers": totals.peers,
        "seeders": totals.seeders,
        "leechers": totals.peers - totals.seeders,
        "memory": {
            "used_bytes": memory,
            "budget_bytes": shared.config.tracker.max_memory,
            "prefix_budget_bytes": shared.config.tracker.max_memory_per_prefix,
            "prefixes": prefixes,
            "evicted_swarms": evicted,
        },
        "requests": {
            "announce": counter(&c.announces),
            "scrape": counter(&c.scrapes),
            "other": counter(&c.other),
        },
        "errors": {
            "bad_request": counter(&c.bad_requests),
            "refused": counter(&c.refused),
        },
        "connections": {
            "accepted": counter(&c.connections),
            "dropped_over_limit": counter(&c.connections_dropped),
            "evicted_silent": counter(&c.connections_evicted),
            "open": shared.open_connections(),
        },
        "unsent_bytes": shared.unsent.load(Ordering::Relaxed),
        "udp": {
            "requests": {
                "connect": udp.connects,
                "announce": udp.announces,
                "scrape": udp.scrapes,
            },
            "errors": {
                "bad_packet": udp.bad_packets,
                "bad_connection_id": udp.bad_connection_ids,
                "refused": udp.refused,
            },
        },
    })
    .to_string()
}

pub(super) fn metrics_text(shared: &Shared) -> String {
    let (totals, memory, (evicted, _)) = {
        let tracker = shared.tracker();
        (tracker.totals(), tracker.memory_used(), tracker.evictions())
    };
    let c = &shared.counters;
    let udp = shared.udp.counts();
    let mut s = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
        s += &format!(
            "# HELP battorrent_tracker_{name} {help}\n# TYPE battorrent_tracker_{name} {kind}\n"
        );
        for (labels, value) in samples {
            s += &format!("battorrent_tracker_{name}{labels} {value}\n");
        }
    };
    metric(
        "torrents",
        "gauge",
        "Torrents with at least one peer.",
        &[("", totals.torrents as u64)],
    );
    metric(
        "peers",
        "gauge",
        "Peers by state.",
        &[
            ("{state=\"seeder\"}", totals.seeders as u64),
            (
                "{state=\"leecher\"}",
                (totals.peers - totals.seeders) as u64,
            ),
        ],
    );
    metric(
        "requests_total",
        "counter",
        "HTTP requests by kind.",
        &[
            ("{kind=\"announce\"}", counter(&c.announces)),
            ("{kind=\"scrape\"}", counter(&c.scrapes)),
            ("{kind=\"other\"}", counter(&c.other)),
        ],
    );
    metric(
        "errors_total",
        "counter",
        "Requests answered with a failure reason.",
        &[
            ("{kind=\"bad_request\"}", counter(&c.bad_requests)),
            ("{kind=\"refused\"}", counter(&c.refused)),
        ],
    );
    metric(
        "udp_requests_total",
        "counter",
        "UDP requests answered, by kind (announces and scrapes with a valid connection id).",
        &[
            ("{kind=\"connect\"}", udp.connects),
            ("{kind=\"announce\"}", udp.announces),
            ("{kind=\"scrape\"}", udp.scrapes),
        ],
    );
    metric(
        "udp_errors_total",
        "counter",
        "UDP datagrams dropped (not a request; forged or expired connection id) or refused.",
        &[
            ("{kind=\"bad_packet\"}", udp.bad_packets),
            ("{kind=\"bad_connection_id\"}", udp.bad_connection_ids),
            ("{kind=\"refused\"}", udp.refused),
        ],
    );
    metric(
        "connections_total",
        "counter",
        "Connections accepted, dropped over a limit, and evicted before sending a request.",
        &[
            ("", counter(&c.connections)),
            ("{outcome=\"dropped\"}", counter(&c.connections_dropped)),
            ("{outcome=\"evicted\"}", counter(&c.connections_evicted)),
        ],
    );
    metric(
        "connections_open",
        "gauge",
        "Connections holding a slot.",
        &[("", shared.open_connections() as u64)],
    );
    metric(
        "unsent_bytes",
        "gauge",
        "Reply bytes waiting for clients to read them.",
        &[("", shared.unsent.load(Ordering::Relaxed) as u64)],
    );
    metric(
        "memory_bytes",
        "gauge",
        "Memory charged for peers and torrents, and the budget.",
        &[
            ("", memory as u64),
            ("{kind=\"budget\"}", shared.config.tracker.max_memory as u64),
        ],
    );
    metric(
        "evicted_swarms_total",
        "counter",
        "Swarms evicted to make room for newcomers.",
        &[("", evicted)],
    );
    s
}
