//! The CPU forward pass: names -> log-probabilities (B, C) for the tutorial's Elman
//! cell (recurrence or collapsed tables), GRU and LSTM. Names are sorted by length and
//! cut into chunks run in parallel; each step computes only the rows still reading. To
//! share prefixes, rows are sorted by their letters instead, and rows whose names start
//! alike share their state until they part (`prefixes`).

use crate::alphabet::N_LETTERS;
use crate::error::{Error, Result};
use crate::gates;
use crate::gemm::{matmul_acc, matmul_from_table, padded_cols, Packed};
use crate::math::log_softmax_rows;
use crate::model_file::NGramSpec;
use crate::model_file::{parse, Cell, Spec};
use crate::ngrams;
use crate::normalize::TextRule;
use crate::prefixes::Prefixes;
use crate::{encode, threads};
use rayon::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;

/// Per-thread buffers reused across chunks and calls: fresh multi-megabyte
/// allocations per chunk cost more in page faults than the arithmetic.
#[derive(Default)]
struct Scratch {
    a: Vec<f32>,
    b: Vec<f32>,
    gi: Vec<f32>,
    gh: Vec<f32>,
    hs: Vec<Vec<f32>>,
    cs: Vec<Vec<f32>>,
    x: Letters,
    prefixes: Prefixes,
    // Gathered states when prefixes part (states move to their children's slots).
    spare_h: Vec<Vec<f32>>,
    spare_c: Vec<Vec<f32>>,
    // Logits of the rows that read their last letter at a step (Elman).
    out: Vec<f32>,
    // The letters whose table rows start those rows' sums.
    picks: Vec<u8>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// `v` resized to `len` and zeroed, keeping its allocation.
fn zeroed<T: Copy + Default>(v: &mut Vec<T>, len: usize) -> &mut [T] {
    v.clear();
    v.resize(len, T::default());
    &mut v[..]
}

/// `v` at least `len` long, its old contents kept: for buffers whose every element read
/// is written first, where clearing would be wasted work.
fn at_least<T: Copy + Default>(v: &mut Vec<T>, len: usize) -> &mut [T] {
    if v.len() < len {
        v.resize(len, T::default());
    }
    &mut v[..len]
}

/// Rows per parallel chunk: big enough to amortise the weights, small enough for L2.
const CHUNK: usize = 384;
/// Rows per rayon task in the per-row passes (lookups, log-softmax): finer tasks cost
/// more in splitting than the work they hold.
const ROWS_PER_TASK: usize = 1024;
/// Rows of a chunk whose gates are computed together, right after their products.
const GATE_ROWS: usize = 24;
/// Longest name the collapsed tables cover; longer ones run the recurrence.
pub const COLLAPSED_MAX_LEN: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Collapsed tables where the cell allows and the name is short enough.
    Auto,
    /// Always the step-by-step recurrence.
    Recurrence,
    /// Collapsed tables (linear cells only); names past the bound fall back.
    Collapsed,
}

impl std::str::FromStr for Method {
    type Err = Error;
    fn from_str(s: &str) -> Result<Method> {
        match s {
            "auto" => Ok(Method::Auto),
            "recurrence" => Ok(Method::Recurrence),
            "collapsed" => Ok(Method::Collapsed),
            _ => Err(Error::InvalidArgument(format!(
                "method must be 'auto', 'recurrence' or 'collapsed', got {s:?}"
            ))),
        }
    }
}

pub struct Model {
    pub spec: Spec,
    /// What bulk scoring and `predict` use; `log_probs` callers choose per call.
    pub share_prefixes: bool,
    classes: usize,
    net: Net,
    /// The hashed n-gram branch: its spec and (buckets, C) table, added to the logits.
    ngrams: Option<(NGramSpec, Vec<f32>)>,
}

enum Net {
    Elman(Elman),
    Gated(Gated),
}

