//! The hashed character n-gram branch: a name's logits are the sum of one table row
//! per n-gram, so it costs a lookup and an add of C floats per n-gram, no products.
//!
//! The rule, which the PyTorch side (`nn.EmbeddingBag(mode="sum")` with per-sample
//! weights) and the reference in `namelang.reference` follow byte for byte: take the
//! letters the model reads, wrap them as `^letters$`, and for every start and every
//! length 1..=max_n that fits, the row is FNV-1a 64 of those bytes modulo `buckets`.
//! The rows are summed with weight 1/sqrt(G), G the name's number of n-grams, so a long
//! name's logits do not grow with its length. A model trained with a set of the n-grams
//! its table knows (`known_ngrams`) reads only those rows; G still counts every n-gram.

use crate::alphabet::ALPHABET;
use crate::known_ngrams::KnownNGrams;
use crate::model_file::NGramSpec;
use crate::normalize::TextRule;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const START: u8 = b'^';
const END: u8 = b'$';
/// Letters held on the stack while hashing; longer names spill to the heap.
const STACK_LETTERS: usize = 126;

/// Calls `with` on `^letters$`, the letters `rule` reads from `name` (held on the stack
/// for names of up to `STACK_LETTERS` letters).
fn with_wrapped<R>(name: &str, rule: TextRule, with: impl FnOnce(&[u8]) -> R) -> R {
    let mut stack = [0u8; STACK_LETTERS + 2];
    let mut heap = Vec::new();
    let letters = ALPHABET.as_bytes();
    let mut n = 1;
    stack[0] = START;
    rule.for_each(name, |i| {
        if n + 1 < stack.len() {
            stack[n] = letters[i as usize];
        } else {
            if heap.is_empty() {
                heap.extend_from_slice(&stack[..n]);
            }
            heap.push(letters[i as usize]);
        }
        n += 1;
    });
    if heap.is_empty() {
        stack[n] = END;
        with(&stack[..n + 1])
    } else {
        heap.push(END);
        with(&heap)
    }
}

/// `^letters$`, the letters `rule` reads from `name`.
pub fn wrapped(name: &str, rule: TextRule) -> Vec<u8> {
    with_wrapped(name, rule, <[u8]>::to_vec)
}

/// Calls `emit` with the table row of each n-gram of the letters `rule` reads from
/// `name`, skipping n-grams a `known` set leaves out.
pub fn for_each_row(
    name: &str,
    rule: TextRule,
    spec: NGramSpec,
    known: Option<&KnownNGrams>,
    emit: impl FnMut(usize),
) {
    with_wrapped(name, rule, |text| rows_of(text, spec, known, emit));
}

/// FNV-1a 64 of every n-gram of `text` (1 to `max_n` bytes), start by start, with the
/// n-gram: FNV-1a is built byte by byte, so each start extends its hash one byte per
/// length.
pub fn hashes_of(text: &[u8], max_n: usize, mut emit: impl FnMut(&[u8], u64)) {
    for start in 0..text.len() {
        let mut hash = FNV_OFFSET;
        for stop in start + 1..=(start + max_n).min(text.len()) {
            hash = (hash ^ text[stop - 1] as u64).wrapping_mul(FNV_PRIME);
            emit(&text[start..stop], hash);
        }
    }
}

/// FNV-1a 64 of a byte string.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(FNV_OFFSET, |h, &b| (h ^ b as u64).wrapping_mul(FNV_PRIME))
}

/// The rows of the n-grams of `text` (already wrapped in `^...$`) that `known` holds
/// (every n-gram without one).
fn rows_of(text: &[u8], spec: NGramSpec, known: Option<&KnownNGrams>, mut emit: impl FnMut(usize)) {
    let bucket = bucket_of(spec);
    hashes_of(text, spec.max_n, |_, hash| {
        if known.is_none_or(|k| k.contains(hash)) {
            emit(bucket(hash));
        }
    });
}

/// The row of an n-gram's hash. A power of two (as every bundled model's) takes a mask,
/// the same row as `%` without a 64-bit division per n-gram.
#[inline]
fn bucket_of(spec: NGramSpec) -> impl Fn(u64) -> usize {
    let buckets = spec.buckets as u64;
    let mask = buckets.is_power_of_two().then(|| buckets - 1);
    move |hash| match mask {
        Some(m) => (hash & m) as usize,
        None => (hash % buckets) as usize,
    }
}

/// Number of n-grams of a wrapped text of `len` bytes.
pub fn count(len: usize, max_n: usize) -> usize {
    (1..=max_n.min(len)).map(|n| len - n + 1).sum()
}

