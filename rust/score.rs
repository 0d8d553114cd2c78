//! Bulk scoring: rows in, formatted output rows out, one per input row, in order. Plain
//! text comes as chunks of complete lines and never becomes Python objects; records of
//! other formats come as rows (lead, name, error) read by the caller. Either way each
//! row goes through `rows` for its check, answer and text.

use crate::error::{Error, Result};
use crate::explain::{self, Part};
use crate::forward::{Method, Model};
use crate::rows::{Answer, Counts, Lead, RowError, RowFormat};
use crate::threads;
use rayon::prelude::*;
use std::borrow::Cow;

/// Bytes of input lines one thread scores in one task (about 8,000 names).
const BLOCK_BYTES: usize = 64 << 10;

/// The lines of a chunk: split on '\n', each without its '\r\n' or '\n'. A final line
/// without a newline counts; an empty chunk has no lines.
pub fn lines(chunk: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = chunk.strip_suffix(b"\n").unwrap_or(chunk);
    let empty = chunk.is_empty();
    body.split(|&b| b == b'\n')
        .filter(move |_| !empty)
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
}

/// One input row: what leads its output row, the name to score (None: not UTF-8, or
/// no name), and the error the reader already found.
#[derive(Clone, Copy, Debug)]
pub struct RowIn<'a> {
    pub lead: Lead<'a>,
    pub name: Option<&'a str>,
    pub error: Option<RowError>,
}

/// Where the log-probabilities come from: this model's forward pass (across the pool
/// when the rows are many), or the caller (the torch backend), row-major (B, C), with
/// each row's parts when the format shows them (`explain`).
#[derive(Clone, Copy)]
pub enum Scores<'a> {
    Model(&'a Model),
    Given(&'a [f32], Option<&'a [Vec<Part>]>),
}

