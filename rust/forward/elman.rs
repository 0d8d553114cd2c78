//! The tutorial's Elman cell on the CPU: a step-by-step recurrence over the kernel, and
//! for short names collapsed tables. The cell is linear (no activation), so with M_d =
//! Oh Wh^d its logits are a sum of per-letter table rows: xo[x_{T-1}] + bias[T] +
//! Σ_{k<T-1} table[T-2-k][x_k], with no product at all.

use super::letters::Letters;
use super::scratch::{at_least, Scratch};
use super::{packed_t, row, COLLAPSED_MAX_LEN};
use crate::alphabet::N_LETTERS;
use crate::gemm::{matmul_from_table, Packed};
use crate::model_file::Spec;
use crate::normalize::TextRule;
use crate::prefixes::Prefixes;
use std::collections::HashMap;

/// The tutorial cell with its weights rearranged for the kernel.
#[derive(Clone)]
pub(super) struct Elman {
    xb: Vec<f32>,          // (57, Hp): i2h's letter columns plus its bias, zero-padded
    wh: Packed,            // (H, H): i2h's hidden block, transposed
    xo: Vec<f32>,          // (57, Cp): i2o's letter columns plus bias and logit adjustment
    pub(super) oh: Packed, // (H, C): i2o's hidden block, transposed
    table: Vec<f32>,       // (COLLAPSED_MAX_LEN - 1, 57, C): (Oh Wh^d Wx)[:, letter]
    bias: Vec<f32>,        // (COLLAPSED_MAX_LEN + 1, C): Oh Σ_{d<T-1} Wh^d b
}

impl Elman {
    pub(super) fn new(spec: &Spec, t: &HashMap<String, Vec<f32>>) -> Elman {
        let h = spec.hidden_size;
        let c = spec.categories.len();
        let width = N_LETTERS + h;
        let (i2h, i2h_b) = (&t["i2h.weight"], &t["i2h.bias"]);
        let (i2o, i2o_b, adj) = (&t["i2o.weight"], &t["i2o.bias"], &t["logit_adjustment"]);
        let (wh, oh) = (
            packed_t(i2h, h, width, N_LETTERS, h),
            packed_t(i2o, c, width, N_LETTERS, h),
        );
        // Rows as wide as the kernel's output rows: its sums start from them.
        let (hp, cp) = (wh.padded_cols, oh.padded_cols);
        let letters = |w: &[f32], n: usize, ld: usize, bias: &dyn Fn(usize) -> f32| {
            let mut t = vec![0f32; N_LETTERS * ld];
            for (l, row) in t.chunks_mut(ld).enumerate() {
                for (j, v) in row[..n].iter_mut().enumerate() {
                    *v = w[j * width + l] + bias(j);
                }
            }
            t
        };
        let xb = letters(i2h, h, hp, &|j| i2h_b[j]);
        let xo = letters(i2o, c, cp, &|k| i2o_b[k] + adj[k]);
        let (table, bias) = collapsed_tables(i2h, i2h_b, i2o, h, c);
        Elman {
            xb,
            wh,
            xo,
            oh,
            table,
            bias,
        }
    }

    /// logits = xo[x_{T-1}] + bias[T] + Σ_{k<T-1} table[T-2-k][x_k]
    pub(super) fn collapsed(
        &self,
        name: &str,
        rule: TextRule,
        len: usize,
        c: usize,
        row: &mut [f32],
    ) {
        row.copy_from_slice(&self.bias[len * c..(len + 1) * c]);
        let mut k = 0;
        rule.for_each(name, |letter| {
            let l = letter as usize;
            let at = if k + 1 == len {
                l * self.oh.padded_cols
            } else {
                ((len - 2 - k) * N_LETTERS + l) * c
            };
            let src = if k + 1 == len {
                &self.xo[at..at + c]
            } else {
                &self.table[at..at + c]
            };
            row.iter_mut().zip(src).for_each(|(v, s)| *v += s);
            k += 1;
        });
    }

