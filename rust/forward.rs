//! The CPU forward pass: names -> log-probabilities (B, C) for the tutorial's Elman
//! cell (recurrence or collapsed tables), GRU and LSTM. Names are sorted by length and
//! cut into chunks run in parallel; each step computes only the rows still reading.

use crate::alphabet::N_LETTERS;
use crate::error::{Error, Result};
use crate::gemm::{matmul_acc, Mat};
use crate::math::{log_softmax, sigmoid, tanh};
use crate::model_file::{parse, Cell, Spec};
use crate::normalize::for_each_index;
use crate::{encode, threads};
use rayon::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;

/// Per-thread buffers reused across chunks and calls: fresh multi-megabyte
/// allocations per chunk cost more in page faults than the arithmetic.
#[derive(Default)]
struct Scratch {
    a: Vec<f32>,
    b: Vec<f32>,
    gi: Vec<f32>,
    gh: Vec<f32>,
    hs: Vec<Vec<f32>>,
    cs: Vec<Vec<f32>>,
    x: Vec<u8>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// `v` resized to `len` and zeroed, keeping its allocation.
fn zeroed<T: Copy + Default>(v: &mut Vec<T>, len: usize) -> &mut [T] {
    v.clear();
    v.resize(len, T::default());
    &mut v[..]
}

/// Rows per parallel chunk: big enough to amortise the weights, small enough for L2.
const CHUNK: usize = 384;
/// Longest name the collapsed tables cover; longer ones run the recurrence.
pub const COLLAPSED_MAX_LEN: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Collapsed tables where the cell allows and the name is short enough.
    Auto,
    /// Always the step-by-step recurrence.
    Recurrence,
    /// Collapsed tables (linear cells only); names past the bound fall back.
    Collapsed,
}

impl std::str::FromStr for Method {
    type Err = Error;
    fn from_str(s: &str) -> Result<Method> {
        match s {
            "auto" => Ok(Method::Auto),
            "recurrence" => Ok(Method::Recurrence),
            "collapsed" => Ok(Method::Collapsed),
            _ => Err(Error::InvalidArgument(format!(
                "method must be 'auto', 'recurrence' or 'collapsed', got {s:?}"
            ))),
        }
    }
}

pub struct Model {
    pub spec: Spec,
    classes: usize,
    net: Net,
}

enum Net {
    Elman(Elman),
    Gated(Gated),
}

/// The tutorial cell with its weights rearranged for the kernel.
struct Elman {
    hidden: usize,
    xb: Vec<f32>,    // (57, H): i2h's letter columns plus its bias
    wh_t: Vec<f32>,  // (H, H): i2h's hidden block, transposed
    xo: Vec<f32>,    // (57, Cp): i2o's letter columns plus bias and logit adjustment
    oh_t: Vec<f32>,  // (H, Cp): i2o's hidden block, transposed
    table: Vec<f32>, // (COLLAPSED_MAX_LEN - 1, 57, C): (Oh Wh^d Wx)[:, letter]
    bias: Vec<f32>,  // (COLLAPSED_MAX_LEN + 1, C): Oh Σ_{d<T-1} Wh^d b
}

struct Layer {
    wih_t: Vec<f32>, // (in, G), layers above the first
    whh_t: Vec<f32>, // (H, G)
    bih: Vec<f32>,   // (G) (for an LSTM, b_ih + b_hh)
    bhh: Vec<f32>,   // (G)
}

/// GRU or LSTM: the first layer's input projection is a per-letter table.
struct Gated {
    lstm: bool,
    hidden: usize,
    gates: usize,
    table0: Vec<f32>, // (57, G): W_ih0 · input(letter) + b_ih0 (+ b_hh0 for an LSTM)
    layers: Vec<Layer>,
    out_t: Vec<f32>, // (H, Cp)
    out_b: Vec<f32>, // (Cp): bias plus logit adjustment, zero-padded
}

/// Output rows are computed this wide (zero columns past C) so the kernel never
/// falls back to its scalar edge loop.
fn padded(classes: usize) -> usize {
    classes.div_ceil(16) * 16
}

