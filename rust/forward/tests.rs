//! The forward pass against a plain float64 loop written here from the cells'
//! equations (PyTorch's, gate order r, z, n for a GRU and i, f, g, o for an LSTM), on
//! small random weights: every cell, every method, with and without shared prefixes,
//! chunked and not, on every matrix kernel this CPU runs (the test re-runs itself with
//! `NAMELANG_ISA` set for each narrower one).

use super::{top_k, Method, Model};
use crate::alphabet::{ALPHABET, N_LETTERS};
use crate::model_file::{expected_shapes, spec_from_metadata, FORMAT};
use crate::ngrams;
use crate::normalize::{for_each_index, TextRule};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use std::collections::HashMap;

/// A tiny deterministic generator (xorshift), so the test needs no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [-scale, scale).
    fn weight(&mut self, scale: f32) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    }
}

struct Case {
    meta: HashMap<String, String>,
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    /// The same weights in float64, for the reference.
    wide: HashMap<String, Vec<f64>>,
}

fn case(
    cell: &str,
    hidden: usize,
    layers: usize,
    embedding: usize,
    extra: &[(&str, &str)],
) -> Case {
    let categories: Vec<String> = (0..5).map(|i| format!("L{i}")).collect();
    let mut meta: HashMap<String, String> = [
        ("format", FORMAT),
        ("cell", cell),
        (
            "input",
            if embedding > 0 {
                "embedding"
            } else {
                "one_hot"
            },
        ),
        ("alphabet", ALPHABET),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    meta.insert("hidden_size".into(), hidden.to_string());
    meta.insert("num_layers".into(), layers.to_string());
    meta.insert("embedding_dim".into(), embedding.to_string());
    meta.insert(
        "categories".into(),
        serde_json::to_string(&categories).unwrap(),
    );
    for (k, v) in extra {
        meta.insert(k.to_string(), v.to_string());
    }
    let spec = spec_from_metadata(&meta).expect("a valid test spec");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (hidden as u64) << 8 ^ layers as u64);
    let tensors = expected_shapes(&spec)
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            // The Elman cell is linear: small weights keep its states from growing
            // without bound along 90 letters.
            let scale = match (cell, name.starts_with("ngram")) {
                (_, true) => 0.3,
                ("elman", _) => 0.15,
                _ => 0.6,
            };
            (name, (shape, (0..n).map(|_| rng.weight(scale)).collect()))
        })
        .collect::<HashMap<String, (Vec<usize>, Vec<f32>)>>();
    let wide = tensors
        .iter()
        .map(|(k, (_, v))| (k.clone(), v.iter().map(|&x| x as f64).collect()))
        .collect();
    Case {
        meta,
        tensors,
        wide,
    }
}

impl Case {
    /// W_hh made block-diagonal in `blocks` groups of units, as a merged ensemble's
    /// (every direction's): the forward pass runs each group on its own.
    fn block_diagonal(mut self, blocks: usize) -> Case {
        for (name, (shape, v)) in self.tensors.iter_mut() {
            if !name.starts_with("rnn.weight_hh") {
                continue;
            }
            let h = shape[1];
            for (i, x) in v.iter_mut().enumerate() {
                let (unit, k) = ((i / h) % h, i % h);
                if unit * blocks / h != k * blocks / h {
                    *x = 0.0;
                }
            }
            self.wide
                .insert(name.clone(), v.iter().map(|&x| x as f64).collect());
        }
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let raw: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(k, (shape, v))| {
                let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                (k.clone(), shape.clone(), bytes)
            })
            .collect();
        let views: Vec<(String, TensorView<'_>)> = raw
            .iter()
            .map(|(k, shape, b)| {
                (
                    k.clone(),
                    TensorView::new(Dtype::F32, shape.clone(), b).unwrap(),
                )
            })
            .collect();
        safetensors::serialize(views, Some(self.meta.clone())).unwrap()
    }

