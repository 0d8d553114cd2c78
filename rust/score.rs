//! Bulk scoring of plain-text name lists: a chunk of complete lines in, the formatted
//! output rows (CSV, TSV or JSONL) out, one row per input line, in order. Rows never
//! become Python objects; a row that cannot be scored keeps its place with an error.

use crate::alphabet::ALPHABET;
use crate::error::{Error, Result};
use crate::forward::{top_k, top_k_into, Method, Model};
use crate::normalize::for_each_index;
use crate::threads;
use rayon::prelude::*;
use std::io::Write;

/// Bytes of input lines one thread scores in one task (about 8,000 names).
const BLOCK_BYTES: usize = 64 << 10;

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

#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub format: Format,
    pub k: usize,
    /// Names longer than this many letters after normalisation are flagged, not scored.
    pub max_length: usize,
    /// Prediction sets: every language with at least this probability (the model
    /// file's conformal threshold for the asked coverage), in a `set` column.
    pub set_threshold: Option<f32>,
    /// Below this top-1 probability the row abstains: no language, `low_confidence`.
    pub min_probability: f32,
}

/// Why a row was not scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowError {
    Empty,
    NoLetters,
    TooLong,
    InvalidUtf8,
    LowConfidence,
}

impl RowError {
    /// Every error, in the order of their column codes (code = position + 1).
    pub const ALL: [RowError; 5] = [
        RowError::Empty,
        RowError::NoLetters,
        RowError::TooLong,
        RowError::InvalidUtf8,
        RowError::LowConfidence,
    ];

    /// The code batch columns carry: 0 for a scored row, else 1 + position in `ALL`.
    pub fn column_code(error: Option<RowError>) -> u8 {
        error.map_or(0, |e| e as u8 + 1)
    }

    pub fn code(self) -> &'static str {
        match self {
            RowError::Empty => "empty",
            RowError::NoLetters => "no_letters",
            RowError::InvalidUtf8 => "invalid_utf8",
            RowError::TooLong => "too_long",
            RowError::LowConfidence => "low_confidence",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub rows: usize,
    pub scored: usize,
    pub flagged: usize,
}

/// The lines of a chunk: split on '\n', each without its '\r\n' or '\n'. A final line
/// without a newline counts; an empty chunk has no lines.
pub fn lines(chunk: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = chunk.strip_suffix(b"\n").unwrap_or(chunk);
    let empty = chunk.is_empty();
    body.split(|&b| b == b'\n')
        .filter(move |_| !empty)
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
}

/// The header line for these options (none for JSONL).
pub fn header(opts: &Options) -> String {
    let sep = if opts.format == Format::Tsv {
        "\t"
    } else {
        ","
    };
    let mut cols = vec!["name".to_string(), "ascii".to_string()];
    for i in 1..=opts.k {
        let suffix = if i == 1 {
            String::new()
        } else {
            format!("_{i}")
        };
        cols.push(format!("language{suffix}"));
        cols.push(format!("probability{suffix}"));
    }
    if opts.set_threshold.is_some() {
        cols.push("set".into());
    }
    cols.push("error".into());
    if opts.format == Format::Jsonl {
        String::new()
    } else {
        cols.join(sep) + "\n"
    }
}

/// Rows checked and scored: each row's error, and row-major (B, C) log-probabilities
/// (NaN rows where there is an error).
struct Checked {
    errors: Vec<Option<RowError>>,
    scores: Vec<f32>,
}

/// The one row check of bulk and batch scoring (None: bytes that were not UTF-8),
/// then the forward pass over the rows that pass it; across the pool when `par`.
fn check_and_score<'a>(
    model: &Model,
    rows: &[Option<&'a str>],
    max_length: usize,
    par: bool,
) -> Result<Checked> {
    let rule = model.text_rule();
    let check = |row: &Option<&'a str>| -> (&'a str, usize, Option<RowError>) {
        match *row {
            None => ("", 0, Some(RowError::InvalidUtf8)),
            Some(t) if t.trim().is_empty() => ("", 0, Some(RowError::Empty)),
            Some(t) => match rule.len(t) {
                0 => ("", 0, Some(RowError::NoLetters)),
                n if n > max_length => ("", 0, Some(RowError::TooLong)),
                n => (t, n, None),
            },
        }
    };
    let checked: Vec<(&str, usize, Option<RowError>)> = if par {
        threads::run(rows.len(), || {
            if rows.len() >= threads::PARALLEL_THRESHOLD {
                rows.par_iter().map(check).collect()
            } else {
                rows.iter().map(check).collect()
            }
        })
    } else {
        rows.iter().map(check).collect()
    };
    let texts: Vec<&str> = checked.iter().map(|c| c.0).collect();
    let lengths: Vec<usize> = checked.iter().map(|c| c.1).collect();
    let scores = if par {
        model.log_probs_with_lengths(&texts, &lengths, Method::Auto, model.share_prefixes)?
    } else {
        model.log_probs_sequential(&texts, &lengths, Method::Auto, model.share_prefixes)?
    };
    Ok(Checked {
        errors: checked.into_iter().map(|c| c.2).collect(),
        scores,
    })
}

