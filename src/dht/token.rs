//! Announce tokens (BEP 5): what a `get_peers` response hands the querier, for it to
//! present in an `announce_peer` from the same IP address.
//!
//! A token is the first [`TOKEN_LEN`] bytes of SHA-1(secret || IP || info hash). The
//! secret is replaced every [`ROTATION`] (5 minutes); tokens made with the current or the
//! previous secret are accepted, so a token stays good for 5 to 10 minutes after it is
//! given, as BEP 5 suggests. Binding the info hash too (as libtorrent does) keeps a token
//! from serving for any torrent but the one asked about.
//!
//! Nothing is stored per querier: checking a token only recomputes it. The secrets come
//! from the `fastrand::Rng` passed in, seeded in tests; the node seeds it from the
//! operating system's randomness (`fastrand::Rng::new()`).

use crate::core::InfoHash;
use crate::dht::krpc::Token;
use sha1::{Digest, Sha1};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How often the secret is replaced (BEP 5: every five minutes).
pub const ROTATION: Duration = Duration::from_secs(5 * 60);
/// Bytes in a token we give (libtorrent gives 4; 8 make guessing one hopeless).
pub const TOKEN_LEN: usize = 8;

const SECRET_LEN: usize = 16;

/// The current and previous secrets, and when the current one was drawn.
#[derive(Clone, Debug)]
pub struct Tokens {
    current: [u8; SECRET_LEN],
    previous: [u8; SECRET_LEN],
    /// When `current` took effect; rotations happen at whole multiples of
    /// [`ROTATION`] after it, however late the next call comes.
    since: Instant,
    rng: fastrand::Rng,
}

impl Tokens {
    /// Fresh secrets at `now`, drawn from `rng` (no token given before is accepted).
    pub fn new(now: Instant, mut rng: fastrand::Rng) -> Tokens {
        let current = secret(&mut rng);
        let previous = secret(&mut rng);
        Tokens {
            current,
            previous,
            since: now,
            rng,
        }
    }

    /// The token for `ip` announcing `info_hash`, made with the secret in force at `now`.
    pub fn issue(&mut self, now: Instant, ip: IpAddr, info_hash: &InfoHash) -> Token {
        self.rotate(now);
        make(&self.current, ip, info_hash)
    }

    /// Whether `token` is one we gave `ip` for `info_hash` with the current or the
    /// previous secret in force at `now`.
    pub fn check(&mut self, now: Instant, ip: IpAddr, info_hash: &InfoHash, token: &Token) -> bool {
        self.rotate(now);
        // Both are computed, so the time taken does not say which secret matched.
        let current = make(&self.current, ip, info_hash) == *token;
        let previous = make(&self.previous, ip, info_hash) == *token;
        current | previous
    }

    /// Replaces the secrets for every whole [`ROTATION`] elapsed since the last one: after
    /// one, the current secret becomes the previous; after two or more, both are new.
    fn rotate(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.since);
        let periods = elapsed.as_secs() / ROTATION.as_secs();
        if periods == 0 {
            return;
        }
        self.previous = if periods == 1 {
            self.current
        } else {
            secret(&mut self.rng)
        };
        self.current = secret(&mut self.rng);
        // periods * ROTATION <= elapsed: never past `now`.
        self.since += ROTATION * u32::try_from(periods).unwrap_or(u32::MAX);
    }
}

fn secret(rng: &mut fastrand::Rng) -> [u8; SECRET_LEN] {
    let mut s = [0u8; SECRET_LEN];
    rng.fill(&mut s);
    s
}

