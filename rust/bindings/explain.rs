//! Parts of names that raised their top language (`crate::explain`), as dicts, and the
//! two halves of an explanation for a backend that scores names elsewhere.

use super::args::Names;
use super::text::text_rule;
use crate::explain::{self, Part};
use crate::marks::Marks;
use numpy::{PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(explain_candidates, m)?)?;
    m.add_function(wrap_pyfunction!(explain_rank, m)?)?;
    Ok(())
}

/// A part as Python holds it: a dict with text, start, end and weight.
pub struct PartOut(pub Part);

impl<'py> IntoPyObject<'py> for PartOut {
    type Target = PyDict;
    type Output = Bound<'py, Self::Target>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        let d = PyDict::new(py);
        d.set_item("text", self.0.text)?;
        d.set_item("start", self.0.start)?;
        d.set_item("end", self.0.end)?;
        d.set_item("weight", self.0.weight)?;
        Ok(d)
    }
}

/// A part given back from Python (a dict as `PartOut` makes it).
pub struct PartIn(pub Part);

impl<'py> FromPyObject<'_, 'py> for PartIn {
    type Error = PyErr;

    fn extract(ob: pyo3::Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        Ok(PartIn(Part {
            text: ob.get_item("text")?.extract()?,
            start: ob.get_item("start")?.extract()?,
            end: ob.get_item("end")?.extract()?,
            weight: ob.get_item("weight")?.extract()?,
        }))
    }
}

pub fn parts_out(parts: Vec<Vec<Part>>) -> Vec<Vec<PartOut>> {
    parts
        .into_iter()
        .map(|row| row.into_iter().map(PartOut).collect())
        .collect()
}

pub fn parts_in(parts: Vec<Vec<PartIn>>) -> Vec<Vec<Part>> {
    parts
        .into_iter()
        .map(|r| r.into_iter().map(|p| p.0).collect())
        .collect()
}

/// For a backend that scores names elsewhere: each name as `text_rule` reads it, and its
/// candidates (the read name with each part deleted), all names' in one list.
#[pyfunction]
fn explain_candidates(names: Names, text_rule: &str) -> PyResult<(Vec<String>, Vec<String>)> {
    let rule = self::text_rule(text_rule)?;
    let mut candidates = Vec::new();
    let reads = names
        .0
        .iter()
        .map(|t| explain::candidates(t, rule, &mut candidates))
        .collect();
    Ok((reads, candidates))
}

/// A model's marks as the torch backend holds them: the names as written, the model's
/// text rule, its marks and their rows (M, C).
type MarksIn<'py> = (Vec<String>, String, Vec<String>, PyReadonlyArray2<'py, f32>);

/// Up to `k` parts per name from the log-probabilities of the names (B, C) and of their
/// candidates (N, C), in `explain_candidates`' order; with `marks` (a model that has
/// them), the candidates get each name's marks back and the marks are parts too
/// (`explain::with_marks`).
#[pyfunction]
#[pyo3(signature = (reads, log_probs, candidates, k, marks = None))]
fn explain_rank(
    reads: Vec<String>,
    log_probs: PyReadonlyArray2<'_, f32>,
    candidates: PyReadonlyArray2<'_, f32>,
    k: usize,
    marks: Option<MarksIn<'_>>,
) -> PyResult<Vec<Vec<PartOut>>> {
    let (full, mut rows) = (log_probs.as_slice()?, candidates.as_slice()?.to_vec());
    let classes = log_probs.shape()[1];
    if log_probs.shape()[0] != reads.len() || candidates.shape()[1] != classes {
        return Err(PyValueError::new_err(
            "log-probabilities do not fit the names",
        ));
    }
    let marks = match &marks {
        Some((names, rule, listed, weight)) => Some((
            names,
            text_rule(rule)?,
            marks_of(listed, weight.as_slice()?, classes)?,
        )),
        None => None,
    };
    if marks
        .as_ref()
        .is_some_and(|(names, _, _)| names.len() != reads.len())
    {
        return Err(PyValueError::new_err("marks' names do not fit the names"));
    }
    let mut at = 0;
    let mut out = Vec::with_capacity(reads.len());
    for (i, read) in reads.iter().enumerate() {
        let n = explain::spans(read.len()).count();
        let Some(mine) = rows.get_mut(at * classes..(at + n) * classes) else {
            return Err(PyValueError::new_err(
                "fewer candidate rows than candidates",
            ));
        };
        let full = &full[i * classes..(i + 1) * classes];
        out.push(match &marks {
            Some((names, rule, m)) => explain::with_marks(&names[i], *rule, read, full, mine, m, k),
            None => explain::rank(read, full, mine, k),
        });
        at += n;
    }
    if at != candidates.shape()[0] {
        return Err(PyValueError::new_err("more candidate rows than candidates"));
    }
    Ok(parts_out(out))
}

/// Marks as a model file lists them, checked, with their rows (M, C).
fn marks_of(listed: &[String], weight: &[f32], classes: usize) -> PyResult<Marks> {
    let chars = crate::marks::checked(listed).map_err(PyValueError::new_err)?;
    if weight.len() != chars.len() * classes {
        return Err(PyValueError::new_err(format!(
            "marks' rows must be ({}, {classes})",
            chars.len()
        )));
    }
    Ok(Marks::new(&chars, weight.to_vec(), classes))
}
