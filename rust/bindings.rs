//! The Python module `namelang._native`: converts types and errors, releases
//! the GIL around batch work, and hands arrays to numpy without copying.

use crate::alphabet::{ALPHABET, N_LETTERS};
use crate::encode as encoding;
use crate::{error::Error, forward, gemm, normalize, peak, score, threads};
use numpy::ndarray::{Array1, Array2, Array3};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray3, PyReadonlyArray1};
use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};
use std::borrow::Cow;

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        match e {
            Error::Io(_) => PyOSError::new_err(e.to_string()),
            _ => PyValueError::new_err(e.to_string()),
        }
    }
}

/// Borrows the text of every item of `names`; a non-str item is a TypeError
/// naming its position. Lone surrogates (not encodable as UTF-8) become
/// U+FFFD, which normalises to nothing, as the reference drops them.
fn borrow_names<'a, 'py>(items: &'a [Bound<'py, PyAny>]) -> PyResult<Vec<Cow<'a, str>>> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let s = item.cast::<PyString>().map_err(|_| {
                let type_name = item
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|_| "?".into());
                PyTypeError::new_err(format!("names[{i}] is {type_name}, expected str"))
            })?;
            Ok(match s.to_str() {
                Ok(text) => Cow::Borrowed(text),
                Err(_) => Cow::Owned(s.to_string_lossy().into_owned()),
            })
        })
        .collect()
}

/// Collects any iterable of str into owned references.
fn collect_items<'py>(names: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    if names.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "names must be a sequence of str, not a single str: wrap it in a list",
        ));
    }
    if let Ok(list) = names.cast::<PyList>() {
        return Ok(list.iter().collect());
    }
    names.try_iter()?.collect()
}

#[pyfunction]
fn to_ascii(name: &Bound<'_, PyAny>) -> PyResult<String> {
    let items = [name.clone()];
    let texts = borrow_names(&items).map_err(|_| {
        PyTypeError::new_err(format!(
            "name must be str, not {}",
            name.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    Ok(normalize::to_ascii(&texts[0]))
}

#[pyfunction]
fn to_ascii_batch<'py>(py: Python<'py>, names: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
    let items = collect_items(names)?;
    let texts = borrow_names(&items)?;
    // None: the name is already its own ASCII form, and the input object is reused.
    let converted: Vec<Option<String>> = py.detach(|| {
        let convert = |t: &Cow<'_, str>| {
            if t.is_ascii() && normalize::normalized_len(t) == t.len() {
                None
            } else {
                Some(normalize::to_ascii(t))
            }
        };
        threads::run(texts.len(), || {
            use rayon::prelude::*;
            if texts.len() >= threads::PARALLEL_THRESHOLD {
                texts.par_iter().map(convert).collect()
            } else {
                texts.iter().map(convert).collect()
            }
        })
    });
    let out = converted.into_iter().zip(&items).map(|(c, item)| match c {
        None => item.clone(),
        Some(s) => PyString::new(py, &s).into_any(),
    });
    PyList::new(py, out)
}

type Encoded<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray1<i64>>);

fn text_rule(name: &str) -> PyResult<normalize::TextRule> {
    match name {
        "exact" => Ok(normalize::TextRule::Exact),
        "trim_lower" => Ok(normalize::TextRule::TrimLower),
        _ => Err(PyValueError::new_err(format!(
            "text_rule must be 'exact' or 'trim_lower', got {name:?}"
        ))),
    }
}

/// (B, T_max) int64 indices and (B,) int64 lengths, zero-padded.
#[pyfunction]
#[pyo3(signature = (names, text_rule = "exact"))]
fn encode<'py>(
    py: Python<'py>,
    names: &Bound<'py, PyAny>,
    text_rule: &str,
) -> PyResult<Encoded<'py>> {
    let rule = self::text_rule(text_rule)?;
    let items = collect_items(names)?;
    let texts = borrow_names(&items)?;
    let (indices, lengths, width) = py.detach(|| encode_all(&texts, rule));
    let lengths: Array1<i64> = lengths.into_iter().map(|l| l as i64).collect();
    let indices =
        Array2::from_shape_vec((texts.len(), width), indices).expect("buffer sized as (B, T_max)");
    Ok((indices.into_pyarray(py), lengths.into_pyarray(py)))
}