fn make(secret: &[u8; SECRET_LEN], ip: IpAddr, info_hash: &InfoHash) -> Token {
    let mut h = Sha1::new();
    h.update(secret);
    match ip {
        IpAddr::V4(v4) => h.update(v4.octets()),
        IpAddr::V6(v6) => h.update(v6.octets()),
    }
    h.update(info_hash.0);
    let digest = h.finalize();
    Token::new(&digest[..TOKEN_LEN]).expect("8 bytes fit a token")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    fn t(secs: u64) -> Instant {
        static T0: OnceLock<Instant> = OnceLock::new();
        *T0.get_or_init(Instant::now) + Duration::from_secs(secs)
    }

    const MIN: u64 = 60;
    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));
    const H: InfoHash = InfoHash([7; 20]);

    fn tokens() -> Tokens {
        Tokens::new(t(0), fastrand::Rng::with_seed(42))
    }

    #[test]
    fn a_token_is_good_for_its_ip_and_info_hash_only() {
        let mut tokens = tokens();
        let token = tokens.issue(t(1), A, &H);
        assert_eq!(token.as_bytes().len(), TOKEN_LEN);
        assert!(tokens.check(t(2), A, &H, &token));
        assert!(!tokens.check(t(2), B, &H, &token));
        assert!(!tokens.check(t(2), A, &InfoHash([8; 20]), &token));
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let token6 = tokens.issue(t(3), v6, &H);
        assert!(tokens.check(t(3), v6, &H, &token6));
        assert!(!tokens.check(t(3), "2001:db8::2".parse().unwrap(), &H, &token6));
    }

    #[test]
    fn a_token_outlives_one_rotation_but_not_two() {
        let mut tokens = tokens();
        // Given just before the first rotation: good for a little over 5 minutes.
        let late = tokens.issue(t(5 * MIN - 1), A, &H);
        assert!(tokens.check(t(5 * MIN), A, &H, &late));
        assert!(tokens.check(t(10 * MIN - 1), A, &H, &late));
        assert!(!tokens.check(t(10 * MIN), A, &H, &late));
        // Given just after a rotation: good for almost 10 minutes.
        let early = tokens.issue(t(10 * MIN), A, &H);
        assert!(tokens.check(t(20 * MIN - 1), A, &H, &early));
        assert!(!tokens.check(t(20 * MIN), A, &H, &early));
    }

    #[test]
    fn a_long_silence_replaces_both_secrets() {
        let mut tokens = tokens();
        let token = tokens.issue(t(4 * MIN), A, &H);
        // No call for an hour: the next one rotates twelve times at once.
        assert!(!tokens.check(t(64 * MIN), A, &H, &token));
        // The schedule keeps its phase: the next rotation is at 65 minutes.
        let fresh = tokens.issue(t(64 * MIN), A, &H);
        assert!(tokens.check(t(69 * MIN), A, &H, &fresh));
        assert!(!tokens.check(t(70 * MIN), A, &H, &fresh));
    }

    #[test]
    fn forged_tokens_are_refused() {
        let mut tokens = tokens();
        let good = tokens.issue(t(0), A, &H);
        let mut flipped = good.as_bytes().to_vec();
        flipped[0] ^= 1;
        let forged = [
            Token::new(&flipped).unwrap(),
            Token::new(&good.as_bytes()[..TOKEN_LEN - 1]).unwrap(),
            Token::new(&[good.as_bytes(), &[0]].concat()).unwrap(),
            Token::new(b"").unwrap(),
            Token::new(&[0; TOKEN_LEN]).unwrap(),
        ];
        for token in &forged {
            assert!(!tokens.check(t(1), A, &H, token), "{token:?}");
        }
        // Another node's secrets (another seed) make other tokens.
        let mut other = Tokens::new(t(0), fastrand::Rng::with_seed(43));
        assert!(!tokens.check(t(1), A, &H, &other.issue(t(0), A, &H)));
        assert!(tokens.check(t(1), A, &H, &good));
    }

    #[test]
    fn the_same_seed_gives_the_same_tokens() {
        let (mut a, mut b) = (tokens(), tokens());
        for minute in [0, 7, 12, 40] {
            assert_eq!(
                a.issue(t(minute * MIN), A, &H),
                b.issue(t(minute * MIN), A, &H)
            );
        }
    }
}