/// Scores the lines of `chunk` and appends their rows to `out`. The chunk is cut at
/// line ends into blocks that threads take whole (check, forward, top-k, format), so a
/// block's rows stay in cache from its bytes to its output and no stage waits on another.
pub fn score_chunk(
    model: &Model,
    chunk: &[u8],
    opts: &Options,
    out: &mut Vec<u8>,
) -> Result<Counts> {
    let blocks = line_blocks(chunk, BLOCK_BYTES);
    // Several blocks mean at least 64 KiB, well past the pool's threshold.
    let scored: Vec<Result<(Vec<u8>, Counts)>> = threads::run(chunk.len(), || {
        if blocks.len() > 1 {
            blocks
                .par_iter()
                .map(|b| score_block(model, b, opts))
                .collect()
        } else {
            blocks.iter().map(|b| score_block(model, b, opts)).collect()
        }
    });
    let mut counts = Counts::default();
    for part in scored {
        let (rows, n) = part?;
        out.extend_from_slice(&rows);
        counts.rows += n.rows;
        counts.scored += n.scored;
        counts.flagged += n.flagged;
    }
    Ok(counts)
}

/// `chunk` cut just after a newline every `size` bytes or so (the last block may lack
/// its newline); lines(block) over the blocks yields lines(chunk).
fn line_blocks(chunk: &[u8], size: usize) -> Vec<&[u8]> {
    let mut blocks = Vec::with_capacity(chunk.len() / size.max(1) + 1);
    let mut rest = chunk;
    while rest.len() > size {
        match rest[size..].iter().position(|&b| b == b'\n') {
            Some(at) => {
                let (block, tail) = rest.split_at(size + at + 1);
                blocks.push(block);
                rest = tail;
            }
            None => break,
        }
    }
    if !rest.is_empty() {
        blocks.push(rest);
    }
    blocks
}

