//! Model files and the CPU forward pass: `Model` (a validated file, ready to run),
//! `ModelSpec` (what a file states about itself), the one reader both backends use and
//! the digest the writer stores.

use super::args::Names;
use super::explain::{parts_out, PartOut};
use crate::error::Error;
use crate::gemm::Precision;
use crate::{explain, forward, model_file};
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyModel>()?;
    m.add_class::<PySpec>()?;
    m.add_function(wrap_pyfunction!(read_model_file, m)?)?;
    m.add_function(wrap_pyfunction!(model_digest, m)?)?;
    Ok(())
}

/// A model file loaded for the native CPU forward pass. Immutable, so Python threads
/// may share one (and jobs share it by reference); each call releases the GIL for the
/// whole batch.
#[pyclass(frozen, name = "Model", module = "namelang._native")]
pub struct PyModel {
    pub inner: Arc<forward::Model>,
}

impl PyModel {
    fn made(
        mut inner: forward::Model,
        share_prefixes: bool,
        logit_shift: Option<Vec<f32>>,
        precision: &str,
    ) -> PyResult<Self> {
        inner.share_prefixes = share_prefixes;
        inner.set_logit_shift(logit_shift)?;
        match precision {
            "auto" => inner.set_precision(inner.auto_precision())?,
            "f32" => inner.set_precision(Precision::F32)?,
            "bf16" => inner.set_precision(Precision::Bf16)?,
            "int16" => inner.set_precision(Precision::Int16)?,
            "int8" => {
                return Err(PyValueError::new_err(
                    "precision 'int8' is not offered: int8 weights and states move the \
                     default model's probabilities by up to 0.007 and its top language on \
                     0.13% of random names, outside the bounds; use 'int16', 'bf16' or 'f32' \
                     (scripts/precision_bounds.py, BENCHMARKS.md)",
                ))
            }
            other => {
                return Err(PyValueError::new_err(format!(
                    "precision must be 'auto', 'f32', 'bf16', 'int16' or 'int8', got {other:?}"
                )))
            }
        }
        Ok(PyModel {
            inner: Arc::new(inner),
        })
    }
}

#[pymethods]
impl PyModel {
    /// `share_prefixes=False` runs every row's recurrence on its own (same results,
    /// more work). `logit_shift`: added to every answer's logits (a target prior's
    /// log(prior / training share), one per language; -inf rules a language out).
    #[new]
    #[pyo3(signature = (path, share_prefixes = true, logit_shift = None, precision = "auto"))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        share_prefixes: bool,
        logit_shift: Option<Vec<f32>>,
        precision: &str,
    ) -> PyResult<Self> {
        let path = path.to_string_lossy().into_owned();
        let inner = py.detach(|| forward::Model::from_path(&path))?;
        Self::made(inner, share_prefixes, logit_shift, precision)
    }

    #[staticmethod]
    #[pyo3(signature = (data, share_prefixes = true, logit_shift = None, precision = "auto"))]
    fn from_bytes(
        py: Python<'_>,
        data: &[u8],
        share_prefixes: bool,
        logit_shift: Option<Vec<f32>>,
        precision: &str,
    ) -> PyResult<Self> {
        let inner = py.detach(|| forward::Model::from_bytes(data))?;
        Self::made(inner, share_prefixes, logit_shift, precision)
    }

    /// This model with a logit shift (a target prior's), its weights shared by copy
    /// rather than read from the file again.
    #[pyo3(signature = (logit_shift))]
    fn with_logit_shift(&self, logit_shift: Option<Vec<f32>>) -> PyResult<PyModel> {
        Ok(PyModel {
            inner: Arc::new(self.inner.with_logit_shift(logit_shift)?),
        })
    }

    /// The precision of the recurrent products: "f32", "bf16" or "int16".
    #[getter]
    fn precision(&self) -> &'static str {
        self.inner.precision().name()
    }

    #[getter]
    fn share_prefixes(&self) -> bool {
        self.inner.share_prefixes
    }

    /// Forgets the answers bulk scoring kept (`answer_cache`), so a timed run starts cold.
    fn clear_answers(&self) {
        self.inner.answers.clear();
    }

    /// float32 (B, C) log-probabilities; NaN rows for names with no letters.
    /// `share_prefixes` (default: the model's) chooses whether rows whose names start
    /// alike share their recurrent state; the results are the same either way.
    #[pyo3(signature = (names, method = "auto", share_prefixes = None))]
    fn log_probs<'py>(
        &self,
        py: Python<'py>,
        names: Names,
        method: &str,
        share_prefixes: Option<bool>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let share_prefixes = share_prefixes.unwrap_or(self.inner.share_prefixes);
        let method: forward::Method = method.parse()?;
        let texts = names.0;
        let out = py.detach(|| self.inner.log_probs(&texts, method, share_prefixes))?;
        let shape = (texts.len(), self.inner.classes());
        let out = Array2::from_shape_vec(shape, out).expect("buffer sized as (B, C)");
        Ok(out.into_pyarray(py))
    }

    /// Up to `k` parts per name that raised its top language (`explain`), as dicts.
    #[pyo3(signature = (names, k = 3))]
    fn explain(&self, py: Python<'_>, names: Names, k: usize) -> PyResult<Vec<Vec<PartOut>>> {
        let parts = py.detach(|| explain::explain(&self.inner, &names.0, k))?;
        Ok(parts_out(parts))
    }

    #[getter]
    fn categories(&self) -> Vec<String> {
        self.inner.spec.categories.clone()
    }

    /// What the model's file states about it.
    #[getter]
    fn spec(&self) -> PySpec {
        PySpec {
            inner: self.inner.spec.clone(),
        }
    }
}

