//! The text rule and the encodings a model reads: ASCII, romanisation, surnames of full
//! names, indices, one-hot planes and n-gram rows.

use super::args::{items, text, texts, type_name, FullName, Names};
use crate::alphabet::N_LETTERS;
use crate::encode as encoding;
use crate::fullname::{self, NameOrder};
use crate::known_ngrams::{KnownNGrams, WORDS};
use crate::normalize::{self, TextRule};
use crate::{ngrams, threads};
use numpy::ndarray::{Array1, Array2, Array3};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray3, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(to_ascii, m)?)?;
    m.add_function(wrap_pyfunction!(to_ascii_batch, m)?)?;
    m.add_function(wrap_pyfunction!(romanize, m)?)?;
    m.add_function(wrap_pyfunction!(surnames, m)?)?;
    m.add_function(wrap_pyfunction!(encode, m)?)?;
    m.add_function(wrap_pyfunction!(lengths, m)?)?;
    m.add_function(wrap_pyfunction!(apply_text_rule, m)?)?;
    m.add_function(wrap_pyfunction!(ngram_rows, m)?)?;
    m.add_function(wrap_pyfunction!(known_ngrams, m)?)?;
    m.add_function(wrap_pyfunction!(marks_held, m)?)?;
    m.add_function(wrap_pyfunction!(one_hot, m)?)?;
    m.add_function(wrap_pyfunction!(text_lines, m)?)?;
    Ok(())
}

pub fn text_rule(name: &str) -> PyResult<TextRule> {
    Ok(name.parse()?)
}

#[pyfunction]
fn to_ascii(name: &Bound<'_, PyAny>) -> PyResult<String> {
    let text = text(name).ok_or_else(|| {
        PyTypeError::new_err(format!("name must be str, not {}", type_name(name)))
    })?;
    Ok(normalize::to_ascii(&text))
}

/// The family name of each full name: in given-first order (True or "given-first")
/// with its particles ("Jan van den Berg" -> "van den Berg", "Smith, John" -> "Smith");
/// in family-first order the first word ("Nguyễn Văn An" -> "Nguyễn"). `order` takes
/// what `full_name` takes: False gives the names as they are.
#[pyfunction]
#[pyo3(signature = (names, order = FullName(Some(NameOrder::GivenFirst))))]
fn surnames(names: Names, order: FullName) -> Vec<String> {
    match order.0 {
        Some(order) => {
            let family = |t: &String| fullname::family_name(t, order).to_string();
            names.0.iter().map(family).collect()
        }
        None => names.0,
    }
}

/// Cyrillic and Greek letters in Latin, other characters as they are.
#[pyfunction]
fn romanize(name: &str) -> String {
    crate::romanize::romanize(name).into_owned()
}

