//! Which parts of a name raised its top language: each run of 1 to `MAX_PART` letters of
//! the name as the model reads it is deleted in turn, and its weight is how much the top
//! language's log-odds, log p - log(1 - p), fall without it. Log-odds rather than the
//! log-probability, which saturates: where the rest of a name's evidence keeps its top
//! language near certain, deleting a part barely moves log p (Kolář: every part 0.03
//! or less) while the odds still fall by the part's own worth. Both rank the parts alike
//! (each falls as the shortened name's p falls). The weights are the model's own answers
//! on the shortened names, every branch included (the n-gram branch's sum is recomputed
//! exactly without the part's n-grams), so they say which letters moved this model, not
//! why the name has its origin. Parts overlap and interact: their weights do not add up.
//!
//! The candidates of a batch are scored in one forward pass; the torch backend scores
//! the same candidates (`candidates`) and ranks them here (`rank`), so both backends
//! give the same parts. Candidates are the name as read, in ASCII, so they hold none of
//! its marks (`crate::marks`): each name's marks are given back to its candidates
//! (`keep_marks`), so the parts weigh the letters alone, not the accent they lost; each
//! mark is a part of its own (`mark_parts`), weighing what its row adds.

use crate::error::Result;
use crate::forward::{Method, Model};
use crate::marks::Marks;
use crate::normalize::TextRule;

/// The longest part tried, in letters.
pub const MAX_PART: usize = 4;

/// Names longer than this (as read) get no parts: their candidates would hold about
/// 4 x len^2 letters (a 1,024-letter name: 4 million).
pub const MAX_LETTERS: usize = 1024;

/// One part of a name: letters `start..end` of the name as the model reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    pub text: String,
    pub start: usize,
    pub end: usize,
    /// Log-odds points the top language loses when the part is deleted.
    pub weight: f32,
}

/// The spans tried for a name of `len` letters: every run of 1..=MAX_PART letters,
/// shortest first, left to right; never the whole name; none past `MAX_LETTERS`.
pub fn spans(len: usize) -> impl Iterator<Item = (usize, usize)> {
    let longest = if len > MAX_LETTERS {
        0
    } else {
        MAX_PART.min(len.saturating_sub(1))
    };
    (1..=longest).flat_map(move |n| (0..=len - n).map(move |start| (start, start + n)))
}

/// The name as the model reads it, and each candidate: that text with one span deleted.
/// Candidates of every name, in order, go in `out`; returns the read text.
pub fn candidates(name: &str, rule: TextRule, out: &mut Vec<String>) -> String {
    let read = rule.apply(name);
    for (start, end) in spans(read.len()) {
        out.push(format!("{}{}", &read[..start], &read[end..]));
    }
    read
}

/// Gives a name's candidates (rows of log-probabilities, C each) the logits its marks
/// add (`shift`, C), renormalised: what they would answer holding the name's marks.
pub fn keep_marks(rows: &mut [f32], shift: &[f32]) {
    let classes = shift.len();
    for row in rows.chunks_mut(classes) {
        row.iter_mut().zip(shift).for_each(|(v, s)| *v += s);
    }
    crate::math::log_softmax_rows(rows, classes);
}

/// The parts a name's marks make, one per mark it holds: the mark as text, at its place
/// in the read name (start..end: the letters the rule reads for it; start = end where
/// it reads none, as for ł), weighing what the top language loses without its row.
pub fn mark_parts(name: &str, rule: TextRule, full: &[f32], marks: &Marks) -> Vec<Part> {
    let Some(top) = best(full) else {
        return Vec::new();
    };
    let odds = log_odds(full.iter().map(|&v| v as f64), top);
    let (places, read) = marks.places(name);
    places
        .into_iter()
        .map(|(mark, at, row)| {
            // Without the mark's row: full - row, whose log-odds need no normalising.
            let without = full.iter().zip(row).map(|(&f, &r)| f as f64 - r as f64);
            Part {
                text: mark.to_string(),
                start: rule.apply(&read[..at.start]).len(),
                end: rule.apply(&read[..at.end]).len(),
                weight: (odds - log_odds(without, top)) as f32,
            }
        })
        .collect()
}

/// log p - log(1 - p) of class `top` from a row of log-scores (log-probabilities or
/// any shift of them), in f64, 1 - p summed from the other classes so that it stays
/// exact where p rounds to 1. A row whose other classes are all impossible (a prior of
/// zeros) reads as certain, not infinite.
fn log_odds(row: impl Iterator<Item = f64> + Clone, top: usize) -> f64 {
    let at_top = row.clone().nth(top).unwrap_or(f64::NAN);
    let rest: f64 = row
        .enumerate()
        .filter(|&(c, _)| c != top)
        .map(|(_, v)| v.exp())
        .sum();
    at_top - rest.max(f64::MIN_POSITIVE).ln()
}