/// Each row's check, then the forward pass over the rows that pass it.
fn check_and_score(
    fmt: &RowFormat,
    rows: &[RowIn<'_>],
    scores: Scores<'_>,
) -> Result<(Vec<Option<RowError>>, Vec<f32>)> {
    let checked = rows
        .iter()
        .map(|r| fmt.check_len(r.name, r.error))
        .collect();
    check_and_score_checked(fmt, rows, checked, scores)
}

/// `check_and_score` once each row's (letters, error) is known.
fn check_and_score_checked(
    fmt: &RowFormat,
    rows: &[RowIn<'_>],
    checked: Vec<(usize, Option<RowError>)>,
    scores: Scores<'_>,
) -> Result<(Vec<Option<RowError>>, Vec<f32>)> {
    let errors = checked.iter().map(|c| c.1).collect();
    let classes = fmt.categories.len();
    let scores = match scores {
        Scores::Given(s, _) => {
            if s.len() != rows.len() * classes {
                return Err(Error::InvalidArgument(format!(
                    "log-probabilities hold {} numbers for {} rows of {classes} languages",
                    s.len(),
                    rows.len()
                )));
            }
            s.to_vec()
        }
        Scores::Model(model) => model_scores(model, rows, &checked)?,
    };
    Ok((errors, scores))
}

/// This model's log-probabilities for the rows that passed their check (the others'
/// rows hold NaN): answers already held come from the model's cache, the rest from one
/// forward pass, and join the cache.
fn model_scores(
    model: &Model,
    rows: &[RowIn<'_>],
    checked: &[(usize, Option<RowError>)],
) -> Result<Vec<f32>> {
    let classes = model.classes();
    let cache = model.caches_answers();
    let mut out = vec![f32::NAN; rows.len() * classes];
    let mut missed = Vec::new();
    for (i, (r, c)) in rows.iter().zip(checked).enumerate() {
        let name = r.name.unwrap_or("");
        let row = &mut out[i * classes..(i + 1) * classes];
        if c.1.is_none() && !(cache && model.answers.get_into(name, row)) {
            missed.push(i);
        }
    }
    if missed.is_empty() {
        return Ok(out);
    }
    let texts: Vec<&str> = missed.iter().map(|&i| rows[i].name.unwrap_or("")).collect();
    let lengths: Vec<usize> = missed.iter().map(|&i| checked[i].0).collect();
    let share = model.share_prefixes;
    let fresh = model.log_probs_with_lengths(&texts, &lengths, Method::Auto, share)?;
    for (k, (&i, row)) in missed.iter().zip(fresh.chunks(classes)).enumerate() {
        out[i * classes..(i + 1) * classes].copy_from_slice(row);
        if cache && model.answers.seen_before(texts[k]) {
            model.answers.insert(texts[k], row);
        }
    }
    Ok(out)
}

/// Checks, scores and appends the output rows of `rows` to `out`.
pub fn write_rows(
    fmt: &RowFormat,
    rows: &[RowIn<'_>],
    scores: Scores<'_>,
    out: &mut Vec<u8>,
) -> Result<Counts> {
    let mut counts = Counts::default();
    for_each_answer(fmt, rows, scores, |row, answer| {
        crate::rows::write_row(out, fmt, row.lead, row.name, answer);
        counts.rows += 1;
        counts.flagged += answer.error.is_some() as usize;
    })?;
    counts.scored = counts.rows - counts.flagged;
    Ok(counts)
}

/// Each row's answer (its check, then top-k, set, abstention and parts), exactly as
/// `write_rows` writes it: for callers that show answers their own way.
pub fn answers(fmt: &RowFormat, rows: &[RowIn<'_>], scores: Scores<'_>) -> Result<Vec<Answer>> {
    let mut out = Vec::with_capacity(rows.len());
    for_each_answer(fmt, rows, scores, |_, answer| out.push(answer.clone()))?;
    Ok(out)
}

/// The one path from rows to answers: the scored part of each name, its check, its
/// log-probabilities and parts, then `Answer::fill`; `f` sees each row (with the part
/// that was scored) and its answer, in order.
fn for_each_answer(
    fmt: &RowFormat,
    rows: &[RowIn<'_>],
    scores: Scores<'_>,
    mut f: impl FnMut(&RowIn<'_>, &mut Answer),
) -> Result<()> {
    let rows = &scored_parts(fmt, rows);
    let (errors, values) = check_and_score(fmt, rows, scores)?;
    let why = explanations(fmt, rows, scores, &values)?;
    let (classes, scores) = (fmt.categories.len(), values);
    let mut answer = Answer::default();
    for (i, row) in rows.iter().enumerate() {
        answer.fill(fmt, &scores[i * classes..(i + 1) * classes], errors[i]);
        if let Some(parts) = why.as_ref().and_then(|w| w.get(i)) {
            answer.why.clone_from(parts);
        }
        f(row, &mut answer);
    }
    Ok(())
}

/// What a backend that scores elsewhere (torch) must score for each row: the part the
/// model reads when the row passes its check, "" (no forward pass) when it does not.
pub fn texts_to_score<'a>(fmt: &RowFormat, rows: &[RowIn<'a>]) -> Vec<&'a str> {
    checked_texts(fmt, &scored_parts(fmt, rows))
}

/// `texts_to_score` of rows that already hold their scored parts.
fn checked_texts<'a>(fmt: &RowFormat, rows: &[RowIn<'a>]) -> Vec<&'a str> {
    rows.iter()
        .map(|r| match fmt.check(r.name, r.error) {
            None => r.name.unwrap_or(""),
            Some(_) => "",
        })
        .collect()
}

/// The rows with the part of each name that is scored (`RowFormat::part`): the rows
/// themselves unless the names are full names.
fn scored_parts<'a, 'r>(fmt: &RowFormat, rows: &'r [RowIn<'a>]) -> Cow<'r, [RowIn<'a>]> {
    if fmt.full_name.is_none() {
        return Cow::Borrowed(rows);
    }
    let parts = rows.iter().map(|r| RowIn {
        name: r.name.map(|n| fmt.part(n)),
        ..*r
    });
    Cow::Owned(parts.collect())
}

