//! The matrix kernel behind the cells: `out += a · w` for small row blocks, with
//! register-blocked AVX-512 and AVX2+FMA kernels chosen at run time, and a portable
//! loop elsewhere. Layouts are row-major: a (rows × depth), w (depth × cols),
//! out (rows × cols); `w` is the transposed weight so each k reads one contiguous row.

use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2,
    Portable,
}

impl Isa {
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2+fma",
            Isa::Portable => "portable",
        }
    }
}

static ISA: OnceLock<Isa> = OnceLock::new();

/// The widest kernel this CPU runs; `NAMELANG_ISA=avx2|portable` narrows it (for tests).
pub fn isa() -> Isa {
    *ISA.get_or_init(|| {
        let detected = detect();
        match std::env::var("NAMELANG_ISA").as_deref() {
            Ok("portable") => Isa::Portable,
            Ok("avx2") if detected != Isa::Portable => Isa::Avx2,
            _ => detected,
        }
    })
}

fn detect() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            return Isa::Avx512;
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return Isa::Avx2;
        }
    }
    Isa::Portable
}

/// A row-major matrix view: `rows × cols` with row stride `ld`.
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub ld: usize,
}

/// out[r][j] += Σ_k a[r][k] · w[k][j] for r < rows, j < cols, k < depth.
#[allow(clippy::too_many_arguments)]
pub fn matmul_acc(
    rows: usize,
    depth: usize,
    cols: usize,
    a: Mat<'_>,
    w: Mat<'_>,
    out: &mut [f32],
    ldo: usize,
) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(a.data.len() >= (rows - 1) * a.ld + depth);
    assert!(depth == 0 || w.data.len() >= (depth - 1) * w.ld + cols);
    assert!(out.len() >= (rows - 1) * ldo + cols);
    match isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has the features (checked by `isa`); bounds asserted above.
        Isa::Avx512 => unsafe { x86::matmul_avx512(rows, depth, cols, &a, &w, out, ldo) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { x86::matmul_avx2(rows, depth, cols, &a, &w, out, ldo) },
        _ => matmul_portable(rows, depth, cols, &a, &w, out, ldo, 0),
    }
}

