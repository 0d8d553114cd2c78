//! `Job`: the answer to every row of one model under one set of options, for every path
//! (`predict`, `predict_sets`, `score_file` in every format, `score_batch`). The row
//! check, error codes, the k cap, the max-length default, prediction sets and
//! abstention are decided here and in `rows`/`score`, never in Python. A job made from
//! a `Model` scores rows itself; one made from a `ModelSpec` is given the
//! log-probabilities (the torch backend) and answers the same way.

use super::args::{count, FullName, Names, NullableNames};
use super::explain::{parts_in, parts_out, PartIn, PartOut};
use super::model::{PyModel, PySpec};
use crate::rows::{self, Lead, RowError, RowFormat};
use crate::score::{self, RowIn, Scores};
use crate::{forward, normalize::TextRule};
use numpy::ndarray::{Array1, Array2};
use numpy::PyUntypedArrayMethods;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};
use std::sync::Arc;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyJob>()
}

#[pyclass(frozen, name = "Job", module = "namelang._native")]
pub struct PyJob {
    fmt: RowFormat,
    /// The model that scores the rows; None: the caller gives log-probabilities.
    model: Option<Arc<forward::Model>>,
    /// The languages as Python strings, made once: every answer hands out references
    /// to them rather than new strings.
    languages: Vec<Py<PyString>>,
}

/// (top-k [(language, probability)], set [(language, probability)] or None, error code
/// or None, parts or None): one row's answer as Python reads it. A `low_confidence`
/// row's top-k are the languages it was not sure of.
type Top = Vec<(Py<PyString>, f64)>;
type AnswerOut = (
    Top,
    Option<Vec<(Py<PyString>, f64)>>,
    Option<&'static str>,
    Option<Vec<PartOut>>,
);
type Formatted<'py> = (Bound<'py, PyBytes>, usize, usize, usize);
type ScoredColumns<'py> = (
    Bound<'py, PyArray2<i32>>,
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray1<u8>>,
);

/// The languages and text rule of what a job is made for, and its model when it has one.
fn source(
    model: &Bound<'_, PyAny>,
) -> PyResult<(Vec<String>, TextRule, Option<Arc<forward::Model>>)> {
    if let Ok(m) = model.cast::<PyModel>() {
        let inner = &m.get().inner;
        return Ok((
            inner.spec.categories.clone(),
            inner.text_rule(),
            Some(inner.clone()),
        ));
    }
    if let Ok(s) = model.cast::<PySpec>() {
        let spec = &s.get().inner;
        return Ok((spec.categories.clone(), spec.text_rule, None));
    }
    Err(PyTypeError::new_err(
        "a Job is made for a Model (it scores the rows) or a ModelSpec (log-probabilities given)",
    ))
}

