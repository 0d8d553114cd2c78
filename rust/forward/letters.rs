//! The letters of a batch's rows as one flat array: each row's letter indices one after
//! another, no padding, so a long name costs its own length, not its length times the
//! batch. The whole batch's letters are read once, in input order; each chunk then
//! copies out the rows it runs, in its own order.

use crate::normalize::TextRule;
use rayon::prelude::*;

#[derive(Default)]
pub(super) struct Letters {
    x: Vec<u8>,
    start: Vec<usize>, // rows + 1 entries: row j is x[start[j]..start[j + 1]]
}

impl Letters {
    /// Rows per parallel task while reading names.
    const BLOCK: usize = 4096;

    /// The letters of `names[rows[j]]` for each j, as `rule` reads them; `lengths` are
    /// the names' lengths under that rule.
    pub(super) fn read<S: AsRef<str> + Sync>(
        names: &[S],
        rows: &[usize],
        lengths: &[usize],
        rule: TextRule,
        par: bool,
    ) -> Letters {
        let mut start = Vec::with_capacity(rows.len() + 1);
        start.push(0);
        let mut total = 0;
        for &i in rows {
            total += lengths[i];
            start.push(total);
        }
        let mut x = vec![0u8; total];
        // Disjoint pieces of `x`, one per block of rows, filled in parallel.
        let mut pieces = Vec::with_capacity(rows.len().div_ceil(Self::BLOCK));
        let mut rest = &mut x[..];
        for from in (0..rows.len()).step_by(Self::BLOCK) {
            let to = (from + Self::BLOCK).min(rows.len());
            let (piece, tail) = rest.split_at_mut(start[to] - start[from]);
            pieces.push((&rows[from..to], piece));
            rest = tail;
        }
        let fill = |(block, piece): (&[usize], &mut [u8])| {
            let mut k = 0;
            for &i in block {
                rule.for_each(names[i].as_ref(), |letter| {
                    piece[k] = letter;
                    k += 1;
                });
            }
            debug_assert_eq!(k, piece.len());
        };
        if par {
            pieces.into_par_iter().for_each(fill);
        } else {
            pieces.into_iter().for_each(fill);
        }
        Letters { x, start }
    }

    /// Rows of `len` letters each, one after another in `x`.
    pub(super) fn equal_rows(x: Vec<u8>, len: usize) -> Letters {
        let rows = x.len().checked_div(len).unwrap_or(0);
        Letters {
            x,
            start: (0..=rows).map(|j| j * len).collect(),
        }
    }

    /// Every row's letters, one row after another.
    pub(super) fn all(&self) -> &[u8] {
        &self.x
    }

    /// Becomes rows `rows` of `from`, in that order (keeping this one's allocations).
    pub(super) fn select(&mut self, from: &Letters, rows: &[usize]) {
        self.x.clear();
        self.start.clear();
        self.start.push(0);
        for &j in rows {
            self.x.extend_from_slice(from.row(j));
            self.start.push(self.x.len());
        }
    }

    pub(super) fn row(&self, j: usize) -> &[u8] {
        &self.x[self.start[j]..self.start[j + 1]]
    }

    pub(super) fn len(&self, j: usize) -> usize {
        self.start[j + 1] - self.start[j]
    }

    pub(super) fn rows(&self) -> usize {
        self.start.len().saturating_sub(1)
    }

    /// Row r's letter s (the row has at least s + 1 letters).
    #[inline]
    pub(super) fn at(&self, r: usize, s: usize) -> u8 {
        self.x[self.start[r] + s]
    }

    /// The same rows, each read last letter first.
    pub(super) fn reversed(&self) -> Letters {
        let mut x = self.x.clone();
        for w in self.start.windows(2) {
            x[w[0]..w[1]].reverse();
        }
        Letters {
            x,
            start: self.start.clone(),
        }
    }