/// Columns col0..col0+ncols of a row-major (rows, cols) matrix, transposed to
/// (ncols, stride) with zero columns from `rows` up to `stride`.
fn transpose_padded(
    m: &[f32],
    rows: usize,
    cols: usize,
    col0: usize,
    ncols: usize,
    stride: usize,
) -> Vec<f32> {
    let mut t = vec![0f32; ncols * stride];
    for r in 0..rows {
        for c in 0..ncols {
            t[c * stride + r] = m[r * cols + col0 + c];
        }
    }
    t
}

fn transpose(m: &[f32], rows: usize, cols: usize, col0: usize, ncols: usize) -> Vec<f32> {
    transpose_padded(m, rows, cols, col0, ncols, rows)
}

impl Model {
    pub fn from_bytes(bytes: &[u8]) -> Result<Model> {
        let file = parse(bytes)?;
        let spec = file.spec;
        let t = file.tensors;
        let classes = spec.categories.len();
        let net = match spec.cell {
            Cell::Elman => Net::Elman(Elman::new(&spec, &t)),
            Cell::Gru | Cell::Lstm => Net::Gated(Gated::new(&spec, &t)),
        };
        Ok(Model { spec, classes, net })
    }

    pub fn from_path(path: &str) -> Result<Model> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::Io(format!("cannot read model file {path}: {e}")))?;
        Model::from_bytes(&bytes)
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Log-probabilities, row-major (B, C); a name with no letters gets a row of NaN.
    pub fn log_probs<S: AsRef<str> + Sync>(&self, names: &[S], method: Method) -> Result<Vec<f32>> {
        let c = self.classes;
        let lengths = encode::lengths(names);
        let mut out = vec![0f32; names.len() * c];
        let collapsed =
            match (&self.net, method) {
                (Net::Elman(_), Method::Auto | Method::Collapsed) => true,
                (_, Method::Collapsed) => return Err(Error::InvalidArgument(
                    "the collapsed method needs a linear cell (elman); use 'auto' or 'recurrence'"
                        .into(),
                )),
                _ => false,
            };
        let direct = |len: usize| len == 0 || (collapsed && len <= COLLAPSED_MAX_LEN);
        // Rows that need the recurrence, longest first (stable: ties keep input order).
        let mut order: Vec<usize> = (0..names.len()).filter(|&i| !direct(lengths[i])).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
        let batch = names.len();
        threads::run(batch, || {
            let par = batch >= threads::PARALLEL_THRESHOLD;
            // Empty and collapsed rows, one name at a time.
            let per_row = |(i, row): (usize, &mut [f32])| {
                let len = lengths[i];
                if len == 0 {
                    row.fill(f32::NAN);
                } else if direct(len) {
                    if let Net::Elman(e) = &self.net {
                        e.collapsed(names[i].as_ref(), len, c, row);
                    }
                }
            };
            if par {
                out.par_chunks_mut(c).enumerate().for_each(per_row);
            } else {
                out.chunks_mut(c).enumerate().for_each(per_row);
            }
            // Recurrent rows, in length-sorted chunks.
            let run_chunk = |rows: &[usize]| -> Vec<f32> {
                let lens: Vec<usize> = rows.iter().map(|&i| lengths[i]).collect();
                SCRATCH.with(|cell| {
                    let scratch = &mut *cell.borrow_mut();
                    let mut x = std::mem::take(&mut scratch.x);
                    letters_time_major(names, rows, &lens, &mut x);
                    let logits = match &self.net {
                        Net::Elman(e) => e.recurrence(&x, &lens, c, scratch),
                        Net::Gated(g) => g.recurrence(&x, &lens, c, scratch),
                    };
                    scratch.x = x;
                    logits
                })
            };
            let results: Vec<Vec<f32>> = if par {
                order.par_chunks(CHUNK).map(run_chunk).collect()
            } else {
                order.chunks(CHUNK).map(run_chunk).collect()
            };
            let cp = padded(c);
            for (rows, logits) in order.chunks(CHUNK).zip(results) {
                for (k, &i) in rows.iter().enumerate() {
                    out[i * c..(i + 1) * c].copy_from_slice(&logits[k * cp..k * cp + c]);
                }
            }
            let finish = |row: &mut [f32]| {
                if !row[0].is_nan() {
                    log_softmax(row)
                }
            };
            if par {
                out.par_chunks_mut(c).for_each(finish);
            } else {
                out.chunks_mut(c).for_each(finish);
            }
        });
        Ok(out)
    }
}