/// The weight of each n-gram row of a name of `letters` letters: 1/sqrt(G).
pub fn weight(letters: usize, max_n: usize) -> f32 {
    1.0 / (count(letters + 2, max_n) as f32).sqrt()
}

/// A model's n-gram branch: its spec, its table (buckets x C) and, where it was trained
/// with one, the set of n-grams the table knows.
#[derive(Clone)]
pub struct Branch {
    spec: NGramSpec,
    table: Vec<f32>,
    known: Option<Known>,
}

/// A known set with its answers for every n-gram of one or two bytes written down
/// (bit `a << 8 | b` for `ab`, bit `b` of the first 256 for `b`): 42% of a name's
/// n-grams are that short, and a bit costs less than a filter lookup. The same answers
/// as the filter's, by construction.
#[derive(Clone)]
struct Known {
    set: KnownNGrams,
    one: [u64; 4],
    two: Vec<u64>,
}

impl Known {
    fn new(set: KnownNGrams) -> Self {
        let symbols: Vec<u8> = ALPHABET.bytes().chain([START, END]).collect();
        let (mut one, mut two) = ([0u64; 4], vec![0u64; 1 << 10]);
        for &a in &symbols {
            if set.contains(fnv1a(&[a])) {
                one[a as usize / 64] |= 1 << (a % 64);
            }
            for &b in &symbols {
                let at = (a as usize) << 8 | b as usize;
                if set.contains(fnv1a(&[a, b])) {
                    two[at / 64] |= 1 << (at % 64);
                }
            }
        }
        Known { set, one, two }
    }

    /// Whether the n-gram `gram` (its FNV-1a 64 `hash`) is known.
    #[cfg(test)]
    fn holds(&self, gram: &[u8], hash: u64) -> bool {
        self.short(gram).unwrap_or_else(|| self.set.contains(hash))
    }

    /// Whether an n-gram of one or two bytes is known (None for a longer one).
    #[inline]
    fn short(&self, gram: &[u8]) -> Option<bool> {
        match *gram {
            [b] => Some(self.one[b as usize / 64] >> (b % 64) & 1 == 1),
            [a, b] => {
                let at = (a as usize) << 8 | b as usize;
                Some(self.two[at / 64] >> (at % 64) & 1 == 1)
            }
            _ => None,
        }
    }
}

impl Branch {
    pub fn new(spec: NGramSpec, table: Vec<f32>, known: Option<KnownNGrams>) -> Self {
        let known = known.map(Known::new);
        Branch { spec, table, known }
    }

    /// Adds the weighted n-gram rows of a name of `letters` letters to `row` (C logits).
    /// The weight counts every n-gram of the name, known or not, as training did.
    pub fn add_rows(&self, name: &str, letters: usize, rule: TextRule, row: &mut [f32]) {
        let (c, table) = (row.len(), &self.table);
        let w = weight(letters, self.spec.max_n);
        let bucket = bucket_of(self.spec);
        // Every n-gram's hash first, and whether the table knows it where one or two
        // bytes tell (None: ask the filter); then the filter for the rest in one batch;
        // then the known rows summed in n-gram order.
        let (mut hashes, mut held) = (Spill::new(0u64), Spill::new(None));
        with_wrapped(name, rule, |text| {
            hashes_of(text, self.spec.max_n, |gram, hash| {
                hashes.push(hash);
                held.push(match &self.known {
                    None => Some(true),
                    Some(k) => k.short(gram),
                });
            })
        });
        let (hashes, held) = (hashes.as_mut_slice(), held.as_mut_slice());
        if let Some(k) = &self.known {
            k.set.contains_each(hashes, held);
        }
        // No prefetch of the rows: asking for each row's lines as it is found made the
        // data set's names slower (a test loop: 458 -> 521 ns a name).
        let mut offsets = Spill::new(0usize);
        for (h, _) in hashes
            .iter()
            .zip(held.iter())
            .filter(|(_, k)| **k == Some(true))
        {
            offsets.push(bucket(*h) * c);
        }
        let offsets = offsets.as_mut_slice();
        sum_rows(table, offsets, w, row);
    }
}

