//! The tutorial's 57-letter alphabet: `string.ascii_letters + " .,;'"`, in that order.

/// The alphabet as a string; a letter's index is its byte offset.
pub const ALPHABET: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,;'";

/// Number of letters (the one-hot width).
pub const N_LETTERS: usize = 57;

/// Marks an ASCII byte that is not in the alphabet.
pub const NOT_A_LETTER: u8 = u8::MAX;

/// ASCII byte -> alphabet index, or `NOT_A_LETTER`.
pub static ASCII_TO_INDEX: [u8; 128] = build_ascii_table();

const fn build_ascii_table() -> [u8; 128] {
    let mut table = [NOT_A_LETTER; 128];
    let bytes = ALPHABET.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        table[bytes[i] as usize] = i as u8;
        i += 1;
    }
    table
}

/// The alphabet index of a character, if it is one of the 57 letters.
#[inline]
pub fn index_of(c: char) -> Option<u8> {
    let code = c as u32;
    if code < 128 {
        let index = ASCII_TO_INDEX[code as usize];
        (index != NOT_A_LETTER).then_some(index)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabet_has_57_distinct_letters() {
        assert_eq!(ALPHABET.len(), N_LETTERS);
        let distinct: std::collections::HashSet<u8> = ALPHABET.bytes().collect();
        assert_eq!(distinct.len(), N_LETTERS);
    }

    #[test]
    fn table_maps_each_letter_to_its_position() {
        for (i, c) in ALPHABET.chars().enumerate() {
            assert_eq!(index_of(c), Some(i as u8));
        }
        assert_eq!(index_of('-'), None);
        assert_eq!(index_of('\0'), None);
        assert_eq!(index_of('é'), None);
    }
}
