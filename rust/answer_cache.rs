//! Answers to names already scored, kept across the blocks of a bulk job, so a list that
//! repeats its names (real lists do: a few surnames make a large share of any list)
//! costs about what its distinct names cost. Within a block, repeats already share one
//! pass (`prefixes`); this carries them from block to block.
//!
//! Bounded: `SHARDS` shards of at most `ENTRIES / SHARDS` names each (about 5 MB with
//! the default's 18 languages), a full shard emptied before it takes another; a name
//! is kept from its second sight on (a 1 MiB doorkeeper of fingerprints), so a list
//! of distinct names costs no copies. A row's
//! log-probabilities do not depend on the rows scored with it (the forward pass gives
//! the same bits alone or in any batch), so what the cache holds changes no output:
//! the output is the same whatever the threads' order.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

/// Names held at most, over all shards.
pub const ENTRIES: usize = 1 << 15;
/// Shards, so threads rarely wait on one lock.
const SHARDS: usize = 16;
/// Slots of the doorkeeper (1 MiB): a name's answer is kept on its second sight in the
/// job, so a list of distinct names pays for no copies it would never read again.
const DOOR_SLOTS: usize = 1 << 18;

/// FNV-1a: names are short, and a cryptographic hash would cost more than the lookup.
#[derive(Default)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub type FnvBuild = BuildHasherDefault<Fnv>;
type Shard = HashMap<Box<str>, Box<[f32]>, FnvBuild>;

fn fnv(name: &str) -> u64 {
    let mut h = Fnv::default();
    h.write(name.as_bytes());
    h.finish()
}

pub struct AnswerCache {
    shards: Vec<Mutex<Shard>>,
    /// A fingerprint of the last name seen in each slot.
    door: Box<[AtomicU32]>,
}

impl Default for AnswerCache {
    fn default() -> Self {
        AnswerCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            door: (0..DOOR_SLOTS).map(|_| AtomicU32::new(0)).collect(),
        }
    }
}

impl AnswerCache {
    fn shard(&self, name: &str) -> &Mutex<Shard> {
        // The top bits pick the shard; the map inside uses the whole hash.
        &self.shards[(fnv(name) >> 60) as usize % SHARDS]
    }

    /// Whether `name` was seen before in this job (its answer is worth keeping); notes
    /// that it has been seen now. A slot holds one fingerprint: a name pushed out by
    /// another only waits for its next sight.
    pub fn seen_before(&self, name: &str) -> bool {
        let h = fnv(name);
        let print = (h >> 32) as u32 | 1;
        self.door[h as usize % DOOR_SLOTS].swap(print, Ordering::Relaxed) == print
    }

    /// Copies the answer to `name` into `row` when it is held.
    pub fn get_into(&self, name: &str, row: &mut [f32]) -> bool {
        // Never waits: a shard another thread holds (or one a fork copied while held, or
        // one poisoned by a panic) is a miss, so the cache costs no deadlock and no wait.
        let Ok(shard) = self.shard(name).try_lock() else {
            return false;
        };
        match shard.get(name) {
            Some(held) => {
                row.copy_from_slice(held);
                true
            }
            None => false,
        }
    }

    /// Keeps the answer to `name`.
    pub fn insert(&self, name: &str, row: &[f32]) {
        let Ok(mut shard) = self.shard(name).try_lock() else {
            return; // busy: this answer is simply not kept
        };
        if shard.len() >= ENTRIES / SHARDS {
            shard.clear();
        }
        shard.insert(name.into(), row.into());
    }

    /// Forgets every answer (the model's answers changed).
    pub fn clear(&self) {
        for shard in &self.shards {
            if let Ok(mut s) = shard.lock() {
                s.clear();
            }
        }
        self.door
            .iter()
            .for_each(|slot| slot.store(0, Ordering::Relaxed));
    }

    /// Names held now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.len()))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_come_back_and_the_cache_stays_bounded() {
        let cache = AnswerCache::default();
        let mut row = [0f32; 2];
        assert!(!cache.get_into("Zhou", &mut row));
        assert!(!cache.seen_before("Zhou") && cache.seen_before("Zhou"));
        cache.insert("Zhou", &[-0.1, -2.3]);
        assert!(cache.get_into("Zhou", &mut row) && row == [-0.1, -2.3]);
        for i in 0..3 * ENTRIES {
            cache.insert(&format!("name{i}"), &[0.0, 0.0]);
        }
        assert!(cache.len() <= ENTRIES);
        cache.clear();
        assert!(cache.is_empty());
    }
}
