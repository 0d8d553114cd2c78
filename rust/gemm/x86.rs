//! The x86 kernels behind `matmul`: register tiles for AVX-512 and AVX2+FMA, the
//! bf16 products (AVX512_BF16 rows, AMX tiles), chosen by `super::matmul`.

use super::{Packed, Start};
use crate::amx;
use std::arch::x86_64::*;

const ROWS: usize = 6;

/// R rows × V vectors, accumulated in registers over all of `depth` from row r's
/// start `from(r)`, then stored to `out`; `w` is one panel, V vectors wide, rows
/// contiguous.
#[target_feature(enable = "avx512f")]
unsafe fn tile512<const R: usize, const V: usize>(
    depth: usize,
    a: *const f32,
    lda: usize,
    w: *const f32,
    from: impl Fn(usize) -> *const f32,
    out: *mut f32,
    ldo: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); V]; R];
    for (r, row) in acc.iter_mut().enumerate() {
        let src = from(r);
        for (v, x) in row.iter_mut().enumerate() {
            *x = _mm512_loadu_ps(src.add(v * 16));
        }
    }
    for k in 0..depth {
        let mut wv = [_mm512_setzero_ps(); V];
        for (v, x) in wv.iter_mut().enumerate() {
            *x = _mm512_loadu_ps(w.add((k * V + v) * 16));
        }
        for (r, row) in acc.iter_mut().enumerate() {
            let av = _mm512_set1_ps(*a.add(r * lda + k));
            for (x, wx) in row.iter_mut().zip(wv.iter()) {
                *x = _mm512_fmadd_ps(av, *wx, *x);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (v, x) in row.iter().enumerate() {
            _mm512_storeu_ps(out.add(r * ldo + v * 16), *x);
        }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn tile256<const R: usize, const V: usize>(
    depth: usize,
    a: *const f32,
    lda: usize,
    w: *const f32,
    from: impl Fn(usize) -> *const f32,
    out: *mut f32,
    ldo: usize,
) {
    let mut acc = [[_mm256_setzero_ps(); V]; R];
    for (r, row) in acc.iter_mut().enumerate() {
        let src = from(r);
        for (v, x) in row.iter_mut().enumerate() {
            *x = _mm256_loadu_ps(src.add(v * 8));
        }
    }
    let step = |acc: &mut [[__m256; V]; R], k: usize| {
        let mut wv = [_mm256_setzero_ps(); V];
        for (v, x) in wv.iter_mut().enumerate() {
            *x = _mm256_loadu_ps(w.add((k * V + v) * 8));
        }
        for (r, row) in acc.iter_mut().enumerate() {
            let av = _mm256_broadcast_ss(&*a.add(r * lda + k));
            for (x, wx) in row.iter_mut().zip(wv.iter()) {
                *x = _mm256_fmadd_ps(av, *wx, *x);
            }
        }
    };
    // Four steps per iteration: the rows' addresses are computed once for four
    // broadcasts each (one step per iteration spent a chain of adds on them).
    let mut k = 0;
    while k + 4 <= depth {
        step(&mut acc, k);
        step(&mut acc, k + 1);
        step(&mut acc, k + 2);
        step(&mut acc, k + 3);
        k += 4;
    }
    while k < depth {
        step(&mut acc, k);
        k += 1;
    }
    for (r, row) in acc.iter().enumerate() {
        for (v, x) in row.iter().enumerate() {
            _mm256_storeu_ps(out.add(r * ldo + v * 8), *x);
        }
    }
}

/// Where row `r`'s sums for columns `col..` start.
#[inline(always)]
pub(super) unsafe fn start_of(
    start: Start,
    out: *const f32,
    ldo: usize,
    width: usize,
    r: usize,
    col: usize,
) -> *const f32 {
    match start {
        Start::Out => out.add(r * ldo + col),
        Start::Table(table, picks) => table.as_ptr().add(picks[r] as usize * width + col),
    }
}

/// One row block (`R` rows from `r`) under one panel.
macro_rules! tile_at {
    ($tile:ident, $v:literal, $p:expr, $n:expr, $r:expr, $panel:expr, $a:expr, $lda:expr, $w:expr, $start:expr, $out:expr, $ldo:expr) => {{
        let p = $p;
        // Only the panel's rows with a weight (its span; all of them when dense).
        let (k0, depth) = ($w.spans[$panel].start, $w.spans[$panel].len());
        let ap = $a.as_ptr().add($r * $lda + k0);
        let wp = $w.data.as_ptr().add(($panel * $w.depth + k0) * p);
        let op = $out.as_mut_ptr().add($r * $ldo + $panel * p);
        let (o, width) = ($out.as_ptr(), $w.padded_cols);
        let from = |i: usize| start_of($start, o, $ldo, width, $r + i, $panel * p);
        match $n {
            6 => $tile::<6, $v>(depth, ap, $lda, wp, from, op, $ldo),
            5 => $tile::<5, $v>(depth, ap, $lda, wp, from, op, $ldo),
            4 => $tile::<4, $v>(depth, ap, $lda, wp, from, op, $ldo),
            3 => $tile::<3, $v>(depth, ap, $lda, wp, from, op, $ldo),
            2 => $tile::<2, $v>(depth, ap, $lda, wp, from, op, $ldo),
            1 => $tile::<1, $v>(depth, ap, $lda, wp, from, op, $ldo),
            _ => {}
        }
    }};
}

macro_rules! sweep {
    ($tile:ident, $v:literal, $rows:expr, $a:expr, $lda:expr, $w:expr, $start:expr, $out:expr, $ldo:expr, $p:expr) => {{
        let panels = $w.padded_cols / $p;
        // Few wide panels: keep a row block in registers and sweep the panels (the
        // weights stream from L2); else sweep row blocks under each panel (it stays
        // in L1).
        if $w.depth * $w.padded_cols > 128 * 128 {
            let mut r = 0;
            while r < $rows {
                let n = ROWS.min($rows - r);
                for panel in 0..panels {
                    tile_at!($tile, $v, $p, n, r, panel, $a, $lda, $w, $start, $out, $ldo);
                }
                r += n;
            }
        } else {
            for panel in 0..panels {
                let mut r = 0;
                while r < $rows {
                    let n = ROWS.min($rows - r);
                    tile_at!($tile, $v, $p, n, r, panel, $a, $lda, $w, $start, $out, $ldo);
                    r += n;
                }
            }
        }
    }};
}

#[target_feature(enable = "avx512f")]
pub(super) unsafe fn matmul_avx512(
    rows: usize,
    a: &[f32],
    lda: usize,
    w: &Packed,
    start: Start,
    out: &mut [f32],
    ldo: usize,
) {
    sweep!(tile512, 4, rows, a, lda, w, start, out, ldo, 64);
}

/// R rows × 4 vectors (64 columns) of bf16 products summed in float32: `a` holds each
/// row's states as bf16 pairs (`kpairs` u32 a row), `w` one panel of weight pairs.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn tile_bf16<const R: usize>(
    kpairs: usize,
    a: *const u32,
    w: *const u32,
    from: impl Fn(usize) -> *const f32,
    out: *mut f32,
    ldo: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); 4]; R];
    for (r, row) in acc.iter_mut().enumerate() {
        let src = from(r);
        for (v, x) in row.iter_mut().enumerate() {
            *x = _mm512_loadu_ps(src.add(v * 16));
        }
    }
    for kp in 0..kpairs {
        let mut wv = [_mm512_setzero_si512(); 4];
        for (v, x) in wv.iter_mut().enumerate() {
            *x = _mm512_loadu_si512(w.add((kp * 4 + v) * 16).cast());
        }
        for (r, row) in acc.iter_mut().enumerate() {
            let av: __m512bh =
                std::mem::transmute(_mm512_set1_epi32(*a.add(r * kpairs + kp) as i32));
            for (x, wx) in row.iter_mut().zip(wv.iter()) {
                *x = _mm512_dpbf16_ps(*x, av, std::mem::transmute::<__m512i, __m512bh>(*wx));
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (v, x) in row.iter().enumerate() {
            _mm512_storeu_ps(out.add(r * ldo + v * 16), *x);
        }
    }
}

/// A row of states as bf16 pairs, 32 at a time with `vcvtne2ps2bf16` (which rounds
/// to nearest even, as `to_bf16` does for the tail).
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn bf16_row(row: &[f32], pairs: &mut [u32]) {
    let mut k = 0;
    while k + 32 <= row.len() {
        let lo = _mm512_loadu_ps(row.as_ptr().add(k));
        let hi = _mm512_loadu_ps(row.as_ptr().add(k + 16));
        let both: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
        _mm512_storeu_si512(pairs.as_mut_ptr().add(k / 2).cast(), both);
        k += 32;
    }
    pairs[k / 2..].fill(0); // the buffer is reused: the tail's pairs are built by ors
    for (k, &x) in row.iter().enumerate().skip(k) {
        pairs[k / 2] |= (super::to_bf16(x) as u32) << (16 * (k % 2));
    }
}

/// `matmul` with bf16 operands: each row of `a` rounded to bf16 pairs once, then
/// summed on AMX tiles (`tiles`, where the depth is whole tiles) or in row blocks
/// swept under the panels as the f32 kernel does.
#[allow(clippy::too_many_arguments)] // matmul's arguments, the weight pairs, the kernel
#[target_feature(enable = "avx512f,avx512bf16")]
pub(super) unsafe fn matmul_bf16(
    rows: usize,
    a: &[f32],
    lda: usize,
    w: &Packed,
    pairs: &[u32],
    start: Start,
    out: &mut [f32],
    ldo: usize,
    tiles: bool,
) {
    let kpairs = w.depth.div_ceil(2);
    // Tiles for every row count, one name included: the two kernels round their
    // sums differently in the last bit, and a row's answer must not depend on how
    // many rows share its call (shared prefixes, answers kept across blocks).
    let tiles = tiles && kpairs.is_multiple_of(amx::TILE_PAIRS);
    let padded = if tiles { amx::padded_rows(rows) } else { rows };
    let len = padded * kpairs;
    let mut buffer = STATE_PAIRS.take();
    if buffer.len() < len {
        buffer.resize(len, 0);
    }
    for r in 0..rows {
        bf16_row(
            &a[r * lda..r * lda + w.depth],
            &mut buffer[r * kpairs..(r + 1) * kpairs],
        );
    }
    buffer[rows * kpairs..len].fill(0); // the rows that pad the last tile
    let a16 = &buffer[..len];
    if tiles {
        matmul_tiles(rows, a16, kpairs, w, pairs, start, out, ldo);
    } else {
        matmul_rows_bf16(rows, a16, kpairs, w, pairs, start, out, ldo);
    }
    STATE_PAIRS.set(buffer);
}

thread_local! {
    // The states as bf16 pairs: one buffer a thread, reused by every product (a fresh
    // zeroed one per call was 3-5% of a one-name forward in allocation and memset).
    static STATE_PAIRS: std::cell::Cell<Vec<u32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The row-kernel branch of `matmul_bf16`: row blocks swept under the panels.
#[allow(clippy::too_many_arguments)] // matmul_bf16's arguments, its rows as pairs
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn matmul_rows_bf16(
    rows: usize,
    a16: &[u32],
    kpairs: usize,
    w: &Packed,
    pairs: &[u32],
    start: Start,
    out: &mut [f32],
    ldo: usize,
) {
    let p = 64;
    let (o, width) = (out.as_ptr(), w.padded_cols);
    let mut r = 0;
    while r < rows {
        let n = ROWS.min(rows - r);
        for panel in 0..w.padded_cols / p {
            let ap = a16.as_ptr().add(r * kpairs);
            let wp = pairs.as_ptr().add(panel * kpairs * p);
            let op = out.as_mut_ptr().add(r * ldo + panel * p);
            let from = |i: usize| start_of(start, o, ldo, width, r + i, panel * p);
            match n {
                6 => tile_bf16::<6>(kpairs, ap, wp, from, op, ldo),
                5 => tile_bf16::<5>(kpairs, ap, wp, from, op, ldo),
                4 => tile_bf16::<4>(kpairs, ap, wp, from, op, ldo),
                3 => tile_bf16::<3>(kpairs, ap, wp, from, op, ldo),
                2 => tile_bf16::<2>(kpairs, ap, wp, from, op, ldo),
                _ => tile_bf16::<1>(kpairs, ap, wp, from, op, ldo),
            }
        }
        r += n;
    }
}

/// The AMX branch of `matmul_bf16`: where every row starts from one table row (a
/// bias), the tiles read it in place; other starts are copied into `out` first.
#[allow(clippy::too_many_arguments)] // matmul_bf16's arguments, its rows as pairs
unsafe fn matmul_tiles(
    rows: usize,
    a16: &[u32],
    kpairs: usize,
    w: &Packed,
    pairs: &[u32],
    start: Start,
    out: &mut [f32],
    ldo: usize,
) {
    let width = w.padded_cols;
    let same = match start {
        Start::Table(table, picks) if picks.iter().all(|&x| x == picks[0]) => {
            Some(&table[picks[0] as usize * width..][..width])
        }
        Start::Table(table, picks) => {
            for (r, &pick) in picks.iter().enumerate() {
                let from = &table[pick as usize * width..][..width];
                out[r * ldo..r * ldo + width].copy_from_slice(from);
            }
            None
        }
        Start::Out => None,
    };
    amx::matmul(rows, same, a16, kpairs, pairs, width / 64, out, ldo);
}

#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn matmul_avx2(
    rows: usize,
    a: &[f32],
    lda: usize,
    w: &Packed,
    start: Start,
    out: &mut [f32],
    ldo: usize,
) {
    let few = rows % ROWS;
    if few == 0 || few > 2 {
        sweep!(tile256, 2, rows, a, lda, w, start, out, ldo, 16);
        return;
    }
    let full = rows - few;
    sweep!(tile256, 2, full, a, lda, w, start, out, ldo, 16);
    few_rows256(full, few, a, lda, w, start, out, ldo);
}

/// The last one or two rows (from row `r`) of any matrix, several panels at a
/// time: one 16-column panel gives a row only two chains of dependent FMAs (4-5
/// cycles of latency each on AVX2), which left one name's product waiting on them;
/// four panels for one row, two for two, give eight chains. Each column is summed in
/// the same order as by `tile256`, so a row gets the same bits whatever shares its
/// call. (Three rows already have six chains; twelve ran slower, BENCHMARKS.md.)
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn few_rows256(
    r: usize,
    n: usize,
    a: &[f32],
    lda: usize,
    w: &Packed,
    start: Start,
    out: &mut [f32],
    ldo: usize,
) {
    let (panels, g) = (w.padded_cols / 16, 4 / n);
    let (stride, width) = (w.depth * 16, w.padded_cols);
    let mut panel = 0;
    while panel < panels {
        // A group shares one span (the panels of one member of a merged ensemble do).
        let span = w.spans[panel].clone();
        let alike = panel + g <= panels && w.spans[panel..panel + g].iter().all(|s| *s == span);
        let take = if alike { g } else { 1 };
        let ap = a.as_ptr().add(r * lda + span.start);
        let wp = w.data.as_ptr().add(panel * stride + span.start * 16);
        let op = out.as_mut_ptr().add(r * ldo + panel * 16);
        let o = out.as_ptr();
        let from = |i: usize| start_of(start, o, ldo, width, r + i, panel * 16);
        let depth = span.len();
        match (n, take) {
            (1, 4) => group256::<1, 4>(depth, ap, lda, wp, stride, from, op, ldo),
            (2, 2) => group256::<2, 2>(depth, ap, lda, wp, stride, from, op, ldo),
            // A panel left over: the one-panel tile.
            (1, _) => tile256::<1, 2>(depth, ap, lda, wp, from, op, ldo),
            _ => tile256::<2, 2>(depth, ap, lda, wp, from, op, ldo),
        }
        panel += take;
    }
}

/// R rows × G adjacent panels (two vectors each, `stride` floats apart in `w`),
/// accumulated in registers over all of `depth` from row r's start `from(r)`.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn group256<const R: usize, const G: usize>(
    depth: usize,
    a: *const f32,
    lda: usize,
    w: *const f32,
    stride: usize,
    from: impl Fn(usize) -> *const f32,
    out: *mut f32,
    ldo: usize,
) {
    let mut acc = [[[_mm256_setzero_ps(); 2]; G]; R];
    for (r, row) in acc.iter_mut().enumerate() {
        let src = from(r);
        for (g, panel) in row.iter_mut().enumerate() {
            for (v, x) in panel.iter_mut().enumerate() {
                *x = _mm256_loadu_ps(src.add(g * 16 + v * 8));
            }
        }
    }
    for k in 0..depth {
        for (r, row) in acc.iter_mut().enumerate() {
            let av = _mm256_broadcast_ss(&*a.add(r * lda + k));
            for (g, panel) in row.iter_mut().enumerate() {
                for (v, x) in panel.iter_mut().enumerate() {
                    let wv = _mm256_loadu_ps(w.add(g * stride + k * 16 + v * 8));
                    *x = _mm256_fmadd_ps(av, wv, *x);
                }
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (g, panel) in row.iter().enumerate() {
            for (v, x) in panel.iter().enumerate() {
                _mm256_storeu_ps(out.add(r * ldo + g * 16 + v * 8), *x);
            }
        }
    }
}
