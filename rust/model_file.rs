//! Reads a namelang model file (safetensors + metadata) and validates it. This is the
//! one reader: the Rust backend and the PyTorch loader (`namelang.model_file.read`) both
//! call it, so a file is accepted or refused once, with a message naming what is wrong.
//! Files carry a SHA-256 digest of their metadata and tensors (`digest`), checked
//! before anything else is read from them; files without one still load.

use crate::alphabet::{ALPHABET, N_LETTERS};
use crate::error::{Error, Result};
use crate::known_ngrams::{self, KnownNGrams};
use crate::normalize::TextRule;
use safetensors::{Dtype, SafeTensors};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

pub const FORMAT: &str = "namelang/1";
/// Refuse headers larger than this before parsing them; a real one is a few kB.
pub const MAX_HEADER_BYTES: u64 = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    Elman,
    Gru,
    Lstm,
}

#[derive(Clone, Debug)]
pub struct Spec {
    pub cell: Cell,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub embedding_dim: usize,
    /// One-layer GRU/LSTM reading each name both ways (absent in older files: false).
    pub bidirectional: bool,
    pub categories: Vec<String>,
    pub metadata: HashMap<String, String>,
    /// How names become the letters the model reads (absent in older files: exact).
    pub text_rule: TextRule,
    /// The hashed n-gram branch, when the file has one.
    pub ngrams: Option<NGramSpec>,
    /// Letters outside ASCII the model takes as evidence (`marks`), when it has them.
    pub marks: Option<Vec<char>>,
}

/// A hashed character n-gram branch: its logits are the sum of `ngram.weight` rows,
/// one per n-gram of `^letters$` (1 to `max_n` bytes), row = FNV-1a 64 of the
/// n-gram's bytes modulo `buckets`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NGramSpec {
    pub max_n: usize,
    pub buckets: usize,
    /// Blocks of `ngram.known`, the n-grams the table was trained on (0: none, every
    /// n-gram reads its row; `namelang::known_ngrams`).
    pub known_blocks: usize,
}

/// The n-gram set's tensor: blocks x 8 words, U32 (every other tensor is F32).
pub const KNOWN_TENSOR: &str = "ngram.known";

/// A validated model file: its spec, its float32 tensors by name and, where the
/// n-gram branch has one, the set of n-grams its table knows (`KNOWN_TENSOR`).
pub struct ModelFile {
    pub spec: Spec,
    pub tensors: HashMap<String, Vec<f32>>,
    pub known: Option<KnownNGrams>,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidModel(msg.into())
}

fn int(meta: &HashMap<String, String>, key: &str, low: usize, high: usize) -> Result<usize> {
    let raw = meta
        .get(key)
        .ok_or_else(|| invalid(format!("metadata lacks {key:?}")))?;
    let value: usize = raw
        .parse()
        .map_err(|_| invalid(format!("metadata {key:?} is {raw:?}, not an integer")))?;
    if value < low || value > high {
        return Err(invalid(format!(
            "metadata {key:?} = {value} is outside [{low}, {high}]"
        )));
    }
    Ok(value)
}

/// Validates the header metadata.
pub fn spec_from_metadata(meta: &HashMap<String, String>) -> Result<Spec> {
    let get = |k: &str| meta.get(k).map(String::as_str);
    check_format(meta)?;
    let cell = choice(
        meta,
        "cell",
        &[
            ("elman", Cell::Elman),
            ("gru", Cell::Gru),
            ("lstm", Cell::Lstm),
        ],
        None,
    )?;
    let one_hot = choice(
        meta,
        "input",
        &[("one_hot", true), ("embedding", false)],
        None,
    )?;
    let spec = Spec {
        cell,
        hidden_size: int(meta, "hidden_size", 1, 8192)?,
        num_layers: int(meta, "num_layers", 1, 16)?,
        embedding_dim: int(meta, "embedding_dim", 0, 8192)?,
        // Absent in files from before these existed: false, exact.
        bidirectional: choice(
            meta,
            "bidirectional",
            &[("false", false), ("true", true)],
            Some(false),
        )?,
        categories: categories(meta)?,
        metadata: meta.clone(),
        text_rule: choice(meta, "text_rule", &TEXT_RULES, Some(TextRule::Exact))?,
        ngrams: match (get("ngram_max"), get("ngram_buckets")) {
            (None, None) => None,
            _ => Some(NGramSpec {
                max_n: int(meta, "ngram_max", 1, 8)?,
                buckets: int(meta, "ngram_buckets", 1, 1 << 24)?,
                known_blocks: match get("ngram_known_blocks") {
                    None => 0,
                    Some(_) => int(meta, "ngram_known_blocks", 1, 1 << 22)?,
                },
            }),
        },
        marks: crate::marks::parse(meta)?,
    };
    check_combination(&spec, one_hot)?;
    Ok(spec)
}

