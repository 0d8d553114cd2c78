//! Shared prefixes: a recurrent state depends only on the letters read so far, so rows
//! whose names start alike can share one state until they part. To share, the forward
//! pass sorts a batch's rows by their letters, which puts rows with the same first s
//! letters next to each other; at each step this module numbers the distinct prefixes
//! ("nodes") among the rows still reading, and says which node each came from.

/// Node bookkeeping for one chunk of rows.
#[derive(Default)]
pub struct Prefixes {
    share: bool,
    /// Rows still reading, in row order.
    active: Vec<u32>,
    /// The node of each row at the current step (a finished row keeps its last one).
    of_row: Vec<u32>,
    /// Each node's node at the step before (its prefix one letter shorter).
    parent: Vec<u32>,
    /// Each node's last letter.
    letter: Vec<u8>,
    /// Node i came from node i for every i: states can stay where they are.
    in_place: bool,
}

impl Prefixes {
    /// Starts `rows` rows, all reading, at the empty prefix. Without `share` every row
    /// is its own node (node r is row r at the first step), the plain recurrence.
    pub fn reset(&mut self, rows: usize, share: bool) {
        self.share = share;
        self.active.clear();
        self.active.extend(0..rows as u32);
        self.of_row.clear();
        self.of_row.resize(rows, 0);
        self.parent.clear();
        self.letter.clear();
        self.in_place = false;
    }

    /// Starts the rows as `reset` does, in whichever order costs less from step `from`
    /// on (`row(r)`: row r's letters). Their own order, sorted by letters,
    /// shares the most prefixes, but each step at which a row ends moves the states of
    /// the nodes after it; longest first, rows end at the tail and states stay where
    /// they are, while only neighbours of one length share. On distinct random names
    /// sharing past the first three letters saves 0.1% of the products while 80% of the
    /// states move; on the data set's names it saves 12%.
    pub fn start<'a>(
        &mut self,
        lens: &[usize],
        share: bool,
        row: impl Fn(usize) -> &'a [u8],
        from: usize,
    ) {
        self.reset(lens.len(), share);
        if !share {
            return; // rows come longest first already
        }
        let common = |a: usize, b: usize| {
            let same = row(a)
                .iter()
                .zip(row(b))
                .take_while(|(x, y)| x == y)
                .count();
            same.saturating_sub(from)
        };
        let steps: usize = lens.iter().map(|l| l.saturating_sub(from)).sum();
        // Products each order saves: a row shares its node with the row before it for
        // as many letters as they have in common (sorted rows: the one before it in
        // either order, since rows between them in the other are shorter).
        let in_order: usize = (1..lens.len()).map(|r| common(r - 1, r)).sum();
        let longest = longest_first(lens);
        if in_order * MOVES_PER_PRODUCT >= steps {
            let by_length: usize = longest
                .windows(2)
                .map(|w| common(w[0] as usize, w[1] as usize))
                .sum();
            if (in_order - by_length.min(in_order)) * MOVES_PER_PRODUCT >= steps {
                return;
            }
        }
        self.active = longest;
    }

    /// Keeps reading only the rows longer than `letters` (the others have read theirs).
    pub fn keep_longer(&mut self, lens: &[usize], letters: usize) {
        self.active.retain(|&r| lens[r as usize] > letters);
    }

    /// Rows still reading.
    pub fn active(&self) -> &[u32] {
        &self.active
    }

    /// Extends the prefix of every row still reading by its letter `letter(row)`.
    pub fn next(&mut self, letter: impl Fn(usize) -> u8) {
        self.parent.clear();
        self.letter.clear();
        self.in_place = true;
        let (mut last_parent, mut last_letter) = (u32::MAX, 0u8);
        for (i, &r) in self.active.iter().enumerate() {
            let (p, l) = (self.of_row[r as usize], letter(r as usize));
            // Neighbours with the same parent and letter have the same prefix.
            if !self.share || i == 0 || p != last_parent || l != last_letter {
                self.in_place &= p as usize == self.parent.len();
                self.parent.push(p);
                self.letter.push(l);
            }
            (last_parent, last_letter) = (p, l);
            self.of_row[r as usize] = (self.parent.len() - 1) as u32;
        }
    }

    /// Distinct prefixes at this step.
    pub fn count(&self) -> usize {
        self.parent.len()
    }

    pub fn of_row(&self, row: usize) -> usize {
        self.of_row[row] as usize
    }

    pub fn letter(&self, node: usize) -> u8 {
        self.letter[node]
    }

    /// Each node's last letter, in node order.
    pub fn letters(&self) -> &[u8] {
        &self.letter
    }

    /// Each node's node at the step before, in node order.
    pub fn parents(&self) -> &[u32] {
        &self.parent
    }

    /// Whether every node sits where its parent's state is (no gather needed): always
    /// so without sharing on length-sorted rows.
    pub fn in_place(&self) -> bool {
        self.in_place
    }

    /// Copies each node's parent state (rows of `width` floats in `from`, indexed by the
    /// previous step's nodes) to the node's slot in `to`.
    pub fn gather(&self, from: &[f32], to: &mut [f32], width: usize) {
        for (i, &p) in self.parent.iter().enumerate() {
            let p = p as usize;
            to[i * width..(i + 1) * width].copy_from_slice(&from[p * width..(p + 1) * width]);
        }
    }
}

/// How many state moves cost as much as one node's products (a member of 64's int16
/// products of 64 x 192 against a copy of 64 floats, by `perf`: 43% against 3%).
const MOVES_PER_PRODUCT: usize = 32;

