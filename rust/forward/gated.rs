//! GRU and LSTM cells on the CPU, one or more layers, optionally bidirectional. The
//! first layer's input projection is a per-letter table (one-hot or embedding input
//! alike), so each step is one product per layer plus the gates.

use super::letters::Letters;
use super::scratch::{at_least, zeroed, Scratch, CHUNK, GATE_ROWS};
use super::start_states::{self, StartStates, Table, DEPTH};
use super::{packed_t, padded, row};
use crate::alphabet::N_LETTERS;
use crate::gates;
use crate::gemm::{matmul_acc, matmul_from_table, padded_cols, Packed, Precision};
use crate::model_file::{Cell, Spec};
use crate::normalize::TextRule;
use crate::prefixes::Prefixes;
use rayon::prelude::*;
use std::collections::HashMap;
use std::ops::Range;

/// The fewest hidden units a part may have (`parts`): smaller ones would run narrow
/// products for little gain.
const MIN_PART: usize = 32;

#[derive(Clone)]
struct Layer {
    wih: Option<Packed>, // (H, G): layers above the first
    whh: Packed,         // (H, G)
    bih: Vec<f32>,       // (Gp) (for an LSTM, b_ih + b_hh), zero-padded
    bhh: Vec<f32>,       // (Gp)
}

/// GRU or LSTM: the first layer's input projection is a per-letter table.
#[derive(Clone)]
pub(super) struct Gated {
    lstm: bool,
    hidden: usize,
    forward: Vec<Direction>, // its parts (`parts`), each run on its own
    reverse: Vec<Direction>, // bidirectional: the same layers reading names backwards
    pub(super) out: Packed,  // (D * H, C): [forward final state, reverse final state]
    out_b: Vec<f32>,         // (Cp): bias plus logit adjustment, zero-padded
    /// The states after each prefix of up to three letters (a one-layer GRU reading
    /// names case-blind only: `start_states`).
    start: Option<StartStates>,
}

/// One direction's layers, or the part of them that computes the hidden units
/// `units`, which read no other unit (`parts`).
#[derive(Clone)]
struct Direction {
    units: Range<usize>,
    gates: usize,     // G: gates per unit times the units
    table0: Vec<f32>, // (57, Gp): W_ih0 · input(letter) + b_ih0 (+ b_hh0 for an LSTM)
    layers: Vec<Layer>,
}

/// Where one direction's final top-layer states go: row r's to
/// finals[r * stride + col..][..h].
struct Finals<'a> {
    data: &'a mut [f32],
    col: usize,
    stride: usize,
}

/// A block of up to GATE_ROWS nodes at one step of one layer.
struct Block<'a> {
    step: usize,
    first: usize,
    letters: &'a [u8],
}

impl Gated {
    /// Runs the recurrent products (h · W_hh, each step's bulk of the work) in this
    /// precision; the input tables, gates and output stay float32.
    pub(super) fn set_precision(&mut self, precision: Precision) {
        for dir in self.forward.iter_mut().chain(&mut self.reverse) {
            for layer in &mut dir.layers {
                let whh = std::mem::replace(&mut layer.whh, Packed::new(&[], 0, 0));
                layer.whh = whh.with_precision(precision);
            }
        }
        // Its states came from the products of the other precision.
        if let Some(start) = &mut self.start {
            *start = StartStates::default();
        }
    }

    /// The hidden units of each part the forward direction runs apart (`parts`).
    #[cfg(test)]
    pub(super) fn parts(&self) -> Vec<Range<usize>> {
        self.forward.iter().map(|d| d.units.clone()).collect()
    }

    /// The number of units of every part, both directions: the depths of the
    /// recurrent products.
    pub(super) fn part_sizes(&self) -> Vec<usize> {
        self.forward
            .iter()
            .chain(&self.reverse)
            .map(|d| d.units.len())
            .collect()
    }

    pub(super) fn precision(&self) -> Precision {
        self.forward[0].layers[0].whh.precision()
    }

