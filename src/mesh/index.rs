//! [`SlotIndex`]: a compact hash index from a key (a node id, an address) to the slot of
//! the member record that holds it. It stores only 4-byte slot numbers; keys live in the
//! records and are compared through a closure. A `HashMap<NodeId, usize>` costs ~50 bytes
//! per member and a `HashMap<SocketAddr, NodeId>` ~100; in a 10,000-node simulation every
//! node holds both for every member, which would make them most of the memory.
//!
//! Open addressing with linear probing and backward-shift deletion, at most 70 % full
//! (between 35 and 70 %: 6–11 bytes per key).
//!
//! Also here: [`IdHasher`], the hasher behind every map keyed by node ids.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Slot numbers by key hash. The caller hashes keys and answers "is the key of slot `s`
/// the one I am looking for".
#[derive(Debug, Default, Clone)]
pub(crate) struct SlotIndex {
    /// `EMPTY` or a slot number; the length is zero or a power of two.
    table: Vec<u32>,
    len: usize,
}

const EMPTY: u32 = u32::MAX;

/// Mixes a 64-bit value into a well-spread hash (the table uses the high bits).
pub(crate) fn mix(x: u64) -> u64 {
    let x = (x ^ (x >> 31)).wrapping_mul(0x7fb5_d329_728e_a185);
    let x = (x ^ (x >> 27)).wrapping_mul(0x81da_def4_bc2d_d44d);
    x ^ (x >> 33)
}

/// Hasher for maps keyed by node ids: ids are 16 random bytes bound to certificates
/// of authenticated peers, so a fast multiply-rotate mix is enough, and cheaper than
/// SipHash on the hot paths that look members up by id.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by node ids (or pairs of them).
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

impl SlotIndex {
    /// Number of keys held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    fn mask(&self) -> usize {
        self.table.len().wrapping_sub(1)
    }

    fn home(&self, hash: u64) -> usize {
        (hash as usize) & self.mask()
    }

    /// The slot whose key matches (`is_key(slot)`), if any.
    pub fn find(&self, hash: u64, is_key: impl Fn(u32) -> bool) -> Option<u32> {
        if self.table.is_empty() {
            return None;
        }
        let mask = self.mask();
        let mut i = self.home(hash);
        loop {
            let s = self.table[i];
            if s == EMPTY {
                return None;
            }
            if is_key(s) {
                return Some(s);
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds `slot` under `hash`. The caller makes sure the key is not present yet.
    /// `hash_of(s)` must give the hash of any slot already held (used when growing).
    pub fn insert(&mut self, hash: u64, slot: u32, hash_of: impl Fn(u32) -> u64) {
        if (self.len + 1) * 10 > self.table.len() * 7 {
            self.grow(&hash_of);
        }
        let mask = self.mask();
        let mut i = self.home(hash);
        while self.table[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.table[i] = slot;
        self.len += 1;
    }

    /// Removes `slot` (held under `hash`); nothing happens if it is not there.
    pub fn remove(&mut self, hash: u64, slot: u32, hash_of: impl Fn(u32) -> u64) {
        if self.table.is_empty() {
            return;
        }
        let mask = self.mask();
        let mut i = self.home(hash);
        loop {
            let s = self.table[i];
            if s == EMPTY {
                return;
            }
            if s == slot {
                break;
            }
            i = (i + 1) & mask;
        }
        // Backward-shift: move later entries of the probe run into the hole when their
        // home position allows it.
        let mut hole = i;
        let mut j = (i + 1) & mask;
        loop {
            let s = self.table[j];
            if s == EMPTY {
                break;
            }
            let home = self.home(hash_of(s));
            // `s` may move into `hole` if its home is not in the cyclic range (hole, j].
            let dist_home = j.wrapping_sub(home) & mask;
            let dist_hole = j.wrapping_sub(hole) & mask;
            if dist_home >= dist_hole {
                self.table[hole] = s;
                hole = j;
            }
            j = (j + 1) & mask;
        }
        self.table[hole] = EMPTY;
        self.len -= 1;
    }

    /// Makes room for `keys` keys without growing.
    #[cfg(any(test, feature = "sim"))]
    pub fn reserve(&mut self, keys: usize, hash_of: impl Fn(u32) -> u64) {
        while keys * 10 > self.table.len() * 7 {
            self.grow(&hash_of);
        }
    }

    /// Forgets everything (keeps no memory).
    pub fn clear(&mut self) {
        self.table = Vec::new();
        self.len = 0;
    }

    fn grow(&mut self, hash_of: &impl Fn(u32) -> u64) {
        let size = (self.table.len() * 2).max(16);
        let old = std::mem::replace(&mut self.table, vec![EMPTY; size]);
        let mask = size - 1;
        for s in old.into_iter().filter(|&s| s != EMPTY) {
            let mut i = (hash_of(s) as usize) & mask;
            while self.table[i] != EMPTY {
                i = (i + 1) & mask;
            }
            self.table[i] = s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{RngExt, SeedableRng};
    use std::collections::HashMap;

    #[test]
    fn behaves_like_a_hash_map_under_random_inserts_and_removes() {
        // keys[slot] = key; a few colliding hashes on purpose (key % 7 for small keys).
        let mut rng = SmallRng::seed_from_u64(3);
        let mut keys: Vec<Option<u64>> = Vec::new();
        let mut index = SlotIndex::default();
        let mut model: HashMap<u64, u32> = HashMap::new();
        let hash = |k: u64| if k < 50 { k % 7 } else { mix(k) };
        for _ in 0..20_000 {
            let k = rng.random_range(0..400u64);
            match model.get(&k).copied() {
                Some(slot) if rng.random_bool(0.5) => {
                    index.remove(hash(k), slot, |s| keys[s as usize].map_or(0, hash));
                    keys[slot as usize] = None;
                    model.remove(&k);
                }
                Some(_) => {}
                None => {
                    let slot = keys.len() as u32;
                    keys.push(Some(k));
                    index.insert(hash(k), slot, |s| keys[s as usize].map_or(0, hash));
                    model.insert(k, slot);
                }
            }
            assert_eq!(index.len(), model.len());
        }
        for k in 0..400u64 {
            let found = index.find(hash(k), |s| keys[s as usize] == Some(k));
            assert_eq!(found, model.get(&k).copied(), "key {k}");
        }
    }
}
