//! int16 products on any AVX2 CPU (`auto` picks them where AVX2 is the widest kernel):
//! weights rounded to integers with one scale per output column, states (which a GRU or LSTM keeps inside (-1, 1)) to
//! integers in steps of 1/8191, products summed exactly in int32 by `vpmaddwd`, which
//! multiplies and adds pairs of int16 at 16 products an instruction where an FMA does
//! 8 (on Zen 3, 82 against 51 GMAC/s a core with the adds: BENCHMARKS.md).
//!
//! Why int16 rather than int8: int8 states and weights move the default model's answers
//! outside the bounds `precision="auto"` must keep, and AVX2's int8 products
//! (`vpmaddubsw` then `vpmaddwd`) run slower than `vpmaddwd` alone. Integer sums are
//! exact, so a row's answer never depends on which rows share its call.

use super::Start;

/// States are rounded to multiples of 1/STATE_STEPS, in [-1, 1].
pub const STATE_STEPS: f32 = 8191.0;

/// The largest integer a weight is rounded to for products `depth` deep: every sum of
/// `depth` products of |state| <= 8191 and |weight| <= this stays inside int32.
pub fn weight_steps(depth: usize) -> i32 {
    let pairs_depth = depth.div_ceil(2) * 2;
    (i32::MAX as i64 / (pairs_depth.max(1) as i64 * STATE_STEPS as i64)).min(i16::MAX as i64) as i32
}

/// Weights as int16 pairs in 16-column panels, and each column's scale (the value of
/// one step of its weights, divided by STATE_STEPS so a sum of products times the scale
/// is the product of the unrounded values).
#[derive(Clone)]
pub struct Int16Weights {
    /// Per panel and pair of rows k = 2i, 2i + 1: each column's two weights in one u32
    /// (low half: row 2i), the layout `vpmaddwd` multiplies against a pair of states.
    pub pairs: Vec<u32>,
    pub scales: Vec<f32>,
    /// Per panel, the pairs of rows that hold a non-zero weight (`Packed::spans`).
    pub spans: Vec<std::ops::Range<usize>>,
}

/// Columns per panel: one AVX2 register holds a pair of rows of 8 columns; two make a
/// panel, the width of the f32 AVX2 tile (every padded width is a multiple of it).
pub const PANEL: usize = 16;

impl Int16Weights {
    /// `weight(k, j)` for k < depth and j < padded_cols (columns past the matrix are 0).
    pub fn new(depth: usize, padded_cols: usize, weight: impl Fn(usize, usize) -> f32) -> Self {
        assert!(padded_cols.is_multiple_of(PANEL));
        let steps = weight_steps(depth) as f32;
        let kpairs = depth.div_ceil(2);
        let mut scales = vec![0f32; padded_cols];
        for (j, s) in scales.iter_mut().enumerate() {
            let largest = (0..depth).map(|k| weight(k, j).abs()).fold(0f32, f32::max);
            *s = if largest > 0.0 { largest / steps } else { 0.0 };
        }
        let mut pairs = vec![0u32; padded_cols / PANEL * kpairs * PANEL];
        for (j, &scale) in scales.iter().enumerate() {
            let (panel, col) = (j / PANEL, j % PANEL);
            for k in 0..depth {
                let q = if scale > 0.0 {
                    (weight(k, j) / scale)
                        .round_ties_even()
                        .clamp(-steps, steps) as i16
                } else {
                    0
                };
                pairs[(panel * kpairs + k / 2) * PANEL + col] |=
                    (q as u16 as u32) << (16 * (k % 2));
            }
        }
        for s in &mut scales {
            *s /= STATE_STEPS;
        }
        let spans = (0..padded_cols / PANEL)
            .map(|panel| {
                let block = &pairs[panel * kpairs * PANEL..(panel + 1) * kpairs * PANEL];
                super::nonzero_rows(block.chunks_exact(PANEL).map(|p| p.iter().any(|&x| x != 0)))
            })
            .collect();
        Int16Weights {
            pairs,
            scales,
            spans,
        }
    }
}

/// A state rounded as the products take it: clamped to [-1, 1] first (NaN, which no
/// state is, to -1, as `vmaxps` does), then to the nearest step, ties to even.
pub fn state_step(x: f32) -> i16 {
    // Not `clamp`, which keeps NaN.
    #[allow(clippy::manual_clamp)]
    let y = (x * STATE_STEPS).max(-STATE_STEPS).min(STATE_STEPS);
    y.round_ties_even() as i16
}