    pub(super) fn new(spec: &Spec, t: &HashMap<String, Vec<f32>>) -> Gated {
        let lstm = spec.cell == Cell::Lstm;
        let h = spec.hidden_size;
        let c = spec.categories.len();
        let per_unit = if lstm { 4 } else { 3 };
        let directions = if spec.bidirectional { 2 } else { 1 };
        let split = |suffix: &str| -> Vec<Direction> {
            let units = parts(spec, t, suffix, per_unit);
            if units.len() == 1 {
                return vec![direction(spec, t, suffix, 0..h)];
            }
            units
                .into_iter()
                .map(|u| {
                    let (part, t) = part_of(spec, t, suffix, u.clone(), per_unit);
                    direction(&part, &t, suffix, u)
                })
                .collect()
        };
        let adj = &t["logit_adjustment"];
        let out = packed_t(&t["out.weight"], c, directions * h, 0, directions * h);
        let out_b: Vec<f32> = t["out.bias"].iter().zip(adj).map(|(a, b)| a + b).collect();
        Gated {
            lstm,
            hidden: h,
            forward: split(""),
            reverse: if spec.bidirectional {
                split("_reverse")
            } else {
                Vec::new()
            },
            out_b: padded(&out_b, c, out.padded_cols),
            out,
            start: (!lstm
                && spec.num_layers == 1
                && matches!(spec.text_rule, TextRule::TrimLower | TextRule::Romanize)
                && start_states::fits(directions * h))
            .then(StartStates::default),
        }
    }

