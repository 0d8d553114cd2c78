//! The CPU forward pass: names -> log-probabilities (B, C) for the tutorial's Elman
//! cell (recurrence or collapsed tables), GRU and LSTM.
//!
//! A batch flows one way: each name's letters are read once (`letters`); rows that need
//! the recurrence are ordered (longest first, or by their letters to share prefixes)
//! and cut into chunks run in parallel, each on one thread's `scratch` memory; then
//! every row gets its logits (collapsed tables for short Elman rows, the recurrence's
//! otherwise), the n-gram branch and the log-softmax. The cells: `elman`, `gated`; a
//! one-layer GRU's rows start from the states after their first letters once a model
//! has run enough rows to have kept them (`start_states`).

mod elman;
mod gated;
mod letters;
mod scratch;
mod start_states;
#[cfg(test)]
mod tests;

use crate::answer_cache::AnswerCache;
use crate::error::{Error, Result};
use crate::gemm::{self, Packed, Precision};
use crate::known_ngrams::KnownNGrams;
use crate::marks::{self, Marks};
use crate::math::log_softmax_rows;
use crate::model_file::{parse, Cell, ModelFile, Spec};
use crate::ngrams;
use crate::normalize::TextRule;
use crate::{encode, threads};
use elman::Elman;
use gated::Gated;
use letters::Letters;
use rayon::prelude::*;
use scratch::{Scratch, CHUNK, ROWS_PER_TASK, SCRATCH};
use std::collections::HashMap;

/// Longest name the collapsed tables cover; longer ones run the recurrence.
pub const COLLAPSED_MAX_LEN: usize = 64;
/// How many rows ahead `finish` asks for a row's logits (`crate::prefetch`).
const AHEAD: usize = 8;

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
    /// Added to every row's logits before the log-softmax: a target prior's
    /// log(prior / training share) (`set_logit_shift`); -inf rules a language out.
    logit_shift: Option<Vec<f32>>,
    /// Answers bulk scoring already computed, by name (`answer_cache`).
    pub answers: AnswerCache,
    classes: usize,
    net: Net,
    /// The hashed n-gram branch: its spec and (buckets, C) table, added to the logits.
    ngrams: Option<ngrams::Branch>,
    /// The rows of the letters outside ASCII a name holds (`marks`), added too.
    marks: Option<Marks>,
}

/// The cell, which runs the recurrence over a chunk of rows.
#[derive(Clone)]
enum Net {
    Elman(Elman),
    Gated(Gated),
}

impl Net {
    /// Logits (rows, out_cols) for a chunk of rows of length >= 1.
    fn recurrence(&self, x: &Letters, lens: &[usize], share: bool, s: &mut Scratch) -> Vec<f32> {
        match self {
            Net::Elman(e) => e.recurrence(x, lens, share, s),
            Net::Gated(g) => g.recurrence(x, lens, share, s),
        }
    }

    /// Floats per row of the recurrence's logits (C, padded for the kernel).
    fn out_cols(&self) -> usize {
        match self {
            Net::Elman(e) => e.oh.padded_cols,
            Net::Gated(g) => g.out.padded_cols,
        }
    }

    /// The collapsed tables, where the cell is linear.
    fn collapsed(&self) -> Option<&Elman> {
        match self {
            Net::Elman(e) => Some(e),
            Net::Gated(_) => None,
        }
    }
}

/// Which rows of a batch run the recurrence, their letters, and the order they run in.
struct Plan {
    /// Short Elman rows take the collapsed tables (and rows without letters, nothing).
    collapsed: bool,
    /// Input rows that run the recurrence, in input order.
    recurrent: Vec<usize>,
    /// Their letters, row j for recurrent[j].
    letters: Letters,
    /// Positions in `recurrent`, in the order they run.
    order: Vec<usize>,
}