const TEXT_RULES: [(&str, TextRule); 3] = [
    ("exact", TextRule::Exact),
    ("trim_lower", TextRule::TrimLower),
    ("romanize", TextRule::Romanize),
];

/// The file's format and alphabet are the ones this namelang reads.
fn check_format(meta: &HashMap<String, String>) -> Result<()> {
    let get = |k: &str| meta.get(k).map(String::as_str);
    if get("format") != Some(FORMAT) {
        return Err(invalid(format!(
            "format is {:?}; this namelang reads {FORMAT:?}",
            get("format")
        )));
    }
    if get("alphabet") != Some(ALPHABET) {
        return Err(invalid(format!(
            "alphabet is {:?}, expected {ALPHABET:?}",
            get("alphabet")
        )));
    }
    Ok(())
}

/// One of a few allowed values of a metadata key (`absent`: its value when missing).
fn choice<T: Copy>(
    meta: &HashMap<String, String>,
    key: &str,
    allowed: &[(&str, T)],
    absent: Option<T>,
) -> Result<T> {
    let raw = meta.get(key).map(String::as_str);
    if let (None, Some(value)) = (raw, absent) {
        return Ok(value);
    }
    allowed
        .iter()
        .find(|(name, _)| Some(*name) == raw)
        .map(|&(_, value)| value)
        .ok_or_else(|| {
            let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
            invalid(format!("{key} is {raw:?}, expected one of {names:?}"))
        })
}

fn categories(meta: &HashMap<String, String>) -> Result<Vec<String>> {
    let raw = meta.get("categories").map_or("", String::as_str);
    let categories: Vec<String> = serde_json::from_str(raw)
        .map_err(|_| invalid("metadata 'categories' is not a JSON list of strings"))?;
    let distinct: std::collections::HashSet<&String> = categories.iter().collect();
    if categories.is_empty()
        || distinct.len() != categories.len()
        || categories.iter().any(|c| c.is_empty())
    {
        return Err(invalid(
            "'categories' must be a JSON list of distinct non-empty strings",
        ));
    }
    Ok(categories)
}

/// The rules between fields: which cells take which inputs, layers and branches.
fn check_combination(spec: &Spec, one_hot: bool) -> Result<()> {
    let elman = spec.cell == Cell::Elman;
    if spec.bidirectional && (elman || spec.num_layers != 1) {
        return Err(invalid("bidirectional goes with a one-layer gru or lstm"));
    }
    if one_hot != (spec.embedding_dim == 0) {
        return Err(invalid(
            "embedding_dim > 0 goes with input 'embedding', and only with it",
        ));
    }
    if elman && (spec.num_layers != 1 || !one_hot) {
        return Err(invalid("the elman cell has one layer and one-hot input"));
    }
    if elman && spec.ngrams.is_some() {
        return Err(invalid("the n-gram branch goes with a gru or lstm cell"));
    }
    if elman && spec.marks.is_some() {
        return Err(invalid("marks go with a gru or lstm cell"));
    }
    Ok(())
}

