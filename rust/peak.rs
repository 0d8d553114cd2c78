//! The machine's fused-multiply-add ceiling: a register-resident FMA loop per thread,
//! at the vector width the kernels dispatch to. Benchmarks report each forward pass
//! as a fraction of this figure.

use crate::gemm::{isa, Isa};
use std::time::Instant;

const ITERS: usize = 50_000_000;

/// GFLOP/s of `threads` threads each running the loop for about `ITERS` rounds.
pub fn fma_peak_gflops(threads: usize) -> (f64, &'static str) {
    let threads = threads.max(1);
    let start = Instant::now();
    let flops_each = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(one_thread)).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(0.0))
            .sum::<f64>()
    });
    (
        flops_each / start.elapsed().as_secs_f64() / 1e9,
        isa().name(),
    )
}

fn one_thread() -> f64 {
    match isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` checked the CPU features.
        Isa::Avx512 => unsafe { x86::loop512() },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { x86::loop256() },
        _ => portable(),
    }
}

fn portable() -> f64 {
    let mut acc = [1.0f32; 32];
    let (m, a) = (
        std::hint::black_box(0.999_999f32),
        std::hint::black_box(1e-7f32),
    );
    for _ in 0..ITERS / 10 {
        for x in acc.iter_mut() {
            *x = *x * m + a;
        }
    }
    std::hint::black_box(acc);
    (ITERS / 10 * 32 * 2) as f64
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::ITERS;
    use std::arch::x86_64::*;

    // Twelve independent chains hide the FMA latency on every current core.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn loop512() -> f64 {
        let m = _mm512_set1_ps(std::hint::black_box(0.999_999));
        let a = _mm512_set1_ps(std::hint::black_box(1e-7));
        let mut acc = [_mm512_set1_ps(1.0); 12];
        for _ in 0..ITERS {
            for x in acc.iter_mut() {
                *x = _mm512_fmadd_ps(*x, m, a);
            }
        }
        std::hint::black_box(acc);
        (ITERS * 12 * 16 * 2) as f64
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn loop256() -> f64 {
        let m = _mm256_set1_ps(std::hint::black_box(0.999_999));
        let a = _mm256_set1_ps(std::hint::black_box(1e-7));
        let mut acc = [_mm256_set1_ps(1.0); 12];
        for _ in 0..ITERS {
            for x in acc.iter_mut() {
                *x = _mm256_fmadd_ps(*x, m, a);
            }
        }
        std::hint::black_box(acc);
        (ITERS * 12 * 8 * 2) as f64
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn peak_is_positive_and_finite() {
        let (gflops, isa) = super::fma_peak_gflops(1);
        assert!(
            gflops.is_finite() && gflops > 0.1,
            "{gflops} GFLOP/s on {isa}"
        );
    }
}