#[pymethods]
impl PyJob {
    /// `max_length` None: `DEFAULT_MAX_LENGTH`; `set_threshold`: the probability a language
    /// needs to enter the prediction set (None: no sets); `min_probability`: below it a
    /// row names no language (`low_confidence`); `columns`: the input's own columns
    /// (None: a name list); `explain`: parts in a `why` column; `full_name`: names are
    /// full names, scored on their family names (True or "given-first": "John Smith";
    /// "family-first": "Wang Xiaoming"); `transcoded`: undecodable rows are
    /// `invalid_encoding`.
    #[new]
    #[pyo3(signature = (
        model, *, format = "csv", k = None, max_length = None, set_threshold = None,
        min_probability = 0.0, columns = None, explain = 0, full_name = FullName(None),
        transcoded = false
    ))]
    #[allow(clippy::too_many_arguments)] // a job's options, as Python names them
    fn new(
        py: Python<'_>,
        model: &Bound<'_, PyAny>,
        format: &str,
        k: Option<&Bound<'_, PyAny>>,
        max_length: Option<&Bound<'_, PyAny>>,
        set_threshold: Option<f32>,
        min_probability: f32,
        columns: Option<Vec<String>>,
        explain: usize,
        full_name: FullName,
        transcoded: bool,
    ) -> PyResult<Self> {
        let (categories, text_rule, model) = source(model)?;
        let mut fmt = RowFormat::new(
            format.parse()?,
            k.map_or(Ok(1), |k| count(k, "k"))?,
            max_length.map_or(Ok(rows::DEFAULT_MAX_LENGTH), |n| count(n, "max length"))?,
            set_threshold,
            min_probability,
            text_rule,
            categories,
        )?;
        if let Some(columns) = columns {
            if columns.is_empty() {
                return Err(PyValueError::new_err("an input needs at least one column"));
            }
            fmt.columns = columns;
        }
        fmt.explain = explain;
        fmt.full_name = full_name.0;
        if transcoded {
            fmt.undecodable = RowError::InvalidEncoding;
        }
        let languages = fmt
            .categories
            .iter()
            .map(|c| PyString::intern(py, c).unbind())
            .collect();
        Ok(PyJob {
            fmt,
            model,
            languages,
        })
    }

    /// k after the cap at the number of languages.
    #[getter]
    fn k(&self) -> usize {
        self.fmt.k
    }

    /// Letters past which a name is `too_long`.
    #[getter]
    fn max_length(&self) -> usize {
        self.fmt.max_length
    }

    /// Parts shown in the `why` column (0: no such column).
    #[getter]
    fn explain(&self) -> usize {
        self.fmt.explain
    }

    /// Whether the job scores rows itself (made from a Model), or is given
    /// log-probabilities (made from a ModelSpec).
    #[getter]
    fn scores_itself(&self) -> bool {
        self.model.is_some()
    }

    /// The header line (b"" for JSONL).
    fn header<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.fmt.header())
    }

    /// Each name's answer: (top-k, set or None, error or None, parts or None), where
    /// top-k is [] for a row that was not scored (and, under `low_confidence`, the
    /// languages the row does not name). A job without a model needs the
    /// `log_probs` (B, C) of `texts_to_score(names)`, and `why` when it explains.
    #[pyo3(signature = (names, log_probs = None, why = None))]
    fn answers(
        &self,
        py: Python<'_>,
        names: Names,
        log_probs: Option<PyReadonlyArray2<'_, f32>>,
        why: Option<Vec<Vec<PartIn>>>,
    ) -> PyResult<Vec<AnswerOut>> {
        let rows: Vec<RowIn<'_>> = names.0.iter().map(|n| name_row(Some(n), None)).collect();
        let given = self.given(log_probs.as_ref(), why, rows.len())?;
        let answers = py.detach(|| score::answers(&self.fmt, &rows, self.scores(&given)))?;
        Ok(answers
            .into_iter()
            .map(|a| self.answer_out(py, a))
            .collect())
    }

    /// The first of each name's `answers`, the top-k alone: what `predict` returns,
    /// without the tuples a one-name call would build only to drop (explaining jobs
    /// are refused: their parts would be computed for nothing).
    #[pyo3(signature = (names, log_probs = None))]
    fn tops(
        &self,
        py: Python<'_>,
        names: Names,
        log_probs: Option<PyReadonlyArray2<'_, f32>>,
    ) -> PyResult<Vec<Top>> {
        if self.fmt.explain > 0 {
            return Err(PyValueError::new_err(
                "tops() of an explaining job: use answers()",
            ));
        }
        let rows: Vec<RowIn<'_>> = names.0.iter().map(|n| name_row(Some(n), None)).collect();
        let given = self.given(log_probs.as_ref(), None, rows.len())?;
        let answers = py.detach(|| score::answers(&self.fmt, &rows, self.scores(&given)))?;
        Ok(answers.iter().map(|a| self.top_out(py, a)).collect())
    }

    /// What a job without a model must score for each row: the part the model reads
    /// when the row passes its check, "" when it does not. `errors`: what the reader
    /// already found for each row (None: nothing).
    #[pyo3(signature = (names, errors = None))]
    fn texts_to_score(
        &self,
        names: NullableNames,
        errors: Option<Vec<Option<String>>>,
    ) -> PyResult<Vec<String>> {
        let errors = row_errors(errors, names.0.len())?;
        let rows: Vec<RowIn<'_>> = names
            .0
            .iter()
            .zip(&errors)
            .map(|(n, e)| name_row(n.as_deref(), *e))
            .collect();
        Ok(score::texts_to_score(&self.fmt, &rows)
            .into_iter()
            .map(str::to_owned)
            .collect())
    }

    /// The output rows of records read by the caller (CSV, TSV, JSONL, Parquet): each
    /// row's `leads` (the name, a record's fields as a list, or a JSONL record's text
    /// without its closing brace), `names` (str or None) and `errors` (None or a code).
    /// Returns (bytes, rows, scored, flagged).
    #[pyo3(signature = (leads, names, errors, log_probs = None, why = None))]
    fn format_rows<'py>(
        &self,
        py: Python<'py>,
        leads: &Bound<'py, PyList>,
        names: NullableNames,
        errors: Option<Vec<Option<String>>>,
        log_probs: Option<PyReadonlyArray2<'py, f32>>,
        why: Option<Vec<Vec<PartIn>>>,
    ) -> PyResult<Formatted<'py>> {
        let leads = LeadIn::extract_all(&self.fmt, leads, names.0.len())?;
        let errors = row_errors(errors, names.0.len())?;
        let given = self.given(log_probs.as_ref(), why, names.0.len())?;
        let (out, counts) = py.detach(|| {
            let rows: Vec<RowIn<'_>> = leads
                .iter()
                .zip(&names.0)
                .zip(&errors)
                .map(|((lead, name), error)| RowIn {
                    lead: lead.as_lead(),
                    name: name.as_deref(),
                    error: *error,
                })
                .collect();
            let mut out = Vec::with_capacity(rows.len() * 64);
            score::write_rows(&self.fmt, &rows, self.scores(&given), &mut out).map(|c| (out, c))
        })?;
        Ok((
            PyBytes::new(py, &out),
            counts.rows,
            counts.scored,
            counts.flagged,
        ))
    }

    /// The output rows of a chunk of complete lines of a name list, scored by the job's
    /// model across its threads, the GIL released; (bytes, rows, scored, flagged).
    fn score_text<'py>(&self, py: Python<'py>, chunk: &[u8]) -> PyResult<Formatted<'py>> {
        let model = self.model()?;
        let (out, c) = py.detach(|| {
            let mut out = Vec::with_capacity(chunk.len() * 4);
            score::score_chunk(model, chunk, &self.fmt, &mut out).map(|c| (out, c))
        })?;
        Ok((PyBytes::new(py, &out), c.rows, c.scored, c.flagged))
    }

    /// Columnar answers: (top (B, k) int32, -1 for none; probability (B, k) float32, NaN
    /// for none; error (B,) uint8: 0 for a scored row, else 1 + its position in
    /// `ERROR_CODES`). A None name is `null`.
    #[pyo3(signature = (names, log_probs = None))]
    fn columns<'py>(
        &self,
        py: Python<'py>,
        names: NullableNames,
        log_probs: Option<PyReadonlyArray2<'py, f32>>,
    ) -> PyResult<ScoredColumns<'py>> {
        let rows: Vec<RowIn<'_>> = names
            .0
            .iter()
            .map(|n| match n {
                Some(n) => name_row(Some(n), None),
                None => name_row(None, Some(RowError::Null)),
            })
            .collect();
        self.columns_of(py, &rows, log_probs.as_ref())
    }

    /// The same from an Arrow string array's buffers: `offsets` (B + 1, int64) into
    /// `data` (UTF-8 bytes), and `valid` (B, bool; None: every row), with no Python
    /// object made per row.
    #[pyo3(signature = (offsets, data, valid = None))]
    fn columns_utf8<'py>(
        &self,
        py: Python<'py>,
        offsets: PyReadonlyArray1<'py, i64>,
        data: PyReadonlyArray1<'py, u8>,
        valid: Option<PyReadonlyArray1<'py, bool>>,
    ) -> PyResult<ScoredColumns<'py>> {
        let (offsets, data) = (offsets.as_slice()?, data.as_slice()?);
        let valid = valid.as_ref().map(|v| v.as_slice()).transpose()?;
        let rows = offsets.len().saturating_sub(1);
        if valid.is_some_and(|v| v.len() != rows) {
            return Err(PyValueError::new_err(
                "valid has another length than the rows",
            ));
        }
        let mut views: Vec<RowIn<'_>> = Vec::with_capacity(rows);
        for (i, w) in offsets.windows(2).enumerate() {
            let (start, end) = (w[0], w[1]);
            if start < 0 || end < start || end as usize > data.len() {
                return Err(PyValueError::new_err(format!(
                    "offsets [{start}, {end}) fall outside the {} data bytes",
                    data.len()
                )));
            }
            views.push(if valid.is_some_and(|v| !v[i]) {
                name_row(None, Some(RowError::Null))
            } else {
                name_row(
                    std::str::from_utf8(&data[start as usize..end as usize]).ok(),
                    None,
                )
            });
        }
        self.columns_of(py, &views, None)
    }
}