/// The tutorial cell with its weights rearranged for the kernel.
struct Elman {
    xb: Vec<f32>,    // (57, Hp): i2h's letter columns plus its bias, zero-padded
    wh: Packed,      // (H, H): i2h's hidden block, transposed
    xo: Vec<f32>,    // (57, Cp): i2o's letter columns plus bias and logit adjustment
    oh: Packed,      // (H, C): i2o's hidden block, transposed
    table: Vec<f32>, // (COLLAPSED_MAX_LEN - 1, 57, C): (Oh Wh^d Wx)[:, letter]
    bias: Vec<f32>,  // (COLLAPSED_MAX_LEN + 1, C): Oh Σ_{d<T-1} Wh^d b
}

struct Layer {
    wih: Option<Packed>, // (H, G): layers above the first
    whh: Packed,         // (H, G)
    bih: Vec<f32>,       // (Gp) (for an LSTM, b_ih + b_hh), zero-padded
    bhh: Vec<f32>,       // (Gp)
}

/// GRU or LSTM: the first layer's input projection is a per-letter table.
struct Gated {
    lstm: bool,
    hidden: usize,
    gates: usize,
    forward: Direction,
    reverse: Option<Direction>, // bidirectional: the same layers reading names backwards
    out: Packed,                // (D * H, C): [forward final state, reverse final state]
    out_b: Vec<f32>,            // (Cp): bias plus logit adjustment, zero-padded
}

/// One direction's layers.
struct Direction {
    table0: Vec<f32>, // (57, Gp): W_ih0 · input(letter) + b_ih0 (+ b_hh0 for an LSTM)
    layers: Vec<Layer>,
}

/// Columns col0..col0+ncols of a row-major (rows, cols) matrix, transposed to a
/// row-major (ncols, rows) matrix.
fn transpose(m: &[f32], rows: usize, cols: usize, col0: usize, ncols: usize) -> Vec<f32> {
    let mut t = vec![0f32; ncols * rows];
    for r in 0..rows {
        for c in 0..ncols {
            t[c * rows + r] = m[r * cols + col0 + c];
        }
    }
    t
}

/// `weight[:, col0..col0+ncols]` of a (rows, cols) weight, packed as its transpose.
fn packed_t(m: &[f32], rows: usize, cols: usize, col0: usize, ncols: usize) -> Packed {
    Packed::new(&transpose(m, rows, cols, col0, ncols), ncols, rows)
}

impl Model {
    pub fn from_bytes(bytes: &[u8]) -> Result<Model> {
        let file = parse(bytes)?;
        let spec = file.spec;
        let t = file.tensors;
        let classes = spec.categories.len();
        let ngrams = spec.ngrams.map(|ng| (ng, t["ngram.weight"].clone()));
        let net = match spec.cell {
            Cell::Elman => Net::Elman(Elman::new(&spec, &t)),
            Cell::Gru | Cell::Lstm => Net::Gated(Gated::new(&spec, &t)),
        };
        Ok(Model {
            spec,
            share_prefixes: true,
            classes,
            net,
            ngrams,
        })
    }