/// Indices of the k best scores, best first, ties in index order; none for a NaN row.
pub fn top_k(row: &[f32], k: usize) -> Vec<usize> {
    if row.iter().any(|v| v.is_nan()) {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..row.len()).collect();
    order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
    order.truncate(k);
    order
}

/// Letter indices of the chosen rows, time-major: x[t * rows + r]; padding is 0.
fn letters_time_major<S: AsRef<str>>(names: &[S], rows: &[usize], lens: &[usize], x: &mut Vec<u8>) {
    let n = rows.len();
    let width = lens.first().copied().unwrap_or(0);
    let x = zeroed(x, width * n);
    for (r, &i) in rows.iter().enumerate() {
        let mut t = 0;
        for_each_index(names[i].as_ref(), |letter| {
            x[t * n + r] = letter;
            t += 1;
        });
    }
}

/// Rows [0, count) of a length-descending list with len > bound.
fn count_longer(lens: &[usize], bound: usize) -> usize {
    lens.partition_point(|&l| l > bound)
}

impl Elman {
    fn new(spec: &Spec, t: &HashMap<String, Vec<f32>>) -> Elman {
        let h = spec.hidden_size;
        let c = spec.categories.len();
        let width = N_LETTERS + h;
        let (i2h, i2h_b) = (&t["i2h.weight"], &t["i2h.bias"]);
        let (i2o, i2o_b, adj) = (&t["i2o.weight"], &t["i2o.bias"], &t["logit_adjustment"]);
        let mut xb = transpose(i2h, h, width, 0, N_LETTERS);
        for row in xb.chunks_mut(h) {
            row.iter_mut().zip(i2h_b).for_each(|(v, b)| *v += b);
        }
        let mut xo = transpose_padded(i2o, c, width, 0, N_LETTERS, padded(c));
        for row in xo.chunks_mut(padded(c)) {
            for (k, v) in row[..c].iter_mut().enumerate() {
                *v += i2o_b[k] + adj[k];
            }
        }
        let (table, bias) = collapsed_tables(i2h, i2h_b, i2o, h, c);
        Elman {
            hidden: h,
            xb,
            wh_t: transpose(i2h, h, width, N_LETTERS, h),
            xo,
            oh_t: transpose_padded(i2o, c, width, N_LETTERS, h, padded(c)),
            table,
            bias,
        }
    }

    /// logits = xo[x_{T-1}] + bias[T] + Σ_{k<T-1} table[T-2-k][x_k]
    fn collapsed(&self, name: &str, len: usize, c: usize, row: &mut [f32]) {
        row.copy_from_slice(&self.bias[len * c..(len + 1) * c]);
        let mut k = 0;
        for_each_index(name, |letter| {
            let l = letter as usize;
            let src = if k + 1 == len {
                let at = l * padded(c);
                &self.xo[at..at + c]
            } else {
                let d = len - 2 - k;
                let at = (d * N_LETTERS + l) * c;
                &self.table[at..at + c]
            };
            row.iter_mut().zip(src).for_each(|(v, s)| *v += s);
            k += 1;
        });
    }