/// The `k` parts with the largest positive weights, best first (ties: leftmost, then
/// shortest), from the name's log-probabilities and its candidates' (row-major, C each).
/// A name without an answer (no letters, NaN) has none.
pub fn rank(read: &str, full: &[f32], rows: &[f32], k: usize) -> Vec<Part> {
    rank_with(read, full, rows, Vec::new(), k)
}

/// `rank`, with parts found otherwise (`mark_parts`) competing after the letters' ties.
pub fn rank_with(read: &str, full: &[f32], rows: &[f32], more: Vec<Part>, k: usize) -> Vec<Part> {
    let Some(top) = best(full) else {
        return Vec::new();
    };
    let classes = full.len();
    let odds_of = |row: &[f32]| log_odds(row.iter().map(|&v| v as f64), top);
    let odds = odds_of(full);
    let mut parts: Vec<Part> = spans(read.len())
        .zip(rows.chunks(classes))
        .filter_map(|((start, end), row)| {
            let weight = (odds - odds_of(row)) as f32;
            (weight > 0.0).then(|| Part {
                text: read[start..end].to_string(),
                start,
                end,
                weight,
            })
        })
        .collect();
    parts.extend(more.into_iter().filter(|p| p.weight > 0.0));
    // The spans come leftmost-shortest first, and the sort is stable.
    parts.sort_by(|a, b| b.weight.total_cmp(&a.weight));
    parts.truncate(k);
    parts
}

/// The class with the highest log-probability; None for a row with a NaN.
fn best(row: &[f32]) -> Option<usize> {
    if row.is_empty() || row.iter().any(|v| v.is_nan()) {
        return None;
    }
    Some((1..row.len()).fold(0, |b, i| if row[i] > row[b] { i } else { b }))
}

/// Up to `k` parts per name, with this model: the names' own answers, then all their
/// candidates in one forward pass (in the pool when the batch is large).
pub fn explain<S: AsRef<str> + Sync>(
    model: &Model,
    names: &[S],
    k: usize,
) -> Result<Vec<Vec<Part>>> {
    let full = model.log_probs(names, Method::Auto, model.share_prefixes)?;
    explain_given(model, names, &full, k)
}

/// `explain`, with the names' own log-probabilities (B, C) already computed (bulk
/// scoring has them): only the candidates run.
pub fn explain_given<S: AsRef<str> + Sync>(
    model: &Model,
    names: &[S],
    full: &[f32],
    k: usize,
) -> Result<Vec<Vec<Part>>> {
    let rule = model.text_rule();
    let mut texts: Vec<String> = Vec::new();
    let mut reads = Vec::with_capacity(names.len());
    let mut counts = Vec::with_capacity(names.len());
    for name in names {
        let before = texts.len();
        reads.push(candidates(name.as_ref(), rule, &mut texts));
        counts.push(texts.len() - before);
    }
    let classes = model.classes();
    let mut rows = model.log_probs(&texts, Method::Auto, model.share_prefixes)?;
    let mut at = 0;
    Ok(reads
        .iter()
        .zip(&counts)
        .enumerate()
        .map(|(i, (read, &n))| {
            let mine = &mut rows[at * classes..(at + n) * classes];
            let full = &full[i * classes..(i + 1) * classes];
            at += n;
            let Some(marks) = model.marks() else {
                return rank(read, full, mine, k);
            };
            with_marks(names[i].as_ref(), rule, read, full, mine, marks, k)
        })
        .collect())
}