    pub fn from_path(path: &str) -> Result<Model> {
        Model::from_bytes(&crate::model_file::read_path(path)?)
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    /// How this model reads names (the file's `text_rule`).
    pub fn text_rule(&self) -> TextRule {
        self.spec.text_rule
    }

    /// Letters this model reads from each name (0: nothing to score).
    pub fn lengths<S: AsRef<str> + Sync>(&self, names: &[S]) -> Vec<usize> {
        encode::lengths_with(names, self.spec.text_rule)
    }

    /// Log-probabilities, row-major (B, C); a name with no letters gets a row of NaN.
    /// With `share_prefixes`, rows whose names start alike share their recurrent state
    /// while their letters agree (same results to the bit, less work on real lists);
    /// without, every row runs its own recurrence.
    pub fn log_probs<S: AsRef<str> + Sync>(
        &self,
        names: &[S],
        method: Method,
        share_prefixes: bool,
    ) -> Result<Vec<f32>> {
        self.log_probs_with_lengths(names, &self.lengths(names), method, share_prefixes)
    }

    /// `log_probs` when the caller already has each name's normalised length; in the
    /// thread pool when the batch is large enough.
    pub fn log_probs_with_lengths<S: AsRef<str> + Sync>(
        &self,
        names: &[S],
        lengths: &[usize],
        method: Method,
        share_prefixes: bool,
    ) -> Result<Vec<f32>> {
        let batch = names.len();
        threads::run(batch, || {
            let par = batch >= threads::PARALLEL_THRESHOLD;
            self.forward(names, lengths, method, share_prefixes, par)
        })
    }

    /// The forward pass on this thread only, for callers that already split their work
    /// across the pool (bulk scoring scores each block of lines in one task).
    pub fn log_probs_sequential<S: AsRef<str> + Sync>(
        &self,
        names: &[S],
        lengths: &[usize],
        method: Method,
        share_prefixes: bool,
    ) -> Result<Vec<f32>> {
        self.forward(names, lengths, method, share_prefixes, false)
    }

    fn forward<S: AsRef<str> + Sync>(
        &self,
        names: &[S],
        lengths: &[usize],
        method: Method,
        share_prefixes: bool,
        par: bool,
    ) -> Result<Vec<f32>> {
        assert_eq!(names.len(), lengths.len());
        let c = self.classes;
        let mut out = vec![0f32; names.len() * c];
        let collapsed =
            match (&self.net, method) {
                (Net::Elman(_), Method::Auto | Method::Collapsed) => true,
                (_, Method::Collapsed) => return Err(Error::InvalidArgument(
                    "the collapsed method needs a linear cell (elman); use 'auto' or 'recurrence'"
                        .into(),
                )),
                _ => false,
            };
        let direct = |len: usize| len == 0 || (collapsed && len <= COLLAPSED_MAX_LEN);
        // Rows that need the recurrence, in input order, and their letters, read once
        // in that order: reading each name in sorted order instead would jump around
        // memory for every name.
        let recurrent: Vec<usize> = (0..names.len()).filter(|&i| !direct(lengths[i])).collect();
        let flat = Flat::new(names, &recurrent, lengths, self.spec.text_rule, par);
        // Positions in `recurrent`, longest first; to share prefixes, sorted by their
        // letters instead, which makes equal prefixes neighbours.
        let order: Vec<usize> = if share_prefixes {
            let key = |j: usize| (j, sort_key(flat.row(j)));
            let rows = 0..flat.rows();
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
        } else {
            flat.longest_first(par)
        };
        // Recurrent rows, in sorted chunks.
        let run_chunk = |rows: &[usize]| -> Vec<f32> {
            SCRATCH.with(|cell| {
                let scratch = &mut *cell.borrow_mut();
                let mut x = std::mem::take(&mut scratch.x);
                x.fill(&flat, rows);
                let lens: Vec<usize> = rows.iter().map(|&j| flat.len(j)).collect();
                let logits = match &self.net {
                    Net::Elman(e) => e.recurrence(&x, &lens, share_prefixes, scratch),
                    Net::Gated(g) => g.recurrence(&x, &lens, share_prefixes, scratch),
                };
                scratch.x = x;
                logits
            })
        };
        let results: Vec<Vec<f32>> = if par {
            // One task per chunk: chunks of long names cost more than chunks of short
            // ones, so threads take them one at a time rather than in halves.
            order
                .par_chunks(CHUNK)
                .with_max_len(1)
                .map(run_chunk)
                .collect()
        } else {
            order.chunks(CHUNK).map(run_chunk).collect()
        };
        let cp = match &self.net {
            Net::Elman(e) => e.oh.padded_cols,
            Net::Gated(g) => g.out.padded_cols,
        };
        // Where each input row's logits sit among the sorted results (nothing to hold
        // when every row is direct, as with short names through the collapsed tables).
        let mut slot = if order.is_empty() {
            Vec::new()
        } else {
            vec![usize::MAX; names.len()]
        };
        for (k, &j) in order.iter().enumerate() {
            slot[recurrent[j]] = k;
        }
        // Every row once: collapsed tables or the recurrence's logits, then the
        // log-softmax; NaN for a name with no letters.
        let finish = |(block, rows): (usize, &mut [f32])| {
            for (k, row) in rows.chunks_mut(c).enumerate() {
                let i = block * ROWS_PER_TASK + k;
                let len = lengths[i];
                if len == 0 {
                    continue;
                } else if direct(len) {
                    if let Net::Elman(e) = &self.net {
                        e.collapsed(names[i].as_ref(), self.spec.text_rule, len, c, row);
                    }
                } else {
                    let k = slot[i];
                    row.copy_from_slice(&results[k / CHUNK][(k % CHUNK) * cp..][..c]);
                }
                if let Some((spec, table)) = &self.ngrams {
                    ngrams::add_rows(
                        names[i].as_ref(),
                        len,
                        self.spec.text_rule,
                        *spec,
                        table,
                        row,
                    );
                }
            }
            log_softmax_rows(rows, c);
            for (k, row) in rows.chunks_mut(c).enumerate() {
                if lengths[block * ROWS_PER_TASK + k] == 0 {
                    row.fill(f32::NAN);
                }
            }
        };
        if par {
            out.par_chunks_mut(c * ROWS_PER_TASK)
                .enumerate()
                .for_each(finish);
        } else {
            out.chunks_mut(c * ROWS_PER_TASK)
                .enumerate()
                .for_each(finish);
        }
        Ok(out)
    }
}

/// Indices of the k best scores, best first, ties in index order; none for a NaN row.
pub fn top_k(row: &[f32], k: usize) -> Vec<usize> {
    let mut taken = Vec::with_capacity(k.min(row.len()));
    top_k_into(row, k, &mut taken);
    taken
}

/// `top_k` into `taken` (cleared first), for callers that reuse one buffer per row.
pub fn top_k_into(row: &[f32], k: usize, taken: &mut Vec<usize>) {
    taken.clear();
    if row.iter().any(|v| v.is_nan()) {
        return;
    }
    // k scans beat a sort for the few languages asked for (k is usually 1 to 3).
    let k = k.min(row.len());
    if k == 1 {
        let best = (1..row.len()).fold(0, |b, i| if row[i] > row[b] { i } else { b });
        taken.push(best);
        return;
    }
    for _ in 0..k {
        let mut best: Option<usize> = None;
        for (i, &v) in row.iter().enumerate() {
            if !taken.contains(&i) && best.is_none_or(|b| v > row[b]) {
                best = Some(i);
            }
        }
        taken.extend(best);
    }
}

/// The letter indices of the rows, one row after another (no padding, so a long name
/// costs its own length), with each row's start.
struct Flat {
    x: Vec<u8>,
    start: Vec<usize>, // rows + 1 entries
}

impl Flat {
    /// Rows per parallel task while filling.
    const BLOCK: usize = 4096;

