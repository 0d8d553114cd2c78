//! The reader of untrusted files: the bundled models read back, and property tests
//! that mutate them (bit flips, truncations, header bytes, metadata values). Every
//! outcome is a model or an `InvalidModel` error, never a panic; any change to a file
//! with a digest is refused. Seeds are fixed, so a failure reproduces.

use super::*;
use crate::forward::Model;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

const TUTORIAL: &[u8] = include_bytes!("../../python/namelang/models/tutorial.safetensors");
const DEFAULT: &[u8] = include_bytes!("../../python/namelang/models/default.safetensors");

/// Cases per property (`NAMELANG_FUZZ_CASES` raises it for a longer run).
fn config(seed: u64) -> Config {
    let cases = std::env::var("NAMELANG_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    }
}

fn header_end(bytes: &[u8]) -> usize {
    8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

/// Loads through both doors the bindings use: the reader, and the Rust backend (reader,
/// then self-test). Either may refuse, with a model-file error; neither may panic.
fn verdict(bytes: &[u8]) -> std::result::Result<(), String> {
    let parsed = parse(bytes);
    let model = Model::from_bytes(bytes);
    for e in [parsed.as_ref().err(), model.as_ref().err()]
        .into_iter()
        .flatten()
    {
        assert!(
            matches!(e, Error::InvalidModel(_)),
            "not a model error: {e}"
        );
    }
    if let Ok(model) = &model {
        let out = model
            .log_probs(&["Hinton", "", "Zhou"], crate::forward::Method::Auto, true)
            .unwrap();
        assert_eq!(out.len(), 3 * model.classes());
    }
    match (parsed, model) {
        (Ok(_), Ok(_)) => Ok(()),
        (Err(e), _) | (Ok(_), Err(e)) => Err(e.to_string()),
    }
}

#[test]
fn bundled_models_load_and_state_their_digest() {
    for bytes in [TUTORIAL, DEFAULT] {
        let file = parse(bytes).unwrap();
        assert!(file.spec.metadata[DIGEST_KEY].starts_with("sha256:"));
        assert!(verdict(bytes).is_ok());
    }
}

#[test]
fn the_digest_covers_each_part_of_the_stream() {
    let meta: HashMap<String, String> = [("a".to_string(), "bc".to_string())].into();
    let base = digest(&meta, &[("t", "F32", &[1], &[0, 0, 0, 0])]);
    let moved: HashMap<String, String> = [("ab".to_string(), "c".to_string())].into();
    assert_ne!(base, digest(&moved, &[("t", "F32", &[1], &[0, 0, 0, 0])]));
    assert_ne!(base, digest(&meta, &[("t", "F32", &[1, 1], &[0, 0, 0, 0])]));
    assert_ne!(base, digest(&meta, &[("u", "F32", &[1], &[0, 0, 0, 0])]));
    assert_ne!(base, digest(&meta, &[("t", "F32", &[1], &[0, 0, 0, 1])]));
    let with_digest: HashMap<String, String> = [
        ("a".to_string(), "bc".to_string()),
        (DIGEST_KEY.to_string(), "anything".to_string()),
    ]
    .into();
    assert_eq!(
        base,
        digest(&with_digest, &[("t", "F32", &[1], &[0, 0, 0, 0])])
    );
}

proptest! {
    #![proptest_config(config(1))]

    /// Flipped bits anywhere: a verdict, never a panic; flips in the tensors' bytes
    /// (which no other check can see) are a digest mismatch.
    #[test]
    fn flipped_bits_are_refused(
        default in any::<bool>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..8),
    ) {
        let original = if default { DEFAULT } else { TUTORIAL };
        let mut bytes = original.to_vec();
        for (at, mask) in &flips {
            bytes[at.index(original.len())] ^= mask;
        }
        let result = verdict(&bytes);
        prop_assert!(result.is_err(), "a changed file loaded");
        let start = header_end(original);
        if flips.iter().all(|(at, _)| at.index(original.len()) >= start) {
            prop_assert!(result.unwrap_err().contains("digest mismatch"));
        }
    }

    /// Any prefix of a file is refused.
    #[test]
    fn truncated_files_are_refused(at in any::<prop::sample::Index>()) {
        let cut = at.index(TUTORIAL.len());
        prop_assert!(verdict(&TUTORIAL[..cut]).is_err());
    }

    /// Header bytes replaced by JSON-ish characters: a verdict, never a panic.
    #[test]
    fn edited_headers_get_a_verdict(
        edits in prop::collection::vec(
            (any::<prop::sample::Index>(), prop::sample::select(b"{}[]\":,0123456789-.eE \\nu".to_vec())),
            1..6,
        ),
    ) {
        let mut bytes = TUTORIAL.to_vec();
        let end = header_end(TUTORIAL);
        for (at, b) in edits {
            bytes[8 + at.index(end - 8)] = b;
        }
        let _ = verdict(&bytes);
    }

    /// A metadata value set to anything, in a file without a digest (so the checks
    /// after it are reached): a model or a refusal naming what is wrong.
    #[test]
    fn any_metadata_value_gets_a_verdict(
        key in prop::sample::select(vec![
            "format", "cell", "hidden_size", "num_layers", "input", "embedding_dim",
            "bidirectional", "text_rule", "alphabet", "categories", "ngram_max",
            "ngram_buckets", "conformal", "temperature",
        ]),
        value in prop_oneof![
            any::<String>(),
            "[0-9]{1,25}",
            Just("[\"a\",\"b\"]".to_string()),
            Just(String::new()),
        ],
        default in any::<bool>(),
    ) {
        let original = if default { DEFAULT } else { TUTORIAL };
        let end = header_end(original);
        let mut header: serde_json::Value = serde_json::from_slice(&original[8..end]).unwrap();
        let meta = header["__metadata__"].as_object_mut().unwrap();
        meta.remove(DIGEST_KEY);
        meta.insert(key.to_string(), serde_json::Value::String(value));
        let raw = serde_json::to_vec(&header).unwrap();
        let mut bytes = (raw.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(&raw);
        bytes.extend_from_slice(&original[end..]);
        if let Err(e) = verdict(&bytes) {
            prop_assert!(e.contains("invalid model file"), "{e}");
        }
    }
}

/// The metadata of a small, valid one-layer GRU with two languages.
fn gru_metadata() -> HashMap<String, String> {
    [
        ("format", FORMAT),
        ("alphabet", ALPHABET),
        ("cell", "gru"),
        ("hidden_size", "8"),
        ("num_layers", "1"),
        ("input", "one_hot"),
        ("embedding_dim", "0"),
        ("categories", r#"["A", "B"]"#),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn older_files_get_the_defaults_of_later_keys() {
    let spec = spec_from_metadata(&gru_metadata()).expect("valid");
    assert!(!spec.bidirectional && spec.ngrams.is_none());
    assert_eq!(spec.text_rule, TextRule::Exact);
    assert_eq!(spec.categories, ["A", "B"]);
}

#[test]
fn each_rule_of_the_spec_refuses_what_breaks_it() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("format", "namelang/2")], "this namelang reads"),
        (&[("alphabet", "abc")], "alphabet is"),
        (&[("cell", "transformer")], "cell is"),
        (&[("hidden_size", "0")], "outside [1, 8192]"),
        (&[("hidden_size", "eight")], "not an integer"),
        (&[("categories", r#"["A", "A"]"#)], "distinct non-empty"),
        (&[("categories", "[]")], "distinct non-empty"),
        (&[("categories", r#"["A", ""]"#)], "distinct non-empty"),
        (&[("text_rule", "upper")], "text_rule is"),
        (&[("embedding_dim", "4")], "goes with input 'embedding'"),
        (&[("input", "embedding")], "goes with input 'embedding'"),
        (
            &[("bidirectional", "true"), ("num_layers", "2")],
            "one-layer gru or lstm",
        ),
        (
            &[("cell", "elman"), ("num_layers", "2")],
            "one layer and one-hot",
        ),
        (
            &[
                ("cell", "elman"),
                ("ngram_max", "3"),
                ("ngram_buckets", "64"),
            ],
            "n-gram branch",
        ),
        (
            &[("ngram_max", "9"), ("ngram_buckets", "64")],
            "outside [1, 8]",
        ),
        (&[("ngram_max", "3")], "lacks \"ngram_buckets\""),
    ];
    for (edits, message) in cases {
        let mut meta = gru_metadata();
        for (k, v) in *edits {
            meta.insert(k.to_string(), v.to_string());
        }
        let err = spec_from_metadata(&meta).expect_err(message).to_string();
        assert!(err.contains(message), "{edits:?}: {err}");
    }
    let mut meta = gru_metadata();
    meta.remove("hidden_size");
    let err = spec_from_metadata(&meta)
        .expect_err("missing key")
        .to_string();
    assert!(err.contains("lacks \"hidden_size\""), "{err}");
}

#[test]
fn expected_shapes_follow_the_spec() {
    let mut meta = gru_metadata();
    meta.insert("bidirectional".into(), "true".into());
    meta.insert("ngram_max".into(), "3".into());
    meta.insert("ngram_buckets".into(), "64".into());
    let shapes: HashMap<String, Vec<usize>> =
        expected_shapes(&spec_from_metadata(&meta).expect("valid"))
            .into_iter()
            .collect();
    assert_eq!(shapes["rnn.weight_ih_l0"], [24, N_LETTERS]);
    assert_eq!(shapes["rnn.weight_hh_l0_reverse"], [24, 8]);
    assert_eq!(shapes["out.weight"], [2, 16]);
    assert_eq!(shapes["ngram.weight"], [64, 2]);
    assert_eq!(shapes["logit_adjustment"], [2]);
    assert_eq!(shapes.len(), 4 * 2 + 2 + 1 + 1);
}
