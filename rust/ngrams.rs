//! The hashed character n-gram branch: a name's logits are the sum of one table row
//! per n-gram, so it costs a lookup and an add of C floats per n-gram, no products.
//!
//! The rule, which the PyTorch side (`nn.EmbeddingBag(mode="sum")` with per-sample
//! weights) and the reference in `namelang.reference` follow byte for byte: take the
//! letters the model reads, wrap them as `^letters$`, and for every start and every
//! length 1..=max_n that fits, the row is FNV-1a 64 of those bytes modulo `buckets`.
//! The rows are summed with weight 1/sqrt(G), G the name's number of n-grams, so a long
//! name's logits do not grow with its length.

use crate::alphabet::ALPHABET;
use crate::model_file::NGramSpec;
use crate::normalize::TextRule;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const START: u8 = b'^';
const END: u8 = b'$';
/// Letters held on the stack while hashing; longer names spill to the heap.
const STACK_LETTERS: usize = 126;

/// Calls `emit` with the table row of each n-gram of the letters `rule` reads from `name`.
pub fn for_each_row(name: &str, rule: TextRule, spec: NGramSpec, emit: impl FnMut(usize)) {
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
    let text: &mut [u8] = if heap.is_empty() {
        stack[n] = END;
        &mut stack[..n + 1]
    } else {
        heap.push(END);
        &mut heap[..]
    };
    rows_of(text, spec, emit);
}

/// The rows of every n-gram of `text` (already wrapped in `^...$`): FNV-1a is built
/// byte by byte, so each start extends its hash one byte per length.
fn rows_of(text: &[u8], spec: NGramSpec, mut emit: impl FnMut(usize)) {
    let buckets = spec.buckets as u64;
    // A power of two (as every bundled model's) takes a mask, the same row as `%`
    // without a 64-bit division per n-gram.
    let mask = buckets.is_power_of_two().then(|| buckets - 1);
    for start in 0..text.len() {
        let mut hash = FNV_OFFSET;
        for &b in &text[start..(start + spec.max_n).min(text.len())] {
            hash = (hash ^ b as u64).wrapping_mul(FNV_PRIME);
            emit(match mask {
                Some(m) => (hash & m) as usize,
                None => (hash % buckets) as usize,
            });
        }
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

/// Adds the weighted n-gram rows of a name of `letters` letters to `row` (C logits);
/// `table` is (buckets, C).
pub fn add_rows(
    name: &str,
    letters: usize,
    rule: TextRule,
    spec: NGramSpec,
    table: &[f32],
    row: &mut [f32],
) {
    let c = row.len();
    let w = weight(letters, spec.max_n);
    // Rows first, each prefetched as it is found, then the sums in the same order (the
    // same bits): the table (2.4 MB for the default) lives outside L2, and asking for
    // every row of a name at once overlaps their misses.
    let mut found = [0u32; STACK_ROWS];
    let mut n = 0;
    let mut rest = Vec::new();
    for_each_row(name, rule, spec, |r| {
        prefetch(table[r * c..].as_ptr(), c);
        if n < STACK_ROWS {
            found[n] = r as u32;
            n += 1;
        } else {
            rest.push(r as u32);
        }
    });
    for &r in found[..n].iter().chain(&rest) {
        let src = &table[r as usize * c..(r as usize + 1) * c];
        row.iter_mut().zip(src).for_each(|(v, s)| *v += w * s);
    }
}

/// Rows of a name held on the stack before the sums; a longer name's go to the heap.
const STACK_ROWS: usize = 256;

/// Asks for the cache lines of `len` floats from `p` (a hint: no effect on results).
#[inline]
fn prefetch(p: *const f32, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let (start, end) = (p as usize, p as usize + 4 * len.max(1) - 1);
        for line in start / 64..=end / 64 {
            // SAFETY: prefetching never faults, whatever the address.
            unsafe { _mm_prefetch((line * 64) as *const i8, _MM_HINT_T0) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, len);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(name: &str, rule: TextRule, spec: NGramSpec) -> Vec<usize> {
        let mut out = Vec::new();
        for_each_row(name, rule, spec, |r| out.push(r));
        out
    }

    /// FNV-1a of a byte string, written out plainly.
    fn fnv(bytes: &[u8]) -> u64 {
        let mut h = FNV_OFFSET;
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(FNV_PRIME);
        }
        h
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
        };
        let name = "abcdefghij".repeat(40);
        let mut text = vec![b'^'];
        text.extend_from_slice(name.as_bytes());
        text.push(b'$');
        let mut expected = Vec::new();
        rows_of(&text, spec, |r| expected.push(r));
        assert_eq!(rows(&name, TextRule::Exact, spec), expected);
        assert_eq!(expected.len(), 5 * text.len() - 10);
        assert_eq!(expected.len(), count(text.len(), 5));
        assert_eq!(count(3, 5), 6);
    }
}