    /// Logits (rows, padded(C)) for length-descending rows, all of length >= 1.
    fn recurrence(&self, x: &[u8], lens: &[usize], c: usize, scratch: &mut Scratch) -> Vec<f32> {
        let (n, h, c) = (lens.len(), self.hidden, padded(c));
        let mut logits = vec![0f32; n * c];
        let (mut a, mut b) = (&mut scratch.a, &mut scratch.b);
        zeroed(a, n * h);
        zeroed(b, n * h);
        // h_0 = 0, so h_1 is a lookup.
        let mut active = count_longer(lens, 1);
        for r in 0..active {
            let l = x[r] as usize;
            a[r * h..(r + 1) * h].copy_from_slice(&self.xb[l * h..(l + 1) * h]);
        }
        for r in active..n {
            let l = x[r] as usize;
            logits[r * c..(r + 1) * c].copy_from_slice(&self.xo[l * c..(l + 1) * c]);
        }
        let mut s = 1; // `a` holds h_s for rows [0, active)
        while active > 0 {
            let going = count_longer(lens, s + 1);
            let xs = &x[s * n..(s + 1) * n];
            // Rows of length s + 1 read their last letter: output from h_s.
            for r in going..active {
                let l = xs[r] as usize;
                logits[r * c..(r + 1) * c].copy_from_slice(&self.xo[l * c..(l + 1) * c]);
            }
            matmul_acc(
                active - going,
                h,
                c,
                Mat {
                    data: &a[going * h..],
                    ld: h,
                },
                Mat {
                    data: &self.oh_t,
                    ld: c,
                },
                &mut logits[going * c..],
                c,
            );
            if going == 0 {
                break;
            }
            for r in 0..going {
                let l = xs[r] as usize;
                b[r * h..(r + 1) * h].copy_from_slice(&self.xb[l * h..(l + 1) * h]);
            }
            matmul_acc(
                going,
                h,
                h,
                Mat { data: a, ld: h },
                Mat {
                    data: &self.wh_t,
                    ld: h,
                },
                b,
                h,
            );
            std::mem::swap(&mut a, &mut b);
            active = going;
            s += 1;
        }
        logits
    }
}

/// Collapsed tables of the linear cell, computed in f64.
fn collapsed_tables(
    i2h: &[f32],
    i2h_b: &[f32],
    i2o: &[f32],
    h: usize,
    c: usize,
) -> (Vec<f32>, Vec<f32>) {
    let width = N_LETTERS + h;
    let wh = |j: usize, k: usize| i2h[j * width + N_LETTERS + k] as f64;
    let wx = |j: usize, l: usize| i2h[j * width + l] as f64;
    // m = Oh Wh^d, starting at d = 0.
    let mut m: Vec<f64> = (0..c * h)
        .map(|i| i2o[(i / h) * width + N_LETTERS + i % h] as f64)
        .collect();
    let mut table = vec![0f32; (COLLAPSED_MAX_LEN - 1) * N_LETTERS * c];
    let mut bias = vec![0f32; (COLLAPSED_MAX_LEN + 1) * c];
    let mut running = vec![0f64; c];
    for d in 0..COLLAPSED_MAX_LEN - 1 {
        for l in 0..N_LETTERS {
            for k in 0..c {
                let v: f64 = (0..h).map(|j| m[k * h + j] * wx(j, l)).sum();
                table[(d * N_LETTERS + l) * c + k] = v as f32;
            }
        }
        // bias[T] for T = d + 2 sums M_0 .. M_d times b.
        for k in 0..c {
            running[k] += (0..h).map(|j| m[k * h + j] * i2h_b[j] as f64).sum::<f64>();
            bias[(d + 2) * c + k] = running[k] as f32;
        }
        let mut next = vec![0f64; c * h];
        for k in 0..c {
            for j in 0..h {
                let mj = m[k * h + j];
                if mj != 0.0 {
                    for q in 0..h {
                        next[k * h + q] += mj * wh(j, q);
                    }
                }
            }
        }
        m = next;
    }
    (table, bias)
}