#[allow(clippy::too_many_arguments)]
fn matmul_portable(
    rows: usize,
    depth: usize,
    cols: usize,
    a: &Mat<'_>,
    w: &Mat<'_>,
    out: &mut [f32],
    ldo: usize,
    first_col: usize,
) {
    for r in 0..rows {
        let arow = &a.data[r * a.ld..r * a.ld + depth];
        let orow = &mut out[r * ldo + first_col..r * ldo + cols];
        for (k, &av) in arow.iter().enumerate() {
            let wrow = &w.data[k * w.ld + first_col..k * w.ld + cols];
            for (o, &wv) in orow.iter_mut().zip(wrow) {
                *o += av * wv; // not mul_add: a libm call without FMA
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{matmul_portable, Mat};
    use std::arch::x86_64::*;

    const ROWS: usize = 6;

    /// R rows × V vectors of 16 columns, accumulated in registers over all of `depth`.
    #[target_feature(enable = "avx512f")]
    unsafe fn tile512<const R: usize, const V: usize>(
        depth: usize,
        a: *const f32,
        lda: usize,
        w: *const f32,
        ldw: usize,
        out: *mut f32,
        ldo: usize,
    ) {
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        for (r, row) in acc.iter_mut().enumerate() {
            for (v, x) in row.iter_mut().enumerate() {
                *x = _mm512_loadu_ps(out.add(r * ldo + v * 16));
            }
        }
        for k in 0..depth {
            let mut wv = [_mm512_setzero_ps(); V];
            for (v, x) in wv.iter_mut().enumerate() {
                *x = _mm512_loadu_ps(w.add(k * ldw + v * 16));
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
        ldw: usize,
        out: *mut f32,
        ldo: usize,
    ) {
        let mut acc = [[_mm256_setzero_ps(); V]; R];
        for (r, row) in acc.iter_mut().enumerate() {
            for (v, x) in row.iter_mut().enumerate() {
                *x = _mm256_loadu_ps(out.add(r * ldo + v * 8));
            }
        }
        for k in 0..depth {
            let mut wv = [_mm256_setzero_ps(); V];
            for (v, x) in wv.iter_mut().enumerate() {
                *x = _mm256_loadu_ps(w.add(k * ldw + v * 8));
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm256_set1_ps(*a.add(r * lda + k));
                for (x, wx) in row.iter_mut().zip(wv.iter()) {
                    *x = _mm256_fmadd_ps(av, *wx, *x);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (v, x) in row.iter().enumerate() {
                _mm256_storeu_ps(out.add(r * ldo + v * 8), *x);
            }
        }
    }

    macro_rules! row_blocks {
        ($tile:ident, $v:literal, $rows:expr, $depth:expr, $a:expr, $w:expr, $out:expr, $ldo:expr, $j:expr) => {{
            let (a, w, out) = ($a, $w, $out);
            let mut r = 0;
            while r + ROWS <= $rows {
                $tile::<ROWS, $v>(
                    $depth,
                    a.data.as_ptr().add(r * a.ld),
                    a.ld,
                    w.data.as_ptr().add($j),
                    w.ld,
                    out.as_mut_ptr().add(r * $ldo + $j),
                    $ldo,
                );
                r += ROWS;
            }
            let (ap, op) = (
                a.data.as_ptr().add(r * a.ld),
                out.as_mut_ptr().add(r * $ldo + $j),
            );
            let wp = w.data.as_ptr().add($j);
            match $rows - r {
                1 => $tile::<1, $v>($depth, ap, a.ld, wp, w.ld, op, $ldo),
                2 => $tile::<2, $v>($depth, ap, a.ld, wp, w.ld, op, $ldo),
                3 => $tile::<3, $v>($depth, ap, a.ld, wp, w.ld, op, $ldo),
                4 => $tile::<4, $v>($depth, ap, a.ld, wp, w.ld, op, $ldo),
                5 => $tile::<5, $v>($depth, ap, a.ld, wp, w.ld, op, $ldo),
                _ => {}
            }
        }};
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn matmul_avx512(
        rows: usize,
        depth: usize,
        cols: usize,
        a: &Mat<'_>,
        w: &Mat<'_>,
        out: &mut [f32],
        ldo: usize,
    ) {
        let mut j = 0;
        while j + 64 <= cols {
            row_blocks!(tile512, 4, rows, depth, a, w, &mut *out, ldo, j);
            j += 64;
        }
        while j + 16 <= cols {
            row_blocks!(tile512, 1, rows, depth, a, w, &mut *out, ldo, j);
            j += 16;
        }
        if j < cols {
            matmul_portable(rows, depth, cols, a, w, out, ldo, j);
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn matmul_avx2(
        rows: usize,
        depth: usize,
        cols: usize,
        a: &Mat<'_>,
        w: &Mat<'_>,
        out: &mut [f32],
        ldo: usize,
    ) {
        let mut j = 0;
        while j + 16 <= cols {
            row_blocks!(tile256, 2, rows, depth, a, w, &mut *out, ldo, j);
            j += 16;
        }
        while j + 8 <= cols {
            row_blocks!(tile256, 1, rows, depth, a, w, &mut *out, ldo, j);
            j += 8;
        }
        if j < cols {
            matmul_portable(rows, depth, cols, a, w, out, ldo, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(rows: usize, depth: usize, cols: usize, a: &[f32], w: &[f32], out: &mut [f32]) {
        for r in 0..rows {
            for j in 0..cols {
                let mut s = out[r * cols + j] as f64;
                for k in 0..depth {
                    s += a[r * depth + k] as f64 * w[k * cols + j] as f64;
                }
                out[r * cols + j] = s as f32;
            }
        }
    }

    #[test]
    fn matches_naive_on_awkward_shapes() {
        let mut seed = 1u64;
        let mut rnd = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        for &(rows, depth, cols) in &[
            (1, 1, 1),
            (7, 128, 128),
            (13, 57, 200),
            (6, 16, 64),
            (5, 33, 79),
            (12, 128, 384),
        ] {
            let a: Vec<f32> = (0..rows * depth).map(|_| rnd()).collect();
            let w: Vec<f32> = (0..depth * cols).map(|_| rnd()).collect();
            let init: Vec<f32> = (0..rows * cols).map(|_| rnd()).collect();
            let mut ours = init.clone();
            let mut theirs = init.clone();
            matmul_acc(
                rows,
                depth,
                cols,
                Mat {
                    data: &a,
                    ld: depth,
                },
                Mat { data: &w, ld: cols },
                &mut ours,
                cols,
            );
            naive(rows, depth, cols, &a, &w, &mut theirs);
            for (x, y) in ours.iter().zip(&theirs) {
                assert!((x - y).abs() < 1e-4, "{rows}x{depth}x{cols}: {x} vs {y}");
            }
        }
    }
}
