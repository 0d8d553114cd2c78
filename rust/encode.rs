//! Batched encoding of names into caller-shaped buffers: alphabet indices
//! (B, T_max) and one-hot (T_max, B, 57), padded with zeros.

use crate::alphabet::N_LETTERS;
use crate::normalize::{normalized_len, TextRule};
use crate::threads;

/// Normalised length of each name.
pub fn lengths<S: AsRef<str> + Sync>(names: &[S]) -> Vec<usize> {
    lengths_with(names, TextRule::Exact)
}

/// Letters a model with this rule reads from each name.
pub fn lengths_with<S: AsRef<str> + Sync>(names: &[S], rule: TextRule) -> Vec<usize> {
    let len = |n: &S| match rule {
        TextRule::Exact => normalized_len(n.as_ref()),
        _ => rule.len(n.as_ref()),
    };
    threads::map(names, len)
}

/// Indices of `names` as `rule` reads them into a zeroed row-major (B, width) buffer.
pub fn fill_indices<S: AsRef<str> + Sync>(
    names: &[S],
    rule: TextRule,
    width: usize,
    out: &mut [i64],
) {
    assert_eq!(out.len(), names.len() * width);
    if width == 0 {
        return;
    }
    threads::for_each_chunk(out, width, names.len(), |(b, row)| {
        let mut t = 0;
        rule.for_each(names[b].as_ref(), |i| {
            row[t] = i as i64;
            t += 1;
        });
    });
}

/// One-hot (width, B, 57), time first, into a zeroed buffer, from the
/// (B, width) indices and the lengths that `fill_indices` and `lengths` gave.
pub fn fill_one_hot(indices: &[i64], lengths: &[usize], width: usize, out: &mut [f32]) {
    let batch = lengths.len();
    let plane = batch * N_LETTERS;
    assert_eq!(indices.len(), batch * width);
    assert_eq!(out.len(), width * plane);
    if plane == 0 {
        return;
    }
    let fill = |(t, plane): (usize, &mut [f32])| {
        for (b, &len) in lengths.iter().enumerate() {
            if t < len {
                plane[b * N_LETTERS + indices[b * width + t] as usize] = 1.0;
            }
        }
    };
    threads::for_each_chunk(out, plane, batch * width, fill);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_padded_with_zeros() {
        let names = ["ab", "", "Bé"];
        let lens = lengths(&names);
        assert_eq!(lens, vec![2, 0, 2]);
        let mut out = vec![0i64; 6];
        fill_indices(&names, TextRule::Exact, 2, &mut out);
        assert_eq!(out, vec![0, 1, 0, 0, 27, 4]);
    }

    #[test]
    fn one_hot_is_time_first() {
        let names = ["ab", "c"];
        let mut indices = vec![0i64; 4];
        fill_indices(&names, TextRule::Exact, 2, &mut indices);
        let mut out = vec![0f32; 2 * 2 * N_LETTERS];
        fill_one_hot(&indices, &lengths(&names), 2, &mut out);
        assert_eq!(out[0], 1.0); // t=0, b=0, 'a'
        assert_eq!(out[N_LETTERS + 2], 1.0); // t=0, b=1, 'c'
        assert_eq!(out[2 * N_LETTERS + 1], 1.0); // t=1, b=0, 'b'
        assert_eq!(out.iter().sum::<f32>(), 3.0);
    }
}
