//! Upload pacing for a whole session: a token bucket on the wall clock (I/O side; the
//! engine never reads the clock).

/// A token bucket that paces a byte stream to a rate (shared by a session's uploads).
pub struct Limiter {
    per_second: f64,
    state: std::sync::Mutex<(f64, std::time::Instant)>,
}

impl Limiter {
    /// A limiter of `per_second` bytes per second, with a burst of a quarter second.
    pub fn new(per_second: u64) -> Limiter {
        Limiter {
            per_second: per_second.max(1) as f64,
            state: std::sync::Mutex::new((0.0, std::time::Instant::now())),
        }
    }

    /// How long to wait before sending `bytes` (which are counted as sent).
    pub fn reserve(&self, bytes: u64) -> std::time::Duration {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        let burst = self.per_second / 4.0;
        let (tokens, last) = *st;
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * self.per_second).min(burst)
            - bytes as f64;
        *st = (tokens, now);
        if tokens >= 0.0 {
            std::time::Duration::ZERO
        } else {
            std::time::Duration::from_secs_f64(-tokens / self.per_second)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_spaces_out_sends_beyond_the_burst() {
        let l = Limiter::new(1000);
        // The bucket starts empty: 500 bytes at 1000 B/s wait about half a second.
        let wait = l.reserve(500).as_secs_f64();
        assert!((0.45..=0.55).contains(&wait), "{wait}");
        // The debt accumulates.
        let wait = l.reserve(500).as_secs_f64();
        assert!((0.95..=1.05).contains(&wait), "{wait}");
    }
}
