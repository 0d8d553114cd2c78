//! Unicode -> the 57-letter alphabet, as the tutorial's `unicodeToAscii` does:
//! NFD, then keep only alphabet letters (combining marks are never letters).
//!
//! Canonical reordering in NFD only moves combining marks, and every alphabet
//! letter has combining class 0, so decomposing each character on its own and
//! keeping its letters gives the same letters in the same order as NFD of the
//! whole string.

use crate::alphabet::{index_of, ALPHABET, ASCII_TO_INDEX, NOT_A_LETTER};
use crate::romanize::romanize;
use unicode_normalization::char::decompose_canonical;

/// Calls `emit` with the alphabet index of each letter that `name` normalises to.
#[inline]
pub fn for_each_index(name: &str, mut emit: impl FnMut(u8)) {
    if name.is_ascii() {
        // Fast path: ASCII is its own NFD.
        for &b in name.as_bytes() {
            let index = ASCII_TO_INDEX[b as usize];
            if index != NOT_A_LETTER {
                emit(index);
            }
        }
        return;
    }
    for c in name.chars() {
        if let Some(index) = index_of(c) {
            emit(index);
        } else if c as u32 >= 0xC0 {
            // Below U+00C0 no non-ASCII character decomposes to a letter.
            decompose_canonical(c, |d| {
                if let Some(index) = index_of(d) {
                    emit(index)
                }
            });
        }
    }
}

/// Number of letters `name` normalises to.
#[inline]
pub fn normalized_len(name: &str) -> usize {
    if name.is_ascii() {
        return name
            .as_bytes()
            .iter()
            .filter(|&&b| ASCII_TO_INDEX[b as usize] != NOT_A_LETTER)
            .count();
    }
    let mut n = 0;
    for_each_index(name, |_| n += 1);
    n
}

/// How a model reads a name's letters, beyond `to_ascii` (the model file's `text_rule`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextRule {
    /// The letters as they are: the tutorial's behaviour, where case and spaces count.
    Exact,
    /// Surrounding spaces dropped and upper case folded to lower: `SMITH`, `smith` and
    /// `  Smith ` read alike, since neither carries a sign of the name's origin.
    TrimLower,
    /// `TrimLower` after Cyrillic and Greek letters are romanised (`romanize`), so
    /// `Иванов` reads as `ivanov`; Latin-script names read as with `TrimLower`.
    Romanize,
}

const SPACE: u8 = 52;
const UPPER: std::ops::Range<u8> = 26..52;

impl TextRule {
    /// Calls `emit` with each letter index the model reads from `name`.
    #[inline]
    pub fn for_each(self, name: &str, mut emit: impl FnMut(u8)) {
        match self {
            TextRule::Exact => for_each_index(name, emit),
            TextRule::Romanize => TextRule::TrimLower.for_each(&romanize(name), emit),
            TextRule::TrimLower => {
                // Spaces wait until a letter follows them, so trailing ones never come out.
                let (mut started, mut spaces) = (false, 0usize);
                for_each_index(name, |i| {
                    if i == SPACE {
                        spaces += started as usize;
                        return;
                    }
                    for _ in 0..spaces {
                        emit(SPACE);
                    }
                    spaces = 0;
                    started = true;
                    emit(if UPPER.contains(&i) { i - 26 } else { i });
                });
            }
        }
    }

    /// Number of letters the model reads from `name`.
    #[inline]
    pub fn len(self, name: &str) -> usize {
        match self {
            TextRule::Exact => normalized_len(name),
            TextRule::TrimLower | TextRule::Romanize => {
                let mut n = 0;
                self.for_each(name, |_| n += 1);
                n
            }
        }
    }

    /// The letters the model reads, as text.
    pub fn apply(self, name: &str) -> String {
        let letters = ALPHABET.as_bytes();
        let mut out = String::with_capacity(name.len());
        self.for_each(name, |i| out.push(letters[i as usize] as char));
        out
    }
}

impl TextRule {
    /// Each letter of the name as the `ascii` column shows it: the ASCII form, case and
    /// spaces kept, of the name or (for `Romanize`) of its romanisation.
    pub fn for_each_shown(self, name: &str, emit: impl FnMut(u8)) {
        match self {
            TextRule::Romanize => for_each_index(&romanize(name), emit),
            TextRule::Exact | TextRule::TrimLower => for_each_index(name, emit),
        }
    }

    /// The rule's name in model files and the Python API.
    pub fn name(self) -> &'static str {
        match self {
            TextRule::Exact => "exact",
            TextRule::TrimLower => "trim_lower",
            TextRule::Romanize => "romanize",
        }
    }

    /// Every rule, for parsing names and listing them in messages.
    pub const ALL: [TextRule; 3] = [TextRule::Exact, TextRule::TrimLower, TextRule::Romanize];
}

impl std::str::FromStr for TextRule {
    type Err = crate::error::Error;
    fn from_str(s: &str) -> crate::error::Result<TextRule> {
        TextRule::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = TextRule::ALL.iter().map(|r| r.name()).collect();
                crate::error::Error::InvalidArgument(format!(
                    "text_rule must be one of {names:?}, got {s:?}"
                ))
            })
    }
}

