//! Shared prefixes: a recurrent state depends only on the letters read so far, so rows
//! whose names start alike can share one state until they part. The forward pass sorts
//! rows by length (longest first), then by letters, which puts rows with the same first
//! s letters next to each other; at each step this module numbers the distinct prefixes
//! ("nodes") among the rows still reading, and says which node each came from.

/// Node bookkeeping for one chunk of length-sorted rows.
#[derive(Default)]
pub struct Prefixes {
    share: bool,
    /// The node of each row at the current step.
    of_row: Vec<u32>,
    /// Each node's node at the step before (its prefix one letter shorter).
    parent: Vec<u32>,
    /// Each node's last letter.
    letter: Vec<u8>,
}

impl Prefixes {
    /// Starts `rows` rows at the empty prefix. Without `share` every row is its own node
    /// (node r is row r), which is the plain per-row recurrence.
    pub fn reset(&mut self, rows: usize, share: bool) {
        self.share = share;
        self.of_row.clear();
        self.of_row.resize(rows, 0);
        self.parent.clear();
        self.letter.clear();
    }

    /// Extends the prefixes of rows [0, rows) by one letter each (`xs[r]`); rows past
    /// `rows` have finished and keep their last node.
    pub fn next(&mut self, xs: &[u8], rows: usize) {
        self.parent.clear();
        self.letter.clear();
        let (mut last_parent, mut last_letter) = (u32::MAX, 0u8);
        for (r, (node, &l)) in self.of_row[..rows].iter_mut().zip(xs).enumerate() {
            let p = *node;
            // Neighbours with the same parent and letter have the same prefix.
            if !self.share || r == 0 || p != last_parent || l != last_letter {
                self.parent.push(p);
                self.letter.push(l);
            }
            (last_parent, last_letter) = (p, l);
            *node = (self.parent.len() - 1) as u32;
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

    /// Moves each node's parent state (rows of `width` floats, indexed by the previous
    /// step's nodes) into the node's own slot. A parent's index is never above its
    /// child's (the rows still reading are a prefix of those that were, so every
    /// boundary between nodes before is one now), so going down from the last node
    /// never reads a slot already overwritten.
    pub fn gather(&self, state: &mut [f32], width: usize) {
        for i in (0..self.count()).rev() {
            let p = self.parent[i] as usize;
            debug_assert!(p <= i);
            if p != i {
                state.copy_within(p * width..(p + 1) * width, i * width);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Letters of length-sorted names, time-major, as the forward pass lays them out.
    fn time_major(names: &[&[u8]]) -> Vec<Vec<u8>> {
        let width = names[0].len();
        (0..width)
            .map(|s| {
                names
                    .iter()
                    .map(|n| n.get(s).copied().unwrap_or(0))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn rows_with_the_same_prefix_share_a_node_until_they_part() {
        let names: [&[u8]; 4] = [b"abcd", b"abce", b"abd", b"xbd"];
        let x = time_major(&names);
        let mut p = Prefixes::default();
        p.reset(names.len(), true);
        let mut seen = Vec::new();
        for (s, xs) in x.iter().enumerate() {
            let rows = names.iter().filter(|n| n.len() > s).count();
            p.next(xs, rows);
            seen.push((0..rows).map(|r| p.of_row(r)).collect::<Vec<_>>());
        }
        assert_eq!(seen[0], [0, 0, 0, 1]);
        assert_eq!(seen[1], [0, 0, 0, 1]);
        assert_eq!(seen[2], [0, 0, 1, 2]);
        assert_eq!(seen[3], [0, 1]);
    }

    #[test]
    fn without_sharing_each_row_is_its_own_node() {
        let names: [&[u8]; 3] = [b"ab", b"ab", b"ab"];
        let x = time_major(&names);
        let mut p = Prefixes::default();
        p.reset(3, false);
        for xs in &x {
            p.next(xs, 3);
            assert_eq!(p.count(), 3);
            assert_eq!((0..3).map(|r| p.of_row(r)).collect::<Vec<_>>(), [0, 1, 2]);
        }
    }

    #[test]
    fn gather_moves_parent_states_to_their_children_in_place() {
        // Step 1: "aa", "ab", "b" -> nodes a, b; step 2: aa, ab (both from node a).
        let x = [b"aab".to_vec(), b"ab\0".to_vec()];
        let mut p = Prefixes::default();
        p.reset(3, true);
        p.next(&x[0], 3);
        assert_eq!(p.count(), 2);
        let mut state = vec![1.0, 1.0, 2.0, 2.0, 9.0, 9.0];
        p.next(&x[1], 2);
        p.gather(&mut state, 2);
        assert_eq!(&state[..4], &[1.0, 1.0, 1.0, 1.0]);
    }
}
