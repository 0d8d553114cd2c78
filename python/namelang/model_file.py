"""The model file: safetensors (float32, no pickle) with namelang's metadata in the
header. Written only by training; read here and by the Rust backend, which checks the
same things. Anything that does not fit is refused with a ValueError naming it."""

from __future__ import annotations

import itertools
import json
import math
import os
import struct
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from namelang.text import ALPHABET

if TYPE_CHECKING:  # numpy is needed to read tensors, not to check metadata
    import numpy as np

FORMAT = "namelang/1"
N_LETTERS = 57
CELLS = ("elman", "gru", "lstm")
INPUTS = ("one_hot", "embedding")
# How names become the letters a model reads: "exact" keeps case and spaces (the
# tutorial's behaviour); "trim_lower" drops surrounding spaces and folds case.
TEXT_RULES = ("exact", "trim_lower")
# Refuse headers larger than this before reading them: a real one is a few kB.
MAX_HEADER_BYTES = 1 << 20


@dataclass(frozen=True)
class ModelSpec:
    """What a model file says about itself."""

    cell: str
    hidden_size: int
    num_layers: int
    input: str
    embedding_dim: int
    categories: list[str]
    metadata: dict[str, str] = field(default_factory=dict)
    bidirectional: bool = False
    text_rule: str = "exact"
    ngram_max: int = 0  # 0: no n-gram branch
    ngram_buckets: int = 0

    @property
    def n_categories(self) -> int:
        return len(self.categories)