/// (T_max, B, 57) float32 one-hot, time first, zero-padded.
#[pyfunction]
fn one_hot<'py>(py: Python<'py>, names: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArray3<f32>>> {
    let items = collect_items(names)?;
    let texts = borrow_names(&items)?;
    let batch = texts.len();
    let (planes, width) = py.detach(|| {
        let (indices, lengths, width) = encode_all(&texts, normalize::TextRule::Exact);
        let mut planes = vec![0f32; width * batch * N_LETTERS];
        encoding::fill_one_hot(&indices, &lengths, width, &mut planes);
        (planes, width)
    });
    let planes = Array3::from_shape_vec((width, batch, N_LETTERS), planes)
        .expect("buffer sized as (T_max, B, 57)");
    Ok(planes.into_pyarray(py))
}

fn encode_all(texts: &[Cow<'_, str>], rule: normalize::TextRule) -> (Vec<i64>, Vec<usize>, usize) {
    let lengths = encoding::lengths_with(texts, rule);
    let width = lengths.iter().copied().max().unwrap_or(0);
    let mut indices = vec![0i64; texts.len() * width];
    encoding::fill_indices(texts, rule, width, &mut indices);
    (indices, lengths, width)
}

/// The letters a model with this rule reads from each name, as text.
#[pyfunction]
#[pyo3(signature = (names, text_rule = "exact"))]
fn apply_text_rule<'py>(
    py: Python<'py>,
    names: &Bound<'py, PyAny>,
    text_rule: &str,
) -> PyResult<Vec<String>> {
    let rule = self::text_rule(text_rule)?;
    let items = collect_items(names)?;
    let texts = borrow_names(&items)?;
    Ok(py.detach(|| texts.iter().map(|t| rule.apply(t)).collect()))
}

type NGramRows<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>);

/// The n-gram table rows of each name, flat, and where each name's rows start: the
/// input and offsets of `nn.EmbeddingBag(mode="sum")`.
#[pyfunction]
#[pyo3(signature = (names, max_n, buckets, text_rule = "exact"))]
fn ngram_rows<'py>(
    py: Python<'py>,
    names: &Bound<'py, PyAny>,
    max_n: usize,
    buckets: usize,
    text_rule: &str,
) -> PyResult<NGramRows<'py>> {
    let rule = self::text_rule(text_rule)?;
    if !(1..=8).contains(&max_n) || !(1..=1 << 24).contains(&buckets) {
        return Err(PyValueError::new_err(format!(
            "max_n must be in [1, 8] and buckets in [1, 2**24], got {max_n} and {buckets}"
        )));
    }
    let items = collect_items(names)?;
    let texts = borrow_names(&items)?;
    let spec = crate::model_file::NGramSpec { max_n, buckets };
    let (rows, offsets) = py.detach(|| {
        let (mut rows, mut offsets) = (Vec::new(), Vec::with_capacity(texts.len()));
        for t in &texts {
            offsets.push(rows.len() as i64);
            crate::ngrams::for_each_row(t, rule, spec, |r| rows.push(r as i64));
        }
        (rows, offsets)
    });
    Ok((rows.into_pyarray(py), offsets.into_pyarray(py)))
}

/// A model file loaded for the native CPU forward pass. Immutable, so Python threads
/// may share one; each call releases the GIL for the whole batch.
#[pyclass(frozen, name = "Model", module = "namelang._native")]
struct PyModel {
    inner: forward::Model,
}

#[pymethods]
impl PyModel {
    /// `share_prefixes=False` runs every row's recurrence on its own (same results,
    /// more work): the default for this model's scoring and predictions.
    #[new]
    #[pyo3(signature = (path, share_prefixes = true))]
    fn new(py: Python<'_>, path: std::path::PathBuf, share_prefixes: bool) -> PyResult<Self> {
        let path = path.to_string_lossy().into_owned();
        let mut inner = py.detach(|| forward::Model::from_path(&path))?;
        inner.share_prefixes = share_prefixes;
        Ok(PyModel { inner })
    }

    #[staticmethod]
    #[pyo3(signature = (data, share_prefixes = true))]
    fn from_bytes(py: Python<'_>, data: &[u8], share_prefixes: bool) -> PyResult<Self> {
        let mut inner = py.detach(|| forward::Model::from_bytes(data))?;
        inner.share_prefixes = share_prefixes;
        Ok(PyModel { inner })
    }

    #[getter]
    fn share_prefixes(&self) -> bool {
        self.inner.share_prefixes
    }