/// One row of states as int16 pairs (`pairs.len()` = depth rounded up to pairs).
pub fn state_pairs(row: &[f32], pairs: &mut [u32]) {
    for (i, p) in pairs.iter_mut().enumerate() {
        let lo = state_step(row[2 * i]) as u16 as u32;
        let hi = row
            .get(2 * i + 1)
            .map_or(0, |&x| state_step(x) as u16 as u32);
        *p = lo | hi << 16;
    }
}

thread_local! {
    // The states as int16 pairs: one buffer a thread, reused by every product.
    static STATE_PAIRS: std::cell::Cell<Vec<u32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// `out[r][j] = start[r][j] + Σ_k a[r][k] · w[k][j]` with the int16 roundings above,
/// for every padded column. Needs AVX2 (`super::int16_available`).
///
/// # Safety
/// The CPU runs AVX2 and FMA; `a`, `out` and the start rows hold what `super::matmul`
/// asserts.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn matmul_int16(
    rows: usize,
    a: &[f32],
    lda: usize,
    depth: usize,
    w: &Int16Weights,
    start: Start,
    out: &mut [f32],
    ldo: usize,
) {
    let kpairs = depth.div_ceil(2);
    let mut buffer = STATE_PAIRS.take();
    buffer.resize(rows * kpairs, 0);
    for r in 0..rows {
        x86::state_pairs(
            &a[r * lda..r * lda + depth],
            &mut buffer[r * kpairs..(r + 1) * kpairs],
        );
    }
    x86::rows(rows, &buffer, kpairs, w, start, out, ldo);
    STATE_PAIRS.set(buffer);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::x86::start_of;
    use super::{Int16Weights, Start, PANEL};
    use std::arch::x86_64::*;

    const ROWS: usize = 6;

    /// `super::state_pairs`, 16 states at a time (scalar rounding was most of a bulk
    /// product's time); the same values, since `vcvtps2dq` rounds ties to even.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn state_pairs(row: &[f32], pairs: &mut [u32]) {
        let (lo, hi) = (
            _mm256_set1_ps(-super::STATE_STEPS),
            _mm256_set1_ps(super::STATE_STEPS),
        );
        let steps = |x: *const f32| {
            let y = _mm256_mul_ps(_mm256_loadu_ps(x), hi);
            _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(y, lo), hi))
        };
        let whole = row.len() / 16;
        for i in 0..whole {
            let (a, b) = (
                steps(row.as_ptr().add(16 * i)),
                steps(row.as_ptr().add(16 * i + 8)),
            );
            // packs interleaves the 128-bit halves; the permute puts them back in order.
            let q = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8);
            _mm256_storeu_si256(pairs.as_mut_ptr().add(8 * i) as *mut __m256i, q);
        }
        super::state_pairs(&row[16 * whole..], &mut pairs[8 * whole..]);
    }

    /// Row blocks of up to six swept under every panel: the weights (28 KB for the
    /// default's two parts of 48 x 144) stream from L2 once per block; the block's
    /// states stay in L1.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn rows(
        rows: usize,
        a16: &[u32],
        kpairs: usize,
        w: &Int16Weights,
        start: Start,
        out: &mut [f32],
        ldo: usize,
    ) {
        let width = w.scales.len();
        let o = out.as_ptr();
        let mut r = 0;
        while r < rows {
            let n = ROWS.min(rows - r);
            if n == 1 {
                return one_row(r, a16, kpairs, w, start, out, ldo);
            }
            for panel in 0..width / PANEL {
                let col = panel * PANEL;
                let (k0, len) = (w.spans[panel].start, w.spans[panel].len());
                let ap = a16.as_ptr().add(r * kpairs + k0);
                let wp = w.pairs.as_ptr().add((panel * kpairs + k0) * PANEL);
                let sp = w.scales.as_ptr().add(col);
                let op = out.as_mut_ptr().add(r * ldo + col);
                let from = |i: usize| start_of(start, o, ldo, width, r + i, col);
                match n {
                    6 => tile::<6>(len, ap, kpairs, wp, sp, from, op, ldo),
                    5 => tile::<5>(len, ap, kpairs, wp, sp, from, op, ldo),
                    4 => tile::<4>(len, ap, kpairs, wp, sp, from, op, ldo),
                    3 => tile::<3>(len, ap, kpairs, wp, sp, from, op, ldo),
                    2 => tile::<2>(len, ap, kpairs, wp, sp, from, op, ldo),
                    _ => tile::<1>(len, ap, kpairs, wp, sp, from, op, ldo),
                }
            }
            r += n;
        }
    }

    /// The last row of a call (one name's whole product) two panels at a time where
    /// they share a span: four independent sums a state pair, where one panel's two
    /// left its loads waiting (one name 7.2 -> 6.7 us in the crate, BENCHMARKS.md).
    /// The same integer sums as `tile`, so the same bits.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn one_row(
        r: usize,
        a16: &[u32],
        kpairs: usize,
        w: &Int16Weights,
        start: Start,
        out: &mut [f32],
        ldo: usize,
    ) {
        let (width, stride) = (w.scales.len(), kpairs * PANEL);
        let o = out.as_ptr();
        let mut panel = 0;
        while panel < width / PANEL {
            let span = w.spans[panel].clone();
            let take = if w.spans.get(panel + 1) == Some(&span) {
                2
            } else {
                1
            };
            let ap = a16.as_ptr().add(r * kpairs + span.start);
            let wp = w.pairs.as_ptr().add(panel * stride + span.start * PANEL);
            let sums = if take == 2 {
                sums::<2>(span.len(), ap, wp, stride)
            } else {
                let one = sums::<1>(span.len(), ap, wp, stride);
                [one[0], [_mm256_setzero_si256(); 2]]
            };
            for (g, pair) in sums.iter().enumerate().take(take) {
                let col = (panel + g) * PANEL;
                let src = start_of(start, o, ldo, width, r, col);
                for (v, x) in pair.iter().enumerate() {
                    let y = _mm256_fmadd_ps(
                        _mm256_cvtepi32_ps(*x),
                        _mm256_loadu_ps(w.scales.as_ptr().add(col + v * 8)),
                        _mm256_loadu_ps(src.add(v * 8)),
                    );
                    _mm256_storeu_ps(out.as_mut_ptr().add(r * ldo + col + v * 8), y);
                }
            }
            panel += take;
        }
    }

    /// One row's int32 sums over `kpairs` pairs under G adjacent panels (`stride`
    /// pairs of weights apart).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn sums<const G: usize>(
        kpairs: usize,
        a16: *const u32,
        w: *const u32,
        stride: usize,
    ) -> [[__m256i; 2]; G] {
        let mut acc = [[_mm256_setzero_si256(); 2]; G];
        for kp in 0..kpairs {
            let av = _mm256_set1_epi32(*a16.add(kp) as i32);
            for (g, pair) in acc.iter_mut().enumerate() {
                let p = w.add(g * stride + kp * PANEL);
                for (v, sum) in pair.iter_mut().enumerate() {
                    let wv = _mm256_loadu_si256(p.add(8 * v) as *const __m256i);
                    *sum = _mm256_add_epi32(*sum, _mm256_madd_epi16(av, wv));
                }
            }
        }
        acc
    }

    /// R rows x 16 columns: int32 sums of `vpmaddwd` products over `kpairs` pairs of
    /// rows of the panel (rows of `a16` are `lda` pairs apart), then scaled and added to
    /// each row's start in float32.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile<const R: usize>(
        kpairs: usize,
        a16: *const u32,
        lda: usize,
        w: *const u32,
        scales: *const f32,
        from: impl Fn(usize) -> *const f32,
        out: *mut f32,
        ldo: usize,
    ) {
        let mut acc = [[_mm256_setzero_si256(); 2]; R];
        for kp in 0..kpairs {
            let w0 = _mm256_loadu_si256(w.add(kp * PANEL) as *const __m256i);
            let w1 = _mm256_loadu_si256(w.add(kp * PANEL + 8) as *const __m256i);
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm256_set1_epi32(*a16.add(r * lda + kp) as i32);
                row[0] = _mm256_add_epi32(row[0], _mm256_madd_epi16(av, w0));
                row[1] = _mm256_add_epi32(row[1], _mm256_madd_epi16(av, w1));
            }
        }
        for (r, row) in acc.iter().enumerate() {
            let src = from(r);
            for (v, x) in row.iter().enumerate() {
                let sum = _mm256_cvtepi32_ps(*x);
                let s = _mm256_loadu_ps(scales.add(v * 8));
                let y = _mm256_fmadd_ps(sum, s, _mm256_loadu_ps(src.add(v * 8)));
                _mm256_storeu_ps(out.add(r * ldo + v * 8), y);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the kernel computes, written plainly: exact integer sums, then one FMA.
    fn reference(a: &[f32], depth: usize, w: &[f32], cols: usize, start: &[f32]) -> Vec<f32> {
        let q = Int16Weights::new(depth, cols.div_ceil(PANEL) * PANEL, |k, j| {
            if j < cols {
                w[k * cols + j]
            } else {
                0.0
            }
        });
        let kpairs = depth.div_ceil(2);
        let rows = a.len() / depth;
        let mut out = vec![0f32; rows * cols];
        for r in 0..rows {
            for j in 0..cols {
                let mut sum = 0i64;
                for k in 0..depth {
                    let pair = q.pairs[((j / PANEL) * kpairs + k / 2) * PANEL + j % PANEL];
                    let wk = (pair >> (16 * (k % 2))) as u16 as i16;
                    sum += wk as i64 * state_step(a[r * depth + k]) as i64;
                }
                assert!(sum.abs() <= i32::MAX as i64);
                out[r * cols + j] = (sum as i32 as f32).mul_add(q.scales[j], start[r * cols + j]);
            }
        }
        out
    }

    fn numbers(n: usize, seed: u64, scale: f32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }

    #[test]
    fn the_largest_sums_fit_in_int32() {
        for depth in [1usize, 2, 127, 128, 129, 256, 1000] {
            let pairs_depth = depth.div_ceil(2) * 2;
            let worst = pairs_depth as i64 * weight_steps(depth) as i64 * STATE_STEPS as i64;
            assert!(worst <= i32::MAX as i64, "{depth}");
        }
        assert_eq!(weight_steps(128), 2048); // 12 bits and a sign for a dense GRU of 128
        assert_eq!(weight_steps(64), 4096); // a member of 64 units

        // No rows at all: every panel spans nothing (and the kernel adds nothing).
        let empty = Int16Weights::new(0, 32, |_, _| 1.0);
        assert_eq!(empty.spans, vec![0..0, 0..0]);
    }

    #[test]
    fn states_round_to_steps_and_stay_in_range() {
        assert_eq!(state_step(1.0), 8191);
        assert_eq!(state_step(-1.0), -8191);
        assert_eq!(state_step(3.0), 8191);
        assert_eq!(state_step(f32::NAN), -8191);
        assert_eq!(state_step(0.5 / 8191.0), 0); // ties to even
        let mut pairs = [0u32; 2];
        state_pairs(&[1.0, -1.0, 0.25], &mut pairs);
        assert_eq!(pairs, [8191 | ((-8191i16 as u16 as u32) << 16), 2048]);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_kernel_computes_the_reference_and_stays_near_f32() {
        if !super::super::int16_available() {
            return;
        }
        let shapes = [
            (1, 128, 384, false),
            (7, 128, 384, false),
            (13, 37, 40, false),
        ];
        let more = [(6, 1, 16, false), (7, 128, 384, true), (2, 37, 40, true)];
        for &(rows, depth, cols, blocks) in shapes.iter().chain(&more) {
            let a = numbers(rows * depth, 1, 0.999);
            let mut w = numbers(depth * cols, 2, 0.3);
            if blocks {
                // Block-diagonal, as a merged ensemble: panels skip their zero rows.
                for (i, x) in w.iter_mut().enumerate() {
                    let (k, j) = (i / cols, i % cols);
                    if (k * 2 / depth) != (j * 2 / cols) {
                        *x = 0.0;
                    }
                }
            }
            let start = numbers(rows * cols, 3, 1.0);
            let padded = cols.div_ceil(PANEL) * PANEL;
            let q = Int16Weights::new(
                depth,
                padded,
                |k, j| if j < cols { w[k * cols + j] } else { 0.0 },
            );
            let mut out = vec![f32::NAN; rows * padded];
            for r in 0..rows {
                out[r * padded..r * padded + cols]
                    .copy_from_slice(&start[r * cols..(r + 1) * cols]);
                out[r * padded + cols..(r + 1) * padded].fill(0.0);
            }
            // SAFETY: AVX2 checked above; shapes as `matmul` asserts them.
            unsafe { matmul_int16(rows, &a, depth, depth, &q, Start::Out, &mut out, padded) };
            let want = reference(&a, depth, &w, cols, &start);
            for r in 0..rows {
                for j in 0..cols {
                    let (x, y) = (out[r * padded + j], want[r * cols + j]);
                    assert_eq!(x.to_bits(), y.to_bits(), "{rows}x{depth}x{cols} [{r},{j}]");
                    let exact: f32 = start[r * cols + j]
                        + (0..depth)
                            .map(|k| a[r * depth + k] * w[k * cols + j])
                            .sum::<f32>();
                    assert!(
                        (x - exact).abs() < 2e-3 * (depth as f32).sqrt(),
                        "{x} vs {exact}"
                    );
                }
            }
        }
    }
}
