//! Inbound query limits per source: a node that floods us is ignored for a while.
//!
//! Each source ([`Source`]: an IPv4 address or an IPv6 /64) has a token bucket, kept as
//! one instant (the generic cell rate algorithm: the bucket is full when that instant is
//! not in the future). A source may send [`RateConfig::burst`] queries at once and
//! [`RateConfig::rate`] a second after that; the first query over the limit blocks it for
//! [`RateConfig::block_for`], during which everything it sends is ignored (no reply, not
//! even an error). The block is not extended by what arrives during it, so a flood of
//! forged source addresses cannot keep a real node out for longer than one block at a
//! time.
//!
//! libtorrent's defaults are the model: `dht_block_ratelimit` 5 messages a second,
//! counted over 10 seconds (50 at once), and `dht_block_timeout` 5 minutes.
//!
//! The table of sources is bounded ([`RateConfig::max_sources`]). A full bucket that is
//! not blocked says nothing a new entry would not, so those go first; if the table is
//! still full, an eighth of it is dropped at once (so a flood of new addresses costs a
//! sweep per eighth of the table, not per query), least informative first: the fullest
//! buckets, and blocked sources last of all, whose block ends soonest first.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

/// Where a query comes from, for budgets: an IPv4 address, or the /64 of an IPv6 address
/// (one host or home network is given a whole /64: counting its addresses apart would
/// give it 2^64 budgets). IPv4-mapped IPv6 addresses count as their IPv4 address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Source(IpAddr);

impl Source {
    /// The source `ip` counts against.
    pub fn of(ip: IpAddr) -> Source {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !(u128::from(u64::MAX));
                Source(IpAddr::V6(Ipv6Addr::from(bits)))
            }
            v4 => Source(v4),
        }
    }

    /// The address standing for the source: the IPv4 address, or the /64 with its low
    /// 64 bits cleared.
    pub fn ip(&self) -> IpAddr {
        self.0
    }
}

/// How many queries a source may send; [`RateConfig::default`] is libtorrent's. Tests
/// running many nodes on one address raise `rate` and `burst`.
#[derive(Clone, Copy, Debug)]
pub struct RateConfig {
    /// Queries a second a source may keep sending: 5. At least 1 is used.
    pub rate: u32,
    /// Queries a source may send at once after a quiet spell: 50 (libtorrent counts 5 a
    /// second over 10 seconds). At least 1 is used.
    pub burst: u32,
    /// How long a source over the limit is ignored: 5 minutes.
    pub block_for: Duration,
    /// Most sources tracked at once: 4,096 (about 64 bytes each). At least 1 is used.
    pub max_sources: usize,
}