/// What a model file states about itself: its cell, sizes, text rule, n-gram branch,
/// languages and metadata, checked by the native reader's rules (`model_file.rs`).
#[pyclass(frozen, name = "ModelSpec", module = "namelang._native")]
pub struct PySpec {
    pub inner: model_file::Spec,
}

#[pymethods]
impl PySpec {
    /// The spec this header metadata states; a ValueError names what does not fit.
    #[new]
    fn new(metadata: HashMap<String, String>) -> PyResult<Self> {
        Ok(PySpec {
            inner: model_file::spec_from_metadata(&metadata)?,
        })
    }

    #[getter]
    fn cell(&self) -> &str {
        &self.inner.metadata["cell"] // checked by the reader
    }

    #[getter]
    fn input(&self) -> &str {
        &self.inner.metadata["input"]
    }

    #[getter]
    fn hidden_size(&self) -> usize {
        self.inner.hidden_size
    }

    #[getter]
    fn num_layers(&self) -> usize {
        self.inner.num_layers
    }

    #[getter]
    fn embedding_dim(&self) -> usize {
        self.inner.embedding_dim
    }

    #[getter]
    fn bidirectional(&self) -> bool {
        self.inner.bidirectional
    }

    #[getter]
    fn text_rule(&self) -> &'static str {
        self.inner.text_rule.name()
    }

    /// The n-gram branch's longest n-gram (0: no branch).
    #[getter]
    fn ngram_max(&self) -> usize {
        self.inner.ngrams.map_or(0, |n| n.max_n)
    }

    #[getter]
    fn ngram_buckets(&self) -> usize {
        self.inner.ngrams.map_or(0, |n| n.buckets)
    }

    /// Blocks of the set of n-grams the table knows (0: none, every n-gram reads its row).
    #[getter]
    fn ngram_known_blocks(&self) -> usize {
        self.inner.ngrams.map_or(0, |n| n.known_blocks)
    }

    /// The letters outside ASCII the model takes as evidence (empty: none).
    #[getter]
    fn marks(&self) -> Vec<String> {
        let marks = self.inner.marks.as_deref().unwrap_or_default();
        marks.iter().map(char::to_string).collect()
    }

    #[getter]
    fn categories(&self) -> Vec<String> {
        self.inner.categories.clone()
    }

    #[getter]
    fn n_categories(&self) -> usize {
        self.inner.categories.len()
    }

    /// The header metadata, every key (a copy).
    #[getter]
    fn metadata(&self) -> HashMap<String, String> {
        self.inner.metadata.clone()
    }

    /// Tensor names and shapes a file of this spec holds, in the order the file lists them.
    fn expected_shapes(&self) -> Vec<(String, Vec<usize>)> {
        model_file::expected_shapes(&self.inner)
    }

    fn __repr__(&self) -> String {
        format!(
            "ModelSpec(cell={:?}, hidden_size={}, languages={})",
            self.cell(),
            self.inner.hidden_size,
            self.inner.categories.len()
        )
    }
}