/// Tensor name -> shape for a model of this spec (documented in namelang.model).
pub fn expected_shapes(spec: &Spec) -> Vec<(String, Vec<usize>)> {
    let (h, c) = (spec.hidden_size, spec.categories.len());
    let mut shapes = Vec::new();
    let mut add = |name: String, shape: Vec<usize>| shapes.push((name, shape));
    if spec.cell == Cell::Elman {
        add("i2h.weight".into(), vec![h, N_LETTERS + h]);
        add("i2h.bias".into(), vec![h]);
        add("i2o.weight".into(), vec![c, N_LETTERS + h]);
        add("i2o.bias".into(), vec![c]);
    } else {
        let g = if spec.cell == Cell::Gru { 3 * h } else { 4 * h };
        let mut width = N_LETTERS;
        if spec.embedding_dim > 0 {
            add(
                "embedding.weight".into(),
                vec![N_LETTERS, spec.embedding_dim],
            );
            width = spec.embedding_dim;
        }
        let suffixes: &[&str] = if spec.bidirectional {
            &["", "_reverse"]
        } else {
            &[""]
        };
        for k in 0..spec.num_layers {
            for d in suffixes {
                add(
                    format!("rnn.weight_ih_l{k}{d}"),
                    vec![g, if k == 0 { width } else { h }],
                );
                add(format!("rnn.weight_hh_l{k}{d}"), vec![g, h]);
                add(format!("rnn.bias_ih_l{k}{d}"), vec![g]);
                add(format!("rnn.bias_hh_l{k}{d}"), vec![g]);
            }
        }
        add("out.weight".into(), vec![c, suffixes.len() * h]);
        add("out.bias".into(), vec![c]);
    }
    if let Some(ng) = spec.ngrams {
        add("ngram.weight".into(), vec![ng.buckets, c]);
        if ng.known_blocks > 0 {
            add(
                KNOWN_TENSOR.into(),
                vec![ng.known_blocks, known_ngrams::WORDS],
            );
        }
    }
    if let Some(marks) = &spec.marks {
        add(crate::marks::TENSOR.into(), vec![marks.len(), c]);
    }
    add("logit_adjustment".into(), vec![c]);
    shapes
}

/// The largest model file read: far past any real one (the default is under 3 MB),
/// small enough that a wrong path never fills memory.
pub const MAX_FILE_BYTES: u64 = 1 << 31;

/// The bytes of the model file at `path`, read only after checking that it is a
/// regular file whose size is what its header declares (header plus the end of its last
/// tensor): a device, FIFO, directory or oversized file is refused without reading it.
pub fn read_path(path: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let io = |e: std::io::Error| Error::Io(format!("cannot read model file {path}: {e}"));
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(invalid(format!(
            "{path} is not a regular file (a directory, device or FIFO)"
        )));
    }
    let size = meta.len();
    if size > MAX_FILE_BYTES {
        return Err(invalid(format!(
            "{path} has {size} bytes, more than the {MAX_FILE_BYTES} a model file may have"
        )));
    }
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut head = vec![0u8; (size.min(8 + MAX_HEADER_BYTES)) as usize];
    file.read_exact(&mut head).map_err(io)?;
    let declared = declared_len(&head)?;
    if declared != size {
        return Err(size_mismatch(declared, size));
    }
    let mut bytes = head;
    bytes.resize(size as usize, 0);
    let start = (size.min(8 + MAX_HEADER_BYTES)) as usize;
    file.read_exact(&mut bytes[start..]).map_err(io)?;
    Ok(bytes)
}

fn size_mismatch(declared: u64, size: u64) -> Error {
    if declared < size {
        invalid(format!(
            "{} bytes after the last tensor (the header declares {declared} bytes, the \
             file has {size})",
            size - declared
        ))
    } else {
        invalid(format!(
            "the header declares {declared} bytes, but the file has only {size}"
        ))
    }
}

