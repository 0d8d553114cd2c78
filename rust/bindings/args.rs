//! Arguments as Python passes them: lists of names and counts, checked once here for
//! every function that takes them.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt, PyList, PyString};

use crate::fullname::NameOrder;

/// A list (or any iterable) of str: the names of a batch call, owned so that the GIL
/// can go. A single str is refused (it would be read as its letters); a lone surrogate
/// becomes U+FFFD, which normalises to nothing, as the reference drops it.
pub struct Names(pub Vec<String>);

impl<'py> FromPyObject<'_, 'py> for Names {
    type Error = PyErr;

    fn extract(ob: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        Ok(Names(texts(&items(&ob)?)?))
    }
}

/// The text of every item; a non-str item is a TypeError naming its position.
pub fn texts(items: &[Bound<'_, PyAny>]) -> PyResult<Vec<String>> {
    let texts = items
        .iter()
        .enumerate()
        .map(|(i, item)| text(item).ok_or_else(|| not_str(i, item, "expected str")));
    texts.collect()
}

/// The same, where None stands for a missing name (a null cell of a column).
pub struct NullableNames(pub Vec<Option<String>>);

impl<'py> FromPyObject<'_, 'py> for NullableNames {
    type Error = PyErr;

    fn extract(ob: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        let items = items(&ob)?;
        let texts = items.iter().enumerate().map(|(i, item)| {
            if item.is_none() {
                return Ok(None);
            }
            text(item)
                .map(Some)
                .ok_or_else(|| not_str(i, item, "expected str or None"))
        });
        Ok(NullableNames(texts.collect::<PyResult<_>>()?))
    }
}

/// The items of a list or any other iterable; a single str is refused.
pub fn items<'py>(names: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
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

/// The text of a str (lone surrogates as U+FFFD); None for anything else.
pub fn text(item: &Bound<'_, PyAny>) -> Option<String> {
    let s = item.cast::<PyString>().ok()?;
    Some(match s.to_str() {
        Ok(text) => text.to_owned(),
        Err(_) => s.to_string_lossy().into_owned(),
    })
}

fn not_str(i: usize, item: &Bound<'_, PyAny>, expected: &str) -> PyErr {
    PyTypeError::new_err(format!("names[{i}] is {}, {expected}", type_name(item)))
}

pub fn type_name(item: &Bound<'_, PyAny>) -> String {
    item.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// A count argument: an int of at least 1; one past usize::MAX saturates (a k that
/// large is capped at the languages; a max length that large is refused later).
pub fn count(value: &Bound<'_, PyAny>, what: &str) -> PyResult<usize> {
    if value.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be an int, not bool"
        )));
    }
    let n: i128 = value
        .extract()
        .map_err(|_| PyTypeError::new_err(format!("{what} must be an int")))
        .or_else(|e| {
            // Python ints past i128 come here too: positive ones saturate.
            if value.gt(0).unwrap_or(false) && value.is_instance_of::<PyInt>() {
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

/// `full_name` as Python gives it: False (the names are surnames), True or
/// "given-first" (full names, "John Smith"), or "family-first" ("Wang Xiaoming").
pub struct FullName(pub Option<NameOrder>);

impl<'py> FromPyObject<'_, 'py> for FullName {
    type Error = PyErr;

    fn extract(ob: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(flag) = ob.cast::<PyBool>() {
            return Ok(FullName(flag.is_true().then_some(NameOrder::GivenFirst)));
        }
        if let Ok(order) = ob.cast::<PyString>() {
            let order = order.to_str()?.parse().map_err(|_| full_name_error(&ob))?;
            return Ok(FullName(Some(order)));
        }
        Err(PyTypeError::new_err(format!(
            "full_name must be a bool or a str, not {}",
            type_name(&ob)
        )))
    }
}

fn full_name_error(ob: &Bound<'_, PyAny>) -> PyErr {
    let shown = ob.repr().map(|r| r.to_string()).unwrap_or_default();
    PyValueError::new_err(format!(
        "full_name must be True, False, 'given-first' or 'family-first', got {shown}"
    ))
}
