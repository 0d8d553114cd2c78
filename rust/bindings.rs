//! The Python module `namelang._native`: converts types and errors, releases
//! the GIL around batch work, and hands arrays to numpy without copying.

use crate::alphabet::{ALPHABET, N_LETTERS};
use crate::encode as encoding;
use crate::{
    error::Error, explain, forward, gemm, model_file, normalize, peak, rows, score, threads,
};
use numpy::ndarray::{Array1, Array2, Array3};
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArray3, PyArrayDyn, PyReadonlyArray1, PyReadonlyArray2,
    PyReadonlyArrayDyn, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};
use std::borrow::Cow;
use std::collections::HashMap;

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

/// The surname of each full name, with its particles ("Jan van den Berg" -> "van den
/// Berg", "Smith, John" -> "Smith").
#[pyfunction]
fn surnames(names: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    let items = collect_items(names)?;
    let texts = borrow_names(&items)?;
    Ok(texts
        .iter()
        .map(|t| crate::fullname::surname(t).to_string())
        .collect())
}

/// Cyrillic and Greek letters in Latin, other characters as they are.
#[pyfunction]
fn romanize(name: &str) -> String {
    crate::romanize::romanize(name).into_owned()
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
        threads::map(&texts, convert)
    });
    let out = converted.into_iter().zip(&items).map(|(c, item)| match c {
        None => item.clone(),
        Some(s) => PyString::new(py, &s).into_any(),
    });
    PyList::new(py, out)
}

type Encoded<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray1<i64>>);

fn text_rule(name: &str) -> PyResult<normalize::TextRule> {
    Ok(name.parse()?)
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
    let (indices, lengths, width) = py.detach(|| encode_all(&texts, rule, 1))?;
    let lengths: Array1<i64> = lengths.into_iter().map(|l| l as i64).collect();
    let indices =
        Array2::from_shape_vec((texts.len(), width), indices).expect("buffer sized as (B, T_max)");
    Ok((indices.into_pyarray(py), lengths.into_pyarray(py)))
}

/// (B,) int64: the letters a model with this rule reads from each name.
#[pyfunction]
#[pyo3(signature = (names, text_rule = "exact"))]
fn lengths<'py>(
    py: Python<'py>,
    names: &Bound<'py, PyAny>,
    text_rule: &str,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let rule = self::text_rule(text_rule)?;
    let items = collect_items(names)?;
    let texts = borrow_names(&items)?;
    let lengths = py.detach(|| encoding::lengths_with(&texts, rule));
    Ok(lengths
        .into_iter()
        .map(|l| l as i64)
        .collect::<Array1<i64>>()
        .into_pyarray(py))
}

/// (T_max, B, 57) float32 one-hot, time first, zero-padded.
#[pyfunction]
fn one_hot<'py>(py: Python<'py>, names: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArray3<f32>>> {
    let items = collect_items(names)?;
    let texts = borrow_names(&items)?;
    let batch = texts.len();
    let (planes, width) = py.detach(|| {
        let (indices, lengths, width) = encode_all(&texts, normalize::TextRule::Exact, N_LETTERS)?;
        let mut planes = vec![0f32; width * batch * N_LETTERS];
        encoding::fill_one_hot(&indices, &lengths, width, &mut planes);
        Ok::<_, PyErr>((planes, width))
    })?;
    let planes = Array3::from_shape_vec((width, batch, N_LETTERS), planes)
        .expect("buffer sized as (T_max, B, 57)");
    Ok(planes.into_pyarray(py))
}

/// The most elements `encode` (B x T_max int64) or `one_hot` (T_max x B x 57 float32)
/// returns: 2**28, 2 GiB of indices or 1 GiB of one-hot. Padded arrays grow with the
/// longest name times the batch; past this, `log_probs` or `score` handle any lengths
/// without padding.
const MAX_PADDED_ELEMENTS: usize = 1 << 28;