#[pyfunction]
fn to_ascii_batch<'py>(py: Python<'py>, names: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
    let items = items(names)?;
    let texts = texts(&items)?;
    // None: the name is already its own ASCII form, and the input object is reused.
    let converted: Vec<Option<String>> = py.detach(|| {
        let convert = |t: &String| {
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

/// (B, T_max) int64 indices and (B,) int64 lengths, zero-padded.
#[pyfunction]
#[pyo3(signature = (names, text_rule = "exact"))]
fn encode<'py>(py: Python<'py>, names: Names, text_rule: &str) -> PyResult<Encoded<'py>> {
    let rule = self::text_rule(text_rule)?;
    let texts = names.0;
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
    names: Names,
    text_rule: &str,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let rule = self::text_rule(text_rule)?;
    let lengths = py.detach(|| encoding::lengths_with(&names.0, rule));
    Ok(lengths
        .into_iter()
        .map(|l| l as i64)
        .collect::<Array1<i64>>()
        .into_pyarray(py))
}

/// (T_max, B, 57) float32 one-hot, time first, zero-padded.
#[pyfunction]
fn one_hot<'py>(py: Python<'py>, names: Names) -> PyResult<Bound<'py, PyArray3<f32>>> {
    let texts = names.0;
    let batch = texts.len();
    let (planes, width) = py.detach(|| {
        let (indices, lengths, width) = encode_all(&texts, TextRule::Exact, N_LETTERS)?;
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
    texts: &[String],
    rule: TextRule,
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
fn apply_text_rule(py: Python<'_>, names: Names, text_rule: &str) -> PyResult<Vec<String>> {
    let rule = self::text_rule(text_rule)?;
    Ok(py.detach(|| names.0.iter().map(|t| rule.apply(t)).collect()))
}

type NGramRows<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>);

/// The n-gram table rows of each name, flat, and where each name's rows start: the
/// input and offsets of `nn.EmbeddingBag(mode="sum")`. With `known` (a model's
/// `ngram.known`, blocks x 8 uint32 words), the rows of n-grams it leaves out are left out.
#[pyfunction]
#[pyo3(signature = (names, max_n, buckets, text_rule = "exact", known = None))]
fn ngram_rows<'py>(
    py: Python<'py>,
    names: Names,
    max_n: usize,
    buckets: usize,
    text_rule: &str,
    known: Option<PyReadonlyArray2<'py, u32>>,
) -> PyResult<NGramRows<'py>> {
    let rule = self::text_rule(text_rule)?;
    if !(1..=8).contains(&max_n) || !(1..=1 << 24).contains(&buckets) {
        return Err(PyValueError::new_err(format!(
            "max_n must be in [1, 8] and buckets in [1, 2**24], got {max_n} and {buckets}"
        )));
    }
    let known = match known {
        Some(words) if words.shape()[1] != WORDS => {
            return Err(PyValueError::new_err(format!(
                "known must be (blocks, {}) uint32 words, got shape {:?}",
                WORDS,
                words.shape()
            )))
        }
        Some(words) => Some(KnownNGrams::from_words(
            words.as_array().iter().copied().collect(),
        )?),
        None => None,
    };
    let spec = crate::model_file::NGramSpec {
        max_n,
        buckets,
        known_blocks: known.as_ref().map_or(0, KnownNGrams::blocks),
    };
    let (rows, offsets) = py.detach(|| {
        let (mut rows, mut offsets) = (Vec::new(), Vec::with_capacity(names.0.len()));
        for t in &names.0 {
            offsets.push(rows.len() as i64);
            ngrams::for_each_row(t, rule, spec, known.as_ref(), |r| rows.push(r as i64));
        }
        (rows, offsets)
    });
    Ok((rows.into_pyarray(py), offsets.into_pyarray(py)))
}

/// The n-grams (1 to `max_n` bytes of `^letters$`) that at least `min_names` distinct
/// names hold, as a model file stores them (`ngram.known`: blocks x 8 uint32 words).
#[pyfunction]
#[pyo3(signature = (names, max_n, text_rule = "exact", min_names = 2))]
fn known_ngrams<'py>(
    py: Python<'py>,
    names: Names,
    max_n: usize,
    text_rule: &str,
    min_names: usize,
) -> PyResult<Bound<'py, PyArray2<u32>>> {
    let rule = self::text_rule(text_rule)?;
    if !(1..=8).contains(&max_n) || min_names == 0 {
        return Err(PyValueError::new_err(format!(
            "max_n must be in [1, 8] and min_names at least 1, got {max_n} and {min_names}"
        )));
    }
    let set = py.detach(|| KnownNGrams::build(&names.0, rule, max_n, min_names));
    let words =
        Array2::from_shape_vec((set.blocks(), WORDS), set.words().to_vec()).expect("whole blocks");
    Ok(words.into_pyarray(py))
}

/// The rows of a chunk of complete lines of a name list, as the native scorer reads
/// them: (each line as its row shows it, its name or None when it is not UTF-8).
#[pyfunction]
fn text_lines(chunk: &[u8]) -> (Vec<String>, Vec<Option<String>>) {
    let (shown, names) = crate::score::decoded_lines(chunk);
    (
        shown.into_iter().map(|s| s.into_owned()).collect(),
        names.into_iter().map(|n| n.map(str::to_owned)).collect(),
    )
}

/// Which of `marks` (letters outside ASCII, as a model file lists them) each name holds,
/// read as the Rust backend reads it (NFC, lower case): (B, M) float32 of 0 and 1, the
/// torch backend's input for the marks' rows.
#[pyfunction]
fn marks_held<'py>(
    py: Python<'py>,
    names: Names,
    marks: Vec<String>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let chars = crate::marks::checked(&marks).map_err(PyValueError::new_err)?;
    let (rows, m) = (names.0.len(), chars.len());
    let held = py.detach(|| {
        let table = crate::marks::Marks::new(&chars, vec![0.0; m], 1);
        let mut out = vec![0f32; rows * m];
        for (r, name) in names.0.iter().enumerate() {
            for i in table.held(name) {
                out[r * m + i] = 1.0;
            }
        }
        out
    });
    Ok(Array2::from_shape_vec((rows, m), held)
        .expect("rows x marks")
        .into_pyarray(py))
}