    /// Logits (rows, oh.padded_cols) for rows of length >= 1: sorted longest first,
    /// or (with `share`) by their letters.
    pub(super) fn recurrence(
        &self,
        x: &Letters,
        lens: &[usize],
        share: bool,
        scratch: &mut Scratch,
    ) -> Vec<f32> {
        let n = lens.len();
        let (hp, cp) = (self.wh.padded_cols, self.oh.padded_cols);
        let mut logits = vec![0f32; n * cp];
        let Scratch {
            a,
            b,
            gi,
            gh,
            out,
            picks,
            prefixes,
            ..
        } = scratch;
        // Every element read below is written first (products read a row's first h
        // columns only; the kernel writes whole rows).
        let (mut a, mut b) = (at_least(a, n * hp), at_least(b, n * hp));
        let parents = at_least(gh, n * hp);
        // States of the rows that read their last letter, side by side for the product.
        let done = at_least(gi, n * hp);
        let done_logits = at_least(out, n * cp);
        prefixes.reset(n, share);
        self.first_letter(x, lens, prefixes, a, &mut logits);
        let mut s = 1; // `a` holds h_s for the nodes of the rows still reading
        while !prefixes.active().is_empty() {
            // Rows of length s + 1 read their last letter: output from h_s.
            let ending = Ending { lens, step: s };
            self.output(
                x,
                &ending,
                a,
                prefixes,
                picks,
                done,
                done_logits,
                &mut logits,
            );
            prefixes.keep_longer(lens, s + 1);
            if prefixes.active().is_empty() {
                break;
            }
            prefixes.next(|r| x.at(r, s));
            let from: &[f32] = if prefixes.in_place() {
                a
            } else {
                prefixes.gather(a, parents, hp);
                parents
            };
            matmul_from_table(from, hp, &self.wh, &self.xb, prefixes.letters(), b, hp);
            std::mem::swap(&mut a, &mut b);
            s += 1;
        }
        logits
    }

    /// Step 1: h_0 = 0, so h_1 is a lookup into `a` (each node's state, a node being a
    /// distinct prefix among the rows still reading), and the logits of one-letter rows
    /// are one too.
    fn first_letter(
        &self,
        x: &Letters,
        lens: &[usize],
        prefixes: &mut Prefixes,
        a: &mut [f32],
        logits: &mut [f32],
    ) {
        let (hp, cp) = (self.wh.padded_cols, self.oh.padded_cols);
        prefixes.next(|r| x.at(r, 0));
        for (node, &l) in prefixes.letters().iter().enumerate() {
            a[node * hp..(node + 1) * hp].copy_from_slice(row(&self.xb, hp, l));
        }
        for r in 0..lens.len() {
            if lens[r] == 1 {
                logits[r * cp..(r + 1) * cp].copy_from_slice(row(&self.xo, cp, x.at(r, 0)));
            }
        }
        prefixes.keep_longer(lens, 1);
    }

    /// The logits of the rows that read their last letter at this step (length
    /// step + 1), from their nodes' states in `a`: out = xo[letter] + Oh h. Their nodes
    /// are usually consecutive (always without sharing): then the product reads the
    /// states where they are; else they are gathered into `done` first.
    #[allow(clippy::too_many_arguments)] // the step's buffers, borrowed apart from Scratch
    fn output(
        &self,
        x: &Letters,
        ending: &Ending<'_>,
        a: &[f32],
        prefixes: &Prefixes,
        picks: &mut Vec<u8>,
        done: &mut [f32],
        done_logits: &mut [f32],
        logits: &mut [f32],
    ) {
        let (hp, cp) = (self.wh.padded_cols, self.oh.padded_cols);
        let s = ending.step;
        picks.clear();
        let (mut first, mut consecutive) = (usize::MAX, true);
        for r in ending.rows(prefixes) {
            let node = prefixes.of_row(r);
            if picks.is_empty() {
                first = node;
            }
            consecutive &= node == first + picks.len();
            picks.push(x.at(r, s));
        }
        let states: &[f32] = if consecutive {
            &a[first.min(a.len() / hp.max(1)) * hp..]
        } else {
            for (i, r) in ending.rows(prefixes).enumerate() {
                let node = prefixes.of_row(r);
                done[i * hp..(i + 1) * hp].copy_from_slice(&a[node * hp..(node + 1) * hp]);
            }
            done
        };
        matmul_from_table(states, hp, &self.oh, &self.xo, picks, done_logits, cp);
        for (i, r) in ending.rows(prefixes).enumerate() {
            logits[r * cp..(r + 1) * cp].copy_from_slice(&done_logits[i * cp..][..cp]);
        }
    }
}