fn encode_all(
    texts: &[Cow<'_, str>],
    rule: normalize::TextRule,
    per_letter: usize,
) -> PyResult<(Vec<i64>, Vec<usize>, usize)> {
    let lengths = encoding::lengths_with(texts, rule);
    let width = lengths.iter().copied().max().unwrap_or(0);
    let elements = width.saturating_mul(texts.len()).saturating_mul(per_letter);
    if elements > MAX_PADDED_ELEMENTS {
        return Err(PyValueError::new_err(format!(
            "{} names padded to the longest ({width} letters) make {elements} elements, more \
             than the {MAX_PADDED_ELEMENTS} a padded array may hold; encode long names apart \
             from short ones, or use Classifier.log_probs or score_file, which need no padding",
            texts.len()
        )));
    }
    let mut indices = vec![0i64; texts.len() * width];
    encoding::fill_indices(texts, rule, width, &mut indices);
    Ok((indices, lengths, width))
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
    /// `logit_shift`: added to every answer's logits (a target prior's
    /// log(prior / training share), one per language; -inf rules a language out).
    #[new]
    #[pyo3(signature = (path, share_prefixes = true, logit_shift = None))]
    fn new(
        py: Python<'_>,
        path: std::path::PathBuf,
        share_prefixes: bool,
        logit_shift: Option<Vec<f32>>,
    ) -> PyResult<Self> {
        let path = path.to_string_lossy().into_owned();
        let mut inner = py.detach(|| forward::Model::from_path(&path))?;
        inner.share_prefixes = share_prefixes;
        inner.set_logit_shift(logit_shift)?;
        Ok(PyModel { inner })
    }

    #[staticmethod]
    #[pyo3(signature = (data, share_prefixes = true, logit_shift = None))]
    fn from_bytes(
        py: Python<'_>,
        data: &[u8],
        share_prefixes: bool,
        logit_shift: Option<Vec<f32>>,
    ) -> PyResult<Self> {
        let mut inner = py.detach(|| forward::Model::from_bytes(data))?;
        inner.share_prefixes = share_prefixes;
        inner.set_logit_shift(logit_shift)?;
        Ok(PyModel { inner })
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

    /// Top-k (language, probability) per name, best first ([] for a name with no
    /// letters): `RowFormat.top` of this model's log-probabilities, in one call.
    fn predict(
        &self,
        py: Python<'_>,
        names: &Bound<'_, PyAny>,
        rows: &PyRowFormat,
    ) -> PyResult<TopLists> {
        let items = collect_items(names)?;
        let texts = borrow_names(&items)?;
        let fmt = rows.for_model(&self.inner)?;
        let scores = py.detach(|| {
            self.inner
                .log_probs(&texts, forward::Method::Auto, self.inner.share_prefixes)
        })?;
        Ok(top_lists(&fmt, &scores))
    }

    /// Columnar scoring of a list of str: (top (B, k) int32, probability (B, k) float32,
    /// error (B,) uint8): 0 for a scored row, else 1 + its position in `ERROR_CODES`.
    fn score_names<'py>(
        &self,
        py: Python<'py>,
        names: &Bound<'py, PyAny>,
        rows: &PyRowFormat,
    ) -> PyResult<ScoredColumns<'py>> {
        let items = collect_items(names)?;
        let texts = borrow_names(&items)?;
        let views: Vec<Option<&str>> = texts.iter().map(|t| Some(t.as_ref())).collect();
        self.columns(py, rows, &views)
    }

    /// The same from an Arrow string array's buffers: `offsets` (B + 1, int64) into
    /// `data` (UTF-8 bytes). No Python object is made per row.
    fn score_utf8<'py>(
        &self,
        py: Python<'py>,
        offsets: PyReadonlyArray1<'py, i64>,
        data: PyReadonlyArray1<'py, u8>,
        rows: &PyRowFormat,
    ) -> PyResult<ScoredColumns<'py>> {
        let offsets = offsets.as_slice()?;
        let data = data.as_slice()?;
        let mut views: Vec<Option<&str>> = Vec::with_capacity(offsets.len());
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
        self.columns(py, rows, &views)
    }

    /// Scores rows read from a CSV, TSV or JSONL input (see `RowFormat.format_rows`)
    /// with this model; returns the formatted rows and (rows, scored, flagged).
    fn score_rows<'py>(
        &self,
        py: Python<'py>,
        rows: &PyRowFormat,
        leads: &Bound<'py, PyList>,
        names: &Bound<'py, PyList>,
        errors: &Bound<'py, PyList>,
    ) -> PyResult<Formatted<'py>> {
        let fmt = rows.for_model(&self.inner)?;
        let input = RowsIn::extract(&fmt, leads, names, errors)?;
        let (out, counts) = py.detach(|| {
            let rows = input.rows();
            let mut out = Vec::with_capacity(rows.len() * 64);
            score::write_rows(
                &fmt,
                &rows,
                score::Scores::Model(&self.inner, true),
                &mut out,
            )
            .map(|c| (out, c))
        })?;
        Ok(formatted(py, &out, counts))
    }

    /// Up to `k` parts per name that raised its top language (`explain`), as dicts.
    #[pyo3(signature = (names, k = 3))]
    fn explain<'py>(
        &self,
        py: Python<'py>,
        names: &Bound<'py, PyAny>,
        k: usize,
    ) -> PyResult<Vec<Vec<PartOut>>> {
        let items = collect_items(names)?;
        let texts = borrow_names(&items)?;
        let parts = py.detach(|| explain::explain(&self.inner, &texts, k))?;
        Ok(parts_out(parts))
    }

    #[getter]
    fn categories(&self) -> Vec<String> {
        self.inner.spec.categories.clone()
    }

    fn metadata(&self) -> HashMap<String, String> {
        self.inner.spec.metadata.clone()
    }
}

