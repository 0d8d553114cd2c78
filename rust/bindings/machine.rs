//! The machine: threads, the matrix kernel this CPU runs and its FMA peak, and (in the
//! private `_testing` submodule) a hook the tests use to check panics across the FFI.

use crate::{gemm, peak, threads};
use pyo3::prelude::*;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(max_threads, m)?)?;
    m.add_function(wrap_pyfunction!(kernel_isa, m)?)?;
    m.add_function(wrap_pyfunction!(bf16_available, m)?)?;
    m.add_function(wrap_pyfunction!(bf16_kernel, m)?)?;
    m.add_function(wrap_pyfunction!(int16_available, m)?)?;
    m.add_function(wrap_pyfunction!(fma_peak_gflops, m)?)?;
    let testing = PyModule::new(m.py(), "_testing")?;
    testing.add_function(wrap_pyfunction!(panic_in_pool, &testing)?)?;
    m.add_submodule(&testing)
}

#[pyfunction]
fn set_num_threads(n: usize) -> PyResult<()> {
    Ok(threads::set_num_threads(n)?)
}

#[pyfunction]
fn get_num_threads() -> usize {
    threads::num_threads()
}

/// The most threads `set_num_threads` accepts (4 per core).
#[pyfunction]
fn max_threads() -> usize {
    threads::max_threads()
}

/// The matrix kernel this CPU dispatched to: "avx512", "avx2+fma" or "portable".
#[pyfunction]
fn kernel_isa() -> &'static str {
    gemm::isa().name()
}

/// Whether this CPU runs the bf16 kernel (AVX512_BF16): `precision="bf16"`.
#[pyfunction]
fn bf16_available() -> bool {
    gemm::bf16_available()
}

/// Which kernel runs `precision="bf16"` here: "amx" (tiles), "avx512bf16", or None.
#[pyfunction]
fn bf16_kernel() -> Option<&'static str> {
    gemm::bf16_kernel()
}

/// Whether this CPU runs the int16 kernel (AVX2 and FMA): `precision="int16"`.
#[pyfunction]
fn int16_available() -> bool {
    gemm::int16_available()
}

/// GFLOP/s of a register-resident FMA loop on `threads` threads, and the vector ISA.
#[pyfunction]
fn fma_peak_gflops(py: Python<'_>, threads: usize) -> (f64, &'static str) {
    py.detach(|| peak::fma_peak_gflops(threads))
}

/// Panics inside a task of the thread pool, so the tests can check that a Rust panic
/// reaches Python as an exception (PyO3's PanicException) and that the pool keeps
/// working afterwards.
#[pyfunction]
fn panic_in_pool(py: Python<'_>) {
    py.detach(|| {
        threads::pool().install(|| rayon::join(|| panic!("namelang test panic"), || ()));
    });
}
