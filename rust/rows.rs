//! One output row per input row, for every input format and both backends: the row
//! check, the answer (top-k, prediction set, abstention) and the CSV/TSV/JSONL text of
//! the row. The caller brings each row's leading part (the name, the input record's
//! fields or its JSON object) and, for the torch backend, the log-probabilities.
//!
//! Probabilities are written with six decimals (`0.008670`) in every format.

use crate::alphabet::ALPHABET;
use crate::error::{Error, Result};
use crate::explain::Part;
use crate::forward::top_k_into;
use crate::fullname::NameOrder;
use crate::normalize::TextRule;
use std::io::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Tsv,
    Jsonl,
}

impl std::str::FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Format> {
        match s {
            "csv" => Ok(Format::Csv),
            "tsv" => Ok(Format::Tsv),
            "jsonl" => Ok(Format::Jsonl),
            _ => Err(Error::InvalidArgument(format!(
                "format must be csv, tsv or jsonl, got {s:?}"
            ))),
        }
    }
}

/// Why a row was not scored (or, for `LowConfidence`, why it names no language).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowError {
    Empty,
    NoLetters,
    TooLong,
    InvalidUtf8,
    LowConfidence,
    MissingColumn,
    InvalidJson,
    InvalidCsv,
    NotAString,
    Null,
    ModelError,
    InvalidEncoding,
}

impl RowError {
    /// Every error, in the order of their column codes (code = position + 1); new
    /// codes go at the end so that stored codes keep their meaning.
    pub const ALL: [RowError; 12] = [
        RowError::Empty,
        RowError::NoLetters,
        RowError::TooLong,
        RowError::InvalidUtf8,
        RowError::LowConfidence,
        RowError::MissingColumn,
        RowError::InvalidJson,
        RowError::InvalidCsv,
        RowError::NotAString,
        RowError::Null,
        RowError::ModelError,
        RowError::InvalidEncoding,
    ];

    /// The code batch columns carry: 0 for a scored row, else 1 + position in `ALL`.
    pub fn column_code(error: Option<RowError>) -> u8 {
        error.map_or(0, |e| e as u8 + 1)
    }

    pub fn code(self) -> &'static str {
        match self {
            RowError::Empty => "empty",
            RowError::NoLetters => "no_letters",
            RowError::TooLong => "too_long",
            RowError::InvalidUtf8 => "invalid_utf8",
            RowError::LowConfidence => "low_confidence",
            RowError::MissingColumn => "missing_column",
            RowError::InvalidJson => "invalid_json",
            RowError::InvalidCsv => "invalid_csv",
            RowError::NotAString => "not_a_string",
            RowError::Null => "null",
            RowError::ModelError => "model_error",
            RowError::InvalidEncoding => "invalid_encoding",
        }
    }

    pub fn from_code(code: &str) -> Result<RowError> {
        RowError::ALL
            .iter()
            .copied()
            .find(|e| e.code() == code)
            .ok_or_else(|| Error::InvalidArgument(format!("no row error code {code:?}")))
    }
}

/// How many rows were written, scored and flagged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub rows: usize,
    pub scored: usize,
    pub flagged: usize,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.rows += other.rows;
        self.scored += other.scored;
        self.flagged += other.flagged;
    }
}

/// What a scoring job asks of every row, checked once: the one place where `k` is
/// capped at the number of languages.
#[derive(Clone, Debug)]
pub struct RowFormat {
    pub format: Format,
    pub k: usize,
    /// Names longer than this many letters (as the model reads them) are too_long.
    pub max_length: usize,
    /// Prediction sets: every language with at least this probability, in `set`.
    pub set_threshold: Option<f32>,
    /// Below this top-1 probability the row abstains: no language, `low_confidence`.
    pub min_probability: f32,
    pub text_rule: TextRule,
    pub categories: Vec<String>,
    /// The input's own columns, which lead each row: `["name"]` for a name list.
    pub columns: Vec<String>,
    /// Parts of the name shown in a `why` column (`explain`): up to this many; 0, none.
    pub explain: usize,
    /// Names are full names in this order: the family name (`fullname::family_name`)
    /// is what is scored and shown in `ascii`; the row still leads with the name as
    /// given. None: the names are surnames.
    pub full_name: Option<NameOrder>,
    /// The code of a row whose bytes did not decode: `invalid_utf8`, or
    /// `invalid_encoding` when the input was transcoded from another encoding.
    pub undecodable: RowError,
}