/// Scores a chunk of complete lines of a plain-text name list; returns the formatted
/// rows and (rows, scored, flagged). The GIL is released throughout.
#[pyfunction]
fn score_chunk<'py>(
    py: Python<'py>,
    model: &PyModel,
    chunk: &[u8],
    rows: &PyRowFormat,
) -> PyResult<Formatted<'py>> {
    let fmt = rows.for_model(&model.inner)?;
    let (out, counts) = py.detach(|| {
        let mut out = Vec::with_capacity(chunk.len() * 4);
        score::score_chunk(&model.inner, chunk, &fmt, &mut out).map(|c| (out, c))
    })?;
    Ok(formatted(py, &out, counts))
}

type Formatted<'py> = (Bound<'py, PyBytes>, usize, usize, usize);

fn formatted<'py>(py: Python<'py>, out: &[u8], c: rows::Counts) -> Formatted<'py> {
    (PyBytes::new(py, out), c.rows, c.scored, c.flagged)
}

/// The rows of a CSV/TSV/JSONL batch as Python gave them, owned so that the GIL can go.
struct RowsIn {
    leads: Vec<LeadIn>,
    names: Vec<Option<String>>,
    errors: Vec<Option<rows::RowError>>,
}

enum LeadIn {
    Text(String),
    Fields(Vec<String>),
    Json(String),
}

impl RowsIn {
    /// `leads`: str (the name, or a JSON object's text without its closing brace when
    /// it starts with "{" and the output is JSONL) or list of str (a record's fields);
    /// `names`: str or None; `errors`: None or a row error code.
    fn extract(
        fmt: &rows::RowFormat,
        leads: &Bound<'_, PyList>,
        names: &Bound<'_, PyList>,
        errors: &Bound<'_, PyList>,
    ) -> PyResult<RowsIn> {
        if leads.len() != names.len() || names.len() != errors.len() {
            return Err(PyValueError::new_err(
                "leads, names and errors differ in length",
            ));
        }
        let text = |o: &Bound<'_, PyAny>| -> PyResult<String> {
            let s = o
                .cast::<PyString>()
                .map_err(|_| PyTypeError::new_err("expected str"))?;
            Ok(s.to_string_lossy().into_owned())
        };
        let mut out = RowsIn {
            leads: Vec::new(),
            names: Vec::new(),
            errors: Vec::new(),
        };
        for ((lead, name), error) in leads.iter().zip(names.iter()).zip(errors.iter()) {
            out.leads.push(if let Ok(list) = lead.cast::<PyList>() {
                LeadIn::Fields(list.iter().map(|f| text(&f)).collect::<PyResult<_>>()?)
            } else {
                let s = text(&lead)?;
                if fmt.format == rows::Format::Jsonl && s.starts_with('{') {
                    LeadIn::Json(s)
                } else {
                    LeadIn::Text(s)
                }
            });
            out.names.push(if name.is_none() {
                None
            } else {
                Some(text(&name)?)
            });
            out.errors.push(if error.is_none() {
                None
            } else {
                Some(rows::RowError::from_code(&text(&error)?)?)
            });
        }
        Ok(out)
    }

    fn rows(&self) -> Vec<score::RowIn<'_>> {
        self.leads
            .iter()
            .zip(&self.names)
            .zip(&self.errors)
            .map(|((lead, name), error)| score::RowIn {
                lead: match lead {
                    LeadIn::Text(s) => rows::Lead::Name(s),
                    LeadIn::Fields(f) => rows::Lead::Fields(f),
                    LeadIn::Json(s) => rows::Lead::Json(s),
                },
                name: name.as_deref(),
                error: *error,
            })
            .collect()
    }
}