impl Gated {
    fn new(spec: &Spec, t: &HashMap<String, Vec<f32>>) -> Gated {
        let lstm = spec.cell == Cell::Lstm;
        let h = spec.hidden_size;
        let c = spec.categories.len();
        let g = if lstm { 4 * h } else { 3 * h };
        let input = if spec.embedding_dim > 0 {
            spec.embedding_dim
        } else {
            N_LETTERS
        };
        let w0 = &t["rnn.weight_ih_l0"];
        let mut table0 = vec![0f32; N_LETTERS * g];
        for l in 0..N_LETTERS {
            for q in 0..g {
                let v: f64 = if spec.embedding_dim > 0 {
                    let emb = &t["embedding.weight"][l * input..(l + 1) * input];
                    (0..input)
                        .map(|e| w0[q * input + e] as f64 * emb[e] as f64)
                        .sum()
                } else {
                    w0[q * input + l] as f64
                };
                let mut bias = t["rnn.bias_ih_l0"][q] as f64;
                if lstm {
                    bias += t["rnn.bias_hh_l0"][q] as f64;
                }
                table0[l * g + q] = (v + bias) as f32;
            }
        }
        let layers = (0..spec.num_layers)
            .map(|k| {
                let mut bih = t[&format!("rnn.bias_ih_l{k}")].clone();
                let bhh = t[&format!("rnn.bias_hh_l{k}")].clone();
                if lstm {
                    bih.iter_mut().zip(&bhh).for_each(|(a, b)| *a += b);
                }
                let wih = &t[&format!("rnn.weight_ih_l{k}")];
                Layer {
                    wih_t: if k == 0 {
                        Vec::new()
                    } else {
                        transpose(wih, g, h, 0, h)
                    },
                    whh_t: transpose(&t[&format!("rnn.weight_hh_l{k}")], g, h, 0, h),
                    bih,
                    bhh,
                }
            })
            .collect();
        let adj = &t["logit_adjustment"];
        Gated {
            lstm,
            hidden: h,
            gates: g,
            table0,
            layers,
            out_t: transpose_padded(&t["out.weight"], c, h, 0, h, padded(c)),
            out_b: (0..padded(c))
                .map(|k| {
                    if k < c {
                        t["out.bias"][k] + adj[k]
                    } else {
                        0.0
                    }
                })
                .collect(),
        }
    }

    /// Logits (rows, padded(C)) for length-descending rows, all of length >= 1.
    fn recurrence(&self, x: &[u8], lens: &[usize], c: usize, scratch: &mut Scratch) -> Vec<f32> {
        let (n, h, g, c) = (lens.len(), self.hidden, self.gates, padded(c));
        let layers = self.layers.len();
        let Scratch { gi, gh, hs, cs, .. } = scratch;
        hs.resize_with(layers, Vec::new);
        cs.resize_with(layers, Vec::new);
        for k in 0..layers {
            zeroed(&mut hs[k], n * h);
            if self.lstm {
                zeroed(&mut cs[k], n * h);
            }
        }
        let gi = zeroed(gi, n * g);
        let gh = zeroed(gh, n * g);
        let mut logits = vec![0f32; n * c];
        let width = lens.first().copied().unwrap_or(0);
        for s in 0..width {
            let active = count_longer(lens, s);
            let xs = &x[s * n..(s + 1) * n];
            for (k, layer) in self.layers.iter().enumerate() {
                // Input projection: a lookup for the first layer, a product above it.
                if k == 0 {
                    for r in 0..active {
                        let l = xs[r] as usize;
                        gi[r * g..(r + 1) * g].copy_from_slice(&self.table0[l * g..(l + 1) * g]);
                    }
                } else {
                    for r in 0..active {
                        gi[r * g..(r + 1) * g].copy_from_slice(&layer.bih);
                    }
                    let (below, _) = hs.split_at(k);
                    let input = &below[k - 1];
                    matmul_acc(
                        active,
                        h,
                        g,
                        Mat { data: input, ld: h },
                        Mat {
                            data: &layer.wih_t,
                            ld: g,
                        },
                        gi,
                        g,
                    );
                }
                let state = &mut hs[k];
                if self.lstm {
                    if s > 0 {
                        matmul_acc(
                            active,
                            h,
                            g,
                            Mat { data: state, ld: h },
                            Mat {
                                data: &layer.whh_t,
                                ld: g,
                            },
                            gi,
                            g,
                        );
                    }
                    let cell = &mut cs[k];
                    for r in 0..active {
                        lstm_update(
                            &gi[r * g..(r + 1) * g],
                            &mut cell[r * h..(r + 1) * h],
                            &mut state[r * h..(r + 1) * h],
                        );
                    }
                } else {
                    for r in 0..active {
                        gh[r * g..(r + 1) * g].copy_from_slice(&layer.bhh);
                    }
                    if s > 0 {
                        matmul_acc(
                            active,
                            h,
                            g,
                            Mat { data: state, ld: h },
                            Mat {
                                data: &layer.whh_t,
                                ld: g,
                            },
                            gh,
                            g,
                        );
                    }
                    for r in 0..active {
                        gru_update(
                            &gi[r * g..(r + 1) * g],
                            &gh[r * g..(r + 1) * g],
                            &mut state[r * h..(r + 1) * h],
                        );
                    }
                }
            }
            // Rows whose last letter was s are done: logits from the top layer.
            let going = count_longer(lens, s + 1);
            if going < active {
                for r in going..active {
                    logits[r * c..(r + 1) * c].copy_from_slice(&self.out_b);
                }
                let top = &hs[layers - 1];
                matmul_acc(
                    active - going,
                    h,
                    c,
                    Mat {
                        data: &top[going * h..],
                        ld: h,
                    },
                    Mat {
                        data: &self.out_t,
                        ld: c,
                    },
                    &mut logits[going * c..],
                    c,
                );
            }
        }
        logits
    }
}

