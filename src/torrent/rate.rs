//! Transfer rates from byte counts, smoothed over a few seconds.

/// Bytes per second, as an exponential moving average updated once a second.
#[derive(Debug, Default, Clone)]
pub struct Rate {
    this_second: u64,
    average: f64,
}

impl Rate {
    /// Counts `bytes` moved now.
    pub fn add(&mut self, bytes: u64) {
        self.this_second += bytes;
    }

    /// Closes the current second (call once a second).
    pub fn tick(&mut self) {
        // About a 5-second window: recent enough for the choker, steady enough for display.
        self.average += (self.this_second as f64 - self.average) * 0.2;
        self.this_second = 0;
    }

    /// The smoothed rate in bytes per second.
    pub fn per_second(&self) -> f64 {
        self.average
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converges_to_a_steady_rate_and_decays_when_idle() {
        let mut r = Rate::default();
        for _ in 0..30 {
            r.add(1000);
            r.tick();
        }
        assert!((r.per_second() - 1000.0).abs() < 5.0, "{}", r.per_second());
        for _ in 0..30 {
            r.tick();
        }
        assert!(r.per_second() < 5.0);
    }
}