/// What a scoring job asks of every row, checked once (k capped at the languages):
/// formats rows for the torch backend, and is handed to the native scorers.
#[pyclass(frozen, name = "RowFormat", module = "namelang._native")]
struct PyRowFormat {
    inner: rows::RowFormat,
}

#[pymethods]
impl PyRowFormat {
    #[new]
    #[pyo3(signature = (
        categories, text_rule = "exact", format = "csv", k = None, max_length = None,
        set_threshold = None, min_probability = 0.0, columns = None, explain = 0,
        full_name = false, transcoded = false
    ))]
    #[allow(clippy::too_many_arguments)] // the scoring options, as Python passes them
    fn new(
        categories: Vec<String>,
        text_rule: &str,
        format: &str,
        k: Option<&Bound<'_, PyAny>>,
        max_length: Option<&Bound<'_, PyAny>>,
        set_threshold: Option<f32>,
        min_probability: f32,
        columns: Option<Vec<String>>,
        explain: usize,
        full_name: bool,
        transcoded: bool,
    ) -> PyResult<Self> {
        let mut inner = rows::RowFormat::new(
            format.parse()?,
            k.map_or(Ok(1), |k| count(k, "k"))?,
            max_length.map_or(Ok(256), |n| count(n, "max length"))?,
            set_threshold,
            min_probability,
            self::text_rule(text_rule)?,
            categories,
        )?;
        if let Some(columns) = columns {
            if columns.is_empty() {
                return Err(PyValueError::new_err("an input needs at least one column"));
            }
            inner.columns = columns;
        }
        inner.explain = explain;
        inner.full_name = full_name;
        if transcoded {
            inner.undecodable = rows::RowError::InvalidEncoding;
        }
        Ok(PyRowFormat { inner })
    }

    /// k after the cap at the number of languages.
    #[getter]
    fn k(&self) -> usize {
        self.inner.k
    }

    /// Parts shown in the `why` column (0: no such column).
    #[getter]
    fn explain(&self) -> usize {
        self.inner.explain
    }

    /// Whether names are full names, scored on their surnames.
    #[getter]
    fn full_name(&self) -> bool {
        self.inner.full_name
    }

    /// The header line (b"" for JSONL).
    fn header<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.header())
    }

    /// The rows, formatted from log-probabilities computed elsewhere ((B, C) float32;
    /// rows that fail the check may hold anything) and, for a `why` column, each row's
    /// parts as `explain_rank` gives them.
    #[pyo3(signature = (leads, names, errors, log_probs, why = None))]
    fn format_rows<'py>(
        &self,
        py: Python<'py>,
        leads: &Bound<'py, PyList>,
        names: &Bound<'py, PyList>,
        errors: &Bound<'py, PyList>,
        log_probs: PyReadonlyArray2<'py, f32>,
        why: Option<Vec<Vec<PartIn>>>,
    ) -> PyResult<Formatted<'py>> {
        let input = RowsIn::extract(&self.inner, leads, names, errors)?;
        let scores = log_probs.as_slice()?;
        let why: Option<Vec<Vec<explain::Part>>> = why.map(|rows| {
            rows.into_iter()
                .map(|r| r.into_iter().map(|p| p.0).collect())
                .collect()
        });
        if why.as_ref().is_some_and(|w| w.len() != input.names.len()) {
            return Err(PyValueError::new_err(
                "why has another length than the rows",
            ));
        }
        let (out, counts) = py.detach(|| {
            let rows = input.rows();
            let mut out = Vec::with_capacity(rows.len() * 64);
            let scores = score::Scores::Given(scores, why.as_deref());
            score::write_rows(&self.inner, &rows, scores, &mut out).map(|c| (out, c))
        })?;
        Ok(formatted(py, &out, counts))
    }

    /// Each row's check: 0 where the name is scored, else its error's column code.
    fn check<'py>(
        &self,
        py: Python<'py>,
        names: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<u8>>> {
        let items = collect_items(names)?;
        let texts = borrow_names(&items)?;
        let codes: Vec<u8> = py.detach(|| {
            texts
                .iter()
                .map(|t| rows::RowError::column_code(self.inner.check(Some(t), None)))
                .collect()
        });
        Ok(Array1::from(codes).into_pyarray(py))
    }

    /// Top-k (language, probability) per row of (B, C) log-probabilities, best first;
    /// [] for a row without numbers (a name with no letters).
    fn top(&self, log_probs: PyReadonlyArray2<'_, f32>) -> PyResult<TopLists> {
        let classes = self.inner.categories.len();
        if log_probs.shape()[1] != classes {
            return Err(PyValueError::new_err(format!(
                "log-probabilities have {} columns for {classes} languages",
                log_probs.shape()[1]
            )));
        }
        Ok(top_lists(&self.inner, log_probs.as_slice()?))
    }

    /// Top-k columns from (B, C) log-probabilities: (top (B, k) int32, -1 for none;
    /// probability (B, k) float32; error (B,) uint8), as `Model.score_names` gives them.
    fn columns<'py>(
        &self,
        py: Python<'py>,
        log_probs: PyReadonlyArray2<'py, f32>,
    ) -> PyResult<ScoredColumns<'py>> {
        let shape = log_probs.shape();
        if shape[1] != self.inner.categories.len() {
            return Err(PyValueError::new_err(format!(
                "log-probabilities have {} columns for {} languages",
                shape[1],
                self.inner.categories.len()
            )));
        }
        let scores = log_probs.as_slice()?;
        let errors = vec![None; shape[0]];
        let cols = py.detach(|| score::columns(&self.inner, &errors, scores))?;
        Ok(columns_to_numpy(py, cols, shape[0], self.inner.k))
    }
}

