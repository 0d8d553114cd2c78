//! The states after a name's first letters, computed once per model rather than once
//! per chunk. A state depends only on the letters read so far, and a case-blind rule
//! reads 31 letters, so every name starts with one of 31 + 31^2 + 31^3 prefixes of up
//! to three letters. Chunks already share prefixes, but only among their own rows: on a
//! million distinct names the third step still ran for about 800,000 prefixes (14% of
//! the recurrence's steps) where 29,791 exist. The table holds a one-layer GRU's state
//! after each prefix (11 MB for the default's two members of 48), computed by the same
//! recurrence on the prefixes themselves; a row's products and gates depend on nothing
//! but the row, so a row started from the table has the bits it would have had from
//! h_0. It is built once the model has run `BUILD_AFTER` rows (a one-name user never
//! pays for it), by one chunk's thread across the pool (about as long as 5,000 names),
//! while the other chunks go on without it.

use super::letters::Letters;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// Letters of the longest prefixes the table holds.
pub(super) const DEPTH: usize = 3;
/// Letters a case-blind rule reads: a-z, then " .,;'" (indices 52..57 of the alphabet).
const LETTERS: usize = 31;
/// Rows the model runs before the table is built (its cost is about 5,000 names').
const BUILD_AFTER: usize = 50_000;
/// The most hidden units (every direction's) the tables are kept for: 31.5 MB at 256
/// (a GRU of 256 fits; a larger or bidirectional one goes without).
const MOST_UNITS: usize = 256;

/// Whether tables for `units` hidden units (every direction's) are kept.
pub(super) fn fits(units: usize) -> bool {
    units <= MOST_UNITS
}

/// A letter's place among the LETTERS a case-blind rule reads, or None (upper case).
#[inline]
pub(super) fn slot(letter: u8) -> Option<usize> {
    match letter {
        0..26 => Some(letter as usize),
        52..57 => Some(letter as usize - 26),
        _ => None,
    }
}

/// The letter at a place (`slot`'s inverse).
fn letter_at(place: usize) -> u8 {
    if place < 26 {
        place as u8
    } else {
        (place + 26) as u8
    }
}

/// Every prefix of `len` letters, one row each, in the order their ids count:
/// id = ((l_0 · LETTERS) + l_1) · LETTERS + ... over the letters' places.
pub(super) fn every_prefix(len: usize) -> Letters {
    let rows = LETTERS.pow(len as u32);
    let mut x = Vec::with_capacity(rows * len);
    for id in 0..rows {
        for k in (0..len).rev() {
            x.push(letter_at(id / LETTERS.pow(k as u32) % LETTERS));
        }
    }
    Letters::equal_rows(x, len)
}

/// One direction part's states (`units` floats each): `levels[d]` holds the state after
/// each prefix of d + 1 letters, by id.
pub(super) struct Table {
    pub(super) units: usize,
    pub(super) levels: [Vec<f32>; DEPTH],
}

impl Table {
    /// The state after the prefix with this id, of `level` + 1 letters.
    #[inline]
    pub(super) fn state(&self, level: usize, id: usize) -> &[f32] {
        &self.levels[level][id * self.units..(id + 1) * self.units]
    }
}

/// Each id of the nodes of one step, from their parents' ids at the step before.
pub(super) fn ids(parents: &[u32], parent_ids: &[u32], letters: &[u8], out: &mut Vec<u32>) {
    out.clear();
    for (&p, &l) in parents.iter().zip(letters) {
        let above = parent_ids.get(p as usize).map_or(0, |&i| i as usize);
        // Callers check the letters first (`readable`): an unknown one would be a bug.
        out.push((above * LETTERS + slot(l).expect("a case-blind letter")) as u32);
    }
}

/// Whether every letter of a chunk has a place in the table.
pub(super) fn readable(x: &Letters) -> bool {
    x.all().iter().all(|&l| slot(l).is_some())
}

