//! Which n-grams the n-gram table was trained on. The table is hashed: an n-gram that
//! no training name holds still lands on a row, one that other n-grams trained, and
//! reads their answer as if it were its own (`silva` read Czech through a row that
//! `sedmik` and `vygran` had trained). A model trained with this set reads only the
//! n-grams at least `min_names` distinct training names hold, in training and after,
//! so every row a name reads is one those n-grams trained.
//!
//! The set is a split block Bloom filter, as the Parquet format specifies it: a key
//! picks one block of eight 32-bit words and sets one bit in each, so a lookup reads
//! one 32-byte block (one or two cache lines, never scattered bits). A key is the n-gram's FNV-1a 64 hash (the one
//! its row comes from) passed through murmur3's 64-bit finaliser, since FNV's low bits
//! are those the row already uses. No false negatives; at 16 bits a key, about 1 in
//! 1,000 unknown n-grams passes as known.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::ngrams;
use crate::normalize::TextRule;

/// Words of a block.
pub const WORDS: usize = 8;
/// Bits a key is given when a filter is sized for its keys.
const BITS_PER_KEY: usize = 16;
/// The Parquet split block Bloom filter's salts.
const SALT: [u32; WORDS] = [
    0x47b6_137b,
    0x4497_4d91,
    0x8824_ad5b,
    0xa2b7_289d,
    0x7054_95c7,
    0x2df1_424b,
    0x9efc_4947,
    0x5c6b_fb31,
];

/// The n-grams a table was trained on: `blocks` x 8 words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownNGrams {
    words: Vec<u32>,
}

/// murmur3's fmix64: every input bit moves every output bit.
#[inline]
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

impl KnownNGrams {
    /// An empty set of `blocks` blocks (at least one).
    pub fn with_blocks(blocks: usize) -> Self {
        KnownNGrams {
            words: vec![0; blocks.max(1) * WORDS],
        }
    }

    /// The set a model file holds (`ngram.known`, blocks x 8 words).
    pub fn from_words(words: Vec<u32>) -> Result<Self> {
        if words.is_empty() || !words.len().is_multiple_of(WORDS) {
            return Err(Error::InvalidModel(format!(
                "ngram.known must hold a whole number of {WORDS}-word blocks, found {} words",
                words.len()
            )));
        }
        Ok(KnownNGrams { words })
    }

    pub fn words(&self) -> &[u32] {
        &self.words
    }

    pub fn blocks(&self) -> usize {
        self.words.len() / WORDS
    }

    /// The first word of the block a mixed hash picks (its high half, scaled to the
    /// block count).
    #[inline]
    fn block_at(&self, key: u64) -> usize {
        (((key >> 32) * self.blocks() as u64) >> 32) as usize * WORDS
    }

    /// The block a hash picks and the bit it sets in each of that block's words (from
    /// the mixed hash's low half).
    #[inline]
    fn locate(&self, hash: u64) -> (usize, [u32; WORDS]) {
        let key = mix(hash);
        let low = key as u32;
        (
            self.block_at(key),
            SALT.map(|s| 1u32 << (low.wrapping_mul(s) >> 27)),
        )
    }

    pub fn insert(&mut self, hash: u64) {
        let (at, mask) = self.locate(hash);
        for (w, m) in self.words[at..at + WORDS].iter_mut().zip(mask) {
            *w |= m;
        }
    }

    /// Whether the set holds `hash`: without a branch a word, since an unknown n-gram
    /// fails at a word no predictor can guess.
    #[inline]
    pub fn contains(&self, hash: u64) -> bool {
        let (at, mask) = self.locate(hash);
        let block: &[u32; WORDS] = self.words[at..at + WORDS].try_into().expect("a block");
        block
            .iter()
            .zip(mask)
            .fold(0, |missing, (w, m)| missing | (m & !w))
            == 0
    }

    /// `contains` for each hash of `hashes` whose `held` is `None`, in place: a batch,
    /// so that the AVX2 build checks a block's eight words with one multiply, shift and
    /// test (the scalar build spent eight multiplies and shifts on them). The same
    /// answers by construction, and by test.
    pub fn contains_each(&self, hashes: &[u64], held: &mut [Option<bool>]) {
        #[cfg(target_arch = "x86_64")]
        if crate::gemm::isa() != crate::gemm::Isa::Portable {
            // SAFETY: `isa` found AVX2.
            return unsafe { self.contains_each_avx2(hashes, held) };
        }
        self.contains_each_scalar(hashes, held);
    }