impl PyModel {
    /// Columnar scores of names given as text (None: not UTF-8), the GIL released.
    fn columns<'py>(
        &self,
        py: Python<'py>,
        rows: &PyRowFormat,
        views: &[Option<&str>],
    ) -> PyResult<ScoredColumns<'py>> {
        let fmt = rows.for_model(&self.inner)?;
        let cols = py.detach(|| score::score_columns(&self.inner, &fmt, views))?;
        Ok(columns_to_numpy(py, cols, views.len(), fmt.k))
    }
}

impl PyRowFormat {
    /// The format for this model: its languages must be the ones the format names, and
    /// names are read by the model's text rule.
    fn for_model(&self, model: &forward::Model) -> PyResult<Cow<'_, rows::RowFormat>> {
        if model.spec.categories != self.inner.categories {
            return Err(PyValueError::new_err(
                "this RowFormat was made for another model's languages",
            ));
        }
        if self.inner.text_rule == model.text_rule() {
            return Ok(Cow::Borrowed(&self.inner));
        }
        let mut fmt = self.inner.clone();
        fmt.text_rule = model.text_rule();
        Ok(Cow::Owned(fmt))
    }
}

type TopLists = Vec<Vec<(String, f64)>>;

/// Each row's top-k (language, probability), from row-major (B, C) log-probabilities.
fn top_lists(fmt: &rows::RowFormat, scores: &[f32]) -> TopLists {
    let mut answer = rows::Answer::default();
    let classes = fmt.categories.len();
    scores
        .chunks(classes)
        .map(|row| {
            answer.fill(fmt, row, None);
            answer
                .top
                .iter()
                .map(|&(c, p)| (fmt.categories[c].clone(), p))
                .collect()
        })
        .collect()
}

