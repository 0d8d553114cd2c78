//! The matrix kernel behind the cells: `out += a · w` where `w` is a constant weight
//! matrix packed once into column panels, and `a` a few hundred rows of hidden state.
//! Register-blocked AVX-512 and AVX2+FMA kernels are chosen at run time; a portable
//! loop runs elsewhere. Packing makes each panel's rows contiguous, so the kernel
//! streams weights sequentially (BENCHMARKS.md has what that was measured to gain).

use std::ops::Range;
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

    /// Columns per panel: the width of one register tile.
    fn panel(self) -> usize {
        match self {
            Isa::Avx512 => 64,
            Isa::Avx2 | Isa::Portable => 16,
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

/// Every kernel this CPU can run, widest first.
pub fn available() -> Vec<Isa> {
    match detect() {
        Isa::Avx512 => vec![Isa::Avx512, Isa::Avx2, Isa::Portable],
        Isa::Avx2 => vec![Isa::Avx2, Isa::Portable],
        Isa::Portable => vec![Isa::Portable],
    }
}

fn detect() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        // Every wider kernel also runs the AVX2+FMA gate code, so it requires both.
        let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        if avx2 && is_x86_feature_detected!("avx512f") {
            return Isa::Avx512;
        }
        if avx2 {
            return Isa::Avx2;
        }
    }
    Isa::Portable
}

/// How many columns `Packed::new` pads `cols` columns to (and the kernel writes).
pub fn padded_cols(cols: usize) -> usize {
    let p = isa().panel();
    cols.div_ceil(p) * p
}

/// A (depth × cols) weight matrix in column panels of `isa.panel()` columns, zero-padded
/// to `padded_cols`: panel p holds w[k][p*P .. p*P + P] for k = 0..depth, contiguously.
#[derive(Clone)]
pub struct Packed {
    isa: Isa,
    pub depth: usize,
    pub cols: usize,
    pub padded_cols: usize,
    data: Vec<f32>,
    /// Per panel, the rows k that hold a non-zero weight: products outside add exact
    /// zeros, so the kernels skip them. Dense matrices span all of `depth`; a merged
    /// ensemble's block-diagonal recurrent matrix spans one member's rows a panel.
    spans: Vec<Range<usize>>,
    /// The same weights rounded for a reduced-precision kernel (`with_precision`).
    reduced: Reduced,
}

#[derive(Clone)]
enum Reduced {
    /// The f32 kernel runs.
    None,
    /// Rounded to bf16: per panel and pair of rows k = 2i, 2i + 1, each column's two
    /// values in one u32 (low: row 2i), the pair layout `vdpbf16ps` reads.
    Bf16(Vec<u32>),
    Int16(int16::Int16Weights),
}

/// The number format of a product's operands (sums are float32 either way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    F32,
    /// Weights and states rounded to bfloat16, products summed in float32 (AVX512_BF16).
    Bf16,
    /// Weights rounded to int16 with a scale per column, states to steps of 1/8191,
    /// products summed exactly in int32 (AVX2 `vpmaddwd`; `int16.rs`).
    Int16,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::Int16 => "int16",
        }
    }
}

/// Whether this CPU runs the bf16 kernel (AVX512_BF16, with the AVX-512 kernel chosen).
pub fn bf16_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        isa() == Isa::Avx512 && is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether this CPU runs the int16 kernel (AVX2 and FMA, any x86 kernel but the
/// portable one).
pub fn int16_available() -> bool {
    isa() != Isa::Portable
}

/// Which kernel runs bf16 products here: AMX tiles where the CPU and OS offer them,
/// else AVX512_BF16's `vdpbf16ps`; None where neither does.
pub fn bf16_kernel() -> Option<&'static str> {
    match (bf16_available(), crate::amx::available()) {
        (false, _) => None,
        (true, true) => Some("amx"),
        (true, false) => Some("avx512bf16"),
    }
}