/// A row of a name list or column: the name leads it.
fn name_row(name: Option<&str>, error: Option<RowError>) -> RowIn<'_> {
    RowIn {
        lead: Lead::Name(name.unwrap_or("")),
        name,
        error,
    }
}

fn row_errors(errors: Option<Vec<Option<String>>>, rows: usize) -> PyResult<Vec<Option<RowError>>> {
    let Some(errors) = errors else {
        return Ok(vec![None; rows]);
    };
    if errors.len() != rows {
        return Err(PyValueError::new_err(
            "errors has another length than the rows",
        ));
    }
    errors
        .iter()
        .map(|e| {
            e.as_deref()
                .map(RowError::from_code)
                .transpose()
                .map_err(Into::into)
        })
        .collect()
}

/// Log-probabilities (and parts) a job without a model was given, owned for the
/// threads; None for a job with a model.
struct Given {
    scores: Vec<f32>,
    why: Option<Vec<Vec<crate::explain::Part>>>,
}

impl PyJob {
    fn model(&self) -> PyResult<&forward::Model> {
        self.model.as_deref().ok_or_else(|| {
            PyValueError::new_err("this job was made from a ModelSpec: give its log_probs")
        })
    }

    fn given(
        &self,
        log_probs: Option<&PyReadonlyArray2<'_, f32>>,
        why: Option<Vec<Vec<PartIn>>>,
        rows: usize,
    ) -> PyResult<Option<Given>> {
        let Some(log_probs) = log_probs else {
            self.model()?;
            return Ok(None);
        };
        let classes = self.fmt.categories.len();
        if log_probs.shape() != [rows, classes] {
            return Err(PyValueError::new_err(format!(
                "log-probabilities of shape {:?} for {rows} rows of {classes} languages",
                log_probs.shape()
            )));
        }
        let why = why.map(parts_in);
        if why.as_ref().is_some_and(|w| w.len() != rows) {
            return Err(PyValueError::new_err(
                "why has another length than the rows",
            ));
        }
        Ok(Some(Given {
            scores: log_probs.as_slice()?.to_vec(),
            why,
        }))
    }