/// The tables of a model's direction parts, built on demand (see the module's notes).
#[derive(Default)]
pub(super) struct StartStates {
    tables: OnceLock<Arc<Vec<Table>>>,
    rows_run: AtomicUsize,
    /// Set by the one thread that builds the tables.
    building: AtomicBool,
}

impl Clone for StartStates {
    /// Shares the tables once built; a copy made while they are built builds its own.
    fn clone(&self) -> Self {
        StartStates {
            tables: self.tables.clone(),
            rows_run: AtomicUsize::new(self.rows_run.load(Ordering::Relaxed)),
            building: AtomicBool::new(false),
        }
    }
}

impl StartStates {
    /// The tables, counting `rows` more rows run; the first caller past BUILD_AFTER
    /// builds them (`build`). None before, and for other callers while they are built:
    /// rows run from h_0 meanwhile, with the same bits, rather than wait.
    pub(super) fn after(
        &self,
        rows: usize,
        build: impl FnOnce() -> Vec<Table>,
    ) -> Option<&[Table]> {
        if let Some(tables) = self.tables.get() {
            return Some(tables);
        }
        let seen = self.rows_run.fetch_add(rows, Ordering::Relaxed) + rows;
        if seen < BUILD_AFTER || self.building.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(self.tables.get_or_init(|| Arc::new(build())))
    }

    /// Builds the tables now, whatever the count (tests).
    #[cfg(test)]
    pub(super) fn build_now(&self, build: impl FnOnce() -> Vec<Table>) {
        self.tables.get_or_init(|| Arc::new(build()));
    }

    #[cfg(test)]
    pub(super) fn built(&self) -> bool {
        self.tables.get().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_cover_the_case_blind_letters_once() {
        let placed: Vec<u8> = (0..57u8).filter(|&l| slot(l).is_some()).collect();
        assert_eq!(placed.len(), LETTERS);
        for (place, &l) in placed.iter().enumerate() {
            assert_eq!(slot(l), Some(place));
            assert_eq!(letter_at(place), l);
        }
        assert_eq!(slot(26), None); // 'A'
        assert_eq!(slot(51), None); // 'Z'
    }

    #[test]
    fn prefix_ids_follow_their_letters() {
        let two = every_prefix(2);
        assert_eq!(two.rows(), LETTERS * LETTERS);
        // Row id reads the letters whose places make id in base LETTERS.
        assert_eq!(two.row(0), &[0, 0]);
        assert_eq!(two.row(LETTERS + 2), &[1, 2]);
        assert_eq!(two.row(LETTERS * LETTERS - 1), &[56, 56]);
        // Ids of step-2 nodes from their parents' (step-1) ids.
        let mut out = Vec::new();
        ids(&[0, 1], &[3, 30], &[0, 56], &mut out);
        assert_eq!(out, [3 * 31, 30 * 31 + 30]);
        ids(&[0, 0], &[], &[4, 52], &mut out); // the first step has no parents' ids
        assert_eq!(out, [4, 26]);
        assert!(readable(&two));
        assert!(!readable(&Letters::equal_rows(vec![0, 26], 2)));
    }

    #[test]
    fn tables_fit_their_budget() {
        assert!(fits(96) && fits(256)); // the default (two members of 48), a GRU of 256
        assert!(!fits(257) && !fits(2 * 256)); // bigger, or 256 in both directions
    }

    #[test]
    fn the_table_waits_for_enough_rows() {
        let s = StartStates::default();
        let build = || vec![];
        assert!(s.after(BUILD_AFTER - 1, build).is_none());
        assert!(!s.built());
        assert!(s.after(1, build).is_some());
        assert!(s.built() && s.clone().built());
        // While one thread builds, the others go on without the tables.
        let t = StartStates::default();
        t.building.store(true, Ordering::Relaxed);
        assert!(t.after(BUILD_AFTER, build).is_none());
    }
}
