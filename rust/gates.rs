//! The gate updates of the GRU and LSTM cells, in place on one row. A portable loop
//! everywhere (exp-based sigmoid and tanh); where the CPU has AVX2 and FMA (checked at
//! run time), 8-lane intrinsics with a rational tanh (degree 13 over 6, no exp, absolute
//! error under 4e-7), sigmoid(x) = (1 + tanh(x/2)) / 2, and a reciprocal estimate with
//! one Newton step for the division: fewer operations than an exp-based version, and
//! the bundled GRU still agrees with PyTorch to 8e-6 relative (the parity bound is 1e-4).
//! Under int16 products, whose states are rounded to steps of 1.2e-4, the 8-lane gates
//! take a coarser rational (`Accuracy::Coarse`).

use crate::gemm::{isa, Isa};
use crate::math::{sigmoid, tanh};

/// How closely the 8-lane gates follow tanh and sigmoid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accuracy {
    /// Absolute error under 4e-7: the float32 path, held to PyTorch's answers.
    Fine,
    /// Under 2.2e-5 (tanh; half that for sigmoid), in 12-13 operations where `Fine`
    /// takes 16-17: for int16 products, whose states the next step rounds to steps of
    /// 1.2e-4 anyway. The bundled model's million distinct names to CSV: 2.62-2.66 ->
    /// 2.46-2.48 s (BENCHMARKS.md). Only the AVX2 gates have it; others stay `Fine`.
    Coarse,
}

/// PyTorch's GRU: r, z, n gates; h' = (1 - z) n + z h. `gi` is the input projection
/// (3h), `gh` the recurrent one (3h, scratch: r and z overwrite its first two thirds).
pub fn gru(gi: &[f32], gh: &mut [f32], h: &mut [f32], accuracy: Accuracy) {
    let n = h.len();
    assert!(gi.len() >= 3 * n && gh.len() >= 3 * n);
    #[cfg(target_arch = "x86_64")]
    match (isa(), accuracy) {
        // SAFETY: `isa` checked that the CPU has AVX-512F; lengths checked above.
        (Isa::Avx512, _) => return unsafe { x86::gru16(gi, gh, h) },
        // SAFETY: `isa` checked that the CPU has AVX2 and FMA; lengths checked above.
        (Isa::Avx2, Accuracy::Fine) => return unsafe { x86::gru::<false>(gi, gh, h) },
        // SAFETY: as above.
        (Isa::Avx2, Accuracy::Coarse) => return unsafe { x86::gru::<true>(gi, gh, h) },
        (Isa::Portable, _) => {}
    }
    let _ = accuracy;
    gru_tail(gi, gh, h, 0, 0);
}

/// PyTorch's LSTM: i, f, g, o gates (4h, biases already summed in); updates c and h.
pub fn lstm(gates: &[f32], c: &mut [f32], h: &mut [f32], accuracy: Accuracy) {
    let n = h.len();
    assert!(gates.len() >= 4 * n && c.len() == n);
    #[cfg(target_arch = "x86_64")]
    match (isa(), accuracy) {
        // SAFETY: as above.
        (Isa::Avx512, _) => return unsafe { x86::lstm16(gates, c, h) },
        // SAFETY: as above.
        (Isa::Avx2, Accuracy::Fine) => return unsafe { x86::lstm::<false>(gates, c, h) },
        // SAFETY: as above.
        (Isa::Avx2, Accuracy::Coarse) => return unsafe { x86::lstm::<true>(gates, c, h) },
        (Isa::Portable, _) => {}
    }
    let _ = accuracy;
    lstm_tail(gates, c, h, 0);
}

/// The GRU update from gate element `rz0` (r and z) and hidden element `j0` on.
fn gru_tail(gi: &[f32], gh: &mut [f32], h: &mut [f32], rz0: usize, j0: usize) {
    let n = h.len();
    for j in rz0..2 * n {
        gh[j] = sigmoid(gh[j] + gi[j]);
    }
    for j in j0..n {
        let cand = tanh(gi[2 * n + j] + gh[j] * gh[2 * n + j]);
        h[j] = cand + gh[n + j] * (h[j] - cand);
    }
}