    fn scores<'a>(&'a self, given: &'a Option<Given>) -> Scores<'a> {
        match (given, &self.model) {
            (Some(g), _) => Scores::Given(&g.scores, g.why.as_deref()),
            (None, Some(model)) => Scores::Model(model),
            (None, None) => unreachable!("`given` refuses a job without model or scores"),
        }
    }

    /// The languages a row shows: its top-k, or under `low_confidence` those withheld.
    fn top_out(&self, py: Python<'_>, a: &rows::Answer) -> Top {
        let shown = if a.top.is_empty() {
            &a.withheld
        } else {
            &a.top
        };
        let named = |&(c, p): &(usize, f64)| (self.languages[c].clone_ref(py), p);
        shown.iter().map(named).collect()
    }

    fn answer_out(&self, py: Python<'_>, a: rows::Answer) -> AnswerOut {
        let named = |c: usize, p: f64| (self.languages[c].clone_ref(py), p);
        let top = self.top_out(py, &a);
        let set = self.fmt.set_threshold.map(|_| {
            a.set
                .iter()
                .zip(&a.set_probability)
                .map(|(&c, &p)| named(c, p))
                .collect()
        });
        let why = (self.fmt.explain > 0).then(|| {
            let parts = if a.top.is_empty() { Vec::new() } else { a.why };
            parts_out(vec![parts]).pop().unwrap_or_default()
        });
        (top, set, a.error.map(RowError::code), why)
    }