    /// The letters of `names[rows[j]]` for each j; `lengths` are the names' normalised
    /// lengths.
    fn new<S: AsRef<str> + Sync>(
        names: &[S],
        rows: &[usize],
        lengths: &[usize],
        rule: TextRule,
        par: bool,
    ) -> Flat {
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
        Flat { x, start }
    }

    fn row(&self, j: usize) -> &[u8] {
        &self.x[self.start[j]..self.start[j + 1]]
    }

    fn len(&self, j: usize) -> usize {
        self.start[j + 1] - self.start[j]
    }

    fn rows(&self) -> usize {
        self.start.len() - 1
    }

    /// Rows sorted by length, longest first, ties in row order: a counting sort where
    /// names are of everyday lengths, a comparison sort past that.
    fn longest_first(&self, par: bool) -> Vec<usize> {
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
}

/// The letter indices of a chunk's rows, one row after another: no padding, so a long
/// name costs its own length, not its length times the chunk's rows.
#[derive(Default)]
struct Letters {
    x: Vec<u8>,
    start: Vec<usize>,
}

impl Letters {
    /// Rows `rows` of `flat`, in that order.
    fn fill(&mut self, flat: &Flat, rows: &[usize]) {
        self.x.clear();
        self.start.clear();
        for &j in rows {
            self.start.push(self.x.len());
            self.x.extend_from_slice(flat.row(j));
        }
    }