impl Default for RateConfig {
    fn default() -> RateConfig {
        RateConfig {
            rate: 5,
            burst: 50,
            block_for: Duration::from_secs(5 * 60),
            max_sources: 4096,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// When the bucket is full again ("theoretical arrival time"); full when not after now.
    full_at: Instant,
    /// Ignored until then.
    blocked_until: Option<Instant>,
}

impl Entry {
    fn blocked(&self, now: Instant) -> bool {
        self.blocked_until.is_some_and(|until| now < until)
    }

    /// Whether the entry says no more than a missing one would.
    fn at_rest(&self, now: Instant) -> bool {
        self.full_at <= now && !self.blocked(now)
    }
}

/// Per-source limits on inbound queries. Sans-IO: the time of each query is passed in.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    config: RateConfig,
    /// Time one query's token takes to come back: 1 / rate.
    interval: Duration,
    /// How far ahead of now `full_at` may be and the query still pass: (burst - 1) tokens.
    tolerance: Duration,
    sources: HashMap<Source, Entry>,
}

impl RateLimiter {
    /// An empty table with the limits of `config`.
    pub fn new(config: RateConfig) -> RateLimiter {
        let config = RateConfig {
            max_sources: config.max_sources.max(1),
            ..config
        };
        let interval = Duration::from_secs(1) / config.rate.max(1);
        let tolerance = interval * (config.burst.max(1) - 1);
        RateLimiter {
            config,
            interval,
            tolerance,
            sources: HashMap::new(),
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &RateConfig {
        &self.config
    }

    /// Counts a query from `ip` at `now`: whether to answer it. A source over its limit
    /// is blocked for [`RateConfig::block_for`] and gets `false` until then.
    pub fn allow(&mut self, now: Instant, ip: IpAddr) -> bool {
        let source = Source::of(ip);
        if !self.sources.contains_key(&source) && self.sources.len() >= self.config.max_sources {
            self.make_room(now);
        }
        let entry = self.sources.entry(source).or_insert(Entry {
            full_at: now,
            blocked_until: None,
        });
        if entry.blocked(now) {
            return false;
        }
        entry.blocked_until = None;
        let start = entry.full_at.max(now);
        if start - now > self.tolerance {
            entry.blocked_until = Some(now + self.config.block_for);
            return false;
        }
        entry.full_at = start + self.interval;
        true
    }

    /// Whether `ip`'s source is blocked at `now`.
    pub fn is_blocked(&self, now: Instant, ip: IpAddr) -> bool {
        self.sources
            .get(&Source::of(ip))
            .is_some_and(|e| e.blocked(now))
    }

    /// Sources tracked.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// Whether no source is tracked.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Frees at least one place, and an eighth of the table if the entries at rest are
    /// not that many, dropping the least informative.
    fn make_room(&mut self, now: Instant) {
        self.sources.retain(|_, e| !e.at_rest(now));
        let max = self.config.max_sources;
        let target = max.saturating_sub((max / 8).max(1));
        if self.sources.len() <= target {
            return;
        }
        // Lowest first: unblocked, fullest (earliest `full_at`); then blocked, the block
        // ending soonest.
        let mut ranked: Vec<((bool, Instant), Source)> = self
            .sources
            .iter()
            .map(|(s, e)| match e.blocked_until.filter(|_| e.blocked(now)) {
                Some(until) => ((true, until), *s),
                None => ((false, e.full_at), *s),
            })
            .collect();
        let drop = self.sources.len() - target;
        ranked.select_nth_unstable_by_key(drop - 1, |&(rank, _)| rank);
        for (_, source) in &ranked[..drop] {
            self.sources.remove(source);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::sync::OnceLock;

    fn t0() -> Instant {
        static T0: OnceLock<Instant> = OnceLock::new();
        *T0.get_or_init(Instant::now)
    }

    fn ms(ms: u64) -> Instant {
        t0() + Duration::from_millis(ms)
    }

    const SEC: u64 = 1000;

    fn v4(i: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
    }

    /// Sends `n` queries from `ip` at `now`; how many were allowed.
    fn send(limiter: &mut RateLimiter, now: Instant, ip: IpAddr, n: u32) -> u32 {
        (0..n).map(|_| u32::from(limiter.allow(now, ip))).sum()
    }

    #[test]
    fn a_burst_passes_then_the_source_is_ignored_for_the_block_time() {
        let mut limiter = RateLimiter::new(RateConfig::default());
        assert_eq!(send(&mut limiter, ms(0), v4(1), 50), 50);
        assert!(!limiter.is_blocked(ms(0), v4(1)));
        assert!(!limiter.allow(ms(0), v4(1)), "the 51st at once");
        assert!(limiter.is_blocked(ms(0), v4(1)));
        // Refilled long since, but the block holds for 5 minutes...
        assert_eq!(send(&mut limiter, ms(60 * SEC), v4(1), 1), 0);
        assert_eq!(send(&mut limiter, ms(300 * SEC - 1), v4(1), 1), 0);
        // ...and is not extended by what came during it.
        assert_eq!(send(&mut limiter, ms(300 * SEC), v4(1), 50), 50);
        assert!(!limiter.allow(ms(300 * SEC), v4(1)));
        // Others were never affected.
        assert_eq!(send(&mut limiter, ms(1), v4(2), 50), 50);
    }

    #[test]
    fn the_steady_rate_passes_forever_and_more_does_not() {
        let mut limiter = RateLimiter::new(RateConfig::default());
        // Exactly 5 a second, for an hour.
        for i in 0..5 * 3600 {
            assert!(limiter.allow(ms(i * 200), v4(1)), "query {i}");
        }
        // 6 a second: one more than the rate each second, so the 49 spare tokens of the
        // burst (the first query spends a token of the rate) last 49 seconds.
        let mut allowed = 0;
        for i in 0..6 * 100 {
            if !limiter.allow(ms(i * SEC / 6), v4(2)) {
                break;
            }
            allowed += 1;
        }
        assert_eq!(allowed, 1 + 49 * 6);
        assert!(limiter.is_blocked(ms(60 * SEC), v4(2)));
    }

    #[test]
    fn an_ipv6_slash_64_is_one_source_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(Source::of(a), Source::of(b));
        assert_ne!(Source::of(a), Source::of(other));
        assert_eq!(
            Source::of(a).ip(),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(Source::of(mapped), Source::of(v4(1)));

        let mut limiter = RateLimiter::new(RateConfig::default());
        assert_eq!(send(&mut limiter, ms(0), a, 30), 30);
        assert_eq!(send(&mut limiter, ms(0), b, 30), 20);
        assert!(limiter.is_blocked(ms(0), a));
        assert_eq!(send(&mut limiter, ms(0), other, 50), 50);
        assert_eq!(send(&mut limiter, ms(0), v4(1), 50), 50);
        assert!(!limiter.allow(ms(0), mapped));
    }

    #[test]
    fn limits_are_configurable() {
        let config = RateConfig {
            rate: 1000,
            burst: 1000,
            ..RateConfig::default()
        };
        let mut limiter = RateLimiter::new(config);
        assert_eq!(config.max_sources, limiter.config().max_sources);
        // A thousand nodes on one address, each sending one query a second.
        for s in 0..60 {
            assert_eq!(send(&mut limiter, ms(s * SEC), v4(1), 1000), 1000);
        }
        // Zero rate, burst and table size are read as 1.
        let mut strict = RateLimiter::new(RateConfig {
            rate: 0,
            burst: 0,
            block_for: Duration::from_secs(1),
            max_sources: 0,
        });
        assert_eq!(strict.config().max_sources, 1);
        assert!(strict.allow(ms(0), v4(1)));
        assert!(!strict.allow(ms(SEC / 2), v4(1)));
        // A newcomer takes the one place, and the block is forgotten.
        assert!(strict.allow(ms(SEC / 2), v4(2)));
        assert_eq!(strict.len(), 1);
        assert!(!strict.is_blocked(ms(SEC / 2), v4(1)));
    }

    #[test]
    fn a_flood_from_a_million_addresses_stays_bounded_and_keeps_blocks() {
        let config = RateConfig {
            max_sources: 1024,
            ..RateConfig::default()
        };
        let mut limiter = RateLimiter::new(config);
        let flooder = v4(0xff_0000);
        assert_eq!(send(&mut limiter, ms(0), flooder, 51), 50);
        assert!(limiter.is_blocked(ms(0), flooder));
        // A million new addresses in 100 seconds (10,000 a second), one query each, and
        // a few busy ones among them.
        let mut most = 0;
        for i in 0..1_000_000u32 {
            let now = ms(u64::from(i) / 10);
            assert!(limiter.allow(now, v4(i)), "a first query passes");
            if i % 1000 == 0 {
                assert_eq!(send(&mut limiter, now, v4(0xfe_0000 + i / 1000), 20), 20);
            }
            most = most.max(limiter.len());
        }
        assert!(most <= 1024, "{most}");
        // The flooder stayed blocked throughout, though its entry was the oldest.
        assert!(limiter.is_blocked(ms(100 * SEC), flooder));
        assert!(!limiter.allow(ms(100 * SEC), flooder));
        assert!(limiter.is_blocked(ms(300 * SEC - 1), flooder));
        assert!(!limiter.is_blocked(ms(300 * SEC), flooder));
    }

    #[test]
    fn a_full_table_of_blocked_sources_still_takes_newcomers() {
        let config = RateConfig {
            rate: 1,
            burst: 1,
            max_sources: 16,
            ..RateConfig::default()
        };
        let mut limiter = RateLimiter::new(config);
        for i in 0..16 {
            assert_eq!(send(&mut limiter, ms(i), v4(i as u32), 2), 1);
        }
        assert!((0..16).all(|i| limiter.is_blocked(ms(16), v4(i))));
        // A newcomer takes the place of the blocks ending soonest (two: an eighth).
        assert!(limiter.allow(ms(16), v4(100)));
        assert_eq!(limiter.len(), 15);
        assert!(!limiter.is_blocked(ms(16), v4(0)));
        assert!(!limiter.is_blocked(ms(16), v4(1)));
        assert!((2..16).all(|i| limiter.is_blocked(ms(16), v4(i))));
    }
}
