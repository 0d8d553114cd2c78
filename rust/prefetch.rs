//! Cache hints: asking for memory a loop will read soon, so that several misses
//! overlap instead of each stalling the loop in turn (a chunk's logits read back in
//! input order, the start table's states).

/// Asks for the cache lines of `len` floats from `p` (a hint: no effect on results).
#[inline]
pub fn floats(p: *const f32, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let (start, end) = (p as usize, p as usize + 4 * len.max(1) - 1);
        for line in start / 64..=end / 64 {
            // SAFETY: prefetching never faults, whatever the address.
            unsafe { _mm_prefetch((line * 64) as *const i8, _MM_HINT_T0) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, len);
}