    fn columns_of<'py>(
        &self,
        py: Python<'py>,
        rows: &[RowIn<'_>],
        log_probs: Option<&PyReadonlyArray2<'py, f32>>,
    ) -> PyResult<ScoredColumns<'py>> {
        let given = self.given(log_probs, None, rows.len())?;
        let cols = py.detach(|| match &given {
            Some(g) => score::columns_given(&self.fmt, rows, &g.scores),
            None => score::score_columns(
                self.model.as_deref().expect("given checked"),
                &self.fmt,
                rows,
            ),
        })?;
        let (n, k) = (rows.len(), self.fmt.k);
        let top = Array2::from_shape_vec((n, k), cols.top).expect("(B, k)");
        let probability = Array2::from_shape_vec((n, k), cols.probability).expect("(B, k)");
        Ok((
            top.into_pyarray(py),
            probability.into_pyarray(py),
            Array1::from(cols.error).into_pyarray(py),
        ))
    }
}

/// A row's lead as Python gave it, owned so that the GIL can go.
enum LeadIn {
    Text(String),
    Fields(Vec<String>),
    Json(String),
}

impl LeadIn {
    /// str (the name, or for JSONL output a JSON object's text without its closing
    /// brace when it starts with "{") or list of str (a record's fields).
    fn extract_all(
        fmt: &RowFormat,
        leads: &Bound<'_, PyList>,
        rows: usize,
    ) -> PyResult<Vec<LeadIn>> {
        if leads.len() != rows {
            return Err(PyValueError::new_err("leads and names differ in length"));
        }
        let text = |o: &Bound<'_, PyAny>| -> PyResult<String> {
            let s = o
                .cast::<PyString>()
                .map_err(|_| PyTypeError::new_err("a lead must be str or a list of str"))?;
            Ok(s.to_string_lossy().into_owned())
        };
        leads
            .iter()
            .map(|lead| {
                if let Ok(list) = lead.cast::<PyList>() {
                    return Ok(LeadIn::Fields(
                        list.iter().map(|f| text(&f)).collect::<PyResult<_>>()?,
                    ));
                }
                let s = text(&lead)?;
                Ok(if fmt.format == rows::Format::Jsonl && s.starts_with('{') {
                    LeadIn::Json(s)
                } else {
                    LeadIn::Text(s)
                })
            })
            .collect()
    }

    fn as_lead(&self) -> Lead<'_> {
        match self {
            LeadIn::Text(s) => Lead::Name(s),
            LeadIn::Fields(f) => Lead::Fields(f),
            LeadIn::Json(s) => Lead::Json(s),
        }
    }
}
