//! Rate limits: token buckets on the wall clock (I/O side; the engine never reads the
//! clock). One pair (download, upload) for the session and one per torrent; a connection
//! waits for both. Uploads wait before a batch of blocks is sent; downloads wait after
//! bytes are read, before reading more (TCP's window then slows the sender).
//! Every limit can be changed or lifted at any time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A token bucket that paces a byte stream to a rate, or lets everything through.
pub struct Limiter {
    /// Bytes per second; 0: no limit.
    per_second: AtomicU64,
    state: Mutex<(f64, Instant)>,
}

impl Default for Limiter {
    fn default() -> Limiter {
        Limiter::new(None)
    }
}

impl Limiter {
    /// A limiter of `per_second` bytes per second (`None`: no limit), with a burst of a
    /// quarter second.
    pub fn new(per_second: Option<u64>) -> Limiter {
        Limiter {
            per_second: AtomicU64::new(per_second.unwrap_or(0)),
            state: Mutex::new((0.0, Instant::now())),
        }
    }

    /// Changes the rate (`None`: no limit); the debt so far is forgotten.
    pub fn set(&self, per_second: Option<u64>) {
        self.per_second
            .store(per_second.unwrap_or(0), Ordering::Relaxed);
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = (0.0, Instant::now());
    }

    /// The rate, if limited.
    pub fn get(&self) -> Option<u64> {
        Some(self.per_second.load(Ordering::Relaxed)).filter(|&r| r > 0)
    }

    /// How long to wait before sending (or after receiving) `bytes`, which are counted.
    pub fn reserve(&self, bytes: u64) -> Duration {
        let Some(rate) = self.get() else {
            return Duration::ZERO;
        };
        let rate = rate as f64;
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let burst = rate / 4.0;
        let (tokens, last) = *st;
        let tokens =
            (tokens + now.duration_since(last).as_secs_f64() * rate).min(burst) - bytes as f64;
        *st = (tokens, now);
        if tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-tokens / rate)
        }
    }
}

/// A download and an upload limiter.
#[derive(Default)]
pub struct Limiters {
    pub down: Limiter,
    pub up: Limiter,
}

/// Rate limits in bytes per second (`None`: none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    pub download: Option<u64>,
    pub upload: Option<u64>,
}

impl Limiters {
    pub fn new(limits: Limits) -> Limiters {
        Limiters {
            down: Limiter::new(limits.download),
            up: Limiter::new(limits.upload),
        }
    }

    pub fn set(&self, limits: Limits) {
        self.down.set(limits.download);
        self.up.set(limits.upload);
    }

    pub fn get(&self) -> Limits {
        Limits {
            download: self.down.get(),
            upload: self.up.get(),
        }
    }
}

/// A torrent's own limiters, made when a limit is first set: most torrents never have
/// one, and a daemon holds thousands of torrents.
#[derive(Default)]
pub struct TorrentLimiters(OnceLock<Box<Limiters>>);

impl TorrentLimiters {
    pub fn set(&self, limits: Limits) {
        match self.0.get() {
            Some(l) => l.set(limits),
            None if limits == Limits::default() => {}
            None => self.0.get_or_init(Default::default).set(limits),
        }
    }

    pub fn get(&self) -> Limits {
        self.0.get().map_or_else(Limits::default, |l| l.get())
    }

    pub fn down(&self) -> Option<&Limiter> {
        self.0.get().map(|l| &l.down)
    }

    pub fn up(&self) -> Option<&Limiter> {
        self.0.get().map(|l| &l.up)
    }
}

/// The longer of two waits, both counted (`b`: a torrent's limiter, if it has one).
pub fn both(a: &Limiter, b: Option<&Limiter>, bytes: u64) -> Duration {
    let own = b.map_or(Duration::ZERO, |b| b.reserve(bytes));
    a.reserve(bytes).max(own)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_spaces_out_sends_beyond_the_burst() {
        let l = Limiter::new(Some(1000));
        // The bucket starts empty: 500 bytes at 1000 B/s wait about half a second.
        let wait = l.reserve(500).as_secs_f64();
        assert!((0.45..=0.55).contains(&wait), "{wait}");
        // The debt accumulates.
        let wait = l.reserve(500).as_secs_f64();
        assert!((0.95..=1.05).contains(&wait), "{wait}");
    }

    #[test]
    fn a_limit_can_be_lifted_and_set_again() {
        let l = Limiter::new(None);
        assert_eq!(l.reserve(1 << 30), Duration::ZERO);
        l.set(Some(1000));
        assert!(l.reserve(1000) >= Duration::from_millis(900));
        l.set(None);
        assert_eq!(l.reserve(1 << 30), Duration::ZERO);
        assert_eq!(l.get(), None);
    }
}