    /// Rows sorted by length, longest first, ties in row order: a counting sort where
    /// names are of everyday lengths, a comparison sort past that.
    pub(super) fn longest_first(&self, par: bool) -> Vec<usize> {
        const COUNTED: usize = 1 << 16;
        let n = self.rows();
        let longest = (0..n).map(|j| self.len(j)).max().unwrap_or(0);
        if longest >= COUNTED {
            let mut order: Vec<usize> = (0..n).collect();
            // The row is part of the key: ties keep row order.
            let key = |&j: &usize| (std::cmp::Reverse(self.len(j)), j);
            if par {
                order.par_sort_unstable_by_key(key);
            } else {
                order.sort_unstable_by_key(key);
            }
            return order;
        }
        // next[len]: where the next row of that length goes.
        let mut next = vec![0usize; longest + 1];
        for j in 0..n {
            next[self.len(j)] += 1;
        }
        let mut at = 0;
        for count in next.iter_mut().rev() {
            (*count, at) = (at, at + *count);
        }
        let mut order = vec![0usize; n];
        for j in 0..n {
            let slot = &mut next[self.len(j)];
            order[*slot] = j;
            *slot += 1;
        }
        order
    }

    /// Rows sorted by their letters (then length), so that rows whose names start alike
    /// are neighbours and can share their state (`prefixes`).
    pub(super) fn by_prefix(&self, par: bool) -> Vec<usize> {
        let key = |j: usize| (j, sort_key(self.row(j)));
        let rows = 0..self.rows();
        let mut keyed: Vec<(usize, u128)> = if par {
            rows.into_par_iter().map(key).collect()
        } else {
            rows.map(key).collect()
        };
        if par {
            keyed.par_sort_unstable_by_key(|&(_, k)| k);
        } else {
            keyed.sort_unstable_by_key(|&(_, k)| k);
        }
        keyed.into_iter().map(|(j, _)| j).collect()
    }
}

/// Sorts by the first 16 letters (6 bits each), then by length: rows with the same
/// prefix end up side by side. Lengths past 2^32 - 1 share the last key.
fn sort_key(letters: &[u8]) -> u128 {
    const LETTERS: usize = 16; // 96 bits under the length
    let mut key = 0u128;
    for (k, &letter) in letters.iter().take(LETTERS).enumerate() {
        key |= (letter as u128) << (6 * (LETTERS - 1 - k));
    }
    (key << 32) | letters.len().min(u32::MAX as usize) as u128
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sort_longest_first_with_ties_in_row_order() {
        let names = ["Ab", "Abcd", "Xy", "", "Q", "Wxyz", "Mn"];
        let lengths: Vec<usize> = names.iter().map(|n| n.len()).collect();
        let rows: Vec<usize> = (0..names.len()).collect();
        let want = vec![1, 5, 0, 2, 6, 4, 3];
        for par in [false, true] {
            let letters = Letters::read(&names, &rows, &lengths, TextRule::Exact, par);
            assert_eq!(letters.row(5), &[48u8, 23, 24, 25][..]);
            assert_eq!(letters.longest_first(par), want);
        }
        // Past the counting sort's bound: the comparison sort, same order.
        let long = "a".repeat(1 << 16);
        let names = ["Ab", long.as_str(), "Xy", "Q"];
        let lengths: Vec<usize> = names.iter().map(|n| n.len()).collect();
        let letters = Letters::read(&names, &[0, 1, 2, 3], &lengths, TextRule::Exact, false);
        assert_eq!(letters.longest_first(false), vec![1, 0, 2, 3]);
    }

    #[test]
    fn selected_and_reversed_rows_keep_their_letters() {
        let names = ["Abc", "", "Xy"];
        let lengths = [3, 0, 2];
        let all = Letters::read(&names, &[0, 1, 2], &lengths, TextRule::Exact, false);
        let mut some = Letters::default();
        some.select(&all, &[2, 0]);
        assert_eq!(
            (some.rows(), some.row(0), some.row(1)),
            (2, all.row(2), all.row(0))
        );
        let back = some.reversed();
        assert_eq!(back.row(1), &[2u8, 1, 26][..]);
        assert_eq!(back.at(0, 0), all.at(2, 1));
        let by_prefix = Letters::read(
            &["Ab", "Aa", "Ab"],
            &[0, 1, 2],
            &[2, 2, 2],
            TextRule::Exact,
            false,
        );
        assert_eq!(by_prefix.by_prefix(false), vec![1, 0, 2]);
    }
}