/// Letters a name may have before scoring flags it `too_long`, unless the job says.
pub const DEFAULT_MAX_LENGTH: usize = 256;

/// The longest `max_length` a job may ask for: past it, a single name's letters would
/// not fit the forward pass's buffers on any machine this runs on.
pub const MAX_LENGTH_LIMIT: usize = 1 << 30;

/// Added column names, after the input's columns.
pub const ADDED_KEYS: [&str; 7] = [
    "ascii",
    "language",
    "probability",
    "top",
    "set",
    "why",
    "error",
];

impl RowFormat {
    pub fn new(
        format: Format,
        k: usize,
        max_length: usize,
        set_threshold: Option<f32>,
        min_probability: f32,
        text_rule: TextRule,
        categories: Vec<String>,
    ) -> Result<RowFormat> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if k == 0 {
            return bad("k must be at least 1".into());
        }
        if max_length == 0 || max_length > MAX_LENGTH_LIMIT {
            return bad(format!(
                "max length must be in [1, {MAX_LENGTH_LIMIT}], got {}",
                if max_length == usize::MAX {
                    "a number past 2**64".to_string()
                } else {
                    max_length.to_string()
                }
            ));
        }
        if !(0.0..=1.0).contains(&min_probability) {
            return bad(format!(
                "min probability must be in [0, 1], got {min_probability}"
            ));
        }
        if let Some(t) = set_threshold {
            if !(t > 0.0 && t <= 1.0) {
                return bad(format!("set threshold must be in (0, 1], got {t}"));
            }
        }
        if categories.is_empty() {
            return bad("a model needs at least one language".into());
        }
        Ok(RowFormat {
            format,
            k: k.min(categories.len()),
            max_length,
            set_threshold,
            min_probability,
            text_rule,
            categories,
            columns: vec!["name".into()],
            explain: 0,
            full_name: None,
            undecodable: RowError::InvalidUtf8,
        })
    }

    fn sep(&self) -> u8 {
        if self.format == Format::Tsv {
            b'\t'
        } else {
            b','
        }
    }

    /// The header line (nothing for JSONL): the input's columns, then the added ones.
    pub fn header(&self) -> Vec<u8> {
        if self.format == Format::Jsonl {
            return Vec::new();
        }
        let mut cols: Vec<String> = self.columns.clone();
        cols.push("ascii".into());
        for i in 1..=self.k {
            let suffix = if i == 1 {
                String::new()
            } else {
                format!("_{i}")
            };
            cols.push(format!("language{suffix}"));
            cols.push(format!("probability{suffix}"));
        }
        if self.set_threshold.is_some() {
            cols.push("set".into());
        }
        if self.explain > 0 {
            cols.push("why".into());
        }
        cols.push("error".into());
        let mut out = Vec::new();
        for (i, c) in cols.iter().enumerate() {
            if i > 0 {
                out.push(self.sep());
            }
            delimited_field(&mut out, c, self.sep());
        }
        out.push(b'\n');
        out
    }

    /// The part of a name that is scored: the surname of a full name, else the name.
    pub fn part<'a>(&self, name: &'a str) -> &'a str {
        match self.full_name {
            Some(order) => crate::fullname::family_name(name, order),
            None => name,
        }
    }

    /// The one row check: the error of a name that cannot be scored, else None.
    /// `name` None: the row was already flagged (`error`), or its bytes were not UTF-8.
    pub fn check(&self, name: Option<&str>, error: Option<RowError>) -> Option<RowError> {
        self.check_len(name, error).1
    }

    /// `check`, with the letters the model reads from a name that passes it.
    pub fn check_len(
        &self,
        name: Option<&str>,
        error: Option<RowError>,
    ) -> (usize, Option<RowError>) {
        if error.is_some() {
            return (0, error);
        }
        match name {
            None => (0, Some(self.undecodable)),
            Some(t) if t.trim().is_empty() => (0, Some(RowError::Empty)),
            Some(t) => match self.text_rule.len(t) {
                0 => (0, Some(RowError::NoLetters)),
                n if n > self.max_length => (0, Some(RowError::TooLong)),
                n => (n, None),
            },
        }
    }
}