impl Plan {
    /// Whether a row of this length skips the recurrence.
    fn direct(&self, len: usize) -> bool {
        len == 0 || (self.collapsed && len <= COLLAPSED_MAX_LEN)
    }
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
pub(super) fn packed_t(m: &[f32], rows: usize, cols: usize, col0: usize, ncols: usize) -> Packed {
    Packed::new(&transpose(m, rows, cols, col0, ncols), ncols, rows)
}

/// The rows of `m`, `width` floats each, zero-padded to `ld`.
pub(super) fn padded(m: &[f32], width: usize, ld: usize) -> Vec<f32> {
    let mut out = vec![0f32; m.len() / width * ld];
    for (to, from) in out.chunks_mut(ld).zip(m.chunks(width)) {
        to[..width].copy_from_slice(from);
    }
    out
}

/// Row `l` of a table of rows `width` wide.
pub(super) fn row(table: &[f32], width: usize, l: u8) -> &[f32] {
    let l = l as usize;
    &table[l * width..(l + 1) * width]
}

/// Names every model is run on before use: the tutorial's queries, every letter of the
/// alphabet in one name, and one past the collapsed tables' bound (the recurrence).
const PROBES: [&str; 5] = [
    "Hinton",
    "Schmidhuber",
    "Zhou",
    crate::alphabet::ALPHABET,
    "Abcdefghijklmnopqrstuvwxyz Abcdefghijklmnopqrstuvwxyz Abcdefghijklmnopqrstuvwxyz",
];

impl Model {
    pub fn from_bytes(bytes: &[u8]) -> Result<Model> {
        Model::checked(&parse(bytes)?)
    }

    /// The model of a parsed file, once it has passed its self-test.
    pub fn checked(file: &ModelFile) -> Result<Model> {
        let model = Model::new(file.spec.clone(), &file.tensors, file.known.clone());
        model.self_test()?;
        Ok(model)
    }

    fn new(spec: Spec, t: &HashMap<String, Vec<f32>>, known: Option<KnownNGrams>) -> Model {
        let classes = spec.categories.len();
        let ngrams = spec
            .ngrams
            .map(|spec| ngrams::Branch::new(spec, t["ngram.weight"].clone(), known));
        let net = match spec.cell {
            Cell::Elman => Net::Elman(Elman::new(&spec, t)),
            Cell::Gru | Cell::Lstm => Net::Gated(Gated::new(&spec, t)),
        };
        let marks = spec
            .marks
            .as_ref()
            .map(|m| Marks::new(m, t[marks::TENSOR].clone(), classes));
        Model {
            spec,
            share_prefixes: true,
            logit_shift: None,
            answers: AnswerCache::default(),
            classes,
            net,
            ngrams,
            marks,
        }
    }

    /// Refuses a model whose weights, each finite, still give no number for everyday
    /// names (products that overflow float32): every row it wrote would be empty.
    fn self_test(&self) -> Result<()> {
        let methods: &[Method] = match self.net {
            Net::Elman(_) => &[Method::Auto, Method::Recurrence],
            Net::Gated(_) => &[Method::Auto],
        };
        for &method in methods {
            let out = self.forward(&PROBES, &self.lengths(&PROBES), method, false, false)?;
            let bad = out
                .chunks(self.classes)
                .position(|row| row.iter().any(|v| v.is_nan() || *v == f32::INFINITY));
            if let Some(i) = bad {
                return Err(Error::InvalidModel(format!(
                    "its weights give no log-probabilities for the probe name {:?} (NaN): \
                     they overflow float32, so the file is damaged or was not trained; \
                     restore it from its source or retrain it",
                    PROBES[i]
                )));
            }
        }
        Ok(())
    }

