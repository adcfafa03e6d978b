//! Hash maps and sets that cost no space for their hasher.
//!
//! `std`'s `RandomState` keeps its two SipHash keys in every map: 16 bytes each, times the
//! dozen-odd maps of every torrent's engine, which stay empty while the torrent is idle. These
//! maps draw their keys once per process instead, so they keep SipHash's resistance to
//! chosen-key flooding (peers pick addresses and piece numbers) at no size.

use std::collections::hash_map::{DefaultHasher, RandomState};
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::OnceLock;

/// Builds SipHash hashers with keys drawn at random once per process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessKeyed;

impl BuildHasher for ProcessKeyed {
    type Hasher = DefaultHasher;

    fn build_hasher(&self) -> DefaultHasher {
        static KEYS: OnceLock<RandomState> = OnceLock::new();
        KEYS.get_or_init(RandomState::new).build_hasher()
    }
}

/// A `HashMap` keyed per process (see the module).
pub type Map<K, V> = HashMap<K, V, ProcessKeyed>;
/// A `HashSet` keyed per process (see the module).
pub type Set<T> = HashSet<T, ProcessKeyed>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_no_space_and_hashes_alike_within_a_process() {
        assert_eq!(std::mem::size_of::<ProcessKeyed>(), 0);
        assert!(std::mem::size_of::<Map<u32, u32>>() < std::mem::size_of::<HashMap<u32, u32>>());
        let mut m: Map<u32, &str> = Map::default();
        m.insert(7, "seven");
        assert_eq!(m.get(&7), Some(&"seven"));
        assert_eq!(ProcessKeyed.hash_one(42u64), ProcessKeyed.hash_one(42u64));
    }
}