/// A count argument: an int of at least 1; one past usize::MAX saturates (a k that
/// large is capped at the languages; a max length that large is refused later).
fn count(value: &Bound<'_, PyAny>, what: &str) -> PyResult<usize> {
    if value.is_instance_of::<pyo3::types::PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be an int, not bool"
        )));
    }
    let n: i128 = value
        .extract()
        .map_err(|_| PyTypeError::new_err(format!("{what} must be an int")))
        .or_else(|e| {
            // Python ints past i128 come here too: positive ones saturate.
            if value.gt(0).unwrap_or(false) && value.is_instance_of::<pyo3::types::PyInt>() {
                Ok(i128::MAX)
            } else {
                Err(e)
            }
        })?;
    if n < 1 {
        return Err(PyValueError::new_err(format!(
            "{what} must be at least 1, got {n}"
        )));
    }
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
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

type Tensors<'py> = Vec<(String, Bound<'py, PyArrayDyn<f32>>)>;

/// Reads and validates a model file (the one reader both backends use): its metadata
/// and float32 tensors, in the order the spec lists them.
#[pyfunction]
fn read_model_file<'py>(
    py: Python<'py>,
    path: std::path::PathBuf,
) -> PyResult<(HashMap<String, String>, Tensors<'py>)> {
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
            let values = tensors.remove(&name).expect("parse checked every tensor");
            let array = numpy::ndarray::ArrayD::from_shape_vec(shape, values)
                .expect("parse checked the shape");
            (name, array.into_pyarray(py))
        })
        .collect();
    Ok((file.spec.metadata, arrays))
}

/// A part as Python holds it: a dict with text, start, end and weight.
struct PartOut(explain::Part);

impl<'py> IntoPyObject<'py> for PartOut {
    type Target = pyo3::types::PyDict;
    type Output = Bound<'py, Self::Target>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        let d = pyo3::types::PyDict::new(py);
        d.set_item("text", self.0.text)?;
        d.set_item("start", self.0.start)?;
        d.set_item("end", self.0.end)?;
        d.set_item("weight", self.0.weight)?;
        Ok(d)
    }
}

/// A part given back from Python (a dict as `PartOut` makes it).
struct PartIn(explain::Part);

impl<'py> FromPyObject<'_, 'py> for PartIn {
    type Error = PyErr;

    fn extract(ob: pyo3::Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        Ok(PartIn(explain::Part {
            text: ob.get_item("text")?.extract()?,
            start: ob.get_item("start")?.extract()?,
            end: ob.get_item("end")?.extract()?,
            weight: ob.get_item("weight")?.extract()?,
        }))
    }
}

fn parts_out(parts: Vec<Vec<explain::Part>>) -> Vec<Vec<PartOut>> {
    parts
        .into_iter()
        .map(|row| row.into_iter().map(PartOut).collect())
        .collect()
}

/// For a backend that scores names elsewhere: each name as `text_rule` reads it, and its
/// candidates (the read name with each part deleted), all names' in one list.
#[pyfunction]
fn explain_candidates(
    names: &Bound<'_, PyAny>,
    text_rule: &str,
) -> PyResult<(Vec<String>, Vec<String>)> {
    let rule = self::text_rule(text_rule)?;
    let items = collect_items(names)?;
    let texts = borrow_names(&items)?;
    let mut candidates = Vec::new();
    let reads = texts
        .iter()
        .map(|t| explain::candidates(t, rule, &mut candidates))
        .collect();
    Ok((reads, candidates))
}