/// The rows still reading whose last letter is at `step`.
struct Ending<'a> {
    lens: &'a [usize],
    step: usize,
}

impl Ending<'_> {
    fn rows<'p>(&'p self, prefixes: &'p Prefixes) -> impl Iterator<Item = usize> + 'p {
        prefixes
            .active()
            .iter()
            .map(|&r| r as usize)
            .filter(move |&r| self.lens[r] == self.step + 1)
    }
}

/// Collapsed tables of the linear cell, computed in f64. With M_d = Oh Wh^d:
/// table[d][l] = M_d Wx[:, l] and bias[T] = Σ_{d < T-1} M_d b.
fn collapsed_tables(
    i2h: &[f32],
    i2h_b: &[f32],
    i2o: &[f32],
    h: usize,
    c: usize,
) -> (Vec<f32>, Vec<f32>) {
    let width = N_LETTERS + h;
    let f64s = |row: &[f32]| row.iter().map(|&v| v as f64).collect::<Vec<f64>>();
    // Contiguous f64 operands: Wh by rows, Wx by letter, so the inner loops run on
    // unit strides (building the tables is part of loading a model).
    let wh: Vec<Vec<f64>> = (0..h)
        .map(|j| f64s(&i2h[j * width + N_LETTERS..(j + 1) * width]))
        .collect();
    let wx_t: Vec<Vec<f64>> = (0..N_LETTERS)
        .map(|l| (0..h).map(|j| i2h[j * width + l] as f64).collect())
        .collect();
    let b = f64s(i2h_b);
    let mut m: Vec<Vec<f64>> = (0..c)
        .map(|k| f64s(&i2o[k * width + N_LETTERS..(k + 1) * width]))
        .collect();
    let mut table = vec![0f32; (COLLAPSED_MAX_LEN - 1) * N_LETTERS * c];
    let mut bias = vec![0f32; (COLLAPSED_MAX_LEN + 1) * c];
    let mut running = vec![0f64; c];
    let mut next = vec![vec![0f64; h]; c];
    for d in 0..COLLAPSED_MAX_LEN - 1 {
        for (l, wx) in wx_t.iter().enumerate() {
            for (k, mk) in m.iter().enumerate() {
                table[(d * N_LETTERS + l) * c + k] = dot(mk, wx) as f32;
            }
        }
        // bias[T] for T = d + 2 sums M_0 .. M_d times b.
        for (k, mk) in m.iter().enumerate() {
            running[k] += dot(mk, &b);
            bias[(d + 2) * c + k] = running[k] as f32;
        }
        for (mk, nk) in m.iter().zip(next.iter_mut()) {
            nk.fill(0.0);
            for (&mj, wj) in mk.iter().zip(&wh) {
                nk.iter_mut().zip(wj).for_each(|(n, w)| *n += mj * w);
            }
        }
        std::mem::swap(&mut m, &mut next);
    }
    (table, bias)
}

/// An f64 dot product in four running sums (vectorisable, unlike one running sum).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0f64; 4];
    let (a4, b4) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = a4
        .remainder()
        .iter()
        .zip(b4.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a4.zip(b4) {
        for i in 0..4 {
            acc[i] += x[i] * y[i];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}
