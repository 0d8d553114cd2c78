//! Per-thread working memory of the recurrences, and the sizes work is cut into.

use super::letters::Letters;
use crate::prefixes::Prefixes;
use std::cell::Cell;

/// Rows per parallel chunk: big enough to amortise the weights, small enough for L2.
pub(super) const CHUNK: usize = 384;
/// Rows per rayon task in the per-row passes (lookups, log-softmax): finer tasks cost
/// more in splitting than the work they hold.
pub(super) const ROWS_PER_TASK: usize = 1024;
/// Rows of a chunk whose gates are computed together, right after their products.
pub(super) const GATE_ROWS: usize = 48;

/// Per-thread buffers reused across chunks and calls: fresh multi-megabyte
/// allocations per chunk cost more in page faults than the arithmetic.
#[derive(Default)]
pub(super) struct Scratch {
    pub(super) a: Vec<f32>,
    pub(super) b: Vec<f32>,
    pub(super) gi: Vec<f32>,
    pub(super) gh: Vec<f32>,
    pub(super) hs: Vec<Vec<f32>>,
    pub(super) cs: Vec<Vec<f32>>,
    pub(super) x: Letters,
    pub(super) prefixes: Prefixes,
    // Gathered states when prefixes part (states move to their children's slots).
    pub(super) spare_h: Vec<Vec<f32>>,
    pub(super) spare_c: Vec<Vec<f32>>,
    // Logits of the rows that read their last letter at a step (Elman).
    pub(super) out: Vec<f32>,
    // The letters whose table rows start those rows' sums.
    pub(super) picks: Vec<u8>,
    // Each node's prefix id, this step's and the step before's (`start_states`).
    pub(super) ids: Vec<u32>,
    pub(super) parent_ids: Vec<u32>,
}

thread_local! {
    // Taken for a chunk and put back after it, never borrowed across one: a chunk may
    // build the prefix states across the pool, and while it waits its thread runs other
    // chunks, which then find the slot empty and work in buffers of their own.
    pub(super) static SCRATCH: Cell<Scratch> = Cell::new(Scratch::default());
}

/// `v` resized to `len` and zeroed, keeping its allocation.
pub(super) fn zeroed<T: Copy + Default>(v: &mut Vec<T>, len: usize) -> &mut [T] {
    v.clear();
    v.resize(len, T::default());
    &mut v[..]
}

/// `v` at least `len` long, its old contents kept: for buffers whose every element read
/// is written first, where clearing would be wasted work.
pub(super) fn at_least<T: Copy + Default>(v: &mut Vec<T>, len: usize) -> &mut [T] {
    if v.len() < len {
        v.resize(len, T::default());
    }
    &mut v[..len]
}
