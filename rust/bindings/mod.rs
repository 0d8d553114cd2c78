//! The Python module `namelang._native`: converts types and errors, releases the GIL
//! around batch work, and hands arrays to numpy without copying. One file per concept:
//! `args` (name lists and counts as Python passes them), `text` (the text rule and
//! encodings), `explain` (parts of names), `model` (model files and the forward pass),
//! `job` (the answer to every row: check, top-k, sets, abstention, output rows) and
//! `machine` (threads and kernels).

mod args;
mod explain;
mod job;
mod machine;
mod model;
mod text;

use crate::alphabet::ALPHABET;
use crate::error::Error;
use crate::rows;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        match e {
            Error::Io(_) => PyOSError::new_err(e.to_string()),
            _ => PyValueError::new_err(e.to_string()),
        }
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ALPHABET", ALPHABET)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    let codes: Vec<&str> = rows::RowError::ALL.iter().map(|e| e.code()).collect();
    m.add("ERROR_CODES", codes)?;
    m.add("ADDED_KEYS", rows::ADDED_KEYS.to_vec())?;
    m.add("DEFAULT_MAX_LENGTH", rows::DEFAULT_MAX_LENGTH)?;
    m.add("MAX_LENGTH_LIMIT", rows::MAX_LENGTH_LIMIT)?;
    text::register(m)?;
    explain::register(m)?;
    model::register(m)?;
    job::register(m)?;
    machine::register(m)?;
    Ok(())
}