/// The output rows of one block of complete lines, on this thread.
fn score_block(model: &Model, block: &[u8], opts: &Options) -> Result<(Vec<u8>, Counts)> {
    let rows: Vec<&[u8]> = lines(block).collect();
    let decoded: Vec<Option<&str>> = rows.iter().map(|r| std::str::from_utf8(r).ok()).collect();
    let Checked { errors, scores } = check_and_score(model, &decoded, opts.max_length, false)?;
    let classes = model.classes();
    let k = opts.k.min(classes);
    let mut buf = Vec::with_capacity(block.len() * 2 + rows.len() * 24 * opts.k);
    let mut top: Vec<(&str, f64)> = Vec::with_capacity(k);
    let mut best = Vec::with_capacity(k);
    let mut set: Vec<&str> = Vec::new();
    let mut ascii = String::new();
    let mut flagged = 0;
    for (i, (raw, text)) in rows.iter().zip(&decoded).enumerate() {
        let shown = match text {
            Some(t) => std::borrow::Cow::Borrowed(*t),
            None => String::from_utf8_lossy(raw),
        };
        let mut error = errors[i];
        ascii.clear();
        if matches!(error, None | Some(RowError::TooLong)) {
            push_ascii(&shown, &mut ascii);
        }
        top.clear();
        set.clear();
        if error.is_none() {
            let row = &scores[i * classes..(i + 1) * classes];
            top_k_into(row, k, &mut best);
            top.extend(
                best.iter()
                    .map(|&c| (model.spec.categories[c].as_str(), (row[c] as f64).exp())),
            );
            if let Some(cut) = opts.set_threshold {
                prediction_set(row, cut, &mut best);
                set.extend(best.iter().map(|&c| model.spec.categories[c].as_str()));
            }
            if top[0].1 < opts.min_probability as f64 {
                error = Some(RowError::LowConfidence);
                top.clear();
            }
        }
        flagged += error.is_some() as usize;
        write_row(&mut buf, opts, &shown, &ascii, &top, &set, error);
    }
    let counts = Counts {
        rows: rows.len(),
        scored: rows.len() - flagged,
        flagged,
    };
    Ok((buf, counts))
}

/// A probability in [0, 1] with six decimals, as `format!("{p:.6}")` writes it (up to
/// the last digit's rounding), without the general float formatter, which dominated
/// the formatting time.
fn write_probability(out: &mut Vec<u8>, p: f64) {
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

fn push_ascii(name: &str, out: &mut String) {
    let letters = ALPHABET.as_bytes();
    for_each_index(name, |i| out.push(letters[i as usize] as char));
}

/// The prediction set of a row of log-probabilities: every class with probability at
/// least `cut`, best first, ties in index order; never empty (the best class is in).
pub fn prediction_set(row: &[f32], cut: f32, set: &mut Vec<usize>) {
    top_k_into(row, row.len(), set);
    let keep = set.iter().take_while(|&&c| row[c].exp() >= cut).count();
    set.truncate(keep.max(1));
}

fn write_row(
    out: &mut Vec<u8>,
    opts: &Options,
    name: &str,
    ascii: &str,
    top: &[(&str, f64)],
    set: &[&str],
    error: Option<RowError>,
) {
    match opts.format {
        Format::Jsonl => {
            out.extend_from_slice(b"{\"name\":");
            json_string(out, name);
            out.extend_from_slice(b",\"ascii\":");
            json_string(out, ascii);
            match top.first() {
                Some((lang, p)) => {
                    out.extend_from_slice(b",\"language\":");
                    json_string(out, lang);
                    out.extend_from_slice(b",\"probability\":");
                    write_probability(out, *p);
                }
                None => out.extend_from_slice(b",\"language\":null,\"probability\":null"),
            }
            out.extend_from_slice(b",\"top\":[");
            for (j, (lang, p)) in top.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                out.push(b'[');
                json_string(out, lang);
                out.push(b',');
                write_probability(out, *p);
                out.push(b']');
            }
            out.push(b']');
            if opts.set_threshold.is_some() {
                out.extend_from_slice(b",\"set\":[");
                for (j, lang) in set.iter().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    json_string(out, lang);
                }
                out.push(b']');
            }
            out.extend_from_slice(b",\"error\":");
            match error {
                Some(e) => json_string(out, e.code()),
                None => out.extend_from_slice(b"null"),
            }
            out.extend_from_slice(b"}\n");
        }
        Format::Csv | Format::Tsv => {
            let sep = if opts.format == Format::Tsv {
                b'\t'
            } else {
                b','
            };
            delimited_field(out, name, sep);
            out.push(sep);
            delimited_field(out, ascii, sep);
            for j in 0..opts.k {
                out.push(sep);
                if let Some((lang, p)) = top.get(j) {
                    delimited_field(out, lang, sep);
                    out.push(sep);
                    write_probability(out, *p);
                } else {
                    out.push(sep);
                }
            }
            if opts.set_threshold.is_some() {
                out.push(sep);
                delimited_field(out, &set.join("|"), sep);
            }
            out.push(sep);
            if let Some(e) = error {
                out.extend_from_slice(e.code().as_bytes());
            }
            out.push(b'\n');
        }
    }
}