/// The precision `auto` picks for recurrent products of this depth (the hidden size):
/// bf16 where AMX tiles run them, whole tiles deep (faster than f32 in bulk, about as
/// fast for one name: BENCHMARKS.md); int16 where AVX2 is the widest kernel (`vpmaddwd`
/// outruns the FMAs there, in bulk and for one name); f32 elsewhere: `vdpbf16ps` issues
/// at half the FMA rate and pays for single names only, and int16 on AVX-512 CPUs has
/// not been measured against their wider f32 tiles.
pub fn auto_precision(depth: usize) -> Precision {
    if bf16_kernel() == Some("amx") && depth.div_ceil(2).is_multiple_of(crate::amx::TILE_PAIRS) {
        Precision::Bf16
    } else if isa() == Isa::Avx2 {
        Precision::Int16
    } else {
        Precision::F32
    }
}

/// Round to nearest even, as `vcvtneps2bf16` does; NaN stays NaN.
pub fn to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) as u16
}

impl Packed {
    /// Packs row-major `w` (depth × cols) for the kernel this process uses.
    pub fn new(w: &[f32], depth: usize, cols: usize) -> Packed {
        Packed::for_isa(isa(), w, depth, cols)
    }

    pub fn for_isa(isa: Isa, w: &[f32], depth: usize, cols: usize) -> Packed {
        assert_eq!(w.len(), depth * cols);
        let p = isa.panel();
        let padded_cols = cols.div_ceil(p) * p;
        let mut data = vec![0f32; depth * padded_cols];
        for panel in 0..padded_cols / p {
            for k in 0..depth {
                for j in 0..p {
                    let col = panel * p + j;
                    if col < cols {
                        data[(panel * depth + k) * p + j] = w[k * cols + col];
                    }
                }
            }
        }
        let spans = (0..padded_cols / p)
            .map(|panel| {
                let block = &data[panel * depth * p..(panel + 1) * depth * p];
                nonzero_rows(
                    block
                        .chunks_exact(p)
                        .map(|row| row.iter().any(|&x| x != 0.0)),
                )
            })
            .collect();
        Packed {
            isa,
            depth,
            cols,
            padded_cols,
            data,
            spans,
            reduced: Reduced::None,
        }
    }

    /// The weights also rounded for `precision`'s kernel (bf16: `bf16_available` must
    /// hold; int16: `int16_available`); `Precision::F32` drops them.
    pub fn with_precision(mut self, precision: Precision) -> Packed {
        self.reduced = match precision {
            Precision::F32 => Reduced::None,
            Precision::Bf16 => {
                assert!(self.isa == Isa::Avx512 && bf16_available());
                Reduced::Bf16(self.bf16_pairs())
            }
            Precision::Int16 => {
                assert!(int16_available() && self.isa != Isa::Portable);
                let (p, depth, cols) = (self.isa.panel(), self.depth, self.cols);
                let data = &self.data;
                Reduced::Int16(int16::Int16Weights::new(depth, self.padded_cols, |k, j| {
                    if j < cols {
                        data[((j / p) * depth + k) * p + j % p]
                    } else {
                        0.0
                    }
                }))
            }
        };
        self
    }

    pub fn precision(&self) -> Precision {
        match self.reduced {
            Reduced::None => Precision::F32,
            Reduced::Bf16(_) => Precision::Bf16,
            Reduced::Int16(_) => Precision::Int16,
        }
    }

    fn bf16_pairs(&self) -> Vec<u32> {
        let (p, kpairs) = (self.isa.panel(), self.depth.div_ceil(2));
        let mut pairs = vec![0u32; self.padded_cols / p * kpairs * p];
        for panel in 0..self.padded_cols / p {
            let block = &self.data[panel * self.depth * p..(panel + 1) * self.depth * p];
            for k in 0..self.depth {
                for j in 0..p {
                    let half = (to_bf16(block[k * p + j]) as u32) << (16 * (k % 2));
                    pairs[(panel * kpairs + k / 2) * p + j] |= half;
                }
            }
        }
        pairs
    }
}

/// The first to the last row for which `nonzero` holds (an empty range if none does).
pub(crate) fn nonzero_rows(nonzero: impl Iterator<Item = bool>) -> Range<usize> {
    let (mut first, mut end) = (usize::MAX, 0);
    for (k, any) in nonzero.enumerate() {
        if any {
            first = first.min(k);
            end = k + 1;
        }
    }
    if end == 0 {
        0..0
    } else {
        first..end
    }
}