/// The gate updates, compiled for AVX2+FMA where the CPU has it (they are plain
/// loops that the compiler vectorises; the attribute widens the vectors).
fn gru_update(gi: &[f32], gh: &[f32], h: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if crate::gemm::isa() != crate::gemm::Isa::Portable {
        // SAFETY: `isa` checked that the CPU has AVX2 and FMA.
        return unsafe { gru_update_avx2(gi, gh, h) };
    }
    gru_update_body(gi, gh, h)
}

fn lstm_update(gates: &[f32], c: &mut [f32], h: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if crate::gemm::isa() != crate::gemm::Isa::Portable {
        // SAFETY: as above.
        return unsafe { lstm_update_avx2(gates, c, h) };
    }
    lstm_update_body(gates, c, h)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gru_update_avx2(gi: &[f32], gh: &[f32], h: &mut [f32]) {
    gru_update_body(gi, gh, h)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn lstm_update_avx2(gates: &[f32], c: &mut [f32], h: &mut [f32]) {
    lstm_update_body(gates, c, h)
}

/// PyTorch's GRU: r, z, n gates; h' = (1 - z) n + z h.
#[inline(always)]
fn gru_update_body(gi: &[f32], gh: &[f32], h: &mut [f32]) {
    let hidden = h.len();
    let (ir, rest) = gi.split_at(hidden);
    let (iz, inn) = rest.split_at(hidden);
    let (hr, rest) = gh.split_at(hidden);
    let (hz, hn) = rest.split_at(hidden);
    for j in 0..hidden {
        let r = sigmoid(ir[j] + hr[j]);
        let z = sigmoid(iz[j] + hz[j]);
        let n = tanh(inn[j] + r * hn[j]);
        h[j] = n + z * (h[j] - n);
    }
}

/// PyTorch's LSTM: i, f, g, o gates (biases already summed into `gates`).
#[inline(always)]
fn lstm_update_body(gates: &[f32], c: &mut [f32], h: &mut [f32]) {
    let hidden = h.len();
    let (gi, rest) = gates.split_at(hidden);
    let (gf, rest) = rest.split_at(hidden);
    let (gg, go) = rest.split_at(hidden);
    for j in 0..hidden {
        let cell = sigmoid(gf[j]) * c[j] + sigmoid(gi[j]) * tanh(gg[j]);
        c[j] = cell;
        h[j] = sigmoid(go[j]) * tanh(cell);
    }
}