    /// float32 (B, C) log-probabilities; NaN rows for names with no letters.
    /// `share_prefixes` (default: the model's) chooses whether rows whose names start
    /// alike share their recurrent state; the results are the same either way.
    #[pyo3(signature = (names, method = "auto", share_prefixes = None))]
    fn log_probs<'py>(
        &self,
        py: Python<'py>,
        names: &Bound<'py, PyAny>,
        method: &str,
        share_prefixes: Option<bool>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let share_prefixes = share_prefixes.unwrap_or(self.inner.share_prefixes);
        let method: forward::Method = method.parse()?;
        let items = collect_items(names)?;
        let texts = borrow_names(&items)?;
        let classes = self.inner.classes();
        let out = py.detach(|| self.inner.log_probs(&texts, method, share_prefixes))?;
        let out =
            Array2::from_shape_vec((texts.len(), classes), out).expect("buffer sized as (B, C)");
        Ok(out.into_pyarray(py))
    }

    /// Top-k (category, probability) per name, best first; [] for a name with no letters.
    #[pyo3(signature = (names, k = 3))]
    fn predict(
        &self,
        py: Python<'_>,
        names: &Bound<'_, PyAny>,
        k: usize,
    ) -> PyResult<Vec<Vec<(String, f64)>>> {
        let items = collect_items(names)?;
        let texts = borrow_names(&items)?;
        let classes = self.inner.classes();
        let scores = py.detach(|| {
            self.inner
                .log_probs(&texts, forward::Method::Auto, self.inner.share_prefixes)
        })?;
        let categories = &self.inner.spec.categories;
        Ok(scores
            .chunks(classes.max(1))
            .take(texts.len())
            .map(|row| {
                forward::top_k(row, k)
                    .into_iter()
                    .map(|c| (categories[c].clone(), (row[c] as f64).exp()))
                    .collect()
            })
            .collect())
    }

    /// Columnar scoring of a list of str: (top (B, k) int32, probability (B, k) float32,
    /// error (B,) uint8): 0 for a scored row, else 1 + its position in `ERROR_CODES`.
    #[pyo3(signature = (names, k = 1, max_length = 256))]
    fn score_names<'py>(
        &self,
        py: Python<'py>,
        names: &Bound<'py, PyAny>,
        k: usize,
        max_length: usize,
    ) -> PyResult<ScoredColumns<'py>> {
        let items = collect_items(names)?;
        let texts = borrow_names(&items)?;
        let views: Vec<Option<&str>> = texts.iter().map(|t| Some(t.as_ref())).collect();
        let cols = py.detach(|| score::score_columns(&self.inner, &views, k, max_length))?;
        Ok(columns_to_numpy(
            py,
            cols,
            texts.len(),
            k.clamp(1, self.inner.classes()),
        ))
    }

    /// The same from an Arrow string array's buffers: `offsets` (B + 1, int64) into
    /// `data` (UTF-8 bytes). No Python object is made per row.
    #[pyo3(signature = (offsets, data, k = 1, max_length = 256))]
    fn score_utf8<'py>(
        &self,
        py: Python<'py>,
        offsets: PyReadonlyArray1<'py, i64>,
        data: PyReadonlyArray1<'py, u8>,
        k: usize,
        max_length: usize,
    ) -> PyResult<ScoredColumns<'py>> {
        let offsets = offsets.as_slice()?;
        let data = data.as_slice()?;
        let rows = offsets.len().saturating_sub(1);
        let mut views: Vec<Option<&str>> = Vec::with_capacity(rows);
        for w in offsets.windows(2) {
            let (start, end) = (w[0], w[1]);
            if start < 0 || end < start || end as usize > data.len() {
                return Err(PyValueError::new_err(format!(
                    "offsets [{start}, {end}) fall outside the {} data bytes",
                    data.len()
                )));
            }
            views.push(std::str::from_utf8(&data[start as usize..end as usize]).ok());
        }
        let cols = py.detach(|| score::score_columns(&self.inner, &views, k, max_length))?;
        Ok(columns_to_numpy(
            py,
            cols,
            rows,
            k.clamp(1, self.inner.classes()),
        ))
    }

    #[getter]
    fn categories(&self) -> Vec<String> {
        self.inner.spec.categories.clone()
    }

    fn metadata(&self) -> std::collections::HashMap<String, String> {
        self.inner.spec.metadata.clone()
    }
}

