//! namelang's native core: text normalisation, batched encoding and the CPU
//! forward pass of the recurrent cells. Plain Rust; the Python bindings live
//! in `bindings` behind the `python` feature.

pub mod alphabet;
pub mod amx;
pub mod answer_cache;
pub mod encode;
pub mod error;
pub mod explain;
pub mod forward;
pub mod fullname;
pub mod gates;
pub mod gemm;
pub mod known_ngrams;
pub mod marks;
pub mod math;
pub mod model_file;
pub mod ngrams;
pub mod normalize;
pub mod peak;
pub mod prefetch;
pub mod prefixes;
pub mod romanize;
pub mod rows;
pub mod score;
pub mod threads;

#[cfg(feature = "python")]
mod bindings;
