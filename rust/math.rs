//! Elementwise functions for the gates and the softmax, written branch-free so the
//! compiler vectorises loops over slices.

/// exp(x) for f32 with relative error under 3e-7 on [-87, 88]; clamped outside.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // The 1.5 * 2^23 rounding trick keeps this free of libm calls.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    // The rounded integer sits in the low mantissa bits of `shifted`: reading it from
    // the bits avoids a saturating float-to-int cast, which does not vectorise.
    let n_int = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    // Plain products and sums: `mul_add` is a libm call where FMA is absent.
    let r = x - n * LN2_HI - n * LN2_LO;
    // Taylor/minimax polynomial for e^r on |r| <= ln2/2 (Cephes expf).
    let mut p = 1.987_569_1e-4_f32;
    for k in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        5e-1,
    ] {
        p = p * r + k;
    }
    let e = p * (r * r) + r + 1.0;
    let scale = f32::from_bits(((n_int + 127) as u32) << 23);
    e * scale
}

#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    // tanh(x) = 1 - 2 / (e^{2x} + 1): exact limits, absolute error ~1e-7.
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

/// `log_softmax` on each row of `width` floats. Where the CPU has AVX2 (checked at run
/// time) the same code is compiled for it: twice the lanes, identical results (no
/// contraction into FMAs, so the same roundings).
pub fn log_softmax_rows(rows: &mut [f32], width: usize) {
    #[cfg(target_arch = "x86_64")]
    if crate::gemm::isa() != crate::gemm::Isa::Portable {
        // SAFETY: `isa` checked that the CPU has AVX2 and FMA.
        return unsafe { log_softmax_rows_avx2(rows, width) };
    }
    rows.chunks_mut(width).for_each(log_softmax);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn log_softmax_rows_avx2(rows: &mut [f32], width: usize) {
    // A plain loop: a `for_each` would be compiled (and kept) without AVX2.
    for row in rows.chunks_mut(width) {
        log_softmax(row);
    }
}

/// In place: row := row - logsumexp(row). Sums in f64 (terms to 3e-7 relative).
#[inline(always)]
pub fn log_softmax(row: &mut [f32]) {
    const LANES: usize = 8;
    // Eight running maxima and sums, one per lane: a single running one is a chain of
    // dependent operations that keeps the loop from vectorising.
    let mut maxima = [f32::NEG_INFINITY; LANES];
    let chunks = row.chunks_exact(LANES);
    let mut max = chunks
        .remainder()
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    for chunk in chunks {
        for (m, &v) in maxima.iter_mut().zip(chunk) {
            *m = m.max(v);
        }
    }
    max = maxima.iter().copied().fold(max, f32::max);
    let mut sums = [0f64; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail: f64 = chunks
        .remainder()
        .iter()
        .map(|&v| exp(v - max) as f64)
        .sum();
    for chunk in chunks {
        for (s, &v) in sums.iter_mut().zip(chunk) {
            *s += exp(v - max) as f64;
        }
    }
    let sum = sums.iter().sum::<f64>() + tail;
    // The max comes off first, the log-sum after: max + ln(sum) as one shift would lose
    // ln(sum) next to a huge max (every row would read as probability 1).
    let log_sum = sum.ln() as f32;
    for v in row.iter_mut() {
        *v = (*v - max) - log_sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate() {
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            assert!(
                ((got - want) / want).abs() < 5e-7,
                "exp({x}) = {got}, want {want}"
            );
            x += 0.0137;
        }
        assert_eq!(exp(-1000.0), exp(-87.0));
    }

    #[test]
    fn gates_match_std() {
        let mut x = -30.0f32;
        while x < 30.0 {
            assert!((sigmoid(x) as f64 - 1.0 / (1.0 + (-(x as f64)).exp())).abs() < 2e-7);
            assert!(
                (tanh(x) as f64 - (x as f64).tanh()).abs() < 3e-7,
                "tanh({x})"
            );
            x += 0.01;
        }
    }

    #[test]
    fn every_isa_gives_the_same_log_softmax() {
        let rows: Vec<f32> = (0..18 * 37)
            .map(|i| ((i * 7919) % 1000) as f32 * 0.01 - 5.0)
            .collect();
        let mut fast = rows.clone();
        log_softmax_rows(&mut fast, 18);
        let mut plain = rows.clone();
        plain.chunks_mut(18).for_each(log_softmax);
        assert_eq!(fast, plain);
        let total: f64 = fast[..18].iter().map(|&v| (v as f64).exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
    }

    #[test]
    fn log_softmax_is_stable_for_any_finite_logits() {
        for (big, sign) in [(3e38f32, 1.0f32), (3e38, -1.0), (1e30, 1.0)] {
            let mut row = [big * sign; 18];
            row[3] = big * sign - big * 1e-6 * sign.abs(); // a little lower
            log_softmax(&mut row);
            let total: f64 = row.iter().map(|&v| (v as f64).exp()).sum();
            assert!((total - 1.0).abs() < 1e-5, "{big} {sign}: {total}");
            assert!(row.iter().all(|v| v.is_finite() && *v <= 0.0));
        }
    }

    #[test]
    fn log_softmax_sums_to_one() {
        let mut row = vec![1.0f32, 2.0, 3.0, -1000.0];
        log_softmax(&mut row);
        let total: f64 = row.iter().map(|&v| (v as f64).exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
    }
}