/// Scores a chunk of complete lines of a plain-text name list; returns the formatted
/// rows and (rows, scored, flagged). The GIL is released throughout.
#[pyfunction]
#[pyo3(signature = (
    model, chunk, format = "csv", k = 1, max_length = 256, set_threshold = None,
    min_probability = 0.0
))]
#[allow(clippy::too_many_arguments)] // the scoring options, as Python passes them
fn score_chunk<'py>(
    py: Python<'py>,
    model: &PyModel,
    chunk: &[u8],
    format: &str,
    k: usize,
    max_length: usize,
    set_threshold: Option<f32>,
    min_probability: f32,
) -> PyResult<(Bound<'py, PyBytes>, usize, usize, usize)> {
    let opts = score::Options {
        format: format.parse()?,
        k: k.max(1),
        max_length,
        set_threshold,
        min_probability,
    };
    let (out, counts) = py.detach(|| {
        let mut out = Vec::with_capacity(chunk.len() * 4);
        score::score_chunk(&model.inner, chunk, &opts, &mut out).map(|c| (out, c))
    })?;
    Ok((
        PyBytes::new(py, &out),
        counts.rows,
        counts.scored,
        counts.flagged,
    ))
}

type ScoredColumns<'py> = (
    Bound<'py, PyArray2<i32>>,
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray1<u8>>,
);

fn columns_to_numpy(
    py: Python<'_>,
    cols: score::Columns,
    rows: usize,
    k: usize,
) -> ScoredColumns<'_> {
    let top = Array2::from_shape_vec((rows, k), cols.top).expect("(B, k)");
    let probability = Array2::from_shape_vec((rows, k), cols.probability).expect("(B, k)");
    (
        top.into_pyarray(py),
        probability.into_pyarray(py),
        Array1::from(cols.error).into_pyarray(py),
    )
}

/// The header line `score_chunk`'s rows go under ("" for JSONL).
#[pyfunction]
#[pyo3(signature = (format = "csv", k = 1, sets = false))]
fn score_header(format: &str, k: usize, sets: bool) -> PyResult<String> {
    let opts = score::Options {
        format: format.parse()?,
        k: k.max(1),
        max_length: 0,
        set_threshold: sets.then_some(0.0),
        min_probability: 0.0,
    };
    Ok(score::header(&opts))
}

/// GFLOP/s of a register-resident FMA loop on `threads` threads, and the vector ISA.
#[pyfunction]
fn fma_peak_gflops(py: Python<'_>, threads: usize) -> (f64, &'static str) {
    py.detach(|| peak::fma_peak_gflops(threads))
}

/// Test hook: panics inside a task of the thread pool, so the tests can check that a
/// Rust panic reaches Python as an exception (PyO3's PanicException) and that the pool
/// keeps working afterwards.
#[pyfunction]
fn _panic_in_pool(py: Python<'_>) {
    py.detach(|| {
        threads::pool().install(|| rayon::join(|| panic!("namelang test panic"), || ()));
    });
}

/// The matrix kernel this CPU dispatched to: "avx512", "avx2+fma" or "portable".
#[pyfunction]
fn kernel_isa() -> &'static str {
    gemm::isa().name()
}

#[pyfunction]
fn set_num_threads(n: usize) {
    threads::set_num_threads(n);
}

#[pyfunction]
fn get_num_threads() -> usize {
    threads::num_threads()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ALPHABET", ALPHABET)?;
    let codes: Vec<&str> = score::RowError::ALL.iter().map(|e| e.code()).collect();
    m.add("ERROR_CODES", codes)?;
    m.add_function(wrap_pyfunction!(to_ascii, m)?)?;
    m.add_function(wrap_pyfunction!(to_ascii_batch, m)?)?;
    m.add_function(wrap_pyfunction!(encode, m)?)?;
    m.add_function(wrap_pyfunction!(apply_text_rule, m)?)?;
    m.add_function(wrap_pyfunction!(ngram_rows, m)?)?;
    m.add_function(wrap_pyfunction!(one_hot, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(kernel_isa, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_in_pool, m)?)?;
    m.add_function(wrap_pyfunction!(fma_peak_gflops, m)?)?;
    m.add_function(wrap_pyfunction!(score_chunk, m)?)?;
    m.add_function(wrap_pyfunction!(score_header, m)?)?;
    m.add_class::<PyModel>()?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    Ok(())
}