type Tensors<'py> = Vec<(String, Bound<'py, PyAny>)>;

/// Reads and validates a model file (the one reader both backends use): its spec and
/// tensors (float32; `ngram.known` uint32), in the order the spec lists them.
#[pyfunction]
fn read_model_file<'py>(py: Python<'py>, path: PathBuf) -> PyResult<(PySpec, Tensors<'py>)> {
    let path = path.to_string_lossy().into_owned();
    let file = py
        .detach(|| {
            let file = model_file::parse(&model_file::read_path(&path)?)?;
            forward::Model::checked(&file)?; // the self-test both backends rely on
            Ok(file)
        })
        .map_err(|e: Error| with_path(e, &path))?;
    let shapes = model_file::expected_shapes(&file.spec);
    let mut tensors = file.tensors;
    let arrays = shapes
        .into_iter()
        .map(|(name, shape)| {
            let array = if name == model_file::KNOWN_TENSOR {
                let words = file.known.as_ref().expect("parse read the set").words();
                numpy::ndarray::ArrayD::from_shape_vec(shape, words.to_vec())
                    .expect("parse checked the shape")
                    .into_pyarray(py)
                    .into_any()
            } else {
                let values = tensors.remove(&name).expect("parse checked every tensor");
                numpy::ndarray::ArrayD::from_shape_vec(shape, values)
                    .expect("parse checked the shape")
                    .into_pyarray(py)
                    .into_any()
            };
            (name, array)
        })
        .collect();
    Ok((PySpec { inner: file.spec }, arrays))
}

/// A model-file error, naming the file the user gave.
fn with_path(e: Error, path: &str) -> PyErr {
    match e {
        Error::InvalidModel(m) if !m.contains(path) => {
            PyValueError::new_err(format!("{path}: invalid model file: {m}"))
        }
        other => other.into(),
    }
}

/// The digest a model file with this metadata and these tensors (float32, or uint32
/// for `ngram.known`) carries (`model_file::digest`): the writer stores it, the reader
/// checks it.
#[pyfunction]
fn model_digest(
    metadata: HashMap<String, String>,
    tensors: Vec<(String, Bound<'_, PyAny>)>,
) -> PyResult<String> {
    let mut bytes = Vec::with_capacity(tensors.len());
    for (name, array) in &tensors {
        let contiguous = || {
            PyValueError::new_err(format!(
                "tensor {name} must be a contiguous float32 (or, for ngram.known, uint32) array"
            ))
        };
        let (dtype, shape, raw): (&str, Vec<usize>, Vec<u8>) =
            if let Ok(a) = array.extract::<PyReadonlyArrayDyn<'_, f32>>() {
                let values = a.as_slice().map_err(|_| contiguous())?;
                let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                ("F32", a.shape().to_vec(), raw)
            } else if let Ok(a) = array.extract::<PyReadonlyArrayDyn<'_, u32>>() {
                let values = a.as_slice().map_err(|_| contiguous())?;
                let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                ("U32", a.shape().to_vec(), raw)
            } else {
                return Err(contiguous());
            };
        bytes.push((name.as_str(), dtype, shape, raw));
    }
    let views: Vec<model_file::TensorBytes<'_>> = bytes
        .iter()
        .map(|(name, dtype, shape, raw)| (*name, *dtype, shape.as_slice(), raw.as_slice()))
        .collect();
    Ok(model_file::digest(&metadata, &views))
}