/// out[r][j] += Σ_k a[r * lda + k] · w[k][j] for r < rows and j < w.padded_cols (the
/// padding columns of `out` receive zeros added to whatever they held).
pub fn matmul_acc(rows: usize, a: &[f32], lda: usize, w: &Packed, out: &mut [f32], ldo: usize) {
    matmul(rows, a, lda, w, Start::Out, out, ldo);
}

/// out[r][j] = table[picks[r]][j] + Σ_k a[r * lda + k] · w[k][j], where `table` holds rows
/// of w.padded_cols floats: the kernel starts its sums from the picked row, which saves
/// copying it into `out` first (the cells add a per-letter row to every product).
pub fn matmul_from_table(
    a: &[f32],
    lda: usize,
    w: &Packed,
    table: &[f32],
    picks: &[u8],
    out: &mut [f32],
    ldo: usize,
) {
    let width = w.padded_cols;
    if let Some(&most) = picks.iter().max() {
        assert!(table.len() >= (most as usize + 1) * width);
    }
    matmul(picks.len(), a, lda, w, Start::Table(table, picks), out, ldo);
}

/// Where each output row's sums start.
#[derive(Clone, Copy)]
enum Start<'a> {
    /// From what `out` holds.
    Out,
    /// From row picks[r] of a table of rows w.padded_cols wide.
    Table(&'a [f32], &'a [u8]),
}

fn matmul(
    rows: usize,
    a: &[f32],
    lda: usize,
    w: &Packed,
    start: Start,
    out: &mut [f32],
    ldo: usize,
) {
    if rows == 0 || w.padded_cols == 0 {
        return;
    }
    assert!(lda >= w.depth && ldo >= w.padded_cols);
    assert!(a.len() >= (rows - 1) * lda + w.depth);
    assert!(out.len() >= (rows - 1) * ldo + w.padded_cols);
    #[cfg(target_arch = "x86_64")]
    match &w.reduced {
        Reduced::None => {}
        Reduced::Bf16(pairs) => {
            // SAFETY: pairs exist only where `bf16_available` held (`with_precision`);
            // bounds are asserted above and each tile stays inside them.
            let tiles = crate::amx::available();
            return unsafe { x86::matmul_bf16(rows, a, lda, w, pairs, start, out, ldo, tiles) };
        }
        Reduced::Int16(q) => {
            // SAFETY: as above, with `int16_available`.
            return unsafe { int16::matmul_int16(rows, a, lda, w.depth, q, start, out, ldo) };
        }
    }
    match w.isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the Packed was made for an ISA this CPU runs (`isa` or `available`);
        // bounds are asserted above and each tile stays inside them.
        Isa::Avx512 => unsafe { x86::matmul_avx512(rows, a, lda, w, start, out, ldo) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { x86::matmul_avx2(rows, a, lda, w, start, out, ldo) },
        _ => matmul_portable(rows, a, lda, w, start, out, ldo),
    }
}

fn matmul_portable(
    rows: usize,
    a: &[f32],
    lda: usize,
    w: &Packed,
    start: Start,
    out: &mut [f32],
    ldo: usize,
) {
    let p = w.isa.panel();
    for r in 0..rows {
        if let Start::Table(table, picks) = start {
            let from = picks[r] as usize * w.padded_cols;
            out[r * ldo..r * ldo + w.padded_cols]
                .copy_from_slice(&table[from..from + w.padded_cols]);
        }
        let arow = &a[r * lda..r * lda + w.depth];
        for panel in 0..w.padded_cols / p {
            let orow = &mut out[r * ldo + panel * p..r * ldo + panel * p + p];
            let block = &w.data[panel * w.depth * p..(panel + 1) * w.depth * p];
            let span = w.spans[panel].clone();
            for (k, &av) in arow.iter().enumerate().take(span.end).skip(span.start) {
                // Plain product and sum: `mul_add` is a libm call where FMA is absent.
                for (o, &wv) in orow.iter_mut().zip(&block[k * p..k * p + p]) {
                    *o += av * wv;
                }
            }
        }
    }
}

mod int16;
#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(test)]
mod tests {
    use super::*;
    use std::ops::Range;