/// A CSV/TSV field, quoted (RFC 4180) when it holds the separator, a quote or a newline.
fn delimited_field(out: &mut Vec<u8>, field: &str, sep: u8) {
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

fn json_string(out: &mut Vec<u8>, s: &str) {
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

/// Columnar results for batch APIs: row-major (B, k) category indices (-1: none) and
/// probabilities, and an error code per row (`RowError::column_code`).
pub struct Columns {
    pub top: Vec<i32>,
    pub probability: Vec<f32>,
    pub error: Vec<u8>,
}

/// Scores names given as text (None: bytes that were not UTF-8) into columns.
pub fn score_columns(
    model: &Model,
    texts: &[Option<&str>],
    k: usize,
    max_length: usize,
) -> Result<Columns> {
    let Checked { errors, scores } = check_and_score(model, texts, max_length, true)?;
    let classes = model.classes();
    let k = k.clamp(1, classes);
    let mut top = vec![-1i32; texts.len() * k];
    let mut probability = vec![f32::NAN; texts.len() * k];
    for (i, error) in errors.iter().enumerate() {
        if error.is_none() {
            let row = &scores[i * classes..(i + 1) * classes];
            for (j, best) in top_k(row, k).into_iter().enumerate() {
                top[i * k + j] = best as i32;
                probability[i * k + j] = row[best].exp();
            }
        }
    }
    let error = errors.into_iter().map(RowError::column_code).collect();
    Ok(Columns {
        top,
        probability,
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_every_row() {
        let all: Vec<&[u8]> = lines(b"a\r\n\nb\rc\nd").collect();
        assert_eq!(all, vec![&b"a"[..], b"", b"b\rc", b"d"]);
        assert_eq!(lines(b"").count(), 0);
        assert_eq!(lines(b"\n").count(), 1);
        assert_eq!(lines(b"x\n").count(), 1);
    }

    #[test]
    fn blocks_cut_at_line_ends_keep_every_line() {
        let chunk = b"ab\n\ncde\r\nf\n\n\ngh";
        let whole: Vec<&[u8]> = lines(chunk).collect();
        for size in 0..chunk.len() + 2 {
            let blocks = line_blocks(chunk, size);
            assert_eq!(blocks.concat(), chunk.to_vec(), "size {size}");
            let joined: Vec<&[u8]> = blocks.iter().flat_map(|b| lines(b)).collect();
            assert_eq!(joined, whole, "size {size}");
        }
        assert!(line_blocks(b"", 4).is_empty());
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
    fn column_codes_index_all_errors() {
        assert_eq!(RowError::column_code(None), 0);
        for (i, e) in RowError::ALL.iter().enumerate() {
            assert_eq!(
                RowError::column_code(Some(*e)) as usize,
                i + 1,
                "{}",
                e.code()
            );
        }
    }

    #[test]
    fn header_names_k_columns() {
        let mut opts = Options {
            format: Format::Csv,
            k: 2,
            max_length: 10,
            set_threshold: None,
            min_probability: 0.0,
        };
        assert_eq!(
            header(&opts),
            "name,ascii,language,probability,language_2,probability_2,error\n"
        );
        opts.set_threshold = Some(0.1);
        assert_eq!(
            header(&opts),
            "name,ascii,language,probability,language_2,probability_2,set,error\n"
        );
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