    /// Row r's letter s (the row has at least s + 1 letters).
    #[inline]
    fn at(&self, r: usize, s: usize) -> u8 {
        self.x[self.start[r] + s]
    }

    /// The same rows, each read last letter first.
    fn reversed(&self) -> Letters {
        let mut x = self.x.clone();
        let ends = self.start.iter().skip(1).copied().chain([x.len()]);
        for (&from, to) in self.start.iter().zip(ends) {
            x[from..to].reverse();
        }
        Letters {
            x,
            start: self.start.clone(),
        }
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

impl Elman {
    fn new(spec: &Spec, t: &HashMap<String, Vec<f32>>) -> Elman {
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
    fn collapsed(&self, name: &str, rule: TextRule, len: usize, c: usize, row: &mut [f32]) {
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
    fn recurrence(
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
        // h_0 = 0, so h_1 is a lookup; `a` holds each node's state, a node being a
        // distinct prefix among the rows still reading.
        prefixes.reset(n, share);
        prefixes.next(|r| x.at(r, 0));
        for (node, &l) in prefixes.letters().iter().enumerate() {
            a[node * hp..(node + 1) * hp].copy_from_slice(row(&self.xb, hp, l));
        }
        for r in 0..n {
            if lens[r] == 1 {
                logits[r * cp..(r + 1) * cp].copy_from_slice(row(&self.xo, cp, x.at(r, 0)));
            }
        }
        prefixes.keep_longer(lens, 1);
        let mut s = 1; // `a` holds h_s for the nodes of the rows still reading
        while !prefixes.active().is_empty() {
            // Rows of length s + 1 read their last letter: output from h_s. Their
            // nodes are usually consecutive (always without sharing): then the product
            // reads the states where they are.
            picks.clear();
            let (mut first, mut consecutive) = (usize::MAX, true);
            for &r in prefixes.active() {
                let r = r as usize;
                if lens[r] == s + 1 {
                    let node = prefixes.of_row(r);
                    if picks.is_empty() {
                        first = node;
                    }
                    consecutive &= node == first + picks.len();
                    picks.push(x.at(r, s));
                }
            }
            let k = picks.len();
            let states: &[f32] = if consecutive {
                &a[first.min(n) * hp..]
            } else {
                let mut i = 0;
                for &r in prefixes.active() {
                    let r = r as usize;
                    if lens[r] == s + 1 {
                        let node = prefixes.of_row(r);
                        done[i * hp..(i + 1) * hp].copy_from_slice(&a[node * hp..(node + 1) * hp]);
                        i += 1;
                    }
                }
                done
            };
            matmul_from_table(states, hp, &self.oh, &self.xo, picks, done_logits, cp);
            let mut i = 0;
            for &r in prefixes.active() {
                let r = r as usize;
                if lens[r] == s + 1 {
                    logits[r * cp..(r + 1) * cp].copy_from_slice(&done_logits[i * cp..][..cp]);
                    i += 1;
                }
            }
            debug_assert_eq!(i, k);
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
}

/// The rows of `m`, `width` floats each, zero-padded to `ld`.
fn padded(m: &[f32], width: usize, ld: usize) -> Vec<f32> {
    let mut out = vec![0f32; m.len() / width * ld];
    for (to, from) in out.chunks_mut(ld).zip(m.chunks(width)) {
        to[..width].copy_from_slice(from);
    }
    out
}

/// Row `l` of a table of rows `width` wide.
fn row(table: &[f32], width: usize, l: u8) -> &[f32] {
    let l = l as usize;
    &table[l * width..(l + 1) * width]
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

impl Gated {
    fn new(spec: &Spec, t: &HashMap<String, Vec<f32>>) -> Gated {
        let lstm = spec.cell == Cell::Lstm;
        let h = spec.hidden_size;
        let c = spec.categories.len();
        let g = if lstm { 4 * h } else { 3 * h };
        // Tables and biases get rows as wide as the kernel's output rows: its sums
        // start from them.
        let gp = padded_cols(g);
        let direction = |suffix: &str| Direction {
            table0: padded(&input_table(spec, t, suffix, g), g, gp),
            layers: (0..spec.num_layers)
                .map(|k| {
                    let name = |w: &str| format!("rnn.{w}_l{k}{suffix}");
                    let mut bih = t[&name("bias_ih")].clone();
                    let bhh = t[&name("bias_hh")].clone();
                    if lstm {
                        bih.iter_mut().zip(&bhh).for_each(|(a, b)| *a += b);
                    }
                    Layer {
                        wih: (k > 0).then(|| packed_t(&t[&name("weight_ih")], g, h, 0, h)),
                        whh: packed_t(&t[&name("weight_hh")], g, h, 0, h),
                        bih: padded(&bih, g, gp),
                        bhh: padded(&bhh, g, gp),
                    }
                })
                .collect(),
        };
        let directions = if spec.bidirectional { 2 } else { 1 };
        let adj = &t["logit_adjustment"];
        let out = packed_t(&t["out.weight"], c, directions * h, 0, directions * h);
        let out_b: Vec<f32> = t["out.bias"].iter().zip(adj).map(|(a, b)| a + b).collect();
        Gated {
            lstm,
            hidden: h,
            gates: g,
            forward: direction(""),
            reverse: spec.bidirectional.then(|| direction("_reverse")),
            out_b: padded(&out_b, c, out.padded_cols),
            out,
        }
    }

    /// Logits (rows, out.padded_cols) for rows of length >= 1.
    fn recurrence(
        &self,
        x: &Letters,
        lens: &[usize],
        share: bool,
        scratch: &mut Scratch,
    ) -> Vec<f32> {
        let (n, h) = (lens.len(), self.hidden);
        let cp = self.out.padded_cols;
        let width = if self.reverse.is_some() { 2 * h } else { h };
        // Each row's final top-layer state, per direction, side by side.
        let mut finals = vec![0f32; n * width];
        self.run(
            &self.forward,
            x,
            lens,
            &mut finals,
            0,
            width,
            share,
            scratch,
        );
        if let Some(reverse) = &self.reverse {
            let backwards = x.reversed();
            self.run(
                reverse,
                &backwards,
                lens,
                &mut finals,
                h,
                width,
                share,
                scratch,
            );
        }
        let mut logits = vec![0f32; n * cp];
        let zeros = vec![0u8; n]; // every row starts from the bias
        matmul_from_table(
            &finals,
            width,
            &self.out,
            &self.out_b,
            &zeros,
            &mut logits,
            cp,
        );
        logits
    }

    /// Runs one direction over the rows' letters `x`; row r's final top-layer state goes
    /// to finals[r * ldf + col..][..h].
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        dir: &Direction,
        x: &Letters,
        lens: &[usize],
        finals: &mut [f32],
        col: usize,
        ldf: usize,
        share: bool,
        scratch: &mut Scratch,
    ) {
        let (n, h, g) = (lens.len(), self.hidden, self.gates);
        let gp = dir.layers[0].whh.padded_cols;
        let layers = dir.layers.len();
        let Scratch {
            gi,
            gh,
            hs,
            cs,
            spare_h,
            spare_c,
            prefixes,
            ..
        } = scratch;
        prefixes.reset(n, share);
        for v in [&mut *hs, &mut *cs, &mut *spare_h, &mut *spare_c] {
            v.resize_with(layers, Vec::new);
        }
        for k in 0..layers {
            // h_0 = c_0 = 0; the spares only ever hold gathered rows.
            zeroed(&mut hs[k], n * h);
            at_least(&mut spare_h[k], n * h);
            if self.lstm {
                zeroed(&mut cs[k], n * h);
                at_least(&mut spare_c[k], n * h);
            }
        }
        // Gate pre-activations for one block of rows only: the block's products are
        // still in L1/L2 when its gates read them (whole-chunk buffers were not).
        let gi = zeroed(gi, GATE_ROWS * gp);
        let gh = zeroed(gh, GATE_ROWS * gp);
        let width = lens.iter().copied().max().unwrap_or(0);
        for s in 0..width {
            // States are per node: a distinct prefix among the rows still reading.
            prefixes.keep_longer(lens, s);
            prefixes.next(|r| x.at(r, s));
            let nodes = prefixes.count();
            for (k, layer) in dir.layers.iter().enumerate() {
                // Where prefixes parted, states move to their children's slots.
                if s > 0 && !prefixes.in_place() {
                    prefixes.gather(&hs[k], &mut spare_h[k], h);
                    std::mem::swap(&mut hs[k], &mut spare_h[k]);
                    if self.lstm {
                        prefixes.gather(&cs[k], &mut spare_c[k], h);
                        std::mem::swap(&mut cs[k], &mut spare_c[k]);
                    }
                }
                let (below, rest) = hs.split_at_mut(k);
                let state = &mut rest[0];
                for r0 in (0..nodes).step_by(GATE_ROWS) {
                    let rows = GATE_ROWS.min(nodes - r0);
                    let letters = &prefixes.letters()[r0..r0 + rows];
                    let zeros = &[0u8; GATE_ROWS][..rows]; // rows that start from a bias
                                                           // Input projection: a lookup for the first layer, a product above;
                                                           // an LSTM adds the recurrent product to it (below).
                    if let Some(wih) = &layer.wih {
                        matmul_from_table(
                            &below[k - 1][r0 * h..],
                            h,
                            wih,
                            &layer.bih,
                            zeros,
                            gi,
                            gp,
                        );
                    } else if self.lstm && s > 0 {
                        let hidden = &state[r0 * h..];
                        matmul_from_table(hidden, h, &layer.whh, &dir.table0, letters, gi, gp);
                    } else if self.lstm {
                        for (r, &l) in letters.iter().enumerate() {
                            gi[r * gp..(r + 1) * gp].copy_from_slice(row(&dir.table0, gp, l));
                        }
                    }
                    let input = |r: usize| -> &[f32] {
                        if layer.wih.is_some() || self.lstm {
                            &gi[r * gp..r * gp + g]
                        } else {
                            &row(&dir.table0, gp, letters[r])[..g]
                        }
                    };
                    // h_0 = 0: at the first step the recurrent product is zero, so skip it.
                    if self.lstm {
                        if s > 0 && layer.wih.is_some() {
                            matmul_acc(rows, &state[r0 * h..], h, &layer.whh, gi, gp);
                        }
                        let cell = &mut cs[k];
                        for r in 0..rows {
                            let at = (r0 + r) * h;
                            gates::lstm(
                                &gi[r * gp..r * gp + g],
                                &mut cell[at..at + h],
                                &mut state[at..at + h],
                            );
                        }
                    } else {
                        if s > 0 {
                            let hidden = &state[r0 * h..];
                            matmul_from_table(hidden, h, &layer.whh, &layer.bhh, zeros, gh, gp);
                        } else {
                            for r in 0..rows {
                                gh[r * gp..(r + 1) * gp].copy_from_slice(&layer.bhh);
                            }
                        }
                        for r in 0..rows {
                            let at = (r0 + r) * h;
                            gates::gru(
                                input(r),
                                &mut gh[r * gp..r * gp + g],
                                &mut state[at..at + h],
                            );
                        }
                    }
                }
            }
            // Rows whose last letter was s are done: keep their top-layer state.
            let top = &hs[layers - 1];
            for &r in prefixes.active() {
                let r = r as usize;
                if lens[r] == s + 1 {
                    let node = prefixes.of_row(r);
                    finals[r * ldf + col..r * ldf + col + h]
                        .copy_from_slice(&top[node * h..(node + 1) * h]);
                }
            }
        }
    }
}

/// The first layer's input projection per letter: W_ih0 · input(letter) + b_ih0
/// (+ b_hh0 for an LSTM), computed in f64, for the direction with this tensor suffix.
fn input_table(spec: &Spec, t: &HashMap<String, Vec<f32>>, suffix: &str, g: usize) -> Vec<f32> {
    let lstm = spec.cell == Cell::Lstm;
    let input = if spec.embedding_dim > 0 {
        spec.embedding_dim
    } else {
        N_LETTERS
    };
    let w0 = &t[&format!("rnn.weight_ih_l0{suffix}")];
    let (bih, bhh) = (
        &t[&format!("rnn.bias_ih_l0{suffix}")],
        &t[&format!("rnn.bias_hh_l0{suffix}")],
    );
    let mut table = vec![0f32; N_LETTERS * g];
    for l in 0..N_LETTERS {
        for q in 0..g {
            let v: f64 = if spec.embedding_dim > 0 {
                let emb = &t["embedding.weight"][l * input..(l + 1) * input];
                (0..input)
                    .map(|e| w0[q * input + e] as f64 * emb[e] as f64)
                    .sum()
            } else {
                w0[q * input + l] as f64
            };
            let mut bias = bih[q] as f64;
            if lstm {
                bias += bhh[q] as f64;
            }
            table[l * g + q] = (v + bias) as f32;
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::{top_k, Flat, TextRule};

    #[test]
    fn rows_sort_longest_first_with_ties_in_row_order() {
        let names = ["Ab", "Abcd", "Xy", "", "Q", "Wxyz", "Mn"];
        let lengths: Vec<usize> = names.iter().map(|n| n.len()).collect();
        let rows: Vec<usize> = (0..names.len()).collect();
        let want = vec![1, 5, 0, 2, 6, 4, 3];
        for par in [false, true] {
            let flat = Flat::new(&names, &rows, &lengths, TextRule::Exact, par);
            assert_eq!(flat.row(5), &[48u8, 23, 24, 25][..]);
            assert_eq!(flat.longest_first(par), want);
        }
        // Past the counting sort's bound: the comparison sort, same order.
        let long = "a".repeat(1 << 16);
        let names = ["Ab", long.as_str(), "Xy", "Q"];
        let lengths: Vec<usize> = names.iter().map(|n| n.len()).collect();
        let flat = Flat::new(&names, &[0, 1, 2, 3], &lengths, TextRule::Exact, false);
        assert_eq!(flat.longest_first(false), vec![1, 0, 2, 3]);
    }

    #[test]
    fn top_k_is_best_first_with_ties_in_index_order() {
        let row = [0.1, 0.5, 0.3, 0.5, -1.0];
        assert_eq!(top_k(&row, 3), vec![1, 3, 2]);
        assert_eq!(top_k(&row, 1), vec![1]);
        assert_eq!(top_k(&row, 9), vec![1, 3, 2, 0, 4]);
        assert!(top_k(&[0.0, f32::NAN], 1).is_empty());
    }
}