/// The size a safetensors file declares from its first bytes: 8 + header length + the
/// largest end offset of its tensors.
fn declared_len(head: &[u8]) -> Result<u64> {
    refuse_other_formats(head)?;
    if head.len() < 8 {
        return Err(invalid(format!(
            "too short to be a safetensors file ({} bytes)",
            head.len()
        )));
    }
    let header_len = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
    if header_len > MAX_HEADER_BYTES.min(head.len() as u64 - 8) {
        return Err(invalid(format!(
            "safetensors header claims {header_len} bytes, but the file has {}",
            head.len()
        )));
    }
    let raw = &head[8..8 + header_len as usize];
    serde_json::from_slice::<NoDuplicateKeys>(raw)
        .map_err(|e| invalid(format!("bad safetensors header: {e}")))?;
    let header: serde_json::Value =
        serde_json::from_slice(raw).map_err(|e| invalid(format!("bad safetensors header: {e}")))?;
    let end = header
        .as_object()
        .ok_or_else(|| invalid("the safetensors header is not a JSON object"))?
        .iter()
        .filter(|(k, _)| k.as_str() != "__metadata__")
        .filter_map(|(_, v)| v.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    Ok(8 + header_len + end)
}

/// Any JSON value in which no object repeats a key: a repeated tensor or `__metadata__`
/// would otherwise be read as its last copy, silently.
struct NoDuplicateKeys;

impl<'de> serde::Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeysVisitor)
    }
}

struct NoDuplicateKeysVisitor;

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeysVisitor {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(
        self,
        mut map: M,
    ) -> std::result::Result<NoDuplicateKeys, M::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "key {key:?} appears twice"
                )));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(NoDuplicateKeys)
    }

    fn visit_seq<S: serde::de::SeqAccess<'de>>(
        self,
        mut seq: S,
    ) -> std::result::Result<NoDuplicateKeys, S::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(NoDuplicateKeys)
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_unit<E>(self) -> std::result::Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
}

fn refuse_other_formats(bytes: &[u8]) -> Result<()> {
    // A safetensors header is JSON from byte 8; only without that look for a pickle's
    // opcode or a zip's signature (the length's first byte may well be 0x80).
    let json_header = bytes.get(8) == Some(&b'{');
    if !json_header && (bytes.first() == Some(&0x80) || bytes.starts_with(b"PK")) {
        return Err(invalid(
            "this is a pickle or torch.save checkpoint; namelang loads only safetensors model \
             files, since loading a pickle can run code. If you trust that checkpoint, load it \
             with torch.load and write it with namelang.model_file.save",
        ));
    }
    Ok(())
}

/// The metadata key of a file's digest: "sha256:" and 64 lower-case hex digits.
pub const DIGEST_KEY: &str = "digest";

/// One tensor as the digest reads it: name, dtype name (e.g. "F32"), shape, bytes.
pub type TensorBytes<'a> = (&'a str, &'a str, &'a [usize], &'a [u8]);