    fn t(&self, name: &str) -> &[f64] {
        &self.wide[name]
    }

    /// out = W x (+ b) for a (rows, cols) row-major W.
    fn affine(&self, w: &str, x: &[f64], b: Option<&str>) -> Vec<f64> {
        let (shape, _) = &self.tensors[w];
        let (rows, cols) = (shape[0], shape[1]);
        let (w, b) = (self.t(w), b.map(|b| self.t(b)));
        (0..rows)
            .map(|r| {
                let dot: f64 = w[r * cols..(r + 1) * cols]
                    .iter()
                    .zip(x)
                    .map(|(w, x)| w * x)
                    .sum();
                dot + b.map_or(0.0, |b| b[r])
            })
            .collect()
    }

    /// The log-probabilities of one name, in float64, from the equations.
    fn reference(&self, name: &str) -> Vec<f64> {
        let mut letters = Vec::new();
        for_each_index(name, |i| letters.push(i as usize));
        let cell = self.meta["cell"].as_str();
        let mut logits = if cell == "elman" {
            self.elman(&letters)
        } else {
            let mut last = self.gated(cell, &letters, "");
            if self.meta.get("bidirectional").map(String::as_str) == Some("true") {
                let backwards: Vec<usize> = letters.iter().rev().copied().collect();
                last.extend(self.gated(cell, &backwards, "_reverse"));
            }
            self.affine("out.weight", &last, Some("out.bias"))
        };
        if let Some(max_n) = self.meta.get("ngram_max") {
            let spec = ngrams_spec(max_n, &self.meta["ngram_buckets"]);
            let table = self.t("ngram.weight");
            let w = ngrams::weight(letters.len(), spec.max_n) as f64;
            let c = logits.len();
            ngrams::for_each_row(name, TextRule::Exact, spec, None, |r| {
                for k in 0..c {
                    logits[k] += w * table[r * c + k];
                }
            });
        }
        let adj = self.t("logit_adjustment");
        logits.iter_mut().zip(adj).for_each(|(l, a)| *l += a);
        let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = logits.iter().map(|l| (l - max).exp()).sum();
        logits.iter().map(|l| l - max - sum.ln()).collect()
    }

    fn elman(&self, letters: &[usize]) -> Vec<f64> {
        let hidden: usize = self.meta["hidden_size"].parse().unwrap();
        let mut h = vec![0f64; hidden];
        let mut out = Vec::new();
        for &l in letters {
            let mut combined = vec![0f64; N_LETTERS];
            combined[l] = 1.0;
            combined.extend(&h);
            out = self.affine("i2o.weight", &combined, Some("i2o.bias"));
            h = self.affine("i2h.weight", &combined, Some("i2h.bias"));
        }
        out
    }

    /// The final top-layer state of one direction.
    fn gated(&self, cell: &str, letters: &[usize], suffix: &str) -> Vec<f64> {
        let hidden: usize = self.meta["hidden_size"].parse().unwrap();
        let layers: usize = self.meta["num_layers"].parse().unwrap();
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        let mut hs = vec![vec![0f64; hidden]; layers];
        let mut cs = vec![vec![0f64; hidden]; layers];
        for &l in letters {
            let mut input = if self.tensors.contains_key("embedding.weight") {
                let e: usize = self.meta["embedding_dim"].parse().unwrap();
                self.t("embedding.weight")[l * e..(l + 1) * e].to_vec()
            } else {
                let mut x = vec![0f64; N_LETTERS];
                x[l] = 1.0;
                x
            };
            for k in 0..layers {
                let name = |w: &str| format!("rnn.{w}_l{k}{suffix}");
                let gi = self.affine(&name("weight_ih"), &input, Some(&name("bias_ih")));
                let gh = self.affine(&name("weight_hh"), &hs[k], Some(&name("bias_hh")));
                let (h, c) = (&mut hs[k], &mut cs[k]);
                for j in 0..hidden {
                    if cell == "gru" {
                        let r = sigmoid(gi[j] + gh[j]);
                        let z = sigmoid(gi[hidden + j] + gh[hidden + j]);
                        let n = (gi[2 * hidden + j] + r * gh[2 * hidden + j]).tanh();
                        h[j] = (1.0 - z) * n + z * h[j];
                    } else {
                        let g = |q: usize| gi[q * hidden + j] + gh[q * hidden + j];
                        let (i, f) = (sigmoid(g(0)), sigmoid(g(1)));
                        let (cand, o) = (g(2).tanh(), sigmoid(g(3)));
                        c[j] = f * c[j] + i * cand;
                        h[j] = o * c[j].tanh();
                    }
                }
                input = hs[k].clone();
            }
        }
        hs[layers - 1].clone()
    }
}