/// Rows by length, longest first, ties in row order.
fn longest_first(lens: &[usize]) -> Vec<u32> {
    let mut rows: Vec<u32> = (0..lens.len() as u32).collect();
    rows.sort_by_key(|&r| std::cmp::Reverse(lens[r as usize]));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Letters time-major, as the forward pass lays them out (0 past a name's end).
    fn time_major(names: &[&[u8]]) -> Vec<Vec<u8>> {
        let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
        (0..width)
            .map(|s| {
                names
                    .iter()
                    .map(|n| n.get(s).copied().unwrap_or(0))
                    .collect()
            })
            .collect()
    }

    /// Each row's node at each step, for rows in the given order.
    fn nodes(names: &[&[u8]], share: bool) -> Vec<Vec<usize>> {
        let lens: Vec<usize> = names.iter().map(|n| n.len()).collect();
        let mut p = Prefixes::default();
        p.reset(names.len(), share);
        let mut seen = Vec::new();
        for (s, xs) in time_major(names).iter().enumerate() {
            p.keep_longer(&lens, s);
            p.next(|r| xs[r]);
            seen.push(p.active().iter().map(|&r| p.of_row(r as usize)).collect());
        }
        seen
    }

    #[test]
    fn rows_with_the_same_prefix_share_a_node_until_they_part() {
        let seen = nodes(&[b"abcd", b"abce", b"abd", b"xbd"], true);
        assert_eq!(
            seen,
            [
                vec![0, 0, 0, 1],
                vec![0, 0, 0, 1],
                vec![0, 0, 1, 2],
                vec![0, 1]
            ]
        );
    }

    #[test]
    fn rows_sorted_by_letters_share_across_lengths() {
        // "ab" ends at step 1 while "abc" and "abd" go on from its node.
        let seen = nodes(&[b"ab", b"abc", b"abd", b"b"], true);
        assert_eq!(seen, [vec![0, 0, 0, 1], vec![0, 0, 0], vec![0, 1]]);
    }

    #[test]
    fn without_sharing_each_row_is_its_own_node() {
        let seen = nodes(&[b"ab", b"ab", b"ab"], false);
        assert_eq!(seen, [vec![0, 1, 2], vec![0, 1, 2]]);
    }

    #[test]
    fn rows_that_share_little_run_longest_first_and_stay_in_place() {
        let start = |names: &[&[u8]], from: usize| {
            let lens: Vec<usize> = names.iter().map(|n| n.len()).collect();
            let mut p = Prefixes::default();
            p.start(&lens, true, |r| names[r], from);
            p.active().to_vec()
        };
        // Sorted names that part after their first letter: longest first.
        let apart: [&[u8]; 4] = [b"ab", b"bcdef", b"cde", b"defg"];
        assert_eq!(start(&apart, 0), [1, 3, 2, 0]);
        // Names that share prefixes with names of other lengths keep their order...
        let alike: [&[u8]; 4] = [b"abcdx", b"abcdxy", b"bcdex", b"bcdexy"];
        assert_eq!(start(&alike, 0), [0, 1, 2, 3]);
        // ...unless what they share lies before `from` (the start table's letters).
        assert_eq!(start(&alike, 5), [1, 3, 0, 2]);
        // Nested names share as much longest first.
        let nested: [&[u8]; 3] = [b"abcdefg", b"abcdefgh", b"abcdefghi"];
        assert_eq!(start(&nested, 0), [2, 1, 0]);
        // Without sharing, rows come longest first already and stay as they are.
        let mut p = Prefixes::default();
        p.start(&[2, 5], false, |r| apart[r], 0);
        assert_eq!(p.active(), [0, 1]);
        // Longest first, a row that ends leaves every node in place.
        p.start(&[5, 3, 2], true, |r| [&b"abcde"[..], b"xyz", b"qr"][r], 0);
        for s in 0..5 {
            p.keep_longer(&[5, 3, 2], s);
            p.next(|r| [&b"abcde"[..], b"xyz", b"qr"][r][s]);
            assert!(p.in_place() || s == 0, "step {s}");
        }
    }

    #[test]
    fn gather_moves_parent_states_to_their_children() {
        // Step 0: "ab", "b", "ba" -> nodes a, b; step 1: ab (from a), ba (from b), the
        // row "b" having ended.
        let names: [&[u8]; 3] = [b"ab", b"b", b"ba"];
        let lens = [2, 1, 2];
        let x = time_major(&names);
        let mut p = Prefixes::default();
        p.reset(3, true);
        p.next(|r| x[0][r]);
        assert_eq!(p.count(), 2);
        p.keep_longer(&lens, 1);
        p.next(|r| x[1][r]);
        assert!(p.in_place());
        let mut to = vec![0.0; 4];
        p.gather(&[1.0, 1.0, 2.0, 2.0], &mut to, 2);
        assert_eq!(to, [1.0, 1.0, 2.0, 2.0]);
        // Node 0 ("a") has no row left reading: its child moves down a slot.
        let names: [&[u8]; 2] = [b"a", b"bc"];
        let x = time_major(&names);
        p.reset(2, true);
        p.next(|r| x[0][r]);
        p.keep_longer(&[1, 2], 1);
        p.next(|r| x[1][r]);
        assert!(!p.in_place());
        let mut to = vec![0.0; 2];
        p.gather(&[1.0, 1.0, 2.0, 2.0], &mut to, 2);
        assert_eq!(to, [2.0, 2.0]);
    }
}