    pub fn from_path(path: &str) -> Result<Model> {
        Model::from_bytes(&crate::model_file::read_path(path)?)
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Whether bulk scoring keeps this model's answers (`answers`): not for the linear
    /// cell, whose collapsed tables answer a short name faster than a lookup.
    pub fn caches_answers(&self) -> bool {
        self.net.collapsed().is_none()
    }

    /// This model with another logit shift (`set_logit_shift`): its weights copied, not
    /// read and checked again; its kept answers not carried over.
    pub fn with_logit_shift(&self, shift: Option<Vec<f32>>) -> Result<Model> {
        let mut model = Model {
            spec: self.spec.clone(),
            share_prefixes: self.share_prefixes,
            logit_shift: None,
            answers: AnswerCache::default(),
            classes: self.classes,
            net: self.net.clone(),
            ngrams: self.ngrams.clone(),
            marks: self.marks.clone(),
        };
        model.set_logit_shift(shift)?;
        Ok(model)
    }

    /// Shifts every answer's logits by `shift` (one per language; finite or -inf, not
    /// all -inf) before the log-softmax, or removes the shift (None).
    pub fn set_logit_shift(&mut self, shift: Option<Vec<f32>>) -> Result<()> {
        if let Some(s) = &shift {
            let bad = s.iter().any(|v| v.is_nan() || *v == f32::INFINITY);
            if s.len() != self.classes || bad || s.iter().all(|v| *v == f32::NEG_INFINITY) {
                return Err(Error::InvalidArgument(format!(
                    "a logit shift needs {} numbers, finite or -inf and not all -inf",
                    self.classes
                )));
            }
        }
        self.logit_shift = shift;
        self.answers.clear();
        Ok(())
    }

    /// The precision of the recurrent products. `Bf16` needs a gated cell and a CPU
    /// with AVX512_BF16, `Int16` a gated cell and AVX2; the tutorial's cell stays exact
    /// in float32.
    pub fn set_precision(&mut self, precision: Precision) -> Result<()> {
        if precision == Precision::F32 && self.precision() == Precision::F32 {
            return Ok(());
        }
        let name = precision.name();
        match &mut self.net {
            Net::Elman(_) => Err(Error::InvalidArgument(format!(
                "{name} runs the gru and lstm cells; the elman cell stays exact in f32"
            ))),
            Net::Gated(_) if precision == Precision::Bf16 && !gemm::bf16_available() => {
                Err(Error::InvalidArgument(
                    "bf16 needs a CPU with AVX512_BF16, which this one lacks; use f32 or auto"
                        .into(),
                ))
            }
            Net::Gated(_) if precision == Precision::Int16 && !gemm::int16_available() => {
                Err(Error::InvalidArgument(
                    "int16 needs a CPU with AVX2 and FMA, which this one lacks (or \
                     NAMELANG_ISA=portable); use f32 or auto"
                        .into(),
                ))
            }
            Net::Gated(g) => {
                g.set_precision(precision);
                self.answers.clear();
                Ok(())
            }
        }
    }

    /// The precision `auto` means for this model: the Elman cell stays exact in f32; a
    /// GRU or LSTM as `gemm::auto_precision` says for the depth of its recurrent
    /// products, every part's (a merged ensemble's members run apart): bf16 only where
    /// the tiles fit each of them.
    pub fn auto_precision(&self) -> Precision {
        match &self.net {
            Net::Elman(_) => Precision::F32,
            Net::Gated(g) => g
                .part_sizes()
                .into_iter()
                .map(gemm::auto_precision)
                .find(|&p| p != Precision::Bf16)
                .unwrap_or(Precision::Bf16),
        }
    }

    pub fn precision(&self) -> Precision {
        match &self.net {
            Net::Elman(_) => Precision::F32,
            Net::Gated(g) => g.precision(),
        }
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

    fn forward<S: AsRef<str> + Sync>(
        &self,
        names: &[S],
        lengths: &[usize],
        method: Method,
        share_prefixes: bool,
        par: bool,
    ) -> Result<Vec<f32>> {
        assert_eq!(names.len(), lengths.len());
        let plan = self.plan(names, lengths, method, share_prefixes, par)?;
        let results = self.run_chunks(&plan, share_prefixes, par);
        let mut out = vec![0f32; names.len() * self.classes];
        self.finish(names, lengths, &plan, &results, &mut out, par);
        Ok(out)
    }

    /// Which rows run the recurrence, their letters (read once, in input order: reading
    /// each name in sorted order would jump around memory), and their order: longest
    /// first, or by their letters, which makes equal prefixes neighbours.
    fn plan<S: AsRef<str> + Sync>(
        &self,
        names: &[S],
        lengths: &[usize],
        method: Method,
        share_prefixes: bool,
        par: bool,
    ) -> Result<Plan> {
        let collapsed = match (&self.net, method) {
            (Net::Elman(_), Method::Auto | Method::Collapsed) => true,
            (_, Method::Collapsed) => {
                return Err(Error::InvalidArgument(
                    "the collapsed method needs a linear cell (elman); use 'auto' or \
                     'recurrence'"
                        .into(),
                ))
            }
            _ => false,
        };
        let mut plan = Plan {
            collapsed,
            recurrent: Vec::new(),
            letters: Letters::default(),
            order: Vec::new(),
        };
        plan.recurrent = (0..names.len())
            .filter(|&i| !plan.direct(lengths[i]))
            .collect();
        plan.letters = Letters::read(names, &plan.recurrent, lengths, self.spec.text_rule, par);
        plan.order = if share_prefixes {
            plan.letters.by_prefix(par)
        } else {
            plan.letters.longest_first(par)
        };
        Ok(plan)
    }

    /// The recurrence's logits, chunk by chunk in `plan.order`.
    fn run_chunks(&self, plan: &Plan, share_prefixes: bool, par: bool) -> Vec<Vec<f32>> {
        let run_chunk = |rows: &[usize]| -> Vec<f32> {
            let mut scratch = SCRATCH.take();
            let mut x = std::mem::take(&mut scratch.x);
            x.select(&plan.letters, rows);
            let lens: Vec<usize> = (0..rows.len()).map(|r| x.len(r)).collect();
            let logits = self.net.recurrence(&x, &lens, share_prefixes, &mut scratch);
            scratch.x = x;
            SCRATCH.set(scratch);
            logits
        };
        if par {
            // One task per chunk: chunks of long names cost more than chunks of short
            // ones, so threads take them one at a time rather than in halves.
            plan.order
                .par_chunks(CHUNK)
                .with_max_len(1)
                .map(run_chunk)
                .collect()
        } else {
            plan.order.chunks(CHUNK).map(run_chunk).collect()
        }
    }

    /// The letters outside ASCII this model takes as evidence, when it has them.
    pub fn marks(&self) -> Option<&Marks> {
        self.marks.as_ref()
    }

    /// What a row's logits get beside the cell's: the n-gram rows, the marks' rows and
    /// the prior's shift.
    fn add_beside(&self, name: &str, len: usize, row: &mut [f32]) {
        if let Some(branch) = &self.ngrams {
            branch.add_rows(name, len, self.spec.text_rule, row);
        }
        if let Some(marks) = &self.marks {
            marks.add_rows(name, row);
        }
        if let Some(shift) = &self.logit_shift {
            row.iter_mut().zip(shift).for_each(|(v, s)| *v += s);
        }
    }

    /// Every row once: collapsed tables or the recurrence's logits, the n-gram branch,
    /// then the log-softmax; NaN for a name with no letters.
    fn finish<S: AsRef<str> + Sync>(
        &self,
        names: &[S],
        lengths: &[usize],
        plan: &Plan,
        results: &[Vec<f32>],
        out: &mut [f32],
        par: bool,
    ) {
        let c = self.classes;
        let cp = self.net.out_cols();
        // Where each input row's logits sit among the sorted results (nothing to hold
        // when every row is direct, as with short names through the collapsed tables).
        let mut slot = if plan.order.is_empty() {
            Vec::new()
        } else {
            vec![usize::MAX; names.len()]
        };
        for (k, &j) in plan.order.iter().enumerate() {
            slot[plan.recurrent[j]] = k;
        }
        let rule = self.spec.text_rule;
        let finish = |(block, rows): (usize, &mut [f32])| {
            for (k, row) in rows.chunks_mut(c).enumerate() {
                let i = block * ROWS_PER_TASK + k;
                let (name, len) = (names[i].as_ref(), lengths[i]);
                if len == 0 {
                    continue;
                } else if plan.direct(len) {
                    if let Some(e) = self.net.collapsed() {
                        e.collapsed(name, rule, len, c, row);
                    }
                } else {
                    let k = slot[i];
                    row.copy_from_slice(&results[k / CHUNK][(k % CHUNK) * cp..][..c]);
                }
                // Rows come in input order, their logits in sorted order: ask ahead for
                // a later row's, which would otherwise miss in cache at its copy.
                if let Some(&k) = slot.get(i + AHEAD).filter(|&&k| k != usize::MAX) {
                    crate::prefetch::floats(results[k / CHUNK][(k % CHUNK) * cp..].as_ptr(), c);
                }
                self.add_beside(name, len, row);
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
    // One pass, each score placed among the best so far (k is usually 1 to 3): a later
    // index moves ahead only when strictly better, so ties stay in index order.
    let k = k.min(row.len());
    if k == 0 {
        return;
    }
    for (i, &v) in row.iter().enumerate() {
        if taken.len() == k && v <= row[taken[k - 1]] {
            continue;
        }
        let at = taken
            .iter()
            .position(|&b| v > row[b])
            .unwrap_or(taken.len());
        if taken.len() == k {
            taken.pop();
        }
        taken.insert(at, i);
    }
}