def expected_shapes(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape for a model of this spec (documented in namelang.model)."""
    H, C = spec.hidden_size, spec.n_categories
    if spec.cell == "elman":
        return {
            "i2h.weight": (H, N_LETTERS + H),
            "i2h.bias": (H,),
            "i2o.weight": (C, N_LETTERS + H),
            "i2o.bias": (C,),
            "logit_adjustment": (C,),
        }
    gates = 3 * H if spec.cell == "gru" else 4 * H
    shapes: dict[str, tuple[int, ...]] = {}
    width = N_LETTERS
    if spec.input == "embedding":
        shapes["embedding.weight"] = (N_LETTERS, spec.embedding_dim)
        width = spec.embedding_dim
    suffixes = ["", "_reverse"] if spec.bidirectional else [""]
    for k in range(spec.num_layers):
        for d in suffixes:
            shapes[f"rnn.weight_ih_l{k}{d}"] = (gates, width if k == 0 else H)
            shapes[f"rnn.weight_hh_l{k}{d}"] = (gates, H)
            shapes[f"rnn.bias_ih_l{k}{d}"] = (gates,)
            shapes[f"rnn.bias_hh_l{k}{d}"] = (gates,)
    shapes["out.weight"] = (C, len(suffixes) * H)
    shapes["out.bias"] = (C,)
    if spec.ngram_buckets:
        shapes["ngram.weight"] = (spec.ngram_buckets, C)
    shapes["logit_adjustment"] = (C,)
    return shapes


def _int(meta: dict[str, str], key: str, low: int, high: int) -> int:
    raw = meta.get(key)
    if raw is None:
        raise ValueError(f"model file metadata lacks {key!r}")
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"model file metadata {key!r} is {raw!r}, not an integer") from None
    if not low <= value <= high:
        raise ValueError(f"model file metadata {key!r} = {value} is outside [{low}, {high}]")
    return value


def _bool(meta: dict[str, str], key: str) -> bool:
    """An optional flag: absent (files from before it existed) is false."""
    raw = meta.get(key, "false")
    if raw not in ("true", "false"):
        raise ValueError(f"model file metadata {key!r} is {raw!r}, expected 'true' or 'false'")
    return raw == "true"


def spec_from_metadata(meta: dict[str, str] | None) -> ModelSpec:
    """Validates the header metadata and returns the spec it describes."""
    if not meta:
        raise ValueError("model file has no namelang metadata in its safetensors header")
    if meta.get("format") != FORMAT:
        raise ValueError(
            f"model file format is {meta.get('format')!r}; this namelang reads {FORMAT!r}"
        )
    if meta.get("alphabet") != ALPHABET:
        raise ValueError(f"model file alphabet is {meta.get('alphabet')!r}, expected {ALPHABET!r}")
    cell = meta.get("cell")
    if cell not in CELLS:
        raise ValueError(f"model file cell is {cell!r}, expected one of {CELLS}")
    kind = meta.get("input")
    if kind not in INPUTS:
        raise ValueError(f"model file input is {kind!r}, expected one of {INPUTS}")
    try:
        categories = json.loads(meta.get("categories", ""))
    except json.JSONDecodeError:
        raise ValueError("model file metadata 'categories' is not a JSON list") from None
    if (
        not isinstance(categories, list)
        or not categories
        or not all(isinstance(c, str) and c for c in categories)
        or len(set(categories)) != len(categories)
    ):
        raise ValueError(
            "model file 'categories' must be a JSON list of distinct non-empty strings"
        )
    spec = ModelSpec(
        cell=cell,
        hidden_size=_int(meta, "hidden_size", 1, 8192),
        num_layers=_int(meta, "num_layers", 1, 16),
        input=kind,
        embedding_dim=_int(meta, "embedding_dim", 0, 8192),
        categories=categories,
        metadata=dict(meta),
        bidirectional=_bool(meta, "bidirectional"),
        text_rule=meta.get("text_rule", "exact"),
    )
    if spec.text_rule not in TEXT_RULES:
        raise ValueError(
            f"model file metadata 'text_rule' is {spec.text_rule!r}, expected one of {TEXT_RULES}"
        )
    if "ngram_max" in meta or "ngram_buckets" in meta:
        spec = replace(
            spec,
            ngram_max=_int(meta, "ngram_max", 1, 8),
            ngram_buckets=_int(meta, "ngram_buckets", 1, 1 << 24),
        )
        if spec.cell == "elman":
            raise ValueError("model file: the n-gram branch goes with a gru or lstm cell")
    if spec.bidirectional and (spec.cell == "elman" or spec.num_layers != 1):
        raise ValueError("model file: bidirectional goes with a one-layer gru or lstm")
    if (spec.input == "embedding") != (spec.embedding_dim > 0):
        raise ValueError(
            "model file: embedding_dim > 0 goes with input 'embedding', and only with it"
        )
    if spec.cell == "elman" and (spec.num_layers != 1 or spec.input != "one_hot"):
        raise ValueError("model file: the elman cell has one layer and one-hot input")
    return spec


def _refuse_other_formats(path: Path, head: bytes) -> None:
    # A safetensors header is JSON from byte 8; only without that look for a pickle's
    # opcode or a zip's signature (the length's first byte may well be 0x80).
    if head[8:9] == b"{":
        return
    if head[:1] == b"\x80" or head[:2] == b"PK":
        raise ValueError(
            f"{path} is a pickle or torch.save checkpoint; namelang loads only safetensors "
            "model files, since loading a pickle can run code. If you trust that checkpoint, "
            "load it with torch.load and write it with namelang.model_file.save"
        )


def read(path: str | os.PathLike[str]) -> tuple[ModelSpec, dict[str, np.ndarray]]:
    """Reads and validates a model file: (spec, {name: float32 array})."""
    import numpy as np

    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(9)
        _refuse_other_formats(path, head)
        head = head[:8]
        f.seek(8)
        if len(head) < 8:
            raise ValueError(f"{path} is too short to be a safetensors file ({size} bytes)")
        (header_len,) = struct.unpack("<Q", head)
        if header_len > min(MAX_HEADER_BYTES, size - 8):
            raise ValueError(
                f"{path}: safetensors header claims {header_len} bytes, but the file has {size}"
            )
        raw_header = f.read(header_len)
        data = f.read()
    try:
        header = json.loads(raw_header.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: safetensors header is not UTF-8 JSON ({e})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: safetensors header is not a JSON object")
    meta = header.pop("__metadata__", None)
    if meta is not None and not (
        isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())
    ):
        raise ValueError(f"{path}: safetensors metadata must map strings to strings")
    spec = spec_from_metadata(meta)
    expected = expected_shapes(spec)
    missing = sorted(set(expected) - set(header))
    extra = sorted(set(header) - set(expected))
    if missing or extra:
        raise ValueError(
            f"{path}: tensors missing {missing}, unexpected {extra} for a {spec.cell} model"
        )
    tensors: dict[str, np.ndarray] = {}
    spans = []
    for name, shape in expected.items():
        info = header[name]
        if not isinstance(info, dict) or info.get("dtype") != "F32":
            found = info.get("dtype") if isinstance(info, dict) else info
            raise ValueError(f"{path}: tensor {name} must be F32, found {found!r}")
        if tuple(info.get("shape", ())) != shape:
            raise ValueError(
                f"{path}: tensor {name} has shape {info.get('shape')}, expected {list(shape)}"
            )
        offsets = info.get("data_offsets")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= len(data)
            or offsets[1] - offsets[0] != 4 * math.prod(shape)
        ):
            raise ValueError(
                f"{path}: tensor {name} has bad data offsets {offsets} (data is {len(data)} bytes)"
            )
        spans.append((offsets[0], offsets[1], name))
        array = np.frombuffer(data, dtype="<f4", count=math.prod(shape), offset=offsets[0])
        array = array.reshape(shape).astype(np.float32)
        if not np.isfinite(array).all():
            raise ValueError(f"{path}: tensor {name} holds NaN or Inf")
        tensors[name] = array
    spans.sort()
    for (_, end, a), (start, _, b) in itertools.pairwise(spans):
        if start < end:
            raise ValueError(f"{path}: tensors {a} and {b} overlap")
    return spec, tensors


def _default_permissions(path: str) -> None:
    """mkstemp makes files private (0600); give them what open() would (0666 & ~umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def write(
    path: str | os.PathLike[str],
    spec: ModelSpec,
    tensors: dict[str, np.ndarray],
    metadata: dict[str, str] | None = None,
) -> Path:
    """Writes a model file atomically (temporary file, then rename)."""
    import numpy as np
    from safetensors.numpy import save_file

    path = Path(path)
    meta = {
        "format": FORMAT,
        "cell": spec.cell,
        "hidden_size": str(spec.hidden_size),
        "num_layers": str(spec.num_layers),
        "input": spec.input,
        "embedding_dim": str(spec.embedding_dim),
        "bidirectional": "true" if spec.bidirectional else "false",
        "text_rule": spec.text_rule,
        **(
            {"ngram_max": str(spec.ngram_max), "ngram_buckets": str(spec.ngram_buckets)}
            if spec.ngram_buckets
            else {}
        ),
        "alphabet": ALPHABET,
        "categories": json.dumps(spec.categories),
        **(metadata or {}),
    }
    expected = expected_shapes(spec)
    arrays = {k: np.ascontiguousarray(tensors[k], dtype=np.float32) for k in expected}
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise ValueError(f"tensor {name} has shape {arrays[name].shape}, expected {shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        save_file(arrays, tmp, metadata=meta)
        _default_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save(
    path: str | os.PathLike[str],
    model,
    categories: list[str],
    metadata: dict[str, str] | None = None,
) -> Path:
    """Writes a namelang.model module with its categories and training metadata."""
    c = model.config
    spec = ModelSpec(
        c.cell,
        c.hidden_size,
        c.num_layers,
        c.input,
        c.embedding_dim,
        list(categories),
        bidirectional=c.bidirectional,
        text_rule=c.text_rule,
        ngram_max=c.ngram_max,
        ngram_buckets=c.ngram_buckets,
    )
    state = {k: v.detach().cpu().float().numpy() for k, v in model.state_dict().items()}
    return write(path, spec, state, metadata)


def load_module(path: str | os.PathLike[str], device: str = "cpu"):
    """(spec, torch module in eval mode) from a model file."""
    import torch

    from namelang.model import ModelConfig, build

    spec, tensors = read(path)
    config = ModelConfig(
        cell=spec.cell,
        hidden_size=spec.hidden_size,
        num_layers=spec.num_layers,
        input=spec.input,
        embedding_dim=spec.embedding_dim,
        n_categories=spec.n_categories,
        bidirectional=spec.bidirectional,
        text_rule=spec.text_rule,
        ngram_max=spec.ngram_max,
        ngram_buckets=spec.ngram_buckets,
    )
    module = build(config)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()})
    return spec, module.to(device).eval()