fn ngrams_spec(max_n: &str, buckets: &str) -> crate::model_file::NGramSpec {
    crate::model_file::NGramSpec {
        max_n: max_n.parse().unwrap(),
        buckets: buckets.parse().unwrap(),
        known_blocks: 0,
    }
}

/// Names of every length from 1 to past the collapsed tables' bound, many sharing
/// prefixes, plus ones with no letters; enough rows for several parallel chunks.
fn names() -> Vec<String> {
    let mut rng = Rng(42);
    let mut out: Vec<String> = [
        "",
        "Zhou",
        "Zhong",
        "Zhou",
        "A",
        "O'Neil",
        "1234",
        "Schmidhuber",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let letters = ALPHABET.as_bytes();
    for i in 0..800 {
        let len = 1 + (rng.next() % 90) as usize;
        let stem = if i % 3 == 0 { "Mac" } else { "" };
        let tail: String = (0..len)
            .map(|_| letters[(rng.next() % letters.len() as u64) as usize] as char)
            .collect();
        out.push(format!("{stem}{tail}"));
    }
    out
}

fn cases() -> Vec<(&'static str, Case)> {
    vec![
        ("elman", case("elman", 12, 1, 0, &[])),
        ("gru one-hot", case("gru", 9, 1, 0, &[])),
        ("gru embedding, 2 layers", case("gru", 8, 2, 6, &[])),
        ("lstm one-hot", case("lstm", 7, 1, 0, &[])),
        ("lstm embedding, 2 layers", case("lstm", 8, 2, 5, &[])),
        (
            "bidirectional gru",
            case("gru", 6, 1, 0, &[("bidirectional", "true")]),
        ),
        (
            "bidirectional lstm",
            case("lstm", 5, 1, 4, &[("bidirectional", "true")]),
        ),
        (
            "merged gru, two members",
            case("gru", 64, 1, 4, &[]).block_diagonal(2),
        ),
        (
            "merged bidirectional lstm, two members",
            case("lstm", 64, 1, 0, &[("bidirectional", "true")]).block_diagonal(2),
        ),
        (
            "gru with an n-gram branch",
            case(
                "gru",
                6,
                1,
                4,
                &[("ngram_max", "3"), ("ngram_buckets", "97")],
            ),
        ),
    ]
}

/// Checks every cell here, on the kernel this process uses.
fn check_every_cell() {
    let names = names();
    for (label, case) in cases() {
        let model = Model::from_bytes(&case.bytes()).expect(label);
        let c = model.classes();
        let wanted: Vec<Vec<f64>> = names.iter().map(|n| case.reference(n)).collect();
        let methods: &[Method] = if label == "elman" {
            &[Method::Auto, Method::Recurrence, Method::Collapsed]
        } else {
            &[Method::Auto]
        };
        for &method in methods {
            for share in [false, true] {
                let got = model.log_probs(&names, method, share).unwrap();
                // Every 10th name alone too: it must not matter what else is in a batch.
                let alone: Vec<Vec<f32>> = names
                    .iter()
                    .step_by(10)
                    .map(|n| model.log_probs(&[n], method, share).unwrap())
                    .collect();
                for (i, name) in names.iter().enumerate() {
                    let row = &got[i * c..(i + 1) * c];
                    if !name.chars().any(|ch| ALPHABET.contains(ch)) {
                        assert!(row.iter().all(|v| v.is_nan()), "{label}: {name:?}");
                        continue;
                    }
                    let want = &wanted[i];
                    for k in 0..c {
                        let err = (row[k] as f64 - want[k]).abs() / want[k].abs().max(1.0);
                        assert!(
                            err < 2e-4,
                            "{label} {method:?} share={share} {name:?}: {} vs {}",
                            row[k],
                            want[k]
                        );
                        if i % 10 == 0 {
                            let alone = alone[i / 10][k];
                            assert!((row[k] - alone).abs() < 1e-5, "{label}: {name:?}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn every_cell_matches_its_float64_equations_on_this_kernel() {
    check_every_cell();
}

#[test]
fn every_cell_matches_on_every_narrower_kernel() {
    // The kernel is chosen once per process: each narrower one runs in a child.
    if std::env::var("NAMELANG_ISA").is_ok() {
        return;
    }
    let current = crate::gemm::isa();
    for isa in crate::gemm::available() {
        if isa == current {
            continue;
        }
        let name = match isa {
            crate::gemm::Isa::Avx2 => "avx2",
            crate::gemm::Isa::Portable => "portable",
            crate::gemm::Isa::Avx512 => continue, // the widest is this process's own
        };
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "forward::tests::every_cell_matches_its_float64_equations_on_this_kernel",
            ])
            .env("NAMELANG_ISA", name)
            .status()
            .unwrap();
        assert!(status.success(), "the cells disagree on the {name} kernel");
    }
}

#[test]
fn merged_members_run_apart_and_other_matrices_whole() {
    let parts = |case: Case| match Model::from_bytes(&case.bytes()).unwrap().net {
        super::Net::Gated(g) => g.parts(),
        super::Net::Elman(_) => unreachable!(),
    };
    assert_eq!(
        parts(case("gru", 64, 1, 0, &[]).block_diagonal(2)),
        [0..32, 32..64]
    );
    assert_eq!(
        parts(case("lstm", 96, 1, 0, &[]).block_diagonal(3)),
        [0..32, 32..64, 64..96]
    );
    assert_eq!(parts(case("gru", 64, 1, 0, &[])).len(), 1);
    // Blocks of 16 units: only the cut that leaves 32 on each side is taken.
    assert_eq!(
        parts(case("gru", 64, 1, 0, &[]).block_diagonal(4)),
        [0..32, 32..64]
    );
    // `auto` asks of every part what it would of a matrix that deep: members of 48
    // units do not fill bf16 tiles (pairs of 16) even where the whole 96 would.
    let model = |case: Case| Model::from_bytes(&case.bytes()).unwrap();
    let pair = model(case("gru", 96, 1, 0, &[]).block_diagonal(2));
    assert_eq!(pair.auto_precision(), crate::gemm::auto_precision(48));
    let whole = model(case("gru", 96, 1, 0, &[]));
    assert_eq!(whole.auto_precision(), crate::gemm::auto_precision(96));
    // Two layers: the second reads every unit of the first through W_ih; kept whole.
    assert_eq!(parts(case("gru", 64, 2, 0, &[]).block_diagonal(2)).len(), 1);
}

#[test]
fn top_k_is_best_first_with_ties_in_index_order() {
    let row = [0.1, 0.5, 0.3, 0.5, -1.0];
    assert_eq!(top_k(&row, 3), vec![1, 3, 2]);
    assert_eq!(top_k(&row, 1), vec![1]);
    assert_eq!(top_k(&row, 9), vec![1, 3, 2, 0, 4]);
    assert!(top_k(&[0.0, f32::NAN], 1).is_empty());
    assert!(top_k(&row, 0).is_empty());
    // Against a stable sort, on rows full of ties and infinities.
    let mut rng = Rng(7);
    for _ in 0..2000 {
        let len = 1 + (rng.next() % 20) as usize;
        let row: Vec<f32> = (0..len)
            .map(|_| [-f32::INFINITY, -1.0, 0.0, 0.5, 2.0][(rng.next() % 5) as usize])
            .collect();
        let mut order: Vec<usize> = (0..len).collect();
        order.sort_by(|&a, &b| row[b].partial_cmp(&row[a]).unwrap());
        for k in 1..=len + 1 {
            assert_eq!(top_k(&row, k), order[..k.min(len)], "{row:?} k={k}");
        }
    }
}

fn gated(m: &Model) -> &super::gated::Gated {
    match &m.net {
        super::Net::Gated(g) => g,
        super::Net::Elman(_) => unreachable!(),
    }
}

/// A case's answers with the prefix table, with one of zeros (which every short name
/// must feel where prefixes are shared: the table is read; the plain recurrence does
/// not read it), and without.
fn check_prefix_table(case: &Case, precision: crate::gemm::Precision, names: &[String]) {
    let fresh = || {
        let mut model = Model::from_bytes(&case.bytes()).unwrap();
        model.set_precision(precision).unwrap();
        model
    };
    for share in [false, true] {
        let (plain, table, zeros) = (fresh(), fresh(), fresh());
        let want = plain.log_probs(names, Method::Auto, share).unwrap();
        assert!(gated(&table).build_start_tables_now(false));
        let got = table.log_probs(names, Method::Auto, share).unwrap();
        let same = want
            .iter()
            .zip(&got)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{precision:?} share={share}");
        assert!(gated(&zeros).build_start_tables_now(true));
        let wrong = zeros.log_probs(names, Method::Auto, share).unwrap();
        // Every short name's answer moves (a long one's may forget its start).
        let c = plain.classes();
        for (r, &len) in plain.lengths(names).iter().enumerate() {
            let moved = (0..c).any(|k| want[r * c + k].to_bits() != wrong[r * c + k].to_bits());
            if share {
                assert!(moved || !(1..=8).contains(&len), "row {r} unmoved");
            } else {
                assert!(!moved, "row {r}: the plain recurrence read the table");
            }
        }
    }
}

#[test]
fn rows_started_from_the_prefix_table_keep_their_bits() {
    let rule = [("text_rule", "trim_lower")];
    let bidirectional = [("text_rule", "trim_lower"), ("bidirectional", "true")];
    let ngrams = [
        ("text_rule", "trim_lower"),
        ("ngram_max", "3"),
        ("ngram_buckets", "97"),
    ];
    let cases = [
        case("gru", 9, 1, 0, &rule),
        case("gru", 64, 1, 4, &rule).block_diagonal(2),
        case("gru", 6, 1, 0, &bidirectional),
        case("gru", 6, 1, 4, &ngrams),
    ];
    let mut precisions = vec![crate::gemm::Precision::F32];
    if crate::gemm::int16_available() {
        precisions.push(crate::gemm::Precision::Int16);
    }
    let names = names();
    for case in &cases {
        for &precision in &precisions {
            check_prefix_table(case, precision, &names);
        }
    }
}

#[test]
fn case_sensitive_lstm_deep_and_big_models_have_no_prefix_table() {
    let rule = [("text_rule", "trim_lower")];
    let exact = Model::from_bytes(&case("gru", 9, 1, 0, &[]).bytes()).unwrap();
    let lstm = Model::from_bytes(&case("lstm", 7, 1, 0, &rule).bytes()).unwrap();
    let two_layers = Model::from_bytes(&case("gru", 8, 2, 0, &rule).bytes()).unwrap();
    let big = Model::from_bytes(&case("gru", 300, 1, 0, &rule).bytes()).unwrap();
    for model in [exact, lstm, two_layers, big] {
        assert!(!gated(&model).build_start_tables_now(false));
    }
}