    fn naive(
        rows: usize,
        depth: usize,
        cols: usize,
        a: &[f32],
        w: &[f32],
        out: &mut [f32],
        ldo: usize,
    ) {
        for r in 0..rows {
            for j in 0..cols {
                let mut s = out[r * ldo + j] as f64;
                for k in 0..depth {
                    s += a[r * depth + k] as f64 * w[k * cols + j] as f64;
                }
                out[r * ldo + j] = s as f32;
            }
        }
    }

    #[test]
    fn sums_start_from_the_picked_table_rows() {
        let (rows, depth, cols) = (13, 37, 40);
        let a: Vec<f32> = (0..rows * depth).map(|i| (i % 7) as f32 - 3.0).collect();
        let w: Vec<f32> = (0..depth * cols).map(|i| (i % 5) as f32 * 0.5).collect();
        for isa in available() {
            let packed = Packed::for_isa(isa, &w, depth, cols);
            let width = packed.padded_cols;
            let table: Vec<f32> = (0..4 * width).map(|i| i as f32).collect();
            let picks: Vec<u8> = (0..rows).map(|r| (r * 3 % 4) as u8).collect();
            let ldo = width + 5;
            let mut ours = vec![f32::NAN; rows * ldo];
            matmul_from_table(&a, depth, &packed, &table, &picks, &mut ours, ldo);
            let mut theirs = vec![0f32; rows * ldo];
            for r in 0..rows {
                let from = picks[r] as usize * width;
                theirs[r * ldo..r * ldo + width].copy_from_slice(&table[from..from + width]);
            }
            naive(rows, depth, cols, &a, &w, &mut theirs, ldo);
            for r in 0..rows {
                // Exact: small integers and halves.
                assert_eq!(
                    &ours[r * ldo..r * ldo + cols],
                    &theirs[r * ldo..r * ldo + cols]
                );
                let pad = &ours[r * ldo + cols..r * ldo + width];
                assert!(pad
                    .iter()
                    .zip(&theirs[r * ldo + cols..])
                    .all(|(x, y)| x == y));
            }
        }
    }

    #[test]
    fn every_kernel_matches_naive_on_awkward_shapes() {
        let mut seed = 1u64;
        let mut rnd = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        let shapes = [
            (1, 1, 1),
            (1, 128, 384),
            (7, 200, 330),
            (7, 128, 128),
            (13, 57, 200),
            (6, 16, 64),
            (5, 33, 79),
            (12, 128, 384),
            (20, 256, 18),
        ];
        for isa in available() {
            for &(rows, depth, cols) in &shapes {
                let a: Vec<f32> = (0..rows * depth).map(|_| rnd()).collect();
                let w: Vec<f32> = (0..depth * cols).map(|_| rnd()).collect();
                let packed = Packed::for_isa(isa, &w, depth, cols);
                let ldo = packed.padded_cols + 3;
                let init: Vec<f32> = (0..rows * ldo).map(|_| rnd()).collect();
                let mut ours = init.clone();
                let mut theirs = init.clone();
                matmul_acc(rows, &a, depth, &packed, &mut ours, ldo);
                naive(rows, depth, cols, &a, &w, &mut theirs, ldo);
                for r in 0..rows {
                    for j in 0..ldo {
                        let (x, y) = (ours[r * ldo + j], theirs[r * ldo + j]);
                        assert!(
                            (x - y).abs() < 1e-4,
                            "{isa:?} {rows}x{depth}x{cols} [{r},{j}]: {x} vs {y}"
                        );
                    }
                }
            }
        }
    }