/// Each row's parts when the format shows them: from the model (one batch for the rows
/// that pass the check; none for the others), or as the caller gave them.
fn explanations(
    fmt: &RowFormat,
    rows: &[RowIn<'_>],
    scores: Scores<'_>,
    full: &[f32],
) -> Result<Option<Vec<Vec<Part>>>> {
    if fmt.explain == 0 {
        return Ok(None);
    }
    match scores {
        Scores::Given(_, why) => Ok(why.map(<[Vec<Part>]>::to_vec)),
        // The rows' own answers are `full` already: only the candidates run.
        Scores::Model(model) => {
            let names = checked_texts(fmt, rows);
            explain::explain_given(model, &names, full, fmt.explain).map(Some)
        }
    }
}

/// Scores the lines of `chunk` and appends their rows to `out`. The chunk is cut at
/// line ends into blocks that threads take whole (check, forward, top-k, format), so a
/// block's rows stay in cache from its bytes to its output and no stage waits on another.
/// A block's forward pass is itself split across the pool: a thread done with its
/// blocks takes parts of another's instead of waiting (a recurrent model's block of 64
/// KiB is ~8,000 names, tens of milliseconds; 20,000 names score 11% faster).
pub fn score_chunk(
    model: &Model,
    chunk: &[u8],
    fmt: &RowFormat,
    out: &mut Vec<u8>,
) -> Result<Counts> {
    let blocks = line_blocks(chunk, BLOCK_BYTES);
    // Several blocks mean at least 64 KiB, well past the pool's threshold.
    let scored: Vec<Result<(Vec<u8>, Counts)>> = threads::run(chunk.len(), || {
        if blocks.len() > 1 {
            blocks
                .par_iter()
                .map(|b| score_block(model, b, fmt))
                .collect()
        } else {
            blocks.iter().map(|b| score_block(model, b, fmt)).collect()
        }
    });
    let mut counts = Counts::default();
    for part in scored {
        let (rows, n) = part?;
        out.extend_from_slice(&rows);
        counts += n;
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

/// The output rows of one block of complete lines, on this thread. A line that is not
/// UTF-8 is shown with U+FFFD in place of its bad bytes.
fn score_block(model: &Model, block: &[u8], fmt: &RowFormat) -> Result<(Vec<u8>, Counts)> {
    let (shown, decoded) = decoded_lines(block);
    let rows: Vec<RowIn<'_>> = shown
        .iter()
        .zip(&decoded)
        .map(|(s, d)| RowIn {
            lead: Lead::Name(s),
            name: *d,
            error: None,
        })
        .collect();
    let mut out = Vec::with_capacity(block.len() * 2 + rows.len() * 24 * fmt.k);
    let counts = write_rows(fmt, &rows, Scores::Model(model), &mut out)?;
    Ok((out, counts))
}

/// Each line of a name list as its row shows it (bad bytes as U+FFFD) and as its name
/// (None: the line is not UTF-8).
pub fn decoded_lines(block: &[u8]) -> (Vec<Cow<'_, str>>, Vec<Option<&str>>) {
    let raw: Vec<&[u8]> = lines(block).collect();
    let decoded: Vec<Option<&str>> = raw.iter().map(|r| std::str::from_utf8(r).ok()).collect();
    let shown = raw
        .iter()
        .zip(&decoded)
        .map(|(r, d)| d.map_or_else(|| String::from_utf8_lossy(r), Cow::Borrowed))
        .collect();
    (shown, decoded)
}

/// Columnar results for batch APIs: row-major (B, k) category indices (-1: none) and
/// probabilities, and an error code per row (`RowError::column_code`).
pub struct Columns {
    pub top: Vec<i32>,
    pub probability: Vec<f32>,
    pub error: Vec<u8>,
}

/// Scores rows of names (a None name: bytes that were not UTF-8, or the row's error)
/// into columns, with the same check and answer as the formatted rows; the checks run
/// across the pool.
pub fn score_columns(model: &Model, fmt: &RowFormat, rows: &[RowIn<'_>]) -> Result<Columns> {
    let rows = scored_parts(fmt, rows);
    let checked = threads::map(&rows, |r| fmt.check_len(r.name, r.error));
    let (errors, scores) = check_and_score_checked(fmt, &rows, checked, Scores::Model(model))?;
    columns(fmt, &errors, &scores)
}

/// The same with log-probabilities computed elsewhere (the torch backend), one row of
/// them per row.
pub fn columns_given(fmt: &RowFormat, rows: &[RowIn<'_>], scores: &[f32]) -> Result<Columns> {
    let (errors, scores) =
        check_and_score(fmt, &scored_parts(fmt, rows), Scores::Given(scores, None))?;
    columns(fmt, &errors, &scores)
}

fn columns(fmt: &RowFormat, errors: &[Option<RowError>], scores: &[f32]) -> Result<Columns> {
    let (classes, k) = (fmt.categories.len(), fmt.k);
    let mut top = vec![-1i32; errors.len() * k];
    let mut probability = vec![f32::NAN; errors.len() * k];
    let mut codes = Vec::with_capacity(errors.len());
    let mut answer = Answer::default();
    for (i, error) in errors.iter().enumerate() {
        answer.fill(fmt, &scores[i * classes..(i + 1) * classes], *error);
        for (j, &(c, p)) in answer.top.iter().enumerate() {
            top[i * k + j] = c as i32;
            probability[i * k + j] = p as f32;
        }
        codes.push(RowError::column_code(answer.error));
    }
    Ok(Columns {
        top,
        probability,
        error: codes,
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

    /// A line: one of a few names with bytes spliced in (no newline among them).
    fn spliced_line() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        (
            prop::sample::select(vec!["Hinton", "Zhou", "Ślusàrski", "", " "]),
            prop::collection::vec(any::<u8>(), 0..12),
            any::<prop::sample::Index>(),
        )
            .prop_map(|(name, noise, at)| {
                let name = name.as_bytes();
                let cut = at.index(name.len() + 1);
                let mut l = name[..cut].to_vec();
                l.extend(noise.into_iter().filter(|&b| b != b'\n'));
                l.extend_from_slice(&name[cut..]);
                l
            })
    }

    /// Random bytes spliced into real names, lines ended by '\n' or '\r\n': one output
    /// row per line, in order, each naming its line (bad UTF-8 shown as U+FFFD).
    #[test]
    fn every_line_gets_its_row_in_order() {
        use crate::normalize::TextRule;
        use crate::rows::Format;
        use proptest::prelude::*;
        use proptest::test_runner::{Config, RngSeed, TestRunner};

        let bytes = include_bytes!("../python/namelang/models/tutorial.safetensors");
        let model = Model::from_bytes(bytes).unwrap();
        let categories = model.spec.categories.clone();
        let fmt = RowFormat::new(Format::Jsonl, 2, 16, None, 0.0, TextRule::Exact, categories);
        let fmt = fmt.unwrap();
        let config = Config {
            cases: 300,
            rng_seed: RngSeed::Fixed(2),
            failure_persistence: None,
            ..Config::default()
        };
        let lines_and_endings = prop::collection::vec((spliced_line(), any::<bool>()), 0..40);
        TestRunner::new(config)
            .run(&lines_and_endings, |input| {
                let mut chunk = Vec::new();
                for (l, crlf) in &input {
                    chunk.extend_from_slice(l);
                    chunk.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
                }
                let mut out = Vec::new();
                let counts = score_chunk(&model, &chunk, &fmt, &mut out).unwrap();
                let rows: Vec<serde_json::Value> = out
                    .split(|&b| b == b'\n')
                    .filter(|r| !r.is_empty())
                    .map(|r| serde_json::from_slice(r).unwrap())
                    .collect();
                prop_assert_eq!(rows.len(), input.len());
                prop_assert_eq!(counts.rows, input.len());
                for (row, (l, crlf)) in rows.iter().zip(&input) {
                    // A line ending in '\r' before its '\n' loses that '\r' with the ending.
                    let l = if *crlf {
                        &l[..]
                    } else {
                        l.strip_suffix(b"\r").unwrap_or(l)
                    };
                    prop_assert_eq!(row["name"].as_str().unwrap(), String::from_utf8_lossy(l));
                    let error = row["error"].as_str();
                    prop_assert_eq!(error.is_none(), row["language"].is_string());
                }
                Ok(())
            })
            .unwrap();
    }
}