    fn contains_each_scalar(&self, hashes: &[u64], held: &mut [Option<bool>]) {
        for (h, k) in hashes.iter().zip(held) {
            k.get_or_insert_with(|| self.contains(*h));
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn contains_each_avx2(&self, hashes: &[u64], held: &mut [Option<bool>]) {
        use std::arch::x86_64::*;
        let salts = _mm256_loadu_si256(SALT.as_ptr() as *const __m256i);
        let one = _mm256_set1_epi32(1);
        for (&h, k) in hashes.iter().zip(held).filter(|(_, k)| k.is_none()) {
            let key = mix(h);
            let at = self.block_at(key);
            let shifts = _mm256_srli_epi32(
                _mm256_mullo_epi32(_mm256_set1_epi32(key as u32 as i32), salts),
                27,
            );
            let mask = _mm256_sllv_epi32(one, shifts);
            let block = &self.words[at..at + WORDS];
            let words = _mm256_loadu_si256(block.as_ptr() as *const __m256i);
            // testc: every bit of the mask is set in the block's words.
            *k = Some(_mm256_testc_si256(words, mask) == 1);
        }
    }

    /// The n-grams (1 to `max_n` bytes of `^letters$`, letters as `rule` reads them)
    /// that at least `min_names` distinct names hold; a name counts once however often
    /// it is listed or an n-gram recurs in it.
    pub fn build(names: &[String], rule: TextRule, max_n: usize, min_names: usize) -> Self {
        let mut seen_names = std::collections::HashSet::new();
        let mut holders: HashMap<u64, usize> = HashMap::new();
        let mut hashes = Vec::new();
        for name in names {
            let text = ngrams::wrapped(name, rule);
            if !seen_names.insert(text.clone()) {
                continue;
            }
            hashes.clear();
            ngrams::hashes_of(&text, max_n, |_, h| hashes.push(h));
            hashes.sort_unstable();
            hashes.dedup();
            for &h in &hashes {
                *holders.entry(h).or_default() += 1;
            }
        }
        let mut kept: Vec<u64> = holders
            .into_iter()
            .filter(|&(_, n)| n >= min_names.max(1))
            .map(|(h, _)| h)
            .collect();
        kept.sort_unstable(); // the same words whatever the map's order
        let mut set = Self::with_blocks((kept.len() * BITS_PER_KEY).div_ceil(WORDS * 32));
        for h in kept {
            set.insert(h);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn hashes(name: &str, max_n: usize) -> Vec<u64> {
        let mut out = Vec::new();
        ngrams::hashes_of(
            &ngrams::wrapped(name, TextRule::TrimLower),
            max_n,
            |_, h| out.push(h),
        );
        out
    }

    #[test]
    fn a_batch_answers_as_each_lookup_does() {
        let mut set = KnownNGrams::with_blocks(64);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let keys: Vec<u64> = (0..1000).map(|_| next()).collect();
        keys.iter().for_each(|&k| set.insert(k));
        // Keys, strangers (some false positives among them) and answers given already.
        let mut hashes: Vec<u64> = keys.iter().step_by(3).copied().collect();
        hashes.extend((0..3000).map(|_| next()));
        let mut held: Vec<Option<bool>> = vec![None; hashes.len()];
        held[1] = Some(false);
        held[7] = Some(true);
        // Both builds: the one this CPU runs and the scalar one.
        let mut scalar = held.clone();
        set.contains_each(&hashes, &mut held);
        set.contains_each_scalar(&hashes, &mut scalar);
        assert_eq!(held, scalar);
        for (i, (h, k)) in hashes.iter().zip(&held).enumerate() {
            let expected = match i {
                1 => false,
                7 => true,
                _ => set.contains(*h),
            };
            assert_eq!(*k, Some(expected), "hash {i}");
        }
        // No false negatives; few false positives (16 bits a key).
        assert!((0..334).all(|i| i == 1 || held[i] == Some(true)));
        let strangers = held[334..].iter().filter(|k| **k == Some(true)).count();
        assert!(strangers < 60, "{strangers} of 3000 strangers pass");
    }

    #[test]
    fn keeps_what_two_names_share_and_nothing_one_name_holds_alone() {
        let set = KnownNGrams::build(
            &names(&["Ivanov", "Petrov", "Petrov", "zzqx"]),
            TextRule::TrimLower,
            3,
            2,
        );
        // Both names hold these.
        for gram in ["o", "v", "ov", "v$", "ov$", "^", "$"] {
            assert!(set.contains(ngrams::fnv1a(gram.as_bytes())), "{gram}");
        }
        // Petrov listed twice is one name: its own n-grams are not shared.
        let mut passed = 0;
        for gram in ["^p", "pet", "etr", "^zz", "zqx", "qx$", "^iv", "nov"] {
            passed += set.contains(ngrams::fnv1a(gram.as_bytes())) as usize;
        }
        assert!(passed <= 1, "{passed} n-grams of one name passed as known");
    }

    #[test]
    fn min_names_one_keeps_every_ngram() {
        let list = names(&["Smith", "Nguyen", "Müller"]);
        let set = KnownNGrams::build(&list, TextRule::TrimLower, 4, 1);
        for name in &list {
            assert!(
                hashes(name, 4).into_iter().all(|h| set.contains(h)),
                "{name}"
            );
        }
    }

    #[test]
    fn false_positives_stay_near_the_design_rate() {
        let mut set = KnownNGrams::with_blocks(10_000 * BITS_PER_KEY / 256);
        for i in 0..10_000u64 {
            set.insert(ngrams::fnv1a(&i.to_le_bytes()));
        }
        assert!((0..10_000u64).all(|i| set.contains(ngrams::fnv1a(&i.to_le_bytes()))));
        let passed = (10_000..210_000u64)
            .filter(|i| set.contains(ngrams::fnv1a(&i.to_le_bytes())))
            .count();
        // Designed for about 0.001 at 16 bits a key: 200 of 200,000 expected.
        assert!(passed < 1_000, "{passed} of 200000 unknown keys passed");
    }

    #[test]
    fn refuses_words_that_are_not_whole_blocks() {
        assert!(KnownNGrams::from_words(vec![]).is_err());
        assert!(KnownNGrams::from_words(vec![0; 12]).is_err());
        assert_eq!(KnownNGrams::from_words(vec![0; 16]).unwrap().blocks(), 2);
    }
}