    /// A merged ensemble's recurrent matrix: member m's 3 gates' columns read only its
    /// own rows, so each panel spans part of the depth; every kernel, and int16, must
    /// give what the whole depth gives (the skipped products are exact zeros).
    #[test]
    fn block_diagonal_matrices_skip_their_zero_rows() {
        let (members, h) = (4, 32);
        let (depth, cols) = (members * h, 3 * members * h);
        let w: Vec<f32> = (0..depth * cols)
            .map(|i| {
                let (k, j) = (i / cols, i % cols);
                let same = k / h == (j % (members * h)) / h;
                if same {
                    ((i * 53 % 97) as f32 - 48.0) / 31.0
                } else {
                    0.0
                }
            })
            .collect();
        let mut kinds: Vec<Packed> = available()
            .into_iter()
            .map(|isa| Packed::for_isa(isa, &w, depth, cols))
            .collect();
        assert!(kinds.iter().all(|p| p.spans.iter().all(|s| s.len() == h)));
        if int16_available() {
            kinds.push(Packed::new(&w, depth, cols).with_precision(Precision::Int16));
        }
        for rows in [1, 2, 3, 7, 13] {
            let a: Vec<f32> = (0..rows * depth)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 64.0)
                .collect();
            for packed in &kinds {
                let ldo = packed.padded_cols;
                let table: Vec<f32> = (0..2 * ldo).map(|i| (i % 9) as f32 * 0.125).collect();
                let picks: Vec<u8> = (0..rows).map(|r| (r % 2) as u8).collect();
                let mut ours = vec![f32::NAN; rows * ldo];
                matmul_from_table(&a, depth, packed, &table, &picks, &mut ours, ldo);
                let mut dense = ours.clone();
                for r in 0..rows {
                    let from = picks[r] as usize * ldo;
                    dense[r * ldo..(r + 1) * ldo].copy_from_slice(&table[from..from + ldo]);
                }
                naive(rows, depth, cols, &a, &w, &mut dense, ldo);
                let tolerance = if packed.precision() == Precision::Int16 {
                    0.05
                } else {
                    1e-4
                };
                for r in 0..rows {
                    for j in 0..cols {
                        let (x, y) = (ours[r * ldo + j], dense[r * ldo + j]);
                        assert!(
                            (x - y).abs() < tolerance,
                            "{:?} {rows} [{r},{j}]: {x} vs {y}",
                            packed.isa
                        );
                    }
                }
            }
        }
    }

    /// States (rows × depth) and weights (depth × cols) of assorted magnitudes, most of
    /// them not exact in bf16.
    fn bf16_operands(rows: usize, depth: usize, cols: usize) -> (Vec<f32>, Vec<f32>) {
        let a = (0..rows * depth)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 29.0)
            .collect();
        let w = (0..depth * cols)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) / 31.0)
            .collect();
        (a, w)
    }

    #[test]
    fn the_bf16_kernel_sums_the_rounded_products() {
        if !bf16_available() {
            return; // nothing to check on this CPU
        }
        let round = |x: f32| f32::from_bits((to_bf16(x) as u32) << 16);
        // Largest first: the state buffer is reused, so later shapes meet stale pairs.
        for (rows, depth, cols) in [(7, 128, 384), (13, 37, 40), (1, 1, 1), (6, 64, 130)] {
            let (a, w) = bf16_operands(rows, depth, cols);
            let packed = Packed::new(&w, depth, cols).with_precision(Precision::Bf16);
            assert_eq!(packed.precision(), Precision::Bf16);
            let ldo = packed.padded_cols + 3;
            let table: Vec<f32> = (0..2 * packed.padded_cols)
                .map(|i| i as f32 * 0.25)
                .collect();
            let picks: Vec<u8> = (0..rows).map(|r| (r % 2) as u8).collect();
            let mut ours = vec![f32::NAN; rows * ldo];
            matmul_from_table(&a, depth, &packed, &table, &picks, &mut ours, ldo);
            let (ar, wr): (Vec<f32>, Vec<f32>) = (
                a.iter().map(|&x| round(x)).collect(),
                w.iter().map(|&x| round(x)).collect(),
            );
            let mut theirs = vec![0f32; rows * ldo];
            for r in 0..rows {
                let from = picks[r] as usize * packed.padded_cols;
                theirs[r * ldo..r * ldo + cols].copy_from_slice(&table[from..from + cols]);
            }
            naive(rows, depth, cols, &ar, &wr, &mut theirs, ldo);
            for r in 0..rows {
                for j in 0..cols {
                    let (x, y) = (ours[r * ldo + j], theirs[r * ldo + j]);
                    assert!(
                        (x - y).abs() <= 1e-4 * y.abs().max(1.0),
                        "{rows}x{depth}x{cols} [{r}][{j}]: {x} vs {y}"
                    );
                }
            }
        }
        assert_eq!(to_bf16(1.0), 0x3f80);
        assert_eq!(to_bf16(f32::from_bits(0x3f80_8000)), 0x3f80); // a tie goes to even
        assert_eq!(to_bf16(f32::from_bits(0x3f81_8000)), 0x3f82);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn amx_tiles_and_the_bf16_kernel_agree() {
        if !bf16_available() || !crate::amx::available() {
            return; // nothing to compare on this CPU
        }
        for (rows, depth, cols) in [
            (1, 128, 384),
            (5, 64, 130),
            (16, 32, 64),
            (31, 128, 384),
            (16, 128, 384),
            (17, 64, 130),
            (40, 128, 384),
        ] {
            let (a, w) = bf16_operands(rows, depth, cols);
            let packed = Packed::new(&w, depth, cols).with_precision(Precision::Bf16);
            let Reduced::Bf16(pairs) = &packed.reduced else {
                unreachable!()
            };
            let ldo = packed.padded_cols + 3;
            let table: Vec<f32> = (0..3 * packed.padded_cols)
                .map(|i| i as f32 * 0.25)
                .collect();
            // Rows from different table rows (copied first), and all from one (a bias,
            // which the tiles load with stride 0).
            for picks in [(0..rows).map(|r| (r % 3) as u8).collect(), vec![1u8; rows]] {
                let start = Start::Table(&table, &picks);
                let mut kernels = [true, false].map(|tiles| {
                    let mut out = vec![f32::NAN; rows * ldo];
                    // SAFETY: both kernels are available (checked above).
                    unsafe {
                        x86::matmul_bf16(
                            rows, &a, depth, &packed, pairs, start, &mut out, ldo, tiles,
                        )
                    };
                    out
                });
                let [tiles, rows_kernel] = &mut kernels;
                for r in 0..rows {
                    for j in 0..cols {
                        let (x, y) = (tiles[r * ldo + j], rows_kernel[r * ldo + j]);
                        // The same rounded products, summed in another order.
                        assert!(
                            (x - y).abs() <= 1e-5 * y.abs().max(1.0) * depth as f32,
                            "{rows}x{depth}x{cols} [{r}][{j}]: {x} vs {y}"
                        );
                    }
                }
            }
        }
    }

    /// Checks that each of the `picked` runs of rows sums to the same bits on its own
    /// as among all the rows of `a`, every row starting from one bias row.
    fn rows_alike_alone(packed: &Packed, a: &[f32], picked: &[Range<usize>], what: &str) {
        let (depth, width) = (packed.depth, packed.padded_cols);
        let bias: Vec<f32> = (0..width).map(|i| i as f32 * 0.125).collect();
        let run = |a: &[f32]| {
            let rows = a.len() / depth;
            let mut out = vec![0f32; rows * width];
            matmul_from_table(a, depth, packed, &bias, &vec![0u8; rows], &mut out, width);
            out
        };
        let together = run(a);
        for rows in picked {
            let alone = run(&a[rows.start * depth..rows.end * depth]);
            assert_eq!(
                &together[rows.start * width..rows.end * width],
                &alone[..],
                "{what} rows {rows:?}"
            );
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn a_row_sums_alike_in_any_tile() {
        if !bf16_available() || !crate::amx::available() {
            return; // nothing to check on this CPU
        }
        let (rows, depth, cols) = (37, 128, 384);
        let (a, w) = bf16_operands(rows, depth, cols);
        let packed = Packed::new(&w, depth, cols).with_precision(Precision::Bf16);
        // Bit for bit: in a whole tile, in the last short one, or on its own.
        let picked = [0..1, 15..16, 16..17, 31..32, 32..33, 36..37];
        rows_alike_alone(&packed, &a, &picked, "amx");
    }

    #[test]
    fn a_row_alone_sums_as_in_a_block() {
        // A row's sums must not depend on how many rows share its call (answers are
        // kept across calls and blocks): the same bits alone, or two or three together
        // (AVX2 runs one or two rows over several panels at once), as in a block of six.
        let (rows, depth, cols) = (9, 128, 330);
        let (a, w) = bf16_operands(rows, depth, cols);
        let picked = [0..1, 5..6, 6..7, 8..9, 0..2, 4..6, 6..9, 1..4];
        for isa in available() {
            let packed = Packed::for_isa(isa, &w, depth, cols);
            rows_alike_alone(&packed, &a, &picked, isa.name());
        }
    }
}