    /// Logits (rows, out.padded_cols) for rows of length >= 1.
    pub(super) fn recurrence(
        &self,
        x: &Letters,
        lens: &[usize],
        share: bool,
        scratch: &mut Scratch,
    ) -> Vec<f32> {
        let (n, h) = (lens.len(), self.hidden);
        let cp = self.out.padded_cols;
        let width = if self.reverse.is_empty() { h } else { 2 * h };
        // Each row's final top-layer state, per direction, side by side.
        let mut finals = vec![0f32; n * width];
        let mut to = Finals {
            data: &mut finals,
            col: 0,
            stride: width,
        };
        // The tables share prefixes across chunks: not for the plain recurrence.
        let tables = if share { self.start_tables(x, n) } else { None };
        let table = |i: usize| tables.map(|t| &t[i]);
        // A part's weights alone (a member of a merged ensemble: 24 KB in int16) stay
        // in L1 across all its steps, where the whole matrix streamed from L2 each step.
        for (i, dir) in self.forward.iter().enumerate() {
            to.col = dir.units.start;
            self.run(dir, table(i), x, lens, &mut to, share, scratch);
        }
        if !self.reverse.is_empty() {
            let backwards = x.reversed();
            for (i, dir) in self.reverse.iter().enumerate() {
                to.col = h + dir.units.start;
                let table = table(self.forward.len() + i);
                self.run(dir, table, &backwards, lens, &mut to, share, scratch);
            }
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

    /// The start tables for a chunk of `rows` rows with letters `x`, when this model has
    /// them (or has now run enough rows to build them) and they hold x's letters.
    fn start_tables(&self, x: &Letters, rows: usize) -> Option<&[Table]> {
        let start = self.start.as_ref()?;
        let tables = start.after(rows, || self.build_start_tables())?;
        start_states::readable(x).then_some(tables)
    }

    /// Every direction part's states after each prefix of up to DEPTH letters, by the
    /// recurrence itself, in chunks across the pool (each on memory of its own).
    fn build_start_tables(&self) -> Vec<Table> {
        let table = |dir: &Direction| {
            let units = dir.units.len();
            let levels = std::array::from_fn(|d| {
                let x = start_states::every_prefix(d + 1);
                let mut states = vec![0f32; x.rows() * units];
                let chunk = |(k, part): (usize, &mut [f32])| {
                    let rows: Vec<usize> = (k * CHUNK..(k * CHUNK + part.len() / units)).collect();
                    let mut letters = Letters::default();
                    letters.select(&x, &rows);
                    let lens = vec![d + 1; rows.len()];
                    let mut to = Finals {
                        data: part,
                        col: 0,
                        stride: units,
                    };
                    let mut scratch = Scratch::default();
                    self.run(dir, None, &letters, &lens, &mut to, true, &mut scratch);
                };
                // In the pool even when called from outside it (a small call's thread).
                crate::threads::run(usize::MAX, || {
                    states
                        .par_chunks_mut(CHUNK * units)
                        .enumerate()
                        .for_each(chunk)
                });
                states
            });
            Table { units, levels }
        };
        self.forward
            .iter()
            .chain(&self.reverse)
            .map(table)
            .collect()
    }

    /// Builds the start tables now (tests): the true ones, or ones of zeros, which
    /// must change the answers if the tables are read at all. False: no tables here.
    #[cfg(test)]
    pub(super) fn build_start_tables_now(&self, zeros: bool) -> bool {
        let Some(start) = &self.start else {
            return false;
        };
        start.build_now(|| {
            let mut tables = self.build_start_tables();
            for t in tables.iter_mut().filter(|_| zeros) {
                t.levels.iter_mut().for_each(|l| l.fill(0.0));
            }
            tables
        });
        start.built()
    }

    /// Runs one direction over the rows' letters `x`, leaving each row's final
    /// top-layer state in `finals`; from `start`'s states after the first letters, when
    /// given (a one-layer GRU).
    #[allow(clippy::too_many_arguments)] // the chunk, its table and its buffers
    fn run(
        &self,
        dir: &Direction,
        start: Option<&Table>,
        x: &Letters,
        lens: &[usize],
        finals: &mut Finals<'_>,
        share: bool,
        scratch: &mut Scratch,
    ) {
        let (n, h) = (lens.len(), dir.units.len());
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
            ids,
            parent_ids,
            ..
        } = scratch;
        let table_steps = if start.is_some() { DEPTH } else { 0 };
        prefixes.start(lens, share, |r| x.row(r), table_steps);
        let [hs, cs, spare_h, spare_c] =
            self.reset_states([hs, cs, spare_h, spare_c], layers, n * h);
        let from = start.map_or(0, |table| {
            let ids = [ids, parent_ids];
            start_from_table(table, x, lens, prefixes, ids, &mut hs[0], finals)
        });
        // Gate pre-activations for one block of rows only: the block's products are
        // still in L1/L2 when its gates read them (whole-chunk buffers were not).
        // Every row the gates read is written by its product first: no clearing (for one
        // name, clearing two 48-row buffers cost more than its products).
        let gi = at_least(gi, GATE_ROWS * gp);
        let gh = at_least(gh, GATE_ROWS * gp);
        let width = lens.iter().copied().max().unwrap_or(0);
        for s in from..width {
            // States are per node: a distinct prefix among the rows still reading.
            prefixes.keep_longer(lens, s);
            prefixes.next(|r| x.at(r, s));
            for (k, layer) in dir.layers.iter().enumerate() {
                // Where prefixes parted, states move to their children's slots.
                if s > 0 && !prefixes.in_place() {
                    gather_into_place(prefixes, &mut hs[k], &mut spare_h[k], h);
                    if self.lstm {
                        gather_into_place(prefixes, &mut cs[k], &mut spare_c[k], h);
                    }
                }
                let (below, rest) = hs.split_at_mut(k);
                let below = below.last().map(|b| &b[..]);
                let step = (s, prefixes.letters());
                self.layer_step(dir, layer, step, below, &mut rest[0], &mut cs[k], gi, gh);
            }
            keep_finals(node_rows(&hs[layers - 1], h), prefixes, lens, s, finals);
        }
    }

    /// One layer's step `s` for every node (`letters`: each node's letter), in blocks
    /// of GATE_ROWS rows.
    #[allow(clippy::too_many_arguments)] // the layer's state buffers, split by the caller
    fn layer_step(
        &self,
        dir: &Direction,
        layer: &Layer,
        (s, letters): (usize, &[u8]),
        below: Option<&[f32]>,
        state: &mut [f32],
        cell: &mut [f32],
        gi: &mut [f32],
        gh: &mut [f32],
    ) {
        for first in (0..letters.len()).step_by(GATE_ROWS) {
            let rows = GATE_ROWS.min(letters.len() - first);
            let block = Block {
                step: s,
                first,
                letters: &letters[first..first + rows],
            };
            if self.lstm {
                self.lstm_block(dir, layer, &block, below, state, cell, gi);
            } else {
                self.gru_block(dir, layer, &block, below, state, gi, gh);
            }
        }
    }

    /// h_0 = c_0 = 0 in every layer (`states`: h, c and their spares, which only ever
    /// hold gathered rows, so they need room, not zeros); the same buffers back.
    fn reset_states<'a>(
        &self,
        mut states: [&'a mut Vec<Vec<f32>>; 4],
        layers: usize,
        len: usize,
    ) -> [&'a mut Vec<Vec<f32>>; 4] {
        for v in states.iter_mut() {
            v.resize_with(layers, Vec::new);
        }
        let [hs, cs, spare_h, spare_c] = &mut states;
        for k in 0..layers {
            zeroed(&mut hs[k], len);
            at_least(&mut spare_h[k], len);
            if self.lstm {
                zeroed(&mut cs[k], len);
                at_least(&mut spare_c[k], len);
            }
        }
        states
    }

    /// One LSTM block: gates = input projection (a lookup for the first layer, a
    /// product above) + W_hh h (skipped at the first step, where h_0 = 0), then the cell.
    #[allow(clippy::too_many_arguments)] // the block's state slices, borrowed apart
    fn lstm_block(
        &self,
        dir: &Direction,
        layer: &Layer,
        block: &Block<'_>,
        below: Option<&[f32]>,
        state: &mut [f32],
        cell: &mut [f32],
        gi: &mut [f32],
    ) {
        let (h, g, gp) = (dir.units.len(), dir.gates, layer.whh.padded_cols);
        let (s, r0, rows) = (block.step, block.first, block.letters.len());
        let zeros = &[0u8; GATE_ROWS][..rows]; // rows that start from a bias
        if let (Some(wih), Some(below)) = (&layer.wih, below) {
            matmul_from_table(&below[r0 * h..], h, wih, &layer.bih, zeros, gi, gp);
            if s > 0 {
                matmul_acc(rows, &state[r0 * h..], h, &layer.whh, gi, gp);
            }
        } else if s > 0 {
            let hidden = &state[r0 * h..];
            matmul_from_table(hidden, h, &layer.whh, &dir.table0, block.letters, gi, gp);
        } else {
            for (r, &l) in block.letters.iter().enumerate() {
                gi[r * gp..(r + 1) * gp].copy_from_slice(row(&dir.table0, gp, l));
            }
        }
        for r in 0..rows {
            let at = (r0 + r) * h;
            gates::lstm(
                &gi[r * gp..r * gp + g],
                &mut cell[at..at + h],
                &mut state[at..at + h],
                gate_accuracy(layer),
            );
        }
    }

    /// One GRU block: input projection (a lookup for the first layer, a product above)
    /// and W_hh h + b_hh (just b_hh at the first step, where h_0 = 0), then the gates.
    #[allow(clippy::too_many_arguments)] // the block's state slices, borrowed apart
    fn gru_block(
        &self,
        dir: &Direction,
        layer: &Layer,
        block: &Block<'_>,
        below: Option<&[f32]>,
        state: &mut [f32],
        gi: &mut [f32],
        gh: &mut [f32],
    ) {
        let (h, g, gp) = (dir.units.len(), dir.gates, layer.whh.padded_cols);
        let (s, r0, rows) = (block.step, block.first, block.letters.len());
        let zeros = &[0u8; GATE_ROWS][..rows]; // rows that start from a bias
        if let (Some(wih), Some(below)) = (&layer.wih, below) {
            matmul_from_table(&below[r0 * h..], h, wih, &layer.bih, zeros, gi, gp);
        }
        if s > 0 {
            let hidden = &state[r0 * h..];
            matmul_from_table(hidden, h, &layer.whh, &layer.bhh, zeros, gh, gp);
        } else {
            for r in 0..rows {
                gh[r * gp..(r + 1) * gp].copy_from_slice(&layer.bhh);
            }
        }
        for r in 0..rows {
            let input = if layer.wih.is_some() {
                &gi[r * gp..r * gp + g]
            } else {
                &row(&dir.table0, gp, block.letters[r])[..g]
            };
            let at = (r0 + r) * h;
            let (gh, h) = (&mut gh[r * gp..r * gp + g], &mut state[at..at + h]);
            gates::gru(input, gh, h, gate_accuracy(layer));
        }
    }
}

/// Coarse gates under int16 products, which round the states they read more coarsely
/// than the gates' error (`gates::Accuracy`); float32's are held to PyTorch's.
fn gate_accuracy(layer: &Layer) -> gates::Accuracy {
    match layer.whh.precision() {
        Precision::Int16 => gates::Accuracy::Coarse,
        _ => gates::Accuracy::Fine,
    }
}

/// Steps 0..DEPTH (or fewer, for short rows) from the table: each node takes its
/// prefix's state. Returns the next step to compute.
fn start_from_table(
    table: &Table,
    x: &Letters,
    lens: &[usize],
    prefixes: &mut Prefixes,
    [ids, parent_ids]: [&mut Vec<u32>; 2],
    top: &mut [f32],
    finals: &mut Finals<'_>,
) -> usize {
    let steps = DEPTH.min(lens.iter().copied().max().unwrap_or(0));
    parent_ids.clear();
    for s in 0..steps {
        prefixes.keep_longer(lens, s);
        prefixes.next(|r| x.at(r, s));
        start_states::ids(prefixes.parents(), parent_ids, prefixes.letters(), ids);
        // Rows that end inside the table read their state from it; only the last
        // table step's states are copied, for the steps that follow to read.
        keep_finals(
            |node| table.state(s, ids[node] as usize),
            prefixes,
            lens,
            s,
            finals,
        );
        std::mem::swap(ids, parent_ids);
    }
    if steps > 0 {
        copy_states(table, steps - 1, parent_ids, top);
    }
    steps
}

/// Each node's state at `level` into its slot of `top`. The table (15 MB for the
/// default) misses in cache at random rows: a later node's row is asked for ahead.
fn copy_states(table: &Table, level: usize, ids: &[u32], top: &mut [f32]) {
    const AHEAD: usize = 4;
    let h = table.units;
    for (node, &id) in ids.iter().enumerate() {
        if let Some(&later) = ids.get(node + AHEAD) {
            crate::prefetch::floats(table.state(level, later as usize).as_ptr(), h);
        }
        top[node * h..(node + 1) * h].copy_from_slice(table.state(level, id as usize));
    }
}

/// Node i's state: row i of `states`, `h` floats wide.
fn node_rows<'s>(states: &'s [f32], h: usize) -> impl Fn(usize) -> &'s [f32] {
    move |node| &states[node * h..(node + 1) * h]
}