/// What leads a row: the name (name lists), the input record's fields (CSV/TSV), or
/// its JSON object without the closing brace (JSONL).
#[derive(Clone, Copy, Debug)]
pub enum Lead<'a> {
    Name(&'a str),
    Fields(&'a [String]),
    Json(&'a str),
}

/// A row's answer: its best languages with probabilities, its prediction set and its
/// final error. Buffers are reused from row to row.
#[derive(Clone, Default)]
pub struct Answer {
    pub top: Vec<(usize, f64)>,
    pub set: Vec<usize>,
    /// A `low_confidence` row's best languages, which it does not name (`top` is empty).
    pub withheld: Vec<(usize, f64)>,
    /// The probability of each language of `set`, in its order.
    pub set_probability: Vec<f64>,
    pub error: Option<RowError>,
    /// The parts that raised the top language (`explain`), set by the caller; written
    /// only for a row that names a language.
    pub why: Vec<Part>,
    best: Vec<usize>,
    ascii: String, // the `ascii` column's buffer
}

impl Answer {
    /// The answer for a row that passed the check (`error` None) with these
    /// log-probabilities, or the row's error.
    pub fn fill(&mut self, fmt: &RowFormat, scores: &[f32], error: Option<RowError>) {
        self.top.clear();
        self.set.clear();
        self.set_probability.clear();
        self.withheld.clear();
        self.why.clear();
        self.error = error;
        if error.is_some() {
            return;
        }
        top_k_into(scores, fmt.k, &mut self.best);
        if self.best.is_empty() {
            // NaN scores for a name with letters: the model's weights overflowed on it.
            // Never a normal row: the job goes on and says which rows have no answer.
            self.error = Some(RowError::ModelError);
            return;
        }
        self.top
            .extend(self.best.iter().map(|&c| (c, (scores[c] as f64).exp())));
        if let Some(cut) = fmt.set_threshold {
            prediction_set(scores, cut, &mut self.set);
            let probability = self.set.iter().map(|&c| (scores[c] as f64).exp());
            self.set_probability.extend(probability);
        }
        if self.top[0].1 < fmt.min_probability as f64 {
            self.error = Some(RowError::LowConfidence);
            std::mem::swap(&mut self.top, &mut self.withheld);
        }
    }
}

impl Answer {
    /// The parts to show: none for a row that names no language.
    fn why(&self) -> &[Part] {
        if self.top.is_empty() {
            &[]
        } else {
            &self.why
        }
    }
}

/// The prediction set of a row of log-probabilities: every class with probability at
/// least `cut`, best first, ties in index order; never empty (the best class is in).
pub fn prediction_set(row: &[f32], cut: f32, set: &mut Vec<usize>) {
    top_k_into(row, row.len(), set);
    let keep = set.iter().take_while(|&&c| row[c].exp() >= cut).count();
    set.truncate(keep.max(1).min(set.len()));
}

/// Appends one output row: its lead, then `ascii` (the name in the model's alphabet,
/// shown when the name was read), the top-k, the set and the error.
pub fn write_row(
    out: &mut Vec<u8>,
    fmt: &RowFormat,
    lead: Lead<'_>,
    name: Option<&str>,
    a: &mut Answer,
) {
    let mut ascii = std::mem::take(&mut a.ascii);
    ascii.clear();
    let read = matches!(
        a.error,
        None | Some(RowError::TooLong | RowError::LowConfidence | RowError::ModelError)
    );
    if let (Some(n), true) = (name, read) {
        let letters = ALPHABET.as_bytes();
        fmt.text_rule
            .for_each_shown(n, |i| ascii.push(letters[i as usize] as char));
    }
    match fmt.format {
        Format::Jsonl => write_jsonl(out, fmt, lead, &ascii, a),
        Format::Csv | Format::Tsv => write_delimited(out, fmt, lead, &ascii, a),
    }
    a.ascii = ascii;
}

fn write_delimited(out: &mut Vec<u8>, fmt: &RowFormat, lead: Lead<'_>, ascii: &str, a: &Answer) {
    let sep = fmt.sep();
    match lead {
        Lead::Name(name) | Lead::Json(name) => delimited_field(out, name, sep),
        Lead::Fields(fields) => {
            // A short record is padded so that the added columns stay aligned.
            for i in 0..fmt.columns.len().max(1) {
                if i > 0 {
                    out.push(sep);
                }
                delimited_field(out, fields.get(i).map_or("", |f| f.as_str()), sep);
            }
        }
    }
    out.push(sep);
    delimited_field(out, ascii, sep);
    for j in 0..fmt.k {
        out.push(sep);
        if let Some(&(c, p)) = a.top.get(j) {
            delimited_field(out, &fmt.categories[c], sep);
            out.push(sep);
            write_probability(out, p);
        } else {
            out.push(sep);
        }
    }
    if fmt.set_threshold.is_some() {
        out.push(sep);
        let set: Vec<&str> = a.set.iter().map(|&c| fmt.categories[c].as_str()).collect();
        delimited_field(out, &set.join("|"), sep);
    }
    if fmt.explain > 0 {
        out.push(sep);
        let why: Vec<String> = a
            .why()
            .iter()
            .map(|p| format!("{}:{:.3}", p.text, p.weight))
            .collect();
        delimited_field(out, &why.join("|"), sep);
    }
    out.push(sep);
    if let Some(e) = a.error {
        out.extend_from_slice(e.code().as_bytes());
    }
    out.push(b'\n');
}

fn write_jsonl(out: &mut Vec<u8>, fmt: &RowFormat, lead: Lead<'_>, ascii: &str, a: &Answer) {
    match lead {
        Lead::Name(name) => {
            out.extend_from_slice(b"{\"name\":");
            json_string(out, name);
        }
        Lead::Json(body) => out.extend_from_slice(body.as_bytes()),
        Lead::Fields(fields) => json_fields(out, &fmt.columns, fields),
    }
    if out.last() != Some(&b'{') {
        out.push(b',');
    }
    out.extend_from_slice(b"\"ascii\":");
    json_string(out, ascii);
    json_top(out, fmt, a);
    if fmt.set_threshold.is_some() {
        json_set(out, fmt, a);
    }
    if fmt.explain > 0 {
        json_why(out, a);
    }
    out.extend_from_slice(b",\"error\":");
    match a.error {
        Some(e) => json_string(out, e.code()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b"}\n");
}

/// `"language"`, `"probability"` (null when none is named) and `"top"` of a JSONL row.
fn json_top(out: &mut Vec<u8>, fmt: &RowFormat, a: &Answer) {
    match a.top.first() {
        Some(&(c, p)) => {
            out.extend_from_slice(b",\"language\":");
            json_string(out, &fmt.categories[c]);
            out.extend_from_slice(b",\"probability\":");
            write_probability(out, p);
        }
        None => out.extend_from_slice(b",\"language\":null,\"probability\":null"),
    }
    out.extend_from_slice(b",\"top\":[");
    for (j, &(c, p)) in a.top.iter().enumerate() {
        if j > 0 {
            out.push(b',');
        }
        out.push(b'[');
        json_string(out, &fmt.categories[c]);
        out.push(b',');
        write_probability(out, p);
        out.push(b']');
    }
    out.push(b']');
}

fn json_set(out: &mut Vec<u8>, fmt: &RowFormat, a: &Answer) {
    out.extend_from_slice(b",\"set\":[");
    for (j, &c) in a.set.iter().enumerate() {
        if j > 0 {
            out.push(b',');
        }
        json_string(out, &fmt.categories[c]);
    }
    out.push(b']');
}

fn json_why(out: &mut Vec<u8>, a: &Answer) {
    out.extend_from_slice(b",\"why\":[");
    for (j, p) in a.why().iter().enumerate() {
        if j > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"text\":");
        json_string(out, &p.text);
        let _ = write!(
            out,
            ",\"start\":{},\"end\":{},\"weight\":{:.3}}}",
            p.start, p.end, p.weight
        );
    }
    out.push(b']');
}

/// A CSV record as a JSON object: `{"column":"field",...` (no closing brace). A column
/// named like an added one, or repeated later in the header, is left out (the later
/// one wins), so every key appears once; a short record's missing fields are "".
fn json_fields(out: &mut Vec<u8>, columns: &[String], fields: &[String]) {
    out.push(b'{');
    let mut first = true;
    for (i, column) in columns.iter().enumerate() {
        let shadowed = ADDED_KEYS.contains(&column.as_str()) || columns[i + 1..].contains(column);
        if shadowed {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        json_string(out, column);
        out.push(b':');
        json_string(out, fields.get(i).map_or("", |f| f.as_str()));
    }
}

/// A probability in [0, 1] with six decimals, as `format!("{p:.6}")` writes it (up to
/// the last digit's rounding), without the general float formatter, which dominated
/// the formatting time.
pub fn write_probability(out: &mut Vec<u8>, p: f64) {
    let micros = (p.clamp(0.0, 1.0) * 1e6).round() as u32;
    let (whole, frac) = (micros / 1_000_000, micros % 1_000_000);
    out.push(b'0' + whole as u8);
    out.push(b'.');
    let mut digits = [b'0'; 6];
    let mut rest = frac;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out.extend_from_slice(&digits);
}

/// A CSV/TSV field, quoted (RFC 4180) when it holds the separator, a quote or a newline.
pub fn delimited_field(out: &mut Vec<u8>, field: &str, sep: u8) {
    if field
        .bytes()
        .any(|b| b == sep || b == b'"' || b == b'\n' || b == b'\r')
    {
        out.push(b'"');
        for b in field.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(field.as_bytes());
    }
}

pub fn json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(format: Format, k: usize, sets: bool) -> RowFormat {
        let categories = vec!["A".to_string(), "B,b".to_string(), "C".to_string()];
        let threshold = sets.then_some(0.25);
        RowFormat::new(format, k, 10, threshold, 0.0, TextRule::Exact, categories).unwrap()
    }

    fn answer(fmt: &RowFormat, probs: &[f32], error: Option<RowError>) -> Answer {
        let scores: Vec<f32> = probs.iter().map(|p| p.ln()).collect();
        let mut a = Answer::default();
        a.fill(fmt, &scores, error);
        a
    }

    #[test]
    fn k_is_capped_at_the_languages_and_zero_is_refused() {
        assert_eq!(format(Format::Csv, 1_000_000, false).k, 3);
        let err = RowFormat::new(
            Format::Csv,
            0,
            1,
            None,
            0.0,
            TextRule::Exact,
            vec!["A".into()],
        );
        assert!(err.is_err());
    }

    #[test]
    fn fields_are_quoted_when_needed() {
        let mut out = Vec::new();
        delimited_field(&mut out, "a,\"b\"", b',');
        assert_eq!(out, b"\"a,\"\"b\"\"\"");
        let mut out = Vec::new();
        json_string(&mut out, "q\"\\\n\u{1}é");
        assert_eq!(String::from_utf8(out).unwrap(), "\"q\\\"\\\\\\n\\u0001é\"");
    }

    #[test]
    fn probabilities_have_six_decimals() {
        for p in [
            0.0,
            1.0,
            0.5,
            0.123_456_7,
            0.999_999_7,
            1e-9,
            0.000_000_5,
            0.25,
        ] {
            let mut out = Vec::new();
            write_probability(&mut out, p);
            let ours = String::from_utf8(out).unwrap();
            assert_eq!(ours.len(), 8, "{ours}");
            assert!(
                (ours.parse::<f64>().unwrap() - p).abs() <= 5e-7 + 1e-12,
                "{p}: {ours}"
            );
        }
    }

    #[test]
    fn column_codes_index_all_errors_and_codes_round_trip() {
        assert_eq!(RowError::column_code(None), 0);
        for (i, e) in RowError::ALL.iter().enumerate() {
            assert_eq!(RowError::column_code(Some(*e)) as usize, i + 1);
            assert_eq!(RowError::from_code(e.code()).unwrap(), *e);
        }
        assert!(RowError::from_code("nope").is_err());
    }

    #[test]
    fn header_names_k_columns_after_the_input_columns() {
        let mut fmt = format(Format::Csv, 2, false);
        assert_eq!(
            fmt.header(),
            b"name,ascii,language,probability,language_2,probability_2,error\n"
        );
        fmt.set_threshold = Some(0.1);
        fmt.columns = vec!["id".into(), "full, name".into()];
        assert_eq!(
            String::from_utf8(fmt.header()).unwrap(),
            "id,\"full, name\",ascii,language,probability,language_2,probability_2,set,error\n"
        );
        assert!(format(Format::Jsonl, 2, false).header().is_empty());
    }

    #[test]
    fn rows_carry_lead_answer_and_error_in_every_format() {
        let fmt = format(Format::Csv, 2, true);
        let mut a = answer(&fmt, &[0.1, 0.6, 0.3], None);
        let mut out = Vec::new();
        write_row(&mut out, &fmt, Lead::Name("Zé"), Some("Zé"), &mut a);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Zé,Ze,\"B,b\",0.600000,C,0.300000,\"B,b|C\",\n"
        );

        let mut fmt = format(Format::Jsonl, 2, false);
        fmt.columns = vec!["id".into(), "name".into(), "error".into()];
        let fields = vec!["7".to_string(), "Zhou".to_string()];
        let mut out = Vec::new();
        let mut flagged = answer(&fmt, &[0.1, 0.6, 0.3], Some(RowError::InvalidCsv));
        write_row(&mut out, &fmt, Lead::Fields(&fields), None, &mut flagged);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"id\":\"7\",\"name\":\"Zhou\",\"ascii\":\"\",\"language\":null,\
             \"probability\":null,\"top\":[],\"error\":\"invalid_csv\"}\n"
        );

        let mut out = Vec::new();
        write_row(
            &mut out,
            &fmt,
            Lead::Json("{"),
            Some("x"),
            &mut answer(&fmt, &[1.0, 0.0, 0.0], None),
        );
        assert!(out.starts_with(b"{\"ascii\":\"x\",\"language\":\"A\",\"probability\":1.000000"));
    }

    #[test]
    fn low_confidence_rows_name_no_language_and_nan_rows_are_flagged() {
        let mut fmt = format(Format::Csv, 1, false);
        fmt.min_probability = 0.7;
        let a = answer(&fmt, &[0.1, 0.6, 0.3], None);
        assert_eq!(a.error, Some(RowError::LowConfidence));
        assert!(a.top.is_empty());
        // A name that passed the check but got NaN (one class is enough): model_error,
        // with the letters the model read, never an empty row without a code.
        for row in [[f32::NAN; 3], [0.1f32.ln(), f32::NAN, 0.9f32.ln()]] {
            let mut nan = Answer::default();
            nan.fill(&fmt, &row, None);
            assert_eq!(nan.error, Some(RowError::ModelError));
            assert!(nan.top.is_empty());
            let mut out = Vec::new();
            write_row(&mut out, &fmt, Lead::Name("Zé"), Some("Zé"), &mut nan);
            assert_eq!(String::from_utf8(out).unwrap(), "Zé,Ze,,,model_error\n");
        }
    }

    #[test]
    fn the_check_flags_each_kind_of_unscorable_name() {
        let fmt = format(Format::Csv, 1, false);
        assert_eq!(fmt.check(Some(" \t"), None), Some(RowError::Empty));
        assert_eq!(fmt.check(Some("123"), None), Some(RowError::NoLetters));
        assert_eq!(
            fmt.check(Some("abcdefghijk"), None),
            Some(RowError::TooLong)
        );
        assert_eq!(fmt.check(None, None), Some(RowError::InvalidUtf8));
        assert_eq!(
            fmt.check(Some("Zhou"), Some(RowError::Null)),
            Some(RowError::Null)
        );
        assert_eq!(fmt.check(Some("Zhou"), None), None);
    }

    #[test]
    fn prediction_sets_hold_what_passes_the_cut_best_first_and_never_nothing() {
        let row: Vec<f32> = [0.1f32, 0.6, 0.3].iter().map(|p| p.ln()).collect();
        let mut set = Vec::new();
        prediction_set(&row, 0.25, &mut set);
        assert_eq!(set, vec![1, 2]);
        prediction_set(&row, 0.05, &mut set);
        assert_eq!(set, vec![1, 2, 0]);
        prediction_set(&row, 0.9, &mut set);
        assert_eq!(set, vec![1]);
    }
}
