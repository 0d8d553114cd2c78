//! The surname of a full name, for lists that hold whole names (`full_name`): "Smith,
//! John" and "John Smith" give "Smith"; the particles before a surname stay with it
//! ("Jan van den Berg" gives "van den Berg", "Maria da Silva" "da Silva"); a hyphenated
//! or apostrophed surname is one word ("García-López", "O'Brien"); a generational suffix
//! is dropped ("Martin Luther King Jr." gives "King").
//!
//! That rule reads given-name-first order, as Western lists write names. A list in
//! family-name-first order (Chinese, Korean, Vietnamese, Japanese and Hungarian lists
//! often are) is read by `NameOrder::FamilyFirst`: the first word ("Nguyễn Văn An"
//! gives "Nguyễn"), particles not looked for (Vietnamese "Le Van Thanh" is Le, though
//! "le" and "van" are particles in the other order); "Family, Given" reads the same in
//! either order.

use std::str::FromStr;

use crate::error::Error;

/// The order a list writes full names in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameOrder {
    /// "John Smith": the surname is the last word (Western lists).
    GivenFirst,
    /// "Wang Xiaoming": the family name is the first word.
    FamilyFirst,
}

impl FromStr for NameOrder {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "given-first" => Ok(NameOrder::GivenFirst),
            "family-first" => Ok(NameOrder::FamilyFirst),
            _ => Err(Error::InvalidArgument(format!(
                "a name order is 'given-first' or 'family-first', got {s:?}"
            ))),
        }
    }
}

/// Words that belong to the surname after them.
const PARTICLES: [&str; 23] = [
    "van", "von", "de", "der", "den", "del", "della", "dei", "di", "da", "das", "dos", "du", "la",
    "le", "les", "ter", "ten", "te", "het", "'t", "bin", "ibn",
];

/// Words after a surname that are not part of it.
const SUFFIXES: [&str; 9] = [
    "jr", "jr.", "sr", "sr.", "ii", "iii", "iv", "junior", "senior",
];

fn is_particle(word: &str) -> bool {
    PARTICLES.iter().any(|p| p.eq_ignore_ascii_case(word))
}

fn is_suffix(word: &str) -> bool {
    SUFFIXES
        .iter()
        .any(|s| s.eq_ignore_ascii_case(word.trim_end_matches(',')))
}

/// The family name of `name` written in `order`, a slice of it.
pub fn family_name(name: &str, order: NameOrder) -> &str {
    match order {
        NameOrder::GivenFirst => surname(name),
        NameOrder::FamilyFirst => leading_family_name(name),
    }
}

/// The surname part of `name`, a slice of it (the whole name when it has one word).
pub fn surname(name: &str) -> &str {
    if let Some((family, _)) = name.split_once(',') {
        if !family.trim().is_empty() {
            return family.trim();
        }
    }
    let words: Vec<(usize, &str)> = words(name);
    let Some(last) = words.iter().rposition(|(_, w)| !is_suffix(w)) else {
        return name.trim();
    };
    let mut first = last;
    while first > 0 && is_particle(words[first - 1].1) {
        first -= 1;
    }
    let start = words[first].0;
    let end = words[last].0 + words[last].1.len();
    &name[start..end]
}

/// The first word of `name`; "Family, Given" gives Family, as in given-first order.
fn leading_family_name(name: &str) -> &str {
    let rest = match name.split_once(',') {
        Some((family, _)) if !family.trim().is_empty() => return family.trim(),
        Some((_, given)) => given, // ", Wei": a family name left blank
        None => name,
    };
    rest.split_whitespace().next().unwrap_or("")
}

/// (byte offset, word) for each whitespace-separated word.
fn words(name: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in name.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, &name[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &name[s..]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_names_give_their_surnames_with_particles() {
        for (full, want) in [
            ("John Smith", "Smith"),
            ("Smith, John", "Smith"),
            ("Maria da Silva", "da Silva"),
            ("Jan van den Berg", "van den Berg"),
            ("Hans-Peter Müller", "Müller"),
            ("Sean O'Brien", "O'Brien"),
            ("Ana García-López", "García-López"),
            ("Martin Luther King Jr.", "King"),
            ("Ludwig van Beethoven", "van Beethoven"),
            ("Daniele De Luca", "De Luca"),
            ("Juan de la Cruz", "de la Cruz"),
            ("  Zhou  ", "Zhou"),
            ("de Jong", "de Jong"),
            ("van der Meer, Anna", "van der Meer"),
            ("Smith Jr.", "Smith"),
            ("", ""),
            (", John", "John"),
        ] {
            assert_eq!(surname(full), want, "{full:?}");
        }
    }

    #[test]
    fn family_first_names_give_their_first_word() {
        for (full, want) in [
            ("Nguyễn Văn An", "Nguyễn"),
            ("Wang Xiaoming", "Wang"),
            ("Nagy László", "Nagy"),
            ("Le Van Thanh", "Le"),
            ("van der Meer, Anna", "van der Meer"),
            ("Kim, Min-jun", "Kim"),
            ("  Zhou  ", "Zhou"),
            ("Park Ji-hoon", "Park"),
            (", Wei", "Wei"),
            ("", ""),
        ] {
            assert_eq!(family_name(full, NameOrder::FamilyFirst), want, "{full:?}");
        }
        assert_eq!(
            family_name("Wang Xiaoming", NameOrder::GivenFirst),
            "Xiaoming"
        );
        assert_eq!(
            "family-first".parse::<NameOrder>(),
            Ok(NameOrder::FamilyFirst)
        );
        assert_eq!(
            "given-first".parse::<NameOrder>(),
            Ok(NameOrder::GivenFirst)
        );
        let err = "last-first".parse::<NameOrder>().unwrap_err().to_string();
        assert!(
            err.contains("'family-first'") && err.contains("last-first"),
            "{err}"
        );
    }

    #[test]
    fn the_surname_of_a_surname_is_itself() {
        for full in [
            "John Smith",
            "Jan van den Berg",
            "Smith, John",
            "Juan de la Cruz",
        ] {
            let once = surname(full);
            assert_eq!(surname(once), once);
        }
    }
}