/// Rows whose last letter was `s` are done: keep their top-layer state (`state(node)`).
fn keep_finals<'s>(
    state: impl Fn(usize) -> &'s [f32],
    prefixes: &Prefixes,
    lens: &[usize],
    s: usize,
    finals: &mut Finals<'_>,
) {
    for &r in prefixes.active() {
        let r = r as usize;
        if lens[r] == s + 1 {
            let from = state(prefixes.of_row(r));
            let at = r * finals.stride + finals.col;
            finals.data[at..at + from.len()].copy_from_slice(from);
        }
    }
}

/// One direction's layers (tensor suffix `suffix`) as `spec` and `t` give them: the
/// hidden units `units` of the whole model (`spec.hidden_size` of them).
fn direction(
    spec: &Spec,
    t: &HashMap<String, Vec<f32>>,
    suffix: &str,
    units: Range<usize>,
) -> Direction {
    let lstm = spec.cell == Cell::Lstm;
    let h = spec.hidden_size;
    let g = if lstm { 4 * h } else { 3 * h };
    // Tables and biases get rows as wide as the kernel's output rows: its sums
    // start from them.
    let gp = padded_cols(g);
    Direction {
        units,
        gates: g,
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
    }
}

/// The hidden units of a one-layer direction in parts that read no unit outside
/// themselves (a merged ensemble's members: its recurrent matrix is block-diagonal),
/// each at least MIN_PART units; one part, all of them, where there is no such cut.
/// A part's sums are the whole matrix's sums without their zero terms, in the same
/// order: the same bits in f32. int16 rounds a part's weights to finer steps than the
/// whole matrix's (`int16::weight_steps` grows as the depth shrinks): closer to f32.
fn parts(
    spec: &Spec,
    t: &HashMap<String, Vec<f32>>,
    suffix: &str,
    per_unit: usize,
) -> Vec<Range<usize>> {
    let h = spec.hidden_size;
    if spec.num_layers != 1 {
        return vec![Range { start: 0, end: h }];
    }
    // W_hh is (per_unit * h, h). Per unit, the lowest and highest unit its gates read
    // (itself at least).
    let w = &t[&format!("rnn.weight_hh_l0{suffix}")];
    let (mut lo, mut hi): (Vec<usize>, Vec<usize>) = ((0..h).collect(), (0..h).collect());
    for q in 0..per_unit * h {
        let u = q % h;
        for (k, &x) in w[q * h..(q + 1) * h].iter().enumerate() {
            if x != 0.0 {
                lo[u] = lo[u].min(k);
                hi[u] = hi[u].max(k);
            }
        }
    }
    // A cut before unit p is clean when no unit below reads one above, nor the reverse.
    let mut lowest_above = lo.clone(); // from unit p on
    for p in (0..h.saturating_sub(1)).rev() {
        lowest_above[p] = lowest_above[p].min(lowest_above[p + 1]);
    }
    let mut cuts = vec![0];
    let mut highest_below = 0;
    for p in 1..h {
        highest_below = highest_below.max(hi[p - 1]);
        let clean = highest_below < p && lowest_above[p] >= p;
        if clean && p - cuts[cuts.len() - 1] >= MIN_PART && h - p >= MIN_PART {
            cuts.push(p);
        }
    }
    cuts.push(h);
    cuts.windows(2).map(|c| c[0]..c[1]).collect()
}