/// The LSTM update from hidden element `j0` on.
fn lstm_tail(gates: &[f32], c: &mut [f32], h: &mut [f32], j0: usize) {
    let n = h.len();
    for j in j0..n {
        let cell = sigmoid(gates[n + j]) * c[j] + sigmoid(gates[j]) * tanh(gates[2 * n + j]);
        c[j] = cell;
        h[j] = sigmoid(gates[3 * n + j]) * tanh(cell);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    // tanh(x) = x p(x^2) / q(x^2) on [-CLAMP, CLAMP], for the 8- and 16-lane code alike.
    const CLAMP: f32 = 7.905_311;
    const ALPHA: [f32; 7] = [
        -2.760_768_5e-16,
        2.000_188e-13,
        -8.604_672e-11,
        5.122_297e-8,
        1.485_722_4e-5,
        6.372_619_3e-4,
        4.893_524_6e-3,
    ];
    const BETA: [f32; 4] = [1.198_258_4e-6, 1.185_347_1e-4, 2.268_434_6e-3, 4.893_525e-3];

    /// 1 / d for normal d > 0: the 12-bit estimate and one Newton step.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn recip8(d: __m256) -> __m256 {
        let y = _mm256_rcp_ps(d);
        let e = _mm256_fnmadd_ps(d, y, _mm256_set1_ps(1.0));
        _mm256_fmadd_ps(y, e, y)
    }

    /// sigmoid(x) = (1 + tanh(x / 2)) / 2.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn sigmoid8(x: __m256) -> __m256 {
        let half = _mm256_set1_ps(0.5);
        _mm256_fmadd_ps(tanh8(_mm256_mul_ps(x, half)), half, half)
    }

    /// tanh as a rational function of odd degree 13 over even degree 6 on [-7.9, 7.9]
    /// (clamped outside, where tanh is 1 in f32 to within 2e-7): absolute error under
    /// 4e-7, no exp and no integer operations.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn tanh8(x: __m256) -> __m256 {
        let (num, inv) = odd_rational(x, CLAMP, &ALPHA, &BETA);
        _mm256_mul_ps(num, inv)
    }

    // Coarse: tanh(x) = x p(x^2) / q(x^2) on [-6.25, 6.25], degree 7 over 4, fitted by
    // weighted least squares (Lawson's iteration); absolute error under 2.2e-5 in f32.
    const COARSE_CLAMP: f32 = 6.25;
    const COARSE_P: [f32; 4] = [-2.327_295_5e-6, 9.748_476_4e-4, 0.108_461_05, 0.999_938_96];
    const COARSE_Q: [f32; 3] = [0.015_014_17, 0.441_608_1, 1.0];
    // sigmoid(x) = 1/2 + tanh(x/2)/2 = 1/2 + x p'(x^2) / q'(x^2): the halvings folded
    // into the coefficients (powers of two: exact), a multiply fewer.
    const SIGMOID_P: [f32; 4] = quartered(COARSE_P, 0.25);
    const SIGMOID_Q: [f32; 3] = quartered(COARSE_Q, 1.0);

    /// `c(x^2 / 4) * outer` for coefficients c, highest degree first.
    const fn quartered<const N: usize>(c: [f32; N], outer: f32) -> [f32; N] {
        let mut out = c;
        let mut k = 0;
        while k < N {
            let mut scale = outer;
            let mut degree = N - 1 - k;
            while degree > 0 {
                scale /= 4.0;
                degree -= 1;
            }
            out[k] = c[k] * scale;
            k += 1;
        }
        out
    }

    /// (x p(x^2), 1 / q(x^2)) for x clamped to [-clamp, clamp] (coefficients highest
    /// degree first): the fine and the coarse rationals alike.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn odd_rational<const P: usize, const Q: usize>(
        x: __m256,
        clamp: f32,
        p: &[f32; P],
        q: &[f32; Q],
    ) -> (__m256, __m256) {
        let x = _mm256_min_ps(
            _mm256_max_ps(x, _mm256_set1_ps(-clamp)),
            _mm256_set1_ps(clamp),
        );
        let x2 = _mm256_mul_ps(x, x);
        let mut num = _mm256_set1_ps(p[0]);
        for a in &p[1..] {
            num = _mm256_fmadd_ps(num, x2, _mm256_set1_ps(*a));
        }
        let mut den = _mm256_set1_ps(q[0]);
        for b in &q[1..] {
            den = _mm256_fmadd_ps(den, x2, _mm256_set1_ps(*b));
        }
        (_mm256_mul_ps(num, x), recip8(den))
    }

    /// tanh, coarse or fine.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn tanh_of<const COARSE: bool>(x: __m256) -> __m256 {
        if !COARSE {
            return tanh8(x);
        }
        let (num, inv) = odd_rational(x, COARSE_CLAMP, &COARSE_P, &COARSE_Q);
        _mm256_mul_ps(num, inv)
    }

    /// sigmoid, coarse or fine.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn sigmoid_of<const COARSE: bool>(x: __m256) -> __m256 {
        if !COARSE {
            return sigmoid8(x);
        }
        let (num, inv) = odd_rational(x, 2.0 * COARSE_CLAMP, &SIGMOID_P, &SIGMOID_Q);
        _mm256_fmadd_ps(num, inv, _mm256_set1_ps(0.5))
    }

    /// # Safety
    /// AVX2 and FMA present; gi and gh hold at least 3 * h.len() values.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn gru<const COARSE: bool>(gi: &[f32], gh: &mut [f32], h: &mut [f32]) {
        let n = h.len();
        let (gip, ghp, hp) = (gi.as_ptr(), gh.as_mut_ptr(), h.as_mut_ptr());
        // Reset and update gates first: independent lanes, so their evaluations overlap.
        // Only the raw pointers touch gh and h until the scalar tails below.
        let rz = 2 * n - (2 * n) % 8;
        for j in (0..rz).step_by(8) {
            let g = _mm256_add_ps(_mm256_loadu_ps(ghp.add(j)), _mm256_loadu_ps(gip.add(j)));
            _mm256_storeu_ps(ghp.add(j), sigmoid_of::<COARSE>(g));
        }
        // The r/z tail must be done before the candidate reads r and z.
        for j in rz..2 * n {
            *ghp.add(j) = super::sigmoid(*ghp.add(j) + *gip.add(j));
        }
        let main = n - n % 8;
        for j in (0..main).step_by(8) {
            let r = _mm256_loadu_ps(ghp.add(j));
            let z = _mm256_loadu_ps(ghp.add(n + j));
            let hn = _mm256_loadu_ps(ghp.add(2 * n + j));
            let i = _mm256_loadu_ps(gip.add(2 * n + j));
            let cand = tanh_of::<COARSE>(_mm256_fmadd_ps(r, hn, i));
            let old = _mm256_loadu_ps(hp.add(j));
            _mm256_storeu_ps(
                hp.add(j),
                _mm256_fmadd_ps(z, _mm256_sub_ps(old, cand), cand),
            );
        }
        if main < n {
            super::gru_tail(gi, gh, h, 2 * n, main);
        }
    }

    /// # Safety
    /// AVX2 and FMA present; gates holds at least 4 * h.len() values, c as many as h.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn lstm<const COARSE: bool>(gates: &[f32], c: &mut [f32], h: &mut [f32]) {
        let n = h.len();
        let main = n - n % 8;
        let (g, cp, hp) = (gates.as_ptr(), c.as_mut_ptr(), h.as_mut_ptr());
        for j in (0..main).step_by(8) {
            let i = sigmoid_of::<COARSE>(_mm256_loadu_ps(g.add(j)));
            let f = sigmoid_of::<COARSE>(_mm256_loadu_ps(g.add(n + j)));
            let cand = tanh_of::<COARSE>(_mm256_loadu_ps(g.add(2 * n + j)));
            let o = sigmoid_of::<COARSE>(_mm256_loadu_ps(g.add(3 * n + j)));
            let cell = _mm256_fmadd_ps(f, _mm256_loadu_ps(cp.add(j)), _mm256_mul_ps(i, cand));
            _mm256_storeu_ps(cp.add(j), cell);
            _mm256_storeu_ps(hp.add(j), _mm256_mul_ps(o, tanh_of::<COARSE>(cell)));
        }
        if main < n {
            super::lstm_tail(gates, c, h, main);
        }
    }

    // The same updates 16 lanes wide: the gates were a fifth of a GRU model's forward
    // time at 8 lanes on AVX-512 machines.

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn recip16(d: __m512) -> __m512 {
        let y = _mm512_rcp14_ps(d);
        let e = _mm512_fnmadd_ps(d, y, _mm512_set1_ps(1.0));
        _mm512_fmadd_ps(y, e, y)
    }

    /// `tanh8`'s rational function, 16 lanes.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn tanh16(x: __m512) -> __m512 {
        let x = _mm512_min_ps(
            _mm512_max_ps(x, _mm512_set1_ps(-CLAMP)),
            _mm512_set1_ps(CLAMP),
        );
        let x2 = _mm512_mul_ps(x, x);
        let mut p = _mm512_set1_ps(ALPHA[0]);
        for a in &ALPHA[1..] {
            p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(*a));
        }
        let mut q = _mm512_set1_ps(BETA[0]);
        for b in &BETA[1..] {
            q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(*b));
        }
        _mm512_mul_ps(_mm512_mul_ps(p, x), recip16(q))
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn sigmoid16(x: __m512) -> __m512 {
        let half = _mm512_set1_ps(0.5);
        _mm512_fmadd_ps(tanh16(_mm512_mul_ps(x, half)), half, half)
    }

    /// # Safety
    /// AVX-512F present; gi and gh hold at least 3 * h.len() values.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn gru16(gi: &[f32], gh: &mut [f32], h: &mut [f32]) {
        let n = h.len();
        let (gip, ghp, hp) = (gi.as_ptr(), gh.as_mut_ptr(), h.as_mut_ptr());
        let rz = 2 * n - (2 * n) % 16;
        for j in (0..rz).step_by(16) {
            let g = _mm512_add_ps(_mm512_loadu_ps(ghp.add(j)), _mm512_loadu_ps(gip.add(j)));
            _mm512_storeu_ps(ghp.add(j), sigmoid16(g));
        }
        for j in rz..2 * n {
            *ghp.add(j) = super::sigmoid(*ghp.add(j) + *gip.add(j));
        }
        let main = n - n % 16;
        for j in (0..main).step_by(16) {
            let r = _mm512_loadu_ps(ghp.add(j));
            let z = _mm512_loadu_ps(ghp.add(n + j));
            let hn = _mm512_loadu_ps(ghp.add(2 * n + j));
            let i = _mm512_loadu_ps(gip.add(2 * n + j));
            let cand = tanh16(_mm512_fmadd_ps(r, hn, i));
            let old = _mm512_loadu_ps(hp.add(j));
            let new = _mm512_fmadd_ps(z, _mm512_sub_ps(old, cand), cand);
            _mm512_storeu_ps(hp.add(j), new);
        }
        if main < n {
            super::gru_tail(gi, gh, h, 2 * n, main);
        }
    }

    /// # Safety
    /// AVX-512F present; gates holds at least 4 * h.len() values, c as many as h.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn lstm16(gates: &[f32], c: &mut [f32], h: &mut [f32]) {
        let n = h.len();
        let main = n - n % 16;
        let (g, cp, hp) = (gates.as_ptr(), c.as_mut_ptr(), h.as_mut_ptr());
        for j in (0..main).step_by(16) {
            let i = sigmoid16(_mm512_loadu_ps(g.add(j)));
            let f = sigmoid16(_mm512_loadu_ps(g.add(n + j)));
            let cand = tanh16(_mm512_loadu_ps(g.add(2 * n + j)));
            let o = sigmoid16(_mm512_loadu_ps(g.add(3 * n + j)));
            let cell = _mm512_fmadd_ps(f, _mm512_loadu_ps(cp.add(j)), _mm512_mul_ps(i, cand));
            _mm512_storeu_ps(cp.add(j), cell);
            _mm512_storeu_ps(hp.add(j), _mm512_mul_ps(o, tanh16(cell)));
        }
        if main < n {
            super::lstm_tail(gates, c, h, main);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: u64, scale: f32) -> Vec<f32> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0 * scale
            })
            .collect()
    }

    /// The largest errors of the 8-lane tanh and sigmoid (fine or coarse) over [-40, 40]
    /// in steps of `step`, eight lanes a step (`step / 8` apart); None without AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    fn worst_errors<const COARSE: bool>(step: f32) -> Option<(f64, f64)> {
        use std::arch::x86_64::*;
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            return None;
        }
        let (mut worst_tanh, mut worst_sigmoid) = (0f64, 0f64);
        let mut x = -40.0f32;
        while x < 40.0 {
            let lanes: [f32; 8] = std::array::from_fn(|i| x + i as f32 * step / 8.0);
            let (mut t, mut s) = ([0f32; 8], [0f32; 8]);
            // SAFETY: AVX2 and FMA checked above; arrays hold 8 floats.
            unsafe {
                let v = _mm256_loadu_ps(lanes.as_ptr());
                _mm256_storeu_ps(t.as_mut_ptr(), x86::tanh_of::<COARSE>(v));
                _mm256_storeu_ps(s.as_mut_ptr(), x86::sigmoid_of::<COARSE>(v));
            }
            for i in 0..8 {
                let v = lanes[i] as f64;
                worst_tanh = worst_tanh.max((t[i] as f64 - v.tanh()).abs());
                worst_sigmoid = worst_sigmoid.max((s[i] as f64 - 1.0 / (1.0 + (-v).exp())).abs());
            }
            x += step;
        }
        Some((worst_tanh, worst_sigmoid))
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vector_tanh_and_sigmoid_are_accurate() {
        let Some((tanh, sigmoid)) = worst_errors::<false>(0.0071) else {
            return;
        };
        assert!(tanh < 5e-7, "tanh {tanh}");
        assert!(sigmoid < 3e-7, "sigmoid {sigmoid}");
    }

    /// The coarse gates' bounds (`Accuracy::Coarse`), over the whole line.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn coarse_tanh_and_sigmoid_keep_their_bounds() {
        let Some((tanh, sigmoid)) = worst_errors::<true>(0.000_93) else {
            return;
        };
        assert!(tanh < 2.2e-5, "tanh {tanh}");
        assert!(sigmoid < 1.1e-5, "sigmoid {sigmoid}");
        // Coarse, not wrong: the fine ones are 50 times closer.
        assert!(tanh > 1e-6, "tanh {tanh}");
    }

    /// The dispatched update (intrinsics here when the CPU has them) against the
    /// portable loop, for hidden sizes with and without an 8-lane tail, up to large
    /// pre-activations: the GRU within `gru_tol` times the pre-activations' scale (gate
    /// errors scale with what they multiply: r times the candidate's recurrent part),
    /// the LSTM within `lstm_tol`.
    fn check_against_portable(accuracy: Accuracy, gru_tol: f32, lstm_tol: f32) {
        for n in [1, 7, 8, 13, 64, 128, 131] {
            for scale in [0.5, 4.0, 60.0] {
                let gi = values(3 * n, n as u64, scale);
                let gh = values(3 * n, 7 + n as u64, scale);
                let h0 = values(n, 3, 1.0);
                let (mut gh_a, mut h_a) = (gh.clone(), h0.clone());
                gru(&gi, &mut gh_a, &mut h_a, accuracy);
                let (mut gh_b, mut h_b) = (gh.clone(), h0.clone());
                gru_tail(&gi, &mut gh_b, &mut h_b, 0, 0);
                let tol = gru_tol * scale.max(1.0);
                for (a, b) in h_a.iter().zip(&h_b) {
                    assert!((a - b).abs() <= tol, "gru n={n} scale={scale}: {a} vs {b}");
                }
                let gates = values(4 * n, 11 + n as u64, scale);
                let c0 = values(n, 5, 2.0);
                let (mut c_a, mut h_a) = (c0.clone(), h0.clone());
                lstm(&gates, &mut c_a, &mut h_a, accuracy);
                let (mut c_b, mut h_b) = (c0.clone(), h0.clone());
                lstm_tail(&gates, &mut c_b, &mut h_b, 0);
                for (a, b) in c_a.iter().zip(&c_b).chain(h_a.iter().zip(&h_b)) {
                    assert!(
                        (a - b).abs() <= lstm_tol,
                        "lstm n={n} scale={scale}: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn vector_gates_match_the_portable_loop() {
        check_against_portable(Accuracy::Fine, 1e-6, 2e-6);
    }

    #[test]
    fn coarse_gates_stay_near_the_portable_loop() {
        check_against_portable(Accuracy::Coarse, 5e-5, 1e-4);
    }
}