/// `row[j] += w * table[at + j]` for each offset in turn: the same bits whichever way
/// it runs (a multiply, then an add, element by element, rows in order). Where the CPU
/// has AVX2 the row stays in registers across the n-grams, 8 columns at a time.
fn sum_rows(table: &[f32], offsets: &[usize], w: f32, row: &mut [f32]) {
    let c = row.len();
    assert!(offsets.iter().all(|&at| at + c <= table.len()));
    #[cfg(target_arch = "x86_64")]
    if crate::gemm::isa() != crate::gemm::Isa::Portable {
        // SAFETY: `isa` found AVX2; every row lies inside `table` (asserted above).
        return unsafe { x86::sum_rows(table, offsets, w, row) };
    }
    for &at in offsets {
        let src = &table[at..at + c];
        row.iter_mut().zip(src).for_each(|(v, s)| *v += w * s);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// `sum_rows` 8 columns at a time, the last block through a lane mask. Up to 32
    /// columns (every bundled model's 18), all blocks of a row at once: their sums
    /// are independent chains, so the adds overlap instead of waiting on each other.
    ///
    /// # Safety
    /// The CPU has AVX2, and `at + row.len() <= table.len()` for every offset.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn sum_rows(table: &[f32], offsets: &[usize], w: f32, row: &mut [f32]) {
        match row.len().div_ceil(8) {
            0 => {}
            1 => blocks::<1>(table, offsets, w, row, 0),
            2 => blocks::<2>(table, offsets, w, row, 0),
            3 => blocks::<3>(table, offsets, w, row, 0),
            _ => (0..row.len())
                .step_by(32)
                .for_each(|j| blocks::<4>(table, offsets, w, row, j)),
        }
    }

    /// Columns `j..j + 8 * B` (those that exist) of every row, `B` accumulators.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn blocks<const B: usize>(
        table: &[f32],
        offsets: &[usize],
        w: f32,
        row: &mut [f32],
        j: usize,
    ) {
        let (c, base, out) = (row.len(), table.as_ptr(), row.as_mut_ptr());
        let masks: [__m256i; B] = std::array::from_fn(|b| {
            let lanes = c.saturating_sub(j + 8 * b).min(8) as i32;
            _mm256_cmpgt_epi32(
                _mm256_set1_epi32(lanes),
                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
            )
        });
        let wv = _mm256_set1_ps(w);
        let mut acc: [__m256; B] =
            std::array::from_fn(|b| _mm256_maskload_ps(out.add(j + 8 * b), masks[b]));
        for &at in offsets {
            for b in 0..B {
                let s = _mm256_maskload_ps(base.add(at + j + 8 * b), masks[b]);
                acc[b] = _mm256_add_ps(acc[b], _mm256_mul_ps(wv, s));
            }
        }
        for b in 0..B {
            _mm256_maskstore_ps(out.add(j + 8 * b), masks[b], acc[b]);
        }
    }
}

/// N-grams of a name held on the stack before the sums; a longer name's go to the heap.
const STACK_ROWS: usize = 128;

/// Up to `STACK_ROWS` values on the stack, all of them on the heap past that (names of
/// more than about 25 letters).
struct Spill<T> {
    stack: [T; STACK_ROWS],
    heap: Vec<T>,
    len: usize,
}

impl<T: Copy> Spill<T> {
    fn new(fill: T) -> Self {
        Spill {
            stack: [fill; STACK_ROWS],
            heap: Vec::new(),
            len: 0,
        }
    }

    #[inline]
    fn push(&mut self, value: T) {
        if self.len < STACK_ROWS {
            self.stack[self.len] = value;
        } else {
            if self.heap.is_empty() {
                self.heap.extend_from_slice(&self.stack);
            }
            self.heap.push(value);
        }
        self.len += 1;
    }

