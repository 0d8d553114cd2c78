//! Letters outside ASCII as evidence ("marks"). The tutorial's alphabet drops them, yet
//! an ř, ł, ñ, ã or í says much about a name's language: García is the Spanish spelling,
//! Garcia the Portuguese one. A model with marks lists them (metadata `marks`: a JSON
//! list of single characters, lower case, NFC, outside ASCII) and holds a row of C
//! log-ratios for each (`marks.weight`, (M, C)): log P(mark | language) - log P(mark),
//! counted over its training rows (`namelang.marks`). Each mark a name holds adds its
//! row to the logits once, however often it recurs: naive Bayes beside the network.
//! A name is read as written, NFC then lower case (final sigma included), so "García",
//! its decomposed form and "GARCÍA" hold the same mark; an ASCII name holds none.

use crate::error::{Error, Result};
use std::collections::HashMap;
use unicode_normalization::UnicodeNormalization;

/// The metadata key listing a file's marks, and the tensor of their rows.
pub const METADATA: &str = "marks";
pub const TENSOR: &str = "marks.weight";
/// The most marks a file may list (a file counts a few hundred at most).
pub const MOST: usize = 4096;

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidModel(msg.into())
}

/// The marks a file's metadata lists (None: no `marks` key), each checked.
pub fn parse(meta: &HashMap<String, String>) -> Result<Option<Vec<char>>> {
    let Some(raw) = meta.get(METADATA) else {
        return Ok(None);
    };
    let listed: Vec<String> = serde_json::from_str(raw)
        .map_err(|_| invalid("metadata 'marks' is not a JSON list of strings"))?;
    checked(&listed).map(Some).map_err(invalid)
}

/// A list of marks, each checked (the rules a file's list follows); the error says
/// which mark breaks which rule.
pub fn checked(listed: &[String]) -> std::result::Result<Vec<char>, String> {
    if listed.is_empty() || listed.len() > MOST {
        return Err(format!(
            "'marks' lists {} marks; a model lists 1 to {MOST}",
            listed.len()
        ));
    }
    let mut marks = Vec::with_capacity(listed.len());
    for s in listed {
        let mut chars = s.chars();
        let (Some(c), None) = (chars.next(), chars.next()) else {
            return Err(format!("mark {s:?} is not one character"));
        };
        if c.is_ascii() || lowered(s) != *s || s.nfc().collect::<String>() != *s {
            return Err(format!(
                "mark {s:?} must be outside ASCII, lower case and NFC"
            ));
        }
        if marks.contains(&c) {
            return Err(format!("mark {s:?} is listed twice"));
        }
        marks.push(c);
    }
    Ok(marks)
}

/// Lower case as Python's `str.lower` (final sigma included).
fn lowered(s: &str) -> String {
    s.to_lowercase()
}

/// A mark a name holds: the mark, the byte range of its first occurrence in the name
/// read NFC and lower case, and its row.
pub type Place<'a> = (char, std::ops::Range<usize>, &'a [f32]);

/// A model's marks and their rows.
#[derive(Clone)]
pub struct Marks {
    index: HashMap<char, usize>,
    weight: Vec<f32>,
    classes: usize,
}

impl Marks {
    /// `weight`: (marks.len(), classes), row-major.
    pub fn new(marks: &[char], weight: Vec<f32>, classes: usize) -> Marks {
        assert_eq!(weight.len(), marks.len() * classes);
        let index = marks.iter().enumerate().map(|(i, &c)| (c, i)).collect();
        Marks {
            index,
            weight,
            classes,
        }
    }

    /// The marks `name` holds, as indices in ascending order (each once).
    pub fn held(&self, name: &str) -> Vec<usize> {
        if name.is_ascii() {
            return Vec::new();
        }
        let read = lowered(&name.nfc().collect::<String>());
        let mut held: Vec<usize> = read
            .chars()
            .filter_map(|c| self.index.get(&c).copied())
            .collect();
        held.sort_unstable();
        held.dedup();
        held
    }

    /// Each mark `name` holds, once, in the order it is first written, and the name read
    /// NFC and lower case (the text the places are in).
    pub fn places(&self, name: &str) -> (Vec<Place<'_>>, String) {
        if name.is_ascii() {
            return (Vec::new(), String::new());
        }
        let read = lowered(&name.nfc().collect::<String>());
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for (at, c) in read.char_indices() {
            if let Some(&m) = self.index.get(&c) {
                if !seen.contains(&m) {
                    seen.push(m);
                    let row = &self.weight[m * self.classes..(m + 1) * self.classes];
                    out.push((c, at..at + c.len_utf8(), row));
                }
            }
        }
        (out, read)
    }

    /// The sum of the rows of the marks `name` holds (None: it holds none).
    pub fn shift(&self, name: &str) -> Option<Vec<f32>> {
        let held = self.held(name);
        if held.is_empty() {
            return None;
        }
        let mut row = vec![0f32; self.classes];
        for m in held {
            let w = &self.weight[m * self.classes..(m + 1) * self.classes];
            row.iter_mut().zip(w).for_each(|(v, x)| *v += x);
        }
        Some(row)
    }

    /// Adds the rows of the marks `name` holds to its logits, in mark order.
    pub fn add_rows(&self, name: &str, row: &mut [f32]) {
        for m in self.held(name) {
            let w = &self.weight[m * self.classes..(m + 1) * self.classes];
            row.iter_mut().zip(w).for_each(|(v, x)| *v += x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(marks: &str) -> HashMap<String, String> {
        [(METADATA.to_string(), marks.to_string())].into()
    }

    #[test]
    fn marks_are_checked_as_listed() {
        assert_eq!(parse(&HashMap::new()).unwrap(), None);
        assert_eq!(parse(&meta(r#"["í", "ł"]"#)).unwrap(), Some(vec!['í', 'ł']));
        for bad in [
            "not json",
            "[]",
            r#"["a"]"#,
            r#"["Í"]"#,
            r#"["ií"]"#,
            r#"["í", "í"]"#,
            "[\"i\u{301}\"]",
        ] {
            let err = parse(&meta(bad)).unwrap_err().to_string();
            assert!(err.contains("mark"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_name_holds_each_mark_once_however_it_is_written() {
        let marks = Marks::new(&['í', 'ñ', 'ς'], vec![1.0, 0.0, 0.0, 2.0, 10.0, 0.0], 2);
        assert_eq!(marks.held("García"), [0]);
        assert_eq!(marks.held("Garci\u{301}a"), [0]); // decomposed
        assert_eq!(marks.held("GARCÍA Íñiguez"), [0, 1]);
        assert_eq!(marks.held("Garcia"), Vec::<usize>::new());
        assert_eq!(marks.held("ΠΑΠΑΣ"), [2]); // final sigma, as Python lowers it
        let mut row = [0.5, 0.5];
        marks.add_rows("Íñigo Ibáñez", &mut row);
        assert_eq!(row, [0.5 + 1.0 + 0.0, 0.5 + 0.0 + 2.0]);
    }
}