/// The tutorial's `unicodeToAscii`.
pub fn to_ascii(name: &str) -> String {
    let letters = ALPHABET.as_bytes();
    let mut out = String::with_capacity(name.len());
    for_each_index(name, |i| out.push(letters[i as usize] as char));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tutorial_examples() {
        assert_eq!(to_ascii("Ślusàrski"), "Slusarski");
        assert_eq!(to_ascii("Łukasz"), "ukasz");
        assert_eq!(to_ascii("O'Néal"), "O'Neal");
        assert_eq!(to_ascii("Müller-Lüdenscheidt"), "MullerLudenscheidt");
    }

    #[test]
    fn drops_what_is_not_a_letter() {
        assert_eq!(to_ascii(""), "");
        assert_eq!(to_ascii("\0\t\n-_0123456789"), "");
        assert_eq!(to_ascii("Ζήνων"), "");
        assert_eq!(to_ascii("王"), "");
        assert_eq!(to_ascii("😀a😀"), "a");
        assert_eq!(to_ascii("\u{0301}\u{0301}"), "");
    }

    #[test]
    fn canonical_decompositions_reach_punctuation_and_signs() {
        // GREEK QUESTION MARK decomposes to ';', KELVIN SIGN to 'K', ANGSTROM SIGN to A + ring.
        assert_eq!(to_ascii("\u{037E}"), ";");
        assert_eq!(to_ascii("\u{212A}\u{212B}"), "KA");
        // Compatibility forms are not canonical: full-width letters are dropped.
        assert_eq!(to_ascii("\u{FF21}"), "");
    }

    #[test]
    fn trim_lower_folds_case_and_drops_surrounding_spaces_only() {
        let rule = TextRule::TrimLower;
        assert_eq!(rule.apply("  SMITH \t"), "smith");
        assert_eq!(rule.apply("MÜLLER"), "muller");
        assert_eq!(rule.apply(" De  La\u{00A0}Cruz "), "de  lacruz");
        assert_eq!(rule.apply("   "), "");
        assert_eq!(rule.apply("Ж Ж"), "");
        assert_eq!(rule.apply("O'Neal ."), "o'neal .");
        assert_eq!(TextRule::Exact.apply("  SMITH "), "  SMITH ");
        for s in ["", " a ", "A B", "Ślusàrski  ", "\u{212A} x "] {
            assert_eq!(rule.len(s), rule.apply(s).len());
            assert_eq!(
                rule.apply(s),
                to_ascii(s).trim_matches(' ').to_ascii_lowercase()
            );
        }
    }

    #[test]
    fn length_matches_output() {
        for s in ["", "abc", "Ślusàrski", "a-b c", "\u{212A}x"] {
            assert_eq!(normalized_len(s), to_ascii(s).len());
        }
    }

    #[test]
    fn no_character_below_c0_decomposes_to_a_letter() {
        for code in 0x80u32..0xC0 {
            let c = char::from_u32(code).unwrap();
            let mut letters = 0;
            decompose_canonical(c, |d| letters += index_of(d).is_some() as usize);
            assert_eq!(letters, 0, "U+{code:04X}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            cases: 2000,
            rng_seed: proptest::test_runner::RngSeed::Fixed(3),
            failure_persistence: None,
            ..Default::default()
        })]

        /// Any text: no panic; each rule gives alphabet letters only, as many as `len`
        /// counts, and reading its own output changes nothing (idempotent).
        #[test]
        fn text_rules_are_total_and_idempotent(name in proptest::prelude::any::<String>()) {
            let ascii = to_ascii(&name);
            proptest::prop_assert!(ascii.chars().all(|c| ALPHABET.contains(c)));
            proptest::prop_assert_eq!(to_ascii(&ascii), ascii.clone());
            proptest::prop_assert_eq!(normalized_len(&name), ascii.len());
            let latin = romanize(&name);
            proptest::prop_assert_eq!(romanize(&latin), latin.clone());
            // Russian's letters (and any accented form of them) never survive.
            let russian = '\u{0400}'..='\u{045F}';
            let left = latin.chars().any(|c| russian.contains(&c));
            proptest::prop_assert!(!left, "Cyrillic left in {latin:?}");
            for rule in TextRule::ALL {
                let read = rule.apply(&name);
                proptest::prop_assert_eq!(rule.len(&name), read.len());
                proptest::prop_assert_eq!(rule.apply(&read), read);
            }
        }

        /// Real names with arbitrary characters spliced in read as the name's letters
        /// plus the letters of what was spliced: nothing else is lost or gained.
        #[test]
        fn spliced_names_keep_their_letters(
            name in proptest::sample::select(vec!["Hinton", "Ślusàrski", "O'Néal", "Zhou"]),
            noise in proptest::prelude::any::<String>(),
            at in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            let cut = name.char_indices().map(|(i, _)| i).chain([name.len()]).collect::<Vec<_>>();
            let cut = cut[at.index(cut.len())];
            let spliced = format!("{}{noise}{}", &name[..cut], &name[cut..]);
            let want = format!("{}{}{}", to_ascii(&name[..cut]), to_ascii(&noise), to_ascii(&name[cut..]));
            proptest::prop_assert_eq!(to_ascii(&spliced), want);
        }
    }
}