/// The digest of a model: SHA-256 over every metadata entry but the digest itself
/// (sorted by key) and every tensor (sorted by name: name, dtype, shape, bytes), each
/// field prefixed by its length, so no two different files hash the same stream.
/// Written by `namelang.model_file.write` (through the native module) and checked here.
pub fn digest(meta: &HashMap<String, String>, tensors: &[TensorBytes<'_>]) -> String {
    let mut h = Sha256::new();
    let field = |h: &mut Sha256, bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    h.update(b"namelang-digest/1");
    let mut keys: Vec<&String> = meta.keys().filter(|k| *k != DIGEST_KEY).collect();
    keys.sort();
    field(&mut h, &(keys.len() as u64).to_le_bytes());
    for k in keys {
        field(&mut h, k.as_bytes());
        field(&mut h, meta[k].as_bytes());
    }
    let mut sorted: Vec<&TensorBytes<'_>> = tensors.iter().collect();
    sorted.sort_by_key(|t| t.0);
    for (name, dtype, shape, data) in sorted {
        field(&mut h, name.as_bytes());
        field(&mut h, dtype.as_bytes());
        let dims: Vec<u8> = shape
            .iter()
            .flat_map(|&d| (d as u64).to_le_bytes())
            .collect();
        field(&mut h, &dims);
        field(&mut h, data);
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Checks the file's digest, when it has one, against its metadata and tensors.
fn check_digest(meta: &HashMap<String, String>, file: &SafeTensors<'_>) -> Result<()> {
    let Some(stated) = meta.get(DIGEST_KEY) else {
        return Ok(()); // older or hand-made files: loaded, with every other check
    };
    let well_formed = stated.len() == 71
        && stated.starts_with("sha256:")
        && stated[7..]
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !well_formed {
        return Err(invalid(format!(
            "metadata 'digest' is {stated:?}, not \"sha256:\" and 64 hex digits"
        )));
    }
    let views = file.tensors();
    let dtypes: Vec<String> = views
        .iter()
        .map(|(_, v)| format!("{:?}", v.dtype()))
        .collect();
    let tensors: Vec<TensorBytes<'_>> = views
        .iter()
        .zip(&dtypes)
        .map(|((name, v), dtype)| (name.as_str(), dtype.as_str(), v.shape(), v.data()))
        .collect();
    if digest(meta, &tensors) != *stated {
        return Err(invalid(
            "digest mismatch: the file's bytes are not the ones it was written with (damaged \
             in storage or transfer, or edited); restore it from its source or retrain it",
        ));
    }
    Ok(())
}

/// A tensor's 32-bit words, once its dtype (U32 for `KNOWN_TENSOR`, F32 for every
/// other) and shape are the ones the spec gives it.
fn checked_words(file: &SafeTensors<'_>, name: &str, shape: &[usize]) -> Result<Vec<u32>> {
    let view = file
        .tensor(name)
        .map_err(|e| invalid(format!("tensor {name}: {e}")))?;
    let dtype = if name == KNOWN_TENSOR {
        Dtype::U32
    } else {
        Dtype::F32
    };
    if view.dtype() != dtype {
        return Err(invalid(format!(
            "tensor {name} must be {dtype:?}, found {:?}",
            view.dtype()
        )));
    }
    if view.shape() != shape {
        return Err(invalid(format!(
            "tensor {name} has shape {:?}, expected {shape:?}",
            view.shape()
        )));
    }
    let bytes = view.data().chunks_exact(4);
    Ok(bytes
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect())
}

/// Parses and validates a model file's bytes.
pub fn parse(bytes: &[u8]) -> Result<ModelFile> {
    let declared = declared_len(&bytes[..bytes.len().min(8 + MAX_HEADER_BYTES as usize)])?;
    if declared != bytes.len() as u64 {
        return Err(size_mismatch(declared, bytes.len() as u64));
    }
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| invalid(format!("bad safetensors header: {e}")))?;
    let meta = header
        .metadata()
        .clone()
        .ok_or_else(|| invalid("no namelang metadata in the safetensors header"))?;
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| invalid(format!("bad safetensors data: {e}")))?;
    check_digest(&meta, &file)?;
    let spec = spec_from_metadata(&meta)?;
    let expected = expected_shapes(&spec);
    let present: std::collections::BTreeSet<String> =
        file.names().into_iter().map(String::from).collect();
    let wanted: std::collections::BTreeSet<String> =
        expected.iter().map(|(n, _)| n.clone()).collect();
    let missing: Vec<_> = wanted.difference(&present).collect();
    let extra: Vec<_> = present.difference(&wanted).collect();
    if !missing.is_empty() || !extra.is_empty() {
        return Err(invalid(format!(
            "tensors missing {missing:?}, unexpected {extra:?}"
        )));
    }
    let mut tensors = HashMap::new();
    let mut known = None;
    for (name, shape) in expected {
        let words = checked_words(&file, &name, &shape)?;
        if name == KNOWN_TENSOR {
            known = Some(KnownNGrams::from_words(words)?);
            continue;
        }
        let values: Vec<f32> = words.into_iter().map(f32::from_bits).collect();
        if values.iter().any(|v| !v.is_finite()) {
            return Err(invalid(format!("tensor {name} holds NaN or Inf")));
        }
        tensors.insert(name, values);
    }
    Ok(ModelFile {
        spec,
        tensors,
        known,
    })
}

#[cfg(test)]
mod tests;