/// Up to `k` parts per name from the log-probabilities of the names (B, C) and of their
/// candidates (N, C), in `explain_candidates`' order.
#[pyfunction]
fn explain_rank(
    reads: Vec<String>,
    log_probs: PyReadonlyArray2<'_, f32>,
    candidates: PyReadonlyArray2<'_, f32>,
    k: usize,
) -> PyResult<Vec<Vec<PartOut>>> {
    let (full, rows) = (log_probs.as_slice()?, candidates.as_slice()?);
    let classes = log_probs.shape()[1];
    if log_probs.shape()[0] != reads.len() || candidates.shape()[1] != classes {
        return Err(PyValueError::new_err(
            "log-probabilities do not fit the names",
        ));
    }
    let mut at = 0;
    let mut out = Vec::with_capacity(reads.len());
    for (i, read) in reads.iter().enumerate() {
        let n = explain::spans(read.len()).count();
        let Some(mine) = rows.get(at * classes..(at + n) * classes) else {
            return Err(PyValueError::new_err(
                "fewer candidate rows than candidates",
            ));
        };
        out.push(explain::rank(
            read,
            &full[i * classes..(i + 1) * classes],
            mine,
            k,
        ));
        at += n;
    }
    if at != candidates.shape()[0] {
        return Err(PyValueError::new_err("more candidate rows than candidates"));
    }
    Ok(parts_out(out))
}

/// The digest a model file with this metadata and these float32 tensors carries
/// (`model_file::digest`): the writer stores it, the reader checks it.
#[pyfunction]
fn model_digest(
    metadata: HashMap<String, String>,
    tensors: Vec<(String, PyReadonlyArrayDyn<'_, f32>)>,
) -> PyResult<String> {
    let mut bytes = Vec::with_capacity(tensors.len());
    for (name, array) in &tensors {
        let values = array.as_slice().map_err(|_| {
            PyValueError::new_err(format!("tensor {name} must be a contiguous float32 array"))
        })?;
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        bytes.push((name.as_str(), array.shape().to_vec(), raw));
    }
    let views: Vec<model_file::TensorBytes<'_>> = bytes
        .iter()
        .map(|(name, shape, raw)| (*name, "F32", shape.as_slice(), raw.as_slice()))
        .collect();
    Ok(model_file::digest(&metadata, &views))
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

/// The spec's tensor names and shapes for this metadata, after the same checks as a
/// file's (a ValueError names what does not fit).
#[pyfunction]
fn expected_shapes(metadata: HashMap<String, String>) -> PyResult<Vec<(String, Vec<usize>)>> {
    let spec = model_file::spec_from_metadata(&metadata)?;
    Ok(model_file::expected_shapes(&spec))
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
fn set_num_threads(n: usize) -> PyResult<()> {
    Ok(threads::set_num_threads(n)?)
}

/// The most threads `set_num_threads` accepts (4 per core).
#[pyfunction]
fn max_threads() -> usize {
    threads::max_threads()
}

#[pyfunction]
fn get_num_threads() -> usize {
    threads::num_threads()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ALPHABET", ALPHABET)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    let codes: Vec<&str> = rows::RowError::ALL.iter().map(|e| e.code()).collect();
    m.add("ERROR_CODES", codes)?;
    m.add("ADDED_KEYS", rows::ADDED_KEYS.to_vec())?;
    m.add_function(wrap_pyfunction!(to_ascii, m)?)?;
    m.add_function(wrap_pyfunction!(to_ascii_batch, m)?)?;
    m.add_function(wrap_pyfunction!(romanize, m)?)?;
    m.add_function(wrap_pyfunction!(surnames, m)?)?;
    m.add_function(wrap_pyfunction!(encode, m)?)?;
    m.add_function(wrap_pyfunction!(lengths, m)?)?;
    m.add_function(wrap_pyfunction!(apply_text_rule, m)?)?;
    m.add_function(wrap_pyfunction!(ngram_rows, m)?)?;
    m.add_function(wrap_pyfunction!(one_hot, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(kernel_isa, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_in_pool, m)?)?;
    m.add_function(wrap_pyfunction!(fma_peak_gflops, m)?)?;
    m.add_function(wrap_pyfunction!(score_chunk, m)?)?;
    m.add_class::<PyRowFormat>()?;
    m.add_function(wrap_pyfunction!(read_model_file, m)?)?;
    m.add_function(wrap_pyfunction!(expected_shapes, m)?)?;
    m.add_function(wrap_pyfunction!(model_digest, m)?)?;
    m.add_function(wrap_pyfunction!(explain_candidates, m)?)?;
    m.add_function(wrap_pyfunction!(explain_rank, m)?)?;
    m.add_class::<PyModel>()?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(max_threads, m)?)?;
    Ok(())
}
