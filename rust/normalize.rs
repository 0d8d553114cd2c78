//! Unicode -> the 57-letter alphabet, as the tutorial's `unicodeToAscii` does:
//! NFD, then keep only alphabet letters (combining marks are never letters).
//!
//! Canonical reordering in NFD only moves combining marks, and every alphabet
//! letter has combining class 0, so decomposing each character on its own and
//! keeping its letters gives the same letters in the same order as NFD of the
//! whole string.

use crate::alphabet::{index_of, ALPHABET, ASCII_TO_INDEX, NOT_A_LETTER};
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
}