/// The tensors and spec of the first layer restricted to `units`: their gate rows
/// (gate by gate, as PyTorch orders them) and their columns of W_hh.
fn part_of(
    spec: &Spec,
    t: &HashMap<String, Vec<f32>>,
    suffix: &str,
    units: Range<usize>,
    per_unit: usize,
) -> (Spec, HashMap<String, Vec<f32>>) {
    let h = spec.hidden_size;
    let gate_rows: Vec<usize> = (0..per_unit)
        .flat_map(|gate| units.clone().map(move |u| gate * h + u))
        .collect();
    let rows_of = |m: &[f32], width: usize, cols: Range<usize>| -> Vec<f32> {
        gate_rows
            .iter()
            .flat_map(|&q| {
                m[q * width + cols.start..q * width + cols.end]
                    .iter()
                    .copied()
            })
            .collect()
    };
    let name = |w: &str| format!("rnn.{w}_l0{suffix}");
    // The embedding (when the model has one) is shared by every part.
    let mut part: HashMap<String, Vec<f32>> = t
        .get_key_value("embedding.weight")
        .map(|(k, v)| (k.clone(), v.clone()))
        .into_iter()
        .collect();
    let whh = &t[&name("weight_hh")];
    part.insert(name("weight_hh"), rows_of(whh, h, units.clone()));
    let wih = &t[&name("weight_ih")];
    let input = wih.len() / (per_unit * h);
    part.insert(name("weight_ih"), rows_of(wih, input, 0..input));
    for b in ["bias_ih", "bias_hh"] {
        part.insert(name(b), rows_of(&t[&name(b)], 1, 0..1));
    }
    let mut spec = spec.clone();
    spec.hidden_size = units.len();
    (spec, part)
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

/// `states` rearranged to the prefixes' new order (through `spare`, which it swaps with).
fn gather_into_place(prefixes: &Prefixes, states: &mut Vec<f32>, spare: &mut Vec<f32>, h: usize) {
    prefixes.gather(states, spare, h);
    std::mem::swap(states, spare);
}