/// The parts of a name whose model has marks: its candidates given its marks back, and
/// the marks as parts.
pub fn with_marks(
    name: &str,
    rule: TextRule,
    read: &str,
    full: &[f32],
    rows: &mut [f32],
    marks: &Marks,
    k: usize,
) -> Vec<Part> {
    if let Some(shift) = marks.shift(name) {
        keep_marks(rows, &shift);
    }
    rank_with(read, full, rows, mark_parts(name, rule, full, marks), k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_cover_runs_of_one_to_four_letters_but_never_the_whole_name() {
        assert_eq!(spans(0).count(), 0);
        assert_eq!(spans(1).count(), 0);
        assert_eq!(spans(2).collect::<Vec<_>>(), vec![(0, 1), (1, 2)]);
        assert_eq!(spans(6).count(), 6 + 5 + 4 + 3);
        assert!(spans(6).all(|(s, e)| e > s && e - s <= MAX_PART && e <= 6));
        assert_eq!(spans(MAX_LETTERS).count(), 4 * MAX_LETTERS - 6);
        assert_eq!(spans(MAX_LETTERS + 1).count(), 0);
    }

    #[test]
    fn candidates_delete_each_span_from_the_read_name() {
        let mut out = Vec::new();
        let read = candidates("  Zhou ", TextRule::TrimLower, &mut out);
        assert_eq!(read, "zhou");
        assert_eq!(&out[..4], &["hou", "zou", "zhu", "zho"]);
        assert_eq!(out.len(), 4 + 3 + 2);
    }

    #[test]
    fn rank_keeps_the_largest_positive_drops_of_the_top_language() {
        // Top language 1 at log-probability -0.1; deleting span j leaves row j. The other
        // language stays put, so the log-odds fall as the log-probability does.
        let full = [-3.0, -0.1];
        let rows = [
            -3.0, -0.5, // "a" (0, 1): drop 0.4
            -3.0, -0.05, // "b" (1, 2): rises, not a part
            -3.0, -1.1, // "c" (2, 3): drop 1.0
            -3.0, -0.5, // "ab": drop 0.4, ties "a", comes after it
            -3.0, -0.1, // "bc": no drop
        ];
        let parts = rank("abc", &full, &rows, 3);
        let got: Vec<(&str, usize, usize)> = parts
            .iter()
            .map(|p| (p.text.as_str(), p.start, p.end))
            .collect();
        assert_eq!(got, vec![("c", 2, 3), ("a", 0, 1), ("ab", 0, 2)]);
        assert!((parts[0].weight - 1.0).abs() < 1e-6);
        assert!(rank("abc", &[f32::NAN, 0.0], &rows, 3).is_empty());
    }

    #[test]
    fn a_near_certain_answer_still_weighs_its_parts() {
        // p(top) = 1 - 2e-9: deleting "a" leaves it at 1 - 4.5e-5, so its log-probability
        // falls by 4.5e-5 but its log-odds by 9.3; deleting "b" takes 0.40 from them.
        let full = [-20.0, -20.0, -2e-9];
        let rows = [
            -10.0, -30.0, -4.54e-5, // "a"
            -19.31, -20.0, -3e-9, // "b"
        ];
        let parts = rank("ab", &full, &rows, 2);
        assert_eq!(parts.len(), 2);
        assert_eq!((parts[0].text.as_str(), parts[1].text.as_str()), ("a", "b"));
        let w: Vec<f32> = parts.iter().map(|p| p.weight).collect();
        assert!(
            (w[0] - 9.307).abs() < 1e-3 && (w[1] - 0.4034).abs() < 1e-3,
            "{w:?}"
        );
        // A prior that rules out every other language leaves nothing to weigh.
        let certain = [f32::NEG_INFINITY, f32::NEG_INFINITY, 0.0];
        assert!(rank("ab", &certain, &certain.repeat(2), 2).is_empty());
    }

    /// log p - log(1 - p) of class `top` in a row of log-probabilities, written plainly.
    fn plain_log_odds(row: &[f32], top: usize) -> f64 {
        let p = (row[top] as f64).exp();
        let rest: f64 = (0..row.len())
            .filter(|&c| c != top)
            .map(|c| (row[c] as f64).exp())
            .sum();
        p.ln() - rest.ln()
    }

    #[test]
    fn deleting_the_best_part_costs_the_model_what_its_weight_says() {
        let bytes = include_bytes!("../python/namelang/models/default.safetensors");
        let model = Model::from_bytes(bytes).unwrap();
        let names = ["Papadopoulos", "Zhou", "Nguyen", "a", ""];
        let all = explain(&model, &names, 3).unwrap();
        assert!(all[3].is_empty() && all[4].is_empty());
        for (name, parts) in names.iter().zip(&all).take(3) {
            assert!(!parts.is_empty(), "{name}");
            let read = TextRule::Romanize.apply(name);
            let p = &parts[0];
            let shorter = format!("{}{}", &read[..p.start], &read[p.end..]);
            let out = model.log_probs(&[read.as_str(), shorter.as_str()], Method::Auto, true);
            let out = out.unwrap();
            let c = model.classes();
            let top = best(&out[..c]).unwrap();
            let fell = plain_log_odds(&out[..c], top) - plain_log_odds(&out[c..], top);
            assert!((fell - p.weight as f64).abs() < 1e-4, "{name}");
            assert!(parts.windows(2).all(|w| w[0].weight >= w[1].weight));
        }
    }
}