    fn as_mut_slice(&mut self) -> &mut [T] {
        if self.heap.is_empty() {
            &mut self.stack[..self.len]
        } else {
            &mut self.heap
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(name: &str, rule: TextRule, spec: NGramSpec) -> Vec<usize> {
        let mut out = Vec::new();
        for_each_row(name, rule, spec, None, |r| out.push(r));
        out
    }

    fn fnv(bytes: &[u8]) -> u64 {
        fnv1a(bytes)
    }

    #[test]
    fn fnv1a_matches_its_published_test_vectors() {
        assert_eq!(fnv(b""), 0xcbf29ce484222325);
        assert_eq!(fnv(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn every_ngram_of_the_wrapped_letters_once() {
        let spec = NGramSpec {
            max_n: 3,
            buckets: 1 << 20,
            known_blocks: 0,
        };
        let text = b"^ab$";
        let mut expected = Vec::new();
        for start in 0..text.len() {
            for n in 1..=3 {
                if start + n <= text.len() {
                    expected.push((fnv(&text[start..start + n]) % (1 << 20)) as usize);
                }
            }
        }
        assert_eq!(rows("  AB ", TextRule::TrimLower, spec), expected);
        assert_eq!(rows("ab", TextRule::Exact, spec), expected);
        assert_ne!(rows("AB", TextRule::Exact, spec), expected);
    }

    #[test]
    fn long_names_hash_as_short_ones_do() {
        let spec = NGramSpec {
            max_n: 5,
            buckets: 1000,
            known_blocks: 0,
        };
        let name = "abcdefghij".repeat(40);
        let mut text = vec![b'^'];
        text.extend_from_slice(name.as_bytes());
        text.push(b'$');
        let mut expected = Vec::new();
        rows_of(&text, spec, None, |r| expected.push(r));
        assert_eq!(rows(&name, TextRule::Exact, spec), expected);
        assert_eq!(expected.len(), 5 * text.len() - 10);
        assert_eq!(expected.len(), count(text.len(), 5));
        assert_eq!(count(3, 5), 6);
    }

    #[test]
    fn a_known_set_keeps_its_ngrams_only() {
        let spec = NGramSpec {
            max_n: 3,
            buckets: 1 << 20,
            known_blocks: 0,
        };
        let mut known = KnownNGrams::with_blocks(4);
        for gram in [&b"^a"[..], b"b$", b"ab"] {
            known.insert(fnv(gram));
        }
        let mut kept = Vec::new();
        for_each_row("ab", TextRule::Exact, spec, Some(&known), |r| kept.push(r));
        let expected: Vec<usize> = [&b"^a"[..], b"ab", b"b$"]
            .iter()
            .map(|g| (fnv(g) % (1 << 20)) as usize)
            .collect();
        assert_eq!(kept, expected);
    }

    /// A scalar `sum_rows`: the bits every kernel must give.
    fn summed(table: &[f32], offsets: &[usize], w: f32, row: &[f32]) -> Vec<f32> {
        let mut out = row.to_vec();
        for &at in offsets {
            for (j, v) in out.iter_mut().enumerate() {
                *v += w * table[at + j];
            }
        }
        out
    }

    #[test]
    fn every_kernel_sums_the_rows_to_the_same_bits() {
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1 << 24) as f32 - 0.5
        };
        for c in 1..=40 {
            let table: Vec<f32> = (0..64 * c).map(|_| next() * 9.0).collect();
            let row: Vec<f32> = (0..c).map(|_| next()).collect();
            for rows in [0, 1, 5, 37, 200] {
                let offsets: Vec<usize> = (0..rows).map(|i| (i * 17 + c) % 64 * c).collect();
                let mut got = row.clone();
                sum_rows(&table, &offsets, 0.3, &mut got);
                let want = summed(&table, &offsets, 0.3, &row);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{c} columns, {rows} rows");
            }
        }
    }

    #[test]
    fn a_long_names_rows_are_all_summed() {
        let spec = NGramSpec {
            max_n: 6,
            buckets: 64,
            known_blocks: 0,
        };
        let c = 3;
        let table: Vec<f32> = (0..64 * c).map(|i| (i % 29) as f32 * 0.25).collect();
        let name = "Abcdefghij".repeat(8); // 80 letters: 465 n-grams, past the stack
        let letters = name.len();
        let offsets: Vec<usize> = rows(&name, TextRule::Exact, spec)
            .iter()
            .map(|r| r * c)
            .collect();
        assert!(offsets.len() > STACK_ROWS);
        let mut got = vec![1.0; c];
        Branch::new(spec, table.clone(), None).add_rows(&name, letters, TextRule::Exact, &mut got);
        assert_eq!(got, summed(&table, &offsets, weight(letters, 6), &[1.0; 3]));
    }

    #[test]
    fn the_short_ngrams_answers_are_the_filters() {
        let names: Vec<String> = ["ab", "abc", "b", "xa", "ax", "Zq"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let set = KnownNGrams::build(&names, TextRule::Exact, 3, 2);
        let known = Known::new(set.clone());
        let symbols: Vec<u8> = ALPHABET.bytes().chain([START, END]).collect();
        let mut held = 0;
        for &a in &symbols {
            assert_eq!(known.holds(&[a], fnv(&[a])), set.contains(fnv(&[a])));
            for &b in &symbols {
                let h = fnv(&[a, b]);
                assert_eq!(known.holds(&[a, b], h), set.contains(h));
                held += known.holds(&[a, b], h) as usize;
            }
        }
        assert!(held >= 2, "^a and b$ are shared"); // and a few false positives at most
        assert!(known.holds(b"^a", fnv(b"^a")) && !known.holds(b"zq", fnv(b"zq")));
    }
}
